/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-config.c: see broker-config.h */
#include "broker-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

const char *const broker_config_keys[] = {
        "AgentUser", "ConnectTimeoutSec", "TimeoutSec", "PayloadTimeoutSec", "CAFile", "MaxMessageSize", "MaxPayloadSize",
        "PolicyCheckInterval", NULL,
};

#define MAX_SIZE_VALUE (4ull << 30)
#define MAX_TIMEOUT_USEC (24ull * 3600ull * 1000000ull)

int broker_config_init(BrokerConfig *c) {
        *c = (BrokerConfig){
                .connect_timeout_usec = BROKER_DEFAULT_CONNECT_TIMEOUT_USEC,
                .timeout_usec = BROKER_DEFAULT_TIMEOUT_USEC,
                .payload_timeout_usec = BROKER_DEFAULT_PAYLOAD_TIMEOUT_USEC,
                .max_message_size = BROKER_DEFAULT_MAX_MESSAGE_SIZE,
                .max_payload_size = BROKER_DEFAULT_MAX_PAYLOAD_SIZE,
                .policy_check_interval_usec = BROKER_DEFAULT_POLICY_CHECK_INTERVAL_USEC,
        };
        c->agent_user = strdup(BROKER_DEFAULT_AGENT_USER);
        return c->agent_user ? 0 : -ENOMEM;
}

void broker_config_done(BrokerConfig *c) {
        free(c->agent_user);
        free(c->ca_file);
        free(c->http_helper);
        for (size_t i = 0; i < c->n_tam_uris; i++)
                free(c->tam_uris[i]);
        free(c->tam_uris);
        *c = (BrokerConfig){};
}

static int range(const TeepConf *conf, const char *key, uint64_t v, uint64_t max, char *errbuf, size_t errbuf_size) {
        const TeepConfSection *s = NULL, *last = NULL;
        const char *where = NULL;

        if (v > 0 && v <= max)
                return 0;
        while ((s = teep_conf_sections(conf, "Broker", s)))
                if (teep_conf_section_get(s, key))
                        last = s;
        if (last)
                where = teep_conf_section_where(last, key);
        if (errbuf)
                snprintf(errbuf, errbuf_size, "%s: [Broker] %s= is out of range (0 < value <= %llu)",
                         where ?: "teepkit.conf", key, (unsigned long long)max);
        return -EINVAL;
}

static int set_string(char **dst, const char *v) {
        char *s;

        if (!v || !*v) /* "Key=" resets to the default */
                return 0;
        s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

int broker_config_load(BrokerConfig *c, const TeepConf *conf, char *errbuf, size_t errbuf_size) {
        int r, n;

        r = broker_config_init(c);
        if (r < 0)
                return r;
        if (!conf)
                return 0;

        r = set_string(&c->agent_user, teep_conf_get(conf, "Broker", "AgentUser"));
        if (r < 0)
                goto fail;
        r = set_string(&c->ca_file, teep_conf_get(conf, "Broker", "CAFile"));
        if (r < 0)
                goto fail;

        r = teep_conf_get_usec(conf, "Broker", "ConnectTimeoutSec", &c->connect_timeout_usec, errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "ConnectTimeoutSec", c->connect_timeout_usec, MAX_TIMEOUT_USEC, errbuf, errbuf_size);
        if (r >= 0)
                r = teep_conf_get_usec(conf, "Broker", "TimeoutSec", &c->timeout_usec, errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "TimeoutSec", c->timeout_usec, MAX_TIMEOUT_USEC, errbuf, errbuf_size);
        if (r >= 0)
                r = teep_conf_get_usec(conf, "Broker", "PayloadTimeoutSec", &c->payload_timeout_usec, errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "PayloadTimeoutSec", c->payload_timeout_usec, MAX_TIMEOUT_USEC, errbuf, errbuf_size);
        if (r >= 0)
                r = teep_conf_get_size(conf, "Broker", "MaxMessageSize", &c->max_message_size, errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "MaxMessageSize", c->max_message_size, MAX_SIZE_VALUE, errbuf, errbuf_size);
        if (r >= 0)
                r = teep_conf_get_size(conf, "Broker", "MaxPayloadSize", &c->max_payload_size, errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "MaxPayloadSize", c->max_payload_size, MAX_SIZE_VALUE, errbuf, errbuf_size);
        if (r >= 0)
                r = teep_conf_get_usec(conf, "Broker", "PolicyCheckInterval", &c->policy_check_interval_usec,
                                       errbuf, errbuf_size);
        if (r >= 0)
                r = range(conf, "PolicyCheckInterval", c->policy_check_interval_usec, UINT64_MAX / 2, errbuf,
                          errbuf_size);
        if (r < 0)
                goto fail;

        /* Every [TAM] section's URI, in order: what the agent will be told too. */
        n = 0;
        for (const TeepConfSection *s = NULL; (s = teep_conf_sections(conf, "TAM", s));)
                if (teep_conf_section_get(s, "URI"))
                        n++;
        if (n > 0) {
                c->tam_uris = calloc((size_t)n, sizeof(char *));
                if (!c->tam_uris) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (const TeepConfSection *s = NULL; (s = teep_conf_sections(conf, "TAM", s));) {
                        const char *u = teep_conf_section_get(s, "URI");
                        if (!u)
                                continue;
                        c->tam_uris[c->n_tam_uris] = strdup(u);
                        if (!c->tam_uris[c->n_tam_uris]) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        c->n_tam_uris++;
                }
        }
        return 0;
fail:
        broker_config_done(c);
        return r;
}

int broker_config_copy(BrokerConfig *dst, const BrokerConfig *src) {
        *dst = *src;
        dst->agent_user = NULL;
        dst->ca_file = NULL;
        dst->http_helper = NULL;
        dst->tam_uris = NULL;
        dst->n_tam_uris = 0;
        if ((src->agent_user && !(dst->agent_user = strdup(src->agent_user))) ||
            (src->ca_file && !(dst->ca_file = strdup(src->ca_file))) ||
            (src->http_helper && !(dst->http_helper = strdup(src->http_helper))))
                goto oom;
        if (src->n_tam_uris > 0) {
                dst->tam_uris = calloc(src->n_tam_uris, sizeof(char *));
                if (!dst->tam_uris)
                        goto oom;
                for (; dst->n_tam_uris < src->n_tam_uris; dst->n_tam_uris++)
                        if (!(dst->tam_uris[dst->n_tam_uris] = strdup(src->tam_uris[dst->n_tam_uris])))
                                goto oom;
        }
        return 0;
oom:
        broker_config_done(dst);
        return -ENOMEM;
}
