/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-encrypt.c: encrypted Trusted Components end to end on the real stack (tools/devstack) */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "harness.h"
#include "macro.h"

/*
 * teep-manifest encrypts a payload for the device key that `teepctl agent-key` prints; teep-tam
 * serves it; `teepctl request` installs it. What crosses the broker is recorded from the bus
 * (a dbus-monitor on the stack's private bus sees every message the broker sends or receives,
 * the TAM's Update included) and must hold the ciphertext, never the plaintext; nothing
 * outside the TC store may hold the plaintext either. A wrong recipient key, a tampered
 * ciphertext or tag leave the store as it was, with a named error.
 */

#define SECRET "teepkit-secret: personalization data the broker must never see 7f3c9a"

static Stack stack;
static char work[256]; /* the test's own files, outside the stack directory */

static void up(void) {
        const char *why = NULL;
        char tmpl[] = "/tmp/teep-enc-XXXXXX";

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, NULL), 0, "tools/devstack up failed");
        cr_assert_not_null(mkdtemp(tmpl));
        snprintf(work, sizeof(work), "%s", tmpl);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        return remove(path);
}

static void down(void) {
        stack_down(&stack);
        if (work[0])
                (void)nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(encrypt_stack, .init = up, .fini = down, .timeout = 240);

static const char *teepctl(void) {
        const char *t = getenv("TEEPCTL");
        cr_assert(t && *t, "TEEPCTL is not set");
        return t;
}

static const char *tool(const char *rel) {
        static char buf[4][512];
        static unsigned n;
        char *b = buf[n++ % 4];
        snprintf(b, 512, "%s/%s", getenv("TEEP_BUILD_DIR") ?: "build", rel);
        return b;
}

static char *read_text(const char *path) {
        uint8_t *buf = NULL;
        size_t len;
        cr_assert_eq(read_full_file(path, 64 << 20, &buf, &len), 0, "cannot read %s", path);
        return (char *)buf;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "%s", path);
        fputs(text, f);
        fclose(f);
        (void)chmod(path, 0644);
}

static void env_value(const char *key, char *out, size_t n) {
        _cleanup_free_ char *text = read_text(stack_path(&stack, "env"));
        char pat[128];
        const char *p;

        snprintf(pat, sizeof(pat), "export %s=", key);
        p = strstr(text, pat);
        cr_assert_not_null(p, "%s not in the stack's env", key);
        p += strlen(pat);
        snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
}

/* `teepctl agent-key` as an ordinary user, to a file: what a TAM operator is handed. */
static void device_key_file(char *path, size_t n) {
        const char *argv[] = { teepctl(), "agent-key", NULL };
        char *out = NULL;
        int r = run_cmd_as(stack.uid_app, stack.gid_app, argv, 60, &out, NULL);

        cr_assert_eq(r, 0, "teepctl agent-key: exit %d", r);
        cr_assert(strstr(out, "BEGIN PUBLIC KEY"), "%s", out);
        snprintf(path, n, "%s/device-key.pem", work);
        write_text(path, out);
        free(out);
}

/* An encrypted TC for the stack's TAM. by_uri: the ciphertext is served at
 * /payload/NAME.bin; otherwise it travels inside the manifest. */
static const char *dep_on, *dep_uri; /* make_encrypted_tc: --depends-on/--depends-uri when set */
static const char *plaintext = SECRET; /* make_encrypted_tc: what it encrypts */

static void make_encrypted_tc(const char *name, const char *component, const char *key, const char *alg, bool by_uri) {
        char payload[512], out[512], tmp[512], vendor[64], class[64], uri[512], ct[512];
        const char *argv[32];
        size_t n = 0;
        int r;

        env_value("TEEP_VENDOR_ID", vendor, sizeof(vendor));
        env_value("TEEP_CLASS_ID", class, sizeof(class));
        snprintf(payload, sizeof(payload), "%s/%s.plain", work, name);
        write_text(payload, plaintext);
        snprintf(out, sizeof(out), "%s/%s.suit", stack_path(&stack, "tam/tcs"), name);
        snprintf(tmp, sizeof(tmp), "%s/%s.suit", work, name);
        argv[n++] = tool("tam/teep-manifest");
        argv[n++] = "create";
        argv[n++] = "--key";
        argv[n++] = stack_path(&stack, "tam/signer.pem");
        argv[n++] = "--component";
        argv[n++] = component;
        argv[n++] = "--sequence";
        argv[n++] = "1";
        argv[n++] = "--vendor-id";
        argv[n++] = vendor;
        argv[n++] = "--class-id";
        argv[n++] = class;
        argv[n++] = "--payload";
        argv[n++] = payload;
        if (key) { /* NULL: a plain TC */
                argv[n++] = "--encrypt-to";
                argv[n++] = key;
                argv[n++] = "--encryption";
                argv[n++] = alg;
        }
        if (by_uri) {
                const char *slash = strrchr(stack.tam_uri, '/');
                cr_assert_not_null(slash);
                (void)mkdir(stack_path(&stack, "tam/payloads"), 0755);
                snprintf(uri, sizeof(uri), "%.*s/payload/%s.bin", (int)(slash - stack.tam_uri), stack.tam_uri, name);
                snprintf(ct, sizeof(ct), "%s/%s.bin", stack_path(&stack, "tam/payloads"), name);
                argv[n++] = "--uri";
                argv[n++] = uri;
                if (key) {
                        argv[n++] = "--ciphertext-out";
                        argv[n++] = ct;
                }
        }
        if (dep_on) {
                argv[n++] = "--depends-on";
                argv[n++] = dep_on;
                argv[n++] = "--depends-uri";
                argv[n++] = dep_uri;
        }
        argv[n++] = "--out";
        argv[n++] = tmp;
        argv[n] = NULL;
        r = run_cmd_as(geteuid(), getegid(), argv, 30, NULL, NULL);
        cr_assert_eq(r, 0, "teep-manifest create %s: exit %d", name, r);
        if (by_uri && key)
                (void)chmod(ct, 0644);
        (void)chmod(tmp, 0644);
        /* the plaintext input goes before the TAM sees anything */
        cr_assert_eq(unlink(payload), 0);
        cr_assert_eq(rename(tmp, out), 0);
}

static int request(const char *component, char **ret_out, char **ret_err) {
        const char *argv[] = { teepctl(), "request", component, NULL };
        return run_cmd_as(stack.uid_app, stack.gid_app, argv, 120, ret_out, ret_err);
}

/* Does any regular file under dir (skipping skip, if given) contain needle? Returns the count. */
static const char *walk_needle, *walk_skip;
static unsigned walk_hits;
static char walk_first[512];
static int walk_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        uint8_t *data = NULL;
        size_t len = 0;

        if (type != FTW_F || !S_ISREG(st->st_mode) || (walk_skip && strncmp(path, walk_skip, strlen(walk_skip)) == 0))
                return 0;
        if (read_full_file(path, 256 << 20, &data, &len) < 0)
                return 0;
        if (memmem(data, len, walk_needle, strlen(walk_needle))) {
                if (walk_hits++ == 0)
                        snprintf(walk_first, sizeof(walk_first), "%s", path);
        }
        free(data);
        return 0;
}

static unsigned files_containing(const char *dir, const char *skip, const char *needle) {
        walk_needle = needle;
        walk_skip = skip;
        walk_hits = 0;
        walk_first[0] = 0;
        cr_assert_eq(nftw(dir, walk_one, 16, FTW_PHYS), 0);
        return walk_hits;
}

/* dbus-monitor on the stack's bus, recording every message to a pcap file. The devstack's bus
 * lacks the stock system bus rule that lets root become a monitor: add it (as a drop-in in its
 * own policy directory) and have the bus reload its configuration. */
static pid_t monitor_start(const char *path) {
        char bus_arg[400];
        const char *reload[] = { "dbus-send", bus_arg, "--print-reply", "--dest=org.freedesktop.DBus",
                                 "/org/freedesktop/DBus", "org.freedesktop.DBus.ReloadConfig", NULL };
        pid_t pid;

        snprintf(bus_arg, sizeof(bus_arg), "--bus=%s", stack.bus_address);
        write_text(stack_path(&stack, "dbus/system.d/zz-test-monitor.conf"),
                   "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                   "<busconfig><policy user=\"root\"><allow send_destination=\"org.freedesktop.DBus\""
                   " send_interface=\"org.freedesktop.DBus.Monitoring\"/></policy></busconfig>\n");
        {
                char *o = NULL, *e = NULL;
                int r = run_cmd_as(geteuid(), getegid(), reload, 30, &o, &e);
                cr_assert_eq(r, 0, "ReloadConfig failed (%d): %s %s", r, o ?: "", e ?: "");
                free(o);
                free(e);
        }
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                alarm(200);
                execlp("dbus-monitor", "dbus-monitor", "--address", stack.bus_address, "--pcap", NULL);
                _exit(127);
        }
        usleep(500 * 1000);
        return pid;
}

static void monitor_stop(pid_t pid) {
        int status;
        usleep(300 * 1000);
        (void)kill(pid, SIGTERM);
        (void)waitpid(pid, &status, 0);
        cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 127, "dbus-monitor did not run");
}

static void installed_text(const char *component, char **ret) {
        const char *argv[] = { teepctl(), "list", NULL };
        cr_assert_eq(run_cmd_as(stack.uid_app, stack.gid_app, argv, 60, ret, NULL), 0);
        (void)component;
}

Test(encrypt_stack, gcm_and_ctr_tcs_install_and_only_ciphertext_crosses_the_broker) {
        char key[512], pcap[512];
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *list = NULL, *agent_log = NULL;
        pid_t mon;

        device_key_file(key, sizeof(key));
        make_encrypted_tc("enc-gcm", "teepkit-test/enc-gcm", key, "A128GCM", false);
        make_encrypted_tc("enc-ctr", "teepkit-test/enc-ctr", key, "A128CTR", true);
        /* the TAM holds ciphertext only */
        cr_assert_eq(files_containing(stack_path(&stack, "tam"), NULL, SECRET), 0, "plaintext in %s", walk_first);

        snprintf(pcap, sizeof(pcap), "%s/bus.pcap", work);
        mon = monitor_start(pcap);
        cr_assert_eq(request("teepkit-test/enc-gcm", &o1, NULL), 0, "%s", o1 ?: "");
        cr_assert_eq(request("teepkit-test/enc-ctr", &o2, NULL), 0, "%s", o2 ?: "");
        monitor_stop(mon);

        /* installed, in the store, in the clear */
        installed_text(NULL, &list);
        cr_assert(strstr(list, "teepkit-test/enc-gcm") && strstr(list, "teepkit-test/enc-ctr"), "%s", list);
        cr_assert_eq(files_containing(stack_path(&stack, "var/lib/teepkit/tc"), NULL, SECRET), 2,
                     "the store does not hold both plaintexts");

        /* the recording saw the Update go through the broker, ciphertext and all ... */
        {
                _cleanup_free_ char *rec = read_text(pcap);
                struct stat st;
                cr_assert_eq(stat(pcap, &st), 0);
                cr_assert_gt(st.st_size, 2000, "the bus recording is empty");
                cr_assert_not_null(memmem(rec, (size_t)st.st_size, "ProcessTeepMessage", 18),
                                   "the recording misses the broker's calls");
                {
                        /* the signed envelope with the GCM ciphertext inside went through whole */
                        uint8_t *env = NULL;
                        size_t env_len = 0;
                        cr_assert_eq(read_full_file(stack_path(&stack, "tam/tcs/enc-gcm.suit"), 1 << 20, &env, &env_len), 0);
                        cr_assert_not_null(memmem(rec, (size_t)st.st_size, env, env_len),
                                           "the encrypted envelope is not in the recording");
                        free(env);
                }
                /* ... and never the plaintext */
                cr_assert_null(memmem(rec, (size_t)st.st_size, SECRET, strlen(SECRET)), "plaintext on the bus");
        }
        /* nowhere outside the store: not the agent's state, logs, TAM files, the broker */
        cr_assert_eq(files_containing(stack.dir, stack_path(&stack, "var/lib/teepkit/tc"), SECRET), 0,
                     "plaintext outside the store: %s", walk_first);
        agent_log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_null(strstr(agent_log, "Sanitizer"), "%s", agent_log);
}

static void refused(const char *name, const char *component, const char *alg, bool by_uri, bool use_other_key,
                    void (*tamper)(const char *ct_path), const char *reason) {
        char key[512], ct[512];
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL;
        int r;

        if (use_other_key) {
                const char *argv[] = { tool("tam/teep-manifest"), "keygen", "--out", key, NULL };
                snprintf(key, sizeof(key), "%s/other.pem", work);
                cr_assert_eq(run_cmd_as(geteuid(), getegid(), argv, 30, NULL, NULL), 0);
        } else
                device_key_file(key, sizeof(key));
        make_encrypted_tc(name, component, key, alg, by_uri);
        if (tamper) {
                snprintf(ct, sizeof(ct), "%s/%s.bin", stack_path(&stack, "tam/payloads"), name);
                tamper(ct);
        }
        r = request(component, &out, &err);
        cr_assert_neq(r, 0, "the request succeeded: %s", out ?: "");
        cr_assert(strstr(err ?: "", "ManifestRejected") || strstr(err ?: "", "rejected") || strstr(err ?: "", "failed"),
                  "no named failure: %s", err ?: "");
        /* the store is as it was: empty */
        cr_assert_eq(files_containing(stack_path(&stack, "var/lib/teepkit/tc"), NULL, SECRET), 0);
        {
                DIR *d;
                unsigned n = 0;
                struct dirent *de;
                d = opendir(stack_path(&stack, "var/lib/teepkit/tc"));
                cr_assert_not_null(d);
                while ((de = readdir(d)))
                        n += de->d_name[0] != '.';
                closedir(d);
                cr_assert_eq(n, 0, "the store changed");
        }
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert(strstr(log, reason), "the agent does not name '%s':\n%s", reason, log);
        cr_assert_eq(files_containing(stack.dir, stack_path(&stack, "var/lib/teepkit/tc"), SECRET), 0,
                     "plaintext outside the store: %s", walk_first);
}

static void flip_first_byte(const char *path) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        uint8_t b;
        cr_assert_geq(fd, 0);
        cr_assert_eq(pread(fd, &b, 1, 0), 1);
        b ^= 0x01;
        cr_assert_eq(pwrite(fd, &b, 1, 0), 1);
        close(fd);
}

static void flip_last_byte(const char *path) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        uint8_t b;
        cr_assert_geq(fd, 0);
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_eq(pread(fd, &b, 1, st.st_size - 1), 1);
        b ^= 0x80;
        cr_assert_eq(pwrite(fd, &b, 1, st.st_size - 1), 1);
        close(fd);
}

Test(encrypt_stack, wrong_recipient_key_is_refused) {
        refused("enc-other", "teepkit-test/enc-other", "A128GCM", false, true, NULL, "enc-wrong-recipient");
}

Test(encrypt_stack, tampered_gcm_ciphertext_is_refused) {
        refused("enc-tamper", "teepkit-test/enc-tamper", "A128GCM", true, false, flip_first_byte, "enc-bad-tag");
}

Test(encrypt_stack, tampered_gcm_tag_is_refused) {
        refused("enc-tag", "teepkit-test/enc-tag", "A128GCM", true, false, flip_last_byte, "enc-bad-tag");
}

Test(encrypt_stack, tampered_ctr_ciphertext_fails_the_digest) {
        refused("enc-ctr-bad", "teepkit-test/enc-ctr-bad", "A128CTR", true, false, flip_first_byte, "digest mismatch");
}

/* A ciphertext larger than what the agent keeps in memory (256 KiB) streams in from the broker
 * into a sealed memfd of the agent's, is decrypted from there and installed; the plaintext
 * reaches the store and nowhere else. */
Test(encrypt_stack, a_big_encrypted_payload_by_uri_installs) {
        const size_t len = 400u * 1024u;
        _cleanup_free_ char *big = malloc(len + 1), *o = NULL;
        char key[512];

        cr_assert_not_null(big);
        memset(big, 'x', len);
        memcpy(big, SECRET, strlen(SECRET));
        big[len] = '\0';
        plaintext = big;
        device_key_file(key, sizeof(key));
        make_encrypted_tc("enc-big", "teepkit-test/enc-big", key, "A128GCM", true);
        plaintext = SECRET;
        cr_assert_eq(files_containing(stack_path(&stack, "tam"), NULL, SECRET), 0, "plaintext in %s", walk_first);
        cr_assert_eq(request("teepkit-test/enc-big", &o, NULL), 0, "%s", o ?: "");
        cr_assert_eq(files_containing(stack_path(&stack, "var/lib/teepkit/tc"), NULL, SECRET), 1,
                     "the plaintext is not in the store");
}

/* ---- dependencies through the broker ---- */

/* A plain TC whose signed envelope is served by the TAM at /payload/NAME.suit (not offered as a
 * TC of its own); returns its path and URI. */
static void make_dependency(const char *name, const char *component, char *path, size_t path_n, char *uri, size_t uri_n) {
        char suit[512];
        const char *slash = strrchr(stack.tam_uri, '/');

        cr_assert_not_null(slash);
        make_encrypted_tc(name, component, NULL, NULL, false);
        snprintf(suit, sizeof(suit), "%s/%s.suit", stack_path(&stack, "tam/tcs"), name);
        (void)mkdir(stack_path(&stack, "tam/payloads"), 0755);
        snprintf(path, path_n, "%s/%s.suit", stack_path(&stack, "tam/payloads"), name);
        cr_assert_eq(rename(suit, path), 0);
        snprintf(uri, uri_n, "%.*s/payload/%s.suit", (int)(slash - stack.tam_uri), stack.tam_uri, name);
}

Test(encrypt_stack, encrypted_personalization_brings_its_dependency_through_the_broker) {
        char key[512], dep_path[512], uri[512];
        _cleanup_free_ char *out = NULL, *list = NULL, *log = NULL;

        device_key_file(key, sizeof(key));
        make_dependency("dep-ta", "teepkit-test/dep-ta", dep_path, sizeof(dep_path), uri, sizeof(uri));
        dep_on = dep_path;
        dep_uri = uri;
        make_encrypted_tc("dep-config", "teepkit-test/dep-config.json", key, "A128GCM", false);
        dep_on = dep_uri = NULL;

        cr_assert_eq(request("teepkit-test/dep-config.json", &out, NULL), 0, "%s", out ?: "");
        installed_text(NULL, &list);
        cr_assert(strstr(list, "teepkit-test/dep-ta"), "the dependency is not installed:\n%s", list);
        cr_assert(strstr(list, "teepkit-test/dep-config.json"), "%s", list);
        cr_assert_eq(files_containing(stack_path(&stack, "var/lib/teepkit/tc"), NULL, SECRET), 2,
                     "the store holds the dependency's and the personalization's plaintext");
        /* the agent asked the broker for the dependency */
        log = read_text(stack_path(&stack, "log/broker.log"));
        cr_assert(strstr(log, "dep-ta.suit"), "the broker did not fetch the dependency:\n%s", log);
}

Test(encrypt_stack, missing_dependency_leaves_the_store_unchanged) {
        char key[512], dep_path[512], uri[512];
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL;

        device_key_file(key, sizeof(key));
        make_dependency("gone-ta", "teepkit-test/gone-ta", dep_path, sizeof(dep_path), uri, sizeof(uri));
        dep_on = dep_path;
        dep_uri = uri;
        make_encrypted_tc("gone-config", "teepkit-test/gone-config.json", key, "A128GCM", false);
        dep_on = dep_uri = NULL;
        cr_assert_eq(unlink(dep_path), 0); /* the TAM no longer has it */

        cr_assert_neq(request("teepkit-test/gone-config.json", &out, &err), 0, "%s", out ?: "");
        {
                DIR *d = opendir(stack_path(&stack, "var/lib/teepkit/tc"));
                struct dirent *de;
                unsigned n = 0;
                cr_assert_not_null(d);
                while ((de = readdir(d)))
                        n += de->d_name[0] != '.';
                closedir(d);
                cr_assert_eq(n, 0, "the store changed");
        }
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert(strstr(log, "missing dependency"), "the agent does not name the missing dependency:\n%s", log);
}
