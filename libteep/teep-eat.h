/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-eat.h: EAT claims sets (RFC 9711) for the TEEP profile: decode, encode, validate */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-errors.h"

/*
 * The claims set is the payload of the COSE_Sign1 the Agent (Evidence) or a Verifier
 * (Attestation Result) signs; signing and verifying are teep-cose's job.
 *
 * Decoding is strict about the claims it knows (types and the TEEP profile's sizes; no CBOR
 * tags inside claims, -EBADMSG / TEEP_REASON_EAT_CLAIM) and skips every other claim, integer
 * or text keyed. Which claims must be present is a separate question, answered by
 * teep_eat_validate_teep_profile(), so a decoder can still show what an incomplete set holds.
 *
 * hwversion: RFC 9711 makes the version a text string. libteep (and so the vectors taken from
 * it) sends a byte string; teep_eat_decode() refuses that, the TAM side can opt in with
 * TEEP_EAT_DECODE_LEGACY_HWVERSION to accept it from such peers.
 *
 * eat_nonce: the TEEP profile allows a single byte string only (RFC 9711's array form is
 * refused).
 */

/* Claim keys */
enum {
        TEEP_EAT_ISS = 1,
        TEEP_EAT_EXP = 4,
        TEEP_EAT_IAT = 6,
        TEEP_EAT_CNF = 8,
        TEEP_EAT_NONCE = 10,
        TEEP_EAT_UEID = 256,
        TEEP_EAT_OEMID = 258,
        TEEP_EAT_HWMODEL = 259,
        TEEP_EAT_HWVERSION = 260,
        TEEP_EAT_PROFILE = 265,
        TEEP_EAT_SWNAME = 270,
        TEEP_EAT_SWVERSION = 271,
        TEEP_EAT_MANIFESTS = 272,
};

/* cnf members (RFC 8747) */
enum {
        TEEP_EAT_CNF_COSE_KEY_LABEL = 1,
        TEEP_EAT_CNF_ENCRYPTED_COSE_KEY_LABEL = 2, /* not supported */
        TEEP_EAT_CNF_KID_LABEL = 3,
};

/* Sizes (bytes) */
enum {
        TEEP_EAT_NONCE_MIN = 8,
        TEEP_EAT_NONCE_MAX = 64,
        TEEP_EAT_UEID_MIN = 7,
        TEEP_EAT_UEID_MAX = 33,
        TEEP_EAT_OEMID_IEEE_LEN = 3,
        TEEP_EAT_OEMID_RANDOM_LEN = 16,
        TEEP_EAT_HWMODEL_MIN = 1,
        TEEP_EAT_HWMODEL_MAX = 32,
        TEEP_EAT_KID_MAX = 64,
        TEEP_EAT_CONTENT_FORMAT_MAX = 65535,
};

#define TEEP_EAT_MAX_CLAIMS    64 /* claims in one set, unknown ones included */
#define TEEP_EAT_MAX_MANIFESTS 8

/* The TEEP profile identifier (the RFC number is not assigned yet). */
#define TEEP_EAT_PROFILE_TEEP "urn:ietf:rfc:rfcXXXX"

typedef enum TeepEatCnfType {
        TEEP_EAT_CNF_NONE,
        TEEP_EAT_CNF_KID,      /* {3: kid} - TEEP: RFC 9679 thumbprint of the Agent key */
        TEEP_EAT_CNF_COSE_KEY, /* {1: COSE_Key} */
} TeepEatCnfType;

typedef enum TeepEatOemidType {
        TEEP_EAT_OEMID_NONE,
        TEEP_EAT_OEMID_IEEE,   /* bstr of 3 bytes (IEEE OUI) */
        TEEP_EAT_OEMID_RANDOM, /* bstr of 16 bytes */
        TEEP_EAT_OEMID_PEN,    /* int: IANA Private Enterprise Number */
} TeepEatOemidType;

typedef enum TeepEatProfileType {
        TEEP_EAT_PROFILE_NONE,
        TEEP_EAT_PROFILE_URI, /* text */
        TEEP_EAT_PROFILE_OID, /* bstr: the OID's encoded bytes, untagged */
} TeepEatProfileType;

/* hwversion / swversion: [version: text, ? scheme: int] */
typedef struct TeepEatVersion {
        TeepBuf version;
        bool has_scheme;
        int64_t scheme;
} TeepEatVersion;

/* One manifests entry: [content-format: uint, body] */
typedef struct TeepEatManifest {
        uint64_t content_format;
        TeepBuf body;      /* bstr content, or the encoded CBOR item when body_is_cbor */
        bool body_is_cbor; /* the body was embedded CBOR rather than a byte string */
} TeepEatManifest;

/*
 * A claims set. Decoded sets hold views into the input; for encoding, the caller fills one
 * (on the stack is fine) with views of its own data.
 */
typedef struct TeepEat {
        bool has_iss;
        TeepBuf iss; /* 1: text */
        bool has_exp;
        int64_t exp; /* 4: NumericDate (a float is truncated) */
        bool has_iat;
        int64_t iat;             /* 6 */
        TeepEatCnfType cnf_type; /* 8 */
        TeepBuf cnf_kid;
        TeepBuf cnf_cose_key; /* the encoded COSE_Key map */
        bool has_nonce;
        TeepBuf nonce; /* 10: bstr 8..64 */
        bool has_ueid;
        TeepBuf ueid;                /* 256: bstr 7..33 */
        TeepEatOemidType oemid_type; /* 258 */
        TeepBuf oemid;
        int64_t oemid_pen;
        bool has_hwmodel;
        TeepBuf hwmodel; /* 259: bstr 1..32 */
        bool has_hwversion;
        TeepEatVersion hwversion;        /* 260 */
        bool hwversion_legacy_bstr;      /* decoded from a byte string (legacy flag only) */
        TeepEatProfileType profile_type; /* 265 */
        TeepBuf profile;
        bool has_swname;
        TeepBuf swname; /* 270: text */
        bool has_swversion;
        TeepEatVersion swversion; /* 271 */
        size_t n_manifests;       /* 272 */
        TeepEatManifest manifests[TEEP_EAT_MAX_MANIFESTS];
        size_t n_unknown; /* claims skipped */
} TeepEat;

/* Flags for teep_eat_decode_flags() */
enum {
        TEEP_EAT_DECODE_LEGACY_HWVERSION = 1 << 0, /* accept hwversion [bstr, ? int] (libteep) */
};

/*
 * Decode a claims set (a CBOR map; no tag). Returns 0 with *ret to free with teep_eat_free()
 * (views point into in); -EBADMSG (TEEP_REASON_EAT_CLAIM for a known claim of the wrong type or
 * size, a CBOR reason otherwise); -E2BIG (more than TEEP_EAT_MAX_CLAIMS claims or
 * TEEP_EAT_MAX_MANIFESTS manifests); -EOPNOTSUPP (cnf with an encrypted key or an unknown
 * confirmation method); -ENOMEM. ret is untouched on failure.
 */
int teep_eat_decode(TeepBuf in, TeepEat **ret, TeepError *err);

/* The same with TEEP_EAT_DECODE_* flags. */
int teep_eat_decode_flags(TeepBuf in, unsigned flags, TeepEat **ret, TeepError *err);

/* Free a decoded claims set. Accepts NULL; returns NULL. */
TeepEat *teep_eat_free(TeepEat *eat);
static inline void teep_eat_freep(TeepEat **eat) {
        if (*eat)
                *eat = teep_eat_free(*eat);
}

/*
 * The TEEP profile's required claims: ueid, oemid, hwmodel, hwversion, manifests, cnf.
 * Returns 0 or -EBADMSG with TEEP_REASON_EAT_MISSING naming the first one absent. Freshness
 * (eat_nonce against the challenge or token) is the caller's comparison.
 */
int teep_eat_validate_teep_profile(const TeepEat *eat, TeepError *err);

/*
 * Encode a claims set deterministically: definite lengths, preferred encodings, ascending
 * keys (1, 4, 6, 8, 10, 256, 258, 259, 260, 265, 270, 271, 272). Every present claim must
 * satisfy the rules the decoder applies (sizes, UTF-8 text, a cnf COSE_Key that is one CBOR
 * map, an embedded manifest body that is one CBOR item); n_unknown is ignored.
 * Returns 0 with a buffer to free(), -EINVAL, -ENOMEM.
 */
int teep_eat_encode(const TeepEat *eat, uint8_t **ret, size_t *ret_len);
