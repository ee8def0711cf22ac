/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* status.c: `teepctl status`, `list` and `agent-key` — what the broker's properties say */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "bus.h"
#include "macro.h"
#include "teepctl.h"

typedef struct TC {
        char *component;
        uint64_t sequence;
        uint8_t *digest;
        size_t digest_len;
} TC;

typedef struct Req {
        char *component;
        char *requester;
} Req;

typedef struct Sess {
        char *uri;
        uint64_t number;
        uint32_t jobs;
} Sess;

typedef struct Props {
        char *version;
        char *agent_version;
        TC *tcs;
        size_t n_tcs;
        char **pending;
        Req *requests;
        size_t n_requests;
        char **tams;
        uint64_t last_check;
        uint64_t interval;
        Sess *sessions;
        size_t n_sessions;
} Props;

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static size_t strv_len(char **v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static void props_done(Props *p) {
        free(p->version);
        free(p->agent_version);
        for (size_t i = 0; i < p->n_tcs; i++) {
                free(p->tcs[i].component);
                free(p->tcs[i].digest);
        }
        free(p->tcs);
        strv_free(p->pending);
        for (size_t i = 0; i < p->n_requests; i++) {
                free(p->requests[i].component);
                free(p->requests[i].requester);
        }
        free(p->requests);
        strv_free(p->tams);
        for (size_t i = 0; i < p->n_sessions; i++)
                free(p->sessions[i].uri);
        free(p->sessions);
        *p = (Props){};
}

/* Grow an array by one element, zeroed. */
static void *grow(void *array, size_t *n, size_t size) {
        char *p = realloc(array, (*n + 1) * size);
        if (!p)
                return NULL;
        memset(p + *n * size, 0, size);
        (*n)++;
        return p;
}

static int read_tcs(sd_bus_message *m, Props *p) {
        int r = sd_bus_message_enter_container(m, 'a', "(stay)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'r', "stay")) > 0) {
                const char *c;
                const void *d;
                size_t dl;
                uint64_t seq;
                TC *t;

                r = sd_bus_message_read(m, "st", &c, &seq);
                if (r >= 0)
                        r = sd_bus_message_read_array(m, 'y', &d, &dl);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                t = grow(p->tcs, &p->n_tcs, sizeof(TC));
                if (!t)
                        return -ENOMEM;
                p->tcs = t;
                t = &p->tcs[p->n_tcs - 1];
                t->component = strdup(c);
                t->sequence = seq;
                t->digest = malloc(dl ? dl : 1);
                if (!t->component || !t->digest)
                        return -ENOMEM;
                memcpy(t->digest, d, dl);
                t->digest_len = dl;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_requests(sd_bus_message *m, Props *p) {
        const char *c, *q;
        int r = sd_bus_message_enter_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ss)", &c, &q)) > 0) {
                Req *x = grow(p->requests, &p->n_requests, sizeof(Req));
                if (!x)
                        return -ENOMEM;
                p->requests = x;
                x = &p->requests[p->n_requests - 1];
                x->component = strdup(c);
                x->requester = strdup(q);
                if (!x->component || !x->requester)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_sessions(sd_bus_message *m, Props *p) {
        const char *u;
        uint64_t n;
        uint32_t j;
        int r = sd_bus_message_enter_container(m, 'a', "(stu)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(stu)", &u, &n, &j)) > 0) {
                Sess *s = grow(p->sessions, &p->n_sessions, sizeof(Sess));
                if (!s)
                        return -ENOMEM;
                p->sessions = s;
                s = &p->sessions[p->n_sessions - 1];
                if (!(s->uri = strdup(u)))
                        return -ENOMEM;
                s->number = n;
                s->jobs = j;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int dup_string(sd_bus_message *m, char **dst) {
        const char *s;
        int r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        return (*dst = strdup(s)) ? 0 : -ENOMEM;
}

/* One property at the current position (inside its variant). Unknown ones are skipped. */
static int read_property(sd_bus_message *m, const char *key, const char *sig, Props *p) {
#define IS(k, s) (strcmp(key, k) == 0 && strcmp(sig, s) == 0)
        if (IS("Version", "s"))
                return dup_string(m, &p->version);
        if (IS("AgentVersion", "s"))
                return dup_string(m, &p->agent_version);
        if (IS("InstalledTCs", "a(stay)"))
                return read_tcs(m, p);
        if (IS("PendingRequests", "as"))
                return sd_bus_message_read_strv(m, &p->pending);
        if (IS("Requests", "a(ss)"))
                return read_requests(m, p);
        if (IS("TamURIs", "as"))
                return sd_bus_message_read_strv(m, &p->tams);
        if (IS("LastPolicyCheck", "t"))
                return sd_bus_message_read(m, "t", &p->last_check);
        if (IS("PolicyCheckInterval", "t"))
                return sd_bus_message_read(m, "t", &p->interval);
        if (IS("ActiveSessions", "a(stu)"))
                return read_sessions(m, p);
#undef IS
        return sd_bus_message_skip(m, sig);
}

static int props_get(sd_bus *bus, Props *p) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, "org.freedesktop.DBus.Properties",
                               "GetAll", &e, &reply, "s", TEEP_BROKER_INTERFACE);
        if (r < 0) {
                r = ctl_error("reading the broker's properties", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *sig = NULL;
                char type;

                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, &type, &sig);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'v', sig);
                if (r >= 0)
                        r = read_property(reply, key, sig, p);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                fprintf(stderr, "teepctl: the broker's properties do not parse: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

typedef struct ViewArgs {
        bool json;
        bool cose;
} ViewArgs;

static int parse_view(int argc, char **argv, const char *usage, bool allow_cose, ViewArgs *a) {
        enum { ARG_JSON = 0x100, ARG_COSE };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "cose", no_argument, NULL, ARG_COSE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_COSE:
                        if (!allow_cose)
                                goto bad;
                        a->cose = true;
                        break;
                case 'h':
                        printf("Usage: %s\n", usage);
                        return -1;
                default:
                        goto bad;
                }
        if (optind == argc)
                return 0;
bad:
        fprintf(stderr, "Usage: %s\n", usage);
        return EXIT_USAGE;
}

static void print_tc_json(FILE *f, const TC *t) {
        fputs("{\"component\":", f);
        json_string(f, t->component);
        fprintf(f, ",\"sequence\":%" PRIu64 ",\"sha256\":", t->sequence);
        json_hex(f, t->digest, t->digest_len);
        fputc('}', f);
}

static void print_strv_json(FILE *f, char **v) {
        fputc('[', f);
        for (size_t i = 0; v && v[i]; i++) {
                if (i)
                        fputc(',', f);
                json_string(f, v[i]);
        }
        fputc(']', f);
}

static void status_json(const Props *p) {
        FILE *f = stdout;

        fputs("{\"version\":", f);
        json_string(f, p->version);
        fputs(",\"agent_version\":", f);
        json_string(f, p->agent_version && *p->agent_version ? p->agent_version : NULL);
        fputs(",\"tam_uris\":", f);
        print_strv_json(f, p->tams);
        fputs(",\"installed\":[", f);
        for (size_t i = 0; i < p->n_tcs; i++) {
                if (i)
                        fputc(',', f);
                print_tc_json(f, &p->tcs[i]);
        }
        fputs("],\"pending\":", f);
        print_strv_json(f, p->pending);
        fputs(",\"requests\":[", f);
        for (size_t i = 0; i < p->n_requests; i++) {
                fputs(i ? ",{\"component\":" : "{\"component\":", f);
                json_string(f, p->requests[i].component);
                fputs(",\"requester\":", f);
                json_string(f, p->requests[i].requester);
                fputc('}', f);
        }
        fprintf(f, "],\"last_policy_check\":%" PRIu64 ",\"policy_check_interval\":%" PRIu64 ",\"active_sessions\":[",
                p->last_check, p->interval);
        for (size_t i = 0; i < p->n_sessions; i++) {
                fputs(i ? ",{\"tam_uri\":" : "{\"tam_uri\":", f);
                json_string(f, p->sessions[i].uri);
                fprintf(f, ",\"session\":%" PRIu64 ",\"jobs\":%" PRIu32 "}", p->sessions[i].number,
                        p->sessions[i].jobs);
        }
        fputs("]}\n", f);
}

static void status_text(const Props *p) {
        char ts[64], span[32];
        size_t n;

        printf("      Broker: teep-brokerd %s\n", p->version ?: "?");
        printf("       Agent: %s%s\n", p->agent_version && *p->agent_version ? "teep-agentd " : "",
               p->agent_version && *p->agent_version ? p->agent_version : "not heard from yet (not running, or not reachable)");
        n = strv_len(p->tams);
        if (n == 0)
                printf("        TAMs: none configured\n");
        for (size_t i = 0; i < n; i++)
                printf("%s%s\n", i == 0 ? "        TAMs: " : "              ", p->tams[i]);
        printf("   Installed: %zu Trusted Component%s%s\n", p->n_tcs, p->n_tcs == 1 ? "" : "s",
               p->n_tcs ? " (teepctl list shows them)" : "");
        n = strv_len(p->pending);
        if (n == 0)
                printf("     Pending: none\n");
        for (size_t i = 0; i < n; i++)
                printf("%s%s\n", i == 0 ? "     Pending: " : "              ", p->pending[i]);
        printf("    Requests: %zu\n", p->n_requests);
        printf("Policy check: last %s, every %s\n", format_timestamp(p->last_check, ts, sizeof(ts)),
               format_timespan(p->interval, span, sizeof(span)));
        if (p->n_sessions == 0)
                printf("    Sessions: none running\n");
        for (size_t i = 0; i < p->n_sessions; i++)
                printf("%s%s (session %" PRIu64 ", %" PRIu32 " job%s)\n", i == 0 ? "    Sessions: " : "              ",
                       p->sessions[i].uri, p->sessions[i].number, p->sessions[i].jobs,
                       p->sessions[i].jobs == 1 ? "" : "s");
}

int verb_status(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Props p = {};
        ViewArgs a = {};
        int r;

        r = parse_view(argc, argv, "teepctl [status] [--json]", false, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = ctl_bus_open(&bus);
        if (r == 0)
                r = props_get(bus, &p);
        if (r == 0) {
                if (a.json)
                        status_json(&p);
                else
                        status_text(&p);
        }
        props_done(&p);
        return r;
}

/* ---- list ---- */

static bool strv_contains(char **v, const char *s) {
        for (size_t i = 0; v && v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

/* Every component that is installed, pending or requested, once, in that order. */
static size_t collect_components(const Props *p, const char ***ret) {
        size_t max = p->n_tcs + strv_len(p->pending) + p->n_requests, n = 0;
        const char **v = calloc(max + 1, sizeof(char *));

        if (!v)
                return 0;
#define ADD(c)                                                  \
        do {                                                    \
                bool dup_ = false;                              \
                for (size_t k = 0; k < n; k++)                  \
                        if (strcmp(v[k], (c)) == 0)             \
                                dup_ = true;                    \
                if (!dup_)                                      \
                        v[n++] = (c);                           \
        } while (0)
        for (size_t i = 0; i < p->n_tcs; i++)
                ADD(p->tcs[i].component);
        for (size_t i = 0; p->pending && p->pending[i]; i++)
                ADD(p->pending[i]);
        for (size_t i = 0; i < p->n_requests; i++)
                ADD(p->requests[i].component);
#undef ADD
        *ret = v;
        return n;
}

static const TC *find_tc(const Props *p, const char *c) {
        for (size_t i = 0; i < p->n_tcs; i++)
                if (strcmp(p->tcs[i].component, c) == 0)
                        return &p->tcs[i];
        return NULL;
}

static const char *state_of(const Props *p, const char *c) {
        bool installed = find_tc(p, c), pending = strv_contains(p->pending, c);
        return installed ? (pending ? "installed, change pending" : "installed") : "pending";
}

int verb_list(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ const char **comps = NULL;
        Props p = {};
        ViewArgs a = {};
        size_t n, width = strlen("COMPONENT");
        int r;

        r = parse_view(argc, argv, "teepctl list [--json]", false, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = ctl_bus_open(&bus);
        if (r == 0)
                r = props_get(bus, &p);
        if (r != 0) {
                props_done(&p);
                return r;
        }
        n = collect_components(&p, &comps);

        if (a.json) {
                fputc('[', stdout);
                for (size_t i = 0; i < n; i++) {
                        const TC *t = find_tc(&p, comps[i]);
                        bool first = true;
                        fputs(i ? ",{\"component\":" : "{\"component\":", stdout);
                        json_string(stdout, comps[i]);
                        fprintf(stdout, ",\"installed\":%s,\"pending\":%s", t ? "true" : "false",
                                strv_contains(p.pending, comps[i]) ? "true" : "false");
                        if (t) {
                                fprintf(stdout, ",\"sequence\":%" PRIu64 ",\"sha256\":", t->sequence);
                                json_hex(stdout, t->digest, t->digest_len);
                        }
                        fputs(",\"requesters\":[", stdout);
                        for (size_t k = 0; k < p.n_requests; k++)
                                if (strcmp(p.requests[k].component, comps[i]) == 0) {
                                        if (!first)
                                                fputc(',', stdout);
                                        json_string(stdout, p.requests[k].requester);
                                        first = false;
                                }
                        fputs("]}", stdout);
                }
                fputs("]\n", stdout);
                props_done(&p);
                return 0;
        }

        if (n == 0) {
                printf("No Trusted Components installed or requested.\n");
                props_done(&p);
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                if (strlen(comps[i]) > width)
                        width = strlen(comps[i]);
        printf("%-*s  %-9s  %-8s  %-16s  %s\n", (int)width, "COMPONENT", "STATE", "SEQUENCE", "SHA-256",
               "REQUESTED BY");
        for (size_t i = 0; i < n; i++) {
                const TC *t = find_tc(&p, comps[i]);
                char seq[24] = "-", dig[17] = "-";
                bool first = true;

                if (t) {
                        snprintf(seq, sizeof(seq), "%" PRIu64, t->sequence);
                        for (size_t k = 0; k < t->digest_len && k < 8; k++)
                                snprintf(dig + 2 * k, sizeof(dig) - 2 * k, "%02x", t->digest[k]);
                }
                printf("%-*s  %-9s  %-8s  %-16s  ", (int)width, comps[i], state_of(&p, comps[i]), seq, dig);
                for (size_t k = 0; k < p.n_requests; k++)
                        if (strcmp(p.requests[k].component, comps[i]) == 0) {
                                printf("%s%s", first ? "" : ", ", p.requests[k].requester);
                                first = false;
                        }
                printf("%s\n", first ? "-" : "");
        }
        props_done(&p);
        return 0;
}

/* ---- agent-key ---- */

int verb_agent_key(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const void *cose, *kid;
        size_t cose_len, kid_len;
        const char *pem;
        ViewArgs a = {};
        int r;

        r = parse_view(argc, argv, "teepctl agent-key [--cose] [--json]", true, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = ctl_bus_open(&bus);
        if (r != 0)
                return r;
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "GetAgentKey", &e,
                               &reply, NULL);
        if (r < 0) {
                r = ctl_error("reading the device key", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "s", &pem);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &cose, &cose_len);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &kid, &kid_len);
        if (r < 0) {
                fprintf(stderr, "teepctl: the key does not parse: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (a.json) {
                fputs("{\"pem\":", stdout);
                json_string(stdout, pem);
                fputs(",\"cose_key\":", stdout);
                json_hex(stdout, cose, cose_len);
                fputs(",\"kid\":", stdout);
                json_hex(stdout, kid, kid_len);
                fputs("}\n", stdout);
        } else if (a.cose) {
                /* hex, which `teepctl inspect` and `teepctl inspect --key` read */
                for (size_t i = 0; i < cose_len; i++)
                        printf("%02x", ((const uint8_t *)cose)[i]);
                printf("\n");
        } else
                printf("%s%s", pem, *pem && pem[strlen(pem) - 1] == '\n' ? "" : "\n");
        return 0;
}
