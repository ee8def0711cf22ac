/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-limits.c: the agent core's request and TC limits, in-process (the fuzz harness's agent and TAM) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "fuzz-agent.h"
#include "macro.h"
#include "targets.h"
#include "teep-component.h"

/*
 * The agent of tests/fuzz/agent-target.c: fixed keys, a fake store in memory, a baseline of one
 * installed TC (FUZZ_AGENT_COMPONENT at sequence 1) and one request (uid:1000 for
 * FUZZ_AGENT_COMPONENT2). Every test starts from that baseline.
 */

static Agent *A;

static void setup(void) {
        A = fuzz_agent_reset();
}

static void teardown(void) {
        fuzz_targets_cleanup();
}

TestSuite(agent_limits, .init = setup, .fini = teardown, .timeout = 300);

static int request(const char *requester, unsigned i) {
        _cleanup_free_ char *uri = NULL;
        char component[64];

        snprintf(component, sizeof(component), "limits/r-%u/ta", i);
        return agent_request_ta(A, requester, component, NULL, &uri);
}

Test(agent_limits, one_requester_holds_at_most_1024_requests) {
        for (unsigned i = 0; i < AGENT_MAX_REQUESTS_PER_REQUESTER; i++)
                cr_assert_eq(request("uid:4242", i), 0, "request %u", i);
        cr_assert_eq(request("uid:4242", AGENT_MAX_REQUESTS_PER_REQUESTER), -E2BIG);
        /* asking again for what it holds is no new request */
        cr_assert_eq(request("uid:4242", 7), 0);
        /* others are not locked out */
        cr_assert_eq(request("uid:4343", AGENT_MAX_REQUESTS_PER_REQUESTER), 0);
        /* giving one back makes room */
        {
                _cleanup_free_ char *uri = NULL;
                cr_assert_eq(agent_unrequest_ta(A, "uid:4242", "limits/r-3/ta", &uri), 0);
        }
        cr_assert_eq(request("uid:4242", AGENT_MAX_REQUESTS_PER_REQUESTER), 0);
}

Test(agent_limits, all_requesters_hold_at_most_4096_requests) {
        const AgentRequest *reqs;
        unsigned n = (unsigned)agent_requests(A, &reqs); /* the baseline's */
        char requester[32];

        for (unsigned i = n; i < AGENT_MAX_REQUESTS; i++) {
                snprintf(requester, sizeof(requester), "uid:%u", 5000 + i / AGENT_MAX_REQUESTS_PER_REQUESTER);
                cr_assert_eq(request(requester, i), 0, "request %u", i);
        }
        cr_assert_eq(agent_requests(A, &reqs), AGENT_MAX_REQUESTS);
        cr_assert_eq(request("uid:9999", 0), -E2BIG);
}

/* Signed QueryRequest, then a signed Update with one envelope; returns the decoded answer to the Update. */
static TeepMessage *exchange(const uint8_t *envelope, size_t envelope_len, uint8_t **ret_raw) {
        static const uint8_t token[16] = "limits-token-000";
        _cleanup_free_ uint8_t *qr = NULL, *sqr = NULL, *up = NULL, *sup = NULL, *out = NULL;
        size_t qr_len, sqr_len, up_len, sup_len, out_len;
        TeepCoseMessage cose;
        TeepMessage *m = NULL;
        TeepBuf b = TEEP_BUF(envelope, envelope_len);

        cr_assert_eq(fuzz_agent_query_request(token, 16, TEEP_DATA_TRUSTED_COMPONENTS, &qr, &qr_len), 0);
        cr_assert_eq(fuzz_agent_sign(qr, qr_len, &sqr, &sqr_len), 0);
        cr_assert_eq(fuzz_agent_process(sqr, sqr_len, &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        cr_assert_eq(m->type, TEEP_TYPE_QUERY_RESPONSE, "the QueryRequest got %s", teep_message_type_to_string(m->type));
        teep_message_free(m);
        m = NULL;
        free(out);
        out = NULL;

        cr_assert_eq(fuzz_agent_update(token, 16, &b, 1, NULL, &up, &up_len), 0);
        cr_assert_eq(fuzz_agent_sign(up, up_len, &sup, &sup_len), 0);
        cr_assert_eq(fuzz_agent_process(sup, sup_len, &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        *ret_raw = TAKE_PTR(out);
        return m;
}

/* Fill the state up to AGENT_MAX_TCS installed TCs (the baseline's one included). */
static void fill_tcs(void) {
        for (unsigned i = (unsigned)A->state.n_tcs; i < AGENT_MAX_TCS; i++) {
                char component[64];
                AgentTc tc = { .component = component, .seq = 1, .size = 1, .tam_uri = (char *)FUZZ_AGENT_TAM_URI };
                snprintf(component, sizeof(component), "limits/tc-%u/ta", i);
                cr_assert_geq(agent_state_add_tc(&A->state, &tc), 0);
        }
        cr_assert_eq(A->state.n_tcs, AGENT_MAX_TCS);
}

Test(agent_limits, an_update_past_4096_installed_tcs_is_refused) {
        _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        const AgentTc *tcs;
        size_t env_len;

        fill_tcs();
        cr_assert_eq(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT2, 1, "one too many", NULL, false, &env, &env_len), 0);
        ans = exchange(env, env_len, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_ERROR, "got %s", teep_message_type_to_string(ans->type));
        cr_assert_eq(ans->err_code, TEEP_ERR_TEMPORARY_ERROR);
        cr_assert(ans->has_err_msg && memmem(ans->err_msg.ptr, ans->err_msg.len, "more than 4096", 14),
                  "err-msg: %.*s", (int)ans->err_msg.len, (const char *)ans->err_msg.ptr);
        cr_assert_eq(agent_installed(A, &tcs), AGENT_MAX_TCS, "nothing was added");
        cr_assert_lt(agent_state_find_tc(&A->state, FUZZ_AGENT_COMPONENT2), 0);
}

Test(agent_limits, at_the_limit_an_installed_tc_still_updates) {
        _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t env_len;
        ssize_t i;

        fill_tcs();
        cr_assert_eq(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 2, "the baseline, updated", NULL, false, &env, &env_len), 0);
        ans = exchange(env, env_len, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "got %s: %.*s", teep_message_type_to_string(ans->type),
                     (int)ans->err_msg.len, ans->err_msg.ptr ? (const char *)ans->err_msg.ptr : "");
        i = agent_state_find_tc(&A->state, FUZZ_AGENT_COMPONENT);
        cr_assert_geq(i, 0);
        cr_assert_eq(A->state.tcs[i].seq, 2);
        cr_assert_eq(A->state.n_tcs, AGENT_MAX_TCS);
}
