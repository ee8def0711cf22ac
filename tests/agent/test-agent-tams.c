/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-tams.c: several TAMs — failover order, per-TAM policy checks and suites, and a
 * TAM managing only the components it installed */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent-test.h"
#include "macro.h"
#include "teep-protocol.h"

#define TAM_A TEST_TAM_URI
#define TAM_B "http://tam-b.test/tam"
#define TAM_C "http://tam-c.test/tam"

static Fixture F;
static TeepKey *key_b; /* TAM B's own key; TAM A keeps the fixture's tam.pem, C trusts both */

/* Three [TAM]s, A (the fixture's), B and C, each with its own anchor list. */
static void setup(void) {
        char path[400];

        fx_setup(&F, TEEP_KEY_P256);
        cr_assert_eq(teep_key_generate(&key_b, TEEP_KEY_P256), 0);
        snprintf(path, sizeof(path), "%s/tam-b.pem", F.anchors);
        fx_write_pem(path, key_b);

        F.cfg.tams = reallocarray(F.cfg.tams, 3, sizeof(AgentTamConfig));
        cr_assert(F.cfg.tams);
        F.cfg.tams[1] = (AgentTamConfig){ .uri = strdup(TAM_B) };
        F.cfg.tams[2] = (AgentTamConfig){ .uri = strdup(TAM_C) };
        F.cfg.n_tams = 3;
        F.cfg.tams[0].trust_anchors = calloc(2, sizeof(char *));
        F.cfg.tams[0].trust_anchors[0] = strdup("tam.pem");
        F.cfg.tams[1].trust_anchors = calloc(2, sizeof(char *));
        F.cfg.tams[1].trust_anchors[0] = strdup("tam-b.pem");
        fx_restart(&F);
}

static void teardown(void) {
        teep_key_free(key_b);
        key_b = NULL;
        fx_teardown(&F);
}

TestSuite(tams, .init = setup, .fini = teardown, .timeout = 60);

static char *next_after(const char *failed) {
        char *next = NULL;
        cr_assert_eq(agent_process_error(F.agent, failed, "connection refused", &next), 0);
        return next;
}

static void expect_next(const char *failed, const char *want) {
        _cleanup_free_ char *next = next_after(failed);
        if (!want)
                cr_assert_null(next, "after %s: %s, want none", failed, next);
        else
                cr_assert(next && strcmp(next, want) == 0, "after %s: %s, want %s", failed, next ?: "none", want);
}

Test(tams, failover_in_configuration_order) {
        _cleanup_free_ char *uri = NULL;

        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, NULL, &uri), 0);
        cr_assert_str_eq(uri, TAM_A);
        expect_next(TAM_A, TAM_B);
        expect_next(TAM_B, TAM_C);
        expect_next(TAM_C, NULL);
}

Test(tams, failover_along_the_components_own_list_first) {
        _cleanup_free_ char *uri = NULL;
        char *hints[] = { (char *)"http://untrusted.test/tam", (char *)TAM_C, (char *)TAM_A, NULL };

        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, hints, &uri), 0);
        cr_assert_str_eq(uri, TAM_C, "the first trusted TAM of the component's list");
        expect_next(TAM_C, TAM_A);
        expect_next(TAM_A, TAM_B); /* then the configured ones not on the list */
        expect_next(TAM_B, NULL);
}

Test(tams, no_failover_without_work) {
        /* nothing pending: an error ends the exchange, no other TAM is bothered */
        expect_next(TAM_A, NULL);
}

/* ---- one TAM may not manage what another installed ---- */

static TeepMessage *exchange(const char *uri, TeepKey *tam_key, const TeepBuf *envs, size_t n,
                             const char *const *unneeded, uint8_t **raw_out) {
        _cleanup_free_ uint8_t *qr = NULL, *qraw = NULL, *up = NULL;
        TeepCoseMessage cose;
        TeepMessage *m = NULL;
        uint8_t token[16], *out = NULL;
        size_t len, out_len = 0;

        for (int i = 0; i < 16; i++)
                token[i] = (uint8_t)(rand() & 0xff);
        qr = tam_query_request(tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(agent_process_message(F.agent, uri, TEEP_BUF(qr, len), &qraw, &out_len), 0);
        up = tam_update(tam_key, token, 16, envs, n, unneeded, &len);
        cr_assert_eq(agent_process_message(F.agent, uri, TEEP_BUF(up, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(teep_cose_verify(&cose, NULL, &F.device_pub, 1, NULL, NULL, NULL), 0);
        cr_assert_eq(teep_message_decode(cose.payload, &m, NULL), 0);
        *raw_out = out;
        return m;
}

static TeepMessage *install_from(const char *uri, TeepKey *tam_key, uint64_t seq, const char *payload, uint8_t **raw) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t len;
        TeepBuf b;

        env = make_envelope(F.signer_key, TEST_COMPONENT, seq, (const uint8_t *)payload, strlen(payload), NULL, NULL,
                            NULL, &len);
        b = TEEP_BUF(env, len);
        return exchange(uri, tam_key, &b, 1, NULL, raw);
}

Test(tams, a_tam_cannot_replace_or_remove_another_tams_component) {
        _cleanup_free_ uint8_t *r1 = NULL, *r2 = NULL, *r3 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ok = NULL, *refused = NULL, *unneeded = NULL;
        _cleanup_free_ char *state = NULL, *store = NULL, *state2 = NULL, *store2 = NULL;
        const AgentTc *tcs;
        int64_t section;
        bool nonce;

        ok = install_from(TAM_A, F.tam_key, 1, "from A", &r1);
        cr_assert_eq(ok->type, TEEP_TYPE_SUCCESS);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_str_eq(tcs[0].tam_uri, TAM_A, "the installing TAM is recorded");
        state = fx_state_file(&F);
        store = fx_store_snapshot(&F);

        /* B (trusted for messages, with a newer manifest from the trusted signer) may not replace it */
        refused = install_from(TAM_B, key_b, 2, "from B", &r2);
        cr_assert_eq(refused->type, TEEP_TYPE_ERROR);
        cr_assert_eq(refused->err_code, TEEP_ERR_MANIFEST_PROCESSING_FAILED);
        cr_assert_geq(refused->n_suit_reports, 1);
        cr_assert_eq(suit_report_reason(refused->suit_reports[0], &section, &nonce), 7 /* component unauthorised */);
        /* ... nor remove it through the unneeded-manifest-list */
        unneeded = exchange(TAM_B, key_b, NULL, 0, (const char *const[]){ TEST_COMPONENT, NULL }, &r3);
        cr_assert_eq(unneeded->type, TEEP_TYPE_SUCCESS);
        state2 = fx_state_file(&F);
        store2 = fx_store_snapshot(&F);
        cr_assert_str_eq(state2, state, "the state changed");
        cr_assert_str_eq(store2, store, "the store changed");
        cr_assert(fx_store_has(&F, TEST_COMPONENT, "from A"));
}

Test(tams, manage_any_component_lets_a_tam_take_over) {
        _cleanup_free_ uint8_t *r1 = NULL, *r2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *a = NULL, *b = NULL;
        const AgentTc *tcs;

        a = install_from(TAM_A, F.tam_key, 1, "from A", &r1);
        cr_assert_eq(a->type, TEEP_TYPE_SUCCESS);
        F.cfg.tams[1].manage_any = true;
        fx_restart(&F);
        b = install_from(TAM_B, key_b, 2, "from B", &r2);
        cr_assert_eq(b->type, TEEP_TYPE_SUCCESS, "%.*s", (int)b->err_msg.len, (const char *)b->err_msg.ptr);
        cr_assert(fx_store_has(&F, TEST_COMPONENT, "from B"));
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_str_eq(tcs[0].tam_uri, TAM_B, "the new owner is recorded");
}

Test(tams, a_removed_tam_leaves_its_components_to_the_others) {
        _cleanup_free_ uint8_t *r1 = NULL, *r2 = NULL;
        _cleanup_(teep_message_freep) TeepMessage *a = NULL, *b = NULL;

        a = install_from(TAM_A, F.tam_key, 1, "from A", &r1);
        cr_assert_eq(a->type, TEEP_TYPE_SUCCESS);
        /* the administrator drops TAM A from the configuration */
        free(F.cfg.tams[0].uri);
        F.cfg.tams[0].uri = strdup("http://gone.test/tam");
        fx_restart(&F);
        b = install_from(TAM_B, key_b, 2, "from B", &r2);
        cr_assert_eq(b->type, TEEP_TYPE_SUCCESS);
}

/* ---- per-TAM policy checks and suites ---- */

static char *policy_next(void) {
        char *uri = NULL;
        cr_assert_eq(agent_request_policy_check(F.agent, &uri), 0);
        return uri;
}

Test(tams, policy_check_interval_per_tam) {
        char *u;

        F.cfg.tams[0].policy_check_interval_usec = UINT64_C(3600) * 1000000; /* A: hourly */
        fx_restart(&F);
        const char *round1[] = { TAM_A, TAM_B, TAM_C, NULL };
        for (size_t i = 0; i < ELEMENTSOF(round1); i++) {
                u = policy_next();
                cr_assert(round1[i] ? u && strcmp(u, round1[i]) == 0 : !u, "round 1, step %zu: %s", i, u ?: "end");
                free(u);
        }
        /* right after: A is not due, B and C (no interval) are */
        const char *round2[] = { TAM_B, TAM_C, NULL };
        for (size_t i = 0; i < ELEMENTSOF(round2); i++) {
                u = policy_next();
                cr_assert(round2[i] ? u && strcmp(u, round2[i]) == 0 : !u, "round 2, step %zu: %s", i, u ?: "end");
                free(u);
        }
}

static void expect_round(const char *const *want, const char *what) {
        for (size_t i = 0;; i++) {
                _cleanup_free_ char *u = policy_next();
                cr_assert(want[i] ? u && strcmp(u, want[i]) == 0 : !u, "%s, step %zu: %s, want %s", what, i, u ?: "end",
                          want[i] ?: "end");
                if (!want[i])
                        break;
        }
}

static void write_schedule(const char *text) {
        char path[400];
        FILE *f;

        snprintf(path, sizeof(path), "%s/policy-checks", F.cfg.state_dir);
        f = fopen(path, "w");
        cr_assert(f);
        fputs(text, f);
        cr_assert_eq(fclose(f), 0);
}

/* The schedule outlives the instance: teep-agentd rests between sessions, and a new instance
 * must not contact an hourly TAM again just because it is new. */
Test(tams, policy_check_schedule_survives_a_restart) {
        static const char *const all[] = { TAM_A, TAM_B, TAM_C, NULL };
        static const char *const not_a[] = { TAM_B, TAM_C, NULL };

        F.cfg.tams[0].policy_check_interval_usec = UINT64_C(3600) * 1000000; /* A: hourly */
        fx_restart(&F);
        expect_round(all, "first round");
        cr_assert_eq(agent_save_schedule(F.agent), 0);
        fx_restart(&F);
        expect_round(not_a, "after a restart");

        /* nothing saved: a new instance counts A as never checked (what the file prevents) */
        write_schedule("");
        fx_restart(&F);
        expect_round(all, "after a restart without a schedule");
}

Test(tams, policy_check_schedule_file_is_read_as_hostile) {
        static const char *const all[] = { TAM_A, TAM_B, TAM_C, NULL };
        static const char *const not_a[] = { TAM_B, TAM_C, NULL };
        char text[512];
        struct timespec ts;

        F.cfg.tams[0].policy_check_interval_usec = UINT64_C(3600) * 1000000;
        clock_gettime(CLOCK_REALTIME, &ts);
        /* junk, an unconfigured TAM, a number that overflows, no newline at the end: skipped */
        snprintf(text, sizeof(text), "garbage\n 17 %s\n99999999999999999999999 %s\n%llu http://other.test/tam\n%llu %s",
                 TAM_A, TAM_A, (unsigned long long)ts.tv_sec * 1000000, (unsigned long long)ts.tv_sec * 1000000, TAM_A);
        write_schedule(text);
        fx_restart(&F);
        expect_round(all, "no valid line for A");

        /* a check "in the future" (the clock was set back since): A is due */
        snprintf(text, sizeof(text), "%llu %s\n", ((unsigned long long)ts.tv_sec + 86400) * 1000000, TAM_A);
        write_schedule(text);
        fx_restart(&F);
        expect_round(all, "a check in the future");

        /* a valid line, 10 minutes ago: A is not due */
        snprintf(text, sizeof(text), "%llu %s\n", ((unsigned long long)ts.tv_sec - 600) * 1000000, TAM_A);
        write_schedule(text);
        fx_restart(&F);
        expect_round(not_a, "checked 10 min ago");
}

/* What a new instance would not have keeps teep-agentd up: requests not yet written, and a
 * pending component's own TAM list. */
Test(tams, busy_while_memory_holds_what_a_restart_loses) {
        _cleanup_free_ char *uri = NULL;
        char *hints[] = { (char *)TAM_C, NULL };

        cr_assert_null(agent_busy_reason(F.agent));
        agent_set_deferred_request_saves(F.agent, true);
        cr_assert_eq(agent_request_ta(F.agent, "uid:1000", TEST_COMPONENT, hints, &uri), 0);
        cr_assert_not_null(agent_busy_reason(F.agent), "an unwritten request must keep the agent up");
        cr_assert_eq(agent_save_requests(F.agent), 0);
        cr_assert_not_null(agent_busy_reason(F.agent), "the component's TAM list is in memory only");
        _cleanup_free_ char *u2 = NULL;
        cr_assert_eq(agent_unrequest_ta(F.agent, "uid:1000", TEST_COMPONENT, &u2), 0);
        cr_assert_eq(agent_save_requests(F.agent), 0);
        cr_assert_null(agent_busy_reason(F.agent), "no longer requested: nothing to keep");
}

Test(tams, suite_preference_per_tam) {
        _cleanup_free_ uint8_t *qr = NULL, *out = NULL;
        static const int64_t offered[] = { -9, -7 }; /* the TAM prefers ESP256, also takes ES256 */
        TeepCoseMessage cose;
        uint8_t token[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        size_t len, out_len = 0;

        F.cfg.tams[0].suite = -7;
        fx_restart(&F);
        qr = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, offered, 2, &len);
        cr_assert_eq(agent_process_message(F.agent, TAM_A, TEEP_BUF(qr, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert_eq(cose.body.alg, -7, "Suite=ES256 must win over the TAM's first choice");
        cr_assert_eq(teep_cose_verify(&cose, NULL, &F.device_pub, 1, NULL, NULL, NULL), 0);
}
