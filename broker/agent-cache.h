/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent-cache.h: the broker's copy of the agent's read-only properties, republished on Broker1 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct AgentTC {
        char *component;
        uint64_t sequence;
        uint8_t *digest;
        size_t digest_len;
} AgentTC;

typedef struct AgentRequest {
        char *component;
        char *requester;
} AgentRequest;

/* Which properties an update touched; names on Broker1 in agent_cache_property_names(). */
enum {
        AGENT_PROP_VERSION = 1u << 0,   /* Broker1.AgentVersion */
        AGENT_PROP_INSTALLED = 1u << 1, /* InstalledTCs */
        AGENT_PROP_REQUESTS = 1u << 2,  /* Requests */
        AGENT_PROP_PENDING = 1u << 3,   /* PendingRequests */
        AGENT_PROP_TAMS = 1u << 4,      /* TamURIs */
};

/* Bounds on what we accept from the agent: it is trusted, but a bug must not eat the broker. */
#define AGENT_CACHE_MAX_ENTRIES 65536
/* Requests one RequestsChanged may remove (the agent removes one per UnrequestTA) */
#define AGENT_CACHE_MAX_REMOVALS 1024

typedef struct AgentCache {
        bool known;      /* at least one GetAll answered since the agent last appeared */
        char *version;
        AgentTC *tcs;
        size_t n_tcs;
        AgentRequest *requests;
        size_t n_requests;
        char **pending;
        size_t n_pending;
        char **tam_uris;
        size_t n_tam_uris;
} AgentCache;

void agent_cache_done(AgentCache *c);
/* Forget everything (the agent went away). Returns the AGENT_PROP_* that were non-empty. */
unsigned agent_cache_clear(AgentCache *c);

/*
 * Apply an a{sv} of org.teepkit.Agent1 properties (a GetAll reply, or the changed-properties
 * dictionary of PropertiesChanged) at the current position of m. Unknown properties are
 * skipped; a known property with the wrong signature fails with -EBADMSG and leaves the cache
 * as it was. *ret_changed gets the AGENT_PROP_* whose value actually changed.
 */
int agent_cache_apply(AgentCache *c, sd_bus_message *m, unsigned *ret_changed);

/*
 * Apply Agent1.RequestsChanged (a(ss) added, a(ss) removed) at the current position of m: the
 * agent announces Requests by what changed, not by its whole value. On -EBADMSG/-E2BIG/-ENOMEM
 * the requests may be half-applied: read them again (GetAll). *ret_changed gets AGENT_PROP_REQUESTS
 * if the list changed.
 */
int agent_cache_apply_requests_changed(AgentCache *c, sd_bus_message *m, unsigned *ret_changed);

bool agent_cache_has_tc(const AgentCache *c, const char *component);
/* Whether anyone other than requester has a recorded request for component. */
bool agent_cache_requested_by_other(const AgentCache *c, const char *component, const char *requester);

/* NULL-terminated Broker1 property names for a mask, into names (at least 6 slots). */
void agent_cache_property_names(unsigned mask, const char *names[static 6]);
