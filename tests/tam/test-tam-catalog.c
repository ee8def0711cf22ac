/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-tam-catalog.c: the TC directory is decoded once and then only where it changed. The TAM
 * runs in-process (tam_new, tam_handle_post) with real keys and real messages, so the tests
 * can count what it decoded; the catalog itself is compared with a fresh tam_catalog_load(). */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "macro.h"
#include "tam-util.h"
#include "tam-world.h"
#include "tam.h"

static Tam *tam;

static void catalog_setup(void) {
        char tcs[1024], devices[1024], state[1024], errbuf[512];
        TamConfig config = {.mode = TAM_MODE_TOKEN};

        world_setup();
        enroll(w.device, "device.pem");
        snprintf(tcs, sizeof(tcs), "%s/tcs", w.dir);
        snprintf(devices, sizeof(devices), "%s/devices", w.dir);
        snprintf(state, sizeof(state), "%s/state", w.dir);
        cr_assert_eq(mkdir(state, 0755), 0);
        cr_assert_eq(tam_key_load(path_in(w.dir, "tam.pem"), &config.keys[0], errbuf, sizeof(errbuf)), 0,
                     "%s", errbuf);
        config.n_keys = 1;
        config.tc_dir = tcs;
        config.device_keys_dir = devices;
        config.state_dir = state;
        cr_assert_eq(tam_new(&config, &tam), 0);
}

static void catalog_teardown(void) {
        tam = tam_free(tam);
        world_teardown();
}

TestSuite(catalog, .init = catalog_setup, .fini = catalog_teardown, .timeout = 120);

static TamCounters counters(void) {
        TamCounters c;

        tam_counters(tam, &c);
        return c;
}

/* One session in-process: the QueryRequest, a QueryResponse that requests components, the
 * TAM's answer to it (kept: the decoded Update's views point into it). */
typedef struct Exchange {
        TamReply query, answer;
        TeepMessage *qr, *resp, *update; /* update: NULL unless the answer is 200 */
        uint8_t *owned[8];
        size_t n_owned;
} Exchange;

static void exchange_done(Exchange *e) {
        teep_message_free(e->update);
        teep_message_free(e->resp);
        teep_message_free(e->qr);
        tam_reply_done(&e->answer);
        tam_reply_done(&e->query);
        for (size_t i = 0; i < e->n_owned; i++)
                free(e->owned[i]);
        *e = (Exchange){};
}

/* Request components (NULL-terminated) and return the TAM's answer's status. */
static long exchange(Exchange *e, const char *const *components) {
        _cleanup_free_ uint8_t *signed_resp = NULL;
        TeepBuf b;

        *e = (Exchange){};
        tam_handle_post(tam, NULL, 0, &e->query);
        cr_assert_eq(e->query.status, 200);
        e->qr = teep_open(TEEP_BUF(e->query.body, e->query.body_len), w.tam_key);
        e->resp = query_response_for(e->qr);
        for (size_t i = 0; components[i]; i++) {
                cr_assert(e->n_owned < ELEMENTSOF(e->owned));
                request_tc(e->resp, components[i], &e->owned[e->n_owned++]);
        }
        b = device_sign(e->resp, w.device, 0, &signed_resp);
        tam_handle_post(tam, b.ptr, b.len, &e->answer);
        if (e->answer.status == 200) {
                e->update = teep_open(TEEP_BUF(e->answer.body, e->answer.body_len), w.tam_key);
                cr_assert_eq(e->update->type, TEEP_TYPE_UPDATE);
        }
        return (long)e->answer.status;
}

/* Request one component; the Update must carry exactly env. */
static void expect_offer(const char *component, TeepBuf env, const char *what) {
        Exchange e;
        long status = exchange(&e, (const char *const[]){component, NULL});

        cr_assert_eq(status, 200, "%s: the QueryResponse got %ld", what, status);
        cr_assert_eq(e.update->n_manifest_list, 1, "%s", what);
        cr_assert(manifest_list_has(e.update, env), "%s: not the envelope expected", what);
        exchange_done(&e);
}

static void expect_nothing(const char *component, const char *what) {
        Exchange e;
        long status = exchange(&e, (const char *const[]){component, NULL});

        cr_assert_eq(status, 204, "%s: the QueryResponse got %ld", what, status);
        exchange_done(&e);
}

/* Other TCs in the directory, so that "only the changed file" means something. */
#define N_FILLERS 6
static void fillers(void) {
        for (unsigned i = 0; i < N_FILLERS; i++) {
                _cleanup_free_ uint8_t *env = NULL;
                char file[64], component[128];

                snprintf(file, sizeof(file), "filler-%u.suit", i);
                snprintf(component, sizeof(component),
                         "TEEP-Device/SecureFS/00000000-0000-4000-8000-%012u/ta", i);
                offer(file, component, 1, "filler", &env);
        }
}

static const char *tc_path(const char *file) {
        static char path[1024];

        snprintf(path, sizeof(path), "%s/tcs/%s", w.dir, file);
        return path;
}

static void set_mtime(const char *file, time_t sec) {
        struct timespec t[2] = {{.tv_sec = sec, .tv_nsec = 0}, {.tv_sec = sec, .tv_nsec = 0}};

        cr_assert_eq(utimensat(AT_FDCWD, tc_path(file), t, 0), 0, "utimensat: %s", strerror(errno));
}

static struct stat stat_of(const char *file) {
        struct stat st;

        cr_assert_eq(stat(tc_path(file), &st), 0);
        return st;
}

/* Where file's bytes go on rename, not in place: a new inode, like teep-manifest --out. */
static void write_renamed(const char *file, TeepBuf env) {
        char tmp[128];

        snprintf(tmp, sizeof(tmp), "%s.new", file);
        file_write(tc_path(tmp), env.ptr, env.len);
        {
                char from[1024];
                snprintf(from, sizeof(from), "%s", tc_path(tmp));
                cr_assert_eq(rename(from, tc_path(file)), 0);
        }
}

Test(catalog, unchanged_directory_decodes_nothing) {
        _cleanup_free_ uint8_t *ea = NULL, *eb = NULL;
        TeepBuf a, b;
        Exchange e;

        fillers();
        a = offer("a.suit", TC_A, 1, "a one", &ea);
        b = offer("b.suit", TC_B, 1, "b one", &eb);
        expect_offer(TC_A, a, "first QueryResponse");
        cr_assert_eq(counters().catalog_decodes, N_FILLERS + 2);
        cr_assert_eq(counters().catalog_loads, 1);

        for (unsigned i = 0; i < 3; i++) {
                cr_assert_eq(exchange(&e, (const char *const[]){TC_A, TC_B, NULL}), 200);
                cr_assert_eq(e.update->n_manifest_list, 2);
                cr_assert(manifest_list_has(e.update, a) && manifest_list_has(e.update, b));
                exchange_done(&e);
                cr_assert_eq(counters().catalog_decodes, N_FILLERS + 2,
                             "an unchanged directory was decoded again");
                cr_assert_eq(counters().catalog_loads, 1, "an unchanged directory was gone through again");
        }
}

Test(catalog, a_new_file_is_seen_and_only_it_is_decoded) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *eb = NULL;
        TeepBuf a1, a2, b;

        fillers();
        a1 = offer("a1.suit", TC_A, 1, "version one", &e1);
        expect_offer(TC_A, a1, "before");
        expect_nothing(TC_B, "TC_B before it exists");
        cr_assert_eq(counters().catalog_decodes, N_FILLERS + 1);

        a2 = offer("a2.suit", TC_A, 2, "version two", &e2);
        expect_offer(TC_A, a2, "a newer envelope added");
        cr_assert_eq(counters().catalog_decodes, N_FILLERS + 2, "more than the new file was decoded");

        /* one that sorts first: the entries after it move, they are not decoded again */
        b = offer("0-b.suit", TC_B, 1, "b", &eb);
        expect_offer(TC_B, b, "a new TC added");
        expect_offer(TC_A, a2, "the newest is still a2");
        cr_assert_eq(counters().catalog_decodes, N_FILLERS + 3);
        cr_assert_eq(counters().catalog_loads, 3);
}

Test(catalog, a_file_replaced_under_the_same_name_is_seen) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        TeepBuf v1, v2, v3, v4;
        struct stat before, after;
        unsigned decodes;

        fillers();
        v1 = envelope_install(w.signer, TC_A, 1, NULL, "payload one", 11, &e1);
        v2 = envelope_install(w.signer, TC_A, 2, NULL, "payload two", 11, &e2);
        v3 = envelope_install(w.signer, TC_A, 3, NULL, "payload six", 11, &e3);
        v4 = envelope_install(w.signer, TC_A, 4, NULL, "payload four", 12, &e4);
        cr_assert_eq(v1.len, v2.len, "the test needs envelopes of the same size");
        cr_assert_eq(v1.len, v3.len);
        cr_assert_neq(v1.len, v4.len);

        file_write(tc_path("a.suit"), v1.ptr, v1.len);
        set_mtime("a.suit", 1700000000);
        expect_offer(TC_A, v1, "v1");
        decodes = counters().catalog_decodes;
        cr_assert_eq(decodes, N_FILLERS + 1);

        /* in place, the same inode and size: only the modification time tells */
        before = stat_of("a.suit");
        file_write(tc_path("a.suit"), v2.ptr, v2.len);
        set_mtime("a.suit", 1700000001);
        after = stat_of("a.suit");
        cr_assert_eq(before.st_ino, after.st_ino);
        cr_assert_eq(before.st_size, after.st_size);
        expect_offer(TC_A, v2, "rewritten in place, same size, another mtime");
        cr_assert_eq(counters().catalog_decodes, ++decodes, "not only the changed file was decoded");

        /* renamed over it, the same size and modification time: only the inode tells */
        before = after;
        write_renamed("a.suit", v3);
        set_mtime("a.suit", 1700000001);
        after = stat_of("a.suit");
        cr_assert_neq(before.st_ino, after.st_ino);
        cr_assert_eq(before.st_size, after.st_size);
        expect_offer(TC_A, v3, "replaced by rename, same size and mtime");
        cr_assert_eq(counters().catalog_decodes, ++decodes);

        /* in place, the same modification time: only the size tells */
        before = after;
        file_write(tc_path("a.suit"), v4.ptr, v4.len);
        set_mtime("a.suit", 1700000001);
        after = stat_of("a.suit");
        cr_assert_eq(before.st_ino, after.st_ino);
        cr_assert_neq(before.st_size, after.st_size);
        expect_offer(TC_A, v4, "rewritten in place, another size, same mtime");
        cr_assert_eq(counters().catalog_decodes, ++decodes);

        /* nothing changed since */
        expect_offer(TC_A, v4, "again");
        cr_assert_eq(counters().catalog_decodes, decodes);
}

Test(catalog, a_renamed_file_is_seen) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL;
        TeepBuf one, two;
        unsigned decodes;
        char from[1024];

        /* the same sequence number twice: the file name that sorts last wins */
        fillers();
        one = offer("a.suit", TC_A, 1, "one", &e1);
        two = offer("b.suit", TC_A, 1, "two", &e2);
        expect_offer(TC_A, two, "b.suit sorts last");
        decodes = counters().catalog_decodes;

        snprintf(from, sizeof(from), "%s", tc_path("a.suit"));
        cr_assert_eq(rename(from, tc_path("c.suit")), 0);
        expect_offer(TC_A, one, "a.suit renamed c.suit sorts last now");
        cr_assert_eq(counters().catalog_decodes, decodes + 1, "only the renamed file is decoded again");

        /* renamed out of the catalog's sight: hidden, then not *.suit */
        snprintf(from, sizeof(from), "%s", tc_path("c.suit"));
        cr_assert_eq(rename(from, tc_path(".c.suit")), 0);
        expect_offer(TC_A, two, "c.suit hidden");
        snprintf(from, sizeof(from), "%s", tc_path(".c.suit"));
        cr_assert_eq(rename(from, tc_path("c.suit.off")), 0);
        expect_offer(TC_A, two, "c.suit.off");
        cr_assert_eq(counters().catalog_decodes, decodes + 1, "nothing is decoded for a file that went");
}

Test(catalog, a_deleted_file_is_no_longer_offered) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL;
        TeepBuf a1;
        unsigned decodes;

        /* names that sort after the fillers: the last file goes */
        fillers();
        a1 = offer("z-a1.suit", TC_A, 1, "version one", &e1);
        offer("z-a2.suit", TC_A, 2, "version two", &e2);
        expect_nothing(TC_B, "warm up");
        decodes = counters().catalog_decodes;

        cr_assert_eq(unlink(tc_path("z-a2.suit")), 0);
        expect_offer(TC_A, a1, "z-a2.suit deleted");
        cr_assert_eq(unlink(tc_path("z-a1.suit")), 0);
        expect_nothing(TC_A, "z-a1.suit deleted");
        cr_assert_eq(counters().catalog_decodes, decodes, "a deletion decodes nothing");
        cr_assert_eq(counters().catalog_loads, 3);
}

/* What the TAM wrote on stderr while fn ran. */
static char *stderr_of(void (*fn)(void)) {
        char path[1024];
        int saved, fd;
        uint8_t *text = NULL;
        size_t n = 0;

        snprintf(path, sizeof(path), "%s/stderr", w.dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        cr_assert(saved >= 0);
        cr_assert(dup2(fd, STDERR_FILENO) >= 0);
        close(fd);
        fn();
        fflush(stderr);
        cr_assert(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        cr_assert_eq(read_full_file(path, 1u << 20, &text, &n), 0);
        return (char *)text;
}

static size_t count(const char *s, const char *needle) {
        size_t n = 0;

        for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static TeepBuf good_a;

static void session_for_a(void) {
        expect_offer(TC_A, good_a, "with a bad file beside");
}

Test(catalog, an_undecodable_file_is_warned_about_once_until_it_changes) {
        _cleanup_free_ uint8_t *ea = NULL, *ec = NULL, *eb = NULL;
        _cleanup_free_ char *first = NULL, *second = NULL, *third = NULL;
        TeepBuf b;
        unsigned decodes;

        fillers();
        good_a = offer("a.suit", TC_A, 1, "a", &ea);
        file_write(tc_path("bad.suit"), "not an envelope", 15);
        first = stderr_of(session_for_a);
        cr_assert_eq(count(first, "bad.suit: not a SUIT envelope we can read"), 1, "%s", first);
        decodes = counters().catalog_decodes;
        cr_assert_eq(decodes, N_FILLERS + 2);

        /* the directory changes elsewhere: bad.suit is neither read nor warned about again */
        good_a = offer("c.suit", TC_A, 1, "c", &ec); /* the same sequence: c.suit sorts last, wins */
        second = stderr_of(session_for_a);
        cr_assert_eq(count(second, "bad.suit"), 0, "%s", second);
        cr_assert_eq(counters().catalog_decodes, decodes + 1, "only c.suit was to be decoded");

        /* it changes: tried again, and now it is one */
        b = envelope_install(w.signer, TC_B, 1, NULL, "b", 1, &eb);
        file_write(tc_path("bad.suit"), b.ptr, b.len);
        set_mtime("bad.suit", 1700000000);
        third = stderr_of(session_for_a);
        cr_assert_eq(count(third, "bad.suit"), 0, "%s", third);
        cr_assert_eq(counters().catalog_decodes, decodes + 2);
        expect_offer(TC_B, b, "bad.suit is an envelope now");
}

/* ---- the cache against a fresh load ---- */

static void assert_same_catalog(const TamCatalog *cached, const char *dir, const char *what) {
        _cleanup_(tam_catalog_freep) TamCatalog *fresh = NULL;

        cr_assert_eq(tam_catalog_load(dir, &fresh), 0);
        cr_assert_eq(cached->n, fresh->n, "%s: %zu entries cached, %zu loaded", what, cached->n, fresh->n);
        for (size_t i = 0; i < fresh->n; i++) {
                const TamTc *a = &cached->tcs[i], *b = &fresh->tcs[i];

                cr_assert_str_eq(a->file, b->file, "%s: entry %zu", what, i);
                cr_assert(teep_buf_eq(TEEP_BUF(a->data, a->len), TEEP_BUF(b->data, b->len)), "%s: %s", what,
                          a->file);
                cr_assert_str_eq(a->name, b->name);
                cr_assert_eq(a->sequence, b->sequence);
                cr_assert(teep_suit_component_id_equal(&a->component, &b->component));
                /* the views still point into the entry's own data */
                cr_assert(a->component.n_segments == 0 || (a->component.segments[0].ptr >= a->data &&
                                                           a->component.segments[0].ptr < a->data + a->len));
        }
}

Test(catalog, the_cache_gives_what_a_fresh_load_gives) {
        _cleanup_free_ uint8_t *e0 = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        TamCatalogCache c = {};
        const TamCatalog *cat = NULL;
        char dir[1024], from[1024];
        unsigned decodes;

        snprintf(dir, sizeof(dir), "%s/tcs", w.dir);
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        cr_assert_eq(cat->n, 0);
        fillers();
        offer("m.suit", TC_A, 1, "m", &e0);
        offer("b.suit", TC_A, 3, "b", &e1);
        file_write(tc_path("x.suit"), "junk", 4);
        file_write(tc_path("readme.txt"), "not an envelope, not looked at", 30);
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        assert_same_catalog(cat, dir, "first");
        cr_assert_eq(c.decodes, N_FILLERS + 3);
        decodes = c.decodes;

        offer("a.suit", TC_B, 1, "a", &e2);                    /* new, sorts first */
        cr_assert_eq(unlink(tc_path("filler-2.suit")), 0);     /* gone */
        snprintf(from, sizeof(from), "%s", tc_path("m.suit")); /* renamed */
        cr_assert_eq(rename(from, tc_path("z.suit")), 0);
        offer("filler-4.suit", TC_B, 2, "four", &e3); /* rewritten in place */
        set_mtime("filler-4.suit", 1600000000);
        offer("x.suit", TC_A, 2, "no longer junk", &e4); /* the junk became an envelope */
        file_write(tc_path("y.suit"), "more junk", 9);   /* new junk */
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        assert_same_catalog(cat, dir, "second");
        cr_assert_eq(c.decodes, decodes + 5, "a, z, filler-4, x, y");
        decodes = c.decodes;
        cr_assert_str_eq(cat->tcs[0].file, "a.suit");
        cr_assert_str_eq(tam_catalog_newest(cat, &cat->tcs[0].component)->file, "filler-4.suit");

        /* renamed, and still in the same place in the order: only the name tells */
        snprintf(from, sizeof(from), "%s", tc_path("filler-5.suit"));
        cr_assert_eq(rename(from, tc_path("filler-9.suit")), 0);
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        assert_same_catalog(cat, dir, "renamed in place");
        cr_assert_eq(c.decodes, decodes + 1);
        decodes = c.decodes;

        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        assert_same_catalog(cat, dir, "unchanged");
        cr_assert_eq(c.decodes, decodes);

        /* every file gone, then the directory */
        tam_catalog_cache_done(&c);
        cr_assert_eq(c.decodes, decodes, "the counters outlive the cache's contents");
        c = (TamCatalogCache){};
        cr_assert_eq(tam_catalog_cached("/nonexistent/teep-tam-catalog", &c, &cat), 0);
        cr_assert_eq(cat->n, 0);
        tam_catalog_cache_done(&c);
}

Test(catalog, at_most_max_files_envelopes_the_first_in_order) {
        _cleanup_free_ uint8_t *env = NULL;
        TamCatalogCache c = {};
        const TamCatalog *cat = NULL;
        TeepBuf b = envelope_install(w.signer, TC_A, 1, NULL, "x", 1, &env);
        char dir[1024], file[64], last[64] = "", next[64] = "";
        unsigned n_files = TAM_CATALOG_MAX_FILES + 20, good = 0, last_index = 0;

        snprintf(dir, sizeof(dir), "%s/tcs", w.dir);
        for (unsigned i = 0; i < n_files; i++) {
                bool junk = i % 100 == 7; /* does not count */

                snprintf(file, sizeof(file), "e%05u.suit", i);
                if (junk)
                        file_write(tc_path(file), "junk", 4);
                else
                        file_write(tc_path(file), b.ptr, b.len);
                if (!junk && ++good == TAM_CATALOG_MAX_FILES) {
                        snprintf(last, sizeof(last), "%s", file);
                        last_index = i;
                } else if (!junk && good == TAM_CATALOG_MAX_FILES + 1)
                        snprintf(next, sizeof(next), "%s", file);
        }
        cr_assert(last[0] && next[0]);
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        cr_assert_eq(cat->n, TAM_CATALOG_MAX_FILES);
        assert_same_catalog(cat, dir, "full");
        cr_assert_str_eq(cat->tcs[TAM_CATALOG_MAX_FILES - 1].file, last);
        cr_assert_eq(c.decodes, last_index + 1, "the files after the last one that fits are not read");

        /* one of the first goes: the next one in order comes in, decoded on its own */
        cr_assert_eq(unlink(tc_path("e00000.suit")), 0);
        cr_assert_eq(tam_catalog_cached(dir, &c, &cat), 0);
        cr_assert_eq(cat->n, TAM_CATALOG_MAX_FILES);
        assert_same_catalog(cat, dir, "one gone");
        cr_assert_str_eq(cat->tcs[TAM_CATALOG_MAX_FILES - 1].file, next);
        cr_assert_eq(c.decodes, last_index + 2);
        tam_catalog_cache_done(&c);
}
