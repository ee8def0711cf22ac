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

static void job_emit(Job *j, const char *const *names) {
        Broker *b = j->broker;
        int r;

        if (!b->bus)
                return;
        r = sd_bus_emit_properties_changed_strv(b->bus, j->path, TEEP_BROKER_JOB_INTERFACE, (char **)names);
        if (r < 0)
                log_debug("job %" PRIu32 ": cannot emit PropertiesChanged: %s", j->id, strerror(-r));
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
        {
                Job *k, *oldest_final = NULL;
                size_t n_all = 0;
                LIST_FOREACH(jobs, k, b->jobs) {
                        n_all++;
                        if (!oldest_final && job_state_is_final(k->state))
                                oldest_final = k;
                }
                if (n_all >= BROKER_MAX_JOB_OBJECTS && oldest_final)
                        job_free(oldest_final);
        }
        LIST_APPEND(jobs, b->jobs, j);
        b->n_jobs_unfinished++;

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
        if (j->jobs_next || j->jobs_prev || b->jobs == j) {
                LIST_REMOVE(jobs, b->jobs, j);
                if (!job_state_is_final(j->state))
                        b->n_jobs_unfinished--;
        }
        sd_bus_slot_unref(j->slot);
        sd_event_source_disable_unref(j->linger);
        free(j->component);
        free(j->requester);
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
        Job *j;

        LIST_FOREACH(jobs, j, b->jobs)
                if (strcmp(j->path, path) == 0)
                        return j;
        return NULL;
}

unsigned broker_count_unfinished_jobs(Broker *b, uid_t uid) {
        unsigned n = 0;
        Job *j;

        LIST_FOREACH(jobs, j, b->jobs)
                if (j->uid == uid && !job_state_is_final(j->state))
                        n++;
        return n;
}

int job_set_state(Job *j, JobState s) {
        if (j->state == s)
                return 0;
        if (!job_state_transition_is_valid(j->state, s))
                return -EINVAL;
        j->state = s;
        job_emit(j, (const char *const[]){ "State", NULL });
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
        job_emit(j, (const char *const[]){ "Progress", NULL });
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
        job_emit(j, (const char *const[]){ "TamURI", NULL });
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
        j->slot = sd_bus_slot_unref(j->slot);
        j->deferred = false;
        job_route_done(j);

        free(j->result);
        free(j->error_name);
        free(j->error_message);
        j->result = strdup(result);
        j->error_name = strdup(error_name ?: "");
        j->error_message = strdup(error_message ?: "");
        j->state = final;
        j->progress = 100;
        b->n_jobs_unfinished--;

        if (final == JOB_SUCCEEDED)
                log_info("job %" PRIu32 ": %s%s%s by %s: %s", j->id, job_kind_to_string(j->kind),
                         j->component ? " " : "", j->component ?: "", j->requester, result);
        else
                log_warning("job %" PRIu32 ": %s%s%s by %s failed: %s: %s", j->id, job_kind_to_string(j->kind),
                            j->component ? " " : "", j->component ?: "", j->requester, error_name, error_message);

        job_emit(j, (const char *const[]){ "State", "Progress", "Result", "ErrorName", "ErrorMessage", NULL });
        if (b->bus) {
                r = sd_bus_emit_signal(b->bus, j->path, TEEP_BROKER_JOB_INTERFACE, "Finished", "sss", result,
                                       error_name ?: "", error_message ?: "");
                if (r < 0)
                        log_debug("job %" PRIu32 ": cannot emit Finished: %s", j->id, strerror(-r));
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

static int on_agent_route(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        Broker *b = j->broker;
        const sd_bus_error *e;
        const char *uri;
        int r;

        j->slot = sd_bus_slot_unref(j->slot);
        job_route_done(j);
        e = sd_bus_message_get_error(m);
        if (e) {
                const char *name = broker_agent_error_name(e);
                if (strcmp(name, TEEP_ERROR_AGENT_UNAVAILABLE) == 0)
                        job_fail(j, name, "The TEEP agent (org.teepkit.Agent1) is not available: %s",
                                 e->message ?: e->name);
                else
                        job_fail(j, name, "%s", e->message ?: e->name);
                return 0;
        }
        r = sd_bus_message_read(m, "s", &uri);
        if (r < 0) {
                job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "The agent's answer does not parse: %s", strerror(-r));
                return 0;
        }
        if (*uri == '\0') {
                /* Nothing to contact a TAM for; what that means depends on the agent's state. */
                r = broker_agent_refresh(b, &j->slot, on_refreshed, j);
                if (r < 0)
                        job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot read the agent's state: %s", strerror(-r));
                return 0;
        }
        if (!tam_uri_is_valid(uri)) {
                job_fail(j, TEEP_ERROR_NO_TAM, "The agent named a TAM URI the broker cannot use: '%.200s'", uri);
                return 0;
        }
        job_set_tam_uri(j, uri);
        job_set_progress(j, 10);
        r = session_attach(b, uri, j);
        if (r < 0)
                job_fail(j, TEEP_ERROR_FAILED, "Cannot start a session with %s: %s", uri, strerror(-r));
        return 0;
}

int job_start(Job *j) {
        Broker *b = j->broker;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (j->kind != JOB_POLICY_CHECK && b->n_agent_routes >= BROKER_MAX_AGENT_ROUTE_CALLS) {
                /* a burst of requests: it stays queued until a call returns (job_route_done) */
                j->deferred = true;
                return 0;
        }
        switch (j->kind) {
        case JOB_REQUEST:
                r = sd_bus_message_new_method_call(b->bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                                   TEEP_AGENT_INTERFACE, "RequestTA");
                if (r >= 0)
                        r = sd_bus_message_append(m, "ss", j->requester, j->component);
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, j->tam_uris);
                break;
        case JOB_UNREQUEST:
                j->was_installed = agent_cache_has_tc(&b->agent, j->component);
                r = sd_bus_message_new_method_call(b->bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                                   TEEP_AGENT_INTERFACE, "UnrequestTA");
                if (r >= 0)
                        r = sd_bus_message_append(m, "ss", j->requester, j->component);
                break;
        case JOB_POLICY_CHECK:
                /* rounds of RequestPolicyCheck calls, shared by the checks asked for meanwhile */
                policy_round_add(j);
                return 0;
        default:
                r = -EINVAL;
        }
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &j->slot, m, on_agent_route, j, BROKER_AGENT_CALL_TIMEOUT_USEC);
        if (r < 0)
                return job_fail(j, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot call the TEEP agent: %s", strerror(-r));
        j->routing = true;
        b->n_agent_routes++;
        return 0;
}

/* j's route call is over (answered, or dropped with the job): start the oldest deferred job. */
static void job_route_done(Job *j) {
        Broker *b = j->broker;
        Job *k, *next = NULL;

        if (!j->routing)
                return;
        j->routing = false;
        b->n_agent_routes--;
        if (b->stopping)
                return;
        LIST_FOREACH(jobs, k, b->jobs)
                if (k->deferred && !job_state_is_final(k->state) && (!next || k->id < next->id))
                        next = k;
        if (next) {
                next->deferred = false;
                (void)job_start(next);
        }
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
