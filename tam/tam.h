/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam.h: the reference TAM's protocol side: sessions, verification, decisions, faults */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "teep-cose.h"

/*
 * The HTTP server (http.c) hands each POST body and each payload GET to this module and sends
 * back what it returns; nothing here knows about sockets, so the tests can drive it directly.
 *
 * Sessions. TEEP over HTTP has no session id on the wire. A session starts with an empty
 * POST, which the TAM answers with a QueryRequest carrying a fresh random token (in both
 * modes; in attestation mode also a fresh challenge). The device echoes the token in its
 * QueryResponse; the TAM's Update carries the same token, which binds the Update to this
 * session (an Update replayed from another session has another token), and the device
 * echoes it in Success/Error. Each step consumes the token: a QueryResponse is accepted once,
 * a Success/Error once. Which device it is comes from the signature alone: the key in the
 * device-keys directory that verifies the message. HTTP keep-alive is therefore not needed.
 * A QueryResponse without a token is matched by its EAT nonce (attestation mode), a
 * Success/Error without a token by the device key of a session waiting for one.
 *
 * HTTP status codes returned here:
 *   200  QueryRequest (to the empty POST) or Update (to a QueryResponse), application/teep+cbor
 *   204  nothing (more) to do: the exchange is over
 *   400  not a COSE_Sign1 TEEP message, not a message a device sends, or breaks its CDDL
 *   403  refused: no enrolled device key verifies the signature, the token (or challenge) is
 *        not one an open session waits for (unknown, already used or expired), or the
 *        Success/Error is signed by another device than the session's. (An Error from an
 *        enrolled device that matches no session is logged and answered 204: the device gave
 *        up, there is nothing to refuse.)
 *   404  GET of a payload that does not exist
 *   500  internal failure (or the http-500 fault)
 *   503  too many open sessions
 * Attestation failures of an otherwise valid QueryResponse (EAT signature, claims, nonce,
 * cnf) are answered with a signed Update that carries no manifests, err-code
 * ERR_ATTESTATION_REQUIRED (7) and an err-msg naming the failure.
 */

#define TAM_MAX_KEYS                    4
#define TAM_MAX_SESSIONS                1024
#define TAM_TOKEN_LEN                   16
#define TAM_CHALLENGE_LEN               32
/* /payload/NAME: read whole (a test TAM), up to what an agent with MaxPayloadSize=2G takes */
#define TAM_PAYLOAD_MAX                 ((size_t)2 << 30)
#define TAM_SESSION_TIMEOUT_DEFAULT_SEC 600u

typedef enum TamMode {
        TAM_MODE_TOKEN,       /* QueryRequest asks for trusted-components, freshness by token */
        TAM_MODE_ATTESTATION, /* also a challenge and the attestation bit; the EAT is verified */
} TamMode;

typedef struct TamConfig {
        TeepKey *keys[TAM_MAX_KEYS]; /* the TAM's signing keys; tam_new() takes them over */
        size_t n_keys;
        const char *tc_dir;          /* signed envelopes (*.suit), looked at per session (catalog.h) */
        const char *payload_dir;     /* files served at GET /payload/NAME (NULL: none) */
        const char *device_keys_dir; /* enrolled device public keys, read per message */
        const char *state_dir;       /* per-device state */
        TamMode mode;
        bool legacy; /* emit ES256/EdDSA (-7/-8) and the pre-RFC 9864 suites */
        uint64_t session_timeout_usec;
        const char *const *revoked; /* component names the TAM removes from devices (NULL-terminated) */
        TamFaults faults;
        TeepKey *fault_key;          /* the wrong-role-key fault signs with it; tam_new() takes it over */
        const char *transcript_dir;  /* when set: every POST body received is written there */
        const char *extra_manifest;  /* hostile: this file's bytes join every Update's manifest-list, as is */
} TamConfig;

typedef struct TamReply {
        unsigned status;
        uint8_t *body; /* malloc'd, or NULL */
        size_t body_len;
        const char *content_type;
        unsigned delay_sec; /* slow fault: wait this long before answering */
        bool truncate;      /* truncated-body fault: announce body_len, send half, close */
        unsigned trickle_ms; /* slow-loris fault: one byte every trickle_ms */
        const char *location; /* http-status fault with a 3xx: the Location header */
} TamReply;

typedef struct Tam Tam;

/* Copy the configuration (strings are duplicated; keys taken over and set to NULL in config). */
int tam_new(TamConfig *config, Tam **ret);
Tam *tam_free(Tam *t);
static inline void tam_freep(Tam **t) {
        if (*t)
                *t = tam_free(*t);
}

/* Process one POST body (len 0 starts a session). Thread-safe. Fills *ret (always). */
void tam_handle_post(Tam *t, const uint8_t *body, size_t len, TamReply *ret);

/* Serve GET /payload/NAME from the payload directory. Thread-safe. Fills *ret (always). */
void tam_handle_payload(Tam *t, const char *name, TamReply *ret);

void tam_reply_done(TamReply *r);

/* How often the TAM went back to its directories (tests): the TC directory's files gone
 * through and envelopes decoded (catalog.h, TamCatalogCache), the device keys loaded. */
typedef struct TamCounters {
        unsigned catalog_loads;
        unsigned catalog_decodes;
        unsigned device_key_loads;
} TamCounters;
void tam_counters(Tam *t, TamCounters *ret);

/* How many sessions are open (for tests and the exit log line). */
size_t tam_open_sessions(Tam *t);
