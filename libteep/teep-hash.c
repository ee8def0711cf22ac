/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-hash.c: teep_sha256() (declared in teep-cose.h) over nettle, apart from the COSE code */
#include <errno.h>
#include <nettle/sha2.h>
#include <string.h>

#include "teep-cose.h"

/* Its own object file on purpose: teep-installer hashes file names with it and links nothing
 * else of libteep's crypto, so it does not pull GnuTLS (about 2 MiB of resident memory per
 * process; docs/internals.md, "Footprint"). Same digest, same code path as GnuTLS's own
 * SHA-256 (nettle is its backend). */
int teep_sha256(TeepBuf in, uint8_t ret[32]) {
        struct sha256_ctx h;

        if (!ret || (!in.ptr && in.len > 0))
                return -EINVAL;
        sha256_init(&h);
        if (in.len > 0)
                sha256_update(&h, in.len, in.ptr);
        sha256_digest(&h, SHA256_DIGEST_SIZE, ret);
        explicit_bzero(&h, sizeof(h));
        return 0;
}
