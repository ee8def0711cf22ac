/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-util.c: see tam-util.h */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "tam-util.h"
#include "teep-protocol.h"

int tam_component_parse(const char *text, TamComponent *ret) {
        _cleanup_free_ uint8_t *enc = NULL;
        TamComponent c = {};
        size_t len = 0;
        int r;

        if (!text || !ret)
                return -EINVAL;
        r = teep_suit_component_id_from_string(text, &enc, &len);
        if (r < 0)
                return r;
        r = teep_suit_component_id_decode(TEEP_BUF(enc, len), &c.id, NULL);
        if (r < 0)
                return -EINVAL;
        c.encoded = TAKE_PTR(enc);
        c.encoded_len = len;
        *ret = c;
        return 0;
}

void tam_component_done(TamComponent *c) {
        if (!c)
                return;
        free(c->encoded);
        *c = (TamComponent){};
}

char *tam_component_name(const TeepSuitComponentId *id) {
        char *s = NULL;

        if (!id || teep_suit_component_id_to_string(id->segments, id->n_segments, &s) < 0)
                return NULL;
        return s;
}

int tam_uuid_parse(const char *s, uint8_t ret[16]) {
        uint8_t out[16];
        size_t n = 0;

        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36;) {
                int hi, lo;

                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                        continue;
                }
                hi = unhexchar((unsigned char)s[i]);
                lo = unhexchar((unsigned char)s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[n++] = (uint8_t)(hi << 4 | lo);
                i += 2;
        }
        memcpy(ret, out, sizeof(out));
        return 0;
}

int tam_alg_parse(const char *s, int64_t *ret) {
        static const struct {
                const char *name;
                int64_t alg;
        } names[] = {
                {"ESP256", COSE_ALG_ESP256},
                {"ES256", COSE_ALG_ES256},
                {"Ed25519", COSE_ALG_ED25519},
                {"EdDSA", COSE_ALG_EDDSA},
        };
        char *end;
        long long v;

        if (!s || !*s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i].name) == 0) {
                        *ret = names[i].alg;
                        return 0;
                }
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end || end == s)
                return -EINVAL;
        if (v != COSE_ALG_ESP256 && v != COSE_ALG_ES256 && v != COSE_ALG_ED25519 && v != COSE_ALG_EDDSA)
                return -EINVAL;
        *ret = v;
        return 0;
}

int tam_key_load(const char *path, TeepKey **ret, char *errbuf, size_t errbuf_size) {
        uint8_t *data = NULL;
        TeepError err = {};
        size_t len = 0;
        int r;

        r = read_full_file(path, TAM_KEY_FILE_MAX, &data, &len);
        if (r < 0) {
                if (errbuf)
                        snprintf(errbuf, errbuf_size, "%s: %s", path,
                                 r == -EFBIG ? "too large to be a key" : strerror(-r));
                return r;
        }
        r = teep_key_from_any(ret, data, len, &err);
        /* the file may hold a private key: wipe our copy */
        erase_and_free(data, len);
        if (r < 0 && errbuf)
                snprintf(errbuf, errbuf_size, "%s: not a usable key: %s", path,
                         err.detail[0] ? err.detail : strerror(-r));
        return r;
}

bool tam_sync_writes = true;

int tam_write_state_file(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *copy = strdup(path ?: ""), *spare = NULL;
        _cleanup_close_ int dfd = -1;
        const char *base;
        char *slash;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        if (slash) {
                *slash = '\0';
                base = slash + 1;
                dfd = open(*copy ? copy : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                base = copy;
                dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (!*base || strcmp(base, "-") == 0)
                return -EINVAL;
        if (dfd < 0)
                return -errno;
        if (asprintf(&spare, ".%s.spare", base) < 0)
                return -ENOMEM;
        return write_file_swap_at(dfd, base, spare, data, len, mode, tam_sync_writes);
}

int tam_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (!path || (!data && len > 0))
                return -EINVAL;
        if (strcmp(path, "-") == 0)
                return loop_write(STDOUT_FILENO, data, len);

        if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        r = loop_write(fd, data, len);
        if (r < 0)
                goto fail;
        if (tam_sync_writes && fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (replace)
                r = rename(tmp, path) < 0 ? -errno : 0;
        else {
                r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 ? -errno : 0;
                if (r == -EINVAL || r == -ENOSYS) {
                        /* file systems without RENAME_NOREPLACE: link() refuses to replace too */
                        r = link(tmp, path) < 0 ? -errno : 0;
                        if (r == 0)
                                (void)unlink(tmp);
                }
        }
        if (r < 0)
                goto fail;
        return 0;
fail:
        (void)unlink(tmp);
        return r;
}

bool tam_file_key_equal(const TamFileKey *a, const TamFileKey *b) {
        return a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
               a->mtime.tv_nsec == b->mtime.tv_nsec;
}

void tam_dir_signature_done(TamDirSignature *s) {
        if (!s)
                return;
        free(s->files);
        free(s->pool);
        *s = (TamDirSignature){};
}

bool tam_dir_signature_equal(const TamDirSignature *a, const TamDirSignature *b) {
        if (a->n != b->n || a->error != b->error)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!tam_file_key_equal(&a->files[i].key, &b->files[i].key) ||
                    strcmp(a->files[i].name, b->files[i].name) != 0)
                        return false;
        return true;
}

static int dir_file_compare(const void *a, const void *b) {
        /* what alphasort() compares */
        return strcoll(((const TamDirFile *)a)->name, ((const TamDirFile *)b)->name);
}

int tam_dir_signature(const char *dir, TamDirSignature *ret) {
        _cleanup_(tam_dir_signature_done) TamDirSignature s = {};
        _cleanup_free_ size_t *offsets = NULL; /* of the names in the pool, which moves as it grows */
        size_t files_size = 0, pool_len = 0, pool_size = 0;
        struct dirent *de;
        DIR *d;

        *ret = (TamDirSignature){};
        if (!dir)
                return 0;
        d = opendir(dir);
        if (!d) {
                ret->error = errno;
                return 0;
        }
        for (;;) {
                struct stat st;
                size_t k;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        s.error = errno;
                        break;
                }
                if (de->d_name[0] == '.' || de->d_type == DT_DIR)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (s.n == files_size) {
                        size_t size = files_size ? files_size * 2 : 64;
                        TamDirFile *f = reallocarray(s.files, size, sizeof(*f));
                        size_t *o = f ? reallocarray(offsets, size, sizeof(*o)) : NULL;

                        if (f)
                                s.files = f;
                        if (!o)
                                goto nomem;
                        offsets = o;
                        files_size = size;
                }
                k = strlen(de->d_name) + 1;
                if (pool_len + k > pool_size) {
                        size_t size = pool_size * 2 > pool_len + k ? pool_size * 2 : pool_len + k + 4096;
                        char *p = realloc(s.pool, size);

                        if (!p)
                                goto nomem;
                        s.pool = p;
                        pool_size = size;
                }
                memcpy(s.pool + pool_len, de->d_name, k);
                offsets[s.n] = pool_len;
                s.files[s.n++].key = (TamFileKey){.ino = st.st_ino, .size = st.st_size, .mtime = st.st_mtim};
                pool_len += k;
        }
        closedir(d);
        if (s.error != 0) {
                /* as scandir() fails: no files, and why */
                ret->error = s.error;
                return 0;
        }
        for (size_t i = 0; i < s.n; i++)
                s.files[i].name = s.pool + offsets[i];
        if (s.n > 1)
                qsort(s.files, s.n, sizeof(*s.files), dir_file_compare);
        *ret = s;
        s = (TamDirSignature){};
        return 0;
nomem:
        closedir(d);
        return -ENOMEM;
}

int tam_key_thumbprint_hex(const TeepKey *key, char out[65]) {
        uint8_t tp[32];
        int r;

        r = teep_key_thumbprint(key, tp);
        if (r < 0)
                return r;
        hexstr(tp, sizeof(tp), out);
        return 0;
}

int tam_random_bytes(void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = getrandom(p, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Append w's encoding as a byte string to out (the bstr .cbor wrapping SUIT uses everywhere). */
static void put_wrapped(TeepCborWriter *out, TeepCborWriter *w) {
        uint8_t *b = NULL;
        size_t n = 0;
        int r;

        r = teep_cbor_writer_finish(w, &b, &n);
        if (r < 0) {
                if (out->error == 0)
                        out->error = r;
                return;
        }
        teep_cbor_put_bytes(out, b, n);
        free(b);
}

int tam_suit_envelope_sign_kid(TeepBuf manifest, const TeepKey *key, int64_t alg, const TeepBuf *kid,
                               const TeepSuitPayload *payload, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *wrapped = NULL, *digest = NULL, *sig = NULL;
        size_t wrapped_len = 0, digest_len = 0, sig_len = 0;
        uint8_t md[32];
        TeepCborWriter w, auth;
        int r;

        if (!manifest.ptr || manifest.len == 0 || !key || !ret || !ret_len)
                return -EINVAL;
        if (payload && (!payload->key.ptr || payload->key.len == 0 || !teep_utf8_is_valid(payload->key)))
                return -EINVAL;

        /* The manifest digest covers the bstr-wrapped manifest, head included (SUIT §8.2). */
        teep_cbor_writer_init(&w);
        teep_cbor_put_buf(&w, manifest);
        r = teep_cbor_writer_finish(&w, &wrapped, &wrapped_len);
        if (r < 0)
                return r;
        r = teep_sha256(TEEP_BUF(wrapped, wrapped_len), md);
        if (r < 0)
                return r;

        teep_cbor_writer_init(&w);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_int(&w, COSE_ALG_SHA256);
        teep_cbor_put_bytes(&w, md, sizeof(md));
        r = teep_cbor_writer_finish(&w, &digest, &digest_len);
        if (r < 0)
                return r;

        r = teep_cose_sign1(key, alg, kid, TEEP_BUF(digest, digest_len), true, &sig, &sig_len);
        if (r < 0)
                return r;

        teep_cbor_writer_init(&auth);
        teep_cbor_put_array(&auth, 2);
        teep_cbor_put_bytes(&auth, digest, digest_len);
        teep_cbor_put_bytes(&auth, sig, sig_len);

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, payload ? 3 : 2);
        teep_cbor_put_uint(&w, 2); /* authentication-wrapper */
        put_wrapped(&w, &auth);
        teep_cbor_put_uint(&w, 3); /* manifest */
        teep_cbor_put_raw(&w, TEEP_BUF(wrapped, wrapped_len));
        if (payload) {
                teep_cbor_put_text(&w, (const char *)payload->key.ptr, payload->key.len);
                teep_cbor_put_bytes(&w, payload->data.ptr, payload->data.len);
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
