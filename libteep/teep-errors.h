/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-errors.h: the errno vocabulary and the named reasons every libteep decoder reports */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

/*
 * Every fallible libteep function returns >= 0 on success and a negative errno on failure.
 * The protocol vocabulary (see docs/errors.md and teep_errno_table[] below):
 *
 *   -EBADMSG       malformed CBOR or a message that breaks its CDDL (type, size, missing field)
 *   -E2BIG         a hard limit (nesting depth, item count, length) was exceeded
 *   -EKEYREJECTED  a signature did not verify, or a digest did not match
 *   -ENOKEY        no key was available (or matched) for a signature
 *   -EOPNOTSUPP    unsupported algorithm, cipher suite, version or critical header
 *   -EPROTO        a well-formed message that is not acceptable here (wrong type, unknown label)
 *   -ESTALE        replayed token or rolled-back sequence number
 *   -EINVAL        a caller (not the peer) passed something invalid
 *   -ENOMEM        out of memory
 *
 * Besides the errno, decoders name *which* rule was broken with a TeepReason, so a test,
 * a log line or `teepctl inspect` can say exactly what was wrong.
 */

typedef enum TeepReason {
        TEEP_REASON_NONE = 0,

        /* CBOR well-formedness and limits (teep-cbor.c) */
        TEEP_REASON_CBOR_MALFORMED,      /* not well-formed CBOR */
        TEEP_REASON_CBOR_TRUNCATED,      /* ran out of bytes inside an item */
        TEEP_REASON_CBOR_TRAILING,       /* bytes after the single top-level item */
        TEEP_REASON_CBOR_INDEFINITE,     /* indefinite-length item (not allowed) */
        TEEP_REASON_CBOR_DEPTH,          /* nesting deeper than the limit */
        TEEP_REASON_CBOR_ITEMS,          /* too many items in one container or in total */
        TEEP_REASON_CBOR_LENGTH,         /* string longer than the limit */
        TEEP_REASON_CBOR_TYPE,           /* an item of the wrong major type */
        TEEP_REASON_CBOR_VALUE,          /* an integer out of range, or a bad simple value */
        TEEP_REASON_CBOR_DUPLICATE_KEY,  /* the same map key twice */

        /* COSE (teep-cose.c) */
        TEEP_REASON_COSE_STRUCTURE,      /* not a COSE_Sign1 / COSE_Sign structure */
        TEEP_REASON_COSE_TAG,            /* wrong or unexpected COSE tag */
        TEEP_REASON_COSE_HEADER,         /* malformed header map */
        TEEP_REASON_COSE_CRIT,           /* a critical header we do not understand */
        TEEP_REASON_COSE_ALG_MISSING,    /* no alg header */
        TEEP_REASON_COSE_ALG_UNSUPPORTED,
        TEEP_REASON_COSE_KEY_ALG_MISMATCH, /* the key cannot verify this alg */
        TEEP_REASON_COSE_SIGNATURE,      /* signature did not verify */
        TEEP_REASON_COSE_SIGNATURE_SIZE, /* signature has the wrong length for its alg */
        TEEP_REASON_COSE_NO_KEY,         /* no key given or none matched */
        TEEP_REASON_COSE_DETACHED,       /* detached payload where one was required, or vice versa */
        TEEP_REASON_COSE_KEY,            /* malformed or unsupported COSE_Key / PEM key */

        /* TEEP messages (teep-message.c) */
        TEEP_REASON_MSG_NOT_ARRAY,
        TEEP_REASON_MSG_TYPE_UNKNOWN,    /* message type not one we know */
        TEEP_REASON_MSG_ARITY,           /* wrong number of positional elements */
        TEEP_REASON_MSG_OPTIONS,         /* options is not a map with uint keys */
        TEEP_REASON_MSG_FIELD_TYPE,      /* a field of the wrong CBOR type */
        TEEP_REASON_MSG_FIELD_SIZE,      /* a field outside its size range (token 8..64, ...) */
        TEEP_REASON_MSG_FIELD_MISSING,   /* a required field is absent */
        TEEP_REASON_MSG_FIELD_EMPTY,     /* a [+ ...] list is empty */
        TEEP_REASON_MSG_FIELD_VALUE,     /* a field value not allowed (err-code 0, bad UTF-8, ...) */

        /* SUIT (teep-suit.c) */
        TEEP_REASON_SUIT_ENVELOPE,       /* envelope structure */
        TEEP_REASON_SUIT_AUTH,           /* authentication wrapper structure */
        TEEP_REASON_SUIT_DIGEST,         /* manifest digest mismatch */
        TEEP_REASON_SUIT_DIGEST_ALG,     /* unsupported digest algorithm */
        TEEP_REASON_SUIT_MANIFEST,       /* manifest structure */
        TEEP_REASON_SUIT_VERSION,        /* manifest-version != 1 */
        TEEP_REASON_SUIT_COMMON,         /* common section structure */
        TEEP_REASON_SUIT_COMPONENT,      /* component identifier structure */
        TEEP_REASON_SUIT_SEQUENCE,       /* command sequence structure */
        TEEP_REASON_SUIT_COMMAND,        /* unknown command or condition */
        TEEP_REASON_SUIT_PARAMETER,      /* bad parameter */
        TEEP_REASON_SUIT_SEVERED,        /* severed member missing or digest mismatch */

        /* EAT (teep-eat.c) */
        TEEP_REASON_EAT_CLAIM,           /* a claim of the wrong type or size */
        TEEP_REASON_EAT_MISSING,         /* a required claim is absent */

        /* SUIT encrypted payloads (teep-encrypt.c) */
        TEEP_REASON_ENC_STRUCTURE,       /* encryption-info is not a COSE_Encrypt we accept */
        TEEP_REASON_ENC_ALG,             /* unsupported content or key-distribution algorithm */
        TEEP_REASON_ENC_RECIPIENT,       /* the CEK does not unwrap: not encrypted to this key */
        TEEP_REASON_ENC_TAG,             /* AEAD tag mismatch: ciphertext or tag tampered */
        TEEP_REASON_ENC_LENGTH,          /* ciphertext shorter or longer than announced */

        _TEEP_REASON_MAX,
} TeepReason;

/* Where a decoder explains a failure. Callers may pass NULL when they only want the errno. */
typedef struct TeepError {
        int error;              /* the negative errno that was returned */
        TeepReason reason;
        char detail[160];       /* "token: 2 bytes, want 8..64" */
} TeepError;

/* The stable short name of a reason ("cbor-truncated", "msg-field-size", ...). Never NULL. */
const char *teep_reason_to_string(TeepReason reason);

/*
 * Record a failure in err (if non-NULL) and return error, so a decoder can write
 *   return teep_error_set(err, -EBADMSG, TEEP_REASON_MSG_FIELD_SIZE, "token: %zu bytes", n);
 * It overwrites what was recorded before: the innermost layer sets the reason, outer layers
 * only add context with teep_error_prefix().
 */
int teep_error_set(TeepError *err, int error, TeepReason reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Prepend "context: " to an existing detail, keeping the recorded reason. Returns error (the
 * caller's own errno), so `return teep_error_prefix(err, k, "manifest");` keeps -E2BIG an
 * -E2BIG even when the caller passed err == NULL.
 */
int teep_error_prefix(TeepError *err, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The one table that maps a libteep errno to what each boundary reports: the TEEP error code
 * sent to the TAM, the D-Bus error name, and the teepctl exit code.
 */
typedef struct TeepErrnoMapping {
        int error;                 /* positive errno, e.g. EBADMSG */
        unsigned teep_err_code;    /* TEEP_ERR_* sent in an Error message */
        const char *dbus_name;     /* org.teepkit.Error.* */
        int exit_code;             /* teepctl exit status */
} TeepErrnoMapping;

/* Returns the mapping for error (positive or negative); unknown errnos map to a generic row. */
const TeepErrnoMapping *teep_errno_mapping(int error);
