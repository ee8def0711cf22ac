/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus_attach_event(): a burst of calls is handled in a few event loop iterations, in order, and
 * every call still gets its answer. A direct peer-to-peer connection (socketpair) stands in for
 * the bus daemon: the server side is what a daemon's connection does with queued calls. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-util.h"

#define N_CALLS 400

typedef struct {
        unsigned handled;
        unsigned next_expected;
        bool out_of_order;
} Server;

typedef struct {
        unsigned answered;
        unsigned failed;
} Client;

static int method_echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Server *s = userdata;
        uint32_t k;
        int r;

        r = sd_bus_message_read(m, "u", &k);
        if (r < 0)
                return r;
        if (k != s->next_expected)
                s->out_of_order = true;
        s->next_expected = k + 1;
        s->handled++;
        return sd_bus_reply_method_return(m, "u", k);
}

static const sd_bus_vtable echo_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Echo", "u", "u", method_echo, 0),
        SD_BUS_VTABLE_END,
};

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Client *c = userdata;

        if (sd_bus_message_is_method_error(m, NULL))
                c->failed++;
        else
                c->answered++;
        return 0;
}

/* A socketpair as a peer-to-peer sd-bus connection: the server end serves Echo on /t for s. */
static void peer_pair(Server *s, sd_bus **ret_server, sd_bus **ret_client) {
        sd_bus *server = NULL, *client = NULL;
        sd_id128_t id;
        int fds[2];

        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        cr_assert_eq(sd_id128_randomize(&id), 0);
        cr_assert_geq(sd_bus_new(&server), 0);
        cr_assert_geq(sd_bus_set_fd(server, fds[0], fds[0]), 0);
        cr_assert_geq(sd_bus_set_server(server, 1, id), 0);
        cr_assert_geq(sd_bus_set_anonymous(server, 1), 0);
        cr_assert_geq(sd_bus_start(server), 0);
        cr_assert_geq(sd_bus_add_object_vtable(server, NULL, "/t", "org.teepkit.Test", echo_vtable, s), 0);
        cr_assert_geq(sd_bus_new(&client), 0);
        cr_assert_geq(sd_bus_set_fd(client, fds[1], fds[1]), 0);
        cr_assert_geq(sd_bus_set_anonymous(client, 1), 0);
        cr_assert_geq(sd_bus_start(client), 0);
        *ret_server = server;
        *ret_client = client;
}

/* Both ends of a socketpair as sd-bus connections, the server attached to its own loop
 * (drained or plain), the client sending N_CALLS calls before the server runs at all. */
static void burst(bool drained, uint64_t *ret_iterations, Server *s, Client *c) {
        sd_bus *server = NULL, *client = NULL;
        sd_event *event = NULL;
        sd_event_source *drain = NULL;
        uint64_t start = 0, end = 0;

        cr_assert_geq(sd_event_new(&event), 0);
        peer_pair(s, &server, &client);
        if (drained) {
                cr_assert_geq(bus_attach_event(server, event, &drain), 0);
                cr_assert_not_null(drain, "the drain source exists");
        } else
                cr_assert_geq(sd_bus_attach_event(server, event, SD_EVENT_PRIORITY_NORMAL), 0);
        /* authentication first: the calls below go out as one burst */
        while (sd_bus_is_ready(client) <= 0) {
                cr_assert_geq(sd_event_run(event, 0), 0);
                cr_assert_geq(sd_bus_process(client, NULL), 0);
        }
        for (uint32_t k = 0; k < N_CALLS; k++)
                cr_assert_geq(sd_bus_call_method_async(client, NULL, NULL, "/t", "org.teepkit.Test", "Echo", on_reply,
                                                       c, "u", k),
                              0);
        cr_assert_geq(sd_bus_flush(client), 0);

        cr_assert_geq(sd_event_get_iteration(event, &start), 0);
        while (s->handled < N_CALLS) {
                uint64_t now = 0;
                cr_assert_geq(sd_event_run(event, 1000000), 0, "the server's loop runs");
                cr_assert_geq(sd_event_get_iteration(event, &now), 0);
                cr_assert_lt(now - start, 4 * N_CALLS, "the calls are handled at all");
        }
        cr_assert_geq(sd_event_get_iteration(event, &end), 0);
        *ret_iterations = end - start;

        /* every answer reaches the client */
        cr_assert_geq(sd_bus_flush(server), 0);
        for (unsigned spins = 0; c->answered + c->failed < N_CALLS && spins < 100000; spins++)
                if (sd_bus_process(client, NULL) == 0)
                        (void)sd_bus_wait(client, 100000);

        drain = sd_event_source_disable_unref(drain);
        sd_bus_flush_close_unref(server);
        sd_bus_flush_close_unref(client);
        sd_event_unref(event);
}

Test(bus_drain, a_burst_takes_few_iterations_in_order) {
        Server plain_s = {}, drained_s = {};
        Client plain_c = {}, drained_c = {};
        uint64_t plain = 0, drained = 0;

        burst(false, &plain, &plain_s, &plain_c);
        burst(true, &drained, &drained_s, &drained_c);

        cr_assert_eq(drained_s.handled, N_CALLS);
        cr_assert_not(drained_s.out_of_order, "calls are handled in the order they were sent");
        cr_assert_eq(drained_c.answered, N_CALLS, "every call is answered (%u answered, %u failed)",
                     drained_c.answered, drained_c.failed);
        cr_assert_eq(plain_c.answered, N_CALLS);
        /* sd-bus alone: one message per iteration; drained: up to 64 per iteration */
        cr_assert_geq(plain, N_CALLS / 2, "plain sd-bus: %" PRIu64 " iterations for %d calls", plain, N_CALLS);
        cr_assert_leq(drained, N_CALLS / 16, "drained: %" PRIu64 " iterations for %d calls (plain: %" PRIu64 ")",
                      drained, N_CALLS, plain);
}

/*
 * bus_release_name_and_drain(), the idle exit of teep-agentd and teep-installer: STOPPING=1 goes
 * to the service manager first (a datagram socket of ours stands in for systemd's
 * NOTIFY_SOCKET), and every call already queued for us is answered before we go. On a
 * peer-to-peer connection there is no name to give back: that failure is logged and the rest
 * still happens.
 */
Test(bus_drain, the_idle_exit_says_stopping_and_answers_what_was_queued) {
        char dir[] = "/tmp/teepkit-notify-XXXXXX", path[64], buf[256];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_bus *server = NULL, *client = NULL;
        Server s = {};
        Client c = {};
        int notify;
        ssize_t n;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/notify", dir);
        notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(notify, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        cr_assert_eq(bind(notify, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(setenv("NOTIFY_SOCKET", path, 1), 0);

        peer_pair(&s, &server, &client);
        while (sd_bus_is_ready(client) <= 0) {
                (void)sd_bus_process(server, NULL);
                (void)sd_bus_process(client, NULL);
        }
        for (uint32_t k = 0; k < 20; k++)
                cr_assert_geq(sd_bus_call_method_async(client, NULL, NULL, "/t", "org.teepkit.Test", "Echo", on_reply, &c,
                                                       "u", k),
                              0);
        cr_assert_geq(sd_bus_flush(client), 0);

        bus_release_name_and_drain(server, "org.teepkit.Test");

        n = recv(notify, buf, sizeof(buf) - 1, 0);
        cr_assert_gt(n, 0, "nothing reached NOTIFY_SOCKET");
        buf[n] = '\0';
        cr_assert(strstr(buf, "STOPPING=1"), "the service manager was told: %s", buf);
        cr_assert_eq(s.handled, 20, "%u of 20 queued calls handled before the exit", s.handled);
        for (unsigned spins = 0; c.answered + c.failed < 20 && spins < 100000; spins++)
                if (sd_bus_process(client, NULL) == 0)
                        (void)sd_bus_wait(client, 100000);
        cr_assert_eq(c.answered, 20, "%u answered, %u failed", c.answered, c.failed);

        cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
        sd_bus_flush_close_unref(server);
        sd_bus_flush_close_unref(client);
        close(notify);
        unlink(path);
        rmdir(dir);
}
