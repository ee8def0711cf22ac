/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* trust-anchors.c: the TAM trust-anchor set replaced over TEEP by a trust-anchor list that the
 * device administrator signed (AdminKey=), rollback-protected by its SUIT sequence number */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-suit.h"

/*
 * The list is a SUIT envelope for the component ["teepkit", "trust-anchors"], signed by the
 * administrator's key alone, whose single integrated payload is a CBOR array of COSE_Keys
 * bound by the manifest's SHA-256 image-digest (and image-size when given). It is kept as
 * received in the state directory and verified again at every start.
 */
#define TRUST_LIST_FILE "trust-anchors.suit"
#define TRUST_LIST_MAX (256 * 1024)
#define ADMIN_KEY_MAX (64 * 1024)

typedef struct TrustList {
        uint64_t seq;
        uint8_t digest[32]; /* of the payload */
        AgentKeyFile *keys;
        size_t n_keys;
} TrustList;

static void key_files_free(AgentKeyFile *k, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(k[i].name);
                teep_key_free(k[i].key);
        }
        free(k);
}

static void trust_list_done(TrustList *t) {
        key_files_free(t->keys, t->n_keys);
        *t = (TrustList){};
}

bool agent_trust_list_reserved(const char *component) {
        return component && strcmp(component, AGENT_TRUST_LIST_COMPONENT) == 0;
}

static bool kid_is_name(TeepBuf kid) {
        if (kid.len == 0 || kid.len > 64)
                return false;
        for (size_t i = 0; i < kid.len; i++) {
                char c = (char)kid.ptr[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

/* The kid (label 2) of a COSE_Key map, if any. */
static TeepBuf cose_key_kid(TeepBuf raw) {
        TeepCborReader r;
        size_t n;

        teep_cbor_reader_init(&r, raw);
        if (teep_cbor_read_map(&r, &n, NULL) < 0)
                return (TeepBuf){};
        for (size_t i = 0; i < n; i++) {
                TeepCborItem it;
                int64_t label;
                TeepBuf v;
                if (teep_cbor_peek(&r, &it) < 0)
                        break;
                if ((it.type == TEEP_CBOR_UINT || it.type == TEEP_CBOR_NEGINT) && teep_cbor_read_int(&r, &label, NULL) >= 0) {
                        if (label == 2 && teep_cbor_peek(&r, &it) >= 0 && it.type == TEEP_CBOR_BYTES &&
                            teep_cbor_read_bytes(&r, &v, NULL) >= 0)
                                return v;
                } else if (teep_cbor_skip(&r, NULL) < 0)
                        break;
                if (teep_cbor_skip(&r, NULL) < 0)
                        break;
        }
        return (TeepBuf){};
}

/* The payload: a CBOR array of 1..AGENT_MAX_KEYS COSE_Keys (public; a private member is refused). */
static int parse_keys(TeepBuf payload, TrustList *t, char *why, size_t why_len) {
        TeepCborReader r;
        TeepError err = {};
        size_t n;

        if (teep_cbor_check(payload, &teep_cbor_limits_default, &err) < 0) {
                (void)snprintf(why, why_len, "trust-anchor list: malformed CBOR (%s)", teep_reason_to_string(err.reason));
                return -EBADMSG;
        }
        teep_cbor_reader_init(&r, payload);
        if (teep_cbor_read_array(&r, &n, NULL) < 0 || n == 0 || n > AGENT_MAX_KEYS) {
                (void)snprintf(why, why_len, "trust-anchor list: want an array of 1..%d COSE_Keys", AGENT_MAX_KEYS);
                return -EBADMSG;
        }
        t->keys = calloc(n, sizeof(AgentKeyFile));
        if (!t->keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                TeepBuf raw, kid;
                TeepKey *k = NULL;
                char name[80];

                if (teep_cbor_skip(&r, &raw) < 0 || teep_key_from_cose_key(&k, raw, &err) < 0) {
                        (void)snprintf(why, why_len, "trust-anchor list: key %zu: %.100s", i,
                                       err.detail[0] ? err.detail : "malformed");
                        return -EBADMSG;
                }
                if (teep_key_has_private(k)) {
                        teep_key_free(k);
                        (void)snprintf(why, why_len, "trust-anchor list: key %zu carries a private key", i);
                        return -EBADMSG;
                }
                kid = cose_key_kid(raw);
                if (kid_is_name(kid))
                        (void)snprintf(name, sizeof(name), "list:%.*s", (int)kid.len, (const char *)kid.ptr);
                else
                        (void)snprintf(name, sizeof(name), "list:%zu", i);
                t->keys[t->n_keys].key = k;
                t->keys[t->n_keys].name = strdup(name);
                t->n_keys++;
                if (!t->keys[t->n_keys - 1].name)
                        return -ENOMEM;
        }
        return 0;
}

/* The parameters the manifest sets for the component (last assignment wins). */
static void collect_params(const TeepSuitSequence *seq, TeepSuitParameters *p) {
        for (size_t i = 0; seq && seq->present && i < seq->n_commands; i++) {
                const TeepSuitParameters *q = seq->commands[i].params;
                if (!q)
                        continue;
                for (int l = 0; l < 64; l++)
                        if (teep_suit_parameters_has(q, l))
                                p->present |= UINT64_C(1) << l;
                if (teep_suit_parameters_has(q, SUIT_PARAM_IMAGE_DIGEST))
                        p->image_digest = q->image_digest;
                if (teep_suit_parameters_has(q, SUIT_PARAM_IMAGE_SIZE))
                        p->image_size = q->image_size;
                if (teep_suit_parameters_has(q, SUIT_PARAM_VENDOR_IDENTIFIER))
                        p->vendor_id = q->vendor_id;
                if (teep_suit_parameters_has(q, SUIT_PARAM_CLASS_IDENTIFIER))
                        p->class_id = q->class_id;
        }
}

static bool id_listed(TeepBuf id, const uint8_t ids[][16], size_t n) {
        for (size_t i = 0; i < n; i++)
                if (id.len == 16 && memcmp(id.ptr, ids[i], 16) == 0)
                        return true;
        return false;
}

/*
 * 0: not a trust-anchor list (not signed by the administrator, or another component);
 * 1: a valid list in *ret; < 0: a list signed by the administrator that is not acceptable (why).
 */
static int trust_list_parse(Agent *a, TeepBuf in, TrustList *ret, char *why, size_t why_len) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *man = NULL;
        _cleanup_free_ char *component = NULL;
        TeepSuitParameters p = {};
        TeepError err = {};
        TrustList t = {};
        uint8_t sha[32], admin_tp[32];
        bool has_admin = false;
        TeepBuf payload;
        int r;

        if (!a->admin_key || teep_suit_envelope_decode(in, &env, &err) < 0 ||
            teep_suit_envelope_verify(env, &a->admin_key, 1, NULL, &err) < 0 ||
            teep_suit_manifest_decode(env, 0, &man, &err) < 0 || man->n_components != 1 ||
            teep_suit_component_id_to_string(man->components[0].segments, man->components[0].n_segments, &component) < 0 ||
            !agent_trust_list_reserved(component))
                return 0;

        if (man->n_dependencies > 0 || env->n_payloads != 1) {
                (void)snprintf(why, why_len, "trust-anchor list: want one integrated payload and no dependencies");
                return -EBADMSG;
        }
        collect_params(&man->shared_sequence, &p);
        collect_params(&man->install, &p);
        if (!teep_suit_parameters_has(&p, SUIT_PARAM_IMAGE_DIGEST) || p.image_digest.alg != COSE_ALG_SHA256 ||
            p.image_digest.bytes.len != 32) {
                (void)snprintf(why, why_len, "trust-anchor list: not bound by a SHA-256 image-digest");
                return -EKEYREJECTED;
        }
        /* a list made for another kind of device is not for this one */
        if ((teep_suit_parameters_has(&p, SUIT_PARAM_VENDOR_IDENTIFIER) && a->cfg.n_vendor_ids > 0 &&
             !id_listed(p.vendor_id, a->cfg.vendor_ids, a->cfg.n_vendor_ids)) ||
            (teep_suit_parameters_has(&p, SUIT_PARAM_CLASS_IDENTIFIER) && a->cfg.n_class_ids > 0 &&
             !id_listed(p.class_id, a->cfg.class_ids, a->cfg.n_class_ids))) {
                (void)snprintf(why, why_len, "trust-anchor list: made for another vendor or class");
                return -EKEYREJECTED;
        }
        payload = env->payloads[0].data;
        if (teep_sha256(payload, sha) < 0 || memcmp(sha, p.image_digest.bytes.ptr, 32) != 0 ||
            (teep_suit_parameters_has(&p, SUIT_PARAM_IMAGE_SIZE) && p.image_size != payload.len)) {
                (void)snprintf(why, why_len, "trust-anchor list: payload digest or size mismatch");
                return -EKEYREJECTED;
        }
        r = parse_keys(payload, &t, why, why_len);
        if (r >= 0)
                r = teep_key_thumbprint(a->admin_key, admin_tp);
        for (size_t i = 0; r >= 0 && i < t.n_keys && !has_admin; i++) {
                uint8_t tp[32];
                has_admin = teep_key_thumbprint(t.keys[i].key, tp) >= 0 && memcmp(tp, admin_tp, 32) == 0;
        }
        if (r >= 0 && !has_admin) {
                (void)snprintf(why, why_len, "trust-anchor list: it would remove the administrator's own anchor");
                r = -EPERM;
        }
        if (r < 0) {
                trust_list_done(&t);
                return r;
        }
        t.seq = man->sequence_number;
        memcpy(t.digest, sha, 32);
        *ret = t;
        return 1;
}

/* Make the list the TAM trust-anchor set. */
static void trust_list_apply(Agent *a, TrustList *t) {
        key_files_free(a->anchors, a->n_anchors);
        a->anchors = t->keys;
        a->n_anchors = t->n_keys;
        a->trust_list_seq = t->seq;
        memcpy(a->trust_list_digest, t->digest, 32);
        a->trust_list_active = true;
        t->keys = NULL;
        t->n_keys = 0;
}

int agent_trust_list_load(Agent *a) {
        _cleanup_free_ uint8_t *data = NULL;
        TeepError err = {};
        TrustList t = {};
        char why[200] = "";
        size_t len = 0;
        int r;

        a->admin_key = teep_key_free(a->admin_key);
        if (a->cfg.admin_key) {
                r = read_full_file(a->cfg.admin_key, ADMIN_KEY_MAX, &data, &len);
                if (r < 0)
                        return log_error_errno(r, "AdminKey=%s: cannot read: %s", a->cfg.admin_key, strerror(-r));
                r = teep_key_from_any(&a->admin_key, data, len, &err);
                if (r < 0)
                        return log_error_errno(r, "AdminKey=%s: not a usable key: %s", a->cfg.admin_key, err.detail);
                free(data);
                data = NULL;
        }
        if (a->state_fd < 0)
                return 0;
        r = read_file_at(a->state_fd, TRUST_LIST_FILE, TRUST_LIST_MAX, &data, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "cannot read %s/%s: %s", a->cfg.state_dir, TRUST_LIST_FILE, strerror(-r));
        if (!a->admin_key) {
                log_warning("%s/%s is ignored: no AdminKey= is configured; using %s", a->cfg.state_dir, TRUST_LIST_FILE,
                            a->cfg.trust_anchor_dir);
                return 0;
        }
        r = trust_list_parse(a, TEEP_BUF(data, len), &t, why, sizeof(why));
        if (r <= 0)
                /* fail closed: falling back to the directory could bring back an anchor the list removed */
                return log_error_errno(r < 0 ? r : -EKEYREJECTED,
                                       "%s/%s does not verify with AdminKey=%s (%s); remove the file to use %s again",
                                       a->cfg.state_dir, TRUST_LIST_FILE, a->cfg.admin_key, why[0] ? why : "not a trust-anchor list",
                                       a->cfg.trust_anchor_dir);
        trust_list_apply(a, &t);
        log_info("TAM trust anchors: %zu from the administrator's trust-anchor list, sequence number %" PRIu64
                 " (TrustAnchorDirectory= is not used)",
                 a->n_anchors, a->trust_list_seq);
        return 0;
}

void agent_trust_list_free(Agent *a) {
        a->admin_key = teep_key_free(a->admin_key);
}

int agent_trust_list_update(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t alg,
                            const TeepBuf *token, uint8_t **ret, size_t *ret_len) {
        _cleanup_(teep_message_freep) TeepMessage *ok = NULL;
        TrustList t = {};
        char why[200] = "";
        ssize_t found = -1;
        int r = 0, k;

        if (!a->admin_key)
                return 0;
        for (size_t i = 0; i < m->n_manifest_list && r >= 0; i++) {
                TrustList tmp = {};
                char w[200] = "";
                k = trust_list_parse(a, m->manifest_list[i], &tmp, w, sizeof(w));
                if (k == 0)
                        continue;
                if (found < 0) {
                        found = (ssize_t)i;
                        t = tmp;
                        r = k < 0 ? k : 0;
                        memcpy(why, w, sizeof(why));
                } else
                        trust_list_done(&tmp);
        }
        if (found < 0)
                return 0;
        if (r >= 0 && (m->n_manifest_list > 1 || m->n_unneeded_manifest_list > 0)) {
                (void)snprintf(why, sizeof(why), "a trust-anchor list travels alone in its Update");
                r = -EINVAL;
        }
        if (r >= 0 && t.seq < a->trust_list_seq) {
                (void)snprintf(why, sizeof(why), "trust-anchor list: rollback: sequence number %" PRIu64 " < %" PRIu64,
                               t.seq, a->trust_list_seq);
                r = -ESTALE;
        }
        if (r >= 0 && a->trust_list_active && t.seq == a->trust_list_seq && memcmp(t.digest, a->trust_list_digest, 32) != 0) {
                (void)snprintf(why, sizeof(why), "trust-anchor list: sequence number %" PRIu64 " already used for another list",
                               t.seq);
                r = -ESTALE;
        }
        if (r >= 0 && !(a->trust_list_active && t.seq == a->trust_list_seq)) {
                TeepBuf in = m->manifest_list[found];
                r = write_file_atomic_at(a->state_fd, TRUST_LIST_FILE, in.ptr, in.len, 0600);
                if (r < 0)
                        (void)snprintf(why, sizeof(why), "cannot store the trust-anchor list: %s", strerror(-r));
                else {
                        trust_list_apply(a, &t);
                        log_notice("TAM %s: trust-anchor list sequence number %" PRIu64 " installed: %zu TAM trust anchor(s)",
                                   tam_uri ?: "-", a->trust_list_seq, a->n_anchors);
                }
        } else if (r >= 0)
                log_info("TAM %s: trust-anchor list sequence number %" PRIu64 " is already in place", tam_uri ?: "-", t.seq);
        trust_list_done(&t);

        if (r < 0) {
                log_warning("TAM %s: update → error ERR_MANIFEST_PROCESSING_FAILED (%s); no state change", tam_uri ?: "-", why);
                a->refusal_hint = r; /* the broker names the job's error from it (Agent1.Refused) */
                r = agent_build_error(a, tam, alg, token, TEEP_ERR_MANIFEST_PROCESSING_FAILED, why, NULL, 0, ret, ret_len);
                return r < 0 ? r : 1;
        }
        r = teep_message_new(&ok, TEEP_TYPE_SUCCESS);
        if (r >= 0 && token) {
                ok->has_token = true;
                ok->token = *token;
        }
        if (r >= 0)
                r = agent_sign_message(a, tam, alg, ok, ret, ret_len);
        return r < 0 ? r : 1;
}
