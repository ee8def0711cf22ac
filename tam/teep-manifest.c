/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-manifest.c: the Trusted Component signer's tool: keys and signed SUIT envelopes */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "tam-util.h"
#include "teep-cose.h"
#include "teep-encrypt.h"
#include "teep-protocol.h"
#include "teep-suit.h"

/* Exit codes (sysexits spacing, the same family teepctl uses); documented in teep-manifest(1). */
enum {
        EXIT_FAIL = 1,
        EXIT_USAGE = 64,
        EXIT_DATAERR = 65,
        EXIT_NOINPUT = 66,
        EXIT_SOFTWARE = 70,
        EXIT_CANTCREAT = 73,
};

/* A TC image is read whole (this is a signing tool, not a daemon). An integrated payload travels
 * inside the envelope: 64 MiB matches the agent's default MaxPayloadSize. A payload behind
 * --uri only has to be hashed here (the device fetches it), so it may be as big as an agent
 * configured with a larger MaxPayloadSize= accepts. */
#define PAYLOAD_MAX (64u << 20)
#define URI_PAYLOAD_MAX ((size_t)4 << 30)

/*
 * Default vendor and class identifiers: the values of the TEEP draft's App. E examples, so
 * that the draft's inputs give the draft's manifests byte for byte. Real signers pass their own.
 */
#define DEFAULT_VENDOR_ID "c0ddd5f1-5243-5660-87db-4f5b0aa26c2f"
#define DEFAULT_CLASS_ID  "db42f709-3d8c-55ba-a8c5-265fc5820f4e"

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
        va_list ap;

        fputs("teep-manifest: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

static int exit_for_read_error(int r) {
        return r == -ENOENT || r == -EACCES || r == -EISDIR || r == -EFBIG ? EXIT_NOINPUT : EXIT_DATAERR;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ---- keygen ---- */

static void help_keygen(FILE *f) {
        fprintf(f, "Usage: teep-manifest keygen [--alg ESP256|Ed25519] [--force] --out KEY.pem\n\n"
                   "Generate a signing key and write it as PKCS#8 PEM with mode 0600.\n"
                   "An existing file is kept unless --force is given.\n");
}

static int verb_keygen(int argc, char **argv) {
        static const struct option options[] = {
                {"alg", required_argument, NULL, 'a'},
                {"out", required_argument, NULL, 'o'},
                {"force", no_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(teep_key_freep) TeepKey *key = NULL;
        TeepKeyType type = TEEP_KEY_P256;
        const char *out = NULL;
        bool force = false;
        char *pem = NULL;
        size_t pem_len = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'a': {
                        int64_t alg;
                        if (tam_alg_parse(optarg, &alg) < 0)
                                return fail(EXIT_USAGE, "--alg: unknown algorithm '%s' (ESP256 or Ed25519)",
                                            optarg);
                        type = alg == COSE_ALG_ESP256 || alg == COSE_ALG_ES256 ? TEEP_KEY_P256
                                                                               : TEEP_KEY_ED25519;
                        break;
                }
                case 'o':
                        out = optarg;
                        break;
                case 'f':
                        force = true;
                        break;
                case 'h':
                        help_keygen(stdout);
                        return 0;
                default:
                        help_keygen(stderr);
                        return EXIT_USAGE;
                }
        if (optind != argc || !out) {
                help_keygen(stderr);
                return EXIT_USAGE;
        }
        if (strcmp(out, "-") == 0)
                return fail(EXIT_USAGE, "--out: a private key is written to a file, not to standard output");

        r = teep_key_generate(&key, type);
        if (r < 0)
                return fail(EXIT_SOFTWARE, "cannot generate a key: %s", strerror(-r));
        r = teep_key_export_private_pem(key, &pem, &pem_len);
        if (r < 0)
                return fail(EXIT_SOFTWARE, "cannot export the key: %s", strerror(-r));
        r = tam_write_file_atomic(out, pem, pem_len, 0600, force);
        erase_and_free(pem, pem_len);
        if (r == -EEXIST)
                return fail(EXIT_CANTCREAT, "%s exists; refusing to overwrite a key (use --force)", out);
        if (r < 0)
                return fail(EXIT_CANTCREAT, "cannot write %s: %s", out, strerror(-r));
        return 0;
}

/* ---- pubkey ---- */

static void help_pubkey(FILE *f) {
        fprintf(f,
                "Usage: teep-manifest pubkey --key KEY.pem [--cose [--hex]] [--thumbprint] [--out FILE]\n\n"
                "Write the public half of KEY: PEM (default), a COSE_Key (--cose; binary, or hex text\n"
                "with --hex), or the RFC 9679 thumbprint in hex (--thumbprint). Default output: stdout.\n");
}

static int verb_pubkey(int argc, char **argv) {
        static const struct option options[] = {
                {"key", required_argument, NULL, 'k'},
                {"out", required_argument, NULL, 'o'},
                {"cose", no_argument, NULL, 'c'},
                {"hex", no_argument, NULL, 'x'},
                {"thumbprint", no_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(teep_key_freep) TeepKey *key = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        const char *key_path = NULL, *out = "-";
        bool cose = false, hex = false, thumbprint = false;
        size_t len = 0;
        char errbuf[512];
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_path = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'c':
                        cose = true;
                        break;
                case 'x':
                        hex = true;
                        break;
                case 't':
                        thumbprint = true;
                        break;
                case 'h':
                        help_pubkey(stdout);
                        return 0;
                default:
                        help_pubkey(stderr);
                        return EXIT_USAGE;
                }
        if (optind != argc || !key_path || (cose && thumbprint) || (hex && !cose)) {
                help_pubkey(stderr);
                return EXIT_USAGE;
        }

        r = tam_key_load(key_path, &key, errbuf, sizeof(errbuf));
        if (r < 0)
                return fail(exit_for_read_error(r), "%s", errbuf);

        if (thumbprint) {
                char tp[65];
                r = tam_key_thumbprint_hex(key, tp);
                if (r < 0)
                        return fail(EXIT_SOFTWARE, "cannot compute the thumbprint: %s", strerror(-r));
                tp[64] = '\n';
                r = tam_write_file_atomic(out, tp, 65, 0644, true);
        } else if (cose) {
                r = teep_key_export_cose(key, &data, &len);
                if (r < 0)
                        return fail(EXIT_SOFTWARE, "cannot export the key: %s", strerror(-r));
                if (hex) {
                        _cleanup_free_ char *h = malloc(2 * len + 2);
                        if (!h)
                                return fail(EXIT_SOFTWARE, "out of memory");
                        hexstr(data, len, h);
                        h[2 * len] = '\n';
                        r = tam_write_file_atomic(out, h, 2 * len + 1, 0644, true);
                } else
                        r = tam_write_file_atomic(out, data, len, 0644, true);
        } else {
                _cleanup_free_ char *pem = NULL;
                r = teep_key_export_pem(key, &pem);
                if (r < 0)
                        return fail(EXIT_SOFTWARE, "cannot export the key: %s", strerror(-r));
                r = tam_write_file_atomic(out, pem, strlen(pem), 0644, true);
        }
        if (r < 0)
                return fail(EXIT_CANTCREAT, "cannot write %s: %s", out, strerror(-r));
        return 0;
}

/* ---- create / unlink ---- */

typedef struct ManifestArgs {
        const char *key_path;
        const char *component;
        const char *manifest_id;
        bool no_manifest_id;
        bool has_sequence;
        uint64_t sequence;
        const char *vendor_id;
        const char *class_id;
        const char *payload_path;
        const char *uri;
        int64_t alg;
        bool has_kid;
        uint8_t *kid; /* owned */
        size_t kid_len;
        bool validate;
        bool no_uninstall;
        const char *encrypt_to;     /* the device's public key: encrypt the payload for it */
        int64_t encryption;         /* COSE_ALG_A128GCM (default) or COSE_ALG_A128CTR */
        const char *ciphertext_out; /* --uri with --encrypt-to: where the ciphertext to serve goes */
        const char *depends_on;     /* a signed envelope this component depends on */
        const char *depends_uri;    /* where the device fetches it */
        const uint8_t *payload_data; /* the payload built in memory (trust-anchors), instead of --payload */
        size_t payload_data_len;
        const char *out;
} ManifestArgs;

static void help_create(FILE *f, bool unlink_verb) {
        if (unlink_verb)
                fprintf(f, "Usage: teep-manifest unlink --key KEY.pem --component NAME --sequence N\n"
                           "                            [--vendor-id UUID] [--class-id UUID]\n"
                           "                            [--manifest-id NAME | --no-manifest-id]\n"
                           "                            [--alg ALG] [--kid HEX|none] --out ENV.suit\n\n"
                           "Write a signed SUIT envelope whose install sequence unlinks the component:\n"
                           "the signer's intent to delete it.\n");
        else
                fprintf(f,
                        "Usage: teep-manifest create --key KEY.pem --component NAME --sequence N\n"
                        "                            --payload FILE [--uri URI]\n"
                        "                            [--vendor-id UUID] [--class-id UUID]\n"
                        "                            [--manifest-id NAME | --no-manifest-id]\n"
                        "                            [--validate] [--no-uninstall]\n"
                        "                            [--encrypt-to DEVICE-KEY [--encryption A128GCM|A128CTR]\n"
                        "                             [--ciphertext-out FILE]]\n"
                        "                            [--depends-on DEP.suit --depends-uri URI]\n"
                        "                            [--alg ALG] [--kid HEX|none] --out ENV.suit\n\n"
                        "Write a signed SUIT envelope that installs FILE as the component. The payload is\n"
                        "integrated under \"#tc\" unless --uri names where the device fetches it (the\n"
                        "envelope then carries the URI, digest and size only). ALG: ESP256, Ed25519, or\n"
                        "the legacy ES256/EdDSA. The output is the same for the same inputs and key.\n"
                        "--encrypt-to encrypts the payload for a device's public key (`teepctl agent-key`\n"
                        "output, PEM or COSE_Key) with ECDH-ES+A128KW; the ciphertext travels inside the\n"
                        "manifest, or with --uri goes to --ciphertext-out for the TAM to serve. Encrypted\n"
                        "output differs on every run (fresh keys).\n"
                        "--depends-on makes the component depend on the component that DEP.suit installs\n"
                        "(bound by its manifest digest and size): the device fetches DEP.suit from\n"
                        "--depends-uri and installs it first, in the same update.\n");
}

/* The draft's convention: the manifest of .../ta is .../suit; any other name gets "/suit" appended. */
static int default_manifest_id(const TeepSuitComponentId *id, TeepSuitComponentId *ret) {
        static const char suit[] = "suit";
        TeepSuitComponentId m = *id;

        m.raw = TEEP_BUF_NULL;
        if (m.n_segments > 0 && teep_buf_eq(m.segments[m.n_segments - 1], TEEP_BUF("ta", 2)))
                m.segments[m.n_segments - 1] = TEEP_BUF(suit, 4);
        else {
                if (m.n_segments >= TEEP_COMPONENT_MAX_SEGMENTS)
                        return -E2BIG;
                m.segments[m.n_segments++] = TEEP_BUF(suit, 4);
        }
        *ret = m;
        return 0;
}

static int parse_manifest_args(int argc, char **argv, bool unlink_verb, ManifestArgs *a) {
        static const struct option options[] = {
                {"key", required_argument, NULL, 'k'},
                {"component", required_argument, NULL, 'c'},
                {"manifest-id", required_argument, NULL, 'm'},
                {"no-manifest-id", no_argument, NULL, 'M'},
                {"sequence", required_argument, NULL, 's'},
                {"vendor-id", required_argument, NULL, 'V'},
                {"class-id", required_argument, NULL, 'C'},
                {"payload", required_argument, NULL, 'p'},
                {"uri", required_argument, NULL, 'u'},
                {"alg", required_argument, NULL, 'a'},
                {"kid", required_argument, NULL, 'i'},
                {"validate", no_argument, NULL, 'v'},
                {"no-uninstall", no_argument, NULL, 'U'},
                {"encrypt-to", required_argument, NULL, 'E'},
                {"encryption", required_argument, NULL, 'e'},
                {"ciphertext-out", required_argument, NULL, 'O'},
                {"depends-on", required_argument, NULL, 'D'},
                {"depends-uri", required_argument, NULL, 'R'},
                {"out", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        a->key_path = optarg;
                        break;
                case 'c':
                        a->component = optarg;
                        break;
                case 'm':
                        a->manifest_id = optarg;
                        break;
                case 'M':
                        a->no_manifest_id = true;
                        break;
                case 's':
                        if (parse_u64(optarg, &a->sequence) < 0)
                                return fail(EXIT_USAGE, "--sequence: not an unsigned integer: '%s'", optarg);
                        a->has_sequence = true;
                        break;
                case 'V':
                        a->vendor_id = optarg;
                        break;
                case 'C':
                        a->class_id = optarg;
                        break;
                case 'p':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink takes no --payload");
                        a->payload_path = optarg;
                        break;
                case 'u':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink takes no --uri");
                        a->uri = optarg;
                        break;
                case 'a':
                        if (tam_alg_parse(optarg, &a->alg) < 0)
                                return fail(EXIT_USAGE,
                                            "--alg: unknown algorithm '%s' (ESP256, Ed25519, ES256, EdDSA)",
                                            optarg);
                        break;
                case 'i':
                        free(a->kid);
                        a->kid = NULL;
                        a->kid_len = 0;
                        a->has_kid = true;
                        if (strcmp(optarg, "none") != 0 &&
                            (unhex(optarg, strlen(optarg), &a->kid, &a->kid_len) < 0 || a->kid_len == 0))
                                return fail(EXIT_USAGE, "--kid: not hex bytes (or 'none'): '%s'", optarg);
                        break;
                case 'v':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink takes no --validate");
                        a->validate = true;
                        break;
                case 'U':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink takes no --no-uninstall");
                        a->no_uninstall = true;
                        break;
                case 'D':
                case 'R':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink has no dependencies");
                        if (c == 'D')
                                a->depends_on = optarg;
                        else
                                a->depends_uri = optarg;
                        break;
                case 'E':
                case 'e':
                case 'O':
                        if (unlink_verb)
                                return fail(EXIT_USAGE, "unlink encrypts nothing");
                        if (c == 'E')
                                a->encrypt_to = optarg;
                        else if (c == 'O')
                                a->ciphertext_out = optarg;
                        else if (strcasecmp(optarg, "A128GCM") == 0)
                                a->encryption = COSE_ALG_A128GCM;
                        else if (strcasecmp(optarg, "A128CTR") == 0)
                                a->encryption = COSE_ALG_A128CTR;
                        else
                                return fail(EXIT_USAGE, "--encryption: '%s' is not A128GCM or A128CTR", optarg);
                        break;
                case 'o':
                        a->out = optarg;
                        break;
                case 'h':
                        help_create(stdout, unlink_verb);
                        return -1;
                default:
                        help_create(stderr, unlink_verb);
                        return EXIT_USAGE;
                }
        if (optind != argc) {
                help_create(stderr, unlink_verb);
                return fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
        }
        if (!a->key_path || !a->component || !a->has_sequence || !a->out ||
            (!unlink_verb && !a->payload_path)) {
                help_create(stderr, unlink_verb);
                return fail(EXIT_USAGE, "--key, --component, --sequence%s and --out are required",
                            unlink_verb ? "" : ", --payload");
        }
        if (a->manifest_id && a->no_manifest_id)
                return fail(EXIT_USAGE, "--manifest-id and --no-manifest-id exclude each other");
        if (!a->depends_on != !a->depends_uri)
                return fail(EXIT_USAGE, "--depends-on and --depends-uri go together");
        if (a->depends_uri && (!*a->depends_uri || !teep_utf8_is_valid(TEEP_BUF(a->depends_uri, strlen(a->depends_uri)))))
                return fail(EXIT_USAGE, "--depends-uri: empty or not UTF-8");
        if ((a->encryption || a->ciphertext_out) && !a->encrypt_to)
                return fail(EXIT_USAGE, "--encryption and --ciphertext-out need --encrypt-to");
        if (a->encrypt_to && a->uri && a->uri[0] != '#' && !a->ciphertext_out)
                return fail(EXIT_USAGE, "--encrypt-to with --uri needs --ciphertext-out (the bytes to serve at the URI)");
        if (a->ciphertext_out && (!a->uri || a->uri[0] == '#'))
                return fail(EXIT_USAGE, "--ciphertext-out goes with --uri (an integrated payload travels in the manifest)");
        if (a->uri && (!*a->uri || !teep_utf8_is_valid(TEEP_BUF(a->uri, strlen(a->uri)))))
                return fail(EXIT_USAGE, "--uri: empty or not UTF-8");
        return 0;
}

/* Decode, authenticate and decode the manifest of what we are about to write: we never hand
 * out an envelope that the device side would refuse. */
static int self_check(const uint8_t *env_data, size_t env_len, TeepKey *key, uint64_t sequence) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *m = NULL;
        TeepError err = {};
        int r;

        r = teep_suit_envelope_decode(TEEP_BUF(env_data, env_len), &env, &err);
        if (r >= 0)
                r = teep_suit_envelope_verify(env, &key, 1, NULL, &err);
        if (r >= 0)
                r = teep_suit_manifest_decode(env, 0, &m, &err);
        if (r < 0)
                return fail(EXIT_SOFTWARE, "internal error: the envelope does not verify: %s (%s)",
                            err.detail[0] ? err.detail : strerror(-r), teep_reason_to_string(err.reason));
        if (m->sequence_number != sequence)
                return fail(EXIT_SOFTWARE, "internal error: sequence number %" PRIu64 " instead of %" PRIu64,
                            m->sequence_number, sequence);
        return 0;
}

static int manifest_build(ManifestArgs *ap, bool unlink_verb);

static int verb_manifest(int argc, char **argv, bool unlink_verb) {
        ManifestArgs a = {};
        int r;

        r = parse_manifest_args(argc, argv, unlink_verb, &a);
        if (r != 0) {
                free(a.kid);
                return r < 0 ? 0 : r;
        }
        return manifest_build(&a, unlink_verb);
}

/* Build, sign, self-check and write the envelope *ap describes; frees ap->kid. */
static int manifest_build(ManifestArgs *ap, bool unlink_verb) {
        _cleanup_(teep_key_freep) TeepKey *key = NULL;
        _cleanup_free_ uint8_t *payload = NULL, *manifest = NULL, *env = NULL, *enc_info = NULL, *ciphertext = NULL;
        _cleanup_(teep_key_freep) TeepKey *recipient = NULL;
        _cleanup_free_ uint8_t *dep_data = NULL;
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *dep_env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *dep_man = NULL;
        TeepSuitBuildDependency dep = {};
        size_t dep_len = 0;
        size_t enc_info_len = 0, ciphertext_len = 0;
        TamComponent component = {}, manifest_component = {};
        TeepSuitComponentId derived_mid;
        ManifestArgs a = *ap;
        uint8_t vendor[16], class[16], digest[32];
        size_t payload_len = 0, manifest_len = 0, env_len = 0;
        TeepSuitBuild b = {};
        char errbuf[512];
        int r, ret;

        if (tam_component_parse(a.component, &component) < 0) {
                ret = fail(EXIT_USAGE, "--component: '%s' is not a component name (see teep-manifest(1))",
                           a.component);
                goto out;
        }
        if (a.manifest_id && tam_component_parse(a.manifest_id, &manifest_component) < 0) {
                ret = fail(EXIT_USAGE, "--manifest-id: '%s' is not a component name", a.manifest_id);
                goto out;
        }
        if (tam_uuid_parse(a.vendor_id ?: DEFAULT_VENDOR_ID, vendor) < 0) {
                ret = fail(EXIT_USAGE, "--vendor-id: '%s' is not a UUID (8-4-4-4-12 hex)",
                           a.vendor_id ?: "");
                goto out;
        }
        if (tam_uuid_parse(a.class_id ?: DEFAULT_CLASS_ID, class) < 0) {
                ret = fail(EXIT_USAGE, "--class-id: '%s' is not a UUID (8-4-4-4-12 hex)", a.class_id ?: "");
                goto out;
        }

        r = tam_key_load(a.key_path, &key, errbuf, sizeof(errbuf));
        if (r < 0) {
                ret = fail(exit_for_read_error(r), "%s", errbuf);
                goto out;
        }
        if (!teep_key_has_private(key)) {
                ret = fail(EXIT_DATAERR, "%s: a public key cannot sign; pass the private key", a.key_path);
                goto out;
        }
        if (a.alg != 0 && !teep_key_supports_alg(key, a.alg)) {
                ret = fail(EXIT_USAGE, "--alg: %s does not fit a %s key", teep_cose_alg_to_string(a.alg),
                           teep_key_type(key) == TEEP_KEY_P256 ? "P-256" : "Ed25519");
                goto out;
        }

        b.component_id = &component.id;
        b.sequence_number = a.sequence;
        b.vendor_id = TEEP_BUF(vendor, sizeof(vendor));
        b.class_id = TEEP_BUF(class, sizeof(class));
        if (a.manifest_id)
                b.manifest_component_id = &manifest_component.id;
        else if (!a.no_manifest_id) {
                if (default_manifest_id(&component.id, &derived_mid) < 0) {
                        ret = fail(EXIT_USAGE, "--component has too many segments to derive a manifest id; "
                                               "pass --manifest-id or --no-manifest-id");
                        goto out;
                }
                b.manifest_component_id = &derived_mid;
        }

        if (!unlink_verb) {
                if (a.payload_data) {
                        payload = malloc(a.payload_data_len ?: 1);
                        r = payload ? 0 : -ENOMEM;
                        if (payload) {
                                memcpy(payload, a.payload_data, a.payload_data_len);
                                payload_len = a.payload_data_len;
                        }
                } else
                        r = read_full_file(a.payload_path, a.uri && a.uri[0] != '#' ? URI_PAYLOAD_MAX : PAYLOAD_MAX,
                                           &payload, &payload_len);
                if (r < 0) {
                        ret = fail(exit_for_read_error(r), "%s: %s", a.payload_path ?: "payload",
                                   r == -EFBIG ? (a.uri && a.uri[0] != '#' ? "larger than 4 GiB" : "larger than 64 MiB")
                                               : strerror(-r));
                        goto out;
                }
                r = teep_sha256(TEEP_BUF(payload, payload_len), digest);
                if (r < 0) {
                        ret = fail(EXIT_SOFTWARE, "cannot hash the payload: %s", strerror(-r));
                        goto out;
                }
                b.image_digest = TEEP_BUF(digest, sizeof(digest));
                b.image_size = payload_len;
                b.uri = a.uri ?: "#tc";
                /* integrated: the envelope key is the URI's fragment ("#tc") */
                if (b.uri[0] == '#')
                        b.payload = TEEP_BUF(payload ?: (uint8_t *)"", payload_len);
                if (a.encrypt_to) {
                        r = tam_key_load(a.encrypt_to, &recipient, errbuf, sizeof(errbuf));
                        if (r < 0) {
                                ret = fail(exit_for_read_error(r), "--encrypt-to: %s", errbuf);
                                goto out;
                        }
                        r = teep_encrypt(recipient, a.encryption ?: COSE_ALG_A128GCM, NULL,
                                         TEEP_BUF(payload ?: (uint8_t *)"", payload_len), &enc_info, &enc_info_len,
                                         &ciphertext, &ciphertext_len);
                        if (r == -EOPNOTSUPP) {
                                ret = fail(EXIT_DATAERR, "--encrypt-to: %s is not a P-256 key (ECDH-ES+A128KW needs one)",
                                           a.encrypt_to);
                                goto out;
                        }
                        if (r < 0) {
                                ret = fail(EXIT_SOFTWARE, "cannot encrypt the payload: %s", strerror(-r));
                                goto out;
                        }
                        b.encryption_info = TEEP_BUF(enc_info, enc_info_len);
                        if (b.uri[0] == '#')
                                b.payload = TEEP_BUF(ciphertext ?: (uint8_t *)"", ciphertext_len);
                        else {
                                r = tam_write_file_atomic(a.ciphertext_out, ciphertext ?: (uint8_t *)"", ciphertext_len, 0644,
                                                          true);
                                if (r < 0) {
                                        ret = fail(EXIT_CANTCREAT, "cannot write %s: %s", a.ciphertext_out, strerror(-r));
                                        goto out;
                                }
                        }
                }
                if (a.depends_on) {
                        TeepError derr = {};
                        r = read_full_file(a.depends_on, PAYLOAD_MAX, &dep_data, &dep_len);
                        if (r < 0) {
                                ret = fail(exit_for_read_error(r), "%s: %s", a.depends_on, strerror(-r));
                                goto out;
                        }
                        /* not verified here (the device does that with its own signer keys): only
                         * its name, digest and size are taken */
                        r = teep_suit_envelope_decode(TEEP_BUF(dep_data, dep_len), &dep_env, &derr);
                        if (r >= 0)
                                r = teep_suit_manifest_decode(dep_env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &dep_man, &derr);
                        if (r < 0 || dep_env->digest.alg != COSE_ALG_SHA256 || dep_env->digest.bytes.len != 32 ||
                            !dep_man->has_manifest_component_id) {
                                ret = fail(EXIT_DATAERR, "--depends-on %s: not a SUIT envelope with a SHA-256 digest and a "
                                                         "manifest-component-id%s%s",
                                           a.depends_on, derr.detail[0] ? ": " : "", derr.detail);
                                goto out;
                        }
                        dep.prefix = &dep_man->manifest_component_id;
                        dep.digest = dep_env->digest.bytes;
                        dep.size = dep_len;
                        dep.uri = a.depends_uri;
                        b.dependency = &dep;
                }
                b.validate = a.validate;
                b.uninstall_unlink = !a.no_uninstall;
                r = teep_suit_manifest_encode_install(&b, &manifest, &manifest_len);
        } else
                r = teep_suit_manifest_encode_unlink(&b, &manifest, &manifest_len);
        if (r < 0) {
                ret = fail(EXIT_SOFTWARE, "cannot encode the manifest: %s", strerror(-r));
                goto out;
        }

        {
                TeepSuitPayload p = {.key = TEEP_BUF(b.uri ?: "", b.uri ? strlen(b.uri) : 0),
                                     .data = b.payload};
                TeepBuf kid = TEEP_BUF(a.kid, a.kid_len);
                /* an encrypted integrated payload travels inside the manifest (parameter 18) */
                bool attach = b.payload.ptr && !b.encryption_info.ptr;

                if (a.has_kid) /* libteep's signer always puts the thumbprint: see tam-util.h */
                        r = tam_suit_envelope_sign_kid(TEEP_BUF(manifest, manifest_len), key, a.alg, &kid,
                                                       attach ? &p : NULL, &env, &env_len);
                else
                        r = teep_suit_envelope_sign(TEEP_BUF(manifest, manifest_len), key, a.alg,
                                                    attach ? &p : NULL, attach ? 1 : 0, &env, &env_len);
        }
        if (r < 0) {
                ret = fail(EXIT_SOFTWARE, "cannot sign the envelope: %s", strerror(-r));
                goto out;
        }

        ret = self_check(env, env_len, key, a.sequence);
        if (ret != 0)
                goto out;

        r = tam_write_file_atomic(a.out, env, env_len, 0644, true);
        if (r < 0) {
                ret = fail(EXIT_CANTCREAT, "cannot write %s: %s", a.out, strerror(-r));
                goto out;
        }
        ret = 0;
out:
        free(a.kid);
        tam_component_done(&component);
        tam_component_done(&manifest_component);
        return ret;
}

static int verb_create(int argc, char **argv) {
        return verb_manifest(argc, argv, false);
}

static int verb_unlink(int argc, char **argv) {
        return verb_manifest(argc, argv, true);
}

/* ---- trust-anchors ---- */

/* The component the agent reserves for the administrator's trust-anchor list (agentd/trust-anchors.c). */
#define TRUST_ANCHORS_COMPONENT "teepkit/trust-anchors"

static void help_trust_anchors(FILE *f) {
        fprintf(f, "Usage: teep-manifest trust-anchors --key ADMIN.pem --sequence N\n"
                   "                                   [--vendor-id UUID] [--class-id UUID]\n"
                   "                                   [--alg ALG] --out LIST.suit KEY...\n\n"
                   "Write a trust-anchor list: a SUIT envelope for the component teepkit/trust-anchors,\n"
                   "signed by ADMIN (the device's [Agent] AdminKey=), whose integrated payload is a CBOR\n"
                   "array of the public COSE_Keys of KEY... (PEM or COSE_Key files; only public halves\n"
                   "are written). A TAM delivers it; the device makes exactly these keys its TAM trust\n"
                   "anchors. N must grow with every new list. The device refuses a list that leaves out\n"
                   "the administrator's own key (a warning is printed).\n");
}

static int verb_trust_anchors(int argc, char **argv) {
        static const struct option options[] = {
                {"key", required_argument, NULL, 'k'},
                {"sequence", required_argument, NULL, 's'},
                {"vendor-id", required_argument, NULL, 'V'},
                {"class-id", required_argument, NULL, 'C'},
                {"alg", required_argument, NULL, 'a'},
                {"out", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(teep_key_freep) TeepKey *admin = NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        ManifestArgs a = {.component = TRUST_ANCHORS_COMPONENT};
        uint8_t admin_tp[32];
        bool has_admin = false;
        TeepCborWriter w;
        size_t n, len = 0;
        char errbuf[512];
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        a.key_path = optarg;
                        break;
                case 's':
                        if (parse_u64(optarg, &a.sequence) < 0)
                                return fail(EXIT_USAGE, "--sequence: not an unsigned integer: '%s'", optarg);
                        a.has_sequence = true;
                        break;
                case 'V':
                        a.vendor_id = optarg;
                        break;
                case 'C':
                        a.class_id = optarg;
                        break;
                case 'a':
                        if (tam_alg_parse(optarg, &a.alg) < 0)
                                return fail(EXIT_USAGE, "--alg: unknown algorithm '%s' (ESP256, Ed25519, ES256, EdDSA)",
                                            optarg);
                        break;
                case 'o':
                        a.out = optarg;
                        break;
                case 'h':
                        help_trust_anchors(stdout);
                        return 0;
                default:
                        help_trust_anchors(stderr);
                        return EXIT_USAGE;
                }
        n = (size_t)(argc - optind);
        if (!a.key_path || !a.has_sequence || !a.out || n == 0) {
                help_trust_anchors(stderr);
                return fail(EXIT_USAGE, "--key, --sequence, --out and at least one KEY are required");
        }
        /* the agent takes at most AGENT_MAX_KEYS (64) anchors */
        if (n > 64)
                return fail(EXIT_USAGE, "at most 64 keys in a trust-anchor list (%zu given)", n);

        r = tam_key_load(a.key_path, &admin, errbuf, sizeof(errbuf));
        if (r < 0)
                return fail(exit_for_read_error(r), "%s", errbuf);
        r = teep_key_thumbprint(admin, admin_tp);
        if (r < 0)
                return fail(EXIT_SOFTWARE, "cannot compute the thumbprint of %s: %s", a.key_path, strerror(-r));

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, n);
        for (int i = optind; i < argc; i++) {
                _cleanup_(teep_key_freep) TeepKey *k = NULL;
                _cleanup_free_ uint8_t *ck = NULL;
                uint8_t tp[32];
                size_t cl = 0;

                r = tam_key_load(argv[i], &k, errbuf, sizeof(errbuf));
                if (r < 0) {
                        teep_cbor_writer_reset(&w);
                        return fail(exit_for_read_error(r), "%s", errbuf);
                }
                r = teep_key_export_cose(k, &ck, &cl); /* the public half only */
                if (r >= 0)
                        r = teep_key_thumbprint(k, tp);
                if (r < 0) {
                        teep_cbor_writer_reset(&w);
                        return fail(EXIT_SOFTWARE, "cannot export %s: %s", argv[i], strerror(-r));
                }
                has_admin = has_admin || memcmp(tp, admin_tp, 32) == 0;
                teep_cbor_put_raw(&w, TEEP_BUF(ck, cl));
        }
        r = teep_cbor_writer_finish(&w, &payload, &len);
        if (r < 0)
                return fail(EXIT_SOFTWARE, "cannot encode the key list: %s", strerror(-r));
        if (!has_admin)
                fprintf(stderr, "teep-manifest: warning: %s is not in the list; a device whose AdminKey= it is "
                                "refuses this list\n",
                        a.key_path);
        a.payload_data = payload;
        a.payload_data_len = len;
        return manifest_build(&a, false);
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} verbs[] = {
        {"keygen", verb_keygen, "generate a signing key (PKCS#8 PEM, mode 0600)"},
        {"pubkey", verb_pubkey, "print the public key (PEM, COSE_Key or thumbprint)"},
        {"create", verb_create, "sign a SUIT envelope that installs a Trusted Component"},
        {"unlink", verb_unlink, "sign a SUIT envelope that unlinks (deletes) a Trusted Component"},
        {"trust-anchors", verb_trust_anchors, "sign a trust-anchor list (the device's TAM keys) with the admin key"},
};

static void help(FILE *f) {
        fprintf(f, "Usage: teep-manifest [--version] [--help] VERB [ARGS...]\n\n"
                   "Make keys and signed SUIT envelopes for Trusted Components.\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-13s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\nSee teep-manifest(1) for each verb's options and the exit codes.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                help(stderr);
                return EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("teep-manifest %s\n", PACKAGE_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[1], verbs[i].name) == 0)
                        return verbs[i].run(argc - 1, argv + 1);
        fprintf(stderr, "teep-manifest: unknown verb '%s' (try teep-manifest --help)\n", argv[1]);
        return EXIT_USAGE;
}
