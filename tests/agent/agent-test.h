/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-test.h: an in-process TAM on libteep, a fake store and a fake fetcher for the agent core */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "teep-cose.h"
#include "teep-message.h"

#define FAKE_MAX 32

typedef struct FakeStore {
        size_t n;
        struct {
                char *component;
                uint8_t *data;
                size_t len;
                uint8_t sha[32];
        } e[FAKE_MAX];
        unsigned installs, removes, lists;
        unsigned fail_install_at; /* fail the Nth install call (1-based), 0: never */
        int list_error;           /* list fails with this errno when non-zero */
        /* undo records, as teep-installer keeps them: one per component, replaced by each
         * change, consumed by restore, dropped by discard */
        size_t n_undo;
        struct {
                char *component;
                bool had;      /* the change replaced or removed an image (else: it added one) */
                uint8_t *data; /* that image */
                size_t len;
                uint8_t sha[32];
        } undo[FAKE_MAX];
        unsigned restores, discards, discard_alls;
        /* staged payloads (Installer1.Stage): a memfd each, until installed or unstaged */
        bool no_stage;            /* (before fx_restart()) an installer that cannot stage: the agent keeps a memfd */
        bool stage_reader_gone;   /* stage_open gives a pipe nobody reads (an installer that died) */
        size_t n_staged;
        struct {
                char id[33];
                int fd;
        } staged[16];
        unsigned stage_opens, staged_installs, unstaged;
} FakeStore;

typedef struct FakeFetcher {
        size_t n;
        struct {
                char *uri;
                uint8_t *data;
                size_t len;
        } e[8];
        unsigned calls;
        bool seal; /* hand out sealed memfds (else a plain one, rewound) */
        /* hand out the read end of a pipe, written by a child process, as the broker does:
         * the whole payload, or only its first stall_at bytes (then the child waits, at most
         * 20 s, without closing) */
        bool pipe;
        size_t stall_at;
        pid_t child; /* the last writer, killed and reaped by fx_teardown() */
        uint64_t announce; /* the size a pipe's fetch claims (Content-Length); 0: none */
} FakeFetcher;

#define TEST_TAM_URI "http://tam.test/tam"
#define TEST_COMPONENT "TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta"
#define TEST_COMPONENT2 "TEEP-Device/SecureFS/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/ta"

extern const uint8_t test_vendor_id[16];
extern const uint8_t test_class_id[16];

typedef struct Fixture {
        char dir[256];
        char state_dir[320], anchors[320], signers[320];
        TeepKey *tam_key;    /* trusted TAM key (P-256) */
        TeepKey *signer_key; /* trusted TC signer (P-256) */
        TeepKey *other_key;  /* trusted by nobody */
        AgentConfig cfg;
        Agent *agent;
        FakeStore store;
        FakeFetcher fetcher;
        TeepKey *device_pub;
        unsigned changed;    /* AGENT_CHANGED_* seen */
        char deltas[4096];   /* the requests each change added ("+COMPONENT REQUESTER\n") or removed ("-…") */
} Fixture;

/* Temporary directories, keys, a config with one [TAM] and vendor/class ids; starts the agent. */
void fx_setup(Fixture *f, TeepKeyType device_type);
void fx_teardown(Fixture *f);
/* Free the agent and start a new one on the same directories and store. */
void fx_restart(Fixture *f);
/* Write a PEM public key file. */
void fx_write_pem(const char *path, const TeepKey *key);

/* The TAM side */
uint8_t *tam_sign(const TeepKey *key, int64_t alg, const TeepMessage *m, size_t *ret_len);
/* A QueryRequest offering ESP256 and Ed25519 (or suites[] when given, as [[18, alg]]). */
uint8_t *tam_query_request(const TeepKey *key, const uint8_t *token, size_t token_len, const uint8_t *challenge,
                           size_t challenge_len, uint64_t bits, const int64_t *suites, size_t n_suites, size_t *ret_len);
uint8_t *tam_update(const TeepKey *key, const uint8_t *token, size_t token_len, const TeepBuf *envelopes, size_t n,
                    const char *const *unneeded, size_t *ret_len);
/* A signed install envelope (App. E shape). uri NULL: integrated payload under "#tc". */
uint8_t *make_envelope(const TeepKey *signer, const char *component, uint64_t seq, const uint8_t *payload, size_t len,
                       const char *uri, const uint8_t *vendor, const uint8_t *class_id, size_t *ret_len);

/* Run one message through the agent; the reply must verify with the device key. Returns the
 * decoded reply (its views point into *ret_raw, which the caller frees). */
TeepMessage *fx_process(Fixture *f, const uint8_t *msg, size_t len, uint8_t **ret_raw);
/* QueryRequest (token, attestation+TCs) → QueryResponse; token[16] gets the token used. */
void fx_query(Fixture *f, uint8_t token[16]);
/* fx_query + an Update with these envelopes; returns the decoded answer. */
TeepMessage *fx_update(Fixture *f, const TeepBuf *envelopes, size_t n, const char *const *unneeded, uint8_t **ret_raw);
/* Install component at seq with payload through a full exchange; asserts Success. */
void fx_install(Fixture *f, const char *component, uint64_t seq, const char *payload);
/* An Update of TEST_COMPONENT (seq, p1) and TEST_COMPONENT2 (1, p2) whose second install the
 * fake installer fails (the agent then undoes the first); returns the decoded answer. */
TeepMessage *fx_update_second_install_fails(Fixture *f, uint64_t seq, const char *p1, const char *p2, uint8_t **ret_raw);

/* Snapshots for "nothing changed" checks (malloc'd strings). */
char *fx_state_file(const Fixture *f);
char *fx_store_snapshot(const Fixture *f);
bool fx_store_has(const Fixture *f, const char *component, const char *payload);

/* The first SUIT report's result reason (-1 when result is true), section; asserts shape. */
int suit_report_reason(TeepBuf report, int64_t *ret_section, bool *ret_has_nonce);

void expect_error(const TeepMessage *m, uint64_t code, const char *msg_part);
