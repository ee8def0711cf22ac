/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inspect.c: `teepctl inspect`: decode, print and verify TEEP messages, SUIT envelopes, EAT claims */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "render.h"
#include "teep-cose.h"
#include "teep-eat.h"
#include "teep-message.h"
#include "teep-suit.h"
#include "teepctl.h"

#define INSPECT_MAX_INPUT (64u << 20)
#define INSPECT_MAX_KEYS 32
#define INSPECT_MAX_CHECKS 64

typedef struct Check {
        char what[96];      /* "COSE_Sign1 signer 1", "SUIT envelope 1 in manifest-list" */
        int result;         /* 0 verified, < 0 errno */
        size_t key;         /* when verified: index of the key that did */
        char detail[200];   /* which key, or why not */
} Check;

typedef struct Inspect {
        const char *input_name;
        TeepKey *keys[INSPECT_MAX_KEYS];
        const char *key_names[INSPECT_MAX_KEYS];
        size_t n_keys;
        const char *kind;          /* what the input turned out to be */
        const char *message_type;  /* TEEP message type name, when there is one */
        Check checks[INSPECT_MAX_CHECKS];
        size_t n_checks;
} Inspect;

static void inspect_done(Inspect *in) {
        for (size_t i = 0; i < in->n_keys; i++)
                teep_key_free(in->keys[i]);
}

static Check *add_check(Inspect *in, const char *what) {
        Check *c;
        if (in->n_checks >= INSPECT_MAX_CHECKS)
                return NULL;
        c = &in->checks[in->n_checks++];
        snprintf(c->what, sizeof(c->what), "%s", what);
        return c;
}

static void record(Check *c, int r, size_t key, const TeepError *err, const Inspect *in) {
        if (!c)
                return;
        c->result = r;
        c->key = key;
        if (r >= 0)
                snprintf(c->detail, sizeof(c->detail), "verified by key %zu (%s)", key + 1, in->key_names[key]);
        else
                snprintf(c->detail, sizeof(c->detail), "%s (%s)", err->detail[0] ? err->detail : strerror(-r),
                         teep_reason_to_string(err->reason));
}

static int fail(const Inspect *in, int r, const TeepError *err, const char *what) {
        fprintf(stderr, "teepctl: %s: %s: %s (%s)\n", in->input_name, what,
                err && err->detail[0] ? err->detail : strerror(-r),
                err ? teep_reason_to_string(err->reason) : "error");
        return teep_errno_mapping(r)->exit_code;
}

/* Verify one COSE message, each signer on its own so every signature gets its own verdict. */
static void verify_cose(Inspect *in, const TeepCoseMessage *msg, const TeepBuf *detached, const char *what) {
        for (size_t s = 0; s < msg->n_signers; s++) {
                TeepCoseMessage one = *msg;
                TeepError err = {};
                char label[96];
                size_t key = 0;
                int r;

                if (msg->kind == TEEP_COSE_SIGN) {
                        one.n_signers = 1;
                        one.signers[0] = msg->signers[s];
                        snprintf(label, sizeof(label), "%s signer %zu", what, s + 1);
                } else
                        snprintf(label, sizeof(label), "%s", what);
                r = teep_cose_verify(&one, detached, in->keys, in->n_keys, &key, NULL, &err);
                record(add_check(in, label), r, key, &err, in);
        }
}

static int inspect_suit(Inspect *in, TeepBuf data, const char *what) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *manifest = NULL;
        TeepError err = {};
        unsigned flags = TEEP_SUIT_DECODE_UNAUTHENTICATED;
        int r;

        r = teep_suit_envelope_decode(data, &env, &err);
        if (r < 0)
                return fail(in, r, &err, what);
        if (in->n_keys > 0) {
                size_t key = 0;
                r = teep_suit_envelope_verify(env, in->keys, in->n_keys, &key, &err);
                record(add_check(in, what), r, key, &err, in);
                /* a manifest that fails authentication is not interpreted any further */
                if (r < 0)
                        return fail(in, r, &err, what);
                flags = 0;
        }
        /* without keys the manifest is decoded for display only, never acted on */
        err = (TeepError){};
        r = teep_suit_manifest_decode(env, flags, &manifest, &err);
        if (r < 0)
                return fail(in, r, &err, what);
        return 0;
}

static int inspect_teep_message(Inspect *in, TeepBuf data) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        TeepError err = {};
        int r;

        r = teep_message_decode(data, &m, &err);
        if (r < 0)
                return fail(in, r, &err, "TEEP message");
        in->message_type = teep_message_type_to_string(m->type);
        for (size_t i = 0; i < m->n_manifest_list; i++) {
                char what[64];
                snprintf(what, sizeof(what), "SUIT envelope %zu of manifest-list", i + 1);
                r = inspect_suit(in, m->manifest_list[i], what);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int inspect_eat(Inspect *in, TeepBuf data) {
        _cleanup_(teep_eat_freep) TeepEat *eat = NULL;
        TeepError err = {};
        int r;

        /* an inspector shows what peers send: accept the legacy byte-string hwversion libteep emits */
        r = teep_eat_decode_flags(data, TEEP_EAT_DECODE_LEGACY_HWVERSION, &eat, &err);
        if (r < 0)
                return fail(in, r, &err, "EAT claims");
        return 0;
}

/* A COSE payload is a TEEP message (array starting with a uint) or EAT claims (a map). */
static int inspect_payload(Inspect *in, TeepBuf payload) {
        if (payload.len > 0 && payload.ptr[0] >= 0x80 && payload.ptr[0] <= 0x9f)
                return inspect_teep_message(in, payload);
        if (payload.len > 0 && payload.ptr[0] >= 0xa0 && payload.ptr[0] <= 0xbf) {
                in->kind = "eat";
                return inspect_eat(in, payload);
        }
        return 0;
}

static int inspect_cose(Inspect *in, TeepBuf data) {
        TeepCoseMessage msg;
        TeepError err = {};
        int r;

        r = teep_cose_decode(data, &msg, &err);
        if (r < 0)
                return fail(in, r, &err, "COSE");
        in->kind = msg.kind == TEEP_COSE_SIGN ? "cose-sign" : "cose-sign1";
        if (in->n_keys > 0)
                verify_cose(in, &msg, NULL, msg.kind == TEEP_COSE_SIGN ? "COSE_Sign" : "COSE_Sign1");
        if (msg.payload_detached)
                return 0;
        r = teep_cbor_check(msg.payload, NULL, &err);
        if (r < 0)
                return fail(in, r, &err, "COSE payload");
        return inspect_payload(in, msg.payload);
}

static int load_key(Inspect *in, const char *path) {
        _cleanup_free_ uint8_t *data = NULL;
        TeepError err = {};
        size_t len;
        int r;

        if (in->n_keys >= INSPECT_MAX_KEYS) {
                fprintf(stderr, "teepctl: at most %d keys\n", INSPECT_MAX_KEYS);
                return EXIT_USAGE;
        }
        r = read_full_file(path, 1u << 20, &data, &len);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot read key %s: %s\n", path, strerror(-r));
                return EXIT_NOINPUT;
        }
        r = teep_key_from_any(&in->keys[in->n_keys], data, len, &err);
        if (r < 0) {
                fprintf(stderr, "teepctl: %s: not a usable key: %s (%s)\n", path,
                        err.detail[0] ? err.detail : strerror(-r), teep_reason_to_string(err.reason));
                return EXIT_DATAERR;
        }
        in->key_names[in->n_keys++] = path;
        return 0;
}

static void print_checks_text(const Inspect *in) {
        if (in->n_checks == 0)
                return;
        printf("\nSignatures:\n");
        for (size_t i = 0; i < in->n_checks; i++)
                printf("  %-40s %s: %s\n", in->checks[i].what, in->checks[i].result >= 0 ? "OK" : "FAILED",
                       in->checks[i].detail);
}

static void print_checks_json(const Inspect *in) {
        printf(",\n\"signatures\": [");
        for (size_t i = 0; i < in->n_checks; i++) {
                const Check *c = &in->checks[i];
                printf("%s\n  {\"what\": ", i ? "," : "");
                render_json_string(stdout, c->what, strlen(c->what));
                printf(", \"verified\": %s, ", c->result >= 0 ? "true" : "false");
                if (c->result >= 0) {
                        printf("\"key\": ");
                        render_json_string(stdout, in->key_names[c->key], strlen(in->key_names[c->key]));
                } else {
                        printf("\"error\": ");
                        render_json_string(stdout, c->detail, strlen(c->detail));
                }
                printf("}");
        }
        printf("%s]", in->n_checks ? "\n" : "");
}

static void usage(FILE *f) {
        fprintf(f, "Usage: teepctl inspect [--key FILE]... [--json] FILE|-\n\n"
                   "Decode a TEEP message (bare or COSE-signed), a SUIT envelope or EAT claims, given as\n"
                   "binary or hex, and print it. With --key (PEM or COSE_Key, binary or hex; repeatable)\n"
                   "verify every signature, including the SUIT manifests inside an Update.\n");
}

int verb_inspect(int argc, char **argv) {
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(inspect_done) Inspect in = {};
        _cleanup_free_ uint8_t *data = NULL;
        RenderFormat format = RENDER_DIAG;
        RenderSchema schema;
        TeepError err = {};
        size_t len;
        int c, r, rc = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "k:jh", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        r = load_key(&in, optarg);
                        if (r != 0)
                                return r;
                        break;
                case 'j':
                        format = RENDER_JSON;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        if (optind != argc - 1) {
                usage(stderr);
                return EXIT_USAGE;
        }
        in.input_name = argv[optind];

        r = read_full_file(in.input_name, INSPECT_MAX_INPUT, &data, &len);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot read %s: %s\n", in.input_name, strerror(-r));
                return EXIT_NOINPUT;
        }
        r = unhex_in_place(data, len, &len);
        if (r < 0) {
                fprintf(stderr, "teepctl: %s: looks like hex but has an odd number of digits\n", in.input_name);
                return EXIT_DATAERR;
        }

        r = teep_cbor_check(TEEP_BUF(data, len), NULL, &err);
        if (r < 0)
                return fail(&in, r, &err, "not a CBOR item");

        schema = render_guess_schema(TEEP_BUF(data, len));
        switch (schema) {
        case SCHEMA_COSE:
                rc = inspect_cose(&in, TEEP_BUF(data, len));
                break;
        case SCHEMA_SUIT_ENVELOPE:
                in.kind = "suit-envelope";
                rc = inspect_suit(&in, TEEP_BUF(data, len), "SUIT envelope");
                break;
        case SCHEMA_TEEP_MESSAGE:
                in.kind = "teep-message";
                rc = inspect_teep_message(&in, TEEP_BUF(data, len));
                break;
        case SCHEMA_EAT:
                in.kind = "eat";
                rc = inspect_eat(&in, TEEP_BUF(data, len));
                break;
        default:
                fprintf(stderr, "teepctl: %s: not a TEEP message, COSE object, SUIT envelope or EAT\n",
                        in.input_name);
                return EXIT_DATAERR;
        }
        if (rc != 0)
                return rc;

        if (format == RENDER_JSON) {
                printf("{\n\"input\": ");
                render_json_string(stdout, in.input_name, strlen(in.input_name));
                printf(",\n\"kind\": \"%s\"", in.kind ? in.kind : "teep-message");
                if (in.message_type)
                        printf(",\n\"message-type\": \"%s\"", in.message_type);
                print_checks_json(&in);
                printf(",\n\"value\": ");
                r = render_item(stdout, RENDER_JSON, TEEP_BUF(data, len), schema);
                printf("}\n");
        } else {
                r = render_item(stdout, RENDER_DIAG, TEEP_BUF(data, len), schema);
                print_checks_text(&in);
        }
        if (r < 0)
                return fail(&in, r, NULL, "cannot print");

        for (size_t i = 0; i < in.n_checks; i++)
                if (in.checks[i].result < 0) {
                        fprintf(stderr, "teepctl: %s: %s did not verify: %s\n", in.input_name,
                                in.checks[i].what, in.checks[i].detail);
                        return EXIT_TRUST;
                }
        return 0;
}
