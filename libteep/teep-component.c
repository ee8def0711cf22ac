/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-component.c: SUIT component identifiers and their one-to-one textual names */

#include <stdlib.h>
#include <string.h>

#include "teep-component.h"

int teep_suit_component_id_read(TeepCborReader *r, TeepSuitComponentId *ret, TeepError *err) {
        TeepSuitComponentId id = {};
        const uint8_t *start = r->pos;
        size_t n;
        int k;

        k = teep_cbor_read_array(r, &n, err);
        if (k < 0)
                return teep_error_prefix(err, k, "component identifier");
        if (n > TEEP_COMPONENT_MAX_SEGMENTS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_COMPONENT,
                                      "component identifier: %zu segments, at most %d", n,
                                      TEEP_COMPONENT_MAX_SEGMENTS);
        for (size_t i = 0; i < n; i++) {
                TeepBuf seg;

                k = teep_cbor_read_bytes(r, &seg, err);
                if (k < 0)
                        return teep_error_set(err, k, TEEP_REASON_SUIT_COMPONENT,
                                              "component identifier: segment %zu is not a byte string", i);
                if (seg.len > TEEP_COMPONENT_MAX_SEGMENT_LEN)
                        return teep_error_set(err, -E2BIG, TEEP_REASON_SUIT_COMPONENT,
                                              "component identifier: segment %zu has %zu bytes, at most %d",
                                              i, seg.len, TEEP_COMPONENT_MAX_SEGMENT_LEN);
                id.segments[i] = seg;
        }
        id.n_segments = n;
        id.raw = TEEP_BUF(start, (size_t)(r->pos - start));
        *ret = id;
        return 0;
}

int teep_suit_component_id_decode(TeepBuf in, TeepSuitComponentId *ret, TeepError *err) {
        TeepCborReader r;
        TeepSuitComponentId id;
        int k;

        k = teep_cbor_check(in, NULL, err);
        if (k < 0)
                return k;
        teep_cbor_reader_init(&r, in);
        k = teep_suit_component_id_read(&r, &id, err);
        if (k < 0)
                return k;
        *ret = id;
        return 0;
}

void teep_suit_component_id_put(TeepCborWriter *w, const TeepSuitComponentId *id) {
        if (id->n_segments > TEEP_COMPONENT_MAX_SEGMENTS) {
                if (!w->error)
                        w->error = -EINVAL;
                return;
        }
        teep_cbor_put_array(w, id->n_segments);
        for (size_t i = 0; i < id->n_segments; i++)
                teep_cbor_put_buf(w, id->segments[i]);
}

int teep_suit_component_id_encode(const TeepSuitComponentId *id, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w;

        teep_cbor_writer_init(&w);
        teep_suit_component_id_put(&w, id);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}

bool teep_suit_component_id_equal(const TeepSuitComponentId *a, const TeepSuitComponentId *b) {
        if (a->n_segments != b->n_segments)
                return false;
        for (size_t i = 0; i < a->n_segments; i++)
                if (!teep_buf_eq(a->segments[i], b->segments[i]))
                        return false;
        return true;
}

/* ---- textual names ---- */

static const char hexdigits[] = "0123456789abcdef";

static bool char_is_plain(uint8_t c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
}

static int lower_hex_value(uint8_t c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Lower-case canonical UUID text: 8-4-4-4-12 hex digits. */
static bool text_is_uuid(const uint8_t *p, size_t n) {
        if (n != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (p[i] != '-')
                                return false;
                } else if (lower_hex_value(p[i]) < 0)
                        return false;
        }
        return true;
}

/* Whether a segment is written as its own bytes (see the header for the rules). */
static bool segment_is_plain(const uint8_t *p, size_t n) {
        if (n == 0 || n > TEEP_COMPONENT_MAX_SEGMENT_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_is_plain(p[i]))
                        return false;
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                return false;
        if (n >= 2 && p[0] == '0' && p[1] == 'x')
                return false;
        return !text_is_uuid(p, n);
}

/* Longest rendering of one segment: "0x" + 2 hex digits per byte. */
#define SEGMENT_TEXT_MAX (2 + 2 * TEEP_COMPONENT_MAX_SEGMENT_LEN)

/* Write the one textual form of a segment to out (NULL = only measure); returns its length. */
static size_t segment_render(const uint8_t *p, size_t n, char *out) {
        if (segment_is_plain(p, n)) {
                if (out)
                        memcpy(out, p, n);
                return n;
        }
        if (n == 16) {
                if (out) {
                        char *o = out;
                        for (size_t i = 0; i < 16; i++) {
                                if (i == 4 || i == 6 || i == 8 || i == 10)
                                        *o++ = '-';
                                *o++ = hexdigits[p[i] >> 4];
                                *o++ = hexdigits[p[i] & 0xf];
                        }
                }
                return 36;
        }
        if (out) {
                out[0] = '0';
                out[1] = 'x';
                for (size_t i = 0; i < n; i++) {
                        out[2 + 2 * i] = hexdigits[p[i] >> 4];
                        out[3 + 2 * i] = hexdigits[p[i] & 0xf];
                }
        }
        return 2 + 2 * n;
}

int teep_suit_component_id_to_string(const TeepBuf *segments, size_t n_segments, char **ret) {
        size_t total = 0;
        char *s, *o;

        if (!segments || !ret || n_segments == 0 || n_segments > TEEP_COMPONENT_MAX_SEGMENTS)
                return -EINVAL;
        for (size_t i = 0; i < n_segments; i++) {
                if (segments[i].len > TEEP_COMPONENT_MAX_SEGMENT_LEN ||
                    (segments[i].len > 0 && !segments[i].ptr))
                        return -EINVAL;
                total += segment_render(segments[i].ptr, segments[i].len, NULL) + 1;
        }

        s = malloc(total);
        if (!s)
                return -ENOMEM;
        o = s;
        for (size_t i = 0; i < n_segments; i++) {
                if (i > 0)
                        *o++ = '/';
                o += segment_render(segments[i].ptr, segments[i].len, o);
        }
        *o = '\0';
        *ret = s;
        return 0;
}

/* Parse one segment's text into out (at least TEEP_COMPONENT_MAX_SEGMENT_LEN bytes). */
static int segment_parse(const uint8_t *t, size_t n, uint8_t *out, size_t *ret_len) {
        char canonical[SEGMENT_TEXT_MAX];
        size_t len;

        if (n == 0 || n > SEGMENT_TEXT_MAX)
                return -EINVAL;

        if (n >= 2 && t[0] == '0' && t[1] == 'x') {
                if ((n - 2) % 2 != 0)
                        return -EINVAL;
                len = (n - 2) / 2;
                for (size_t i = 0; i < len; i++) {
                        int hi = lower_hex_value(t[2 + 2 * i]), lo = lower_hex_value(t[3 + 2 * i]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        out[i] = (uint8_t)(hi << 4 | lo);
                }
        } else if (text_is_uuid(t, n)) {
                size_t d = 0;
                for (size_t i = 0; i < 36; i++) {
                        int v = lower_hex_value(t[i]);
                        if (v < 0)
                                continue; /* a '-' */
                        if (d % 2 == 0)
                                out[d / 2] = (uint8_t)(v << 4);
                        else
                                out[d / 2] |= (uint8_t)v;
                        d++;
                }
                len = 16;
        } else {
                if (n > TEEP_COMPONENT_MAX_SEGMENT_LEN)
                        return -EINVAL;
                memcpy(out, t, n);
                len = n;
        }

        /* One-to-one: accept only the form teep_suit_component_id_to_string() would print. */
        if (len > TEEP_COMPONENT_MAX_SEGMENT_LEN || segment_render(out, len, NULL) != n)
                return -EINVAL;
        segment_render(out, len, canonical);
        if (memcmp(canonical, t, n) != 0)
                return -EINVAL;

        *ret_len = len;
        return 0;
}

int teep_suit_component_id_from_string(const char *s, uint8_t **ret, size_t *ret_len) {
        uint8_t seg[TEEP_COMPONENT_MAX_SEGMENT_LEN];
        const uint8_t *p, *end;
        size_t n_segments = 1;
        TeepCborWriter w;

        if (!s || !*s)
                return -EINVAL;
        p = (const uint8_t *)s;
        end = p + strlen(s);

        for (const uint8_t *q = p; q < end; q++)
                if (*q == '/')
                        n_segments++;
        if (n_segments > TEEP_COMPONENT_MAX_SEGMENTS)
                return -EINVAL;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, n_segments);
        for (;;) {
                const uint8_t *slash = memchr(p, '/', (size_t)(end - p));
                const uint8_t *seg_end = slash ? slash : end;
                size_t len;
                int k;

                k = segment_parse(p, (size_t)(seg_end - p), seg, &len);
                if (k < 0) {
                        teep_cbor_writer_reset(&w);
                        return k;
                }
                teep_cbor_put_bytes(&w, seg, len);
                if (!slash)
                        break;
                p = slash + 1;
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
