/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-errors.c: reason names, error recording and the errno mapping table */

#include <criterion/criterion.h>
#include <string.h>

#include "teep-errors.h"
#include "teep-protocol.h"

Test(errors, every_reason_has_a_distinct_name) {
        for (int a = 0; a < _TEEP_REASON_MAX; a++) {
                const char *na = teep_reason_to_string((TeepReason)a);
                cr_assert_neq(strcmp(na, "unknown"), 0, "reason %d has no name", a);
                for (int b = a + 1; b < _TEEP_REASON_MAX; b++)
                        cr_assert_neq(strcmp(na, teep_reason_to_string((TeepReason)b)), 0, "%d and %d share %s", a, b, na);
        }
        cr_assert_str_eq(teep_reason_to_string(_TEEP_REASON_MAX), "unknown");
}

Test(errors, set_and_prefix_keep_reason_and_errno) {
        TeepError err = {};
        cr_assert_eq(teep_error_set(&err, -E2BIG, TEEP_REASON_CBOR_DEPTH, "nesting deeper than %u", 16u), -E2BIG);
        cr_assert_eq(teep_error_prefix(&err, -E2BIG, "offset %d", 7), -E2BIG);
        cr_assert_str_eq(err.detail, "offset 7: nesting deeper than 16");
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_DEPTH);
        /* NULL is allowed: the errno still comes back */
        cr_assert_eq(teep_error_set(NULL, -EBADMSG, TEEP_REASON_CBOR_TYPE, "x"), -EBADMSG);
}

Test(errors, prefix_never_overflows) {
        TeepError err = {};
        char longs[400];
        memset(longs, 'a', sizeof(longs) - 1);
        longs[sizeof(longs) - 1] = 0;
        teep_error_set(&err, -EBADMSG, TEEP_REASON_CBOR_TYPE, "%s", longs);
        teep_error_prefix(&err, -EBADMSG, "%s", longs);
        cr_assert_lt(strlen(err.detail), sizeof(err.detail));
}

Test(errors, one_table_maps_each_boundary) {
        const TeepErrnoMapping *m;

        m = teep_errno_mapping(-EKEYREJECTED);
        cr_assert_eq(m->teep_err_code, TEEP_ERR_PERMANENT_ERROR);
        cr_assert_str_eq(m->dbus_name, "org.teepkit.Error.TrustFailure");
        cr_assert_eq(m->exit_code, 77);
        cr_assert_eq(teep_errno_mapping(EKEYREJECTED), m, "sign of the errno does not matter");

        m = teep_errno_mapping(-EOPNOTSUPP);
        cr_assert_eq(m->teep_err_code, TEEP_ERR_UNSUPPORTED_CIPHER_SUITES);
        m = teep_errno_mapping(-ENOMEM);
        cr_assert_eq(m->teep_err_code, TEEP_ERR_TEMPORARY_ERROR);
        m = teep_errno_mapping(-EBADMSG);
        cr_assert_eq(m->exit_code, 65);

        /* an errno outside the vocabulary still maps to something a boundary can send */
        m = teep_errno_mapping(-EXDEV);
        cr_assert_eq(m->teep_err_code, TEEP_ERR_TEMPORARY_ERROR);
        cr_assert_str_eq(m->dbus_name, "org.teepkit.Error.Failed");
        cr_assert_eq(m->exit_code, 1);
}
