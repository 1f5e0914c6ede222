/* SPDX-License-Identifier: MIT */
#pragma once
/* Pure helpers: no system calls, no global state; unit-tested directly. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a decimal unsigned 64-bit number: digits only, no sign, no
 * whitespace, no overflow. Returns 0 or -EINVAL / -ERANGE. */
int al_parse_u64(const char *s, uint64_t *ret);

/* A relative path the caller may name inside the workspace: non-empty,
 * at most AL_PATH_MAX bytes, no leading '/', no "." or ".." or empty
 * component, no control characters. */
#define AL_PATH_MAX 255
bool al_rel_path_ok(const char *p);

/* An environment variable name: [A-Za-z_][A-Za-z0-9_]*, at most 128. */
bool al_env_name_ok(const char *n);

/* Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF). */
bool al_utf8_valid(const unsigned char *s, size_t len);

/* Copy s to a new buffer, replacing each invalid UTF-8 sequence by U+FFFD;
 * *ret_len receives the new length. NULL on allocation failure. */
char *al_utf8_sanitize(const unsigned char *s, size_t len, size_t *ret_len);

/* Standard base64 with padding; NULL on allocation failure. */
char *al_base64_encode(const unsigned char *s, size_t len);

/* A mime type for a file from its name and first bytes. Static string. */
const char *al_guess_mime(const char *name, const unsigned char *data,
                          size_t len);

/* Glob match of a workspace-relative path (glob.c): '*' and '?' stay
 * within one path component, [..] classes and '\' quoting as fnmatch; a
 * "**" component matches zero or more whole components, but one or more
 * when it ends the pattern (out then ** is the files under out, not a
 * file named out); "**" inside a component is a '*'. Time is
 * O(|pattern| x |path|), never exponential: al_glob_match_counted adds
 * the comparisons made to *steps (for tests). */
bool al_glob_match(const char *pattern, const char *path);
bool al_glob_match_counted(const char *pattern, const char *path,
                           uint64_t *steps);

/* Caps on a collect pattern; the matcher is polynomial anyway, these
 * keep its cost per path small. Deeper than AL_GLOB_MAX_DSTAR "**" means
 * nothing more: the collect walk stops at 16 directory levels. */
#define AL_GLOB_MAX_LEN AL_PATH_MAX
#define AL_GLOB_MAX_DSTAR 16
/* 0, or -ENAMETOOLONG / -E2BIG when a pattern exceeds a cap. */
int al_glob_check(const char *pattern);

/* Monotonic clock in milliseconds (the one impure helper: a clock read). */
double al_now_ms(void);

/* Now, UTC, as 2026-11-23T10:33:01.153Z. */
void al_utc_now(char out[32]);
