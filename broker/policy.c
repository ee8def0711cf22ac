/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* policy.c: policy checks — RequestPolicyCheck in a loop until the agent says "", a session per TAM */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "options.h"

/*
 * The agent walks its configured TAMs: each RequestPolicyCheck names the next one, and "" ends
 * the round (and resets the agent's walk). Two rounds interleaved would each see part of the
 * walk, so there is one round at a time, and checks that arrive meanwhile share the next one.
 * The round's first job is the one handed to the sessions; every job of the round gets the
 * round's outcome. A TAM that cannot be reached does not stop the round (the walk must reach
 * its end), but fails the round's jobs with TamUnreachable at the end.
 */

static void round_next(Broker *b);

static void round_record_failure(Broker *b, const char *name, const char *message) {
        if (b->policy_error_name)
                return;
        b->policy_error_name = strdup(name ?: TEEP_ERROR_FAILED);
        b->policy_error_message = strdup(message ?: "");
}

static void round_start(Broker *b) {
        Job *j;

        b->policy_active = true;
        b->policy_any_session = false;
        b->policy_calls = 0;
        LIST_FOREACH(policy, j, b->policy_jobs) {
                (void)job_set_state(j, JOB_RUNNING);
                job_set_progress(j, 5);
        }
        round_next(b);
}

static void round_end(Broker *b) {
        _cleanup_free_ char *name = TAKE_PTR(b->policy_error_name);
        _cleanup_free_ char *message = TAKE_PTR(b->policy_error_message);
        bool any = b->policy_any_session;
        Job *j, *n;

        b->policy_active = false;
        b->policy_slot = sd_bus_slot_unref(b->policy_slot);
        LIST_FOREACH_SAFE(policy, j, n, b->policy_jobs) {
                if (name)
                        job_fail(j, name, "%s", message ?: "");
                else
                        job_evaluate(j, any); /* "checked" (and LastPolicyCheck), or "nothing-to-do" */
                policy_round_detach(j);
        }
        if (!b->policy_waiting || b->stopping)
                return;
        LIST_FOREACH_SAFE(policy, j, n, b->policy_waiting) {
                LIST_REMOVE(policy, b->policy_waiting, j);
                LIST_APPEND(policy, b->policy_jobs, j);
                j->policy_list = 1;
        }
        round_start(b);
}

static int on_policy_uri(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const sd_bus_error *e;
        const char *uri = "";
        Job *lead, *j;
        int r;

        b->policy_slot = sd_bus_slot_unref(b->policy_slot);
        e = sd_bus_message_get_error(m);
        if (e) {
                const char *name = broker_agent_error_name(e);
                char msg[512];
                snprintf(msg, sizeof(msg), "%s%s",
                         strcmp(name, TEEP_ERROR_AGENT_UNAVAILABLE) == 0 ? "The TEEP agent is not available: " : "",
                         e->message ?: e->name);
                round_record_failure(b, name, msg);
                round_end(b);
                return 0;
        }
        if (sd_bus_message_read(m, "s", &uri) < 0) {
                round_end(b);
                return 0;
        }
        if (!*uri && b->policy_calls == 1) {
                /* "" at once: the agent may be at the end of a round that a previous broker (killed
                 * mid-round) never finished; it starts over after "", so ask once more */
                round_next(b);
                return 0;
        }
        if (!*uri) {
                round_end(b);
                return 0;
        }
        lead = b->policy_jobs;
        if (!lead) {
                round_end(b);
                return 0;
        }
        if (!tam_uri_is_valid(uri)) {
                round_record_failure(b, TEEP_ERROR_NO_TAM, "The agent named a TAM URI the broker cannot use.");
                round_next(b);
                return 0;
        }
        LIST_FOREACH(policy, j, b->policy_jobs) {
                job_set_tam_uri(j, uri);
                job_set_progress(j, 10);
        }
        log_info("policy check: asking %s", uri);
        r = session_attach(b, uri, lead);
        if (r < 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "Cannot start a session with %s: %s", uri, strerror(-r));
                round_record_failure(b, TEEP_ERROR_FAILED, msg);
                round_next(b);
        }
        return 0;
}

static void round_next(Broker *b) {
        int r;

        if (b->policy_calls >= BROKER_MAX_POLICY_CALLS) {
                log_warning("policy check: the agent named more than %d TAMs in one round; stopping here",
                            BROKER_MAX_POLICY_CALLS);
                round_end(b);
                return;
        }
        b->policy_calls++;
        r = broker_agent_call(b, &b->policy_slot, "RequestPolicyCheck", BROKER_AGENT_CALL_TIMEOUT_USEC,
                              on_policy_uri, b, NULL);
        if (r < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "Cannot call the TEEP agent: %s", strerror(-r));
                round_record_failure(b, TEEP_ERROR_AGENT_UNAVAILABLE, msg);
                round_end(b);
        }
}

void policy_round_add(Job *j) {
        Broker *b = j->broker;

        if (b->policy_active) {
                LIST_APPEND(policy, b->policy_waiting, j);
                j->policy_list = 2;
                log_debug("job %" PRIu32 " waits for the next policy-check round", j->id);
                return;
        }
        LIST_APPEND(policy, b->policy_jobs, j);
        j->policy_list = 1;
        round_start(b);
}

void policy_round_detach(Job *j) {
        Broker *b = j->broker;

        if (j->policy_list == 1)
                LIST_REMOVE(policy, b->policy_jobs, j);
        else if (j->policy_list == 2)
                LIST_REMOVE(policy, b->policy_waiting, j);
        j->policy_list = 0;
}

void policy_round_session_ended(Job *j, const char *error_name, const char *message) {
        Broker *b = j->broker;

        if (j->policy_list != 1 || !b->policy_active) {
                /* not (any more) a round's lead job: decide it on its own */
                if (error_name)
                        job_fail(j, error_name, "%s", message ?: "");
                else
                        job_evaluate(j, true);
                return;
        }
        if (error_name)
                round_record_failure(b, error_name, message);
        else
                b->policy_any_session = true;
        if (!b->stopping)
                round_next(b);
}

void policy_round_free(Broker *b) {
        b->policy_slot = sd_bus_slot_unref(b->policy_slot);
        while (b->policy_jobs)
                policy_round_detach(b->policy_jobs);
        while (b->policy_waiting)
                policy_round_detach(b->policy_waiting);
        free(b->policy_error_name);
        free(b->policy_error_message);
        b->policy_error_name = b->policy_error_message = NULL;
        b->policy_active = false;
}
