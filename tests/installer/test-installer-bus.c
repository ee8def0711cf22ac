/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-installer-bus.c: teep-installer on a private dbus-daemon with the project's policy, bus
 * activated from the build tree (tests/integration/harness.h), called as the stack's users */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NAME "org.teepkit.Installer1"
#define PATH "/org/teepkit/Installer1"
#define IFACE "org.teepkit.Installer1"

static const char draft_component[] = "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta";
static const char draft_file[] = "TEEP-Device+SecureFS+8d82573a-926d-4754-9353-32dc29997f74+ta";

static Stack stack;

static void bring_up(const char *conf_text) {
        const char *why = NULL;
        char conf[] = "/tmp/teep-installer-XXXXXX.conf"; /* drop-ins end in .conf */

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        if (conf_text) {
                int fd = mkstemps(conf, 5);
                cr_assert_geq(fd, 0);
                cr_assert_eq(write(fd, conf_text, strlen(conf_text)), (ssize_t)strlen(conf_text));
                close(fd);
                cr_assert_eq(stack_up(&stack, (const char *const[]){ "--no-tam", "--no-agent", "--no-broker", "--conf",
                                                                      conf, NULL }),
                             0);
                unlink(conf);
        } else
                cr_assert_eq(stack_up(&stack, (const char *const[]){ "--no-tam", "--no-agent", "--no-broker", NULL }), 0);
}

static void up(void) {
        bring_up(NULL);
}

static void up_optee(void) {
        bring_up("[Installer]\nLayout=optee\n");
}

static void up_wrong_agent(void) {
        /* The bus policy lets teep-agent through; the daemon is told to answer teep-app only. */
        bring_up("[Installer]\nAgentUser=teep-app\n");
}

static void up_short_idle(void) {
        bring_up("[Installer]\nIdleTimeoutSec=1s\n");
}

static void down(void) {
        stack_down(&stack);
}

static const char *store_dir(void) {
        return stack_path(&stack, "var/lib/teepkit/tc");
}

/* ---- calls, made in a child as some uid; the result comes back through shared memory ---- */

typedef struct Entry {
        char component[256];
        uint64_t size;
        uint8_t sha256[32];
        uint64_t mtime;
} Entry;

typedef struct Call {
        /* request */
        char method[32]; /* Install, Remove, List, Get, Ping, Stage, Staged, Unstage */
        char component[600]; /* Stage, Staged: the id; Unstage: one id, or "" for none */
        char payload[512];
        uint64_t size;
        uint8_t sha256[32];
        size_t sha256_len;
        char option[32]; /* an options key to send, "" for none */
        char unstage_also[40]; /* Unstage: a second id, "" for none */
        char install[600];     /* Staged: then Install this component with the staged fd ("" not) */
        bool install_wrong_sha;
        /* reply */
        int r;
        char error[128];
        char message[512];
        char file[512];
        size_t n_entries;
        Entry entries[32];
        /* Stage: payload bytes the installer left in the pipe */
        uint64_t unread;
        /* Staged: what came back, and what the descriptor holds */
        uint64_t staged_size;
        uint8_t staged_sha256[32];
        uint8_t content_sha256[32];
        uint64_t staged_ino;
        int staged_accmode;
        /* Staged, then Install (c->install) */
        int install_r;
        char install_error[128];
        char install_message[512];
        char install_file[512];
        /* Introspect */
        char xml[32768];
} Call;

static Call *call_shared(void) {
        static Call *c;
        if (!c) {
                c = mmap(NULL, sizeof(Call), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                cr_assert_neq(c, MAP_FAILED);
        }
        memset(c, 0, sizeof(*c));
        c->sha256_len = 32;
        return c;
}

static int read_list(sd_bus_message *reply, Call *c) {
        int r = sd_bus_message_enter_container(reply, 'a', "(stayt)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'r', "stayt")) > 0) {
                const char *component;
                const void *d;
                size_t n;
                Entry *e;

                if (c->n_entries >= 32)
                        return -E2BIG;
                e = &c->entries[c->n_entries++];
                if ((r = sd_bus_message_read(reply, "st", &component, &e->size)) < 0 ||
                    (r = sd_bus_message_read_array(reply, 'y', &d, &n)) < 0 ||
                    (r = sd_bus_message_read(reply, "t", &e->mtime)) < 0)
                        return r;
                if (n != 32)
                        return -EBADMSG;
                memcpy(e->sha256, d, 32);
                snprintf(e->component, sizeof(e->component), "%s", component);
                if ((r = sd_bus_message_exit_container(reply)) < 0)
                        return r;
        }
        return r;
}

typedef struct AsyncReply {
        bool done;
        sd_bus_error error;
} AsyncReply;

static int on_async_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        AsyncReply *a = userdata;

        a->done = true;
        if (sd_bus_message_is_method_error(m, NULL))
                (void)sd_bus_error_copy(&a->error, sd_bus_message_get_error(m));
        return 0;
}

/*
 * Stage c->payload through a pipe, the way the agent streams a download: the call is sent
 * without waiting, a writer process fills the pipe meanwhile, then the reply is awaited.
 * Afterwards c->unread says how many payload bytes the installer did not take. Exit codes as
 * do_call().
 */
static int do_stage(sd_bus *bus, Call *c) {
        sd_bus_message *m = NULL;
        AsyncReply a = { .error = SD_BUS_ERROR_NULL };
        uint8_t *data = NULL, buf[65536];
        size_t n = 0;
        int fds[2], r;
        pid_t writer;
        FILE *f;

        f = fopen(c->payload, "re");
        if (!f)
                return 3;
        data = malloc(64u << 20);
        if (!data)
                return 3;
        n = fread(data, 1, 64u << 20, f);
        fclose(f);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return 3;

        r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Stage");
        if (r >= 0)
                r = sd_bus_message_append(m, "sht", c->component, fds[0], c->size);
        if (r >= 0)
                r = c->option[0] ? sd_bus_message_append(m, "a{sv}", 1, c->option, "b", 1)
                                 : sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_async_reply, &a, 30 * 1000000ull);
        if (r >= 0)
                r = sd_bus_flush(bus);
        if (r < 0)
                return 5;

        fflush(NULL);
        writer = fork();
        if (writer < 0)
                return 3;
        if (writer == 0) {
                size_t done = 0;

                close(fds[0]);
                while (done < n) {
                        ssize_t k = write(fds[1], data + done, n - done);
                        if (k <= 0)
                                _exit(1);
                        done += (size_t)k;
                }
                _exit(0);
        }
        close(fds[1]);
        free(data);

        while (!a.done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 5;
                if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        return 5;
        }
        /* what the installer left: drain to EOF (the writer then finishes) */
        for (;;) {
                ssize_t k = read(fds[0], buf, sizeof(buf));
                if (k <= 0)
                        break;
                c->unread += (uint64_t)k;
        }
        close(fds[0]);
        (void)waitpid(writer, NULL, 0);
        sd_bus_message_unref(m);

        if (sd_bus_error_is_set(&a.error)) {
                c->r = -1;
                snprintf(c->error, sizeof(c->error), "%s", a.error.name);
                snprintf(c->message, sizeof(c->message), "%s", a.error.message ?: "");
                sd_bus_error_free(&a.error);
                return 1;
        }
        return 0;
}

static void sha256_of_fd(int fd, uint8_t out[32]) {
        gnutls_hash_hd_t h;
        uint8_t buf[65536];
        off_t off = 0;
        ssize_t k;

        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return;
        while ((k = pread(fd, buf, sizeof(buf), off)) > 0) {
                (void)gnutls_hash(h, buf, (size_t)k);
                off += k;
        }
        gnutls_hash_deinit(h, out);
}

/* Staged(c->component): the descriptor, its size and digest; then, when c->install names a
 * component, Install with that very descriptor. */
static int do_staged(sd_bus *bus, Call *c, sd_bus_message *reply) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *ireply = NULL;
        uint8_t sha[32];
        const void *d;
        struct stat st;
        size_t len;
        int fd, r;

        if (sd_bus_message_read(reply, "ht", &fd, &c->staged_size) < 0 ||
            sd_bus_message_read_array(reply, 'y', &d, &len) < 0 || len != 32)
                return 11;
        memcpy(c->staged_sha256, d, 32);
        if (fstat(fd, &st) < 0)
                return 12;
        c->staged_ino = (uint64_t)st.st_ino;
        c->staged_accmode = fcntl(fd, F_GETFL) & O_ACCMODE;
        sha256_of_fd(fd, c->content_sha256);
        if (!c->install[0])
                return 0;

        memcpy(sha, c->staged_sha256, 32);
        if (c->install_wrong_sha)
                sha[0] ^= 1;
        r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Install");
        if (r >= 0)
                r = sd_bus_message_append(m, "sht", c->install, fd, c->staged_size);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', sha, 32);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return 13;
        c->install_r = sd_bus_call(bus, m, 30 * 1000000ull, &e, &ireply);
        if (c->install_r < 0) {
                snprintf(c->install_error, sizeof(c->install_error), "%s", e.name ?: "(none)");
                snprintf(c->install_message, sizeof(c->install_message), "%s", e.message ?: "");
        } else {
                const char *file;
                if (sd_bus_message_read(ireply, "s", &file) < 0)
                        return 14;
                snprintf(c->install_file, sizeof(c->install_file), "%s", file);
        }
        return 0;
}

/* Runs in the child. Exit 0: the call went through; 1: an error reply (in c->error); 2+: local. */
static int do_call(void *userdata) {
        Call *c = userdata;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        int r, fd = -1;

        alarm(60);
        if (sd_bus_open_system(&bus) < 0)
                return 2;
        if (strcmp(c->method, "Stage") == 0)
                return do_stage(bus, c);
        if (strcmp(c->method, "Install") == 0) {
                fd = open(c->payload, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return 3;
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Install");
                if (r >= 0)
                        r = sd_bus_message_append(m, "sht", c->component, fd, c->size);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', c->sha256, c->sha256_len);
                if (r >= 0)
                        r = c->option[0] ? sd_bus_message_append(m, "a{sv}", 1, c->option, "b", 1)
                                         : sd_bus_message_append(m, "a{sv}", 0);
        } else if (strcmp(c->method, "Remove") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Remove");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", c->component);
        } else if (strcmp(c->method, "List") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "List");
        } else if (strcmp(c->method, "Restore") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Restore");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", c->component);
        } else if (strcmp(c->method, "Discard") == 0) {
                /* one component, or all ("") */
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Discard");
                if (r >= 0)
                        r = c->component[0] ? sd_bus_message_append(m, "as", 1, c->component)
                                            : sd_bus_message_append(m, "as", 0);
        } else if (strcmp(c->method, "Staged") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Staged");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", c->component);
        } else if (strcmp(c->method, "Unstage") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "Unstage");
                if (r >= 0)
                        r = c->unstage_also[0] ? sd_bus_message_append(m, "as", 2, c->component, c->unstage_also)
                            : c->component[0]  ? sd_bus_message_append(m, "as", 1, c->component)
                                               : sd_bus_message_append(m, "as", 0);
        } else if (strcmp(c->method, "Get") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, "org.freedesktop.DBus.Properties", "Get");
                if (r >= 0)
                        r = sd_bus_message_append(m, "ss", IFACE, c->component);
        } else if (strcmp(c->method, "Ping") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, "org.freedesktop.DBus.Peer", "Ping");
        } else if (strcmp(c->method, "Introspect") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, "org.freedesktop.DBus.Introspectable", "Introspect");
        } else
                return 4;
        if (r < 0)
                return 5;

        r = sd_bus_call(bus, m, 30 * 1000000ull, &e, &reply);
        c->r = r;
        if (r < 0) {
                snprintf(c->error, sizeof(c->error), "%s", e.name ?: "(none)");
                snprintf(c->message, sizeof(c->message), "%s", e.message ?: strerror(-r));
                return 1;
        }
        if (strcmp(c->method, "Install") == 0) {
                const char *file;
                if (sd_bus_message_read(reply, "s", &file) < 0)
                        return 6;
                snprintf(c->file, sizeof(c->file), "%s", file);
        } else if (strcmp(c->method, "List") == 0) {
                if (read_list(reply, c) < 0)
                        return 7;
        } else if (strcmp(c->method, "Restore") == 0) {
                const char *what;
                if (sd_bus_message_read(reply, "s", &what) < 0)
                        return 9;
                snprintf(c->file, sizeof(c->file), "%s", what);
        } else if (strcmp(c->method, "Discard") == 0 || strcmp(c->method, "Unstage") == 0) {
                uint32_t n;
                if (sd_bus_message_read(reply, "u", &n) < 0)
                        return 10;
                snprintf(c->file, sizeof(c->file), "%" PRIu32, n);
        } else if (strcmp(c->method, "Staged") == 0) {
                return do_staged(bus, c, reply);
        } else if (strcmp(c->method, "Introspect") == 0) {
                const char *xml;
                if (sd_bus_message_read(reply, "s", &xml) < 0 || strlen(xml) >= sizeof(c->xml))
                        return 15;
                snprintf(c->xml, sizeof(c->xml), "%s", xml);
        } else if (strcmp(c->method, "Get") == 0) {
                const char *v;
                if (sd_bus_message_read(reply, "v", "s", &v) < 0)
                        return 8;
                snprintf(c->file, sizeof(c->file), "%s", v);
        }
        return 0;
}

static int call_as(uid_t uid, gid_t gid, Call *c) {
        int r = run_as(uid, gid, do_call, c);
        cr_assert(r == 0 || r == 1, "%s as uid %u: child failed with %d", c->method, (unsigned)uid, r);
        return r;
}

static int as_agent(Call *c) {
        return call_as(stack.uid_agent, stack.gid_agent, c);
}

/* ---- payloads and the store, seen from outside ---- */

static void sha256_file(const char *path, uint8_t out[32]) {
        char hex[65];
        cr_assert_eq(file_sha256_hex(path, hex), 0, "cannot hash %s", path);
        for (int i = 0; i < 32; i++)
                cr_assert_eq(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
}

/* A world-readable payload of n bytes in the stack directory, its digest in sha. */
static const char *make_payload(const char *name, size_t n, unsigned salt, uint8_t sha[32]) {
        static char paths[4][512];
        static unsigned next;
        char *path = paths[next++ % 4];
        uint8_t *p = malloc(n ? n : 1);
        FILE *f;

        cr_assert_not_null(p);
        snprintf(path, 512, "%s", stack_path(&stack, name));
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 2654435761u >> 13) ^ (uint8_t)salt;
        f = fopen(path, "we");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(p, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(chmod(path, 0644), 0);
        cr_assert_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, sha), 0);
        free(p);
        return path;
}

/* "name sha\n" for every entry of the store, sorted: equal strings mean an unchanged store. */
static char *snapshot(void) {
        struct dirent **list = NULL;
        int n = scandir(store_dir(), &list, NULL, alphasort);
        size_t cap = 1, len = 0;
        char *out;

        cr_assert_geq(n, 0);
        out = calloc(1, 1);
        for (int i = 0; i < n; i++) {
                char path[1024], hex[65] = "-", line[1200];
                struct stat st;

                snprintf(path, sizeof(path), "%s/%s", store_dir(), list[i]->d_name);
                if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
                        cr_assert_eq(file_sha256_hex(path, hex), 0);
                len += (size_t)snprintf(line, sizeof(line), "%s %s %o\n", list[i]->d_name, hex, st.st_mode);
                while (cap < len + 1)
                        cap *= 2;
                out = realloc(out, cap);
                strcat(out, line);
                free(list[i]);
        }
        free(list);
        return out;
}

/* The temporaries in the store; of that permission mode only, unless mode is 0. */
static unsigned temporaries_of_mode(mode_t mode) {
        DIR *d = opendir(store_dir());
        struct dirent *de;
        unsigned n = 0;

        cr_assert_not_null(d);
        while ((de = readdir(d))) {
                struct stat st;
                if (strncmp(de->d_name, ".teep-tmp-", 10) != 0)
                        continue;
                if (mode == 0 || (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 07777) == mode))
                        n++;
        }
        closedir(d);
        return n;
}

static unsigned temporaries(void) {
        return temporaries_of_mode(0);
}

static Call *install_call(const char *component, const char *payload, uint64_t size, const uint8_t sha[32]) {
        Call *c = call_shared();
        snprintf(c->method, sizeof(c->method), "Install");
        snprintf(c->component, sizeof(c->component), "%s", component);
        snprintf(c->payload, sizeof(c->payload), "%s", payload);
        c->size = size;
        memcpy(c->sha256, sha, 32);
        return c;
}

static Call *simple_call(const char *method, const char *component) {
        Call *c = call_shared();
        snprintf(c->method, sizeof(c->method), "%s", method);
        snprintf(c->component, sizeof(c->component), "%s", component ?: "");
        return c;
}

static const char stage_id[] = "0123456789abcdef0123456789abcdef";
static const char stage_id2[] = "fedcba9876543210fedcba9876543210";

static Call *stage_call(const char *id, const char *payload, uint64_t max_size) {
        Call *c = call_shared();
        snprintf(c->method, sizeof(c->method), "Stage");
        snprintf(c->component, sizeof(c->component), "%s", id);
        snprintf(c->payload, sizeof(c->payload), "%s", payload);
        c->size = max_size;
        return c;
}

static Call *staged_call(const char *id, const char *install) {
        Call *c = simple_call("Staged", id);
        snprintf(c->install, sizeof(c->install), "%s", install ?: "");
        return c;
}

static void assert_denied(const Call *c, const char *who) {
        cr_assert(strcmp(c->error, "org.teepkit.Error.AccessDenied") == 0 ||
                          strcmp(c->error, "org.freedesktop.DBus.Error.AccessDenied") == 0,
                  "%s %s as %s: got %s (%s), want AccessDenied", c->method, c->component, who, c->error, c->message);
}

static pid_t installer_pid(void) {
        return stack_bus_name_pid(NAME);
}

/* Activate the installer (as the agent) and return its pid. Right after a kill the bus may
 * not have noticed the old instance is gone yet, so a failed Ping is retried a few times. */
static pid_t start_installer(void) {
        pid_t pid;
        Call *c;

        for (int attempt = 0;; attempt++) {
                c = simple_call("Ping", NULL);
                if (as_agent(c) == 0)
                        break;
                cr_assert_lt(attempt, 20, "Ping: %s %s", c->error, c->message);
                usleep(50 * 1000);
        }
        pid = installer_pid();
        cr_assert_gt(pid, 0);
        return pid;
}

/* ---- the default layout ---- */

TestSuite(installer, .init = up, .fini = down, .timeout = 120);

Test(installer, install_list_replace_remove_round_trip) {
        static const char *const components[] = { draft_component, "a", ".dot/0x00ff", "8d82573a-926d-4754-9353-32dc29997f74" };
        uint8_t sha[4][32], sha2[32];
        const char *payload[4];
        Call *c;

        for (int i = 0; i < 4; i++) {
                char name[32];
                snprintf(name, sizeof(name), "payload-%d", i);
                payload[i] = make_payload(name, 1000 + 70000 * (size_t)i, (unsigned)i, sha[i]);
                c = install_call(components[i], payload[i], 1000 + 70000 * (uint64_t)i, sha[i]);
                cr_assert_eq(as_agent(c), 0, "Install %s: %s %s", components[i], c->error, c->message);
        }
        c = install_call(draft_component, payload[0], 1000, sha[0]);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, draft_file);

        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0, "List: %s %s", c->error, c->message);
        cr_assert_eq(c->n_entries, 4);
        for (int i = 0; i < 4; i++) {
                bool found = false;
                for (size_t k = 0; k < c->n_entries; k++)
                        if (strcmp(c->entries[k].component, components[i]) == 0) {
                                found = true;
                                cr_assert_eq(c->entries[k].size, 1000 + 70000 * (uint64_t)i);
                                cr_assert_arr_eq(c->entries[k].sha256, sha[i], 32);
                                cr_assert_gt(c->entries[k].mtime, UINT64_C(1600000000000000));
                        }
                cr_assert(found, "%s not listed", components[i]);
        }

        /* Replace: the same component with other bytes. */
        payload[0] = make_payload("payload-new", 4321, 99, sha2);
        c = install_call(draft_component, payload[0], 4321, sha2);
        cr_assert_eq(as_agent(c), 0);
        {
                char path[1024];
                uint8_t got[32];
                snprintf(path, sizeof(path), "%s/%s", store_dir(), draft_file);
                sha256_file(path, got);
                cr_assert_arr_eq(got, sha2, 32);
        }

        /* Remove, then remove again. */
        c = simple_call("Remove", "a");
        cr_assert_eq(as_agent(c), 0, "Remove: %s %s", c->error, c->message);
        c = simple_call("Remove", "a");
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.NotInstalled");
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 3);
        cr_assert_eq(temporaries(), 0);

        /* Properties */
        c = simple_call("Get", "StoreDirectory");
        cr_assert_eq(as_agent(c), 0, "Get: %s %s", c->error, c->message);
        cr_assert_str_eq(c->file, store_dir());
        c = simple_call("Get", "Layout");
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "default");
}

static unsigned undo_records(void) {
        DIR *d = opendir(store_dir());
        struct dirent *de;
        unsigned n = 0;

        cr_assert_not_null(d);
        while ((de = readdir(d)))
                if (strncmp(de->d_name, ".teep-undo-", 11) == 0 || strncmp(de->d_name, ".teep-added-", 12) == 0)
                        n++;
        closedir(d);
        return n;
}

static void assert_store_file(const char *file, const uint8_t want[32]) {
        char path[1024];
        uint8_t got[32];

        snprintf(path, sizeof(path), "%s/%s", store_dir(), file);
        sha256_file(path, got);
        cr_assert_arr_eq(got, want, 32, "%s", file);
}

/* Restore and Discard on the bus; undo records survive the installer's own restart (it is
 * bus-activated and exits when idle, while the agent may still need them). */
Test(installer, restore_and_discard) {
        uint8_t v1[32], v2[32];
        const char *p1 = make_payload("undo-1", 3000, 1, v1), *p2 = make_payload("undo-2", 5000, 2, v2);
        char path[1024];
        pid_t pid;
        Call *c;

        c = install_call(draft_component, p1, 3000, v1);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        c = simple_call("Discard", "");
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "1", "the added marker of the first install");
        cr_assert_eq(undo_records(), 0);

        c = install_call(draft_component, p2, 5000, v2);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(undo_records(), 1);
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 1, "an undo record is not a TC");
        cr_assert_arr_eq(c->entries[0].sha256, v2, 32);

        /* kill -9 the installer; the next one keeps the record */
        pid = start_installer();
        cr_assert_eq(kill(pid, SIGKILL), 0);
        for (int w = 0; w < 500 && kill(pid, 0) == 0 && !stack_proc_status_has(pid, "State:\tZ"); w++)
                usleep(10000);
        cr_assert_neq(start_installer(), pid);
        cr_assert_eq(undo_records(), 1, "a new installer dropped the undo record");

        c = simple_call("Restore", draft_component);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "previous");
        assert_store_file(draft_file, v1);
        c = simple_call("Restore", draft_component);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "none");
        assert_store_file(draft_file, v1);

        /* a remove undone */
        c = simple_call("Remove", draft_component);
        cr_assert_eq(as_agent(c), 0);
        snprintf(path, sizeof(path), "%s/%s", store_dir(), draft_file);
        cr_assert_eq(access(path, F_OK), -1);
        c = simple_call("Restore", draft_component);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "previous");
        assert_store_file(draft_file, v1);

        /* a first install undone */
        c = install_call("fresh", p2, 5000, v2);
        cr_assert_eq(as_agent(c), 0);
        c = simple_call("Restore", "fresh");
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "removed");
        snprintf(path, sizeof(path), "%s/fresh", store_dir());
        cr_assert_eq(access(path, F_OK), -1);

        /* Discard of one component; hostile names refused */
        c = install_call(draft_component, p2, 5000, v2);
        cr_assert_eq(as_agent(c), 0);
        c = simple_call("Discard", "../escape");
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent");
        cr_assert_eq(undo_records(), 1);
        c = simple_call("Discard", draft_component);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "1");
        cr_assert_eq(undo_records(), 0);
        c = simple_call("Restore", draft_component);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "none");
        assert_store_file(draft_file, v2);
        cr_assert_eq(temporaries(), 0);

        /* a component no file name can hold was never installed: nothing to undo or discard
         * (the agent undoes the very Install that was refused for it) */
        {
                char longname[520];
                memset(longname, 'a', 511);
                longname[255] = '/';
                longname[511] = '\0';
                c = simple_call("Restore", longname);
                cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
                cr_assert_str_eq(c->file, "none");
                c = simple_call("Discard", longname);
                cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
                cr_assert_str_eq(c->file, "0");
        }
}

Test(installer, only_the_agent_uid_may_call) {
        uint8_t sha[32];
        const char *payload = make_payload("payload", 5000, 1, sha);
        static const char *const methods[] = { "Install", "Remove", "List", "Get", "Ping", "Restore", "Discard",
                                               "Stage", "Staged", "Unstage" };
        struct {
                const char *who;
                uid_t uid;
                gid_t gid;
        } others[] = {
                { "teep-app", stack.uid_app, stack.gid_app },
                { "teep-broker", stack.uid_broker, stack.gid_broker },
                { "teep-installer", stack.uid_installer, stack.gid_installer },
                { "root", 0, 0 },
        };
        char *before;
        Call *c;

        cr_assert(stack.distinct_users);
        c = install_call("victim", payload, 5000, sha);
        cr_assert_eq(as_agent(c), 0);
        /* something staged, which nobody else may read or unstage */
        c = stage_call(stage_id, payload, 5000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        before = snapshot();

        for (size_t u = 0; u < sizeof(others) / sizeof(others[0]); u++)
                for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                        if (strcmp(methods[m], "Install") == 0)
                                c = install_call("intruder", payload, 5000, sha);
                        else if (strcmp(methods[m], "Stage") == 0)
                                c = stage_call(stage_id, payload, 5000);
                        else if (strcmp(methods[m], "Staged") == 0 || strcmp(methods[m], "Unstage") == 0)
                                c = simple_call(methods[m], stage_id);
                        else
                                c = simple_call(methods[m], strcmp(methods[m], "Get") == 0 ? "StoreDirectory" : "victim");
                        cr_assert_eq(call_as(others[u].uid, others[u].gid, c), 1, "%s as %s went through", methods[m],
                                     others[u].who);
                        assert_denied(c, others[u].who);
                        if (strcmp(methods[m], "Stage") == 0)
                                cr_assert_eq(c->unread, 5000, "a denied Stage read its payload");
                }
        {
                char *after = snapshot();
                cr_assert_str_eq(after, before, "a denied call changed the store");
                free(after);
        }
        /* the agent's own Staged makes the file 0644 and syncs it once answered
         * (store_staged_sync()), ahead of the Install */
        cr_assert_eq(temporaries_of_mode(0600), 1);
        c = staged_call(stage_id, NULL);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_arr_eq(c->content_sha256, sha, 32);
        c = simple_call("Ping", NULL);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message); /* handled after the sync */
        cr_assert_eq(temporaries_of_mode(0644), 1, "the staged file was not synced after Staged");
        free(before);
}

Test(installer, mismatches_leave_the_store_unchanged) {
        uint8_t sha_old[32], sha[32], wrong[32];
        const char *old = make_payload("old", 100000, 1, sha_old);
        const char *payload = make_payload("new", 300000, 2, sha);
        char *before, *after;
        Call *c;

        c = install_call(draft_component, old, 100000, sha_old);
        cr_assert_eq(as_agent(c), 0);
        before = snapshot();

        memcpy(wrong, sha, 32);
        wrong[31] ^= 0x80;
        c = install_call(draft_component, payload, 300000, wrong);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.DigestMismatch", "%s", c->message);

        c = install_call(draft_component, payload, 300001, sha);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.SizeMismatch", "%s", c->message);

        c = install_call(draft_component, payload, 299999, sha);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.SizeMismatch", "%s", c->message);

        c = install_call(draft_component, payload, 0, sha);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.SizeMismatch", "%s", c->message);

        /* Arguments that are not a request at all. */
        c = install_call(draft_component, payload, 300000, sha);
        c->sha256_len = 31;
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs", "%s", c->message);
        c = install_call(draft_component, payload, 300000, sha);
        snprintf(c->option, sizeof(c->option), "force");
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs", "%s", c->message);

        after = snapshot();
        cr_assert_str_eq(after, before, "a refused install changed the store");
        free(before);
        free(after);
}

Test(installer, hostile_names_are_refused) {
        static const char *const hostile[] = {
                "..", ".", "../etc/passwd", "a/../../b", "/etc/passwd", "a//b", "a/", "", "a b", "a\\b",
                "a\tb", "a\001b", "0x6162", "0xZZ", "a/./b", "..\\..",
                /* valid identifiers whose file name would be over 255 bytes */
                "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        };
        uint8_t sha[32];
        const char *payload = make_payload("payload", 100, 1, sha);
        char *before = snapshot(), *after;

        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
                Call *c = install_call(hostile[i], payload, 100, sha);
                cr_assert_eq(as_agent(c), 1, "'%s' was installed", hostile[i]);
                cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent", "'%s': %s %s", hostile[i], c->error,
                                 c->message);
                c = simple_call("Remove", hostile[i]);
                cr_assert_eq(as_agent(c), 1);
                cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent");
        }
        /* The bytes "/.." as a segment are fine: they are written in hex. */
        {
                Call *c = install_call("0x2f2e2e/0x2e2e", payload, 100, sha);
                cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
                cr_assert_str_eq(c->file, "0x2f2e2e+0x2e2e");
        }
        after = snapshot();
        cr_assert_neq(strstr(after, "0x2f2e2e+0x2e2e "), NULL);
        free(before);
        free(after);
        /* Nothing escaped next to the store. */
        cr_assert_eq(access(stack_path(&stack, "var/lib/teepkit/passwd"), F_OK), -1);
        cr_assert_eq(access(stack_path(&stack, "var/lib/teepkit/b"), F_OK), -1);
}

Test(installer, runs_under_its_seccomp_filter) {
        pid_t pid = start_installer();

        cr_assert(stack_proc_status_has(pid, "Name:\tteep-installer"), "pid %d is not teep-installer", (int)pid);
        cr_assert(stack_proc_status_has(pid, "Seccomp:\t2"), "teep-installer (pid %d) runs without a seccomp filter", (int)pid);
        cr_assert(stack_proc_status_has(pid, "NoNewPrivs:\t1"));
        {
                char uid_line[64];
                snprintf(uid_line, sizeof(uid_line), "Uid:\t%u\t%u\t%u\t%u", stack.uid_installer, stack.uid_installer,
                         stack.uid_installer, stack.uid_installer);
                cr_assert(stack_proc_status_has(pid, uid_line), "not running as teep-installer");
        }
}

/* ---- staging: a payload streamed in before every manifest is checked, installed later ---- */

static uint64_t store_file_ino(const char *file) {
        char path[1024];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", store_dir(), file);
        cr_assert_eq(lstat(path, &st), 0, "%s: %m", path);
        return (uint64_t)st.st_ino;
}

static void assert_nothing_staged_under(const char *id) {
        Call *c = staged_call(id, NULL);
        char want[128];

        cr_assert_eq(as_agent(c), 1, "Staged %s went through", id);
        cr_assert_str_eq(c->error, "org.teepkit.Error.Failed", "%s", c->message);
        snprintf(want, sizeof(want), "Nothing is staged under %s", id);
        cr_assert_str_eq(c->message, want);
}

Test(installer, stage_a_stream_then_install_it_without_a_copy) {
        const size_t n = (5u << 20) + 3;
        uint8_t sha[32], old[32];
        const char *payload = make_payload("stream", n, 7, sha);
        const char *first = make_payload("first", 2000, 8, old);
        uint64_t ino;
        Call *c;

        c = install_call(draft_component, first, 2000, old);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);

        c = stage_call(stage_id, payload, 64u << 20);
        cr_assert_eq(as_agent(c), 0, "Stage: %s %s", c->error, c->message);
        cr_assert_eq(c->unread, 0, "the installer left %" PRIu64 " bytes in the pipe", c->unread);
        cr_assert_eq(temporaries(), 1, "the staged file is a temporary in the store");
        assert_store_file(draft_file, old); /* staged is not installed */

        c = staged_call(stage_id, draft_component);
        cr_assert_eq(as_agent(c), 0, "Staged: %s %s", c->error, c->message);
        cr_assert_eq(c->staged_size, n);
        cr_assert_arr_eq(c->staged_sha256, sha, 32);
        cr_assert_arr_eq(c->content_sha256, sha, 32, "the staged descriptor does not hold the payload");
        cr_assert_eq(c->staged_accmode, O_RDONLY);
        ino = c->staged_ino;
        cr_assert_eq(c->install_r, 1, "Install: %s %s", c->install_error, c->install_message);
        cr_assert_str_eq(c->install_file, draft_file);

        assert_store_file(draft_file, sha);
        cr_assert_eq(store_file_ino(draft_file), ino, "the installed file is not the staged inode (a copy was made)");
        cr_assert_eq(temporaries(), 0);
        assert_nothing_staged_under(stage_id);

        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 1);
        cr_assert_eq(c->entries[0].size, n);
        cr_assert_arr_eq(c->entries[0].sha256, sha, 32);
        /* an install's tail ran: Restore puts the first image back */
        c = simple_call("Restore", draft_component);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "previous");
        assert_store_file(draft_file, old);
}

Test(installer, a_staged_install_with_a_wrong_digest_changes_nothing) {
        uint8_t sha[32], old[32];
        const char *payload = make_payload("stream", 100000, 9, sha);
        const char *first = make_payload("first", 2000, 8, old);
        char *before, *after;
        Call *c;

        c = install_call(draft_component, first, 2000, old);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        before = snapshot();
        c = stage_call(stage_id, payload, 100000);
        cr_assert_eq(as_agent(c), 0, "Stage: %s %s", c->error, c->message);
        c = staged_call(stage_id, draft_component);
        c->install_wrong_sha = true;
        cr_assert_eq(as_agent(c), 0, "Staged: %s %s", c->error, c->message);
        cr_assert_lt(c->install_r, 0, "a staged file with the wrong digest was installed");
        cr_assert_str_eq(c->install_error, "org.teepkit.Error.DigestMismatch", "%s", c->install_message);
        after = snapshot();
        cr_assert_str_eq(after, before, "a refused staged install changed the store (or left its file)");
        assert_nothing_staged_under(stage_id);
        free(before);
        free(after);
}

/* The agent as it runs: its connection owns org.teepkit.Agent1 and stages; then it is gone (a
 * crash, a restart). Nobody will install or unstage that payload, so the installer drops it
 * at once instead of keeping it for the ten minutes of its expiry. */
static int stage_as_the_named_agent(void *userdata) {
        sd_bus *bus = NULL;

        alarm(60);
        if (sd_bus_open_system(&bus) < 0)
                return 2;
        if (sd_bus_request_name(bus, "org.teepkit.Agent1", 0) < 0)
                return 3;
        return do_stage(bus, userdata); /* and exit: the name goes with the connection */
}

Test(installer, what_a_departed_agent_staged_goes_with_it) {
        uint8_t sha[32];
        const char *payload = make_payload("staged", 20000, 5, sha);
        pid_t pid = start_installer();
        Call *c = stage_call(stage_id, payload, 20000);
        bool gone = false;

        cr_assert_eq(run_as(stack.uid_agent, stack.gid_agent, stage_as_the_named_agent, c), 0, "%s %s", c->error,
                     c->message);
        for (int w = 0; w < 50 && !gone; w++) {
                gone = temporaries() == 0;
                if (!gone)
                        usleep(100 * 1000);
        }
        cr_assert(gone, "the staged file outlived the agent by 5 s");
        cr_assert_eq(installer_pid(), pid, "the installer restarted");
        c = staged_call(stage_id, NULL);
        cr_assert_eq(as_agent(c), 1);
        cr_assert(strstr(c->message, "Nothing is staged"), "%s", c->message);
}

Test(installer, unstage_removes_the_staged_files) {
        uint8_t sha[32];
        const char *payload = make_payload("stream", 300000, 3, sha);
        char *before = snapshot(), *after;
        Call *c;

        c = stage_call(stage_id, payload, 300000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        c = stage_call(stage_id2, payload, 300000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_eq(temporaries(), 2);

        /* an unknown id is ignored */
        c = simple_call("Unstage", stage_id);
        snprintf(c->unstage_also, sizeof(c->unstage_also), "%s", "00000000000000000000000000000000");
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "1");
        cr_assert_eq(temporaries(), 1);
        assert_nothing_staged_under(stage_id);

        c = simple_call("Unstage", stage_id2);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "1");
        c = simple_call("Unstage", "");
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "0");
        cr_assert_eq(temporaries(), 0);
        after = snapshot();
        cr_assert_str_eq(after, before);
        free(before);
        free(after);
}

Test(installer, stage_refusals) {
        uint8_t sha[32];
        const char *payload = make_payload("small", 1000, 4, sha);
        static const char *const bad_ids[] = { "0123456789ABCDEF0123456789abcdef", "0123456789abcdef", "",
                                               "0123456789abcdef0123456789abcdef0", "../../../../../../../etc/passwd" };
        Call *c;

        assert_nothing_staged_under("00000000000000000000000000000001");
        for (size_t k = 0; k < sizeof(bad_ids) / sizeof(bad_ids[0]); k++) {
                c = stage_call(bad_ids[k], payload, 1000);
                cr_assert_eq(as_agent(c), 1, "Stage '%s' went through", bad_ids[k]);
                cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs", "'%s': %s", bad_ids[k], c->message);
                cr_assert_eq(c->unread, 1000, "a refused Stage read its payload");
                c = simple_call("Staged", bad_ids[k]);
                cr_assert_eq(as_agent(c), 1);
                cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs");
        }
        c = stage_call(stage_id, payload, 0);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs", "%s", c->message);
        c = stage_call(stage_id, payload, 1000);
        snprintf(c->option, sizeof(c->option), "force");
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.InvalidArgs", "%s", c->message);
        cr_assert_eq(temporaries(), 0);

        /* the same id twice: Busy, the second payload unread, the first still staged */
        c = stage_call(stage_id, payload, 1000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        c = stage_call(stage_id, payload, 1000);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.Busy", "%s", c->message);
        cr_assert_eq(c->unread, 1000);
        c = staged_call(stage_id, NULL);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_arr_eq(c->content_sha256, sha, 32);
        cr_assert_eq(temporaries(), 1);
}

Test(installer, the_seventeenth_stage_is_busy) {
        uint8_t sha[32];
        const char *payload = make_payload("small", 4000, 5, sha);
        char id[40];
        Call *c;

        for (unsigned k = 0; k < 16; k++) {
                snprintf(id, sizeof(id), "%032x", k);
                c = stage_call(id, payload, 4000);
                cr_assert_eq(as_agent(c), 0, "Stage %u: %s %s", k, c->error, c->message);
        }
        cr_assert_eq(temporaries(), 16);
        snprintf(id, sizeof(id), "%032x", 16u);
        c = stage_call(id, payload, 4000);
        cr_assert_eq(as_agent(c), 1, "a 17th payload was staged");
        cr_assert_str_eq(c->error, "org.teepkit.Error.Busy", "%s", c->message);
        cr_assert_eq(c->unread, 4000, "the refused payload was read");
        cr_assert_eq(temporaries(), 16);

        /* one out, one in */
        c = simple_call("Unstage", "00000000000000000000000000000003");
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "1");
        c = stage_call(id, payload, 4000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_eq(temporaries(), 16);
        for (unsigned k = 0; k <= 16; k++) {
                snprintf(id, sizeof(id), "%032x", k);
                c = simple_call("Unstage", id);
                cr_assert_eq(as_agent(c), 0);
        }
        cr_assert_eq(temporaries(), 0);
}

Test(installer, a_stage_over_its_limit_is_reported_by_staged) {
        uint8_t sha[32];
        const char *payload = make_payload("long", 300000, 6, sha);
        char *before = snapshot(), *after, message[512];
        Call *c;

        c = stage_call(stage_id, payload, 200000);
        cr_assert_eq(as_agent(c), 1, "a payload over its limit was staged");
        cr_assert_str_eq(c->error, "org.teepkit.Error.LimitExceeded", "%s", c->message);
        cr_assert_neq(strstr(c->message, "more than 200000 bytes"), NULL, "%s", c->message);
        cr_assert_geq(c->unread, 300000 - 200001, "the installer read on past its limit");
        snprintf(message, sizeof(message), "%s", c->message);
        after = snapshot();
        cr_assert_str_eq(after, before, "a refused stage left something in the store");
        cr_assert_eq(temporaries(), 0);

        /* Staged reports the failure once, with the same name and message */
        c = staged_call(stage_id, NULL);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.LimitExceeded");
        cr_assert_str_eq(c->message, message);
        assert_nothing_staged_under(stage_id);
        /* the id is free again */
        c = stage_call(stage_id, payload, 300000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        free(before);
        free(after);
}

/*
 * kill -9 at random moments during installs of a multi-MiB payload: afterwards the file is the
 * old version or the new one, never anything else, and the next instance removes the temporary.
 */
static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

Test(installer, kill_9_never_leaves_a_torn_file, .timeout = 600) {
        const unsigned iterations = getenv("TEEP_KILL_ITERATIONS") ? (unsigned)atoi(getenv("TEEP_KILL_ITERATIONS")) : 30;
        const size_t size = 8u << 20;
        uint8_t sha[2][32], got[32];
        const char *payload[2];
        char path[1024];
        unsigned interrupted = 0, completed = 0, leftovers = 0;
        int current = -1; /* which payload is in the store: -1 none */
        uint64_t t0, install_us;
        Call *c;

        payload[0] = make_payload("kill-a", size, 1, sha[0]);
        payload[1] = make_payload("kill-b", size, 2, sha[1]);
        snprintf(path, sizeof(path), "%s/%s", store_dir(), draft_file);

        /* How long one install takes here: kills are spread over that window. */
        start_installer();
        t0 = now_us();
        c = install_call(draft_component, payload[0], size, sha[0]);
        cr_assert_eq(as_agent(c), 0);
        install_us = now_us() - t0;
        current = 0;
        srand((unsigned)time(NULL));

        for (unsigned it = 0; it < iterations; it++) {
                int next = current == 0 ? 1 : 0, status;
                pid_t pid, child;
                uint64_t delay;

                pid = start_installer();
                cr_assert_eq(temporaries(), 0, "iteration %u: a new instance did not clean up", it);
                cr_assert(stack_proc_status_has(pid, "Name:\tteep-installer"));

                c = install_call(draft_component, payload[next], size, sha[next]);
                fflush(NULL);
                child = fork();
                cr_assert_geq(child, 0);
                if (child == 0) {
                        if (setgroups(0, NULL) < 0 || setresgid(stack.gid_agent, stack.gid_agent, stack.gid_agent) < 0 ||
                            setresuid(stack.uid_agent, stack.uid_agent, stack.uid_agent) < 0)
                                _exit(125);
                        _exit(do_call(c));
                }
                delay = (uint64_t)rand() % (install_us + install_us / 4 + 1);
                usleep((useconds_t)delay);
                cr_assert_eq(kill(pid, SIGKILL), 0);
                cr_assert_eq(waitpid(child, &status, 0), child);
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "iteration %u: caller failed (%d)", it, status);

                /* The installer must be gone before looking (the kill is asynchronous). */
                for (int w = 0; w < 500 && kill(pid, 0) == 0 && !stack_proc_status_has(pid, "State:\tZ"); w++)
                        usleep(10000);

                if (temporaries() > 0)
                        leftovers++;
                cr_assert_eq(file_sha256_hex(path, (char[65]){ 0 }), 0, "iteration %u: the TC vanished", it);
                sha256_file(path, got);
                if (memcmp(got, sha[next], 32) == 0) {
                        current = next;
                        if (WEXITSTATUS(status) == 0)
                                completed++;
                        else
                                interrupted++; /* killed after the rename, before the reply */
                } else {
                        cr_assert_arr_eq(got, sha[current], 32, "iteration %u: torn file (neither old nor new)", it);
                        cr_assert_eq(WEXITSTATUS(status), 1, "iteration %u: success reported, old file in place", it);
                        interrupted++;
                }
        }
        /* The next start removes what the last kill left. */
        start_installer();
        cr_assert_eq(temporaries(), 0);
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 1);
        cr_assert_arr_eq(c->entries[0].sha256, sha[current], 32);

        fprintf(stderr, "kill test: %u iterations, install %" PRIu64 " us, %u interrupted, %u completed, %u left a temporary\n",
                iterations, install_us, interrupted, completed, leftovers);
        cr_assert_gt(leftovers, 0, "no kill landed while a temporary existed; the test proved nothing");
}

/* The value of attribute key in the tag [tag, end), or "" (into out). */
static void xml_attr(const char *tag, const char *end, const char *key, char *out, size_t n) {
        char pattern[32];
        const char *p;

        snprintf(pattern, sizeof(pattern), " %s=\"", key);
        out[0] = '\0';
        p = strstr(tag, pattern);
        if (!p || p >= end)
                return;
        p += strlen(pattern);
        snprintf(out, n, "%.*s", (int)strcspn(p, "\""), p);
}

static int cmp_line(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The members of iface in an introspection document, one sorted line each:
 * "method Name(in types)(out types)" or "property Name type access". Comments are skipped. */
static void xml_members(const char *xml, const char *iface, char *out, size_t n) {
        char head[128], *lines[64], cur[512] = "", ins[128] = "", outs[128] = "";
        const char *p, *end;
        size_t nl = 0, used = 0;

        snprintf(head, sizeof(head), "<interface name=\"%s\"", iface);
        p = strstr(xml, head);
        cr_assert_not_null(p, "no interface %s", iface);
        end = strstr(p, "</interface>");
        cr_assert_not_null(end);
        while ((p = strchr(p + 1, '<')) && p < end) {
                const char *close;
                char name[128], type[64], dir[16], access[16];

                if (strncmp(p, "<!--", 4) == 0) {
                        p = strstr(p, "-->");
                        cr_assert_not_null(p);
                        continue;
                }
                close = strchr(p, '>');
                cr_assert_not_null(close);
                xml_attr(p, close, "name", name, sizeof(name));
                xml_attr(p, close, "type", type, sizeof(type));
                if (strncmp(p, "<method ", 8) == 0) {
                        snprintf(cur, sizeof(cur), "method %s", name);
                        ins[0] = outs[0] = '\0';
                } else if (strncmp(p, "<arg ", 5) == 0 && cur[0]) {
                        xml_attr(p, close, "direction", dir, sizeof(dir));
                        strncat(strcmp(dir, "out") == 0 ? outs : ins, type, sizeof(ins) - strlen(ins) - 1);
                }
                if ((strncmp(p, "<method ", 8) == 0 && close[-1] == '/') || strncmp(p, "</method>", 9) == 0) {
                        cr_assert_lt(nl, 64);
                        cr_assert_geq(asprintf(&lines[nl++], "%s(%s)(%s)", cur, ins, outs), 0);
                        cur[0] = '\0';
                } else if (strncmp(p, "<property ", 10) == 0) {
                        xml_attr(p, close, "access", access, sizeof(access));
                        cr_assert_lt(nl, 64);
                        cr_assert_geq(asprintf(&lines[nl++], "property %s %s %s", name, type, access), 0);
                }
        }
        qsort(lines, nl, sizeof(char *), cmp_line);
        out[0] = '\0';
        for (size_t k = 0; k < nl; k++) {
                used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s\n", lines[k]);
                free(lines[k]);
        }
        cr_assert_lt(used, n);
}

Test(installer, the_live_api_is_the_documented_xml) {
        char path[1024], want[4096], got[4096], *xml = NULL;
        size_t len = 0;
        FILE *f;
        Call *c;

        snprintf(path, sizeof(path), "%s/dbus/org.teepkit.Installer1.xml", getenv("TEEP_SOURCE_ROOT") ?: ".");
        f = fopen(path, "re");
        cr_assert_not_null(f, "%s: %m", path);
        cr_assert_geq(getdelim(&xml, &len, '\0', f), 0);
        fclose(f);
        c = simple_call("Introspect", NULL);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        xml_members(xml, IFACE, want, sizeof(want));
        xml_members(c->xml, IFACE, got, sizeof(got));
        cr_assert_str_eq(got, want, "the installer serves\n%s\nthe XML says\n%s", got, want);
        cr_assert_neq(strstr(want, "method Stage(shta{sv})()"), NULL, "%s", want);
        cr_assert_neq(strstr(want, "method Staged(s)(htay)"), NULL, "%s", want);
        free(xml);
}

/* ---- the daemon's own check, behind a bus policy that lets the agent through ---- */

TestSuite(installer_credentials, .init = up_wrong_agent, .fini = down, .timeout = 120);

Test(installer_credentials, the_daemon_refuses_a_uid_the_policy_allowed) {
        uint8_t sha[32];
        const char *payload = make_payload("payload", 100, 1, sha);
        char *before = snapshot(), *after;
        Call *c;

        c = install_call("x", payload, 100, sha);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied", "%s: %s", c->error, c->message);
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied");
        c = simple_call("Get", "Layout");
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied");
        c = stage_call(stage_id, payload, 100);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied", "%s: %s", c->error, c->message);
        cr_assert_eq(c->unread, 100, "a denied Stage read its payload");
        c = simple_call("Staged", stage_id);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied");
        c = simple_call("Unstage", stage_id);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.AccessDenied");
        /* and teep-app, whom the daemon would answer, is stopped by the bus */
        c = simple_call("List", NULL);
        cr_assert_eq(call_as(stack.uid_app, stack.gid_app, c), 1);
        cr_assert_str_eq(c->error, "org.freedesktop.DBus.Error.AccessDenied");
        after = snapshot();
        cr_assert_str_eq(after, before);
        free(before);
        free(after);
}

/* ---- the OP-TEE layout ---- */

TestSuite(installer_optee, .init = up_optee, .fini = down, .timeout = 120);

Test(installer_optee, writes_uuid_ta_and_lists_the_component) {
        uint8_t sha[32], sha2[32];
        const char *payload = make_payload("payload", 2048, 1, sha);
        const char *payload2 = make_payload("payload2", 1024, 2, sha2);
        char path[1024];
        uint8_t got[32];
        Call *c;

        c = install_call(draft_component, payload, 2048, sha);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "8d82573a-926d-4754-9353-32dc29997f74.ta");
        snprintf(path, sizeof(path), "%s/8d82573a-926d-4754-9353-32dc29997f74.ta", store_dir());
        sha256_file(path, got);
        cr_assert_arr_eq(got, sha, 32);

        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 1);
        cr_assert_str_eq(c->entries[0].component, draft_component);
        cr_assert_arr_eq(c->entries[0].sha256, sha, 32);

        /* Same UUID, another component: refused, TA untouched. */
        c = install_call("8d82573a-926d-4754-9353-32dc29997f74", payload2, 1024, sha2);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent", "%s", c->message);
        sha256_file(path, got);
        cr_assert_arr_eq(got, sha, 32);

        /* No UUID segment: no place in this layout. */
        c = install_call("TEEP-Device/SecureFS/ta", payload2, 1024, sha2);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent");

        c = simple_call("Get", "Layout");
        cr_assert_eq(as_agent(c), 0);
        cr_assert_str_eq(c->file, "optee");

        c = simple_call("Remove", draft_component);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_eq(access(path, F_OK), -1);
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 0);
}

/* ---- idle exit and re-activation ---- */

TestSuite(installer_idle, .init = up_short_idle, .fini = down, .timeout = 120);

Test(installer_idle, exits_when_idle_and_comes_back_on_the_next_call) {
        pid_t first = start_installer(), second;
        bool gone = false;

        for (int w = 0; w < 100 && !gone; w++) {
                usleep(100 * 1000);
                gone = kill(first, 0) < 0 || stack_proc_status_has(first, "State:\tZ");
        }
        cr_assert(gone, "teep-installer (pid %d) still running 10 s after a 1 s idle timeout", (int)first);
        cr_assert_eq(installer_pid(), 0, "the name is still owned");
        second = start_installer();
        cr_assert_neq(second, first);
        {
                Call *c = simple_call("List", NULL);
                cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        }
}

/* Whether pid exits (or is a zombie) within 10 s. */
static bool wait_gone(pid_t pid) {
        for (int w = 0; w < 100; w++) {
                usleep(100 * 1000);
                if (kill(pid, 0) < 0 || stack_proc_status_has(pid, "State:\tZ"))
                        return true;
        }
        return false;
}

/* Something staged waits for its Install: no idle exit meanwhile. SIGTERM unlinks it. */
Test(installer_idle, stays_while_something_is_staged_and_cleans_up_at_exit) {
        uint8_t sha[32];
        const char *payload = make_payload("staged", 10000, 2, sha);
        pid_t pid = start_installer();
        bool gone;
        Call *c;

        c = stage_call(stage_id, payload, 10000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_eq(installer_pid(), pid);
        usleep(3000 * 1000); /* three idle timeouts */
        cr_assert_eq(installer_pid(), pid, "the installer left while a payload was staged");
        cr_assert_eq(temporaries(), 1);
        c = staged_call(stage_id, NULL);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_arr_eq(c->content_sha256, sha, 32);

        cr_assert_eq(kill(pid, SIGTERM), 0);
        gone = wait_gone(pid);
        cr_assert(gone, "teep-installer (pid %d) still running 10 s after SIGTERM", (int)pid);
        cr_assert_eq(temporaries(), 0, "the staged file outlived the installer");
}

/* Unstaged, it may go idle again. */
Test(installer_idle, exits_when_idle_once_nothing_is_staged) {
        uint8_t sha[32];
        const char *payload = make_payload("staged", 10000, 2, sha);
        pid_t pid = start_installer();
        bool gone;
        Call *c;

        c = stage_call(stage_id, payload, 10000);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        c = simple_call("Unstage", stage_id);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        gone = wait_gone(pid);
        cr_assert(gone, "teep-installer (pid %d) still running 10 s after a 1 s idle timeout", (int)pid);
        cr_assert_eq(temporaries(), 0);
}

/* ---- started by hand: command-line overrides, clean exit (leak-checked in ASan builds) ---- */

static const char *installer_binary(void) {
        static char path[512];
        const char *build = getenv("TEEP_BUILD_DIR");
        snprintf(path, sizeof(path), "%s/installer/teep-installer", build ? build : "build");
        return path;
}

Test(installer, command_line_overrides_the_configuration_and_exit_is_clean) {
        char other[1024], agent[16], path[1700];
        uint8_t sha[32], got[32];
        const char *payload = make_payload("payload", 3000, 1, sha);
        char *before = snapshot();
        int status = -1;
        pid_t child, pid = 0;
        Call *c;

        /* A second store the configuration does not name, owned by teep-installer. */
        snprintf(other, sizeof(other), "%s", stack_path(&stack, "other-store"));
        cr_assert_eq(mkdir(other, 0755), 0);
        cr_assert_eq(chown(other, stack.uid_installer, stack.gid_installer), 0);
        snprintf(agent, sizeof(agent), "%u", stack.uid_agent);

        fflush(NULL);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                const char *argv[] = { installer_binary(), "--config", stack.conf, "--store-dir", other,
                                       "--layout", "optee", "--agent-user", agent, "--idle-timeout", "1", NULL };
                if (setgroups(0, NULL) < 0 || setresgid(stack.gid_installer, stack.gid_installer, stack.gid_installer) < 0 ||
                    setresuid(stack.uid_installer, stack.uid_installer, stack.uid_installer) < 0)
                        _exit(125);
                /* ASan builds: LeakSanitizer runs at exit, under the real filter (ignored otherwise). */
                unsetenv("TEEP_SECCOMP");
                setenv("ASAN_OPTIONS", "detect_leaks=1:exitcode=23", 1);
                alarm(60);
                execv(argv[0], (char *const *)argv);
                _exit(126);
        }
        for (int w = 0; w < 200 && pid == 0; w++) {
                usleep(25 * 1000);
                pid = installer_pid();
        }
        cr_assert_eq(pid, child, "the hand-started installer did not take the name");

        c = install_call(draft_component, payload, 3000, sha);
        cr_assert_eq(as_agent(c), 0, "%s %s", c->error, c->message);
        cr_assert_str_eq(c->file, "8d82573a-926d-4754-9353-32dc29997f74.ta");
        snprintf(path, sizeof(path), "%s/%s", other, c->file);
        sha256_file(path, got);
        cr_assert_arr_eq(got, sha, 32);
        c = install_call("TEEP-Device/x", payload, 3000, sha);
        cr_assert_eq(as_agent(c), 1);
        cr_assert_str_eq(c->error, "org.teepkit.Error.InvalidComponent");
        c = simple_call("List", NULL);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(c->n_entries, 1);
        c = simple_call("Remove", draft_component);
        cr_assert_eq(as_agent(c), 0);
        cr_assert_eq(temporaries(), 0);
        {
                char *after = snapshot();
                cr_assert_str_eq(after, before, "the configured store was written");
                free(after);
                free(before);
        }

        /* Idle for 1 s: it exits by itself, with status 0 (23 would be a leak under ASan). */
        for (int w = 0; w < 100; w++) {
                if (waitpid(child, &status, WNOHANG) == child)
                        break;
                usleep(100 * 1000);
        }
        cr_assert(WIFEXITED(status), "the installer did not exit on its own (status %d)", status);
        cr_assert_eq(WEXITSTATUS(status), 0);
}

Test(installer, usage) {
        const char *help[] = { installer_binary(), "--help", NULL };
        const char *version[] = { installer_binary(), "--version", NULL };
        const char *bad[] = { installer_binary(), "--layout", "flat", NULL };
        const char *extra[] = { installer_binary(), "stray", NULL };
        const char *nouser[] = { installer_binary(), "--config", "/nonexistent", "--agent-user", "no-such-user-here",
                                 "--store-dir", "/tmp", NULL };
        const char *nostore[] = { installer_binary(), "--config", "/nonexistent", "--agent-user", "0",
                                  "--store-dir", "/nonexistent/store", NULL };
        const char *relative[] = { installer_binary(), "--config", "/nonexistent", "--store-dir", "tc", NULL };
        char *out = NULL, *err = NULL;

        cr_assert_eq(run_cmd_as(getuid(), getgid(), help, 10, &out, NULL), 0);
        cr_assert_neq(strstr(out, "--store-dir"), NULL);
        free(out);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), version, 10, &out, NULL), 0);
        cr_assert_neq(strstr(out, "teep-installer "), NULL);
        free(out);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), bad, 10, NULL, &err), 64);
        cr_assert_neq(strstr(err, "flat"), NULL);
        free(err);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), extra, 10, NULL, NULL), 64);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), nouser, 10, NULL, &err), 1);
        cr_assert_neq(strstr(err, "no-such-user-here"), NULL);
        free(err);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), nostore, 10, NULL, &err), 1);
        cr_assert_neq(strstr(err, "/nonexistent/store"), NULL);
        free(err);
        cr_assert_eq(run_cmd_as(getuid(), getgid(), relative, 10, NULL, NULL), 1);

        /* A value in the file that does not parse fails the start, naming file:line, even when
         * the command line overrides the key. */
        {
                static const char *const bad_conf[] = { "[Installer]\nLayout=flat\n", "[Installer]\n\nIdleTimeoutSec=soon\n" };
                for (size_t i = 0; i < 2; i++) {
                        char conf[] = "/tmp/teep-installer-bad-XXXXXX.conf", where[64];
                        int fd = mkstemps(conf, 5);
                        const char *argv[] = { installer_binary(), "--config", conf, "--layout", "default",
                                               "--idle-timeout", "5", "--store-dir", "/tmp", "--agent-user", "0", NULL };

                        cr_assert_geq(fd, 0);
                        cr_assert_eq(write(fd, bad_conf[i], strlen(bad_conf[i])), (ssize_t)strlen(bad_conf[i]));
                        close(fd);
                        cr_assert_eq(run_cmd_as(getuid(), getgid(), argv, 10, NULL, &err), 1);
                        snprintf(where, sizeof(where), "%s:%d", conf, i == 0 ? 2 : 3);
                        cr_assert_neq(strstr(err, where), NULL, "no %s in: %s", where, err);
                        free(err);
                        unlink(conf);
                }
        }
}
