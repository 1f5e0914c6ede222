/* SPDX-License-Identifier: MIT */
/* Small pieces the subcommands share. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "macro.h"

int cli_read_all(const char *path, size_t max, unsigned char **ret,
                 size_t *ret_len) {
        _cleanup_close_ int fd = strcmp(path, "-") == 0
                                         ? dup(0)
                                         : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t cap = 65536, len = 0;
        _cleanup_free_ unsigned char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= max + (size_t)1)
                                return -EFBIG;
                        cap *= 2;
                        if (cap > max + (size_t)1)
                                cap = max + 1;
                        unsigned char *nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        *ret = steal_pointer(&buf);
        *ret_len = len;
        return 0;
}
