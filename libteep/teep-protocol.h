/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-protocol.h: every number the drafts assign, in one place */
#pragma once

/*
 * draft-ietf-teep-protocol-26 (editor's copy a9d2fad), RFC 9052/9053/9864, draft-ietf-suit-manifest-37.
 * A renumbering in the final RFC is a one-line change here. See docs/protocol-decisions.md for
 * the open questions (Success/Error type numbers in particular: the draft says 5/6, IANA's
 * first registry page says 4/5; we follow the draft and every implementation).
 */

#define TEEP_MEDIA_TYPE "application/teep+cbor"

typedef enum TeepMessageType {
        TEEP_TYPE_QUERY_REQUEST = 1,
        TEEP_TYPE_QUERY_RESPONSE = 2,
        TEEP_TYPE_UPDATE = 3,
        TEEP_TYPE_SUCCESS = 5,
        TEEP_TYPE_ERROR = 6,
} TeepMessageType;

/* Option labels: one label space shared by all messages. */
enum {
        TEEP_LABEL_SUPPORTED_TEEP_CIPHER_SUITES = 1,
        TEEP_LABEL_CHALLENGE = 2,
        TEEP_LABEL_VERSIONS = 3,
        TEEP_LABEL_SUPPORTED_SUIT_COSE_PROFILES = 4,
        TEEP_LABEL_SELECTED_VERSION = 6,
        TEEP_LABEL_ATTESTATION_PAYLOAD = 7,
        TEEP_LABEL_TC_LIST = 8,
        TEEP_LABEL_EXT_LIST = 9,
        TEEP_LABEL_MANIFEST_LIST = 10,
        TEEP_LABEL_MSG = 11,
        TEEP_LABEL_ERR_MSG = 12,
        TEEP_LABEL_ATTESTATION_PAYLOAD_FORMAT = 13,
        TEEP_LABEL_REQUESTED_TC_LIST = 14,
        TEEP_LABEL_UNNEEDED_MANIFEST_LIST = 15,
        TEEP_LABEL_COMPONENT_ID = 16,
        TEEP_LABEL_TC_MANIFEST_SEQUENCE_NUMBER = 17,
        TEEP_LABEL_HAVE_BINARY = 18,
        TEEP_LABEL_SUIT_REPORTS = 19,
        TEEP_LABEL_TOKEN = 20,
        TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS = 21,
        TEEP_LABEL_ERR_LANG = 22,
        TEEP_LABEL_ERR_CODE = 23,
};

/*
 * SUIT parameter labels used by TEEP: the keys of system-property-claims (the tc-list entries).
 * 0 is the component id, every other key is a SUIT parameter label (draft-ietf-suit-manifest).
 */
enum {
        TEEP_CLAIM_COMPONENT_ID = 0,
        TEEP_CLAIM_IMAGE_DIGEST = 3, /* suit-parameter-image-digest: bstr .cbor SUIT_Digest */
};

/* data-item-requested bits */
enum {
        TEEP_DATA_ATTESTATION = 1,
        TEEP_DATA_TRUSTED_COMPONENTS = 2,
        TEEP_DATA_EXTENSIONS = 4,
        TEEP_DATA_SUIT_REPORTS = 8,
};

/* err-code values */
enum {
        TEEP_ERR_PERMANENT_ERROR = 1,
        TEEP_ERR_UNSUPPORTED_EXTENSION = 2,
        TEEP_ERR_UNSUPPORTED_FRESHNESS_MECHANISMS = 3,
        TEEP_ERR_UNSUPPORTED_MSG_VERSION = 4,
        TEEP_ERR_UNSUPPORTED_CIPHER_SUITES = 5,
        TEEP_ERR_BAD_CERTIFICATE = 6,
        TEEP_ERR_ATTESTATION_REQUIRED = 7,
        TEEP_ERR_UNSUPPORTED_SUIT_REPORT = 8,
        TEEP_ERR_CERTIFICATE_EXPIRED = 9,
        TEEP_ERR_TEMPORARY_ERROR = 10,
        TEEP_ERR_MANIFEST_PROCESSING_FAILED = 17,
};

enum {
        TEEP_FRESHNESS_NONCE = 0,
        TEEP_FRESHNESS_TIMESTAMP = 1,
};

/* Field size rules (bytes). */
enum {
        TEEP_TOKEN_MIN = 8,
        TEEP_TOKEN_MAX = 64,
        TEEP_CHALLENGE_MIN = 8,
        TEEP_CHALLENGE_MAX = 512,
        TEEP_MSG_MIN = 1,
        TEEP_MSG_MAX = 128,
        TEEP_ERR_LANG_MIN = 1,
        TEEP_ERR_LANG_MAX = 35,
};

/* CBOR tags */
enum {
        COSE_TAG_ENCRYPT0 = 16,
        COSE_TAG_MAC0 = 17,
        COSE_TAG_SIGN1 = 18,
        COSE_TAG_ENCRYPT = 96,
        COSE_TAG_SIGN = 98,
        SUIT_ENVELOPE_TAG = 107,
};

/* COSE header labels */
enum {
        COSE_HDR_ALG = 1,
        COSE_HDR_CRIT = 2,
        COSE_HDR_CTY = 3,
        COSE_HDR_KID = 4,
        COSE_HDR_IV = 5,
        COSE_HDR_X5CHAIN = 33,
};

/* COSE algorithms. ESP256/Ed25519 are the RFC 9864 names; ES256/EdDSA their legacy aliases. */
enum {
        COSE_ALG_ESP256 = -9,
        COSE_ALG_ED25519 = -19,
        COSE_ALG_ES256 = -7,
        COSE_ALG_EDDSA = -8,
        COSE_ALG_SHA256 = -16,
        COSE_ALG_ECDH_ES_A128KW = -29,
        COSE_ALG_A128KW = -3,
        COSE_ALG_A128CTR = -65534,
        COSE_ALG_A128GCM = 1,
        COSE_ALG_CHACHA20_POLY1305 = 24,
};

/* COSE_Key labels and values (RFC 9052 §7, RFC 9053) */
enum {
        COSE_KEY_KTY = 1,
        COSE_KEY_KID = 2,
        COSE_KEY_ALG = 3,
        COSE_KEY_CRV = -1,
        COSE_KEY_X = -2,
        COSE_KEY_Y = -3,
        COSE_KEY_D = -4,
        COSE_KTY_OKP = 1,
        COSE_KTY_EC2 = 2,
        COSE_CRV_P256 = 1,
        COSE_CRV_ED25519 = 6,
};
