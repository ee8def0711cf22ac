/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* x5chain.c: TAM keys carried as certificate chains (COSE x5chain), verified up to the CA
 * certificates in TrustAnchorDirectory, with expiry and the CRLs in CRLDirectory */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-internal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

#define CERT_FILE_MAX (256 * 1024)
#define AGENT_MAX_CAS 64
#define AGENT_MAX_CRLS 64

struct AgentCaFile {
        char *name; /* the file in TrustAnchorDirectory, for [TAM] TrustAnchor= */
        uint8_t *der;
        size_t len;
};

static bool is_pem(const uint8_t *data, size_t len, const char *label) {
        char begin[64];
        size_t bl = (size_t)snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
        return memmem(data, len, begin, bl) != NULL;
}

typedef int (*FileFn)(void *userdata, const char *name, const uint8_t *data, size_t len);

/* Every regular file in dir, read whole, in directory order (bounded). */
static int for_each_file(const char *dir, FileFn fn, void *userdata) {
        _cleanup_close_ int dfd = -1;
        DIR *d;
        struct dirent *de;
        int r = 0;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(dfd);
        if (!d)
                return -errno;
        dfd = -1;
        while ((de = readdir(d)) && r >= 0) {
                _cleanup_free_ uint8_t *data = NULL;
                _cleanup_close_ int fd = -1;
                struct stat st;
                size_t len = 0;

                if (de->d_name[0] == '.')
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || read_full_fd(fd, CERT_FILE_MAX, &data, &len) < 0)
                        continue;
                r = fn(userdata, de->d_name, data, len);
        }
        closedir(d);
        return r;
}

static int add_ca(void *userdata, const char *name, const uint8_t *data, size_t len) {
        Agent *a = userdata;
        gnutls_x509_crt_t *crts = NULL;
        unsigned n = 0;
        gnutls_datum_t in = { (unsigned char *)data, (unsigned)len };

        if (!is_pem(data, len, "CERTIFICATE"))
                return 0;
        if (gnutls_x509_crt_list_import2(&crts, &n, &in, GNUTLS_X509_FMT_PEM, 0) < 0) {
                log_warning("trust anchor %s/%s: certificates do not parse, not used as CA", a->cfg.trust_anchor_dir, name);
                return 0;
        }
        for (unsigned i = 0; i < n; i++) {
                gnutls_datum_t der = {};
                if (a->n_cas < AGENT_MAX_CAS && gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &der) >= 0) {
                        AgentCaFile *nc = reallocarray(a->cas, a->n_cas + 1, sizeof(AgentCaFile));
                        if (nc) {
                                a->cas = nc;
                                a->cas[a->n_cas] = (AgentCaFile){ .name = strdup(name), .der = malloc(der.size),
                                                                  .len = der.size };
                                if (a->cas[a->n_cas].name && a->cas[a->n_cas].der) {
                                        memcpy(a->cas[a->n_cas].der, der.data, der.size);
                                        a->n_cas++;
                                } else {
                                        free(a->cas[a->n_cas].name);
                                        free(a->cas[a->n_cas].der);
                                }
                        }
                }
                gnutls_free(der.data);
                gnutls_x509_crt_deinit(crts[i]);
        }
        gnutls_free(crts);
        return 0;
}

void agent_x5chain_free(Agent *a) {
        for (size_t i = 0; i < a->n_cas; i++) {
                free(a->cas[i].name);
                free(a->cas[i].der);
        }
        free(a->cas);
        a->cas = NULL;
        a->n_cas = 0;
}

int agent_x5chain_load(Agent *a) {
        int r;

        agent_x5chain_free(a);
        r = for_each_file(a->cfg.trust_anchor_dir, add_ca, a);
        if (r < 0)
                return log_error_errno(r, "cannot read CA certificates in %s: %s", a->cfg.trust_anchor_dir, strerror(-r));
        if (a->n_cas > 0)
                log_info("%zu CA certificate(s) for x5chain in %s; CRLs from %s", a->n_cas, a->cfg.trust_anchor_dir,
                         a->cfg.crl_dir ?: "(none)");
        return 0;
}

typedef struct CrlSet {
        TeepBuf crls[AGENT_MAX_CRLS];
        uint8_t *owned[AGENT_MAX_CRLS];
        size_t n;
} CrlSet;

static int add_crl(void *userdata, const char *name, const uint8_t *data, size_t len) {
        CrlSet *s = userdata;
        gnutls_x509_crl_t crl = NULL;
        gnutls_datum_t in = { (unsigned char *)data, (unsigned)len }, der = {};
        bool pem = is_pem(data, len, "X509 CRL");

        if (s->n >= AGENT_MAX_CRLS || gnutls_x509_crl_init(&crl) < 0)
                return 0;
        if (gnutls_x509_crl_import(crl, &in, pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER) >= 0 &&
            gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &der) >= 0) {
                s->owned[s->n] = malloc(der.size);
                if (s->owned[s->n]) {
                        memcpy(s->owned[s->n], der.data, der.size);
                        s->crls[s->n] = TEEP_BUF(s->owned[s->n], der.size);
                        s->n++;
                }
        } else
                log_warning("CRL %s does not parse, ignored", name);
        gnutls_free(der.data);
        gnutls_x509_crl_deinit(crl);
        return 0;
}

int agent_x5chain_leaf(Agent *a, size_t tam, const TeepCoseHeaders *h, TeepKey **ret, TeepError *err) {
        char **names = tam < a->cfg.n_tams ? a->cfg.tams[tam].trust_anchors : NULL;
        TeepBuf cas[AGENT_MAX_CAS];
        CrlSet crls = {};
        size_t n = 0;
        int r;

        /* an installed trust-anchor list replaces the directory, CA certificates included */
        for (size_t i = 0; !a->trust_list_active && i < a->n_cas; i++) {
                bool ok = !names;
                for (size_t k = 0; names && names[k] && !ok; k++)
                        ok = strcmp(names[k], a->cas[i].name) == 0;
                if (ok)
                        cas[n++] = TEEP_BUF(a->cas[i].der, a->cas[i].len);
        }
        /* read at every use: a CRL the administrator drops in counts at once */
        if (a->cfg.crl_dir) {
                r = for_each_file(a->cfg.crl_dir, add_crl, &crls);
                if (r < 0)
                        log_warning("cannot read CRLs in %s: %s", a->cfg.crl_dir, strerror(-r));
        }
        r = teep_x5chain_verify(h->x5chain_raw, cas, n, crls.crls, crls.n, ret, err);
        for (size_t i = 0; i < crls.n; i++)
                free(crls.owned[i]);
        return r;
}
