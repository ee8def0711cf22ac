/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "landlock.h"
#include "selftest.h"

/* On top of the shared base (seccomp/seccomp-util.c), each with its reason. */
static const TeepSyscall broker_allow[] = {
        { "poll", "libcurl waits on its sockets" },
        { "pipe2", "libcurl's wake-up pipe; the pipes payloads stream through to the agent" },
        { "ioctl", "libcurl: FIONBIO and FIONREAD on its sockets (no device nodes are open)" },
        { "sendto", "libcurl and the resolver send on their sockets" },
        { "recvfrom", "libcurl and the resolver receive on their sockets" },
        { "setsockopt", "libcurl: TCP_NODELAY, keep-alive" },
        { "getsockopt", "libcurl: SO_ERROR after a non-blocking connect" },
        { "getsockname", "libcurl records the local address of a connection" },
        { "getpeername", "libcurl records the peer address of a connection" },
        { "shutdown", "libcurl closes one direction of a connection" },
        { "bind", "glibc's getaddrinfo binds its netlink socket to ask for the interfaces" },
        { "sendmmsg", "glibc's resolver sends the A and AAAA queries together" },
        { "recvmmsg", "glibc's resolver reads the answers" },
        { "statfs", "GnuTLS and libcurl look at the CA file" },
        { "fstatfs", "GnuTLS and libcurl look at the CA file" },
        { "close_range", "glibc closes descriptor ranges" },
        { "uname", "GnuTLS and libcurl identify the system" },
        { "faccessat", "libcurl checks the CA file with access()" },
        { "faccessat2", "libcurl checks the CA file with access() (newer glibc)" },
        { NULL, NULL },
};

const TeepSeccompPolicy broker_seccomp_policy = {
        .name = "teep-brokerd",
        .allow = broker_allow,
        .allow_unix_socket = true,     /* the bus */
        .allow_inet_socket = true,     /* the TAMs: the only teepkit process with network */
        .allow_netlink_socket = true,  /* getaddrinfo with AI_ADDRCONFIG */
        .allow_file_writes = false,
};

int broker_sandbox_apply(void) {
        /* it writes nothing by name: payloads go to the agent through pipes */
        int r = teep_landlock_restrict_writes(broker_seccomp_policy.name, NULL, false);
        if (r < 0)
                return r;
        return teep_seccomp_apply(&broker_seccomp_policy);
}

int broker_sandbox_self_test(void) {
        static const char *const forbidden[] = { TEEP_SANDBOX_FORBIDDEN_COMMON, NULL };
        return teep_sandbox_self_test(broker_seccomp_policy.name, forbidden, NULL);
}
