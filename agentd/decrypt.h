/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* decrypt.h: encrypted SUIT payloads inside the agent (decrypt.c) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-errors.h"

#include "agent.h"

/*
 * Decrypt a detached ciphertext described by a SUIT_Encryption_Info with the device key,
 * chunk by chunk (libteep's streaming decryptor). Nothing is returned unless the whole
 * ciphertext decrypted and, for A128GCM, the tag verified. *ret (to free with
 * agent_plaintext_free()) holds the plaintext; it never leaves the process except towards the
 * installer. Returns 0 or libteep's error with err filled (TEEP_REASON_ENC_*).
 */
int agent_decrypt(Agent *a, TeepBuf encryption_info, TeepBuf ciphertext, uint8_t **ret, size_t *ret_len, TeepError *err);

/* Wipe and free a plaintext. Returns NULL. */
uint8_t *agent_plaintext_free(uint8_t *p, size_t len);

/*
 * agent_decrypt() for a ciphertext of ct_len bytes in a descriptor (a sealed memfd from the
 * broker), chunk by chunk: the plaintext goes into a new sealed memfd (*ret_fd, *ret_len bytes,
 * SHA-256 in ret_sha), never into the heap. Same returns as agent_decrypt().
 */
int agent_decrypt_fd(Agent *a, TeepBuf encryption_info, int ct_fd, uint64_t ct_len, int *ret_fd, uint64_t *ret_len,
                     uint8_t ret_sha[32], TeepError *err);
