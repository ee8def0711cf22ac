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
                .ca_file = b->config.ca_file,
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
        sd_bus_slot_unref(b->agent_match_owner);
        sd_bus_slot_unref(b->agent_refresh_slot);
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

void broker_emit_changed(Broker *b, const char *const *names) {
        int r;

        if (!b->bus || !names || !names[0])
                return;
        r = sd_bus_emit_properties_changed_strv(b->bus, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, (char **)names);
        if (r < 0)
                log_debug("cannot emit PropertiesChanged: %s", strerror(-r));
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
        r = sd_bus_attach_event(b->bus, b->event, SD_EVENT_PRIORITY_NORMAL);
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
        LIST_FOREACH_SAFE(jobs, j, n, b->jobs)
                if (!job_state_is_final(j->state))
                        job_fail(j, TEEP_ERROR_FAILED, "teep-brokerd is stopping.");
        policy_round_free(b);
        while (b->sessions)
                session_free(b->sessions);
        if (b->bus) {
                (void)sd_bus_release_name(b->bus, TEEP_BROKER_BUS_NAME);
                (void)sd_bus_flush(b->bus);
        }
}
