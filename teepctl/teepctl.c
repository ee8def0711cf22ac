/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teepctl.c: the command-line tool for people, scripts and dpkg */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "teepctl.h"

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} verbs[] = {
        { "status", verb_status, "show the broker, the agent, the TAMs and what is installed (default)" },
        { "list", verb_list, "list the Trusted Components installed or requested, and who requested them" },
        { "request", verb_request, "depend on a Trusted Component: install it if it is absent" },
        { "unrequest", verb_unrequest, "no longer depend on it: removed once nobody does" },
        { "policy-check", verb_policy_check, "ask the TAM whether anything changed for this device" },
        { "sync", verb_sync, "make the package requests match /usr/share/teepkit/requests.d (dpkg trigger)" },
        { "monitor", verb_monitor, "print jobs and changes as they happen" },
        { "agent-key", verb_agent_key, "print the device's public key, for enrolment at a TAM" },
        { "inspect", verb_inspect, "decode a TEEP message or SUIT envelope and verify its signatures" },
};

static void help(FILE *f) {
        fprintf(f, "Usage: teepctl [--version] [--help] [VERB [ARGS...]]\n\n"
                   "Talk to the teepkit TEEP stack, or look inside what it exchanges.\n\nVerbs:\n");
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                fprintf(f, "  %-13s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\nCommon options of the bus verbs: --json, --no-block (request, unrequest, sync,\n"
                   "policy-check), --timeout SEC. See teepctl(1) for each verb and the exit codes.\n");
}

int main(int argc, char **argv) {
        if (argc < 2)
                return verb_status(1, (char *[]){ (char *)"status", NULL });
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("teepctl %s\n", PACKAGE_VERSION);
                return 0;
        }
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strcmp(argv[1], verbs[i].name) == 0)
                        return verbs[i].run(argc - 1, argv + 1);
        fprintf(stderr, "teepctl: unknown verb '%s' (try teepctl --help)\n", argv[1]);
        return EXIT_USAGE;
}
