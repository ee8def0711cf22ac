/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-recovery.c: a crash between the journal and the commit resolves by the store */
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

TestSuite(recovery, .init = setup, .fini = teardown);

/* Write a state file with one journal entry, as the agent leaves it when it dies between
 * calling the installer and committing. */
static void write_journal(AgentJournalOp op, const char *component, uint64_t seq, const char *payload) {
        AgentState s = {};
        AgentTc tc = { .component = (char *)component, .seq = seq, .size = strlen(payload), .tam_uri = (char *)TEST_TAM_URI };
        _cleanup_free_ char *text = NULL;
        char path[400];
        size_t len;
        FILE *fp;
        _cleanup_free_ char *old = fx_state_file(&F);

        if (strcmp(old, "(none)") != 0)
                cr_assert_eq(agent_state_parse(old, strlen(old), &s), 0);
        teep_sha256(TEEP_BUF(payload, strlen(payload)), tc.sha256);
        cr_assert_eq(agent_state_add_journal(&s, op, &tc), 0);
        cr_assert_eq(agent_state_serialize(&s, &text, &len), 0);
        agent_state_done(&s);
        snprintf(path, sizeof(path), "%s/state", F.state_dir);
        fp = fopen(path, "we");
        cr_assert(fp);
        fwrite(text, 1, len, fp);
        fclose(fp);
}

/* put bytes into the fake store directly (what the installer did before the "crash") */
static void store_put(const char *component, const char *payload) {
        size_t i = F.store.n++;
        F.store.e[i].component = strdup(component);
        F.store.e[i].data = (uint8_t *)strdup(payload);
        F.store.e[i].len = strlen(payload);
        teep_sha256(TEEP_BUF(payload, strlen(payload)), F.store.e[i].sha);
}

Test(recovery, install_completed) {
        const AgentTc *tcs;

        store_put(TEST_COMPONENT, "new image");
        write_journal(AGENT_JOURNAL_INSTALL, TEST_COMPONENT, 9, "new image");
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 9);
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_null(strstr(state, "journal"), "the journal is resolved and written away");
        }
}

Test(recovery, install_not_done) {
        const AgentTc *tcs;

        fx_install(&F, TEST_COMPONENT, 3, "old image");
        write_journal(AGENT_JOURNAL_INSTALL, TEST_COMPONENT, 4, "new image");
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 3, "the store still has the old image: keep it");
}

Test(recovery, remove_completed) {
        const AgentTc *tcs;

        fx_install(&F, TEST_COMPONENT, 3, "old image");
        write_journal(AGENT_JOURNAL_REMOVE, TEST_COMPONENT, 3, "old image");
        /* the installer removed it, then the agent died */
        free(F.store.e[0].component);
        free(F.store.e[0].data);
        F.store.n = 0;
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 0);
}

Test(recovery, store_unreachable_keeps_journal) {
        const AgentTc *tcs;

        store_put(TEST_COMPONENT, "new image");
        write_journal(AGENT_JOURNAL_INSTALL, TEST_COMPONENT, 9, "new image");
        F.store.list_error = ENOTCONN;
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 0);
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_not_null(strstr(state, "journal install"), "unresolved: kept");
        }
        /* the store is back: the next Update resolves it first */
        F.store.list_error = 0;
        cr_assert_eq(agent_reconcile(F.agent), 0);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 9);
}

Test(recovery, store_lost_a_tc) {
        const AgentTc *tcs;

        fx_install(&F, TEST_COMPONENT, 3, "image");
        free(F.store.e[0].component);
        free(F.store.e[0].data);
        F.store.n = 0;
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 0, "state follows the store");
        /* but the anti-rollback floor stays */
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_not_null(strstr(state, "seen " TEST_COMPONENT " 3"));
        }
}

/* An Update's final state is not written (commit() step 4): the file keeps the journal, and a
 * restart turns it into exactly what was installed, floor included. */
Test(recovery, completed_update_leaves_its_journal) {
        const AgentTc *tcs;

        fx_install(&F, TEST_COMPONENT, 4, "image v4");
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_not_null(strstr(state, "journal install"), "the journal stands in for the final write");
                cr_assert_not_null(strstr(state, "seen " TEST_COMPONENT " 4"), "the floor is in the journal already");
        }
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 4);
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_null(strstr(state, "journal "), "resolved at start-up");
                cr_assert_not_null(strstr(state, "seen " TEST_COMPONENT " 4"));
        }
        /* flushing a plain state writes nothing new */
        cr_assert_eq(agent_flush_state(F.agent), 0);
}

Test(recovery, flush_writes_the_state_plain) {
        const AgentTc *tcs;

        fx_install(&F, TEST_COMPONENT, 2, "image v2");
        cr_assert_eq(agent_flush_state(F.agent), 0);
        {
                _cleanup_free_ char *state = fx_state_file(&F);
                cr_assert_null(strstr(state, "journal "));
                cr_assert_not_null(strstr(state, "seen " TEST_COMPONENT " 2"));
        }
        fx_restart(&F);
        cr_assert_eq(agent_installed(F.agent, &tcs), 1);
        cr_assert_eq(tcs[0].seq, 2);
}

/* One instance per state directory: a resting teep-agentd may still be writing when bus
 * activation starts the next one, which must wait for it. */
Test(recovery, the_state_directory_is_locked_by_one_instance) {
        Agent *second = NULL;
        uint64_t t0;

        cr_assert_eq(agent_lock_state(F.agent, 0), 0);
        cr_assert_eq(agent_new(&second, &F.cfg, NULL, NULL, NULL, NULL), 0);
        t0 = agent_now_usec();
        cr_assert_eq(agent_lock_state(second, 200), -EWOULDBLOCK, "two instances on one state directory");
        cr_assert_geq(agent_now_usec() - t0, 200 * 1000, "it must wait for the first before giving up");
        /* the first goes: the second gets it */
        F.agent = agent_free(F.agent);
        cr_assert_eq(agent_lock_state(second, 200), 0);
        agent_free(second);
        fx_restart(&F);
}
