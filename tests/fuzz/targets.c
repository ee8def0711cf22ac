/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* targets.c: one entry point per decoder, shared by the libFuzzer harnesses and the mutation test */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "requests.h"
#include "fuzz-agent.h"
#include "targets.h"
#include "teep-component.h"
#include "teep-cose.h"
#include "teep-eat.h"
#include "teep-encrypt.h"
#include "teep-message.h"
#include "teep-suit.h"

/* A finding: an invariant broke. abort() so libFuzzer, ASan and the replay test all see it. */
#define FUZZ_ASSERT(cond)                                                                      \
        do {                                                                                   \
                if (!(cond)) {                                                                 \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                               \
                }                                                                              \
        } while (0)

/* Fixed public keys the verify paths run with: the TAM P-256 key, an Ed25519 key, the SUIT signer. */
static const char *const key_hex[] = {
        "a4010220012158200e908aa8f066db1f084e0c3652c63952bd99f2a5bdb22f9e01367aad03aba68b22582077da1bd8"
        "ac4f0cb490ba210648bf79ab164d49ad3551d71d314b2749ee42d29a",
        "a301012006215820d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "a4010220012158208496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad2258203b1f2a4b"
        "6c098131c0a36dacd1d78bd381dcdfb09c052db33991db7338b4a896",
};
#define N_KEYS (sizeof(key_hex) / sizeof(key_hex[0]))
static TeepKey *keys[N_KEYS];

static void load_keys(void) {
        if (keys[0])
                return;
        for (size_t i = 0; i < N_KEYS; i++)
                FUZZ_ASSERT(teep_key_from_any(&keys[i], (const uint8_t *)key_hex[i], strlen(key_hex[i]), NULL) == 0);
}

void fuzz_targets_cleanup(void) {
        fuzz_targets_agent_cleanup();
        for (size_t i = 0; i < N_KEYS; i++)
                keys[i] = teep_key_free(keys[i]);
}

int fuzz_target_cbor(const uint8_t *data, size_t size) {
        TeepCborReader r;
        TeepBuf raw;
        int k;

        k = teep_cbor_check(TEEP_BUF(data, size), NULL, NULL);
        if (k < 0)
                return k;
        /* a checked input is exactly one item: skipping it lands on the end */
        teep_cbor_reader_init(&r, TEEP_BUF(data, size));
        FUZZ_ASSERT(teep_cbor_skip(&r, &raw) == 0);
        FUZZ_ASSERT(teep_cbor_reader_at_end(&r) && raw.len == size);
        return 0;
}

int fuzz_target_cose(const uint8_t *data, size_t size) {
        TeepCoseMessage msg;
        TeepError err = {};
        int k;

        load_keys();
        k = teep_cose_decode(TEEP_BUF(data, size), &msg, &err);
        if (k < 0)
                return k;
        FUZZ_ASSERT(msg.n_signers >= 1 && msg.n_signers <= TEEP_COSE_MAX_SIGNERS);
        return teep_cose_verify(&msg, msg.payload_detached ? &msg.payload : NULL, keys, N_KEYS, NULL, NULL, &err);
}

int fuzz_target_message(const uint8_t *data, size_t size) {
        TeepMessage *m = NULL, *m2 = NULL;
        uint8_t *enc = NULL, *enc2 = NULL;
        size_t len = 0, len2 = 0;
        int k;

        k = teep_message_decode(TEEP_BUF(data, size), &m, NULL);
        if (k < 0)
                return k;
        /* whatever we accept, we can re-encode, and the re-encoding is a fixed point */
        FUZZ_ASSERT(teep_message_encode(m, &enc, &len) == 0);
        FUZZ_ASSERT(teep_message_decode(TEEP_BUF(enc, len), &m2, NULL) == 0);
        FUZZ_ASSERT(teep_message_encode(m2, &enc2, &len2) == 0);
        FUZZ_ASSERT(len == len2 && memcmp(enc, enc2, len) == 0);
        free(enc);
        free(enc2);
        teep_message_free(m2);
        teep_message_free(m);
        return 0;
}

int fuzz_target_suit(const uint8_t *data, size_t size) {
        TeepSuitEnvelope *env = NULL;
        TeepSuitManifest *man = NULL;
        int k, v;

        load_keys();
        k = teep_suit_envelope_decode(TEEP_BUF(data, size), &env, NULL);
        if (k < 0)
                return k;
        v = teep_suit_envelope_verify(env, keys, N_KEYS, NULL, NULL);
        /* an unauthenticated envelope must never decode without the explicit flag */
        if (v < 0)
                FUZZ_ASSERT(teep_suit_manifest_decode(env, 0, &man, NULL) < 0 && !man);
        k = teep_suit_manifest_decode(env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &man, NULL);
        teep_suit_manifest_free(man);
        teep_suit_envelope_free(env);
        return k < 0 ? k : v;
}

int fuzz_target_eat(const uint8_t *data, size_t size) {
        TeepEat *eat = NULL, *eat2 = NULL;
        uint8_t *enc = NULL;
        size_t len = 0;
        int k;

        k = teep_eat_decode(TEEP_BUF(data, size), &eat, NULL);
        if (k < 0)
                return k;
        (void)teep_eat_validate_teep_profile(eat, NULL);
        FUZZ_ASSERT(teep_eat_encode(eat, &enc, &len) == 0);
        FUZZ_ASSERT(teep_eat_decode(TEEP_BUF(enc, len), &eat2, NULL) == 0);
        free(enc);
        teep_eat_free(eat2);
        teep_eat_free(eat);
        return 0;
}

int fuzz_target_component(const uint8_t *data, size_t size) {
        TeepSuitComponentId id;
        char *text = NULL, *s;
        uint8_t *enc = NULL;
        size_t len = 0;
        int k;

        /* bytes → identifier → name → bytes must be the identity */
        k = teep_suit_component_id_decode(TEEP_BUF(data, size), &id, NULL);
        if (k >= 0 && teep_suit_component_id_to_string(id.segments, id.n_segments, &text) >= 0) {
                TeepSuitComponentId back;
                FUZZ_ASSERT(teep_suit_component_id_from_string(text, &enc, &len) == 0);
                FUZZ_ASSERT(teep_suit_component_id_decode(TEEP_BUF(enc, len), &back, NULL) == 0);
                FUZZ_ASSERT(teep_suit_component_id_equal(&id, &back));
                free(enc);
                enc = NULL;
                free(text);
        }

        /* name → bytes → name must be the identity too */
        s = strndup((const char *)data, size);
        if (!s)
                return -ENOMEM;
        if (teep_suit_component_id_from_string(s, &enc, &len) == 0) {
                FUZZ_ASSERT(teep_suit_component_id_decode(TEEP_BUF(enc, len), &id, NULL) == 0);
                FUZZ_ASSERT(teep_suit_component_id_to_string(id.segments, id.n_segments, &text) == 0);
                FUZZ_ASSERT(strcmp(text, s) == 0);
                free(text);
                free(enc);
        }
        free(s);
        return k;
}

int fuzz_target_key(const uint8_t *data, size_t size) {
        TeepKey *key = NULL;
        uint8_t *cose = NULL;
        size_t len;
        int k;

        k = teep_key_from_any(&key, data, size, NULL);
        if (k < 0)
                return k;
        /* a key we accept exports to a COSE_Key we accept again */
        FUZZ_ASSERT(teep_key_export_cose(key, &cose, &len) == 0);
        {
                TeepKey *again = NULL;
                FUZZ_ASSERT(teep_key_from_cose_key(&again, TEEP_BUF(cose, len), NULL) == 0);
                teep_key_free(again);
        }
        free(cose);
        teep_key_free(key);
        return 0;
}

/* requests.d declarations: whatever parses holds only valid names and URIs, within the limits. */
int fuzz_target_requests(const uint8_t *data, size_t size) {
        TeepRequests r = {};
        char err[256];
        int k;

        k = teep_requests_parse("fuzz.conf", (const char *)data, size, &r, err, sizeof(err));
        if (k < 0) {
                FUZZ_ASSERT(strncmp(err, "fuzz.conf", 9) == 0);
                return k;
        }
        FUZZ_ASSERT(r.n_items <= TEEP_REQUESTS_MAX_COMPONENTS);
        for (size_t i = 0; i < r.n_items; i++) {
                FUZZ_ASSERT(r.items[i].component && r.items[i].n_tam_uris >= 1 &&
                            r.items[i].n_tam_uris <= TEEP_REQUESTS_MAX_TAMS);
                for (size_t j = 0; j < r.items[i].n_tam_uris; j++)
                        FUZZ_ASSERT(teep_requests_tam_uri_is_valid(r.items[i].tam_uris[j]));
                FUZZ_ASSERT(!r.items[i].tam_uris[r.items[i].n_tam_uris]);
        }
        teep_requests_done(&r);
        return 0;
}

/* teepkit.conf: parse, then read back every section's keys; values never escape their line. */
int fuzz_target_conf(const uint8_t *data, size_t size) {
        TeepConf *c = NULL;
        char *text, err[256];
        int k;

        text = strndup((const char *)data, size);
        if (!text)
                return -ENOMEM;
        k = teep_conf_load_string(text, "fuzz.conf", &c, err, sizeof(err));
        free(text);
        if (k < 0)
                return k;
        for (const char *const *sec = (const char *const[]){ "Agent", "TAM", "Broker", "Installer", NULL }; *sec; sec++)
                for (const TeepConfSection *s = teep_conf_sections(c, *sec, NULL); s; s = teep_conf_sections(c, *sec, s)) {
                        const char **list = NULL;
                        const char *v = teep_conf_section_get(s, "URI");
                        uint64_t u;
                        FUZZ_ASSERT(!v || !strchr(v, '\n'));
                        k = teep_conf_section_get_list(s, "TrustAnchor", &list);
                        FUZZ_ASSERT(k >= 0 && list && !list[k]);
                        free(list);
                        (void)teep_conf_get_size(c, *sec, "MaxPayloadSize", &u, err, sizeof(err));
                        (void)teep_conf_get_usec(c, *sec, "TimeoutSec", &u, err, sizeof(err));
                }
        teep_conf_free(c);
        return 0;
}

/* encryption-info (SUIT parameter 19), then key agreement with a fixed device key and the
 * decryption of a short ciphertext: hostile headers, ephemeral keys and wrapped keys. */
int fuzz_target_encrypt(const uint8_t *data, size_t size) {
        static const char kek_hex[] =
                "a5010220012158205886cd61dd875862e5aaa820e7a15274c968a9bc96048ddcace32f50c3651ba32258209eed8125e932cd60"
                "c0ead3650d0a485cf726d378d1b016ed4298b2961e258f1b23582060fe6dd6d85d5740a5349b6f91267eeac5ba81b8cb53ee249e"
                "4b4eb102c476b3";
        static TeepKey *kek;
        static const uint8_t ct[40];
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        uint8_t out[sizeof(ct) + 16];
        size_t n = 0;
        int k;

        if (!kek)
                FUZZ_ASSERT(teep_key_from_any(&kek, (const uint8_t *)kek_hex, strlen(kek_hex), NULL) == 0);
        k = teep_encryption_info_decode(TEEP_BUF(data, size), &info, NULL);
        if (k < 0)
                return k;
        FUZZ_ASSERT(info.n_recipients >= 1 && info.n_recipients <= TEEP_ENC_MAX_RECIPIENTS);
        k = teep_decryptor_new(&d, &info, kek, sizeof(ct), NULL);
        if (k < 0)
                return k;
        k = teep_decryptor_update(d, ct, sizeof(ct), out, &n, NULL);
        FUZZ_ASSERT(k == 0 && n <= sizeof(ct));
        k = teep_decryptor_finish(d, out + n, &n, NULL);
        teep_decryptor_free(d);
        return k;
}

const FuzzTarget fuzz_targets[] = {
        { "cbor", fuzz_target_cbor },
        { "cose", fuzz_target_cose },
        { "message", fuzz_target_message },
        { "suit", fuzz_target_suit },
        { "eat", fuzz_target_eat },
        { "component", fuzz_target_component },
        { "key", fuzz_target_key },
        { "conf", fuzz_target_conf },
        { "requests", fuzz_target_requests },
        { "state", fuzz_target_state },
        { "encrypt", fuzz_target_encrypt },
};
const size_t fuzz_targets_count = sizeof(fuzz_targets) / sizeof(fuzz_targets[0]);

/* The agent's whole message path: milliseconds per input (signatures), so not part of the
 * table the mutation test runs 400,000 inputs through; their own corpus replays them. */
const FuzzTarget fuzz_targets_whole[] = {
        { "agent", fuzz_target_agent },
        { "agent-resign", fuzz_target_agent_resign },
};
const size_t fuzz_targets_whole_count = sizeof(fuzz_targets_whole) / sizeof(fuzz_targets_whole[0]);
