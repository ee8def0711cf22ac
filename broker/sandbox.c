/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "landlock.h"
#include "selftest.h"

/* On top of the shared base (seccomp/seccomp-util.c), each with its reason. The HTTP helper
 * inherits the broker's filter (filters stack across fork and exec), so what it needs for HTTP
 * is allowed here too; its own filter (http_allow) then takes the bus and exec away. */
#define HTTP_ALLOW                                                                                             \
        { "poll", "libcurl waits on its sockets" },                                                    \
        { "pipe2", "libcurl's wake-up pipe; the broker's payload pipes to the agent" },                \
        { "ioctl", "libcurl: FIONBIO and FIONREAD on its sockets (no device nodes are open)" },        \
        { "sendto", "libcurl and the resolver send on their sockets" },                                \
        { "recvfrom", "libcurl and the resolver receive on their sockets" },                           \
        { "setsockopt", "libcurl: TCP_NODELAY, keep-alive" },                                          \
        { "getsockopt", "libcurl: SO_ERROR after a non-blocking connect" },                            \
        { "getsockname", "libcurl records the local address of a connection" },                        \
        { "getpeername", "libcurl records the peer address of a connection" },                         \
        { "shutdown", "libcurl closes one direction of a connection" },                                \
        { "bind", "glibc's getaddrinfo binds its netlink socket to ask for the interfaces" },          \
        { "sendmmsg", "glibc's resolver sends the A and AAAA queries together" },                      \
        { "recvmmsg", "glibc's resolver reads the answers" },                                          \
        { "statfs", "GnuTLS and libcurl look at the CA file" },                                        \
        { "fstatfs", "GnuTLS and libcurl look at the CA file" },                                       \
        { "close_range", "glibc closes descriptor ranges" },                                           \
        { "uname", "GnuTLS and libcurl identify the system" },                                         \
        { "faccessat", "libcurl checks the CA file with access()" },                                   \
        { "faccessat2", "libcurl checks the CA file with access() (newer glibc)" }

static const TeepSyscall http_allow[] = {
        HTTP_ALLOW,
        { NULL, NULL },
};

static const TeepSyscall broker_allow[] = {
        HTTP_ALLOW,
        { "dup2", "the child puts the helper's control socket on fd 3 before the exec" },
        { "dup3", "the same where dup2 is not a system call" },
        { "getppid", "the forked child checks the broker is still its parent once it asked to die with it" },
        { "pidfd_open", "the broker watches the helper it started" },
        { "waitid", "the broker reaps the helper it started" },
        { "access", "ld.so looks for /etc/ld.so.preload as teep-broker-http starts" },
        { "arch_prctl", "ld.so sets up thread-local storage as teep-broker-http starts" },
        { "epoll_create1", "teep-broker-http creates its event loop" },
        { "seccomp", "teep-broker-http adds its own filter on top of this one (it can only narrow it)" },
        { "landlock_create_ruleset", "teep-broker-http adds its own Landlock layer (it can only narrow)" },
        { "landlock_add_rule", "teep-broker-http adds its own Landlock layer" },
        { "landlock_restrict_self", "teep-broker-http adds its own Landlock layer" },
        { NULL, NULL },
};

const TeepSeccompPolicy broker_seccomp_policy = {
        .name = "teep-brokerd",
        .allow = broker_allow,
        .allow_unix_socket = true,     /* the bus */
        .allow_inet_socket = true,     /* inherited by the HTTP helper: the TAMs */
        .allow_netlink_socket = true,  /* the helper's getaddrinfo with AI_ADDRCONFIG */
        .allow_file_writes = false,
        .allow_exec_fd = true,         /* starting teep-broker-http from the descriptor opened at start */
};

const TeepSeccompPolicy broker_http_seccomp_policy = {
        .name = "teep-broker-http",
        .allow = http_allow,
        .allow_unix_socket = false,    /* no bus: the network-facing process cannot reach the agent */
        .allow_inet_socket = true,     /* the TAMs: the only teepkit process that opens one */
        .allow_netlink_socket = true,  /* getaddrinfo with AI_ADDRCONFIG */
        .allow_file_writes = false,
        .allow_exec_fd = false,
};

int broker_sandbox_apply(void) {
        /* it writes nothing by name: payloads go to the agent through pipes */
        int r = teep_landlock_restrict_writes(broker_seccomp_policy.name, NULL, false);
        if (r < 0)
                return r;
        return teep_seccomp_apply(&broker_seccomp_policy);
}

int broker_http_sandbox_apply(void) {
        /* it writes nothing by name either: answers go back over its channels */
        int r = teep_landlock_restrict_writes(broker_http_seccomp_policy.name, NULL, false);
        if (r < 0)
                return r;
        return teep_seccomp_apply(&broker_http_seccomp_policy);
}

int broker_http_sandbox_self_test(void) {
        static const char *const forbidden[] = { TEEP_SANDBOX_FORBIDDEN_COMMON, "socket-unix", NULL };
        return teep_sandbox_self_test(broker_http_seccomp_policy.name, forbidden, NULL);
}

int broker_sandbox_self_test(void) {
        static const char *const forbidden[] = { TEEP_SANDBOX_FORBIDDEN_COMMON, NULL };
        return teep_sandbox_self_test(broker_seccomp_policy.name, forbidden, NULL);
}
