/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strset.c: see strset.h (open addressing, linear probing, at most half full) */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strset.h"

uint64_t str_hash(uint64_t h, const char *s) {
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
        return (h ^ 0xff) * 0x100000001b3ull;
}

int strset_init(StrSet *s, size_t max) {
        size_t cap = 16;

        while (cap < 2 * max)
                cap *= 2;
        *s = (StrSet){ .keys = calloc(cap, sizeof(char *)), .mask = cap - 1, .max = max };
        return s->keys ? 0 : -ENOMEM;
}

static size_t slot(const StrSet *s, const char *key) {
        size_t h = (size_t)str_hash(STR_HASH_INIT, key) & s->mask;

        while (s->keys[h] && strcmp(s->keys[h], key) != 0)
                h = (h + 1) & s->mask;
        return h;
}

int strset_add(StrSet *s, const char *key) {
        size_t h = slot(s, key);

        if (s->keys[h])
                return 0;
        if (s->n >= s->max)
                return -E2BIG;
        s->keys[h] = key;
        s->n++;
        return 1;
}

bool strset_contains(const StrSet *s, const char *key) {
        return s->keys[slot(s, key)] != NULL;
}

void strset_done(StrSet *s) {
        free(s->keys);
        *s = (StrSet){};
}
