/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-internal.h: what the agent core's modules share (not for the daemon glue) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"
#include "teep-cbor.h"
#include "teep-cose.h"
#include "teep-errors.h"
#include "teep-eat.h"
#include "teep-message.h"

/* ---- persistent state (state.c) ---- */

typedef enum AgentJournalOp {
        AGENT_JOURNAL_INSTALL,
        AGENT_JOURNAL_REMOVE,
} AgentJournalOp;

/* An installer call that was about to be made: resolved against the store after a crash. */
typedef struct AgentJournal {
        AgentJournalOp op;
        AgentTc tc; /* INSTALL: the new TC; REMOVE: the TC being removed */
} AgentJournal;

/* The highest sequence number ever accepted for a component (kept after removal: anti-rollback). */
typedef struct AgentSeen {
        char *component;
        uint64_t seq;
} AgentSeen;

typedef struct AgentState {
        AgentTc *tcs;
        size_t n_tcs;
        AgentRequest *reqs;
        size_t n_reqs;
        char **unneeded; /* installed components no requester needs any more */
        size_t n_unneeded;
        AgentSeen *seen;
        size_t n_seen;
        AgentJournal *journal;
        size_t n_journal;
} AgentState;

void agent_tc_done(AgentTc *tc);
int agent_tc_copy(AgentTc *dst, const AgentTc *src);
void agent_state_done(AgentState *s);
int agent_state_copy(AgentState *dst, const AgentState *src);
/* Deterministic text form: the same state always gives the same bytes. */
int agent_state_serialize(const AgentState *s, char **ret, size_t *ret_len);
int agent_state_parse(const char *text, size_t len, AgentState *ret);

ssize_t agent_state_find_tc(const AgentState *s, const char *component);
ssize_t agent_state_find_tc_by_manifest_id(const AgentState *s, const char *manifest_id);
ssize_t agent_state_find_request(const AgentState *s, const char *requester, const char *component);
bool agent_state_is_requested(const AgentState *s, const char *component);
ssize_t agent_state_find_unneeded(const AgentState *s, const char *component);
uint64_t agent_state_seen_seq(const AgentState *s, const char *component, bool *ret_found);

int agent_state_add_tc(AgentState *s, const AgentTc *tc);       /* replaces one with the same component */
void agent_state_remove_tc(AgentState *s, const char *component);
int agent_state_add_request(AgentState *s, const char *requester, const char *component);
void agent_state_remove_request(AgentState *s, size_t i);
int agent_state_add_unneeded(AgentState *s, const char *component);
void agent_state_remove_unneeded(AgentState *s, const char *component);
int agent_state_note_seen(AgentState *s, const char *component, uint64_t seq);
int agent_state_add_journal(AgentState *s, AgentJournalOp op, const AgentTc *tc);

/* ---- files (fsutil.c) ---- */

/* Write data to dirfd/name atomically: temp file, fsync, rename, fsync the directory. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Read dirfd/name (at most max bytes). -ENOENT, -EFBIG, -errno. */
int read_file_at(int dirfd, const char *name, size_t max, uint8_t **ret, size_t *ret_len);
/* Open (creating with mode if missing) a directory and make sure it has exactly mode. */
int open_private_dir_at(int dirfd, const char *path, mode_t mode);
/* A sealed memfd holding data (for Installer1.Install). */
int memfd_from_data(const char *name, const void *data, size_t len);

/* ---- the agent ---- */

#define AGENT_MAX_EXCHANGES 64
#define AGENT_EXCHANGE_LIFETIME_USEC (UINT64_C(6) * 3600 * 1000000) /* the TAM may take hours */
#define AGENT_UNAUTH_ERRORS_PER_MINUTE 10
#define AGENT_MAX_REQUESTS 4096
#define AGENT_MAX_KEYS 64

/* A QueryResponse we sent: an Update must name its token (or, when the QueryRequest had none,
 * come tokenless from the same TAM), once. */
typedef struct AgentExchange {
        bool used;
        size_t tam;             /* index into tam list, or SIZE_MAX for an unconfigured URI */
        char *tam_uri;
        bool has_token;
        uint8_t token[TEEP_TOKEN_MAX];
        size_t token_len;
        int64_t alg;            /* the suite the agent selected (its signing alg) */
        uint64_t created_usec;
} AgentExchange;

typedef struct AgentKeyFile {
        char *name;
        TeepKey *key;
} AgentKeyFile;

struct Agent {
        AgentConfig cfg;
        const AgentInstaller *installer;
        void *installer_userdata;
        const AgentFetcher *fetcher;
        void *fetcher_userdata;
        void (*changed_cb)(Agent *a, unsigned what, void *userdata);
        void *changed_userdata;

        int state_fd; /* the state directory */
        char *state_path;
        TeepKey *device_key;
        uint8_t device_kid[32];

        AgentKeyFile *anchors;
        size_t n_anchors;
        TeepKey **signers;
        size_t n_signers;
        const char **tam_uris; /* NULL-terminated, borrowed from cfg */

        AgentState state;
        bool started;

        AgentExchange exchanges[AGENT_MAX_EXCHANGES];
        size_t policy_round;

        uint64_t unauth_window_usec;
        unsigned unauth_count;

        /* EAT identity, read once at start */
        uint8_t oemid[16];
        size_t oemid_len;
        int64_t oemid_pen;
        bool oemid_is_pen;
        char *hwmodel;
        char *hwversion;
};

uint64_t agent_now_usec(void);
void agent_notify(Agent *a, unsigned what);

/* keys.c */
int agent_load_trust(Agent *a);
int agent_load_identity(Agent *a);
/* The keys a message from TAM index tam may be signed with (SIZE_MAX: every anchor). */
size_t agent_tam_keys(const Agent *a, size_t tam, TeepKey **ret, size_t max);
/* The TAM index of uri, SIZE_MAX when not configured. */
size_t agent_find_tam(const Agent *a, const char *uri);

/* Commit a state: write it, then make it current. */
int agent_save_state(Agent *a, const AgentState *s);

/* message.c: sign and send helpers */
/* The kid for messages to TAM index tam. */
TeepBuf agent_kid_for(const Agent *a, size_t tam);
/* Encode m and sign it with the device key (alg 0 = default). */
int agent_sign_message(Agent *a, size_t tam, int64_t alg, const TeepMessage *m, uint8_t **ret, size_t *ret_len);
/* A signed TEEP Error. token may be NULL. msg is truncated to 128 bytes. */
int agent_build_error(Agent *a, size_t tam, int64_t alg, const TeepBuf *token, uint64_t code, const char *msg,
                      const TeepBuf *suit_reports, size_t n_suit_reports, uint8_t **ret, size_t *ret_len);

/* query.c */
/* attestation-payload-format of our evidence: an EAT in a CWT (COSE_Sign1) with the TEEP profile */
#define AGENT_ATTESTATION_FORMAT "application/eat+cwt; eat_profile=\"" TEEP_EAT_PROFILE_TEEP "\""

int agent_handle_query_request(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t tam_alg,
                               uint8_t **ret, size_t *ret_len);
/* The suites this agent supports (by its key), for Error 5. */
int agent_add_supported_suites(Agent *a, TeepMessage *m);

/* update.c */
int agent_handle_update(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t tam_alg,
                        uint8_t **ret, size_t *ret_len);

/* report.c: SUIT reports (draft-ietf-suit-report), unprotected (inside the signed TEEP message) */
enum {
        SUIT_REPORT_REASON_OK = 0,
        SUIT_REPORT_REASON_CBOR_PARSE = 1,
        SUIT_REPORT_REASON_COSE_UNSUPPORTED = 2,
        SUIT_REPORT_REASON_ALG_UNSUPPORTED = 3,
        SUIT_REPORT_REASON_UNAUTHORISED = 4,
        SUIT_REPORT_REASON_COMMAND_UNSUPPORTED = 5,
        SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED = 6,
        SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED = 7,
        SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED = 8,
        SUIT_REPORT_REASON_SEVERING_UNSUPPORTED = 9,
        SUIT_REPORT_REASON_CONDITION_FAILED = 10,
        SUIT_REPORT_REASON_OPERATION_FAILED = 11,
        SUIT_REPORT_REASON_INVOKE_PENDING = 12,
};

/* Keys of SUIT_Report / SUIT_Record (draft-ietf-suit-report-18). */
enum {
        SUIT_REPORT_NONCE = 2,
        SUIT_REPORT_RECORDS = 3,
        SUIT_REPORT_RESULT = 4,
        SUIT_REPORT_RESULT_CODE = 5,
        SUIT_REPORT_RESULT_RECORD = 6,
        SUIT_REPORT_RESULT_REASON = 7,
        SUIT_REPORT_REFERENCE = 99,
};

/* The manifest's section numbers used in a failure record besides the manifest keys. */
enum {
        AGENT_SECTION_ENVELOPE = 0,  /* the envelope itself (structure) */
        AGENT_SECTION_AUTH = 2,      /* the authentication wrapper (SUIT_Envelope key 2) */
};

typedef struct AgentSuitReport {
        const char *manifest_uri;     /* reference-uri or "" */
        uint8_t manifest_digest[32];
        bool has_digest;
        const TeepBuf *nonce;         /* the Update's token, or NULL */
        /* a record for the installed component (system-property-claims), when ok */
        TeepBuf component_id_raw;     /* encoded component id, or empty */
        bool has_image;
        uint8_t image_sha256[32];
        uint64_t image_size;
        /* failure */
        bool ok;
        int64_t result_code;          /* the negative errno */
        int64_t section;
        uint64_t offset;
        uint64_t component_index;
        int reason;
} AgentSuitReport;

int agent_suit_report_encode(const AgentSuitReport *r, uint8_t **ret, size_t *ret_len);
const char *agent_suit_reason_to_string(int reason);
