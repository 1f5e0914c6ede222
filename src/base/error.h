/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Error reporting for library code.
 *
 * Library functions return -errno and, when the caller needs words, fill an
 * al_error. The struct holds a fixed buffer and the setter never allocates,
 * so it is safe in the child between clone() and execve(), where the message
 * is sent to the supervisor over a pipe.
 */
#include <stddef.h>

#include "airlock.h" /* struct al_error */

/* Record errnum and a formatted message; returns -errnum so callers can
 * `return al_error_set(err, EINVAL, "...")`. err may be NULL. */
int al_error_set(al_error *err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errnum)". */
int al_error_errno(al_error *err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

void al_error_clear(al_error *err);
