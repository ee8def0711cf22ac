/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* staging.h: payloads staged in the store (Installer1.Stage), waiting for their Install */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/*
 * The agent streams a payload into the store with Stage before every manifest of an update is
 * checked, and installs it later, by passing Install a descriptor of the staged file. Entries
 * live in memory only: an installer that exits (idle, SIGTERM) unlinks them all, one that
 * crashes leaves ".teep-tmp-" files that the next start's store_clean() removes.
 *
 * Bounds: at most INSTALLER_MAX_STAGED entries, staged or failed-and-not-yet-collected, each
 * unlinked after INSTALLER_STAGE_TTL_USEC. Each staged file is at most the max_size the agent
 * gave, so the disk the staged files take is bounded by the agent's own limit times 16.
 */
#define INSTALLER_MAX_STAGED     16u
#define INSTALLER_STAGE_TTL_USEC (UINT64_C(10) * 60u * 1000000u)
/* An id is chosen by the agent: exactly this many lowercase hex characters. */
#define STAGING_ID_LEN 32u

typedef struct Staging {
        char id[STAGING_ID_LEN + 1];
        uint64_t created_usec;  /* CLOCK_MONOTONIC */
        int error;              /* 0: staged; < 0: the staging failed and its file is gone */
        const char *error_name; /* a static D-Bus error name, when error < 0 */
        char *error_message;    /* when error < 0 */
        StoreStaged file;       /* when error == 0 */
} Staging;

typedef struct StagingTable {
        Staging entries[INSTALLER_MAX_STAGED];
        size_t n;
} StagingTable;

/* Whether id is exactly STAGING_ID_LEN characters of [0-9a-f]. */
bool staging_id_valid(const char *id);

/* The entry under id, or NULL. */
Staging *staging_find(StagingTable *t, const char *id);

/* The successfully staged entry whose file is (dev, ino), or NULL. */
Staging *staging_find_file(StagingTable *t, dev_t dev, ino_t ino);

/* A new entry under id, created at now_usec, with no outcome yet (error 0, no file name).
 * -EINVAL for an invalid id, -EEXIST when id is taken, -EBUSY when the table is full. The
 * pointer stays valid until the next staging_forget(), staging_expire() or staging_clear(). */
int staging_add(StagingTable *t, const char *id, uint64_t now_usec, Staging **ret);

/* Record a failure (message copied) on e. Returns 0 or -ENOMEM. */
int staging_set_error(Staging *e, int error, const char *name, const char *message);

/* Unlink e's file (when it has one and it is still the one staged) and drop e. Returns 1 when
 * a file was unlinked, 0 when not. Other entries may move: pointers to them are stale. */
int staging_forget(StagingTable *t, Store *s, Staging *e);

/* Drop (and unlink) every entry created at or before now_usec - ttl_usec. Returns how many. */
size_t staging_expire(StagingTable *t, Store *s, uint64_t now_usec, uint64_t ttl_usec);

/* Drop (and unlink) every entry. Returns how many. */
size_t staging_clear(StagingTable *t, Store *s);

/* When the oldest entry was created, or UINT64_MAX when there is none. */
uint64_t staging_oldest(const StagingTable *t);
