/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rss-floor.c: the resident memory a process pays for teep-agentd's libraries alone, with none
 * of the agent's own code or data: GnuTLS (which initialises itself when it is loaded, and
 * brings nettle, hogweed, gmp, p11-kit, libtasn1, libidn2, libunistring), libsystemd with a
 * connection to the system bus and an event loop, libcbor and libseccomp, each used once so
 * that the link keeps it. Part 5 of bench/run compares teep-agentd's idle RSS with this floor:
 * what is above it is the agent's; what is below it no agent on these libraries can save.
 *
 *   rss-floor     prints "rss_kib=N rss_signed_kib=M" and exits
 *
 * rss_kib: after the libraries' initialisation and the bus connection's Hello;
 * rss_signed_kib: the same after one ECDSA P-256 signature and its verification (every install
 * session makes several, so an idle agent that has served one has this code resident too).
 * Talks to $DBUS_SYSTEM_BUS_ADDRESS (source the devstack's env file first).
 */
#include <cbor.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;
        fputs("rss-floor: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

/* VmRSS of this process in KiB, from /proc/self/status */
static unsigned long rss_kib(void) {
        char line[256];
        unsigned long kib = 0;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                die("cannot open /proc/self/status");
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
                        break;
        fclose(f);
        if (kib == 0)
                die("no VmRSS in /proc/self/status");
        return kib;
}

static void sign_and_verify(void) {
        static const unsigned char msg[] = "one Sig_structure";
        const gnutls_datum_t data = { .data = (unsigned char *)msg, .size = sizeof(msg) - 1 };
        gnutls_privkey_t priv;
        gnutls_pubkey_t pub;
        gnutls_datum_t sig = { NULL, 0 };

        if (gnutls_privkey_init(&priv) < 0 ||
            gnutls_privkey_generate(priv, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
            gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, priv, 0, 0) < 0)
                die("cannot make a P-256 key");
        if (gnutls_privkey_sign_data2(priv, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &data, &sig) < 0 ||
            gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &data, &sig) < 0)
                die("the P-256 signature failed");
        gnutls_free(sig.data);
        gnutls_pubkey_deinit(pub);
        gnutls_privkey_deinit(priv);
}

int main(int argc, char *argv[]) {
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        cbor_item_t *item;
        scmp_filter_ctx filter;
        unsigned long base;
        int r;

        if (argc != 1)
                die("usage: rss-floor (no arguments)");
        r = gnutls_global_init();
        if (r < 0)
                die("gnutls_global_init: %s", gnutls_strerror(r));
        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                die("cannot connect to the system bus: %s", strerror(-r));
        /* the Hello's answer, so the connection is as an idle daemon's */
        r = sd_bus_flush(bus);
        if (r >= 0)
                r = sd_event_run(event, 100 * 1000);
        if (r < 0)
                die("the bus connection: %s", strerror(-r));
        item = cbor_new_null();
        if (!item)
                die("libcbor: out of memory");
        cbor_decref(&item);
        filter = seccomp_init(SCMP_ACT_ALLOW);
        if (!filter)
                die("seccomp_init failed");
        seccomp_release(filter);

        base = rss_kib();
        sign_and_verify();
        printf("rss_kib=%lu rss_signed_kib=%lu\n", base, rss_kib());

        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        gnutls_global_deinit();
        return 0;
}
