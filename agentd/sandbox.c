/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: teep-agentd's box (see seccomp/seccomp-util.h for the shared base) */
#include <stddef.h>

#include "landlock.h"
#include "sandbox.h"
#include "selftest.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

/* Beyond the shared base and the write set (for the state directory): a pipe per streamed
 * payload. It never needs a network socket, exec, or another process's memory. */
static const TeepSyscall agent_allow[] = {
        { "pipe2", "a streamed payload goes on to the installer through a pipe (agentd/bus-peers.c)" },
        { NULL, NULL },
};

const TeepSeccompPolicy agent_seccomp_policy = {
        .name = "teep-agentd",
        .allow = agent_allow,
        .allow_unix_socket = true,    /* the bus */
        .allow_inet_socket = false,
        .allow_netlink_socket = false,
        .allow_file_writes = true,    /* atomic writes in the state directory (Landlock bounds where) */
};

int agent_sandbox_apply(const char *state_dir) {
        int r;

#if defined(__SANITIZE_ADDRESS__)
        /* LeakSanitizer's exit-time check does not survive the filter even with ptrace allowed
         * ("LeakSanitizer has encountered a fatal error"): run it now, while everything the
         * daemon holds is reachable, and the exit skips it. The core's leaks are covered by the
         * unit tests under the sanitizers. */
        __lsan_do_leak_check();
#endif
        r = teep_landlock_restrict_writes(agent_seccomp_policy.name, state_dir, true);
        if (r < 0)
                return r;
        return teep_seccomp_apply(&agent_seccomp_policy);
}

int agent_sandbox_self_test(const char *state_dir) {
        static const char *const forbidden[] = {
                "socket-inet", "socket-inet6", "socket-netlink", TEEP_SANDBOX_FORBIDDEN_COMMON, NULL,
        };
        return teep_sandbox_self_test(agent_seccomp_policy.name, forbidden, state_dir);
}
