/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "seccomp-util.h"

/*
 * Beyond the base and the write set the store needs nothing. Sanitizer builds: LeakSanitizer's
 * stop-the-world at exit lists /proc/self/task with the old getdents(2) on x86-64 (and ptrace,
 * which seccomp/ allows in those builds); without it every ASan run ends in a fatal LSan error.
 */
static const char *const installer_allow[] = {
#if defined(__SANITIZE_ADDRESS__)
        "getdents",
#endif
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
