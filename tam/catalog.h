/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* catalog.h: the TAM's Trusted Components: the signed envelopes in the TC directory */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tam-util.h"
#include "teep-component.h"

/*
 * Every *.suit file in the directory is a signed SUIT envelope made by teep-manifest (or any
 * signer). The TAM does not hold the signers' keys and does not need to: the device verifies
 * every envelope. The TAM decodes the manifest without authenticating it
 * (TEEP_SUIT_DECODE_UNAUTHENTICATED) only to learn what it is for: component, manifest
 * component id, sequence number, image digest, and whether it installs or unlinks.
 */

#define TAM_CATALOG_MAX_FILES    1024
#define TAM_CATALOG_MAX_ENVELOPE (64u << 20)

typedef struct TamTc {
        char *file;    /* the file name in the directory */
        uint8_t *data; /* the envelope, as it is sent */
        size_t len;
        TeepSuitComponentId component; /* views into data */
        bool has_manifest_id;
        TeepSuitComponentId manifest_id; /* views into data */
        char *name;                      /* textual name of component */
        char *manifest_name;             /* textual name of manifest_id, or of component */
        uint64_t sequence;
        bool unlink; /* the install sequence unlinks: a signed delete intent */
        bool has_digest;
        uint8_t digest[32]; /* image digest (SHA-256) */
        uint64_t size;      /* image size */
        bool has_uri;
        char *uri; /* install URI ("#tc" for integrated payloads) */
        bool has_integrated;
        size_t integrated_offset; /* offset of the integrated payload's bytes in data */
        size_t integrated_len;
} TamTc;

typedef struct TamCatalog {
        size_t n;
        TamTc *tcs;
} TamCatalog;

/*
 * Load every *.suit in dir (a missing directory is an empty catalog): regular files (or
 * symbolic links to them), not hidden, in alphasort() order, at most TAM_CATALOG_MAX_FILES
 * envelopes. Files that are not envelopes, or hold more than one component, are skipped with
 * a warning. Returns 0 or -ENOMEM.
 */
int tam_catalog_load(const char *dir, TamCatalog **ret);
TamCatalog *tam_catalog_free(TamCatalog *c);
static inline void tam_catalog_freep(TamCatalog **c) {
        if (*c)
                *c = tam_catalog_free(*c);
}

/*
 * The catalog of dir as tam_catalog_load() gives it, kept between messages. Each call takes
 * the directory's signature (tam_dir_signature(): name, inode, size, modification time of
 * every file); when it is the last one's, the catalog is the last one. Otherwise only the
 * *.suit files that are new or whose inode, size or modification time changed are read and
 * decoded again; the other entries are kept as they are. A file that is not an envelope the
 * TAM can serve is remembered so (warned about once) until it changes; one that could not be
 * read at all (permissions, gone meanwhile) is tried again at the next call.
 */
typedef struct TamCatalogCache {
        TamCatalog *catalog;
        TamFileKey *keys; /* keys[i]: of catalog->tcs[i].file when it was decoded */
        size_t n_failed;  /* the *.suit files that did not decode, in directory order */
        char **failed;
        TamFileKey *failed_keys;
        bool again; /* a file could not be read: go through the files at the next call */
        TamDirSignature signature;
        unsigned loads;   /* how many times the files were gone through: a changed directory */
        unsigned decodes; /* how many envelopes were read and decoded (tests) */
} TamCatalogCache;

/* *ret is the cache's: valid until the next call or tam_catalog_cache_done(). Returns 0 or
 * -ENOMEM (the cache is then empty, and the next call starts over). */
int tam_catalog_cached(const char *dir, TamCatalogCache *c, const TamCatalog **ret);
void tam_catalog_cache_done(TamCatalogCache *c);

/* True if id names tc: its component or its manifest component id. */
bool tam_tc_matches(const TamTc *tc, const TeepSuitComponentId *id);

/* The entry with the highest (newest) or lowest sequence number for id, or NULL. Ties go to
 * the file name that sorts last, so the choice is stable. */
const TamTc *tam_catalog_newest(const TamCatalog *c, const TeepSuitComponentId *id);
const TamTc *tam_catalog_oldest(const TamCatalog *c, const TeepSuitComponentId *id);
/* The newest *install* envelope for id (skipping unlink intents), or NULL. */
const TamTc *tam_catalog_newest_install(const TamCatalog *c, const TeepSuitComponentId *id);
