/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: the installer's own box: a seccomp allowlist and Landlock */
#pragma once

#include "seccomp-util.h"

extern const TeepSeccompPolicy installer_seccomp_policy;

/*
 * Install teep-installer's box on the calling process: file writes beneath store_dir only
 * (Landlock, where the kernel has it), no TCP; seccomp: the shared base, file writes (rename,
 * unlink, fsync, fchmod) and AF_UNIX sockets for the bus; no inet sockets, no exec. Returns 0
 * or -errno. TEEP_SECCOMP=0 skips it (debugging only).
 */
int installer_sandbox_apply(const char *store_dir);

/* --sandbox-self-test, after installer_sandbox_apply(): 0 when every forbidden call was refused. */
int installer_sandbox_self_test(const char *store_dir);
