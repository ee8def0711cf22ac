/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* targets.h: one entry point per decoder, shared by the libFuzzer harnesses and the mutation test */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Each runs a decoder (and what naturally follows it: re-encoding, verification with a fixed
 * key, printing) on arbitrary bytes. They must never crash, leak or read out of bounds;
 * they return 0 when the input was accepted and a negative errno when it was refused.
 */
int fuzz_target_cbor(const uint8_t *data, size_t size);
int fuzz_target_cose(const uint8_t *data, size_t size);
int fuzz_target_message(const uint8_t *data, size_t size);
int fuzz_target_suit(const uint8_t *data, size_t size);
int fuzz_target_eat(const uint8_t *data, size_t size);
int fuzz_target_component(const uint8_t *data, size_t size);
int fuzz_target_key(const uint8_t *data, size_t size);
int fuzz_target_conf(const uint8_t *data, size_t size);
int fuzz_target_requests(const uint8_t *data, size_t size);
/* SUIT encryption-info decode + key agreement + decryption with a fixed key */
int fuzz_target_encrypt(const uint8_t *data, size_t size);
/* agent-target.c: the agent core's whole message path (a CBOR sequence of signed TAM messages),
 * the same with the signatures made by the harness (unsigned TEEP messages in), the state file */
int fuzz_target_agent(const uint8_t *data, size_t size);
int fuzz_target_agent_resign(const uint8_t *data, size_t size);
int fuzz_target_state(const uint8_t *data, size_t size);

typedef struct FuzzTarget {
        const char *name;
        int (*run)(const uint8_t *data, size_t size);
} FuzzTarget;

extern const FuzzTarget fuzz_targets[];
extern const size_t fuzz_targets_count;
/* agent, agent-resign: slow whole-path targets, kept apart (targets.c) */
extern const FuzzTarget fuzz_targets_whole[];
extern const size_t fuzz_targets_whole_count;

/* Release the fixed keys some targets verify with (for leak checkers at exit). */
void fuzz_targets_cleanup(void);
