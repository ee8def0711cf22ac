/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* seccomp-util.h: each daemon installs its own allowlist with libseccomp after start-up */
#pragma once

#include <stdbool.h>

/*
 * A policy is an allowlist of syscall names on top of a shared base (memory, time, signals,
 * epoll/poll, reading and writing already-open descriptors, sendmsg/recvmsg on the bus socket).
 * Unknown names (older kernels, other architectures) are skipped.
 *
 * Always killed, whatever the allowlist says: execve, execveat, ptrace (allowed in sanitizer
 * builds only: LeakSanitizer needs it at exit), process_vm_*, kexec_*,
 * *_module, bpf, mount, umount2, pivot_root, chroot, swapon/off, reboot, setns, unshare,
 * keyctl/add_key/request_key, perf_event_open, userfaultfd.
 *
 * socket() and socketpair() are allowed for AF_UNIX only when allow_unix_socket is set
 * (sd-bus reconnects), and for AF_INET/AF_INET6 only when allow_inet_socket is set (the
 * broker). Everything not listed fails with EPERM (SCMP_ACT_ERRNO keeps a daemon alive and
 * lets it log the error it got); built with -Dseccomp_trap=true it raises SIGSYS instead, for
 * development.
 */
typedef struct TeepSeccompPolicy {
        const char *name;               /* for log lines: "teep-agentd" */
        const char *const *allow;       /* NULL-terminated syscall names, in addition to the base */
        bool allow_unix_socket;
        bool allow_inet_socket;
        bool allow_file_writes;         /* rename, unlink, mkdir, fsync, fchmod, ... (openat is in the base) */
} TeepSeccompPolicy;

/*
 * Install the filter on the calling thread (and children; sets NO_NEW_PRIVS). Returns 0 or
 * -errno. When the environment has TEEP_SECCOMP=0 the filter is skipped with a warning (for
 * debugging under strace/gdb; never set by the units).
 */
int teep_seccomp_apply(const TeepSeccompPolicy *p);
