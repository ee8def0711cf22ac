/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-batch.c: RequestTA calls batched into one state save (agent_request_ta_many) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "agent-test.h"
#include "macro.h"

static Fixture F;

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
}

static void teardown(void) {
        fx_teardown(&F);
}

TestSuite(batch, .init = setup, .fini = teardown);

static bool has_request(const char *requester, const char *component) {
        const AgentRequest *reqs;
        size_t n = agent_requests(F.agent, &reqs);

        for (size_t i = 0; i < n; i++)
                if (strcmp(reqs[i].requester, requester) == 0 && strcmp(reqs[i].component, component) == 0)
                        return true;
        return false;
}

Test(batch, each_call_its_own_outcome_one_state) {
        const AgentRequestCall calls[] = {
                { .requester = "uid:1000", .component = TEST_COMPONENT },
                { .requester = "uid:1001", .component = TEST_COMPONENT },
                { .requester = "bad requester", .component = TEST_COMPONENT2 }, /* refused alone */
                { .requester = "uid:1000", .component = TEST_COMPONENT2 },
                { .requester = "uid:1000", .component = TEST_COMPONENT },      /* the same again */
        };
        int rs[5];
        char *uris[5];
        const AgentRequest *reqs;

        cr_assert_eq(agent_request_ta_many(F.agent, 5, calls, rs, uris), 0);
        cr_assert_eq(rs[0], 0);
        cr_assert_eq(rs[1], 0);
        cr_assert_eq(rs[2], -EINVAL);
        cr_assert_null(uris[2]);
        cr_assert_eq(rs[3], 0);
        cr_assert_eq(rs[4], 0);
        for (size_t i = 0; i < 5; i++)
                if (i != 2)
                        cr_assert_str_eq(uris[i], TEST_TAM_URI, "call %zu: not installed, so the TAM to ask", i);
        for (size_t i = 0; i < 5; i++)
                free(uris[i]);
        cr_assert(F.changed & AGENT_CHANGED_REQUESTS);
        /* the change names what it recorded, once each (RequestsChanged on the bus) */
        cr_assert_str_eq(F.deltas, "+" TEST_COMPONENT " uid:1000\n+" TEST_COMPONENT " uid:1001\n+" TEST_COMPONENT2
                                   " uid:1000\n");
        cr_assert_eq(agent_requests(F.agent, &reqs), 3, "the duplicate is one request");
        cr_assert(has_request("uid:1000", TEST_COMPONENT));
        cr_assert(has_request("uid:1001", TEST_COMPONENT));
        cr_assert(has_request("uid:1000", TEST_COMPONENT2));

        /* the batch was saved: a restarted agent has every request of it */
        fx_restart(&F);
        cr_assert_eq(agent_requests(F.agent, &reqs), 3);
        cr_assert(has_request("uid:1001", TEST_COMPONENT));
        cr_assert(has_request("uid:1000", TEST_COMPONENT2));
}

Test(batch, single_call_is_the_same_as_request_ta) {
        char *uri = NULL;
        const AgentRequest *reqs;

        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, NULL, &uri), 0);
        cr_assert_str_eq(uri, TEST_TAM_URI);
        free(uri);
        cr_assert_lt(agent_request_ta(F.agent, "uid:1000", "not a component!", NULL, &uri), 0);
        cr_assert_eq(agent_requests(F.agent, &reqs), 1);
}

/* One batch past a requester's limit, with duplicates and requesters mixed: the index the batch
 * keeps of the requests counts each requester's, so the limit falls at the same call as it
 * would one call at a time, and a duplicate is never counted twice. */
Test(batch, a_big_batch_keeps_the_per_requester_limit) {
        enum { N = AGENT_MAX_REQUESTS_PER_REQUESTER + 8 };
        static char names[N][40];
        static AgentRequestCall calls[N + 2];
        static int rs[N + 2];
        static char *uris[N + 2];
        const AgentRequest *reqs;
        size_t ok = 0, refused = 0;

        for (size_t i = 0; i < N; i++) {
                snprintf(names[i], sizeof(names[i]), "batch/tc-%zu", i);
                calls[i] = (AgentRequestCall){ .requester = "uid:7", .component = names[i] };
        }
        calls[N] = (AgentRequestCall){ .requester = "uid:7", .component = names[3] }; /* again: not new */
        calls[N + 1] = (AgentRequestCall){ .requester = "uid:8", .component = names[N - 1] };
        cr_assert_eq(agent_request_ta_many(F.agent, N + 2, calls, rs, uris), 0);
        for (size_t i = 0; i < N; i++) {
                if (i < AGENT_MAX_REQUESTS_PER_REQUESTER)
                        cr_assert_eq(rs[i], 0, "call %zu: %d", i, rs[i]);
                else
                        cr_assert_eq(rs[i], -E2BIG, "call %zu is past the limit: %d", i, rs[i]);
                ok += rs[i] == 0;
                refused += rs[i] == -E2BIG;
        }
        cr_assert_eq(rs[N], 0, "a request it holds already is not refused by the limit");
        cr_assert_eq(rs[N + 1], 0, "another requester has its own limit");
        cr_assert_eq(ok, AGENT_MAX_REQUESTS_PER_REQUESTER);
        cr_assert_eq(refused, 8);
        cr_assert_eq(agent_requests(F.agent, &reqs), AGENT_MAX_REQUESTS_PER_REQUESTER + 1);
        cr_assert(has_request("uid:8", names[N - 1]));
        cr_assert_not(has_request("uid:7", names[N - 1]));
        for (size_t i = 0; i < N + 2; i++)
                free(uris[i]);
}

/* teep-agentd's mode (agent_set_deferred_request_saves()): calls change the state itself, a
 * refused one changes nothing, and nothing is on disk until agent_save_requests(). */
Test(batch, deferred_saves_change_the_state_in_place_and_write_it_later) {
        const AgentRequestCall calls[] = {
                { .requester = "uid:1000", .component = TEST_COMPONENT },
                { .requester = "uid:1001", .component = TEST_COMPONENT },
                { .requester = "bad requester", .component = TEST_COMPONENT2 },
        };
        _cleanup_free_ char *before = NULL, *after = NULL;
        char *uris[3], *uri = NULL;
        const AgentRequest *reqs;
        int rs[3];

        agent_set_deferred_request_saves(F.agent, true);
        before = fx_state_file(&F);
        cr_assert_eq(agent_request_ta_many(F.agent, 3, calls, rs, uris), 0);
        cr_assert(rs[0] == 0 && rs[1] == 0 && rs[2] == -EINVAL);
        for (size_t i = 0; i < 3; i++)
                free(uris[i]);
        cr_assert_eq(agent_requests(F.agent, &reqs), 2);
        cr_assert(agent_has_unsaved_requests(F.agent));

        F.deltas[0] = '\0';
        cr_assert_eq(agent_unrequest_ta(F.agent, "uid:9", TEST_COMPONENT, &uri), -ENOENT);
        cr_assert_str_empty(F.deltas, "a refused unrequest changes nothing");
        cr_assert_eq(agent_requests(F.agent, &reqs), 2);
        cr_assert_eq(agent_unrequest_ta(F.agent, "uid:1000", TEST_COMPONENT, &uri), 0);
        cr_assert_null(uri, "not installed: no TAM to ask");
        cr_assert_eq(agent_requests(F.agent, &reqs), 1);
        cr_assert_str_eq(reqs[0].requester, "uid:1001");

        after = fx_state_file(&F);
        cr_assert_str_eq(after, before, "written before agent_save_requests()");
        cr_assert_eq(agent_save_requests(F.agent), 0);
        cr_assert_not(agent_has_unsaved_requests(F.agent));
        fx_restart(&F);
        cr_assert_eq(agent_requests(F.agent, &reqs), 1);
        cr_assert(has_request("uid:1001", TEST_COMPONENT));
}
