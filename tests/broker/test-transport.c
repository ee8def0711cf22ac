/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-transport.c: the broker's HTTP client against a real HTTP server on 127.0.0.1 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <inttypes.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker-test.h"
#include "macro.h"
#include "payload-server.h"
#include "transport.h"

/* What the server saw, for the assertions. */
static struct {
        pthread_mutex_t lock;
        char method[16];
        char content_type[128];
        char accept[128];
        char expect[64];
        size_t body_len;
        unsigned connections;
        unsigned requests;
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct MHD_Daemon *server;
static unsigned short port;
static sd_event *event;
static Transport *transport;

typedef struct Upload {
        size_t len;
} Upload;

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                pthread_mutex_lock(&seen.lock);
                seen.connections++;
                pthread_mutex_unlock(&seen.lock);
        }
}

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t n) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
        snprintf(dst, n, "%s", v ?: "");
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *content_type, size_t len,
                               uint8_t fill) {
        struct MHD_Response *r;
        enum MHD_Result ret;
        uint8_t *buf = malloc(len ? len : 1);

        memset(buf, fill, len);
        r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        if (content_type)
                MHD_add_response_header(r, "Content-Type", content_type);
        if (status == 302)
                MHD_add_response_header(r, "Location", "/teep");
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
        Upload *u = *con_cls;

        if (!u) {
                *con_cls = calloc(1, sizeof(Upload));
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                u->len += *upload_data_size;
                *upload_data_size = 0;
                return MHD_YES;
        }
        pthread_mutex_lock(&seen.lock);
        snprintf(seen.method, sizeof(seen.method), "%s", method);
        copy_header(c, "Content-Type", seen.content_type, sizeof(seen.content_type));
        copy_header(c, "Accept", seen.accept, sizeof(seen.accept));
        copy_header(c, "Expect", seen.expect, sizeof(seen.expect));
        seen.body_len = u->len;
        seen.requests++;
        pthread_mutex_unlock(&seen.lock);

        if (strcmp(url, "/teep") == 0)
                return respond(c, 200, "application/teep+cbor", 40, 0x42);
        if (strcmp(url, "/done") == 0)
                return respond(c, 204, NULL, 0, 0);
        if (strcmp(url, "/big") == 0)
                return respond(c, 200, "application/teep+cbor", 300000, 0x01);
        if (strcmp(url, "/payload") == 0)
                return respond(c, 200, "application/octet-stream", 200000, 0x5a);
        if (strcmp(url, "/redirect") == 0)
                return respond(c, 302, "text/html", 10, 'x');
        if (strcmp(url, "/slow") == 0) {
                sleep(3);
                return respond(c, 204, NULL, 0, 0);
        }
        return respond(c, 404, "text/plain", 9, 'n');
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        free(*con_cls);
        *con_cls = NULL;
}

static void setup(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const union MHD_DaemonInfo *info;
        TransportConfig tc = {
                .connect_timeout_usec = 2 * 1000000,
                .timeout_usec = 1 * 1000000,
                .helper_path = getenv("TEEP_BROKER_HTTP"), /* test-broker-transport-helper */
        };

        server = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                  handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_CONNECTION,
                                  on_connection, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
        cr_assert_not_null(server);
        info = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT);
        cr_assert_not_null(info);
        port = info->port;
        cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
        cr_assert_geq(sd_event_new(&event), 0);
        cr_assert_eq(transport_new(event, &tc, &transport), 0);
}

static void teardown(void) {
        transport_free(transport);
        sd_event_unref(event);
        MHD_stop_daemon(server);
}

TestSuite(transport, .init = setup, .fini = teardown, .timeout = 60);

typedef struct Outcome {
        bool done;
        int error;
        long status;
        char content_type[128];
        size_t body_len;
        uint8_t first;
        long new_connections;
        char message[512];
} Outcome;

static void on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Outcome *o = userdata;

        o->done = true;
        o->error = res->error;
        o->status = res->status;
        snprintf(o->content_type, sizeof(o->content_type), "%s", res->content_type ?: "");
        o->body_len = res->body_len;
        o->first = res->body && res->body_len ? res->body[0] : 0;
        o->new_connections = res->new_connections;
        snprintf(o->message, sizeof(o->message), "%s", res->message ?: "");
}

static char *url(const char *path) {
        static char buf[128];
        snprintf(buf, sizeof(buf), "http://127.0.0.1:%u%s", port, path);
        return buf;
}

static Outcome post(HttpRequest *req, const char *path, const uint8_t *body, size_t len, uint64_t max) {
        Outcome o = {};

        cr_assert_eq(http_request_post_teep(req, url(path), body, len, max, on_done, &o), 0);
        cr_assert(http_request_is_active(req));
        cr_assert(test_event_run_until(event, &o.done, 10000), "no answer from %s", path);
        cr_assert(!http_request_is_active(req));
        return o;
}

Test(transport, empty_post_starts_with_teep_headers) {
        HttpRequest *req = NULL;
        Outcome o;

        cr_assert_eq(http_request_new(transport, &req), 0);
        o = post(req, "/teep", NULL, 0, 1 << 20);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_str_eq(o.content_type, "application/teep+cbor");
        cr_assert_eq(o.body_len, 40);
        cr_assert_eq(o.first, 0x42);
        cr_assert_str_eq(seen.method, "POST");
        cr_assert_str_eq(seen.content_type, "application/teep+cbor");
        cr_assert_str_eq(seen.accept, "application/teep+cbor");
        cr_assert_eq(seen.body_len, 0);
        http_request_free(req);
}

Test(transport, the_session_reuses_one_connection) {
        HttpRequest *req = NULL;
        uint8_t msg[5000];
        Outcome o;

        memset(msg, 0xa5, sizeof(msg));
        cr_assert_eq(http_request_new(transport, &req), 0);
        o = post(req, "/teep", NULL, 0, 1 << 20);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.new_connections, 1);
        o = post(req, "/teep", msg, sizeof(msg), 1 << 20);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(seen.body_len, sizeof(msg), "the body arrives whole");
        cr_assert_str_eq(seen.expect, "", "no 100-continue round trip");
        o = post(req, "/done", msg, 10, 1 << 20);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 204);
        cr_assert_eq(o.body_len, 0);
        cr_assert_eq(o.new_connections, 0, "keep-alive: no new connection");
        cr_assert_eq(seen.requests, 3);
        cr_assert_eq(seen.connections, 1, "the server saw %u connections", seen.connections);
        http_request_free(req);
}

/* A body larger than a socket's buffer (teep-brokerd: the rest of it follows from the loop). */
Test(transport, a_large_post_body_arrives_whole) {
        HttpRequest *req = NULL;
        size_t len = 3u << 20;
        uint8_t *msg = malloc(len);
        Outcome o;

        cr_assert_not_null(msg);
        memset(msg, 0x5a, len);
        cr_assert_eq(http_request_new(transport, &req), 0);
        o = post(req, "/teep", msg, len, 1 << 20);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_eq(seen.body_len, len, "the server got %zu bytes", seen.body_len);
        http_request_free(req);
        free(msg);
}

Test(transport, response_larger_than_the_limit) {
        HttpRequest *req = NULL;
        Outcome o;

        cr_assert_eq(http_request_new(transport, &req), 0);
        o = post(req, "/big", NULL, 0, 100000);
        cr_assert_eq(o.error, -E2BIG, "%d %s", o.error, o.message);
        cr_assert(strstr(o.message, "100000"), "%s", o.message);
        /* and the same handle is fine afterwards */
        o = post(req, "/big", NULL, 0, 400000);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.body_len, 300000);
        http_request_free(req);
}

Test(transport, slow_server_times_out) {
        HttpRequest *req = NULL;
        Outcome o;

        cr_assert_eq(http_request_new(transport, &req), 0);
        o = post(req, "/slow", NULL, 0, 1000);
        cr_assert_eq(o.error, -ETIMEDOUT, "%d %s", o.error, o.message);
        cr_assert(strstr(o.message, "/slow"), "the message names the URI: %s", o.message);
        http_request_free(req);
}

Test(transport, refused_connection_and_no_redirects) {
        HttpRequest *req = NULL;
        Outcome o = {};
        int fd, one = 1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        char dead[64];

        /* a port nobody listens on: bind one, learn its number, close it */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
        close(fd);
        snprintf(dead, sizeof(dead), "http://127.0.0.1:%u/tam", ntohs(sa.sin_port));

        cr_assert_eq(http_request_new(transport, &req), 0);
        cr_assert_eq(http_request_post_teep(req, dead, NULL, 0, 1000, on_done, &o), 0);
        cr_assert(test_event_run_until(event, &o.done, 10000));
        cr_assert_eq(o.error, -ECONNREFUSED, "%d %s", o.error, o.message);

        o = post(req, "/redirect", NULL, 0, 1000);
        cr_assert_eq(o.error, 0);
        cr_assert_eq(o.status, 302, "redirect followed?");
        cr_assert_eq(seen.requests, 1, "the redirect target was fetched");
        http_request_free(req);
}

Test(transport, only_http_uris) {
        HttpRequest *req = NULL;
        Outcome o = {};

        cr_assert_eq(http_request_new(transport, &req), 0);
        cr_assert_eq(http_request_post_teep(req, "file:///etc/passwd", NULL, 0, 1000, on_done, &o), -EINVAL);
        cr_assert_eq(http_request_get_stream(req, "ftp://x/y", 1000, NULL, on_done, &o), -EINVAL);
        cr_assert(!http_request_is_active(req));
        cr_assert_eq(http_request_post_teep(req, url("/teep"), NULL, 0, 1000, on_done, &o), 0);
        cr_assert_eq(http_request_post_teep(req, url("/teep"), NULL, 0, 1000, on_done, &o), -EBUSY);
        http_request_free(req); /* cancels: the callback must not run */
        cr_assert_eq(sd_event_run(event, 200 * 1000) >= 0, true);
        cr_assert(!o.done);
}

/* ---- streamed GETs (the payload downloads) against payload-server.c ---- */

#define MiB (1024u * 1024u)

/* A receiver that takes at most `window` bytes until its reader (a timer, every millisecond)
 * has taken them away: the transfer pauses whenever the window is full, and resumes from the
 * event loop, as with a pipe the agent reads slowly. */
typedef struct Sink {
        HttpRequest *req;
        PayloadServer *server;
        uint64_t got;
        bool bytes_ok;
        unsigned calls;
        size_t max_chunk;
        uint64_t content_length;

        uint64_t window;          /* 0: take everything at once */
        uint64_t per_tick;        /* room made each millisecond (0: 64 KiB) */
        uint64_t room;
        sd_event_source *reader;
        bool paused;
        unsigned pauses, resumes;
        bool never_resume;        /* pause at the first byte and stay so */
        bool stop_on_resume;      /* the bytes offered again after a resume: stop */
        uint64_t stop_after;      /* stop once this much is taken (0: never) */
        bool in_resume;
        bool done_in_resume;      /* done was called from inside http_request_resume() */
        Outcome o;
} Sink;

static HttpDataVerdict sink_on_data(HttpRequest *req, const uint8_t *data, size_t len, void *userdata) {
        Sink *k = userdata;

        k->calls++;
        k->content_length = http_request_content_length(req);
        if (len > k->max_chunk)
                k->max_chunk = len;
        if (k->never_resume)
                return HTTP_DATA_PAUSE;
        if (k->stop_on_resume && k->in_resume)
                return HTTP_DATA_STOP;
        if (k->stop_after && k->got >= k->stop_after)
                return HTTP_DATA_STOP;
        if (k->window && len > k->room) {
                k->paused = true;
                k->pauses++;
                return HTTP_DATA_PAUSE;
        }
        /* a byte lost, repeated or reordered across a pause shows here */
        if (!payload_bytes_match(data, len, k->got))
                k->bytes_ok = false;
        k->got += len;
        if (k->window)
                k->room -= len;
        return HTTP_DATA_TAKEN;
}

static void sink_on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Sink *k = userdata;

        if (k->in_resume)
                k->done_in_resume = true;
        on_done(req, res, &k->o);
        k->o.body_len = res->body_len;
        k->content_length = res->content_length;
}

static int sink_on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Sink *k = userdata;

        uint64_t more = k->per_tick ? k->per_tick : 64 * 1024;

        k->room = k->room + more > k->window ? k->window : k->room + more;
        if (k->paused && !k->o.done) {
                k->paused = false;
                k->resumes++;
                k->in_resume = true;
                http_request_resume(k->req);
                k->in_resume = false;
        }
        (void)sd_event_source_set_time_relative(s, 1000);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static Transport *stream_transport_with(uint64_t timeout_usec, uint64_t payload_timeout_usec) {
        Transport *t = NULL;
        TransportConfig tc = { .connect_timeout_usec = 5 * 1000000,
                               .timeout_usec = timeout_usec,
                               .payload_timeout_usec = payload_timeout_usec,
                               .helper_path = getenv("TEEP_BROKER_HTTP") };

        cr_assert_eq(transport_new(event, &tc, &t), 0);
        return t;
}

static Transport *stream_transport(uint64_t timeout_usec) {
        Transport *t = NULL;
        TransportConfig tc = { .connect_timeout_usec = 5 * 1000000,
                               .timeout_usec = timeout_usec,
                               .helper_path = getenv("TEEP_BROKER_HTTP") };

        cr_assert_eq(transport_new(event, &tc, &t), 0);
        return t;
}

/* GET path from the payload server into k, until done (at most 20 s). */
static void stream(Transport *t, Sink *k, const char *path, uint64_t max) {
        char uri[128];

        k->bytes_ok = true;
        k->room = k->window;
        if (!k->server) {
                k->server = payload_server_start();
                cr_assert_not_null(k->server);
        }
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%u%s", payload_server_port(k->server), path);
        if (k->window) {
                cr_assert_geq(sd_event_add_time_relative(event, &k->reader, CLOCK_MONOTONIC, 1000, 1, sink_on_tick, k),
                              0);
                cr_assert_geq(sd_event_source_set_enabled(k->reader, SD_EVENT_ON), 0);
        }
        cr_assert_eq(http_request_new(t, &k->req), 0);
        cr_assert_eq(http_request_get_stream(k->req, uri, max, sink_on_data, sink_on_done, k), 0);
        cr_assert(test_event_run_until(event, &k->o.done, 20000), "no end of %s", path);
        cr_assert(!http_request_is_active(k->req));
        k->reader = sd_event_source_disable_unref(k->reader);
}

static void sink_done(Sink *k) {
        http_request_free(k->req);
        payload_server_stop(k->server);
}

Test(transport, a_stream_paused_and_resumed_delivers_every_byte) {
        Transport *t = stream_transport(20 * 1000000);
        Sink k = { .window = 256 * 1024 };

        stream(t, &k, "/bytes/6291456", 64 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.o.status, 200);
        cr_assert_eq(k.got, 6 * MiB, "%" PRIu64 " bytes", k.got);
        cr_assert(k.bytes_ok, "the bytes differ from the ones served");
        cr_assert_eq(k.o.body_len, 6 * MiB);
        cr_assert_eq(k.content_length, 6 * MiB);
        cr_assert_gt(k.pauses, 0, "the transfer never paused");
        cr_assert_gt(k.resumes, 0);
        cr_assert_leq(k.max_chunk, CURL_MAX_WRITE_SIZE, "a chunk of %zu bytes", k.max_chunk);
        cr_assert(payload_server_wait_ended(k.server, 1, 5000));
        cr_assert_eq(payload_server_stats(k.server).ended_whole, 1);
        sink_done(&k);
        transport_free(t);
}

Test(transport, a_stream_without_content_length) {
        Transport *t = stream_transport(20 * 1000000);
        Sink k = { .window = 512 * 1024 };

        stream(t, &k, "/chunked/3145728", 64 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.got, 3 * MiB);
        cr_assert(k.bytes_ok);
        cr_assert_eq(k.content_length, UINT64_MAX, "Content-Length %" PRIu64, k.content_length);
        sink_done(&k);
        transport_free(t);
}

Test(transport, a_stream_with_another_status_never_reaches_on_data) {
        Transport *t = stream_transport(5 * 1000000);
        Sink k = {};

        stream(t, &k, "/missing", 1 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.o.status, 404);
        cr_assert_eq(k.calls, 0);
        sink_done(&k);
        transport_free(t);
}

Test(transport, a_stream_above_the_limit) {
        Transport *t = stream_transport(5 * 1000000);
        Sink k = {}, c = {};

        /* announced: refused before the body */
        stream(t, &k, "/bytes/2097152", 1 * MiB);
        cr_assert_eq(k.o.error, -E2BIG, "%d %s", k.o.error, k.o.message);
        cr_assert_eq(k.calls, 0, "on_data saw the body of an announced oversize");
        sink_done(&k);

        /* not announced: on_data sees up to the limit, never a byte past it */
        stream(t, &c, "/chunked/2097152", 1 * MiB);
        cr_assert_eq(c.o.error, -E2BIG, "%d %s", c.o.error, c.o.message);
        cr_assert_leq(c.got, 1 * MiB);
        cr_assert_gt(c.got, 0);
        cr_assert(c.bytes_ok);
        sink_done(&c);
        transport_free(t);
}

Test(transport, a_stream_the_receiver_stops_closes_the_connection) {
        Transport *t = stream_transport(20 * 1000000);
        Sink k = { .stop_after = 1 * MiB };
        PayloadServerStats st;

        stream(t, &k, "/bytes/268435456", 512 * MiB);
        cr_assert_eq(k.o.error, -ECANCELED, "%d %s", k.o.error, k.o.message);
        cr_assert_geq(k.got, 1 * MiB);
        cr_assert(k.bytes_ok);
        http_request_free(TAKE_PTR(k.req));
        cr_assert(payload_server_wait_ended(k.server, 1, 10000), "the server still sends");
        st = payload_server_stats(k.server);
        cr_assert_eq(st.ended_early, 1);
        cr_assert_lt(st.served, 256 * MiB, "the whole body went out");
        sink_done(&k);
        transport_free(t);
}

Test(transport, a_stream_stopped_while_resuming_ends_from_the_loop) {
        Transport *t = stream_transport(20 * 1000000);
        Sink k = { .window = 64 * 1024, .stop_on_resume = true };

        stream(t, &k, "/bytes/4194304", 64 * MiB);
#if TRANSPORT_VIA_HELPER
        /* teep-brokerd's transport offers the held bytes again from the loop, never from inside
         * http_request_resume(): the receiver never gets to stop there, and the stream completes */
        cr_assert_eq(k.o.error, 0, "%d %s", k.o.error, k.o.message);
        cr_assert_eq(k.got, 4 * MiB);
#else
        cr_assert_eq(k.o.error, -ECANCELED, "%d %s", k.o.error, k.o.message);
#endif
        cr_assert_gt(k.resumes, 0);
        cr_assert(!k.done_in_resume, "done was called from inside http_request_resume()");
        cr_assert(k.bytes_ok);
        sink_done(&k);
        transport_free(t);
}

Test(transport, a_stream_cut_by_the_server_fails) {
        Transport *t = stream_transport(20 * 1000000);
        Sink k = {};

        stream(t, &k, "/cut/4194304/1048576", 64 * MiB);
        cr_assert_eq(k.o.error, -ECONNRESET, "%d %s", k.o.error, k.o.message);
        cr_assert_leq(k.got, 1 * MiB);
        cr_assert(k.bytes_ok);
        sink_done(&k);
        transport_free(t);
}

/* libcurl's timeout counts while a transfer is paused: a receiver that never takes anything does
 * not hold the transfer beyond it. */
Test(transport, a_stream_paused_for_good_times_out) {
        Transport *t = stream_transport(1 * 1000000);
        Sink k = { .never_resume = true };

        stream(t, &k, "/bytes/8388608", 64 * MiB);
        cr_assert_eq(k.o.error, -ETIMEDOUT, "%d %s", k.o.error, k.o.message);
        cr_assert_gt(k.calls, 0);
        cr_assert_eq(k.got, 0);
        sink_done(&k);
        transport_free(t);
}

/* A payload read slowly but steadily runs past the per-request timeout, up to its own. */
Test(transport, a_slow_stream_runs_to_the_payload_timeout) {
        Transport *t = stream_transport_with(1 * 1000000, 20 * 1000000);
        Sink k = { .window = 16 * 1024, .per_tick = 2 * 1024 };
        uint64_t start = now_usec();

        stream(t, &k, "/bytes/6291456", 64 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.got, 6 * MiB);
        cr_assert(k.bytes_ok);
        cr_assert_gt(now_usec() - start, 1500000, "too fast to show anything: %" PRIu64 " us", now_usec() - start);
        sink_done(&k);
        transport_free(t);
}

/* ... but a server that sends nothing for the per-request timeout is cut then (libcurl averages
 * the speed over the last ~5 s, so a few seconds later), not at the payload timeout; without the
 * check the server's gate would close the connection after 10 s (another error). */
Test(transport, a_stream_the_server_stalls_ends_at_the_request_timeout) {
        Transport *t = stream_transport_with(1 * 1000000, 20 * 1000000);
        Sink k = {};
        uint64_t start = now_usec();

        stream(t, &k, "/gate/1048576/65536", 64 * MiB);
        cr_assert_eq(k.o.error, -ETIMEDOUT, "%d %s", k.o.error, k.o.message);
        cr_assert_eq(k.got, 65536);
        cr_assert_lt(now_usec() - start, 9500000, "cut after %" PRIu64 " us", now_usec() - start);
        sink_done(&k);
        transport_free(t);
}

/* ---- TLS: the configured CA set decides, and the host name must match ---- */

static char tls_dir[64];
static struct MHD_Daemon *tls_server;
static unsigned short tls_port;
static char *tls_key, *tls_cert; /* MHD keeps pointers to them */

static char *slurp_file(const char *dir, const char *name) {
        char path[256];
        FILE *f;
        char *buf = calloc(1, 65536);
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        cr_assert_not_null(f, "%s", path);
        n = fread(buf, 1, 65535, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

static void tls_up(const char *sans) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const union MHD_DaemonInfo *info;

        if (!test_have_certtool())
                cr_skip_test("certtool (gnutls-bin) is not installed");
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                cr_skip_test("libmicrohttpd without TLS");
        snprintf(tls_dir, sizeof(tls_dir), "/tmp/teepkit-tls-XXXXXX");
        cr_assert_not_null(mkdtemp(tls_dir));
        test_make_pki(tls_dir, sans);
        tls_key = slurp_file(tls_dir, "srv.key");
        tls_cert = slurp_file(tls_dir, "srv.pem");
        tls_server = MHD_start_daemon(MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                                      NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                                      MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_HTTPS_MEM_CERT, tls_cert,
                                      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
        cr_assert_not_null(tls_server);
        info = MHD_get_daemon_info(tls_server, MHD_DAEMON_INFO_BIND_PORT);
        tls_port = info->port;
}

static Outcome tls_post(const char *host, bool with_ca) {
        Transport *t = NULL;
        HttpRequest *req = NULL;
        Outcome o = {};
        char ca[128], uri[128];
        TransportConfig tc = {
                .connect_timeout_usec = 5 * 1000000,
                .timeout_usec = 5 * 1000000,
                .ca_file = with_ca ? ca : NULL,
                .helper_path = getenv("TEEP_BROKER_HTTP"),
        };

        snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
        snprintf(uri, sizeof(uri), "https://%s:%u/teep", host, tls_port);
        cr_assert_eq(transport_new(event, &tc, &t), 0);
        cr_assert_eq(http_request_new(t, &req), 0);
        cr_assert_eq(http_request_post_teep(req, uri, NULL, 0, 1 << 20, on_done, &o), 0);
        cr_assert(test_event_run_until(event, &o.done, 15000));
        http_request_free(req);
        transport_free(t);
        return o;
}

static void tls_down(void) {
        if (tls_server)
                MHD_stop_daemon(tls_server);
        free(tls_key);
        free(tls_cert);
        if (tls_dir[0]) {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
                (void)system(cmd);
        }
}

Test(transport, https_with_the_configured_ca) {
        Outcome o;

        tls_up("ip_address = \"127.0.0.1\"\\ndns_name = \"localhost\"");
        o = tls_post("127.0.0.1", true);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_eq(o.body_len, 40);
        o = tls_post("localhost", true);
        cr_assert_eq(o.error, 0, "%s", o.message);

        /* the system's CA set does not know our CA */
        o = tls_post("127.0.0.1", false);
        cr_assert_eq(o.error, -EPROTO, "%d %s", o.error, o.message);
        tls_down();
}

Test(transport, https_refuses_a_certificate_for_another_host) {
        Outcome o;

        tls_up("dns_name = \"tam.example\"");
        o = tls_post("127.0.0.1", true);
        cr_assert_eq(o.error, -EPROTO, "%d %s", o.error, o.message);
        cr_assert(strstr(o.message, "127.0.0.1"), "%s", o.message);
        tls_down();
}

#if TRANSPORT_VIA_HELPER
/* ---- teep-brokerd's side: the teep-broker-http child it starts, lets go and outlives ---- */

/* The pids of our children named teep-broker-http (the kernel's comm: 15 characters). */
static unsigned helper_children(pid_t *pids, unsigned max) {
        unsigned n = 0;
        DIR *d = opendir("/proc");
        struct dirent *de;

        cr_assert_not_null(d);
        while ((de = readdir(d)) && n < max) {
                char path[300], buf[512], *close_paren;
                int ppid = 0;
                FILE *f;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = '\0';
                fclose(f);
                close_paren = strrchr(buf, ')');
                if (!close_paren || !strstr(buf, "(teep-broker-htt") || sscanf(close_paren + 2, "%*c %d", &ppid) != 1 ||
                    ppid != getpid() || close_paren[2] == 'Z')
                        continue;
                pids[n++] = (pid_t)atoi(de->d_name);
        }
        closedir(d);
        return n;
}

static bool wait_helpers(unsigned want, unsigned timeout_ms) {
        pid_t pids[8];

        for (unsigned waited = 0;; waited += 10) {
                /* the loop reaps the children that exit */
                (void)sd_event_run(event, 10 * 1000);
                if (helper_children(pids, 8) == want)
                        return true;
                if (waited >= timeout_ms)
                        return false;
        }
}

Test(transport, the_helper_starts_on_demand_and_exits_when_idle) {
        TransportConfig tc = { .connect_timeout_usec = 2 * 1000000,
                               .timeout_usec = 2 * 1000000,
                               .helper_path = getenv("TEEP_BROKER_HTTP"),
                               .helper_idle_usec = 300 * 1000 };
        HttpRequest *req = NULL;
        Transport *t = NULL;
        pid_t pids[8], first;
        Outcome o;

        transport_free(TAKE_PTR(transport)); /* the suite's (10 s idle) */
        cr_assert_eq(transport_new(event, &tc, &t), 0);
        cr_assert_eq(helper_children(pids, 8), 0, "a helper before any request");
        cr_assert_eq(http_request_new(t, &req), 0);
        o = post(req, "/teep", NULL, 0, 1000);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_eq(helper_children(pids, 8), 1);
        first = pids[0];
        /* a second request soon after goes to the same helper, on the same connection */
        o = post(req, "/teep", NULL, 0, 1000);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.new_connections, 0);
        cr_assert_eq(helper_children(pids, 8), 1);
        cr_assert_eq(pids[0], first);
        /* idle: let go, and reaped (no zombie) */
        cr_assert(wait_helpers(0, 3000), "the helper is still there after its idle time");
        /* and a later request starts a new one */
        o = post(req, "/teep", NULL, 0, 1000);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(helper_children(pids, 8), 1);
        cr_assert_neq(pids[0], first);
        http_request_free(req);
        transport_free(t);
}

Test(transport, a_helper_that_dies_fails_its_requests_and_is_replaced) {
        HttpRequest *req = NULL;
        pid_t pids[8];
        Outcome o = {};

        cr_assert_eq(http_request_new(transport, &req), 0);
        /* /slow answers after 3 s: kill the helper while it waits */
        cr_assert_eq(http_request_post_teep(req, url("/slow"), NULL, 0, 1000, on_done, &o), 0);
        for (unsigned i = 0; i < 200 && helper_children(pids, 8) == 0; i++)
                (void)sd_event_run(event, 10 * 1000);
        cr_assert_eq(helper_children(pids, 8), 1);
        cr_assert_eq(kill(pids[0], SIGKILL), 0);
        cr_assert(test_event_run_until(event, &o.done, 5000), "no end after the helper died");
        cr_assert_eq(o.error, -EIO, "%d %s", o.error, o.message);
        cr_assert(strstr(o.message, "/slow") && strstr(o.message, "teep-broker-http"), "%s", o.message);
        cr_assert(wait_helpers(0, 3000), "the dead helper was not reaped");

        o = post(req, "/teep", NULL, 0, 1000);
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_eq(o.status, 200);
        cr_assert_eq(helper_children(pids, 8), 1);
        http_request_free(req);
}

/* ---- http_request_get_into(): teep-broker-http writes a payload into the broker's pipe ---- */

typedef struct Into {
        Outcome o;
        unsigned headers;
        uint64_t content_length;
        int rfd;                  /* our end of the pipe */
        uint64_t got;
        bool bytes_ok;
        uint64_t per_tick;        /* bytes read each millisecond (0: none) */
        uint64_t close_after;     /* close our end once this much is read (0: never) */
        sd_event_source *reader;
} Into;

static void into_on_headers(HttpRequest *req, uint64_t content_length, void *userdata) {
        Into *k = userdata;

        k->headers++;
        k->content_length = content_length;
}

static void into_on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Into *k = userdata;

        on_done(req, res, &k->o);
        k->o.body_len = res->body_len;
}

static int into_on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Into *k = userdata;
        uint8_t buf[65536];
        uint64_t want = k->per_tick;

        while (want > 0 && k->rfd >= 0) {
                ssize_t n = read(k->rfd, buf, want < sizeof(buf) ? want : sizeof(buf));
                if (n <= 0)
                        break;
                if (!payload_bytes_match(buf, (size_t)n, k->got))
                        k->bytes_ok = false;
                k->got += (uint64_t)n;
                want -= (uint64_t)n;
                if (k->close_after && k->got >= k->close_after)
                        k->rfd = safe_close(k->rfd);
        }
        (void)sd_event_source_set_time_relative(s, 1000);
        return 0;
}

/* GET path into a pipe that k reads per_tick bytes of each millisecond; until done (20 s). */
static void into(Transport *t, Into *k, PayloadServer *ps, const char *path, uint64_t max) {
        HttpRequest *req = NULL;
        char uri[128];
        int p[2];
        uint8_t buf[65536];
        ssize_t n;

        k->bytes_ok = true;
        cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        k->rfd = p[0];
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%u%s", payload_server_port(ps), path);
        cr_assert_geq(sd_event_add_time_relative(event, &k->reader, CLOCK_MONOTONIC, 1000, 1, into_on_tick, k), 0);
        cr_assert_geq(sd_event_source_set_enabled(k->reader, SD_EVENT_ON), 0);
        cr_assert_eq(http_request_new(t, &req), 0);
        cr_assert_eq(http_request_get_into(req, uri, max, p[1], into_on_headers, into_on_done, k), 0);
        cr_assert(test_event_run_until(event, &k->o.done, 20000), "no end of %s", path);
        k->reader = sd_event_source_disable_unref(k->reader);
        /* the helper closed the pipe before done: what is left, then the end */
        while (k->rfd >= 0 && (n = read(k->rfd, buf, sizeof(buf))) > 0) {
                if (!payload_bytes_match(buf, (size_t)n, k->got))
                        k->bytes_ok = false;
                k->got += (uint64_t)n;
        }
        if (k->rfd >= 0)
                cr_assert_eq(n, 0, "the pipe is still open after done (%s)", strerror(errno));
        k->rfd = safe_close(k->rfd);
        http_request_free(req);
}

Test(transport, get_into_writes_the_whole_payload_into_a_slow_pipe) {
        Transport *t = stream_transport(5 * 1000000);
        PayloadServer *ps = payload_server_start();
        Into k = { .per_tick = 256 * 1024 };

        cr_assert_not_null(ps);
        into(t, &k, ps, "/bytes/8388608", 64 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.o.status, 200);
        cr_assert_eq(k.headers, 1);
        cr_assert_eq(k.content_length, 8 * MiB);
        cr_assert_eq(k.o.body_len, 8 * MiB, "done counts %zu bytes", k.o.body_len);
        cr_assert_eq(k.got, 8 * MiB, "%" PRIu64 " bytes read", k.got);
        cr_assert(k.bytes_ok, "the bytes differ from the ones served");
        payload_server_stop(ps);
        transport_free(t);
}

Test(transport, get_into_a_pipe_whose_reader_left_is_epipe) {
        Transport *t = stream_transport(5 * 1000000);
        PayloadServer *ps = payload_server_start();
        Into k = { .per_tick = 64 * 1024, .close_after = 1 * MiB };

        cr_assert_not_null(ps);
        into(t, &k, ps, "/bytes/268435456", 512 * MiB);
        cr_assert_eq(k.o.error, -EPIPE, "%d %s", k.o.error, k.o.message);
        cr_assert(strstr(k.o.message, "reader is gone"), "%s", k.o.message);
        cr_assert_lt(k.o.body_len, 256 * MiB);
        cr_assert(payload_server_wait_ended(ps, 1, 10000), "the server still sends");
        payload_server_stop(ps);
        transport_free(t);
}

Test(transport, get_into_a_pipe_nobody_reads_is_enobufs_after_the_timeout) {
        /* the pipe may stay full for the request timeout (1 s); the download as a whole has 20 */
        Transport *t = stream_transport_with(1 * 1000000, 20 * 1000000);
        PayloadServer *ps = payload_server_start();
        Into k = {};
        uint64_t start = now_usec();

        cr_assert_not_null(ps);
        into(t, &k, ps, "/bytes/16777216", 64 * MiB);
        cr_assert_eq(k.o.error, -ENOBUFS, "%d %s", k.o.error, k.o.message);
        cr_assert(strstr(k.o.message, "took nothing for 1 s"), "%s", k.o.message);
        cr_assert_lt(now_usec() - start, 6000000, "ended after %" PRIu64 " us", now_usec() - start);
        cr_assert_gt(k.got, 0, "the pipe was full: its bytes were still read at the end");
        cr_assert(k.bytes_ok);
        payload_server_stop(ps);
        transport_free(t);
}

Test(transport, get_into_another_status_writes_nothing) {
        Transport *t = stream_transport(5 * 1000000);
        PayloadServer *ps = payload_server_start();
        Into k = { .per_tick = 64 * 1024 };

        cr_assert_not_null(ps);
        into(t, &k, ps, "/missing", 1 * MiB);
        cr_assert_eq(k.o.error, 0, "%s", k.o.message);
        cr_assert_eq(k.o.status, 404);
        cr_assert_eq(k.headers, 0);
        cr_assert_eq(k.got, 0);
        payload_server_stop(ps);
        transport_free(t);
}

Test(transport, a_helper_that_cannot_be_started_is_a_clear_error) {
        TransportConfig tc = { .timeout_usec = 1000000, .helper_path = "/nonexistent/teep-broker-http" };
        Transport *t = NULL;

        cr_assert_eq(transport_new(event, &tc, &t), -ENOENT);
        cr_assert_null(t);
}
#endif
