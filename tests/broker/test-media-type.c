/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media-type.c: which Content-Type of a TAM response is relayed to the agent */
#include <criterion/criterion.h>

#include "media-type.h"

Test(media_type, the_teep_type_in_any_spelling) {
        cr_assert_eq(media_type_classify("application/teep+cbor"), MEDIA_TYPE_TEEP);
        cr_assert_eq(media_type_classify("Application/TEEP+CBOR"), MEDIA_TYPE_TEEP);
        cr_assert_eq(media_type_classify("application/teep+cbor; charset=binary"), MEDIA_TYPE_TEEP);
        cr_assert_eq(media_type_classify("  application/teep+cbor  ;x=y"), MEDIA_TYPE_TEEP);
        cr_assert_eq(media_type_classify("application/teep+cbor "), MEDIA_TYPE_TEEP);
}

Test(media_type, other_teep_labels_are_tolerated) {
        cr_assert_eq(media_type_classify("application/teep+cose"), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify("application/teep"), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify("application/cbor"), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify("application/cose; cose-type=\"cose-sign1\""), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify("application/octet-stream"), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify(NULL), MEDIA_TYPE_TOLERATED);
        cr_assert_eq(media_type_classify(""), MEDIA_TYPE_TOLERATED);
}

Test(media_type, obviously_wrong_types_are_refused) {
        cr_assert_eq(media_type_classify("text/html"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("text/html; charset=utf-8"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("text/plain"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("application/json"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("application/teep+json"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("application/problem+json"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("application/teep+cborx"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("application/teep+cbo"), MEDIA_TYPE_REFUSED);
        cr_assert_eq(media_type_classify("multipart/form-data"), MEDIA_TYPE_REFUSED);
        cr_assert_str_eq(media_type_verdict_to_string(MEDIA_TYPE_REFUSED), "refused");
}
