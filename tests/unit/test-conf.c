/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conf.c: teepkit.conf parsing — sections, drop-ins, lists, typed values, refusals */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

static TeepConf *parse(const char *text) {
        TeepConf *c = NULL;
        char err[256] = "";
        int r = teep_conf_load_string(text, "test.conf", &c, err, sizeof(err));
        cr_assert_eq(r, 0, "parse failed: %s", err);
        return c;
}

Test(conf, last_assignment_wins_and_whitespace_is_trimmed) {
        TeepConf *c = parse("# comment\n; also\n[Agent]\n  StateDirectory = /a \nStateDirectory=/b\n");
        cr_assert_str_eq(teep_conf_get(c, "Agent", "StateDirectory"), "/b");
        cr_assert_null(teep_conf_get(c, "Agent", "Nope"));
        cr_assert_null(teep_conf_get(c, "Broker", "StateDirectory"));
        teep_conf_free(c);
}

Test(conf, empty_assignment_clears_values_and_lists) {
        TeepConf *c = parse("[A]\nX=1\nX=\nL=a\nL=b\nL=\nL=c\n");
        const char **l = NULL;
        cr_assert_null(teep_conf_get(c, "A", "X"));
        cr_assert_eq(teep_conf_get_list(c, "A", "L", &l), 1);
        cr_assert_str_eq(l[0], "c");
        cr_assert_null(l[1]);
        free(l);
        teep_conf_free(c);
}

Test(conf, repeated_sections_stay_apart) {
        TeepConf *c = parse("[TAM]\nURI=http://one\nKid=aa\n[Agent]\nKeyType=Ed25519\n[TAM]\nURI=http://two\n");
        const TeepConfSection *s = teep_conf_sections(c, "TAM", NULL);
        cr_assert_not_null(s);
        cr_assert_str_eq(teep_conf_section_get(s, "URI"), "http://one");
        cr_assert_str_eq(teep_conf_section_get(s, "Kid"), "aa");
        s = teep_conf_sections(c, "TAM", s);
        cr_assert_not_null(s);
        cr_assert_str_eq(teep_conf_section_get(s, "URI"), "http://two");
        cr_assert_null(teep_conf_section_get(s, "Kid"));
        cr_assert_null(teep_conf_sections(c, "TAM", s));
        cr_assert_str_eq(teep_conf_section_where(s, "URI"), "test.conf:7");
        teep_conf_free(c);
}

Test(conf, malformed_lines_are_refused_with_file_and_line) {
        static const char *const bad[] = {
                "Key=outside\n", "[Agent\nX=1\n", "[]\n", "[Agent]\nno equals sign\n", "[Agent]\n=value\n",
                "[Agent]\nbad key=1\n", "[Agent]\nX=a\x01b\n", "[Ag/ent]\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                TeepConf *c = NULL;
                char err[256] = "";
                cr_expect_eq(teep_conf_load_string(bad[i], "x.conf", &c, err, sizeof(err)), -EBADMSG, "case %zu", i);
                cr_expect(strncmp(err, "x.conf:", 7) == 0, "case %zu: error text '%s'", i, err);
                cr_expect_null(c);
        }
}

Test(conf, typed_values) {
        TeepConf *c = parse("[B]\nSize=16M\nBig=2G\nT=5min\nMs=250ms\nPlain=30\nYes=yes\nNo=off\nBad=12Q\n");
        uint64_t v = 0;
        bool b = false;
        char err[256];
        cr_assert_eq(teep_conf_get_size(c, "B", "Size", &v, err, sizeof(err)), 1);
        cr_assert_eq(v, 16u * 1024 * 1024);
        cr_assert_eq(teep_conf_get_size(c, "B", "Big", &v, err, sizeof(err)), 1);
        cr_assert_eq(v, 2ull * 1024 * 1024 * 1024);
        cr_assert_eq(teep_conf_get_usec(c, "B", "T", &v, err, sizeof(err)), 1);
        cr_assert_eq(v, 300ull * 1000000);
        cr_assert_eq(teep_conf_get_usec(c, "B", "Ms", &v, err, sizeof(err)), 1);
        cr_assert_eq(v, 250000u);
        cr_assert_eq(teep_conf_get_usec(c, "B", "Plain", &v, err, sizeof(err)), 1);
        cr_assert_eq(v, 30000000u);
        cr_assert_eq(teep_conf_get_bool(c, "B", "Yes", &b, err, sizeof(err)), 1);
        cr_assert(b);
        cr_assert_eq(teep_conf_get_bool(c, "B", "No", &b, err, sizeof(err)), 1);
        cr_assert(!b);
        v = 7;
        cr_assert_eq(teep_conf_get_size(c, "B", "Unset", &v, err, sizeof(err)), 0);
        cr_assert_eq(v, 7u);
        cr_assert_eq(teep_conf_get_size(c, "B", "Bad", &v, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "test.conf:9"), "%s", err);
        cr_assert_eq(teep_parse_size("99999999999999999999G", &v), -EINVAL);
        cr_assert_eq(teep_parse_size("18014398509481984G", &v), -ERANGE);
        teep_conf_free(c);
}

Test(conf, dropins_are_read_in_lexical_order_after_the_main_file) {
        char dir[] = "/tmp/teep-conf-XXXXXX", path[256], dropins[300], f[400];
        TeepConf *c = NULL;
        char err[256] = "";
        FILE *fp;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/teepkit.conf", dir);
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        cr_assert_eq(mkdir(dropins, 0755), 0);
        fp = fopen(path, "w");
        fputs("[Agent]\nKeyType=ESP256\n[TAM]\nURI=http://main\n", fp);
        fclose(fp);
        snprintf(f, sizeof(f), "%s/20-b.conf", dropins);
        fp = fopen(f, "w");
        fputs("[Agent]\nKeyType=Ed25519\n", fp);
        fclose(fp);
        snprintf(f, sizeof(f), "%s/10-a.conf", dropins);
        fp = fopen(f, "w");
        fputs("[Agent]\nKeyType=P384\n[TAM]\nURI=http://dropin\n", fp);
        fclose(fp);
        snprintf(f, sizeof(f), "%s/30-ignored.txt", dropins);
        fp = fopen(f, "w");
        fputs("[Agent]\nKeyType=Ignored\n", fp);
        fclose(fp);

        cr_assert_eq(teep_conf_load(path, &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(teep_conf_get(c, "Agent", "KeyType"), "Ed25519");
        const TeepConfSection *s = teep_conf_sections(c, "TAM", NULL);
        cr_assert_str_eq(teep_conf_section_get(s, "URI"), "http://main");
        s = teep_conf_sections(c, "TAM", s);
        cr_assert_str_eq(teep_conf_section_get(s, "URI"), "http://dropin");
        teep_conf_free(c);

        /* a broken drop-in is named */
        snprintf(f, sizeof(f), "%s/40-broken.conf", dropins);
        fp = fopen(f, "w");
        fputs("[Agent]\ngarbage\n", fp);
        fclose(fp);
        cr_assert_eq(teep_conf_load(path, &c, err, sizeof(err)), -EBADMSG);
        cr_assert(strstr(err, "40-broken.conf:2"), "%s", err);

        /* a missing file is the defaults */
        snprintf(f, sizeof(f), "%s/none.conf", dir);
        cr_assert_eq(teep_conf_load(f, &c, err, sizeof(err)), 0);
        cr_assert_null(teep_conf_get(c, "Agent", "KeyType"));
        teep_conf_free(c);
        snprintf(f, sizeof(f), "rm -rf %s", dir);
        cr_assert_eq(system(f), 0);
}

Test(conf, unknown_keys_are_counted_not_fatal) {
        TeepConf *c = parse("[Agent]\nKeyType=ESP256\nKeyTyp=typo\n[Agent]\nFuture=1\n[Broker]\nOther=1\n");
        cr_assert_eq(teep_conf_warn_unknown(c, "Agent", (const char *const[]){ "KeyType", NULL }), 2);
        cr_assert_eq(teep_conf_warn_unknown(c, "Broker", (const char *const[]){ "Other", NULL }), 0);
        cr_assert_eq(teep_conf_warn_unknown(c, "Installer", NULL), 0);
        teep_conf_free(c);
}
