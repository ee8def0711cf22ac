/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sha256.h: streamed SHA-256 over nettle, for programs that need no other cryptography */
#pragma once

/* Why not gnutls_hash(): linking GnuTLS costs a process about 2 MiB of resident memory
 * before it hashes anything (its load-time global initialisation, p11-kit, libtasn1,
 * libunistring, gmp, hogweed and their relocations; docs/internals.md, "Footprint").
 * teep-installer needs nothing but SHA-256, and nettle (GnuTLS's own backend, with the
 * same SHA-NI/SSSE3 code) is that alone. Cannot fail. */

#include <nettle/sha2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sha256_ctx TeepSha256;

static inline void teep_sha256_init(TeepSha256 *h) {
        sha256_init(h);
}

static inline void teep_sha256_update(TeepSha256 *h, const void *data, size_t len) {
        sha256_update(h, len, data);
}

/* Writes the digest and wipes the state. */
static inline void teep_sha256_final(TeepSha256 *h, uint8_t ret[32]) {
        sha256_digest(h, 32, ret);
        explicit_bzero(h, sizeof(*h));
}
