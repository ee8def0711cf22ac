/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* landlock.c: see landlock.h */
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "seccomp-util.h"

/* Newer than the distribution's <linux/landlock.h> (Debian 12 ships ABI 2): the values are ABI. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#define TEEP_LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define TEEP_LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define TEEP_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define TEEP_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the kernel takes a longer struct than it knows as
 * long as the fields it does not know are zero. */
struct teep_landlock_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};

/* Whether this process restricted itself (for the self-test, which runs under seccomp and
 * cannot ask the kernel any more). */
static bool enforced;

bool teep_landlock_enforced(void) {
        return enforced;
}

int teep_landlock_abi(void) {
        long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
        return v < 0 ? 0 : (int)v;
}

int teep_landlock_restrict_writes(const char *who, const char *write_dir, bool no_tcp) {
        /* Only the rights that change the filesystem: reading and executing are not handled, so
         * they stay as the permissions say (and exec is seccomp's to refuse). */
        uint64_t writes = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                          LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                          LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                          LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
        struct teep_landlock_ruleset_attr attr = {};
        _cleanup_close_ int ruleset = -EBADF;
        int abi, r;

        if (teep_sandbox_disabled())
                return 0;
        abi = teep_landlock_abi();
        if (abi <= 0) {
                log_notice("%s: the kernel has no Landlock (%s); file writes are bounded by the unit's "
                           "ReadWritePaths= only", who, strerror(errno));
                return 0;
        }
        if (abi >= 2)
                writes |= LANDLOCK_ACCESS_FS_REFER;
        if (abi >= 3)
                writes |= LANDLOCK_ACCESS_FS_TRUNCATE;
        attr.handled_access_fs = writes;
        if (abi >= 4 && no_tcp)
                attr.handled_access_net = TEEP_LANDLOCK_ACCESS_NET_BIND_TCP | TEEP_LANDLOCK_ACCESS_NET_CONNECT_TCP;
        if (abi >= 6)
                attr.scoped = TEEP_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | TEEP_LANDLOCK_SCOPE_SIGNAL;

        ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
        if (ruleset < 0)
                return log_error_errno(-errno, "%s: cannot create a Landlock ruleset: %m", who);
        if (write_dir) {
                struct landlock_path_beneath_attr beneath = { .allowed_access = writes };
                _cleanup_close_ int dfd = open(write_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

                if (dfd < 0)
                        return log_error_errno(-errno, "%s: cannot open %s for Landlock: %m", who, write_dir);
                beneath.parent_fd = dfd;
                if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) < 0)
                        return log_error_errno(-errno, "%s: cannot allow writes beneath %s: %m", who, write_dir);
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(-errno, "%s: cannot set no_new_privs: %m", who);
        r = (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
        if (r < 0)
                return log_error_errno(-errno, "%s: cannot enforce the Landlock ruleset: %m", who);
        enforced = true;
        log_debug("%s: Landlock ABI %d: writes only beneath %s", who, abi, write_dir ?: "(nowhere)");
        return 1;
}
