/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-transport.c: the broker's HTTP client against a real HTTP server on 127.0.0.1 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker-test.h"
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
        cr_assert_eq(http_request_get_to_fd(req, "ftp://x/y", 1, 1000, on_done, &o), -EINVAL);
        cr_assert(!http_request_is_active(req));
        cr_assert_eq(http_request_post_teep(req, url("/teep"), NULL, 0, 1000, on_done, &o), 0);
        cr_assert_eq(http_request_post_teep(req, url("/teep"), NULL, 0, 1000, on_done, &o), -EBUSY);
        http_request_free(req); /* cancels: the callback must not run */
        cr_assert_eq(sd_event_run(event, 200 * 1000) >= 0, true);
        cr_assert(!o.done);
}

Test(transport, download_into_a_file_descriptor) {
        HttpRequest *req = NULL;
        Outcome o = {};
        uint8_t buf[4096];
        size_t total = 0;
        ssize_t n;
        int fd;

        fd = memfd_create("test", MFD_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(http_request_new(transport, &req), 0);
        cr_assert_eq(http_request_get_to_fd(req, url("/payload"), fd, 1 << 20, on_done, &o), 0);
        cr_assert(test_event_run_until(event, &o.done, 10000));
        cr_assert_eq(o.error, 0, "%s", o.message);
        cr_assert_str_eq(seen.method, "GET");
        cr_assert_eq(o.body_len, 200000);
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        cr_assert_eq(buf[i], 0x5a);
                total += (size_t)n;
        }
        cr_assert_eq(total, 200000);

        /* a limit below the size fails, whatever was written */
        cr_assert_eq(ftruncate(fd, 0), 0);
        o = (Outcome){};
        cr_assert_eq(http_request_get_to_fd(req, url("/payload"), fd, 1000, on_done, &o), 0);
        cr_assert(test_event_run_until(event, &o.done, 10000));
        cr_assert_eq(o.error, -E2BIG, "%d %s", o.error, o.message);
        http_request_free(req);
        close(fd);
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
