/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-errors.c: reason names, error recording and the errno mapping table */

#include <stdio.h>
#include <string.h>

#include "teep-errors.h"
#include "teep-protocol.h"

static const char *const reason_names[_TEEP_REASON_MAX] = {
        [TEEP_REASON_NONE] = "none",
        [TEEP_REASON_CBOR_MALFORMED] = "cbor-malformed",
        [TEEP_REASON_CBOR_TRUNCATED] = "cbor-truncated",
        [TEEP_REASON_CBOR_TRAILING] = "cbor-trailing-bytes",
        [TEEP_REASON_CBOR_INDEFINITE] = "cbor-indefinite-length",
        [TEEP_REASON_CBOR_DEPTH] = "cbor-too-deep",
        [TEEP_REASON_CBOR_ITEMS] = "cbor-too-many-items",
        [TEEP_REASON_CBOR_LENGTH] = "cbor-string-too-long",
        [TEEP_REASON_CBOR_TYPE] = "cbor-wrong-type",
        [TEEP_REASON_CBOR_VALUE] = "cbor-bad-value",
        [TEEP_REASON_CBOR_DUPLICATE_KEY] = "cbor-duplicate-key",
        [TEEP_REASON_COSE_STRUCTURE] = "cose-structure",
        [TEEP_REASON_COSE_TAG] = "cose-tag",
        [TEEP_REASON_COSE_HEADER] = "cose-header",
        [TEEP_REASON_COSE_CRIT] = "cose-unknown-critical-header",
        [TEEP_REASON_COSE_ALG_MISSING] = "cose-alg-missing",
        [TEEP_REASON_COSE_ALG_UNSUPPORTED] = "cose-alg-unsupported",
        [TEEP_REASON_COSE_KEY_ALG_MISMATCH] = "cose-key-alg-mismatch",
        [TEEP_REASON_COSE_SIGNATURE] = "cose-bad-signature",
        [TEEP_REASON_COSE_SIGNATURE_SIZE] = "cose-signature-size",
        [TEEP_REASON_COSE_NO_KEY] = "cose-no-key",
        [TEEP_REASON_COSE_DETACHED] = "cose-detached-payload",
        [TEEP_REASON_COSE_KEY] = "cose-bad-key",
        [TEEP_REASON_MSG_NOT_ARRAY] = "teep-not-an-array",
        [TEEP_REASON_MSG_TYPE_UNKNOWN] = "teep-unknown-type",
        [TEEP_REASON_MSG_ARITY] = "teep-wrong-arity",
        [TEEP_REASON_MSG_OPTIONS] = "teep-bad-options",
        [TEEP_REASON_MSG_FIELD_TYPE] = "teep-field-type",
        [TEEP_REASON_MSG_FIELD_SIZE] = "teep-field-size",
        [TEEP_REASON_MSG_FIELD_MISSING] = "teep-field-missing",
        [TEEP_REASON_MSG_FIELD_EMPTY] = "teep-field-empty",
        [TEEP_REASON_MSG_FIELD_VALUE] = "teep-field-value",
        [TEEP_REASON_SUIT_ENVELOPE] = "suit-envelope",
        [TEEP_REASON_SUIT_AUTH] = "suit-authentication",
        [TEEP_REASON_SUIT_DIGEST] = "suit-digest-mismatch",
        [TEEP_REASON_SUIT_DIGEST_ALG] = "suit-digest-alg",
        [TEEP_REASON_SUIT_MANIFEST] = "suit-manifest",
        [TEEP_REASON_SUIT_VERSION] = "suit-manifest-version",
        [TEEP_REASON_SUIT_COMMON] = "suit-common",
        [TEEP_REASON_SUIT_COMPONENT] = "suit-component",
        [TEEP_REASON_SUIT_SEQUENCE] = "suit-sequence",
        [TEEP_REASON_SUIT_COMMAND] = "suit-unknown-command",
        [TEEP_REASON_SUIT_PARAMETER] = "suit-parameter",
        [TEEP_REASON_SUIT_SEVERED] = "suit-severed-member",
        [TEEP_REASON_EAT_CLAIM] = "eat-bad-claim",
        [TEEP_REASON_EAT_MISSING] = "eat-missing-claim",
        [TEEP_REASON_ENC_STRUCTURE] = "enc-structure",
        [TEEP_REASON_ENC_ALG] = "enc-alg-unsupported",
        [TEEP_REASON_ENC_RECIPIENT] = "enc-wrong-recipient",
        [TEEP_REASON_ENC_TAG] = "enc-bad-tag",
        [TEEP_REASON_ENC_LENGTH] = "enc-length",
};

const char *teep_reason_to_string(TeepReason reason) {
        if ((unsigned)reason < _TEEP_REASON_MAX && reason_names[reason])
                return reason_names[reason];
        return "unknown";
}

int teep_error_set(TeepError *err, int error, TeepReason reason, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return error;
        err->error = error;
        err->reason = reason;
        va_start(ap, fmt);
        (void)vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
        va_end(ap);
        return error;
}

int teep_error_prefix(TeepError *err, int error, const char *fmt, ...) {
        char joined[sizeof(err->detail)];
        va_list ap;
        int n;

        if (!err)
                return error;
        va_start(ap, fmt);
        n = vsnprintf(joined, sizeof(joined), fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n + 2 < sizeof(joined)) {
                size_t off = (size_t)n;
                memcpy(joined + off, ": ", 2);
                off += 2;
                size_t rest = strnlen(err->detail, sizeof(err->detail));
                if (rest > sizeof(joined) - 1 - off)
                        rest = sizeof(joined) - 1 - off;
                memcpy(joined + off, err->detail, rest);
                joined[off + rest] = 0;
                memcpy(err->detail, joined, sizeof(joined));
        }
        return error;
}

/*
 * The one place where an errno becomes a TEEP err-code, a D-Bus error name and a teepctl exit
 * code. teepctl's exit codes follow sysexits-like spacing documented in teepctl(1).
 */
static const TeepErrnoMapping errno_table[] = {
        { EBADMSG,      TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.MalformedMessage", 65 },
        { E2BIG,        TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.LimitExceeded",    65 },
        { EPROTO,       TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.ProtocolError",    76 },
        { EKEYREJECTED, TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.TrustFailure",     77 },
        { ENOKEY,       TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.TrustFailure",     77 },
        { EOPNOTSUPP,   TEEP_ERR_UNSUPPORTED_CIPHER_SUITES,  "org.teepkit.Error.Unsupported",      69 },
        { ESTALE,       TEEP_ERR_PERMANENT_ERROR,            "org.teepkit.Error.ManifestRejected", 78 },
        { ENOMEM,       TEEP_ERR_TEMPORARY_ERROR,            "org.teepkit.Error.Temporary",        75 },
        { EINVAL,       TEEP_ERR_PERMANENT_ERROR,            "org.freedesktop.DBus.Error.InvalidArgs", 64 },
};

static const TeepErrnoMapping errno_fallback = {
        0, TEEP_ERR_TEMPORARY_ERROR, "org.teepkit.Error.Failed", 1,
};

const TeepErrnoMapping *teep_errno_mapping(int error) {
        if (error < 0)
                error = -error;
        for (size_t i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++)
                if (errno_table[i].error == error)
                        return &errno_table[i];
        return &errno_fallback;
}
