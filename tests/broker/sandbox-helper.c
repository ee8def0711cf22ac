/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox-helper.c: under teep-brokerd's real seccomp filter, do what the broker does (HTTPS to a
 * TAM by host name through teep-broker-http, which it starts from under the filter; a payload
 * pipe) and try what it must not (exec by name, raw sockets, file writes). Run by
 * test-sandbox.c, never inside criterion's worker. Usage: sandbox-helper PKI-DIR; the helper
 * binary is $TEEP_BROKER_HTTP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "transport.h"

static char *slurp(const char *dir, const char *name) {
        char path[512];
        FILE *f;
        char *buf = calloc(1, 65536);
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f || !buf)
                exit(2);
        n = fread(buf, 1, 65535, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
        static int marker;
        struct MHD_Response *r;
        enum MHD_Result ret;

        if (!*con_cls) {
                *con_cls = &marker;
                return MHD_YES;
        }
        *upload_data_size = 0;
        r = MHD_create_response_from_buffer(4, (void *)"\x84\x01\x02\x03", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "application/teep+cbor");
        ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
}

typedef struct Outcome {
        bool done;
        int error;
        long status;
        char message[512];
} Outcome;

static void on_done(HttpRequest *req, const HttpResult *res, void *userdata) {
        Outcome *o = userdata;
        o->done = true;
        o->error = res->error;
        o->status = res->status;
        snprintf(o->message, sizeof(o->message), "%s", res->message ?: "");
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct MHD_Daemon *d;
        sd_event *e = NULL;
        Transport *t = NULL;
        HttpRequest *req = NULL;
        Outcome o = {};
        char ca[512], uri[128], *key, *cert;
        time_t end;
        pid_t pid;
        int status, fd, pfd[2], r;
        char buf[8];

        if (argc != 2)
                return 2;
        /* all set up before the filter, as in the daemon */
        key = slurp(argv[1], "srv.key");
        cert = slurp(argv[1], "srv.pem");
        d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                             NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_KEY, key,
                             MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
        if (!d)
                return 3;
        snprintf(ca, sizeof(ca), "%s/ca.pem", argv[1]);
        snprintf(uri, sizeof(uri), "https://localhost:%u/tam",
                 MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
        if (sd_event_new(&e) < 0)
                return 4;
        if (transport_new(e,
                          &(TransportConfig){ .connect_timeout_usec = 5000000,
                                              .timeout_usec = 10000000,
                                              .ca_file = ca,
                                              .helper_path = getenv("TEEP_BROKER_HTTP") },
                          &t) < 0 ||
            http_request_new(t, &req) < 0)
                return 5;

        unsetenv("TEEP_SECCOMP"); /* the debugging switch must not hide the filter here */
        r = broker_sandbox_apply();
        if (r < 0) {
                fprintf(stderr, "broker_sandbox_apply: %s\n", strerror(-r));
                return 10;
        }

        /* what the broker does: start its HTTP helper (which resolves a name, speaks TLS with the
         * configured CA, POSTs, reads) and read the answer from it */
        if (http_request_post_teep(req, uri, NULL, 0, 1 << 20, on_done, &o) < 0)
                return 11;
        end = time(NULL) + 20;
        while (!o.done && time(NULL) < end)
                if (sd_event_run(e, 100000) < 0)
                        return 11;
        if (!o.done || o.error < 0 || o.status != 200) {
                fprintf(stderr, "https under the filter: %d %ld %s\n", o.error, o.status, o.message);
                return 11;
        }
        printf("https: ok\n");

        /* a payload for the agent: a pipe, our end non-blocking and larger (broker/fetcher.c) */
        if (pipe2(pfd, O_CLOEXEC) < 0 || fcntl(pfd[1], F_SETFL, fcntl(pfd[1], F_GETFL) | O_NONBLOCK) < 0 ||
            fcntl(pfd[1], F_SETPIPE_SZ, 1024 * 1024) < 0 || write(pfd[1], "abc", 3) != 3 ||
            read(pfd[0], buf, sizeof(buf)) != 3) {
                fprintf(stderr, "pipe: %s\n", strerror(errno));
                return 12;
        }
        fd = pfd[0];
        close(pfd[1]);
        printf("pipe: ok\n");

        /* what it must not do */
        if (socket(AF_PACKET, SOCK_RAW, 0) >= 0 || errno != EPERM) {
                fprintf(stderr, "AF_PACKET socket: not refused (%s)\n", strerror(errno));
                return 13;
        }
        if (unlink("/tmp/teepkit-sandbox-helper-does-not-exist") == 0 || errno != EPERM) {
                fprintf(stderr, "unlink: not refused (%s)\n", strerror(errno));
                return 14;
        }
        printf("refused: ok\n");
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return 15;
        if (pid == 0) {
                execl("/bin/true", "true", (char *)NULL);
                _exit(99); /* exec must not even return */
        }
        if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS) {
                fprintf(stderr, "exec: child status %#x, not killed by SIGSYS\n", status);
                return 16;
        }
        printf("exec: killed\n");
        /* the broker's one exec is by the descriptor it opened before the box; by name: refused */
        if (syscall(SYS_execveat, AT_FDCWD, "/bin/true", (char *[]){ "true", NULL }, (char *[]){ NULL }, 0) == 0 ||
            errno != EPERM) {
                fprintf(stderr, "execveat by name: not refused (%s)\n", strerror(errno));
                return 17;
        }
        printf("execveat by name: refused\n");
        fflush(stdout);
        close(fd);

        http_request_free(req);
        transport_free(t);
        sd_event_unref(e);
        MHD_stop_daemon(d);
        free(key);
        free(cert);
        return 0;
}
