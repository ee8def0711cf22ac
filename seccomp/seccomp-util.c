/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* seccomp-util.c: the shared allow/kill tables, the filter builder and the SIGSYS logger */
#include "seccomp-util.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include "log.h"

/* What any of our event-loop daemons does once running: memory, time, signals, polling, I/O on
 * descriptors it holds, the bus socket. Checked with `strace -f -c` on the devstack flow. */
const TeepSyscall teep_seccomp_base[] = {
        /* descriptors the daemon holds */
        { "read", "read from held descriptors (bus socket, payload fds, files)" },
        { "pread64", "read a payload fd at an offset without moving it (common/fileio.c)" },
        { "write", "write to held descriptors; log lines on stderr" },
        { "writev", "glibc stdio and sd-bus may write in vectors" },
        { "close", "close descriptors" },
        { "fstat", "size and type of a held descriptor" },
        { "newfstatat", "stat relative to a held directory (glibc's fstat() is newfstatat(fd, \"\"))" },
        { "lseek", "rewind payload and state files" },
        { "fcntl", "descriptor flags, memfd seals, F_DUPFD_CLOEXEC for received fds" },
        { "openat", "open files relative to held directories (Landlock bounds where writes go)" },
        { "getdents64", "list the state directory and the TC store" },
        { "memfd_create", "payloads passed to another daemon as sealed memfds" },
        /* memory */
        { "mmap", "the allocator and GnuTLS" },
        { "munmap", "the allocator" },
        { "mremap", "the allocator's realloc of large (mmapped) blocks such as payload buffers" },
        { "mprotect", "the allocator; guard pages of thread stacks" },
        { "madvise", "the allocator returns memory; thread stacks on thread exit" },
        { "brk", "the allocator" },
        /* signals */
        { "rt_sigaction", "install the SIGSYS logger; libcurl saves and restores SIGPIPE" },
        { "rt_sigprocmask", "sd-event's signalfd needs the signals blocked; threads start masked" },
        { "rt_sigreturn", "return from a signal handler (the SIGSYS logger)" },
        { "signalfd4", "sd-event receives SIGTERM/SIGINT as a descriptor" },
        { "tgkill", "abort() and raise() on a fatal error" },
        { "restart_syscall", "the kernel restarts a call interrupted by a signal" },
        /* the event loop */
        { "epoll_ctl", "sd-event adds and removes sources" },
        { "epoll_wait", "sd-event waits" },
        { "epoll_pwait", "sd-event waits (other glibc builds)" },
        { "epoll_pwait2", "sd-event waits with a timeout in ns (libsystemd >= 253)" },
        { "ppoll", "sd-bus waits for a method reply; the installer's bounded wait for payload data (installer/store.c)" },
        { "timerfd_create", "sd-event creates a clock source when the first timer of that clock is added" },
        { "timerfd_settime", "sd-event arms timers (job timeouts, idle exit)" },
        { "eventfd2", "sd-event's exit and defer sources" },
        /* time, identity, randomness */
        { "clock_gettime", "timestamps, timeouts (normally answered by the vDSO)" },
        { "gettimeofday", "libcurl and GnuTLS timestamps (normally answered by the vDSO)" },
        { "clock_nanosleep", "the installer's back-off while a payload stalls (glibc's nanosleep())" },
        { "getpid", "sd-bus and sd-event notice forks; raise()" },
        { "gettid", "sd-event and glibc's locks" },
        { "getuid", "sd-bus credentials" },
        { "geteuid", "sd-bus credentials" },
        { "getgid", "sd-bus credentials" },
        { "getegid", "sd-bus credentials" },
        { "getrandom", "GnuTLS: nonces, signatures, key generation; sd-bus cookies; hash seeds" },
        { "prctl", "PR_GET_SECCOMP self-checks; the filter only ever gets stricter" },
        /* threads and processes */
        { "futex", "locks and condition variables (GnuTLS, libcurl's resolver thread)" },
        { "clone", "threads (libcurl's resolver); --sandbox-self-test's probe children" },
        { "clone3", "threads on newer glibc" },
        { "set_robust_list", "a new thread registers its robust futex list" },
        { "rseq", "a new thread registers with restartable sequences" },
        { "set_tid_address", "a new thread's tid address" },
        { "prlimit64", "glibc reads RLIMIT_STACK when it sizes a new thread's stack" },
        { "wait4", "--sandbox-self-test reaps the children that try forbidden calls" },
        { "exit", "a thread ends" },
        { "exit_group", "the daemon ends" },
        /* the bus socket (socket() itself: per family, see allow_*_socket) */
        { "sendmsg", "sd-bus sends messages and fds" },
        { "recvmsg", "sd-bus receives messages and fds" },
        { "connect", "a new bus connection; only the socket families the policy allows exist" },
#if defined(__SANITIZE_ADDRESS__)
        /* sanitizer builds (tests only) */
        { "sigaltstack", "sanitizer builds: each thread gets an alternate signal stack" },
        { "getdents", "sanitizer builds: LeakSanitizer lists /proc/self/task at exit" },
        { "sched_getaffinity", "sanitizer builds: the sanitizers' runtime counts CPUs" },
        { "readlinkat", "sanitizer builds: the runtime reads /proc/self/exe for reports" },
        { "readlink", "sanitizer builds: the runtime reads /proc/self/exe for reports" },
        { "sched_yield", "sanitizer builds: the runtime's spin-locks" },
        { "getrlimit", "sanitizer builds: the runtime reads stack limits of new threads" },
        { "getppid", "sanitizer builds: LeakSanitizer's tracer checks its parent is alive" },
        { "open", "sanitizer builds: LeakSanitizer's tracer opens /proc/PID/task with open(2)" },
        { "ioctl", "sanitizer builds: a leak report asks whether stderr is a terminal" },
#endif
        { NULL, NULL },
};

/* Writes inside directories the daemon opened; Landlock (and the unit's ReadWritePaths=) bound
 * where. */
const TeepSyscall teep_seccomp_writes[] = {
        { "renameat", "atomic replace: rename the written temporary file over the old one" },
        { "rename", "atomic replace (glibc's rename() on x86-64)" },
        { "renameat2", "the agent's state file: its spare exchanged with it (RENAME_EXCHANGE, agentd/fsutil.c)" },
        { "ftruncate", "the agent's state file: its spare, rewritten in place, cut to the new length" },
        { "fdatasync", "the agent's state file: the spare's bytes reach the disk before the exchange" },
        { "unlinkat", "remove a temporary file, a TC or a payload" },
        { "unlink", "remove a file (glibc's unlink() on x86-64)" },
        { "mkdirat", "create the state directory's private subdirectories" },
        { "mkdir", "create a subdirectory (glibc's mkdir() on x86-64)" },
        { "fsync", "crash safety: file data and the directory entry reach the disk" },
        { "syncfs", "crash safety: several written copies reach the disk with one flush (agentd/update.c)" },
        { "fchmod", "set a written file's final mode" },
        { "fchmodat", "set the device key file's mode in the state directory" },
        { NULL, NULL },
};

/* LeakSanitizer stops the world with ptrace at exit: sanitizer builds (tests only) allow it. */
#if defined(__SANITIZE_ADDRESS__)
#define TEEP_SANITIZED 1
#else
#define TEEP_SANITIZED 0
#endif

/* These kill the whole process, whatever a policy allows: each is an escape or a privilege
 * none of the daemons has any business with. */
const TeepSyscall teep_seccomp_always_kill[] = {
        { "execve", "no daemon ever runs another program" },
        { "execveat", "no daemon ever runs another program" },
        { "ptrace", "no debugging of other processes (sanitizer builds allow it for LeakSanitizer)" },
        { "process_vm_readv", "no reading another process's memory" },
        { "process_vm_writev", "no writing another process's memory" },
        { "kexec_load", "no loading another kernel" },
        { "kexec_file_load", "no loading another kernel" },
        { "init_module", "no kernel modules" },
        { "finit_module", "no kernel modules" },
        { "delete_module", "no kernel modules" },
        { "bpf", "no BPF programs" },
        { "mount", "no mounts" },
        { "umount2", "no mounts" },
        { "move_mount", "no mounts" },
        { "open_tree", "no mounts" },
        { "fsopen", "no mounts" },
        { "fsmount", "no mounts" },
        { "pivot_root", "no new root" },
        { "chroot", "no new root" },
        { "swapon", "no swap" },
        { "swapoff", "no swap" },
        { "reboot", "no reboot" },
        { "setns", "no entering other namespaces" },
        { "unshare", "no new namespaces" },
        { "keyctl", "no kernel keyrings (keys live in the agent's memory only)" },
        { "add_key", "no kernel keyrings" },
        { "request_key", "no kernel keyrings" },
        { "perf_event_open", "no perf (side channels on the key)" },
        { "userfaultfd", "no userfaultfd (a kernel exploitation aid)" },
        { "open_by_handle_at", "no opening files by handle around path checks" },
        { "name_to_handle_at", "no file handles" },
        { NULL, NULL },
};

bool teep_sandbox_disabled(void) {
        const char *e = getenv("TEEP_SECCOMP");
        return e && strcmp(e, "0") == 0;
}

/* The one exception to the kill list: LeakSanitizer's ptrace in sanitizer builds. */
static bool kill_exempt(const char *name) {
        return TEEP_SANITIZED && strcmp(name, "ptrace") == 0;
}

/* allow_exec_fd: execveat is not killed but allowed for AT_EMPTY_PATH only (the rule below) */
static bool kill_skipped(const TeepSeccompPolicy *p, const char *name) {
        return p->allow_exec_fd && strcmp(name, "execveat") == 0;
}

static int add_list(scmp_filter_ctx ctx, const TeepSeccompPolicy *p, const TeepSyscall *list, uint32_t action) {
        const char *who = p->name;

        for (size_t i = 0; list && list[i].name; i++) {
                int nr = seccomp_syscall_resolve_name(list[i].name);
                int r;

                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                if (action == SCMP_ACT_KILL_PROCESS && kill_skipped(p, list[i].name))
                        continue;
                r = seccomp_rule_add(ctx, kill_exempt(list[i].name) ? SCMP_ACT_ALLOW : action, nr, 0);
                if (r < 0 && r != -EEXIST)
                        return log_error_errno(r, "%s: seccomp: cannot add %s: %s", who, list[i].name, strerror(-r));
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

/* ---- the SIGSYS logger ----
 * Everything the handler needs is prepared before the filter goes in: a line prefix in the
 * log.c format and the name of every syscall number, so the handler only copies bytes and
 * calls write(2). */

#if !defined(TEEP_SECCOMP_TRAP) && (defined(__x86_64__) || defined(__aarch64__))
#define TEEP_SECCOMP_LOG_EPERM 1

#define TRAP_MAX_NR 1024
static char trap_prefix[96];
static size_t trap_prefix_len;
static char *trap_names[TRAP_MAX_NR];

static void buf_add(char *buf, size_t size, size_t *n, const char *s) {
        while (*s && *n < size)
                buf[(*n)++] = *s++;
}

static void buf_add_uint(char *buf, size_t size, size_t *n, unsigned long v) {
        char tmp[24];
        size_t k = 0;

        do
                tmp[k++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (k > 0 && *n < size)
                buf[(*n)++] = tmp[--k];
}

static void on_sigsys(int sig, siginfo_t *si, void *ucontext) {
        ucontext_t *uc = ucontext;
        int saved_errno = errno;
        char line[256];
        size_t n = 0;
        int nr;

        if (si->si_code != 1 /* SYS_SECCOMP */) {
                /* a SIGSYS somebody sent: behave as if we had no handler */
                signal(SIGSYS, SIG_DFL);
                raise(SIGSYS);
                return;
        }
        nr = si->si_syscall;
        buf_add(line, sizeof(line), &n, trap_prefix);
        buf_add(line, sizeof(line), &n, "seccomp: refused system call ");
        buf_add(line, sizeof(line), &n, nr >= 0 && nr < TRAP_MAX_NR && trap_names[nr] ? trap_names[nr] : "?");
        buf_add(line, sizeof(line), &n, " (");
        buf_add_uint(line, sizeof(line), &n, (unsigned long)(nr < 0 ? 0 : nr));
        buf_add(line, sizeof(line), &n, "): EPERM\n");
        (void)!write(STDERR_FILENO, line, n);
#if defined(__x86_64__)
        uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
        uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
        errno = saved_errno;
}

static int install_sigsys_logger(const char *who) {
        struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
        const char *journal = getenv("JOURNAL_STREAM");
        sigset_t ss;

        /* the log.c format: "<4>" under systemd, "ident[warning]: " otherwise */
        trap_prefix_len = 0;
        if (journal && *journal)
                buf_add(trap_prefix, sizeof(trap_prefix) - 1, &trap_prefix_len, "<4>");
        else {
                buf_add(trap_prefix, sizeof(trap_prefix) - 1, &trap_prefix_len, who);
                buf_add(trap_prefix, sizeof(trap_prefix) - 1, &trap_prefix_len, "[warning]: ");
        }
        trap_prefix[trap_prefix_len] = '\0';
        for (int nr = 0; nr < TRAP_MAX_NR; nr++)
                if (!trap_names[nr])
                        trap_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) < 0)
                return log_error_errno(-errno, "%s: cannot install the SIGSYS handler: %m", who);
        /* a blocked SIGSYS from the filter would kill instead of being logged */
        sigemptyset(&ss);
        sigaddset(&ss, SIGSYS);
        (void)sigprocmask(SIG_UNBLOCK, &ss, NULL);
        return 0;
}
#endif

int teep_seccomp_apply(const TeepSeccompPolicy *p) {
        scmp_filter_ctx ctx;
        int r;

        if (teep_sandbox_disabled()) {
                log_warning("seccomp filter disabled by TEEP_SECCOMP=0 (debugging only)");
                return 0;
        }
#if defined(TEEP_SECCOMP_TRAP)
        /* -Dseccomp_trap=true: a call outside the list raises SIGSYS, so a developer sees where */
        ctx = seccomp_init(SCMP_ACT_TRAP);
#elif defined(TEEP_SECCOMP_LOG_EPERM)
        /* release: SIGSYS is caught, logged and turned into EPERM (on_sigsys) */
        r = install_sigsys_logger(p->name);
        if (r < 0)
                return r;
        ctx = seccomp_init(SCMP_ACT_TRAP);
#else
        ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
#endif
        if (!ctx)
                return log_error_errno(-ENOMEM, "seccomp: cannot initialise a filter");
        r = add_list(ctx, p, teep_seccomp_always_kill, SCMP_ACT_KILL_PROCESS);
        if (r >= 0)
                r = add_list(ctx, p, teep_seccomp_base, SCMP_ACT_ALLOW);
        if (r >= 0 && p->allow_file_writes)
                r = add_list(ctx, p, teep_seccomp_writes, SCMP_ACT_ALLOW);
        if (r >= 0)
                r = add_list(ctx, p, p->allow, SCMP_ACT_ALLOW);
        if (r >= 0 && p->allow_unix_socket)
                r = add_socket_family(ctx, AF_UNIX);
        if (r >= 0 && p->allow_inet_socket) {
                r = add_socket_family(ctx, AF_INET);
                if (r >= 0)
                        r = add_socket_family(ctx, AF_INET6);
        }
        if (r >= 0 && p->allow_netlink_socket)
                r = add_socket_family(ctx, AF_NETLINK);
        if (r >= 0 && p->allow_exec_fd)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 1,
                                     SCMP_A4(SCMP_CMP_EQ, (scmp_datum_t)AT_EMPTY_PATH));
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

static void print_list(FILE *f, const TeepSeccompPolicy *p, const char *action, const TeepSyscall *list) {
        for (size_t i = 0; list && list[i].name; i++) {
                bool here = seccomp_syscall_resolve_name(list[i].name) != __NR_SCMP_ERROR;
                const char *a = action;

                if (strcmp(action, "kill") == 0 && kill_skipped(p, list[i].name))
                        continue; /* printed with its condition below */
                if (strcmp(action, "kill") == 0 && kill_exempt(list[i].name))
                        a = "allow";
                fprintf(f, "%-6s %-20s %s%s\n", a, list[i].name, list[i].reason,
                        here ? "" : " (not on this architecture)");
        }
}

void teep_seccomp_print(const TeepSeccompPolicy *p, FILE *f) {
        fprintf(f, "# %s: seccomp policy (anything not listed: EPERM and a log line%s)\n", p->name,
#if defined(TEEP_SECCOMP_TRAP)
                "; this build: SIGSYS"
#else
                ""
#endif
        );
        print_list(f, p, "kill", teep_seccomp_always_kill);
        print_list(f, p, "allow", teep_seccomp_base);
        if (p->allow_file_writes)
                print_list(f, p, "allow", teep_seccomp_writes);
        print_list(f, p, "allow", p->allow);
        if (p->allow_unix_socket)
                fprintf(f, "%-6s %-20s %s\n", "allow", "socket(AF_UNIX)", "the bus; sd-bus may reconnect");
        if (p->allow_inet_socket)
                fprintf(f, "%-6s %-20s %s\n", "allow", "socket(AF_INET*)", "HTTP(S) to the TAMs");
        if (p->allow_netlink_socket)
                fprintf(f, "%-6s %-20s %s\n", "allow", "socket(AF_NETLINK)",
                        "glibc's getaddrinfo asks the kernel for the interfaces");
        if (p->allow_exec_fd)
                fprintf(f, "%-6s %-20s %s\n", "allow", "execveat(AT_EMPTY_PATH)",
                        "the one program opened before the box (teep-brokerd: its HTTP helper)");
}
