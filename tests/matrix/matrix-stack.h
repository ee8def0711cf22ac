/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* matrix-stack.h: what the matrix and crash tests share: TCs signed in the test, snapshots, teepctl */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Sign a TC for the stack's catalog dir: component (textual name) at sequence with payload
 * content, integrated or (uri) served by teep-tam from tam/payloads/FILE.bin.
 * key_file NULL = the stack's TC signer. Writes DIR/FILE.suit atomically.
 * ret_digest: SHA-256 (hex) of the payload. Returns 0 or -errno. */
typedef struct MatrixTc {
        const char *file;      /* base name: FILE.suit, FILE.bin */
        const char *component; /* textual name */
        uint64_t sequence;
        const char *content;
        bool uri;
        int64_t size_delta;    /* signed image-size = real + size_delta */
        bool unknown_command;  /* install sequence starts with SUIT command 99 */
        bool rogue_signer;     /* signed by a fresh key */
        bool tam_signer;       /* signed by the TAM's key */
        bool flip_signature;   /* one bit of the manifest signature flipped */
        bool other_vendor;     /* a vendor id the device does not have */
} MatrixTc;

int matrix_make_tc(const Stack *s, const char *dir, const MatrixTc *tc, char ret_digest[65]);

/* Names, modes and SHA-256 of every file under the store and the agent's state directory,
 * one per line, sorted (malloc'd). temp_files counts names that look temporary (".tmp", "~",
 * starting with '.') in the store. */
char *matrix_snapshot(const Stack *s, unsigned *ret_temp_files);

/* teepctl as the app user with argv (NULL-terminated, without "teepctl"); the job's error
 * name (after the last '.', "" on success) into err_name. Returns teepctl's exit status. */
int matrix_teepctl(const Stack *s, const char *const *args, unsigned timeout_sec, char *err_name, size_t n,
                   char **ret_out);

/* Run a shell-free command as the caller; 0 on exit 0. */
int matrix_run(const char *const *argv);
