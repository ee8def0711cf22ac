/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* jobs.c: `teepctl request`, `unrequest` and `policy-check` — a Broker1 call and its job */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-util.h"
#include "bus.h"
#include "conf.h"
#include "macro.h"
#include "teep-component.h"
#include "teepctl.h"

#define MAX_TAMS 16

typedef struct JobArgs {
        const char *verb;
        const char *component;
        const char *tams[MAX_TAMS + 1];
        size_t n_tams;
        const char *package;
        bool no_block;
        bool json;
        uint64_t timeout_usec;
} JobArgs;

static int usage(const char *verb) {
        if (strcmp(verb, "request") == 0)
                fprintf(stderr, "Usage: teepctl request COMPONENT [--tam URI]... [--package NAME] [--no-block] "
                                "[--json] [--timeout SEC]\n");
        else if (strcmp(verb, "unrequest") == 0)
                fprintf(stderr, "Usage: teepctl unrequest COMPONENT [--package NAME] [--no-block] [--json] "
                                "[--timeout SEC]\n");
        else
                fprintf(stderr, "Usage: teepctl policy-check [--no-block] [--json] [--timeout SEC]\n");
        return EXIT_USAGE;
}

static int parse(int argc, char **argv, JobArgs *a) {
        enum { ARG_TAM = 0x100, ARG_PACKAGE, ARG_NO_BLOCK, ARG_JSON, ARG_TIMEOUT };
        static const struct option options[] = {
                { "tam", required_argument, NULL, ARG_TAM },
                { "package", required_argument, NULL, ARG_PACKAGE },
                { "no-block", no_argument, NULL, ARG_NO_BLOCK },
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool takes_component = strcmp(a->verb, "policy-check") != 0;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_TAM:
                        if (strcmp(a->verb, "request") != 0)
                                return usage(a->verb);
                        if (a->n_tams >= MAX_TAMS) {
                                fprintf(stderr, "teepctl: at most %d --tam\n", MAX_TAMS);
                                return EXIT_USAGE;
                        }
                        a->tams[a->n_tams++] = optarg;
                        break;
                case ARG_PACKAGE:
                        if (!takes_component)
                                return usage(a->verb);
                        a->package = optarg;
                        break;
                case ARG_NO_BLOCK:
                        a->no_block = true;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_TIMEOUT:
                        if (teep_parse_usec(optarg, &a->timeout_usec) < 0) {
                                fprintf(stderr, "teepctl: --timeout: not a time span: %s\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        usage(a->verb);
                        return -1;
                default:
                        return usage(a->verb);
                }
        if (takes_component) {
                _cleanup_free_ uint8_t *enc = NULL;
                size_t len;
                if (optind != argc - 1)
                        return usage(a->verb);
                a->component = argv[optind];
                /* the broker checks too; saying it here gives the usage exit code */
                if (teep_suit_component_id_from_string(a->component, &enc, &len) < 0) {
                        fprintf(stderr,
                                "teepctl: '%s' is not a component name: segments of letters, digits, '.', '_' or "
                                "'-', a UUID, or 0x and hex, joined by '/' (see teepctl(1))\n",
                                a->component);
                        return EXIT_USAGE;
                }
        } else if (optind != argc)
                return usage(a->verb);
        return 0;
}

static int build_call(sd_bus *bus, const JobArgs *a, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *method = strcmp(a->verb, "request") == 0     ? "RequestTA"
                             : strcmp(a->verb, "unrequest") == 0 ? "UnrequestTA"
                                                                 : "RequestPolicyCheck";
        _cleanup_free_ char *requester = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                           method);
        if (r >= 0 && a->component)
                r = sd_bus_message_append(m, "s", a->component);
        if (r >= 0 && strcmp(a->verb, "request") == 0)
                r = sd_bus_message_append_strv(m, (char **)a->tams);
        if (r >= 0 && a->package) {
                if (asprintf(&requester, "package:%s", a->package) < 0)
                        return -ENOMEM;
                r = sd_bus_message_append(m, "a{sv}", 1, "requester", "s", requester);
        } else if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static const char *describe(const JobOutcome *o) {
        static const struct {
                const char *result, *text;
        } table[] = {
                { "installed", "installed" },
                { "already-installed", "already installed; your request is recorded" },
                { "removed", "removed" },
                { "still-needed", "still needed by another requester; your request is withdrawn" },
                { "not-installed", "not installed; your request is withdrawn" },
                { "checked", "policy check done" },
                { "nothing-to-do", "nothing to do: the agent has no TAM to contact" },
        };
        for (size_t i = 0; o->result && i < ELEMENTSOF(table); i++)
                if (strcmp(o->result, table[i].result) == 0)
                        return table[i].text;
        return o->result ?: "done";
}

static int run(const char *verb, int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        JobArgs a = { .verb = verb };
        JobOutcome o = {};
        int r;

        r = parse(argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = ctl_bus_open(&bus);
        if (r != 0)
                return r;
        r = build_call(bus, &a, &m);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot build the call: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        if (a.no_block) {
                _cleanup_free_ char *path = NULL;
                r = ctl_call_no_block(bus, m, &path);
                if (r != 0)
                        return r;
                if (a.json) {
                        fputs("{\"job\":", stdout);
                        json_string(stdout, path);
                        fputs("}\n", stdout);
                } else
                        printf("%s\n", path);
                return 0;
        }

        r = ctl_call_and_wait(bus, m,
                              &(JobWaitOptions){ .progress = !a.json && isatty(STDOUT_FILENO),
                                                 .timeout_usec = a.timeout_usec },
                              &o);
        if (r != 0)
                return r;
        if (a.json)
                job_outcome_print_json(stdout, &o);
        else if (o.state && strcmp(o.state, "succeeded") == 0)
                printf("%s%s%s\n", a.component ?: "", a.component ? ": " : "", describe(&o));
        else
                fprintf(stderr, "teepctl: %s%s%s failed: %s (%s)\n", verb, a.component ? " " : "",
                        a.component ?: "", o.error_message && *o.error_message ? o.error_message : "no reason given",
                        o.error_name && *o.error_name ? o.error_name : "?");
        r = job_outcome_exit_code(&o);
        job_outcome_done(&o);
        return r;
}

int verb_request(int argc, char **argv) {
        return run("request", argc, argv);
}

int verb_unrequest(int argc, char **argv) {
        return run("unrequest", argc, argv);
}

int verb_policy_check(int argc, char **argv) {
        return run("policy-check", argc, argv);
}
