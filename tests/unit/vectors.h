/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vectors.h: load the shared TEEP/SUIT test vectors for the unit tests */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"

typedef struct Vector {
        uint8_t *data;
        size_t len;
} Vector;

/* Directory of the shared vectors ($TEEP_VECTORS, default ../shared/teep-vectors). */
const char *vectors_dir(void);

/*
 * Load a vector by path relative to the vectors dir ("draft-teep-protocol/query_request.hex").
 * .hex files are decoded; other files are returned as they are (NUL-terminated).
 * Fails the current criterion test when missing.
 */
Vector vector_load(const char *relpath);
/* Same, from tests/data ($TEEP_TEST_DATA). */
Vector testdata_load(const char *relpath);
void vector_free(Vector *v);

/* Decode test-literal hex into *owned (to free); fails the test on bad hex. */
TeepBuf hexbuf(const char *hex, uint8_t **owned);
/* Compare a view with hex text, or with a C string. */
bool buf_eq_hex(TeepBuf b, const char *hex);
bool buf_eq_str(TeepBuf b, const char *s);

static inline TeepBuf vector_buf(const Vector *v) {
        return TEEP_BUF(v->data, v->len);
}
