/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-encrypt.c: SUIT encrypted payloads: COSE_Encrypt encryption-info, ECDH-ES+A128KW, A128GCM/A128CTR */

#include <gmp.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/aes.h>
#include <nettle/ctr.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/nist-keywrap.h>
#include <stdlib.h>
#include <string.h>

#include "teep-encrypt.h"
#include "teep-protocol.h"

#define KEY_LEN 16u      /* A128KW KEK and A128* CEK */
#define WRAPPED_LEN 24u  /* RFC 3394: 8-byte integrity block + 16 */
#define COORD_LEN 32u
#define GCM_IV_LEN 12u
#define CTR_IV_LEN 16u
#define MAX_HDR_LABELS 16u

static const char kdf_other[] = "SUIT Payload Encryption";
/* RFC 3394 default initial value */
static const uint8_t kw_iv[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };

/* ---- decoding ---- */

typedef struct Hdr {
        size_t n_labels;
        int64_t labels[MAX_HDR_LABELS]; /* both buckets: a label twice is malformed */
        bool has_alg;
        int64_t alg;
        bool has_iv;
        TeepBuf iv;
        bool has_kid;
        TeepBuf kid;
        bool has_eph;
        TeepBuf eph; /* the encoded COSE_Key */
} Hdr;

static int enc_fail(TeepError *err, int error, TeepReason reason, const char *what) {
        return teep_error_set(err, error, reason, "encryption-info: %s", what);
}

static int hdr_note_label(Hdr *h, int64_t label, TeepError *err) {
        for (size_t i = 0; i < h->n_labels; i++)
                if (h->labels[i] == label)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "a header label twice");
        if (h->n_labels >= MAX_HDR_LABELS)
                return enc_fail(err, -E2BIG, TEEP_REASON_ENC_STRUCTURE, "too many header labels");
        h->labels[h->n_labels++] = label;
        return 0;
}

/* One header map (the reader is at the map head). Unknown labels are skipped, crit refused. */
static int parse_hdr_map(TeepCborReader *r, Hdr *h, TeepError *err) {
        size_t n;
        int k;

        k = teep_cbor_read_map(r, &n, err);
        if (k < 0)
                return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "header is not a map");
        for (size_t i = 0; i < n; i++) {
                TeepCborItem it;
                int64_t label;

                k = teep_cbor_peek(r, &it);
                if (k < 0)
                        return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "truncated header");
                if (it.type == TEEP_CBOR_TEXT) {
                        if (teep_cbor_skip(r, NULL) < 0 || teep_cbor_skip(r, NULL) < 0)
                                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "truncated header");
                        continue;
                }
                k = teep_cbor_read_int(r, &label, err);
                if (k < 0)
                        return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "header label");
                k = hdr_note_label(h, label, err);
                if (k < 0)
                        return k;
                switch (label) {
                case COSE_HDR_ALG:
                        k = teep_cbor_peek(r, &it);
                        if (k >= 0 && it.type == TEEP_CBOR_TEXT)
                                return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "text algorithm name");
                        k = teep_cbor_read_int(r, &h->alg, err);
                        h->has_alg = true;
                        break;
                case COSE_HDR_CRIT:
                        return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "critical headers are not supported");
                case COSE_HDR_KID:
                        k = teep_cbor_read_bytes(r, &h->kid, err);
                        h->has_kid = true;
                        break;
                case COSE_HDR_IV:
                        k = teep_cbor_read_bytes(r, &h->iv, err);
                        h->has_iv = true;
                        break;
                case 6: /* Partial IV: needs a context IV, which SUIT never provides */
                        return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "partial IV");
                case -1: /* ephemeral key */
                        k = teep_cbor_skip(r, &h->eph);
                        h->has_eph = true;
                        break;
                case -2: /* static key, static key id: ECDH-SS, not a SUIT profile */
                case -3:
                        return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "static-static ECDH");
                default:
                        k = teep_cbor_skip(r, NULL);
                        break;
                }
                if (k < 0)
                        return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "header value");
        }
        return 0;
}

/* protected (bstr-wrapped map or empty) then unprotected map. */
static int parse_headers(TeepCborReader *r, TeepBuf *ret_protected, Hdr *h, TeepError *err) {
        TeepBuf prot;
        int k;

        k = teep_cbor_read_bytes(r, &prot, err);
        if (k < 0)
                return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "protected header is not a byte string");
        if (prot.len > 0) {
                TeepCborReader pr;
                k = teep_cbor_check(prot, NULL, err);
                if (k < 0)
                        return teep_error_prefix(err, k, "encryption-info: protected header");
                teep_cbor_reader_init(&pr, prot);
                k = parse_hdr_map(&pr, h, err);
                if (k < 0)
                        return k;
        }
        *ret_protected = prot;
        return parse_hdr_map(r, h, err);
}

static int parse_ephemeral(TeepBuf raw, uint8_t x[COORD_LEN], uint8_t y[COORD_LEN], TeepError *err) {
        TeepCborReader r;
        bool kty = false, crv = false, hx = false, hy = false;
        size_t n;
        int k;

        teep_cbor_reader_init(&r, raw);
        k = teep_cbor_read_map(&r, &n, err);
        if (k < 0)
                return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "ephemeral key is not a COSE_Key");
        if (n > MAX_HDR_LABELS)
                return enc_fail(err, -E2BIG, TEEP_REASON_ENC_STRUCTURE, "ephemeral key too large");
        for (size_t i = 0; i < n; i++) {
                TeepCborItem it;
                TeepBuf b;
                int64_t label, v;

                k = teep_cbor_read_int(&r, &label, err);
                if (k < 0)
                        return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "ephemeral key label");
                switch (label) {
                case 1: /* kty */
                case -1: /* crv */
                        k = teep_cbor_read_int(&r, &v, err);
                        if (k < 0)
                                return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "ephemeral key kty/crv");
                        if ((label == 1 && (kty || v != 2)) || (label == -1 && (crv || v != 1)))
                                return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "ephemeral key is not EC2 P-256");
                        if (label == 1)
                                kty = true;
                        else
                                crv = true;
                        break;
                case -2:
                case -3:
                        k = teep_cbor_peek(&r, &it);
                        if (k >= 0 && label == -3 && (it.type == TEEP_CBOR_TRUE || it.type == TEEP_CBOR_FALSE))
                                return enc_fail(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG, "compressed ephemeral key");
                        k = teep_cbor_read_bytes(&r, &b, err);
                        if (k < 0 || b.len != COORD_LEN || (label == -2 ? hx : hy))
                                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "ephemeral key coordinate");
                        memcpy(label == -2 ? x : y, b.ptr, COORD_LEN);
                        if (label == -2)
                                hx = true;
                        else
                                hy = true;
                        break;
                default:
                        if (teep_cbor_skip(&r, NULL) < 0)
                                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "ephemeral key");
                        break;
                }
        }
        if (!kty || !crv || !hx || !hy)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "ephemeral key lacks kty, crv, x or y");
        return 0;
}

static bool point_on_curve(const uint8_t x[COORD_LEN], const uint8_t y[COORD_LEN]) {
        struct ecc_point p;
        mpz_t mx, my;
        int ok;

        mpz_init(mx);
        mpz_init(my);
        mpz_import(mx, COORD_LEN, 1, 1, 1, 0, x);
        mpz_import(my, COORD_LEN, 1, 1, 1, 0, y);
        ecc_point_init(&p, nettle_get_secp_256r1());
        ok = ecc_point_set(&p, mx, my);
        ecc_point_clear(&p);
        mpz_clear(mx);
        mpz_clear(my);
        return ok;
}

int teep_encryption_info_decode(TeepBuf in, TeepEncryptionInfo *ret, TeepError *err) {
        TeepEncryptionInfo info = {};
        TeepCborReader r;
        TeepCborItem it;
        Hdr body = {};
        size_t n;
        int k;

        if (!ret)
                return -EINVAL;
        k = teep_cbor_check(in, NULL, err);
        if (k < 0)
                return teep_error_prefix(err, k, "encryption-info");
        teep_cbor_reader_init(&r, in);
        k = teep_cbor_accept_tag(&r, COSE_TAG_ENCRYPT);
        if (k < 0)
                return enc_fail(err, k, TEEP_REASON_ENC_STRUCTURE, "truncated");
        if (k == 0 && teep_cbor_peek(&r, &it) >= 0 && it.type == TEEP_CBOR_TAG)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "not a COSE_Encrypt (tag 96)");
        k = teep_cbor_read_array(&r, &n, err);
        if (k < 0 || n != 4)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "not a four-element COSE_Encrypt");
        k = parse_headers(&r, &info.protected_raw, &body, err);
        if (k < 0)
                return k;
        k = teep_cbor_peek(&r, &it);
        if (k < 0 || it.type != TEEP_CBOR_NULL)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "ciphertext must be detached (nil)");
        (void)teep_cbor_read_null(&r, NULL);

        if (!body.has_alg)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "no content algorithm");
        if (body.alg != COSE_ALG_A128GCM && body.alg != COSE_ALG_A128CTR)
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG,
                                      "encryption-info: content algorithm %lld not supported (A128GCM, A128CTR)",
                                      (long long)body.alg);
        if (!body.has_iv || body.iv.len != (body.alg == COSE_ALG_A128GCM ? GCM_IV_LEN : CTR_IV_LEN))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "encryption-info: %s needs a %u-byte IV",
                                      teep_content_alg_to_string(body.alg),
                                      body.alg == COSE_ALG_A128GCM ? GCM_IV_LEN : CTR_IV_LEN);
        info.content_alg = body.alg;
        info.iv_len = body.iv.len;
        memcpy(info.iv, body.iv.ptr, body.iv.len);

        k = teep_cbor_read_array(&r, &n, err);
        if (k < 0 || n == 0)
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "no recipients");
        if (n > TEEP_ENC_MAX_RECIPIENTS)
                return enc_fail(err, -E2BIG, TEEP_REASON_ENC_STRUCTURE, "too many recipients");
        for (size_t i = 0; i < n; i++) {
                TeepEncryptionRecipient *rc = &info.recipients[i];
                Hdr h = {};
                size_t m;

                k = teep_cbor_read_array(&r, &m, err);
                if (k < 0 || m != 3)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "a recipient is not [protected, unprotected, key]");
                k = parse_headers(&r, &rc->protected_raw, &h, err);
                if (k < 0)
                        return k;
                k = teep_cbor_read_bytes(&r, &rc->wrapped_cek, err);
                if (k < 0)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "recipient: wrapped key is not a byte string");
                if (!h.has_alg)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "recipient: no algorithm");
                if (h.alg != COSE_ALG_ECDH_ES_A128KW)
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_ENC_ALG,
                                              "encryption-info: key distribution %lld not supported (ECDH-ES+A128KW)",
                                              (long long)h.alg);
                if (rc->wrapped_cek.len != WRAPPED_LEN)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "recipient: wrapped key is not 24 bytes");
                if (!h.has_eph)
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "recipient: no ephemeral key");
                k = parse_ephemeral(h.eph, rc->eph_x, rc->eph_y, err);
                if (k < 0)
                        return k;
                if (!point_on_curve(rc->eph_x, rc->eph_y))
                        return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "recipient: ephemeral key is not on P-256");
                rc->has_kid = h.has_kid;
                rc->kid = h.kid;
        }
        info.n_recipients = n;
        if (!teep_cbor_reader_at_end(&r))
                return enc_fail(err, -EBADMSG, TEEP_REASON_ENC_STRUCTURE, "trailing bytes");
        *ret = info;
        return 0;
}

const char *teep_content_alg_to_string(int64_t alg) {
        return alg == COSE_ALG_A128GCM ? "A128GCM" : alg == COSE_ALG_A128CTR ? "A128CTR" : NULL;
}

/* ---- key agreement ---- */

static void mpz_wipe_clear(mpz_t z) {
        size_t n = mpz_size(z);
        if (n > 0)
                explicit_bzero(mpz_limbs_modify(z, n), n * sizeof(mp_limb_t));
        mpz_clear(z);
}

/* The x-coordinate of d * (x, y) on P-256. */
static int ecdh_p256(const uint8_t d[COORD_LEN], const uint8_t x[COORD_LEN], const uint8_t y[COORD_LEN],
                     uint8_t ret[COORD_LEN]) {
        const struct ecc_curve *curve = nettle_get_secp_256r1();
        struct ecc_point p, q;
        struct ecc_scalar s;
        mpz_t mx, my, md;
        size_t cnt = 0;
        int r = 0;

        mpz_init(mx);
        mpz_init(my);
        mpz_init(md);
        ecc_point_init(&p, curve);
        ecc_point_init(&q, curve);
        ecc_scalar_init(&s, curve);
        mpz_import(mx, COORD_LEN, 1, 1, 1, 0, x);
        mpz_import(my, COORD_LEN, 1, 1, 1, 0, y);
        mpz_import(md, COORD_LEN, 1, 1, 1, 0, d);
        if (!ecc_point_set(&p, mx, my) || !ecc_scalar_set(&s, md)) {
                r = -EBADMSG;
                goto out;
        }
        ecc_point_mul(&q, &s, &p);
        ecc_point_get(&q, mx, my);
        if (mpz_sizeinbase(mx, 256) > COORD_LEN) {
                r = -EINVAL;
                goto out;
        }
        memset(ret, 0, COORD_LEN);
        mpz_export(ret + COORD_LEN - (mpz_sgn(mx) ? mpz_sizeinbase(mx, 256) : 0), &cnt, 1, 1, 1, 0, mx);
out:
        /* the scalar and the shared point are secrets: nettle does not wipe on clear */
        explicit_bzero(s.p, (size_t)ecc_size(curve) * sizeof(mp_limb_t));
        explicit_bzero(q.p, 2 * (size_t)ecc_size(curve) * sizeof(mp_limb_t));
        ecc_scalar_clear(&s);
        ecc_point_clear(&q);
        ecc_point_clear(&p);
        mpz_wipe_clear(mx);
        mpz_wipe_clear(my);
        mpz_wipe_clear(md);
        return r;
}

/* KEK = HKDF-SHA256(secret, no salt, COSE_KDF_Context, 16 bytes). */
static int derive_kek(const uint8_t secret[COORD_LEN], TeepBuf recipient_protected, uint8_t kek[KEY_LEN]) {
        static const uint8_t zero_salt[SHA256_DIGEST_SIZE] = {};
        struct hmac_sha256_ctx h;
        uint8_t prk[SHA256_DIGEST_SIZE];
        uint8_t *ctx = NULL;
        size_t ctx_len = 0;
        TeepCborWriter w;
        int r;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_int(&w, COSE_ALG_A128KW);
        for (int i = 0; i < 2; i++) {
                teep_cbor_put_array(&w, 3);
                teep_cbor_put_null(&w);
                teep_cbor_put_null(&w);
                teep_cbor_put_null(&w);
        }
        teep_cbor_put_array(&w, 3);
        teep_cbor_put_uint(&w, KEY_LEN * 8);
        teep_cbor_put_buf(&w, recipient_protected);
        teep_cbor_put_bytes(&w, kdf_other, sizeof(kdf_other) - 1);
        r = teep_cbor_writer_finish(&w, &ctx, &ctx_len);
        if (r < 0)
                return r;

        hmac_sha256_set_key(&h, sizeof(zero_salt), zero_salt);
        hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                     SHA256_DIGEST_SIZE, COORD_LEN, secret, prk);
        hmac_sha256_set_key(&h, sizeof(prk), prk);
        hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                    SHA256_DIGEST_SIZE, ctx_len, ctx, KEY_LEN, kek);
        explicit_bzero(prk, sizeof(prk));
        explicit_bzero(&h, sizeof(h));
        free(ctx);
        return 0;
}

static int unwrap_cek(const TeepEncryptionRecipient *rc, const uint8_t d[COORD_LEN], uint8_t cek[KEY_LEN]) {
        uint8_t secret[COORD_LEN], kek[KEY_LEN];
        struct aes128_ctx aes;
        int r, ok;

        r = ecdh_p256(d, rc->eph_x, rc->eph_y, secret);
        if (r < 0)
                return r;
        r = derive_kek(secret, rc->protected_raw, kek);
        explicit_bzero(secret, sizeof(secret));
        if (r < 0)
                return r;
        aes128_set_decrypt_key(&aes, kek);
        ok = aes128_keyunwrap(&aes, kw_iv, KEY_LEN, cek, rc->wrapped_cek.ptr);
        explicit_bzero(&aes, sizeof(aes));
        explicit_bzero(kek, sizeof(kek));
        if (!ok) {
                explicit_bzero(cek, KEY_LEN);
                return -EKEYREJECTED;
        }
        return 0;
}

/* ---- content ---- */

struct TeepDecryptor {
        int64_t alg;
        uint64_t stream_len;
        uint64_t ct_len; /* stream_len without the GCM tag */
        uint64_t pos;
        uint8_t pend[16];
        size_t plen;
        uint8_t tag[TEEP_ENC_TAG_LEN];
        struct aes128_ctx aes; /* CTR */
        uint8_t ctr[16];
        struct gcm_aes128_ctx gcm;
        bool finished;
};

static int enc_structure_aad(TeepBuf body_protected, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 3);
        teep_cbor_put_cstr(&w, "Encrypt");
        teep_cbor_put_buf(&w, body_protected);
        teep_cbor_put_bytes(&w, "", 0);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

static int content_start(TeepDecryptor *d, const TeepEncryptionInfo *info, const uint8_t cek[KEY_LEN], bool encrypt) {
        (void)encrypt;
        d->alg = info->content_alg;
        if (d->alg == COSE_ALG_A128CTR) {
                aes128_set_encrypt_key(&d->aes, cek);
                memcpy(d->ctr, info->iv, CTR_IV_LEN);
        } else {
                uint8_t *aad = NULL;
                size_t aad_len = 0;
                int r = enc_structure_aad(info->protected_raw, &aad, &aad_len);
                if (r < 0)
                        return r;
                gcm_aes128_set_key(&d->gcm, cek);
                gcm_aes128_set_iv(&d->gcm, info->iv_len, info->iv);
                gcm_aes128_update(&d->gcm, aad_len, aad);
                free(aad);
        }
        return 0;
}

/* Process n bytes (a multiple of 16 unless it is the last call). */
static void content_crypt(TeepDecryptor *d, bool encrypt, const uint8_t *in, size_t n, uint8_t *out) {
        if (n == 0)
                return;
        if (d->alg == COSE_ALG_A128CTR)
                ctr_crypt(&d->aes, (nettle_cipher_func *)aes128_encrypt, AES_BLOCK_SIZE, d->ctr, n, out, in);
        else if (encrypt)
                gcm_aes128_encrypt(&d->gcm, n, out, in);
        else
                gcm_aes128_decrypt(&d->gcm, n, out, in);
}

/* Block-aligned feeding with a < 16-byte pending tail. */
static size_t content_feed(TeepDecryptor *d, bool encrypt, const uint8_t *in, size_t n, uint8_t *out) {
        size_t o = 0;

        if (d->plen > 0) {
                size_t take = 16 - d->plen < n ? 16 - d->plen : n;
                memcpy(d->pend + d->plen, in, take);
                d->plen += take;
                in += take;
                n -= take;
                if (d->plen < 16)
                        return 0;
                content_crypt(d, encrypt, d->pend, 16, out);
                o = 16;
                d->plen = 0;
        }
        if (n >= 16) {
                size_t m = n & ~(size_t)15;
                content_crypt(d, encrypt, in, m, out + o);
                o += m;
                in += m;
                n -= m;
        }
        if (n > 0) {
                memcpy(d->pend, in, n);
                d->plen = n;
        }
        return o;
}

int teep_decryptor_new(TeepDecryptor **ret, const TeepEncryptionInfo *info, const TeepKey *key, uint64_t stream_len,
                       TeepError *err) {
        TeepDecryptor *d;
        uint8_t dkey[COORD_LEN], x[COORD_LEN], y[COORD_LEN], cek[KEY_LEN];
        int r = -EKEYREJECTED;

        if (!ret || !info || !key || info->n_recipients == 0)
                return -EINVAL;
        if (info->content_alg == COSE_ALG_A128GCM && stream_len < TEEP_ENC_TAG_LEN)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_ENC_LENGTH, "ciphertext of %llu bytes has no room for its tag",
                                      (unsigned long long)stream_len);
        if (teep_key_export_p256_raw(key, x, y, dkey) < 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_ENC_RECIPIENT, "the device key cannot do P-256 key agreement");
        for (size_t i = 0; i < info->n_recipients && r < 0; i++) {
                r = unwrap_cek(&info->recipients[i], dkey, cek);
                if (r < 0 && r != -EKEYREJECTED)
                        break;
        }
        explicit_bzero(dkey, sizeof(dkey));
        if (r == -EKEYREJECTED)
                return teep_error_set(err, r, TEEP_REASON_ENC_RECIPIENT,
                                      "the content key does not unwrap: encrypted to another key, or altered");
        if (r < 0)
                return teep_error_set(err, r, TEEP_REASON_ENC_RECIPIENT, "key agreement failed");

        d = calloc(1, sizeof(*d));
        if (!d) {
                explicit_bzero(cek, sizeof(cek));
                return -ENOMEM;
        }
        r = content_start(d, info, cek, false);
        explicit_bzero(cek, sizeof(cek));
        if (r < 0) {
                teep_decryptor_free(d);
                return r;
        }
        d->stream_len = stream_len;
        d->ct_len = info->content_alg == COSE_ALG_A128GCM ? stream_len - TEEP_ENC_TAG_LEN : stream_len;
        *ret = d;
        return 0;
}

int teep_decryptor_update(TeepDecryptor *d, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len,
                          TeepError *err) {
        size_t data = 0;

        if (!d || d->finished || (!in && len) || !ret_len)
                return -EINVAL;
        if (len > d->stream_len - d->pos)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_ENC_LENGTH, "more ciphertext than the %llu bytes announced",
                                      (unsigned long long)d->stream_len);
        if (d->pos < d->ct_len)
                data = d->ct_len - d->pos < len ? (size_t)(d->ct_len - d->pos) : len;
        *ret_len = content_feed(d, false, in, data, out);
        /* what follows the ciphertext is the tag */
        for (size_t i = data; i < len; i++)
                d->tag[d->pos + i - d->ct_len] = in[i];
        d->pos += len;
        return 0;
}

int teep_decryptor_finish(TeepDecryptor *d, uint8_t *out, size_t *ret_len, TeepError *err) {
        if (!d || d->finished || !ret_len)
                return -EINVAL;
        if (d->pos != d->stream_len)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_ENC_LENGTH, "ciphertext ends after %llu of %llu bytes",
                                      (unsigned long long)d->pos, (unsigned long long)d->stream_len);
        d->finished = true;
        content_crypt(d, false, d->pend, d->plen, out);
        *ret_len = d->plen;
        d->plen = 0;
        if (d->alg == COSE_ALG_A128GCM) {
                uint8_t tag[TEEP_ENC_TAG_LEN];
                gcm_aes128_digest(&d->gcm, sizeof(tag), tag);
                if (!memeql_sec(tag, d->tag, sizeof(tag))) {
                        explicit_bzero(out, *ret_len);
                        *ret_len = 0;
                        return teep_error_set(err, -EKEYREJECTED, TEEP_REASON_ENC_TAG,
                                              "authentication tag mismatch: ciphertext or tag altered");
                }
        }
        return 0;
}

TeepDecryptor *teep_decryptor_free(TeepDecryptor *d) {
        if (!d)
                return NULL;
        explicit_bzero(d, sizeof(*d));
        free(d);
        return NULL;
}

int teep_decrypt(TeepBuf encryption_info, const TeepKey *key, TeepBuf ciphertext, uint8_t **ret, size_t *ret_len,
                 TeepError *err) {
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        uint8_t *out;
        size_t n1 = 0, n2 = 0;
        int r;

        if (!ret || !ret_len)
                return -EINVAL;
        r = teep_encryption_info_decode(encryption_info, &info, err);
        if (r < 0)
                return r;
        r = teep_decryptor_new(&d, &info, key, ciphertext.len, err);
        if (r < 0)
                return r;
        out = malloc(ciphertext.len + 16);
        if (!out) {
                teep_decryptor_free(d);
                return -ENOMEM;
        }
        r = teep_decryptor_update(d, ciphertext.ptr, ciphertext.len, out, &n1, err);
        if (r >= 0)
                r = teep_decryptor_finish(d, out + n1, &n2, err);
        teep_decryptor_free(d);
        if (r < 0) {
                explicit_bzero(out, ciphertext.len + 16);
                free(out);
                return r;
        }
        *ret = out;
        *ret_len = n1 + n2;
        return 0;
}

/* ---- encryption (the SP tool) ---- */

static void put_ephemeral(TeepCborWriter *w, const uint8_t x[COORD_LEN], const uint8_t y[COORD_LEN]) {
        teep_cbor_put_map(w, 4);
        teep_cbor_put_int(w, 1);
        teep_cbor_put_int(w, 2);
        teep_cbor_put_int(w, -1);
        teep_cbor_put_int(w, 1);
        teep_cbor_put_int(w, -2);
        teep_cbor_put_bytes(w, x, COORD_LEN);
        teep_cbor_put_int(w, -3);
        teep_cbor_put_bytes(w, y, COORD_LEN);
}

int teep_encrypt(const TeepKey *recipient, int64_t content_alg, const TeepBuf *kid, TeepBuf plaintext, uint8_t **ret_info,
                 size_t *ret_info_len, uint8_t **ret_ciphertext, size_t *ret_ciphertext_len) {
        static const uint8_t rcpt_protected[] = { 0xa1, 0x01, 0x38, 0x1c };      /* {1: -29} */
        static const uint8_t gcm_protected[] = { 0xa1, 0x01, 0x01 };             /* {1: 1} */
        uint8_t rx[COORD_LEN], ry[COORD_LEN], ex[COORD_LEN], ey[COORD_LEN], ed[COORD_LEN];
        uint8_t secret[COORD_LEN], kek[KEY_LEN], cek[KEY_LEN], wrapped[WRAPPED_LEN], thumb[32];
        TeepEncryptionInfo info = {};
        TeepDecryptor d = {};
        TeepKey *eph = NULL;
        TeepBuf use_kid;
        struct aes128_ctx aes;
        TeepCborWriter w;
        uint8_t *ct = NULL;
        size_t o;
        int r;

        if (!recipient || !ret_info || !ret_info_len || !ret_ciphertext || !ret_ciphertext_len ||
            (!plaintext.ptr && plaintext.len))
                return -EINVAL;
        if (content_alg != COSE_ALG_A128GCM && content_alg != COSE_ALG_A128CTR)
                return -EOPNOTSUPP;
        r = teep_key_export_p256_raw(recipient, rx, ry, NULL);
        if (r < 0)
                return r;
        if (kid)
                use_kid = *kid;
        else {
                r = teep_key_thumbprint(recipient, thumb);
                if (r < 0)
                        return r;
                use_kid = TEEP_BUF(thumb, sizeof(thumb));
        }

        /* the ephemeral key, the KEK and the wrapped CEK */
        r = teep_key_generate(&eph, TEEP_KEY_P256);
        if (r < 0)
                return r;
        r = teep_key_export_p256_raw(eph, ex, ey, ed);
        teep_key_free(eph);
        if (r < 0)
                return r;
        r = ecdh_p256(ed, rx, ry, secret);
        explicit_bzero(ed, sizeof(ed));
        if (r >= 0)
                r = derive_kek(secret, TEEP_BUF(rcpt_protected, sizeof(rcpt_protected)), kek);
        explicit_bzero(secret, sizeof(secret));
        if (r < 0)
                return r;
        if (gnutls_rnd(GNUTLS_RND_KEY, cek, sizeof(cek)) < 0 ||
            gnutls_rnd(GNUTLS_RND_NONCE, info.iv, content_alg == COSE_ALG_A128GCM ? GCM_IV_LEN : CTR_IV_LEN) < 0) {
                explicit_bzero(kek, sizeof(kek));
                return -EIO;
        }
        aes128_set_encrypt_key(&aes, kek);
        aes128_keywrap(&aes, kw_iv, WRAPPED_LEN, wrapped, cek);
        explicit_bzero(&aes, sizeof(aes));
        explicit_bzero(kek, sizeof(kek));

        /* the content */
        info.content_alg = content_alg;
        info.iv_len = content_alg == COSE_ALG_A128GCM ? GCM_IV_LEN : CTR_IV_LEN;
        if (content_alg == COSE_ALG_A128GCM)
                info.protected_raw = TEEP_BUF(gcm_protected, sizeof(gcm_protected));
        r = content_start(&d, &info, cek, true);
        explicit_bzero(cek, sizeof(cek));
        if (r < 0)
                goto out;
        ct = malloc(plaintext.len + TEEP_ENC_TAG_LEN + 16);
        if (!ct) {
                r = -ENOMEM;
                goto out;
        }
        o = content_feed(&d, true, plaintext.ptr, plaintext.len, ct);
        content_crypt(&d, true, d.pend, d.plen, ct + o);
        o += d.plen;
        if (content_alg == COSE_ALG_A128GCM) {
                gcm_aes128_digest(&d.gcm, TEEP_ENC_TAG_LEN, ct + o);
                o += TEEP_ENC_TAG_LEN;
        }

        /* the encryption-info */
        teep_cbor_writer_init(&w);
        teep_cbor_put_tag(&w, COSE_TAG_ENCRYPT);
        teep_cbor_put_array(&w, 4);
        if (content_alg == COSE_ALG_A128GCM) {
                teep_cbor_put_bytes(&w, gcm_protected, sizeof(gcm_protected));
                teep_cbor_put_map(&w, 1);
        } else {
                teep_cbor_put_bytes(&w, "", 0);
                teep_cbor_put_map(&w, 2);
                teep_cbor_put_int(&w, COSE_HDR_ALG);
                teep_cbor_put_int(&w, COSE_ALG_A128CTR);
        }
        teep_cbor_put_int(&w, COSE_HDR_IV);
        teep_cbor_put_bytes(&w, info.iv, info.iv_len);
        teep_cbor_put_null(&w);
        teep_cbor_put_array(&w, 1);
        teep_cbor_put_array(&w, 3);
        teep_cbor_put_bytes(&w, rcpt_protected, sizeof(rcpt_protected));
        teep_cbor_put_map(&w, use_kid.len > 0 ? 2 : 1);
        if (use_kid.len > 0) {
                teep_cbor_put_int(&w, COSE_HDR_KID);
                teep_cbor_put_buf(&w, use_kid);
        }
        teep_cbor_put_int(&w, -1);
        put_ephemeral(&w, ex, ey);
        teep_cbor_put_bytes(&w, wrapped, sizeof(wrapped));
        r = teep_cbor_writer_finish(&w, ret_info, ret_info_len);
        if (r < 0)
                goto out;
        *ret_ciphertext = ct;
        *ret_ciphertext_len = o;
        ct = NULL;
out:
        explicit_bzero(&d, sizeof(d));
        free(ct);
        return r;
}
