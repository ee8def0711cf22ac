/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-policy.c: several TAMs — the failover order, per-TAM policy-check schedule, and which TAM
 * may manage which Trusted Component */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent-internal.h"
#include "log.h"
#include "macro.h"

/* A component's own TAM list (RequestTA's tam_uris), remembered while it is pending. */
struct AgentTamHints {
        char *component;
        char **uris; /* NULL-terminated, trusted ones only */
};

#define AGENT_MAX_HINTS 256
#define AGENT_MAX_HINTS_PER_COMPONENT 8

static void hints_done(AgentTamHints *h) {
        free(h->component);
        for (size_t i = 0; h->uris && h->uris[i]; i++)
                free(h->uris[i]);
        free(h->uris);
        *h = (AgentTamHints){};
}

void agent_tam_policy_free(Agent *a) {
        for (size_t i = 0; i < a->n_tam_hints; i++)
                hints_done(&a->tam_hints[i]);
        free(a->tam_hints);
        a->tam_hints = NULL;
        a->n_tam_hints = 0;
        free(a->tam_checked_usec);
        a->tam_checked_usec = NULL;
}

int agent_tam_note_hints(Agent *a, const char *component, char *const *hints) {
        AgentTamHints h = {};
        size_t n = 0;

        if (!hints || !hints[0] || a->cfg.n_tams == 0)
                return 0;
        h.component = strdup(component);
        h.uris = calloc(AGENT_MAX_HINTS_PER_COMPONENT + 1, sizeof(char *));
        if (!h.component || !h.uris) {
                hints_done(&h);
                return -ENOMEM;
        }
        for (size_t i = 0; hints[i] && n < AGENT_MAX_HINTS_PER_COMPONENT; i++) {
                bool dup = false;
                if (agent_find_tam(a, hints[i]) == SIZE_MAX)
                        continue; /* an untrusted hint is never contacted */
                for (size_t k = 0; k < n; k++)
                        dup = dup || strcmp(h.uris[k], hints[i]) == 0;
                if (dup)
                        continue;
                h.uris[n] = strdup(hints[i]);
                if (!h.uris[n]) {
                        hints_done(&h);
                        return -ENOMEM;
                }
                n++;
        }
        if (n == 0) {
                hints_done(&h);
                return 0;
        }
        /* the latest RequestTA for a component names its list; the oldest entry goes when full */
        for (size_t i = 0; i < a->n_tam_hints; i++)
                if (strcmp(a->tam_hints[i].component, component) == 0) {
                        hints_done(&a->tam_hints[i]);
                        a->tam_hints[i] = h;
                        return 0;
                }
        if (a->n_tam_hints >= AGENT_MAX_HINTS) {
                hints_done(&a->tam_hints[0]);
                memmove(a->tam_hints, a->tam_hints + 1, (a->n_tam_hints - 1) * sizeof(AgentTamHints));
                a->n_tam_hints--;
        } else {
                AgentTamHints *nh = reallocarray(a->tam_hints, a->n_tam_hints + 1, sizeof(AgentTamHints));
                if (!nh) {
                        hints_done(&h);
                        return -ENOMEM;
                }
                a->tam_hints = nh;
        }
        a->tam_hints[a->n_tam_hints++] = h;
        return 0;
}

/* The order to try TAMs in for one pending component: its own list, then every other
 * configured TAM in configuration order. */
static const char *order_at(const Agent *a, const AgentTamHints *h, size_t i) {
        size_t n_h = 0;

        while (h && h->uris[n_h])
                n_h++;
        if (i < n_h)
                return h->uris[i];
        i -= n_h;
        for (size_t t = 0; t < a->cfg.n_tams; t++) {
                bool listed = false;
                for (size_t k = 0; k < n_h; k++)
                        listed = listed || strcmp(h->uris[k], a->cfg.tams[t].uri) == 0;
                if (listed)
                        continue;
                if (i == 0)
                        return a->cfg.tams[t].uri;
                i--;
        }
        return NULL;
}

static const char *next_in_order(const Agent *a, const AgentTamHints *h, const char *failed) {
        for (size_t i = 0;; i++) {
                const char *u = order_at(a, h, i);
                if (!u)
                        return NULL;
                if (failed && strcmp(u, failed) == 0)
                        return order_at(a, h, i + 1);
        }
}

char *agent_tam_next_after(const Agent *a, const char *failed_uri) {
        const AgentTamHints *use = NULL;
        const char *next;

        /* the order of a pending component whose own list names the TAM that failed, else of
         * the first pending component with a list (its order ends with the other TAMs), else
         * the configuration's */
        for (size_t i = 0; i < a->n_tam_hints; i++) {
                const AgentTamHints *h = &a->tam_hints[i];
                bool listed = false;
                for (size_t k = 0; h->uris[k] && !listed; k++)
                        listed = strcmp(h->uris[k], failed_uri ?: "") == 0;
                if (!listed && use)
                        continue; /* cannot change the choice: skip the state lookups */
                if (agent_state_find_tc(&a->state, h->component) >= 0 || !agent_state_is_requested(&a->state, h->component))
                        continue; /* installed or no longer wanted: its list is stale */
                if (listed) {
                        use = h;
                        break;
                }
                if (!use)
                        use = h;
        }
        next = next_in_order(a, use, failed_uri);
        if (!next)
                return NULL;
        return strdup(next);
}

/* ---- policy checks ---- */

/* The policy-check schedule is wall-clock time (CLOCK_REALTIME, µs), so that it outlives the
 * process: the agent rests between sessions (IdleTimeoutSec=) and a new instance reads it back
 * (agent_tam_checks_load()). A clock set back makes a check "in the future": that TAM is due. */
static uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int tam_checked_alloc(Agent *a) {
        if (!a->tam_checked_usec && a->cfg.n_tams > 0) {
                a->tam_checked_usec = calloc(a->cfg.n_tams, sizeof(uint64_t));
                if (!a->tam_checked_usec)
                        return -ENOMEM;
        }
        return 0;
}

bool agent_tam_policy_due(Agent *a, size_t tam) {
        uint64_t every, now = realtime_usec(), last;

        if (tam >= a->cfg.n_tams)
                return false;
        every = a->cfg.tams[tam].policy_check_interval_usec;
        if (tam_checked_alloc(a) < 0)
                return true; /* fail open here: a policy check only asks, it changes nothing */
        last = a->tam_checked_usec[tam];
        if (every > 0 && last != 0 && last <= now && now - last < every) {
                log_debug("policy check: TAM %s is not due yet (PolicyCheckInterval=%" PRIu64 "s)", a->cfg.tams[tam].uri,
                          every / 1000000);
                return false;
        }
        a->tam_checked_usec[tam] = now;
        a->tam_checks_dirty = true;
        return true;
}

/*
 * The file: one line per TAM checked, "<CLOCK_REALTIME µs> <URI>\n". It is the agent's own
 * (state directory, 0600) but read as hostile anyway: a line that does not parse, names a TAM
 * no longer configured or is over-long is skipped, and the worst a wrong time does is one
 * policy check too early or too late for that TAM.
 */
#define TAM_CHECKS_MAX (64 * 1024)

void agent_tam_checks_load(Agent *a) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0, skipped = 0, loaded = 0;
        int r;

        if (a->cfg.n_tams == 0)
                return;
        r = read_file_at(a->state_fd, AGENT_TAM_CHECKS_FILE, TAM_CHECKS_MAX, &data, &len);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_warning("%s/%s: %s; every TAM counts as never checked", a->cfg.state_dir, AGENT_TAM_CHECKS_FILE,
                            strerror(-r));
                return;
        }
        if (tam_checked_alloc(a) < 0)
                return;
        for (size_t at = 0; at < len;) {
                const char *line = (const char *)data + at;
                const char *nl = memchr(line, '\n', len - at);
                size_t n = nl ? (size_t)(nl - line) : len - at;
                char buf[1024], *sp, *end;
                unsigned long long t;
                size_t tam;

                at += n + (nl ? 1 : 0);
                if (!nl || n == 0 || n >= sizeof(buf)) {
                        skipped++;
                        continue;
                }
                memcpy(buf, line, n);
                buf[n] = '\0';
                sp = strchr(buf, ' ');
                if (!sp || sp == buf || strspn(buf, "0123456789") != (size_t)(sp - buf)) {
                        skipped++;
                        continue;
                }
                *sp = '\0';
                errno = 0;
                t = strtoull(buf, &end, 10);
                tam = agent_find_tam(a, sp + 1);
                if (errno != 0 || *end != '\0' || t == 0 || tam == SIZE_MAX) {
                        skipped++;
                        continue;
                }
                a->tam_checked_usec[tam] = (uint64_t)t;
                loaded++;
        }
        if (skipped > 0)
                log_warning("%s/%s: skipped %zu line(s) that do not parse or name no configured TAM",
                            a->cfg.state_dir, AGENT_TAM_CHECKS_FILE, skipped);
        log_debug("policy-check schedule: %zu TAM(s) read back", loaded);
}

int agent_save_schedule(Agent *a) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (!a->tam_checks_dirty || !a->tam_checked_usec || a->state_fd < 0)
                return 0;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        for (size_t t = 0; t < a->cfg.n_tams; t++)
                if (a->tam_checked_usec[t] != 0)
                        fprintf(f, "%" PRIu64 " %s\n", a->tam_checked_usec[t], a->cfg.tams[t].uri);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = write_file_atomic_at(a->state_fd, AGENT_TAM_CHECKS_FILE, text, size, 0600);
        if (r < 0)
                return r;
        a->tam_checks_dirty = false;
        return 0;
}

bool agent_tam_hints_live(const Agent *a) {
        for (size_t i = 0; i < a->n_tam_hints; i++) {
                const char *c = a->tam_hints[i].component;
                if (agent_state_find_tc(&a->state, c) < 0 && agent_state_is_requested(&a->state, c))
                        return true;
        }
        return false;
}

/* ---- who may manage what ---- */

bool agent_tam_may_manage(const Agent *a, size_t tam, const char *tam_uri, const char *component) {
        ssize_t cur = agent_state_find_tc(&a->state, component);
        const char *owner;

        if (cur < 0 || a->cfg.n_tams == 0)
                return true; /* new, or a single-TAM device without [TAM] sections */
        owner = a->state.tcs[cur].tam_uri;
        if (!owner || !*owner || strcmp(owner, tam_uri ?: "") == 0)
                return true;
        if (tam < a->cfg.n_tams && a->cfg.tams[tam].manage_any)
                return true;
        if (agent_find_tam(a, owner) == SIZE_MAX) {
                /* the TAM that installed it is no longer configured: the administrator took it out,
                 * so the component is not left without a manager */
                log_notice("TAM %s takes over %s from %s, which is no longer configured", tam_uri ?: "-", component, owner);
                return true;
        }
        return false;
}
