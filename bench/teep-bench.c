/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-bench.c: the measuring half of bench/run — crypto floor, HTTP round trips, install loops
 * and the concurrent-load driver against a running devstack, and a tiny file server for big
 * URI payloads. Prints figures; asserts nothing about time. See bench/README.md.
 *
 *   teep-bench crypto --iterations N --update-size BYTES
 *   teep-bench rtt URL N
 *   teep-bench install-loop --prefix P --count N --staging DIR --tcs DIR [--unrequest] [--cpu-pid PID]...
 *   teep-bench request COMPONENT...             (in order, each waited for; prints ns per request)
 *   teep-bench load --prefix P --tcs N --clients C --calls K --uid-base UID [--stop-pid PID] [--cpu-pid PID]...
 *                   [--match maker|finished|job]
 *   teep-bench serve DIR PORT_FILE LIFETIME_SEC
 *   teep-bench fsync DIR N [--swap]            (median of N atomic 4 KiB file replaces in DIR, and their CPU)
 *   teep-bench ping NAME PID N                 (N Peer.Ping calls to NAME: PID's CPU per call)
 *
 * Talks to $DBUS_SYSTEM_BUS_ADDRESS (source the devstack's env file first).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

#define BROKER_NAME  "org.teepkit.Broker1"
#define BROKER_PATH  "/org/teepkit/Broker1"
#define BROKER_IFACE "org.teepkit.Broker1"
#define JOB_IFACE    "org.teepkit.Broker1.Job"

/* No job of a benchmark may take longer than this (a stuck stack must not hang the run). */
#define JOB_TIMEOUT_USEC (600ull * 1000000ull)

/* A clock in ns (0 when it cannot be read) */
static uint64_t clock_ns(clockid_t id) {
        struct timespec ts;

        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) {
        return clock_ns(CLOCK_MONOTONIC);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) by nearest rank of n sorted values. */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned p) {
        size_t rank = (n * p + 99) / 100;
        return n == 0 ? 0 : sorted[rank == 0 ? 0 : rank - 1];
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;
        fputs("teep-bench: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

/* ---- crypto: the signature operations of one install session, with gnutls ---- */

typedef struct {
        gnutls_privkey_t priv;
        gnutls_pubkey_t pub;
} KeyPair;

static void keypair_new(KeyPair *k) {
        if (gnutls_privkey_init(&k->priv) < 0 ||
            gnutls_privkey_generate(k->priv, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
            gnutls_pubkey_init(&k->pub) < 0 || gnutls_pubkey_import_privkey(k->pub, k->priv, 0, 0) < 0)
                die("cannot make a P-256 key");
}

static void sign(const KeyPair *k, const gnutls_datum_t *data, gnutls_datum_t *sig) {
        if (gnutls_privkey_sign_data2(k->priv, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, data, sig) < 0)
                die("sign failed");
}

static void verify(const KeyPair *k, const gnutls_datum_t *data, const gnutls_datum_t *sig) {
        if (gnutls_pubkey_verify_data2(k->pub, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, data, sig) < 0)
                die("verify failed");
}

static gnutls_datum_t blob(size_t n, uint8_t fill) {
        gnutls_datum_t d = { .data = malloc(n ? n : 1), .size = (unsigned)n };
        if (!d.data)
                die("out of memory");
        memset(d.data, fill, n);
        return d;
}

/*
 * One ESP256 (ECDSA P-256, SHA-256) install session as the agent sees it, with the sizes of
 * the Sig_structures it signs or checks: verify the QueryRequest (TAM key), sign the
 * QueryResponse and the EAT inside it (device key), verify the Update (TAM key; it carries
 * the envelope and its integrated payload), verify the SUIT manifest's COSE_Sign1 (signer key,
 * over the digest), sign the Success. Prints the median session in ns and the parts.
 */
static int cmd_crypto(int argc, char **argv) {
        unsigned iterations = 200;
        size_t update_size = 512;
        KeyPair tam, signer, device;
        gnutls_datum_t qr, qresp, eat, upd, suit, ok, s_qr, s_upd, s_suit;
        uint64_t *times, sign_ns = 0, verify_ns = 0;

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
                        iterations = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--update-size") == 0 && i + 1 < argc)
                        update_size = (size_t)strtoull(argv[++i], NULL, 10);
                else
                        die("crypto: unknown argument %s", argv[i]);
        }
        if (iterations == 0)
                die("crypto: --iterations must be positive");
        keypair_new(&tam);
        keypair_new(&signer);
        keypair_new(&device);
        qr = blob(160, 1);
        qresp = blob(420, 2);
        eat = blob(300, 3);
        upd = blob(update_size + 200, 4);
        suit = blob(110, 5);
        ok = blob(90, 6);
        sign(&tam, &qr, &s_qr);
        sign(&tam, &upd, &s_upd);
        sign(&signer, &suit, &s_suit);
        times = calloc(iterations, sizeof(*times));
        if (!times)
                die("out of memory");
        for (unsigned i = 0; i < iterations + 5; i++) { /* 5 warm-up rounds, not counted */
                gnutls_datum_t a, b, c;
                uint64_t t0 = now_ns(), t1, t2;

                verify(&tam, &qr, &s_qr);
                t1 = now_ns();
                sign(&device, &eat, &a);
                sign(&device, &qresp, &b);
                t2 = now_ns();
                verify(&tam, &upd, &s_upd);
                verify(&signer, &suit, &s_suit);
                uint64_t t3 = now_ns();
                sign(&device, &ok, &c);
                uint64_t t4 = now_ns();
                gnutls_free(a.data);
                gnutls_free(b.data);
                gnutls_free(c.data);
                if (i < 5)
                        continue;
                times[i - 5] = t4 - t0;
                verify_ns += (t1 - t0) + (t3 - t2);
                sign_ns += (t2 - t1) + (t4 - t3);
        }
        qsort(times, iterations, sizeof(*times), cmp_u64);
        printf("session_ns=%" PRIu64 " min_ns=%" PRIu64 " sign3_ns=%" PRIu64 " verify3_ns=%" PRIu64
               " iterations=%u update_bytes=%zu\n",
               percentile(times, iterations, 50), times[0], sign_ns / iterations, verify_ns / iterations, iterations,
               (size_t)upd.size);
        free(times);
        return 0;
}

/* ---- rtt: loopback HTTP round trips with libcurl, one kept-alive connection ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

static int cmd_rtt(int argc, char **argv) {
        unsigned n;
        uint64_t *times;
        CURL *c;

        if (argc != 2)
                die("usage: rtt URL N");
        n = (unsigned)strtoul(argv[1], NULL, 10);
        if (n == 0)
                die("rtt: N must be positive");
        times = calloc(n, sizeof(*times));
        c = curl_easy_init();
        if (!times || !c)
                die("out of memory");
        curl_easy_setopt(c, CURLOPT_URL, argv[0]);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        for (unsigned i = 0; i < n + 5; i++) {
                uint64_t t0 = now_ns();
                long status = 0;
                CURLcode e = curl_easy_perform(c);

                if (e != CURLE_OK)
                        die("rtt: %s: %s", argv[0], curl_easy_strerror(e));
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                if (status != 200)
                        die("rtt: %s answered HTTP %ld", argv[0], status);
                if (i >= 5)
                        times[i - 5] = now_ns() - t0;
        }
        curl_easy_cleanup(c);
        qsort(times, n, sizeof(*times), cmp_u64);
        printf("rtt_ns=%" PRIu64 " p99_ns=%" PRIu64 " n=%u\n", percentile(times, n, 50), percentile(times, n, 99), n);
        free(times);
        return 0;
}

/* ---- fsync: what one durable small file replace costs on this file system ---- */

/* CPU time (ns) this process has used so far, user and system (the kernel's work of an fsync
 * is done in the caller's context and counts here) */
static uint64_t self_cpu_ns(void) {
        return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/*
 * The pattern the agent and the installer use for every file they keep: write a temporary
 * file, fsync it, rename it over the old one, fsync the directory. Median of N in DIR, and the
 * mean CPU time (user and system) one replace costs the process that makes it. --swap: the
 * agent's state file instead (write_file_swap_at(): a spare rewritten in place, fdatasync'ed,
 * exchanged with the file, the directory fsync'ed).
 */
static int cmd_fsync(int argc, char **argv) {
        char block[4096];
        unsigned n;
        uint64_t *times, cpu0, cpu;
        bool swap = false;
        int dir_fd;

        if (argc == 3 && strcmp(argv[2], "--swap") == 0)
                swap = true;
        else if (argc != 2)
                die("usage: fsync DIR N [--swap]");
        n = (unsigned)strtoul(argv[1], NULL, 10);
        if (n == 0)
                die("fsync: N must be positive");
        dir_fd = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        times = calloc(n, sizeof(*times));
        if (dir_fd < 0 || !times)
                die("fsync: %s: %m", argv[0]);
        memset(block, 0x5a, sizeof(block));
        cpu0 = self_cpu_ns();
        for (unsigned i = 0; i < n; i++) {
                uint64_t t0 = now_ns();

                if (swap) {
                        int r = write_file_swap_at(dir_fd, ".teep-bench-file", ".teep-bench-spare", block, sizeof(block),
                                                   0600, true);
                        if (r < 0)
                                die("fsync: %s: %s", argv[0], strerror(-r));
                } else {
                        int fd = openat(dir_fd, ".teep-bench-tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                        if (fd < 0 || write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fsync(fd) < 0 ||
                            close(fd) < 0 || renameat(dir_fd, ".teep-bench-tmp", dir_fd, ".teep-bench-file") < 0 ||
                            fsync(dir_fd) < 0)
                                die("fsync: %s: %m", argv[0]);
                }
                times[i] = now_ns() - t0;
        }
        cpu = (self_cpu_ns() - cpu0) / n;
        (void)unlinkat(dir_fd, ".teep-bench-file", 0);
        (void)unlinkat(dir_fd, ".teep-bench-spare", 0);
        close(dir_fd);
        qsort(times, n, sizeof(*times), cmp_u64);
        printf("fsync_ns=%" PRIu64 " p99_ns=%" PRIu64 " cpu_ns=%" PRIu64 " n=%u\n", percentile(times, n, 50),
               percentile(times, n, 99), cpu, n);
        free(times);
        return 0;
}

/* ---- jobs on the broker ---- */

typedef struct {
        char path[128];
        char result[64];
        char error[256];
        bool done;
} Job;

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *result = NULL, *ename = NULL, *emsg = NULL;

        if (strcmp(sd_bus_message_get_path(m) ?: "", j->path) != 0)
                return 0;
        if (sd_bus_message_read(m, "sss", &result, &ename, &emsg) < 0)
                return 0;
        snprintf(j->result, sizeof(j->result), "%s", result);
        snprintf(j->error, sizeof(j->error), "%s%s%s", ename, *ename ? ": " : "", emsg);
        j->done = true;
        return 0;
}

/* Wait until every job in jobs[] is done (their Finished matches are in place). */
static int wait_jobs(sd_bus *bus, Job *jobs, size_t n) {
        uint64_t deadline = now_ns() + JOB_TIMEOUT_USEC * 1000ull;

        for (;;) {
                size_t left = 0;
                int r;

                for (size_t i = 0; i < n; i++)
                        left += !jobs[i].done;
                if (left == 0)
                        return 0;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (now_ns() >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, 1000000);
                if (r < 0 && r != -EINTR)
                        return r;
        }
}

/* Call RequestTA or UnrequestTA; store the job path. The caller has a Finished match already. */
static int call_job(sd_bus *bus, const char *method, const char *component, Job *j) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        int r;

        *j = (Job){};
        if (strcmp(method, "RequestTA") == 0)
                r = sd_bus_call_method(bus, BROKER_NAME, BROKER_PATH, BROKER_IFACE, method, &e, &reply, "sasa{sv}",
                                       component, 0, 0);
        else
                r = sd_bus_call_method(bus, BROKER_NAME, BROKER_PATH, BROKER_IFACE, method, &e, &reply, "sa{sv}",
                                       component, 0);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                snprintf(j->path, sizeof(j->path), "%s", path);
        else
                fprintf(stderr, "teep-bench: %s %s: %s\n", method, component, e.message ?: strerror(-r));
        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        return r;
}

static sd_bus *bus_open(void) {
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0)
                die("cannot connect to the system bus (%s): %s", getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "default",
                    strerror(-r));
        return bus;
}

/* CPU time (ns) a process has used so far: the sum of its threads' schedstat run times. */
static uint64_t proc_cpu_ns(pid_t pid) {
        char path[64];
        uint64_t sum = 0;
        DIR *d;
        struct dirent *de;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        d = opendir(path);
        if (!d)
                die("cannot read %s: %m", path);
        while ((de = readdir(d))) {
                char p[320];
                unsigned long long run = 0;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
                f = fopen(p, "re");
                if (!f)
                        continue;
                if (fscanf(f, "%llu", &run) == 1)
                        sum += run;
                fclose(f);
        }
        closedir(d);
        return sum;
}

/* --cpu-pid PID, at most this many: processes whose CPU time a command reports */
#define BENCH_CPU_PIDS_MAX 8

/* Take "--cpu-pid PID" at argv[*i] into pids (moving *i past it); false when argv[*i] is not
 * one, or there are BENCH_CPU_PIDS_MAX already. */
static bool take_cpu_pid(int argc, char **argv, int *i, pid_t pids[BENCH_CPU_PIDS_MAX], unsigned *n) {
        if (strcmp(argv[*i], "--cpu-pid") != 0 || *i + 1 >= argc || *n >= BENCH_CPU_PIDS_MAX)
                return false;
        pids[(*n)++] = (pid_t)strtol(argv[++*i], NULL, 10);
        return true;
}

/* utime and stime of a process in clock ticks (/proc/PID/stat fields 14 and 15). */
static void proc_ticks(pid_t pid, unsigned long long *ret_user, unsigned long long *ret_sys) {
        char path[64], buf[1024], *p;
        FILE *f;
        size_t n;

        *ret_user = *ret_sys = 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* the command name may hold spaces */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", ret_user, ret_sys) != 2)
                *ret_user = *ret_sys = 0;
}

/* One job, start to Finished. Returns its wall time in ns; dies on failure unless ok_results. */
static uint64_t run_job(sd_bus *bus, const char *method, const char *component, const char *want) {
        Job j;
        sd_bus_slot *slot = NULL;
        uint64_t t0;
        int r;

        r = sd_bus_match_signal(bus, &slot, BROKER_NAME, NULL, JOB_IFACE, "Finished", on_finished, &j);
        if (r < 0)
                die("cannot add a match: %s", strerror(-r));
        t0 = now_ns();
        if (call_job(bus, method, component, &j) < 0)
                exit(1);
        r = wait_jobs(bus, &j, 1);
        t0 = now_ns() - t0;
        sd_bus_slot_unref(slot);
        if (r < 0)
                die("%s %s: %s", method, component, strerror(-r));
        if (want && strcmp(j.result, want) != 0)
                die("%s %s: result %s, wanted %s (%s)", method, component, j.result, want, j.error);
        return t0;
}

static void move_file(const char *from_dir, const char *to_dir, const char *name) {
        char a[4096], b[4096];

        snprintf(a, sizeof(a), "%s/%s", from_dir, name);
        snprintf(b, sizeof(b), "%s/%s", to_dir, name);
        if (rename(a, b) < 0)
                die("rename %s %s: %m", a, b);
}

/*
 * Install count TCs named PREFIX-i one after another (envelope PREFIX-i.suit moved from the
 * staging directory into the TAM's catalog just before, and back after, so the TAM's catalog
 * stays one envelope long). With --unrequest each is removed again (untimed) so every install
 * starts from the same device state. Prints one line per install: i wall_ns cpu_ns... (the CPU
 * time each --cpu-pid process used from the call to its Finished, plus 20 ms to settle), then
 * for each --cpu-pid its user and system clock ticks over the same window.
 */
static int cmd_install_loop(int argc, char **argv) {
        const char *prefix = NULL, *staging = NULL, *tcs = NULL;
        unsigned count = 0, n_pids = 0;
        pid_t pids[BENCH_CPU_PIDS_MAX];
        bool unrequest = false;
        sd_bus *bus;

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
                        prefix = argv[++i];
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--staging") == 0 && i + 1 < argc)
                        staging = argv[++i];
                else if (strcmp(argv[i], "--tcs") == 0 && i + 1 < argc)
                        tcs = argv[++i];
                else if (strcmp(argv[i], "--unrequest") == 0)
                        unrequest = true;
                else if (!take_cpu_pid(argc, argv, &i, pids, &n_pids))
                        die("install-loop: unknown argument %s", argv[i]);
        }
        if (!prefix || !staging || !tcs || count == 0)
                die("install-loop needs --prefix, --count, --staging and --tcs");
        bus = bus_open();
        for (unsigned i = 0; i < count; i++) {
                char component[256], file[300];
                uint64_t cpu0[BENCH_CPU_PIDS_MAX], wall;
                unsigned long long u0[BENCH_CPU_PIDS_MAX], s0[BENCH_CPU_PIDS_MAX];
                const struct timespec settle = { .tv_nsec = 20 * 1000 * 1000 };

                snprintf(component, sizeof(component), "%s-%u", prefix, i);
                snprintf(file, sizeof(file), "%s-%u.suit", strrchr(prefix, '/') ? strrchr(prefix, '/') + 1 : prefix, i);
                move_file(staging, tcs, file);
                for (unsigned p = 0; p < n_pids; p++) {
                        cpu0[p] = proc_cpu_ns(pids[p]);
                        proc_ticks(pids[p], &u0[p], &s0[p]);
                }
                wall = run_job(bus, "RequestTA", component, "installed");
                (void)nanosleep(&settle, NULL);
                printf("%u %" PRIu64, i, wall);
                for (unsigned p = 0; p < n_pids; p++)
                        printf(" %" PRIu64, proc_cpu_ns(pids[p]) - cpu0[p]);
                for (unsigned p = 0; p < n_pids; p++) {
                        unsigned long long u1, s1;
                        proc_ticks(pids[p], &u1, &s1);
                        printf(" %llu %llu", u1 - u0[p], s1 - s0[p]);
                }
                printf("\n");
                fflush(stdout);
                if (unrequest)
                        (void)run_job(bus, "UnrequestTA", component, "removed");
                move_file(tcs, staging, file);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* Request each component in turn, waiting for it; print its wall time in ns. */
static int cmd_request(int argc, char **argv) {
        sd_bus *bus = bus_open();

        for (int i = 0; i < argc; i++)
                printf("%s %" PRIu64 "\n", argv[i], run_job(bus, "RequestTA", argv[i], "installed"));
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* ---- load: C clients (each its own uid and bus connection), K RequestTA calls each ---- */

/*
 * One client: its connection and its match are set up before the start (an app that needs a
 * TC is on the bus already; the figure is about the calls), then K RequestTA calls: sent
 * together, without waiting for each answer (--match maker and finished; one after the other
 * with --match job), then wait for all K jobs; exit 0 when every job ended installed or
 * already-installed. How it learns the outcomes (--match):
 *
 *   maker (default)  ONE rule on its connection, added before its first call: Broker1's
 *                    JobFinished, which the broker addresses to the connection that made the
 *                    job; filtered by path here. The bus delivers each outcome once, to its
 *                    maker: per job a call, its reply and one signal.
 *   finished         ONE rule for every job's Finished, filtered by path here: each client
 *                    receives every client's outcomes (C deliveries per job).
 *   job              a rule per job path added after the call, then Get(Result) (the job may
 *                    have ended before the rule was in place); neither waits.
 *
 * An outcome for a path not known yet is remembered (recent ones, a bounded ring): the broker
 * answers a call before it can finish the job, but a client that makes its calls
 * asynchronously may see them the other way round.
 */
#define LOAD_EARLY_MAX 256

typedef enum { LOAD_MATCH_MAKER, LOAD_MATCH_FINISHED, LOAD_MATCH_JOB } LoadMatch;

typedef struct {
        sd_bus *bus;
        LoadMatch match;
        Job *jobs;
        unsigned n_jobs;     /* calls made so far (a job's path is "" until its call is answered) */
        Job early[LOAD_EARLY_MAX];
        unsigned n_early;
        int failed_calls;
} LoadClient;

/* The answer to an asynchronous RequestTA: the job's path, and its outcome if it came first. */
static void load_take_early(LoadClient *c, Job *j) {
        for (unsigned e = 0; e < LOAD_EARLY_MAX && e < c->n_early; e++)
                if (c->early[e].path[0] && strcmp(c->early[e].path, j->path) == 0) {
                        *j = c->early[e];
                        c->early[e].path[0] = '\0';
                        return;
                }
}

static int on_load_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LoadClient *c = userdata;
        const char *path = sd_bus_message_get_path(m), *result = NULL, *ename = NULL, *emsg = NULL;
        Job *j = NULL;

        if (sd_bus_message_is_signal(m, BROKER_IFACE, "JobFinished")) {
                if (sd_bus_message_read(m, "osss", &path, &result, &ename, &emsg) < 0)
                        return 0;
        } else if (!path || sd_bus_message_read(m, "sss", &result, &ename, &emsg) < 0)
                return 0;
        for (unsigned k = 0; k < c->n_jobs && !j; k++)
                if (!c->jobs[k].done && strcmp(c->jobs[k].path, path) == 0)
                        j = &c->jobs[k];
        if (!j) {
                j = &c->early[c->n_early++ % LOAD_EARLY_MAX];
                snprintf(j->path, sizeof(j->path), "%s", path);
        }
        snprintf(j->result, sizeof(j->result), "%s", result);
        snprintf(j->error, sizeof(j->error), "%s%s%s", ename, *ename ? ": " : "", emsg);
        j->done = true;
        return 0;
}

typedef struct {
        LoadClient *c;
        Job *job;
} LoadCall;

static int on_request_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LoadCall *call = userdata;
        const char *path = NULL;

        if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read(m, "o", &path) < 0) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                fprintf(stderr, "teep-bench: RequestTA: %s\n", e && e->message ? e->message : "bad answer");
                call->c->failed_calls++;
                snprintf(call->job->result, sizeof(call->job->result), "call-failed");
                call->job->done = true;
                return 0;
        }
        snprintf(call->job->path, sizeof(call->job->path), "%s", path);
        load_take_early(call->c, call->job);
        return 0;
}

/* The answer to Get(Result): "" while the job runs (Finished will tell), else its result. */
static int on_result(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *result = NULL;

        if (j->done || sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read(m, "v", "s", &result) < 0 ||
            !*result)
                return 0;
        snprintf(j->result, sizeof(j->result), "%s", result);
        j->done = true;
        return 0;
}

/* Before the start: the connection and the match (a client that cannot is a failed client). */
static LoadClient *load_client_open(unsigned calls, LoadMatch match) {
        LoadClient *c = calloc(1, sizeof(*c));
        int r = 0;

        if (!c || !(c->jobs = calloc(calls, sizeof(Job))))
                return NULL;
        c->bus = bus_open();
        c->match = match;
        if (match == LOAD_MATCH_MAKER)
                r = sd_bus_match_signal(c->bus, NULL, BROKER_NAME, BROKER_PATH, BROKER_IFACE, "JobFinished",
                                        on_load_finished, c);
        else if (match == LOAD_MATCH_FINISHED)
                r = sd_bus_match_signal(c->bus, NULL, BROKER_NAME, NULL, JOB_IFACE, "Finished", on_load_finished, c);
        return r < 0 ? NULL : c;
}

/* done_fd: where the client writes the time (CLOCK_MONOTONIC ns) its last job finished, and
 * the CPU time it used from the start until then (two uint64_t: one atomic pipe write) */
static int load_client(LoadClient *c, const char *prefix, unsigned client, unsigned calls, unsigned n_tcs, int done_fd) {
        sd_bus *bus = c->bus;
        bool per_job = c->match == LOAD_MATCH_JOB;
        LoadCall *pending = calloc(calls, sizeof(*pending));
        uint64_t cpu_start = self_cpu_ns();
        int bad = 0, r = 0;

        if (!pending)
                return 2;
        if (!per_job) {
                for (unsigned k = 0; k < calls; k++) {
                        char component[256];

                        snprintf(component, sizeof(component), "%s-%u", prefix, (client * calls + k) % n_tcs);
                        pending[k] = (LoadCall){ .c = c, .job = &c->jobs[k] };
                        r = sd_bus_call_method_async(bus, NULL, BROKER_NAME, BROKER_PATH, BROKER_IFACE, "RequestTA",
                                                     on_request_reply, &pending[k], "sasa{sv}", component, 0, 0);
                        if (r < 0)
                                return 3;
                        c->n_jobs = k + 1;
                }
        }
        /* --match job: one call at a time, a match for its job's path, then its Result (it may
         * have ended before the match was in place). Neither waits: the bus handles our AddMatch
         * before it passes our Get on, so the Result read is taken after the match is in place. */
        for (unsigned k = 0; per_job && k < calls; k++) {
                char component[256];

                snprintf(component, sizeof(component), "%s-%u", prefix, (client * calls + k) % n_tcs);
                if (call_job(bus, "RequestTA", component, &c->jobs[k]) < 0)
                        return 3;
                c->n_jobs = k + 1;
                r = sd_bus_match_signal_async(bus, NULL, BROKER_NAME, c->jobs[k].path, JOB_IFACE, "Finished",
                                              on_finished, NULL, &c->jobs[k]);
                if (r >= 0)
                        r = sd_bus_call_method_async(bus, NULL, BROKER_NAME, c->jobs[k].path,
                                                     "org.freedesktop.DBus.Properties", "Get", on_result, &c->jobs[k],
                                                     "ss", JOB_IFACE, "Result");
                if (r < 0)
                        return 3;
        }
        if (wait_jobs(bus, c->jobs, calls) < 0)
                return 4;
        {
                uint64_t t[2] = { now_ns(), self_cpu_ns() - cpu_start };
                (void)write(done_fd, t, sizeof(t));
        }
        for (unsigned k = 0; k < calls; k++)
                if (strcmp(c->jobs[k].result, "installed") != 0 && strcmp(c->jobs[k].result, "already-installed") != 0) {
                        fprintf(stderr, "teep-bench: client %u job %s: %s %s\n", client, c->jobs[k].path,
                                c->jobs[k].result, c->jobs[k].error);
                        bad = 1;
                }
        free(pending);
        sd_bus_flush_close_unref(bus);
        free(c->jobs);
        free(c);
        return bad ? 5 : 0;
}

/*
 * Fork the clients (uid uid_base+i each, so the per-user job limit is one client's), let them
 * all go at once, and print the wall time until the last one has the outcome of its last job
 * (total_ns; exit_ns: until the last client process is gone). With --stop-pid, that
 * process (the TAM) is stopped while the clients make their calls and continued once they all
 * have their jobs: the time then starts at the continue (one session carrying everything).
 */
static int cmd_load(int argc, char **argv) {
        const char *prefix = NULL;
        unsigned n_tcs = 0, clients = 0, calls = 0;
        uid_t uid_base = 0;
        pid_t stop_pid = 0, *kids, cpu_pids[BENCH_CPU_PIDS_MAX];
        uint64_t cpu0[BENCH_CPU_PIDS_MAX] = { 0 };
        unsigned n_pids = 0;
        LoadMatch match = LOAD_MATCH_MAKER;
        int go[2], ready[2], done[2], failed = 0;
        uint64_t t0, t_last = 0, t[2], exit_ns, client_cpu = 0;
        unsigned n_done = 0;

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
                        prefix = argv[++i];
                else if (strcmp(argv[i], "--tcs") == 0 && i + 1 < argc)
                        n_tcs = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
                        clients = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
                        calls = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--uid-base") == 0 && i + 1 < argc)
                        uid_base = (uid_t)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--stop-pid") == 0 && i + 1 < argc)
                        stop_pid = (pid_t)strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--match") == 0 && i + 1 < argc) {
                        i++;
                        if (strcmp(argv[i], "maker") == 0)
                                match = LOAD_MATCH_MAKER;
                        else if (strcmp(argv[i], "finished") == 0)
                                match = LOAD_MATCH_FINISHED;
                        else if (strcmp(argv[i], "job") == 0)
                                match = LOAD_MATCH_JOB;
                        else
                                die("load: --match maker|finished|job, not %s", argv[i]);
                } else if (!take_cpu_pid(argc, argv, &i, cpu_pids, &n_pids))
                        die("load: unknown argument %s", argv[i]);
        }
        if (!prefix || n_tcs == 0 || clients == 0 || calls == 0 || uid_base == 0)
                die("load needs --prefix, --tcs, --clients, --calls and --uid-base");
        kids = calloc(clients, sizeof(*kids));
        if (!kids || pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0)
                die("out of resources");
        fflush(NULL);
        for (unsigned c = 0; c < clients; c++) {
                pid_t pid = fork();
                if (pid < 0)
                        die("fork: %m");
                if (pid == 0) {
                        char byte;
                        uid_t uid = uid_base + c;
                        LoadClient *lc = NULL;
                        close(go[1]);
                        close(ready[0]);
                        close(done[0]);
                        alarm(JOB_TIMEOUT_USEC / 1000000ull + 90);
                        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0 ||
                            !(lc = load_client_open(calls, match))) {
                                (void)write(ready[1], "x", 1); /* the parent gives up */
                                _exit(6);
                        }
                        (void)write(ready[1], "r", 1);
                        if (read(go[0], &byte, 1) < 0) /* EOF: go */
                                _exit(6);
                        _exit(load_client(lc, prefix, c, calls, n_tcs, done[1]));
                }
                kids[c] = pid;
        }
        close(go[0]);
        close(ready[1]);
        close(done[1]);
        for (unsigned c = 0; c < clients; c++) {
                char byte;
                if (read(ready[0], &byte, 1) != 1 || byte != 'r')
                        die("a client did not start (uid or bus connection)");
        }
        if (stop_pid > 0 && kill(stop_pid, SIGSTOP) < 0)
                die("cannot stop %d: %m", (int)stop_pid);
        for (unsigned p = 0; p < n_pids; p++)
                cpu0[p] = proc_cpu_ns(cpu_pids[p]);
        t0 = now_ns();
        close(go[1]); /* everyone goes */
        if (stop_pid > 0) {
                /* every client has its jobs once each one is past its calls: wait for the
                 * broker to hold clients*calls unfinished jobs, read from the jobs' paths is
                 * not possible from here, so poll the agent's request count instead. */
                sd_bus *bus = bus_open();
                uint64_t deadline = now_ns() + 60ull * 1000000000ull;
                for (;;) {
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = NULL;
                        unsigned n = 0;
                        int r = sd_bus_get_property(bus, BROKER_NAME, BROKER_PATH, BROKER_IFACE, "Requests", &e,
                                                    &reply, "a(ss)");
                        if (r >= 0 && sd_bus_message_enter_container(reply, 'a', "(ss)") >= 0)
                                while (sd_bus_message_skip(reply, "(ss)") > 0)
                                        n++;
                        sd_bus_message_unref(reply);
                        sd_bus_error_free(&e);
                        if (n >= clients * calls || now_ns() > deadline)
                                break;
                        usleep(2000);
                }
                sd_bus_flush_close_unref(bus);
                for (unsigned p = 0; p < n_pids; p++)
                        cpu0[p] = proc_cpu_ns(cpu_pids[p]);
                t0 = now_ns();
                if (kill(stop_pid, SIGCONT) < 0)
                        die("cannot continue %d: %m", (int)stop_pid);
        }
        for (unsigned c = 0; c < clients; c++) {
                int status;
                while (waitpid(kids[c], &status, 0) < 0)
                        if (errno != EINTR)
                                die("waitpid: %m");
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "teep-bench: client %u failed (status 0x%x)\n", c, (unsigned)status);
                        failed++;
                }
        }
        /* The time is until the last job's Finished reached its client, not until the last
         * client process is gone: a process's exit (its bus connection torn down, the bus
         * daemon telling everyone) is not what a caller waits for. Each client wrote its time
         * before it exits; all are in the pipe now (EOF once the last one is gone). */
        exit_ns = now_ns() - t0;
        while (read(done[0], t, sizeof(t)) == (ssize_t)sizeof(t)) {
                n_done++;
                if (t[0] > t_last)
                        t_last = t[0];
                client_cpu += t[1];
        }
        close(done[0]);
        /* start_mono_ns: the start on CLOCK_MONOTONIC, which the daemons' log lines carry
         * under TEEP_LOG_TIME=1 (bench/run reads the load's phases from them) */
        printf("total_ns=%" PRIu64 " exit_ns=%" PRIu64 " clients=%u calls=%u failed_clients=%d client_cpu_ns=%" PRIu64
               " start_mono_ns=%" PRIu64,
               n_done == clients && t_last > t0 ? t_last - t0 : exit_ns, exit_ns, clients, calls, failed, client_cpu, t0);
        /* each --cpu-pid's CPU time from the start until the last client has exited */
        for (unsigned p = 0; p < n_pids; p++)
                if (kill(cpu_pids[p], 0) == 0) /* one that has gone (an idle exit) has no figure */
                        printf(" cpu%u_ns=%" PRIu64, p, proc_cpu_ns(cpu_pids[p]) - cpu0[p]);
        printf("\n");
        free(kids);
        return failed ? 1 : 0;
}

/* ---- serve: GET /NAME from DIR with sendfile, 127.0.0.1 only, for big URI payloads ---- */

static void serve_one(int dir_fd, int c) {
        char req[8192], name[256], head[256];
        size_t got = 0;
        struct stat st;
        off_t off = 0;
        int fd;

        while (got < sizeof(req) - 1) {
                ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
                if (n <= 0)
                        return;
                got += (size_t)n;
                req[got] = '\0';
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        if (sscanf(req, "GET /%255[A-Za-z0-9._-] HTTP/1.", name) != 1 || name[0] == '.' ||
            (fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                (void)write(c, nf, sizeof(nf) - 1);
                return;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return;
        }
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %lld\r\n"
                 "Connection: close\r\n\r\n",
                 (long long)st.st_size);
        if (write(c, head, strlen(head)) == (ssize_t)strlen(head))
                while (off < st.st_size)
                        if (sendfile(c, fd, &off, (size_t)(st.st_size - off)) <= 0)
                                break;
        close(fd);
}

static int cmd_serve(int argc, char **argv) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        int s, dir_fd;
        FILE *f;

        if (argc != 3)
                die("usage: serve DIR PORT_FILE LIFETIME_SEC");
        dir_fd = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (dir_fd < 0 || s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0 ||
            getsockname(s, (struct sockaddr *)&a, &alen) < 0)
                die("serve: cannot listen on 127.0.0.1: %m");
        alarm((unsigned)strtoul(argv[2], NULL, 10)); /* bounded lifetime: SIGALRM ends us */
        signal(SIGPIPE, SIG_IGN);
        f = fopen(argv[1], "we");
        if (!f)
                die("serve: %s: %m", argv[1]);
        fprintf(f, "%u\n", (unsigned)ntohs(a.sin_port));
        fclose(f);
        for (;;) {
                int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        die("serve: accept: %m");
                }
                serve_one(dir_fd, c);
                close(c);
        }
}

/* ---- ping: what answering one bus call costs a daemon ---- */

/*
 * N calls of org.freedesktop.DBus.Peer.Ping to NAME, one after the other, each waited for; the
 * CPU time PID (NAME's owner) used over them, per call. sd-bus answers Ping itself, before any
 * object lookup: what every call costs the callee at least (two messages through the bus
 * socket, a wake-up, the dispatch), none of its own work.
 */
static int cmd_ping(int argc, char **argv) {
        sd_bus *bus;
        unsigned n;
        pid_t pid;
        uint64_t cpu0 = 0, t0 = 0, cpu, wall;

        if (argc != 3)
                die("usage: ping NAME PID N");
        pid = (pid_t)strtol(argv[1], NULL, 10);
        n = (unsigned)strtoul(argv[2], NULL, 10);
        if (pid <= 0 || n == 0)
                die("ping: PID and N must be positive");
        bus = bus_open();
        for (unsigned i = 0; i < n + 20; i++) { /* 20 warm-up calls, not counted */
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r;

                if (i == 20) {
                        cpu0 = proc_cpu_ns(pid);
                        t0 = now_ns();
                }
                r = sd_bus_call_method(bus, argv[0], "/", "org.freedesktop.DBus.Peer", "Ping", &e, NULL, "");
                if (r < 0)
                        die("ping: %s: %s", argv[0], e.message ?: strerror(-r));
                sd_bus_error_free(&e);
        }
        wall = (now_ns() - t0) / n;
        cpu = (proc_cpu_ns(pid) - cpu0) / n;
        printf("callee_cpu_ns=%" PRIu64 " wall_ns=%" PRIu64 " n=%u\n", cpu, wall, n);
        sd_bus_flush_close_unref(bus);
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *verb;
                int (*fn)(int argc, char **argv);
        } verbs[] = {
                { "crypto", cmd_crypto }, { "rtt", cmd_rtt },         { "install-loop", cmd_install_loop },
                { "request", cmd_request }, { "load", cmd_load },   { "serve", cmd_serve },
                { "fsync", cmd_fsync }, { "ping", cmd_ping },
        };

        if (argc < 2)
                die("usage: teep-bench crypto|rtt|install-loop|request|load|serve|fsync|ping ARGS... (see bench/README.md)");
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strcmp(argv[1], verbs[i].verb) == 0)
                        return verbs[i].fn(argc - 2, argv + 2);
        die("unknown verb %s", argv[1]);
}
