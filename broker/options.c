/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* options.c: see options.h */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus-util.h"
#include "macro.h"
#include "requests.h"

void broker_options_done(BrokerOptions *o) {
        free(o->requester);
        o->requester = NULL;
}

int broker_options_read(sd_bus_message *m, BrokerOptions *ret, sd_bus_error *error) {
        BrokerOptions o = {};
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key, *contents;
                char type;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        goto fail;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        goto fail;

                if (strcmp(key, "requester") == 0) {
                        const char *v;
                        if (o.requester) {
                                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                      "Option 'requester' given twice.");
                                goto fail;
                        }
                        if (!contents || strcmp(contents, "s") != 0) {
                                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                      "Option 'requester' takes a string (s), not '%s'.",
                                                      contents ?: "?");
                                goto fail;
                        }
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                goto fail;
                        o.requester = strdup(v);
                        if (!o.requester) {
                                r = -ENOMEM;
                                goto fail;
                        }
                } else {
                        /* RAUC's rule: a key we do not know is an error, never silently dropped,
                         * so a client written for a newer broker learns it at once. */
                        r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Unknown option '%s' (known options: requester).", key);
                        goto fail;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto fail;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        *ret = o;
        return 0;
fail:
        broker_options_done(&o);
        return r;
}

static bool package_char(char c, bool first) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return !first && (c == '+' || c == '.' || c == '-' || c == '_');
}

bool requester_package_is_valid(const char *requester) {
        const char *name;
        size_t n;

        if (!requester || strncmp(requester, "package:", 8) != 0)
                return false;
        name = requester + 8;
        n = strlen(name);
        if (n == 0 || n > BROKER_MAX_PACKAGE_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!package_char(name[i], i == 0))
                        return false;
        return true;
}

static bool unit_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@';
}

bool requester_unit_is_system_service(const char *unit, const char *user_unit, const char *session) {
        size_t n;

        if (!unit || user_unit || session)
                return false;
        n = strlen(unit);
        /* systemd's limit on unit names is 255 */
        if (n <= strlen(".service") || n > 255)
                return false;
        if (strcmp(unit + n - strlen(".service"), ".service") != 0)
                return false;
        /* user@1000.service holds a user's whole session manager: that is a person, not a
         * service; its processes are named by uid. */
        if (strncmp(unit, "user@", 5) == 0 || strncmp(unit, "user-runtime-dir@", 17) == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!unit_char(unit[i]))
                        return false;
        return unit[0] != '.' && unit[0] != '@';
}

int requester_derive(uid_t uid, const char *system_unit, const char *option, char **ret, sd_bus_error *error) {
        char *s = NULL;

        if (option) {
                if (uid != 0)
                        return sd_bus_error_setf(error, TEEP_ERROR_ACCESS_DENIED,
                                                 "Only root may make a request on behalf of a package "
                                                 "(option 'requester'); caller is uid %" PRIu32 ".",
                                                 (uint32_t)uid);
                if (!requester_package_is_valid(option))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'requester' must be 'package:NAME' with a package name, "
                                                 "not '%.64s'.", option);
                s = strdup(option);
        } else if (system_unit) {
                if (asprintf(&s, "unit:%s", system_unit) < 0)
                        s = NULL;
        } else if (asprintf(&s, "uid:%" PRIu32, (uint32_t)uid) < 0)
                s = NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool tam_uri_is_valid(const char *uri) {
        /* one rule for TAM URIs from the bus and from requests.d (teepkit.requests(5)) */
        return teep_requests_tam_uri_is_valid(uri);
}
