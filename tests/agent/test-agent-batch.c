/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-batch.c: RequestTA calls batched into one state save (agent_request_ta_many) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "agent-test.h"

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
