/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* seccomp-util.c: see seccomp-util.h */
#include "seccomp-util.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* What any of our event-loop daemons does: memory, time, signals, polling, I/O on open fds. */
static const char *const base_allow[] = {
        "read", "readv", "pread64", "preadv", "write", "writev", "pwrite64", "pwritev", "close",
        "fstat", "newfstatat", "fstatat64", "statx", "stat", "lstat", "lseek", "fcntl", "ioctl",
        "dup", "dup2", "dup3", "pipe", "pipe2", "openat", "open", "getdents64", "readlink", "readlinkat",
        "faccessat", "faccessat2", "access", "memfd_create", "ftruncate", "fadvise64", "sendfile",
        "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "mlock", "munlock", "mincore",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "signalfd4", "kill", "tgkill",
        "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
        "select", "pselect6", "timerfd_create", "timerfd_settime", "timerfd_gettime", "eventfd2",
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
        "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
        "getresgid", "getgroups", "getrandom", "uname", "prctl", "sched_yield", "sched_getaffinity",
        "futex", "set_robust_list", "get_robust_list", "rseq", "restart_syscall", "exit", "exit_group",
        "sendmsg", "recvmsg", "sendto", "recvfrom", "getsockopt", "setsockopt", "getsockname",
        "getpeername", "shutdown", "connect", "prlimit64", "getrlimit", "sysinfo", "membarrier",
        "capget", "umask", "getcwd", "flock", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        "pidfd_open", "waitid", "wait4", "clone", "clone3", "set_tid_address", "arch_prctl",
        NULL,
};

/* Writes inside directories the daemon opened; the unit's ReadWritePaths= bounds where. */
static const char *const write_allow[] = {
        "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "fsync",
        "fdatasync", "syncfs", "fchmod", "fchmodat", "fchown", "fchownat", "linkat", "symlinkat",
        "utimensat", "fallocate", "copy_file_range", "splice", NULL,
};

/* LeakSanitizer stops the world with ptrace at exit: sanitizer builds (tests only) allow it. */
#if defined(__SANITIZE_ADDRESS__)
#define PTRACE_UNLESS_SANITIZED
static const char *const sanitizer_allow[] = { "ptrace", NULL };
#else
#define PTRACE_UNLESS_SANITIZED "ptrace",
static const char *const sanitizer_allow[] = { NULL };
#endif

static const char *const always_kill[] = {
        "execve", "execveat", PTRACE_UNLESS_SANITIZED "process_vm_readv", "process_vm_writev", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf", "mount", "umount2",
        "pivot_root", "chroot", "swapon", "swapoff", "reboot", "setns", "unshare", "keyctl", "add_key",
        "request_key", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at", NULL,
};

static int add_list(scmp_filter_ctx ctx, const char *const *names, uint32_t action) {
        for (size_t i = 0; names && names[i]; i++) {
                int nr = seccomp_syscall_resolve_name(names[i]);
                int r;
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(ctx, action, nr, 0);
                if (r < 0 && r != -EEXIST)
                        return log_error_errno(r, "seccomp: cannot add %s: %s", names[i], strerror(-r));
        }
        return 0;
}

static int add_socket_family(scmp_filter_ctx ctx, int family) {
        int r;

        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family));
        if (r < 0)
                return r;
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                                SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family));
}

int teep_seccomp_apply(const TeepSeccompPolicy *p) {
        scmp_filter_ctx ctx;
        const char *e = getenv("TEEP_SECCOMP");
        int r;

        if (e && strcmp(e, "0") == 0) {
                log_warning("seccomp filter disabled by TEEP_SECCOMP=0 (debugging only)");
                return 0;
        }
#ifdef TEEP_SECCOMP_TRAP
        /* -Dseccomp_trap=true: a call outside the list raises SIGSYS, so a developer sees where */
        ctx = seccomp_init(SCMP_ACT_TRAP);
#else
        ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
#endif
        if (!ctx)
                return log_error_errno(-ENOMEM, "seccomp: cannot initialise a filter");
        r = add_list(ctx, always_kill, SCMP_ACT_KILL_PROCESS);
        if (r >= 0)
                r = add_list(ctx, base_allow, SCMP_ACT_ALLOW);
        if (r >= 0)
                r = add_list(ctx, sanitizer_allow, SCMP_ACT_ALLOW);
        if (r >= 0 && p->allow_file_writes)
                r = add_list(ctx, write_allow, SCMP_ACT_ALLOW);
        if (r >= 0)
                r = add_list(ctx, p->allow, SCMP_ACT_ALLOW);
        if (r >= 0 && p->allow_unix_socket)
                r = add_socket_family(ctx, AF_UNIX);
        if (r >= 0 && p->allow_inet_socket) {
                r = add_socket_family(ctx, AF_INET);
                if (r >= 0)
                        r = add_socket_family(ctx, AF_INET6);
                if (r >= 0)
                        r = add_socket_family(ctx, AF_NETLINK); /* getaddrinfo's interface query */
        }
        if (r >= 0) {
                r = seccomp_load(ctx);
                if (r < 0)
                        log_error("seccomp: cannot load the %s filter: %s", p->name, strerror(-r));
        }
        seccomp_release(ctx);
        if (r < 0)
                return r;
        log_debug("seccomp filter for %s installed", p->name);
        return 0;
}
