/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the policy/finding half of the checker (check.c), its parser
 * child (check-child.c), the verdict (check-spec.c) and the tree walkers,
 * one per language (check-python.c, check-node.c, check-bash.c).
 *
 * A walker gets the root of the syntax tree and the source; it resolves
 * what the code names (aliases, imports, attribute chains) and asks
 * check_match() whether an active rule of a given kind lists that name;
 * check_emit() records a finding at a node.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tree_sitter/api.h>

#include "airlock-check.h"

enum check_lang { CL_PYTHON, CL_NODE, CL_BASH, CL_N };

/* What a rule looks for: the detectors the walkers implement. */
enum check_kind {
        CK_IMPORT,          /* py, node: a module imported (names: modules) */
        CK_CALL,            /* py, node: a call of a resolved dotted name */
        CK_ATTRIBUTE,       /* py: an attribute (or getattr) by name */
        CK_ALIAS_IMPORT,    /* py: a flagged module/name imported "as" */
        CK_DYNAMIC_IMPORT,  /* py, node: import of a computed name */
        CK_BUILTINS_ACCESS, /* py: __builtins__ reached by name or string */
        CK_DECODE_EXEC,     /* py, bash: decoded data fed to exec/eval/sh */
        CK_CHR_BUILDING,    /* py: strings assembled from chr() */
        CK_OPEN_WRITE,      /* py: open() for writing outside the workspace */
        CK_ALLOWLIST,       /* py, node: a module not in names */
        CK_COMPUTED_GLOBAL, /* node: globalThis[expr], window[expr] */
        CK_COMMAND,         /* bash: a command by name (names) */
        CK_DYNAMIC_COMMAND, /* bash: a command name made by expansion */
        CK_DEV_TCP,         /* bash: /dev/tcp, /dev/udp */
        CK_RM_ROOT,         /* bash: rm -r of / or ~ */
        CK_N
};

/* Findings one check lists at most, the last of them saying that more
 * were cut: no real code has this many, and each costs a scan of the
 * ones before it (duplicates) and ~500 bytes. */
#define CHECK_MAX_FINDINGS 10000

struct check_rule {
        char id[72];
        enum check_lang lang;
        enum check_kind kind;
        char **names; /* NULL-terminated; NULL when the kind takes none */
        size_t n_names;
        al_severity severity;
        char message[256]; /* "{name}" is replaced by what matched */
};

struct check_ctx {
        const al_policy *policy;
        enum check_lang lang;
        const char *src;
        size_t len;
        al_findings *out;
        int err; /* -ENOMEM once an allocation failed */
};

/* The first active rule of this language and kind that lists name (for
 * kinds without names: the first active rule of the kind); NULL if none.
 * Module kinds (import, alias-import, allowlist) match a listed module
 * and its submodules; call names match exactly or by a trailing ".*". */
const struct check_rule *check_match(const struct check_ctx *c,
                                     enum check_kind k, const char *name);
/* Whether name is allowed by the allow-list rule r (module semantics). */
bool check_allowed(const struct check_rule *r, const char *module);
/* Record a finding of rule r at node n; name fills "{name}". The same
 * rule at the same place is recorded once. */
void check_emit(struct check_ctx *c, TSNode n, const struct check_rule *r,
                const char *name);

/* Parse code of len bytes in language li (an enum check_lang; lang its
 * name, for messages) and walk it with the policy's rules: check_here in
 * this process (check.c), check_forked in a child process that a crash of
 * the parser cannot take down (check-child.c). 0 or -errno with err. */
int check_here(const al_policy *p, int li, const char *lang, const char *code,
               size_t len, al_findings *out, al_error *err);
int check_forked(const al_policy *p, int li, const char *lang, const char *code,
                 size_t len, al_findings *out, al_error *err);

/* The parser's child process (check-child.c): the seccomp allow-list it
 * runs under (0 or -errno), and the check of what it sends back (0 or
 * -EBADMSG) for code of len bytes; v may be NULL to check the header. */
struct check_reply {
        int r; /* what check_here returned */
        al_error err;
        al_findings head; /* then head.n findings follow on the pipe */
};
int check_confine(void);
int check_reply_valid(const struct check_reply *rep, const al_finding *v,
                      size_t len);

/* Convenience over the source. */
static inline const char *node_start(const struct check_ctx *c, TSNode n) {
        return c->src + ts_node_start_byte(n);
}
static inline size_t node_len(TSNode n) {
        return ts_node_end_byte(n) - ts_node_start_byte(n);
}
/* Whether the node's text is exactly s. */
bool node_is(const struct check_ctx *c, TSNode n, const char *s);
/* Copy the node's text into buf (NUL-terminated); false when it does not
 * fit. */
bool node_copy(const struct check_ctx *c, TSNode n, char *buf, size_t size);
/* The value of a plain string literal (no interpolation, escapes kept
 * as written) into buf; false when n is not one or it does not fit. */
bool string_literal(const struct check_ctx *c, TSNode n, char *buf,
                    size_t size);
/* ts_node_type(n) == type */
bool node_type_is(TSNode n, const char *type);
/* The child of n in field name (a null node when there is none). */
static inline TSNode check_field(TSNode n, const char *name) {
        size_t l = 0;
        while (name[l])
                l++;
        return ts_node_child_by_field_name(n, name, (uint32_t)l);
}

/* The children of a node in order: the named ones without comments, or
 * all. Linear, where ts_node_named_child(n, i) walks from the first child
 * each time (a loop over it is quadratic in a call of 100k arguments).
 *   _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
 *   for (TSNode x; check_kid(&k, &x);) ...                               */
struct check_kids {
        TSTreeCursor c;
        bool has, started, all;
};
struct check_kids check_kids_of(TSNode n, bool all);
bool check_kid(struct check_kids *k, TSNode *out);
void check_kids_done(struct check_kids *k);
#define _cleanup_kids_ __attribute__((cleanup(check_kids_done)))

/* Every node under root (root included) in source order: enter(ctx, n)
 * before its children, leave(ctx, n) after them (leave may be NULL).
 * Iterative: hostile code may nest 100k deep. Stops once *err < 0. */
void check_walk(TSNode root, const int *err, void (*enter)(void *ctx, TSNode n),
                void (*leave)(void *ctx, TSNode n), void *ctx);

/* Room for one more element in the array *v of n used out of *cap, each
 * size bytes (doubling from 64): false, with c->err = -ENOMEM, when there
 * is none. */
bool check_grow(struct check_ctx *c, void *v, size_t n, size_t *cap,
                size_t size);

/* 0..15 for a hex digit, else -1. */
int check_hexval(char ch);
/* The UTF-8 bytes of a code point into u; 0 when there are none. */
size_t check_utf8(uint32_t cp, char u[4]);

/* The walkers: each visits the whole tree. */
void check_python(struct check_ctx *c, TSNode root);
void check_node(struct check_ctx *c, TSNode root);
void check_bash(struct check_ctx *c, TSNode root);
