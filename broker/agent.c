/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.c: the broker's side of org.teepkit.Agent1 — calls, and a mirror of its properties */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"

const char *broker_agent_error_name(const sd_bus_error *e) {
        if (!e || !e->name)
                return TEEP_ERROR_AGENT_UNAVAILABLE;
        if (strncmp(e->name, TEEP_ERROR_PREFIX, strlen(TEEP_ERROR_PREFIX)) == 0)
                return e->name;
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                   SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_TIMEOUT,
                                   SD_BUS_ERROR_NO_SERVER, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                   SD_BUS_ERROR_UNKNOWN_INTERFACE, SD_BUS_ERROR_ACCESS_DENIED,
                                   SD_BUS_ERROR_LIMITS_EXCEEDED, SD_BUS_ERROR_NO_MEMORY))
                return TEEP_ERROR_AGENT_UNAVAILABLE;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS))
                return SD_BUS_ERROR_INVALID_ARGS;
        return TEEP_ERROR_FAILED;
}

int broker_agent_call(Broker *b, sd_bus_slot **slot, const char *method, uint64_t timeout_usec,
                      sd_bus_message_handler_t callback, void *userdata, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &m, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                           method);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call_async(b->bus, slot, m, callback, userdata, timeout_usec);
}

static void emit_agent_changed(Broker *b, unsigned mask) {
        const char *names[6];

        if (mask == 0)
                return;
        agent_cache_property_names(mask, names);
        broker_emit_changed(b, names);
}

typedef struct RefreshCtx {
        Broker *broker;
        AgentRefreshFn callback;
        void *userdata;
} RefreshCtx;

static int on_get_all(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        RefreshCtx *c = userdata;
        Broker *b = c->broker;
        sd_bus_error bad = SD_BUS_ERROR_MAKE_CONST(TEEP_ERROR_AGENT_UNAVAILABLE,
                                                   "The agent's properties do not parse.");
        const sd_bus_error *e;
        unsigned changed = 0;
        int r;

        e = sd_bus_message_get_error(m);
        if (!e) {
                r = agent_cache_apply(&b->agent, m, &changed);
                if (r < 0) {
                        log_warning("the agent's properties do not parse: %s", strerror(-r));
                        e = &bad;
                } else {
                        if (!b->agent.known)
                                log_info("agent %s is there: %zu TC(s) installed, %zu request(s)",
                                         b->agent.version ?: "?", b->agent.n_tcs, b->agent.n_requests);
                        b->agent.known = true;
                        b->agent_stale = false;
                        emit_agent_changed(b, changed);
                }
        } else
                log_debug("cannot read the agent's properties: %s", e->message ?: e->name);
        /* last: the callback may drop the slot, which frees c */
        if (c->callback)
                c->callback(b, e, c->userdata);
        return 0;
}

int broker_agent_refresh(Broker *b, sd_bus_slot **slot, AgentRefreshFn callback, void *userdata) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *s = NULL;
        RefreshCtx *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (RefreshCtx){ .broker = b, .callback = callback, .userdata = userdata };
        r = sd_bus_call_method_async(b->bus, &s, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                     "org.freedesktop.DBus.Properties", "GetAll", on_get_all, c, "s",
                                     TEEP_AGENT_INTERFACE);
        if (r < 0) {
                free(c);
                return r;
        }
        (void)sd_bus_slot_set_destroy_callback(s, free);
        sd_bus_slot_unref(*slot);
        *slot = TAKE_PTR(s);
        return 0;
}

/* Our own copy only follows the agent; a refresh of our own (no one waits for it). */
static void refresh_mirror(Broker *b) {
        int r;

        b->agent_stale = true;
        r = broker_agent_refresh(b, &b->agent_refresh_slot, NULL, NULL);
        if (r < 0)
                log_warning("cannot ask the agent for its properties: %s", strerror(-r));
}

static void set_owner(Broker *b, const char *owner) {
        free(b->agent_owner);
        b->agent_owner = owner && *owner ? strdup(owner) : NULL;
        if (b->agent_owner) {
                refresh_mirror(b);
                return;
        }
        /*
         * Gone. teep-agentd rests between sessions (its IdleTimeoutSec=), and only it writes its
         * state: what it last announced stays true until it runs again. Keep the mirror, but
         * stale, so that whoever depends on it asks again (GetAll), which starts the agent by
         * bus activation; its return reads everything again anyway (above). A crash is the
         * same to us: the restarted agent says what its recovery changed.
         */
        b->agent_refresh_slot = sd_bus_slot_unref(b->agent_refresh_slot);
        if (b->agent.known)
                log_info("the agent (%s) left the bus; keeping what it last said until it is back",
                         TEEP_AGENT_BUS_NAME);
        b->agent_stale = true;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const char *name, *old, *new;

        if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, TEEP_AGENT_BUS_NAME) != 0)
                return 0;
        set_owner(b, new);
        return 0;
}

static int on_get_name_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const char *owner = NULL;

        if (sd_bus_message_is_method_error(m, NULL)) {
                /* resting, or not started yet: reading its properties starts it (bus activation) */
                log_info("the agent (%s) is not on the bus; asking for its state starts it", TEEP_AGENT_BUS_NAME);
                refresh_mirror(b);
                return 0;
        }
        if (sd_bus_message_read(m, "s", &owner) >= 0 && !b->agent_owner)
                set_owner(b, owner);
        return 0;
}

/* A unicast signal can come from anyone: only the name's current owner speaks for the agent. */
static bool from_agent(const Broker *b, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);

        if (b->agent_owner && sender && strcmp(sender, b->agent_owner) == 0)
                return true;
        log_debug("ignoring %s for the agent from %s", sd_bus_message_get_member(m) ?: "?", sender ?: "?");
        return false;
}

/* After the mirror took a signal (r from agent_cache_apply*()): republish, or read it all again. */
static bool mirror_took(Broker *b, sd_bus_message *m, int r, unsigned changed) {
        if (r < 0) {
                log_warning("the agent's %s does not parse (%s); asking again", sd_bus_message_get_member(m) ?: "?",
                            strerror(-r));
                refresh_mirror(b);
                return false;
        }
        emit_agent_changed(b, changed);
        return true;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const char *iface;
        unsigned changed = 0;
        char **invalidated = NULL;
        int r;

        if (!b->agent_owner) {
                refresh_mirror(b);
                return 0;
        }
        if (!from_agent(b, m))
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || strcmp(iface, TEEP_AGENT_INTERFACE) != 0)
                return 0;
        r = agent_cache_apply(&b->agent, m, &changed);
        if (!mirror_took(b, m, r, changed))
                return 0;
        r = sd_bus_message_read_strv(m, &invalidated);
        if (r >= 0 && invalidated && invalidated[0])
                refresh_mirror(b);
        for (size_t i = 0; invalidated && invalidated[i]; i++)
                free(invalidated[i]);
        free(invalidated);
        return 0;
}

/* Agent1.Refused: which named error the agent's last TEEP Error to a TAM stands for. Only from
 * the agent's current owner; the name must be one of ours. */
static int on_refused(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const char *uri, *name, *message;

        if (!from_agent(b, m))
                return 0;
        if (sd_bus_message_read(m, "sss", &uri, &name, &message) < 0)
                return 0;
        if (strcmp(name, SD_BUS_ERROR_INVALID_ARGS) != 0 &&
            (strncmp(name, TEEP_ERROR_PREFIX, strlen(TEEP_ERROR_PREFIX)) != 0 || strlen(name) > 128 ||
             strspn(name + strlen(TEEP_ERROR_PREFIX), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
                     strlen(name + strlen(TEEP_ERROR_PREFIX))))
                name = TEEP_ERROR_FAILED; /* not a name of ours: still a refusal, without its name */
        session_note_refusal(b, uri, name, message);
        return 0;
}

/* Agent1.RequestsChanged: what one change of Requests added and removed (Agent1.Requests emits
 * no PropertiesChanged: it can be long). */
static int on_requests_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        unsigned changed = 0;
        int r;

        if (!from_agent(b, m))
                return 0;
        r = agent_cache_apply_requests_changed(&b->agent, m, &changed);
        (void)mirror_took(b, m, r, changed);
        return 0;
}

int broker_agent_watch(Broker *b) {
        int r;

        r = sd_bus_add_match_async(b->bus, &b->agent_match_owner, BUS_NAME_OWNER_CHANGED_MATCH(TEEP_AGENT_BUS_NAME),
                                   on_owner_changed, NULL, b);
        if (r < 0)
                return log_error_errno(r, "cannot watch the agent's bus name: %s", strerror(-r));
        r = sd_bus_match_signal_async(b->bus, &b->agent_match_props, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                      "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed,
                                      NULL, b);
        if (r < 0)
                return log_error_errno(r, "cannot watch the agent's properties: %s", strerror(-r));
        r = sd_bus_match_signal_async(b->bus, &b->agent_match_requests, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                      TEEP_AGENT_INTERFACE, "RequestsChanged", on_requests_changed, NULL, b);
        if (r < 0)
                return log_error_errno(r, "cannot watch the agent's requests: %s", strerror(-r));
        r = sd_bus_match_signal_async(b->bus, &b->agent_match_refused, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH,
                                      TEEP_AGENT_INTERFACE, "Refused", on_refused, NULL, b);
        if (r < 0)
                return log_error_errno(r, "cannot watch the agent's refusals: %s", strerror(-r));
        r = sd_bus_call_method_async(b->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_get_name_owner, b, "s",
                                     TEEP_AGENT_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "cannot look for the agent on the bus: %s", strerror(-r));
        return 0;
}
