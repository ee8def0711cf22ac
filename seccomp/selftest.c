/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* selftest.c: see selftest.h. Every call is made so that it is harmless when a broken box lets
 * it through (bad magic for reboot, paths that do not exist for mount and chroot, PTRACE_SEIZE
 * that a dying child undoes), because the point is to find out. */
#include "selftest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "landlock.h"

#define NOWHERE "/nonexistent-teepkit-sandbox-probe"

const char *const teep_sandbox_calls[] = {
        "socket-unix", "socket-inet", "socket-inet6", "socket-netlink", "socket-packet", "execve", "execveat",
        "ptrace", "process_vm_readv", "mount", "umount2", "init_module", "finit_module", "bpf", "unshare", "setns",
        "chroot", "pivot_root", "reboot", "keyctl", "perf_event_open", "userfaultfd", "open-outside",
        "creat-outside", "mkdir-outside", "write-inside", NULL,
};

/* 0 or errno, and the descriptor closed */
static int fd_result(long fd) {
        if (fd < 0)
                return errno;
        close((int)fd);
        return 0;
}

static int sock(int family, int type, int proto) {
        return fd_result(socket(family, type | SOCK_CLOEXEC, proto));
}

/* A name in /tmp: outside every daemon's writable directory, writable for everyone by mode. */
static void outside_path(char *buf, size_t size, const char *what) {
        snprintf(buf, size, "/tmp/teepkit-sandbox-probe-%s-%d", what, (int)getpid());
}

static int write_inside(const char *dir) {
        int dfd, fd, r = 0;

        if (!dir)
                return EINVAL;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno;
        fd = openat(dfd, ".teepkit-sandbox-probe", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) < 0 ||
            renameat(dfd, ".teepkit-sandbox-probe", dfd, ".teepkit-sandbox-probe2") < 0 ||
            unlinkat(dfd, ".teepkit-sandbox-probe2", 0) < 0)
                r = errno ?: EIO;
        if (fd >= 0)
                close(fd);
        (void)unlinkat(dfd, ".teepkit-sandbox-probe", 0);
        close(dfd);
        return r;
}

int teep_sandbox_do(const char *call, const char *dir) {
        static char *const argv[] = { (char *)"/bin/true", NULL };
        static char *const envp[] = { NULL };
        char path[128], byte;
        struct iovec local = { &byte, 1 }, remote = { &byte, 1 };
        long r;

        errno = 0;
        if (strcmp(call, "socket-unix") == 0)
                return sock(AF_UNIX, SOCK_STREAM, 0);
        if (strcmp(call, "socket-inet") == 0)
                return sock(AF_INET, SOCK_STREAM, 0);
        if (strcmp(call, "socket-inet6") == 0)
                return sock(AF_INET6, SOCK_DGRAM, 0);
        if (strcmp(call, "socket-netlink") == 0)
                return sock(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        if (strcmp(call, "socket-packet") == 0)
                return sock(AF_PACKET, SOCK_RAW, 0);
        if (strcmp(call, "execve") == 0) {
                execve(argv[0], argv, envp);
                return errno;
        }
        if (strcmp(call, "execveat") == 0) {
                syscall(SYS_execveat, AT_FDCWD, argv[0], argv, envp, 0);
                return errno;
        }
        if (strcmp(call, "ptrace") == 0) {
                /* SEIZE stops nothing; the tracer's exit detaches it again */
                r = ptrace(PTRACE_SEIZE, 1, NULL, NULL);
                return r < 0 ? errno : 0;
        }
        if (strcmp(call, "process_vm_readv") == 0) {
                r = syscall(SYS_process_vm_readv, getppid(), &local, 1, &remote, 1, 0);
                return r < 0 ? errno : 0;
        }
        if (strcmp(call, "mount") == 0)
                return syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0, NULL) < 0 ? errno : 0;
        if (strcmp(call, "umount2") == 0)
                return syscall(SYS_umount2, NOWHERE, 0) < 0 ? errno : 0;
        if (strcmp(call, "init_module") == 0)
                return syscall(SYS_init_module, NULL, 0, "") < 0 ? errno : 0;
        if (strcmp(call, "finit_module") == 0)
                return syscall(SYS_finit_module, -1, "", 0) < 0 ? errno : 0;
        if (strcmp(call, "bpf") == 0)
                return syscall(SYS_bpf, -1, NULL, 0) < 0 ? errno : 0;
        if (strcmp(call, "unshare") == 0)
                return syscall(SYS_unshare, 0) < 0 ? errno : 0; /* a no-op when allowed */
        if (strcmp(call, "setns") == 0)
                return syscall(SYS_setns, -1, 0) < 0 ? errno : 0;
        if (strcmp(call, "chroot") == 0)
                return syscall(SYS_chroot, NOWHERE) < 0 ? errno : 0;
        if (strcmp(call, "pivot_root") == 0)
                return syscall(SYS_pivot_root, NOWHERE, NOWHERE) < 0 ? errno : 0;
        if (strcmp(call, "reboot") == 0)
                return syscall(SYS_reboot, 0, 0, 0, NULL) < 0 ? errno : 0; /* bad magic: EINVAL if let through */
        if (strcmp(call, "keyctl") == 0)
                return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0) < 0 ? errno : 0;
        if (strcmp(call, "perf_event_open") == 0)
                return fd_result(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        if (strcmp(call, "userfaultfd") == 0)
                return fd_result(syscall(SYS_userfaultfd, O_CLOEXEC));
        if (strcmp(call, "open-outside") == 0) {
                outside_path(path, sizeof(path), "open");
                r = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (r >= 0)
                        (void)unlink(path);
                return fd_result(r);
        }
        if (strcmp(call, "creat-outside") == 0) {
                outside_path(path, sizeof(path), "creat");
                r = creat(path, 0600);
                if (r >= 0)
                        (void)unlink(path);
                return fd_result(r);
        }
        if (strcmp(call, "mkdir-outside") == 0) {
                outside_path(path, sizeof(path), "mkdir");
                if (mkdir(path, 0700) < 0)
                        return errno;
                (void)rmdir(path);
                return 0;
        }
        if (strcmp(call, "write-inside") == 0)
                return write_inside(dir);
        return -1;
}

TeepTryOutcome teep_sandbox_try(const char *call, const char *dir, int (*setup)(void *userdata), void *userdata,
                                char *desc, size_t desc_size) {
        bool known = false;
        int status;
        pid_t pid;

        for (size_t i = 0; teep_sandbox_calls[i]; i++)
                known = known || strcmp(teep_sandbox_calls[i], call) == 0;
        if (!known) {
                snprintf(desc, desc_size, "unknown call");
                return TEEP_TRY_UNKNOWN;
        }
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                snprintf(desc, desc_size, "cannot fork: %s", strerror(errno));
                return TEEP_TRY_FAILED;
        }
        if (pid == 0) {
                int r;
                if (setup && setup(userdata) < 0)
                        _exit(125);
                r = teep_sandbox_do(call, dir);
                /* errno values fit in an exit status; 0 is success */
                _exit(r < 0 ? 124 : r & 0xff);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        snprintf(desc, desc_size, "cannot wait: %s", strerror(errno));
                        return TEEP_TRY_FAILED;
                }
        if (WIFSIGNALED(status)) {
                snprintf(desc, desc_size, "killed by %s", WTERMSIG(status) == SIGSYS ? "SIGSYS" : strsignal(WTERMSIG(status)));
                return WTERMSIG(status) == SIGSYS ? TEEP_TRY_KILLED : TEEP_TRY_FAILED;
        }
        switch (WEXITSTATUS(status)) {
        case 0:
                snprintf(desc, desc_size, "allowed");
                return TEEP_TRY_ALLOWED;
        case EPERM:
                snprintf(desc, desc_size, "refused (EPERM)");
                return TEEP_TRY_REFUSED;
        case EACCES:
                snprintf(desc, desc_size, "refused (EACCES)");
                return TEEP_TRY_REFUSED;
        case 125:
                snprintf(desc, desc_size, "the sandbox could not be set up");
                return TEEP_TRY_FAILED;
        default:
                snprintf(desc, desc_size, "failed (%s)", strerrorname_np(WEXITSTATUS(status)) ?: "?");
                return TEEP_TRY_FAILED;
        }
}

int teep_sandbox_self_test(const char *who, const char *const *forbidden, const char *dir) {
        bool landlock = teep_landlock_enforced();
        int r = 0;

        for (size_t i = 0; forbidden[i]; i++) {
                char desc[128];
                TeepTryOutcome o;

                if (!landlock && strstr(forbidden[i], "-outside")) {
                        printf("%s: %s: skipped (no Landlock in this kernel or TEEP_SECCOMP=0)\n", who, forbidden[i]);
                        continue;
                }
                o = teep_sandbox_try(forbidden[i], dir, NULL, NULL, desc, sizeof(desc));
                printf("%s: %s: %s\n", who, forbidden[i], desc);
                if (o != TEEP_TRY_REFUSED && o != TEEP_TRY_KILLED)
                        r = -EPERM;
        }
        printf("%s: sandbox self-test %s\n", who, r < 0 ? "FAILED" : "passed: every forbidden call was refused");
        fflush(stdout);
        return r;
}
