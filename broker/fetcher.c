/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fetcher.c: org.teepkit.PayloadFetcher1 — download a SUIT payload for the agent, who has no network */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "options.h"

/*
 * The payload streams through a pipe: the agent gets the read end as soon as the headers of a
 * 2xx response are in, and hashes (and passes on) while the download runs. The write end goes
 * to teep-broker-http with the request (http_request_get_into()): the helper writes the body
 * into it as it arrives, so the bytes never pass through this process. It holds at most the
 * part of one libcurl chunk the pipe had no room for, pauses the transfer meanwhile (libcurl
 * then keeps the rest of its last read, 64 KiB at most, and the server waits on TCP flow
 * control), and ends the download when the pipe stays full for TimeoutSec= or the agent closed
 * its end. The agent checks size and digest of what it read, so a stream that ends early (a
 * cut) is safe: it is only ever short, never different.
 */
#define FETCH_PIPE_SIZE (1024 * 1024)

struct Fetch {
        Broker *broker;
        sd_bus_message *call; /* until answered */
        HttpRequest *http;    /* until the transfer ends */
        char *uri;
        uint64_t max;
        int read_fd;          /* the agent's end, until it is sent */
        LIST_FIELDS(Fetch, fetches);
};

static Fetch *fetch_free(Fetch *f) {
        if (!f)
                return NULL;
        if (f->fetches_next || f->fetches_prev || f->broker->fetches == f) {
                LIST_REMOVE(fetches, f->broker->fetches, f);
                f->broker->n_fetches--;
        }
        http_request_free(f->http); /* a running download ends: the helper closes the pipe */
        sd_bus_message_unref(f->call);
        safe_close(f->read_fd);
        free(f->uri);
        free(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Fetch *, fetch_free);

static void fetch_reply_error(Fetch *f, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fetch_reply_error(Fetch *f, const char *name, const char *fmt, ...) {
        char msg[600];
        va_list ap;
        int r;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_warning("fetch %s: %s", f->uri, msg);
        r = sd_bus_reply_method_errorf(f->call, name, "%s", msg);
        if (r < 0)
                log_debug("cannot send the fetch error: %s", strerror(-r));
        f->call = sd_bus_message_unref(f->call);
}

/* The agent gets its end and the announced size; the broker keeps no end of the pipe, so that a
 * reader that goes away shows up in the helper as EPIPE. */
static int fetch_reply_pipe(Fetch *f, uint64_t size) {
        int r;

        r = sd_bus_reply_method_return(f->call, "ht", f->read_fd, size);
        f->call = sd_bus_message_unref(f->call);
        f->read_fd = safe_close(f->read_fd);
        if (r < 0)
                return log_warning_errno(r, "fetch %s: cannot answer the agent: %s", f->uri, strerror(-r));
        if (size == UINT64_MAX)
                log_debug("fetch %s: streaming to the agent (no Content-Length)", f->uri);
        else
                log_debug("fetch %s: streaming %" PRIu64 " bytes to the agent", f->uri, size);
        return 0;
}

static void on_fetch_headers(HttpRequest *req, uint64_t content_length, void *userdata) {
        Fetch *f = userdata;

        /* (when the answer cannot be sent, the agent is not reading: the helper sees EPIPE) */
        if (f->call)
                (void)fetch_reply_pipe(f, content_length);
}

/* The transport's messages start with the URI, which the log line names already. */
static const char *message_without_uri(const char *message, const char *uri) {
        size_t n = strlen(uri);

        if (strncmp(message, uri, n) == 0 && strncmp(message + n, ": ", 2) == 0)
                return message + n + 2;
        return message;
}

/* The stream ended early: the agent reads what is in the pipe, then the end of file. */
static void fetch_log_cut(Fetch *f, uint64_t written, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fetch_log_cut(Fetch *f, uint64_t written, const char *fmt, ...) {
        char why[600];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_warning("fetch %s: cut after %" PRIu64 " bytes: %s", f->uri, written, why);
}

static void on_fetch_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Fetch *f = userdata;
        uint64_t written = res->body_len;

        f->http = http_request_free(f->http);
        if (f->call) {
                /* not answered yet: nothing of the body reached the pipe */
                if (res->error == -E2BIG)
                        fetch_reply_error(f, TEEP_ERROR_LIMIT_EXCEEDED,
                                          "The payload is larger than %" PRIu64 " bytes.", f->max);
                else if (res->error < 0)
                        fetch_reply_error(f, TEEP_ERROR_TAM_UNREACHABLE, "Cannot download the payload: %s",
                                          res->message ?: strerror(-res->error));
                else if (res->status < 200 || res->status > 299)
                        fetch_reply_error(f, TEEP_ERROR_TAM_UNREACHABLE,
                                          "Cannot download the payload: %s answered HTTP %ld.", f->uri,
                                          res->status);
                else if (fetch_reply_pipe(f, res->content_length) >= 0)
                        /* an empty body: an empty pipe, closed by the helper already */
                        log_info("fetched %s: 0 bytes for the agent", f->uri);
        } else if (res->error == -EPIPE)
                log_info("fetch %s: the agent closed the pipe after %" PRIu64 " bytes; download stopped", f->uri,
                         written);
        else if (res->error == -ENOBUFS)
                fetch_log_cut(f, written, "the agent read nothing for %" PRIu64 " s",
                              f->broker->config.timeout_usec / 1000000u);
        else if (res->error == -E2BIG)
                fetch_log_cut(f, written, "the payload is larger than %" PRIu64 " bytes", f->max);
        else if (res->error < 0)
                fetch_log_cut(f, written, "%s",
                              res->message ? message_without_uri(res->message, f->uri) : strerror(-res->error));
        else
                log_info("fetched %s: %" PRIu64 " bytes streamed to the agent", f->uri, written);
        fetch_free(f);
}

/* The pipe, both ends: the read end stays here for the agent, the write end goes to the
 * transport (-errno, or the write end). */
static int fetch_open_pipe(Fetch *f) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        f->read_fd = p[0];
        /* Fewer wake-ups on both sides; the default (64 KiB) works too, and an unprivileged
         * process cannot go beyond /proc/sys/fs/pipe-max-size. */
        (void)fcntl(p[1], F_SETPIPE_SZ, FETCH_PIPE_SIZE);
        return p[1];
}

int method_fetch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(fetch_freep) Fetch *f = NULL;
        const char *uri;
        uint64_t max;
        int write_fd, r;

        r = bus_require_sender_uid(m, b->agent_uid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "st", &uri, &max);
        if (r < 0)
                return r;
        if (!tam_uri_is_valid(uri))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Only http:// and https:// payload URIs can be fetched.");
        if (max == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "max_size must not be 0.");
        if (b->stopping)
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "teep-brokerd is stopping.");
        if (b->n_fetches >= BROKER_MAX_FETCHES)
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "Already %u downloads running; try again.",
                                         b->n_fetches);

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->broker = b;
        f->read_fd = -1;
        f->max = max < b->config.max_payload_size ? max : b->config.max_payload_size;
        f->uri = strdup(uri);
        if (!f->uri)
                return -ENOMEM;
        write_fd = fetch_open_pipe(f);
        if (write_fd < 0)
                return log_error_errno(write_fd, "cannot create a pipe for a payload: %s", strerror(-write_fd));
        r = http_request_new(b->transport, &f->http);
        if (r < 0) {
                safe_close(write_fd);
                return r;
        }
        /* the write end is the transport's now, whatever happens */
        r = http_request_get_into(f->http, uri, f->max, write_fd, on_fetch_headers, on_fetch_done, f);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot start the download of %s: %s", uri,
                                               strerror(-r));
        f->call = sd_bus_message_ref(m);
        LIST_PREPEND(fetches, b->fetches, f);
        b->n_fetches++;
        log_info("fetching %s for the agent (at most %" PRIu64 " bytes)", uri, f->max);
        TAKE_PTR(f);
        return 1; /* answered once the body begins */
}

void broker_fetches_abort(Broker *b) {
        while (b->fetches) {
                Fetch *f = b->fetches;
                if (f->call) {
                        (void)sd_bus_reply_method_errorf(f->call, TEEP_ERROR_BUSY,
                                                         "teep-brokerd is stopping.");
                } else
                        /* the helper closes the pipe when its request is gone: the agent reads
                         * what is in it, then the end of a short stream */
                        log_warning("fetch %s: cut after the bytes in the pipe: teep-brokerd is stopping", f->uri);
                fetch_free(f);
        }
}
