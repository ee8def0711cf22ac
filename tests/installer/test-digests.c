/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-digests.c: store_list()'s digest cache (installer/digests.c) on a real directory */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digests.h"
#include "fileio.h"
#include "store-test.h"
#include "store.h"

static char dir[] = "/tmp/teep-digests-test-XXXXXX";

static void setup(void) {
        store_test_mkdtemp(dir, "/tmp/teep-digests-test-XXXXXX");
}

static void teardown(void) {
        store_test_rmtree(dir);
}

TestSuite(digests, .init = setup, .fini = teardown);

static char *path_of(const char *name) {
        static char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return path;
}

/* A TC file written as the installer leaves one (component "tc-N", file "tc-N"): n bytes
 * varied by salt. Returns its SHA-256 in ret. */
static void put_tc(const char *name, size_t n, unsigned salt, uint8_t ret[32]) {
        uint8_t *p = malloc(n);
        int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

        cr_assert_not_null(p);
        cr_assert_geq(fd, 0);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 17u + salt * 101u);
        cr_assert_eq(write(fd, p, n), (ssize_t)n);
        close(fd);
        cr_assert_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, ret), 0);
        free(p);
}

static Store *open_store(uint64_t min_age_ns) {
        Store *s = NULL;
        cr_assert_eq(store_open(dir, STORE_LAYOUT_DEFAULT, &s), 0);
        cr_assert_eq(store_lock(s, 0), 0);
        s->digests_min_age_ns = min_age_ns;
        return s;
}

/* List, and check that name is listed with digest want (and that the cache is never listed). */
static void list_expect(Store *s, const char *name, const uint8_t want[32]) {
        StoreEntry *e = NULL;
        size_t n = 0;
        bool found = false;

        cr_assert_eq(store_list(s, &e, &n), 0);
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_neq(e[i].file, STORE_DIGEST_CACHE);
                if (strcmp(e[i].file, name) == 0) {
                        found = true;
                        cr_assert_arr_eq(e[i].sha256, want, 32, "%s listed with a wrong digest", name);
                }
        }
        cr_assert(found, "%s not listed", name);
        store_entries_free(e, n);
}

/* Long enough for the coarse clock that stamps ctime to move on (a jiffy at most). */
static void tick(void) {
        const struct timespec t = { .tv_nsec = 30 * 1000 * 1000 };
        nanosleep(&t, NULL);
}

/* The cache line that would be trusted for name as it is now, with the digest claimed. */
static void cache_line(const char *name, const uint8_t claimed[32], char *out, size_t size) {
        struct stat st;
        char hex[65];

        cr_assert_eq(stat(path_of(name), &st), 0);
        snprintf(out, size, "%s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s", hexstr(claimed, 32, hex),
                 (uint64_t)st.st_ino, (uint64_t)st.st_size, digests_ns(&st.st_mtim), digests_ns(&st.st_ctim), name);
}

static void write_cache(const char *text, size_t len) {
        int fd = open(path_of(STORE_DIGEST_CACHE), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(loop_write(fd, text, len), 0);
        close(fd);
}

Test(digests, a_second_list_reads_no_file) {
        Store *s = open_store(0);
        uint8_t a[32], b[32], c[32];
        struct stat st;

        put_tc("tc-a", 5000, 1, a);
        put_tc("tc-b", 70000, 2, b);
        put_tc("tc-c", 1, 3, c);
        list_expect(s, "tc-a", a);
        cr_assert_eq(s->n_hashed, 3);
        cr_assert_eq(lstat(path_of(STORE_DIGEST_CACHE), &st), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(store_test_count_temporaries(dir), 0, "the cache's temporary was left behind");

        list_expect(s, "tc-b", b);
        list_expect(s, "tc-c", c);
        cr_assert_eq(s->n_hashed, 3, "a List hashed a file the cache knew");
        store_free(s);

        /* a new installer (it exits when idle) reads the same cache */
        s = open_store(0);
        list_expect(s, "tc-a", a);
        cr_assert_eq(s->n_hashed, 0);
        store_free(s);
}

Test(digests, a_changed_file_is_hashed_again) {
        Store *s = open_store(0);
        uint8_t a[32], b[32], c[32], a2[32], c2[32];
        struct stat before, after;
        struct timespec times[2];
        int fd;

        put_tc("tc-a", 4096, 1, a);
        put_tc("tc-b", 4096, 2, b);
        put_tc("tc-c", 4096, 3, c);
        list_expect(s, "tc-a", a);
        cr_assert_eq(s->n_hashed, 3);
        tick();

        /* tc-a: other bytes of the same size, and its mtime put back as it was: only the
         * ctime (which no one can set) tells */
        cr_assert_eq(stat(path_of("tc-a"), &before), 0);
        put_tc("tc-x", 4096, 9, a2);
        fd = open(path_of("tc-a"), O_WRONLY);
        cr_assert_geq(fd, 0);
        {
                uint8_t buf[4096];
                int x = open(path_of("tc-x"), O_RDONLY);
                cr_assert_eq(read(x, buf, sizeof(buf)), (ssize_t)sizeof(buf));
                close(x);
                cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
        }
        times[0] = before.st_atim;
        times[1] = before.st_mtim;
        cr_assert_eq(futimens(fd, times), 0);
        close(fd);
        cr_assert_eq(unlink(path_of("tc-x")), 0);
        cr_assert_eq(stat(path_of("tc-a"), &after), 0);
        cr_assert_eq(after.st_ino, before.st_ino);
        cr_assert_eq(after.st_size, before.st_size);
        cr_assert_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
        cr_assert_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);

        /* tc-c: replaced by a rename (a new inode) */
        put_tc(".new", 4096, 7, c2);
        {
                char from[600];
                snprintf(from, sizeof(from), "%s", path_of(".new")); /* path_of() has one buffer */
                cr_assert_eq(rename(from, path_of("tc-c")), 0);
        }

        list_expect(s, "tc-a", a2);
        list_expect(s, "tc-c", c2);
        list_expect(s, "tc-b", b);
        cr_assert_eq(s->n_hashed, 3 + 2, "tc-b was hashed again, or a changed file was not");

        /* a chmod alone changes the ctime: hashed again, same digest */
        tick();
        cr_assert_eq(chmod(path_of("tc-b"), 0600), 0);
        list_expect(s, "tc-b", b);
        cr_assert_eq(s->n_hashed, 5 + 1);
        store_free(s);
}

Test(digests, a_matching_line_is_trusted_and_a_touch_undoes_it) {
        Store *s = open_store(0);
        uint8_t a[32], forged[32];
        struct stat st;
        struct timespec times[2];
        char text[1024], line[700];

        put_tc("tc-a", 3000, 1, a);
        memset(forged, 0x5a, sizeof(forged));
        cache_line("tc-a", forged, line, sizeof(line));
        snprintf(text, sizeof(text), "teep-digests 1\n%s\n", line);
        write_cache(text, strlen(text));

        /* whoever writes the store directory is trusted (it could replace the TC itself) */
        list_expect(s, "tc-a", forged);
        cr_assert_eq(s->n_hashed, 0);

        /* setting the times back to what they were still moves the ctime */
        tick();
        cr_assert_eq(stat(path_of("tc-a"), &st), 0);
        times[0] = st.st_atim;
        times[1] = st.st_mtim;
        cr_assert_eq(utimensat(AT_FDCWD, path_of("tc-a"), times, 0), 0);
        list_expect(s, "tc-a", a);
        cr_assert_eq(s->n_hashed, 1);
        store_free(s);
}

Test(digests, young_files_are_not_recorded) {
        Store *s = open_store(DIGESTS_MIN_AGE_NS);
        uint8_t a[32];
        Digests d;

        put_tc("tc-a", 2000, 1, a);
        list_expect(s, "tc-a", a);
        list_expect(s, "tc-a", a);
        cr_assert_eq(s->n_hashed, 2, "a file changed within the last %llu ns was taken from the cache",
                     (unsigned long long)DIGESTS_MIN_AGE_NS);
        cr_assert_eq(digests_load(s->dir_fd, &d), 0);
        digests_done(&d);
        store_free(s);
}

/*
 * Each variant of a line that, read loosely, would be trusted for tc-a with a wrong digest:
 * every one must be refused, so that List reads the file and reports its true digest.
 */
Test(digests, hostile_cache_lines_are_refused) {
        uint8_t a[32], forged[32];
        char good[700], text[4096];
        struct stat st;
        char hex[65];
        int64_t mt, ct;
        char *variants[16];
        size_t nv = 0;

        put_tc("tc-a", 3000, 1, a);
        memset(forged, 0xa5, sizeof(forged));
        cache_line("tc-a", forged, good, sizeof(good));
        cr_assert_eq(stat(path_of("tc-a"), &st), 0);
        mt = digests_ns(&st.st_mtim);
        ct = digests_ns(&st.st_ctim);
        hexstr(forged, 32, hex);

#define VARIANT(...) cr_assert_geq(asprintf(&variants[nv++], __VA_ARGS__), 0)
        VARIANT("teep-digests 2\n%s\n", good);                              /* another format */
        VARIANT("teep-digests 1\n%s", good);                                /* torn: no newline */
        VARIANT("teep-digests 1\n%s \n", good);                             /* trailing space */
        VARIANT("teep-digests 1\n%s\x01\n", good);                          /* a control character */
        VARIANT("teep-digests 1\n%.63s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " tc-a\n", hex,
                (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);          /* a short digest */
        VARIANT("teep-digests 1\n%.62sxz %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " tc-a\n", hex,
                (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);          /* not hex */
        VARIANT("teep-digests 1\n%s +%" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " tc-a\n", hex,
                (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);          /* a sign */
        VARIANT("teep-digests 1\n%s %" PRIu64 "  %" PRIu64 " %" PRId64 " %" PRId64 " tc-a\n", hex,
                (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);          /* two spaces */
        VARIANT("teep-digests 1\n%s 18446744073709551616%" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " tc-a\n",
                hex, (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);     /* an overflowing inode */
        VARIANT("teep-digests 1\n%s %" PRIu64 " %" PRIu64 " %" PRId64 " tc-a\n", hex, (uint64_t)st.st_ino,
                (uint64_t)st.st_size, mt);                                   /* a field missing */
        VARIANT("teep-digests 1\n%s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " ./tc-a\n", hex,
                (uint64_t)st.st_ino, (uint64_t)st.st_size, mt, ct);          /* a path, not a name */
#undef VARIANT

        for (size_t i = 0; i < nv; i++) {
                Store *s = open_store(0);

                write_cache(variants[i], strlen(variants[i])); /* over what the last List wrote */
                list_expect(s, "tc-a", a);
                cr_assert_eq(s->n_hashed, 1, "variant %zu was trusted: %s", i, variants[i]);
                store_free(s);
                free(variants[i]);
        }

        /* the well-formed line itself is trusted (so the variants were refused for their flaw) */
        snprintf(text, sizeof(text), "teep-digests 1\n%s\n", good);
        write_cache(text, strlen(text));
        {
                Store *s = open_store(0);
                list_expect(s, "tc-a", forged);
                store_free(s);
        }
}

Test(digests, a_cache_that_is_not_a_file_or_too_big_is_ignored) {
        uint8_t a[32];
        char target[600];

        put_tc("tc-a", 3000, 1, a);
        for (int kind = 0; kind < 4; kind++) {
                Store *s = open_store(0);

                (void)unlink(path_of(STORE_DIGEST_CACHE));
                (void)rmdir(path_of(STORE_DIGEST_CACHE));
                if (kind == 0) {
                        snprintf(target, sizeof(target), "%s", path_of("tc-a"));
                        cr_assert_eq(symlink(target, path_of(STORE_DIGEST_CACHE)), 0);
                } else if (kind == 1)
                        cr_assert_eq(mkfifo(path_of(STORE_DIGEST_CACHE), 0600), 0); /* would block a read */
                else if (kind == 2)
                        cr_assert_eq(mkdir(path_of(STORE_DIGEST_CACHE), 0700), 0);
                else {
                        /* over DIGESTS_FILE_MAX: the good line first, then padding */
                        uint8_t forged[32];
                        char line[700];
                        int fd = open(path_of(STORE_DIGEST_CACHE), O_WRONLY | O_CREAT | O_TRUNC, 0600);

                        memset(forged, 0x11, sizeof(forged));
                        cache_line("tc-a", forged, line, sizeof(line));
                        cr_assert_geq(fd, 0);
                        cr_assert_gt(dprintf(fd, "teep-digests 1\n%s\n", line), 0);
                        cr_assert_eq(ftruncate(fd, DIGESTS_FILE_MAX + 1), 0);
                        close(fd);
                }
                list_expect(s, "tc-a", a);
                cr_assert_eq(s->n_hashed, 1, "kind %d", kind);
                cr_assert_eq(store_test_count_temporaries(dir), 0, "kind %d left a temporary", kind);
                store_free(s);
        }
}
