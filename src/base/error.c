/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int verror(al_error *err, int errnum, int with_errno, const char *fmt,
                  va_list ap) {
        if (errnum < 0)
                errnum = -errnum;
        if (errnum == 0)
                errnum = EIO;
        if (!err)
                return -errnum;
        err->code = errnum;
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        if (n < 0)
                err->msg[0] = '\0';
        if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg)) {
                char buf[128];
                /* GNU strerror_r returns a pointer that may or may not be buf */
                const char *s = strerror_r(errnum, buf, sizeof(buf));
                snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", s);
        }
        return -errnum;
}

int al_error_set(al_error *err, int errnum, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = verror(err, errnum, 0, fmt, ap);
        va_end(ap);
        return r;
}

int al_error_errno(al_error *err, int errnum, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = verror(err, errnum, 1, fmt, ap);
        va_end(ap);
        return r;
}

void al_error_clear(al_error *err) {
        if (err) {
                err->code = 0;
                err->msg[0] = '\0';
        }
}
