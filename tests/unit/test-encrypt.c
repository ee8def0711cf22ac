/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-encrypt.c: SUIT encrypted payloads: the TEEP draft's personalization vector, GCM/CTR round trips, tampering */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teep-cose.h"
#include "teep-encrypt.h"
#include "teep-protocol.h"
#include "teep-suit.h"
#include "vectors.h"

#define KEK_PRIVATE "derived/keys/personalization_kek_p256_private.cose.hex"
#define KEK_PUBLIC  "libteep/keys/teep_agent_es256_public.cose.hex"
#define OTHER_KEY   "libteep/keys/tam_es256_private.cose.hex"
#define SIGNER      "draft-teep-protocol/keys/suit_signer_p256_public.pem"
#define PLAINTEXT   "{\"name\":\"FOO Bar\",\"secret\":\"0123456789abfcdef0123456789abcd\"}"
#define PLAIN_SHA   "8273468fb64bd84bb04825f8371744d952b751c73a60f455af681e167726f116"

static TeepKey *load_key(const char *relpath) {
        Vector v = vector_load(relpath);
        TeepKey *key = NULL;
        TeepError err = {};
        cr_assert_eq(teep_key_from_any(&key, v.data, v.len, &err), 0, "%s: %s", relpath, err.detail);
        vector_free(&v);
        return key;
}

/* The content and encryption-info of App. E Ex.3's install sequence (views into *env_data). */
static void personalization_params(Vector *env_data, TeepBuf *ret_content, TeepBuf *ret_info) {
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = NULL;
        TeepKey *signer = load_key(SIGNER);
        TeepError err = {};
        bool found = false;

        *env_data = vector_load("draft-teep-protocol/suit_personalization.hex");
        cr_assert_eq(teep_suit_envelope_decode(vector_buf(env_data), &env, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_suit_envelope_verify(env, &signer, 1, NULL, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_suit_manifest_decode(env, 0, &m, &err), 0, "%s", err.detail);
        for (size_t i = 0; i < m->install.n_commands; i++) {
                const TeepSuitCommand *c = &m->install.commands[i];
                if (c->params && teep_suit_parameters_has(c->params, SUIT_PARAM_ENCRYPTION_INFO)) {
                        *ret_content = c->params->content;
                        *ret_info = c->params->encryption_info;
                        found = true;
                }
        }
        cr_assert(found, "the install sequence sets encryption-info");
        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(signer);
}

Test(encrypt, draft_personalization_vector_decrypts) {
        Vector v;
        TeepBuf content, info_raw;
        TeepEncryptionInfo info;
        TeepKey *kek = load_key(KEK_PRIVATE);
        TeepError err = {};
        uint8_t *plain = NULL, sha[32];
        size_t plain_len = 0;

        personalization_params(&v, &content, &info_raw);
        cr_assert_eq(teep_encryption_info_decode(info_raw, &info, &err), 0, "%s", err.detail);
        cr_expect_eq(info.content_alg, COSE_ALG_A128CTR);
        cr_expect_eq(info.iv_len, 16);
        cr_expect_eq(info.n_recipients, 1);
        cr_expect(buf_eq_hex(info.recipients[0].protected_raw, "a101381c"));
        cr_expect_not(info.recipients[0].has_kid);

        cr_assert_eq(teep_decrypt(info_raw, kek, content, &plain, &plain_len, &err), 0, "%s", err.detail);
        cr_assert_eq(plain_len, 61);
        cr_expect_eq(memcmp(plain, PLAINTEXT, 61), 0, "plaintext: %.*s", (int)plain_len, plain);
        teep_sha256(TEEP_BUF(plain, plain_len), sha);
        cr_expect(buf_eq_hex(TEEP_BUF(sha, 32), PLAIN_SHA), "the validate section's image-digest");
        free(plain);

        /* byte by byte through the streaming interface: the same plaintext */
        {
                TeepDecryptor *d = NULL;
                uint8_t out[64 + 16];
                size_t o = 0, n = 0;
                cr_assert_eq(teep_decryptor_new(&d, &info, kek, content.len, &err), 0);
                for (size_t i = 0; i < content.len; i++) {
                        cr_assert_eq(teep_decryptor_update(d, content.ptr + i, 1, out + o, &n, &err), 0);
                        o += n;
                }
                cr_assert_eq(teep_decryptor_finish(d, out + o, &n, &err), 0);
                o += n;
                cr_expect_eq(o, 61);
                cr_expect_eq(memcmp(out, PLAINTEXT, 61), 0);
                teep_decryptor_free(d);
        }
        teep_key_free(kek);
        vector_free(&v);
}

Test(encrypt, draft_vector_refuses_other_keys) {
        Vector v;
        TeepBuf content, info_raw;
        TeepKey *other = load_key(OTHER_KEY), *pub = load_key(KEK_PUBLIC);
        TeepError err = {};
        uint8_t *plain = NULL;
        size_t plain_len = 0;

        personalization_params(&v, &content, &info_raw);
        cr_expect_eq(teep_decrypt(info_raw, other, content, &plain, &plain_len, &err), -EKEYREJECTED);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_RECIPIENT, "%s", teep_reason_to_string(err.reason));
        cr_expect_str_eq(teep_reason_to_string(err.reason), "enc-wrong-recipient");
        cr_expect_null(plain);
        /* the right key without its private half cannot decrypt */
        cr_expect_eq(teep_decrypt(info_raw, pub, content, &plain, &plain_len, &err), -ENOKEY);
        cr_expect_null(plain);
        teep_key_free(other);
        teep_key_free(pub);
        vector_free(&v);
}

static uint8_t *pattern(size_t n) {
        uint8_t *p = malloc(n ? n : 1);
        cr_assert_not_null(p);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 31 + 7);
        return p;
}

static void round_trip(int64_t alg, size_t n, size_t chunk) {
        TeepKey *dev = NULL;
        uint8_t *plain = pattern(n), *info_raw = NULL, *ct = NULL, *out;
        size_t info_len = 0, ct_len = 0, o = 0, k = 0;
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        TeepError err = {};

        cr_assert_eq(teep_key_generate(&dev, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_encrypt(dev, alg, NULL, TEEP_BUF(plain, n), &info_raw, &info_len, &ct, &ct_len), 0);
        cr_assert_eq(ct_len, n + (alg == COSE_ALG_A128GCM ? 16 : 0));
        if (n >= 16)
                cr_expect_neq(memcmp(ct, plain, 16), 0, "ciphertext differs from plaintext");
        cr_assert_eq(teep_encryption_info_decode(TEEP_BUF(info_raw, info_len), &info, &err), 0, "%s", err.detail);
        cr_expect_eq(info.content_alg, alg);
        cr_expect(info.recipients[0].has_kid, "the thumbprint goes in as kid");
        out = malloc(ct_len + 32);
        cr_assert_eq(teep_decryptor_new(&d, &info, dev, ct_len, &err), 0, "%s", err.detail);
        for (size_t i = 0; i < ct_len; i += chunk) {
                size_t take = ct_len - i < chunk ? ct_len - i : chunk;
                cr_assert_eq(teep_decryptor_update(d, ct + i, take, out + o, &k, &err), 0);
                cr_assert_leq(k, take + 16);
                o += k;
        }
        cr_assert_eq(teep_decryptor_finish(d, out + o, &k, &err), 0, "%s", err.detail);
        o += k;
        cr_assert_eq(o, n, "%s %zu bytes in chunks of %zu: got %zu", teep_content_alg_to_string(alg), n, chunk, o);
        cr_expect_eq(memcmp(out, plain, n), 0);
        teep_decryptor_free(d);
        free(out);
        free(plain);
        free(info_raw);
        free(ct);
        teep_key_free(dev);
}

Test(encrypt, gcm_and_ctr_round_trip_in_any_chunking) {
        const size_t sizes[] = { 0, 1, 15, 16, 17, 61, 4096, 100003 };
        const size_t chunks[] = { 1, 7, 16, 33, 65536 };
        const int64_t algs[] = { COSE_ALG_A128GCM, COSE_ALG_A128CTR };

        for (size_t a = 0; a < 2; a++)
                for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
                        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
                                if (sizes[s] < 5000 || chunks[c] > 16)
                                        round_trip(algs[a], sizes[s], chunks[c]);
}

typedef struct Sealed {
        TeepKey *dev;
        uint8_t *info;
        size_t info_len;
        uint8_t *ct;
        size_t ct_len;
} Sealed;

static Sealed seal(int64_t alg, const char *text) {
        Sealed s = {};
        cr_assert_eq(teep_key_generate(&s.dev, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_encrypt(s.dev, alg, NULL, TEEP_BUF(text, strlen(text)), &s.info, &s.info_len, &s.ct, &s.ct_len), 0);
        return s;
}

static void sealed_free(Sealed *s) {
        teep_key_free(s->dev);
        free(s->info);
        free(s->ct);
}

static int open_sealed(const Sealed *s, TeepBuf ct, const TeepKey *key, TeepError *err, uint8_t **ret, size_t *ret_len) {
        return teep_decrypt(TEEP_BUF(s->info, s->info_len), key ?: s->dev, ct, ret, ret_len, err);
}

Test(encrypt, gcm_refuses_tampered_ciphertext_tag_and_length) {
        Sealed s = seal(COSE_ALG_A128GCM, "personalization: key=0123456789");
        TeepError err = {};
        uint8_t *p = NULL;
        size_t n = 0;

        cr_assert_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), NULL, &err, &p, &n), 0, "%s", err.detail);
        free(p);
        p = NULL;
        s.ct[3] ^= 1; /* ciphertext */
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), NULL, &err, &p, &n), -EKEYREJECTED);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_TAG);
        cr_expect_null(p);
        s.ct[3] ^= 1;
        s.ct[s.ct_len - 1] ^= 0x80; /* tag */
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), NULL, &err, &p, &n), -EKEYREJECTED);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_TAG);
        s.ct[s.ct_len - 1] ^= 0x80;
        /* truncated: a shorter stream is authenticated as such, and fails */
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len - 1), NULL, &err, &p, &n), -EKEYREJECTED);
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, 15), NULL, &err, &p, &n), -EBADMSG);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_LENGTH);
        sealed_free(&s);
}

Test(encrypt, wrong_recipient_and_altered_wrapped_key_are_named) {
        Sealed s = seal(COSE_ALG_A128GCM, "secret");
        TeepKey *other = NULL;
        TeepEncryptionInfo info;
        TeepError err = {};
        uint8_t *p = NULL;
        size_t n = 0;

        cr_assert_eq(teep_key_generate(&other, TEEP_KEY_P256), 0);
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), other, &err, &p, &n), -EKEYREJECTED);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_RECIPIENT);
        /* the wrapped key is the last 24 bytes of the encryption-info */
        s.info[s.info_len - 5] ^= 4;
        cr_assert_eq(teep_encryption_info_decode(TEEP_BUF(s.info, s.info_len), &info, &err), 0);
        cr_expect_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), NULL, &err, &p, &n), -EKEYREJECTED);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_RECIPIENT);
        cr_expect_null(p);
        teep_key_free(other);
        sealed_free(&s);
}

Test(encrypt, ctr_has_no_tag_so_tampering_changes_the_plaintext) {
        const char *text = "the SUIT image-digest of this text is what catches tampering";
        Sealed s = seal(COSE_ALG_A128CTR, text);
        TeepError err = {};
        uint8_t *p = NULL;
        size_t n = 0;

        s.ct[0] ^= 1;
        cr_assert_eq(open_sealed(&s, TEEP_BUF(s.ct, s.ct_len), NULL, &err, &p, &n), 0);
        cr_expect_eq(n, strlen(text));
        cr_expect_neq(memcmp(p, text, n), 0);
        free(p);
        sealed_free(&s);
}

Test(encrypt, streaming_refuses_more_than_announced) {
        Sealed s = seal(COSE_ALG_A128CTR, "0123456789");
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        TeepError err = {};
        uint8_t out[64];
        size_t n = 0;

        cr_assert_eq(teep_encryption_info_decode(TEEP_BUF(s.info, s.info_len), &info, &err), 0);
        cr_assert_eq(teep_decryptor_new(&d, &info, s.dev, 5, &err), 0);
        cr_expect_eq(teep_decryptor_update(d, s.ct, 10, out, &n, &err), -EBADMSG);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_LENGTH);
        cr_expect_eq(teep_decryptor_update(d, s.ct, 4, out, &n, &err), 0);
        cr_expect_eq(teep_decryptor_finish(d, out, &n, &err), -EBADMSG, "one byte missing");
        teep_decryptor_free(d);
        sealed_free(&s);
}

/* Hand-made encryption-infos: every refusal has its reason. */
Test(encrypt, malformed_encryption_info_is_refused_with_a_reason) {
        static const struct {
                const char *hex;
                int error;
                TeepReason reason;
        } cases[] = {
                /* not a COSE_Encrypt: a map */
                { "a0", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* tag 16 (COSE_Encrypt0) */
                { "d08440a0f680", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* A256GCM (3) */
                { "d8608443a10103a1054c000000000000000000000000f680", -EOPNOTSUPP, TEEP_REASON_ENC_ALG },
                /* A128GCM with a 16-byte IV */
                { "d8608443a10101a1055000000000000000000000000000000000f680", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* attached ciphertext */
                { "d8608443a10101a1054c000000000000000000000000410080", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* no recipients */
                { "d8608443a10101a1054c000000000000000000000000f680", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* crit in the protected header */
                { "d8608447a20101028138ffa1054c000000000000000000000000f680", -EOPNOTSUPP, TEEP_REASON_ENC_ALG },
                /* alg in both buckets */
                { "d8608443a10101a20101054c000000000000000000000000f680", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
                /* ECDH-ES+HKDF-256 (-25) recipient */
                { "d8608443a10101a1054c000000000000000000000000f6818344a1013818a05818000000000000000000000000000000000000000000000000", -EOPNOTSUPP, TEEP_REASON_ENC_ALG },
                /* recipient without ephemeral key */
                { "d8608443a10101a1054c000000000000000000000000f6818344a101381ca05818000000000000000000000000000000000000000000000000", -EBADMSG, TEEP_REASON_ENC_STRUCTURE },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char clean[512];
                size_t o = 0;
                uint8_t *owned = NULL;
                TeepEncryptionInfo info;
                TeepError err = {};
                TeepBuf in;
                int r;

                for (const char *p = cases[i].hex; *p && o < sizeof(clean) - 1; p++)
                        if (*p != ' ')
                                clean[o++] = *p;
                clean[o] = 0;
                in = hexbuf(clean, &owned);
                r = teep_encryption_info_decode(in, &info, &err);
                cr_expect_eq(r, cases[i].error, "case %zu: %d (%s: %s)", i, r, teep_reason_to_string(err.reason), err.detail);
                if (r == cases[i].error && cases[i].reason != TEEP_REASON_ENC_STRUCTURE)
                        cr_expect_eq(err.reason, cases[i].reason, "case %zu: %s", i, teep_reason_to_string(err.reason));
                free(owned);
        }
}

Test(encrypt, ephemeral_key_off_the_curve_is_refused) {
        Sealed s = seal(COSE_ALG_A128CTR, "x");
        TeepEncryptionInfo info;
        TeepError err = {};
        uint8_t *y;

        /* the y coordinate is the 32 bytes before the wrapped key's 0x58 0x18 head */
        y = s.info + s.info_len - 24 - 2 - 32;
        y[31] ^= 1;
        cr_expect_eq(teep_encryption_info_decode(TEEP_BUF(s.info, s.info_len), &info, &err), -EBADMSG);
        cr_expect_eq(err.reason, TEEP_REASON_ENC_STRUCTURE);
        cr_expect(strstr(err.detail, "not on P-256"), "%s", err.detail);
        sealed_free(&s);
}
