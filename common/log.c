/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* log.c: see log.h */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_ident = "teepkit";
static int log_max = LOG_INFO;
static bool log_journal;
static bool log_time;

void log_setup(const char *ident) {
        static const struct {
                const char *name;
                int prio;
        } levels[] = {
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "err", LOG_ERR }, { "error", LOG_ERR },
        };
        const char *e;

        log_ident = ident;
        log_journal = getenv("JOURNAL_STREAM") != NULL;
        e = getenv("TEEP_LOG_TIME");
        log_time = e && strcmp(e, "1") == 0;
        e = getenv("TEEP_LOG_LEVEL");
        if (e)
                for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
                        if (strcasecmp(e, levels[i].name) == 0)
                                log_max = levels[i].prio;
        setvbuf(stderr, NULL, _IOLBF, 0);
}

void log_set_max_level(int max_prio) {
        log_max = max_prio;
}

__attribute__((format(printf, 2, 0))) static void log_va(int prio, const char *fmt, va_list ap) {
        static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };
        char line[2048];

        if (prio > log_max)
                return;
        (void)vsnprintf(line, sizeof(line), fmt, ap);
        /* One event, one line: never let a peer's bytes split or forge log lines. */
        for (char *p = line; *p; p++)
                if ((unsigned char)*p < 0x20)
                        *p = ' ';
        if (log_journal)
                fprintf(stderr, "<%d>%s\n", prio, line);
        else if (log_time) {
                /* a debugging aid (TEEP_LOG_TIME=1): CLOCK_MONOTONIC, comparable across the daemons */
                struct timespec ts;
                (void)clock_gettime(CLOCK_MONOTONIC, &ts);
                fprintf(stderr, "%lld.%06ld %s[%s]: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000L, log_ident,
                        names[prio & 7], line);
        } else
                fprintf(stderr, "%s[%s]: %s\n", log_ident, names[prio & 7], line);
}

void log_full(int prio, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(prio, fmt, ap);
        va_end(ap);
}

int log_full_errno(int prio, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(prio, fmt, ap);
        va_end(ap);
        return error < 0 ? error : -error;
}
