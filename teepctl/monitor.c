/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* monitor.c: `teepctl monitor` — jobs and property changes of the broker as they happen */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus-util.h"
#include "bus.h"
#include "conf.h"
#include "macro.h"
#include "teepctl.h"

static volatile sig_atomic_t stop;
static bool arg_json;

static void on_signal(int sig) {
        stop = 1;
}

static const char *job_id(const char *path) {
        const char *s = strrchr(path ?: "", '/');
        return s ? s + 1 : "?";
}

static int on_job_new(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path, *kind, *component, *requester;

        if (sd_bus_message_read(m, "osss", &path, &kind, &component, &requester) < 0)
                return 0;
        if (arg_json) {
                fputs("{\"event\":\"job-new\",\"job\":", stdout);
                json_string(stdout, path);
                fputs(",\"kind\":", stdout);
                json_string(stdout, kind);
                fputs(",\"component\":", stdout);
                json_string(stdout, *component ? component : NULL);
                fputs(",\"requester\":", stdout);
                json_string(stdout, requester);
                fputs("}\n", stdout);
        } else
                printf("job %s new: %s%s%s by %s\n", job_id(path), kind, *component ? " " : "", component, requester);
        fflush(stdout);
        return 0;
}

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path = sd_bus_message_get_path(m), *result, *name, *message;

        if (sd_bus_message_read(m, "sss", &result, &name, &message) < 0)
                return 0;
        if (arg_json) {
                fputs("{\"event\":\"job-finished\",\"job\":", stdout);
                json_string(stdout, path);
                fputs(",\"result\":", stdout);
                json_string(stdout, result);
                fputs(",\"error\":", stdout);
                if (*name) {
                        fputs("{\"name\":", stdout);
                        json_string(stdout, name);
                        fputs(",\"message\":", stdout);
                        json_string(stdout, message);
                        fputs("}}\n", stdout);
                } else
                        fputs("null}\n", stdout);
        } else if (*name)
                printf("job %s failed: %s (%s)\n", job_id(path), message, name);
        else
                printf("job %s finished: %s\n", job_id(path), result);
        fflush(stdout);
        return 0;
}

/* A short, human summary of one property value; leaves m after the variant. */
static void describe_value(sd_bus_message *m, const char *sig, char *buf, size_t n) {
        buf[0] = '\0';
        if (strcmp(sig, "s") == 0) {
                const char *s;
                if (sd_bus_message_read(m, "s", &s) >= 0)
                        snprintf(buf, n, "%s", *s ? s : "(none)");
        } else if (strcmp(sig, "t") == 0) {
                uint64_t t;
                if (sd_bus_message_read(m, "t", &t) >= 0)
                        format_timestamp(t, buf, n);
        } else if (strcmp(sig, "u") == 0) {
                uint32_t u;
                if (sd_bus_message_read(m, "u", &u) >= 0)
                        snprintf(buf, n, "%" PRIu32, u);
        } else if (strcmp(sig, "as") == 0) {
                char **v = NULL;
                size_t used = 0;
                if (sd_bus_message_read_strv(m, &v) >= 0) {
                        for (size_t i = 0; v && v[i]; i++) {
                                used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%s", i ? ", " : "", v[i]);
                                free(v[i]);
                        }
                        if (!v || !v[0])
                                snprintf(buf, n, "(none)");
                        free(v);
                }
        } else if (strcmp(sig, "a(stay)") == 0) {
                size_t count = 0, used;
                const char *c;
                uint64_t seq;
                used = (size_t)snprintf(buf, n, "installed:");
                if (sd_bus_message_enter_container(m, 'a', "(stay)") >= 0) {
                        while (sd_bus_message_enter_container(m, 'r', "stay") > 0) {
                                if (sd_bus_message_read(m, "st", &c, &seq) >= 0)
                                        used += (size_t)snprintf(buf + used, used < n ? n - used : 0, " %s (sequence %" PRIu64 ")",
                                                                 c, seq);
                                (void)sd_bus_message_skip(m, "ay");
                                (void)sd_bus_message_exit_container(m);
                                count++;
                        }
                        (void)sd_bus_message_exit_container(m);
                }
                if (count == 0)
                        snprintf(buf, n, "none installed");
        } else {
                snprintf(buf, n, "changed");
                (void)sd_bus_message_skip(m, sig);
        }
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path = sd_bus_message_get_path(m), *iface;
        bool is_job;
        bool first = true, closed = false;
        int r;

        if (sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        is_job = strcmp(iface, TEEP_BROKER_JOB_INTERFACE) == 0;
        if (!is_job && strcmp(iface, TEEP_BROKER_INTERFACE) != 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        if (arg_json) {
                fputs(is_job ? "{\"event\":\"job-changed\",\"job\":" : "{\"event\":\"properties-changed\",\"path\":",
                      stdout);
                json_string(stdout, path);
                fputs(",\"properties\":{", stdout);
        } else if (is_job)
                printf("job %s:", job_id(path));
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *sig = NULL;
                char type, value[1024];

                if (sd_bus_message_read(m, "s", &key) < 0 || sd_bus_message_peek_type(m, &type, &sig) < 0 ||
                    sd_bus_message_enter_container(m, 'v', sig) < 0)
                        break;
                describe_value(m, sig, value, sizeof(value));
                (void)sd_bus_message_exit_container(m);
                (void)sd_bus_message_exit_container(m);
                if (arg_json) {
                        if (!first)
                                fputc(',', stdout);
                        json_string(stdout, key);
                        fputc(':', stdout);
                        json_string(stdout, value);
                } else if (is_job)
                        printf("%s %s=%s", first ? "" : ",", key, value);
                else
                        printf("%s: %s\n", key, value);
                first = false;
        }
        /* a property announced without its value (Broker1.Requests: it can be long) */
        if (r >= 0 && sd_bus_message_exit_container(m) >= 0) {
                char **invalidated = NULL;
                if (sd_bus_message_read_strv(m, &invalidated) >= 0 && invalidated && invalidated[0]) {
                        if (arg_json)
                                fputs("},\"invalidated\":[", stdout);
                        for (size_t i = 0; invalidated[i]; i++) {
                                if (arg_json) {
                                        if (i > 0)
                                                fputc(',', stdout);
                                        json_string(stdout, invalidated[i]);
                                } else if (is_job)
                                        printf("%s %s changed", first && i == 0 ? "" : ",", invalidated[i]);
                                else
                                        printf("%s: changed (teepctl status shows it)\n", invalidated[i]);
                        }
                        if (arg_json) {
                                fputs("]}\n", stdout);
                                closed = true;
                        }
                }
                for (size_t i = 0; invalidated && invalidated[i]; i++)
                        free(invalidated[i]);
                free(invalidated);
        }
        if (arg_json) {
                if (!closed)
                        fputs("}}\n", stdout);
        } else if (is_job)
                printf("\n");
        fflush(stdout);
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old, *new;

        if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, TEEP_BROKER_BUS_NAME) != 0)
                return 0;
        if (arg_json)
                printf("{\"event\":\"%s\"}\n", *new ? "broker-started" : "broker-stopped");
        else
                printf("%s\n", *new ? "teep-brokerd is on the bus" : "teep-brokerd left the bus");
        fflush(stdout);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int verb_monitor(int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_TIMEOUT };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        struct sigaction sa = { .sa_handler = on_signal };
        uint64_t timeout = 0, deadline;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_TIMEOUT:
                        if (teep_parse_usec(optarg, &timeout) < 0) {
                                fprintf(stderr, "teepctl: --timeout: not a time span: %s\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        printf("Usage: teepctl monitor [--json] [--timeout SEC]\n");
                        return 0;
                default:
                        fprintf(stderr, "Usage: teepctl monitor [--json] [--timeout SEC]\n");
                        return EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, "Usage: teepctl monitor [--json] [--timeout SEC]\n");
                return EXIT_USAGE;
        }

        r = ctl_bus_open(&bus);
        if (r != 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "JobNew",
                                on_job_new, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, NULL, TEEP_BROKER_JOB_INTERFACE, "Finished",
                                        on_finished, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, TEEP_BROKER_BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_properties_changed, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, NULL);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot subscribe to the broker's signals: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        /* no SA_RESTART: the wait returns on Ctrl-C */
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "Monitoring %s; Ctrl-C stops.\n", TEEP_BROKER_BUS_NAME);
        /* sd_bus_match_signal() waited for each AddMatch: from this line on nothing is missed,
         * which is what a script or test waits for before acting. */
        if (!arg_json)
                printf("monitoring %s\n", TEEP_BROKER_BUS_NAME);
        fflush(stdout);

        deadline = timeout ? now_usec() + timeout : UINT64_MAX;
        while (!stop) {
                uint64_t now = now_usec();
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "teepctl: lost the bus: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                if (now >= deadline)
                        break;
                r = sd_bus_wait(bus, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "teepctl: lost the bus: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        /* print what already arrived */
        for (int i = 0; i < 1000 && sd_bus_process(bus, NULL) > 0; i++)
                ;
        return 0;
}
