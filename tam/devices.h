/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devices.h: enrolled device keys (--device-keys) and per-device state (--state-dir) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tam-util.h"
#include "teep-cose.h"

/*
 * A device is enrolled by dropping its public key (PEM, or a COSE_Key in binary or hex) into
 * the device-keys directory; the directory is read again for every message, so a key added
 * while the TAM runs counts from the next message on. A device is known by the RFC 9679
 * thumbprint of its key (lower-case hex), which also names its state files.
 */

#define TAM_DEVICE_KEYS_MAX 1024

typedef struct TamDeviceKeys {
        size_t n;
        TeepKey **keys;
        char **files;
        char (*thumbprints)[65];
} TamDeviceKeys;

/* Load every regular, non-hidden file of dir that holds a key; others are skipped with a
 * warning. A missing directory gives no keys. Returns 0 or -ENOMEM. */
int tam_device_keys_load(const char *dir, TamDeviceKeys **ret);
TamDeviceKeys *tam_device_keys_free(TamDeviceKeys *k);
static inline void tam_device_keys_freep(TamDeviceKeys **k) {
        if (*k)
                *k = tam_device_keys_free(*k);
}
/* Index of the key with this thumbprint, or -ENOENT. */
int tam_device_keys_find(const TamDeviceKeys *k, const char *thumbprint);

/* The keys of dir as tam_device_keys_load() gives them, kept between messages: loaded again
 * only when the directory's files (name, inode, size, modification time) differ from the last
 * load. Each message used to parse every key file (and hash it for its thumbprint). */
typedef struct TamDeviceKeysCache {
        TamDeviceKeys *keys;
        TamDirSignature signature; /* of dir when keys were loaded */
        unsigned loads;            /* how many times the files were read (tests) */
} TamDeviceKeysCache;

/* *ret is the cache's: valid until the next call or tam_device_keys_cache_done(). */
int tam_device_keys_cached(const char *dir, TamDeviceKeysCache *c, const TamDeviceKeys **ret);
void tam_device_keys_cache_done(TamDeviceKeysCache *c);

/* What the TAM believes a device has installed: updated when the device reports Success. */
typedef struct TamInstalled {
        char *component; /* textual name of the TC's component id */
        uint64_t sequence;
        bool has_digest;
        uint8_t digest[32];
} TamInstalled;

typedef struct TamDeviceState {
        char thumbprint[65];
        size_t n;
        TamInstalled *installed;
} TamDeviceState;

/*
 * STATE_DIR/<thumbprint>.state, a text file:
 *   installed COMPONENT SEQUENCE DIGEST-HEX|-
 * A missing file is an empty state; a malformed line is skipped with a warning.
 */
int tam_device_state_load(const char *state_dir, const char *thumbprint, TamDeviceState **ret);
int tam_device_state_save(const char *state_dir, const TamDeviceState *s);
TamDeviceState *tam_device_state_free(TamDeviceState *s);
static inline void tam_device_state_freep(TamDeviceState **s) {
        if (*s)
                *s = tam_device_state_free(*s);
}
const TamInstalled *tam_device_state_find(const TamDeviceState *s, const char *component);
int tam_device_state_set(TamDeviceState *s, const char *component, uint64_t sequence, const uint8_t *digest);
void tam_device_state_remove(TamDeviceState *s, const char *component);

/* STATE_DIR/<thumbprint>.last-update: the last Update sent to the device (replay-update fault). */
int tam_device_last_update_save(const char *state_dir, const char *thumbprint, const uint8_t *data,
                                size_t len);
int tam_device_last_update_load(const char *state_dir, const char *thumbprint, uint8_t **ret,
                                size_t *ret_len);
