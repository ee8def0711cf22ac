/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* update.c: Update → the SUIT update procedure for each manifest, all or nothing → Success/Error */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-internal.h"
#include "decrypt.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-encrypt.h"
#include "teep-suit.h"

/*
 * The procedure, per manifest in manifest-list (draft-ietf-suit-manifest §8, TEEP §4.4):
 *   decode the envelope → authenticate it with the TC signer keys → decode the manifest →
 *   anti-rollback (lower sequence number refused, equal is an idempotent re-apply) →
 *   run dependency-resolution, payload-fetch, candidate-verification, install, validate,
 *   each after the shared sequence → the staged image must be bound by an image digest
 *   (and size, when given) that the signer wrote.
 * Nothing touches the store until every manifest has been staged. Then the journal is
 * written, the installer called for each change, and the state committed; if the installer
 * fails midway, the changes already made are undone by the installer (Installer1.Restore puts
 * back the file each change replaced, which it kept as an undo record), so the store and the
 * state stay as they were. The agent keeps no copy of any image.
 */

#define MAX_U64(x, y) ((x) > (y) ? (x) : (y))

enum {
        ACT_NONE,    /* nothing to do (unlink of something not installed) */
        ACT_KEEP,    /* the same image at the same sequence number: idempotent */
        ACT_INSTALL,
        ACT_REMOVE,
};

typedef struct Staged {
        size_t index; /* in manifest-list, or SIZE_MAX for an unneeded-manifest-list entry */
        bool is_dependency; /* staged by process-dependency of manifest `index` */
        int action;
        char *component;
        uint8_t *component_raw; /* encoded component id, for the report */
        size_t component_raw_len;
        char *manifest_id;
        char *reference_uri;
        bool has_digest;
        uint8_t manifest_digest[32];
        uint64_t seq;
        uint8_t *payload;
        size_t payload_len;
        bool has_payload_fd; /* a URI payload: the broker's sealed memfd, never in our heap */
        int payload_fd;
        uint8_t sha256[32];
        bool secret; /* payload is the plaintext of an encrypted image: wiped when freed */
        uint8_t *stored; /* the envelope without integrated payloads, kept in manifests/ */
        size_t stored_len;
        uint8_t stored_hash[32];
        /* failure */
        int error;
        int reason;
        int64_t section;
        uint64_t offset;
        char msg[512];
} Staged;

static void staged_done(Staged *s) {
        free(s->component);
        free(s->component_raw);
        free(s->manifest_id);
        free(s->reference_uri);
        if (s->secret)
                agent_plaintext_free(s->payload, s->payload_len);
        else
                free(s->payload);
        free(s->stored);
        if (s->has_payload_fd)
                safe_close(s->payload_fd);
        *s = (Staged){};
}

static int staged_fail(Staged *s, int error, int reason, int64_t section, uint64_t offset, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));
static int staged_fail(Staged *s, int error, int reason, int64_t section, uint64_t offset, const char *fmt, ...) {
        va_list ap;

        s->error = error < 0 ? error : -error;
        s->reason = reason;
        s->section = section;
        s->offset = offset;
        va_start(ap, fmt);
        (void)vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
        va_end(ap);
        return s->error;
}

/* The SUIT report reason for a libteep failure. */
static int reason_for(int r, TeepReason why) {
        switch (why) {
        case TEEP_REASON_SUIT_COMMAND:
                return SUIT_REPORT_REASON_COMMAND_UNSUPPORTED;
        case TEEP_REASON_SUIT_PARAMETER:
                return SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED;
        case TEEP_REASON_SUIT_COMPONENT:
                return SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED;
        case TEEP_REASON_SUIT_DIGEST_ALG:
        case TEEP_REASON_COSE_ALG_UNSUPPORTED:
        case TEEP_REASON_ENC_ALG:
                return SUIT_REPORT_REASON_ALG_UNSUPPORTED;
        case TEEP_REASON_COSE_CRIT:
                return SUIT_REPORT_REASON_COSE_UNSUPPORTED;
        case TEEP_REASON_SUIT_SEVERED:
                return r == -EKEYREJECTED ? SUIT_REPORT_REASON_UNAUTHORISED : SUIT_REPORT_REASON_SEVERING_UNSUPPORTED;
        default:
                break;
        }
        switch (-r) {
        case EKEYREJECTED:
        case ENOKEY:
                return SUIT_REPORT_REASON_UNAUTHORISED;
        case EOPNOTSUPP:
                return SUIT_REPORT_REASON_COMMAND_UNSUPPORTED;
        case EBADMSG:
        case E2BIG:
                return SUIT_REPORT_REASON_CBOR_PARSE;
        default:
                return SUIT_REPORT_REASON_OPERATION_FAILED;
        }
}

/* ---- the command interpreter ---- */

/* Every Staged of one Update lives in one fixed array, so that process-dependency can add the
 * dependencies it stages without moving anything (pointers into it stay valid). */
typedef struct StageCtx {
        Agent *a;
        const AgentState *base;
        Staged *staged;
        size_t *n_staged;
        size_t cap;
        size_t tam; /* who sent the Update: a dependency obeys the same management rules */
        const char *tam_uri;
} StageCtx;

/* Dependencies (draft-ietf-suit-trust-domains): nested at most this deep, and a manifest
 * digest may appear only once on the way down (a cycle is refused). */
#define AGENT_MAX_DEPENDENCY_DEPTH 4
#define AGENT_MAX_DEPENDENCY_STAGED 16 /* dependencies staged in one Update, all levels */

typedef struct Run {
        Agent *a;
        StageCtx *ctx;
        unsigned depth;                   /* 0: a manifest of manifest-list */
        const uint8_t (*chain)[32];       /* manifest digests from the root down to this one */
        Staged *st;
        const TeepSuitEnvelope *env;
        const TeepSuitManifest *man;
        const AgentTc *installed;   /* the TC this manifest replaces, if any */
        TeepSuitParameters p;
        uint8_t *content;           /* the candidate image (component 0) */
        size_t content_len;
        bool has_content;
        int content_fd;             /* >= 0: the content is this sealed memfd (content is NULL) */
        uint8_t content_sha[32];    /* its SHA-256, computed once while streaming it */
        bool secret;                /* content is the plaintext of an encrypted image (wiped on free) */
        bool unlink;
        int64_t section;
        TeepBuf section_raw;        /* for offsets */
        /* component selection: 0 = component 0, 1 + i = man->dependencies[i]; parameters are
         * per component, p holds the selected one's */
        size_t cur;
        TeepSuitParameters params[1 + TEEP_SUIT_MAX_DEPENDENCIES];
        /* per dependency: the fetched envelope, whether its digest was checked, whether it ran */
        uint8_t *dep_data[TEEP_SUIT_MAX_DEPENDENCIES];
        size_t dep_len[TEEP_SUIT_MAX_DEPENDENCIES];
        bool dep_verified[TEEP_SUIT_MAX_DEPENDENCIES];
        bool dep_processed[TEEP_SUIT_MAX_DEPENDENCIES];
        bool dep_bound[TEEP_SUIT_MAX_DEPENDENCIES]; /* an image-digest was set when it was fetched */
        uint8_t dep_want[TEEP_SUIT_MAX_DEPENDENCIES][32];
        uint8_t dep_digest[TEEP_SUIT_MAX_DEPENDENCIES][32]; /* its manifest digest, once verified */
        /* a condition failure waiting to be reported if nothing absorbs it */
        int cond_error;
        char cond_msg[400];
        uint64_t cond_offset;
} Run;

static uint64_t command_offset(const Run *run, const TeepSuitCommand *c) {
        uint64_t v = c->label >= 0 ? (uint64_t)c->label : (uint64_t)(-1 - c->label);
        size_t head = v < 24 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
        const uint8_t *start = run->section_raw.ptr, *end = start ? start + run->section_raw.len : NULL;

        if (!start || c->arg.ptr < start + head || c->arg.ptr > end)
                return 0;
        return (uint64_t)(c->arg.ptr - start) - head;
}

static int run_fail(Run *run, const TeepSuitCommand *c, int error, int reason, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int run_fail(Run *run, const TeepSuitCommand *c, int error, int reason, const char *fmt, ...) {
        char msg[512];
        const char *name = teep_suit_command_to_string(c->label);
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return staged_fail(run->st, error, reason, run->section, command_offset(run, c), "%.40s: %.300s", name ?: "command", msg);
}

/* A condition did not hold: absorbed by try-each, else reported as condition-failed. */
static int cond_fail(Run *run, const TeepSuitCommand *c, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cond_fail(Run *run, const TeepSuitCommand *c, int error, const char *fmt, ...) {
        char msg[512];
        const char *name = teep_suit_command_to_string(c->label);
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        run->cond_error = error;
        run->cond_offset = command_offset(run, c);
        (void)snprintf(run->cond_msg, sizeof(run->cond_msg), "%.40s: %.300s", name ?: "condition", msg);
        return 1;
}

static void params_merge(TeepSuitParameters *dst, const TeepSuitParameters *src, bool override) {
        for (int l = 0; l < 64; l++) {
                if (!teep_suit_parameters_has(src, l))
                        continue;
                if (!override && teep_suit_parameters_has(dst, l))
                        continue;
                switch (l) {
                case SUIT_PARAM_VENDOR_IDENTIFIER:
                        dst->vendor_id = src->vendor_id;
                        dst->vendor_id_is_pen = src->vendor_id_is_pen;
                        break;
                case SUIT_PARAM_CLASS_IDENTIFIER:
                        dst->class_id = src->class_id;
                        break;
                case SUIT_PARAM_IMAGE_DIGEST:
                        dst->image_digest_raw = src->image_digest_raw;
                        dst->image_digest = src->image_digest;
                        break;
                case SUIT_PARAM_COMPONENT_SLOT:
                        dst->component_slot = src->component_slot;
                        break;
                case SUIT_PARAM_STRICT_ORDER:
                        dst->strict_order = src->strict_order;
                        break;
                case SUIT_PARAM_SOFT_FAILURE:
                        dst->soft_failure = src->soft_failure;
                        break;
                case SUIT_PARAM_IMAGE_SIZE:
                        dst->image_size = src->image_size;
                        break;
                case SUIT_PARAM_CONTENT:
                        dst->content = src->content;
                        break;
                case SUIT_PARAM_ENCRYPTION_INFO:
                        dst->encryption_info = src->encryption_info;
                        break;
                case SUIT_PARAM_URI:
                        dst->uri = src->uri;
                        break;
                case SUIT_PARAM_SOURCE_COMPONENT:
                        dst->source_component = src->source_component;
                        break;
                case SUIT_PARAM_INVOKE_ARGS:
                        dst->invoke_args = src->invoke_args;
                        break;
                case SUIT_PARAM_DEVICE_IDENTIFIER:
                        dst->device_id = src->device_id;
                        break;
                case SUIT_PARAM_FETCH_ARGUMENTS:
                        dst->fetch_arguments = src->fetch_arguments;
                        break;
                case SUIT_PARAM_VERSION:
                        dst->version_raw = src->version_raw;
                        break;
                default:
                        continue; /* unknown parameters are data nobody here consumes */
                }
                dst->present |= UINT64_C(1) << l;
        }
}

static bool id_configured(const uint8_t ids[][16], size_t n, TeepBuf id) {
        for (size_t i = 0; i < n; i++)
                if (id.len == 16 && memcmp(ids[i], id.ptr, 16) == 0)
                        return true;
        return false;
}

static void drop_content(Run *run) {
        run->content_fd = safe_close(run->content_fd);
        if (run->secret)
                agent_plaintext_free(run->content, run->content_len);
        else
                free(run->content);
        run->secret = false;
        run->content = NULL;
        run->content_len = 0;
}

static int set_content(Run *run, const uint8_t *data, size_t len) {
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        if (len)
                memcpy(copy, data, len);
        drop_content(run);
        run->content = copy;
        run->content_len = len;
        run->has_content = true;
        return 0;
}

/* The current component's content is ciphertext under encryption-info: decrypt it with the
 * device key (decrypt.c). The plaintext stays in this process until the installer gets it. */
static int decrypt_content(Run *run, const TeepSuitCommand *c, TeepBuf ciphertext) {
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        TeepError err = {};
        int r;

        r = agent_decrypt(run->a, run->p.encryption_info, ciphertext, &plain, &plain_len, &err);
        if (r == -ENOMEM)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "out of memory");
        if (r < 0)
                return run_fail(run, c, r, reason_for(r, err.reason), "decryption failed: %s: %.200s",
                                teep_reason_to_string(err.reason), err.detail);
        drop_content(run);
        run->content = plain;
        run->content_len = plain_len;
        run->has_content = true;
        run->secret = true;
        return 0;
}

/* The uri parameter of a fetch as a C string (at most 4096 bytes, no NUL), and the size bound:
 * image-size when it is below *max. */
static int run_uri_parameter(Run *run, const TeepSuitCommand *c, char **ret_uri, uint64_t *max) {
        char *uri;

        if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_URI) || run->p.uri.len == 0)
                return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no uri parameter");
        if (run->p.uri.len > 4096)
                return run_fail(run, c, -E2BIG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "uri too long");
        if (memchr(run->p.uri.ptr, 0, run->p.uri.len))
                return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "uri contains NUL");
        uri = strndup((const char *)run->p.uri.ptr, run->p.uri.len);
        if (!uri)
                return -ENOMEM;
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && run->p.image_size < *max)
                *max = run->p.image_size;
        *ret_uri = uri;
        return 0;
}

static int stream_fail(Run *run, const TeepSuitCommand *c, int r, uint64_t max, const char *what) {
        if (r == -EFBIG)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "size mismatch: payload larger than %" PRIu64,
                                max);
        if (r == -ETIMEDOUT)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "%s: the payload stalled (nothing for %" PRIu64 " ms, or over %" PRIu64 " s in all)", what,
                                run->a->cfg.payload_stall_usec / 1000u, run->a->cfg.payload_timeout_usec / 1000000u);
        if (r == -ENOMEM)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "out of memory");
        return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "%s: %s", what, strerror(-r));
}

/* A stream that ended before the size the server announced (the broker passes Content-Length
 * on): the download broke off, which is the network's failure, not the signer's. The broker
 * may lie about it; that only changes how the failure is named. */
static int stream_cut_short(Run *run, const TeepSuitCommand *c, uint64_t len, uint64_t claimed) {
        if (claimed == UINT64_MAX || len >= claimed)
                return 0;
        return run_fail(run, c, -EHOSTUNREACH, SUIT_REPORT_REASON_OPERATION_FAILED,
                        "the download ended after %" PRIu64 " of the %" PRIu64 " bytes announced", len, claimed);
}

/* A streamed plaintext payload goes on to the installer as it comes, hashed on the way: staged
 * in the store, out of sight, never all in memory here. What the installer counted must be what
 * we sent; the image-digest check comes later, as for any content. Returns 0 with the content
 * set to the installer's read-only descriptor of the staged file. */
static int stage_stream(Run *run, const TeepSuitCommand *c, int in_fd, const uint8_t *head, size_t head_len, uint64_t max,
                        uint64_t claimed, const StreamLimits *l) {
        Agent *a = run->a;
        _cleanup_close_ int out = -1, staged = -1;
        uint64_t len = 0, staged_len = 0;
        uint8_t rnd[16], sha[32], staged_sha[32];
        char *id;
        int r;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return run_fail(run, c, -EIO, SUIT_REPORT_REASON_OPERATION_FAILED, "no randomness for a staging id");
        id = hexstr(rnd, sizeof(rnd), a->stage_ids[a->n_stage_ids]);
        r = a->installer->stage_open(a->installer_userdata, id, max, &out);
        if (r < 0)
                return stream_fail(run, c, r, max, "cannot stage the payload");
        a->n_stage_ids++; /* from here on it is unstaged when the Update ends, whatever happens */
        r = stream_pump(in_fd, out, head, head_len, max, l, &len, sha);
        out = safe_close(out); /* the end of the stream for the installer */
        if (r < 0)
                return stream_fail(run, c, r, max, "streaming the payload to the installer");
        r = stream_cut_short(run, c, len, claimed);
        if (r < 0)
                return r;
        r = a->installer->stage_close(a->installer_userdata, id, &staged, &staged_len, staged_sha);
        if (r < 0)
                return stream_fail(run, c, r, max, "the installer could not stage the payload");
        if (staged_len != len || memcmp(staged_sha, sha, 32) != 0)
                return run_fail(run, c, -EIO, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "the installer staged %" PRIu64 " bytes, not the %" PRIu64 " bytes sent", staged_len, len);
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && len != run->p.image_size)
                return run_fail(run, c, -EKEYREJECTED, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "size mismatch: %" PRIu64 " bytes, manifest says %" PRIu64, len, run->p.image_size);
        drop_content(run);
        run->content_fd = TAKE_FD(staged);
        memcpy(run->content_sha, sha, 32);
        run->content_len = (size_t)len;
        run->has_content = true;
        return 0;
}

/* Forget what this Update staged: installed (the installer committed it) or not. */
static void unstage_all(Agent *a) {
        const char *ids[AGENT_MAX_STAGED];

        if (a->n_stage_ids == 0)
                return;
        for (size_t i = 0; i < a->n_stage_ids; i++)
                ids[i] = a->stage_ids[i];
        if (a->installer && a->installer->unstage)
                (void)a->installer->unstage(a->installer_userdata, ids, a->n_stage_ids);
        a->n_stage_ids = 0;
}

static int do_fetch(Run *run, const TeepSuitCommand *c) {
        Agent *a = run->a;
        _cleanup_free_ char *uri = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *data = NULL;
        uint64_t max = a->cfg.max_payload_size, claimed = 0;
        size_t len = 0;
        /* encrypted: what arrives is ciphertext (image-size is the plaintext's; GCM adds its tag),
         * decrypted here before anything else sees it (docs/protocol-decisions.md, Q18) */
        bool encrypted = teep_suit_parameters_has(&run->p, SUIT_PARAM_ENCRYPTION_INFO);
        int r;

        r = run_uri_parameter(run, c, &uri, &max);
        if (r < 0)
                return r;
        if (encrypted)
                max += TEEP_ENC_TAG_LEN;

        if (uri[0] == '#') {
                TeepBuf payload;
                if (teep_suit_envelope_get_payload(run->env, uri, &payload) < 0)
                        return run_fail(run, c, -ENOENT, SUIT_REPORT_REASON_OPERATION_FAILED,
                                        "no integrated payload %.40s", uri);
                if (payload.len > max)
                        return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED,
                                        "integrated payload of %zu bytes, limit %" PRIu64, payload.len, max);
                if (encrypted)
                        return decrypt_content(run, c, payload);
                r = set_content(run, payload.ptr, payload.len);
                return r < 0 ? run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "out of memory") : 0;
        }

        if (!a->fetcher || !a->fetcher->fetch)
                return run_fail(run, c, -ENOTCONN, SUIT_REPORT_REASON_OPERATION_FAILED, "no payload fetcher");
        r = a->fetcher->fetch(a->fetcher_userdata, uri, max, &fd, &claimed);
        if (r == -EFBIG)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "fetching %.60s: size mismatch: larger than %" PRIu64, uri, max);
        if (r < 0)
                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "fetching %.60s: %s", uri, strerror(-r));
        {
                /* A memfd sealed against writes, grows and shrinks: the bytes hashed here are
                 * the bytes the installer gets, so it stays out of our heap (hashed in chunks,
                 * handed on as it is; a ciphertext is decrypted chunk by chunk into a memfd of
                 * our own). Anything else is a stream (the broker's pipe): up to
                 * AGENT_STREAM_INLINE_MAX bytes it is read and checked as below; a larger
                 * plaintext is staged with the installer as it comes, a larger ciphertext
                 * copied into a sealed memfd of ours and decrypted from there. */
                uint64_t size = 0;
                uint8_t sha[32];
                bool hashed = false; /* sha: a plaintext copied into our own memfd, hashed on the way */
                r = sealed_memfd_size(fd, &size);
                if (r < 0)
                        return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "the payload descriptor: %s",
                                        strerror(-r));
                if (r == 0) {
                        StreamLimits l;
                        bool ended = false, can_stage;
                        int own = -1;

                        stream_limits_init(&l, a->cfg.payload_stall_usec, a->cfg.payload_timeout_usec);
                        can_stage = !encrypted && a->installer && a->installer->stage_open &&
                                    a->installer->stage_close && a->n_stage_ids < AGENT_MAX_STAGED;
                        /* announced larger than what we keep in memory: staged from the first
                         * byte, so that the Stage call and the installer's copy run while the
                         * rest downloads (not after a head read of AGENT_STREAM_INLINE_MAX) */
                        if (can_stage && claimed != UINT64_MAX && claimed > AGENT_STREAM_INLINE_MAX && claimed <= max)
                                return stage_stream(run, c, fd, NULL, 0, max, claimed, &l);
                        r = stream_read_head(fd, max < AGENT_STREAM_INLINE_MAX ? (size_t)max + 1 : AGENT_STREAM_INLINE_MAX, &l,
                                             &data, &len, &ended);
                        if (r < 0)
                                return stream_fail(run, c, r, max, "reading the payload");
                        if (len > max)
                                return stream_fail(run, c, -EFBIG, max, "reading the payload");
                        if (!ended && can_stage)
                                return stage_stream(run, c, fd, data, len, max, claimed, &l);
                        if (ended) {
                                r = stream_cut_short(run, c, len, claimed);
                                if (r < 0)
                                        return r;
                        } else {
                                /* a ciphertext's hash would serve nobody: the plaintext's counts */
                                r = stream_to_sealed_memfd(fd, data, len, max, &l, &own, &size, encrypted ? NULL : sha);
                                if (r < 0)
                                        return stream_fail(run, c, r, max, "reading the payload");
                                hashed = !encrypted;
                                r = stream_cut_short(run, c, size, claimed);
                                if (r < 0) {
                                        (void)close(own);
                                        return r;
                                }
                                free(TAKE_PTR(data));
                                len = 0;
                                (void)close(fd);
                                fd = own;
                                r = 1;
                        }
                }
                if (r > 0 && encrypted) {
                        uint64_t plain_len = 0;
                        int plain_fd = -1;
                        TeepError err = {};

                        if (size > max)
                                return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED,
                                                "size mismatch: payload larger than %" PRIu64, max);
                        r = agent_decrypt_fd(a, run->p.encryption_info, fd, size, &plain_fd, &plain_len, sha, &err);
                        if (r == -ENOMEM)
                                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "out of memory");
                        if (r < 0)
                                return run_fail(run, c, r, reason_for(r, err.reason), "decryption failed: %s: %.200s",
                                                teep_reason_to_string(err.reason), err.detail);
                        /* the ciphertext serves nobody now: fd (the broker's memfd) is closed
                         * on return; the plaintext is in a sealed memfd of our own, never in
                         * our heap */
                        drop_content(run);
                        run->content_fd = plain_fd;
                        memcpy(run->content_sha, sha, 32);
                        run->content_len = (size_t)plain_len;
                        run->has_content = true;
                        return 0;
                }
                if (r > 0) {
                        if (size > max)
                                return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED,
                                                "size mismatch: payload larger than %" PRIu64, max);
                        if (claimed != UINT64_MAX && size != claimed)
                                log_warning("fetcher claimed %" PRIu64 " bytes for %s, delivered %" PRIu64, claimed, uri, size);
                        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && size != run->p.image_size)
                                return run_fail(run, c, -EKEYREJECTED, SUIT_REPORT_REASON_OPERATION_FAILED,
                                                "size mismatch: %" PRIu64 " bytes, manifest says %" PRIu64, size,
                                                run->p.image_size);
                        drop_content(run);
                        if (hashed)
                                memcpy(run->content_sha, sha, 32);
                        else
                                r = fd_sha256(fd, size, run->content_sha);
                        if (r < 0)
                                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "reading the payload: %s",
                                                strerror(-r));
                        run->content_fd = TAKE_FD(fd);
                        run->content_len = (size_t)size;
                        run->has_content = true;
                        return 0;
                }
        }
        /* the broker is not trusted: what it gave was read above, bounded; check it ourselves */
        if (claimed != UINT64_MAX && len != claimed)
                log_warning("fetcher claimed %" PRIu64 " bytes for %s, delivered %zu", claimed, uri, len);
        if (encrypted) {
                r = decrypt_content(run, c, TEEP_BUF(data, len));
                explicit_bzero(data, len); /* ciphertext; but do not leave it about either */
                return r;
        }
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && len != run->p.image_size)
                return run_fail(run, c, -EKEYREJECTED, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "size mismatch: %zu bytes, manifest says %" PRIu64, len, run->p.image_size);
        drop_content(run);
        run->content = TAKE_PTR(data);
        run->content_len = len;
        run->has_content = true;
        return 0;
}

static int image_match(Run *run, const TeepSuitCommand *c) {
        uint8_t sha[32];
        const uint8_t *have;
        uint64_t size;

        if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_DIGEST))
                return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no image-digest parameter");
        if (run->p.image_digest.alg != COSE_ALG_SHA256 || run->p.image_digest.bytes.len != 32)
                return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_ALG_UNSUPPORTED, "digest algorithm %" PRId64,
                                run->p.image_digest.alg);
        if (run->has_content && run->content_fd >= 0) {
                have = run->content_sha;
                size = run->content_len;
        } else if (run->has_content) {
                teep_sha256(TEEP_BUF(run->content, run->content_len), sha);
                have = sha;
                size = run->content_len;
        } else if (run->installed) {
                have = run->installed->sha256;
                size = run->installed->size;
        } else
                return cond_fail(run, c, -ENOENT, "no image");
        if (memcmp(have, run->p.image_digest.bytes.ptr, 32) != 0)
                return cond_fail(run, c, -EKEYREJECTED, "digest mismatch");
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && size != run->p.image_size)
                return cond_fail(run, c, -EKEYREJECTED, "size mismatch: %" PRIu64 " bytes, manifest says %" PRIu64, size,
                                 run->p.image_size);
        return 0;
}

static int run_sequence(Run *run, const TeepSuitSequence *seq, bool soft, unsigned depth);
static int stage_manifest(StageCtx *ctx, unsigned depth, const uint8_t (*parent_chain)[32], TeepBuf in, Staged *st);

/* ---- dependencies (draft-ietf-suit-trust-domains; docs/protocol-decisions.md Q15, Q16, Q19) ---- */

static int select_component(Run *run, const TeepSuitCommand *c) {
        size_t target = SIZE_MAX;

        if (c->index_all) {
                if (run->man->n_dependencies > 0)
                        return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED,
                                        "set-component-index true with dependencies");
                target = 0;
        } else if (c->index_mask == 1)
                target = 0;
        else
                for (size_t i = 0; i < run->man->n_dependencies; i++)
                        if (run->man->dependencies[i].index < 64 &&
                            c->index_mask == UINT64_C(1) << run->man->dependencies[i].index)
                                target = 1 + i;
        if (target == SIZE_MAX)
                return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED,
                                "only component 0 and the dependencies can be selected");
        run->params[run->cur] = run->p;
        run->cur = target;
        run->p = run->params[target];
        return 0;
}

/* fetch with a dependency selected: the dependency's envelope, through the broker like any URI
 * payload (or an integrated one under a "#" key), bounded and size-checked here. */
static int fetch_dependency(Run *run, const TeepSuitCommand *c) {
        Agent *a = run->a;
        size_t slot = run->cur - 1;
        _cleanup_free_ char *uri = NULL;
        _cleanup_close_ int fd = -1;
        uint8_t *data = NULL;
        uint64_t max = a->cfg.max_payload_size, claimed = 0;
        size_t len = 0;
        int r;

        r = run_uri_parameter(run, c, &uri, &max);
        if (r < 0)
                return r;
        if (uri[0] == '#') {
                TeepBuf payload;
                if (teep_suit_envelope_get_payload(run->env, uri, &payload) < 0)
                        return run_fail(run, c, -ENOENT, SUIT_REPORT_REASON_OPERATION_FAILED,
                                        "missing dependency: no integrated envelope %.40s", uri);
                if (payload.len > max)
                        return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED, "dependency larger than %" PRIu64, max);
                data = malloc(payload.len ? payload.len : 1);
                if (!data)
                        return -ENOMEM;
                memcpy(data, payload.ptr, payload.len);
                len = payload.len;
        } else {
                if (!a->fetcher || !a->fetcher->fetch)
                        return run_fail(run, c, -ENOTCONN, SUIT_REPORT_REASON_OPERATION_FAILED, "no payload fetcher");
                r = a->fetcher->fetch(a->fetcher_userdata, uri, max, &fd, &claimed);
                if (r < 0)
                        return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "missing dependency: fetching %.60s: %s",
                                        uri, strerror(-r));
                {
                        StreamLimits l;
                        bool ended = false;

                        /* a pipe from the broker: bounded in size and in time */
                        stream_limits_init(&l, a->cfg.payload_stall_usec, a->cfg.payload_timeout_usec);
                        r = stream_read_head(fd, max >= SIZE_MAX ? SIZE_MAX : (size_t)max + 1, &l, &data, &len, &ended);
                        if (r >= 0 && len > max) {
                                free(data);
                                r = -EFBIG;
                        }
                        if (r < 0)
                                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "reading the dependency: %s",
                                                strerror(-r));
                }
        }
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_SIZE) && len != run->p.image_size) {
                free(data);
                return run_fail(run, c, -EKEYREJECTED, SUIT_REPORT_REASON_OPERATION_FAILED,
                                "dependency size mismatch: %zu bytes, manifest says %" PRIu64, len, run->p.image_size);
        }
        free(run->dep_data[slot]);
        run->dep_data[slot] = data;
        run->dep_len[slot] = len;
        run->dep_verified[slot] = false;
        run->dep_bound[slot] = teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_DIGEST) &&
                               run->p.image_digest.alg == COSE_ALG_SHA256 && run->p.image_digest.bytes.len == 32;
        if (run->dep_bound[slot])
                memcpy(run->dep_want[slot], run->p.image_digest.bytes.ptr, 32);
        return 0;
}

/* condition-dependency-integrity: the fetched dependency is signed by a trusted TC signer and its
 * manifest digest is the image-digest the dependent's signer wrote (now, or when it was fetched). */
static int dependency_integrity(Run *run, const TeepSuitCommand *c) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        size_t slot = run->cur - 1;
        const uint8_t *want = NULL;
        TeepError err = {};
        int r;

        if (run->cur == 0)
                return run_fail(run, c, -EINVAL, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED, "component 0 is not a dependency");
        if (!run->dep_data[slot])
                return run_fail(run, c, -ENOENT, SUIT_REPORT_REASON_OPERATION_FAILED, "missing dependency: not fetched");
        if (teep_suit_parameters_has(&run->p, SUIT_PARAM_IMAGE_DIGEST) && run->p.image_digest.alg == COSE_ALG_SHA256 &&
            run->p.image_digest.bytes.len == 32)
                want = run->p.image_digest.bytes.ptr;
        else if (run->dep_bound[slot])
                want = run->dep_want[slot];
        else
                return run_fail(run, c, -EKEYREJECTED, SUIT_REPORT_REASON_UNAUTHORISED,
                                "dependency not bound by a SHA-256 image-digest");
        r = teep_suit_envelope_decode(TEEP_BUF(run->dep_data[slot], run->dep_len[slot]), &env, &err);
        if (r >= 0)
                r = teep_suit_envelope_verify(env, run->a->signers, run->a->n_signers, NULL, &err);
        if (r < 0)
                return run_fail(run, c, r, reason_for(r, err.reason), "dependency: %s", teep_reason_to_string(err.reason));
        if (env->digest.alg != COSE_ALG_SHA256 || env->digest.bytes.len != 32 || memcmp(env->digest.bytes.ptr, want, 32) != 0)
                return cond_fail(run, c, -EKEYREJECTED, "dependency digest mismatch");
        memcpy(run->dep_digest[slot], want, 32);
        run->dep_verified[slot] = true;
        return 0;
}

/* directive-process-dependency: run the dependency's whole update procedure and stage it with
 * this Update, so it is committed (first) together with its dependent, or not at all. */
static int process_dependency(Run *run, const TeepSuitCommand *c) {
        StageCtx *ctx = run->ctx;
        size_t slot = run->cur - 1;
        Staged *dst;
        int r;

        if (run->cur == 0)
                return run_fail(run, c, -EINVAL, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED, "component 0 is not a dependency");
        if (run->dep_processed[slot])
                return 0;
        if (!run->dep_verified[slot]) {
                /* lenient (Q16): the TEEP draft's own example checks no integrity first */
                r = dependency_integrity(run, c);
                if (r != 0)
                        return r;
        }
        if (run->depth + 1 > AGENT_MAX_DEPENDENCY_DEPTH)
                return run_fail(run, c, -ELOOP, SUIT_REPORT_REASON_OPERATION_FAILED, "dependencies nested deeper than %d",
                                AGENT_MAX_DEPENDENCY_DEPTH);
        for (unsigned i = 0; i <= run->depth; i++)
                if (memcmp(run->chain[i], run->dep_digest[slot], 32) == 0)
                        return run_fail(run, c, -ELOOP, SUIT_REPORT_REASON_OPERATION_FAILED, "dependency cycle");
        if (!ctx || *ctx->n_staged >= ctx->cap)
                return run_fail(run, c, -E2BIG, SUIT_REPORT_REASON_OPERATION_FAILED, "more than %d dependencies in one update",
                                AGENT_MAX_DEPENDENCY_STAGED);
        dst = &ctx->staged[(*ctx->n_staged)++];
        *dst = (Staged){ .index = run->st->index, .is_dependency = true };
        r = stage_manifest(ctx, run->depth + 1, run->chain, TEEP_BUF(run->dep_data[slot], run->dep_len[slot]), dst);
        if (r < 0) {
                if (r == -ENOMEM && dst->reason == 0)
                        return -ENOMEM;
                /* a failure deeper down is passed up as it is (err-msg has 128 bytes: no nesting) */
                static const char nested[] = "directive-process-dependency: ";
                if (strncmp(dst->msg, nested, sizeof(nested) - 1) == 0)
                        return run_fail(run, c, dst->error, dst->reason, "%.400s", dst->msg + sizeof(nested) - 1);
                return run_fail(run, c, dst->error, dst->reason, "dependency %.80s: %.300s", dst->component ?: "(undecoded)",
                                dst->msg);
        }
        if (!agent_tam_may_manage(run->a, ctx->tam, ctx->tam_uri, dst->component))
                return run_fail(run, c, -EPERM, SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED,
                                "dependency %.80s was installed by another TAM", dst->component);
        if (agent_trust_list_reserved(dst->component))
                return run_fail(run, c, -EPERM, SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED,
                                "dependency %.80s is the trust-anchor list", dst->component);
        run->dep_processed[slot] = true;
        return 0;
}

static int run_command(Run *run, const TeepSuitCommand *c, unsigned depth) {
        const AgentConfig *cfg = &run->a->cfg;
        int r;

        switch (c->label) {
        case SUIT_CONDITION_VENDOR_IDENTIFIER:
                if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_VENDOR_IDENTIFIER))
                        return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no vendor-id parameter");
                if (cfg->n_vendor_ids == 0)
                        return cond_fail(run, c, -EPERM, "wrong vendor id: none configured on this device");
                if (run->p.vendor_id_is_pen || !id_configured(cfg->vendor_ids, cfg->n_vendor_ids, run->p.vendor_id))
                        return cond_fail(run, c, -EPERM, "wrong vendor id");
                return 0;
        case SUIT_CONDITION_CLASS_IDENTIFIER:
                if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_CLASS_IDENTIFIER))
                        return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no class-id parameter");
                if (cfg->n_class_ids == 0)
                        return cond_fail(run, c, -EPERM, "wrong class id: none configured on this device");
                if (!id_configured(cfg->class_ids, cfg->n_class_ids, run->p.class_id))
                        return cond_fail(run, c, -EPERM, "wrong class id");
                return 0;
        case SUIT_CONDITION_IMAGE_MATCH:
                if (run->cur > 0)
                        return dependency_integrity(run, c);
                return image_match(run, c);
        case SUIT_CONDITION_COMPONENT_SLOT:
                if (teep_suit_parameters_has(&run->p, SUIT_PARAM_COMPONENT_SLOT) && run->p.component_slot != 0)
                        return cond_fail(run, c, -ENOENT, "slot %" PRIu64 ": this device has one slot", run->p.component_slot);
                return 0;
        case SUIT_CONDITION_CHECK_CONTENT:
                if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_CONTENT))
                        return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no content parameter");
                if (!run->has_content || run->content_len != run->p.content.len) {
                        return cond_fail(run, c, -EKEYREJECTED, "content differs");
                } else if (run->content_fd >= 0) {
                        r = fd_equals(run->content_fd, run->content_len, run->p.content.ptr, run->p.content.len);
                        if (r < 0)
                                return run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "reading the payload: %s",
                                                strerror(-r));
                        if (r == 0)
                                return cond_fail(run, c, -EKEYREJECTED, "content differs");
                } else {
                        uint8_t diff = 0;
                        for (size_t i = 0; i < run->content_len; i++)
                                diff |= run->content[i] ^ run->p.content.ptr[i];
                        if (diff)
                                return cond_fail(run, c, -EKEYREJECTED, "content differs");
                }
                return 0;
        case SUIT_CONDITION_IS_DEPENDENCY:
                return run->cur > 0 ? 0 : cond_fail(run, c, -ENOENT, "not a dependency");
        case SUIT_CONDITION_DEVICE_IDENTIFIER:
                return cond_fail(run, c, -EPERM, "no device identifier configured");
        case SUIT_CONDITION_ABORT:
                return run_fail(run, c, -ECANCELED, SUIT_REPORT_REASON_CONDITION_FAILED, "abort");
        case SUIT_CONDITION_DEPENDENCY_INTEGRITY:
                return dependency_integrity(run, c);
        case SUIT_DIRECTIVE_PROCESS_DEPENDENCY:
                return process_dependency(run, c);
        case SUIT_DIRECTIVE_SET_COMPONENT_INDEX:
                return select_component(run, c);
        case SUIT_DIRECTIVE_TRY_EACH:
                for (size_t i = 0; i < c->n_sequences; i++) {
                        TeepSuitParameters saved = run->p;
                        r = run_sequence(run, &c->sequences[i], true, depth + 1);
                        if (r <= 0)
                                return r;
                        run->p = saved; /* a failed alternative leaves no parameters behind */
                }
                if (c->try_each_nil)
                        return 0;
                return cond_fail(run, c, run->cond_error ?: -ENOENT, "no alternative applied");
        case SUIT_DIRECTIVE_RUN_SEQUENCE:
                if (c->n_sequences != 1)
                        return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_CBOR_PARSE, "malformed");
                r = run_sequence(run, &c->sequences[0], run->p.soft_failure, depth + 1);
                return r > 0 ? 0 : r; /* a soft failure ends the nested sequence only */
        case SUIT_DIRECTIVE_SET_PARAMETERS:
        case SUIT_DIRECTIVE_OVERRIDE_PARAMETERS:
                if (c->params)
                        params_merge(&run->p, c->params, c->label == SUIT_DIRECTIVE_OVERRIDE_PARAMETERS);
                return 0;
        case SUIT_DIRECTIVE_WRITE:
                if (run->cur > 0)
                        return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED,
                                        "a dependency is a manifest, not written to");
                if (!teep_suit_parameters_has(&run->p, SUIT_PARAM_CONTENT))
                        return run_fail(run, c, -EBADMSG, SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED, "no content parameter");
                if (run->p.content.len > run->a->cfg.max_payload_size + TEEP_ENC_TAG_LEN)
                        return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED, "content too large");
                if (teep_suit_parameters_has(&run->p, SUIT_PARAM_ENCRYPTION_INFO))
                        return decrypt_content(run, c, run->p.content);
                if (run->p.content.len > run->a->cfg.max_payload_size)
                        return run_fail(run, c, -EFBIG, SUIT_REPORT_REASON_OPERATION_FAILED, "content too large");
                r = set_content(run, run->p.content.ptr, run->p.content.len);
                return r < 0 ? run_fail(run, c, r, SUIT_REPORT_REASON_OPERATION_FAILED, "out of memory") : 0;
        case SUIT_DIRECTIVE_FETCH:
                return run->cur > 0 ? fetch_dependency(run, c) : do_fetch(run, c);
        case SUIT_DIRECTIVE_UNLINK:
                if (run->cur > 0)
                        return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED,
                                        "unlinking a dependency during an update");
                run->unlink = true;
                return 0;
        case SUIT_DIRECTIVE_COPY:
        case SUIT_DIRECTIVE_SWAP:
        case SUIT_DIRECTIVE_INVOKE:
        default:
                return run_fail(run, c, -EOPNOTSUPP, SUIT_REPORT_REASON_COMMAND_UNSUPPORTED, "not supported during an update");
        }
}

/* 0: done; 1: a condition failed and soft is set (the caller goes on); < 0: failed (reported). */
static int run_sequence(Run *run, const TeepSuitSequence *seq, bool soft, unsigned depth) {
        if (depth > TEEP_SUIT_MAX_NESTING + 1)
                return staged_fail(run->st, -E2BIG, SUIT_REPORT_REASON_CBOR_PARSE, run->section, 0, "nesting too deep");
        for (size_t i = 0; i < seq->n_commands; i++) {
                int r = run_command(run, &seq->commands[i], depth);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (soft)
                                return 1;
                        return staged_fail(run->st, run->cond_error ?: -EPROTO, SUIT_REPORT_REASON_CONDITION_FAILED,
                                           run->section, run->cond_offset, "%s", run->cond_msg);
                }
        }
        return 0;
}

static int run_section(Run *run, const TeepSuitSequence *seq, int64_t section) {
        int r;

        if (!seq->present)
                return 0;
        /* the shared sequence runs before each sequence, on fresh parameters */
        run->p = (TeepSuitParameters){};
        memset(run->params, 0, sizeof(run->params));
        run->cur = 0;
        if (run->man->shared_sequence.present) {
                run->section = SUIT_MANIFEST_COMMON;
                run->section_raw = run->man->shared_sequence.raw;
                r = run_sequence(run, &run->man->shared_sequence, false, 0);
                if (r != 0)
                        return r < 0 ? r : -EPROTO;
        }
        run->section = section;
        run->section_raw = seq->raw;
        r = run_sequence(run, seq, false, 0);
        return r < 0 ? r : 0;
}

/* The envelope as kept in manifests/: authentication wrapper, manifest and severable members,
 * without integrated payloads (its digest and signature still verify). */
static int strip_envelope(const TeepSuitEnvelope *env, uint8_t **ret, size_t *ret_len) {
        const struct {
                uint64_t key;
                const TeepSuitEnvelopeMember *m;
        } members[] = {
                { SUIT_ENVELOPE_AUTHENTICATION_WRAPPER, &env->auth },
                { SUIT_ENVELOPE_MANIFEST, &env->manifest },
                { SUIT_MANIFEST_DEPENDENCY_RESOLUTION, &env->dependency_resolution },
                { SUIT_MANIFEST_PAYLOAD_FETCH, &env->payload_fetch },
                { SUIT_MANIFEST_CANDIDATE_VERIFICATION, &env->candidate_verification },
                { SUIT_MANIFEST_INSTALL, &env->install },
                { SUIT_MANIFEST_TEXT, &env->text },
        };
        TeepCborWriter w;
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(members); i++)
                n += members[i].m->present;
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, n);
        for (size_t i = 0; i < ELEMENTSOF(members); i++)
                if (members[i].m->present) {
                        teep_cbor_put_uint(&w, members[i].key);
                        teep_cbor_put_raw(&w, members[i].m->wrapped);
                }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

/* Stage one manifest: everything short of touching the store. */
static int stage_manifest(StageCtx *ctx, unsigned depth, const uint8_t (*parent_chain)[32], TeepBuf in, Staged *st) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *man = NULL;
        Agent *a = ctx->a;
        const AgentState *base = ctx->base;
        uint8_t chain[AGENT_MAX_DEPENDENCY_DEPTH + 1][32] = {};
        TeepError err = {};
        Run run = {};
        uint64_t floor = 0;
        bool seen = false;
        ssize_t cur;
        int r;

        r = teep_suit_envelope_decode(in, &env, &err);
        if (r < 0)
                return staged_fail(st, r, reason_for(r, err.reason), AGENT_SECTION_ENVELOPE, 0, "envelope: %s",
                                   teep_reason_to_string(err.reason));
        r = teep_suit_envelope_verify(env, a->signers, a->n_signers, NULL, &err);
        if (r < 0)
                return staged_fail(st, r, reason_for(r, err.reason), AGENT_SECTION_AUTH, 0, "authentication: %s",
                                   teep_reason_to_string(err.reason));
        if (env->digest.alg == COSE_ALG_SHA256 && env->digest.bytes.len == 32) {
                st->has_digest = true;
                memcpy(st->manifest_digest, env->digest.bytes.ptr, 32);
        }
        /* the manifests from the root down to this one: a dependency cycle shows up here */
        if (depth > AGENT_MAX_DEPENDENCY_DEPTH)
                return staged_fail(st, -ELOOP, SUIT_REPORT_REASON_OPERATION_FAILED, SUIT_MANIFEST_COMMON, 0,
                                   "dependencies nested deeper than %d", AGENT_MAX_DEPENDENCY_DEPTH);
        for (unsigned i = 0; i < depth; i++)
                memcpy(chain[i], parent_chain[i], 32);
        memcpy(chain[depth], st->manifest_digest, 32);
        r = teep_suit_manifest_decode(env, 0, &man, &err);
        if (r < 0)
                return staged_fail(st, r, reason_for(r, err.reason), SUIT_ENVELOPE_MANIFEST, 0, "manifest: %s",
                                   teep_reason_to_string(err.reason));
        if (man->has_reference_uri) {
                st->reference_uri = strndup((const char *)man->reference_uri.ptr, man->reference_uri.len);
                if (!st->reference_uri)
                        return -ENOMEM;
        }
        st->seq = man->sequence_number;

        if (man->n_components != 1)
                return staged_fail(st, -EOPNOTSUPP, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED, SUIT_MANIFEST_COMMON, 0,
                                   "%zu components: one component (and its dependencies) supported", man->n_components);
        r = teep_suit_component_id_to_string(man->components[0].segments, man->components[0].n_segments, &st->component);
        if (r >= 0)
                r = teep_suit_component_id_encode(&man->components[0], &st->component_raw, &st->component_raw_len);
        if (r >= 0 && man->has_manifest_component_id)
                r = teep_suit_component_id_to_string(man->manifest_component_id.segments,
                                                     man->manifest_component_id.n_segments, &st->manifest_id);
        if (r < 0)
                return staged_fail(st, r, SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED, SUIT_MANIFEST_COMMON, 0,
                                   "component id has no name");

        /* anti-rollback: against what is installed, what was ever accepted, and earlier
         * manifests of this same Update */
        cur = agent_state_find_tc(base, st->component);
        if (cur >= 0)
                floor = base->tcs[cur].seq;
        floor = MAX_U64(floor, agent_state_seen_seq(base, st->component, &seen));
        for (size_t i = 0; i < *ctx->n_staged; i++)
                if (&ctx->staged[i] != st && ctx->staged[i].component && strcmp(ctx->staged[i].component, st->component) == 0)
                        floor = MAX_U64(floor, ctx->staged[i].seq);
        if (st->seq < floor)
                return staged_fail(st, -ESTALE, SUIT_REPORT_REASON_UNAUTHORISED, SUIT_MANIFEST_SEQUENCE_NUMBER, 0,
                                   "rollback: sequence number %" PRIu64 " < %" PRIu64, st->seq, floor);

        run.content_fd = -1;
        run.a = a;
        run.ctx = ctx;
        run.depth = depth;
        run.chain = (const uint8_t(*)[32])chain;
        run.st = st;
        run.env = env;
        run.man = man;
        run.installed = cur >= 0 ? &base->tcs[cur] : NULL;
        r = run_section(&run, &man->dependency_resolution, SUIT_MANIFEST_DEPENDENCY_RESOLUTION);
        if (r >= 0)
                r = run_section(&run, &man->payload_fetch, SUIT_MANIFEST_PAYLOAD_FETCH);
        if (r >= 0)
                r = run_section(&run, &man->candidate_verification, SUIT_MANIFEST_CANDIDATE_VERIFICATION);
        if (r >= 0)
                r = run_section(&run, &man->install, SUIT_MANIFEST_INSTALL);
        if (r >= 0)
                r = run_section(&run, &man->validate, SUIT_MANIFEST_VALIDATE);
        if (r < 0)
                goto out;

        if (run.unlink) {
                st->action = cur >= 0 ? ACT_REMOVE : ACT_NONE;
        } else if (run.has_content) {
                uint8_t sha[32];
                /* whatever the sequences said, an image is installed only if the signer bound it
                 * by digest (and by size, when given) */
                if (run.content_fd >= 0)
                        memcpy(sha, run.content_sha, 32);
                else
                        teep_sha256(TEEP_BUF(run.content, run.content_len), sha);
                if (!teep_suit_parameters_has(&run.p, SUIT_PARAM_IMAGE_DIGEST) ||
                    run.p.image_digest.alg != COSE_ALG_SHA256 || run.p.image_digest.bytes.len != 32) {
                        r = staged_fail(st, -EKEYREJECTED, SUIT_REPORT_REASON_CONDITION_FAILED, SUIT_MANIFEST_INSTALL, 0,
                                        "image not bound by a SHA-256 image-digest");
                        goto out;
                }
                if (memcmp(sha, run.p.image_digest.bytes.ptr, 32) != 0) {
                        r = staged_fail(st, -EKEYREJECTED, SUIT_REPORT_REASON_CONDITION_FAILED, SUIT_MANIFEST_INSTALL, 0,
                                        "digest mismatch");
                        goto out;
                }
                if (teep_suit_parameters_has(&run.p, SUIT_PARAM_IMAGE_SIZE) && run.p.image_size != run.content_len) {
                        r = staged_fail(st, -EKEYREJECTED, SUIT_REPORT_REASON_CONDITION_FAILED, SUIT_MANIFEST_INSTALL, 0,
                                        "size mismatch");
                        goto out;
                }
                /* the same sequence number for another image: one of the two signed manifests
                 * is a lie, and replacing what is installed without a higher number would let
                 * a replayed manifest swap images back and forth (Q13) */
                if (cur >= 0 && base->tcs[cur].seq == st->seq && memcmp(base->tcs[cur].sha256, sha, 32) != 0) {
                        r = staged_fail(st, -ESTALE, SUIT_REPORT_REASON_UNAUTHORISED, SUIT_MANIFEST_SEQUENCE_NUMBER, 0,
                                        "sequence number %" PRIu64 " is installed with another image", st->seq);
                        goto out;
                }
                memcpy(st->sha256, sha, 32);
                st->payload = TAKE_PTR(run.content);
                st->payload_len = run.content_len;
                if (run.content_fd >= 0) {
                        st->has_payload_fd = true;
                        st->payload_fd = TAKE_FD(run.content_fd);
                }
                st->secret = run.secret;
                run.secret = false;
                st->action = (cur >= 0 && base->tcs[cur].seq == st->seq && memcmp(base->tcs[cur].sha256, sha, 32) == 0)
                                     ? ACT_KEEP
                                     : ACT_INSTALL;
        } else {
                r = staged_fail(st, -ENOENT, SUIT_REPORT_REASON_OPERATION_FAILED, SUIT_MANIFEST_INSTALL, 0,
                                "the manifest installs nothing");
                goto out;
        }

        r = strip_envelope(env, &st->stored, &st->stored_len);
        if (r >= 0)
                r = teep_sha256(TEEP_BUF(st->stored, st->stored_len), st->stored_hash);
out:
        drop_content(&run);
        for (size_t i = 0; i < TEEP_SUIT_MAX_DEPENDENCIES; i++)
                free(run.dep_data[i]);
        return r;
}

/* ---- commit ---- */

typedef struct Op {
        int action;        /* ACT_INSTALL or ACT_REMOVE */
        Staged *st;        /* for installs (and unlink manifests) */
        AgentTc tc;        /* INSTALL: the new TC; REMOVE: the TC removed */
        bool had_old;
        AgentTc old;
} Op;

static void ops_free(Op *ops, size_t n) {
        for (size_t i = 0; i < n; i++) {
                agent_tc_done(&ops[i].tc);
                agent_tc_done(&ops[i].old);
        }
        free(ops);
}

#define COPY_NAME_SIZE (64 + sizeof(".suit"))

/* The agent's manifests/ (made if missing), opened once and kept: a commit used to make, open
 * and check it every time. Borrowed: the Agent closes it. */
static int manifests_dir(Agent *a) {
        if (a->manifests_fd < 0)
                a->manifests_fd = open_private_dir_at(a->state_fd, "manifests", 0700);
        return a->manifests_fd;
}

/* The name of the manifest copy with this hash in manifests/: "<64 lower-case hex>.suit" (what
 * manifest_name_used() recognizes). */
static void copy_name(const uint8_t hash[32], char name[COPY_NAME_SIZE]) {
        char hex[65];

        (void)snprintf(name, COPY_NAME_SIZE, "%s.suit", hexstr(hash, 32, hex));
}

/* A copy in dfd/name, its directory entry not synced (the caller does that once for all copies),
 * nor its bytes unless sync_file. Returns 1 when written, 0 when it was there already. */
static int store_blob(int dfd, const char *name, const uint8_t *data, size_t len, bool sync_file) {
        struct stat st;
        int r;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_size == len) {
                /* content-addressed: already there, but maybe left over from a session that
                 * crashed before its copy was synced */
                _cleanup_close_ int fd = -1;
                if (!sync_file)
                        return 0;
                fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || fsync(fd) < 0)
                        return -errno;
                return 0;
        }
        r = write_file_nodirsync_at(dfd, name, data, len, 0600, sync_file);
        return r < 0 ? r : 1;
}

/* Hand an image to the installer: a descriptor we have (read from offset 0), or bytes put in a
 * sealed memfd. */
static int install_image(Agent *a, const char *component, int fd, const uint8_t *data, uint64_t len, const uint8_t sha[32]) {
        _cleanup_close_ int own = -1;

        if (!a->installer || !a->installer->install)
                return -ENOTCONN;
        if (fd < 0) {
                own = memfd_from_data("teep-payload", data, (size_t)len);
                if (own < 0)
                        return own;
                fd = own;
        } else if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno; /* the same open file each time: an earlier reader moved it */
        return a->installer->install(a->installer_userdata, component, fd, len, sha);
}

/* Undo one change of this commit: the installer puts back the file the change replaced or took
 * away (its undo record, Installer1.Restore), or removes the component the change added; no
 * image passes through the agent, so an encrypted TC's plaintext never leaves the store. */
static int restore(Agent *a, const Op *op) {
        if (!a->installer || !a->installer->restore)
                return -ENOTCONN;
        return a->installer->restore(a->installer_userdata, op->tc.component);
}

/* Drop the installer's undo records of this commit's components. */
static int discard_undo(Agent *a, const Op *ops, size_t n_ops, bool wait) {
        _cleanup_free_ const char **names = NULL;

        /* an installer without Discard keeps no undo records */
        if (n_ops == 0 || !a->installer || !a->installer->discard)
                return 0;
        names = calloc(n_ops, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < n_ops; i++)
                names[i] = ops[i].tc.component;
        return a->installer->discard(a->installer_userdata, names, n_ops, wait);
}

static int cmp_sha256(const void *a, const void *b) {
        return memcmp(a, b, 32);
}

/* 1 when name is "<64 lower-case hex>.suit" (copy_name()) naming one of the n sorted hashes. */
static int manifest_name_used(const char *name, const uint8_t (*hashes)[32], size_t n) {
        uint8_t h[32];

        if (n == 0 || strlen(name) != 64 + 5 || strspn(name, "0123456789abcdef") != 64 ||
            strcmp(name + 64, ".suit") != 0)
                return 0; /* (bsearch() must not be given a NULL array, even of 0 elements) */
        for (size_t i = 0; i < 32; i++) {
                int hi = unhexchar(name[2 * i]), lo = unhexchar(name[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return 0;
                h[i] = (uint8_t)(hi << 4 | lo);
        }
        return bsearch(h, hashes, n, 32, cmp_sha256) != NULL;
}

/* Remove every file in dir the state does not name: a manifest copy no installed TC refers to,
 * or (payloads/) everything: the rollback copies of images that older versions kept there;
 * nothing writes there any more. The installed TCs' manifest hashes are sorted once, so a
 * store of n TCs and f files costs O((n + f) log n), not a hex string per pair. */
static void collect_garbage(Agent *a, const char *dir, bool payloads) {
        _cleanup_close_ int dfd = -1;
        _cleanup_free_ uint8_t (*hashes)[32] = NULL;
        size_t n = payloads ? 0 : a->state.n_tcs;
        DIR *d;
        struct dirent *de;

        if (n > 0) {
                hashes = calloc(n, 32);
                if (!hashes)
                        return; /* the next commit tries again */
                for (size_t i = 0; i < n; i++)
                        memcpy(hashes[i], a->state.tcs[i].manifest_hash, 32);
                qsort(hashes, n, 32, cmp_sha256);
        }
        dfd = openat(a->state_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return;
        d = fdopendir(dfd);
        if (!d)
                return;
        dfd = -1;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (!manifest_name_used(de->d_name, (const uint8_t (*)[32])hashes, n))
                        (void)unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

/* Remove the manifest copy with this hash unless a TC of the state names it (copies are
 * content-addressed: two TCs may share one). */
static void drop_copy_unless_used(Agent *a, int mfd, const uint8_t hash[32]) {
        char name[COPY_NAME_SIZE];

        for (size_t i = 0; i < a->state.n_tcs; i++)
                if (memcmp(a->state.tcs[i].manifest_hash, hash, 32) == 0)
                        return;
        copy_name(hash, name);
        (void)unlinkat(mfd, name, 0);
}

/* After a commit, the copies no TC names any more: those its ops replaced or removed when it
 * committed, those it made when it did not. Only the first commit after a start reads the whole
 * directory (collect_garbage()), for what a crash left there; after it, a commit costs O(ops)
 * here, not a directory read of every installed TC's copy. */
static void drop_unused_copies(Agent *a, const Op *ops, size_t n_ops, bool committed) {
        bool any = false;
        int mfd;

        if (!a->manifests_swept) {
                collect_garbage(a, "manifests", false);
                a->manifests_swept = true;
                return;
        }
        for (size_t i = 0; i < n_ops && !any; i++)
                any = committed ? ops[i].had_old : ops[i].action == ACT_INSTALL;
        if (!any)
                return; /* a new TC installed: nothing replaced, nothing to drop */
        mfd = manifests_dir(a);
        if (mfd < 0)
                return;
        for (size_t i = 0; i < n_ops; i++)
                if (committed && ops[i].had_old)
                        drop_copy_unless_used(a, mfd, ops[i].old.manifest_hash);
                else if (!committed && ops[i].action == ACT_INSTALL)
                        drop_copy_unless_used(a, mfd, ops[i].tc.manifest_hash);
}

/* The journal as commit() writes it: the state as the Update found it, with the floors `next`
 * raises (built by the same agent_state_note_seen() calls in the same order, so next->seen is
 * exactly that list) and the pending ops after any journal still unresolved. A view: it
 * borrows every string from a->state, next and ops, and owns only *ret_entries (free() it,
 * never agent_state_done() the view). A deep copy of the whole state for each commit cost
 * O(requests + TCs) allocations on a used device. */
static int journal_view(const Agent *a, const AgentState *next, const Op *ops, size_t n_ops, AgentState *ret,
                        AgentJournal **ret_entries) {
        size_t n_old = a->state.n_journal;
        AgentJournal *e = calloc(n_old + n_ops, sizeof(*e));

        if (!e)
                return -ENOMEM;
        if (n_old > 0)
                memcpy(e, a->state.journal, n_old * sizeof(*e));
        for (size_t i = 0; i < n_ops; i++)
                e[n_old + i] = (AgentJournal){ .op = ops[i].action == ACT_INSTALL ? AGENT_JOURNAL_INSTALL
                                                                                   : AGENT_JOURNAL_REMOVE,
                                               .tc = ops[i].tc };
        *ret = a->state;
        ret->seen = next->seen;
        ret->n_seen = next->n_seen;
        ret->journal = e;
        ret->n_journal = n_old + n_ops;
        *ret_entries = e;
        return 0;
}

/* The state a commit builds, `next`: a copy of a->state, except that its requests are
 * a->state's own array, borrowed (a commit does not change requests, and copying a used
 * device's thousands of them cost two allocations each per Update). next_release_requests()
 * hands them back before next is freed or a->state replaced; on success a->state gives them
 * up to next, which becomes a->state. */
static int next_from_state(Agent *a, AgentState *next) {
        AgentRequest *reqs = a->state.reqs;
        size_t n_reqs = a->state.n_reqs;
        int r;

        a->state.reqs = NULL;
        a->state.n_reqs = 0;
        r = agent_state_copy(next, &a->state);
        a->state.reqs = reqs;
        a->state.n_reqs = n_reqs;
        if (r >= 0) {
                next->reqs = reqs;
                next->n_reqs = n_reqs;
        }
        return r;
}

static void next_release_requests(Agent *a, AgentState *next) {
        if (next->reqs && next->reqs == a->state.reqs) {
                next->reqs = NULL;
                next->n_reqs = 0;
        }
}

/* Returns 0 when committed; < 0 with fail_op set to the op that failed (SIZE_MAX: before any). */
static int commit(Agent *a, Op *ops, size_t n_ops, Staged *staged, size_t n_staged, size_t *fail_op, char *why,
                  size_t why_len) {
        AgentState next = {}, journal = {}; /* journal: a view (journal_view()) */
        _cleanup_free_ AgentJournal *journal_entries = NULL;
        /* the state file as this Update found it, for an undo to put back byte for byte; not
         * when requests still wait for their write (the journal below carries them) */
        _cleanup_free_ char *found = !a->state_dirty && a->state_text ? malloc(a->state_text_len + 1) : NULL;
        size_t found_len = a->state_text_len;
        bool found_journal = a->state_file_has_journal;
        if (found)
                memcpy(found, a->state_text, found_len);
        bool undo_made = false;
        size_t done = 0;
        int r = 0;

        *fail_op = SIZE_MAX;
        /* nothing writes payloads/ any more: what older versions left there goes once, at the
         * first commit after a start, not at every one */
        if (!a->old_payloads_gone) {
                collect_garbage(a, "payloads", true);
                (void)unlinkat(a->state_fd, "payloads", AT_REMOVEDIR);
                a->old_payloads_gone = true;
        }
        r = next_from_state(a, &next);
        for (size_t i = 0; i < n_ops && r >= 0; i++) {
                if (ops[i].action == ACT_INSTALL) {
                        r = agent_state_add_tc(&next, &ops[i].tc);
                        if (r >= 0)
                                r = agent_state_note_seen(&next, ops[i].tc.component, ops[i].tc.seq);
                } else {
                        agent_state_remove_tc(&next, ops[i].tc.component);
                        agent_state_remove_unneeded(&next, ops[i].tc.component);
                        if (ops[i].st)
                                r = agent_state_note_seen(&next, ops[i].tc.component, ops[i].st->seq);
                }
        }
        for (size_t i = 0; i < n_staged && r >= 0; i++)
                if (staged[i].action == ACT_KEEP || staged[i].action == ACT_NONE)
                        r = agent_state_note_seen(&next, staged[i].component, staged[i].seq);
        if (r < 0) {
                (void)snprintf(why, why_len, "out of memory");
                goto out;
        }
        /* a bounded store: what the QueryResponse, the state file and Installer1.List can carry */
        if (next.n_tcs > AGENT_MAX_TCS && next.n_tcs > a->state.n_tcs) {
                (void)snprintf(why, why_len, "more than %d Trusted Components installed", AGENT_MAX_TCS);
                r = -E2BIG;
                goto out;
        }

        /* 1. our copies: the manifest (for evidence and uninstall), and no image: the rollback
         *    of a change is the installer's (its undo record of the file the change replaced,
         *    Installer1.Restore). Nothing durable refers to a copy until the journal (step 2) or
         *    the state (step 4) does, so each is made durable, file and directory entry, before
         *    the journal is written: an fsync of each copy and one of their directory. An Update
         *    with more than AGENT_SYNCFS_COPIES copies writes them without an fsync each and
         *    syncs the file system once instead (one flush, however many copies; but it also
         *    waits for every other writer's dirty data there, hence only for big batches).
         *    A crash before it leaves copies that no state refers to (removed by the next
         *    commit's garbage collection) and a store that was not touched yet. */
        size_t n_copies = 0;
        for (size_t i = 0; i < n_ops; i++)
                n_copies += ops[i].action == ACT_INSTALL;
        if (n_copies > 0) {
                bool use_syncfs = n_copies > AGENT_SYNCFS_COPIES;
                int mfd;

                mfd = r = manifests_dir(a);
                for (size_t i = 0; i < n_ops && r >= 0; i++) {
                        char name[COPY_NAME_SIZE];
                        const Staged *st = ops[i].st;
                        if (ops[i].action != ACT_INSTALL)
                                continue;
                        copy_name(st->stored_hash, name);
                        r = store_blob(mfd, name, st->stored, st->stored_len, !use_syncfs);
                }
                if (r >= 0 && (use_syncfs ? syncfs(mfd) : fsync(mfd)) < 0)
                        r = -errno;
        }
        if (r < 0) {
                (void)snprintf(why, why_len, "cannot keep copies in the state directory: %s", strerror(-r));
                goto out;
        }
        /* No undo record older than this commit may stand for one of its changes: an op whose
         * install is refused leaves none of its own, and the rollback would put back whatever a
         * lost Discard had left. Not fatal: an installer that cannot answer this fails the
         * first op below with its own error, and a wrong image put back would still be caught
         * by digest (agent_reconcile()). */
        /* Not waited for: the bus delivers one connection's messages to a peer in the order
         * they were sent (across an activation too), and the installer handles each before the
         * next, so this Discard is done before the first Install or Remove below. */
        if (discard_undo(a, ops, n_ops, false) < 0)
                log_warning("installer: cannot drop old undo records; going on");

        /* 2. the journal: after a crash from here on, the store decides (agent_reconcile()). It
         *    also carries every anti-rollback floor this Update raises, so that, once the
         *    installer has answered, it says everything the final state would (step 4). */
        if (n_ops > 0) {
                /* the floors are next's: raised even if the op does not happen (a floor only
                 * refuses older manifests, and the same manifest again is still accepted, Q13) */
                r = journal_view(a, &next, ops, n_ops, &journal, &journal_entries);
                if (r >= 0)
                        r = agent_save_state(a, &journal);
                if (r < 0) {
                        (void)snprintf(why, why_len, "cannot write the journal: %s", strerror(-r));
                        goto out;
                }
        }

        /* 3. the installer */
        undo_made = n_ops > 0;
        for (done = 0; done < n_ops; done++) {
                Op *op = &ops[done];
                if (op->action == ACT_INSTALL)
                        r = install_image(a, op->tc.component, op->st->has_payload_fd ? op->st->payload_fd : -1,
                                          op->st->payload, op->st->payload_len, op->st->sha256);
                else {
                        r = a->installer && a->installer->remove ? a->installer->remove(a->installer_userdata, op->tc.component)
                                                                  : -ENOTCONN;
                        if (r == -ENOENT)
                                r = 0; /* already gone: what we wanted */
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                int k = 0;
                *fail_op = done;
                (void)snprintf(why, why_len, "installer: %s %s: %s", ops[done].action == ACT_INSTALL ? "install" : "remove",
                               ops[done].tc.component, strerror(-r));
                log_error("%s; undoing %zu change(s)", why, done);
                /* undo in reverse, the failed one included (it may have happened after all) */
                for (size_t i = done + 1; i-- > 0;) {
                        int q = restore(a, &ops[i]);
                        if (q < 0) {
                                log_error("rollback of %s failed: %s", ops[i].tc.component, strerror(-q));
                                k = q;
                        }
                }
                if (k >= 0 && found)
                        k = agent_write_state_text(a, TAKE_PTR(found), found_len, found_journal);
                else if (k >= 0)
                        k = agent_save_state(a, &a->state); /* what the Update found, written plain */
                if (k < 0) {
                        /* the journal stays; the store listing resolves it */
                        AgentState tmp = {};
                        if (agent_state_copy(&tmp, &journal) >= 0) {
                                next_release_requests(a, &next);
                                agent_state_done(&a->state);
                                a->state = tmp;
                        }
                        (void)agent_reconcile(a);
                }
                goto out;
        }

        /* 4. commit (nothing to write when nothing changed: an idempotent re-apply) */
        if (n_ops == 0) {
                _cleanup_free_ char *t1 = NULL, *t2 = NULL;
                size_t l1 = 0, l2 = 0;
                if (agent_state_serialize(&a->state, &t1, &l1) >= 0 && agent_state_serialize(&next, &t2, &l2) >= 0 &&
                    l1 == l2 && memcmp(t1, t2, l1) == 0) {
                        r = 0;
                        goto out;
                }
        }
        /* With a journal on disk (n_ops > 0) the final state is not written here: the journal
         * and the store already say all of it. agent_reconcile() turns a journal into exactly
         * `next` (each install op whose digest the store holds is recorded with its floor, each
         * remove op whose file is gone is dropped; the other floors are in the journal), and the
         * installer has answered for every op, so the store holds them all. The state on disk
         * becomes plain again with the next write for any reason (the next RequestTA, Update or
         * removal writes the whole state from memory), or at the next start. This saves two
         * flushes (file and directory) per Update on the path to the Success message. */
        if (n_ops == 0) {
                r = agent_save_state(a, &next);
                if (r < 0)
                        log_error("cannot record the new anti-rollback floors (%s)", strerror(-r));
        }
        /* next has borrowed a->state's requests: they are its own from here */
        a->state.reqs = NULL;
        a->state.n_reqs = 0;
        agent_state_done(&a->state);
        a->state = next;
        next = (AgentState){};
        r = 0;
        drop_unused_copies(a, ops, n_ops, true);
out:
        /* committed or undone: the installer's undo records of this commit serve nobody now (a
         * crash from here on is resolved by digest); the answer is not waited for */
        if (undo_made)
                (void)discard_undo(a, ops, n_ops, false);
        /* refused or undone: the copies step 1 made are referenced by nothing now (unless a
         * journal still needs them), and the state directory must be as it was */
        if (r < 0 && a->state.n_journal == 0)
                drop_unused_copies(a, ops, n_ops, false);
        next_release_requests(a, &next);
        agent_state_done(&next);
        /* journal borrows everything but journal_entries (freed on the way out) */
        return r;
}

/* ---- the Update message ---- */

/* The j-th staged manifest in commit order: dependencies before the manifests that need them
 * (a dependency is staged after its dependent, a dependency's dependency after it: so the
 * dependencies go in reverse staging order, deepest first). */
static Staged *staged_in_commit_order(Staged *staged, size_t n, size_t j) {
        for (size_t i = n; i-- > 0;)
                if (staged[i].is_dependency && j-- == 0)
                        return &staged[i];
        for (size_t i = 0; i < n; i++)
                if (!staged[i].is_dependency && j-- == 0)
                        return &staged[i];
        return NULL;
}

static bool same_family(int64_t x, int64_t y) {
        bool px = x == COSE_ALG_ESP256 || x == COSE_ALG_ES256, py = y == COSE_ALG_ESP256 || y == COSE_ALG_ES256;
        bool ex = x == COSE_ALG_ED25519 || x == COSE_ALG_EDDSA, ey = y == COSE_ALG_ED25519 || y == COSE_ALG_EDDSA;
        return (px && py) || (ex && ey);
}

static int report_for(const Staged *st, const TeepBuf *token, bool ok, uint8_t **ret, size_t *ret_len) {
        AgentSuitReport rep = {
                .manifest_uri = st->reference_uri ?: "",
                .has_digest = st->has_digest,
                .nonce = token,
                .component_id_raw = TEEP_BUF(st->component_raw, st->component_raw_len),
                .has_image = ok && (st->action == ACT_INSTALL || st->action == ACT_KEEP),
                .image_size = st->payload_len,
                .ok = ok,
                .result_code = st->error,
                .section = st->section,
                .offset = st->offset,
                .reason = st->reason,
        };
        memcpy(rep.manifest_digest, st->manifest_digest, 32);
        memcpy(rep.image_sha256, st->sha256, 32);
        return agent_suit_report_encode(&rep, ret, ret_len);
}

int agent_handle_update(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t tam_alg,
                        uint8_t **ret, size_t *ret_len) {
        const TeepBuf *token = m->has_token ? &m->token : NULL;
        Staged *staged = NULL;
        size_t n_staged = 0, n_ops = 0, fail_op = SIZE_MAX;
        Op *ops = NULL;
        AgentExchange *x = NULL;
        int64_t alg = 0;
        char why[160] = "";
        ssize_t failed = -1;
        int r = 0;

        /* 1. the token: one we sent in a QueryResponse to this TAM, used once */
        for (size_t i = 0; i < AGENT_MAX_EXCHANGES && !x; i++) {
                AgentExchange *e = &a->exchanges[i];
                if (!e->used || strcmp(e->tam_uri, tam_uri ?: "") != 0 || e->has_token != m->has_token)
                        continue;
                if (agent_now_usec() - e->created_usec > AGENT_EXCHANGE_LIFETIME_USEC)
                        continue;
                if (!m->has_token || (e->token_len == m->token.len && memcmp(e->token, m->token.ptr, e->token_len) == 0))
                        x = e;
        }
        if (!x) {
                log_warning("TAM %s: update → error ERR_PERMANENT_ERROR (%s token: unknown, expired or replayed); no state change",
                            tam_uri ?: "-", m->has_token ? "its" : "no");
                a->refusal_hint = -ESTALE;
                r = agent_build_error(a, tam, 0, token, TEEP_ERR_PERMANENT_ERROR,
                                      m->has_token ? "unknown or replayed token" : "update without token", NULL, 0, ret, ret_len);
                return r < 0 ? r : 0;
        }
        alg = x->alg;
        free(x->tam_uri);
        *x = (AgentExchange){}; /* once */
        /* The selected suite names the algorithm our answers use. A TAM with one key type that
         * offered both suites signs with the key it has; what matters is that a trusted TAM key
         * verified it, so a different algorithm is noted, not refused. */
        if (!same_family(alg, tam_alg))
                log_notice("TAM %s: update signed with %s while the exchange selected %s", tam_uri ?: "-",
                           teep_cose_alg_to_string(tam_alg) ?: "?", teep_cose_alg_to_string(alg) ?: "?");
        if (m->has_err_code)
                log_warning("TAM %s: update reports %s (%" PRIu64 ")%s%.*s", tam_uri ?: "-",
                            teep_err_code_to_string(m->err_code) ?: "an unknown error", m->err_code, m->has_err_msg ? ": " : "",
                            m->has_err_msg ? (int)m->err_msg.len : 0, m->has_err_msg ? (const char *)m->err_msg.ptr : "");

        /* a trust-anchor list signed by the administrator is not a Trusted Component */
        r = agent_trust_list_update(a, tam, tam_uri, m, alg, token, ret, ret_len);
        if (r != 0)
                return r < 0 ? r : 0;

        if (a->state.n_journal > 0) {
                r = agent_reconcile(a);
                if (r < 0) {
                        r = agent_build_error(a, tam, alg, token, TEEP_ERR_TEMPORARY_ERROR,
                                              "an interrupted update is not resolved yet", NULL, 0, ret, ret_len);
                        return r < 0 ? r : 0;
                }
        }

        /* 2. stage: every manifest, fully, before anything changes */
        staged = calloc(m->n_manifest_list + m->n_unneeded_manifest_list + AGENT_MAX_DEPENDENCY_STAGED + 1, sizeof(Staged));
        if (!staged)
                return -ENOMEM;
        StageCtx ctx = {
                .a = a,
                .base = &a->state,
                .staged = staged,
                .n_staged = &n_staged,
                .cap = m->n_manifest_list + AGENT_MAX_DEPENDENCY_STAGED,
                .tam = tam,
                .tam_uri = tam_uri,
        };
        for (size_t i = 0; i < m->n_manifest_list; i++) {
                size_t slot = n_staged++;
                Staged *st = &staged[slot];
                st->index = i;
                r = stage_manifest(&ctx, 0, NULL, m->manifest_list[i], st);
                if (r >= 0 && !agent_tam_may_manage(a, tam, tam_uri, st->component))
                        r = staged_fail(st, -EPERM, SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED, SUIT_MANIFEST_COMMON, 0,
                                        "%s was installed by another TAM", st->component);
                if (r >= 0 && agent_trust_list_reserved(st->component))
                        r = staged_fail(st, -EPERM, SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED, SUIT_MANIFEST_COMMON, 0,
                                        "%s is the trust-anchor list: only AdminKey= may sign it", st->component);
                if (r < 0) {
                        if (r == -ENOMEM && st->reason == 0)
                                goto oom;
                        failed = (ssize_t)slot;
                        break;
                }
        }

        /* 3. the operations: unneeded manifests first (TEEP §4.4), then the manifests; one
         *    operation per component, the last word wins */
        if (failed < 0) {
                ops = calloc(m->n_unneeded_manifest_list + n_staged + 1, sizeof(Op));
                if (!ops)
                        goto oom;
                for (size_t i = 0; i < m->n_unneeded_manifest_list + n_staged; i++) {
                        bool from_list = i < m->n_unneeded_manifest_list;
                        Staged *st = from_list ? NULL : staged_in_commit_order(staged, n_staged, i - m->n_unneeded_manifest_list);
                        _cleanup_free_ char *name = NULL;
                        const char *component;
                        ssize_t cur, k;
                        int action;

                        if (from_list) {
                                const TeepSuitComponentId *id = &m->unneeded_manifest_list[i];
                                if (teep_suit_component_id_to_string(id->segments, id->n_segments, &name) < 0)
                                        continue;
                                cur = agent_state_find_tc_by_manifest_id(&a->state, name);
                                if (cur < 0) {
                                        log_info("TAM %s: unneeded manifest %s is not installed", tam_uri ?: "-", name);
                                        continue;
                                }
                                component = a->state.tcs[cur].component;
                                if (!agent_tam_may_manage(a, tam, tam_uri, component)) {
                                        log_warning("TAM %s: unneeded manifest %s was installed by %s: left alone",
                                                    tam_uri ?: "-", name, a->state.tcs[cur].tam_uri);
                                        continue;
                                }
                                action = ACT_REMOVE;
                        } else {
                                if (st->action != ACT_INSTALL && st->action != ACT_REMOVE)
                                        continue;
                                component = st->component;
                                cur = agent_state_find_tc(&a->state, component);
                                action = st->action;
                        }
                        for (k = 0; k < (ssize_t)n_ops; k++)
                                if (strcmp(ops[k].tc.component, component) == 0)
                                        break;
                        if (k == (ssize_t)n_ops) {
                                ops[k] = (Op){};
                                if (cur >= 0) {
                                        if (agent_tc_copy(&ops[k].old, &a->state.tcs[cur]) < 0)
                                                goto oom;
                                        ops[k].had_old = true;
                                }
                                n_ops++;
                        } else
                                agent_tc_done(&ops[k].tc);
                        ops[k].action = action;
                        ops[k].st = st;
                        if (action == ACT_INSTALL) {
                                AgentTc tc = {
                                        .component = st->component,
                                        .seq = st->seq,
                                        .size = st->payload_len,
                                        .manifest_id = st->manifest_id,
                                        .tam_uri = (char *)(tam_uri ?: ""),
                                };
                                memcpy(tc.sha256, st->sha256, 32);
                                memcpy(tc.manifest_hash, st->stored_hash, 32);
                                if (agent_tc_copy(&ops[k].tc, &tc) < 0)
                                        goto oom;
                        } else if (agent_tc_copy(&ops[k].tc, ops[k].had_old ? &ops[k].old : &a->state.tcs[cur]) < 0)
                                goto oom;
                }
                /* a removal of something that a later install in this Update re-creates is not
                 * a removal: the final op is an install (handled above by "last word wins") */

                r = commit(a, ops, n_ops, staged, n_staged, &fail_op, why, sizeof(why));
                if (r < 0 && fail_op == SIZE_MAX) {
                        log_error("TAM %s: update → error ERR_TEMPORARY_ERROR (%s); no state change", tam_uri ?: "-", why);
                        r = agent_build_error(a, tam, alg, token, TEEP_ERR_TEMPORARY_ERROR, why, NULL, 0, ret, ret_len);
                        goto done;
                }
                if (r < 0) {
                        Staged *st = ops[fail_op].st;
                        if (!st) {
                                /* an unneeded-manifest-list removal failed */
                                r = agent_build_error(a, tam, alg, token, TEEP_ERR_MANIFEST_PROCESSING_FAILED, why, NULL,
                                                      0, ret, ret_len);
                                log_error("TAM %s: update → error ERR_MANIFEST_PROCESSING_FAILED (%s); rolled back",
                                          tam_uri ?: "-", why);
                                goto done;
                        }
                        (void)staged_fail(st, r, SUIT_REPORT_REASON_OPERATION_FAILED, SUIT_MANIFEST_INSTALL, 0, "%s", why);
                        failed = (ssize_t)(st - staged);
                }
        }

        /* 4. the answer */
        if (failed >= 0) {
                Staged *st = &staged[failed];
                _cleanup_free_ uint8_t *rep = NULL;
                size_t rep_len = 0;
                char msg[512];
                TeepBuf rb;

                r = report_for(st, token, false, &rep, &rep_len);
                if (r < 0)
                        goto done;
                rb = TEEP_BUF(rep, rep_len);
                (void)snprintf(msg, sizeof(msg), "manifest %zu: %.30s: %.400s", st->index,
                               agent_suit_reason_to_string(st->reason), st->msg);
                log_warning("TAM %s: update (%zu manifest(s), %zu unneeded) → error ERR_MANIFEST_PROCESSING_FAILED (%s);"
                            " nothing committed",
                            tam_uri ?: "-", m->n_manifest_list, m->n_unneeded_manifest_list, msg);
                a->refusal_hint = st->error;
                r = agent_build_error(a, tam, alg, token, TEEP_ERR_MANIFEST_PROCESSING_FAILED, msg, &rb, 1, ret, ret_len);
                goto done;
        } else {
                _cleanup_(teep_message_freep) TeepMessage *ok = NULL;
                uint8_t **reps = calloc(n_staged + 1, sizeof(uint8_t *));
                size_t *lens = calloc(n_staged + 1, sizeof(size_t));

                r = reps && lens ? teep_message_new(&ok, TEEP_TYPE_SUCCESS) : -ENOMEM;
                if (r >= 0 && token) {
                        ok->has_token = true;
                        ok->token = *token;
                }
                for (size_t i = 0; i < n_staged && r >= 0; i++) {
                        r = report_for(&staged[i], token, true, &reps[i], &lens[i]);
                        if (r >= 0)
                                r = teep_message_add_buf(ok, TEEP_LABEL_SUIT_REPORTS, TEEP_BUF(reps[i], lens[i]));
                }
                if (r >= 0)
                        r = agent_sign_message(a, tam, alg, ok, ret, ret_len);
                for (size_t i = 0; reps && i < n_staged; i++)
                        free(reps[i]);
                free(reps);
                free(lens);
                if (r >= 0) {
                        size_t inst = 0, rem = 0;
                        for (size_t i = 0; i < n_ops; i++)
                                ops[i].action == ACT_INSTALL ? inst++ : rem++;
                        log_info("TAM %s: update (%zu manifest(s), %zu unneeded) → success (%zu installed, %zu removed, %zu unchanged)",
                                 tam_uri ?: "-", m->n_manifest_list, m->n_unneeded_manifest_list, inst, rem,
                                 n_staged + m->n_unneeded_manifest_list - n_ops);
                        if (n_ops > 0)
                                agent_notify(a, AGENT_CHANGED_INSTALLED | AGENT_CHANGED_PENDING);
                }
        }
done:
        unstage_all(a);
        for (size_t i = 0; i < n_staged; i++)
                staged_done(&staged[i]);
        free(staged);
        ops_free(ops, n_ops);
        return r < 0 ? r : 0;
oom:
        r = -ENOMEM;
        goto done;
}
