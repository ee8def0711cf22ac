/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-suit.c: SUIT envelopes and manifests against the draft and SUIT-spec vectors; component names */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-cose.h"
#include "teep-protocol.h"
#include "teep-suit.h"
#include "vectors.h"

#define SIGNER_PEM     "draft-teep-protocol/keys/suit_signer_p256_public.pem"
#define SIGNER_COSE    "derived/keys/suit_signer_p256_public.cose.hex"
#define SIGNER_PRIVATE "derived/keys/suit_signer_p256_private.cose.hex"
#define WRONG_KEY      "libteep/keys/tam_es256_public.cose.hex"

#define TC_UUID   "8d82573a926d4754935332dc29997f74"
#define VENDOR_ID "c0ddd5f15243566087db4f5b0aa26c2f"
#define CLASS_ID  "db42f7093d8c55baa8c5265fc5820f4e"
#define TC_DIGEST "8cf71ac86af31be184ec7a05a411a8c3a14fd9b77a30d046397481469468ece8"
#define TC_URI    "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta"

/* ---- helpers ---- */

static TeepKey *load_key(const char *relpath) {
        Vector v = vector_load(relpath);
        TeepKey *key = NULL;
        TeepError err = {};
        int r = teep_key_from_any(&key, v.data, v.len, &err);
        cr_assert_eq(r, 0, "%s: %s", relpath, err.detail);
        vector_free(&v);
        return key;
}

static TeepSuitEnvelope *decode_envelope(TeepBuf in) {
        TeepSuitEnvelope *env = NULL;
        TeepError err = {};
        int r = teep_suit_envelope_decode(in, &env, &err);
        cr_assert_eq(r, 0, "envelope decode: %d %s (%s)", r, err.detail, teep_reason_to_string(err.reason));
        return env;
}

/* Decode, verify with key, decode the manifest; all must succeed. */
static TeepSuitManifest *open_envelope(TeepBuf in, TeepKey *key, TeepSuitEnvelope **ret_env) {
        TeepSuitEnvelope *env = decode_envelope(in);
        TeepSuitManifest *m = NULL;
        TeepError err = {};
        size_t idx = 99;
        int r;

        r = teep_suit_envelope_verify(env, &key, 1, &idx, &err);
        cr_assert_eq(r, 0, "verify: %d %s (%s)", r, err.detail, teep_reason_to_string(err.reason));
        cr_assert_eq(idx, 0);
        cr_assert(env->authenticated);
        r = teep_suit_manifest_decode(env, 0, &m, &err);
        cr_assert_eq(r, 0, "manifest: %d %s (%s)", r, err.detail, teep_reason_to_string(err.reason));
        *ret_env = env;
        return m;
}

/* The component id a textual name stands for, as views into *owned. */
static TeepSuitComponentId id_from_string(const char *s, uint8_t **owned) {
        TeepSuitComponentId id;
        size_t len;
        cr_assert_eq(teep_suit_component_id_from_string(s, owned, &len), 0, "%s", s);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*owned, len), &id, NULL), 0);
        return id;
}

static void assert_id_name(const TeepSuitComponentId *id, const char *want) {
        _cleanup_free_ char *s = NULL;
        cr_assert_eq(teep_suit_component_id_to_string(id->segments, id->n_segments, &s), 0);
        cr_assert_str_eq(s, want);
}

/* Pull the first manifest-list envelope out of an unsigned Update [3, {.., 10: [bstr, ..]}]. */
static TeepBuf update_first_envelope(TeepBuf update) {
        TeepCborReader r;
        size_t n, pairs;
        uint64_t type;

        cr_assert_eq(teep_cbor_check(update, NULL, NULL), 0);
        teep_cbor_reader_init(&r, update);
        cr_assert_eq(teep_cbor_read_array(&r, &n, NULL), 0);
        cr_assert_eq(teep_cbor_read_uint(&r, &type, NULL), 0);
        cr_assert_eq(type, TEEP_TYPE_UPDATE);
        cr_assert_eq(teep_cbor_read_map(&r, &pairs, NULL), 0);
        for (size_t i = 0; i < pairs; i++) {
                uint64_t label;
                cr_assert_eq(teep_cbor_read_uint(&r, &label, NULL), 0);
                if (label == TEEP_LABEL_MANIFEST_LIST) {
                        TeepBuf env;
                        cr_assert_eq(teep_cbor_read_array(&r, &n, NULL), 0);
                        cr_assert_geq(n, 1);
                        cr_assert_eq(teep_cbor_read_bytes(&r, &env, NULL), 0);
                        return env;
                }
                cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
        }
        cr_assert_fail("no manifest-list");
        return TEEP_BUF_NULL;
}

static const TeepSuitParameters *first_params(const TeepSuitSequence *seq) {
        for (size_t i = 0; i < seq->n_commands; i++)
                if (seq->commands[i].params)
                        return seq->commands[i].params;
        cr_assert_fail("sequence has no parameters");
        return NULL;
}

/* Copy a view of text into a NUL-terminated buffer of the test. */
static const char *text_dup(TeepBuf t, char *buf, size_t size) {
        cr_assert_lt(t.len, size);
        memcpy(buf, t.ptr, t.len);
        buf[t.len] = '\0';
        return buf;
}

/* The checks shared by the App. E Ex.1 and Ex.2 manifests. */
static void assert_app_e_tc_manifest(const TeepSuitManifest *m, const char *uri) {
        const TeepSuitParameters *p;

        cr_assert_eq(m->version, 1);
        cr_assert_eq(m->sequence_number, 3);
        cr_assert_eq(m->n_components, 1);
        assert_id_name(&m->components[0], "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta");
        cr_assert(buf_eq_hex(m->components[0].segments[2], TC_UUID));
        cr_assert(m->has_manifest_component_id);
        assert_id_name(&m->manifest_component_id,
                       "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit");

        /* shared-sequence: override {vendor, class, digest, size}, vendor 15, class 15 */
        cr_assert(m->shared_sequence.present);
        cr_assert_eq(m->shared_sequence.n_commands, 3);
        cr_assert_eq(m->shared_sequence.commands[0].label, SUIT_DIRECTIVE_OVERRIDE_PARAMETERS);
        cr_assert_eq(m->shared_sequence.commands[1].label, SUIT_CONDITION_VENDOR_IDENTIFIER);
        cr_assert_eq(m->shared_sequence.commands[1].policy, 15);
        cr_assert_eq(m->shared_sequence.commands[2].label, SUIT_CONDITION_CLASS_IDENTIFIER);
        p = m->shared_sequence.commands[0].params;
        cr_assert(buf_eq_hex(p->vendor_id, VENDOR_ID));
        cr_assert_not(p->vendor_id_is_pen);
        cr_assert(buf_eq_hex(p->class_id, CLASS_ID));
        cr_assert_eq(p->image_digest.alg, COSE_ALG_SHA256);
        cr_assert(buf_eq_hex(p->image_digest.bytes, TC_DIGEST));
        cr_assert(teep_suit_parameters_has(p, SUIT_PARAM_IMAGE_SIZE));
        cr_assert_eq(p->image_size, 20);

        /* install at 20: override {uri}, fetch, image-match */
        cr_assert(m->install.present);
        cr_assert_not(m->install.severed);
        cr_assert_eq(m->install.n_commands, 3);
        cr_assert(buf_eq_str(m->install.commands[0].params->uri, uri));
        cr_assert_eq(m->install.commands[1].label, SUIT_DIRECTIVE_FETCH);
        cr_assert_eq(m->install.commands[1].policy, 15);
        cr_assert_eq(m->install.commands[2].label, SUIT_CONDITION_IMAGE_MATCH);

        cr_assert(m->uninstall.present);
        cr_assert_eq(m->uninstall.n_commands, 1);
        cr_assert_eq(m->uninstall.commands[0].label, SUIT_DIRECTIVE_UNLINK);
        cr_assert_not(m->validate.present);
        cr_assert_not(m->invoke.present);
}

/* ---- the draft's App. E manifests ---- */

Test(suit, draft_uri_manifest) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(vector_buf(&v), key, &env);

        cr_assert_not(env->tagged);
        cr_assert_eq(env->n_signatures, 1);
        cr_assert_eq(env->digest.alg, COSE_ALG_SHA256);
        cr_assert(buf_eq_hex(env->digest.bytes,
                             "b39b52b0b747ea79588c190f567bfc2c8437ba8a73f7ea983182e79f0148d59b"));
        cr_assert_eq(env->n_payloads, 0);
        /* the digest input is the bstr-wrapped manifest: head 59 0108 (264 bytes) */
        cr_assert_eq(env->manifest.content.len, 264);
        cr_assert_eq(env->manifest.wrapped.len, 264 + 3);
        cr_assert_eq(env->manifest.wrapped.ptr[0], 0x59);
        assert_app_e_tc_manifest(m, TC_URI);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, draft_integrated_manifest_and_payload) {
        Vector v = vector_load("draft-teep-protocol/suit_integrated.hex");
        Vector tc = vector_load("draft-teep-protocol/tc_binary_8d82573a-926d-4754-9353-32dc29997f74.ta.hex");
        TeepKey *key = load_key(SIGNER_COSE);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(vector_buf(&v), key, &env);
        uint8_t md[32];
        TeepBuf payload;

        assert_app_e_tc_manifest(m, "#tc");
        cr_assert_eq(env->n_payloads, 1);
        cr_assert_eq(teep_suit_envelope_get_payload(env, "#tc", &payload), 0);
        cr_assert_eq(teep_suit_envelope_get_payload(env, "#other", NULL), -ENOENT);
        cr_assert(teep_buf_eq(payload, vector_buf(&tc)));
        cr_assert_eq(payload.len, m->shared_sequence.commands[0].params->image_size);
        cr_assert_eq(teep_sha256(payload, md), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(md, 32), m->shared_sequence.commands[0].params->image_digest.bytes));

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&tc);
        vector_free(&v);
}

Test(suit, draft_personalization_manifest) {
        Vector v = vector_load("draft-teep-protocol/suit_personalization.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(vector_buf(&v), key, &env);
        const TeepSuitParameters *p;
        const TeepSuitSequence *in;

        cr_assert_eq(m->sequence_number, 3);
        cr_assert_eq(m->n_components, 1);
        assert_id_name(&m->components[0], "TEEP-Device/SecureFS/config.json");
        cr_assert_eq(m->n_dependencies, 1);
        cr_assert_eq(m->dependencies[0].index, 1);
        cr_assert(m->dependencies[0].has_prefix);
        assert_id_name(&m->dependencies[0].prefix,
                       "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit");
        assert_id_name(&m->manifest_component_id, "TEEP-Device/SecureFS/config.suit");

        /* shared: set-component-index 0 first */
        cr_assert_eq(m->shared_sequence.commands[0].label, SUIT_DIRECTIVE_SET_COMPONENT_INDEX);
        cr_assert_eq(m->shared_sequence.commands[0].index_mask, 1);

        /* dependency-resolution fetches the TC's manifest (digest = suit_uri's manifest digest) */
        cr_assert(m->dependency_resolution.present);
        cr_assert_eq(m->dependency_resolution.commands[0].index_mask, 1u << 1);
        p = first_params(&m->dependency_resolution);
        cr_assert(buf_eq_hex(p->image_digest.bytes,
                             "b39b52b0b747ea79588c190f567bfc2c8437ba8a73f7ea983182e79f0148d59b"));
        cr_assert_eq(p->image_size, 389);
        cr_assert(buf_eq_str(p->uri, "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit"));
        cr_assert_eq(m->dependency_resolution.commands[2].label, SUIT_DIRECTIVE_FETCH);
        cr_assert_eq(m->dependency_resolution.commands[2].policy, 2);

        /* install: index 1, process-dependency, index 0, override {content, encryption-info}, write */
        in = &m->install;
        cr_assert_eq(in->n_commands, 5);
        cr_assert_eq(in->commands[0].index_mask, 1u << 1);
        cr_assert_eq(in->commands[1].label, SUIT_DIRECTIVE_PROCESS_DEPENDENCY);
        cr_assert_eq(in->commands[2].index_mask, 1);
        p = in->commands[3].params;
        cr_assert(teep_suit_parameters_has(p, SUIT_PARAM_CONTENT));
        cr_assert_eq(p->content.len, 61);
        cr_assert(teep_suit_parameters_has(p, SUIT_PARAM_ENCRYPTION_INFO));
        cr_assert_gt(p->encryption_info.len, 0);
        cr_assert_eq(p->encryption_info.ptr[0], 0xd8); /* tag 96: COSE_Encrypt */
        cr_assert_eq(p->encryption_info.ptr[1], 96);
        cr_assert_eq(in->commands[4].label, SUIT_DIRECTIVE_WRITE);

        /* validate checks the plaintext digest */
        cr_assert(m->validate.present);
        p = first_params(&m->validate);
        cr_assert(buf_eq_hex(p->image_digest.bytes,
                             "8273468fb64bd84bb04825f8371744d952b751c73a60f455af681e167726f116"));
        cr_assert_eq(p->image_size, 61);

        cr_assert_eq(m->uninstall.n_commands, 4);
        cr_assert_eq(m->uninstall.commands[3].label, SUIT_DIRECTIVE_UNLINK);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&v);
}

/* ---- the SUIT spec's examples (tag 107, ES256) ---- */

Test(suit, spec_example0_secure_boot) {
        Vector v = vector_load("suit-manifest-spec/example0.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(vector_buf(&v), key, &env);

        cr_assert(env->tagged);
        cr_assert_eq(m->sequence_number, 0);
        cr_assert_eq(m->n_components, 1);
        assert_id_name(&m->components[0], "0x00");
        cr_assert_eq(first_params(&m->shared_sequence)->image_size, 34768);
        cr_assert(buf_eq_hex(first_params(&m->shared_sequence)->vendor_id,
                             "fa6b4a53d5ad5fdfbe9de663e4d41ffe"));
        cr_assert(m->validate.present);
        cr_assert_eq(m->validate.commands[0].label, SUIT_CONDITION_IMAGE_MATCH);
        cr_assert(m->invoke.present);
        cr_assert_eq(m->invoke.commands[0].label, SUIT_DIRECTIVE_INVOKE);
        cr_assert_eq(m->invoke.commands[0].policy, 2);
        cr_assert_not(m->install.present);
        cr_assert_not(m->has_manifest_component_id);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, spec_example1_download_install) {
        Vector v = vector_load("suit-manifest-spec/example1.hex");
        TeepKey *key = load_key(SIGNER_COSE);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(vector_buf(&v), key, &env);

        cr_assert(env->tagged);
        cr_assert_eq(m->sequence_number, 1);
        cr_assert(m->install.present);
        cr_assert(buf_eq_str(m->install.commands[0].params->uri, "http://example.com/file.bin"));
        cr_assert_eq(m->install.commands[1].label, SUIT_DIRECTIVE_FETCH);
        cr_assert_eq(m->install.commands[1].policy, 2);
        cr_assert(m->validate.present);
        cr_assert_not(m->invoke.present);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&v);
}

/* ---- envelopes inside Update messages ---- */

Test(suit, draft_update_embeds_stale_numbering) {
        Vector v = vector_load("draft-teep-protocol/update.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(update_first_envelope(vector_buf(&v)), key, &env);

        /* key 9 is invoke today: the old install sequence must not surface as install */
        cr_assert_not(m->install.present);
        cr_assert(m->invoke.present);
        cr_assert_eq(m->invoke.n_commands, 3);
        cr_assert_eq(m->invoke.commands[1].label, SUIT_DIRECTIVE_FETCH);
        cr_assert_not(m->has_manifest_component_id);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, derived_update_carries_suit_uri) {
        Vector v = vector_load("derived/update_install_suit_uri.hex");
        Vector uri = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *key = load_key(SIGNER_COSE);
        TeepBuf inner = update_first_envelope(vector_buf(&v));
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = open_envelope(inner, key, &env);

        cr_assert(teep_buf_eq(inner, vector_buf(&uri)));
        assert_app_e_tc_manifest(m, TC_URI);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(key);
        vector_free(&uri);
        vector_free(&v);
}

/* ---- authentication failures ---- */

static int verify_copy(const uint8_t *data, size_t len, TeepKey *key, TeepError *err) {
        _cleanup_free_ uint8_t *copy = malloc(len);
        TeepSuitEnvelope *env = NULL;
        int r;

        memcpy(copy, data, len);
        r = teep_suit_envelope_decode(TEEP_BUF(copy, len), &env, err);
        cr_assert_eq(r, 0, "decode: %s", err->detail);
        r = teep_suit_envelope_verify(env, &key, 1, NULL, err);
        cr_assert_eq(env->authenticated, r == 0);
        teep_suit_envelope_free(env);
        return r;
}

static size_t find_hex(const Vector *v, const char *hex) {
        _cleanup_free_ uint8_t *p = NULL;
        TeepBuf needle = hexbuf(hex, &p);
        for (size_t i = 0; i + needle.len <= v->len; i++)
                if (memcmp(v->data + i, needle.ptr, needle.len) == 0)
                        return i;
        cr_assert_fail("%s not found", hex);
        return 0;
}

Test(suit, rejects_wrong_key) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *key = load_key(WRONG_KEY);
        TeepError err = {};

        cr_assert_eq(verify_copy(v.data, v.len, key, &err), -EKEYREJECTED);
        cr_assert_eq(err.reason, TEEP_REASON_COSE_SIGNATURE, "%s", teep_reason_to_string(err.reason));
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, rejects_without_keys) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepError err = {};
        TeepSuitEnvelope *env = decode_envelope(vector_buf(&v));

        cr_assert_eq(teep_suit_envelope_verify(env, NULL, 0, NULL, &err), -ENOKEY);
        cr_assert_not(env->authenticated);
        teep_suit_envelope_free(env);
        vector_free(&v);
}

Test(suit, rejects_flipped_manifest_byte) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepError err = {};

        v.data[find_hex(&v, VENDOR_ID) + 5] ^= 0x01; /* the vendor id inside the manifest */
        cr_assert_eq(verify_copy(v.data, v.len, key, &err), -EKEYREJECTED);
        cr_assert_eq(err.reason, TEEP_REASON_SUIT_DIGEST);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, rejects_flipped_signature_byte) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepError err = {};

        v.data[find_hex(&v, "b35bf8c5276acf61") + 40] ^= 0x80;
        cr_assert_eq(verify_copy(v.data, v.len, key, &err), -EKEYREJECTED);
        cr_assert_eq(err.reason, TEEP_REASON_COSE_SIGNATURE);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, rejects_tampered_digest) {
        Vector v = vector_load("draft-teep-protocol/suit_integrated.hex");
        TeepKey *key = load_key(SIGNER_PEM);
        TeepError err = {};

        v.data[find_hex(&v, "cedb0457952f7dd0") + 31] ^= 0x01; /* last byte of the manifest digest */
        cr_assert_eq(verify_copy(v.data, v.len, key, &err), -EKEYREJECTED);
        cr_assert_eq(err.reason, TEEP_REASON_SUIT_DIGEST);
        teep_key_free(key);
        vector_free(&v);
}

Test(suit, manifest_refused_before_verification) {
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepSuitEnvelope *env = decode_envelope(vector_buf(&v));
        TeepSuitManifest *m = NULL;
        TeepError err = {};

        cr_assert_eq(teep_suit_manifest_decode(env, 0, &m, &err), -EINVAL);
        cr_assert_eq(err.reason, TEEP_REASON_SUIT_AUTH);
        cr_assert_null(m);
        /* the explicit inspection mode still decodes it */
        cr_assert_eq(teep_suit_manifest_decode(env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &m, &err), 0);
        cr_assert_eq(m->sequence_number, 3);
        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        vector_free(&v);
}

/* ---- encoding: the draft's bytes from the draft's inputs ---- */

static void app_e_build(TeepSuitBuild *b, TeepSuitComponentId *id, TeepSuitComponentId *mid,
                        uint8_t **owned) {
        *id = id_from_string("TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta", &owned[0]);
        *mid = id_from_string("TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit", &owned[1]);
        *b = (TeepSuitBuild){
                .component_id = id,
                .manifest_component_id = mid,
                .sequence_number = 3,
                .vendor_id = hexbuf(VENDOR_ID, &owned[2]),
                .class_id = hexbuf(CLASS_ID, &owned[3]),
                .image_digest = hexbuf(TC_DIGEST, &owned[4]),
                .image_size = 20,
                .uri = TC_URI,
                .uninstall_unlink = true,
        };
}

static void free_owned(uint8_t **owned, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(owned[i]);
}

static void assert_encoder_reproduces(const char *vector, const char *uri, bool integrated) {
        Vector v = vector_load(vector);
        Vector tc = vector_load("draft-teep-protocol/tc_binary_8d82573a-926d-4754-9353-32dc29997f74.ta.hex");
        uint8_t *owned[5] = {};
        _cleanup_free_ uint8_t *out = NULL;
        TeepSuitComponentId id, mid;
        TeepSuitEnvelope *env = decode_envelope(vector_buf(&v));
        TeepSuitBuild b;
        size_t len;

        app_e_build(&b, &id, &mid, owned);
        b.uri = uri;
        if (integrated)
                b.payload = vector_buf(&tc);
        cr_assert_eq(teep_suit_manifest_encode_install(&b, &out, &len), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(out, len), env->manifest.content), "%s: manifest bytes differ",
                  vector);

        teep_suit_envelope_free(env);
        free_owned(owned, 5);
        vector_free(&tc);
        vector_free(&v);
}

Test(suit, encoder_reproduces_draft_uri_manifest) {
        assert_encoder_reproduces("draft-teep-protocol/suit_uri.hex", TC_URI, false);
}

Test(suit, encoder_reproduces_draft_integrated_manifest) {
        assert_encoder_reproduces("draft-teep-protocol/suit_integrated.hex", "#tc", true);
}

/* decode -> fill the builder from what was decoded -> encode: the same bytes */
static void assert_decode_encode_identical(TeepBuf envelope_bytes) {
        TeepSuitEnvelope *env = decode_envelope(envelope_bytes);
        _cleanup_free_ uint8_t *out = NULL;
        const TeepSuitParameters *shared, *inst;
        TeepSuitManifest *m = NULL;
        char uri[256];
        TeepSuitBuild b;
        size_t len;

        cr_assert_eq(teep_suit_manifest_decode(env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &m, NULL), 0);
        shared = first_params(&m->shared_sequence);
        inst = first_params(&m->install);
        b = (TeepSuitBuild){
                .component_id = &m->components[0],
                .manifest_component_id = m->has_manifest_component_id ? &m->manifest_component_id : NULL,
                .sequence_number = m->sequence_number,
                .vendor_id = shared->vendor_id,
                .class_id = shared->class_id,
                .image_digest = shared->image_digest.bytes,
                .image_size = shared->image_size,
                .uri = text_dup(inst->uri, uri, sizeof(uri)),
                .validate = m->validate.present,
                .uninstall_unlink = m->uninstall.present,
        };
        if (uri[0] == '#')
                cr_assert_eq(teep_suit_envelope_get_payload(env, uri, &b.payload), 0);
        cr_assert_eq(teep_suit_manifest_encode_install(&b, &out, &len), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(out, len), env->manifest.content));
        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
}

Test(suit, decode_encode_is_byte_identical) {
        static const char *const files[] = {
                "draft-teep-protocol/suit_uri.hex",
                "draft-teep-protocol/suit_integrated.hex",
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                Vector v = vector_load(files[i]);
                assert_decode_encode_identical(vector_buf(&v));
                vector_free(&v);
        }
}

Test(suit, encoder_refuses_bad_inputs) {
        uint8_t *owned[5] = {};
        _cleanup_free_ uint8_t *bad_uuid = NULL;
        TeepSuitComponentId id, mid;
        TeepSuitBuild b, c;
        uint8_t *out = NULL;
        size_t len;
        Vector tc = vector_load("draft-teep-protocol/tc_binary_8d82573a-926d-4754-9353-32dc29997f74.ta.hex");

        app_e_build(&b, &id, &mid, owned);
        c = b;
        c.vendor_id = hexbuf("c0ddd5f15243566087db4f5b0aa26c", &bad_uuid); /* 15 bytes */
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), -EINVAL);
        c = b;
        c.image_digest.len = 31;
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), -EINVAL);
        c = b;
        c.uri = "";
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), -EINVAL);
        c = b; /* an integrated payload needs a '#' key */
        c.payload = vector_buf(&tc);
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), -EINVAL);
        c.uri = "#tc"; /* ... and must be what the digest says */
        c.image_size = 21;
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), -EINVAL);
        c.image_size = 20;
        cr_assert_eq(teep_suit_manifest_encode_install(&c, &out, &len), 0);
        free(out);
        c = b;
        c.component_id = NULL;
        cr_assert_eq(teep_suit_manifest_encode_unlink(&c, &out, &len), -EINVAL);

        free_owned(owned, 5);
        vector_free(&tc);
}

/* ---- signing (the SP tool's path) ---- */

Test(suit, sign_integrated_then_verify_and_decode) {
        Vector tc = vector_load("draft-teep-protocol/tc_binary_8d82573a-926d-4754-9353-32dc29997f74.ta.hex");
        TeepKey *priv = load_key(SIGNER_PRIVATE), *pub = load_key(SIGNER_PEM), *wrong = load_key(WRONG_KEY);
        TeepKey *keys[2] = {wrong, pub};
        uint8_t *owned[5] = {};
        _cleanup_free_ uint8_t *out = NULL;
        TeepSuitComponentId id, mid;
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = NULL;
        TeepError err = {};
        TeepSuitBuild b;
        TeepBuf payload;
        size_t len, idx = 0;

        app_e_build(&b, &id, &mid, owned);
        b.uri = "#tc";
        b.payload = vector_buf(&tc);
        b.sequence_number = 7;
        b.validate = true;
        cr_assert_eq(teep_suit_envelope_build_install(&b, priv, 0, &out, &len), 0);

        cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(out, len), &env, &err), 0, "%s", err.detail);
        cr_assert_not(env->tagged);
        cr_assert_eq(teep_suit_envelope_verify(env, keys, 2, &idx, &err), 0, "%s", err.detail);
        cr_assert_eq(idx, 1);
        cr_assert_eq(teep_suit_manifest_decode(env, 0, &m, &err), 0, "%s", err.detail);
        cr_assert_eq(m->sequence_number, 7);
        cr_assert(m->validate.present);
        cr_assert_eq(m->validate.commands[0].label, SUIT_CONDITION_IMAGE_MATCH);
        cr_assert_eq(teep_suit_envelope_get_payload(env, "#tc", &payload), 0);
        cr_assert(teep_buf_eq(payload, vector_buf(&tc)));
        /* the envelope is {2, 3, "#tc"} in that order */
        cr_assert_eq(out[0], 0xa3);
        cr_assert_eq(out[1], 0x02);
        assert_decode_encode_identical(TEEP_BUF(out, len));

        /* only the first key (the wrong one): refused */
        cr_assert_eq(teep_suit_envelope_verify(env, keys, 1, NULL, &err), -EKEYREJECTED);

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        free_owned(owned, 5);
        teep_key_free(priv);
        teep_key_free(pub);
        teep_key_free(wrong);
        vector_free(&tc);
}

Test(suit, unlink_intent_envelope) {
        TeepKey *priv = load_key(SIGNER_PRIVATE), *pub = load_key(SIGNER_COSE);
        uint8_t *owned[5] = {};
        _cleanup_free_ uint8_t *out = NULL, *manifest = NULL, *again = NULL;
        TeepSuitComponentId id, mid;
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = NULL;
        TeepError err = {};
        TeepSuitBuild b, c;
        size_t len, mlen, alen;

        app_e_build(&b, &id, &mid, owned);
        b.sequence_number = 4;
        cr_assert_eq(teep_suit_envelope_build_unlink(&b, priv, COSE_ALG_ESP256, &out, &len), 0);
        cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(out, len), &env, &err), 0);
        cr_assert_eq(teep_suit_envelope_verify(env, &pub, 1, NULL, &err), 0, "%s", err.detail);
        cr_assert_eq(teep_suit_manifest_decode(env, 0, &m, &err), 0, "%s", err.detail);

        cr_assert_eq(m->sequence_number, 4);
        assert_id_name(&m->components[0], "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta");
        assert_id_name(&m->manifest_component_id,
                       "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit");
        cr_assert_eq(m->install.n_commands, 1);
        cr_assert_eq(m->install.commands[0].label, SUIT_DIRECTIVE_UNLINK);
        cr_assert_eq(m->shared_sequence.n_commands, 3);
        cr_assert_not(teep_suit_parameters_has(first_params(&m->shared_sequence), SUIT_PARAM_IMAGE_DIGEST));
        cr_assert_not(m->uninstall.present);

        /* decode -> encode identical */
        c = (TeepSuitBuild){
                .component_id = &m->components[0],
                .manifest_component_id = &m->manifest_component_id,
                .sequence_number = m->sequence_number,
                .vendor_id = first_params(&m->shared_sequence)->vendor_id,
                .class_id = first_params(&m->shared_sequence)->class_id,
        };
        cr_assert_eq(teep_suit_manifest_encode_unlink(&c, &again, &alen), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(again, alen), env->manifest.content));
        cr_assert_eq(teep_suit_manifest_encode_unlink(&b, &manifest, &mlen), 0);
        cr_assert(teep_buf_eq(TEEP_BUF(manifest, mlen), env->manifest.content));

        teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        free_owned(owned, 5);
        teep_key_free(priv);
        teep_key_free(pub);
}

/* ---- hand-made manifests: each broken rule gets its named reason ---- */

/* Sign manifest (hex) into an envelope; extra_key/extra_hex add a bstr member after key 3. */
static void make_envelope(const char *manifest_hex, int extra_key, const char *extra_hex, uint8_t **ret,
                          size_t *ret_len) {
        _cleanup_free_ uint8_t *mbytes = NULL, *signed_env = NULL, *extra = NULL;
        TeepKey *priv = load_key(SIGNER_PRIVATE);
        TeepBuf manifest = hexbuf(manifest_hex, &mbytes);
        TeepSuitEnvelope *env = NULL;
        TeepCborWriter w;
        size_t len;

        cr_assert_eq(teep_suit_envelope_sign(manifest, priv, 0, NULL, 0, &signed_env, &len), 0);
        if (extra_key == 0) {
                *ret = TAKE_PTR(signed_env);
                *ret_len = len;
                teep_key_free(priv);
                return;
        }
        env = decode_envelope(TEEP_BUF(signed_env, len));
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 3);
        teep_cbor_put_uint(&w, 2);
        teep_cbor_put_raw(&w, env->auth.wrapped);
        teep_cbor_put_uint(&w, 3);
        teep_cbor_put_raw(&w, env->manifest.wrapped);
        teep_cbor_put_int(&w, extra_key);
        teep_cbor_put_buf(&w, hexbuf(extra_hex, &extra));
        cr_assert_eq(teep_cbor_writer_finish(&w, ret, ret_len), 0);
        teep_suit_envelope_free(env);
        teep_key_free(priv);
}

/* Decode + verify + manifest decode of a hand-made manifest; returns the manifest step's result. */
static int try_manifest(const char *manifest_hex, int extra_key, const char *extra_hex, TeepError *err,
                        TeepSuitManifest **ret, uint8_t **ret_bytes) {
        _cleanup_free_ uint8_t *bytes = NULL;
        TeepKey *pub = load_key(SIGNER_PEM);
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *m = NULL;
        size_t len;
        int r;

        make_envelope(manifest_hex, extra_key, extra_hex, &bytes, &len);
        cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(bytes, len), &env, err), 0, "%s", err->detail);
        cr_assert_eq(teep_suit_envelope_verify(env, &pub, 1, NULL, err), 0, "%s", err->detail);
        r = teep_suit_manifest_decode(env, 0, &m, err);
        if (r == 0 && ret) {
                *ret = m; /* its views point into the envelope bytes: hand those over too */
                *ret_bytes = TAKE_PTR(bytes);
        } else
                teep_suit_manifest_free(m);
        teep_suit_envelope_free(env);
        teep_key_free(pub);
        return r;
}

/* {1: 1, 2: 0, 3: << {2: [[h'00']]} >>, 20: << [21 fetch, 15] >>} and variations */
#define M_COMMON  "0346a10281814100"
#define M_INSTALL "144382150f"
#define M_OK                                                                                                \
        "a4"                                                                                                \
        "0101"                                                                                              \
        "0200" M_COMMON M_INSTALL

Test(suit, minimal_manifest_is_accepted) {
        _cleanup_free_ uint8_t *bytes = NULL;
        TeepSuitManifest *m = NULL;
        TeepError err = {};
        cr_assert_eq(try_manifest(M_OK, 0, NULL, &err, &m, &bytes), 0, "%s", err.detail);
        cr_assert_eq(m->install.n_commands, 1);
        cr_assert_eq(m->n_commands, 1);
        teep_suit_manifest_free(m);
}

static void assert_manifest_fails(const char *hex, int extra_key, const char *extra_hex, int want,
                                  TeepReason reason) {
        TeepError err = {};
        int r = try_manifest(hex, extra_key, extra_hex, &err, NULL, NULL);
        cr_assert_eq(r, want, "%s: got %d (%s: %s)", hex, r, teep_reason_to_string(err.reason), err.detail);
        cr_assert_eq(err.reason, reason, "%s: reason %s (%s)", hex, teep_reason_to_string(err.reason),
                     err.detail);
}

Test(suit, rejects_manifest_version_2) {
        assert_manifest_fails("a4"
                              "0102"
                              "0200" M_COMMON M_INSTALL,
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_VERSION);
}

Test(suit, rejects_missing_sequence_number) {
        assert_manifest_fails("a3"
                              "0101" M_COMMON M_INSTALL,
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_MANIFEST);
}

Test(suit, rejects_unknown_command) {
        /* install << [99, 15] >> */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1444821863"
                              "0f",
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMAND);
        /* custom command -300 */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1445"
                              "8239012b0f",
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMAND);
        /* an unknown command nested in try-each: << [15, [<<[21,15]>>, <<[99,15]>>]] >> */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "144c"
                              "820f82"
                              "4382150f"
                              "44821863"
                              "0f",
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMAND);
}

Test(suit, rejects_unknown_critical_members) {
        /* manifest member 6 */
        assert_manifest_fails("a5"
                              "0101"
                              "0200" M_COMMON "0600" M_INSTALL,
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_MANIFEST);
        /* a text-keyed manifest member */
        assert_manifest_fails("a5"
                              "0101"
                              "0200" M_COMMON M_INSTALL "617800",
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_MANIFEST);
        /* common member 3 */
        assert_manifest_fails("a4"
                              "0101"
                              "0200"
                              "0348a2028181410003"
                              "00" M_INSTALL,
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMON);
        /* dependency metadata other than the prefix */
        assert_manifest_fails("a4"
                              "0101"
                              "0200"
                              "034ca201a101a1020002818141"
                              "00" M_INSTALL,
                              0, NULL, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMON);
}

Test(suit, rejects_bad_component_index) {
        /* install << [12 set-component-index 1, 21, 15] >> with one component and no dependency */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1445"
                              "840c01150f",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_COMPONENT);
        /* 64 is beyond any index */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1446"
                              "840c1840150f",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_COMPONENT);
}

Test(suit, rejects_malformed_sequences) {
        /* odd number of items */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1444831515"
                              "0f",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE);
        /* empty sequence */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "144180",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE);
        /* fetch with a text policy */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1444821561"
                              "78",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE);
        /* the bstr holds two items */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "144482150f"
                              "00",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE);
        /* try-each with a single alternative */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1447"
                              "820f81"
                              "4382150f",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE);
}

Test(suit, rejects_bad_parameters) {
        /* override {2: h'00'} - class id must be a 16-byte UUID */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1446"
                              "8214a1024100",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_PARAMETER);
        /* uri must be text */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1446"
                              "8214a1154100",
                              0, NULL, -EBADMSG, TEEP_REASON_SUIT_PARAMETER);
        /* the same parameter twice */
        assert_manifest_fails("a4"
                              "0101"
                              "0200" M_COMMON "1447"
                              "8214a20e010e02",
                              0, NULL, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY);
}

Test(suit, keeps_unknown_parameters) {
        _cleanup_free_ uint8_t *bytes = NULL;
        TeepSuitManifest *m = NULL;
        TeepError err = {};
        const TeepSuitParameters *p;

        /* install << [20, {14: 5, 99: "x", -7: [1]}, 21, 15] >> */
        cr_assert_eq(try_manifest("a4"
                                  "0101"
                                  "0200" M_COMMON "144e"
                                  "8414a30e0518636178268101150f",
                                  0, NULL, &err, &m, &bytes),
                     0, "%s", err.detail);
        p = m->install.commands[0].params;
        cr_assert_eq(p->image_size, 5);
        cr_assert_eq(p->n_unknown, 2);
        cr_assert_eq(p->unknown[0].label, 99);
        cr_assert_eq(p->unknown[0].raw.len, 2);
        cr_assert_eq(p->unknown[1].label, -7);
        cr_assert_eq(p->unknown[1].raw.len, 2);
        teep_suit_manifest_free(m);
}

Test(suit, rejects_too_many_components) {
        char hex[512], *o = hex;
        TeepCborWriter common;
        _cleanup_free_ uint8_t *cbytes = NULL;
        size_t clen;

        /* common {2: [17 x [h'00']]} */
        teep_cbor_writer_init(&common);
        teep_cbor_put_map(&common, 1);
        teep_cbor_put_uint(&common, 2);
        teep_cbor_put_array(&common, TEEP_SUIT_MAX_COMPONENTS + 1);
        for (int i = 0; i < TEEP_SUIT_MAX_COMPONENTS + 1; i++) {
                teep_cbor_put_array(&common, 1);
                teep_cbor_put_bytes(&common, "\x00", 1);
        }
        cr_assert_eq(teep_cbor_writer_finish(&common, &cbytes, &clen), 0);
        cr_assert_lt(clen, 256);
        o += sprintf(o, "a4010102000358%02zx", clen);
        for (size_t i = 0; i < clen; i++)
                o += sprintf(o, "%02x", cbytes[i]);
        sprintf(o, "%s", M_INSTALL);
        assert_manifest_fails(hex, 0, NULL, -E2BIG, TEEP_REASON_SUIT_COMPONENT);
}

Test(suit, rejects_deep_nesting) {
        /* run-sequence inside run-sequence ... deeper than TEEP_SUIT_MAX_NESTING */
        TeepCborWriter w;
        _cleanup_free_ uint8_t *seq = NULL;
        uint8_t *cur = NULL;
        size_t cur_len = 0;
        char hex[1024], *o = hex;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_uint(&w, SUIT_DIRECTIVE_FETCH);
        teep_cbor_put_uint(&w, 15);
        cr_assert_eq(teep_cbor_writer_finish(&w, &cur, &cur_len), 0);
        for (int i = 0; i < TEEP_SUIT_MAX_NESTING + 1; i++) {
                teep_cbor_writer_init(&w);
                teep_cbor_put_array(&w, 2);
                teep_cbor_put_uint(&w, SUIT_DIRECTIVE_RUN_SEQUENCE);
                teep_cbor_put_bytes(&w, cur, cur_len);
                free(cur);
                cr_assert_eq(teep_cbor_writer_finish(&w, &cur, &cur_len), 0);
        }
        seq = cur;
        o += sprintf(o, "a4010102000346a102818141001458%02zx", cur_len);
        for (size_t i = 0; i < cur_len; i++)
                o += sprintf(o, "%02x", seq[i]);
        assert_manifest_fails(hex, 0, NULL, -E2BIG, TEEP_REASON_SUIT_SEQUENCE);
}

/* install severed: the manifest holds [-16, sha256(<< install >>)], the envelope the bstr */
static char *severed_manifest_hex(const char *install_hex) {
        _cleanup_free_ uint8_t *ib = NULL;
        TeepBuf inst = hexbuf(install_hex, &ib);
        uint8_t wrapped[64], md[32];
        char *hex = malloc(256), *o = hex;

        cr_assert_lt(inst.len, 24);
        wrapped[0] = (uint8_t)(0x40 + inst.len);
        memcpy(wrapped + 1, inst.ptr, inst.len);
        cr_assert_eq(teep_sha256(TEEP_BUF(wrapped, inst.len + 1), md), 0);
        o += sprintf(o, "a4"
                        "0101"
                        "0200" M_COMMON "14822f5820");
        for (size_t i = 0; i < 32; i++)
                o += sprintf(o, "%02x", md[i]);
        return hex;
}

Test(suit, severed_member_is_checked) {
        _cleanup_free_ char *hex = severed_manifest_hex("82150f");
        _cleanup_free_ uint8_t *bytes = NULL;
        TeepSuitManifest *m = NULL;
        TeepError err = {};

        /* right content */
        cr_assert_eq(try_manifest(hex, 20, "82150f", &err, &m, &bytes), 0, "%s", err.detail);
        cr_assert(m->install.present);
        cr_assert(m->install.severed);
        cr_assert_eq(m->install.n_commands, 1);
        cr_assert_eq(m->install.commands[0].label, SUIT_DIRECTIVE_FETCH);
        teep_suit_manifest_free(m);

        /* wrong content */
        assert_manifest_fails(hex, 20, "82150e", -EKEYREJECTED, TEEP_REASON_SUIT_SEVERED);
        /* missing */
        assert_manifest_fails(hex, 0, NULL, -EBADMSG, TEEP_REASON_SUIT_SEVERED);
        /* carried in the envelope while the manifest holds the sequence itself */
        assert_manifest_fails(M_OK, 20, "82150f", -EBADMSG, TEEP_REASON_SUIT_SEVERED);
        /* carried in the envelope for a member the manifest does not mention */
        assert_manifest_fails(M_OK, 16, "82150f", -EBADMSG, TEEP_REASON_SUIT_SEVERED);
}

/* ---- envelope structure ---- */

static void assert_envelope_fails(const char *hex, int want, TeepReason reason) {
        _cleanup_free_ uint8_t *b = NULL;
        TeepBuf in = hexbuf(hex, &b);
        TeepSuitEnvelope *env = (TeepSuitEnvelope *)0x1;
        TeepError err = {};
        int r = teep_suit_envelope_decode(in, &env, &err);

        cr_assert_eq(r, want, "%s: got %d (%s: %s)", hex, r, teep_reason_to_string(err.reason), err.detail);
        cr_assert_eq(err.reason, reason, "%s: %s (%s)", hex, teep_reason_to_string(err.reason), err.detail);
        cr_assert_eq(env, (TeepSuitEnvelope *)0x1, "ret touched on failure");
}

Test(suit, rejects_missing_authentication) {
        assert_envelope_fails("a1"
                              "0341"
                              "a0",
                              -EBADMSG, TEEP_REASON_SUIT_AUTH);
        /* a wrapper with the digest but no signature */
        assert_envelope_fails("a2"
                              "02"
                              "5827"
                              "81"
                              "5824"
                              "822f5820"
                              "0000000000000000000000000000000000000000000000000000000000000000"
                              "0341a0",
                              -EBADMSG, TEEP_REASON_SUIT_AUTH);
        /* the wrapper is not a bstr */
        assert_envelope_fails("a2"
                              "0280"
                              "0341a0",
                              -EBADMSG, TEEP_REASON_SUIT_AUTH);
}

Test(suit, rejects_envelope_structure) {
        /* not a map */
        assert_envelope_fails("80", -EBADMSG, TEEP_REASON_SUIT_ENVELOPE);
        /* wrong tag */
        assert_envelope_fails("d86ca0", -EBADMSG, TEEP_REASON_SUIT_ENVELOPE);
        /* no manifest */
        assert_envelope_fails("a1"
                              "0241"
                              "80",
                              -EBADMSG, TEEP_REASON_SUIT_ENVELOPE);
        /* delegation (1) and unknown integer members are refused */
        assert_envelope_fails("a3"
                              "0140"
                              "0241"
                              "80"
                              "0341a0",
                              -EOPNOTSUPP, TEEP_REASON_SUIT_ENVELOPE);
        assert_envelope_fails("a3"
                              "0241"
                              "80"
                              "0341a0"
                              "186340",
                              -EOPNOTSUPP, TEEP_REASON_SUIT_ENVELOPE);
        /* a payload that is not a bstr */
        assert_envelope_fails("a3"
                              "0241"
                              "80"
                              "0341a0"
                              "632374630a",
                              -EBADMSG, TEEP_REASON_SUIT_ENVELOPE);
        /* a member twice */
        assert_envelope_fails("a3"
                              "0241"
                              "80"
                              "0341a0"
                              "0341a0",
                              -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY);
}

Test(suit, rejects_truncation_everywhere) {
        Vector v = vector_load("draft-teep-protocol/suit_personalization.hex");
        for (size_t n = 1; n < v.len; n++) {
                uint8_t *copy = malloc(n);
                TeepSuitEnvelope *env = NULL;
                TeepError err = {};

                memcpy(copy, v.data, n);
                cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(copy, n), &env, &err), -EBADMSG,
                             "prefix %zu", n);
                cr_assert_eq(err.reason, TEEP_REASON_CBOR_TRUNCATED, "prefix %zu: %s", n, err.detail);
                free(copy);
        }
        vector_free(&v);
}

Test(suit, survives_every_single_byte_mutation) {
        static const char *const files[] = {
                "draft-teep-protocol/suit_personalization.hex",
                "suit-manifest-spec/example1.hex",
        };
        TeepKey *key = load_key(SIGNER_PEM);

        for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
                Vector v = vector_load(files[f]);
                for (size_t i = 0; i < v.len; i++) {
                        static const uint8_t flips[] = {0x01, 0x20, 0x80, 0xff};
                        for (size_t j = 0; j < sizeof(flips); j++) {
                                uint8_t *copy = malloc(v.len);
                                TeepSuitEnvelope *env = NULL;
                                TeepSuitManifest *m = NULL;

                                memcpy(copy, v.data, v.len);
                                copy[i] ^= flips[j];
                                if (teep_suit_envelope_decode(TEEP_BUF(copy, v.len), &env, NULL) == 0) {
                                        /* structure may survive; authentication must not */
                                        int r = teep_suit_envelope_verify(env, &key, 1, NULL, NULL);
                                        if (r == 0) {
                                                /* only bytes outside the signed data (unprotected header) */
                                                cr_assert_eq(teep_suit_manifest_decode(env, 0, &m, NULL), 0);
                                        } else
                                                (void)teep_suit_manifest_decode(
                                                        env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &m, NULL);
                                        teep_suit_manifest_free(m);
                                        teep_suit_envelope_free(env);
                                }
                                free(copy);
                        }
                }
                vector_free(&v);
        }
        teep_key_free(key);
}

/* ---- component names ---- */

static void assert_round_trip(const char *name, size_t n_segments) {
        _cleanup_free_ uint8_t *cbor = NULL;
        _cleanup_free_ char *back = NULL;
        TeepSuitComponentId id;
        size_t len;

        cr_assert_eq(teep_suit_component_id_from_string(name, &cbor, &len), 0, "%s", name);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(cbor, len), &id, NULL), 0);
        cr_assert_eq(id.n_segments, n_segments, "%s", name);
        cr_assert_eq(teep_suit_component_id_to_string(id.segments, id.n_segments, &back), 0);
        cr_assert_str_eq(back, name);
}

Test(component, round_trips) {
        _cleanup_free_ uint8_t *cbor = NULL;
        TeepSuitComponentId id;
        size_t len;

        assert_round_trip("TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta", 4);
        assert_round_trip("0x00ff", 1);
        assert_round_trip("8d82573a-926d-4754-9353-32dc29997f74", 1);
        assert_round_trip("config.json", 1);
        assert_round_trip("0x", 1);                                   /* the empty segment */
        assert_round_trip("0x2e2e/x", 2);                             /* the bytes ".." */
        assert_round_trip("0x3078", 1);                               /* the bytes "0x" */
        assert_round_trip("8D82573A-926D-4754-9353-32DC29997F74", 1); /* upper case: plain text */

        /* the draft's identifier: the UUID segment is 16 raw bytes */
        cr_assert_eq(teep_suit_component_id_from_string(
                             "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta", &cbor, &len),
                     0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(cbor, len), &id, NULL), 0);
        cr_assert(buf_eq_str(id.segments[0], "TEEP-Device"));
        cr_assert(buf_eq_hex(id.segments[2], TC_UUID));
        cr_assert(buf_eq_str(id.segments[3], "ta"));
        /* and the same bytes as the draft's manifest-list encoding */
        cr_assert(buf_eq_hex(TEEP_BUF(cbor, len), "844b544545502d446576696365485365637572654653"
                                                  "50" TC_UUID "427461"));
}

Test(component, rejects_bad_names) {
        static const char *const bad[] = {
                "",
                "a//b",
                "/a",
                "x/",
                "../x",
                "a/..",
                ".",
                "a b",
                "a\tb",
                "ä",
                "0x0",
                "0xABCD",
                "0xgg",
                "0x6162",                                    /* is written "ab" */
                "0x000102030405060708090a0b0c0d0e0f",        /* 16 bytes are written as a UUID */
                "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", /* 17 segments */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t *cbor = (uint8_t *)0x1;
                size_t len = 12345;
                int r = teep_suit_component_id_from_string(bad[i], &cbor, &len);

                cr_assert_eq(r, -EINVAL, "\"%s\" accepted", bad[i]);
                cr_assert_eq(cbor, (uint8_t *)0x1);
                cr_assert_eq(len, 12345);
        }
}

Test(component, rejects_over_long) {
        char seg[600];
        _cleanup_free_ uint8_t *cbor = NULL;
        size_t len;

        memset(seg, 'a', 255);
        seg[255] = '\0';
        cr_assert_eq(teep_suit_component_id_from_string(seg, &cbor, &len), 0);
        memset(seg, 'a', 256);
        seg[256] = '\0';
        cr_assert_eq(teep_suit_component_id_from_string(seg, &cbor, &len), -EINVAL);
        /* 256 bytes in hex */
        seg[0] = '0';
        seg[1] = 'x';
        memset(seg + 2, 'f', 512);
        seg[514] = '\0';
        cr_assert_eq(teep_suit_component_id_from_string(seg, &cbor, &len), -EINVAL);
        assert_round_trip("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", 16);
}

Test(component, one_to_one) {
        static const char uuid_text[] = "8d82573a-926d-4754-9353-32dc29997f74";
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        TeepBuf ascii = TEEP_BUF(uuid_text, strlen(uuid_text));
        TeepBuf bytes = hexbuf(TC_UUID, &raw);
        TeepBuf plain_16 = TEEP_BUF("abcdefghijklmnop", 16);

        cr_assert_eq(teep_suit_component_id_to_string(&ascii, 1, &a), 0);
        cr_assert_eq(teep_suit_component_id_to_string(&bytes, 1, &b), 0);
        cr_assert_str_neq(a, b);
        cr_assert_str_eq(b, uuid_text);
        cr_assert_eq(strncmp(a, "0x3864", 6), 0, "%s", a);
        /* and each name parses back to its own bytes */
        assert_round_trip(a, 1);
        assert_round_trip(b, 1);
        /* 16 printable bytes stay text */
        cr_assert_eq(teep_suit_component_id_to_string(&plain_16, 1, &c), 0);
        cr_assert_str_eq(c, "abcdefghijklmnop");
        /* nothing to name */
        cr_assert_eq(teep_suit_component_id_to_string(&ascii, 0, &c), -EINVAL);
}

Test(component, decode_bounds) {
        TeepSuitComponentId id;
        TeepError err = {};
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;

        /* 17 segments */
        cr_assert_eq(
                teep_suit_component_id_decode(hexbuf("914040404040404040404040404040404040", &a), &id, &err),
                -E2BIG);
        cr_assert_eq(err.reason, TEEP_REASON_SUIT_COMPONENT);
        /* a segment that is text */
        cr_assert_eq(teep_suit_component_id_decode(hexbuf("816161", &b), &id, &err), -EBADMSG);
        cr_assert_eq(err.reason, TEEP_REASON_SUIT_COMPONENT);
}

Test(suit_auth, errno_survives_without_an_error_record) {
        /* callers may pass err == NULL; the errno must still say what happened */
        Vector v = vector_load("draft-teep-protocol/suit_uri.hex");
        TeepKey *signer = load_key("draft-teep-protocol/keys/suit_signer_p256_public.pem");
        TeepKey *wrong = load_key("libteep/keys/tam_es256_public.cose.hex");
        TeepSuitEnvelope *env = NULL;

        cr_assert_eq(teep_suit_envelope_decode(vector_buf(&v), &env, NULL), 0);
        cr_assert_eq(teep_suit_envelope_verify(env, &wrong, 1, NULL, NULL), -EKEYREJECTED);
        cr_assert_eq(teep_suit_envelope_verify(env, &signer, 1, NULL, NULL), 0);
        teep_suit_envelope_free(env);
        teep_key_free(signer);
        teep_key_free(wrong);
        vector_free(&v);
}
