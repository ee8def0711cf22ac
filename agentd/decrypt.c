/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* decrypt.c: encrypted SUIT payloads: decrypted here, with the device key, and nowhere else */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "agent-internal.h"
#include "decrypt.h"
#include "fileio.h"
#include "macro.h"
#include "teep-encrypt.h"

/*
 * The device key doubles as the key-agreement key (docs/protocol-decisions.md, Q18): the TEEP
 * draft's App. E Ex.3 encrypts to the agent's own P-256 key, and design.md gives the device one
 * key, published through GetDeviceKey. A device with an Ed25519 key, or a key kept in a token,
 * cannot receive encrypted payloads (TEEP_REASON_ENC_RECIPIENT, -ENOKEY).
 */

#define CHUNK (64 * 1024)

uint8_t *agent_plaintext_free(uint8_t *p, size_t len) {
        if (p) {
                explicit_bzero(p, len);
                free(p);
        }
        return NULL;
}

int agent_decrypt(Agent *a, TeepBuf encryption_info, TeepBuf ciphertext, uint8_t **ret, size_t *ret_len, TeepError *err) {
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        uint8_t *out = NULL;
        size_t o = 0, n = 0, cap;
        int r;

        if (!a->device_key)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_ENC_RECIPIENT, "no device key loaded");
        r = teep_encryption_info_decode(encryption_info, &info, err);
        if (r < 0)
                return r;
        r = teep_decryptor_new(&d, &info, a->device_key, ciphertext.len, err);
        if (r < 0)
                return r;
        /* the plaintext is never longer than the ciphertext, plus one pending block */
        cap = ciphertext.len + 16;
        out = malloc(cap);
        if (!out) {
                teep_decryptor_free(d);
                return -ENOMEM;
        }
        for (size_t i = 0; i < ciphertext.len && r >= 0; i += CHUNK) {
                size_t take = ciphertext.len - i < CHUNK ? ciphertext.len - i : CHUNK;
                r = teep_decryptor_update(d, ciphertext.ptr + i, take, out + o, &n, err);
                if (r >= 0)
                        o += n;
        }
        if (r >= 0)
                r = teep_decryptor_finish(d, out + o, &n, err);
        teep_decryptor_free(d);
        if (r < 0) {
                agent_plaintext_free(out, cap);
                return r;
        }
        *ret = out;
        *ret_len = o + n;
        return 0;
}

int agent_decrypt_fd(Agent *a, TeepBuf encryption_info, int ct_fd, uint64_t ct_len, int *ret_fd, uint64_t *ret_len,
                     uint8_t ret_sha[32], TeepError *err) {
        _cleanup_close_ int out_fd = -1;
        TeepEncryptionInfo info;
        TeepDecryptor *d = NULL;
        gnutls_hash_hd_t h = NULL;
        uint8_t *in = NULL, *out = NULL;
        uint64_t total = 0;
        off_t off = 0;
        size_t n = 0;
        int r;

        if (!a->device_key)
                return teep_error_set(err, -ENOKEY, TEEP_REASON_ENC_RECIPIENT, "no device key loaded");
        r = teep_encryption_info_decode(encryption_info, &info, err);
        if (r < 0)
                return r;
        r = teep_decryptor_new(&d, &info, a->device_key, ct_len, err);
        if (r < 0)
                return r;
        in = malloc(CHUNK);
        out = malloc(CHUNK + 16);
        out_fd = memfd_create("teep-plaintext", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (!in || !out)
                r = -ENOMEM;
        else if (out_fd < 0)
                r = -errno;
        else if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
                h = NULL;
                r = -EIO;
        }
        while (r >= 0 && (uint64_t)off < ct_len) {
                size_t want = ct_len - (uint64_t)off > CHUNK ? CHUNK : (size_t)(ct_len - (uint64_t)off);
                ssize_t k = pread(ct_fd, in, want, off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : -EIO;
                        break;
                }
                off += k;
                r = teep_decryptor_update(d, in, (size_t)k, out, &n, err);
                if (r >= 0 && n > 0) {
                        r = loop_write(out_fd, out, n);
                        if (r >= 0 && gnutls_hash(h, out, n) < 0)
                                r = -EIO;
                        total += n;
                }
        }
        if (r >= 0)
                r = teep_decryptor_finish(d, out, &n, err);
        if (r >= 0 && n > 0) {
                r = loop_write(out_fd, out, n);
                if (r >= 0 && gnutls_hash(h, out, n) < 0)
                        r = -EIO;
                total += n;
        }
        teep_decryptor_free(d);
        if (h)
                gnutls_hash_deinit(h, r >= 0 ? ret_sha : NULL);
        free(in);
        agent_plaintext_free(out, CHUNK + 16);
        if (r >= 0 && fcntl(out_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r >= 0 && lseek(out_fd, 0, SEEK_SET) < 0)
                r = -errno;
        if (r < 0)
                return r; /* the memfd (unauthenticated plaintext) goes with its descriptor */
        *ret_fd = TAKE_FD(out_fd);
        *ret_len = total;
        return 0;
}
