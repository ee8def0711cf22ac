/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* catalog.c: see catalog.h */

#include <dirent.h>
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

static int tc_load(const char *dir, const char *file, TamTc *ret) {
        _cleanup_(teep_suit_envelope_freep) TeepSuitEnvelope *env = NULL;
        _cleanup_(teep_suit_manifest_freep) TeepSuitManifest *m = NULL;
        _cleanup_free_ char *path = NULL;
        TamTc tc = {};
        TeepError err = {};
        int r;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        r = read_full_file(path, TAM_CATALOG_MAX_ENVELOPE, &tc.data, &tc.len);
        if (r < 0)
                return log_warning_errno(r, "Skipping %s: %s", path, strerror(-r));
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

int tam_catalog_load(const char *dir, TamCatalog **ret) {
        _cleanup_(tam_catalog_freep) TamCatalog *c = NULL;
        struct dirent **names = NULL;
        int n, r = 0;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        n = dir ? scandir(dir, &names, NULL, alphasort) : 0;
        if (n < 0) {
                if (errno != ENOENT)
                        log_warning("Cannot read the TC directory %s: %s", dir, strerror(errno));
                *ret = TAKE_PTR(c);
                return 0;
        }
        c->tcs = calloc(n > 0 ? (size_t)n : 1, sizeof(TamTc));
        if (!c->tcs)
                r = -ENOMEM;
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;

                if (r == 0 && name[0] != '.' && has_suffix(name, ".suit") && c->n < TAM_CATALOG_MAX_FILES) {
                        int k = tc_load(dir, name, &c->tcs[c->n]);
                        if (k == -ENOMEM)
                                r = k;
                        else if (k >= 0)
                                c->n++;
                }
                free(names[i]);
        }
        free(names);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
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
