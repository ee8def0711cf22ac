/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.c: see sandbox.h */
#include "sandbox.h"

#include <stddef.h>

#include "seccomp-util.h"

/* On top of the shared base (seccomp/seccomp-util.c), each with its reason. */
static const char *const broker_allow[] = {
        "bind",        /* glibc's getaddrinfo asks the kernel for interfaces over netlink */
        "sendmmsg",    /* glibc's resolver sends the A and AAAA queries together */
        "recvmmsg",
        "statfs",      /* GnuTLS and libcurl look at the CA file */
        "fstatfs",
        "close_range", /* glibc closes descriptors in ranges */
#if defined(__SANITIZE_ADDRESS__)
        "getdents",    /* sanitizer builds only: LeakSanitizer lists /proc/self/task at exit */
#endif
        NULL,
};

int broker_sandbox_apply(void) {
        static const TeepSeccompPolicy policy = {
                .name = "teep-brokerd",
                .allow = broker_allow,
                .allow_unix_socket = true,  /* the bus */
                .allow_inet_socket = true,  /* the TAMs: the only teepkit process with network */
                .allow_file_writes = false,
        };

        return teep_seccomp_apply(&policy);
}
