/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* render.h: print TEEP, COSE, SUIT and EAT structures as annotated diagnostic notation or JSON */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "teep-cbor.h"

/* What a CBOR item is expected to be; decides the names printed for its fields. */
typedef enum RenderSchema {
        SCHEMA_ANY,
        SCHEMA_COSE,              /* COSE_Sign1 / COSE_Sign (tagged or not) around something */
        SCHEMA_COSE_HEADERS,
        SCHEMA_COSE_SIGNERS,
        SCHEMA_COSE_SIGNER,
        SCHEMA_TEEP_MESSAGE,
        SCHEMA_TEEP_OPTIONS,
        SCHEMA_TEEP_SUITES,
        SCHEMA_REQUESTED_TC,      /* requested-tc-info */
        SCHEMA_REQUESTED_TC_LIST,
        SCHEMA_TC_LIST,
        SCHEMA_SYSTEM_PROPERTY,   /* tc-list entry: system-property-claims */
        SCHEMA_COMPONENT_ID,
        SCHEMA_COMPONENT_LIST,
        SCHEMA_MANIFEST_LIST,     /* [+ bstr .cbor SUIT_Envelope] */
        SCHEMA_SUIT_ENVELOPE,
        SCHEMA_SUIT_AUTH,
        SCHEMA_SUIT_DIGEST,
        SCHEMA_SUIT_MANIFEST,
        SCHEMA_SUIT_COMMON,
        SCHEMA_SUIT_DEPENDENCIES,
        SCHEMA_SUIT_DEPENDENCY,
        SCHEMA_SUIT_SEQUENCE,
        SCHEMA_SUIT_SEQUENCE_LIST, /* try-each */
        SCHEMA_SUIT_PARAMETERS,
        SCHEMA_EAT,
        SCHEMA_EAT_CNF,
        SCHEMA_PAYLOAD_AUTO,      /* a COSE payload: TEEP message or EAT, decided by shape */
        _SCHEMA_MAX,
} RenderSchema;

typedef enum RenderFormat {
        RENDER_DIAG,
        RENDER_JSON,
} RenderFormat;

/*
 * Print the item in `in` (already accepted by teep_cbor_check) as `schema` to f.
 * Byte strings that hold CBOR where the drafts say `bstr .cbor X` are opened and printed
 * as << ... >> (diag) or as nested objects (JSON). Returns 0 or -EBADMSG.
 */
int render_item(FILE *f, RenderFormat format, TeepBuf in, RenderSchema schema);

/* Guess the schema of a top-level input: COSE, SUIT envelope, TEEP message or EAT. */
RenderSchema render_guess_schema(TeepBuf in);

/* Write s as a JSON string literal (with quotes). */
void render_json_string(FILE *f, const char *s, size_t n);
