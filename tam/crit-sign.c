/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crit-sign.c: a COSE_Sign1 with a critical header nobody understands (unknown-critical-header fault) */

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "crit-sign.h"
#include "macro.h"
#include "teep-protocol.h"

/*
 * libteep's signer writes exactly {1: alg} as the protected header, which is right for
 * everything but this fault: here the protected header also lists a private-use label as
 * critical (RFC 9052 §3.1), so a correct receiver must refuse the message even though the
 * signature over it is good. The signing itself goes through gnutls with the TAM's key.
 */

#define CRIT_LABEL (-65537) /* private use (< -65536): no receiver can claim to understand it */

static int sign_raw(const TeepKey *key, const uint8_t *tbs, size_t tbs_len, uint8_t sig_out[64]) {
        gnutls_privkey_t priv = NULL;
        gnutls_datum_t pem_d, data = {(unsigned char *)tbs, (unsigned)tbs_len}, sig = {}, r = {}, s = {};
        char *pem = NULL;
        size_t pem_len = 0;
        bool p256 = teep_key_type(key) == TEEP_KEY_P256;
        int k, ret = -EINVAL;

        k = teep_key_export_private_pem(key, &pem, &pem_len);
        if (k < 0)
                return k;
        pem_d = (gnutls_datum_t){(unsigned char *)pem, (unsigned)pem_len};
        if (gnutls_privkey_init(&priv) < 0 ||
            gnutls_privkey_import_x509_raw(priv, &pem_d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0 ||
            gnutls_privkey_sign_data2(priv, p256 ? GNUTLS_SIGN_ECDSA_SHA256 : GNUTLS_SIGN_EDDSA_ED25519,
                                      p256 ? GNUTLS_PRIVKEY_FLAG_REPRODUCIBLE : 0, &data, &sig) < 0)
                goto out;
        if (!p256) {
                if (sig.size == 64) {
                        memcpy(sig_out, sig.data, 64);
                        ret = 0;
                }
                goto out;
        }
        if (gnutls_decode_rs_value(&sig, &r, &s) < 0)
                goto out;
        /* DER integers: strip a leading zero, left-pad to 32 bytes */
        {
                const gnutls_datum_t *parts[2] = {&r, &s};
                for (int i = 0; i < 2; i++) {
                        const unsigned char *p = parts[i]->data;
                        unsigned n = parts[i]->size;
                        while (n > 32 && *p == 0) {
                                p++;
                                n--;
                        }
                        if (n > 32)
                                goto out;
                        memset(sig_out + 32 * i, 0, 32 - n);
                        memcpy(sig_out + 32 * i + 32 - n, p, n);
                }
        }
        ret = 0;
out:
        gnutls_free(sig.data);
        gnutls_free(r.data);
        gnutls_free(s.data);
        if (priv)
                gnutls_privkey_deinit(priv);
        erase_and_free(pem, pem_len);
        return ret;
}

static int sign1_with_header(const TeepKey *key, int64_t alg, bool crit, TeepBuf payload, uint8_t **ret,
                             size_t *ret_len);

int tam_sign1_unknown_critical(const TeepKey *key, int64_t alg, TeepBuf payload, uint8_t **ret,
                               size_t *ret_len) {
        return sign1_with_header(key, alg, true, payload, ret, ret_len);
}

int tam_sign1_header_alg(const TeepKey *key, int64_t header_alg, TeepBuf payload, uint8_t **ret,
                         size_t *ret_len) {
        return sign1_with_header(key, header_alg, false, payload, ret, ret_len);
}

/* The key signs with its own algorithm whatever alg the header names. */
static int sign1_with_header(const TeepKey *key, int64_t alg, bool crit, TeepBuf payload, uint8_t **ret,
                             size_t *ret_len) {
        _cleanup_free_ uint8_t *protected = NULL, *tbs = NULL;
        size_t protected_len = 0, tbs_len = 0;
        uint8_t sig[64], tp[32];
        TeepCborWriter w;
        int r;

        /* protected: {1: alg, 2: [CRIT_LABEL], CRIT_LABEL: true}, or only {1: alg} */
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, crit ? 3 : 1);
        teep_cbor_put_uint(&w, COSE_HDR_ALG);
        teep_cbor_put_int(&w, alg);
        if (crit) {
                teep_cbor_put_uint(&w, COSE_HDR_CRIT);
                teep_cbor_put_array(&w, 1);
                teep_cbor_put_int(&w, CRIT_LABEL);
                teep_cbor_put_int(&w, CRIT_LABEL);
                teep_cbor_put_bool(&w, true);
        }
        r = teep_cbor_writer_finish(&w, &protected, &protected_len);
        if (r < 0)
                return r;

        /* Sig_structure = ["Signature1", protected, h'', payload] */
        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_cstr(&w, "Signature1");
        teep_cbor_put_bytes(&w, protected, protected_len);
        teep_cbor_put_bytes(&w, NULL, 0);
        teep_cbor_put_buf(&w, payload);
        r = teep_cbor_writer_finish(&w, &tbs, &tbs_len);
        if (r < 0)
                return r;
        r = sign_raw(key, tbs, tbs_len, sig);
        if (r < 0)
                return r;
        r = teep_key_thumbprint(key, tp);
        if (r < 0)
                return r;

        teep_cbor_writer_init(&w);
        teep_cbor_put_tag(&w, COSE_TAG_SIGN1);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_bytes(&w, protected, protected_len);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_uint(&w, COSE_HDR_KID);
        teep_cbor_put_bytes(&w, tp, sizeof(tp));
        teep_cbor_put_buf(&w, payload);
        teep_cbor_put_bytes(&w, sig, sizeof(sig));
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
