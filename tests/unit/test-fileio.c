/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-fileio.c: bounded whole-fd reads (the agent reads untrusted memfds with these) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"

static int memfd_with(const char *text) {
        int fd = memfd_create("test", MFD_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        return fd; /* offset left at the end on purpose */
}

Test(fileio, memfd_reads_from_the_start_whatever_its_offset) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int fd = memfd_with("hello world");

        cr_assert_eq(read_full_fd(fd, 64, &buf, &len), 0);
        cr_assert_eq(len, 11u);
        cr_assert_str_eq((char *)buf, "hello world");
        free(buf);
        close(fd);
}

Test(fileio, exactly_max_is_accepted_one_more_is_refused) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int fd = memfd_with("0123456789");

        cr_assert_eq(read_full_fd(fd, 10, &buf, &len), 0);
        cr_assert_eq(len, 10u);
        free(buf);
        buf = NULL;
        cr_assert_eq(read_full_fd(fd, 9, &buf, &len), -EFBIG);
        cr_assert_null(buf);
        close(fd);
}

Test(fileio, pipes_are_read_and_bounded) {
        int p[2];
        uint8_t *buf = NULL;
        size_t len = 0;
        char big[9000];

        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], "abc", 3), 3);
        close(p[1]);
        cr_assert_eq(read_full_fd(p[0], 3, &buf, &len), 0);
        cr_assert_eq(len, 3u);
        cr_assert_eq(memcmp(buf, "abc", 3), 0);
        free(buf);
        close(p[0]);

        memset(big, 'x', sizeof(big));
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], big, sizeof(big)), (ssize_t)sizeof(big));
        close(p[1]);
        buf = NULL;
        cr_assert_eq(read_full_fd(p[0], sizeof(big) - 1, &buf, &len), -EFBIG);
        cr_assert_null(buf);
        close(p[0]);
}
