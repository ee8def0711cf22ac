/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: teep-brokerd's own box: a seccomp filter and Landlock */
#pragma once

#include "seccomp-util.h"

extern const TeepSeccompPolicy broker_seccomp_policy;
extern const TeepSeccompPolicy broker_http_seccomp_policy;

/*
 * Install the broker's box on the calling thread (and the threads it creates later, such as
 * children): the shared base of seccomp/, sockets of the families AF_UNIX, AF_INET and AF_INET6
 * (and the netlink socket glibc's resolver opens), and what libcurl, GnuTLS and name resolution
 * need once running — for teep-broker-http, which inherits this filter. The only exec is of the
 * helper, from the descriptor opened before the box (execveat with AT_EMPTY_PATH). No ptrace,
 * no file writes anywhere (Landlock, where the kernel has it; seccomp has no unlink, rename,
 * mkdir). Returns 0 or -errno.
 */
int broker_sandbox_apply(void);

/*
 * teep-broker-http's own box, on top of the broker's it inherits: no AF_UNIX socket (so no bus
 * connection: the process that parses the network cannot talk to the agent), no exec, no file
 * writes. Returns 0 or -errno.
 */
int broker_http_sandbox_apply(void);
/* --sandbox-self-test of teep-broker-http: 0 when every forbidden call was refused. */
int broker_http_sandbox_self_test(void);

/* --sandbox-self-test, after broker_sandbox_apply(): 0 when every forbidden call was refused. */
int broker_sandbox_self_test(void);
