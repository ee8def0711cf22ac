/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker-config.h: the [Broker] keys of teepkit.conf (docs/internals.md, teepkit.conf(5)) */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

#define BROKER_DEFAULT_AGENT_USER "teep-agent"
#define BROKER_DEFAULT_CONNECT_TIMEOUT_USEC (10ull * 1000000ull)
#define BROKER_DEFAULT_TIMEOUT_USEC (60ull * 1000000ull)
#define BROKER_DEFAULT_PAYLOAD_TIMEOUT_USEC (600ull * 1000000ull)
#define BROKER_DEFAULT_MAX_MESSAGE_SIZE (1ull << 20)
#define BROKER_DEFAULT_MAX_PAYLOAD_SIZE (64ull << 20)
#define BROKER_DEFAULT_POLICY_CHECK_INTERVAL_USEC (3600ull * 1000000ull)

typedef struct BrokerConfig {
        char *agent_user;                   /* [Broker] AgentUser: who may call PayloadFetcher1 */
        uint64_t connect_timeout_usec;      /* [Broker] ConnectTimeoutSec */
        uint64_t timeout_usec;              /* [Broker] TimeoutSec: one HTTP request, all of it */
        uint64_t payload_timeout_usec;      /* [Broker] PayloadTimeoutSec: one payload download */
        char *ca_file;                      /* [Broker] CAFile, NULL: libcurl's default CA set */
        uint64_t max_message_size;          /* [Broker] MaxMessageSize: one TAM response */
        uint64_t max_payload_size;          /* [Broker] MaxPayloadSize: one fetched payload */
        uint64_t policy_check_interval_usec;/* [Broker] PolicyCheckInterval */
        char **tam_uris;                    /* [TAM] URI=, shown while the agent is not running */
        char *http_helper;                  /* not a key: teep-broker-http, beside teep-brokerd */
        size_t n_tam_uris;
} BrokerConfig;

/* The keys of [Broker] this broker knows, NULL-terminated (for teep_conf_warn_unknown()). */
extern const char *const broker_config_keys[];

/* Defaults only. */
int broker_config_init(BrokerConfig *c);
/*
 * Defaults, then the values in conf. A value that does not parse (or is out of range: zero
 * timeouts or sizes, sizes above 4G) fails with -EINVAL and "file:line: what" in errbuf.
 */
int broker_config_load(BrokerConfig *c, const TeepConf *conf, char *errbuf, size_t errbuf_size);
void broker_config_done(BrokerConfig *c);
/* A deep copy; dst is overwritten (not freed first). Returns 0 or -ENOMEM (dst then empty). */
int broker_config_copy(BrokerConfig *dst, const BrokerConfig *src);
