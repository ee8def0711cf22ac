/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* harness.c: see harness.h. The stack itself is tools/devstack: one implementation for
 * newcomers, the demo and the tests. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <grp.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

static const char *env_or(const char *name, const char *fallback) {
        const char *v = getenv(name);
        return v && *v ? v : fallback;
}

bool stack_can_run(const char **why_not) {
        static const char *const tools[] = { "/usr/bin/dbus-daemon", "/usr/bin/setpriv", "/usr/bin/unshare" };

        if (geteuid() != 0) {
                if (why_not)
                        *why_not = "needs root (the stack's users exist only in a private mount namespace)";
                return false;
        }
        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (access(tools[i], X_OK) < 0) {
                        if (why_not)
                                *why_not = "dbus-daemon, setpriv or unshare is missing";
                        return false;
                }
        return true;
}

uint64_t stack_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Read fd to EOF into a growing buffer until deadline; returns 0 or -ETIMEDOUT. */
static int slurp(int fd, char **buf, size_t *len, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t t = stack_now_ms();
                char chunk[4096];
                ssize_t n;
                int r;

                if (t >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int)(deadline - t));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                if (buf) {
                        char *nb = realloc(*buf, *len + (size_t)n + 1);
                        if (!nb)
                                return -ENOMEM;
                        memcpy(nb + *len, chunk, (size_t)n);
                        *len += (size_t)n;
                        nb[*len] = '\0';
                        *buf = nb;
                }
        }
}

static int drop_to(uid_t uid, gid_t gid) {
        if (getuid() == uid && geteuid() == uid)
                return 0;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return -errno;
        return 0;
}

int run_cmd_as(uid_t uid, gid_t gid, const char *const *argv, unsigned timeout_sec, char **ret_out, char **ret_err) {
        int out[2], err[2], status;
        _cleanup_free_ char *obuf = NULL, *ebuf = NULL;
        size_t olen = 0, elen = 0;
        uint64_t deadline = stack_now_ms() + (uint64_t)timeout_sec * 1000u;
        pid_t pid;
        int r;

        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(err, O_CLOEXEC) < 0) {
                close(out[0]);
                close(out[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(out[0]), close(out[1]), close(err[0]), close(err[1]);
                return r;
        }
        if (pid == 0) {
                dup2(out[1], 1);
                dup2(err[1], 2);
                if (drop_to(uid, gid) < 0)
                        _exit(126);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        /* stdout first, then stderr: both are small for the commands tests run; the pipes
         * buffer 64 KiB each, so a chatty stderr cannot deadlock a short stdout. */
        r = slurp(out[0], &obuf, &olen, deadline);
        if (r == 0)
                r = slurp(err[0], &ebuf, &elen, deadline);
        close(out[0]);
        close(err[0]);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (ret_out)
                *ret_out = obuf ? TAKE_PTR(obuf) : strdup("");
        if (ret_err)
                *ret_err = ebuf ? TAKE_PTR(ebuf) : strdup("");
        if (r < 0)
                return r;
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

int run_as(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata) {
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                if (drop_to(uid, gid) < 0)
                        _exit(125);
                _exit(fn(userdata) & 0xff);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

static void set_field(Stack *s, const char *key, const char *value) {
        struct {
                const char *key;
                char *str;
                size_t size;
        } strs[] = {
                { "DBUS_SYSTEM_BUS_ADDRESS", s->bus_address, sizeof(s->bus_address) },
                { "TEEP_CONF", s->conf, sizeof(s->conf) },
                { "TEEP_TAM_URI", s->tam_uri, sizeof(s->tam_uri) },
                { "TEEP_DEMO_COMPONENT", s->demo_component, sizeof(s->demo_component) },
        };
        struct {
                const char *key;
                unsigned *id;
        } ids[] = {
                { "TEEP_UID_BROKER", &s->uid_broker }, { "TEEP_GID_BROKER", &s->gid_broker },
                { "TEEP_UID_AGENT", &s->uid_agent }, { "TEEP_GID_AGENT", &s->gid_agent },
                { "TEEP_UID_INSTALLER", &s->uid_installer }, { "TEEP_GID_INSTALLER", &s->gid_installer },
                { "TEEP_UID_APP", &s->uid_app }, { "TEEP_GID_APP", &s->gid_app },
                { "TEEP_UID_APP2", &s->uid_app2 }, { "TEEP_GID_APP2", &s->gid_app2 },
        };

        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                if (strcmp(key, strs[i].key) == 0)
                        snprintf(strs[i].str, strs[i].size, "%s", value);
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                if (strcmp(key, ids[i].key) == 0)
                        *ids[i].id = (unsigned)strtoul(value, NULL, 10);
        if (strcmp(key, "TEEP_DISTINCT_USERS") == 0)
                s->distinct_users = strcmp(value, "1") == 0;
}

int stack_up(Stack *s, const char *const *extra) {
        char tmpl[] = "/tmp/teepkit-test-XXXXXX", envpath[320], lifetime[16];
        const char *argv[64];
        _cleanup_free_ char *out = NULL, *err = NULL;
        _cleanup_free_ uint8_t *env = NULL;
        size_t n = 0, len;
        int r;

        memset(s, 0, sizeof(*s));
        if (!mkdtemp(tmpl))
                return -errno;
        (void)chmod(tmpl, 0755);
        snprintf(s->dir, sizeof(s->dir), "%s", tmpl);
        snprintf(lifetime, sizeof(lifetime), "%s", env_or("TEEP_STACK_LIFETIME", "300"));

        static char devstack[512];
        snprintf(devstack, sizeof(devstack), "%s/tools/devstack", env_or("TEEP_SOURCE_ROOT", "."));
        argv[n++] = devstack;
        argv[n++] = "up";
        argv[n++] = "--quiet";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n++] = "--build";
        argv[n++] = env_or("TEEP_BUILD_DIR", "build");
        argv[n++] = "--lifetime";
        argv[n++] = lifetime;
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;

        r = run_cmd_as(geteuid(), getegid(), argv, 60, &out, &err);
        if (r != 0) {
                fprintf(stderr, "harness: tools/devstack up failed (%d):\n%s%s", r, out ?: "", err ?: "");
                stack_down(s);
                return r < 0 ? r : -EIO;
        }
        snprintf(envpath, sizeof(envpath), "%s/env", s->dir);
        r = read_full_file(envpath, 64 * 1024, &env, &len);
        if (r < 0)
                return r;
        for (char *line = strtok((char *)env, "\n"); line; line = strtok(NULL, "\n")) {
                char *eq;
                if (strncmp(line, "export ", 7) == 0)
                        line += 7;
                eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                set_field(s, line, eq + 1);
        }
        if (!s->bus_address[0])
                return -EBADMSG;
        setenv("DBUS_SYSTEM_BUS_ADDRESS", s->bus_address, 1);
        return 0;
}

void stack_down(Stack *s) {
        const char *argv[] = { NULL, "down", "--quiet", "--dir", s->dir, NULL };
        char devstack[512];
        const char *keep = getenv("TEEP_KEEP_STACK");

        if (!s->dir[0])
                return;
        snprintf(devstack, sizeof(devstack), "%s/tools/devstack", env_or("TEEP_SOURCE_ROOT", "."));
        argv[0] = devstack;
        (void)run_cmd_as(geteuid(), getegid(), argv, 30, NULL, NULL);
        if (!(keep && strcmp(keep, "1") == 0)) {
                const char *rm[] = { "rm", "-rf", "--", s->dir, NULL };
                (void)run_cmd_as(geteuid(), getegid(), rm, 30, NULL, NULL);
        } else
                fprintf(stderr, "harness: kept the stack directory %s\n", s->dir);
        s->dir[0] = '\0';
}

const char *stack_path(const Stack *s, const char *rel) {
        static char ring[8][512];
        static unsigned next;
        char *p = ring[next++ % 8];

        snprintf(p, 512, "%s/%s", s->dir, rel);
        return p;
}

bool wait_for_file(const char *path, unsigned timeout_ms) {
        uint64_t deadline = stack_now_ms() + timeout_ms;

        for (;;) {
                if (access(path, F_OK) == 0)
                        return true;
                if (stack_now_ms() >= deadline)
                        return false;
                usleep(20 * 1000);
        }
}

int file_sha256_hex(const char *path, char out[65]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        gnutls_hash_hd_t h;
        uint8_t buf[65536], digest[32];
        ssize_t n;

        if (fd < 0)
                return -errno;
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -ENOMEM;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                gnutls_hash(h, buf, (size_t)n);
        gnutls_hash_deinit(h, digest);
        if (n < 0)
                return -errno;
        hexstr(digest, sizeof(digest), out);
        return 0;
}

pid_t stack_bus_name_pid(const char *name) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        uint32_t pid = 0;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID", &e, &reply, "s", name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &pid);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 0 : (pid_t)pid;
}

bool stack_proc_status_has(pid_t pid, const char *line) {
        _cleanup_free_ uint8_t *status = NULL;
        char path[64];
        size_t len;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (pid <= 0 || read_full_file(path, 64 * 1024, &status, &len) < 0)
                return false;
        /* a line that starts with it: at the start of the file or right after a newline */
        for (const char *p = (char *)status; (p = strstr(p, line)); p++)
                if (p == (char *)status || p[-1] == '\n')
                        return true;
        return false;
}

/* ---- restarting parts of a running stack ---- */

/* the children spawn() started: only those are reaped here, never a caller's own */
static pid_t spawned[256];

static void spawned_add(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(spawned); i++)
                if (spawned[i] <= 0) {
                        spawned[i] = pid;
                        return;
                }
}

void stack_reap(void) {
        for (size_t i = 0; i < ELEMENTSOF(spawned); i++)
                if (spawned[i] > 0 && waitpid(spawned[i], NULL, WNOHANG) == spawned[i])
                        spawned[i] = 0;
}

static bool pid_alive(pid_t pid) {
        char path[64], state = 0;
        FILE *f;
        int n;

        stack_reap();
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        /* pid (comm) S ...: the state follows the last ')' */
        n = fscanf(f, "%*d (%*[^)]) %c", &state);
        fclose(f);
        return n == 1 && state != 'Z';
}

static pid_t read_pid_file(const Stack *s, const char *rel) {
        _cleanup_free_ uint8_t *text = NULL;
        size_t len;

        if (read_full_file(stack_path(s, rel), 64, &text, &len) < 0)
                return 0;
        return (pid_t)strtol((char *)text, NULL, 10);
}

static void stop_pid(pid_t pid) {
        if (pid <= 1)
                return;
        (void)kill(-pid, SIGTERM);
        (void)kill(pid, SIGTERM);
        for (int i = 0; i < 300 && pid_alive(pid); i++)
                usleep(10 * 1000);
        if (pid_alive(pid)) {
                (void)kill(-pid, SIGKILL);
                (void)kill(pid, SIGKILL);
                for (int i = 0; i < 300 && pid_alive(pid); i++)
                        usleep(10 * 1000);
        }
}

/* fork; the child runs as uid/gid (in the mount namespace of ns_pid when > 0), in its own
 * process group, output appended to log, and execs argv. Returns the child's pid or -errno. */
static pid_t spawn(const char *const *argv, const char *log, pid_t ns_pid, uid_t uid, gid_t gid) {
        int nsfd = -1;
        pid_t pid;

        if (ns_pid > 0) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)ns_pid);
                nsfd = open(path, O_RDONLY | O_CLOEXEC);
                if (nsfd < 0)
                        return -errno;
        }
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                if (nsfd >= 0)
                        close(nsfd);
                return r;
        }
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644), null = open("/dev/null", O_RDONLY);

                (void)setpgid(0, 0);
                if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS) < 0)
                        _exit(124);
                if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(125);
                if (drop_to(uid, gid) < 0)
                        _exit(126);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        if (nsfd >= 0)
                close(nsfd);
        spawned_add(pid);
        return pid;
}

static int write_pid_file(const Stack *s, const char *rel, pid_t pid) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%d\n", (int)pid);
        _cleanup_close_ int fd = open(stack_path(s, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
                return -errno;
        return loop_write(fd, text, (size_t)n);
}

int stack_restart_tam(Stack *s, const char *const *extra) {
        char listen[64], build_tam[512], lifetime[16];
        const char *argv[96], *colon;
        _cleanup_free_ uint8_t *port_text = NULL;
        size_t n = 0, len;
        pid_t pid;
        unsigned port;

        colon = strrchr(s->tam_uri + strlen("http://"), ':');
        if (strncmp(s->tam_uri, "http://127.0.0.1:", 17) != 0 || !colon)
                return -EINVAL;
        port = (unsigned)strtoul(colon + 1, NULL, 10);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
        snprintf(build_tam, sizeof(build_tam), "%s/tam/teep-tam", env_or("TEEP_BUILD_DIR", "build"));
        snprintf(lifetime, sizeof(lifetime), "%s", env_or("TEEP_STACK_LIFETIME", "300"));

        stop_pid(read_pid_file(s, "run/tam.pid"));
        (void)unlink(stack_path(s, "run/tam.port"));

        argv[n++] = build_tam;
        argv[n++] = "--listen";
        argv[n++] = listen;
        argv[n++] = "--port-file";
        argv[n++] = stack_path(s, "run/tam.port");
        argv[n++] = "--key";
        argv[n++] = stack_path(s, "tam/tam.pem");
        argv[n++] = "--tc-dir";
        argv[n++] = stack_path(s, "tam/tcs");
        argv[n++] = "--device-keys";
        argv[n++] = stack_path(s, "tam/devices");
        argv[n++] = "--state-dir";
        argv[n++] = stack_path(s, "tam/state");
        argv[n++] = "--payload-dir";
        argv[n++] = stack_path(s, "tam/payloads");
        argv[n++] = "--lifetime";
        argv[n++] = lifetime;
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;

        /* the old socket may linger a moment: try again a few times */
        for (int attempt = 0; attempt < 20; attempt++) {
                pid = spawn(argv, stack_path(s, "log/tam.log"), 0, geteuid(), getegid());
                if (pid < 0)
                        return pid;
                (void)write_pid_file(s, "run/tam.pid", pid);
                for (int i = 0; i < 200 && pid_alive(pid); i++) {
                        if (read_full_file(stack_path(s, "run/tam.port"), 64, &port_text, &len) >= 0 && len > 0) {
                                unsigned got = (unsigned)strtoul((char *)port_text, NULL, 10);
                                return got == port ? 0 : -EADDRINUSE;
                        }
                        usleep(10 * 1000);
                }
                stop_pid(pid);
                usleep(100 * 1000);
        }
        return -EADDRINUSE;
}

int stack_restart_daemon(Stack *s, const char *which) {
        char bin[512], conf[512], log[64], pidfile[64];
        const char *name, *sub, *prog;
        const char *argv[8];
        uid_t uid;
        gid_t gid;
        pid_t pid, ns = read_pid_file(s, "run/dbus.pid");

        if (strcmp(which, "agent") == 0) {
                name = "org.teepkit.Agent1", sub = "agentd", prog = "teep-agentd";
                uid = s->uid_agent, gid = s->gid_agent;
        } else if (strcmp(which, "broker") == 0) {
                name = "org.teepkit.Broker1", sub = "broker", prog = "teep-brokerd";
                uid = s->uid_broker, gid = s->gid_broker;
        } else
                return -EINVAL;
        snprintf(bin, sizeof(bin), "%s/%s/%s", env_or("TEEP_BUILD_DIR", "build"), sub, prog);
        snprintf(conf, sizeof(conf), "%s", s->conf);
        snprintf(log, sizeof(log), "log/%s.log", which);
        snprintf(pidfile, sizeof(pidfile), "run/%s.pid", which);
        argv[0] = "timeout";
        argv[1] = "--signal=TERM";
        argv[2] = env_or("TEEP_STACK_LIFETIME", "300");
        argv[3] = bin;
        argv[4] = "--config";
        argv[5] = conf;
        argv[6] = NULL;
        pid = spawn(argv, stack_path(s, log), s->distinct_users ? ns : 0, uid, gid);
        if (pid < 0)
                return pid;
        (void)write_pid_file(s, pidfile, pid);
        for (int i = 0; i < 1000; i++) {
                if (stack_bus_name_pid(name) > 0)
                        return 0;
                if (!pid_alive(pid))
                        return -ECHILD;
                usleep(10 * 1000);
        }
        return -ETIMEDOUT;
}
