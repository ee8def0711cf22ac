/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http-wire.h: what teep-brokerd and its HTTP helper (teep-broker-http) say to each other */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * teep-brokerd holds no HTTP stack: libcurl, its TLS library and the code that parses what the
 * network sends run in teep-broker-http, a child the broker starts when it first needs HTTP and
 * lets go once it has been idle for HTTP_HELPER_IDLE_USEC. The helper has no bus connection and
 * may not open one (its seccomp filter refuses AF_UNIX sockets); the broker keeps its bus and no
 * longer parses HTTP. Both are the same user and the same unit.
 *
 * Control socket (SOCK_SEQPACKET, the helper's fd 3): one packet per request, HttpWireStart and
 * the URI (NUL-terminated, the rest of the packet), carrying the request's own channel as its
 * one SCM_RIGHTS descriptor. Nothing comes back on it. Its end is the helper's end: the helper
 * exits when the broker closes it.
 *
 * GET_INTO carries a second descriptor, the write end of a pipe: the helper writes the body into
 * it itself (the broker's payload pipe to the agent: no copy through the broker), holds what the
 * pipe has no room for and pauses the transfer meanwhile, gives up when the pipe stays full for
 * the request timeout (-ENOBUFS) or its reader is gone (-EPIPE), and closes it before DONE.
 *
 * Channel (SOCK_STREAM, one per request): the broker writes the POST body (body_len bytes) and
 * nothing else; the helper answers with frames, HttpWireFrame and len bytes:
 *   HEADERS  a stream's 2xx headers are in: uint64_t content length (UINT64_MAX: none); for
 *            GET_INTO, sent before the first byte goes into the pipe
 *   DATA     a stream's body bytes, in order, at most HTTP_WIRE_DATA_MAX per frame (not GET_INTO)
 *   DONE     HttpWireDone, then content type, message and body (POST only) of those lengths;
 *            the last frame
 * The broker closing its end cancels the request. The socket's buffer is the stream's flow
 * control: a receiver that pauses stops reading, the helper pauses libcurl when the socket is
 * full, and a paused download holds at most one libcurl buffer and two socket buffers.
 */

#define HTTP_WIRE_VERSION 1u
#define HTTP_WIRE_URI_MAX 4096u
#define HTTP_WIRE_DATA_MAX (64u * 1024u)
#define HTTP_WIRE_TEXT_MAX 1024u       /* content type, message */
#define HTTP_WIRE_BODY_MAX (64u << 20) /* a POST body (a TEEP message) */
#define HTTP_HELPER_IDLE_USEC (10u * 1000000u)
#define HTTP_HELPER_NAME "teep-broker-http"

enum {
        HTTP_WIRE_POST = 1,
        HTTP_WIRE_GET_STREAM = 2,
        HTTP_WIRE_GET_INTO = 3,
};

enum {
        HTTP_WIRE_HEADERS = 1,
        HTTP_WIRE_DATA = 2,
        HTTP_WIRE_DONE = 3,
};

typedef struct HttpWireStart {
        uint32_t version;
        uint32_t op;
        uint64_t max;      /* response limit */
        uint64_t body_len; /* POST body bytes that follow on the channel */
} HttpWireStart;

/* A start packet as it arrives: HttpWireStart, the URI and room for its NUL. */
typedef union HttpWireStartPacket {
        HttpWireStart start;
        uint8_t bytes[sizeof(HttpWireStart) + HTTP_WIRE_URI_MAX + 1];
} HttpWireStartPacket;

/* The control message of a start packet: room for its descriptors (the channel; GET_INTO: and
 * the pipe). */
typedef union HttpWireFdControl {
        struct cmsghdr h;
        uint8_t bytes[CMSG_SPACE(2 * sizeof(int))];
} HttpWireFdControl;

typedef struct HttpWireFrame {
        uint32_t type;
        uint32_t len;
} HttpWireFrame;

typedef struct HttpWireDone {
        int32_t error;
        uint32_t content_type_len; /* 0: none */
        int64_t status;
        uint64_t content_length;
        uint64_t received;         /* GET_INTO: the bytes that went into the pipe */
        int64_t new_connections;
        uint32_t message_len;      /* 0: none */
        uint32_t body_len;         /* POST responses only */
} HttpWireDone;
