/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport.h: HTTP for the broker — libcurl's multi interface driven by an sd-event loop */
/* Two implementations: transport.c (libcurl, in teep-broker-http) and transport-client.c (in
 * teep-brokerd: the same calls, carried out by the helper it starts; http-wire.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * Nothing here blocks: sockets and timers of libcurl become sd-event sources, and a request's
 * completion is a callback from the event loop. Name resolution runs in libcurl's resolver
 * thread, not in the loop.
 *
 * One HttpRequest wraps one libcurl easy handle. Reusing it for the next request of a TEEP
 * session keeps the connection alive (HTTP keep-alive); separate requests still share the
 * multi handle's connection cache.
 */

typedef struct Transport Transport;
typedef struct HttpRequest HttpRequest;

typedef struct TransportConfig {
        uint64_t connect_timeout_usec; /* connect (TCP and TLS handshake) */
        uint64_t timeout_usec;         /* the whole request, connect to last byte */
        /* streams (http_request_get_stream): the whole download, however slowly its receiver
         * reads (0: timeout_usec); within it, no progress for timeout_usec ends it too */
        uint64_t payload_timeout_usec;
        const char *ca_file;           /* NULL: libcurl's default CA set */
        const char *user_agent;        /* NULL: "teep-brokerd/VERSION" */
        /* transport-client.c: the teep-broker-http binary, opened by transport_new() (so before
         * the sandbox) and started from that descriptor when a request needs it */
        const char *helper_path;
        uint64_t helper_idle_usec;     /* transport-client.c: let it go after this idle (0: 10 s) */
} TransportConfig;

typedef struct HttpResult {
        /* 0 when an HTTP response arrived (whatever its status), else a negative errno:
         * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH (name or route), -E2BIG (larger than the
         * limit), -ECONNRESET (also: the body ended before its announced length), -EPROTO (TLS,
         * HTTP framing), -ECANCELED (a stream's on_data said stop), -EIO (anything else). */
        int error;
        long status;                /* HTTP status, 0 when none */
        const char *content_type;   /* NULL when the response had none */
        const uint8_t *body;        /* in-memory responses only (valid during the callback) */
        size_t body_len;            /* bytes received (streams: bytes on_data took) */
        uint64_t content_length;    /* the Content-Length announced, UINT64_MAX when none */
        long new_connections;       /* connections opened for this request (0: reused one) */
        const char *message;        /* on failure: one sentence naming the URI and the cause */
} HttpResult;

/* Called once per started request, from the event loop. The callback may free the request
 * or start another one on it. */
typedef void (*HttpDoneFn)(HttpRequest *req, const HttpResult *res, void *userdata);

/* curl_global_init() must have been called (brokerd does it once, before seccomp). */
int transport_new(sd_event *event, const TransportConfig *cfg, Transport **ret);
/* Requests must be freed first. */
Transport *transport_free(Transport *t);

int http_request_new(Transport *t, HttpRequest **ret);
/* Cancels a running request silently (its callback is not called). Accepts NULL. */
HttpRequest *http_request_free(HttpRequest *req);
bool http_request_is_active(const HttpRequest *req);
void http_request_cancel(HttpRequest *req);

/*
 * POST a TEEP message (len may be 0: the empty POST that starts a session) with
 * Content-Type and Accept application/teep+cbor, no redirects, no cookies. The body is
 * copied. The response is kept in memory, at most max bytes (larger: -E2BIG).
 * -EBUSY if the request is still running; -EINVAL for a URI that is not http(s).
 */
int http_request_post_teep(HttpRequest *req, const char *uri, const uint8_t *body, size_t len, uint64_t max,
                           HttpDoneFn done, void *userdata);

/* What a stream's on_data did with the bytes it was handed. */
typedef enum HttpDataVerdict {
        HTTP_DATA_TAKEN, /* all of them: they are the receiver's now */
        HTTP_DATA_PAUSE, /* none: the transfer pauses, and the same bytes come again once
                          * http_request_resume() is called */
        HTTP_DATA_STOP,  /* none: the transfer ends, and done reports -ECANCELED */
} HttpDataVerdict;

/* Body bytes of a 2xx response, in order, at most a libcurl write chunk (16 KiB) at a time.
 * Called from inside libcurl: it must not free, cancel or resume req. */
typedef HttpDataVerdict (*HttpDataFn)(HttpRequest *req, const uint8_t *data, size_t len, void *userdata);

/*
 * GET uri and hand the body to on_data as it arrives, nothing kept in between: a receiver that
 * cannot take bytes yet answers HTTP_DATA_PAUSE and calls http_request_resume() when it can.
 * At most max bytes: a Content-Length above it fails before the body (-E2BIG), and a body that
 * grows past it ends there (-E2BIG; on_data never sees a byte beyond max). A status other than
 * 2xx ends the request once its headers are in: done gets error 0 and the status, and on_data
 * is never called. The whole stream is bounded by payload_timeout_usec, which keeps running
 * while a transfer is paused (a receiver that stalls is bounded by it), and a server that sends
 * nothing for timeout_usec ends it too (libcurl's low-speed check, which a pause does not trip).
 * -EBUSY if the request is still running; -EINVAL for a URI that is not http(s).
 */
int http_request_get_stream(HttpRequest *req, const char *uri, uint64_t max, HttpDataFn on_data,
                            HttpDoneFn done, void *userdata);
/* Go on with a stream that on_data paused; on_data may be called again before this returns,
 * done is not (it always comes from the event loop). Not from inside on_data. */
void http_request_resume(HttpRequest *req);
/* The Content-Length of the response being received, UINT64_MAX when it announced none (or
 * its headers are not in yet). For on_data. */
uint64_t http_request_content_length(const HttpRequest *req);

/* A 2xx response's headers are in (GET_INTO): called once, before done; it must not free, cancel
 * or restart req. */
typedef void (*HttpHeadersFn)(HttpRequest *req, uint64_t content_length, void *userdata);

/*
 * transport-client.c only (teep-brokerd's payload downloads): GET uri into fd, the write end of
 * a pipe, which is the transport's from here on (closed on every way out). teep-broker-http
 * writes the body into it as it arrives, with no copy through the calling process; on_headers
 * comes once a 2xx response's headers are in, done at the end, when the pipe is closed already.
 * done's body_len is the bytes that went into the pipe. Besides http_request_get_stream()'s
 * outcomes: -EPIPE (the pipe's reader is gone), -ENOBUFS (the pipe stayed full for the request
 * timeout). A status other than 2xx: no on_headers, nothing written, done with the status.
 */
int http_request_get_into(HttpRequest *req, const char *uri, uint64_t max, int fd, HttpHeadersFn on_headers,
                          HttpDoneFn done, void *userdata);

#include "macro.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(Transport *, transport_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpRequest *, http_request_free);
