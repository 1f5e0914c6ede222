/* SPDX-License-Identifier: MIT */
#pragma once
/* Text for a person's terminal from bytes someone else chose (a model's
 * answer, a run's flags): pure, unit-tested (tests/unit/test-term.c). */
#include <stddef.h>

/* A copy of s[0..len) that a terminal shows as it is: every C0 control
 * but '\n' and '\t', DEL, every C1 control (U+0080..U+009F, also as the
 * raw bytes 0x80..0x9f) and every byte of an invalid UTF-8 sequence
 * become a visible \xHH; a backslash stays a backslash. So no escape
 * sequence (CSI, OSC 52 clipboard, title), carriage return or backspace
 * reaches the terminal. NUL-terminated, malloc'ed; NULL when out of
 * memory. */
char *al_term_sanitize(const char *s, size_t len);

/* Replace every copy of secret (4 bytes or more) in the NUL-terminated
 * text in buf[size] by "[key]". The result is built in a separate buffer
 * of the same size and copied back: it never grows past size (a text
 * holding the secret many times is cut, at a UTF-8 boundary, never in
 * the middle of a "[key]" and never leaving part of a secret). */
void al_redact_secret(char *buf, size_t size, const char *secret);
