/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-crash.c: kill -9 of a daemon at a random moment of an install, update or removal on the
 * real stack; after the restart the store and the agent agree, every TC is the old or the new
 * image, and the same request then succeeds (issue 9, part 3) */
#include <criterion/criterion.h>
#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
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
#include "harness.h"
#include "macro.h"
#include "matrix-stack.h"
#include "teep-cose.h"

#define N_TCS     3
#define MAX_SEQ   4096

static Stack stack;

typedef enum Daemon { D_AGENT, D_INSTALLER, D_BROKER, _D_MAX } Daemon;
static const char *const daemon_name[_D_MAX] = { "agent", "installer", "broker" };
static const char *const daemon_bus[_D_MAX] = { "org.teepkit.Agent1", "org.teepkit.Installer1", "org.teepkit.Broker1" };

typedef enum Op { OP_INSTALL, OP_UPDATE, OP_REMOVE } Op;
static const char *const op_name[] = { "install", "update", "remove" };

typedef struct Tc {
        char component[64];
        char file[16];     /* in the store: component with '/' as '+' */
        unsigned seq;      /* the newest the TAM offers */
        unsigned have;     /* installed sequence (0: not installed) */
} Tc;

static Tc tcs[N_TCS];

static unsigned agent_idle_ms; /* 0: the agent never rests */

static const char broker_conf[] = "[Broker]\nConnectTimeoutSec=2s\nTimeoutSec=10s\n";

static unsigned env_uint(const char *name, unsigned def);

static void up(void) {
        const char *why = NULL;
        char conf[] = "/tmp/teepkit-crash-conf-XXXXXX", path[512], idle_arg[32];
        FILE *f;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_not_null(mkdtemp(conf));
        snprintf(path, sizeof(path), "%s/50-crash.conf", conf);
        f = fopen(path, "we");
        cr_assert_not_null(f);
        fputs(broker_conf, f);
        fclose(f);
        /* TEEP_CRASH_AGENT_IDLE_MS=N (bench/crash-long's AGENT_IDLE_MS=): the agent rests after N ms
         * without calls and comes back by bus activation; every other iteration waits long
         * enough for it to rest first, so kills also land in its start and around its rest */
        agent_idle_ms = env_uint("TEEP_CRASH_AGENT_IDLE_MS", 0);
        snprintf(idle_arg, sizeof(idle_arg), "%ums", agent_idle_ms);
        cr_assert_eq(stack_up(&stack, agent_idle_ms ? (const char *const[]){ "--conf", path, "--agent-idle", idle_arg, NULL }
                                                    : (const char *const[]){ "--conf", path, NULL }),
                     0, "tools/devstack up failed");
        unlink(path);
        rmdir(conf);
        cr_assert(stack.distinct_users);
}

static void down(void) {
        stack_down(&stack);
}

/* The last TC is fetched by URI and big enough to stream: broker → agent → installer, staged in
 * the store and committed from there, so kills land in the stream and in the staging too. */
#define STREAMED_TC (N_TCS - 1)
#define CONTENT_MAX (512 * 1024)

/* The payload of TC i at sequence seq: known bytes, so a digest names its version. */
static void content_of(unsigned i, unsigned seq, char *buf, size_t n) {
        /* some size, so that a kill can land inside the copy; more than the agent keeps in
         * memory (256 KiB) for the streamed one */
        int width = i == STREAMED_TC ? 300000 + (int)(seq % 7) * 3000 : 1000 + (int)(seq % 7) * 3000;

        snprintf(buf, n, "crash TC %u, sequence %u\n%0*u\n", i, seq, width, seq);
}

static void digest_of(unsigned i, unsigned seq, char out[65]) {
        static char buf[CONTENT_MAX];
        uint8_t d[32];

        content_of(i, seq, buf, sizeof(buf));
        cr_assert_eq(teep_sha256(TEEP_BUF(buf, strlen(buf)), d), 0);
        hexstr(d, sizeof(d), out);
}

/* Put sequence seq of TC i into the TAM's catalog (the TAM reads it per session). */
static void publish(unsigned i, unsigned seq) {
        static char buf[CONTENT_MAX];
        char tcdir[512], file[32];

        content_of(i, seq, buf, sizeof(buf));
        snprintf(tcdir, sizeof(tcdir), "%s", stack_path(&stack, "tam/tcs"));
        snprintf(file, sizeof(file), "crash-%u", i);
        cr_assert_eq(matrix_make_tc(&stack, tcdir,
                                    &(MatrixTc){ .file = file,
                                                 .component = tcs[i].component,
                                                 .sequence = seq,
                                                 .content = buf,
                                                 .uri = i == STREAMED_TC },
                                    NULL),
                     0);
        tcs[i].seq = seq;
}

/* ---- what the daemons say ---- */

typedef struct Listing {
        unsigned n;
        char component[16][64];
        char digest[16][65];
} Listing;

static int read_listing(sd_bus_message *reply, const char *sig, Listing *l) {
        int r = sd_bus_message_enter_container(reply, 'a', sig);
        char inner[16];

        snprintf(inner, sizeof(inner), "%.*s", (int)strlen(sig) - 2, sig + 1);
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', inner)) > 0) {
                const char *c;
                const void *d = NULL;
                size_t dl = 0;
                uint64_t x;

                r = sd_bus_message_read(reply, "s", &c);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "t", &x);
                if (r >= 0)
                        r = sd_bus_message_read_array(reply, 'y', &d, &dl);
                if (r >= 0 && strcmp(inner, "stayt") == 0)
                        r = sd_bus_message_read(reply, "t", &x);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0 && l->n < 16 && dl == 32) {
                        snprintf(l->component[l->n], 64, "%s", c);
                        hexstr(d, 32, l->digest[l->n]);
                        l->n++;
                }
        }
        return r;
}

/* As the agent's uid: Installer1.List; as the broker's: Agent1.InstalledTCs. Written to a pipe
 * from a child (the bus checks the caller's uid). */
static int ask_installer(void *userdata) {
        int fd = *(int *)userdata;
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        Listing l = {};
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.teepkit.Installer1", "/org/teepkit/Installer1", "org.teepkit.Installer1",
                                       "List", NULL, &reply, NULL);
        if (r >= 0)
                r = read_listing(reply, "(stayt)", &l);
        if (r >= 0 && write(fd, &l, sizeof(l)) != (ssize_t)sizeof(l))
                r = -EIO;
        return r < 0 ? 1 : 0;
}

static int ask_agent(void *userdata) {
        int fd = *(int *)userdata;
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        Listing l = {};
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_get_property(bus, "org.teepkit.Agent1", "/org/teepkit/Agent1", "org.teepkit.Agent1",
                                        "InstalledTCs", NULL, &reply, "a(stay)");
        if (r >= 0)
                r = read_listing(reply, "(stay)", &l);
        if (r >= 0 && write(fd, &l, sizeof(l)) != (ssize_t)sizeof(l))
                r = -EIO;
        return r < 0 ? 1 : 0;
}

static int listing_as(uid_t uid, gid_t gid, int (*fn)(void *), Listing *ret) {
        int p[2], r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        r = run_as(uid, gid, fn, &p[1]);
        close(p[1]);
        *ret = (Listing){};
        if (r == 0 && read(p[0], ret, sizeof(*ret)) != (ssize_t)sizeof(*ret))
                r = -EIO;
        close(p[0]);
        return r;
}

static const char *listing_find(const Listing *l, const char *component) {
        for (unsigned i = 0; i < l->n; i++)
                if (strcmp(l->component[i], component) == 0)
                        return l->digest[i];
        return NULL;
}

/* ---- killing ---- */

static bool alive(pid_t pid) {
        char path[64], state = 0;
        FILE *f;
        int n;

        stack_reap();
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        n = fscanf(f, "%*d (%*[^)]) %c", &state);
        fclose(f);
        return n == 1 && state != 'Z';
}

static bool state_has_journal(void) {
        _cleanup_free_ uint8_t *text = NULL;
        size_t len;

        if (read_full_file(stack_path(&stack, "var/lib/teepkit/agent/state"), 1 << 20, &text, &len) < 0)
                return false;
        return strstr((char *)text, "\njournal ") != NULL;
}

static unsigned store_temp_files(void) {
        DIR *d = opendir(stack_path(&stack, "var/lib/teepkit/tc"));
        struct dirent *de;
        unsigned n = 0;

        while (d && (de = readdir(d)))
                /* undo records are not TCs nor torn writes: they live from a change until the
                 * agent's next Discard (after its commit, or at its start after a crash) */
                if (strncmp(de->d_name, ".teep-undo-", 11) == 0 || strncmp(de->d_name, ".teep-added-", 12) == 0)
                        continue;
                /* List's digest cache (teep-installer(8)): not a torn write either; whether it
                 * lies shows in List's digests, which check() compares with the agent's */
                else if (strcmp(de->d_name, ".teep-digests") == 0)
                        continue;
                else if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
                else if (strstr(de->d_name, ".tmp"))
                        n++;
        if (d)
                closedir(d);
        return n;
}

/* ---- the run ---- */

typedef struct Figures {
        unsigned iterations, kills[_D_MAX], landed[_D_MAX], mid_commit, violations, ok_ops, failed_ops;
} Figures;

/* The command for op on TC i, as the app; returns teepctl's exit status. */
static pid_t start_op(Op op, unsigned i) {
        const char *verb = op == OP_REMOVE ? "unrequest" : op == OP_UPDATE ? "policy-check" : "request";
        const char *teepctl = getenv("TEEPCTL");
        pid_t pid;

        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                if (setgroups(0, NULL) < 0 || setresgid(stack.gid_app, stack.gid_app, stack.gid_app) < 0 ||
                    setresuid(stack.uid_app, stack.uid_app, stack.uid_app) < 0)
                        _exit(126);
                if (op == OP_UPDATE)
                        execl(teepctl, teepctl, verb, "--timeout", "30", (char *)NULL);
                else
                        execl(teepctl, teepctl, verb, "--timeout", "30", tcs[i].component, (char *)NULL);
                _exit(127);
        }
        return pid;
}

static int wait_op(pid_t pid, unsigned timeout_ms) {
        uint64_t deadline = stack_now_ms() + timeout_ms;
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (stack_now_ms() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        return -ETIMEDOUT;
                }
                usleep(5 * 1000);
        }
}

static void restart(Daemon d, pid_t old) {
        for (int i = 0; i < 500 && (alive(old) || stack_bus_name_pid(daemon_bus[d]) == old); i++)
                usleep(10 * 1000);
        if (d == D_INSTALLER || (d == D_AGENT && agent_idle_ms))
                return; /* bus-activated: the next call starts it */
        cr_assert_eq(stack_restart_daemon(&stack, daemon_name[d]), 0, "cannot restart teep-%s", daemon_name[d]);
}

/* The invariants; returns how many were broken (and says which). */
static unsigned check(const char *when, const unsigned before[N_TCS], const unsigned after[N_TCS]) {
        Listing store = {}, agent = {};
        unsigned bad = 0, temp;
        int r;

        /* The agent may still be finishing the interrupted Update (a killed broker does not stop
         * it) or reconciling after a restart: compare only a quiet moment, the agent's list
         * read before and after the store's being the same. (The agent answers a property
         * read only between two TEEP messages, so a commit never straddles it.) */
        for (int tries = 0;; tries++) {
                Listing agent2 = {};
                r = listing_as(stack.uid_broker, stack.gid_broker, ask_agent, &agent);
                if (r == 0)
                        r = listing_as(stack.uid_agent, stack.gid_agent, ask_installer, &store);
                if (r == 0)
                        r = listing_as(stack.uid_broker, stack.gid_broker, ask_agent, &agent2);
                if (r == 0 && memcmp(&agent, &agent2, sizeof(agent)) == 0)
                        break;
                if (tries > 100) {
                        r = r ?: -EBUSY;
                        break;
                }
                usleep(100 * 1000);
        }
        if (r != 0) {
                fprintf(stderr, "crash: %s: cannot list the store or the agent's TCs\n", when);
                return 1;
        }
        temp = store_temp_files();
        if (temp) {
                fprintf(stderr, "crash: %s: %u temporary file(s) left in the store\n", when, temp);
                bad++;
        }
        for (unsigned i = 0; i < N_TCS; i++) {
                const char *s = listing_find(&store, tcs[i].component), *a = listing_find(&agent, tcs[i].component);
                char old[65] = "", new[65] = "";

                if (before[i])
                        digest_of(i, before[i], old);
                if (after[i])
                        digest_of(i, after[i], new);
                /* the store holds the old or the new image, or nothing where one of them is nothing */
                if (s ? strcmp(s, old) != 0 && strcmp(s, new) != 0 : before[i] && after[i]) {
                        fprintf(stderr, "crash: %s: %s in the store is %s: neither the old (%s) nor the new (%s) image\n",
                                when, tcs[i].component, s ?: "absent", before[i] ? old : "absent",
                                after[i] ? new : "absent");
                        bad++;
                }
                /* and the agent says the same */
                if ((s == NULL) != (a == NULL) || (s && strcmp(s, a) != 0)) {
                        fprintf(stderr, "crash: %s: %s: the store has %s, the agent says %s\n", when, tcs[i].component,
                                s ?: "nothing", a ?: "nothing");
                        bad++;
                }
        }
        return bad;
}

/* The installed sequence of TC i according to the agent (0: none). */
static unsigned installed_seq(unsigned i) {
        Listing agent = {};
        const char *d;

        if (listing_as(stack.uid_broker, stack.gid_broker, ask_agent, &agent) != 0)
                return 0;
        d = listing_find(&agent, tcs[i].component);
        for (unsigned seq = tcs[i].seq; d && seq > 0; seq--) {
                char want[65];
                digest_of(i, seq, want);
                if (strcmp(want, d) == 0)
                        return seq;
        }
        return 0;
}

static void run_crash(unsigned iterations, unsigned seed, Figures *f) {
        for (unsigned i = 0; i < N_TCS; i++) {
                snprintf(tcs[i].component, sizeof(tcs[i].component), "crash/tc-%u", i);
                publish(i, 1);
        }
        srandom(seed);
        for (unsigned it = 0; it < iterations; it++) {
                unsigned i = (unsigned)random() % N_TCS, before[N_TCS], after[N_TCS], delay_ms;
                Daemon d = (Daemon)(random() % _D_MAX);
                Op op;
                pid_t victim, cmd, others[_D_MAX];
                char when[128];
                int rc, again;

                for (unsigned k = 0; k < N_TCS; k++)
                        before[k] = after[k] = tcs[k].have;
                /* the operation that makes sense for this TC now */
                if (!tcs[i].have)
                        op = OP_INSTALL;
                else
                        op = random() % 2 ? OP_UPDATE : OP_REMOVE;
                if (op == OP_UPDATE) {
                        for (unsigned k = 0; k < N_TCS; k++)
                                if (tcs[k].have) {
                                        cr_assert_lt(tcs[k].seq + 1, MAX_SEQ);
                                        publish(k, tcs[k].seq + 1);
                                        after[k] = tcs[k].seq;
                                }
                } else if (op == OP_INSTALL)
                        after[i] = tcs[i].seq;
                else
                        after[i] = 0;
                delay_ms = (unsigned)random() % 150; /* most operations take 50..300 ms */
                snprintf(when, sizeof(when), "iteration %u (%s %s, kill teep-%s after %u ms)", it, op_name[op],
                         tcs[i].component, daemon_name[d], delay_ms);

                /* the long-running others: a kill must not take them down too (the installer is
                 * bus-activated and may come and go by itself) */
                if (agent_idle_ms && it % 2)
                        usleep((agent_idle_ms + 100 + (unsigned)random() % 200) * 1000); /* let it rest */
                for (unsigned e = 0; e < _D_MAX; e++)
                        others[e] = e == d || e == D_INSTALLER || (e == D_AGENT && agent_idle_ms) ?
                                            0 :
                                            stack_bus_name_pid(daemon_bus[e]);
                cmd = start_op(op, i);
                usleep(delay_ms * 1000);
                victim = stack_bus_name_pid(daemon_bus[d]);
                f->kills[d]++;
                if (victim > 1 && kill(victim, SIGKILL) == 0) {
                        f->landed[d]++;
                        for (int w = 0; w < 200 && alive(victim); w++)
                                usleep(5 * 1000);
                        if ((d == D_AGENT && state_has_journal()) || (d == D_INSTALLER && store_temp_files() > 0))
                                f->mid_commit++;
                }
                rc = wait_op(cmd, 60 * 1000);
                if (rc == -ETIMEDOUT || rc >= 126) {
                        fprintf(stderr, "crash: %s: the interrupted command did not finish cleanly (%d)\n", when, rc);
                        f->violations++;
                }
                f->ok_ops += rc == 0;
                f->failed_ops += rc > 0 && rc < 126;
                for (unsigned e = 0; e < _D_MAX; e++)
                        if (others[e] > 1 && !alive(others[e])) {
                                fprintf(stderr, "crash: %s: teep-%s died too\n", when, daemon_name[e]);
                                f->violations++;
                        }
                if (victim > 1)
                        restart(d, victim);

                f->violations += check(when, before, after);

                /* the same request again, undisturbed: it must succeed and reach the new state */
                cmd = start_op(op, i);
                again = wait_op(cmd, 60 * 1000);
                if (op == OP_REMOVE && again == 3) {
                        /* NotRequested: the interrupted unrequest was recorded, the TAM not told yet;
                         * the next session tells it (the agent keeps the TC as unneeded) */
                        cmd = start_op(OP_UPDATE, i);
                        again = wait_op(cmd, 60 * 1000);
                }
                if (again != 0) {
                        fprintf(stderr, "crash: %s: the same %s afterwards failed (%d)\n", when, op_name[op], again);
                        f->violations++;
                }
                for (unsigned k = 0; k < N_TCS; k++)
                        tcs[k].have = installed_seq(k);
                for (unsigned k = 0; k < N_TCS; k++)
                        if (tcs[k].have != after[k] && !(op == OP_UPDATE && tcs[k].have == before[k] && !before[k])) {
                                fprintf(stderr, "crash: %s: %s is at sequence %u afterwards, expected %u\n", when,
                                        tcs[k].component, tcs[k].have, after[k]);
                                f->violations++;
                        }
                f->violations += check(when, after, after);
                f->iterations++;
        }
}

static unsigned env_uint(const char *name, unsigned def) {
        const char *v = getenv(name);
        return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

TestSuite(crash, .init = up, .fini = down, .timeout = 7200);

Test(crash, kill_9_anywhere_leaves_old_or_new_and_agent_and_store_agree) {
        Figures f = {};
        unsigned seed = env_uint("TEEP_CRASH_SEED", (unsigned)time(NULL) ^ (unsigned)getpid());
        unsigned iterations = env_uint("TEEP_CRASH_ITERATIONS", 50);
        uint64_t start = stack_now_ms();

        fprintf(stderr, "crash: seed %u (replay with TEEP_CRASH_SEED=%u), %u iterations", seed, seed, iterations);
        if (agent_idle_ms)
                fprintf(stderr, ", the agent resting after %u ms", agent_idle_ms);
        fputc('\n', stderr);
        run_crash(iterations, seed, &f);
        fprintf(stderr,
                "crash: %u iterations in %.1f s, seed %u; kills tried/landed: agent %u/%u, installer %u/%u, broker %u/%u; "
                "landed mid-commit: %u; interrupted commands that succeeded %u, failed cleanly %u; violations: %u\n",
                f.iterations, (double)(stack_now_ms() - start) / 1000.0, seed, f.kills[D_AGENT], f.landed[D_AGENT],
                f.kills[D_INSTALLER], f.landed[D_INSTALLER], f.kills[D_BROKER], f.landed[D_BROKER], f.mid_commit, f.ok_ops,
                f.failed_ops, f.violations);
        cr_assert_eq(f.violations, 0, "%u violations (seed %u)", f.violations, seed);
        cr_assert_eq(f.iterations, iterations);
        {
                /* the streamed TC did take the staged path (the installer logs to the bus's log) */
                _cleanup_free_ uint8_t *log = NULL;
                size_t len = 0;

                cr_assert_eq(read_full_file(stack_path(&stack, "log/dbus.log"), 64 << 20, &log, &len), 0);
                cr_assert(memmem(log, len, "(staged, no copy)", 17), "no staged install in %u iterations", iterations);
        }
}
