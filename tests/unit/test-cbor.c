/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-cbor.c: the bounded CBOR layer: limits, well-formedness, reader, writer */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "teep-cbor.h"
#include "vectors.h"

static int check_hex(const char *hex, TeepError *err) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepBuf in = hexbuf(hex, &b);
        return teep_cbor_check(in, NULL, err);
}

Test(cbor, accepts_every_vector) {
        static const char *const files[] = {
                "draft-teep-protocol/query_request.hex",  "draft-teep-protocol/query_response.hex",
                "draft-teep-protocol/update.hex",         "draft-teep-protocol/success.hex",
                "draft-teep-protocol/error.hex",          "draft-teep-protocol/suit_uri.hex",
                "draft-teep-protocol/suit_integrated.hex", "draft-teep-protocol/suit_personalization.hex",
                "libteep/query_request_cose.hex",         "libteep/evidence_cose.hex",
                "suit-manifest-spec/example0.hex",        "suit-manifest-spec/example1.hex",
                "derived/query_request_sign_esp256_ed25519.hex",
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                Vector v = vector_load(files[i]);
                TeepError err = {};
                cr_expect_eq(teep_cbor_check(vector_buf(&v), NULL, &err), 0, "%s: %s", files[i], err.detail);
                vector_free(&v);
        }
}

Test(cbor, rejects_trailing_bytes) {
        TeepError err = {};
        cr_assert_eq(check_hex("0102", &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_TRAILING);
}

Test(cbor, rejects_truncation_everywhere) {
        /* every proper prefix of a real message must be refused as truncated, never read past */
        Vector v = vector_load("draft-teep-protocol/query_response.hex");
        for (size_t n = 1; n < v.len; n++) {
                uint8_t *copy = malloc(n); /* exact-size heap copy so ASan sees any overread */
                TeepError err = {};
                memcpy(copy, v.data, n);
                cr_assert_eq(teep_cbor_check(TEEP_BUF(copy, n), NULL, &err), -EBADMSG, "prefix %zu", n);
                cr_assert_eq(err.reason, TEEP_REASON_CBOR_TRUNCATED, "prefix %zu: %s", n, err.detail);
                free(copy);
        }
        vector_free(&v);
}

Test(cbor, rejects_empty_input) {
        TeepError err = {};
        cr_assert_eq(teep_cbor_check(TEEP_BUF_NULL, NULL, &err), -EBADMSG);
}

Test(cbor, rejects_indefinite_lengths) {
        const char *cases[] = { "9f01ff", "bf0102ff", "5f41aaff", "7f6161ff" };
        for (size_t i = 0; i < 4; i++) {
                TeepError err = {};
                cr_assert_eq(check_hex(cases[i], &err), -EBADMSG, "%s", cases[i]);
                cr_assert_eq(err.reason, TEEP_REASON_CBOR_INDEFINITE, "%s: %s", cases[i], err.detail);
        }
}

Test(cbor, rejects_reserved_initial_bytes) {
        const char *cases[] = { "1c", "5d", "fc", "ff" };
        for (size_t i = 0; i < 4; i++) {
                TeepError err = {};
                cr_assert_lt(check_hex(cases[i], &err), 0, "%s", cases[i]);
        }
}

Test(cbor, enforces_depth_limit) {
        TeepCborLimits lim = teep_cbor_limits_default;
        char hex[256] = "";
        TeepError err = {};

        /* 17 nested one-element arrays around a 0: depth 17 > 16 */
        for (int i = 0; i < 17; i++)
                strcat(hex, "81");
        strcat(hex, "00");
        cr_assert_eq(check_hex(hex, &err), -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_DEPTH);

        /* exactly at the limit is fine */
        hex[0] = 0;
        for (int i = 0; i < 16; i++)
                strcat(hex, "81");
        strcat(hex, "00");
        cr_assert_eq(check_hex(hex, &err), 0, "%s", err.detail);

        /* tags count as nesting too */
        lim.max_depth = 2;
        {
                _cleanup_free_ uint8_t *b = NULL;
                TeepBuf in = hexbuf("c1c1c100", &b);
                cr_assert_eq(teep_cbor_check(in, &lim, &err), -E2BIG);
                cr_assert_eq(err.reason, TEEP_REASON_CBOR_DEPTH);
        }
}

Test(cbor, refuses_counts_the_input_cannot_hold) {
        TeepError err = {};
        /* array claiming 2^32 elements with 1 byte left: refused before anything is allocated */
        cr_assert_lt(check_hex("9b000000010000000000", &err), 0);
        cr_assert(err.reason == TEEP_REASON_CBOR_ITEMS || err.reason == TEEP_REASON_CBOR_TRUNCATED);
        /* byte string claiming 2^40 bytes */
        cr_assert_lt(check_hex("5b000001000000000000", &err), 0);
        cr_assert(err.reason == TEEP_REASON_CBOR_LENGTH || err.reason == TEEP_REASON_CBOR_TRUNCATED, "%s", err.detail);
}

Test(cbor, enforces_container_string_and_item_limits) {
        TeepCborLimits lim = teep_cbor_limits_default;
        TeepError err = {};
        _cleanup_free_ uint8_t *b1 = NULL, *b2 = NULL, *b3 = NULL;

        lim.max_container = 2;
        cr_assert_eq(teep_cbor_check(hexbuf("83010203", &b1), &lim, &err), -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_ITEMS);

        lim = teep_cbor_limits_default;
        lim.max_string = 3;
        cr_assert_eq(teep_cbor_check(hexbuf("4401020304", &b2), &lim, &err), -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_LENGTH);

        lim = teep_cbor_limits_default;
        lim.max_items = 3;
        cr_assert_eq(teep_cbor_check(hexbuf("83010203", &b3), &lim, &err), -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_ITEMS);
}

Test(cbor, reader_typed_reads_and_skip) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepBuf in = hexbuf("870129" "42aabb" "626869" "a101f5" "f6" "d81840", &b);
        TeepCborReader r;
        TeepError err = {};
        uint64_t u;
        int64_t i;
        size_t n;
        TeepBuf s, raw;
        bool bv;

        cr_assert_eq(teep_cbor_check(in, NULL, &err), 0, "%s", err.detail);
        teep_cbor_reader_init(&r, in);
        cr_assert_eq(teep_cbor_read_array(&r, &n, &err), 0);
        cr_assert_eq(n, 7);
        cr_assert_eq(teep_cbor_read_uint(&r, &u, &err), 0);
        cr_assert_eq(u, 1);
        /* a uint read on a negative int is a type error that does not consume */
        cr_assert_eq(teep_cbor_read_uint(&r, &u, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_TYPE);
        cr_assert_eq(teep_cbor_read_int(&r, &i, &err), 0);
        cr_assert_eq(i, -10);
        cr_assert_eq(teep_cbor_read_bytes(&r, &s, &err), 0);
        cr_assert_eq(s.len, 2);
        cr_assert_eq(s.ptr[0], 0xaa);
        cr_assert_eq(teep_cbor_read_text(&r, &s, &err), 0);
        cr_assert_eq(memcmp(s.ptr, "hi", 2), 0);
        cr_assert_eq(teep_cbor_skip(&r, &raw), 0);
        cr_assert_eq(raw.len, 3);
        cr_assert_eq(raw.ptr[0], 0xa1);
        cr_assert_eq(teep_cbor_read_null(&r, &err), 0);
        cr_assert_eq(teep_cbor_accept_tag(&r, 99), 0);
        cr_assert_eq(teep_cbor_accept_tag(&r, 24), 1);
        cr_assert_eq(teep_cbor_read_bool(&r, &bv, &err), -EBADMSG);
        cr_assert_eq(teep_cbor_read_bytes(&r, &s, &err), 0);
        cr_assert_eq(s.len, 0);
        cr_assert(teep_cbor_reader_at_end(&r));
        cr_assert_lt(teep_cbor_read_uint(&r, &u, &err), 0, "reading past the end must fail");
}

Test(cbor, int64_range) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepCborReader r;
        int64_t i;
        TeepError err = {};
        /* -2^64 does not fit an int64 */
        teep_cbor_reader_init(&r, hexbuf("3bffffffffffffffff", &b));
        cr_assert_eq(teep_cbor_read_int(&r, &i, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_CBOR_VALUE);
}

Test(cbor, utf8_validation) {
        cr_assert(teep_utf8_is_valid(TEEP_BUF("disk-full", 9)));
        cr_assert(teep_utf8_is_valid(TEEP_BUF("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9)));
        cr_assert_not(teep_utf8_is_valid(TEEP_BUF("\xc0\xaf", 2)), "overlong");
        cr_assert_not(teep_utf8_is_valid(TEEP_BUF("\xed\xa0\x80", 3)), "surrogate");
        cr_assert_not(teep_utf8_is_valid(TEEP_BUF("\xe2\x82", 2)), "truncated");
        cr_assert_not(teep_utf8_is_valid(TEEP_BUF("\xf4\x90\x80\x80", 4)), "beyond U+10FFFF");
        cr_assert_not(teep_utf8_is_valid(TEEP_BUF("\xff", 1)));
}

Test(cbor, writer_emits_preferred_encodings) {
        TeepCborWriter w;
        uint8_t *out = NULL;
        size_t n;
        static const uint8_t want[] = {
                0x8a, 0x00, 0x17, 0x18, 0x18, 0x19, 0x01, 0x00, 0x1a, 0x00, 0x01, 0x00, 0x00,
                0x20, 0x38, 0x18, 0x39, 0xff, 0xfd, 0x42, 0xaa, 0xbb, 0x62, 0x68, 0x69,
                0xa0, /* empty map */
        };

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 10);
        teep_cbor_put_uint(&w, 0);
        teep_cbor_put_uint(&w, 23);
        teep_cbor_put_uint(&w, 24);
        teep_cbor_put_uint(&w, 256);
        teep_cbor_put_uint(&w, 65536);
        teep_cbor_put_int(&w, -1);
        teep_cbor_put_int(&w, -25);
        teep_cbor_put_int(&w, -65534);
        teep_cbor_put_bytes(&w, "\xaa\xbb", 2);
        teep_cbor_put_cstr(&w, "hi");
        teep_cbor_put_map(&w, 0);
        cr_assert_eq(teep_cbor_writer_finish(&w, &out, &n), 0);
        cr_assert_eq(n, sizeof(want));
        cr_assert_eq(memcmp(out, want, n), 0);
        free(out);
}

Test(cbor, writer_errors_are_sticky_and_bounded) {
        TeepCborWriter w;
        uint8_t *out = NULL;
        size_t n;
        static uint8_t big[128];

        teep_cbor_writer_init(&w);
        w.max = 64;
        teep_cbor_put_bytes(&w, big, sizeof(big));
        teep_cbor_put_uint(&w, 1);
        cr_assert_eq(teep_cbor_writer_finish(&w, &out, &n), -E2BIG);
        cr_assert_null(out);
}

Test(cbor, reader_and_writer_round_trip_a_vector) {
        /* re-emit every item of a preferred-encoded vector head by head: identical bytes */
        Vector v = vector_load("draft-teep-protocol/suit_personalization.hex");
        TeepCborReader r;
        TeepCborWriter w;
        uint8_t *out = NULL;
        size_t n;

        teep_cbor_reader_init(&r, vector_buf(&v));
        teep_cbor_writer_init(&w);
        while (!teep_cbor_reader_at_end(&r)) {
                TeepCborItem it;
                cr_assert_eq(teep_cbor_read(&r, &it), 0);
                switch (it.type) {
                case TEEP_CBOR_UINT: teep_cbor_put_uint(&w, it.value); break;
                case TEEP_CBOR_NEGINT: teep_cbor_put_int(&w, -1 - (int64_t)it.value); break;
                case TEEP_CBOR_BYTES: teep_cbor_put_buf(&w, it.str); break;
                case TEEP_CBOR_TEXT: teep_cbor_put_text(&w, (const char *)it.str.ptr, it.str.len); break;
                case TEEP_CBOR_ARRAY: teep_cbor_put_array(&w, it.value); break;
                case TEEP_CBOR_MAP: teep_cbor_put_map(&w, it.value); break;
                case TEEP_CBOR_TAG: teep_cbor_put_tag(&w, it.value); break;
                case TEEP_CBOR_NULL: teep_cbor_put_null(&w); break;
                case TEEP_CBOR_TRUE: teep_cbor_put_bool(&w, true); break;
                case TEEP_CBOR_FALSE: teep_cbor_put_bool(&w, false); break;
                default: cr_assert_fail("unexpected item type %d", it.type);
                }
        }
        cr_assert_eq(teep_cbor_writer_finish(&w, &out, &n), 0);
        cr_assert_eq(n, v.len);
        cr_assert_eq(memcmp(out, v.data, n), 0);
        free(out);
        vector_free(&v);
}
