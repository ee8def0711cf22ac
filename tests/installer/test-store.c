/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-store.c: the store's atomic operations on a real directory (installer/store.c) */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store-test.h"
#include "store.h"

static char dir[] = "/tmp/teep-store-test-XXXXXX";
static const char draft_component[] = "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta";
static const char draft_uuid[] = "8d82573a-926d-4754-9353-32dc29997f74";

static void setup(void) {
        store_test_mkdtemp(dir, "/tmp/teep-store-test-XXXXXX");
}

static void teardown(void) {
        store_test_rmtree(dir);
}

static void sha256(const void *p, size_t n, uint8_t out[32]) {
        cr_assert_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, out), 0);
}

/* A memfd holding n pseudo-random bytes (varied by salt), positioned at 0. */
static int payload_fd(size_t n, unsigned salt, uint8_t ret_sha[32]) {
        uint8_t *p = malloc(n ? n : 1);
        int fd = memfd_create("payload", MFD_CLOEXEC);

        cr_assert_not_null(p);
        cr_assert_geq(fd, 0);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 131u + salt * 7u + (i >> 9));
        cr_assert_eq(write(fd, p, n), (ssize_t)n);
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        sha256(p, n, ret_sha);
        free(p);
        return fd;
}

static Store *open_store(StoreLayout layout) {
        Store *s = NULL;
        cr_assert_eq(store_open(dir, layout, &s), 0);
        cr_assert_eq(store_lock(s, 0), 0);
        return s;
}

/* The directory, as "name:sha256hex:mode" lines sorted: to prove "byte-for-byte unchanged". */
static char *snapshot(void) {
        struct dirent **list = NULL;
        size_t cap = 64, len = 0;
        char *out = malloc(cap);
        int n = scandir(dir, &list, NULL, alphasort);

        cr_assert_geq(n, 0);
        cr_assert_not_null(out);
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
                char line[600], hex[65] = "-";
                struct stat st;
                int fd = openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY);

                cr_assert_geq(fd, 0);
                cr_assert_eq(fstatat(fd, list[i]->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
                if (S_ISREG(st.st_mode)) {
                        int f = openat(fd, list[i]->d_name, O_RDONLY);
                        uint8_t d[32];
                        cr_assert_geq(f, 0);
                        cr_assert_eq(store_sha256_fd(f, d), 0);
                        for (int k = 0; k < 32; k++)
                                sprintf(hex + 2 * k, "%02x", d[k]);
                        close(f);
                }
                close(fd);
                len += (size_t)snprintf(line, sizeof(line), "%s:%s:%o\n", list[i]->d_name, hex, st.st_mode);
                while (len + 1 > cap)
                        cap *= 2;
                out = realloc(out, cap);
                cr_assert_not_null(out);
                strcat(out, line);
                free(list[i]);
        }
        free(list);
        return out;
}

static unsigned count_temporaries(void) {
        return store_test_count_temporaries(dir);
}

static bool file_has(const char *name, const uint8_t want[32]) {
        char path[512];
        uint8_t got[32];
        int fd, r;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
                return false;
        r = store_sha256_fd(fd, got);
        close(fd);
        return r == 0 && memcmp(got, want, 32) == 0;
}

static void install_ok(Store *s, const char *component, size_t n, unsigned salt, uint8_t ret_sha[32]) {
        StoreTarget t = {};
        StoreEntry e = {};
        int fd = payload_fd(n, salt, ret_sha);

        cr_assert_eq(store_target(s, component, &t), 0);
        cr_assert_eq(store_install(s, &t, fd, n, ret_sha, &e), 0);
        cr_assert_eq(e.size, n);
        cr_assert_arr_eq(e.sha256, ret_sha, 32);
        cr_assert_str_eq(e.file, t.file);
        cr_assert_str_eq(e.component, component);
        cr_assert(file_has(t.file, ret_sha));
        store_entry_done(&e);
        store_target_done(&t);
        close(fd);
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, open_refuses_a_symlinked_store) {
        char link[600];
        Store *s = NULL;
        int r;

        snprintf(link, sizeof(link), "%s/link", dir);
        cr_assert_eq(symlink("/tmp", link), 0);
        r = store_open(link, STORE_LAYOUT_DEFAULT, &s);
        cr_assert(r == -ELOOP || r == -ENOTDIR, "store_open() through a symlink gave %d", r);
        cr_assert_null(s);
        cr_assert_eq(store_open("/nonexistent/teep", STORE_LAYOUT_DEFAULT, &s), -ENOENT);
}

Test(store, lock_is_exclusive) {
        Store *a = open_store(STORE_LAYOUT_DEFAULT), *b = NULL;

        cr_assert_eq(store_open(dir, STORE_LAYOUT_DEFAULT, &b), 0);
        cr_assert_eq(store_lock(b, 60), -EWOULDBLOCK);
        store_free(a);
        cr_assert_eq(store_lock(b, 60), 0);
        store_free(b);
}

Test(store, tmpfile_is_private_and_unique) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char a[STORE_TMP_NAME_SIZE], b[STORE_TMP_NAME_SIZE];
        int fa = store_tmpfile_open(s->dir_fd, a), fb = store_tmpfile_open(s->dir_fd, b);
        struct stat st;

        cr_assert_geq(fa, 0);
        cr_assert_geq(fb, 0);
        cr_assert_str_neq(a, b);
        cr_assert(store_name_is_temporary(a) && store_name_is_temporary(b));
        cr_assert_eq(strlen(a), STORE_TMP_NAME_SIZE - 1);
        cr_assert_eq(fstat(fa, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        close(fa);
        close(fb);
        cr_assert_eq(count_temporaries(), 2);
        store_free(s);
}

Test(store, copy_counts_and_hashes) {
        uint8_t want[32], got[32];
        int in = payload_fd(1000000, 1, want), out = memfd_create("out", MFD_CLOEXEC);

        cr_assert_eq(store_copy_hashed(in, out, 1000000, 1000, got), 0);
        cr_assert_arr_eq(got, want, 32);
        cr_assert_eq(lseek(out, 0, SEEK_END), 1000000);
        close(in);
        close(out);
}

Test(store, copy_stops_one_byte_past_the_announced_size) {
        uint8_t want[32], got[32];
        const size_t n = 3u * STORE_COPY_BUFFER;
        int in = payload_fd(n, 2, want), out = memfd_create("out", MFD_CLOEXEC);

        /* Announce 10 bytes: it must read 11 and stop, not the whole payload. */
        cr_assert_eq(store_copy_hashed(in, out, 10, 1000, got), -EMSGSIZE);
        cr_assert_eq(lseek(in, 0, SEEK_CUR), 11);
        close(out);

        /* Announce one byte more than there is: refused at EOF. */
        out = memfd_create("out", MFD_CLOEXEC);
        cr_assert_eq(lseek(in, 0, SEEK_SET), 0);
        cr_assert_eq(store_copy_hashed(in, out, n + 1, 1000, got), -EMSGSIZE);
        /* Exactly a multiple of the buffer size: accepted. */
        cr_assert_eq(lseek(in, 0, SEEK_SET), 0);
        cr_assert_eq(ftruncate(out, 0), 0);
        cr_assert_eq(store_copy_hashed(in, out, n, 1000, got), 0);
        cr_assert_arr_eq(got, want, 32);
        close(in);
        close(out);
}

Test(store, copy_from_a_pipe_and_a_stalled_pipe) {
        uint8_t want[32], got[32];
        int p[2], out = memfd_create("out", MFD_CLOEXEC);

        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], "hello", 5), 5);
        close(p[1]);
        sha256("hello", 5, want);
        cr_assert_eq(store_copy_hashed(p[0], out, 5, 1000, got), 0);
        cr_assert_arr_eq(got, want, 32);
        close(p[0]);

        /* The writer keeps the pipe open and sends nothing more: bounded wait, then refusal. */
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], "he", 2), 2);
        cr_assert_eq(store_copy_hashed(p[0], out, 5, 100, got), -ETIMEDOUT);
        close(p[0]);
        close(p[1]);
        close(out);
}

Test(store, install_replace_remove) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreTarget t = {};
        uint8_t v1[32], v2[32];
        struct stat st;
        char path[600];

        install_ok(s, draft_component, 70000, 1, v1);
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, t.file);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0644);

        install_ok(s, draft_component, 12345, 2, v2);
        cr_assert(file_has(t.file, v2));
        cr_assert_eq(count_temporaries(), 0);

        cr_assert_eq(store_remove(s, &t), 0);
        cr_assert_eq(stat(path, &st), -1);
        cr_assert_eq(store_remove(s, &t), -ENOENT);
        store_target_done(&t);
        store_free(s);
}

Test(store, empty_payload_is_a_payload) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        uint8_t v[32];

        install_ok(s, "empty", 0, 0, v);
        store_free(s);
}

static void assert_refused_unchanged(StoreLayout layout, uint64_t size_delta, bool corrupt_digest, int want) {
        Store *s = open_store(layout);
        StoreTarget t = {};
        uint8_t v1[32], v2[32];
        char *before, *after;
        int fd;

        install_ok(s, draft_component, 50000, 1, v1);
        before = snapshot();

        fd = payload_fd(300000, 2, v2);
        if (corrupt_digest)
                v2[7] ^= 1;
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_install(s, &t, fd, 300000 + size_delta, v2, NULL), want);
        after = snapshot();
        cr_assert_str_eq(after, before, "the store changed");
        cr_assert(file_has(t.file, v1));

        free(before);
        free(after);
        store_target_done(&t);
        close(fd);
        store_free(s);
}

Test(store, digest_mismatch_changes_nothing) {
        assert_refused_unchanged(STORE_LAYOUT_DEFAULT, 0, true, -EKEYREJECTED);
        teardown();
        setup();
        assert_refused_unchanged(STORE_LAYOUT_OPTEE, 0, true, -EKEYREJECTED);
}

Test(store, size_mismatch_changes_nothing) {
        assert_refused_unchanged(STORE_LAYOUT_DEFAULT, 1, false, -EMSGSIZE);
        teardown();
        setup();
        assert_refused_unchanged(STORE_LAYOUT_DEFAULT, (uint64_t)-1, false, -EMSGSIZE);
        teardown();
        setup();
        assert_refused_unchanged(STORE_LAYOUT_OPTEE, 5, false, -EMSGSIZE);
}

Test(store, pipe_payload_longer_than_announced_changes_nothing) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreTarget t = {};
        uint8_t junk[4096], d[32];
        char *before, *after;
        int p[2];

        memset(junk, 'j', sizeof(junk));
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
        close(p[1]);
        sha256(junk, 100, d);
        before = snapshot();
        cr_assert_eq(store_target(s, "x", &t), 0);
        cr_assert_eq(store_install(s, &t, p[0], 100, d, NULL), -EMSGSIZE);
        after = snapshot();
        cr_assert_str_eq(after, before);
        free(before);
        free(after);
        store_target_done(&t);
        close(p[0]);
        store_free(s);
}

Test(store, install_replaces_a_symlink_without_following_it) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char outside[600], link[600];
        uint8_t v[32], o[32];
        struct stat st;
        int fd;

        /* A file outside the store, and a symlink in the store where the TC will go. */
        snprintf(outside, sizeof(outside), "%s-outside", dir);
        fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "keep", 4), 4);
        close(fd);
        sha256("keep", 4, o);
        snprintf(link, sizeof(link), "%s/victim", dir);
        cr_assert_eq(symlink(outside, link), 0);

        install_ok(s, "victim", 1000, 3, v);
        cr_assert_eq(lstat(link, &st), 0);
        cr_assert(S_ISREG(st.st_mode), "the symlink was replaced by a file");
        fd = open(outside, O_RDONLY);
        cr_assert_geq(fd, 0);
        cr_assert_eq(store_sha256_fd(fd, v), 0);
        cr_assert_arr_eq(v, o, 32, "the file outside the store was written through the link");
        close(fd);
        unlink(outside);
        store_free(s);
}

Test(store, list_reports_tcs_only) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        static const char *const components[] = { draft_component, ".dot/x", "0x00ff", "b", "a/b" };
        uint8_t sha[5][32];
        StoreEntry *e = NULL;
        size_t n = 0;
        char path[600];
        int fd;

        for (size_t i = 0; i < 5; i++)
                install_ok(s, components[i], 1000 + i * 777, (unsigned)i, sha[i]);

        /* Strays a person or a crash might leave: none is a TC. */
        snprintf(path, sizeof(path), "%s/.teep-tmp-aaaaaaaaaaaa", dir);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        close(fd);
        snprintf(path, sizeof(path), "%s/not a tc", dir);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        close(fd);
        snprintf(path, sizeof(path), "%s/0x6162", dir); /* non-canonical name of "ab" */
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        close(fd);
        snprintf(path, sizeof(path), "%s/linked", dir);
        cr_assert_eq(symlink("/etc/passwd", path), 0);
        snprintf(path, sizeof(path), "%s/subdir", dir);
        cr_assert_eq(mkdir(path, 0700), 0);

        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 5);
        for (size_t k = 1; k < n; k++)
                cr_assert_lt(strcmp(e[k - 1].file, e[k].file), 0, "sorted by file name");
        for (size_t i = 0; i < 5; i++) {
                bool found = false;
                for (size_t k = 0; k < n; k++)
                        if (strcmp(e[k].component, components[i]) == 0) {
                                found = true;
                                cr_assert_eq(e[k].size, 1000 + i * 777);
                                cr_assert_arr_eq(e[k].sha256, sha[i], 32);
                                cr_assert_gt(e[k].mtime_usec, UINT64_C(1600000000) * 1000000u);
                        }
                cr_assert(found, "%s not listed", components[i]);
        }
        store_entries_free(e, n);
        store_free(s);
}

Test(store, clean_removes_temporaries_only) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char name[STORE_TMP_NAME_SIZE];
        uint8_t v[32];

        install_ok(s, "keep", 10, 1, v);
        for (int i = 0; i < 3; i++)
                close(store_tmpfile_open(s->dir_fd, name));
        cr_assert_eq(count_temporaries(), 3);
        cr_assert_eq(store_clean(s), 3);
        cr_assert_eq(count_temporaries(), 0);
        cr_assert(file_has("keep", v));
        cr_assert_eq(store_clean(s), 0);
        store_free(s);
}

Test(store, write_file_atomic_replaces_whole) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        uint8_t d[32];

        cr_assert_eq(store_write_file_atomic(s->dir_fd, "f", "first version", 13, 0640), 0);
        cr_assert_eq(store_write_file_atomic(s->dir_fd, "f", "second", 6, 0640), 0);
        sha256("second", 6, d);
        cr_assert(file_has("f", d));
        cr_assert_eq(count_temporaries(), 0);
        store_free(s);
}

Test(store, optee_layout_owner_records) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        static const char other[] = "8d82573a-926d-4754-9353-32dc29997f74";
        StoreTarget t = {}, t2 = {};
        StoreEntry *e = NULL;
        uint8_t v[32], v2[32];
        char path[600];
        size_t n = 0;
        int fd;

        install_ok(s, draft_component, 4096, 1, v);
        cr_assert(file_has("8d82573a-926d-4754-9353-32dc29997f74.ta", v));
        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(e[0].component, draft_component);
        cr_assert_str_eq(e[0].file, "8d82573a-926d-4754-9353-32dc29997f74.ta");
        store_entries_free(e, n);

        /* Same component again: a plain replace. */
        install_ok(s, draft_component, 5000, 2, v);

        /* Another component with the same TA UUID may neither take nor remove it. */
        fd = payload_fd(100, 3, v2);
        cr_assert_eq(store_target(s, other, &t2), 0);
        cr_assert_str_eq(t2.file, "8d82573a-926d-4754-9353-32dc29997f74.ta");
        cr_assert_eq(store_install(s, &t2, fd, 100, v2, NULL), -EEXIST);
        cr_assert_eq(store_remove(s, &t2), -ENOENT);
        cr_assert(file_has(t2.file, v));
        close(fd);

        /* No UUID: no place in this layout. */
        cr_assert_eq(store_target(s, "TEEP-Device/ta", &t), -EINVAL);

        /* Remove: TA and record go. */
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_remove(s, &t), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, t.file);
        cr_assert_eq(access(path, F_OK), -1);
        snprintf(path, sizeof(path), "%s/" STORE_OWNER_PREFIX "%s", dir, draft_uuid);
        cr_assert_eq(access(path, F_OK), -1);
        cr_assert_eq(store_remove(s, &t), -ENOENT);

        /* Now the other component may have the UUID. */
        install_ok(s, other, 100, 3, v2);
        store_target_done(&t);
        store_target_done(&t2);
        store_free(s);
}

Test(store, optee_layout_leaves_foreign_tas_alone) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        StoreTarget t = {};
        StoreEntry *e = NULL;
        uint8_t v[32], f[32];
        char path[600];
        size_t n = 9;
        int fd;

        /* A TA a package put there: no owner record. */
        snprintf(path, sizeof(path), "%s/%s.ta", dir, draft_uuid);
        fd = open(path, O_WRONLY | O_CREAT, 0644);
        cr_assert_eq(write(fd, "pkg", 3), 3);
        close(fd);
        sha256("pkg", 3, f);

        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 0, "a TA teepkit did not install is not listed");
        free(e);

        fd = payload_fd(100, 1, v);
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_install(s, &t, fd, 100, v, NULL), -EEXIST);
        cr_assert_eq(store_remove(s, &t), -ENOENT);
        cr_assert(file_has(t.file, f));
        cr_assert_eq(count_temporaries(), 0);
        close(fd);
        store_target_done(&t);
        store_free(s);
}

Test(store, optee_clean_drops_orphan_records) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        char path[600], rec[200];
        uint8_t v[32];
        int fd;

        /* An owner record whose TA never arrived (install killed between the two renames). */
        snprintf(rec, sizeof(rec), STORE_OWNER_PREFIX "%s", draft_uuid);
        snprintf(path, sizeof(path), "%s/%s", dir, rec);
        fd = open(path, O_WRONLY | O_CREAT, 0644);
        cr_assert_eq(write(fd, "8d82573a-926d-4754-9353-32dc29997f74\n", 37), 37);
        close(fd);
        cr_assert_eq(store_clean(s), 1);
        cr_assert_eq(access(path, F_OK), -1);

        /* With its TA, a record stays. */
        install_ok(s, draft_component, 10, 1, v);
        cr_assert_eq(store_clean(s), 0);
        cr_assert_eq(access(path, F_OK), 0);
        store_free(s);
}

Test(store, optee_stale_record_of_another_component_does_not_block) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        char path[600];
        uint8_t v[32];
        StoreEntry *e = NULL;
        size_t n = 0;
        int fd;

        snprintf(path, sizeof(path), "%s/" STORE_OWNER_PREFIX "%s", dir, draft_uuid);
        fd = open(path, O_WRONLY | O_CREAT, 0644);
        cr_assert_eq(write(fd, "8d82573a-926d-4754-9353-32dc29997f74\n", 37), 37);
        close(fd);
        install_ok(s, draft_component, 10, 1, v);
        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(e[0].component, draft_component, "the record names the new owner");
        store_entries_free(e, n);
        store_free(s);
}

/* ---- undo records (store_restore(), store_discard()) ---- */

static bool exists_in_store(const char *name) {
        char path[1024];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return lstat(path, &st) == 0;
}

static unsigned count_undo_records(void) {
        return store_test_count_names(dir, store_name_is_undo);
}

static void target(Store *s, const char *component, StoreTarget *t, char undo[STORE_UNDO_NAME_SIZE],
                   char added[STORE_UNDO_NAME_SIZE]) {
        cr_assert_eq(store_target(s, component, t), 0);
        cr_assert_eq(store_undo_names(t->file, undo, added), 0);
}

Test(store, undo_on_replace_then_restore) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        StoreTarget t = {};
        StoreEntry *e = NULL;
        uint8_t v1[32], v2[32];
        size_t n = 0;

        install_ok(s, draft_component, 70000, 1, v1);
        target(s, draft_component, &t, undo, added);
        cr_assert_str_eq(undo, STORE_UNDO_PREFIX "TEEP-Device+SecureFS+8d82573a-926d-4754-9353-32dc29997f74+ta");
        cr_assert(exists_in_store(added), "a first install records that it added the file");
        cr_assert_not(exists_in_store(undo));

        install_ok(s, draft_component, 12345, 2, v2);
        cr_assert(file_has(t.file, v2));
        cr_assert(file_has(undo, v1), "the undo record is the previous file");
        cr_assert_not(exists_in_store(added), "one record per file: the newer change replaced it");
        cr_assert_eq(count_undo_records(), 1);

        /* never listed, never installed */
        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(e[0].component, draft_component);
        cr_assert_arr_eq(e[0].sha256, v2, 32);
        store_entries_free(e, n);
        /* and left alone by the start-up clean-up */
        cr_assert_eq(store_clean(s), 0);
        cr_assert(file_has(undo, v1));

        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v1), "v1 is back");
        cr_assert_eq(count_undo_records(), 0);
        cr_assert_eq(count_temporaries(), 0);
        cr_assert_eq(store_restore(s, &t), 0, "nothing left to undo");
        cr_assert(file_has(t.file, v1));
        store_target_done(&t);
        store_free(s);
}

Test(store, undo_of_a_first_install_removes_it) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        StoreTarget t = {};
        uint8_t v[32];

        install_ok(s, "new/tc", 1000, 4, v);
        target(s, "new/tc", &t, undo, added);
        cr_assert_eq(store_restore(s, &t), 2);
        cr_assert_not(exists_in_store(t.file));
        cr_assert_eq(count_undo_records(), 0);
        cr_assert_eq(store_restore(s, &t), 0);
        store_target_done(&t);
        store_free(s);
}

Test(store, undo_of_a_remove_puts_it_back) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        StoreTarget t = {};
        uint8_t v[32];
        char *before, *after;

        install_ok(s, "gone/tc", 3000, 5, v);
        target(s, "gone/tc", &t, undo, added);
        cr_assert_eq(store_discard(s, &t), 1, "the added marker");
        cr_assert_eq(store_discard(s, &t), 0);

        cr_assert_eq(store_remove(s, &t), 0);
        cr_assert_not(exists_in_store(t.file));
        cr_assert(file_has(undo, v));

        /* a refused remove changes nothing, the undo record included */
        before = snapshot();
        {
                StoreTarget other = {};
                cr_assert_eq(store_target(s, "never/installed", &other), 0);
                cr_assert_eq(store_remove(s, &other), -ENOENT);
                store_target_done(&other);
        }
        after = snapshot();
        cr_assert_str_eq(after, before);
        free(before);
        free(after);

        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v));
        cr_assert_eq(count_undo_records(), 0);
        store_target_done(&t);
        store_free(s);
}

Test(store, refused_install_keeps_the_undo_record) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        StoreTarget t = {};
        uint8_t v1[32], v2[32], v3[32];
        char *before, *after;
        int fd;

        install_ok(s, "r/tc", 100, 1, v1);
        install_ok(s, "r/tc", 200, 2, v2);
        target(s, "r/tc", &t, undo, added);
        cr_assert(file_has(undo, v1));
        before = snapshot();
        fd = payload_fd(300, 3, v3);
        v3[0] ^= 1;
        cr_assert_eq(store_install(s, &t, fd, 300, v3, NULL), -EKEYREJECTED);
        close(fd);
        after = snapshot();
        cr_assert_str_eq(after, before, "a refusal changed the store");
        free(before);
        free(after);
        store_target_done(&t);
        store_free(s);
}

Test(store, discard_one_or_all) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE];
        StoreTarget a = {}, b = {};
        uint8_t v[32];

        install_ok(s, "a", 10, 1, v);
        install_ok(s, "a", 11, 2, v);
        install_ok(s, "b", 12, 3, v);
        install_ok(s, "c", 13, 4, v);
        cr_assert_eq(count_undo_records(), 3);
        target(s, "a", &a, undo, added);
        cr_assert_eq(store_discard(s, &a), 1);
        cr_assert_not(exists_in_store(undo));
        cr_assert_eq(store_restore(s, &a), 0, "discarded: nothing to undo");
        cr_assert(file_has("a", v) || exists_in_store("a"));
        cr_assert_eq(store_discard(s, NULL), 2);
        cr_assert_eq(count_undo_records(), 0);
        target(s, "b", &b, undo, added);
        cr_assert_eq(store_restore(s, &b), 0);
        cr_assert(exists_in_store("b") && exists_in_store("c"), "discarding never touches a TC");
        store_target_done(&a);
        store_target_done(&b);
        store_free(s);
}

/* A file name too long to carry the prefix: the record is named by the name's digest. */
Test(store, undo_name_of_a_long_file_name) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE], component[256];
        StoreTarget t = {};
        uint8_t v1[32], v2[32];

        memset(component, 'x', 250);
        component[250] = '\0';
        install_ok(s, component, 10, 1, v1);
        install_ok(s, component, 20, 2, v2);
        target(s, component, &t, undo, added);
        cr_assert_leq(strlen(undo), STORE_FILE_NAME_MAX);
        cr_assert_eq(strncmp(undo, STORE_UNDO_PREFIX "~", strlen(STORE_UNDO_PREFIX) + 1), 0, "%s", undo);
        cr_assert(file_has(undo, v1));
        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v1));
        /* a hostile name never gets that far: the mapping refuses it */
        cr_assert_eq(store_undo_names("../x", undo, added), -EINVAL);
        cr_assert_eq(store_undo_names(".teep-undo-x", undo, added), -EINVAL);
        store_target_done(&t);
        store_free(s);
}

Test(store, optee_undo_keeps_owner_records_right) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        char undo[STORE_UNDO_NAME_SIZE], added[STORE_UNDO_NAME_SIZE], record[600];
        StoreTarget t = {};
        StoreEntry *e = NULL;
        uint8_t v1[32], v2[32];
        size_t n = 0;

        snprintf(record, sizeof(record), STORE_OWNER_PREFIX "%s", draft_uuid);
        /* a first install undone: TA and record go */
        install_ok(s, draft_component, 100, 1, v1);
        target(s, draft_component, &t, undo, added);
        cr_assert_eq(store_restore(s, &t), 2);
        cr_assert_not(exists_in_store(t.file));
        cr_assert_not(exists_in_store(record));

        /* a replace undone */
        install_ok(s, draft_component, 100, 1, v1);
        install_ok(s, draft_component, 200, 2, v2);
        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v1));
        cr_assert(exists_in_store(record));

        /* a remove undone: the record comes back with the TA */
        cr_assert_eq(store_remove(s, &t), 0);
        cr_assert_not(exists_in_store(record));
        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v1));
        cr_assert_eq(store_list(s, &e, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(e[0].component, draft_component);
        store_entries_free(e, n);
        cr_assert_eq(count_undo_records(), 0);
        store_target_done(&t);
        store_free(s);
}

/* kill -9 of an installing process at random instants: the name holds the old image or the new
 * one, whole, every time; what is left (a temporary, an undo record) is cleaned or undone. */
Test(store, kill_between_link_and_rename_leaves_old_or_new, .timeout = 120) {
        enum { N = 256 * 1024, ROUNDS = 60 };
        uint8_t v1[32], v2[32];
        unsigned saw_old = 0, saw_new = 0;

        {
                Store *s = open_store(STORE_LAYOUT_DEFAULT);
                install_ok(s, "k/tc", N, 1, v1);
                /* as the agent does after each commit: the first install is not to be undone */
                cr_assert_eq(store_discard(s, NULL), 1);
                store_free(s);
        }
        close(payload_fd(N, 2, v2));
        for (unsigned round = 0; round < ROUNDS; round++) {
                pid_t pid = fork();
                cr_assert_geq(pid, 0);
                if (pid == 0) {
                        Store *s = NULL;
                        StoreTarget t = {};
                        uint8_t d[32];

                        if (store_open(dir, STORE_LAYOUT_DEFAULT, &s) < 0 || store_lock(s, 5000) < 0 ||
                            store_target(s, "k/tc", &t) < 0)
                                _exit(2);
                        for (unsigned k = 0;; k++) {
                                int fd = payload_fd(N, 1 + (k & 1), d);
                                if (store_install(s, &t, fd, N, d, NULL) < 0)
                                        _exit(3);
                                close(fd);
                        }
                }
                /* 0.2..8 ms in: before, in and after the link/rename of several installs */
                usleep((useconds_t)(((unsigned)rand() % 8000u) + 200u));
                cr_assert_eq(kill(pid, SIGKILL), 0);
                {
                        int status;
                        cr_assert_eq(waitpid(pid, &status, 0), pid);
                        cr_assert(WIFSIGNALED(status), "the child stopped by itself (%d)", status);
                }
                bool old = file_has("k+tc", v1), neu = file_has("k+tc", v2);
                cr_assert(old || neu, "round %u: the name holds neither image", round);
                saw_old += old;
                saw_new += neu;
                {
                        /* the next installer: cleans temporaries, keeps the undo record; a
                         * Restore then yields the other image or the same one, whole */
                        Store *s = open_store(STORE_LAYOUT_DEFAULT);
                        StoreTarget t = {};
                        cr_assert_geq(store_clean(s), 0);
                        cr_assert_eq(count_temporaries(), 0);
                        cr_assert_eq(store_target(s, "k/tc", &t), 0);
                        cr_assert_geq(store_restore(s, &t), 0);
                        cr_assert(file_has("k+tc", v1) || file_has("k+tc", v2), "round %u: restore tore the file", round);
                        cr_assert_eq(count_undo_records(), 0);
                        store_target_done(&t);
                        store_free(s);
                }
        }
        cr_log_info("kill -9 rounds: %u left v1, %u left v2", saw_old, saw_new);
}

/* ---- staging: a streamed payload, then its commit without a copy ---- */

/* A pipe whose read end is returned; a child writes n payload bytes (salt as payload_fd())
 * into it and exits, closing it (or keeps it open, sending nothing more, when stall). */
static int pipe_payload(size_t n, unsigned salt, bool stall, uint8_t ret_sha[32], pid_t *ret_child) {
        uint8_t *p = malloc(n ? n : 1);
        int fds[2];
        pid_t child;

        cr_assert_not_null(p);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 131u + salt * 7u + (i >> 9));
        sha256(p, n, ret_sha);
        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                size_t done = 0;

                close(fds[0]);
                while (done < n) {
                        ssize_t k = write(fds[1], p + done, n - done);
                        if (k <= 0)
                                _exit(1);
                        done += (size_t)k;
                }
                if (stall)
                        pause();
                _exit(0);
        }
        close(fds[1]);
        free(p);
        *ret_child = child;
        return fds[0];
}

static void reap(pid_t child) {
        (void)kill(child, SIGKILL);
        (void)waitpid(child, NULL, 0);
}

/* Stage n bytes from a pipe (max allowed); asserts success. */
static void stage_ok(Store *s, size_t n, uint64_t max, unsigned salt, StoreStaged *ret, uint8_t ret_sha[32]) {
        pid_t child;
        int fd = pipe_payload(n, salt, false, ret_sha, &child);

        cr_assert_eq(store_stage(s, fd, max, ret), 0);
        cr_assert_eq(ret->size, n);
        cr_assert_arr_eq(ret->sha256, ret_sha, 32);
        cr_assert(store_name_is_temporary(ret->name));
        close(fd);
        reap(child);
}

Test(store, stage_up_to_max_from_a_pipe) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        const size_t n = 3u * STORE_COPY_BUFFER + 17;
        StoreStaged a = {}, b = {};
        StoreEntry *e = NULL;
        uint8_t va[32], vb[32], got[32];
        struct stat st;
        size_t listed = 99;
        int fd;

        stage_ok(s, n, n, 1, &a, va);          /* exactly max */
        stage_ok(s, 1000, UINT64_MAX, 2, &b, vb); /* far below */
        cr_assert_str_neq(a.name, b.name);
        cr_assert_eq(count_temporaries(), 2);
        cr_assert(file_has(a.name, va));
        cr_assert(file_has(b.name, vb));
        /* staged is not installed: no TC yet */
        cr_assert_eq(store_list(s, &e, &listed), 0);
        cr_assert_eq(listed, 0);
        store_entries_free(e, listed);

        /* a fresh read-only descriptor of the very inode, from offset 0 */
        fd = store_staged_open(s, &a);
        cr_assert_geq(fd, 0);
        cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_eq(st.st_ino, a.ino);
        cr_assert_eq((uint64_t)st.st_size, n);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(store_sha256_fd(fd, got), 0);
        cr_assert_arr_eq(got, va, 32);
        close(fd);

        /* unstaged: gone, and opening it again is refused */
        cr_assert_eq(store_unstage(s, &a), 1);
        cr_assert_eq(store_unstage(s, &a), 0);
        cr_assert_eq(store_staged_open(s, &a), -ESTALE);
        cr_assert_eq(count_temporaries(), 1);
        cr_assert_eq(store_unstage(s, &b), 1);
        cr_assert_eq(count_temporaries(), 0);
        store_free(s);
}

Test(store, stage_more_than_max_leaves_nothing) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreStaged st = { .name = "untouched" };
        uint8_t v[32], v1[32];
        char *before, *after;
        pid_t child;
        int fd;

        install_ok(s, draft_component, 5000, 1, v1);
        before = snapshot();
        fd = pipe_payload(2u * STORE_COPY_BUFFER, 3, false, v, &child);
        cr_assert_eq(store_stage(s, fd, 2u * STORE_COPY_BUFFER - 1, &st), -EFBIG);
        cr_assert_str_eq(st.name, "untouched", "ret was written on failure");
        after = snapshot();
        cr_assert_str_eq(after, before, "a refused stage left something in the store");
        cr_assert_eq(count_temporaries(), 0);
        free(before);
        free(after);
        close(fd);
        reap(child);

        /* max 0 is no limit at all: refused before a temporary exists */
        fd = pipe_payload(10, 3, false, v, &child);
        cr_assert_eq(store_stage(s, fd, 0, &st), -EINVAL);
        cr_assert_eq(count_temporaries(), 0);
        close(fd);
        reap(child);

        /* a directory is not a payload */
        fd = open(dir, O_RDONLY | O_DIRECTORY);
        cr_assert_geq(fd, 0);
        cr_assert_eq(store_stage(s, fd, 100, &st), -EISDIR);
        cr_assert_eq(count_temporaries(), 0);
        close(fd);
        store_free(s);
}

Test(store, stage_of_a_stalled_pipe_times_out) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreStaged st = {};
        uint8_t v[32];
        pid_t child;
        int fd;

        s->stall_timeout_ms = 200;
        fd = pipe_payload(1000, 4, true, v, &child);
        cr_assert_eq(store_stage(s, fd, 1u << 20, &st), -ETIMEDOUT);
        cr_assert_eq(count_temporaries(), 0);
        close(fd);
        reap(child);
        store_free(s);
}

Test(store, stage_accepts_a_regular_file) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreStaged st = {};
        uint8_t v[32];
        int fd = payload_fd(70000, 5, v);

        cr_assert_eq(store_stage(s, fd, 70000, &st), 0);
        cr_assert_eq(st.size, 70000);
        cr_assert_arr_eq(st.sha256, v, 32);
        cr_assert(file_has(st.name, v));
        close(fd);
        store_free(s);
}

/* The TC file after a staged install is the staged inode: no copy was made. */
static void staged_commit_keeps_the_inode(StoreLayout layout) {
        Store *s = open_store(layout);
        StoreTarget t = {};
        StoreStaged st = {};
        StoreEntry e = {};
        uint8_t v1[32], v2[32];
        struct stat sb;
        char path[600];

        install_ok(s, draft_component, 4000, 1, v1);
        stage_ok(s, 2u * STORE_COPY_BUFFER + 5, 64u << 20, 6, &st, v2);
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_install_staged(s, &t, &st, st.size, v2, &e), 0);
        cr_assert_eq(e.size, st.size);
        cr_assert_arr_eq(e.sha256, v2, 32);
        cr_assert_str_eq(e.file, t.file);

        snprintf(path, sizeof(path), "%s/%s", dir, t.file);
        cr_assert_eq(lstat(path, &sb), 0);
        cr_assert_eq(sb.st_ino, st.ino, "the staged file was copied, not renamed");
        cr_assert_eq(sb.st_mode & 07777, 0644);
        cr_assert(file_has(t.file, v2));
        cr_assert_eq(count_temporaries(), 0);
        cr_assert_eq(store_staged_open(s, &st), -ESTALE);

        /* the tail of an install ran: the undo record puts the old file back */
        cr_assert_eq(store_restore(s, &t), 1);
        cr_assert(file_has(t.file, v1));
        if (layout == STORE_LAYOUT_OPTEE) {
                StoreEntry *list = NULL;
                size_t n = 0;

                cr_assert_eq(store_list(s, &list, &n), 0);
                cr_assert_eq(n, 1);
                cr_assert_str_eq(list[0].component, draft_component);
                store_entries_free(list, n);
        }
        store_entry_done(&e);
        store_target_done(&t);
        store_free(s);
}

Test(store, staged_commit_keeps_the_inode) {
        staged_commit_keeps_the_inode(STORE_LAYOUT_DEFAULT);
}

Test(store, staged_commit_keeps_the_inode_optee) {
        staged_commit_keeps_the_inode(STORE_LAYOUT_OPTEE);
}

/* store_staged_sync() ahead of the Install (the installer does it once the agent has its Staged
 * answer): the staged file is 0644 and marked synced, and the install that skips its own chmod
 * and fsync still leaves a 0644 TC file of the staged inode. */
Test(store, staged_sync_then_install) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreTarget t = {};
        StoreStaged st = {}, gone = {};
        uint8_t v[32], w[32];
        struct stat sb;
        char path[600];

        stage_ok(s, STORE_COPY_BUFFER + 3, UINT64_MAX, 8, &st, v);
        cr_assert(!st.synced);
        cr_assert_eq(store_staged_sync(s, &st), 0);
        cr_assert(st.synced);
        snprintf(path, sizeof(path), "%s/%s", dir, st.name);
        cr_assert_eq(lstat(path, &sb), 0);
        cr_assert_eq(sb.st_mode & 07777, 0644);
        cr_assert_eq(sb.st_ino, st.ino);

        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_install_staged(s, &t, &st, st.size, v, NULL), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, t.file);
        cr_assert_eq(lstat(path, &sb), 0);
        cr_assert_eq(sb.st_ino, st.ino);
        cr_assert_eq(sb.st_mode & 07777, 0644);
        cr_assert(file_has(t.file, v));
        cr_assert_eq(count_temporaries(), 0);

        /* a staged file that is gone: -ESTALE, not marked, nothing made */
        stage_ok(s, 100, 100, 9, &gone, w);
        cr_assert_eq(store_unstage(s, &gone), 1);
        cr_assert_eq(store_staged_sync(s, &gone), -ESTALE);
        cr_assert(!gone.synced);
        cr_assert_eq(count_temporaries(), 0);
        store_target_done(&t);
        store_free(s);
}

Test(store, staged_commit_of_a_first_install_in_optee_writes_the_owner) {
        Store *s = open_store(STORE_LAYOUT_OPTEE);
        StoreTarget t = {};
        StoreStaged st = {};
        StoreEntry *list = NULL;
        uint8_t v[32];
        char owner[600];
        size_t n = 0;

        stage_ok(s, 3000, 3000, 7, &st, v);
        cr_assert_eq(store_target(s, draft_component, &t), 0);
        cr_assert_eq(store_install_staged(s, &t, &st, 3000, v, NULL), 0);
        snprintf(owner, sizeof(owner), "%s/.teep-owner-%s", dir, draft_uuid);
        cr_assert_eq(access(owner, F_OK), 0);
        cr_assert_eq(store_list(s, &list, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_arr_eq(list[0].sha256, v, 32);
        store_entries_free(list, n);
        store_target_done(&t);
        store_free(s);
}

/* A staged install announced with another size or digest than was staged: refused, the store
 * as it was before the payload was staged (the staged file gone too). */
Test(store, staged_commit_with_wrong_size_or_digest_changes_nothing) {
        static const struct {
                int64_t size_delta;
                bool corrupt;
                int want;
        } cases[] = { { 0, true, -EKEYREJECTED }, { 1, false, -EMSGSIZE }, { -1, false, -EMSGSIZE } };

        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                Store *s = open_store(STORE_LAYOUT_DEFAULT);
                StoreTarget t = {};
                StoreStaged st = {};
                uint8_t v1[32], v2[32];
                char *before, *after;

                install_ok(s, draft_component, 6000, 1, v1);
                before = snapshot();
                stage_ok(s, 9000, 9000, 8, &st, v2);
                if (cases[k].corrupt)
                        v2[3] ^= 0x10;
                cr_assert_eq(store_target(s, draft_component, &t), 0);
                cr_assert_eq(store_install_staged(s, &t, &st, (uint64_t)((int64_t)st.size + cases[k].size_delta), v2, NULL),
                             cases[k].want, "case %zu", k);
                after = snapshot();
                cr_assert_str_eq(after, before, "case %zu: the store changed", k);
                cr_assert(file_has(t.file, v1));
                cr_assert_eq(count_temporaries(), 0);
                free(before);
                free(after);
                store_target_done(&t);
                store_free(s);
                teardown();
                setup();
        }
}

Test(store, staged_commit_of_a_vanished_or_replaced_file_is_refused) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreTarget t = {};
        StoreStaged st = {};
        uint8_t v[32], w[32];
        char path[600];
        int fd;

        stage_ok(s, 1234, 1234, 9, &st, v);
        cr_assert_eq(store_target(s, "x", &t), 0);
        /* someone put another file of the same size under the staged name (made while the
         * staged one still exists, so that it cannot reuse its inode number) */
        snprintf(path, sizeof(path), "%s/other", dir);
        fd = payload_fd(1234, 9, w);
        {
                char staged_path[600];
                int out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
                uint8_t buf[1234];
                cr_assert_geq(out, 0);
                cr_assert_eq(read(fd, buf, sizeof(buf)), 1234);
                cr_assert_eq(write(out, buf, sizeof(buf)), 1234);
                close(out);
                snprintf(staged_path, sizeof(staged_path), "%s/%s", dir, st.name);
                cr_assert_eq(rename(path, staged_path), 0);
        }
        close(fd);
        cr_assert_eq(store_install_staged(s, &t, &st, 1234, v, NULL), -ESTALE);
        snprintf(path, sizeof(path), "%s/x", dir);
        cr_assert_eq(access(path, F_OK), -1, "a file that was not the one staged was installed");
        cr_assert_eq(count_temporaries(), 1, "the file that replaced the staged one is not ours to remove");
        store_target_done(&t);
        store_free(s);
}

Test(store, clean_removes_staged_leftovers) {
        Store *s = open_store(STORE_LAYOUT_DEFAULT);
        StoreStaged st = {};
        uint8_t v[32];

        /* an installer killed while something was staged: the next start removes it */
        stage_ok(s, 500, 500, 10, &st, v);
        cr_assert_eq(count_temporaries(), 1);
        cr_assert_eq(store_clean(s), 1);
        cr_assert_eq(count_temporaries(), 0);
        store_free(s);
}
