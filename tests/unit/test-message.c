/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-message.c: TEEP message decode/encode against the shared vectors and hand-built negatives */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "teep-message.h"
#include "vectors.h"

static const uint8_t token16[16] = {
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
};

/* ---- helpers ---- */

static void assert_buf(TeepBuf got, const void *want, size_t n, const char *what) {
        cr_assert_eq(got.len, n, "%s: %zu bytes, want %zu", what, got.len, n);
        cr_assert(n == 0 || memcmp(got.ptr, want, n) == 0, "%s: content differs", what);
}

static void assert_text(TeepBuf got, const char *want, const char *what) {
        assert_buf(got, want, strlen(want), what);
}

/* Hex literal into a buffer the test frees. */
static Vector hex(const char *s) {
        Vector v = {};
        cr_assert_eq(unhex(s, strlen(s), &v.data, &v.len), 0, "bad hex literal %s", s);
        return v;
}

static TeepMessage *decode_ok(TeepBuf in, const char *what) {
        TeepMessage *m = NULL;
        TeepError err = {};
        int r = teep_message_decode(in, &m, &err);
        cr_assert_eq(r, 0, "%s: decode failed %d, %s: %s", what, r, teep_reason_to_string(err.reason),
                     err.detail);
        cr_assert_not_null(m);
        return m;
}

static void expect_reject(TeepBuf in, int want, TeepReason reason, const char *what) {
        TeepMessage *m = NULL;
        TeepError err = {};
        int r = teep_message_decode(in, &m, &err);
        cr_assert_eq(r, want, "%s: got %d, want %d (%s: %s)", what, r, want,
                     teep_reason_to_string(err.reason), err.detail);
        cr_assert_eq(err.reason, reason, "%s: reason %s, want %s (%s)", what,
                     teep_reason_to_string(err.reason), teep_reason_to_string(reason), err.detail);
        cr_assert_eq(err.error, want, "%s: err.error %d", what, err.error);
        cr_assert_null(m, "%s: *ret touched on failure", what);
}

/* Finish a writer into a Vector (so it can use the Vector helpers). */
static Vector built(TeepCborWriter *w) {
        Vector v = {};
        cr_assert_eq(teep_cbor_writer_finish(w, &v.data, &v.len), 0, "writer failed");
        return v;
}

static void expect_reject_w(TeepCborWriter *w, int want, TeepReason reason, const char *what) {
        Vector v = built(w);
        expect_reject(vector_buf(&v), want, reason, what);
        vector_free(&v);
}

/* Encode m and compare with want. */
static void expect_encoding(const TeepMessage *m, TeepBuf want, const char *what) {
        uint8_t *out = NULL;
        size_t len = 0;
        int r = teep_message_encode(m, &out, &len);
        cr_assert_eq(r, 0, "%s: encode failed %d", what, r);
        cr_assert_eq(len, want.len, "%s: encoded %zu bytes, want %zu", what, len, want.len);
        cr_assert(memcmp(out, want.ptr, len) == 0, "%s: encoding differs from the input", what);
        free(out);
}

static void put_token(TeepCborWriter *w) {
        teep_cbor_put_uint(w, TEEP_LABEL_TOKEN);
        teep_cbor_put_bytes(w, token16, sizeof(token16));
}

/* The positional tail of a valid QueryRequest: [[[18,-9]]], [[-16,-9,-29,-65534]], 3. */
static void put_qr_tail(TeepCborWriter *w) {
        teep_cbor_put_array(w, 1);
        teep_cbor_put_array(w, 1);
        teep_cbor_put_array(w, 2);
        teep_cbor_put_uint(w, COSE_TAG_SIGN1);
        teep_cbor_put_int(w, COSE_ALG_ESP256);
        teep_cbor_put_array(w, 1);
        teep_cbor_put_array(w, 4);
        teep_cbor_put_int(w, COSE_ALG_SHA256);
        teep_cbor_put_int(w, COSE_ALG_ESP256);
        teep_cbor_put_int(w, COSE_ALG_ECDH_ES_A128KW);
        teep_cbor_put_int(w, COSE_ALG_A128CTR);
        teep_cbor_put_uint(w, TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS);
}

/* Arity of each message type, and its positional tail, so one option can be tried in each. */
static size_t arity_of(TeepMessageType type) {
        return type == TEEP_TYPE_QUERY_REQUEST ? 5 : type == TEEP_TYPE_ERROR ? 3 : 2;
}

static void put_tail(TeepCborWriter *w, TeepMessageType type) {
        if (type == TEEP_TYPE_QUERY_REQUEST)
                put_qr_tail(w);
        else if (type == TEEP_TYPE_ERROR)
                teep_cbor_put_uint(w, TEEP_ERR_PERMANENT_ERROR);
}

/* Start [type, {label: <the caller writes the value>}, then call put_tail()]. */
static void begin_one_option(TeepCborWriter *w, TeepMessageType type, uint64_t label) {
        teep_cbor_writer_init(w);
        teep_cbor_put_array(w, arity_of(type));
        teep_cbor_put_uint(w, type);
        teep_cbor_put_map(w, 1);
        teep_cbor_put_uint(w, label);
}

/* Payload of a COSE_Sign1_Tagged (read by hand: teep-cose is another module). */
static TeepBuf sign1_payload(TeepBuf cose) {
        TeepCborReader r;
        TeepBuf payload;
        size_t n;

        teep_cbor_reader_init(&r, cose);
        cr_assert_eq(teep_cbor_accept_tag(&r, COSE_TAG_SIGN1), 1);
        cr_assert_eq(teep_cbor_read_array(&r, &n, NULL), 0);
        cr_assert_eq(n, 4);
        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
        cr_assert_eq(teep_cbor_read_bytes(&r, &payload, NULL), 0);
        return payload;
}

/* ---- the draft's examples (App. D) ---- */

Test(message, draft_query_request) {
        static const int64_t profiles[4][4] = {
                { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR },
                { COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR },
                { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128GCM },
                { COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_CHACHA20_POLY1305 },
        };
        Vector v = vector_load("draft-teep-protocol/query_request.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "query_request");

        cr_assert_eq(m->type, TEEP_TYPE_QUERY_REQUEST);
        cr_assert(m->has_token);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert(m->has_versions);
        cr_assert_eq(m->n_versions, 1);
        cr_assert_eq(m->versions[0], 0);
        cr_assert_not(m->has_challenge);
        cr_assert_not(m->has_supported_freshness_mechanisms);
        cr_assert_not(m->has_attestation_payload);

        cr_assert_eq(m->n_supported_cipher_suites, 2);
        cr_assert_eq(m->supported_cipher_suites[0].n_ops, 1);
        cr_assert_eq(m->supported_cipher_suites[0].ops[0].cose_tag, COSE_TAG_SIGN1);
        cr_assert_eq(m->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ESP256);
        cr_assert_eq(m->supported_cipher_suites[1].n_ops, 1);
        cr_assert_eq(m->supported_cipher_suites[1].ops[0].cose_tag, COSE_TAG_SIGN1);
        cr_assert_eq(m->supported_cipher_suites[1].ops[0].alg, COSE_ALG_ED25519);

        cr_assert_eq(m->n_supported_suit_cose_profiles, 4);
        for (size_t i = 0; i < 4; i++) {
                cr_assert_eq(m->supported_suit_cose_profiles[i].n_algs, 4);
                for (size_t j = 0; j < 4; j++)
                        cr_assert_eq(m->supported_suit_cose_profiles[i].algs[j], profiles[i][j],
                                     "profile %zu alg %zu", i, j);
        }
        cr_assert_eq(m->data_item_requested, TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS);

        teep_message_free(m);
        vector_free(&v);
}

Test(message, draft_query_response) {
        static const uint8_t id[15] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
        Vector v = vector_load("draft-teep-protocol/query_response.hex");
        Vector digest = hex("a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609");
        TeepMessage *m = decode_ok(vector_buf(&v), "query_response");
        TeepBuf d;
        int64_t alg = 0;

        cr_assert_eq(m->type, TEEP_TYPE_QUERY_RESPONSE);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert(m->has_selected_version);
        cr_assert_eq(m->selected_version, 0);
        cr_assert(m->has_attestation_payload);
        cr_assert_eq(m->attestation_payload.len, 0);
        cr_assert_not(m->has_attestation_payload_format);

        cr_assert(m->has_tc_list);
        cr_assert_eq(m->n_tc_list, 1);
        cr_assert_eq(m->tc_list[0].component_id.n_segments, 1);
        assert_buf(m->tc_list[0].component_id.segments[0], id, sizeof(id), "component id");
        cr_assert_eq(m->tc_list[0].n_claims, 1);
        cr_assert_eq(m->tc_list[0].claims[0].label, TEEP_CLAIM_IMAGE_DIGEST);
        cr_assert_eq(teep_claims_get_image_digest(&m->tc_list[0], &alg, &d), 0);
        cr_assert_eq(alg, COSE_ALG_SHA256);
        assert_buf(d, digest.data, digest.len, "image digest");

        teep_message_free(m);
        vector_free(&digest);
        vector_free(&v);
}

Test(message, draft_update) {
        Vector v = vector_load("draft-teep-protocol/update.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "update");

        cr_assert_eq(m->type, TEEP_TYPE_UPDATE);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert(m->has_manifest_list);
        cr_assert_eq(m->n_manifest_list, 1);
        /* bstr head 59 014e: a 334-byte envelope, itself a map (a2) */
        cr_assert_eq(m->manifest_list[0].len, 334);
        cr_assert_eq(m->manifest_list[0].ptr[0], 0xa2);
        cr_assert_not(m->has_unneeded_manifest_list);
        cr_assert_not(m->has_err_code);

        teep_message_free(m);
        vector_free(&v);
}

Test(message, draft_success) {
        Vector v = vector_load("draft-teep-protocol/success.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "success");

        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert_not(m->has_msg);
        cr_assert_not(m->has_suit_reports);

        teep_message_free(m);
        vector_free(&v);
}

Test(message, draft_error) {
        Vector v = vector_load("draft-teep-protocol/error.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "error");

        cr_assert_eq(m->type, TEEP_TYPE_ERROR);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert(m->has_err_msg);
        assert_text(m->err_msg, "disk-full", "err-msg");
        cr_assert(m->has_err_code);
        cr_assert_eq(m->err_code, 17);
        cr_assert_eq(m->err_code, TEEP_ERR_MANIFEST_PROCESSING_FAILED);
        cr_assert_str_eq(teep_err_code_to_string(m->err_code), "ERR_MANIFEST_PROCESSING_FAILED");
        cr_assert_not(m->has_err_lang);

        teep_message_free(m);
        vector_free(&v);
}

/* ---- libteep's files (draft-12 era, legacy algs) ---- */

Test(message, libteep_query_request_legacy_algs) {
        Vector v = vector_load("libteep/query_request.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "libteep query_request");

        cr_assert_eq(m->type, TEEP_TYPE_QUERY_REQUEST);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert_eq(m->n_versions, 1);
        cr_assert_eq(m->versions[0], 0);
        cr_assert_eq(m->n_supported_cipher_suites, 2);
        cr_assert_eq(m->supported_cipher_suites[0].ops[0].cose_tag, COSE_TAG_SIGN1);
        cr_assert_eq(m->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ES256);
        cr_assert_eq(m->supported_cipher_suites[1].ops[0].alg, COSE_ALG_EDDSA);
        cr_assert_eq(m->n_supported_suit_cose_profiles, 2);
        cr_assert_eq(m->supported_suit_cose_profiles[0].algs[1], COSE_ALG_ES256);
        cr_assert_eq(m->supported_suit_cose_profiles[1].algs[1], COSE_ALG_EDDSA);
        cr_assert_eq(m->supported_suit_cose_profiles[1].algs[3], COSE_ALG_A128CTR);
        cr_assert_eq(m->data_item_requested, 3);

        teep_message_free(m);
        vector_free(&v);
}

Test(message, libteep_query_response_ignores_option_5) {
        static const uint8_t id2[15] = { 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
        static const uint8_t option5[] = { 0x05, 0x81, 0x82, 0x12, 0x26 }; /* 5: [[18, -7]] */
        static const uint8_t version[] = { 0x83, 0x01, 0x00, 0x00 };       /* [1, 0, 0] */
        Vector v = vector_load("libteep/query_response.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "libteep query_response");
        uint8_t *want;
        size_t at = 0;
        TeepBuf raw;

        cr_assert_eq(m->type, TEEP_TYPE_QUERY_RESPONSE);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert(m->has_selected_version);
        cr_assert_eq(m->selected_version, 0);
        cr_assert_eq(m->n_tc_list, 2);
        cr_assert_eq(teep_claims_get_image_digest(&m->tc_list[0], NULL, NULL), 0);
        assert_buf(m->tc_list[1].component_id.segments[0], id2, sizeof(id2), "second component id");
        cr_assert_eq(teep_claims_get_image_digest(&m->tc_list[1], NULL, NULL), -ENOENT);
        cr_assert_eq(teep_claims_find(&m->tc_list[1], 28, &raw), 0);
        assert_buf(raw, version, sizeof(version), "suit-parameter-version raw value");

        /* the re-encoding is the input without option 5 (map a4 -> a3): 5 was ignored, nothing else lost */
        for (at = 0; at + sizeof(option5) <= v.len; at++)
                if (memcmp(v.data + at, option5, sizeof(option5)) == 0)
                        break;
        cr_assert(at + sizeof(option5) <= v.len, "option 5 not found in the vector");
        want = malloc(v.len);
        cr_assert_not_null(want);
        memcpy(want, v.data, at);
        memcpy(want + at, v.data + at + sizeof(option5), v.len - at - sizeof(option5));
        cr_assert_eq(want[2], 0xa4);
        want[2] = 0xa3;
        expect_encoding(m, TEEP_BUF(want, v.len - sizeof(option5)), "libteep query_response without 5");

        free(want);
        teep_message_free(m);
        vector_free(&v);
}

Test(message, libteep_update_success_error_match_draft) {
        static const char *const names[] = { "update", "success", "error" };

        for (size_t i = 0; i < 3; i++) {
                char a[128], b[128];
                snprintf(a, sizeof(a), "libteep/%s.hex", names[i]);
                snprintf(b, sizeof(b), "draft-teep-protocol/%s.hex", names[i]);
                Vector lv = vector_load(a), dv = vector_load(b);
                TeepMessage *m = decode_ok(vector_buf(&lv), a);

                cr_assert(teep_buf_eq(vector_buf(&lv), vector_buf(&dv)), "%s differs from the draft", a);
                expect_encoding(m, vector_buf(&dv), a);
                teep_message_free(m);
                vector_free(&lv);
                vector_free(&dv);
        }
}

/* ---- derived vectors ---- */

Test(message, derived_update_install_suit_uri) {
        Vector v = vector_load("derived/update_install_suit_uri.hex");
        Vector envelope = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "update_install_suit_uri");

        cr_assert_eq(m->type, TEEP_TYPE_UPDATE);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert_eq(m->n_manifest_list, 1);
        assert_buf(m->manifest_list[0], envelope.data, envelope.len,
                   "manifest = the draft's suit_uri envelope");
        cr_assert_not(m->has_unneeded_manifest_list);

        teep_message_free(m);
        vector_free(&envelope);
        vector_free(&v);
}

Test(message, derived_update_unlink) {
        static const uint8_t uuid[16] = {
                0x8d, 0x82, 0x57, 0x3a, 0x92, 0x6d, 0x47, 0x54,
                0x93, 0x53, 0x32, 0xdc, 0x29, 0x99, 0x7f, 0x74,
        };
        Vector v = vector_load("derived/update_unlink.hex");
        TeepMessage *m = decode_ok(vector_buf(&v), "update_unlink");
        const TeepSuitComponentId *id;

        cr_assert_eq(m->type, TEEP_TYPE_UPDATE);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert_not(m->has_manifest_list);
        cr_assert(m->has_unneeded_manifest_list);
        cr_assert_eq(m->n_unneeded_manifest_list, 1);
        id = &m->unneeded_manifest_list[0];
        cr_assert_eq(id->n_segments, 4);
        assert_text(id->segments[0], "TEEP-Device", "part 0");
        assert_text(id->segments[1], "SecureFS", "part 1");
        assert_buf(id->segments[2], uuid, sizeof(uuid), "part 2");
        assert_text(id->segments[3], "suit", "part 3");

        teep_message_free(m);
        vector_free(&v);
}

/* ---- component ids: the teep-component.h bounds (16 segments of at most 255 bytes) ---- */

/* An Update {15: [[n segments of seg_len bytes 0xab]]}. */
static Vector update_unneeded(size_t n, size_t seg_len) {
        uint8_t ab[TEEP_COMPONENT_MAX_SEGMENT_LEN + 1];
        TeepCborWriter w;

        cr_assert_leq(seg_len, sizeof(ab));
        memset(ab, 0xab, sizeof(ab));
        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_UNNEEDED_MANIFEST_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, n);
        for (size_t i = 0; i < n; i++)
                teep_cbor_put_bytes(&w, ab, seg_len);
        return built(&w);
}

Test(message, unneeded_manifest_component_id_bounds) {
        Vector v = update_unneeded(TEEP_COMPONENT_MAX_SEGMENTS, 1);
        TeepMessage *m = decode_ok(vector_buf(&v), "16 segments");
        const TeepSuitComponentId *id;

        cr_assert_eq(m->n_unneeded_manifest_list, 1);
        id = &m->unneeded_manifest_list[0];
        cr_assert_eq(id->n_segments, 16);
        for (size_t i = 0; i < id->n_segments; i++)
                assert_buf(id->segments[i], "\xab", 1, "segment");
        /* raw is the encoded identifier, a view into the payload: 90 then 16 x 41 ab */
        cr_assert_eq(id->raw.len, 1 + 16 * 2);
        cr_assert_eq(id->raw.ptr[0], 0x90);
        cr_assert(id->raw.ptr >= v.data && id->raw.ptr + id->raw.len <= v.data + v.len);
        expect_encoding(m, vector_buf(&v), "16 segments");
        teep_message_free(m);
        vector_free(&v);

        v = update_unneeded(TEEP_COMPONENT_MAX_SEGMENTS + 1, 1);
        expect_reject(vector_buf(&v), -E2BIG, TEEP_REASON_SUIT_COMPONENT, "17 segments");
        vector_free(&v);

        v = update_unneeded(1, TEEP_COMPONENT_MAX_SEGMENT_LEN);
        m = decode_ok(vector_buf(&v), "255-byte segment");
        cr_assert_eq(m->unneeded_manifest_list[0].segments[0].len, 255);
        teep_message_free(m);
        vector_free(&v);

        v = update_unneeded(1, TEEP_COMPONENT_MAX_SEGMENT_LEN + 1);
        expect_reject(vector_buf(&v), -E2BIG, TEEP_REASON_SUIT_COMPONENT, "256-byte segment");
        vector_free(&v);

        /* an empty identifier is well-formed */
        v = update_unneeded(0, 0);
        m = decode_ok(vector_buf(&v), "empty component id");
        cr_assert_eq(m->unneeded_manifest_list[0].n_segments, 0);
        expect_encoding(m, vector_buf(&v), "empty component id");
        teep_message_free(m);
        vector_free(&v);

        /* an element that is not an array is a type fault of the message, like a text segment */
        TeepCborWriter w;
        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_UNNEEDED_MANIFEST_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_bytes(&w, "ta", 2);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "component id as bstr");
}

Test(message, tc_and_requested_component_id_bounds) {
        TeepCborWriter w;

        /* tc-list [{0: [17 x h''], 14: 1}] */
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, TEEP_CLAIM_COMPONENT_ID);
        teep_cbor_put_array(&w, TEEP_COMPONENT_MAX_SEGMENTS + 1);
        for (size_t i = 0; i < TEEP_COMPONENT_MAX_SEGMENTS + 1; i++)
                teep_cbor_put_bytes(&w, "", 0);
        teep_cbor_put_uint(&w, 14);
        teep_cbor_put_uint(&w, 1);
        expect_reject_w(&w, -E2BIG, TEEP_REASON_SUIT_COMPONENT, "tc-list: 17 segments");

        /* requested-tc-list [{16: [17 x h'']}] */
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_REQUESTED_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
        teep_cbor_put_array(&w, TEEP_COMPONENT_MAX_SEGMENTS + 1);
        for (size_t i = 0; i < TEEP_COMPONENT_MAX_SEGMENTS + 1; i++)
                teep_cbor_put_bytes(&w, "", 0);
        expect_reject_w(&w, -E2BIG, TEEP_REASON_SUIT_COMPONENT, "requested-tc-list: 17 segments");

        /* requested-tc-list [{16: [h'ab', "ta"]}]: a text segment */
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_REQUESTED_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_bytes(&w, "\xab", 1);
        teep_cbor_put_cstr(&w, "ta");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "requested-tc-list: text segment");
}

/* ---- decode -> encode is byte-identical for every preferred-encoded vector ---- */

Test(message, round_trip_vectors) {
        static const char *const files[] = {
                "draft-teep-protocol/query_request.hex",  "draft-teep-protocol/query_response.hex",
                "draft-teep-protocol/update.hex",         "draft-teep-protocol/success.hex",
                "draft-teep-protocol/error.hex",          "libteep/query_request.hex",
                "libteep/update.hex",                     "libteep/success.hex",
                "libteep/error.hex",                      "derived/update_install_suit_uri.hex",
                "derived/update_unlink.hex",
        };

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                Vector v = vector_load(files[i]);
                TeepMessage *m = decode_ok(vector_buf(&v), files[i]);
                expect_encoding(m, vector_buf(&v), files[i]);
                teep_message_free(m);
                vector_free(&v);
        }
}

Test(message, signed_payloads_decode) {
        /* the payloads inside the signed derived vectors are the draft's messages */
        static const char *const pairs[][2] = {
                { "derived/query_request_sign1_esp256.hex", "draft-teep-protocol/query_request.hex" },
                { "derived/query_response_sign1_esp256.hex", "draft-teep-protocol/query_response.hex" },
                { "derived/success_sign1_esp256.hex", "draft-teep-protocol/success.hex" },
                { "derived/error_sign1_esp256.hex", "draft-teep-protocol/error.hex" },
                { "derived/update_unlink_sign1_esp256.hex", "derived/update_unlink.hex" },
        };

        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
                Vector s = vector_load(pairs[i][0]), p = vector_load(pairs[i][1]);
                TeepBuf payload = sign1_payload(vector_buf(&s));
                TeepMessage *m = decode_ok(payload, pairs[i][0]);

                cr_assert(teep_buf_eq(payload, vector_buf(&p)), "%s: payload differs", pairs[i][0]);
                expect_encoding(m, payload, pairs[i][0]);
                teep_message_free(m);
                vector_free(&s);
                vector_free(&p);
        }
}

/* ---- libteep's negative and legacy QueryRequests ---- */

Test(message, libteep_negative_err1_arity) {
        Vector v = vector_load("libteep/negative/query_request_err1.hex");
        expect_reject(vector_buf(&v), -EBADMSG, TEEP_REASON_MSG_ARITY, "err1");
        vector_free(&v);
}

Test(message, libteep_negative_err2_suite_type) {
        Vector v = vector_load("libteep/negative/query_request_err2.hex");
        expect_reject(vector_buf(&v), -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "err2");
        vector_free(&v);
}

Test(message, libteep_negative_err3_token_size) {
        Vector v = vector_load("libteep/negative/query_request_err3.hex");
        expect_reject(vector_buf(&v), -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE, "err3");
        vector_free(&v);
}

Test(message, libteep_negative_signed_payloads) {
        static const char *const names[] = { "err1", "err2", "err3" };
        static const TeepReason want[] = {
                TEEP_REASON_MSG_ARITY, TEEP_REASON_MSG_FIELD_TYPE, TEEP_REASON_MSG_FIELD_SIZE,
        };

        for (size_t i = 0; i < 3; i++) {
                char path[128];
                snprintf(path, sizeof(path), "libteep/negative/query_request_%s_cose.hex", names[i]);
                Vector v = vector_load(path);
                expect_reject(sign1_payload(vector_buf(&v)), -EBADMSG, want[i], path);
                vector_free(&v);
        }
}

Test(message, libteep_legacy_query_request) {
        /* [1, {20: token, 1: [[-7, null, null]], 3: [0]}, 3]: draft-0x suites inside the options */
        static const char *const files[] = {
                "libteep/legacy/query_request_es256_cose.hex",
                "libteep/legacy/query_request_es384_cose.hex",
        };

        for (size_t i = 0; i < 2; i++) {
                Vector v = vector_load(files[i]);
                /* option 1's suite [-7, null, null] is not an array of [tag, alg] operations */
                expect_reject(sign1_payload(vector_buf(&v)), -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, files[i]);
                vector_free(&v);
        }

        /* the same legacy shape with well-typed options still fails on its 3 elements */
        TeepCborWriter w;
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 3);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 2);
        put_token(&w);
        teep_cbor_put_uint(&w, TEEP_LABEL_VERSIONS);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_uint(&w, 0);
        teep_cbor_put_uint(&w, 3);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_ARITY, "legacy shape");
}

/* ---- framing ---- */

Test(message, not_an_array) {
        static const uint8_t map[] = { 0xa0 }, uint5[] = { 0x05 }, tagged[] = { 0xd2, 0x82, 0x05, 0xa0 };
        expect_reject(TEEP_BUF(map, 1), -EBADMSG, TEEP_REASON_MSG_NOT_ARRAY, "map");
        expect_reject(TEEP_BUF(uint5, 1), -EBADMSG, TEEP_REASON_MSG_NOT_ARRAY, "uint");
        expect_reject(TEEP_BUF(tagged, sizeof(tagged)), -EBADMSG, TEEP_REASON_MSG_NOT_ARRAY, "tagged array");
        expect_reject(TEEP_BUF(NULL, 0), -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "empty input");
}

Test(message, unknown_types) {
        static const uint8_t t4[] = { 0x82, 0x04, 0xa0 }, t99[] = { 0x82, 0x18, 0x63, 0xa0 },
                             t0[] = { 0x82, 0x00, 0xa0 }, t99short[] = { 0x81, 0x18, 0x63 };
        expect_reject(TEEP_BUF(t4, sizeof(t4)), -EPROTO, TEEP_REASON_MSG_TYPE_UNKNOWN, "type 4");
        expect_reject(TEEP_BUF(t99, sizeof(t99)), -EPROTO, TEEP_REASON_MSG_TYPE_UNKNOWN, "type 99");
        expect_reject(TEEP_BUF(t0, sizeof(t0)), -EPROTO, TEEP_REASON_MSG_TYPE_UNKNOWN, "type 0");
        expect_reject(TEEP_BUF(t99short, sizeof(t99short)), -EPROTO, TEEP_REASON_MSG_TYPE_UNKNOWN, "[99]");
}

Test(message, type_of_wrong_cbor_type) {
        static const uint8_t neg[] = { 0x82, 0x20, 0xa0 }, text[] = { 0x82, 0x61, 0x31, 0xa0 };
        expect_reject(TEEP_BUF(neg, sizeof(neg)), -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "type -1");
        expect_reject(TEEP_BUF(text, sizeof(text)), -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "type \"1\"");
}

Test(message, arity) {
        static const uint8_t empty[] = { 0x80 }, only_type[] = { 0x81, 0x05 },
                             success3[] = { 0x83, 0x05, 0xa0, 0x01 }, error2[] = { 0x82, 0x06, 0xa0 },
                             update3[] = { 0x83, 0x03, 0xa0, 0xa0 }, qr2[] = { 0x82, 0x01, 0xa0 };
        expect_reject(TEEP_BUF(empty, sizeof(empty)), -EBADMSG, TEEP_REASON_MSG_ARITY, "[]");
        expect_reject(TEEP_BUF(only_type, sizeof(only_type)), -EBADMSG, TEEP_REASON_MSG_ARITY, "[5]");
        expect_reject(TEEP_BUF(success3, sizeof(success3)), -EBADMSG, TEEP_REASON_MSG_ARITY, "success of 3");
        expect_reject(TEEP_BUF(error2, sizeof(error2)), -EBADMSG, TEEP_REASON_MSG_ARITY, "error of 2");
        expect_reject(TEEP_BUF(update3, sizeof(update3)), -EBADMSG, TEEP_REASON_MSG_ARITY, "update of 3");
        expect_reject(TEEP_BUF(qr2, sizeof(qr2)), -EBADMSG, TEEP_REASON_MSG_ARITY, "query-request of 2");

        /* QueryRequest of 6 elements */
        TeepCborWriter w;
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 6);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        put_qr_tail(&w);
        teep_cbor_put_uint(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_ARITY, "query-request of 6");
}

Test(message, options_not_a_uint_keyed_map) {
        static const uint8_t array[] = {0x82, 0x05, 0x80}, text_key[] = {0x82, 0x05, 0xa1, 0x61, 0x61, 0x01},
                             neg_key[] = {0x82, 0x05, 0xa1, 0x20, 0x01}, bstr[] = {0x82, 0x05, 0x40};
        expect_reject(TEEP_BUF(array, sizeof(array)), -EBADMSG, TEEP_REASON_MSG_OPTIONS, "options []");
        expect_reject(TEEP_BUF(bstr, sizeof(bstr)), -EBADMSG, TEEP_REASON_MSG_OPTIONS, "options h''");
        expect_reject(TEEP_BUF(text_key, sizeof(text_key)), -EBADMSG, TEEP_REASON_MSG_OPTIONS, "text key");
        expect_reject(TEEP_BUF(neg_key, sizeof(neg_key)), -EBADMSG, TEEP_REASON_MSG_OPTIONS, "negative key");
}

Test(message, trailing_bytes) {
        Vector v = vector_load("draft-teep-protocol/success.hex");
        uint8_t *longer = malloc(v.len + 1);

        cr_assert_not_null(longer);
        memcpy(longer, v.data, v.len);
        longer[v.len] = 0x00;
        expect_reject(TEEP_BUF(longer, v.len + 1), -EBADMSG, TEEP_REASON_CBOR_TRAILING, "trailing byte");
        /* and one byte short */
        expect_reject(TEEP_BUF(v.data, v.len - 1), -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "truncated");
        free(longer);
        vector_free(&v);
}

Test(message, indefinite_lengths) {
        /* [5, {_ 20: token }] and [_ 5, {}] */
        Vector map = hex("8205bf1450a0a1a2a3a4a5a6a7a8a9aaabacadaeafff");
        Vector array = hex("9f05a0ff");
        Vector text = hex("8205a10b7f6161ff");

        expect_reject(vector_buf(&map), -EBADMSG, TEEP_REASON_CBOR_INDEFINITE, "indefinite map");
        expect_reject(vector_buf(&array), -EBADMSG, TEEP_REASON_CBOR_INDEFINITE, "indefinite array");
        expect_reject(vector_buf(&text), -EBADMSG, TEEP_REASON_CBOR_INDEFINITE, "indefinite text");
        vector_free(&map);
        vector_free(&array);
        vector_free(&text);
}

Test(message, limits_are_e2big) {
        /* versions with 5000 entries: more than teep_cbor_check's container limit */
        TeepCborWriter w;
        begin_one_option(&w, TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_VERSIONS);
        teep_cbor_put_array(&w, 5000);
        for (size_t i = 0; i < 5000; i++)
                teep_cbor_put_uint(&w, 0);
        put_qr_tail(&w);
        expect_reject_w(&w, -E2BIG, TEEP_REASON_CBOR_ITEMS, "5000 versions");
}

/* ---- duplicates ---- */

Test(message, duplicate_labels) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, TEEP_TYPE_SUCCESS);
        teep_cbor_put_map(&w, 2);
        put_token(&w);
        put_token(&w);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "token twice");

        /* the same label in a non-preferred encoding (18 14) is still the same label */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, TEEP_TYPE_SUCCESS);
        teep_cbor_put_map(&w, 2);
        put_token(&w);
        teep_cbor_put_raw(&w, TEEP_BUF("\x18\x14", 2));
        teep_cbor_put_bytes(&w, token16, sizeof(token16));
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "token twice, second non-preferred");

        /* unknown labels must be unique too */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, TEEP_TYPE_SUCCESS);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, 99);
        teep_cbor_put_null(&w);
        teep_cbor_put_uint(&w, 99);
        teep_cbor_put_uint(&w, 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "99 twice");

        /* inside a tc-list entry */
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 3);
        teep_cbor_put_uint(&w, 0);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_int(&w, -5);
        teep_cbor_put_uint(&w, 1);
        teep_cbor_put_int(&w, -5);
        teep_cbor_put_uint(&w, 2);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "claim -5 twice");

        /* inside requested-tc-info */
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_REQUESTED_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
        teep_cbor_put_array(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "component-id twice");
}

/* ---- sizes ---- */

static void try_bytes_option(TeepMessageType type, uint64_t label, size_t len, int want, TeepReason reason) {
        uint8_t buf[600];
        TeepCborWriter w;
        char what[64];

        memset(buf, 0x5a, sizeof(buf));
        snprintf(what, sizeof(what), "%s of %zu bytes", teep_label_to_string(label), len);
        begin_one_option(&w, type, label);
        teep_cbor_put_bytes(&w, buf, len);
        put_tail(&w, type);
        if (want == 0) {
                Vector v = built(&w);
                TeepMessage *m = decode_ok(vector_buf(&v), what);
                teep_message_free(m);
                vector_free(&v);
        } else
                expect_reject_w(&w, want, reason, what);
}

static void try_text_option(TeepMessageType type, uint64_t label, const char *text, size_t len, int want,
                            TeepReason reason) {
        TeepCborWriter w;
        char what[64];

        snprintf(what, sizeof(what), "%s of %zu bytes", teep_label_to_string(label), len);
        begin_one_option(&w, type, label);
        teep_cbor_put_text(&w, text, len);
        put_tail(&w, type);
        if (want == 0) {
                Vector v = built(&w);
                TeepMessage *m = decode_ok(vector_buf(&v), what);
                teep_message_free(m);
                vector_free(&v);
        } else
                expect_reject_w(&w, want, reason, what);
}

Test(message, token_sizes) {
        try_bytes_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN, 7, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
        try_bytes_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN, 8, 0, 0);
        try_bytes_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN, 64, 0, 0);
        try_bytes_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN, 65, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
        try_bytes_option(TEEP_TYPE_ERROR, TEEP_LABEL_TOKEN, 0, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
}

Test(message, challenge_sizes) {
        try_bytes_option(TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_CHALLENGE, 7, -EBADMSG,
                         TEEP_REASON_MSG_FIELD_SIZE);
        try_bytes_option(TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_CHALLENGE, 8, 0, 0);
        try_bytes_option(TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_CHALLENGE, 512, 0, 0);
        try_bytes_option(TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_CHALLENGE, 513, -EBADMSG,
                         TEEP_REASON_MSG_FIELD_SIZE);
        try_bytes_option(TEEP_TYPE_ERROR, TEEP_LABEL_CHALLENGE, 7, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
}

Test(message, text_sizes) {
        char text[200];

        memset(text, 'x', sizeof(text));
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, text, 128, 0, 0);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, text, 129, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, text, 0, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_MSG, text, 129, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, text, 0, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, text, 1, 0, 0);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, text, 128, 0, 0);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, text, 129, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_LANG, text, 35, 0, 0);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_LANG, text, 36, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_SIZE);
        try_text_option(TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_LANG, text, 0, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_SIZE);

        /* 128 bytes of 2-byte characters is 64 characters: sizes count bytes */
        char wide[130];
        for (size_t i = 0; i + 1 < sizeof(wide); i += 2) {
                wide[i] = (char)0xc3;
                wide[i + 1] = (char)0xa9; /* é */
        }
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, wide, 128, 0, 0);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, wide, 130, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE);
}

Test(message, text_must_be_utf8) {
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, "disk\xff", 5, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_VALUE);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, "\xc0\x80", 2, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_VALUE);
        try_text_option(TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG, "\xed\xa0\x80", 3, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_VALUE);
        try_text_option(TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_LANG, "e\x80", 2, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_VALUE);
        try_text_option(TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_ATTESTATION_PAYLOAD_FORMAT, "\xfe", 1, -EBADMSG,
                        TEEP_REASON_MSG_FIELD_VALUE);
        try_text_option(TEEP_TYPE_ERROR, TEEP_LABEL_ERR_MSG, "d\xc3\xa9j\xc3\xa0", 6, 0, 0);
}

/* ---- err-code ---- */

static void try_error_code(TeepCborWriter *w, uint64_t code) {
        teep_cbor_writer_init(w);
        teep_cbor_put_array(w, 3);
        teep_cbor_put_uint(w, TEEP_TYPE_ERROR);
        teep_cbor_put_map(w, 0);
        teep_cbor_put_uint(w, code);
}

Test(message, err_code) {
        TeepCborWriter w;
        TeepMessage *m;
        Vector v;

        try_error_code(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_VALUE, "err-code 0");

        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_CODE);
        teep_cbor_put_uint(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_VALUE, "update err-code 0");

        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_CODE);
        teep_cbor_put_cstr(&w, "7");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "update err-code \"7\"");

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 3);
        teep_cbor_put_uint(&w, TEEP_TYPE_ERROR);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_int(&w, -1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "err-code -1");

        /* unknown codes (> 23, and unassigned ones) are kept for the caller to treat as unknown */
        try_error_code(&w, 99);
        v = built(&w);
        m = decode_ok(vector_buf(&v), "err-code 99");
        cr_assert_eq(m->err_code, 99);
        cr_assert_null(teep_err_code_to_string(m->err_code));
        expect_encoding(m, vector_buf(&v), "err-code 99");
        teep_message_free(m);
        vector_free(&v);

        try_error_code(&w, 12);
        v = built(&w);
        m = decode_ok(vector_buf(&v), "err-code 12");
        cr_assert_eq(m->err_code, 12);
        teep_message_free(m);
        vector_free(&v);

        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_ERR_CODE);
        teep_cbor_put_uint(&w, TEEP_ERR_ATTESTATION_REQUIRED);
        v = built(&w);
        m = decode_ok(vector_buf(&v), "update err-code 7");
        cr_assert(m->has_err_code);
        cr_assert_eq(m->err_code, TEEP_ERR_ATTESTATION_REQUIRED);
        teep_message_free(m);
        vector_free(&v);
}

/* ---- lists ---- */

typedef struct ListCase {
        TeepMessageType type;
        uint64_t label;
} ListCase;

/* Every [+ ...] list option in a message that lists it. */
static const ListCase list_cases[] = {
        { TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS },
        { TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_VERSIONS },
        { TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_SUIT_REPORTS },
        { TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_REQUESTED_TC_LIST },
        { TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_UNNEEDED_MANIFEST_LIST },
        { TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_EXT_LIST },
        { TEEP_TYPE_UPDATE, TEEP_LABEL_MANIFEST_LIST },
        { TEEP_TYPE_UPDATE, TEEP_LABEL_UNNEEDED_MANIFEST_LIST },
        { TEEP_TYPE_SUCCESS, TEEP_LABEL_SUIT_REPORTS },
        { TEEP_TYPE_ERROR, TEEP_LABEL_SUPPORTED_TEEP_CIPHER_SUITES },
        { TEEP_TYPE_ERROR, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS },
        { TEEP_TYPE_ERROR, TEEP_LABEL_SUPPORTED_SUIT_COSE_PROFILES },
        { TEEP_TYPE_ERROR, TEEP_LABEL_VERSIONS },
};

Test(message, empty_lists_rejected) {
        for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
                TeepCborWriter w;
                char what[96];

                snprintf(what, sizeof(what), "%s: empty %s", teep_message_type_to_string(list_cases[i].type),
                         teep_label_to_string(list_cases[i].label));
                begin_one_option(&w, list_cases[i].type, list_cases[i].label);
                teep_cbor_put_array(&w, 0);
                put_tail(&w, list_cases[i].type);
                expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, what);
        }
}

Test(message, empty_positional_lists_rejected) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_int(&w, COSE_ALG_SHA256);
        teep_cbor_put_uint(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, "no cipher suites");

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, COSE_TAG_SIGN1);
        teep_cbor_put_int(&w, COSE_ALG_ESP256);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_uint(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, "no SUIT COSE profiles");
}

Test(message, lists_of_wrong_type) {
        for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
                TeepCborWriter w;
                char what[96];

                snprintf(what, sizeof(what), "%s: %s as uint",
                         teep_message_type_to_string(list_cases[i].type),
                         teep_label_to_string(list_cases[i].label));
                begin_one_option(&w, list_cases[i].type, list_cases[i].label);
                teep_cbor_put_uint(&w, 1);
                put_tail(&w, list_cases[i].type);
                expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, what);

                /* an element that no list of these accepts: a map */
                snprintf(what, sizeof(what), "%s: %s of a map",
                         teep_message_type_to_string(list_cases[i].type),
                         teep_label_to_string(list_cases[i].label));
                begin_one_option(&w, list_cases[i].type, list_cases[i].label);
                teep_cbor_put_array(&w, 1);
                if (list_cases[i].label == TEEP_LABEL_REQUESTED_TC_LIST)
                        teep_cbor_put_array(&w, 0); /* its elements are maps: give it an array */
                else
                        teep_cbor_put_map(&w, 0);
                put_tail(&w, list_cases[i].type);
                expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, what);
        }

        /* tc-list as a map, and an entry that is not a map */
        TeepCborWriter w;
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_map(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "tc-list as map");
        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_uint(&w, 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "tc-list of uint");

        /* positional lists */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_uint(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "suites as map");

        /* a component id part that is not a bstr */
        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_UNNEEDED_MANIFEST_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_cstr(&w, "ta");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "component id of text");

        /* a manifest that is not a bstr */
        begin_one_option(&w, TEEP_TYPE_UPDATE, TEEP_LABEL_MANIFEST_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_uint(&w, 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "manifest-list [1]");
}

Test(message, uint32_lists) {
        TeepCborWriter w;
        TeepMessage *m;
        Vector v;

        begin_one_option(&w, TEEP_TYPE_QUERY_REQUEST, TEEP_LABEL_VERSIONS);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_uint(&w, 1ull << 32);
        put_qr_tail(&w);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE, "version 2^32");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_SELECTED_VERSION);
        teep_cbor_put_uint(&w, 1ull << 32);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE, "selected-version 2^32");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_EXT_LIST);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, 1);
        teep_cbor_put_int(&w, -1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "ext-list [1, -1]");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_EXT_LIST);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, 7);
        teep_cbor_put_uint(&w, UINT32_MAX);
        v = built(&w);
        m = decode_ok(vector_buf(&v), "ext-list [7, 2^32-1]");
        cr_assert_eq(m->n_ext_list, 2);
        cr_assert_eq(m->ext_list[0], 7);
        cr_assert_eq(m->ext_list[1], UINT32_MAX);
        expect_encoding(m, vector_buf(&v), "ext-list");
        teep_message_free(m);
        vector_free(&v);
}

Test(message, cipher_suite_shapes) {
        TeepCborWriter w;

#define QR_WITH_SUITES(body)                                          \
        do {                                                          \
                teep_cbor_writer_init(&w);                            \
                teep_cbor_put_array(&w, 5);                           \
                teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);      \
                teep_cbor_put_map(&w, 0);                             \
                body;                                                 \
                teep_cbor_put_array(&w, 1);                           \
                teep_cbor_put_array(&w, 1);                           \
                teep_cbor_put_int(&w, COSE_ALG_SHA256);               \
                teep_cbor_put_uint(&w, 0);                            \
        } while (0)

        /* [[]]: an empty suite */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 0);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, "empty suite");

        /* [[[18]]]: an operation of one element */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_uint(&w, 18);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "operation [18]");

        /* [[[-1, -9]]]: a negative COSE tag */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 2);
                teep_cbor_put_int(&w, -1);
                teep_cbor_put_int(&w, -9);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "operation [-1, -9]");

        /* [[[18, "ES256"]]]: an alg that is not an int */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 2);
                teep_cbor_put_uint(&w, 18);
                teep_cbor_put_cstr(&w, "ES256");
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "alg as text");

        /* [[18, -9]]: the suite itself given as an operation */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 2);
                teep_cbor_put_uint(&w, 18);
                teep_cbor_put_int(&w, -9);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "suite without operation level");

        /* five operations: more than we keep */
        QR_WITH_SUITES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 5);
                for (int i = 0; i < 5; i++) {
                        teep_cbor_put_array(&w, 2);
                        teep_cbor_put_uint(&w, 18);
                        teep_cbor_put_int(&w, -9);
                }
        });
        expect_reject_w(&w, -E2BIG, TEEP_REASON_MSG_FIELD_SIZE, "five operations");
#undef QR_WITH_SUITES
}

Test(message, profile_shapes) {
        TeepCborWriter w;

#define QR_WITH_PROFILES(body)                                        \
        do {                                                          \
                teep_cbor_writer_init(&w);                            \
                teep_cbor_put_array(&w, 5);                           \
                teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);      \
                teep_cbor_put_map(&w, 0);                             \
                teep_cbor_put_array(&w, 1);                           \
                teep_cbor_put_array(&w, 1);                           \
                teep_cbor_put_array(&w, 2);                           \
                teep_cbor_put_uint(&w, 18);                           \
                teep_cbor_put_int(&w, -9);                            \
                body;                                                 \
                teep_cbor_put_uint(&w, 0);                            \
        } while (0)

        QR_WITH_PROFILES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 9);
                for (int i = 0; i < 9; i++)
                        teep_cbor_put_int(&w, -16);
        });
        expect_reject_w(&w, -E2BIG, TEEP_REASON_MSG_FIELD_SIZE, "profile of 9");

        QR_WITH_PROFILES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 0);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, "empty profile");

        QR_WITH_PROFILES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 2);
                teep_cbor_put_int(&w, -16);
                teep_cbor_put_bytes(&w, "x", 1);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "profile alg as bstr");

        QR_WITH_PROFILES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_uint(&w, 1);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "profile as uint");

        /* -2^64 is a CBOR int but not an int64 */
        QR_WITH_PROFILES({
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_raw(&w, TEEP_BUF("\x3b\xff\xff\xff\xff\xff\xff\xff\xff", 9));
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_VALUE, "alg -2^64");
#undef QR_WITH_PROFILES
}

Test(message, data_item_requested) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, 18);
        teep_cbor_put_int(&w, -9);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_int(&w, -16);
        teep_cbor_put_int(&w, -1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "data-item-requested -1");

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, 18);
        teep_cbor_put_int(&w, -9);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_int(&w, -16);
        teep_cbor_put_bytes(&w, "\x03", 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "data-item-requested h'03'");
}

Test(message, scalar_fields_of_wrong_type) {
        TeepCborWriter w;

        begin_one_option(&w, TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN);
        teep_cbor_put_cstr(&w, "abcdefghij");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "token as text");

        /* a tag around the token is a different CBOR type */
        begin_one_option(&w, TEEP_TYPE_SUCCESS, TEEP_LABEL_TOKEN);
        teep_cbor_put_tag(&w, 24);
        teep_cbor_put_bytes(&w, token16, sizeof(token16));
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "tagged token");

        begin_one_option(&w, TEEP_TYPE_SUCCESS, TEEP_LABEL_MSG);
        teep_cbor_put_bytes(&w, "ok", 2);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "msg as bstr");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_ATTESTATION_PAYLOAD);
        teep_cbor_put_cstr(&w, "eat");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "attestation-payload as text");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_SELECTED_VERSION);
        teep_cbor_put_bool(&w, false);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "selected-version false");
}

/* ---- tc-list and requested-tc-list entries ---- */

Test(message, tc_list_entries) {
        TeepCborWriter w;

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_uint(&w, TEEP_CLAIM_IMAGE_DIGEST);
        teep_cbor_put_bytes(&w, "\x80", 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_MISSING, "entry without component id");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_uint(&w, TEEP_CLAIM_COMPONENT_ID);
        teep_cbor_put_array(&w, 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_EMPTY, "entry with only a component id");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, TEEP_CLAIM_COMPONENT_ID);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_cstr(&w, "image-digest");
        teep_cbor_put_uint(&w, 1);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "claim with a text key");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, TEEP_CLAIM_COMPONENT_ID);
        teep_cbor_put_bytes(&w, "ta", 2);
        teep_cbor_put_uint(&w, 14);
        teep_cbor_put_uint(&w, 20);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "component id as bstr");
}

Test(message, tc_list_keeps_claims_verbatim) {
        /* {0: [h'ab'], -300: {1: [true]}, 14: 20} with the component id not first */
        Vector v = hex("8202a10881a339012ba10181f50081" "41ab" "0e14");
        TeepMessage *m = decode_ok(vector_buf(&v), "claims");
        Vector want = hex("8202a10881a30081" "41ab" "39012ba10181f5" "0e14");
        TeepBuf raw;

        cr_assert_eq(m->n_tc_list, 1);
        cr_assert_eq(m->tc_list[0].n_claims, 2);
        cr_assert_eq(m->tc_list[0].claims[0].label, -300);
        cr_assert_eq(teep_claims_find(&m->tc_list[0], 14, &raw), 0);
        assert_buf(raw, "\x14", 1, "image-size");
        cr_assert_eq(teep_claims_get_image_digest(&m->tc_list[0], NULL, NULL), -ENOENT);
        /* key 0 moves to the front, the other pairs keep their order and bytes */
        expect_encoding(m, vector_buf(&want), "claims");

        teep_message_free(m);
        vector_free(&want);
        vector_free(&v);
}

Test(message, malformed_image_digest) {
        /* 3: h'01' - a bstr that holds a uint, not a SUIT_Digest */
        Vector v = hex("8202a10881a20080034101");
        TeepMessage *m = decode_ok(vector_buf(&v), "bad digest");

        cr_assert_eq(teep_claims_get_image_digest(&m->tc_list[0], NULL, NULL), -EBADMSG);
        teep_message_free(m);
        vector_free(&v);
}

Test(message, empty_tc_list_is_accepted_and_omitted) {
        /* digest Q9: [2, {8: []}] decodes as "nothing installed" and re-encodes as [2, {}] */
        static const uint8_t in[] = { 0x82, 0x02, 0xa1, 0x08, 0x80 }, out[] = { 0x82, 0x02, 0xa0 };
        TeepMessage *m = decode_ok(TEEP_BUF(in, sizeof(in)), "empty tc-list");

        cr_assert(m->has_tc_list);
        cr_assert_eq(m->n_tc_list, 0);
        expect_encoding(m, TEEP_BUF(out, sizeof(out)), "empty tc-list");
        teep_message_free(m);
}

Test(message, requested_tc_info) {
        TeepCborWriter w;
        TeepMessage *m;
        Vector v;

#define ONE_REQUESTED(pairs, body)                                                              \
        do {                                                                                    \
                begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_REQUESTED_TC_LIST);   \
                teep_cbor_put_array(&w, 1);                                                     \
                teep_cbor_put_map(&w, pairs);                                                   \
                body;                                                                           \
        } while (0)

        ONE_REQUESTED(1, {
                teep_cbor_put_uint(&w, TEEP_LABEL_TC_MANIFEST_SEQUENCE_NUMBER);
                teep_cbor_put_uint(&w, 3);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_MISSING, "no component-id");

        ONE_REQUESTED(2, {
                teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
                teep_cbor_put_array(&w, 0);
                teep_cbor_put_uint(&w, TEEP_LABEL_HAVE_BINARY);
                teep_cbor_put_bool(&w, true);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_MISSING, "have-binary without sequence number");

        ONE_REQUESTED(2, {
                teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
                teep_cbor_put_array(&w, 0);
                teep_cbor_put_uint(&w, TEEP_LABEL_HAVE_BINARY);
                teep_cbor_put_uint(&w, 1);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "have-binary 1");

        ONE_REQUESTED(2, {
                teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
                teep_cbor_put_array(&w, 0);
                teep_cbor_put_int(&w, -1);
                teep_cbor_put_uint(&w, 1);
        });
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "negative key");

        /* unknown key 99 is skipped; 16/17/18 are read */
        ONE_REQUESTED(4, {
                teep_cbor_put_uint(&w, TEEP_LABEL_COMPONENT_ID);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_bytes(&w, "ta", 2);
                teep_cbor_put_uint(&w, TEEP_LABEL_TC_MANIFEST_SEQUENCE_NUMBER);
                teep_cbor_put_uint(&w, 5);
                teep_cbor_put_uint(&w, TEEP_LABEL_HAVE_BINARY);
                teep_cbor_put_bool(&w, true);
                teep_cbor_put_uint(&w, 99);
                teep_cbor_put_cstr(&w, "later");
        });
        v = built(&w);
        m = decode_ok(vector_buf(&v), "requested-tc-info");
        cr_assert_eq(m->n_requested_tc_list, 1);
        cr_assert_eq(m->requested_tc_list[0].component_id.n_segments, 1);
        assert_text(m->requested_tc_list[0].component_id.segments[0], "ta", "component-id");
        cr_assert(m->requested_tc_list[0].has_tc_manifest_sequence_number);
        cr_assert_eq(m->requested_tc_list[0].tc_manifest_sequence_number, 5);
        cr_assert(m->requested_tc_list[0].has_have_binary);
        cr_assert(m->requested_tc_list[0].have_binary);
        teep_message_free(m);
        vector_free(&v);
#undef ONE_REQUESTED
}

/* ---- labels we ignore ---- */

Test(message, unknown_and_foreign_labels_are_ignored) {
        Vector plain = vector_load("draft-teep-protocol/success.hex");
        TeepCborWriter w;
        TeepMessage *m;
        Vector v;

        /* Success {20: token, 99: "x", 3: [0] (versions: not a Success option), 8: [valid entry], 5:
         * [[18,-7]]} */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, TEEP_TYPE_SUCCESS);
        teep_cbor_put_map(&w, 5);
        put_token(&w);
        teep_cbor_put_uint(&w, 99);
        teep_cbor_put_cstr(&w, "x");
        teep_cbor_put_uint(&w, TEEP_LABEL_VERSIONS);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_uint(&w, 0);
        teep_cbor_put_uint(&w, TEEP_LABEL_TC_LIST);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, 0);
        teep_cbor_put_array(&w, 0);
        teep_cbor_put_uint(&w, 14);
        teep_cbor_put_uint(&w, 20);
        teep_cbor_put_uint(&w, 5);
        teep_cbor_put_raw(&w, TEEP_BUF("\x81\x82\x12\x26", 4));
        v = built(&w);

        m = decode_ok(vector_buf(&v), "success with extra labels");
        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS);
        assert_buf(m->token, token16, sizeof(token16), "token");
        cr_assert_not(m->has_versions);
        cr_assert_null(m->versions);
        cr_assert_not(m->has_tc_list);
        cr_assert_null(m->tc_list);
        /* what is left is exactly the draft's Success */
        expect_encoding(m, vector_buf(&plain), "success without extras");
        teep_message_free(m);
        vector_free(&v);

        /* QueryRequest carrying option 1 and 4 (Error options) next to its positional lists */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 5);
        teep_cbor_put_uint(&w, TEEP_TYPE_QUERY_REQUEST);
        teep_cbor_put_map(&w, 2);
        teep_cbor_put_uint(&w, TEEP_LABEL_SUPPORTED_TEEP_CIPHER_SUITES);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, 18);
        teep_cbor_put_int(&w, -19);
        teep_cbor_put_uint(&w, TEEP_LABEL_SUPPORTED_SUIT_COSE_PROFILES);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_int(&w, -16);
        put_qr_tail(&w);
        v = built(&w);
        m = decode_ok(vector_buf(&v), "query-request with options 1 and 4");
        cr_assert_eq(m->n_supported_cipher_suites, 1);
        cr_assert_eq(m->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ESP256, "positional suites win");
        cr_assert_eq(m->n_supported_suit_cose_profiles, 1);
        cr_assert_eq(m->supported_suit_cose_profiles[0].n_algs, 4);
        teep_message_free(m);
        vector_free(&v);
        vector_free(&plain);
}

Test(message, foreign_labels_are_still_type_checked) {
        /* one label space, one type per label: versions as text is malformed in a Success too */
        TeepCborWriter w;

        begin_one_option(&w, TEEP_TYPE_SUCCESS, TEEP_LABEL_VERSIONS);
        teep_cbor_put_cstr(&w, "0");
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_TYPE, "success with versions \"0\"");

        begin_one_option(&w, TEEP_TYPE_QUERY_RESPONSE, TEEP_LABEL_ERR_MSG);
        teep_cbor_put_text(&w, "", 0);
        expect_reject_w(&w, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE, "query-response with empty err-msg");
}

/* ---- encode from structs built in code ---- */

/* Encode, check the bytes decode, return the decoded copy (views into *ret_buf). */
static TeepMessage *encode_decode(const TeepMessage *m, Vector *ret_buf) {
        uint8_t *out = NULL;
        size_t len = 0;
        int r = teep_message_encode(m, &out, &len);

        cr_assert_eq(r, 0, "encode failed %d", r);
        *ret_buf = (Vector){ .data = out, .len = len };
        TeepMessage *back = decode_ok(TEEP_BUF(out, len), "re-decode");
        cr_assert_eq(back->type, m->type);
        /* and encoding the decoded copy gives the same bytes again */
        expect_encoding(back, TEEP_BUF(out, len), "re-encode");
        return back;
}

Test(message, build_query_request_matches_draft) {
        static const int64_t p[4][4] = {
                { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR },
                { COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR },
                { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128GCM },
                { COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_CHACHA20_POLY1305 },
        };
        Vector draft = vector_load("draft-teep-protocol/query_request.hex");
        TeepMessage *m = NULL;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, sizeof(token16));
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0), 0);
        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ED25519), 0);
        for (size_t i = 0; i < 4; i++)
                cr_assert_eq(teep_message_add_suit_cose_profile(m, p[i], 4), 0);
        m->data_item_requested = TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS;
        expect_encoding(m, vector_buf(&draft), "built query-request");

        teep_message_free(m);
        vector_free(&draft);
}

Test(message, build_query_request_all_options) {
        static const uint8_t challenge[32] = { 1, 2, 3 };
        static const int64_t profile[] = { COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW,
                                           COSE_ALG_CHACHA20_POLY1305 };
        static const char format[] = "application/eat+cwt; eat_profile=\"urn:ietf:rfc:rfcXXXX\"";
        TeepMessage *m = NULL, *back;
        Vector buf;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, 8);
        cr_assert_eq(
                teep_message_add_uint(m, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS, TEEP_FRESHNESS_NONCE),
                0);
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS,
                                           TEEP_FRESHNESS_TIMESTAMP),
                     0);
        m->has_challenge = true;
        m->challenge = TEEP_BUF(challenge, sizeof(challenge));
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0), 0);
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, UINT32_MAX), 0);
        m->has_attestation_payload_format = true;
        m->attestation_payload_format = TEEP_BUF(format, strlen(format));
        m->has_attestation_payload = true;
        m->attestation_payload = TEEP_BUF("\xd2\x84", 2);
        cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_SUIT_REPORTS, TEEP_BUF("\xa0", 1)), 0);
        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ED25519), 0);
        cr_assert_eq(teep_message_add_suit_cose_profile(m, profile, 4), 0);
        m->data_item_requested = TEEP_DATA_SUIT_REPORTS | 0x40;

        back = encode_decode(m, &buf);
        assert_buf(back->token, token16, 8, "token");
        cr_assert_eq(back->n_supported_freshness_mechanisms, 2);
        cr_assert_eq(back->supported_freshness_mechanisms[1], TEEP_FRESHNESS_TIMESTAMP);
        assert_buf(back->challenge, challenge, sizeof(challenge), "challenge");
        cr_assert_eq(back->n_versions, 2);
        cr_assert_eq(back->versions[1], UINT32_MAX);
        assert_text(back->attestation_payload_format, format, "format");
        assert_buf(back->attestation_payload, "\xd2\x84", 2, "attestation payload");
        cr_assert_eq(back->n_suit_reports, 1);
        assert_buf(back->suit_reports[0], "\xa0", 1, "suit report");
        cr_assert_eq(back->n_supported_cipher_suites, 1);
        cr_assert_eq(back->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ED25519);
        cr_assert_eq(back->n_supported_suit_cose_profiles, 1);
        cr_assert_eq(back->supported_suit_cose_profiles[0].algs[3], COSE_ALG_CHACHA20_POLY1305);
        cr_assert_eq(back->data_item_requested, TEEP_DATA_SUIT_REPORTS | 0x40);
        /* options go out in CDDL order: token (20), freshness (21), challenge (2), ... */
        cr_assert_eq(buf.data[3], TEEP_LABEL_TOKEN);

        teep_message_free(back);
        teep_message_free(m);
        vector_free(&buf);
}

Test(message, build_query_response) {
        static const uint8_t uuid[16] = { 0x8d, 0x82, 0x57, 0x3a };
        /* << [-16, h'deadbeef'] >>: bstr .cbor SUIT_Digest, a 4-byte digest to keep it short */
        static const uint8_t digest_claim[] = { 0x47, 0x82, 0x2f, 0x44, 0xde, 0xad, 0xbe, 0xef };
        const TeepBuf ta[] = { TEEP_BUF("TEEP-Device", 11), TEEP_BUF("SecureFS", 8), TEEP_BUF(uuid, 16),
                               TEEP_BUF("ta", 2) };
        const TeepBuf suit[] = { TEEP_BUF("TEEP-Device", 11), TEEP_BUF("SecureFS", 8), TEEP_BUF(uuid, 16),
                                 TEEP_BUF("suit", 4) };
        TeepSystemPropertyClaims *tc = NULL;
        TeepRequestedTcInfo *req = NULL;
        TeepMessage *m = NULL, *back;
        int64_t alg = 0;
        TeepBuf d;
        Vector buf;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_RESPONSE), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, sizeof(token16));
        m->has_selected_version = true;
        m->selected_version = 0;
        m->has_attestation_payload = true;
        m->attestation_payload = TEEP_BUF("eat", 3);
        cr_assert_eq(teep_message_add_tc(m, ta, 4, &tc), 0);
        cr_assert_eq(
                teep_claims_add(tc, TEEP_CLAIM_IMAGE_DIGEST, TEEP_BUF(digest_claim, sizeof(digest_claim))),
                0);
        cr_assert_eq(teep_claims_add(tc, 14, TEEP_BUF("\x14", 1)), 0);
        cr_assert_eq(teep_message_add_requested_tc(m, ta, 4, &req), 0);
        req->has_tc_manifest_sequence_number = true;
        req->tc_manifest_sequence_number = 3;
        req->has_have_binary = true;
        req->have_binary = true;
        cr_assert_eq(teep_message_add_requested_tc(m, ta, 1, NULL), 0);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, suit, 4), 0);
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_EXT_LIST, 42), 0);

        back = encode_decode(m, &buf);
        assert_buf(back->token, token16, sizeof(token16), "token");
        cr_assert(back->has_selected_version);
        assert_buf(back->attestation_payload, "eat", 3, "attestation payload");
        cr_assert_eq(back->n_tc_list, 1);
        cr_assert(teep_suit_component_id_equal(&back->tc_list[0].component_id, &m->tc_list[0].component_id));
        cr_assert_eq(teep_claims_get_image_digest(&back->tc_list[0], &alg, &d), 0);
        cr_assert_eq(alg, COSE_ALG_SHA256);
        assert_buf(d, "\xde\xad\xbe\xef", 4, "digest");
        cr_assert_eq(back->n_requested_tc_list, 2);
        cr_assert(teep_suit_component_id_equal(&back->requested_tc_list[0].component_id,
                                               &m->requested_tc_list[0].component_id));
        cr_assert_eq(back->requested_tc_list[0].tc_manifest_sequence_number, 3);
        cr_assert(back->requested_tc_list[0].have_binary);
        cr_assert_eq(back->requested_tc_list[1].component_id.n_segments, 1);
        cr_assert_not(back->requested_tc_list[1].has_have_binary);
        cr_assert_eq(back->n_unneeded_manifest_list, 1);
        cr_assert(teep_suit_component_id_equal(&back->unneeded_manifest_list[0],
                                               &m->unneeded_manifest_list[0]));
        assert_text(back->unneeded_manifest_list[0].segments[3], "suit", "manifest id");
        cr_assert_eq(back->n_ext_list, 1);
        cr_assert_eq(back->ext_list[0], 42);

        teep_message_free(back);
        teep_message_free(m);
        vector_free(&buf);
}

Test(message, build_update) {
        Vector envelope = vector_load("draft-teep-protocol/suit_uri.hex");
        Vector derived = vector_load("derived/update_install_suit_uri.hex");
        TeepMessage *m = NULL, *back;
        Vector buf;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_UPDATE), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, sizeof(token16));
        cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_MANIFEST_LIST, vector_buf(&envelope)), 0);
        expect_encoding(m, vector_buf(&derived), "built update = derived vector");

        m->has_err_code = true;
        m->err_code = TEEP_ERR_ATTESTATION_REQUIRED;
        m->has_err_msg = true;
        m->err_msg = TEEP_BUF("attest first", 12);
        m->has_err_lang = true;
        m->err_lang = TEEP_BUF("en", 2);
        m->has_attestation_payload = true;
        m->attestation_payload = TEEP_BUF("ar", 2);
        m->has_attestation_payload_format = true;
        m->attestation_payload_format = TEEP_BUF("application/ar+cwt", 18);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, (const TeepBuf[]){ TEEP_BUF("x", 1) }, 1), 0);

        back = encode_decode(m, &buf);
        cr_assert_eq(back->n_manifest_list, 1);
        assert_buf(back->manifest_list[0], envelope.data, envelope.len, "manifest");
        cr_assert(back->has_err_code);
        cr_assert_eq(back->err_code, TEEP_ERR_ATTESTATION_REQUIRED);
        assert_text(back->err_msg, "attest first", "err-msg");
        assert_text(back->err_lang, "en", "err-lang");
        assert_text(back->attestation_payload, "ar", "attestation-payload");
        assert_text(back->attestation_payload_format, "application/ar+cwt", "format");
        cr_assert_eq(back->n_unneeded_manifest_list, 1);

        teep_message_free(back);
        teep_message_free(m);
        vector_free(&buf);
        vector_free(&derived);
        vector_free(&envelope);
}

Test(message, build_success) {
        Vector draft = vector_load("draft-teep-protocol/success.hex");
        TeepMessage *m = NULL, *back;
        Vector buf;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_SUCCESS), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, sizeof(token16));
        expect_encoding(m, vector_buf(&draft), "built success");

        m->has_msg = true;
        m->msg = TEEP_BUF("installed", 9);
        cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_SUIT_REPORTS, TEEP_BUF("\xa1\x03\x80", 3)), 0);
        cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_SUIT_REPORTS, TEEP_BUF("\xd2\x80", 2)), 0);
        /* options that Success does not have are not emitted */
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0), 0);

        back = encode_decode(m, &buf);
        assert_text(back->msg, "installed", "msg");
        cr_assert_eq(back->n_suit_reports, 2);
        assert_buf(back->suit_reports[1], "\xd2\x80", 2, "second report");
        cr_assert_not(back->has_versions);

        teep_message_free(back);
        teep_message_free(m);
        vector_free(&buf);
        vector_free(&draft);
}

Test(message, build_error) {
        static const int64_t profile[] = { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW,
                                           COSE_ALG_A128CTR };
        static const uint8_t challenge[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
        Vector draft = vector_load("draft-teep-protocol/error.hex");
        TeepMessage *m = NULL, *back;
        Vector buf;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_ERROR), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, sizeof(token16));
        m->has_err_msg = true;
        m->err_msg = TEEP_BUF("disk-full", 9);
        m->err_code = TEEP_ERR_MANIFEST_PROCESSING_FAILED;
        expect_encoding(m, vector_buf(&draft), "built error");

        m->err_code = TEEP_ERR_UNSUPPORTED_CIPHER_SUITES;
        m->has_err_lang = true;
        m->err_lang = TEEP_BUF("en-GB", 5);
        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS, 0), 0);
        cr_assert_eq(teep_message_add_suit_cose_profile(m, profile, 4), 0);
        m->has_challenge = true;
        m->challenge = TEEP_BUF(challenge, sizeof(challenge));
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0), 0);
        cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_SUIT_REPORTS, TEEP_BUF("\xa0", 1)), 0);

        back = encode_decode(m, &buf);
        cr_assert_eq(back->err_code, TEEP_ERR_UNSUPPORTED_CIPHER_SUITES);
        assert_text(back->err_lang, "en-GB", "err-lang");
        cr_assert(back->has_supported_cipher_suites);
        cr_assert_eq(back->n_supported_cipher_suites, 1);
        cr_assert_eq(back->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ESP256);
        cr_assert_eq(back->n_supported_freshness_mechanisms, 1);
        cr_assert_eq(back->n_supported_suit_cose_profiles, 1);
        cr_assert_eq(back->supported_suit_cose_profiles[0].algs[1], COSE_ALG_ESP256);
        assert_buf(back->challenge, challenge, sizeof(challenge), "challenge");
        cr_assert_eq(back->n_versions, 1);
        cr_assert_eq(back->n_suit_reports, 1);

        teep_message_free(back);
        teep_message_free(m);
        vector_free(&buf);
        vector_free(&draft);
}

Test(message, encode_refuses_invalid_structs) {
        TeepMessage *m = NULL;
        uint8_t *out = NULL;
        size_t len = 0;

        cr_assert_eq(teep_message_new(&m, (TeepMessageType)4), -EINVAL);
        cr_assert_null(m);

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_SUCCESS), 0);
        m->has_token = true;
        m->token = TEEP_BUF(token16, 7);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "7-byte token");
        m->token = TEEP_BUF(token16, 8);
        m->has_msg = true;
        m->msg = TEEP_BUF("\xff", 1);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "invalid UTF-8 msg");
        m->msg = TEEP_BUF("", 0);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "empty msg");
        m->has_msg = false;
        m->has_suit_reports = true;
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "empty suit-reports");
        m->has_suit_reports = false;
        cr_assert_eq(teep_message_encode(m, &out, &len), 0);
        free(out);
        m = teep_message_free(m);

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_ERROR), 0);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "err-code 0");
        m->err_code = TEEP_ERR_PERMANENT_ERROR;
        m->has_err_lang = true;
        m->err_lang = TEEP_BUF("abcdefghijabcdefghijabcdefghijabcdef", 36);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "36-byte err-lang");
        m = teep_message_free(m);

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "no cipher suites");
        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "no profiles");
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 1ull << 32), -EINVAL);
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_TOKEN, 1), -EINVAL);
        m = teep_message_free(m);

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_RESPONSE), 0);
        TeepSystemPropertyClaims *tc = NULL;
        TeepRequestedTcInfo *req = NULL;
        cr_assert_eq(teep_message_add_tc(m, NULL, 0, &tc), 0);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "tc entry without claims");
        cr_assert_eq(teep_claims_add(tc, 0, TEEP_BUF("\x01", 1)), -EINVAL);
        cr_assert_eq(teep_claims_add(tc, 3, TEEP_BUF("\x41", 1)), 0); /* truncated bstr */
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "claim value not one CBOR item");
        tc->claims[0].value = TEEP_BUF("\x41\x00", 2);
        cr_assert_eq(teep_message_encode(m, &out, &len), 0);
        free(out);
        cr_assert_eq(teep_message_add_requested_tc(m, NULL, 0, &req), 0);
        req->has_have_binary = true;
        req->have_binary = true;
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "have-binary without sequence number");
        m = teep_message_free(m);
}

Test(message, build_component_id_bounds) {
        static const uint8_t big[TEEP_COMPONENT_MAX_SEGMENT_LEN + 1] = { 0 };
        TeepBuf seg[TEEP_COMPONENT_MAX_SEGMENTS + 1];
        TeepSystemPropertyClaims *tc = NULL;
        TeepRequestedTcInfo *req = NULL;
        TeepMessage *m = NULL, *back;
        uint8_t *out = NULL;
        size_t len = 0;
        Vector buf;

        for (size_t i = 0; i < TEEP_COMPONENT_MAX_SEGMENTS + 1; i++)
                seg[i] = TEEP_BUF("s", 1);

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_RESPONSE), 0);
        cr_assert_eq(teep_message_add_tc(m, seg, TEEP_COMPONENT_MAX_SEGMENTS + 1, &tc), -E2BIG);
        cr_assert_eq(teep_message_add_requested_tc(m, seg, TEEP_COMPONENT_MAX_SEGMENTS + 1, &req), -E2BIG);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, seg, TEEP_COMPONENT_MAX_SEGMENTS + 1), -E2BIG);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, &TEEP_BUF(big, sizeof(big)), 1), -E2BIG);
        cr_assert_eq(teep_message_add_tc(m, &TEEP_BUF(big, sizeof(big)), 1, &tc), -E2BIG);
        cr_assert_eq(teep_message_add_requested_tc(m, &TEEP_BUF(big, sizeof(big)), 1, &req), -E2BIG);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, NULL, 1), -EINVAL);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, &TEEP_BUF(NULL, 1), 1), -EINVAL);
        /* a refusal adds nothing */
        cr_assert_eq(m->n_tc_list, 0);
        cr_assert_eq(m->n_requested_tc_list, 0);
        cr_assert_eq(m->n_unneeded_manifest_list, 0);
        cr_assert_not(m->has_tc_list);
        cr_assert_not(m->has_requested_tc_list);
        cr_assert_not(m->has_unneeded_manifest_list);

        /* at the bounds: 16 segments, one of 255 bytes */
        cr_assert_eq(teep_message_add_tc(m, seg, TEEP_COMPONENT_MAX_SEGMENTS, &tc), 0);
        cr_assert_eq(teep_claims_add(tc, 14, TEEP_BUF("\x01", 1)), 0);
        cr_assert_eq(teep_message_add_requested_tc(m, &TEEP_BUF(big, TEEP_COMPONENT_MAX_SEGMENT_LEN), 1, &req),
                     0);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, seg, TEEP_COMPONENT_MAX_SEGMENTS), 0);
        back = encode_decode(m, &buf);
        cr_assert(teep_suit_component_id_equal(&back->tc_list[0].component_id, &m->tc_list[0].component_id));
        cr_assert(teep_suit_component_id_equal(&back->requested_tc_list[0].component_id,
                                               &m->requested_tc_list[0].component_id));
        cr_assert(teep_suit_component_id_equal(&back->unneeded_manifest_list[0], &m->unneeded_manifest_list[0]));
        cr_assert_eq(back->unneeded_manifest_list[0].n_segments, 16);
        cr_assert_eq(back->requested_tc_list[0].component_id.segments[0].len, 255);
        teep_message_free(back);
        vector_free(&buf);

        /* a struct filled by hand beyond the bounds is refused by the encoder */
        m->unneeded_manifest_list[0].n_segments = TEEP_COMPONENT_MAX_SEGMENTS + 1;
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "17 segments");
        m->unneeded_manifest_list[0].n_segments = TEEP_COMPONENT_MAX_SEGMENTS;
        m->requested_tc_list[0].component_id.segments[0] = TEEP_BUF(big, sizeof(big));
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "256-byte segment");
        m->requested_tc_list[0].component_id.segments[0] = TEEP_BUF(NULL, 1);
        cr_assert_eq(teep_message_encode(m, &out, &len), -EINVAL, "NULL segment");
        m->requested_tc_list[0].component_id.segments[0] = TEEP_BUF(big, 1);
        cr_assert_eq(teep_message_encode(m, &out, &len), 0);
        free(out);
        teep_message_free(m);
}

/* ---- names ---- */

Test(message, names) {
        cr_assert_str_eq(teep_message_type_to_string(TEEP_TYPE_QUERY_REQUEST), "query-request");
        cr_assert_str_eq(teep_message_type_to_string(TEEP_TYPE_QUERY_RESPONSE), "query-response");
        cr_assert_str_eq(teep_message_type_to_string(TEEP_TYPE_UPDATE), "update");
        cr_assert_str_eq(teep_message_type_to_string(TEEP_TYPE_SUCCESS), "success");
        cr_assert_str_eq(teep_message_type_to_string(TEEP_TYPE_ERROR), "error");
        cr_assert_null(teep_message_type_to_string(4));
        cr_assert_null(teep_message_type_to_string(-1));

        cr_assert_str_eq(teep_err_code_to_string(TEEP_ERR_PERMANENT_ERROR), "ERR_PERMANENT_ERROR");
        cr_assert_str_eq(teep_err_code_to_string(TEEP_ERR_TEMPORARY_ERROR), "ERR_TEMPORARY_ERROR");
        cr_assert_str_eq(teep_err_code_to_string(TEEP_ERR_UNSUPPORTED_SUIT_REPORT),
                         "ERR_UNSUPPORTED_SUIT_REPORT");
        cr_assert_null(teep_err_code_to_string(0));
        cr_assert_null(teep_err_code_to_string(11));
        cr_assert_null(teep_err_code_to_string(23));
        cr_assert_null(teep_err_code_to_string(UINT64_MAX));

        cr_assert_str_eq(teep_label_to_string(TEEP_LABEL_TOKEN), "token");
        cr_assert_str_eq(teep_label_to_string(TEEP_LABEL_TC_LIST), "tc-list");
        cr_assert_str_eq(teep_label_to_string(TEEP_LABEL_SUPPORTED_TEEP_CIPHER_SUITES),
                         "supported-teep-cipher-suites");
        cr_assert_str_eq(teep_label_to_string(TEEP_LABEL_ERR_CODE), "err-code");
        cr_assert_str_eq(teep_label_to_string(TEEP_LABEL_HAVE_BINARY), "have-binary");
        cr_assert_null(teep_label_to_string(5));
        cr_assert_null(teep_label_to_string(0));
        cr_assert_null(teep_label_to_string(24));
}

/* ---- robustness: truncations and byte flips of every vector never crash and fail cleanly ---- */

static bool errno_expected(int r) {
        return r == -EBADMSG || r == -EPROTO || r == -E2BIG;
}

Test(message, mutations_fail_cleanly) {
        static const char *const files[] = {
                "draft-teep-protocol/query_request.hex", "draft-teep-protocol/query_response.hex",
                "draft-teep-protocol/update.hex",        "draft-teep-protocol/error.hex",
                "libteep/query_response.hex",            "derived/update_unlink.hex",
        };
        static const uint8_t flips[] = { 0x01, 0x02, 0x10, 0x20, 0x80, 0xff };

        for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
                Vector v = vector_load(files[f]);

                /* a proper prefix of one CBOR item is never a complete item */
                for (size_t n = 0; n < v.len; n++) {
                        TeepMessage *m = NULL;
                        TeepError err = {};
                        uint8_t *copy = malloc(n ? n : 1);
                        cr_assert_not_null(copy);
                        memcpy(copy, v.data, n);
                        int r = teep_message_decode(TEEP_BUF(copy, n), &m, &err);
                        cr_assert(errno_expected(r), "%s prefix %zu: %d", files[f], n, r);
                        cr_assert_neq(err.reason, TEEP_REASON_NONE);
                        cr_assert_null(m);
                        free(copy);
                }

                for (size_t i = 0; i < v.len; i++)
                        for (size_t j = 0; j < sizeof(flips); j++) {
                                TeepMessage *m = NULL;
                                TeepError err = {};
                                uint8_t *copy = malloc(v.len);
                                cr_assert_not_null(copy);
                                memcpy(copy, v.data, v.len);
                                copy[i] ^= flips[j];
                                int r = teep_message_decode(TEEP_BUF(copy, v.len), &m, &err);
                                if (r == 0) {
                                        /* whatever decodes must encode, and that encoding is stable */
                                        Vector buf;
                                        TeepMessage *back = encode_decode(m, &buf);
                                        teep_message_free(back);
                                        vector_free(&buf);
                                        teep_message_free(m);
                                } else {
                                        cr_assert(errno_expected(r), "%s byte %zu ^ %02x: %d", files[f], i,
                                                  flips[j], r);
                                        cr_assert_neq(err.reason, TEEP_REASON_NONE);
                                        cr_assert_null(m);
                                }
                                free(copy);
                        }
                vector_free(&v);
        }
}
