/* SPDX-License-Identifier: MIT */
#pragma once
/* Cleanup attributes and small helpers shared by every module. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes the fd, keeping errno intact; accepts -1. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership on: returns the value and resets the variable. */
#define steal_pointer(pp)                                                      \
        ({                                                                     \
                __typeof__(*(pp)) _p = *(pp);                                  \
                *(pp) = NULL;                                                  \
                _p;                                                            \
        })
#define steal_fd(pfd)                                                          \
        ({                                                                     \
                int _fd = *(pfd);                                              \
                *(pfd) = -1;                                                   \
                _fd;                                                           \
        })
