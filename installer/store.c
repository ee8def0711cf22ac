/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store.c: see store.h */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digests.h"
#include "fileio.h"
#include "sha256.h"
#include "teep-cose.h"

/* An owner record holds one component name and a newline. */
#define OWNER_RECORD_MAX 4096

#define OWNER_NAME_SIZE (sizeof(STORE_OWNER_PREFIX) + STORE_UUID_STRING_LEN)

static void owner_name(const char *uuid, char out[OWNER_NAME_SIZE]) {
        (void)snprintf(out, OWNER_NAME_SIZE, STORE_OWNER_PREFIX "%s", uuid);
}

static void closedirp(DIR **d) {
        if (*d)
                (void)closedir(*d);
}

int store_open(const char *path, StoreLayout layout, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;

        if (!path || !*path || (unsigned)layout >= _STORE_LAYOUT_MAX)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir_fd = -1;
        s->layout = layout;
        s->stall_timeout_ms = STORE_STALL_TIMEOUT_MS;
        s->digests_min_age_ns = DIGESTS_MIN_AGE_NS;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        /* O_NOFOLLOW: the store itself must not be a symlink someone could re-point. */
        s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->dir_fd < 0)
                return -errno;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->dir_fd >= 0)
                (void)close(s->dir_fd);
        free(s->path);
        free(s);
        return NULL;
}

int store_lock(Store *s, unsigned timeout_ms) {
        return flock_wait(s->dir_fd, timeout_ms);
}

bool store_name_is_temporary(const char *name) {
        return name && strncmp(name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0;
}

bool store_name_is_undo(const char *name) {
        return name && (strncmp(name, STORE_UNDO_PREFIX, strlen(STORE_UNDO_PREFIX)) == 0 ||
                        strncmp(name, STORE_ADDED_PREFIX, strlen(STORE_ADDED_PREFIX)) == 0);
}

static int undo_name(const char *prefix, const char *file, char out[STORE_UNDO_NAME_SIZE]) {
        uint8_t d[32];
        char hex[65];

        size_t lp = strlen(prefix), lf = strlen(file);

        if (lp + lf <= STORE_FILE_NAME_MAX) {
                memcpy(out, prefix, lp);
                memcpy(out + lp, file, lf + 1);
                return 0;
        }
        /* Too long with the prefix: the file name's digest stands for it (no two file names
         * share one, and '~' keeps it apart from the short form of any TC file name). */
        if (teep_sha256(TEEP_BUF((const uint8_t *)file, strlen(file)), d) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(d); i++)
                (void)snprintf(hex + 2 * i, 3, "%02x", d[i]);
        (void)snprintf(out, STORE_UNDO_NAME_SIZE, "%s~%s", prefix, hex);
        return 0;
}

int store_undo_names(const char *file, char ret_undo[STORE_UNDO_NAME_SIZE], char ret_added[STORE_UNDO_NAME_SIZE]) {
        int r;

        if (!file || !*file || strchr(file, '/') || file[0] == '.')
                return -EINVAL;
        r = undo_name(STORE_UNDO_PREFIX, file, ret_undo);
        if (r < 0)
                return r;
        return undo_name(STORE_ADDED_PREFIX, file, ret_added);
}

static int unlink_if_present(int dir_fd, const char *name) {
        if (unlinkat(dir_fd, name, 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}

/*
 * Record how to undo the change of t->file about to happen: drop the record of an earlier
 * change, then link the current file to the undo name, or leave an "added" marker when there
 * is none. Returns 1 when the file exists (and is linked), 0 when not, or -errno.
 */
static int undo_record(Store *s, const char *file) {
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        _cleanup_close_ int fd = -1;
        int r;

        r = store_undo_names(file, undo, added);
        if (r < 0)
                return r;
        r = unlink_if_present(s->dir_fd, undo);
        if (r >= 0)
                r = unlink_if_present(s->dir_fd, added);
        if (r < 0)
                return r;
        /* No AT_SYMLINK_FOLLOW: a symlink in the store is linked as itself, never followed. */
        if (linkat(s->dir_fd, file, s->dir_fd, undo, 0) == 0)
                return 1;
        if (errno != ENOENT)
                return -errno;
        fd = openat(s->dir_fd, added, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return 0;
}

/* A fresh directory stream over dir_fd (which stays open and keeps its own position). */
static int store_opendir(const Store *s, DIR **ret) {
        int fd;
        DIR *d;

        fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                (void)close(fd);
                return r;
        }
        *ret = d;
        return 0;
}

static bool file_exists_at(int dir_fd, const char *name, int *ret_error) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                *ret_error = 0;
                return true;
        }
        *ret_error = errno == ENOENT ? 0 : -errno;
        return false;
}

int store_clean(Store *s) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int removed = 0, r;

        r = store_opendir(s, &d);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                const char *name = de->d_name;
                bool stale = false;

                /* Undo records are not ours to drop: the installer exits when idle and is
                 * started again for the agent's next call, which may be a Restore. */
                if (store_name_is_temporary(name))
                        stale = true;
                else if (s->layout == STORE_LAYOUT_OPTEE &&
                         strncmp(name, STORE_OWNER_PREFIX, strlen(STORE_OWNER_PREFIX)) == 0) {
                        const char *uuid = name + strlen(STORE_OWNER_PREFIX);
                        char ta[STORE_UUID_STRING_LEN + sizeof(".ta")];
                        int e;

                        if (!store_text_is_uuid(uuid, strlen(uuid)))
                                continue;
                        (void)snprintf(ta, sizeof(ta), "%s.ta", uuid);
                        /* An owner record without its TA: a remove or an install was cut short. */
                        stale = !file_exists_at(s->dir_fd, ta, &e) && e == 0;
                }
                if (!stale)
                        continue;
                if (unlinkat(s->dir_fd, name, 0) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                removed++;
        }
        if (errno != 0)
                return -errno;
        if (removed > 0 && fsync(s->dir_fd) < 0)
                return -errno;
        return removed;
}

void store_target_done(StoreTarget *t) {
        if (!t)
                return;
        free(t->component);
        free(t->file);
        *t = (StoreTarget){};
}

int store_target(const Store *s, const char *component, StoreTarget *ret) {
        StoreTarget t = {};
        int r;

        if (s->layout == STORE_LAYOUT_OPTEE) {
                r = store_optee_uuid_from_component(component, t.uuid);
                if (r < 0)
                        return r;
                if (asprintf(&t.file, "%s.ta", t.uuid) < 0)
                        return -ENOMEM;
        } else {
                r = store_name_from_component(component, &t.file);
                if (r < 0)
                        return r;
        }
        t.component = strdup(component);
        if (!t.component) {
                store_target_done(&t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

void store_entry_done(StoreEntry *e) {
        if (!e)
                return;
        free(e->component);
        free(e->file);
        *e = (StoreEntry){};
}

void store_entries_free(StoreEntry *e, size_t n) {
        if (!e)
                return;
        for (size_t i = 0; i < n; i++)
                store_entry_done(&e[i]);
        free(e);
}

int store_tmpfile_open(int dir_fd, char ret_name[STORE_TMP_NAME_SIZE]) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        const size_t prefix = strlen(STORE_TMP_PREFIX);

        for (unsigned attempt = 0; attempt < 32; attempt++) {
                uint8_t rnd[STORE_TMP_NAME_SIZE - sizeof(STORE_TMP_PREFIX)];
                ssize_t n;
                int fd;

                n = getrandom(rnd, sizeof(rnd), 0);
                if (n < 0)
                        return -errno;
                if ((size_t)n != sizeof(rnd))
                        return -EIO;
                memcpy(ret_name, STORE_TMP_PREFIX, prefix);
                for (size_t i = 0; i < sizeof(rnd); i++)
                        ret_name[prefix + i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
                ret_name[prefix + sizeof(rnd)] = '\0';

                fd = openat(dir_fd, ret_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Wait until fd is readable; for descriptors where a read could block (pipes, sockets).
 * ppoll(), not poll(): it is the one the seccomp base already allows (sd-bus waits with it),
 * and glibc's poll() is the poll syscall on x86-64. */
static int wait_readable(int fd, unsigned timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        const struct timespec ts = {
                .tv_sec = (time_t)(timeout_ms / 1000u),
                .tv_nsec = (long)(timeout_ms % 1000u) * 1000000L,
        };
        int k;

        do
                k = ppoll(&p, 1, &ts, NULL);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if (k == 0)
                return -ETIMEDOUT;
        return 0;
}

int store_copy_hashed_max(int in_fd, int out_fd, uint64_t max, unsigned stall_timeout_ms, uint64_t *ret_size,
                          uint8_t ret_sha256[32]) {
        _cleanup_free_ uint8_t *buf = NULL;
        TeepSha256 h;
        uint64_t total = 0, flushed = 0, previous = 0, waited = 0, window = STORE_WRITEBACK_FIRST;
        struct stat st;
        bool may_block;
        int r = 0;

        if (fstat(in_fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        may_block = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);

        buf = malloc(STORE_COPY_BUFFER);
        if (!buf)
                return -ENOMEM;
        teep_sha256_init(&h);

        for (;;) {
                /* Ask for at most one byte more than is still allowed: a payload that runs
                 * over is refused after that one byte, not after a buffer (or a GiB) of it. */
                uint64_t left = max - total;
                size_t want = left < STORE_COPY_BUFFER ? (size_t)left + 1 : STORE_COPY_BUFFER;
                ssize_t n;

                if (may_block) {
                        r = wait_readable(in_fd, stall_timeout_ms);
                        if (r < 0)
                                break;
                }
                n = read(in_fd, buf, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* A non-blocking descriptor: poll before the next read. */
                                r = wait_readable(in_fd, stall_timeout_ms);
                                if (r < 0)
                                        break;
                                continue;
                        }
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                if ((uint64_t)n > left) {
                        r = -EFBIG;
                        break;
                }
                total += (uint64_t)n;
                teep_sha256_update(&h, buf, (size_t)n);
                r = loop_write(out_fd, buf, (size_t)n);
                if (r < 0)
                        break;
                if (total - flushed >= window) {
                        /* Start writing back what we have so far: the disk works while we copy
                         * and hash the rest, the final fsync() has little left to wait for, and
                         * a big payload never piles up as dirty page cache. Only a hint: the
                         * fsync() before the rename is what makes the file durable. */
                        (void)sync_file_range(out_fd, (off_t)flushed, (off_t)(total - flushed), SYNC_FILE_RANGE_WRITE);
                        /* and wait for the window two behind, started long ago (usually done):
                         * dirty pages stay under three windows whatever the payload's size */
                        if (previous > waited) {
                                (void)sync_file_range(out_fd, (off_t)waited, (off_t)(previous - waited),
                                                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                              SYNC_FILE_RANGE_WAIT_AFTER);
                                waited = previous;
                        }
                        previous = flushed;
                        flushed = total;
                        if (window < STORE_WRITEBACK_CHUNK)
                                window *= 2;
                }
        }
        if (r < 0) {
                explicit_bzero(&h, sizeof(h));
                return r;
        }
        /* and the tail: the disk writes it while the agent saves its manifest copy and journal,
         * so the commit's fsync() finds it (mostly) done; a hint, like the windows above */
        if (total > flushed)
                (void)sync_file_range(out_fd, (off_t)flushed, (off_t)(total - flushed), SYNC_FILE_RANGE_WRITE);
        teep_sha256_final(&h, ret_sha256);
        *ret_size = total;
        return 0;
}

int store_copy_hashed(int in_fd, int out_fd, uint64_t size, unsigned stall_timeout_ms,
                      uint8_t ret_sha256[32]) {
        uint8_t sha[32];
        uint64_t total;
        int r;

        r = store_copy_hashed_max(in_fd, out_fd, size, stall_timeout_ms, &total, sha);
        if (r == -EFBIG || (r >= 0 && total != size))
                return -EMSGSIZE;
        if (r < 0)
                return r;
        memcpy(ret_sha256, sha, sizeof(sha));
        return 0;
}

int store_sha256_fd(int fd, uint8_t ret[32]) {
        _cleanup_free_ uint8_t *buf = NULL;
        TeepSha256 h;
        off_t off = 0;

        buf = malloc(STORE_COPY_BUFFER);
        if (!buf)
                return -ENOMEM;
        teep_sha256_init(&h);
        for (;;) {
                ssize_t n = pread(fd, buf, STORE_COPY_BUFFER, off);
                if (n < 0) {
                        int r;
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        explicit_bzero(&h, sizeof(h));
                        return r;
                }
                if (n == 0)
                        break;
                teep_sha256_update(&h, buf, (size_t)n);
                off += n;
        }
        teep_sha256_final(&h, ret);
        return 0;
}

int store_write_file_atomic(int dir_fd, const char *name, const void *data, size_t n, unsigned mode) {
        _cleanup_close_ int fd = -1;
        char tmp[STORE_TMP_NAME_SIZE];
        int r;

        fd = store_tmpfile_open(dir_fd, tmp);
        if (fd < 0)
                return fd;
        r = loop_write(fd, data, n);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dir_fd, tmp, 0);
                return r;
        }
        if (fsync(dir_fd) < 0)
                return -errno;
        return 0;
}

/* Read an optee owner record: the component that installed <uuid>.ta. -ENOENT when absent. */
static int owner_read(const Store *s, const char *uuid, char **ret) {
        char name[OWNER_NAME_SIZE], *text;
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;

        owner_name(uuid, name);
        fd = openat(s->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > OWNER_RECORD_MAX)
                return -EBADMSG;
        text = malloc((size_t)st.st_size + 1);
        if (!text)
                return -ENOMEM;
        n = pread(fd, text, (size_t)st.st_size, 0);
        if (n != st.st_size || text[n - 1] != '\n') {
                free(text);
                return n < 0 ? -errno : -EBADMSG;
        }
        text[n - 1] = '\0';
        if (memchr(text, '\0', (size_t)n - 1)) {
                free(text);
                return -EBADMSG;
        }
        *ret = text;
        return 0;
}

/*
 * optee layout: may t's component write t's TA file? Sets *ret_recorded when an owner record for
 * this very component is already in place. -EEXIST when the file belongs to someone else.
 */
static int owner_check(const Store *s, const StoreTarget *t, bool *ret_recorded) {
        _cleanup_free_ char *owner = NULL;
        bool exists;
        int r, e;

        exists = file_exists_at(s->dir_fd, t->file, &e);
        if (e < 0)
                return e;
        r = owner_read(s, t->uuid, &owner);
        if (r == -ENOENT || r == -EBADMSG) {
                /* No (readable) record: a TA file without one was put there by someone else
                 * (a package); we do not overwrite what we did not install. */
                *ret_recorded = false;
                return exists ? -EEXIST : 0;
        }
        if (r < 0)
                return r;
        if (strcmp(owner, t->component) == 0) {
                *ret_recorded = true;
                return 0;
        }
        /* Another component's record; stale when its TA is gone (store_clean() would drop it). */
        *ret_recorded = false;
        return exists ? -EEXIST : 0;
}

static void entry_from_stat(StoreEntry *e, const struct stat *st) {
        e->size = (uint64_t)st->st_size;
        e->mtime_usec = (uint64_t)st->st_mtim.tv_sec * UINT64_C(1000000) + (uint64_t)st->st_mtim.tv_nsec / 1000u;
}

/*
 * The end every install shares, copied or staged: tmp (open as tmp_fd; complete, its size and
 * SHA-256 checked) becomes t's file. recorded: the optee owner record of t's component is in
 * place already (owner_check()). On failure the temporary is unlinked.
 */
/* What a TC file is before its rename into place: readable by the TEE loader, written by us
 * only (the unit's UMask= may differ), and on disk. */
static int make_installable(int fd) {
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

static int install_commit(Store *s, const StoreTarget *t, bool recorded, int tmp_fd, const char *tmp, bool synced,
                          const uint8_t sha256[32], StoreEntry *ret_entry) {
        struct stat st;
        int r = 0;

        /* done already when store_staged_sync() synced a staged file: nothing has written to it
         * since (only this process holds it writable) */
        if (!synced)
                r = make_installable(tmp_fd);
        if (r >= 0 && s->layout == STORE_LAYOUT_OPTEE && !recorded) {
                /* The record goes first: a kill between the two renames leaves a record
                 * without a TA, which store_clean() drops; never a TA without a record. */
                _cleanup_free_ char *text = NULL;
                char name[OWNER_NAME_SIZE];
                int len = asprintf(&text, "%s\n", t->component);

                owner_name(t->uuid, name);
                r = len < 0 ? -ENOMEM : store_write_file_atomic(s->dir_fd, name, text, (size_t)len, 0644);
        }
        /* The undo record: a link to the old file made before the rename over it, so the name
         * points to the old file or the new one at every instant (never to nothing). */
        if (r >= 0)
                r = undo_record(s, t->file);
        if (r >= 0 && renameat(s->dir_fd, tmp, s->dir_fd, t->file) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(s->dir_fd, tmp, 0);
                return r;
        }
        if (fsync(s->dir_fd) < 0)
                return -errno;

        if (ret_entry) {
                StoreEntry e = {};

                if (fstat(tmp_fd, &st) < 0)
                        return -errno;
                entry_from_stat(&e, &st);
                memcpy(e.sha256, sha256, sizeof(e.sha256));
                e.component = strdup(t->component);
                e.file = strdup(t->file);
                if (!e.component || !e.file) {
                        store_entry_done(&e);
                        return -ENOMEM;
                }
                *ret_entry = e;
        }
        return 0;
}

int store_install(Store *s, const StoreTarget *t, int fd, uint64_t size, const uint8_t sha256[32],
                  StoreEntry *ret_entry) {
        _cleanup_close_ int tmp_fd = -1;
        char tmp[STORE_TMP_NAME_SIZE];
        bool recorded = false;
        uint8_t got[32];
        struct stat st;
        int r;

        if (!t || !t->file || !sha256 || fd < 0)
                return -EINVAL;

        if (s->layout == STORE_LAYOUT_OPTEE) {
                r = owner_check(s, t, &recorded);
                if (r < 0)
                        return r;
        }

        /* A regular file says how much is left before we read any of it. */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                off_t pos = lseek(fd, 0, SEEK_CUR);
                if (pos >= 0 && (uint64_t)(st.st_size > pos ? st.st_size - pos : 0) != size)
                        return -EMSGSIZE;
        }

        tmp_fd = store_tmpfile_open(s->dir_fd, tmp);
        if (tmp_fd < 0)
                return tmp_fd;

        r = store_copy_hashed(fd, tmp_fd, size, s->stall_timeout_ms, got);
        if (r >= 0 && memcmp(got, sha256, sizeof(got)) != 0)
                r = -EKEYREJECTED;
        if (r < 0) {
                (void)unlinkat(s->dir_fd, tmp, 0);
                return r;
        }
        return install_commit(s, t, recorded, tmp_fd, tmp, false, got, ret_entry);
}

int store_stage(Store *s, int fd, uint64_t max, StoreStaged *ret) {
        _cleanup_close_ int tmp_fd = -1;
        StoreStaged staged = {};
        struct stat st;
        int r;

        if (fd < 0 || max == 0 || !ret)
                return -EINVAL;
        tmp_fd = store_tmpfile_open(s->dir_fd, staged.name);
        if (tmp_fd < 0)
                return tmp_fd;
        /* No fsync here: the file is durable only if and when it is installed (install_commit()
         * fsyncs it before the rename); until then a crash may lose it, and store_clean()
         * removes what is left of it. */
        r = store_copy_hashed_max(fd, tmp_fd, max, s->stall_timeout_ms, &staged.size, staged.sha256);
        if (r >= 0 && fstat(tmp_fd, &st) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(s->dir_fd, staged.name, 0);
                return r;
        }
        staged.dev = st.st_dev;
        staged.ino = st.st_ino;
        *ret = staged;
        return 0;
}

int store_staged_open(Store *s, const StoreStaged *staged) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!staged || !store_name_is_temporary(staged->name))
                return -EINVAL;
        fd = openat(s->dir_fd, staged->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP ? -ESTALE : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_dev != staged->dev || st.st_ino != staged->ino ||
            (uint64_t)st.st_size != staged->size)
                return -ESTALE;
        return TAKE_FD(fd);
}

int store_staged_sync(Store *s, StoreStaged *staged) {
        _cleanup_close_ int fd = store_staged_open(s, staged);
        int r;

        if (fd < 0)
                return fd;
        r = make_installable(fd);
        if (r < 0)
                return r;
        staged->synced = true;
        return 0;
}

int store_unstage(Store *s, const StoreStaged *staged) {
        struct stat st;

        if (!staged || !store_name_is_temporary(staged->name))
                return -EINVAL;
        if (fstatat(s->dir_fd, staged->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (st.st_dev != staged->dev || st.st_ino != staged->ino)
                return 0;
        return unlink_if_present(s->dir_fd, staged->name);
}

int store_install_staged(Store *s, const StoreTarget *t, const StoreStaged *staged, uint64_t size,
                         const uint8_t sha256[32], StoreEntry *ret_entry) {
        _cleanup_close_ int fd = -1;
        bool recorded = false;
        int r = 0;

        if (!t || !t->file || !staged || !sha256 || !store_name_is_temporary(staged->name))
                return -EINVAL;

        /* Our own descriptor of the file, checked to be the inode staged: the caller's fd only
         * said which staged file is meant. */
        fd = store_staged_open(s, staged);
        if (fd < 0)
                r = fd;
        /* The announced values against those computed while the bytes were written: the
         * defence-in-depth re-check of a copied install, without reading the file again. */
        else if (staged->size != size)
                r = -EMSGSIZE;
        else if (memcmp(staged->sha256, sha256, sizeof(staged->sha256)) != 0)
                r = -EKEYREJECTED;
        else if (s->layout == STORE_LAYOUT_OPTEE)
                r = owner_check(s, t, &recorded);
        if (r < 0) {
                (void)store_unstage(s, staged);
                return r;
        }
        return install_commit(s, t, recorded, fd, staged->name, staged->synced, staged->sha256, ret_entry);
}

int store_remove(Store *s, const StoreTarget *t) {
        char name[OWNER_NAME_SIZE];
        _cleanup_free_ char *owner = NULL;
        int r;

        if (!t || !t->file)
                return -EINVAL;

        if (s->layout == STORE_LAYOUT_DEFAULT) {
                int e;

                /* not installed: refused before anything changes, the undo record included */
                if (!file_exists_at(s->dir_fd, t->file, &e))
                        return e < 0 ? e : -ENOENT;
                r = undo_record(s, t->file);
                if (r < 0)
                        return r;
                if (unlinkat(s->dir_fd, t->file, 0) < 0)
                        return -errno;
                if (fsync(s->dir_fd) < 0)
                        return -errno;
                return 0;
        }

        /* optee: only what this component installed; the TA first, then its record. */
        r = owner_read(s, t->uuid, &owner);
        if (r == -EBADMSG)
                return -ENOENT;
        if (r < 0)
                return r;
        if (strcmp(owner, t->component) != 0)
                return -ENOENT;
        owner_name(t->uuid, name);
        {
                int e;

                /* the undo record only when there is a TA to take away */
                if (file_exists_at(s->dir_fd, t->file, &e)) {
                        r = undo_record(s, t->file);
                        if (r < 0)
                                return r;
                        r = 0;
                } else if (e < 0)
                        return e;
        }
        if (unlinkat(s->dir_fd, t->file, 0) < 0) {
                r = -errno;
                if (r != -ENOENT)
                        return r;
                /* A record without its TA: drop it, and report what the caller asked about. */
        }
        if (fsync(s->dir_fd) < 0)
                return -errno;
        if (unlinkat(s->dir_fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        if (fsync(s->dir_fd) < 0)
                return -errno;
        return r;
}

int store_restore(Store *s, const StoreTarget *t) {
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        bool has_undo, has_added;
        int r, e1, e2;

        if (!t || !t->file)
                return -EINVAL;
        r = store_undo_names(t->file, undo, added);
        if (r < 0)
                return r;
        has_undo = file_exists_at(s->dir_fd, undo, &e1);
        has_added = file_exists_at(s->dir_fd, added, &e2);
        if (e1 < 0 || e2 < 0)
                return e1 < 0 ? e1 : e2;

        if (has_undo) {
                if (s->layout == STORE_LAYOUT_OPTEE) {
                        /* The TA comes back with its owner record: written first, as at an
                         * install (a Remove took it away; a record left over is ours anyway). */
                        _cleanup_free_ char *owner = NULL;

                        r = owner_read(s, t->uuid, &owner);
                        if (r < 0 || strcmp(owner, t->component) != 0) {
                                _cleanup_free_ char *text = NULL;
                                char name[OWNER_NAME_SIZE];
                                int len = asprintf(&text, "%s\n", t->component);

                                owner_name(t->uuid, name);
                                r = len < 0 ? -ENOMEM : store_write_file_atomic(s->dir_fd, name, text, (size_t)len, 0644);
                                if (r < 0)
                                        return r;
                        }
                }
                if (renameat(s->dir_fd, undo, s->dir_fd, t->file) < 0)
                        return -errno;
                /* rename() of two links to one file does nothing: an install cut short between
                 * its link and its rename leaves exactly that; the name holds the old file. */
                r = unlink_if_present(s->dir_fd, undo);
                if (r >= 0)
                        r = unlink_if_present(s->dir_fd, added);
                if (r < 0)
                        return r;
                if (fsync(s->dir_fd) < 0)
                        return -errno;
                return 1;
        }
        if (!has_added)
                return 0;

        if (s->layout == STORE_LAYOUT_OPTEE) {
                _cleanup_free_ char *owner = NULL;

                /* Only what this component installed goes: the TA, then its record. */
                r = owner_read(s, t->uuid, &owner);
                if (r >= 0 && strcmp(owner, t->component) == 0) {
                        char name[OWNER_NAME_SIZE];

                        r = unlink_if_present(s->dir_fd, t->file);
                        if (r >= 0 && fsync(s->dir_fd) < 0)
                                r = -errno;
                        owner_name(t->uuid, name);
                        if (r >= 0)
                                r = unlink_if_present(s->dir_fd, name);
                } else
                        r = r == -ENOENT || r == -EBADMSG || r >= 0 ? 0 : r;
        } else
                r = unlink_if_present(s->dir_fd, t->file);
        if (r < 0)
                return r;
        r = unlink_if_present(s->dir_fd, added);
        if (r < 0)
                return r;
        if (fsync(s->dir_fd) < 0)
                return -errno;
        return 2;
}

/* No fsync in here: an undo record that a crash brings back is garbage nobody asks for; the agent
 * decides by digest after a crash, Discards every record at its start, and the next change of
 * the same file replaces the record first. */
int store_discard(Store *s, const StoreTarget *t) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int removed = 0, r;

        if (t) {
                char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];

                if (!t->file)
                        return -EINVAL;
                r = store_undo_names(t->file, undo, added);
                if (r < 0)
                        return r;
                r = unlink_if_present(s->dir_fd, undo);
                if (r < 0)
                        return r;
                removed += r;
                r = unlink_if_present(s->dir_fd, added);
                if (r < 0)
                        return r;
                return removed + r;
        }

        r = store_opendir(s, &d);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (!store_name_is_undo(de->d_name))
                        continue;
                r = unlink_if_present(s->dir_fd, de->d_name);
                if (r < 0)
                        return r;
                removed += r;
        }
        if (errno != 0)
                return -errno;
        return removed;
}

/* Entries list skips rather than fails on: symlinks, sockets, races with a remove, foreign files. */
static bool open_error_skippable(int e) {
        return e == ELOOP || e == ENXIO || e == ENOENT || e == EACCES || e == EPERM;
}

/* Fill e from the regular file name in the store: its digest from the cache when its stat still
 * matches (the file is not opened then), else read and hashed; either way offered to the next
 * cache. 0, or -ENOENT when it is not a regular file we can read (skipped by store_list), or
 * another -errno. */
static int entry_load(Store *s, const char *name, const Digests *cached, Digests *next, const struct timespec *now,
                      StoreEntry *e) {
        _cleanup_close_ int fd = -1;
        const uint8_t *sha;
        struct stat st;
        int r;

        if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return open_error_skippable(errno) ? -ENOENT : -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        sha = digests_lookup(cached, name, &st);
        if (sha)
                memcpy(e->sha256, sha, sizeof(e->sha256));
        else {
                fd = openat(s->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return open_error_skippable(errno) ? -ENOENT : -errno;
                /* the stat of what we read (it could have been replaced since the fstatat) */
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return -ENOENT;
                r = store_sha256_fd(fd, e->sha256);
                if (r < 0)
                        return r;
                s->n_hashed++;
        }
        r = digests_add(next, name, &st, e->sha256, now, s->digests_min_age_ns);
        if (r < 0)
                return r;
        entry_from_stat(e, &st);
        e->file = strdup(name);
        if (!e->file)
                return -ENOMEM;
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const StoreEntry *)a)->file, ((const StoreEntry *)b)->file);
}

int store_list(Store *s, StoreEntry **ret, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(digests_done) Digests cached = {}, next = { .sorted = true };
        StoreEntry *entries = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        struct timespec now;
        int r;

        r = store_opendir(s, &d);
        if (r < 0)
                return r;
        r = digests_load(s->dir_fd, &cached);
        if (r < 0)
                return r;
        if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *component = NULL;
                char ta[STORE_UUID_STRING_LEN + sizeof(".ta")];
                const char *file;
                StoreEntry e = {};

                if (s->layout == STORE_LAYOUT_OPTEE) {
                        const char *uuid = de->d_name + strlen(STORE_OWNER_PREFIX);
                        char check[STORE_UUID_STRING_LEN + 1];

                        if (strncmp(de->d_name, STORE_OWNER_PREFIX, strlen(STORE_OWNER_PREFIX)) != 0 ||
                            !store_text_is_uuid(uuid, strlen(uuid)))
                                continue;
                        r = owner_read(s, uuid, &component);
                        if (r == -ENOENT || r == -EBADMSG)
                                continue;
                        if (r < 0)
                                goto fail;
                        /* A record must name a component whose UUID is the one it is filed under. */
                        if (store_optee_uuid_from_component(component, check) < 0 || strcmp(check, uuid) != 0)
                                continue;
                        (void)snprintf(ta, sizeof(ta), "%s.ta", uuid);
                        file = ta;
                } else {
                        r = store_component_from_name(de->d_name, &component);
                        if (r == -EINVAL)
                                continue; /* dot-files, stray names: not a TC */
                        if (r < 0)
                                goto fail;
                        file = de->d_name;
                }

                r = entry_load(s, file, &cached, &next, &now, &e);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        goto fail;
                e.component = TAKE_PTR(component);

                if (n >= STORE_LIST_MAX) {
                        store_entry_done(&e);
                        r = -E2BIG;
                        goto fail;
                }
                if (GREEDY_GROW(entries, allocated, n + 1, 16) < 0) {
                        store_entry_done(&e);
                        r = -ENOMEM;
                        goto fail;
                }
                entries[n++] = e;
        }
        if (errno != 0) {
                r = -errno;
                goto fail;
        }
        if (n > 0)
                qsort(entries, n, sizeof(*entries), entry_compare);
        /* the next List's cache: what this one found, when it differs from what it read (a
         * cache that cannot be written only costs the next List its hashing) */
        digests_sort(&next);
        if (!digests_equal(&cached, &next))
                (void)digests_save(s->dir_fd, &next);
        *ret = entries;
        *ret_n = n;
        return 0;

fail:
        store_entries_free(entries, n);
        return r;
}
