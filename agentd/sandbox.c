/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: teep-agentd's seccomp allowlist (see seccomp/seccomp-util.h for the shared base) */
#include <stddef.h>

#include "sandbox.h"
#include "seccomp-util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

int agent_sandbox_apply(void) {
        /* Beyond the shared base: the state directory's writes (allow_file_writes), AF_UNIX for
         * the bus. The agent never needs a network socket, exec, or another process's memory. */
        static const char *const allow[] = {
                "getrandom",         /* gnutls: key generation and blinding */
                "sched_getaffinity", /* the sanitizers' runtime */
                "getrusage",
                NULL,
        };
        static const TeepSeccompPolicy policy = {
                .name = "teep-agentd",
                .allow = allow,
                .allow_unix_socket = true,
                .allow_inet_socket = false,
                .allow_file_writes = true,
        };
#if defined(__SANITIZE_ADDRESS__)
        /* LeakSanitizer's exit-time check does not survive the filter even with ptrace allowed
         * ("LeakSanitizer has encountered a fatal error"): run it now, while everything the
         * daemon holds is reachable, and the exit skips it. The core's leaks are covered by the
         * unit tests under the sanitizers. */
        __lsan_do_leak_check();
#endif
        return teep_seccomp_apply(&policy);
}
