/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-util.h: small helpers teep-tam and teep-manifest share: key files, names, atomic writes */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "teep-component.h"
#include "teep-cose.h"
#include "teep-suit.h"

/* Key files are small; anything bigger is not a key. */
#define TAM_KEY_FILE_MAX (64u * 1024u)

/* A component name parsed from its textual form: the encoding owns what the views point into. */
typedef struct TamComponent {
        uint8_t *encoded;
        size_t encoded_len;
        TeepSuitComponentId id; /* views into encoded */
} TamComponent;

/*
 * Parse the textual name of a component (design.md, "Component names") into an identifier.
 * Returns 0, -EINVAL (not a valid name) or -ENOMEM. Free with tam_component_done().
 */
int tam_component_parse(const char *text, TamComponent *ret);
void tam_component_done(TamComponent *c);

/* The textual name of an identifier (free() it), or NULL on failure. */
char *tam_component_name(const TeepSuitComponentId *id);

/* Parse a canonical UUID (8-4-4-4-12 hex, either case) into 16 bytes. Returns 0 or -EINVAL. */
int tam_uuid_parse(const char *s, uint8_t ret[16]);

/*
 * Parse an algorithm name: ESP256, ES256, Ed25519, EdDSA (case-insensitive) or a COSE
 * number. Returns 0 or -EINVAL.
 */
int tam_alg_parse(const char *s, int64_t *ret);

/*
 * Load a key from a file: PEM (public, private or certificate) or a COSE_Key, binary or hex.
 * On failure errbuf says why. Returns 0, -errno from reading, -EBADMSG or -EOPNOTSUPP.
 */
int tam_key_load(const char *path, TeepKey **ret, char *errbuf, size_t errbuf_size);

/*
 * Write data to path atomically (a temporary file in the same directory, fsync, rename) with
 * mode. With replace false an existing path is left alone and -EEXIST returned.
 * path "-" writes to standard output.
 */
int tam_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace);
/* A file of the TAM's own state (per device: what it has installed, the last Update sent),
 * replaced on every session: written through a spare beside it, ".NAME.spare", exchanged with
 * it (write_file_swap_at()), synced unless tam_sync_writes is false. Not for files a user
 * names (teep-manifest's outputs): those get no hidden neighbour. */
int tam_write_state_file(const char *path, const void *data, size_t len, mode_t mode);

/* true (the default): tam_write_file_atomic() fsyncs before its rename, tam_write_state_file()
 * before its exchange and the directory after it. teep-tam --no-sync
 * clears it (bench/run: the TAM's disk is not the device's, and not what is measured). */
extern bool tam_sync_writes;

/* What stat() says of a file that tells a changed one from the same one. */
typedef struct TamFileKey {
        ino_t ino;
        off_t size;
        struct timespec mtime;
} TamFileKey;

typedef struct TamDirFile {
        const char *name; /* points into the signature's pool */
        TamFileKey key;
} TamDirFile;

/* What the files of a directory are now, for the caches that read a directory per message. */
typedef struct TamDirSignature {
        size_t n;
        TamDirFile *files; /* in alphasort() order */
        char *pool;        /* the names */
        int error;         /* errno when the directory could not be read (ENOENT: there is none) */
} TamDirSignature;

/*
 * The regular, non-hidden files of dir (symbolic links followed), each with its name, inode,
 * size and modification time (nanoseconds), in alphasort() order, as scandir() would give
 * them: two signatures are equal when no file was added, removed, renamed or written. One
 * opendir() and one fstatat() per entry: nothing is opened or read. A directory that cannot be
 * read has no files and error set; dir NULL has neither. Returns 0 or -ENOMEM.
 */
int tam_dir_signature(const char *dir, TamDirSignature *ret);
bool tam_dir_signature_equal(const TamDirSignature *a, const TamDirSignature *b);
void tam_dir_signature_done(TamDirSignature *s);
bool tam_file_key_equal(const TamFileKey *a, const TamFileKey *b);

/* Lower-case hex of the key's RFC 9679 thumbprint into out (65 bytes). */
int tam_key_thumbprint_hex(const TeepKey *key, char out[65]);

/* Fill buf with n random bytes from the kernel. Returns 0 or -errno. */
int tam_random_bytes(void *buf, size_t n);

/*
 * Wrap a signed manifest into an envelope like teep_suit_envelope_sign(), but with a chosen
 * kid in the COSE_Sign1's unprotected header (kid NULL = the key's thumbprint, a zero-length
 * kid = none). At most one integrated payload. Returns 0 with a buffer to free(), or the
 * errors of teep_cose_sign1().
 */
int tam_suit_envelope_sign_kid(TeepBuf manifest, const TeepKey *key, int64_t alg, const TeepBuf *kid,
                               const TeepSuitPayload *payload, uint8_t **ret, size_t *ret_len);
