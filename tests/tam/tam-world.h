/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-world.h: one TAM, one signer, one device, in a temporary directory (shared by the TAM tests) */
#pragma once

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "tam-test.h"
#include "teep-protocol.h"
#include "teep-suit.h"

#define TC_A          "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"
#define TC_A_MANIFEST "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit"
#define TC_B          "TEEP-Device/SecureFS/0b7b1c63-d2a4-4a3c-9a0f-4e0a5e2f7d11/ta"
#define TC_B_MANIFEST "TEEP-Device/SecureFS/0b7b1c63-d2a4-4a3c-9a0f-4e0a5e2f7d11/suit"

typedef struct World {
        char *dir;
        TeepKey *tam_key; /* the TAM's key (P-256 unless a test changes it) */
        TeepKey *signer;  /* the TC signer */
        TeepKey *device;  /* the device, enrolled */
        TamProc tam;
} World;

static World w;

static inline void world_setup(void) {
        w.dir = tmpdir_new("teep-tam-test");
        w.tam_key = key_new(TEEP_KEY_P256);
        w.signer = key_new(TEEP_KEY_P256);
        w.device = key_new(TEEP_KEY_P256);
        key_write_private(w.tam_key, path_in(w.dir, "tam.pem"));
        cr_assert_eq(mkdir(path_in(w.dir, "tcs"), 0755), 0);
        cr_assert_eq(mkdir(path_in(w.dir, "tcs/payloads"), 0755), 0);
        cr_assert_eq(mkdir(path_in(w.dir, "devices"), 0755), 0);
}

static inline void world_teardown(void) {
        int st = tam_stop(&w.tam);

        /*
         * teep-tam exits 0 on SIGTERM, and sanitizer reports in its log are bugs even when the
         * test passed. Criterion ignores assertions in .fini, but not a teardown that crashes:
         * abort() makes the executable (and so the meson test) fail, and keeps the directory.
         */
        if (w.tam.log[0]) {
                _cleanup_free_ char *log = tam_log(&w.tam);
                if (w.tam.bad_exits > 0 || contains(log, "runtime error:") || contains(log, "Sanitizer")) {
                        cr_log_error("teep-tam exited badly (last status %d) or a sanitizer spoke; %s:\n%s",
                                     st, w.dir, log);
                        abort();
                }
        }
        teep_key_free(w.tam_key);
        teep_key_free(w.signer);
        teep_key_free(w.device);
        tmpdir_remove(w.dir);
        w = (World){};
}

/* Enroll a device key: its public PEM in the devices directory. */
static inline void enroll(const TeepKey *device, const char *name) {
        char file[256];

        snprintf(file, sizeof(file), "devices/%s", name);
        key_write_public(device, path_in(w.dir, file));
}

/* Put an install envelope for component at sequence seq into the TC directory. */
static inline TeepBuf offer(const char *file, const char *component, uint64_t seq, const char *payload,
                            uint8_t **owned) {
        char name[256];
        TeepBuf env = envelope_install(w.signer, component, seq, NULL, payload, strlen(payload), owned);

        snprintf(name, sizeof(name), "tcs/%s", file);
        file_write(path_in(w.dir, name), env.ptr, env.len);
        return env;
}

/* Start the TAM with the world's directories plus extra args (NULL-terminated, may be NULL). */
static inline void world_start(const char *const *extra) {
        const char *args[40] = {
                "--key",         path_in(w.dir, "tam.pem"), "--tc-dir",    path_in(w.dir, "tcs"),
                "--device-keys", path_in(w.dir, "devices"), "--state-dir", path_in(w.dir, "state"),
        };
        size_t n = 8;
        char tam_pem[1024], tcs[1024], devices[1024], state[1024];

        /* path_in's ring is short: keep our own copies */
        snprintf(tam_pem, sizeof(tam_pem), "%s", args[1]);
        snprintf(tcs, sizeof(tcs), "%s", args[3]);
        snprintf(devices, sizeof(devices), "%s", args[5]);
        snprintf(state, sizeof(state), "%s", args[7]);
        args[1] = tam_pem;
        args[3] = tcs;
        args[5] = devices;
        args[7] = state;
        for (size_t i = 0; extra && extra[i]; i++) {
                cr_assert(n < ELEMENTSOF(args) - 1);
                args[n++] = extra[i];
        }
        args[n] = NULL;
        tam_start(&w.tam, w.dir, args);
}

/* A QueryResponse that answers qr (token echoed), with nothing else yet. */
static inline TeepMessage *query_response_for(const TeepMessage *qr) {
        TeepMessage *m = NULL;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_RESPONSE), 0);
        if (qr && qr->has_token) {
                m->has_token = true;
                m->token = qr->token;
        }
        return m;
}

static inline void request_tc(TeepMessage *m, const char *component, uint8_t **enc_owned) {
        TeepSuitComponentId id;
        size_t n = 0;

        cr_assert_eq(teep_suit_component_id_from_string(component, enc_owned, &n), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*enc_owned, n), &id, NULL), 0);
        cr_assert_eq(teep_message_add_requested_tc(m, id.segments, id.n_segments, NULL), 0);
}

/* A tc-list entry with image digest (the agent reports its installed TCs so). */
static inline void have_tc(TeepMessage *m, const char *component, const char *payload, uint8_t **enc_owned,
                           uint8_t **claim_owned) {
        TeepSystemPropertyClaims *c = NULL;
        TeepSuitComponentId id;
        TeepCborWriter cw, dw;
        uint8_t digest[32], *d = NULL;
        size_t n = 0, dn = 0;

        cr_assert_eq(teep_suit_component_id_from_string(component, enc_owned, &n), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*enc_owned, n), &id, NULL), 0);
        cr_assert_eq(teep_message_add_tc(m, id.segments, id.n_segments, &c), 0);
        cr_assert_eq(teep_sha256(TEEP_BUF(payload, strlen(payload)), digest), 0);
        teep_cbor_writer_init(&dw);
        teep_cbor_put_array(&dw, 2);
        teep_cbor_put_int(&dw, COSE_ALG_SHA256);
        teep_cbor_put_bytes(&dw, digest, 32);
        cr_assert_eq(teep_cbor_writer_finish(&dw, &d, &dn), 0);
        teep_cbor_writer_init(&cw);
        teep_cbor_put_bytes(&cw, d, dn);
        free(d);
        cr_assert_eq(teep_cbor_writer_finish(&cw, claim_owned, &n), 0);
        cr_assert_eq(teep_claims_add(c, TEEP_CLAIM_IMAGE_DIGEST, TEEP_BUF(*claim_owned, n)), 0);
}

static inline void unneeded_tc(TeepMessage *m, const char *manifest_id, uint8_t **enc_owned) {
        TeepSuitComponentId id;
        size_t n = 0;

        cr_assert_eq(teep_suit_component_id_from_string(manifest_id, enc_owned, &n), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*enc_owned, n), &id, NULL), 0);
        cr_assert_eq(teep_message_add_unneeded_manifest(m, id.segments, id.n_segments), 0);
}

/* Sign m with key and POST it. */
static inline Http post_signed(const TeepMessage *m, const TeepKey *key, int64_t alg) {
        _cleanup_free_ uint8_t *signed_msg = NULL;
        TeepBuf b = device_sign(m, key, alg, &signed_msg);

        return http_post(w.tam.url, b.ptr, b.len, TEEP_MEDIA_TYPE, NULL);
}

/* A Success (or Error with code) for an Update's token. */
static inline Http post_result(const TeepMessage *update, const TeepKey *key, uint64_t err_code) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;

        cr_assert_eq(teep_message_new(&m, err_code ? TEEP_TYPE_ERROR : TEEP_TYPE_SUCCESS), 0);
        if (update->has_token) {
                m->has_token = true;
                m->token = update->token;
        }
        if (err_code) {
                m->has_err_code = true;
                m->err_code = err_code;
        }
        return post_signed(m, key, 0);
}

static inline bool manifest_list_has(const TeepMessage *u, TeepBuf env) {
        for (size_t i = 0; i < u->n_manifest_list; i++)
                if (teep_buf_eq(u->manifest_list[i], env))
                        return true;
        return false;
}

/* The state file of a device, as text (empty string if none). */
static inline char *device_state(const TeepKey *device) {
        uint8_t tp[32], *d = NULL;
        char hex[65], name[128];
        size_t n = 0;

        cr_assert_eq(teep_key_thumbprint(device, tp), 0);
        for (size_t i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", tp[i]);
        snprintf(name, sizeof(name), "state/%s.state", hex);
        if (read_full_file(path_in(w.dir, name), 1u << 20, &d, &n) < 0)
                return strdup("");
        return (char *)d;
}
