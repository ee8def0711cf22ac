/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-options.c: the options dictionary, the requester from credentials, TAM URIs */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "broker-test.h"
#include "bus-util.h"
#include "options.h"

static sd_bus *bus;

static void setup(void) {
        bus = test_bus_new();
}

static void teardown(void) {
        test_bus_free(bus);
}

TestSuite(options, .init = setup, .fini = teardown, .timeout = 30);

/* Read an options dictionary built by build(); returns the result and fills o / error. */
static int parse(void (*build)(sd_bus_message *m), BrokerOptions *o, sd_bus_error *error) {
        sd_bus_message *m = test_message_new(bus);
        int r;

        build(m);
        test_message_seal(m);
        r = broker_options_read(m, o, error);
        sd_bus_message_unref(m);
        return r;
}

static void build_empty(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 0), 0);
}

static void build_requester(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 1, "requester", "s", "package:hello-tee"), 0);
}

static void build_unknown(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 2, "requester", "s", "package:x1", "interactive", "b", 1),
                      0);
}

static void build_wrong_type(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 1, "requester", "u", 1000), 0);
}

static void build_twice(sd_bus_message *m) {
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 2, "requester", "s", "package:a1", "requester", "s",
                                            "package:b1"),
                      0);
}

Test(options, empty_dictionary_is_fine) {
        BrokerOptions o = {};
        sd_bus_error e = SD_BUS_ERROR_NULL;

        cr_assert_eq(parse(build_empty, &o, &e), 0);
        cr_assert_null(o.requester);
        cr_assert(!sd_bus_error_is_set(&e));
}

Test(options, requester_is_read) {
        BrokerOptions o = {};
        sd_bus_error e = SD_BUS_ERROR_NULL;

        cr_assert_eq(parse(build_requester, &o, &e), 0);
        cr_assert_str_eq(o.requester, "package:hello-tee");
        broker_options_done(&o);
        cr_assert_null(o.requester);
}

Test(options, unknown_key_is_refused_with_invalid_args) {
        BrokerOptions o = {};
        sd_bus_error e = SD_BUS_ERROR_NULL;

        cr_assert_lt(parse(build_unknown, &o, &e), 0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        cr_assert(strstr(e.message, "interactive"), "%s", e.message);
        cr_assert_null(o.requester, "nothing is returned on failure");
        sd_bus_error_free(&e);
}

Test(options, wrong_type_and_duplicate_are_refused) {
        BrokerOptions o = {};
        sd_bus_error e = SD_BUS_ERROR_NULL;

        cr_assert_lt(parse(build_wrong_type, &o, &e), 0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&e);

        cr_assert_lt(parse(build_twice, &o, &e), 0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        cr_assert(strstr(e.message, "twice"), "%s", e.message);
        sd_bus_error_free(&e);
}

Test(requester, from_uid_when_nothing_else_is_known) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *s = NULL;

        cr_assert_eq(requester_derive(1000, NULL, NULL, &s, &e), 0);
        cr_assert_str_eq(s, "uid:1000");
        free(s);
        cr_assert_eq(requester_derive(0, NULL, NULL, &s, &e), 0);
        cr_assert_str_eq(s, "uid:0");
        free(s);
}

Test(requester, system_service_is_named_by_unit) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *s = NULL;

        cr_assert_eq(requester_derive(107, "tee-app.service", NULL, &s, &e), 0);
        cr_assert_str_eq(s, "unit:tee-app.service");
        free(s);
}

Test(requester, only_root_may_act_for_a_package) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *s = NULL;

        cr_assert_eq(requester_derive(0, NULL, "package:libfoo1", &s, &e), 0);
        cr_assert_str_eq(s, "package:libfoo1");
        free(s);
        s = NULL;

        /* a package option beats the unit for root (a dpkg trigger runs inside a unit) */
        cr_assert_eq(requester_derive(0, "apt-daily-upgrade.service", "package:libfoo1", &s, &e), 0);
        cr_assert_str_eq(s, "package:libfoo1");
        free(s);
        s = NULL;

        cr_assert_lt(requester_derive(1000, NULL, "package:libfoo1", &s, &e), 0);
        cr_assert_str_eq(e.name, TEEP_ERROR_ACCESS_DENIED);
        cr_assert_null(s);
        sd_bus_error_free(&e);

        /* even root cannot claim to be a uid or a unit */
        cr_assert_lt(requester_derive(0, NULL, "uid:1000", &s, &e), 0);
        cr_assert_str_eq(e.name, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&e);
        cr_assert_lt(requester_derive(0, NULL, "unit:foo.service", &s, &e), 0);
        sd_bus_error_free(&e);
}

Test(requester, package_names) {
        cr_assert(requester_package_is_valid("package:libc6"));
        cr_assert(requester_package_is_valid("package:g++-12"));
        cr_assert(requester_package_is_valid("package:python3.11"));
        cr_assert(!requester_package_is_valid("package:"));
        cr_assert(!requester_package_is_valid("package:-x"));
        cr_assert(!requester_package_is_valid("package:a b"));
        cr_assert(!requester_package_is_valid("package:a/b"));
        cr_assert(!requester_package_is_valid("package:a\nb"));
        cr_assert(!requester_package_is_valid("pkg:libc6"));
        cr_assert(!requester_package_is_valid(NULL));
        {
                char longname[8 + 130];
                memcpy(longname, "package:", 8);
                memset(longname + 8, 'a', 129);
                longname[8 + 129] = '\0';
                cr_assert(!requester_package_is_valid(longname));
                longname[8 + 128] = '\0';
                cr_assert(requester_package_is_valid(longname));
        }
}

Test(requester, which_units_are_system_services) {
        cr_assert(requester_unit_is_system_service("tee-app.service", NULL, NULL));
        cr_assert(requester_unit_is_system_service("getty@tty1.service", NULL, NULL));
        /* a person's session: named by uid */
        cr_assert(!requester_unit_is_system_service("user@1000.service", NULL, NULL));
        cr_assert(!requester_unit_is_system_service("user@1000.service", "app-foo.scope", NULL));
        cr_assert(!requester_unit_is_system_service("session-3.scope", NULL, "3"));
        cr_assert(!requester_unit_is_system_service("foo.service", NULL, "3"));
        cr_assert(!requester_unit_is_system_service("foo.scope", NULL, NULL));
        cr_assert(!requester_unit_is_system_service("init.scope", NULL, NULL));
        cr_assert(!requester_unit_is_system_service(".service", NULL, NULL));
        cr_assert(!requester_unit_is_system_service("a b.service", NULL, NULL));
        cr_assert(!requester_unit_is_system_service(NULL, NULL, NULL));
}

Test(tam_uri, only_http_and_https_with_a_host) {
        cr_assert(tam_uri_is_valid("http://127.0.0.1:8080/tam"));
        cr_assert(tam_uri_is_valid("https://tam.example/teep"));
        cr_assert(tam_uri_is_valid("HTTPS://tam.example"));
        cr_assert(!tam_uri_is_valid("file:///etc/passwd"));
        cr_assert(!tam_uri_is_valid("ftp://tam.example/"));
        cr_assert(!tam_uri_is_valid("http://"));
        cr_assert(!tam_uri_is_valid("http:///path"));
        cr_assert(!tam_uri_is_valid("http://a b/"));
        cr_assert(!tam_uri_is_valid("http://tam.example/\n"));
        cr_assert(!tam_uri_is_valid(""));
        cr_assert(!tam_uri_is_valid(NULL));
        {
                char *u = malloc(BROKER_MAX_URI_LEN + 2);
                memcpy(u, "http://x/", 9);
                memset(u + 9, 'a', BROKER_MAX_URI_LEN - 9);
                u[BROKER_MAX_URI_LEN] = '\0';
                cr_assert(tam_uri_is_valid(u));
                u[BROKER_MAX_URI_LEN] = 'a';
                u[BROKER_MAX_URI_LEN + 1] = '\0';
                cr_assert(!tam_uri_is_valid(u));
                free(u);
        }
}
