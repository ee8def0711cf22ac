/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-test.h: helpers for the broker's in-process tests */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/*
 * A bus connection that is never used for traffic (one end of a socketpair), so messages can
 * be built, sealed and read back without a bus daemon. Free with test_bus_free().
 */
sd_bus *test_bus_new(void);
void test_bus_free(sd_bus *bus);

/* A method call on bus, to be filled with sd_bus_message_append*() and then sealed with
 * test_message_seal(), which also rewinds it for reading. */
sd_bus_message *test_message_new(sd_bus *bus);
void test_message_seal(sd_bus_message *m);

/* Run the loop until *flag is true or timeout_ms passed. Returns *flag. */
bool test_event_run_until(sd_event *e, const bool *flag, unsigned timeout_ms);

/* Whether certtool (gnutls-bin) is there. */
bool test_have_certtool(void);
/*
 * In dir: ca.key/ca.pem (a test CA) and srv.key/srv.pem, a TLS server certificate from it whose
 * subjectAltNames are sans, certtool template lines separated by "\\n", e.g.
 * "ip_address = \"127.0.0.1\"\\ndns_name = \"localhost\"". ECDSA P-256, valid 2 days.
 */
void test_make_pki(const char *dir, const char *sans);
