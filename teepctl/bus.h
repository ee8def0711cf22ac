/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus.h: what teepctl's bus verbs share — the connection, jobs, errors and exit codes */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

/* Open the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured). Prints why on failure. */
int ctl_bus_open(sd_bus **ret);

/* Print "teepctl: what: message" for a failed call and return the exit code for it. */
int ctl_error(const char *what, const sd_bus_error *e, int r);
/* The teepctl(1) exit code for a D-Bus error name (NULL: 1). */
int ctl_exit_code_for_error(const char *name);

typedef struct JobOutcome {
        char *path;
        char *kind;
        char *component;
        char *state;
        char *result;
        char *error_name;
        char *error_message;
        uint32_t progress;
} JobOutcome;

void job_outcome_done(JobOutcome *o);

typedef struct JobWaitOptions {
        bool progress;          /* draw a progress line on stdout (a terminal) */
        uint64_t timeout_usec;  /* 0: wait as long as it takes */
} JobWaitOptions;

/*
 * Call method on org.teepkit.Broker1 (m is the prepared call), then follow the job it returns
 * until it finished. The signal matches are in place before the call, so nothing is missed.
 * Returns 0 with ret filled, or an exit code > 0 after printing why (the call failed, the
 * broker left the bus, the timeout passed).
 */
int ctl_call_and_wait(sd_bus *bus, sd_bus_message *m, const JobWaitOptions *w, JobOutcome *ret);
/* The same without waiting: only the job path. */
int ctl_call_no_block(sd_bus *bus, sd_bus_message *m, char **ret_path);

/* The exit code for a finished job (0 ok, 2 nothing to do, 3 not found, 4 access denied, 1). */
int job_outcome_exit_code(const JobOutcome *o);
/* One JSON object for a job. */
void job_outcome_print_json(FILE *f, const JobOutcome *o);

/* JSON helpers: a string (NULL → null) and bytes as lower-case hex. */
void json_string(FILE *f, const char *s);
void json_hex(FILE *f, const uint8_t *p, size_t n);

/* "2024-05-01 10:00:00 UTC" or "never" for 0; into buf. */
const char *format_timestamp(uint64_t usec, char *buf, size_t n);
/* "1h", "30min", "45s" into buf. */
const char *format_timespan(uint64_t usec, char *buf, size_t n);
