/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-core.c: the agent core against a TAM built on libteep: the full cycle, negotiation, evidence */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-internal.h"
#include "agent-test.h"
#include "fileio.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-eat.h"
#include "teep-suit.h"
#include "vectors.h"

static Fixture F;

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
}

static void teardown(void) {
        fx_teardown(&F);
}

TestSuite(agent, .init = setup, .fini = teardown);

static bool requested_has(const TeepMessage *m, const char *component) {
        for (size_t i = 0; i < m->n_requested_tc_list; i++) {
                _cleanup_free_ char *s = NULL;
                const TeepSuitComponentId *id = &m->requested_tc_list[i].component_id;
                cr_assert_eq(teep_suit_component_id_to_string(id->segments, id->n_segments, &s), 0);
                if (strcmp(s, component) == 0)
                        return true;
        }
        return false;
}

Test(agent, device_key_private_dir) {
        char path[400];
        struct stat st;

        cr_assert_eq(stat(F.state_dir, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0700);
        snprintf(path, sizeof(path), "%s/device-key.pem", F.state_dir);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        /* the same key after a restart */
        {
                uint8_t kid1[32], kid2[32];
                cr_assert_eq(agent_get_device_key(F.agent, NULL, NULL, NULL, kid1), 0);
                fx_restart(&F);
                cr_assert_eq(agent_get_device_key(F.agent, NULL, NULL, NULL, kid2), 0);
                cr_assert_eq(memcmp(kid1, kid2, 32), 0);
        }
}

Test(agent, full_cycle_integrated) {
        _cleanup_free_ uint8_t *qr = NULL, *raw1 = NULL, *raw2 = NULL, *env = NULL, *up = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL, *ans = NULL;
        _cleanup_free_ char *uri = NULL;
        _cleanup_free_ const char **pending = NULL;
        const uint8_t token[16] = "0123456789abcdef";
        const uint8_t challenge[32] = "challenge-challenge-challenge-!!";
        const char *payload = "Hello, Secure World!";
        const AgentTc *tcs;
        size_t len, elen;
        TeepBuf b;

        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, NULL, &uri), 0);
        cr_assert_str_eq(uri, TEST_TAM_URI);
        cr_assert(F.changed & AGENT_CHANGED_REQUESTS);
        cr_assert_eq(agent_pending(F.agent, &pending), 1);
        cr_assert_str_eq(pending[0], TEST_COMPONENT);

        qr = tam_query_request(F.tam_key, token, 16, challenge, 32, TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS,
                               NULL, 0, &len);
        resp = fx_process(&F, qr, len, &raw1);
        cr_assert_eq(resp->type, TEEP_TYPE_QUERY_RESPONSE);
        cr_assert(resp->has_token && teep_buf_eq(resp->token, TEEP_BUF(token, 16)));
        cr_assert(resp->has_selected_version && resp->selected_version == 0);
        cr_assert(requested_has(resp, TEST_COMPONENT));
        cr_assert(!resp->has_unneeded_manifest_list);
        cr_assert(resp->has_attestation_payload);
        {
                /* the evidence: a COSE_Sign1 by the device key; nonce = challenge; cnf = the key's thumbprint */
                _cleanup_(teep_eat_freep) TeepEat *eat = NULL;
                TeepCoseMessage cose;
                uint8_t kid[32];
                cr_assert_eq(teep_cose_decode(resp->attestation_payload, &cose, NULL), 0);
                cr_assert_eq(teep_cose_verify(&cose, NULL, &F.device_pub, 1, NULL, NULL, NULL), 0);
                cr_assert_eq(teep_eat_decode(cose.payload, &eat, NULL), 0);
                cr_assert_eq(teep_eat_validate_teep_profile(eat, NULL), 0);
                cr_assert(eat->has_nonce && teep_buf_eq(eat->nonce, TEEP_BUF(challenge, 32)));
                cr_assert_eq(teep_key_thumbprint(F.device_pub, kid), 0);
                cr_assert_eq(eat->cnf_type, TEEP_EAT_CNF_KID);
                cr_assert(teep_buf_eq(eat->cnf_kid, TEEP_BUF(kid, 32)));
                cr_assert(eat->has_ueid && eat->ueid.len == 33 && eat->ueid.ptr[0] == 0x01);
                cr_assert_eq(memcmp(eat->ueid.ptr + 1, kid, 32), 0);
                cr_assert(buf_eq_str(eat->hwmodel, "test-model"));
                cr_assert(buf_eq_str(eat->hwversion.version, "1.0"));
                cr_assert_eq(eat->oemid_type, TEEP_EAT_OEMID_IEEE);
                cr_assert(buf_eq_hex(eat->oemid, "894823"));
                cr_assert_geq(eat->n_manifests, 1);
        }

        env = make_envelope(F.signer_key, TEST_COMPONENT, 3, (const uint8_t *)payload, strlen(payload), NULL, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        up = tam_update(F.tam_key, token, 16, &b, 1, NULL, &len);
        F.changed = 0;
        ans = fx_process(&F, up, len, &raw2);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", (int)ans->err_msg.len, (const char *)ans->err_msg.ptr);
        cr_assert(ans->has_token && teep_buf_eq(ans->token, TEEP_BUF(token, 16)));
        cr_assert_eq(ans->n_suit_reports, 1);
        {
                bool nonce = false;
                cr_assert_eq(suit_report_reason(ans->suit_reports[0], NULL, &nonce), -1);
                cr_assert(nonce, "the report's nonce must be the Update's token");
        }
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_str_eq(tcs[0].component, TEST_COMPONENT);
        cr_assert_eq(tcs[0].seq, 3);
        cr_assert_eq(tcs[0].size, strlen(payload));
        cr_assert(F.changed & AGENT_CHANGED_INSTALLED);
        free(pending);
        pending = NULL;
        cr_assert_eq(agent_pending(F.agent, &pending), 0);

        /* installed: a new RequestTA has nothing to do */
        free(uri);
        uri = NULL;
        cr_assert_eq(agent_request_ta(F.agent, "uid:1001", TEST_COMPONENT, NULL, &uri), 0);
        cr_assert_null(uri);

        /* and it survives a restart */
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 3);
}

Test(agent, full_cycle_uri_payload) {
        _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        const char *payload = "a TC fetched by the broker";
        const char *uri = "https://tcs.test/ta.bin";
        size_t elen;
        TeepBuf b;

        F.fetcher.e[0].uri = strdup(uri);
        F.fetcher.e[0].data = (uint8_t *)strdup(payload);
        F.fetcher.e[0].len = strlen(payload);
        F.fetcher.n = 1;
        env = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)payload, strlen(payload), uri, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        ans = fx_update(&F, &b, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", (int)ans->err_msg.len, (const char *)ans->err_msg.ptr);
        cr_assert_eq(F.fetcher.calls, 1);
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
}

static void add_uri(const char *uri, const char *data) {
        size_t i = F.fetcher.n++;
        cr_assert_lt(i, 8);
        F.fetcher.e[i].uri = strdup(uri);
        F.fetcher.e[i].data = (uint8_t *)strdup(data);
        F.fetcher.e[i].len = strlen(data);
}

/* Files in the state directory's payloads/ (where versions before the installer's undo records
 * kept a rollback copy of every image); -1 when the directory does not exist. */
static int count_payload_copies(const char *state_dir) {
        char path[512];
        struct dirent *de;
        DIR *d;
        int n = 0;

        (void)snprintf(path, sizeof(path), "%s/payloads", state_dir);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* The broker's sealed memfd is hashed in place and handed on, and the agent keeps no copy of
 * the image: a later multi-component update that fails midway puts v1 back through the
 * installer's undo record (Installer1.Restore), and the undo records are dropped afterwards. */
Test(agent, sealed_uri_payload_no_copy_and_rollback_by_restore) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *e3 = NULL, *raw = NULL, *raw2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL, *ans2 = NULL;
        const char *v1 = "version one, fetched sealed", *v2 = "version two, fetched sealed";
        unsigned restores, discards;
        size_t l1, l2, l3;
        TeepBuf envs[2];

        F.fetcher.seal = true;
        add_uri("https://tcs.test/v1.bin", v1);
        add_uri("https://tcs.test/v2.bin", v2);
        add_uri("https://tcs.test/other.bin", "other");
        e1 = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)v1, strlen(v1), "https://tcs.test/v1.bin",
                           NULL, NULL, &l1);
        envs[0] = TEEP_BUF(e1, l1);
        ans = fx_update(&F, envs, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", (int)ans->err_msg.len, (const char *)ans->err_msg.ptr);
        cr_assert(fx_store_has(&F, TEST_COMPONENT, v1));
        cr_assert_leq(count_payload_copies(F.state_dir), 0, "no image copy in the state directory");
        cr_assert_eq(F.store.restores, 0);
        cr_assert_eq(F.store.n_undo, 0, "the undo records were discarded after the commit");

        /* v2 goes in, the second component's install fails: v1 comes back through Restore */
        e2 = make_envelope(F.signer_key, TEST_COMPONENT, 2, (const uint8_t *)v2, strlen(v2), "https://tcs.test/v2.bin",
                           NULL, NULL, &l2);
        e3 = make_envelope(F.signer_key, TEST_COMPONENT2, 1, (const uint8_t *)"other", 5, "https://tcs.test/other.bin",
                           NULL, NULL, &l3);
        envs[0] = TEEP_BUF(e2, l2);
        envs[1] = TEEP_BUF(e3, l3);
        F.store.fail_install_at = F.store.installs + 2;
        restores = F.store.restores;
        discards = F.store.discards;
        ans2 = fx_update(&F, envs, 2, NULL, &raw2);
        cr_assert_eq(ans2->type, TEEP_TYPE_ERROR);
        cr_assert(fx_store_has(&F, TEST_COMPONENT, v1), "v1 restored by the installer");
        cr_assert_not(fx_store_has(&F, TEST_COMPONENT, v2));
        cr_assert_not(fx_store_has(&F, TEST_COMPONENT2, "other"));
        cr_assert_eq(F.store.restores - restores, 2, "both ops undone, the failed one included");
        cr_assert_geq(F.store.discards - discards, 2, "old records dropped before, this commit's after");
        cr_assert_eq(F.store.n_undo, 0);
        cr_assert_leq(count_payload_copies(F.state_dir), 0);
}

/* A removal (unneeded manifest) in an update whose install fails later comes back through
 * Restore; a refused install alone changes nothing. */
Test(agent, removal_undone_by_restore) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *raw = NULL, *raw2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL, *ans2 = NULL;
        const char *const unneeded[] = { "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit", NULL };
        const char *v1 = "to be removed, then restored";
        unsigned removes;
        size_t l1, l2;
        TeepBuf env;

        F.fetcher.seal = true;
        add_uri("https://tcs.test/r1.bin", v1);
        add_uri("https://tcs.test/r2.bin", "second");
        e1 = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)v1, strlen(v1), "https://tcs.test/r1.bin",
                           NULL, NULL, &l1);
        env = TEEP_BUF(e1, l1);
        ans = fx_update(&F, &env, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS);
        cr_assert(fx_store_has(&F, TEST_COMPONENT, v1));

        /* remove the first, install a second that fails: the first must be back */
        e2 = make_envelope(F.signer_key, TEST_COMPONENT2, 1, (const uint8_t *)"second", 6, "https://tcs.test/r2.bin",
                           NULL, NULL, &l2);
        env = TEEP_BUF(e2, l2);
        F.store.fail_install_at = F.store.installs + 1;
        removes = F.store.removes;
        ans2 = fx_update(&F, &env, 1, unneeded, &raw2);
        cr_assert_eq(ans2->type, TEEP_TYPE_ERROR);
        cr_assert_eq(F.store.removes - removes, 1, "the removal happened before the install failed");
        cr_assert(fx_store_has(&F, TEST_COMPONENT, v1), "the removed TC was restored");
        cr_assert_eq(F.store.n, 1);
        cr_assert_eq(F.store.n_undo, 0);
        cr_assert_leq(count_payload_copies(F.state_dir), 0);
}

/* A sealed payload of the right size but other bytes: the streamed digest refuses it, nothing
 * is installed. */
Test(agent, sealed_uri_payload_digest_mismatch) {
        _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        const char *signed_payload = "short", *served = "shoRT";
        size_t elen;
        TeepBuf b;

        F.fetcher.seal = true;
        add_uri("https://tcs.test/x.bin", served);
        env = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)signed_payload, strlen(signed_payload),
                            "https://tcs.test/x.bin", NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        ans = fx_update(&F, &b, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_ERROR);
        cr_assert_eq(F.store.installs, 0);
        cr_assert_not(fx_store_has(&F, TEST_COMPONENT, served));
}

Test(agent, query_response_lists) {
        _cleanup_free_ uint8_t *qr = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        _cleanup_free_ char *uri = NULL;
        uint8_t token[16] = "tokentokentoken!";
        size_t len;

        fx_install(&F, TEST_COMPONENT, 2, "first TC");
        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT2, NULL, &uri), 0);
        cr_assert_str_eq(uri, TEST_TAM_URI);
        qr = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        resp = fx_process(&F, qr, len, &raw);
        cr_assert_eq(resp->type, TEEP_TYPE_QUERY_RESPONSE);
        cr_assert(!resp->has_attestation_payload, "attestation was not requested");
        cr_assert(resp->has_tc_list);
        cr_assert_eq(resp->n_tc_list, 1);
        {
                _cleanup_free_ char *s = NULL;
                int64_t alg;
                TeepBuf digest;
                uint8_t want[32];
                const TeepSuitComponentId *id = &resp->tc_list[0].component_id;
                cr_assert_eq(teep_suit_component_id_to_string(id->segments, id->n_segments, &s), 0);
                cr_assert_str_eq(s, TEST_COMPONENT);
                cr_assert_eq(teep_claims_get_image_digest(&resp->tc_list[0], &alg, &digest), 0);
                cr_assert_eq(alg, COSE_ALG_SHA256);
                teep_sha256(TEEP_BUF("first TC", 8), want);
                cr_assert(teep_buf_eq(digest, TEEP_BUF(want, 32)));
        }
        cr_assert(requested_has(resp, TEST_COMPONENT2));
        cr_assert(!requested_has(resp, TEST_COMPONENT));
}

Test(agent, negotiation_errors) {
        const uint8_t token[16] = "negotiate-token!";
        size_t len;

        /* no common version → 4 with our versions */
        {
                _cleanup_(teep_message_freep) TeepMessage *m = NULL, *ans = NULL;
                _cleanup_free_ uint8_t *q = NULL, *raw = NULL;
                static const int64_t profile[] = { -16, -9, -29, -65534 };
                cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
                m->has_token = true;
                m->token = TEEP_BUF(token, 16);
                cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 7), 0);
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
                cr_assert_eq(teep_message_add_suit_cose_profile(m, profile, 4), 0);
                m->data_item_requested = TEEP_DATA_TRUSTED_COMPONENTS;
                q = tam_sign(F.tam_key, 0, m, &len);
                ans = fx_process(&F, q, len, &raw);
                expect_error(ans, TEEP_ERR_UNSUPPORTED_MSG_VERSION, NULL);
                cr_assert(ans->has_versions && ans->n_versions == 1 && ans->versions[0] == 0);
                cr_assert(ans->has_token && teep_buf_eq(ans->token, TEEP_BUF(token, 16)));
        }
        /* only Ed25519 offered, the device key is P-256 → 5 with our suites */
        {
                _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
                _cleanup_free_ uint8_t *q = NULL, *raw = NULL;
                const int64_t suites[] = { COSE_ALG_ED25519 };
                q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, suites, 1, &len);
                ans = fx_process(&F, q, len, &raw);
                expect_error(ans, TEEP_ERR_UNSUPPORTED_CIPHER_SUITES, NULL);
                cr_assert(ans->has_supported_cipher_suites && ans->n_supported_cipher_suites == 1);
                cr_assert_eq(ans->supported_cipher_suites[0].ops[0].alg, COSE_ALG_ESP256);
        }
        /* timestamps only → 3 with [nonce] */
        {
                _cleanup_(teep_message_freep) TeepMessage *m = NULL, *ans = NULL;
                _cleanup_free_ uint8_t *q = NULL, *raw = NULL;
                static const int64_t profile[] = { -16, -9, -29, -65534 };
                const uint8_t challenge[8] = "12345678";
                cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
                m->has_challenge = true;
                m->challenge = TEEP_BUF(challenge, 8);
                cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS, TEEP_FRESHNESS_TIMESTAMP), 0);
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
                cr_assert_eq(teep_message_add_suit_cose_profile(m, profile, 4), 0);
                m->data_item_requested = TEEP_DATA_ATTESTATION;
                q = tam_sign(F.tam_key, 0, m, &len);
                ans = fx_process(&F, q, len, &raw);
                expect_error(ans, TEEP_ERR_UNSUPPORTED_FRESHNESS_MECHANISMS, NULL);
                cr_assert(ans->has_supported_freshness_mechanisms && ans->supported_freshness_mechanisms[0] == 0);
        }
}

static int64_t reply_alg(Fixture *f, const uint8_t *msg, size_t len) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_len = 0;
        TeepCoseMessage cose;

        cr_assert_eq(agent_process_message(f->agent, TEST_TAM_URI, TEEP_BUF(msg, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        return cose.body.alg;
}

Test(agent, legacy_suite_and_es256_signature) {
        _cleanup_free_ uint8_t *q = NULL;
        const uint8_t token[16] = "legacy-legacy-!!";
        const int64_t suites[] = { COSE_ALG_ES256 };
        size_t len;

        /* the TAM offers only the legacy id: we answer with it */
        q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, suites, 1, &len);
        cr_assert_eq(reply_alg(&F, q, len), COSE_ALG_ES256);
        free(q);
        q = NULL;
        /* both offered, current first: the current one */
        q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(reply_alg(&F, q, len), COSE_ALG_ESP256);
        free(q);
        q = NULL;
        /* a QueryRequest signed with ES256 (-7), no kid: accepted */
        {
                _cleanup_(teep_message_freep) TeepMessage *m = NULL, *ans = NULL;
                _cleanup_free_ uint8_t *payload = NULL, *signed_msg = NULL, *raw = NULL;
                static const int64_t old_profile[] = { -16, -7 }; /* the older two-element profile array */
                const TeepBuf empty = TEEP_BUF_NULL;
                size_t plen, slen;

                cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
                m->has_token = true;
                m->token = TEEP_BUF(token, 16);
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ES256), 0);
                cr_assert_eq(teep_message_add_suit_cose_profile(m, old_profile, 2), 0);
                m->data_item_requested = TEEP_DATA_TRUSTED_COMPONENTS;
                cr_assert_eq(teep_message_encode(m, &payload, &plen), 0);
                cr_assert_eq(teep_cose_sign1(F.tam_key, COSE_ALG_ES256, &empty, TEEP_BUF(payload, plen), false, &signed_msg,
                                             &slen),
                             0);
                ans = fx_process(&F, signed_msg, slen, &raw);
                cr_assert_eq(ans->type, TEEP_TYPE_QUERY_RESPONSE);
        }
}

Test(agent, ed25519_device_key) {
        _cleanup_free_ uint8_t *q = NULL;
        const uint8_t token[16] = "ed25519-ed25519!";
        size_t len;

        fx_teardown(&F);
        fx_setup(&F, TEEP_KEY_ED25519);
        cr_assert_eq(teep_key_type(F.device_pub), TEEP_KEY_ED25519);
        q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(reply_alg(&F, q, len), COSE_ALG_ED25519);
        fx_install(&F, TEST_COMPONENT, 1, "ed25519 device");
        cr_assert(fx_store_has(&F, TEST_COMPONENT, "ed25519 device"));
}

Test(agent, idempotent_reapply) {
        _cleanup_free_ char *before = NULL, *after = NULL;
        unsigned installs;

        fx_install(&F, TEST_COMPONENT, 4, "same");
        before = fx_state_file(&F);
        installs = F.store.installs;
        fx_install(&F, TEST_COMPONENT, 4, "same");
        after = fx_state_file(&F);
        cr_assert_str_eq(before, after);
        cr_assert_eq(F.store.installs, installs, "an equal re-apply must not touch the store");
        /* a higher sequence number updates */
        fx_install(&F, TEST_COMPONENT, 5, "newer");
        cr_assert(fx_store_has(&F, TEST_COMPONENT, "newer"));
}

Test(agent, requests_and_unneeded) {
        _cleanup_free_ char *uri = NULL;
        const AgentRequest *reqs;

        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, NULL, &uri), 0);
        free(uri);
        cr_assert_eq(agent_request_ta(F.agent, "package:foo", TEST_COMPONENT, NULL, &uri), 0);
        free(uri);
        uri = NULL;
        cr_assert_eq(agent_requests(F.agent, &reqs), 2);
        fx_install(&F, TEST_COMPONENT, 1, "shared TC");

        F.deltas[0] = '\0';
        cr_assert_eq(agent_unrequest_ta(F.agent, "uid:2000", TEST_COMPONENT, &uri), -ENOENT);
        cr_assert_str_empty(F.deltas, "a refused unrequest changes nothing");
        cr_assert_eq(agent_unrequest_ta(F.agent, "uid:1000", TEST_COMPONENT, &uri), 0);
        cr_assert_null(uri, "another requester still needs it");
        cr_assert_eq(agent_unrequest_ta(F.agent, "package:foo", TEST_COMPONENT, &uri), 0);
        cr_assert_str_eq(uri, TEST_TAM_URI);
        cr_assert_eq(agent_requests(F.agent, &reqs), 0);
        cr_assert_str_eq(F.deltas, "-" TEST_COMPONENT " uid:1000\n-" TEST_COMPONENT " package:foo\n");

        /* the TAM learns it in the QueryResponse, by manifest id, and removes it with an Update */
        {
                _cleanup_free_ uint8_t *qr = NULL, *raw = NULL, *up = NULL, *raw2 = NULL;
                _cleanup_(teep_message_freep) TeepMessage *resp = NULL, *ans = NULL;
                _cleanup_free_ char *name = NULL;
                const char *const unneeded[] = { "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit", NULL };
                const uint8_t token[16] = "unneeded-token!!";
                const AgentTc *tcs;
                size_t len;

                qr = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
                resp = fx_process(&F, qr, len, &raw);
                cr_assert(resp->has_unneeded_manifest_list && resp->n_unneeded_manifest_list == 1);
                cr_assert_eq(teep_suit_component_id_to_string(resp->unneeded_manifest_list[0].segments,
                                                              resp->unneeded_manifest_list[0].n_segments, &name),
                             0);
                cr_assert_str_eq(name, unneeded[0]);
                up = tam_update(F.tam_key, token, 16, NULL, 0, unneeded, &len);
                ans = fx_process(&F, up, len, &raw2);
                cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS);
                cr_assert(!fx_store_has(&F, TEST_COMPONENT, "shared TC"));
                cr_assert_eq(F.store.n, 0);
                cr_assert_eq(agent_installed(F.agent, &tcs), 0);
        }
        /* re-installing below the removed TC's sequence number is still a rollback */
        {
                _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
                _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
                size_t elen;
                TeepBuf b;
                env = make_envelope(F.signer_key, TEST_COMPONENT, 0, (const uint8_t *)"old", 3, NULL, NULL, NULL, &elen);
                b = TEEP_BUF(env, elen);
                ans = fx_update(&F, &b, 1, NULL, &raw);
                expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "rollback");
        }
}

Test(agent, unlink_manifest) {
        _cleanup_free_ uint8_t *id_raw = NULL, *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        TeepSuitComponentId id;
        TeepSuitBuild b = {};
        size_t id_len, elen;
        TeepBuf eb;

        fx_install(&F, TEST_COMPONENT, 1, "to be deleted");
        cr_assert_eq(teep_suit_component_id_from_string(TEST_COMPONENT, &id_raw, &id_len), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(id_raw, id_len), &id, NULL), 0);
        b.component_id = &id;
        b.sequence_number = 2;
        b.vendor_id = TEEP_BUF(test_vendor_id, 16);
        b.class_id = TEEP_BUF(test_class_id, 16);
        cr_assert_eq(teep_suit_envelope_build_unlink(&b, F.signer_key, 0, &env, &elen), 0);
        eb = TEEP_BUF(env, elen);
        ans = fx_update(&F, &eb, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", (int)ans->err_msg.len, (const char *)ans->err_msg.ptr);
        cr_assert_eq(F.store.n, 0);
}

Test(agent, policy_check_rounds) {
        _cleanup_free_ char *u1 = NULL, *u2 = NULL, *u3 = NULL;

        cr_assert_eq(agent_request_policy_check(F.agent, &u1), 0);
        cr_assert_str_eq(u1, TEST_TAM_URI);
        cr_assert_eq(agent_request_policy_check(F.agent, &u2), 0);
        cr_assert_null(u2, "one TAM configured: the round is over");
        cr_assert_eq(agent_request_policy_check(F.agent, &u3), 0);
        cr_assert_str_eq(u3, TEST_TAM_URI);
}

Test(agent, vector_libteep_query_request) {
        /* libteep's QueryRequest (alg -7, suites [[18,-7]],[[18,-8]]) with libteep's TAM key */
        Vector qr = vector_load("libteep/query_request_cose.hex");
        Vector tam = vector_load("libteep/keys/tam_prime256v1_pub.pem");
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL, *orig = NULL;
        TeepCoseMessage cose, in;
        char path[400];
        size_t out_len = 0;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/libteep-tam.pem", F.anchors);
        fp = fopen(path, "we");
        cr_assert(fp);
        fwrite(tam.data, 1, tam.len, fp);
        fclose(fp);
        fx_restart(&F);

        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, vector_buf(&qr), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_cose_verify(&cose, NULL, &F.device_pub, 1, NULL, NULL, NULL), 0);
        cr_assert_eq(cose.body.alg, COSE_ALG_ES256, "only the legacy suite was offered");
        cr_assert_eq(teep_message_decode(cose.payload, &resp, NULL), 0);
        cr_assert_eq(resp->type, TEEP_TYPE_QUERY_RESPONSE);
        cr_assert_eq(teep_cose_decode(vector_buf(&qr), &in, NULL), 0);
        cr_assert_eq(teep_message_decode(in.payload, &orig, NULL), 0);
        cr_assert(resp->has_token && teep_buf_eq(resp->token, orig->token));
        cr_assert(resp->has_attestation_payload, "the vector asks for attestation");
        vector_free(&qr);
        vector_free(&tam);
}

Test(agent, vector_cose_sign_query_request) {
        /* the derived two-signer COSE_Sign QueryRequest: we trust only its P-256 TAM key */
        Vector qr = vector_load("derived/query_request_sign_esp256_ed25519.hex");
        Vector tam = vector_load("libteep/keys/tam_prime256v1_pub.pem");
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        TeepCoseMessage cose;
        char path[400];
        size_t out_len = 0;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/tam.pem", F.anchors);
        fp = fopen(path, "we");
        cr_assert(fp);
        fwrite(tam.data, 1, tam.len, fp);
        fclose(fp);
        fx_restart(&F);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, vector_buf(&qr), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(cose.body.alg, COSE_ALG_ESP256);
        cr_assert_eq(teep_message_decode(cose.payload, &resp, NULL), 0);
        cr_assert_eq(resp->type, TEEP_TYPE_QUERY_RESPONSE);
        cr_assert(buf_eq_hex(resp->token, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"));
        vector_free(&qr);
        vector_free(&tam);
}

Test(agent, state_file_round_trip) {
        _cleanup_free_ char *before = NULL, *after = NULL, *uri = NULL;

        fx_install(&F, TEST_COMPONENT, 7, "persisted");
        cr_assert_eq(agent_request_ta(F.agent, "unit:odd name%.service", TEST_COMPONENT2, NULL, &uri), -EINVAL,
                     "requesters with spaces are refused");
        cr_assert_eq(agent_request_ta(F.agent, "unit:odd%name.service", TEST_COMPONENT2, NULL, &uri), 0);
        before = fx_state_file(&F);
        cr_assert(strstr(before, "unit:odd%25name.service"), "%%-escaped in the file");
        {
                AgentState st = {};
                size_t len;
                cr_assert_eq(agent_state_parse(before, strlen(before), &st), 0);
                cr_assert_eq(st.n_tcs, 1);
                cr_assert_str_eq(st.reqs[0].requester, "unit:odd%name.service");
                cr_assert_eq(agent_state_serialize(&st, &after, &len), 0);
                agent_state_done(&st);
        }
        cr_assert_str_eq(before, after);
        /* a corrupt state file is never guessed around */
        {
                char path[400];
                FILE *fp;
                Agent *a = NULL;
                snprintf(path, sizeof(path), "%s/state", F.state_dir);
                fp = fopen(path, "we");
                fputs("teep-agentd-state 1\ntc broken\n", fp);
                fclose(fp);
                cr_assert_eq(agent_new(&a, &F.cfg, NULL, NULL, NULL, NULL), 0);
                cr_assert_lt(agent_start(a), 0);
                agent_free(a);
        }
}

/* A leftover of an older version: one file in payloads/. */
static int write_leftover(const char *path) {
        FILE *f = fopen(path, "w");
        if (!f)
                return -1;
        fputs("x", f);
        return fclose(f);
}

/* Older versions kept image copies in payloads/; the first commit after a start removes them. */
Test(agent, old_payload_copies_removed_once_per_start) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *e3 = NULL, *raw1 = NULL, *raw2 = NULL, *raw3 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *a1 = NULL, *a2 = NULL, *a3 = NULL;
        char dir[512], file[600];
        size_t l1, l2, l3;
        TeepBuf b;

        (void)snprintf(dir, sizeof(dir), "%s/payloads", F.state_dir);
        (void)snprintf(file, sizeof(file), "%s/old.enc", dir);
        cr_assert_eq(mkdir(dir, 0700), 0);
        cr_assert_eq(write_leftover(file), 0);
        e1 = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)"v1", 2, NULL, NULL, NULL, &l1);
        b = TEEP_BUF(e1, l1);
        a1 = fx_update(&F, &b, 1, NULL, &raw1);
        cr_assert_eq(a1->type, TEEP_TYPE_SUCCESS);
        cr_assert_eq(count_payload_copies(F.state_dir), -1, "emptied and removed at the first commit");

        /* a copy appearing later is not looked at again until the next start */
        cr_assert_eq(mkdir(dir, 0700), 0);
        cr_assert_eq(write_leftover(file), 0);
        e2 = make_envelope(F.signer_key, TEST_COMPONENT, 2, (const uint8_t *)"v2", 2, NULL, NULL, NULL, &l2);
        b = TEEP_BUF(e2, l2);
        a2 = fx_update(&F, &b, 1, NULL, &raw2);
        cr_assert_eq(a2->type, TEEP_TYPE_SUCCESS);
        cr_assert_eq(count_payload_copies(F.state_dir), 1, "not at every commit");

        fx_restart(&F);
        e3 = make_envelope(F.signer_key, TEST_COMPONENT, 3, (const uint8_t *)"v3", 2, NULL, NULL, NULL, &l3);
        b = TEEP_BUF(e3, l3);
        a3 = fx_update(&F, &b, 1, NULL, &raw3);
        cr_assert_eq(a3->type, TEEP_TYPE_SUCCESS);
        cr_assert_eq(count_payload_copies(F.state_dir), -1, "again at the first commit after a restart");
}

/* agent_state_copy() copies each list as it is (no lookups): the copy says the same, byte for
 * byte, with every kind of entry present, owns its own strings, and stays usable. */
Test(agent, state_copy_is_the_same_state) {
        static const char text[] = "teep-agentd-state 1\n"
                                   "tc a/one 3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 10 "
                                   "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd - http://127.0.0.1:1/tam\n"
                                   "tc b/two 1 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 20 "
                                   "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd id-2 -\n"
                                   "req a/one uid:1000\n"
                                   "req a/one package:foo\n"
                                   "unneeded b/two\n"
                                   "seen a/one 3\n"
                                   "seen b/two 1\n"
                                   "seen c/gone 9\n"
                                   "journal install c/gone 9 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc 30 "
                                   "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd - -\n";
        AgentState st = {}, copy = {};
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        size_t la, lb, lc;

        cr_assert_eq(agent_state_parse(text, strlen(text), &st), 0, "the fixture parses");
        cr_assert(st.n_tcs == 2 && st.n_reqs == 2 && st.n_unneeded == 1 && st.n_seen == 3 && st.n_journal == 1);
        cr_assert_eq(agent_state_serialize(&st, &a, &la), 0);
        cr_assert_eq(agent_state_copy(&copy, &st), 0);
        cr_assert_eq(agent_state_serialize(&copy, &b, &lb), 0);
        cr_assert_eq(la, lb);
        cr_assert_str_eq(a, b, "the copy serializes to the same bytes");
        cr_assert_neq(copy.tcs[0].component, st.tcs[0].component, "own strings, not shared ones");
        agent_state_done(&st); /* the copy outlives its source */
        cr_assert_eq(agent_state_note_seen(&copy, "a/one", 5), 0);
        cr_assert_eq(agent_state_note_seen(&copy, "d/new", 1), 0);
        cr_assert_eq(copy.n_seen, 4, "an existing floor is raised, a new one added");
        cr_assert_geq(agent_state_add_request(&copy, "uid:2", "b/two"), 0);
        cr_assert_eq(agent_state_serialize(&copy, &c, &lc), 0);
        cr_assert(strstr(c, "seen a/one 5\n") && strstr(c, "seen d/new 1\n") && strstr(c, "req b/two uid:2\n"), "%s", c);
        agent_state_done(&copy);
}

/* After a commit, manifests/ holds exactly the copies the installed TCs name: an unreferenced
 * copy, a name in upper-case hex and anything else are removed (collect_garbage(), which looks
 * names up in the sorted hashes). */
static unsigned count_files(const char *dir, unsigned *ret_lower_hex_suit) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0, good = 0;

        cr_assert_not_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        n++;
                        good += strlen(de->d_name) == 69 && strspn(de->d_name, "0123456789abcdef") == 64 &&
                                strcmp(de->d_name + 64, ".suit") == 0;
                }
        closedir(d);
        *ret_lower_hex_suit = good;
        return n;
}

/* An Update that installs payload as version seq of TEST_COMPONENT, and succeeds. */
static void update_first_tc(uint64_t seq, const char *payload) {
        _cleanup_free_ uint8_t *e = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t len;
        TeepBuf b;

        e = make_envelope(F.signer_key, TEST_COMPONENT, seq, (const uint8_t *)payload, strlen(payload), NULL, NULL,
                          NULL, &len);
        b = TEEP_BUF(e, len);
        ans = fx_update(&F, &b, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS);
}

Test(agent, manifest_copies_the_state_does_not_name_are_removed) {
        char dir[512], path[1100], upper[300];
        unsigned good = 0;
        FILE *f;

        fx_install(&F, TEST_COMPONENT, 1, "one");
        fx_install(&F, TEST_COMPONENT2, 1, "two");
        (void)snprintf(dir, sizeof(dir), "%s/manifests", F.state_dir);
        cr_assert_eq(count_files(dir, &good), 2);
        cr_assert_eq(good, 2);
        {
                /* the upper-case twin of a copy in use */
                DIR *d = opendir(dir);
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                break;
                cr_assert_not_null(de);
                snprintf(upper, sizeof(upper), "%s", de->d_name);
                for (char *p = upper; *p && *p != '.'; p++)
                        *p = (char)toupper((unsigned char)*p);
                closedir(d);
        }
        const char *strays[] = { upper, "0000000000000000000000000000000000000000000000000000000000000000.suit",
                                 "junk", NULL };
        for (size_t i = 0; strays[i]; i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, strays[i]);
                f = fopen(path, "w");
                cr_assert_not_null(f);
                fputs("x", f);
                fclose(f);
        }
        cr_assert_eq(count_files(dir, &good), 5);

        /* the first commit after a start sweeps the directory (what a crash left): here a newer
         * version of the first TC (its old copy goes too) */
        fx_restart(&F);
        update_first_tc(2, "one, v2");
        cr_assert_eq(count_files(dir, &good), 2, "only the two copies in use are left");
        cr_assert_eq(good, 2);

        /* later commits drop only the copies their own ops stopped naming, without reading the
         * directory: the replaced version's goes, a stray made since stays until the next start */
        snprintf(path, sizeof(path), "%s/junk", dir);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fclose(f);
        update_first_tc(3, "one, v3");
        cr_assert_eq(count_files(dir, &good), 3, "the v2 copy stayed, or the stray went");
        cr_assert_eq(good, 2);
}

/* What the QueryResponse asks for and PendingRequests lists: each component requested and not
 * installed, once, in the order of its first request (agent_state_wanted(), O(n) with sets). */
Test(agent, wanted_is_each_missing_component_once_in_request_order) {
        static const char text[] = "teep-agentd-state 1\n"
                                   "tc a/one 3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 10 "
                                   "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd - -\n"
                                   "req c/three uid:1\n"
                                   "req a/one uid:1\n"
                                   "req b/two uid:1\n"
                                   "req c/three uid:2\n"
                                   "req b/two package:foo\n"
                                   "req a/one uid:2\n";
        AgentState st = {};
        _cleanup_free_ const char **wanted = NULL;
        size_t n = 99;

        cr_assert_eq(agent_state_parse(text, strlen(text), &st), 0);
        cr_assert_eq(agent_state_wanted(&st, &wanted, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(wanted[0], "c/three");
        cr_assert_str_eq(wanted[1], "b/two");
        cr_assert_null(wanted[2]);
        free(wanted);
        wanted = NULL;

        /* nothing requested: an empty list, not NULL */
        agent_state_done(&st);
        cr_assert_eq(agent_state_wanted(&st, &wanted, &n), 0);
        cr_assert_eq(n, 0);
        cr_assert_not_null(wanted);
        cr_assert_null(wanted[0]);
}

/* Fields are %-escaped byte by byte (space, controls, bytes ≥ 0x7f, '%'), whole runs of plain
 * characters copied at once: escapes at the start, the middle and the end round-trip. */
Test(agent, state_fields_escape_and_round_trip) {
        static const char text[] = "teep-agentd-state 1\n"
                                   "req %20a/one%0a%ff uid:1%25\n"
                                   "req b/two %25%25x%7f\n"
                                   "unneeded %2d\n";
        AgentState st = {};
        _cleanup_free_ char *out = NULL;
        size_t len;

        cr_assert_eq(agent_state_parse(text, strlen(text), &st), 0);
        cr_assert_str_eq(st.reqs[0].component, " a/one\n\xff");
        cr_assert_str_eq(st.reqs[0].requester, "uid:1%");
        cr_assert_str_eq(st.reqs[1].requester, "%%x\x7f");
        cr_assert_str_eq(st.unneeded[0], "-");
        cr_assert_eq(agent_state_serialize(&st, &out, &len), 0);
        cr_assert_str_eq(out, text);
        agent_state_done(&st);
}

/* commit() borrows the state's requests for the state it builds (no copy of them per Update):
 * after an Update that commits, one undone by the installer, and a restart, every request is
 * there, the same, in the same order. */
static void assert_requests(const char *const *want, size_t n) {
        const AgentRequest *reqs;

        cr_assert_eq(agent_requests(F.agent, &reqs), n);
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(reqs[i].requester, want[2 * i]);
                cr_assert_str_eq(reqs[i].component, want[2 * i + 1]);
        }
}

Test(agent, requests_outlive_commits_and_undos) {
        static const char *const want[] = { "uid:1000", TEST_COMPONENT2, "uid:1001", TEST_COMPONENT2,
                                            "package:foo", "other/component" };
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *uri = NULL;
                cr_assert_eq(agent_request_ta(F.agent, want[2 * i], want[2 * i + 1], NULL, &uri), 0);
        }
        assert_requests(want, 3);

        update_first_tc(1, "one"); /* commits */
        assert_requests(want, 3);

        ans = fx_update_second_install_fails(&F, 2, "two", "x", &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_ERROR, "the installer's failure did not undo the Update");
        assert_requests(want, 3);

        fx_restart(&F);
        assert_requests(want, 3);
}
