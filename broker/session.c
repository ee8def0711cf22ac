/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* session.c: TEEP over HTTP with one TAM (HTTP-15 §5) — one session per TAM at a time, jobs coalesced */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "media-type.h"
#include "options.h"

/*
 * A session carries every request the agent had recorded when it answered the TAM's first
 * message (its QueryResponse lists them all). Jobs that arrive later cannot be in that
 * QueryResponse, so they wait for a follow-up run with the same TAM. The broker never looks
 * inside a message: it only moves bytes between the TAM and the agent.
 */

static void session_start(Session *s);

/* A burst of requests (a package manager, many apps at once) should ride one run, not one run
 * per handful: while RequestTA/UnrequestTA calls are still on their way to the agent (a batch
 * answers within milliseconds), a run that could start waits for them — at most this long, so a
 * steady stream cannot hold it back: requests that come later join the run before the agent
 * answers the TAM's first message, or the follow-up run. */
#define SESSION_HOLD_MAX_USEC (20ull * 1000ull)

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool session_hold(Session *s) {
        uint64_t now;

        if (s->broker->n_agent_routes == 0 || s->broker->stopping) {
                s->held_since = 0;
                return false;
        }
        now = now_monotonic_usec();
        if (s->held_since == 0)
                s->held_since = now;
        if (now - s->held_since >= SESSION_HOLD_MAX_USEC) {
                s->held_since = 0;
                return false;
        }
        return true;
}

void session_kick_held(Broker *b) {
        Session *s, *n;

        LIST_FOREACH_SAFE(sessions, s, n, b->sessions)
                if (!s->running && s->covered && !session_hold(s))
                        session_start(s);
}
static void session_post(Session *s, const uint8_t *body, size_t len);

static Session *session_find(Broker *b, const char *uri) {
        Session *s;

        LIST_FOREACH(sessions, s, b->sessions)
                if (strcmp(s->tam_uri, uri) == 0)
                        return s;
        return NULL;
}

Session *session_free(Session *s) {
        Job *j, *n;

        if (!s)
                return NULL;
        LIST_FOREACH_SAFE(session, j, n, s->covered) {
                LIST_REMOVE(session, s->covered, j);
                j->session = NULL;
        }
        LIST_FOREACH_SAFE(session, j, n, s->waiting) {
                LIST_REMOVE(session, s->waiting, j);
                j->session = NULL;
        }
        if (s->sessions_next || s->sessions_prev || s->broker->sessions == s)
                LIST_REMOVE(sessions, s->broker->sessions, s);
        http_request_free(s->http);
        sd_bus_slot_unref(s->slot);
        free(s->failure);
        free(s->refusal_name);
        free(s->refusal_message);
        free(s->tam_uri);
        free(s);
        return NULL;
}

static void session_clear_refusal(Session *s) {
        free(s->refusal_name);
        free(s->refusal_message);
        s->refusal_name = s->refusal_message = NULL;
}

void session_note_refusal(Broker *b, const char *tam_uri, const char *name, const char *message) {
        Session *s;

        LIST_FOREACH(sessions, s, b->sessions)
                if (s->running && strcmp(s->tam_uri, tam_uri) == 0) {
                        char *n = strdup(name), *msg = strndup(message, 300);
                        if (!n || !msg) {
                                free(n);
                                free(msg);
                                return;
                        }
                        session_clear_refusal(s);
                        s->refusal_name = n;
                        s->refusal_message = msg;
                        log_info("session %" PRIu64 " with %s: the agent refused the TAM's message: %s: %s", s->number,
                                 s->tam_uri, name, message);
                        return;
                }
}

void session_detach(Job *j) {
        Session *s = j->session;

        if (!s)
                return;
        if (j->covered)
                LIST_REMOVE(session, s->covered, j);
        else
                LIST_REMOVE(session, s->waiting, j);
        j->session = NULL;
        j->covered = false;
}

static unsigned count_jobs(Job *head) {
        unsigned n = 0;
        Job *j;

        LIST_FOREACH(session, j, head)
                n++;
        return n;
}

void broker_emit_sessions_changed(Broker *b) {
        broker_emit_changed(b, (const char *const[]){ "ActiveSessions", NULL });
}

int session_attach(Broker *b, const char *uri, Job *j) {
        Session *s;

        session_detach(j);
        s = session_find(b, uri);
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return -ENOMEM;
                s->broker = b;
                s->tam_uri = strdup(uri);
                if (!s->tam_uri) {
                        free(s);
                        return -ENOMEM;
                }
                LIST_APPEND(sessions, b->sessions, s);
        }
        j->session = s;
        if (s->running && s->query_answered) {
                /* too late for this run's QueryResponse: the follow-up run serves it */
                j->covered = false;
                LIST_PREPEND(session, s->waiting, j);
                (void)job_set_state(j, JOB_QUEUED);
                log_debug("job %" PRIu32 " waits for the next session with %s", j->id, uri);
                return 0;
        }
        j->covered = true;
        LIST_PREPEND(session, s->covered, j);
        if (s->running) {
                (void)job_set_state(j, JOB_RUNNING);
                job_set_progress(j, 20);
                broker_emit_sessions_changed(b);
        } else if (!session_hold(s))
                session_start(s);
        return 0;
}

/* A covered job's outcome. Policy checks go back to their round, which asks the agent for the
 * next TAM; the others are decided here. */
static void session_job_outcome(Job *j, const char *error_name, const char *message) {
        if (j->kind == JOB_POLICY_CHECK) {
                session_detach(j);
                policy_round_session_ended(j, error_name, message);
        } else if (error_name)
                job_fail(j, error_name, "%s", message);
        else
                job_evaluate(j, true);
}

/* The run is over: the next one starts if jobs are waiting, else the session goes. */
static void session_run_end(Session *s) {
        Broker *b = s->broker;
        Job *j, *n;

        log_info("session %" PRIu64 " with %s: ended", s->number, s->tam_uri);
        s->running = false;
        s->query_answered = false;
        s->slot = sd_bus_slot_unref(s->slot);
        free(s->failure);
        s->failure = NULL;
        session_clear_refusal(s);
        /* jobs still covered here were failed or handed on by the caller; be safe */
        LIST_FOREACH_SAFE(session, j, n, s->covered) {
                char msg[400];
                snprintf(msg, sizeof(msg), "The session with %s ended without an outcome for this job.", s->tam_uri);
                session_job_outcome(j, TEEP_ERROR_FAILED, msg);
        }
        if (s->waiting) {
                LIST_FOREACH_SAFE(session, j, n, s->waiting) {
                        LIST_REMOVE(session, s->waiting, j);
                        if (j->kind == JOB_REQUEST && agent_cache_has_tc(&b->agent, j->component)) {
                                /* the run that just ended brought its TC (the agent recorded the
                                 * request before the job came here): no follow-up run for it, so
                                 * a burst of requests costs one or two sessions, not one per wave */
                                j->session = NULL;
                                j->covered = false;
                                job_evaluate(j, true);
                                continue;
                        }
                        j->covered = true;
                        LIST_PREPEND(session, s->covered, j);
                }
                if (s->covered) {
                        if (!session_hold(s))
                                session_start(s);
                        return;
                }
        }
        session_free(s);
        broker_emit_sessions_changed(b);
}

static void fail_covered(Session *s, const char *error_name, const char *message) {
        Job *j, *n;

        LIST_FOREACH_SAFE(session, j, n, s->covered)
                session_job_outcome(j, error_name, message);
}

/* After a run that ended normally: what does the agent have now? Each job gets its outcome. */
static void on_refreshed(Broker *b, const sd_bus_error *error, void *userdata) {
        Session *s = userdata;
        Job *j, *n;

        s->slot = sd_bus_slot_unref(s->slot);
        if (error) {
                char msg[512];
                snprintf(msg, sizeof(msg), "Cannot read the agent's state after the session with %s: %s",
                         s->tam_uri, error->message ?: error->name);
                fail_covered(s, broker_agent_error_name(error), msg);
        } else
                LIST_FOREACH_SAFE(session, j, n, s->covered) {
                        /* a job the agent's state does not answer ends with the refusal's name */
                        bool met = (j->kind == JOB_REQUEST && agent_cache_has_tc(&b->agent, j->component)) ||
                                   (j->kind == JOB_UNREQUEST && !agent_cache_has_tc(&b->agent, j->component));
                        if (s->refusal_name && !met) {
                                char msg[512];
                                snprintf(msg, sizeof(msg), "The agent refused what the TAM at %s sent: %s", s->tam_uri,
                                         s->refusal_message ?: "");
                                session_job_outcome(j, s->refusal_name, msg);
                        } else
                                session_job_outcome(j, NULL, NULL);
                }
        session_run_end(s);
}

static void session_done(Session *s) {
        Job *j;
        int r;

        log_info("session %" PRIu64 " with %s: exchange complete after %u message(s)", s->number, s->tam_uri,
                 s->n_exchanges);
        LIST_FOREACH(session, j, s->covered)
                job_set_progress(j, 95);
        s->slot = sd_bus_slot_unref(s->slot);
        /* The agent announced every change of its state before its last answer, and the bus
         * keeps its messages in order: a mirror that follows its signals is as new as that
         * answer (as in job.c). Reading every property again after each session cost the agent
         * and the broker O(requests on the device) per session. */
        if (s->broker->agent.known && !s->broker->agent_stale) {
                on_refreshed(s->broker, NULL, s);
                return;
        }
        r = broker_agent_refresh(s->broker, &s->slot, on_refreshed, s);
        if (r < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "Cannot read the agent's state: %s", strerror(-r));
                fail_covered(s, TEEP_ERROR_AGENT_UNAVAILABLE, msg);
                session_run_end(s);
        }
}

/* The agent could not go on (it failed ProcessTeepMessage without a message to send): the
 * jobs get the agent's error; HTTP-15 §5.2 needs no ProcessError for a local failure. */
static void session_agent_failed(Session *s, const sd_bus_error *e) {
        const char *name = broker_agent_error_name(e);
        char msg[512];

        log_warning("session %" PRIu64 " with %s: the agent stopped it: %s: %s", s->number, s->tam_uri,
                    e->name ?: "?", e->message ?: "");
        if (strcmp(name, TEEP_ERROR_AGENT_UNAVAILABLE) == 0)
                snprintf(msg, sizeof(msg), "The TEEP agent is not available: %s", e->message ?: e->name);
        else
                snprintf(msg, sizeof(msg), "%s", e->message ?: e->name);
        fail_covered(s, name, msg);
        session_run_end(s);
}

static int on_process_error(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Session *s = userdata;
        Broker *b = s->broker;
        const char *next = "";
        const sd_bus_error *e;
        Job *j, *n;
        int r;

        s->slot = sd_bus_slot_unref(s->slot);
        e = sd_bus_message_get_error(m);
        if (e)
                log_warning("session %" PRIu64 " with %s: the agent's ProcessError failed: %s", s->number,
                            s->tam_uri, e->message ?: e->name);
        else if (sd_bus_message_read(m, "s", &next) < 0)
                next = "";
        if (*next && (strcmp(next, s->tam_uri) == 0 || !tam_uri_is_valid(next)))
                next = "";

        LIST_FOREACH_SAFE(session, j, n, s->covered) {
                char msg[700];
                job_note_tried(j, s->tam_uri);
                /* a policy check's round asks the agent for its next TAM itself */
                if (*next && j->kind != JOB_POLICY_CHECK && !job_tried(j, next) && j->n_tried < BROKER_MAX_TAM_HOPS) {
                        log_info("job %" PRIu32 ": the agent names %s to try next", j->id, next);
                        job_set_tam_uri(j, next);
                        r = session_attach(b, next, j); /* takes it off our list */
                        if (r < 0)
                                job_fail(j, TEEP_ERROR_TAM_UNREACHABLE, "Could not reach the TAM at %s: %s",
                                         s->tam_uri, s->failure ?: "?");
                        continue;
                }
                snprintf(msg, sizeof(msg), "Could not reach the TAM: %s", s->failure ?: s->tam_uri);
                session_job_outcome(j, TEEP_ERROR_TAM_UNREACHABLE, msg);
        }
        session_run_end(s);
        return 0;
}

/* HTTP-15 §5.2: any transport failure → tell the agent, who may name another TAM. */
static void session_transport_failed(Session *s, const char *what) {
        Broker *b = s->broker;
        int r;

        log_warning("session %" PRIu64 " with %s: failed: %s", s->number, s->tam_uri, what);
        free(s->failure);
        s->failure = strdup(what);
        s->slot = sd_bus_slot_unref(s->slot);
        r = broker_agent_call(b, &s->slot, "ProcessError", BROKER_AGENT_CALL_TIMEOUT_USEC, on_process_error, s,
                              "ss", s->tam_uri, what);
        if (r < 0) {
                char msg[600];
                snprintf(msg, sizeof(msg), "Could not reach the TAM: %s", what);
                fail_covered(s, TEEP_ERROR_TAM_UNREACHABLE, msg);
                session_run_end(s);
        }
}

static int on_agent_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Session *s = userdata;
        const sd_bus_error *e;
        const void *reply;
        size_t len = 0;
        Job *j;
        int r;

        s->slot = sd_bus_slot_unref(s->slot);
        e = sd_bus_message_get_error(m);
        if (e) {
                session_agent_failed(s, e);
                return 0;
        }
        r = sd_bus_message_read_array(m, 'y', &reply, &len);
        if (r < 0) {
                sd_bus_error err = SD_BUS_ERROR_MAKE_CONST(TEEP_ERROR_AGENT_UNAVAILABLE,
                                                           "The agent's reply does not parse.");
                session_agent_failed(s, &err);
                return 0;
        }
        LIST_FOREACH(session, j, s->covered)
                job_set_progress(j, 30 + 20 * s->n_exchanges);
        if (len == 0) {
                /* the exchange is over from the agent's side; the TAM expects nothing more */
                session_done(s);
                return 0;
        }
        session_post(s, reply, len);
        return 0;
}

static void on_http_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Session *s = userdata;
        Broker *b = s->broker;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char what[600];
        MediaTypeVerdict v;
        int r;

        if (res->error < 0) {
                session_transport_failed(s, res->message ?: strerror(-res->error));
                return;
        }
        if (res->status < 200 || res->status > 299) {
                snprintf(what, sizeof(what), "%s answered HTTP %ld", s->tam_uri, res->status);
                session_transport_failed(s, what);
                return;
        }
        if (res->body_len == 0) {
                /* 204 No Content (or an empty 2xx): the TAM ends the session */
                session_done(s);
                return;
        }
        v = media_type_classify(res->content_type);
        if (v == MEDIA_TYPE_REFUSED) {
                snprintf(what, sizeof(what), "%s answered with Content-Type '%.100s', not a TEEP message",
                         s->tam_uri, res->content_type);
                session_transport_failed(s, what);
                return;
        }
        if (v == MEDIA_TYPE_TOLERATED)
                log_debug("session %" PRIu64 " with %s: response labelled '%s', relayed as TEEP", s->number,
                          s->tam_uri, res->content_type ?: "(none)");

        s->n_exchanges++;
        if (s->n_exchanges > BROKER_MAX_SESSION_MESSAGES) {
                snprintf(what, sizeof(what), "%s did not end the session after %u messages", s->tam_uri,
                         BROKER_MAX_SESSION_MESSAGES);
                session_transport_failed(s, what);
                return;
        }
        r = sd_bus_message_new_method_call(b->bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           "ProcessTeepMessage");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", s->tam_uri);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', res->body, res->body_len);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &s->slot, m, on_agent_message, s, BROKER_AGENT_PROCESS_TIMEOUT_USEC);
        if (r < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "Cannot hand the TAM's message to the agent: %s", strerror(-r));
                fail_covered(s, TEEP_ERROR_AGENT_UNAVAILABLE, msg);
                session_run_end(s);
                return;
        }
        /* From here on the agent may be building its QueryResponse: later requests are not in it. */
        s->query_answered = true;
}

static void session_post(Session *s, const uint8_t *body, size_t len) {
        Broker *b = s->broker;
        int r;

        if (!s->http) {
                /* one easy handle per TAM: its connection stays open between the POSTs */
                r = http_request_new(b->transport, &s->http);
                if (r < 0)
                        goto fail;
        }
        r = http_request_post_teep(s->http, s->tam_uri, body, len, b->config.max_message_size, on_http_done, s);
        if (r >= 0)
                return;
fail:
        session_transport_failed(s, r == -EINVAL ? "not an http(s) URI" : strerror(-r));
}

static void session_start(Session *s) {
        Broker *b = s->broker;
        Job *j;

        s->running = true;
        s->query_answered = false;
        s->n_exchanges = 0;
        session_clear_refusal(s);
        s->number = ++b->n_sessions_started;
        log_info("session %" PRIu64 " with %s: started for %u job(s)", s->number, s->tam_uri, count_jobs(s->covered));
        LIST_FOREACH(session, j, s->covered) {
                (void)job_set_state(j, JOB_RUNNING);
                job_set_progress(j, 20);
        }
        broker_emit_sessions_changed(b);
        /* HTTP-15 §5.1: an empty POST asks the TAM to start */
        session_post(s, NULL, 0);
}
