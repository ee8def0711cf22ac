/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agentd.c: teep-agentd — org.teepkit.Agent1 on the system bus around the agent core */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "agent.h"
#include "bus-peers.h"
#include "bus-util.h"
#include "conf.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "sandbox.h"
#include "teep-component.h"
#include "teep-errors.h"

/* Exit codes (documented in teep-agentd(8)). */
enum {
        EXIT_USAGE = 2,    /* bad command line */
        EXIT_CONFIG = 78,  /* configuration does not parse (EX_CONFIG) */
};

/* A RequestTA waiting for the batch's state save (see flush_requests()). */
typedef struct PendingRequest {
        sd_bus_message *m;       /* referenced: requester and component point into it */
        const char *requester, *component;
        char **tam_uris;
} PendingRequest;

#define PENDING_REQUESTS_MAX 256
/* how long a new instance waits for a resting one to finish its last write */
#define AGENT_LOCK_WAIT_MS 10000

typedef struct Daemon {
        Agent *agent;
        sd_bus *bus;
        sd_event *event;
        uid_t broker_uid;
        PendingRequest pending[PENDING_REQUESTS_MAX];
        size_t n_pending;
        sd_event_source *flush;  /* idle-priority: runs once the bus has nothing queued */
        sd_event_source *save;   /* timer: the state write of answered (Un)RequestTA calls (Q25) */
        uint64_t save_retry_usec; /* after a failed write: the wait before the next try (0: none failed) */
        sd_event_source *bus_drain; /* bus_attach_event() */
        /* Rest: after idle_usec without calls, and when agent_busy_reason() has none, give the
         * name back and exit; the next Agent1 call starts a new instance (bus activation). */
        uint64_t idle_usec;          /* 0: never */
        sd_event_source *idle;       /* the countdown */
        sd_event_source *idle_rearm; /* defer: restarts it once the call that enabled it is done */
        sd_bus_slot *idle_filter;    /* sees every incoming method call */
} Daemon;

/* ---- errors ---- */

static int reply_error(sd_bus_error *error, int r, const char *what) {
        switch (-r) {
        case EADDRNOTAVAIL:
                return sd_bus_error_setf(error, TEEP_ERROR_NO_TAM, "%s: no trusted TAM is configured or offered", what);
        case ENOENT:
                return sd_bus_error_setf(error, TEEP_ERROR_NOT_REQUESTED, "%s: this requester has no such request", what);
        case EPERM:
                return sd_bus_error_setf(error, TEEP_ERROR_TRUST_FAILURE, "%s: not a configured TAM", what);
        case EAGAIN:
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "%s: the agent is not ready", what);
        case E2BIG:
                return sd_bus_error_setf(error, "org.teepkit.Error.LimitExceeded", "%s: too many requests", what);
        default:
                return bus_error_set_teep(error, r, "%s: %s", what, strerror(-r));
        }
}

static int check_component(const char *component, sd_bus_error *error) {
        _cleanup_free_ uint8_t *enc = NULL;
        size_t len;

        if (teep_suit_component_id_from_string(component, &enc, &len) < 0)
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                         "\"%.200s\" is not a component name (see teepctl(1), COMPONENT NAMES)", component);
        return 0;
}

/* ---- methods ---- */

static void strv_free_n(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int on_save(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;
        int r = agent_save_requests(d->agent);
        if (r < 0)
                /* in memory it is right; the next write of the state (any) retries it */
                log_error("cannot write the requests to the state file: %s", strerror(-r));
        return 0;
}

/* Settle the requests before an exchange ends (a no-op when they are on disk already). */
static void save_now(Daemon *d) {
        (void)on_save(NULL, d);
}

/* The timer's write; one that fails (a full disk, say) is tried again, less and less often (up
 * to once a minute), until it works or another write of the state takes the requests with it. */
static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        (void)on_save(s, d);
        if (!agent_has_unsaved_requests(d->agent)) {
                d->save_retry_usec = 0;
                return 0;
        }
        d->save_retry_usec = d->save_retry_usec == 0 ? 2 * AGENT_REQUEST_SAVE_DELAY_USEC : 2 * d->save_retry_usec;
        if (d->save_retry_usec > AGENT_REQUEST_SAVE_RETRY_MAX_USEC)
                d->save_retry_usec = AGENT_REQUEST_SAVE_RETRY_MAX_USEC;
        log_info("the requests stay in memory; next try in %" PRIu64 " s", d->save_retry_usec / 1000000u);
        if (sd_event_source_set_time_relative(s, d->save_retry_usec) < 0 ||
            sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) < 0)
                log_warning("cannot schedule the next try: the next write of the state takes them");
        return 0;
}

/*
 * RequestTA and UnrequestTA are answered before their state write (docs/protocol-decisions.md,
 * Q25). The write waits up to AGENT_REQUEST_SAVE_DELAY_USEC after the first unsaved change: a
 * request usually starts a session at once, and the journal of that session's Update carries
 * every unwritten request (update.c), so the request is durable by the time its install is,
 * with no write of its own. When no Update comes in time (the TC is there already, another
 * requester still needs it, a remote TAM is slow), the timer writes it. A crash in between
 * loses the request, like the broker's job for it (in memory too): the requester sees its job
 * fail and asks again. Stopping (SIGTERM) writes it on the way out.
 */
static void schedule_save(Daemon *d) {
        int enabled = SD_EVENT_OFF, r;

        if (!agent_has_unsaved_requests(d->agent))
                return;
        if (!d->save) {
                r = sd_event_add_time_relative(d->event, &d->save, CLOCK_MONOTONIC, AGENT_REQUEST_SAVE_DELAY_USEC, 0,
                                               on_save_timer, d);
                if (r >= 0)
                        (void)sd_event_source_set_description(d->save, "save-requests");
                else
                        save_now(d); /* no event source: write now */
                return;
        }
        if (sd_event_source_get_enabled(d->save, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return; /* armed: the deadline counts from the first unsaved change */
        r = sd_event_source_set_time_relative(d->save, AGENT_REQUEST_SAVE_DELAY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->save, SD_EVENT_ONESHOT);
        if (r < 0)
                save_now(d);
}

/*
 * Group commit: RequestTA calls queue up while the bus has more messages waiting, then are
 * answered together and share one state save (schedule_save(): the next journal, or a timer) — a
 * burst of requests (a package manager, a hundred apps starting) costs one durable write
 * instead of one each. Every other method that reads or
 * changes the state flushes the queue first, so calls still take effect in the order they came.
 */
static void flush_requests(Daemon *d) {
        AgentRequestCall calls[PENDING_REQUESTS_MAX];
        char *uris[PENDING_REQUESTS_MAX];
        int rs[PENDING_REQUESTS_MAX];
        size_t n = d->n_pending;

        if (n == 0)
                return;
        for (size_t i = 0; i < n; i++)
                calls[i] = (AgentRequestCall){ .requester = d->pending[i].requester,
                                               .component = d->pending[i].component,
                                               .tam_uris = d->pending[i].tam_uris };
        (void)agent_request_ta_many(d->agent, n, calls, rs, uris);
        for (size_t i = 0; i < n; i++) {
                sd_bus_message *m = d->pending[i].m;
                int r;

                if (rs[i] >= 0)
                        r = sd_bus_reply_method_return(m, "s", uris[i] ?: "");
                else {
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        (void)reply_error(&e, rs[i], "RequestTA");
                        r = sd_bus_reply_method_error(m, &e);
                        sd_bus_error_free(&e);
                }
                if (r < 0)
                        log_warning("cannot answer a RequestTA: %s", strerror(-r));
                free(uris[i]);
                strv_free_n(d->pending[i].tam_uris);
                sd_bus_message_unref(m);
        }
        d->n_pending = 0;
        schedule_save(d);
}

static int on_flush_requests(sd_event_source *s, void *userdata) {
        flush_requests(userdata);
        return 0;
}

static int method_request_ta(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        char **uris = NULL;
        const char *requester, *component;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &requester, &component);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &uris);
        if (r < 0)
                return r;
        r = check_component(component, error);
        if (r < 0) {
                strv_free_n(uris);
                return r;
        }
        if (d->n_pending >= PENDING_REQUESTS_MAX)
                flush_requests(d);
        d->pending[d->n_pending++] = (PendingRequest){
                .m = sd_bus_message_ref(m), .requester = requester, .component = component, .tam_uris = uris };
        if (!d->flush) {
                r = sd_event_add_defer(d->event, &d->flush, on_flush_requests, d);
                if (r >= 0)
                        r = sd_event_source_set_priority(d->flush, SD_EVENT_PRIORITY_IDLE);
                if (r < 0) {
                        d->flush = sd_event_source_unref(d->flush);
                        flush_requests(d); /* no batching then, but an answer */
                        return 1;
                }
        }
        r = sd_event_source_set_enabled(d->flush, SD_EVENT_ONESHOT);
        if (r < 0)
                flush_requests(d);
        return 1; /* answered by flush_requests() */
}

/*
 * RequestTAMany: the broker's batch of RequestTA calls (every call that reached it in one turn of
 * its event loop), one message each way and one state save for all. Each item is answered on its
 * own: a bad component or a refused request fails that item, never its neighbours. The requester
 * of each item is the broker's word, as for RequestTA.
 */
#define REQUEST_TA_MANY_MAX PENDING_REQUESTS_MAX

typedef struct ManyItem {
        const char *requester, *component;
        char **tam_uris;
        bool bad_component; /* refused before the agent saw it */
        int r;
        char *uri;
} ManyItem;

static int method_request_ta_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ManyItem items[REQUEST_TA_MANY_MAX];
        AgentRequestCall calls[REQUEST_TA_MANY_MAX];
        int rs[REQUEST_TA_MANY_MAX];
        char *uris[REQUEST_TA_MANY_MAX];
        size_t n = 0, n_calls = 0;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(ssas)");
        if (r < 0)
                return r;
        for (;;) {
                ManyItem it = {};

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "ssas");
                if (r <= 0)
                        break;
                if (n >= REQUEST_TA_MANY_MAX) {
                        r = sd_bus_error_setf(error, TEEP_ERROR_LIMIT_EXCEEDED,
                                              "RequestTAMany: at most %d requests in one call", REQUEST_TA_MANY_MAX);
                        break;
                }
                r = sd_bus_message_read(m, "ss", &it.requester, &it.component);
                if (r >= 0)
                        r = sd_bus_message_read_strv(m, &it.tam_uris);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        strv_free_n(it.tam_uris);
                        break;
                }
                {
                        _cleanup_free_ uint8_t *enc = NULL;
                        size_t len;
                        if (teep_suit_component_id_from_string(it.component, &enc, &len) < 0)
                                it.bad_component = true;
                }
                items[n++] = it;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto finish;

        /* calls still queued by RequestTA came first */
        flush_requests(d);
        for (size_t i = 0; i < n; i++)
                if (!items[i].bad_component)
                        calls[n_calls++] = (AgentRequestCall){ .requester = items[i].requester,
                                                               .component = items[i].component,
                                                               .tam_uris = items[i].tam_uris };
        if (n_calls > 0)
                (void)agent_request_ta_many(d->agent, n_calls, calls, rs, uris);
        for (size_t i = 0, k = 0; i < n; i++)
                if (!items[i].bad_component) {
                        items[i].r = rs[k];
                        items[i].uri = uris[k];
                        k++;
                }

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "(sss)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (items[i].bad_component)
                        (void)sd_bus_error_setf(&e, TEEP_ERROR_INVALID_COMPONENT,
                                                "\"%.200s\" is not a component name (see teepctl(1), COMPONENT NAMES)",
                                                items[i].component);
                else if (items[i].r < 0)
                        (void)reply_error(&e, items[i].r, "RequestTA");
                r = sd_bus_message_append(reply, "(sss)", items[i].uri ?: "", e.name ?: "", e.message ?: "");
                sd_bus_error_free(&e);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (n_calls > 0)
                schedule_save(d); /* as flush_requests(): the journal or the timer writes it */
finish:
        for (size_t i = 0; i < n; i++) {
                strv_free_n(items[i].tam_uris);
                free(items[i].uri);
        }
        return r;
}

static int method_unrequest_ta(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ char *uri = NULL;
        const char *requester, *component;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &requester, &component);
        if (r < 0)
                return r;
        r = check_component(component, error);
        if (r < 0)
                return r;
        flush_requests(d);
        r = agent_unrequest_ta(d->agent, requester, component, &uri);
        if (r < 0)
                return reply_error(error, r, "UnrequestTA");
        schedule_save(d);
        return sd_bus_reply_method_return(m, "s", uri ?: "");
}

static int method_request_policy_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ char *uri = NULL;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        flush_requests(d);
        r = agent_request_policy_check(d->agent, &uri);
        if (r < 0)
                return reply_error(error, r, "RequestPolicyCheck");
        return sd_bus_reply_method_return(m, "s", uri ?: "");
}

/* The named error a refusal stands for: docs/errors.md's table, and for what went wrong on the
 * way (the payload download, the installer) the name a person can act on. */
static const char *refusal_error_name(int r) {
        switch (-r) {
        case EHOSTUNREACH:
        case ECONNREFUSED:
        case ECONNRESET:
        case ETIMEDOUT:
                return TEEP_ERROR_TAM_UNREACHABLE;
        case EFBIG:
                return TEEP_ERROR_LIMIT_EXCEEDED;
        case EPERM: /* a SUIT condition (vendor, class) says the manifest is not for this device */
                return TEEP_ERROR_MANIFEST_REJECTED;
        case ENAMETOOLONG:
                return TEEP_ERROR_INVALID_COMPONENT;
        default:
                return teep_errno_mapping(r)->dbus_name;
        }
}

static int method_process_teep_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        const char *tam_uri;
        const void *msg;
        size_t len, out_len = 0;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &tam_uri);
        if (r >= 0)
                r = sd_bus_message_read_array(m, 'y', &msg, &len);
        if (r < 0)
                return r;
        flush_requests(d);
        (void)agent_take_refusal(d->agent, NULL);
        r = agent_process_message(d->agent, tam_uri, TEEP_BUF(msg, len), &out, &out_len);
        if (r < 0 || out_len == 0)
                save_now(d); /* the exchange is over */
        if (r < 0)
                return reply_error(error, r, "ProcessTeepMessage");
        {
                /* the answer is a TEEP Error: tell the broker which named error it stands for */
                const char *why = NULL;
                int refusal = agent_take_refusal(d->agent, &why);
                if (refusal < 0) {
                        /* to the caller (the broker) only: nobody else needs why a TAM was refused */
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
                        int k = sd_bus_message_new_signal(d->bus, &sig, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, "Refused");
                        if (k >= 0)
                                k = sd_bus_message_set_destination(sig, sd_bus_message_get_sender(m));
                        if (k >= 0)
                                k = sd_bus_message_append(sig, "sss", tam_uri, refusal_error_name(refusal), why ?: "");
                        if (k >= 0)
                                k = sd_bus_send(NULL, sig, NULL);
                        if (k < 0)
                                log_warning("cannot send Refused: %s", strerror(-k));
                }
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', out ?: (const uint8_t *)"", out_len);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int method_process_error(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ char *next = NULL;
        const char *tam_uri, *err;
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &tam_uri, &err);
        if (r < 0)
                return r;
        flush_requests(d);
        r = agent_process_error(d->agent, tam_uri, err, &next);
        save_now(d);
        if (r < 0)
                return reply_error(error, r, "ProcessError");
        return sd_bus_reply_method_return(m, "s", next ?: "");
}

static int method_get_device_key(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *pem = NULL;
        _cleanup_free_ uint8_t *cose = NULL;
        size_t cose_len = 0;
        uint8_t kid[32];
        int r;

        r = bus_require_sender_uid(m, d->broker_uid, error);
        if (r < 0)
                return r;
        r = agent_get_device_key(d->agent, &pem, &cose, &cose_len, kid);
        if (r < 0)
                return reply_error(error, r, "GetDeviceKey");
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", pem);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', cose, cose_len);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', kid, sizeof(kid));
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* ---- properties (every read checks the caller too) ---- */

static int property_check(sd_bus *bus, Daemon *d, sd_bus_error *error) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        /* No message being handled: we are emitting PropertiesChanged ourselves (after a batch
         * of RequestTA calls, flush_requests()); the bus policy decides who may receive it. */
        if (!m)
                return 0;
        return bus_require_sender_uid(m, d->broker_uid, error);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int r = property_check(bus, userdata, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_installed(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const AgentTc *tcs;
        size_t n;
        int r = property_check(bus, d, error);

        if (r < 0)
                return r;
        n = agent_installed(d->agent, &tcs);
        r = sd_bus_message_open_container(reply, 'a', "(stay)");
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = sd_bus_message_open_container(reply, 'r', "stay");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "st", tcs[i].component, tcs[i].seq);
                if (r >= 0)
                        r = sd_bus_message_append_array(reply, 'y', tcs[i].sha256, 32);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int append_requests(sd_bus_message *m, const AgentRequest *reqs, size_t n) {
        int r = sd_bus_message_open_container(m, 'a', "(ss)");

        for (size_t i = 0; i < n && r >= 0; i++)
                r = sd_bus_message_append(m, "(ss)", reqs[i].component, reqs[i].requester);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_requests(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const AgentRequest *reqs;
        size_t n;
        int r = property_check(bus, d, error);

        if (r < 0)
                return r;
        n = agent_requests(d->agent, &reqs);
        return append_requests(reply, reqs, n);
}

static int property_get_pending(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ const char **list = NULL;
        int r = property_check(bus, d, error);

        if (r < 0)
                return r;
        r = agent_pending(d->agent, &list);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, (char **)list);
}

static int property_get_tam_uris(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *const *uris;
        int r = property_check(bus, d, error);

        if (r < 0)
                return r;
        (void)agent_tam_uris(d->agent, &uris);
        return sd_bus_message_append_strv(reply, (char **)uris);
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("RequestTA", "ssas", SD_BUS_PARAM(requester) SD_BUS_PARAM(component) SD_BUS_PARAM(tam_uris),
                                 "s", SD_BUS_PARAM(tam_uri), method_request_ta, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RequestTAMany", "a(ssas)", SD_BUS_PARAM(requests), "a(sss)", SD_BUS_PARAM(answers),
                                 method_request_ta_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnrequestTA", "ss", SD_BUS_PARAM(requester) SD_BUS_PARAM(component), "s",
                                 SD_BUS_PARAM(tam_uri), method_unrequest_ta, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RequestPolicyCheck", "", , "s", SD_BUS_PARAM(tam_uri), method_request_policy_check,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ProcessTeepMessage", "say", SD_BUS_PARAM(tam_uri) SD_BUS_PARAM(message), "ay",
                                 SD_BUS_PARAM(reply), method_process_teep_message, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ProcessError", "ss", SD_BUS_PARAM(tam_uri) SD_BUS_PARAM(error), "s",
                                 SD_BUS_PARAM(next_tam_uri), method_process_error, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetDeviceKey", "", , "sayay", SD_BUS_PARAM(pem) SD_BUS_PARAM(cose_key) SD_BUS_PARAM(kid),
                                 method_get_device_key, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Refused", "sss", SD_BUS_PARAM(tam_uri) SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
        SD_BUS_SIGNAL_WITH_NAMES("RequestsChanged", "a(ss)a(ss)", SD_BUS_PARAM(added) SD_BUS_PARAM(removed), 0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("InstalledTCs", "a(stay)", property_get_installed, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* announced by RequestsChanged, what changed only: the whole list can be long */
        SD_BUS_PROPERTY("Requests", "a(ss)", property_get_requests, 0, 0),
        SD_BUS_PROPERTY("PendingRequests", "as", property_get_pending, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TamURIs", "as", property_get_tam_uris, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

/* Requests is announced by what changed, not by its whole value (PropertiesChanged would
 * carry every request on the device for each one added): O(change) on the bus. */
static int emit_requests_changed(Daemon *d, const AgentChange *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_signal(d->bus, &m, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, "RequestsChanged");
        if (r >= 0)
                r = append_requests(m, c->added, c->n_added);
        if (r >= 0)
                r = append_requests(m, c->removed, c->n_removed);
        if (r >= 0)
                r = sd_bus_send(d->bus, m, NULL);
        return r;
}

static void on_changed(Agent *a, const AgentChange *c, void *userdata) {
        Daemon *d = userdata;
        const char *names[3];
        size_t n = 0;
        int r;

        if (!d->bus)
                return;
        if ((c->what & AGENT_CHANGED_REQUESTS) && (c->n_added > 0 || c->n_removed > 0)) {
                r = emit_requests_changed(d, c);
                if (r < 0)
                        log_warning("cannot emit RequestsChanged: %s", strerror(-r));
        }
        if (c->what & AGENT_CHANGED_INSTALLED)
                names[n++] = "InstalledTCs";
        if (c->what & AGENT_CHANGED_PENDING)
                names[n++] = "PendingRequests";
        names[n] = NULL;
        if (n == 0)
                return;
        r = sd_bus_emit_properties_changed_strv(d->bus, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, (char **)names);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged: %s", strerror(-r));
}

/* ---- main ---- */

static void help(void) {
        printf("Usage: teep-agentd [OPTIONS]\n\n"
               "The TEEP Agent: owns org.teepkit.Agent1 on the system bus.\n\n"
               "  -c, --config FILE        configuration file (default %s; drop-ins in FILE.d/)\n"
               "      --state-dir DIR      [Agent] StateDirectory=\n"
               "      --trust-anchors DIR  [Agent] TrustAnchorDirectory=\n"
               "      --signers DIR        [Agent] SignerDirectory=\n"
               "      --broker-user USER   [Agent] BrokerUser=\n"
               "      --idle-timeout SPAN  [Agent] IdleTimeoutSec= (0: never rest)\n"
               "      --print-key pem|cose print the device public key (creating the key on first use) and exit\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n",
               TEEP_CONF_FILE);
}

static int set_override(char **dst, const char *v) {
        char *n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

static int print_key(Agent *a, const char *form) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_free_ uint8_t *cose = NULL;
        size_t cose_len = 0;
        uint8_t kid[32];
        int r;

        r = agent_load_device_key(a);
        if (r < 0)
                return r;
        r = agent_get_device_key(a, &pem, &cose, &cose_len, kid);
        if (r < 0)
                return r;
        if (strcmp(form, "pem") == 0)
                fputs(pem, stdout);
        else {
                _cleanup_free_ char *hex = malloc(2 * cose_len + 1);
                if (!hex)
                        return -ENOMEM;
                printf("%s\n", hexstr(cose, cose_len, hex));
        }
        return fflush(stdout) == 0 ? 0 : -EIO;
}

/* ---- rest (idle exit) ---- */

static int on_idle_rearm(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;

        if (sd_event_source_set_time_relative(d->idle, d->idle_usec) < 0 ||
            sd_event_source_set_enabled(d->idle, SD_EVENT_ONESHOT) < 0)
                log_warning("cannot re-arm the idle timer; staying up");
        return 0;
}

/* Every incoming message passes here first. A method call enables the defer source, which runs
 * in the loop's next iteration, after the call's work (calls are handled synchronously): the
 * countdown starts when the call is done, however long it took. */
static int on_idle_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Daemon *d = userdata;

        if (sd_bus_message_is_method_call(m, NULL, NULL) &&
            sd_event_source_set_enabled(d->idle_rearm, SD_EVENT_ONESHOT) < 0)
                log_warning("cannot re-arm the idle timer; staying up");
        return 0;
}

static bool idle_rearm_pending(Daemon *d) {
        int enabled = SD_EVENT_OFF;
        return sd_event_source_get_enabled(d->idle_rearm, &enabled) >= 0 && enabled != SD_EVENT_OFF;
}

/*
 * No call for idle_usec: rest, unless this instance holds something a new one would not have.
 * Order matters: write what is pending while the name is ours; give the name back, so that a
 * call arriving from now on starts a new instance; answer what the bus had already queued for
 * us; then exit. The new instance waits for the state directory's lock (agent_lock_state()),
 * which this one holds until its last write is done.
 */
static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        const char *busy;
        int r;

        if (idle_rearm_pending(d))
                return 0; /* a call came: the countdown starts again once it is done */
        if (d->n_pending > 0)
                busy = "requests wait for their answer";
        else
                busy = agent_busy_reason(d->agent);
        if (busy) {
                log_debug("no calls for %" PRIu64 " s, but %s: staying", d->idle_usec / 1000000u, busy);
                return on_idle_rearm(NULL, d);
        }
        r = agent_save_schedule(d->agent);
        if (r < 0)
                log_warning("cannot write the policy-check schedule: %s", strerror(-r));
        log_info("no calls for %" PRIu64 " s: resting (the next call starts teep-agentd again)", d->idle_usec / 1000000u);
        bus_release_name_and_drain(d->bus, TEEP_AGENT_BUS_NAME);
        return sd_event_exit(d->event, 0);
}

static int idle_setup(Daemon *d) {
        int r;

        if (d->idle_usec == 0)
                return 0;
        r = sd_event_add_time_relative(d->event, &d->idle, CLOCK_MONOTONIC, d->idle_usec, 0, on_idle, d);
        if (r >= 0)
                (void)sd_event_source_set_description(d->idle, "idle");
        if (r >= 0)
                r = sd_event_add_defer(d->event, &d->idle_rearm, on_idle_rearm, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->idle_rearm, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_bus_add_filter(d->bus, &d->idle_filter, on_idle_filter, d);
        return r;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        log_info("signal %d: exiting", (int)si->ssi_signo);
        return sd_event_exit(d->event, 0);
}

int main(int argc, char *argv[]) {
        enum { ARG_STATE_DIR = 0x100, ARG_TRUST_ANCHORS, ARG_SIGNERS, ARG_BROKER_USER, ARG_IDLE_TIMEOUT, ARG_PRINT_KEY,
               ARG_VERSION, ARG_SANDBOX_SELF_TEST };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "trust-anchors", required_argument, NULL, ARG_TRUST_ANCHORS },
                { "signers", required_argument, NULL, ARG_SIGNERS },
                { "broker-user", required_argument, NULL, ARG_BROKER_USER },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "print-key", required_argument, NULL, ARG_PRINT_KEY },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                /* hidden: start up, enter the box, try forbidden calls, exit (tests/seccomp) */
                { "sandbox-self-test", no_argument, NULL, ARG_SANDBOX_SELF_TEST },
                {},
        };
        const char *config_path = TEEP_CONF_FILE, *state_dir = NULL, *anchors = NULL, *signers = NULL, *broker_user = NULL,
                   *key_form = NULL;
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        Daemon d = { .broker_uid = (uid_t)-1 };
        AgentConfig cfg;
        char errbuf[512];
        sigset_t ss;
        bool sandbox_self_test = false, idle_set = false;
        uint64_t idle_usec = 0;
        int c, r, ret = EXIT_FAILURE;

        log_setup("teep-agentd");
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        state_dir = optarg;
                        break;
                case ARG_TRUST_ANCHORS:
                        anchors = optarg;
                        break;
                case ARG_SIGNERS:
                        signers = optarg;
                        break;
                case ARG_BROKER_USER:
                        broker_user = optarg;
                        break;
                case ARG_IDLE_TIMEOUT:
                        if (teep_parse_usec(optarg, &idle_usec) < 0) {
                                fprintf(stderr, "teep-agentd: --idle-timeout=%s: not a time span\n", optarg);
                                return EXIT_USAGE;
                        }
                        idle_set = true;
                        break;
                case ARG_PRINT_KEY:
                        if (strcmp(optarg, "pem") != 0 && strcmp(optarg, "cose") != 0) {
                                fprintf(stderr, "teep-agentd: --print-key takes pem or cose\n");
                                return EXIT_USAGE;
                        }
                        key_form = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("teep-agentd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_SANDBOX_SELF_TEST:
                        sandbox_self_test = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "teep-agentd: unexpected argument %s\n", argv[optind]);
                return EXIT_USAGE;
        }

        agent_config_init(&cfg);
        r = teep_conf_load(config_path, &conf, errbuf, sizeof(errbuf));
        if (r < 0) {
                log_error("%s", errbuf[0] ? errbuf : strerror(-r));
                return EXIT_CONFIG;
        }
        r = agent_config_load(&cfg, conf, errbuf, sizeof(errbuf));
        if (r >= 0 && state_dir)
                r = set_override(&cfg.state_dir, state_dir);
        if (r >= 0 && anchors)
                r = set_override(&cfg.trust_anchor_dir, anchors);
        if (r >= 0 && signers)
                r = set_override(&cfg.signer_dir, signers);
        if (r >= 0 && broker_user)
                r = set_override(&cfg.broker_user, broker_user);
        if (idle_set)
                cfg.idle_timeout_usec = idle_usec;
        if (r < 0) {
                log_error("%s: %s", config_path, errbuf[0] ? errbuf : strerror(-r));
                agent_config_done(&cfg);
                return EXIT_CONFIG;
        }

        if (key_form) {
                r = agent_new(&d.agent, &cfg, NULL, NULL, NULL, NULL);
                agent_config_done(&cfg);
                if (r >= 0)
                        r = print_key(d.agent, key_form);
                agent_free(d.agent);
                if (r < 0) {
                        log_error("cannot print the device key: %s", strerror(-r));
                        return EXIT_FAILURE;
                }
                return EXIT_SUCCESS;
        }

        r = teep_resolve_user(cfg.broker_user, &d.broker_uid, NULL);
        if (r < 0) {
                log_error("BrokerUser=%s: no such user", cfg.broker_user);
                agent_config_done(&cfg);
                return EXIT_CONFIG;
        }

        r = sd_event_default(&d.event);
        if (r < 0) {
                log_error("cannot create the event loop: %s", strerror(-r));
                goto finish;
        }
        r = sd_bus_open_system(&d.bus);
        if (r < 0) {
                log_error("cannot connect to the system bus (%s): %s", getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "default address",
                          strerror(-r));
                goto finish;
        }
        d.idle_usec = cfg.idle_timeout_usec;
        r = agent_new(&d.agent, &cfg, &bus_installer, d.bus, &bus_fetcher, d.bus);
        agent_config_done(&cfg);
        if (r < 0) {
                log_error("cannot set up the agent: %s", strerror(-r));
                goto finish;
        }
        /* One instance per state directory: an instance that is resting may still be writing. */
        r = agent_lock_state(d.agent, AGENT_LOCK_WAIT_MS);
        if (r < 0) {
                log_error("cannot lock %s: %s", agent_config(d.agent)->state_dir,
                          r == -EWOULDBLOCK ? "another teep-agentd is using it" : strerror(-r));
                goto finish;
        }
        r = agent_start(d.agent);
        if (r < 0)
                goto finish;
        agent_set_changed_callback(d.agent, on_changed, &d);
        agent_set_deferred_request_saves(d.agent, true);

        r = sd_bus_add_object_vtable(d.bus, NULL, TEEP_AGENT_PATH, TEEP_AGENT_INTERFACE, agent_vtable, &d);
        if (r >= 0)
                r = bus_attach_event(d.bus, d.event, &d.bus_drain);
        if (r < 0) {
                log_error("cannot publish %s: %s", TEEP_AGENT_PATH, strerror(-r));
                goto finish;
        }
        /* A streamed payload goes to the installer through a pipe: if the installer dies, the
         * write fails with EPIPE and fails the Update; SIGPIPE would kill the agent (sd-bus's
         * own sockets use MSG_NOSIGNAL, a pipe cannot). */
        (void)signal(SIGPIPE, SIG_IGN);
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0 || sd_event_add_signal(d.event, NULL, SIGTERM, on_signal, &d) < 0 ||
            sd_event_add_signal(d.event, NULL, SIGINT, on_signal, &d) < 0) {
                log_error("cannot set up signal handling");
                goto finish;
        }

        /* Everything that needs more than the filter allows (key creation, reading the trust
         * anchors, DMI) is done. */
        r = agent_sandbox_apply(agent_config(d.agent)->state_dir);
        if (r < 0) {
                log_error("cannot install the seccomp filter: %s", strerror(-r));
                goto finish;
        }
        if (sandbox_self_test) {
                ret = agent_sandbox_self_test(agent_config(d.agent)->state_dir) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
                goto finish;
        }

        r = sd_bus_request_name(d.bus, TEEP_AGENT_BUS_NAME, 0);
        if (r < 0) {
                log_error("cannot own %s on the bus (%s): %s", TEEP_AGENT_BUS_NAME,
                          r == -EACCES ? "the bus policy does not allow this user" : "taken?", strerror(-r));
                goto finish;
        }
        r = idle_setup(&d);
        if (r < 0) {
                log_error("cannot arm the idle timer: %s", strerror(-r));
                goto finish;
        }
        log_info("teep-agentd %s ready on %s; broker uid %" PRIu32 "; rests after %" PRIu64 " s without calls%s",
                 PACKAGE_VERSION, TEEP_AGENT_BUS_NAME, (uint32_t)d.broker_uid, d.idle_usec / 1000000u,
                 d.idle_usec ? "" : " (never)");

        r = sd_event_loop(d.event);
        if (r < 0) {
                log_error("event loop failed: %s", strerror(-r));
                goto finish;
        }
        ret = EXIT_SUCCESS;
finish:
        if (d.agent) {
                flush_requests(&d); /* answered, not dropped, on the way out */
                (void)agent_flush_state(d.agent); /* tidy: otherwise the next start resolves the journal */
                if (agent_save_schedule(d.agent) < 0)
                        log_warning("cannot write the policy-check schedule: the next start counts every TAM as due");
        }
        d.idle_filter = sd_bus_slot_unref(d.idle_filter);
        d.idle_rearm = sd_event_source_disable_unref(d.idle_rearm);
        d.idle = sd_event_source_unref(d.idle);
        d.flush = sd_event_source_unref(d.flush);
        d.save = sd_event_source_unref(d.save);
        d.bus_drain = sd_event_source_disable_unref(d.bus_drain);
        if (d.bus)
                sd_bus_flush_close_unref(d.bus);
        d.bus = NULL;
        agent_free(d.agent);
        sd_event_unref(d.event);
        return ret;
}
