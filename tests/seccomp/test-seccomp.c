/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-seccomp.c: every daemon's real box (seccomp + Landlock) against every forbidden call,
 * through seccomp-probe (the box is never installed in criterion's own worker), plus the calls
 * each daemon needs, so a box that refuses everything fails too. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a try must come to. */
enum { ALLOWED, REFUSED, KILLED, REFUSED_LOGGED /* EPERM from seccomp: a log line too */ };

typedef struct Expect {
        const char *call;
        int agent, installer, broker, http; /* http: teep-broker-http, under the broker's filter and its own */
} Expect;

#if defined(__SANITIZE_ADDRESS__)
#define PTRACE_OUTCOME REFUSED /* sanitizer builds let ptrace through seccomp; Landlock refuses */
#else
#define PTRACE_OUTCOME KILLED
#endif

static const Expect expectations[] = {
        /* call, agent, installer, broker, http (the broker's one exec is by descriptor: execveat
         * of a path is refused, not killed; its helper refuses AF_UNIX, so it has no bus) */
        { "socket-unix",       ALLOWED,        ALLOWED,        ALLOWED,        REFUSED_LOGGED },
        { "socket-inet",       REFUSED_LOGGED, REFUSED_LOGGED, ALLOWED,        ALLOWED },
        { "socket-inet6",      REFUSED_LOGGED, REFUSED_LOGGED, ALLOWED,        ALLOWED },
        { "socket-netlink",    REFUSED_LOGGED, REFUSED_LOGGED, ALLOWED,        ALLOWED },
        { "socket-packet",     REFUSED_LOGGED, REFUSED_LOGGED, REFUSED_LOGGED, REFUSED_LOGGED },
        { "execve",            KILLED,         KILLED,         KILLED,         KILLED },
        { "execveat",          KILLED,         KILLED,         REFUSED_LOGGED, KILLED },
        { "ptrace",            PTRACE_OUTCOME, PTRACE_OUTCOME, PTRACE_OUTCOME, PTRACE_OUTCOME },
        { "process_vm_readv",  KILLED,         KILLED,         KILLED,         KILLED },
        { "mount",             KILLED,         KILLED,         KILLED,         KILLED },
        { "umount2",           KILLED,         KILLED,         KILLED,         KILLED },
        { "init_module",       KILLED,         KILLED,         KILLED,         KILLED },
        { "finit_module",      KILLED,         KILLED,         KILLED,         KILLED },
        { "bpf",               KILLED,         KILLED,         KILLED,         KILLED },
        { "unshare",           KILLED,         KILLED,         KILLED,         KILLED },
        { "setns",             KILLED,         KILLED,         KILLED,         KILLED },
        { "chroot",            KILLED,         KILLED,         KILLED,         KILLED },
        { "pivot_root",        KILLED,         KILLED,         KILLED,         KILLED },
        { "reboot",            KILLED,         KILLED,         KILLED,         KILLED },
        { "keyctl",            KILLED,         KILLED,         KILLED,         KILLED },
        { "perf_event_open",   KILLED,         KILLED,         KILLED,         KILLED },
        { "userfaultfd",       KILLED,         KILLED,         KILLED,         KILLED },
        /* Landlock: writes beneath the daemon's own directory only (the broker: nowhere) */
        { "open-outside",      REFUSED,        REFUSED,        REFUSED,        REFUSED },
        { "creat-outside",     REFUSED,        REFUSED,        REFUSED,        REFUSED },
        { "mkdir-outside",     REFUSED,        REFUSED,        REFUSED_LOGGED, REFUSED_LOGGED },
        { "write-inside",      ALLOWED,        ALLOWED,        REFUSED,        REFUSED },
};

static const char *const outcome_names[] = { "allowed", "refused", "killed", "refused" };

static char *slurp_fd(int fd) {
        char *buf = calloc(1, 65536);
        ssize_t n;
        size_t len = 0;

        cr_assert_not_null(buf);
        (void)lseek(fd, 0, SEEK_SET);
        while (len < 65535 && (n = read(fd, buf + len, 65535 - len)) > 0)
                len += (size_t)n;
        return buf;
}

/* Run seccomp-probe with args; its exit status, stdout and stderr. */
static int probe(const char *const *args, char **ret_out, char **ret_err) {
        const char *bin = getenv("SECCOMP_PROBE");
        char out_tmpl[] = "/tmp/teep-probe-out-XXXXXX", err_tmpl[] = "/tmp/teep-probe-err-XXXXXX";
        const char *argv[8] = { bin };
        int out, err, status;
        pid_t pid;

        cr_assert(bin && *bin, "SECCOMP_PROBE is not set");
        for (size_t i = 0; args[i] && i < 6; i++)
                argv[i + 1] = args[i];
        out = mkstemp(out_tmpl);
        err = mkstemp(err_tmpl);
        cr_assert(out >= 0 && err >= 0);
        (void)unlink(out_tmpl);
        (void)unlink(err_tmpl);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(out, 1);
                dup2(err, 2);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        *ret_out = slurp_fd(out);
        *ret_err = slurp_fd(err);
        close(out);
        close(err);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int column(const Expect *e, const char *daemon) {
        return strcmp(daemon, "agent") == 0       ? e->agent
               : strcmp(daemon, "installer") == 0 ? e->installer
               : strcmp(daemon, "http") == 0      ? e->http
                                                  : e->broker;
}

static void check_daemon(const char *daemon) {
        char dir[] = "/tmp/teep-seccomp-XXXXXX";
        char cmd[128];

        cr_assert_not_null(mkdtemp(dir));
        for (size_t i = 0; i < sizeof(expectations) / sizeof(expectations[0]); i++) {
                const Expect *e = &expectations[i];
                const char *args[] = { daemon, e->call, dir, NULL };
                int want = column(e, daemon), code;
                char *out, *err;
                /* exit codes of seccomp-probe: 0 allowed, 1 refused, 2 killed */
                int want_code = want == ALLOWED ? 0 : want == KILLED ? 2 : 1;

#if defined(TEEP_SECCOMP_TRAP)
                /* -Dseccomp_trap=true: what release refuses with EPERM kills instead */
                if (want == REFUSED_LOGGED)
                        want = KILLED, want_code = 2;
#endif
                code = probe(args, &out, &err);
                cr_expect_eq(code, want_code, "%s %s: want %s, got: %s%s", daemon, e->call, outcome_names[want], out,
                             err);
                if (want == REFUSED_LOGGED && code == want_code)
                        /* release mode: the EPERM left a line naming the call */
                        cr_expect(strstr(err, "seccomp: refused system call "), "%s %s: no log line on stderr:\n%s",
                                  daemon, e->call, err);
                if (want == REFUSED_LOGGED && strncmp(e->call, "socket-", 7) == 0)
                        cr_expect(strstr(err, "seccomp: refused system call socket ("), "%s %s: log line:\n%s", daemon,
                                  e->call, err);
                if (want == REFUSED)
                        cr_expect(strstr(out, "refused (EACCES)") || strstr(out, "refused (EPERM)"), "%s", out);
                free(out);
                free(err);
        }
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)system(cmd);
}

Test(seccomp, agent_box, .timeout = 120) {
        check_daemon("agent");
}

Test(seccomp, installer_box, .timeout = 120) {
        check_daemon("installer");
}

Test(seccomp, broker_box, .timeout = 120) {
        check_daemon("broker");
}

Test(seccomp, broker_http_box, .timeout = 120) {
        check_daemon("http");
}

/* Every rule of every table carries a reason, and the kill list is there. */
Test(seccomp, every_rule_has_a_reason, .timeout = 30) {
        static const char *const daemons[] = { "agent", "installer", "broker", "http" };

        for (size_t d = 0; d < 4; d++) {
                const char *args[] = { daemons[d], "--list", NULL };
                char *out, *err, *save = NULL;
                unsigned rules = 0, kills = 0;

                cr_assert_eq(probe(args, &out, &err), 0, "%s", err);
                for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char action[16], name[64];
                        int used = 0;

                        if (line[0] == '#')
                                continue;
                        cr_assert_eq(sscanf(line, "%15s %63s %n", action, name, &used), 2, "%s", line);
                        cr_expect(used > 0 && strlen(line + used) >= 3, "%s: no reason for %s", daemons[d], name);
                        rules++;
                        kills += strcmp(action, "kill") == 0;
                        cr_expect(strcmp(name, "execve") != 0 || strcmp(action, "kill") == 0, "execve must be killed");
                }
                cr_expect_gt(rules, 50u, "%s: only %u rules listed", daemons[d], rules);
                cr_expect_gt(kills, 20u, "%s: only %u kill rules", daemons[d], kills);
                free(out);
                free(err);
        }
}

/* An unknown call name is an error, not a silent pass. */
Test(seccomp, unknown_call_is_an_error, .timeout = 30) {
        const char *args[] = { "agent", "no-such-call", "/tmp", NULL };
        char *out, *err;

        cr_expect_eq(probe(args, &out, &err), 64);
        free(out);
        free(err);
}
