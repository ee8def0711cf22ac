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
 * The payload streams through a pipe: the agent gets the read end as soon as the first bytes of
 * a 2xx response are in, and hashes (and passes on) while the broker still downloads. The broker
 * holds at most the part of one libcurl chunk (16 KiB) the pipe had no room for; while it holds
 * some, the transfer is paused on the next chunk (libcurl then keeps the rest of its last read
 * from the socket, 64 KiB at most, and the server waits on TCP flow control). The agent checks
 * size and digest of what it read, so a stream that ends early (a cut) is safe: it is only ever
 * short, never different.
 */
#define FETCH_PIPE_SIZE (1024 * 1024)

struct Fetch {
        Broker *broker;
        sd_bus_message *call; /* until answered */
        HttpRequest *http;    /* until the transfer ends */
        char *uri;
        uint64_t max;
        int read_fd;      /* the agent's end, until it is sent */
        int write_fd;     /* ours, non-blocking */
        uint64_t written; /* bytes in the pipe so far */

        /* what the pipe had no room for: the rest of one chunk */
        uint8_t *carry;
        size_t carry_alloc, carry_off, carry_len;
        bool paused;               /* on_data answered HTTP_DATA_PAUSE: resume once carry is empty */
        bool transfer_done;        /* complete: close the pipe once carry is written */
        sd_event_source *pipe_out; /* EPOLLOUT on write_fd while carry holds bytes */
        sd_event_source *stall;    /* how long the pipe may stay full */

        /* why on_data stopped the transfer, for the log line once it ended */
        bool agent_gone; /* EPIPE: the agent closed its end */
        int stop_error;  /* another write error, or the reply could not be sent */
        LIST_FIELDS(Fetch, fetches);
};

static Fetch *fetch_free(Fetch *f) {
        if (!f)
                return NULL;
        if (f->fetches_next || f->fetches_prev || f->broker->fetches == f) {
                LIST_REMOVE(fetches, f->broker->fetches, f);
                f->broker->n_fetches--;
        }
        http_request_free(f->http);
        sd_event_source_disable_unref(f->pipe_out);
        sd_event_source_disable_unref(f->stall);
        sd_bus_message_unref(f->call);
        safe_close(f->read_fd);
        safe_close(f->write_fd);
        free(f->carry);
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

/* The stream ends early: the agent reads what is in the pipe, then end of file. */
static Fetch *fetch_cut(Fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static Fetch *fetch_cut(Fetch *f, const char *fmt, ...) {
        char why[600];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_warning("fetch %s: cut after %" PRIu64 " bytes: %s", f->uri, f->written, why);
        return fetch_free(f);
}

static Fetch *fetch_agent_gone(Fetch *f) {
        log_info("fetch %s: the agent closed the pipe after %" PRIu64 " bytes; download stopped", f->uri,
                 f->written);
        return fetch_free(f);
}

static Fetch *fetch_complete(Fetch *f) {
        log_info("fetched %s: %" PRIu64 " bytes streamed to the agent", f->uri, f->written);
        return fetch_free(f);
}

/* The agent gets its end and the announced size; the broker keeps no copy of that end, so that a
 * reader that goes away shows up here as EPIPE. */
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

/* As much of p as the pipe takes now: 0 and the count, or -errno (-EPIPE: no reader). */
static int fetch_write(Fetch *f, const uint8_t *p, size_t len, size_t *ret_written) {
        size_t done = 0;
        int r = 0;

        while (done < len) {
                ssize_t k = write(f->write_fd, p + done, len - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                r = -errno;
                        break;
                }
                done += (size_t)k;
        }
        f->written += done;
        *ret_written = done;
        return r;
}

/* The pipe is full: keep the rest, wait for room, and give the agent TimeoutSec= to make some. */
static int fetch_hold(Fetch *f, const uint8_t *p, size_t len) {
        int r;

        if (len > f->carry_alloc) {
                uint8_t *c = realloc(f->carry, len);
                if (!c)
                        return -ENOMEM;
                f->carry = c;
                f->carry_alloc = len;
        }
        memcpy(f->carry, p, len);
        f->carry_off = 0;
        f->carry_len = len;
        r = sd_event_source_set_enabled(f->pipe_out, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_source_set_time_relative(f->stall, f->broker->config.timeout_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(f->stall, SD_EVENT_ONESHOT);
        return r;
}

static HttpDataVerdict on_fetch_data(HttpRequest *req, const uint8_t *data, size_t len, void *userdata) {
        Fetch *f = userdata;
        size_t n = 0;
        int r;

        /* the first bytes of a 2xx body: the agent gets its end now */
        if (f->call) {
                r = fetch_reply_pipe(f, http_request_content_length(req));
                if (r < 0) {
                        f->stop_error = r;
                        return HTTP_DATA_STOP;
                }
        }
        if (f->carry_len > 0) {
                /* libcurl keeps these bytes and offers them again after http_request_resume() */
                f->paused = true;
                return HTTP_DATA_PAUSE;
        }
        r = fetch_write(f, data, len, &n);
        if (r == -EPIPE) {
                f->agent_gone = true;
                return HTTP_DATA_STOP;
        }
        if (r >= 0 && n < len)
                r = fetch_hold(f, data + n, len - n);
        if (r < 0) {
                f->stop_error = r;
                return HTTP_DATA_STOP;
        }
        return HTTP_DATA_TAKEN;
}

static int on_pipe_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fetch *f = userdata;
        size_t n = 0;
        int r;

        r = fetch_write(f, f->carry + f->carry_off, f->carry_len, &n);
        if (r == -EPIPE) {
                fetch_agent_gone(f);
                return 0;
        }
        if (r < 0) {
                fetch_cut(f, "cannot write to the pipe: %s", strerror(-r));
                return 0;
        }
        f->carry_off += n;
        f->carry_len -= n;
        if (f->carry_len > 0) {
                /* the agent is reading: its time to make room starts again */
                if (n > 0)
                        (void)sd_event_source_set_time_relative(f->stall, f->broker->config.timeout_usec);
                return 0;
        }
        (void)sd_event_source_set_enabled(f->pipe_out, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(f->stall, SD_EVENT_OFF);
        if (f->transfer_done) {
                fetch_complete(f);
                return 0;
        }
        if (f->paused && f->http) {
                f->paused = false; /* (on_fetch_data may pause it again from in here) */
                http_request_resume(f->http);
        }
        return 0;
}

static int on_stall(sd_event_source *s, uint64_t usec, void *userdata) {
        Fetch *f = userdata;

        fetch_cut(f, "the agent read nothing for %" PRIu64 " s", f->broker->config.timeout_usec / 1000000u);
        return 0;
}

/* The transport's messages start with the URI, which the log line names already. */
static const char *message_without_uri(const char *message, const char *uri) {
        size_t n = strlen(uri);

        if (strncmp(message, uri, n) == 0 && strncmp(message + n, ": ", 2) == 0)
                return message + n + 2;
        return message;
}

static void on_fetch_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Fetch *f = userdata;

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
                else {
                        /* an empty body: an empty pipe, already closed */
                        f->pipe_out = sd_event_source_disable_unref(f->pipe_out);
                        f->write_fd = safe_close(f->write_fd);
                        if (fetch_reply_pipe(f, res->content_length) >= 0)
                                log_info("fetched %s: 0 bytes for the agent", f->uri);
                }
                fetch_free(f);
                return;
        }

        if (f->agent_gone)
                fetch_agent_gone(f);
        else if (f->stop_error < 0)
                fetch_cut(f, "%s", strerror(-f->stop_error));
        else if (res->error == -E2BIG)
                fetch_cut(f, "the payload is larger than %" PRIu64 " bytes", f->max);
        else if (res->error < 0)
                fetch_cut(f, "%s",
                          res->message ? message_without_uri(res->message, f->uri) : strerror(-res->error));
        else if (f->carry_len > 0)
                f->transfer_done = true; /* on_pipe_writable() finishes, or on_stall() cuts */
        else
                fetch_complete(f);
}

static int fetch_open_pipe(Fetch *f) {
        int p[2], fl;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        f->read_fd = p[0];
        f->write_fd = p[1];
        /* Only our end is non-blocking: the read end's flags are the agent's to choose. */
        fl = fcntl(f->write_fd, F_GETFL);
        if (fl < 0 || fcntl(f->write_fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        /* Fewer wake-ups on both sides; the default (64 KiB) works too, and an unprivileged
         * process cannot go beyond /proc/sys/fs/pipe-max-size. */
        (void)fcntl(f->write_fd, F_SETPIPE_SZ, FETCH_PIPE_SIZE);
        return 0;
}

int method_fetch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(fetch_freep) Fetch *f = NULL;
        const char *uri;
        uint64_t max;
        int r;

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
        f->read_fd = f->write_fd = -1;
        f->max = max < b->config.max_payload_size ? max : b->config.max_payload_size;
        f->uri = strdup(uri);
        if (!f->uri)
                return -ENOMEM;
        r = fetch_open_pipe(f);
        if (r < 0)
                return log_error_errno(r, "cannot create a pipe for a payload: %s", strerror(-r));
        /* both sources made now, so that nothing has to be allocated from inside libcurl */
        r = sd_event_add_io(b->event, &f->pipe_out, f->write_fd, EPOLLOUT, on_pipe_writable, f);
        if (r >= 0)
                r = sd_event_source_set_enabled(f->pipe_out, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(b->event, &f->stall, CLOCK_MONOTONIC, b->config.timeout_usec,
                                               0, on_stall, f);
        if (r >= 0)
                r = sd_event_source_set_enabled(f->stall, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "cannot watch a payload pipe: %s", strerror(-r));
        (void)sd_event_source_set_description(f->pipe_out, "fetch-pipe");
        (void)sd_event_source_set_description(f->stall, "fetch-stall");
        r = http_request_new(b->transport, &f->http);
        if (r < 0)
                return r;
        r = http_request_get_stream(f->http, uri, f->max, on_fetch_data, on_fetch_done, f);
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
                        fetch_free(f);
                } else
                        fetch_cut(f, "teep-brokerd is stopping");
        }
}
