/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* selftest.h: try forbidden calls under a daemon's sandbox (tests/seccomp, --sandbox-self-test) */
#pragma once

#include <stddef.h>

/* What happened to one try. */
typedef enum TeepTryOutcome {
        TEEP_TRY_ALLOWED,  /* the call succeeded: for a forbidden call, the box has a hole */
        TEEP_TRY_REFUSED,  /* failed with EPERM (seccomp) or EACCES (Landlock) */
        TEEP_TRY_KILLED,   /* the process was killed by SIGSYS (the always-kill list) */
        TEEP_TRY_FAILED,   /* failed with another error: inconclusive */
        TEEP_TRY_UNKNOWN,  /* no such call name */
} TeepTryOutcome;

/* The calls teep_sandbox_do() knows, NULL-terminated: "socket-inet", "execve", "mount", ... */
extern const char *const teep_sandbox_calls[];

/*
 * Do call in this process. dir is the daemon's writable directory, used by "write-inside"
 * (create, write, fsync, rename, unlink there); the "*-outside" calls write fresh names in /tmp,
 * which is outside every daemon's directory and writable by mode, so only Landlock refuses
 * them. Returns 0 when the call succeeded, a positive errno when it failed, -1 for an unknown
 * name. A kill-listed call does not return.
 */
int teep_sandbox_do(const char *call, const char *dir);

/*
 * Fork; in the child run setup(userdata) (when not NULL; a failure exits 125) and then
 * teep_sandbox_do(call, dir); in the parent wait and classify. desc gets a short description
 * ("refused (EPERM)", "killed by SIGSYS", ...). setup is where the probe installs a policy.
 */
TeepTryOutcome teep_sandbox_try(const char *call, const char *dir, int (*setup)(void *userdata), void *userdata,
                                char *desc, size_t desc_size);

/*
 * The daemons' --sandbox-self-test, run after the daemon's own sandbox went in: try each call
 * of forbidden (NULL-terminated) in a child, print "who: CALL: OUTCOME" per call on stdout.
 * Returns 0 when every call was refused or killed, -EPERM when one was not.
 */
int teep_sandbox_self_test(const char *who, const char *const *forbidden, const char *dir);

/* The forbidden calls every daemon's self-test tries (the daemons add their own). */
#define TEEP_SANDBOX_FORBIDDEN_COMMON                                                                          \
        "socket-packet", "execve", "execveat", "ptrace", "process_vm_readv", "mount", "umount2",              \
                "init_module", "bpf", "unshare", "setns", "chroot", "reboot", "keyctl", "open-outside",       \
                "mkdir-outside"
