/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-test.h: run teep-manifest, teep-tam and teepctl from the build tree; HTTP via libcurl */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "teep-cbor.h"
#include "teep-cose.h"
#include "teep-message.h"

/* A fresh temporary directory (removed with everything in it by tmpdir_remove). */
char *tmpdir_new(const char *prefix);
void tmpdir_remove(char *dir);

/* path = dir/name in a static ring of buffers (enough for one statement). */
const char *path_in(const char *dir, const char *name);

/* Write / read a whole file; failures fail the test. */
void file_write(const char *path, const void *data, size_t len);
TeepBuf file_read(const char *path, uint8_t **owned);
bool file_exists(const char *path);

typedef struct Run {
        int status; /* exit status, or 128 + signal */
        char *out;
        size_t out_len;
        char *err;
} Run;

/*
 * Run argv (NULL-terminated; argv[0] a path) with a timeout in seconds, capturing stdout and
 * stderr. Fails the test if it cannot run or does not finish in time.
 */
Run run_argv(unsigned timeout_sec, const char *const *argv);
void run_done(Run *r);

/* The programs under test, from the environment meson sets. */
const char *bin_manifest(void);
const char *bin_tam(void);
const char *bin_teepctl(void);

/* A running teep-tam. */
typedef struct TamProc {
        pid_t pid;
        unsigned port;
        char url[128];      /* http://127.0.0.1:PORT/tam */
        char base[128];     /* http://127.0.0.1:PORT */
        char log[512];      /* its stderr */
        unsigned bad_exits; /* stops that did not end with status 0 */
} TamProc;

/*
 * Start teep-tam with --port-file in dir and --lifetime 60, plus args (NULL-terminated);
 * wait until it listens. Fails the test if it does not within 10 s.
 */
void tam_start(TamProc *t, const char *dir, const char *const *args);
/* SIGTERM and wait (at most 10 s); returns the exit status (0 expected). Idempotent. */
int tam_stop(TamProc *t);
/* The TAM's log so far (malloc'd). */
char *tam_log(const TamProc *t);

typedef struct Http {
        long status;
        int curl_code; /* CURLE_OK unless the transfer failed */
        uint8_t *body;
        size_t len;
        char content_type[128];
        char *headers; /* all response headers, as received */
        double seconds;
} Http;

/*
 * POST body to url with Accept and (if content_type) Content-Type; 20 s timeout.
 * extra_header may add one more header line, or be NULL.
 */
Http http_post(const char *url, const void *body, size_t len, const char *content_type,
               const char *extra_header);
Http http_get(const char *url);
void http_done(Http *h);
/* POST an empty body (start a session) and check a 200 teep+cbor answer. */
Http http_connect(const TamProc *t);

/* Keys: generate and write as PEM (private 0600 / public). */
TeepKey *key_new(TeepKeyType type);
void key_write_private(const TeepKey *k, const char *path);
void key_write_public(const TeepKey *k, const char *path);

/*
 * Verify a signed TEEP message with key (NULL: just decode) and decode it; fails the test
 * when it does not verify or decode. The message's views point into body.
 */
TeepMessage *teep_open(TeepBuf body, TeepKey *key);

/* Sign an encoded message as the device (COSE_Sign1, alg 0 = the key's default). */
TeepBuf device_sign(const TeepMessage *m, const TeepKey *device, int64_t alg, uint8_t **owned);

/* Build a signed SUIT install envelope for component name with payload; returns its bytes. */
TeepBuf envelope_install(const TeepKey *signer, const char *component, uint64_t seq, const char *uri,
                         const void *payload, size_t payload_len, uint8_t **owned);
TeepBuf envelope_unlink(const TeepKey *signer, const char *component, const char *manifest_id, uint64_t seq,
                        uint8_t **owned);

/* Whether s contains needle (for logs). */
bool contains(const char *s, const char *needle);
