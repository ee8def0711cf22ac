/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* matrix.h: the malicious-TAM matrix as data: one row per hostile TAM behaviour and what the stack must do */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What the test asks of the stack while teep-tam misbehaves. */
typedef enum MatrixAction {
        MATRIX_REQUEST,      /* teepctl request COMPONENT (a TC the device does not have yet) */
        MATRIX_POLICY_CHECK, /* teepctl policy-check (the device holds the demo TC, sequence 2) */
} MatrixAction;

/* Catalogs the driver prepares (the TAM's --tc-dir for a case). */
typedef enum MatrixCatalog {
        MATRIX_CATALOG_BASE,      /* demo TC seq 1 and 2, matrix/fresh, matrix/fresh-uri, and the case's own TC */
        MATRIX_CATALOG_EQUAL_SEQ, /* only demo TC seq 2 with another payload */
} MatrixCatalog;

#define MATRIX_NO_TEEP_ERROR (-1)

typedef struct MatrixCase {
        const char *name;
        const char *what;           /* the hostile behaviour, for the table */
        const char *tam_args[6];    /* extra teep-tam arguments (NULL-terminated); "@SIGNER" = the TC signer key */
        MatrixCatalog catalog;
        bool fresh_tam_state;       /* the TAM forgets what it installed (so it offers by digest) */
        MatrixAction action;
        const char *component;      /* MATRIX_REQUEST: what is requested */
        const char *error;          /* the job's D-Bus error name, without org.teepkit.Error. */
        int teep_err;               /* err-code of the TEEP Error the TAM receives, or MATRIX_NO_TEEP_ERROR */
        bool unauthenticated;       /* the agent answers it as unauthenticated input (10 a minute) */
        const char *stored_as;      /* not refused: installed as this one file in the store */
        const char *notes;
} MatrixCase;

extern const MatrixCase matrix_cases[];
extern const size_t matrix_n_cases;

/* The crafted Trusted Components of the base catalog (component names). */
#define MATRIX_FRESH            "matrix/fresh"
#define MATRIX_FRESH_URI        "matrix/fresh-uri"
#define MATRIX_SIZE_MISMATCH    "matrix/size-mismatch"
#define MATRIX_UNKNOWN_COMMAND  "matrix/unknown-command"
#define MATRIX_SIGNED_BY_TAM    "matrix/signed-by-tam"
#define MATRIX_ROGUE_SIGNER     "matrix/rogue-signer"
#define MATRIX_BAD_MANIFEST_SIG "matrix/bad-manifest-signature"
#define MATRIX_WRONG_VENDOR     "matrix/wrong-vendor"

/* The table as docs/malicious-tam.md shows it (markdown, one line per case). */
void matrix_print_table(FILE *f);
