/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-tam-faults.c: each --fault of teep-tam does what it names, and only that */

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tam-world.h"

TestSuite(fault, .init = world_setup, .fini = world_teardown, .timeout = 120);

static void start_with_fault(const char *fault) {
        const char *args[] = {"--fault", fault, NULL};
        world_start(args);
}

/* Does body verify with the TAM key? (decodes either way) */
static int verify_with_tam(TeepBuf body) {
        TeepCoseMessage cose;

        cr_assert_eq(teep_cose_decode(body, &cose, NULL), 0, "not COSE");
        return teep_cose_verify(&cose, NULL, &w.tam_key, 1, NULL, NULL, NULL);
}

/* Run a session up to the Update (the device requests TC_A); returns the Update's HTTP answer. */
static Http to_update(TeepMessage **ret_qr, Http *ret_q) {
        _cleanup_free_ uint8_t *c = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        Http q = http_connect(&w.tam);
        TeepMessage *qr = teep_open(TEEP_BUF(q.body, q.len), NULL);

        resp = query_response_for(qr);
        request_tc(resp, TC_A, &c);
        *ret_qr = qr;
        *ret_q = q;
        return post_signed(resp, w.device, 0);
}

Test(fault, wrong_signature_breaks_the_signatures_only) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *up = NULL;
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("wrong-signature");
        u = to_update(&qr, &q);
        cr_assert_eq(verify_with_tam(TEEP_BUF(q.body, q.len)), -EKEYREJECTED,
                     "the QueryRequest still verifies");
        cr_assert_eq(qr->token.len, 16, "the message itself is intact");
        cr_assert_eq(u.status, 200);
        cr_assert_eq(verify_with_tam(TEEP_BUF(u.body, u.len)), -EKEYREJECTED, "the Update still verifies");
        up = teep_open(TEEP_BUF(u.body, u.len), NULL);
        cr_assert_eq(up->n_manifest_list, 1);
        http_done(&q);
        http_done(&u);
}

Test(fault, wrong_signature_at_update_only) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL;
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("wrong-signature@update");
        u = to_update(&qr, &q);
        cr_assert_eq(verify_with_tam(TEEP_BUF(q.body, q.len)), 0);
        cr_assert_eq(verify_with_tam(TEEP_BUF(u.body, u.len)), -EKEYREJECTED);
        http_done(&q);
        http_done(&u);
}

Test(fault, untrusted_key_signs_with_another_key) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL;
        TeepCoseMessage cose;
        uint8_t tp[32];
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("untrusted-key");
        u = to_update(&qr, &q);
        cr_assert_eq(verify_with_tam(TEEP_BUF(q.body, q.len)), -EKEYREJECTED);
        cr_assert_eq(verify_with_tam(TEEP_BUF(u.body, u.len)), -EKEYREJECTED);
        /* a well-formed signature by a key whose thumbprint is not the TAM's */
        cr_assert_eq(teep_cose_decode(TEEP_BUF(q.body, q.len), &cose, NULL), 0);
        cr_assert_eq(teep_key_thumbprint(w.tam_key, tp), 0);
        cr_assert(cose.body.has_kid && !teep_buf_eq(cose.body.kid, TEEP_BUF(tp, 32)));
        http_done(&q);
        http_done(&u);
}

Test(fault, wrong_token_in_update) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *up = NULL;
        Http q, u, s;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("wrong-token");
        u = to_update(&qr, &q);
        cr_assert_eq(verify_with_tam(TEEP_BUF(q.body, q.len)), 0);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert(up->has_token);
        cr_assert(!teep_buf_eq(up->token, qr->token), "the Update carries the session's token");
        cr_assert_eq(up->n_manifest_list, 1);
        /* the TAM still closes the exchange for a device that echoes what it got */
        s = post_result(up, w.device, 0);
        cr_assert_eq(s.status, 204);
        http_done(&q);
        http_done(&u);
        http_done(&s);
}

Test(fault, replay_update_sends_the_previous_update_again) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr1 = NULL, *qr2 = NULL, *up1 = NULL;
        Http q1, u1, s1, q2, u2;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("replay-update");
        u1 = to_update(&qr1, &q1);
        cr_assert_eq(u1.status, 200);
        up1 = teep_open(TEEP_BUF(u1.body, u1.len), w.tam_key);
        cr_assert(teep_buf_eq(up1->token, qr1->token), "the first Update is a normal one");
        s1 = post_result(up1, w.device, 0);
        cr_assert_eq(s1.status, 204);

        u2 = to_update(&qr2, &q2);
        cr_assert_eq(u2.status, 200);
        cr_assert(!teep_buf_eq(qr1->token, qr2->token));
        cr_assert_eq(u2.len, u1.len);
        cr_assert(memcmp(u2.body, u1.body, u1.len) == 0,
                  "the second session's Update is not the first one replayed");
        http_done(&q1);
        http_done(&u1);
        http_done(&s1);
        http_done(&q2);
        http_done(&u2);
}

Test(fault, rollback_offers_the_oldest_sequence_number) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *c = NULL, *d = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *up = NULL, *qr2 = NULL, *up2 = NULL,
                                                  *resp = NULL;
        TeepBuf old;
        Http q, u, q2, u2;

        old = offer("a1.suit", TC_A, 1, "old", &e1);
        offer("a2.suit", TC_A, 2, "new", &e2);
        enroll(w.device, "device.pem");
        start_with_fault("rollback");
        u = to_update(&qr, &q);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert_eq(up->n_manifest_list, 1);
        cr_assert(manifest_list_has(up, old), "not the sequence 1 envelope");

        /* and to a device that has sequence 2 installed */
        q2 = http_connect(&w.tam);
        qr2 = teep_open(TEEP_BUF(q2.body, q2.len), w.tam_key);
        resp = query_response_for(qr2);
        have_tc(resp, TC_A, "new", &c, &d);
        u2 = post_signed(resp, w.device, 0);
        cr_assert_eq(u2.status, 200);
        up2 = teep_open(TEEP_BUF(u2.body, u2.len), w.tam_key);
        cr_assert(manifest_list_has(up2, old));
        http_done(&q);
        http_done(&u);
        http_done(&q2);
        http_done(&u2);
}

Test(fault, digest_mismatch_alters_integrated_payloads) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *up = NULL;
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *e = NULL;
        TeepBuf payload;
        uint8_t digest[32], want[32];
        Http q, u;

        offer("a.suit", TC_A, 1, "integrated payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("digest-mismatch");
        u = to_update(&qr, &q);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert_eq(up->n_manifest_list, 1);
        /* the manifest is untouched (its signature verifies), the payload is not what it names */
        cr_assert_eq(teep_suit_envelope_decode(up->manifest_list[0], &e, NULL), 0);
        cr_assert_eq(teep_suit_envelope_verify(e, &w.signer, 1, NULL, NULL), 0);
        cr_assert_eq(teep_suit_envelope_get_payload(e, "#tc", &payload), 0);
        cr_assert_eq(teep_sha256(payload, digest), 0);
        cr_assert_eq(teep_sha256(TEEP_BUF("integrated payload", 18), want), 0);
        cr_assert_eq(payload.len, 18);
        cr_assert(memcmp(digest, want, 32) != 0, "the payload was not altered");
        http_done(&q);
        http_done(&u);
}

Test(fault, digest_mismatch_alters_served_payloads) {
        char url[256];
        Http h;

        file_write(path_in(w.dir, "tcs/payloads/p.bin"), "served bytes", 12);
        start_with_fault("digest-mismatch@payload");
        snprintf(url, sizeof(url), "%s/payload/p.bin", w.tam.base);
        h = http_get(url);
        cr_assert_eq(h.status, 200);
        cr_assert_eq(h.len, 12);
        cr_assert(memcmp(h.body, "served bytes", 12) != 0);
        cr_assert(memcmp(h.body, "served byte", 11) == 0, "more than the last byte changed");
        http_done(&h);
}

Test(fault, oversized_body) {
        Http h;

        start_with_fault("oversized-body:3000000");
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.status, 200);
        cr_assert_eq(h.len, 3000000);
        cr_assert_eq(teep_cbor_check(TEEP_BUF(h.body, h.len), NULL, NULL), 0, "not one well-formed item");
        http_done(&h);
}

Test(fault, truncated_body_closes_early) {
        Http h;

        start_with_fault("truncated-body");
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.curl_code, CURLE_PARTIAL_FILE, "curl: %s", curl_easy_strerror(h.curl_code));
        http_done(&h);
}

Test(fault, truncated_cbor_is_half_a_message) {
        Http h;

        start_with_fault("truncated-cbor");
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.curl_code, 0);
        cr_assert_eq(h.status, 200);
        cr_assert(h.len > 10);
        cr_assert_eq(teep_cbor_check(TEEP_BUF(h.body, h.len), NULL, NULL), -EBADMSG);
        http_done(&h);
}

Test(fault, slow_answers_late) {
        Http h;

        start_with_fault("slow:2@query-request");
        h = http_connect(&w.tam);
        cr_assert(h.seconds >= 1.9, "answered after %.2f s", h.seconds);
        http_done(&h);
}

Test(fault, http_500) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL;
        Http h, q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        start_with_fault("http-500");
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.status, 500);
        cr_assert_eq(h.len, 0);
        http_done(&h);
        tam_stop(&w.tam);

        start_with_fault("http-500@update");
        u = to_update(&qr, &q);
        cr_assert_eq(q.status, 200);
        cr_assert_eq(u.status, 500);
        http_done(&q);
        http_done(&u);
}

Test(fault, faults_are_logged) {
        _cleanup_free_ char *log = NULL;
        const char *args[] = {"--fault", "slow:1@end", "--fault", "wrong-token", NULL};

        world_start(args);
        tam_stop(&w.tam);
        log = tam_log(&w.tam);
        cr_assert(contains(log, "Fault enabled: slow"), "%s", log);
        cr_assert(contains(log, "Fault enabled: wrong-token"), "%s", log);
}

Test(fault, unknown_critical_header) {
        TeepCoseMessage cose;
        TeepError err = {};
        TeepCborReader r;
        TeepBuf protected, payload, sig;
        uint64_t tag;
        size_t n;
        Http h;

        start_with_fault("unknown-critical-header");
        h = http_connect(&w.tam);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(h.body, h.len), &cose, &err), -EOPNOTSUPP);
        cr_assert_eq(err.reason, TEEP_REASON_COSE_CRIT, "%s", err.detail);
        /* otherwise a COSE_Sign1 around a good QueryRequest */
        teep_cbor_reader_init(&r, TEEP_BUF(h.body, h.len));
        cr_assert_eq(teep_cbor_read_tag(&r, &tag, NULL), 0);
        cr_assert_eq(tag, COSE_TAG_SIGN1);
        cr_assert_eq(teep_cbor_read_array(&r, &n, NULL), 0);
        cr_assert_eq(n, 4);
        cr_assert_eq(teep_cbor_read_bytes(&r, &protected, NULL), 0);
        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
        cr_assert_eq(teep_cbor_read_bytes(&r, &payload, NULL), 0);
        cr_assert_eq(teep_cbor_read_bytes(&r, &sig, NULL), 0);
        cr_assert_eq(sig.len, 64);
        {
                _cleanup_(teep_message_freep) TeepMessage *m = NULL;
                cr_assert_eq(teep_message_decode(payload, &m, NULL), 0);
                cr_assert_eq(m->type, TEEP_TYPE_QUERY_REQUEST);
        }
        /* and the signature over it is good (a receiver that understood the label would accept) */
        {
                _cleanup_free_ uint8_t *tbs = NULL;
                _cleanup_free_ char *pem = NULL;
                gnutls_pubkey_t pub = NULL;
                gnutls_datum_t der = {}, rr = {(unsigned char *)sig.ptr, 32},
                               ss = {(unsigned char *)sig.ptr + 32, 32};
                gnutls_datum_t pem_d, data;
                size_t tbs_len = 0;
                TeepCborWriter cw;

                teep_cbor_writer_init(&cw);
                teep_cbor_put_array(&cw, 4);
                teep_cbor_put_cstr(&cw, "Signature1");
                teep_cbor_put_buf(&cw, protected);
                teep_cbor_put_bytes(&cw, NULL, 0);
                teep_cbor_put_buf(&cw, payload);
                cr_assert_eq(teep_cbor_writer_finish(&cw, &tbs, &tbs_len), 0);
                cr_assert_eq(teep_key_export_pem(w.tam_key, &pem), 0);
                pem_d = (gnutls_datum_t){(unsigned char *)pem, (unsigned)strlen(pem)};
                data = (gnutls_datum_t){tbs, (unsigned)tbs_len};
                cr_assert_eq(gnutls_pubkey_init(&pub), 0);
                cr_assert_eq(gnutls_pubkey_import(pub, &pem_d, GNUTLS_X509_FMT_PEM), 0);
                cr_assert_eq(gnutls_encode_rs_value(&der, &rr, &ss), 0);
                cr_assert(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der) >= 0,
                          "the signature does not verify");
                gnutls_free(der.data);
                gnutls_pubkey_deinit(pub);
        }
        http_done(&h);
}
