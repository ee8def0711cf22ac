/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-requests.c: requests.d declarations — parser, directory loader and the sync plan */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "requests.h"

#define DEMO "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"

static int parse(const char *text, TeepRequests *ret, char *err, size_t errsz) {
        return teep_requests_parse("x.conf", text, strlen(text), ret, err, errsz);
}

static const char *data_dir(void) {
        const char *d = getenv("TEEP_PACKAGING_DATA");
        cr_assert(d, "TEEP_PACKAGING_DATA is not set (run through meson test)");
        return d;
}

Test(requests_parse, a_good_declaration) {
        _cleanup_(teep_requests_done) TeepRequests r = {};
        char err[256] = "";

        cr_assert_eq(parse("# an app\n"
                           "[Component]\n"
                           "Id=" DEMO "\n"
                           "TAM=https://tam.example.com/tam\n"
                           "TAM=http://127.0.0.1:8080/tam\n"
                           "\n"
                           "[Component]\r\n"
                           "  Id = 0x0102/keys  \r\n"
                           "TAM=https://b.example/tam\r\n",
                           &r, err, sizeof(err)),
                     0, "%s", err);
        cr_assert_eq(r.n_items, 2);
        cr_assert_str_eq(r.items[0].component, DEMO);
        cr_assert_eq(r.items[0].n_tam_uris, 2);
        cr_assert_str_eq(r.items[0].tam_uris[0], "https://tam.example.com/tam");
        cr_assert_str_eq(r.items[0].tam_uris[1], "http://127.0.0.1:8080/tam");
        cr_assert_null(r.items[0].tam_uris[2]);
        cr_assert_str_eq(r.items[0].where, "x.conf:3");
        cr_assert_str_eq(r.items[1].component, "0x0102/keys");
        cr_assert_str_eq(r.items[1].where, "x.conf:8");
        cr_assert_eq(r.items[1].n_tam_uris, 1);
}

Test(requests_parse, data_need_not_be_nul_terminated) {
        _cleanup_(teep_requests_done) TeepRequests r = {};
        const char text[] = "[Component]\nId=ta\nTAM=https://t.example/tam\nGARBAGE";
        char err[256] = "";

        /* the size ends before GARBAGE: it must never be read */
        cr_assert_eq(teep_requests_parse("x.conf", text, strlen(text) - strlen("GARBAGE"), &r, err, sizeof(err)), 0,
                     "%s", err);
        cr_assert_eq(r.n_items, 1);
        cr_assert_str_eq(r.items[0].tam_uris[0], "https://t.example/tam");
}

/* Every bad declaration is refused with an error that starts with "file:line:". */
static const struct {
        const char *text;
        const char *where;
        const char *what;
} bad[] = {
        { "", "x.conf:1:", "no [Component]" },
        { "# only a comment\n", "x.conf:1:", "no [Component]" },
        { "Id=ta\n", "x.conf:1:", "outside a [Section]" },
        { "[Component]\nId=ta\n", "x.conf:1:", "has no TAM=" },
        { "[Component]\nTAM=https://t.example/tam\n", "x.conf:1:", "without Id=" },
        { "[Component]\nId=ta\nTAM=https://t/\n[Other]\nX=1\n", "x.conf:4:", "unknown section [Other]" },
        { "[Component]\nId=ta\nTAM=https://t/\nOptional=yes\n", "x.conf:4:", "unknown key Optional=" },
        { "[Component]\nId=ta\nId=tb\nTAM=https://t/\n", "x.conf:3:", "given twice" },
        { "[Component]\nId=\nTAM=https://t/\n", "x.conf:2:", "Id= is empty" },
        { "[Component]\nId=../etc/passwd\nTAM=https://t/\n", "x.conf:2:", "not a component name" },
        { "[Component]\nId=a//b\nTAM=https://t/\n", "x.conf:2:", "not a component name" },
        { "[Component]\nId=a b\nTAM=https://t/\n", "x.conf:2:", "not a component name" },
        { "[Component]\nId=ta\nTAM=\n", "x.conf:3:", "TAM= is empty" },
        { "[Component]\nId=ta\nTAM=file:///etc/passwd\n", "x.conf:3:", "not an http:// or https:// URI" },
        { "[Component]\nId=ta\nTAM=https:///path\n", "x.conf:3:", "not an http:// or https:// URI" },
        { "[Component]\nId=ta\nTAM=https://t/a b\n", "x.conf:3:", "not an http:// or https:// URI" },
        { "[Component]\nId=ta\nTAM=https://t/\xc3\xa9\n", "x.conf:3:", "not an http:// or https:// URI" },
        { "[Component]\nId=ta\nTAM=https://t/\nTAM=https://t/\n", "x.conf:4:", "named twice" },
        { "[Component]\nId=ta\nTAM=https://t/\n\n[Component]\nId=ta\nTAM=https://u/\n", "x.conf:6:",
          "declared twice (first at x.conf:2)" },
        { "[Component\nId=ta\n", "x.conf:1:", "bad section header" },
        { "[Component]\nthis is not an assignment\n", "x.conf:2:", "expected Key=Value" },
        { "[Component]\nId=ta\x01\nTAM=https://t/\n", "x.conf:2:", "control character" },
};

Test(requests_parse, bad_declarations_name_file_and_line) {
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                TeepRequests r = { .n_items = 4242 };
                char err[512] = "";
                int k = parse(bad[i].text, &r, err, sizeof(err));

                cr_assert_eq(k, -EBADMSG, "case %zu: %d (%s)", i, k, err);
                cr_assert_eq(strncmp(err, bad[i].where, strlen(bad[i].where)), 0, "case %zu: '%s' does not start with %s",
                             i, err, bad[i].where);
                cr_assert(strstr(err, bad[i].what), "case %zu: '%s' does not say '%s'", i, err, bad[i].what);
                /* ret untouched on failure */
                cr_assert_eq(r.n_items, 4242);
                cr_assert_null(r.items);
        }
}

Test(requests_parse, limits) {
        TeepRequests r = {};
        char err[256] = "";
        size_t big = TEEP_REQUESTS_MAX_FILE + 1;
        _cleanup_free_ char *text = malloc(big);
        _cleanup_free_ char *many = NULL;
        size_t len = 0;
        FILE *f;

        /* a NUL byte: named with its line */
        cr_assert_eq(teep_requests_parse("n.conf", "[Component]\nId=ta\0\n", 19, &r, err, sizeof(err)), -EBADMSG);
        cr_assert_str_eq(err, "n.conf:2: NUL byte");

        cr_assert_not_null(text);
        memset(text, '#', big);
        cr_assert_eq(teep_requests_parse("big.conf", text, big, &r, err, sizeof(err)), -EFBIG);
        cr_assert(strstr(err, "big.conf: larger than"), "%s", err);

        /* one line over the line limit */
        memcpy(text, "[Component]\nId=", 15);
        text[TEEP_REQUESTS_MAX_FILE / 2] = '\n';
        cr_assert_eq(teep_requests_parse("long.conf", text, TEEP_REQUESTS_MAX_FILE / 2 + 1, &r, err, sizeof(err)),
                     -EBADMSG);
        cr_assert(strstr(err, "long.conf:2: line longer than"), "%s", err);

        /* 17 TAMs, 65 components */
        f = open_memstream(&many, &len);
        fputs("[Component]\nId=ta\n", f);
        for (unsigned i = 0; i <= TEEP_REQUESTS_MAX_TAMS; i++)
                fprintf(f, "TAM=https://t%u.example/tam\n", i);
        fclose(f);
        cr_assert_eq(parse(many, &r, err, sizeof(err)), -EBADMSG);
        cr_assert(strstr(err, "x.conf:19: more than 16 TAM="), "%s", err);
        free(TAKE_PTR(many));
        f = open_memstream(&many, &len);
        for (unsigned i = 0; i <= TEEP_REQUESTS_MAX_COMPONENTS; i++)
                fprintf(f, "[Component]\nId=tc%u\nTAM=https://t.example/tam\n", i);
        fclose(f);
        cr_assert_eq(parse(many, &r, err, sizeof(err)), -EBADMSG);
        cr_assert(strstr(err, "x.conf:193: more than 64 [Component]"), "%s", err);
        cr_assert_null(r.items);

        /* without an error buffer: still refused, nothing written */
        cr_assert_eq(parse("[Component]\n", &r, NULL, 0), -EBADMSG);
}

Test(requests_names, debian_package_names) {
        cr_assert(teep_requests_package_name_is_valid("hello-tee"));
        cr_assert(teep_requests_package_name_is_valid("libstdc++6"));
        cr_assert(teep_requests_package_name_is_valid("python3.11"));
        cr_assert(teep_requests_package_name_is_valid("0ad"));
        cr_assert(!teep_requests_package_name_is_valid("a"));
        cr_assert(!teep_requests_package_name_is_valid(""));
        cr_assert(!teep_requests_package_name_is_valid(NULL));
        cr_assert(!teep_requests_package_name_is_valid("Hello"));
        cr_assert(!teep_requests_package_name_is_valid("-x"));
        cr_assert(!teep_requests_package_name_is_valid(".x"));
        cr_assert(!teep_requests_package_name_is_valid("a_b"));
        cr_assert(!teep_requests_package_name_is_valid("a/b"));
        cr_assert(!teep_requests_package_name_is_valid("a:b"));
        char name[TEEP_REQUESTS_MAX_PACKAGE_LEN + 2];
        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        cr_assert(!teep_requests_package_name_is_valid(name));
        name[sizeof(name) - 2] = '\0';
        cr_assert(teep_requests_package_name_is_valid(name));
}

Test(requests_names, tam_uris) {
        cr_assert(teep_requests_tam_uri_is_valid("https://tam.example.com/tam"));
        cr_assert(teep_requests_tam_uri_is_valid("http://127.0.0.1:1234"));
        cr_assert(teep_requests_tam_uri_is_valid("HTTPS://tam.example.com/tam"), "the scheme in any case");
        cr_assert(!teep_requests_tam_uri_is_valid("ftp://tam.example.com/"));
        cr_assert(!teep_requests_tam_uri_is_valid("https://"));
        cr_assert(!teep_requests_tam_uri_is_valid("https:///x"));
        cr_assert(!teep_requests_tam_uri_is_valid("http://a\tb"));
        cr_assert(!teep_requests_tam_uri_is_valid(NULL));
}

Test(requests_dir, the_fixture_directory) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = {};
        char dir[512];

        snprintf(dir, sizeof(dir), "%s/requests.d", data_dir());
        cr_assert_eq(teep_requests_load_dir(dir, &d), 0);
        /* sorted; README and *.dpkg-old skipped */
        cr_assert_eq(d.n_packages, 3);
        cr_assert_str_eq(d.packages[0].package, "Bad_Name");
        cr_assert(d.packages[0].broken);
        cr_assert(strstr(d.packages[0].error, "not a Debian package name"), "%s", d.packages[0].error);
        cr_assert_eq(d.packages[0].requests.n_items, 0);

        cr_assert_str_eq(d.packages[1].package, "broken-app");
        cr_assert(d.packages[1].broken);
        cr_assert(strstr(d.packages[1].error, "/requests.d/broken-app.conf:4: '../../etc/passwd' is not a component"),
                  "%s", d.packages[1].error);

        cr_assert_str_eq(d.packages[2].package, "hello-tee");
        cr_assert(!d.packages[2].broken);
        cr_assert_null(d.packages[2].error);
        cr_assert_eq(d.packages[2].requests.n_items, 2);
        cr_assert_str_eq(d.packages[2].requests.items[0].component, DEMO);
        cr_assert_str_eq(d.packages[2].requests.items[1].component, "0x0102/keys");
}

Test(requests_dir, unreadable_entries_are_broken_not_fatal) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = {};
        char dir[] = "/tmp/teepkit-requests-XXXXXX", path[256];
        FILE *f;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/fifo-app.conf", dir);
        cr_assert_eq(mkfifo(path, 0644), 0);
        snprintf(path, sizeof(path), "%s/dir-app.conf", dir);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/ok-app.conf", dir);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("[Component]\nId=ta\nTAM=https://t.example/tam\n", f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/.hidden.conf", dir);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fclose(f);

        cr_assert_eq(teep_requests_load_dir(dir, &d), 0);
        cr_assert_eq(d.n_packages, 3);
        cr_assert_str_eq(d.packages[0].package, "dir-app");
        cr_assert(d.packages[0].broken);
        cr_assert(strstr(d.packages[0].error, "not a regular file"), "%s", d.packages[0].error);
        cr_assert_str_eq(d.packages[1].package, "fifo-app");
        cr_assert(d.packages[1].broken, "a FIFO must be refused, not read (it would hang)");
        cr_assert_str_eq(d.packages[2].package, "ok-app");
        cr_assert(!d.packages[2].broken);

        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        cr_assert_eq(system(path), 0);
        TeepRequestsDir none = { .n_packages = 7 };
        cr_assert_eq(teep_requests_load_dir(dir, &none), -ENOENT);
        cr_assert_eq(none.n_packages, 7);
}

static TeepRequestsDir fixture_dir(void) {
        TeepRequestsDir d = {};
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/requests.d", data_dir());
        cr_assert_eq(teep_requests_load_dir(dir, &d), 0);
        return d;
}

Test(requests_plan, from_nothing_everything_declared_is_requested) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = fixture_dir();
        _cleanup_free_ TeepSyncStep *s = NULL;
        size_t n = 99;

        cr_assert_eq(teep_requests_plan(&d, NULL, 0, &s, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_eq(s[0].action, TEEP_SYNC_REQUEST);
        cr_assert_str_eq(s[0].package, "hello-tee");
        cr_assert_str_eq(s[0].component, DEMO);
        cr_assert_str_eq(s[0].tam_uris[0], "https://tam.example.com/tam");
        cr_assert_str_eq(s[1].component, "0x0102/keys");
}

Test(requests_plan, reconciles_and_leaves_broken_packages_alone) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = fixture_dir();
        _cleanup_free_ TeepSyncStep *s = NULL;
        size_t n = 0;
        const TeepRequestOwner cur[] = {
                { "hello-tee", DEMO },          /* declared and recorded: nothing */
                { "hello-tee", "old/ta" },      /* no longer declared: unrequest */
                { "gone-app", "x" },            /* the package's file is gone: unrequest */
                { "gone-app", "x" },            /* a duplicate: once */
                { "broken-app", "y" },          /* its file is broken: left alone */
                { "Bad_Name", "z" },            /* likewise */
        };

        cr_assert_eq(teep_requests_plan(&d, cur, ELEMENTSOF(cur), &s, &n), 0);
        cr_assert_eq(n, 3);
        /* requests first, so a TC moving between packages is never removed in between */
        cr_assert_eq(s[0].action, TEEP_SYNC_REQUEST);
        cr_assert_str_eq(s[0].component, "0x0102/keys");
        cr_assert_eq(s[1].action, TEEP_SYNC_UNREQUEST);
        cr_assert_str_eq(s[1].package, "hello-tee");
        cr_assert_str_eq(s[1].component, "old/ta");
        cr_assert_null(s[1].tam_uris);
        cr_assert_eq(s[2].action, TEEP_SYNC_UNREQUEST);
        cr_assert_str_eq(s[2].package, "gone-app");
        cr_assert_str_eq(s[2].component, "x");
}

Test(requests_plan, in_sync_means_no_steps) {
        _cleanup_(teep_requests_dir_done) TeepRequestsDir d = fixture_dir();
        _cleanup_free_ TeepSyncStep *s = NULL;
        size_t n = 99;
        const TeepRequestOwner cur[] = {
                { "hello-tee", "0x0102/keys" },
                { "hello-tee", DEMO },
                { "broken-app", "y" },
        };

        cr_assert_eq(teep_requests_plan(&d, cur, ELEMENTSOF(cur), &s, &n), 0);
        cr_assert_eq(n, 0);
}
