/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* catalog.c: see catalog.h */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "tam-util.h"
#include "teep-protocol.h"
#include "teep-suit.h"

static void tc_done(TamTc *tc) {
        free(tc->file);
        free(tc->data);
        free(tc->name);
        free(tc->manifest_name);
        free(tc->uri);
        *tc = (TamTc){};
}

TamCatalog *tam_catalog_free(TamCatalog *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                tc_done(&c->tcs[i]);
        free(c->tcs);
        free(c);
        return NULL;
}

/* Look through a sequence (not into try-each) for parameters set by override/set-parameters. */
static void scan_parameters(const TeepSuitSequence *s, TamTc *tc) {
        if (!s || !s->present)
                return;
        for (size_t i = 0; i < s->n_commands; i++) {
                const TeepSuitCommand *cmd = &s->commands[i];
                const TeepSuitParameters *p = cmd->params;

                if (cmd->label == SUIT_DIRECTIVE_UNLINK)
                        tc->unlink = true;
                if ((cmd->label != SUIT_DIRECTIVE_OVERRIDE_PARAMETERS &&
                     cmd->label != SUIT_DIRECTIVE_SET_PARAMETERS) ||
                    !p)
                        continue;
                if (teep_suit_parameters_has(p, SUIT_PARAM_IMAGE_DIGEST) &&
                    p->image_digest.alg == COSE_ALG_SHA256 &&
                    p->image_digest.bytes.len == sizeof(tc->digest)) {
                        memcpy(tc->digest, p->image_digest.bytes.ptr, sizeof(tc->digest));
                        tc->has_digest = true;
                }
                if (teep_suit_parameters_has(p, SUIT_PARAM_IMAGE_SIZE))
                        tc->size = p->image_size;
                if (teep_suit_parameters_has(p, SUIT_PARAM_URI)) {
                        free(tc->uri);
                        tc->uri = strndup((const char *)p->uri.ptr, p->uri.len);
                        tc->has_uri = tc->uri != NULL;
                }
        }
}

/* Read and decode dir/file. On failure *ret_retry says whether the file could not be read
 * (try again later) rather than holds what the TAM cannot serve (the same until it changes). */
static int tc_load(const char *dir, const char *file, TamTc *ret, bool *ret_retry) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *m = NULL;
        _cleanup_free_ char *path = NULL;
        TamTc tc = {};
        TeepError err = {};
        int r;

        *ret_retry = false;
        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        r = read_full_file(path, TAM_CATALOG_MAX_ENVELOPE, &tc.data, &tc.len);
        if (r < 0) {
                *ret_retry = r != -EFBIG;
                return log_warning_errno(r, "Skipping %s: %s", path, strerror(-r));
        }
        r = teep_suit_envelope_decode(TEEP_BUF(tc.data, tc.len), &env, &err);
        if (r >= 0)
                r = teep_suit_manifest_decode(env, TEEP_SUIT_DECODE_UNAUTHENTICATED, &m, &err);
        if (r < 0) {
                log_warning("Skipping %s: not a SUIT envelope we can read: %s (%s)", path,
                            err.detail[0] ? err.detail : strerror(-r), teep_reason_to_string(err.reason));
                goto fail;
        }
        if (m->n_components != 1) {
                log_warning("Skipping %s: %zu components; the TAM serves one component per envelope", path,
                            m->n_components);
                r = -EOPNOTSUPP;
                goto fail;
        }
        tc.component = m->components[0];
        tc.has_manifest_id = m->has_manifest_component_id;
        if (tc.has_manifest_id)
                tc.manifest_id = m->manifest_component_id;
        tc.sequence = m->sequence_number;
        scan_parameters(&m->shared_sequence, &tc);
        scan_parameters(&m->install, &tc);
        for (size_t i = 0; i < env->n_payloads; i++)
                if (tc.uri && env->payloads[i].key.len == strlen(tc.uri) &&
                    memcmp(env->payloads[i].key.ptr, tc.uri, env->payloads[i].key.len) == 0) {
                        tc.has_integrated = true;
                        tc.integrated_offset = (size_t)(env->payloads[i].data.ptr - tc.data);
                        tc.integrated_len = env->payloads[i].data.len;
                }
        tc.name = tam_component_name(&tc.component);
        tc.manifest_name = tam_component_name(tc.has_manifest_id ? &tc.manifest_id : &tc.component);
        tc.file = strdup(file);
        if (!tc.name || !tc.manifest_name || !tc.file) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = tc;
        return 0;
fail:
        tc_done(&tc);
        return r;
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n > k && strcmp(s + n - k, suffix) == 0;
}

static void failed_free(char **failed, size_t n) {
        for (size_t i = 0; failed && i < n; i++)
                free(failed[i]);
        free(failed);
}

void tam_catalog_cache_done(TamCatalogCache *c) {
        if (!c)
                return;
        tam_catalog_free(c->catalog);
        free(c->keys);
        failed_free(c->failed, c->n_failed);
        free(c->failed_keys);
        tam_dir_signature_done(&c->signature);
        *c = (TamCatalogCache){.loads = c->loads, .decodes = c->decodes};
}

/*
 * The cache's entry for file name, or NULL. The names of a pass come in the order the cache's
 * entries are in, so *j only moves forward; an entry taken is stepped over by the caller.
 */
static TamTc *cached_tc(TamCatalogCache *c, const char *name, size_t *j) {
        size_t n = c->catalog ? c->catalog->n : 0;

        while (*j < n && strcoll(c->catalog->tcs[*j].file, name) < 0)
                (*j)++;
        return *j < n && strcmp(c->catalog->tcs[*j].file, name) == 0 ? &c->catalog->tcs[*j] : NULL;
}

static bool cached_failure(TamCatalogCache *c, const char *name, size_t *j) {
        while (*j < c->n_failed && strcoll(c->failed[*j], name) < 0)
                (*j)++;
        return *j < c->n_failed && strcmp(c->failed[*j], name) == 0;
}

int tam_catalog_cached(const char *dir, TamCatalogCache *c, const TamCatalog **ret) {
        _cleanup_(tam_dir_signature_done) TamDirSignature sig = {};
        _cleanup_(tam_catalog_freep) TamCatalog *cat = NULL;
        _cleanup_free_ TamFileKey *keys = NULL, *failed_keys = NULL;
        char **failed = NULL;
        size_t n_suit = 0, n_failed = 0, j = 0, f = 0;
        unsigned decodes = 0;
        bool again = false;
        int r;

        r = tam_dir_signature(dir, &sig);
        if (r < 0)
                return r;
        if (c->catalog && !c->again && tam_dir_signature_equal(&sig, &c->signature)) {
                *ret = c->catalog;
                return 0;
        }
        if (sig.error != 0 && sig.error != ENOENT)
                log_warning("Cannot read the TC directory %s: %s", dir, strerror(sig.error));

        /* the signature has the regular files only, hidden ones left out */
        for (size_t i = 0; i < sig.n; i++)
                n_suit += has_suffix(sig.files[i].name, ".suit");
        cat = calloc(1, sizeof(*cat));
        if (!cat)
                goto nomem;
        cat->tcs = calloc(n_suit ?: 1, sizeof(TamTc));
        keys = calloc(n_suit ?: 1, sizeof(TamFileKey));
        failed = calloc(n_suit ?: 1, sizeof(char *));
        failed_keys = calloc(n_suit ?: 1, sizeof(TamFileKey));
        if (!cat->tcs || !keys || !failed || !failed_keys)
                goto nomem;

        for (size_t i = 0; i < sig.n && cat->n < TAM_CATALOG_MAX_FILES; i++) {
                const char *name = sig.files[i].name;
                const TamFileKey *key = &sig.files[i].key;
                TamTc *old;
                bool retry;

                if (!has_suffix(name, ".suit"))
                        continue;
                old = cached_tc(c, name, &j);
                if (old && tam_file_key_equal(&c->keys[j], key)) {
                        /* the same file: its entry moves over, data (and the views into it) as is */
                        cat->tcs[cat->n] = *old;
                        *old = (TamTc){};
                        keys[cat->n++] = *key;
                        j++;
                        continue;
                }
                if (cached_failure(c, name, &f) && tam_file_key_equal(&c->failed_keys[f], key)) {
                        /* still not an envelope we can serve, and warned about */
                        failed[n_failed] = TAKE_PTR(c->failed[f]);
                        failed_keys[n_failed++] = *key;
                        f++;
                        continue;
                }
                decodes++;
                r = tc_load(dir, name, &cat->tcs[cat->n], &retry);
                if (r == -ENOMEM)
                        goto nomem;
                if (r >= 0)
                        keys[cat->n++] = *key;
                else if (retry)
                        again = true;
                else {
                        failed[n_failed] = strdup(name);
                        if (!failed[n_failed])
                                goto nomem;
                        failed_keys[n_failed++] = *key;
                }
        }

        tam_catalog_cache_done(c);
        c->catalog = TAKE_PTR(cat);
        c->keys = TAKE_PTR(keys);
        c->failed = TAKE_PTR(failed);
        c->n_failed = n_failed;
        c->failed_keys = TAKE_PTR(failed_keys);
        c->again = again;
        c->signature = sig;
        sig = (TamDirSignature){};
        c->loads++;
        c->decodes += decodes;
        log_debug("TC directory %s: %zu envelopes, %u read and decoded, %zu skipped", dir ?: "-",
                  c->catalog->n, decodes, n_failed);
        *ret = c->catalog;
        return 0;
nomem:
        /* entries may have moved out of the cache already: start over next time */
        failed_free(failed, n_failed);
        tam_catalog_cache_done(c);
        c->decodes += decodes;
        return -ENOMEM;
}

int tam_catalog_load(const char *dir, TamCatalog **ret) {
        TamCatalogCache c = {};
        const TamCatalog *cat = NULL;
        int r;

        r = tam_catalog_cached(dir, &c, &cat);
        if (r >= 0)
                *ret = TAKE_PTR(c.catalog);
        tam_catalog_cache_done(&c);
        return r;
}

bool tam_tc_matches(const TamTc *tc, const TeepSuitComponentId *id) {
        return teep_suit_component_id_equal(&tc->component, id) ||
               (tc->has_manifest_id && teep_suit_component_id_equal(&tc->manifest_id, id));
}

static const TamTc *pick(const TamCatalog *c, const TeepSuitComponentId *id, bool newest,
                         bool install_only) {
        const TamTc *best = NULL;

        if (!c)
                return NULL;
        /* files are in alphabetical order: on a tie the later file wins */
        for (size_t i = 0; i < c->n; i++) {
                const TamTc *tc = &c->tcs[i];
                if (!tam_tc_matches(tc, id) || (install_only && tc->unlink))
                        continue;
                if (!best || (newest ? tc->sequence >= best->sequence : tc->sequence < best->sequence))
                        best = tc;
        }
        return best;
}

const TamTc *tam_catalog_newest(const TamCatalog *c, const TeepSuitComponentId *id) {
        return pick(c, id, true, false);
}

const TamTc *tam_catalog_oldest(const TamCatalog *c, const TeepSuitComponentId *id) {
        return pick(c, id, false, true);
}

const TamTc *tam_catalog_newest_install(const TamCatalog *c, const TeepSuitComponentId *id) {
        return pick(c, id, true, true);
}
