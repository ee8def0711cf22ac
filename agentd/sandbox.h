/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: teep-agentd's own seccomp filter (installed after start-up) */
#pragma once

/* Install the agent's filter on the calling process: AF_UNIX sockets only, writes inside
 * directories it opened, no exec, no ptrace. Returns 0 or -errno. */
int agent_sandbox_apply(void);
