/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-matrix.c: the malicious-TAM matrix (matrix-cases.c) on the real stack: one stack, teep-tam
 * restarted with each case's hostile mode; the store and the agent's state must not change */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "harness.h"
#include "macro.h"
#include "matrix-stack.h"
#include "matrix.h"
#include "teep-cose.h"
#include "teep-message.h"
#include "teep-protocol.h"

static Stack stack;

static const char broker_conf[] = "[Broker]\nConnectTimeoutSec=2s\nTimeoutSec=3s\n";

static void up(void) {
        const char *why = NULL;
        char conf[] = "/tmp/teepkit-matrix-conf-XXXXXX";
        char path[512];
        FILE *f;
        int fd;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        fd = mkdtemp(conf) ? 0 : -1;
        cr_assert_eq(fd, 0);
        snprintf(path, sizeof(path), "%s/50-matrix.conf", conf);
        f = fopen(path, "we");
        cr_assert_not_null(f);
        fputs(broker_conf, f);
        fclose(f);
        cr_assert_eq(stack_up(&stack, (const char *const[]){ "--conf", path, NULL }), 0, "tools/devstack up failed");
        unlink(path);
        rmdir(conf);
        cr_assert(stack.distinct_users);
}

static void down(void) {
        stack_down(&stack);
}

static uint64_t now_sec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec;
}

static void mkdir_p(const char *path) {
        const char *argv[] = { "mkdir", "-p", path, NULL };
        cr_assert_eq(matrix_run(argv), 0, "mkdir -p %s", path);
}

static void copy_tree(const char *from, const char *to) {
        const char *argv[] = { "cp", "-a", "--", from, to, NULL };
        cr_assert_eq(matrix_run(argv), 0, "cp -a %s %s", from, to);
}

/* The err-code of the first TEEP Error in the transcript, MATRIX_NO_TEEP_ERROR if none;
 * ret_n: how many messages the TAM received. */
static int transcript_error(const char *dir, unsigned *ret_n) {
        struct dirent **names = NULL;
        int n, code = MATRIX_NO_TEEP_ERROR;

        n = scandir(dir, &names, NULL, alphasort);
        *ret_n = 0;
        for (int i = 0; i < n; i++) {
                char path[1024];
                _cleanup_free_ uint8_t *body = NULL;
                _cleanup_(teep_message_freep) TeepMessage *m = NULL;
                TeepCoseMessage cose;
                size_t len;

                if (names[i]->d_name[0] != '.') {
                        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
                        if (read_full_file(path, 4 << 20, &body, &len) >= 0) {
                                (*ret_n)++;
                                if (code == MATRIX_NO_TEEP_ERROR && teep_cose_decode(TEEP_BUF(body, len), &cose, NULL) >= 0 &&
                                    teep_message_decode(cose.payload, &m, NULL) >= 0 && m->type == TEEP_TYPE_ERROR)
                                        code = (int)m->err_code;
                        }
                }
                free(names[i]);
        }
        free(names);
        return code;
}

/* The store part of a snapshot ("tc:" lines). */
static char *store_only(const char *snapshot) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        for (const char *p = snapshot; f && p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
                if (strncmp(p, "tc:", 3) == 0)
                        fwrite(p, 1, n, f);
                p += n;
        }
        if (f)
                fclose(f);
        return out;
}

static char *tc_digest(const MatrixCase *c);
static MatrixTc tc_for(const MatrixCase *c);

/* The store part of snapshot with one more file, name → digest, in sorted order. */
static char *store_plus(const char *snapshot, const char *name, const char *digest) {
        _cleanup_free_ char *store = store_only(snapshot);
        char line[4400], *out = NULL;
        size_t len = 0;
        bool done = false;
        FILE *f;

        snprintf(line, sizeof(line), "tc:/%s f 0644 %zu %s\n", name, strlen("a TC with a strange name\n"), digest);
        f = open_memstream(&out, &len);
        for (const char *p = store; f && p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
                if (!done && strncmp(p, line, strlen(line)) > 0 && strncmp(p, "tc: ", 4) != 0) {
                        fputs(line, f);
                        done = true;
                }
                fwrite(p, 1, n, f);
                p += n;
        }
        if (f && !done)
                fputs(line, f);
        if (f)
                fclose(f);
        return out;
}

/* Restart teep-tam for a case; dir holds the case's TAM state and transcript. */
static void tam_for_case(const MatrixCase *c, const char *dir) {
        char state[512], transcript[512], signer[512], tcs[1024], extra[1024];
        const char *args[32];
        size_t n = 0;

        snprintf(state, sizeof(state), "%s/state", dir);
        snprintf(transcript, sizeof(transcript), "%s/transcript", dir);
        snprintf(signer, sizeof(signer), "%s", stack_path(&stack, "tam/signer.pem"));
        if (c && !c->fresh_tam_state)
                copy_tree(stack_path(&stack, "matrix/state-base"), state);
        else
                mkdir_p(state);
        args[n++] = "--state-dir";
        args[n++] = state;
        args[n++] = "--transcript";
        args[n++] = transcript;
        args[n++] = "--tc-dir";
        if (c && c->catalog == MATRIX_CATALOG_EQUAL_SEQ)
                snprintf(tcs, sizeof(tcs), "%s", stack_path(&stack, "matrix/cat-equal"));
        else {
                /* the base catalog, plus the case's own TC */
                char crafted_dir[1024];
                snprintf(tcs, sizeof(tcs), "%s/tcs", dir);
                copy_tree(stack_path(&stack, "matrix/cat-base"), tcs);
                snprintf(crafted_dir, sizeof(crafted_dir), "%s/%s/", stack_path(&stack, "matrix/crafted"),
                         c ? c->name : "-");
                if (c && access(crafted_dir, F_OK) == 0) {
                        const char *argv[] = { "cp", "-a", "-T", "--", crafted_dir, tcs, NULL };
                        cr_assert_eq(matrix_run(argv), 0);
                }
        }
        args[n++] = tcs;
        if (c && c->action == MATRIX_REQUEST) {
                MatrixTc tc = tc_for(c);
                snprintf(extra, sizeof(extra), "%s/%s/%s.suit", stack_path(&stack, "matrix/crafted"), c->name, tc.file);
        }
        for (size_t i = 0; c && c->tam_args[i]; i++)
                args[n++] = strcmp(c->tam_args[i], "@SIGNER") == 0    ? signer
                            : strcmp(c->tam_args[i], "@CRAFTED") == 0 ? extra
                                                                      : c->tam_args[i];
        args[n] = NULL;
        cr_assert_eq(stack_restart_tam(&stack, args), 0, "teep-tam did not come back for %s", c ? c->name : "control");
}

/* The TCs the cases request, each signed (or mis-signed) as its case needs. */
static const MatrixTc crafted[] = {
        { .file = "size", .component = MATRIX_SIZE_MISMATCH, .sequence = 1, .content = "size\n", .uri = true,
          .size_delta = 1 },
        { .file = "unknown-command", .component = MATRIX_UNKNOWN_COMMAND, .sequence = 1, .content = "cmd\n",
          .unknown_command = true },
        { .file = "by-tam", .component = MATRIX_SIGNED_BY_TAM, .sequence = 1, .content = "tam\n", .tam_signer = true },
        { .file = "rogue", .component = MATRIX_ROGUE_SIGNER, .sequence = 1, .content = "rogue\n", .rogue_signer = true },
        { .file = "flipped", .component = MATRIX_BAD_MANIFEST_SIG, .sequence = 1, .content = "flipped\n",
          .flip_signature = true },
        { .file = "vendor", .component = MATRIX_WRONG_VENDOR, .sequence = 1, .content = "vendor\n", .other_vendor = true },
};

static const MatrixTc *crafted_for(const char *component) {
        for (size_t i = 0; i < ELEMENTSOF(crafted); i++)
                if (strcmp(crafted[i].component, component) == 0)
                        return &crafted[i];
        return NULL;
}

static const MatrixTc fresh_tc = { .file = "fresh", .component = MATRIX_FRESH, .sequence = 1, .content = "a fresh TC\n" };
static const MatrixTc fresh_uri_tc = { .file = "fresh-uri", .component = MATRIX_FRESH_URI, .sequence = 1,
                                       .content = "a fresh TC the device downloads by URI, 58 bytes long..\n",
                                       .uri = true };

/* The TC a request case is about: crafted, fresh, or an ordinary TC under a strange name. */
static MatrixTc tc_for(const MatrixCase *c) {
        const MatrixTc *tc = crafted_for(c->component);

        if (tc)
                return *tc;
        if (strcmp(c->component, MATRIX_FRESH) == 0)
                return fresh_tc;
        if (strcmp(c->component, MATRIX_FRESH_URI) == 0)
                return fresh_uri_tc;
        return (MatrixTc){ .file = "named", .component = c->component, .sequence = 1,
                           .content = "a TC with a strange name\n" };
}

/*
 * Everything the cases need:
 *  - every component a case requests is requested once first, while the TAM does not have it:
 *    a request is durable (the app depends on the TC), so the agent records it on the first
 *    RequestTA whatever happens next; asked again in its case, nothing changes;
 *  - the demo TC at sequence 2 on the device (sequence 1 first, then a policy check);
 *  - matrix/cat-base: demo seq 1 and 2, fresh, fresh-uri; matrix/crafted/COMPONENT: the TC
 *    a case needs (each case's TAM gets the base plus its own, so one hostile TC never
 *    spoils another case's Update); matrix/cat-equal: only demo seq 2 with another payload.
 */
/* After the matrix: an honest TAM, and the same stack installs matrix/fresh. */
static const MatrixCase control_case = { "control", "an honest TAM", { NULL }, .action = MATRIX_REQUEST,
                                         .component = MATRIX_FRESH };

static void baseline(void) {
        char digest[65], err[128], tcs[512], base[512], crafted_dir[512], equal[512];
        _cleanup_free_ char *out = NULL;

        /* stack_path() answers from a small ring of buffers: keep copies */
        snprintf(tcs, sizeof(tcs), "%s", stack_path(&stack, "tam/tcs"));
        snprintf(base, sizeof(base), "%s", stack_path(&stack, "matrix/cat-base"));
        snprintf(crafted_dir, sizeof(crafted_dir), "%s", stack_path(&stack, "matrix/crafted"));
        snprintf(equal, sizeof(equal), "%s", stack_path(&stack, "matrix/cat-equal"));
        mkdir_p(crafted_dir);
        mkdir_p(equal);

        cr_assert_eq(matrix_teepctl(&stack, (const char *const[]){ "request", "--json", stack.demo_component, NULL },
                                    60, err, sizeof(err), &out),
                     0, "baseline request: %s", out);
        for (size_t i = 0; i < matrix_n_cases; i++) {
                const MatrixCase *c = &matrix_cases[i];
                if (c->action != MATRIX_REQUEST)
                        continue;
                free(out);
                out = NULL;
                cr_assert_eq(matrix_teepctl(&stack, (const char *const[]){ "request", "--json", c->component, NULL }, 60,
                                            err, sizeof(err), &out),
                             3, "%s: the first request must find nothing: %s", c->name, out);
        }
        cr_assert_eq(matrix_make_tc(&stack, tcs,
                                    &(MatrixTc){ .file = "demo-ta-2", .component = stack.demo_component, .sequence = 2,
                                                 .content = "teepkit demo Trusted Component, version 2\n" },
                                    digest),
                     0);
        free(out);
        out = NULL;
        cr_assert_eq(matrix_teepctl(&stack, (const char *const[]){ "policy-check", "--json", NULL }, 60, err,
                                    sizeof(err), &out),
                     0, "baseline policy check: %s", out);

        copy_tree(tcs, base);
        for (size_t i = 0; i < matrix_n_cases; i++) {
                const MatrixCase *c = &matrix_cases[i];
                MatrixTc tc;
                char dir[1024];
                int k;

                if (c->action != MATRIX_REQUEST)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s", crafted_dir, c->name);
                mkdir_p(dir);
                tc = tc_for(c);
                k = matrix_make_tc(&stack, dir, &tc, NULL);
                cr_assert_eq(k, 0, "cannot make the TC of %s: %s", c->name, strerror(-k));
        }
        {
                char dir[1024];
                MatrixTc tc = tc_for(&control_case);
                snprintf(dir, sizeof(dir), "%s/control", crafted_dir);
                mkdir_p(dir);
                cr_assert_eq(matrix_make_tc(&stack, dir, &tc, NULL), 0);
        }
        cr_assert_eq(matrix_make_tc(&stack, equal,
                                    &(MatrixTc){ .file = "demo-other", .component = stack.demo_component, .sequence = 2,
                                                 .content = "NOT the demo TC version 2 the device has\n" },
                                    NULL),
                     0);
        copy_tree(stack_path(&stack, "tam/state"), stack_path(&stack, "matrix/state-base"));
}

static char *tc_digest(const MatrixCase *c) {
        MatrixTc tc = tc_for(c);
        uint8_t d[32];
        char *hex = malloc(65);

        if (hex && teep_sha256(TEEP_BUF(tc.content, strlen(tc.content)), d) >= 0)
                hexstr(d, sizeof(d), hex);
        return hex;
}

TestSuite(matrix, .init = up, .fini = down, .timeout = 1200);

Test(matrix, every_hostile_tam_is_refused_and_nothing_changes) {
        bool discover = getenv("TEEP_MATRIX_DISCOVER") != NULL;
        const char *only = getenv("TEEP_MATRIX_ONLY");
        uint64_t unauth_at[64];
        size_t n_unauth = 0, failures = 0, ran = 0;
        pid_t agent, broker;
        uint64_t started = now_sec();

        mkdir_p(stack_path(&stack, "matrix"));
        baseline();
        agent = stack_bus_name_pid("org.teepkit.Agent1");
        broker = stack_bus_name_pid("org.teepkit.Broker1");
        cr_assert_gt(agent, 1);
        cr_assert_gt(broker, 1);

        for (size_t i = 0; i < matrix_n_cases; i++) {
                const MatrixCase *c = &matrix_cases[i];
                _cleanup_free_ char *before = NULL, *after = NULL, *out = NULL;
                char dir[512], transcript[600], err[128];
                unsigned n_received = 0, temp = 0;
                int code, r;

                if (only && !strstr(only, c->name))
                        continue;
                ran++;
                /* the agent answers at most 10 unauthenticated messages a minute: keep under it */
                if (c->unauthenticated) {
                        while (n_unauth >= 9 && now_sec() - unauth_at[n_unauth - 9] < 62)
                                sleep(1);
                        unauth_at[n_unauth++] = now_sec();
                }
                snprintf(dir, sizeof(dir), "%s/%s", stack_path(&stack, "matrix"), c->name);
                mkdir_p(dir);
                tam_for_case(c, dir);

                before = matrix_snapshot(&stack, NULL);
                if (c->action == MATRIX_POLICY_CHECK)
                        r = matrix_teepctl(&stack,
                                           (const char *const[]){ "policy-check", "--json", "--timeout", "60", NULL },
                                           90, err, sizeof(err), &out);
                else
                        r = matrix_teepctl(&stack,
                                           (const char *const[]){ "request", "--json", "--timeout", "60", c->component,
                                                                  NULL },
                                           90, err, sizeof(err), &out);
                after = matrix_snapshot(&stack, &temp);
                snprintf(transcript, sizeof(transcript), "%s/transcript", dir);
                code = transcript_error(transcript, &n_received);

                if (discover)
                        fprintf(stderr, "matrix: %-28s exit=%d error=%-18s teep_err=%d received=%u\n", c->name, r, err,
                                code, n_received);
                else {
                        cr_expect_str_eq(err, c->error, "%s: job error %s, expected %s\n%s", c->name, err, c->error,
                                         out ?: "");
                        cr_expect_eq(code, c->teep_err, "%s: the TAM received err-code %d, expected %d", c->name,
                                     code, c->teep_err);
                        failures += strcmp(err, c->error) != 0 || code != c->teep_err;
                }
                if (c->stored_as) {
                        /* installed, as one file directly in the store under its textual name; the
                         * rest of the store as it was */
                        _cleanup_free_ char *digest = tc_digest(c);
                        _cleanup_free_ char *want = store_plus(before, c->stored_as, digest);
                        _cleanup_free_ char *got = store_only(after);
                        cr_expect_eq(r, 0, "%s: the job failed: %s", c->name, out ?: "");
                        cr_expect_str_eq(got, want, "%s: the store is not the old one plus %s", c->name, c->stored_as);
                        failures += r != 0 || strcmp(got, want) != 0;
                } else {
                        cr_expect_neq(r, 0, "%s: the job succeeded", c->name);
                        cr_expect_str_eq(after, before,
                                         "%s: the store or the agent's state changed:\nbefore:\n%s\nafter:\n%s", c->name,
                                         before, after);
                        failures += r == 0 || strcmp(after, before) != 0;
                }
                cr_expect_eq(temp, 0, "%s: temporary files left in the store", c->name);
                failures += temp != 0;
                /* no daemon died on the way */
                cr_expect_eq(stack_bus_name_pid("org.teepkit.Agent1"), agent, "%s: teep-agentd restarted or died", c->name);
                cr_expect_eq(stack_bus_name_pid("org.teepkit.Broker1"), broker, "%s: teep-brokerd restarted or died",
                             c->name);
        }
        fprintf(stderr, "matrix: %zu cases in %llu s, %zu failed\n", ran, (unsigned long long)(now_sec() - started),
                failures);

        /* the control: the same stack, an honest TAM, and the same request works */
        {
                char err[128];
                _cleanup_free_ char *out = NULL;
                char dir[512];

                snprintf(dir, sizeof(dir), "%s/control", stack_path(&stack, "matrix"));
                mkdir_p(dir);
                tam_for_case(&control_case, dir);
                cr_assert_eq(matrix_teepctl(&stack, (const char *const[]){ "request", "--json", MATRIX_FRESH, NULL }, 60,
                                            err, sizeof(err), &out),
                             0, "an honest TAM could not install %s afterwards: %s", MATRIX_FRESH, out);
        }
        /* in a sanitizer build: nothing the hostile TAMs sent made a daemon misbehave */
        for (size_t i = 0; i < 4; i++) {
                static const char *const logs[] = { "log/agent.log", "log/broker.log", "log/tam.log", "log/dbus.log" };
                _cleanup_free_ uint8_t *text = NULL;
                size_t len;

                if (read_full_file(stack_path(&stack, logs[i]), 64 << 20, &text, &len) < 0)
                        continue;
                cr_expect_null(strstr((char *)text, "Sanitizer"), "%s: a sanitizer report", logs[i]);
                cr_expect_null(strstr((char *)text, "runtime error:"), "%s: undefined behaviour", logs[i]);
        }
}

/* docs/malicious-tam.md shows this table; it must not drift from the cases. */
Test(matrix_doc, the_table_in_the_docs_is_the_table_of_the_test) {
        _cleanup_free_ char *table = NULL;
        _cleanup_free_ uint8_t *doc = NULL;
        char path[1024];
        size_t len = 0, doc_len;
        FILE *f = open_memstream(&table, &len);

        cr_assert_not_null(f);
        matrix_print_table(f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/docs/malicious-tam.md", getenv("TEEP_SOURCE_ROOT") ?: ".");
        cr_assert_eq(read_full_file(path, 1 << 20, &doc, &doc_len), 0, "cannot read %s", path);
        cr_assert_not_null(strstr((char *)doc, table),
                           "docs/malicious-tam.md does not hold the table of tests/matrix/matrix-cases.c; "
                           "regenerate it with build/tests/matrix/matrix-table:\n%s",
                           table);
        cr_assert_geq(matrix_n_cases, 50u);
}
