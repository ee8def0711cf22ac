/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-cbor.h: bounded CBOR reading and deterministic CBOR writing on libcbor */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-errors.h"

/* A view of bytes owned by someone else (usually the input buffer). */
typedef struct TeepBuf {
        const uint8_t *ptr;
        size_t len;
} TeepBuf;

#define TEEP_BUF(p, n) ((TeepBuf){ .ptr = (const uint8_t *)(p), .len = (n) })
#define TEEP_BUF_NULL ((TeepBuf){ NULL, 0 })

static inline bool teep_buf_eq(TeepBuf a, TeepBuf b) {
        return a.len == b.len && (a.len == 0 || __builtin_memcmp(a.ptr, b.ptr, a.len) == 0);
}

/*
 * Hard limits, enforced by teep_cbor_check() over the whole input before any decoder
 * allocates anything: every length and count read from the wire is compared with these and
 * with the bytes that remain.
 */
typedef struct TeepCborLimits {
        unsigned max_depth;       /* nesting of arrays, maps and tags */
        size_t max_container;     /* elements of one array, or pairs of one map */
        size_t max_items;         /* data items in the whole input */
        size_t max_string;        /* bytes of one byte or text string */
} TeepCborLimits;

/* Defaults sized for TEEP messages carrying SUIT envelopes with integrated payloads. */
extern const TeepCborLimits teep_cbor_limits_default;

/*
 * Check that in holds exactly one well-formed, definite-length CBOR item within limits
 * (NULL = defaults). No allocation. Returns 0, or -EBADMSG / -E2BIG with err filled.
 */
int teep_cbor_check(TeepBuf in, const TeepCborLimits *limits, TeepError *err);

typedef enum TeepCborType {
        TEEP_CBOR_UINT,
        TEEP_CBOR_NEGINT,
        TEEP_CBOR_BYTES,
        TEEP_CBOR_TEXT,
        TEEP_CBOR_ARRAY,
        TEEP_CBOR_MAP,
        TEEP_CBOR_TAG,
        TEEP_CBOR_FALSE,
        TEEP_CBOR_TRUE,
        TEEP_CBOR_NULL,
        TEEP_CBOR_UNDEFINED,
        TEEP_CBOR_FLOAT,
} TeepCborType;

const char *teep_cbor_type_to_string(TeepCborType t);

/* One decoded item head. For containers the elements follow in the reader. */
typedef struct TeepCborItem {
        TeepCborType type;
        uint64_t value;     /* UINT: the value; NEGINT: n where the value is -1-n;
                             * BYTES/TEXT: length; ARRAY/MAP: element/pair count; TAG: tag number */
        double fvalue;      /* FLOAT */
        TeepBuf str;        /* BYTES/TEXT: the content */
        TeepBuf head;       /* the encoded head (and string content) of this item */
} TeepCborItem;

/*
 * A pull reader over a buffer already accepted by teep_cbor_check() (the reader re-checks
 * bounds on every step anyway, so it never reads past the end even on unchecked input).
 */
typedef struct TeepCborReader {
        const uint8_t *start;
        const uint8_t *pos;
        const uint8_t *end;
} TeepCborReader;

void teep_cbor_reader_init(TeepCborReader *r, TeepBuf in);
static inline bool teep_cbor_reader_at_end(const TeepCborReader *r) {
        return r->pos >= r->end;
}

/* Read one item head. Returns 0 or -EBADMSG. */
int teep_cbor_read(TeepCborReader *r, TeepCborItem *ret);
/* Look at the next item head without consuming it. */
int teep_cbor_peek(const TeepCborReader *r, TeepCborItem *ret);
/* Skip one complete item (with everything nested in it); ret_raw (optional) gets its encoding. */
int teep_cbor_skip(TeepCborReader *r, TeepBuf *ret_raw);

/* Typed reads: -EBADMSG (TEEP_REASON_CBOR_TYPE / _VALUE in err) when the next item differs. */
int teep_cbor_read_uint(TeepCborReader *r, uint64_t *ret, TeepError *err);
int teep_cbor_read_int(TeepCborReader *r, int64_t *ret, TeepError *err);
int teep_cbor_read_bytes(TeepCborReader *r, TeepBuf *ret, TeepError *err);
int teep_cbor_read_text(TeepCborReader *r, TeepBuf *ret, TeepError *err);
int teep_cbor_read_array(TeepCborReader *r, size_t *ret_count, TeepError *err);
int teep_cbor_read_map(TeepCborReader *r, size_t *ret_count, TeepError *err);
int teep_cbor_read_tag(TeepCborReader *r, uint64_t *ret, TeepError *err);
int teep_cbor_read_bool(TeepCborReader *r, bool *ret, TeepError *err);
int teep_cbor_read_null(TeepCborReader *r, TeepError *err);

/* If the next item is tag `tag`, consume it and return 1; otherwise 0. */
int teep_cbor_accept_tag(TeepCborReader *r, uint64_t tag);

/* True if text is valid UTF-8 (CBOR text strings must be). */
bool teep_utf8_is_valid(TeepBuf text);

/*
 * A writer that produces preferred (shortest), definite-length encodings. Errors are sticky:
 * the encoder calls put functions freely and checks once with teep_cbor_writer_finish().
 * Maps are written in the order the caller puts the keys; each encoder documents its order.
 */
typedef struct TeepCborWriter {
        uint8_t *buf;
        size_t len;
        size_t cap;
        size_t max;   /* refuse to grow beyond this (0 = 64 MiB) */
        int error;    /* first error, or 0 */
} TeepCborWriter;

void teep_cbor_writer_init(TeepCborWriter *w);
void teep_cbor_put_uint(TeepCborWriter *w, uint64_t v);
void teep_cbor_put_int(TeepCborWriter *w, int64_t v);
void teep_cbor_put_bytes(TeepCborWriter *w, const void *p, size_t n);
void teep_cbor_put_buf(TeepCborWriter *w, TeepBuf b);
void teep_cbor_put_text(TeepCborWriter *w, const char *p, size_t n);
void teep_cbor_put_cstr(TeepCborWriter *w, const char *s);
void teep_cbor_put_array(TeepCborWriter *w, size_t count);
void teep_cbor_put_map(TeepCborWriter *w, size_t pairs);
void teep_cbor_put_tag(TeepCborWriter *w, uint64_t tag);
void teep_cbor_put_bool(TeepCborWriter *w, bool v);
void teep_cbor_put_null(TeepCborWriter *w);
/* Append bytes that already are one encoded item. */
void teep_cbor_put_raw(TeepCborWriter *w, TeepBuf raw);
/* Append the head of a byte string of n bytes (the caller appends the content with put_raw). */
void teep_cbor_put_bytes_head(TeepCborWriter *w, size_t n);

/* Hand the buffer to the caller (to free()) or return the sticky error; the writer is reset. */
int teep_cbor_writer_finish(TeepCborWriter *w, uint8_t **ret, size_t *ret_len);
/* Drop the buffer (on error paths). */
void teep_cbor_writer_reset(TeepCborWriter *w);
