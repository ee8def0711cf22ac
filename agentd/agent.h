/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.h: the TEEP Agent core — keys, trust, message processing, SUIT updates, bookkeeping */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-cose.h"

/*
 * The core is pure logic over a state directory: no sd-bus, no event loop. The daemon
 * (agentd.c) wraps it in the org.teepkit.Agent1 bus object and gives it two small
 * interfaces to the outside world, which the unit tests fake in-process:
 *
 *   AgentInstaller: the TC store (org.teepkit.Installer1 in the daemon)
 *   AgentFetcher:   URI payload downloads through the broker (org.teepkit.PayloadFetcher1)
 *
 * Every function returns >= 0 or a negative errno (docs/errors.md vocabulary).
 */

typedef struct Agent Agent;

/* One entry of the TC store as the installer lists it. */
typedef struct AgentStoreEntry {
        char *component; /* textual name (docs/design.md) */
        uint64_t size;
        uint8_t sha256[32];
} AgentStoreEntry;

void agent_store_entries_free(AgentStoreEntry *e, size_t n);

typedef struct AgentInstaller {
        /* Install size bytes read from fd (at offset 0) under component; the installer re-checks
         * sha256 and size. Returns 0 or -errno. */
        int (*install)(void *userdata, const char *component, int fd, uint64_t size, const uint8_t sha256[32]);
        /* Remove component. -ENOENT when it is not installed. */
        int (*remove)(void *userdata, const char *component);
        /* List the store: *ret (free with agent_store_entries_free()) and *ret_n. */
        int (*list)(void *userdata, AgentStoreEntry **ret, size_t *ret_n);
        /* Undo the last install or remove of component: the image it replaced or took away comes
         * back, or the component it added goes. 0 also when there is nothing to undo. */
        int (*restore)(void *userdata, const char *component);
        /* Drop the undo records of components (n == 0: of all). wait: false to send the call and
         * not wait for its answer (a failure is only logged). Returns 0 or -errno. */
        int (*discard)(void *userdata, const char *const *components, size_t n, bool wait);
        /* Streamed payloads (all three NULL in an installer that cannot stage: the agent then
         * keeps a streamed payload in a sealed memfd of its own). A staged payload waits in the
         * store, out of sight, until install() is given the descriptor stage_close() returned,
         * which commits it without a copy.
         * stage_open: begin staging at most max bytes under id (32 lowercase hex characters);
         *   *ret_fd is where the agent writes them, closing it at the end.
         * stage_close: after that close: a read-only descriptor of what the installer staged,
         *   its size and SHA-256 as the installer counted them.
         * unstage: forget ids (consumed or not), without waiting for the answer. */
        int (*stage_open)(void *userdata, const char *id, uint64_t max, int *ret_fd);
        int (*stage_close)(void *userdata, const char *id, int *ret_fd, uint64_t *ret_size, uint8_t ret_sha256[32]);
        int (*unstage)(void *userdata, const char *const *ids, size_t n);
} AgentInstaller;

typedef struct AgentFetcher {
        /* Fetch uri, at most max bytes. Returns 0 with an fd the caller owns (read from offset 0)
         * and the size the fetcher claims (the agent verifies it), or -errno. */
        int (*fetch)(void *userdata, const char *uri, uint64_t max, int *ret_fd, uint64_t *ret_size);
} AgentFetcher;

/* One [TAM] section. */
typedef struct AgentTamConfig {
        char *uri;
        bool has_kid;         /* Kid=HEX given: put these bytes as kid into messages to this TAM */
        uint8_t *kid;         /* (Kid=thumbprint, the default: the RFC 9679 thumbprint) */
        size_t kid_len;
        char **trust_anchors; /* file names in TrustAnchorDirectory (NULL-terminated); NULL = all */
        int64_t suite;        /* Suite=: the COSE alg to sign messages to this TAM with; 0 = as it asks */
        uint64_t policy_check_interval_usec; /* PolicyCheckInterval=: 0 = every round */
        bool manage_any;      /* ManageAnyComponent=yes: may replace/remove TCs other TAMs installed */
} AgentTamConfig;

#define AGENT_MAX_IDS 8

typedef struct AgentConfig {
        char *state_dir;
        char *trust_anchor_dir;
        char *signer_dir;
        TeepKeyType key_type;
        char *broker_user;
        size_t n_vendor_ids;
        uint8_t vendor_ids[AGENT_MAX_IDS][16];
        size_t n_class_ids;
        uint8_t class_ids[AGENT_MAX_IDS][16];
        char *oemid;     /* as configured (hex OUI, hex 16 bytes or decimal PEN); NULL = DMI */
        char *hwmodel;   /* NULL = DMI */
        char *hwversion; /* NULL = DMI */
        uint64_t max_payload_size;
        uint64_t payload_stall_usec; /* a streamed payload that sends nothing this long is refused */
        uint64_t payload_timeout_usec; /* and one that takes longer than this in all */
        uint64_t idle_timeout_usec; /* teep-agentd rests after this long without calls; 0 = never */
        char *key_uri;        /* KeyURI=pkcs11:...: the device key stays in a token; NULL = the key file */
        char *pkcs11_module;  /* PKCS11Module=: load only this module; NULL = p11-kit's configuration */
        char *pin_file;       /* PinFile=: the token's user PIN */
        char *crl_dir;        /* CRLDirectory=: CRLs for x5chain certificates */
        char *admin_key;      /* AdminKey=: the device administrator's key (trust-anchor lists); NULL = none */
        size_t n_tams;
        AgentTamConfig *tams;
} AgentConfig;

#define AGENT_DEFAULT_MAX_PAYLOAD (UINT64_C(64) * 1024 * 1024)
#define AGENT_DEFAULT_PAYLOAD_STALL_USEC (UINT64_C(30) * 1000000)
#define AGENT_DEFAULT_PAYLOAD_TIMEOUT_USEC (UINT64_C(600) * 1000000)
/* twice the broker's default TimeoutSec=: a TAM's Update answering our QueryResponse finds
 * the instance that holds the exchange */
#define AGENT_DEFAULT_IDLE_TIMEOUT_USEC (UINT64_C(120) * 1000000)

void agent_config_init(AgentConfig *c);
void agent_config_done(AgentConfig *c);

struct TeepConf;
/*
 * Fill c from a loaded teepkit.conf ([Agent] and [TAM] sections). Paths default to
 * TEEP_SYSCONFDIR/TEEP_STATEDIR. errbuf gets "file:line: what" on failure (-EINVAL).
 * Unknown keys in [Agent]/[TAM] are logged as warnings.
 */
int agent_config_load(AgentConfig *c, const struct TeepConf *conf, char *errbuf, size_t errbuf_size);

/* What changed, for PropertiesChanged. */
enum {
        AGENT_CHANGED_INSTALLED = 1 << 0,
        AGENT_CHANGED_REQUESTS = 1 << 1,
        AGENT_CHANGED_PENDING = 1 << 2,
};

/*
 * Create an agent over config (copied). Does no I/O: call agent_start() next.
 * installer/fetcher may be NULL (every install or fetch then fails with -ENOTCONN).
 */
int agent_new(Agent **ret, const AgentConfig *config, const AgentInstaller *installer, void *installer_userdata,
              const AgentFetcher *fetcher, void *fetcher_userdata);
Agent *agent_free(Agent *a);
static inline void agent_freep(Agent **a) {
        if (*a)
                *a = agent_free(*a);
}

/* What one change did. The request lists name what was recorded or dropped by it (valid during
 * the callback only), so that a listener can follow Requests without reading it again. */
typedef struct AgentChange {
        unsigned what; /* AGENT_CHANGED_* */
        const struct AgentRequest *added;
        size_t n_added;
        const struct AgentRequest *removed;
        size_t n_removed;
} AgentChange;

void agent_set_changed_callback(Agent *a, void (*cb)(Agent *a, const AgentChange *change, void *userdata),
                                void *userdata);

/*
 * Load (or create) the device key in the state directory (directory 0700, key file 0600),
 * the trust anchors and signer keys, the state file, and reconcile the state with the store
 * (agent_reconcile()). Logs what it did. Returns 0 or -errno.
 */
int agent_start(Agent *a);

/*
 * Take the state directory for this process alone (flock; held until the process exits):
 * open the directory (creating it 0700) and wait up to timeout_ms for an instance that is
 * on its way out. Before agent_start(), by the daemon only (--print-key reads the key beside
 * a running daemon). 0, -EWOULDBLOCK when another instance keeps it, -errno.
 */
int agent_lock_state(Agent *a, unsigned timeout_ms);

/* Why the agent may not rest (exit until bus activation starts it again) now: a static
 * string, or NULL when a new instance would lose nothing this one holds in memory. */
const char *agent_busy_reason(const Agent *a);

/* Write what the agent keeps only in memory and a new instance reads back: the per-TAM
 * policy-check schedule. A no-op when nothing changed. 0 or -errno. */
int agent_save_schedule(Agent *a);

/* Only the key part of agent_start(): for --print-key. */
int agent_load_device_key(Agent *a);

/*
 * Bring the state in line with the store after a crash: resolve interrupted installs and
 * removals recorded in the state's journal by what Installer1.List shows, and drop TCs the
 * store no longer holds. -ENOTCONN etc. when the store cannot be listed (the journal is kept
 * and resolved on a later call).
 */
int agent_reconcile(Agent *a);

/*
 * After an Update, the state file keeps its journal until the next write (the journal and the
 * store say all the final state would; commit() in update.c). Write the state from memory now
 * if that is so: at a clean stop, and in tests that compare state files byte by byte.
 */
int agent_flush_state(Agent *a);

/*
 * With on, RequestTA and UnrequestTA change the state in memory only (in place: no copy of the
 * state per call) and leave the write to the caller's agent_save_requests(), which teep-agentd
 * runs at most AGENT_REQUEST_SAVE_DELAY_USEC after it has answered (Q25). Any earlier write —
 * the journal of an Update, for one — carries the requests too, and then there is nothing left
 * to write. Off by default: every call returns with its state on disk (it works on a copy,
 * which replaces the state once written).
 */
void agent_set_deferred_request_saves(Agent *a, bool on);

/* Write the requests changed in memory only (deferred saves), if any; nothing else. */
int agent_save_requests(Agent *a);

/* Whether requests changed in memory only wait for a write (deferred saves). */
bool agent_has_unsaved_requests(const Agent *a);

/* The longest a deferred request waits for its write when no Update's journal carries it first:
 * long enough for a session with a nearby TAM to reach its Update, short against a person's
 * sense of "I asked, then the power went". */
#define AGENT_REQUEST_SAVE_DELAY_USEC (UINT64_C(1000) * 1000)
/* after a failed write the next try waits twice as long as the last, at most this */
#define AGENT_REQUEST_SAVE_RETRY_MAX_USEC (UINT64_C(60) * 1000 * 1000)

/* ---- the Broker→Agent calls (org.teepkit.Agent1) ---- */

/*
 * requester depends on component. *ret_uri is a TAM URI to contact (malloc'd) or NULL when the
 * TC is installed already (the request is recorded either way). tam_uris: the caller's hints
 * (NULL-terminated, may be NULL). Errors: -EINVAL (bad component or requester name),
 * -EADDRNOTAVAIL (not installed and no trusted TAM to contact).
 */
int agent_request_ta(Agent *a, const char *requester, const char *component, char *const *tam_uris, char **ret_uri);

/* One RequestTA of a batch (agent_request_ta_many). */
typedef struct AgentRequestCall {
        const char *requester;
        const char *component;
        char *const *tam_uris;
} AgentRequestCall;

/*
 * n RequestTA calls with one state save (group commit: a burst of requests costs one durable
 * write, not one each). ret_r[i] is what agent_request_ta() would have returned for calls[i],
 * ret_uri[i] its TAM URI (malloc'd, or NULL). Returns -errno when the state could not be saved:
 * then every call failed with it and nothing changed.
 */
int agent_request_ta_many(Agent *a, size_t n, const AgentRequestCall *calls, int *ret_r, char **ret_uri);

/*
 * requester no longer depends on component. *ret_uri NULL while another requester still needs
 * it (or it is not installed), else the TAM to tell. -ENOENT: no such request.
 */
int agent_unrequest_ta(Agent *a, const char *requester, const char *component, char **ret_uri);

/* The next configured TAM of this round (one per call), or NULL when the round is over. */
int agent_request_policy_check(Agent *a, char **ret_uri);

/*
 * One TEEP message from tam_uri. On success *ret (malloc'd) / *ret_len is the message to send
 * back (a QueryResponse, Success or a signed Error), or NULL/0 when the exchange is over.
 * Fails (-errno, nothing to send) only when no reply may be sent: an unknown TAM URI, or the
 * rate limit on answers to unauthenticated input.
 */
int agent_process_message(Agent *a, const char *tam_uri, TeepBuf in, uint8_t **ret, size_t *ret_len);
/* Why the last agent_process_message() answered with a TEEP Error: returns its errno (0: it did
 * not) and the Error's text in *ret_msg; clears it. */
int agent_take_refusal(Agent *a, const char **ret_msg);

/* The exchange with tam_uri failed. *ret_next: the next trusted TAM to try, or NULL. */
int agent_process_error(Agent *a, const char *tam_uri, const char *error, char **ret_next);

/* The device public key: PEM text, COSE_Key and the default kid (32-byte thumbprint). */
int agent_get_device_key(Agent *a, char **ret_pem, uint8_t **ret_cose, size_t *ret_cose_len, uint8_t ret_kid[32]);

/* ---- status, for the bus properties and the tests ---- */

typedef struct AgentTc {
        char *component;        /* textual name */
        uint64_t seq;           /* manifest sequence number */
        uint8_t sha256[32];     /* image digest */
        uint64_t size;
        uint8_t manifest_hash[32]; /* SHA-256 of the stored envelope: manifests/<hex>.suit */
        char *manifest_id;      /* the manifest-component-id's name, or NULL (then component) */
        char *tam_uri;          /* the TAM whose Update installed it */
} AgentTc;

typedef struct AgentRequest {
        char *component;
        char *requester;
} AgentRequest;

size_t agent_installed(const Agent *a, const AgentTc **ret);
size_t agent_requests(const Agent *a, const AgentRequest **ret);
/* Components requested but not installed, then those marked unneeded: a NULL-terminated array
 * of borrowed strings to free() (not the strings). */
int agent_pending(const Agent *a, const char ***ret);
/* The configured TAM URIs (borrowed). */
size_t agent_tam_uris(const Agent *a, const char *const **ret);
const AgentConfig *agent_config(const Agent *a);

/* The state file's path (for tests and log lines). */
const char *agent_state_path(const Agent *a);
