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
/* The components requested and not installed, once each, in request order: views into s, in a
 * NULL-terminated array (free() it). O(requests + TCs). */
int agent_state_wanted(const AgentState *s, const char ***ret, size_t *ret_n);
ssize_t agent_state_find_tc_by_manifest_id(const AgentState *s, const char *manifest_id);
ssize_t agent_state_find_request(const AgentState *s, const char *requester, const char *component);
bool agent_state_is_requested(const AgentState *s, const char *component);
ssize_t agent_state_find_unneeded(const AgentState *s, const char *component);
uint64_t agent_state_seen_seq(const AgentState *s, const char *component, bool *ret_found);

int agent_state_add_tc(AgentState *s, const AgentTc *tc);       /* replaces one with the same component */
void agent_state_remove_tc(AgentState *s, const char *component);
int agent_state_add_request(AgentState *s, const char *requester, const char *component);
/* The same without the lookup: for a caller that knows it is not there (returns 1 or -ENOMEM). */
int agent_state_append_request(AgentState *s, const char *requester, const char *component);
void agent_state_remove_request(AgentState *s, size_t i);
int agent_state_add_unneeded(AgentState *s, const char *component);
void agent_state_remove_unneeded(AgentState *s, const char *component);
int agent_state_note_seen(AgentState *s, const char *component, uint64_t seq);
int agent_state_add_journal(AgentState *s, AgentJournalOp op, const AgentTc *tc);

/* The state directory (opened, and made 0700 if missing, on first use): a->state_fd. 0 or -errno. */
int agent_open_state_dir(Agent *a);

/* ---- files (fsutil.c) ---- */

/* Write data to dirfd/name atomically: temp file, fsync, rename, fsync the directory. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Read dirfd/name (at most max bytes). -ENOENT, -EFBIG, -errno. */
int read_file_at(int dirfd, const char *name, size_t max, uint8_t **ret, size_t *ret_len);
/* Open (creating with mode if missing) a directory and make sure it has exactly mode. */
int open_private_dir_at(int dirfd, const char *path, mode_t mode);
/* A sealed memfd holding data (for Installer1.Install). */
int memfd_from_data(const char *name, const void *data, size_t len);
/* Seal a filled memfd against any change and rewind it for its reader: 0 or -errno. */
int memfd_seal_and_rewind(int fd);
/* Like write_file_atomic_at() but without the directory's fsync, and without the file's unless
 * sync_file: the caller makes the rest durable (an fsync of the directory once for several
 * files, or syncfs) before anything durable refers to it. */
int write_file_nodirsync_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync_file);
/* 1 and the size when fd is a memfd sealed against write, grow and shrink; 0 when not; -errno. */
int sealed_memfd_size(int fd, uint64_t *ret_size);
/* SHA-256 of the first len bytes of fd, read in chunks with pread (the offset stays). */
int fd_sha256(int fd, uint64_t len, uint8_t ret[32]);
/* 1 when the first len bytes of fd are data (of data_len bytes), 0 when not, -errno. */
int fd_equals(int fd, uint64_t len, const uint8_t *data, size_t data_len);

/* ---- payloads streamed through a pipe (stream.c) ---- */

/* Every wait for a stream: at most stall_usec without progress, and nothing after deadline_usec
 * (CLOCK_MONOTONIC). A broker that stops sending, or sends a byte a minute, is cut off. */
typedef struct StreamLimits {
        uint64_t stall_usec;
        uint64_t deadline_usec;
} StreamLimits;

void stream_limits_init(StreamLimits *l, uint64_t stall_usec, uint64_t total_usec);
/* Read len bytes, fewer only at the end of the stream: the count, or -ETIMEDOUT, -errno. */
ssize_t stream_read(int fd, void *buf, size_t len, const StreamLimits *l);
/* Read the stream into memory, at most cap bytes: *ret_ended tells whether it ended (false:
 * cap bytes came and there may be more). */
int stream_read_head(int fd, size_t cap, const StreamLimits *l, uint8_t **ret, size_t *ret_len, bool *ret_ended);
/* head (already read from in_fd), then the rest of in_fd up to its end, into out_fd, hashed on
 * the way (unless ret_sha256 is NULL). -EFBIG as soon as more than max bytes came; -ETIMEDOUT;
 * -EPIPE when out_fd's reader left; -errno. */
int stream_pump(int in_fd, int out_fd, const uint8_t *head, size_t head_len, uint64_t max, const StreamLimits *l,
                uint64_t *ret_len, uint8_t ret_sha256[32]);
/* The same into a sealed memfd of our own, rewound. */
int stream_to_sealed_memfd(int in_fd, const uint8_t *head, size_t head_len, uint64_t max, const StreamLimits *l,
                           int *ret_fd, uint64_t *ret_len, uint8_t ret_sha256[32]);

/* ---- the agent ---- */

#define AGENT_MAX_EXCHANGES 64
/* payloads one Update may stage in the store at once (the installer's own limit is 16) */
#define AGENT_MAX_STAGED 16
/* a streamed payload up to this size is read into memory; a larger one is staged */
#define AGENT_STREAM_INLINE_MAX (256u * 1024u)
#define AGENT_EXCHANGE_LIFETIME_USEC (UINT64_C(6) * 3600 * 1000000) /* the TAM may take hours */
#define AGENT_UNAUTH_ERRORS_PER_MINUTE 10
#define AGENT_MAX_REQUESTS 4096
#define AGENT_MAX_REQUESTS_PER_REQUESTER 1024 /* so that one user cannot take every slot (docs/limits.md) */
#define AGENT_SYNCFS_COPIES 8 /* an Update with more manifest copies syncs them with one syncfs() (update.c) */
#define AGENT_MAX_TCS 4096 /* installed TCs: an Update that would exceed it fails (docs/limits.md) */
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

typedef struct AgentTamHints AgentTamHints; /* tam-policy.c */
typedef struct AgentCaFile AgentCaFile;     /* x5chain.c */

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
        void (*changed_cb)(Agent *a, const AgentChange *change, void *userdata);
        void *changed_userdata;

        int state_fd; /* the state directory */
        int manifests_fd; /* its manifests/, opened (and made) by the first commit that writes a copy */
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
        /* the state file still carries the journal of an Update that completed (commit()) */
        bool state_file_has_journal;
        /* agent_set_deferred_request_saves(): requests changed in memory, not yet written */
        bool defer_request_saves;
        bool state_dirty;
        /* payloads/ (rollback copies of images older versions kept) emptied: once per start */
        bool old_payloads_gone;
        bool manifests_swept; /* manifests/ swept whole once since the start (update.c) */
        /* payloads staged in the store during the Update being processed (update.c), each
         * forgotten by one Installer1.Unstage when it ends, installed or not */
        char stage_ids[AGENT_MAX_STAGED][33];
        size_t n_stage_ids;
        /* the bytes of the state file as last written (agent_save_state()) */
        char *state_text;
        size_t state_text_len;

        AgentExchange exchanges[AGENT_MAX_EXCHANGES];
        size_t policy_round;

        uint64_t unauth_window_usec;
        unsigned unauth_count;

        /* The last TEEP Error built for a TAM (agent_build_error()), so the daemon can tell the
         * broker why (the Refused signal): refusal_errno 0 = none since it was cleared.
         * refusal_hint: the errno behind the next Error, set by callers that know it. */
        int refusal_errno;
        int refusal_hint;
        char refusal_msg[256];

        /* CA certificates from TrustAnchorDirectory for x5chain (x5chain.c) */
        AgentCaFile *cas;
        size_t n_cas;

        /* the administrator's trust-anchor list (trust-anchors.c) */
        TeepKey *admin_key;
        bool trust_list_active;
        uint64_t trust_list_seq;
        uint8_t trust_list_digest[32];

        /* several TAMs (tam-policy.c) */
        AgentTamHints *tam_hints;
        size_t n_tam_hints;
        uint64_t *tam_checked_usec; /* per [TAM]: the last policy check, CLOCK_REALTIME µs (0 = never) */
        bool tam_checks_dirty;      /* changed since agent_save_schedule() */

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
void agent_notify_change(Agent *a, const AgentChange *change);

/* tam-policy.c: several TAMs */
void agent_tam_policy_free(Agent *a);
/* Remember a pending component's own TAM list (RequestTA's tam_uris; untrusted ones dropped). */
int agent_tam_note_hints(Agent *a, const char *component, char *const *hints);
/* The TAM to try after failed_uri: along the list of a pending component that names it, then
 * the other configured TAMs in order. NULL (errno untouched) when there is none. */
char *agent_tam_next_after(const Agent *a, const char *failed_uri);
/* Whether a policy check should contact TAM index tam now (PolicyCheckInterval= per [TAM]);
 * records the check when it returns true. */
bool agent_tam_policy_due(Agent *a, size_t tam);
/* The schedule in the state directory (AGENT_TAM_CHECKS_FILE): read back at start (a file that
 * does not parse is logged and skipped, line by line), written by agent_save_schedule(). */
#define AGENT_TAM_CHECKS_FILE "policy-checks"
void agent_tam_checks_load(Agent *a);
/* Whether a pending component has its own TAM list (memory only: the agent does not rest). */
bool agent_tam_hints_live(const Agent *a);
/* Whether TAM tam/tam_uri may replace or remove component: only the TAM that installed it,
 * unless ManageAnyComponent=yes or that TAM is no longer configured. */
bool agent_tam_may_manage(const Agent *a, size_t tam, const char *tam_uri, const char *component);

/* x5chain.c: TAM certificate chains */
int agent_x5chain_load(Agent *a);
void agent_x5chain_free(Agent *a);
/* The leaf key of the x5chain in h, verified up to a CA certificate TAM tam may use, with the
 * CRLs in CRLDirectory=. Errors of teep_x5chain_verify(). */
int agent_x5chain_leaf(Agent *a, size_t tam, const TeepCoseHeaders *h, TeepKey **ret, TeepError *err);

/* trust-anchors.c: the TAM trust anchors as the administrator's signed list names them */
#define AGENT_TRUST_LIST_COMPONENT "teepkit/trust-anchors"
/* Read AdminKey= and, when the state directory holds a list, verify it and make it the anchor
 * set (replacing TrustAnchorDirectory's). A list that no longer verifies fails the start. */
int agent_trust_list_load(Agent *a);
void agent_trust_list_free(Agent *a);
/* Whether component is the trust-anchor list's (never a Trusted Component). */
bool agent_trust_list_reserved(const char *component);
/* An Update carrying a trust-anchor list signed by AdminKey=: install it (or refuse) and answer.
 * 0: no list in this Update (the caller goes on); 1: answered in *ret; < 0: -errno. */
int agent_trust_list_update(Agent *a, size_t tam, const char *tam_uri, const TeepMessage *m, int64_t alg,
                            const TeepBuf *token, uint8_t **ret, size_t *ret_len);

/* pkcs11.c: the device key named by KeyURI= (the private half stays in the token) */
int agent_load_pkcs11_key(Agent *a, TeepKey **ret);

/* keys.c */
int agent_load_trust(Agent *a);
int agent_load_identity(Agent *a);
/* The keys a message from TAM index tam may be signed with (SIZE_MAX: every anchor). */
size_t agent_tam_keys(const Agent *a, size_t tam, TeepKey **ret, size_t max);
/* The TAM index of uri, SIZE_MAX when not configured. */
size_t agent_find_tam(const Agent *a, const char *uri);

/* Commit a state: write it, then make it current. */
int agent_save_state(Agent *a, const AgentState *s);
/* Write these exact bytes as the state file (takes text; agent_save_state() serializes first).
 * An undone Update writes back the file it found, resolved journal and all, so that a refused
 * Update changes no byte. */
int agent_write_state_text(Agent *a, char *text, size_t len, bool has_journal);

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
