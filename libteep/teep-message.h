/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-message.h: typed decode and encode of the five TEEP messages (draft-ietf-teep-protocol-26) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-component.h"
#include "teep-errors.h"
#include "teep-protocol.h"

/* Our own bounds for the small fixed-shape arrays, so they need no heap array of their own. */
enum {
        TEEP_CIPHER_SUITE_MAX_OPS = 4,       /* the draft's suites have one operation */
        TEEP_SUIT_COSE_PROFILE_MAX_ALGS = 8, /* the suit-mti profiles have four */
};

/* One operation of a cipher suite: [COSE type tag, COSE alg]. Kept generic (legacy -7/-8 too). */
typedef struct TeepCipherOperation {
        uint64_t cose_tag;
        int64_t alg;
} TeepCipherOperation;

/* $teep-cipher-suite: [+ operation], e.g. [[18, -9]]. */
typedef struct TeepCipherSuite {
        size_t n_ops;
        TeepCipherOperation ops[TEEP_CIPHER_SUITE_MAX_OPS];
} TeepCipherSuite;

/* $suit-cose-profile: an array of COSE algorithm ids, e.g. [-16, -9, -29, -65534]. */
typedef struct TeepSuitCoseProfile {
        size_t n_algs;
        int64_t algs[TEEP_SUIT_COSE_PROFILE_MAX_ALGS];
} TeepSuitCoseProfile;

/* One pair of system-property-claims other than key 0: the value stays encoded, as received. */
typedef struct TeepClaim {
        int64_t label;
        TeepBuf value; /* the complete encoded CBOR item */
} TeepClaim;

/*
 * A tc-list entry: {0: component-id, + label => value}. Component ids here and below are
 * TeepSuitComponentId (teep-component.h): at most TEEP_COMPONENT_MAX_SEGMENTS segments of at
 * most TEEP_COMPONENT_MAX_SEGMENT_LEN bytes, held inline as views.
 */
typedef struct TeepSystemPropertyClaims {
        TeepSuitComponentId component_id;
        size_t n_claims;
        TeepClaim *claims; /* in received order; encoded after key 0 in this order */
} TeepSystemPropertyClaims;

/* requested-tc-info: {16: component-id, ? 17: tc-manifest-sequence-number, ? 18: have-binary}. */
typedef struct TeepRequestedTcInfo {
        TeepSuitComponentId component_id;
        bool has_tc_manifest_sequence_number;
        uint64_t tc_manifest_sequence_number;
        bool has_have_binary;
        bool have_binary;
} TeepRequestedTcInfo;

/*
 * A decoded (or to-be-encoded) TEEP message. All TeepBuf fields are views: after
 * teep_message_decode() they point into the caller's payload, which must outlive the message;
 * when a message is built in code they point wherever the caller likes, and that memory must
 * outlive teep_message_encode(). The arrays (lists, claims) are owned by the message and
 * released by teep_message_free(); component ids are held inline (TeepSuitComponentId), their
 * segments are views like every other TeepBuf.
 *
 * has_* says whether an option was present. Text fields (msg, err-msg, err-lang,
 * attestation-payload-format) are UTF-8 views, not NUL-terminated.
 */
typedef struct TeepMessage {
        TeepMessageType type;

        bool has_token;                                 /* 20: bstr 8..64 */
        TeepBuf token;
        bool has_challenge;                             /* 2: bstr 8..512 */
        TeepBuf challenge;
        bool has_versions;                              /* 3: [+ uint32] */
        size_t n_versions;
        uint32_t *versions;
        bool has_selected_version;                      /* 6: uint32 */
        uint32_t selected_version;
        bool has_attestation_payload;                   /* 7: bstr */
        TeepBuf attestation_payload;
        bool has_attestation_payload_format;            /* 13: text */
        TeepBuf attestation_payload_format;
        bool has_tc_list;                               /* 8: [* system-property-claims], see below */
        size_t n_tc_list;
        TeepSystemPropertyClaims *tc_list;
        bool has_ext_list;                              /* 9: [+ uint32] */
        size_t n_ext_list;
        uint32_t *ext_list;
        bool has_manifest_list;                         /* 10: [+ bstr .cbor SUIT_Envelope] */
        size_t n_manifest_list;
        TeepBuf *manifest_list;
        bool has_msg;                                   /* 11: text 1..128 bytes */
        TeepBuf msg;
        bool has_err_msg;                               /* 12: text 1..128 bytes */
        TeepBuf err_msg;
        bool has_requested_tc_list;                     /* 14: [+ requested-tc-info] */
        size_t n_requested_tc_list;
        TeepRequestedTcInfo *requested_tc_list;
        bool has_unneeded_manifest_list;                /* 15: [+ SUIT_Component_Identifier] */
        size_t n_unneeded_manifest_list;
        TeepSuitComponentId *unneeded_manifest_list;
        bool has_suit_reports;                          /* 19: [+ bstr .cbor SUIT_Report_*] */
        size_t n_suit_reports;
        TeepBuf *suit_reports;
        bool has_supported_freshness_mechanisms;        /* 21: [+ uint] */
        size_t n_supported_freshness_mechanisms;
        uint64_t *supported_freshness_mechanisms;
        bool has_err_lang;                              /* 22: text 1..35 bytes */
        TeepBuf err_lang;

        /* Update: option 23. Error: the last positional element (always present, never 0). */
        bool has_err_code;
        uint64_t err_code;
        /* QueryRequest: positional (required). Error: option 1. */
        bool has_supported_cipher_suites;
        size_t n_supported_cipher_suites;
        TeepCipherSuite *supported_cipher_suites;
        /* QueryRequest: positional (required). Error: option 4. */
        bool has_supported_suit_cose_profiles;
        size_t n_supported_suit_cose_profiles;
        TeepSuitCoseProfile *supported_suit_cose_profiles;
        /* QueryRequest: positional, TEEP_DATA_* bits (unknown bits are kept). */
        uint64_t data_item_requested;
} TeepMessage;

/*
 * Decode an unsigned TEEP message (the COSE payload). The input is checked as one well-formed,
 * definite-length CBOR item within the default limits before anything is allocated, then
 * validated against the message's CDDL:
 *   -EBADMSG  malformed CBOR or a CDDL violation; err->reason names the rule
 *             (MSG_NOT_ARRAY, MSG_ARITY, MSG_OPTIONS, CBOR_DUPLICATE_KEY, MSG_FIELD_TYPE,
 *             MSG_FIELD_SIZE, MSG_FIELD_EMPTY, MSG_FIELD_MISSING, MSG_FIELD_VALUE, CBOR_*)
 *   -EPROTO   a well-formed message of a type we do not know (MSG_TYPE_UNKNOWN)
 *   -E2BIG    a limit was exceeded (CBOR_* limits, or a suite/profile longer than our bounds),
 *             or a component id beyond TEEP_COMPONENT_MAX_SEGMENTS segments or with a segment
 *             over TEEP_COMPONENT_MAX_SEGMENT_LEN bytes (SUIT_COMPONENT)
 *   -ENOMEM
 * Options with unknown labels are skipped. Known labels are type-checked in every message (one
 * label space, one type per label) but kept only where the message's CDDL lists them.
 * An empty tc-list is accepted (has_tc_list set, n_tc_list 0); see the comment in the source.
 * On success *ret owns a new message whose views point into payload; err may be NULL.
 */
int teep_message_decode(TeepBuf payload, TeepMessage **ret, TeepError *err);

/* Free a message and the arrays it owns (not the memory its views point to). Accepts NULL, returns NULL. */
TeepMessage *teep_message_free(TeepMessage *m);
static inline void teep_message_freep(TeepMessage **m) {
        if (*m)
                *m = teep_message_free(*m);
}

/*
 * Encode m as preferred, definite-length CBOR. Options are emitted in the order the message's
 * CDDL lists them; options that the CDDL does not list for m->type are not emitted, and an
 * empty tc-list is omitted. On success *ret (free() it) and *ret_len hold the encoding.
 * Returns 0, -EINVAL if m breaks a rule the decoder enforces (sizes, empty lists, err-code 0,
 * invalid UTF-8, a malformed claim value, a component id beyond the teep-component.h bounds,
 * unknown type), -ENOMEM or -E2BIG.
 */
int teep_message_encode(const TeepMessage *m, uint8_t **ret, size_t *ret_len);

/* "query-request", "query-response", "update", "success", "error"; NULL for anything else. */
const char *teep_message_type_to_string(int type);
/* "ERR_PERMANENT_ERROR", ...; NULL for reserved, unassigned and unknown codes. */
const char *teep_err_code_to_string(uint64_t code);
/* The CDDL name of an option label ("token", "tc-list", "component-id", ...); NULL if unknown. */
const char *teep_label_to_string(uint64_t label);

/*
 * Constructors for the agent and the TAM. Each returns 0, -ENOMEM, or -EINVAL for a bad
 * argument; the caller fills scalar options (token, msg, err_code, ...) directly. Those that
 * take a component id (id[0..n_id), views) return -E2BIG for more than
 * TEEP_COMPONENT_MAX_SEGMENTS segments or a segment over TEEP_COMPONENT_MAX_SEGMENT_LEN bytes.
 */

/* A new empty message of a known type (-EINVAL otherwise). */
int teep_message_new(TeepMessage **ret, TeepMessageType type);

/* Append a one-operation cipher suite [[cose_tag, alg]] and set has_supported_cipher_suites. */
int teep_message_add_cipher_suite(TeepMessage *m, uint64_t cose_tag, int64_t alg);

/* Append a SUIT COSE profile of 1..TEEP_SUIT_COSE_PROFILE_MAX_ALGS algorithm ids. */
int teep_message_add_suit_cose_profile(TeepMessage *m, const int64_t *algs, size_t n_algs);

/*
 * Append v to the uint list of label: versions (3) or ext-list (9), where v must fit 32 bits,
 * or supported-freshness-mechanisms (21). Sets the list's has_ flag.
 */
int teep_message_add_uint(TeepMessage *m, uint64_t label, uint64_t v);

/* Append a view to the bstr list of label: manifest-list (10) or suit-reports (19). */
int teep_message_add_buf(TeepMessage *m, uint64_t label, TeepBuf b);

/*
 * Append a tc-list entry with component id segments id[0..n_id) (the array is copied into the
 * entry, the views are not; component_id.raw stays empty). ret (optional) gets the entry, to
 * add claims with teep_claims_add().
 */
int teep_message_add_tc(TeepMessage *m, const TeepBuf *id, size_t n_id, TeepSystemPropertyClaims **ret);

/* Append a requested-tc-list entry; ret (optional) gets it, to set the sequence number and have-binary. */
int teep_message_add_requested_tc(TeepMessage *m, const TeepBuf *id, size_t n_id, TeepRequestedTcInfo **ret);

/* Append a manifest component id to unneeded-manifest-list. */
int teep_message_add_unneeded_manifest(TeepMessage *m, const TeepBuf *id, size_t n_id);

/* Add a claim (label != 0) whose value is one already encoded CBOR item (a view). */
int teep_claims_add(TeepSystemPropertyClaims *c, int64_t label, TeepBuf value);

/* Find the encoded value of claim label. Returns 0, or -ENOENT. */
int teep_claims_find(const TeepSystemPropertyClaims *c, int64_t label, TeepBuf *ret_value);

/*
 * Decode the image digest (label 3: bstr .cbor [alg: int, bytes: bstr]) of a tc-list entry.
 * ret_alg / ret_digest (views) are optional. Returns 0, -ENOENT if absent, -EBADMSG if malformed.
 */
int teep_claims_get_image_digest(const TeepSystemPropertyClaims *c, int64_t *ret_alg, TeepBuf *ret_digest);
