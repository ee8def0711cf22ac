/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-util.h: what every teepkit bus service does the same way — names, errors, who is calling */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* Well-known names and paths (docs/design.md). */
#define TEEP_BROKER_BUS_NAME "org.teepkit.Broker1"
#define TEEP_BROKER_PATH "/org/teepkit/Broker1"
#define TEEP_BROKER_INTERFACE "org.teepkit.Broker1"
#define TEEP_BROKER_JOB_INTERFACE "org.teepkit.Broker1.Job"
#define TEEP_FETCHER_INTERFACE "org.teepkit.PayloadFetcher1" /* on the broker, for the agent only */
#define TEEP_AGENT_BUS_NAME "org.teepkit.Agent1"
#define TEEP_AGENT_PATH "/org/teepkit/Agent1"
#define TEEP_AGENT_INTERFACE "org.teepkit.Agent1"
#define TEEP_INSTALLER_BUS_NAME "org.teepkit.Installer1"
#define TEEP_INSTALLER_PATH "/org/teepkit/Installer1"
#define TEEP_INSTALLER_INTERFACE "org.teepkit.Installer1"

/* The match rule for NameOwnerChanged of one well-known name (a string literal): arg0, so that
 * no other client's comings and goings wake the watcher. */
#define BUS_NAME_OWNER_CHANGED_MATCH(name)                                                        \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"               \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" name "'"

/* Named errors (org.teepkit.Error.*); docs/errors.md lists when each is used. */
#define TEEP_ERROR_PREFIX "org.teepkit.Error."
#define TEEP_ERROR_ACCESS_DENIED TEEP_ERROR_PREFIX "AccessDenied"
#define TEEP_ERROR_INVALID_COMPONENT TEEP_ERROR_PREFIX "InvalidComponent"
#define TEEP_ERROR_TAM_UNREACHABLE TEEP_ERROR_PREFIX "TamUnreachable"
#define TEEP_ERROR_AGENT_UNAVAILABLE TEEP_ERROR_PREFIX "AgentUnavailable"
#define TEEP_ERROR_INSTALLER_UNAVAILABLE TEEP_ERROR_PREFIX "InstallerUnavailable"
#define TEEP_ERROR_NOT_REQUESTED TEEP_ERROR_PREFIX "NotRequested"
#define TEEP_ERROR_NOT_INSTALLED TEEP_ERROR_PREFIX "NotInstalled"
#define TEEP_ERROR_TRUST_FAILURE TEEP_ERROR_PREFIX "TrustFailure"
#define TEEP_ERROR_MANIFEST_REJECTED TEEP_ERROR_PREFIX "ManifestRejected"
#define TEEP_ERROR_DIGEST_MISMATCH TEEP_ERROR_PREFIX "DigestMismatch"
#define TEEP_ERROR_SIZE_MISMATCH TEEP_ERROR_PREFIX "SizeMismatch"
#define TEEP_ERROR_BUSY TEEP_ERROR_PREFIX "Busy"
#define TEEP_ERROR_NOT_AVAILABLE TEEP_ERROR_PREFIX "NotAvailable"   /* the TAM did not provide it */
#define TEEP_ERROR_LIMIT_EXCEEDED TEEP_ERROR_PREFIX "LimitExceeded"
#define TEEP_ERROR_NO_TAM TEEP_ERROR_PREFIX "NoTam"
#define TEEP_ERROR_FAILED TEEP_ERROR_PREFIX "Failed"

/* "teep-broker" or a decimal uid → uid (and primary gid if ret_gid). -ESRCH if unknown. */
int teep_resolve_user(const char *name_or_uid, uid_t *ret_uid, gid_t *ret_gid);

/* The sender's effective uid, from the bus's own credentials (never from message arguments);
 * remembered per unique name (bus-util.c says why that is sound). */
int bus_sender_uid(sd_bus_message *m, uid_t *ret);

/* The same cache for a caller's identity with its unit (the broker's requesters): get answers
 * true when the sender is known (with need_unit: known with its unit, which may be NULL for
 * none; the string stays valid until the next put); put remembers what the bus said. */
bool bus_sender_cache_get(sd_bus_message *m, bool need_unit, uid_t *ret_uid, const char **ret_unit);
void bus_sender_cache_put(sd_bus_message *m, uid_t uid, bool has_unit, const char *unit);

/*
 * Refuse a caller whose uid is not allowed: sets org.teepkit.Error.AccessDenied naming the
 * caller's uid and the method, logs one line, returns -EACCES. Root is not special here: the
 * internal interfaces belong to one uid each (design.md, "enforced twice").
 */
int bus_require_sender_uid(sd_bus_message *m, uid_t allowed, sd_bus_error *error);

/*
 * Set a named error from a libteep errno through teep_errno_mapping() (docs/errors.md) with a
 * printf message for people, and return the negative errno (sd-bus handler convention).
 */
int bus_error_set_teep(sd_bus_error *error, int errno_value, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Open the system bus (honours DBUS_SYSTEM_BUS_ADDRESS), attach it to event with
 * bus_attach_event() (*ret_drain as there), request name. Logs and returns -errno on failure. */
int bus_open_and_request_name(sd_event *event, const char *name, sd_bus **ret, sd_event_source **ret_drain);

/* sd_bus_attach_event(), and a post source that processes every message already queued after
 * each iteration (bus-util.c says why). The caller keeps *ret_drain (NULL if it could not be
 * made) and drops it with sd_event_source_disable_unref() before the bus. */
int bus_attach_event(sd_bus *bus, sd_event *event, sd_event_source **ret_drain);

/* Idle exit: tell the service manager we are stopping (STOPPING=1, so that it queues the next
 * activation instead of thinking we still run), give the name back (a call arriving from now on
 * starts a new instance by bus activation instead of reaching this one), answer whatever the
 * bus had queued for us already, and flush. Failures are logged; the caller exits either way. */
void bus_release_name_and_drain(sd_bus *bus, const char *name);
