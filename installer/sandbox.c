/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "landlock.h"
#include "selftest.h"

/* Beyond the base and the write set (for the store): */
static const TeepSyscall installer_allow[] = {
        { "flock", "the store lock (taken before the filter; released on exit)" },
        { "sync_file_range", "an install starts writing back while it copies (store.c); fsync() still decides" },
        { "linkat", "the undo record: a hard link to the file an install replaces or a remove takes (store.c)" },
        { NULL, NULL },
};

const TeepSeccompPolicy installer_seccomp_policy = {
        .name = "teep-installer",
        .allow = installer_allow,
        .allow_unix_socket = true,   /* the bus: sd-bus may reconnect */
        .allow_inet_socket = false,
        .allow_netlink_socket = false,
        .allow_file_writes = true,   /* rename/unlink/fsync/fchmod inside the store (Landlock bounds where) */
};

int installer_sandbox_apply(const char *store_dir) {
        int r = teep_landlock_restrict_writes(installer_seccomp_policy.name, store_dir, true);
        if (r < 0)
                return r;
        return teep_seccomp_apply(&installer_seccomp_policy);
}

int installer_sandbox_self_test(const char *store_dir) {
        static const char *const forbidden[] = {
                "socket-inet", "socket-inet6", "socket-netlink", TEEP_SANDBOX_FORBIDDEN_COMMON, NULL,
        };
        return teep_sandbox_self_test(installer_seccomp_policy.name, forbidden, store_dir);
}
