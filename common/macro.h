/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* macro.h: cleanup attributes and ownership helpers (our own few lines, after systemd's idiom) */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

/* Close fd if it is one; returns -1, for "fd = safe_close(fd);". */
static inline int safe_close(int fd) {
        closep(&fd);
        return -1;
}

/* Take ownership: return the pointer and leave NULL (or -1) behind. */
#define TAKE_PTR(p)                                    \
        ({                                             \
                __typeof__(p) *_pp = &(p);             \
                __typeof__(p) _v = *_pp;               \
                *_pp = NULL;                           \
                _v;                                    \
        })
#define TAKE_FD(fd)                                    \
        ({                                             \
                int *_pfd = &(fd);                     \
                int _v = *_pfd;                        \
                *_pfd = -1;                            \
                _v;                                    \
        })

/* DEFINE_TRIVIAL_CLEANUP_FUNC(Foo *, foo_free) gives foo_freep for _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        static inline void func##p(type *p) {          \
                if (*p)                                \
                        *p = func(*p);                 \
        }

/* Room for need elements in *p, an array of *allocated elements of size bytes: unchanged when
 * there is, else grown to first elements (when empty) or doubled until it fits. 0, or -ENOMEM
 * with *p and *allocated as they were. Use GREEDY_GROW(). */
static inline int greedy_grow(void **p, size_t *allocated, size_t need, size_t size, size_t first) {
        size_t m;
        void *q;

        if (need <= *allocated)
                return 0;
        m = *allocated ? *allocated : first;
        while (m < need) {
                if (m > SIZE_MAX / 2)
                        return -ENOMEM;
                m *= 2;
        }
        q = reallocarray(*p, m, size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = m;
        return 0;
}
#define GREEDY_GROW(array, allocated, need, first) \
        greedy_grow((void **)&(array), &(allocated), (need), sizeof(*(array)), (first))

/* Wipe then free: for key material and anything secret. */
static inline void *erase_and_free(void *p, size_t n) {
        if (p) {
                explicit_bzero(p, n);
                free(p);
        }
        return NULL;
}
