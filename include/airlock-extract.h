/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Code blocks out of Markdown — a model's reply — with cmark.
 *
 *   al_block *b = NULL;
 *   size_t n = 0;
 *   al_extract_blocks(md, len, 0, &b, &n, &err);    fenced blocks, in order
 *   ... b[i].lang ("python" | "node" | "bash" | "c" | another tag
 *       lowercased | NULL when untagged), b[i].code, b[i].len, b[i].line ...
 *   al_blocks_free(b, n);
 *
 * `airlock run --markdown FILE|-` is meant to be: read the reply (at most
 * AL_EXTRACT_MAX_INPUT bytes), al_extract_blocks(..., 0, ...), then for
 * each block in order: lang = b[i].lang, or the --default-lang when it is
 * NULL; a block whose lang is not one al_lang_normalise() knows ("rust"),
 * or that is untagged without a default, is skipped and reported, not
 * run; every other block gets its own al_spec (language = lang, code =
 * b[i].code/b[i].len) and its own fresh sandbox, and is reported by its
 * index and b[i].line. An unterminated block (b[i].unterminated) is the
 * rest of its container as CommonMark says; run it like any other, but
 * say so. `airlock extract` (src/cli/cmd-extract.c) applies the same
 * rules and shows what such a run would take.
 *
 * What counts as a block:
 *  - fenced code blocks only: ``` and ~~~, fences longer than three (a
 *    ```` fence may hold ``` lines), anywhere in the tree (inside list
 *    items, block quotes, both nested); HTML blocks hide what is in them,
 *    as CommonMark says;
 *  - indented code blocks are not taken (prose indented by four spaces is
 *    not code meant to be run); with AL_EXTRACT_INDENTED they are
 *    returned too, with fenced = false, so a front-end can report them;
 *  - an unterminated fence runs to the end of its container (the
 *    document, or the list item or quote it is in): the block is returned
 *    with unterminated = true.
 *
 * The input is normalised before cmark sees it: each invalid UTF-8
 * sequence and each NUL becomes U+FFFD, CRLF and lone CR become LF, a
 * leading byte order mark is dropped. Every string in an al_block is
 * therefore valid UTF-8, code has no '\r', and line numbers count LF, CRLF
 * and CR alike.
 *
 * Bounds (untrusted input; the parse runs on the host, not in a sandbox):
 * input size, parser memory, parser CPU time and the number of blocks;
 * see the constants below. Debian's cmark 0.30.2 has inputs that cost it
 * quadratic time (e.g. "![[]()" repeated) and others that cost ~150 bytes
 * of memory per input byte; the budgets turn both into an error.
 */
#include <stdbool.h>
#include <stddef.h>

#include "airlock.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Larger input is refused with -EFBIG: a model's reply is kilobytes. */
#define AL_EXTRACT_MAX_INPUT (16u << 20)
/* The parser's own allocations for one document: -E2BIG beyond. Ordinary
 * Markdown needs 10-40 bytes per input byte; pathological input (a line
 * of 8 million '>', a paragraph of "a\n" lines) up to ~160. */
#define AL_EXTRACT_MAX_MEMORY (768u << 20)
/* CPU time of the parse: -ETIMEDOUT beyond. 1 MiB of ordinary Markdown
 * takes a few milliseconds. */
#define AL_EXTRACT_MAX_CPU_MS 2000
/* More code blocks than this: -E2BIG (a caller would run each one). */
#define AL_EXTRACT_MAX_BLOCKS 65536

typedef struct al_block {
        /* python, node, bash, c (al_lang_normalise of the tag); another tag
         * ASCII-lowercased when it is not one of ours; NULL when the info
         * string names no language */
        char *lang;
        char *info;         /* the whole info string, as cmark decodes it */
        char *code;         /* NUL-terminated; ends with '\n' unless empty */
        size_t len;         /* bytes of code */
        unsigned line;      /* 1-based line of the opening fence */
        unsigned code_line; /* 1-based line of the first code line */
        bool fenced;        /* false: an indented block (AL_EXTRACT_INDENTED) */
        bool unterminated;  /* no closing fence: ran to its container's end */
} al_block;

enum {
        /* also return indented code blocks (fenced = false) */
        AL_EXTRACT_INDENTED = 1u << 0,
};

/* Parse md (len bytes, need not be NUL-terminated) and return its code
 * blocks in document order; *ret_blocks is NULL when *ret_n is 0. Returns
 * 0, or -EFBIG (input too large), -E2BIG (too many blocks, or the parse
 * needed more than AL_EXTRACT_MAX_MEMORY), -ETIMEDOUT (the parse took
 * more than AL_EXTRACT_MAX_CPU_MS), -ENOMEM, -EINVAL, with err filled;
 * the outputs are untouched on failure. Thread-safe. */
int al_extract_blocks(const char *md, size_t len, unsigned flags,
                      al_block **ret_blocks, size_t *ret_n, al_error *err);

/* Free what al_extract_blocks returned; NULL-safe. */
void al_blocks_free(al_block *blocks, size_t n);

/* The language a Markdown tag names, ASCII case-insensitive: py, python,
 * python3 -> "python"; js, javascript, node, nodejs, mjs, cjs -> "node";
 * sh, shell, bash, zsh -> "bash"; c -> "c". A static string, or NULL when
 * the tag is not one of ours (or NULL). */
const char *al_lang_normalise(const char *tag);

/* The language word of an info string, as al_block.lang holds it: the
 * first word, without R Markdown / pandoc braces and dots ("{python}",
 * "{.python .numberLines}") and anything from ',' or ':' on ("{r,
 * echo=FALSE}", "python:main.py"); normalised when it is ours, else
 * ASCII-lowercased. NULL when there is no such word (or no memory). The
 * caller frees it. */
char *al_info_lang(const char *info);

#ifdef __cplusplus
}
#endif
