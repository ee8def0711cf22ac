/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-encrypt.h: SUIT encrypted payloads: COSE_Encrypt encryption-info, ECDH-ES+A128KW, A128GCM/A128CTR */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-cose.h"
#include "teep-errors.h"

/*
 * draft-ietf-suit-firmware-encryption, the profiles of draft-ietf-suit-mti that TEEP names:
 *   key distribution  ECDH-ES+A128KW (-29) to a P-256 recipient key: the KEK is
 *                     HKDF-SHA256(ECDH x-coordinate, no salt, info = COSE_KDF_Context
 *                     [-3, [nil,nil,nil], [nil,nil,nil], [128, recipient protected, 'SUIT Payload Encryption']])
 *                     and unwraps the CEK with AES key wrap (RFC 3394)
 *   content           A128GCM (1): 12-byte IV, AAD = Enc_structure ["Encrypt", protected, h''],
 *                     the detached ciphertext ends with the 16-byte tag;
 *                     A128CTR (-65534): 16-byte initial counter block, no tag: the signed SUIT
 *                     image-digest of the plaintext is what authenticates it.
 * The ciphertext is always detached (nil in the COSE_Encrypt; SUIT carries it in the content
 * parameter, an integrated payload or at a URI).
 *
 * The crypto is nettle's (gnutls 3.7 has neither a public ECDH derive nor AES key wrap).
 */

#define TEEP_ENC_MAX_RECIPIENTS 4
#define TEEP_ENC_TAG_LEN 16

/* A decoded encryption-info: views into the input buffer. */
typedef struct TeepEncryptionRecipient {
        TeepBuf protected_raw; /* content of the recipient's protected bstr (KDF context input) */
        bool has_kid;
        TeepBuf kid;
        uint8_t eph_x[32], eph_y[32]; /* the sender's ephemeral P-256 key (-1) */
        TeepBuf wrapped_cek;           /* 24 bytes: A128KW of a 16-byte CEK */
} TeepEncryptionRecipient;

typedef struct TeepEncryptionInfo {
        int64_t content_alg;   /* COSE_ALG_A128GCM or COSE_ALG_A128CTR */
        TeepBuf protected_raw; /* content of the body's protected bstr (GCM AAD input) */
        uint8_t iv[16];
        size_t iv_len; /* 12 (GCM) or 16 (CTR) */
        size_t n_recipients;
        TeepEncryptionRecipient recipients[TEEP_ENC_MAX_RECIPIENTS];
} TeepEncryptionInfo;

/*
 * Decode a SUIT_Encryption_Info (the content of parameter 19): a COSE_Encrypt, tag 96 or
 * untagged, with a detached (nil) ciphertext and 1..TEEP_ENC_MAX_RECIPIENTS recipients, each
 * ECDH-ES+A128KW with an ephemeral P-256 key (checked to lie on the curve).
 * Returns 0; -EBADMSG (TEEP_REASON_ENC_STRUCTURE, or a CBOR reason); -E2BIG; -EOPNOTSUPP
 * (TEEP_REASON_ENC_ALG: another content or key-distribution algorithm, a critical header,
 * a compressed ephemeral key). ret is untouched on failure.
 */
int teep_encryption_info_decode(TeepBuf in, TeepEncryptionInfo *ret, TeepError *err);

/* A streaming decryption: constant memory whatever the payload size. */
typedef struct TeepDecryptor TeepDecryptor;

/*
 * Derive the CEK with the recipient's private key (ECDH-ES+A128KW; every recipient is tried,
 * a kid is only a hint) and start decrypting a detached ciphertext of stream_len bytes
 * (for A128GCM the tag's 16 bytes included).
 * Returns 0; -ENOKEY (key without a private half, or not P-256: TEEP_REASON_ENC_RECIPIENT);
 * -EKEYREJECTED (TEEP_REASON_ENC_RECIPIENT: no recipient's CEK unwraps with this key, i.e. the
 * payload was encrypted to someone else or the wrapped key was altered);
 * -EBADMSG (TEEP_REASON_ENC_LENGTH: a GCM stream shorter than its tag); -ENOMEM.
 */
int teep_decryptor_new(TeepDecryptor **ret, const TeepEncryptionInfo *info, const TeepKey *key, uint64_t stream_len,
                       TeepError *err);

/*
 * Feed the next len bytes of the stream; writes *ret_len plaintext bytes to out, which must
 * have room for len + 16. With A128GCM the plaintext is unauthenticated until
 * teep_decryptor_finish() returned 0: the caller stages it and commits nothing before.
 * Returns 0, or -EBADMSG (TEEP_REASON_ENC_LENGTH: more bytes than announced).
 */
int teep_decryptor_update(TeepDecryptor *d, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len,
                          TeepError *err);

/*
 * End of stream: writes the last (< 16) plaintext bytes to out (room for 16) and checks the
 * GCM tag in constant time. Returns 0; -EBADMSG (TEEP_REASON_ENC_LENGTH: fewer bytes than
 * announced); -EKEYREJECTED (TEEP_REASON_ENC_TAG: ciphertext or tag altered).
 */
int teep_decryptor_finish(TeepDecryptor *d, uint8_t *out, size_t *ret_len, TeepError *err);

/* Free (wiping the keys). Accepts NULL; returns NULL. */
TeepDecryptor *teep_decryptor_free(TeepDecryptor *d);
static inline void teep_decryptor_freep(TeepDecryptor **d) {
        if (*d)
                *d = teep_decryptor_free(*d);
}

/*
 * One shot: decode encryption_info, decrypt ciphertext with key into a new buffer (to free;
 * the caller wipes it when the plaintext is secret). Same errors as the three calls above.
 */
int teep_decrypt(TeepBuf encryption_info, const TeepKey *key, TeepBuf ciphertext, uint8_t **ret, size_t *ret_len,
                 TeepError *err);

/*
 * Encrypt plaintext for recipient (a P-256 public key) with a fresh CEK, IV and ephemeral key:
 *   A128CTR: 96([h'', {1: -65534, 5: iv}, nil, [[<<{1: -29}>>, {4: kid, -1: ephemeral}, wrapped]]])
 *            (the shape of the TEEP draft's App. E Ex.3)
 *   A128GCM: 96([<<{1: 1}>>, {5: iv}, nil, [ the same recipient ]]), ciphertext || tag
 * kid NULL = the recipient's RFC 9679 thumbprint, a zero-length kid = none.
 * Returns 0 with ret_info (the encryption-info to put into parameter 19) and ret_ciphertext
 * (the detached ciphertext) to free; -EOPNOTSUPP (content_alg, or not a P-256 key), -EINVAL, -ENOMEM.
 */
int teep_encrypt(const TeepKey *recipient, int64_t content_alg, const TeepBuf *kid, TeepBuf plaintext, uint8_t **ret_info,
                 size_t *ret_info_len, uint8_t **ret_ciphertext, size_t *ret_ciphertext_len);

/* "A128GCM", "A128CTR" or NULL. */
const char *teep_content_alg_to_string(int64_t alg);
