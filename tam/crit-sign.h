/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crit-sign.h: COSE_Sign1 with an unknown critical header, for the unknown-critical-header fault */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "teep-cose.h"

/*
 * Sign payload as a tagged COSE_Sign1 whose protected header is {1: alg, 2: [-65537],
 * -65537: true}: a valid signature a receiver must nevertheless refuse (RFC 9052 §3.1).
 * Returns 0 with a buffer to free(), -ENOKEY / -EINVAL / -ENOMEM.
 */
int tam_sign1_unknown_critical(const TeepKey *key, int64_t alg, TeepBuf payload, uint8_t **ret,
                               size_t *ret_len);

/*
 * Sign payload as a tagged COSE_Sign1 whose protected header is {1: header_alg}, whatever
 * algorithm the key really uses (the unknown-alg fault). Same returns.
 */
int tam_sign1_header_alg(const TeepKey *key, int64_t header_alg, TeepBuf payload, uint8_t **ret,
                         size_t *ret_len);
