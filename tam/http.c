/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http.c: see http.h */

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "macro.h"
#include "teep-protocol.h"

struct TamHttp {
        Tam *tam;
        struct MHD_Daemon *daemon;
        size_t max_body;
        atomic_bool stopping;
        uint16_t port;
};

/* Per request: the body as it arrives. */
typedef struct Request {
        uint8_t *body;
        size_t len;
        size_t cap;
        bool too_big;
        bool responded;
} Request;

/* libmicrohttpd's error logger: fmt is its own printf format, hence the attribute */
__attribute__((format(printf, 2, 0))) static void log_mhd(void *cls, const char *fmt, va_list ap) {
        char line[512];

        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = 0;
        log_full(LOG_DEBUG, "libmicrohttpd: %s", line);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        Request *rq = *con_cls;

        if (!rq)
                return;
        if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
                log_info("msg=- decision=closed: the request timed out");
        free(rq->body);
        free(rq);
        *con_cls = NULL;
}

/* Does "type/subtype; params" name media type want? */
static bool media_type_is(const char *value, const char *want) {
        size_t n;

        if (!value)
                return false;
        value += strspn(value, " \t");
        n = strcspn(value, ";, \t");
        return n == strlen(want) && strncasecmp(value, want, n) == 0;
}

/* An Accept header that admits application/teep+cbor (or no Accept header at all). */
static bool accept_ok(const char *accept) {
        const char *p = accept;

        if (!accept || !*accept)
                return true;
        while (p && *p) {
                if (media_type_is(p, TEEP_MEDIA_TYPE) || media_type_is(p, "application/*") ||
                    media_type_is(p, "*/*"))
                        return true;
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        return false;
}

static void add_security_headers(struct MHD_Response *r) {
        /* HTTP transport draft §5: never sniff, never render, never leak a referrer. No Cache-Control. */
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result queue_status(struct MHD_Connection *c, unsigned status) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;

        if (!r)
                return MHD_NO;
        add_security_headers(r);
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

typedef struct Truncated {
        uint8_t *data;
        size_t send; /* bytes actually sent before the connection is dropped */
} Truncated;

static ssize_t truncated_read(void *cls, uint64_t pos, char *buf, size_t max) {
        Truncated *t = cls;
        size_t n;

        if (pos >= t->send)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        n = t->send - (size_t)pos;
        if (n > max)
                n = max;
        memcpy(buf, t->data + pos, n);
        return (ssize_t)n;
}

static void truncated_free(void *cls) {
        Truncated *t = cls;

        free(t->data);
        free(t);
}

/* Sleep for the slow fault in small steps, so that a stopping server is not held up. */
static void slow_sleep(TamHttp *h, unsigned sec) {
        for (unsigned i = 0; i < sec * 10u && !atomic_load(&h->stopping); i++)
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
}

/* slow-loris fault: one byte per call, a pause before each, given up when the server stops */
typedef struct Trickle {
        TamHttp *h;
        uint8_t *data;
        size_t len;
        unsigned ms;
} Trickle;

static ssize_t trickle_read(void *cls, uint64_t pos, char *buf, size_t max) {
        Trickle *t = cls;

        if (pos >= t->len)
                return MHD_CONTENT_READER_END_OF_STREAM;
        for (unsigned waited = 0; waited < t->ms; waited += 10) {
                if (atomic_load(&t->h->stopping))
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        if (max == 0)
                return 0;
        buf[0] = (char)t->data[pos];
        return 1;
}

static void trickle_free(void *cls) {
        Trickle *t = cls;

        free(t->data);
        free(t);
}

static enum MHD_Result queue_reply(TamHttp *h, struct MHD_Connection *c, TamReply *reply) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        if (reply->delay_sec > 0)
                slow_sleep(h, reply->delay_sec);
        if (reply->trickle_ms > 0 && reply->body_len > 0) {
                Trickle *t = calloc(1, sizeof(*t));
                if (!t)
                        return MHD_NO;
                *t = (Trickle){.h = h, .data = TAKE_PTR(reply->body), .len = reply->body_len, .ms = reply->trickle_ms};
                r = MHD_create_response_from_callback(reply->body_len, 1, trickle_read, t, trickle_free);
                if (!r) {
                        trickle_free(t);
                        return MHD_NO;
                }
        } else if (reply->truncate && reply->body_len > 1) {
                Truncated *t = calloc(1, sizeof(*t));
                if (!t)
                        return MHD_NO;
                t->send = reply->body_len / 2;
                t->data = TAKE_PTR(reply->body);
                r = MHD_create_response_from_callback(reply->body_len, 4096, truncated_read, t,
                                                      truncated_free);
                if (!r) {
                        truncated_free(t);
                        return MHD_NO;
                }
        } else if (reply->body_len > 0) {
                r = MHD_create_response_from_buffer(reply->body_len, reply->body, MHD_RESPMEM_MUST_FREE);
                if (!r)
                        return MHD_NO;
                reply->body = NULL; /* MHD frees it */
        } else {
                r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
                if (!r)
                        return MHD_NO;
        }
        if (reply->content_type && reply->body_len > 0)
                MHD_add_response_header(r, "Content-Type", reply->content_type);
        if (reply->location)
                MHD_add_response_header(r, "Location", reply->location);
        add_security_headers(r);
        ret = MHD_queue_response(c, reply->status, r);
        MHD_destroy_response(r);
        return ret;
}

static bool path_is_teep(const char *url) {
        return strcmp(url, "/tam") == 0 || strcmp(url, "/") == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
        TamHttp *h = cls;
        Request *rq = *con_cls;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        TamReply reply = {};
        enum MHD_Result ret;

        if (!rq) {
                const char *cl;

                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                *con_cls = rq;

                if (!(post && path_is_teep(url)) && !(get && strncmp(url, "/payload/", 9) == 0)) {
                        bool known = path_is_teep(url) || strncmp(url, "/payload/", 9) == 0;
                        log_info("msg=http method=%s path=%s decision=%s", method, url,
                                 known ? "refused (405)" : "not-found (404)");
                        rq->responded = true;
                        return queue_status(c, known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND);
                }
                /* refuse an announced oversized body before reading any of it */
                cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (post && cl && strtoull(cl, NULL, 10) > h->max_body) {
                        log_info("msg=http decision=refused (413): Content-Length %s over %zu", cl,
                                 h->max_body);
                        rq->responded = true;
                        return queue_status(c, 413 /* Content Too Large */);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (rq->responded || rq->too_big)
                        return MHD_YES;
                if (n > h->max_body - rq->len) {
                        rq->too_big = true;
                        free(rq->body);
                        rq->body = NULL;
                        rq->len = rq->cap = 0;
                        return MHD_YES;
                }
                if (rq->len + n > rq->cap) {
                        size_t cap = rq->cap ? rq->cap : 4096;
                        uint8_t *b;
                        while (cap < rq->len + n)
                                cap *= 2;
                        if (cap > h->max_body)
                                cap = h->max_body;
                        b = realloc(rq->body, cap);
                        if (!b)
                                return MHD_NO;
                        rq->body = b;
                        rq->cap = cap;
                }
                memcpy(rq->body + rq->len, upload_data, n);
                rq->len += n;
                return MHD_YES;
        }

        if (rq->responded)
                return MHD_YES;
        rq->responded = true;

        if (get) {
                tam_handle_payload(h->tam, url + 9, &reply);
                ret = queue_reply(h, c, &reply);
                tam_reply_done(&reply);
                return ret;
        }

        if (rq->too_big) {
                log_info("msg=http decision=refused (413): body over %zu bytes", h->max_body);
                return queue_status(c, 413 /* Content Too Large */);
        }
        if (rq->len > 0 &&
            !media_type_is(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                           TEEP_MEDIA_TYPE)) {
                log_info("msg=http decision=refused (415): Content-Type is not " TEEP_MEDIA_TYPE);
                return queue_status(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE);
        }
        if (!accept_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT))) {
                log_info("msg=http decision=refused (406): Accept excludes " TEEP_MEDIA_TYPE);
                return queue_status(c, MHD_HTTP_NOT_ACCEPTABLE);
        }

        tam_handle_post(h->tam, rq->body, rq->len, &reply);
        ret = queue_reply(h, c, &reply);
        tam_reply_done(&reply);
        return ret;
}

int tam_http_start(Tam *tam, const TamHttpConfig *config, TamHttp **ret) {
        TamHttp *h;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

        if (!tam || !config || !config->address || config->max_body == 0)
                return -EINVAL;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->tam = tam;
        h->max_body = config->max_body;
        atomic_init(&h->stopping, false);
        if (config->address->sa_family == AF_INET6)
                flags |= MHD_USE_IPv6;

        h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, config->address,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)config->timeout_sec,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)(config->max_connections ?: 64),
                                     MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
                                     MHD_OPTION_EXTERNAL_LOGGER, log_mhd, h, MHD_OPTION_END);
        if (!h->daemon) {
                free(h);
                return -EADDRNOTAVAIL;
        }
        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : 0;
        *ret = h;
        return 0;
}

uint16_t tam_http_port(const TamHttp *h) {
        return h ? h->port : 0;
}

TamHttp *tam_http_stop(TamHttp *h) {
        if (!h)
                return NULL;
        atomic_store(&h->stopping, true);
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        free(h);
        return NULL;
}
