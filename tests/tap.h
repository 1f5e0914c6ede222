/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A minimal TAP producer for unit tests, run under prove.
 * ASSERT_* print file, line and both values, then mark the test failed
 * and return from the test function.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;
static int tap_cur_failed;

#define TAP_PLAN_DONE() printf("1..%d\n", tap_n)

#define ASSERT_TRUE(c)                                                         \
        do {                                                                   \
                if (!(c)) {                                                    \
                        printf("#   %s:%d: expected true: %s\n", __FILE__,     \
                               __LINE__, #c);                                  \
                        tap_cur_failed = 1;                                    \
                        return;                                                \
                }                                                              \
        } while (0)

#define ASSERT_INT_EQ(a, b)                                                    \
        do {                                                                   \
                intmax_t _a = (intmax_t)(a), _b = (intmax_t)(b);               \
                if (_a != _b) {                                                \
                        printf("#   %s:%d: %s == %s: got %jd, want %jd\n",     \
                               __FILE__, __LINE__, #a, #b, _a, _b);            \
                        tap_cur_failed = 1;                                    \
                        return;                                                \
                }                                                              \
        } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
        do {                                                                   \
                const char *_a = (a), *_b = (b);                               \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                       \
                        printf("#   %s:%d: %s == %s: got \"%s\", want "        \
                               "\"%s\"\n",                                     \
                               __FILE__, __LINE__, #a, #b,                     \
                               _a ? _a : "(null)", _b ? _b : "(null)");        \
                        tap_cur_failed = 1;                                    \
                        return;                                                \
                }                                                              \
        } while (0)

/* Run one test function and print its TAP line. */
#define RUN(fn)                                                                \
        do {                                                                   \
                tap_cur_failed = 0;                                            \
                fflush(stdout);                                                \
                fn();                                                          \
                tap_n++;                                                       \
                if (tap_cur_failed)                                            \
                        tap_failed++;                                          \
                printf("%sok %d - %s\n", tap_cur_failed ? "not " : "", tap_n,  \
                       #fn);                                                   \
                fflush(stdout);                                                \
        } while (0)

#define SKIP(fn, why)                                                          \
        do {                                                                   \
                tap_n++;                                                       \
                printf("ok %d - %s # SKIP %s\n", tap_n, #fn, why);             \
        } while (0)

#define TAP_END()                                                              \
        do {                                                                   \
                TAP_PLAN_DONE();                                               \
                return tap_failed ? 1 : 0;                                     \
        } while (0)

/* RUN, with a name the test function chose at run time (e.g. from what a
 * probe of the host found): fn sets *name before it returns. */
#define RUN_NAMED(fn, name)                                                    \
        do {                                                                   \
                tap_cur_failed = 0;                                            \
                fflush(stdout);                                                \
                fn();                                                          \
                tap_n++;                                                       \
                if (tap_cur_failed)                                            \
                        tap_failed++;                                          \
                printf("%sok %d - %s\n", tap_cur_failed ? "not " : "", tap_n,  \
                       (name));                                                \
                fflush(stdout);                                                \
        } while (0)
