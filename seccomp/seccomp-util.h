/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* seccomp-util.h: each daemon installs its own allowlist with libseccomp after start-up */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* One allowed (or always-killed) system call and why: the reason is printed by
 * teep_seccomp_print() and `seccomp-probe DAEMON --list`, so a reviewer reads the box as a table. */
typedef struct TeepSyscall {
        const char *name;
        const char *reason;
} TeepSyscall;

/*
 * A policy is an allowlist of syscall names on top of a shared base (memory, time, signals,
 * epoll/poll, reading and writing already-open descriptors, sendmsg/recvmsg on the bus socket).
 * Unknown names (older kernels, other architectures) are skipped.
 *
 * Always killed (SIGSYS, whole process), whatever the allowlist says: exec (but see
 * allow_exec_fd), ptrace (allowed in
 * sanitizer builds only: LeakSanitizer needs it at exit), process_vm_*, kexec_*, *_module, bpf,
 * mount and friends, chroot, swapon/off, reboot, setns, unshare, keyctl/add_key/request_key,
 * perf_event_open, userfaultfd, *_handle_at. The table is teep_seccomp_always_kill.
 *
 * socket() and socketpair() are allowed for AF_UNIX only when allow_unix_socket is set (sd-bus
 * reconnects), for AF_INET/AF_INET6 only when allow_inet_socket is set, for AF_NETLINK only when
 * allow_netlink_socket is set (the broker: glibc's getaddrinfo asks for the interfaces).
 *
 * Everything else fails with EPERM and leaves one line on stderr naming the call: the default
 * action is SCMP_ACT_TRAP, and a SIGSYS handler (SA_SIGINFO, async-signal-safe) writes the line
 * and sets the call's return value to -EPERM (x86-64 and aarch64; elsewhere SCMP_ACT_ERRNO, no
 * line). Built with -Dseccomp_trap=true (development) no handler is installed: the first call
 * outside the list kills the process with SIGSYS and a core, so a developer sees where.
 */
typedef struct TeepSeccompPolicy {
        const char *name;               /* for log lines: "teep-agentd" */
        const TeepSyscall *allow;       /* in addition to the base; ends with { NULL, NULL } */
        bool allow_unix_socket;
        bool allow_inet_socket;
        bool allow_netlink_socket;
        bool allow_file_writes;         /* rename, unlink, mkdir, fsync, fchmod, ... (openat is in the base) */
        /* execveat(fd, "", ..., AT_EMPTY_PATH) is allowed instead of killed: running a program by
         * a descriptor opened before the box (teep-brokerd starting teep-broker-http). execve and
         * every other execveat stay refused; the filter is inherited by what is run. */
        bool allow_exec_fd;
} TeepSeccompPolicy;

extern const TeepSyscall teep_seccomp_base[];
extern const TeepSyscall teep_seccomp_writes[];
extern const TeepSyscall teep_seccomp_always_kill[];

/*
 * Install the filter on the calling thread (and children; sets NO_NEW_PRIVS) and the SIGSYS
 * handler that logs refused calls. Returns 0 or -errno. When the environment has TEEP_SECCOMP=0
 * the filter is skipped with a warning (for debugging under strace/gdb; never set by the units).
 */
int teep_seccomp_apply(const TeepSeccompPolicy *p);

/* Print the policy as a table, one line per rule: "allow|kill  NAME  REASON". */
void teep_seccomp_print(const TeepSeccompPolicy *p, FILE *f);

/* Whether TEEP_SECCOMP=0 switches the sandbox (seccomp and Landlock) off. */
bool teep_sandbox_disabled(void);
