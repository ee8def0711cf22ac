/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-sandbox.c: teep-installer's real seccomp filter, installed in a forked child that then
 * tries what the installer needs and what it must never do */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

/* Child exit codes: 0 all as expected, otherwise the number of the step that went wrong. */
static int probe(const char *dir, bool try_exec) {
        int dfd, fd, s;

        if (installer_sandbox_apply(dir) < 0)
                return 1;
        if (prctl(PR_GET_SECCOMP) != 2)
                return 2;

        /* What the store needs. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return 3;
        fd = openat(dfd, ".teep-tmp-probe", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1 || fchmod(fd, 0644) < 0 || fsync(fd) < 0)
                return 4;
        close(fd);
        if (renameat(dfd, ".teep-tmp-probe", dfd, "tc") < 0 || fsync(dfd) < 0)
                return 5;
        if (unlinkat(dfd, "tc", 0) < 0)
                return 6;
        /* The bus. */
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 7;
        close(s);

        /* No network, and no escape hatches. */
        errno = 0;
        if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM)
                return 8;
        errno = 0;
        if (socket(AF_INET6, SOCK_DGRAM, 0) >= 0 || errno != EPERM)
                return 9;
        errno = 0;
        if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EPERM)
                return 10;
        errno = 0;
        if (chdir("/") == 0 && setuid(0) == 0 && getuid() != 0)
                return 11;
        errno = 0;
        if (symlinkat("x", dfd, "y") == 0)
                (void)unlinkat(dfd, "y", 0);
        if (try_exec) {
                /* The kernel kills the whole process: this is the last thing the child does. */
                char *const argv[] = { (char *)"/bin/true", NULL };
                execve("/bin/true", argv, (char *const[]){ NULL });
                return 12; /* survived an exec attempt */
        }
        return 0;
}

static int run_probe(bool try_exec, int *ret_signal) {
        char dir[] = "/tmp/teep-sandbox-XXXXXX";
        int status;
        pid_t pid;

        cr_assert_not_null(mkdtemp(dir));
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(probe(dir, try_exec));
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        (void)rmdir(dir);
        *ret_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(sandbox, store_and_bus_work_network_does_not) {
        int sig, r;

        unsetenv("TEEP_SECCOMP");
        r = run_probe(false, &sig);
        cr_assert_eq(sig, 0, "probe killed by signal %d", sig);
        cr_assert_eq(r, 0, "probe step %d went wrong", r);
}

Test(sandbox, exec_kills_the_process) {
        int sig, r;

        unsetenv("TEEP_SECCOMP");
        r = run_probe(true, &sig);
        cr_assert_eq(r, -1, "probe exited with %d instead of dying", r);
        cr_assert_eq(sig, SIGSYS, "probe died of signal %d, not SIGSYS", sig);
}
