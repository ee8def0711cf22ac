/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* landlock.h: bound a daemon's filesystem writes to one directory (seccomp cannot see paths) */
#pragma once

#include <stdbool.h>

/*
 * Restrict the calling thread (and threads and children created later) with Landlock: no file
 * may be created, written, truncated, renamed, linked or removed anywhere but beneath
 * write_dir (NULL: nowhere). Reading stays allowed (configuration, keys, /proc, NSS). With
 * no_tcp, TCP bind and connect are refused as well (Landlock ABI >= 4). Abstract unix sockets
 * and signals to processes outside the sandbox are refused where the kernel can (ABI >= 6).
 *
 * Sets NO_NEW_PRIVS. Returns 1 when the restriction is in place, 0 when the kernel has no
 * Landlock (logged as a notice: the unit's ReadWritePaths= still bounds the daemon), or
 * -errno. TEEP_SECCOMP=0 skips it, like the seccomp filter.
 */
int teep_landlock_restrict_writes(const char *who, const char *write_dir, bool no_tcp);

/* The Landlock ABI version of the running kernel, or 0 when there is none. */
int teep_landlock_abi(void);

/* Whether teep_landlock_restrict_writes() put a restriction in place in this process. */
bool teep_landlock_enforced(void);
