/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync.c: `teepctl sync` — make the broker's package-owned requests match requests.d (dpkg trigger) */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "bus-util.h"
#include "bus.h"
#include "conf.h"
#include "macro.h"
#include "requests.h"
#include "teepctl.h"

/* The broker keeps at most this many jobs; more entries in its job list is a broken answer. */
#define MAX_JOBS_LISTED 8192u

typedef struct SyncArgs {
        const char *root;
        const char *dir;
        bool no_block;
        bool dry_run;
        bool trigger;   /* run by dpkg (DPKG_MAINTSCRIPT_NAME set): never fail, log to the journal */
        uint64_t timeout_usec;
} SyncArgs;

/* One line for a person (stdout for progress, stderr for problems) and, from dpkg, the journal:
 * dpkg's terminal output scrolls away, the journal keeps it. */
static void say(const SyncArgs *a, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const SyncArgs *a, int prio, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (prio <= LOG_WARNING) {
                fputs("teepctl sync: ", stderr);
                vfprintf(stderr, fmt, ap);
                fputc('\n', stderr);
        } else {
                vprintf(fmt, ap);
                putchar('\n');
                fflush(stdout);
        }
        va_end(ap);
        if (a->trigger) {
                va_start(ap, fmt);
                (void)sd_journal_printv(prio, fmt, ap);
                va_end(ap);
        }
}

static int usage(void) {
        fprintf(stderr, "Usage: teepctl sync [--root DIR] [--dir DIR] [--no-block|--block] [--dry-run] "
                        "[--timeout SEC]\n");
        return EXIT_USAGE;
}

static int parse(int argc, char **argv, SyncArgs *a) {
        enum { ARG_ROOT = 0x100, ARG_DIR, ARG_NO_BLOCK, ARG_BLOCK, ARG_DRY_RUN, ARG_TIMEOUT };
        static const struct option options[] = {
                { "root", required_argument, NULL, ARG_ROOT },
                { "dir", required_argument, NULL, ARG_DIR },
                { "no-block", no_argument, NULL, ARG_NO_BLOCK },
                { "block", no_argument, NULL, ARG_BLOCK },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *maintscript = getenv("DPKG_MAINTSCRIPT_NAME");
        int c;

        a->trigger = maintscript && *maintscript;
        /* from dpkg: queue the jobs and let dpkg go on; the TAM may be slow or far away */
        a->no_block = a->trigger;
        a->root = getenv("DPKG_ROOT");
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_ROOT:
                        a->root = optarg;
                        break;
                case ARG_DIR:
                        a->dir = optarg;
                        break;
                case ARG_NO_BLOCK:
                        a->no_block = true;
                        break;
                case ARG_BLOCK:
                        a->no_block = false;
                        break;
                case ARG_DRY_RUN:
                        a->dry_run = true;
                        break;
                case ARG_TIMEOUT:
                        if (teep_parse_usec(optarg, &a->timeout_usec) < 0) {
                                fprintf(stderr, "teepctl: --timeout: not a time span: %s\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        usage();
                        return -1;
                default:
                        return usage();
                }
        if (optind != argc)
                return usage();
        return 0;
}

/* ---- what the broker has now ---- */

typedef struct Owned {
        char *package;
        char *component;
} Owned;

typedef struct Current {
        Owned *v;
        size_t n;
} Current;

static void current_done(Current *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->v[i].package);
                free(c->v[i].component);
        }
        free(c->v);
        *c = (Current){};
}

static bool current_has(const Current *c, const char *package, const char *component, size_t *ret_i) {
        for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->v[i].package, package) == 0 && strcmp(c->v[i].component, component) == 0) {
                        if (ret_i)
                                *ret_i = i;
                        return true;
                }
        return false;
}

/* Record that requester owns component, if requester is a package. */
static int current_add(Current *c, const char *requester, const char *component) {
        Owned *n;

        if (strncmp(requester, "package:", 8) != 0 || current_has(c, requester + 8, component, NULL))
                return 0;
        n = realloc(c->v, (c->n + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->v = n;
        n[c->n] = (Owned){ .package = strdup(requester + 8), .component = strdup(component) };
        if (!n[c->n].package || !n[c->n].component) {
                free(n[c->n].package);
                free(n[c->n].component);
                return -ENOMEM;
        }
        c->n++;
        return 0;
}

static void current_remove(Current *c, const char *requester, const char *component) {
        size_t i;

        if (strncmp(requester, "package:", 8) != 0 || !current_has(c, requester + 8, component, &i))
                return;
        free(c->v[i].package);
        free(c->v[i].component);
        c->v[i] = c->v[--c->n];
}

/* The agent's recorded requests, as the broker republishes them (Broker1.Requests). */
static int read_recorded(sd_bus *bus, Current *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *agent_version = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *component, *requester;
        int r;

        /* Requests mirrors the agent: until the broker has heard from it (it keeps what the agent
         * last said while the agent rests) it is empty, and an empty record would make every
         * declaration look new. Refuse to guess. */
        r = sd_bus_get_property_string(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                       "AgentVersion", &e, &agent_version);
        if (r < 0) {
                r = ctl_error("asking the broker about the agent", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        if (!*agent_version) {
                fprintf(stderr, "teepctl: the broker has not heard from teep-agentd yet: it does not know its requests\n");
                return EXIT_FAILURE;
        }
        r = sd_bus_get_property(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "Requests", &e,
                                &reply, "a(ss)");
        if (r < 0) {
                r = ctl_error("reading the recorded requests", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ss)", &component, &requester)) > 0)
                r = current_add(c, requester, component);
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                fprintf(stderr, "teepctl: the broker's Requests property does not parse: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

typedef struct InFlight {
        uint32_t id;
        bool request;
        char *component;
        char *requester;
} InFlight;

static int cmp_inflight(const void *a, const void *b) {
        uint32_t x = ((const InFlight *)a)->id, y = ((const InFlight *)b)->id;
        return x < y ? -1 : x > y;
}

/* Kind, Component, Requester, State and Id of one job; 0 when it is gone or finished. */
static int read_job(sd_bus *bus, const char *path, InFlight *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *kind = NULL, *component = NULL, *requester = NULL, *state = NULL;
        uint32_t id = 0;
        int r;

        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &e,
                               &reply, "s", TEEP_BROKER_JOB_INTERFACE);
        sd_bus_error_free(&e);
        if (r < 0)
                return 0; /* it finished and went away meanwhile */
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *contents = NULL, **dst = NULL;
                char type;

                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, &type, &contents);
                if (r < 0)
                        break;
                if (strcmp(key, "Id") == 0 && contents && strcmp(contents, "u") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &id);
                else if (contents && strcmp(contents, "s") == 0 &&
                         ((strcmp(key, "Kind") == 0 && (dst = &kind)) ||
                          (strcmp(key, "Component") == 0 && (dst = &component)) ||
                          (strcmp(key, "Requester") == 0 && (dst = &requester)) ||
                          (strcmp(key, "State") == 0 && (dst = &state))))
                        r = sd_bus_message_read(reply, "v", "s", dst);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0 || !kind || !component || !requester || !state)
                return 0; /* not a job we understand: it cannot be ours */
        if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)
                return 0;
        if (strcmp(kind, "request") != 0 && strcmp(kind, "unrequest") != 0)
                return 0;
        *ret = (InFlight){ .id = id, .request = strcmp(kind, "request") == 0,
                           .component = strdup(component), .requester = strdup(requester) };
        if (!ret->component || !ret->requester) {
                free(ret->component);
                free(ret->requester);
                return -ENOMEM;
        }
        return 1;
}

/*
 * Jobs queued or running now: a request the agent has not recorded yet counts as made, an
 * unrequest not carried out yet as done. Without this, a second sync right after a --no-block
 * one would queue the same jobs again. The job objects are listed by introspecting their parent.
 */
static int apply_in_flight(sd_bus *bus, Current *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        InFlight *jobs = NULL;
        size_t n = 0, listed = 0;
        const char *xml, *p;
        int r;

        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH "/job",
                               "org.freedesktop.DBus.Introspectable", "Introspect", &e, &reply, NULL);
        if (r < 0) {
                r = ctl_error("listing the broker's jobs", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        if (sd_bus_message_read(reply, "s", &xml) < 0) {
                fprintf(stderr, "teepctl: the broker's job list does not parse\n");
                return EXIT_FAILURE;
        }
        r = 0;
        for (p = strstr(xml, "<node name=\""); p && r >= 0; p = strstr(p, "<node name=\"")) {
                char path[sizeof(TEEP_BROKER_PATH "/job/") + 12];
                size_t len;
                InFlight j;

                p += strlen("<node name=\"");
                len = strspn(p, "0123456789");
                if (len == 0 || len > 10 || p[len] != '"')
                        continue;
                if (++listed > MAX_JOBS_LISTED)
                        break;
                snprintf(path, sizeof(path), TEEP_BROKER_PATH "/job/%.*s", (int)len, p);
                r = read_job(bus, path, &j);
                if (r > 0) {
                        InFlight *nj = realloc(jobs, (n + 1) * sizeof(*nj));
                        if (!nj) {
                                free(j.component);
                                free(j.requester);
                                r = -ENOMEM;
                                break;
                        }
                        jobs = nj;
                        jobs[n++] = j;
                }
        }
        if (r >= 0 && n > 1)
                qsort(jobs, n, sizeof(*jobs), cmp_inflight);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (jobs[i].request)
                        r = current_add(c, jobs[i].requester, jobs[i].component);
                else
                        current_remove(c, jobs[i].requester, jobs[i].component);
        }
        for (size_t i = 0; i < n; i++) {
                free(jobs[i].component);
                free(jobs[i].requester);
        }
        free(jobs);
        if (r < 0) {
                fprintf(stderr, "teepctl: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

/* ---- doing it ---- */

static int build_call(sd_bus *bus, const TeepSyncStep *s, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *requester = NULL;
        bool request = s->action == TEEP_SYNC_REQUEST;
        int r;

        if (asprintf(&requester, "package:%s", s->package) < 0)
                return -ENOMEM;
        r = sd_bus_message_new_method_call(bus, &m, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE,
                                           request ? "RequestTA" : "UnrequestTA");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", s->component);
        if (r >= 0 && request)
                r = sd_bus_message_append_strv(m, (char **)s->tam_uris);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 1, "requester", "s", requester);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Run one step. Returns 0, or the exit code of its failure. */
static int run_step(sd_bus *bus, const SyncArgs *a, const TeepSyncStep *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *verb = s->action == TEEP_SYNC_REQUEST ? "request" : "unrequest";
        JobOutcome o = {};
        int r;

        if (a->dry_run) {
                say(a, LOG_INFO, "package:%s: would %s %s", s->package, verb, s->component);
                return 0;
        }
        r = build_call(bus, s, &m);
        if (r < 0) {
                say(a, LOG_ERR, "package:%s: cannot build the %s call: %s", s->package, verb, strerror(-r));
                return EXIT_FAILURE;
        }
        if (a->no_block) {
                _cleanup_free_ char *path = NULL;
                r = ctl_call_no_block(bus, m, &path);
                if (r != 0) {
                        say(a, LOG_ERR, "package:%s: %s %s failed", s->package, verb, s->component);
                        return r;
                }
                say(a, LOG_INFO, "package:%s: %s %s: queued as %s", s->package, verb, s->component, path);
                return 0;
        }
        r = ctl_call_and_wait(bus, m, &(JobWaitOptions){ .timeout_usec = a->timeout_usec }, &o);
        if (r != 0) {
                say(a, LOG_ERR, "package:%s: %s %s failed", s->package, verb, s->component);
                return r;
        }
        if (o.state && strcmp(o.state, "succeeded") == 0)
                say(a, LOG_INFO, "package:%s: %s %s: %s", s->package, verb, s->component, o.result ?: "done");
        else
                say(a, LOG_ERR, "package:%s: %s %s failed: %s (%s)", s->package, verb, s->component,
                    o.error_message && *o.error_message ? o.error_message : "no reason given",
                    o.error_name && *o.error_name ? o.error_name : "?");
        r = job_outcome_exit_code(&o);
        job_outcome_done(&o);
        return r == EXIT_NOTHING_TO_DO ? 0 : r;
}

/* sync's exit codes (teepctl(1)): 0, 4 when the broker said access denied, 1 for anything
 * else that went wrong; access denied wins, because it means "run me as root". */
static int worse(int a, int b) {
        if (a == EXIT_ACCESS_DENIED || b == EXIT_ACCESS_DENIED)
                return EXIT_ACCESS_DENIED;
        return a || b ? EXIT_FAILURE : 0;
}

static int sync_run(const SyncArgs *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = {};
        _cleanup_(current_done) Current cur = {};
        _cleanup_free_ TeepRequestOwner *owners = NULL;
        _cleanup_free_ TeepSyncStep *steps = NULL;
        _cleanup_free_ char *dir = NULL;
        size_t n_steps = 0, n_declared = 0;
        int r, ret = 0;

        if (a->dir)
                dir = strdup(a->dir);
        else if (asprintf(&dir, "%s%s", a->root && *a->root ? a->root : "", TEEP_REQUESTS_DIR) < 0)
                dir = NULL;
        if (!dir)
                return EXIT_FAILURE;

        r = teep_requests_load_dir(dir, &d);
        if (r < 0) {
                /* Without the directory nothing is known: unrequesting everything would be wrong. */
                say(a, LOG_ERR, "cannot read %s: %s; nothing changed", dir,
                    r == -E2BIG ? "too many files" : strerror(-r));
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < d.n_packages; i++) {
                if (d.packages[i].broken) {
                        say(a, LOG_ERR, "%s; the requests of package:%s are left as they are",
                            d.packages[i].error, d.packages[i].package);
                        ret = EXIT_FAILURE;
                }
                n_declared += d.packages[i].requests.n_items;
        }

        r = ctl_bus_open(&bus);
        if (r == 0)
                r = read_recorded(bus, &cur);
        if (r == 0)
                r = apply_in_flight(bus, &cur);
        if (r != 0) {
                say(a, LOG_ERR, "cannot learn the broker's requests; nothing changed");
                return worse(ret, r);
        }

        owners = calloc(cur.n + 1, sizeof(*owners));
        if (!owners)
                return EXIT_FAILURE;
        for (size_t i = 0; i < cur.n; i++)
                owners[i] = (TeepRequestOwner){ .package = cur.v[i].package, .component = cur.v[i].component };
        r = teep_requests_plan(&d, owners, cur.n, &steps, &n_steps);
        if (r < 0)
                return EXIT_FAILURE;

        if (n_steps == 0)
                say(a, LOG_INFO, "%zu declared component%s in %s, %zu package request%s recorded: in sync", n_declared,
                    n_declared == 1 ? "" : "s", dir, cur.n, cur.n == 1 ? "" : "s");
        for (size_t i = 0; i < n_steps; i++)
                ret = worse(ret, run_step(bus, a, &steps[i]));
        return ret;
}

int verb_sync(int argc, char **argv) {
        SyncArgs a = {};
        int r;

        r = parse(argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : (a.trigger ? 0 : r);
        r = sync_run(&a);
        if (r != 0 && a.trigger) {
                /* dpkg must never fail because of us: the errors are above and in the journal, and
                 * the next trigger (or `teepctl sync` by hand) retries. */
                say(&a, LOG_WARNING, "finished with errors (exit status %d); dpkg goes on", r);
                return 0;
        }
        return r;
}
