/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-suit.h: SUIT envelopes and manifests: decode, authenticate, and build for the SP tool */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-component.h"
#include "teep-cose.h"
#include "teep-errors.h"

/*
 * draft-ietf-suit-manifest-37 with draft-ietf-suit-trust-domains (dependencies, uninstall,
 * unlink), the subset TEEP needs (docs: teep-protocol-digest.md §8).
 *
 * The order of use is fixed, and the API enforces it:
 *   1. teep_suit_envelope_decode()   structure only; nothing in the manifest is looked at
 *   2. teep_suit_envelope_verify()   manifest digest + COSE signature with trusted keys
 *   3. teep_suit_manifest_decode()   refuses an envelope that step 2 did not authenticate
 *                                    (unless the caller explicitly asks for an unauthenticated
 *                                    look, e.g. `teepctl inspect` or a fuzzer)
 *
 * Decoding is strict and fails closed: an envelope or manifest member, a common member, a
 * command or condition we do not know is refused (the manifest is signed, so anything we do
 * not understand there is an instruction we would not follow). Only unknown *parameters* are
 * kept as raw views, because parameters are data that a command may or may not consume.
 *
 * Numbering: current SUIT numbering only. Key 9 is suit-invoke; the TEEP draft's App. D
 * Update embeds a pre-2021 manifest whose install sequence sits at 9 - it decodes here as an
 * invoke sequence and has no install, which is exactly what a current processor must see.
 */

/* SUIT_Envelope keys */
enum {
        SUIT_ENVELOPE_DELEGATION = 1, /* not supported: refused */
        SUIT_ENVELOPE_AUTHENTICATION_WRAPPER = 2,
        SUIT_ENVELOPE_MANIFEST = 3,
};

/* SUIT_Manifest keys (severable ones may also appear in the envelope) */
enum {
        SUIT_MANIFEST_VERSION = 1,
        SUIT_MANIFEST_SEQUENCE_NUMBER = 2,
        SUIT_MANIFEST_COMMON = 3,
        SUIT_MANIFEST_REFERENCE_URI = 4,
        SUIT_MANIFEST_COMPONENT_ID = 5,
        SUIT_MANIFEST_VALIDATE = 7,
        SUIT_MANIFEST_LOAD = 8,
        SUIT_MANIFEST_INVOKE = 9,
        SUIT_MANIFEST_DEPENDENCY_RESOLUTION = 15,  /* severable */
        SUIT_MANIFEST_PAYLOAD_FETCH = 16,          /* severable */
        SUIT_MANIFEST_CANDIDATE_VERIFICATION = 18, /* severable */
        SUIT_MANIFEST_INSTALL = 20,                /* severable */
        SUIT_MANIFEST_TEXT = 23,                   /* severable */
        SUIT_MANIFEST_UNINSTALL = 24,
};

/* SUIT_Common keys */
enum {
        SUIT_COMMON_DEPENDENCIES = 1,
        SUIT_COMMON_COMPONENTS = 2,
        SUIT_COMMON_SHARED_SEQUENCE = 4,
        SUIT_DEPENDENCY_PREFIX = 1, /* key inside one dependency's metadata map */
};

#define SUIT_MANIFEST_VERSION_1 1

/* Conditions and directives (the command labels we implement) */
enum {
        SUIT_CONDITION_VENDOR_IDENTIFIER = 1,
        SUIT_CONDITION_CLASS_IDENTIFIER = 2,
        SUIT_CONDITION_IMAGE_MATCH = 3,
        SUIT_CONDITION_COMPONENT_SLOT = 5,
        SUIT_CONDITION_CHECK_CONTENT = 6,
        SUIT_CONDITION_DEPENDENCY_INTEGRITY = 7,
        SUIT_CONDITION_IS_DEPENDENCY = 8,
        SUIT_DIRECTIVE_PROCESS_DEPENDENCY = 11,
        SUIT_DIRECTIVE_SET_COMPONENT_INDEX = 12,
        SUIT_CONDITION_ABORT = 14,
        SUIT_DIRECTIVE_TRY_EACH = 15,
        SUIT_DIRECTIVE_WRITE = 18,
        SUIT_DIRECTIVE_SET_PARAMETERS = 19,
        SUIT_DIRECTIVE_OVERRIDE_PARAMETERS = 20,
        SUIT_DIRECTIVE_FETCH = 21,
        SUIT_DIRECTIVE_COPY = 22,
        SUIT_DIRECTIVE_INVOKE = 23,
        SUIT_CONDITION_DEVICE_IDENTIFIER = 24,
        SUIT_DIRECTIVE_SWAP = 31,
        SUIT_DIRECTIVE_RUN_SEQUENCE = 32,
        SUIT_DIRECTIVE_UNLINK = 33,
};

/* Reporting policy bits (the argument of conditions and most directives) */
enum {
        SUIT_POLICY_RECORD_ON_SUCCESS = 1,
        SUIT_POLICY_RECORD_ON_FAILURE = 2,
        SUIT_POLICY_SYSINFO_ON_SUCCESS = 4,
        SUIT_POLICY_SYSINFO_ON_FAILURE = 8,
        SUIT_POLICY_ALL = 15,
};

/* Parameters */
enum {
        SUIT_PARAM_VENDOR_IDENTIFIER = 1,
        SUIT_PARAM_CLASS_IDENTIFIER = 2,
        SUIT_PARAM_IMAGE_DIGEST = 3,
        SUIT_PARAM_COMPONENT_SLOT = 5,
        SUIT_PARAM_STRICT_ORDER = 12,
        SUIT_PARAM_SOFT_FAILURE = 13,
        SUIT_PARAM_IMAGE_SIZE = 14,
        SUIT_PARAM_CONTENT = 18,
        SUIT_PARAM_ENCRYPTION_INFO = 19,
        SUIT_PARAM_URI = 21,
        SUIT_PARAM_SOURCE_COMPONENT = 22,
        SUIT_PARAM_INVOKE_ARGS = 23,
        SUIT_PARAM_DEVICE_IDENTIFIER = 24,
        SUIT_PARAM_FETCH_ARGUMENTS = 25,
        SUIT_PARAM_VERSION = 28,
};

#define SUIT_CBOR_TAG_PEN 112 /* RFC 9090 OID relative to 1.3.6.1.4.1 (a vendor's PEN) */

/* Bounds: every count read from the wire is checked against these before anything is stored. */
#define TEEP_SUIT_MAX_SIGNATURES        4   /* COSE blocks in the authentication wrapper */
#define TEEP_SUIT_MAX_PAYLOADS          8   /* integrated payloads ("#tc") in one envelope */
#define TEEP_SUIT_MAX_COMPONENTS        16  /* common.components */
#define TEEP_SUIT_MAX_DEPENDENCIES      8   /* common.dependencies */
#define TEEP_SUIT_MAX_INDEX             63  /* highest component/dependency index */
#define TEEP_SUIT_MAX_SEQUENCE_COMMANDS 64  /* commands in one sequence */
#define TEEP_SUIT_MAX_COMMANDS          512 /* commands in a whole manifest, nested included */
#define TEEP_SUIT_MAX_NESTING           4   /* try-each / run-sequence nesting */
#define TEEP_SUIT_MAX_TRY_EACH          8   /* alternatives in one try-each */
#define TEEP_SUIT_MAX_UNKNOWN_PARAMS    8   /* unknown parameters kept per parameter map */
#define TEEP_SUIT_SHA256_LEN            32
#define TEEP_SUIT_UUID_LEN              16

/* SUIT_Digest = [alg, bytes] (views). */
typedef struct TeepSuitDigest {
        int64_t alg;
        TeepBuf bytes;
} TeepSuitDigest;

/* One integrated payload: envelope key (text, e.g. "#tc") => bstr. */
typedef struct TeepSuitPayload {
        TeepBuf key;  /* the text key, without CBOR head (not NUL-terminated) */
        TeepBuf data; /* the byte string content */
} TeepSuitPayload;

/* A member of the envelope held as bstr: wrapped = head + content, the digest input. */
typedef struct TeepSuitEnvelopeMember {
        bool present;
        TeepBuf wrapped;
        TeepBuf content;
} TeepSuitEnvelopeMember;

/*
 * A decoded envelope: views into the input, which must outlive it.
 * `authenticated` is set only by teep_suit_envelope_verify().
 */
typedef struct TeepSuitEnvelope {
        bool tagged;                 /* carried tag 107 */
        TeepSuitEnvelopeMember auth; /* key 2: the authentication wrapper bstr */
        TeepBuf digest_raw;          /* content of auth[0]: the encoded SUIT_Digest (signed payload) */
        TeepSuitDigest digest;       /* auth[0] decoded */
        size_t n_signatures;
        TeepBuf signatures[TEEP_SUIT_MAX_SIGNATURES];  /* contents of auth[1..]: COSE objects */
        TeepSuitEnvelopeMember manifest;               /* key 3 */
        TeepSuitEnvelopeMember dependency_resolution;  /* key 15 (severed member) */
        TeepSuitEnvelopeMember payload_fetch;          /* key 16 */
        TeepSuitEnvelopeMember candidate_verification; /* key 18 */
        TeepSuitEnvelopeMember install;                /* key 20 */
        TeepSuitEnvelopeMember text;                   /* key 23 */
        size_t n_payloads;
        TeepSuitPayload payloads[TEEP_SUIT_MAX_PAYLOADS];
        bool authenticated;
} TeepSuitEnvelope;

/*
 * Decode a SUIT_Envelope (tag 107 or untagged map). Checks the structure of the
 * authentication wrapper (a SUIT_Digest and 1..TEEP_SUIT_MAX_SIGNATURES byte strings) but
 * neither the digest nor the signatures, and does not look into the manifest.
 * Unknown integer keys (including 1, delegation) are refused with -EOPNOTSUPP; text keys are
 * integrated payloads and must hold byte strings.
 * Returns 0 with *ret to free with teep_suit_envelope_free() (its views point into in), or
 * -EBADMSG / -E2BIG / -EOPNOTSUPP with TEEP_REASON_SUIT_ENVELOPE, _AUTH (missing or malformed
 * authentication wrapper) or a CBOR reason, or -ENOMEM. ret is untouched on failure.
 */
int teep_suit_envelope_decode(TeepBuf in, TeepSuitEnvelope **ret, TeepError *err);

/* Free a decoded envelope. Accepts NULL; returns NULL. */
TeepSuitEnvelope *teep_suit_envelope_free(TeepSuitEnvelope *env);
static inline void teep_suit_envelope_freep(TeepSuitEnvelope **env) {
        if (*env)
                *env = teep_suit_envelope_free(*env);
}

/*
 * Authenticate a decoded envelope: the SUIT_Digest must be SHA-256 (-16) of the bstr-wrapped
 * manifest (compared in constant time), and at least one COSE_Sign1 (or COSE_Sign) block must
 * verify over the detached payload = the encoded SUIT_Digest with one of keys.
 * On success sets env->authenticated and ret_key_index (optional) to the key that verified.
 * Returns 0; -EOPNOTSUPP (TEEP_REASON_SUIT_DIGEST_ALG, or no block with an algorithm we
 * support); -EKEYREJECTED (TEEP_REASON_SUIT_DIGEST on digest mismatch, a COSE reason when no
 * signature verified); -ENOKEY (no key could be tried); -EBADMSG (malformed COSE block, or a
 * block with an attached payload: TEEP_REASON_SUIT_AUTH).
 */
int teep_suit_envelope_verify(TeepSuitEnvelope *env, TeepKey *const *keys, size_t n_keys,
                              size_t *ret_key_index, TeepError *err);

/* Find the integrated payload stored under text key (e.g. "#tc"). Returns 0 or -ENOENT. */
int teep_suit_envelope_get_payload(const TeepSuitEnvelope *env, const char *key, TeepBuf *ret);

typedef struct TeepSuitSequence TeepSuitSequence;

/* Parameters of one set-/override-parameters map (views). `present` has bit (1 << label). */
typedef struct TeepSuitParameters {
        uint64_t present;
        TeepBuf vendor_id; /* 1: 16-byte UUID, or the PEN OID bytes when vendor_id_is_pen */
        bool vendor_id_is_pen;
        TeepBuf class_id;         /* 2: 16-byte UUID */
        TeepBuf image_digest_raw; /* 3: content of the bstr (the encoded SUIT_Digest) */
        TeepSuitDigest image_digest;
        uint64_t component_slot;   /* 5 */
        bool strict_order;         /* 12 */
        bool soft_failure;         /* 13 */
        uint64_t image_size;       /* 14 */
        TeepBuf content;           /* 18 */
        TeepBuf encryption_info;   /* 19: content of the bstr (a COSE_Encrypt, not decoded here) */
        TeepBuf uri;               /* 21: text, not NUL-terminated */
        uint64_t source_component; /* 22 */
        TeepBuf invoke_args;       /* 23 */
        TeepBuf device_id;         /* 24: 16-byte UUID */
        TeepBuf fetch_arguments;   /* 25 */
        TeepBuf version_raw;       /* 28: the encoded SUIT_Parameter_Version_Match */
        size_t n_unknown;
        struct {
                int64_t label;
                TeepBuf raw; /* the encoded value */
        } unknown[TEEP_SUIT_MAX_UNKNOWN_PARAMS];
} TeepSuitParameters;

static inline bool teep_suit_parameters_has(const TeepSuitParameters *p, int label) {
        return label >= 0 && label < 64 && (p->present & (UINT64_C(1) << label));
}

/* One command: a condition or a directive with its decoded argument. */
typedef struct TeepSuitCommand {
        int64_t label;
        TeepBuf arg;                /* the encoded argument, whatever its type */
        uint64_t policy;            /* conditions and policy-taking directives */
        bool index_all;             /* set-component-index true */
        uint64_t index_mask;        /* set-component-index: bit i set = component index i */
        TeepSuitParameters *params; /* set-parameters / override-parameters */
        size_t n_sequences;         /* try-each: alternatives (nil excluded); run-sequence: 1 */
        TeepSuitSequence *sequences;
        bool try_each_nil; /* try-each ended with nil (an empty, succeeding alternative) */
} TeepSuitCommand;

/*
 * A command sequence. For manifest members: present says whether the member exists; severed
 * says it appeared in the manifest as a SUIT_Digest and was taken (and digest-checked) from
 * the envelope.
 */
struct TeepSuitSequence {
        bool present;
        bool severed;
        TeepSuitDigest digest; /* when severed */
        TeepBuf raw;           /* the encoded command array */
        size_t n_commands;
        TeepSuitCommand *commands;
};

typedef struct TeepSuitDependency {
        uint64_t index; /* the component index this dependency occupies */
        bool has_prefix;
        TeepSuitComponentId prefix;
} TeepSuitDependency;

typedef struct TeepSuitManifestAlloc TeepSuitManifestAlloc;

/* A decoded manifest: views into the envelope's input buffer plus owned command arrays. */
typedef struct TeepSuitManifest {
        TeepBuf raw; /* the encoded manifest map */
        uint64_t version;
        uint64_t sequence_number;
        TeepBuf common_raw; /* content of the common bstr */
        size_t n_components;
        TeepSuitComponentId components[TEEP_SUIT_MAX_COMPONENTS];
        size_t n_dependencies;
        TeepSuitDependency dependencies[TEEP_SUIT_MAX_DEPENDENCIES];
        TeepSuitSequence shared_sequence;
        bool has_reference_uri;
        TeepBuf reference_uri;
        bool has_manifest_component_id;
        TeepSuitComponentId manifest_component_id;
        TeepSuitSequence validate;
        TeepSuitSequence load;
        TeepSuitSequence invoke;
        TeepSuitSequence dependency_resolution;
        TeepSuitSequence payload_fetch;
        TeepSuitSequence candidate_verification;
        TeepSuitSequence install;
        TeepSuitSequence uninstall;
        bool has_text;
        bool text_severed;             /* digest only in the manifest (its content may be absent) */
        TeepBuf text;                  /* content of the text bstr (a SUIT_Text_Map, not decoded) */
        size_t n_commands;             /* all commands, nested ones included */
        TeepSuitManifestAlloc *allocs; /* private */
} TeepSuitManifest;

/* Flags for teep_suit_manifest_decode() */
enum {
        /* Decode even if the envelope was not authenticated: for inspection tools and fuzzing
         * only; nothing decoded this way may be acted on. */
        TEEP_SUIT_DECODE_UNAUTHENTICATED = 1 << 0,
};

/*
 * Decode the manifest of an authenticated envelope (see teep_suit_envelope_verify()).
 * Severable members that the manifest holds as a SUIT_Digest are taken from the envelope and
 * their digest (over the bstr-wrapped member) checked: a mismatch is -EKEYREJECTED, a member
 * the envelope does not carry -EBADMSG, both with TEEP_REASON_SUIT_SEVERED (text alone may be
 * absent: it is informational and commonly stripped; has_text is then false, text_severed
 * true). An envelope member the manifest does not reference by digest is refused as well
 * (-EBADMSG, TEEP_REASON_SUIT_SEVERED): nothing unauthenticated is passed on.
 * Bounds: TEEP_SUIT_MAX_* (-E2BIG). Indices in set-component-index must name a component or
 * a dependency (TEEP_REASON_SUIT_COMPONENT); dependencies may use indices past the component
 * list, as the TEEP draft's App. E Ex.3 does. Structure only: whether a sequence makes sense
 * (set-component-index first with several components, dependency-integrity before
 * process-dependency, ...) is the processor's call.
 * Returns 0 with *ret to free with teep_suit_manifest_free(); -EINVAL (envelope not
 * authenticated, TEEP_REASON_SUIT_AUTH); -EBADMSG / -E2BIG / -EOPNOTSUPP with
 * TEEP_REASON_SUIT_MANIFEST, _VERSION, _COMMON, _COMPONENT, _SEQUENCE, _COMMAND, _PARAMETER,
 * _SEVERED or a CBOR reason; -ENOMEM.
 */
int teep_suit_manifest_decode(const TeepSuitEnvelope *env, unsigned flags, TeepSuitManifest **ret,
                              TeepError *err);

/* Free a decoded manifest. Accepts NULL; returns NULL. */
TeepSuitManifest *teep_suit_manifest_free(TeepSuitManifest *m);
static inline void teep_suit_manifest_freep(TeepSuitManifest **m) {
        if (*m)
                *m = teep_suit_manifest_free(*m);
}

/* Name of a command label ("directive-fetch", ...), or NULL if unknown. */
const char *teep_suit_command_to_string(int64_t label);

/* ---- building (the SP tool and the reference TAM) ---- */

/*
 * What a Trusted Component's manifest says, in the shape of the TEEP draft's App. E
 * Examples 1 and 2:
 *   common: components [component_id],
 *           shared-sequence [override {vendor, class, image-digest, image-size},
 *                            vendor-identifier 15, class-identifier 15]
 *   5:  manifest_component_id (if given)
 *   7:  validate [image-match 15] (if validate)
 *   20: install [override {uri}, fetch 15, image-match 15]
 *   24: uninstall [unlink 15] (if uninstall_unlink)
 * Maps are written in ascending key order with preferred encodings; given the draft's
 * inputs the bytes equal the draft's manifests.
 */
/* A dependency (draft-ietf-suit-trust-domains) of a built manifest: another signed envelope,
 * named by its manifest-component-id, bound by its manifest digest and size, found at uri. */
typedef struct TeepSuitBuildDependency {
        const TeepSuitComponentId *prefix; /* the dependency's manifest-component-id */
        TeepBuf digest;                    /* SHA-256 manifest digest of the dependency (32 bytes) */
        uint64_t size;                     /* size of the envelope served at uri */
        const char *uri;
} TeepSuitBuildDependency;

typedef struct TeepSuitBuild {
        const TeepSuitComponentId *component_id;          /* required */
        const TeepSuitComponentId *manifest_component_id; /* optional */
        uint64_t sequence_number;
        TeepBuf vendor_id;    /* 16-byte UUID */
        TeepBuf class_id;     /* 16-byte UUID */
        TeepBuf image_digest; /* SHA-256 of the payload (32 bytes); install only */
        uint64_t image_size;  /* install only */
        const char *uri;      /* install only: "https://..." or "#name" */
        TeepBuf payload;      /* install only: integrated payload (ptr != NULL) stored
                               * under envelope key `uri`, which must start with '#' */
        bool validate;
        bool uninstall_unlink;
        /* optional (ptr != NULL): the payload is encrypted (teep_encrypt()) and this is its
         * SUIT_Encryption_Info; image_digest and image_size are the plaintext's. With an
         * integrated payload (the ciphertext) the install sequence is the TEEP draft's App. E
         * Ex.3 shape [override {18 ciphertext, 19 info}, write 15, image-match 15] and the
         * envelope carries no payload member; with a URI it is
         * [override {19 info, 21 uri}, fetch 15, image-match 15] (the fetched bytes are the
         * ciphertext, decrypted by the device as they arrive). */
        TeepBuf encryption_info;
        /* optional: one dependency at component index 1, in the TEEP draft's App. E Ex.3 shape:
         *   common.dependencies {1: {1: prefix}}, the shared sequence starts with set-component-index 0,
         *   15: dependency-resolution [set-component-index 1, override {3 digest, 14 size, 21 uri},
         *       fetch 15, dependency-integrity 15],
         *   20: install starts with [set-component-index 1, process-dependency 15, set-component-index 0] */
        const TeepSuitBuildDependency *dependency;
} TeepSuitBuild;

/*
 * Encode the install manifest described by b (unsigned; the SUIT_Manifest map).
 * Returns 0 with a buffer to free(), -EINVAL for missing or ill-sized inputs (UUIDs must be
 * 16 bytes, the digest 32, uri non-empty, an integrated payload needs a '#' uri and must
 * match image_digest/image_size), -ENOMEM.
 */
int teep_suit_manifest_encode_install(const TeepSuitBuild *b, uint8_t **ret, size_t *ret_len);

/*
 * Encode a delete intent: a manifest whose install sequence unlinks the component
 *   common: components [component_id], shared-sequence [override {vendor, class},
 *           vendor-identifier 15, class-identifier 15]
 *   5: manifest_component_id (if given), 20: install [unlink 15]
 * (image_digest, image_size, uri, payload, validate and uninstall_unlink are ignored).
 */
int teep_suit_manifest_encode_unlink(const TeepSuitBuild *b, uint8_t **ret, size_t *ret_len);

/*
 * Sign an encoded manifest and wrap it into an untagged envelope
 *   {2: << [<< [-16, sha256(<<manifest>>)] >>, << COSE_Sign1 >>] >>, 3: << manifest >>,
 *    payload keys (text, in CBOR deterministic order) => bstr}
 * The COSE_Sign1 is made by teep_cose_sign1(key, alg, NULL, encoded digest, detached).
 * alg 0 = the key's default. Returns 0 with a buffer to free(), -EINVAL (bad payload key:
 * not UTF-8, empty, duplicate; more than TEEP_SUIT_MAX_PAYLOADS), or the signing error.
 */
int teep_suit_envelope_sign(TeepBuf manifest, const TeepKey *key, int64_t alg,
                            const TeepSuitPayload *payloads, size_t n_payloads, uint8_t **ret,
                            size_t *ret_len);

/* teep_suit_manifest_encode_install() + teep_suit_envelope_sign() with b->payload attached. */
int teep_suit_envelope_build_install(const TeepSuitBuild *b, const TeepKey *key, int64_t alg, uint8_t **ret,
                                     size_t *ret_len);

/* teep_suit_manifest_encode_unlink() + teep_suit_envelope_sign(). */
int teep_suit_envelope_build_unlink(const TeepSuitBuild *b, const TeepKey *key, int64_t alg, uint8_t **ret,
                                    size_t *ret_len);
