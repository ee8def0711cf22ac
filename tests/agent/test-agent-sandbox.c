/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-sandbox.c: teep-agentd's real seccomp filter, installed in a forked child that then
 * does what the agent needs (state directory writes, a bus socket, a sealed memfd, signing) and
 * tries what it must never do (network sockets, exec) */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-internal.h"
#include "macro.h"
#include "sandbox.h"

/* Child exit codes: 0 all as expected, otherwise the step that went wrong. */
static int probe(const char *dir, bool try_exec) {
        _cleanup_(teep_key_freep) TeepKey *key = NULL;
        uint8_t *sig = NULL;
        size_t sig_len;
        int dfd, s, fd;

        if (teep_key_generate(&key, TEEP_KEY_P256) < 0)
                return 1;
        if (agent_sandbox_apply(dir) < 0)
                return 2;
        if (prctl(PR_GET_SECCOMP) != 2)
                return 3;

        /* the state directory: atomic writes, a private subdirectory */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return 4;
        if (write_file_atomic_at(dfd, "state", "x\n", 2, 0600) < 0)
                return 5;
        fd = open_private_dir_at(dfd, "payloads", 0700);
        if (fd < 0)
                return 6;
        close(fd);
        /* a sealed memfd for the installer */
        fd = memfd_from_data("probe", "payload", 7);
        if (fd < 0)
                return 7;
        close(fd);
        /* signing (gnutls) still works */
        if (teep_cose_sign1(key, 0, NULL, TEEP_BUF("p", 1), false, &sig, &sig_len) < 0)
                return 8;
        free(sig);
        /* the bus */
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 9;
        close(s);

        /* no network at all */
        errno = 0;
        if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM)
                return 10;
        errno = 0;
        if (socket(AF_INET6, SOCK_DGRAM, 0) >= 0 || errno != EPERM)
                return 11;
        errno = 0;
        if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EPERM)
                return 12;
        errno = 0;
        if (socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){}) >= 0)
                return 13;
        if (try_exec) {
                char *const argv[] = { (char *)"/bin/true", NULL };
                execve("/bin/true", argv, (char *const[]){ NULL });
                return 14; /* survived an exec attempt */
        }
        return 0;
}

static int run_probe(bool try_exec, int *ret_signal) {
        char dir[] = "/tmp/teep-agent-sandbox-XXXXXX";
        char cmd[128];
        int status;
        pid_t pid;

        cr_assert_not_null(mkdtemp(dir));
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(probe(dir, try_exec));
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)system(cmd);
        *ret_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(sandbox, allows_what_the_agent_needs_and_no_network) {
        int sig = 0;
        int r = run_probe(false, &sig);
        cr_assert_eq(sig, 0, "killed by signal %d", sig);
        cr_assert_eq(r, 0, "step %d went wrong", r);
}

Test(sandbox, exec_kills) {
        int sig = 0;
        int r = run_probe(true, &sig);
        cr_assert_eq(r, -1, "the child exited (%d) instead of being killed", r);
        cr_assert_eq(sig, SIGSYS);
}
