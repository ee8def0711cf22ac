/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-refusals.c: every refusal leaves state file and store byte for byte as they were,
 * and the TAM gets the named error */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "agent-test.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-suit.h"

static Fixture F;
static char *state_before, *store_before;

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
        /* something installed, so "unchanged" means something */
        fx_install(&F, TEST_COMPONENT, 5, "installed v5");
        /* the file now holds that install's resolved journal (commit()): a refused or undone
         * Update must leave these very bytes */
        state_before = fx_state_file(&F);
        store_before = fx_store_snapshot(&F);
}

static void teardown(void) {
        free(state_before);
        free(store_before);
        fx_teardown(&F);
}

TestSuite(refuse, .init = setup, .fini = teardown);

static void assert_unchanged(void) {
        _cleanup_free_ char *state = fx_state_file(&F), *store = fx_store_snapshot(&F);
        const AgentTc *tcs;

        cr_assert_str_eq(state, state_before, "the state file changed");
        cr_assert_str_eq(store, store_before, "the store changed");
        cr_assert(fx_store_has(&F, TEST_COMPONENT, "installed v5"));
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 5);
}

/* An Update with one envelope after a good exchange; checks Error 17 and the report's reason. */
static void expect_manifest_failure(const uint8_t *env, size_t len, int reason, const char *msg_part) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        TeepBuf b = TEEP_BUF(env, len);
        bool nonce = false;

        ans = fx_update(&F, &b, 1, NULL, &raw);
        expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, msg_part);
        cr_assert(ans->has_token, "the Error echoes the Update's token");
        cr_assert_eq(ans->n_suit_reports, 1, "the Error carries a SUIT report");
        cr_assert_eq(suit_report_reason(ans->suit_reports[0], NULL, &nonce), reason, "SUIT report reason");
        cr_assert(nonce);
        assert_unchanged();
}

/* ---- the TEEP message itself ---- */

Test(refuse, bad_signature) {
        _cleanup_free_ uint8_t *env = NULL, *up = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        uint8_t token[16];
        size_t elen, len;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        fx_query(&F, token);
        up = tam_update(F.tam_key, token, 16, &b, 1, NULL, &len);
        up[len - 5] ^= 0x01; /* inside the signature */
        ans = fx_process(&F, up, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, "signature");
        cr_assert(!ans->has_token, "nothing from unauthenticated input is echoed");
        assert_unchanged();
}

Test(refuse, unknown_tam_key) {
        _cleanup_free_ uint8_t *env = NULL, *up = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        uint8_t token[16];
        size_t elen, len;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        fx_query(&F, token);
        up = tam_update(F.other_key, token, 16, &b, 1, NULL, &len);
        ans = fx_process(&F, up, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, NULL);
        assert_unchanged();
}

Test(refuse, malformed_cbor) {
        static const uint8_t garbage[] = { 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x28, 0xa0, 0x5f, 0xff };
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        ans = fx_process(&F, garbage, sizeof(garbage), &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, "malformed");
        assert_unchanged();
}

Test(refuse, malformed_teep_payload_signed) {
        /* a correctly signed COSE whose payload is not a TEEP message */
        static const uint8_t payload[] = { 0x82, 0x03 }; /* [3, <missing>] */
        _cleanup_free_ uint8_t *msg = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t len;

        cr_assert_eq(teep_cose_sign1(F.tam_key, 0, NULL, TEEP_BUF(payload, 1), false, &msg, &len), 0);
        ans = fx_process(&F, msg, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, "malformed message");
        assert_unchanged();
}

Test(refuse, replayed_token) {
        _cleanup_free_ uint8_t *env = NULL, *up = NULL, *raw1 = NULL, *raw2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *a1 = NULL, *a2 = NULL;
        _cleanup_free_ char *state = NULL, *store = NULL;
        uint8_t token[16];
        size_t elen, len;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        fx_query(&F, token);
        up = tam_update(F.tam_key, token, 16, &b, 1, NULL, &len);
        a1 = fx_process(&F, up, len, &raw1);
        cr_assert_eq(a1->type, TEEP_TYPE_SUCCESS);
        state = fx_state_file(&F);
        store = fx_store_snapshot(&F);
        /* the very same bytes again (a broker replaying them) */
        a2 = fx_process(&F, up, len, &raw2);
        expect_error(a2, TEEP_ERR_PERMANENT_ERROR, "replayed");
        {
                _cleanup_free_ char *s2 = fx_state_file(&F), *st2 = fx_store_snapshot(&F);
                cr_assert_str_eq(s2, state);
                cr_assert_str_eq(st2, store);
        }
}

Test(refuse, wrong_token) {
        _cleanup_free_ uint8_t *env = NULL, *up = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        uint8_t token[16];
        const uint8_t wrong[16] = "never-sent-token";
        size_t elen, len;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        fx_query(&F, token);
        up = tam_update(F.tam_key, wrong, 16, &b, 1, NULL, &len);
        ans = fx_process(&F, up, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, "token");
        cr_assert(ans->has_token && teep_buf_eq(ans->token, TEEP_BUF(wrong, 16)));
        assert_unchanged();
        /* and an Update without any token */
        {
                _cleanup_free_ uint8_t *up2 = NULL, *raw2 = NULL;
                _cleanup_(teep_message_freep) TeepMessage *a2 = NULL;
                up2 = tam_update(F.tam_key, NULL, 0, &b, 1, NULL, &len);
                a2 = fx_process(&F, up2, len, &raw2);
                expect_error(a2, TEEP_ERR_PERMANENT_ERROR, "token");
                assert_unchanged();
        }
}

Test(refuse, update_from_another_uri) {
        /* a token is bound to the TAM it was sent to */
        _cleanup_free_ uint8_t *env = NULL, *up = NULL, *out = NULL;
        uint8_t token[16];
        size_t elen, len, out_len = 0;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        fx_query(&F, token);
        up = tam_update(F.tam_key, token, 16, &b, 1, NULL, &len);
        cr_assert_eq(agent_process_message(F.agent, "http://evil.test/tam", TEEP_BUF(up, len), &out, &out_len), -EPERM);
        cr_assert_null(out);
        assert_unchanged();
}

/* ---- the SUIT update procedure ---- */

Test(refuse, rollback) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 4, (const uint8_t *)"v4", 2, NULL, NULL, NULL, &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_UNAUTHORISED, "rollback");
}

Test(refuse, wrong_vendor_id) {
        static const uint8_t vendor[16] = "not-our-vendor!";
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, vendor, NULL, &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_CONDITION_FAILED, "vendor");
}

Test(refuse, wrong_class_id) {
        static const uint8_t class_id[16] = "not-our-class!!";
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, class_id, &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_CONDITION_FAILED, "class");
}

Test(refuse, untrusted_tc_signer) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        env = make_envelope(F.other_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_UNAUTHORISED, "authentication");
}

Test(refuse, tampered_manifest) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;
        uint8_t *p;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, NULL, NULL, NULL, &len);
        /* change the class id inside the signed manifest: the digest no longer matches */
        p = memmem(env, len, test_class_id, 16);
        cr_assert(p);
        p[3] ^= 0x40;
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_UNAUTHORISED, NULL);
}

static void add_fetch(const char *uri, const char *data) {
        size_t i = F.fetcher.n++;
        F.fetcher.e[i].uri = strdup(uri);
        F.fetcher.e[i].data = (uint8_t *)strdup(data);
        F.fetcher.e[i].len = strlen(data);
}

Test(refuse, digest_mismatch) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        /* the broker delivers other bytes of the same size */
        add_fetch("https://tcs.test/v6", "evil-v6!");
        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"good-v6!", 8, "https://tcs.test/v6", NULL, NULL,
                            &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_CONDITION_FAILED, "digest mismatch");
}

Test(refuse, size_mismatch) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        add_fetch("https://tcs.test/v6", "good-v6! plus trailing bytes");
        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"good-v6!", 8, "https://tcs.test/v6", NULL, NULL,
                            &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_OPERATION_FAILED, "size mismatch");
}

Test(refuse, fetch_fails) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;

        env = make_envelope(F.signer_key, TEST_COMPONENT, 6, (const uint8_t *)"v6", 2, "https://unreachable.test/v6", NULL,
                            NULL, &len);
        expect_manifest_failure(env, len, SUIT_REPORT_REASON_OPERATION_FAILED, "fetch");
}

Test(refuse, unknown_critical_suit_command) {
        _cleanup_free_ uint8_t *id_raw = NULL, *manifest = NULL, *env = NULL;
        static const uint8_t payload[] = "v6";
        TeepSuitComponentId id;
        TeepSuitBuild b = {};
        TeepSuitPayload p = { .key = TEEP_BUF("#tc", 3), .data = TEEP_BUF(payload, 2) };
        uint8_t digest[32];
        size_t id_len, mlen, elen;
        bool patched = false;

        cr_assert_eq(teep_suit_component_id_from_string(TEST_COMPONENT, &id_raw, &id_len), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(id_raw, id_len), &id, NULL), 0);
        teep_sha256(TEEP_BUF(payload, 2), digest);
        b.component_id = &id;
        b.sequence_number = 6;
        b.vendor_id = TEEP_BUF(test_vendor_id, 16);
        b.class_id = TEEP_BUF(test_class_id, 16);
        b.image_digest = TEEP_BUF(digest, 32);
        b.image_size = 2;
        b.uri = "#tc";
        cr_assert_eq(teep_suit_manifest_encode_install(&b, &manifest, &mlen), 0);
        /* install = [override {uri}, fetch 15, image-match 15]: make "fetch" (21) command 16,
         * which no SUIT document defines */
        for (size_t i = 0; i + 3 < mlen; i++)
                if (manifest[i] == 0x15 && manifest[i + 1] == 0x0f && manifest[i + 2] == 0x03 && manifest[i + 3] == 0x0f) {
                        manifest[i] = 0x10;
                        patched = true;
                        break;
                }
        cr_assert(patched);
        cr_assert_eq(teep_suit_envelope_sign(TEEP_BUF(manifest, mlen), F.signer_key, 0, &p, 1, &env, &elen), 0);
        expect_manifest_failure(env, elen, SUIT_REPORT_REASON_COMMAND_UNSUPPORTED, "manifest");
}

Test(refuse, malformed_envelope) {
        static const uint8_t env[] = { 0xa2, 0x02, 0x41, 0x00, 0x03 }; /* truncated map */
        expect_manifest_failure(env, sizeof(env), SUIT_REPORT_REASON_CBOR_PARSE, "envelope");
}

Test(refuse, all_or_nothing) {
        /* a good manifest for a new TC and a bad one: neither is installed */
        _cleanup_free_ uint8_t *good = NULL, *bad = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t g, bl;
        TeepBuf envs[2];

        good = make_envelope(F.signer_key, TEST_COMPONENT2, 1, (const uint8_t *)"new", 3, NULL, NULL, NULL, &g);
        bad = make_envelope(F.signer_key, TEST_COMPONENT, 4, (const uint8_t *)"v4", 2, NULL, NULL, NULL, &bl);
        envs[0] = TEEP_BUF(good, g);
        envs[1] = TEEP_BUF(bad, bl);
        ans = fx_update(&F, envs, 2, NULL, &raw);
        expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "manifest 1");
        assert_unchanged();
        cr_assert_eq(F.store.installs, 1, "nothing was handed to the installer");
}

Test(refuse, installer_fails_midway) {
        /* two good manifests; the installer fails the second: the first is undone */
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        int64_t section = 0;

        ans = fx_update_second_install_fails(&F, 6, "v6", "other", &raw);
        expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "installer");
        cr_assert_eq(suit_report_reason(ans->suit_reports[0], &section, NULL), SUIT_REPORT_REASON_OPERATION_FAILED);
        cr_assert_eq(section, SUIT_MANIFEST_INSTALL);
        assert_unchanged(); /* v5 is back in the store, the state file has the same bytes */
}

Test(refuse, unauthenticated_rate_limit) {
        static const uint8_t garbage[] = { 0x01, 0x02, 0x03 };
        int answered = 0, refused = 0;

        for (int i = 0; i < AGENT_UNAUTH_ERRORS_PER_MINUTE + 5; i++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0;
                int r = agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(garbage, sizeof(garbage)), &out, &len);
                if (r == 0 && out)
                        answered++;
                else if (r == -EKEYREJECTED)
                        refused++;
        }
        cr_assert_eq(answered, AGENT_UNAUTH_ERRORS_PER_MINUTE);
        cr_assert_eq(refused, 5);
        assert_unchanged();
}

Test(refuse, unexpected_message_type) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL, *ans = NULL;
        _cleanup_free_ uint8_t *msg = NULL, *raw = NULL;
        size_t len;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_SUCCESS), 0);
        msg = tam_sign(F.tam_key, 0, m, &len);
        ans = fx_process(&F, msg, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, "unexpected");
        assert_unchanged();
}
