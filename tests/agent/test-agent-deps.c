/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-deps.c: SUIT dependencies and encrypted payloads in the agent core: the TEEP draft's App. E Ex.3 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-test.h"
#include "fileio.h"
#include "macro.h"
#include "teep-encrypt.h"
#include "teep-component.h"
#include "teep-protocol.h"
#include "teep-suit.h"
#include "vectors.h"

/*
 * The draft's personalization manifest depends on the TC manifest (suit_uri), fetched from
 * https://example.org/<uuid>.suit, which itself fetches the TC binary; its config.json is
 * encrypted (A128CTR, ECDH-ES+A128KW) to the key libteep calls teep_agent_es256. With that
 * key as the device key, the draft's signer as the TC signer and the draft's vendor/class
 * ids, one Update must install the TC first, then the decrypted config.json; anything
 * missing or wrong must leave the store and the state as they were.
 */

#define TA_COMPONENT   "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"
#define CONFIG_COMP    "TEEP-Device/SecureFS/config.json"
#define DEP_URI        "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit"
#define TA_URI         "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta"
#define PLAINTEXT      "{\"name\":\"FOO Bar\",\"secret\":\"0123456789abfcdef0123456789abcd\"}"
#define TA_BINARY      "Hello, Secure World!"

static const uint8_t draft_vendor[16] = { 0xc0, 0xdd, 0xd5, 0xf1, 0x52, 0x43, 0x56, 0x60,
                                          0x87, 0xdb, 0x4f, 0x5b, 0x0a, 0xa2, 0x6c, 0x2f };
static const uint8_t draft_class[16] = { 0xdb, 0x42, 0xf7, 0x09, 0x3d, 0x8c, 0x55, 0xba,
                                         0xa8, 0xc5, 0x26, 0x5f, 0xc5, 0x82, 0x0f, 0x4e };

static Fixture fx;

static void serve(Fixture *f, const char *uri, const uint8_t *data, size_t len) {
        size_t i = f->fetcher.n++;
        cr_assert_lt(i, 8);
        f->fetcher.e[i].uri = strdup(uri);
        f->fetcher.e[i].data = malloc(len);
        memcpy(f->fetcher.e[i].data, data, len);
        f->fetcher.e[i].len = len;
}

/* The draft's world: device key, signer, vendor and class. */
static void setup_draft(void) {
        Vector kek = vector_load("derived/keys/personalization_kek_p256_private.cose.hex");
        Vector signer = vector_load("draft-teep-protocol/keys/suit_signer_p256_public.pem");
        TeepKey *key = NULL;
        TeepError err = {};
        _cleanup_free_ char *pem = NULL;
        char path[512];
        size_t pem_len = 0;
        FILE *fp;

        fx_setup(&fx, TEEP_KEY_P256);
        cr_assert_eq(teep_key_from_any(&key, kek.data, kek.len, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_key_export_private_pem(key, &pem, &pem_len), 0);
        snprintf(path, sizeof(path), "%s/device-key.pem", fx.state_dir);
        fp = fopen(path, "we");
        cr_assert_not_null(fp);
        cr_assert_eq(fwrite(pem, 1, pem_len, fp), pem_len);
        cr_assert_eq(fclose(fp), 0);
        cr_assert_eq(chmod(path, 0600), 0);
        snprintf(path, sizeof(path), "%s/draft-signer.pem", fx.signers);
        fp = fopen(path, "we");
        cr_assert_not_null(fp);
        fwrite(signer.data, 1, signer.len, fp);
        fclose(fp);
        memcpy(fx.cfg.vendor_ids[0], draft_vendor, 16);
        memcpy(fx.cfg.class_ids[0], draft_class, 16);
        fx_restart(&fx);
        teep_key_free(key);
        vector_free(&kek);
        vector_free(&signer);
}

static void teardown(void) {
        fx_teardown(&fx);
}

TestSuite(deps, .init = setup_draft, .fini = teardown, .timeout = 60);

/* The dependency as the draft's image-size (389) says it is served: tag 107 + suit_uri (387). */
static void serve_dependency(Fixture *f, bool tagged) {
        Vector dep = vector_load("draft-teep-protocol/suit_uri.hex");
        uint8_t *buf = malloc(dep.len + 2);
        buf[0] = 0xd8;
        buf[1] = 0x6b;
        memcpy(buf + 2, dep.data, dep.len);
        serve(f, DEP_URI, tagged ? buf : buf + 2, tagged ? dep.len + 2 : dep.len);
        free(buf);
        vector_free(&dep);
}

static TeepMessage *update_personalization(uint8_t **raw) {
        Vector env = vector_load("draft-teep-protocol/suit_personalization.hex");
        TeepBuf b = vector_buf(&env);
        TeepMessage *m = fx_update(&fx, &b, 1, NULL, raw);
        vector_free(&env);
        return m;
}

static const char *walk_needle;
static unsigned walk_hits;
static int walk_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (type == FTW_F && read_full_file(path, 1 << 24, &data, &len) >= 0) {
                if (memmem(data, len, walk_needle, strlen(walk_needle)))
                        walk_hits++;
                free(data);
        }
        return 0;
}

static unsigned files_containing(const char *dir, const char *needle) {
        walk_needle = needle;
        walk_hits = 0;
        cr_assert_eq(nftw(dir, walk_one, 16, FTW_PHYS), 0);
        return walk_hits;
}

Test(deps, draft_personalization_installs_its_dependency_first_and_decrypts) {
        _cleanup_free_ uint8_t *raw = NULL;
        TeepMessage *m;

        serve_dependency(&fx, true);
        serve(&fx, TA_URI, (const uint8_t *)TA_BINARY, strlen(TA_BINARY));
        m = update_personalization(&raw);
        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS, "%s: %.*s", teep_message_type_to_string(m->type), (int)m->err_msg.len,
                     m->err_msg.ptr ? (const char *)m->err_msg.ptr : "");
        /* the dependency first, then the decrypted personalization data */
        cr_assert_eq(fx.store.n, 2);
        cr_expect_str_eq(fx.store.e[0].component, TA_COMPONENT);
        cr_expect_str_eq(fx.store.e[1].component, CONFIG_COMP);
        cr_expect(fx_store_has(&fx, TA_COMPONENT, TA_BINARY));
        cr_expect(fx_store_has(&fx, CONFIG_COMP, PLAINTEXT), "config.json is not the draft's plaintext");
        cr_expect_eq(fx.fetcher.calls, 2, "the dependency and the TC binary, through the fetcher");
        cr_expect_eq(m->n_suit_reports, 2, "one SUIT report per manifest");
        /* the agent keeps only the ciphertext of config.json */
        cr_expect_eq(files_containing(fx.state_dir, "0123456789abfcdef"), 0, "plaintext in the agent's state directory");
        teep_message_free(m);
}

Test(deps, missing_dependency_changes_nothing) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_free_ char *state = fx_state_file(&fx), *after = NULL;
        TeepMessage *m;

        serve(&fx, TA_URI, (const uint8_t *)TA_BINARY, strlen(TA_BINARY));
        m = update_personalization(&raw);
        expect_error(m, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "missing dependency");
        cr_expect_eq(fx.store.n, 0);
        cr_expect_eq(fx.store.installs, 0);
        after = fx_state_file(&fx);
        cr_expect_str_eq(after, state, "the state changed");
        teep_message_free(m);
}

Test(deps, dependency_of_the_wrong_size_is_refused) {
        _cleanup_free_ uint8_t *raw = NULL;
        TeepMessage *m;

        serve_dependency(&fx, false); /* 387 bytes, the manifest says 389 */
        serve(&fx, TA_URI, (const uint8_t *)TA_BINARY, strlen(TA_BINARY));
        m = update_personalization(&raw);
        expect_error(m, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "dependency size mismatch");
        cr_expect_eq(fx.store.installs, 0);
        teep_message_free(m);
}

Test(deps, failing_dependency_fails_the_dependent_all_or_nothing) {
        _cleanup_free_ uint8_t *raw = NULL;
        TeepMessage *m;

        /* the dependency verifies, but its own payload is not there */
        serve_dependency(&fx, true);
        m = update_personalization(&raw);
        expect_error(m, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "dependency");
        cr_expect_eq(fx.store.installs, 0, "nothing installed, the dependency included");
        teep_message_free(m);
}

Test(deps, installer_failure_on_the_dependent_rolls_back_the_dependency) {
        _cleanup_free_ uint8_t *raw = NULL;
        TeepMessage *m;

        serve_dependency(&fx, true);
        serve(&fx, TA_URI, (const uint8_t *)TA_BINARY, strlen(TA_BINARY));
        fx.store.fail_install_at = 2; /* config.json, after the TC went in */
        m = update_personalization(&raw);
        cr_assert_eq(m->type, TEEP_TYPE_ERROR);
        cr_expect_eq(fx.store.n, 0, "the dependency was not rolled back");
        teep_message_free(m);
}

Test(deps, another_device_key_cannot_decrypt) {
        _cleanup_free_ uint8_t *raw = NULL;
        char path[512];
        TeepMessage *m;

        /* a fresh device key: the dependency installs, config.json does not decrypt */
        snprintf(path, sizeof(path), "%s/device-key.pem", fx.state_dir);
        cr_assert_eq(unlink(path), 0);
        fx_restart(&fx);
        serve_dependency(&fx, true);
        serve(&fx, TA_URI, (const uint8_t *)TA_BINARY, strlen(TA_BINARY));
        m = update_personalization(&raw);
        expect_error(m, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "enc-wrong-recipient");
        cr_expect_eq(fx.store.installs, 0);
        teep_message_free(m);
}

/* ---- chains built here: depth bound, commit order ---- */

static void id_from(const char *name, TeepSuitComponentId *ret, uint8_t **owned) {
        size_t len = 0;
        TeepError err = {};
        cr_assert_eq(teep_suit_component_id_from_string(name, owned, &len), 0, "%s", name);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*owned, len), ret, &err), 0, "%s", err.detail);
}

/* c0 (a leaf with an integrated payload) <- c1 <- ... <- c<levels>: c<i> depends on c<i-1>,
 * served at https://deps.test/c<i-1>.suit. Returns the top envelope. */
static uint8_t *make_chain(unsigned levels, size_t *ret_len) {
        uint8_t *prev = NULL, digest[32];
        size_t prev_len = 0;

        for (unsigned i = 0; i <= levels; i++) {
                char name[64], mid[64], uri[64], payload[32], prev_uri[64];
                uint8_t *o1 = NULL, *o2 = NULL, *o3 = NULL, *env = NULL;
                TeepSuitComponentId id, mid_id, prev_mid;
                TeepSuitBuildDependency dep = {};
                TeepSuitBuild b = {};
                size_t env_len = 0;

                snprintf(name, sizeof(name), "teepkit-test/c%u", i);
                snprintf(mid, sizeof(mid), "teepkit-test/c%u.suit", i);
                snprintf(uri, sizeof(uri), "https://deps.test/c%u.suit", i);
                snprintf(payload, sizeof(payload), "level %u", i);
                id_from(name, &id, &o1);
                id_from(mid, &mid_id, &o2);
                teep_sha256(TEEP_BUF(payload, strlen(payload)), digest);
                b.component_id = &id;
                b.manifest_component_id = &mid_id;
                b.sequence_number = 1;
                b.vendor_id = TEEP_BUF(draft_vendor, 16);
                b.class_id = TEEP_BUF(draft_class, 16);
                b.image_digest = TEEP_BUF(digest, 32);
                b.image_size = strlen(payload);
                b.uri = "#tc";
                b.payload = TEEP_BUF(payload, strlen(payload));
                if (prev) {
                        TeepSuitEnvelope *pe = NULL;
                        snprintf(prev_uri, sizeof(prev_uri), "https://deps.test/c%u.suit", i - 1);
                        snprintf(mid, sizeof(mid), "teepkit-test/c%u.suit", i - 1);
                        id_from(mid, &prev_mid, &o3);
                        cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(prev, prev_len), &pe, NULL), 0);
                        dep.prefix = &prev_mid;
                        dep.digest = pe->digest.bytes;
                        dep.size = prev_len;
                        dep.uri = prev_uri;
                        b.dependency = &dep;
                        cr_assert_eq(teep_suit_envelope_build_install(&b, fx.signer_key, 0, &env, &env_len), 0);
                        teep_suit_envelope_free(pe);
                        serve(&fx, prev_uri, prev, prev_len);
                } else
                        cr_assert_eq(teep_suit_envelope_build_install(&b, fx.signer_key, 0, &env, &env_len), 0);
                free(prev);
                prev = env;
                prev_len = env_len;
                free(o1);
                free(o2);
                free(o3);
        }
        *ret_len = prev_len;
        return prev;
}

Test(deps, a_chain_four_deep_installs_deepest_first) {
        _cleanup_free_ uint8_t *raw = NULL, *top = NULL;
        size_t len = 0;
        TeepMessage *m;
        TeepBuf b;

        top = make_chain(4, &len);
        b = TEEP_BUF(top, len);
        m = fx_update(&fx, &b, 1, NULL, &raw);
        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS, "%.*s", (int)m->err_msg.len, m->err_msg.ptr ? (const char *)m->err_msg.ptr : "");
        cr_assert_eq(fx.store.n, 5);
        for (unsigned i = 0; i < 5; i++) {
                char name[64];
                snprintf(name, sizeof(name), "teepkit-test/c%u", i);
                cr_expect_str_eq(fx.store.e[i].component, name, "install %u", i);
        }
        teep_message_free(m);
}

Test(deps, a_chain_five_deep_is_refused_whole) {
        _cleanup_free_ uint8_t *raw = NULL, *top = NULL;
        size_t len = 0;
        TeepMessage *m;
        TeepBuf b;

        top = make_chain(5, &len);
        b = TEEP_BUF(top, len);
        m = fx_update(&fx, &b, 1, NULL, &raw);
        expect_error(m, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "deeper than 4");
        cr_expect_eq(fx.store.installs, 0);
        teep_message_free(m);
}

/* ---- an encrypted TC replaced, then rolled back: restored from the ciphertext copy ---- */

/* uri NULL: the ciphertext is integrated; else the fake fetcher serves it there. */
static uint8_t *make_encrypted_at(const char *name, uint64_t seq, const char *text, const char *uri, size_t *ret_len) {
        Vector kek = vector_load("libteep/keys/teep_agent_es256_public.cose.hex");
        TeepKey *pub = NULL;
        uint8_t *o1 = NULL, *info = NULL, *ct = NULL, *env = NULL, digest[32];
        size_t info_len = 0, ct_len = 0;
        TeepSuitComponentId id;
        TeepSuitBuild b = {};

        cr_assert_eq(teep_key_from_any(&pub, kek.data, kek.len, NULL), 0);
        cr_assert_eq(teep_encrypt(pub, COSE_ALG_A128GCM, NULL, TEEP_BUF(text, strlen(text)), &info, &info_len, &ct, &ct_len), 0);
        id_from(name, &id, &o1);
        teep_sha256(TEEP_BUF(text, strlen(text)), digest);
        b.component_id = &id;
        b.sequence_number = seq;
        b.vendor_id = TEEP_BUF(draft_vendor, 16);
        b.class_id = TEEP_BUF(draft_class, 16);
        b.image_digest = TEEP_BUF(digest, 32);
        b.image_size = strlen(text);
        b.uri = uri ?: "#tc";
        if (!uri)
                b.payload = TEEP_BUF(ct, ct_len);
        b.encryption_info = TEEP_BUF(info, info_len);
        cr_assert_eq(teep_suit_envelope_build_install(&b, fx.signer_key, 0, &env, ret_len), 0);
        free(o1);
        free(info);
        if (uri) {
                size_t i = fx.fetcher.n++;
                cr_assert_lt(i, 8);
                fx.fetcher.e[i].uri = strdup(uri);
                fx.fetcher.e[i].data = ct;
                fx.fetcher.e[i].len = ct_len;
        } else
                free(ct);
        teep_key_free(pub);
        vector_free(&kek);
        return env;
}

static uint8_t *make_encrypted(const char *name, uint64_t seq, const char *text, size_t *ret_len) {
        return make_encrypted_at(name, seq, text, NULL, ret_len);
}

/* The same with the ciphertext behind a URI, fetched as the broker hands it (a sealed memfd):
 * decrypted chunk by chunk into a memfd; the rollback puts v1 back through the installer's undo
 * record (Installer1.Restore), so no copy of it (plaintext or ciphertext) is in the state dir. */
Test(deps, rollback_restores_an_encrypted_uri_tc_fetched_sealed) {
        _cleanup_free_ uint8_t *raw1 = NULL, *raw2 = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
        size_t l1 = 0, l2 = 0, l3 = 0;
        TeepMessage *m;
        TeepBuf envs[2];

        fx.fetcher.seal = true;
        e1 = make_encrypted_at("teepkit-test/enc", 1, "secret v1: do not store", "https://tcs.test/v1.enc", &l1);
        envs[0] = TEEP_BUF(e1, l1);
        m = fx_update(&fx, envs, 1, NULL, &raw1);
        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS, "%.*s", (int)m->err_msg.len, m->err_msg.ptr ? (const char *)m->err_msg.ptr : "");
        teep_message_free(m);
        cr_assert_eq(fx.fetcher.calls, 1);
        cr_assert(fx_store_has(&fx, "teepkit-test/enc", "secret v1: do not store"));
        cr_expect_eq(files_containing(fx.state_dir, "secret v1"), 0, "plaintext in the agent's state directory");

        e2 = make_encrypted_at("teepkit-test/enc", 2, "secret v2: do not store", "https://tcs.test/v2.enc", &l2);
        e3 = make_envelope(fx.signer_key, "teepkit-test/plain", 1, (const uint8_t *)"plain", 5, NULL, draft_vendor, draft_class,
                           &l3);
        envs[0] = TEEP_BUF(e2, l2);
        envs[1] = TEEP_BUF(e3, l3);
        fx.store.fail_install_at = fx.store.installs + 2;
        m = fx_update(&fx, envs, 2, NULL, &raw2);
        cr_assert_eq(m->type, TEEP_TYPE_ERROR);
        cr_expect(fx_store_has(&fx, "teepkit-test/enc", "secret v1: do not store"), "v1 was not restored");
        cr_expect_eq(files_containing(fx.state_dir, "secret v"), 0, "plaintext in the agent's state directory");
        teep_message_free(m);
}

Test(deps, rollback_restores_an_encrypted_tc_through_restore) {
        _cleanup_free_ uint8_t *raw1 = NULL, *raw2 = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
        size_t l1 = 0, l2 = 0, l3 = 0;
        TeepMessage *m;
        TeepBuf envs[2];

        e1 = make_encrypted("teepkit-test/enc", 1, "secret v1: do not store", &l1);
        envs[0] = TEEP_BUF(e1, l1);
        m = fx_update(&fx, envs, 1, NULL, &raw1);
        cr_assert_eq(m->type, TEEP_TYPE_SUCCESS, "%.*s", (int)m->err_msg.len, m->err_msg.ptr ? (const char *)m->err_msg.ptr : "");
        teep_message_free(m);
        cr_assert(fx_store_has(&fx, "teepkit-test/enc", "secret v1: do not store"));
        cr_expect_eq(files_containing(fx.state_dir, "secret v1"), 0, "plaintext in the agent's state directory");

        /* v2 goes in, then the second manifest's install fails: v1 must come back */
        e2 = make_encrypted("teepkit-test/enc", 2, "secret v2: do not store", &l2);
        e3 = make_envelope(fx.signer_key, "teepkit-test/plain", 1, (const uint8_t *)"plain", 5, NULL, draft_vendor, draft_class,
                           &l3);
        envs[0] = TEEP_BUF(e2, l2);
        envs[1] = TEEP_BUF(e3, l3);
        fx.store.fail_install_at = fx.store.installs + 2;
        m = fx_update(&fx, envs, 2, NULL, &raw2);
        cr_assert_eq(m->type, TEEP_TYPE_ERROR);
        cr_expect(fx_store_has(&fx, "teepkit-test/enc", "secret v1: do not store"), "v1 was not restored");
        cr_expect_eq(files_containing(fx.state_dir, "secret v"), 0, "plaintext in the agent's state directory");
        teep_message_free(m);
}
