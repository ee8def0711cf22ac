/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-tam.c: the real teep-tam over HTTP on 127.0.0.1; the test plays the device with libteep */

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "macro.h"
#include "tam-util.h"
#include "tam-world.h"
#include "teep-eat.h"

TestSuite(tam, .init = world_setup, .fini = world_teardown, .timeout = 120);

Test(tam, connect_answers_a_signed_query_request) {
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL;
        Http a, b;

        world_start(NULL);
        a = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(a.body, a.len), w.tam_key);
        cr_assert_eq(qr->type, TEEP_TYPE_QUERY_REQUEST);
        cr_assert(qr->has_token);
        cr_assert_eq(qr->token.len, 16);
        cr_assert(!qr->has_challenge, "token mode sends no challenge");
        cr_assert_eq(qr->data_item_requested, TEEP_DATA_TRUSTED_COMPONENTS);
        cr_assert_eq(qr->n_supported_cipher_suites, 1);
        cr_assert_eq(qr->supported_cipher_suites[0].ops[0].cose_tag, COSE_TAG_SIGN1);
        cr_assert_eq(qr->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ESP256);
        cr_assert_eq(qr->n_supported_suit_cose_profiles, 4);
        /* the headers the HTTP transport draft asks for, and no Cache-Control */
        cr_assert(contains(a.headers, "X-Content-Type-Options: nosniff"), "%s", a.headers);
        cr_assert(contains(a.headers, "Content-Security-Policy: default-src 'none'"));
        cr_assert(contains(a.headers, "Referrer-Policy: no-referrer"));
        cr_assert(!contains(a.headers, "Cache-Control"));

        /* a second session gets another one-shot token */
        b = http_connect(&w.tam);
        {
                _cleanup_(teep_message_freep) TeepMessage *qr2 =
                        teep_open(TEEP_BUF(b.body, b.len), w.tam_key);
                cr_assert(!teep_buf_eq(qr->token, qr2->token));
        }
        http_done(&a);
        http_done(&b);
}

Test(tam, full_cycle_install_update_and_nothing_to_do) {
        _cleanup_free_ uint8_t *env1 = NULL, *env2 = NULL, *c1 = NULL, *c2 = NULL, *d1 = NULL;
        _cleanup_free_ char *state = NULL, *log = NULL;
        TeepBuf e1, e2;

        enroll(w.device, "device.pem");
        e1 = offer("a1.suit", TC_A, 1, "version one", &env1);
        world_start(NULL);

        /* session 1: the device requests TC_A and gets the envelope */
        {
                Http q = http_connect(&w.tam), u, s;
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);
                _cleanup_(teep_message_freep) TeepMessage *up = NULL;

                request_tc(resp, TC_A, &c1);
                u = post_signed(resp, w.device, 0);
                cr_assert_eq(u.status, 200, "QueryResponse answered %ld", u.status);
                cr_assert_str_eq(u.content_type, TEEP_MEDIA_TYPE);
                up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
                cr_assert_eq(up->type, TEEP_TYPE_UPDATE);
                cr_assert(up->has_token && teep_buf_eq(up->token, qr->token),
                          "the Update carries the session token");
                cr_assert_eq(up->n_manifest_list, 1);
                cr_assert(manifest_list_has(up, e1), "the Update does not carry the envelope byte for byte");
                cr_assert(!up->has_unneeded_manifest_list);
                {
                        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
                        cr_assert_eq(teep_suit_envelope_decode(up->manifest_list[0], &env, NULL), 0);
                        cr_assert_eq(teep_suit_envelope_verify(env, &w.signer, 1, NULL, NULL), 0);
                }
                s = post_result(up, w.device, 0);
                cr_assert_eq(s.status, 204, "Success answered %ld", s.status);
                cr_assert_eq(s.len, 0);
                http_done(&q);
                http_done(&u);
                http_done(&s);
        }
        state = device_state(w.device);
        cr_assert(contains(state, "installed " TC_A " 1 "), "state: %s", state);

        /* session 2: the device has it; nothing to do */
        {
                Http q = http_connect(&w.tam), u;
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);

                have_tc(resp, TC_A, "version one", &c2, &d1);
                u = post_signed(resp, w.device, 0);
                cr_assert_eq(u.status, 204, "nothing to do, but %ld", u.status);
                http_done(&q);
                http_done(&u);
        }

        /* session 3: a newer envelope appears in the TC directory (rescanned per session) */
        e2 = offer("a2.suit", TC_A, 2, "version two", &env2);
        {
                _cleanup_free_ uint8_t *c3 = NULL, *d3 = NULL;
                Http q = http_connect(&w.tam), u, s;
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);
                _cleanup_(teep_message_freep) TeepMessage *up = NULL;

                have_tc(resp, TC_A, "version one", &c3, &d3);
                u = post_signed(resp, w.device, 0);
                cr_assert_eq(u.status, 200);
                up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
                cr_assert_eq(up->n_manifest_list, 1);
                cr_assert(manifest_list_has(up, e2),
                          "the newer envelope (sequence 2) is not the one offered");
                s = post_result(up, w.device, 0);
                cr_assert_eq(s.status, 204);
                http_done(&q);
                http_done(&u);
                http_done(&s);
        }
        free(state);
        state = device_state(w.device);
        cr_assert(contains(state, "installed " TC_A " 2 "), "state: %s", state);

        log = tam_log(&w.tam);
        cr_assert(contains(log, "msg=query-response decision=update install:" TC_A), "%s", log);
        cr_assert(contains(log, "msg=success decision=end recorded=install:" TC_A), "%s", log);
        cr_assert(contains(log, "decision=nothing-to-do"), "%s", log);
        cr_assert_eq(tam_stop(&w.tam), 0, "teep-tam did not exit cleanly on SIGTERM");
}

Test(tam, unenrolled_device_key_is_refused_and_enrolling_later_works) {
        _cleanup_(teep_key_freep) TeepKey *stranger = key_new(TEEP_KEY_P256);
        _cleanup_free_ uint8_t *env = NULL, *c = NULL;
        _cleanup_free_ char *log = NULL, *state = NULL;
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(NULL);
        q = http_connect(&w.tam);
        {
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);

                request_tc(resp, TC_A, &c);
                u = post_signed(resp, stranger, 0);
                cr_assert_eq(u.status, 403, "an unenrolled key got %ld", u.status);
                cr_assert_eq(u.len, 0, "the refusal carries a body");
                http_done(&u);

                /* the same device is enrolled while the TAM runs: the next message is accepted */
                enroll(stranger, "stranger.pem");
                u = post_signed(resp, stranger, 0);
                cr_assert_eq(u.status, 200, "after enrolment: %ld", u.status);
                http_done(&u);
        }
        log = tam_log(&w.tam);
        cr_assert(contains(log, "no enrolled device key verifies it"), "%s", log);
        state = device_state(w.device);
        cr_assert_str_eq(state, "");
        http_done(&q);
}

Test(tam, tokens_are_one_shot) {
        _cleanup_free_ uint8_t *env = NULL, *c = NULL, *signed_resp = NULL, *signed_ok = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *resp = NULL, *up = NULL, *ok = NULL;
        TeepBuf b, sb;
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(NULL);
        q = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        request_tc(resp, TC_A, &c);
        b = device_sign(resp, w.device, 0, &signed_resp);

        u = http_post(w.tam.url, b.ptr, b.len, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        /* the same QueryResponse again (a replay by the broker): the token is spent */
        {
                Http again = http_post(w.tam.url, b.ptr, b.len, TEEP_MEDIA_TYPE, NULL);
                cr_assert_eq(again.status, 403, "a replayed QueryResponse got %ld", again.status);
                http_done(&again);
        }
        /* a QueryResponse with a token the TAM never issued */
        {
                uint8_t fake[16] = "0123456789abcdef";
                Http x;
                resp->token = TEEP_BUF(fake, sizeof(fake));
                x = post_signed(resp, w.device, 0);
                cr_assert_eq(x.status, 403);
                http_done(&x);
        }
        /* Success once: 204; the same Success again: 403 */
        cr_assert_eq(teep_message_new(&ok, TEEP_TYPE_SUCCESS), 0);
        ok->has_token = true;
        ok->token = up->token;
        sb = device_sign(ok, w.device, 0, &signed_ok);
        {
                Http s1 = http_post(w.tam.url, sb.ptr, sb.len, TEEP_MEDIA_TYPE, NULL);
                Http s2 = http_post(w.tam.url, sb.ptr, sb.len, TEEP_MEDIA_TYPE, NULL);
                cr_assert_eq(s1.status, 204);
                cr_assert_eq(s2.status, 403, "a replayed Success got %ld", s2.status);
                http_done(&s1);
                http_done(&s2);
        }
        http_done(&q);
        http_done(&u);
}

Test(tam, success_from_another_device_and_error_results) {
        _cleanup_(teep_key_freep) TeepKey *other = key_new(TEEP_KEY_ED25519);
        _cleanup_free_ uint8_t *env = NULL, *c = NULL;
        _cleanup_free_ char *state = NULL, *log = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *resp = NULL, *up = NULL;
        Http q, u, s;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        enroll(other, "other.pem");
        world_start(NULL);
        q = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        request_tc(resp, TC_A, &c);
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);

        s = post_result(up, other, 0);
        cr_assert_eq(s.status, 403, "Success by another enrolled device got %ld", s.status);
        http_done(&s);

        /* the device reports failure (ERR_MANIFEST_PROCESSING_FAILED): nothing is recorded */
        s = post_result(up, w.device, TEEP_ERR_MANIFEST_PROCESSING_FAILED);
        cr_assert_eq(s.status, 204);
        http_done(&s);
        state = device_state(w.device);
        cr_assert(!contains(state, "installed"), "%s", state);
        log = tam_log(&w.tam);
        cr_assert(contains(log, "msg=error decision=end err-code=17 (ERR_MANIFEST_PROCESSING_FAILED)"), "%s",
                  log);
        http_done(&q);
        http_done(&u);
}

/* The device could not verify a QueryRequest: a token-less Error ends the exchange. */
Test(tam, tokenless_error_from_an_enrolled_device_ends_the_exchange) {
        _cleanup_(teep_key_freep) TeepKey *stranger = key_new(TEEP_KEY_P256);
        _cleanup_(teep_message_freep) TeepMessage *err = NULL, *ok = NULL;
        _cleanup_free_ char *log = NULL;
        Http h;

        enroll(w.device, "device.pem");
        world_start(NULL);
        cr_assert_eq(teep_message_new(&err, TEEP_TYPE_ERROR), 0);
        err->has_err_code = true;
        err->err_code = TEEP_ERR_PERMANENT_ERROR;
        err->has_err_msg = true;
        err->err_msg = TEEP_BUF("bad signature", 13);
        h = post_signed(err, w.device, 0);
        cr_assert_eq(h.status, 204, "%ld", h.status);
        http_done(&h);
        /* but not from a stranger, and a token-less Success is no Error */
        h = post_signed(err, stranger, 0);
        cr_assert_eq(h.status, 403);
        http_done(&h);
        cr_assert_eq(teep_message_new(&ok, TEEP_TYPE_SUCCESS), 0);
        h = post_signed(ok, w.device, 0);
        cr_assert_eq(h.status, 403);
        http_done(&h);
        log = tam_log(&w.tam);
        cr_assert(contains(log, "decision=end (no open session) err-code=1 (ERR_PERMANENT_ERROR) "
                                "err-msg=\"bad signature\""),
                  "%s", log);
}

Test(tam, requests_it_cannot_serve_end_the_exchange) {
        _cleanup_free_ uint8_t *env = NULL, *c1 = NULL, *c2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *resp = NULL;
        Http q, u;

        offer("a.suit", TC_A, 3, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(NULL);
        q = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        request_tc(resp, TC_B, &c1); /* not in the TC directory */
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 204);
        http_done(&q);
        http_done(&u);

        /* a minimum sequence number above what the TAM has */
        q = http_connect(&w.tam);
        teep_message_free(qr);
        teep_message_free(resp);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        {
                TeepRequestedTcInfo *info = NULL;
                TeepSuitComponentId id;
                size_t n = 0;
                cr_assert_eq(teep_suit_component_id_from_string(TC_A, &c2, &n), 0);
                cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(c2, n), &id, NULL), 0);
                cr_assert_eq(teep_message_add_requested_tc(resp, id.segments, id.n_segments, &info), 0);
                info->has_tc_manifest_sequence_number = true;
                info->tc_manifest_sequence_number = 4;
        }
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 204);
        {
                _cleanup_free_ char *log = tam_log(&w.tam);
                cr_assert(contains(log, "requested:" TC_B "=unavailable"), "%s", log);
                cr_assert(contains(log, "requested:" TC_A "=too-old(3<4)"), "%s", log);
        }
        http_done(&q);
        http_done(&u);
}

/* Removals: what the device no longer needs, what the TAM revoked, a signed unlink intent. */
Test(tam, removals) {
        _cleanup_free_ uint8_t *ea = NULL, *eb = NULL, *eu = NULL, *c1 = NULL, *c2 = NULL, *c3 = NULL,
                               *d1 = NULL, *d2 = NULL, *c4 = NULL, *d4 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *resp = NULL, *up = NULL;
        TeepBuf unlink_env;
        Http q, u, s;
        const char *args[] = {"--revoke", TC_B, NULL};

        offer("a.suit", TC_A, 1, "a", &ea);
        offer("b.suit", TC_B, 1, "b", &eb);
        enroll(w.device, "device.pem");
        world_start(args);

        /* the device has A and B and no longer needs A; the TAM revoked B */
        q = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        have_tc(resp, TC_A, "a", &c1, &d1);
        have_tc(resp, TC_B, "b", &c2, &d2);
        unneeded_tc(resp, TC_A_MANIFEST, &c3);
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 200, "%ld", u.status);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert(!up->has_manifest_list);
        cr_assert_eq(up->n_unneeded_manifest_list, 2);
        {
                _cleanup_free_ uint8_t *ma = NULL, *mb = NULL;
                TeepSuitComponentId ida, idb;
                size_t n;
                bool a = false, b = false;
                cr_assert_eq(teep_suit_component_id_from_string(TC_A_MANIFEST, &ma, &n), 0);
                cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(ma, n), &ida, NULL), 0);
                cr_assert_eq(teep_suit_component_id_from_string(TC_B_MANIFEST, &mb, &n), 0);
                cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(mb, n), &idb, NULL), 0);
                for (size_t i = 0; i < up->n_unneeded_manifest_list; i++) {
                        a |= teep_suit_component_id_equal(&up->unneeded_manifest_list[i], &ida);
                        b |= teep_suit_component_id_equal(&up->unneeded_manifest_list[i], &idb);
                }
                cr_assert(a && b, "unneeded-manifest-list lacks %s%s", a ? "" : "A ", b ? "" : "B");
        }
        s = post_result(up, w.device, 0);
        cr_assert_eq(s.status, 204);
        http_done(&q);
        http_done(&u);
        http_done(&s);

        /* a signed unlink intent newer than the install envelope: it goes into manifest-list */
        unlink_env = envelope_unlink(w.signer, TC_A, TC_A_MANIFEST, 2, &eu);
        file_write(path_in(w.dir, "tcs/a-unlink.suit"), unlink_env.ptr, unlink_env.len);
        q = http_connect(&w.tam);
        teep_message_free(qr);
        teep_message_free(resp);
        teep_message_free(up);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        have_tc(resp, TC_A, "a", &c4, &d4);
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert_eq(up->n_manifest_list, 1);
        cr_assert(manifest_list_has(up, unlink_env));
        http_done(&q);
        http_done(&u);
}

/* ---- attestation mode ---- */

typedef enum EatFlaw {
        EAT_GOOD,
        EAT_WRONG_NONCE,
        EAT_WRONG_CNF,
        EAT_WRONG_SIGNER,
        EAT_MISSING_CLAIM,
} EatFlaw;

/* The device's Evidence: a TEEP-profile EAT signed by signer. */
static TeepBuf evidence(const TeepKey *device, TeepBuf challenge, EatFlaw flaw, uint8_t **owned) {
        _cleanup_(teep_key_freep) TeepKey *rogue = NULL;
        _cleanup_free_ uint8_t *claims = NULL;
        static const uint8_t ueid[17] = {0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const uint8_t oemid[3] = {0x00, 0x1a, 0x2b};
        static const uint8_t manifest_body[4] = {0xa0, 0xa1, 0xa2, 0xa3};
        uint8_t tp[32], wrong_nonce[32];
        size_t n = 0, sn = 0;
        TeepEat eat = {};

        cr_assert_eq(teep_key_thumbprint(device, tp), 0);
        if (flaw == EAT_WRONG_CNF)
                tp[0] ^= 0xff;
        memset(wrong_nonce, 0x5a, sizeof(wrong_nonce));
        eat.cnf_type = TEEP_EAT_CNF_KID;
        eat.cnf_kid = TEEP_BUF(tp, sizeof(tp));
        eat.has_nonce = true;
        eat.nonce = flaw == EAT_WRONG_NONCE ? TEEP_BUF(wrong_nonce, sizeof(wrong_nonce)) : challenge;
        eat.has_ueid = true;
        eat.ueid = TEEP_BUF(ueid, sizeof(ueid));
        eat.oemid_type = TEEP_EAT_OEMID_IEEE;
        eat.oemid = TEEP_BUF(oemid, sizeof(oemid));
        eat.has_hwmodel = flaw != EAT_MISSING_CLAIM;
        eat.hwmodel = TEEP_BUF("teepkit-test", 12);
        eat.has_hwversion = true;
        eat.hwversion.version = TEEP_BUF("1.0", 3);
        eat.n_manifests = 1;
        eat.manifests[0].content_format = 258;
        eat.manifests[0].body = TEEP_BUF(manifest_body, sizeof(manifest_body));
        cr_assert_eq(teep_eat_encode(&eat, &claims, &n), 0);
        if (flaw == EAT_WRONG_SIGNER) {
                rogue = key_new(TEEP_KEY_P256);
                device = rogue;
        }
        cr_assert_eq(teep_cose_sign1(device, 0, NULL, TEEP_BUF(claims, n), false, owned, &sn), 0);
        return TEEP_BUF(*owned, sn);
}

/* One attestation-mode session with the given EAT flaw; returns the HTTP answer to the
 * QueryResponse. *ret_q holds the QueryRequest (whose views *ret_qr points into). */
static Http attest(EatFlaw flaw, bool with_token, TeepMessage **ret_qr, Http *ret_q) {
        _cleanup_free_ uint8_t *ev = NULL, *c = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        TeepMessage *qr;
        Http q = http_connect(&w.tam), u;

        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        cr_assert(qr->has_challenge, "attestation mode sends a challenge");
        cr_assert_eq(qr->challenge.len, 32);
        cr_assert(qr->data_item_requested & TEEP_DATA_ATTESTATION);
        cr_assert(qr->data_item_requested & TEEP_DATA_TRUSTED_COMPONENTS);
        resp = query_response_for(with_token ? qr : NULL);
        resp->has_attestation_payload = true;
        resp->attestation_payload = evidence(w.device, qr->challenge, flaw, &ev);
        request_tc(resp, TC_A, &c);
        u = post_signed(resp, w.device, 0);
        *ret_qr = qr;
        *ret_q = q;
        return u;
}

static void expect_attestation_refused(EatFlaw flaw, const char *why) {
        TeepMessage *qr = NULL;
        _cleanup_(teep_message_freep) TeepMessage *up = NULL;
        Http q, u = attest(flaw, true, &qr, &q);

        cr_assert_eq(u.status, 200, "flaw %d: %ld", flaw, u.status);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert_eq(up->type, TEEP_TYPE_UPDATE);
        cr_assert(!up->has_manifest_list, "flaw %d: manifests were sent", flaw);
        cr_assert(up->has_err_code);
        cr_assert_eq(up->err_code, TEEP_ERR_ATTESTATION_REQUIRED);
        cr_assert(up->has_err_msg);
        cr_assert(memmem(up->err_msg.ptr, up->err_msg.len, why, strlen(why)), "err-msg '%.*s' lacks '%s'",
                  (int)up->err_msg.len, up->err_msg.ptr, why);
        http_done(&u);
        teep_message_free(qr);
        http_done(&q);
}

Test(tam, attestation_mode_accepts_good_evidence) {
        _cleanup_free_ uint8_t *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *up = NULL;
        TeepMessage *qr = NULL;
        TeepBuf e;
        const char *args[] = {"--mode", "attestation", NULL};
        Http q, u;

        e = offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(args);
        u = attest(EAT_GOOD, true, &qr, &q);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert(!up->has_err_code);
        cr_assert(manifest_list_has(up, e));
        http_done(&u);
        teep_message_free(qr);
        http_done(&q);

        /* without a token the session is found by the EAT nonce */
        u = attest(EAT_GOOD, false, &qr, &q);
        cr_assert_eq(u.status, 200, "no token: %ld", u.status);
        teep_message_free(up);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert(manifest_list_has(up, e));
        http_done(&u);
        teep_message_free(qr);
        http_done(&q);
}

Test(tam, attestation_mode_refuses_bad_evidence) {
        _cleanup_free_ uint8_t *env = NULL;
        const char *args[] = {"--mode", "attestation", NULL};
        TeepMessage *qr = NULL;
        Http q, u;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(args);
        expect_attestation_refused(EAT_WRONG_NONCE, "eat_nonce");
        expect_attestation_refused(EAT_WRONG_CNF, "cnf");
        expect_attestation_refused(EAT_WRONG_SIGNER, "EAT signature");
        expect_attestation_refused(EAT_MISSING_CLAIM, "EAT claims");

        /* no token and a nonce that is no open challenge: no session to answer in */
        u = attest(EAT_WRONG_NONCE, false, &qr, &q);
        cr_assert_eq(u.status, 403, "%ld", u.status);
        http_done(&u);
        teep_message_free(qr);
        http_done(&q);

        /* no evidence at all */
        {
                Http q2 = http_connect(&w.tam), x;
                _cleanup_(teep_message_freep) TeepMessage *qr2 =
                        teep_open(TEEP_BUF(q2.body, q2.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr2);
                _cleanup_(teep_message_freep) TeepMessage *up = NULL;
                x = post_signed(resp, w.device, 0);
                cr_assert_eq(x.status, 200);
                up = teep_open(TEEP_BUF(x.body, x.len), w.tam_key);
                cr_assert(up->has_err_code && up->err_code == TEEP_ERR_ATTESTATION_REQUIRED);
                http_done(&q2);
                http_done(&x);
        }
        {
                _cleanup_free_ char *log = tam_log(&w.tam);
                cr_assert(contains(log, "err-code=7 (ERR_ATTESTATION_REQUIRED)"), "%s", log);
        }
}

/* ---- HTTP ---- */

Test(tam, http_refusals) {
        const char *args[] = {"--max-body", "1024", NULL};
        uint8_t big[2000];
        Http h;

        memset(big, 0xa0, sizeof(big));
        world_start(args);

        h = http_post(w.tam.url, big, sizeof(big), TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.status, 413, "Content-Length over the limit: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, big, sizeof(big), TEEP_MEDIA_TYPE, "Transfer-Encoding: chunked");
        cr_assert_eq(h.status, 413, "chunked over the limit: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, big, 100, TEEP_MEDIA_TYPE, NULL);
        cr_assert_eq(h.status, 400, "malformed: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, "\xa0", 1, "application/cbor", NULL);
        cr_assert_eq(h.status, 415, "wrong Content-Type: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, "\xa0", 1, NULL, NULL);
        cr_assert_eq(h.status, 415, "no Content-Type: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE, "Accept: text/html");
        cr_assert_eq(h.status, 406, "Accept without teep+cbor: %ld", h.status);
        http_done(&h);
        h = http_post(w.tam.url, NULL, 0, TEEP_MEDIA_TYPE "; charset=binary", "Accept: */*");
        cr_assert_eq(h.status, 200, "media type parameters and */*: %ld", h.status);
        http_done(&h);
        h = http_get(w.tam.url);
        cr_assert_eq(h.status, 405);
        http_done(&h);
        {
                char url[256];
                snprintf(url, sizeof(url), "%s/elsewhere", w.tam.base);
                h = http_post(url, NULL, 0, TEEP_MEDIA_TYPE, NULL);
                cr_assert_eq(h.status, 404);
                http_done(&h);
        }
        /* a signed TEEP message a device never sends (a QueryRequest) */
        {
                _cleanup_(teep_message_freep) TeepMessage *m = NULL;
                cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
                {
                        static const int64_t p[] = {-16, -9, -29, -65534};
                        cr_assert_eq(teep_message_add_suit_cose_profile(m, p, 4), 0);
                }
                h = post_signed(m, w.device, 0);
                cr_assert_eq(h.status, 400, "%ld", h.status);
                http_done(&h);
        }
        /* still serving after all that */
        h = http_connect(&w.tam);
        http_done(&h);
}

/* A client that sends half a request and stalls is cut off after --timeout. */
Test(tam, idle_connections_time_out) {
        const char *args[] = {"--timeout", "1", NULL};
        struct sockaddr_in a = {.sin_family = AF_INET};
        struct timespec start, now;
        const char *partial = "POST /tam HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc";
        char buf[64];
        ssize_t n;
        int fd;

        world_start(args);
        a.sin_port = htons((uint16_t)w.tam.port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fd >= 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert_eq(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){.tv_sec = 10}, sizeof(struct timeval));
        clock_gettime(CLOCK_MONOTONIC, &start);
        n = read(fd, buf, sizeof(buf));
        clock_gettime(CLOCK_MONOTONIC, &now);
        cr_assert(n <= 0, "the stalled request got an answer");
        cr_assert(now.tv_sec - start.tv_sec < 8, "the connection was not closed by the timeout");
        close(fd);
        /* and the server still serves */
        {
                Http h = http_connect(&w.tam);
                http_done(&h);
        }
}

Test(tam, uri_payloads_are_served) {
        char url[256];
        Http h;

        file_write(path_in(w.dir, "tcs/payloads/tc.bin"), "the payload bytes", 17);
        world_start(NULL);
        snprintf(url, sizeof(url), "%s/payload/tc.bin", w.tam.base);
        h = http_get(url);
        cr_assert_eq(h.status, 200);
        cr_assert_eq(h.len, 17);
        cr_assert(memcmp(h.body, "the payload bytes", 17) == 0);
        http_done(&h);
        snprintf(url, sizeof(url), "%s/payload/missing.bin", w.tam.base);
        h = http_get(url);
        cr_assert_eq(h.status, 404);
        http_done(&h);
        snprintf(url, sizeof(url), "%s/payload/..%%2Ftam.pem", w.tam.base);
        h = http_get(url);
        cr_assert_eq(h.status, 404, "traversal: %ld", h.status);
        cr_assert(!contains((const char *)h.body, "PRIVATE"));
        http_done(&h);
        snprintf(url, sizeof(url), "%s/payload/.hidden", w.tam.base);
        h = http_get(url);
        cr_assert_eq(h.status, 404);
        http_done(&h);
}

/* The full cycle with a URI envelope whose payload is served by the same TAM. */
Test(tam, uri_envelope_cycle) {
        _cleanup_free_ uint8_t *env = NULL, *c = NULL;
        _cleanup_(teep_message_freep) TeepMessage *qr = NULL, *resp = NULL, *up = NULL;
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *e = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *m = NULL;
        const char *payload = "fetched by URI";
        char uri[256];
        TeepBuf eb;
        Http q, u, g;
        uint8_t digest[32];

        enroll(w.device, "device.pem");
        file_write(path_in(w.dir, "tcs/payloads/a.ta"), payload, strlen(payload));
        world_start(NULL);
        snprintf(uri, sizeof(uri), "%s/payload/a.ta", w.tam.base);
        eb = envelope_install(w.signer, TC_A, 1, uri, payload, strlen(payload), &env);
        file_write(path_in(w.dir, "tcs/a.suit"), eb.ptr, eb.len);

        q = http_connect(&w.tam);
        qr = teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
        resp = query_response_for(qr);
        request_tc(resp, TC_A, &c);
        u = post_signed(resp, w.device, 0);
        cr_assert_eq(u.status, 200);
        up = teep_open(TEEP_BUF(u.body, u.len), w.tam_key);
        cr_assert_eq(up->n_manifest_list, 1);
        cr_assert_eq(teep_suit_envelope_decode(up->manifest_list[0], &e, NULL), 0);
        cr_assert_eq(teep_suit_envelope_verify(e, &w.signer, 1, NULL, NULL), 0);
        cr_assert_eq(teep_suit_manifest_decode(e, 0, &m, NULL), 0);
        /* fetch what the manifest names and check its digest, as the device would */
        for (size_t i = 0; i < m->install.n_commands; i++) {
                const TeepSuitParameters *p = m->install.commands[i].params;
                if (p && teep_suit_parameters_has(p, SUIT_PARAM_URI)) {
                        char fetch[256];
                        snprintf(fetch, sizeof(fetch), "%.*s", (int)p->uri.len, p->uri.ptr);
                        g = http_get(fetch);
                        cr_assert_eq(g.status, 200);
                        cr_assert_eq(teep_sha256(TEEP_BUF(g.body, g.len), digest), 0);
                        http_done(&g);
                }
        }
        cr_assert(
                teep_buf_eq(m->shared_sequence.commands[0].params->image_digest.bytes, TEEP_BUF(digest, 32)),
                "the served payload does not match the manifest's digest");
        http_done(&q);
        http_done(&u);
}

/* ---- algorithms ---- */

Test(tam, legacy_switch_and_automatic_legacy_answers) {
        _cleanup_free_ uint8_t *env = NULL, *c = NULL;
        const char *args[] = {"--legacy", NULL};
        Http q;

        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(w.device, "device.pem");
        world_start(args);
        q = http_connect(&w.tam);
        {
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                TeepCoseMessage cose;
                cr_assert_eq(teep_cose_decode(TEEP_BUF(q.body, q.len), &cose, NULL), 0);
                cr_assert_eq(cose.body.alg, COSE_ALG_ES256);
                cr_assert_eq(qr->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ES256);
                cr_assert_eq(qr->n_supported_suit_cose_profiles, 2);
        }
        http_done(&q);
        tam_stop(&w.tam);

        /* without --legacy, a device that signs with ES256 gets an ES256 Update */
        world_start(NULL);
        q = http_connect(&w.tam);
        {
                _cleanup_(teep_message_freep) TeepMessage *qr =
                        teep_open(TEEP_BUF(q.body, q.len), w.tam_key);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);
                TeepCoseMessage cose;
                Http u;

                request_tc(resp, TC_A, &c);
                u = post_signed(resp, w.device, COSE_ALG_ES256);
                cr_assert_eq(u.status, 200);
                cr_assert_eq(teep_cose_decode(TEEP_BUF(u.body, u.len), &cose, NULL), 0);
                cr_assert_eq(cose.body.alg, COSE_ALG_ES256);
                teep_message_free(teep_open(TEEP_BUF(u.body, u.len), w.tam_key));
                http_done(&u);
        }
        http_done(&q);
}

Test(tam, two_tam_keys_sign_the_first_query_request_twice_and_follow_the_device) {
        _cleanup_(teep_key_freep) TeepKey *ed = key_new(TEEP_KEY_ED25519);
        _cleanup_(teep_key_freep) TeepKey *ed_device = key_new(TEEP_KEY_ED25519);
        _cleanup_free_ uint8_t *env = NULL, *c = NULL;
        _cleanup_free_ char *ed_path = strdup(path_in(w.dir, "tam-ed.pem"));
        const char *args[] = {"--key", ed_path, NULL};
        TeepCoseMessage cose;
        Http q, u;

        key_write_private(ed, ed_path);
        offer("a.suit", TC_A, 1, "payload", &env);
        enroll(ed_device, "ed-device.pem");
        world_start(args);
        q = http_connect(&w.tam);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(q.body, q.len), &cose, NULL), 0);
        cr_assert_eq(cose.kind, TEEP_COSE_SIGN);
        cr_assert_eq(cose.n_signers, 2);
        {
                _cleanup_(teep_message_freep) TeepMessage *qr = teep_open(TEEP_BUF(q.body, q.len), ed);
                _cleanup_(teep_message_freep) TeepMessage *resp = query_response_for(qr);
                cr_assert_eq(qr->n_supported_cipher_suites, 2);
                request_tc(resp, TC_A, &c);
                u = post_signed(resp, ed_device, 0);
                cr_assert_eq(u.status, 200);
                cr_assert_eq(teep_cose_decode(TEEP_BUF(u.body, u.len), &cose, NULL), 0);
                cr_assert_eq(cose.kind, TEEP_COSE_SIGN1);
                cr_assert_eq(cose.body.alg, COSE_ALG_ED25519,
                             "the Update does not follow the device's suite");
                teep_message_free(teep_open(TEEP_BUF(u.body, u.len), ed));
        }
        http_done(&q);
        http_done(&u);
}

/* ---- process life ---- */

Test(tam, lifetime_ends_the_process) {
        const char *args[] = {"--lifetime", "1", NULL};
        struct timespec start, now;
        int st = -1;

        /* the later --lifetime wins over the harness's 60 */
        world_start(args);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (waitpid(w.tam.pid, &st, WNOHANG) == w.tam.pid)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &now);
                cr_assert(now.tv_sec - start.tv_sec < 10, "teep-tam outlived --lifetime 1");
                nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
        }
        w.tam.pid = 0;
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
        {
                _cleanup_free_ char *log = tam_log(&w.tam);
                cr_assert(contains(log, "Lifetime of 1 s is over"), "%s", log);
        }
}

Test(tam, refuses_bad_command_lines) {
        static const char *const cases[][12] = {
                {"--listen", "192.0.2.1:0", NULL}, {"--listen", "nonsense", NULL},
                {"--mode", "psychic", NULL},       {"--fault", "gremlins", NULL},
                {"--fault", "slow:9999", NULL},    {"--lifetime", "0", NULL},
                {"--revoke", "a//b", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *argv[20] = {bin_tam(),  "--key",       path_in(w.dir, "tam.pem"),
                                        "--tc-dir", w.dir,         "--device-keys",
                                        w.dir,      "--state-dir", w.dir};
                size_t n = 9;
                Run r;
                for (size_t k = 0; cases[i][k]; k++)
                        argv[n++] = cases[i][k];
                argv[n] = NULL;
                r = run_argv(10, argv);
                cr_assert_eq(r.status, 64, "case %zu (%s %s): status %d: %s", i, cases[i][0], cases[i][1],
                             r.status, r.err);
                run_done(&r);
        }
        {
                /* a public key cannot sign */
                const char *argv[] = {bin_tam(),  "--key",       path_in(w.dir, "pub.pem"),
                                      "--tc-dir", w.dir,         "--device-keys",
                                      w.dir,      "--state-dir", w.dir,
                                      NULL};
                Run r;
                key_write_public(w.tam_key, path_in(w.dir, "pub.pem"));
                argv[2] = path_in(w.dir, "pub.pem");
                r = run_argv(10, argv);
                cr_assert_eq(r.status, 65, "%d: %s", r.status, r.err);
                run_done(&r);
        }
}

/* teep-tam --no-sync (tam_sync_writes false): the same atomic replace, only without the fsync.
 * What a benchmark's TAM writes must still be whole, in place, with its mode, and leave no
 * temporary file behind; and writing without replace still refuses an existing file. */
Test(tam, state_files_are_whole_without_sync) {
        char dir[] = "/tmp/teep-tam-nosync-XXXXXX", path[300];
        struct stat st;
        FILE *f;
        char buf[64] = "";
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/device.state", dir);
        tam_sync_writes = false;
        cr_assert_eq(tam_write_file_atomic(path, "first\n", 6, 0644, true), 0);
        cr_assert_eq(tam_write_file_atomic(path, "second\n", 7, 0640, true), 0);
        cr_assert_eq(tam_write_file_atomic(path, "third\n", 6, 0644, false), -EEXIST);
        tam_sync_writes = true;
        f = fopen(path, "r");
        cr_assert_not_null(f);
        cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 7);
        fclose(f);
        cr_assert_str_eq(buf, "second\n");
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0640);
        d = opendir(dir);
        cr_assert_not_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        cr_assert_eq(n, 1, "only the file itself: no temporary file left");
        cr_assert_eq(unlink(path), 0);

        /* the per-session state files: through a hidden spare, whole, with their mode */
        snprintf(path, sizeof(path), "%s/device.installed", dir);
        tam_sync_writes = false;
        cr_assert_eq(tam_write_state_file(path, "one\n", 4, 0644), 0);
        cr_assert_eq(tam_write_state_file(path, "two, longer\n", 12, 0644), 0);
        cr_assert_eq(tam_write_state_file(path, "3\n", 2, 0644), 0);
        tam_sync_writes = true;
        f = fopen(path, "r");
        cr_assert_not_null(f);
        memset(buf, 0, sizeof(buf));
        cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 2, "cut to the new length");
        fclose(f);
        cr_assert_str_eq(buf, "3\n");
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0644);
        snprintf(path, sizeof(path), "%s/.device.installed.spare", dir);
        cr_assert_eq(stat(path, &st), 0, "the spare is kept for the next write");
        cr_assert_eq(st.st_size, 12, "it holds the version before");
        cr_assert_eq(unlink(path), 0);
        snprintf(path, sizeof(path), "%s/device.installed", dir);
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(tam_write_state_file("-", "x", 1, 0644), -EINVAL, "no spare for standard output");
        cr_assert_eq(rmdir(dir), 0);
}

/* The device keys are read again only when the directory's files change. */
static void write_key_file(const char *dir, const char *name, TeepKey *key) {
        _cleanup_free_ char *pem = NULL;
        char path[512];

        cr_assert_eq(teep_key_export_pem(key, &pem), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(tam_write_file_atomic(path, pem, strlen(pem), 0644, true), 0);
}

Test(tam, device_keys_are_read_again_only_when_their_files_change) {
        char dir[] = "/tmp/teep-tam-keys-XXXXXX", path[512], tp[65];
        TeepKey *k1 = NULL, *k2 = NULL, *k3 = NULL;
        TamDeviceKeysCache c = {};
        const TamDeviceKeys *keys = NULL, *again = NULL;

        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(teep_key_generate(&k1, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&k2, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&k3, TEEP_KEY_ED25519), 0);
        write_key_file(dir, "a.pem", k1);

        cr_assert_eq(tam_device_keys_cached(dir, &c, &keys), 0);
        cr_assert_eq(keys->n, 1);
        cr_assert_eq(c.loads, 1);
        cr_assert_eq(tam_device_keys_cached(dir, &c, &again), 0);
        cr_assert_eq(again, keys, "the same keys, not read again");
        cr_assert_eq(c.loads, 1);

        write_key_file(dir, "b.pem", k2); /* enrolled meanwhile */
        cr_assert_eq(tam_device_keys_cached(dir, &c, &keys), 0);
        cr_assert_eq(keys->n, 2);
        cr_assert_eq(c.loads, 2);

        write_key_file(dir, "a.pem", k3); /* replaced: another key under the same name */
        cr_assert_eq(tam_device_keys_cached(dir, &c, &keys), 0);
        cr_assert_eq(c.loads, 3);
        cr_assert_eq(tam_key_thumbprint_hex(k3, tp), 0);
        cr_assert_geq(tam_device_keys_find(keys, tp), 0, "the new key is the one found");
        cr_assert_eq(tam_key_thumbprint_hex(k1, tp), 0);
        cr_assert_eq(tam_device_keys_find(keys, tp), -ENOENT, "the old one is gone");

        snprintf(path, sizeof(path), "%s/b.pem", dir);
        cr_assert_eq(unlink(path), 0); /* withdrawn */
        cr_assert_eq(tam_device_keys_cached(dir, &c, &keys), 0);
        cr_assert_eq(keys->n, 1);
        cr_assert_eq(c.loads, 4);

        tam_device_keys_cache_done(&c);
        snprintf(path, sizeof(path), "%s/a.pem", dir);
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(rmdir(dir), 0);
        teep_key_free(k1);
        teep_key_free(k2);
        teep_key_free(k3);
}
