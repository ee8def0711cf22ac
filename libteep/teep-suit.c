/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-suit.c: SUIT envelopes and manifests: decode, authenticate, and build for the SP tool */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "teep-protocol.h"
#include "teep-suit.h"

/* ---- small helpers ---- */

static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n) {
        volatile uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= a[i] ^ b[i];
        return acc == 0;
}

/* Check that a byte string holds exactly one CBOR item and start a reader on it. */
static int nested_begin(TeepBuf content, TeepCborReader *r, TeepReason reason, const char *what,
                        TeepError *err) {
        TeepError e = {};
        int k = teep_cbor_check(content, NULL, &e);
        if (k < 0)
                return teep_error_set(err, k, reason, "%s: %s (%s)", what, e.detail,
                                      teep_reason_to_string(e.reason));
        teep_cbor_reader_init(r, content);
        return 0;
}

/* Decode an encoded SUIT_Digest = [alg: int, bytes: bstr]. Extensions are not supported. */
static int digest_decode(TeepBuf encoded, TeepSuitDigest *ret, TeepReason reason, const char *what,
                         TeepError *err) {
        TeepSuitDigest d;
        TeepCborReader r;
        size_t n;
        int k;

        k = nested_begin(encoded, &r, reason, what, err);
        if (k < 0)
                return k;
        if (teep_cbor_read_array(&r, &n, err) < 0 || n != 2)
                return teep_error_set(err, -EBADMSG, reason, "%s: SUIT_Digest must be [alg, bytes]", what);
        if (teep_cbor_read_int(&r, &d.alg, err) < 0 || teep_cbor_read_bytes(&r, &d.bytes, err) < 0)
                return teep_error_set(err, -EBADMSG, reason, "%s: SUIT_Digest must be [int, bstr]", what);
        *ret = d;
        return 0;
}

/* Check SHA-256 of data against a SUIT_Digest. -EOPNOTSUPP, -EKEYREJECTED or 0. */
static int digest_check(const TeepSuitDigest *d, TeepBuf data, TeepReason reason, const char *what,
                        TeepError *err) {
        uint8_t md[TEEP_SUIT_SHA256_LEN];
        int k;

        if (d->alg != COSE_ALG_SHA256)
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_DIGEST_ALG,
                                      "%s: digest algorithm %" PRId64 ", only SHA-256 (-16) is supported",
                                      what, d->alg);
        k = teep_sha256(data, md);
        if (k < 0)
                return teep_error_set(err, k, reason, "%s: cannot compute SHA-256", what);
        if (d->bytes.len != sizeof(md) || !ct_equal(md, d->bytes.ptr, sizeof(md)))
                return teep_error_set(err, -EKEYREJECTED, reason, "%s: SHA-256 digest does not match", what);
        return 0;
}

/* ---- envelope ---- */

static TeepSuitEnvelopeMember *envelope_member(TeepSuitEnvelope *env, int64_t key) {
        switch (key) {
        case SUIT_ENVELOPE_AUTHENTICATION_WRAPPER:
                return &env->auth;
        case SUIT_ENVELOPE_MANIFEST:
                return &env->manifest;
        case SUIT_MANIFEST_DEPENDENCY_RESOLUTION:
                return &env->dependency_resolution;
        case SUIT_MANIFEST_PAYLOAD_FETCH:
                return &env->payload_fetch;
        case SUIT_MANIFEST_CANDIDATE_VERIFICATION:
                return &env->candidate_verification;
        case SUIT_MANIFEST_INSTALL:
                return &env->install;
        case SUIT_MANIFEST_TEXT:
                return &env->text;
        default:
                return NULL;
        }
}

static const TeepSuitEnvelopeMember *envelope_member_const(const TeepSuitEnvelope *env, int64_t key) {
        return envelope_member((TeepSuitEnvelope *)env, key);
}

/* auth = bstr .cbor [ bstr .cbor SUIT_Digest, + bstr .cbor SUIT_Authentication_Block ] */
static int auth_decode(TeepSuitEnvelope *env, TeepError *err) {
        TeepCborReader r;
        size_t n;
        int k;

        k = nested_begin(env->auth.content, &r, TEEP_REASON_SUIT_AUTH, "authentication wrapper", err);
        if (k < 0)
                return k;
        if (teep_cbor_read_array(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                      "authentication wrapper is not an array");
        if (n < 2)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                      "authentication wrapper needs a digest and at least one signature");
        if (n - 1 > TEEP_SUIT_MAX_SIGNATURES)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_AUTH,
                                      "authentication wrapper: %zu signatures, at most %d", n - 1,
                                      TEEP_SUIT_MAX_SIGNATURES);
        if (teep_cbor_read_bytes(&r, &env->digest_raw, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                      "authentication wrapper: the digest is not a byte string");
        k = digest_decode(env->digest_raw, &env->digest, TEEP_REASON_SUIT_AUTH, "manifest digest", err);
        if (k < 0)
                return k;
        for (size_t i = 1; i < n; i++)
                if (teep_cbor_read_bytes(&r, &env->signatures[i - 1], err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                              "authentication wrapper: block %zu is not a byte string", i);
        env->n_signatures = n - 1;
        return 0;
}

int teep_suit_envelope_decode(TeepBuf in, TeepSuitEnvelope **ret, TeepError *err) {
        TeepSuitEnvelope env = {}, *copy;
        TeepCborReader r;
        TeepCborItem item;
        size_t n;
        int k;

        if (!ret)
                return -EINVAL;
        k = teep_cbor_check(in, NULL, err);
        if (k < 0)
                return teep_error_prefix(err, k, "SUIT envelope");
        teep_cbor_reader_init(&r, in);

        if (teep_cbor_accept_tag(&r, SUIT_ENVELOPE_TAG))
                env.tagged = true;
        if (teep_cbor_read_map(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                      "SUIT envelope is not a map (or tag 107 of a map)");

        for (size_t i = 0; i < n; i++) {
                k = teep_cbor_peek(&r, &item);
                if (k < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED,
                                              "SUIT envelope key");

                if (item.type == TEEP_CBOR_UINT || item.type == TEEP_CBOR_NEGINT) {
                        TeepSuitEnvelopeMember *mem;
                        int64_t key;

                        if (teep_cbor_read_int(&r, &key, err) < 0)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_ENVELOPE,
                                                      "SUIT envelope: integer key out of range");
                        mem = envelope_member(&env, key);
                        if (!mem)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_ENVELOPE,
                                                      "SUIT envelope: unsupported member %" PRId64, key);
                        if (mem->present)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "SUIT envelope: member %" PRId64 " twice", key);
                        if (teep_cbor_read(&r, &item) < 0 || item.type != TEEP_CBOR_BYTES)
                                return teep_error_set(
                                        err, -EBADMSG,
                                        key == SUIT_ENVELOPE_AUTHENTICATION_WRAPPER
                                                ? TEEP_REASON_SUIT_AUTH
                                                : TEEP_REASON_SUIT_ENVELOPE,
                                        "SUIT envelope: member %" PRId64 " is not a byte string", key);
                        mem->present = true;
                        mem->wrapped = item.head;
                        mem->content = item.str;

                } else if (item.type == TEEP_CBOR_TEXT) {
                        TeepSuitPayload p;

                        if (teep_cbor_read_text(&r, &p.key, err) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                                      "SUIT envelope: payload key is not valid UTF-8");
                        for (size_t j = 0; j < env.n_payloads; j++)
                                if (teep_buf_eq(env.payloads[j].key, p.key))
                                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                              "SUIT envelope: payload key \"%.*s\" twice",
                                                              (int)(p.key.len > 64 ? 64 : p.key.len),
                                                              (const char *)p.key.ptr);
                        if (env.n_payloads >= TEEP_SUIT_MAX_PAYLOADS)
                                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_ENVELOPE,
                                                      "SUIT envelope: more than %d integrated payloads",
                                                      TEEP_SUIT_MAX_PAYLOADS);
                        if (teep_cbor_read_bytes(&r, &p.data, err) < 0)
                                return teep_error_set(
                                        err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                        "SUIT envelope: integrated payload is not a byte string");
                        env.payloads[env.n_payloads++] = p;

                } else
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                              "SUIT envelope: key of type %s",
                                              teep_cbor_type_to_string(item.type));
        }

        if (!env.auth.present)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                      "SUIT envelope has no authentication wrapper");
        if (!env.manifest.present)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                      "SUIT envelope has no manifest");
        k = auth_decode(&env, err);
        if (k < 0)
                return k;

        copy = malloc(sizeof(*copy));
        if (!copy)
                return -ENOMEM;
        *copy = env;
        *ret = copy;
        return 0;
}

TeepSuitEnvelope *teep_suit_envelope_free(TeepSuitEnvelope *env) {
        free(env);
        return NULL;
}

int teep_suit_envelope_get_payload(const TeepSuitEnvelope *env, const char *key, TeepBuf *ret) {
        TeepBuf k;

        if (!env || !key)
                return -EINVAL;
        k = TEEP_BUF(key, strlen(key));
        for (size_t i = 0; i < env->n_payloads; i++)
                if (teep_buf_eq(env->payloads[i].key, k)) {
                        if (ret)
                                *ret = env->payloads[i].data;
                        return 0;
                }
        return -ENOENT;
}

/* When no signature verifies, report the most telling failure. */
static int verify_failure_rank(int error) {
        switch (error) {
        case -EKEYREJECTED:
                return 3;
        case -EOPNOTSUPP:
                return 2;
        case -ENOKEY:
                return 1;
        default:
                return 0;
        }
}

int teep_suit_envelope_verify(TeepSuitEnvelope *env, TeepKey *const *keys, size_t n_keys,
                              size_t *ret_key_index, TeepError *err) {
        TeepError best = {};
        int k;

        if (!env)
                return -EINVAL;
        env->authenticated = false;

        if (!env->manifest.present || !env->auth.present || env->n_signatures == 0 ||
            env->n_signatures > TEEP_SUIT_MAX_SIGNATURES)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                      "SUIT envelope has no manifest or no signature");

        /* 1. The digest binds the manifest, byte for byte, head of its bstr included. */
        k = digest_check(&env->digest, env->manifest.wrapped, TEEP_REASON_SUIT_DIGEST, "manifest", err);
        if (k < 0)
                return k;

        /* 2. At least one signature over the encoded SUIT_Digest (detached payload). */
        for (size_t i = 0; i < env->n_signatures; i++) {
                TeepCoseMessage msg;
                TeepError e = {};
                size_t key_index = 0;

                k = teep_cose_decode(env->signatures[i], &msg, &e);
                if (k == -EOPNOTSUPP)
                        goto failed; /* e.g. an unknown critical header: try the next block */
                if (k < 0) {
                        if (err)
                                *err = e;
                        return teep_error_prefix(err, e.error, "SUIT authentication block %zu", i);
                }
                if (!msg.payload_detached)
                        return teep_error_set(
                                err, -EBADMSG, TEEP_REASON_SUIT_AUTH,
                                "SUIT authentication block %zu: payload must be detached (nil)", i);

                k = teep_cose_verify(&msg, &env->digest_raw, keys, n_keys, &key_index, NULL, &e);
                if (k == 0) {
                        env->authenticated = true;
                        if (ret_key_index)
                                *ret_key_index = key_index;
                        return 0;
                }
                if (verify_failure_rank(k) == 0) {
                        if (err)
                                *err = e;
                        return teep_error_prefix(err, e.error, "SUIT authentication block %zu", i);
                }
        failed:
                if (e.error == 0)
                        e.error = k;
                if (best.error == 0 || verify_failure_rank(e.error) > verify_failure_rank(best.error))
                        best = e;
        }

        if (err)
                *err = best;
        return teep_error_prefix(err, best.error, "SUIT manifest signature");
}

/* ---- manifest ---- */

struct TeepSuitManifestAlloc {
        TeepSuitManifestAlloc *next;
        max_align_t data[];
};

static void *manifest_alloc(TeepSuitManifest *m, size_t n, size_t size) {
        TeepSuitManifestAlloc *a;

        if (n == 0)
                n = 1;
        if (size != 0 && n > (SIZE_MAX - sizeof(*a)) / size)
                return NULL;
        a = calloc(1, sizeof(*a) + n * size);
        if (!a)
                return NULL;
        a->next = m->allocs;
        m->allocs = a;
        return a->data;
}

TeepSuitManifest *teep_suit_manifest_free(TeepSuitManifest *m) {
        if (!m)
                return NULL;
        while (m->allocs) {
                TeepSuitManifestAlloc *next = m->allocs->next;
                free(m->allocs);
                m->allocs = next;
        }
        free(m);
        return NULL;
}

typedef struct ManifestCtx {
        TeepSuitManifest *m;
        uint64_t valid_indices; /* bit i: i is a component or dependency index */
} ManifestCtx;

static int sequence_decode(ManifestCtx *c, TeepBuf content, unsigned depth, const char *what,
                           TeepSuitSequence *ret, TeepError *err);

static int uuid_read(TeepCborReader *r, TeepBuf *ret, const char *what, TeepError *err) {
        if (teep_cbor_read_bytes(r, ret, err) < 0 || ret->len != TEEP_SUIT_UUID_LEN)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER,
                                      "parameter %s must be a 16-byte UUID", what);
        return 0;
}

static int param_value_decode(TeepSuitParameters *p, int64_t label, TeepBuf raw, TeepError *err) {
        TeepCborReader r;
        TeepCborItem item;
        uint64_t tag;
        int k = 0;

        teep_cbor_reader_init(&r, raw);
        switch (label) {
        case SUIT_PARAM_VENDOR_IDENTIFIER:
                if (teep_cbor_peek(&r, &item) == 0 && item.type == TEEP_CBOR_TAG) {
                        if (teep_cbor_read_tag(&r, &tag, err) < 0 || tag != SUIT_CBOR_TAG_PEN ||
                            teep_cbor_read_bytes(&r, &p->vendor_id, err) < 0 || p->vendor_id.len == 0)
                                return teep_error_set(
                                        err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER,
                                        "parameter vendor-identifier: want a UUID or 112(PEN OID)");
                        p->vendor_id_is_pen = true;
                        return 0;
                }
                return uuid_read(&r, &p->vendor_id, "vendor-identifier", err);
        case SUIT_PARAM_CLASS_IDENTIFIER:
                return uuid_read(&r, &p->class_id, "class-identifier", err);
        case SUIT_PARAM_DEVICE_IDENTIFIER:
                return uuid_read(&r, &p->device_id, "device-identifier", err);
        case SUIT_PARAM_IMAGE_DIGEST:
                if (teep_cbor_read_bytes(&r, &p->image_digest_raw, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER,
                                              "parameter image-digest must be a bstr-wrapped SUIT_Digest");
                return digest_decode(p->image_digest_raw, &p->image_digest, TEEP_REASON_SUIT_PARAMETER,
                                     "parameter image-digest", err);
        case SUIT_PARAM_COMPONENT_SLOT:
                k = teep_cbor_read_uint(&r, &p->component_slot, err);
                break;
        case SUIT_PARAM_IMAGE_SIZE:
                k = teep_cbor_read_uint(&r, &p->image_size, err);
                break;
        case SUIT_PARAM_SOURCE_COMPONENT:
                k = teep_cbor_read_uint(&r, &p->source_component, err);
                break;
        case SUIT_PARAM_STRICT_ORDER:
                k = teep_cbor_read_bool(&r, &p->strict_order, err);
                break;
        case SUIT_PARAM_SOFT_FAILURE:
                k = teep_cbor_read_bool(&r, &p->soft_failure, err);
                break;
        case SUIT_PARAM_CONTENT:
                k = teep_cbor_read_bytes(&r, &p->content, err);
                break;
        case SUIT_PARAM_ENCRYPTION_INFO:
                k = teep_cbor_read_bytes(&r, &p->encryption_info, err);
                break;
        case SUIT_PARAM_INVOKE_ARGS:
                k = teep_cbor_read_bytes(&r, &p->invoke_args, err);
                break;
        case SUIT_PARAM_FETCH_ARGUMENTS:
                k = teep_cbor_read_bytes(&r, &p->fetch_arguments, err);
                break;
        case SUIT_PARAM_URI:
                k = teep_cbor_read_text(&r, &p->uri, err);
                break;
        case SUIT_PARAM_VERSION:
                p->version_raw = raw;
                break;
        default:
                break;
        }
        if (k < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER,
                                      "parameter %" PRId64 " has the wrong type", label);
        return 0;
}

static bool param_is_known(int64_t label) {
        switch (label) {
        case SUIT_PARAM_VENDOR_IDENTIFIER:
        case SUIT_PARAM_CLASS_IDENTIFIER:
        case SUIT_PARAM_IMAGE_DIGEST:
        case SUIT_PARAM_COMPONENT_SLOT:
        case SUIT_PARAM_STRICT_ORDER:
        case SUIT_PARAM_SOFT_FAILURE:
        case SUIT_PARAM_IMAGE_SIZE:
        case SUIT_PARAM_CONTENT:
        case SUIT_PARAM_ENCRYPTION_INFO:
        case SUIT_PARAM_URI:
        case SUIT_PARAM_SOURCE_COMPONENT:
        case SUIT_PARAM_INVOKE_ARGS:
        case SUIT_PARAM_DEVICE_IDENTIFIER:
        case SUIT_PARAM_FETCH_ARGUMENTS:
        case SUIT_PARAM_VERSION:
                return true;
        default:
                return false;
        }
}

static int parameters_decode(TeepCborReader *r, TeepSuitParameters *p, TeepError *err) {
        size_t n;

        if (teep_cbor_read_map(r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER, "parameters are not a map");
        for (size_t i = 0; i < n; i++) {
                int64_t label;
                TeepBuf raw;
                int k;

                if (teep_cbor_read_int(r, &label, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_PARAMETER,
                                              "parameter label is not an integer");
                if (teep_cbor_skip(r, &raw) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "parameter value");

                if (param_is_known(label)) {
                        if (teep_suit_parameters_has(p, (int)label))
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "parameter %" PRId64 " twice", label);
                        k = param_value_decode(p, label, raw, err);
                        if (k < 0)
                                return k;
                        p->present |= UINT64_C(1) << label;
                        continue;
                }

                for (size_t j = 0; j < p->n_unknown; j++)
                        if (p->unknown[j].label == label)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "parameter %" PRId64 " twice", label);
                if (p->n_unknown >= TEEP_SUIT_MAX_UNKNOWN_PARAMS)
                        return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_PARAMETER,
                                              "more than %d unknown parameters",
                                              TEEP_SUIT_MAX_UNKNOWN_PARAMS);
                p->unknown[p->n_unknown].label = label;
                p->unknown[p->n_unknown].raw = raw;
                p->n_unknown++;
        }
        return 0;
}

static int index_check(ManifestCtx *c, uint64_t index, TeepError *err) {
        if (index > TEEP_SUIT_MAX_INDEX || !(c->valid_indices & (UINT64_C(1) << index)))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMPONENT,
                                      "set-component-index %" PRIu64 ": no such component or dependency",
                                      index);
        return 0;
}

static int set_component_index_decode(ManifestCtx *c, TeepCborReader *r, TeepSuitCommand *cmd,
                                      TeepError *err) {
        TeepCborItem item;
        size_t n;
        int k;

        if (teep_cbor_peek(r, &item) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "set-component-index");
        switch (item.type) {
        case TEEP_CBOR_UINT:
                k = index_check(c, item.value, err);
                if (k < 0)
                        return k;
                cmd->index_mask = UINT64_C(1) << item.value;
                return 0;
        case TEEP_CBOR_TRUE:
                cmd->index_all = true;
                cmd->index_mask = c->valid_indices;
                return 0;
        case TEEP_CBOR_ARRAY:
                if (teep_cbor_read_array(r, &n, err) < 0)
                        return -EBADMSG;
                if (n == 0 || n > TEEP_SUIT_MAX_INDEX + 1)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                              "set-component-index: list of %zu indices", n);
                for (size_t i = 0; i < n; i++) {
                        uint64_t index;
                        if (teep_cbor_read_uint(r, &index, err) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                                      "set-component-index: index is not a uint");
                        k = index_check(c, index, err);
                        if (k < 0)
                                return k;
                        cmd->index_mask |= UINT64_C(1) << index;
                }
                return 0;
        default:
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                      "set-component-index: argument of type %s",
                                      teep_cbor_type_to_string(item.type));
        }
}

static int try_each_decode(ManifestCtx *c, TeepCborReader *r, unsigned depth, TeepSuitCommand *cmd,
                           TeepError *err) {
        size_t n, n_seq;
        int k;

        if (teep_cbor_read_array(r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                      "try-each: argument is not an array");
        if (n > TEEP_SUIT_MAX_TRY_EACH + 1)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_SEQUENCE,
                                      "try-each: %zu alternatives, at most %d", n, TEEP_SUIT_MAX_TRY_EACH);

        cmd->sequences = manifest_alloc(c->m, n, sizeof(TeepSuitSequence));
        if (!cmd->sequences)
                return -ENOMEM;
        n_seq = 0;
        for (size_t i = 0; i < n; i++) {
                TeepCborItem item;
                TeepBuf content;

                if (teep_cbor_peek(r, &item) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "try-each");
                if (item.type == TEEP_CBOR_NULL && i == n - 1) {
                        (void)teep_cbor_read_null(r, err);
                        cmd->try_each_nil = true;
                        break;
                }
                if (teep_cbor_read_bytes(r, &content, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                              "try-each: alternative %zu is not a bstr-wrapped sequence", i);
                k = sequence_decode(c, content, depth + 1, "try-each alternative", &cmd->sequences[n_seq],
                                    err);
                if (k < 0)
                        return k;
                n_seq++;
        }
        if (n_seq < 2)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                      "try-each needs at least two sequences");
        cmd->n_sequences = n_seq;
        return 0;
}

static int command_decode(ManifestCtx *c, TeepCborReader *r, unsigned depth, TeepSuitCommand *cmd,
                          TeepError *err) {
        TeepCborReader ar;
        TeepBuf content;
        int k;

        if (teep_cbor_read_int(r, &cmd->label, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                      "command label is not an integer");
        if (teep_cbor_skip(r, &cmd->arg) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "command argument");
        teep_cbor_reader_init(&ar, cmd->arg);

        switch (cmd->label) {
        case SUIT_CONDITION_VENDOR_IDENTIFIER:
        case SUIT_CONDITION_CLASS_IDENTIFIER:
        case SUIT_CONDITION_IMAGE_MATCH:
        case SUIT_CONDITION_COMPONENT_SLOT:
        case SUIT_CONDITION_CHECK_CONTENT:
        case SUIT_CONDITION_DEPENDENCY_INTEGRITY:
        case SUIT_CONDITION_IS_DEPENDENCY:
        case SUIT_CONDITION_ABORT:
        case SUIT_CONDITION_DEVICE_IDENTIFIER:
        case SUIT_DIRECTIVE_PROCESS_DEPENDENCY:
        case SUIT_DIRECTIVE_WRITE:
        case SUIT_DIRECTIVE_FETCH:
        case SUIT_DIRECTIVE_COPY:
        case SUIT_DIRECTIVE_INVOKE:
        case SUIT_DIRECTIVE_SWAP:
        case SUIT_DIRECTIVE_UNLINK:
                if (teep_cbor_read_uint(&ar, &cmd->policy, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                              "%s: reporting policy is not a uint",
                                              teep_suit_command_to_string(cmd->label));
                return 0;

        case SUIT_DIRECTIVE_SET_COMPONENT_INDEX:
                return set_component_index_decode(c, &ar, cmd, err);

        case SUIT_DIRECTIVE_TRY_EACH:
                return try_each_decode(c, &ar, depth, cmd, err);

        case SUIT_DIRECTIVE_SET_PARAMETERS:
        case SUIT_DIRECTIVE_OVERRIDE_PARAMETERS:
                cmd->params = manifest_alloc(c->m, 1, sizeof(TeepSuitParameters));
                if (!cmd->params)
                        return -ENOMEM;
                k = parameters_decode(&ar, cmd->params, err);
                if (k < 0)
                        return teep_error_prefix(err, k, "%s", teep_suit_command_to_string(cmd->label));
                return 0;

        case SUIT_DIRECTIVE_RUN_SEQUENCE:
                if (teep_cbor_read_bytes(&ar, &content, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                              "run-sequence: argument is not a bstr-wrapped sequence");
                cmd->sequences = manifest_alloc(c->m, 1, sizeof(TeepSuitSequence));
                if (!cmd->sequences)
                        return -ENOMEM;
                k = sequence_decode(c, content, depth + 1, "run-sequence", &cmd->sequences[0], err);
                if (k < 0)
                        return k;
                cmd->n_sequences = 1;
                return 0;

        default:
                /* Unknown conditions and directives, custom ones (< -256) included, must fail. */
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMAND,
                                      "unsupported command %" PRId64, cmd->label);
        }
}

static int sequence_decode(ManifestCtx *c, TeepBuf content, unsigned depth, const char *what,
                           TeepSuitSequence *ret, TeepError *err) {
        TeepSuitSequence seq = {.present = true, .raw = content};
        TeepCborReader r;
        size_t n;
        int k;

        if (depth > TEEP_SUIT_MAX_NESTING)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_SEQUENCE,
                                      "%s: command sequences nested deeper than %d", what,
                                      TEEP_SUIT_MAX_NESTING);
        k = nested_begin(content, &r, TEEP_REASON_SUIT_SEQUENCE, what, err);
        if (k < 0)
                return k;
        if (teep_cbor_read_array(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE, "%s: not an array", what);
        if (n == 0 || n % 2 != 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEQUENCE,
                                      "%s: %zu items, want a non-empty list of label/argument pairs", what,
                                      n);
        if (n / 2 > TEEP_SUIT_MAX_SEQUENCE_COMMANDS || c->m->n_commands + n / 2 > TEEP_SUIT_MAX_COMMANDS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_SEQUENCE,
                                      "%s: too many commands (at most %d per sequence, %d per manifest)",
                                      what, TEEP_SUIT_MAX_SEQUENCE_COMMANDS, TEEP_SUIT_MAX_COMMANDS);
        c->m->n_commands += n / 2;

        seq.commands = manifest_alloc(c->m, n / 2, sizeof(TeepSuitCommand));
        if (!seq.commands)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                k = command_decode(c, &r, depth, &seq.commands[i], err);
                if (k < 0)
                        return teep_error_prefix(err, k, "%s, command %zu", what, i);
        }
        seq.n_commands = n / 2;
        *ret = seq;
        return 0;
}

static int dependencies_decode(ManifestCtx *c, TeepCborReader *r, TeepError *err) {
        TeepSuitManifest *m = c->m;
        size_t n;

        if (teep_cbor_read_map(r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON, "dependencies are not a map");
        if (n > TEEP_SUIT_MAX_DEPENDENCIES)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_COMMON, "%zu dependencies, at most %d",
                                      n, TEEP_SUIT_MAX_DEPENDENCIES);
        for (size_t i = 0; i < n; i++) {
                TeepSuitDependency dep = {};
                size_t nm;

                if (teep_cbor_read_uint(r, &dep.index, err) < 0 || dep.index > TEEP_SUIT_MAX_INDEX)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON,
                                              "dependency index must be a uint up to %d",
                                              TEEP_SUIT_MAX_INDEX);
                for (size_t j = 0; j < m->n_dependencies; j++)
                        if (m->dependencies[j].index == dep.index)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "dependency %" PRIu64 " twice", dep.index);
                if (teep_cbor_read_map(r, &nm, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON,
                                              "dependency %" PRIu64 ": metadata is not a map", dep.index);
                for (size_t j = 0; j < nm; j++) {
                        int64_t key;
                        int k;

                        if (teep_cbor_read_int(r, &key, err) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON,
                                                      "dependency %" PRIu64 ": key is not an integer",
                                                      dep.index);
                        if (key != SUIT_DEPENDENCY_PREFIX)
                                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMON,
                                                      "dependency %" PRIu64
                                                      ": unsupported metadata %" PRId64,
                                                      dep.index, key);
                        if (dep.has_prefix)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "dependency %" PRIu64 ": prefix twice", dep.index);
                        k = teep_suit_component_id_read(r, &dep.prefix, err);
                        if (k < 0)
                                return teep_error_prefix(err, k, "dependency %" PRIu64 " prefix", dep.index);
                        dep.has_prefix = true;
                }
                m->dependencies[m->n_dependencies++] = dep;
        }
        return 0;
}

static int common_decode(ManifestCtx *c, TeepBuf content, TeepError *err) {
        TeepSuitManifest *m = c->m;
        bool have_deps = false, have_components = false, have_shared = false;
        TeepBuf shared = {};
        TeepCborReader r;
        size_t n;
        int k;

        k = nested_begin(content, &r, TEEP_REASON_SUIT_COMMON, "common", err);
        if (k < 0)
                return k;
        if (teep_cbor_read_map(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON, "common is not a map");

        for (size_t i = 0; i < n; i++) {
                int64_t key;
                size_t nc;

                if (teep_cbor_read_int(&r, &key, err) < 0)
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMON,
                                              "common: key is not a known integer");
                switch (key) {
                case SUIT_COMMON_DEPENDENCIES:
                        if (have_deps)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "common: dependencies twice");
                        have_deps = true;
                        k = dependencies_decode(c, &r, err);
                        if (k < 0)
                                return k;
                        break;
                case SUIT_COMMON_COMPONENTS:
                        if (have_components)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "common: components twice");
                        have_components = true;
                        if (teep_cbor_read_array(&r, &nc, err) < 0 || nc == 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON,
                                                      "common: components must be a non-empty array");
                        if (nc > TEEP_SUIT_MAX_COMPONENTS)
                                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_COMPONENT,
                                                      "common: %zu components, at most %d", nc,
                                                      TEEP_SUIT_MAX_COMPONENTS);
                        for (size_t j = 0; j < nc; j++) {
                                k = teep_suit_component_id_read(&r, &m->components[j], err);
                                if (k < 0)
                                        return teep_error_prefix(err, k, "common: component %zu", j);
                        }
                        m->n_components = nc;
                        break;
                case SUIT_COMMON_SHARED_SEQUENCE:
                        if (have_shared)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                      "common: shared-sequence twice");
                        have_shared = true;
                        if (teep_cbor_read_bytes(&r, &shared, err) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON,
                                                      "common: shared-sequence is not a byte string");
                        break;
                default:
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_COMMON,
                                              "common: unsupported member %" PRId64, key);
                }
        }

        /* Indices: components first, then dependencies (which may sit beyond the list). */
        c->valid_indices = 0;
        for (size_t j = 0; j < m->n_components; j++)
                c->valid_indices |= UINT64_C(1) << j;
        for (size_t j = 0; j < m->n_dependencies; j++)
                c->valid_indices |= UINT64_C(1) << m->dependencies[j].index;

        if (have_shared) {
                k = sequence_decode(c, shared, 0, "shared-sequence", &m->shared_sequence, err);
                if (k < 0)
                        return k;
        }
        return 0;
}

#define MANIFEST_KEY_MAX 24

static bool manifest_key_is_known(int64_t key) {
        switch (key) {
        case SUIT_MANIFEST_VERSION:
        case SUIT_MANIFEST_SEQUENCE_NUMBER:
        case SUIT_MANIFEST_COMMON:
        case SUIT_MANIFEST_REFERENCE_URI:
        case SUIT_MANIFEST_COMPONENT_ID:
        case SUIT_MANIFEST_VALIDATE:
        case SUIT_MANIFEST_LOAD:
        case SUIT_MANIFEST_INVOKE:
        case SUIT_MANIFEST_DEPENDENCY_RESOLUTION:
        case SUIT_MANIFEST_PAYLOAD_FETCH:
        case SUIT_MANIFEST_CANDIDATE_VERIFICATION:
        case SUIT_MANIFEST_INSTALL:
        case SUIT_MANIFEST_TEXT:
        case SUIT_MANIFEST_UNINSTALL:
                return true;
        default:
                return false;
        }
}

static const char *manifest_key_name(int64_t key) {
        switch (key) {
        case SUIT_MANIFEST_VALIDATE:
                return "validate";
        case SUIT_MANIFEST_LOAD:
                return "load";
        case SUIT_MANIFEST_INVOKE:
                return "invoke";
        case SUIT_MANIFEST_DEPENDENCY_RESOLUTION:
                return "dependency-resolution";
        case SUIT_MANIFEST_PAYLOAD_FETCH:
                return "payload-fetch";
        case SUIT_MANIFEST_CANDIDATE_VERIFICATION:
                return "candidate-verification";
        case SUIT_MANIFEST_INSTALL:
                return "install";
        case SUIT_MANIFEST_TEXT:
                return "text";
        case SUIT_MANIFEST_UNINSTALL:
                return "uninstall";
        default:
                return "member";
        }
}

/*
 * Resolve a member that may be severed: in the manifest either the bstr itself or a
 * SUIT_Digest of the bstr-wrapped member that the envelope then carries at the same key.
 * ret_content is left empty (and *ret_severed set) when a severed text member is absent.
 */
static int severable_resolve(const TeepSuitEnvelope *env, int64_t key, TeepBuf raw, TeepBuf *ret_content,
                             bool *ret_severed, TeepSuitDigest *ret_digest, TeepError *err) {
        const TeepSuitEnvelopeMember *mem = envelope_member_const(env, key);
        const char *what = manifest_key_name(key);
        TeepCborReader r;
        TeepCborItem item;
        TeepSuitDigest d;
        int k;

        teep_cbor_reader_init(&r, raw);
        if (teep_cbor_read(&r, &item) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "%s", what);
        if (item.type == TEEP_CBOR_BYTES) {
                if (mem && mem->present)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEVERED,
                                              "%s is both in the manifest and in the envelope", what);
                *ret_content = item.str;
                *ret_severed = false;
                return 0;
        }
        if (item.type != TEEP_CBOR_ARRAY)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST,
                                      "%s is neither a byte string nor a SUIT_Digest", what);

        k = digest_decode(raw, &d, TEEP_REASON_SUIT_SEVERED, what, err);
        if (k < 0)
                return k;
        if (!mem || !mem->present) {
                if (key == SUIT_MANIFEST_TEXT) {
                        /* text is informational and commonly stripped: severed and absent is fine */
                        *ret_content = TEEP_BUF_NULL;
                        *ret_severed = true;
                        *ret_digest = d;
                        return 0;
                }
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEVERED,
                                      "%s is severed but the envelope does not carry it", what);
        }
        k = digest_check(&d, mem->wrapped, TEEP_REASON_SUIT_SEVERED, what, err);
        if (k < 0)
                return k;
        *ret_content = mem->content;
        *ret_severed = true;
        *ret_digest = d;
        return 0;
}

static TeepSuitSequence *manifest_sequence(TeepSuitManifest *m, int64_t key) {
        switch (key) {
        case SUIT_MANIFEST_VALIDATE:
                return &m->validate;
        case SUIT_MANIFEST_LOAD:
                return &m->load;
        case SUIT_MANIFEST_INVOKE:
                return &m->invoke;
        case SUIT_MANIFEST_DEPENDENCY_RESOLUTION:
                return &m->dependency_resolution;
        case SUIT_MANIFEST_PAYLOAD_FETCH:
                return &m->payload_fetch;
        case SUIT_MANIFEST_CANDIDATE_VERIFICATION:
                return &m->candidate_verification;
        case SUIT_MANIFEST_INSTALL:
                return &m->install;
        case SUIT_MANIFEST_UNINSTALL:
                return &m->uninstall;
        default:
                return NULL;
        }
}

static bool key_is_severable(int64_t key) {
        return key == SUIT_MANIFEST_DEPENDENCY_RESOLUTION || key == SUIT_MANIFEST_PAYLOAD_FETCH ||
               key == SUIT_MANIFEST_CANDIDATE_VERIFICATION || key == SUIT_MANIFEST_INSTALL ||
               key == SUIT_MANIFEST_TEXT;
}

static int manifest_decode_into(const TeepSuitEnvelope *env, TeepSuitManifest *m, TeepError *err) {
        TeepBuf members[MANIFEST_KEY_MAX + 1] = {};
        bool seen[MANIFEST_KEY_MAX + 1] = {};
        ManifestCtx c = {.m = m};
        TeepCborReader r;
        size_t n;
        int k;

        m->raw = env->manifest.content;
        k = nested_begin(m->raw, &r, TEEP_REASON_SUIT_MANIFEST, "manifest", err);
        if (k < 0)
                return k;
        if (teep_cbor_read_map(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST, "manifest is not a map");

        /* Pass 1: collect members, so that common is decoded before any sequence. */
        for (size_t i = 0; i < n; i++) {
                TeepCborItem item;
                int64_t key;

                if (teep_cbor_peek(&r, &item) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "manifest key");
                if (item.type != TEEP_CBOR_UINT && item.type != TEEP_CBOR_NEGINT)
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_MANIFEST,
                                              "manifest: unsupported member with a %s key",
                                              teep_cbor_type_to_string(item.type));
                if (teep_cbor_read_int(&r, &key, err) < 0 || !manifest_key_is_known(key))
                        return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_MANIFEST,
                                              "manifest: unsupported member %s%" PRIu64,
                                              item.type == TEEP_CBOR_NEGINT ? "-1-" : "", item.value);
                if (seen[key])
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                              "manifest: member %" PRId64 " twice", key);
                seen[key] = true;
                if (teep_cbor_skip(&r, &members[key]) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED,
                                              "manifest member %" PRId64, key);
        }

        if (!seen[SUIT_MANIFEST_VERSION] || !seen[SUIT_MANIFEST_SEQUENCE_NUMBER] ||
            !seen[SUIT_MANIFEST_COMMON])
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST, "manifest lacks %s",
                                      !seen[SUIT_MANIFEST_VERSION]           ? "manifest-version"
                                      : !seen[SUIT_MANIFEST_SEQUENCE_NUMBER] ? "manifest-sequence-number"
                                                                             : "common");

        teep_cbor_reader_init(&r, members[SUIT_MANIFEST_VERSION]);
        if (teep_cbor_read_uint(&r, &m->version, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_VERSION,
                                      "manifest-version is not a uint");
        if (m->version != SUIT_MANIFEST_VERSION_1)
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_SUIT_VERSION,
                                      "manifest-version %" PRIu64 ", only 1 is supported", m->version);

        teep_cbor_reader_init(&r, members[SUIT_MANIFEST_SEQUENCE_NUMBER]);
        if (teep_cbor_read_uint(&r, &m->sequence_number, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST,
                                      "manifest-sequence-number is not a uint");

        teep_cbor_reader_init(&r, members[SUIT_MANIFEST_COMMON]);
        if (teep_cbor_read_bytes(&r, &m->common_raw, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_COMMON, "common is not a byte string");
        k = common_decode(&c, m->common_raw, err);
        if (k < 0)
                return k;

        if (seen[SUIT_MANIFEST_REFERENCE_URI]) {
                teep_cbor_reader_init(&r, members[SUIT_MANIFEST_REFERENCE_URI]);
                if (teep_cbor_read_text(&r, &m->reference_uri, err) < 0)
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST,
                                              "reference-uri is not text");
                m->has_reference_uri = true;
        }

        if (seen[SUIT_MANIFEST_COMPONENT_ID]) {
                teep_cbor_reader_init(&r, members[SUIT_MANIFEST_COMPONENT_ID]);
                k = teep_suit_component_id_read(&r, &m->manifest_component_id, err);
                if (k < 0)
                        return teep_error_prefix(err, k, "manifest-component-id");
                m->has_manifest_component_id = true;
        }

        if (seen[SUIT_MANIFEST_TEXT]) {
                TeepSuitDigest d = {};
                k = severable_resolve(env, SUIT_MANIFEST_TEXT, members[SUIT_MANIFEST_TEXT], &m->text,
                                      &m->text_severed, &d, err);
                if (k < 0)
                        return k;
                m->has_text = m->text.ptr != NULL;
        }

        for (int64_t key = 0; key <= MANIFEST_KEY_MAX; key++) {
                TeepSuitSequence *seq = manifest_sequence(m, key);
                TeepBuf content = {};
                TeepSuitDigest d = {};
                bool severed = false;

                if (!seq || !seen[key])
                        continue;
                if (key_is_severable(key)) {
                        k = severable_resolve(env, key, members[key], &content, &severed, &d, err);
                        if (k < 0)
                                return k;
                } else {
                        teep_cbor_reader_init(&r, members[key]);
                        if (teep_cbor_read_bytes(&r, &content, err) < 0)
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_MANIFEST,
                                                      "%s is not a bstr-wrapped command sequence",
                                                      manifest_key_name(key));
                }
                k = sequence_decode(&c, content, 0, manifest_key_name(key), seq, err);
                if (k < 0)
                        return k;
                seq->severed = severed;
                seq->digest = d;
        }

        /* Anything severed in the envelope must be referenced by a digest in the manifest. */
        for (int64_t key = 0; key <= MANIFEST_KEY_MAX; key++) {
                const TeepSuitEnvelopeMember *mem;

                if (!key_is_severable(key))
                        continue;
                mem = envelope_member_const(env, key);
                if (mem && mem->present && !seen[key])
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_SEVERED,
                                              "the envelope carries %s, the manifest does not reference it",
                                              manifest_key_name(key));
        }
        return 0;
}

int teep_suit_manifest_decode(const TeepSuitEnvelope *env, unsigned flags, TeepSuitManifest **ret,
                              TeepError *err) {
        TeepSuitManifest *m;
        int k;

        if (!env || !ret)
                return -EINVAL;
        if (!env->authenticated && !(flags & TEEP_SUIT_DECODE_UNAUTHENTICATED))
                return teep_error_set(err, -EINVAL, TEEP_REASON_SUIT_AUTH,
                                      "the envelope was not authenticated (teep_suit_envelope_verify)");
        if (!env->manifest.present)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_SUIT_ENVELOPE,
                                      "SUIT envelope has no manifest");

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        k = manifest_decode_into(env, m, err);
        if (k < 0) {
                teep_suit_manifest_free(m);
                return k;
        }
        *ret = m;
        return 0;
}

const char *teep_suit_command_to_string(int64_t label) {
        switch (label) {
        case SUIT_CONDITION_VENDOR_IDENTIFIER:
                return "condition-vendor-identifier";
        case SUIT_CONDITION_CLASS_IDENTIFIER:
                return "condition-class-identifier";
        case SUIT_CONDITION_IMAGE_MATCH:
                return "condition-image-match";
        case SUIT_CONDITION_COMPONENT_SLOT:
                return "condition-component-slot";
        case SUIT_CONDITION_CHECK_CONTENT:
                return "condition-check-content";
        case SUIT_CONDITION_DEPENDENCY_INTEGRITY:
                return "condition-dependency-integrity";
        case SUIT_CONDITION_IS_DEPENDENCY:
                return "condition-is-dependency";
        case SUIT_DIRECTIVE_PROCESS_DEPENDENCY:
                return "directive-process-dependency";
        case SUIT_DIRECTIVE_SET_COMPONENT_INDEX:
                return "directive-set-component-index";
        case SUIT_CONDITION_ABORT:
                return "condition-abort";
        case SUIT_DIRECTIVE_TRY_EACH:
                return "directive-try-each";
        case SUIT_DIRECTIVE_WRITE:
                return "directive-write";
        case SUIT_DIRECTIVE_SET_PARAMETERS:
                return "directive-set-parameters";
        case SUIT_DIRECTIVE_OVERRIDE_PARAMETERS:
                return "directive-override-parameters";
        case SUIT_DIRECTIVE_FETCH:
                return "directive-fetch";
        case SUIT_DIRECTIVE_COPY:
                return "directive-copy";
        case SUIT_DIRECTIVE_INVOKE:
                return "directive-invoke";
        case SUIT_CONDITION_DEVICE_IDENTIFIER:
                return "condition-device-identifier";
        case SUIT_DIRECTIVE_SWAP:
                return "directive-swap";
        case SUIT_DIRECTIVE_RUN_SEQUENCE:
                return "directive-run-sequence";
        case SUIT_DIRECTIVE_UNLINK:
                return "directive-unlink";
        default:
                return NULL;
        }
}

/* ---- building ---- */

/* Append the finished encoding of inner to w as a byte string (bstr .cbor). Consumes inner. */
static void put_wrapped(TeepCborWriter *w, TeepCborWriter *inner) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int k;

        k = teep_cbor_writer_finish(inner, &buf, &len);
        if (k < 0) {
                if (!w->error)
                        w->error = k;
                return;
        }
        teep_cbor_put_bytes(w, buf, len);
        free(buf);
}

static void put_digest_wrapped(TeepCborWriter *w, TeepBuf sha256) {
        TeepCborWriter d;

        teep_cbor_writer_init(&d);
        teep_cbor_put_array(&d, 2);
        teep_cbor_put_int(&d, COSE_ALG_SHA256);
        teep_cbor_put_buf(&d, sha256);
        put_wrapped(w, &d);
}

static bool component_id_valid(const TeepSuitComponentId *id) {
        if (!id || id->n_segments > TEEP_COMPONENT_MAX_SEGMENTS)
                return false;
        for (size_t i = 0; i < id->n_segments; i++)
                if (id->segments[i].len > 0 && !id->segments[i].ptr)
                        return false;
        return true;
}

static int build_check_common(const TeepSuitBuild *b) {
        if (!b || !component_id_valid(b->component_id) || b->component_id->n_segments == 0)
                return -EINVAL;
        if (b->manifest_component_id && !component_id_valid(b->manifest_component_id))
                return -EINVAL;
        if (!b->vendor_id.ptr || b->vendor_id.len != TEEP_SUIT_UUID_LEN || !b->class_id.ptr ||
            b->class_id.len != TEEP_SUIT_UUID_LEN)
                return -EINVAL;
        return 0;
}

/* {[1: {1: {1: prefix}},] 2: [component_id], 4: << shared >>} */
static void put_common(TeepCborWriter *w, const TeepSuitBuild *b, TeepCborWriter *shared) {
        TeepCborWriter common;

        teep_cbor_writer_init(&common);
        teep_cbor_put_map(&common, b->dependency ? 3 : 2);
        if (b->dependency) {
                teep_cbor_put_uint(&common, SUIT_COMMON_DEPENDENCIES);
                teep_cbor_put_map(&common, 1);
                teep_cbor_put_uint(&common, 1);
                teep_cbor_put_map(&common, 1);
                teep_cbor_put_uint(&common, SUIT_DEPENDENCY_PREFIX);
                teep_suit_component_id_put(&common, b->dependency->prefix);
        }
        teep_cbor_put_uint(&common, SUIT_COMMON_COMPONENTS);
        teep_cbor_put_array(&common, 1);
        teep_suit_component_id_put(&common, b->component_id);
        teep_cbor_put_uint(&common, SUIT_COMMON_SHARED_SEQUENCE);
        put_wrapped(&common, shared);
        put_wrapped(w, &common);
}

static void put_condition_pair(TeepCborWriter *w, int64_t label) {
        teep_cbor_put_int(w, label);
        teep_cbor_put_uint(w, SUIT_POLICY_ALL);
}

static void put_sequence_1(TeepCborWriter *w, int64_t label) {
        TeepCborWriter s;

        teep_cbor_writer_init(&s);
        teep_cbor_put_array(&s, 2);
        put_condition_pair(&s, label);
        put_wrapped(w, &s);
}

/*
 * shared-sequence: [override {1 vendor, 2 class[, 3 digest, 14 size]}, check vendor 15,
 * check class 15]; the image parameters only where there is an image (install, not unlink).
 */
static void put_shared_sequence(TeepCborWriter *shared, const TeepSuitBuild *b, bool with_image) {
        teep_cbor_writer_init(shared);
        teep_cbor_put_array(shared, b->dependency ? 8 : 6);
        if (b->dependency) {
                teep_cbor_put_uint(shared, SUIT_DIRECTIVE_SET_COMPONENT_INDEX);
                teep_cbor_put_uint(shared, 0);
        }
        teep_cbor_put_uint(shared, SUIT_DIRECTIVE_OVERRIDE_PARAMETERS);
        teep_cbor_put_map(shared, with_image ? 4 : 2);
        teep_cbor_put_uint(shared, SUIT_PARAM_VENDOR_IDENTIFIER);
        teep_cbor_put_buf(shared, b->vendor_id);
        teep_cbor_put_uint(shared, SUIT_PARAM_CLASS_IDENTIFIER);
        teep_cbor_put_buf(shared, b->class_id);
        if (with_image) {
                teep_cbor_put_uint(shared, SUIT_PARAM_IMAGE_DIGEST);
                put_digest_wrapped(shared, b->image_digest);
                teep_cbor_put_uint(shared, SUIT_PARAM_IMAGE_SIZE);
                teep_cbor_put_uint(shared, b->image_size);
        }
        put_condition_pair(shared, SUIT_CONDITION_VENDOR_IDENTIFIER);
        put_condition_pair(shared, SUIT_CONDITION_CLASS_IDENTIFIER);
}

int teep_suit_manifest_encode_install(const TeepSuitBuild *b, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w, shared, install;
        size_t pairs;
        int k;

        k = build_check_common(b);
        if (k < 0)
                return k;
        if (!b->image_digest.ptr || b->image_digest.len != TEEP_SUIT_SHA256_LEN || !b->uri || !*b->uri ||
            !teep_utf8_is_valid(TEEP_BUF(b->uri, strlen(b->uri))))
                return -EINVAL;
        if (b->payload.ptr && b->encryption_info.ptr) {
                if (b->uri[0] != '#')
                        return -EINVAL;
        } else if (b->payload.ptr) {
                uint8_t md[TEEP_SUIT_SHA256_LEN];

                if (b->uri[0] != '#' || b->payload.len != b->image_size)
                        return -EINVAL;
                k = teep_sha256(b->payload, md);
                if (k < 0)
                        return k;
                if (memcmp(md, b->image_digest.ptr, sizeof(md)) != 0)
                        return -EINVAL;
        }

        if (b->dependency) {
                const TeepSuitBuildDependency *d = b->dependency;
                if (!component_id_valid(d->prefix) || d->prefix->n_segments == 0 || !d->digest.ptr ||
                    d->digest.len != TEEP_SUIT_SHA256_LEN || !d->uri || !*d->uri ||
                    !teep_utf8_is_valid(TEEP_BUF(d->uri, strlen(d->uri))))
                        return -EINVAL;
        }
        put_shared_sequence(&shared, b, true);

        /* install: [override {21 uri}, fetch 15, image-match 15]; encrypted: see TeepSuitBuild */
        teep_cbor_writer_init(&install);
        teep_cbor_put_array(&install, b->dependency ? 12 : 6);
        if (b->dependency) {
                teep_cbor_put_uint(&install, SUIT_DIRECTIVE_SET_COMPONENT_INDEX);
                teep_cbor_put_uint(&install, 1);
                put_condition_pair(&install, SUIT_DIRECTIVE_PROCESS_DEPENDENCY);
                teep_cbor_put_uint(&install, SUIT_DIRECTIVE_SET_COMPONENT_INDEX);
                teep_cbor_put_uint(&install, 0);
        }
        teep_cbor_put_uint(&install, SUIT_DIRECTIVE_OVERRIDE_PARAMETERS);
        if (b->encryption_info.ptr && b->payload.ptr) {
                teep_cbor_put_map(&install, 2);
                teep_cbor_put_uint(&install, SUIT_PARAM_CONTENT);
                teep_cbor_put_buf(&install, b->payload);
                teep_cbor_put_uint(&install, SUIT_PARAM_ENCRYPTION_INFO);
                teep_cbor_put_buf(&install, b->encryption_info);
                put_condition_pair(&install, SUIT_DIRECTIVE_WRITE);
        } else {
                teep_cbor_put_map(&install, b->encryption_info.ptr ? 2 : 1);
                if (b->encryption_info.ptr) {
                        teep_cbor_put_uint(&install, SUIT_PARAM_ENCRYPTION_INFO);
                        teep_cbor_put_buf(&install, b->encryption_info);
                }
                teep_cbor_put_uint(&install, SUIT_PARAM_URI);
                teep_cbor_put_cstr(&install, b->uri);
                put_condition_pair(&install, SUIT_DIRECTIVE_FETCH);
        }
        put_condition_pair(&install, SUIT_CONDITION_IMAGE_MATCH);

        pairs = 4 + !!b->manifest_component_id + !!b->validate + !!b->uninstall_unlink + !!b->dependency;
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, pairs);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_VERSION);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_VERSION_1);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_SEQUENCE_NUMBER);
        teep_cbor_put_uint(&w, b->sequence_number);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_COMMON);
        put_common(&w, b, &shared);
        if (b->manifest_component_id) {
                teep_cbor_put_uint(&w, SUIT_MANIFEST_COMPONENT_ID);
                teep_suit_component_id_put(&w, b->manifest_component_id);
        }
        if (b->validate) {
                teep_cbor_put_uint(&w, SUIT_MANIFEST_VALIDATE);
                put_sequence_1(&w, SUIT_CONDITION_IMAGE_MATCH);
        }
        if (b->dependency) {
                TeepCborWriter dr;
                teep_cbor_writer_init(&dr);
                teep_cbor_put_array(&dr, 8);
                teep_cbor_put_uint(&dr, SUIT_DIRECTIVE_SET_COMPONENT_INDEX);
                teep_cbor_put_uint(&dr, 1);
                teep_cbor_put_uint(&dr, SUIT_DIRECTIVE_OVERRIDE_PARAMETERS);
                teep_cbor_put_map(&dr, 3);
                teep_cbor_put_uint(&dr, SUIT_PARAM_IMAGE_DIGEST);
                put_digest_wrapped(&dr, b->dependency->digest);
                teep_cbor_put_uint(&dr, SUIT_PARAM_IMAGE_SIZE);
                teep_cbor_put_uint(&dr, b->dependency->size);
                teep_cbor_put_uint(&dr, SUIT_PARAM_URI);
                teep_cbor_put_cstr(&dr, b->dependency->uri);
                put_condition_pair(&dr, SUIT_DIRECTIVE_FETCH);
                put_condition_pair(&dr, SUIT_CONDITION_DEPENDENCY_INTEGRITY);
                teep_cbor_put_uint(&w, SUIT_MANIFEST_DEPENDENCY_RESOLUTION);
                put_wrapped(&w, &dr);
        }
        teep_cbor_put_uint(&w, SUIT_MANIFEST_INSTALL);
        put_wrapped(&w, &install);
        if (b->uninstall_unlink) {
                teep_cbor_put_uint(&w, SUIT_MANIFEST_UNINSTALL);
                put_sequence_1(&w, SUIT_DIRECTIVE_UNLINK);
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

int teep_suit_manifest_encode_unlink(const TeepSuitBuild *b, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w, shared;
        int k;

        k = build_check_common(b);
        if (k < 0)
                return k;

        put_shared_sequence(&shared, b, false);

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 4 + !!b->manifest_component_id);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_VERSION);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_VERSION_1);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_SEQUENCE_NUMBER);
        teep_cbor_put_uint(&w, b->sequence_number);
        teep_cbor_put_uint(&w, SUIT_MANIFEST_COMMON);
        put_common(&w, b, &shared);
        if (b->manifest_component_id) {
                teep_cbor_put_uint(&w, SUIT_MANIFEST_COMPONENT_ID);
                teep_suit_component_id_put(&w, b->manifest_component_id);
        }
        teep_cbor_put_uint(&w, SUIT_MANIFEST_INSTALL);
        put_sequence_1(&w, SUIT_DIRECTIVE_UNLINK);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

/* CBOR deterministic order of text keys: shorter first, then bytewise. */
static int payload_key_cmp(TeepBuf a, TeepBuf b) {
        if (a.len != b.len)
                return a.len < b.len ? -1 : 1;
        return a.len == 0 ? 0 : memcmp(a.ptr, b.ptr, a.len);
}

int teep_suit_envelope_sign(TeepBuf manifest, const TeepKey *key, int64_t alg,
                            const TeepSuitPayload *payloads, size_t n_payloads, uint8_t **ret,
                            size_t *ret_len) {
        size_t order[TEEP_SUIT_MAX_PAYLOADS];
        uint8_t md[TEEP_SUIT_SHA256_LEN];
        uint8_t *wrapped = NULL, *digest = NULL, *sig = NULL;
        size_t wrapped_len = 0, digest_len = 0, sig_len = 0;
        TeepCborWriter w, auth;
        int k;

        if (!manifest.ptr || manifest.len == 0 || !key || (n_payloads > 0 && !payloads) ||
            n_payloads > TEEP_SUIT_MAX_PAYLOADS)
                return -EINVAL;
        for (size_t i = 0; i < n_payloads; i++) {
                if (!payloads[i].key.ptr || payloads[i].key.len == 0 ||
                    !teep_utf8_is_valid(payloads[i].key) ||
                    (!payloads[i].data.ptr && payloads[i].data.len > 0))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (teep_buf_eq(payloads[i].key, payloads[j].key))
                                return -EINVAL;
        }
        /* insertion sort of at most TEEP_SUIT_MAX_PAYLOADS indices */
        for (size_t i = 0; i < n_payloads; i++) {
                size_t j = i;
                while (j > 0 && payload_key_cmp(payloads[order[j - 1]].key, payloads[i].key) > 0) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }

        /* The digest covers the manifest as it sits in the envelope: bstr head included. */
        teep_cbor_writer_init(&w);
        teep_cbor_put_buf(&w, manifest);
        k = teep_cbor_writer_finish(&w, &wrapped, &wrapped_len);
        if (k < 0)
                return k;
        k = teep_sha256(TEEP_BUF(wrapped, wrapped_len), md);
        if (k < 0)
                goto out;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_int(&w, COSE_ALG_SHA256);
        teep_cbor_put_bytes(&w, md, sizeof(md));
        k = teep_cbor_writer_finish(&w, &digest, &digest_len);
        if (k < 0)
                goto out;

        k = teep_cose_sign1(key, alg, NULL, TEEP_BUF(digest, digest_len), true, &sig, &sig_len);
        if (k < 0)
                goto out;

        teep_cbor_writer_init(&auth);
        teep_cbor_put_array(&auth, 2);
        teep_cbor_put_bytes(&auth, digest, digest_len);
        teep_cbor_put_bytes(&auth, sig, sig_len);

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 2 + n_payloads);
        teep_cbor_put_uint(&w, SUIT_ENVELOPE_AUTHENTICATION_WRAPPER);
        put_wrapped(&w, &auth);
        teep_cbor_put_uint(&w, SUIT_ENVELOPE_MANIFEST);
        teep_cbor_put_raw(&w, TEEP_BUF(wrapped, wrapped_len));
        for (size_t i = 0; i < n_payloads; i++) {
                const TeepSuitPayload *p = &payloads[order[i]];
                teep_cbor_put_text(&w, (const char *)p->key.ptr, p->key.len);
                teep_cbor_put_bytes(&w, p->data.ptr, p->data.len);
        }
        k = teep_cbor_writer_finish(&w, ret, ret_len);
out:
        free(wrapped);
        free(digest);
        free(sig);
        return k;
}

int teep_suit_envelope_build_install(const TeepSuitBuild *b, const TeepKey *key, int64_t alg, uint8_t **ret,
                                     size_t *ret_len) {
        TeepSuitPayload p = {};
        uint8_t *manifest = NULL;
        size_t manifest_len = 0;
        int k;

        k = teep_suit_manifest_encode_install(b, &manifest, &manifest_len);
        if (k < 0)
                return k;
        /* an encrypted integrated payload travels inside the manifest (parameter 18) */
        bool attach = b->payload.ptr && !b->encryption_info.ptr;
        if (attach)
                p = (TeepSuitPayload){.key = TEEP_BUF(b->uri, strlen(b->uri)), .data = b->payload};
        k = teep_suit_envelope_sign(TEEP_BUF(manifest, manifest_len), key, alg, attach ? &p : NULL, attach ? 1 : 0, ret,
                                    ret_len);
        free(manifest);
        return k;
}

int teep_suit_envelope_build_unlink(const TeepSuitBuild *b, const TeepKey *key, int64_t alg, uint8_t **ret,
                                    size_t *ret_len) {
        uint8_t *manifest = NULL;
        size_t manifest_len = 0;
        int k;

        k = teep_suit_manifest_encode_unlink(b, &manifest, &manifest_len);
        if (k < 0)
                return k;
        k = teep_suit_envelope_sign(TEEP_BUF(manifest, manifest_len), key, alg, NULL, 0, ret, ret_len);
        free(manifest);
        return k;
}
