/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-fileio.c: bounded whole-fd reads (the agent reads untrusted memfds with these) */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

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

/* write_file_swap_at(): the agent's and the TAM's state files are written through a spare that
 * is exchanged with them. */
static char *read_at(int dfd, const char *name) {
        uint8_t *data = NULL;
        size_t len = 0;
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return NULL;
        if (read_full_fd(fd, 1 << 20, &data, &len) < 0)
                data = NULL;
        close(fd);
        return (char *)data; /* NUL-terminated */
}

static ino_t inode_at(int dfd, const char *name) {
        struct stat st;
        return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_ino : 0;
}

Test(fileio, swap_writes_exchange_with_a_spare) {
        char dir[] = "/tmp/teep-swap-XXXXXX", path[300];
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *other = NULL;
        int dfd;
        ino_t first, spare, again;
        struct stat st;

        cr_assert_not_null(mkdtemp(dir));
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(dfd, 0);

        /* the first write has nothing to exchange with: the spare becomes the file */
        cr_assert_eq(write_file_swap_at(dfd, "state", ".state.spare", "one, the first version\n", 23, 0600, true), 0);
        cr_assert_str_eq(a = read_at(dfd, "state"), "one, the first version\n");
        cr_assert_eq(inode_at(dfd, ".state.spare"), 0, "no spare yet");
        first = inode_at(dfd, "state");

        /* then each write is an exchange: the old file is the next spare, no new inode */
        cr_assert_eq(write_file_swap_at(dfd, "state", ".state.spare", "two\n", 4, 0600, true), 0);
        cr_assert_str_eq(b = read_at(dfd, "state"), "two\n", "a shorter version is cut to its length");
        cr_assert_eq(inode_at(dfd, ".state.spare"), first, "the old file became the spare");
        spare = inode_at(dfd, "state");
        cr_assert_eq(write_file_swap_at(dfd, "state", ".state.spare", "three, longer again\n", 20, 0600, true), 0);
        cr_assert_str_eq(c = read_at(dfd, "state"), "three, longer again\n");
        again = inode_at(dfd, "state");
        cr_assert_eq(again, first, "the two inodes take turns");
        cr_assert_eq(inode_at(dfd, ".state.spare"), spare);
        cr_assert_eq(fstatat(dfd, "state", &st, 0), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);

        /* a spare with another name is never written through: that name keeps its bytes */
        snprintf(path, sizeof(path), "%s/other", dir);
        cr_assert_eq(linkat(dfd, ".state.spare", dfd, "other", 0), 0);
        cr_assert_eq(write_file_swap_at(dfd, "state", ".state.spare", "four\n", 5, 0600, true), 0);
        cr_assert_str_eq(d = read_at(dfd, "state"), "four\n");
        cr_assert_str_eq(other = read_at(dfd, "other"), "two\n", "the hard link to the old spare is untouched");

        (void)unlinkat(dfd, "other", 0);
        (void)unlinkat(dfd, "state", 0);
        (void)unlinkat(dfd, ".state.spare", 0);
        close(dfd);
        cr_assert_eq(rmdir(dir), 0, "nothing else was left in the directory");
}
