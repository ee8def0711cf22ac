/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fault.h: the hostile mode of teep-tam: named faults the device stack's tests ask for */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * A fault is given as NAME[:ARG][@STEP[,STEP...]] (teep-tam --fault, repeatable). Each fault
 * changes only what it names; the steps say which of the TAM's answers it touches:
 *
 *   query-request  the answer to the empty POST that opens a session
 *   update         the answer to a QueryResponse
 *   end            the answer to Success/Error (normally 204)
 *   payload        a GET of a URI payload
 */
typedef enum TamStep {
        TAM_STEP_QUERY_REQUEST = 1 << 0,
        TAM_STEP_UPDATE = 1 << 1,
        TAM_STEP_END = 1 << 2,
        TAM_STEP_PAYLOAD = 1 << 3,
        TAM_STEP_ALL = (1 << 4) - 1,
} TamStep;

typedef enum TamFaultKind {
        TAM_FAULT_WRONG_SIGNATURE,  /* a bit of the COSE signature flipped */
        TAM_FAULT_UNTRUSTED_KEY,    /* signed with a fresh key the device cannot trust */
        TAM_FAULT_WRONG_TOKEN,      /* Update carries a token the device never sent */
        TAM_FAULT_REPLAY_UPDATE,    /* the device's previous Update, byte for byte, in a later session */
        TAM_FAULT_ROLLBACK,         /* offer the lowest sequence number in the TC dir, always */
        TAM_FAULT_DIGEST_MISMATCH,  /* integrated payload (update) or served payload (payload) altered */
        TAM_FAULT_OVERSIZED_BODY,   /* a body of ARG bytes (default 2 MiB + 1) instead of the message */
        TAM_FAULT_TRUNCATED_BODY,   /* Content-Length of the message, half of it sent, connection closed */
        TAM_FAULT_TRUNCATED_CBOR,   /* the first half of the message, with a matching Content-Length */
        TAM_FAULT_SLOW,             /* sleep ARG seconds (default 5, at most 120) before answering */
        TAM_FAULT_HTTP_500,         /* 500 Internal Server Error instead of the answer */
        TAM_FAULT_UNKNOWN_CRITICAL, /* a good signature under a critical header nobody understands */
        TAM_FAULT_MISSING_SIGNATURE, /* a COSE_Sign1 whose signature is an empty byte string */
        TAM_FAULT_WRONG_ROLE_KEY,    /* signed by --fault-key (e.g. the TC signer's key), not the TAM's */
        TAM_FAULT_UNKNOWN_ALG,       /* a good signature under an algorithm id nobody knows */
        TAM_FAULT_MISSING_TOKEN,     /* Update without a token */
        TAM_FAULT_BAD_CHALLENGE,     /* QueryRequest asks for attestation with a challenge of ARG bytes */
        TAM_FAULT_UNSUPPORTED_SUITE, /* QueryRequest offers only a cipher suite the device cannot use */
        TAM_FAULT_QUERY_LOOP,        /* every QueryResponse is answered with another QueryRequest */
        TAM_FAULT_HTTP_STATUS,       /* HTTP status ARG (3xx with a Location elsewhere) and no body */
        TAM_FAULT_WRONG_CONTENT_TYPE, /* the answer labelled text/html */
        TAM_FAULT_NESTED_CBOR,       /* ARG nested one-element arrays instead of the message */
        TAM_FAULT_SLOW_LORIS,        /* the answer trickled one byte every ARG ms */
        _TAM_FAULT_MAX,
} TamFaultKind;

typedef struct TamFault {
        bool enabled;
        unsigned steps; /* TamStep bits */
        uint64_t arg;
} TamFault;

typedef struct TamFaults {
        TamFault fault[_TAM_FAULT_MAX];
} TamFaults;

#define TAM_FAULT_SLOW_MAX_SEC      120u
#define TAM_FAULT_OVERSIZED_DEFAULT ((uint64_t)(2u << 20) + 1u)
#define TAM_FAULT_OVERSIZED_MAX     ((uint64_t)64u << 20)
#define TAM_FAULT_CHALLENGE_MAX     1024u
#define TAM_FAULT_NESTED_MAX        (1u << 20)
#define TAM_FAULT_TRICKLE_MAX_MS    60000u
/* where the http-status fault's redirects point: not the TAM, and nothing listens there */
#define TAM_FAULT_REDIRECT_LOCATION "http://127.0.0.1:9/elsewhere"


/* Parse one --fault value into f. Returns 0 or -EINVAL with a reason in errbuf. */
int tam_fault_parse(TamFaults *f, const char *spec, char *errbuf, size_t errbuf_size);

/* True if fault kind is enabled for step. */
static inline bool tam_fault_at(const TamFaults *f, TamFaultKind kind, TamStep step) {
        return f && f->fault[kind].enabled && (f->fault[kind].steps & step);
}

const char *tam_fault_to_string(TamFaultKind kind);
const char *tam_step_to_string(TamStep step);
/* A comma-separated list of the fault names, for --help. */
const char *tam_fault_names(void);
