/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-test.c: see broker-test.h */
#include "broker-test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
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

bool test_have_certtool(void) {
        return system("command -v certtool >/dev/null 2>&1") == 0;
}

void test_make_pki(const char *dir, const char *sans) {
        char cmd[2048];

        snprintf(cmd, sizeof(cmd),
                 "cd %s && certtool --generate-privkey --key-type=ecdsa --outfile ca.key >/dev/null 2>&1 && "
                 "printf 'cn = \"teepkit test CA\"\\nca\\ncert_signing_key\\nexpiration_days = 2\\n' > ca.tmpl && "
                 "certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem >/dev/null 2>&1 && "
                 "certtool --generate-privkey --key-type=ecdsa --outfile srv.key >/dev/null 2>&1 && "
                 "printf 'cn = \"tam\"\\n%s\\ntls_www_server\\nsigning_key\\nexpiration_days = 2\\n' > srv.tmpl && "
                 "certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem "
                 "--load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem >/dev/null 2>&1",
                 dir, sans);
        cr_assert_eq(system(cmd), 0, "making the test PKI failed: %s", cmd);
}
