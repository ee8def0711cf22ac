/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-trust-stack.c: on the real stack (tools/devstack): a trust-anchor list made by
 * `teep-manifest trust-anchors`, served by the real teep-tam, installed by the sandboxed agent;
 * its refusals; and failover along the configured TAMs in file order */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "harness.h"
#include "macro.h"

static Stack stack;
static char work[256]; /* keys, lists and the drop-in; outside the stack directory (devstack recreates that) */

static const char *tool(const char *rel) {
        static char buf[4][512];
        static unsigned n;
        char *b = buf[n++ % 4];
        snprintf(b, 512, "%s/%s", getenv("TEEP_BUILD_DIR") ?: "build", rel);
        return b;
}

static const char *wpath(const char *name) {
        static char buf[8][512];
        static unsigned n;
        char *b = buf[n++ % 8];
        snprintf(b, 512, "%s/%s", work, name);
        return b;
}

static char *read_text(const char *path) {
        uint8_t *data = NULL;
        size_t len;
        if (read_full_file(path, 1 << 22, &data, &len) < 0)
                return strdup("");
        return (char *)data;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
        cr_assert_eq(chmod(path, 0644), 0);
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

static int manifest(const char *const *args) {
        const char *argv[24] = { tool("tam/teep-manifest") };
        _cleanup_free_ char *out = NULL, *err = NULL;
        size_t n = 1;
        int r;

        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        r = run_cmd_as(geteuid(), getegid(), argv, 30, &out, &err);
        if (r != 0)
                fprintf(stderr, "teep-manifest %s: exit %d: %s%s\n", args[0], r, out ?: "", err ?: "");
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
        return remove(path);
}

static void down(void) {
        stack_down(&stack);
        if (work[0] && !getenv("TEEP_KEEP_STACK"))
                (void)nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        work[0] = '\0';
}

/* Up with extra devstack arguments; with_admin: the administrator's key (work/admin.pem, its
 * public half as AdminKey=) and a second TAM key nobody trusts yet (work/tam2.pem). */
static void up(bool with_admin, const char *const *extra) {
        const char *why = NULL, *args[12];
        size_t n = 0;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        snprintf(work, sizeof(work), "%s/teep-trust-stack-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        cr_assert(mkdtemp(work));
        cr_assert_eq(chmod(work, 0755), 0); /* the agent's uid reads AdminKey= here */
        if (with_admin) {
                char conf[600];
                cr_assert_eq(manifest((const char *const[]){ "keygen", "--out", wpath("admin.pem"), NULL }), 0);
                cr_assert_eq(manifest((const char *const[]){ "pubkey", "--key", wpath("admin.pem"), "--out",
                                                             wpath("admin.pub.pem"), NULL }),
                             0);
                cr_assert_eq(manifest((const char *const[]){ "keygen", "--out", wpath("tam2.pem"), NULL }), 0);
                snprintf(conf, sizeof(conf), "[Agent]\nAdminKey=%s\n", wpath("admin.pub.pem"));
                write_text(wpath("50-admin.conf"), conf);
                args[n++] = "--conf";
                args[n++] = wpath("50-admin.conf");
        }
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = extra[i];
        args[n] = NULL;
        cr_assert_eq(stack_up(&stack, args), 0, "tools/devstack up failed");
}

TestSuite(trust_stack, .fini = down, .timeout = 240);

/* `teep-manifest trust-anchors` into work/NAME: signed by signer, sequence seq, keys (files). */
static const char *make_list(const char *name, const char *signer, unsigned seq, const char *const *keys) {
        char vendor[64], class[64], seqs[24];
        const char *args[24] = { "trust-anchors", "--key", signer, "--sequence", seqs, "--vendor-id", vendor,
                                 "--class-id", class, "--out", wpath(name) };
        static char outs[4][512];
        static unsigned k;
        char *out = outs[k++ % 4];
        size_t n = 11;

        snprintf(out, 512, "%s", args[10]); /* wpath's ring is reused below */

        env_value("TEEP_VENDOR_ID", vendor, sizeof(vendor));
        env_value("TEEP_CLASS_ID", class, sizeof(class));
        snprintf(seqs, sizeof(seqs), "%u", seq);
        for (size_t i = 0; keys[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = keys[i];
        args[n] = NULL;
        cr_assert_eq(manifest(args), 0, "teep-manifest trust-anchors %s", name);
        return out;
}

/* teep-tam again on the same port: signing with key from now on (NULL: the key it has), and
 * with list added to every Update (NULL: none). */
static void serve(const char *key, const char *list) {
        const char *extra[4];
        size_t n = 0;

        if (key) {
                /* a further --key would only add a key (teep-tam signs with the first that fits) */
                _cleanup_free_ uint8_t *pem = NULL;
                size_t len;
                cr_assert_eq(read_full_file(key, 1 << 16, &pem, &len), 0, "%s", key);
                int fd = open(stack_path(&stack, "tam/tam.pem"), O_WRONLY | O_TRUNC | O_CLOEXEC);
                cr_assert_geq(fd, 0, "tam/tam.pem: %s", strerror(errno));
                cr_assert_eq(write(fd, pem, len), (ssize_t)len);
                close(fd);
        }
        if (list) {
                extra[n++] = "--extra-manifest";
                extra[n++] = list;
        }
        extra[n] = NULL;
        cr_assert_eq(stack_restart_tam(&stack, extra), 0, "teep-tam did not come back");
}

/* teepctl VERB [COMPONENT] as an ordinary user; out and err are kept for the messages. */
static int teepctl_as_app(const char *verb, const char *component, char **out, char **err) {
        const char *argv[] = { getenv("TEEPCTL"), verb, component, NULL };

        cr_assert(argv[0], "TEEPCTL is not set");
        free(*out);
        free(*err);
        *out = *err = NULL;
        return run_cmd_as(stack.uid_app, stack.gid_app, argv, 120, out, err);
}

/* What a refused message must leave alone: the agent's state file, its trust-anchor list
 * ("-" when none) and every file of the TC store (path and digest). */
static char snap_buf[8192];
static size_t snap_len;
static int snap_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        char hex[65] = "-";
        if (type == FTW_F)
                (void)file_sha256_hex(path, hex);
        snap_len += (size_t)snprintf(snap_buf + snap_len, sizeof(snap_buf) - snap_len, "%s %s\n", path, hex);
        return snap_len >= sizeof(snap_buf) - 1;
}

static char *snapshot(void) {
        char hex[65];

        snap_len = 0;
        snap_buf[0] = '\0';
        if (file_sha256_hex(stack_path(&stack, "var/lib/teepkit/agent/state"), hex) < 0)
                strcpy(hex, "-");
        snap_len += (size_t)snprintf(snap_buf, sizeof(snap_buf), "state %s\n", hex);
        if (file_sha256_hex(stack_path(&stack, "var/lib/teepkit/agent/trust-anchors.suit"), hex) < 0)
                strcpy(hex, "-");
        snap_len += (size_t)snprintf(snap_buf + snap_len, sizeof(snap_buf) - snap_len, "list %s\n", hex);
        cr_assert_eq(nftw(stack_path(&stack, "var/lib/teepkit/tc"), snap_one, 16, FTW_PHYS), 0);
        return strdup(snap_buf);
}

static char *store_snapshot(void) {
        snap_len = 0;
        snap_buf[0] = '\0';
        cr_assert_eq(nftw(stack_path(&stack, "var/lib/teepkit/tc"), snap_one, 16, FTW_PHYS), 0);
        return strdup(snap_buf);
}

/* Bytes of the agent log from offset on (what the last step logged). */
static size_t log_mark(void) {
        _cleanup_free_ char *log = read_text(stack_path(&stack, "log/agent.log"));
        return strlen(log);
}

static char *log_since(size_t mark) {
        _cleanup_free_ char *log = read_text(stack_path(&stack, "log/agent.log"));
        return strdup(strlen(log) >= mark ? log + mark : log);
}

static bool files_equal(const char *a, const char *b) {
        char ha[65], hb[65];
        return file_sha256_hex(a, ha) == 0 && file_sha256_hex(b, hb) == 0 && strcmp(ha, hb) == 0;
}

Test(trust_stack, a_list_over_teep_replaces_the_anchors_and_a_removed_tam_is_refused) {
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL, *before = NULL, *after = NULL;
        const char *list;
        size_t mark;
        int r;

        up(true, NULL);
        /* seq 1: the administrator and tam2; the devstack TAM's key is left out */
        list = make_list("list1.suit", wpath("admin.pem"), 1,
                         (const char *const[]){ wpath("admin.pub.pem"), wpath("tam2.pem"), NULL });
        serve(NULL, list);
        mark = log_mark();
        r = teepctl_as_app("policy-check", NULL, &out, &err);
        log = log_since(mark);
        cr_assert_eq(r, 0, "policy-check: exit %d: %s%s\n%s", r, out, err, log);
        cr_assert(strstr(log, "trust-anchor list sequence number 1 installed: 2 TAM trust anchor(s)"), "%s", log);
        cr_assert(files_equal(list, stack_path(&stack, "var/lib/teepkit/agent/trust-anchors.suit")),
                  "the agent does not keep the list as received");

        /* the devstack TAM (its anchor is still in trust-anchors.d, but the list replaced that) */
        serve(NULL, NULL);
        before = store_snapshot();
        free(log);
        mark = log_mark();
        r = teepctl_as_app("request", stack.demo_component, &out, &err);
        log = log_since(mark);
        cr_assert_neq(r, 0, "a TAM whose anchor the list removed installed a TC:\n%s", log);
        cr_assert(strstr(err, "org.teepkit.Error.TrustFailure"), "not a named trust failure: %s%s\n%s", out, err, log);
        after = store_snapshot();
        cr_assert_str_eq(after, before, "the store changed");
        cr_assert(access(stack_path(&stack, "var/lib/teepkit/agent/trust-anchors.suit"), F_OK) == 0);

        /* tam2, which only the list names, is trusted */
        serve(wpath("tam2.pem"), NULL);
        r = teepctl_as_app("request", stack.demo_component, &out, &err);
        free(log);
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_eq(r, 0, "a TAM the list added was refused: %s%s\n%s", out, err, log);
        free(after);
        after = store_snapshot();
        cr_assert_str_neq(after, before, "the TC did not reach the store");
        cr_assert_null(strstr(log, "Sanitizer"), "%s", log);
}

/* Serve list, run a policy check: refused with a named error (want), the reason (why) in the
 * agent log, and the state, the list and the store as they were. */
static void expect_refused(const char *list, const char *want, const char *why) {
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL, *before = NULL, *after = NULL;
        size_t mark;
        int r;

        serve(NULL, list);
        before = snapshot();
        mark = log_mark();
        r = teepctl_as_app("policy-check", NULL, &out, &err);
        log = log_since(mark);
        cr_assert_neq(r, 0, "%s: the policy check succeeded\n%s", list, log);
        cr_assert(strstr(err, want), "%s: want %s, got: %s%s\n%s", list, want, out, err, log);
        cr_assert(strstr(log, why), "%s: the agent did not log '%s':\n%s", list, why, log);
        cr_assert(strstr(err, why), "%s: teepctl does not say '%s': %s", list, why, err);
        after = snapshot();
        cr_assert_str_eq(after, before, "%s: a refused list changed the state, the list or the store", list);
}

Test(trust_stack, refused_lists_change_nothing) {
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL;
        char tam[512];
        const char *ok;
        int r;

        up(true, NULL);
        snprintf(tam, sizeof(tam), "%s", stack_path(&stack, "tam/tam.pem")); /* stack_path's ring is reused */
        ok = make_list("list5.suit", wpath("admin.pem"), 5, (const char *const[]){ wpath("admin.pub.pem"), tam, NULL });
        serve(NULL, ok);
        r = teepctl_as_app("policy-check", NULL, &out, &err);
        cr_assert_eq(r, 0, "policy-check: exit %d: %s%s", r, out, err);

        /* signed by the stack's Trusted Component signer: trusted for TCs, never for anchors */
        expect_refused(make_list("by-signer.suit", stack_path(&stack, "tam/signer.pem"), 6,
                                 (const char *const[]){ wpath("admin.pub.pem"), tam, wpath("tam2.pem"), NULL }),
                       "org.teepkit.Error.ManifestRejected", "only AdminKey= may sign it");
        /* signed by a key nobody trusts */
        expect_refused(make_list("by-tam2.suit", wpath("tam2.pem"), 6,
                                 (const char *const[]){ wpath("admin.pub.pem"), tam, wpath("tam2.pem"), NULL }),
                       "org.teepkit.Error.TrustFailure", "unauthorised: authentication");
        /* The agent's own refusals of a list the administrator signed: ManifestRejected (ESTALE,
         * EPERM in docs/errors.md and refusal_error_name()) */
        /* older than the list in place */
        expect_refused(make_list("older.suit", wpath("admin.pem"), 4,
                                 (const char *const[]){ wpath("admin.pub.pem"), tam, wpath("tam2.pem"), NULL }),
                       "org.teepkit.Error.ManifestRejected", "rollback: sequence number 4 < 5");
        /* the same number for other content */
        expect_refused(make_list("same.suit", wpath("admin.pem"), 5,
                                 (const char *const[]){ wpath("admin.pub.pem"), tam, wpath("tam2.pem"), NULL }),
                       "org.teepkit.Error.ManifestRejected", "sequence number 5 already used for another list");
        /* one that drops the administrator's own anchor */
        expect_refused(make_list("no-admin.suit", wpath("admin.pem"), 7, (const char *const[]){ tam, wpath("tam2.pem"), NULL }),
                       "org.teepkit.Error.ManifestRejected", "it would remove the administrator's own anchor");

        /* tam2, which only the refused lists named, is still not trusted */
        serve(wpath("tam2.pem"), NULL);
        r = teepctl_as_app("request", stack.demo_component, &out, &err);
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_neq(r, 0, "a refused list's anchor was trusted:\n%s", log);
        cr_assert_null(strstr(log, "Sanitizer"), "%s", log);
}

Test(trust_stack, failover_follows_the_configuration_order) {
        _cleanup_free_ char *out = NULL, *err = NULL, *alog = NULL, *blog = NULL, *conf = NULL;
        char dead[256];
        const char *tried, *ok, *c_dead, *c_live;
        int r;

        up(false, (const char *const[]){ "--dead-tam-first", NULL });
        env_value("TEEP_DEAD_TAM_URI", dead, sizeof(dead));
        cr_assert(dead[0], "devstack wrote no dead TAM");
        conf = read_text(stack.conf);
        c_dead = strstr(conf, dead);
        c_live = strstr(conf, stack.tam_uri);
        cr_assert(c_dead && c_live && c_dead < c_live, "the dead TAM is not configured first:\n%s", conf);

        r = teepctl_as_app("request", stack.demo_component, &out, &err);
        alog = read_text(stack_path(&stack, "log/agent.log"));
        blog = read_text(stack_path(&stack, "log/broker.log"));
        cr_assert_eq(r, 0, "request: exit %d: %s%s\n%s\n%s", r, out, err, alog, blog);
        tried = strstr(alog, "exchange with TAM http://127.0.0.1:1/tam failed");
        cr_assert(tried, "the first TAM was not tried:\n%s", alog);
        cr_assert(strstr(tried, stack.tam_uri), "the agent did not name the live TAM after the dead one:\n%s", alog);
        ok = strstr(alog, "update (1 manifest(s), 0 unneeded) → success");
        cr_assert(ok && ok > tried, "the live TAM did not install after the dead one was tried:\n%s", alog);
        cr_assert(strstr(blog, dead), "the broker's log does not show the first TAM:\n%s", blog);
}

/* ---- two TAMs with distinct keys: the second may not touch what the first installed ---- */

static pid_t tam2_pid;

static void stop_tam2(void) {
        if (tam2_pid > 0) {
                (void)kill(tam2_pid, SIGTERM);
                (void)waitpid(tam2_pid, NULL, 0);
        }
        tam2_pid = 0;
}

static void down_two(void) {
        stop_tam2();
        down();
}

/* A second teep-tam on a free loopback port with tam2.pem, its own TC directory (work/tcs2)
 * and the device keys in work/devices (filled once the stack's agent made its key). */
static void start_tam2(char *uri, size_t n) {
        _cleanup_free_ char *port = NULL;
        char dir[512];

        for (const char *d = "tcs2\0devices\0state2\0payloads2\0"; *d; d += strlen(d) + 1) {
                snprintf(dir, sizeof(dir), "%s", wpath(d));
                cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, strerror(errno));
        }
        tam2_pid = fork();
        cr_assert_geq(tam2_pid, 0);
        if (tam2_pid == 0) {
                execl(tool("tam/teep-tam"), "teep-tam", "--listen", "127.0.0.1:0", "--port-file", wpath("tam2.port"), "--key",
                      wpath("tam2.pem"), "--tc-dir", wpath("tcs2"), "--device-keys", wpath("devices"), "--state-dir",
                      wpath("state2"), "--payload-dir", wpath("payloads2"), "--lifetime", "200", (char *)NULL);
                _exit(127);
        }
        cr_assert(wait_for_file(wpath("tam2.port"), 10000), "the second teep-tam did not report its port");
        for (int i = 0; i < 100; i++) {
                free(port);
                port = read_text(wpath("tam2.port"));
                if (strchr(port, '\n') || atoi(port) > 0)
                        break;
                usleep(50 * 1000);
        }
        cr_assert_gt(atoi(port), 0, "tam2.port: '%s'", port);
        snprintf(uri, n, "http://127.0.0.1:%d/tam", atoi(port));
}

static void sign_tc(const char *out, const char *verb, unsigned seq, const char *payload_text) {
        char vendor[64], class[64], seqs[24], payload[512], tmp[600];

        env_value("TEEP_VENDOR_ID", vendor, sizeof(vendor));
        env_value("TEEP_CLASS_ID", class, sizeof(class));
        snprintf(seqs, sizeof(seqs), "%u", seq);
        snprintf(tmp, sizeof(tmp), "%s.tmp", out);
        if (payload_text) {
                snprintf(payload, sizeof(payload), "%s", wpath("payload.bin"));
                write_text(payload, payload_text);
                cr_assert_eq(manifest((const char *const[]){ verb, "--key", stack_path(&stack, "tam/signer.pem"), "--component",
                                                             stack.demo_component, "--sequence", seqs, "--vendor-id", vendor,
                                                             "--class-id", class, "--payload", payload, "--out", tmp, NULL }),
                             0);
        } else
                cr_assert_eq(manifest((const char *const[]){ verb, "--key", stack_path(&stack, "tam/signer.pem"), "--component",
                                                             stack.demo_component, "--sequence", seqs, "--vendor-id", vendor,
                                                             "--class-id", class, "--out", tmp, NULL }),
                             0);
        cr_assert_eq(chmod(tmp, 0644), 0);
        cr_assert_eq(rename(tmp, out), 0); /* the TAM rescans: never a half-written envelope */
}

TestSuite(two_tams, .fini = down_two, .timeout = 240);

Test(two_tams, a_tam_may_not_replace_or_unlink_what_another_installed) {
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL, *before = NULL, *after = NULL;
        const char *argv[8];
        char uri2[256], conf[400], tcs2[600];
        const char *why = NULL;
        size_t mark;
        int r;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        snprintf(work, sizeof(work), "%s/teep-trust-stack-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        cr_assert(mkdtemp(work));
        cr_assert_eq(chmod(work, 0755), 0);
        cr_assert_eq(manifest((const char *const[]){ "keygen", "--out", wpath("tam2.pem"), NULL }), 0);
        cr_assert_eq(manifest((const char *const[]){ "pubkey", "--key", wpath("tam2.pem"), "--out", wpath("tam2.pub.pem"), NULL }),
                     0);
        start_tam2(uri2, sizeof(uri2));
        /* the second TAM after the devstack's, trusted through its own anchor */
        snprintf(conf, sizeof(conf), "[TAM]\nURI=%s\n", uri2);
        write_text(wpath("60-tam2.conf"), conf);
        cr_assert_eq(stack_up(&stack, (const char *const[]){ "--conf", wpath("60-tam2.conf"), "--tam-key", wpath("tam2.pub.pem"),
                                                              NULL }),
                     0, "tools/devstack up failed");
        {
                _cleanup_free_ uint8_t *pem = NULL;
                size_t len;
                cr_assert_eq(read_full_file(stack_path(&stack, "tam/devices/device.pem"), 1 << 16, &pem, &len), 0);
                write_text(wpath("devices/device.pem"), (const char *)pem);
        }

        /* the first TAM installs the demo TC */
        argv[0] = getenv("TEEPCTL");
        argv[1] = "request";
        argv[2] = stack.demo_component;
        argv[3] = "--tam";
        argv[4] = stack.tam_uri;
        argv[5] = NULL;
        r = run_cmd_as(stack.uid_app, stack.gid_app, argv, 120, &out, &err);
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_eq(r, 0, "request: %s%s\n%s", out, err, log);

        /* the second offers a newer version of it, then an unlink of it: each refused */
        snprintf(tcs2, sizeof(tcs2), "%s/demo-ta.suit", wpath("tcs2"));
        for (int step = 0; step < 2; step++) {
                if (step == 0)
                        sign_tc(tcs2, "create", 2, "a replacement from the second TAM\n");
                else
                        sign_tc(tcs2, "unlink", 3, NULL);
                before = snapshot();
                mark = log_mark();
                r = teepctl_as_app("policy-check", NULL, &out, &err);
                free(log);
                log = log_since(mark);
                cr_assert(strstr(log, "was installed by another TAM"), "step %d: not refused as another TAM's:\n%s\n%s%s", step,
                          log, out, err);
                cr_assert(strstr(log, uri2), "step %d: the second TAM was not asked:\n%s", step, log);
                after = snapshot();
                cr_assert_str_eq(after, before, "step %d: the store or the state changed", step);
                free(before);
                free(after);
                before = after = NULL;
        }
        unlink(tcs2);

        /* the first TAM may replace it (the refusals are not a blanket ban) */
        sign_tc(stack_path(&stack, "tam/tcs/demo-ta.suit"), "create", 2, "a replacement from the first TAM\n");
        before = store_snapshot();
        r = teepctl_as_app("policy-check", NULL, &out, &err);
        free(log);
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert_eq(r, 0, "policy-check: %s%s\n%s", out, err, log);
        after = store_snapshot();
        cr_assert_str_neq(after, before, "the first TAM's update did not reach the store:\n%s", log);
        cr_assert_null(strstr(log, "Sanitizer"), "%s", log);
}
