/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-util.c: see bus-util.h */
#include "bus-util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "log.h"
#include "macro.h"
#include "teep-errors.h"

int teep_resolve_user(const char *name_or_uid, uid_t *ret_uid, gid_t *ret_gid) {
        struct passwd *pw;
        char *end;
        unsigned long v;

        if (!name_or_uid || !*name_or_uid)
                return -EINVAL;
        errno = 0;
        v = strtoul(name_or_uid, &end, 10);
        if (*end == '\0' && errno == 0 && v < UINT32_MAX) {
                if (ret_uid)
                        *ret_uid = (uid_t)v;
                if (ret_gid) {
                        pw = getpwuid((uid_t)v);
                        *ret_gid = pw ? pw->pw_gid : (gid_t)v;
                }
                return 0;
        }
        errno = 0;
        pw = getpwnam(name_or_uid);
        if (!pw)
                return errno > 0 ? -errno : -ESRCH;
        if (ret_uid)
                *ret_uid = pw->pw_uid;
        if (ret_gid)
                *ret_gid = pw->pw_gid;
        return 0;
}

/*
 * Who a sender is, by unique name, remembered. With dbus-daemon, sd-bus learns a sender's
 * credentials with a synchronous GetConnectionCredentials call per query: a round trip through
 * the bus for every method call and every property read (a GetAll of five properties was five of
 * them), the event loop waiting. What makes remembering it sound: dbus-daemon records a
 * connection's credentials when it connects and they never change, and a unique name (":1.42")
 * is never given to a second connection during the life of a bus (the bus id tells buses apart,
 * so a test process with two buses, or a daemon reconnected to a restarted bus, never mixes them
 * up). Bounded: the oldest entry makes room; the broker's clients are the many callers.
 */
#define SENDER_CACHE_SIZE 128
static struct {
        sd_id128_t bus_id;
        char name[64];
        uid_t uid;
        bool has_unit; /* the caller's unit was asked (bus_sender_cache_put()) */
        char *unit;    /* then: the unit, or NULL for none */
} sender_cache[SENDER_CACHE_SIZE];
static unsigned sender_cache_next;

/* The cache key of m's sender; -EINVAL when it has none (not a unique name that fits, no bus id). */
static int sender_key(sd_bus_message *m, sd_id128_t *ret_bus_id, const char **ret_name) {
        const char *sender = sd_bus_message_get_sender(m);

        /* only unique names that fit; a well-known name could change hands */
        if (!sender || sender[0] != ':' || strlen(sender) >= sizeof(sender_cache[0].name) ||
            sd_bus_get_bus_id(sd_bus_message_get_bus(m), ret_bus_id) < 0 || sd_id128_is_null(*ret_bus_id))
                return -EINVAL;
        *ret_name = sender;
        return 0;
}

static ssize_t sender_cache_find(sd_id128_t bus_id, const char *name) {
        for (size_t i = 0; i < SENDER_CACHE_SIZE; i++)
                if (sender_cache[i].name[0] && sd_id128_equal(sender_cache[i].bus_id, bus_id) &&
                    strcmp(sender_cache[i].name, name) == 0)
                        return (ssize_t)i;
        return -1;
}

bool bus_sender_cache_get(sd_bus_message *m, bool need_unit, uid_t *ret_uid, const char **ret_unit) {
        sd_id128_t bus_id;
        const char *name;
        ssize_t i;

        if (sender_key(m, &bus_id, &name) < 0 || (i = sender_cache_find(bus_id, name)) < 0 ||
            (need_unit && !sender_cache[i].has_unit))
                return false;
        *ret_uid = sender_cache[i].uid;
        if (ret_unit)
                *ret_unit = sender_cache[i].unit;
        return true;
}

void bus_sender_cache_put(sd_bus_message *m, uid_t uid, bool has_unit, const char *unit) {
        sd_id128_t bus_id;
        const char *name;
        char *u = NULL;
        ssize_t i;

        if (sender_key(m, &bus_id, &name) < 0 || (has_unit && unit && !(u = strdup(unit))))
                return;
        i = sender_cache_find(bus_id, name);
        if (i < 0) {
                i = (ssize_t)(sender_cache_next++ % SENDER_CACHE_SIZE);
                sender_cache[i].bus_id = bus_id;
                (void)snprintf(sender_cache[i].name, sizeof(sender_cache[i].name), "%s", name);
                sender_cache[i].has_unit = false;
        } else if (sender_cache[i].has_unit && !has_unit) {
                return; /* what we know already includes the unit */
        }
        free(sender_cache[i].unit);
        sender_cache[i].uid = uid;
        sender_cache[i].has_unit = has_unit;
        sender_cache[i].unit = u;
}

int bus_sender_uid(sd_bus_message *m, uid_t *ret) {
        sd_bus_creds *creds = NULL;
        int r;

        if (bus_sender_cache_get(m, false, ret, NULL))
                return 0;
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, ret);
        sd_bus_creds_unref(creds);
        if (r >= 0)
                bus_sender_cache_put(m, *ret, false, NULL);
        return r;
}

int bus_require_sender_uid(sd_bus_message *m, uid_t allowed, sd_bus_error *error) {
        uid_t uid = (uid_t)-1;
        int r;

        r = bus_sender_uid(m, &uid);
        if (r >= 0 && uid == allowed)
                return 0;
        log_warning("refused %s.%s from %s (uid %" PRIu32 "): only uid %" PRIu32 " may call it",
                    sd_bus_message_get_interface(m) ?: "?", sd_bus_message_get_member(m) ?: "?",
                    sd_bus_message_get_sender(m) ?: "?", (uint32_t)uid, (uint32_t)allowed);
        sd_bus_error_setf(error, TEEP_ERROR_ACCESS_DENIED, "%s is reserved for uid %" PRIu32 "; caller is uid %" PRIu32,
                          sd_bus_message_get_member(m) ?: "this method", (uint32_t)allowed, (uint32_t)uid);
        return -EACCES;
}

int bus_error_set_teep(sd_bus_error *error, int errno_value, const char *fmt, ...) {
        const TeepErrnoMapping *map = teep_errno_mapping(errno_value);
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sd_bus_error_set(error, map->dbus_name, msg);
        return errno_value < 0 ? errno_value : -errno_value;
}

/* sd-bus handles one message per event loop iteration, and while more are queued it arms the
 * loop's timer to fire at once (sd_bus_get_timeout() answers 0), then disarms it: a
 * timerfd_settime() pair per message, each a timer reprogramming (tens of µs in a VM), for a
 * burst of hundreds of calls. After each iteration's dispatch, this post source goes on
 * processing what is already queued or readable without blocking, up to BUS_DRAIN_MAX messages
 * (other event sources still get their turn); the loop then sleeps with its timer unchanged. */
#define BUS_DRAIN_MAX 64

static int on_bus_drain(sd_event_source *s, void *userdata) {
        sd_bus *bus = userdata;

        for (unsigned i = 0; i < BUS_DRAIN_MAX; i++)
                if (sd_bus_process(bus, NULL) <= 0)
                        break;
        return 0;
}

int bus_attach_event(sd_bus *bus, sd_event *event, sd_event_source **ret_drain) {
        int r;

        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* not fatal: without it each message costs an iteration more */
        if (sd_event_add_post(event, ret_drain, on_bus_drain, bus) >= 0)
                (void)sd_event_source_set_description(*ret_drain, "bus-drain");
        else
                *ret_drain = NULL;
        return 0;
}

int bus_open_and_request_name(sd_event *event, const char *name, sd_bus **ret, sd_event_source **ret_drain) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the system bus (%s): %s",
                                       getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "default address", strerror(-r));
        r = bus_attach_event(bus, event, ret_drain);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return log_error_errno(r, "cannot attach the bus to the event loop: %s", strerror(-r));
        }
        r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                *ret_drain = sd_event_source_disable_unref(*ret_drain);
                sd_bus_flush_close_unref(bus);
                return log_error_errno(r, "cannot own %s on the bus (%s): %s", name,
                                       r == -EACCES ? "the bus policy does not allow this user" : "taken?",
                                       strerror(-r));
        }
        *ret = bus;
        return 0;
}

void bus_release_name_and_drain(sd_bus *bus, const char *name) {
        int r;

        /* Under systemd, first: the unit is still active until we exit, and a start request the
         * bus sends for the next call in between would find it "running" and do nothing, so the
         * call would wait for a name nobody takes. STOPPING=1 makes systemd queue that start
         * until we are gone (the unit needs NotifyAccess=main; without systemd: a no-op). */
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Exiting after the idle timeout.");
        r = sd_bus_release_name(bus, name);
        if (r < 0)
                log_warning("cannot release %s: %s", name, strerror(-r));
        for (unsigned k = 0; k < 4096; k++) {
                r = sd_bus_process(bus, NULL);
                if (r <= 0)
                        break;
        }
        (void)sd_bus_flush(bus);
}
