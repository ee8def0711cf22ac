/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-log.c: common/log.c's line formats (TEEP_LOG_TIME, JOURNAL_STREAM, TEEP_LOG_LEVEL) */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Point stderr at a fresh temporary file; returns it for capture_read(). */
static FILE *capture_start(void) {
        FILE *f = tmpfile();

        cr_assert_not_null(f);
        fflush(stderr);
        cr_assert_geq(dup2(fileno(f), STDERR_FILENO), 0);
        return f;
}

static char *capture_read(FILE *f) {
        static char buf[4096];
        size_t n;

        fflush(stderr);
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        return buf;
}

static bool matches(const char *re, const char *s) {
        regex_t rx;
        bool ok;

        cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
        ok = regexec(&rx, s, 0, NULL, 0) == 0;
        regfree(&rx);
        return ok;
}

/* The three variables log_setup() reads, each set to the value given or unset for NULL. */
static void setup(const char *journal_stream, const char *log_time, const char *log_level) {
        const char *names[] = { "JOURNAL_STREAM", "TEEP_LOG_TIME", "TEEP_LOG_LEVEL" };
        const char *values[] = { journal_stream, log_time, log_level };

        for (size_t i = 0; i < 3; i++)
                if (values[i])
                        cr_assert_eq(setenv(names[i], values[i], 1), 0);
                else
                        cr_assert_eq(unsetenv(names[i]), 0);
        log_setup("teep-test");
}

static uint64_t mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec;
}

/* Sets up as setup() does, logs a at prio_a and then b at prio_b (unless NULL), returns what
 * reached stderr. */
static char *logged(const char *journal_stream, const char *log_time, const char *log_level, int prio_a,
                    const char *a, int prio_b, const char *b) {
        FILE *f = capture_start();

        setup(journal_stream, log_time, log_level);
        log_full(prio_a, "%s", a);
        if (b)
                log_full(prio_b, "%s", b);
        return capture_read(f);
}

Test(log, plain_line_has_ident_and_level) {
        cr_assert_str_eq(logged(NULL, NULL, NULL, LOG_INFO, "job 7: request a/b", LOG_DEBUG, "not at the default level"),
                         "teep-test[info]: job 7: request a/b\n");
}

Test(log, time_prefix_is_monotonic_seconds) {
        uint64_t before = mono_s(), after, t;
        char *out = logged(NULL, "1", NULL, LOG_WARNING, "session 3: ended", 0, NULL);

        after = mono_s();
        cr_assert(matches("^[0-9]+\\.[0-9]{6} teep-test\\[warning\\]: session 3: ended\n$", out), "got '%s'", out);
        t = strtoull(out, NULL, 10);
        cr_assert(t >= before && t <= after, "time %llu outside [%llu, %llu]", (unsigned long long)t,
                  (unsigned long long)before, (unsigned long long)after);
}

Test(log, time_needs_exactly_one) {
        cr_assert_str_eq(logged(NULL, "yes", NULL, LOG_INFO, "x", 0, NULL), "teep-test[info]: x\n");
}

Test(log, journal_gets_priority_prefix_and_no_time) {
        /* the journal has its own timestamps */
        cr_assert_str_eq(logged("8:1234", "1", NULL, LOG_ERR, "disk full", 0, NULL), "<3>disk full\n");
}

Test(log, control_characters_cannot_split_a_line) {
        char *out = logged(NULL, "1", NULL, LOG_INFO, "peer said evil\nteep-agentd[info]: forged\r\x1b[2J", 0, NULL);

        cr_assert(matches("^[0-9]+\\.[0-9]{6} teep-test\\[info\\]: peer said evil teep-agentd\\[info\\]: forged  \\[2J\n$",
                          out),
                  "got '%s'", out);
        cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1);
}

Test(log, level_from_environment) {
        cr_assert_str_eq(logged(NULL, NULL, "warning", LOG_INFO, "dropped", LOG_WARNING, "kept"),
                         "teep-test[warning]: kept\n");
}
