/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-macro.c: common/macro.h's GREEDY_GROW(), the one array growth the daemons share */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "macro.h"

Test(macro, grows_from_empty_to_first_then_doubles) {
        int *a = NULL;
        size_t allocated = 0;

        cr_assert_eq(GREEDY_GROW(a, allocated, 1, 8), 0);
        cr_assert_not_null(a);
        cr_assert_eq(allocated, 8);
        a[7] = 7; /* (AddressSanitizer: the whole first allocation is ours) */
        cr_assert_eq(GREEDY_GROW(a, allocated, 9, 8), 0);
        cr_assert_eq(allocated, 16);
        cr_assert_eq(a[7], 7, "growing keeps what was there");
        a[15] = 15;
        /* a need several doublings away: doubled until it fits, not to the need itself */
        cr_assert_eq(GREEDY_GROW(a, allocated, 100, 8), 0);
        cr_assert_eq(allocated, 128);
        cr_assert_eq(a[15], 15);
        free(a);
}

Test(macro, room_enough_changes_nothing) {
        int *a = NULL, *before;
        size_t allocated = 0;

        cr_assert_eq(GREEDY_GROW(a, allocated, 3, 4), 0);
        before = a;
        cr_assert_eq(GREEDY_GROW(a, allocated, 4, 4), 0);
        cr_assert_eq(GREEDY_GROW(a, allocated, 0, 4), 0);
        cr_assert_eq(a, before);
        cr_assert_eq(allocated, 4);
        free(a);
}

Test(macro, overflow_is_enomem_and_leaves_the_array) {
        int *a = NULL, *before;
        size_t allocated = 0;

        cr_assert_eq(GREEDY_GROW(a, allocated, 1, 4), 0);
        before = a;
        /* doubling would pass SIZE_MAX: refused before any allocation is asked for */
        cr_assert_eq(GREEDY_GROW(a, allocated, SIZE_MAX, 4), -ENOMEM);
        cr_assert_eq(a, before);
        cr_assert_eq(allocated, 4);
        free(a);
}
