/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-daemon.c: teep-agentd on the real stack (tools/devstack): only the broker's uid gets
 * in; the test plays the broker against the real teep-tam and the real installer */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "fileio.h"
#include "harness.h"
#include "macro.h"

#define AGENT_NAME "org.teepkit.Agent1"
#define AGENT_PATH "/org/teepkit/Agent1"
#define AGENT_IFACE "org.teepkit.Agent1"

static Stack stack;

static void up_with(const char *const *extra) {
        const char *why = NULL;
        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, extra), 0, "tools/devstack up failed");
}

static void up_token(void) {
        up_with((const char *const[]){ "--no-broker", NULL });
}

static void up_attestation(void) {
        up_with((const char *const[]){ "--no-broker", "--tam-arg", "--mode=attestation", NULL });
}

static void down(void) {
        stack_down(&stack);
}

/* ---- access ---- */

/* exit 0: the call worked; 1: AccessDenied (from the bus or from the agent); 2: another error */
static int call_policy_check(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r, ret;

        if (sd_bus_open_system(&bus) < 0)
                return 3;
        r = sd_bus_call_method(bus, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "RequestPolicyCheck", &error, &reply, "");
        if (r >= 0)
                ret = 0;
        else if (error.name && strstr(error.name, "AccessDenied"))
                ret = 1;
        else {
                fprintf(stderr, "RequestPolicyCheck: %s: %s\n", error.name ?: "?", error.message ?: strerror(-r));
                ret = 2;
        }
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return ret;
}

static int read_property(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char **list = NULL;
        int r, ret;

        if (sd_bus_open_system(&bus) < 0)
                return 3;
        r = sd_bus_get_property_strv(bus, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "TamURIs", &error, &list);
        ret = r >= 0 ? 0 : error.name && strstr(error.name, "AccessDenied") ? 1 : 2;
        for (size_t i = 0; list && list[i]; i++)
                free(list[i]);
        free(list);
        sd_bus_error_free(&error);
        sd_bus_flush_close_unref(bus);
        return ret;
}

TestSuite(daemon, .init = up_token, .fini = down, .timeout = 120);

Test(daemon, only_the_broker_gets_in) {
        cr_assert(stack.distinct_users);
        cr_assert_eq(run_as(stack.uid_app, stack.gid_app, call_policy_check, NULL), 1, "an app must get AccessDenied");
        cr_assert_eq(run_as(stack.uid_installer, stack.gid_installer, call_policy_check, NULL), 1);
        cr_assert_eq(run_as(stack.uid_app, stack.gid_app, read_property, NULL), 1, "properties too");
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, call_policy_check, NULL), 0, "the broker gets in");
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, read_property, NULL), 0);
}

Test(daemon, the_agent_runs_confined) {
        pid_t pid = stack_bus_name_pid("org.teepkit.Agent1");
        char uid[64];

        cr_assert_gt(pid, 1, "nobody owns org.teepkit.Agent1");
        cr_assert(stack_proc_status_has(pid, "Seccomp:\t2"), "teep-agentd (pid %d) runs without a seccomp filter", (int)pid);
        cr_assert(stack_proc_status_has(pid, "NoNewPrivs:\t1"));
        snprintf(uid, sizeof(uid), "Uid:\t%u\t%u\t%u\t%u", stack.uid_agent, stack.uid_agent, stack.uid_agent,
                 stack.uid_agent);
        cr_assert(stack_proc_status_has(pid, uid), "teep-agentd is not running as teep-agent");
}

/* The agent writes a streamed payload into a pipe the installer reads: if the installer dies,
 * the write must fail with EPIPE, not kill the agent with SIGPIPE. */
Test(daemon, the_agent_ignores_sigpipe) {
        pid_t pid = stack_bus_name_pid("org.teepkit.Agent1");
        _cleanup_free_ uint8_t *status = NULL;
        unsigned long long ignored = 0;
        const char *p;
        char path[64];
        size_t len;

        cr_assert_gt(pid, 1, "nobody owns org.teepkit.Agent1");
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        cr_assert_eq(read_full_file(path, 64 * 1024, &status, &len), 0);
        p = strstr((const char *)status, "\nSigIgn:\t");
        cr_assert_not_null(p);
        ignored = strtoull(p + strlen("\nSigIgn:\t"), NULL, 16);
        cr_assert(ignored & (1ULL << (SIGPIPE - 1)), "SigIgn %llx: SIGPIPE not ignored", ignored);
}

/* ---- the full cycle, the test playing the broker ---- */

typedef struct Buf {
        uint8_t *data;
        size_t len;
} Buf;

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        Buf *b = userdata;
        uint8_t *nd;

        if (b->len + size * n > (1u << 24))
                return 0;
        nd = realloc(b->data, b->len + size * n + 1);
        if (!nd)
                return 0;
        b->data = nd;
        memcpy(b->data + b->len, p, size * n);
        b->len += size * n;
        return size * n;
}

static int post(const char *uri, const uint8_t *body, size_t len, Buf *ret, long *status) {
        struct curl_slist *h = NULL;
        CURL *c = curl_easy_init();
        CURLcode cc;

        if (!c)
                return -ENOMEM;
        h = curl_slist_append(h, "Accept: application/teep+cbor");
        h = curl_slist_append(h, "Content-Type: application/teep+cbor");
        *ret = (Buf){};
        curl_easy_setopt(c, CURLOPT_URL, uri);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, len ? (const char *)body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, ret);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return cc == CURLE_OK ? 0 : -EIO;
}

static int process(sd_bus *bus, const char *uri, const Buf *in, Buf *out) {
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const void *p;
        size_t n;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "ProcessTeepMessage");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", uri);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', in->data ? in->data : (const uint8_t *)"", in->len);
        if (r >= 0)
                r = sd_bus_call(bus, m, 120 * 1000000ULL, &error, &reply);
        if (r < 0)
                fprintf(stderr, "ProcessTeepMessage: %s: %s\n", error.name ?: "?", error.message ?: strerror(-r));
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &p, &n);
        if (r >= 0) {
                *out = (Buf){ .data = malloc(n + 1), .len = n };
                if (!out->data)
                        r = -ENOMEM;
                else
                        memcpy(out->data, p, n);
        }
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        return r;
}

/* As the broker: RequestTA, then relay between the TAM and the agent until the TAM says 204.
 * Exit 0 when the exchange ended normally. */
static int broker_cycle(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *uri = NULL;
        char tam_uri[256];
        Buf body = {}, out = {};
        long status = 0;
        int r, ret = 0;

        if (sd_bus_open_system(&bus) < 0)
                return 3;
        r = sd_bus_call_method(bus, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "RequestTA", &error, &reply, "ssas", "uid:4242",
                               stack.demo_component, 1, stack.tam_uri);
        if (r < 0 || sd_bus_message_read(reply, "s", &uri) < 0) {
                fprintf(stderr, "RequestTA: %s\n", error.message ?: strerror(-r));
                return 4;
        }
        if (strcmp(uri, stack.tam_uri) != 0) {
                fprintf(stderr, "RequestTA answered \"%s\", want %s\n", uri, stack.tam_uri);
                return 5;
        }
        snprintf(tam_uri, sizeof(tam_uri), "%s", uri);
        sd_bus_message_unref(reply);

        if (post(tam_uri, NULL, 0, &body, &status) < 0 || status != 200 || body.len == 0) {
                fprintf(stderr, "first POST: HTTP %ld, %zu bytes\n", status, body.len);
                return 6;
        }
        for (int round = 0; round < 6; round++) {
                r = process(bus, tam_uri, &body, &out);
                free(body.data);
                body = (Buf){};
                if (r < 0) {
                        ret = 7;
                        break;
                }
                if (out.len == 0)
                        break; /* the agent says the exchange is over */
                r = post(tam_uri, out.data, out.len, &body, &status);
                free(out.data);
                out = (Buf){};
                if (r < 0 || status < 200 || status > 299) {
                        fprintf(stderr, "POST: HTTP %ld\n", status);
                        ret = 8;
                        break;
                }
                if (body.len == 0)
                        break; /* 204: done */
        }
        free(body.data);
        free(out.data);
        sd_bus_flush_close_unref(bus);
        return ret;
}

static int installed_has_demo(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r, found = 0;

        if (sd_bus_open_system(&bus) < 0)
                return 3;
        r = sd_bus_get_property(bus, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "InstalledTCs", &error, &reply, "a(stay)");
        if (r < 0)
                return 4;
        r = sd_bus_message_enter_container(reply, 'a', "(stay)");
        while (r > 0) {
                const char *c;
                uint64_t seq;
                const void *sha;
                size_t n;
                r = sd_bus_message_enter_container(reply, 'r', "stay");
                if (r <= 0)
                        break;
                if (sd_bus_message_read(reply, "st", &c, &seq) < 0 || sd_bus_message_read_array(reply, 'y', &sha, &n) < 0)
                        return 5;
                sd_bus_message_exit_container(reply);
                if (strcmp(c, stack.demo_component) == 0 && n == 32 && seq >= 1)
                        found = 1;
        }
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return found ? 0 : 1;
}

static char want_sha[65];
static int store_hits;

static int check_file(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        char sha[65];
        if (flag == FTW_F && file_sha256_hex(path, sha) == 0 && strcmp(sha, want_sha) == 0)
                store_hits++;
        return 0;
}

static void full_cycle(void) {
        char store[512];

        cr_assert(stack.tam_uri[0], "the stack has a TAM");
        cr_assert_eq(file_sha256_hex(stack_path(&stack, "tam/payloads/demo-ta.bin"), want_sha), 0);
        snprintf(store, sizeof(store), "%s", stack_path(&stack, "var/lib/teepkit/tc"));
        store_hits = 0;
        cr_assert_eq(nftw(store, check_file, 16, FTW_PHYS), 0);
        cr_assert_eq(store_hits, 0, "the store starts without the demo TC");

        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, broker_cycle, NULL), 0,
                     "the exchange failed (logs in %s/log)", stack.dir);
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, installed_has_demo, NULL), 0,
                     "InstalledTCs does not list the demo TC");
        cr_assert_eq(nftw(store, check_file, 16, FTW_PHYS), 0);
        cr_assert_eq(store_hits, 1, "the demo TC's bytes are in the store (installed by teep-installer)");
        /* a second RequestTA: nothing to do */
}

Test(daemon, full_cycle_token_mode) {
        full_cycle();
}

TestSuite(daemon_attestation, .init = up_attestation, .fini = down, .timeout = 120);

Test(daemon_attestation, full_cycle_with_evidence) {
        full_cycle();
}

/* ---- refusals on the real stack: teep-tam --fault=... at the Update ---- */

static bool file_contains(const char *path, const char *needle) {
        FILE *fp = fopen(path, "re");
        char line[4096];
        bool found = false;

        if (!fp)
                return false;
        while (!found && fgets(line, sizeof(line), fp))
                found = strstr(line, needle) != NULL;
        fclose(fp);
        return found;
}

/* The agent answered the faulty Update with an Error and nothing was installed. */
static void refused_by_agent(const char *fault, const char *log_needle) {
        char arg[128], store[512];
        int r;

        snprintf(arg, sizeof(arg), "--fault=%s", fault);
        {
                const char *why = NULL;
                if (!stack_can_run(&why))
                        cr_skip_test("%s", why);
                /* a teep-tam that does not know this fault yet cannot start: nothing to test */
                if (stack_up(&stack, (const char *const[]){ "--no-broker", "--tam-arg", arg, NULL }) < 0)
                        cr_skip_test("teep-tam refused --fault=%s", fault);
        }
        cr_assert_eq(file_sha256_hex(stack_path(&stack, "tam/payloads/demo-ta.bin"), want_sha), 0);
        r = run_as(stack.uid_broker, stack.gid_broker, broker_cycle, NULL);
        cr_assert(r == 0 || r == 8, "%s: the exchange broke down (%d)", fault, r);
        cr_assert(file_contains(stack_path(&stack, "log/agent.log"), log_needle), "%s: no \"%s\" in the agent's log",
                  fault, log_needle);
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, installed_has_demo, NULL), 1,
                     "%s: InstalledTCs lists the demo TC", fault);
        snprintf(store, sizeof(store), "%s", stack_path(&stack, "var/lib/teepkit/tc"));
        store_hits = 0;
        cr_assert_eq(nftw(store, check_file, 16, FTW_PHYS), 0);
        cr_assert_eq(store_hits, 0, "%s: the store has the demo TC", fault);
}

TestSuite(daemon_faults, .fini = down, .timeout = 120);

Test(daemon_faults, wrong_signature) {
        refused_by_agent("wrong-signature@update", "signature check failed");
}

Test(daemon_faults, untrusted_key) {
        refused_by_agent("untrusted-key@update", "no state change");
}

Test(daemon_faults, wrong_token) {
        refused_by_agent("wrong-token", "token: unknown, expired or replayed");
}

Test(daemon_faults, digest_mismatch) {
        refused_by_agent("digest-mismatch@update", "ERR_MANIFEST_PROCESSING_FAILED");
}

Test(daemon_faults, unknown_critical_header) {
        refused_by_agent("unknown-critical-header@update", "malformed COSE");
}

/* ---- when a request is written (docs/protocol-decisions.md, Q25) ---- */

/* As the broker: RequestTA of the demo TC for the requester in userdata, and nothing more. */
static int request_only(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 3;
        r = sd_bus_call_method(bus, AGENT_NAME, AGENT_PATH, AGENT_IFACE, "RequestTA", &error, &reply, "ssas",
                               (const char *)userdata, stack.demo_component, 1, stack.tam_uri);
        if (r < 0)
                fprintf(stderr, "RequestTA: %s\n", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 4 : 0;
}

static const char *state_file(void) {
        return stack_path(&stack, "var/lib/teepkit/agent/state");
}

/* No session follows: the answer comes first, the write about a second later, by the timer. */
Test(daemon, a_request_alone_is_written_by_the_timer) {
        uint64_t t0 = stack_now_ms(), t_answer, t_seen = 0;

        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, request_only, (void *)"uid:4343"), 0);
        t_answer = stack_now_ms();
        /* only meaningful well inside the delay (a machine that stalled for that long says nothing) */
        if (t_answer - t0 < 400)
                cr_expect(!file_contains(state_file(), " uid:4343\n"),
                          "the request was written at once (%" PRIu64 " ms), not after its delay", t_answer - t0);
        while (stack_now_ms() - t0 < 10000) {
                if (file_contains(state_file(), " uid:4343\n")) {
                        t_seen = stack_now_ms();
                        break;
                }
                usleep(20 * 1000);
        }
        cr_assert(t_seen, "the request was never written to %s", state_file());
        cr_assert_geq(t_seen - t0, 900, "written after %" PRIu64 " ms: the delay is 1 s", t_seen - t0);
}

/* A session follows at once: its Update's journal carries the request, well before the timer. */
Test(daemon, a_request_rides_the_journal_of_its_update) {
        uint64_t t0 = stack_now_ms(), took;

        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, broker_cycle, NULL), 0,
                     "the exchange failed (logs in %s/log)", stack.dir);
        took = stack_now_ms() - t0;
        cr_assert(file_contains(state_file(), "journal install "), "the state file holds the Update's journal");
        if (took < 800)
                cr_assert(file_contains(state_file(), " uid:4242\n"),
                          "the journal (written %" PRIu64 " ms after the request) does not carry it", took);
}

/* Stopping writes what waits: SIGTERM right after the answer leaves the request on disk. */
Test(daemon, sigterm_writes_the_waiting_requests) {
        pid_t pid = stack_bus_name_pid(AGENT_NAME);
        uint64_t t0;

        cr_assert_gt(pid, 0, "the agent is on the bus");
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, request_only, (void *)"uid:4444"), 0);
        cr_assert_eq(kill(pid, SIGTERM), 0);
        t0 = stack_now_ms();
        while (kill(pid, 0) == 0 && stack_now_ms() - t0 < 10000)
                usleep(10 * 1000);
        cr_assert_neq(kill(pid, 0), 0, "the agent did not stop within 10 s");
        cr_assert(file_contains(state_file(), " uid:4444\n"), "the request was lost at the stop");
}

/* A write the timer could not make is tried again: the state directory is read-only when the
 * timer fires (the exchange with the state file fails), writable again afterwards. */
Test(daemon, a_failed_request_write_is_tried_again) {
        char dir[400];
        uint64_t t0;
        bool seen = false;

        snprintf(dir, sizeof(dir), "%s", stack_path(&stack, "var/lib/teepkit/agent"));
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, request_only, (void *)"uid:4545"), 0);
        cr_assert_eq(chmod(dir, 0500), 0);
        t0 = stack_now_ms();
        while (stack_now_ms() - t0 < 10000 && !file_contains(stack_path(&stack, "log/agent.log"), "next try in"))
                usleep(20 * 1000);
        cr_assert_eq(chmod(dir, 0700), 0);
        cr_assert(file_contains(stack_path(&stack, "log/agent.log"), "next try in"),
                  "the timer's write did not fail (or said nothing)");
        cr_assert_not(file_contains(state_file(), " uid:4545\n"));
        t0 = stack_now_ms();
        while (stack_now_ms() - t0 < 10000 && !(seen = file_contains(state_file(), " uid:4545\n")))
                usleep(20 * 1000);
        cr_assert(seen, "the write was not tried again");
}
