/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-limits.c: resource limits on the real stack — a flooding client, huge bus messages, thousands of requests */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus-util.h"
#include "fileio.h"
#include "harness.h"
#include "macro.h"

/*
 * docs/limits.md lists every limit; these tests push the real daemons (tools/devstack: private
 * dbus-daemon, three users, teep-tam on 127.0.0.1) past the ones a local user can reach and
 * check that each answers with its named error, that another user is still served, and that
 * the daemons' memory stays bounded.
 */

#define FLOOD_CALLS 2000
#define MANY_REQUESTS 1100      /* past the agent's 1024 per requester */
#define AGENT_PER_REQUESTER 1024
/* How much a daemon's VmRSS may grow over one test. Sanitizer builds keep freed memory in
 * ASan's quarantine and caches (hundreds of MiB after a few thousand state rewrites), so there
 * the bound only catches a runaway; the plain build measures the daemons themselves. */
#ifdef TEEP_SANITIZED
#define RSS_GROWTH_MAX_KIB (2048 * 1024)
#else
#define RSS_GROWTH_MAX_KIB (96 * 1024)
#endif

static Stack stack;

static void up(void) {
        const char *why = NULL;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, NULL), 0, "tools/devstack up failed");
        cr_assert(stack.distinct_users);
}

static void down(void) {
        stack_down(&stack);
}

TestSuite(limits, .init = up, .fini = down, .timeout = 600);

#define APP stack.uid_app, stack.gid_app
#define APP2 stack.uid_app2, stack.gid_app2

static long rss_kib(pid_t pid) {
        char path[64], *text = NULL, *p;
        size_t len;
        long kib = -1;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (read_full_file(path, 1 << 16, (uint8_t **)&text, &len) < 0)
                return -1;
        p = strstr(text, "\nVmRSS:");
        if (p)
                kib = strtol(p + 7, NULL, 10);
        free(text);
        return kib;
}

static pid_t daemon_pid(const char *name) {
        pid_t pid = stack_bus_name_pid(name);
        cr_assert_gt(pid, 1, "%s has no owner on the bus", name);
        return pid;
}

/* Shared with the forked clients (run_as): counts they report back. */
typedef struct Shared {
        volatile int sent;           /* the flood is on the wire */
        volatile int done;           /* the flood client is finished */
        unsigned replies, accepted, access_denied, busy, bus_limited, bus_limited_phase1, other_error;
        unsigned finished, finished_ok, finished_limit, finished_other;
        char other[256];
        uint64_t probe_ms;           /* the other user's round trip during the flood */
        int probe_result;
} Shared;

static Shared *shared;

static void shared_setup(void) {
        shared = mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(shared, MAP_FAILED);
        memset(shared, 0, sizeof(*shared));
}

/* ---- jobs: call, reply, Finished ---- */

typedef struct Calls {
        unsigned n;
        unsigned sent;
        char **paths;   /* job path per call, "error" on a refused call */
        bool *finished;
} Calls;

static Calls calls;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        char **slot = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;

        shared->replies++;
        if (e) {
                *slot = strdup("error");
                if (sd_bus_error_has_name(e, TEEP_ERROR_ACCESS_DENIED))
                        shared->access_denied++;
                else if (sd_bus_error_has_name(e, TEEP_ERROR_BUSY))
                        shared->busy++;
                else if (sd_bus_error_has_name(e, SD_BUS_ERROR_LIMITS_EXCEEDED))
                        shared->bus_limited++; /* dbus-daemon's own limit, before the broker */
                else {
                        shared->other_error++;
                        snprintf(shared->other, sizeof(shared->other), "%s: %s", e->name, e->message);
                }
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) >= 0) {
                *slot = strdup(path);
                shared->accepted++;
        }
        return 0;
}

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *result, *name, *message, *path = sd_bus_message_get_path(m);

        if (!path || sd_bus_message_read(m, "sss", &result, &name, &message) < 0)
                return 0;
        for (unsigned i = 0; i < calls.n; i++)
                if (calls.paths[i] && !calls.finished[i] && strcmp(calls.paths[i], path) == 0) {
                        calls.finished[i] = true;
                        shared->finished++;
                        if (!*name)
                                shared->finished_ok++;
                        else if (strcmp(name, TEEP_ERROR_LIMIT_EXCEEDED) == 0)
                                shared->finished_limit++;
                        else if (strcmp(name, TEEP_ERROR_NOT_AVAILABLE) != 0) {
                                /* NotAvailable is the expected end: the TAM has none of these */
                                shared->finished_other++;
                                snprintf(shared->other, sizeof(shared->other), "%s: %s %s", path, name, message);
                        }
                }
        return 0;
}

static int request_async(sd_bus *bus, const char *component, char **slot) {
        calls.sent++;
        return sd_bus_call_method_async(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                        "RequestTA", on_reply, slot, "sasa{sv}", component, 0, 0);
}

/* Calls without a reply yet, and accepted jobs not finished yet. */
static void outstanding(unsigned *ret_unreplied, unsigned *ret_unfinished) {
        unsigned unreplied = 0, unfinished = 0;
        for (unsigned i = 0; i < calls.sent; i++)
                if (!calls.paths[i])
                        unreplied++;
                else if (strcmp(calls.paths[i], "error") != 0 && !calls.finished[i])
                        unfinished++;
        *ret_unreplied = unreplied;
        *ret_unfinished = unfinished;
}

/* Process the bus until at most max_unreplied calls wait for a reply and at most max_unfinished
 * jobs are unfinished. (dbus-daemon itself allows 128 pending replies per connection.) */
static int pump(sd_bus *bus, uint64_t deadline_ms, unsigned max_unreplied, unsigned max_unfinished) {
        for (;;) {
                unsigned unreplied, unfinished;
                int r;
                outstanding(&unreplied, &unfinished);
                if (unreplied <= max_unreplied && unfinished <= max_unfinished)
                        return 0;
                if (stack_now_ms() > deadline_ms)
                        return -ETIMEDOUT;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        (void)sd_bus_wait(bus, 500000);
        }
}

static sd_bus *client_bus(void) {
        sd_bus *bus = NULL;
        if (sd_bus_open_system(&bus) < 0)
                return NULL;
        if (sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, NULL, TEEP_BROKER_JOB_INTERFACE, "Finished", on_finished,
                                NULL) < 0)
                return NULL;
        return bus;
}

static void calls_init(unsigned n) {
        calls.n = n;
        calls.paths = calloc(n, sizeof(char *));
        calls.finished = calloc(n, sizeof(bool));
}

/* ---- (a) one client floods RequestTA ---- */

/*
 * Two ways to flood from one connection: (1) all calls on the wire at once, which dbus-daemon
 * itself cuts at 128 pending replies per connection (LimitsExceeded); (2) pipelined, 100 in
 * flight, as fast as the broker answers: the broker's own limit of 256 unfinished jobs per user
 * answers AccessDenied.
 */
static int flood(void *userdata) {
        sd_bus *bus = client_bus();
        uint64_t deadline = stack_now_ms() + 300 * 1000;
        char component[96];
        int r;

        if (!bus)
                return 10;
        calls_init(2 * FLOOD_CALLS);
        for (unsigned i = 0; i < FLOOD_CALLS; i++) {
                snprintf(component, sizeof(component), "limits/flood/at-once-%u/ta", i);
                if (request_async(bus, component, &calls.paths[calls.sent]) < 0)
                        return 11;
        }
        if (sd_bus_flush(bus) < 0)
                return 12;
        r = pump(bus, deadline, 0, UINT_MAX);
        if (r < 0)
                return 13;
        shared->bus_limited_phase1 = shared->bus_limited;
        for (unsigned i = 0; i < FLOOD_CALLS; i++) {
                r = pump(bus, deadline, 100, UINT_MAX);
                if (r < 0)
                        return 14;
                snprintf(component, sizeof(component), "limits/flood/pipelined-%u/ta", i);
                if (request_async(bus, component, &calls.paths[calls.sent]) < 0)
                        return 15;
                if (i == FLOOD_CALLS / 4)
                        shared->sent = 1; /* the other user's probe goes now */
        }
        r = pump(bus, deadline, 0, 0);
        if (r < 0) {
                fprintf(stderr, "flood: %u calls, %u replies, %u jobs finished: %s\n", calls.sent, shared->replies,
                        shared->finished, strerror(-r));
                return 16;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

static void *flood_thread(void *userdata) {
        int *rc = userdata;
        *rc = run_as(APP, flood, NULL);
        shared->done = 1;
        return NULL;
}

/* Another user, while the flood is on: its own RequestTA gets a job, and a property read answers. */
static int probe(void *userdata) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        char *version = NULL;
        uint64_t t0 = stack_now_ms();
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 20;
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "RequestTA", &e, &reply,
                               "sasa{sv}", "limits/probe/ta", 0, 0);
        if (r < 0) {
                fprintf(stderr, "probe: RequestTA by another user failed during the flood: %s: %s\n", e.name, e.message);
                return 21;
        }
        r = sd_bus_get_property_string(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "Version", &e,
                                       &version);
        if (r < 0)
                return 22;
        shared->probe_ms = stack_now_ms() - t0;
        free(version);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(limits, one_user_flooding_request_ta_meets_the_job_limit) {
        pid_t broker = daemon_pid(TEEP_BROKER_BUS_NAME), agent = daemon_pid(TEEP_AGENT_BUS_NAME);
        long broker_before = rss_kib(broker), agent_before = rss_kib(agent), broker_peak = 0;
        uint64_t t0 = stack_now_ms();
        pthread_t th;
        int flood_rc = -1;

        shared_setup();
        cr_assert_eq(pthread_create(&th, NULL, flood_thread, &flood_rc), 0);
        while (!shared->sent && !shared->done)
                usleep(10000);
        shared->probe_result = run_as(APP2, probe, NULL);
        while (!shared->done) {
                long now = rss_kib(broker);
                if (now > broker_peak)
                        broker_peak = now;
                usleep(100000);
        }
        pthread_join(th, NULL);

        printf("flood: %u calls in %.1f s: %u jobs, %u AccessDenied, %u Busy, %u LimitsExceeded from dbus-daemon "
               "(%u of them all-at-once), %u other; %u jobs finished (%u LimitExceeded); another user's RequestTA+Get "
               "took %" PRIu64 " ms; broker RSS %ld → peak %ld → %ld KiB, agent %ld → %ld KiB\n",
               2 * FLOOD_CALLS, (stack_now_ms() - t0) / 1000.0, shared->accepted, shared->access_denied, shared->busy,
               shared->bus_limited, shared->bus_limited_phase1, shared->other_error, shared->finished,
               shared->finished_limit, shared->probe_ms, broker_before, broker_peak, rss_kib(broker), agent_before,
               rss_kib(agent));
        cr_assert_eq(flood_rc, 0, "the flooding client failed with %d (see stderr)", flood_rc);
        cr_assert_eq(shared->replies, 2 * FLOOD_CALLS, "every call gets an answer");
        cr_assert_eq(shared->other_error, 0, "unexpected refusal: %s", shared->other);
        /* all at once: dbus-daemon's pending-reply limit; pipelined: the broker's job limit */
        cr_assert_gt(shared->bus_limited_phase1, 0, "dbus-daemon let 2000 pending calls through");
        cr_assert_eq(shared->bus_limited, shared->bus_limited_phase1, "100 in flight stay under dbus-daemon's limit");
        cr_assert_gt(shared->access_denied, 0, "never more than 256 unfinished jobs per user?");
        cr_assert_eq(shared->busy, 0, "one user cannot reach the global limit (4096) past the per-user one (256)");
        cr_assert_eq(shared->finished, shared->accepted, "every accepted job finishes");
        cr_assert_eq(shared->finished_other, 0, "a job failed unexpectedly: %s", shared->other);
        cr_assert_eq(shared->probe_result, 0, "another user was not served during the flood");
        cr_assert_lt(shared->probe_ms, 20000, "another user waited %" PRIu64 " ms", shared->probe_ms);
        cr_assert_lt(rss_kib(broker) - broker_before, RSS_GROWTH_MAX_KIB, "teep-brokerd grew by %ld KiB",
                     rss_kib(broker) - broker_before);
        cr_assert_lt(rss_kib(agent) - agent_before, RSS_GROWTH_MAX_KIB, "teep-agentd grew by %ld KiB",
                     rss_kib(agent) - agent_before);
        cr_assert_eq(daemon_pid(TEEP_BROKER_BUS_NAME), broker, "the broker restarted");
        cr_assert_eq(daemon_pid(TEEP_AGENT_BUS_NAME), agent, "the agent restarted");
}

/* ---- (b) huge bus messages ---- */

typedef struct Huge {
        const char *what;
        const char *expect; /* error name, or NULL: the bus itself refuses (any error) */
        int result;
        char got[256];
} Huge;

static int call_huge(sd_bus *bus, const char *component, char **uris, size_t n_dict, sd_bus_error *e) {
        sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                           "RequestTA");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", component);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, uris);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (size_t i = 0; i < n_dict && r >= 0; i++) {
                char key[32];
                snprintf(key, sizeof(key), "option-%zu", i);
                r = sd_bus_message_append(m, "{sv}", key, "s", "value");
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 120 * 1000000ull, e, &reply);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        return r;
}

static int huge_calls(void *userdata) {
        Huge *h = userdata;
        static char *no_uris[] = { NULL };
        size_t big = 100 * 1024, n_uris = 10000;
        char *component = malloc(big + 1), **uris = calloc(n_uris + 1, sizeof(char *));
        sd_bus *bus = NULL;

        if (!component || !uris || sd_bus_open_system(&bus) < 0)
                return 30;
        /* 0: a 100 KiB component name */
        memset(component, 'a', big);
        component[big] = '\0';
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                h[0].result = call_huge(bus, component, no_uris, 0, &e);
                snprintf(h[0].got, sizeof(h[0].got), "%s", e.name ?: "");
                sd_bus_error_free(&e);
        }
        /* 1: 10,000 TAM URIs */
        for (size_t i = 0; i < n_uris; i++)
                if (asprintf(&uris[i], "http://127.0.0.1:1/tam-%zu", i) < 0)
                        return 31;
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                h[1].result = call_huge(bus, "limits/huge/ta", uris, 0, &e);
                snprintf(h[1].got, sizeof(h[1].got), "%s", e.name ?: "");
                sd_bus_error_free(&e);
        }
        /* 2: an options dictionary of 100,000 entries */
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                h[2].result = call_huge(bus, "limits/huge/ta", no_uris, 100000, &e);
                snprintf(h[2].got, sizeof(h[2].got), "%s", e.name ?: "");
                sd_bus_error_free(&e);
        }
        /* 3: a 60 MiB component name: over dbus-daemon's own message limit (32 MiB by default) */
        free(component);
        big = 60u << 20;
        component = malloc(big + 1);
        if (!component)
                return 32;
        memset(component, 'a', big);
        component[big] = '\0';
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus *bus2 = NULL;
                if (sd_bus_open_system(&bus2) < 0)
                        return 33;
                h[3].result = call_huge(bus2, component, no_uris, 0, &e);
                snprintf(h[3].got, sizeof(h[3].got), "%s", e.name ?: strerror(-h[3].result));
                sd_bus_error_free(&e);
                sd_bus_close_unref(bus2);
        }
        free(component);
        for (size_t i = 0; i < n_uris; i++)
                free(uris[i]);
        free(uris);
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(limits, huge_bus_messages_get_a_named_error) {
        pid_t broker = daemon_pid(TEEP_BROKER_BUS_NAME);
        long before = rss_kib(broker);
        Huge *h = mmap(NULL, 4 * sizeof(Huge), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        sd_bus *bus = NULL;
        char *version = NULL;

        cr_assert_neq(h, MAP_FAILED);
        memset(h, 0, 4 * sizeof(Huge));
        h[0] = (Huge){ "100 KiB component name", TEEP_ERROR_INVALID_COMPONENT };
        h[1] = (Huge){ "10,000 TAM URIs", SD_BUS_ERROR_INVALID_ARGS };
        h[2] = (Huge){ "100,000 options", SD_BUS_ERROR_INVALID_ARGS };
        h[3] = (Huge){ "60 MiB message", NULL };
        cr_assert_eq(run_as(APP, huge_calls, h), 0, "the client failed");
        for (int i = 0; i < 4; i++) {
                printf("huge: %s → %s\n", h[i].what, h[i].got);
                cr_assert_lt(h[i].result, 0, "%s was accepted", h[i].what);
                if (h[i].expect)
                        cr_assert_str_eq(h[i].got, h[i].expect, "%s", h[i].what);
        }
        /* still there, still answering, not holding on to the big messages */
        cr_assert_eq(daemon_pid(TEEP_BROKER_BUS_NAME), broker, "the broker restarted");
        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_geq(sd_bus_get_property_string(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "Version",
                                                 NULL, &version),
                      0);
        free(version);
        sd_bus_flush_close_unref(bus);
        printf("huge: broker RSS %ld → %ld KiB\n", before, rss_kib(broker));
        cr_assert_lt(rss_kib(broker) - before, RSS_GROWTH_MAX_KIB, "teep-brokerd grew by %ld KiB", rss_kib(broker) - before);
        munmap(h, 4 * sizeof(Huge));
}

/* ---- (c) thousands of requests: the agent's per-requester limit ---- */

static int many(void *userdata) {
        sd_bus *bus = client_bus();
        char component[96];
        uint64_t deadline = stack_now_ms() + 400 * 1000;
        int r;

        if (!bus)
                return 40;
        calls_init(MANY_REQUESTS);
        for (unsigned i = 0; i < MANY_REQUESTS; i++) {
                /* stay under the broker's 256 unfinished jobs per user: this test is about the agent */
                r = pump(bus, deadline, 64, 150);
                if (r < 0)
                        return 41;
                snprintf(component, sizeof(component), "limits/many/tc-%u/ta", i);
                if (request_async(bus, component, &calls.paths[i]) < 0)
                        return 42;
        }
        r = pump(bus, deadline, 0, 0);
        if (r < 0) {
                fprintf(stderr, "many: %u replies, %u finished: %s\n", shared->replies, shared->finished, strerror(-r));
                return 43;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

static int one_more(void *userdata) {
        sd_bus *bus = client_bus();

        if (!bus)
                return 50;
        calls_init(1);
        if (request_async(bus, "limits/many/other-user/ta", &calls.paths[0]) < 0)
                return 51;
        return pump(bus, stack_now_ms() + 120 * 1000, 0, 0) < 0 ? 52 : 0;
}

Test(limits, thousands_of_requests_meet_the_agent_limit) {
        pid_t broker = daemon_pid(TEEP_BROKER_BUS_NAME), agent = daemon_pid(TEEP_AGENT_BUS_NAME);
        long agent_before = rss_kib(agent), broker_before = rss_kib(broker);
        uint64_t t0 = stack_now_ms();
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        unsigned n_requests = 0;

        int rc;

        shared_setup();
        rc = run_as(APP, many, NULL);
        printf("many: %u requests in %.1f s: %u jobs, %u finished, %u LimitExceeded, %u refused calls; agent RSS %ld → %ld "
               "KiB, broker %ld → %ld KiB\n",
               MANY_REQUESTS, (stack_now_ms() - t0) / 1000.0, shared->accepted, shared->finished, shared->finished_limit,
               shared->access_denied + shared->busy + shared->other_error, agent_before, rss_kib(agent), broker_before,
               rss_kib(broker));
        cr_assert_eq(rc, 0, "the client failed with %d (see stderr)", rc);
        cr_assert_eq(shared->accepted, MANY_REQUESTS, "refused: %s", shared->other);
        cr_assert_eq(shared->finished, MANY_REQUESTS);
        cr_assert_eq(shared->finished_other, 0, "a job failed unexpectedly: %s", shared->other);
        cr_assert_eq(shared->finished_limit, MANY_REQUESTS - AGENT_PER_REQUESTER,
                     "the agent keeps %d requests per requester and refuses the rest with LimitExceeded",
                     AGENT_PER_REQUESTER);

        /* the broker republishes them all, and answers quickly doing so */
        cr_assert_geq(sd_bus_open_system(&bus), 0);
        cr_assert_geq(sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "Requests",
                                          NULL, &reply, "a(ss)"),
                      0);
        cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "(ss)"), 0);
        while (sd_bus_message_skip(reply, "(ss)") > 0)
                n_requests++;
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        cr_assert_eq(n_requests, AGENT_PER_REQUESTER, "Requests lists %u", n_requests);

        /* another user is not locked out by the first one's requests */
        memset(shared, 0, sizeof(*shared));
        cr_assert_eq(run_as(APP2, one_more, NULL), 0);
        cr_assert_eq(shared->accepted, 1);
        cr_assert_eq(shared->finished_limit, 0, "another user hit the first user's limit");
        cr_assert_eq(shared->finished_other, 0, "%s", shared->other);

        cr_assert_lt(rss_kib(agent) - agent_before, RSS_GROWTH_MAX_KIB, "teep-agentd grew by %ld KiB",
                     rss_kib(agent) - agent_before);
        cr_assert_lt(rss_kib(broker) - broker_before, RSS_GROWTH_MAX_KIB, "teep-brokerd grew by %ld KiB",
                     rss_kib(broker) - broker_before);
        cr_assert_eq(daemon_pid(TEEP_AGENT_BUS_NAME), agent, "the agent restarted");
}

/* ---- finished jobs linger, but not without bound ---- */

#define LINGER_CALLS 8600 /* past the broker's 8192 job objects, within 30 s of lingering */

static int unrequest_many(void *userdata) {
        sd_bus *bus = client_bus();
        uint64_t deadline = stack_now_ms() + 300 * 1000;
        char component[96], *state = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        if (!bus)
                return 60;
        calls_init(LINGER_CALLS);
        for (unsigned i = 0; i < LINGER_CALLS; i++) {
                if (pump(bus, deadline, 100, 150) < 0)
                        return 61;
                /* never requested: each job fails at once (NotRequested) and lingers */
                snprintf(component, sizeof(component), "limits/linger/tc-%u/ta", i);
                if (sd_bus_call_method_async(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                             "UnrequestTA", on_reply, &calls.paths[calls.sent++], "sa{sv}", component,
                                             0) < 0)
                        return 62;
        }
        if (pump(bus, deadline, 0, 0) < 0)
                return 63;
        /* the first job went early; the last one is still there to read */
        if (!calls.paths[0] || strcmp(calls.paths[0], "error") == 0 || !calls.paths[LINGER_CALLS - 1] ||
            strcmp(calls.paths[LINGER_CALLS - 1], "error") == 0)
                return 64;
        shared->probe_result = sd_bus_get_property_string(bus, TEEP_BROKER_BUS_NAME, calls.paths[0],
                                                          TEEP_BROKER_JOB_INTERFACE, "State", &e, &state) < 0 ? 0 : 1;
        free(state);
        state = NULL;
        sd_bus_error_free(&e);
        if (sd_bus_get_property_string(bus, TEEP_BROKER_BUS_NAME, calls.paths[LINGER_CALLS - 1], TEEP_BROKER_JOB_INTERFACE,
                                       "State", &e, &state) < 0) {
                fprintf(stderr, "the newest job is gone: %s\n", e.message);
                return 65;
        }
        free(state);
        sd_bus_flush_close_unref(bus);
        return 0;
}

Test(limits, finished_jobs_linger_within_a_bound) {
        pid_t broker = daemon_pid(TEEP_BROKER_BUS_NAME);
        long before = rss_kib(broker);
        uint64_t t0 = stack_now_ms();
        int rc;

        shared_setup();
        rc = run_as(APP, unrequest_many, NULL);
        printf("linger: %u UnrequestTA in %.1f s: %u jobs, %u finished; the first job %s; broker RSS %ld → %ld KiB\n",
               LINGER_CALLS, (stack_now_ms() - t0) / 1000.0, shared->accepted, shared->finished,
               shared->probe_result ? "still there" : "gone", before, rss_kib(broker));
        cr_assert_eq(rc, 0, "the client failed with %d (see stderr)", rc);
        cr_assert_eq(shared->accepted, LINGER_CALLS);
        cr_assert_eq(shared->finished, LINGER_CALLS);
        /* only meaningful while the first job's 30 s of lingering have not run out anyway */
        if (stack_now_ms() - t0 < 30 * 1000)
                cr_assert_eq(shared->probe_result, 0, "the first of %d finished jobs still exists: no bound on lingering jobs",
                             LINGER_CALLS);
        else
                printf("linger: too slow here (over 30 s) to tell the bound from the linger timeout\n");
        cr_assert_lt(rss_kib(broker) - before, RSS_GROWTH_MAX_KIB, "teep-brokerd grew by %ld KiB", rss_kib(broker) - before);
}
