/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store-test.h: what the store's unit tests share */
#pragma once

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

/* The entries of directory d whose name the store's predicate (store_name_is_*()) accepts. */
static inline unsigned store_test_count_names(const char *d, bool (*is)(const char *name)) {
        DIR *dp = opendir(d);
        struct dirent *de;
        unsigned n = 0;

        cr_assert_not_null(dp);
        while ((de = readdir(dp)))
                if (is(de->d_name))
                        n++;
        closedir(dp);
        return n;
}

/* The ".teep-tmp-" files in directory d (temporaries, staged payloads). */
static inline unsigned store_test_count_temporaries(const char *d) {
        return store_test_count_names(d, store_name_is_temporary);
}

/* A fresh directory from template (ending in XXXXXX) into dir (as large as template). */
static inline void store_test_mkdtemp(char *dir, const char *template) {
        strcpy(dir, template);
        cr_assert_not_null(mkdtemp(dir));
}

/* Remove directory dir with the files and empty directories in it. */
static inline void store_test_rmtree(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                (void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        closedir(d);
        (void)rmdir(dir);
}
