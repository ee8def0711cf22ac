/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-manifest.c: teep-manifest keygen/pubkey/create/unlink, checked by the real teepctl inspect */

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "tam-test.h"
#include "teep-protocol.h"
#include "teep-suit.h"

#define TC          "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"
#define TC_MANIFEST "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit"

static char *dir;

static void setup(void) {
        dir = tmpdir_new("teep-manifest-test");
}

static void teardown(void) {
        tmpdir_remove(dir);
        dir = NULL;
}

TestSuite(manifest, .init = setup, .fini = teardown, .timeout = 120);

/* Run teep-manifest with the given arguments (NULL-terminated). */
static Run manifest(const char *first, ...) {
        const char *argv[48];
        size_t n = 0;
        va_list ap;

        argv[n++] = bin_manifest();
        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *)) {
                cr_assert(n < ELEMENTSOF(argv) - 1);
                argv[n++] = a;
        }
        va_end(ap);
        argv[n] = NULL;
        return run_argv(30, argv);
}

/* teepctl inspect --key KEY FILE: its exit status (and stdout via *out when wanted). */
static int inspect(const char *key, const char *file, char **out) {
        const char *argv[] = {bin_teepctl(), "inspect", "--json", "--key", key, file, NULL};
        Run r = run_argv(30, argv);
        int st = r.status;

        if (out)
                *out = TAKE_PTR(r.out);
        run_done(&r);
        return st;
}

static void must(Run r) {
        cr_assert_eq(r.status, 0, "teep-manifest failed (%d): %s", r.status, r.err);
        run_done(&r);
}

static void keypair(const char *alg, const char *priv, const char *pub) {
        must(manifest("keygen", "--alg", alg, "--out", path_in(dir, priv), NULL));
        must(manifest("pubkey", "--key", path_in(dir, priv), "--out", path_in(dir, pub), NULL));
}

static void write_payload(const char *name, const char *text) {
        file_write(path_in(dir, name), text, strlen(text));
}

/* Decode an envelope file and its manifest (unauthenticated look, for field checks). */
typedef struct Opened {
        uint8_t *data;
        TeepSuitEnvelope *env;
        TeepSuitManifest *m;
} Opened;

static Opened open_envelope(const char *path) {
        Opened o = {};
        TeepBuf b = file_read(path, &o.data);

        cr_assert_eq(teep_suit_envelope_decode(b, &o.env, NULL), 0);
        cr_assert_eq(teep_suit_manifest_decode(o.env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &o.m, NULL), 0);
        return o;
}

static void opened_done(Opened *o) {
        teep_suit_manifest_free(o->m);
        teep_suit_envelope_free(o->env);
        free(o->data);
}

/* The COSE alg and kid of the envelope's first signature. */
static TeepCoseHeaders envelope_headers(const Opened *o) {
        TeepCoseMessage cose;

        cr_assert_eq(teep_cose_decode(o->env->signatures[0], &cose, NULL), 0);
        return cose.body;
}

Test(manifest, keygen_writes_private_pem_0600_and_keeps_existing_keys) {
        struct stat st;
        uint8_t *before = NULL, *after = NULL;
        TeepBuf a, b;
        Run r;

        must(manifest("keygen", "--alg", "ESP256", "--out", path_in(dir, "k.pem"), NULL));
        cr_assert_eq(stat(path_in(dir, "k.pem"), &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
        a = file_read(path_in(dir, "k.pem"), &before);
        cr_assert(contains((const char *)a.ptr, "-----BEGIN PRIVATE KEY-----"));

        r = manifest("keygen", "--out", path_in(dir, "k.pem"), NULL);
        cr_assert_eq(r.status, 73, "overwrite: %d", r.status);
        cr_assert(contains(r.err, "--force"), "%s", r.err);
        run_done(&r);
        b = file_read(path_in(dir, "k.pem"), &after);
        cr_assert(teep_buf_eq(a, b), "an existing key was changed");
        free(after);

        must(manifest("keygen", "--force", "--out", path_in(dir, "k.pem"), NULL));
        b = file_read(path_in(dir, "k.pem"), &after);
        cr_assert(!teep_buf_eq(a, b), "--force did not write a new key");
        free(before);
        free(after);
}

Test(manifest, keygen_types) {
        static const struct {
                const char *alg;
                TeepKeyType type;
        } cases[] = {{"ESP256", TEEP_KEY_P256}, {"Ed25519", TEEP_KEY_ED25519}, {"es256", TEEP_KEY_P256}};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(teep_key_freep) TeepKey *k = NULL;
                _cleanup_free_ uint8_t *pem = NULL;
                char name[32];
                TeepBuf b;

                snprintf(name, sizeof(name), "k%zu.pem", i);
                must(manifest("keygen", "--alg", cases[i].alg, "--out", path_in(dir, name), NULL));
                b = file_read(path_in(dir, name), &pem);
                cr_assert_eq(teep_key_from_pem(&k, b.ptr, b.len, NULL), 0);
                cr_assert_eq(teep_key_type(k), cases[i].type, "%s", cases[i].alg);
                cr_assert(teep_key_has_private(k));
        }
        Run r = manifest("keygen", "--alg", "RSA", "--out", path_in(dir, "x.pem"), NULL);
        cr_assert_eq(r.status, 64);
        cr_assert(!file_exists(path_in(dir, "x.pem")));
        run_done(&r);
}

Test(manifest, pubkey_forms_agree_with_libteep) {
        _cleanup_(teep_key_freep) TeepKey *priv = NULL, *pub = NULL, *cose = NULL;
        _cleanup_free_ uint8_t *a = NULL, *b = NULL, *c = NULL;
        uint8_t tp[32];
        char tp_hex[65];
        TeepBuf buf;
        Run r;

        must(manifest("keygen", "--alg", "Ed25519", "--out", path_in(dir, "k.pem"), NULL));
        must(manifest("pubkey", "--key", path_in(dir, "k.pem"), "--out", path_in(dir, "pub.pem"), NULL));
        must(manifest("pubkey", "--key", path_in(dir, "k.pem"), "--cose", "--out", path_in(dir, "pub.cose"),
                      NULL));

        buf = file_read(path_in(dir, "k.pem"), &a);
        cr_assert_eq(teep_key_from_pem(&priv, buf.ptr, buf.len, NULL), 0);
        buf = file_read(path_in(dir, "pub.pem"), &b);
        cr_assert(contains((const char *)buf.ptr, "-----BEGIN PUBLIC KEY-----"));
        cr_assert(!contains((const char *)buf.ptr, "PRIVATE"));
        cr_assert_eq(teep_key_from_pem(&pub, buf.ptr, buf.len, NULL), 0);
        cr_assert(!teep_key_has_private(pub));
        buf = file_read(path_in(dir, "pub.cose"), &c);
        cr_assert_eq(teep_key_from_cose_key(&cose, buf, NULL), 0);

        cr_assert_eq(teep_key_thumbprint(priv, tp), 0);
        hexstr(tp, 32, tp_hex);
        r = manifest("pubkey", "--key", path_in(dir, "pub.pem"), "--thumbprint", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_eq(r.out_len, 65);
        cr_assert(strncmp(r.out, tp_hex, 64) == 0, "thumbprint %s, want %s", r.out, tp_hex);
        run_done(&r);
        cr_assert_eq(teep_key_thumbprint(cose, tp), 0);
        hexstr(tp, 32, tp_hex);
        r = manifest("pubkey", "--key", path_in(dir, "k.pem"), "--cose", "--hex", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(strncmp(r.out, "a4", 2) == 0 || strncmp(r.out, "a3", 2) == 0, "%s", r.out);
        run_done(&r);
        r = manifest("pubkey", "--key", path_in(dir, "k.pem"), "--thumbprint", NULL);
        cr_assert(strncmp(r.out, tp_hex, 64) == 0, "COSE form has another thumbprint");
        run_done(&r);
}

/* Every algorithm: teepctl verifies with the right key (0) and refuses a wrong one (77). */
Test(manifest, create_verifies_with_teepctl_for_each_algorithm) {
        static const struct {
                const char *keygen_alg, *alg;
                int64_t want;
        } cases[] = {
                {"ESP256", NULL, COSE_ALG_ESP256},     {"Ed25519", NULL, COSE_ALG_ED25519},
                {"ESP256", "ES256", COSE_ALG_ES256},   {"Ed25519", "EdDSA", COSE_ALG_EDDSA},
                {"ESP256", "ESP256", COSE_ALG_ESP256},
        };

        keypair("ESP256", "other.pem", "other.pub");
        write_payload("tc.bin", "Hello, Secure World!");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char priv[32], pub[32], env[32];
                _cleanup_free_ char *out = NULL;
                Opened o;
                Run r;

                snprintf(priv, sizeof(priv), "s%zu.pem", i);
                snprintf(pub, sizeof(pub), "s%zu.pub", i);
                snprintf(env, sizeof(env), "e%zu.suit", i);
                keypair(cases[i].keygen_alg, priv, pub);
                if (cases[i].alg)
                        r = manifest("create", "--key", path_in(dir, priv), "--component", TC, "--sequence",
                                     "7", "--payload", path_in(dir, "tc.bin"), "--alg", cases[i].alg,
                                     "--out", path_in(dir, env), NULL);
                else
                        r = manifest("create", "--key", path_in(dir, priv), "--component", TC, "--sequence",
                                     "7", "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, env),
                                     NULL);
                cr_assert_eq(r.status, 0, "%s: %s", cases[i].keygen_alg, r.err);
                run_done(&r);

                cr_assert_eq(inspect(path_in(dir, pub), path_in(dir, env), &out), 0,
                             "case %zu does not verify", i);
                cr_assert(contains(out, "\"verified\": true"), "%s", out);
                cr_assert_eq(inspect(path_in(dir, "other.pub"), path_in(dir, env), NULL), 77,
                             "case %zu: wrong key", i);

                o = open_envelope(path_in(dir, env));
                cr_assert_eq(envelope_headers(&o).alg, cases[i].want, "case %zu", i);
                cr_assert_eq(o.m->sequence_number, 7);
                opened_done(&o);
        }
}

Test(manifest, output_is_deterministic) {
        uint8_t *a = NULL, *b = NULL;
        TeepBuf x, y;

        keypair("ESP256", "k.pem", "k.pub");
        write_payload("tc.bin", "some trusted application");
        for (int i = 0; i < 2; i++)
                must(manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                              "--payload", path_in(dir, "tc.bin"), "--out",
                              path_in(dir, i ? "b.suit" : "a.suit"), NULL));
        x = file_read(path_in(dir, "a.suit"), &a);
        y = file_read(path_in(dir, "b.suit"), &b);
        cr_assert(teep_buf_eq(x, y), "two runs differ");
        free(b);
        /* and a different input does give different bytes */
        must(manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "2",
                      "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "b.suit"), NULL));
        y = file_read(path_in(dir, "b.suit"), &b);
        cr_assert(!teep_buf_eq(x, y));
        free(a);
        free(b);
}

/* The draft's inputs (App. E Ex. 1 and 2) give the draft's manifests byte for byte. */
Test(manifest, draft_inputs_give_the_draft_manifests) {
        static const struct {
                const char *vector;
                const char *uri;
        } cases[] = {
                {"draft-teep-protocol/suit_uri.hex",
                 "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta"},
                {"draft-teep-protocol/suit_integrated.hex", NULL},
        };
        char key[1024], tc_hex[1024];
        _cleanup_free_ uint8_t *tc = NULL;
        size_t tc_len = 0;
        uint8_t *raw = NULL;
        TeepBuf b;

        snprintf(key, sizeof(key), "%s/draft-teep-protocol/keys/suit_signer_p256_private.pem",
                 getenv("TEEP_VECTORS"));
        snprintf(tc_hex, sizeof(tc_hex),
                 "%s/draft-teep-protocol/tc_binary_8d82573a-926d-4754-9353-32dc29997f74.ta.hex",
                 getenv("TEEP_VECTORS"));
        b = file_read(tc_hex, &raw);
        cr_assert_eq(unhex((const char *)b.ptr, b.len, &tc, &tc_len), 0);
        free(raw);
        file_write(path_in(dir, "tc.bin"), tc, tc_len);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *vhex = NULL, *vbin = NULL;
                _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *want = NULL;
                size_t vlen = 0;
                Opened o;
                Run r;

                b = file_read(path_in(getenv("TEEP_VECTORS"), cases[i].vector), &vhex);
                cr_assert_eq(unhex((const char *)b.ptr, b.len, &vbin, &vlen), 0);
                cr_assert_eq(teep_suit_envelope_decode(TEEP_BUF(vbin, vlen), &want, NULL), 0);

                if (cases[i].uri)
                        r = manifest("create", "--key", key, "--component", TC, "--sequence", "3",
                                     "--payload", path_in(dir, "tc.bin"), "--uri", cases[i].uri, "--out",
                                     path_in(dir, "d.suit"), NULL);
                else
                        r = manifest("create", "--key", key, "--component", TC, "--sequence", "3",
                                     "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "d.suit"),
                                     NULL);
                cr_assert_eq(r.status, 0, "%s", r.err);
                run_done(&r);
                o = open_envelope(path_in(dir, "d.suit"));
                cr_assert(teep_buf_eq(o.env->manifest.wrapped, want->manifest.wrapped),
                          "%s: manifest differs", cases[i].vector);
                cr_assert(teep_buf_eq(o.env->digest_raw, want->digest_raw));
                cr_assert_eq(o.env->n_payloads, want->n_payloads);
                opened_done(&o);
        }
}

Test(manifest, uri_payload_carries_digest_and_size_but_not_the_bytes) {
        const char *payload = "a payload fetched over HTTP, not integrated";
        _cleanup_free_ char *out = NULL;
        uint8_t digest[32];
        Opened o;
        bool found_digest = false, found_uri = false;

        keypair("Ed25519", "k.pem", "k.pub");
        write_payload("tc.bin", payload);
        must(manifest("create", "--key", path_in(dir, "k.pem"), "--component",
                      "8d82573a-926d-4754-9353-32dc29997f74", "--sequence", "12", "--payload",
                      path_in(dir, "tc.bin"), "--uri", "http://127.0.0.1:1/payload/tc.bin", "--out",
                      path_in(dir, "u.suit"), NULL));
        cr_assert_eq(inspect(path_in(dir, "k.pub"), path_in(dir, "u.suit"), &out), 0);

        cr_assert_eq(teep_sha256(TEEP_BUF(payload, strlen(payload)), digest), 0);
        o = open_envelope(path_in(dir, "u.suit"));
        cr_assert_eq(o.env->n_payloads, 0, "the payload was integrated");
        cr_assert_eq(o.m->components[0].n_segments, 1);
        for (size_t i = 0; i < o.m->shared_sequence.n_commands; i++) {
                const TeepSuitParameters *p = o.m->shared_sequence.commands[i].params;
                if (p && teep_suit_parameters_has(p, SUIT_PARAM_IMAGE_DIGEST)) {
                        cr_assert(teep_buf_eq(p->image_digest.bytes, TEEP_BUF(digest, 32)));
                        cr_assert_eq(p->image_size, strlen(payload));
                        found_digest = true;
                }
        }
        for (size_t i = 0; i < o.m->install.n_commands; i++) {
                const TeepSuitParameters *p = o.m->install.commands[i].params;
                if (p && teep_suit_parameters_has(p, SUIT_PARAM_URI)) {
                        cr_assert(teep_buf_eq(p->uri, TEEP_BUF("http://127.0.0.1:1/payload/tc.bin", 33)));
                        found_uri = true;
                }
        }
        cr_assert(found_digest && found_uri);
        /* the default manifest id of a name not ending in /ta: the name plus /suit */
        cr_assert(o.m->has_manifest_component_id);
        cr_assert_eq(o.m->manifest_component_id.n_segments, 2);
        opened_done(&o);
}

Test(manifest, options_shape_the_manifest) {
        Opened o;
        TeepCoseHeaders h;

        keypair("ESP256", "k.pem", "k.pub");
        write_payload("tc.bin", "x");
        must(manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                      "--payload", path_in(dir, "tc.bin"), "--validate", "--no-uninstall",
                      "--no-manifest-id", "--vendor-id", "00112233-4455-6677-8899-aabbccddeeff",
                      "--class-id", "FFEEDDCC-BBAA-9988-7766-554433221100", "--kid", "0a0b0c", "--out",
                      path_in(dir, "o.suit"), NULL));
        cr_assert_eq(inspect(path_in(dir, "k.pub"), path_in(dir, "o.suit"), NULL), 0);
        o = open_envelope(path_in(dir, "o.suit"));
        cr_assert(o.m->validate.present);
        cr_assert(!o.m->uninstall.present);
        cr_assert(!o.m->has_manifest_component_id);
        cr_assert(teep_buf_eq(
                o.m->shared_sequence.commands[0].params->vendor_id,
                TEEP_BUF("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16)));
        cr_assert(teep_buf_eq(
                o.m->shared_sequence.commands[0].params->class_id,
                TEEP_BUF("\xff\xee\xdd\xcc\xbb\xaa\x99\x88\x77\x66\x55\x44\x33\x22\x11\x00", 16)));
        h = envelope_headers(&o);
        cr_assert(h.has_kid && teep_buf_eq(h.kid, TEEP_BUF("\x0a\x0b\x0c", 3)));
        opened_done(&o);

        must(manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                      "--payload", path_in(dir, "tc.bin"), "--kid", "none", "--manifest-id", "other/suit",
                      "--out", path_in(dir, "n.suit"), NULL));
        cr_assert_eq(inspect(path_in(dir, "k.pub"), path_in(dir, "n.suit"), NULL), 0);
        o = open_envelope(path_in(dir, "n.suit"));
        cr_assert(!envelope_headers(&o).has_kid);
        cr_assert_eq(o.m->manifest_component_id.n_segments, 2);
        cr_assert(teep_buf_eq(o.m->manifest_component_id.segments[0], TEEP_BUF("other", 5)));
        opened_done(&o);
}

Test(manifest, unlink_intent_verifies_and_unlinks) {
        Opened o;
        bool unlink = false;

        keypair("ESP256", "k.pem", "k.pub");
        keypair("ESP256", "w.pem", "w.pub");
        must(manifest("unlink", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "9",
                      "--out", path_in(dir, "d.suit"), NULL));
        cr_assert_eq(inspect(path_in(dir, "k.pub"), path_in(dir, "d.suit"), NULL), 0);
        cr_assert_eq(inspect(path_in(dir, "w.pub"), path_in(dir, "d.suit"), NULL), 77);
        o = open_envelope(path_in(dir, "d.suit"));
        cr_assert_eq(o.m->sequence_number, 9);
        cr_assert_eq(o.env->n_payloads, 0);
        for (size_t i = 0; i < o.m->install.n_commands; i++)
                unlink |= o.m->install.commands[i].label == SUIT_DIRECTIVE_UNLINK;
        cr_assert(unlink, "the install sequence does not unlink");
        cr_assert(o.m->has_manifest_component_id);
        opened_done(&o);
}

Test(manifest, errors_have_documented_exit_codes) {
        Run r;

        keypair("ESP256", "k.pem", "k.pub");
        write_payload("tc.bin", "x");
        /* not a component name */
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", "a//b", "--sequence", "1",
                     "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 64);
        cr_assert(contains(r.err, "component"), "%s", r.err);
        run_done(&r);
        /* missing payload file */
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                     "--payload", path_in(dir, "nope"), "--out", path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 66);
        run_done(&r);
        /* a public key cannot sign */
        r = manifest("create", "--key", path_in(dir, "k.pub"), "--component", TC, "--sequence", "1",
                     "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 65);
        run_done(&r);
        /* an algorithm that does not fit the key */
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                     "--payload", path_in(dir, "tc.bin"), "--alg", "Ed25519", "--out",
                     path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 64);
        run_done(&r);
        /* bad UUID, bad sequence, missing required options */
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "1",
                     "--payload", path_in(dir, "tc.bin"), "--vendor-id", "not-a-uuid", "--out",
                     path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 64);
        run_done(&r);
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--sequence", "-1",
                     "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 64);
        run_done(&r);
        r = manifest("create", "--key", path_in(dir, "k.pem"), "--component", TC, "--out",
                     path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 64);
        run_done(&r);
        /* a key file that is no key */
        r = manifest("create", "--key", path_in(dir, "tc.bin"), "--component", TC, "--sequence", "1",
                     "--payload", path_in(dir, "tc.bin"), "--out", path_in(dir, "x.suit"), NULL);
        cr_assert_eq(r.status, 65);
        run_done(&r);
        cr_assert(!file_exists(path_in(dir, "x.suit")), "a failed run left output behind");
        r = manifest("frobnicate", NULL);
        cr_assert_eq(r.status, 64);
        run_done(&r);
}
