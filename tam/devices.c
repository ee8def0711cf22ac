/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devices.c: see devices.h */

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "devices.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "tam-util.h"

#define STATE_FILE_MAX  (1u << 20)
#define UPDATE_FILE_MAX (128u << 20)

TamDeviceKeys *tam_device_keys_free(TamDeviceKeys *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n; i++) {
                teep_key_free(k->keys[i]);
                free(k->files[i]);
        }
        free(k->keys);
        free(k->files);
        free(k->thumbprints);
        free(k);
        return NULL;
}

int tam_device_keys_load(const char *dir, TamDeviceKeys **ret) {
        _cleanup_(tam_device_keys_freep) TamDeviceKeys *k = NULL;
        struct dirent **names = NULL;
        int n, r = 0;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        n = dir ? scandir(dir, &names, NULL, alphasort) : 0;
        if (n < 0) {
                if (errno != ENOENT)
                        log_warning("Cannot read the device key directory %s: %s", dir, strerror(errno));
                *ret = TAKE_PTR(k);
                return 0;
        }
        k->keys = calloc(n > 0 ? (size_t)n : 1, sizeof(TeepKey *));
        k->files = calloc(n > 0 ? (size_t)n : 1, sizeof(char *));
        k->thumbprints = calloc(n > 0 ? (size_t)n : 1, sizeof(*k->thumbprints));
        if (!k->keys || !k->files || !k->thumbprints)
                r = -ENOMEM;
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                _cleanup_free_ char *path = NULL;
                TeepKey *key = NULL;
                struct stat st;
                char errbuf[512];

                if (r < 0 || name[0] == '.' || k->n >= TAM_DEVICE_KEYS_MAX)
                        goto next;
                if (asprintf(&path, "%s/%s", dir, name) < 0) {
                        r = -ENOMEM;
                        goto next;
                }
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        goto next;
                if (tam_key_load(path, &key, errbuf, sizeof(errbuf)) < 0) {
                        log_warning("Skipping device key %s", errbuf);
                        goto next;
                }
                k->files[k->n] = strdup(name);
                if (!k->files[k->n] || tam_key_thumbprint_hex(key, k->thumbprints[k->n]) < 0) {
                        free(k->files[k->n]);
                        k->files[k->n] = NULL;
                        teep_key_free(key);
                        r = -ENOMEM;
                        goto next;
                }
                k->keys[k->n++] = key;
        next:
                free(names[i]);
        }
        free(names);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(k);
        return 0;
}

int tam_device_keys_cached(const char *dir, TamDeviceKeysCache *c, const TamDeviceKeys **ret) {
        _cleanup_(tam_dir_signature_done) TamDirSignature sig = {};
        TamDeviceKeys *keys = NULL;
        int r;

        r = tam_dir_signature(dir, &sig);
        if (r < 0)
                return r;
        if (c->keys && tam_dir_signature_equal(&sig, &c->signature)) {
                *ret = c->keys;
                return 0;
        }
        /* a file changed between the signature and the load is seen again at the next call:
         * its signature will not match this one */
        r = tam_device_keys_load(dir, &keys);
        if (r < 0)
                return r;
        tam_device_keys_free(c->keys);
        tam_dir_signature_done(&c->signature);
        c->keys = keys;
        c->signature = sig;
        sig = (TamDirSignature){};
        c->loads++;
        *ret = c->keys;
        return 0;
}

void tam_device_keys_cache_done(TamDeviceKeysCache *c) {
        tam_device_keys_free(c->keys);
        tam_dir_signature_done(&c->signature);
        *c = (TamDeviceKeysCache){};
}

int tam_device_keys_find(const TamDeviceKeys *k, const char *thumbprint) {
        for (size_t i = 0; k && i < k->n; i++)
                if (strcmp(k->thumbprints[i], thumbprint) == 0)
                        return (int)i;
        return -ENOENT;
}

TamDeviceState *tam_device_state_free(TamDeviceState *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                free(s->installed[i].component);
        free(s->installed);
        free(s);
        return NULL;
}

static bool thumbprint_valid(const char *tp) {
        if (!tp || strlen(tp) != 64)
                return false;
        return strspn(tp, "0123456789abcdef") == 64;
}

static int state_path(const char *state_dir, const char *thumbprint, const char *suffix, char **ret) {
        if (!state_dir || !thumbprint_valid(thumbprint))
                return -EINVAL;
        return asprintf(ret, "%s/%s%s", state_dir, thumbprint, suffix) < 0 ? -ENOMEM : 0;
}

int tam_device_state_load(const char *state_dir, const char *thumbprint, TamDeviceState **ret) {
        _cleanup_(tam_device_state_freep) TamDeviceState *s = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        char *line, *save = NULL;
        unsigned lineno = 0;
        int r;

        r = state_path(state_dir, thumbprint, ".state", &path);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        memcpy(s->thumbprint, thumbprint, 65);
        r = read_full_file(path, STATE_FILE_MAX, &data, &len);
        if (r == -ENOENT) {
                *ret = TAKE_PTR(s);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %s", path, strerror(-r));

        for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char name[4096], hex[80];
                uint64_t seq;
                uint8_t *digest = NULL;
                size_t dlen = 0;

                lineno++;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                if (sscanf(line, "installed %4095s %" SCNu64 " %79s", name, &seq, hex) != 3) {
                        log_warning("%s:%u: cannot parse, line skipped", path, lineno);
                        continue;
                }
                if (strcmp(hex, "-") != 0 && (unhex(hex, strlen(hex), &digest, &dlen) < 0 || dlen != 32)) {
                        free(digest);
                        log_warning("%s:%u: bad digest, line skipped", path, lineno);
                        continue;
                }
                r = tam_device_state_set(s, name, seq, digest);
                free(digest);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int tam_device_state_save(const char *state_dir, const TamDeviceState *s) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = state_path(state_dir, s->thumbprint, ".state", &path);
        if (r < 0)
                return r;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# teep-tam: what device %s has installed (component sequence digest)\n", s->thumbprint);
        for (size_t i = 0; i < s->n; i++) {
                char hex[65] = "-";
                if (s->installed[i].has_digest)
                        hexstr(s->installed[i].digest, 32, hex);
                fprintf(f, "installed %s %" PRIu64 " %s\n", s->installed[i].component,
                        s->installed[i].sequence, hex);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        r = tam_write_state_file(path, text, size, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %s", path, strerror(-r));
        return 0;
}

const TamInstalled *tam_device_state_find(const TamDeviceState *s, const char *component) {
        for (size_t i = 0; s && i < s->n; i++)
                if (strcmp(s->installed[i].component, component) == 0)
                        return &s->installed[i];
        return NULL;
}

int tam_device_state_set(TamDeviceState *s, const char *component, uint64_t sequence,
                         const uint8_t *digest) {
        TamInstalled *e = (TamInstalled *)tam_device_state_find(s, component);

        if (!e) {
                TamInstalled *n = realloc(s->installed, (s->n + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                s->installed = n;
                e = &s->installed[s->n];
                *e = (TamInstalled){.component = strdup(component)};
                if (!e->component)
                        return -ENOMEM;
                s->n++;
        }
        e->sequence = sequence;
        e->has_digest = digest != NULL;
        if (digest)
                memcpy(e->digest, digest, 32);
        return 0;
}

void tam_device_state_remove(TamDeviceState *s, const char *component) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->installed[i].component, component) == 0) {
                        free(s->installed[i].component);
                        memmove(&s->installed[i], &s->installed[i + 1],
                                (s->n - i - 1) * sizeof(*s->installed));
                        s->n--;
                        return;
                }
}

int tam_device_last_update_save(const char *state_dir, const char *thumbprint, const uint8_t *data,
                                size_t len) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = state_path(state_dir, thumbprint, ".last-update", &path);
        if (r < 0)
                return r;
        return tam_write_state_file(path, data, len, 0644);
}

int tam_device_last_update_load(const char *state_dir, const char *thumbprint, uint8_t **ret,
                                size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = state_path(state_dir, thumbprint, ".last-update", &path);
        if (r < 0)
                return r;
        return read_full_file(path, UPDATE_FILE_MAX, ret, ret_len);
}
