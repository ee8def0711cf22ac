/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fileio.c: bounded whole-file reads, hex decoding, a state file rewritten through a spare */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

int read_full_fd(int fd, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, cap = 4096;
        bool seekable = true;
        struct stat st;

        if (max > SIZE_MAX - 2)
                max = SIZE_MAX - 2;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                if ((uint64_t)st.st_size > max)
                        return -EFBIG;
                cap = (size_t)st.st_size + 2; /* the bytes, the NUL, and room to see EOF */
        }
        if (cap > max + 2)
                cap = max + 2;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        size_t ncap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
                        uint8_t *b;
                        if (ncap <= len + 1)
                                return -EFBIG;
                        b = realloc(buf, ncap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        cap = ncap;
                }
                n = seekable ? pread(fd, buf + len, cap - len - 1, (off_t)len) : read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ESPIPE && seekable) {
                                seekable = false;
                                continue;
                        }
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int read_full_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;

        if (strcmp(path, "-") == 0)
                return read_full_fd(STDIN_FILENO, max, ret, ret_len);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_full_fd(fd, max, ret, ret_len);
}

int unhexchar(int c) {
        /* explicit ranges, no tolower(): callers pass plain (possibly negative) chars */
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int unhex_in_place(uint8_t *buf, size_t len, size_t *ret_len) {
        size_t i = 0, digits = 0, out = 0;
        int hi = -1;

        /* first pass: is it hex text at all? */
        if (len >= 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))
                i = 2;
        for (size_t j = i; j < len; j++) {
                if (isspace(buf[j]))
                        continue;
                if (unhexchar(buf[j]) < 0)
                        return 0;
                digits++;
        }
        if (digits == 0)
                return 0;
        if (digits % 2)
                return -EINVAL;

        for (; i < len; i++) {
                int v;
                if (isspace(buf[i]))
                        continue;
                v = unhexchar(buf[i]);
                if (hi < 0)
                        hi = v;
                else {
                        buf[out++] = (uint8_t)(hi << 4 | v);
                        hi = -1;
                }
        }
        *ret_len = out;
        return 1;
}

int unhex(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *b = malloc(len + 1);
        size_t n;
        int r;

        if (!b)
                return -ENOMEM;
        memcpy(b, s, len);
        r = unhex_in_place(b, len, &n);
        if (r <= 0)
                return r < 0 ? r : -EINVAL;
        *ret = TAKE_PTR(b);
        *ret_len = n;
        return 0;
}

char *hexstr(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = 0;
        return out;
}

int loop_write(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int write_file_swap_at(int dirfd, const char *name, const char *spare, const void *data, size_t len, mode_t mode,
                       bool sync) {
        struct stat st;
        int fd = -1, r = 0;

        for (int attempt = 0; attempt < 2; attempt++) {
                fd = openat(dirfd, spare, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
                if (S_ISREG(st.st_mode) && st.st_nlink == 1)
                        break;
                /* not a spare we made (another name for the same file would change with it):
                 * away with it, and a new one */
                close(fd);
                fd = -1;
                if (unlinkat(dirfd, spare, 0) < 0)
                        return -errno;
        }
        if (fd < 0)
                return -EEXIST;
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0)
                r = loop_write(fd, data, len); /* from offset 0: just opened */
        if (r >= 0 && ftruncate(fd, (off_t)len) < 0)
                r = -errno;
        if (r >= 0 && sync && fdatasync(fd) < 0)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;
        if (renameat2(dirfd, spare, dirfd, name, RENAME_EXCHANGE) < 0) {
                /* no name yet (the first write), or a file system that cannot exchange: the spare
                 * becomes the name, and the next write makes a new spare */
                if (errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return -errno;
                if (renameat(dirfd, spare, dirfd, name) < 0)
                        return -errno;
        }
        /* the exchange is durable only once the directory is */
        if (sync && fsync(dirfd) < 0)
                return -errno;
        return 0;
}

int flock_wait(int fd, unsigned timeout_ms) {
        struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };

        for (unsigned waited = 0;; waited += 20) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return -errno;
                if (waited >= timeout_ms)
                        return -EWOULDBLOCK;
                (void)nanosleep(&pause, NULL);
        }
}
