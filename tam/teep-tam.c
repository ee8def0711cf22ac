/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-tam.c: the reference TAM: TEEP over HTTP on loopback, for tests, the demo and devstack */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "macro.h"
#include "tam-util.h"
#include "tam.h"

#define LIFETIME_DEFAULT_SEC 3600u
#define LIFETIME_MAX_SEC     (7u * 24u * 3600u)
#define TIMEOUT_DEFAULT_SEC  30u
#define MAX_BODY_DEFAULT     (1u << 20)
#define MAX_REVOKED          64

static void help(FILE *f) {
        fprintf(f,
                "Usage: teep-tam --key TAM.pem --tc-dir DIR --device-keys DIR --state-dir DIR [OPTIONS]\n\n"
                "A reference TEEP TAM over HTTP (POST http://ADDR:PORT/tam), for tests and demos.\n\n"
                "  --listen ADDR:PORT      where to listen (default 127.0.0.1:0, any free port)\n"
                "  --port-file FILE        write the bound port to FILE once listening\n"
                "  --key FILE              the TAM's signing key (PEM; repeatable: P-256 and Ed25519)\n"
                "  --tc-dir DIR            signed SUIT envelopes (*.suit) to serve\n"
                "  --payload-dir DIR       files served at /payload/NAME (default TC-DIR/payloads)\n"
                "  --device-keys DIR       enrolled device public keys\n"
                "  --state-dir DIR         per-device state\n"
                "  --mode token|attestation\n"
                "                          attestation also sends a challenge and verifies the EAT\n"
                "  --legacy                emit ES256/EdDSA (-7/-8) instead of ESP256/Ed25519\n"
                "  --revoke COMPONENT      remove this TC from devices that have it (repeatable)\n"
                "  --fault NAME[:ARG][@STEP,...]\n"
                "                          hostile mode (repeatable): %s\n"
                "  --fault-key FILE        the key the wrong-role-key fault signs with (e.g. a TC signer's)\n"
                "  --transcript DIR        write every POST body received to DIR/NNNNNN.cbor\n"
                "  --extra-manifest FILE   hostile: add FILE's bytes to every Update's manifest-list, unparsed\n"
                "  --lifetime SEC          exit after SEC seconds (default %u)\n"
                "  --max-body BYTES        largest request body (default 1M; K/M/G suffixes)\n"
                "  --timeout SEC           idle connection timeout (default %u)\n"
                "  --session-timeout SEC   how long a session waits for the device (default %u)\n"
                "  --allow-remote          allow a non-loopback --listen address\n"
                "  --no-sync               no fsync of the device state files (benchmarks)\n"
                "  --version, --help\n\n"
                "See teep-tam(8).\n",
                tam_fault_names(), LIFETIME_DEFAULT_SEC, TIMEOUT_DEFAULT_SEC,
                TAM_SESSION_TIMEOUT_DEFAULT_SEC);
}

static int parse_seconds(const char *s, unsigned max, unsigned *ret) {
        uint64_t usec;

        if (teep_parse_usec(s, &usec) < 0 || usec < 1000000u || usec / 1000000u > max)
                return -EINVAL;
        *ret = (unsigned)(usec / 1000000u);
        return 0;
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080", or just a port. */
static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *colon;
        char *end;
        unsigned long port;

        colon = strrchr(s, ':');
        if (!colon) {
                host = strdup("127.0.0.1");
                colon = s - 1;
        } else if (s[0] == '[') {
                if (colon == s || colon[-1] != ']')
                        return -EINVAL;
                host = strndup(s + 1, (size_t)(colon - s - 2));
        } else
                host = strndup(s, (size_t)(colon - s));
        if (!host)
                return -ENOMEM;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end || end == colon + 1 || port > 65535)
                return -EINVAL;
        if (strcmp(host, "localhost") == 0) {
                free(host);
                host = strdup("127.0.0.1");
                if (!host)
                        return -ENOMEM;
        }

        memset(ret, 0, sizeof(*ret));
        {
                struct sockaddr_in *in4 = (struct sockaddr_in *)ret;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

                if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                        in4->sin_family = AF_INET;
                        in4->sin_port = htons((uint16_t)port);
                        *ret_len = sizeof(*in4);
                        return 0;
                }
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                        in6->sin6_family = AF_INET6;
                        in6->sin6_port = htons((uint16_t)port);
                        *ret_len = sizeof(*in6);
                        return 0;
                }
        }
        return -EINVAL;
}

static bool is_loopback(const struct sockaddr_storage *a) {
        if (a->ss_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
        return a->ss_family == AF_INET6 &&
               IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static int ensure_dir(const char *path) {
        struct stat st;

        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int main(int argc, char **argv) {
        enum {
                ARG_LISTEN = 0x100,
                ARG_PORT_FILE,
                ARG_KEY,
                ARG_TC_DIR,
                ARG_PAYLOAD_DIR,
                ARG_DEVICE_KEYS,
                ARG_STATE_DIR,
                ARG_MODE,
                ARG_LEGACY,
                ARG_REVOKE,
                ARG_FAULT,
                ARG_FAULT_KEY,
                ARG_TRANSCRIPT,
                ARG_EXTRA_MANIFEST,
                ARG_LIFETIME,
                ARG_MAX_BODY,
                ARG_TIMEOUT,
                ARG_SESSION_TIMEOUT,
                ARG_ALLOW_REMOTE,
                ARG_NO_SYNC,
                ARG_VERSION,
        };
        static const struct option options[] = {
                {"listen", required_argument, NULL, ARG_LISTEN},
                {"port-file", required_argument, NULL, ARG_PORT_FILE},
                {"key", required_argument, NULL, ARG_KEY},
                {"tc-dir", required_argument, NULL, ARG_TC_DIR},
                {"payload-dir", required_argument, NULL, ARG_PAYLOAD_DIR},
                {"device-keys", required_argument, NULL, ARG_DEVICE_KEYS},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"mode", required_argument, NULL, ARG_MODE},
                {"legacy", no_argument, NULL, ARG_LEGACY},
                {"revoke", required_argument, NULL, ARG_REVOKE},
                {"fault", required_argument, NULL, ARG_FAULT},
                {"fault-key", required_argument, NULL, ARG_FAULT_KEY},
                {"transcript", required_argument, NULL, ARG_TRANSCRIPT},
                {"extra-manifest", required_argument, NULL, ARG_EXTRA_MANIFEST},
                {"lifetime", required_argument, NULL, ARG_LIFETIME},
                {"max-body", required_argument, NULL, ARG_MAX_BODY},
                {"timeout", required_argument, NULL, ARG_TIMEOUT},
                {"session-timeout", required_argument, NULL, ARG_SESSION_TIMEOUT},
                {"allow-remote", no_argument, NULL, ARG_ALLOW_REMOTE},
                {"no-sync", no_argument, NULL, ARG_NO_SYNC},
                {"version", no_argument, NULL, ARG_VERSION},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(tam_freep) Tam *tam = NULL;
        _cleanup_free_ char *default_payload_dir = NULL;
        TamConfig config = {.mode = TAM_MODE_TOKEN};
        const char *listen = "127.0.0.1:0", *port_file = NULL, *key_paths[TAM_MAX_KEYS];
        const char *revoked[MAX_REVOKED + 1] = {};
        const char *fault_key_path = NULL;
        size_t n_key_paths = 0, n_revoked = 0;
        unsigned lifetime = LIFETIME_DEFAULT_SEC, timeout = TIMEOUT_DEFAULT_SEC,
                 session_timeout = TAM_SESSION_TIMEOUT_DEFAULT_SEC;
        uint64_t max_body = MAX_BODY_DEFAULT;
        bool allow_remote = false;
        struct sockaddr_storage addr;
        socklen_t addr_len = 0;
        TamHttp *http = NULL;
        sigset_t mask;
        struct timespec start, now;
        char errbuf[512], host[INET6_ADDRSTRLEN];
        int c, r, sig = 0;

        log_setup("teep-tam");

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_LISTEN:
                        listen = optarg;
                        break;
                case ARG_PORT_FILE:
                        port_file = optarg;
                        break;
                case ARG_KEY:
                        if (n_key_paths >= TAM_MAX_KEYS) {
                                log_error("At most %u --key options", TAM_MAX_KEYS);
                                return 64;
                        }
                        key_paths[n_key_paths++] = optarg;
                        break;
                case ARG_TC_DIR:
                        config.tc_dir = optarg;
                        break;
                case ARG_PAYLOAD_DIR:
                        config.payload_dir = optarg;
                        break;
                case ARG_DEVICE_KEYS:
                        config.device_keys_dir = optarg;
                        break;
                case ARG_STATE_DIR:
                        config.state_dir = optarg;
                        break;
                case ARG_MODE:
                        if (strcmp(optarg, "token") == 0)
                                config.mode = TAM_MODE_TOKEN;
                        else if (strcmp(optarg, "attestation") == 0)
                                config.mode = TAM_MODE_ATTESTATION;
                        else {
                                log_error("--mode: '%s' is neither token nor attestation", optarg);
                                return 64;
                        }
                        break;
                case ARG_LEGACY:
                        config.legacy = true;
                        break;
                case ARG_REVOKE: {
                        TamComponent comp;
                        if (tam_component_parse(optarg, &comp) < 0) {
                                log_error("--revoke: '%s' is not a component name", optarg);
                                return 64;
                        }
                        tam_component_done(&comp);
                        if (n_revoked >= MAX_REVOKED) {
                                log_error("At most %u --revoke options", MAX_REVOKED);
                                return 64;
                        }
                        revoked[n_revoked++] = optarg;
                        break;
                }
                case ARG_FAULT_KEY:
                        fault_key_path = optarg;
                        break;
                case ARG_TRANSCRIPT:
                        config.transcript_dir = optarg;
                        break;
                case ARG_EXTRA_MANIFEST:
                        config.extra_manifest = optarg;
                        break;
                case ARG_FAULT:
                        if (tam_fault_parse(&config.faults, optarg, errbuf, sizeof(errbuf)) < 0) {
                                log_error("--fault %s", errbuf);
                                return 64;
                        }
                        break;
                case ARG_LIFETIME:
                        if (parse_seconds(optarg, LIFETIME_MAX_SEC, &lifetime) < 0) {
                                log_error("--lifetime: '%s' is not between 1 s and 7 days", optarg);
                                return 64;
                        }
                        break;
                case ARG_MAX_BODY:
                        if (teep_parse_size(optarg, &max_body) < 0 || max_body == 0 ||
                            max_body > (256u << 20)) {
                                log_error("--max-body: '%s' is not a size between 1 and 256M", optarg);
                                return 64;
                        }
                        break;
                case ARG_TIMEOUT:
                        if (parse_seconds(optarg, 3600, &timeout) < 0) {
                                log_error("--timeout: '%s' is not between 1 s and 1 h", optarg);
                                return 64;
                        }
                        break;
                case ARG_SESSION_TIMEOUT:
                        if (parse_seconds(optarg, 24 * 3600, &session_timeout) < 0) {
                                log_error("--session-timeout: '%s' is not between 1 s and 1 day", optarg);
                                return 64;
                        }
                        break;
                case ARG_ALLOW_REMOTE:
                        allow_remote = true;
                        break;
                case ARG_NO_SYNC:
                        tam_sync_writes = false;
                        break;
                case ARG_VERSION:
                        printf("teep-tam %s\n", PACKAGE_VERSION);
                        return 0;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        help(stderr);
                        return 64;
                }
        if (optind != argc || n_key_paths == 0 || !config.tc_dir || !config.device_keys_dir ||
            !config.state_dir) {
                help(stderr);
                log_error("--key, --tc-dir, --device-keys and --state-dir are required");
                return 64;
        }
        if (parse_listen(listen, &addr, &addr_len) < 0) {
                log_error("--listen: '%s' is not ADDR:PORT with a numeric address", listen);
                return 64;
        }
        if (!is_loopback(&addr) && !allow_remote) {
                log_error("--listen: %s is not a loopback address; pass --allow-remote if you mean it",
                          listen);
                return 64;
        }

        for (size_t i = 0; i < n_key_paths; i++) {
                r = tam_key_load(key_paths[i], &config.keys[i], errbuf, sizeof(errbuf));
                if (r < 0) {
                        log_error("--key %s", errbuf);
                        goto fail_keys;
                }
                config.n_keys++;
                if (!teep_key_has_private(config.keys[i])) {
                        log_error("--key %s: a public key cannot sign; pass the TAM's private key",
                                  key_paths[i]);
                        r = -ENOKEY;
                        goto fail_keys;
                }
        }
        if (config.faults.fault[TAM_FAULT_WRONG_ROLE_KEY].enabled && !fault_key_path) {
                log_error("--fault wrong-role-key needs --fault-key FILE (the key to sign with instead)");
                r = -EINVAL;
                goto fail_keys;
        }
        if (fault_key_path) {
                r = tam_key_load(fault_key_path, &config.fault_key, errbuf, sizeof(errbuf));
                if (r >= 0 && !teep_key_has_private(config.fault_key)) {
                        log_error("--fault-key %s: a public key cannot sign", fault_key_path);
                        r = -ENOKEY;
                }
                if (r < 0) {
                        if (r != -ENOKEY)
                                log_error("--fault-key %s", errbuf);
                        goto fail_keys;
                }
        }
        if (config.transcript_dir) {
                r = ensure_dir(config.transcript_dir);
                if (r < 0) {
                        log_error("--transcript %s: %s", config.transcript_dir, strerror(-r));
                        goto fail_keys;
                }
        }
        if (!config.payload_dir) {
                if (asprintf(&default_payload_dir, "%s/payloads", config.tc_dir) < 0) {
                        r = -ENOMEM;
                        goto fail_keys;
                }
                config.payload_dir = default_payload_dir;
        }
        r = ensure_dir(config.state_dir);
        if (r < 0) {
                log_error("--state-dir %s: %s", config.state_dir, strerror(-r));
                goto fail_keys;
        }
        if (access(config.tc_dir, R_OK | X_OK) < 0)
                log_warning("--tc-dir %s: %s (no TCs to offer until it exists)", config.tc_dir,
                            strerror(errno));
        config.revoked = revoked;
        config.session_timeout_usec = (uint64_t)session_timeout * 1000000u;

        r = tam_new(&config, &tam);
        if (r < 0) {
                log_error("Cannot set up the TAM: %s", strerror(-r));
                goto fail_keys;
        }

        /* Signals are taken synchronously by the main thread; the server threads inherit the mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = tam_http_start(tam,
                           &(TamHttpConfig){.address = (struct sockaddr *)&addr,
                                            .address_len = addr_len,
                                            .max_body = (size_t)max_body,
                                            .timeout_sec = timeout,
                                            .max_connections = 64},
                           &http);
        if (r < 0) {
                log_error("Cannot listen on %s (address in use or not available)", listen);
                return 1;
        }
        if (port_file) {
                char text[16];
                int n = snprintf(text, sizeof(text), "%u\n", tam_http_port(http));
                r = tam_write_file_atomic(port_file, text, (size_t)n, 0644, true);
                if (r < 0) {
                        log_error("Cannot write the port file %s: %s", port_file, strerror(-r));
                        tam_http_stop(http);
                        return 1;
                }
        }
        if (addr.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, host, sizeof(host));
        else
                inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, host, sizeof(host));
        log_info("Listening on http://%s%s%s:%u/tam (mode %s%s, %zu key%s, lifetime %u s)",
                 addr.ss_family == AF_INET6 ? "[" : "", host, addr.ss_family == AF_INET6 ? "]" : "",
                 tam_http_port(http), config.mode == TAM_MODE_ATTESTATION ? "attestation" : "token",
                 config.legacy ? ", legacy" : "", n_key_paths, n_key_paths == 1 ? "" : "s", lifetime);
        for (int k = 0; k < _TAM_FAULT_MAX; k++)
                if (config.faults.fault[k].enabled)
                        log_info("Fault enabled: %s (steps 0x%x, arg %" PRIu64 ")", tam_fault_to_string(k),
                                 config.faults.fault[k].steps, config.faults.fault[k].arg);

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct timespec left;
                long elapsed;

                clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed = now.tv_sec - start.tv_sec;
                if (elapsed >= (long)lifetime)
                        break;
                left = (struct timespec){.tv_sec = (time_t)((long)lifetime - elapsed)};
                sig = sigtimedwait(&mask, NULL, &left);
                if (sig > 0)
                        break;
        }
        if (sig > 0)
                log_info("Received %s, exiting", strsignal(sig));
        else
                log_info("Lifetime of %u s is over, exiting", lifetime);
        http = tam_http_stop(http);
        log_info("Stopped (%zu sessions were still open)", tam_open_sessions(tam));
        return 0;

fail_keys:
        for (size_t i = 0; i < TAM_MAX_KEYS; i++)
                teep_key_free(config.keys[i]);
        teep_key_free(config.fault_key);
        return r == -ENOKEY || r == -EBADMSG || r == -EOPNOTSUPP ? 65 : 1;
}
