/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.c: the agent's life cycle, state commits, crash recovery and request bookkeeping */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent-internal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "strset.h"
#include "teep-component.h"

#define STATE_FILE "state"
#define STATE_SPARE ".state.spare" /* write_file_swap_at(): an older state, never read */
#define STATE_MAX (16 * 1024 * 1024)

uint64_t agent_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void agent_notify_change(Agent *a, const AgentChange *change) {
        if (change->what && a->changed_cb)
                a->changed_cb(a, change, a->changed_userdata);
}

void agent_notify(Agent *a, unsigned what) {
        agent_notify_change(a, &(AgentChange){ .what = what });
}

void agent_store_entries_free(AgentStoreEntry *e, size_t n) {
        for (size_t i = 0; e && i < n; i++)
                free(e[i].component);
        free(e);
}

static int config_copy(AgentConfig *dst, const AgentConfig *src) {
        AgentConfig c;
        bool oom = false;

#define DUP(f) do { c.f = src->f ? strdup(src->f) : NULL; oom = oom || (src->f && !c.f); } while (0)
        c = *src;
        c.tams = NULL;
        c.n_tams = 0;
        DUP(state_dir);
        DUP(trust_anchor_dir);
        DUP(signer_dir);
        DUP(broker_user);
        DUP(oemid);
        DUP(hwmodel);
        DUP(hwversion);
        DUP(key_uri);
        DUP(pkcs11_module);
        DUP(pin_file);
        DUP(admin_key);
        DUP(crl_dir);
#undef DUP
        if (!oom && src->n_tams > 0) {
                c.tams = calloc(src->n_tams, sizeof(AgentTamConfig));
                oom = !c.tams;
                for (size_t t = 0; !oom && t < src->n_tams; t++) {
                        const AgentTamConfig *s = &src->tams[t];
                        AgentTamConfig *d = &c.tams[t];
                        size_t n = 0;

                        c.n_tams++;
                        d->uri = strdup(s->uri);
                        d->has_kid = s->has_kid;
                        d->suite = s->suite;
                        d->policy_check_interval_usec = s->policy_check_interval_usec;
                        d->manage_any = s->manage_any;
                        d->kid_len = s->kid_len;
                        if (s->kid_len > 0) {
                                d->kid = malloc(s->kid_len);
                                if (d->kid)
                                        memcpy(d->kid, s->kid, s->kid_len);
                                oom = oom || !d->kid;
                        }
                        oom = oom || !d->uri;
                        if (s->trust_anchors) {
                                while (s->trust_anchors[n])
                                        n++;
                                d->trust_anchors = calloc(n + 1, sizeof(char *));
                                oom = oom || !d->trust_anchors;
                                for (size_t i = 0; !oom && i < n; i++) {
                                        d->trust_anchors[i] = strdup(s->trust_anchors[i]);
                                        oom = !d->trust_anchors[i];
                                }
                        }
                }
        }
        if (!oom && (!c.state_dir || !c.trust_anchor_dir || !c.signer_dir))
                oom = true; /* paths are required: treat as invalid below */
        if (oom) {
                bool missing = src->state_dir == NULL || src->trust_anchor_dir == NULL || src->signer_dir == NULL;
                agent_config_done(&c);
                return missing ? -EINVAL : -ENOMEM;
        }
        *dst = c;
        return 0;
}

int agent_new(Agent **ret, const AgentConfig *config, const AgentInstaller *installer, void *installer_userdata,
              const AgentFetcher *fetcher, void *fetcher_userdata) {
        _cleanup_(agent_freep) Agent *a = NULL;
        int r;

        a = calloc(1, sizeof(Agent));
        if (!a)
                return -ENOMEM;
        a->state_fd = a->manifests_fd = -1;
        agent_config_init(&a->cfg);
        r = config_copy(&a->cfg, config);
        if (r < 0)
                return r;
        a->installer = installer;
        a->installer_userdata = installer_userdata;
        a->fetcher = fetcher;
        a->fetcher_userdata = fetcher_userdata;
        a->tam_uris = calloc(a->cfg.n_tams + 1, sizeof(char *));
        if (!a->tam_uris)
                return -ENOMEM;
        for (size_t t = 0; t < a->cfg.n_tams; t++)
                a->tam_uris[t] = a->cfg.tams[t].uri;
        if (asprintf(&a->state_path, "%s/" STATE_FILE, a->cfg.state_dir) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

Agent *agent_free(Agent *a) {
        if (!a)
                return NULL;
        teep_key_free(a->device_key);
        agent_tam_policy_free(a);
        agent_trust_list_free(a);
        agent_x5chain_free(a);
        for (size_t i = 0; i < a->n_anchors; i++) {
                free(a->anchors[i].name);
                teep_key_free(a->anchors[i].key);
        }
        free(a->anchors);
        for (size_t i = 0; i < a->n_signers; i++)
                teep_key_free(a->signers[i]);
        free(a->signers);
        for (size_t i = 0; i < AGENT_MAX_EXCHANGES; i++)
                free(a->exchanges[i].tam_uri);
        agent_state_done(&a->state);
        free(a->state_text);
        free(a->tam_uris);
        free(a->state_path);
        free(a->hwmodel);
        free(a->hwversion);
        if (a->manifests_fd >= 0)
                close(a->manifests_fd);
        if (a->state_fd >= 0)
                close(a->state_fd);
        agent_config_done(&a->cfg);
        explicit_bzero(a, sizeof(*a));
        free(a);
        return NULL;
}

void agent_set_changed_callback(Agent *a, void (*cb)(Agent *a, const AgentChange *change, void *userdata),
                                void *userdata) {
        a->changed_cb = cb;
        a->changed_userdata = userdata;
}

const AgentConfig *agent_config(const Agent *a) {
        return &a->cfg;
}

const char *agent_state_path(const Agent *a) {
        return a->state_path;
}

size_t agent_installed(const Agent *a, const AgentTc **ret) {
        *ret = a->state.tcs;
        return a->state.n_tcs;
}

size_t agent_requests(const Agent *a, const AgentRequest **ret) {
        *ret = a->state.reqs;
        return a->state.n_reqs;
}

size_t agent_tam_uris(const Agent *a, const char *const **ret) {
        *ret = (const char *const *)a->tam_uris;
        return a->cfg.n_tams;
}

int agent_pending(const Agent *a, const char ***ret) {
        const char **wanted, **list;
        size_t n = 0;
        int r;

        r = agent_state_wanted(&a->state, &wanted, &n);
        if (r < 0)
                return r;
        list = reallocarray(wanted, n + a->state.n_unneeded + 1, sizeof(char *));
        if (!list) {
                free(wanted);
                return -ENOMEM;
        }
        for (size_t i = 0; i < a->state.n_unneeded; i++)
                list[n++] = a->state.unneeded[i];
        list[n] = NULL;
        *ret = list;
        return (int)n;
}

/* ---- state ---- */

int agent_write_state_text(Agent *a, char *text, size_t len, bool has_journal) {
        int r = write_file_swap_at(a->state_fd, STATE_FILE, STATE_SPARE, text, len, 0600, true);
        if (r < 0) {
                free(text);
                return log_error_errno(r, "cannot write %s: %s", a->state_path, strerror(-r));
        }
        free(a->state_text);
        a->state_text = text;
        a->state_text_len = len;
        a->state_file_has_journal = has_journal;
        /* every state written is a->state, built from it, or (an undo) what was on disk before
         * any deferred request: the deferred requests are in it */
        a->state_dirty = false;
        return 0;
}

int agent_save_state(Agent *a, const AgentState *s) {
        char *text = NULL;
        size_t len = 0;
        int r;

        r = agent_state_serialize(s, &text, &len);
        if (r < 0)
                return r;
        return agent_write_state_text(a, text, len, s->n_journal > 0);
}

int agent_flush_state(Agent *a) {
        if (!a->state_dirty && (!a->state_file_has_journal || a->state.n_journal > 0))
                return 0;
        return agent_save_state(a, &a->state);
}

bool agent_has_unsaved_requests(const Agent *a) {
        return a->state_dirty;
}

int agent_open_state_dir(Agent *a) {
        int r;

        if (a->state_fd >= 0)
                return 0;
        r = open_private_dir_at(AT_FDCWD, a->cfg.state_dir, 0700);
        if (r < 0)
                return r;
        a->state_fd = r;
        return 0;
}

int agent_lock_state(Agent *a, unsigned timeout_ms) {
        int r = agent_open_state_dir(a);

        return r < 0 ? r : flock_wait(a->state_fd, timeout_ms);
}

const char *agent_busy_reason(const Agent *a) {
        if (a->state_dirty)
                return "requests wait for their write";
        if (agent_tam_hints_live(a))
                return "a pending component has its own TAM list";
        return NULL;
}

int agent_save_requests(Agent *a) {
        return a->state_dirty ? agent_save_state(a, &a->state) : 0;
}

void agent_set_deferred_request_saves(Agent *a, bool on) {
        a->defer_request_saves = on;
}

/* RequestTA and UnrequestTA: write now, or (deferred) mark it for agent_flush_state(). */
static int save_requests(Agent *a, const AgentState *next) {
        if (a->defer_request_saves) {
                a->state_dirty = true;
                return 0;
        }
        return agent_save_state(a, next);
}

static int load_state(Agent *a) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r;

        r = read_file_at(a->state_fd, STATE_FILE, STATE_MAX, &data, &len);
        if (r == -ENOENT) {
                log_info("no state file yet in %s: starting empty", a->cfg.state_dir);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "cannot read %s: %s", a->state_path, strerror(-r));
        r = agent_state_parse((const char *)data, len, &a->state);
        if (r < 0)
                /* Never guess: a state we cannot read would break anti-rollback. */
                return log_error_errno(r, "%s is corrupt (%s); refusing to start — move it away to reset the agent",
                                       a->state_path, strerror(-r));
        log_info("state: %zu installed TC(s), %zu request(s), %zu interrupted operation(s)", a->state.n_tcs,
                 a->state.n_reqs, a->state.n_journal);
        a->state_text = (char *)TAKE_PTR(data);
        a->state_text_len = len;
        a->state_file_has_journal = a->state.n_journal > 0;
        return 0;
}

static const AgentStoreEntry *store_find(const AgentStoreEntry *e, size_t n, const char *component) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(e[i].component, component) == 0)
                        return &e[i];
        return NULL;
}

int agent_reconcile(Agent *a) {
        AgentStoreEntry *entries = NULL;
        AgentState next = {};
        size_t n = 0;
        unsigned changed = 0;
        int r;

        if (!a->installer || !a->installer->list)
                return -ENOTCONN;
        r = a->installer->list(a->installer_userdata, &entries, &n);
        if (r < 0) {
                if (a->state.n_journal > 0)
                        log_warning("cannot list the TC store (%s): %zu interrupted operation(s) stay unresolved",
                                    strerror(-r), a->state.n_journal);
                return r;
        }
        r = agent_state_copy(&next, &a->state);
        if (r < 0)
                goto out;

        /* 1. interrupted installer calls: the store says which side of the rename we are on */
        for (size_t i = 0; i < next.n_journal && r >= 0; i++) {
                const AgentJournal *j = &next.journal[i];
                const AgentStoreEntry *e = store_find(entries, n, j->tc.component);
                ssize_t cur = agent_state_find_tc(&next, j->tc.component);

                if (j->op == AGENT_JOURNAL_INSTALL && e && memcmp(e->sha256, j->tc.sha256, 32) == 0) {
                        log_notice("recovery: install of %s (seq %" PRIu64 ") had completed; recording it",
                                   j->tc.component, j->tc.seq);
                        r = agent_state_add_tc(&next, &j->tc);
                        if (r >= 0)
                                r = agent_state_note_seen(&next, j->tc.component, j->tc.seq);
                } else if (j->op == AGENT_JOURNAL_REMOVE && !e) {
                        log_notice("recovery: removal of %s had completed; recording it", j->tc.component);
                        agent_state_remove_tc(&next, j->tc.component);
                        agent_state_remove_unneeded(&next, j->tc.component);
                } else
                        log_notice("recovery: %s of %s had not happened; keeping %s",
                                   j->op == AGENT_JOURNAL_INSTALL ? "install" : "removal", j->tc.component,
                                   cur >= 0 ? "the previous TC" : "nothing");
                changed |= AGENT_CHANGED_INSTALLED | AGENT_CHANGED_PENDING;
        }
        for (size_t i = 0; i < next.n_journal; i++)
                agent_tc_done(&next.journal[i].tc);
        free(next.journal);
        next.journal = NULL;
        next.n_journal = 0;

        /* 2. TCs we believe installed that the store does not hold (or holds differently) */
        for (size_t i = 0; r >= 0 && i < next.n_tcs;) {
                const AgentStoreEntry *e = store_find(entries, n, next.tcs[i].component);
                if (!e || memcmp(e->sha256, next.tcs[i].sha256, 32) != 0) {
                        log_warning("store and state disagree on %s (%s); forgetting it so the TAM can repair it",
                                    next.tcs[i].component, e ? "different digest" : "missing in the store");
                        agent_state_remove_unneeded(&next, next.tcs[i].component);
                        agent_state_remove_tc(&next, next.tcs[i].component);
                        changed |= AGENT_CHANGED_INSTALLED | AGENT_CHANGED_PENDING;
                        continue;
                }
                i++;
        }
        if (r >= 0 && changed) {
                r = agent_save_state(a, &next);
                if (r >= 0) {
                        agent_state_done(&a->state);
                        a->state = next;
                        next = (AgentState){};
                }
        }
out:
        agent_state_done(&next);
        agent_store_entries_free(entries, n);
        if (r >= 0)
                agent_notify(a, changed);
        return r;
}

int agent_start(Agent *a) {
        int r;

        if (a->started)
                return 0;
        r = agent_load_device_key(a);
        if (r < 0)
                return r;
        r = agent_load_trust(a);
        if (r < 0)
                return r;
        r = agent_load_identity(a);
        if (r < 0)
                return r;
        r = load_state(a);
        if (r < 0)
                return r;
        agent_tam_checks_load(a);
        a->started = true;
        r = agent_reconcile(a);
        if (r < 0 && r != -ENOTCONN)
                log_warning("could not reconcile with the TC store at start-up (%s); will retry before the next update",
                            strerror(-r));
        /* undo records an interrupted commit left: the store was judged by digest above, so
         * nobody will ask for them (the answer is not waited for; a failure is logged) */
        if (a->installer && a->installer->discard)
                (void)a->installer->discard(a->installer_userdata, NULL, 0, false);
        return 0;
}

int agent_get_device_key(Agent *a, char **ret_pem, uint8_t **ret_cose, size_t *ret_cose_len, uint8_t ret_kid[32]) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_free_ uint8_t *cose = NULL;
        size_t cose_len = 0;
        int r;

        if (!a->device_key)
                return -ENOKEY;
        r = teep_key_export_pem(a->device_key, &pem);
        if (r >= 0)
                r = teep_key_export_cose(a->device_key, &cose, &cose_len);
        if (r < 0)
                return r;
        if (ret_pem)
                *ret_pem = TAKE_PTR(pem);
        if (ret_cose) {
                *ret_cose = TAKE_PTR(cose);
                *ret_cose_len = cose_len;
        }
        if (ret_kid)
                memcpy(ret_kid, a->device_kid, 32);
        return 0;
}

/* ---- requests ---- */

static bool requester_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 256)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return false;
        return true;
}

static int component_valid(const char *component) {
        _cleanup_free_ uint8_t *enc = NULL;
        size_t len;
        return teep_suit_component_id_from_string(component, &enc, &len);
}

/* The TAM to contact for new work: the first trusted one among hints, then the configured
 * ones. Without any [TAM] section every hint is acceptable (messages are still verified
 * against every trust anchor). */
static char *choose_tam(const Agent *a, char *const *hints, const char *preferred) {
        if (preferred && agent_find_tam(a, preferred) != SIZE_MAX)
                return strdup(preferred);
        for (size_t i = 0; hints && hints[i]; i++) {
                if (!*hints[i])
                        continue;
                if (a->cfg.n_tams == 0 || agent_find_tam(a, hints[i]) != SIZE_MAX)
                        return strdup(hints[i]);
        }
        if (a->cfg.n_tams > 0)
                return strdup(a->cfg.tams[0].uri);
        if (preferred && *preferred)
                return strdup(preferred);
        errno = EADDRNOTAVAIL;
        return NULL;
}

/*
 * The requests of a state by (requester, component), and how many each requester holds, for a
 * batch of RequestTA: each lookup was a walk over every request (three per request: is it
 * there, how many has this requester, and the add's own check), O(n²) for a burst of a
 * thousand. Open addressing, at most half full, built once per batch and kept up to date as the
 * batch adds requests (at the end of next->reqs).
 */
typedef struct RequestIndex {
        uint32_t *pairs;  /* index into reqs + 1; 0 = empty */
        uint32_t *owners; /* index of a request of that requester + 1 */
        uint32_t *counts; /* its requests, beside owners */
        size_t mask;
} RequestIndex;

static void request_index_done(RequestIndex *x) {
        free(x->pairs);
        free(x->owners);
        free(x->counts);
        *x = (RequestIndex){};
}

static void request_index_add(RequestIndex *x, const AgentState *s, size_t i) {
        const char *q = s->reqs[i].requester;
        size_t h = (size_t)str_hash(str_hash(STR_HASH_INIT, q), s->reqs[i].component) & x->mask;

        while (x->pairs[h])
                h = (h + 1) & x->mask;
        x->pairs[h] = (uint32_t)i + 1;
        h = (size_t)str_hash(STR_HASH_INIT, q) & x->mask;
        while (x->owners[h] && strcmp(s->reqs[x->owners[h] - 1].requester, q) != 0)
                h = (h + 1) & x->mask;
        if (!x->owners[h])
                x->owners[h] = (uint32_t)i + 1;
        x->counts[h]++;
}

/* For s holding up to max requests. */
static int request_index_build(RequestIndex *x, const AgentState *s, size_t max) {
        size_t cap = 16;

        while (cap < 2 * max)
                cap *= 2;
        *x = (RequestIndex){ .pairs = calloc(cap, sizeof(uint32_t)), .owners = calloc(cap, sizeof(uint32_t)),
                             .counts = calloc(cap, sizeof(uint32_t)), .mask = cap - 1 };
        if (!x->pairs || !x->owners || !x->counts) {
                request_index_done(x);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_reqs; i++)
                request_index_add(x, s, i);
        return 0;
}

static bool request_index_has(const RequestIndex *x, const AgentState *s, const char *requester, const char *component) {
        size_t h = (size_t)str_hash(str_hash(STR_HASH_INIT, requester), component) & x->mask;

        for (; x->pairs[h]; h = (h + 1) & x->mask) {
                const AgentRequest *q = &s->reqs[x->pairs[h] - 1];
                if (strcmp(q->component, component) == 0 && strcmp(q->requester, requester) == 0)
                        return true;
        }
        return false;
}

static size_t request_index_count(const RequestIndex *x, const AgentState *s, const char *requester) {
        size_t h = (size_t)str_hash(STR_HASH_INIT, requester) & x->mask;

        for (; x->owners[h]; h = (h + 1) & x->mask)
                if (strcmp(s->reqs[x->owners[h] - 1].requester, requester) == 0)
                        return x->counts[h];
        return 0;
}

/* One RequestTA applied to next (a copy of the state that may already hold others of the same
 * batch), with the batch's index of next's requests (kept up to date here). Sets *changed bits;
 * *ret_uri gets the TAM to contact, NULL when already installed. */
static int request_apply(Agent *a, AgentState *next, RequestIndex *x, const AgentRequestCall *c, unsigned *changed,
                         char **ret_uri) {
        _cleanup_free_ char *uri = NULL;
        bool known;
        int r;

        if (!requester_valid(c->requester))
                return -EINVAL;
        r = component_valid(c->component);
        if (r < 0)
                return r;
        known = request_index_has(x, next, c->requester, c->component);
        if (!known) {
                size_t mine = request_index_count(x, next, c->requester);
                if (next->n_reqs >= AGENT_MAX_REQUESTS)
                        return -E2BIG;
                if (mine >= AGENT_MAX_REQUESTS_PER_REQUESTER)
                        return log_warning_errno(-E2BIG, "RequestTA by %s refused: it holds %zu requests already (limit %d)",
                                                 c->requester, mine, AGENT_MAX_REQUESTS_PER_REQUESTER);
        }

        if (agent_state_find_tc(next, c->component) < 0) {
                errno = 0;
                uri = choose_tam(a, c->tam_uris, NULL);
                if (!uri)
                        return errno == EADDRNOTAVAIL ? -EADDRNOTAVAIL : -ENOMEM;
                r = agent_tam_note_hints(a, c->component, c->tam_uris);
                if (r < 0)
                        return r;
        }

        if (!known) {
                r = agent_state_append_request(next, c->requester, c->component);
                if (r < 0)
                        return r;
                request_index_add(x, next, next->n_reqs - 1);
                *changed |= AGENT_CHANGED_REQUESTS | AGENT_CHANGED_PENDING;
        }
        if (agent_state_find_unneeded(next, c->component) >= 0) {
                /* needed again before the TAM removed it */
                agent_state_remove_unneeded(next, c->component);
                *changed |= AGENT_CHANGED_PENDING;
        }
        *ret_uri = TAKE_PTR(uri);
        return 0;
}

/* Where RequestTA and UnrequestTA make their change: with deferred saves the state itself (the
 * save only marks it, so nothing can fail after the change, and each change is all or nothing
 * on its own), else a copy that replaces the state once it is written. A copy of the whole state
 * per call cost O(requests) allocations on a used device. */
static int request_target(Agent *a, AgentState *copy, AgentState **ret) {
        int r = 0;

        *ret = &a->state;
        if (!a->defer_request_saves) {
                r = agent_state_copy(copy, &a->state);
                *ret = copy;
        }
        return r;
}

/* After the change in *t: the copy replaces the state (when one was made and changed). */
static void request_target_done(Agent *a, AgentState *copy, AgentState *t, bool changed) {
        if (t == &a->state)
                return;
        if (changed) {
                agent_state_done(&a->state);
                a->state = *copy;
                *copy = (AgentState){};
        } else
                agent_state_done(copy);
}

int agent_request_ta_many(Agent *a, size_t n, const AgentRequestCall *calls, int *ret_r, char **ret_uri) {
        AgentState copy = {}, *next;
        unsigned changed = 0;
        size_t n_before = a->state.n_reqs;
        int r;

        for (size_t i = 0; i < n; i++) {
                ret_r[i] = 0;
                ret_uri[i] = NULL;
        }
        r = request_target(a, &copy, &next);
        if (r < 0) {
                /* every call fails with it: callers answer each item from ret_r */
                for (size_t i = 0; i < n; i++)
                        ret_r[i] = r;
                return r;
        }
        {
                RequestIndex x;
                r = request_index_build(&x, next, next->n_reqs + n);
                for (size_t i = 0; i < n; i++)
                        /* a call that fails leaves next as it was (request_apply changes it last) */
                        ret_r[i] = r < 0 ? r : request_apply(a, next, &x, &calls[i], &changed, &ret_uri[i]);
                request_index_done(&x);
                r = 0;
        }
        /* one durable write for the whole batch: what a burst of requests costs is one save */
        if (changed)
                r = save_requests(a, next);
        if (r < 0) {
                /* only a copy's write fails (a deferred save only marks the state) */
                agent_state_done(&copy);
                for (size_t i = 0; i < n; i++) {
                        free(ret_uri[i]);
                        ret_uri[i] = NULL;
                        if (ret_r[i] >= 0)
                                ret_r[i] = r;
                }
                return r;
        }
        request_target_done(a, &copy, next, changed);
        /* one line a request; for a batch one line in all (the broker logs every job with its
         * requester, and a burst of a thousand lines would cost more than the requests) */
        {
                size_t ok = 0, installed = 0;
                for (size_t i = 0; i < n; i++) {
                        if (ret_r[i] < 0)
                                continue;
                        ok++;
                        installed += !ret_uri[i];
                        log_full(n == 1 ? LOG_INFO : LOG_DEBUG, "RequestTA %s by %s: %s", calls[i].component,
                                 calls[i].requester, ret_uri[i] ? ret_uri[i] : "already installed");
                }
                if (n > 1)
                        log_info("RequestTAMany: %zu request(s), %zu recorded (%zu already installed), %zu refused", n,
                                 ok, installed, n - ok);
        }
        /* request_apply() only appends: what this batch recorded is the tail */
        agent_notify_change(a, &(AgentChange){ .what = changed,
                                               .added = changed ? a->state.reqs + n_before : NULL,
                                               .n_added = changed ? a->state.n_reqs - n_before : 0 });
        return 0;
}

int agent_request_ta(Agent *a, const char *requester, const char *component, char *const *tam_uris, char **ret_uri) {
        const AgentRequestCall call = { .requester = requester, .component = component, .tam_uris = tam_uris };
        char *uri = NULL;
        int r, k;

        r = agent_request_ta_many(a, 1, &call, &k, &uri);
        if (r < 0)
                return r;
        if (k < 0)
                return k;
        *ret_uri = uri;
        return 0;
}

/* Whether a request other than the i-th names component. */
static bool requested_by_another(const AgentState *s, const char *component, size_t i) {
        for (size_t j = 0; j < s->n_reqs; j++)
                if (j != i && strcmp(s->reqs[j].component, component) == 0)
                        return true;
        return false;
}

int agent_unrequest_ta(Agent *a, const char *requester, const char *component, char **ret_uri) {
        AgentState copy = {}, *next;
        unsigned changed = AGENT_CHANGED_REQUESTS | AGENT_CHANGED_PENDING;
        char *uri = NULL;
        ssize_t i, tc;
        int r;

        if (!requester_valid(requester))
                return -EINVAL;
        r = component_valid(component);
        if (r < 0)
                return r;
        i = agent_state_find_request(&a->state, requester, component);
        if (i < 0)
                return -ENOENT;

        r = request_target(a, &copy, &next);
        if (r < 0)
                return r;
        /* what can fail first, so that a failure leaves next as it was: the last request for an
         * installed TC makes it unneeded, and a TAM is chosen to remove it */
        tc = agent_state_find_tc(next, component);
        if (tc >= 0 && !requested_by_another(next, component, (size_t)i)) {
                bool was_unneeded = agent_state_find_unneeded(next, component) >= 0;
                r = agent_state_add_unneeded(next, component);
                if (r >= 0) {
                        uri = choose_tam(a, NULL, next->tcs[tc].tam_uri);
                        if (!uri) {
                                r = errno == EADDRNOTAVAIL ? -EADDRNOTAVAIL : -ENOMEM;
                                if (!was_unneeded)
                                        agent_state_remove_unneeded(next, component);
                        }
                }
        }
        if (r >= 0) {
                agent_state_remove_request(next, (size_t)i);
                r = save_requests(a, next);
        }
        if (r < 0) {
                /* a failed add or choice changed nothing; a failed write was of the copy */
                agent_state_done(&copy);
                free(uri);
                return r;
        }
        request_target_done(a, &copy, next, true);
        log_info("UnrequestTA %s by %s: %s", component, requester,
                 uri ? uri : agent_state_is_requested(&a->state, component) ? "still needed by another requester"
                                                                             : "was not installed");
        agent_notify_change(a, &(AgentChange){ .what = changed,
                                               .removed = &(AgentRequest){ .component = (char *)component,
                                                                           .requester = (char *)requester },
                                               .n_removed = 1 });
        *ret_uri = uri;
        return 0;
}

int agent_request_policy_check(Agent *a, char **ret_uri) {
        char *uri = NULL;

        /* TAMs whose own PolicyCheckInterval= has not passed are left out of this round */
        while (a->policy_round < a->cfg.n_tams && !agent_tam_policy_due(a, a->policy_round))
                a->policy_round++;
        if (a->policy_round < a->cfg.n_tams) {
                uri = strdup(a->cfg.tams[a->policy_round].uri);
                if (!uri)
                        return -ENOMEM;
                a->policy_round++;
        } else
                a->policy_round = 0; /* round over: the next call starts a new one */
        *ret_uri = uri;
        return 0;
}

int agent_process_error(Agent *a, const char *tam_uri, const char *error, char **ret_next) {
        size_t t = agent_find_tam(a, tam_uri);
        bool work = false;
        char *next = NULL;

        /* outstanding exchanges with that TAM are over */
        for (size_t i = 0; i < AGENT_MAX_EXCHANGES; i++)
                if (a->exchanges[i].used && a->exchanges[i].tam_uri && tam_uri && strcmp(a->exchanges[i].tam_uri, tam_uri) == 0) {
                        free(a->exchanges[i].tam_uri);
                        a->exchanges[i] = (AgentExchange){};
                }
        {
                _cleanup_free_ const char **wanted = NULL;
                size_t n_wanted = 0;
                if (agent_state_wanted(&a->state, &wanted, &n_wanted) < 0)
                        n_wanted = 1; /* out of memory: assume there is work, try the next TAM */
                work = n_wanted > 0 || a->state.n_unneeded > 0;
        }
        if (work && t != SIZE_MAX) {
                errno = 0;
                next = agent_tam_next_after(a, tam_uri);
                if (!next && errno == ENOMEM)
                        return -ENOMEM;
        }
        log_warning("exchange with TAM %s failed: %s; next: %s", tam_uri ?: "?", error ?: "?", next ?: "none");
        *ret_next = next;
        return 0;
}
