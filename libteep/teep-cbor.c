/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-cbor.c: bounded CBOR reading and deterministic CBOR writing on libcbor */

#include <cbor.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "teep-cbor.h"

const TeepCborLimits teep_cbor_limits_default = {
        .max_depth = 16,
        .max_container = 4096,
        .max_items = 65536,
        .max_string = 16 * 1024 * 1024,
};

/* The hard ceiling for max_depth: the checker keeps its stack on the C stack. */
#define TEEP_CBOR_DEPTH_CEILING 64u

const char *teep_cbor_type_to_string(TeepCborType t) {
        static const char *const names[] = {
                [TEEP_CBOR_UINT] = "uint",   [TEEP_CBOR_NEGINT] = "nint",     [TEEP_CBOR_BYTES] = "bstr",
                [TEEP_CBOR_TEXT] = "tstr",   [TEEP_CBOR_ARRAY] = "array",     [TEEP_CBOR_MAP] = "map",
                [TEEP_CBOR_TAG] = "tag",     [TEEP_CBOR_FALSE] = "false",     [TEEP_CBOR_TRUE] = "true",
                [TEEP_CBOR_NULL] = "null",   [TEEP_CBOR_UNDEFINED] = "undefined", [TEEP_CBOR_FLOAT] = "float",
        };
        if ((unsigned)t < sizeof(names) / sizeof(names[0]) && names[t])
                return names[t];
        return "?";
}

/* ---- head decoding through libcbor's streaming decoder (no allocation) ---- */

typedef struct HeadCtx {
        TeepCborItem *item;
        bool got;
        bool indefinite;
} HeadCtx;

static void set(HeadCtx *c, TeepCborType t, uint64_t v) {
        c->item->type = t;
        c->item->value = v;
        c->got = true;
}
static void cb_u8(void *c, uint8_t v) { set(c, TEEP_CBOR_UINT, v); }
static void cb_u16(void *c, uint16_t v) { set(c, TEEP_CBOR_UINT, v); }
static void cb_u32(void *c, uint32_t v) { set(c, TEEP_CBOR_UINT, v); }
static void cb_u64(void *c, uint64_t v) { set(c, TEEP_CBOR_UINT, v); }
static void cb_n8(void *c, uint8_t v) { set(c, TEEP_CBOR_NEGINT, v); }
static void cb_n16(void *c, uint16_t v) { set(c, TEEP_CBOR_NEGINT, v); }
static void cb_n32(void *c, uint32_t v) { set(c, TEEP_CBOR_NEGINT, v); }
static void cb_n64(void *c, uint64_t v) { set(c, TEEP_CBOR_NEGINT, v); }
static void cb_bytes(void *ctx, cbor_data p, size_t n) {
        HeadCtx *c = ctx;
        set(c, TEEP_CBOR_BYTES, n);
        c->item->str = TEEP_BUF(p, n);
}
static void cb_text(void *ctx, cbor_data p, size_t n) {
        HeadCtx *c = ctx;
        set(c, TEEP_CBOR_TEXT, n);
        c->item->str = TEEP_BUF(p, n);
}
static void cb_indef(void *ctx) {
        HeadCtx *c = ctx;
        c->indefinite = true;
        c->got = true;
}
static void cb_array(void *c, size_t n) { set(c, TEEP_CBOR_ARRAY, n); }
static void cb_map(void *c, size_t n) { set(c, TEEP_CBOR_MAP, n); }
static void cb_tag(void *c, uint64_t v) { set(c, TEEP_CBOR_TAG, v); }
static void cb_f4(void *ctx, float f) {
        HeadCtx *c = ctx;
        set(c, TEEP_CBOR_FLOAT, 0);
        c->item->fvalue = f;
}
static void cb_f8(void *ctx, double f) {
        HeadCtx *c = ctx;
        set(c, TEEP_CBOR_FLOAT, 0);
        c->item->fvalue = f;
}
static void cb_undef(void *c) { set(c, TEEP_CBOR_UNDEFINED, 0); }
static void cb_null(void *c) { set(c, TEEP_CBOR_NULL, 0); }
static void cb_bool(void *c, bool v) { set(c, v ? TEEP_CBOR_TRUE : TEEP_CBOR_FALSE, 0); }

static const struct cbor_callbacks head_callbacks = {
        .uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
        .negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
        .byte_string_start = cb_indef, .byte_string = cb_bytes,
        .string = cb_text, .string_start = cb_indef,
        .indef_array_start = cb_indef, .array_start = cb_array,
        .indef_map_start = cb_indef, .map_start = cb_map,
        .tag = cb_tag,
        .float2 = cb_f4, .float4 = cb_f4, .float8 = cb_f8,
        .undefined = cb_undef, .null = cb_null, .boolean = cb_bool,
        .indef_break = cb_indef,
};

/* Decode one head at p. Returns bytes consumed (> 0) or a negative errno with err filled. */
static int decode_head(const uint8_t *p, const uint8_t *end, TeepCborItem *ret, TeepError *err) {
        TeepCborItem item = {};
        HeadCtx ctx = { .item = &item };
        struct cbor_decoder_result res;

        if (p >= end)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "unexpected end of input");

        /*
         * libcbor 0.8 (Debian 12) refuses one-byte tag heads 0xc6..0xd4 as "unassigned" tags,
         * yet COSE_Sign1 is tag 18 (0xd2) and COSE_Mac0 17. A one-byte tag head is trivial, so
         * decode the whole 0xc0..0xd7 range here; everything else goes through libcbor.
         */
        if (*p >= 0xc0 && *p <= 0xd7) {
                item.type = TEEP_CBOR_TAG;
                item.value = *p & 0x1f;
                item.head = TEEP_BUF(p, 1);
                *ret = item;
                return 1;
        }

        res = cbor_stream_decode(p, (size_t)(end - p), &head_callbacks, &ctx);
        if (res.status == CBOR_DECODER_NEDATA)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED,
                                      "item at offset %zu needs more bytes than remain", (size_t)0);
        if (res.status != CBOR_DECODER_FINISHED || !ctx.got || res.read == 0 || res.read > (size_t)(end - p))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "not well-formed CBOR (initial byte 0x%02x)", *p);
        if (ctx.indefinite)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_INDEFINITE,
                                      "indefinite-length items are not accepted (initial byte 0x%02x)", *p);

        item.head = TEEP_BUF(p, res.read);
        *ret = item;
        return (int)(res.read > INT32_MAX ? INT32_MAX : res.read);
}

/* ---- whole-input check ---- */

int teep_cbor_check(TeepBuf in, const TeepCborLimits *limits, TeepError *err) {
        /* remaining[d] = items still expected at depth d (depth 0 = the top level) */
        uint64_t remaining[TEEP_CBOR_DEPTH_CEILING + 1];
        const uint8_t *p = in.ptr, *end = in.ptr + in.len;
        unsigned depth = 0, max_depth;
        size_t items = 0;

        if (!limits)
                limits = &teep_cbor_limits_default;
        max_depth = limits->max_depth < TEEP_CBOR_DEPTH_CEILING ? limits->max_depth : TEEP_CBOR_DEPTH_CEILING;

        if (!in.ptr || in.len == 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "empty input");

        remaining[0] = 1;
        for (;;) {
                TeepCborItem item;
                uint64_t children = 0;
                int n;

                while (depth > 0 && remaining[depth] == 0)
                        depth--;
                if (depth == 0 && remaining[0] == 0)
                        break;

                n = decode_head(p, end, &item, err);
                if (n < 0) {
                        (void)teep_error_prefix(err, n, "offset %zu", (size_t)(p - in.ptr));
                        return n;
                }
                p += item.head.len;
                remaining[depth]--;

                if (++items > limits->max_items)
                        return teep_error_set(err, -E2BIG, TEEP_REASON_CBOR_ITEMS,
                                              "more than %zu data items", limits->max_items);

                switch (item.type) {
                case TEEP_CBOR_BYTES:
                case TEEP_CBOR_TEXT:
                        if (item.value > limits->max_string)
                                return teep_error_set(err, -E2BIG, TEEP_REASON_CBOR_LENGTH,
                                                      "offset %zu: %s of %" PRIu64 " bytes exceeds the limit of %zu",
                                                      (size_t)(item.head.ptr - in.ptr), teep_cbor_type_to_string(item.type),
                                                      item.value, limits->max_string);
                        break;
                case TEEP_CBOR_ARRAY:
                case TEEP_CBOR_MAP:
                        if (item.value > limits->max_container)
                                return teep_error_set(err, -E2BIG, TEEP_REASON_CBOR_ITEMS,
                                                      "offset %zu: %s of %" PRIu64 " elements exceeds the limit of %zu",
                                                      (size_t)(item.head.ptr - in.ptr), teep_cbor_type_to_string(item.type),
                                                      item.value, limits->max_container);
                        children = item.type == TEEP_CBOR_MAP ? item.value * 2 : item.value;
                        /* every element needs at least one byte: refuse counts the input cannot hold */
                        if (children > (uint64_t)(end - p))
                                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED,
                                                      "offset %zu: %s declares %" PRIu64 " elements, only %zu bytes remain",
                                                      (size_t)(item.head.ptr - in.ptr), teep_cbor_type_to_string(item.type),
                                                      item.value, (size_t)(end - p));
                        break;
                case TEEP_CBOR_TAG:
                        children = 1;
                        break;
                default:
                        break;
                }

                if (children > 0) {
                        if (depth + 1 > max_depth)
                                return teep_error_set(err, -E2BIG, TEEP_REASON_CBOR_DEPTH,
                                                      "offset %zu: nesting deeper than %u",
                                                      (size_t)(item.head.ptr - in.ptr), max_depth);
                        remaining[++depth] = children;
                }
        }

        if (p != end)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRAILING,
                                      "%zu trailing bytes after the CBOR item", (size_t)(end - p));
        return 0;
}

/* ---- reader ---- */

void teep_cbor_reader_init(TeepCborReader *r, TeepBuf in) {
        r->start = in.ptr;
        r->pos = in.ptr;
        r->end = in.ptr + in.len;
}

int teep_cbor_peek(const TeepCborReader *r, TeepCborItem *ret) {
        int n = decode_head(r->pos, r->end, ret, NULL);
        return n < 0 ? n : 0;
}

int teep_cbor_read(TeepCborReader *r, TeepCborItem *ret) {
        int n = decode_head(r->pos, r->end, ret, NULL);
        if (n < 0)
                return n;
        r->pos += ret->head.len;
        return 0;
}

int teep_cbor_skip(TeepCborReader *r, TeepBuf *ret_raw) {
        const uint8_t *start = r->pos;
        uint64_t pending = 1;
        unsigned guard = 0;

        /* Iterative: count the items still owed instead of recursing, so depth costs no stack. */
        while (pending > 0) {
                TeepCborItem item;
                int k = teep_cbor_read(r, &item);
                if (k < 0)
                        return k;
                pending--;
                switch (item.type) {
                case TEEP_CBOR_ARRAY:
                case TEEP_CBOR_MAP: {
                        uint64_t c = item.type == TEEP_CBOR_MAP ? item.value * 2 : item.value;
                        if (c > (uint64_t)(r->end - r->pos))
                                return -EBADMSG;
                        pending += c;
                        break;
                }
                case TEEP_CBOR_TAG:
                        pending++;
                        break;
                default:
                        break;
                }
                if (++guard == 0)
                        return -E2BIG;
        }
        if (ret_raw)
                *ret_raw = TEEP_BUF(start, (size_t)(r->pos - start));
        return 0;
}

static int read_expect(TeepCborReader *r, TeepCborType want, TeepCborItem *ret, TeepError *err) {
        TeepCborItem item;
        int k = teep_cbor_peek(r, &item);
        if (k < 0)
                return teep_error_set(err, k, TEEP_REASON_CBOR_MALFORMED, "expected %s, found malformed CBOR",
                                      teep_cbor_type_to_string(want));
        if (item.type != want)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TYPE, "expected %s, found %s",
                                      teep_cbor_type_to_string(want), teep_cbor_type_to_string(item.type));
        r->pos += item.head.len;
        *ret = item;
        return 0;
}

int teep_cbor_read_uint(TeepCborReader *r, uint64_t *ret, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_UINT, &it, err);
        if (k < 0)
                return k;
        *ret = it.value;
        return 0;
}

int teep_cbor_read_int(TeepCborReader *r, int64_t *ret, TeepError *err) {
        TeepCborItem it;
        int k = teep_cbor_peek(r, &it);
        if (k < 0)
                return teep_error_set(err, k, TEEP_REASON_CBOR_MALFORMED, "expected int, found malformed CBOR");
        if (it.type != TEEP_CBOR_UINT && it.type != TEEP_CBOR_NEGINT)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TYPE, "expected int, found %s",
                                      teep_cbor_type_to_string(it.type));
        if (it.value > (uint64_t)INT64_MAX)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_VALUE, "integer out of the 64-bit signed range");
        r->pos += it.head.len;
        *ret = it.type == TEEP_CBOR_UINT ? (int64_t)it.value : -1 - (int64_t)it.value;
        return 0;
}

int teep_cbor_read_bytes(TeepCborReader *r, TeepBuf *ret, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_BYTES, &it, err);
        if (k < 0)
                return k;
        *ret = it.str;
        return 0;
}

int teep_cbor_read_text(TeepCborReader *r, TeepBuf *ret, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_TEXT, &it, err);
        if (k < 0)
                return k;
        if (!teep_utf8_is_valid(it.str)) {
                r->pos -= it.head.len;
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_VALUE, "text string is not valid UTF-8");
        }
        *ret = it.str;
        return 0;
}

int teep_cbor_read_array(TeepCborReader *r, size_t *ret_count, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_ARRAY, &it, err);
        if (k < 0)
                return k;
        /* each element needs at least one byte */
        if (it.value > (uint64_t)(r->end - r->pos))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "array longer than the input");
        *ret_count = (size_t)it.value;
        return 0;
}

int teep_cbor_read_map(TeepCborReader *r, size_t *ret_count, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_MAP, &it, err);
        if (k < 0)
                return k;
        if (it.value > (uint64_t)(r->end - r->pos) / 2)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TRUNCATED, "map longer than the input");
        *ret_count = (size_t)it.value;
        return 0;
}

int teep_cbor_read_tag(TeepCborReader *r, uint64_t *ret, TeepError *err) {
        TeepCborItem it;
        int k = read_expect(r, TEEP_CBOR_TAG, &it, err);
        if (k < 0)
                return k;
        *ret = it.value;
        return 0;
}

int teep_cbor_read_bool(TeepCborReader *r, bool *ret, TeepError *err) {
        TeepCborItem it;
        int k = teep_cbor_peek(r, &it);
        if (k < 0)
                return teep_error_set(err, k, TEEP_REASON_CBOR_MALFORMED, "expected bool, found malformed CBOR");
        if (it.type != TEEP_CBOR_TRUE && it.type != TEEP_CBOR_FALSE)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_TYPE, "expected bool, found %s",
                                      teep_cbor_type_to_string(it.type));
        r->pos += it.head.len;
        *ret = it.type == TEEP_CBOR_TRUE;
        return 0;
}

int teep_cbor_read_null(TeepCborReader *r, TeepError *err) {
        TeepCborItem it;
        return read_expect(r, TEEP_CBOR_NULL, &it, err);
}

int teep_cbor_accept_tag(TeepCborReader *r, uint64_t tag) {
        TeepCborItem it;
        if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_TAG || it.value != tag)
                return 0;
        r->pos += it.head.len;
        return 1;
}

bool teep_utf8_is_valid(TeepBuf text) {
        const uint8_t *p = text.ptr, *end = text.ptr + text.len;

        while (p < end) {
                uint8_t c = *p;
                size_t n;
                uint32_t cp;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                if ((size_t)(end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* overlong forms, surrogates, beyond U+10FFFF */
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

/* ---- writer ---- */

#define TEEP_CBOR_WRITER_DEFAULT_MAX (64u * 1024u * 1024u)

void teep_cbor_writer_init(TeepCborWriter *w) {
        *w = (TeepCborWriter){};
}

static uint8_t *reserve(TeepCborWriter *w, size_t n) {
        size_t max = w->max ? w->max : TEEP_CBOR_WRITER_DEFAULT_MAX;

        if (w->error)
                return NULL;
        if (n > max || w->len > max - n) {
                w->error = -E2BIG;
                return NULL;
        }
        if (w->len + n > w->cap) {
                size_t cap = w->cap ? w->cap : 64;
                uint8_t *b;
                while (cap < w->len + n)
                        cap = cap > max / 2 ? max : cap * 2;
                b = realloc(w->buf, cap);
                if (!b) {
                        w->error = -ENOMEM;
                        return NULL;
                }
                w->buf = b;
                w->cap = cap;
        }
        return w->buf + w->len;
}

/* libcbor's encoders write into a bounded buffer; 9 bytes hold any head. */
#define PUT_HEAD(w, call)                                      \
        do {                                                   \
                uint8_t *_d = reserve((w), 9);                 \
                size_t _n;                                     \
                if (!_d)                                       \
                        return;                                \
                _n = (call);                                   \
                if (_n == 0) {                                 \
                        (w)->error = -EINVAL;                  \
                        return;                                \
                }                                              \
                (w)->len += _n;                                \
        } while (0)

void teep_cbor_put_uint(TeepCborWriter *w, uint64_t v) {
        PUT_HEAD(w, cbor_encode_uint(v, _d, 9));
}

void teep_cbor_put_int(TeepCborWriter *w, int64_t v) {
        if (v >= 0)
                PUT_HEAD(w, cbor_encode_uint((uint64_t)v, _d, 9));
        else
                PUT_HEAD(w, cbor_encode_negint((uint64_t)(-1 - v), _d, 9));
}

void teep_cbor_put_bytes_head(TeepCborWriter *w, size_t n) {
        PUT_HEAD(w, cbor_encode_bytestring_start(n, _d, 9));
}

void teep_cbor_put_raw(TeepCborWriter *w, TeepBuf raw) {
        uint8_t *d;
        if (raw.len == 0)
                return;
        d = reserve(w, raw.len);
        if (!d)
                return;
        memcpy(d, raw.ptr, raw.len);
        w->len += raw.len;
}

void teep_cbor_put_bytes(TeepCborWriter *w, const void *p, size_t n) {
        teep_cbor_put_bytes_head(w, n);
        teep_cbor_put_raw(w, TEEP_BUF(p, n));
}

void teep_cbor_put_buf(TeepCborWriter *w, TeepBuf b) {
        teep_cbor_put_bytes(w, b.ptr, b.len);
}

void teep_cbor_put_text(TeepCborWriter *w, const char *p, size_t n) {
        PUT_HEAD(w, cbor_encode_string_start(n, _d, 9));
        teep_cbor_put_raw(w, TEEP_BUF(p, n));
}

void teep_cbor_put_cstr(TeepCborWriter *w, const char *s) {
        teep_cbor_put_text(w, s, strlen(s));
}

void teep_cbor_put_array(TeepCborWriter *w, size_t count) {
        PUT_HEAD(w, cbor_encode_array_start(count, _d, 9));
}

void teep_cbor_put_map(TeepCborWriter *w, size_t pairs) {
        PUT_HEAD(w, cbor_encode_map_start(pairs, _d, 9));
}

void teep_cbor_put_tag(TeepCborWriter *w, uint64_t tag) {
        PUT_HEAD(w, cbor_encode_tag(tag, _d, 9));
}

void teep_cbor_put_bool(TeepCborWriter *w, bool v) {
        PUT_HEAD(w, cbor_encode_bool(v, _d, 9));
}

void teep_cbor_put_null(TeepCborWriter *w) {
        PUT_HEAD(w, cbor_encode_null(_d, 9));
}

void teep_cbor_writer_reset(TeepCborWriter *w) {
        free(w->buf);
        *w = (TeepCborWriter){};
}

int teep_cbor_writer_finish(TeepCborWriter *w, uint8_t **ret, size_t *ret_len) {
        int error = w->error;

        if (error < 0) {
                teep_cbor_writer_reset(w);
                return error;
        }
        if (!w->buf) {
                /* an empty encoding is legal only for callers that wrote nothing on purpose */
                w->buf = malloc(1);
                if (!w->buf)
                        return -ENOMEM;
        }
        *ret = w->buf;
        *ret_len = w->len;
        *w = (TeepCborWriter){};
        return 0;
}
