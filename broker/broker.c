/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker.c: the Broker object — life cycle of the bus connection, jobs, sessions and downloads */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"

int broker_new(sd_event *event, const BrokerConfig *config, Broker **ret) {
        _cleanup_(broker_freep) Broker *b = NULL;
        TransportConfig tc;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(event);
        b->agent_uid = (uid_t)-1;
        r = broker_config_copy(&b->config, config);
        if (r < 0)
                return r;

        tc = (TransportConfig){
                .connect_timeout_usec = b->config.connect_timeout_usec,
                .timeout_usec = b->config.timeout_usec,
                .payload_timeout_usec = b->config.payload_timeout_usec,
                .ca_file = b->config.ca_file,
                .helper_path = b->config.http_helper,
        };
        r = transport_new(event, &tc, &b->transport);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        b->stopping = true;
        broker_fetches_abort(b);
        policy_round_free(b);
        while (b->sessions)
                session_free(b->sessions);
        while (b->jobs)
                job_free(b->jobs);
        sd_bus_slot_unref(b->agent_match_props);
        sd_bus_slot_unref(b->agent_match_refused);
        sd_bus_slot_unref(b->agent_match_requests);
        sd_bus_slot_unref(b->agent_match_owner);
        sd_bus_slot_unref(b->agent_refresh_slot);
        job_route_batches_free(b);
        sd_event_source_disable_unref(b->route_flush);
        sd_event_source_disable_unref(b->emit_flush);
        sd_event_source_disable_unref(b->emit_timer);
        sd_event_source_disable_unref(b->bus_drain);
        broker_caller_lookups_free(b); /* their calls hold references on the bus */
        if (b->bus)
                sd_bus_flush_close_unref(b->bus);
        transport_free(b->transport);
        agent_cache_done(&b->agent);
        free(b->agent_owner);
        broker_config_done(&b->config);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

/*
 * PropertiesChanged, collected: a burst of calls changes the same objects many times over
 * (a job is routed, joins a session, makes progress; the agent's Requests grow per batch). The
 * changes are noted here and sent once the bus has nothing queued for us (an idle-priority
 * event source), one signal per object with every property that changed — values as they are
 * then. A job's Finished is preceded by its own PropertiesChanged (job_finish flushes it).
 */
static const char *const broker_prop_names[] = {
        "AgentVersion", "InstalledTCs", "Requests", "PendingRequests", "TamURIs", "LastPolicyCheck", "ActiveSessions",
};
#define N_BROKER_PROPS (sizeof(broker_prop_names) / sizeof(broker_prop_names[0]))

static void emit_job(Job *j) {
        const char *names[8];
        size_t n = 0;
        int r;

        if (j->dirty & JOB_PROP_STATE)
                names[n++] = "State";
        if (j->dirty & JOB_PROP_PROGRESS)
                names[n++] = "Progress";
        if (j->dirty & JOB_PROP_TAM_URI)
                names[n++] = "TamURI";
        if (j->dirty & JOB_PROP_RESULT) {
                names[n++] = "Result";
                names[n++] = "ErrorName";
                names[n++] = "ErrorMessage";
        }
        names[n] = NULL;
        j->dirty = 0;
        if (n == 0 || !j->broker->bus)
                return;
        r = sd_bus_emit_properties_changed_strv(j->broker->bus, j->path, TEEP_BROKER_JOB_INTERFACE, (char **)names);
        if (r < 0)
                log_debug("job %u: cannot emit PropertiesChanged: %s", (unsigned)j->id, strerror(-r));
}

static void emit_broker(Broker *b) {
        const char *names[N_BROKER_PROPS + 1];
        size_t n = 0;
        int r;

        for (size_t i = 0; i < N_BROKER_PROPS; i++)
                if (b->dirty_props & (1u << i))
                        names[n++] = broker_prop_names[i];
        names[n] = NULL;
        b->dirty_props = 0;
        if (n == 0 || !b->bus)
                return;
        r = sd_bus_emit_properties_changed_strv(b->bus, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, (char **)names);
        if (r < 0)
                log_debug("cannot emit PropertiesChanged: %s", strerror(-r));
}

/* all: also the jobs whose State did not change (the timer's turn, or the broker stops) */
static void emit_flush(Broker *b, bool all) {
        Job *j, *n;

        emit_broker(b);
        LIST_FOREACH_SAFE(dirty, j, n, b->dirty_jobs) {
                if (!all && !(j->dirty & JOB_PROPS_AT_ONCE))
                        continue;
                LIST_REMOVE(dirty, b->dirty_jobs, j);
                emit_job(j);
        }
}

void broker_emit_flush(Broker *b) {
        emit_flush(b, true);
}

static int on_emit_flush(sd_event_source *s, void *userdata) {
        emit_flush(userdata, false);
        return 0;
}

static void emit_schedule(Broker *b) {
        int r;

        if (!b->event || b->stopping) {
                broker_emit_flush(b);
                return;
        }
        if (!b->emit_flush) {
                r = sd_event_add_defer(b->event, &b->emit_flush, on_emit_flush, b);
                if (r >= 0)
                        r = sd_event_source_set_priority(b->emit_flush, SD_EVENT_PRIORITY_IDLE);
                if (r >= 0)
                        (void)sd_event_source_set_description(b->emit_flush, "emit-changes");
                if (r < 0) {
                        b->emit_flush = sd_event_source_disable_unref(b->emit_flush);
                        broker_emit_flush(b); /* uncollected then, but sent */
                        return;
                }
        }
        if (sd_event_source_set_enabled(b->emit_flush, SD_EVENT_ONESHOT) < 0)
                broker_emit_flush(b);
}

static int on_emit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        broker_emit_flush(userdata);
        return 0;
}

/* A job's Progress and TamURI are announced at most every BROKER_PROGRESS_COALESCE_USEC (or
 * with its next State): a session moves every job it carries on per TAM message, a UI needs
 * no more than that. */
static void emit_schedule_later(Broker *b) {
        int enabled = SD_EVENT_OFF, r;

        if (!b->event || b->stopping) {
                broker_emit_flush(b);
                return;
        }
        if (!b->emit_timer) {
                r = sd_event_add_time_relative(b->event, &b->emit_timer, CLOCK_MONOTONIC,
                                               BROKER_PROGRESS_COALESCE_USEC, 0, on_emit_timer, b);
                if (r < 0)
                        emit_schedule(b); /* no timer: at once then */
                else
                        (void)sd_event_source_set_description(b->emit_timer, "emit-progress");
                return;
        }
        if (sd_event_source_get_enabled(b->emit_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return; /* armed already */
        r = sd_event_source_set_time_relative(b->emit_timer, BROKER_PROGRESS_COALESCE_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->emit_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                emit_schedule(b);
}

void broker_emit_changed(Broker *b, const char *const *names) {
        if (!b->bus || !names)
                return;
        for (; *names; names++)
                for (size_t i = 0; i < N_BROKER_PROPS; i++)
                        if (strcmp(*names, broker_prop_names[i]) == 0)
                                b->dirty_props |= 1u << i;
        if (b->dirty_props)
                emit_schedule(b);
}

void broker_job_changed(Job *j, unsigned props) {
        Broker *b = j->broker;

        if (!b->bus || props == 0)
                return;
        if (j->dirty == 0)
                LIST_PREPEND(dirty, b->dirty_jobs, j);
        j->dirty |= props;
        if (props & JOB_PROPS_AT_ONCE)
                emit_schedule(b);
        else
                emit_schedule_later(b);
}

void broker_emit_job_now(Job *j, unsigned props) {
        Broker *b = j->broker;

        if (j->dirty)
                LIST_REMOVE(dirty, b->dirty_jobs, j);
        j->dirty |= props;
        emit_broker(b);
        emit_job(j);
}

/* job_free: a job that goes has nothing left to announce */
void broker_job_forget(Job *j) {
        if (j->dirty) {
                LIST_REMOVE(dirty, j->broker->dirty_jobs, j);
                j->dirty = 0;
        }
}

int broker_start(Broker *b) {
        int r;

        r = teep_resolve_user(b->config.agent_user, &b->agent_uid, NULL);
        if (r < 0)
                return log_error_errno(r, "[Broker] AgentUser=%s: %s", b->config.agent_user,
                                       r == -ESRCH ? "no such user" : strerror(-r));

        r = sd_bus_open_system(&b->bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the system bus (%s): %s",
                                       getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "default address", strerror(-r));
        (void)sd_bus_set_description(b->bus, "teep-brokerd");
        r = bus_attach_event(b->bus, b->event, &b->bus_drain);
        if (r < 0)
                return log_error_errno(r, "cannot attach the bus to the event loop: %s", strerror(-r));

        /* Objects first, then the name: a caller who sees the name finds the API. */
        r = broker_bus_register(b);
        if (r < 0)
                return r;
        r = broker_job_register(b);
        if (r < 0)
                return r;
        r = broker_agent_watch(b);
        if (r < 0)
                return r;
        r = sd_bus_request_name(b->bus, TEEP_BROKER_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "cannot own %s on the bus (%s): %s", TEEP_BROKER_BUS_NAME,
                                       r == -EACCES ? "the bus policy does not allow this user" : "taken?",
                                       strerror(-r));
        log_info("teep-brokerd is on the bus as %s (agent uid %u)", TEEP_BROKER_BUS_NAME, (unsigned)b->agent_uid);
        return 0;
}

void broker_stop(Broker *b) {
        Job *j, *n;

        if (b->stopping)
                return;
        b->stopping = true;
        broker_fetches_abort(b);
        broker_caller_lookups_free(b); /* the calls waiting for their caller are answered */
        LIST_FOREACH_SAFE(jobs, j, n, b->jobs)
                if (!job_state_is_final(j->state))
                        job_fail(j, TEEP_ERROR_FAILED, "teep-brokerd is stopping.");
        policy_round_free(b);
        while (b->sessions)
                session_free(b->sessions);
        broker_emit_flush(b);
        if (b->bus) {
                (void)sd_bus_release_name(b->bus, TEEP_BROKER_BUS_NAME);
                (void)sd_bus_flush(b->bus);
        }
}
