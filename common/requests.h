/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* requests.h: requests.d declarations — the Trusted Components a package needs (teepkit.requests(5)) */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * A package declares the TCs it depends on in /usr/share/teepkit/requests.d/PACKAGE.conf:
 *
 *   [Component]
 *   Id=TEEP-Device/SecureFS/8d82573a-926d-4754-9353-32dc29997f74/ta
 *   TAM=https://tam.example.com/tam
 *
 * One [Component] section per TC: exactly one Id= (design.md's textual form) and one or more
 * TAM= (http:// or https:// URIs, tried in order). The syntax is teepkit.conf's (common/conf.h);
 * unlike teepkit.conf, unknown sections and keys are errors: a declaration decides what gets
 * installed, so nothing in it is silently ignored. Every error names "file:line".
 */

/* Where packages put their declarations. A contract with packages, not an installation path: it
 * does not follow the build's prefix (teepctl sync --root and --dir change it). */
#define TEEP_REQUESTS_DIR "/usr/share/teepkit/requests.d"

/* Limits: a declaration is small and hand-written; anything bigger is a mistake or an attack. */
#define TEEP_REQUESTS_MAX_FILE (64u * 1024u)
#define TEEP_REQUESTS_MAX_COMPONENTS 64u
#define TEEP_REQUESTS_MAX_TAMS 16u        /* the broker's limit per RequestTA */
#define TEEP_REQUESTS_MAX_COMPONENT_LEN 4096u
#define TEEP_REQUESTS_MAX_URI_LEN 2048u
#define TEEP_REQUESTS_MAX_PACKAGE_LEN 128u
#define TEEP_REQUESTS_MAX_FILES 4096u

typedef struct TeepRequest {
        char *component;   /* textual form, validated */
        char **tam_uris;   /* NULL-terminated, at least one */
        size_t n_tam_uris;
        char *where;       /* "file:line" of its Id= */
} TeepRequest;

/* What one declaration file asks for. */
typedef struct TeepRequests {
        TeepRequest *items;
        size_t n_items;
} TeepRequests;

/*
 * Parse one declaration held in data (size bytes, need not be NUL-terminated; a NUL byte is an
 * error). label names the file in error messages. On success returns 0 and fills ret (which
 * the caller releases with teep_requests_done()). On failure returns -EBADMSG (the text is
 * not a valid declaration), -EFBIG (larger than TEEP_REQUESTS_MAX_FILE) or -ENOMEM, writes
 * "label:line: what" to err (if errsz > 0), and leaves ret untouched.
 * Pure: no files, no logging; safe to fuzz.
 */
int teep_requests_parse(const char *label, const char *data, size_t size, TeepRequests *ret, char *err,
                        size_t errsz);
void teep_requests_done(TeepRequests *r);

/* Debian's rule for a package name (Policy 5.6.1): [a-z0-9][a-z0-9+.-]+, at most
 * TEEP_REQUESTS_MAX_PACKAGE_LEN bytes. */
bool teep_requests_package_name_is_valid(const char *name);
/* A TAM URI a declaration may name: http:// or https:// with a host, printable ASCII without
 * spaces, at most TEEP_REQUESTS_MAX_URI_LEN bytes (the broker's rule). */
bool teep_requests_tam_uri_is_valid(const char *uri);

/* One file of the directory. */
typedef struct TeepPackageRequests {
        char *package;          /* the file name without ".conf" */
        char *path;
        bool broken;            /* unreadable or invalid: its package's requests are left alone */
        char *error;            /* why, "file:line: what" (NULL unless broken) */
        TeepRequests requests;  /* empty when broken */
} TeepPackageRequests;

typedef struct TeepRequestsDir {
        TeepPackageRequests *packages; /* sorted by package name */
        size_t n_packages;
} TeepRequestsDir;

/*
 * Read every "*.conf" in dir (other names, and names starting with ".", are skipped: dpkg's
 * .dpkg-new and .dpkg-old files end otherwise). A file that cannot be read or parsed, or whose
 * name is not a package name, is recorded with broken set and its error; that is not a
 * failure of the whole load. Returns 0 and fills ret, or -errno when dir itself cannot be read
 * (-ENOENT when it does not exist), -E2BIG for more than TEEP_REQUESTS_MAX_FILES files, or
 * -ENOMEM; ret is untouched on failure.
 */
int teep_requests_load_dir(const char *dir, TeepRequestsDir *ret);
void teep_requests_dir_done(TeepRequestsDir *d);

/* A request recorded by the broker now, owned by "package:<package>". */
typedef struct TeepRequestOwner {
        const char *package;   /* without the "package:" prefix */
        const char *component;
} TeepRequestOwner;

typedef enum TeepSyncAction {
        TEEP_SYNC_REQUEST,
        TEEP_SYNC_UNREQUEST,
} TeepSyncAction;

typedef struct TeepSyncStep {
        TeepSyncAction action;
        const char *package;      /* borrowed from the inputs */
        const char *component;    /* borrowed */
        char *const *tam_uris;    /* borrowed; NULL for an unrequest */
} TeepSyncStep;

/*
 * What makes the recorded package requests (current, n_current, duplicates allowed) match the
 * declarations in d: a request for every declared (package, component) that is not recorded,
 * then an unrequest for every recorded one that no longer is declared — except for packages
 * whose file is broken, whose requests are never touched. Each (package, component) appears at
 * most once. Returns 0 with a malloc'd array (free() it; the strings stay borrowed) and its
 * length, or -ENOMEM.
 */
int teep_requests_plan(const TeepRequestsDir *d, const TeepRequestOwner *current, size_t n_current,
                       TeepSyncStep **ret, size_t *ret_n);
