/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox.h: teep-agentd's own box: a seccomp filter and Landlock, installed after start-up */
#pragma once

#include "seccomp-util.h"

extern const TeepSeccompPolicy agent_seccomp_policy;

/* Install the agent's box on the calling process: file writes beneath state_dir only
 * (Landlock, where the kernel has it), no TCP; seccomp: AF_UNIX sockets only, no exec, no
 * ptrace, no mount or module calls. Returns 0 or -errno. */
int agent_sandbox_apply(const char *state_dir);

/* --sandbox-self-test, after agent_sandbox_apply(): try the forbidden calls, one line each on
 * stdout. Returns 0 when every one was refused. */
int agent_sandbox_self_test(const char *state_dir);
