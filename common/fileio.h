/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fileio.h: bounded whole-file reads and hex decoding for the programs (not for libteep) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read all of path ("-" = stdin) into a NUL-terminated buffer of at most max bytes.
 * Returns 0, -EFBIG when larger, or -errno.
 */
int read_full_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

/*
 * The same for an open descriptor, always from its start (pread at offset 0; pipes and other
 * unseekable descriptors are read from where they are), so a memfd handed over by another
 * process reads the same whatever its file offset. A regular file is sized up front: no
 * reallocation leaves stray copies of what it holds. Returns 0, -EFBIG when larger than max,
 * or -errno.
 */
int read_full_fd(int fd, size_t max, uint8_t **ret, size_t *ret_len);

/*
 * If buf is entirely hex digits (whitespace ignored, optional 0x prefix), decode it in place
 * and return 1; return 0 (untouched) if it is not hex text; -EINVAL for an odd digit count.
 */
int unhex_in_place(uint8_t *buf, size_t len, size_t *ret_len);

/* Decode a hex string into a fresh buffer. -EINVAL if it is not pure, even-length hex. */
int unhex(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

/* The value of one hex digit (either case), or -1. */
int unhexchar(int c);

/* write() all of data, retrying on EINTR and short writes. Returns 0 or -errno (-EIO if the
 * kernel accepts nothing). */
int loop_write(int fd, const void *data, size_t len);

/* flock(fd, LOCK_EX), trying every 20 ms for up to timeout_ms (0: once): 0, -EWOULDBLOCK when
 * another open file still holds it, -errno. */
int flock_wait(int fd, unsigned timeout_ms);

/* Lower-case hex of n bytes into out (2n+1 bytes). Returns out. */
char *hexstr(const uint8_t *p, size_t n, char *out);

/*
 * Write data to dirfd/name atomically through a spare file beside it (dirfd/spare, a name the
 * caller keeps for it): the spare is rewritten in place and exchanged with name (renameat2
 * RENAME_EXCHANGE), so the old file becomes the next spare. No inode is made or freed per write,
 * unlike a temporary file renamed over the old one (a new inode each time, and the replaced
 * one's eviction: its blocks freed, and discarded on a discard mount). The first write, and a
 * file system that cannot exchange, rename the spare instead. With sync, the spare's bytes are
 * on disk (fdatasync) before the exchange, and the directory (fsync) after it. The spare holds
 * an older version: never read, never trusted; one with other links is replaced, not written
 * through. Returns 0 or -errno.
 */
int write_file_swap_at(int dirfd, const char *name, const char *spare, const void *data, size_t len, mode_t mode,
                       bool sync);

