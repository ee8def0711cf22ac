/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* payload-server.h: an HTTP server on 127.0.0.1 that serves payloads the way the tests need them */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * libmicrohttpd in its own threads, bound to 127.0.0.1 on a free port. Paths (N, M in bytes):
 *   /bytes/N      N bytes of payload_byte(0..N-1), with Content-Length
 *   /chunked/N    the same bytes without Content-Length (chunked encoding)
 *   /cut/N/M      announces N, sends the first M, then closes the connection
 *   /gate/N/M     N bytes; after the first M it waits until payload_server_open_gate() (at most
 *                 10 s, then it closes the connection)
 *   anything else 404
 * Counters and the gate live in shared memory, so a child of the test (run_as()) can open the
 * gate and the parent sees what the server did. An idle connection is dropped after 10 s.
 */
typedef struct PayloadServer PayloadServer;

typedef struct PayloadServerStats {
        unsigned requests;    /* payload requests (not 404s) */
        unsigned ended_whole; /* ... whose body went out whole */
        unsigned ended_early; /* ... that ended before that: cut, the client went away, gate timeout */
        uint64_t served;      /* bytes the last payload request handed to its connection */
} PayloadServerStats;

/* The test byte at offset i: it depends on more than the low byte, so a lost or repeated block
 * shows. */
static inline uint8_t payload_byte(uint64_t i) {
        return (uint8_t)(i ^ (i >> 8) ^ (i >> 19) ^ 0x5a);
}

PayloadServer *payload_server_start(void);
void payload_server_stop(PayloadServer *s);
unsigned short payload_server_port(const PayloadServer *s);
/* A snapshot of the counters. */
PayloadServerStats payload_server_stats(const PayloadServer *s);
void payload_server_open_gate(PayloadServer *s);
/* Wait until n payload requests have ended (whole or early), at most timeout_ms. */
bool payload_server_wait_ended(const PayloadServer *s, unsigned n, unsigned timeout_ms);
/* Whether data[0..len) are the test bytes from offset off on. */
bool payload_bytes_match(const uint8_t *data, size_t len, uint64_t off);
