/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam.c: see tam.h */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "crit-sign.h"
#include "devices.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "tam-util.h"
#include "tam.h"
#include "teep-eat.h"
#include "teep-message.h"
#include "teep-protocol.h"

typedef enum SessionState {
        SESSION_FREE,
        SESSION_QUERY_SENT,  /* waiting for the QueryResponse */
        SESSION_UPDATE_SENT, /* waiting for Success/Error */
} SessionState;

/* One thing an Update asked the device to do, recorded in the device state on Success. */
typedef struct TamItem {
        char *component; /* TC component name (the state key) */
        char *alias;     /* another name the device may use for it (manifest id), or NULL */
        uint64_t sequence;
        bool has_digest;
        uint8_t digest[32];
        bool removal;
} TamItem;

typedef struct TamSession {
        SessionState state;
        unsigned id;
        uint8_t token[TEEP_TOKEN_MAX];
        size_t token_len;
        bool has_challenge;
        uint8_t challenge[TAM_CHALLENGE_LEN];
        uint64_t deadline;
        char device[65];
        size_t n_items;
        TamItem *items;
} TamSession;

struct Tam {
        pthread_mutex_t lock;
        TeepKey *keys[TAM_MAX_KEYS];
        size_t n_keys;
        char *tc_dir, *payload_dir, *device_keys_dir, *state_dir;
        TamDeviceKeysCache device_keys; /* the keys of device_keys_dir, under lock */
        TamCatalogCache catalog;        /* the envelopes of tc_dir, under lock */
        char **revoked;
        size_t n_revoked;
        TamMode mode;
        bool legacy;
        uint64_t session_timeout_usec;
        TamFaults faults;
        TeepKey *fault_key;
        char *transcript_dir;
        unsigned n_received;
        uint8_t *extra_manifest;
        size_t extra_manifest_len;
        TamSession *sessions;
        unsigned next_id;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void session_clear(TamSession *s) {
        for (size_t i = 0; i < s->n_items; i++) {
                free(s->items[i].component);
                free(s->items[i].alias);
        }
        free(s->items);
        *s = (TamSession){};
}

int tam_new(TamConfig *c, Tam **ret) {
        Tam *t;

        if (!c || !ret || c->n_keys == 0 || c->n_keys > TAM_MAX_KEYS)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        t->sessions = calloc(TAM_MAX_SESSIONS, sizeof(TamSession));
        t->tc_dir = c->tc_dir ? strdup(c->tc_dir) : NULL;
        t->payload_dir = c->payload_dir ? strdup(c->payload_dir) : NULL;
        t->device_keys_dir = c->device_keys_dir ? strdup(c->device_keys_dir) : NULL;
        t->state_dir = c->state_dir ? strdup(c->state_dir) : NULL;
        t->transcript_dir = c->transcript_dir ? strdup(c->transcript_dir) : NULL;
        for (const char *const *r = c->revoked; r && *r; r++)
                t->n_revoked++;
        t->revoked = calloc(t->n_revoked + 1, sizeof(char *));
        if (!t->sessions || !t->revoked || (c->tc_dir && !t->tc_dir) ||
            (c->payload_dir && !t->payload_dir) || (c->device_keys_dir && !t->device_keys_dir) ||
            (c->state_dir && !t->state_dir) || (c->transcript_dir && !t->transcript_dir)) {
                tam_free(t);
                return -ENOMEM;
        }
        for (size_t i = 0; i < t->n_revoked; i++)
                if (!(t->revoked[i] = strdup(c->revoked[i]))) {
                        tam_free(t);
                        return -ENOMEM;
                }
        for (size_t i = 0; i < c->n_keys; i++)
                t->keys[i] = TAKE_PTR(c->keys[i]);
        t->n_keys = c->n_keys;
        t->mode = c->mode;
        t->legacy = c->legacy;
        t->session_timeout_usec =
                c->session_timeout_usec ?: (uint64_t)TAM_SESSION_TIMEOUT_DEFAULT_SEC * 1000000u;
        t->faults = c->faults;
        t->fault_key = TAKE_PTR(c->fault_key);
        if (c->extra_manifest) {
                int r = read_full_file(c->extra_manifest, TAM_CATALOG_MAX_ENVELOPE, &t->extra_manifest,
                                       &t->extra_manifest_len);
                if (r < 0) {
                        tam_free(t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

Tam *tam_free(Tam *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; t->sessions && i < TAM_MAX_SESSIONS; i++)
                session_clear(&t->sessions[i]);
        free(t->sessions);
        for (size_t i = 0; i < t->n_keys; i++)
                teep_key_free(t->keys[i]);
        for (size_t i = 0; t->revoked && i < t->n_revoked; i++)
                free(t->revoked[i]);
        free(t->revoked);
        free(t->tc_dir);
        tam_catalog_cache_done(&t->catalog);
        free(t->payload_dir);
        free(t->device_keys_dir);
        tam_device_keys_cache_done(&t->device_keys);
        free(t->state_dir);
        free(t->transcript_dir);
        free(t->extra_manifest);
        teep_key_free(t->fault_key);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}

void tam_reply_done(TamReply *r) {
        if (!r)
                return;
        free(r->body);
        *r = (TamReply){};
}

static void reply_status(TamReply *r, unsigned status) {
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        r->content_type = NULL;
        r->status = status;
}

static void reply_teep(TamReply *r, uint8_t *body, size_t len) {
        reply_status(r, 200);
        r->body = body;
        r->body_len = len;
        r->content_type = TEEP_MEDIA_TYPE;
}

void tam_counters(Tam *t, TamCounters *ret) {
        pthread_mutex_lock(&t->lock);
        *ret = (TamCounters){
                .catalog_loads = t->catalog.loads,
                .catalog_decodes = t->catalog.decodes,
                .device_key_loads = t->device_keys.loads,
        };
        pthread_mutex_unlock(&t->lock);
}

size_t tam_open_sessions(Tam *t) {
        size_t n = 0;

        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++)
                n += t->sessions[i].state != SESSION_FREE;
        pthread_mutex_unlock(&t->lock);
        return n;
}

static void sessions_expire(Tam *t) {
        uint64_t now = now_usec();

        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++) {
                TamSession *s = &t->sessions[i];
                if (s->state != SESSION_FREE && s->deadline < now) {
                        log_info("session=%u device=%.16s: expired while waiting for %s", s->id,
                                 s->device[0] ? s->device : "-",
                                 s->state == SESSION_QUERY_SENT ? "a QueryResponse" : "Success/Error");
                        session_clear(s);
                }
        }
}

static TamSession *session_new(Tam *t) {
        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++)
                if (t->sessions[i].state == SESSION_FREE) {
                        TamSession *s = &t->sessions[i];
                        *s = (TamSession){.id = ++t->next_id,
                                          .deadline = now_usec() + t->session_timeout_usec};
                        return s;
                }
        return NULL;
}

static TamSession *session_by_token(Tam *t, SessionState state, TeepBuf token) {
        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++) {
                TamSession *s = &t->sessions[i];
                if (s->state == state && teep_buf_eq(TEEP_BUF(s->token, s->token_len), token))
                        return s;
        }
        return NULL;
}

static TamSession *session_by_challenge(Tam *t, TeepBuf nonce) {
        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++) {
                TamSession *s = &t->sessions[i];
                if (s->state == SESSION_QUERY_SENT && s->has_challenge &&
                    teep_buf_eq(TEEP_BUF(s->challenge, sizeof(s->challenge)), nonce))
                        return s;
        }
        return NULL;
}

static TamSession *session_by_device(Tam *t, SessionState state, const char *device) {
        for (size_t i = 0; i < TAM_MAX_SESSIONS; i++) {
                TamSession *s = &t->sessions[i];
                if (s->state == state && strcmp(s->device, device) == 0)
                        return s;
        }
        return NULL;
}

/* ---- signing ---- */

static int64_t legacy_alg(TeepKeyType type) {
        return type == TEEP_KEY_P256 ? COSE_ALG_ES256 : COSE_ALG_EDDSA;
}

static bool alg_is_legacy(int64_t alg) {
        return alg == COSE_ALG_ES256 || alg == COSE_ALG_EDDSA;
}

/*
 * Sign payload for step. device_alg 0: the first message of a session (QueryRequest): one key
 * gives a COSE_Sign1, several a COSE_Sign with one signature each (unless --legacy). Otherwise
 * the key and algorithm follow the suite the device chose (its QueryResponse's alg), in the
 * legacy spelling when the device used it.
 */
static int sign_message(Tam *t, TeepBuf payload, TamStep step, int64_t device_alg, uint8_t **ret,
                        size_t *ret_len) {
        _cleanup_(teep_key_freep) TeepKey *rogue = NULL;
        TeepKey *key = t->keys[0];
        int64_t alg;
        int r;

        if (device_alg != 0) {
                TeepKeyType want = device_alg == COSE_ALG_ESP256 || device_alg == COSE_ALG_ES256
                                           ? TEEP_KEY_P256
                                           : TEEP_KEY_ED25519;
                for (size_t i = 0; i < t->n_keys; i++)
                        if (teep_key_type(t->keys[i]) == want) {
                                key = t->keys[i];
                                break;
                        }
        }
        alg = t->legacy || alg_is_legacy(device_alg) ? legacy_alg(teep_key_type(key))
                                                     : teep_key_default_alg(key);

        if (tam_fault_at(&t->faults, TAM_FAULT_UNTRUSTED_KEY, step)) {
                r = teep_key_generate(&rogue, teep_key_type(key));
                if (r < 0)
                        return r;
                key = rogue;
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_WRONG_ROLE_KEY, step)) {
                /* a key the device knows, in another role (the TC signer's): valid, but not a TAM's */
                if (!t->fault_key)
                        return -ENOKEY;
                key = t->fault_key;
                alg = teep_key_default_alg(key);
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_UNKNOWN_CRITICAL, step))
                r = tam_sign1_unknown_critical(key, alg, payload, ret, ret_len);
        else if (tam_fault_at(&t->faults, TAM_FAULT_UNKNOWN_ALG, step))
                r = tam_sign1_header_alg(key, -65000 /* private use: nobody implements it */, payload, ret,
                                         ret_len);
        else if (device_alg == 0 && t->n_keys > 1 && !t->legacy && !rogue &&
                 !tam_fault_at(&t->faults, TAM_FAULT_WRONG_ROLE_KEY, step) &&
                 !tam_fault_at(&t->faults, TAM_FAULT_MISSING_SIGNATURE, step) &&
                 !tam_fault_at(&t->faults, TAM_FAULT_WRONG_SIGNATURE, step))
                r = teep_cose_sign_multi(t->keys, t->n_keys, payload, ret, ret_len);
        else
                r = teep_cose_sign1(key, alg, NULL, payload, false, ret, ret_len);
        if (r < 0)
                return r;
        /* missing-signature: the trailing 64-byte signature (0x58 0x40 ...) becomes h'' (0x40) */
        if (tam_fault_at(&t->faults, TAM_FAULT_MISSING_SIGNATURE, step)) {
                if (*ret_len < 66 || (*ret)[*ret_len - 66] != 0x58 || (*ret)[*ret_len - 65] != 0x40)
                        return -EINVAL;
                *ret_len -= 65;
                (*ret)[*ret_len - 1] = 0x40;
                return 0;
        }
        /* The signature is the last byte string of a COSE_Sign1: its last byte is signature. */
        if (tam_fault_at(&t->faults, TAM_FAULT_WRONG_SIGNATURE, step))
                (*ret)[*ret_len - 1] ^= 0x01;
        return 0;
}

static char *hex_dup(const uint8_t *p, size_t n) {
        char *s = malloc(2 * n + 1);
        if (s)
                hexstr(p, n, s);
        return s;
}

/* ---- the empty POST: a new session and its QueryRequest ---- */

static void add_profiles(TeepMessage *m, bool legacy) {
        static const int64_t current[][4] = {
                {COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR},
                {COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR},
                {COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128GCM},
                {COSE_ALG_SHA256, COSE_ALG_ED25519, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_CHACHA20_POLY1305},
        };
        static const int64_t old[][4] = {
                {COSE_ALG_SHA256, COSE_ALG_ES256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR},
                {COSE_ALG_SHA256, COSE_ALG_EDDSA, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR},
        };

        if (legacy)
                for (size_t i = 0; i < ELEMENTSOF(old); i++)
                        (void)teep_message_add_suit_cose_profile(m, old[i], 4);
        else
                for (size_t i = 0; i < ELEMENTSOF(current); i++)
                        (void)teep_message_add_suit_cose_profile(m, current[i], 4);
}

static void start_session(Tam *t, TamReply *reply) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        _cleanup_free_ uint8_t *payload = NULL, *bad_challenge = NULL;
        size_t bad_challenge_len = 0;
        _cleanup_free_ char *token_hex = NULL;
        uint8_t *signed_msg = NULL;
        size_t payload_len = 0, signed_len = 0;
        TamSession *s;
        int r;

        s = session_new(t);
        if (!s) {
                log_warning("msg=connect decision=refused: %u sessions open", TAM_MAX_SESSIONS);
                return reply_status(reply, 503);
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_BAD_CHALLENGE, TAM_STEP_QUERY_REQUEST)) {
                bad_challenge_len = (size_t)t->faults.fault[TAM_FAULT_BAD_CHALLENGE].arg;
                bad_challenge = malloc(bad_challenge_len);
                if (!bad_challenge) {
                        session_clear(s);
                        return reply_status(reply, 500);
                }
        }
        s->token_len = TAM_TOKEN_LEN;
        r = tam_random_bytes(s->token, s->token_len);
        if (r >= 0 && t->mode == TAM_MODE_ATTESTATION) {
                s->has_challenge = true;
                r = tam_random_bytes(s->challenge, sizeof(s->challenge));
        }
        if (r >= 0)
                r = teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST);
        if (r < 0)
                goto fail;
        m->has_token = true;
        m->token = TEEP_BUF(s->token, s->token_len);
        if (s->has_challenge) {
                m->has_challenge = true;
                m->challenge = TEEP_BUF(s->challenge, sizeof(s->challenge));
        }
        if (bad_challenge) {
                /* a challenge the device cannot honour (too long for an EAT nonce, or too short) */
                r = tam_random_bytes(bad_challenge, bad_challenge_len);
                if (r < 0)
                        goto fail;
                m->has_challenge = true;
                m->challenge = TEEP_BUF(bad_challenge, bad_challenge_len);
        }
        r = teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0);
        if (r >= 0 && tam_fault_at(&t->faults, TAM_FAULT_UNSUPPORTED_SUITE, TAM_STEP_QUERY_REQUEST))
                /* only PS256 (RSASSA-PSS): a suite no teepkit device implements */
                r = teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, -37);
        for (size_t i = 0; r >= 0 && i < t->n_keys &&
                           !tam_fault_at(&t->faults, TAM_FAULT_UNSUPPORTED_SUITE, TAM_STEP_QUERY_REQUEST);
             i++) {
                TeepKeyType type = teep_key_type(t->keys[i]);
                r = teep_message_add_cipher_suite(
                        m, COSE_TAG_SIGN1, t->legacy ? legacy_alg(type) : teep_key_default_alg(t->keys[i]));
        }
        if (r < 0)
                goto fail;
        add_profiles(m, t->legacy);
        m->data_item_requested = TEEP_DATA_TRUSTED_COMPONENTS |
                                 (t->mode == TAM_MODE_ATTESTATION || bad_challenge ? TEEP_DATA_ATTESTATION : 0);
        r = teep_message_encode(m, &payload, &payload_len);
        if (r >= 0)
                r = sign_message(t, TEEP_BUF(payload, payload_len), TAM_STEP_QUERY_REQUEST, 0, &signed_msg,
                                 &signed_len);
        if (r < 0)
                goto fail;
        s->state = SESSION_QUERY_SENT;
        token_hex = hex_dup(s->token, s->token_len);
        log_info("session=%u device=- msg=connect decision=query-request mode=%s token=%s", s->id,
                 t->mode == TAM_MODE_ATTESTATION ? "attestation" : "token", token_hex ?: "?");
        return reply_teep(reply, signed_msg, signed_len);
fail:
        log_error("session=%u msg=connect decision=error: cannot build the QueryRequest: %s", s->id,
                  strerror(-r));
        session_clear(s);
        reply_status(reply, 500);
}

/* ---- attestation (the TAM acts as its own Verifier for the device's Evidence) ---- */

/*
 * Check the Evidence in a QueryResponse: an EAT signed (COSE_Sign1) by the same device key
 * that signed the message, TEEP profile claims, eat_nonce = the session's challenge (or, when
 * session is NULL, the challenge of any open session: *ret_session), cnf = the signing key.
 * Returns 0, or -EKEYREJECTED / -EBADMSG / -ESTALE with a reason in why.
 */
static int check_evidence(Tam *t, const TeepMessage *m, TeepKey *device_key, TamSession **session, char *why,
                          size_t why_size) {
        _cleanup_(teep_eat_freep) TeepEat *eat = NULL;
        TeepCoseMessage cose;
        TeepError err = {};
        uint8_t tp[32];
        int r;

        if (!m->has_attestation_payload || m->attestation_payload.len == 0) {
                snprintf(why, why_size, "no attestation-payload");
                return -EBADMSG;
        }
        r = teep_cose_decode(m->attestation_payload, &cose, &err);
        if (r >= 0 && (cose.kind != TEEP_COSE_SIGN1 || cose.payload_detached)) {
                snprintf(why, why_size, "attestation-payload is not a COSE_Sign1 with an attached EAT");
                return -EBADMSG;
        }
        if (r >= 0)
                r = teep_cose_verify(&cose, NULL, &device_key, 1, NULL, NULL, &err);
        if (r < 0) {
                snprintf(why, why_size, "EAT signature: %.80s (%s)",
                         err.detail[0] ? err.detail : strerror(-r), teep_reason_to_string(err.reason));
                return r;
        }
        r = teep_eat_decode_flags(cose.payload, t->legacy ? TEEP_EAT_DECODE_LEGACY_HWVERSION : 0, &eat,
                                  &err);
        if (r >= 0)
                r = teep_eat_validate_teep_profile(eat, &err);
        if (r < 0) {
                snprintf(why, why_size, "EAT claims: %.80s (%s)", err.detail[0] ? err.detail : strerror(-r),
                         teep_reason_to_string(err.reason));
                return r;
        }
        if (!eat->has_nonce) {
                snprintf(why, why_size, "EAT has no eat_nonce");
                return -EBADMSG;
        }
        if (!*session)
                *session = session_by_challenge(t, eat->nonce);
        if (!*session) {
                snprintf(why, why_size, "eat_nonce matches no open challenge");
                return -ESTALE;
        }
        if (!(*session)->has_challenge ||
            !teep_buf_eq(eat->nonce, TEEP_BUF((*session)->challenge, sizeof((*session)->challenge)))) {
                snprintf(why, why_size, "eat_nonce is not the challenge of this session");
                return -ESTALE;
        }

        r = teep_key_thumbprint(device_key, tp);
        if (r < 0)
                return r;
        if (eat->cnf_type == TEEP_EAT_CNF_KID) {
                if (!teep_buf_eq(eat->cnf_kid, TEEP_BUF(tp, sizeof(tp)))) {
                        snprintf(why, why_size,
                                 "cnf kid is not the thumbprint of the key that signed the message");
                        return -EKEYREJECTED;
                }
        } else if (eat->cnf_type == TEEP_EAT_CNF_COSE_KEY) {
                _cleanup_(teep_key_freep) TeepKey *cnf_key = NULL;
                uint8_t cnf_tp[32];

                if (teep_key_from_cose_key(&cnf_key, eat->cnf_cose_key, NULL) < 0 ||
                    teep_key_thumbprint(cnf_key, cnf_tp) < 0 || memcmp(cnf_tp, tp, sizeof(tp)) != 0) {
                        snprintf(why, why_size, "cnf COSE_Key is not the key that signed the message");
                        return -EKEYREJECTED;
                }
        } else {
                snprintf(why, why_size, "EAT has no cnf");
                return -EBADMSG;
        }
        return 0;
}

/* ---- the decision ---- */

typedef struct Plan {
        size_t n_manifests;
        const TamTc **manifests;
        size_t n_unneeded;
        const TeepSuitComponentId **unneeded;
        size_t n_items;
        TamItem *items;
} Plan;

static void plan_done(Plan *p) {
        for (size_t i = 0; i < p->n_items; i++) {
                free(p->items[i].component);
                free(p->items[i].alias);
        }
        free(p->items);
        free(p->manifests);
        free(p->unneeded);
        *p = (Plan){};
}

static int plan_item(Plan *p, const char *component, const char *alias, uint64_t seq, const uint8_t *digest,
                     bool removal) {
        TamItem *n = realloc(p->items, (p->n_items + 1) * sizeof(*n));
        TamItem *it;

        if (!n)
                return -ENOMEM;
        p->items = n;
        it = &p->items[p->n_items];
        *it = (TamItem){.sequence = seq, .removal = removal, .has_digest = digest != NULL};
        if (digest)
                memcpy(it->digest, digest, 32);
        it->component = strdup(component);
        it->alias = alias ? strdup(alias) : NULL;
        if (!it->component || (alias && !it->alias)) {
                free(it->component);
                free(it->alias);
                return -ENOMEM;
        }
        p->n_items++;
        return 0;
}

static bool plan_has_component(const Plan *p, const char *component) {
        for (size_t i = 0; i < p->n_items; i++)
                if (strcmp(p->items[i].component, component) == 0)
                        return true;
        return false;
}

static int plan_manifest(Plan *p, const TamTc *tc) {
        const TamTc **n;

        if (plan_has_component(p, tc->name))
                return 0;
        n = realloc(p->manifests, (p->n_manifests + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        p->manifests = n;
        p->manifests[p->n_manifests++] = tc;
        return plan_item(p, tc->name, tc->manifest_name, tc->sequence, tc->has_digest ? tc->digest : NULL,
                         tc->unlink);
}

static int plan_unneeded(Plan *p, const TeepSuitComponentId *id, const char *name, const char *alias) {
        const TeepSuitComponentId **n;

        if (plan_has_component(p, name))
                return 0;
        n = realloc(p->unneeded, (p->n_unneeded + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        p->unneeded = n;
        p->unneeded[p->n_unneeded++] = id;
        return plan_item(p, name, alias, 0, NULL, true);
}

static bool revoked_by_config(const Tam *t, const char *name) {
        for (size_t i = 0; name && i < t->n_revoked; i++)
                if (strcmp(t->revoked[i], name) == 0)
                        return true;
        return false;
}

static bool tc_revoked_by_config(const Tam *t, const TamTc *tc) {
        return tc && (revoked_by_config(t, tc->name) || revoked_by_config(t, tc->manifest_name));
}

/*
 * What the device gets:
 *   - each requested TC the TAM has (newest install envelope; not when its newest envelope
 *     is an unlink intent or the TAM revoked it, nor below a requested minimum sequence);
 *   - for each TC in its tc-list: the TAM's unlink intent if the newest envelope is one, a
 *     removal (unneeded-manifest-list) if the TAM revoked it, else the newest envelope when
 *     it is newer than what the device has (device state, or when the TAM has no record,
 *     an image digest in the tc-list entry that differs from the envelope's);
 *   - a removal for each manifest the device said it no longer needs.
 * With the rollback fault the oldest install envelope is offered instead, always.
 */
static int decide(Tam *t, const TeepMessage *m, const TamCatalog *cat, const TamDeviceState *state, Plan *p,
                  char *log_buf, size_t log_size) {
        bool rollback = tam_fault_at(&t->faults, TAM_FAULT_ROLLBACK, TAM_STEP_UPDATE);
        FILE *lf = fmemopen(log_buf, log_size, "w");
        int r = 0;

        if (lf)
                setvbuf(lf, NULL, _IONBF, 0);
        for (size_t i = 0; r >= 0 && i < m->n_requested_tc_list; i++) {
                const TeepRequestedTcInfo *rq = &m->requested_tc_list[i];
                const TamTc *newest = tam_catalog_newest(cat, &rq->component_id);
                const TamTc *tc = rollback ? tam_catalog_oldest(cat, &rq->component_id)
                                           : tam_catalog_newest_install(cat, &rq->component_id);
                _cleanup_free_ char *name = tam_component_name(&rq->component_id);

                if (!tc) {
                        if (lf)
                                fprintf(lf, " requested:%s=unavailable", name ?: "?");
                } else if (!rollback && (newest->unlink || tc_revoked_by_config(t, tc))) {
                        if (lf)
                                fprintf(lf, " requested:%s=revoked", name ?: "?");
                } else if (!rollback && rq->has_tc_manifest_sequence_number &&
                           tc->sequence < rq->tc_manifest_sequence_number) {
                        if (lf)
                                fprintf(lf, " requested:%s=too-old(%" PRIu64 "<%" PRIu64 ")", name ?: "?",
                                        tc->sequence, rq->tc_manifest_sequence_number);
                } else
                        r = plan_manifest(p, tc);
        }
        for (size_t i = 0; r >= 0 && i < m->n_tc_list; i++) {
                const TeepSystemPropertyClaims *e = &m->tc_list[i];
                const TamTc *newest = tam_catalog_newest(cat, &e->component_id);
                _cleanup_free_ char *name = tam_component_name(&e->component_id);
                const TamTc *tc;
                const TamInstalled *have;
                TeepBuf dev_digest = {};
                int64_t dev_alg = 0;
                bool offer;

                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                if (revoked_by_config(t, name) || tc_revoked_by_config(t, newest)) {
                        r = plan_unneeded(
                                p,
                                newest && newest->has_manifest_id ? &newest->manifest_id : &e->component_id,
                                newest ? newest->name : name, newest ? newest->manifest_name : NULL);
                        continue;
                }
                if (!newest)
                        continue; /* not a TC this TAM manages */
                if (newest->unlink && !rollback) {
                        r = plan_manifest(p, newest);
                        continue;
                }
                tc = rollback ? tam_catalog_oldest(cat, &e->component_id) : newest;
                if (!tc)
                        continue;
                have = tam_device_state_find(state, tc->name);
                if (rollback)
                        offer = true;
                else if (have)
                        offer = have->sequence < tc->sequence;
                else
                        offer = teep_claims_get_image_digest(e, &dev_alg, &dev_digest) >= 0 &&
                                tc->has_digest &&
                                !teep_buf_eq(dev_digest, TEEP_BUF(tc->digest, sizeof(tc->digest)));
                if (offer)
                        r = plan_manifest(p, tc);
        }
        for (size_t i = 0; r >= 0 && i < m->n_unneeded_manifest_list; i++) {
                const TeepSuitComponentId *id = &m->unneeded_manifest_list[i];
                const TamTc *tc = tam_catalog_newest(cat, id);
                _cleanup_free_ char *name = tam_component_name(id);

                if (!name)
                        r = -ENOMEM;
                else
                        r = plan_unneeded(p, id, tc ? tc->name : name, tc ? tc->manifest_name : name);
        }
        if (lf)
                fclose(lf);
        return r;
}

/* Copy an envelope with one byte of its integrated payload changed (digest-mismatch fault). */
static uint8_t *tamper_integrated(const TamTc *tc) {
        uint8_t *copy;

        if (!tc->has_integrated || tc->integrated_len == 0)
                return NULL;
        copy = malloc(tc->len);
        if (!copy)
                return NULL;
        memcpy(copy, tc->data, tc->len);
        copy[tc->integrated_offset + tc->integrated_len - 1] ^= 0x01;
        return copy;
}

static char *plan_summary(const Plan *p) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n_items; i++)
                fprintf(f, "%s%s:%s", i ? "," : "", p->items[i].removal ? "remove" : "install",
                        p->items[i].component);
        if (p->n_items == 0)
                fputs("-", f);
        fclose(f);
        return s;
}

/*
 * Build, sign and send the Update for plan p (or, with err_code, an Update that only reports
 * a problem). Moves the session to SESSION_UPDATE_SENT with the token Success/Error must carry.
 */
static void send_update(Tam *t, TamSession *s, Plan *p, int64_t device_alg, uint64_t err_code,
                        const char *err_msg, TamReply *reply) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        _cleanup_free_ uint8_t *payload = NULL, *stored = NULL;
        _cleanup_free_ char *summary = NULL;
        uint8_t **tampered = NULL;
        uint8_t wrong_token[TAM_TOKEN_LEN];
        uint8_t *signed_msg = NULL;
        size_t payload_len = 0, signed_len = 0, stored_len = 0, n_tampered = 0;
        bool replay = tam_fault_at(&t->faults, TAM_FAULT_REPLAY_UPDATE, TAM_STEP_UPDATE);
        int r;

        /* replay-update: the Update this device got last time, byte for byte */
        if (replay && err_code == 0 &&
            tam_device_last_update_load(t->state_dir, s->device, &stored, &stored_len) >= 0) {
                _cleanup_(teep_message_freep) TeepMessage *old = NULL;
                TeepCoseMessage cose;

                if (teep_cose_decode(TEEP_BUF(stored, stored_len), &cose, NULL) >= 0 &&
                    teep_message_decode(cose.payload, &old, NULL) >= 0 && old->has_token &&
                    old->token.len <= sizeof(s->token)) {
                        memcpy(s->token, old->token.ptr, old->token.len);
                        s->token_len = old->token.len;
                }
                s->state = SESSION_UPDATE_SENT;
                s->deadline = now_usec() + t->session_timeout_usec;
                log_info("session=%u device=%.16s msg=query-response decision=update fault=replay-update "
                         "(the previous Update, %zu bytes)",
                         s->id, s->device, stored_len);
                return reply_teep(reply, TAKE_PTR(stored), stored_len);
        }

        r = teep_message_new(&m, TEEP_TYPE_UPDATE);
        if (r < 0)
                goto fail;
        m->has_token = true;
        if (tam_fault_at(&t->faults, TAM_FAULT_WRONG_TOKEN, TAM_STEP_UPDATE)) {
                r = tam_random_bytes(wrong_token, sizeof(wrong_token));
                if (r < 0)
                        goto fail;
                memcpy(s->token, wrong_token, sizeof(wrong_token));
                s->token_len = sizeof(wrong_token);
        }
        m->token = TEEP_BUF(s->token, s->token_len);
        if (tam_fault_at(&t->faults, TAM_FAULT_MISSING_TOKEN, TAM_STEP_UPDATE))
                m->has_token = false;
        if (err_code != 0) {
                m->has_err_code = true;
                m->err_code = err_code;
                m->has_err_msg = true;
                m->err_msg = TEEP_BUF(err_msg, strnlen(err_msg, TEEP_MSG_MAX));
        }
        tampered = calloc(p->n_manifests + 1, sizeof(uint8_t *));
        if (!tampered) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < p->n_manifests; i++) {
                const TamTc *tc = p->manifests[i];
                TeepBuf env = TEEP_BUF(tc->data, tc->len);

                if (tam_fault_at(&t->faults, TAM_FAULT_DIGEST_MISMATCH, TAM_STEP_UPDATE) &&
                    tc->has_integrated) {
                        uint8_t *copy = tamper_integrated(tc);
                        if (copy) {
                                tampered[n_tampered++] = copy;
                                env = TEEP_BUF(copy, tc->len);
                        }
                }
                r = teep_message_add_buf(m, TEEP_LABEL_MANIFEST_LIST, env);
                if (r < 0)
                        goto fail;
        }
        if (t->extra_manifest && err_code == 0) {
                /* --extra-manifest: bytes the TAM itself could not even parse, sent as they are */
                r = teep_message_add_buf(m, TEEP_LABEL_MANIFEST_LIST,
                                         TEEP_BUF(t->extra_manifest, t->extra_manifest_len));
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < p->n_unneeded; i++) {
                r = teep_message_add_unneeded_manifest(m, p->unneeded[i]->segments,
                                                       p->unneeded[i]->n_segments);
                if (r < 0)
                        goto fail;
        }
        r = teep_message_encode(m, &payload, &payload_len);
        if (r >= 0)
                r = sign_message(t, TEEP_BUF(payload, payload_len), TAM_STEP_UPDATE, device_alg, &signed_msg,
                                 &signed_len);
        if (r < 0)
                goto fail;

        /* remember what Success will confirm */
        for (size_t i = 0; i < s->n_items; i++) {
                free(s->items[i].component);
                free(s->items[i].alias);
        }
        free(s->items);
        s->items = TAKE_PTR(p->items);
        s->n_items = p->n_items;
        p->n_items = 0;
        s->state = SESSION_UPDATE_SENT;
        s->deadline = now_usec() + t->session_timeout_usec;

        if (err_code == 0 && t->state_dir)
                (void)tam_device_last_update_save(t->state_dir, s->device, signed_msg, signed_len);

        summary = plan_summary(&(Plan){.items = s->items, .n_items = s->n_items});
        if (err_code != 0)
                log_info("session=%u device=%.16s msg=query-response decision=update err-code=%" PRIu64
                         " (%s): %s",
                         s->id, s->device, err_code, teep_err_code_to_string(err_code) ?: "?", err_msg);
        else
                log_info("session=%u device=%.16s msg=query-response decision=update %s%s%s", s->id,
                         s->device, summary ?: "?", n_tampered ? " fault=digest-mismatch" : "",
                         tam_fault_at(&t->faults, TAM_FAULT_WRONG_TOKEN, TAM_STEP_UPDATE)
                                 ? " fault=wrong-token"
                                 : "");
        reply_teep(reply, signed_msg, signed_len);
        goto out;
fail:
        log_error("session=%u device=%.16s msg=query-response decision=error: cannot build the Update: %s",
                  s->id, s->device, strerror(-r));
        session_clear(s);
        reply_status(reply, 500);
out:
        for (size_t i = 0; i < n_tampered; i++)
                free(tampered[i]);
        free(tampered);
}

static void on_query_response(Tam *t, const TeepMessage *m, TeepKey *device_key, const char *device,
                              int64_t device_alg, TamReply *reply) {
        const TamCatalog *cat = NULL; /* t->catalog's (under t->lock), until the next message */
        _cleanup_(tam_device_state_freep) TamDeviceState *state = NULL;
        TamSession *s = NULL;
        Plan plan = {};
        char why[160] = "", notes[1024] = "";
        int r, att = 0;

        if (m->has_token)
                s = session_by_token(t, SESSION_QUERY_SENT, m->token);
        if (t->mode == TAM_MODE_ATTESTATION && (s || !m->has_token))
                att = check_evidence(t, m, device_key, &s, why, sizeof(why));
        if (!s) {
                log_warning("session=- device=%.16s msg=query-response decision=refused: %s", device,
                            m->has_token
                                    ? "token is not one an open session waits for (unknown, used or expired)"
                            : why[0] ? why
                                     : "no token");
                return reply_status(reply, 403);
        }
        /* one-shot: whatever happens next, this token and challenge are spent */
        s->has_challenge = false;
        snprintf(s->device, sizeof(s->device), "%s", device);

        if (att < 0) {
                char msg[TEEP_MSG_MAX + 1];
                snprintf(msg, sizeof(msg), "attestation refused: %s", why);
                return send_update(t, s, &plan, device_alg, TEEP_ERR_ATTESTATION_REQUIRED, msg, reply);
        }

        r = tam_catalog_cached(t->tc_dir, &t->catalog, &cat);
        if (r >= 0)
                r = t->state_dir ? tam_device_state_load(t->state_dir, device, &state) : 0;
        if (r >= 0 && !state) {
                state = calloc(1, sizeof(*state));
                if (!state)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = decide(t, m, cat, state, &plan, notes, sizeof(notes));
        if (r < 0) {
                log_error("session=%u device=%.16s msg=query-response decision=error: %s", s->id, device,
                          strerror(-r));
                session_clear(s);
                plan_done(&plan);
                return reply_status(reply, 500);
        }
        if (plan.n_items == 0 && !t->extra_manifest) {
                log_info("session=%u device=%.16s msg=query-response decision=nothing-to-do tc-list=%zu "
                         "requested=%zu%s",
                         s->id, device, m->n_tc_list, m->n_requested_tc_list, notes);
                session_clear(s);
                plan_done(&plan);
                return reply_status(reply, 204);
        }
        if (notes[0])
                log_info("session=%u device=%.16s notes:%s", s->id, device, notes);
        send_update(t, s, &plan, device_alg, 0, NULL, reply);
        plan_done(&plan);
}

static void on_result(Tam *t, const TeepMessage *m, const char *device, TamReply *reply) {
        _cleanup_(tam_device_state_freep) TamDeviceState *state = NULL;
        _cleanup_free_ char *summary = NULL;
        const char *type = m->type == TEEP_TYPE_SUCCESS ? "success" : "error";
        TamSession *s = NULL;
        int r;

        if (m->has_token) {
                s = session_by_token(t, SESSION_UPDATE_SENT, m->token);
                /* an Error may also answer the QueryRequest itself */
                if (!s && m->type == TEEP_TYPE_ERROR)
                        s = session_by_token(t, SESSION_QUERY_SENT, m->token);
        } else
                s = session_by_device(t, SESSION_UPDATE_SENT, device);
        if (!s && m->type == TEEP_TYPE_ERROR) {
                /* An authenticated device gave up, e.g. on a QueryRequest it could not verify (it then
                 * sends no token, so as not to echo unauthenticated input): nothing to undo, the
                 * exchange is over. */
                log_info("session=- device=%.16s msg=error decision=end (no open session) err-code=%" PRIu64
                         " (%s) err-msg=\"%.*s\"",
                         device, m->err_code, teep_err_code_to_string(m->err_code) ?: "unknown",
                         m->has_err_msg ? (int)m->err_msg.len : 0,
                         m->has_err_msg ? (const char *)m->err_msg.ptr : "");
                return reply_status(reply, 204);
        }
        if (!s) {
                log_warning("session=- device=%.16s msg=%s decision=refused: no Update waits for this %s",
                            device, type, m->has_token ? "token" : "device");
                return reply_status(reply, 403);
        }
        if (s->device[0] && strcmp(s->device, device) != 0) {
                log_warning("session=%u device=%.16s msg=%s decision=refused: signed by another device than "
                            "%.16s",
                            s->id, device, type, s->device);
                return reply_status(reply, 403);
        }

        if (m->type == TEEP_TYPE_ERROR) {
                log_info("session=%u device=%.16s msg=error decision=end err-code=%" PRIu64
                         " (%s) err-msg=\"%.*s\"",
                         s->id, device, m->err_code, teep_err_code_to_string(m->err_code) ?: "unknown",
                         m->has_err_msg ? (int)m->err_msg.len : 0,
                         m->has_err_msg ? (const char *)m->err_msg.ptr : "");
                session_clear(s);
                return reply_status(reply, 204);
        }

        r = t->state_dir ? tam_device_state_load(t->state_dir, device, &state) : 0;
        if (r >= 0 && state) {
                for (size_t i = 0; i < s->n_items; i++) {
                        const TamItem *it = &s->items[i];
                        if (it->removal) {
                                tam_device_state_remove(state, it->component);
                                if (it->alias)
                                        tam_device_state_remove(state, it->alias);
                        } else if (tam_device_state_set(state, it->component, it->sequence,
                                                        it->has_digest ? it->digest : NULL) < 0)
                                r = -ENOMEM;
                }
                if (r >= 0)
                        r = tam_device_state_save(t->state_dir, state);
        }
        summary = plan_summary(&(Plan){.items = s->items, .n_items = s->n_items});
        if (r < 0)
                log_error("session=%u device=%.16s msg=success decision=end, but the device state was not "
                          "saved: %s",
                          s->id, device, strerror(-r));
        else
                log_info("session=%u device=%.16s msg=success decision=end recorded=%s", s->id, device,
                         summary ?: "?");
        session_clear(s);
        reply_status(reply, 204);
}

static void process_message(Tam *t, const uint8_t *body, size_t len, TamStep *step, TamReply *reply) {
        const TamDeviceKeys *keys = NULL; /* t->device_keys' (under t->lock) */
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        TeepCoseMessage cose;
        TeepError err = {};
        size_t key_index = 0, signer = 0;
        int64_t alg;
        int r;

        r = teep_cose_decode(TEEP_BUF(body, len), &cose, &err);
        if (r >= 0 && cose.payload_detached)
                r = teep_error_set(&err, -EBADMSG, TEEP_REASON_COSE_DETACHED, "detached payload");
        if (r >= 0) {
                err = (TeepError){};
                r = teep_message_decode(cose.payload, &m, &err);
        }
        if (r < 0) {
                log_warning("session=- device=- msg=? decision=refused (400): not a signed TEEP message: %s "
                            "(%s)",
                            err.detail[0] ? err.detail : strerror(-r), teep_reason_to_string(err.reason));
                return reply_status(reply, 400);
        }
        if (m->type == TEEP_TYPE_QUERY_RESPONSE)
                *step = TAM_STEP_UPDATE;
        else if (m->type == TEEP_TYPE_SUCCESS || m->type == TEEP_TYPE_ERROR)
                *step = TAM_STEP_END;
        else {
                log_warning("session=- device=- msg=%s decision=refused (400): not a message a device sends",
                            teep_message_type_to_string(m->type) ?: "?");
                return reply_status(reply, 400);
        }

        r = tam_device_keys_cached(t->device_keys_dir, &t->device_keys, &keys);
        if (r < 0) {
                log_error("Cannot load the device keys: %s", strerror(-r));
                return reply_status(reply, 500);
        }
        err = (TeepError){};
        r = teep_cose_verify(&cose, NULL, keys->keys, keys->n, &key_index, &signer, &err);
        if (r < 0) {
                log_warning("session=- device=unknown msg=%s decision=refused (403): no enrolled device key "
                            "verifies "
                            "it: %s (%s)",
                            teep_message_type_to_string(m->type), err.detail[0] ? err.detail : strerror(-r),
                            teep_reason_to_string(err.reason));
                return reply_status(reply, 403);
        }
        alg = cose.signers[signer].headers.alg;

        if (m->type == TEEP_TYPE_QUERY_RESPONSE &&
            tam_fault_at(&t->faults, TAM_FAULT_QUERY_LOOP, TAM_STEP_UPDATE)) {
                /* never an Update: ask again, and again */
                log_info("session=- device=%.16s msg=query-response decision=query-request fault=query-loop",
                         keys->thumbprints[key_index]);
                return start_session(t, reply);
        }
        if (m->type == TEEP_TYPE_QUERY_RESPONSE)
                on_query_response(t, m, keys->keys[key_index], keys->thumbprints[key_index], alg, reply);
        else
                on_result(t, m, keys->thumbprints[key_index], reply);
}

/* The faults that act on the HTTP answer rather than on the TEEP message. */
static void apply_http_faults(Tam *t, TamStep step, TamReply *reply) {
        if (tam_fault_at(&t->faults, TAM_FAULT_SLOW, step))
                reply->delay_sec = (unsigned)t->faults.fault[TAM_FAULT_SLOW].arg;
        if (tam_fault_at(&t->faults, TAM_FAULT_HTTP_500, step)) {
                log_info("fault=http-500 step=%s", tam_step_to_string(step));
                reply_status(reply, 500);
                return;
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_HTTP_STATUS, step)) {
                unsigned status = (unsigned)t->faults.fault[TAM_FAULT_HTTP_STATUS].arg;
                log_info("fault=http-status step=%s status=%u", tam_step_to_string(step), status);
                reply_status(reply, status);
                if (status >= 300 && status < 400)
                        reply->location = TAM_FAULT_REDIRECT_LOCATION;
                return;
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_NESTED_CBOR, step)) {
                size_t depth = (size_t)t->faults.fault[TAM_FAULT_NESTED_CBOR].arg;
                uint8_t *b = malloc(depth + 1);

                if (!b)
                        return reply_status(reply, 500);
                /* [[[[ ... 0 ... ]]]]: well-formed CBOR, nested far beyond any decoder's limit */
                memset(b, 0x81, depth);
                b[depth] = 0x00;
                reply_teep(reply, b, depth + 1);
                log_info("fault=nested-cbor step=%s depth=%zu", tam_step_to_string(step), depth);
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_OVERSIZED_BODY, step)) {
                size_t n = (size_t)t->faults.fault[TAM_FAULT_OVERSIZED_BODY].arg, head = 9;
                uint8_t *b = calloc(1, n);
                TeepCborWriter w;

                if (!b)
                        return reply_status(reply, 500);
                /* one well-formed byte string filling the body exactly: big, not malformed */
                for (size_t content = n - head;; content = n - head) {
                        size_t need = content < 24            ? 1
                                      : content < 256         ? 2
                                      : content < 65536       ? 3
                                      : content <= UINT32_MAX ? 5
                                                              : 9;
                        if (need == head)
                                break;
                        head = need;
                }
                teep_cbor_writer_init(&w);
                teep_cbor_put_bytes_head(&w, n - head);
                if (w.error == 0 && w.len == head)
                        memcpy(b, w.buf, head);
                teep_cbor_writer_reset(&w);
                reply_teep(reply, b, n);
                log_info("fault=oversized-body step=%s bytes=%zu", tam_step_to_string(step), n);
                return;
        }
        if (!reply->body || reply->body_len == 0)
                return;
        if (tam_fault_at(&t->faults, TAM_FAULT_TRUNCATED_CBOR, step)) {
                reply->body_len /= 2;
                log_info("fault=truncated-cbor step=%s bytes=%zu", tam_step_to_string(step),
                         reply->body_len);
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_TRUNCATED_BODY, step)) {
                reply->truncate = true;
                log_info("fault=truncated-body step=%s announced=%zu", tam_step_to_string(step),
                         reply->body_len);
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_WRONG_CONTENT_TYPE, step)) {
                reply->content_type = "text/html; charset=utf-8";
                log_info("fault=wrong-content-type step=%s", tam_step_to_string(step));
        }
        if (tam_fault_at(&t->faults, TAM_FAULT_SLOW_LORIS, step)) {
                reply->trickle_ms = (unsigned)t->faults.fault[TAM_FAULT_SLOW_LORIS].arg;
                log_info("fault=slow-loris step=%s bytes=%zu ms-per-byte=%u", tam_step_to_string(step),
                         reply->body_len, reply->trickle_ms);
        }
}

/* --transcript: keep what the device sent, one file per POST, in arrival order. */
static void transcript_write(Tam *t, const uint8_t *body, size_t len) {
        char path[4096];
        int r;

        if (!t->transcript_dir || len == 0)
                return;
        snprintf(path, sizeof(path), "%s/%06u.cbor", t->transcript_dir, ++t->n_received);
        r = tam_write_file_atomic(path, body, len, 0644, false);
        if (r < 0)
                log_warning("Cannot write the transcript file %s: %s", path, strerror(-r));
}

void tam_handle_post(Tam *t, const uint8_t *body, size_t len, TamReply *reply) {
        TamStep step = TAM_STEP_QUERY_REQUEST;

        *reply = (TamReply){};
        pthread_mutex_lock(&t->lock);
        transcript_write(t, body, len);
        sessions_expire(t);
        if (len == 0)
                start_session(t, reply);
        else
                process_message(t, body, len, &step, reply);
        apply_http_faults(t, step, reply);
        pthread_mutex_unlock(&t->lock);
}

static bool payload_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > 255 || name[0] == '.')
                return false;
        return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

void tam_handle_payload(Tam *t, const char *name, TamReply *reply) {
        _cleanup_free_ char *path = NULL;
        uint8_t *data = NULL;
        size_t len = 0;
        int r;

        *reply = (TamReply){};
        if (!t->payload_dir || !payload_name_valid(name)) {
                log_warning("msg=payload name=%s decision=not-found",
                            payload_name_valid(name) ? name : "(invalid)");
                return reply_status(reply, 404);
        }
        if (asprintf(&path, "%s/%s", t->payload_dir, name) < 0)
                return reply_status(reply, 500);
        r = read_full_file(path, TAM_PAYLOAD_MAX, &data, &len);
        if (r < 0) {
                log_warning("msg=payload name=%s decision=not-found: %s", name, strerror(-r));
                return reply_status(reply, r == -ENOENT || r == -EISDIR ? 404 : 500);
        }
        pthread_mutex_lock(&t->lock);
        if (tam_fault_at(&t->faults, TAM_FAULT_DIGEST_MISMATCH, TAM_STEP_PAYLOAD)) {
                if (len == 0)
                        data[len++] = 0; /* read_full_file leaves room for a NUL */
                else
                        data[len - 1] ^= 0x01;
                log_info("msg=payload name=%s decision=served bytes=%zu fault=digest-mismatch", name, len);
        } else
                log_info("msg=payload name=%s decision=served bytes=%zu", name, len);
        reply->status = 200;
        reply->body = data;
        reply->body_len = len;
        reply->content_type = "application/octet-stream";
        apply_http_faults(t, TAM_STEP_PAYLOAD, reply);
        pthread_mutex_unlock(&t->lock);
}
