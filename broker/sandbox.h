/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: teep-brokerd's own seccomp filter */
#pragma once

/*
 * Install the broker's filter on the calling thread (and the threads it creates later, such as
 * libcurl's resolver threads): the shared base of seccomp/, sockets of the families AF_UNIX,
 * AF_INET and AF_INET6 (and the netlink socket glibc's resolver opens), and what libcurl,
 * GnuTLS and name resolution need once running. No exec, no ptrace, no file writes by name.
 * Returns 0 or -errno.
 */
int broker_sandbox_apply(void);
