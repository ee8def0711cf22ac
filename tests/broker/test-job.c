/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-job.c: the job state machine, outcomes from the agent's state, and coalescing into sessions */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"

static Broker *b;

/* A broker without a bus: jobs and sessions work, nothing is emitted. */
static void setup(void) {
        b = calloc(1, sizeof(*b));
        cr_assert_not_null(b);
        cr_assert_eq(broker_config_init(&b->config), 0);
}

static void teardown(void) {
        while (b->sessions)
                session_free(b->sessions);
        while (b->jobs)
                job_free(b->jobs);
        transport_free(b->transport);
        sd_event_unref(b->event);
        agent_cache_done(&b->agent);
        broker_config_done(&b->config);
        free(b);
}

TestSuite(job, .init = setup, .fini = teardown, .timeout = 30);

static Job *new_job(JobKind kind, const char *component, const char *requester) {
        Job *j = NULL;
        cr_assert_eq(job_new(b, kind, component, NULL, requester, 1000, &j), 0);
        return j;
}

static void add_installed(const char *component) {
        AgentTC *t = realloc(b->agent.tcs, (b->agent.n_tcs + 1) * sizeof(*t));
        cr_assert_not_null(t);
        b->agent.tcs = t;
        t[b->agent.n_tcs] = (AgentTC){ .component = strdup(component), .sequence = 1, .digest = calloc(1, 32),
                                       .digest_len = 32 };
        b->agent.n_tcs++;
}

static void add_request(const char *component, const char *requester) {
        AgentRequest *q = realloc(b->agent.requests, (b->agent.n_requests + 1) * sizeof(*q));
        cr_assert_not_null(q);
        b->agent.requests = q;
        q[b->agent.n_requests] = (AgentRequest){ .component = strdup(component), .requester = strdup(requester) };
        b->agent.n_requests++;
}

Test(job, names_round_trip) {
        for (int k = 0; k < _JOB_KIND_MAX; k++)
                cr_assert_eq(job_kind_from_string(job_kind_to_string((JobKind)k)), k);
        for (int s = 0; s < _JOB_STATE_MAX; s++)
                cr_assert_eq(job_state_from_string(job_state_to_string((JobState)s)), s);
        cr_assert_eq(job_state_from_string("done"), _JOB_STATE_INVALID);
        cr_assert_null(job_state_to_string(_JOB_STATE_MAX));
        cr_assert_str_eq(job_kind_to_string(JOB_POLICY_CHECK), "policy-check");
}

Test(job, transitions) {
        cr_assert(job_state_transition_is_valid(JOB_QUEUED, JOB_RUNNING));
        cr_assert(job_state_transition_is_valid(JOB_QUEUED, JOB_FAILED));
        cr_assert(job_state_transition_is_valid(JOB_QUEUED, JOB_SUCCEEDED));
        cr_assert(job_state_transition_is_valid(JOB_RUNNING, JOB_SUCCEEDED));
        cr_assert(job_state_transition_is_valid(JOB_RUNNING, JOB_QUEUED));
        cr_assert(!job_state_transition_is_valid(JOB_SUCCEEDED, JOB_RUNNING));
        cr_assert(!job_state_transition_is_valid(JOB_FAILED, JOB_SUCCEEDED));
        cr_assert(!job_state_transition_is_valid(JOB_RUNNING, JOB_RUNNING));
        cr_assert(!job_state_transition_is_valid(_JOB_STATE_INVALID, JOB_RUNNING));
}

Test(job, new_job_is_queued_with_a_path_and_counted) {
        Job *a = new_job(JOB_REQUEST, "x/ta", "uid:1000");
        Job *c = new_job(JOB_POLICY_CHECK, NULL, "uid:1000");

        cr_assert_eq(a->state, JOB_QUEUED);
        cr_assert_eq(a->progress, 0);
        cr_assert_neq(a->id, c->id);
        cr_assert(strncmp(a->path, BROKER_JOB_PATH_PREFIX "/", strlen(BROKER_JOB_PATH_PREFIX) + 1) == 0);
        cr_assert_eq(broker_find_job(b, c->path), c);
        cr_assert_null(broker_find_job(b, "/org/teepkit/Broker1/job/999999"));
        cr_assert_eq(b->n_jobs_unfinished, 2);
        cr_assert_eq(broker_count_unfinished_jobs(b, 1000), 2);
        cr_assert_eq(broker_count_unfinished_jobs(b, 1001), 0);
        cr_assert_null(c->component);
        /* a request needs a component */
        {
                Job *bad = NULL;
                cr_assert_eq(job_new(b, JOB_REQUEST, NULL, NULL, "uid:1", 1, &bad), -EINVAL);
                cr_assert_null(bad);
        }
}

/* The per-uid count follows every way a job stops being unfinished, also for uids that share a
 * bucket, and a uid with none left holds no entry. */
Test(job, unfinished_jobs_are_counted_per_uid) {
        Job *a[3], *o[2];
        uid_t other = 1000 + BROKER_UID_HASH_SIZE; /* the same bucket as 1000 */

        for (int i = 0; i < 3; i++)
                a[i] = new_job(JOB_REQUEST, "x/ta", "uid:1000");
        for (int i = 0; i < 2; i++)
                cr_assert_eq(job_new(b, JOB_REQUEST, "x/ta", NULL, "uid:other", other, &o[i]), 0);
        cr_assert_eq(broker_count_unfinished_jobs(b, 1000), 3);
        cr_assert_eq(broker_count_unfinished_jobs(b, other), 2);
        cr_assert_eq(job_succeed(a[0], "installed"), 0);
        cr_assert_eq(job_fail(a[1], "org.teepkit.Error.Failed", "no"), 0);
        cr_assert_eq(broker_count_unfinished_jobs(b, 1000), 1, "finishing does not count down");
        job_free(o[0]);
        cr_assert_eq(broker_count_unfinished_jobs(b, other), 1, "freeing an unfinished job does not count down");
        job_free(a[0]); /* finished already: counted down once only */
        cr_assert_eq(broker_count_unfinished_jobs(b, 1000), 1);
        cr_assert_eq(job_succeed(a[2], "installed"), 0);
        cr_assert_eq(job_succeed(o[1], "installed"), 0);
        cr_assert_eq(broker_count_unfinished_jobs(b, 1000), 0);
        cr_assert_eq(broker_count_unfinished_jobs(b, other), 0);
        cr_assert_null(b->uid_jobs[1000 % BROKER_UID_HASH_SIZE], "an entry is left for a uid with no jobs");
        cr_assert_eq(b->n_jobs_unfinished, 0);
}

Test(job, progress_only_grows_and_stops_short_of_done) {
        Job *j = new_job(JOB_REQUEST, "x/ta", "uid:1000");

        job_set_progress(j, 20);
        cr_assert_eq(j->progress, 20);
        job_set_progress(j, 10);
        cr_assert_eq(j->progress, 20, "progress went back");
        job_set_progress(j, 150);
        cr_assert_eq(j->progress, 99);
        cr_assert_eq(job_succeed(j, "installed"), 0);
        cr_assert_eq(j->progress, 100);
        job_set_progress(j, 5);
        cr_assert_eq(j->progress, 100);
}

Test(job, finishes_once) {
        Job *j = new_job(JOB_UNREQUEST, "x/ta", "uid:1000");

        cr_assert_eq(job_set_state(j, JOB_RUNNING), 1);
        cr_assert_eq(job_set_state(j, JOB_RUNNING), 0);
        cr_assert_eq(job_fail(j, TEEP_ERROR_TAM_UNREACHABLE, "Could not reach %s", "http://x/"), 0);
        cr_assert_eq(j->state, JOB_FAILED);
        cr_assert_str_eq(j->result, "failed");
        cr_assert_str_eq(j->error_name, TEEP_ERROR_TAM_UNREACHABLE);
        cr_assert_str_eq(j->error_message, "Could not reach http://x/");
        cr_assert_eq(b->n_jobs_unfinished, 0);

        cr_assert_eq(job_succeed(j, "removed"), -EALREADY);
        cr_assert_eq(j->state, JOB_FAILED);
        cr_assert_eq(job_set_state(j, JOB_RUNNING), -EINVAL);
        cr_assert_eq(b->n_jobs_unfinished, 0, "counted twice");
}

Test(job, request_outcome_follows_the_agent_state) {
        Job *a = new_job(JOB_REQUEST, "x/ta", "uid:1000");
        Job *c = new_job(JOB_REQUEST, "y/ta", "uid:1000");
        Job *d = new_job(JOB_REQUEST, "x/ta", "uid:1001");

        add_installed("x/ta");
        job_set_tam_uri(c, "http://tam.example/");
        job_evaluate(a, true);
        job_evaluate(c, true);
        job_evaluate(d, false);
        cr_assert_eq(a->state, JOB_SUCCEEDED);
        cr_assert_str_eq(a->result, "installed");
        cr_assert_eq(c->state, JOB_FAILED);
        cr_assert_str_eq(c->error_name, TEEP_ERROR_NOT_AVAILABLE);
        cr_assert(strstr(c->error_message, "http://tam.example/"), "%s", c->error_message);
        cr_assert_str_eq(d->result, "already-installed");
}

Test(job, unrequest_outcome_follows_the_agent_state) {
        Job *gone = new_job(JOB_UNREQUEST, "x/ta", "uid:1000");
        Job *kept = new_job(JOB_UNREQUEST, "y/ta", "uid:1000");
        Job *other = new_job(JOB_UNREQUEST, "z/ta", "uid:1000");
        Job *never = new_job(JOB_UNREQUEST, "w/ta", "uid:1000");
        Job *tam_kept = new_job(JOB_UNREQUEST, "v/ta", "uid:1000");

        gone->was_installed = true;
        add_installed("y/ta");
        add_installed("v/ta");
        add_request("z/ta", "uid:1001");
        add_request("w/ta", "uid:1000");

        job_evaluate(gone, true);
        cr_assert_str_eq(gone->result, "removed");
        job_evaluate(kept, false);
        cr_assert_str_eq(kept->result, "still-needed");
        job_evaluate(other, false);
        cr_assert_str_eq(other->result, "still-needed", "another requester still has it requested");
        job_evaluate(never, false);
        cr_assert_str_eq(never->result, "not-installed", "only our own request remains in the stale view");
        job_evaluate(tam_kept, true);
        cr_assert_eq(tam_kept->state, JOB_FAILED);
}

Test(job, policy_check_outcome_and_time) {
        Job *a = new_job(JOB_POLICY_CHECK, NULL, "uid:0");
        Job *c = new_job(JOB_POLICY_CHECK, NULL, "uid:0");

        cr_assert_eq(b->last_policy_check, 0);
        job_evaluate(c, false);
        cr_assert_str_eq(c->result, "nothing-to-do");
        cr_assert_eq(b->last_policy_check, 0, "no TAM contacted, no check");
        job_evaluate(a, true);
        cr_assert_str_eq(a->result, "checked");
        cr_assert_gt(b->last_policy_check, 1600000000ull * 1000000ull);
}

Test(job, tried_tams_are_bounded) {
        Job *j = new_job(JOB_REQUEST, "x/ta", "uid:1000");
        char uri[64];

        cr_assert(!job_tried(j, "http://a/"));
        job_note_tried(j, "http://a/");
        job_note_tried(j, "http://a/");
        cr_assert(job_tried(j, "http://a/"));
        cr_assert_eq(j->n_tried, 1);
        for (int i = 0; i < 2 * BROKER_MAX_TAM_HOPS; i++) {
                snprintf(uri, sizeof(uri), "http://t%d/", i);
                job_note_tried(j, uri);
        }
        cr_assert_eq(j->n_tried, BROKER_MAX_TAM_HOPS);
}

/* The coalescing rule: jobs join the running session until the agent got the TAM's first
 * message; later ones wait for the follow-up run. Nothing is sent: the loop never runs. */
Test(job, coalescing_into_one_session_per_tam) {
        Job *j1, *j2, *j3, *j4, *other;
        Session *s, *s2;
        TransportConfig tc = { .connect_timeout_usec = 1000000,
                               .timeout_usec = 1000000,
                               .helper_path = getenv("TEEP_BROKER_HTTP") };

        cr_assert_geq(sd_event_new(&b->event), 0);
        cr_assert_eq(transport_new(b->event, &tc, &b->transport), 0);

        j1 = new_job(JOB_REQUEST, "a/ta", "uid:1000");
        j2 = new_job(JOB_REQUEST, "b/ta", "uid:1001");
        j3 = new_job(JOB_REQUEST, "c/ta", "uid:1002");
        j4 = new_job(JOB_REQUEST, "d/ta", "uid:1002");
        other = new_job(JOB_REQUEST, "e/ta", "uid:1002");

        cr_assert_eq(session_attach(b, "http://127.0.0.1:9/tam", j1), 0);
        s = b->sessions;
        cr_assert_not_null(s);
        cr_assert(s->running, "the first job starts the session");
        cr_assert_eq(b->n_sessions_started, 1);
        cr_assert_eq(j1->state, JOB_RUNNING);

        cr_assert_eq(session_attach(b, "http://127.0.0.1:9/tam", j2), 0);
        cr_assert_eq(b->sessions, s);
        cr_assert(j2->covered, "joined before the QueryResponse");
        cr_assert_eq(j2->state, JOB_RUNNING);

        s->query_answered = true; /* what on_http_done does once the agent has the QueryRequest */
        cr_assert_eq(session_attach(b, "http://127.0.0.1:9/tam", j3), 0);
        cr_assert_eq(session_attach(b, "http://127.0.0.1:9/tam", j4), 0);
        cr_assert(!j3->covered && !j4->covered);
        cr_assert_eq(j3->state, JOB_QUEUED);
        /* the lists' order means nothing (jobs are put in front: O(1) for a burst of 1000) */
        cr_assert((s->covered == j1 && j1->session_next == j2) || (s->covered == j2 && j2->session_next == j1));
        cr_assert_null(s->covered->session_next->session_next);
        cr_assert((s->waiting == j3 && j3->session_next == j4) || (s->waiting == j4 && j4->session_next == j3));
        cr_assert_eq(b->n_sessions_started, 1, "no second session with the same TAM");

        /* another TAM gets its own session at once */
        cr_assert_eq(session_attach(b, "http://127.0.0.2:9/tam", other), 0);
        s2 = b->sessions->sessions_next;
        cr_assert_not_null(s2);
        cr_assert(s2->running);
        cr_assert_eq(b->n_sessions_started, 2);

        /* a job that finishes leaves its session's lists */
        cr_assert_eq(job_fail(j3, TEEP_ERROR_FAILED, "test"), 0);
        cr_assert_null(j3->session);
        cr_assert_eq(s->waiting, j4);
        job_free(j2);
        cr_assert_eq(s->covered, j1);
        cr_assert_null(j1->session_next);
}
