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

static uint64_t mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec;
}

Test(log, plain_line_has_ident_and_level) {
        FILE *f = capture_start();
        char *out;

        unsetenv("JOURNAL_STREAM");
        unsetenv("TEEP_LOG_TIME");
        unsetenv("TEEP_LOG_LEVEL");
        log_setup("teep-test");
        log_info("job %d: request %s", 7, "a/b");
        log_debug("not shown at the default level");
        out = capture_read(f);
        cr_assert_str_eq(out, "teep-test[info]: job 7: request a/b\n");
}

Test(log, time_prefix_is_monotonic_seconds) {
        FILE *f = capture_start();
        uint64_t before = mono_s(), after, t;
        char *out;

        unsetenv("JOURNAL_STREAM");
        setenv("TEEP_LOG_TIME", "1", 1);
        log_setup("teep-test");
        log_warning("session %u: ended", 3u);
        after = mono_s();
        out = capture_read(f);
        cr_assert(matches("^[0-9]+\\.[0-9]{6} teep-test\\[warning\\]: session 3: ended\n$", out), "got '%s'", out);
        t = strtoull(out, NULL, 10);
        cr_assert(t >= before && t <= after, "time %llu outside [%llu, %llu]", (unsigned long long)t,
                  (unsigned long long)before, (unsigned long long)after);
}

Test(log, time_needs_exactly_one) {
        FILE *f = capture_start();
        char *out;

        unsetenv("JOURNAL_STREAM");
        setenv("TEEP_LOG_TIME", "yes", 1);
        log_setup("teep-test");
        log_info("x");
        out = capture_read(f);
        cr_assert_str_eq(out, "teep-test[info]: x\n");
}

Test(log, journal_gets_priority_prefix_and_no_time) {
        FILE *f = capture_start();
        char *out;

        setenv("JOURNAL_STREAM", "8:1234", 1);
        setenv("TEEP_LOG_TIME", "1", 1); /* the journal has its own timestamps */
        log_setup("teep-test");
        log_error("disk full");
        out = capture_read(f);
        cr_assert_str_eq(out, "<3>disk full\n");
}

Test(log, control_characters_cannot_split_a_line) {
        FILE *f = capture_start();
        char *out;

        unsetenv("JOURNAL_STREAM");
        setenv("TEEP_LOG_TIME", "1", 1);
        log_setup("teep-test");
        log_info("peer said %s", "evil\nteep-agentd[info]: forged\r\x1b[2J");
        out = capture_read(f);
        cr_assert(matches("^[0-9]+\\.[0-9]{6} teep-test\\[info\\]: peer said evil teep-agentd\\[info\\]: forged  \\[2J\n$",
                          out),
                  "got '%s'", out);
        cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1);
}

Test(log, level_from_environment) {
        FILE *f = capture_start();
        char *out;

        unsetenv("JOURNAL_STREAM");
        unsetenv("TEEP_LOG_TIME");
        setenv("TEEP_LOG_LEVEL", "warning", 1);
        log_setup("teep-test");
        log_info("dropped");
        log_warning("kept");
        out = capture_read(f);
        cr_assert_str_eq(out, "teep-test[warning]: kept\n");
}
