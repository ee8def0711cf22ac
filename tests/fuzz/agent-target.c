/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-target.c: the agent's whole ProcessTeepMessage path in-process, with a fake store and fetcher */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-internal.h"
#include "fileio.h"
#include "fuzz-agent.h"
#include "log.h"
#include "macro.h"
#include "targets.h"
#include "teep-component.h"
#include "teep-suit.h"

/*
 * One Agent lives for the whole process (agent_start() reads keys from disk: far too slow per
 * input). Before every input it is put back to the same baseline: the state (one installed TC,
 * one pending request), the exchanges, the rate-limit window and the fake store. So an input
 * always does the same thing, whatever ran before it, and a crash reproduces from its file.
 *
 * The state directory is a scratch directory (on /dev/shm when there is one: the agent fsyncs
 * every commit); the blobs an input adds to manifests/ are removed now and then.
 *
 * The keys are fixed test keys from the shared vectors (libteep/keys), so the corpus keeps
 * valid signatures across runs: the TAM key (tam_es256), the TC signer (trust_anchor) and the
 * device key (teep_agent_es256).
 */

static const char tam_key_hex[] =
        "a5010220012158200e908aa8f066db1f084e0c3652c63952bd99f2a5bdb22f9e01367aad03aba68b22582077da1bd8"
        "ac4f0cb490ba210648bf79ab164d49ad3551d71d314b2749ee42d29a235820841aebb7b9ea6f0260be7355a24588b9"
        "77d23d2ac5bf2b6b2d8379432a1fea98";
static const char signer_key_hex[] =
        "a5010220012158208496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad2258203b1f2a4b"
        "6c098131c0a36dacd1d78bd381dcdfb09c052db33991db7338b4a8962358200296588d909418b339d150420a3612b5"
        "7fb4f631a69f224fae90cb4f3fe18973";
static const char device_key_hex[] =
        "a5010220012158205886cd61dd875862e5aaa820e7a15274c968a9bc96048ddcace32f50c3651ba32258209eed8125"
        "e932cd60c0ead3650d0a485cf726d378d1b016ed4298b2961e258f1b23582060fe6dd6d85d5740a5349b6f91267eea"
        "c5ba81b8cb53ee249e4b4eb102c476b3";

const uint8_t fuzz_agent_vendor_id[16] = { 0xc0, 0xdd, 0xd5, 0xf1, 0x52, 0x43, 0x56, 0x60,
                                           0x87, 0xdb, 0x4f, 0x5b, 0x0a, 0xa2, 0x6c, 0x2f };
const uint8_t fuzz_agent_class_id[16] = { 0xdb, 0x42, 0xf7, 0x09, 0x3d, 0x8c, 0x55, 0xba,
                                          0xa8, 0xc5, 0x26, 0x5f, 0xc5, 0x82, 0x0f, 0x4e };
const uint8_t fuzz_agent_baseline_token[16] = "fuzz-baseline-tk";

#define FAIL(...)                                                                                      \
        do {                                                                                           \
                fprintf(stderr, "fuzz-agent: " __VA_ARGS__);                                           \
                fputc('\n', stderr);                                                                   \
                abort();                                                                               \
        } while (0)

/* ---- the fake store: what Installer1 does, in memory, with its limits ---- */

#define STORE_MAX 64

typedef struct Entry {
        char *component;
        uint64_t size;
        uint8_t sha[32];
} Entry;

/* What Installer1 keeps to undo the last change of a component (Restore, Discard): whether
 * the component was there before, and what it was. */
typedef struct Undo {
        char *component;
        bool had;
        Entry was; /* when had (was.component unused) */
} Undo;

typedef struct Store {
        size_t n;
        Entry e[STORE_MAX];
        unsigned installs;
        size_t n_undo;
        Undo undo[STORE_MAX];
} Store;

static Store store, baseline_store;

static void store_clear(Store *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->e[i].component);
        for (size_t i = 0; i < s->n_undo; i++)
                free(s->undo[i].component);
        memset(s, 0, sizeof(*s));
}

static void store_copy(Store *dst, const Store *src) {
        store_clear(dst);
        for (size_t i = 0; i < src->n; i++) {
                dst->e[i] = src->e[i];
                dst->e[i].component = strdup(src->e[i].component);
                if (!dst->e[i].component)
                        FAIL("out of memory");
        }
        dst->n = src->n;
}

static ssize_t store_find(const Store *s, const char *component) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->e[i].component, component) == 0)
                        return (ssize_t)i;
        return -1;
}

static ssize_t undo_find(const Store *s, const char *component) {
        for (size_t i = 0; i < s->n_undo; i++)
                if (strcmp(s->undo[i].component, component) == 0)
                        return (ssize_t)i;
        return -1;
}

static void undo_drop(Store *s, size_t u) {
        free(s->undo[u].component);
        memmove(&s->undo[u], &s->undo[u + 1], (s->n_undo - u - 1) * sizeof(s->undo[0]));
        s->n_undo--;
}

/* Just before a change of component: its undo record becomes what the store holds now (a
 * newer change replaces an older record, as the installer's does). */
static int undo_record(Store *s, const char *component) {
        ssize_t u = undo_find(s, component), i = store_find(s, component);
        char *name;

        if (u >= 0)
                undo_drop(s, (size_t)u);
        if (s->n_undo >= STORE_MAX)
                return -ENOSPC;
        name = strdup(component);
        if (!name)
                return -ENOMEM;
        u = (ssize_t)s->n_undo++;
        s->undo[u] = (Undo){ .component = name, .had = i >= 0 };
        if (i >= 0) {
                s->undo[u].was = s->e[i];
                s->undo[u].was.component = NULL;
        }
        return 0;
}

static void store_drop(Store *s, size_t i) {
        free(s->e[i].component);
        memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(s->e[0]));
        s->n--;
}

static int fake_install(void *userdata, const char *component, int fd, uint64_t size, const uint8_t sha256[32]) {
        Store *s = userdata;
        uint8_t check[32], *data;
        ssize_t i, n;
        int r;

        s->installs++;
        /* the agent's own invariants: a valid name, a sealed payload of the announced size */
        {
                uint8_t *raw = NULL;
                size_t len;
                if (teep_suit_component_id_from_string(component, &raw, &len) < 0)
                        FAIL("install of an invalid component name \"%s\"", component);
                free(raw);
        }
        if ((fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) !=
            (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK))
                FAIL("payload for %s is not sealed", component);
        if (size > (UINT64_C(64) << 20))
                FAIL("payload for %s larger than MaxPayloadSize", component);
        data = malloc(size ? size : 1);
        if (!data)
                return -ENOMEM;
        n = pread(fd, data, size, 0);
        if (n != (ssize_t)size) {
                free(data);
                return -EIO;
        }
        teep_sha256(TEEP_BUF(data, size), check);
        /* a store that fails midway: the agent must undo what this Update already changed */
        if (size == strlen(FUZZ_AGENT_REFUSED_PAYLOAD) && memcmp(data, FUZZ_AGENT_REFUSED_PAYLOAD, size) == 0) {
                free(data);
                return -EIO;
        }
        free(data);
        if (memcmp(check, sha256, 32) != 0)
                return -EKEYREJECTED; /* the installer re-checks the digest; the agent must not get here */
        i = store_find(s, component);
        if (i < 0 && s->n >= STORE_MAX)
                return -ENOSPC;
        /* a refused install leaves no record; one that goes ahead first keeps what it replaces */
        r = undo_record(s, component);
        if (r < 0)
                return r;
        if (i < 0) {
                i = (ssize_t)s->n++;
                s->e[i].component = strdup(component);
                if (!s->e[i].component) {
                        s->n--;
                        return -ENOMEM;
                }
        }
        s->e[i].size = size;
        memcpy(s->e[i].sha, sha256, 32);
        return 0;
}

static int fake_remove(void *userdata, const char *component) {
        Store *s = userdata;
        ssize_t i = store_find(s, component);
        int r;

        if (i < 0)
                return -ENOENT;
        r = undo_record(s, component);
        if (r < 0)
                return r;
        store_drop(s, (size_t)i);
        return 0;
}

static int fake_list(void *userdata, AgentStoreEntry **ret, size_t *ret_n) {
        Store *s = userdata;
        AgentStoreEntry *e = calloc(s->n + 1, sizeof(*e));

        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++) {
                e[i].component = strdup(s->e[i].component);
                if (!e[i].component) {
                        agent_store_entries_free(e, i);
                        return -ENOMEM;
                }
                e[i].size = s->e[i].size;
                memcpy(e[i].sha256, s->e[i].sha, 32);
        }
        *ret = e;
        *ret_n = s->n;
        return 0;
}

/* Installer1.Restore: the component as it was before its last change (back, or gone); 0 also
 * when there is nothing to undo. */
static int fake_restore(void *userdata, const char *component) {
        Store *s = userdata;
        ssize_t u = undo_find(s, component), i;

        if (u < 0)
                return 0;
        i = store_find(s, component);
        if (s->undo[u].had) {
                if (i < 0) {
                        char *name = strdup(component);
                        if (!name)
                                return -ENOMEM; /* the record stays: a later Restore may still do it */
                        if (s->n >= STORE_MAX) {
                                free(name);
                                return -ENOSPC;
                        }
                        i = (ssize_t)s->n++;
                        s->e[i].component = name;
                }
                s->e[i].size = s->undo[u].was.size;
                memcpy(s->e[i].sha, s->undo[u].was.sha, 32);
        } else if (i >= 0)
                store_drop(s, (size_t)i);
        undo_drop(s, (size_t)u);
        return 0;
}

/* Installer1.Discard: drop the undo records of components (n == 0: all of them). */
static int fake_discard(void *userdata, const char *const *components, size_t n, bool wait) {
        Store *s = userdata;

        (void)wait; /* in-process: done before it returns either way */
        if (n == 0)
                while (s->n_undo > 0)
                        undo_drop(s, s->n_undo - 1);
        for (size_t k = 0; k < n; k++) {
                ssize_t u = undo_find(s, components[k]);
                if (u >= 0)
                        undo_drop(s, (size_t)u);
        }
        return 0;
}

static const AgentInstaller fake_installer = { fake_install, fake_remove, fake_list, fake_restore, fake_discard };

/* The fetcher serves one URI (FUZZ_AGENT_PAYLOAD_URI); everything else is unreachable. */
static int fake_fetch(void *userdata, const char *uri, uint64_t max, int *ret_fd, uint64_t *ret_size) {
        const char *payload = FUZZ_AGENT_URI_PAYLOAD;
        size_t len = strlen(payload);
        int fd;

        if (strcmp(uri, FUZZ_AGENT_PAYLOAD_URI) != 0)
                return -EHOSTUNREACH;
        if (len > max)
                return -EFBIG;
        fd = memfd_create("fuzz-fetched", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, payload, len) != (ssize_t)len) {
                close(fd);
                return -EIO;
        }
        *ret_fd = fd;
        *ret_size = len;
        return 0;
}

static const AgentFetcher fake_fetcher = { fake_fetch };

/* ---- keys ---- */

static TeepKey *tam_key, *signer_key;

static TeepKey *key_from_hex(const char *hex) {
        TeepKey *k = NULL;
        if (teep_key_from_any(&k, (const uint8_t *)hex, strlen(hex), NULL) < 0 || !teep_key_has_private(k))
                FAIL("cannot load a fixed key");
        return k;
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
                FAIL("cannot write %s: %m", path);
}

static void write_pem(const char *path, const TeepKey *key, bool private) {
        char *pem = NULL;
        size_t len = 0;

        if (private ? teep_key_export_private_pem(key, &pem, &len) < 0 : teep_key_export_pem(key, &pem) < 0)
                FAIL("cannot export a key");
        write_file(path, pem, private ? len : strlen(pem));
        if (private)
                explicit_bzero(pem, len);
        free(pem);
}

const TeepKey *fuzz_agent_tam_key(void) {
        if (!tam_key)
                tam_key = key_from_hex(tam_key_hex);
        return tam_key;
}

const TeepKey *fuzz_agent_signer_key(void) {
        if (!signer_key)
                signer_key = key_from_hex(signer_key_hex);
        return signer_key;
}

/* ---- building messages (the harness's own TAM; also used by fuzz-agent-seeds) ---- */

int fuzz_agent_sign(const uint8_t *payload, size_t len, uint8_t **ret, size_t *ret_len) {
        return teep_cose_sign1(fuzz_agent_tam_key(), 0, NULL, TEEP_BUF(payload, len), false, ret, ret_len);
}

int fuzz_agent_query_request(const uint8_t *token, size_t token_len, uint64_t bits, uint8_t **ret, size_t *ret_len) {
        static const int64_t profile[] = { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR };
        TeepMessage *m = NULL;
        int r;

        r = teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST);
        if (r < 0)
                return r;
        if (token) {
                m->has_token = true;
                m->token = TEEP_BUF(token, token_len);
        }
        if (bits & TEEP_DATA_ATTESTATION) {
                static const uint8_t challenge[32] = "fuzz-challenge-fuzz-challenge-!!";
                m->has_challenge = true;
                m->challenge = TEEP_BUF(challenge, sizeof(challenge));
        }
        r = teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0);
        if (r >= 0)
                r = teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256);
        if (r >= 0)
                r = teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ED25519);
        if (r >= 0)
                r = teep_message_add_suit_cose_profile(m, profile, 4);
        m->data_item_requested = bits;
        if (r >= 0)
                r = teep_message_encode(m, ret, ret_len);
        teep_message_free(m);
        return r;
}

int fuzz_agent_update(const uint8_t *token, size_t token_len, const TeepBuf *envelopes, size_t n,
                      const char *const *unneeded, uint8_t **ret, size_t *ret_len) {
        TeepMessage *m = NULL;
        uint8_t *ids[8] = {};
        int r;

        r = teep_message_new(&m, TEEP_TYPE_UPDATE);
        if (r < 0)
                return r;
        if (token) {
                m->has_token = true;
                m->token = TEEP_BUF(token, token_len);
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = teep_message_add_buf(m, TEEP_LABEL_MANIFEST_LIST, envelopes[i]);
        for (size_t i = 0; unneeded && unneeded[i] && i < 8 && r >= 0; i++) {
                TeepSuitComponentId id;
                size_t len;
                r = teep_suit_component_id_from_string(unneeded[i], &ids[i], &len);
                if (r >= 0)
                        r = teep_suit_component_id_decode(TEEP_BUF(ids[i], len), &id, NULL);
                if (r >= 0)
                        r = teep_message_add_unneeded_manifest(m, id.segments, id.n_segments);
        }
        if (r >= 0)
                r = teep_message_encode(m, ret, ret_len);
        for (size_t i = 0; i < 8; i++)
                free(ids[i]);
        teep_message_free(m);
        return r;
}

int fuzz_agent_envelope(const char *component, uint64_t seq, const char *payload, const char *uri, bool unlink,
                        uint8_t **ret, size_t *ret_len) {
        uint8_t *id_raw = NULL, *mid_raw = NULL, digest[32];
        TeepSuitComponentId id, mid;
        char *mname = NULL;
        const char *slash = strrchr(component, '/');
        size_t id_len, mid_len, len = payload ? strlen(payload) : 0;
        TeepSuitBuild b = {};
        int r;

        if (!slash || asprintf(&mname, "%.*s/suit", (int)(slash - component), component) < 0)
                return -EINVAL;
        r = teep_suit_component_id_from_string(component, &id_raw, &id_len);
        if (r >= 0)
                r = teep_suit_component_id_decode(TEEP_BUF(id_raw, id_len), &id, NULL);
        if (r >= 0)
                r = teep_suit_component_id_from_string(mname, &mid_raw, &mid_len);
        if (r >= 0)
                r = teep_suit_component_id_decode(TEEP_BUF(mid_raw, mid_len), &mid, NULL);
        if (r >= 0) {
                teep_sha256(TEEP_BUF(payload ?: "", len), digest);
                b.component_id = &id;
                b.manifest_component_id = &mid;
                b.sequence_number = seq;
                b.vendor_id = TEEP_BUF(fuzz_agent_vendor_id, 16);
                b.class_id = TEEP_BUF(fuzz_agent_class_id, 16);
                b.image_digest = TEEP_BUF(digest, 32);
                b.image_size = len;
                b.uri = uri ?: "#tc";
                if (!uri)
                        b.payload = TEEP_BUF(payload, len);
                b.validate = true;
                b.uninstall_unlink = true;
                r = unlink ? teep_suit_envelope_build_unlink(&b, fuzz_agent_signer_key(), 0, ret, ret_len)
                           : teep_suit_envelope_build_install(&b, fuzz_agent_signer_key(), 0, ret, ret_len);
        }
        free(id_raw);
        free(mid_raw);
        free(mname);
        return r;
}

/* ---- the agent ---- */

static Agent *agent;
static AgentState baseline;
/* the baseline's blobs (manifests/H.suit; images are the installer's alone): an input that replaces the baseline TC
 * lets the agent collect them; reset() puts them back */
static struct {
        char path[400];
        uint8_t *data;
        size_t len;
} blobs[1];
static char scratch[256];
static unsigned inputs_since_sweep;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void remove_scratch(void) {
        if (scratch[0])
                (void)nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void fuzz_targets_agent_cleanup(void) {
        agent = agent_free(agent);
        agent_state_done(&baseline);
        memset(&baseline, 0, sizeof(baseline));
        store_clear(&store);
        store_clear(&baseline_store);
        for (size_t i = 0; i < ELEMENTSOF(blobs); i++) {
                free(blobs[i].data);
                blobs[i].data = NULL;
        }
        tam_key = teep_key_free(tam_key);
        signer_key = teep_key_free(signer_key);
        remove_scratch();
        scratch[0] = '\0';
}

/* After every message: a commit, whether it went through or was undone, leaves no undo record
 * behind (Discard), and, unless a journal is still open, the store holds exactly the TCs the
 * state lists (an install the store refused was undone through Restore). */
static void check_store(void) {
        if (store.n_undo != 0)
                FAIL("%zu undo record(s) left after a message (first: %s)", store.n_undo, store.undo[0].component);
        if (agent->state.n_journal != 0)
                return;
        if (store.n != agent->state.n_tcs)
                FAIL("the store holds %zu TC(s), the state lists %zu", store.n, agent->state.n_tcs);
        for (size_t i = 0; i < agent->state.n_tcs; i++) {
                const AgentTc *tc = &agent->state.tcs[i];
                ssize_t k = store_find(&store, tc->component);
                if (k < 0 || memcmp(store.e[k].sha, tc->sha256, 32) != 0)
                        FAIL("the state lists %s, the store %s", tc->component, k < 0 ? "does not hold it" : "another image");
        }
}

/* Run one signed message through the agent; abort on results the agent promises never to give. */
static void process(const uint8_t *msg, size_t len) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        int r;

        r = agent_process_message(agent, FUZZ_AGENT_TAM_URI, TEEP_BUF(msg, len), &out, &out_len);
        if (r < 0 && (out || out_len))
                FAIL("agent_process_message failed (%s) but left a reply", strerror(-r));
        if (r < 0 && r != -EKEYREJECTED)
                FAIL("agent_process_message from a configured TAM failed with %s: only the rate limit may refuse to answer",
                     strerror(-r));
        if (r >= 0 && out) {
                /* every answer is a signed COSE_Sign1 with a TEEP message the TAM can decode */
                TeepCoseMessage cose;
                TeepMessage *m = NULL;
                if (teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL) < 0 || cose.kind != TEEP_COSE_SIGN1)
                        FAIL("the agent answered with something that is not a COSE_Sign1");
                if (teep_message_decode(cose.payload, &m, NULL) < 0)
                        FAIL("the agent answered with a TEEP message that does not decode");
                teep_message_free(m);
        }
        free(out);
        check_store();
}

/* The same state for every input. */
static void reset(void) {
        agent_state_done(&agent->state);
        memset(&agent->state, 0, sizeof(agent->state));
        if (agent_state_copy(&agent->state, &baseline) < 0)
                FAIL("out of memory");
        for (size_t i = 0; i < AGENT_MAX_EXCHANGES; i++) {
                free(agent->exchanges[i].tam_uri);
                memset(&agent->exchanges[i], 0, sizeof(agent->exchanges[i]));
        }
        agent->policy_round = 0;
        agent->unauth_count = 0;
        agent->unauth_window_usec = agent_now_usec();
        store_copy(&store, &baseline_store);
        for (size_t i = 0; i < ELEMENTSOF(blobs); i++)
                if (blobs[i].data && access(blobs[i].path, F_OK) < 0)
                        write_file(blobs[i].path, blobs[i].data, blobs[i].len);
}

/* Blobs (manifests/) that the baseline does not reference: content-addressed, so the
 * baseline's own stay valid; every other one came from an input and is garbage now. */
static void sweep(void) {
        static const char *const dirs[] = { "manifests" };
        for (size_t k = 0; k < ELEMENTSOF(dirs); k++) {
                char path[400];
                DIR *d;
                struct dirent *de;
                snprintf(path, sizeof(path), "%s/state/%s", scratch, dirs[k]);
                d = opendir(path);
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        bool keep = false;
                        char hex[65], name[80];
                        if (de->d_name[0] == '.')
                                continue;
                        for (size_t i = 0; i < baseline.n_tcs && !keep; i++) {
                                snprintf(name, sizeof(name), "%s.suit", hexstr(baseline.tcs[i].manifest_hash, 32, hex));
                                keep = strcmp(de->d_name, name) == 0 ||
                                       strcmp(de->d_name, hexstr(baseline.tcs[i].sha256, 32, hex)) == 0;
                        }
                        if (!keep)
                                (void)unlinkat(dirfd(d), de->d_name, 0);
                }
                closedir(d);
        }
}

/* A full exchange that must succeed: the baseline is built the way a TAM would build it. */
static void install_baseline(void) {
        uint8_t *qr = NULL, *up = NULL, *env = NULL, *sq = NULL, *su = NULL;
        size_t qr_len, up_len, env_len, sq_len, su_len;
        TeepBuf b;
        char *uri = NULL;

        if (fuzz_agent_query_request(fuzz_agent_baseline_token, 16, TEEP_DATA_TRUSTED_COMPONENTS, &qr, &qr_len) < 0 ||
            fuzz_agent_sign(qr, qr_len, &sq, &sq_len) < 0 ||
            fuzz_agent_envelope(FUZZ_AGENT_COMPONENT, 1, "baseline TC", NULL, false, &env, &env_len) < 0)
                FAIL("cannot build the baseline exchange");
        b = TEEP_BUF(env, env_len);
        if (fuzz_agent_update(fuzz_agent_baseline_token, 16, &b, 1, NULL, &up, &up_len) < 0 ||
            fuzz_agent_sign(up, up_len, &su, &su_len) < 0)
                FAIL("cannot build the baseline update");
        process(sq, sq_len);
        process(su, su_len);
        if (agent->state.n_tcs != 1 || store.n != 1)
                FAIL("the baseline install did not happen (%zu TCs, %zu in the store)", agent->state.n_tcs, store.n);
        /* and a pending request, so Update's unneeded/requested bookkeeping has something to chew on */
        if (agent_request_ta(agent, "uid:1000", FUZZ_AGENT_COMPONENT2, NULL, &uri) < 0)
                FAIL("cannot record the baseline request");
        free(uri);
        free(qr);
        free(up);
        free(env);
        free(sq);
        free(su);
}

static void setup(void) {
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ?: "/tmp");
        char state[300], anchors[300], signers[300], path[400];
        AgentConfig cfg;
        TeepKey *device = NULL;
        const char *lvl = getenv("TEEP_LOG_LEVEL");
        int r;

        /* quiet unless asked: the agent logs a line for every refusal */
        log_set_max_level(lvl && *lvl ? LOG_DEBUG : LOG_CRIT);
        snprintf(scratch, sizeof(scratch), "%s/teep-fuzz-agent-XXXXXX", tmp);
        if (!mkdtemp(scratch))
                FAIL("mkdtemp in %s: %m", tmp);
        atexit(remove_scratch);
        snprintf(state, sizeof(state), "%s/state", scratch);
        snprintf(anchors, sizeof(anchors), "%s/anchors", scratch);
        snprintf(signers, sizeof(signers), "%s/signers", scratch);
        if (mkdir(state, 0700) < 0 || mkdir(anchors, 0755) < 0 || mkdir(signers, 0755) < 0)
                FAIL("mkdir: %m");
        snprintf(path, sizeof(path), "%s/tam.pem", anchors);
        write_pem(path, fuzz_agent_tam_key(), false);
        snprintf(path, sizeof(path), "%s/signer.pem", signers);
        write_pem(path, fuzz_agent_signer_key(), false);
        device = key_from_hex(device_key_hex);
        snprintf(path, sizeof(path), "%s/device-key.pem", state);
        write_pem(path, device, true);
        teep_key_free(device);

        agent_config_init(&cfg);
        cfg.state_dir = strdup(state);
        cfg.trust_anchor_dir = strdup(anchors);
        cfg.signer_dir = strdup(signers);
        cfg.broker_user = strdup("teep-broker");
        cfg.key_type = TEEP_KEY_P256;
        cfg.hwmodel = strdup("fuzz-model");
        cfg.hwversion = strdup("1.0");
        cfg.oemid = strdup("894823");
        cfg.n_vendor_ids = 1;
        memcpy(cfg.vendor_ids[0], fuzz_agent_vendor_id, 16);
        cfg.n_class_ids = 1;
        memcpy(cfg.class_ids[0], fuzz_agent_class_id, 16);
        cfg.max_payload_size = 1 << 20;
        cfg.tams = calloc(1, sizeof(AgentTamConfig));
        if (!cfg.tams)
                FAIL("out of memory");
        cfg.tams[0].uri = strdup(FUZZ_AGENT_TAM_URI);
        cfg.n_tams = 1;
        r = agent_new(&agent, &cfg, &fake_installer, &store, &fake_fetcher, NULL);
        agent_config_done(&cfg);
        if (r < 0)
                FAIL("agent_new: %s", strerror(-r));
        r = agent_start(agent);
        if (r < 0)
                FAIL("agent_start: %s", strerror(-r));

        install_baseline();
        if (agent_state_copy(&baseline, &agent->state) < 0)
                FAIL("out of memory");
        store_copy(&baseline_store, &store);
        {
                char hex[65];
                snprintf(blobs[0].path, sizeof(blobs[0].path), "%s/manifests/%s.suit", state,
                         hexstr(baseline.tcs[0].manifest_hash, 32, hex));
                for (size_t i = 0; i < ELEMENTSOF(blobs); i++)
                        if (read_full_file(blobs[i].path, 1 << 20, &blobs[i].data, &blobs[i].len) < 0)
                                FAIL("cannot read the baseline's %s", blobs[i].path);
        }
}

/* The input is a CBOR sequence: each top-level item is one message, in order (at most 4); bytes
 * that do not form an item are one last message. Returns the number of messages. */
static size_t split(const uint8_t *data, size_t size, TeepBuf msgs[FUZZ_AGENT_MAX_MESSAGES]) {
        TeepCborReader r;
        size_t n = 0;

        teep_cbor_reader_init(&r, TEEP_BUF(data, size));
        while (!teep_cbor_reader_at_end(&r) && n < FUZZ_AGENT_MAX_MESSAGES) {
                const uint8_t *start = r.pos;
                TeepBuf raw;
                if (n + 1 == FUZZ_AGENT_MAX_MESSAGES || teep_cbor_skip(&r, &raw) < 0) {
                        msgs[n++] = TEEP_BUF(start, (size_t)(data + size - start));
                        break;
                }
                msgs[n++] = raw;
        }
        if (n == 0)
                msgs[n++] = TEEP_BUF(data, size);
        return n;
}

static void before_input(void) {
        if (!agent)
                setup();
        reset();
        if (++inputs_since_sweep >= 1024) {
                sweep();
                inputs_since_sweep = 0;
        }
}

int fuzz_target_agent(const uint8_t *data, size_t size) {
        TeepBuf msgs[FUZZ_AGENT_MAX_MESSAGES];
        size_t n;

        before_input();
        n = split(data, size, msgs);
        for (size_t i = 0; i < n; i++)
                process(msgs[i].ptr, msgs[i].len);
        return 0;
}

/*
 * The signature bypass, in the harness only: each message of the input is an unsigned TEEP
 * message (the COSE payload). Where it decodes as an Update, every envelope in its
 * manifest-list whose manifest decodes is re-signed with the fixed TC signer key (keeping its
 * integrated payloads; severable members are dropped, their digests then fail); then the
 * whole message is signed with the fixed TAM key. The agent itself is unchanged: it verifies
 * both signatures as always, and the fuzzer reaches the SUIT update procedure behind them.
 */
static int resign(const uint8_t *payload, size_t len, uint8_t **ret, size_t *ret_len) {
        TeepMessage *m = NULL;
        uint8_t *enc = NULL, *owned[FUZZ_AGENT_MAX_ENVELOPES] = {};
        size_t enc_len = 0, n_owned = 0;
        int r;

        if (teep_message_decode(TEEP_BUF(payload, len), &m, NULL) < 0 || m->type != TEEP_TYPE_UPDATE ||
            m->n_manifest_list == 0) {
                teep_message_free(m);
                return fuzz_agent_sign(payload, len, ret, ret_len);
        }
        for (size_t i = 0; i < m->n_manifest_list && n_owned < FUZZ_AGENT_MAX_ENVELOPES; i++) {
                TeepSuitEnvelope *env = NULL;
                uint8_t *signed_env = NULL;
                size_t signed_len = 0;
                if (teep_suit_envelope_decode(m->manifest_list[i], &env, NULL) < 0)
                        continue;
                if (env->manifest.present &&
                    teep_suit_envelope_sign(env->manifest.content, fuzz_agent_signer_key(), 0, env->payloads, env->n_payloads,
                                            &signed_env, &signed_len) >= 0) {
                        owned[n_owned++] = signed_env;
                        m->manifest_list[i] = TEEP_BUF(signed_env, signed_len);
                }
                teep_suit_envelope_free(env);
        }
        r = teep_message_encode(m, &enc, &enc_len);
        teep_message_free(m);
        if (r >= 0)
                r = fuzz_agent_sign(enc, enc_len, ret, ret_len);
        free(enc);
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        return r;
}

int fuzz_target_agent_resign(const uint8_t *data, size_t size) {
        TeepBuf msgs[FUZZ_AGENT_MAX_MESSAGES];
        size_t n;

        before_input();
        n = split(data, size, msgs);
        for (size_t i = 0; i < n; i++) {
                uint8_t *sig = NULL;
                size_t sig_len = 0;
                if (resign(msgs[i].ptr, msgs[i].len, &sig, &sig_len) < 0)
                        continue; /* too big to sign, say: nothing reaches the agent */
                process(sig, sig_len);
                free(sig);
        }
        return 0;
}

Agent *fuzz_agent_reset(void) {
        before_input();
        return agent;
}

int fuzz_agent_process(const uint8_t *msg, size_t len, uint8_t **ret, size_t *ret_len) {
        return agent_process_message(agent, FUZZ_AGENT_TAM_URI, TEEP_BUF(msg, len), ret, ret_len);
}

int fuzz_agent_state_text(char **ret, size_t *ret_len) {
        if (!agent)
                return -ENOENT;
        return agent_state_serialize(&agent->state, ret, ret_len);
}

/* The agent's state file (disk input): parse, serialize, parse again — a fixed point. */
int fuzz_target_state(const uint8_t *data, size_t size) {
        AgentState s = {}, s2 = {};
        char *text = NULL, *text2 = NULL;
        size_t len = 0, len2 = 0;
        int r;

        r = agent_state_parse((const char *)data, size, &s);
        if (r < 0)
                return r;
        if (agent_state_serialize(&s, &text, &len) < 0)
                FAIL("a parsed state does not serialize");
        if (agent_state_parse(text, len, &s2) < 0)
                FAIL("a serialized state does not parse again");
        if (agent_state_serialize(&s2, &text2, &len2) < 0 || len != len2 || memcmp(text, text2, len) != 0)
                FAIL("state serialization is not a fixed point");
        free(text);
        free(text2);
        agent_state_done(&s);
        agent_state_done(&s2);
        return 0;
}
