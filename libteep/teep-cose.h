/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-cose.h: keys, COSE_Sign1 sign/verify and COSE_Sign verify through gnutls */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-errors.h"

typedef enum TeepKeyType {
        TEEP_KEY_P256,     /* EC2, P-256: ESP256 (-9), legacy ES256 (-7) */
        TEEP_KEY_ED25519,  /* OKP, Ed25519: Ed25519 (-19), legacy EdDSA (-8) */
} TeepKeyType;

/* A public key, optionally with its private half. Private material is wiped on free. */
typedef struct TeepKey TeepKey;

/*
 * Parse a key from PEM text: "PUBLIC KEY" (SPKI), "CERTIFICATE" (its subject key),
 * "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY" (SEC1; an "EC PARAMETERS" block before it is
 * skipped). Only P-256 and Ed25519 keys are accepted (-EOPNOTSUPP otherwise).
 * Returns 0, -EBADMSG (TEEP_REASON_COSE_KEY) or -EOPNOTSUPP.
 */
int teep_key_from_pem(TeepKey **ret, const uint8_t *pem, size_t len, TeepError *err);

/*
 * Parse a COSE_Key map (kty/crv/x/y, optional d). x (and y for EC2) are required even with d,
 * each exactly 32 bytes; an alg member must fit the key; d must belong to x/y; the point must
 * be on the curve. Same errors as above (-E2BIG for more than 32 members).
 */
int teep_key_from_cose_key(TeepKey **ret, TeepBuf cose_key, TeepError *err);

/* Parse either form: PEM text (contains "-----BEGIN"), a hex COSE_Key (hex digits and
 * whitespace only), or a binary COSE_Key. */
int teep_key_from_any(TeepKey **ret, const uint8_t *data, size_t len, TeepError *err);

/* Generate a fresh key pair. Returns 0, -EOPNOTSUPP, -ENOMEM or -EINVAL. */
int teep_key_generate(TeepKey **ret, TeepKeyType type);

/*
 * A key whose private half stays in a token: url is anything gnutls_privkey_import_url()
 * takes, in practice a PKCS#11 URI (RFC 7512, "pkcs11:token=...;object=...;type=private").
 * The caller sets up gnutls's PKCS#11 modules and PIN callback first (gnutls_pkcs11_init(),
 * gnutls_pkcs11_add_provider(), gnutls_pkcs11_set_pin_function()). The public half is read
 * from the token and must verify a test signature by the private half. Such a key signs
 * through the token and cannot be exported (teep_key_export_private_pem() fails).
 * Returns 0, -ENOKEY (no usable key at url), -EKEYREJECTED (the halves do not match),
 * -EOPNOTSUPP (not P-256 or Ed25519), -ENOMEM, -EINVAL.
 */
int teep_key_from_url(TeepKey **ret, const char *url, TeepError *err);
/* Whether the key's private half lives outside the process (teep_key_from_url()). */
bool teep_key_is_external(const TeepKey *key);

TeepKey *teep_key_free(TeepKey *key);
static inline void teep_key_freep(TeepKey **k) {
        if (*k)
                *k = teep_key_free(*k);
}

TeepKeyType teep_key_type(const TeepKey *key);
bool teep_key_has_private(const TeepKey *key);

/* True if this key can verify/sign with alg (-9/-7 for P-256, -19/-8 for Ed25519). */
bool teep_key_supports_alg(const TeepKey *key, int64_t alg);
/* The current (RFC 9864) algorithm for this key: -9 or -19. */
int64_t teep_key_default_alg(const TeepKey *key);

/* RFC 9679 COSE Key Thumbprint (SHA-256 over the deterministic required-member map). */
int teep_key_thumbprint(const TeepKey *key, uint8_t ret[32]);

/* Export the public key as a COSE_Key map (deterministic) or as PEM SPKI text (NUL-terminated). */
int teep_key_export_cose(const TeepKey *key, uint8_t **ret, size_t *ret_len);
int teep_key_export_pem(const TeepKey *key, char **ret);

/*
 * Export the private key as PKCS#8 PEM (for key files the agent writes with mode 0600).
 * -ENOKEY without a private half. The caller wipes the buffer.
 */
int teep_key_export_private_pem(const TeepKey *key, char **ret, size_t *ret_len);

/*
 * The raw P-256 coordinates (and, when ret_d is non-NULL, the private scalar) of a key, for
 * ECDH (teep-encrypt.c). Each is 32 bytes, big-endian. The caller wipes ret_d.
 * Returns 0, -EOPNOTSUPP (not a P-256 key), -ENOKEY (ret_d asked for, no private half), -EINVAL.
 */
int teep_key_export_p256_raw(const TeepKey *key, uint8_t ret_x[32], uint8_t ret_y[32], uint8_t *ret_d);

/* Name of an algorithm for people ("ESP256", "ES256 (legacy)", ...) or NULL if unknown. */
const char *teep_cose_alg_to_string(int64_t alg);

/* A decoded header bucket pair (protected + unprotected) with what we understand of it. */
typedef struct TeepCoseHeaders {
        TeepBuf protected_raw;   /* content of the protected bstr (may be empty) */
        bool has_alg;
        int64_t alg;             /* 0 (reserved) stands for a text-string alg: never supported */
        bool has_kid;
        TeepBuf kid;
        bool has_x5chain;
        TeepBuf x5chain_raw;     /* the encoded header value (bstr or array of bstr) */
        bool has_content_type;
} TeepCoseHeaders;

typedef struct TeepCoseSigner {
        TeepCoseHeaders headers;
        TeepBuf signature;
} TeepCoseSigner;

#define TEEP_COSE_MAX_SIGNERS 8

typedef enum TeepCoseKind {
        TEEP_COSE_SIGN1,
        TEEP_COSE_SIGN,
} TeepCoseKind;

/* A COSE_Sign1 or COSE_Sign message, as views into the input buffer. */
typedef struct TeepCoseMessage {
        TeepCoseKind kind;
        bool tagged;                 /* carried tag 18 / 98 */
        TeepCoseHeaders body;        /* Sign1: the only headers; Sign: the body headers */
        bool payload_detached;       /* payload was nil */
        TeepBuf payload;
        size_t n_signers;            /* Sign1: 1 (signers[0].signature is the signature and
                                      * signers[0].headers a copy of body) */
        TeepCoseSigner signers[TEEP_COSE_MAX_SIGNERS];
} TeepCoseMessage;

/*
 * Decode a COSE_Sign1 or COSE_Sign (tag 18, tag 98, or untagged: told apart by shape).
 * Checks header rules: protected headers are a bstr-wrapped map (or empty), no label twice in
 * one map (TEEP_REASON_CBOR_DUPLICATE_KEY) nor in both buckets (TEEP_REASON_COSE_HEADER), crit
 * only in the protected bucket, non-empty and with labels we understand (1, 2, 3, 4, 5, 33;
 * TEEP_REASON_COSE_CRIT), alg present for Sign1 and every Sign signer (TEEP_REASON_COSE_ALG_MISSING;
 * COSE_Sign body headers need none), at most 32 labels per header map. A tag other than 18/98,
 * or one that does not match the shape, is TEEP_REASON_COSE_TAG. The algorithm itself is not
 * checked here (an unsupported alg is reported by teep_cose_verify). Does not verify.
 * Views in ret point into in. ret is untouched on failure.
 * Returns 0, -EBADMSG, -E2BIG, -EOPNOTSUPP (unknown critical header).
 */
int teep_cose_decode(TeepBuf in, TeepCoseMessage *ret, TeepError *err);

/*
 * Verify a decoded message. For a detached payload pass it in detached_payload (else NULL).
 * Tries each key against each signer (for Sign1 the single signature); a key is tried only
 * on signers whose alg it supports. On success ret_key (optional) is the index of the key
 * that verified, ret_signer (optional) the signer index.
 * Returns 0, -ENOKEY (no key could be tried: TEEP_REASON_COSE_NO_KEY without keys,
 * TEEP_REASON_COSE_KEY_ALG_MISMATCH when none fits), -EKEYREJECTED (tried, none verified:
 * TEEP_REASON_COSE_SIGNATURE, or TEEP_REASON_COSE_SIGNATURE_SIZE for a signature that is not
 * 64 bytes), -EOPNOTSUPP (no signer with an algorithm we support: TEEP_REASON_COSE_ALG_UNSUPPORTED),
 * -EBADMSG (TEEP_REASON_COSE_DETACHED: detached payload missing, or given for an attached one).
 */
int teep_cose_verify(const TeepCoseMessage *msg, const TeepBuf *detached_payload,
                     TeepKey *const *keys, size_t n_keys,
                     size_t *ret_key, size_t *ret_signer, TeepError *err);

/*
 * Produce a tagged COSE_Sign1 over payload: protected {1: alg}, unprotected {4: kid}.
 * alg 0 = the key's default alg; kid NULL = the key's RFC 9679 thumbprint, a zero-length kid =
 * no kid (unprotected {}); detached = emit nil as payload (SUIT). ECDSA signatures are raw r||s.
 * Returns 0, -ENOKEY (no private half), -EOPNOTSUPP (alg does not fit the key), -EINVAL, -ENOMEM.
 */
int teep_cose_sign1(const TeepKey *key, int64_t alg, const TeepBuf *kid,
                    TeepBuf payload, bool detached, uint8_t **ret, size_t *ret_len);

/*
 * Produce a tagged COSE_Sign with one signature per key (for a first QueryRequest):
 * body protected empty, each signer protected {1: default alg}, unprotected {4: thumbprint}.
 * 1..TEEP_COSE_MAX_SIGNERS keys, each with a private half. Same errors as teep_cose_sign1().
 */
int teep_cose_sign_multi(TeepKey *const *keys, size_t n_keys, TeepBuf payload,
                         uint8_t **ret, size_t *ret_len);

#define TEEP_X5CHAIN_MAX_CERTS 8

/*
 * Verify an x5chain header value (TeepCoseHeaders.x5chain_raw: a bstr holding one DER
 * certificate, or an array of them, leaf first) up to one of the CA certificates in cas (DER),
 * at the current time, with the CRLs in crls (DER; a CRL that does not verify against its
 * issuer among cas is ignored). Intermediates come from the chain itself. On success *ret_leaf
 * is the leaf certificate's public key (P-256 or Ed25519), to verify the COSE signature with.
 * Returns 0; -EBADMSG (malformed chain or certificate, TEEP_REASON_COSE_HEADER); -E2BIG (more
 * than TEEP_X5CHAIN_MAX_CERTS); -EKEYREJECTED (TEEP_REASON_COSE_KEY: no trusted CA, a bad
 * signature, expired or not yet valid, revoked — err->detail says which); -EOPNOTSUPP (leaf
 * key type); -ENOKEY (no CA given); -ENOMEM.
 */
int teep_x5chain_verify(TeepBuf x5chain_raw, const TeepBuf *cas, size_t n_cas, const TeepBuf *crls, size_t n_crls,
                        TeepKey **ret_leaf, TeepError *err);

/* SHA-256 of a buffer, for the other modules and the programs. In teep-hash.c (nettle), on its
 * own, so a program that only hashes does not link GnuTLS. -EINVAL on a NULL ret or data. */
int teep_sha256(TeepBuf in, uint8_t ret[32]);
