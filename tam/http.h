/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http.h: teep-tam's HTTP server (libmicrohttpd): TEEP over HTTP and URI payloads */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tam.h"

typedef struct TamHttp TamHttp;

typedef struct TamHttpConfig {
        const struct sockaddr *address; /* where to listen (port 0: any free port) */
        socklen_t address_len;
        size_t max_body;      /* larger request bodies get 413 */
        unsigned timeout_sec; /* idle connection timeout */
        unsigned max_connections;
} TamHttpConfig;

/*
 * Serve:
 *   POST /tam (or /)          TEEP over HTTP: body and answer application/teep+cbor
 *   GET|HEAD /payload/NAME    a file of the payload directory
 * Anything else: 404 (unknown path) or 405 (other method). A non-empty POST body of another
 * Content-Type gets 415, an Accept header that excludes application/teep+cbor 406, a body
 * over max_body 413.
 */
int tam_http_start(Tam *tam, const TamHttpConfig *config, TamHttp **ret);
/* The port actually bound. */
uint16_t tam_http_port(const TamHttp *h);
/* Stop accepting, wake sleeping (slow fault) handlers, wait for the connection threads. */
TamHttp *tam_http_stop(TamHttp *h);
