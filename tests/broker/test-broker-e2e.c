/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-broker-e2e.c: the whole stack (tools/devstack) driven through org.teepkit.Broker1 and teepctl */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus-util.h"
#include "fileio.h"
#include "harness.h"
#include "macro.h"
#include "payload-server.h"

static Stack stack;

static void up_with(const char *const *extra) {
        const char *why = NULL;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, extra), 0, "tools/devstack up failed");
        cr_assert(stack.distinct_users);
        cr_assert(stack.tam_uri[0] || (extra && extra[0]), "no TAM in the stack");
}

static void up(void) {
        up_with(NULL);
}

static pid_t broker_pid(void);
static char *read_text(const char *path);

static void down(void) {
        stack_down(&stack);
}

/* The last step of every test: stop the broker on its own, so that what a sanitizer build
 * reports at exit (leaks, undefined behaviour) lands in its log, and fail when it did. (Criterion
 * does not count failures in .fini, so this runs in the test itself.) */
static void broker_exits_cleanly(void) {
        _cleanup_free_ char *log = NULL;
        char proc[64];
        pid_t pid = broker_pid();

        cr_assert_gt(pid, 1, "teep-brokerd is not running any more");
        cr_assert_eq(kill(pid, SIGTERM), 0);
        snprintf(proc, sizeof(proc), "/proc/%d/cmdline", (int)pid);
        for (int i = 0; i < 200 && access(proc, F_OK) == 0; i++)
                usleep(50 * 1000);
        log = read_text(stack_path(&stack, "log/broker.log"));
        cr_assert_null(strstr(log, "Sanitizer"), "teep-brokerd: a sanitizer report:\n%s", log);
        cr_assert_null(strstr(log, "runtime error:"), "teep-brokerd: undefined behaviour:\n%s", log);
        cr_assert(strstr(log, "stopping on"), "teep-brokerd did not stop cleanly:\n%s", log);
}

TestSuite(broker_e2e, .init = up, .fini = down, .timeout = 240);

/* ---- helpers ---- */

static const char *teepctl(void) {
        const char *t = getenv("TEEPCTL");
        cr_assert(t && *t, "TEEPCTL is not set");
        return t;
}

/* Run teepctl as a user with up to 6 arguments; returns the exit status. */
static int ctl(uid_t uid, gid_t gid, char **out, char **err, const char *a1, const char *a2, const char *a3,
               const char *a4) {
        const char *argv[] = { teepctl(), a1, a2, a3, a4, NULL };
        char *o = NULL, *e = NULL;
        int r = run_cmd_as(uid, gid, argv, 120, &o, &e);

        if (r != 0)
                fprintf(stderr, "teepctl %s %s %s: exit %d\nstdout: %s\nstderr: %s\n", a1 ?: "", a2 ?: "", a3 ?: "", r,
                        o ?: "", e ?: "");
        if (out)
                *out = o;
        else
                free(o);
        if (err)
                *err = e;
        else
                free(e);
        return r;
}

#define APP stack.uid_app, stack.gid_app
#define APP2 stack.uid_app2, stack.gid_app2

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
        out[2 * n] = '\0';
}

/* InstalledTCs from the broker: sequence and digest of component; false when absent. */
static bool installed(const char *component, uint64_t *ret_seq, char ret_digest[65]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool found = false;
        int r;

        cr_assert_geq(sd_bus_open_system(&bus), 0);
        r = sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "InstalledTCs",
                                NULL, &reply, "a(stay)");
        cr_assert_geq(r, 0, "InstalledTCs: %s", strerror(-r));
        cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "(stay)"), 0);
        while (sd_bus_message_enter_container(reply, 'r', "stay") > 0) {
                const char *c;
                const void *d;
                size_t dl;
                uint64_t seq;
                cr_assert_geq(sd_bus_message_read(reply, "st", &c, &seq), 0);
                cr_assert_geq(sd_bus_message_read_array(reply, 'y', &d, &dl), 0);
                cr_assert_geq(sd_bus_message_exit_container(reply), 0);
                if (strcmp(c, component) == 0) {
                        found = true;
                        if (ret_seq)
                                *ret_seq = seq;
                        if (ret_digest) {
                                cr_assert_eq(dl, 32);
                                hex(d, dl, ret_digest);
                        }
                }
        }
        return found;
}

static size_t n_installed(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t n = 0;

        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_geq(sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                          "InstalledTCs", NULL, &reply, "a(stay)"),
                      0);
        cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "(stay)"), 0);
        while (sd_bus_message_skip(reply, "(stay)") > 0)
                n++;
        return n;
}

/* Broker1.Requests as "COMPONENT REQUESTER;" for each, in its order. */
static void broker_requests(char *out, size_t n) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *c, *q;

        out[0] = '\0';
        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_geq(sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                          "Requests", NULL, &reply, "a(ss)"),
                      0);
        cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "(ss)"), 0);
        while (sd_bus_message_read(reply, "(ss)", &c, &q) > 0) {
                size_t len = strlen(out);
                snprintf(out + len, n - len, "%s %s;", c, q);
        }
}

/* How many regular files in the TC store have this SHA-256 (hex). */
static const char *walk_digest;
static unsigned walk_hits, walk_files;
static int walk_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        char d[65];
        if (type != FTW_F)
                return 0;
        walk_files++;
        if (file_sha256_hex(path, d) == 0 && strcmp(d, walk_digest) == 0)
                walk_hits++;
        return 0;
}

static unsigned store_files_with_digest(const char *digest, unsigned *ret_total) {
        walk_digest = digest;
        walk_hits = walk_files = 0;
        cr_assert_eq(nftw(stack_path(&stack, "var/lib/teepkit/tc"), walk_one, 16, FTW_PHYS), 0);
        if (ret_total)
                *ret_total = walk_files;
        return walk_hits;
}

static char *read_text(const char *path) {
        uint8_t *buf = NULL;
        size_t len;
        cr_assert_eq(read_full_file(path, 16 << 20, &buf, &len), 0, "cannot read %s", path);
        return (char *)buf;
}

/* The broker's log once it holds needle (at most 5 s). A download's log line comes when the
 * broker has the helper's answer, which the helper sends after it closed the pipe: a reader
 * that saw the end of the pipe may be there first. */
static char *broker_log_with(const char *needle) {
        char *log = NULL;

        for (unsigned waited = 0; waited < 5000; waited += 20) {
                free(log);
                log = read_text(stack_path(&stack, "log/broker.log"));
                if (strstr(log, needle))
                        break;
                usleep(20 * 1000);
        }
        return log;
}

static unsigned count_lines_with(const char *path, const char *needle) {
        _cleanup_free_ char *text = read_text(path);
        unsigned n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* A value from the stack's env file ("TEEP_VENDOR_ID"). */
static void env_value(const char *key, char *out, size_t n) {
        _cleanup_free_ char *text = read_text(stack_path(&stack, "env"));
        char pat[128];
        const char *p;

        snprintf(pat, sizeof(pat), "export %s=", key);
        p = strstr(text, pat);
        cr_assert_not_null(p, "%s not in the stack's env", key);
        p += strlen(pat);
        snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
}

/* Sign a TC for the stack's TAM: payload text → tam/tcs/NAME.suit (atomically). With uri, the
 * envelope names where the device downloads the payload: teep-tam serves tam/payloads/NAME.bin
 * (devstack's --payload-dir) at /payload/NAME.bin. */
static void make_tc(const char *name, const char *component, unsigned seq, const char *content, bool by_uri,
                    char ret_digest[65]) {
        char payload[512], out[512], tmp[512], seqs[16], vendor[64], class[64], manifest[512], uri[512];
        const char *argv[24];
        size_t n = 0;
        FILE *f;
        int r;

        env_value("TEEP_VENDOR_ID", vendor, sizeof(vendor));
        env_value("TEEP_CLASS_ID", class, sizeof(class));
        (void)mkdir(stack_path(&stack, "tam/payloads"), 0755);
        snprintf(payload, sizeof(payload), "%s/%s.bin", stack_path(&stack, "tam/payloads"), name);
        f = fopen(payload, "we");
        cr_assert_not_null(f);
        fputs(content, f);
        fclose(f);
        (void)chmod(payload, 0644);
        snprintf(out, sizeof(out), "%s/%s.suit", stack_path(&stack, "tam/tcs"), name);
        snprintf(tmp, sizeof(tmp), "%s/.%s.suit.tmp", stack_path(&stack, "tam"), name);
        snprintf(seqs, sizeof(seqs), "%u", seq);
        snprintf(manifest, sizeof(manifest), "%s/tam/teep-manifest", getenv("TEEP_BUILD_DIR") ?: "build");
        argv[n++] = manifest;
        argv[n++] = "create";
        argv[n++] = "--key";
        argv[n++] = stack_path(&stack, "tam/signer.pem");
        argv[n++] = "--component";
        argv[n++] = component;
        argv[n++] = "--sequence";
        argv[n++] = seqs;
        argv[n++] = "--vendor-id";
        argv[n++] = vendor;
        argv[n++] = "--class-id";
        argv[n++] = class;
        argv[n++] = "--payload";
        argv[n++] = payload;
        if (by_uri) {
                /* http://127.0.0.1:PORT/tam → http://127.0.0.1:PORT/payload/NAME.bin */
                const char *slash = strrchr(stack.tam_uri, '/');
                cr_assert_not_null(slash);
                snprintf(uri, sizeof(uri), "%.*s/payload/%s.bin", (int)(slash - stack.tam_uri), stack.tam_uri, name);
                argv[n++] = "--uri";
                argv[n++] = uri;
        }
        argv[n++] = "--out";
        argv[n++] = tmp;
        argv[n] = NULL;
        r = run_cmd_as(geteuid(), getegid(), argv, 30, NULL, NULL);
        cr_assert_eq(r, 0, "teep-manifest create %s: exit %d", name, r);
        cr_assert_eq(rename(tmp, out), 0);
        if (ret_digest)
                cr_assert_eq(file_sha256_hex(payload, ret_digest), 0);
}

static void demo_digest(char out[65]) {
        cr_assert_eq(file_sha256_hex(stack_path(&stack, "tam/payloads/demo-ta.bin"), out), 0);
}

/* ---- tests ---- */

Test(broker_e2e, request_installs_the_tc_with_the_right_digest) {
        _cleanup_free_ char *out = NULL, *list = NULL;
        char want[65], got[65], requester[32];
        uint64_t seq = 0;

        demo_digest(want);
        cr_assert(!installed(stack.demo_component, NULL, NULL));
        cr_assert_eq(store_files_with_digest(want, NULL), 0);

        cr_assert_eq(ctl(APP, &out, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(out, "installed"), "%s", out);

        cr_assert(installed(stack.demo_component, &seq, got));
        cr_assert_eq(seq, 1);
        cr_assert_str_eq(got, want, "the broker reports another image");
        cr_assert_eq(store_files_with_digest(want, NULL), 1, "the image is not in the store");

        /* anyone can see it, with who asked */
        cr_assert_eq(ctl(APP2, &list, NULL, "list", "--json", NULL, NULL), 0);
        snprintf(requester, sizeof(requester), "\"uid:%u\"", (unsigned)stack.uid_app);
        cr_assert(strstr(list, stack.demo_component), "%s", list);
        cr_assert(strstr(list, requester), "%s", list);
        cr_assert(strstr(list, want), "%s", list);
        broker_exits_cleanly();
}

Test(broker_e2e, unrequest_removes_only_when_the_last_requester_goes) {
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *e5 = NULL;
        char want[65], reqs[1024], want_reqs[1024];

        demo_digest(want);
        cr_assert_eq(ctl(APP, &o1, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert_eq(ctl(APP2, &o2, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(o2, "already installed"), "%s", o2);
        cr_assert_eq(store_files_with_digest(want, NULL), 1);
        /* the broker's Requests follows the agent's RequestsChanged, in the agent's order */
        snprintf(want_reqs, sizeof(want_reqs), "%s uid:%u;%s uid:%u;", stack.demo_component, (unsigned)stack.uid_app,
                 stack.demo_component, (unsigned)stack.uid_app2);
        broker_requests(reqs, sizeof(reqs));
        cr_assert_str_eq(reqs, want_reqs);

        /* the second requester goes: the first still needs it */
        cr_assert_eq(ctl(APP2, &o3, NULL, "unrequest", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(o3, "still needed"), "%s", o3);
        snprintf(want_reqs, sizeof(want_reqs), "%s uid:%u;", stack.demo_component, (unsigned)stack.uid_app);
        broker_requests(reqs, sizeof(reqs));
        cr_assert_str_eq(reqs, want_reqs);
        cr_assert(installed(stack.demo_component, NULL, NULL));
        cr_assert_eq(store_files_with_digest(want, NULL), 1, "removed while still needed");

        /* asking again to unrequest what is not requested: not found */
        cr_assert_eq(ctl(APP2, NULL, &e5, "unrequest", stack.demo_component, NULL, NULL), 3);
        cr_assert(strstr(e5, "NotRequested"), "%s", e5);

        /* the last one goes: removed */
        cr_assert_eq(ctl(APP, &o4, NULL, "unrequest", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(o4, "removed"), "%s", o4);
        cr_assert(!installed(stack.demo_component, NULL, NULL));
        cr_assert_eq(store_files_with_digest(want, NULL), 0, "still in the store");
        broker_requests(reqs, sizeof(reqs));
        cr_assert_str_empty(reqs);
        broker_exits_cleanly();
}

Test(broker_e2e, policy_check_brings_a_newer_tc) {
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *o3 = NULL, *st = NULL;
        char old[65], new[65], got[65];
        uint64_t seq = 0;

        demo_digest(old);
        cr_assert_eq(ctl(APP, &o1, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert(installed(stack.demo_component, &seq, NULL));
        cr_assert_eq(seq, 1);

        /* the SP signs version 2; the TAM offers it from now on */
        make_tc("demo-ta", stack.demo_component, 2, "teepkit demo Trusted Component, version 2\n", false, new);
        cr_assert_str_neq(old, new);

        cr_assert_eq(ctl(APP2, &o2, NULL, "policy-check", NULL, NULL, NULL), 0);
        cr_assert(strstr(o2, "policy check done"), "%s", o2);
        cr_assert(installed(stack.demo_component, &seq, got));
        cr_assert_eq(seq, 2, "the newer TC did not arrive");
        cr_assert_str_eq(got, new);
        cr_assert_eq(store_files_with_digest(new, NULL), 1);
        cr_assert_eq(store_files_with_digest(old, NULL), 0, "the old image is still there");

        /* nothing new: a second check runs through as well (the agent's round starts over) */
        cr_assert_eq(ctl(APP2, &o3, NULL, "policy-check", "--json", NULL, NULL), 0);
        cr_assert(strstr(o3, "\"result\":\"checked\""), "%s", o3);
        cr_assert_eq(ctl(APP2, &st, NULL, "status", "--json", NULL, NULL), 0);
        cr_assert_null(strstr(st, "\"last_policy_check\":0,"), "LastPolicyCheck not set: %s", st);
        broker_exits_cleanly();
}

/* Stop teep-tam for good. run/tam.pid is the `timeout` wrapper, which leads the process group
 * teep-tam is in: the group goes. Then wait until nothing accepts on the TAM's port. */
static void kill_tam(void) {
        _cleanup_free_ char *pidtext = read_text(stack_path(&stack, "run/tam.pid"));
        pid_t pid = (pid_t)strtol(pidtext, NULL, 10);
        const char *argv[] = { "curl", "-s", "-o", "/dev/null", "--max-time", "2", "-X", "POST", stack.tam_uri, NULL };

        cr_assert_gt(pid, 1);
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        for (int i = 0; i < 100; i++) {
                /* curl exits 7 when the connection is refused */
                if (run_cmd_as(geteuid(), getegid(), argv, 5, NULL, NULL) == 7)
                        return;
                usleep(50 * 1000);
        }
        cr_assert_fail("teep-tam still answers at %s", stack.tam_uri);
}

Test(broker_e2e, tam_down_fails_with_tam_unreachable_and_nothing_changes) {
        _cleanup_free_ char *o1 = NULL, *e2 = NULL, *j3 = NULL, *e4 = NULL, *e5 = NULL, *before = NULL,
                            *after = NULL;
        const char *other = "TEEP-Device/SecureFS/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9/ta";
        char want[65];
        unsigned files_before, files_after;

        demo_digest(want);
        cr_assert_eq(ctl(APP, &o1, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert_eq(store_files_with_digest(want, &files_before), 1);
        cr_assert_eq(ctl(APP, &before, NULL, "list", "--json", NULL, NULL), 0);

        kill_tam();

        cr_assert_eq(ctl(APP2, NULL, &e2, "request", other, NULL, NULL), 1);
        cr_assert(strstr(e2, "TamUnreachable"), "%s", e2);
        cr_assert_eq(ctl(APP2, &j3, NULL, "request", "--json", other, NULL), 1);
        cr_assert(strstr(j3, "\"name\":\"org.teepkit.Error.TamUnreachable\""), "%s", j3);
        /* the last requester goes, but the TAM cannot be told: the TC stays */
        cr_assert_eq(ctl(APP, NULL, &e4, "unrequest", stack.demo_component, NULL, NULL), 1);
        cr_assert(strstr(e4, "TamUnreachable"), "%s", e4);
        cr_assert_eq(ctl(APP, NULL, &e5, "policy-check", NULL, NULL, NULL), 1);
        cr_assert(strstr(e5, "TamUnreachable"), "%s", e5);

        cr_assert(!installed(other, NULL, NULL));
        cr_assert(installed(stack.demo_component, NULL, NULL));
        cr_assert_eq(store_files_with_digest(want, &files_after), 1);
        cr_assert_eq(files_after, files_before, "the store changed");
        cr_assert_eq(ctl(APP, &after, NULL, "list", "--json", NULL, NULL), 0);
        cr_assert(strstr(after, "\"installed\":true"), "%s", after);
        broker_exits_cleanly();
}

Test(broker_e2e, payload_fetched_by_uri_through_the_broker) {
        _cleanup_free_ char *o = NULL, *log = NULL;
        const char *component = "TEEP-Device/SecureFS/5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e/ta";
        char want[65], got[65];

        make_tc("fetched", component, 1, "a Trusted Component the device downloads by URI\n", true, want);
        cr_assert_eq(ctl(APP, &o, NULL, "request", component, NULL, NULL), 0);
        cr_assert(installed(component, NULL, got));
        cr_assert_str_eq(got, want);
        cr_assert_eq(store_files_with_digest(want, NULL), 1);
        log = read_text(stack_path(&stack, "log/broker.log"));
        cr_assert(strstr(log, "/payload/fetched.bin"), "the broker did not fetch it:\n%s", log);
        broker_exits_cleanly();
}

/* A payload bigger than what the agent keeps in memory goes broker → agent → installer as a
 * stream: the agent hashes it on the way, the installer stages it and later commits that very
 * file (no copy); nothing staged is left in the store. */
Test(broker_e2e, a_big_payload_streams_through_to_the_store) {
        _cleanup_free_ char *o = NULL, *content = NULL, *bus_log = NULL, *agent_log = NULL;
        const char *component = "TEEP-Device/SecureFS/6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f/ta";
        const size_t len = 3u * 1024u * 1024u + 5u;
        char want[65], got[65];
        unsigned total = 0;
        DIR *d;
        struct dirent *de;

        content = malloc(len + 1);
        cr_assert_not_null(content);
        for (size_t i = 0; i < len; i++)
                content[i] = (char)('a' + (i * 13 + i / 4096) % 26);
        content[len] = '\0';
        make_tc("big", component, 1, content, true, want);
        cr_assert_eq(ctl(APP, &o, NULL, "request", component, NULL, NULL), 0, "%s", o ?: "");
        cr_assert(installed(component, NULL, got));
        cr_assert_str_eq(got, want);
        cr_assert_eq(store_files_with_digest(want, &total), 1);

        bus_log = read_text(stack_path(&stack, "log/dbus.log"));
        cr_assert(strstr(bus_log, "(staged, no copy)"), "the installer copied it:\n%s", bus_log);
        agent_log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_null(strstr(agent_log, "Installer1.Unstage:"), "%s", agent_log);
        d = opendir(stack_path(&stack, "var/lib/teepkit/tc"));
        cr_assert_not_null(d);
        while ((de = readdir(d)))
                cr_assert(strncmp(de->d_name, ".teep-tmp-", 10) != 0, "left in the store: %s", de->d_name);
        closedir(d);
        broker_exits_cleanly();
}

/* ---- access ---- */

typedef struct AccessResult {
        int code;
} AccessResult;

static int access_as_app(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *component = userdata, *p = NULL;
        char path[128];
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        /* the public API: yes */
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA", &e,
                               &reply, "sasa{sv}", component, 0, 0);
        if (r < 0 || sd_bus_message_read(reply, "o", &p) < 0 || strncmp(p, "/org/teepkit/Broker1/job/", 25) != 0) {
                fprintf(stderr, "RequestTA: %s\n", e.message ?: strerror(-r));
                return 11;
        }
        snprintf(path, sizeof(path), "%s", p);
        reply = sd_bus_message_unref(reply);
        r = sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "InstalledTCs", &e,
                                &reply, "a(stay)");
        if (r < 0)
                return 12;
        reply = sd_bus_message_unref(reply);
        r = sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, path, TEEP_BROKER_JOB_INTERFACE, "State", &e, &reply, "s");
        if (r < 0)
                return 13;
        reply = sd_bus_message_unref(reply);

        /* the agent and the installer: no, whatever the method */
        r = sd_bus_call_method(bus, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, "RequestTA", &e, NULL,
                               "ssas", "uid:0", component, 0);
        if (r >= 0 || !sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED)) {
                fprintf(stderr, "Agent1.RequestTA: %s\n", r >= 0 ? "allowed" : e.name);
                return 20;
        }
        sd_bus_error_free(&e);
        r = sd_bus_call_method(bus, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, "ProcessError", &e, NULL,
                               "ss", "http://127.0.0.1:1/tam", "x");
        if (r >= 0 || !sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED))
                return 21;
        sd_bus_error_free(&e);
        r = sd_bus_call_method(bus, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE, "List", &e,
                               NULL, NULL);
        if (r >= 0 || !sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED)) {
                fprintf(stderr, "Installer1.List: %s\n", r >= 0 ? "allowed" : e.name);
                return 22;
        }
        sd_bus_error_free(&e);
        /* nor the broker's internal interface for the agent */
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_FETCHER_INTERFACE, "Fetch", &e, NULL,
                               "st", "http://127.0.0.1:1/x", (uint64_t)10);
        if (r >= 0 || !sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED)) {
                fprintf(stderr, "PayloadFetcher1.Fetch: %s\n", r >= 0 ? "allowed" : e.name);
                return 23;
        }
        sd_bus_error_free(&e);
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(broker_e2e, a_user_can_use_the_broker_but_not_reach_agent_or_installer) {
        _cleanup_free_ char *e1 = NULL;

        int r = run_as(APP, access_as_app, stack.demo_component);
        cr_assert_eq(r, 0, "step %d of the access check failed (see stderr)", r);
        /* only root may act for a package */
        cr_assert_eq(ctl(APP, NULL, &e1, "request", "--package", "hello", stack.demo_component), 4);
        cr_assert(strstr(e1, "AccessDenied"), "%s", e1);
        broker_exits_cleanly();
}

Test(broker_e2e, bad_arguments_are_refused_by_name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *err = NULL;

        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_lt(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA",
                                        &e, NULL, "sasa{sv}", "a//b", 0, 0),
                     0);
        cr_assert_str_eq(e.name, TEEP_ERROR_INVALID_COMPONENT);
        sd_bus_error_free(&e);
        cr_assert_lt(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA",
                                        &e, NULL, "sasa{sv}", stack.demo_component, 0, 1, "force", "b", 1),
                     0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        cr_assert(strstr(e.message, "force"), "%s", e.message);
        sd_bus_error_free(&e);
        cr_assert_lt(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA",
                                        &e, NULL, "sasa{sv}", stack.demo_component, 1, "file:///etc/passwd", 0),
                     0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&e);
        cr_assert_lt(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                        "RequestPolicyCheck", &e, NULL, "a{sv}", 1, "requester", "u", 5),
                     0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&e);

        cr_assert_eq(ctl(APP, NULL, &err, "request", "../../etc/passwd", NULL, NULL), 64);
        cr_assert_eq(n_installed(), 0);
        broker_exits_cleanly();
}

Test(broker_e2e, agent_key_is_the_enrolled_device_key) {
        _cleanup_free_ char *pem = NULL, *cose = NULL, *enrolled = NULL;

        cr_assert_eq(ctl(APP, &pem, NULL, "agent-key", NULL, NULL, NULL), 0);
        enrolled = read_text(stack_path(&stack, "tam/devices/device.pem"));
        cr_assert(strstr(pem, "-----BEGIN PUBLIC KEY-----"), "%s", pem);
        cr_assert_str_eq(pem, enrolled);
        cr_assert_eq(ctl(APP, &cose, NULL, "agent-key", "--cose", NULL, NULL), 0);
        cr_assert_gt(strlen(cose), 20);
        cr_assert_eq(strspn(cose, "0123456789abcdef"), strlen(cose) - 1, "not hex: %s", cose);
        broker_exits_cleanly();
}

Test(broker_e2e, status_and_monitor_show_what_happens) {
        _cleanup_free_ char *st = NULL, *o = NULL, *mon = NULL;
        char monpath[512], timeout[8] = "30";
        pid_t pid;
        int status, fd;

        cr_assert_eq(ctl(APP, &st, NULL, "status", NULL, NULL, NULL), 0);
        cr_assert(strstr(st, stack.tam_uri), "%s", st);
        cr_assert(strstr(st, "teep-agentd"), "%s", st);

        /* teepctl monitor in the background, its output in a file */
        snprintf(monpath, sizeof(monpath), "%s", stack_path(&stack, "log/monitor.out"));
        fflush(NULL);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                fd = open(monpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, 1) < 0)
                        _exit(126);
                execl(teepctl(), "teepctl", "monitor", "--timeout", timeout, (char *)NULL);
                _exit(127);
        }
        /* it prints its first line once its matches are in place */
        for (int i = 0; i < 200; i++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                if (read_full_file(monpath, 1 << 20, &buf, &len) == 0 && strstr((char *)buf, "monitoring")) {
                        free(buf);
                        break;
                }
                free(buf);
                usleep(50 * 1000);
        }
        cr_assert_eq(ctl(APP, &o, NULL, "request", stack.demo_component, NULL, NULL), 0);
        /* teepctl request may be done (State=succeeded) before the monitor saw Finished */
        for (int i = 0; i < 200; i++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                bool seen = read_full_file(monpath, 1 << 20, &buf, &len) == 0 && strstr((char *)buf, " finished: ");
                free(buf);
                if (seen)
                        break;
                usleep(50 * 1000);
        }
        kill(pid, SIGINT); /* Ctrl-C ends it with status 0 */
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "monitor status %d", status);
        mon = read_text(monpath);
        cr_assert(strstr(mon, "new: request TEEP-Device/"), "%s", mon);
        cr_assert(strstr(mon, "finished: installed"), "%s", mon);
        cr_assert(strstr(mon, "InstalledTCs: installed: TEEP-Device/"), "%s", mon);
        /* Requests is announced without its value: the monitor says it changed */
        cr_assert(strstr(mon, "Requests: changed"), "%s", mon);
        cr_assert(strstr(mon, "State=running"), "%s", mon);
        broker_exits_cleanly();
}

/* ---- many requests at once ---- */

#define N_TCS 10
#define N_CALLS 100

typedef struct Storm {
        char components[N_TCS][128];
} Storm;

typedef struct StormState {
        char *paths[N_CALLS];
        unsigned replies, finished, ok, failed;
        char failure[512];
} StormState;

static int storm_on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        char **slot = userdata;
        const char *path;
        if (!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "o", &path) >= 0)
                *slot = strdup(path);
        else
                *slot = strdup("error");
        return 0;
}

static StormState *storm_state;

static int storm_on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        StormState *st = storm_state;
        const char *result, *name, *message, *path = sd_bus_message_get_path(m);

        if (sd_bus_message_read(m, "sss", &result, &name, &message) < 0)
                return 0;
        for (unsigned i = 0; i < N_CALLS; i++)
                if (st->paths[i] && strcmp(st->paths[i], path) == 0) {
                        st->finished++;
                        if (strcmp(result, "installed") == 0 || strcmp(result, "already-installed") == 0)
                                st->ok++;
                        else {
                                st->failed++;
                                snprintf(st->failure, sizeof(st->failure), "%s: %s %s", path, name, message);
                        }
                }
        return 0;
}

static int storm(void *userdata) {
        Storm *s = userdata;
        StormState st = {};
        sd_bus *bus = NULL;
        time_t end = time(NULL) + 180;

        storm_state = &st;
        if (sd_bus_open_system(&bus) < 0)
                return 10;
        if (sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, NULL, TEEP_BROKER_JOB_INTERFACE, "Finished",
                                storm_on_finished, NULL) < 0)
                return 11;
        /* all calls out before the first answer is read */
        for (unsigned i = 0; i < N_CALLS; i++)
                if (sd_bus_call_method_async(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                             "RequestTA", storm_on_reply, &st.paths[i], "sasa{sv}",
                                             s->components[i % N_TCS], 0, 0) < 0)
                        return 12;
        while (st.finished < N_CALLS && time(NULL) < end) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 13;
                /* The broker answers a call before its job can finish, and messages are
                 * handled in order: a job's path is known before its Finished arrives. */
                if (r == 0)
                        (void)sd_bus_wait(bus, 1000000);
        }
        for (unsigned i = 0; i < N_CALLS; i++)
                if (!st.paths[i] || strcmp(st.paths[i], "error") == 0) {
                        fprintf(stderr, "call %u: no job\n", i);
                        return 14;
                }
        /* A new connection's calls wait together for its credentials (broker-bus.c, caller
         * lookups) and are then taken in the order they were sent: the jobs are numbered so. */
        for (unsigned i = 1; i < N_CALLS; i++) {
                const char *a = strrchr(st.paths[i - 1], '/'), *b = strrchr(st.paths[i], '/');
                if (!a || !b || strtoul(a + 1, NULL, 10) >= strtoul(b + 1, NULL, 10)) {
                        fprintf(stderr, "calls %u and %u were taken out of order: %s, %s\n", i - 1, i,
                                st.paths[i - 1], st.paths[i]);
                        return 17;
                }
        }
        if (st.finished < N_CALLS) {
                fprintf(stderr, "only %u of %u jobs finished\n", st.finished, N_CALLS);
                return 15;
        }
        if (st.failed) {
                fprintf(stderr, "%u jobs failed, e.g. %s\n", st.failed, st.failure);
                return 16;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(broker_e2e, a_hundred_concurrent_requests_for_ten_tcs_share_sessions) {
        Storm s = {};
        char digests[N_TCS][65];
        _cleanup_free_ char *log = NULL;
        unsigned started = 0, active = 0, max_active = 0, connects;

        for (int i = 0; i < N_TCS; i++) {
                char name[32], content[64];
                snprintf(s.components[i], sizeof(s.components[i]), "TEEP-Device/storm/tc-%d/ta", i);
                snprintf(name, sizeof(name), "storm-%d", i);
                snprintf(content, sizeof(content), "storm Trusted Component %d\n", i);
                make_tc(name, s.components[i], 1, content, false, digests[i]);
        }
        cr_assert_eq(run_as(APP, storm, &s), 0, "the storm failed (see stderr)");

        for (int i = 0; i < N_TCS; i++) {
                char got[65];
                cr_assert(installed(s.components[i], NULL, got), "%s is missing", s.components[i]);
                cr_assert_str_eq(got, digests[i]);
                cr_assert_eq(store_files_with_digest(digests[i], NULL), 1);
        }

        /* One session per TAM at a time: walk the broker's log in order. */
        log = read_text(stack_path(&stack, "log/broker.log"));
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
                if (!strstr(line, stack.tam_uri))
                        continue;
                if (strstr(line, ": started for ")) {
                        started++;
                        active++;
                        if (active > max_active)
                                max_active = active;
                } else if (strstr(line, ": ended"))
                        active--;
        }
        cr_assert_eq(max_active, 1, "sessions with one TAM overlapped");
        cr_assert_eq(active, 0);
        cr_assert_geq(started, 1);
        cr_assert_leq(started, N_TCS, "%u sessions for %d requests: they did not coalesce", started, N_CALLS);
        /* the TAM saw exactly those sessions */
        connects = count_lines_with(stack_path(&stack, "log/tam.log"), "msg=connect");
        cr_assert_eq(connects, started, "TAM saw %u sessions, the broker started %u", connects, started);
        broker_exits_cleanly();
}

/* A caller that sends its calls and is gone before the broker knows who it is: the broker's
 * question to the bus daemon fails (most runs: "cannot tell who ... refusing", in every one of
 * the ten here when written), or it came in time and the calls make jobs; either way the broker
 * goes on serving everyone else, and stops cleanly. */
static int call_and_leave(void *userdata) {
        const char *component = userdata;
        sd_bus *bus = NULL;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        for (unsigned i = 0; i < 20; i++)
                if (sd_bus_call_method_async(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                             "RequestTA", NULL, NULL, "sasa{sv}", component, 0, 0) < 0)
                        return 11;
        if (sd_bus_flush(bus) < 0)
                return 12;
        sd_bus_close_unref(bus);
        return 0;
}

Test(broker_e2e, a_caller_that_leaves_at_once_does_not_stop_the_broker) {
        _cleanup_free_ char *out = NULL;

        for (unsigned k = 0; k < 10; k++)
                cr_assert_eq(run_as(APP, call_and_leave, (void *)stack.demo_component), 0);
        cr_assert_eq(ctl(APP2, &out, NULL, "request", stack.demo_component, NULL, NULL), 0, "%s", out);
        cr_assert(strstr(out, "installed"), "%s", out);
        cr_assert(installed(stack.demo_component, NULL, NULL));
        broker_exits_cleanly();
}

/* ---- JobFinished: a job's outcome addressed to its maker ---- */

typedef struct Seen {
        char path[128];
        char job_finished[128];  /* JobFinished's job, "" until seen */
        char result[64];
        unsigned n_job_finished, n_finished;
} Seen;

static int seen_job_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Seen *s = userdata;
        const char *job, *result, *name, *message;

        if (sd_bus_message_read(m, "osss", &job, &result, &name, &message) < 0)
                return 0;
        s->n_job_finished++;
        snprintf(s->job_finished, sizeof(s->job_finished), "%s", job);
        snprintf(s->result, sizeof(s->result), "%s", result);
        return 0;
}

static int seen_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Seen *s = userdata;
        if (*s->path && strcmp(sd_bus_message_get_path(m) ?: "", s->path) == 0)
                s->n_finished++;
        return 0;
}

static int pump_until(sd_bus *bus, const unsigned *counter, time_t end) {
        while (*counter == 0 && time(NULL) < end) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        (void)sd_bus_wait(bus, 200000);
        }
        return *counter ? 0 : -ETIMEDOUT;
}

static int job_finished_to_maker_only(void *userdata) {
        const char *component = userdata;
        sd_bus *maker = NULL, *other = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        Seen a = {}, o = {};
        const char *path;
        time_t end = time(NULL) + 120;

        if (sd_bus_open_system(&maker) < 0 || sd_bus_open_system(&other) < 0)
                return 10;
        /* both have the rule; only the maker may receive it */
        if (sd_bus_match_signal(maker, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                "JobFinished", seen_job_finished, &a) < 0 ||
            sd_bus_match_signal(other, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                "JobFinished", seen_job_finished, &o) < 0 ||
            sd_bus_match_signal(other, NULL, TEEP_BROKER_BUS_NAME, NULL, TEEP_BROKER_JOB_INTERFACE, "Finished",
                                seen_finished, &o) < 0)
                return 11;
        if (sd_bus_call_method(maker, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA", &e,
                               &reply, "sasa{sv}", component, 0, 0) < 0 ||
            sd_bus_message_read(reply, "o", &path) < 0) {
                fprintf(stderr, "RequestTA: %s\n", e.message ?: "?");
                return 12;
        }
        snprintf(a.path, sizeof(a.path), "%s", path);
        snprintf(o.path, sizeof(o.path), "%s", path);
        sd_bus_message_unref(reply);
        if (pump_until(maker, &a.n_job_finished, end) < 0) {
                fprintf(stderr, "the maker got no JobFinished\n");
                return 13;
        }
        if (strcmp(a.job_finished, a.path) != 0 || strcmp(a.result, "installed") != 0) {
                fprintf(stderr, "JobFinished for %s: %s, wanted %s: installed\n", a.job_finished, a.result, a.path);
                return 14;
        }
        /* the broadcast Finished went out first: once the other connection has it, a
         * JobFinished for it would have arrived too */
        if (pump_until(other, &o.n_finished, end) < 0) {
                fprintf(stderr, "the other connection got no Finished\n");
                return 15;
        }
        while (sd_bus_process(other, NULL) > 0)
                ;
        if (o.n_job_finished != 0) {
                fprintf(stderr, "another connection received the maker's JobFinished\n");
                return 16;
        }
        if (a.n_job_finished != 1) {
                fprintf(stderr, "the maker got %u JobFinished\n", a.n_job_finished);
                return 17;
        }
        sd_bus_flush_close_unref(maker);
        sd_bus_flush_close_unref(other);
        return 0;
}

Test(broker_e2e, job_finished_goes_to_the_maker_only) {
        int r = run_as(APP, job_finished_to_maker_only, stack.demo_component);
        cr_assert_eq(r, 0, "step %d failed (see stderr)", r);
        broker_exits_cleanly();
}

/* ---- Agent1.RequestTAMany: the broker's batch of RequestTA calls ---- */

typedef struct ManyArgs {
        const char *component;
        char answers[4][3][256]; /* uri, error name, error message per item */
        size_t n_answers;
        char limit_error[256];
        char requests[8][2][128]; /* (component, requester) the agent holds afterwards */
        size_t n_requests;
} ManyArgs;

static int many_append(sd_bus_message *m, const char *requester, const char *component) {
        int r = sd_bus_message_open_container(m, SD_BUS_TYPE_STRUCT, "ssas");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", requester, component);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, NULL);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int request_ta_many_as_broker(void *userdata) {
        ManyArgs *a = userdata;
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *uri, *name, *msg, *component, *requester;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        /* four items: two good ones by different requesters, a bad component, a bad requester */
        r = sd_bus_message_new_method_call(bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           "RequestTAMany");
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "(ssas)");
        if (r >= 0)
                r = many_append(m, "uid:5001", a->component);
        if (r >= 0)
                r = many_append(m, "uid:5002", "../../etc/passwd");
        if (r >= 0)
                r = many_append(m, "no requester", a->component);
        if (r >= 0)
                r = many_append(m, "uid:5003", a->component);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "RequestTAMany: %s\n", e.message ?: strerror(-r));
                return 11;
        }
        m = sd_bus_message_unref(m);
        if (sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "(sss)") < 0)
                return 12;
        while ((r = sd_bus_message_read(reply, "(sss)", &uri, &name, &msg)) > 0 && a->n_answers < 4) {
                snprintf(a->answers[a->n_answers][0], 256, "%s", uri);
                snprintf(a->answers[a->n_answers][1], 256, "%s", name);
                snprintf(a->answers[a->n_answers][2], 256, "%s", msg);
                a->n_answers++;
        }
        if (r < 0)
                return 13;
        reply = sd_bus_message_unref(reply);

        /* past the limit (256 items): refused as a whole, nothing recorded */
        r = sd_bus_message_new_method_call(bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           "RequestTAMany");
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "(ssas)");
        for (unsigned i = 0; r >= 0 && i < 257; i++) {
                char req[32];
                snprintf(req, sizeof(req), "uid:%u", 6000 + i);
                r = many_append(m, req, a->component);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0) {
                r = sd_bus_call(bus, m, 0, &e, NULL);
                snprintf(a->limit_error, sizeof(a->limit_error), "%s", r < 0 ? e.name ?: "?" : "accepted");
                sd_bus_error_free(&e);
        }
        m = sd_bus_message_unref(m);

        r = sd_bus_get_property(bus, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, "Requests", &e, &reply,
                                "a(ss)");
        if (r < 0 || sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "(ss)") < 0)
                return 14;
        while ((r = sd_bus_message_read(reply, "(ss)", &component, &requester)) > 0 && a->n_requests < 8) {
                snprintf(a->requests[a->n_requests][0], 128, "%s", component);
                snprintf(a->requests[a->n_requests][1], 128, "%s", requester);
                a->n_requests++;
        }
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 15 : 0;
}

static int request_ta_many_as_app(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        r = sd_bus_message_new_method_call(bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           "RequestTAMany");
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "(ssas)");
        if (r >= 0)
                r = many_append(m, "uid:0", userdata);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return 11;
        r = sd_bus_call(bus, m, 0, &e, NULL);
        if (r >= 0 || !sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED)) {
                fprintf(stderr, "Agent1.RequestTAMany by an app: %s\n", r >= 0 ? "allowed" : e.name);
                return 12;
        }
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(broker_e2e, agent_request_ta_many_answers_each_request_on_its_own) {
        /* run_as() forks: the child writes its findings into a shared mapping */
        ManyArgs *ap = mmap(NULL, sizeof(ManyArgs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0), a;
        bool mine1 = false, mine3 = false;

        cr_assert_neq(ap, MAP_FAILED);
        *ap = (ManyArgs){ .component = stack.demo_component };

        cr_assert_eq(run_as(stack.uid_app, stack.gid_app, request_ta_many_as_app, stack.demo_component), 0,
                     "an app reached Agent1.RequestTAMany (see stderr)");
        cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, request_ta_many_as_broker, ap), 0,
                     "RequestTAMany as the broker failed (see stderr)");
        a = *ap;
        munmap(ap, sizeof(ManyArgs));
        cr_assert_eq(a.n_answers, 4, "one answer per request");
        /* the good ones: the TAM to contact, no error */
        cr_assert_str_eq(a.answers[0][0], stack.tam_uri);
        cr_assert_str_eq(a.answers[0][1], "");
        cr_assert_str_eq(a.answers[3][0], stack.tam_uri);
        cr_assert_str_eq(a.answers[3][1], "");
        /* the bad ones: named errors of their own */
        cr_assert_str_eq(a.answers[1][0], "");
        cr_assert_str_eq(a.answers[1][1], "org.teepkit.Error.InvalidComponent");
        cr_assert_str_eq(a.answers[2][0], "");
        cr_assert_neq(a.answers[2][1][0], '\0', "a bad requester was accepted");
        cr_assert_str_eq(a.limit_error, "org.teepkit.Error.LimitExceeded");
        /* each request belongs to its own requester; nothing else was recorded */
        cr_assert_eq(a.n_requests, 2, "%zu requests recorded", a.n_requests);
        for (size_t i = 0; i < a.n_requests; i++) {
                cr_assert_str_eq(a.requests[i][0], stack.demo_component);
                mine1 |= strcmp(a.requests[i][1], "uid:5001") == 0;
                mine3 |= strcmp(a.requests[i][1], "uid:5003") == 0;
        }
        cr_assert(mine1 && mine3, "the requests are not owned by their requesters");
        broker_exits_cleanly();
}

/* ---- the broker as a process, and its bus API against its XML ---- */

/* run/broker.pid is the `timeout` wrapper; the broker is its only child. 0 when gone. */
static pid_t broker_pid(void) {
        _cleanup_free_ uint8_t *pidtext = NULL, *children = NULL;
        char path[128];
        size_t len;
        pid_t wrapper;

        if (read_full_file(stack_path(&stack, "run/broker.pid"), 64, &pidtext, &len) < 0)
                return 0;
        wrapper = (pid_t)strtol((char *)pidtext, NULL, 10);
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)wrapper, (int)wrapper);
        if (wrapper <= 1 || read_full_file(path, 4096, &children, &len) < 0)
                return 0;
        return (pid_t)strtol((char *)children, NULL, 10);
}

Test(broker_e2e, the_broker_runs_confined) {
        _cleanup_free_ char *status = NULL, *cmdline = NULL;
        char path[128];
        pid_t pid = broker_pid();

        cr_assert_gt(pid, 1);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        cmdline = read_text(path);
        cr_assert(strstr(cmdline, "teep-brokerd"), "pid %d is %s", (int)pid, cmdline);
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        status = read_text(path);
        cr_assert(strstr(status, "\nSeccomp:\t2\n"), "no seccomp filter:\n%s", status);
        cr_assert(strstr(status, "\nNoNewPrivs:\t1\n"), "%s", status);
        {
                char uid[64];
                snprintf(uid, sizeof(uid), "\nUid:\t%u\t%u\t%u\t%u\n", (unsigned)stack.uid_broker,
                         (unsigned)stack.uid_broker, (unsigned)stack.uid_broker, (unsigned)stack.uid_broker);
                cr_assert(strstr(status, uid), "not running as teep-broker:\n%s", status);
        }
        broker_exits_cleanly();
}

/* Every method, property and signal the XML names (per interface) is what the broker serves:
 * "kind:Name" tokens, sorted, so the order of declaration does not matter. */
static int cmp_token(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void xml_members(const char *xml, const char *iface, char *out, size_t n) {
        char start[160], *tokens[128];
        const char *p, *end;
        size_t used = 0, nt = 0;

        out[0] = '\0';
        snprintf(start, sizeof(start), "<interface name=\"%s\">", iface);
        p = strstr(xml, start);
        cr_assert_not_null(p, "%s is not in the XML", iface);
        end = strstr(p, "</interface>");
        cr_assert_not_null(end);
        while ((p = strstr(p, " name=\"")) && p < end) {
                const char *kind = p;
                while (kind > xml && kind[-1] != '<')
                        kind--;
                p += 7;
                if ((strncmp(kind, "method ", 7) == 0 || strncmp(kind, "property ", 9) == 0 ||
                     strncmp(kind, "signal ", 7) == 0) &&
                    nt < ELEMENTSOF(tokens))
                        cr_assert_geq(asprintf(&tokens[nt++], "%.*s:%.*s", (int)strcspn(kind, " "), kind,
                                               (int)strcspn(p, "\""), p),
                                      0);
        }
        qsort(tokens, nt, sizeof(char *), cmp_token);
        for (size_t i = 0; i < nt; i++) {
                used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s ", tokens[i]);
                free(tokens[i]);
        }
}

/* Agent1 answers the broker's uid only: its introspection, read as teep-broker, into a shared page */
static int introspect_agent_as_broker(void *userdata) {
        char *out = userdata;
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        const char *xml;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        r = sd_bus_call_method(bus, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, "org.freedesktop.DBus.Introspectable",
                               "Introspect", NULL, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &xml);
        if (r >= 0)
                snprintf(out, 65536, "%s", xml);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 11 : 0;
}

Test(broker_e2e, the_live_api_is_the_documented_xml) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *jreply = NULL, *r2 = NULL;
        _cleanup_free_ char *xml = NULL;
        const char *live, *jlive;
        char path[512], want[4096];
        const char *ifaces[] = { TEEP_BROKER_INTERFACE, TEEP_BROKER_JOB_INTERFACE };
        const char *o;

        snprintf(path, sizeof(path), "%s/dbus/org.teepkit.Broker1.xml", getenv("TEEP_SOURCE_ROOT") ?: ".");
        xml = read_text(path);
        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_geq(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH,
                                         "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &reply, NULL),
                      0);
        cr_assert_geq(sd_bus_message_read(reply, "s", &live), 0);
        /* a job object to introspect */
        cr_assert_geq(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                         "RequestPolicyCheck", NULL, &r2, "a{sv}", 0),
                      0);
        cr_assert_geq(sd_bus_message_read(r2, "o", &o), 0);
        cr_assert_geq(sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, o, "org.freedesktop.DBus.Introspectable",
                                         "Introspect", NULL, &jreply, NULL),
                      0);
        cr_assert_geq(sd_bus_message_read(jreply, "s", &jlive), 0);

        for (size_t i = 0; i < ELEMENTSOF(ifaces); i++) {
                const char *src = i == 0 ? live : jlive;
                char got[4096];
                xml_members(xml, ifaces[i], want, sizeof(want));
                xml_members(src, ifaces[i], got, sizeof(got));
                cr_assert_str_eq(got, want, "%s: the broker serves\n  %s\nthe XML says\n  %s", ifaces[i], got, want);
                cr_assert_gt(strlen(want), 20);
        }

        /* and the agent's internal interface (RequestsChanged among it) */
        {
                _cleanup_free_ char *axml = NULL;
                char *live_agent = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                char got[4096];

                cr_assert_neq(live_agent, MAP_FAILED);
                snprintf(path, sizeof(path), "%s/dbus/org.teepkit.Agent1.xml", getenv("TEEP_SOURCE_ROOT") ?: ".");
                axml = read_text(path);
                cr_assert_eq(run_as(stack.uid_broker, stack.gid_broker, introspect_agent_as_broker, live_agent), 0,
                             "introspecting Agent1 as teep-broker failed");
                xml_members(axml, TEEP_AGENT_INTERFACE, want, sizeof(want));
                xml_members(live_agent, TEEP_AGENT_INTERFACE, got, sizeof(got));
                munmap(live_agent, 65536);
                cr_assert_str_eq(got, want, "Agent1: the agent serves\n  %s\nthe XML says\n  %s", got, want);
                cr_assert(strstr(want, "signal:RequestsChanged"), "%s", want);
        }
        broker_exits_cleanly();
}

/* ---- a slow TAM ---- */

static char slow_conf[64];

static void up_slow(void) {
        int fd;

        snprintf(slow_conf, sizeof(slow_conf), "/tmp/teepkit-broker-slow-XXXXXX.conf");
        fd = mkstemps(slow_conf, 5);
        cr_assert_geq(fd, 0);
        dprintf(fd, "[Broker]\nTimeoutSec=2s\nConnectTimeoutSec=2s\n");
        close(fd);
        (void)chmod(slow_conf, 0644);
        up_with((const char *const[]){ "--conf", slow_conf, "--tam-arg", "--fault=slow:30", NULL });
}

static void down_slow(void) {
        down();
        (void)unlink(slow_conf);
}

TestSuite(broker_slow_tam, .init = up_slow, .fini = down_slow, .timeout = 240);

Test(broker_slow_tam, a_slow_tam_fails_the_job_in_bounded_time) {
        _cleanup_free_ char *err = NULL, *st = NULL;
        time_t start = time(NULL);

        cr_assert_eq(ctl(APP, NULL, &err, "request", stack.demo_component, NULL, NULL), 1);
        cr_assert(strstr(err, "TamUnreachable"), "%s", err);
        cr_assert(strstr(err, "imed out") || strstr(err, "imeout"), "not a timeout: %s", err);
        cr_assert_lt(time(NULL) - start, 25, "took %ld s with TimeoutSec=2s", (long)(time(NULL) - start));
        cr_assert_eq(n_installed(), 0);
        /* the broker kept serving meanwhile and after */
        cr_assert_eq(ctl(APP2, &st, NULL, "status", NULL, NULL, NULL), 0);
        cr_assert(strstr(st, "Sessions: none running"), "%s", st);
        broker_exits_cleanly();
}

/* ---- policy checks asked for at the same time ---- */

#define N_CHECKS 6

static char *check_paths[N_CHECKS];
static unsigned checks_finished, checks_checked;

static int check_on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        char **slot = userdata;
        const char *path;
        *slot = strdup(!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "o", &path) >= 0 ? path
                                                                                                          : "error");
        return 0;
}

static int check_on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *result, *name, *message, *path = sd_bus_message_get_path(m);

        if (sd_bus_message_read(m, "sss", &result, &name, &message) < 0)
                return 0;
        for (unsigned i = 0; i < N_CHECKS; i++)
                if (check_paths[i] && strcmp(check_paths[i], path) == 0) {
                        checks_finished++;
                        if (strcmp(result, "checked") == 0)
                                checks_checked++;
                        else
                                fprintf(stderr, "%s: %s %s %s\n", path, result, name, message);
                }
        return 0;
}

static int concurrent_checks(void *userdata) {
        sd_bus *bus = NULL;
        time_t end = time(NULL) + 120;

        if (sd_bus_open_system(&bus) < 0 ||
            sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, NULL, TEEP_BROKER_JOB_INTERFACE, "Finished",
                                check_on_finished, NULL) < 0)
                return 10;
        for (unsigned i = 0; i < N_CHECKS; i++)
                if (sd_bus_call_method_async(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                             "RequestPolicyCheck", check_on_reply, &check_paths[i], "a{sv}", 0) < 0)
                        return 11;
        while (checks_finished < N_CHECKS && time(NULL) < end) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 12;
                if (r == 0)
                        (void)sd_bus_wait(bus, 1000000);
        }
        if (checks_finished < N_CHECKS)
                return 13;
        /* Every check saw the TAM: none was told "nothing to do" because another check had
         * walked the agent's TAM list meanwhile. */
        if (checks_checked != N_CHECKS)
                return 14;
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(broker_e2e, policy_checks_at_the_same_time_all_reach_the_tam) {
        unsigned rounds;
        int r;

        r = run_as(APP, concurrent_checks, NULL);
        cr_assert_eq(r, 0, "step %d failed (see stderr)", r);
        /* one round for the first, one shared by those that came while it ran */
        rounds = count_lines_with(stack_path(&stack, "log/broker.log"), "policy check: asking ");
        cr_assert_geq(rounds, 1);
        cr_assert_leq(rounds, 2, "%u rounds for %d checks", rounds, N_CHECKS);
        broker_exits_cleanly();
}

/* ---- the agent rests between sessions (IdleTimeoutSec=) and bus activation brings it back ---- */

static void up_rest(void) {
        up_with((const char *const[]){ "--agent-idle", "1s", NULL });
}

TestSuite(broker_agent_rest, .init = up_rest, .fini = down, .timeout = 240);

/* Until org.teepkit.Agent1 has no owner (the agent rested), at most 10 s: false when it stayed. */
static bool agent_rested(void) {
        for (int i = 0; i < 200; i++) {
                if (stack_bus_name_pid("org.teepkit.Agent1") <= 0)
                        return true;
                usleep(50 * 1000);
        }
        return false;
}

Test(broker_agent_rest, the_agent_rests_and_the_next_call_brings_it_back) {
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *o3 = NULL, *st = NULL, *log = NULL, *sched = NULL, *key = NULL,
                            *enrolled = NULL;
        char want[65], got[65], line[128];
        pid_t first, second;

        demo_digest(want);
        cr_assert_eq(ctl(APP, &o1, NULL, "request", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(o1, "installed"), "%s", o1);
        first = stack_bus_name_pid("org.teepkit.Agent1");
        cr_assert_gt(first, 1, "the request did not start the agent");

        /* no calls for a second: it gives the name back and exits */
        cr_assert(agent_rested(), "teep-agentd (pid %d) is still up after 10 s without calls", (int)first);
        /* the broker keeps what it last said: the TC is still shown, and the agent's version */
        cr_assert(installed(stack.demo_component, NULL, got), "the broker forgot the TC while the agent rests");
        cr_assert_str_eq(got, want);
        cr_assert_eq(ctl(APP2, &st, NULL, "status", NULL, NULL, NULL), 0);
        cr_assert(strstr(st, "Agent: teep-agentd "), "%s", st);
        cr_assert_neq(access(stack_path(&stack, "var/lib/teepkit/agent/policy-checks"), F_OK), 0,
                      "no policy check ran yet, so no schedule");
        /* the device key is the agent's to give: asking for it starts a resting agent */
        cr_assert_eq(ctl(APP2, &key, NULL, "agent-key", NULL, NULL, NULL), 0);
        enrolled = read_text(stack_path(&stack, "tam/devices/device.pem"));
        cr_assert_str_eq(key, enrolled);
        cr_assert(agent_rested());

        /* the next call starts a new instance, confined like the first */
        cr_assert_eq(ctl(APP2, &o2, NULL, "policy-check", NULL, NULL, NULL), 0);
        cr_assert(strstr(o2, "policy check done"), "%s", o2);
        second = stack_bus_name_pid("org.teepkit.Agent1");
        if (second > 1) { /* it may have rested again already */
                cr_assert_neq(second, first);
                cr_assert(stack_proc_status_has(second, "Seccomp:\t2"), "the activated agent has no seccomp filter");
                snprintf(line, sizeof(line), "Uid:\t%u\t%u\t%u\t%u", stack.uid_agent, stack.uid_agent, stack.uid_agent,
                         stack.uid_agent);
                cr_assert(stack_proc_status_has(second, line), "the activated agent is not teep-agent");
        }
        cr_assert(agent_rested());
        /* the schedule it keeps across instances is on disk */
        sched = read_text(stack_path(&stack, "var/lib/teepkit/agent/policy-checks"));
        cr_assert_not_null(sched, "the resting agent did not write its policy-check schedule");
        cr_assert(strstr(sched, stack.tam_uri), "%s", sched);

        /* removal through a fourth instance: the state came through every rest */
        cr_assert_eq(ctl(APP, &o3, NULL, "unrequest", stack.demo_component, NULL, NULL), 0);
        cr_assert(strstr(o3, "removed"), "%s", o3);
        cr_assert(!installed(stack.demo_component, NULL, NULL));
        cr_assert_eq(store_files_with_digest(want, NULL), 0, "still in the store");

        /* every instance rested cleanly, without a sanitizer report on the way out */
        cr_assert(agent_rested());
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_not_null(log);
        cr_assert_geq(count_lines_with(stack_path(&stack, "log/agent.log"), "ready on org.teepkit.Agent1"), 4, "%s", log);
        cr_assert_geq(count_lines_with(stack_path(&stack, "log/agent.log"), ": resting"), 4, "%s", log);
        cr_assert_null(strstr(log, "Sanitizer"), "teep-agentd: a sanitizer report:\n%s", log);
        cr_assert_null(strstr(log, "runtime error:"), "teep-agentd: undefined behaviour:\n%s", log);
        cr_assert_null(strstr(log, "cannot lock"), "%s", log);
        broker_exits_cleanly();
}

/* ---- payload downloads for the agent (PayloadFetcher1.Fetch), streamed through a pipe ---- */

#define MiB (1024u * 1024u)

static PayloadServer *payloads;

static void up_fetch(void) {
        up();
        payloads = payload_server_start();
        cr_assert_not_null(payloads);
}

static void down_fetch(void) {
        payload_server_stop(payloads);
        payloads = NULL;
        down();
}

TestSuite(broker_fetch, .init = up_fetch, .fini = down_fetch, .timeout = 240);

/* What the child (as the agent's user) did and saw; in a shared mapping. */
typedef struct FetchRun {
        char uri[256];
        uint64_t max;
        uint64_t close_after;   /* close the pipe after this many bytes (0: read to the end) */
        uint64_t gate_after;    /* open the server's gate once this many bytes were read (0: never) */
        unsigned wait_ms;       /* before the first read: a reader that does not read */
        bool slow;              /* a short sleep after each read, so the pipe fills */

        bool answered;
        char error_name[128];
        char error_message[512];
        uint64_t size;
        bool is_pipe;
        bool blocking;
        uint64_t got;
        bool bytes_ok;
        bool eof;               /* read() said end of file */
        int read_errno;         /* or this (ETIMEDOUT: nothing for 30 s) */
} FetchRun;

static int fetch_as_agent(void *userdata) {
        FetchRun *f = userdata;
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        static uint8_t buf[64 * 1024];
        struct stat st;
        int fd, r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_FETCHER_INTERFACE, "Fetch", &e,
                               &reply, "st", f->uri, f->max);
        if (r < 0) {
                snprintf(f->error_name, sizeof(f->error_name), "%s", e.name ?: strerror(-r));
                snprintf(f->error_message, sizeof(f->error_message), "%s", e.message ?: "");
                sd_bus_error_free(&e);
                sd_bus_flush_close_unref(bus);
                return 0;
        }
        if (sd_bus_message_read(reply, "ht", &fd, &f->size) < 0)
                return 11;
        f->answered = true;
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return 12;
        sd_bus_message_unref(reply);
        f->is_pipe = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
        f->blocking = !(fcntl(fd, F_GETFL) & O_NONBLOCK);
        f->bytes_ok = true;
        if (f->wait_ms)
                usleep(f->wait_ms * 1000u);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                size_t want = sizeof(buf);
                ssize_t n;

                if (f->close_after && f->got >= f->close_after)
                        break;
                if (f->close_after && f->close_after - f->got < want)
                        want = (size_t)(f->close_after - f->got);
                /* bounded: a broker that neither writes nor closes fails the test, not hangs it */
                if (poll(&p, 1, 30000) <= 0) {
                        f->read_errno = ETIMEDOUT;
                        break;
                }
                n = read(fd, buf, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        f->read_errno = errno;
                        break;
                }
                if (n == 0) {
                        f->eof = true;
                        break;
                }
                if (!payload_bytes_match(buf, (size_t)n, f->got))
                        f->bytes_ok = false;
                f->got += (uint64_t)n;
                if (f->gate_after && f->got >= f->gate_after)
                        payload_server_open_gate(payloads);
                if (f->slow)
                        usleep(500);
        }
        close(fd);
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* Fetch path from the payload server as the agent's user; the result is returned by value. */
static FetchRun fetch(const char *path, uint64_t max, FetchRun in) {
        FetchRun *shared = mmap(NULL, sizeof(FetchRun), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        FetchRun out;
        int r;

        cr_assert_neq(shared, MAP_FAILED);
        *shared = in;
        snprintf(shared->uri, sizeof(shared->uri), "http://127.0.0.1:%u%s", payload_server_port(payloads), path);
        shared->max = max;
        r = run_as(stack.uid_agent, stack.gid_agent, fetch_as_agent, shared);
        out = *shared;
        munmap(shared, sizeof(FetchRun));
        cr_assert_eq(r, 0, "the agent's side of Fetch %s failed at step %d", path, r);
        return out;
}

/* The broker still serves: a small payload arrives whole. */
static void fetch_works_again(void) {
        FetchRun f = fetch("/bytes/1048576", 64 * MiB, (FetchRun){});

        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.got, 1 * MiB);
        cr_assert(f.bytes_ok && f.eof);
}

Test(broker_fetch, a_payload_streams_to_the_agent_while_it_downloads) {
        _cleanup_free_ char *log = NULL;
        FetchRun f;

        /* The server stops after 2 MiB until the agent has read 1 MiB: a broker that answered only
         * after the whole download would never get the rest (the gate gives up after 10 s). */
        f = fetch("/gate/8388608/2097152", 64 * MiB, (FetchRun){ .gate_after = 1 * MiB, .slow = true });
        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert(f.is_pipe, "the payload is not a pipe");
        cr_assert(f.blocking, "the agent's end is non-blocking");
        cr_assert_eq(f.size, 8 * MiB, "size %" PRIu64, f.size);
        cr_assert_eq(f.read_errno, 0, "%s", strerror(f.read_errno));
        cr_assert(f.eof);
        cr_assert_eq(f.got, 8 * MiB, "%" PRIu64 " bytes", f.got);
        cr_assert(f.bytes_ok, "the bytes differ from the ones served");
        cr_assert(payload_server_wait_ended(payloads, 1, 5000));
        cr_assert_eq(payload_server_stats(payloads).ended_whole, 1);
        log = broker_log_with("/gate/8388608/2097152: 8388608 bytes streamed to the agent");
        cr_assert(strstr(log, "/gate/8388608/2097152: 8388608 bytes streamed to the agent"), "%s", log);
        broker_exits_cleanly();
}

Test(broker_fetch, not_found_is_tam_unreachable) {
        FetchRun f = fetch("/missing.bin", 64 * MiB, (FetchRun){});

        cr_assert(!f.answered);
        cr_assert_str_eq(f.error_name, TEEP_ERROR_TAM_UNREACHABLE);
        cr_assert(strstr(f.error_message, "HTTP 404"), "%s", f.error_message);
        fetch_works_again();
        broker_exits_cleanly();
}

Test(broker_fetch, an_announced_size_above_max_is_limit_exceeded) {
        FetchRun f = fetch("/bytes/2097152", 1 * MiB, (FetchRun){});

        cr_assert(!f.answered, "answered with %" PRIu64 " bytes", f.size);
        cr_assert_str_eq(f.error_name, TEEP_ERROR_LIMIT_EXCEEDED, "%s: %s", f.error_name, f.error_message);
        cr_assert(strstr(f.error_message, "1048576"), "%s", f.error_message);
        fetch_works_again();
        broker_exits_cleanly();
}

Test(broker_fetch, a_server_that_closes_early_gives_a_short_stream) {
        _cleanup_free_ char *log = NULL;
        FetchRun f = fetch("/cut/4194304/1048576", 64 * MiB, (FetchRun){});

        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.size, 4 * MiB);
        cr_assert(f.eof, "no end of file (%s)", strerror(f.read_errno));
        cr_assert_gt(f.got, 0);
        cr_assert_leq(f.got, 1 * MiB, "%" PRIu64 " bytes: more than the server sent", f.got);
        cr_assert(f.bytes_ok);
        log = broker_log_with("/cut/4194304/1048576: cut after ");
        cr_assert(strstr(log, "/cut/4194304/1048576: cut after "), "%s", log);
        fetch_works_again();
        broker_exits_cleanly();
}

Test(broker_fetch, an_agent_that_closes_the_pipe_stops_the_download) {
        _cleanup_free_ char *log = NULL;
        PayloadServerStats st;
        FetchRun f = fetch("/bytes/62914560", 64 * MiB, (FetchRun){ .close_after = 1 * MiB });

        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.got, 1 * MiB);
        cr_assert(f.bytes_ok);
        /* the broker drops the connection: the server does not send all 60 MiB */
        cr_assert(payload_server_wait_ended(payloads, 1, 20000), "the server is still sending");
        st = payload_server_stats(payloads);
        cr_assert_eq(st.ended_early, 1, "the download went on to the end");
        cr_assert_lt(st.served, 60 * MiB);
        log = broker_log_with("/bytes/62914560: the agent closed the pipe after ");
        cr_assert(strstr(log, "/bytes/62914560: the agent closed the pipe after "), "%s", log);
        fetch_works_again();
        broker_exits_cleanly();
}

Test(broker_fetch, no_content_length_is_size_uint64_max) {
        FetchRun f = fetch("/chunked/3145728", 64 * MiB, (FetchRun){ .slow = true });

        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.size, UINT64_MAX, "size %" PRIu64, f.size);
        cr_assert(f.eof);
        cr_assert_eq(f.got, 3 * MiB);
        cr_assert(f.bytes_ok);
        broker_exits_cleanly();
}

Test(broker_fetch, an_empty_payload_is_an_empty_closed_pipe) {
        FetchRun f = fetch("/bytes/0", 64 * MiB, (FetchRun){});

        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.size, 0);
        cr_assert(f.eof);
        cr_assert_eq(f.got, 0);
        broker_exits_cleanly();
}

/* ---- an agent that stops reading ---- */

static char stall_conf[64];

static void up_stall(void) {
        int fd;

        snprintf(stall_conf, sizeof(stall_conf), "/tmp/teepkit-broker-stall-XXXXXX.conf");
        fd = mkstemps(stall_conf, 5);
        cr_assert_geq(fd, 0);
        dprintf(fd, "[Broker]\nTimeoutSec=2s\n");
        close(fd);
        (void)chmod(stall_conf, 0644);
        up_with((const char *const[]){ "--conf", stall_conf, NULL });
        payloads = payload_server_start();
        cr_assert_not_null(payloads);
}

static void down_stall(void) {
        down_fetch();
        (void)unlink(stall_conf);
}

TestSuite(broker_fetch_stall, .init = up_stall, .fini = down_stall, .timeout = 240);

Test(broker_fetch_stall, a_pipe_left_full_ends_the_download_within_the_timeout) {
        _cleanup_free_ char *log = NULL;
        FetchRun f;

        /* the agent reads nothing for 5 s, TimeoutSec=2s: then it finds a short stream, not a hang */
        f = fetch("/bytes/16777216", 64 * MiB, (FetchRun){ .wait_ms = 5000 });
        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.size, 16 * MiB);
        cr_assert(f.eof, "no end of file (%s)", strerror(f.read_errno));
        cr_assert_lt(f.got, 16 * MiB);
        cr_assert(f.bytes_ok);
        log = broker_log_with("/bytes/16777216: cut after ");
        cr_assert(strstr(log, "/bytes/16777216: cut after "), "%s", log);
        fetch_works_again();
        broker_exits_cleanly();
}

Test(broker_fetch_stall, a_download_that_ended_with_bytes_held_is_cut_when_the_agent_stops_reading) {
        _cleanup_free_ char *log = NULL;
        FetchRun f;

        /* 512 bytes more than the pipe holds: the download is over before the agent reads, with
         * the broker holding the rest; it holds it no longer than TimeoutSec= either. (Should
         * the last bytes arrive while the pipe is full, the transfer pauses and libcurl's
         * timeout cuts it instead: the same short stream for the agent.) */
        f = fetch("/bytes/1049088", 64 * MiB, (FetchRun){ .wait_ms = 5000 });
        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert_eq(f.size, 1049088);
        cr_assert(f.eof, "no end of file (%s)", strerror(f.read_errno));
        cr_assert_lt(f.got, 1049088);
        cr_assert(f.bytes_ok);
        log = broker_log_with("/bytes/1049088: cut after ");
        cr_assert(strstr(log, "/bytes/1049088: cut after "), "%s", log);
        fetch_works_again();
        broker_exits_cleanly();
}

/* SIGTERM while a download streams: the agent finds a short stream, the broker exits cleanly. */
static void *stop_broker_at_the_gate(void *userdata) {
        pid_t pid = *(pid_t *)userdata;

        for (int i = 0; i < 2000; i++) {
                if (payload_server_stats(payloads).served >= 2 * MiB) {
                        (void)kill(pid, SIGTERM);
                        break;
                }
                usleep(5 * 1000);
        }
        return NULL;
}

Test(broker_fetch, stopping_the_broker_closes_the_pipe) {
        _cleanup_free_ char *log = NULL;
        pid_t pid = broker_pid();
        char proc[64];
        pthread_t stopper;
        FetchRun f;

        cr_assert_gt(pid, 1);
        cr_assert_eq(pthread_create(&stopper, NULL, stop_broker_at_the_gate, &pid), 0);
        /* the server waits after 2 MiB for a gate nobody opens; the broker is stopped meanwhile */
        f = fetch("/gate/8388608/2097152", 64 * MiB, (FetchRun){});
        cr_assert_eq(pthread_join(stopper, NULL), 0);
        cr_assert(f.answered, "%s: %s", f.error_name, f.error_message);
        cr_assert(f.eof, "no end of file (%s)", strerror(f.read_errno));
        cr_assert_leq(f.got, 2 * MiB);
        cr_assert(f.bytes_ok);

        snprintf(proc, sizeof(proc), "/proc/%d/cmdline", (int)pid);
        for (int i = 0; i < 200 && access(proc, F_OK) == 0; i++)
                usleep(50 * 1000);
        log = broker_log_with("/gate/8388608/2097152: cut after ");
        cr_assert(strstr(log, "/gate/8388608/2097152: cut after "), "%s", log);
        cr_assert(strstr(log, "teep-brokerd is stopping"), "%s", log);
        cr_assert_null(strstr(log, "Sanitizer"), "teep-brokerd: a sanitizer report:\n%s", log);
        cr_assert_null(strstr(log, "runtime error:"), "teep-brokerd: undefined behaviour:\n%s", log);
        cr_assert(strstr(log, "stopping on"), "teep-brokerd did not stop cleanly:\n%s", log);
}
