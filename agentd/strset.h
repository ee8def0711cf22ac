/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strset.h: a set of strings for "have I seen this one?" over a list: O(1) each, not O(list) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STR_HASH_INIT 0xcbf29ce484222325ull

/* FNV-1a over s, continuing from h, with a separator: (h, "ab") then "c" is not "a" then "bc". */
uint64_t str_hash(uint64_t h, const char *s);

/* Keys are not copied: they must outlive the set. */
typedef struct StrSet {
        const char **keys;
        size_t mask;
        size_t n, max;
} StrSet;

/* Room for max keys (more are refused by strset_add with -E2BIG). -ENOMEM. */
int strset_init(StrSet *s, size_t max);
/* 1 if added, 0 if it was there already, -E2BIG past max. */
int strset_add(StrSet *s, const char *key);
bool strset_contains(const StrSet *s, const char *key);
void strset_done(StrSet *s);
