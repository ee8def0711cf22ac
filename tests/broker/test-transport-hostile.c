/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-transport-hostile.c: teep-brokerd's side of http-wire.h against a compromised HTTP helper
 * (hostile-http-helper.c, started the way the real one is): every lie ends the request with a
 * named error and a message, never a crash or a hang, and the transport goes on. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "broker-test.h"
#include "macro.h"
#include "transport.h"

typedef struct Outcome {
        bool done;
        int error;
        long status;
        size_t body_len;
        char message[512];
} Outcome;

static sd_event *event;

static void setup(void) {
        cr_assert_geq(sd_event_new(&event), 0);
}

static void teardown(void) {
        sd_event_unref(event);
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 60);

static void on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Outcome *o = userdata;

        o->done = true;
        o->error = res->error;
        o->status = res->status;
        o->body_len = res->body_len;
        snprintf(o->message, sizeof(o->message), "%s", res->message ?: "");
}

static HttpDataVerdict take_all(HttpRequest *req, const uint8_t *data, size_t len, void *userdata) {
        return HTTP_DATA_TAKEN;
}

/* One request (a POST, or a stream) to a helper that behaves as mode says. */
static Outcome run(const char *mode, bool stream, uint64_t timeout_usec) {
        TransportConfig tc = { .connect_timeout_usec = 1000000,
                               .timeout_usec = timeout_usec,
                               .helper_path = getenv("HOSTILE_HTTP_HELPER") };
        Transport *t = NULL;
        HttpRequest *req = NULL;
        Outcome o = {};

        cr_assert(tc.helper_path, "HOSTILE_HTTP_HELPER is not set");
        cr_assert_eq(setenv("HOSTILE_MODE", mode, 1), 0);
        cr_assert_eq(transport_new(event, &tc, &t), 0);
        cr_assert_eq(http_request_new(t, &req), 0);
        if (stream)
                cr_assert_eq(http_request_get_stream(req, "http://127.0.0.1:9/p", 1000, take_all, on_done, &o), 0);
        else
                cr_assert_eq(http_request_post_teep(req, "http://127.0.0.1:9/tam", (const uint8_t *)"\x81\x01", 2, 1000,
                                                   on_done, &o),
                             0);
        cr_assert(test_event_run_until(event, &o.done, 20000), "%s: no end", mode);
        cr_assert(!http_request_is_active(req));
        http_request_free(req);
        transport_free(t);
        return o;
}

static void expect_failure(const char *mode, bool stream, int error, const char *words) {
        Outcome o = run(mode, stream, 1000000);

        cr_expect_eq(o.error, error, "%s: error %d (%s)", mode, o.error, o.message);
        cr_expect(strstr(o.message, "http://127.0.0.1:9/"), "%s: the message names the URI: %s", mode, o.message);
        cr_expect(strstr(o.message, words), "%s: '%s' not in: %s", mode, words, o.message);
}

Test(hostile, an_honest_answer_goes_through) {
        Outcome o = run("honest", false, 1000000);

        /* the fixture itself: the same framing, told straight, is an answer */
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_eq(o.body_len, 3);
}

Test(hostile, lies_in_the_frames_fail_the_request) {
        expect_failure("unknown-frame", false, -EPROTO, "malformed frame");
        expect_failure("huge-frame", false, -EPROTO, "malformed frame");
        expect_failure("body-over-limit", false, -EPROTO, "malformed");
        expect_failure("lengths-disagree", false, -EPROTO, "malformed answer");
        expect_failure("positive-error", false, -EPROTO, "malformed answer");
        expect_failure("data-for-a-post", false, -EPROTO, "malformed frame");
        expect_failure("short-headers", true, -EPROTO, "malformed frame");
        expect_failure("stream-over-limit", true, -EPROTO, "more than the limit");
}

Test(hostile, a_helper_that_exits_or_hangs_ends_the_request) {
        expect_failure("exit", false, -EIO, "stopped before the answer");
        /* no answer at all: the watchdog, 10 s beyond the request's own timeout of 1 s */
        expect_failure("hang", false, -ETIMEDOUT, "no answer from teep-broker-http");
}

/* The state letter of pid ('?' when it is gone). */
static char proc_state(pid_t pid) {
        char path[64], buf[512], *p;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return '?';
        p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        return p && p[1] == ' ' ? p[2] : '?';
}

/* A helper that ignores the end of its control socket still dies with the broker (it asked the
 * kernel for SIGKILL when its parent goes): a stuck helper cannot outlive it. */
Test(hostile, a_helper_does_not_outlive_the_broker) {
        int ready[2];
        pid_t broker, helper = 0;
        char path[64], state;
        FILE *f;

        cr_assert_eq(pipe(ready), 0);
        broker = fork();
        cr_assert_geq(broker, 0);
        if (broker == 0) {
                TransportConfig tc = { .timeout_usec = 60 * 1000000ull,
                                       .helper_path = getenv("HOSTILE_HTTP_HELPER") };
                sd_event *e = NULL;
                Transport *t = NULL;
                HttpRequest *req = NULL;
                Outcome o = {};

                if (setenv("HOSTILE_MODE", "deaf", 1) < 0 || sd_event_new(&e) < 0 || transport_new(e, &tc, &t) < 0 ||
                    http_request_new(t, &req) < 0 ||
                    http_request_post_teep(req, "http://127.0.0.1:9/tam", NULL, 0, 1000, on_done, &o) < 0)
                        _exit(1);
                (void)!write(ready[1], "x", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        cr_assert_eq(read(ready[0], path, 1), 1, "the stand-in broker did not start its request");
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)broker, (int)broker);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%d", &helper), 1, "the broker has no helper child");
        fclose(f);
        cr_assert_neq(proc_state(helper), '?');

        cr_assert_eq(kill(broker, SIGKILL), 0);
        cr_assert_eq(waitpid(broker, NULL, 0), broker);
        for (unsigned i = 0; i < 300 && proc_state(helper) != '?' && proc_state(helper) != 'Z'; i++)
                usleep(10 * 1000);
        state = proc_state(helper);
        if (state != '?' && state != 'Z')
                (void)kill(helper, SIGKILL); /* (this one would never end by itself) */
        cr_assert(state == '?' || state == 'Z', "helper %d still runs (state %c)", (int)helper, state);
        close(ready[0]);
}
