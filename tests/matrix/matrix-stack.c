/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* matrix-stack.c: see matrix-stack.h */
#include "matrix-stack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "teep-cbor.h"
#include "teep-component.h"
#include "teep-cose.h"
#include "teep-suit.h"

static int env_value(const Stack *s, const char *key, char *out, size_t n) {
        _cleanup_free_ uint8_t *text = NULL;
        char pat[128];
        const char *p;
        size_t len;
        int r;

        r = read_full_file(stack_path(s, "env"), 64 * 1024, &text, &len);
        if (r < 0)
                return r;
        snprintf(pat, sizeof(pat), "export %s=", key);
        p = strstr((char *)text, pat);
        if (!p)
                return -ENOENT;
        p += strlen(pat);
        snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
        return 0;
}

static int uuid_bytes(const char *text, uint8_t out[16]) {
        size_t n = 0;

        for (const char *p = text; *p; p++) {
                int hi, lo;
                if (*p == '-')
                        continue;
                if (n == 16 || (hi = unhexchar(p[0])) < 0 || !p[1] || (lo = unhexchar(p[1])) < 0)
                        return -EINVAL;
                out[n++] = (uint8_t)(hi << 4 | lo);
                p++;
        }
        return n == 16 ? 0 : -EINVAL;
}

static int load_key(const char *path, TeepKey **ret) {
        _cleanup_free_ uint8_t *pem = NULL;
        size_t len;
        int r = read_full_file(path, 64 * 1024, &pem, &len);

        return r < 0 ? r : teep_key_from_pem(ret, pem, len, NULL);
}

static int write_file(const char *path, const void *data, size_t len) {
        char tmp[4096];
        _cleanup_close_ int fd = -EBADF;

        snprintf(tmp, sizeof(tmp), "%s.part", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (loop_write(fd, data, len) < 0 || fchmod(fd, 0644) < 0)
                return -EIO;
        return rename(tmp, path) < 0 ? -errno : 0;
}

/* The manifest with [99, 15] put in front of the install sequence (key 20). */
static int add_unknown_command(const uint8_t *m, size_t len, uint8_t **ret, size_t *ret_len) {
        TeepCborReader r;
        TeepCborWriter w;
        size_t n;
        int k;

        teep_cbor_reader_init(&r, TEEP_BUF(m, len));
        k = teep_cbor_read_map(&r, &n, NULL);
        if (k < 0)
                return k;
        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, n);
        for (size_t i = 0; i < n; i++) {
                uint64_t key;
                TeepBuf raw;

                k = teep_cbor_read_uint(&r, &key, NULL);
                if (k < 0)
                        goto fail;
                teep_cbor_put_uint(&w, key);
                if (key == 20) {
                        TeepBuf seq;
                        TeepCborReader sr;
                        TeepCborWriter sw;
                        size_t cnt;
                        _cleanup_free_ uint8_t *newseq = NULL;
                        size_t newlen = 0;

                        k = teep_cbor_read_bytes(&r, &seq, NULL);
                        if (k < 0)
                                goto fail;
                        teep_cbor_reader_init(&sr, seq);
                        k = teep_cbor_read_array(&sr, &cnt, NULL);
                        if (k < 0)
                                goto fail;
                        teep_cbor_writer_init(&sw);
                        teep_cbor_put_array(&sw, cnt + 2);
                        teep_cbor_put_uint(&sw, 99);
                        teep_cbor_put_uint(&sw, 15);
                        teep_cbor_put_raw(&sw, TEEP_BUF(sr.pos, (size_t)(sr.end - sr.pos)));
                        k = teep_cbor_writer_finish(&sw, &newseq, &newlen);
                        if (k < 0)
                                goto fail;
                        teep_cbor_put_bytes(&w, newseq, newlen);
                        continue;
                }
                k = teep_cbor_skip(&r, &raw);
                if (k < 0)
                        goto fail;
                teep_cbor_put_raw(&w, raw);
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
fail:
        teep_cbor_writer_reset(&w);
        return k;
}

int matrix_make_tc(const Stack *s, const char *dir_in, const MatrixTc *tc, char ret_digest[65]) {
        _cleanup_(teep_key_freep) TeepKey *key = NULL;
        _cleanup_free_ uint8_t *id_raw = NULL, *manifest = NULL, *manifest2 = NULL, *env = NULL;
        char vendor_text[64], class_text[64], payload_path[1024], out[1024], uri[512];
        uint8_t vendor[16], class[16], digest[32];
        size_t id_len, manifest_len = 0, manifest2_len = 0, env_len = 0, content_len = strlen(tc->content);
        TeepSuitComponentId id;
        TeepSuitPayload payload;
        TeepSuitBuild b;
        char dir[512];
        int r;

        snprintf(dir, sizeof(dir), "%s", dir_in); /* it may be one of stack_path()'s buffers */
        r = env_value(s, "TEEP_VENDOR_ID", vendor_text, sizeof(vendor_text));
        if (r >= 0)
                r = env_value(s, "TEEP_CLASS_ID", class_text, sizeof(class_text));
        if (r >= 0)
                r = uuid_bytes(vendor_text, vendor);
        if (r >= 0)
                r = uuid_bytes(class_text, class);
        if (r < 0)
                return r;
        if (tc->other_vendor)
                vendor[0] ^= 0xff;
        r = teep_suit_component_id_from_string(tc->component, &id_raw, &id_len);
        if (r >= 0)
                r = teep_suit_component_id_decode(TEEP_BUF(id_raw, id_len), &id, NULL);
        if (r < 0)
                return r;

        if (tc->rogue_signer)
                r = teep_key_generate(&key, TEEP_KEY_P256);
        else
                r = load_key(stack_path(s, tc->tam_signer ? "tam/tam.pem" : "tam/signer.pem"), &key);
        if (r < 0)
                return r;

        r = teep_sha256(TEEP_BUF(tc->content, content_len), digest);
        if (r < 0)
                return r;
        if (ret_digest)
                hexstr(digest, sizeof(digest), ret_digest);

        b = (TeepSuitBuild){
                .component_id = &id,
                .sequence_number = tc->sequence,
                .vendor_id = TEEP_BUF(vendor, 16),
                .class_id = TEEP_BUF(class, 16),
                .image_digest = TEEP_BUF(digest, 32),
                .image_size = (uint64_t)((int64_t)content_len + tc->size_delta),
                .uninstall_unlink = true,
        };
        if (tc->uri) {
                const char *slash = strrchr(s->tam_uri, '/');
                snprintf(payload_path, sizeof(payload_path), "%s/%s.bin", stack_path(s, "tam/payloads"), tc->file);
                r = write_file(payload_path, tc->content, content_len);
                if (r < 0)
                        return r;
                snprintf(uri, sizeof(uri), "%.*s/payload/%s.bin", (int)(slash - s->tam_uri), s->tam_uri, tc->file);
                b.uri = uri;
        } else {
                b.uri = "#tc";
                b.payload = TEEP_BUF(tc->content, content_len);
        }
        r = teep_suit_manifest_encode_install(&b, &manifest, &manifest_len);
        if (r < 0)
                return r;
        if (tc->unknown_command) {
                r = add_unknown_command(manifest, manifest_len, &manifest2, &manifest2_len);
                if (r < 0)
                        return r;
                free(manifest);
                manifest = TAKE_PTR(manifest2);
                manifest_len = manifest2_len;
        }
        payload = (TeepSuitPayload){ .key = TEEP_BUF("#tc", 3), .data = TEEP_BUF(tc->content, content_len) };
        r = teep_suit_envelope_sign(TEEP_BUF(manifest, manifest_len), key, 0, &payload, tc->uri ? 0 : 1, &env, &env_len);
        if (r < 0)
                return r;
        if (tc->flip_signature) {
                /* {2: bstr(auth), ...}: the auth wrapper ends with the COSE_Sign1's signature */
                TeepCborReader rd;
                TeepBuf auth;
                size_t n;
                uint64_t k;

                teep_cbor_reader_init(&rd, TEEP_BUF(env, env_len));
                if (teep_cbor_read_map(&rd, &n, NULL) < 0 || teep_cbor_read_uint(&rd, &k, NULL) < 0 || k != 2 ||
                    teep_cbor_read_bytes(&rd, &auth, NULL) < 0 || auth.len == 0)
                        return -EBADMSG;
                env[(size_t)(auth.ptr - env) + auth.len - 1] ^= 0x01;
        }
        snprintf(out, sizeof(out), "%s/%s.suit", dir, tc->file);
        return write_file(out, env, env_len);
}

/* ---- snapshots ---- */

static char **snap_lines;
static size_t snap_n, snap_cap, snap_temp;
static size_t snap_prefix;
static const char *snap_tag;

static int snap_one(const char *path, const struct stat *st, int type, struct FTW *f) {
        char line[4400], digest[65] = "-";
        const char *base = path + f->base;

        /* the installer's undo records (.teep-undo-*, .teep-added-*) are not installed state: they
         * live from a change until the agent's Discard, which it does not wait for */
        if (strcmp(snap_tag, "tc") == 0 && f->level > 0 &&
            (strncmp(base, ".teep-undo-", 11) == 0 || strncmp(base, ".teep-added-", 12) == 0))
                return 0;
        /* nor is List's digest cache (.teep-digests), written when a List finds files older than
         * 2 s: a cache of what the TC files hold, which the snapshot hashes itself */
        if (strcmp(snap_tag, "tc") == 0 && f->level == 1 && strcmp(base, ".teep-digests") == 0)
                return 0;
        /* the agent's state spare (write_file_swap_at()) holds an older state, never read: what
         * the agent knows is in its state file */
        if (strcmp(snap_tag, "agent") == 0 && f->level == 1 && strcmp(base, ".state.spare") == 0)
                return 0;
        if (type == FTW_F && file_sha256_hex(path, digest) < 0)
                snprintf(digest, sizeof(digest), "unreadable");
        if (strcmp(snap_tag, "tc") == 0 && f->level > 0 &&
            (base[0] == '.' || strstr(base, ".tmp") || base[strlen(base) - 1] == '~'))
                snap_temp++;
        snprintf(line, sizeof(line), "%s:%s %c %04o %lld %s", snap_tag, path + snap_prefix,
                 type == FTW_D ? 'd' : type == FTW_F ? 'f' : type == FTW_SL ? 'l' : '?', (unsigned)(st->st_mode & 07777),
                 type == FTW_F ? (long long)st->st_size : 0LL, digest);
        if (snap_n == snap_cap) {
                size_t cap = snap_cap ? 2 * snap_cap : 64;
                char **n = realloc(snap_lines, cap * sizeof(char *));
                if (!n)
                        return -1;
                snap_lines = n;
                snap_cap = cap;
        }
        snap_lines[snap_n] = strdup(line);
        if (!snap_lines[snap_n])
                return -1;
        snap_n++;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char *matrix_snapshot(const Stack *s, unsigned *ret_temp_files) {
        static const struct {
                const char *tag, *rel;
        } dirs[] = { { "tc", "var/lib/teepkit/tc" }, { "agent", "var/lib/teepkit/agent" } };
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        snap_n = 0;
        snap_temp = 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                const char *root = stack_path(s, dirs[i].rel);
                snap_prefix = strlen(root);
                snap_tag = dirs[i].tag;
                (void)nftw(root, snap_one, 16, FTW_PHYS);
        }
        qsort(snap_lines, snap_n, sizeof(char *), cmp_str);
        f = open_memstream(&text, &len);
        for (size_t i = 0; i < snap_n; i++) {
                if (f)
                        fprintf(f, "%s\n", snap_lines[i]);
                free(snap_lines[i]);
        }
        if (f)
                fclose(f);
        if (ret_temp_files)
                *ret_temp_files = (unsigned)snap_temp;
        return text;
}

int matrix_teepctl(const Stack *s, const char *const *args, unsigned timeout_sec, char *err_name, size_t n,
                   char **ret_out) {
        const char *argv[16];
        _cleanup_free_ char *out = NULL, *err = NULL;
        const char *t = getenv("TEEPCTL"), *p;
        size_t k = 0;
        int r;

        argv[k++] = t && *t ? t : "teepctl";
        for (size_t i = 0; args[i] && k < ELEMENTSOF(argv) - 1; i++)
                argv[k++] = args[i];
        argv[k] = NULL;
        r = run_cmd_as(s->uid_app, s->gid_app, argv, timeout_sec, &out, &err);
        if (err_name) {
                err_name[0] = '\0';
                p = out ? strstr(out, "\"name\":\"") : NULL;
                if (p) {
                        const char *e, *dot;
                        p += 8;
                        e = strchr(p, '"');
                        if (e) {
                                dot = memrchr(p, '.', (size_t)(e - p));
                                if (dot)
                                        p = dot + 1;
                                snprintf(err_name, n, "%.*s", (int)(e - p), p);
                        }
                } else if (r != 0)
                        snprintf(err_name, n, "exit-%d", r);
        }
        if (ret_out) {
                size_t ol = out ? strlen(out) : 0, el = err ? strlen(err) : 0;
                char *both = malloc(ol + el + 2);
                if (both)
                        snprintf(both, ol + el + 2, "%s%s", out ?: "", err ?: "");
                *ret_out = both;
        }
        return r;
}

int matrix_run(const char *const *argv) {
        return run_cmd_as(geteuid(), getegid(), argv, 60, NULL, NULL);
}
