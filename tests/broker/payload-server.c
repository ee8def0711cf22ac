/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* payload-server.c: see payload-server.h */
#include "payload-server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GATE_WAIT_MS 10000

/* mapped MAP_SHARED: forked children see the same counters and gate */
struct PayloadServer {
        struct MHD_Daemon *daemon;
        unsigned short port;
        int gate_open;
        PayloadServerStats stats;
};

typedef struct Body {
        PayloadServer *server;
        uint64_t size; /* what is sent at most */
        uint64_t cut;  /* close the connection here (UINT64_MAX: never) */
        uint64_t gate; /* wait for the gate here (UINT64_MAX: never) */
        uint64_t sent;
} Body;

/* *con_cls of a request before it is known to be a payload request (then: its Body) */
static int request_started;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max) {
        Body *b = cls;
        uint64_t end = b->size;

        if (pos >= b->cut)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pos == b->gate) {
                uint64_t until = now_ms() + GATE_WAIT_MS;
                while (!__atomic_load_n(&b->server->gate_open, __ATOMIC_ACQUIRE)) {
                        if (now_ms() > until)
                                return MHD_CONTENT_READER_END_WITH_ERROR;
                        usleep(10 * 1000);
                }
        }
        if (pos >= end)
                return MHD_CONTENT_READER_END_OF_STREAM;
        if (b->cut < end)
                end = b->cut;
        if (b->gate > pos && b->gate < end)
                end = b->gate;
        if (max > end - pos)
                max = (size_t)(end - pos);
        for (size_t i = 0; i < max; i++)
                buf[i] = (char)payload_byte(pos + i);
        b->sent = pos + max;
        __atomic_store_n(&b->server->stats.served, b->sent, __ATOMIC_RELEASE);
        return (ssize_t)max;
}

static void body_free(void *cls) {
        free(cls);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
        PayloadServer *s = cls;
        struct MHD_Response *r;
        enum MHD_Result ret;
        uint64_t n = 0, m = 0;
        char kind[16] = "";
        Body *b;

        if (!*con_cls) {
                *con_cls = &request_started;
                return MHD_YES;
        }
        *upload_data_size = 0;
        if (sscanf(url, "/%15[a-z]/%" SCNu64 "/%" SCNu64, kind, &n, &m) < 2 ||
            (strcmp(kind, "bytes") != 0 && strcmp(kind, "chunked") != 0 && strcmp(kind, "cut") != 0 &&
             strcmp(kind, "gate") != 0)) {
                r = MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT);
                ret = MHD_queue_response(c, 404, r);
                MHD_destroy_response(r);
                return ret;
        }
        b = calloc(1, sizeof(*b));
        if (!b)
                return MHD_NO;
        b->server = s;
        b->size = n;
        b->cut = strcmp(kind, "cut") == 0 ? m : UINT64_MAX;
        b->gate = strcmp(kind, "gate") == 0 ? m : UINT64_MAX;
        __atomic_store_n(&s->stats.served, 0, __ATOMIC_RELEASE);
        __atomic_add_fetch(&s->stats.requests, 1, __ATOMIC_ACQ_REL);
        r = MHD_create_response_from_callback(strcmp(kind, "chunked") == 0 ? MHD_SIZE_UNKNOWN : n, 64 * 1024,
                                              body_read, b, body_free);
        if (!r) {
                free(b);
                return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "application/octet-stream");
        /* the request's own record of its body, for on_completed() */
        *con_cls = b;
        ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        PayloadServer *s = cls;

        /* payload requests only (their Body goes with the response, not here) */
        if (!*con_cls || *con_cls == &request_started)
                return;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
                __atomic_add_fetch(&s->stats.ended_whole, 1, __ATOMIC_ACQ_REL);
        else
                __atomic_add_fetch(&s->stats.ended_early, 1, __ATOMIC_ACQ_REL);
}

PayloadServer *payload_server_start(void) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        const union MHD_DaemonInfo *info;
        PayloadServer *s;

        s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
                return NULL;
        memset(s, 0, sizeof(*s));
        s->daemon =
                MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                                 NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
        if (!s->daemon) {
                munmap(s, sizeof(*s));
                return NULL;
        }
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : 0;
        return s;
}

void payload_server_stop(PayloadServer *s) {
        if (!s)
                return;
        /* a reader waiting at its gate would hold MHD_stop_daemon() up to GATE_WAIT_MS */
        payload_server_open_gate(s);
        MHD_stop_daemon(s->daemon);
        munmap(s, sizeof(*s));
}

unsigned short payload_server_port(const PayloadServer *s) {
        return s->port;
}

PayloadServerStats payload_server_stats(const PayloadServer *s) {
        return (PayloadServerStats){
                .requests = __atomic_load_n(&s->stats.requests, __ATOMIC_ACQUIRE),
                .ended_whole = __atomic_load_n(&s->stats.ended_whole, __ATOMIC_ACQUIRE),
                .ended_early = __atomic_load_n(&s->stats.ended_early, __ATOMIC_ACQUIRE),
                .served = __atomic_load_n(&s->stats.served, __ATOMIC_ACQUIRE),
        };
}

void payload_server_open_gate(PayloadServer *s) {
        __atomic_store_n(&s->gate_open, 1, __ATOMIC_RELEASE);
}

bool payload_server_wait_ended(const PayloadServer *s, unsigned n, unsigned timeout_ms) {
        uint64_t until = now_ms() + timeout_ms;

        for (;;) {
                PayloadServerStats st = payload_server_stats(s);
                if (st.ended_whole + st.ended_early >= n)
                        return true;
                if (now_ms() > until)
                        return false;
                usleep(10 * 1000);
        }
}

bool payload_bytes_match(const uint8_t *data, size_t len, uint64_t off) {
        for (size_t i = 0; i < len; i++)
                if (data[i] != payload_byte(off + i))
                        return false;
        return true;
}
