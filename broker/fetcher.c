/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fetcher.c: org.teepkit.PayloadFetcher1 — download a SUIT payload for the agent, who has no network */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "options.h"

struct Fetch {
        Broker *broker;
        sd_bus_message *call;
        HttpRequest *http;
        int fd;
        char *uri;
        uint64_t max;
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
        sd_bus_message_unref(f->call);
        if (f->fd >= 0)
                close(f->fd);
        free(f->uri);
        free(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Fetch *, fetch_free);

static void fetch_reply_error(Fetch *f, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
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
}

static void on_fetched(HttpRequest *req, const HttpResult *res, void *userdata) {
        _cleanup_(fetch_freep) Fetch *f = userdata;
        int r;

        if (res->error == -E2BIG) {
                fetch_reply_error(f, TEEP_ERROR_LIMIT_EXCEEDED, "The payload is larger than %" PRIu64 " bytes.",
                                  f->max);
                return;
        }
        if (res->error < 0) {
                fetch_reply_error(f, TEEP_ERROR_TAM_UNREACHABLE, "Cannot download the payload: %s",
                                  res->message ?: strerror(-res->error));
                return;
        }
        if (res->status < 200 || res->status > 299) {
                fetch_reply_error(f, TEEP_ERROR_TAM_UNREACHABLE, "Cannot download the payload: %s answered HTTP %ld.",
                                  f->uri, res->status);
                return;
        }
        /* Sealed, so the bytes the agent verifies are the bytes it then installs. */
        if (fcntl(f->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
            lseek(f->fd, 0, SEEK_SET) < 0) {
                fetch_reply_error(f, TEEP_ERROR_FAILED, "Cannot seal the downloaded payload: %s", strerror(errno));
                return;
        }
        log_info("fetched %s: %zu bytes for the agent", f->uri, res->body_len);
        r = sd_bus_reply_method_return(f->call, "ht", f->fd, (uint64_t)res->body_len);
        if (r < 0)
                log_warning("cannot answer the agent's Fetch: %s", strerror(-r));
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
        f->fd = -1;
        f->max = max < b->config.max_payload_size ? max : b->config.max_payload_size;
        f->uri = strdup(uri);
        if (!f->uri)
                return -ENOMEM;
        f->fd = memfd_create("teep-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (f->fd < 0)
                return log_error_errno(-errno, "cannot create a memfd for a payload: %s", strerror(errno));
        r = http_request_new(b->transport, &f->http);
        if (r < 0)
                return r;
        r = http_request_get_to_fd(f->http, uri, f->fd, f->max, on_fetched, f);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot start the download of %s: %s", uri, strerror(-r));
        f->call = sd_bus_message_ref(m);
        LIST_PREPEND(fetches, b->fetches, f);
        b->n_fetches++;
        log_info("fetching %s for the agent (at most %" PRIu64 " bytes)", uri, f->max);
        TAKE_PTR(f);
        return 1; /* answered when the download ends */
}

void broker_fetches_abort(Broker *b) {
        while (b->fetches) {
                Fetch *f = b->fetches;
                (void)sd_bus_reply_method_errorf(f->call, TEEP_ERROR_BUSY, "teep-brokerd is stopping.");
                fetch_free(f);
        }
}
