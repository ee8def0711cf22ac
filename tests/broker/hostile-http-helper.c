/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostile-http-helper.c: a compromised teep-broker-http, for test-transport-hostile.c. It takes
 * requests the way the real one does (http-wire.h: control socket on fd 3) and answers each as
 * $HOSTILE_MODE says: the broker must fail the request with a named error and go on. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-wire.h"

static void put(int fd, uint32_t type, const void *p, size_t n) {
        HttpWireFrame f = { .type = type, .len = (uint32_t)n };

        if (write(fd, &f, sizeof(f)) != (ssize_t)sizeof(f) || (n && write(fd, p, n) != (ssize_t)n))
                exit(3);
}

static void done(int fd, const HttpWireDone *d, const char *text, size_t body) {
        uint8_t buf[sizeof(*d) + 64 + 4096] = {};
        size_t n = sizeof(*d) + strlen(text) + body;

        memcpy(buf, d, sizeof(*d));
        memcpy(buf + sizeof(*d), text, strlen(text));
        put(fd, HTTP_WIRE_DONE, buf, n);
}

static void answer(const char *mode, const HttpWireStart *st, int chan) {
        HttpWireDone d = { .status = 200, .content_length = UINT64_MAX };
        uint8_t junk[4096];

        memset(junk, 'x', sizeof(junk));
        if (strcmp(mode, "exit") == 0)
                exit(0); /* mid-request, no answer */
        if (strcmp(mode, "hang") == 0) {
                /* no answer, ever; gone when the broker lets go of us (the end of fd 3) */
                while (read(3, junk, sizeof(junk)) > 0)
                        ;
                exit(0);
        }
        if (strcmp(mode, "deaf") == 0) {
                /* no answer, and deaf to the end of fd 3: only the broker's death ends it */
                for (;;)
                        pause();
        }
        if (strcmp(mode, "unknown-frame") == 0) {
                put(chan, 99, junk, 8);
                return;
        }
        if (strcmp(mode, "huge-frame") == 0) {
                HttpWireFrame f = { .type = HTTP_WIRE_DONE, .len = UINT32_MAX };
                (void)!write(chan, &f, sizeof(f));
                return;
        }
        if (strcmp(mode, "body-over-limit") == 0) {
                /* a body larger than the request's limit, framed correctly */
                d.body_len = (uint32_t)st->max + 1;
                d.received = d.body_len;
                done(chan, &d, "", d.body_len);
                return;
        }
        if (strcmp(mode, "lengths-disagree") == 0) {
                d.message_len = 200; /* more than the frame holds */
                done(chan, &d, "short", 0);
                return;
        }
        if (strcmp(mode, "positive-error") == 0) {
                d.error = 5;
                d.message_len = 3;
                done(chan, &d, "bad", 0);
                return;
        }
        if (strcmp(mode, "data-for-a-post") == 0) {
                put(chan, HTTP_WIRE_DATA, junk, 16);
                return;
        }
        if (strcmp(mode, "short-headers") == 0) {
                put(chan, HTTP_WIRE_HEADERS, junk, 2); /* a content length is 8 bytes */
                return;
        }
        if (strcmp(mode, "stream-over-limit") == 0) {
                uint64_t cl = UINT64_MAX;
                put(chan, HTTP_WIRE_HEADERS, &cl, sizeof(cl));
                for (uint64_t sent = 0; sent <= st->max; sent += sizeof(junk))
                        put(chan, HTTP_WIRE_DATA, junk, sizeof(junk));
                return;
        }
        if (strcmp(mode, "honest") == 0) {
                d.body_len = 3;
                d.received = 3;
                d.content_type_len = (uint32_t)strlen("application/teep+cbor");
                done(chan, &d, "application/teep+cbor", 3); /* three zero bytes of body */
                return;
        }
        exit(4);
}

int main(void) {
        const char *mode = getenv("HOSTILE_MODE");
        HttpWireStartPacket buf;
        HttpWireFdControl control;

        if (!mode)
                return 2;
        for (;;) {
                struct iovec iov = { .iov_base = &buf, .iov_len = sizeof(buf) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                struct cmsghdr *cm;
                uint8_t body[65536];
                ssize_t n = recvmsg(3, &mh, 0);
                int chan = -1;

                if (n <= 0)
                        return 0;
                cm = CMSG_FIRSTHDR(&mh);
                if (!cm || cm->cmsg_type != SCM_RIGHTS)
                        return 5;
                memcpy(&chan, CMSG_DATA(cm), sizeof(int));
                /* the broker made both ends non-blocking; this one blocks */
                (void)fcntl(chan, F_SETFL, fcntl(chan, F_GETFL) & ~O_NONBLOCK);
                for (uint64_t got = 0; got < buf.start.body_len;) {
                        ssize_t r = read(chan, body, sizeof(body));
                        if (r < 0 && errno == EAGAIN)
                                continue;
                        if (r <= 0)
                                return 6;
                        got += (uint64_t)r;
                }
                /* the channel is the broker's non-blocking socket's twin: block here */
                answer(mode, &buf.start, chan);
                if (strcmp(mode, "hang") != 0)
                        close(chan);
        }
}
