/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-cose.c: keys, COSE_Sign1 sign/verify and COSE_Sign verify through gnutls */


#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teep-cose.h"
#include "teep-protocol.h"

/* Coordinate, scalar and Ed25519 key sizes are all 32 bytes for the two curves we accept. */
#define KEY_COORD_SIZE 32u
/* ECDSA P-256 r||s and Ed25519 signatures are both 64 bytes. */
#define SIG_SIZE 64u
/* Header maps and COSE_Keys are small; a cap keeps the duplicate check linear in practice. */
#define MAX_MAP_LABELS 32u
/* A PEM label longer than this is not one we could accept anyway. */
#define PEM_LABEL_MAX 64u

/* libteep must not include common/, so the few cleanup helpers live here. */
#ifndef _cleanup_
#define _cleanup_(f) __attribute__((cleanup(f)))
#endif

struct TeepKey {
        TeepKeyType type;
        gnutls_pubkey_t pub;
        gnutls_privkey_t priv;        /* NULL for a public-only key */
        bool external;                /* priv lives in a token (PKCS#11): never exported */
        uint8_t x[KEY_COORD_SIZE];    /* P-256 x, or the Ed25519 public key */
        uint8_t y[KEY_COORD_SIZE];    /* P-256 y; unused for Ed25519 */
};

static void buf_freep(uint8_t **p) {
        free(*p);
        *p = NULL;
}

static void datum_freep(gnutls_datum_t *d) {
        if (d->data)
                gnutls_free(d->data);
        d->data = NULL;
        d->size = 0;
}

/* For datums that may hold a private scalar or a private-key encoding. */
static void datum_erasep(gnutls_datum_t *d) {
        if (d->data) {
                explicit_bzero(d->data, d->size);
                gnutls_free(d->data);
        }
        d->data = NULL;
        d->size = 0;
}

static void pubkey_deinitp(gnutls_pubkey_t *p) {
        if (*p)
                gnutls_pubkey_deinit(*p);
        *p = NULL;
}

static void privkey_deinitp(gnutls_privkey_t *p) {
        if (*p)
                gnutls_privkey_deinit(*p);
        *p = NULL;
}

static void x509_privkey_deinitp(gnutls_x509_privkey_t *p) {
        if (*p)
                gnutls_x509_privkey_deinit(*p);
        *p = NULL;
}

static void x509_crt_deinitp(gnutls_x509_crt_t *p) {
        if (*p)
                gnutls_x509_crt_deinit(*p);
        *p = NULL;
}

static void writer_resetp(TeepCborWriter *w) {
        teep_cbor_writer_reset(w);
}

static void key_freep(TeepKey **k) {
        teep_key_freep(k);
}

static int gnutls_to_errno(int gr) {
        return gr == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
}

static gnutls_ecc_curve_t key_type_curve(TeepKeyType type) {
        return type == TEEP_KEY_P256 ? GNUTLS_ECC_CURVE_SECP256R1 : GNUTLS_ECC_CURVE_ED25519;
}

/*
 * gnutls hands out coordinates and scalars as integers: possibly with a leading zero byte
 * (sign padding) or shorter than 32 bytes (leading zero bytes dropped). COSE wants exactly 32.
 */
static int datum_to_fixed(const gnutls_datum_t *d, uint8_t out[KEY_COORD_SIZE]) {
        size_t n = d->size, skip = 0;

        while (skip < n && d->data[skip] == 0)
                skip++;
        n -= skip;
        if (n > KEY_COORD_SIZE)
                return -EINVAL;
        memset(out, 0, KEY_COORD_SIZE - n);
        if (n > 0)
                memcpy(out + KEY_COORD_SIZE - n, d->data + skip, n);
        return 0;
}

/* ---- key construction ---- */

/*
 * The one constructor: every key (COSE_Key, PEM, generated) ends up here as raw coordinates,
 * so the point is validated the same way whatever its source and x/y are always at hand for
 * the thumbprint. d (optional) must belong to the public point.
 */
static int key_new_raw(TeepKey **ret, TeepKeyType type, const uint8_t *x, const uint8_t *y,
                       const uint8_t *d, TeepError *err) {
        _cleanup_(key_freep) TeepKey *key = NULL;
        gnutls_datum_t dx = { (unsigned char *)x, KEY_COORD_SIZE };
        gnutls_datum_t dy = { (unsigned char *)y, KEY_COORD_SIZE };
        gnutls_datum_t dd = { (unsigned char *)d, KEY_COORD_SIZE };
        gnutls_ecc_curve_t curve = key_type_curve(type);
        int gr;

        key = calloc(1, sizeof(*key));
        if (!key)
                return -ENOMEM;
        key->type = type;
        memcpy(key->x, x, KEY_COORD_SIZE);
        if (type == TEEP_KEY_P256)
                memcpy(key->y, y, KEY_COORD_SIZE);

        gr = gnutls_pubkey_init(&key->pub);
        if (gr < 0)
                return gnutls_to_errno(gr);
        gr = gnutls_pubkey_import_ecc_raw(key->pub, curve, &dx, type == TEEP_KEY_P256 ? &dy : NULL);
        if (gr < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "public key rejected: %s",
                                      gnutls_strerror(gr));
        /* gnutls checks P-256 points lazily; an off-curve point must fail here, not at verify */
        gr = gnutls_pubkey_verify_params(key->pub);
        if (gr < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY,
                                      "public key is not a valid point: %s", gnutls_strerror(gr));

        if (d) {
                gr = gnutls_privkey_init(&key->priv);
                if (gr < 0)
                        return gnutls_to_errno(gr);
                gr = gnutls_privkey_import_ecc_raw(key->priv, curve, &dx,
                                                   type == TEEP_KEY_P256 ? &dy : NULL, &dd);
                if (gr < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "private key rejected: %s",
                                              gnutls_strerror(gr));
                /* a d that does not match x/y would sign things nobody can verify */
                gr = gnutls_privkey_verify_params(key->priv);
                if (gr < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY,
                                              "private key does not match its public key: %s",
                                              gnutls_strerror(gr));
        }

        *ret = key;
        key = NULL;
        return 0;
}

static int pk_to_key_type(int pk, gnutls_ecc_curve_t curve, TeepKeyType *ret, TeepError *err) {
        if (pk == GNUTLS_PK_ECDSA && curve == GNUTLS_ECC_CURVE_SECP256R1)
                *ret = TEEP_KEY_P256;
        else if (pk == GNUTLS_PK_EDDSA_ED25519 && curve == GNUTLS_ECC_CURVE_ED25519)
                *ret = TEEP_KEY_ED25519;
        else
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY,
                                      "key type %s (curve %s) is not P-256 or Ed25519",
                                      gnutls_pk_get_name((gnutls_pk_algorithm_t)pk) ?: "?",
                                      gnutls_ecc_curve_get_name(curve) ?: "none");
        return 0;
}

static int key_from_gnutls_pubkey(TeepKey **ret, gnutls_pubkey_t pub, TeepError *err) {
        _cleanup_(datum_freep) gnutls_datum_t x = {}, y = {};
        uint8_t fx[KEY_COORD_SIZE], fy[KEY_COORD_SIZE] = {};
        gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
        TeepKeyType type;
        int pk, gr, r;

        pk = gnutls_pubkey_get_pk_algorithm(pub, NULL);
        if (pk != GNUTLS_PK_ECDSA && pk != GNUTLS_PK_EDDSA_ED25519)
                return pk_to_key_type(pk, GNUTLS_ECC_CURVE_INVALID, &type, err);
        gr = gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, GNUTLS_EXPORT_FLAG_NO_LZ);
        if (gr < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "cannot read the public key: %s",
                                      gnutls_strerror(gr));
        r = pk_to_key_type(pk, curve, &type, err);
        if (r < 0)
                return r;
        if (datum_to_fixed(&x, fx) < 0 || (type == TEEP_KEY_P256 && datum_to_fixed(&y, fy) < 0))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "public key coordinate too long");
        return key_new_raw(ret, type, fx, fy, NULL, err);
}

static int key_from_gnutls_privkey(TeepKey **ret, gnutls_privkey_t priv, TeepError *err) {
        _cleanup_(datum_freep) gnutls_datum_t x = {}, y = {};
        _cleanup_(datum_erasep) gnutls_datum_t k = {};
        uint8_t fx[KEY_COORD_SIZE], fy[KEY_COORD_SIZE] = {}, fd[KEY_COORD_SIZE];
        gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
        TeepKeyType type;
        int pk, gr, r;

        pk = gnutls_privkey_get_pk_algorithm(priv, NULL);
        if (pk != GNUTLS_PK_ECDSA && pk != GNUTLS_PK_EDDSA_ED25519)
                return pk_to_key_type(pk, GNUTLS_ECC_CURVE_INVALID, &type, err);
        gr = gnutls_privkey_export_ecc_raw2(priv, &curve, &x, &y, &k, GNUTLS_EXPORT_FLAG_NO_LZ);
        if (gr < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "cannot read the private key: %s",
                                      gnutls_strerror(gr));
        r = pk_to_key_type(pk, curve, &type, err);
        if (r < 0)
                return r;
        if (datum_to_fixed(&x, fx) < 0 || (type == TEEP_KEY_P256 && datum_to_fixed(&y, fy) < 0) ||
            datum_to_fixed(&k, fd) < 0) {
                explicit_bzero(fd, sizeof(fd));
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "key component too long");
        }
        r = key_new_raw(ret, type, fx, fy, fd, err);
        explicit_bzero(fd, sizeof(fd));
        return r;
}

TeepKey *teep_key_free(TeepKey *key) {
        if (!key)
                return NULL;
        /* gnutls clears the private parameters it holds when the key is deinitialized */
        if (key->priv)
                gnutls_privkey_deinit(key->priv);
        if (key->pub)
                gnutls_pubkey_deinit(key->pub);
        explicit_bzero(key, sizeof(*key));
        free(key);
        return NULL;
}

int teep_key_generate(TeepKey **ret, TeepKeyType type) {
        _cleanup_(privkey_deinitp) gnutls_privkey_t priv = NULL;
        gnutls_pk_algorithm_t pk;
        int gr;

        if (!ret)
                return -EINVAL;
        if (type == TEEP_KEY_P256)
                pk = GNUTLS_PK_ECDSA;
        else if (type == TEEP_KEY_ED25519)
                pk = GNUTLS_PK_EDDSA_ED25519;
        else
                return -EOPNOTSUPP;

        gr = gnutls_privkey_init(&priv);
        if (gr < 0)
                return gnutls_to_errno(gr);
        gr = gnutls_privkey_generate2(priv, pk, GNUTLS_CURVE_TO_BITS(key_type_curve(type)), 0, NULL, 0);
        if (gr < 0)
                return gnutls_to_errno(gr);
        return key_from_gnutls_privkey(ret, priv, NULL);
}

/*
 * The private half stays where the URL names it (a PKCS#11 token through p11-kit); gnutls signs
 * by calling the token. The public half is read from the token and checked against the private
 * one with a test signature, so a URL that names a private key and a public key of two
 * different pairs is refused here rather than producing signatures nobody can verify.
 */
int teep_key_from_url(TeepKey **ret, const char *url, TeepError *err) {
        static const char probe[] = "teepkit key check";
        _cleanup_(privkey_deinitp) gnutls_privkey_t priv = NULL;
        _cleanup_(pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        _cleanup_(datum_freep) gnutls_datum_t sig = {};
        _cleanup_(key_freep) TeepKey *key = NULL;
        gnutls_datum_t data = { (unsigned char *)probe, sizeof(probe) - 1 };
        gnutls_sign_algorithm_t algo;
        int gr, r;

        if (!ret || !url)
                return -EINVAL;
        gr = gnutls_privkey_init(&priv);
        if (gr < 0)
                return gnutls_to_errno(gr);
        gr = gnutls_privkey_import_url(priv, url, 0);
        if (gr == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        if (gr < 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_KEY, "cannot use the private key at the URL: %s",
                                      gnutls_strerror(gr));
        gr = gnutls_pubkey_init(&pub);
        if (gr < 0)
                return gnutls_to_errno(gr);
        gr = gnutls_pubkey_import_privkey(pub, priv, 0, 0);
        if (gr < 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_KEY,
                                      "cannot read the public half of the key at the URL: %s", gnutls_strerror(gr));
        r = key_from_gnutls_pubkey(&key, pub, err);
        if (r < 0)
                return r;

        algo = key->type == TEEP_KEY_P256 ? GNUTLS_SIGN_ECDSA_SHA256 : GNUTLS_SIGN_EDDSA_ED25519;
        gr = gnutls_privkey_sign_data2(priv, algo, 0, &data, &sig);
        if (gr < 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_KEY, "the key at the URL cannot sign: %s",
                                      gnutls_strerror(gr));
        gr = gnutls_pubkey_verify_data2(key->pub, algo, 0, &data, &sig);
        if (gr < 0)
                return teep_error_set(err, -EKEYREJECTED, TEEP_REASON_COSE_KEY,
                                      "the public key at the URL does not belong to its private key");
        key->priv = priv;
        priv = NULL;
        key->external = true;
        *ret = key;
        key = NULL;
        return 0;
}

bool teep_key_is_external(const TeepKey *key) {
        return key && key->external;
}

TeepKeyType teep_key_type(const TeepKey *key) {
        return key->type;
}

bool teep_key_has_private(const TeepKey *key) {
        return key && key->priv;
}

bool teep_key_supports_alg(const TeepKey *key, int64_t alg) {
        if (!key)
                return false;
        switch (key->type) {
        case TEEP_KEY_P256:
                return alg == COSE_ALG_ESP256 || alg == COSE_ALG_ES256;
        case TEEP_KEY_ED25519:
                return alg == COSE_ALG_ED25519 || alg == COSE_ALG_EDDSA;
        }
        return false;
}

int64_t teep_key_default_alg(const TeepKey *key) {
        return key->type == TEEP_KEY_P256 ? COSE_ALG_ESP256 : COSE_ALG_ED25519;
}

/* ---- COSE_Key ---- */

/*
 * The deterministic required-member map RFC 9679 hashes, which is also our public COSE_Key
 * export: keys in bytewise order of their encoding (1, -1, -2, -3).
 */
static void key_write_cose(const TeepKey *key, TeepCborWriter *w) {
        if (key->type == TEEP_KEY_P256) {
                teep_cbor_put_map(w, 4);
                teep_cbor_put_int(w, COSE_KEY_KTY);
                teep_cbor_put_int(w, COSE_KTY_EC2);
                teep_cbor_put_int(w, COSE_KEY_CRV);
                teep_cbor_put_int(w, COSE_CRV_P256);
                teep_cbor_put_int(w, COSE_KEY_X);
                teep_cbor_put_bytes(w, key->x, KEY_COORD_SIZE);
                teep_cbor_put_int(w, COSE_KEY_Y);
                teep_cbor_put_bytes(w, key->y, KEY_COORD_SIZE);
        } else {
                teep_cbor_put_map(w, 3);
                teep_cbor_put_int(w, COSE_KEY_KTY);
                teep_cbor_put_int(w, COSE_KTY_OKP);
                teep_cbor_put_int(w, COSE_KEY_CRV);
                teep_cbor_put_int(w, COSE_CRV_ED25519);
                teep_cbor_put_int(w, COSE_KEY_X);
                teep_cbor_put_bytes(w, key->x, KEY_COORD_SIZE);
        }
}

int teep_key_thumbprint(const TeepKey *key, uint8_t ret[32]) {
        _cleanup_(writer_resetp) TeepCborWriter w = {};
        _cleanup_(buf_freep) uint8_t *buf = NULL;
        size_t len;
        int r;

        if (!key || !ret)
                return -EINVAL;
        teep_cbor_writer_init(&w);
        key_write_cose(key, &w);
        r = teep_cbor_writer_finish(&w, &buf, &len);
        if (r < 0)
                return r;
        return teep_sha256(TEEP_BUF(buf, len), ret);
}

int teep_key_export_cose(const TeepKey *key, uint8_t **ret, size_t *ret_len) {
        _cleanup_(writer_resetp) TeepCborWriter w = {};

        if (!key || !ret || !ret_len)
                return -EINVAL;
        teep_cbor_writer_init(&w);
        key_write_cose(key, &w);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

/* A map label as COSE defines it (int / tstr), for duplicate detection. */
typedef struct MapLabel {
        bool text;
        int64_t value;
        TeepBuf name;
} MapLabel;

static bool map_label_eq(const MapLabel *a, const MapLabel *b) {
        if (a->text != b->text)
                return false;
        return a->text ? teep_buf_eq(a->name, b->name) : a->value == b->value;
}

/* Read a label (int or tstr). Returns 0 or -EBADMSG with reason. */
static int read_label(TeepCborReader *r, MapLabel *ret, TeepReason reason, TeepError *err) {
        TeepCborItem it;
        MapLabel l = {};

        if (teep_cbor_peek(r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "malformed map label");
        if (it.type == TEEP_CBOR_UINT || it.type == TEEP_CBOR_NEGINT) {
                if (teep_cbor_read_int(r, &l.value, NULL) < 0)
                        return teep_error_set(err, -EBADMSG, reason, "label out of the 64-bit range");
        } else if (it.type == TEEP_CBOR_TEXT) {
                l.text = true;
                if (teep_cbor_read_text(r, &l.name, NULL) < 0)
                        return teep_error_set(err, -EBADMSG, reason, "label is not valid UTF-8");
        } else
                return teep_error_set(err, -EBADMSG, reason, "label is a %s, not an int or tstr",
                                      teep_cbor_type_to_string(it.type));
        *ret = l;
        return 0;
}

/* Read a bstr value for a key or header member; anything else is a `reason` error. */
static int read_member_bytes(TeepCborReader *r, TeepBuf *ret, TeepReason reason, const char *what,
                             TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "%s: malformed CBOR", what);
        if (it.type != TEEP_CBOR_BYTES)
                return teep_error_set(err, -EBADMSG, reason, "%s: expected bstr, found %s", what,
                                      teep_cbor_type_to_string(it.type));
        return teep_cbor_read_bytes(r, ret, err);
}

static int read_member_int(TeepCborReader *r, int64_t *ret, TeepReason reason, const char *what,
                           TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "%s: malformed CBOR", what);
        if (it.type != TEEP_CBOR_UINT && it.type != TEEP_CBOR_NEGINT)
                return teep_error_set(err, -EBADMSG, reason, "%s: expected int, found %s", what,
                                      teep_cbor_type_to_string(it.type));
        if (teep_cbor_read_int(r, ret, NULL) < 0)
                return teep_error_set(err, -EBADMSG, reason, "%s: integer out of range", what);
        return 0;
}

int teep_key_from_cose_key(TeepKey **ret, TeepBuf cose_key, TeepError *err) {
        MapLabel seen[MAX_MAP_LABELS];
        TeepBuf x = {}, y = {}, d = {};
        bool has_kty = false, has_crv = false, has_alg = false, has_x = false, has_y = false, has_d = false;
        int64_t kty = 0, crv = 0, alg = 0;
        TeepCborReader rd;
        TeepKeyType type;
        size_t n;
        int r;

        if (!ret)
                return -EINVAL;
        r = teep_cbor_check(cose_key, NULL, err);
        if (r < 0) {
                teep_error_prefix(err, r, "COSE_Key");
                return r;
        }
        teep_cbor_reader_init(&rd, cose_key);
        if (teep_cbor_read_map(&rd, &n, NULL) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key is not a map");
        if (n > MAX_MAP_LABELS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_KEY, "COSE_Key has %zu members, limit %u",
                                      n, MAX_MAP_LABELS);

        for (size_t i = 0; i < n; i++) {
                MapLabel l;
                TeepCborItem it;

                r = read_label(&rd, &l, TEEP_REASON_COSE_KEY, err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (map_label_eq(&seen[j], &l))
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "COSE_Key: duplicate label");
                seen[i] = l;

                if (l.text) {
                        if (teep_cbor_skip(&rd, NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "COSE_Key: bad value");
                        continue;
                }
                switch (l.value) {
                case COSE_KEY_KTY:
                        /* text kty values exist in the registry, but none names a key we accept */
                        if (teep_cbor_peek(&rd, &it) == 0 && it.type == TEEP_CBOR_TEXT)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "COSE_Key: text kty");
                        r = read_member_int(&rd, &kty, TEEP_REASON_COSE_KEY, "COSE_Key kty", err);
                        has_kty = true;
                        break;
                case COSE_KEY_ALG:
                        if (teep_cbor_peek(&rd, &it) == 0 && it.type == TEEP_CBOR_TEXT)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "COSE_Key: text alg");
                        r = read_member_int(&rd, &alg, TEEP_REASON_COSE_KEY, "COSE_Key alg", err);
                        has_alg = true;
                        break;
                case COSE_KEY_CRV:
                        if (teep_cbor_peek(&rd, &it) == 0 && it.type == TEEP_CBOR_TEXT)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "COSE_Key: text crv");
                        r = read_member_int(&rd, &crv, TEEP_REASON_COSE_KEY, "COSE_Key crv", err);
                        has_crv = true;
                        break;
                case COSE_KEY_X:
                        r = read_member_bytes(&rd, &x, TEEP_REASON_COSE_KEY, "COSE_Key x", err);
                        has_x = true;
                        break;
                case COSE_KEY_Y:
                        /* y as a bool is the compressed point form */
                        if (teep_cbor_peek(&rd, &it) == 0 && (it.type == TEEP_CBOR_TRUE || it.type == TEEP_CBOR_FALSE))
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY,
                                                      "COSE_Key: compressed points are not supported");
                        r = read_member_bytes(&rd, &y, TEEP_REASON_COSE_KEY, "COSE_Key y", err);
                        has_y = true;
                        break;
                case COSE_KEY_D:
                        r = read_member_bytes(&rd, &d, TEEP_REASON_COSE_KEY, "COSE_Key d", err);
                        has_d = true;
                        break;
                default:
                        /* kid, key_ops, base IV and unknown members do not change the key */
                        if (teep_cbor_skip(&rd, NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "COSE_Key: bad value");
                        r = 0;
                        break;
                }
                if (r < 0)
                        return r;
        }

        if (!has_kty)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: kty missing");
        if (!has_crv)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: crv missing");
        if (kty == COSE_KTY_EC2 && crv == COSE_CRV_P256)
                type = TEEP_KEY_P256;
        else if (kty == COSE_KTY_OKP && crv == COSE_CRV_ED25519)
                type = TEEP_KEY_ED25519;
        else
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY,
                                      "COSE_Key: kty %" PRId64 " crv %" PRId64 " is not P-256 or Ed25519", kty, crv);

        /* RFC 9053 keeps leading zeros: every member has exactly the curve size */
        if (!has_x || x.len != KEY_COORD_SIZE)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: x missing or not %u bytes",
                                      KEY_COORD_SIZE);
        if (type == TEEP_KEY_P256 && (!has_y || y.len != KEY_COORD_SIZE))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: y missing or not %u bytes",
                                      KEY_COORD_SIZE);
        if (type == TEEP_KEY_ED25519 && has_y)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: OKP key with a y member");
        if (has_d && d.len != KEY_COORD_SIZE)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "COSE_Key: d is not %u bytes",
                                      KEY_COORD_SIZE);

        if (has_alg) {
                TeepKey probe = { .type = type };
                if (!teep_key_supports_alg(&probe, alg))
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY,
                                              "COSE_Key: alg %" PRId64 " does not fit the key type", alg);
        }

        return key_new_raw(ret, type, x.ptr, has_y ? y.ptr : NULL, has_d ? d.ptr : NULL, err);
}

/* ---- PEM ---- */

typedef struct PemBlock {
        char label[PEM_LABEL_MAX + 1];
        TeepBuf block;   /* from "-----BEGIN" to the end of the matching "-----END ...-----" */
} PemBlock;

/*
 * Find the next PEM block at or after *pos. Returns 1 with ret filled, 0 when there are no
 * more blocks, -EBADMSG for a BEGIN line without its END line. The input is not
 * NUL-terminated, so only length-bounded searches are used.
 */
static int pem_next_block(TeepBuf in, size_t *pos, PemBlock *ret) {
        static const char begin[] = "-----BEGIN ", dashes[] = "-----", end_prefix[] = "-----END ";
        const uint8_t *p, *label, *label_end, *body, *e, *limit = in.ptr + in.len;
        char end_marker[sizeof(end_prefix) + PEM_LABEL_MAX + sizeof(dashes)];
        size_t label_len, marker_len;

        if (*pos >= in.len)
                return 0;
        p = memmem(in.ptr + *pos, in.len - *pos, begin, strlen(begin));
        if (!p)
                return 0;
        label = p + strlen(begin);
        label_end = memmem(label, (size_t)(limit - label), dashes, strlen(dashes));
        if (!label_end)
                return -EBADMSG;
        label_len = (size_t)(label_end - label);
        if (label_len == 0 || label_len > PEM_LABEL_MAX || memchr(label, '\n', label_len))
                return -EBADMSG;
        body = label_end + strlen(dashes);

        marker_len = (size_t)snprintf(end_marker, sizeof(end_marker), "%s%.*s%s", end_prefix, (int)label_len,
                                      (const char *)label, dashes);
        e = memmem(body, (size_t)(limit - body), end_marker, marker_len);
        if (!e)
                return -EBADMSG;

        memcpy(ret->label, label, label_len);
        ret->label[label_len] = 0;
        ret->block = TEEP_BUF(p, (size_t)(e + marker_len - p));
        *pos = (size_t)(e + marker_len - in.ptr);
        return 1;
}

static int pem_import_block(TeepKey **ret, const PemBlock *b, TeepError *err) {
        _cleanup_(datum_erasep) gnutls_datum_t der = {};
        gnutls_datum_t text = { (unsigned char *)b->block.ptr, (unsigned)b->block.len };
        int gr;

        if (b->block.len > UINT32_MAX)
                return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_KEY, "PEM block too large");
        gr = gnutls_pem_base64_decode2(b->label, &text, &der);
        if (gr < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "%s: bad base64: %s", b->label,
                                      gnutls_strerror(gr));

        if (strcmp(b->label, "PUBLIC KEY") == 0 || strcmp(b->label, "CERTIFICATE") == 0) {
                _cleanup_(pubkey_deinitp) gnutls_pubkey_t pub = NULL;
                _cleanup_(x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;

                gr = gnutls_pubkey_init(&pub);
                if (gr < 0)
                        return gnutls_to_errno(gr);
                if (b->label[0] == 'P')
                        gr = gnutls_pubkey_import(pub, &der, GNUTLS_X509_FMT_DER);
                else {
                        gr = gnutls_x509_crt_init(&crt);
                        if (gr < 0)
                                return gnutls_to_errno(gr);
                        gr = gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER);
                        if (gr >= 0)
                                gr = gnutls_pubkey_import_x509(pub, crt, 0);
                }
                if (gr < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "%s: %s", b->label,
                                              gnutls_strerror(gr));
                return key_from_gnutls_pubkey(ret, pub, err);
        }

        if (strcmp(b->label, "PRIVATE KEY") == 0 || strcmp(b->label, "EC PRIVATE KEY") == 0) {
                _cleanup_(x509_privkey_deinitp) gnutls_x509_privkey_t xkey = NULL;
                _cleanup_(privkey_deinitp) gnutls_privkey_t priv = NULL;

                gr = gnutls_x509_privkey_init(&xkey);
                if (gr < 0)
                        return gnutls_to_errno(gr);
                if (b->label[0] == 'P')
                        gr = gnutls_x509_privkey_import_pkcs8(xkey, &der, GNUTLS_X509_FMT_DER, NULL,
                                                              GNUTLS_PKCS_PLAIN);
                else
                        /* SEC1 ECPrivateKey; gnutls tells it from PKCS#1 RSA by trying */
                        gr = gnutls_x509_privkey_import(xkey, &der, GNUTLS_X509_FMT_DER);
                if (gr < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "%s: %s", b->label,
                                              gnutls_strerror(gr));
                gr = gnutls_privkey_init(&priv);
                if (gr < 0)
                        return gnutls_to_errno(gr);
                gr = gnutls_privkey_import_x509(priv, xkey, 0);
                if (gr < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "%s: %s", b->label,
                                              gnutls_strerror(gr));
                return key_from_gnutls_privkey(ret, priv, err);
        }

        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "PEM block \"%s\" is not a key we accept",
                              b->label);
}

int teep_key_from_pem(TeepKey **ret, const uint8_t *pem, size_t len, TeepError *err) {
        TeepBuf in = TEEP_BUF(pem, len);
        bool unsupported = false;
        size_t pos = 0;
        PemBlock b;
        int r;

        if (!ret || (!pem && len > 0))
                return -EINVAL;
        for (;;) {
                r = pem_next_block(in, &pos, &b);
                if (r < 0)
                        return teep_error_set(err, r, TEEP_REASON_COSE_KEY, "malformed PEM armour");
                if (r == 0)
                        break;
                /*
                 * OpenSSL's "ecparam -genkey" writes the curve as its own block first; the key
                 * block names its curve again, so the parameters carry nothing we need.
                 */
                if (strcmp(b.label, "EC PARAMETERS") == 0)
                        continue;
                if (strcmp(b.label, "PUBLIC KEY") == 0 || strcmp(b.label, "CERTIFICATE") == 0 ||
                    strcmp(b.label, "PRIVATE KEY") == 0 || strcmp(b.label, "EC PRIVATE KEY") == 0)
                        return pem_import_block(ret, &b, err);
                /* "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ...: keep looking, remember why */
                unsupported = true;
        }
        if (unsupported)
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_KEY, "no PEM block holds a key we accept");
        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "no PEM key block found");
}

static int hex_digit(uint8_t c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool is_space(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int teep_key_from_any(TeepKey **ret, const uint8_t *data, size_t len, TeepError *err) {
        size_t digits = 0;
        bool hex = true;

        if (!ret || !data)
                return -EINVAL;
        if (memmem(data, len, "-----BEGIN", strlen("-----BEGIN")))
                return teep_key_from_pem(ret, data, len, err);

        /* a binary COSE_Key starts with a map head (0xa0..0xbf), never with a hex digit */
        for (size_t i = 0; i < len && hex; i++) {
                if (hex_digit(data[i]) >= 0)
                        digits++;
                else if (!is_space(data[i]))
                        hex = false;
        }
        if (hex && digits > 0) {
                uint8_t *bin;
                size_t n = 0;
                int hi = -1, r;

                if (digits % 2 != 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "hex key has an odd digit count");
                bin = malloc(digits / 2);
                if (!bin)
                        return -ENOMEM;
                for (size_t i = 0; i < len; i++) {
                        int v = hex_digit(data[i]);
                        if (v < 0)
                                continue;
                        if (hi < 0)
                                hi = v;
                        else {
                                bin[n++] = (uint8_t)(hi << 4 | v);
                                hi = -1;
                        }
                }
                r = teep_key_from_cose_key(ret, TEEP_BUF(bin, n), err);
                /* the decoded buffer may hold d */
                explicit_bzero(bin, n);
                free(bin);
                return r;
        }
        return teep_key_from_cose_key(ret, TEEP_BUF(data, len), err);
}

/* Copy a gnutls text export into a malloc'd NUL-terminated buffer; callers wipe the datum. */
static int datum_to_cstr(gnutls_datum_t *d, char **ret, size_t *ret_len) {
        char *s = malloc((size_t)d->size + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, d->data, d->size);
        s[d->size] = 0;
        *ret = s;
        if (ret_len)
                *ret_len = strlen(s);
        return 0;
}

int teep_key_export_pem(const TeepKey *key, char **ret) {
        _cleanup_(datum_freep) gnutls_datum_t out = {};
        int gr;

        if (!key || !ret)
                return -EINVAL;
        gr = gnutls_pubkey_export2(key->pub, GNUTLS_X509_FMT_PEM, &out);
        if (gr < 0)
                return gnutls_to_errno(gr);
        return datum_to_cstr(&out, ret, NULL);
}

int teep_key_export_private_pem(const TeepKey *key, char **ret, size_t *ret_len) {
        _cleanup_(x509_privkey_deinitp) gnutls_x509_privkey_t xkey = NULL;
        _cleanup_(datum_erasep) gnutls_datum_t out = {};
        int gr;

        if (!key || !ret || !ret_len)
                return -EINVAL;
        if (!key->priv || key->external)
                return -ENOKEY;
        gr = gnutls_privkey_export_x509(key->priv, &xkey);
        if (gr < 0)
                return gnutls_to_errno(gr);
        gr = gnutls_x509_privkey_export2_pkcs8(xkey, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &out);
        if (gr < 0)
                return gnutls_to_errno(gr);
        return datum_to_cstr(&out, ret, ret_len);
}

/* ---- certificate chains (x5chain) ---- */

static void trust_list_deinitp(gnutls_x509_trust_list_t *p) {
        if (*p)
                gnutls_x509_trust_list_deinit(*p, 1);
        *p = NULL;
}

int teep_x5chain_verify(TeepBuf x5chain_raw, const TeepBuf *cas, size_t n_cas, const TeepBuf *crls, size_t n_crls,
                        TeepKey **ret_leaf, TeepError *err) {
        _cleanup_(trust_list_deinitp) gnutls_x509_trust_list_t tl = NULL;
        _cleanup_(pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        gnutls_x509_crt_t chain[TEEP_X5CHAIN_MAX_CERTS] = {};
        TeepBuf ders[TEEP_X5CHAIN_MAX_CERTS];
        size_t n = 0, count;
        TeepCborReader r;
        TeepCborItem it;
        unsigned status = 0;
        int gr, ret = 0;

        if (!ret_leaf || (!cas && n_cas > 0) || (!crls && n_crls > 0))
                return -EINVAL;
        if (n_cas == 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_NO_KEY, "x5chain: no trusted CA certificate");
        teep_cbor_reader_init(&r, x5chain_raw);
        if (teep_cbor_peek(&r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: malformed");
        if (it.type == TEEP_CBOR_BYTES) {
                if (teep_cbor_read_bytes(&r, &ders[0], NULL) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: malformed");
                n = 1;
        } else {
                if (teep_cbor_read_array(&r, &count, NULL) < 0 || count == 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: malformed");
                if (count > TEEP_X5CHAIN_MAX_CERTS)
                        return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_HEADER, "x5chain: %zu certificates, at most %d",
                                              count, TEEP_X5CHAIN_MAX_CERTS);
                for (; n < count; n++)
                        if (teep_cbor_read_bytes(&r, &ders[n], NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: element %zu", n);
        }

        gr = gnutls_x509_trust_list_init(&tl, 0);
        if (gr < 0)
                return gnutls_to_errno(gr);
        for (size_t i = 0; i < n_cas; i++) {
                gnutls_x509_crt_t ca = NULL;
                gnutls_datum_t d = { (unsigned char *)cas[i].ptr, (unsigned)cas[i].len };
                if (gnutls_x509_crt_init(&ca) < 0)
                        return -ENOMEM;
                if (gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_DER) < 0 ||
                    gnutls_x509_trust_list_add_cas(tl, &ca, 1, 0) != 1) {
                        gnutls_x509_crt_deinit(ca);
                        continue; /* an unusable anchor is no anchor */
                }
        }
        for (size_t i = 0; i < n_crls; i++) {
                gnutls_x509_crl_t crl = NULL;
                gnutls_datum_t d = { (unsigned char *)crls[i].ptr, (unsigned)crls[i].len };
                if (gnutls_x509_crl_init(&crl) < 0)
                        return -ENOMEM;
                /* GNUTLS_TL_VERIFY_CRL: only a CRL its issuer (one of the CAs) signed counts */
                if (gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_DER) < 0 ||
                    gnutls_x509_trust_list_add_crls(tl, &crl, 1, GNUTLS_TL_VERIFY_CRL, 0) != 1)
                        gnutls_x509_crl_deinit(crl);
        }

        for (size_t i = 0; i < n && ret >= 0; i++) {
                gnutls_datum_t d = { (unsigned char *)ders[i].ptr, (unsigned)ders[i].len };
                if (gnutls_x509_crt_init(&chain[i]) < 0)
                        ret = -ENOMEM;
                else if (gnutls_x509_crt_import(chain[i], &d, GNUTLS_X509_FMT_DER) < 0)
                        ret = teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: certificate %zu does not parse", i);
        }
        if (ret >= 0) {
                gr = gnutls_x509_trust_list_verify_crt2(tl, chain, (unsigned)n, NULL, 0, 0, &status, NULL);
                if (gr < 0)
                        ret = gnutls_to_errno(gr);
                else if (status != 0) {
                        const char *why = (status & GNUTLS_CERT_REVOKED)            ? "revoked"
                                          : (status & GNUTLS_CERT_EXPIRED)          ? "expired"
                                          : (status & GNUTLS_CERT_NOT_ACTIVATED)    ? "not yet valid"
                                          : (status & GNUTLS_CERT_SIGNER_NOT_FOUND) ? "no trusted CA"
                                          : (status & GNUTLS_CERT_SIGNATURE_FAILURE) ? "bad signature"
                                          : (status & GNUTLS_CERT_INSECURE_ALGORITHM) ? "insecure algorithm"
                                                                                        : "not trusted";
                        ret = teep_error_set(err, -EKEYREJECTED, TEEP_REASON_COSE_KEY, "x5chain: %s (status 0x%x)", why, status);
                }
        }
        if (ret >= 0) {
                gr = gnutls_pubkey_init(&pub);
                if (gr >= 0)
                        gr = gnutls_pubkey_import_x509(pub, chain[0], 0);
                ret = gr < 0 ? teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_KEY, "x5chain: leaf key: %s", gnutls_strerror(gr))
                             : key_from_gnutls_pubkey(ret_leaf, pub, err);
        }
        for (size_t i = 0; i < n; i++)
                if (chain[i])
                        gnutls_x509_crt_deinit(chain[i]);
        return ret;
}

/* ---- algorithms and raw signatures ---- */

int teep_key_export_p256_raw(const TeepKey *key, uint8_t ret_x[32], uint8_t ret_y[32], uint8_t *ret_d) {
        _cleanup_(datum_freep) gnutls_datum_t x = {}, y = {};
        _cleanup_(datum_erasep) gnutls_datum_t k = {};
        gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
        uint8_t fd[KEY_COORD_SIZE];

        if (!key || !ret_x || !ret_y)
                return -EINVAL;
        if (key->type != TEEP_KEY_P256)
                return -EOPNOTSUPP;
        if (ret_d) {
                if (!key->priv)
                        return -ENOKEY;
                if (gnutls_privkey_export_ecc_raw2(key->priv, &curve, &x, &y, &k, GNUTLS_EXPORT_FLAG_NO_LZ) < 0 ||
                    datum_to_fixed(&k, fd) < 0) {
                        explicit_bzero(fd, sizeof(fd));
                        return -EINVAL;
                }
                memcpy(ret_d, fd, KEY_COORD_SIZE);
                explicit_bzero(fd, sizeof(fd));
        }
        memcpy(ret_x, key->x, KEY_COORD_SIZE);
        memcpy(ret_y, key->y, KEY_COORD_SIZE);
        return 0;
}

const char *teep_cose_alg_to_string(int64_t alg) {
        switch (alg) {
        case COSE_ALG_ESP256:
                return "ESP256";
        case COSE_ALG_ES256:
                return "ES256 (legacy)";
        case COSE_ALG_ED25519:
                return "Ed25519";
        case COSE_ALG_EDDSA:
                return "EdDSA (legacy)";
        case -35:
                return "ES384";
        case -36:
                return "ES512";
        case -37:
                return "PS256";
        case -257:
                return "RS256";
        default:
                return NULL;
        }
}

static bool alg_known(int64_t alg) {
        return alg == COSE_ALG_ESP256 || alg == COSE_ALG_ES256 || alg == COSE_ALG_ED25519 || alg == COSE_ALG_EDDSA;
}

static int key_verify_raw(const TeepKey *key, TeepBuf tbs, TeepBuf sig, TeepError *err) {
        _cleanup_(datum_freep) gnutls_datum_t der = {};
        gnutls_datum_t data = { (unsigned char *)tbs.ptr, (unsigned)tbs.len };
        gnutls_datum_t sigd = { (unsigned char *)sig.ptr, (unsigned)sig.len };
        gnutls_sign_algorithm_t algo;
        int gr;

        if (sig.len != SIG_SIZE)
                return teep_error_set(err, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE_SIZE,
                                      "signature is %zu bytes, want %u", sig.len, SIG_SIZE);
        if (tbs.len > UINT32_MAX)
                return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_SIGNATURE, "payload too large to verify");

        if (key->type == TEEP_KEY_P256) {
                gnutls_datum_t r = { (unsigned char *)sig.ptr, KEY_COORD_SIZE };
                gnutls_datum_t s = { (unsigned char *)sig.ptr + KEY_COORD_SIZE, KEY_COORD_SIZE };

                /* COSE carries r||s; gnutls wants the DER SEQUENCE */
                gr = gnutls_encode_rs_value(&der, &r, &s);
                if (gr < 0)
                        return gnutls_to_errno(gr);
                sigd = der;
                algo = GNUTLS_SIGN_ECDSA_SHA256;
        } else
                algo = GNUTLS_SIGN_EDDSA_ED25519;

        gr = gnutls_pubkey_verify_data2(key->pub, algo, 0, &data, &sigd);
        if (gr == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        if (gr < 0)
                return teep_error_set(err, -EKEYREJECTED, TEEP_REASON_COSE_SIGNATURE, "signature did not verify");
        return 0;
}

static int key_sign_raw(const TeepKey *key, TeepBuf tbs, uint8_t ret[SIG_SIZE]) {
        _cleanup_(datum_freep) gnutls_datum_t sig = {}, r = {}, s = {};
        gnutls_datum_t data = { (unsigned char *)tbs.ptr, (unsigned)tbs.len };
        int gr;

        if (tbs.len > UINT32_MAX)
                return -E2BIG;
        /* ECDSA per RFC 6979 (deterministic): no dependence on the RNG at signing time, and the
         * same inputs give the same bytes (teep-manifest's output is reproducible). */
        gr = gnutls_privkey_sign_data2(key->priv,
                                       key->type == TEEP_KEY_P256 ? GNUTLS_SIGN_ECDSA_SHA256 : GNUTLS_SIGN_EDDSA_ED25519,
                                       /* a token signs its own way (its RNG): the flag is ours only */
                                       key->type == TEEP_KEY_P256 && !key->external ? GNUTLS_PRIVKEY_FLAG_REPRODUCIBLE : 0,
                                       &data, &sig);
        if (gr < 0)
                return gnutls_to_errno(gr);

        if (key->type == TEEP_KEY_ED25519) {
                if (sig.size != SIG_SIZE)
                        return -EINVAL;
                memcpy(ret, sig.data, SIG_SIZE);
                return 0;
        }
        gr = gnutls_decode_rs_value(&sig, &r, &s);
        if (gr < 0)
                return gnutls_to_errno(gr);
        if (datum_to_fixed(&r, ret) < 0 || datum_to_fixed(&s, ret + KEY_COORD_SIZE) < 0)
                return -EINVAL;
        return 0;
}

/* ---- Sig_structure ---- */

/*
 * RFC 9052 §4.4. body_protected/sign_protected are the protected bstr contents exactly as
 * received; sign_protected NULL means COSE_Sign1's "Signature1" form. external_aad is empty.
 */
static int sig_structure(const TeepBuf *body_protected, const TeepBuf *sign_protected, TeepBuf payload,
                         uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, sign_protected ? 5 : 4);
        teep_cbor_put_cstr(&w, sign_protected ? "Signature" : "Signature1");
        teep_cbor_put_buf(&w, *body_protected);
        if (sign_protected)
                teep_cbor_put_buf(&w, *sign_protected);
        teep_cbor_put_bytes(&w, NULL, 0);
        teep_cbor_put_buf(&w, payload);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

/* ---- decoding ---- */

/* The labels seen so far in one header pair, to catch a label in both buckets. */
typedef struct HeaderScan {
        MapLabel labels[2 * MAX_MAP_LABELS];
        size_t n;
} HeaderScan;

static bool crit_label_understood(int64_t label) {
        return label == COSE_HDR_ALG || label == COSE_HDR_CRIT || label == COSE_HDR_CTY || label == COSE_HDR_KID ||
               label == COSE_HDR_IV || label == COSE_HDR_X5CHAIN;
}

static int parse_crit(TeepCborReader *r, TeepError *err) {
        TeepCborItem it;
        size_t n;

        if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_ARRAY)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_CRIT, "crit is not an array");
        if (teep_cbor_read_array(r, &n, NULL) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_CRIT, "crit is malformed");
        if (n == 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_CRIT, "crit is empty");
        if (n > MAX_MAP_LABELS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_CRIT, "crit lists %zu labels", n);
        for (size_t i = 0; i < n; i++) {
                MapLabel l;
                int k = read_label(r, &l, TEEP_REASON_COSE_CRIT, err);
                if (k < 0)
                        return k;
                if (l.text)
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_CRIT,
                                              "critical header \"%.*s\" is not understood",
                                              (int)(l.name.len > 32 ? 32 : l.name.len), (const char *)l.name.ptr);
                if (!crit_label_understood(l.value))
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_CRIT,
                                              "critical header %" PRId64 " is not understood", l.value);
        }
        return 0;
}

static int parse_x5chain(TeepCborReader *r, TeepBuf *ret, TeepError *err) {
        const uint8_t *start = r->pos;
        TeepCborItem it;
        size_t n;

        if (teep_cbor_peek(r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: malformed");
        if (it.type == TEEP_CBOR_BYTES) {
                TeepBuf b;
                if (teep_cbor_read_bytes(r, &b, NULL) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: malformed");
        } else if (it.type == TEEP_CBOR_ARRAY) {
                if (teep_cbor_read_array(r, &n, NULL) < 0 || n == 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: empty or malformed array");
                for (size_t i = 0; i < n; i++) {
                        TeepBuf b;
                        int k = read_member_bytes(r, &b, TEEP_REASON_COSE_HEADER, "x5chain element", err);
                        if (k < 0)
                                return k;
                }
        } else
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "x5chain: expected bstr or array, found %s",
                                      teep_cbor_type_to_string(it.type));
        *ret = TEEP_BUF(start, (size_t)(r->pos - start));
        return 0;
}

/* Parse one header map (protected content or unprotected) into h, recording labels in scan. */
static int parse_header_map(TeepCborReader *r, bool is_protected, HeaderScan *scan, TeepCoseHeaders *h,
                            TeepError *err) {
        const char *bucket = is_protected ? "protected" : "unprotected";
        size_t first = scan->n, n;
        TeepCborItem it;
        int k;

        if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_MAP)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "%s header is not a map", bucket);
        if (teep_cbor_read_map(r, &n, NULL) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "%s header is malformed", bucket);
        if (n > MAX_MAP_LABELS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_HEADER, "%s header has %zu labels, limit %u",
                                      bucket, n, MAX_MAP_LABELS);

        for (size_t i = 0; i < n; i++) {
                MapLabel l;

                k = read_label(r, &l, TEEP_REASON_COSE_HEADER, err);
                if (k < 0)
                        return k;
                for (size_t j = 0; j < scan->n; j++) {
                        if (!map_label_eq(&scan->labels[j], &l))
                                continue;
                        if (j >= first)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "%s header: duplicate label", bucket);
                        if (l.text)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER,
                                                      "label \"%.*s\" is in both header buckets",
                                                      (int)(l.name.len > 32 ? 32 : l.name.len), (const char *)l.name.ptr);
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER,
                                              "label %" PRId64 " is in both header buckets", l.value);
                }
                scan->labels[scan->n++] = l;

                if (l.text) {
                        if (teep_cbor_skip(r, NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "%s header: bad value",
                                                      bucket);
                        continue;
                }

                switch (l.value) {
                case COSE_HDR_ALG:
                        if (teep_cbor_peek(r, &it) == 0 && it.type == TEEP_CBOR_TEXT) {
                                TeepBuf name;
                                /* a text alg is legal COSE but never one we support: alg 0 stands for it */
                                if (teep_cbor_read_text(r, &name, NULL) < 0)
                                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "alg: bad text");
                                h->alg = 0;
                        } else {
                                k = read_member_int(r, &h->alg, TEEP_REASON_COSE_HEADER, "alg", err);
                                if (k < 0)
                                        return k;
                        }
                        h->has_alg = true;
                        break;
                case COSE_HDR_CRIT:
                        if (!is_protected)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_CRIT,
                                                      "crit must be in the protected header");
                        k = parse_crit(r, err);
                        if (k < 0)
                                return k;
                        break;
                case COSE_HDR_CTY: {
                        if (teep_cbor_peek(r, &it) < 0 || (it.type != TEEP_CBOR_UINT && it.type != TEEP_CBOR_TEXT))
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER,
                                                      "content type is not a uint or tstr");
                        if (teep_cbor_skip(r, NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_HEADER, "content type: malformed");
                        h->has_content_type = true;
                        break;
                }
                case COSE_HDR_KID:
                        k = read_member_bytes(r, &h->kid, TEEP_REASON_COSE_HEADER, "kid", err);
                        if (k < 0)
                                return k;
                        h->has_kid = true;
                        break;
                case COSE_HDR_IV: {
                        TeepBuf iv;
                        k = read_member_bytes(r, &iv, TEEP_REASON_COSE_HEADER, "IV", err);
                        if (k < 0)
                                return k;
                        break;
                }
                case COSE_HDR_X5CHAIN:
                        k = parse_x5chain(r, &h->x5chain_raw, err);
                        if (k < 0)
                                return k;
                        h->has_x5chain = true;
                        break;
                default:
                        /* not critical (crit was checked), so it may be ignored */
                        if (teep_cbor_skip(r, NULL) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "%s header: bad value",
                                                      bucket);
                        break;
                }
        }
        return 0;
}

/*
 * Parse a protected bstr (already read) and the unprotected map that follows in r.
 * require_alg: COSE_Sign body headers carry no alg; Sign1 and each Sign signer must.
 */
static int parse_headers(TeepBuf protected_raw, TeepCborReader *r, bool require_alg, TeepCoseHeaders *ret,
                         TeepError *err) {
        HeaderScan scan = {};
        TeepCoseHeaders h = { .protected_raw = protected_raw };
        int k;

        if (protected_raw.len > 0) {
                TeepCborReader pr;

                /* the bstr content is a CBOR item of its own: same limits, exactly one item */
                k = teep_cbor_check(protected_raw, NULL, err);
                if (k < 0) {
                        teep_error_prefix(err, k, "protected header");
                        return k;
                }
                teep_cbor_reader_init(&pr, protected_raw);
                k = parse_header_map(&pr, true, &scan, &h, err);
                if (k < 0)
                        return k;
        }
        k = parse_header_map(r, false, &scan, &h, err);
        if (k < 0)
                return k;
        /* a label in both buckets was refused above, so alg comes from exactly one of them */
        if (require_alg && !h.has_alg)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_ALG_MISSING, "no alg header");
        *ret = h;
        return 0;
}

static int read_struct_bytes(TeepCborReader *r, TeepBuf *ret, const char *what, TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_BYTES || teep_cbor_read_bytes(r, ret, NULL) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "%s is not a bstr", what);
        return 0;
}

static int read_struct_array(TeepCborReader *r, size_t *ret, const char *what, TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_ARRAY || teep_cbor_read_array(r, ret, NULL) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "%s is not an array", what);
        return 0;
}

int teep_cose_decode(TeepBuf in, TeepCoseMessage *ret, TeepError *err) {
        TeepCoseMessage m = {};
        TeepCborReader rd;
        TeepCborItem it;
        TeepBuf body_protected;
        bool tagged_sign1 = false;
        size_t n;
        int k;

        if (!ret)
                return -EINVAL;
        k = teep_cbor_check(in, NULL, err);
        if (k < 0)
                return k;
        teep_cbor_reader_init(&rd, in);

        if (teep_cbor_peek(&rd, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "malformed CBOR");
        if (it.type == TEEP_CBOR_TAG) {
                if (it.value != COSE_TAG_SIGN1 && it.value != COSE_TAG_SIGN)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_TAG,
                                              "tag %" PRIu64 " is not COSE_Sign1 (18) or COSE_Sign (98)", it.value);
                (void)teep_cbor_read(&rd, &it);
                m.tagged = true;
                tagged_sign1 = it.value == COSE_TAG_SIGN1;
        }

        k = read_struct_array(&rd, &n, "COSE message", err);
        if (k < 0)
                return k;
        if (n != 4)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE,
                                      "COSE message has %zu elements, want 4", n);

        k = read_struct_bytes(&rd, &body_protected, "protected header", err);
        if (k < 0)
                return k;
        if (teep_cbor_peek(&rd, &it) < 0 || it.type != TEEP_CBOR_MAP)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "unprotected header is not a map");

        /*
         * The kind decides whether the body needs an alg, and only the fourth element tells
         * the untagged forms apart, so look ahead past the headers and payload first.
         */
        {
                TeepCborReader ahead = rd;
                if (teep_cbor_skip(&ahead, NULL) < 0 || teep_cbor_skip(&ahead, NULL) < 0 ||
                    teep_cbor_peek(&ahead, &it) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "malformed COSE message");
                if (it.type == TEEP_CBOR_BYTES)
                        m.kind = TEEP_COSE_SIGN1;
                else if (it.type == TEEP_CBOR_ARRAY)
                        m.kind = TEEP_COSE_SIGN;
                else
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE,
                                              "fourth element is a %s, not a signature or a signer list",
                                              teep_cbor_type_to_string(it.type));
        }
        if (m.tagged && tagged_sign1 != (m.kind == TEEP_COSE_SIGN1))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_TAG, "tag %d on a %s structure",
                                      tagged_sign1 ? COSE_TAG_SIGN1 : COSE_TAG_SIGN,
                                      m.kind == TEEP_COSE_SIGN1 ? "COSE_Sign1" : "COSE_Sign");

        k = parse_headers(body_protected, &rd, m.kind == TEEP_COSE_SIGN1, &m.body, err);
        if (k < 0)
                return k;

        if (teep_cbor_peek(&rd, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "malformed payload");
        if (it.type == TEEP_CBOR_NULL) {
                (void)teep_cbor_read(&rd, &it);
                m.payload_detached = true;
        } else {
                k = read_struct_bytes(&rd, &m.payload, "payload", err);
                if (k < 0)
                        return k;
        }

        if (m.kind == TEEP_COSE_SIGN1) {
                k = read_struct_bytes(&rd, &m.signers[0].signature, "signature", err);
                if (k < 0)
                        return k;
                m.signers[0].headers = m.body;
                m.n_signers = 1;
        } else {
                k = read_struct_array(&rd, &n, "signatures", err);
                if (k < 0)
                        return k;
                if (n == 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE, "COSE_Sign without signers");
                if (n > TEEP_COSE_MAX_SIGNERS)
                        return teep_error_set(err, -E2BIG, TEEP_REASON_COSE_STRUCTURE,
                                              "COSE_Sign with %zu signers, limit %d", n, TEEP_COSE_MAX_SIGNERS);
                for (size_t i = 0; i < n; i++) {
                        TeepCoseSigner *s = &m.signers[i];
                        TeepBuf prot;
                        size_t fields;

                        k = read_struct_array(&rd, &fields, "COSE_Signature", err);
                        if (k >= 0 && fields != 3)
                                k = teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_STRUCTURE,
                                                   "COSE_Signature has %zu elements, want 3", fields);
                        if (k >= 0)
                                k = read_struct_bytes(&rd, &prot, "signer protected header", err);
                        if (k >= 0)
                                k = parse_headers(prot, &rd, true, &s->headers, err);
                        if (k >= 0)
                                k = read_struct_bytes(&rd, &s->signature, "signature", err);
                        if (k < 0) {
                                teep_error_prefix(err, k, "signer %zu", i);
                                return k;
                        }
                }
                m.n_signers = n;
        }

        if (!teep_cbor_reader_at_end(&rd))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRAILING, "bytes after the COSE message");
        *ret = m;
        return 0;
}

/* ---- verification ---- */

int teep_cose_verify(const TeepCoseMessage *msg, const TeepBuf *detached_payload,
                     TeepKey *const *keys, size_t n_keys,
                     size_t *ret_key, size_t *ret_signer, TeepError *err) {
        TeepError first = {};
        TeepBuf payload;
        bool any_alg = false, tried = false;
        int64_t unsupported_alg = 0;

        if (!msg || (n_keys > 0 && !keys) || msg->n_signers == 0 || msg->n_signers > TEEP_COSE_MAX_SIGNERS)
                return -EINVAL;
        if (msg->payload_detached && !detached_payload)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_DETACHED,
                                      "payload is detached and none was supplied");
        if (!msg->payload_detached && detached_payload)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_COSE_DETACHED,
                                      "a detached payload was supplied for a message that carries one");
        payload = msg->payload_detached ? *detached_payload : msg->payload;
        if (!payload.ptr && payload.len > 0)
                return -EINVAL;
        if (n_keys == 0)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_NO_KEY, "no key to verify with");

        for (size_t s = 0; s < msg->n_signers; s++) {
                const TeepCoseSigner *signer = &msg->signers[s];
                _cleanup_(buf_freep) uint8_t *tbs = NULL;
                size_t tbs_len = 0;
                int64_t alg;

                if (!signer->headers.has_alg)
                        continue;
                alg = signer->headers.alg;
                if (!alg_known(alg)) {
                        unsupported_alg = alg;
                        continue;
                }
                any_alg = true;

                for (size_t k = 0; k < n_keys; k++) {
                        TeepError e = {};
                        int r;

                        if (!teep_key_supports_alg(keys[k], alg))
                                continue;
                        if (!tbs) {
                                r = sig_structure(&msg->body.protected_raw,
                                                  msg->kind == TEEP_COSE_SIGN ? &signer->headers.protected_raw : NULL,
                                                  payload, &tbs, &tbs_len);
                                if (r < 0)
                                        return r;
                        }
                        tried = true;
                        r = key_verify_raw(keys[k], TEEP_BUF(tbs, tbs_len), signer->signature, &e);
                        if (r == 0) {
                                if (ret_key)
                                        *ret_key = k;
                                if (ret_signer)
                                        *ret_signer = s;
                                return 0;
                        }
                        if (r != -EKEYREJECTED)
                                return teep_error_set(err, r, e.reason ?: TEEP_REASON_COSE_SIGNATURE, "%s", e.detail);
                        /* a malformed signature says more than a mismatched key: keep that one */
                        if (first.error == 0 ||
                            (first.reason != TEEP_REASON_COSE_SIGNATURE_SIZE && e.reason == TEEP_REASON_COSE_SIGNATURE_SIZE)) {
                                first = e;
                                if (msg->n_signers > 1)
                                        teep_error_prefix(&first, first.error, "signer %zu", s);
                        }
                }
        }

        if (!any_alg) {
                const char *name = teep_cose_alg_to_string(unsupported_alg);
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_COSE_ALG_UNSUPPORTED,
                                      "no signer uses a supported algorithm (alg %" PRId64 "%s%s)", unsupported_alg,
                                      name ? " " : "", name ?: "");
        }
        if (!tried)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_COSE_KEY_ALG_MISMATCH,
                                      "no key fits the signers' algorithms");
        return teep_error_set(err, -EKEYREJECTED, first.reason, "%s", first.detail);
}

/* ---- signing ---- */

/* Encode {1: alg} on its own: the exact bytes that go into the protected bstr. */
static int protected_alg_bytes(int64_t alg, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_int(&w, COSE_HDR_ALG);
        teep_cbor_put_int(&w, alg);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

static int check_signing_key(const TeepKey *key, int64_t *alg) {
        if (!key)
                return -EINVAL;
        if (!key->priv)
                return -ENOKEY;
        if (*alg == 0)
                *alg = teep_key_default_alg(key);
        if (!teep_key_supports_alg(key, *alg))
                return -EOPNOTSUPP;
        return 0;
}

int teep_cose_sign1(const TeepKey *key, int64_t alg, const TeepBuf *kid,
                    TeepBuf payload, bool detached, uint8_t **ret, size_t *ret_len) {
        _cleanup_(writer_resetp) TeepCborWriter w = {};
        _cleanup_(buf_freep) uint8_t *prot = NULL, *tbs = NULL;
        size_t prot_len, tbs_len;
        uint8_t sig[SIG_SIZE], thumb[32];
        TeepBuf kid_buf;
        int r;

        if (!ret || !ret_len || (!payload.ptr && payload.len > 0) || (kid && !kid->ptr && kid->len > 0))
                return -EINVAL;
        r = check_signing_key(key, &alg);
        if (r < 0)
                return r;

        if (kid)
                kid_buf = *kid;
        else {
                r = teep_key_thumbprint(key, thumb);
                if (r < 0)
                        return r;
                kid_buf = TEEP_BUF(thumb, sizeof(thumb));
        }

        r = protected_alg_bytes(alg, &prot, &prot_len);
        if (r < 0)
                return r;
        r = sig_structure(&TEEP_BUF(prot, prot_len), NULL, payload, &tbs, &tbs_len);
        if (r < 0)
                return r;
        r = key_sign_raw(key, TEEP_BUF(tbs, tbs_len), sig);
        if (r < 0)
                return r;

        teep_cbor_writer_init(&w);
        teep_cbor_put_tag(&w, COSE_TAG_SIGN1);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_bytes(&w, prot, prot_len);
        /* an empty kid means "no kid": SUIT signatures identify the signer by trust anchor */
        if (kid_buf.len > 0) {
                teep_cbor_put_map(&w, 1);
                teep_cbor_put_int(&w, COSE_HDR_KID);
                teep_cbor_put_buf(&w, kid_buf);
        } else
                teep_cbor_put_map(&w, 0);
        if (detached)
                teep_cbor_put_null(&w);
        else
                teep_cbor_put_buf(&w, payload);
        teep_cbor_put_bytes(&w, sig, sizeof(sig));
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

int teep_cose_sign_multi(TeepKey *const *keys, size_t n_keys, TeepBuf payload,
                         uint8_t **ret, size_t *ret_len) {
        _cleanup_(writer_resetp) TeepCborWriter w = {};
        const TeepBuf empty = TEEP_BUF_NULL;
        int r;

        if (!keys || !ret || !ret_len || n_keys == 0 || n_keys > TEEP_COSE_MAX_SIGNERS ||
            (!payload.ptr && payload.len > 0))
                return -EINVAL;
        for (size_t i = 0; i < n_keys; i++) {
                int64_t alg = 0;
                r = check_signing_key(keys[i], &alg);
                if (r < 0)
                        return r;
        }

        teep_cbor_writer_init(&w);
        teep_cbor_put_tag(&w, COSE_TAG_SIGN);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_bytes(&w, NULL, 0);
        teep_cbor_put_map(&w, 0);
        teep_cbor_put_buf(&w, payload);
        teep_cbor_put_array(&w, n_keys);

        for (size_t i = 0; i < n_keys; i++) {
                _cleanup_(buf_freep) uint8_t *prot = NULL, *tbs = NULL;
                size_t prot_len, tbs_len;
                uint8_t sig[SIG_SIZE], thumb[32];
                int64_t alg = teep_key_default_alg(keys[i]);

                r = teep_key_thumbprint(keys[i], thumb);
                if (r < 0)
                        return r;
                r = protected_alg_bytes(alg, &prot, &prot_len);
                if (r < 0)
                        return r;
                r = sig_structure(&empty, &TEEP_BUF(prot, prot_len), payload, &tbs, &tbs_len);
                if (r < 0)
                        return r;
                r = key_sign_raw(keys[i], TEEP_BUF(tbs, tbs_len), sig);
                if (r < 0)
                        return r;

                teep_cbor_put_array(&w, 3);
                teep_cbor_put_bytes(&w, prot, prot_len);
                teep_cbor_put_map(&w, 1);
                teep_cbor_put_int(&w, COSE_HDR_KID);
                teep_cbor_put_bytes(&w, thumb, sizeof(thumb));
                teep_cbor_put_bytes(&w, sig, sizeof(sig));
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
