/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-cache.c: the broker's mirror of the agent's properties */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "agent-cache.h"
#include "broker-test.h"

static sd_bus *bus;
static AgentCache cache;

static void setup(void) {
        bus = test_bus_new();
}

static void teardown(void) {
        agent_cache_done(&cache);
        test_bus_free(bus);
}

TestSuite(agent_cache, .init = setup, .fini = teardown, .timeout = 30);

static const uint8_t digest[32] = { 0xde, 0xad, 0xbe, 0xef };

static sd_bus_message *get_all(const char *component, uint64_t seq, bool with_unknown) {
        sd_bus_message *m = test_message_new(bus);

        cr_assert_geq(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
        cr_assert_geq(sd_bus_message_append(m, "{sv}", "Version", "s", "0.1.0"), 0);
        if (with_unknown)
                cr_assert_geq(sd_bus_message_append(m, "{sv}", "SomethingNew", "u", 7), 0);
        cr_assert_geq(sd_bus_message_open_container(m, 'e', "sv"), 0);
        cr_assert_geq(sd_bus_message_append(m, "s", "InstalledTCs"), 0);
        cr_assert_geq(sd_bus_message_open_container(m, 'v', "a(stay)"), 0);
        cr_assert_geq(sd_bus_message_open_container(m, 'a', "(stay)"), 0);
        if (component) {
                cr_assert_geq(sd_bus_message_open_container(m, 'r', "stay"), 0);
                cr_assert_geq(sd_bus_message_append(m, "st", component, seq), 0);
                cr_assert_geq(sd_bus_message_append_array(m, 'y', digest, sizeof(digest)), 0);
                cr_assert_geq(sd_bus_message_close_container(m), 0);
        }
        cr_assert_geq(sd_bus_message_close_container(m), 0);
        cr_assert_geq(sd_bus_message_close_container(m), 0);
        cr_assert_geq(sd_bus_message_close_container(m), 0);
        cr_assert_geq(sd_bus_message_append(m, "{sv}", "Requests", "a(ss)", 2, "x/ta", "uid:1000", "x/ta",
                                            "package:foo"),
                      0);
        cr_assert_geq(sd_bus_message_append(m, "{sv}", "PendingRequests", "as", 0), 0);
        cr_assert_geq(sd_bus_message_append(m, "{sv}", "TamURIs", "as", 1, "http://127.0.0.1:1/tam"), 0);
        cr_assert_geq(sd_bus_message_close_container(m), 0);
        test_message_seal(m);
        return m;
}

Test(agent_cache, get_all_fills_everything_and_reports_changes) {
        sd_bus_message *m = get_all("x/ta", 3, true);
        unsigned changed = 0;

        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, AGENT_PROP_VERSION | AGENT_PROP_INSTALLED | AGENT_PROP_REQUESTS | AGENT_PROP_TAMS,
                     "changed %#x", changed);
        cr_assert_str_eq(cache.version, "0.1.0");
        cr_assert_eq(cache.n_tcs, 1);
        cr_assert_str_eq(cache.tcs[0].component, "x/ta");
        cr_assert_eq(cache.tcs[0].sequence, 3);
        cr_assert_eq(cache.tcs[0].digest_len, 32);
        cr_assert_eq(memcmp(cache.tcs[0].digest, digest, 32), 0);
        cr_assert_eq(cache.n_requests, 2);
        cr_assert_eq(cache.n_tam_uris, 1);
        cr_assert(agent_cache_has_tc(&cache, "x/ta"));
        cr_assert(!agent_cache_has_tc(&cache, "x/t"));
        cr_assert(agent_cache_requested_by_other(&cache, "x/ta", "uid:1000"));
        cr_assert(!agent_cache_requested_by_other(&cache, "y/ta", "uid:1000"));

        /* the same again changes nothing */
        m = get_all("x/ta", 3, false);
        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, 0, "changed %#x", changed);

        /* a newer sequence number is a change of InstalledTCs only */
        m = get_all("x/ta", 4, false);
        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, AGENT_PROP_INSTALLED);
        cr_assert_eq(cache.tcs[0].sequence, 4);

        m = get_all(NULL, 0, false);
        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(cache.n_tcs, 0);
        cr_assert(!agent_cache_has_tc(&cache, "x/ta"));
}

Test(agent_cache, a_wrong_type_changes_nothing) {
        sd_bus_message *m = get_all("x/ta", 3, false);
        unsigned changed = 0;

        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);

        m = test_message_new(bus);
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 2, "Version", "s", "9.9", "InstalledTCs", "as", 1, "y/ta"),
                      0);
        test_message_seal(m);
        cr_assert_eq(agent_cache_apply(&cache, m, &changed), -EBADMSG);
        sd_bus_message_unref(m);
        cr_assert_str_eq(cache.version, "0.1.0", "a half-applied update");
        cr_assert(agent_cache_has_tc(&cache, "x/ta"));
}

Test(agent_cache, partial_update_and_clear) {
        sd_bus_message *m = get_all("x/ta", 3, false);
        const char *names[6];
        unsigned changed = 0, was;

        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);

        m = test_message_new(bus);
        cr_assert_geq(sd_bus_message_append(m, "a{sv}", 1, "PendingRequests", "as", 1, "z/ta"), 0);
        test_message_seal(m);
        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, AGENT_PROP_PENDING);
        cr_assert_eq(cache.n_tcs, 1, "an update of one property keeps the others");
        agent_cache_property_names(changed, names);
        cr_assert_str_eq(names[0], "PendingRequests");
        cr_assert_null(names[1]);

        was = agent_cache_clear(&cache);
        cr_assert(was & AGENT_PROP_INSTALLED);
        cr_assert(was & AGENT_PROP_PENDING);
        cr_assert_eq(cache.n_tcs, 0);
        cr_assert(!cache.known);
}

static sd_bus_message *requests_changed(const char *types, ...) {
        sd_bus_message *m = test_message_new(bus);
        va_list ap;

        va_start(ap, types);
        cr_assert_geq(sd_bus_message_appendv(m, types, ap), 0);
        va_end(ap);
        test_message_seal(m);
        return m;
}

static void assert_requests(const char *want) {
        char have[512] = "";

        for (size_t i = 0; i < cache.n_requests; i++) {
                size_t len = strlen(have);
                snprintf(have + len, sizeof(have) - len, "%s %s;", cache.requests[i].component,
                         cache.requests[i].requester);
        }
        cr_assert_str_eq(have, want);
}

Test(agent_cache, requests_follow_what_changed) {
        sd_bus_message *m = get_all("x/ta", 3, false); /* requests: x/ta uid:1000, x/ta package:foo */
        unsigned changed = 0;

        cr_assert_eq(agent_cache_apply(&cache, m, &changed), 0);
        sd_bus_message_unref(m);

        m = requests_changed("a(ss)a(ss)", 2, "y/ta", "uid:1001", "z/ta", "uid:1000", 0);
        cr_assert_eq(agent_cache_apply_requests_changed(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, AGENT_PROP_REQUESTS);
        assert_requests("x/ta uid:1000;x/ta package:foo;y/ta uid:1001;z/ta uid:1000;");
        cr_assert(agent_cache_requested_by_other(&cache, "y/ta", "uid:1000"));

        /* removed in place, the order of the rest kept (the agent's own order) */
        m = requests_changed("a(ss)a(ss)", 0, 2, "x/ta", "package:foo", "y/ta", "uid:1001");
        cr_assert_eq(agent_cache_apply_requests_changed(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, AGENT_PROP_REQUESTS);
        assert_requests("x/ta uid:1000;z/ta uid:1000;");
        cr_assert(!agent_cache_requested_by_other(&cache, "x/ta", "uid:1000"));

        /* removing what is not there changes nothing */
        m = requests_changed("a(ss)a(ss)", 0, 1, "q/ta", "uid:1000");
        cr_assert_eq(agent_cache_apply_requests_changed(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, 0);
        assert_requests("x/ta uid:1000;z/ta uid:1000;");

        /* more removals than one change makes are refused as a whole (the broker reads all again) */
        m = test_message_new(bus);
        cr_assert_geq(sd_bus_message_append(m, "a(ss)", 0), 0);
        cr_assert_geq(sd_bus_message_open_container(m, 'a', "(ss)"), 0);
        for (unsigned i = 0; i <= AGENT_CACHE_MAX_REMOVALS; i++)
                cr_assert_geq(sd_bus_message_append(m, "(ss)", "x/ta", "uid:1000"), 0);
        cr_assert_geq(sd_bus_message_close_container(m), 0);
        test_message_seal(m);
        cr_assert_eq(agent_cache_apply_requests_changed(&cache, m, &changed), -E2BIG);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, 0);
        assert_requests("x/ta uid:1000;z/ta uid:1000;");

        /* a signal of the wrong shape is refused as a whole */
        m = requests_changed("a(ss)as", 1, "w/ta", "uid:1", 1, "x/ta");
        cr_assert_lt(agent_cache_apply_requests_changed(&cache, m, &changed), 0);
        sd_bus_message_unref(m);
        cr_assert_eq(changed, 0);
        assert_requests("x/ta uid:1000;z/ta uid:1000;");
}
