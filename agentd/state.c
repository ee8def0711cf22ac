/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* state.c: the agent's persistent state — installed TCs, requests, anti-rollback floor, journal */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "fileio.h"
#include "macro.h"
#include "strset.h"

/*
 * The state file is line-oriented text, one record per line, fields separated by one space;
 * every field is %XX-escaped for bytes <= 0x20, '%' and >= 0x7f, so a record is always one
 * line. The same state always serializes to the same bytes (records in list order).
 *
 *   teep-agentd-state 1
 *   tc COMPONENT SEQ SHA256 SIZE MANIFEST_SHA256 MANIFEST_ID|- TAM_URI|-
 *   journal install|remove COMPONENT SEQ SHA256 SIZE MANIFEST_SHA256 MANIFEST_ID|- TAM_URI|-
 *   req COMPONENT REQUESTER
 *   unneeded COMPONENT
 *   seen COMPONENT SEQ
 */

#define STATE_MAGIC "teep-agentd-state 1"
#define STATE_MAX_FIELDS 10

void agent_tc_done(AgentTc *tc) {
        if (!tc)
                return;
        free(tc->component);
        free(tc->manifest_id);
        free(tc->tam_uri);
        *tc = (AgentTc){};
}

static char *strdup_or_null(const char *s, bool *oom) {
        char *c;
        if (!s)
                return NULL;
        c = strdup(s);
        if (!c)
                *oom = true;
        return c;
}

int agent_tc_copy(AgentTc *dst, const AgentTc *src) {
        bool oom = false;

        *dst = *src;
        dst->component = strdup_or_null(src->component, &oom);
        dst->manifest_id = strdup_or_null(src->manifest_id, &oom);
        dst->tam_uri = strdup_or_null(src->tam_uri, &oom);
        if (oom) {
                agent_tc_done(dst);
                return -ENOMEM;
        }
        return 0;
}

void agent_state_done(AgentState *s) {
        for (size_t i = 0; i < s->n_tcs; i++)
                agent_tc_done(&s->tcs[i]);
        free(s->tcs);
        for (size_t i = 0; i < s->n_reqs; i++) {
                free(s->reqs[i].component);
                free(s->reqs[i].requester);
        }
        free(s->reqs);
        for (size_t i = 0; i < s->n_unneeded; i++)
                free(s->unneeded[i]);
        free(s->unneeded);
        for (size_t i = 0; i < s->n_seen; i++)
                free(s->seen[i].component);
        free(s->seen);
        for (size_t i = 0; i < s->n_journal; i++)
                agent_tc_done(&s->journal[i].tc);
        free(s->journal);
        *s = (AgentState){};
}

static int grow(void **p, size_t n, size_t size) {
        void *np = reallocarray(*p, n + 1, size);
        if (!np)
                return -ENOMEM;
        *p = np;
        return 0;
}

int agent_state_add_tc(AgentState *s, const AgentTc *tc) {
        AgentTc copy;
        ssize_t i;
        int r;

        r = agent_tc_copy(&copy, tc);
        if (r < 0)
                return r;
        i = agent_state_find_tc(s, tc->component);
        if (i >= 0) {
                agent_tc_done(&s->tcs[i]);
                s->tcs[i] = copy;
                return 0;
        }
        r = grow((void **)&s->tcs, s->n_tcs, sizeof(AgentTc));
        if (r < 0) {
                agent_tc_done(&copy);
                return r;
        }
        s->tcs[s->n_tcs++] = copy;
        return 0;
}

void agent_state_remove_tc(AgentState *s, const char *component) {
        ssize_t i = agent_state_find_tc(s, component);
        if (i < 0)
                return;
        agent_tc_done(&s->tcs[i]);
        memmove(&s->tcs[i], &s->tcs[i + 1], (s->n_tcs - (size_t)i - 1) * sizeof(AgentTc));
        s->n_tcs--;
}

int agent_state_add_request(AgentState *s, const char *requester, const char *component) {
        if (agent_state_find_request(s, requester, component) >= 0)
                return 0;
        return agent_state_append_request(s, requester, component);
}

int agent_state_append_request(AgentState *s, const char *requester, const char *component) {
        char *c, *q;
        int r;

        r = grow((void **)&s->reqs, s->n_reqs, sizeof(AgentRequest));
        if (r < 0)
                return r;
        c = strdup(component);
        q = strdup(requester);
        if (!c || !q) {
                free(c);
                free(q);
                return -ENOMEM;
        }
        s->reqs[s->n_reqs++] = (AgentRequest){ .component = c, .requester = q };
        return 1;
}

void agent_state_remove_request(AgentState *s, size_t i) {
        if (i >= s->n_reqs)
                return;
        free(s->reqs[i].component);
        free(s->reqs[i].requester);
        memmove(&s->reqs[i], &s->reqs[i + 1], (s->n_reqs - i - 1) * sizeof(AgentRequest));
        s->n_reqs--;
}

int agent_state_add_unneeded(AgentState *s, const char *component) {
        char *c;
        int r;

        if (agent_state_find_unneeded(s, component) >= 0)
                return 0;
        r = grow((void **)&s->unneeded, s->n_unneeded, sizeof(char *));
        if (r < 0)
                return r;
        c = strdup(component);
        if (!c)
                return -ENOMEM;
        s->unneeded[s->n_unneeded++] = c;
        return 1;
}

void agent_state_remove_unneeded(AgentState *s, const char *component) {
        ssize_t i = agent_state_find_unneeded(s, component);
        if (i < 0)
                return;
        free(s->unneeded[i]);
        memmove(&s->unneeded[i], &s->unneeded[i + 1], (s->n_unneeded - (size_t)i - 1) * sizeof(char *));
        s->n_unneeded--;
}

int agent_state_note_seen(AgentState *s, const char *component, uint64_t seq) {
        char *c;
        int r;

        for (size_t i = 0; i < s->n_seen; i++)
                if (strcmp(s->seen[i].component, component) == 0) {
                        if (seq > s->seen[i].seq)
                                s->seen[i].seq = seq;
                        return 0;
                }
        r = grow((void **)&s->seen, s->n_seen, sizeof(AgentSeen));
        if (r < 0)
                return r;
        c = strdup(component);
        if (!c)
                return -ENOMEM;
        s->seen[s->n_seen++] = (AgentSeen){ .component = c, .seq = seq };
        return 0;
}

int agent_state_add_journal(AgentState *s, AgentJournalOp op, const AgentTc *tc) {
        AgentTc copy;
        int r;

        r = grow((void **)&s->journal, s->n_journal, sizeof(AgentJournal));
        if (r < 0)
                return r;
        r = agent_tc_copy(&copy, tc);
        if (r < 0)
                return r;
        s->journal[s->n_journal++] = (AgentJournal){ .op = op, .tc = copy };
        return 0;
}

/* An array of n elements of size, or NULL for none; false when out of memory. */
static bool alloc_copy_array(void **ret, size_t n, size_t size) {
        *ret = NULL;
        return n == 0 || (*ret = calloc(n, size));
}

/* The lists of src hold no duplicates (every agent_state_add_*() and agent_state_note_seen()
 * looks first, and agent_state_parse() goes through them): each is copied as it is, in one
 * allocation and without those lookups, so a copy costs O(n), not O(n²) — it is taken for
 * every change (a journal, each answered request), with up to AGENT_MAX_TCS components and
 * thousands of requests. */
int agent_state_copy(AgentState *dst, const AgentState *src) {
        AgentState n = {};
        int r = 0;

        if (!alloc_copy_array((void **)&n.tcs, src->n_tcs, sizeof(AgentTc)) ||
            !alloc_copy_array((void **)&n.reqs, src->n_reqs, sizeof(AgentRequest)) ||
            !alloc_copy_array((void **)&n.unneeded, src->n_unneeded, sizeof(char *)) ||
            !alloc_copy_array((void **)&n.seen, src->n_seen, sizeof(AgentSeen)) ||
            !alloc_copy_array((void **)&n.journal, src->n_journal, sizeof(AgentJournal)))
                r = -ENOMEM;
        for (size_t i = 0; i < src->n_tcs && r >= 0; i++)
                if ((r = agent_tc_copy(&n.tcs[i], &src->tcs[i])) >= 0)
                        n.n_tcs++;
        for (size_t i = 0; i < src->n_reqs && r >= 0; i++) {
                AgentRequest q = { .component = strdup(src->reqs[i].component),
                                   .requester = strdup(src->reqs[i].requester) };
                if (!q.component || !q.requester) {
                        free(q.component);
                        free(q.requester);
                        r = -ENOMEM;
                } else
                        n.reqs[n.n_reqs++] = q;
        }
        for (size_t i = 0; i < src->n_unneeded && r >= 0; i++)
                if ((n.unneeded[i] = strdup(src->unneeded[i])))
                        n.n_unneeded++;
                else
                        r = -ENOMEM;
        for (size_t i = 0; i < src->n_seen && r >= 0; i++)
                if ((n.seen[i].component = strdup(src->seen[i].component))) {
                        n.seen[i].seq = src->seen[i].seq;
                        n.n_seen++;
                } else
                        r = -ENOMEM;
        for (size_t i = 0; i < src->n_journal && r >= 0; i++)
                if ((r = agent_tc_copy(&n.journal[i].tc, &src->journal[i].tc)) >= 0) {
                        n.journal[i].op = src->journal[i].op;
                        n.n_journal++;
                }
        if (r < 0) {
                agent_state_done(&n);
                return r;
        }
        *dst = n;
        return 0;
}

ssize_t agent_state_find_tc(const AgentState *s, const char *component) {
        for (size_t i = 0; i < s->n_tcs; i++)
                if (strcmp(s->tcs[i].component, component) == 0)
                        return (ssize_t)i;
        return -1;
}

int agent_state_wanted(const AgentState *s, const char ***ret, size_t *ret_n) {
        StrSet installed = {}, seen = {};
        const char **list;
        size_t n = 0;
        int r;

        list = calloc(s->n_reqs + 1, sizeof(char *));
        if (!list)
                return -ENOMEM;
        r = strset_init(&installed, s->n_tcs);
        if (r >= 0)
                r = strset_init(&seen, s->n_reqs);
        for (size_t i = 0; i < s->n_tcs && r >= 0; i++)
                r = strset_add(&installed, s->tcs[i].component);
        for (size_t i = 0; i < s->n_reqs && r >= 0; i++) {
                const char *c = s->reqs[i].component;
                if (strset_contains(&installed, c))
                        continue;
                r = strset_add(&seen, c);
                if (r > 0)
                        list[n++] = c;
        }
        strset_done(&installed);
        strset_done(&seen);
        if (r < 0) {
                free(list);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

ssize_t agent_state_find_tc_by_manifest_id(const AgentState *s, const char *manifest_id) {
        for (size_t i = 0; i < s->n_tcs; i++)
                if (strcmp(s->tcs[i].manifest_id ?: s->tcs[i].component, manifest_id) == 0)
                        return (ssize_t)i;
        /* a TAM that names the TC itself rather than its manifest */
        return agent_state_find_tc(s, manifest_id);
}

ssize_t agent_state_find_request(const AgentState *s, const char *requester, const char *component) {
        for (size_t i = 0; i < s->n_reqs; i++)
                if (strcmp(s->reqs[i].component, component) == 0 && strcmp(s->reqs[i].requester, requester) == 0)
                        return (ssize_t)i;
        return -1;
}

bool agent_state_is_requested(const AgentState *s, const char *component) {
        for (size_t i = 0; i < s->n_reqs; i++)
                if (strcmp(s->reqs[i].component, component) == 0)
                        return true;
        return false;
}

ssize_t agent_state_find_unneeded(const AgentState *s, const char *component) {
        for (size_t i = 0; i < s->n_unneeded; i++)
                if (strcmp(s->unneeded[i], component) == 0)
                        return (ssize_t)i;
        return -1;
}

uint64_t agent_state_seen_seq(const AgentState *s, const char *component, bool *ret_found) {
        for (size_t i = 0; i < s->n_seen; i++)
                if (strcmp(s->seen[i].component, component) == 0) {
                        if (ret_found)
                                *ret_found = true;
                        return s->seen[i].seq;
                }
        if (ret_found)
                *ret_found = false;
        return 0;
}

/* ---- text form ---- */

typedef struct Out {
        char *buf;
        size_t len, cap;
        bool oom;
} Out;

static void out_raw(Out *o, const char *p, size_t n) {
        if (o->oom)
                return;
        if (o->len + n + 1 > o->cap) {
                size_t cap = (o->cap ? o->cap * 2 : 1024);
                char *nb;
                while (cap < o->len + n + 1)
                        cap *= 2;
                nb = realloc(o->buf, cap);
                if (!nb) {
                        o->oom = true;
                        return;
                }
                o->buf = nb;
                o->cap = cap;
        }
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        o->buf[o->len] = '\0';
}

static void out_str(Out *o, const char *s) {
        out_raw(o, s, strlen(s));
}

/* One escaped field, preceded by a space. NULL is written "-" (and "-" itself as "%2d"). */
static void out_field(Out *o, const char *s) {
        out_raw(o, " ", 1);
        if (!s) {
                out_raw(o, "-", 1);
                return;
        }
        if (strcmp(s, "-") == 0) {
                out_str(o, "%2d");
                return;
        }
        if (!*s) {
                out_str(o, "%");
                return;
        }
        /* runs of plain characters go out in one copy: a save writes every request */
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
                const unsigned char *q = p;
                while (*q > 0x20 && *q < 0x7f && *q != '%')
                        q++;
                out_raw(o, (const char *)p, (size_t)(q - p));
                if (!*q)
                        break;
                {
                        static const char hexd[] = "0123456789abcdef";
                        const char esc[3] = { '%', hexd[*q >> 4], hexd[*q & 15] };
                        out_raw(o, esc, 3);
                }
                p = q + 1;
        }
}

static void out_u64(Out *o, uint64_t v) {
        char b[32];
        (void)snprintf(b, sizeof(b), " %" PRIu64, v);
        out_str(o, b);
}

static void out_hex(Out *o, const uint8_t *p, size_t n) {
        char h[2 * 32 + 1];
        out_raw(o, " ", 1);
        out_str(o, hexstr(p, n, h));
}

static void out_tc_fields(Out *o, const AgentTc *tc) {
        out_field(o, tc->component);
        out_u64(o, tc->seq);
        out_hex(o, tc->sha256, 32);
        out_u64(o, tc->size);
        out_hex(o, tc->manifest_hash, 32);
        out_field(o, tc->manifest_id);
        out_field(o, tc->tam_uri);
}

int agent_state_serialize(const AgentState *s, char **ret, size_t *ret_len) {
        Out o = {};

        out_str(&o, STATE_MAGIC "\n");
        for (size_t i = 0; i < s->n_tcs; i++) {
                out_str(&o, "tc");
                out_tc_fields(&o, &s->tcs[i]);
                out_str(&o, "\n");
        }
        for (size_t i = 0; i < s->n_journal; i++) {
                out_str(&o, s->journal[i].op == AGENT_JOURNAL_INSTALL ? "journal install" : "journal remove");
                out_tc_fields(&o, &s->journal[i].tc);
                out_str(&o, "\n");
        }
        for (size_t i = 0; i < s->n_reqs; i++) {
                out_str(&o, "req");
                out_field(&o, s->reqs[i].component);
                out_field(&o, s->reqs[i].requester);
                out_str(&o, "\n");
        }
        for (size_t i = 0; i < s->n_unneeded; i++) {
                out_str(&o, "unneeded");
                out_field(&o, s->unneeded[i]);
                out_str(&o, "\n");
        }
        for (size_t i = 0; i < s->n_seen; i++) {
                out_str(&o, "seen");
                out_field(&o, s->seen[i].component);
                out_u64(&o, s->seen[i].seq);
                out_str(&o, "\n");
        }
        if (o.oom) {
                free(o.buf);
                return -ENOMEM;
        }
        *ret = o.buf;
        *ret_len = o.len;
        return 0;
}

/* Unescape a field in place. "-" becomes NULL (*ret_null). */
static int field_unescape(char *f, bool *ret_null) {
        char *w = f;

        *ret_null = strcmp(f, "-") == 0;
        if (*ret_null)
                return 0;
        if (strcmp(f, "%") == 0) {
                *f = '\0';
                return 0;
        }
        for (char *p = f; *p; p++) {
                if (*p == '%') {
                        int hi = unhexchar(p[1]), lo = hi >= 0 ? unhexchar(p[2]) : -1;
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                                return -EBADMSG;
                        *w++ = (char)(hi * 16 + lo);
                        p += 2;
                } else
                        *w++ = *p;
        }
        *w = '\0';
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!*s || *s == '-' || *s == '+')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int parse_sha(const char *s, uint8_t ret[32]) {
        if (strlen(s) != 64)
                return -EBADMSG;
        for (size_t i = 0; i < 32; i++) {
                int hi = unhexchar(s[2 * i]), lo = unhexchar(s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                ret[i] = (uint8_t)(hi * 16 + lo);
        }
        return 0;
}

/* fields[0..6]: component seq sha size mhash mid tam */
static int parse_tc(char **f, bool *isnull, AgentTc *ret) {
        AgentTc tc = {};
        int r;

        if (isnull[0])
                return -EBADMSG;
        r = parse_u64(f[1], &tc.seq);
        if (r >= 0)
                r = parse_sha(f[2], tc.sha256);
        if (r >= 0)
                r = parse_u64(f[3], &tc.size);
        if (r >= 0)
                r = parse_sha(f[4], tc.manifest_hash);
        if (r < 0)
                return r;
        tc.component = f[0];
        tc.manifest_id = isnull[5] ? NULL : f[5];
        tc.tam_uri = isnull[6] ? NULL : f[6];
        *ret = tc; /* views into the line: the caller copies */
        return 0;
}

int agent_state_parse(const char *text, size_t len, AgentState *ret) {
        _cleanup_free_ char *copy = NULL;
        AgentState s = {};
        char *line, *save = NULL;
        size_t lineno = 0;
        int r = 0;

        if (memchr(text, '\0', len))
                return -EBADMSG;
        copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;

        for (line = strtok_r(copy, "\n", &save); line && r >= 0; line = strtok_r(NULL, "\n", &save)) {
                char *f[STATE_MAX_FIELDS + 1], *tok, *save2 = NULL;
                bool isnull[STATE_MAX_FIELDS + 1];
                size_t n = 0;
                AgentTc tc;

                lineno++;
                if (lineno == 1) {
                        if (strcmp(line, STATE_MAGIC) != 0)
                                r = -EBADMSG;
                        continue;
                }
                for (tok = strtok_r(line, " ", &save2); tok; tok = strtok_r(NULL, " ", &save2)) {
                        if (n > STATE_MAX_FIELDS) {
                                r = -EBADMSG;
                                break;
                        }
                        f[n++] = tok;
                }
                if (r < 0 || n == 0)
                        break;
                for (size_t i = 1; i < n && r >= 0; i++)
                        r = field_unescape(f[i], &isnull[i]);
                if (r < 0)
                        break;

                if (strcmp(f[0], "tc") == 0 && n == 8) {
                        r = parse_tc(f + 1, isnull + 1, &tc);
                        if (r >= 0)
                                r = agent_state_add_tc(&s, &tc);
                } else if (strcmp(f[0], "journal") == 0 && n == 9) {
                        bool inst = strcmp(f[1], "install") == 0;
                        if (!inst && strcmp(f[1], "remove") != 0)
                                r = -EBADMSG;
                        if (r >= 0)
                                r = parse_tc(f + 2, isnull + 2, &tc);
                        if (r >= 0)
                                r = agent_state_add_journal(&s, inst ? AGENT_JOURNAL_INSTALL : AGENT_JOURNAL_REMOVE, &tc);
                } else if (strcmp(f[0], "req") == 0 && n == 3 && !isnull[1] && !isnull[2]) {
                        r = agent_state_add_request(&s, f[2], f[1]);
                } else if (strcmp(f[0], "unneeded") == 0 && n == 2 && !isnull[1]) {
                        r = agent_state_add_unneeded(&s, f[1]);
                } else if (strcmp(f[0], "seen") == 0 && n == 3 && !isnull[1]) {
                        uint64_t seq;
                        r = parse_u64(f[2], &seq);
                        if (r >= 0)
                                r = agent_state_note_seen(&s, f[1], seq);
                } else
                        r = -EBADMSG;
        }
        if (r >= 0 && lineno == 0)
                r = -EBADMSG;
        if (r < 0) {
                agent_state_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}
