/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-stream.c: URI payloads that arrive through a pipe, as the broker streams them */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agent-test.h"
#include "macro.h"

static Fixture F;

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
        F.fetcher.pipe = true;
}

static void teardown(void) {
        fx_teardown(&F);
}

TestSuite(stream, .init = setup, .fini = teardown);

#define URI "https://tcs.test/big.bin"

/* len bytes of text (no NUL inside), NUL-terminated, different for each seed */
static char *make_text(size_t len, char seed) {
        char *t = malloc(len + 1);

        cr_assert(t);
        for (size_t i = 0; i < len; i++)
                t[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
        t[len] = '\0';
        return t;
}

/* The TAM's Update for component with a URI payload whose manifest binds `bound`; the fetcher
 * serves `served` under URI. */
static TeepMessage *update_with(const char *bound, const char *served, uint8_t **raw) {
        _cleanup_free_ uint8_t *env = NULL;
        size_t elen;
        TeepBuf b;

        F.fetcher.e[0].uri = strdup(URI);
        F.fetcher.e[0].data = (uint8_t *)strdup(served);
        F.fetcher.e[0].len = strlen(served);
        F.fetcher.n = 1;
        env = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)bound, strlen(bound), URI, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        return fx_update(&F, &b, 1, NULL, raw);
}

#define ERR_MSG(ans) (int)(ans)->err_msg.len, (ans)->err_msg.ptr ? (const char *)(ans)->err_msg.ptr : ""

/* Larger than what is kept in memory: staged with the installer as it comes, hashed on the way,
 * then committed from the descriptor the installer gave back (no copy), and unstaged at the end. */
Test(stream, big_payload_is_staged_and_committed) {
        _cleanup_free_ char *payload = make_text(3u * 1024u * 1024u + 17u, 1);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = update_with(payload, payload, &raw);

        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", ERR_MSG(ans));
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
        cr_assert_eq(F.store.stage_opens, 1);
        cr_assert_eq(F.store.staged_installs, 1, "committed from the staged descriptor");
        cr_assert_eq(F.store.unstaged, 1);
        cr_assert_eq(F.store.n_staged, 0);
}

/* A small one through the same pipe stays in memory: no staging. */
Test(stream, small_payload_is_read_into_memory) {
        _cleanup_free_ char *payload = make_text(1000, 2);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = update_with(payload, payload, &raw);

        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", ERR_MSG(ans));
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
        cr_assert_eq(F.store.stage_opens, 0);
}

/* The broker streams other bytes than the signer bound: staged, refused by the digest check,
 * never installed, and unstaged. */
Test(stream, other_bytes_are_staged_refused_and_unstaged) {
        _cleanup_free_ char *bound = make_text(2u * 1024u * 1024u, 3);
        _cleanup_free_ char *served = make_text(2u * 1024u * 1024u, 4);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = update_with(bound, served, &raw);

        cr_assert_eq(ans->type, TEEP_TYPE_ERROR);
        cr_assert_eq(F.store.n, 0, "nothing installed");
        cr_assert_eq(F.store.installs, 0);
        cr_assert_eq(F.store.stage_opens, 1);
        cr_assert_eq(F.store.unstaged, 1);
        cr_assert_eq(F.store.n_staged, 0);
}

/* A broker that stops sending, before the first chunk is in or in the middle of the stream, is
 * cut off after the stall time; nothing is installed and what was staged is dropped. */
static void expect_stall_announced(size_t stall_at, uint64_t announce) {
        _cleanup_free_ char *payload = make_text(2u * 1024u * 1024u, 5);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        F.cfg.payload_stall_usec = 300 * 1000;
        fx_restart(&F);
        F.fetcher.stall_at = stall_at;
        F.fetcher.announce = announce;
        ans = update_with(payload, payload, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_ERROR);
        cr_assert_eq(F.store.n, 0);
        cr_assert_eq(F.store.n_staged, 0);
        cr_assert_eq(F.store.unstaged, F.store.stage_opens);
}

static void expect_stall(size_t stall_at) {
        expect_stall_announced(stall_at, 0);
}

Test(stream, a_stall_before_the_first_chunk_times_out) {
        expect_stall(100);
        cr_assert_eq(F.store.stage_opens, 0);
}

Test(stream, a_stall_midway_times_out) {
        expect_stall(1024u * 1024u);
        cr_assert_eq(F.store.stage_opens, 1);
}

/* Announced (Content-Length) larger than what is kept in memory: staged from the first byte, so
 * the installer copies while the rest downloads. A stream that stalls after 100 bytes has been
 * staged already; one that announces nothing waits for AGENT_STREAM_INLINE_MAX bytes first. */
Test(stream, an_announced_big_payload_is_staged_before_its_bytes_arrive) {
        expect_stall_announced(100, 2u * 1024u * 1024u);
        cr_assert_eq(F.store.stage_opens, 1, "staged on the announced size alone");
}

Test(stream, an_announced_small_payload_is_read_into_memory) {
        _cleanup_free_ char *payload = make_text(100u * 1024u, 7);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        F.fetcher.announce = strlen(payload);
        ans = update_with(payload, payload, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", ERR_MSG(ans));
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
        cr_assert_eq(F.store.stage_opens, 0);
}

/* More than MaxPayloadSize: refused one byte past the limit, not after the whole stream. */
Test(stream, more_than_the_limit_is_refused) {
        _cleanup_free_ char *payload = make_text(3u * 1024u * 1024u, 6);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        F.cfg.max_payload_size = 1024u * 1024u;
        fx_restart(&F);
        ans = update_with(payload, payload, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_ERROR);
        cr_assert_eq(F.store.n, 0);
        cr_assert_eq(F.store.n_staged, 0);
}

/* An installer that cannot stage: the stream goes into a sealed memfd of the agent's, which is
 * handed on as the broker's used to be. */
Test(stream, without_staging_the_agent_keeps_a_sealed_memfd) {
        _cleanup_free_ char *payload = make_text(1024u * 1024u + 1u, 7);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        F.store.no_stage = true;
        fx_restart(&F);
        ans = update_with(payload, payload, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "%.*s", ERR_MSG(ans));
        cr_assert(fx_store_has(&F, TEST_COMPONENT, payload));
        cr_assert_eq(F.store.stage_opens, 0);
        cr_assert_eq(F.store.staged_installs, 0);
}

/* A download that breaks off before the size the server announced is the network's failure,
 * named so (the broker turns it into TamUnreachable for the requester), whether it was staged
 * or kept in memory; nothing is installed. */
static void expect_cut_short(size_t len) {
        _cleanup_free_ char *payload = make_text(len, 8);
        _cleanup_free_ char *served = strndup(payload, len / 2);
        _cleanup_free_ uint8_t *raw = NULL, *env = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t elen;
        TeepBuf b;

        F.fetcher.announce = len;
        F.fetcher.e[0].uri = strdup(URI);
        F.fetcher.e[0].data = (uint8_t *)strdup(served);
        F.fetcher.e[0].len = strlen(served);
        F.fetcher.n = 1;
        env = make_envelope(F.signer_key, TEST_COMPONENT, 1, (const uint8_t *)payload, len, URI, NULL, NULL, &elen);
        b = TEEP_BUF(env, elen);
        ans = fx_update(&F, &b, 1, NULL, &raw);
        expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "the download ended after");
        cr_assert_eq(F.store.n, 0);
        cr_assert_eq(F.store.n_staged, 0);
}

Test(stream, a_small_download_cut_short_is_named_so) {
        expect_cut_short(4000);
        cr_assert_eq(F.store.stage_opens, 0);
}

Test(stream, a_big_download_cut_short_is_named_so) {
        expect_cut_short(2u * 1024u * 1024u);
        cr_assert_eq(F.store.stage_opens, 1);
}

/* The installer dies while the agent streams into it: the write fails (EPIPE, as teep-agentd
 * ignores SIGPIPE; the daemon test checks that it does), the Update fails with that, and the
 * agent lives on. Before the daemon ignored SIGPIPE, this killed it. */
Test(stream, an_installer_that_dies_midway_fails_the_update_not_the_agent) {
        _cleanup_free_ char *payload = make_text(2u * 1024u * 1024u, 9);
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;

        (void)signal(SIGPIPE, SIG_IGN); /* as teep-agentd's main() */
        F.store.stage_reader_gone = true;
        ans = update_with(payload, payload, &raw);
        expect_error(ans, TEEP_ERR_MANIFEST_PROCESSING_FAILED, "streaming the payload to the installer");
        cr_assert_eq(F.store.n, 0);
        cr_assert_eq(F.store.installs, 0);
}
