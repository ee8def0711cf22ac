/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* matrix-cases.c: the malicious-TAM matrix: each hostile behaviour, the named error, the TEEP Error */
#include <string.h>

#include "matrix.h"

#define F(...) { "--fault", __VA_ARGS__, NULL }
#define LONG_SEGMENT                                                                                                   \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/*
 * Every row runs on the same stack, with teep-tam restarted for it. The store and the agent's
 * state directory are compared file by file (name, mode, SHA-256) before and after: every
 * row must leave both byte-identical. `error` is the job's org.teepkit.Error.* name as teepctl
 * reports it; `teep_err` the err-code of the signed TEEP Error the TAM received, if any.
 */
const MatrixCase matrix_cases[] = {
        /* ---- who signed the TAM's messages ---- */
        { "qr-bad-signature", "QueryRequest with one bit of the signature flipped", F("wrong-signature@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1,
          .unauthenticated = true },
        { "qr-missing-signature", "QueryRequest whose COSE_Sign1 signature is empty",
          F("missing-signature@query-request"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH,
          .error = "TrustFailure", .teep_err = 1, .unauthenticated = true },
        { "qr-unknown-key", "QueryRequest signed by a key no trust anchor holds", F("untrusted-key@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1,
          .unauthenticated = true },
        { "qr-wrong-role-key", "QueryRequest signed by the TC signer's key (a trusted key, not a TAM's)",
          { "--fault", "wrong-role-key@query-request", "--fault-key", "@SIGNER", NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1, .unauthenticated = true },
        { "qr-unknown-critical-header", "QueryRequest with a critical COSE header nobody understands",
          F("unknown-critical-header@query-request"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH,
          .error = "Unsupported", .teep_err = 5, .unauthenticated = true },
        { "qr-unknown-alg", "QueryRequest signed under an unknown algorithm id", F("unknown-alg@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "Unsupported", .teep_err = 5 },
        { "up-bad-signature", "Update with one bit of the signature flipped", F("wrong-signature@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1,
          .unauthenticated = true },
        { "up-missing-signature", "Update whose COSE_Sign1 signature is empty", F("missing-signature@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1,
          .unauthenticated = true },
        { "up-unknown-key", "Update signed by a key no trust anchor holds", F("untrusted-key@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1,
          .unauthenticated = true },
        { "up-wrong-role-key", "Update signed by the TC signer's key",
          { "--fault", "wrong-role-key@update", "--fault-key", "@SIGNER", NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 1, .unauthenticated = true },
        { "up-unknown-critical-header", "Update with a critical COSE header nobody understands",
          F("unknown-critical-header@update"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH,
          .error = "Unsupported", .teep_err = 5, .unauthenticated = true },
        { "up-unknown-alg", "Update signed under an unknown algorithm id", F("unknown-alg@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "Unsupported", .teep_err = 5 },

        /* ---- freshness: token, challenge, replay ---- */
        { "up-wrong-token", "Update carrying a token the device never sent", F("wrong-token"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "ManifestRejected", .teep_err = 1 },
        { "up-missing-token", "Update without a token", F("missing-token"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "ManifestRejected", .teep_err = 1 },
        { "up-replayed", "the device's previous Update (demo TC seq 2), byte for byte, in a new session",
          F("replay-update"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "ManifestRejected",
          .teep_err = 1 },
        { "qr-challenge-too-long", "attestation asked for with a 65-byte challenge (EAT nonce is at most 64)",
          F("bad-challenge:65"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "ProtocolError",
          .teep_err = 1 },
        { "qr-unsupported-suite", "QueryRequest offering only PS256 (a downgrade to a suite the device lacks)",
          F("unsupported-suite"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "Unsupported",
          .teep_err = 5 },

        /* ---- what the manifests say ---- */
        { "rollback", "Update offering demo TC seq 1 to a device that has seq 2", F("rollback"),
          .action = MATRIX_POLICY_CHECK, .error = "ManifestRejected", .teep_err = 17 },
        { "equal-seq-other-payload", "demo TC seq 2 again, but with another payload (signed by the signer)",
          F("rollback"), .catalog = MATRIX_CATALOG_EQUAL_SEQ, .action = MATRIX_POLICY_CHECK,
          .error = "ManifestRejected", .teep_err = 17 },
        { "digest-mismatch", "integrated payload altered after signing", F("digest-mismatch@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TrustFailure", .teep_err = 17 },
        { "payload-digest-mismatch", "URI payload served altered", F("digest-mismatch@payload"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH_URI, .error = "TrustFailure", .teep_err = 17 },
        { "size-mismatch", "signed image-size one byte more than the payload", { NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_SIZE_MISMATCH, .error = "TrustFailure", .teep_err = 17 },
        { "unknown-suit-command", "install sequence with an unknown SUIT command (99), sent unparsed",
          { "--extra-manifest", "@CRAFTED", NULL },
          .action = MATRIX_REQUEST, .component = MATRIX_UNKNOWN_COMMAND, .error = "Unsupported", .teep_err = 17 },
        { "manifest-signed-by-tam", "manifest signed by the TAM's key, not a TC signer's", { NULL },
          .action = MATRIX_REQUEST, .component = MATRIX_SIGNED_BY_TAM, .error = "TrustFailure", .teep_err = 17 },
        { "manifest-unknown-signer", "manifest signed by a key nobody trusts", { NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_ROGUE_SIGNER, .error = "TrustFailure", .teep_err = 17 },
        { "manifest-bad-signature", "manifest signature with one bit flipped", { NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_BAD_MANIFEST_SIG, .error = "TrustFailure", .teep_err = 17 },
        { "manifest-wrong-vendor", "manifest for another vendor id", { NULL }, .action = MATRIX_REQUEST,
          .component = MATRIX_WRONG_VENDOR, .error = "ManifestRejected", .teep_err = 17 },

        /* ---- component names that try to leave the store: identifiers are data, never paths ---- */
        { "name-dotdot", "component [\"..\"]", { NULL }, .action = MATRIX_REQUEST, .component = "0x2e2e",
          .stored_as = "0x2e2e", .error = "", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-dot", "component [\"a\", \".\", \"b\"]", { NULL }, .action = MATRIX_REQUEST, .component = "a/0x2e/b",
          .stored_as = "a+0x2e+b", .error = "", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-dotdot-path", "component [\"..\", \"..\", \"etc\"]", { NULL }, .action = MATRIX_REQUEST,
          .component = "0x2e2e/0x2e2e/etc", .stored_as = "0x2e2e+0x2e2e+etc", .error = "",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-slash", "component [\"/etc/passwd\"]", { NULL }, .action = MATRIX_REQUEST,
          .component = "0x2f6574632f706173737764", .stored_as = "0x2f6574632f706173737764", .error = "",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-nul", "component [\"ta\\0x\"]", { NULL }, .action = MATRIX_REQUEST, .component = "0x74610078",
          .stored_as = "0x74610078", .error = "", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-long-segment", "component with one 255-byte segment", { NULL }, .action = MATRIX_REQUEST,
          .component = LONG_SEGMENT, .stored_as = LONG_SEGMENT, .error = "", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "name-too-long-for-a-file", "component of two 255-byte segments (no file name can hold it)", { NULL },
          .action = MATRIX_REQUEST, .component = LONG_SEGMENT "/" LONG_SEGMENT, .error = "InvalidComponent",
          .teep_err = 17 },

        /* ---- bodies ---- */
        { "qr-truncated-cbor", "first half of the QueryRequest, Content-Length matching", F("truncated-cbor@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "MalformedMessage", .teep_err = 1,
          .unauthenticated = true },
        { "up-truncated-cbor", "first half of the Update", F("truncated-cbor@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "MalformedMessage", .teep_err = 1, .unauthenticated = true },
        { "qr-nested-cbor", "10,000 nested arrays instead of the QueryRequest", F("nested-cbor@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "LimitExceeded", .teep_err = 1,
          .unauthenticated = true },
        { "up-nested-cbor", "100,000 nested arrays instead of the Update", F("nested-cbor:100000@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "LimitExceeded", .teep_err = 1,
          .unauthenticated = true },
        { "qr-oversized", "a 2 MiB + 1 body (the broker's limit is 1 MiB)", F("oversized-body@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-oversized", "a 2 MiB + 1 body instead of the Update", F("oversized-body@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "payload-oversized", "a 2 MiB + 1 payload for a 58-byte image", F("oversized-body@payload"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH_URI, .error = "LimitExceeded", .teep_err = 17 },
        { "qr-truncated-body", "Content-Length announced, half sent, connection closed",
          F("truncated-body@query-request"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH,
          .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-truncated-body", "the Update cut off mid-body", F("truncated-body@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "payload-truncated-body", "the URI payload cut off mid-body", F("truncated-body@payload"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH_URI, .error = "TamUnreachable", .teep_err = 17 },

        /* ---- HTTP ---- */
        { "qr-wrong-media-type", "QueryRequest labelled text/html", F("wrong-content-type@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-wrong-media-type", "Update labelled text/html", F("wrong-content-type@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "qr-http-301", "301 to http://127.0.0.1:9/elsewhere (not followed)", F("http-status:301@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-http-302", "302 instead of the Update (not followed)", F("http-status:302@update"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "payload-http-307", "307 for the URI payload (not followed)", F("http-status:307@payload"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH_URI, .error = "TamUnreachable", .teep_err = 17 },
        { "qr-http-400", "400 Bad Request to the first POST", F("http-status:400@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "qr-http-404", "404 Not Found", F("http-status:404@query-request"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "qr-http-500", "500 Internal Server Error", F("http-500@query-request"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-http-404", "404 instead of the Update", F("http-status:404@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-http-503", "503 instead of the Update", F("http-status:503@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "payload-http-404", "404 for the URI payload", F("http-status:404@payload"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH_URI, .error = "TamUnreachable", .teep_err = 17 },
        { "qr-http-200-empty", "200 with an empty body to the first POST", F("http-status:200@query-request"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "NotAvailable",
          .teep_err = MATRIX_NO_TEEP_ERROR },

        /* ---- time ---- */
        { "qr-slow-loris", "QueryRequest trickled one byte a second (broker TimeoutSec=3s)",
          F("slow-loris:1000@query-request"), .action = MATRIX_REQUEST, .component = MATRIX_FRESH,
          .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-slow-loris", "Update trickled one byte a second", F("slow-loris:1000@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "qr-stalled", "no answer at all to the first POST", F("slow:60@query-request"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "up-stalled", "no answer to the QueryResponse", F("slow:60@update"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH, .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
        { "payload-stalled", "no answer to the payload GET", F("slow:60@payload"), .action = MATRIX_REQUEST,
          .component = MATRIX_FRESH_URI, .error = "TamUnreachable", .teep_err = 17 },
        { "query-loop", "every QueryResponse answered with another QueryRequest", F("query-loop"),
          .action = MATRIX_REQUEST, .component = MATRIX_FRESH, .error = "TamUnreachable",
          .teep_err = MATRIX_NO_TEEP_ERROR },
        { "policy-query-loop", "the same loop during a policy check", F("query-loop"), .action = MATRIX_POLICY_CHECK,
          .error = "TamUnreachable", .teep_err = MATRIX_NO_TEEP_ERROR },
};

const size_t matrix_n_cases = sizeof(matrix_cases) / sizeof(matrix_cases[0]);

static void print_args(FILE *f, const MatrixCase *c) {
        bool any = false;

        for (size_t i = 0; c->tam_args[i]; i++) {
                if (strcmp(c->tam_args[i], "--fault") == 0)
                        continue;
                if (strcmp(c->tam_args[i], "--extra-manifest") == 0) {
                        fprintf(f, "%s`--extra-manifest` crafted TC", any ? " " : "");
                        any = true;
                        i++;
                        continue;
                }
                if (strcmp(c->tam_args[i], "--fault-key") == 0) {
                        fputs(" (`--fault-key` signer)", f);
                        i++;
                        continue;
                }
                fprintf(f, "%s`%s`", any ? " " : "", c->tam_args[i]);
                any = true;
        }
        if (!any)
                fputs(c->catalog == MATRIX_CATALOG_EQUAL_SEQ ? "catalog" : "crafted TC", f);
}

void matrix_print_table(FILE *f) {
        fputs("| # | case | hostile TAM | teep-tam | device asked | job error | TEEP Error to the TAM |\n", f);
        fputs("|---|---|---|---|---|---|---|\n", f);
        for (size_t i = 0; i < matrix_n_cases; i++) {
                const MatrixCase *c = &matrix_cases[i];

                fprintf(f, "| %zu | %s | %s | ", i + 1, c->name, c->what);
                print_args(f, c);
                if (c->action == MATRIX_POLICY_CHECK)
                        fputs(" | policy-check | ", f);
                else if (strlen(c->component) > 40)
                        fprintf(f, " | request `%.12s…` | ", c->component);
                else
                        fprintf(f, " | request `%s` | ", c->component);
                if (c->stored_as && strlen(c->stored_as) > 40)
                        fprintf(f, "none: stored as `%.12s…` | ", c->stored_as);
                else if (c->stored_as)
                        fprintf(f, "none: stored as `%s` | ", c->stored_as);
                else
                        fprintf(f, "%s | ", c->error);
                if (c->teep_err == MATRIX_NO_TEEP_ERROR)
                        fputs("none |\n", f);
                else
                        fprintf(f, "err-code %d%s |\n", c->teep_err, c->unauthenticated ? " (rate-limited)" : "");
        }
}
