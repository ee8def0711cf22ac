/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: the installer's own seccomp allowlist */
#pragma once

/*
 * Install teep-installer's filter on the calling thread: the shared base (seccomp-util.h), file
 * writes (rename, unlink, fsync, fchmod) and AF_UNIX sockets for the bus; no inet sockets, no
 * exec. Returns 0 or -errno. TEEP_SECCOMP=0 skips it (debugging only).
 */
int installer_sandbox_apply(void);
