/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-agent-seeds.c: write seed inputs for the agent harnesses (run by hand; the corpus is kept in the tree)
 *
 *   fuzz-agent-seeds SIGNED_DIR UNSIGNED_DIR [STATE_DIR]
 *
 * SIGNED_DIR (corpus/agent): CBOR sequences of TAM messages signed with the harness's fixed TAM
 * key, whose envelopes are signed with its fixed TC signer; UNSIGNED_DIR (corpus/agent-resign):
 * the same exchanges as unsigned TEEP messages, which the harness signs itself; STATE_DIR
 * (corpus/state): the agent's state file after each signed exchange.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-agent.h"
#include "targets.h"
#include "teep-protocol.h"

#define CHECK(x)                                                                                       \
        do {                                                                                           \
                if ((x) < 0) {                                                                         \
                        fprintf(stderr, "fuzz-agent-seeds: %s failed\n", #x);                          \
                        exit(1);                                                                       \
                }                                                                                      \
        } while (0)

typedef struct Seq {
        size_t n;
        uint8_t *msg[4];
        size_t len[4];
} Seq;

static void put(Seq *s, uint8_t *msg, size_t len) {
        s->msg[s->n] = msg;
        s->len[s->n++] = len;
}

static void write_seq(const char *dir, const char *name, const Seq *s, bool sign) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        if (!f) {
                fprintf(stderr, "fuzz-agent-seeds: %s: %m\n", path);
                exit(1);
        }
        for (size_t i = 0; i < s->n; i++) {
                uint8_t *out = NULL;
                size_t len = 0;
                if (sign) {
                        CHECK(fuzz_agent_sign(s->msg[i], s->len[i], &out, &len));
                        fwrite(out, 1, len, f);
                        free(out);
                } else
                        fwrite(s->msg[i], 1, s->len[i], f);
        }
        if (fclose(f) != 0)
                exit(1);
}

static const char *state_dir;

/* Run the signed sequence through the harness and keep the agent's state file it leads to. */
static void write_state(const char *signed_dir, const char *name) {
        char path[4096], *text = NULL;
        uint8_t *data;
        size_t len;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", signed_dir, name);
        f = fopen(path, "re");
        if (!f)
                exit(1);
        data = malloc(1 << 20);
        len = fread(data, 1, 1 << 20, f);
        fclose(f);
        fuzz_target_agent(data, len);
        free(data);
        CHECK(fuzz_agent_state_text(&text, &len));
        snprintf(path, sizeof(path), "%s/%s", state_dir, name);
        f = fopen(path, "we");
        if (!f)
                exit(1);
        fwrite(text, 1, len, f);
        fclose(f);
        free(text);
}

static void emit(const char *signed_dir, const char *unsigned_dir, const char *name, Seq *s) {
        write_seq(signed_dir, name, s, true);
        write_seq(unsigned_dir, name, s, false);
        if (state_dir)
                write_state(signed_dir, name);
        for (size_t i = 0; i < s->n; i++)
                free(s->msg[i]);
        memset(s, 0, sizeof(*s));
}

/* QueryRequest(token) + Update(token, envelopes, unneeded) */
static void exchange(Seq *s, const char *token, uint64_t bits, const TeepBuf *envs, size_t n, const char *const *unneeded) {
        uint8_t *m;
        size_t len;
        size_t tlen = token ? strlen(token) : 0;

        CHECK(fuzz_agent_query_request((const uint8_t *)token, tlen, bits, &m, &len));
        put(s, m, len);
        CHECK(fuzz_agent_update((const uint8_t *)token, tlen, envs, n, unneeded, &m, &len));
        put(s, m, len);
}

int main(int argc, char **argv) {
        const char *sd, *ud;
        uint8_t *e1, *e2, *e3, *e4, *e5, *e6;
        size_t l1, l2, l3, l4, l5, l6;
        Seq s = {};
        uint8_t *m;
        size_t len;

        if (argc != 3 && argc != 4) {
                fprintf(stderr, "usage: fuzz-agent-seeds SIGNED_DIR UNSIGNED_DIR [STATE_DIR]\n");
                return 64;
        }
        state_dir = argc > 3 ? argv[3] : NULL;
        sd = argv[1];
        ud = argv[2];

        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT2, 1, "a new TC", NULL, false, &e1, &l1));
        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 2, "the baseline TC, updated", NULL, false, &e2, &l2));
        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 3, NULL, NULL, true, &e3, &l3));
        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT2, 1, FUZZ_AGENT_URI_PAYLOAD, FUZZ_AGENT_PAYLOAD_URI, false, &e4, &l4));
        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 0, "a rollback", NULL, false, &e5, &l5));
        CHECK(fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 1, "same sequence number, another image", NULL, false, &e6, &l6));

        /* QueryRequests alone */
        CHECK(fuzz_agent_query_request((const uint8_t *)"token-query-only", 16, TEEP_DATA_TRUSTED_COMPONENTS, &m, &len));
        put(&s, m, len);
        emit(sd, ud, "query-tcs", &s);
        CHECK(fuzz_agent_query_request((const uint8_t *)"token-attestation", 17,
                                       TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS | TEEP_DATA_EXTENSIONS |
                                               TEEP_DATA_SUIT_REPORTS,
                                       &m, &len));
        put(&s, m, len);
        emit(sd, ud, "query-attestation", &s);
        CHECK(fuzz_agent_query_request(NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, &m, &len));
        put(&s, m, len);
        emit(sd, ud, "query-tokenless", &s);

        /* full exchanges */
        exchange(&s, "token-install-new", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e1, l1), 1, NULL);
        emit(sd, ud, "install-new", &s);
        exchange(&s, "token-upgrade-baseline", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e2, l2), 1, NULL);
        emit(sd, ud, "upgrade", &s);
        exchange(&s, "token-unlink-baseline", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e3, l3), 1, NULL);
        emit(sd, ud, "unlink", &s);
        exchange(&s, "token-uri-payload", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e4, l4), 1, NULL);
        emit(sd, ud, "uri-payload", &s);
        exchange(&s, "token-rollback!!", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e5, l5), 1, NULL);
        emit(sd, ud, "rollback", &s);
        exchange(&s, "token-same-seq!!", TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e6, l6), 1, NULL);
        emit(sd, ud, "same-seq-other-image", &s);
        exchange(&s, "token-unneeded!!", TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0,
                 (const char *const[]){ FUZZ_AGENT_COMPONENT, NULL });
        emit(sd, ud, "unneeded", &s);
        {
                TeepBuf both[2] = { TEEP_BUF(e1, l1), TEEP_BUF(e2, l2) };
                exchange(&s, "token-two-manifests", TEEP_DATA_ATTESTATION | TEEP_DATA_TRUSTED_COMPONENTS, both, 2, NULL);
                emit(sd, ud, "two-manifests", &s);
        }
        exchange(&s, NULL, TEEP_DATA_TRUSTED_COMPONENTS, &TEEP_BUF(e1, l1), 1, NULL);
        emit(sd, ud, "tokenless-exchange", &s);

        /* an Update nobody asked for, and one replaying the baseline's token */
        CHECK(fuzz_agent_update((const uint8_t *)"token-not-issued", 16, &TEEP_BUF(e1, l1), 1, NULL, &m, &len));
        put(&s, m, len);
        emit(sd, ud, "update-unsolicited", &s);
        CHECK(fuzz_agent_update(fuzz_agent_baseline_token, 16, &TEEP_BUF(e1, l1), 1, NULL, &m, &len));
        put(&s, m, len);
        emit(sd, ud, "update-replayed", &s);

        free(e1);
        free(e2);
        free(e3);
        free(e4);
        free(e5);
        free(e6);
        fuzz_targets_agent_cleanup();
        return 0;
}
