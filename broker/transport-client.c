/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport-client.c: transport.h in teep-brokerd, carried out by teep-broker-http (http-wire.h) */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http-wire.h"
#include "log.h"
#include "macro.h"
#include "options.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Beyond the helper's own (libcurl's) timeouts: a helper that stops answering is cut here. */
#define WATCHDOG_GRACE_USEC (10u * 1000000u)

typedef struct Helper Helper;

struct Transport {
        sd_event *event;
        uint64_t connect_timeout_usec, timeout_usec, payload_timeout_usec, idle_usec;
        char *ca_file;
        char *user_agent;
        int exe;          /* the helper binary, O_PATH */
        Helper *current;  /* the helper new requests go to; NULL: none running */
        Helper *helpers;  /* every child not reaped yet (the current one, ones let go) */
        sd_event_source *idle;
        unsigned n_active;
};

struct Helper {
        Transport *transport;
        Helper *next;
        pid_t pid;
        int pidfd;
        int control;      /* -1 once let go */
        sd_event_source *exited;
};

struct HttpRequest {
        Transport *transport;
        bool active;
        int fd;                     /* the channel */
        sd_event_source *io;
        sd_event_source *pump;      /* frames that arrived while a stream was paused */
        sd_event_source *watchdog;
        char *uri;
        uint64_t max;
        uint32_t op;                /* HTTP_WIRE_POST, _GET_STREAM (DATA frames), _GET_INTO */
        HttpDataFn on_data;
        HttpHeadersFn on_headers;   /* GET_INTO */
        HttpDoneFn done;
        void *userdata;

        uint8_t *out;               /* the POST body, while the socket takes it */
        size_t out_len, out_off;
        uint8_t *in;                /* frames read, not handled yet */
        size_t in_len, in_off, in_alloc;
        bool eof;

        uint64_t content_length;
        uint64_t taken;
        bool paused;
};

/* ---- the helper process ---- */

static void helper_let_go(Helper *h) {
        Transport *t = h->transport;

        h->control = safe_close(h->control); /* the helper exits when it reads the end */
        if (t->current == h)
                t->current = NULL;
}

static void helper_free(Helper *h) {
        Transport *t = h->transport;

        for (Helper **p = &t->helpers; *p; p = &(*p)->next)
                if (*p == h) {
                        *p = h->next;
                        break;
                }
        helper_let_go(h);
        sd_event_source_disable_unref(h->exited);
        safe_close(h->pidfd);
        free(h);
}

static int on_helper_exited(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Helper *h = userdata;
        siginfo_t si = {};

        if (waitid((idtype_t)P_PIDFD, (id_t)h->pidfd, &si, WEXITED | WNOHANG) < 0) {
                if (errno == EINTR)
                        return 0;
                /* reaped elsewhere (or not ours to reap): it is gone either way, and its pidfd
                 * would stay readable */
                log_debug("%s [%d]: cannot reap: %s", HTTP_HELPER_NAME, (int)h->pid, strerror(errno));
                helper_free(h);
                return 0;
        }
        if (si.si_pid == 0)
                return 0;
        if (si.si_code == CLD_EXITED && si.si_status == 0)
                log_debug("%s [%d] exited", HTTP_HELPER_NAME, (int)h->pid);
        else if (si.si_code == CLD_EXITED)
                log_warning("%s [%d] exited with status %d", HTTP_HELPER_NAME, (int)h->pid, si.si_status);
        else
                log_warning("%s [%d] was killed by signal %s", HTTP_HELPER_NAME, (int)h->pid,
                            sigabbrev_np(si.si_status) ?: "?");
        /* its requests see their channels end (request_read) */
        helper_free(h);
        return 0;
}

static int helper_spawn(Transport *t) {
        char connect[32], timeout[32], payload[32];
        const char *argv[16];
        size_t n = 0;
        int sv[2] = { -1, -1 }, pidfd, r;
        Helper *h;
        pid_t pid, parent;

        if (t->exe < 0)
                return -ENOENT;
        snprintf(connect, sizeof(connect), "%" PRIu64, t->connect_timeout_usec);
        snprintf(timeout, sizeof(timeout), "%" PRIu64, t->timeout_usec);
        snprintf(payload, sizeof(payload), "%" PRIu64, t->payload_timeout_usec);
        argv[n++] = HTTP_HELPER_NAME;
        argv[n++] = "--connect-timeout-usec";
        argv[n++] = connect;
        argv[n++] = "--timeout-usec";
        argv[n++] = timeout;
        argv[n++] = "--payload-timeout-usec";
        argv[n++] = payload;
        if (t->ca_file) {
                argv[n++] = "--ca-file";
                argv[n++] = t->ca_file;
        }
        if (t->user_agent) {
                argv[n++] = "--user-agent";
                argv[n++] = t->user_agent;
        }
        argv[n] = NULL;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                free(h);
                return -errno;
        }
        parent = getpid();
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                free(h);
                return r;
        }
        if (pid == 0) {
                /* the child: only async-signal-safe calls until the exec. It does not outlive
                 * the broker, even when it is stuck (it also exits on the end of fd 3). */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(sv[1], 3) < 0)
                        _exit(127);
                /* nothing else of the broker's crosses the exec (the binary's own descriptor
                 * closes with it: CLOSE_RANGE_CLOEXEC, not a close) */
                (void)syscall(SYS_close_range, 4u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
                (void)syscall(SYS_execveat, t->exe, "", (char *const *)argv, environ, AT_EMPTY_PATH);
                _exit(127);
        }
        close(sv[1]);
        h->transport = t;
        h->pid = pid;
        h->control = sv[0];
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        h->pidfd = pidfd;
        if (pidfd < 0)
                r = -errno;
        else
                r = sd_event_add_io(t->event, &h->exited, pidfd, EPOLLIN, on_helper_exited, h);
        if (r < 0) {
                /* it exits when it reads the end of its control socket; nobody reaps it */
                log_error("cannot watch %s [%d]: %s", HTTP_HELPER_NAME, (int)pid, strerror(-r));
                safe_close(h->control);
                safe_close(h->pidfd);
                free(h);
                return r;
        }
        (void)sd_event_source_set_description(h->exited, "http-helper-exit");
        h->next = t->helpers;
        t->helpers = h;
        t->current = h;
        log_debug("started %s [%d]", HTTP_HELPER_NAME, (int)pid);
        return 0;
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Transport *t = userdata;

        if (t->n_active == 0 && t->current) {
                log_debug("%s [%d] idle: letting it go", HTTP_HELPER_NAME, (int)t->current->pid);
                helper_let_go(t->current);
        }
        return 0;
}

static void transport_active(Transport *t, bool up) {
        if (up) {
                t->n_active++;
                (void)sd_event_source_set_enabled(t->idle, SD_EVENT_OFF);
                return;
        }
        t->n_active--;
        if (t->n_active == 0 && t->current) {
                (void)sd_event_source_set_time_relative(t->idle, t->idle_usec);
                (void)sd_event_source_set_enabled(t->idle, SD_EVENT_ONESHOT);
        }
}

int transport_new(sd_event *event, const TransportConfig *cfg, Transport **ret) {
        Transport *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->event = sd_event_ref(event);
        t->exe = -1;
        t->connect_timeout_usec = cfg->connect_timeout_usec;
        t->timeout_usec = cfg->timeout_usec;
        t->payload_timeout_usec = cfg->payload_timeout_usec ?: cfg->timeout_usec;
        t->idle_usec = cfg->helper_idle_usec ?: HTTP_HELPER_IDLE_USEC;
        if ((cfg->ca_file && !(t->ca_file = strdup(cfg->ca_file))) ||
            (cfg->user_agent && !(t->user_agent = strdup(cfg->user_agent)))) {
                transport_free(t);
                return -ENOMEM;
        }
        /* opened now, before the sandbox: the exec later needs no lookup by name */
        t->exe = cfg->helper_path ? open(cfg->helper_path, O_PATH | O_CLOEXEC) : -1;
        if (t->exe < 0) {
                r = cfg->helper_path ? -errno : -ENOENT;
                log_error("cannot open the HTTP helper %s: %s", cfg->helper_path ?: "(none configured)", strerror(-r));
                transport_free(t);
                return r;
        }
        r = sd_event_add_time(event, &t->idle, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, t);
        if (r < 0) {
                transport_free(t);
                return r;
        }
        (void)sd_event_source_set_enabled(t->idle, SD_EVENT_OFF);
        (void)sd_event_source_set_description(t->idle, "http-helper-idle");
        *ret = t;
        return 0;
}

Transport *transport_free(Transport *t) {
        if (!t)
                return NULL;
        while (t->helpers)
                helper_free(t->helpers); /* each exits on the end of its control socket */
        sd_event_source_disable_unref(t->idle);
        safe_close(t->exe);
        sd_event_unref(t->event);
        free(t->ca_file);
        free(t->user_agent);
        free(t);
        return NULL;
}

/* ---- requests ---- */

int http_request_new(Transport *t, HttpRequest **ret) {
        HttpRequest *req = calloc(1, sizeof(*req));

        if (!req)
                return -ENOMEM;
        req->transport = t;
        req->fd = -1;
        *ret = req;
        return 0;
}

bool http_request_is_active(const HttpRequest *req) {
        return req && req->active;
}

/* The request is over (either way): close the channel, which also cancels it in the helper. */
static void request_end(HttpRequest *req) {
        req->io = sd_event_source_disable_unref(req->io);
        req->fd = safe_close(req->fd);
        (void)sd_event_source_set_enabled(req->pump, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(req->watchdog, SD_EVENT_OFF);
        free(req->out);
        req->out = NULL;
        req->out_len = req->out_off = 0;
        req->in_len = req->in_off = 0; /* (not freed: the done callback may read the body in it) */
        req->paused = false;
        if (req->active) {
                req->active = false;
                transport_active(req->transport, false);
        }
}

void http_request_cancel(HttpRequest *req) {
        if (req && req->active)
                request_end(req);
}

HttpRequest *http_request_free(HttpRequest *req) {
        if (!req)
                return NULL;
        request_end(req);
        sd_event_source_disable_unref(req->pump);
        sd_event_source_disable_unref(req->watchdog);
        free(req->in);
        free(req->uri);
        free(req);
        return NULL;
}

/* Last thing: the callback may free req or start the next request on it. */
static void request_finish(HttpRequest *req, const HttpResult *res) {
        request_end(req);
        req->done(req, res, req->userdata);
}

static void request_fail(HttpRequest *req, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void request_fail(HttpRequest *req, int error, const char *fmt, ...) {
        char message[512];
        HttpResult res = { .error = error, .content_length = UINT64_MAX, .body_len = (size_t)req->taken };
        int n;
        va_list ap;

        n = snprintf(message, sizeof(message), "%s: ", req->uri);
        va_start(ap, fmt);
        vsnprintf(message + n, sizeof(message) - (size_t)n, fmt, ap);
        va_end(ap);
        res.message = message;
        request_finish(req, &res);
}

static void request_done_frame(HttpRequest *req, const uint8_t *p, size_t len) {
        char content_type[HTTP_WIRE_TEXT_MAX + 1], message[HTTP_WIRE_TEXT_MAX + 1];
        HttpWireDone d;
        HttpResult res = {};

        memcpy(&d, p, sizeof(d));
        if (d.content_type_len > HTTP_WIRE_TEXT_MAX || d.message_len > HTTP_WIRE_TEXT_MAX ||
            (req->op != HTTP_WIRE_POST && d.body_len > 0) || d.body_len > req->max || d.received > req->max ||
            len != sizeof(d) + (size_t)d.content_type_len + d.message_len + d.body_len || d.error > 0 ||
            (d.error < 0 && d.message_len == 0)) {
                request_fail(req, -EPROTO, "the HTTP helper sent a malformed answer");
                return;
        }
        p += sizeof(d);
        memcpy(content_type, p, d.content_type_len);
        content_type[d.content_type_len] = '\0';
        p += d.content_type_len;
        memcpy(message, p, d.message_len);
        message[d.message_len] = '\0';
        p += d.message_len;

        res.error = d.error;
        res.status = (long)d.status;
        res.content_type = d.content_type_len ? content_type : NULL;
        res.body = req->op == HTTP_WIRE_POST ? p : NULL;
        res.body_len = req->op == HTTP_WIRE_GET_STREAM ? (size_t)req->taken
                       : req->op == HTTP_WIRE_GET_INTO ? (size_t)d.received
                                                       : d.body_len;
        res.content_length = d.content_length;
        res.new_connections = (long)d.new_connections;
        res.message = d.error < 0 ? message : NULL;
        request_finish(req, &res);
}

/*
 * Handle the whole frames read so far. Returns false when the request is over (req may be
 * freed) or paused.
 */
static bool request_pump(HttpRequest *req) {
        while (req->in_len - req->in_off >= sizeof(HttpWireFrame)) {
                HttpWireFrame f;
                const uint8_t *p = req->in + req->in_off + sizeof(f);
                size_t limit;

                memcpy(&f, req->in + req->in_off, sizeof(f));
                limit = f.type == HTTP_WIRE_HEADERS ? sizeof(uint64_t)
                        : f.type == HTTP_WIRE_DATA  ? HTTP_WIRE_DATA_MAX
                        : f.type == HTTP_WIRE_DONE  ? sizeof(HttpWireDone) + 2 * HTTP_WIRE_TEXT_MAX + req->max
                                                    : 0;
                if (f.len > limit || (f.type == HTTP_WIRE_DONE && f.len < sizeof(HttpWireDone)) ||
                    (f.type == HTTP_WIRE_HEADERS && (f.len != sizeof(uint64_t) || req->op == HTTP_WIRE_POST)) ||
                    (f.type == HTTP_WIRE_DATA && req->op != HTTP_WIRE_GET_STREAM)) {
                        request_fail(req, -EPROTO, "the HTTP helper sent a malformed frame");
                        return false;
                }
                if (req->in_len - req->in_off - sizeof(f) < f.len)
                        break;
                if (f.type == HTTP_WIRE_DONE) {
                        request_done_frame(req, p, f.len);
                        return false;
                }
                if (f.type == HTTP_WIRE_HEADERS) {
                        memcpy(&req->content_length, p, sizeof(uint64_t));
                        if (req->on_headers)
                                req->on_headers(req, req->content_length, req->userdata);
                }
                else if (f.len > 0) {
                        if (req->taken + f.len > req->max) {
                                request_fail(req, -EPROTO, "the HTTP helper sent more than the limit");
                                return false;
                        }
                        switch (req->on_data(req, p, f.len, req->userdata)) {
                        case HTTP_DATA_TAKEN:
                                req->taken += f.len;
                                break;
                        case HTTP_DATA_PAUSE:
                                /* the same bytes again after http_request_resume(); read no more */
                                req->paused = true;
                                (void)sd_event_source_set_enabled(req->io, SD_EVENT_OFF);
                                return false;
                        case HTTP_DATA_STOP:
                        default:
                                request_fail(req, -ECANCELED, "stopped by the receiver after %" PRIu64 " bytes",
                                             req->taken);
                                return false;
                        }
                }
                req->in_off += sizeof(f) + f.len;
        }
        if (req->in_off > 0) {
                memmove(req->in, req->in + req->in_off, req->in_len - req->in_off);
                req->in_len -= req->in_off;
                req->in_off = 0;
        }
        if (req->eof) {
                request_fail(req, -EIO, "%s stopped before the answer (see its log)", HTTP_HELPER_NAME);
                return false;
        }
        return true;
}

static int request_read(HttpRequest *req) {
        size_t want = req->in_len + HTTP_WIRE_DATA_MAX + sizeof(HttpWireFrame);
        ssize_t n;

        if (want > req->in_alloc) {
                uint8_t *p = realloc(req->in, want);
                if (!p)
                        return -ENOMEM;
                req->in = p;
                req->in_alloc = want;
        }
        n = recv(req->fd, req->in + req->in_len, req->in_alloc - req->in_len, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                req->eof = true;
        req->in_len += (size_t)n;
        return 0;
}

/* As much of the POST body as the channel takes now: 0 (all of it, or the socket is full), or
 * -errno. */
static int request_send_body(HttpRequest *req, int fd) {
        while (req->out_off < req->out_len) {
                ssize_t n = send(fd, req->out + req->out_off, req->out_len - req->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                req->out_off += (size_t)n;
        }
        return 0;
}

static int on_channel(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpRequest *req = userdata;
        int r;

        if ((revents & EPOLLOUT) && req->out_off < req->out_len) {
                r = request_send_body(req, fd);
                if (r < 0) {
                        request_fail(req, -EIO, "cannot hand the request to %s: %s", HTTP_HELPER_NAME, strerror(-r));
                        return 0;
                }
                if (req->out_off == req->out_len)
                        (void)sd_event_source_set_io_events(s, EPOLLIN);
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        r = request_read(req);
        if (r < 0) {
                request_fail(req, -EIO, "cannot read from %s: %s", HTTP_HELPER_NAME, strerror(-r));
                return 0;
        }
        (void)request_pump(req);
        return 0;
}

static int on_pump(sd_event_source *s, void *userdata) {
        HttpRequest *req = userdata;

        if (req->active && !req->paused && request_pump(req))
                (void)sd_event_source_set_enabled(req->io, SD_EVENT_ON);
        return 0;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpRequest *req = userdata;

        if (req->active)
                request_fail(req, -ETIMEDOUT, "no answer from %s in time", HTTP_HELPER_NAME);
        return 0;
}

/* Hand one request to the helper: its start packet carries the channel's other end. */
static int send_start(Helper *h, const HttpWireStart *st, const char *uri, int chan, int sink) {
        int fds[2] = { chan, sink };
        size_t n_fds = sink >= 0 ? 2 : 1;
        HttpWireFdControl control = {};
        struct iovec iov[2] = {
                { .iov_base = (void *)st, .iov_len = sizeof(*st) },
                { .iov_base = (void *)uri, .iov_len = strlen(uri) + 1 },
        };
        struct msghdr mh = {
                .msg_iov = iov,
                .msg_iovlen = 2,
                .msg_control = &control,
                .msg_controllen = CMSG_SPACE(n_fds * sizeof(int)),
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
        /* blocking is fine: one small packet, and the helper reads its control socket at once */
        return sendmsg(h->control, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* sink: GET_INTO's pipe, which is ours (closed here on every way out), else -1 */
static int request_start(HttpRequest *req, uint32_t op, const char *uri, const uint8_t *body, size_t len,
                         uint64_t max, int sink, HttpDataFn on_data, HttpHeadersFn on_headers, HttpDoneFn done,
                         void *userdata) {
        _cleanup_close_ int sink_fd = sink;
        Transport *t = req->transport;
        HttpWireStart st = { .version = HTTP_WIRE_VERSION, .op = op, .max = max, .body_len = len };
        int sv[2] = { -1, -1 }, r;

        if (req->active)
                return -EBUSY;
        if (op == HTTP_WIRE_GET_INTO && sink_fd < 0)
                return -EBADF;
        if (!tam_uri_is_valid(uri) || strlen(uri) > HTTP_WIRE_URI_MAX || max == 0 || len > HTTP_WIRE_BODY_MAX ||
            (op == HTTP_WIRE_GET_STREAM && !on_data))
                return -EINVAL;
        free(req->uri);
        req->uri = strdup(uri);
        if (!req->uri)
                return -ENOMEM;
        if (req->in_alloc > 4 * HTTP_WIRE_DATA_MAX) {
                /* the last answer was large: its buffer does not stay for the next one */
                free(req->in);
                req->in = NULL;
                req->in_alloc = 0;
        }
        if (len > 0) {
                req->out = malloc(len);
                if (!req->out)
                        return -ENOMEM;
                memcpy(req->out, body, len);
                req->out_len = len;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
                r = -errno;
                goto fail;
        }
        /* The body goes in before the channel is handed over: the helper finds it there when it
         * takes the request, without waiting for another wake-up (a TEEP message fits the
         * socket's buffer; the rest, if any, follows from the loop, where a failure is reported). */
        (void)request_send_body(req, sv[0]);
        /* a helper that exited since (or was let go) gets a successor, once */
        for (unsigned attempt = 0;; attempt++) {
                r = t->current ? 0 : helper_spawn(t);
                if (r >= 0)
                        r = send_start(t->current, &st, uri, sv[1], sink_fd);
                if (r >= 0 || attempt > 0 || !t->current)
                        break;
                helper_let_go(t->current);
        }
        sv[1] = safe_close(sv[1]);
        if (r < 0) {
                log_error("cannot hand a request to %s: %s", HTTP_HELPER_NAME, strerror(-r));
                goto fail;
        }
        r = sd_event_add_io(t->event, &req->io, sv[0], req->out_off < req->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN,
                            on_channel, req);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(req->io, "http-channel");
        req->fd = TAKE_FD(sv[0]);
        if (!req->pump) {
                r = sd_event_add_defer(t->event, &req->pump, on_pump, req);
                if (r < 0)
                        goto fail;
                (void)sd_event_source_set_description(req->pump, "http-pump");
        }
        (void)sd_event_source_set_enabled(req->pump, SD_EVENT_OFF);
        if (!req->watchdog) {
                r = sd_event_add_time(t->event, &req->watchdog, CLOCK_MONOTONIC, UINT64_MAX, 0, on_watchdog, req);
                if (r < 0)
                        goto fail;
                (void)sd_event_source_set_description(req->watchdog, "http-watchdog");
        }
        r = sd_event_source_set_time_relative(req->watchdog, (op == HTTP_WIRE_POST ? t->timeout_usec
                                                                                     : t->payload_timeout_usec) +
                                                                     WATCHDOG_GRACE_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(req->watchdog, SD_EVENT_ONESHOT);
        if (r < 0)
                goto fail;
        req->max = max;
        req->op = op;
        req->on_data = on_data;
        req->on_headers = on_headers;
        req->done = done;
        req->userdata = userdata;
        req->content_length = UINT64_MAX;
        req->taken = 0;
        req->eof = false;
        req->in_len = req->in_off = 0;
        req->active = true;
        transport_active(t, true);
        return 0;
fail:
        safe_close(sv[0]);
        safe_close(sv[1]);
        request_end(req);
        return r;
}

int http_request_post_teep(HttpRequest *req, const char *uri, const uint8_t *body, size_t len, uint64_t max,
                           HttpDoneFn done, void *userdata) {
        return request_start(req, HTTP_WIRE_POST, uri, body, len, max, -1, NULL, NULL, done, userdata);
}

int http_request_get_stream(HttpRequest *req, const char *uri, uint64_t max, HttpDataFn on_data,
                            HttpDoneFn done, void *userdata) {
        return request_start(req, HTTP_WIRE_GET_STREAM, uri, NULL, 0, max, -1, on_data, NULL, done, userdata);
}

int http_request_get_into(HttpRequest *req, const char *uri, uint64_t max, int fd, HttpHeadersFn on_headers,
                          HttpDoneFn done, void *userdata) {
        return request_start(req, HTTP_WIRE_GET_INTO, uri, NULL, 0, max, fd, NULL, on_headers, done, userdata);
}

void http_request_resume(HttpRequest *req) {
        if (!req || !req->active || !req->paused)
                return;
        req->paused = false;
        /* the held frames go to on_data from the loop (and done can only come from there) */
        (void)sd_event_source_set_enabled(req->pump, SD_EVENT_ONESHOT);
}

uint64_t http_request_content_length(const HttpRequest *req) {
        return req->content_length;
}
