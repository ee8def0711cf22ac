/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-agent.h: the agent harness's fixed world (keys, TAM, components), shared with fuzz-agent-seeds */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-cose.h"

#define FUZZ_AGENT_TAM_URI "http://tam.fuzz/tam"
#define FUZZ_AGENT_PAYLOAD_URI "https://tam.fuzz/payloads/tc.bin"
#define FUZZ_AGENT_URI_PAYLOAD "the payload behind the URI"
/* an image the fake store refuses to install (-EIO): the agent's undo path (Restore) */
#define FUZZ_AGENT_REFUSED_PAYLOAD "an image the store refuses"
/* installed in the baseline (seq 1) */
#define FUZZ_AGENT_COMPONENT "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"
/* requested in the baseline, not installed */
#define FUZZ_AGENT_COMPONENT2 "TEEP-Device/SecureFS/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/ta"
#define FUZZ_AGENT_MAX_MESSAGES 4
#define FUZZ_AGENT_MAX_ENVELOPES 16

extern const uint8_t fuzz_agent_vendor_id[16];
extern const uint8_t fuzz_agent_class_id[16];
/* the token of the exchange that installed the baseline (used once: replaying it is refused) */
extern const uint8_t fuzz_agent_baseline_token[16];

/* The fixed keys (private halves included), loaded on first use. */
const TeepKey *fuzz_agent_tam_key(void);
const TeepKey *fuzz_agent_signer_key(void);

/* Unsigned TEEP messages (free() the result): a QueryRequest (token may be NULL; bits are
 * TEEP_DATA_*, ATTESTATION adds a challenge), an Update with envelopes and unneeded names. */
int fuzz_agent_query_request(const uint8_t *token, size_t token_len, uint64_t bits, uint8_t **ret, size_t *ret_len);
int fuzz_agent_update(const uint8_t *token, size_t token_len, const TeepBuf *envelopes, size_t n,
                      const char *const *unneeded, uint8_t **ret, size_t *ret_len);
/* A SUIT envelope signed by the fixed TC signer: install (payload integrated under "#tc", or
 * fetched from uri) or, with unlink, a delete intent. */
int fuzz_agent_envelope(const char *component, uint64_t seq, const char *payload, const char *uri, bool unlink,
                        uint8_t **ret, size_t *ret_len);
/* COSE_Sign1 by the fixed TAM key. */
int fuzz_agent_sign(const uint8_t *payload, size_t len, uint8_t **ret, size_t *ret_len);

/* The harness's agent, back at the baseline (one TC installed, one request pending); its fake
 * store holds what the agent installed. For tests of the agent's limits (tests/limits). */
struct Agent;
struct Agent *fuzz_agent_reset(void);
/* agent_process_message() from the harness's TAM URI, the reply returned as is. */
int fuzz_agent_process(const uint8_t *msg, size_t len, uint8_t **ret, size_t *ret_len);
/* The agent's current state as its state file holds it (after an input ran). */
int fuzz_agent_state_text(char **ret, size_t *ret_len);

/* targets.h has the entry points; this frees the agent and removes its scratch directory. */
void fuzz_targets_agent_cleanup(void);
