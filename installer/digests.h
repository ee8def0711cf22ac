/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* digests.h: the store's digest cache — what Installer1.List need not hash again */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/*
 * Installer1.List answers every TC file's SHA-256, and teep-agentd lists the store each time
 * it starts (agent_reconcile()), which since it rests between sessions is once per session
 * after a pause. Hashing the whole store each time costs what the store weighs: 180 ms of
 * CPU for 256 MiB here, a gigabyte read from flash on a device whose page cache let it go.
 *
 * So the store keeps ".teep-digests" (STORE_DIGEST_CACHE): one line per TC file with the
 * SHA-256 List last computed for it and the file's inode, size, mtime and ctime at that moment.
 * A file whose stat still shows all four is not read again; any write to it, a truncation, a
 * chmod, a rename over it or a new inode changes its ctime or inode, and it is hashed anew.
 * Only the kernel sets ctime: touch(1) and utimensat() cannot put an old one back.
 *
 * Like git's index, a file changed within the ctime clock's granularity (a few ms, the coarse
 * realtime clock) of the moment it was recorded could keep its ctime; so a file is recorded
 * only once its ctime is at least DIGESTS_MIN_AGE_NS old, and until then hashed on each List.
 *
 * The cache is an optimisation and read as hostile input: bounded in size, each line parsed
 * strictly (a line that does not parse is skipped), a file that is not a regular file, or
 * whose first line is not the format's, is ignored. It is written to a ".teep-tmp-" temporary
 * and renamed over the old one, without fsync: a lost or torn cache costs one hashing List.
 * What it does not do: notice bits that rot on the medium under an unchanged inode (dm-verity
 * or fs-verity are the tools for that), or outlast someone who can write the store directory
 * (who can replace the TCs themselves).
 */

#define STORE_DIGEST_CACHE   ".teep-digests"
#define DIGESTS_MIN_AGE_NS   (2ull * 1000000000ull)
/* 16384 entries (STORE_LIST_MAX) of at most about 420 bytes each */
#define DIGESTS_FILE_MAX     (8u * 1024u * 1024u)

typedef struct DigestEntry {
        char *name;
        uint64_t ino, size;
        int64_t mtime_ns, ctime_ns;
        uint8_t sha256[32];
} DigestEntry;

typedef struct Digests {
        DigestEntry *e;
        size_t n, allocated;
        bool sorted;
} Digests;

/* A timespec (a stat's mtime or ctime, the clock) as the cache writes times: nanoseconds. */
int64_t digests_ns(const struct timespec *ts);

/* Read dir_fd's STORE_DIGEST_CACHE into d (sorted by name). Never fails for the file's sake:
 * a missing, foreign or malformed cache leaves d empty or with the lines that parsed. Returns
 * the number of entries, or -ENOMEM. */
int digests_load(int dir_fd, Digests *d);

/* The digest recorded for name when st still matches it, else NULL. d must be sorted. */
const uint8_t *digests_lookup(const Digests *d, const char *name, const struct stat *st);

/* Record name's digest as of st, when st's ctime is at least min_age_ns before now
 * (CLOCK_REALTIME). Returns 1 recorded, 0 too young (or a name no cache line can carry), -ENOMEM. */
int digests_add(Digests *d, const char *name, const struct stat *st, const uint8_t sha256[32],
                const struct timespec *now, uint64_t min_age_ns);

/* Sort by name (digests_lookup() needs it). */
void digests_sort(Digests *d);

/* Replace dir_fd's STORE_DIGEST_CACHE with d (written whole to a temporary, renamed). */
int digests_save(int dir_fd, const Digests *d);

void digests_done(Digests *d);

/* Whether two sets say the same (same names, stats and digests, in the same order). */
bool digests_equal(const Digests *a, const Digests *b);
