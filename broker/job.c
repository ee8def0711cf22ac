/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* job.c: a job per RequestTA / UnrequestTA / RequestPolicyCheck call — state, bus object, outcome */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "options.h"

static const char *const job_kind_table[_JOB_KIND_MAX] = {
        [JOB_REQUEST] = "request",
        [JOB_UNREQUEST] = "unrequest",
        [JOB_POLICY_CHECK] = "policy-check",
};

static const char *const job_state_table[_JOB_STATE_MAX] = {
        [JOB_QUEUED] = "queued",
        [JOB_RUNNING] = "running",
        [JOB_SUCCEEDED] = "succeeded",
        [JOB_FAILED] = "failed",
};

const char *job_kind_to_string(JobKind k) {
        return k >= 0 && k < _JOB_KIND_MAX ? job_kind_table[k] : NULL;
}

JobKind job_kind_from_string(const char *s) {
        for (int i = 0; s && i < _JOB_KIND_MAX; i++)
                if (strcmp(s, job_kind_table[i]) == 0)
                        return (JobKind)i;
        return _JOB_KIND_INVALID;
}

const char *job_state_to_string(JobState s) {
        return s >= 0 && s < _JOB_STATE_MAX ? job_state_table[s] : NULL;
}

JobState job_state_from_string(const char *s) {
        for (int i = 0; s && i < _JOB_STATE_MAX; i++)
                if (strcmp(s, job_state_table[i]) == 0)
                        return (JobState)i;
        return _JOB_STATE_INVALID;
}

bool job_state_is_final(JobState s) {
        return s == JOB_SUCCEEDED || s == JOB_FAILED;
}

bool job_state_transition_is_valid(JobState from, JobState to) {
        if (from < 0 || from >= _JOB_STATE_MAX || to < 0 || to >= _JOB_STATE_MAX || from == to)
                return false;
        if (job_state_is_final(from))
                return false;
        /* running → queued: the TAM failed and the agent named another one to try, whose
         * session is busy */
        return true;
}

static void job_route_done(Job *j);


/* The unfinished jobs are counted per uid as they come and go: the per-uid limit is asked on
 * every call, and walking every unfinished job for it cost O(jobs) per call (6 % of the
 * broker's CPU in bench part 4's 1000 calls). */
static UidJobs **uid_jobs_slot(Broker *b, uid_t uid) {
        UidJobs **p = &b->uid_jobs[uid % BROKER_UID_HASH_SIZE];

        while (*p && (*p)->uid != uid)
                p = &(*p)->next;
        return p;
}

static int unfinished_add(Broker *b, Job *j) {
        UidJobs **p = uid_jobs_slot(b, j->uid);

        if (!*p) {
                *p = calloc(1, sizeof(**p));
                if (!*p)
                        return -ENOMEM;
                (*p)->uid = j->uid;
        }
        (*p)->n++;
        b->n_jobs_unfinished++;
        LIST_PREPEND(unfinished, b->unfinished_jobs, j);
        return 0;
}

static void unfinished_remove(Broker *b, Job *j) {
        UidJobs **p = uid_jobs_slot(b, j->uid), *u = *p;

        if (u && --u->n == 0) {
                *p = u->next;
                free(u);
        }
        b->n_jobs_unfinished--;
        LIST_REMOVE(unfinished, b->unfinished_jobs, j);
}

int job_new(Broker *b, JobKind kind, const char *component, char *const *tam_uris, const char *requester,
            uid_t uid, Job **ret) {
        _cleanup_(job_freep) Job *j = NULL;
        size_t n = 0;

        if (kind < 0 || kind >= _JOB_KIND_MAX || !requester || (kind != JOB_POLICY_CHECK && !component))
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->broker = b;
        j->kind = kind;
        j->state = JOB_QUEUED;
        j->uid = uid;
        /* ids are never reused while the daemon runs (0 is skipped on wrap) */
        if (++b->next_job_id == 0)
                b->next_job_id = 1;
        j->id = b->next_job_id;
        snprintf(j->path, sizeof(j->path), BROKER_JOB_PATH_PREFIX "/%" PRIu32, j->id);
        j->requester = strdup(requester);
        if (!j->requester)
                return -ENOMEM;
        if (component && !(j->component = strdup(component)))
                return -ENOMEM;
        while (tam_uris && tam_uris[n])
                n++;
        if (n > 0) {
                j->tam_uris = calloc(n + 1, sizeof(char *));
                if (!j->tam_uris)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        if (!(j->tam_uris[i] = strdup(tam_uris[i])))
                                return -ENOMEM;
        }
        /* Finished jobs linger so that a client can still read their result; a client making
         * jobs faster than they expire must not grow the broker without bound: past
         * BROKER_MAX_JOB_OBJECTS the oldest finished job goes early. */
        if (b->n_jobs >= BROKER_MAX_JOB_OBJECTS) {
                Job *k;
                LIST_FOREACH(jobs, k, b->jobs)
                        if (job_state_is_final(k->state)) {
                                job_free(k);
                                break;
                        }
        }
        if (unfinished_add(b, j) < 0) /* the one step that can fail: nothing is linked yet */
                return -ENOMEM;
        /* appended at the tail: the list stays oldest first, in O(1) */
        j->jobs_next = NULL;
        j->jobs_prev = b->jobs_tail;
        if (b->jobs_tail)
                b->jobs_tail->jobs_next = j;
        else
                b->jobs = j;
        b->jobs_tail = j;
        b->n_jobs++;
        j->hash_next = b->job_hash[j->id % BROKER_JOB_HASH_SIZE];
        b->job_hash[j->id % BROKER_JOB_HASH_SIZE] = j;

        log_info("job %" PRIu32 ": %s%s%s by %s", j->id, job_kind_to_string(kind), component ? " " : "",
                 component ?: "", requester);
        if (b->bus) {
                int r = sd_bus_emit_signal(b->bus, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "JobNew", "osss", j->path,
                                           job_kind_to_string(kind), component ?: "", requester);
                if (r < 0)
                        log_debug("cannot emit JobNew: %s", strerror(-r));
        }
        *ret = TAKE_PTR(j);
        return 0;
}

Job *job_free(Job *j) {
        Broker *b;

        if (!j)
                return NULL;
        b = j->broker;
        session_detach(j);
        policy_round_detach(j);
        job_route_done(j);
        broker_job_forget(j);
        if (j->jobs_next || j->jobs_prev || b->jobs == j) {
                if (b->jobs_tail == j)
                        b->jobs_tail = j->jobs_prev;
                LIST_REMOVE(jobs, b->jobs, j);
                b->n_jobs--;
                if (!job_state_is_final(j->state))
                        unfinished_remove(b, j);
                for (Job **p = &b->job_hash[j->id % BROKER_JOB_HASH_SIZE]; *p; p = &(*p)->hash_next)
                        if (*p == j) {
                                *p = j->hash_next;
                                break;
                        }
        }
        sd_bus_slot_unref(j->slot);
        sd_event_source_disable_unref(j->linger);
        free(j->component);
        free(j->requester);
        free(j->creator);
        for (size_t i = 0; j->tam_uris && j->tam_uris[i]; i++)
                free(j->tam_uris[i]);
        free(j->tam_uris);
        free(j->tam_uri);
        free(j->result);
        free(j->error_name);
        free(j->error_message);
        for (unsigned i = 0; i < j->n_tried; i++)
                free(j->tried[i]);
        free(j);
        return NULL;
}

Job *broker_find_job(Broker *b, const char *path) {
        const char *p = path;
        uint32_t id = 0;
        Job *j;

        /* BROKER_JOB_PATH_PREFIX "/" id, as job_new() writes it (no leading zeros) */
        if (strncmp(p, BROKER_JOB_PATH_PREFIX "/", strlen(BROKER_JOB_PATH_PREFIX "/")) != 0)
                return NULL;
        p += strlen(BROKER_JOB_PATH_PREFIX "/");
        if (*p < '1' || *p > '9')
                return NULL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (id > (UINT32_MAX - 9) / 10)
                        return NULL;
                id = id * 10 + (uint32_t)(*p - '0');
        }
        if (*p)
                return NULL;
        for (j = b->job_hash[id % BROKER_JOB_HASH_SIZE]; j; j = j->hash_next)
                if (j->id == id)
                        return j;
        return NULL;
}

unsigned broker_count_unfinished_jobs(Broker *b, uid_t uid) {
        UidJobs *u = *uid_jobs_slot(b, uid);
        return u ? u->n : 0;
}

int job_set_state(Job *j, JobState s) {
        if (j->state == s)
                return 0;
        /* a final state only through job_finish(): Finished, the counts, the linger */
        if (!job_state_transition_is_valid(j->state, s) || job_state_is_final(s))
                return -EINVAL;
        j->state = s;
        broker_job_changed(j, JOB_PROP_STATE);
        return 1;
}

void job_set_progress(Job *j, unsigned progress) {
        if (job_state_is_final(j->state))
                return;
        if (progress > 99)
                progress = 99;
        if (progress <= j->progress)
                return;
        j->progress = progress;
        broker_job_changed(j, JOB_PROP_PROGRESS);
}

void job_set_tam_uri(Job *j, const char *uri) {
        char *s;

        if (j->tam_uri && strcmp(j->tam_uri, uri) == 0)
                return;
        s = strdup(uri);
        if (!s)
                return;
        free(j->tam_uri);
        j->tam_uri = s;
        broker_job_changed(j, JOB_PROP_TAM_URI);
}

bool job_tried(const Job *j, const char *uri) {
        for (unsigned i = 0; i < j->n_tried; i++)
                if (strcmp(j->tried[i], uri) == 0)
                        return true;
        return false;
}

void job_note_tried(Job *j, const char *uri) {
        if (job_tried(j, uri) || j->n_tried >= BROKER_MAX_TAM_HOPS)
                return;
        j->tried[j->n_tried] = strdup(uri);
        if (j->tried[j->n_tried])
                j->n_tried++;
}

static int on_linger(sd_event_source *s, uint64_t usec, void *userdata) {
        job_free(userdata);
        return 0;
}

static int job_finish(Job *j, JobState final, const char *result, const char *error_name, const char *error_message) {
        Broker *b = j->broker;
        int r;

        if (job_state_is_final(j->state))
                return -EALREADY;
        session_detach(j);
        policy_round_detach(j);
        job_route_done(j);
        j->slot = sd_bus_slot_unref(j->slot);

        free(j->result);
        free(j->error_name);
        free(j->error_message);
        j->result = strdup(result);
        j->error_name = strdup(error_name ?: "");
        j->error_message = strdup(error_message ?: "");
        j->state = final;
        j->progress = 100;
        unfinished_remove(b, j);

        if (final == JOB_SUCCEEDED)
                log_info("job %" PRIu32 ": %s%s%s by %s: %s", j->id, job_kind_to_string(j->kind),
                         j->component ? " " : "", j->component ?: "", j->requester, result);
        else
                log_warning("job %" PRIu32 ": %s%s%s by %s failed: %s: %s", j->id, job_kind_to_string(j->kind),
                            j->component ? " " : "", j->component ?: "", j->requester, error_name, error_message);

        /* the job's last PropertiesChanged, and the broker's, before Finished */
        broker_emit_job_now(j, JOB_PROP_STATE | JOB_PROP_PROGRESS | JOB_PROP_RESULT);
        if (b->bus) {
                r = sd_bus_emit_signal(b->bus, j->path, TEEP_BROKER_JOB_INTERFACE, "Finished", "sss", result,
                                       error_name ?: "", error_message ?: "");
                if (r < 0)
                        log_debug("job %" PRIu32 ": cannot emit Finished: %s", j->id, strerror(-r));
        }
        if (b->bus && j->creator) {
                /* the same, addressed to the connection that made the job: a client with many
                 * jobs among many clients gets its own outcomes, not everyone's */
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
                r = sd_bus_message_new_signal(b->bus, &sig, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "JobFinished");
                if (r >= 0)
                        r = sd_bus_message_set_destination(sig, j->creator);
                if (r >= 0)
                        r = sd_bus_message_append(sig, "osss", j->path, result, error_name ?: "", error_message ?: "");
                if (r >= 0)
                        r = sd_bus_send(b->bus, sig, NULL);
                if (r < 0)
                        log_debug("job %" PRIu32 ": cannot send JobFinished: %s", j->id, strerror(-r));
        }
        if (b->event && !b->stopping) {
                r = sd_event_add_time_relative(b->event, &j->linger, CLOCK_MONOTONIC, BROKER_JOB_LINGER_USEC, 0,
                                               on_linger, j);
                if (r < 0)
                        log_debug("job %" PRIu32 ": no linger timer (%s), it stays until exit", j->id, strerror(-r));
                else
                        (void)sd_event_source_set_description(j->linger, "job-linger");
        }
        return 0;
}

int job_succeed(Job *j, const char *result) {
        return job_finish(j, JOB_SUCCEEDED, result, NULL, NULL);
}

int job_fail(Job *j, const char *error_name, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return job_finish(j, JOB_FAILED, "failed", error_name ?: TEEP_ERROR_FAILED, msg);
}

/* ---- what the job does ---- */

static void on_refreshed(Broker *b, const sd_bus_error *error, void *userdata) {
        Job *j = userdata;

        j->slot = sd_bus_slot_unref(j->slot);
        if (error) {
                job_fail(j, broker_agent_error_name(error), "Cannot read the agent's state: %s",
                         error->message ?: error->name);
                return;
        }
        job_evaluate(j, false);
}

/* The agent's answer to j's RequestTA or UnrequestTA: an error, or the TAM to contact ("": none). */
static void job_route_answer(Job *j, const sd_bus_error *e, const char *uri) {
        Broker *b = j->broker;
        int r;

        if (e) {
                const char *name = broker_agent_error_name(e);
                if (strcmp(name, TEEP_ERROR_AGENT_UNAVAILABLE) == 0)
                        job_fail(j, name, "The TEEP agent (org.teepkit.Agent1) is not available: %s",
                                 e->message ?: e->name);
                else
                        job_fail(j, name, "%s", e->message ?: e->name);
                return;
        }
        if (*uri == '\0') {
                /* Nothing to contact a TAM for; what that means depends on the agent's state. The
                 * agent announces every change of it (PropertiesChanged) before it answers, and the
                 * bus keeps its messages in order: a mirror that follows its signals is as new as
                 * the answer. Only a mirror not known to follow them is read again. */
                if (b->agent.known && !b->agent_stale) {
                        job_evaluate(j, false);
                        return;
                }
                r = broker_agent_refresh(b, &j->slot, on_refreshed, j);
                if (r < 0)
                        job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot read the agent's state: %s", strerror(-r));
                return;
        }
        if (!tam_uri_is_valid(uri)) {
                job_fail(j, TEEP_ERROR_NO_TAM, "The agent named a TAM URI the broker cannot use: '%.200s'", uri);
                return;
        }
        job_set_tam_uri(j, uri);
        job_set_progress(j, 10);
        r = session_attach(b, uri, j);
        if (r < 0)
                job_fail(j, TEEP_ERROR_FAILED, "Cannot start a session with %s: %s", uri, strerror(-r));
}

/* UnrequestTA's answer (one call per job) */
static int on_agent_route(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *uri = "";

        job_route_done(j);
        j->slot = sd_bus_slot_unref(j->slot);
        if (!sd_bus_message_get_error(m) && sd_bus_message_read(m, "s", &uri) < 0) {
                job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "The agent's answer does not parse.");
                return 0;
        }
        job_route_answer(j, sd_bus_message_get_error(m), uri);
        return 0;
}

static void route_queue_remove(Broker *b, Job *j) {
        if (b->route_queue_tail == j)
                b->route_queue_tail = j->route_prev;
        LIST_REMOVE(route, b->route_queue, j);
        b->n_route_queued--;
}

static RouteBatch *route_batch_free(RouteBatch *batch) {
        if (!batch)
                return NULL;
        for (size_t i = 0; i < batch->n; i++)
                if (batch->jobs[i])
                        batch->jobs[i]->batch = NULL;
        LIST_REMOVE(batches, batch->broker->batches, batch);
        sd_bus_slot_unref(batch->slot);
        free(batch);
        return NULL;
}

void job_route_batches_free(Broker *b) {
        while (b->batches)
                route_batch_free(b->batches);
}

static void route_schedule(Broker *b);

/* RequestTAMany's answer: a(sss), one (tam_uri, error_name, error_message) per job, in order. */
static int on_agent_route_many(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        RouteBatch *batch = userdata;
        Broker *b = batch->broker;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        sd_bus_error bad = SD_BUS_ERROR_MAKE_CONST(TEEP_ERROR_AGENT_UNAVAILABLE, "The agent's answer does not parse.");
        int r = 0;

        b->n_agent_calls--;
        if (!e)
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(sss)");
        for (size_t i = 0; i < batch->n; i++) {
                Job *j = batch->jobs[i];
                const char *uri = "", *ename = "", *emsg = "";

                if (!e && r >= 0) {
                        r = sd_bus_message_read(m, "(sss)", &uri, &ename, &emsg);
                        if (r == 0)
                                r = -EBADMSG; /* fewer answers than requests */
                }
                if (!j)
                        continue; /* gone meanwhile */
                batch->jobs[i] = NULL;
                j->batch = NULL;
                job_route_done(j);
                if (e)
                        job_route_answer(j, e, "");
                else if (r < 0)
                        job_route_answer(j, &bad, "");
                else if (*ename) {
                        sd_bus_error ie = SD_BUS_ERROR_MAKE_CONST(ename, emsg);
                        job_route_answer(j, &ie, "");
                } else
                        job_route_answer(j, NULL, uri);
        }
        route_batch_free(batch);
        route_schedule(b);
        return 0;
}

/* Send the RequestTA jobs at the head of the route queue as one RequestTAMany call. */
static int route_send_batch(Broker *b) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        RouteBatch *batch;
        size_t n = 0;
        Job *j;
        int r;

        LIST_FOREACH(route, j, b->route_queue) {
                if (j->kind != JOB_REQUEST || n >= BROKER_MAX_ROUTE_BATCH)
                        break;
                n++;
        }
        batch = calloc(1, sizeof(*batch) + n * sizeof(Job *));
        if (!batch)
                return -ENOMEM;
        batch->broker = b;
        r = sd_bus_message_new_method_call(b->bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           "RequestTAMany");
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "(ssas)");
        j = b->route_queue;
        for (size_t i = 0; r >= 0 && i < n; i++, j = j->route_next) {
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_STRUCT, "ssas");
                if (r >= 0)
                        r = sd_bus_message_append(m, "ss", j->requester, j->component);
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, j->tam_uris);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &batch->slot, m, on_agent_route_many, batch,
                                      BROKER_AGENT_CALL_TIMEOUT_USEC);
        if (r < 0) {
                free(batch);
                /* those jobs fail; the rest of the queue goes on */
                for (size_t i = 0; i < n; i++) {
                        j = b->route_queue;
                        job_route_done(j);
                        job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot call the TEEP agent: %s", strerror(-r));
                }
                return 0;
        }
        LIST_PREPEND(batches, b->batches, batch);
        b->n_agent_calls++;
        for (size_t i = 0; i < n; i++) {
                j = b->route_queue;
                route_queue_remove(b, j);
                j->route_queued = false;
                j->batch = batch;
                j->batch_index = i;
                batch->jobs[batch->n++] = j;
        }
        return 0;
}

static int route_send_unrequest(Broker *b) {
        Job *j = b->route_queue;
        int r;

        route_queue_remove(b, j);
        j->route_queued = false;
        j->was_installed = agent_cache_has_tc(&b->agent, j->component);
        r = broker_agent_call(b, &j->slot, "UnrequestTA", BROKER_AGENT_CALL_TIMEOUT_USEC, on_agent_route, j, "ss",
                              j->requester, j->component);
        if (r < 0) {
                job_route_done(j);
                return job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot call the TEEP agent: %s", strerror(-r));
        }
        b->n_agent_calls++;
        return 0;
}

/*
 * The route queue goes to the agent once the bus has nothing more queued for us (an idle-priority
 * event source): every RequestTA that arrived meanwhile rides one RequestTAMany call — one
 * message each way and one state save at the agent for a burst of requests. UnrequestTA keeps
 * its own call, in queue order.
 */
static void route_flush(Broker *b) {
        while (b->route_queue && b->n_agent_calls < BROKER_MAX_AGENT_ROUTE_CALLS && !b->stopping) {
                if (b->route_queue->kind == JOB_REQUEST) {
                        if (route_send_batch(b) < 0)
                                break; /* out of memory: the next call's answer tries again */
                } else
                        (void)route_send_unrequest(b);
        }
        session_kick_held(b);
}

static int on_route_flush(sd_event_source *s, void *userdata) {
        route_flush(userdata);
        return 0;
}

static void route_schedule(Broker *b) {
        int r;

        if (!b->route_queue)
                return;
        if (!b->event) {
                route_flush(b);
                return;
        }
        if (!b->route_flush) {
                r = sd_event_add_defer(b->event, &b->route_flush, on_route_flush, b);
                if (r >= 0)
                        r = sd_event_source_set_priority(b->route_flush, SD_EVENT_PRIORITY_IDLE);
                if (r >= 0)
                        (void)sd_event_source_set_description(b->route_flush, "agent-route");
                if (r < 0) {
                        b->route_flush = sd_event_source_disable_unref(b->route_flush);
                        route_flush(b);
                        return;
                }
        }
        if (sd_event_source_set_enabled(b->route_flush, SD_EVENT_ONESHOT) < 0)
                route_flush(b);
}

int job_start(Job *j) {
        Broker *b = j->broker;

        switch (j->kind) {
        case JOB_REQUEST:
        case JOB_UNREQUEST:
                /* to the agent with whatever else arrives in this turn of the event loop */
                j->routing = true;
                j->route_queued = true;
                b->n_agent_routes++;
                j->route_next = NULL;
                j->route_prev = b->route_queue_tail;
                if (b->route_queue_tail)
                        b->route_queue_tail->route_next = j;
                else
                        b->route_queue = j;
                b->route_queue_tail = j;
                b->n_route_queued++;
                /* a full batch goes at once: while calls keep coming the idle flush would wait
                 * for the end of the burst, and the agent could work on this batch meanwhile */
                if (b->n_route_queued >= BROKER_MAX_ROUTE_BATCH)
                        route_flush(b);
                else
                        route_schedule(b);
                return 0;
        case JOB_POLICY_CHECK:
                /* rounds of RequestPolicyCheck calls, shared by the checks asked for meanwhile */
                policy_round_add(j);
                return 0;
        default:
                return job_fail(j, TEEP_ERROR_FAILED, "Unknown job kind.");
        }
}

/* j no longer waits for its route answer (answered, or dropped with the job). */
static void job_route_done(Job *j) {
        Broker *b = j->broker;

        if (!j->routing)
                return;
        j->routing = false;
        b->n_agent_routes--;
        if (j->route_queued) {
                route_queue_remove(b, j);
                j->route_queued = false;
        } else if (j->batch) {
                j->batch->jobs[j->batch_index] = NULL;
                j->batch = NULL;
        } else if (j->slot) {
                /* its UnrequestTA call, dropped with it */
                b->n_agent_calls--;
                route_schedule(b);
        }
        if (b->stopping)
                return;
        session_kick_held(b);
}

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void job_evaluate(Job *j, bool via_session) {
        Broker *b = j->broker;
        bool installed = j->component && agent_cache_has_tc(&b->agent, j->component);

        switch (j->kind) {
        case JOB_REQUEST:
                if (installed)
                        job_succeed(j, via_session ? "installed" : "already-installed");
                else if (via_session)
                        job_fail(j, TEEP_ERROR_NOT_AVAILABLE,
                                 "The TAM at %s did not provide %s (the agent's log says why).",
                                 j->tam_uri ?: "?", j->component);
                else
                        job_fail(j, TEEP_ERROR_NOT_AVAILABLE,
                                 "%s is not installed and the agent has no TAM to ask for it.", j->component);
                break;
        case JOB_UNREQUEST:
                if (via_session) {
                        if (!installed)
                                job_succeed(j, j->was_installed ? "removed" : "not-installed");
                        else
                                job_fail(j, TEEP_ERROR_FAILED, "The TAM at %s kept %s installed.",
                                         j->tam_uri ?: "?", j->component);
                } else if (installed || agent_cache_requested_by_other(&b->agent, j->component, j->requester))
                        job_succeed(j, "still-needed");
                else
                        job_succeed(j, "not-installed");
                break;
        case JOB_POLICY_CHECK:
                if (via_session) {
                        b->last_policy_check = now_realtime_usec();
                        broker_emit_changed(b, (const char *const[]){ "LastPolicyCheck", NULL });
                        job_succeed(j, "checked");
                } else
                        job_succeed(j, "nothing-to-do");
                break;
        default:
                job_fail(j, TEEP_ERROR_FAILED, "Unknown job kind.");
        }
}

/* ---- the job objects on the bus ---- */

static int property_get_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "u", j->id);
}

static int property_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t)j->progress);
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        const char *v = NULL;

        if (strcmp(property, "Kind") == 0)
                v = job_kind_to_string(j->kind);
        else if (strcmp(property, "Component") == 0)
                v = j->component;
        else if (strcmp(property, "Requester") == 0)
                v = j->requester;
        else if (strcmp(property, "State") == 0)
                v = job_state_to_string(j->state);
        else if (strcmp(property, "TamURI") == 0)
                v = j->tam_uri;
        else if (strcmp(property, "Result") == 0)
                v = j->result;
        else if (strcmp(property, "ErrorName") == 0)
                v = j->error_name;
        else if (strcmp(property, "ErrorMessage") == 0)
                v = j->error_message;
        return sd_bus_message_append(reply, "s", v ?: "");
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Component", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Requester", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "u", property_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TamURI", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Result", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ErrorName", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ErrorMessage", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_SIGNAL_WITH_NAMES("Finished", "sss",
                                 SD_BUS_PARAM(result) SD_BUS_PARAM(error_name) SD_BUS_PARAM(error_message), 0),
        SD_BUS_VTABLE_END,
};

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        Job *j = broker_find_job(userdata, path);

        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Broker *b = userdata;
        char **v;
        size_t n = 0, i = 0;
        Job *j;

        LIST_FOREACH(jobs, j, b->jobs)
                n++;
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        LIST_FOREACH(jobs, j, b->jobs) {
                v[i] = strdup(j->path);
                if (!v[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(v[k]);
                        free(v);
                        return -ENOMEM;
                }
                i++;
        }
        *nodes = v;
        return 0;
}

int broker_job_register(Broker *b) {
        int r;

        r = sd_bus_add_fallback_vtable(b->bus, NULL, BROKER_JOB_PATH_PREFIX, TEEP_BROKER_JOB_INTERFACE, job_vtable,
                                       job_object_find, b);
        if (r < 0)
                return log_error_errno(r, "cannot publish the job objects: %s", strerror(-r));
        r = sd_bus_add_node_enumerator(b->bus, NULL, BROKER_JOB_PATH_PREFIX, job_node_enumerator, b);
        if (r < 0)
                return log_error_errno(r, "cannot publish the job objects: %s", strerror(-r));
        return 0;
}
