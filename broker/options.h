/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* options.h: the a{sv} options of the Broker1 methods, TAM URIs, and who the requester is */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/* Bounds on what a caller may hand us. */
#define BROKER_MAX_TAM_URIS 16
#define BROKER_MAX_URI_LEN 2048 /* = TEEP_REQUESTS_MAX_URI_LEN (common/requests.h), which decides */
#define BROKER_MAX_COMPONENT_LEN 4096
#define BROKER_MAX_PACKAGE_LEN 128

typedef struct BrokerOptions {
        char *requester; /* "requester" (s): root only, "package:NAME" */
} BrokerOptions;

void broker_options_done(BrokerOptions *o);

/*
 * Read an a{sv} options dictionary at the current position of m. Unknown keys, a key given
 * twice and a value of the wrong type are refused with org.freedesktop.DBus.Error.InvalidArgs
 * (set in error, -EINVAL returned). Returns 0 and fills ret (zeroed first) on success.
 */
int broker_options_read(sd_bus_message *m, BrokerOptions *ret, sd_bus_error *error);

/* True for "package:NAME" with NAME a package name ([a-z0-9][a-z0-9+.-]*, Debian's rule, upper
 * case tolerated for other distributions' names, at most BROKER_MAX_PACKAGE_LEN). */
bool requester_package_is_valid(const char *requester);

/*
 * Whether a unit seen in a caller's credentials names a system service that may own requests:
 * a valid "*.service" unit name that is not a user's service manager (user@N.service) and
 * the caller is neither in a login session nor under a user manager (user_unit / session set).
 */
bool requester_unit_is_system_service(const char *unit, const char *user_unit, const char *session);

/*
 * The requester string recorded for a request (never from a caller's arguments, except
 * root's package option):
 *   option set, uid 0      → the option, if it is a valid "package:NAME" (else InvalidArgs)
 *   option set, other uid  → org.teepkit.Error.AccessDenied
 *   system_unit non-NULL   → "unit:<system_unit>" (callers pass it only for a system service)
 *   otherwise              → "uid:<uid>"
 * Returns 0 and a string to free(), or -EINVAL/-EACCES with error set, or -ENOMEM.
 */
int requester_derive(uid_t uid, const char *system_unit, const char *option, char **ret, sd_bus_error *error);

/* A TAM URI a caller may pass: http:// or https:// (any case) with a host, printable ASCII
 * without spaces, at most BROKER_MAX_URI_LEN bytes; teep_requests_tam_uri_is_valid(). */
bool tam_uri_is_valid(const char *uri);
