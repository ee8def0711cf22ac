/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* keys.c: the device key (created once, never leaves the process), TAM trust anchors, TC signers */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-internal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "teep-eat.h"

#define DEVICE_KEY_FILE "device-key.pem"
#define KEY_FILE_MAX (64 * 1024)

int agent_load_device_key(Agent *a) {
        _cleanup_free_ uint8_t *pem = NULL;
        size_t len = 0;
        TeepError err = {};
        TeepKey *key = NULL;
        int r;

        if (a->device_key)
                return 0;
        r = agent_open_state_dir(a);
        if (r < 0)
                return log_error_errno(r, "cannot use state directory %s: %s", a->cfg.state_dir, strerror(-r));
        if (a->cfg.key_uri) {
                r = agent_load_pkcs11_key(a, &key);
                if (r >= 0)
                        r = teep_key_thumbprint(key, a->device_kid);
                if (r < 0) {
                        teep_key_free(key);
                        return r;
                }
                a->device_key = key;
                return 0;
        }

        r = read_file_at(a->state_fd, DEVICE_KEY_FILE, KEY_FILE_MAX, &pem, &len);
        if (r >= 0) {
                struct stat st;
                r = teep_key_from_pem(&key, pem, len, &err);
                explicit_bzero(pem, len);
                if (r < 0)
                        return log_error_errno(r, "device key %s/%s does not parse: %s", a->cfg.state_dir, DEVICE_KEY_FILE,
                                               err.detail);
                if (!teep_key_has_private(key)) {
                        teep_key_free(key);
                        return log_error_errno(-ENOKEY, "device key %s/%s holds no private key", a->cfg.state_dir,
                                               DEVICE_KEY_FILE);
                }
                if (fstatat(a->state_fd, DEVICE_KEY_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 077)) {
                        log_warning("device key file was mode %04o; setting 0600", st.st_mode & 07777);
                        (void)fchmodat(a->state_fd, DEVICE_KEY_FILE, 0600, 0);
                }
                if (teep_key_type(key) != a->cfg.key_type)
                        log_notice("device key exists with another type than KeyType=; keeping the existing key");
        } else if (r == -ENOENT) {
                _cleanup_free_ char *priv = NULL;
                size_t priv_len = 0;

                r = teep_key_generate(&key, a->cfg.key_type);
                if (r < 0)
                        return log_error_errno(r, "cannot generate the device key: %s", strerror(-r));
                r = teep_key_export_private_pem(key, &priv, &priv_len);
                if (r >= 0) {
                        r = write_file_atomic_at(a->state_fd, DEVICE_KEY_FILE, priv, priv_len, 0600);
                        explicit_bzero(priv, priv_len);
                }
                if (r < 0) {
                        teep_key_free(key);
                        return log_error_errno(r, "cannot write the device key to %s: %s", a->cfg.state_dir, strerror(-r));
                }
                log_info("created a new %s device key in %s", a->cfg.key_type == TEEP_KEY_ED25519 ? "Ed25519" : "ESP256",
                         a->cfg.state_dir);
        } else
                return log_error_errno(r, "cannot read the device key in %s: %s", a->cfg.state_dir, strerror(-r));

        r = teep_key_thumbprint(key, a->device_kid);
        if (r < 0) {
                teep_key_free(key);
                return r;
        }
        a->device_key = key;
        return 0;
}

static int key_file_cmp(const void *x, const void *y) {
        return strcmp(((const AgentKeyFile *)x)->name, ((const AgentKeyFile *)y)->name);
}

/* Every regular file in dir that parses as a PEM key or certificate, sorted by name. */
static int load_key_dir(const char *dir, const char *what, AgentKeyFile **ret, size_t *ret_n) {
        _cleanup_close_ int dfd = -1;
        AgentKeyFile *keys = NULL;
        size_t n = 0;
        DIR *d;
        struct dirent *de;
        int r = 0;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                if (errno == ENOENT) {
                        log_warning("%s directory %s does not exist: no %s", what, dir, what);
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                return log_error_errno(-errno, "cannot open %s directory %s: %m", what, dir);
        }
        d = fdopendir(dfd);
        if (!d)
                return -errno;
        dfd = -1;

        while ((de = readdir(d)) && r >= 0) {
                _cleanup_free_ uint8_t *data = NULL;
                _cleanup_close_ int fd = -1;
                size_t len = 0;
                TeepError err = {};
                TeepKey *key = NULL;
                struct stat st;
                AgentKeyFile *nk;

                if (de->d_name[0] == '.')
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n >= AGENT_MAX_KEYS) {
                        log_warning("%s: more than %d keys, ignoring %s", dir, AGENT_MAX_KEYS, de->d_name);
                        continue;
                }
                r = read_full_fd(fd, KEY_FILE_MAX, &data, &len);
                if (r < 0) {
                        log_warning("%s %s/%s: cannot read: %s", what, dir, de->d_name, strerror(-r));
                        r = 0;
                        continue;
                }
                if (teep_key_from_pem(&key, data, len, &err) < 0) {
                        log_warning("%s %s/%s: not a usable PEM key or certificate (%s), ignored", what, dir, de->d_name,
                                    err.detail);
                        continue;
                }
                if (teep_key_has_private(key))
                        log_warning("%s %s/%s holds a private key; only its public half is used", what, dir, de->d_name);
                nk = reallocarray(keys, n + 1, sizeof(*keys));
                if (!nk) {
                        teep_key_free(key);
                        r = -ENOMEM;
                        break;
                }
                keys = nk;
                keys[n].name = strdup(de->d_name);
                keys[n].key = key;
                if (!keys[n].name) {
                        teep_key_free(key);
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++) {
                        free(keys[i].name);
                        teep_key_free(keys[i].key);
                }
                free(keys);
                return r;
        }
        if (n > 1)
                qsort(keys, n, sizeof(*keys), key_file_cmp);
        *ret = keys;
        *ret_n = n;
        return 0;
}

int agent_load_trust(Agent *a) {
        AgentKeyFile *signers = NULL;
        size_t n_signers = 0;
        int r;

        r = load_key_dir(a->cfg.trust_anchor_dir, "trust anchor", &a->anchors, &a->n_anchors);
        if (r >= 0)
                r = agent_x5chain_load(a);
        if (r >= 0)
                r = agent_trust_list_load(a); /* the administrator's list, when there is one, replaces them */
        if (r < 0)
                return r;
        r = load_key_dir(a->cfg.signer_dir, "TC signer", &signers, &n_signers);
        if (r < 0)
                return r;
        a->signers = calloc(n_signers + 1, sizeof(TeepKey *));
        if (!a->signers) {
                for (size_t i = 0; i < n_signers; i++) {
                        free(signers[i].name);
                        teep_key_free(signers[i].key);
                }
                free(signers);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_signers; i++) {
                a->signers[i] = signers[i].key;
                free(signers[i].name);
        }
        free(signers);
        a->n_signers = n_signers;

        for (size_t t = 0; t < a->cfg.n_tams; t++) {
                char **names = a->cfg.tams[t].trust_anchors;
                for (size_t i = 0; names && names[i]; i++) {
                        bool found = false;
                        for (size_t k = 0; k < a->n_anchors; k++)
                                found = found || strcmp(a->anchors[k].name, names[i]) == 0;
                        if (!found)
                                log_warning("[TAM] %s: trust anchor %s not found in %s", a->cfg.tams[t].uri, names[i],
                                            a->cfg.trust_anchor_dir);
                }
        }
        log_info("%zu trust anchor(s) from %s, %zu TC signer key(s) from %s, %zu TAM(s) configured", a->n_anchors,
                 a->cfg.trust_anchor_dir, a->n_signers, a->cfg.signer_dir, a->cfg.n_tams);
        return 0;
}

size_t agent_find_tam(const Agent *a, const char *uri) {
        if (!uri)
                return SIZE_MAX;
        for (size_t t = 0; t < a->cfg.n_tams; t++)
                if (strcmp(a->cfg.tams[t].uri, uri) == 0)
                        return t;
        return SIZE_MAX;
}

size_t agent_tam_keys(const Agent *a, size_t tam, TeepKey **ret, size_t max) {
        char **names = tam < a->cfg.n_tams ? a->cfg.tams[tam].trust_anchors : NULL;
        size_t n = 0;

        for (size_t k = 0; k < a->n_anchors && n < max; k++) {
                bool ok = !names;
                for (size_t i = 0; names && names[i] && !ok; i++)
                        ok = strcmp(names[i], a->anchors[k].name) == 0;
                if (ok)
                        ret[n++] = a->anchors[k].key;
        }
        return n;
}

TeepBuf agent_kid_for(const Agent *a, size_t tam) {
        if (tam < a->cfg.n_tams && a->cfg.tams[tam].has_kid)
                return TEEP_BUF(a->cfg.tams[tam].kid, a->cfg.tams[tam].kid_len);
        return TEEP_BUF(a->device_kid, sizeof(a->device_kid));
}

/* ---- EAT identity: configuration, else DMI ---- */

static char *read_dmi(const char *name) {
        _cleanup_free_ uint8_t *data = NULL;
        char path[128];
        size_t len = 0;
        char *s;

        (void)snprintf(path, sizeof(path), "/sys/class/dmi/id/%s", name);
        if (read_full_file(path, 4096, &data, &len) < 0)
                return NULL;
        s = (char *)data;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\0'))
                s[--len] = '\0';
        if (len == 0 || !teep_utf8_is_valid(TEEP_BUF(s, len)))
                return NULL;
        return (char *)TAKE_PTR(data);
}

int agent_load_identity(Agent *a) {
        const char *o = a->cfg.oemid;

        a->oemid_is_pen = false;
        if (o) {
                size_t l = strlen(o);
                _cleanup_free_ uint8_t *b = NULL;
                size_t bl = 0;

                /* 6 or 32 hex digits: an OUI or a random id (even when they are all decimal
                 * digits); any other run of decimal digits: a PEN */
                if ((l == 6 || l == 32) && unhex(o, l, &b, &bl) >= 0) {
                        memcpy(a->oemid, b, bl);
                        a->oemid_len = bl;
                } else if (l > 0 && strspn(o, "0123456789") == l && l <= 18) {
                        a->oemid_is_pen = true;
                        a->oemid_pen = (int64_t)strtoll(o, NULL, 10);
                } else {
                        /* any other text names the OEM: a stable 16-byte id derived from it */
                        _cleanup_free_ char *in = NULL;
                        uint8_t h[32];
                        if (asprintf(&in, "teepkit-oemid:%s", o) < 0)
                                return -ENOMEM;
                        teep_sha256(TEEP_BUF(in, strlen(in)), h);
                        memcpy(a->oemid, h, 16);
                        a->oemid_len = 16;
                }
        } else {
                /* No configured OEM id: a stable 16-byte value derived from the DMI vendor name
                 * (the random-id form RFC 9711 allows), so the same vendor gives the same id. */
                _cleanup_free_ char *vendor = read_dmi("sys_vendor");
                _cleanup_free_ char *in = NULL;
                uint8_t h[32];

                if (asprintf(&in, "teepkit-oemid:%s", vendor ?: "unknown") < 0)
                        return -ENOMEM;
                teep_sha256(TEEP_BUF(in, strlen(in)), h);
                memcpy(a->oemid, h, 16);
                a->oemid_len = 16;
        }

        free(a->hwmodel);
        a->hwmodel = a->cfg.hwmodel ? strdup(a->cfg.hwmodel) : read_dmi("product_name");
        if (!a->hwmodel)
                a->hwmodel = strdup("unknown");
        free(a->hwversion);
        a->hwversion = a->cfg.hwversion ? strdup(a->cfg.hwversion) : read_dmi("product_version");
        if (!a->hwversion)
                a->hwversion = strdup("0");
        if (!a->hwmodel || !a->hwversion)
                return -ENOMEM;
        if (strlen(a->hwmodel) > TEEP_EAT_HWMODEL_MAX)
                a->hwmodel[TEEP_EAT_HWMODEL_MAX] = '\0'; /* EAT: 1..32 bytes */
        return 0;
}
