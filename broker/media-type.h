/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-type.h: which Content-Type of a TAM's response the broker relays to the agent */
#pragma once

#define TEEP_MEDIA_TYPE "application/teep+cbor"

typedef enum MediaTypeVerdict {
        MEDIA_TYPE_TEEP,      /* application/teep+cbor (parameters and case ignored) */
        MEDIA_TYPE_TOLERATED, /* another label TAMs use for TEEP bytes, or none at all */
        MEDIA_TYPE_REFUSED,   /* obviously not a TEEP message: text, JSON, HTML, ... */
} MediaTypeVerdict;

/*
 * Classify a response's Content-Type (NULL or "" when the TAM sent none). The broker never
 * parses the body: the agent validates every byte. The check only stops the agent being fed
 * an error page or a captive portal's HTML as if it were a TAM message. Tolerated: the TEEP
 * type with parameters ("; charset=..."), application/teep+cose (tamproto's signed endpoint),
 * application/teep, application/cbor, application/cose, application/octet-stream, and no
 * Content-Type at all. Everything else is refused.
 */
MediaTypeVerdict media_type_classify(const char *content_type);
const char *media_type_verdict_to_string(MediaTypeVerdict v);
