/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-names.c: component identifiers <-> store file names (installer/names.c) */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "teep-component.h"

static const char draft_component[] = "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta";

/* A file name the store may create: nothing that leaves the directory or hides in it. */
static void assert_safe_file_name(const char *name) {
        size_t n = strlen(name);

        cr_assert(n >= 1 && n <= 255, "length %zu of '%s'", n, name);
        cr_assert_neq(name[0], '.', "'%s' starts with a dot", name);
        cr_assert(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                cr_assert(c != '/' && c >= 0x20 && c < 0x7f, "byte 0x%02x at %zu of '%s'", c, i, name);
        }
}

static char *map(const char *component) {
        char *name = NULL;
        int r = store_name_from_component(component, &name);
        cr_assert_eq(r, 0, "store_name_from_component(%s) = %d", component, r);
        return name;
}

static char *unmap(const char *name) {
        char *component = NULL;
        int r = store_component_from_name(name, &component);
        cr_assert_eq(r, 0, "store_component_from_name(%s) = %d", name, r);
        return component;
}

Test(names, draft_example_maps_to_plus_joined_name) {
        char *name = map(draft_component), *back;

        cr_assert_str_eq(name, "TEEP-Device+SecureFS+8d82573a-926d-4754-9353-32dc29997f74+ta");
        assert_safe_file_name(name);
        back = unmap(name);
        cr_assert_str_eq(back, draft_component);
        free(name);
        free(back);
}

Test(names, upper_case_hex_is_plain_text_not_bytes) {
        /* "0X61" and an upper-case UUID are plain segments (their ASCII bytes): each is its own
         * component and its own file, distinct from the bytes a lower-case spelling stands for. */
        char *a = map("0X61"), *b = map("8D82573A-926D-4754-9353-32DC29997F74"), *c = map("a");

        cr_assert_str_eq(a, "0X61");
        cr_assert_str_neq(a, c);
        cr_assert_str_eq(b, "8D82573A-926D-4754-9353-32DC29997F74");
        free(a);
        free(b);
        free(c);
}

Test(names, leading_dot_gets_a_plus_and_comes_back) {
        static const char *const cases[][2] = {
                { ".profile", "+.profile" },
                { ".teep-tmp-abcdef", "+.teep-tmp-abcdef" },  /* cannot pose as a temporary */
                { "...", "+..." },
                { ".a/.b", "+.a+.b" },
                { "a/.b", "a+.b" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *name = map(cases[i][0]), *back;
                cr_assert_str_eq(name, cases[i][1]);
                assert_safe_file_name(name);
                back = unmap(name);
                cr_assert_str_eq(back, cases[i][0]);
                free(name);
                free(back);
        }
}

Test(names, hostile_bytes_become_hex_segments) {
        /* "/.." as the bytes of one segment, NUL, newline, and a segment that is the UUID's
         * ASCII text (not its 16 bytes): each is a hex segment, harmless as a file name. */
        static const char *const cases[] = {
                "0x2f2e2e",
                "a/0x2f2e2e/b",
                "0x00",
                "0x0a0d",
                "0x",
                "0x2e",
                "0x2e2e",
                "0x38643832353733612d393236642d343735342d393335332d333264633239393937663734",
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *name = map(cases[i]), *back;
                assert_safe_file_name(name);
                back = unmap(name);
                cr_assert_str_eq(back, cases[i]);
                free(name);
                free(back);
        }
}

Test(names, refuses_what_is_not_a_component) {
        static const char *const bad[] = {
                "", ".", "..", "a/../b", "../x", "x/..", "a//b", "/a", "a/", "a b", "a\nb", "a\x01",
                "0x6162" /* is "ab" */, "0x4", "0xzz", "0x0A", "0x8d82573a926d4754935332dc29997f74",
                "a+b", "a\\b", "caf\xc3\xa9", "a/./b",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *name = NULL;
                int r = store_name_from_component(bad[i], &name);
                cr_assert_eq(r, -EINVAL, "'%s' gave %d", bad[i], r);
                cr_assert_null(name);
                cr_assert_eq(store_component_validate(bad[i]), -EINVAL);
        }
        cr_assert_eq(store_component_validate(NULL), -EINVAL);
}

Test(names, refuses_overlong_names_and_too_many_segments) {
        char text[600];
        char *name = NULL;

        /* 255 bytes is the limit for the file name, so 255 plain bytes pass and 256 do not. */
        memset(text, 'a', 255);
        text[255] = '\0';
        cr_assert_eq(store_name_from_component(text, &name), 0);
        assert_safe_file_name(name);
        free(name);
        name = NULL;

        /* ".aaa…" (255) needs one more byte for its '+': refused. */
        text[0] = '.';
        cr_assert_eq(store_name_from_component(text, &name), -ENAMETOOLONG);
        cr_assert_null(name);

        /* Many segments, each valid, together too long. */
        for (size_t i = 0; i < 15; i++)
                memcpy(text + i * 20, "abcdefghijklmnopqrs/", 20);
        memcpy(text + 300, "z", 2);
        cr_assert_eq(store_name_from_component(text, &name), -ENAMETOOLONG);

        /* A segment of 255 bytes as hex (512 characters) is a valid identifier but no file name. */
        text[0] = '0';
        text[1] = 'x';
        memset(text + 2, 'f', 510);
        text[512] = '\0';
        cr_assert_eq(store_component_validate(text), 0);
        cr_assert_eq(store_name_from_component(text, &name), -ENAMETOOLONG);

        /* 17 segments */
        strcpy(text, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q");
        cr_assert_eq(store_name_from_component(text, &name), -EINVAL);
}

Test(names, reverse_refuses_names_the_store_never_writes) {
        static const char *const bad[] = {
                "", ".", "..", ".teep-tmp-abcdefabcdef", ".teep-owner-x", ".hidden", "+", "+a", "++.a",
                "a+", "+.", "a++b", "0x6162", "a b", "A B", "x\n", "0x0A", "a/b", "+.a+",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *component = NULL;
                int r = store_component_from_name(bad[i], &component);
                cr_assert_eq(r, -EINVAL, "'%s' gave %d", bad[i], r);
                cr_assert_null(component);
        }
}

/* xorshift64*: reproducible pseudo-random ids; the seed is printed when a test fails. */
static uint64_t rng_state;

static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static uint64_t seed_from_env(void) {
        const char *e = getenv("TEEP_TEST_SEED");
        return e ? strtoull(e, NULL, 0) : UINT64_C(0x7465657020737421);
}

/* One random segment, biased towards the interesting shapes: short plain text made of the
 * characters that matter ('.', '-', '0', 'x'), 16-byte binary, raw bytes, empty. */
static size_t random_segment(uint8_t *out) {
        static const char tricky[] = ".-_0xaA9";
        size_t n;

        switch (rng() % 5) {
        case 0:
                n = 1 + rng() % 4;
                for (size_t i = 0; i < n; i++)
                        out[i] = (uint8_t)tricky[rng() % (sizeof(tricky) - 1)];
                return n;
        case 1:
                n = 16;
                break;
        case 2:
                n = rng() % 6;
                break;
        case 3:
                n = 1 + rng() % 12;
                for (size_t i = 0; i < n; i++)
                        out[i] = (uint8_t)("abcdefghij-._0123456789"[rng() % 23]);
                return n;
        default:
                n = rng() % 40;
                break;
        }
        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t)rng();
        return n;
}

typedef struct Pair {
        char *component;
        char *file;
} Pair;

static int pair_by_file(const void *a, const void *b) {
        return strcmp(((const Pair *)a)->file, ((const Pair *)b)->file);
}

Test(names, random_identifiers_map_injectively_and_round_trip) {
        enum { N = 20000 };
        uint8_t storage[TEEP_COMPONENT_MAX_SEGMENTS][64];
        Pair *pairs = calloc(N, sizeof(Pair));
        size_t n_pairs = 0, n_long = 0;
        uint64_t seed = seed_from_env();

        cr_assert_not_null(pairs);
        rng_state = seed;
        for (size_t k = 0; k < N; k++) {
                TeepBuf segs[TEEP_COMPONENT_MAX_SEGMENTS];
                size_t n_segs = 1 + rng() % 4 + (rng() % 8 == 0 ? rng() % 12 : 0);
                char *text = NULL, *file = NULL, *back = NULL;
                int r;

                for (size_t s = 0; s < n_segs; s++) {
                        size_t len = random_segment(storage[s]);
                        segs[s] = TEEP_BUF(storage[s], len);
                }
                cr_assert_eq(teep_suit_component_id_to_string(segs, n_segs, &text), 0);

                r = store_name_from_component(text, &file);
                if (r == -ENAMETOOLONG) {
                        cr_assert_gt(strlen(text) + (text[0] == '.'), 255, "seed %#llx: '%s' refused as too long",
                                     (unsigned long long)seed, text);
                        n_long++;
                        free(text);
                        continue;
                }
                cr_assert_eq(r, 0, "seed %#llx: '%s' -> %d", (unsigned long long)seed, text, r);
                assert_safe_file_name(file);
                cr_assert_eq(store_component_from_name(file, &back), 0, "seed %#llx: '%s' does not map back",
                             (unsigned long long)seed, file);
                cr_assert_str_eq(back, text, "seed %#llx", (unsigned long long)seed);
                free(back);
                pairs[n_pairs++] = (Pair){ text, file };
        }

        /* Injective: equal file names only for equal identifiers. */
        qsort(pairs, n_pairs, sizeof(Pair), pair_by_file);
        for (size_t k = 1; k < n_pairs; k++)
                if (strcmp(pairs[k - 1].file, pairs[k].file) == 0)
                        cr_assert_str_eq(pairs[k - 1].component, pairs[k].component,
                                         "seed %#llx: two identifiers share '%s'", (unsigned long long)seed,
                                         pairs[k].file);
        cr_assert_gt(n_pairs, N / 2, "the generator mostly produced overlong names (%zu)", n_long);
        for (size_t k = 0; k < n_pairs; k++) {
                free(pairs[k].component);
                free(pairs[k].file);
        }
        free(pairs);
}

Test(names, random_file_names_never_map_to_something_else) {
        /* The reverse direction over arbitrary short names: whatever it accepts, the forward
         * mapping must turn back into exactly that name. */
        static const char alphabet[] = "+.-_0xab9/f\n";
        uint64_t seed = seed_from_env() ^ 0x5a5a;

        rng_state = seed;
        for (unsigned k = 0; k < 50000; k++) {
                char name[12], *component = NULL, *again = NULL;
                size_t n = 1 + rng() % (sizeof(name) - 1);

                for (size_t i = 0; i < n; i++)
                        name[i] = alphabet[rng() % (sizeof(alphabet) - 1)];
                name[n] = '\0';
                if (store_component_from_name(name, &component) < 0)
                        continue;
                assert_safe_file_name(name);
                cr_assert_eq(store_name_from_component(component, &again), 0);
                cr_assert_str_eq(again, name, "seed %#llx", (unsigned long long)seed);
                free(component);
                free(again);
        }
}

Test(names, optee_uuid_is_the_one_uuid_segment) {
        char uuid[STORE_UUID_STRING_LEN + 1];

        cr_assert_eq(store_optee_uuid_from_component(draft_component, uuid), 0);
        cr_assert_str_eq(uuid, "8d82573a-926d-4754-9353-32dc29997f74");
        cr_assert_eq(store_optee_uuid_from_component("8d82573a-926d-4754-9353-32dc29997f74", uuid), 0);
        cr_assert_str_eq(uuid, "8d82573a-926d-4754-9353-32dc29997f74");

        /* no UUID; two UUIDs; UUID text as hex bytes; upper case; not a component at all */
        cr_assert_eq(store_optee_uuid_from_component("TEEP-Device/SecureFS/ta", uuid), -EINVAL);
        cr_assert_eq(store_optee_uuid_from_component(
                             "8d82573a-926d-4754-9353-32dc29997f74/00000000-0000-0000-0000-000000000001", uuid),
                     -EINVAL);
        cr_assert_eq(store_optee_uuid_from_component("0x8d82573a926d4754935332dc29997f74", uuid), -EINVAL,
                     "16 bytes written as hex are not canonical, hence not a component");
        cr_assert_eq(store_optee_uuid_from_component("8D82573A-926D-4754-9353-32DC29997F74", uuid), -EINVAL);
        cr_assert_eq(store_optee_uuid_from_component("../8d82573a-926d-4754-9353-32dc29997f74", uuid), -EINVAL);
        /* 16 bytes of plain text are plain text, not a UUID */
        cr_assert_eq(store_optee_uuid_from_component("abcdefghijklmnop", uuid), -EINVAL);
}

Test(names, layouts_by_name) {
        StoreLayout l = _STORE_LAYOUT_MAX;

        cr_assert_eq(store_layout_from_string("default", &l), 0);
        cr_assert_eq(l, STORE_LAYOUT_DEFAULT);
        cr_assert_eq(store_layout_from_string("optee", &l), 0);
        cr_assert_eq(l, STORE_LAYOUT_OPTEE);
        cr_assert_eq(store_layout_from_string("OPTEE", &l), -EINVAL);
        cr_assert_eq(store_layout_from_string("", &l), -EINVAL);
        cr_assert_str_eq(store_layout_to_string(STORE_LAYOUT_OPTEE), "optee");
        cr_assert_null(store_layout_to_string(_STORE_LAYOUT_MAX));
}
