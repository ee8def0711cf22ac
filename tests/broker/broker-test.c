/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-test.c: see broker-test.h */
#include "broker-test.h"

#include <criterion/criterion.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int other_end = -1;

sd_bus *test_bus_new(void) {
        sd_bus *bus = NULL;
        int sv[2];

        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        cr_assert_geq(sd_bus_new(&bus), 0);
        cr_assert_geq(sd_bus_set_fd(bus, sv[0], sv[0]), 0);
        cr_assert_geq(sd_bus_start(bus), 0);
        other_end = sv[1];
        return bus;
}

void test_bus_free(sd_bus *bus) {
        sd_bus_close_unref(bus);
        if (other_end >= 0)
                close(other_end);
        other_end = -1;
}

sd_bus_message *test_message_new(sd_bus *bus) {
        sd_bus_message *m = NULL;

        cr_assert_geq(sd_bus_message_new_method_call(bus, &m, "org.teepkit.Broker1", "/org/teepkit/Broker1",
                                                     "org.teepkit.Broker1", "Test"),
                      0);
        return m;
}

void test_message_seal(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_seal(m, 1, 0), 0);
        cr_assert_geq(sd_bus_message_rewind(m, true), 0);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool test_event_run_until(sd_event *e, const bool *flag, unsigned timeout_ms) {
        uint64_t end = now_ms() + timeout_ms;

        while (!*flag && now_ms() < end)
                cr_assert_geq(sd_event_run(e, 50 * 1000), 0);
        return *flag;
}
