/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http-helper.c: teep-broker-http — teep-brokerd's HTTP, in a process without the bus (http-wire.h) */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "config.h"
#include "http-wire.h"
#include "log.h"
#include "macro.h"
#include "sandbox.h"
#include "transport.h"

#define CONTROL_FD 3
#define CHANNELS_MAX 64u

typedef struct Helper Helper;

typedef struct Channel {
        Helper *helper;
        struct Channel *next, *prev;
        int fd;
        sd_event_source *io;
        HttpRequest *req;
        HttpWireStart start;
        char *uri;
        uint8_t *body; /* the POST body, while it arrives */
        size_t body_got;
        uint8_t *out;  /* frames the socket did not take yet */
        size_t out_len, out_off, out_alloc;
        bool headers_sent;
        bool done;     /* DONE is queued: close once it is out */
        bool paused;   /* the transfer waits for room in the socket (GET_INTO: in the pipe) */

        /* GET_INTO: the pipe the body goes into, and what it had no room for yet */
        int sink;
        sd_event_source *sink_out;  /* EPOLLOUT on sink while carry holds bytes */
        sd_event_source *stall;     /* how long the pipe may stay full */
        uint8_t *carry;
        size_t carry_off, carry_len, carry_alloc;
        uint64_t written;
        int sink_error;             /* -EPIPE, -ENOBUFS: why the transfer was stopped */
        HttpWireDone held;          /* the transfer ended while carry held bytes: its answer */
        char *held_content_type;
        bool held_done;
} Channel;

struct Helper {
        sd_event *event;
        uint64_t timeout_usec; /* how long a GET_INTO pipe may stay full */
        Transport *transport;
        sd_event_source *control;
        Channel *channels;
        unsigned n_channels;
};

static Channel *channel_free(Channel *c) {
        Helper *h;

        if (!c)
                return NULL;
        h = c->helper;
        if (c->prev)
                c->prev->next = c->next;
        else
                h->channels = c->next;
        if (c->next)
                c->next->prev = c->prev;
        h->n_channels--;
        http_request_free(c->req);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->sink_out);
        sd_event_source_disable_unref(c->stall);
        if (c->fd >= 0)
                close(c->fd);
        safe_close(c->sink);
        free(c->carry);
        free(c->held_content_type);
        free(c->uri);
        free(c->body);
        free(c->out);
        free(c);
        return NULL;
}

/* Write what is queued; 1 when all of it is out, 0 when the socket is full, -errno. */
static int channel_flush(Channel *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->out_off += (size_t)n;
        }
        c->out_len = c->out_off = 0;
        return 1;
}

static int channel_queue(Channel *c, uint32_t type, const void *p1, size_t n1, const void *p2, size_t n2,
                         const void *p3, size_t n3, const void *p4, size_t n4) {
        HttpWireFrame f = { .type = type, .len = (uint32_t)(n1 + n2 + n3 + n4) };
        size_t need = c->out_len + sizeof(f) + f.len;
        uint8_t *p;

        if (need > c->out_alloc) {
                uint8_t *o = realloc(c->out, need);
                if (!o)
                        return -ENOMEM;
                c->out = o;
                c->out_alloc = need;
        }
        p = c->out + c->out_len;
        memcpy(p, &f, sizeof(f));
        p += sizeof(f);
        if (n1)
                memcpy(p, p1, n1), p += n1;
        if (n2)
                memcpy(p, p2, n2), p += n2;
        if (n3)
                memcpy(p, p3, n3), p += n3;
        if (n4)
                memcpy(p, p4, n4);
        c->out_len = need;
        return 0;
}

/* After queueing: send what the socket takes; watch for room when it took less. */
static int channel_send(Channel *c) {
        int r = channel_flush(c);
        if (r < 0)
                return r;
        if (r == 0)
                return sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLOUT);
        if (c->done) {
                channel_free(c);
                return 1;
        }
        return sd_event_source_set_io_events(c->io, EPOLLIN);
}

/* Before a stream's first body bytes: HEADERS, once (queued; the caller sends). */
static int channel_queue_headers(Channel *c, HttpRequest *req) {
        uint64_t cl;
        int r;

        if (c->headers_sent)
                return 0;
        cl = http_request_content_length(req);
        r = channel_queue(c, HTTP_WIRE_HEADERS, &cl, sizeof(cl), NULL, 0, NULL, 0, NULL, 0);
        if (r >= 0)
                c->headers_sent = true;
        return r;
}

static HttpDataVerdict on_data(HttpRequest *req, const uint8_t *data, size_t len, void *userdata) {
        Channel *c = userdata;

        if (c->out_len > 0) {
                c->paused = true;
                return HTTP_DATA_PAUSE;
        }
        if (channel_queue_headers(c, req) < 0)
                return HTTP_DATA_STOP;
        while (len > 0) {
                size_t n = len < HTTP_WIRE_DATA_MAX ? len : HTTP_WIRE_DATA_MAX;
                if (channel_queue(c, HTTP_WIRE_DATA, data, n, NULL, 0, NULL, 0, NULL, 0) < 0)
                        return HTTP_DATA_STOP;
                data += n;
                len -= n;
        }
        /* the bytes are ours now; what the socket does not take waits for room (a failure: the
         * broker is gone) */
        return channel_send(c) < 0 ? HTTP_DATA_STOP : HTTP_DATA_TAKEN;
}

/* Queue DONE for res (GET_INTO: the pipe is closed first, and received is what went into it)
 * and send it; the channel goes once it is out. */
static void channel_answer(Channel *c, const HttpResult *res) {
        size_t ct = res->content_type ? strnlen(res->content_type, HTTP_WIRE_TEXT_MAX) : 0;
        size_t msg = res->message ? strnlen(res->message, HTTP_WIRE_TEXT_MAX) : 0;
        size_t body = res->body ? res->body_len : 0;
        static const char too_large[] = "the answer is too large to pass on";
        HttpResult refused = { .message = too_large };
        HttpWireDone d = {
                .error = res->error,
                .content_type_len = (uint32_t)ct,
                .status = res->status,
                .content_length = res->content_length,
                .received = c->start.op == HTTP_WIRE_GET_INTO ? c->written : res->body_len,
                .new_connections = res->new_connections,
                .message_len = (uint32_t)msg,
                .body_len = (uint32_t)body,
        };
        int r;

        /* the reader sees the end of the stream now; the pipe's watch and stall timer go with it
         * (before the close: a source must not outlive its descriptor, and a stall timer still
         * armed would answer a second time if DONE waited for room in the socket) */
        c->sink_out = sd_event_source_disable_unref(c->sink_out);
        c->stall = sd_event_source_disable_unref(c->stall);
        c->sink = safe_close(c->sink);
        if (body > UINT32_MAX - sizeof(d) - 2 * HTTP_WIRE_TEXT_MAX) {
                /* a frame's length is 32 bits (only a MaxMessageSize= of 4G gets here) */
                d = (HttpWireDone){ .error = -E2BIG, .status = res->status, .content_length = res->content_length,
                                    .message_len = sizeof(too_large) - 1 };
                ct = body = 0;
                res = &refused;
        }
        r = channel_queue(c, HTTP_WIRE_DONE, &d, sizeof(d), res->content_type, ct, res->message, d.message_len,
                          res->body, body);
        if (r < 0)
                log_error("%s: cannot queue the answer: %s", c->uri, strerror(-r));
        c->done = true;
        /* the request is over: free it now (it is ours, and libcurl's handle goes with it) */
        c->req = http_request_free(c->req);
        if (r < 0 || channel_send(c) < 0)
                channel_free(c);
}

/* GET_INTO stopped by its pipe: the reader is gone (-EPIPE), took nothing for too long
 * (-ENOBUFS), or another write error. */
static void sink_give_up(Channel *c, int error) {
        char message[256];

        if (error == -EPIPE)
                snprintf(message, sizeof(message), "%s: the pipe's reader is gone", c->uri);
        else if (error == -ENOBUFS)
                snprintf(message, sizeof(message), "%s: the pipe's reader took nothing for %" PRIu64 " s", c->uri,
                         c->helper->timeout_usec / 1000000u);
        else
                snprintf(message, sizeof(message), "%s: cannot write to the pipe: %s", c->uri, strerror(-error));
        channel_answer(c, &(const HttpResult){ .error = error,
                                               .status = 200,
                                               .content_length = c->held_done ? c->held.content_length : UINT64_MAX,
                                               .message = message });
}

static void on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Channel *c = userdata;

        if (c->start.op == HTTP_WIRE_GET_INTO && c->sink_error < 0) {
                /* on_data stopped it for the pipe's sake: say so rather than "stopped by the receiver" */
                sink_give_up(c, c->sink_error);
                return;
        }
        if (c->start.op == HTTP_WIRE_GET_INTO && res->error == 0 && c->carry_len > 0) {
                /* all in, but the pipe still has to take the rest: answer once it did */
                c->held = (HttpWireDone){ .status = res->status, .content_length = res->content_length,
                                          .new_connections = res->new_connections };
                c->held_content_type = res->content_type ? strdup(res->content_type) : NULL;
                c->held_done = true;
                c->req = http_request_free(c->req);
                return;
        }
        channel_answer(c, res);
}

/* As much of p as the pipe takes now: the count, or -errno (-EPIPE: no reader). */
static ssize_t sink_write(Channel *c, const uint8_t *p, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t k = write(c->sink, p + done, len - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                done += (size_t)k;
        }
        c->written += done;
        return (ssize_t)done;
}

static HttpDataVerdict on_data_into(HttpRequest *req, const uint8_t *data, size_t len, void *userdata) {
        Channel *c = userdata;
        ssize_t n;

        if (c->carry_len > 0) {
                c->paused = true;
                return HTTP_DATA_PAUSE;
        }
        if (!c->headers_sent && (channel_queue_headers(c, req) < 0 || channel_send(c) < 0))
                return HTTP_DATA_STOP;
        n = sink_write(c, data, len);
        if (n < 0) {
                c->sink_error = (int)n;
                return HTTP_DATA_STOP;
        }
        if ((size_t)n < len) {
                /* the rest waits for room; the transfer pauses on the next piece */
                if (len - (size_t)n > c->carry_alloc) {
                        uint8_t *p = realloc(c->carry, len - (size_t)n);
                        if (!p)
                                return HTTP_DATA_STOP;
                        c->carry = p;
                        c->carry_alloc = len - (size_t)n;
                }
                memcpy(c->carry, data + n, len - (size_t)n);
                c->carry_off = 0;
                c->carry_len = len - (size_t)n;
                if (sd_event_source_set_enabled(c->sink_out, SD_EVENT_ON) < 0 ||
                    sd_event_source_set_time_relative(c->stall, c->helper->timeout_usec) < 0 ||
                    sd_event_source_set_enabled(c->stall, SD_EVENT_ONESHOT) < 0)
                        return HTTP_DATA_STOP;
        }
        return HTTP_DATA_TAKEN;
}

static int on_sink_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Channel *c = userdata;
        ssize_t n = sink_write(c, c->carry + c->carry_off, c->carry_len);

        if (n < 0) {
                sink_give_up(c, (int)n);
                return 0;
        }
        c->carry_off += (size_t)n;
        c->carry_len -= (size_t)n;
        if (c->carry_len > 0) {
                /* the reader is reading: its time to make room starts again */
                if (n > 0)
                        (void)sd_event_source_set_time_relative(c->stall, c->helper->timeout_usec);
                return 0;
        }
        (void)sd_event_source_set_enabled(c->sink_out, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(c->stall, SD_EVENT_OFF);
        if (c->held_done) {
                HttpResult res = { .status = c->held.status,
                                   .content_type = c->held_content_type,
                                   .content_length = c->held.content_length,
                                   .new_connections = c->held.new_connections };
                channel_answer(c, &res);
                return 0;
        }
        if (c->paused && c->req) {
                c->paused = false; /* (on_data_into may pause it again from in here) */
                http_request_resume(c->req);
        }
        return 0;
}

static int on_stall(sd_event_source *s, uint64_t usec, void *userdata) {
        sink_give_up(userdata, -ENOBUFS);
        return 0;
}

static int channel_begin(Channel *c) {
        Helper *h = c->helper;
        int r;

        r = http_request_new(h->transport, &c->req);
        if (r < 0)
                return r;
        if (c->start.op == HTTP_WIRE_POST)
                r = http_request_post_teep(c->req, c->uri, c->body, c->body_got, c->start.max, on_done, c);
        else if (c->start.op == HTTP_WIRE_GET_INTO)
                r = http_request_get_stream(c->req, c->uri, c->start.max, on_data_into, on_done, c);
        else
                r = http_request_get_stream(c->req, c->uri, c->start.max, on_data, on_done, c);
        free(c->body);
        c->body = NULL;
        return r;
}

/* Read what there is of the POST body; once it is all in, start the request. Returns 1 when it
 * started, 0 when more is to come, -1 when the channel is gone (freed). */
static int channel_read_body(Channel *c) {
        int r;

        while (c->body_got < c->start.body_len) {
                ssize_t n = read(c->fd, c->body + c->body_got, c->start.body_len - c->body_got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        channel_free(c); /* the broker gave up before the body was complete */
                        return -1;
                }
                c->body_got += (size_t)n;
        }
        r = channel_begin(c);
        if (r < 0) {
                log_error("%s: cannot start the request: %s", c->uri, strerror(-r));
                channel_free(c);
                return -1;
        }
        return 1;
}

static int on_channel(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Channel *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                r = channel_send(c);
                if (r < 0) {
                        channel_free(c);
                        return 0;
                }
                if (r > 0)
                        return 0; /* freed: DONE went out */
                if (c->paused && c->out_len == 0 && c->carry_len == 0 && c->req) {
                        c->paused = false;
                        http_request_resume(c->req);
                }
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        if (c->body_got < c->start.body_len) {
                (void)channel_read_body(c);
                return 0;
        }
        /* the broker writes nothing after the body: this is its end closing (cancel) */
        channel_free(c);
        return 0;
}

/* Takes fd (the channel) and sink (GET_INTO's pipe, or -1): both are the channel's, closed with
 * it, also when it cannot be set up. */
static int start_channel(Helper *h, const HttpWireStart *st, const char *uri, int fd, int sink) {
        Channel *c;
        int fl, r;

        if (h->n_channels >= CHANNELS_MAX) {
                safe_close(fd);
                safe_close(sink);
                return -EMFILE;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                safe_close(sink);
                return -ENOMEM;
        }
        c->helper = h;
        c->fd = fd;
        c->sink = sink;
        c->start = *st;
        c->next = h->channels;
        if (h->channels)
                h->channels->prev = c;
        h->channels = c;
        h->n_channels++;

        c->uri = strdup(uri);
        r = !c->uri || (st->body_len > 0 && !(c->body = malloc(st->body_len))) ? -ENOMEM : 0;
        if (r >= 0)
                r = sd_event_add_io(h->event, &c->io, fd, EPOLLIN, on_channel, c);
        if (r >= 0 && sink >= 0) {
                /* the pipe's write end is ours alone now (the broker closed its copy) */
                fl = fcntl(sink, F_GETFL);
                r = fl < 0 || fcntl(sink, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
                if (r >= 0)
                        r = sd_event_add_io(h->event, &c->sink_out, sink, EPOLLOUT, on_sink_writable, c);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->sink_out, SD_EVENT_OFF);
                if (r >= 0)
                        r = sd_event_add_time_relative(h->event, &c->stall, CLOCK_MONOTONIC, h->timeout_usec, 0,
                                                       on_stall, c);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->stall, SD_EVENT_OFF);
        }
        if (r < 0) {
                channel_free(c);
                return r;
        }
        (void)sd_event_source_set_description(c->io, "http-channel");
        /* the broker writes the body before it sends the channel: usually it is all there */
        (void)channel_read_body(c);
        return 0;
}

static int on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Helper *h = userdata;
        HttpWireStartPacket buf;
        HttpWireFdControl control;
        struct iovec iov = { .iov_base = &buf, .iov_len = sizeof(buf) - 1 };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *cm;
        ssize_t n;
        int chan = -1, sink = -1, r;

        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* the broker let us go (or is gone): nothing may outlive it */
                log_debug("the broker closed the control socket: exiting");
                return sd_event_exit(h->event, 0);
        }
        /* the channel, and for GET_INTO the pipe; any other is closed (and the packet refused) */
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int fd_i;
                        memcpy(&fd_i, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (chan < 0)
                                chan = fd_i;
                        else if (sink < 0)
                                sink = fd_i;
                        else {
                                close(fd_i);
                                mh.msg_flags |= MSG_CTRUNC;
                        }
                }
        }
        buf.bytes[n] = '\0';
        if (chan < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n <= sizeof(HttpWireStart) ||
            buf.start.version != HTTP_WIRE_VERSION ||
            (buf.start.op != HTTP_WIRE_POST && buf.start.op != HTTP_WIRE_GET_STREAM &&
             buf.start.op != HTTP_WIRE_GET_INTO) ||
            (buf.start.op == HTTP_WIRE_GET_INTO) != (sink >= 0) ||
            buf.start.body_len > HTTP_WIRE_BODY_MAX || (buf.start.op != HTTP_WIRE_POST && buf.start.body_len) ||
            strlen((const char *)buf.bytes + sizeof(HttpWireStart)) != (size_t)n - sizeof(HttpWireStart) - 1) {
                log_error("refusing a malformed request from the broker (%zd bytes)", n);
                safe_close(chan);
                safe_close(sink);
                return 0;
        }
        r = start_channel(h, &buf.start, (const char *)buf.bytes + sizeof(HttpWireStart), chan, sink);
        if (r < 0)
                log_error("cannot take a request: %s", strerror(-r)); /* (its end: the broker's -EIO) */
        return 0;
}

static int parse_usec(const char *s, uint64_t *ret) {
        char *end = NULL;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || !end || *end || end == s)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void help(FILE *f) {
        fprintf(f,
                "Usage: " HTTP_HELPER_NAME " [OPTIONS]\n\n"
                "teep-brokerd's HTTP client: started by teep-brokerd with a control socket on fd 3,\n"
                "never by hand. See teep-brokerd(8).\n\n"
                "  --connect-timeout-usec N  --timeout-usec N  --payload-timeout-usec N\n"
                "  --ca-file FILE  --user-agent TEXT\n");
}

/*
 * Footprint (docs/internals.md): Debian's libcurl links libssh2, and curl_global_init() calls
 * libssh2_init(0), which initialises OpenSSL's libcrypto (1.5 MiB of RSS) for a protocol never
 * spoken here (transport.c allows http and https only). Telling libssh2 first, with its
 * documented flag, that crypto is initialised elsewhere makes curl's call do nothing. Looked up
 * rather than linked: a libcurl without libssh2 has no such symbol.
 */
static void libssh2_skip_crypto_init(void) {
        int (*ssh2_init)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "libssh2_init");

        if (ssh2_init)
                (void)ssh2_init(0x0001 /* LIBSSH2_INIT_NO_CRYPTO */);
}

static int run(int argc, char **argv) {
        enum { ARG_CONNECT = 0x100, ARG_TIMEOUT, ARG_PAYLOAD, ARG_CA, ARG_UA, ARG_SELF_TEST };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "connect-timeout-usec", required_argument, NULL, ARG_CONNECT },
                { "timeout-usec", required_argument, NULL, ARG_TIMEOUT },
                { "payload-timeout-usec", required_argument, NULL, ARG_PAYLOAD },
                { "ca-file", required_argument, NULL, ARG_CA },
                { "user-agent", required_argument, NULL, ARG_UA },
                /* hidden: start up, enter the box, try forbidden calls, exit (tests) */
                { "sandbox-self-test", no_argument, NULL, ARG_SELF_TEST },
                {},
        };
        TransportConfig tc = { .connect_timeout_usec = 10 * 1000000ull, .timeout_usec = 30 * 1000000ull };
        Helper h = {};
        bool self_test = false;
        int c, r;

        log_setup(HTTP_HELPER_NAME);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_CONNECT:
                        r = parse_usec(optarg, &tc.connect_timeout_usec);
                        break;
                case ARG_TIMEOUT:
                        r = parse_usec(optarg, &tc.timeout_usec);
                        break;
                case ARG_PAYLOAD:
                        r = parse_usec(optarg, &tc.payload_timeout_usec);
                        break;
                case ARG_CA:
                        tc.ca_file = optarg;
                        break;
                case ARG_UA:
                        tc.user_agent = optarg;
                        break;
                case ARG_SELF_TEST:
                        self_test = true;
                        break;
                default:
                        help(stderr);
                        return -EINVAL;
                }
                if (r < 0)
                        return log_error_errno(r, "bad value for %s: %s", argv[optind - 2], optarg);
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "unexpected argument '%s'", argv[optind]);
        if (!self_test && fcntl(CONTROL_FD, F_GETFD) < 0)
                return log_error_errno(-EBADF, "no control socket on fd %d: teep-brokerd starts this program",
                                       CONTROL_FD);

        libssh2_skip_crypto_init();
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(-EIO, "cannot initialise libcurl");
        (void)signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&h.event);
        h.timeout_usec = tc.timeout_usec;
        if (r >= 0)
                r = transport_new(h.event, &tc, &h.transport);
        if (r >= 0 && !self_test)
                r = sd_event_add_io(h.event, &h.control, CONTROL_FD, EPOLLIN, on_control, &h);
        if (r < 0) {
                log_error_errno(r, "cannot set up: %s", strerror(-r));
                goto out;
        }
        r = broker_http_sandbox_apply();
        if (r < 0) {
                log_error_errno(r, "cannot install the seccomp filter: %s", strerror(-r));
                goto out;
        }
        if (self_test) {
                r = broker_http_sandbox_self_test();
                goto out;
        }
        r = sd_event_loop(h.event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %s", strerror(-r));
out:
        while (h.channels)
                channel_free(h.channels);
        sd_event_source_disable_unref(h.control);
        transport_free(h.transport);
        sd_event_unref(h.event);
        curl_global_cleanup();
        return r;
}

int main(int argc, char **argv) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
