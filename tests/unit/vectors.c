/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vectors.c: load the shared TEEP/SUIT test vectors for the unit tests */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "vectors.h"

const char *vectors_dir(void) {
        const char *d = getenv("TEEP_VECTORS");
        return d && *d ? d : "../shared/teep-vectors";
}

static Vector load_from(const char *dir, const char *relpath) {
        char path[4096];
        Vector v = {};
        int r;

        snprintf(path, sizeof(path), "%s/%s", dir, relpath);
        r = read_full_file(path, 64u << 20, &v.data, &v.len);
        cr_assert(r >= 0, "cannot read %s: %s", path, strerror(-r));
        if (strlen(relpath) > 4 && strcmp(relpath + strlen(relpath) - 4, ".hex") == 0) {
                size_t n;
                r = unhex_in_place(v.data, v.len, &n);
                cr_assert(r == 1, "%s is not hex", path);
                v.len = n;
        }
        return v;
}

Vector vector_load(const char *relpath) {
        return load_from(vectors_dir(), relpath);
}

Vector testdata_load(const char *relpath) {
        const char *d = getenv("TEEP_TEST_DATA");
        return load_from(d && *d ? d : "tests/data", relpath);
}

void vector_free(Vector *v) {
        free(v->data);
        v->data = NULL;
        v->len = 0;
}

TeepBuf hexbuf(const char *hex, uint8_t **owned) {
        size_t n;
        cr_assert_eq(unhex(hex, strlen(hex), owned, &n), 0, "bad hex in test: %s", hex);
        return TEEP_BUF(*owned, n);
}

bool buf_eq_hex(TeepBuf b, const char *hex) {
        _cleanup_free_ uint8_t *p = NULL;
        return teep_buf_eq(b, hexbuf(hex, &p));
}

bool buf_eq_str(TeepBuf b, const char *s) {
        return teep_buf_eq(b, TEEP_BUF(s, strlen(s)));
}
