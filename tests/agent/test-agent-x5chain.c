/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-x5chain.c: TAM keys as certificate chains (COSE x5chain) verified up to a CA in
 * TrustAnchorDirectory, with expiry and CRLs (certificates made by certtool, gnutls-bin) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-test.h"
#include "fileio.h"
#include "macro.h"

static Fixture F;
static char crl_dir[400];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        int st;

        va_start(ap, fmt);
        (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        st = system(cmd);
        return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A key and a certificate for it, issued by ca (NULL: self-signed CA). */
static void make_cert(const char *name, const char *ca, const char *tmpl) {
        cr_assert_eq(run("cd %s && certtool --generate-privkey --key-type ecdsa --curve secp256r1 --no-text "
                         "--outfile %s.key 2>/dev/null && printf '%s' >%s.tmpl",
                         F.dir, name, tmpl, name),
                     0);
        if (!ca)
                cr_assert_eq(run("cd %s && certtool --generate-self-signed --load-privkey %s.key --template %s.tmpl "
                                 "--outfile %s.pem --no-text 2>/dev/null",
                                 F.dir, name, name, name),
                             0);
        else
                cr_assert_eq(run("cd %s && certtool --generate-certificate --load-privkey %s.key --load-ca-certificate "
                                 "%s.pem --load-ca-privkey %s.key --template %s.tmpl --outfile %s.pem --no-text 2>/dev/null",
                                 F.dir, name, ca, ca, name, name),
                             0);
}

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
        if (run("command -v certtool >/dev/null") != 0)
                cr_skip_test("certtool (gnutls-bin) is missing");
        make_cert("ca", NULL, "cn = \"TAM CA\"\\nca\\ncert_signing_key\\ncrl_signing_key\\nexpiration_days = 365\\n");
        make_cert("other-ca", NULL, "cn = \"Other CA\"\\nca\\ncert_signing_key\\nexpiration_days = 365\\n");
        make_cert("tam", "ca", "cn = \"TAM\"\\nserial = 5\\nsigning_key\\nexpiration_days = 30\\n");
        make_cert("tam2", "ca", "cn = \"TAM 2\"\\nserial = 9\\nsigning_key\\nexpiration_days = 30\\n");
        make_cert("expired", "ca",
                  "cn = \"Old TAM\"\\nserial = 7\\nsigning_key\\nactivation_date = \"2019-01-01 00:00:00\"\\n"
                  "expiration_date = \"2020-01-01 00:00:00\"\\n");
        make_cert("stranger", "other-ca", "cn = \"Stranger\"\\nserial = 3\\nsigning_key\\nexpiration_days = 30\\n");
        cr_assert_eq(run("cp %s/ca.pem %s/tam-ca.pem", F.dir, F.anchors), 0);
        snprintf(crl_dir, sizeof(crl_dir), "%s/crls", F.dir);
        cr_assert_eq(mkdir(crl_dir, 0755), 0);
        F.cfg.crl_dir = strdup(crl_dir);
        fx_restart(&F);
}

static void teardown(void) {
        fx_teardown(&F);
}

TestSuite(x5chain, .init = setup, .fini = teardown, .timeout = 60);

static TeepKey *load_key(const char *name) {
        _cleanup_free_ uint8_t *pem = NULL;
        char path[512];
        size_t len;
        TeepKey *k = NULL;

        snprintf(path, sizeof(path), "%s/%s.key", F.dir, name);
        cr_assert_eq(read_full_file(path, 1 << 16, &pem, &len), 0);
        cr_assert_eq(teep_key_from_pem(&k, pem, len, NULL), 0, "%s", path);
        return k;
}

static void cert_der(const char *name, gnutls_datum_t *der) {
        _cleanup_free_ uint8_t *pem = NULL;
        gnutls_x509_crt_t crt;
        gnutls_datum_t in;
        char path[512];
        size_t len;

        snprintf(path, sizeof(path), "%s/%s.pem", F.dir, name);
        cr_assert_eq(read_full_file(path, 1 << 16, &pem, &len), 0);
        in = (gnutls_datum_t){ pem, (unsigned)len };
        cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
        cr_assert_eq(gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM), 0);
        cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der), 0);
        gnutls_x509_crt_deinit(crt);
}

/* A QueryRequest signed by name's key, its unprotected header replaced by {33: x5chain}
 * (the certificates names[], leaf first; the signature does not cover that bucket). */
static uint8_t *query_with_chain(const char *const *names, size_t *ret_len) {
        _cleanup_(teep_key_freep) TeepKey *key = load_key(names[0]);
        _cleanup_free_ uint8_t *qr = NULL;
        uint8_t token[16] = { 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 1, 2, 3 };
        gnutls_datum_t ders[4] = {};
        TeepCoseMessage cose;
        TeepCborWriter w;
        size_t n = 0, len;
        uint8_t *out = NULL;

        qr = tam_query_request(key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(qr, len), &cose, NULL), 0);
        cr_assert_eq(cose.kind, TEEP_COSE_SIGN1);
        while (names[n])
                cert_der(names[n], &ders[n]), n++;
        teep_cbor_writer_init(&w);
        teep_cbor_put_tag(&w, 18);
        teep_cbor_put_array(&w, 4);
        teep_cbor_put_bytes(&w, cose.body.protected_raw.ptr, cose.body.protected_raw.len);
        teep_cbor_put_map(&w, 1);
        teep_cbor_put_int(&w, 33);
        if (n == 1)
                teep_cbor_put_bytes(&w, ders[0].data, ders[0].size);
        else {
                teep_cbor_put_array(&w, n);
                for (size_t i = 0; i < n; i++)
                        teep_cbor_put_bytes(&w, ders[i].data, ders[i].size);
        }
        teep_cbor_put_buf(&w, cose.payload);
        teep_cbor_put_buf(&w, cose.signers[0].signature);
        cr_assert_eq(teep_cbor_writer_finish(&w, &out, ret_len), 0);
        for (size_t i = 0; i < n; i++)
                gnutls_free(ders[i].data);
        return out;
}

/* QueryResponse: accepted; an Error: refused. */
static bool accepted(const char *const *names) {
        _cleanup_free_ uint8_t *q = NULL, *out = NULL;
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        TeepCoseMessage cose;
        size_t len, out_len = 0;

        q = query_with_chain(names, &len);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(q, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        return m->type == TEEP_TYPE_QUERY_RESPONSE;
}

Test(x5chain, a_chain_to_the_ca_is_accepted) {
        cr_assert(accepted((const char *const[]){ "tam", NULL }), "leaf issued by the trusted CA");
        cr_assert(accepted((const char *const[]){ "tam", "ca", NULL }), "leaf and CA in the chain");
}

Test(x5chain, expired_untrusted_and_mismatched_chains_are_refused) {
        cr_assert(!accepted((const char *const[]){ "expired", NULL }), "an expired certificate");
        cr_assert(!accepted((const char *const[]){ "stranger", NULL }), "a CA the device does not trust");
        cr_assert(!accepted((const char *const[]){ "stranger", "other-ca", NULL }), "a chain to an untrusted root");
        /* signed by tam2's key but presenting tam's certificate */
        cr_assert_eq(run("cd %s && cp tam2.key swap.key && cp tam.pem swap.pem", F.dir), 0);
        cr_assert(!accepted((const char *const[]){ "swap", NULL }), "the certificate of another key");
}

Test(x5chain, a_crl_revokes_at_once) {
        cr_assert(accepted((const char *const[]){ "tam2", NULL }));
        cr_assert_eq(run("cd %s && printf 'crl_next_update = 30\\ncrl_number = 1\\n' >crl.tmpl && "
                         "certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.pem "
                         "--load-certificate tam2.pem --template crl.tmpl --outfile %s/ca.crl --no-text 2>/dev/null",
                         F.dir, crl_dir),
                     0);
        cr_assert(!accepted((const char *const[]){ "tam2", NULL }), "a revoked certificate");
        cr_assert(accepted((const char *const[]){ "tam", NULL }), "the CRL lists tam2 only");
        /* a CRL signed by someone else does not count */
        cr_assert_eq(run("cd %s && rm %s/ca.crl && certtool --generate-crl --load-ca-privkey other-ca.key "
                         "--load-ca-certificate other-ca.pem --load-certificate tam.pem --template crl.tmpl "
                         "--outfile %s/other.crl --no-text 2>/dev/null",
                         F.dir, crl_dir, crl_dir),
                     0);
        cr_assert(accepted((const char *const[]){ "tam", NULL }), "a CRL from an untrusted issuer revoked a certificate");
}

Test(x5chain, a_tam_limited_to_other_anchors_cannot_use_the_ca) {
        F.cfg.tams[0].trust_anchors = calloc(2, sizeof(char *));
        F.cfg.tams[0].trust_anchors[0] = strdup("tam.pem");
        fx_restart(&F);
        cr_assert(!accepted((const char *const[]){ "tam", NULL }));
}
