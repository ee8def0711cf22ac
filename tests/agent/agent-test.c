/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-test.c: see agent-test.h */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-test.h"
#include "fileio.h"
#include "macro.h"
#include "teep-component.h"
#include "teep-suit.h"

const uint8_t test_vendor_id[16] = { 0xc0, 0xdd, 0xd5, 0xf1, 0x52, 0x43, 0x56, 0x60, 0x87, 0xdb, 0x4f, 0x5b, 0x0a, 0xa2, 0x6c, 0x2f };
const uint8_t test_class_id[16] = { 0xdb, 0x42, 0xf7, 0x09, 0x3d, 0x8c, 0x55, 0xba, 0xa8, 0xc5, 0x26, 0x5f, 0xc5, 0x82, 0x0f, 0x4e };

/* ---- fake store and fetcher ---- */

static ssize_t store_find(FakeStore *s, const char *component) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->e[i].component, component) == 0)
                        return (ssize_t)i;
        return -1;
}

static ssize_t undo_find(FakeStore *s, const char *component) {
        for (size_t i = 0; i < s->n_undo; i++)
                if (strcmp(s->undo[i].component, component) == 0)
                        return (ssize_t)i;
        return -1;
}

static void undo_drop(FakeStore *s, size_t i) {
        free(s->undo[i].component);
        free(s->undo[i].data);
        memmove(&s->undo[i], &s->undo[i + 1], (s->n_undo - i - 1) * sizeof(s->undo[0]));
        s->n_undo--;
}

/* component now holds data (taken over), added or replacing what it held. */
static void store_put(FakeStore *s, const char *component, uint8_t *data, size_t len, const uint8_t sha[32]) {
        ssize_t i = store_find(s, component);

        if (i < 0) {
                cr_assert_lt(s->n, FAKE_MAX);
                i = (ssize_t)s->n++;
                s->e[i].component = strdup(component);
        } else
                free(s->e[i].data);
        s->e[i].data = data;
        s->e[i].len = len;
        memcpy(s->e[i].sha, sha, 32);
}

/* Before a change of component: its undo record becomes what the store holds now. */
static void undo_record(FakeStore *s, const char *component) {
        ssize_t u = undo_find(s, component), i = store_find(s, component);

        if (u >= 0)
                undo_drop(s, (size_t)u);
        cr_assert_lt(s->n_undo, FAKE_MAX);
        u = (ssize_t)s->n_undo++;
        s->undo[u].component = strdup(component);
        s->undo[u].had = i >= 0;
        s->undo[u].data = NULL;
        s->undo[u].len = 0;
        if (i >= 0) {
                s->undo[u].data = malloc(s->e[i].len ? s->e[i].len : 1);
                cr_assert(s->undo[u].data);
                memcpy(s->undo[u].data, s->e[i].data, s->e[i].len);
                s->undo[u].len = s->e[i].len;
                memcpy(s->undo[u].sha, s->e[i].sha, 32);
        }
}

static int fake_install(void *userdata, const char *component, int fd, uint64_t size, const uint8_t sha256[32]) {
        FakeStore *s = userdata;
        uint8_t *data = malloc(size ? size : 1);
        uint8_t check[32];
        ssize_t n;

        cr_assert(data);
        s->installs++;
        if (s->fail_install_at && s->installs == s->fail_install_at) {
                free(data);
                return -EIO;
        }
        bool staged = false;
        for (size_t k = 0; k < s->n_staged && !staged; k++) {
                struct stat a, b;
                /* a staged payload comes back as the descriptor Staged gave: committed as it is */
                staged = fstat(fd, &a) == 0 && fstat(s->staged[k].fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
        }
        if (staged)
                s->staged_installs++;
        else {
                /* anything else arrives sealed, as the installer expects it */
                int seals = fcntl(fd, F_GET_SEALS);
                cr_assert_geq(seals, 0, "the payload is a memfd");
                cr_assert_eq(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK), F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
        }
        n = pread(fd, data, size, 0);
        cr_assert_eq(n, (ssize_t)size);
        teep_sha256(TEEP_BUF(data, size), check);
        if (memcmp(check, sha256, 32) != 0) {
                free(data);
                return -EKEYREJECTED;
        }
        undo_record(s, component);
        store_put(s, component, data, size, sha256);
        return 0;
}

static int fake_remove(void *userdata, const char *component) {
        FakeStore *s = userdata;
        ssize_t i = store_find(s, component);

        s->removes++;
        if (i < 0)
                return -ENOENT;
        undo_record(s, component);
        free(s->e[i].component);
        free(s->e[i].data);
        memmove(&s->e[i], &s->e[i + 1], (s->n - (size_t)i - 1) * sizeof(s->e[0]));
        s->n--;
        return 0;
}

static int fake_list(void *userdata, AgentStoreEntry **ret, size_t *ret_n) {
        FakeStore *s = userdata;
        AgentStoreEntry *e;

        s->lists++;
        if (s->list_error)
                return -s->list_error;
        e = calloc(s->n + 1, sizeof(*e));
        cr_assert(e);
        for (size_t i = 0; i < s->n; i++) {
                e[i].component = strdup(s->e[i].component);
                e[i].size = s->e[i].len;
                memcpy(e[i].sha256, s->e[i].sha, 32);
        }
        *ret = e;
        *ret_n = s->n;
        return 0;
}

static int fake_restore(void *userdata, const char *component) {
        FakeStore *s = userdata;
        ssize_t u = undo_find(s, component), i;

        s->restores++;
        if (u < 0)
                return 0; /* nothing to undo */
        i = store_find(s, component);
        if (s->undo[u].had)
                store_put(s, component, TAKE_PTR(s->undo[u].data), s->undo[u].len, s->undo[u].sha);
        else if (i >= 0) {
                free(s->e[i].component);
                free(s->e[i].data);
                memmove(&s->e[i], &s->e[i + 1], (s->n - (size_t)i - 1) * sizeof(s->e[0]));
                s->n--;
        }
        undo_drop(s, (size_t)u);
        return 0;
}

static int fake_discard(void *userdata, const char *const *components, size_t n, bool wait) {
        FakeStore *s = userdata;

        s->discards++;
        if (n == 0) {
                s->discard_alls++;
                while (s->n_undo > 0)
                        undo_drop(s, s->n_undo - 1);
        }
        for (size_t k = 0; k < n; k++) {
                ssize_t u = undo_find(s, components[k]);
                if (u >= 0)
                        undo_drop(s, (size_t)u);
        }
        return 0;
}

static int fake_stage_open(void *userdata, const char *id, uint64_t max, int *ret_fd) {
        FakeStore *s = userdata;
        int fd;

        s->stage_opens++;
        cr_assert_eq(strlen(id), 32);
        if (s->stage_reader_gone) {
                int p[2];

                cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
                close(p[0]);
                *ret_fd = p[1];
                return 0;
        }
        cr_assert_lt(s->n_staged, 16);
        fd = memfd_create("staged", MFD_CLOEXEC);
        cr_assert_geq(fd, 0);
        memcpy(s->staged[s->n_staged].id, id, 33);
        s->staged[s->n_staged++].fd = fd;
        *ret_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        cr_assert_geq(*ret_fd, 0);
        return 0;
}

static int fake_stage_close(void *userdata, const char *id, int *ret_fd, uint64_t *ret_size, uint8_t ret_sha256[32]) {
        FakeStore *s = userdata;
        char path[64];
        struct stat st;

        for (size_t k = 0; k < s->n_staged; k++)
                if (strcmp(s->staged[k].id, id) == 0) {
                        _cleanup_free_ uint8_t *data = NULL;
                        cr_assert_eq(fstat(s->staged[k].fd, &st), 0);
                        data = malloc((size_t)st.st_size + 1);
                        cr_assert(data);
                        cr_assert_eq(pread(s->staged[k].fd, data, (size_t)st.st_size, 0), st.st_size);
                        teep_sha256(TEEP_BUF(data, (size_t)st.st_size), ret_sha256);
                        /* read-only, as the installer gives it */
                        snprintf(path, sizeof(path), "/proc/self/fd/%d", s->staged[k].fd);
                        *ret_fd = open(path, O_RDONLY | O_CLOEXEC);
                        cr_assert_geq(*ret_fd, 0);
                        *ret_size = (uint64_t)st.st_size;
                        return 0;
                }
        return -ENOENT;
}

static int fake_unstage(void *userdata, const char *const *ids, size_t n) {
        FakeStore *s = userdata;

        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < s->n_staged; k++)
                        if (strcmp(s->staged[k].id, ids[i]) == 0) {
                                close(s->staged[k].fd);
                                s->staged[k] = s->staged[--s->n_staged];
                                s->unstaged++;
                                break;
                        }
        return 0;
}

static const AgentInstaller fake_installer = { fake_install, fake_remove, fake_list, fake_restore, fake_discard,
                                               fake_stage_open, fake_stage_close, fake_unstage };
/* FakeStore.no_stage: an installer that cannot stage */
static const AgentInstaller fake_installer_no_stage = { fake_install, fake_remove, fake_list, fake_restore,
                                                        fake_discard };

/* The broker's way: a pipe, written as the reader reads. */
static int pipe_from_child(FakeFetcher *ff, const uint8_t *data, size_t len, size_t stall_at) {
        int p[2];
        pid_t pid;

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                size_t n = stall_at && stall_at < len ? stall_at : len;
                close(p[0]);
                alarm(20); /* never outlives a test that forgot it */
                if (loop_write(p[1], data, n) < 0)
                        _exit(1);
                if (stall_at)
                        pause();
                _exit(0);
        }
        close(p[1]);
        ff->child = pid;
        return p[0];
}

static int fake_fetch(void *userdata, const char *uri, uint64_t max, int *ret_fd, uint64_t *ret_size) {
        FakeFetcher *ff = userdata;
        int fd;

        ff->calls++;
        for (size_t i = 0; i < ff->n; i++)
                if (strcmp(ff->e[i].uri, uri) == 0) {
                        if (ff->e[i].len > max && !ff->pipe)
                                return -EFBIG;
                        if (ff->pipe) {
                                *ret_fd = pipe_from_child(ff, ff->e[i].data, ff->e[i].len, ff->stall_at);
                                *ret_size = ff->announce ? ff->announce : UINT64_MAX; /* Content-Length, or none */
                                return 0;
                        }
                        fd = memfd_create("fetched", MFD_CLOEXEC | (ff->seal ? MFD_ALLOW_SEALING : 0));
                        cr_assert_geq(fd, 0);
                        cr_assert_eq(write(fd, ff->e[i].data, ff->e[i].len), (ssize_t)ff->e[i].len);
                        if (ff->seal)
                                cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), 0);
                        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
                        *ret_fd = fd;
                        *ret_size = ff->e[i].len;
                        return 0;
                }
        return -EHOSTUNREACH;
}

static const AgentFetcher fake_fetcher = { fake_fetch };

/* ---- fixture ---- */

void fx_write_pem(const char *path, const TeepKey *key) {
        _cleanup_free_ char *pem = NULL;
        FILE *fp;

        cr_assert_eq(teep_key_export_pem(key, &pem), 0);
        fp = fopen(path, "we");
        cr_assert(fp, "%s", path);
        fputs(pem, fp);
        cr_assert_eq(fclose(fp), 0);
}

static void note_delta(Fixture *f, char sign, const AgentRequest *reqs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(f->deltas);
                snprintf(f->deltas + len, sizeof(f->deltas) - len, "%c%s %s\n", sign, reqs[i].component,
                         reqs[i].requester);
        }
}

static void on_changed(Agent *a, const AgentChange *c, void *userdata) {
        Fixture *f = userdata;
        f->changed |= c->what;
        note_delta(f, '+', c->added, c->n_added);
        note_delta(f, '-', c->removed, c->n_removed);
}

static void start_agent(Fixture *f) {
        _cleanup_free_ char *pem = NULL;
        int r;

        r = agent_new(&f->agent, &f->cfg, f->store.no_stage ? &fake_installer_no_stage : &fake_installer, &f->store,
                      &fake_fetcher, &f->fetcher);
        cr_assert_eq(r, 0, "agent_new: %s", strerror(-r));
        agent_set_changed_callback(f->agent, on_changed, f);
        r = agent_start(f->agent);
        cr_assert_eq(r, 0, "agent_start: %s", strerror(-r));
        cr_assert_eq(agent_get_device_key(f->agent, &pem, NULL, NULL, NULL), 0);
        teep_key_free(f->device_pub);
        f->device_pub = NULL;
        cr_assert_eq(teep_key_from_pem(&f->device_pub, (const uint8_t *)pem, strlen(pem), NULL), 0);
        cr_assert(!teep_key_has_private(f->device_pub), "GetDeviceKey must not carry the private key");
}

void fx_setup(Fixture *f, TeepKeyType device_type) {
        char path[400];
        const char *tmp = getenv("TMPDIR");

        memset(f, 0, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "%s/teep-agent-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        cr_assert(mkdtemp(f->dir));
        snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
        snprintf(f->anchors, sizeof(f->anchors), "%s/anchors", f->dir);
        snprintf(f->signers, sizeof(f->signers), "%s/signers", f->dir);
        cr_assert_eq(mkdir(f->anchors, 0755), 0);
        cr_assert_eq(mkdir(f->signers, 0755), 0);

        cr_assert_eq(teep_key_generate(&f->tam_key, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&f->signer_key, TEEP_KEY_P256), 0);
        cr_assert_eq(teep_key_generate(&f->other_key, TEEP_KEY_P256), 0);
        snprintf(path, sizeof(path), "%s/tam.pem", f->anchors);
        fx_write_pem(path, f->tam_key);
        snprintf(path, sizeof(path), "%s/signer.pem", f->signers);
        fx_write_pem(path, f->signer_key);

        agent_config_init(&f->cfg);
        f->cfg.state_dir = strdup(f->state_dir);
        f->cfg.trust_anchor_dir = strdup(f->anchors);
        f->cfg.signer_dir = strdup(f->signers);
        f->cfg.broker_user = strdup("teep-broker");
        f->cfg.key_type = device_type;
        f->cfg.hwmodel = strdup("test-model");
        f->cfg.hwversion = strdup("1.0");
        f->cfg.oemid = strdup("894823");
        f->cfg.n_vendor_ids = 1;
        memcpy(f->cfg.vendor_ids[0], test_vendor_id, 16);
        f->cfg.n_class_ids = 1;
        memcpy(f->cfg.class_ids[0], test_class_id, 16);
        f->cfg.tams = calloc(1, sizeof(AgentTamConfig));
        f->cfg.tams[0].uri = strdup(TEST_TAM_URI);
        f->cfg.n_tams = 1;
        start_agent(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void fx_teardown(Fixture *f) {
        agent_free(f->agent);
        agent_config_done(&f->cfg);
        teep_key_free(f->tam_key);
        teep_key_free(f->signer_key);
        teep_key_free(f->other_key);
        teep_key_free(f->device_pub);
        for (size_t i = 0; i < f->store.n; i++) {
                free(f->store.e[i].component);
                free(f->store.e[i].data);
        }
        for (size_t i = 0; i < f->store.n_staged; i++)
                close(f->store.staged[i].fd);
        if (f->fetcher.child > 0) {
                (void)kill(f->fetcher.child, SIGKILL);
                (void)waitpid(f->fetcher.child, NULL, 0);
        }
        for (size_t i = 0; i < f->store.n_undo; i++) {
                free(f->store.undo[i].component);
                free(f->store.undo[i].data);
        }
        for (size_t i = 0; i < f->fetcher.n; i++) {
                free(f->fetcher.e[i].uri);
                free(f->fetcher.e[i].data);
        }
        if (f->dir[0] && !getenv("TEEP_KEEP_TEST_DIR"))
                (void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        memset(f, 0, sizeof(*f));
}

void fx_restart(Fixture *f) {
        f->agent = agent_free(f->agent);
        start_agent(f);
}

/* ---- the TAM ---- */

uint8_t *tam_sign(const TeepKey *key, int64_t alg, const TeepMessage *m, size_t *ret_len) {
        _cleanup_free_ uint8_t *payload = NULL;
        uint8_t *out = NULL;
        size_t len = 0;

        cr_assert_eq(teep_message_encode(m, &payload, &len), 0);
        cr_assert_eq(teep_cose_sign1(key, alg, NULL, TEEP_BUF(payload, len), false, &out, ret_len), 0);
        return out;
}

uint8_t *tam_query_request(const TeepKey *key, const uint8_t *token, size_t token_len, const uint8_t *challenge,
                           size_t challenge_len, uint64_t bits, const int64_t *suites, size_t n_suites, size_t *ret_len) {
        static const int64_t profile[] = { COSE_ALG_SHA256, COSE_ALG_ESP256, COSE_ALG_ECDH_ES_A128KW, COSE_ALG_A128CTR };
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_QUERY_REQUEST), 0);
        if (token) {
                m->has_token = true;
                m->token = TEEP_BUF(token, token_len);
        }
        if (challenge) {
                m->has_challenge = true;
                m->challenge = TEEP_BUF(challenge, challenge_len);
        }
        cr_assert_eq(teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0), 0);
        if (suites)
                for (size_t i = 0; i < n_suites; i++)
                        cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, suites[i]), 0);
        else {
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ESP256), 0);
                cr_assert_eq(teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, COSE_ALG_ED25519), 0);
        }
        cr_assert_eq(teep_message_add_suit_cose_profile(m, profile, 4), 0);
        m->data_item_requested = bits;
        return tam_sign(key, 0, m, ret_len);
}

uint8_t *tam_update(const TeepKey *key, const uint8_t *token, size_t token_len, const TeepBuf *envelopes, size_t n,
                    const char *const *unneeded, size_t *ret_len) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        uint8_t *ids[8] = {};
        uint8_t *out;

        cr_assert_eq(teep_message_new(&m, TEEP_TYPE_UPDATE), 0);
        if (token) {
                m->has_token = true;
                m->token = TEEP_BUF(token, token_len);
        }
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(teep_message_add_buf(m, TEEP_LABEL_MANIFEST_LIST, envelopes[i]), 0);
        for (size_t i = 0; unneeded && unneeded[i]; i++) {
                TeepSuitComponentId id;
                size_t len;
                cr_assert_lt(i, 8);
                cr_assert_eq(teep_suit_component_id_from_string(unneeded[i], &ids[i], &len), 0);
                cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(ids[i], len), &id, NULL), 0);
                cr_assert_eq(teep_message_add_unneeded_manifest(m, id.segments, id.n_segments), 0);
        }
        out = tam_sign(key, 0, m, ret_len);
        for (size_t i = 0; i < 8; i++)
                free(ids[i]);
        return out;
}

uint8_t *make_envelope(const TeepKey *signer, const char *component, uint64_t seq, const uint8_t *payload, size_t len,
                       const char *uri, const uint8_t *vendor, const uint8_t *class_id, size_t *ret_len) {
        _cleanup_free_ uint8_t *id_raw = NULL, *mid_raw = NULL;
        _cleanup_free_ char *mname = NULL;
        TeepSuitComponentId id, mid;
        uint8_t digest[32];
        size_t id_len, mid_len;
        uint8_t *out = NULL;
        TeepSuitBuild b = {};

        cr_assert_eq(teep_suit_component_id_from_string(component, &id_raw, &id_len), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(id_raw, id_len), &id, NULL), 0);
        /* the manifest id: the component's name with its last segment replaced by "suit" */
        {
                const char *slash = strrchr(component, '/');
                cr_assert(slash);
                cr_assert(asprintf(&mname, "%.*s/suit", (int)(slash - component), component) > 0);
        }
        cr_assert_eq(teep_suit_component_id_from_string(mname, &mid_raw, &mid_len), 0);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(mid_raw, mid_len), &mid, NULL), 0);
        teep_sha256(TEEP_BUF(payload, len), digest);
        b.component_id = &id;
        b.manifest_component_id = &mid;
        b.sequence_number = seq;
        b.vendor_id = TEEP_BUF(vendor ?: test_vendor_id, 16);
        b.class_id = TEEP_BUF(class_id ?: test_class_id, 16);
        b.image_digest = TEEP_BUF(digest, 32);
        b.image_size = len;
        b.uri = uri ?: "#tc";
        if (!uri)
                b.payload = TEEP_BUF(payload, len);
        b.validate = true;
        b.uninstall_unlink = true;
        cr_assert_eq(teep_suit_envelope_build_install(&b, signer, 0, &out, ret_len), 0);
        return out;
}

TeepMessage *fx_process(Fixture *f, const uint8_t *msg, size_t len, uint8_t **ret_raw) {
        TeepCoseMessage cose;
        TeepMessage *m = NULL;
        TeepError err = {};
        uint8_t *out = NULL;
        size_t out_len = 0;
        int r;

        r = agent_process_message(f->agent, TEST_TAM_URI, TEEP_BUF(msg, len), &out, &out_len);
        cr_assert_eq(r, 0, "agent_process_message: %s", strerror(-r));
        cr_assert(out && out_len > 0, "no reply");
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, &err), 0, "reply: %s", err.detail);
        cr_assert(cose.tagged && cose.kind == TEEP_COSE_SIGN1);
        r = teep_cose_verify(&cose, NULL, &f->device_pub, 1, NULL, NULL, &err);
        cr_assert_eq(r, 0, "the reply does not verify with the device key: %s", err.detail);
        r = teep_message_decode(cose.payload, &m, &err);
        cr_assert_eq(r, 0, "reply payload: %s", err.detail);
        *ret_raw = out;
        return m;
}

void fx_query(Fixture *f, uint8_t token[16]) {
        _cleanup_free_ uint8_t *qr = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *resp = NULL;
        size_t len;

        for (int i = 0; i < 16; i++)
                token[i] = (uint8_t)(rand() & 0xff);
        qr = tam_query_request(f->tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        resp = fx_process(f, qr, len, &raw);
        cr_assert_eq(resp->type, TEEP_TYPE_QUERY_RESPONSE, "got %s (err %d: %.*s)", teep_message_type_to_string(resp->type),
                     (int)resp->err_code, (int)resp->err_msg.len, resp->err_msg.ptr ? (const char *)resp->err_msg.ptr : "");
        cr_assert(resp->has_token && teep_buf_eq(resp->token, TEEP_BUF(token, 16)));
}

TeepMessage *fx_update(Fixture *f, const TeepBuf *envelopes, size_t n, const char *const *unneeded, uint8_t **ret_raw) {
        _cleanup_free_ uint8_t *up = NULL;
        uint8_t token[16];
        size_t len;

        fx_query(f, token);
        up = tam_update(f->tam_key, token, 16, envelopes, n, unneeded, &len);
        return fx_process(f, up, len, ret_raw);
}

void fx_install(Fixture *f, const char *component, uint64_t seq, const char *payload) {
        _cleanup_free_ uint8_t *env = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        size_t len;
        TeepBuf b;

        env = make_envelope(f->signer_key, component, seq, (const uint8_t *)payload, strlen(payload), NULL, NULL, NULL, &len);
        b = TEEP_BUF(env, len);
        ans = fx_update(f, &b, 1, NULL, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_SUCCESS, "install %s seq %llu: got %s: %.*s", component, (unsigned long long)seq,
                     teep_message_type_to_string(ans->type), (int)ans->err_msg.len,
                     ans->err_msg.ptr ? (const char *)ans->err_msg.ptr : "");
}

TeepMessage *fx_update_second_install_fails(Fixture *f, uint64_t seq, const char *p1, const char *p2, uint8_t **ret_raw) {
        _cleanup_free_ uint8_t *e1 = NULL, *e2 = NULL;
        size_t l1, l2;
        TeepBuf envs[2];

        e1 = make_envelope(f->signer_key, TEST_COMPONENT, seq, (const uint8_t *)p1, strlen(p1), NULL, NULL, NULL, &l1);
        e2 = make_envelope(f->signer_key, TEST_COMPONENT2, 1, (const uint8_t *)p2, strlen(p2), NULL, NULL, NULL, &l2);
        envs[0] = TEEP_BUF(e1, l1);
        envs[1] = TEEP_BUF(e2, l2);
        f->store.fail_install_at = f->store.installs + 2;
        return fx_update(f, envs, 2, NULL, ret_raw);
}

char *fx_state_file(const Fixture *f) {
        char path[400];
        uint8_t *data = NULL;
        size_t len;

        snprintf(path, sizeof(path), "%s/state", f->state_dir);
        if (read_full_file(path, 1 << 20, &data, &len) < 0)
                return strdup("(none)");
        return (char *)data;
}

char *fx_store_snapshot(const Fixture *f) {
        char *s = strdup(""), hex[65];

        for (size_t i = 0; i < f->store.n; i++) {
                char *n = NULL;
                cr_assert(asprintf(&n, "%s%s=%s;", s, f->store.e[i].component, hexstr(f->store.e[i].sha, 32, hex)) > 0);
                free(s);
                s = n;
        }
        return s;
}

bool fx_store_has(const Fixture *f, const char *component, const char *payload) {
        for (size_t i = 0; i < f->store.n; i++)
                if (strcmp(f->store.e[i].component, component) == 0)
                        return f->store.e[i].len == strlen(payload) && memcmp(f->store.e[i].data, payload, f->store.e[i].len) == 0;
        return false;
}

int suit_report_reason(TeepBuf report, int64_t *ret_section, bool *ret_has_nonce) {
        TeepCborReader r;
        size_t n, m;
        int reason = -2;
        bool nonce = false, ref = false;

        cr_assert_eq(teep_cbor_check(report, NULL, NULL), 0);
        teep_cbor_reader_init(&r, report);
        cr_assert_eq(teep_cbor_read_map(&r, &n, NULL), 0);
        for (size_t i = 0; i < n; i++) {
                uint64_t key;
                TeepCborItem it;
                cr_assert_eq(teep_cbor_read_uint(&r, &key, NULL), 0);
                if (key == 2)
                        nonce = true;
                if (key == 99)
                        ref = true;
                if (key != 4) {
                        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                        continue;
                }
                cr_assert_eq(teep_cbor_peek(&r, &it), 0);
                if (it.type == TEEP_CBOR_TRUE) {
                        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                        reason = -1;
                        continue;
                }
                cr_assert_eq(teep_cbor_read_map(&r, &m, NULL), 0);
                for (size_t k = 0; k < m; k++) {
                        uint64_t rk;
                        cr_assert_eq(teep_cbor_read_uint(&r, &rk, NULL), 0);
                        if (rk == 7) {
                                uint64_t v;
                                cr_assert_eq(teep_cbor_read_uint(&r, &v, NULL), 0);
                                reason = (int)v;
                        } else if (rk == 6) {
                                size_t rn;
                                int64_t section;
                                cr_assert_eq(teep_cbor_read_array(&r, &rn, NULL), 0);
                                cr_assert_eq(rn, 5);
                                cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                                cr_assert_eq(teep_cbor_read_int(&r, &section, NULL), 0);
                                if (ret_section)
                                        *ret_section = section;
                                for (size_t q = 2; q < rn; q++)
                                        cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                        } else
                                cr_assert_eq(teep_cbor_skip(&r, NULL), 0);
                }
        }
        cr_assert(ref, "SUIT report without suit-reference");
        cr_assert_neq(reason, -2, "SUIT report without result");
        if (ret_has_nonce)
                *ret_has_nonce = nonce;
        return reason;
}

void expect_error(const TeepMessage *m, uint64_t code, const char *msg_part) {
        cr_assert_eq(m->type, TEEP_TYPE_ERROR, "expected an Error, got %s", teep_message_type_to_string(m->type));
        cr_assert_eq(m->err_code, code, "err-code %llu, want %llu (%.*s)", (unsigned long long)m->err_code,
                     (unsigned long long)code, (int)m->err_msg.len, m->err_msg.ptr ? (const char *)m->err_msg.ptr : "");
        if (msg_part) {
                cr_assert(m->has_err_msg, "no err-msg");
                cr_assert(memmem(m->err_msg.ptr, m->err_msg.len, msg_part, strlen(msg_part)), "err-msg \"%.*s\" lacks \"%s\"",
                          (int)m->err_msg.len, (const char *)m->err_msg.ptr, msg_part);
        }
}
