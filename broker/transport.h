/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport.h: HTTP for the broker — libcurl's multi interface driven by an sd-event loop */
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
        const char *ca_file;           /* NULL: libcurl's default CA set */
        const char *user_agent;        /* NULL: "teep-brokerd/VERSION" */
} TransportConfig;

typedef struct HttpResult {
        /* 0 when an HTTP response arrived (whatever its status), else a negative errno:
         * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH (name or route), -E2BIG (larger than the
         * limit), -ECONNRESET, -EPROTO (TLS, HTTP framing), -EIO (anything else). */
        int error;
        long status;                /* HTTP status, 0 when none */
        const char *content_type;   /* NULL when the response had none */
        const uint8_t *body;        /* in-memory responses only (valid during the callback) */
        size_t body_len;            /* bytes received */
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

/* GET uri, writing the body to fd (not taken over), at most max bytes. */
int http_request_get_to_fd(HttpRequest *req, const char *uri, int fd, uint64_t max, HttpDoneFn done,
                           void *userdata);

#include "macro.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(Transport *, transport_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpRequest *, http_request_free);
