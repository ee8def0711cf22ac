/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "seccomp-util.h"

/* Beyond the base and the write set the store needs nothing. (The ASan build needs nothing
 * more while running either; its leak check at exit needs ptrace, which no filter of ours
 * allows, so installer.c turns that check off by default in sanitizer builds.) */
static const char *const installer_allow[] = {
        NULL,
};

int installer_sandbox_apply(void) {
        static const TeepSeccompPolicy policy = {
                .name = "teep-installer",
                .allow = installer_allow,
                .allow_unix_socket = true,   /* the bus: sd-bus may reconnect */
                .allow_inet_socket = false,
                .allow_file_writes = true,   /* rename/unlink/fsync/fchmod inside the store */
        };

        return teep_seccomp_apply(&policy);
}
