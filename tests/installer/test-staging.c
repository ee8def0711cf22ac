/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-staging.c: the installer's table of staged payloads (installer/staging.c) on a real store */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "staging.h"
#include "store-test.h"
#include "store.h"

static char dir[] = "/tmp/teep-staging-test-XXXXXX";
static Store *store;

static void setup(void) {
        strcpy(dir, "/tmp/teep-staging-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(store_open(dir, STORE_LAYOUT_DEFAULT, &store), 0);
}

static void teardown(void) {
        DIR *d = opendir(dir);
        struct dirent *de;

        store = store_free(store);
        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        (void)unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        (void)rmdir(dir);
}

static unsigned count_temporaries(void) {
        return store_test_count_temporaries(dir);
}

static void make_id(unsigned k, char out[STAGING_ID_LEN + 1]) {
        snprintf(out, STAGING_ID_LEN + 1, "%032x", k);
}

/* Add an entry under id k, created at now, with a real staged file of k + 1 bytes. */
static Staging *add_staged(StagingTable *t, unsigned k, uint64_t now) {
        char id[STAGING_ID_LEN + 1], bytes[64] = {0};
        Staging *e = NULL;
        int fd = memfd_create("p", MFD_CLOEXEC);

        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, bytes, k % 64 + 1), (ssize_t)(k % 64 + 1));
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        make_id(k, id);
        cr_assert_eq(staging_add(t, id, now, &e), 0);
        cr_assert_eq(store_stage(store, fd, 64, &e->file), 0);
        close(fd);
        return e;
}

TestSuite(staging, .init = setup, .fini = teardown);

Test(staging, ids_are_32_lowercase_hex) {
        cr_assert(staging_id_valid("0123456789abcdef0123456789abcdef"));
        cr_assert_not(staging_id_valid("0123456789ABCDEF0123456789abcdef"));
        cr_assert_not(staging_id_valid("0123456789abcdef0123456789abcde"));
        cr_assert_not(staging_id_valid("0123456789abcdef0123456789abcdef0"));
        cr_assert_not(staging_id_valid("0123456789abcdef0123456789abcdeg"));
        cr_assert_not(staging_id_valid("../../../../../../../../etc/pass"));
        cr_assert_not(staging_id_valid(""));
        cr_assert_not(staging_id_valid(NULL));
}

Test(staging, add_find_forget_and_the_bound) {
        StagingTable t = {};
        char id[STAGING_ID_LEN + 1];
        Staging *e = NULL, *f;
        struct stat st;
        char path[600];

        for (unsigned k = 0; k < INSTALLER_MAX_STAGED; k++)
                (void)add_staged(&t, k, 1000 + k);
        cr_assert_eq(t.n, INSTALLER_MAX_STAGED);
        cr_assert_eq(count_temporaries(), INSTALLER_MAX_STAGED);
        make_id(INSTALLER_MAX_STAGED, id);
        cr_assert_eq(staging_add(&t, id, 5000, &e), -EBUSY, "one more than the bound");
        make_id(3, id);
        cr_assert_eq(staging_add(&t, id, 5000, &e), -EEXIST, "an id twice");
        cr_assert_eq(staging_add(&t, "not-an-id", 5000, &e), -EINVAL);

        /* found by id and by inode */
        f = staging_find(&t, id);
        cr_assert_not_null(f);
        snprintf(path, sizeof(path), "%s/%s", dir, f->file.name);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(staging_find_file(&t, st.st_dev, st.st_ino), f);
        cr_assert_null(staging_find_file(&t, st.st_dev, st.st_ino + 100000));

        /* forgotten: unlinked, and the others still found */
        cr_assert_eq(staging_forget(&t, store, f), 1);
        cr_assert_eq(access(path, F_OK), -1);
        cr_assert_null(staging_find(&t, id));
        cr_assert_eq(t.n, INSTALLER_MAX_STAGED - 1);
        cr_assert_eq(count_temporaries(), INSTALLER_MAX_STAGED - 1);
        for (unsigned k = 0; k < INSTALLER_MAX_STAGED; k++) {
                make_id(k, id);
                cr_assert((k == 3) == !staging_find(&t, id), "id %u", k);
        }
        /* a failed entry holds its error, and no file */
        make_id(99, id);
        cr_assert_eq(staging_add(&t, id, 6000, &e), 0);
        cr_assert_eq(staging_set_error(e, -EFBIG, "org.teepkit.Error.LimitExceeded", "too long"), 0);
        e = staging_find(&t, id);
        cr_assert_str_eq(e->error_message, "too long");
        cr_assert_eq(e->error, -EFBIG);
        cr_assert_eq(staging_forget(&t, store, e), 0);

        cr_assert_eq(staging_clear(&t, store), INSTALLER_MAX_STAGED - 1);
        cr_assert_eq(t.n, 0);
        cr_assert_eq(count_temporaries(), 0);
}

Test(staging, expiry_drops_what_is_older_than_the_ttl) {
        StagingTable t = {};
        const uint64_t ttl = INSTALLER_STAGE_TTL_USEC;
        char id[STAGING_ID_LEN + 1];

        /* created at 1 s, 2 s, ..., 6 s */
        for (unsigned k = 0; k < 6; k++)
                (void)add_staged(&t, k, (uint64_t)(k + 1) * 1000000u);
        cr_assert_eq(staging_oldest(&t), 1000000u);

        cr_assert_eq(staging_expire(&t, store, ttl, ttl), 0, "nothing is that old yet");
        cr_assert_eq(staging_expire(&t, store, 3000000u + ttl, ttl), 3, "1 s, 2 s and 3 s");
        cr_assert_eq(t.n, 3);
        cr_assert_eq(count_temporaries(), 3);
        for (unsigned k = 0; k < 6; k++) {
                make_id(k, id);
                cr_assert((k < 3) == !staging_find(&t, id), "id %u", k);
        }
        cr_assert_eq(staging_oldest(&t), 4000000u);
        cr_assert_eq(staging_expire(&t, store, UINT64_MAX, ttl), 3);
        cr_assert_eq(count_temporaries(), 0);
        cr_assert_eq(staging_oldest(&t), UINT64_MAX);
}
