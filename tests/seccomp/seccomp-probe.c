/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* seccomp-probe.c: apply the real box of one daemon in a forked child and try one call there.
 *
 *   seccomp-probe DAEMON CALL [DIR]   DAEMON: agent, installer, broker or http (teep-broker-http); DIR: the directory the
 *                                     daemon may write (state dir, store); prints
 *                                     "DAEMON CALL: OUTCOME" and exits with the outcome
 *                                     (0 allowed, 1 refused, 2 killed by SIGSYS, 3 failed otherwise)
 *   seccomp-probe DAEMON --list       print the daemon's seccomp table, a reason per call
 *   seccomp-probe --calls             print the calls CALL can name
 *
 * The box is applied by the daemons' own functions (agent_sandbox_apply() and friends), the
 * same code path as in the daemons. Never run inside criterion's worker: tests/seccomp runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/sandbox.h"
#include "broker/sandbox.h"
#include "installer/sandbox.h"
#include "selftest.h"

typedef struct Box {
        const char *daemon;
        const char *dir;
} Box;

static int apply_box(void *userdata) {
        const Box *b = userdata;

        if (strcmp(b->daemon, "agent") == 0)
                return agent_sandbox_apply(b->dir);
        if (strcmp(b->daemon, "installer") == 0)
                return installer_sandbox_apply(b->dir);
        if (strcmp(b->daemon, "http") == 0) {
                /* teep-broker-http: the broker's filter, inherited, and its own on top */
                int r = broker_sandbox_apply();
                return r < 0 ? r : broker_http_sandbox_apply();
        }
        return broker_sandbox_apply();
}

static const TeepSeccompPolicy *policy_of(const char *daemon) {
        if (strcmp(daemon, "agent") == 0)
                return &agent_seccomp_policy;
        if (strcmp(daemon, "installer") == 0)
                return &installer_seccomp_policy;
        if (strcmp(daemon, "broker") == 0)
                return &broker_seccomp_policy;
        if (strcmp(daemon, "http") == 0)
                return &broker_http_seccomp_policy;
        return NULL;
}

int main(int argc, char **argv) {
        const TeepSeccompPolicy *p;
        Box box;
        char desc[128];
        TeepTryOutcome o;

        if (argc == 2 && strcmp(argv[1], "--calls") == 0) {
                for (size_t i = 0; teep_sandbox_calls[i]; i++)
                        puts(teep_sandbox_calls[i]);
                return 0;
        }
        if (argc < 3 || argc > 4 || !(p = policy_of(argv[1]))) {
                fprintf(stderr, "usage: seccomp-probe agent|installer|broker|http CALL [DIR] | --list\n");
                return 64;
        }
        if (strcmp(argv[2], "--list") == 0) {
                teep_seccomp_print(p, stdout);
                return 0;
        }
        /* the debugging switch must not hide the box here */
        unsetenv("TEEP_SECCOMP");
        box = (Box){ .daemon = argv[1], .dir = argc == 4 ? argv[3] : NULL };
        o = teep_sandbox_try(argv[2], box.dir, apply_box, &box, desc, sizeof(desc));
        printf("%s %s: %s\n", argv[1], argv[2], desc);
        switch (o) {
        case TEEP_TRY_ALLOWED:
                return 0;
        case TEEP_TRY_REFUSED:
                return 1;
        case TEEP_TRY_KILLED:
                return 2;
        case TEEP_TRY_UNKNOWN:
                return 64;
        default:
                return 3;
        }
}
