/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* query.c: QueryRequest → QueryResponse (negotiation, TC lists, the EAT evidence) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent-internal.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-eat.h"

/*
 * CoAP Content-Formats for the EAT manifests claim (272). No Content-Format is registered for
 * application/suit-envelope+cose that we could cite, so an installed TC's manifest goes as
 * 60 (application/cbor) holding the envelope without its integrated payloads; the agent
 * itself is named by a text entry (0, text/plain; charset=utf-8).
 */
#define CF_TEXT_PLAIN 0
#define CF_CBOR 60

/* Buffers whose views a TeepMessage or TeepEat holds until it is encoded. */
typedef struct Arena {
        void **p;
        size_t n;
} Arena;

static void *arena_keep(Arena *ar, void *p) {
        void **np;
        if (!p)
                return NULL;
        np = reallocarray(ar->p, ar->n + 1, sizeof(void *));
        if (!np) {
                free(p);
                return NULL;
        }
        ar->p = np;
        ar->p[ar->n++] = p;
        return p;
}

static void arena_done(Arena *ar) {
        for (size_t i = 0; i < ar->n; i++)
                free(ar->p[i]);
        free(ar->p);
        *ar = (Arena){};
}

/* A textual component name as views (segments) kept alive in the arena. */
static int component_views(Arena *ar, const char *name, TeepSuitComponentId *ret) {
        uint8_t *enc = NULL;
        size_t len = 0;
        int r;

        r = teep_suit_component_id_from_string(name, &enc, &len);
        if (r < 0)
                return r;
        if (!arena_keep(ar, enc))
                return -ENOMEM;
        return teep_suit_component_id_decode(TEEP_BUF(enc, len), ret, NULL);
}

/* Finish w into a buffer the arena owns. */
static int arena_finish(Arena *ar, TeepCborWriter *w, TeepBuf *ret) {
        uint8_t *out = NULL;
        size_t len = 0;
        int r;

        r = teep_cbor_writer_finish(w, &out, &len);
        if (r < 0)
                return r;
        if (!arena_keep(ar, out))
                return -ENOMEM;
        *ret = TEEP_BUF(out, len);
        return 0;
}

/* bstr .cbor [-16, h'digest'] */
static int encode_image_digest(Arena *ar, const uint8_t sha[32], TeepBuf *ret) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_bytes_head(&w, 36);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_int(&w, COSE_ALG_SHA256);
        teep_cbor_put_bytes(&w, sha, 32);
        return arena_finish(ar, &w, ret);
}

static int encode_uint(Arena *ar, uint64_t v, TeepBuf *ret) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_cbor_put_uint(&w, v);
        return arena_finish(ar, &w, ret);
}

static int build_eat(Agent *a, size_t tam, int64_t alg, TeepBuf nonce, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *claims = NULL;
        _cleanup_free_ char *agent_id = NULL;
        Arena ar = {};
        TeepEat e = {};
        uint8_t ueid[33];
        size_t claims_len = 0;
        TeepBuf kid = agent_kid_for(a, tam);
        int r = 0;

        if (nonce.len > 0) {
                e.has_nonce = true;
                e.nonce = nonce;
        }
        /* ueid type 0x01 (RAND): the device key's thumbprint is random, stable and unique */
        ueid[0] = 0x01;
        memcpy(ueid + 1, a->device_kid, 32);
        e.has_ueid = true;
        e.ueid = TEEP_BUF(ueid, sizeof(ueid));
        if (a->oemid_is_pen) {
                e.oemid_type = TEEP_EAT_OEMID_PEN;
                e.oemid_pen = a->oemid_pen;
        } else {
                e.oemid_type = a->oemid_len == TEEP_EAT_OEMID_IEEE_LEN ? TEEP_EAT_OEMID_IEEE : TEEP_EAT_OEMID_RANDOM;
                e.oemid = TEEP_BUF(a->oemid, a->oemid_len);
        }
        e.has_hwmodel = true;
        e.hwmodel = TEEP_BUF(a->hwmodel, strlen(a->hwmodel));
        e.has_hwversion = true;
        e.hwversion.version = TEEP_BUF(a->hwversion, strlen(a->hwversion));
        e.profile_type = TEEP_EAT_PROFILE_URI;
        e.profile = TEEP_BUF(TEEP_EAT_PROFILE_TEEP, strlen(TEEP_EAT_PROFILE_TEEP));
        e.cnf_type = TEEP_EAT_CNF_KID;
        e.cnf_kid = TEEP_BUF(a->device_kid, sizeof(a->device_kid));
        e.has_iat = true;
        e.iat = (int64_t)time(NULL);

        if (asprintf(&agent_id, "teep-agentd %s", PACKAGE_VERSION) < 0)
                return -ENOMEM;
        e.manifests[e.n_manifests++] = (TeepEatManifest){ .content_format = CF_TEXT_PLAIN,
                                                          .body = TEEP_BUF(agent_id, strlen(agent_id)) };
        for (size_t i = 0; i < a->state.n_tcs && e.n_manifests < TEEP_EAT_MAX_MANIFESTS; i++) {
                char name[80], hex[65];
                uint8_t *data = NULL;
                size_t len = 0;

                (void)snprintf(name, sizeof(name), "manifests/%s.suit", hexstr(a->state.tcs[i].manifest_hash, 32, hex));
                r = read_file_at(a->state_fd, name, 1024 * 1024, &data, &len);
                if (r < 0) {
                        log_warning("manifest of %s not readable (%s): left out of the evidence", a->state.tcs[i].component,
                                    strerror(-r));
                        r = 0;
                        continue;
                }
                if (!arena_keep(&ar, data)) {
                        r = -ENOMEM;
                        break;
                }
                e.manifests[e.n_manifests++] = (TeepEatManifest){ .content_format = CF_CBOR, .body = TEEP_BUF(data, len) };
        }
        if (r >= 0)
                r = teep_eat_encode(&e, &claims, &claims_len);
        if (r >= 0)
                r = teep_cose_sign1(a->device_key, alg, &kid, TEEP_BUF(claims, claims_len), false, ret, ret_len);
        arena_done(&ar);
        return r;
}

static bool list_has_u32(const uint32_t *l, size_t n, uint32_t v) {
        for (size_t i = 0; i < n; i++)
                if (l[i] == v)
                        return true;
        return false;
}

static AgentExchange *exchange_slot(Agent *a) {
        AgentExchange *oldest = &a->exchanges[0];
        uint64_t now = agent_now_usec();

        for (size_t i = 0; i < AGENT_MAX_EXCHANGES; i++) {
                AgentExchange *x = &a->exchanges[i];
                if (x->used && now - x->created_usec > AGENT_EXCHANGE_LIFETIME_USEC) {
                        free(x->tam_uri);
                        *x = (AgentExchange){};
                }
                if (!x->used)
                        return x;
                if (x->created_usec < oldest->created_usec)
                        oldest = x;
        }
        free(oldest->tam_uri);
        *oldest = (AgentExchange){};
        return oldest;
}

static int remember_exchange(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t alg) {
        AgentExchange *x = exchange_slot(a);

        x->tam_uri = strdup(tam_uri ?: "");
        if (!x->tam_uri)
                return -ENOMEM;
        x->used = true;
        x->tam = tam;
        x->alg = alg;
        x->created_usec = agent_now_usec();
        if (m->has_token) {
                x->has_token = true;
                memcpy(x->token, m->token.ptr, m->token.len);
                x->token_len = m->token.len;
        }
        return 0;
}

int agent_handle_query_request(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t tam_alg,
                               uint8_t **ret, size_t *ret_len) {
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        _cleanup_free_ uint8_t *eat = NULL;
        _cleanup_free_ const char **wanted = NULL;
        size_t n_wanted = 0;
        const TeepBuf *token = m->has_token ? &m->token : NULL;
        const char *fail = NULL;
        uint64_t code = 0;
        int64_t selected = 0;
        size_t eat_len = 0;
        Arena ar = {};
        int r = 0;

        /* 1. version: absent means [0]; 0 is the only one we speak */
        if (m->has_versions && !list_has_u32(m->versions, m->n_versions, 0)) {
                code = TEEP_ERR_UNSUPPORTED_MSG_VERSION;
                fail = "no common protocol version";
        }
        /* 2. cipher suite: the TAM's first one our key can sign; a legacy id (-7/-8) only when
         *    that is what the TAM offers, and then we sign with that id */
        for (size_t i = 0; !code && i < m->n_supported_cipher_suites && !selected; i++) {
                const TeepCipherSuite *s = &m->supported_cipher_suites[i];
                if (s->n_ops == 1 && s->ops[0].cose_tag == COSE_TAG_SIGN1 && teep_key_supports_alg(a->device_key, s->ops[0].alg))
                        selected = s->ops[0].alg;
        }
        /*    [TAM] Suite= wins over the TAM's order when the TAM offers it too */
        for (size_t i = 0; selected && tam < a->cfg.n_tams && a->cfg.tams[tam].suite &&
                           i < m->n_supported_cipher_suites; i++) {
                const TeepCipherSuite *s = &m->supported_cipher_suites[i];
                if (s->n_ops == 1 && s->ops[0].cose_tag == COSE_TAG_SIGN1 && s->ops[0].alg == a->cfg.tams[tam].suite &&
                    teep_key_supports_alg(a->device_key, s->ops[0].alg))
                        selected = s->ops[0].alg;
        }
        if (!code && !selected) {
                code = TEEP_ERR_UNSUPPORTED_CIPHER_SUITES;
                fail = "no common cipher suite";
        }
        /* 3. freshness: we implement nonces only */
        if (!code && m->has_supported_freshness_mechanisms) {
                bool nonce = false;
                for (size_t i = 0; i < m->n_supported_freshness_mechanisms; i++)
                        nonce = nonce || m->supported_freshness_mechanisms[i] == TEEP_FRESHNESS_NONCE;
                if (!nonce) {
                        code = TEEP_ERR_UNSUPPORTED_FRESHNESS_MECHANISMS;
                        fail = "no common freshness mechanism";
                }
        }
        /* 4. the EAT nonce is at most 64 bytes; a longer challenge cannot be honoured */
        if (!code && (m->data_item_requested & TEEP_DATA_ATTESTATION) && m->has_challenge &&
            m->challenge.len > TEEP_EAT_NONCE_MAX) {
                code = TEEP_ERR_PERMANENT_ERROR;
                fail = "challenge longer than 64 bytes";
        }
        if (code) {
                log_info("TAM %s: query-request → error %s (%s)", tam_uri ?: "-", teep_err_code_to_string(code), fail);
                r = agent_build_error(a, tam, selected, token, code, fail, NULL, 0, ret, ret_len);
                return r < 0 ? r : 0;
        }

        r = teep_message_new(&resp, TEEP_TYPE_QUERY_RESPONSE);
        if (r < 0)
                return r;
        if (token) {
                resp->has_token = true;
                resp->token = *token;
        }
        resp->has_selected_version = true;
        resp->selected_version = 0;

        if (m->data_item_requested & TEEP_DATA_ATTESTATION) {
                /* background-check model: the challenge; passport model (no challenge): the token */
                TeepBuf nonce = m->has_challenge ? m->challenge : token ? *token : TEEP_BUF_NULL;
                r = build_eat(a, tam, selected, nonce, &eat, &eat_len);
                if (r < 0)
                        goto out;
                resp->has_attestation_payload = true;
                resp->attestation_payload = TEEP_BUF(eat, eat_len);
                resp->has_attestation_payload_format = true;
                resp->attestation_payload_format = TEEP_BUF(AGENT_ATTESTATION_FORMAT, strlen(AGENT_ATTESTATION_FORMAT));
        }
        if (m->data_item_requested & TEEP_DATA_TRUSTED_COMPONENTS) {
                resp->has_tc_list = true; /* an empty list is omitted by the encoder (protocol-decisions Q9) */
                for (size_t i = 0; i < a->state.n_tcs && r >= 0; i++) {
                        const AgentTc *tc = &a->state.tcs[i];
                        TeepSuitComponentId id;
                        TeepSystemPropertyClaims *c = NULL;
                        TeepBuf digest, size;

                        r = component_views(&ar, tc->component, &id);
                        if (r >= 0)
                                r = teep_message_add_tc(resp, id.segments, id.n_segments, &c);
                        if (r >= 0)
                                r = encode_image_digest(&ar, tc->sha256, &digest);
                        if (r >= 0)
                                r = teep_claims_add(c, TEEP_CLAIM_IMAGE_DIGEST, digest);
                        if (r >= 0)
                                r = encode_uint(&ar, tc->size, &size);
                        if (r >= 0)
                                r = teep_claims_add(c, 14 /* suit-parameter-image-size */, size);
                }
                if (r < 0)
                        goto out;
        }
        /* requested-tc-list: wanted, not installed (with the sequence number floor we know) */
        r = agent_state_wanted(&a->state, &wanted, &n_wanted);
        for (size_t i = 0; i < n_wanted && r >= 0; i++) {
                const char *c = wanted[i];
                TeepSuitComponentId id;
                TeepRequestedTcInfo *info = NULL;
                bool seen = false;
                uint64_t seq;

                r = component_views(&ar, c, &id);
                if (r >= 0)
                        r = teep_message_add_requested_tc(resp, id.segments, id.n_segments, &info);
                seq = agent_state_seen_seq(&a->state, c, &seen);
                if (r >= 0 && seen) {
                        info->has_tc_manifest_sequence_number = true;
                        info->tc_manifest_sequence_number = seq;
                }
        }
        /* unneeded-manifest-list: the manifest ids of installed TCs nobody needs any more */
        for (size_t i = 0; i < a->state.n_unneeded && r >= 0; i++) {
                ssize_t t = agent_state_find_tc(&a->state, a->state.unneeded[i]);
                TeepSuitComponentId id;

                if (t < 0)
                        continue;
                r = component_views(&ar, a->state.tcs[t].manifest_id ?: a->state.tcs[t].component, &id);
                if (r >= 0)
                        r = teep_message_add_unneeded_manifest(resp, id.segments, id.n_segments);
        }
        if (r < 0)
                goto out;

        r = agent_sign_message(a, tam, selected, resp, ret, ret_len);
        if (r < 0)
                goto out;
        r = remember_exchange(a, tam, tam_uri, m, selected);
        if (r < 0) {
                free(*ret);
                *ret = NULL;
                *ret_len = 0;
                goto out;
        }
        log_info("TAM %s: query-request (signed %s) → query-response (%s%s, %zu installed, %zu requested, %zu unneeded)",
                 tam_uri ?: "-", teep_cose_alg_to_string(tam_alg) ?: "?", teep_cose_alg_to_string(selected) ?: "?",
                 (m->data_item_requested & TEEP_DATA_ATTESTATION) ? ", evidence" : "", a->state.n_tcs,
                 resp->n_requested_tc_list, resp->n_unneeded_manifest_list);
out:
        arena_done(&ar);
        if (r < 0)
                log_error("TAM %s: query-request: cannot build the answer: %s", tam_uri ?: "-", strerror(-r));
        return r;
}
