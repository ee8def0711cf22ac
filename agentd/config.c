/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.c: [Agent] and [TAM] sections of teepkit.conf */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent.h"
#include "conf.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "teep-eat.h"

void agent_config_init(AgentConfig *c) {
        *c = (AgentConfig){
                .key_type = TEEP_KEY_P256,
                .max_payload_size = AGENT_DEFAULT_MAX_PAYLOAD,
                .payload_stall_usec = AGENT_DEFAULT_PAYLOAD_STALL_USEC,
                .payload_timeout_usec = AGENT_DEFAULT_PAYLOAD_TIMEOUT_USEC,
                .idle_timeout_usec = AGENT_DEFAULT_IDLE_TIMEOUT_USEC,
        };
}

static void tam_config_done(AgentTamConfig *t) {
        free(t->uri);
        free(t->kid);
        for (size_t i = 0; t->trust_anchors && t->trust_anchors[i]; i++)
                free(t->trust_anchors[i]);
        free(t->trust_anchors);
        *t = (AgentTamConfig){};
}

void agent_config_done(AgentConfig *c) {
        free(c->state_dir);
        free(c->trust_anchor_dir);
        free(c->signer_dir);
        free(c->broker_user);
        free(c->oemid);
        free(c->hwmodel);
        free(c->hwversion);
        free(c->key_uri);
        free(c->pkcs11_module);
        free(c->pin_file);
        free(c->admin_key);
        free(c->crl_dir);
        for (size_t i = 0; i < c->n_tams; i++)
                tam_config_done(&c->tams[i]);
        free(c->tams);
        agent_config_init(c);
}

static int set_str(char **dst, const char *v) {
        char *n;
        if (!v)
                return 0;
        n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

/* "8d82573a-926d-4754-9353-32dc29997f74" or 32 hex digits → 16 bytes. */
static int parse_uuid(const char *s, uint8_t ret[16]) {
        char hex[33];
        size_t n = 0;
        _cleanup_free_ uint8_t *b = NULL;
        size_t bl = 0;

        for (const char *p = s; *p; p++) {
                if (*p == '-')
                        continue;
                if (n >= 32)
                        return -EINVAL;
                hex[n++] = *p;
        }
        hex[n] = '\0';
        if (n != 32 || unhex(hex, n, &b, &bl) < 0 || bl != 16)
                return -EINVAL;
        memcpy(ret, b, 16);
        return 0;
}

static int load_ids(const TeepConf *conf, const char *key, uint8_t ids[][16], size_t *n, char *errbuf, size_t errbuf_size) {
        _cleanup_free_ const char **list = NULL;
        int k;

        k = teep_conf_get_list(conf, "Agent", key, &list);
        if (k < 0)
                return k;
        *n = 0;
        for (int i = 0; i < k; i++) {
                /* one assignment may hold several ids separated by spaces */
                _cleanup_free_ char *copy = strdup(list[i]);
                char *save = NULL;
                if (!copy)
                        return -ENOMEM;
                for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
                        if (*n >= AGENT_MAX_IDS || parse_uuid(t, ids[*n]) < 0) {
                                (void)snprintf(errbuf, errbuf_size, "[Agent] %s=%s: want at most %d UUIDs", key, t,
                                               AGENT_MAX_IDS);
                                return -EINVAL;
                        }
                        (*n)++;
                }
        }
        return 0;
}

/* Suite=, PolicyCheckInterval=, ManageAnyComponent= of one [TAM] section. */
static int load_tam_extra(AgentTamConfig *t, const TeepConfSection *s, char *errbuf, size_t errbuf_size) {
        const char *suite = teep_conf_section_get(s, "Suite");
        const char *interval = teep_conf_section_get(s, "PolicyCheckInterval");
        const char *manage = teep_conf_section_get(s, "ManageAnyComponent");

        if (suite && *suite) {
                if (strcasecmp(suite, "ESP256") == 0)
                        t->suite = -9;
                else if (strcasecmp(suite, "ES256") == 0)
                        t->suite = -7;
                else if (strcasecmp(suite, "Ed25519") == 0)
                        t->suite = -19;
                else if (strcasecmp(suite, "EdDSA") == 0)
                        t->suite = -8;
                else {
                        (void)snprintf(errbuf, errbuf_size, "%s: Suite=%s: want ESP256, ES256, Ed25519 or EdDSA",
                                       teep_conf_section_where(s, "Suite") ?: "[TAM]", suite);
                        return -EINVAL;
                }
        }
        if (interval && *interval && teep_parse_usec(interval, &t->policy_check_interval_usec) < 0) {
                (void)snprintf(errbuf, errbuf_size, "%s: PolicyCheckInterval=%s: want a time span (30min, 1h, 1d)",
                               teep_conf_section_where(s, "PolicyCheckInterval") ?: "[TAM]", interval);
                return -EINVAL;
        }
        if (manage && *manage && teep_parse_bool(manage, &t->manage_any) < 0) {
                (void)snprintf(errbuf, errbuf_size, "%s: ManageAnyComponent=%s: want yes or no",
                               teep_conf_section_where(s, "ManageAnyComponent") ?: "[TAM]", manage);
                return -EINVAL;
        }
        return 0;
}

static int load_tam(AgentTamConfig *t, const TeepConfSection *s, char *errbuf, size_t errbuf_size) {
        _cleanup_free_ const char **anchors = NULL;
        const char *uri = teep_conf_section_get(s, "URI");
        const char *kid = teep_conf_section_get(s, "Kid");
        int k;

        if (!uri || !*uri) {
                (void)snprintf(errbuf, errbuf_size, "[TAM] section without URI=");
                return -EINVAL;
        }
        for (const char *p = uri; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                        (void)snprintf(errbuf, errbuf_size, "%s: URI= contains whitespace or control characters",
                                       teep_conf_section_where(s, "URI") ?: "[TAM]");
                        return -EINVAL;
                }
        t->uri = strdup(uri);
        if (!t->uri)
                return -ENOMEM;
        if (kid && *kid && strcasecmp(kid, "thumbprint") != 0) {
                if (unhex(kid, strlen(kid), &t->kid, &t->kid_len) < 0 || t->kid_len == 0 || t->kid_len > 64) {
                        (void)snprintf(errbuf, errbuf_size, "%s: Kid=%s: want \"thumbprint\" or 1..64 bytes of hex",
                                       teep_conf_section_where(s, "Kid") ?: "[TAM]", kid);
                        return -EINVAL;
                }
                t->has_kid = true;
        }
        k = load_tam_extra(t, s, errbuf, errbuf_size);
        if (k < 0)
                return k;
        k = teep_conf_section_get_list(s, "TrustAnchor", &anchors);
        if (k < 0)
                return k;
        if (k > 0) {
                size_t n = 0;
                t->trust_anchors = calloc((size_t)k + 1, sizeof(char *));
                if (!t->trust_anchors)
                        return -ENOMEM;
                for (int i = 0; i < k; i++) {
                        _cleanup_free_ char *copy = strdup(anchors[i]);
                        char *save = NULL;
                        char **nt;
                        if (!copy)
                                return -ENOMEM;
                        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                                if (strchr(tok, '/') || tok[0] == '.') {
                                        (void)snprintf(errbuf, errbuf_size, "%s: TrustAnchor=%s: a file name in TrustAnchorDirectory",
                                                       teep_conf_section_where(s, "TrustAnchor") ?: "[TAM]", tok);
                                        return -EINVAL;
                                }
                                nt = reallocarray(t->trust_anchors, n + 2, sizeof(char *));
                                if (!nt)
                                        return -ENOMEM;
                                t->trust_anchors = nt;
                                t->trust_anchors[n] = strdup(tok);
                                t->trust_anchors[n + 1] = NULL;
                                if (!t->trust_anchors[n])
                                        return -ENOMEM;
                                n++;
                        }
                }
        }
        return 0;
}

/* KeyURI=, PKCS11Module=, PinFile=: a device key in a PKCS#11 token; AdminKey=. */
static int load_key_uri(AgentConfig *c, const TeepConf *conf, char *errbuf, size_t errbuf_size) {
        const char *uri = teep_conf_get(conf, "Agent", "KeyURI");
        const char *module = teep_conf_get(conf, "Agent", "PKCS11Module");
        const char *pin = teep_conf_get(conf, "Agent", "PinFile");
        const char *admin = teep_conf_get(conf, "Agent", "AdminKey");
        int r;

        if (uri && *uri) {
                if (strncmp(uri, "pkcs11:", 7) != 0 || strlen(uri) > 4096) {
                        (void)snprintf(errbuf, errbuf_size, "[Agent] KeyURI=: want a PKCS#11 URI (pkcs11:token=...;object=...)");
                        return -EINVAL;
                }
                for (const char *p = uri; *p; p++)
                        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                                (void)snprintf(errbuf, errbuf_size, "[Agent] KeyURI=: whitespace or control characters");
                                return -EINVAL;
                        }
                r = set_str(&c->key_uri, uri);
                if (r < 0)
                        return r;
        }
        if (module && *module) {
                if (module[0] != '/') {
                        (void)snprintf(errbuf, errbuf_size, "[Agent] PKCS11Module=%s: want an absolute path", module);
                        return -EINVAL;
                }
                r = set_str(&c->pkcs11_module, module);
                if (r < 0)
                        return r;
        }
        if (admin && *admin) {
                if (admin[0] != '/') {
                        (void)snprintf(errbuf, errbuf_size, "[Agent] AdminKey=%s: want an absolute path", admin);
                        return -EINVAL;
                }
                r = set_str(&c->admin_key, admin);
                if (r < 0)
                        return r;
        }
        if (pin && *pin) {
                if (pin[0] != '/') {
                        (void)snprintf(errbuf, errbuf_size, "[Agent] PinFile=%s: want an absolute path", pin);
                        return -EINVAL;
                }
                r = set_str(&c->pin_file, pin);
                if (r < 0)
                        return r;
        }
        return 0;
}

int agent_config_load(AgentConfig *c, const TeepConf *conf, char *errbuf, size_t errbuf_size) {
        const char *v;
        int r;

        if (errbuf_size > 0)
                errbuf[0] = '\0';
        r = set_str(&c->state_dir, teep_conf_get(conf, "Agent", "StateDirectory") ?: TEEP_STATEDIR "/agent");
        if (r >= 0)
                r = set_str(&c->trust_anchor_dir,
                            teep_conf_get(conf, "Agent", "TrustAnchorDirectory") ?: TEEP_SYSCONFDIR "/trust-anchors.d");
        if (r >= 0)
                r = set_str(&c->signer_dir, teep_conf_get(conf, "Agent", "SignerDirectory") ?: TEEP_SYSCONFDIR "/tc-signers.d");
        if (r >= 0)
                r = set_str(&c->broker_user, teep_conf_get(conf, "Agent", "BrokerUser") ?: "teep-broker");
        if (r >= 0)
                r = set_str(&c->oemid, teep_conf_get(conf, "Agent", "OEMID"));
        if (r >= 0)
                r = set_str(&c->hwmodel, teep_conf_get(conf, "Agent", "HWModel"));
        if (r >= 0)
                r = set_str(&c->hwversion, teep_conf_get(conf, "Agent", "HWVersion"));
        if (r >= 0)
                r = set_str(&c->crl_dir, teep_conf_get(conf, "Agent", "CRLDirectory") ?: TEEP_SYSCONFDIR "/crls.d");
        if (r >= 0)
                r = load_key_uri(c, conf, errbuf, errbuf_size);
        if (r < 0)
                return r;

        if (c->hwmodel && (strlen(c->hwmodel) == 0 || strlen(c->hwmodel) > TEEP_EAT_HWMODEL_MAX)) {
                (void)snprintf(errbuf, errbuf_size, "[Agent] HWModel=: 1..%d bytes", TEEP_EAT_HWMODEL_MAX);
                return -EINVAL;
        }
        if (c->hwversion && !*c->hwversion) {
                (void)snprintf(errbuf, errbuf_size, "[Agent] HWVersion=: must not be empty");
                return -EINVAL;
        }

        v = teep_conf_get(conf, "Agent", "KeyType");
        if (v) {
                if (strcasecmp(v, "ESP256") == 0 || strcasecmp(v, "ES256") == 0 || strcasecmp(v, "P-256") == 0)
                        c->key_type = TEEP_KEY_P256;
                else if (strcasecmp(v, "Ed25519") == 0)
                        c->key_type = TEEP_KEY_ED25519;
                else {
                        (void)snprintf(errbuf, errbuf_size, "[Agent] KeyType=%s: want ESP256 or Ed25519", v);
                        return -EINVAL;
                }
        }
        r = teep_conf_get_size(conf, "Agent", "MaxPayloadSize", &c->max_payload_size, errbuf, errbuf_size);
        if (r < 0)
                return r;
        if (c->max_payload_size == 0) {
                (void)snprintf(errbuf, errbuf_size, "[Agent] MaxPayloadSize= must be positive");
                return -EINVAL;
        }
        r = teep_conf_get_usec(conf, "Agent", "PayloadTimeoutSec", &c->payload_timeout_usec, errbuf, errbuf_size);
        if (r < 0)
                return r;
        if (c->payload_timeout_usec == 0) {
                (void)snprintf(errbuf, errbuf_size, "[Agent] PayloadTimeoutSec= must be positive");
                return -EINVAL;
        }
        r = teep_conf_get_usec(conf, "Agent", "IdleTimeoutSec", &c->idle_timeout_usec, errbuf, errbuf_size);
        if (r < 0)
                return r;
        r = load_ids(conf, "VendorId", c->vendor_ids, &c->n_vendor_ids, errbuf, errbuf_size);
        if (r >= 0)
                r = load_ids(conf, "ClassId", c->class_ids, &c->n_class_ids, errbuf, errbuf_size);
        if (r < 0)
                return r;

        (void)teep_conf_warn_unknown(conf, "Agent",
                                     (const char *const[]){ "StateDirectory", "TrustAnchorDirectory", "SignerDirectory",
                                                            "KeyType", "BrokerUser", "VendorId", "ClassId", "OEMID",
                                                            "HWModel", "HWVersion", "MaxPayloadSize", "PayloadTimeoutSec", "KeyURI", "PKCS11Module",
                                                            "PinFile", "AdminKey", "CRLDirectory", "IdleTimeoutSec", NULL });
        (void)teep_conf_warn_unknown(conf, "TAM", (const char *const[]){ "URI", "Kid", "TrustAnchor", "Suite",
                                                                         "PolicyCheckInterval", "ManageAnyComponent",
                                                                         NULL });
        for (const TeepConfSection *s = teep_conf_sections(conf, "TAM", NULL); s; s = teep_conf_sections(conf, "TAM", s)) {
                AgentTamConfig *nt = reallocarray(c->tams, c->n_tams + 1, sizeof(AgentTamConfig));
                if (!nt)
                        return -ENOMEM;
                c->tams = nt;
                c->tams[c->n_tams] = (AgentTamConfig){};
                r = load_tam(&c->tams[c->n_tams], s, errbuf, errbuf_size);
                c->n_tams++;
                if (r < 0)
                        return r;
                for (size_t i = 0; i + 1 < c->n_tams; i++)
                        if (strcmp(c->tams[i].uri, c->tams[c->n_tams - 1].uri) == 0) {
                                (void)snprintf(errbuf, errbuf_size, "[TAM] URI=%s configured twice", c->tams[i].uri);
                                return -EINVAL;
                        }
        }
        return 0;
}
