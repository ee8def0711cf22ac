/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pkcs11.c: a device key that stays in a PKCS#11 token (SoftHSM2, tpm2-pkcs11, a smart card) */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/pkcs11.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

#define PIN_FILE_MAX 256

static bool pkcs11_ready;
static char *pin_file; /* the configured PinFile=, read at every login, never cached */

/*
 * gnutls asks for the PIN when it logs in to the token: at import, and again if the token
 * dropped the session. The file is read each time (file reads stay allowed under the agent's
 * filter) so the PIN is in memory only while gnutls needs it. Without PinFile= we answer
 * nothing and gnutls uses the URI's pin-value / pin-source, or fails the login.
 */
static int pin_callback(void *userdata, int attempt, const char *token_url, const char *token_label,
                        unsigned flags, char *pin, size_t pin_max) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r;

        if (!pin_file || attempt > 0 || (flags & GNUTLS_PIN_SO))
                return GNUTLS_E_PKCS11_PIN_ERROR; /* one try: a wrong PIN must not lock the token */
        r = read_full_file(pin_file, PIN_FILE_MAX, &data, &len);
        if (r < 0) {
                log_error("PinFile=%s: cannot read: %s", pin_file, strerror(-r));
                return GNUTLS_E_PKCS11_PIN_ERROR;
        }
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                len--;
        if (len == 0 || len >= pin_max || memchr(data, '\0', len)) {
                explicit_bzero(data, len);
                log_error("PinFile=%s: want one line of at most %zu bytes", pin_file, pin_max - 1);
                return GNUTLS_E_PKCS11_PIN_ERROR;
        }
        memcpy(pin, data, len);
        pin[len] = '\0';
        explicit_bzero(data, len);
        log_debug("PIN for token %s read from %s", token_label ?: "?", pin_file);
        return 0;
}

static int pkcs11_setup(const AgentConfig *cfg) {
        int gr;

        if (pkcs11_ready)
                return 0;
        /* With PKCS11Module= only that module; without it, p11-kit's configured modules
         * (/usr/share/p11-kit/modules/, /etc/pkcs11/modules/). */
        gr = gnutls_pkcs11_init(cfg->pkcs11_module ? GNUTLS_PKCS11_FLAG_MANUAL : GNUTLS_PKCS11_FLAG_AUTO, NULL);
        if (gr < 0)
                return log_error_errno(-EIO, "cannot initialise PKCS#11: %s", gnutls_strerror(gr));
        if (cfg->pkcs11_module) {
                gr = gnutls_pkcs11_add_provider(cfg->pkcs11_module, NULL);
                if (gr < 0)
                        return log_error_errno(-ENOENT, "PKCS11Module=%s: cannot load: %s", cfg->pkcs11_module,
                                               gnutls_strerror(gr));
        }
        free(pin_file);
        pin_file = NULL;
        if (cfg->pin_file) {
                pin_file = strdup(cfg->pin_file);
                if (!pin_file)
                        return -ENOMEM;
        }
        gnutls_pkcs11_set_pin_function(pin_callback, NULL);
        pkcs11_ready = true;
        return 0;
}

/* The URI without its pin-value attribute, for log lines. */
static void uri_for_log(const char *uri, char *out, size_t size) {
        const char *p = strstr(uri, "pin-value=");
        size_t n = p ? (size_t)(p - uri) : strlen(uri);

        (void)snprintf(out, size, "%.*s%s", (int)(n > 200 ? 200 : n), uri, p ? "pin-value=(hidden)" : "");
}

int agent_load_pkcs11_key(Agent *a, TeepKey **ret) {
        TeepError err = {};
        char shown[256];
        int r;

        uri_for_log(a->cfg.key_uri, shown, sizeof(shown));
        r = pkcs11_setup(&a->cfg);
        if (r < 0)
                return r;
        r = teep_key_from_url(ret, a->cfg.key_uri, &err);
        if (r < 0)
                return log_error_errno(r, "KeyURI=%s: %s", shown, err.detail[0] ? err.detail : strerror(-r));
        log_info("device key %s is in a PKCS#11 token (%s); the agent signs through the token", shown,
                 teep_key_type(*ret) == TEEP_KEY_ED25519 ? "Ed25519" : "ESP256");
        return 0;
}
