/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conf.c: a small INI reader with drop-ins (see conf.h for the syntax and the rules) */
#include "conf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"

typedef struct Entry {
        char *key;
        char *value; /* "" = an empty assignment (clears lists and single values) */
        char *where; /* "file:line" */
} Entry;

struct TeepConfSection {
        char *name;
        char *where; /* "file:line" of the [Header] */
        Entry *entries;
        size_t n_entries;
};

struct TeepConf {
        TeepConfSection *sections;
        size_t n_sections;
};

void teep_errfmt(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;

        if (!buf || size == 0)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

TeepConf *teep_conf_free(TeepConf *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_sections; i++) {
                TeepConfSection *s = &c->sections[i];
                for (size_t j = 0; j < s->n_entries; j++) {
                        free(s->entries[j].key);
                        free(s->entries[j].value);
                        free(s->entries[j].where);
                }
                free(s->entries);
                free(s->name);
                free(s->where);
        }
        free(c->sections);
        free(c);
        return NULL;
}

static char *strip(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

static bool valid_name(const char *s, bool section) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && !(section && *s == '.'))
                        return false;
        return true;
}

static int add_section(TeepConf *c, const char *name, const char *file, unsigned line) {
        TeepConfSection *n = realloc(c->sections, (c->n_sections + 1) * sizeof(*n));
        TeepConfSection *s;

        if (!n)
                return -ENOMEM;
        c->sections = n;
        s = &n[c->n_sections];
        *s = (TeepConfSection){ .name = strdup(name) };
        if (asprintf(&s->where, "%s:%u", file, line) < 0)
                s->where = NULL;
        if (!s->name || !s->where) {
                free(s->name);
                free(s->where);
                return -ENOMEM;
        }
        c->n_sections++;
        return 0;
}

static int add_entry(TeepConfSection *s, const char *key, const char *value, const char *file, unsigned line) {
        Entry *n = realloc(s->entries, (s->n_entries + 1) * sizeof(*n));
        Entry *e;

        if (!n)
                return -ENOMEM;
        s->entries = n;
        e = &n[s->n_entries];
        *e = (Entry){ .key = strdup(key), .value = strdup(value) };
        if (asprintf(&e->where, "%s:%u", file, line) < 0)
                e->where = NULL;
        if (!e->key || !e->value || !e->where) {
                free(e->key);
                free(e->value);
                free(e->where);
                return -ENOMEM;
        }
        s->n_entries++;
        return 0;
}

/* Parse text (NUL-terminated, modified in place) into c. */
static int parse_into(TeepConf *c, char *text, const char *name, char *errbuf, size_t errbuf_size) {
        TeepConfSection *cur = NULL;
        unsigned lineno = 0;
        char *save = NULL;
        int r;

        for (char *p = text; p; p = save) {
                char *line, *eq;

                save = strchr(p, '\n');
                if (save)
                        *save++ = '\0';
                lineno++;
                if (strlen(p) > TEEP_CONF_MAX_LINE) {
                        teep_errfmt(errbuf, errbuf_size, "%s:%u: line longer than %u bytes", name, lineno,
                               TEEP_CONF_MAX_LINE);
                        return -EBADMSG;
                }
                line = strip(p);
                if (*line == '\0' || *line == '#' || *line == ';')
                        continue;
                for (const char *q = line; *q; q++)
                        if ((unsigned char)*q < 0x20 && *q != '\t') {
                                teep_errfmt(errbuf, errbuf_size, "%s:%u: control character", name, lineno);
                                return -EBADMSG;
                        }
                if (*line == '[') {
                        size_t n = strlen(line);
                        if (n < 3 || line[n - 1] != ']') {
                                teep_errfmt(errbuf, errbuf_size, "%s:%u: bad section header", name, lineno);
                                return -EBADMSG;
                        }
                        line[n - 1] = '\0';
                        line = strip(line + 1);
                        if (!valid_name(line, true)) {
                                teep_errfmt(errbuf, errbuf_size, "%s:%u: bad section name", name, lineno);
                                return -EBADMSG;
                        }
                        r = add_section(c, line, name, lineno);
                        if (r < 0)
                                return r;
                        cur = &c->sections[c->n_sections - 1];
                        continue;
                }
                eq = strchr(line, '=');
                if (!eq) {
                        teep_errfmt(errbuf, errbuf_size, "%s:%u: expected Key=Value", name, lineno);
                        return -EBADMSG;
                }
                *eq = '\0';
                if (!cur) {
                        teep_errfmt(errbuf, errbuf_size, "%s:%u: assignment outside a [Section]", name, lineno);
                        return -EBADMSG;
                }
                if (!valid_name(strip(line), false)) {
                        teep_errfmt(errbuf, errbuf_size, "%s:%u: bad key name", name, lineno);
                        return -EBADMSG;
                }
                r = add_entry(cur, strip(line), strip(eq + 1), name, lineno);
                if (r < 0)
                        return r;
        }
        return 0;
}

int teep_conf_load_string(const char *text, const char *name, TeepConf **ret, char *errbuf, size_t errbuf_size) {
        _cleanup_(teep_conf_freep) TeepConf *c = calloc(1, sizeof(*c));
        _cleanup_free_ char *copy = strdup(text);
        int r;

        if (!c || !copy)
                return -ENOMEM;
        r = parse_into(c, copy, name, errbuf, errbuf_size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int load_file(TeepConf *c, const char *path, bool must_exist, char *errbuf, size_t errbuf_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        r = read_full_file(path, TEEP_CONF_MAX_FILE, &buf, &len);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r < 0) {
                teep_errfmt(errbuf, errbuf_size, "%s: %s", path,
                       r == -EFBIG ? "larger than the configuration limit" : strerror(-r));
                return r;
        }
        if (memchr(buf, '\0', len)) {
                teep_errfmt(errbuf, errbuf_size, "%s: contains a NUL byte", path);
                return -EBADMSG;
        }
        return parse_into(c, (char *)buf, path, errbuf, errbuf_size);
}

static int cmpstr(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int teep_conf_load(const char *path, TeepConf **ret, char *errbuf, size_t errbuf_size) {
        _cleanup_(teep_conf_freep) TeepConf *c = calloc(1, sizeof(*c));
        _cleanup_free_ char *dir = NULL;
        char **names = NULL;
        size_t n = 0;
        DIR *d;
        int r;

        if (!c)
                return -ENOMEM;
        if (path) {
                r = load_file(c, path, false, errbuf, errbuf_size);
                if (r < 0)
                        return r;
                if (asprintf(&dir, "%s.d", path) < 0)
                        return -ENOMEM;
                d = opendir(dir);
                if (d) {
                        struct dirent *de;
                        r = 0;
                        while ((de = readdir(d))) {
                                size_t l = strlen(de->d_name);
                                char **nn;
                                if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
                                        continue;
                                nn = realloc(names, (n + 1) * sizeof(*nn));
                                if (!nn || !(nn[n] = strdup(de->d_name))) {
                                        names = nn ? nn : names;
                                        r = -ENOMEM;
                                        break;
                                }
                                names = nn;
                                n++;
                        }
                        closedir(d);
                        if (r == 0 && n > 0)
                                qsort(names, n, sizeof(*names), cmpstr);
                        for (size_t i = 0; r == 0 && i < n; i++) {
                                _cleanup_free_ char *p = NULL;
                                if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
                                        r = -ENOMEM;
                                else
                                        r = load_file(c, p, true, errbuf, errbuf_size);
                        }
                        for (size_t i = 0; i < n; i++)
                                free(names[i]);
                        free(names);
                        if (r < 0)
                                return r;
                } else if (errno != ENOENT && errno != ENOTDIR) {
                        r = -errno;
                        teep_errfmt(errbuf, errbuf_size, "%s: %s", dir, strerror(-r));
                        return r;
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

const TeepConfSection *teep_conf_sections(const TeepConf *c, const char *name, const TeepConfSection *prev) {
        size_t i = 0;

        if (!c)
                return NULL;
        if (prev)
                i = (size_t)(prev - c->sections) + 1;
        for (; i < c->n_sections; i++)
                if (strcmp(c->sections[i].name, name) == 0)
                        return &c->sections[i];
        return NULL;
}

static const Entry *last_entry(const TeepConfSection *s, const char *key) {
        for (size_t j = s->n_entries; j > 0; j--)
                if (strcmp(s->entries[j - 1].key, key) == 0)
                        return &s->entries[j - 1];
        return NULL;
}

const char *teep_conf_section_get(const TeepConfSection *s, const char *key) {
        const Entry *e = s ? last_entry(s, key) : NULL;
        return e && e->value[0] ? e->value : NULL;
}

const char *teep_conf_section_where(const TeepConfSection *s, const char *key) {
        const Entry *e = s ? last_entry(s, key) : NULL;
        return e ? e->where : NULL;
}

size_t teep_conf_n_sections(const TeepConf *c) {
        return c ? c->n_sections : 0;
}

const TeepConfSection *teep_conf_section_at(const TeepConf *c, size_t i) {
        return c && i < c->n_sections ? &c->sections[i] : NULL;
}

const char *teep_conf_section_name(const TeepConfSection *s) {
        return s ? s->name : NULL;
}

const char *teep_conf_section_header_where(const TeepConfSection *s) {
        return s ? s->where : NULL;
}

size_t teep_conf_section_n_entries(const TeepConfSection *s) {
        return s ? s->n_entries : 0;
}

int teep_conf_section_entry(const TeepConfSection *s, size_t i, const char **ret_key, const char **ret_value,
                            const char **ret_where) {
        if (!s || i >= s->n_entries)
                return -ERANGE;
        if (ret_key)
                *ret_key = s->entries[i].key;
        if (ret_value)
                *ret_value = s->entries[i].value;
        if (ret_where)
                *ret_where = s->entries[i].where;
        return 0;
}

/* Append the values of key in s to *list (clearing on empty assignments). */
static int collect(const TeepConfSection *s, const char *key, const char ***list, size_t *n) {
        for (size_t j = 0; j < s->n_entries; j++) {
                const char **nl;
                if (strcmp(s->entries[j].key, key) != 0)
                        continue;
                if (s->entries[j].value[0] == '\0') {
                        *n = 0;
                        continue;
                }
                nl = realloc(*list, (*n + 2) * sizeof(*nl));
                if (!nl)
                        return -ENOMEM;
                *list = nl;
                nl[(*n)++] = s->entries[j].value;
                nl[*n] = NULL;
        }
        return 0;
}

static int finish_list(const char **list, size_t n, const char ***ret) {
        if (!list) {
                list = calloc(1, sizeof(*list));
                if (!list)
                        return -ENOMEM;
        }
        list[n] = NULL;
        *ret = list;
        return (int)n;
}

int teep_conf_section_get_list(const TeepConfSection *s, const char *key, const char ***ret) {
        const char **list = NULL;
        size_t n = 0;

        if (s && collect(s, key, &list, &n) < 0) {
                free(list);
                return -ENOMEM;
        }
        return finish_list(list, n, ret);
}

const char *teep_conf_get(const TeepConf *c, const char *section, const char *key) {
        const char *v = NULL;
        bool set = false;

        for (const TeepConfSection *s = teep_conf_sections(c, section, NULL); s;
             s = teep_conf_sections(c, section, s))
                if (last_entry(s, key)) {
                        v = teep_conf_section_get(s, key);
                        set = true;
                }
        return set ? v : NULL;
}

int teep_conf_get_list(const TeepConf *c, const char *section, const char *key, const char ***ret) {
        const char **list = NULL;
        size_t n = 0;

        for (const TeepConfSection *s = teep_conf_sections(c, section, NULL); s;
             s = teep_conf_sections(c, section, s))
                if (collect(s, key, &list, &n) < 0) {
                        free(list);
                        return -ENOMEM;
                }
        return finish_list(list, n, ret);
}

int teep_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* A decimal number followed by one of the suffixes, each with its multiplier. */
static int parse_suffixed(const char *s, const char *const *suffixes, const uint64_t *mult, size_t n, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < n; i++)
                if (strcmp(end, suffixes[i]) == 0) {
                        if (mult[i] && v > UINT64_MAX / mult[i])
                                return -ERANGE;
                        *ret = (uint64_t)v * mult[i];
                        return 0;
                }
        return -EINVAL;
}

int teep_parse_size(const char *s, uint64_t *ret) {
        static const char *const sfx[] = { "", "B", "K", "KiB", "M", "MiB", "G", "GiB" };
        static const uint64_t mult[] = { 1, 1, 1024, 1024, 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024ull,
                                         1024 * 1024 * 1024ull };
        return parse_suffixed(s, sfx, mult, ELEMENTSOF(sfx), ret);
}

int teep_parse_usec(const char *s, uint64_t *ret) {
        static const char *const sfx[] = { "", "s", "sec", "ms", "us", "min", "m", "h", "d" };
        static const uint64_t mult[] = { 1000000, 1000000, 1000000, 1000, 1, 60000000, 60000000, 3600000000ull,
                                         86400000000ull };
        return parse_suffixed(s, sfx, mult, ELEMENTSOF(sfx), ret);
}

static int typed(const TeepConf *c, const char *section, const char *key, char *errbuf, size_t errbuf_size,
                 const char **ret_value, const char **ret_where) {
        const TeepConfSection *where_s = NULL;

        for (const TeepConfSection *s = teep_conf_sections(c, section, NULL); s;
             s = teep_conf_sections(c, section, s))
                if (last_entry(s, key))
                        where_s = s;
        *ret_value = teep_conf_get(c, section, key);
        *ret_where = where_s ? teep_conf_section_where(where_s, key) : "?";
        return *ret_value ? 1 : 0;
}

#define DEFINE_TYPED_GETTER(fn, type, parser, what)                                                              \
        int fn(const TeepConf *c, const char *section, const char *key, type *ret, char *errbuf,                 \
               size_t errbuf_size) {                                                                             \
                const char *v, *where;                                                                           \
                type tmp;                                                                                        \
                if (typed(c, section, key, errbuf, errbuf_size, &v, &where) == 0)                                \
                        return 0;                                                                                \
                if (parser(v, &tmp) < 0) {                                                                       \
                        teep_errfmt(errbuf, errbuf_size, "%s: %s=%s is not " what, where, key, v);                    \
                        return -EINVAL;                                                                          \
                }                                                                                                \
                *ret = tmp;                                                                                      \
                return 1;                                                                                        \
        }

DEFINE_TYPED_GETTER(teep_conf_get_bool, bool, teep_parse_bool, "a boolean (yes/no)")
DEFINE_TYPED_GETTER(teep_conf_get_size, uint64_t, teep_parse_size, "a size (e.g. 16M)")
DEFINE_TYPED_GETTER(teep_conf_get_usec, uint64_t, teep_parse_usec, "a time span (e.g. 30s, 5min, 1h)")

int teep_conf_warn_unknown(const TeepConf *c, const char *section, const char *const *known) {
        int n = 0;

        for (const TeepConfSection *s = teep_conf_sections(c, section, NULL); s; s = teep_conf_sections(c, section, s))
                for (size_t j = 0; j < s->n_entries; j++) {
                        bool found = false;
                        for (size_t k = 0; known && known[k] && !found; k++)
                                found = strcmp(s->entries[j].key, known[k]) == 0;
                        if (!found) {
                                log_warning("%s: unknown key [%s] %s=, ignored", s->entries[j].where, section,
                                            s->entries[j].key);
                                n++;
                        }
                }
        return n;
}
