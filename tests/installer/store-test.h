/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store-test.h: what the store's unit tests share */
#pragma once

#include <criterion/criterion.h>
#include <dirent.h>

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
