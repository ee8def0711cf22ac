/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-mutation.c: 10,000 random mutations of every vector through every decoder, never a crash */

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"
#include "vectors.h"

#define MUTATIONS_PER_VECTOR 10000

/* xorshift64*: deterministic, so a failure reproduces from the file name and index alone */
static uint64_t rng_state;
static uint64_t rnd(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545F4914F6CDD1DULL;
}
static size_t rnd_below(size_t n) {
        return n ? (size_t)(rnd() % n) : 0;
}

static uint64_t seed_of(const char *s) {
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 1099511628211ULL;
        return h ? h : 1;
}

/* CBOR heads that stress decoders: huge lengths, indefinite markers, tags, breaks */
static const uint8_t interesting[] = { 0x00, 0x17, 0x18, 0x1b, 0x20, 0x3b, 0x40, 0x5b, 0x5f, 0x60,
                                       0x7b, 0x80, 0x9b, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0xd2, 0xd8,
                                       0xdb, 0xf4, 0xf6, 0xf7, 0xfb, 0xff };

/* Apply 1..4 random edits to buf (capacity cap), returning the new length. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap) {
        unsigned edits = 1 + (unsigned)rnd_below(4);

        for (unsigned e = 0; e < edits; e++) {
                size_t pos = rnd_below(len ? len : 1);
                switch (rnd_below(7)) {
                case 0: /* flip a bit */
                        if (len)
                                buf[pos] ^= (uint8_t)(1u << rnd_below(8));
                        break;
                case 1: /* an interesting byte */
                        if (len)
                                buf[pos] = interesting[rnd_below(sizeof(interesting))];
                        break;
                case 2: /* a random byte */
                        if (len)
                                buf[pos] = (uint8_t)rnd();
                        break;
                case 3: /* truncate */
                        len = pos;
                        break;
                case 4: /* insert a byte */
                        if (len < cap) {
                                memmove(buf + pos + 1, buf + pos, len - pos);
                                buf[pos] = interesting[rnd_below(sizeof(interesting))];
                                len++;
                        }
                        break;
                case 5: /* delete a run */
                        if (len) {
                                size_t n = 1 + rnd_below(8);
                                if (n > len - pos)
                                        n = len - pos;
                                memmove(buf + pos, buf + pos + n, len - pos - n);
                                len -= n;
                        }
                        break;
                case 6: /* copy a chunk over another place */
                        if (len > 2) {
                                size_t from = rnd_below(len), n = 1 + rnd_below(16);
                                if (n > len - from)
                                        n = len - from;
                                if (n > len - pos)
                                        n = len - pos;
                                memmove(buf + pos, buf + from, n);
                        }
                        break;
                }
        }
        return len;
}

static const char *const vector_files[] = {
        "draft-teep-protocol/query_request.hex", "draft-teep-protocol/query_response.hex",
        "draft-teep-protocol/update.hex", "draft-teep-protocol/success.hex", "draft-teep-protocol/error.hex",
        "draft-teep-protocol/suit_uri.hex", "draft-teep-protocol/suit_integrated.hex",
        "draft-teep-protocol/suit_personalization.hex",
        "libteep/query_request.hex", "libteep/query_response.hex", "libteep/evidence.hex",
        "libteep/attestation_results.hex", "libteep/query_request_cose.hex", "libteep/query_response_cose.hex",
        "libteep/update_cose.hex", "libteep/success_cose.hex", "libteep/error_cose.hex",
        "libteep/evidence_cose.hex", "libteep/attestation_results_cose.hex",
        "libteep/legacy/query_request_es256_cose.hex", "libteep/negative/query_request_err1.hex",
        "libteep/negative/query_request_err2.hex", "libteep/negative/query_request_err3.hex",
        "suit-manifest-spec/example0.hex", "suit-manifest-spec/example1.hex",
        "derived/query_request_sign1_esp256.hex", "derived/query_request_sign1_ed25519.hex",
        "derived/query_request_sign_esp256_ed25519.hex", "derived/query_response_sign1_esp256.hex",
        "derived/success_sign1_esp256.hex", "derived/error_sign1_esp256.hex",
        "derived/update_install_suit_uri.hex", "derived/update_install_suit_uri_sign1_esp256.hex",
        "derived/update_unlink.hex", "derived/update_unlink_sign1_esp256.hex",
};

/* Run every target over MUTATIONS_PER_VECTOR mutations of one vector. */
static void mutate_vector(const char *file, size_t *ret_refused, size_t *ret_total) {
        Vector v = vector_load(file);
        size_t cap = v.len + 64;
        uint8_t *work = malloc(cap);

        cr_assert_not_null(work);
        rng_state = seed_of(file);
        for (unsigned i = 0; i < MUTATIONS_PER_VECTOR; i++) {
                size_t len;
                uint8_t *exact;

                memcpy(work, v.data, v.len);
                len = mutate(work, v.len, cap);
                /* exact-size heap copy: ASan reports a read even one byte past the end */
                exact = malloc(len ? len : 1);
                cr_assert_not_null(exact);
                memcpy(exact, work, len);
                for (size_t t = 0; t < fuzz_targets_count; t++) {
                        /* signature checks are the slow part: verify on every 8th mutation only */
                        if (strcmp(fuzz_targets[t].name, "cose") == 0 && i % 8 != 0)
                                continue;
                        if (fuzz_targets[t].run(exact, len) < 0)
                                (*ret_refused)++;
                        (*ret_total)++;
                }
                free(exact);
        }
        free(work);
        vector_free(&v);
}

Test(mutation, every_vector_ten_thousand_times, .timeout = 1200) {
        size_t refused = 0, total = 0;

        for (size_t i = 0; i < sizeof(vector_files) / sizeof(vector_files[0]); i++)
                mutate_vector(vector_files[i], &refused, &total);
        fuzz_targets_cleanup();
        cr_log_info("%zu decoder runs on mutated vectors, %zu refused", total, refused);
        /* the decoders must actually refuse most corrupted input, not wave it through */
        cr_assert_gt(refused, total / 2, "only %zu of %zu mutated inputs refused", refused, total);
}

Test(mutation, unmutated_vectors_still_decode) {
        /* the baseline the mutations start from: the targets accept the intact vectors */
        static const struct {
                const char *file;
                const char *target;
        } ok[] = {
                { "draft-teep-protocol/query_request.hex", "message" },
                { "draft-teep-protocol/update.hex", "message" },
                { "draft-teep-protocol/suit_uri.hex", "suit" },
                { "suit-manifest-spec/example1.hex", "suit" },
                { "derived/query_request_sign1_esp256.hex", "cose" },
                { "derived/query_request_sign1_ed25519.hex", "cose" },
                { "libteep/update_cose.hex", "cose" },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                Vector v = vector_load(ok[i].file);
                for (size_t t = 0; t < fuzz_targets_count; t++)
                        if (strcmp(fuzz_targets[t].name, ok[i].target) == 0)
                                cr_expect_geq(fuzz_targets[t].run(v.data, v.len), 0, "%s via %s", ok[i].file,
                                              ok[i].target);
                vector_free(&v);
        }
        fuzz_targets_cleanup();
}
