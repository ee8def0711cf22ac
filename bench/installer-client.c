/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* installer-client.c: a minimal org.teepkit.Installer1 caller for the installer benchmarks
 * (busctl cannot pass a file descriptor). Built on the fly by bench/installer-bigfile and
 * bench/installer-killtest; talks to $DBUS_SYSTEM_BUS_ADDRESS.
 *
 *   installer-client install COMPONENT FILE [SIZE [SHA256HEX]]   (defaults: the file's own)
 *   installer-client remove COMPONENT
 *   installer-client list
 *   installer-client pid                                          (the installer's pid)
 *
 * Exit: 0 ok, 2 usage, 3 bus error (name printed on stderr), 4 local error.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define NAME "org.teepkit.Installer1"
#define PATH "/org/teepkit/Installer1"
#define IFACE "org.teepkit.Installer1"

static int file_sha256(int fd, uint8_t out[32]) {
        static uint8_t buf[1 << 20];
        gnutls_hash_hd_t h;
        ssize_t n;

        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -1;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                gnutls_hash(h, buf, (size_t)n);
        gnutls_hash_deinit(h, out);
        return n < 0 ? -1 : 0;
}

static int unhex32(const char *s, uint8_t out[32]) {
        if (strlen(s) != 64)
                return -1;
        for (int i = 0; i < 32; i++)
                if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
                        return -1;
        return 0;
}

static int bus_fail(const char *what, const sd_bus_error *e, int r) {
        fprintf(stderr, "%s: %s: %s\n", what, e && e->name ? e->name : "error", e && e->message ? e->message : strerror(-r));
        return 3;
}

int main(int argc, char *argv[]) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        int r;

        if (argc < 2)
                return 2;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bus: %s\n", strerror(-r));
                return 4;
        }

        if (strcmp(argv[1], "install") == 0 && argc >= 4) {
                uint8_t digest[32];
                uint64_t size;
                struct stat st;
                const char *file;
                int fd = open(argv[3], O_RDONLY | O_CLOEXEC);

                if (fd < 0 || fstat(fd, &st) < 0) {
                        perror(argv[3]);
                        return 4;
                }
                size = argc >= 5 ? strtoull(argv[4], NULL, 10) : (uint64_t)st.st_size;
                if (argc >= 6) {
                        if (unhex32(argv[5], digest) < 0)
                                return 2;
                } else if (file_sha256(fd, digest) < 0 || lseek(fd, 0, SEEK_SET) != 0) {
                        perror("sha256");
                        return 4;
                }
                sd_bus_message *m = NULL;
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Install");
                if (r >= 0)
                        r = sd_bus_message_append(m, "sht", argv[2], fd, size);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', digest, 32);
                if (r >= 0)
                        r = sd_bus_message_append(m, "a{sv}", 0);
                if (r < 0)
                        return 4;
                r = sd_bus_call(bus, m, 600 * 1000000ull, &e, &reply);
                sd_bus_message_unref(m);
                if (r < 0)
                        return bus_fail("Install", &e, r);
                if (sd_bus_message_read(reply, "s", &file) < 0)
                        return 4;
                printf("%s\n", file);
        } else if (strcmp(argv[1], "remove") == 0 && argc >= 3) {
                r = sd_bus_call_method(bus, NAME, PATH, IFACE, "Remove", &e, NULL, "s", argv[2]);
                if (r < 0)
                        return bus_fail("Remove", &e, r);
        } else if (strcmp(argv[1], "list") == 0) {
                const char *component;
                uint64_t size, mtime;
                const void *d;
                size_t n;

                r = sd_bus_call_method(bus, NAME, PATH, IFACE, "List", &e, &reply, "");
                if (r < 0)
                        return bus_fail("List", &e, r);
                if (sd_bus_message_enter_container(reply, 'a', "(stayt)") < 0)
                        return 4;
                while (sd_bus_message_enter_container(reply, 'r', "stayt") > 0) {
                        if (sd_bus_message_read(reply, "st", &component, &size) < 0 ||
                            sd_bus_message_read_array(reply, 'y', &d, &n) < 0 ||
                            sd_bus_message_read(reply, "t", &mtime) < 0 || n != 32)
                                return 4;
                        printf("%s %" PRIu64 " ", component, size);
                        for (size_t i = 0; i < n; i++)
                                printf("%02x", ((const uint8_t *)d)[i]);
                        printf(" %" PRIu64 "\n", mtime);
                        sd_bus_message_exit_container(reply);
                }
        } else if (strcmp(argv[1], "pid") == 0) {
                uint32_t pid;
                /* Starts it if needed: Peer.Ping activates. */
                r = sd_bus_call_method(bus, NAME, PATH, "org.freedesktop.DBus.Peer", "Ping", &e, NULL, "");
                if (r < 0)
                        return bus_fail("Ping", &e, r);
                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID", &e, &reply, "s", NAME);
                if (r < 0 || sd_bus_message_read(reply, "u", &pid) < 0)
                        return bus_fail("GetConnectionUnixProcessID", &e, r);
                printf("%" PRIu32 "\n", pid);
        } else
                return 2;

        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        sd_bus_flush_close_unref(bus);
        return 0;
}
