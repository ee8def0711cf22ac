/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store.h: the Trusted Component store — atomic, crash-safe writes inside one directory */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "names.h"

/*
 * Every operation works relative to one directory fd (opened O_DIRECTORY|O_NOFOLLOW) with
 * openat/renameat/unlinkat and O_NOFOLLOW, so nothing reaches outside it.
 *
 * Install: the payload is streamed into ".teep-tmp-XXXXXXXXXXXX" in the store (mode 0600
 * while written), counted and hashed on the way; only when size and SHA-256 match is it
 * chmod 0644, fsync'd, renamed over the final name and the directory fsync'd. A kill at any
 * instant leaves the old file or the new one; what is left behind is a ".teep-tmp-" file,
 * removed by store_clean() at the next start. The store is locked (flock on the directory)
 * for the lifetime of the Store, so a second installer never cleans a live temporary.
 *
 * Errors (negative errno), beyond plain I/O errors:
 *   -EMSGSIZE      the payload was longer or shorter than announced (nothing changed)
 *   -EFBIG         store_stage(): the payload ran past its limit (nothing left behind)
 *   -EKEYREJECTED  its SHA-256 differs from the one announced (nothing changed)
 *   -ETIMEDOUT     the payload fd gave no data for STORE_STALL_TIMEOUT_MS (nothing changed)
 *   -ENOENT        store_remove(): the component is not installed
 *   -EEXIST        optee layout: the TA file belongs to another component, or was not
 *                  installed by teepkit (no owner record)
 *   -ESTALE        store_staged_open()/store_install_staged(): the staged temporary is no
 *                  longer the file that was staged (gone, replaced or resized)
 *
 * Staging: store_stage() streams a payload of unknown length (a pipe the agent fills while it
 * downloads) into a ".teep-tmp-" temporary, hashed on the way, not fsync'd; the store is
 * otherwise untouched. store_install_staged() later makes that very file a TC with the tail of
 * an install (chmod, fsync, owner and undo records, rename, fsync dir): no second copy. A
 * staged temporary is an ordinary one to store_clean(), so a crash loses it, never a TC.
 */

#define STORE_TMP_PREFIX     STORE_PRIVATE_PREFIX "tmp-"
/* A temporary's name: the prefix, 12 random characters, NUL. */
#define STORE_TMP_NAME_SIZE  (sizeof(STORE_TMP_PREFIX) + 12)
#define STORE_OWNER_PREFIX   STORE_PRIVATE_PREFIX "owner-"
/* The undo record of a file's last change (store_restore()): ".teep-undo-<file>" is a hard link
 * to the file that change replaced or removed; ".teep-added-<file>" (empty) says the change
 * created the file. A name that would exceed NAME_MAX is written "<prefix>~<sha256 of file, hex>"
 * ('~' never occurs in a TC file name). Neither is ever listed or counted as installed. */
#define STORE_UNDO_PREFIX    STORE_PRIVATE_PREFIX "undo-"
#define STORE_ADDED_PREFIX   STORE_PRIVATE_PREFIX "added-"
#define STORE_UNDO_NAME_SIZE (STORE_FILE_NAME_MAX + 1)
/* Payload bytes are read, hashed and written in pieces of this size (one pass). */
#define STORE_COPY_BUFFER    (1024u * 1024u)
/* Writeback of an install starts every this many bytes (sync_file_range), not at the fsync();
 * the window two behind is waited for, so dirty page cache stays under three windows. 16 MiB:
 * the best of 4, 8, 16 and 32 MiB measured, and waiting beats not waiting (1 GiB in 1.3 s
 * against 2.2 s on a virtio disk, bench/installer-bigfile). */
#define STORE_WRITEBACK_CHUNK (16u * 1024u * 1024u)
/* The first window is this small and each next one twice the last, up to STORE_WRITEBACK_CHUNK:
 * the disk starts on a payload of a few MiB while it still streams in (4 MiB by URI, median of
 * five alternating runs: 16.0 -> 14.1 ms), and a big one still goes in 16 MiB windows (256 KiB
 * windows throughout made 1 GiB 12 % slower). */
#define STORE_WRITEBACK_FIRST (256u * 1024u)
#define STORE_STALL_TIMEOUT_MS 30000
/* A List reply is one bus message; past this many entries the store is not ours to list. */
#define STORE_LIST_MAX       16384u

typedef struct Store {
        int dir_fd;
        char *path;
        StoreLayout layout;
        unsigned stall_timeout_ms;
        uint64_t digests_min_age_ns; /* DIGESTS_MIN_AGE_NS (digests.h); tests make it 0 */
        uint64_t n_hashed;           /* files store_list() read and hashed (the cache missed) */
} Store;

/* A component resolved to its place in the store. */
typedef struct StoreTarget {
        char *component;                     /* the validated textual name */
        char *file;                          /* final file name, relative to the store */
        char uuid[STORE_UUID_STRING_LEN + 1]; /* optee layout only */
} StoreTarget;

/* A payload staged in the store (store_stage()): its temporary, identified by name and inode. */
typedef struct StoreStaged {
        char name[STORE_TMP_NAME_SIZE];
        dev_t dev;
        ino_t ino;
        uint64_t size;
        uint8_t sha256[32];
        bool synced; /* store_staged_sync() made it durable (and 0644): the install skips both */
} StoreStaged;

typedef struct StoreEntry {
        char *component;
        char *file;
        uint64_t size;
        uint8_t sha256[32];
        uint64_t mtime_usec;
} StoreEntry;

/* Open (never create) the store directory. -ENOTDIR/-ELOOP/-ENOENT/... from openat. */
int store_open(const char *path, StoreLayout layout, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Take the store's exclusive lock, waiting up to timeout_ms for another installer to exit.
 * Returns 0 or -EWOULDBLOCK/-errno. */
int store_lock(Store *s, unsigned timeout_ms);

/* Remove what an interrupted install or remove left behind: ".teep-tmp-*" files and, in the
 * optee layout, owner records whose TA file is gone. Returns the number removed or -errno. */
int store_clean(Store *s);

/* Resolve a component name for this store's layout: -EINVAL (invalid component, or no single
 * UUID segment in the optee layout), -ENAMETOOLONG, -ENOMEM. */
int store_target(const Store *s, const char *component, StoreTarget *ret);
void store_target_done(StoreTarget *t);

/*
 * Install the payload read from fd (from its current offset to EOF), which must be exactly size
 * bytes with that SHA-256. On success ret_entry (if non-NULL) describes the new file.
 */
int store_install(Store *s, const StoreTarget *t, int fd, uint64_t size, const uint8_t sha256[32],
                  StoreEntry *ret_entry);

/*
 * Stage the payload read from fd (from its current offset to EOF; at most max bytes, max > 0)
 * in a fresh temporary in the store: hashed while it is written, writeback started as for an
 * install, not fsync'd. -EFBIG as soon as byte max + 1 arrives, -ETIMEDOUT when fd gives no
 * data for the store's stall timeout, -EISDIR, or an I/O error; on any failure the temporary
 * is gone again. On success ret describes the staged file.
 */
int store_stage(Store *s, int fd, uint64_t max, StoreStaged *ret);

/* A new O_RDONLY|O_CLOEXEC descriptor of the staged file, checked to be the very inode staged,
 * of the staged size. Returns the fd, -ESTALE, or -errno. */
int store_staged_open(Store *s, const StoreStaged *staged);

/* Make the staged file what install_commit() would make it before the rename (mode 0644, bytes
 * and inode synced), ahead of the Install: the installer does this once the agent has its
 * Staged answer, while the agent writes its own copies and journal, so the two processes'
 * flushes overlap instead of following each other. Sets staged->synced. Returns 0, -ESTALE, or
 * -errno (then the install syncs as before). */
int store_staged_sync(Store *s, StoreStaged *staged);

/* Unlink the staged temporary if it is still the file staged. Returns 1 when removed, 0 when it
 * was not there (or is another file now), or -errno. No fsync: a temporary a crash brings back
 * is removed by store_clean(). */
int store_unstage(Store *s, const StoreStaged *staged);

/*
 * Install the staged file itself as t: refused with -EMSGSIZE or -EKEYREJECTED when size or
 * sha256 differ from what was staged (the announced values are checked against the ones
 * computed while staging), -EEXIST as store_install(), -ESTALE; otherwise exactly the end of
 * store_install() (chmod 0644 and fsync, unless store_staged_sync() did both; owner record, undo
 * record, rename, fsync dir), so the TC file is the staged inode. The staged temporary is consumed whatever the outcome: renamed
 * into place, or unlinked (nothing else in the store changes on a refusal).
 */
int store_install_staged(Store *s, const StoreTarget *t, const StoreStaged *staged, uint64_t size,
                         const uint8_t sha256[32], StoreEntry *ret_entry);

/* Unlink the component's file and fsync the directory. -ENOENT if not installed. */
int store_remove(Store *s, const StoreTarget *t);

/*
 * Undo records. Every store_install() and store_remove() that changes t's file first replaces
 * t's undo record (after all its checks passed: a refusal changes nothing, the record included):
 * a hard link to the previous file, made before the rename over it or the unlink of it, so the
 * file name always points to the old file or the new one; or an "added" marker when there was
 * no previous file. The records are not made durable (no fsync of their own): they serve the
 * one agent commit in progress, and after a crash the agent decides by digest, never by them.
 *
 * store_restore(): put t's previous file back (rename the link over the file name) or remove
 * the file the last change added; drop the record; fsync the directory. Returns 1 when a file
 * was put back, 2 when an added file was removed, 0 when t has no undo record (nothing changed
 * since the last store_discard(); nothing to do), or -errno.
 *
 * store_discard(): drop t's undo record, or (t NULL) every undo record in the store. Not
 * synced: a record a crash brings back is one nobody will ask for (see above), and the next
 * change of that file replaces it. Returns the number of files removed, or -errno.
 *
 * Bounds: at most one record per TC file name, so the records never outnumber the files the
 * agent changed since its last Discard; each costs an inode (a link to space the old file used
 * already), and the space of a replaced image is kept until the Discard.
 */
int store_restore(Store *s, const StoreTarget *t);
int store_discard(Store *s, const StoreTarget *t);

/* The undo record names of a TC file name (see STORE_UNDO_PREFIX). Returns 0 or -ENOMEM. */
int store_undo_names(const char *file, char ret_undo[STORE_UNDO_NAME_SIZE], char ret_added[STORE_UNDO_NAME_SIZE]);
/* Whether name is an undo record (either kind). */
bool store_name_is_undo(const char *name);

/* Every TC in the store (digests computed by reading each file), sorted by file name. */
int store_list(Store *s, StoreEntry **ret, size_t *ret_n);

void store_entry_done(StoreEntry *e);
void store_entries_free(StoreEntry *e, size_t n);

/* Building blocks, exported for the unit tests. */

/* Whether name is one of the installer's temporaries. */
bool store_name_is_temporary(const char *name);

/* Create a fresh ".teep-tmp-XXXXXXXXXXXX" (O_EXCL, O_NOFOLLOW, mode 0600) in dir_fd.
 * ret_name must hold STORE_TMP_NAME_SIZE bytes. Returns the fd or -errno. */
int store_tmpfile_open(int dir_fd, char ret_name[STORE_TMP_NAME_SIZE]);

/*
 * Copy in_fd to out_fd in STORE_COPY_BUFFER pieces, refusing (-EMSGSIZE) as soon as more than
 * size bytes arrive, or at EOF when fewer did; ret_sha256 gets the digest of what was copied.
 * Waits at most stall_timeout_ms for each piece (-ETIMEDOUT).
 */
int store_copy_hashed(int in_fd, int out_fd, uint64_t size, unsigned stall_timeout_ms,
                      uint8_t ret_sha256[32]);

/*
 * The same copy for a payload of unknown length: up to EOF, refusing (-EFBIG) as soon as more
 * than max bytes arrive; ret_size gets how many were copied. -EISDIR for a directory.
 */
int store_copy_hashed_max(int in_fd, int out_fd, uint64_t max, unsigned stall_timeout_ms, uint64_t *ret_size,
                          uint8_t ret_sha256[32]);

/* SHA-256 of a whole open file, streamed. Returns 0 or -errno. */
int store_sha256_fd(int fd, uint8_t ret[32]);

/* Write data to name in dir_fd atomically (temporary, fsync, rename, fsync dir). */
int store_write_file_atomic(int dir_fd, const char *name, const void *data, size_t n, unsigned mode);
