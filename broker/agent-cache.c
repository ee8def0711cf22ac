/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-cache.c: see agent-cache.h */
#include "agent-cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void tcs_free(AgentTC *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(t[i].component);
                free(t[i].digest);
        }
        free(t);
}

static void requests_free(AgentRequest *q, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(q[i].component);
                free(q[i].requester);
        }
        free(q);
}

unsigned agent_cache_clear(AgentCache *c) {
        unsigned was = 0;

        if (c->version && *c->version)
                was |= AGENT_PROP_VERSION;
        if (c->n_tcs)
                was |= AGENT_PROP_INSTALLED;
        if (c->n_requests)
                was |= AGENT_PROP_REQUESTS;
        if (c->n_pending)
                was |= AGENT_PROP_PENDING;
        if (c->n_tam_uris)
                was |= AGENT_PROP_TAMS;
        free(c->version);
        tcs_free(c->tcs, c->n_tcs);
        requests_free(c->requests, c->n_requests);
        strv_free_n(c->pending, c->n_pending);
        strv_free_n(c->tam_uris, c->n_tam_uris);
        *c = (AgentCache){};
        return was;
}

void agent_cache_done(AgentCache *c) {
        (void)agent_cache_clear(c);
}

static int expect_variant(sd_bus_message *m, const char *signature) {
        const char *contents = NULL;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != SD_BUS_TYPE_VARIANT || !contents || strcmp(contents, signature) != 0)
                return -EBADMSG;
        return sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, signature);
}

static int read_strv(sd_bus_message *m, char ***ret, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;
        int r;

        r = expect_variant(m, "as");
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &v);
        if (r < 0)
                return r;
        while (v && v[n])
                n++;
        if (n > AGENT_CACHE_MAX_ENTRIES) {
                strv_free_n(v, n);
                return -E2BIG;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                strv_free_n(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int read_tcs(sd_bus_message *m, AgentTC **ret, size_t *ret_n) {
        AgentTC *t = NULL;
        size_t n = 0, alloc = 0;
        int r;

        r = expect_variant(m, "a(stay)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(stay)");
        if (r < 0)
                return r;
        for (;;) {
                const char *component;
                const void *digest;
                size_t digest_len;
                uint64_t seq;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "stay");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "st", &component, &seq);
                if (r >= 0)
                        r = sd_bus_message_read_array(m, 'y', &digest, &digest_len);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto fail;
                if (n >= AGENT_CACHE_MAX_ENTRIES) {
                        r = -E2BIG;
                        goto fail;
                }
                if (n == alloc) {
                        size_t a = alloc ? alloc * 2 : 8;
                        AgentTC *p = realloc(t, a * sizeof(*t));
                        if (!p) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        t = p;
                        alloc = a;
                }
                t[n] = (AgentTC){ .sequence = seq, .digest_len = digest_len };
                t[n].component = strdup(component);
                t[n].digest = malloc(digest_len ? digest_len : 1);
                if (!t[n].component || !t[n].digest) {
                        free(t[n].component);
                        free(t[n].digest);
                        r = -ENOMEM;
                        goto fail;
                }
                if (digest_len)
                        memcpy(t[n].digest, digest, digest_len);
                n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        *ret = t;
        *ret_n = n;
        return 0;
fail:
        tcs_free(t, n);
        return r;
}

/* An a(ss) at the current position of m. */
static int read_request_array(sd_bus_message *m, AgentRequest **ret, size_t *ret_n) {
        AgentRequest *q = NULL;
        size_t n = 0, alloc = 0;
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(ss)");
        if (r < 0)
                return r;
        for (;;) {
                const char *component, *requester;

                r = sd_bus_message_read(m, "(ss)", &component, &requester);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                if (n >= AGENT_CACHE_MAX_ENTRIES) {
                        r = -E2BIG;
                        goto fail;
                }
                if (n == alloc) {
                        size_t a = alloc ? alloc * 2 : 8;
                        AgentRequest *p = realloc(q, a * sizeof(*q));
                        if (!p) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        q = p;
                        alloc = a;
                }
                q[n].component = strdup(component);
                q[n].requester = strdup(requester);
                if (!q[n].component || !q[n].requester) {
                        free(q[n].component);
                        free(q[n].requester);
                        r = -ENOMEM;
                        goto fail;
                }
                n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        *ret = q;
        *ret_n = n;
        return 0;
fail:
        requests_free(q, n);
        return r;
}

static int read_requests(sd_bus_message *m, AgentRequest **ret, size_t *ret_n) {
        int r;

        r = expect_variant(m, "a(ss)");
        if (r >= 0)
                r = read_request_array(m, ret, ret_n);
        if (r >= 0) {
                r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        requests_free(*ret, *ret_n);
                        *ret = NULL;
                }
        }
        return r;
}

static bool strv_equal(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static bool tcs_equal(const AgentTC *a, size_t na, const AgentTC *b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a[i].component, b[i].component) != 0 || a[i].sequence != b[i].sequence ||
                    a[i].digest_len != b[i].digest_len || memcmp(a[i].digest, b[i].digest, a[i].digest_len) != 0)
                        return false;
        return true;
}

static bool requests_equal(const AgentRequest *a, size_t na, const AgentRequest *b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a[i].component, b[i].component) != 0 || strcmp(a[i].requester, b[i].requester) != 0)
                        return false;
        return true;
}

int agent_cache_apply(AgentCache *c, sd_bus_message *m, unsigned *ret_changed) {
        AgentCache new = {};
        unsigned seen = 0, changed = 0;
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        goto fail;
                if (strcmp(key, "Version") == 0 && !(seen & AGENT_PROP_VERSION)) {
                        const char *v;
                        r = expect_variant(m, "s");
                        if (r >= 0)
                                r = sd_bus_message_read(m, "s", &v);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r >= 0 && !(new.version = strdup(v)))
                                r = -ENOMEM;
                        seen |= AGENT_PROP_VERSION;
                } else if (strcmp(key, "InstalledTCs") == 0 && !(seen & AGENT_PROP_INSTALLED)) {
                        r = read_tcs(m, &new.tcs, &new.n_tcs);
                        seen |= AGENT_PROP_INSTALLED;
                } else if (strcmp(key, "Requests") == 0 && !(seen & AGENT_PROP_REQUESTS)) {
                        r = read_requests(m, &new.requests, &new.n_requests);
                        seen |= AGENT_PROP_REQUESTS;
                } else if (strcmp(key, "PendingRequests") == 0 && !(seen & AGENT_PROP_PENDING)) {
                        r = read_strv(m, &new.pending, &new.n_pending);
                        seen |= AGENT_PROP_PENDING;
                } else if (strcmp(key, "TamURIs") == 0 && !(seen & AGENT_PROP_TAMS)) {
                        r = read_strv(m, &new.tam_uris, &new.n_tam_uris);
                        seen |= AGENT_PROP_TAMS;
                } else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        goto fail;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto fail;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;

        /* All parsed: swap in what was present, note what really changed. */
        if (seen & AGENT_PROP_VERSION) {
                if (!c->version || strcmp(c->version, new.version) != 0)
                        changed |= AGENT_PROP_VERSION;
                free(c->version);
                c->version = TAKE_PTR(new.version);
        }
        if (seen & AGENT_PROP_INSTALLED) {
                if (!tcs_equal(c->tcs, c->n_tcs, new.tcs, new.n_tcs))
                        changed |= AGENT_PROP_INSTALLED;
                tcs_free(c->tcs, c->n_tcs);
                c->tcs = TAKE_PTR(new.tcs);
                c->n_tcs = new.n_tcs;
                new.n_tcs = 0;
        }
        if (seen & AGENT_PROP_REQUESTS) {
                if (!requests_equal(c->requests, c->n_requests, new.requests, new.n_requests))
                        changed |= AGENT_PROP_REQUESTS;
                requests_free(c->requests, c->n_requests);
                c->requests = TAKE_PTR(new.requests);
                c->n_requests = new.n_requests;
                new.n_requests = 0;
        }
        if (seen & AGENT_PROP_PENDING) {
                if (!strv_equal(c->pending, c->n_pending, new.pending, new.n_pending))
                        changed |= AGENT_PROP_PENDING;
                strv_free_n(c->pending, c->n_pending);
                c->pending = TAKE_PTR(new.pending);
                c->n_pending = new.n_pending;
                new.n_pending = 0;
        }
        if (seen & AGENT_PROP_TAMS) {
                if (!strv_equal(c->tam_uris, c->n_tam_uris, new.tam_uris, new.n_tam_uris))
                        changed |= AGENT_PROP_TAMS;
                strv_free_n(c->tam_uris, c->n_tam_uris);
                c->tam_uris = TAKE_PTR(new.tam_uris);
                c->n_tam_uris = new.n_tam_uris;
                new.n_tam_uris = 0;
        }
        agent_cache_done(&new);
        if (ret_changed)
                *ret_changed = changed;
        return 0;
fail:
        agent_cache_done(&new);
        return r;
}

int agent_cache_apply_requests_changed(AgentCache *c, sd_bus_message *m, unsigned *ret_changed) {
        AgentRequest *added = NULL, *removed = NULL;
        size_t n_added = 0, n_removed = 0, n;
        unsigned changed = 0;
        int r;

        r = read_request_array(m, &added, &n_added);
        if (r >= 0)
                r = read_request_array(m, &removed, &n_removed);
        /* removals are matched by a walk of the mirror each: bounded, so that a buggy agent's
         * signal costs at most AGENT_CACHE_MAX_REMOVALS walks (more: read everything again) */
        if (r >= 0 && (c->n_requests + n_added > AGENT_CACHE_MAX_ENTRIES || n_removed > AGENT_CACHE_MAX_REMOVALS))
                r = -E2BIG;
        if (r < 0)
                goto out;
        /* the agent removes in place and appends at the end: the same here keeps the two lists
         * in the same order, so a later GetAll finds nothing changed */
        n = c->n_requests;
        for (size_t k = 0; k < n_removed; k++)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(c->requests[i].component, removed[k].component) == 0 &&
                            strcmp(c->requests[i].requester, removed[k].requester) == 0) {
                                free(c->requests[i].component);
                                free(c->requests[i].requester);
                                memmove(c->requests + i, c->requests + i + 1, (n - i - 1) * sizeof(*c->requests));
                                n--;
                                changed = AGENT_PROP_REQUESTS;
                                break;
                        }
        c->n_requests = n;
        if (n_added > 0) {
                AgentRequest *q = realloc(c->requests, (n + n_added) * sizeof(*q));
                if (!q) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(q + n, added, n_added * sizeof(*q));
                c->requests = q;
                c->n_requests = n + n_added;
                free(added); /* the strings are the cache's now */
                added = NULL;
                n_added = 0;
                changed = AGENT_PROP_REQUESTS;
        }
out:
        requests_free(added, n_added);
        requests_free(removed, n_removed);
        if (ret_changed)
                *ret_changed = r < 0 ? 0 : changed;
        return r;
}

bool agent_cache_has_tc(const AgentCache *c, const char *component) {
        for (size_t i = 0; i < c->n_tcs; i++)
                if (strcmp(c->tcs[i].component, component) == 0)
                        return true;
        return false;
}

bool agent_cache_requested_by_other(const AgentCache *c, const char *component, const char *requester) {
        for (size_t i = 0; i < c->n_requests; i++)
                if (strcmp(c->requests[i].component, component) == 0 &&
                    strcmp(c->requests[i].requester, requester) != 0)
                        return true;
        return false;
}

void agent_cache_property_names(unsigned mask, const char *names[static 6]) {
        size_t n = 0;

        if (mask & AGENT_PROP_VERSION)
                names[n++] = "AgentVersion";
        if (mask & AGENT_PROP_INSTALLED)
                names[n++] = "InstalledTCs";
        if (mask & AGENT_PROP_REQUESTS)
                names[n++] = "Requests";
        if (mask & AGENT_PROP_PENDING)
                names[n++] = "PendingRequests";
        if (mask & AGENT_PROP_TAMS)
                names[n++] = "TamURIs";
        names[n] = NULL;
}
