/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* catalog.h: the TAM's Trusted Components: the signed envelopes in the TC directory */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * Load every *.suit in dir (a missing directory is an empty catalog). Files that are not
 * envelopes, or hold more than one component, are skipped with a warning.
 * Returns 0 or -ENOMEM.
 */
int tam_catalog_load(const char *dir, TamCatalog **ret);
TamCatalog *tam_catalog_free(TamCatalog *c);
static inline void tam_catalog_freep(TamCatalog **c) {
        if (*c)
                *c = tam_catalog_free(*c);
}

/* True if id names tc: its component or its manifest component id. */
bool tam_tc_matches(const TamTc *tc, const TeepSuitComponentId *id);

/* The entry with the highest (newest) or lowest sequence number for id, or NULL. Ties go to
 * the file name that sorts last, so the choice is stable. */
const TamTc *tam_catalog_newest(const TamCatalog *c, const TeepSuitComponentId *id);
const TamTc *tam_catalog_oldest(const TamCatalog *c, const TeepSuitComponentId *id);
/* The newest *install* envelope for id (skipping unlink intents), or NULL. */
const TamTc *tam_catalog_newest_install(const TamCatalog *c, const TeepSuitComponentId *id);
