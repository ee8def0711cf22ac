/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-trust.c: the TAM trust-anchor set replaced by a trust-anchor list the device
 * administrator signed; refusals; a TAM whose anchor the list removed is refused afterwards */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-test.h"
#include "macro.h"
#include "teep-protocol.h"

#define TAL "teepkit/trust-anchors"

static Fixture F;
static TeepKey *admin, *tam2;

static void setup(void) {
        char path[400];

        fx_setup(&F, TEEP_KEY_P256);
        cr_assert_eq(teep_key_generate(&admin, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&tam2, TEEP_KEY_P256), 0);
        snprintf(path, sizeof(path), "%s/admin.pem", F.dir);
        fx_write_pem(path, admin);
        F.cfg.admin_key = strdup(path);
        fx_restart(&F);
}

static void teardown(void) {
        admin = teep_key_free(admin);
        tam2 = teep_key_free(tam2);
        fx_teardown(&F);
}

TestSuite(trust, .init = setup, .fini = teardown, .timeout = 60);

/* A trust-anchor list envelope: keys as a CBOR array of COSE_Keys, signed by signer. */
static uint8_t *make_list(const TeepKey *signer, uint64_t seq, TeepKey *const *keys, size_t n, size_t *ret_len) {
        _cleanup_free_ uint8_t *payload = NULL;
        TeepCborWriter w;
        size_t len;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ uint8_t *ck = NULL;
                size_t cl;
                cr_assert_eq(teep_key_export_cose(keys[i], &ck, &cl), 0);
                teep_cbor_put_raw(&w, TEEP_BUF(ck, cl));
        }
        cr_assert_eq(teep_cbor_writer_finish(&w, &payload, &len), 0);
        return make_envelope(signer, TAL, seq, payload, len, NULL, NULL, NULL, ret_len);
}

/* Send the list in an Update from the fixture's TAM (signed with tam_key). */
static TeepMessage *send_list(TeepKey *tam_key, const TeepKey *signer, uint64_t seq, TeepKey *const *keys, size_t n,
                              uint8_t **raw) {
        _cleanup_free_ uint8_t *env = NULL, *qr = NULL, *qraw = NULL, *up = NULL;
        TeepCoseMessage cose;
        TeepMessage *m = NULL;
        uint8_t token[16];
        size_t len, qlen = 0, out_len = 0;
        TeepBuf b;

        env = make_list(signer, seq, keys, n, &len);
        b = TEEP_BUF(env, len);
        for (int i = 0; i < 16; i++)
                token[i] = (uint8_t)(rand() & 0xff);
        qr = tam_query_request(tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &qlen);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(qr, qlen), &qraw, &out_len), 0);
        up = tam_update(tam_key, token, 16, &b, 1, NULL, &qlen);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(up, qlen), raw, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(*raw, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_cose_verify(&cose, NULL, &F.device_pub, 1, NULL, NULL, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        return m;
}

/* Whether a QueryRequest signed by key gets a QueryResponse (true) or an unauthenticated Error. */
static bool tam_accepted(TeepKey *key) {
        _cleanup_free_ uint8_t *qr = NULL, *out = NULL;
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        TeepCoseMessage cose;
        uint8_t token[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };
        size_t len, out_len = 0;

        qr = tam_query_request(key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(qr, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        return m->type == TEEP_TYPE_QUERY_RESPONSE;
}

static bool list_file_exists(void) {
        char path[400];
        snprintf(path, sizeof(path), "%s/trust-anchors.suit", F.state_dir);
        return access(path, F_OK) == 0;
}

static void expect_refused(TeepMessage *m, const char *why) {
        cr_assert_eq(m->type, TEEP_TYPE_ERROR, "%s: accepted", why);
        cr_assert_eq(m->err_code, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "%s: err %d", why, (int)m->err_code);
}

Test(trust, a_list_replaces_the_anchors_and_a_removed_tam_is_refused) {
        _cleanup_free_ uint8_t *r1 = NULL, *r2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *m1 = NULL, *m2 = NULL;

        cr_assert(tam_accepted(F.tam_key));
        cr_assert(!tam_accepted(tam2), "tam2 is not trusted yet");

        /* seq 1: the administrator, the current TAM key and tam2 */
        m1 = send_list(F.tam_key, admin, 1, (TeepKey *[]){ admin, F.tam_key, tam2 }, 3, &r1);
        cr_assert_eq(m1->type, TEEP_TYPE_SUCCESS, "%.*s", (int)m1->err_msg.len, (const char *)m1->err_msg.ptr);
        cr_assert(list_file_exists());
        cr_assert(tam_accepted(tam2), "tam2 was added");

        /* seq 2, sent by tam2: the old TAM key is removed (say it was compromised) */
        m2 = send_list(tam2, admin, 2, (TeepKey *[]){ admin, tam2 }, 2, &r2);
        cr_assert_eq(m2->type, TEEP_TYPE_SUCCESS, "%.*s", (int)m2->err_msg.len, (const char *)m2->err_msg.ptr);
        cr_assert(!tam_accepted(F.tam_key), "a TAM signed by a removed anchor must be refused");
        cr_assert(tam_accepted(tam2));
        cr_assert(tam_accepted(admin), "the administrator's anchor stays");

        /* and after a restart (the list is verified again from the state directory) */
        fx_restart(&F);
        cr_assert(!tam_accepted(F.tam_key));
        cr_assert(tam_accepted(tam2));
}

Test(trust, refusals) {
        _cleanup_free_ uint8_t *r0 = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ok = NULL, *bad_sig = NULL, *older = NULL, *no_admin = NULL,
                                                  *same_seq = NULL;
        _cleanup_free_ char *state = NULL;

        ok = send_list(F.tam_key, admin, 5, (TeepKey *[]){ admin, F.tam_key }, 2, &r0);
        cr_assert_eq(ok->type, TEEP_TYPE_SUCCESS);
        state = fx_state_file(&F);

        /* signed by a TC signer (trusted for Trusted Components, not for anchors) */
        bad_sig = send_list(F.tam_key, F.signer_key, 6, (TeepKey *[]){ admin, F.tam_key, tam2 }, 3, &r1);
        expect_refused(bad_sig, "a list not signed by AdminKey=");
        /* an older list */
        older = send_list(F.tam_key, admin, 4, (TeepKey *[]){ admin, F.tam_key, tam2 }, 3, &r2);
        expect_refused(older, "an older list");
        cr_assert(older->has_err_msg && memmem(older->err_msg.ptr, older->err_msg.len, "rollback", 8));
        /* a list without the administrator's own anchor */
        no_admin = send_list(F.tam_key, admin, 7, (TeepKey *[]){ F.tam_key, tam2 }, 2, &r3);
        expect_refused(no_admin, "a list that drops the administrator");
        /* the same number for other content */
        same_seq = send_list(F.tam_key, admin, 5, (TeepKey *[]){ admin, F.tam_key, tam2 }, 3, &r4);
        expect_refused(same_seq, "a reused sequence number");

        cr_assert(!tam_accepted(tam2), "a refused list changed the anchors");
        cr_assert(tam_accepted(F.tam_key));
        {
                _cleanup_free_ char *after = fx_state_file(&F);
                cr_assert_str_eq(after, state);
        }
        cr_assert_eq(F.store.installs, 0, "a list must never reach the TC store");
}

Test(trust, without_an_admin_key_no_list_is_accepted) {
        _cleanup_free_ uint8_t *r1 = NULL, *r2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *m1 = NULL, *m2 = NULL;

        free(F.cfg.admin_key);
        F.cfg.admin_key = NULL;
        fx_restart(&F);
        m1 = send_list(F.tam_key, admin, 1, (TeepKey *[]){ admin, tam2 }, 2, &r1);
        expect_refused(m1, "a list without AdminKey=");
        /* not even one a TC signer signed: the name is reserved */
        m2 = send_list(F.tam_key, F.signer_key, 1, (TeepKey *[]){ admin, tam2 }, 2, &r2);
        expect_refused(m2, "a TC signer's list");
        cr_assert(!list_file_exists());
        cr_assert_eq(F.store.installs, 0);
}

Test(trust, a_tampered_list_file_stops_the_start) {
        _cleanup_free_ uint8_t *r1 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *m1 = NULL;
        char path[400];
        Agent *a = NULL;
        FILE *f;
        int c;

        m1 = send_list(F.tam_key, admin, 1, (TeepKey *[]){ admin, F.tam_key }, 2, &r1);
        cr_assert_eq(m1->type, TEEP_TYPE_SUCCESS);
        snprintf(path, sizeof(path), "%s/trust-anchors.suit", F.state_dir);
        f = fopen(path, "r+b");
        cr_assert(f);
        /* a byte of the signature, flipped: always another value (writing a fixed one would
         * leave the file as it was whenever the byte already had that value) */
        cr_assert_eq(fseek(f, -3, SEEK_END), 0);
        c = fgetc(f);
        cr_assert_neq(c, EOF);
        cr_assert_eq(fseek(f, -3, SEEK_END), 0);
        cr_assert_neq(fputc(c ^ 0xff, f), EOF);
        cr_assert_eq(fclose(f), 0);
        F.agent = agent_free(F.agent);
        cr_assert_eq(agent_new(&a, &F.cfg, NULL, NULL, NULL, NULL), 0);
        cr_assert_lt(agent_start(a), 0, "fail closed: never fall back to the directory's anchors");
        agent_free(a);
}
