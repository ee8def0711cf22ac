/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* requests.c: requests.d declarations (see requests.h and teepkit.requests(5)) */
#include "requests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fileio.h"
#include "macro.h"
#include "teep-component.h"

static void request_done(TeepRequest *q) {
        for (size_t i = 0; i < q->n_tam_uris; i++)
                free(q->tam_uris[i]);
        free(q->tam_uris);
        free(q->component);
        free(q->where);
        *q = (TeepRequest){};
}

void teep_requests_done(TeepRequests *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_items; i++)
                request_done(&r->items[i]);
        free(r->items);
        *r = (TeepRequests){};
}

bool teep_requests_package_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        /* Policy 5.6.1: at least two characters, lower case, starting with an alphanumeric */
        if (n < 2 || n > TEEP_REQUESTS_MAX_PACKAGE_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                        continue;
                if (i > 0 && (c == '+' || c == '-' || c == '.'))
                        continue;
                return false;
        }
        return true;
}

bool teep_requests_tam_uri_is_valid(const char *uri) {
        const char *host;
        size_t n = uri ? strlen(uri) : 0;

        if (n == 0 || n > TEEP_REQUESTS_MAX_URI_LEN)
                return false;
        /* the scheme is case-insensitive (RFC 3986, 3.1) */
        if (strncasecmp(uri, "http://", 7) == 0)
                host = uri + 7;
        else if (strncasecmp(uri, "https://", 8) == 0)
                host = uri + 8;
        else
                return false;
        if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
                return false;
        for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return false;
        return true;
}

/* The request being built from one [Component] section. */
static int add_tam(TeepRequest *q, const char *uri) {
        char **n = realloc(q->tam_uris, (q->n_tam_uris + 2) * sizeof(*n));

        if (!n)
                return -ENOMEM;
        q->tam_uris = n;
        n[q->n_tam_uris] = strdup(uri);
        if (!n[q->n_tam_uris])
                return -ENOMEM;
        n[++q->n_tam_uris] = NULL;
        return 0;
}

static int parse_section(const TeepConfSection *s, const TeepRequests *so_far, TeepRequest *ret, char *err,
                         size_t errsz) {
        _cleanup_(request_done) TeepRequest q = {};
        const char *header = teep_conf_section_header_where(s);
        size_t n = teep_conf_section_n_entries(s);
        int r;

        for (size_t i = 0; i < n; i++) {
                const char *key, *value, *where;

                r = teep_conf_section_entry(s, i, &key, &value, &where);
                if (r < 0)
                        return r;
                if (strcmp(key, "Id") == 0) {
                        _cleanup_free_ uint8_t *enc = NULL;
                        size_t len;

                        if (q.component) {
                                teep_errfmt(err, errsz, "%s: Id= given twice in one [Component] (first at %s)", where,
                                       q.where);
                                return -EBADMSG;
                        }
                        if (!*value) {
                                teep_errfmt(err, errsz, "%s: Id= is empty", where);
                                return -EBADMSG;
                        }
                        if (strlen(value) > TEEP_REQUESTS_MAX_COMPONENT_LEN) {
                                teep_errfmt(err, errsz, "%s: Id= is longer than %u bytes", where,
                                       TEEP_REQUESTS_MAX_COMPONENT_LEN);
                                return -EBADMSG;
                        }
                        r = teep_suit_component_id_from_string(value, &enc, &len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                teep_errfmt(err, errsz,
                                       "%s: '%.200s' is not a component name: segments of letters, digits, '.', "
                                       "'_' or '-', a UUID, or 0x and hex, joined by '/'",
                                       where, value);
                                return -EBADMSG;
                        }
                        for (size_t k = 0; k < so_far->n_items; k++)
                                if (strcmp(so_far->items[k].component, value) == 0) {
                                        teep_errfmt(err, errsz, "%s: component %.200s is declared twice (first at %s)",
                                               where, value, so_far->items[k].where);
                                        return -EBADMSG;
                                }
                        q.component = strdup(value);
                        q.where = strdup(where);
                        if (!q.component || !q.where)
                                return -ENOMEM;
                } else if (strcmp(key, "TAM") == 0) {
                        if (!*value) {
                                teep_errfmt(err, errsz, "%s: TAM= is empty (name a TAM URI)", where);
                                return -EBADMSG;
                        }
                        if (!teep_requests_tam_uri_is_valid(value)) {
                                teep_errfmt(err, errsz,
                                       "%s: TAM= '%.200s' is not an http:// or https:// URI with a host "
                                       "(printable ASCII, no spaces, at most %u bytes)",
                                       where, value, TEEP_REQUESTS_MAX_URI_LEN);
                                return -EBADMSG;
                        }
                        for (size_t k = 0; k < q.n_tam_uris; k++)
                                if (strcmp(q.tam_uris[k], value) == 0) {
                                        teep_errfmt(err, errsz, "%s: TAM= %.200s is named twice", where, value);
                                        return -EBADMSG;
                                }
                        if (q.n_tam_uris >= TEEP_REQUESTS_MAX_TAMS) {
                                teep_errfmt(err, errsz, "%s: more than %u TAM= in one [Component]", where,
                                       TEEP_REQUESTS_MAX_TAMS);
                                return -EBADMSG;
                        }
                        r = add_tam(&q, value);
                        if (r < 0)
                                return r;
                } else {
                        teep_errfmt(err, errsz, "%s: unknown key %s= in [Component] (known: Id, TAM)", where, key);
                        return -EBADMSG;
                }
        }
        if (!q.component) {
                teep_errfmt(err, errsz, "%s: [Component] without Id=", header);
                return -EBADMSG;
        }
        if (q.n_tam_uris == 0) {
                teep_errfmt(err, errsz, "%s: [Component] %.200s has no TAM= (name at least one TAM URI)", header,
                       q.component);
                return -EBADMSG;
        }
        *ret = q;
        q = (TeepRequest){};
        return 0;
}

int teep_requests_parse(const char *label, const char *data, size_t size, TeepRequests *ret, char *err,
                        size_t errsz) {
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        _cleanup_(teep_requests_done) TeepRequests out = {};
        _cleanup_free_ char *text = NULL;
        const char *nul;
        char conferr[512] = "";
        size_t n_sections = 0;
        int r;

        if (!label)
                label = "(declaration)";
        if (size > TEEP_REQUESTS_MAX_FILE) {
                teep_errfmt(err, errsz, "%s: larger than %u bytes", label, TEEP_REQUESTS_MAX_FILE);
                return -EFBIG;
        }
        nul = size > 0 ? memchr(data, '\0', size) : NULL;
        if (nul) {
                unsigned line = 1;
                for (const char *p = data; p < nul; p++)
                        line += *p == '\n';
                teep_errfmt(err, errsz, "%s:%u: NUL byte", label, line);
                return -EBADMSG;
        }
        text = malloc(size + 1);
        if (!text)
                return -ENOMEM;
        if (size > 0)
                memcpy(text, data, size);
        text[size] = '\0';

        r = teep_conf_load_string(text, label, &conf, conferr, sizeof(conferr));
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                teep_errfmt(err, errsz, "%s", conferr);
                return -EBADMSG;
        }

        n_sections = teep_conf_n_sections(conf);
        for (size_t i = 0; i < n_sections; i++) {
                const TeepConfSection *s = teep_conf_section_at(conf, i);
                if (strcmp(teep_conf_section_name(s), "Component") != 0) {
                        teep_errfmt(err, errsz, "%s: unknown section [%s] (a declaration has [Component] sections only)",
                               teep_conf_section_header_where(s), teep_conf_section_name(s));
                        return -EBADMSG;
                }
        }
        if (n_sections == 0) {
                teep_errfmt(err, errsz, "%s:1: declares no [Component] (see teepkit.requests(5))", label);
                return -EBADMSG;
        }
        if (n_sections > TEEP_REQUESTS_MAX_COMPONENTS) {
                teep_errfmt(err, errsz, "%s: more than %u [Component] sections",
                       teep_conf_section_header_where(teep_conf_section_at(conf, TEEP_REQUESTS_MAX_COMPONENTS)),
                       TEEP_REQUESTS_MAX_COMPONENTS);
                return -EBADMSG;
        }
        out.items = calloc(n_sections, sizeof(*out.items));
        if (!out.items)
                return -ENOMEM;
        for (size_t i = 0; i < n_sections; i++) {
                r = parse_section(teep_conf_section_at(conf, i), &out, &out.items[out.n_items], err, errsz);
                if (r < 0)
                        return r;
                out.n_items++;
        }
        *ret = out;
        out = (TeepRequests){};
        return 0;
}

static void package_done(TeepPackageRequests *p) {
        free(p->package);
        free(p->path);
        free(p->error);
        teep_requests_done(&p->requests);
        *p = (TeepPackageRequests){};
}

void teep_requests_dir_done(TeepRequestsDir *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n_packages; i++)
                package_done(&d->packages[i]);
        free(d->packages);
        *d = (TeepRequestsDir){};
}

static int cmp_package(const void *a, const void *b) {
        return strcmp(((const TeepPackageRequests *)a)->package, ((const TeepPackageRequests *)b)->package);
}

static int set_broken(TeepPackageRequests *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_broken(TeepPackageRequests *p, const char *fmt, ...) {
        va_list ap;
        int r;

        p->broken = true;
        va_start(ap, fmt);
        r = vasprintf(&p->error, fmt, ap);
        va_end(ap);
        if (r < 0) {
                p->error = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Read one file into p (p->package and p->path are set). Only -ENOMEM is returned. */
static int load_one(int dirfd, const char *name, TeepPackageRequests *p) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -1;
        char err[768] = "";
        struct stat st;
        size_t len;
        int r;

        if (!teep_requests_package_name_is_valid(p->package))
                return set_broken(p,
                                  "%s: '%s' is not a Debian package name (lower-case letters, digits, '+', '-' "
                                  "and '.', starting with a letter or digit, at least 2 characters)",
                                  p->path, p->package);
        /* O_NONBLOCK: a FIFO planted in the directory must not hang dpkg */
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return set_broken(p, "%s: %s", p->path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return set_broken(p, "%s: %s", p->path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return set_broken(p, "%s: not a regular file", p->path);
        r = read_full_fd(fd, TEEP_REQUESTS_MAX_FILE, &buf, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_broken(p, "%s: %s", p->path,
                                  r == -EFBIG ? "larger than the limit for a declaration (64 KiB)" : strerror(-r));
        r = teep_requests_parse(p->path, (const char *)buf, len, &p->requests, err, sizeof(err));
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_broken(p, "%s", err);
        return 0;
}

int teep_requests_load_dir(const char *dir, TeepRequestsDir *ret) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir out = {};
        DIR *d;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                TeepPackageRequests *n;
                size_t l = strlen(de->d_name);

                if (de->d_name[0] == '.' || l <= 5 || strcmp(de->d_name + l - 5, ".conf") != 0)
                        continue;
                if (out.n_packages >= TEEP_REQUESTS_MAX_FILES) {
                        r = -E2BIG;
                        break;
                }
                n = realloc(out.packages, (out.n_packages + 1) * sizeof(*n));
                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                out.packages = n;
                n = &out.packages[out.n_packages];
                *n = (TeepPackageRequests){ .package = strndup(de->d_name, l - 5) };
                if (!n->package || asprintf(&n->path, "%s/%s", dir, de->d_name) < 0) {
                        free(n->package);
                        r = -ENOMEM;
                        break;
                }
                out.n_packages++;
                r = load_one(dirfd(d), de->d_name, n);
                if (r < 0)
                        break;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0)
                return r;
        if (out.n_packages > 1)
                qsort(out.packages, out.n_packages, sizeof(*out.packages), cmp_package);
        *ret = out;
        out = (TeepRequestsDir){};
        return 0;
}

static const TeepPackageRequests *find_package(const TeepRequestsDir *d, const char *package) {
        for (size_t i = 0; i < d->n_packages; i++)
                if (strcmp(d->packages[i].package, package) == 0)
                        return &d->packages[i];
        return NULL;
}

static bool owner_in(const TeepRequestOwner *v, size_t n, const char *package, const char *component) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].package, package) == 0 && strcmp(v[i].component, component) == 0)
                        return true;
        return false;
}

static bool step_in(const TeepSyncStep *v, size_t n, const char *package, const char *component) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].package, package) == 0 && strcmp(v[i].component, component) == 0)
                        return true;
        return false;
}

int teep_requests_plan(const TeepRequestsDir *d, const TeepRequestOwner *current, size_t n_current,
                       TeepSyncStep **ret, size_t *ret_n) {
        _cleanup_free_ TeepSyncStep *steps = NULL;
        size_t max = n_current, n = 0;

        for (size_t i = 0; i < d->n_packages; i++)
                max += d->packages[i].requests.n_items;
        steps = calloc(max + 1, sizeof(*steps));
        if (!steps)
                return -ENOMEM;

        for (size_t i = 0; i < d->n_packages; i++) {
                const TeepPackageRequests *p = &d->packages[i];
                if (p->broken)
                        continue;
                for (size_t k = 0; k < p->requests.n_items; k++) {
                        const TeepRequest *q = &p->requests.items[k];
                        if (owner_in(current, n_current, p->package, q->component))
                                continue;
                        steps[n++] = (TeepSyncStep){ .action = TEEP_SYNC_REQUEST,
                                                     .package = p->package,
                                                     .component = q->component,
                                                     .tam_uris = q->tam_uris };
                }
        }
        for (size_t i = 0; i < n_current; i++) {
                const TeepPackageRequests *p = find_package(d, current[i].package);
                bool declared = false;

                if (p && p->broken)
                        continue;
                for (size_t k = 0; p && k < p->requests.n_items && !declared; k++)
                        declared = strcmp(p->requests.items[k].component, current[i].component) == 0;
                if (declared || step_in(steps, n, current[i].package, current[i].component))
                        continue;
                steps[n++] = (TeepSyncStep){ .action = TEEP_SYNC_UNREQUEST,
                                             .package = current[i].package,
                                             .component = current[i].component };
        }
        *ret = TAKE_PTR(steps);
        *ret_n = n;
        return 0;
}
