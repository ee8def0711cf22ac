/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-eat.c: EAT claims sets for the TEEP profile against the libteep vectors; encode/decode/validate */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "teep-cose.h"
#include "teep-eat.h"
#include "vectors.h"

#define AGENT_KID "fb30d5697e41ae46ab43357cea7aceb91132ed85c1634899d3c198d16cbce718"
#define TOKEN     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define UEID      "0198f50a4ff6c05861c8860d13a638ea"
#define HWMODEL   "549dcecc8b987c737b44e40f7c635ce8"

/* The libteep claims as the vectors have them (hwversion [h'312e332e34', 1]). */
static void assert_libteep_claims(const TeepEat *e, const char *iss) {
        cr_assert(e->has_iss);
        cr_assert(buf_eq_str(e->iss, iss));
        cr_assert_eq(e->cnf_type, TEEP_EAT_CNF_KID);
        cr_assert(buf_eq_hex(e->cnf_kid, AGENT_KID));
        cr_assert(e->has_nonce);
        cr_assert(buf_eq_hex(e->nonce, TOKEN));
        cr_assert(e->has_ueid);
        cr_assert(buf_eq_hex(e->ueid, UEID));
        cr_assert_eq(e->oemid_type, TEEP_EAT_OEMID_IEEE);
        cr_assert(buf_eq_hex(e->oemid, "894823"));
        cr_assert(e->has_hwmodel);
        cr_assert(buf_eq_hex(e->hwmodel, HWMODEL));
        cr_assert(e->has_hwversion);
        cr_assert(e->hwversion_legacy_bstr);
        cr_assert(buf_eq_str(e->hwversion.version, "1.3.4"));
        cr_assert(e->hwversion.has_scheme);
        cr_assert_eq(e->hwversion.scheme, 1);
        cr_assert_eq(e->n_manifests, 0);
        cr_assert_eq(e->n_unknown, 1); /* -70000 verifier nonce */
        cr_assert_not(e->has_iat);
}

static void check_libteep_vector(const char *unsigned_file, const char *cose_file, const char *iss) {
        Vector v = vector_load(unsigned_file);
        Vector c = vector_load(cose_file);
        TeepEat *eat = (TeepEat *)0x1;
        TeepCoseMessage msg;
        TeepError err = {};

        /* the claims are the payload of the signed file */
        cr_assert_eq(teep_cose_decode(vector_buf(&c), &msg, &err), 0, "%s", err.detail);
        cr_assert(teep_buf_eq(msg.payload, vector_buf(&v)));

        /* strict: hwversion must be text */
        cr_assert_eq(teep_eat_decode(vector_buf(&v), &eat, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_EAT_CLAIM, "%s", teep_reason_to_string(err.reason));
        cr_assert(strstr(err.detail, "hwversion"), "%s", err.detail);
        cr_assert_eq(eat, (TeepEat *)0x1, "ret touched on failure");

        /* the legacy flag reads it, and the set still misses the manifests claim */
        eat = NULL;
        cr_assert_eq(teep_eat_decode_flags(msg.payload, TEEP_EAT_DECODE_LEGACY_HWVERSION, &eat, &err), 0,
                     "%s", err.detail);
        assert_libteep_claims(eat, iss);
        cr_assert_eq(teep_eat_validate_teep_profile(eat, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_EAT_MISSING);
        cr_assert(strstr(err.detail, "manifests"), "%s", err.detail);

        teep_eat_free(eat);
        vector_free(&c);
        vector_free(&v);
}

Test(eat, libteep_evidence) {
        check_libteep_vector("libteep/evidence.hex", "libteep/evidence_cose.hex", "Intel SGX TEEP Agent");
}

Test(eat, libteep_attestation_results) {
        check_libteep_vector("libteep/attestation_results.hex", "libteep/attestation_results_cose.hex",
                             "Naive Verifier");
}

/* A complete TEEP-profile claims set, owning nothing (views of test constants). */
typedef struct Owned {
        uint8_t *p[8];
} Owned;

static void owned_free(Owned *o) {
        for (size_t i = 0; i < 8; i++)
                free(o->p[i]);
}

static TeepEat full_claims(Owned *o) {
        TeepEat e = {
                .has_iss = true,
                .iss = TEEP_BUF("teepkit agent", 13),
                .has_exp = true,
                .exp = 1900000000,
                .has_iat = true,
                .iat = 1800000000,
                .cnf_type = TEEP_EAT_CNF_KID,
                .cnf_kid = hexbuf(AGENT_KID, &o->p[0]),
                .has_nonce = true,
                .nonce = hexbuf("948f8860d13a463e8e", &o->p[1]),
                .has_ueid = true,
                .ueid = hexbuf(UEID, &o->p[2]),
                .oemid_type = TEEP_EAT_OEMID_IEEE,
                .oemid = hexbuf("894823", &o->p[3]),
                .has_hwmodel = true,
                .hwmodel = hexbuf(HWMODEL, &o->p[4]),
                .has_hwversion = true,
                .hwversion = {.version = TEEP_BUF("1.3.4", 5), .has_scheme = true, .scheme = 1},
                .profile_type = TEEP_EAT_PROFILE_URI,
                .profile = TEEP_BUF(TEEP_EAT_PROFILE_TEEP, strlen(TEEP_EAT_PROFILE_TEEP)),
                .has_swname = true,
                .swname = TEEP_BUF("teep-agentd", 11),
                .has_swversion = true,
                .swversion = {.version = TEEP_BUF("0.1.0", 5)},
                .n_manifests = 2,
        };
        e.manifests[0] = (TeepEatManifest){.content_format = 60, .body = hexbuf("a10102", &o->p[5])};
        /* an embedded CBOR body: ["https://example.com/x.suit"] */
        e.manifests[1] = (TeepEatManifest){
                .content_format = 258,
                .body = TEEP_BUF("\x81\x78\x1a"
                                 "https://example.com/x.suit",
                                 3 + 26),
                .body_is_cbor = true,
        };
        return e;
}

Test(eat, full_claims_round_trip) {
        Owned o = {};
        TeepEat in = full_claims(&o);
        _cleanup_free_ uint8_t *enc = NULL, *enc2 = NULL;
        TeepEat *out = NULL;
        TeepError err = {};
        size_t len, len2;

        cr_assert_eq(teep_eat_validate_teep_profile(&in, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_eat_encode(&in, &enc, &len), 0);
        cr_assert_eq(teep_eat_decode(TEEP_BUF(enc, len), &out, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_eat_validate_teep_profile(out, &err), 0, "%s", err.detail);

        cr_assert(teep_buf_eq(out->iss, in.iss));
        cr_assert_eq(out->exp, in.exp);
        cr_assert_eq(out->iat, in.iat);
        cr_assert_eq(out->cnf_type, TEEP_EAT_CNF_KID);
        cr_assert(teep_buf_eq(out->cnf_kid, in.cnf_kid));
        cr_assert(teep_buf_eq(out->nonce, in.nonce));
        cr_assert(teep_buf_eq(out->ueid, in.ueid));
        cr_assert_eq(out->oemid_type, TEEP_EAT_OEMID_IEEE);
        cr_assert(teep_buf_eq(out->oemid, in.oemid));
        cr_assert(teep_buf_eq(out->hwmodel, in.hwmodel));
        cr_assert(buf_eq_str(out->hwversion.version, "1.3.4"));
        cr_assert_not(out->hwversion_legacy_bstr);
        cr_assert_eq(out->hwversion.scheme, 1);
        cr_assert_eq(out->profile_type, TEEP_EAT_PROFILE_URI);
        cr_assert(buf_eq_str(out->profile, TEEP_EAT_PROFILE_TEEP));
        cr_assert(buf_eq_str(out->swname, "teep-agentd"));
        cr_assert(buf_eq_str(out->swversion.version, "0.1.0"));
        cr_assert_not(out->swversion.has_scheme);
        cr_assert_eq(out->n_manifests, 2);
        cr_assert_eq(out->manifests[0].content_format, 60);
        cr_assert(buf_eq_hex(out->manifests[0].body, "a10102"));
        cr_assert_not(out->manifests[0].body_is_cbor);
        cr_assert_eq(out->manifests[1].content_format, 258);
        cr_assert(out->manifests[1].body_is_cbor);
        cr_assert(teep_buf_eq(out->manifests[1].body, in.manifests[1].body));
        cr_assert_eq(out->n_unknown, 0);

        /* deterministic: re-encoding the decoded set gives the same bytes */
        cr_assert_eq(teep_eat_encode(out, &enc2, &len2), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(enc, len), TEEP_BUF(enc2, len2)));

        /* and the keys come in ascending order */
        {
                TeepCborReader r;
                size_t n;
                int64_t prev = INT64_MIN, key;
                teep_cbor_reader_init(&r, TEEP_BUF(enc, len));
                cr_assert_eq(teep_cbor_read_map(&r, &n, NULL), 0);
                cr_assert_eq(n, 13);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_eq(teep_cbor_read_int(&r, &key, NULL), 0);
                        cr_assert_gt(key, prev);
                        prev = key;
                        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                }
        }

        teep_eat_free(out);
        owned_free(&o);
}

Test(eat, cose_key_cnf_and_pen_oemid_round_trip) {
        Vector key = vector_load("libteep/keys/teep_agent_es256_public.cose.hex");
        _cleanup_free_ uint8_t *enc = NULL, *u = NULL;
        TeepEat in = {
                .cnf_type = TEEP_EAT_CNF_COSE_KEY,
                .cnf_cose_key = vector_buf(&key),
                .oemid_type = TEEP_EAT_OEMID_PEN,
                .oemid_pen = 54321,
                .has_ueid = true,
                .ueid = hexbuf("01000000000000", &u), /* 7 bytes: the minimum */
                .profile_type = TEEP_EAT_PROFILE_OID,
                .profile = TEEP_BUF("\x2b\x06\x01", 3),
                .has_iat = true,
                .iat = -5,
        };
        TeepEat *out = NULL;
        TeepError err = {};
        size_t len;

        cr_assert_eq(teep_eat_encode(&in, &enc, &len), 0);
        cr_assert_eq(teep_eat_decode(TEEP_BUF(enc, len), &out, &err), 0, "%s", err.detail);
        cr_assert_eq(out->cnf_type, TEEP_EAT_CNF_COSE_KEY);
        cr_assert(teep_buf_eq(out->cnf_cose_key, vector_buf(&key)));
        cr_assert_eq(out->oemid_type, TEEP_EAT_OEMID_PEN);
        cr_assert_eq(out->oemid_pen, 54321);
        cr_assert_eq(out->profile_type, TEEP_EAT_PROFILE_OID);
        cr_assert_eq(out->iat, -5);
        /* not a TEEP-profile set: hwmodel is the first required claim missing after ueid/oemid */
        cr_assert_eq(teep_eat_validate_teep_profile(out, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_EAT_MISSING);
        cr_assert(strstr(err.detail, "hwmodel"), "%s", err.detail);

        teep_eat_free(out);
        vector_free(&key);
}

Test(eat, required_claims) {
        static const char *const required[] = {"ueid", "oemid", "hwmodel", "hwversion", "manifests", "cnf"};
        Owned o = {};
        TeepEat base = full_claims(&o);
        TeepError err = {};

        cr_assert_eq(teep_eat_validate_teep_profile(&base, &err), 0, "%s", err.detail);
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
                TeepEat e = base;

                if (i == 0)
                        e.has_ueid = false;
                else if (i == 1)
                        e.oemid_type = TEEP_EAT_OEMID_NONE;
                else if (i == 2)
                        e.has_hwmodel = false;
                else if (i == 3)
                        e.has_hwversion = false;
                else if (i == 4)
                        e.n_manifests = 0;
                else
                        e.cnf_type = TEEP_EAT_CNF_NONE;
                err = (TeepError){};
                cr_assert_eq(teep_eat_validate_teep_profile(&e, &err), -EBADMSG, "%s", required[i]);
                cr_assert_eq(err.reason, TEEP_REASON_EAT_MISSING);
                cr_assert(strstr(err.detail, required[i]), "%s: %s", required[i], err.detail);
        }
        /* nonce, iss, iat are not required */
        base.has_nonce = base.has_iss = base.has_iat = false;
        cr_assert_eq(teep_eat_validate_teep_profile(&base, &err), 0);
        owned_free(&o);
}

static void assert_decode_fails(const char *hex, int want, TeepReason reason) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepEat *eat = NULL;
        TeepError err = {};
        int r = teep_eat_decode(hexbuf(hex, &b), &eat, &err);

        cr_assert_eq(r, want, "%s: got %d (%s: %s)", hex, r, teep_reason_to_string(err.reason), err.detail);
        cr_assert_eq(err.reason, reason, "%s: %s (%s)", hex, teep_reason_to_string(err.reason), err.detail);
        cr_assert_null(eat);
}

/* Decode {key: h'01 00 00 ..' (n bytes)}. */
static int decode_sized_claim(int64_t key, size_t n, TeepError *err) {
        uint8_t bytes[128] = {0x01};
        _cleanup_free_ uint8_t *enc = NULL;
        TeepCborWriter w;
        TeepEat *eat = NULL;
        size_t len;
        int r;

        cr_assert_leq(n, sizeof(bytes));
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_int(&w, key);
        teep_cbor_put_bytes(&w, bytes, n);
        cr_assert_eq(teep_cbor_writer_finish(&w, &enc, &len), 0);
        r = teep_eat_decode(TEEP_BUF(enc, len), &eat, err);
        cr_assert_eq(r == 0, eat != NULL);
        teep_eat_free(eat);
        return r;
}

Test(eat, size_rules) {
        static const struct {
                int64_t key;
                size_t lo, hi; /* smallest and largest accepted */
        } rules[] = {
                {TEEP_EAT_NONCE, 8, 64},
                {TEEP_EAT_UEID, 7, 33},
                {TEEP_EAT_HWMODEL, 1, 32},
        };
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
                TeepError err = {};
                cr_assert_eq(decode_sized_claim(rules[i].key, rules[i].lo, &err), 0, "%s", err.detail);
                cr_assert_eq(decode_sized_claim(rules[i].key, rules[i].hi, &err), 0, "%s", err.detail);
                cr_assert_eq(decode_sized_claim(rules[i].key, rules[i].lo - 1, &err), -EBADMSG);
                cr_assert_eq(err.reason, TEEP_REASON_EAT_CLAIM);
                err = (TeepError){};
                cr_assert_eq(decode_sized_claim(rules[i].key, rules[i].hi + 1, &err), -EBADMSG);
                cr_assert_eq(err.reason, TEEP_REASON_EAT_CLAIM);
        }
        /* the brief's cases by name: nonce 7 and 65, ueid 6 */
        cr_assert_eq(decode_sized_claim(TEEP_EAT_NONCE, 7, NULL), -EBADMSG);
        cr_assert_eq(decode_sized_claim(TEEP_EAT_NONCE, 65, NULL), -EBADMSG);
        cr_assert_eq(decode_sized_claim(TEEP_EAT_UEID, 6, NULL), -EBADMSG);
        /* oemid: 3 or 16 bytes only */
        cr_assert_eq(decode_sized_claim(TEEP_EAT_OEMID, 3, NULL), 0);
        cr_assert_eq(decode_sized_claim(TEEP_EAT_OEMID, 16, NULL), 0);
        cr_assert_eq(decode_sized_claim(TEEP_EAT_OEMID, 4, NULL), -EBADMSG);
        cr_assert_eq(decode_sized_claim(TEEP_EAT_OEMID, 0, NULL), -EBADMSG);
}

Test(eat, size_rules_accept_bounds) {
        static const char *const ok[] = {
                "a119010250000102030405060708090a0b0c0d0e0f", /* oemid 16 (random) */
                "a11901021a00010000",                         /* oemid PEN */
                "a11901034100",                               /* hwmodel 1 */
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                _cleanup_free_ uint8_t *b = NULL;
                TeepEat *eat = NULL;
                TeepError err = {};
                cr_assert_eq(teep_eat_decode(hexbuf(ok[i], &b), &eat, &err), 0, "%s: %s", ok[i], err.detail);
                teep_eat_free(eat);
        }
}

Test(eat, encoder_enforces_size_rules) {
        Owned o = {};
        TeepEat base = full_claims(&o), e;
        uint8_t *enc = NULL;
        uint8_t zeros[65] = {};
        size_t len;

        e = base;
        e.nonce = TEEP_BUF(zeros, 7);
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e.nonce = TEEP_BUF(zeros, 65);
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e = base;
        e.ueid = TEEP_BUF(zeros, 6);
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e = base;
        e.oemid = TEEP_BUF(zeros, 4);
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e = base;
        e.hwversion.version = TEEP_BUF("\xff", 1); /* not UTF-8 */
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e = base;
        e.cnf_type = TEEP_EAT_CNF_COSE_KEY;
        e.cnf_cose_key = TEEP_BUF("\x80", 1); /* not a map */
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        e = base;
        e.manifests[1].body = TEEP_BUF("\x82\x01", 2); /* truncated embedded body */
        cr_assert_eq(teep_eat_encode(&e, &enc, &len), -EINVAL);
        cr_assert_null(enc);
        owned_free(&o);
}

Test(eat, claim_types) {
        /* hwversion text is fine, [text, text] is not, nor a bare text */
        {
                _cleanup_free_ uint8_t *b = NULL;
                TeepEat *eat = NULL;
                cr_assert_eq(teep_eat_decode(hexbuf("a1190104826131"
                                                    "02",
                                                    &b),
                                             &eat, NULL),
                             0);
                cr_assert(buf_eq_str(eat->hwversion.version, "1"));
                cr_assert_eq(eat->hwversion.scheme, 2);
                teep_eat_free(eat);
        }
        assert_decode_fails("a119010482613161"
                            "32",
                            -EBADMSG, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a11901046131", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* eat_nonce as an array (RFC 9711 allows it, the TEEP profile does not) */
        assert_decode_fails("a10a8148"
                            "0000000000000000",
                            -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* a tag inside a claim (ueid as tag 64) */
        assert_decode_fails("a1190100d84047"
                            "01000000000000",
                            -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* cnf: two methods, an encrypted key, a kid that is text */
        assert_decode_fails("a108a2034101"
                            "014100",
                            -EBADMSG, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a108a10280", -EOPNOTSUPP, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a108a1036131", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* iss as bytes; iat as text */
        assert_decode_fails("a1014161", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a1066131", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* manifests: empty, wrong shape, content-format beyond 16 bits */
        assert_decode_fails("a119011080", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a1190110818101", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        assert_decode_fails("a119011081821a0001000040", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* not a map at all */
        assert_decode_fails("80", -EBADMSG, TEEP_REASON_EAT_CLAIM);
        /* the same claim twice */
        assert_decode_fails("a20a480000000000000000"
                            "0a480000000000000000",
                            -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY);
        /* an unknown claim twice is still a broken map */
        assert_decode_fails("a2636162630063616263"
                            "00",
                            -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY);
}

Test(eat, float_times_and_unknown_claims) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepEat *eat = NULL;
        TeepError err = {};

        /* {6: 1.5e9 (float64), "x": 1, -70000: h'', 1000: [1, 2]} */
        cr_assert_eq(teep_eat_decode(hexbuf("a406fb41d65a0bc0000000"
                                            "617801"
                                            "3a0001116f40"
                                            "1903e8820102",
                                            &b),
                                     &eat, &err),
                     0, "%s", err.detail);
        cr_assert(eat->has_iat);
        cr_assert_eq(eat->iat, 1500000000);
        cr_assert_eq(eat->n_unknown, 3);
        teep_eat_free(eat);
        /* NaN is refused */
        assert_decode_fails("a106f97e00", -EBADMSG, TEEP_REASON_EAT_CLAIM);
}

Test(eat, too_many_claims) {
        TeepCborWriter w;
        _cleanup_free_ uint8_t *enc = NULL;
        TeepEat *eat = NULL;
        TeepError err = {};
        size_t len;

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, TEEP_EAT_MAX_CLAIMS + 1);
        for (int i = 0; i < TEEP_EAT_MAX_CLAIMS + 1; i++) {
                teep_cbor_put_int(&w, -1000 - i);
                teep_cbor_put_uint(&w, 0);
        }
        cr_assert_eq(teep_cbor_writer_finish(&w, &enc, &len), 0);
        cr_assert_eq(teep_eat_decode(TEEP_BUF(enc, len), &eat, &err), -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_EAT_CLAIM);
}

Test(eat, rejects_truncation_everywhere) {
        Vector v = vector_load("libteep/evidence.hex");
        for (size_t n = 1; n < v.len; n++) {
                uint8_t *copy = malloc(n);
                TeepEat *eat = NULL;
                TeepError err = {};

                memcpy(copy, v.data, n);
                cr_assert_eq(teep_eat_decode_flags(TEEP_BUF(copy, n), TEEP_EAT_DECODE_LEGACY_HWVERSION, &eat,
                                                   &err),
                             -EBADMSG, "prefix %zu", n);
                cr_assert_eq(err.reason, TEEP_REASON_CBOR_TRUNCATED, "prefix %zu: %s", n, err.detail);
                free(copy);
        }
        vector_free(&v);
}

Test(eat, mutations_decode_or_refuse_and_reencode) {
        Vector v = vector_load("libteep/evidence.hex");
        for (size_t i = 0; i < v.len; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        uint8_t *copy = malloc(v.len), *enc = NULL;
                        TeepEat *eat = NULL, *again = NULL;
                        size_t len;

                        memcpy(copy, v.data, v.len);
                        copy[i] ^= (uint8_t)(1u << bit);
                        if (teep_eat_decode_flags(TEEP_BUF(copy, v.len), TEEP_EAT_DECODE_LEGACY_HWVERSION,
                                                  &eat, NULL) == 0) {
                                /* whatever decodes re-encodes, except a legacy bstr version that is not
                                 * UTF-8 */
                                int r = teep_eat_encode(eat, &enc, &len);
                                if (r == 0) {
                                        cr_assert_eq(teep_eat_decode(TEEP_BUF(enc, len), &again, NULL), 0);
                                        teep_eat_free(again);
                                } else
                                        cr_assert(eat->hwversion_legacy_bstr);
                                free(enc);
                                teep_eat_free(eat);
                        }
                        free(copy);
                }
        }
        vector_free(&v);
}
