/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-inspect.c: the real teepctl binary on every vector: types, fields, verdicts, exit codes */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "vectors.h"

typedef struct Run {
        int status;
        char *out;
        char *err;
} Run;

static void run_free(Run *r) {
        free(r->out);
        free(r->err);
}

static char *slurp(const char *path) {
        uint8_t *d = NULL;
        size_t n;
        cr_assert_eq(read_full_file(path, 16u << 20, &d, &n), 0);
        return (char *)d;
}

/* Run `teepctl inspect ARGS` (ARGS is shell text; vector paths via %V). */
static Run inspect(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static Run inspect(const char *fmt, ...) {
        char args[2048], cmd[4096], outp[] = "/tmp/teepctl-out-XXXXXX", errp[] = "/tmp/teepctl-err-XXXXXX";
        const char *teepctl = getenv("TEEPCTL");
        va_list ap;
        Run r = {};
        int fo, fe, st;

        cr_assert_not_null(teepctl, "TEEPCTL is not set (meson sets it)");
        va_start(ap, fmt);
        vsnprintf(args, sizeof(args), fmt, ap);
        va_end(ap);
        fo = mkstemp(outp);
        fe = mkstemp(errp);
        cr_assert(fo >= 0 && fe >= 0);
        close(fo);
        close(fe);
        snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' inspect %s >'%s' 2>'%s'", vectors_dir(), teepctl, args, outp, errp);
        st = system(cmd);
        cr_assert(WIFEXITED(st), "teepctl did not exit normally: %s", cmd);
        r.status = WEXITSTATUS(st);
        r.out = slurp(outp);
        r.err = slurp(errp);
        unlink(outp);
        unlink(errp);
        return r;
}

#define TAM_P256 "--key libteep/keys/tam_prime256v1_pub.pem"
#define TAM_ED25519 "--key derived/keys/tam_ed25519_public_from_private.cose.hex"
#define AGENT_P256 "--key libteep/keys/teep_agent_es256_public.cose.hex"
#define SUIT_SIGNER "--key draft-teep-protocol/keys/suit_signer_p256_public.pem"

Test(inspect, json_names_message_type_and_fields) {
        static const struct {
                const char *file, *kind, *type, *field;
        } cases[] = {
                { "draft-teep-protocol/query_request.hex", "teep-message", "query-request", "\"data-item-requested\": 3" },
                { "draft-teep-protocol/query_response.hex", "teep-message", "query-response", "\"selected-version\": 0" },
                { "draft-teep-protocol/update.hex", "teep-message", "update", "\"manifest-list\"" },
                { "draft-teep-protocol/success.hex", "teep-message", "success", "\"token\": \"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\"" },
                { "draft-teep-protocol/error.hex", "teep-message", "error", "\"err-msg\": \"disk-full\"" },
                { "libteep/query_response_cose.hex", "cose-sign1", "query-response", "\"tc-list\"" },
                { "derived/query_request_sign_esp256_ed25519.hex", "cose-sign", "query-request", "\"signatures\"" },
                { "derived/update_unlink_sign1_esp256.hex", "cose-sign1", "update",
                  "\"unneeded-manifest-list\": [\n" },
                { "draft-teep-protocol/suit_uri.hex", "suit-envelope", NULL, "\"manifest-sequence-number\": 3" },
                { "draft-teep-protocol/suit_integrated.hex", "suit-envelope", NULL, "\"#tc\": \"48656c6c6f2c2053656375726520576f726c6421\"" },
                { "suit-manifest-spec/example0.hex", "suit-envelope", NULL, "\"manifest-sequence-number\": 0" },
                { "libteep/evidence_cose.hex", "eat", NULL, "\"eat_nonce\"" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Run r = inspect("--json %s", cases[i].file);
                char want[128];
                cr_expect_eq(r.status, 0, "%s: exit %d: %s", cases[i].file, r.status, r.err);
                snprintf(want, sizeof(want), "\"kind\": \"%s\"", cases[i].kind);
                cr_expect(strstr(r.out, want), "%s: missing %s", cases[i].file, want);
                if (cases[i].type) {
                        snprintf(want, sizeof(want), "\"message-type\": \"%s\"", cases[i].type);
                        cr_expect(strstr(r.out, want), "%s: missing %s", cases[i].file, want);
                }
                cr_expect(strstr(r.out, cases[i].field), "%s: missing %s in\n%s", cases[i].file, cases[i].field, r.out);
                run_free(&r);
        }
}

Test(inspect, component_ids_print_in_their_textual_form) {
        Run r = inspect("--json derived/update_unlink.hex");
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "\"TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/suit\""), "%s", r.out);
        run_free(&r);
}

Test(inspect, signed_vectors_verify_and_name_the_key) {
        static const struct {
                const char *file, *keys;
                int checks;
        } cases[] = {
                { "derived/query_request_sign1_esp256.hex", TAM_P256, 1 },
                { "derived/query_request_sign1_ed25519.hex", TAM_ED25519, 1 },
                { "derived/query_request_sign_esp256_ed25519.hex", TAM_P256 " " TAM_ED25519, 2 },
                { "libteep/query_response_cose.hex", AGENT_P256, 1 },
                { "libteep/update_cose.hex", TAM_P256 " " SUIT_SIGNER, 2 },
                { "derived/update_install_suit_uri_sign1_esp256.hex", TAM_P256 " " SUIT_SIGNER, 2 },
                { "draft-teep-protocol/suit_personalization.hex", SUIT_SIGNER, 1 },
                { "suit-manifest-spec/example1.hex", SUIT_SIGNER, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Run r = inspect("--json %s %s", cases[i].keys, cases[i].file);
                int n = 0;
                cr_expect_eq(r.status, 0, "%s: exit %d: %s", cases[i].file, r.status, r.err);
                for (const char *p = r.out; (p = strstr(p, "\"verified\": true")); p++)
                        n++;
                cr_expect_eq(n, cases[i].checks, "%s: %d verified signatures, want %d\n%s", cases[i].file, n,
                             cases[i].checks, r.out);
                cr_expect_null(strstr(r.out, "\"verified\": false"), "%s", cases[i].file);
                run_free(&r);
        }
        /* the text form says which key verified */
        {
                Run r = inspect("%s %s derived/query_request_sign_esp256_ed25519.hex", TAM_P256, TAM_ED25519);
                cr_assert_eq(r.status, 0);
                cr_assert(strstr(r.out, "COSE_Sign signer 1") && strstr(r.out, "verified by key 1"), "%s", r.out);
                cr_assert(strstr(r.out, "COSE_Sign signer 2") && strstr(r.out, "verified by key 2"), "%s", r.out);
                run_free(&r);
        }
        /* and the JSON form names the key file that verified each signer */
        {
                Run r = inspect("--json %s %s derived/query_request_sign_esp256_ed25519.hex", TAM_P256, TAM_ED25519);
                cr_assert_eq(r.status, 0);
                cr_assert(strstr(r.out, "\"key\": \"libteep/keys/tam_prime256v1_pub.pem\""), "%s", r.out);
                cr_assert(strstr(r.out, "\"key\": \"derived/keys/tam_ed25519_public_from_private.cose.hex\""), "%s", r.out);
                run_free(&r);
        }
}

Test(inspect, wrong_key_is_refused_with_exit_77) {
        Run r = inspect("%s derived/query_request_sign1_esp256.hex", AGENT_P256);
        cr_assert_eq(r.status, 77, "exit %d", r.status);
        cr_assert(strstr(r.err, "did not verify"), "%s", r.err);
        run_free(&r);
        /* the SUIT signature inside an Update is checked too: TAM key alone cannot verify it */
        r = inspect("%s derived/update_install_suit_uri_sign1_esp256.hex", TAM_P256);
        cr_assert_eq(r.status, 77, "exit %d", r.status);
        cr_assert(strstr(r.err, "SUIT envelope 1"), "%s", r.err);
        run_free(&r);
}

/* Write a copy of a vector with byte `at` (negative: from the end) xor 1, return its path. */
static void tampered_copy(const char *file, long at, char *path, size_t size) {
        Vector v = vector_load(file);
        FILE *f;
        size_t i = at < 0 ? v.len - (size_t)(-at) : (size_t)at;
        int fd;

        snprintf(path, size, "/tmp/teepctl-tampered-XXXXXX");
        fd = mkstemp(path);
        cr_assert(fd >= 0);
        close(fd);
        v.data[i] ^= 1;
        f = fopen(path, "wb");
        cr_assert_not_null(f);
        fwrite(v.data, 1, v.len, f);
        fclose(f);
        vector_free(&v);
}

Test(inspect, tampered_copies_do_not_verify) {
        char path[64];
        Run r;

        /* last byte: inside the signature */
        tampered_copy("derived/query_request_sign1_esp256.hex", -1, path, sizeof(path));
        r = inspect("%s %s", TAM_P256, path);
        cr_expect_eq(r.status, 77, "signature byte: exit %d", r.status);
        run_free(&r);
        unlink(path);

        /* the token inside the signed payload (starts 6 bytes into the 64-byte payload) */
        tampered_copy("derived/query_request_sign1_esp256.hex", 50, path, sizeof(path));
        r = inspect("%s %s", TAM_P256, path);
        cr_expect_eq(r.status, 77, "payload byte: exit %d: %s", r.status, r.err);
        run_free(&r);
        unlink(path);

        /* a manifest byte of a SUIT envelope: the digest no longer matches */
        tampered_copy("draft-teep-protocol/suit_integrated.hex", 200, path, sizeof(path));
        r = inspect("%s %s", SUIT_SIGNER, path);
        cr_expect_eq(r.status, 77, "manifest byte: exit %d: %s", r.status, r.err);
        cr_expect(strstr(r.err, "suit-digest-mismatch"), "%s", r.err);
        run_free(&r);
        unlink(path);
}

Test(inspect, negative_vectors_fail_with_a_named_reason) {
        static const struct {
                const char *file, *reason;
        } cases[] = {
                { "libteep/negative/query_request_err1.hex", "teep-wrong-arity" },
                { "libteep/negative/query_request_err2.hex", "teep-field-type" },
                { "libteep/negative/query_request_err3.hex", "teep-field-size" },
                { "libteep/negative/query_request_err3_cose.hex", "teep-field-size" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Run r = inspect("%s", cases[i].file);
                cr_expect_eq(r.status, 65, "%s: exit %d", cases[i].file, r.status);
                cr_expect(strstr(r.err, cases[i].reason), "%s: %s", cases[i].file, r.err);
                cr_expect_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
                run_free(&r);
        }
}

Test(inspect, input_forms_and_usage_errors) {
        Run r;

        /* hex on stdin */
        r = inspect("- < draft-teep-protocol/success.hex");
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(strstr(r.out, "/ success /"), "%s", r.out);
        run_free(&r);

        /* nothing at all */
        r = inspect("- < /dev/null");
        cr_expect_eq(r.status, 65, "empty input: exit %d", r.status);
        run_free(&r);

        /* truncated CBOR: refused with the named CBOR reason */
        {
                Vector v = vector_load("draft-teep-protocol/query_request.hex");
                char path[] = "/tmp/teepctl-trunc-XXXXXX";
                int fd = mkstemp(path);
                cr_assert(fd >= 0);
                cr_assert_eq(write(fd, v.data, 20), 20);
                close(fd);
                r = inspect("%s", path);
                cr_expect_eq(r.status, 65, "exit %d", r.status);
                cr_expect(strstr(r.err, "cbor-truncated"), "%s", r.err);
                run_free(&r);
                unlink(path);
                vector_free(&v);
        }

        r = inspect("no-such-file.hex");
        cr_expect_eq(r.status, 66);
        run_free(&r);

        r = inspect("%s", "");
        cr_expect_eq(r.status, 64);
        run_free(&r);

        r = inspect("--key no-such-key.pem draft-teep-protocol/success.hex");
        cr_expect_eq(r.status, 66);
        run_free(&r);
}
