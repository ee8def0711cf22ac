/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-cose.c: keys, thumbprints, COSE_Sign1/COSE_Sign decode, verify and sign against the vectors */

#include <criterion/criterion.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "teep-cose.h"
#include "teep-protocol.h"
#include "vectors.h"

/* Key files, and the RFC 9679 thumbprints the vectors README and the kids in the vectors give. */
#define K_TAM        "libteep/keys/tam_es256_public.cose.hex"
#define K_TAM_PRIV   "libteep/keys/tam_es256_private.cose.hex"
#define K_TAM_PEM    "libteep/keys/tam_prime256v1_pub.pem"
#define K_AGENT      "libteep/keys/teep_agent_es256_public.cose.hex"
#define K_AGENT_PRIV "libteep/keys/teep_agent_es256_private.cose.hex"
#define K_VERIFIER   "libteep/keys/verifier_es256_public.cose.hex"
#define K_ED         "derived/keys/tam_ed25519_public_from_private.cose.hex"
#define K_ED_PRIV    "libteep/keys/tam_ed25519_private.cose.hex"
#define K_ED_WRONG   "libteep/keys/tam_ed25519_public.cose.hex"
#define K_SUIT       "libteep/keys/trust_anchor_prime256v1_public.cose.hex"

#define TP_TAM      "c770ec535d8c949586324adaf2ddffb76b1a852dfa52e19c80f7440ec163beea"
#define TP_AGENT    "e96788b10b1610abe478f9ce8dcfe2304c0911dd8cfeadde25ec30ccb5a7b5af"
#define TP_VERIFIER "87b97e7c1fb5de418b2f5bc289fd80c8f123d5a37b9cc32e4ecbb24d7615a502"
#define TP_ED       "866eefbd6718c8846cd7ddfe43fc74ab1daac4538ff8514ea2ec2d410a415743"

/* ---- helpers ---- */

static TeepKey *key_load(const char *rel) {
        Vector v = vector_load(rel);
        TeepError e = {};
        TeepKey *k = NULL;
        int r = teep_key_from_any(&k, v.data, v.len, &e);

        cr_assert_eq(r, 0, "%s: %s (%s: %s)", rel, strerror(-r), teep_reason_to_string(e.reason), e.detail);
        cr_assert_not_null(k);
        vector_free(&v);
        return k;
}

static void thumb_hex(const TeepKey *k, char out[65]) {
        uint8_t t[32];
        cr_assert_eq(teep_key_thumbprint(k, t), 0);
        hexstr(t, sizeof(t), out);
}

static void buf_hex(TeepBuf b, char *out, size_t size) {
        cr_assert(b.len * 2 + 1 <= size);
        hexstr(b.ptr, b.len, out);
}

/* Hex with optional spaces (the tests group bytes for reading). */
static uint8_t *unhex_or_die(const char *s, size_t *ret_len) {
        size_t n = strlen(s), o = 0;
        char *packed = malloc(n + 1);
        uint8_t *b = NULL;
        int r;

        for (size_t i = 0; i < n; i++)
                if (s[i] != ' ')
                        packed[o++] = s[i];
        packed[o] = 0;
        if (o == 0) {
                free(packed);
                *ret_len = 0;
                return malloc(1);
        }
        r = unhex(packed, o, &b, ret_len);
        cr_assert_eq(r, 0, "bad hex in test: %s", s);
        free(packed);
        return b;
}

static int decode(TeepBuf in, TeepCoseMessage *m, TeepError *e) {
        *e = (TeepError){};
        return teep_cose_decode(in, m, e);
}

/* The public keys we have, in a fixed order so a test can say which index must verify. */
enum { R_TAM, R_AGENT, R_VERIFIER, R_ED, R_SUIT, R_ED_WRONG, R_N };
static TeepKey *ring[R_N];

static void ring_load(void) {
        ring[R_TAM] = key_load(K_TAM);
        ring[R_AGENT] = key_load(K_AGENT);
        ring[R_VERIFIER] = key_load(K_VERIFIER);
        ring[R_ED] = key_load(K_ED);
        ring[R_SUIT] = key_load(K_SUIT);
        ring[R_ED_WRONG] = key_load(K_ED_WRONG);
}

static void ring_free(void) {
        for (size_t i = 0; i < R_N; i++)
                ring[i] = teep_key_free(ring[i]);
}

TestSuite(cose, .init = ring_load, .fini = ring_free);

/*
 * Build a COSE_Sign1 by hand: tag (-1 = untagged), protected bstr content, unprotected map,
 * payload bstr content (NULL = nil) and a signature of sig_len 0x5a bytes, all as hex.
 */
static uint8_t *build_sign1(int tag, const char *prot_hex, const char *unprot_hex, const char *payload_hex,
                            size_t sig_len, size_t *ret_len) {
        TeepCborWriter w;
        uint8_t *prot, *unprot, *out, sig[128];
        size_t prot_len, unprot_len;

        cr_assert(sig_len <= sizeof(sig));
        memset(sig, 0x5a, sizeof(sig));
        prot = unhex_or_die(prot_hex, &prot_len);
        unprot = unhex_or_die(unprot_hex, &unprot_len);

        teep_cbor_writer_init(&w);
        if (tag >= 0)
                teep_cbor_put_tag(&w, (uint64_t)tag);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_bytes(&w, prot, prot_len);
        teep_cbor_put_raw(&w, TEEP_BUF(unprot, unprot_len));
        if (payload_hex) {
                size_t pl;
                uint8_t *p = unhex_or_die(payload_hex, &pl);
                teep_cbor_put_bytes(&w, p, pl);
                free(p);
        } else
                teep_cbor_put_null(&w);
        teep_cbor_put_bytes(&w, sig, sig_len);
        free(prot);
        free(unprot);
        cr_assert_eq(teep_cbor_writer_finish(&w, &out, ret_len), 0);
        return out;
}

static void expect_decode_error(const uint8_t *buf, size_t len, int want, TeepReason reason, const char *what) {
        TeepCoseMessage m;
        TeepError e;
        int r;

        m.n_signers = 77;
        r = decode(TEEP_BUF(buf, len), &m, &e);
        cr_assert_eq(r, want, "%s: got %d (%s: %s), want %d", what, r, teep_reason_to_string(e.reason), e.detail, want);
        cr_assert_eq(e.reason, reason, "%s: reason %s (%s), want %s", what, teep_reason_to_string(e.reason), e.detail,
                     teep_reason_to_string(reason));
        cr_assert_eq(m.n_signers, 77, "%s: ret written on failure", what);
}

static void expect_sign1_error(const char *prot, const char *unprot, int want, TeepReason reason, const char *what) {
        size_t len;
        uint8_t *b = build_sign1(COSE_TAG_SIGN1, prot, unprot, "00", 64, &len);
        expect_decode_error(b, len, want, reason, what);
        free(b);
}

/* ---- thumbprints ---- */

Test(cose, thumbprints_match_readme) {
        static const struct {
                const char *path;
                const char *tp;
        } table[] = {
                { K_TAM, TP_TAM },
                { K_TAM_PRIV, TP_TAM },
                { K_TAM_PEM, TP_TAM },
                { "libteep/keys/tam_prime256v1.pem", TP_TAM },
                { K_AGENT, TP_AGENT },
                { K_AGENT_PRIV, TP_AGENT },
                { "libteep/keys/teep_agent_prime256v1_pub.pem", TP_AGENT },
                { "derived/keys/personalization_kek_p256_private.cose.hex", TP_AGENT },
                { K_VERIFIER, TP_VERIFIER },
                { "libteep/keys/verifier_prime256v1.pem", TP_VERIFIER },
                { K_ED, TP_ED },
                { K_ED_PRIV, TP_ED },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                TeepKey *k = key_load(table[i].path);
                char hex[65];
                thumb_hex(k, hex);
                cr_expect_str_eq(hex, table[i].tp, "%s", table[i].path);
                teep_key_free(k);
        }
}

Test(cose, thumbprint_is_the_kid_in_the_vectors) {
        static const struct {
                const char *vec;
                int key;
        } table[] = {
                { "libteep/query_request_cose.hex", R_TAM },
                { "libteep/query_response_cose.hex", R_AGENT },
                { "libteep/attestation_results_cose.hex", R_VERIFIER },
                { "derived/query_request_sign1_ed25519.hex", R_ED },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                Vector v = vector_load(table[i].vec);
                TeepCoseMessage m;
                TeepError e;
                char kid[65], tp[65];

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0, "%s: %s", table[i].vec, e.detail);
                cr_assert(m.body.has_kid);
                cr_assert_eq(m.body.kid.len, 32);
                buf_hex(m.body.kid, kid, sizeof(kid));
                thumb_hex(ring[table[i].key], tp);
                cr_expect_str_eq(kid, tp, "%s", table[i].vec);
                vector_free(&v);
        }
}

/* The README's third Ed25519 key: its PEM pair agrees with itself, and with no kid we know. */
Test(cose, ed25519_pem_pair_is_its_own_key) {
        TeepKey *priv = key_load("libteep/keys/tam_ed25519.pem");
        TeepKey *pub = key_load("libteep/keys/tam_ed25519_pub.pem");
        char a[65], b[65];

        cr_assert_eq(teep_key_type(priv), TEEP_KEY_ED25519);
        cr_assert(teep_key_has_private(priv));
        cr_assert_not(teep_key_has_private(pub));
        thumb_hex(priv, a);
        thumb_hex(pub, b);
        cr_expect_str_eq(a, b);
        cr_expect_str_neq(a, TP_ED);
        teep_key_free(priv);
        teep_key_free(pub);
}

/* ---- the signed vectors ---- */

typedef struct SignedVector {
        const char *path;
        const char *payload;   /* unsigned twin, or NULL */
        int key;               /* ring index that must verify */
        int64_t alg;
} SignedVector;

static const SignedVector signed_vectors[] = {
        { "libteep/query_request_cose.hex", "libteep/query_request.hex", R_TAM, COSE_ALG_ES256 },
        { "libteep/update_cose.hex", "libteep/update.hex", R_TAM, COSE_ALG_ES256 },
        { "libteep/query_response_cose.hex", "libteep/query_response.hex", R_AGENT, COSE_ALG_ES256 },
        { "libteep/success_cose.hex", "libteep/success.hex", R_AGENT, COSE_ALG_ES256 },
        { "libteep/error_cose.hex", "libteep/error.hex", R_AGENT, COSE_ALG_ES256 },
        { "libteep/evidence_cose.hex", "libteep/evidence.hex", R_AGENT, COSE_ALG_ES256 },
        { "libteep/attestation_results_cose.hex", "libteep/attestation_results.hex", R_VERIFIER, COSE_ALG_ES256 },
        { "derived/query_request_sign1_esp256.hex", "draft-teep-protocol/query_request.hex", R_TAM, COSE_ALG_ESP256 },
        { "derived/query_request_sign1_ed25519.hex", "draft-teep-protocol/query_request.hex", R_ED, COSE_ALG_ED25519 },
        { "derived/query_response_sign1_esp256.hex", "draft-teep-protocol/query_response.hex", R_AGENT, COSE_ALG_ESP256 },
        { "derived/success_sign1_esp256.hex", "draft-teep-protocol/success.hex", R_AGENT, COSE_ALG_ESP256 },
        { "derived/error_sign1_esp256.hex", "draft-teep-protocol/error.hex", R_AGENT, COSE_ALG_ESP256 },
        { "derived/update_install_suit_uri_sign1_esp256.hex", "derived/update_install_suit_uri.hex", R_TAM, COSE_ALG_ESP256 },
        { "derived/update_unlink_sign1_esp256.hex", "derived/update_unlink.hex", R_TAM, COSE_ALG_ESP256 },
};

Test(cose, signed_vectors_verify_with_their_key) {
        for (size_t i = 0; i < sizeof(signed_vectors) / sizeof(signed_vectors[0]); i++) {
                const SignedVector *sv = &signed_vectors[i];
                Vector v = vector_load(sv->path), p = vector_load(sv->payload);
                size_t key = 99, signer = 99;
                TeepCoseMessage m;
                TeepError e;
                int r;

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0, "%s: %s", sv->path, e.detail);
                cr_expect_eq(m.kind, TEEP_COSE_SIGN1, "%s", sv->path);
                cr_expect(m.tagged, "%s", sv->path);
                cr_expect_eq(m.n_signers, 1);
                cr_expect(m.body.has_alg);
                cr_expect_eq(m.body.alg, sv->alg, "%s: alg %lld", sv->path, (long long)m.body.alg);
                cr_expect_not(m.payload_detached);
                cr_expect(teep_buf_eq(m.payload, vector_buf(&p)), "%s: payload differs from %s", sv->path, sv->payload);

                e = (TeepError){};
                r = teep_cose_verify(&m, NULL, ring, R_N, &key, &signer, &e);
                cr_expect_eq(r, 0, "%s: %d %s", sv->path, r, e.detail);
                cr_expect_eq(key, (size_t)sv->key, "%s: verified by key %zu, want %d", sv->path, key, sv->key);
                cr_expect_eq(signer, 0);
                vector_free(&v);
                vector_free(&p);
        }
}

Test(cose, tam_vectors_verify_with_pem_key) {
        TeepKey *pem = key_load(K_TAM_PEM);
        TeepKey *keys[] = { ring[R_AGENT], pem };
        const char *paths[] = { "libteep/query_request_cose.hex", "libteep/update_cose.hex" };

        for (size_t i = 0; i < 2; i++) {
                Vector v = vector_load(paths[i]);
                TeepCoseMessage m;
                TeepError e;
                size_t key = 99;

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0);
                cr_expect_eq(teep_cose_verify(&m, NULL, keys, 2, &key, NULL, &e), 0, "%s: %s", paths[i], e.detail);
                cr_expect_eq(key, 1);
                vector_free(&v);
        }
        teep_key_free(pem);
}

Test(cose, signed_vectors_fail_with_wrong_key_and_flipped_bytes) {
        for (size_t i = 0; i < sizeof(signed_vectors) / sizeof(signed_vectors[0]); i++) {
                const SignedVector *sv = &signed_vectors[i];
                Vector v = vector_load(sv->path);
                TeepKey *others[R_N];
                TeepKey *right = ring[sv->key];
                size_t n_others = 0, sig_off, payload_off;
                TeepCoseMessage m;
                TeepError e;
                int r;

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0);
                for (size_t k = 0; k < R_N; k++)
                        if ((int)k != sv->key)
                                others[n_others++] = ring[k];

                /* every other key we have (one of the same type at least) */
                e = (TeepError){};
                r = teep_cose_verify(&m, NULL, others, n_others, NULL, NULL, &e);
                cr_expect_eq(r, -EKEYREJECTED, "%s: wrong keys gave %d", sv->path, r);
                cr_expect_eq(e.reason, TEEP_REASON_COSE_SIGNATURE, "%s: %s", sv->path, teep_reason_to_string(e.reason));

                sig_off = (size_t)(m.signers[0].signature.ptr - v.data);
                payload_off = (size_t)(m.payload.ptr - v.data);

                /* one flipped bit in the signature, then in the payload */
                for (int which = 0; which < 2; which++) {
                        size_t off = which == 0 ? sig_off + 5 : payload_off + m.payload.len / 2;
                        uint8_t *copy = malloc(v.len);
                        TeepCoseMessage mm;

                        memcpy(copy, v.data, v.len);
                        copy[off] ^= 0x01;
                        cr_assert_eq(decode(TEEP_BUF(copy, v.len), &mm, &e), 0, "%s: flipped copy must still decode",
                                     sv->path);
                        e = (TeepError){};
                        r = teep_cose_verify(&mm, NULL, &right, 1, NULL, NULL, &e);
                        cr_expect_eq(r, -EKEYREJECTED, "%s: flipped %s byte gave %d", sv->path,
                                     which == 0 ? "signature" : "payload", r);
                        cr_expect_eq(e.reason, TEEP_REASON_COSE_SIGNATURE);
                        free(copy);
                }
                vector_free(&v);
        }
}

Test(cose, cose_sign_vector_both_signers) {
        Vector v = vector_load("derived/query_request_sign_esp256_ed25519.hex");
        Vector p = vector_load("draft-teep-protocol/query_request.hex");
        TeepCoseMessage m;
        TeepError e;
        size_t key = 99, signer = 99;
        char kid[65], tp[65];

        cr_assert_eq(decode(vector_buf(&v), &m, &e), 0, "%s", e.detail);
        cr_assert_eq(m.kind, TEEP_COSE_SIGN);
        cr_assert(m.tagged);
        cr_assert_eq(m.n_signers, 2);
        cr_assert_eq(m.body.protected_raw.len, 0);
        cr_assert_not(m.body.has_alg);
        cr_assert(teep_buf_eq(m.payload, vector_buf(&p)));
        cr_assert_eq(m.signers[0].headers.alg, COSE_ALG_ESP256);
        cr_assert_eq(m.signers[1].headers.alg, COSE_ALG_ED25519);
        buf_hex(m.signers[0].headers.kid, kid, sizeof(kid));
        thumb_hex(ring[R_TAM], tp);
        cr_expect_str_eq(kid, tp);
        buf_hex(m.signers[1].headers.kid, kid, sizeof(kid));
        thumb_hex(ring[R_ED], tp);
        cr_expect_str_eq(kid, tp);

        /* each signer with its own key */
        cr_expect_eq(teep_cose_verify(&m, NULL, &ring[R_TAM], 1, &key, &signer, &e), 0, "%s", e.detail);
        cr_expect_eq(key, 0);
        cr_expect_eq(signer, 0);
        {
                TeepKey *keys[] = { ring[R_AGENT], ring[R_ED_WRONG], ring[R_ED] };
                cr_expect_eq(teep_cose_verify(&m, NULL, keys, 3, &key, &signer, &e), 0, "%s", e.detail);
                cr_expect_eq(key, 2);
                cr_expect_eq(signer, 1);
        }
        /* P-256 keys that do not match: rejected; an Ed25519-only wrong key: rejected */
        {
                TeepKey *keys[] = { ring[R_AGENT], ring[R_VERIFIER], ring[R_ED_WRONG] };
                e = (TeepError){};
                cr_expect_eq(teep_cose_verify(&m, NULL, keys, 3, NULL, NULL, &e), -EKEYREJECTED);
        }

        /* break signer 0's signature: signer 1 still verifies, signer 0's key no longer does */
        {
                uint8_t *copy = malloc(v.len);
                size_t off = (size_t)(m.signers[0].signature.ptr - v.data);
                TeepCoseMessage mm;

                memcpy(copy, v.data, v.len);
                copy[off + 10] ^= 0x80;
                cr_assert_eq(decode(TEEP_BUF(copy, v.len), &mm, &e), 0);
                cr_expect_eq(teep_cose_verify(&mm, NULL, &ring[R_TAM], 1, NULL, NULL, &e), -EKEYREJECTED);
                cr_expect_eq(teep_cose_verify(&mm, NULL, &ring[R_ED], 1, NULL, &signer, &e), 0);
                cr_expect_eq(signer, 1);

                /* and the payload: neither verifies */
                memcpy(copy, v.data, v.len);
                copy[(size_t)(m.payload.ptr - v.data) + 3] ^= 0x01;
                cr_assert_eq(decode(TEEP_BUF(copy, v.len), &mm, &e), 0);
                cr_expect_eq(teep_cose_verify(&mm, NULL, ring, R_N, NULL, NULL, &e), -EKEYREJECTED);
                free(copy);
        }
        vector_free(&v);
        vector_free(&p);
}

Test(cose, untagged_forms_decode_and_verify) {
        Vector v1 = vector_load("derived/query_request_sign1_esp256.hex");
        Vector v2 = vector_load("derived/query_request_sign_esp256_ed25519.hex");
        TeepCoseMessage m;
        TeepError e;
        size_t signer = 99;

        /* Sign1 drops its one-byte tag 18 (d2), COSE_Sign its two-byte tag 98 (d8 62) */
        cr_assert_eq(v1.data[0], 0xd2);
        cr_assert_eq(decode(TEEP_BUF(v1.data + 1, v1.len - 1), &m, &e), 0, "%s", e.detail);
        cr_expect_eq(m.kind, TEEP_COSE_SIGN1);
        cr_expect_not(m.tagged);
        cr_expect_eq(teep_cose_verify(&m, NULL, &ring[R_TAM], 1, NULL, NULL, &e), 0);

        cr_assert_eq(v2.data[0], 0xd8);
        cr_assert_eq(v2.data[1], 0x62);
        cr_assert_eq(decode(TEEP_BUF(v2.data + 2, v2.len - 2), &m, &e), 0, "%s", e.detail);
        cr_expect_eq(m.kind, TEEP_COSE_SIGN);
        cr_expect_not(m.tagged);
        cr_expect_eq(teep_cose_verify(&m, NULL, &ring[R_ED], 1, NULL, &signer, &e), 0);
        cr_expect_eq(signer, 1);
        vector_free(&v1);
        vector_free(&v2);
}

Test(cose, legacy_and_negative_vectors_decode_but_do_not_verify) {
        static const struct {
                const char *path;
                int64_t alg;
                size_t sig_len;
                int verify;
                TeepReason reason;
        } table[] = {
                { "libteep/legacy/query_request_es256_cose.hex", COSE_ALG_ES256, 64, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE },
                { "libteep/legacy/query_request_es384_cose.hex", -35, 96, -EOPNOTSUPP, TEEP_REASON_COSE_ALG_UNSUPPORTED },
                { "libteep/negative/query_request_err1_cose.hex", COSE_ALG_ES256, 64, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE },
                { "libteep/negative/query_request_err2_cose.hex", COSE_ALG_ES256, 64, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE },
                { "libteep/negative/query_request_err3_cose.hex", COSE_ALG_ES256, 64, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE },
        };
        TeepKey *all[R_N + 4];
        size_t n = 0;

        for (size_t k = 0; k < R_N; k++)
                all[n++] = ring[k];
        all[n++] = key_load("libteep/keys/tam_ed25519_pub.pem");
        all[n++] = key_load("derived/keys/suit_signer_p256_public.cose.hex");

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                Vector v = vector_load(table[i].path);
                TeepCoseMessage m;
                TeepError e;
                int r;

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0, "%s: %s", table[i].path, e.detail);
                cr_expect_eq(m.body.alg, table[i].alg, "%s", table[i].path);
                cr_expect_not(m.body.has_kid, "%s: these carry no kid", table[i].path);
                cr_expect_eq(m.signers[0].signature.len, table[i].sig_len);
                e = (TeepError){};
                r = teep_cose_verify(&m, NULL, all, n, NULL, NULL, &e);
                cr_expect_eq(r, table[i].verify, "%s: %d (%s)", table[i].path, r, e.detail);
                cr_expect_eq(e.reason, table[i].reason, "%s: %s", table[i].path, teep_reason_to_string(e.reason));
                vector_free(&v);
        }
        for (size_t k = R_N; k < n; k++)
                teep_key_free(all[k]);
}

/* ---- sign / verify round trips ---- */

static void round_trip(TeepKeyType type, int64_t alg, bool detached) {
        static const char text[] = "a TEEP message, more or less";
        TeepBuf payload = TEEP_BUF(text, sizeof(text) - 1);
        TeepKey *key = NULL, *other = NULL;
        uint8_t *out = NULL, tp[32];
        size_t len, k = 99;
        TeepCoseMessage m;
        TeepError e;

        cr_assert_eq(teep_key_generate(&key, type), 0);
        cr_assert_eq(teep_key_generate(&other, type), 0);
        cr_assert(teep_key_has_private(key));
        cr_assert_eq(teep_key_type(key), type);
        cr_assert_eq(teep_cose_sign1(key, alg, NULL, payload, detached, &out, &len), 0);

        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0, "%s", e.detail);
        cr_expect(m.tagged);
        cr_expect_eq(m.kind, TEEP_COSE_SIGN1);
        cr_expect_eq(m.body.alg, alg ? alg : teep_key_default_alg(key));
        cr_expect_eq(m.payload_detached, detached);
        cr_assert(m.body.has_kid);
        cr_assert_eq(teep_key_thumbprint(key, tp), 0);
        cr_expect(teep_buf_eq(m.body.kid, TEEP_BUF(tp, 32)));
        cr_expect_eq(m.signers[0].signature.len, 64);
        if (!detached)
                cr_expect(teep_buf_eq(m.payload, payload));

        {
                TeepKey *keys[] = { other, key };
                const TeepBuf *dp = detached ? &payload : NULL;
                TeepBuf wrong = TEEP_BUF(text, sizeof(text) - 2);

                cr_expect_eq(teep_cose_verify(&m, dp, keys, 2, &k, NULL, &e), 0, "%s", e.detail);
                cr_expect_eq(k, 1);
                cr_expect_eq(teep_cose_verify(&m, dp, keys, 1, NULL, NULL, &e), -EKEYREJECTED);
                if (detached) {
                        e = (TeepError){};
                        cr_expect_eq(teep_cose_verify(&m, NULL, keys, 2, NULL, NULL, &e), -EBADMSG);
                        cr_expect_eq(e.reason, TEEP_REASON_COSE_DETACHED);
                        cr_expect_eq(teep_cose_verify(&m, &wrong, keys, 2, NULL, NULL, &e), -EKEYREJECTED);
                } else {
                        e = (TeepError){};
                        cr_expect_eq(teep_cose_verify(&m, &wrong, keys, 2, NULL, NULL, &e), -EBADMSG);
                        cr_expect_eq(e.reason, TEEP_REASON_COSE_DETACHED);
                }
        }
        free(out);
        teep_key_free(key);
        teep_key_free(other);
}

Test(cose, round_trip_p256) {
        round_trip(TEEP_KEY_P256, 0, false);
        round_trip(TEEP_KEY_P256, 0, true);
        round_trip(TEEP_KEY_P256, COSE_ALG_ES256, false);
        round_trip(TEEP_KEY_P256, COSE_ALG_ES256, true);
        round_trip(TEEP_KEY_P256, COSE_ALG_ESP256, false);
}

Test(cose, round_trip_ed25519) {
        round_trip(TEEP_KEY_ED25519, 0, false);
        round_trip(TEEP_KEY_ED25519, 0, true);
        round_trip(TEEP_KEY_ED25519, COSE_ALG_EDDSA, false);
        round_trip(TEEP_KEY_ED25519, COSE_ALG_EDDSA, true);
        round_trip(TEEP_KEY_ED25519, COSE_ALG_ED25519, false);
}

Test(cose, sign_with_vector_keys_verifies_with_public_halves) {
        TeepKey *priv = key_load(K_TAM_PRIV), *pem_priv = key_load("libteep/keys/tam_prime256v1.pem");
        TeepKey *pem_pub = key_load(K_TAM_PEM);
        TeepKey *keys[] = { ring[R_AGENT], pem_pub, ring[R_TAM] };
        uint8_t *out;
        size_t len, k;
        TeepCoseMessage m;
        TeepError e;

        cr_assert_eq(teep_cose_sign1(priv, 0, NULL, TEEP_BUF("x", 1), false, &out, &len), 0);
        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0);
        cr_expect_eq(teep_cose_verify(&m, NULL, keys, 3, &k, NULL, &e), 0);
        cr_expect_eq(k, 1);
        free(out);

        cr_assert_eq(teep_cose_sign1(pem_priv, COSE_ALG_ES256, NULL, TEEP_BUF("y", 1), false, &out, &len), 0);
        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0);
        cr_expect_eq(teep_cose_verify(&m, NULL, &keys[2], 1, NULL, NULL, &e), 0);
        free(out);
        teep_key_free(priv);
        teep_key_free(pem_priv);
        teep_key_free(pem_pub);
}

/* Ed25519 is deterministic: the RFC 8032 key must reproduce the derived vector byte for byte. */
Test(cose, ed25519_reproduces_derived_vector) {
        Vector v = vector_load("derived/query_request_sign1_ed25519.hex");
        Vector p = vector_load("draft-teep-protocol/query_request.hex");
        TeepKey *priv = key_load(K_ED_PRIV);
        uint8_t *a, *b;
        size_t alen, blen;

        cr_assert_eq(teep_cose_sign1(priv, 0, NULL, vector_buf(&p), false, &a, &alen), 0);
        cr_assert_eq(teep_cose_sign1(priv, 0, NULL, vector_buf(&p), false, &b, &blen), 0);
        cr_expect(teep_buf_eq(TEEP_BUF(a, alen), TEEP_BUF(b, blen)), "two Ed25519 signatures differ");
        cr_expect(teep_buf_eq(TEEP_BUF(a, alen), vector_buf(&v)), "our Sign1 differs from the derived vector");
        free(a);
        free(b);
        teep_key_free(priv);
        vector_free(&v);
        vector_free(&p);
}

Test(cose, sign1_kid_choices_and_refusals) {
        TeepKey *key = NULL, *pub = ring[R_TAM];
        const uint8_t kidb[] = { 'k', 'i', 'd' };
        TeepBuf kid = TEEP_BUF(kidb, 3), nokid = TEEP_BUF(kidb, 0);
        uint8_t *out = NULL;
        size_t len;
        TeepCoseMessage m;
        TeepError e;

        cr_assert_eq(teep_key_generate(&key, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_cose_sign1(key, 0, &kid, TEEP_BUF("p", 1), false, &out, &len), 0);
        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0);
        cr_expect(teep_buf_eq(m.body.kid, kid));
        free(out);
        cr_assert_eq(teep_cose_sign1(key, 0, &nokid, TEEP_BUF("p", 1), false, &out, &len), 0);
        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0);
        cr_expect_not(m.body.has_kid);
        cr_expect_eq(teep_cose_verify(&m, NULL, &key, 1, NULL, NULL, &e), 0);
        free(out);

        out = NULL;
        cr_expect_eq(teep_cose_sign1(key, COSE_ALG_ED25519, NULL, TEEP_BUF("p", 1), false, &out, &len), -EOPNOTSUPP);
        cr_expect_eq(teep_cose_sign1(key, -35, NULL, TEEP_BUF("p", 1), false, &out, &len), -EOPNOTSUPP);
        cr_expect_eq(teep_cose_sign1(pub, 0, NULL, TEEP_BUF("p", 1), false, &out, &len), -ENOKEY);
        cr_expect_null(out);
        teep_key_free(key);
}

Test(cose, sign_multi_two_keys) {
        TeepKey *p = NULL, *ed = NULL;
        uint8_t *out;
        size_t len, k = 99, s = 99;
        TeepCoseMessage m;
        TeepError e;
        static const char text[] = "first QueryRequest";

        cr_assert_eq(teep_key_generate(&p, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&ed, TEEP_KEY_ED25519), 0);
        {
                TeepKey *keys[] = { p, ed };
                cr_assert_eq(teep_cose_sign_multi(keys, 2, TEEP_BUF(text, strlen(text)), &out, &len), 0);
        }
        cr_assert_eq(out[0], 0xd8);
        cr_assert_eq(out[1], COSE_TAG_SIGN);
        cr_assert_eq(decode(TEEP_BUF(out, len), &m, &e), 0, "%s", e.detail);
        cr_assert_eq(m.kind, TEEP_COSE_SIGN);
        cr_assert_eq(m.n_signers, 2);
        cr_expect_eq(m.signers[0].headers.alg, COSE_ALG_ESP256);
        cr_expect_eq(m.signers[1].headers.alg, COSE_ALG_ED25519);

        cr_expect_eq(teep_cose_verify(&m, NULL, &ed, 1, &k, &s, &e), 0, "%s", e.detail);
        cr_expect_eq(k, 0);
        cr_expect_eq(s, 1);
        cr_expect_eq(teep_cose_verify(&m, NULL, &p, 1, &k, &s, &e), 0, "%s", e.detail);
        cr_expect_eq(s, 0);
        {
                TeepKey *keys[] = { ring[R_ED], ring[R_TAM], ed };
                cr_expect_eq(teep_cose_verify(&m, NULL, keys, 3, &k, &s, &e), 0);
                cr_expect_eq(k, 2);
                cr_expect_eq(s, 1);
        }
        /* the Ed25519 signer verifies alone, so each signer stands on its own signature */
        {
                TeepKey *keys[] = { ring[R_TAM], ring[R_ED] };
                e = (TeepError){};
                cr_expect_eq(teep_cose_verify(&m, NULL, keys, 2, NULL, NULL, &e), -EKEYREJECTED);
        }
        free(out);

        {
                TeepKey *keys[] = { p, ring[R_TAM] };
                cr_expect_eq(teep_cose_sign_multi(keys, 2, TEEP_BUF(text, 3), &out, &len), -ENOKEY);
                cr_expect_eq(teep_cose_sign_multi(keys, 0, TEEP_BUF(text, 3), &out, &len), -EINVAL);
        }
        teep_key_free(p);
        teep_key_free(ed);
}

/* ---- header rules ---- */

Test(cose, header_crit) {
        size_t len;
        uint8_t *b;
        TeepCoseMessage m;
        TeepError e;

        /* {1: -9, 2: [99]} */
        expect_sign1_error("a20128028118 63", "a0", -EOPNOTSUPP, TEEP_REASON_COSE_CRIT, "unknown crit label");
        /* {1: -9, 2: ["foo"]} */
        expect_sign1_error("a2012802816366 6f6f", "a0", -EOPNOTSUPP, TEEP_REASON_COSE_CRIT, "text crit label");
        /* {1: -9, 2: [4, -70000]} */
        expect_sign1_error("a201280282043a0001116f", "a0", -EOPNOTSUPP, TEEP_REASON_COSE_CRIT, "second crit label unknown");
        /* {1: -9, 2: []} */
        expect_sign1_error("a201280280", "a0", -EBADMSG, TEEP_REASON_COSE_CRIT, "empty crit");
        /* {1: -9, 2: 4} */
        expect_sign1_error("a201280204", "a0", -EBADMSG, TEEP_REASON_COSE_CRIT, "crit not an array");
        /* crit in the unprotected bucket */
        expect_sign1_error("a10128", "a1028104", -EBADMSG, TEEP_REASON_COSE_CRIT, "unprotected crit");

        /* crit naming labels we understand is fine: {1: -9, 2: [1, 4, 33]} */
        b = build_sign1(COSE_TAG_SIGN1, "a20128028301041821", "a0", "00", 64, &len);
        cr_expect_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        free(b);
}

Test(cose, header_buckets_and_duplicates) {
        expect_sign1_error("a10128", "a10128", -EBADMSG, TEEP_REASON_COSE_HEADER, "alg in both buckets");
        expect_sign1_error("a20128044101", "a1044101", -EBADMSG, TEEP_REASON_COSE_HEADER, "kid in both buckets");
        /* text labels count too: {"x": 1} in both */
        expect_sign1_error("a201286178 01", "a1617802", -EBADMSG, TEEP_REASON_COSE_HEADER, "text label in both buckets");
        expect_sign1_error("a201280128", "a0", -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "alg twice in protected");
        expect_sign1_error("a10128", "a2044101044102", -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "kid twice in unprotected");
}

Test(cose, header_alg_rules) {
        TeepCoseMessage m;
        TeepError e;
        uint8_t *b;
        size_t len;

        expect_sign1_error("", "a1044101", -EBADMSG, TEEP_REASON_COSE_ALG_MISSING, "no alg");
        expect_sign1_error("a0", "a0", -EBADMSG, TEEP_REASON_COSE_ALG_MISSING, "empty protected map, no alg");
        expect_sign1_error("a101 41 00", "a0", -EBADMSG, TEEP_REASON_COSE_HEADER, "alg is a bstr");

        /* alg only in the unprotected bucket is found there */
        b = build_sign1(COSE_TAG_SIGN1, "", "a10128", "00", 64, &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        cr_expect(m.body.has_alg);
        cr_expect_eq(m.body.alg, COSE_ALG_ESP256);
        cr_expect_eq(m.body.protected_raw.len, 0);
        free(b);

        /* ES384 (-35) decodes, but no key can verify it */
        b = build_sign1(COSE_TAG_SIGN1, "a1013822", "a0", "00", 96, &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        cr_expect_eq(m.body.alg, -35);
        e = (TeepError){};
        cr_expect_eq(teep_cose_verify(&m, NULL, ring, R_N, NULL, NULL, &e), -EOPNOTSUPP);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_ALG_UNSUPPORTED);
        free(b);

        /* a text alg ("ES256") is legal COSE and never ours */
        b = build_sign1(COSE_TAG_SIGN1, "a1016545533235 36", "a0", "00", 64, &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        cr_expect_eq(m.body.alg, 0);
        e = (TeepError){};
        cr_expect_eq(teep_cose_verify(&m, NULL, ring, R_N, NULL, NULL, &e), -EOPNOTSUPP);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_ALG_UNSUPPORTED);
        free(b);

        /* Ed25519 alg with only P-256 keys: nothing to try */
        b = build_sign1(COSE_TAG_SIGN1, "a10132", "a0", "00", 64, &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0);
        e = (TeepError){};
        cr_expect_eq(teep_cose_verify(&m, NULL, &ring[R_TAM], 1, NULL, NULL, &e), -ENOKEY);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_KEY_ALG_MISMATCH);
        e = (TeepError){};
        cr_expect_eq(teep_cose_verify(&m, NULL, NULL, 0, NULL, NULL, &e), -ENOKEY);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_NO_KEY);
        free(b);
}

Test(cose, header_value_types) {
        TeepCoseMessage m;
        TeepError e;
        uint8_t *b;
        size_t len;

        expect_sign1_error("a10128", "a10405", -EBADMSG, TEEP_REASON_COSE_HEADER, "kid is an int");
        expect_sign1_error("a10128", "a103f5", -EBADMSG, TEEP_REASON_COSE_HEADER, "content type is a bool");
        expect_sign1_error("a10128", "a1182180", -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain empty array");
        expect_sign1_error("a10128", "a1182105", -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain an int");
        expect_sign1_error("a10128", "a1 f5 01", -EBADMSG, TEEP_REASON_COSE_HEADER, "label is a bool");
        expect_sign1_error("a10128", "a10505", -EBADMSG, TEEP_REASON_COSE_HEADER, "IV is an int");
        expect_sign1_error("80", "a0", -EBADMSG, TEEP_REASON_COSE_HEADER, "protected is an array");
        expect_sign1_error("a1012800", "a0", -EBADMSG, TEEP_REASON_CBOR_TRAILING, "protected has trailing bytes");
        expect_sign1_error("a10128", "80", -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "unprotected is an array");

        /* x5chain bstr and array forms, cty, and an unknown label we may ignore */
        b = build_sign1(COSE_TAG_SIGN1, "a2012803183c", "a2182182420102410318634568656c6c6f", "00", 64, &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        cr_expect(m.body.has_x5chain);
        cr_expect(m.body.has_content_type);
        cr_expect_eq(m.body.x5chain_raw.len, 6);
        cr_expect_eq(m.body.x5chain_raw.ptr[0], 0x82);
        free(b);
}

Test(cose, structure_and_tags) {
        Vector v = vector_load("libteep/query_request_cose.hex");
        Vector s = vector_load("derived/query_request_sign_esp256_ed25519.hex");
        TeepCoseMessage m;
        TeepError e;
        uint8_t *b;
        size_t len;

        /* tag 17 (COSE_Mac0) and 96 (COSE_Encrypt) around a Sign1 body */
        b = malloc(v.len + 1);
        memcpy(b, v.data, v.len);
        b[0] = 0xd1;
        expect_decode_error(b, v.len, -EBADMSG, TEEP_REASON_COSE_TAG, "tag 17");
        b[0] = 0xd8;
        memcpy(b + 1, v.data, v.len);
        b[1] = 0x60;
        expect_decode_error(b, v.len + 1, -EBADMSG, TEEP_REASON_COSE_TAG, "tag 96");
        /* tag 98 on a Sign1 shape */
        b[1] = 0x62;
        expect_decode_error(b, v.len + 1, -EBADMSG, TEEP_REASON_COSE_TAG, "tag 98 on Sign1");
        free(b);
        /* tag 18 on a COSE_Sign shape */
        b = malloc(s.len);
        memcpy(b, s.data + 1, s.len - 1);
        b[0] = 0xd2;
        expect_decode_error(b, s.len - 1, -EBADMSG, TEEP_REASON_COSE_TAG, "tag 18 on COSE_Sign");
        free(b);

        /* trailing byte, wrong arity, 4th element an int, payload an int */
        b = malloc(v.len + 1);
        memcpy(b, v.data, v.len);
        b[v.len] = 0x00;
        expect_decode_error(b, v.len + 1, -EBADMSG, TEEP_REASON_CBOR_TRAILING, "trailing byte");
        free(b);
        b = unhex_or_die("d28343a10126a040", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "3 elements");
        free(b);
        b = unhex_or_die("d28443a10126a04005", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "signature an int");
        free(b);
        b = unhex_or_die("d28443a10126a00540", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "payload an int");
        free(b);
        b = unhex_or_die("d284a10126a04040", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "protected not a bstr");
        free(b);
        b = unhex_or_die("a0", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "a map");
        free(b);

        /* COSE_Sign: no signers, too many, a signer with two elements, a signer without alg */
        b = unhex_or_die("d8628440a0410080", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "no signers");
        free(b);
        b = unhex_or_die("d8628440a04100 89 8343a10128a040 8343a10128a040 8343a10128a040 8343a10128a040 "
                         "8343a10128a040 8343a10128a040 8343a10128a040 8343a10128a040 8343a10128a040", &len);
        expect_decode_error(b, len, -E2BIG, TEEP_REASON_COSE_STRUCTURE, "nine signers");
        free(b);
        b = unhex_or_die("d8628440a04100 81 8243a10128a0", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "signer of two elements");
        free(b);
        b = unhex_or_die("d8628440a04100 82 8343a10128a040 8340a1044101 40", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_ALG_MISSING, "signer without alg");
        free(b);
        b = unhex_or_die("d8628440a04100 81 8343a10128a10128 40", &len);
        expect_decode_error(b, len, -EBADMSG, TEEP_REASON_COSE_HEADER, "signer alg in both buckets");
        free(b);

        /* a detached (nil) payload */
        b = unhex_or_die("d28443a10128a0f6 4100", &len);
        cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
        cr_expect(m.payload_detached);
        cr_expect_eq(m.payload.len, 0);
        free(b);
        vector_free(&v);
        vector_free(&s);
}

Test(cose, truncated_inputs_never_decode) {
        const char *paths[] = { "libteep/query_request_cose.hex", "derived/query_request_sign_esp256_ed25519.hex" };

        for (size_t p = 0; p < 2; p++) {
                Vector v = vector_load(paths[p]);
                for (size_t n = 0; n < v.len; n++) {
                        /* a fresh copy of exactly n bytes, so ASan sees any read past the end */
                        uint8_t *b = malloc(n ? n : 1);
                        TeepCoseMessage m;
                        TeepError e;
                        int r;

                        memcpy(b, v.data, n);
                        r = decode(TEEP_BUF(b, n), &m, &e);
                        cr_assert_eq(r, -EBADMSG, "%s cut to %zu bytes: %d", paths[p], n, r);
                        if (n > 0)
                                cr_assert_eq(e.reason, TEEP_REASON_CBOR_TRUNCATED, "%s cut to %zu: %s", paths[p], n,
                                             teep_reason_to_string(e.reason));
                        free(b);
                }
                vector_free(&v);
        }
}

Test(cose, signature_of_wrong_length) {
        static const struct {
                const char *prot;
                int key;
                size_t len;
        } table[] = {
                { "a10128", R_TAM, 63 },
                { "a10128", R_TAM, 65 },
                { "a10126", R_TAM, 0 },
                { "a10126", R_TAM, 72 },   /* a DER signature where r||s belongs */
                { "a10132", R_ED, 63 },
                { "a10127", R_ED, 128 },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                size_t len;
                uint8_t *b = build_sign1(COSE_TAG_SIGN1, table[i].prot, "a0", "00", table[i].len, &len);
                TeepCoseMessage m;
                TeepError e;

                cr_assert_eq(decode(TEEP_BUF(b, len), &m, &e), 0, "%s", e.detail);
                e = (TeepError){};
                cr_expect_eq(teep_cose_verify(&m, NULL, &ring[table[i].key], 1, NULL, NULL, &e), -EKEYREJECTED);
                cr_expect_eq(e.reason, TEEP_REASON_COSE_SIGNATURE_SIZE, "case %zu: %s", i, teep_reason_to_string(e.reason));
                free(b);
        }

        /* a real vector with its signature cut by one byte (re-encoded, so still well-formed) */
        {
                Vector v = vector_load("derived/query_request_sign1_esp256.hex");
                TeepCoseMessage m, mm;
                TeepError e;
                TeepCborWriter w;
                uint8_t *out;
                size_t len;

                cr_assert_eq(decode(vector_buf(&v), &m, &e), 0);
                teep_cbor_writer_init(&w);
                teep_cbor_put_tag(&w, COSE_TAG_SIGN1);
                teep_cbor_put_array(&w, 4);
                teep_cbor_put_buf(&w, m.body.protected_raw);
                teep_cbor_put_map(&w, 0);
                teep_cbor_put_buf(&w, m.payload);
                teep_cbor_put_bytes(&w, m.signers[0].signature.ptr, 63);
                cr_assert_eq(teep_cbor_writer_finish(&w, &out, &len), 0);
                cr_assert_eq(decode(TEEP_BUF(out, len), &mm, &e), 0);
                e = (TeepError){};
                cr_expect_eq(teep_cose_verify(&mm, NULL, &ring[R_TAM], 1, NULL, NULL, &e), -EKEYREJECTED);
                cr_expect_eq(e.reason, TEEP_REASON_COSE_SIGNATURE_SIZE);
                free(out);
                vector_free(&v);
        }
}

/* Random mutations of real messages: decode and verify must only ever return documented codes. */
Test(cose, mutations_are_handled) {
        const char *paths[] = {
                "libteep/update_cose.hex",
                "derived/query_request_sign_esp256_ed25519.hex",
                "derived/query_request_sign1_ed25519.hex",
        };
        unsigned seed = 0x7ee9;

        for (size_t p = 0; p < 3; p++) {
                Vector v = vector_load(paths[p]);
                for (int iter = 0; iter < 1500; iter++) {
                        size_t n = v.len;
                        uint8_t *b = malloc(n);
                        TeepCoseMessage m;
                        TeepError e;
                        int r;

                        memcpy(b, v.data, n);
                        for (int k = 1 + rand_r(&seed) % 3; k > 0; k--)
                                b[rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
                        if (rand_r(&seed) % 4 == 0)
                                n = (size_t)rand_r(&seed) % n;
                        r = decode(TEEP_BUF(b, n), &m, &e);
                        cr_assert(r == 0 || r == -EBADMSG || r == -E2BIG || r == -EOPNOTSUPP, "decode gave %d", r);
                        if (r == 0) {
                                r = teep_cose_verify(&m, NULL, ring, R_N, NULL, NULL, &e);
                                cr_assert(r == 0 || r == -EKEYREJECTED || r == -ENOKEY || r == -EOPNOTSUPP ||
                                                  r == -EBADMSG, "verify gave %d", r);
                        }
                        free(b);
                }
                vector_free(&v);
        }
}

/* ---- keys: COSE_Key ---- */

static int cose_key_from_hex(const char *hex, TeepError *e, TeepKey **ret) {
        size_t len;
        uint8_t *b = unhex_or_die(hex, &len);
        int r;

        *e = (TeepError){};
        r = teep_key_from_cose_key(ret, TEEP_BUF(b, len), e);
        free(b);
        return r;
}

#define TAM_X "0e908aa8f066db1f084e0c3652c63952bd99f2a5bdb22f9e01367aad03aba68b"
#define TAM_Y "77da1bd8ac4f0cb490ba210648bf79ab164d49ad3551d71d314b2749ee42d29a"
#define AGENT_D "60fe6dd6d85d5740a5349b6f91267eeac5ba81b8cb53ee249e4b4eb102c476b3"
#define ED_X "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define ED_X_WRONG "17277e8062a1f6c1d94620c69538b7eb37dbca3a806182f466202155980528f6"
#define ED_D "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

Test(cose, cose_key_rejections) {
        static const struct {
                const char *hex;
                int want;
                TeepReason reason;
                const char *what;
        } table[] = {
                { "a401012006215820" ED_X_WRONG "235820" ED_D, -EBADMSG, TEEP_REASON_COSE_KEY, "Ed25519 d with a foreign x" },
                { "a5010220012158" "20" TAM_X "225820" TAM_Y "235820" AGENT_D, -EBADMSG, TEEP_REASON_COSE_KEY,
                  "P-256 d with a foreign point" },
                { "a4010220012158" "20" TAM_X "225820" "77da1bd8ac4f0cb490ba210648bf79ab164d49ad3551d71d314b2749ee42d29b",
                  -EBADMSG, TEEP_REASON_COSE_KEY, "point off the curve" },
                { "a4010220022158" "20" TAM_X "225820" TAM_Y, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "P-384 crv" },
                { "a30103200121" "5820" TAM_X, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "RSA kty" },
                { "a30101200421" "5820" ED_X, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "X25519 crv" },
                { "a4010220012158" "1f" "908aa8f066db1f084e0c3652c63952bd99f2a5bdb22f9e01367aad03aba68b" "225820" TAM_Y,
                  -EBADMSG, TEEP_REASON_COSE_KEY, "31-byte x" },
                { "a3010220012158" "20" TAM_X, -EBADMSG, TEEP_REASON_COSE_KEY, "EC2 without y" },
                { "a401022001215820" TAM_X "22f5", -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "compressed point" },
                { "a5010220010327215820" TAM_X "225820" TAM_Y, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "EdDSA alg on P-256" },
                { "a4010101022001215820" TAM_X, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY, "kty twice" },
                { "a220012158" "20" TAM_X, -EBADMSG, TEEP_REASON_COSE_KEY, "no kty" },
                { "8401022001", -EBADMSG, TEEP_REASON_COSE_KEY, "an array" },
                { "a4010220012158", -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "truncated" },
                { "a401022001215820" TAM_X "225820" TAM_Y "00", -EBADMSG, TEEP_REASON_CBOR_TRAILING, "trailing" },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                TeepKey *k = NULL;
                TeepError e;
                int r = cose_key_from_hex(table[i].hex, &e, &k);

                cr_expect_eq(r, table[i].want, "%s: %d (%s)", table[i].what, r, e.detail);
                cr_expect_eq(e.reason, table[i].reason, "%s: %s", table[i].what, teep_reason_to_string(e.reason));
                cr_expect_null(k, "%s: ret written on failure", table[i].what);
                teep_key_free(k);
        }
}

Test(cose, cose_key_accepts_extras) {
        TeepKey *k = NULL;
        TeepError e;
        char tp[65];

        /* kid (2), alg ES256 (3), key_ops (4) and a text label are fine */
        cr_assert_eq(cose_key_from_hex("a80102024174032604810220012158" "20" TAM_X "225820" TAM_Y "6178f6", &e, &k), 0,
                     "%s", e.detail);
        thumb_hex(k, tp);
        cr_expect_str_eq(tp, TP_TAM);
        cr_expect(teep_key_supports_alg(k, COSE_ALG_ESP256));
        cr_expect(teep_key_supports_alg(k, COSE_ALG_ES256));
        cr_expect_not(teep_key_supports_alg(k, COSE_ALG_ED25519));
        cr_expect_not(teep_key_supports_alg(k, -35));
        cr_expect_eq(teep_key_default_alg(k), COSE_ALG_ESP256);
        teep_key_free(k);
}

Test(cose, key_from_any_forms) {
        Vector bin = vector_load(K_TAM);
        char *hex = malloc(bin.len * 2 + 1), *spaced = malloc(bin.len * 3 + 4);
        TeepKey *k = NULL;
        TeepError e = {};
        char tp[65];
        size_t o = 0;

        hexstr(bin.data, bin.len, hex);
        /* hex with line breaks and spaces, as people paste it */
        for (size_t i = 0; hex[i]; i++) {
                spaced[o++] = hex[i];
                if (i % 16 == 15)
                        spaced[o++] = i % 32 == 31 ? '\n' : ' ';
        }
        spaced[o++] = '\n';
        cr_assert_eq(teep_key_from_any(&k, (const uint8_t *)spaced, o, &e), 0, "%s", e.detail);
        thumb_hex(k, tp);
        cr_expect_str_eq(tp, TP_TAM);
        k = teep_key_free(k);

        cr_assert_eq(teep_key_from_any(&k, bin.data, bin.len, &e), 0);
        k = teep_key_free(k);

        /* odd digit count, and text that is neither hex nor PEM */
        e = (TeepError){};
        cr_expect_eq(teep_key_from_any(&k, (const uint8_t *)hex, strlen(hex) - 1, &e), -EBADMSG);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_KEY);
        cr_expect_eq(teep_key_from_any(&k, (const uint8_t *)"not a key", 9, &e), -EBADMSG);
        cr_expect_null(k);
        free(hex);
        free(spaced);
        vector_free(&bin);
}

/* ---- keys: PEM ---- */

Test(cose, pem_forms) {
        static const struct {
                const char *path;
                TeepKeyType type;
                bool priv;
                const char *tp;
        } table[] = {
                { "libteep/keys/tam_prime256v1_pub.pem", TEEP_KEY_P256, false, TP_TAM },            /* SPKI */
                { "libteep/keys/tam_prime256v1.pem", TEEP_KEY_P256, true, TP_TAM },                 /* SEC1 */
                { "libteep/keys/teep_agent_prime256v1.pem", TEEP_KEY_P256, true, TP_AGENT },        /* EC PARAMETERS + SEC1 */
                { "libteep/keys/verifier_prime256v1.pem", TEEP_KEY_P256, true, TP_VERIFIER },       /* EC PARAMETERS + PKCS#8 */
                { "libteep/keys/tam_ed25519.pem", TEEP_KEY_ED25519, true, NULL },                   /* Ed25519 PKCS#8 */
                { "libteep/keys/tam_ed25519_pub.pem", TEEP_KEY_ED25519, false, NULL },              /* Ed25519 SPKI */
                { "draft-teep-protocol/keys/suit_signer_p256_private.pem", TEEP_KEY_P256, true, NULL },
                { "draft-teep-protocol/keys/suit_signer_p256_public.pem", TEEP_KEY_P256, false, NULL },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                Vector v = vector_load(table[i].path);
                TeepKey *k = NULL;
                TeepError e = {};
                char tp[65];

                cr_assert_eq(teep_key_from_pem(&k, v.data, v.len, &e), 0, "%s: %s", table[i].path, e.detail);
                cr_expect_eq(teep_key_type(k), table[i].type, "%s", table[i].path);
                cr_expect_eq(teep_key_has_private(k), table[i].priv, "%s", table[i].path);
                if (table[i].tp) {
                        thumb_hex(k, tp);
                        cr_expect_str_eq(tp, table[i].tp, "%s", table[i].path);
                }
                k = teep_key_free(k);
                vector_free(&v);
        }

        /* the SUIT signer PEM and its COSE_Key form are one key */
        {
                TeepKey *a = key_load("draft-teep-protocol/keys/suit_signer_p256_public.pem");
                char x[65], y[65];
                thumb_hex(a, x);
                thumb_hex(ring[R_SUIT], y);
                cr_expect_str_eq(x, y);
                teep_key_free(a);
        }
}

Test(cose, pem_rejections) {
        static const struct {
                const char *text;
                int want;
                const char *what;
        } table[] = {
                { "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDpCKqPBm2x8ITgw2UsY5Ur2Z8qW9\n", -EBADMSG, "no END line" },
                { "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", -EBADMSG, "bad base64" },
                { "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", -EBADMSG, "garbage DER" },
                { "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n", -EBADMSG, "parameters only" },
                { "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", -EOPNOTSUPP, "RSA label" },
                { "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", -EOPNOTSUPP, "encrypted" },
                { "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", -EBADMSG, "mismatched END" },
                { "-----BEGIN ", -EBADMSG, "bare BEGIN" },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                TeepKey *k = NULL;
                TeepError e = {};
                int r = teep_key_from_pem(&k, (const uint8_t *)table[i].text, strlen(table[i].text), &e);

                cr_expect_eq(r, table[i].want, "%s: %d (%s)", table[i].what, r, e.detail);
                cr_expect_eq(e.reason, TEEP_REASON_COSE_KEY, "%s", table[i].what);
                cr_expect_null(k);
        }

        /* every prefix of a real PEM file: no crash, no read past the end, success only when complete */
        {
                Vector v = vector_load("libteep/keys/teep_agent_prime256v1.pem");
                const char *end = strstr((const char *)v.data, "-----END EC PRIVATE KEY-----");
                size_t complete;

                cr_assert_not_null(end);
                complete = (size_t)(end - (const char *)v.data) + strlen("-----END EC PRIVATE KEY-----");
                for (size_t n = 0; n < v.len; n++) {
                        uint8_t *b = malloc(n ? n : 1);
                        TeepKey *k = NULL;
                        int r;

                        memcpy(b, v.data, n);
                        r = teep_key_from_pem(&k, b, n, NULL);
                        cr_assert_eq(r == 0, n >= complete, "prefix %zu: %d", n, r);
                        teep_key_free(k);
                        free(b);
                }
                vector_free(&v);
        }
}

/* Make a self-signed certificate and the PKCS#8 of its key with gnutls, then parse both. */
static void certificate_case(gnutls_pk_algorithm_t pk, gnutls_ecc_curve_t curve, gnutls_digest_algorithm_t dig,
                             TeepKeyType type) {
        gnutls_x509_privkey_t xk;
        gnutls_x509_crt_t crt;
        gnutls_datum_t cert_pem = {}, key_pem = {};
        static const unsigned char serial[] = { 0x01 };
        TeepKey *from_cert = NULL, *from_key = NULL;
        TeepError e = {};
        char a[65], b[65];
        time_t now = time(NULL);

        cr_assert_eq(gnutls_x509_privkey_init(&xk), 0);
        cr_assert_eq(gnutls_x509_privkey_generate(xk, pk, GNUTLS_CURVE_TO_BITS(curve), 0), 0);
        cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
        cr_assert_eq(gnutls_x509_crt_set_version(crt, 3), 0);
        cr_assert_eq(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
        cr_assert_eq(gnutls_x509_crt_set_activation_time(crt, now), 0);
        cr_assert_eq(gnutls_x509_crt_set_expiration_time(crt, now + 3600), 0);
        cr_assert_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "teepkit test TAM", 16), 0);
        cr_assert_eq(gnutls_x509_crt_set_key(crt, xk), 0);
        cr_assert_eq(gnutls_x509_crt_sign2(crt, crt, xk, dig, 0), 0);
        cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem), 0);
        cr_assert_eq(gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_pem), 0);

        cr_assert_eq(teep_key_from_pem(&from_cert, cert_pem.data, cert_pem.size, &e), 0, "%s", e.detail);
        cr_assert_eq(teep_key_from_any(&from_key, key_pem.data, key_pem.size, &e), 0, "%s", e.detail);
        cr_expect_eq(teep_key_type(from_cert), type);
        cr_expect_not(teep_key_has_private(from_cert));
        cr_expect(teep_key_has_private(from_key));
        thumb_hex(from_cert, a);
        thumb_hex(from_key, b);
        cr_expect_str_eq(a, b);

        /* what the private key signs, the certificate's key verifies */
        {
                uint8_t *out;
                size_t len;
                TeepCoseMessage m;
                cr_assert_eq(teep_cose_sign1(from_key, 0, NULL, TEEP_BUF("c", 1), false, &out, &len), 0);
                cr_assert_eq(teep_cose_decode(TEEP_BUF(out, len), &m, NULL), 0);
                cr_expect_eq(teep_cose_verify(&m, NULL, &from_cert, 1, NULL, NULL, NULL), 0);
                free(out);
        }

        teep_key_free(from_cert);
        teep_key_free(from_key);
        gnutls_free(cert_pem.data);
        gnutls_free(key_pem.data);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(xk);
}

Test(cose, pem_certificates) {
        certificate_case(GNUTLS_PK_ECDSA, GNUTLS_ECC_CURVE_SECP256R1, GNUTLS_DIG_SHA256, TEEP_KEY_P256);
        certificate_case(GNUTLS_PK_EDDSA_ED25519, GNUTLS_ECC_CURVE_ED25519, GNUTLS_DIG_SHA512, TEEP_KEY_ED25519);
}

Test(cose, pem_other_curve_is_unsupported) {
        gnutls_x509_privkey_t xk;
        gnutls_pubkey_t pub;
        gnutls_privkey_t pk;
        gnutls_datum_t priv_pem = {}, pub_pem = {};
        TeepKey *k = NULL;
        TeepError e = {};

        cr_assert_eq(gnutls_x509_privkey_init(&xk), 0);
        cr_assert_eq(gnutls_x509_privkey_generate(xk, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0), 0);
        cr_assert_eq(gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &priv_pem), 0);
        cr_assert_eq(gnutls_privkey_init(&pk), 0);
        cr_assert_eq(gnutls_privkey_import_x509(pk, xk, 0), 0);
        cr_assert_eq(gnutls_pubkey_init(&pub), 0);
        cr_assert_eq(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
        cr_assert_eq(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &pub_pem), 0);

        cr_expect_eq(teep_key_from_pem(&k, priv_pem.data, priv_pem.size, &e), -EOPNOTSUPP, "%s", e.detail);
        cr_expect_eq(e.reason, TEEP_REASON_COSE_KEY);
        cr_expect_eq(teep_key_from_pem(&k, pub_pem.data, pub_pem.size, &e), -EOPNOTSUPP, "%s", e.detail);
        cr_expect_null(k);

        gnutls_free(priv_pem.data);
        gnutls_free(pub_pem.data);
        gnutls_pubkey_deinit(pub);
        gnutls_privkey_deinit(pk);
        gnutls_x509_privkey_deinit(xk);
}

/* ---- export ---- */

Test(cose, export_cose_is_the_canonical_map) {
        static const struct {
                const char *path;
                const char *canonical;
        } table[] = {
                { K_TAM, K_TAM },
                { K_TAM_PRIV, K_TAM },
                { K_TAM_PEM, K_TAM },
                { K_AGENT_PRIV, K_AGENT },
                { K_ED_PRIV, K_ED },
                { K_SUIT, K_SUIT },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                TeepKey *k = key_load(table[i].path), *back = NULL;
                Vector want = vector_load(table[i].canonical);
                uint8_t *out;
                size_t len;
                char a[65], b[65];

                cr_assert_eq(teep_key_export_cose(k, &out, &len), 0);
                cr_expect(teep_buf_eq(TEEP_BUF(out, len), vector_buf(&want)), "%s: export differs from %s",
                          table[i].path, table[i].canonical);
                cr_assert_eq(teep_key_from_cose_key(&back, TEEP_BUF(out, len), NULL), 0);
                cr_expect_not(teep_key_has_private(back));
                thumb_hex(k, a);
                thumb_hex(back, b);
                cr_expect_str_eq(a, b);
                free(out);
                teep_key_free(back);
                teep_key_free(k);
                vector_free(&want);
        }
}

Test(cose, export_pem_round_trips) {
        Vector want = vector_load(K_TAM_PEM);
        TeepKey *gen[2] = {};
        char *pem;
        TeepKey *back = NULL;
        char a[65], b[65];

        /* gnutls writes the same SPKI text as OpenSSL did for the vector */
        cr_assert_eq(teep_key_export_pem(ring[R_TAM], &pem), 0);
        cr_expect_str_eq(pem, (const char *)want.data);
        free(pem);
        vector_free(&want);

        cr_assert_eq(teep_key_generate(&gen[0], TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&gen[1], TEEP_KEY_ED25519), 0);
        for (size_t i = 0; i < 2; i++) {
                cr_assert_eq(teep_key_export_pem(gen[i], &pem), 0);
                cr_assert_eq(teep_key_from_pem(&back, (const uint8_t *)pem, strlen(pem), NULL), 0);
                cr_expect_not(teep_key_has_private(back));
                cr_expect_eq(teep_key_type(back), teep_key_type(gen[i]));
                thumb_hex(gen[i], a);
                thumb_hex(back, b);
                cr_expect_str_eq(a, b);
                back = teep_key_free(back);
                free(pem);
        }
        teep_key_free(gen[0]);
        teep_key_free(gen[1]);
}

Test(cose, export_private_pem_round_trips) {
        TeepKey *src[3] = { key_load(K_AGENT_PRIV), key_load(K_ED_PRIV), NULL };
        TeepKey *pubs[2] = { ring[R_AGENT], ring[R_ED] };
        char *pem = NULL;
        size_t len;

        cr_assert_eq(teep_key_generate(&src[2], TEEP_KEY_ED25519), 0);
        for (size_t i = 0; i < 3; i++) {
                TeepKey *back = NULL;
                uint8_t *out;
                size_t olen;
                TeepCoseMessage m;
                char a[65], b[65];

                cr_assert_eq(teep_key_export_private_pem(src[i], &pem, &len), 0);
                cr_expect_eq(len, strlen(pem));
                cr_expect(strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0, "%s", pem);
                cr_assert_eq(teep_key_from_any(&back, (const uint8_t *)pem, len, NULL), 0);
                cr_expect(teep_key_has_private(back));
                thumb_hex(src[i], a);
                thumb_hex(back, b);
                cr_expect_str_eq(a, b);

                /* the re-imported key signs for the original public half */
                cr_assert_eq(teep_cose_sign1(back, 0, NULL, TEEP_BUF("z", 1), false, &out, &olen), 0);
                cr_assert_eq(teep_cose_decode(TEEP_BUF(out, olen), &m, NULL), 0);
                cr_expect_eq(teep_cose_verify(&m, NULL, i < 2 ? &pubs[i] : &src[2], 1, NULL, NULL, NULL), 0);
                free(out);
                explicit_bzero(pem, len);
                free(pem);
                teep_key_free(back);
                teep_key_free(src[i]);
        }

        pem = NULL;
        cr_expect_eq(teep_key_export_private_pem(ring[R_TAM], &pem, &len), -ENOKEY);
        cr_expect_null(pem);
}

/* ---- small things ---- */

Test(cose, alg_names_and_sha256) {
        static const uint8_t abc_sha256[32] = {
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
        };
        uint8_t h[32];

        cr_expect_str_eq(teep_cose_alg_to_string(COSE_ALG_ESP256), "ESP256");
        cr_expect_str_eq(teep_cose_alg_to_string(COSE_ALG_ES256), "ES256 (legacy)");
        cr_expect_str_eq(teep_cose_alg_to_string(COSE_ALG_ED25519), "Ed25519");
        cr_expect_str_eq(teep_cose_alg_to_string(COSE_ALG_EDDSA), "EdDSA (legacy)");
        cr_expect_null(teep_cose_alg_to_string(12345));
        cr_assert_eq(teep_sha256(TEEP_BUF("abc", 3), h), 0);
        cr_expect_eq(memcmp(h, abc_sha256, 32), 0);
        cr_expect_eq(teep_key_default_alg(ring[R_ED]), COSE_ALG_ED25519);
        cr_expect(teep_key_supports_alg(ring[R_ED], COSE_ALG_EDDSA));
        cr_expect_not(teep_key_supports_alg(ring[R_ED], COSE_ALG_ES256));
}
