/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport.c: see transport.h */
#include "transport.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "media-type.h"
#include "options.h"

struct Transport {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *timer_now; /* libcurl's "now" (0 ms): a defer, no timer to program */
        char *ca_file;
        char *user_agent;
        long connect_timeout_ms;
        long timeout_ms;
        long payload_timeout_ms;
        unsigned n_active;
};

struct HttpRequest {
        Transport *transport;
        CURL *easy;
        bool active;
        struct curl_slist *headers;
        char *uri;

        /* request body (POST) */
        uint8_t *post;
        size_t post_len;

        /* response sink: memory, or a stream (on_data set) */
        uint8_t *buf;
        size_t buf_alloc;
        uint64_t max;
        uint64_t received;
        bool too_large;
        int write_errno;

        /* streams (http_request_get_stream) */
        HttpDataFn on_data;
        bool body_started;          /* the status was 2xx: bytes go to on_data */
        bool refused_status;        /* it was not: the request ended before the body */
        bool stopped;               /* on_data said stop */
        sd_event_source *finish;    /* ends a stream libcurl stopped driving (http_request_resume) */
        CURLcode finish_code;

        HttpDoneFn done;
        void *userdata;
        char errbuf[CURL_ERROR_SIZE];
};

static long usec_to_ms(uint64_t usec) {
        uint64_t ms = (usec + 999) / 1000;
        return ms > (uint64_t)LONG_MAX ? LONG_MAX : (long)ms;
}

/* ---- the loop glue: libcurl asks for sockets to watch and a timer; we tell it what fired ---- */

static void transport_dispatch_done(Transport *t);
static void complete(HttpRequest *req, CURLcode code);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Transport *t = userdata;
        int action = 0, running = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        (void)curl_multi_socket_action(t->multi, fd, action, &running);
        transport_dispatch_done(t);
        return 0;
}

static void timeout_fired(Transport *t) {
        int running = 0;

        (void)curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        transport_dispatch_done(t);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        timeout_fired(userdata);
        return 0;
}

static int on_timer_now(sd_event_source *s, void *userdata) {
        timeout_fired(userdata);
        return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        Transport *t = userp;
        sd_event_source *s = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        (void)curl_multi_assign(t->multi, fd, NULL);
                        sd_event_source_disable_unref(s);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (s) {
                r = sd_event_source_set_io_events(s, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        } else {
                r = sd_event_add_io(t->event, &s, fd, events, on_io, t);
                if (r >= 0) {
                        (void)sd_event_source_set_description(s, "curl-socket");
                        if (curl_multi_assign(t->multi, fd, s) != CURLM_OK) {
                                sd_event_source_disable_unref(s);
                                r = -EIO;
                        }
                }
        }
        if (r < 0) {
                log_error("cannot watch an HTTP socket: %s", strerror(-r));
                return -1; /* libcurl fails the transfer */
        }
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        Transport *t = userp;
        uint64_t now = 0;
        int r;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(t->timer, SD_EVENT_OFF) < 0 ||
                                       sd_event_source_set_enabled(t->timer_now, SD_EVENT_OFF) < 0
                               ? -1
                               : 0;
        /* libcurl must not be re-entered from this callback: even "now" (0 ms) goes through
         * the loop, as a defer source (libcurl asks for "now" several times per exchange, and
         * each time the kernel's timer would be programmed and cleared again). */
        if (timeout_ms == 0) {
                r = sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
                if (r >= 0)
                        r = sd_event_source_set_enabled(t->timer_now, SD_EVENT_ONESHOT);
                return r < 0 ? -1 : 0;
        }
        r = sd_event_now(t->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return -1;
        r = sd_event_source_set_enabled(t->timer_now, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_time(t->timer, now + (uint64_t)timeout_ms * 1000u + 1);
        if (r >= 0)
                r = sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
        return r < 0 ? -1 : 0;
}

int transport_new(sd_event *event, const TransportConfig *cfg, Transport **ret) {
        Transport *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->event = sd_event_ref(event);
        t->connect_timeout_ms = usec_to_ms(cfg->connect_timeout_usec);
        t->timeout_ms = usec_to_ms(cfg->timeout_usec);
        t->payload_timeout_ms = usec_to_ms(cfg->payload_timeout_usec ? cfg->payload_timeout_usec : cfg->timeout_usec);
        if (cfg->ca_file && !(t->ca_file = strdup(cfg->ca_file)))
                goto oom;
        if (cfg->user_agent)
                t->user_agent = strdup(cfg->user_agent);
        else if (asprintf(&t->user_agent, "teep-brokerd/%s", PACKAGE_VERSION) < 0)
                t->user_agent = NULL;
        if (!t->user_agent)
                goto oom;

        /* Accuracy 1 µs, not sd-event's default of 250 ms (what 0 means): libcurl's timeouts are
         * often "now", and each HTTP exchange waited up to a quarter second for this timer. */
        r = sd_event_add_time(event, &t->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, t);
        if (r < 0) {
                transport_free(t);
                return r;
        }
        (void)sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
        (void)sd_event_source_set_description(t->timer, "curl-timer");
        r = sd_event_add_defer(event, &t->timer_now, on_timer_now, t);
        if (r < 0) {
                transport_free(t);
                return r;
        }
        (void)sd_event_source_set_enabled(t->timer_now, SD_EVENT_OFF);
        (void)sd_event_source_set_description(t->timer_now, "curl-timer-now");

        t->multi = curl_multi_init();
        if (!t->multi)
                goto oom;
        if (curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t) != CURLM_OK ||
            curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t) != CURLM_OK) {
                transport_free(t);
                return -EIO;
        }
        *ret = t;
        return 0;
oom:
        transport_free(t);
        return -ENOMEM;
}

Transport *transport_free(Transport *t) {
        if (!t)
                return NULL;
        /* curl_multi_cleanup() closes cached connections and calls socket_cb(REMOVE) for them */
        if (t->multi)
                curl_multi_cleanup(t->multi);
        sd_event_source_disable_unref(t->timer);
        sd_event_source_disable_unref(t->timer_now);
        sd_event_unref(t->event);
        free(t->ca_file);
        free(t->user_agent);
        free(t);
        return NULL;
}

/* ---- requests ---- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *req = userdata;
        size_t n = size * nmemb;

        if (n == 0)
                return 0;
        if (req->received + n > req->max || req->received + n < req->received) {
                req->too_large = true;
                return 0; /* CURLE_WRITE_ERROR */
        }
        if (req->received + n > req->buf_alloc) {
                size_t want = req->buf_alloc ? req->buf_alloc : 4096;
                uint8_t *p;
                while (want < req->received + n)
                        want *= 2;
                if (want > req->max)
                        want = (size_t)req->max;
                p = realloc(req->buf, want);
                if (!p) {
                        req->write_errno = ENOMEM;
                        return 0;
                }
                req->buf = p;
                req->buf_alloc = want;
        }
        memcpy(req->buf + req->received, ptr, n);
        req->received += n;
        return n;
}

/* libcurl hands a stream's body over in pieces of at most CURL_MAX_WRITE_SIZE; when on_data
 * pauses, libcurl keeps the rest of what it had read (at most CURLOPT_BUFFERSIZE) and reads no
 * more from the socket until the transfer is resumed. */
static size_t on_stream_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *req = userdata;
        size_t n = size * nmemb;

        if (n == 0)
                return 0;
        if (!req->body_started) {
                long status = 0;

                /* no redirects are followed and libcurl eats 1xx: this is the final status */
                (void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status < 200 || status > 299) {
                        req->refused_status = true;
                        return 0; /* CURLE_WRITE_ERROR, reported as the status (complete()) */
                }
                req->body_started = true;
        }
        if (req->received + n > req->max || req->received + n < req->received) {
                req->too_large = true;
                return 0;
        }
        switch (req->on_data(req, (const uint8_t *)ptr, n, req->userdata)) {
        case HTTP_DATA_TAKEN:
                req->received += n;
                return n;
        case HTTP_DATA_PAUSE:
                return CURL_WRITEFUNC_PAUSE;
        case HTTP_DATA_STOP:
        default:
                req->stopped = true;
                return 0;
        }
}

int http_request_new(Transport *t, HttpRequest **ret) {
        HttpRequest *req;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->transport = t;
        req->easy = curl_easy_init();
        if (!req->easy) {
                free(req);
                return -ENOMEM;
        }
        *ret = req;
        return 0;
}

bool http_request_is_active(const HttpRequest *req) {
        return req && req->active;
}

void http_request_cancel(HttpRequest *req) {
        if (!req || !req->active)
                return;
        if (req->finish)
                (void)sd_event_source_set_enabled(req->finish, SD_EVENT_OFF);
        /* (a stream that http_request_resume() ended is out of the multi handle already: fine) */
        (void)curl_multi_remove_handle(req->transport->multi, req->easy);
        req->active = false;
        req->transport->n_active--;
}

static void request_reset(HttpRequest *req) {
        curl_slist_free_all(req->headers);
        req->headers = NULL;
        free(req->post);
        req->post = NULL;
        req->post_len = 0;
        free(req->buf);
        req->buf = NULL;
        req->buf_alloc = 0;
        free(req->uri);
        req->uri = NULL;
        req->received = 0;
        req->too_large = false;
        req->write_errno = 0;
        req->on_data = NULL;
        req->body_started = false;
        req->refused_status = false;
        req->stopped = false;
        req->finish_code = CURLE_OK;
        req->errbuf[0] = '\0';
}

HttpRequest *http_request_free(HttpRequest *req) {
        if (!req)
                return NULL;
        http_request_cancel(req);
        request_reset(req);
        sd_event_source_disable_unref(req->finish);
        if (req->easy)
                curl_easy_cleanup(req->easy);
        free(req);
        return NULL;
}

/* Options every request gets: the broker's limits and the transport draft's rules. */
static int setup_common(HttpRequest *req, const char *uri, uint64_t max) {
        Transport *t = req->transport;
        CURL *e = req->easy;
        CURLcode c = CURLE_OK;

#define SET(opt, val) \
        do { \
                if (c == CURLE_OK) \
                        c = curl_easy_setopt(e, opt, val); \
        } while (0)

        SET(CURLOPT_URL, uri);
#if LIBCURL_VERSION_NUM >= 0x075500
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https"); /* unused: redirects are off */
#else
        SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SET(CURLOPT_FOLLOWLOCATION, 0L);        /* redirects MUST NOT be followed */
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
        SET(CURLOPT_TIMEOUT_MS, t->timeout_ms);
        SET(CURLOPT_USERAGENT, t->user_agent);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (t->ca_file)
                SET(CURLOPT_CAINFO, t->ca_file);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max));
        SET(CURLOPT_WRITEFUNCTION, on_write);
        SET(CURLOPT_WRITEDATA, req);
        SET(CURLOPT_ERRORBUFFER, req->errbuf);
        SET(CURLOPT_PRIVATE, req);
#undef SET
        return c == CURLE_OK ? 0 : -EIO;
}

static int start(HttpRequest *req, HttpDoneFn done, void *userdata) {
        if (curl_multi_add_handle(req->transport->multi, req->easy) != CURLM_OK)
                return -EIO;
        req->done = done;
        req->userdata = userdata;
        req->active = true;
        req->transport->n_active++;
        return 0;
}

int http_request_post_teep(HttpRequest *req, const char *uri, const uint8_t *body, size_t len, uint64_t max,
                           HttpDoneFn done, void *userdata) {
        struct curl_slist *h = NULL;
        CURLcode c;
        int r;

        if (req->active)
                return -EBUSY;
        if (!tam_uri_is_valid(uri) || max == 0)
                return -EINVAL;
        request_reset(req);
        req->uri = strdup(uri);
        if (!req->uri)
                return -ENOMEM;
        req->max = max;
        if (len > 0) {
                req->post = malloc(len);
                if (!req->post)
                        return -ENOMEM;
                memcpy(req->post, body, len);
                req->post_len = len;
        }
        /* Content-Type on the empty first POST too (harmless, and some TAMs insist);
         * "Expect:" turns off libcurl's 100-continue round trip for larger bodies. */
        h = curl_slist_append(h, "Content-Type: " TEEP_MEDIA_TYPE);
        if (h)
                h = curl_slist_append(h, "Accept: " TEEP_MEDIA_TYPE);
        if (h)
                h = curl_slist_append(h, "Expect:");
        if (!h)
                return -ENOMEM;
        req->headers = h;

        r = setup_common(req, uri, max);
        if (r < 0)
                return r;
        c = curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_POST, 1L);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->post_len);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->post ? (const char *)req->post : "");
        if (c != CURLE_OK)
                return -EIO;
        return start(req, done, userdata);
}

static int on_finish(sd_event_source *s, void *userdata) {
        HttpRequest *req = userdata;

        if (!req->active)
                return 0;
        req->active = false;
        req->transport->n_active--;
        complete(req, req->finish_code);
        return 0;
}

int http_request_get_stream(HttpRequest *req, const char *uri, uint64_t max, HttpDataFn on_data,
                            HttpDoneFn done, void *userdata) {
        CURLcode c;
        int r;

        if (req->active)
                return -EBUSY;
        if (!tam_uri_is_valid(uri) || max == 0 || !on_data)
                return -EINVAL;
        request_reset(req);
        if (!req->finish) {
                r = sd_event_add_defer(req->transport->event, &req->finish, on_finish, req);
                if (r < 0)
                        return r;
                (void)sd_event_source_set_enabled(req->finish, SD_EVENT_OFF);
                (void)sd_event_source_set_description(req->finish, "http-stream-finish");
        }
        req->uri = strdup(uri);
        if (!req->uri)
                return -ENOMEM;
        req->max = max;
        req->on_data = on_data;
        r = setup_common(req, uri, max);
        if (r < 0)
                return r;
        c = curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, on_stream_write);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L);
        /* Reads of 64 KiB instead of 16: fewer wake-ups for a large payload, while a paused
         * transfer holds no more than that (what libcurl read and on_data has not taken yet). */
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_BUFFERSIZE, 64L * 1024L);
        /* a payload may take longer than a TEEP message, as long as it moves */
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, req->transport->payload_timeout_ms);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        if (c == CURLE_OK)
                c = curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_TIME,
                                     req->transport->timeout_ms >= 2000 ? req->transport->timeout_ms / 1000 : 1L);
        if (c != CURLE_OK)
                return -EIO;
        return start(req, done, userdata);
}

void http_request_resume(HttpRequest *req) {
        Transport *t;
        CURLcode c;

        if (!req || !req->active || !req->on_data || sd_event_source_get_enabled(req->finish, NULL) > 0)
                return;
        t = req->transport;
        /* libcurl hands the bytes it held to on_data from in here */
        c = curl_easy_pause(req->easy, CURLPAUSE_CONT);
        if (c != CURLE_OK) {
                /* on_data refused them (stop, or past max). libcurl returns the error but keeps the
                 * transfer, which would then sit waiting on its socket: end it here, and report it
                 * from the loop like any other end. */
                (void)curl_multi_remove_handle(t->multi, req->easy);
                req->finish_code = c;
                (void)sd_event_source_set_enabled(req->finish, SD_EVENT_ONESHOT);
                return;
        }
        /* libcurl asks for "now" (timer_cb) to read the socket again; the defer also covers the
         * case where it had nothing to ask for */
        (void)sd_event_source_set_enabled(t->timer_now, SD_EVENT_ONESHOT);
}

uint64_t http_request_content_length(const HttpRequest *req) {
        curl_off_t cl = -1;

        if (curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK || cl < 0)
                return UINT64_MAX;
        return (uint64_t)cl;
}

static int curlcode_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_FILESIZE_EXCEEDED:
                return -E2BIG;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTO;
        default:
                return -EIO;
        }
}

static void complete(HttpRequest *req, CURLcode code) {
        HttpDoneFn done = req->done;
        void *userdata = req->userdata;
        HttpResult res = {};
        char message[512];
        char *ct = NULL;
        long status = 0, connects = 0;

        (void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        (void)curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &ct);
        (void)curl_easy_getinfo(req->easy, CURLINFO_NUM_CONNECTS, &connects);
        res.status = status;
        res.content_type = ct;
        res.body = req->on_data ? NULL : req->buf;
        res.body_len = (size_t)req->received;
        res.content_length = http_request_content_length(req);
        res.new_connections = connects;

        if (code == CURLE_OK || req->refused_status)
                res.error = 0;
        else if (req->stopped) {
                res.error = -ECANCELED;
                snprintf(message, sizeof(message), "%s: stopped by the receiver after %llu bytes", req->uri,
                         (unsigned long long)req->received);
        } else if (req->too_large || code == CURLE_FILESIZE_EXCEEDED) {
                res.error = -E2BIG;
                snprintf(message, sizeof(message), "%s: the response is larger than the limit of %llu bytes",
                         req->uri, (unsigned long long)req->max);
        } else if (code == CURLE_WRITE_ERROR && req->write_errno) {
                res.error = -req->write_errno;
                snprintf(message, sizeof(message), "%s: cannot store the response: %s", req->uri,
                         strerror(req->write_errno));
        } else {
                res.error = curlcode_to_errno(code);
                snprintf(message, sizeof(message), "%s: %s", req->uri,
                         req->errbuf[0] ? req->errbuf : curl_easy_strerror(code));
        }
        res.message = res.error < 0 ? message : NULL;

        /* Last: the callback may free req, or reuse it for the next request. */
        done(req, &res, userdata);
}

static void transport_dispatch_done(Transport *t) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(t->multi, &left))) {
                HttpRequest *req = NULL;
                CURLcode code;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                code = msg->data.result;
                (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
                if (!req)
                        continue;
                (void)curl_multi_remove_handle(t->multi, req->easy);
                req->active = false;
                t->n_active--;
                complete(req, code);
        }
}
