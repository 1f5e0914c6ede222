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

/* al_term_sanitize flags. */
#define AL_TERM_KEEP_NEWLINES 1u /* keep \n and \t as they are */
/* A copy of s[0..len) that is safe to print on a terminal, for output a
 * person reads: C0 controls, DEL and NUL become \xNN (\n and \t too unless
 * AL_TERM_KEEP_NEWLINES), C1 controls written as UTF-8 (U+0080..U+009F)
 * and the bidirectional overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069, which reorder what is shown) become \uXXXX, a byte that
 * is not part of valid UTF-8 becomes \xNN. Everything else is kept.
 * NUL-terminated; NULL on allocation failure. */
char *al_term_sanitize(const char *s, size_t len, unsigned flags);

/* Replace every copy of secret (4 bytes or more) in the NUL-terminated
 * text in buf[size] by "[key]". The result is built in a separate buffer
 * of the same size and copied back: it never grows past size (a text
 * holding the secret many times is cut, at a UTF-8 boundary, never in
 * the middle of a "[key]" and never leaving part of a secret). */
void al_redact_secret(char *buf, size_t size, const char *secret);

/* The whole of a file, or of stdin for "-", up to max bytes: -EFBIG
 * beyond (never a silent truncation), -errno on other errors. */
int al_read_all(const char *path, size_t max, unsigned char **ret,
                 size_t *ret_len);
/* SIGINT, SIGTERM and SIGHUP blocked in this thread (and the threads it
 * starts after) and delivered to the returned signalfd instead; SIGPIPE
 * ignored. */
int al_stop_signals(void);
