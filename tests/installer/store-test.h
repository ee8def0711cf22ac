/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store-test.h: what the store's unit tests share */
#pragma once

#include <criterion/criterion.h>
#include <dirent.h>

#include "store.h"

/* The ".teep-tmp-" files in directory d (temporaries, staged payloads). */
static inline unsigned store_test_count_temporaries(const char *d) {
        DIR *dp = opendir(d);
        struct dirent *de;
        unsigned n = 0;

        cr_assert_not_null(dp);
        while ((de = readdir(dp)))
                if (store_name_is_temporary(de->d_name))
                        n++;
        closedir(dp);
        return n;
}
