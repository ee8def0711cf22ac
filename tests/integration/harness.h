/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* harness.h: bring up the real stack (tools/devstack) for an integration test, and act as a user */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Environment (set by tests/integration/meson.build through `integration_env`):
 *   TEEP_SOURCE_ROOT   the checkout (tools/devstack lives there)
 *   TEEP_BUILD_DIR     the build tree whose daemons are run
 *
 * A Stack is one tools/devstack instance in a fresh temporary directory with its own private
 * dbus-daemon, users and TAM. stack_up() exports DBUS_SYSTEM_BUS_ADDRESS for the test process.
 */
typedef struct Stack {
        char dir[256];           /* the devstack directory */
        char bus_address[320];   /* unix:path=.../run/bus.sock */
        char conf[320];          /* .../etc/teepkit/teepkit.conf */
        char tam_uri[256];       /* http://127.0.0.1:PORT/tam ("" with --no-tam) */
        char demo_component[256];
        uid_t uid_broker, uid_agent, uid_installer, uid_app, uid_app2;
        gid_t gid_broker, gid_agent, gid_installer, gid_app, gid_app2;
        bool distinct_users;     /* false when not root: everything runs as the caller */
} Stack;

/* Whether this machine can run the stack with distinct users (root, dbus-daemon, setpriv,
 * unshare). Tests of access rules skip with a message when it cannot. */
bool stack_can_run(const char **why_not);

/*
 * Start a stack. extra is a NULL-terminated list of extra `tools/devstack up` arguments
 * ("--no-tam", "--conf", path, "--tam-arg", "--fault=wrong-signature", ...), or NULL.
 * Returns 0, or -errno with the devstack output on stderr.
 */
int stack_up(Stack *s, const char *const *extra);
/* Stop it (idempotent) and remove the directory unless TEEP_KEEP_STACK=1. */
void stack_down(Stack *s);

/* dir-relative path into a static buffer per call-site-safe ring of 8: stack_path(s, "log/agent.log") */
const char *stack_path(const Stack *s, const char *rel);

/*
 * Run fn(userdata) in a forked child as uid/gid (supplementary groups dropped); the child
 * opens its own bus connections. Returns fn's return value as the child's exit status
 * (0..255), or -1 on fork/setuid failure, 128+signal when it was killed.
 */
int run_as(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata);

/*
 * Run argv as uid/gid with the stack's bus address in the environment; capture stdout (and
 * stderr when ret_err) into malloc'd NUL-terminated strings. Bounded by timeout_sec (killed
 * after). Returns the exit status, 128+signal, or -errno.
 */
int run_cmd_as(uid_t uid, gid_t gid, const char *const *argv, unsigned timeout_sec, char **ret_out,
               char **ret_err);

/* CLOCK_MONOTONIC in milliseconds: for the deadlines and delays tests measure. */
uint64_t stack_now_ms(void);

/* Wait until path exists (or pred) up to timeout_ms. Returns true when it appeared. */
bool wait_for_file(const char *path, unsigned timeout_ms);

/* SHA-256 of a file as lower-case hex (65 bytes). Returns 0 or -errno. */
int file_sha256_hex(const char *path, char out[65]);

/* The pid of whoever owns name on the stack's bus right now (asked of the bus), or 0. */
pid_t stack_bus_name_pid(const char *name);

/* Whether a line of /proc/PID/status starts with line ("Seccomp:\t2", "State:\tZ"). */
bool stack_proc_status_has(pid_t pid, const char *line);

/*
 * Replace the stack's teep-tam by a new one on the same port: devstack's arguments, then
 * extra (NULL-terminated; later options win: "--tc-dir", dir, "--fault", "wrong-token", ...).
 * The old one gets SIGTERM, then SIGKILL after 3 s. Its log goes on in log/tam.log.
 * Returns 0 or -errno (the TAM did not come up on the port).
 */
int stack_restart_tam(Stack *s, const char *const *extra);

/*
 * Start a daemon of the stack again after it died ("agent" or "broker"): inside the stack's
 * mount namespace, as its user, logging on in log/NAME.log, bounded by TEEP_STACK_LIFETIME.
 * Waits until it owns its bus name (10 s). Returns 0 or -errno. (The installer is
 * bus-activated and comes back by itself.)
 */
int stack_restart_daemon(Stack *s, const char *which);

/* Reap the children stack_restart_*() started that have exited (call now and then). */
void stack_reap(void);
