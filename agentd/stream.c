/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stream.c: a payload the broker streams through a pipe — every wait bounded, every byte counted */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent-internal.h"
#include "fileio.h"
#include "macro.h"
#include "sha256.h"

/* Bytes moved per read: the pipes are asked for 1 MiB (F_SETPIPE_SZ), a read takes what is there. */
#define STREAM_CHUNK (256u * 1024u)

void stream_limits_init(StreamLimits *l, uint64_t stall_usec, uint64_t total_usec) {
        l->stall_usec = stall_usec;
        l->deadline_usec = agent_now_usec() + total_usec;
}

/* Wait for events on fd: 0, or -ETIMEDOUT when nothing came for the stall time or the deadline
 * passed, or -errno. A hang-up or error counts as ready: the read or write that follows says
 * what it is. */
static int stream_wait(int fd, short events, const StreamLimits *l) {
        struct pollfd p = { .fd = fd, .events = events };

        for (;;) {
                uint64_t now = agent_now_usec(), wait = l->stall_usec;
                struct timespec ts;
                int k;

                if (now >= l->deadline_usec)
                        return -ETIMEDOUT;
                if (l->deadline_usec - now < wait)
                        wait = l->deadline_usec - now;
                ts.tv_sec = (time_t)(wait / 1000000u);
                ts.tv_nsec = (long)(wait % 1000000u) * 1000;
                k = ppoll(&p, 1, &ts, NULL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                return k == 0 ? -ETIMEDOUT : 0;
        }
}

ssize_t stream_read(int fd, void *buf, size_t len, const StreamLimits *l) {
        size_t got = 0;

        while (got < len) {
                ssize_t n;
                int r;

                r = stream_wait(fd, POLLIN, l);
                if (r < 0)
                        return r;
                n = read(fd, (uint8_t *)buf + got, len - got);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return (ssize_t)got;
}

/* Write all of buf to fd, which may be a non-blocking pipe (the installer's) or a file. */
static int stream_write(int fd, const uint8_t *buf, size_t len, const StreamLimits *l) {
        while (len > 0) {
                ssize_t n = write(fd, buf, len);

                if (n < 0) {
                        int r;

                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno; /* -EPIPE: the reader left */
                        r = stream_wait(fd, POLLOUT, l);
                        if (r < 0)
                                return r;
                        continue;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

int stream_pump(int in_fd, int out_fd, const uint8_t *head, size_t head_len, uint64_t max, const StreamLimits *l,
                uint64_t *ret_len, uint8_t ret_sha256[32]) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t total = head_len;
        TeepSha256 h;
        int r;

        if (head_len > max)
                return -EFBIG;
        buf = malloc(STREAM_CHUNK);
        if (!buf)
                return -ENOMEM;
        teep_sha256_init(&h);
        if (ret_sha256)
                teep_sha256_update(&h, head, head_len);
        r = stream_write(out_fd, head, head_len, l);
        while (r >= 0) {
                /* at most one byte more than max: a payload that runs over is refused after
                 * that byte, not after a GiB of it */
                uint64_t left = max - total;
                size_t want = left < STREAM_CHUNK ? (size_t)left + 1 : STREAM_CHUNK;
                ssize_t n;

                n = stream_read(in_fd, buf, want, l);
                if (n < 0) {
                        r = (int)n;
                        break;
                }
                if (n == 0)
                        break;
                if ((uint64_t)n > left) {
                        r = -EFBIG;
                        break;
                }
                total += (uint64_t)n;
                if (ret_sha256)
                        teep_sha256_update(&h, buf, (size_t)n);
                r = stream_write(out_fd, buf, (size_t)n, l);
                if ((size_t)n < want)
                        break; /* stream_read() stops short only at the end */
        }
        if (r < 0) {
                explicit_bzero(&h, sizeof(h));
                return r;
        }
        if (ret_sha256)
                teep_sha256_final(&h, ret_sha256);
        *ret_len = total;
        return 0;
}

int stream_to_sealed_memfd(int in_fd, const uint8_t *head, size_t head_len, uint64_t max, const StreamLimits *l,
                           int *ret_fd, uint64_t *ret_len, uint8_t ret_sha256[32]) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = memfd_create("teep-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = stream_pump(in_fd, fd, head, head_len, max, l, ret_len, ret_sha256);
        if (r < 0)
                return r;
        r = memfd_seal_and_rewind(fd);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int stream_read_head(int fd, size_t cap, const StreamLimits *l, uint8_t **ret, size_t *ret_len, bool *ret_ended) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, size = 0;

        for (;;) {
                ssize_t n;

                if (len == size) {
                        size_t nsize = size == 0 ? 64u * 1024u : size * 2;
                        uint8_t *b;

                        if (len == cap)
                                break;
                        if (nsize > cap)
                                nsize = cap;
                        b = realloc(buf, nsize ? nsize : 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        size = nsize;
                }
                n = stream_read(fd, buf + len, size - len, l);
                if (n < 0)
                        return (int)n;
                len += (size_t)n;
                if (len < size) {
                        *ret_ended = true;
                        goto done;
                }
        }
        *ret_ended = false;
done:
        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}
