/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tam-test.c: see tam-test.h */

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "tam-test.h"
#include "teep-component.h"
#include "teep-protocol.h"
#include "teep-suit.h"

char *tmpdir_new(const char *prefix) {
        char *d = NULL;

        cr_assert(asprintf(&d, "/tmp/%s-XXXXXX", prefix) > 0);
        cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
        return d;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void tmpdir_remove(char *dir) {
        if (!dir)
                return;
        if (!getenv("TEEP_KEEP_TMP"))
                (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

const char *path_in(const char *dir, const char *name) {
        static char ring[8][1024];
        static unsigned next;
        char *p = ring[next++ % 8];

        snprintf(p, sizeof(ring[0]), "%s/%s", dir, name);
        return p;
}

void file_write(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const uint8_t *p = data;

        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                cr_assert(n > 0, "write %s: %s", path, strerror(errno));
                p += n;
                len -= (size_t)n;
        }
        close(fd);
}

TeepBuf file_read(const char *path, uint8_t **owned) {
        size_t n = 0;
        int r = read_full_file(path, 128u << 20, owned, &n);

        cr_assert_eq(r, 0, "read %s: %s", path, strerror(-r));
        return TEEP_BUF(*owned, n);
}

bool file_exists(const char *path) {
        return access(path, F_OK) == 0;
}

bool contains(const char *s, const char *needle) {
        return s && needle && strstr(s, needle) != NULL;
}

static char *slurp_fd(int fd, size_t *ret_len) {
        uint8_t *d = NULL;
        size_t n = 0;
        char path[64];

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        cr_assert_eq(read_full_file(path, 64u << 20, &d, &n), 0);
        if (ret_len)
                *ret_len = n;
        return (char *)d;
}

Run run_argv(unsigned timeout_sec, const char *const *argv) {
        char outp[] = "/tmp/tam-test-out-XXXXXX", errp[] = "/tmp/tam-test-err-XXXXXX";
        int fo = mkostemp(outp, O_CLOEXEC), fe = mkostemp(errp, O_CLOEXEC), st = 0;
        struct timespec start, now;
        Run r = {};
        pid_t pid;

        cr_assert(fo >= 0 && fe >= 0);
        unlink(outp);
        unlink(errp);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                dup2(fo, STDOUT_FILENO);
                dup2(fe, STDERR_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec > (time_t)timeout_sec) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        cr_assert_fail("%s did not finish within %u s", argv[0], timeout_sec);
                }
                nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        }
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = slurp_fd(fo, &r.out_len);
        r.err = slurp_fd(fe, NULL);
        close(fo);
        close(fe);
        return r;
}

void run_done(Run *r) {
        free(r->out);
        free(r->err);
        *r = (Run){};
}

static const char *env_bin(const char *name) {
        const char *v = getenv(name);
        cr_assert(v && *v, "%s is not set (tests/tam/meson.build sets it)", name);
        return v;
}

const char *bin_manifest(void) {
        return env_bin("TEEP_MANIFEST");
}

const char *bin_tam(void) {
        return env_bin("TEEP_TAM");
}

const char *bin_teepctl(void) {
        return env_bin("TEEPCTL");
}

void tam_start(TamProc *t, const char *dir, const char *const *args) {
        const char *argv[64];
        char port_file[512];
        size_t n = 0;
        struct timespec start, now;

        snprintf(port_file, sizeof(port_file), "%s/tam.port", dir);
        snprintf(t->log, sizeof(t->log), "%s/tam.log", dir);
        unlink(port_file);
        argv[n++] = bin_tam();
        argv[n++] = "--port-file";
        argv[n++] = port_file;
        argv[n++] = "--lifetime";
        argv[n++] = "60";
        for (size_t i = 0; args && args[i]; i++) {
                cr_assert(n < ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        argv[n] = NULL;

        t->pid = fork();
        cr_assert(t->pid >= 0);
        if (t->pid == 0) {
                int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0)
                        dup2(fd, STDERR_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                int st;
                uint8_t *d = NULL;
                size_t len = 0;

                if (read_full_file(port_file, 64, &d, &len) == 0 && len > 0 && d[len - 1] == '\n') {
                        t->port = (unsigned)strtoul((char *)d, NULL, 10);
                        free(d);
                        break;
                }
                free(d);
                if (waitpid(t->pid, &st, WNOHANG) == t->pid) {
                        _cleanup_free_ char *log = NULL;
                        t->pid = 0;
                        log = tam_log(t);
                        cr_assert_fail("teep-tam exited at start (status %d): %s", st, log ?: "");
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                cr_assert(now.tv_sec - start.tv_sec < 10,
                          "teep-tam did not write its port file within 10 s");
                nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        }
        cr_assert(t->port > 0 && t->port < 65536);
        snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%u", t->port);
        snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%u/tam", t->port);
}

int tam_stop(TamProc *t) {
        struct timespec start, now;
        int st = 0;

        if (t->pid <= 0)
                return 0;
        kill(t->pid, SIGTERM);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (waitpid(t->pid, &st, WNOHANG) == t->pid)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec > 10) {
                        kill(t->pid, SIGKILL);
                        waitpid(t->pid, &st, 0);
                        break;
                }
                nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        }
        t->pid = 0;
        st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (st != 0)
                t->bad_exits++;
        return st;
}

char *tam_log(const TamProc *t) {
        uint8_t *d = NULL;
        size_t n = 0;

        if (read_full_file(t->log, 16u << 20, &d, &n) < 0)
                return strdup("");
        return (char *)d;
}

typedef struct Buffer {
        uint8_t *data;
        size_t len;
} Buffer;

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        Buffer *b = userdata;
        size_t k = size * n;
        uint8_t *d;

        if (b->len + k > (128u << 20))
                return 0;
        d = realloc(b->data, b->len + k + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, p, k);
        b->data = d;
        b->len += k;
        b->data[b->len] = 0;
        return k;
}

static Http http_do(const char *url, bool post, const void *body, size_t len, const char *content_type,
                    const char *extra_header) {
        CURL *c = curl_easy_init();
        struct curl_slist *headers = NULL;
        Buffer b = {}, hb = {};
        char *ct = NULL;
        char line[256];
        Http h = {};

        cr_assert_not_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
        if (post) {
                if (!extra_header || strncasecmp(extra_header, "Accept:", 7) != 0)
                        headers = curl_slist_append(headers, "Accept: " TEEP_MEDIA_TYPE);
                if (content_type) {
                        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
                        headers = curl_slist_append(headers, line);
                } else
                        headers = curl_slist_append(headers, "Content-Type:");
                curl_easy_setopt(c, CURLOPT_POST, 1L);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, len > 0 ? body : "");
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        if (extra_header)
                headers = curl_slist_append(headers, extra_header);
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

        h.curl_code = (int)curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &h.seconds);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                snprintf(h.content_type, sizeof(h.content_type), "%s", ct);
        h.body = b.data;
        h.len = b.len;
        h.headers = hb.data ? (char *)hb.data : strdup("");
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        return h;
}

Http http_post(const char *url, const void *body, size_t len, const char *content_type,
               const char *extra_header) {
        return http_do(url, true, body, len, content_type, extra_header);
}

Http http_get(const char *url) {
        return http_do(url, false, NULL, 0, NULL, NULL);
}

void http_done(Http *h) {
        free(h->body);
        free(h->headers);
        *h = (Http){};
}

Http http_connect(const TamProc *t) {
        Http h = http_post(t->url, NULL, 0, TEEP_MEDIA_TYPE, NULL);

        cr_assert_eq(h.curl_code, 0, "curl: %s", curl_easy_strerror(h.curl_code));
        cr_assert_eq(h.status, 200, "empty POST answered %ld", h.status);
        cr_assert_str_eq(h.content_type, TEEP_MEDIA_TYPE);
        return h;
}

TeepKey *key_new(TeepKeyType type) {
        TeepKey *k = NULL;

        cr_assert_eq(teep_key_generate(&k, type), 0);
        return k;
}

void key_write_private(const TeepKey *k, const char *path) {
        char *pem = NULL;
        size_t n = 0;

        cr_assert_eq(teep_key_export_private_pem(k, &pem, &n), 0);
        file_write(path, pem, n);
        chmod(path, 0600);
        free(pem);
}

void key_write_public(const TeepKey *k, const char *path) {
        char *pem = NULL;

        cr_assert_eq(teep_key_export_pem(k, &pem), 0);
        file_write(path, pem, strlen(pem));
        free(pem);
}

TeepMessage *teep_open(TeepBuf body, TeepKey *key) {
        TeepCoseMessage cose;
        TeepMessage *m = NULL;
        TeepError err = {};
        int r;

        r = teep_cose_decode(body, &cose, &err);
        cr_assert_eq(r, 0, "not COSE: %s", err.detail);
        if (key) {
                r = teep_cose_verify(&cose, NULL, &key, 1, NULL, NULL, &err);
                cr_assert_eq(r, 0, "does not verify with the TAM key: %s", err.detail);
        }
        r = teep_message_decode(cose.payload, &m, &err);
        cr_assert_eq(r, 0, "not a TEEP message: %s", err.detail);
        return m;
}

TeepBuf device_sign(const TeepMessage *m, const TeepKey *device, int64_t alg, uint8_t **owned) {
        _cleanup_free_ uint8_t *payload = NULL;
        size_t plen = 0, n = 0;

        cr_assert_eq(teep_message_encode(m, &payload, &plen), 0);
        cr_assert_eq(teep_cose_sign1(device, alg, NULL, TEEP_BUF(payload, plen), false, owned, &n), 0);
        return TEEP_BUF(*owned, n);
}

static void component_from(const char *name, uint8_t **enc, TeepSuitComponentId *id) {
        size_t n = 0;

        cr_assert_eq(teep_suit_component_id_from_string(name, enc, &n), 0, "bad component %s", name);
        cr_assert_eq(teep_suit_component_id_decode(TEEP_BUF(*enc, n), id, NULL), 0);
}

static const uint8_t vendor_id[16] = {0xc0, 0xdd, 0xd5, 0xf1, 0x52, 0x43, 0x56, 0x60,
                                      0x87, 0xdb, 0x4f, 0x5b, 0x0a, 0xa2, 0x6c, 0x2f};
static const uint8_t class_id[16] = {0xdb, 0x42, 0xf7, 0x09, 0x3d, 0x8c, 0x55, 0xba,
                                     0xa8, 0xc5, 0x26, 0x5f, 0xc5, 0x82, 0x0f, 0x4e};

TeepBuf envelope_install(const TeepKey *signer, const char *component, uint64_t seq, const char *uri,
                         const void *payload, size_t payload_len, uint8_t **owned) {
        _cleanup_free_ uint8_t *enc = NULL, *menc = NULL;
        _cleanup_free_ char *mname = NULL;
        TeepSuitComponentId id, mid;
        uint8_t digest[32];
        size_t n = 0, k = strlen(component);
        TeepSuitBuild b = {};

        component_from(component, &enc, &id);
        if (k > 3 && strcmp(component + k - 3, "/ta") == 0) {
                cr_assert(asprintf(&mname, "%.*s/suit", (int)(k - 3), component) > 0);
                component_from(mname, &menc, &mid);
                b.manifest_component_id = &mid;
        }
        cr_assert_eq(teep_sha256(TEEP_BUF(payload, payload_len), digest), 0);
        b.component_id = &id;
        b.sequence_number = seq;
        b.vendor_id = TEEP_BUF(vendor_id, 16);
        b.class_id = TEEP_BUF(class_id, 16);
        b.image_digest = TEEP_BUF(digest, 32);
        b.image_size = payload_len;
        b.uri = uri ?: "#tc";
        if (b.uri[0] == '#')
                b.payload = TEEP_BUF(payload_len ? payload : "", payload_len);
        b.uninstall_unlink = true;
        cr_assert_eq(teep_suit_envelope_build_install(&b, signer, 0, owned, &n), 0);
        return TEEP_BUF(*owned, n);
}

TeepBuf envelope_unlink(const TeepKey *signer, const char *component, const char *manifest_id, uint64_t seq,
                        uint8_t **owned) {
        _cleanup_free_ uint8_t *enc = NULL, *menc = NULL;
        TeepSuitComponentId id, mid;
        TeepSuitBuild b = {};
        size_t n = 0;

        component_from(component, &enc, &id);
        if (manifest_id) {
                component_from(manifest_id, &menc, &mid);
                b.manifest_component_id = &mid;
        }
        b.component_id = &id;
        b.sequence_number = seq;
        b.vendor_id = TEEP_BUF(vendor_id, 16);
        b.class_id = TEEP_BUF(class_id, 16);
        cr_assert_eq(teep_suit_envelope_build_unlink(&b, signer, 0, owned, &n), 0);
        return TEEP_BUF(*owned, n);
}
