/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* digests.c: see digests.h */
#include "digests.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "names.h"
#include "store.h"

#define DIGESTS_HEADER "teep-digests 1\n"

int64_t digests_ns(const struct timespec *ts) {
        return (int64_t)ts->tv_sec * INT64_C(1000000000) + (int64_t)ts->tv_nsec;
}

/* What a cache line can carry: a TC file name (store names never hold spaces or controls). */
static bool name_is_storable(const char *name, size_t n) {
        if (n == 0 || n > STORE_FILE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f || name[i] == '/')
                        return false;
        return true;
}

/* A decimal field ending at a space: digits only (a '-' first when is_signed), no overflow. */
static bool parse_field(const char **p, const char *end, bool is_signed, uint64_t *ret_u, int64_t *ret_s) {
        const char *q = *p;
        bool negative = false;
        uint64_t v = 0;

        if (is_signed && q < end && *q == '-') {
                negative = true;
                q++;
        }
        if (q >= end || *q < '0' || *q > '9')
                return false;
        for (; q < end && *q >= '0' && *q <= '9'; q++) {
                if (v > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*q - '0');
        }
        if (q >= end || *q != ' ')
                return false;
        if (is_signed) {
                if (v > (uint64_t)INT64_MAX)
                        return false;
                *ret_s = negative ? -(int64_t)v : (int64_t)v;
        } else
                *ret_u = v;
        *p = q + 1;
        return true;
}

/* "HEX64 INO SIZE MTIME_NS CTIME_NS NAME" without its newline; false when it does not parse. */
static bool parse_line(const char *line, size_t len, DigestEntry *e) {
        const char *p = line, *end = line + len;

        if (len < 64 + 1)
                return false;
        for (size_t i = 0; i < 32; i++) {
                int hi = unhexchar(p[2 * i]), lo = unhexchar(p[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                e->sha256[i] = (uint8_t)(hi << 4 | lo);
        }
        p += 64;
        if (*p++ != ' ')
                return false;
        if (!parse_field(&p, end, false, &e->ino, NULL) || !parse_field(&p, end, false, &e->size, NULL) ||
            !parse_field(&p, end, true, NULL, &e->mtime_ns) || !parse_field(&p, end, true, NULL, &e->ctime_ns))
                return false;
        if (!name_is_storable(p, (size_t)(end - p)))
                return false;
        e->name = strndup(p, (size_t)(end - p));
        return e->name != NULL;
}

static int digests_push(Digests *d, DigestEntry *e) {
        if (GREEDY_GROW(d->e, d->allocated, d->n + 1, 16) < 0)
                return -ENOMEM;
        d->e[d->n++] = *e;
        d->sorted = false;
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const DigestEntry *)a)->name, ((const DigestEntry *)b)->name);
}

void digests_sort(Digests *d) {
        if (d->n > 1)
                qsort(d->e, d->n, sizeof(*d->e), entry_compare);
        d->sorted = true;
}

int digests_load(int dir_fd, Digests *d) {
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t len = 0;

        *d = (Digests){ .sorted = true };
        fd = openat(dir_fd, STORE_DIGEST_CACHE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        if (read_full_fd(fd, DIGESTS_FILE_MAX, &data, &len) < 0)
                return 0;
        if (len < strlen(DIGESTS_HEADER) || memcmp(data, DIGESTS_HEADER, strlen(DIGESTS_HEADER)) != 0)
                return 0;
        for (const char *p = (const char *)data + strlen(DIGESTS_HEADER), *end = (const char *)data + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                DigestEntry e = {};

                if (!nl)
                        break; /* a torn last line */
                /* a line that does not parse is skipped; past STORE_LIST_MAX lines, the rest too */
                if (parse_line(p, (size_t)(nl - p), &e)) {
                        if (d->n >= STORE_LIST_MAX)
                                free(e.name);
                        else if (digests_push(d, &e) < 0) {
                                free(e.name);
                                digests_done(d);
                                return -ENOMEM;
                        }
                }
                p = nl + 1;
        }
        digests_sort(d);
        return (int)d->n;
}

const uint8_t *digests_lookup(const Digests *d, const char *name, const struct stat *st) {
        const DigestEntry key = { .name = (char *)name }, *e;

        if (!d->sorted || d->n == 0)
                return NULL;
        e = bsearch(&key, d->e, d->n, sizeof(*d->e), entry_compare);
        if (!e || e->ino != (uint64_t)st->st_ino || e->size != (uint64_t)st->st_size ||
            e->mtime_ns != digests_ns(&st->st_mtim) || e->ctime_ns != digests_ns(&st->st_ctim))
                return NULL;
        return e->sha256;
}

int digests_add(Digests *d, const char *name, const struct stat *st, const uint8_t sha256[32],
                const struct timespec *now, uint64_t min_age_ns) {
        int64_t ctime_ns = digests_ns(&st->st_ctim), now_ns = digests_ns(now);
        DigestEntry e;

        /* a ctime in the future (the clock went back) is as young as can be */
        if (!name_is_storable(name, strlen(name)) || ctime_ns > now_ns || (uint64_t)(now_ns - ctime_ns) < min_age_ns)
                return 0;
        e = (DigestEntry){
                .name = strdup(name),
                .ino = (uint64_t)st->st_ino,
                .size = (uint64_t)st->st_size,
                .mtime_ns = digests_ns(&st->st_mtim),
                .ctime_ns = ctime_ns,
        };
        if (!e.name)
                return -ENOMEM;
        memcpy(e.sha256, sha256, sizeof(e.sha256));
        if (digests_push(d, &e) < 0) {
                free(e.name);
                return -ENOMEM;
        }
        return 1;
}

int digests_save(int dir_fd, const Digests *d) {
        char tmp[STORE_TMP_NAME_SIZE];
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int fd, r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs(DIGESTS_HEADER, f);
        for (size_t i = 0; i < d->n; i++) {
                char hex[65];
                fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s\n", hexstr(d->e[i].sha256, 32, hex),
                        d->e[i].ino, d->e[i].size, d->e[i].mtime_ns, d->e[i].ctime_ns, d->e[i].name);
        }
        if (fclose(f) != 0)
                return -ENOMEM;

        fd = store_tmpfile_open(dir_fd, tmp);
        if (fd < 0)
                return fd;
        r = loop_write(fd, text, size);
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        /* no fsync: a cache lost to a crash costs one List that hashes everything */
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, STORE_DIGEST_CACHE) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dir_fd, tmp, 0);
        return r;
}

bool digests_equal(const Digests *a, const Digests *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                const DigestEntry *x = &a->e[i], *y = &b->e[i];
                if (strcmp(x->name, y->name) != 0 || x->ino != y->ino || x->size != y->size ||
                    x->mtime_ns != y->mtime_ns || x->ctime_ns != y->ctime_ns ||
                    memcmp(x->sha256, y->sha256, sizeof(x->sha256)) != 0)
                        return false;
        }
        return true;
}

void digests_done(Digests *d) {
        for (size_t i = 0; i < d->n; i++)
                free(d->e[i].name);
        free(d->e);
        *d = (Digests){ .sorted = true };
}
