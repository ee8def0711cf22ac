/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* log.h: one line per event on stderr; journald-friendly "<N>" priority prefixes under systemd */
#pragma once

#include <syslog.h>

/* Call once at start. ident is the program name ("teep-agentd"). Under systemd (JOURNAL_STREAM
 * set) lines get a "<prio>" prefix the journal understands; otherwise "ident: " and the level,
 * after the CLOCK_MONOTONIC time in seconds when TEEP_LOG_TIME=1 (for following one event
 * across the daemons' logs on a devstack). */
void log_setup(const char *ident);
/* Messages above max_prio (e.g. LOG_DEBUG when LOG_INFO is set) are dropped. Default LOG_INFO;
 * TEEP_LOG_LEVEL=debug|info|notice|warning|err in the environment changes it. */
void log_set_max_level(int max_prio);

void log_full(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs and returns -|error|, so `return log_error_errno(r, "...: %s", strerror(-r));` works. */
int log_full_errno(int prio, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
