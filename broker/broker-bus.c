/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-bus.c: org.teepkit.Broker1 at /org/teepkit/Broker1 (dbus/org.teepkit.Broker1.xml) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"
#include "config.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "teep-component.h"

static void strv_freep(char ***p) {
        for (size_t i = 0; *p && (*p)[i]; i++)
                free((*p)[i]);
        free(*p);
}

/*
 * Who is calling, from the bus's credentials: the uid (from the bus daemon, which took it from
 * the socket), and the systemd unit when the caller is a system service. The unit comes from
 * /proc/PID/cgroup; the pid could be reused between the bus's answer and our read, so the unit
 * is used only when the process we read still has the uid the bus reported.
 */
static int caller_unit(uid_t uid, pid_t pid, char **ret_unit) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        const char *unit = NULL, *user_unit = NULL, *session = NULL;
        uid_t now;

        *ret_unit = NULL;
        if (pid <= 0 ||
            sd_bus_creds_new_from_pid(&c, pid, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UNIT | SD_BUS_CREDS_USER_UNIT |
                                                       SD_BUS_CREDS_SESSION) < 0 ||
            sd_bus_creds_get_euid(c, &now) < 0 || now != uid)
                return 0; /* gone, or not the caller any more: no unit, the uid decides */
        if (sd_bus_creds_get_unit(c, &unit) < 0)
                unit = NULL;
        if (sd_bus_creds_get_user_unit(c, &user_unit) < 0)
                user_unit = NULL;
        if (sd_bus_creds_get_session(c, &session) < 0)
                session = NULL;
        if (!requester_unit_is_system_service(unit, user_unit, session))
                return 0;
        *ret_unit = strdup(unit);
        return *ret_unit ? 0 : -ENOMEM;
}

/* The same, asking the bus daemon and waiting for it: for callers caller_lookup_start() could not
 * take (no unique name, too many lookups at once, a cache that forgot them meanwhile). */
static int caller_identify(sd_bus_message *m, uid_t *ret_uid, char **ret_unit, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        pid_t pid = 0;
        int r;

        *ret_unit = NULL;
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID, &c);
        if (r >= 0)
                r = sd_bus_creds_get_euid(c, ret_uid);
        if (r < 0)
                /* fail closed: a request nobody can own is refused */
                return sd_bus_error_setf(error, TEEP_ERROR_ACCESS_DENIED,
                                         "Cannot tell who is calling (%s); refusing the request.", strerror(-r));
        if (sd_bus_creds_get_pid(c, &pid) < 0)
                pid = 0;
        return caller_unit(*ret_uid, pid, ret_unit);
}

/* caller_identify(), remembered per connection (bus_sender_cache_get(): a unique name's
 * credentials never change, and asking costs a round trip to the bus daemon and two reads of
 * /proc while the event loop waits). */
static int caller_identify_cached(sd_bus_message *m, uid_t *ret_uid, char **ret_unit, sd_bus_error *error) {
        const char *unit = NULL;
        int r;

        if (bus_sender_cache_get(m, true, ret_uid, &unit)) {
                *ret_unit = NULL;
                if (unit && !(*ret_unit = strdup(unit)))
                        return -ENOMEM;
                return 0;
        }
        r = caller_identify(m, ret_uid, ret_unit, error);
        if (r >= 0)
                bus_sender_cache_put(m, *ret_uid, true, *ret_unit);
        return r;
}

/*
 * A connection's first call does not wait for the bus daemon: its credentials are asked for
 * with an asynchronous GetConnectionCredentials, the call (and any other that connection makes
 * meanwhile, in their order) waits in a CallerLookup, and the answer puts them in the cache and
 * runs the calls again from the start, now with a cache hit. A burst of new clients then costs
 * the broker no round trip each while its loop stands still (load: 100 new connections at once).
 */
/* One connection's calls waiting: above the jobs one uid may have unfinished
 * (BROKER_MAX_JOBS_PER_UID), so only calls that would be refused anyway are refused (Busy). */
#define CALLER_LOOKUP_MAX_CALLS 1024
#define CALLER_LOOKUPS_MAX 256       /* connections waiting at once; more wait synchronously */

typedef struct PendingCall {
        sd_bus_message *m;
        sd_bus_message_handler_t handler;
} PendingCall;

struct CallerLookup {
        Broker *broker;
        char *sender;
        sd_bus_slot *slot;
        PendingCall *calls;
        unsigned n_calls;
        size_t n_allocated;
        LIST_FIELDS(CallerLookup, lookups);
};

static void caller_lookup_free(CallerLookup *l) {
        if (!l)
                return;
        LIST_REMOVE(lookups, l->broker->caller_lookups, l);
        l->broker->n_caller_lookups--;
        sd_bus_slot_unref(l->slot);
        for (unsigned i = 0; i < l->n_calls; i++)
                sd_bus_message_unref(l->calls[i].m);
        free(l->calls);
        free(l->sender);
        free(l);
}

void broker_caller_lookups_free(Broker *b) {
        while (b->caller_lookups) {
                CallerLookup *l = b->caller_lookups;
                for (unsigned i = 0; i < l->n_calls; i++)
                        (void)sd_bus_reply_method_errorf(l->calls[i].m, TEEP_ERROR_BUSY,
                                                         "teep-brokerd is stopping; try again later.");
                caller_lookup_free(l);
        }
}

/* Run a waiting call as sd-bus would have: an error set or returned becomes its answer. */
static void caller_call_run(Broker *b, const PendingCall *p) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_rewind(p->m, true);
        if (r >= 0)
                r = p->handler(p->m, b, &error);
        if (sd_bus_error_is_set(&error))
                (void)sd_bus_reply_method_error(p->m, &error);
        else if (r < 0)
                (void)sd_bus_reply_method_errno(p->m, r, NULL);
}

static int on_caller_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        CallerLookup *l = userdata;
        Broker *b = l->broker;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        _cleanup_free_ char *unit = NULL;
        bool have_uid = false;
        uint32_t uid = 0, pid = 0;
        int r = 0;

        if (l->n_calls == 0) { /* its first call could not be kept (out of memory) */
                caller_lookup_free(l);
                return 0;
        }
        /* a{sv}: UnixUserID and ProcessID are what we read; anything else is skipped */
        if (!e)
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (!e && r >= 0) {
                const char *key;
                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && strcmp(key, "UnixUserID") == 0) {
                        r = sd_bus_message_read(reply, "v", "u", &uid);
                        have_uid = r >= 0;
                } else if (r >= 0 && strcmp(key, "ProcessID") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &pid);
                else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (e || r < 0 || !have_uid) {
                log_warning("cannot tell who %s is (%s); refusing its %u call(s)", l->sender,
                            e ? (e->message ?: e->name) : r < 0 ? strerror(-r) : "no UnixUserID", l->n_calls);
                for (unsigned i = 0; i < l->n_calls; i++)
                        (void)sd_bus_reply_method_errorf(l->calls[i].m, TEEP_ERROR_ACCESS_DENIED,
                                                         "Cannot tell who is calling; refusing the request.");
                caller_lookup_free(l);
                return 0;
        }
        r = caller_unit((uid_t)uid, (pid_t)pid, &unit);
        if (r < 0) {
                for (unsigned i = 0; i < l->n_calls; i++)
                        (void)sd_bus_reply_method_errno(l->calls[i].m, r, NULL);
                caller_lookup_free(l);
                return 0;
        }
        bus_sender_cache_put(l->calls[0].m, (uid_t)uid, true, unit);
        /* The calls run again, in their order; caller_known_or_wait() lets them through (the
         * cache has the caller now, and should it not, create_job() asks synchronously). */
        b->caller_rerun = true;
        for (unsigned i = 0; i < l->n_calls; i++)
                caller_call_run(b, &l->calls[i]);
        b->caller_rerun = false;
        caller_lookup_free(l);
        return 0;
}

/* 0: the caller is known (or must be asked for synchronously), go on; 1: the call waits for
 * its caller's credentials and is answered later; <0: an error for the call. */
static int caller_known_or_wait(Broker *b, sd_bus_message *m, sd_bus_message_handler_t handler, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(m);
        CallerLookup *l;
        uid_t uid;
        int r;

        if (b->caller_rerun || bus_sender_cache_get(m, true, &uid, NULL) || !sender || sender[0] != ':')
                return 0;
        LIST_FOREACH(lookups, l, b->caller_lookups)
                if (strcmp(l->sender, sender) == 0)
                        break;
        if (!l) {
                if (b->n_caller_lookups >= CALLER_LOOKUPS_MAX)
                        return 0;
                l = calloc(1, sizeof(*l));
                if (!l || !(l->sender = strdup(sender))) {
                        free(l);
                        return -ENOMEM;
                }
                l->broker = b;
                LIST_PREPEND(lookups, b->caller_lookups, l);
                b->n_caller_lookups++;
                r = sd_bus_call_method_async(b->bus, &l->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "GetConnectionCredentials",
                                             on_caller_credentials, l, "s", sender);
                if (r < 0) {
                        caller_lookup_free(l);
                        return 0; /* ask synchronously then */
                }
        }
        if (l->n_calls >= CALLER_LOOKUP_MAX_CALLS)
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY,
                                         "%u calls are waiting already; wait for their answers.", l->n_calls);
        if (GREEDY_GROW(l->calls, l->n_allocated, (size_t)l->n_calls + 1, 8) < 0)
                return -ENOMEM;
        l->calls[l->n_calls++] = (PendingCall){ .m = sd_bus_message_ref(m), .handler = handler };
        return 1;
}

static int create_job(Broker *b, sd_bus_message *m, JobKind kind, const char *component, char **tam_uris,
                      const BrokerOptions *o, sd_bus_error *error) {
        _cleanup_free_ char *unit = NULL, *requester = NULL;
        Job *j;
        uid_t uid = (uid_t)-1;
        int r;

        if (b->stopping)
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "teep-brokerd is stopping; try again later.");
        r = caller_identify_cached(m, &uid, &unit, error);
        if (r < 0)
                return r;
        r = requester_derive(uid, unit, o->requester, &requester, error);
        if (r < 0)
                return r;
        if (b->n_jobs_unfinished >= BROKER_MAX_JOBS)
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "%u jobs are running; try again later.",
                                         b->n_jobs_unfinished);
        if (broker_count_unfinished_jobs(b, uid) >= BROKER_MAX_JOBS_PER_UID)
                return sd_bus_error_setf(error, TEEP_ERROR_ACCESS_DENIED,
                                         "uid %" PRIu32 " already has %u unfinished jobs; wait for them.",
                                         (uint32_t)uid, BROKER_MAX_JOBS_PER_UID);

        r = job_new(b, kind, component, tam_uris, requester, uid, &j);
        if (r < 0)
                return r;
        if (sd_bus_message_get_sender(m) && !(j->creator = strdup(sd_bus_message_get_sender(m)))) {
                job_free(j);
                return -ENOMEM;
        }
        /* The caller learns the job path before anything can happen to the job. */
        r = sd_bus_reply_method_return(m, "o", j->path);
        if (r < 0) {
                job_free(j);
                return r;
        }
        (void)job_start(j);
        return 1;
}

static int check_component(const char *component, sd_bus_error *error) {
        _cleanup_free_ uint8_t *encoded = NULL;
        size_t len = 0;
        int r;

        if (strlen(component) > BROKER_MAX_COMPONENT_LEN)
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT, "The component name is too long.");
        r = teep_suit_component_id_from_string(component, &encoded, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                         "'%.200s' is not a component name: segments of [A-Za-z0-9._-], a UUID "
                                         "or 0x-hex, joined by '/' (see org.teepkit.Broker1(5)).",
                                         component);
        return 0;
}

static int method_request_ta(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(strv_freep) char **uris = NULL;
        _cleanup_(broker_options_done) BrokerOptions o = {};
        const char *component;
        size_t n = 0;
        int r;

        r = caller_known_or_wait(b, m, method_request_ta, error);
        if (r != 0)
                return r;

        r = sd_bus_message_read(m, "s", &component);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &uris);
        if (r < 0)
                return r;
        r = broker_options_read(m, &o, error);
        if (r < 0)
                return r;
        r = check_component(component, error);
        if (r < 0)
                return r;
        for (; uris && uris[n]; n++)
                if (!tam_uri_is_valid(uris[n]))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "TAM URI '%.200s' is not an http:// or https:// URI.", uris[n]);
        if (n > BROKER_MAX_TAM_URIS)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "At most %d TAM URIs, not %zu.",
                                         BROKER_MAX_TAM_URIS, n);
        return create_job(b, m, JOB_REQUEST, component, uris, &o, error);
}

static int method_unrequest_ta(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(broker_options_done) BrokerOptions o = {};
        const char *component;
        int r;

        r = caller_known_or_wait(b, m, method_unrequest_ta, error);
        if (r != 0)
                return r;

        r = sd_bus_message_read(m, "s", &component);
        if (r < 0)
                return r;
        r = broker_options_read(m, &o, error);
        if (r < 0)
                return r;
        r = check_component(component, error);
        if (r < 0)
                return r;
        return create_job(b, m, JOB_UNREQUEST, component, NULL, &o, error);
}

static int method_request_policy_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(broker_options_done) BrokerOptions o = {};
        int r;

        r = caller_known_or_wait(b, m, method_request_policy_check, error);
        if (r != 0)
                return r;

        r = broker_options_read(m, &o, error);
        if (r < 0)
                return r;
        return create_job(b, m, JOB_POLICY_CHECK, NULL, NULL, &o, error);
}

static void unref_message(void *userdata) {
        sd_bus_message_unref(userdata);
}

static int on_device_key(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        sd_bus_message *call = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *out = NULL;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const void *cose, *kid;
        size_t cose_len, kid_len;
        const char *pem;
        int r;

        if (e) {
                const char *name = broker_agent_error_name(e);
                (void)sd_bus_reply_method_errorf(call, name, "%s%s",
                                                 strcmp(name, TEEP_ERROR_AGENT_UNAVAILABLE) == 0
                                                         ? "The TEEP agent is not available: "
                                                         : "",
                                                 e->message ?: e->name);
                return 0;
        }
        r = sd_bus_message_read(reply, "s", &pem);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &cose, &cose_len);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &kid, &kid_len);
        if (r >= 0)
                r = sd_bus_message_new_method_return(call, &out);
        if (r >= 0)
                r = sd_bus_message_append(out, "s", pem);
        if (r >= 0)
                r = sd_bus_message_append_array(out, 'y', cose, cose_len);
        if (r >= 0)
                r = sd_bus_message_append_array(out, 'y', kid, kid_len);
        if (r >= 0)
                r = sd_bus_send(NULL, out, NULL);
        if (r < 0)
                (void)sd_bus_reply_method_errorf(call, TEEP_ERROR_AGENT_UNAVAILABLE,
                                                 "The agent's key does not parse: %s", strerror(-r));
        return 0;
}

static int method_get_agent_key(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        sd_bus_slot *slot = NULL;
        int r;

        r = sd_bus_call_method_async(b->bus, &slot, TEEP_AGENT_BUS_NAME, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE,
                                     "GetDeviceKey", on_device_key, m, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, TEEP_ERROR_AGENT_UNAVAILABLE, "Cannot call the TEEP agent: %s",
                                         strerror(-r));
        sd_bus_message_ref(m);
        (void)sd_bus_slot_set_destroy_callback(slot, unref_message);
        (void)sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 1;
}

/* ---- properties ---- */

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_agent_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        return sd_bus_message_append(reply, "s", b->agent.version ?: "");
}

static int property_get_installed_tcs(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        int r;

        r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "(stay)");
        for (size_t i = 0; r >= 0 && i < b->agent.n_tcs; i++) {
                const AgentTC *t = &b->agent.tcs[i];
                r = sd_bus_message_open_container(reply, SD_BUS_TYPE_STRUCT, "stay");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "st", t->component, t->sequence);
                if (r >= 0)
                        r = sd_bus_message_append_array(reply, 'y', t->digest, t->digest_len);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int append_strv_n(sd_bus_message *reply, char **v, size_t n) {
        int r;

        r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "s");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "s", v[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_get_pending(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        return append_strv_n(reply, b->agent.pending, b->agent.n_pending);
}

static int property_get_tam_uris(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        /* the agent decides which TAMs it trusts; until it is there, show the configuration */
        if (b->agent.known)
                return append_strv_n(reply, b->agent.tam_uris, b->agent.n_tam_uris);
        return append_strv_n(reply, b->config.tam_uris, b->config.n_tam_uris);
}

static int property_get_requests(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        int r;

        r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "(ss)");
        for (size_t i = 0; r >= 0 && i < b->agent.n_requests; i++)
                r = sd_bus_message_append(reply, "(ss)", b->agent.requests[i].component,
                                          b->agent.requests[i].requester);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_get_last_policy_check(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        Broker *b = userdata;
        return sd_bus_message_append(reply, "t", b->last_policy_check);
}

static int property_get_policy_check_interval(sd_bus *bus, const char *path, const char *interface,
                                              const char *property, sd_bus_message *reply, void *userdata,
                                              sd_bus_error *error) {
        Broker *b = userdata;
        return sd_bus_message_append(reply, "t", b->config.policy_check_interval_usec);
}

static int property_get_active_sessions(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error) {
        Broker *b = userdata;
        Session *s;
        int r;

        r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "(stu)");
        LIST_FOREACH(sessions, s, b->sessions) {
                uint32_t n = 0;
                Job *j;
                if (r < 0)
                        break;
                if (!s->running)
                        continue;
                LIST_FOREACH(session, j, s->covered)
                        n++;
                r = sd_bus_message_append(reply, "(stu)", s->tam_uri, s->number, n);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static const sd_bus_vtable broker_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("RequestTA", "sasa{sv}",
                                 SD_BUS_PARAM(component) SD_BUS_PARAM(tam_uris) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(job), method_request_ta, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnrequestTA", "sa{sv}", SD_BUS_PARAM(component) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(job), method_unrequest_ta, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RequestPolicyCheck", "a{sv}", SD_BUS_PARAM(options), "o", SD_BUS_PARAM(job),
                                 method_request_policy_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetAgentKey", "", "", "sayay",
                                 SD_BUS_PARAM(pem) SD_BUS_PARAM(cose_key) SD_BUS_PARAM(kid), method_get_agent_key,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("JobNew", "osss",
                                 SD_BUS_PARAM(job) SD_BUS_PARAM(kind) SD_BUS_PARAM(component) SD_BUS_PARAM(requester),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobFinished", "osss",
                                 SD_BUS_PARAM(job) SD_BUS_PARAM(result) SD_BUS_PARAM(error_name)
                                         SD_BUS_PARAM(error_message),
                                 0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AgentVersion", "s", property_get_agent_version, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("InstalledTCs", "a(stay)", property_get_installed_tcs, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PendingRequests", "as", property_get_pending, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* a change is announced without the value (it holds every request on the device): Get it */
        SD_BUS_PROPERTY("Requests", "a(ss)", property_get_requests, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("TamURIs", "as", property_get_tam_uris, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastPolicyCheck", "t", property_get_last_policy_check, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PolicyCheckInterval", "t", property_get_policy_check_interval, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ActiveSessions", "a(stu)", property_get_active_sessions, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

/* Internal, for the agent's uid only (bus policy, and method_fetch checks the uid again). */
static const sd_bus_vtable fetcher_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("Fetch", "st", SD_BUS_PARAM(uri) SD_BUS_PARAM(max_size), "ht",
                                 SD_BUS_PARAM(payload) SD_BUS_PARAM(size), method_fetch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int broker_bus_register(Broker *b) {
        int r;

        r = sd_bus_add_object_vtable(b->bus, NULL, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, broker_vtable, b);
        if (r < 0)
                return log_error_errno(r, "cannot publish %s: %s", TEEP_BROKER_INTERFACE, strerror(-r));
        r = sd_bus_add_object_vtable(b->bus, NULL, TEEP_BROKER_PATH, TEEP_FETCHER_INTERFACE, fetcher_vtable, b);
        if (r < 0)
                return log_error_errno(r, "cannot publish %s: %s", TEEP_FETCHER_INTERFACE, strerror(-r));
        return 0;
}
