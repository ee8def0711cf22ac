/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* render.c: print TEEP, COSE, SUIT and EAT structures as annotated diagnostic notation or JSON */

#include <inttypes.h>
#include <string.h>

#include "macro.h"
#include "names.h"
#include "render.h"
#include "teep-protocol.h"

/* bstr .cbor nesting inside nesting: each level is bounded by the CBOR limits already. */
#define RENDER_MAX_NEST 24

typedef struct Ctx {
        FILE *f;
        RenderFormat fmt;
        unsigned indent;
        unsigned nest;
} Ctx;

static int emit(Ctx *c, TeepCborReader *r, RenderSchema s);

void render_json_string(FILE *f, const char *s, size_t n) {
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                switch (ch) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        if (ch < 0x20 || ch == 0x7f)
                                fprintf(f, "\\u%04x", ch);
                        else
                                fputc(ch, f);
                }
        }
        fputc('"', f);
}

static void newline(Ctx *c) {
        fputc('\n', c->f);
        for (unsigned i = 0; i < c->indent; i++)
                fputs("  ", c->f);
}

static void put_hex(FILE *f, TeepBuf b) {
        for (size_t i = 0; i < b.len; i++)
                fprintf(f, "%02x", b.ptr[i]);
}

static void put_bytes(Ctx *c, TeepBuf b) {
        if (c->fmt == RENDER_JSON) {
                fputc('"', c->f);
                put_hex(c->f, b);
                fputc('"', c->f);
        } else {
                fputs("h'", c->f);
                put_hex(c->f, b);
                fputc('\'', c->f);
        }
}

static void put_comment(Ctx *c, const char *name) {
        if (c->fmt == RENDER_DIAG && name)
                fprintf(c->f, " / %s /", name);
}

/* Does this byte string hold exactly one container item (array, map or tag)? */
static bool holds_cbor(TeepBuf b) {
        if (b.len == 0)
                return false;
        if (!((b.ptr[0] >= 0x80 && b.ptr[0] <= 0xbf) || (b.ptr[0] >= 0xc0 && b.ptr[0] <= 0xdb)))
                return false;
        return teep_cbor_check(b, NULL, NULL) == 0;
}

/* Print a bstr that the drafts define as `bstr .cbor X`; fall back to plain bytes. */
static int emit_wrapped(Ctx *c, TeepCborReader *r, RenderSchema inner) {
        TeepCborItem it;
        TeepCborReader sub;
        int k;

        k = teep_cbor_peek(r, &it);
        if (k < 0)
                return k;
        if (it.type != TEEP_CBOR_BYTES || !holds_cbor(it.str) || c->nest >= RENDER_MAX_NEST)
                return emit(c, r, SCHEMA_ANY);
        r->pos += it.head.len;

        teep_cbor_reader_init(&sub, it.str);
        c->nest++;
        if (c->fmt == RENDER_DIAG)
                fputs("<< ", c->f);
        k = emit(c, &sub, inner);
        if (c->fmt == RENDER_DIAG)
                fputs(" >>", c->f);
        c->nest--;
        return k;
}

/* ---- what each field is called, and what its value is ---- */

typedef struct Field {
        const char *name;
        RenderSchema schema;
        bool wrapped;         /* bstr .cbor schema */
} Field;

static Field map_field(RenderSchema s, int64_t key, TeepCborType value_type) {
        Field f = { NULL, SCHEMA_ANY, false };

        switch (s) {
        case SCHEMA_TEEP_OPTIONS:
        case SCHEMA_REQUESTED_TC:
                f.name = name_teep_label(key);
                switch (key) {
                case TEEP_LABEL_TC_LIST:
                        f.schema = SCHEMA_TC_LIST;
                        break;
                case TEEP_LABEL_REQUESTED_TC_LIST:
                        f.schema = SCHEMA_REQUESTED_TC_LIST;
                        break;
                case TEEP_LABEL_UNNEEDED_MANIFEST_LIST:
                        f.schema = SCHEMA_COMPONENT_LIST;
                        break;
                case TEEP_LABEL_MANIFEST_LIST:
                        f.schema = SCHEMA_MANIFEST_LIST;
                        break;
                case TEEP_LABEL_COMPONENT_ID:
                        f.schema = SCHEMA_COMPONENT_ID;
                        break;
                case TEEP_LABEL_ATTESTATION_PAYLOAD:
                        f.schema = SCHEMA_PAYLOAD_AUTO;
                        f.wrapped = true;
                        break;
                case TEEP_LABEL_SUPPORTED_TEEP_CIPHER_SUITES:
                        f.schema = SCHEMA_TEEP_SUITES;
                        break;
                }
                break;
        case SCHEMA_SYSTEM_PROPERTY:
                if (key == 0) {
                        f.name = "system-component-id";
                        f.schema = SCHEMA_COMPONENT_ID;
                        break;
                }
                /* the other members are SUIT parameters */
                __attribute__((fallthrough));
        case SCHEMA_SUIT_PARAMETERS:
                f.name = name_suit_parameter(key);
                if (key == 3) {
                        f.schema = SCHEMA_SUIT_DIGEST;
                        f.wrapped = true;
                } else if (key == 22) {
                        f.schema = SCHEMA_COMPONENT_ID;
                } else if (key == 19) {
                        f.schema = SCHEMA_ANY;
                        f.wrapped = true;
                }
                break;
        case SCHEMA_SUIT_ENVELOPE:
                f.name = name_suit_envelope_key(key);
                if (key == 2) {
                        f.schema = SCHEMA_SUIT_AUTH;
                        f.wrapped = true;
                } else if (key == 3) {
                        f.schema = SCHEMA_SUIT_MANIFEST;
                        f.wrapped = true;
                } else if (key == 15 || key == 16 || key == 18 || key == 20) {
                        f.schema = SCHEMA_SUIT_SEQUENCE;
                        f.wrapped = true;
                }
                break;
        case SCHEMA_SUIT_MANIFEST:
                f.name = name_suit_manifest_key(key);
                if (key == 3) {
                        f.schema = SCHEMA_SUIT_COMMON;
                        f.wrapped = true;
                } else if (key == 5) {
                        f.schema = SCHEMA_COMPONENT_ID;
                } else if (key == 7 || key == 8 || key == 9 || key == 15 || key == 16 || key == 18 ||
                           key == 20 || key == 24) {
                        /* a severed member is a SUIT_Digest array in place of the bstr */
                        if (value_type == TEEP_CBOR_ARRAY)
                                f.schema = SCHEMA_SUIT_DIGEST;
                        else {
                                f.schema = SCHEMA_SUIT_SEQUENCE;
                                f.wrapped = true;
                        }
                }
                break;
        case SCHEMA_SUIT_COMMON:
                f.name = name_suit_common_key(key);
                if (key == 1)
                        f.schema = SCHEMA_SUIT_DEPENDENCIES;
                else if (key == 2)
                        f.schema = SCHEMA_COMPONENT_LIST;
                else if (key == 4) {
                        f.schema = SCHEMA_SUIT_SEQUENCE;
                        f.wrapped = true;
                }
                break;
        case SCHEMA_SUIT_DEPENDENCIES:
                f.schema = SCHEMA_SUIT_DEPENDENCY;
                break;
        case SCHEMA_SUIT_DEPENDENCY:
                if (key == 1) {
                        f.name = "dependency-prefix";
                        f.schema = SCHEMA_COMPONENT_ID;
                }
                break;
        case SCHEMA_COSE_HEADERS:
                f.name = name_cose_header(key);
                break;
        case SCHEMA_EAT:
                f.name = name_eat_claim(key);
                if (key == 8)
                        f.schema = SCHEMA_EAT_CNF;
                break;
        case SCHEMA_EAT_CNF:
                f.name = key == 1 ? "COSE_Key" : key == 3 ? "kid" : NULL;
                break;
        default:
                break;
        }
        return f;
}

/* A comment for a well-known integer value in its context (alg names, message types). */
static const char *value_comment(const char *field, int64_t v) {
        if (!field)
                return NULL;
        if (strcmp(field, "alg") == 0 || strcmp(field, "algorithm-id") == 0)
                return name_cose_alg(v);
        return NULL;
}

/* ---- generic items ---- */

static int emit_scalar(Ctx *c, const TeepCborItem *it) {
        switch (it->type) {
        case TEEP_CBOR_UINT:
                fprintf(c->f, "%" PRIu64, it->value);
                return 0;
        case TEEP_CBOR_NEGINT:
                if (it->value == UINT64_MAX)
                        fputs("-18446744073709551616", c->f);
                else
                        fprintf(c->f, "-%" PRIu64, it->value + 1);
                return 0;
        case TEEP_CBOR_BYTES:
                put_bytes(c, it->str);
                return 0;
        case TEEP_CBOR_TEXT:
                render_json_string(c->f, (const char *)it->str.ptr, it->str.len);
                return 0;
        case TEEP_CBOR_TRUE:
                fputs("true", c->f);
                return 0;
        case TEEP_CBOR_FALSE:
                fputs("false", c->f);
                return 0;
        case TEEP_CBOR_NULL:
                fputs("null", c->f);
                return 0;
        case TEEP_CBOR_UNDEFINED:
                fputs(c->fmt == RENDER_JSON ? "null" : "undefined", c->f);
                return 0;
        case TEEP_CBOR_FLOAT:
                fprintf(c->f, "%.17g", it->fvalue);
                return 0;
        default:
                return -EBADMSG;
        }
}

/* Write a map key: a name, else the number (JSON keys are strings). */
static int emit_key(Ctx *c, TeepCborReader *r, RenderSchema s, Field *ret_field) {
        TeepCborItem key, value;
        int64_t k = 0;
        bool int_key;
        int e;

        e = teep_cbor_read(r, &key);
        if (e < 0)
                return e;
        e = teep_cbor_peek(r, &value);
        if (e < 0)
                return e;
        int_key = (key.type == TEEP_CBOR_UINT && key.value <= INT64_MAX) ||
                  (key.type == TEEP_CBOR_NEGINT && key.value <= INT64_MAX);
        if (int_key)
                k = key.type == TEEP_CBOR_UINT ? (int64_t)key.value : -1 - (int64_t)key.value;

        *ret_field = int_key ? map_field(s, k, value.type) : (Field){ NULL, SCHEMA_ANY, false };
        if (key.type == TEEP_CBOR_TEXT && s == SCHEMA_SUIT_ENVELOPE)
                ret_field->name = "integrated-payload";

        if (c->fmt == RENDER_JSON) {
                if (int_key && ret_field->name)
                        render_json_string(c->f, ret_field->name, strlen(ret_field->name));
                else if (int_key)
                        fprintf(c->f, "\"%" PRId64 "\"", k);
                else if (key.type == TEEP_CBOR_TEXT)
                        render_json_string(c->f, (const char *)key.str.ptr, key.str.len);
                else if (key.type == TEEP_CBOR_BYTES) {
                        fputc('"', c->f);
                        put_hex(c->f, key.str);
                        fputc('"', c->f);
                } else
                        fprintf(c->f, "\"%s\"", teep_cbor_type_to_string(key.type));
                fputs(": ", c->f);
                /* a container key has nested items to skip in the JSON form */
                if (key.type == TEEP_CBOR_ARRAY || key.type == TEEP_CBOR_MAP || key.type == TEEP_CBOR_TAG) {
                        r->pos -= key.head.len;
                        return teep_cbor_skip(r, NULL) < 0 ? -EBADMSG : 0;
                }
                return 0;
        }

        if (ret_field->name)
                fprintf(c->f, "/ %s / ", ret_field->name);
        if (key.type == TEEP_CBOR_ARRAY || key.type == TEEP_CBOR_MAP || key.type == TEEP_CBOR_TAG) {
                r->pos -= key.head.len;
                e = emit(c, r, SCHEMA_ANY);
                if (e < 0)
                        return e;
        } else {
                e = emit_scalar(c, &key);
                if (e < 0)
                        return e;
        }
        fputs(": ", c->f);
        return 0;
}

static int emit_field_value(Ctx *c, TeepCborReader *r, const Field *field) {
        TeepCborItem it;
        int e;

        if (field->wrapped)
                return emit_wrapped(c, r, field->schema);
        e = teep_cbor_peek(r, &it);
        if (e < 0)
                return e;
        if ((it.type == TEEP_CBOR_UINT || it.type == TEEP_CBOR_NEGINT) && it.value <= INT64_MAX) {
                int64_t v = it.type == TEEP_CBOR_UINT ? (int64_t)it.value : -1 - (int64_t)it.value;
                const char *comment = value_comment(field->name, v);
                r->pos += it.head.len;
                emit_scalar(c, &it);
                put_comment(c, comment);
                return 0;
        }
        return emit(c, r, field->schema);
}

static int emit_map(Ctx *c, TeepCborReader *r, RenderSchema s, size_t n) {
        int e;

        if (n == 0) {
                fputs("{}", c->f);
                return 0;
        }
        fputc('{', c->f);
        c->indent++;
        for (size_t i = 0; i < n; i++) {
                Field field;
                newline(c);
                e = emit_key(c, r, s, &field);
                if (e < 0)
                        return e;
                e = emit_field_value(c, r, &field);
                if (e < 0)
                        return e;
                if (i + 1 < n)
                        fputc(',', c->f);
        }
        c->indent--;
        newline(c);
        fputc('}', c->f);
        return 0;
}

static RenderSchema element_schema(RenderSchema s, bool *wrapped) {
        *wrapped = false;
        switch (s) {
        case SCHEMA_TC_LIST:
                return SCHEMA_SYSTEM_PROPERTY;
        case SCHEMA_REQUESTED_TC_LIST:
                return SCHEMA_REQUESTED_TC;
        case SCHEMA_COMPONENT_LIST:
                return SCHEMA_COMPONENT_ID;
        case SCHEMA_MANIFEST_LIST:
                *wrapped = true;
                return SCHEMA_SUIT_ENVELOPE;
        case SCHEMA_SUIT_SEQUENCE_LIST:
                *wrapped = true;
                return SCHEMA_SUIT_SEQUENCE;
        case SCHEMA_COSE_SIGNERS:
                return SCHEMA_COSE_SIGNER;
        default:
                return SCHEMA_ANY;
        }
}

static int emit_array(Ctx *c, TeepCborReader *r, RenderSchema s, size_t n) {
        bool wrapped;
        RenderSchema es = element_schema(s, &wrapped);
        int e;

        if (n == 0) {
                fputs("[]", c->f);
                return 0;
        }
        fputc('[', c->f);
        c->indent++;
        for (size_t i = 0; i < n; i++) {
                newline(c);
                e = wrapped ? emit_wrapped(c, r, es) : emit(c, r, es);
                if (e < 0)
                        return e;
                if (i + 1 < n)
                        fputc(',', c->f);
        }
        c->indent--;
        newline(c);
        fputc(']', c->f);
        return 0;
}

/* ---- structures with positional fields: printed as arrays (diag) or objects (JSON) ---- */

typedef struct Position {
        const char *name;
        RenderSchema schema;
        bool wrapped;
} Position;

static int emit_positional(Ctx *c, TeepCborReader *r, size_t n, const Position *pos, size_t npos,
                           const char *json_type_field, const char *json_type_value) {
        int e;

        fputc(c->fmt == RENDER_JSON ? '{' : '[', c->f);
        c->indent++;
        if (c->fmt == RENDER_JSON && json_type_field) {
                newline(c);
                fprintf(c->f, "\"%s\": ", json_type_field);
                render_json_string(c->f, json_type_value, strlen(json_type_value));
                if (n > 0)
                        fputc(',', c->f);
        }
        for (size_t i = 0; i < n; i++) {
                Field field = { NULL, SCHEMA_ANY, false };
                char fallback[32];

                if (i < npos)
                        field = (Field){ pos[i].name, pos[i].schema, pos[i].wrapped };
                if (!field.name) {
                        snprintf(fallback, sizeof(fallback), "element-%zu", i);
                        field.name = fallback;
                }
                newline(c);
                if (c->fmt == RENDER_JSON)
                        fprintf(c->f, "\"%s\": ", field.name);
                else
                        fprintf(c->f, "/ %s / ", field.name);
                e = emit_field_value(c, r, &field);
                if (e < 0)
                        return e;
                if (i + 1 < n)
                        fputc(',', c->f);
        }
        c->indent--;
        newline(c);
        fputc(c->fmt == RENDER_JSON ? '}' : ']', c->f);
        return 0;
}

static int emit_teep_message(Ctx *c, TeepCborReader *r, size_t n) {
        TeepCborReader probe = *r;
        TeepCborItem type;
        const char *type_name = NULL;
        int e;

        e = teep_cbor_peek(&probe, &type);
        if (e < 0)
                return e;
        if (type.type == TEEP_CBOR_UINT)
                type_name = name_teep_message_type(type.value);
        if (!type_name)
                return emit_array(c, r, SCHEMA_ANY, n);

        if (c->fmt == RENDER_DIAG)
                fprintf(c->f, "/ %s / ", type_name);

        {
                Position qr[] = {
                        { "type", SCHEMA_ANY, false },
                        { "options", SCHEMA_TEEP_OPTIONS, false },
                        { "supported-teep-cipher-suites", SCHEMA_TEEP_SUITES, false },
                        { "supported-suit-cose-profiles", SCHEMA_ANY, false },
                        { "data-item-requested", SCHEMA_ANY, false },
                };
                Position other[] = {
                        { "type", SCHEMA_ANY, false },
                        { "options", SCHEMA_TEEP_OPTIONS, false },
                        { type.value == TEEP_TYPE_ERROR ? "err-code" : NULL, SCHEMA_ANY, false },
                };
                if (type.value == TEEP_TYPE_QUERY_REQUEST)
                        return emit_positional(c, r, n, qr, 5, "message", type_name);
                return emit_positional(c, r, n, other, 3, "message", type_name);
        }
}

static int emit_cose(Ctx *c, TeepCborReader *r, size_t n, RenderSchema payload_schema) {
        TeepCborReader probe = *r;
        TeepCborItem it;
        bool is_sign = false;
        int e;

        /* COSE_Sign's 4th element is an array of signers; COSE_Sign1's a bstr */
        for (int i = 0; i < 3 && n == 4; i++)
                if (teep_cbor_skip(&probe, NULL) < 0)
                        return emit_array(c, r, SCHEMA_ANY, n);
        if (n == 4 && teep_cbor_peek(&probe, &it) == 0 && it.type == TEEP_CBOR_ARRAY)
                is_sign = true;
        if (n != 4)
                return emit_array(c, r, SCHEMA_ANY, n);

        {
                Position pos[] = {
                        { "protected", SCHEMA_COSE_HEADERS, true },
                        { "unprotected", SCHEMA_COSE_HEADERS, false },
                        { "payload", payload_schema, true },
                        { is_sign ? "signatures" : "signature", is_sign ? SCHEMA_COSE_SIGNERS : SCHEMA_ANY, false },
                };
                e = emit_positional(c, r, n, pos, 4, "cose", is_sign ? "COSE_Sign" : "COSE_Sign1");
        }
        return e;
}

static int emit_suit_sequence(Ctx *c, TeepCborReader *r, size_t n) {
        int e;

        if (n % 2 != 0)
                return emit_array(c, r, SCHEMA_ANY, n);
        if (n == 0) {
                fputs("[]", c->f);
                return 0;
        }
        fputc('[', c->f);
        c->indent++;
        for (size_t i = 0; i < n; i += 2) {
                int64_t label;
                const char *name;
                Field arg = { NULL, SCHEMA_ANY, false };

                newline(c);
                e = teep_cbor_read_int(r, &label, NULL);
                if (e < 0)
                        return e;
                name = name_suit_command(label);
                if (label == 19 || label == 20)
                        arg.schema = SCHEMA_SUIT_PARAMETERS;
                else if (label == 15)
                        arg.schema = SCHEMA_SUIT_SEQUENCE_LIST;
                else if (label == 32) {
                        arg.schema = SCHEMA_SUIT_SEQUENCE;
                        arg.wrapped = true;
                }

                if (c->fmt == RENDER_JSON) {
                        fputs("{\"command\": ", c->f);
                        if (name)
                                render_json_string(c->f, name, strlen(name));
                        else
                                fprintf(c->f, "%" PRId64, label);
                        fputs(", \"argument\": ", c->f);
                } else {
                        if (name)
                                fprintf(c->f, "/ %s / ", name);
                        fprintf(c->f, "%" PRId64 ", ", label);
                }
                e = emit_field_value(c, r, &arg);
                if (e < 0)
                        return e;
                if (c->fmt == RENDER_JSON)
                        fputc('}', c->f);
                if (i + 2 < n)
                        fputc(',', c->f);
        }
        c->indent--;
        newline(c);
        fputc(']', c->f);
        return 0;
}

static int emit_component_id(Ctx *c, TeepCborReader *r, size_t n) {
        _cleanup_free_ char *text = NULL;
        int e;

        /* the textual form of design.md, from a copy of the reader positioned at the segments */
        (void)name_component_id(*r, n, &text);
        if (c->fmt == RENDER_JSON && text) {
                for (size_t i = 0; i < n; i++)
                        if (teep_cbor_skip(r, NULL) < 0)
                                return -EBADMSG;
                render_json_string(c->f, text, strlen(text));
                return 0;
        }
        e = emit_array(c, r, SCHEMA_ANY, n);
        if (e >= 0 && text)
                put_comment(c, text);
        return e;
}

static int emit(Ctx *c, TeepCborReader *r, RenderSchema s) {
        TeepCborItem it;
        int e;

        e = teep_cbor_read(r, &it);
        if (e < 0)
                return e;

        switch (it.type) {
        case TEEP_CBOR_TAG: {
                const char *name = name_cbor_tag(it.value);
                RenderSchema inner = s;
                if (it.value == COSE_TAG_SIGN1 || it.value == COSE_TAG_SIGN)
                        inner = s == SCHEMA_ANY || s == SCHEMA_PAYLOAD_AUTO ? SCHEMA_COSE : s;
                else if (it.value == SUIT_ENVELOPE_TAG)
                        inner = SCHEMA_SUIT_ENVELOPE;
                if (c->fmt == RENDER_JSON) {
                        fprintf(c->f, "{\"tag\": %" PRIu64 ", ", it.value);
                        if (name) {
                                fputs("\"tag-name\": ", c->f);
                                render_json_string(c->f, name, strlen(name));
                                fputs(", ", c->f);
                        }
                        fputs("\"value\": ", c->f);
                        e = emit(c, r, inner);
                        fputc('}', c->f);
                        return e;
                }
                if (name)
                        fprintf(c->f, "/ %s / ", name);
                fprintf(c->f, "%" PRIu64 "(", it.value);
                e = emit(c, r, inner);
                fputc(')', c->f);
                return e;
        }
        case TEEP_CBOR_ARRAY:
                if (s == SCHEMA_PAYLOAD_AUTO) {
                        TeepCborItem first;
                        s = it.value >= 2 && teep_cbor_peek(r, &first) == 0 && first.type == TEEP_CBOR_UINT
                                    ? SCHEMA_TEEP_MESSAGE
                                    : it.value == 4 ? SCHEMA_COSE : SCHEMA_ANY;
                }
                switch (s) {
                case SCHEMA_TEEP_MESSAGE:
                        return emit_teep_message(c, r, (size_t)it.value);
                case SCHEMA_COSE:
                        return emit_cose(c, r, (size_t)it.value, SCHEMA_PAYLOAD_AUTO);
                case SCHEMA_SUIT_AUTH: {
                        /* [digest, + signature]: distinct names so the JSON object has unique keys */
                        static const char *const names[] = { "digest", "signature-1", "signature-2",
                                                             "signature-3", "signature-4" };
                        Position pos[ELEMENTSOF(names)];
                        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                                pos[i] = (Position){ names[i], i == 0 ? SCHEMA_SUIT_DIGEST : SCHEMA_COSE, true };
                        return emit_positional(c, r, (size_t)it.value, pos, ELEMENTSOF(pos), NULL, NULL);
                }
                case SCHEMA_SUIT_DIGEST: {
                        Position pos[] = { { "algorithm-id", SCHEMA_ANY, false }, { "digest-bytes", SCHEMA_ANY, false } };
                        return emit_positional(c, r, (size_t)it.value, pos, 2, NULL, NULL);
                }
                case SCHEMA_COSE_SIGNER: {
                        Position pos[] = { { "protected", SCHEMA_COSE_HEADERS, true },
                                           { "unprotected", SCHEMA_COSE_HEADERS, false },
                                           { "signature", SCHEMA_ANY, false } };
                        return emit_positional(c, r, (size_t)it.value, pos, 3, NULL, NULL);
                }
                case SCHEMA_SUIT_SEQUENCE:
                        return emit_suit_sequence(c, r, (size_t)it.value);
                case SCHEMA_COMPONENT_ID:
                        return emit_component_id(c, r, (size_t)it.value);
                default:
                        return emit_array(c, r, s, (size_t)it.value);
                }
        case TEEP_CBOR_MAP:
                if (s == SCHEMA_PAYLOAD_AUTO)
                        s = SCHEMA_EAT;
                return emit_map(c, r, s, (size_t)it.value);
        default:
                return emit_scalar(c, &it);
        }
}

int render_item(FILE *f, RenderFormat format, TeepBuf in, RenderSchema schema) {
        Ctx c = { .f = f, .fmt = format };
        TeepCborReader r;
        int e;

        teep_cbor_reader_init(&r, in);
        e = emit(&c, &r, schema);
        fputc('\n', f);
        return e;
}

RenderSchema render_guess_schema(TeepBuf in) {
        TeepCborReader r;
        TeepCborItem it;

        teep_cbor_reader_init(&r, in);
        if (teep_cbor_read(&r, &it) < 0)
                return SCHEMA_ANY;
        if (it.type == TEEP_CBOR_TAG) {
                if (it.value == COSE_TAG_SIGN1 || it.value == COSE_TAG_SIGN)
                        return SCHEMA_COSE;
                if (it.value == SUIT_ENVELOPE_TAG)
                        return SCHEMA_SUIT_ENVELOPE;
                return SCHEMA_ANY;
        }
        if (it.type == TEEP_CBOR_ARRAY) {
                TeepCborItem first;
                if (teep_cbor_peek(&r, &first) == 0 && first.type == TEEP_CBOR_UINT)
                        return SCHEMA_TEEP_MESSAGE;
                if (it.value == 4)
                        return SCHEMA_COSE;
                return SCHEMA_ANY;
        }
        if (it.type == TEEP_CBOR_MAP) {
                TeepCborItem key;
                /* a SUIT envelope starts with key 2 (authentication) or 3 (manifest) */
                if (teep_cbor_peek(&r, &key) == 0 && key.type == TEEP_CBOR_UINT && (key.value == 2 || key.value == 3))
                        return SCHEMA_SUIT_ENVELOPE;
                return SCHEMA_EAT;
        }
        return SCHEMA_ANY;
}
