/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fsutil.c: atomic writes inside the state directory, bounded reads, sealed memfds */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "agent-internal.h"
#include "fileio.h"
#include "macro.h"

#define FD_CHUNK (256 * 1024) /* streaming reads of a payload: what the agent holds of it at once */

static int write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync_file,
                        bool sync_dir) {
        _cleanup_close_ int fd = -1;
        char tmp[300];
        uint64_t rnd = 0;
        int r;

        if (strlen(name) > 200 || strchr(name, '/'))
                return -EINVAL;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                rnd = (uint64_t)getpid() ^ agent_now_usec();
        (void)snprintf(tmp, sizeof(tmp), ".#%s.%016llx", name, (unsigned long long)rnd);

        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && sync_file && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        /* the rename is durable only once the directory is */
        if (sync_dir && fsync(dirfd) < 0)
                return -errno;
        return 0;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        return write_atomic(dirfd, name, data, len, mode, true, true);
}

int write_file_nodirsync_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync_file) {
        return write_atomic(dirfd, name, data, len, mode, sync_file, false);
}

int sealed_memfd_size(int fd, uint64_t *ret_size) {
        const int need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
        struct stat st;
        int seals;

        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? 0 : -errno; /* not a memfd */
        if ((seals & need) != need)
                return 0;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size < 0)
                return 0;
        *ret_size = (uint64_t)st.st_size;
        return 1;
}

int fd_sha256(int fd, uint64_t len, uint8_t ret[32]) {
        gnutls_hash_hd_t h;
        uint8_t *buf;
        off_t off = 0;
        int r = 0;

        buf = malloc(FD_CHUNK);
        if (!buf)
                return -ENOMEM;
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
                free(buf);
                return -EIO;
        }
        while ((uint64_t)off < len) {
                size_t want = len - (uint64_t)off > FD_CHUNK ? FD_CHUNK : (size_t)(len - (uint64_t)off);
                ssize_t n = pread(fd, buf, want, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                if (gnutls_hash(h, buf, (size_t)n) < 0) {
                        r = -EIO;
                        break;
                }
                off += n;
        }
        gnutls_hash_deinit(h, r >= 0 ? ret : NULL);
        free(buf);
        return r;
}

int fd_equals(int fd, uint64_t len, const uint8_t *data, size_t data_len) {
        uint8_t buf[4096];
        uint8_t diff = 0;
        off_t off = 0;

        if (len != data_len)
                return 0;
        while ((uint64_t)off < len) {
                size_t want = len - (uint64_t)off > sizeof(buf) ? sizeof(buf) : (size_t)(len - (uint64_t)off);
                ssize_t n = pread(fd, buf, want, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                for (ssize_t i = 0; i < n; i++)
                        diff |= buf[i] ^ data[off + i];
                off += n;
        }
        return diff == 0;
}

int read_file_at(int dirfd, const char *name, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return read_full_fd(fd, max, ret, ret_len);
}

int open_private_dir_at(int dirfd, const char *path, mode_t mode) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (mkdirat(dirfd, path, mode) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_uid != geteuid())
                return -EPERM; /* someone else's directory: never keep a key there */
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int memfd_seal_and_rewind(int fd) {
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return 0;
}

int memfd_from_data(const char *name, const void *data, size_t len) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, data, len);
        if (r < 0)
                return r;
        r = memfd_seal_and_rewind(fd);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}
