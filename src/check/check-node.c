/* SPDX-License-Identifier: MIT */
/*
 * The node (JavaScript) walker of static validation. One pass over the
 * tree in source order, keeping what names were bound to, scope by scope,
 * so that a call is judged by what it reaches, not by how it is spelled:
 *
 *   const {exec: run} = require('child_process')  -> run: child_process.exec
 *   import * as fs from 'node:fs'; fs.rmSync(p)    -> fs.rmSync
 *   const w = require('fs').writeFileSync; w(p)    -> fs.writeFileSync
 *   globalThis['ev' + 'al']('1')                   -> a computed global, eval
 *   (0, eval)(s), window.eval(s), [].constructor.constructor(s) -> eval,
 *                                                     Function
 *   require('child_' + 'process'), require(name)   -> a computed require
 *
 * Strings are read with their escapes decoded ('\x63hild_process' is
 * child_process), and string constants are folded ('a' + 'b', a const
 * holding a string, String.fromCharCode(...) of numbers) so that a
 * computed name is also reported as what it computes when that is known.
 *
 * The traversal is iterative (hostile code may nest 100k deep); recursion
 * is only for resolving a name, bounded by RESOLVE_DEPTH.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-internal.h"
#include "macro.h"

#define NAME_MAX_LEN 256
#define RESOLVE_DEPTH 32
/* Names bound at once (declarations, parameters, assignments). Beyond
 * this, new names are not tracked and resolve to themselves: the table is
 * bounded, not the code. Bindings of closed scopes are reclaimed. */
#define MAX_BINDINGS (1u << 18)
#define HASH_BUCKETS 4096u
/* Scopes tracked one by one; deeper ones share the innermost slot. */
#define MAX_SCOPES 1024u

/* What a name stands for in the code. Neither target nor str: a value we
 * cannot follow (a number, a call's result, a parameter): the name then
 * resolves to nothing rather than to the global of the same name. */
struct binding {
        char *local;
        char *target;     /* a dotted name: "fs", "child_process.exec" */
        char *str;        /* a constant string it holds */
        uint32_t next;    /* older binding in the same bucket, index + 1 */
        uint32_t sc_next; /* older binding of the same scope, index + 1 */
        uint32_t hash;
        uint32_t level; /* the scope's slot */
        bool dead;
};

struct scope {
        uint32_t first; /* newest binding of this scope, index + 1 */
        bool fn;        /* a function's scope (where `var` lands) */
};

struct js {
        struct check_ctx *c;
        struct binding *b;
        uint32_t n;
        size_t cap;
        uint32_t head[HASH_BUCKETS];
        struct scope sc[MAX_SCOPES];
        unsigned depth;    /* scopes open, possibly beyond MAX_SCOPES */
        unsigned fn_depth; /* functions/classes around the node (`this`) */
        /* the declarations around the node: 1 for var, 0 for let/const
         * (ts_node_parent() costs the depth of the tree each time) */
        uint8_t *decl;
        size_t ndecl, capdecl;
};


/* The i-th named child that is not a comment (i small). */
static TSNode nth_named(TSNode n, uint32_t i) {
        _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
        TSNode x, none = {0};
        for (uint32_t at = 0; check_kid(&k, &x); at++)
                if (at == i)
                        return x;
        return none;
}

static TSNode last_named(TSNode n) {
        _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
        TSNode x, last = {0};
        while (check_kid(&k, &x))
                last = x;
        return last;
}

/* (x), (a, b, x) -> x */
static TSNode unwrap(TSNode n) {
        for (int i = 0; i < RESOLVE_DEPTH && !ts_node_is_null(n); i++) {
                if (node_type_is(n, "parenthesized_expression") ||
                    node_type_is(n, "sequence_expression"))
                        n = last_named(n);
                else
                        break;
        }
        return n;
}

/* --- strings -------------------------------------------------------------- */


static bool put_utf8(char *out, size_t *o, size_t size, uint32_t cp) {
        char u[4];
        size_t k = check_utf8(cp, u);
        if (!k || *o + k >= size)
                return false;
        memcpy(out + *o, u, k);
        *o += k;
        return true;
}


/* Read n hex digits at s (exactly), or -1. */
static long hexn(const char *s, const char *e, int n) {
        long v = 0;
        for (int i = 0; i < n; i++) {
                int h = s + i < e ? check_hexval(s[i]) : -1;
                if (h < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

/* JavaScript escapes decoded (\x63, \u0063, \u{63}, legacy octal \143,
 * line continuations), as the engine reads a string or an identifier. */
static bool js_unescape(const char *s, const char *e, char *out, size_t size) {
        size_t o = 0;
        while (s < e) {
                if (*s != '\\') {
                        if (o + 1 >= size)
                                return false;
                        out[o++] = *s++;
                        continue;
                }
                if (++s >= e)
                        return false;
                static const char ESC[] = "n\nt\tr\rb\bf\fv\v";
                char ch = *s++;
                const char *k = strchr(ESC, ch);
                long cp;
                if (ch && k && (k - ESC) % 2 == 0) {
                        if (o + 1 >= size)
                                return false;
                        out[o++] = k[1];
                        continue;
                }
                switch (ch) {
                case '\r':
                        if (s < e && *s == '\n')
                                s++;
                        continue;
                case '\n':
                        continue;
                case 'x':
                        if ((cp = hexn(s, e, 2)) < 0)
                                return false;
                        s += 2;
                        break;
                case 'u':
                        if (s < e && *s == '{') {
                                cp = 0;
                                const char *q = s + 1;
                                while (q < e && *q != '}' && cp < 0x110000) {
                                        int h = check_hexval(*q++);
                                        if (h < 0)
                                                return false;
                                        cp = cp * 16 + h;
                                }
                                if (q >= e || *q != '}')
                                        return false;
                                s = q + 1;
                        } else {
                                if ((cp = hexn(s, e, 4)) < 0)
                                        return false;
                                s += 4;
                        }
                        break;
                default:
                        if (ch >= '0' && ch <= '7') {
                                /* legacy octal, sloppy mode: up to \377 */
                                cp = ch - '0';
                                for (int i = 0;
                                     i < 2 && s < e && *s >= '0' && *s <= '7' &&
                                     cp * 8 + (*s - '0') <= 0377;
                                     i++)
                                        cp = cp * 8 + (*s++ - '0');
                        } else if ((unsigned char)ch >= 0x80) {
                                /* \ before a multi-byte character (or
                                 * U+2028/9, a line continuation): keep
                                 * the bytes as they are */
                                if (o + 2 >= size)
                                        return false;
                                out[o++] = '\\';
                                out[o++] = ch;
                                continue;
                        } else
                                cp = (unsigned char)ch;
                }
                if (!put_utf8(out, &o, size, (uint32_t)cp))
                        return false;
        }
        out[o] = '\0';
        return true;
}

/* The value of a string literal, or of a template without substitutions,
 * escapes decoded. */
static bool js_string(const struct js *j, TSNode n, char *out, size_t size) {
        if (node_type_is(n, "template_string")) {
                _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
                TSNode x;
                while (check_kid(&k, &x))
                        if (node_type_is(x, "template_substitution"))
                                return false;
        } else if (!node_type_is(n, "string"))
                return false;
        const char *s = node_start(j->c, n);
        size_t l = node_len(n);
        if (l < 2)
                return false;
        return js_unescape(s + 1, s + l - 1, out, size);
}

/* An identifier (or property name) as the engine reads it. */
static bool js_ident(const struct js *j, TSNode n, char *out, size_t size) {
        if (ts_node_is_null(n))
                return false;
        const char *s = node_start(j->c, n);
        return js_unescape(s, s + node_len(n), out, size) && out[0];
}

/* --- bindings ------------------------------------------------------------- */

static uint32_t hash(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return h % HASH_BUCKETS;
}

static struct binding *lookup(const struct js *j, const char *local) {
        for (uint32_t i = j->head[hash(local)]; i; i = j->b[i - 1].next)
                if (!j->b[i - 1].dead && !strcmp(j->b[i - 1].local, local))
                        return &j->b[i - 1];
        return NULL;
}

static struct scope *scope_at(struct js *j, unsigned level) {
        return &j->sc[level < MAX_SCOPES ? level : MAX_SCOPES - 1];
}

/* The innermost scope, or the innermost function's for `var`. */
static unsigned scope_level(const struct js *j, bool var) {
        unsigned top = j->depth ? j->depth - 1 : 0;
        if (top >= MAX_SCOPES)
                top = MAX_SCOPES - 1;
        while (var && top > 0 && !j->sc[top].fn)
                top--;
        return top;
}

/* Bind local in the scope at level: to a dotted name (target), to a
 * constant string (str), or to neither (a value we cannot follow). */
static void bind_at(struct js *j, unsigned level, const char *local,
                    const char *target, const char *str) {
        if (j->n == MAX_BINDINGS)
                return;
        if (!check_grow(j->c, &j->b, j->n, &j->cap, sizeof(*j->b)))
                return;
        char *l = strdup(local), *t = target ? strdup(target) : NULL,
             *s = str ? strdup(str) : NULL;
        if (!l || (target && !t) || (str && !s)) {
                free(l);
                free(t);
                free(s);
                j->c->err = -ENOMEM;
                return;
        }
        struct scope *sc = scope_at(j, level);
        uint32_t h = hash(local);
        j->b[j->n] = (struct binding){.local = l,
                                      .target = t,
                                      .str = s,
                                      .next = j->head[h],
                                      .sc_next = sc->first,
                                      .hash = h,
                                      .level = (uint32_t)(sc - j->sc)};
        j->n++;
        j->head[h] = j->n;
        sc->first = j->n;
}

/* A declaration (let/const/class/function/parameter, or var). */
static void declare(struct js *j, bool var, const char *local,
                    const char *target, const char *str) {
        bind_at(j, scope_level(j, var), local, target, str);
}

/* An assignment: it changes the binding where the name lives. */
static void assign(struct js *j, const char *local, const char *target,
                   const char *str) {
        const struct binding *old = lookup(j, local);
        bind_at(j, old ? old->level : 0, local, target, str);
}

static void scope_open(struct js *j, bool fn) {
        if (j->depth < MAX_SCOPES)
                j->sc[j->depth] = (struct scope){0, fn};
        j->depth++;
}

static void scope_close(struct js *j) {
        if (!j->depth)
                return;
        j->depth--;
        if (j->depth >= MAX_SCOPES)
                return; /* a scope beyond the table: kept with its parent */
        struct scope *sc = &j->sc[j->depth];
        for (uint32_t i = sc->first; i; i = j->b[i - 1].sc_next) {
                struct binding *b = &j->b[i - 1];
                b->dead = true;
                while (j->head[b->hash] && j->b[j->head[b->hash] - 1].dead)
                        j->head[b->hash] = j->b[j->head[b->hash] - 1].next;
        }
        sc->first = 0;
        /* reclaim what is on top of the table */
        while (j->n && j->b[j->n - 1].dead) {
                struct binding *b = &j->b[--j->n];
                free(b->local);
                free(b->target);
                free(b->str);
        }
}

/* --- names ---------------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p) {
        size_t l = strlen(p);
        return !strncmp(s, p, l) && (s[l] == '\0' || s[l] == '.');
}

/* The global object, by the names code reaches it by. */
static bool is_global(const char *s) {
        return !strcmp(s, "globalThis") || !strcmp(s, "global") ||
               !strcmp(s, "window") || !strcmp(s, "self");
}

/* globalThis.eval -> eval; process.mainModule.require -> module.require */
static void normalise(char *s) {
        static const char *const G[] = {"globalThis.", "global.", "window.",
                                        "self."};
        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < ARRAY_SIZE(G); i++) {
                        size_t l = strlen(G[i]);
                        if (!strncmp(s, G[i], l) && s[l]) {
                                memmove(s, s + l, strlen(s + l) + 1);
                                again = true;
                        }
                }
        }
        static const char *const M[] = {"process.mainModule", "require.main"};
        for (size_t i = 0; i < ARRAY_SIZE(M); i++)
                if (has_prefix(s, M[i])) {
                        size_t l = strlen(M[i]);
                        memmove(s + 6, s + l, strlen(s + l) + 1);
                        memcpy(s, "module", 6);
                }
}

static bool join(char *out, size_t size, const char *base, const char *prop) {
        if ((size_t)snprintf(out, size, "%s.%s", base, prop) >= size)
                return false;
        normalise(out);
        return true;
}

/* Functions whose .constructor is Function. */
static bool is_constructor_name(const char *s) {
        static const char *const F[] = {"Function", "Function.prototype",
                                        "Object",   "Array",
                                        "String",   "Number",
                                        "Boolean",  "Symbol",
                                        "BigInt",   "Promise",
                                        "RegExp",   "Date",
                                        "Error",    "Map",
                                        "Set",      "WeakMap",
                                        "WeakSet",  "Proxy",
                                        "Buffer",   "eval",
                                        "require"};
        for (size_t i = 0; i < ARRAY_SIZE(F); i++)
                if (!strcmp(s, F[i]))
                        return true;
        return false;
}

static bool is_function_literal(TSNode n) {
        const char *t = ts_node_is_null(n) ? "" : ts_node_type(n);
        return !strcmp(t, "function_expression") || !strcmp(t, "function") ||
               !strcmp(t, "arrow_function") ||
               !strcmp(t, "generator_function") || !strcmp(t, "class");
}

static bool resolve(struct js *j, TSNode n, char *out, size_t size, int depth);
static bool const_str(struct js *j, TSNode n, char *out, size_t size,
                      int depth);

/* The key of a member or a subscript with a constant key. */
static bool member_key(struct js *j, TSNode n, char *out, size_t size,
                       int depth) {
        if (node_type_is(n, "member_expression"))
                return js_ident(j, check_field(n, "property"), out, size);
        if (node_type_is(n, "subscript_expression"))
                return const_str(j, check_field(n, "index"), out, size, depth + 1);
        return false;
}

/* Whether obj.constructor is Function (or AsyncFunction, which runs code
 * the same way) by the shape of obj: a function's, x.constructor's,
 * Object.getPrototypeOf(function ...)'s. */
static bool makes_function(struct js *j, TSNode obj, int depth) {
        char a[NAME_MAX_LEN];
        obj = unwrap(obj);
        if (is_function_literal(obj))
                return true;
        if (member_key(j, obj, a, sizeof(a), depth) &&
            !strcmp(a, "constructor"))
                return true;
        TSNode f = check_field(obj, "function");
        return node_type_is(obj, "call_expression") &&
               (node_is(j->c, f, "Object.getPrototypeOf") ||
                node_is(j->c, f, "Reflect.getPrototypeOf")) &&
               is_function_literal(
                       unwrap(nth_named(check_field(obj, "arguments"), 0)));
}

/* obj.prop as a dotted name (obj resolved once: chains stay linear). */
static bool member_join(struct js *j, TSNode obj, const char *prop, char *out,
                        size_t size, int depth) {
        char a[NAME_MAX_LEN];
        bool named = resolve(j, obj, a, sizeof(a), depth + 1);
        if (!strcmp(prop, "constructor") &&
            ((named && is_constructor_name(a)) ||
             makes_function(j, obj, depth)))
                return snprintf(out, size, "Function"), true;
        return named && join(out, size, a, prop);
}

/* Calls that load a module: the index of the argument naming it. For
 * X.call(this, 'm') it is 1, for X.apply(this, ['m']) the array's first. */
static int require_arg(const char *fn, bool *apply) {
        static const char *const R[] = {"require",
                                        "module.require",
                                        "module._load",
                                        "module.constructor._load",
                                        "module.Module._load",
                                        "module.constructor.prototype.require",
                                        "module.Module.prototype.require"};
        *apply = false;
        for (size_t i = 0; i < ARRAY_SIZE(R); i++) {
                size_t l = strlen(R[i]);
                if (!strcmp(fn, R[i]))
                        return 0;
                if (!strncmp(fn, R[i], l) && !strcmp(fn + l, ".call"))
                        return 1;
                if (!strncmp(fn, R[i], l) && !strcmp(fn + l, ".apply"))
                        return *apply = true, 1;
        }
        return -1;
}

/* The node naming the module of a require-like call. */
static TSNode module_arg(TSNode call, int i, bool apply) {
        TSNode args = check_field(call, "arguments"), none = {0};
        if (!node_type_is(args, "arguments"))
                return none; /* require`m`: a template's strings array */
        TSNode a = nth_named(args, (uint32_t)i);
        if (!apply)
                return a;
        return node_type_is(a, "array") ? nth_named(a, 0) : none;
}

/* "node:fs" -> "fs"; "fs/promises" -> "fs.promises" (module names are
 * dotted, like the rules' names) */
static void module_canon(const char *raw, char *out, size_t size) {
        if (!strncmp(raw, "node:", 5))
                raw += 5;
        snprintf(out, size, "%s", raw);
        for (char *p = out; *p; p++)
                if (*p == '/')
                        *p = '.';
}

static bool is_relative(const char *m) {
        return m[0] == '.' || m[0] == '/';
}

/* What a call evaluates to, when that is a name: require('m') -> m,
 * createRequire(...) -> require, Reflect.get(o, 'k') -> o.k,
 * f.bind(...) -> f. */
static bool resolve_call(struct js *j, TSNode n, char *out, size_t size,
                         int depth) {
        TSNode f = check_field(n, "function");
        char fn[NAME_MAX_LEN], m[NAME_MAX_LEN];
        bool apply;
        if (node_type_is(f, "import")) {
                if (!const_str(j, nth_named(check_field(n, "arguments"), 0), m,
                               sizeof(m), depth + 1) ||
                    is_relative(m))
                        return false;
                return module_canon(m, out, size), true;
        }
        if (!resolve(j, f, fn, sizeof(fn), depth + 1))
                return false;
        int ai = require_arg(fn, &apply);
        if (ai >= 0) {
                if (!const_str(j, module_arg(n, ai, apply), m, sizeof(m),
                               depth + 1) ||
                    is_relative(m))
                        return false;
                return module_canon(m, out, size), true;
        }
        if (!strcmp(fn, "module.createRequire") ||
            !strcmp(fn, "module.createRequireFromPath"))
                return snprintf(out, size, "require"), true;
        if (!strcmp(fn, "Reflect.get")) {
                TSNode args = check_field(n, "arguments");
                if (!const_str(j, nth_named(args, 1), m, sizeof(m), depth + 1))
                        return false;
                return member_join(j, nth_named(args, 0), m, out, size,
                                   depth + 1);
        }
        size_t l = strlen(fn);
        if (l > 5 && !strcmp(fn + l - 5, ".bind")) {
                fn[l - 5] = '\0';
                return snprintf(out, size, "%s", fn), true;
        }
        return false;
}

/* What the expression n names, as a dotted name: identifiers through the
 * bindings, member chains, x["lit"], (0, x), require('m'). False when it
 * is not a name we can follow. */
static bool resolve(struct js *j, TSNode n, char *out, size_t size, int depth) {
        if (ts_node_is_null(n) || depth > RESOLVE_DEPTH)
                return false;
        const char *t = ts_node_type(n);
        char a[NAME_MAX_LEN];
        if (!strcmp(t, "identifier")) {
                if (!js_ident(j, n, a, sizeof(a)))
                        return false;
                const struct binding *b = lookup(j, a);
                if (b && !b->target)
                        return false;
                snprintf(out, size, "%s", b ? b->target : a);
                return true;
        }
        if (!strcmp(t, "this"))
                return snprintf(out, size, "this"), true;
        if (!strcmp(t, "parenthesized_expression") ||
            !strcmp(t, "sequence_expression"))
                return resolve(j, last_named(n), out, size, depth + 1);
        if (!strcmp(t, "await_expression"))
                return resolve(j, nth_named(n, 0), out, size, depth + 1);
        if (!strcmp(t, "assignment_expression"))
                return resolve(j, check_field(n, "right"), out, size, depth + 1);
        if (!strcmp(t, "member_expression")) {
                TSNode p = check_field(n, "property");
                if (!node_type_is(p, "property_identifier") ||
                    !js_ident(j, p, a, sizeof(a)))
                        return false;
                return member_join(j, check_field(n, "object"), a, out, size, depth);
        }
        if (!strcmp(t, "subscript_expression")) {
                if (!const_str(j, check_field(n, "index"), a, sizeof(a), depth + 1))
                        return false;
                return member_join(j, check_field(n, "object"), a, out, size, depth);
        }
        if (!strcmp(t, "call_expression"))
                return resolve_call(j, n, out, size, depth);
        return false;
}

/* A string whose value is known before the code runs: literals, 'a' + 'b',
 * a name holding a constant, String.fromCharCode(99, ...), ['a','b'].join(x).
 */
static bool const_str(struct js *j, TSNode n, char *out, size_t size,
                      int depth) {
        if (ts_node_is_null(n) || depth > RESOLVE_DEPTH)
                return false;
        const char *t = ts_node_type(n);
        char a[NAME_MAX_LEN], b[NAME_MAX_LEN];
        if (!strcmp(t, "string"))
                return js_string(j, n, out, size);
        if (!strcmp(t, "template_string")) {
                if (js_string(j, n, out, size))
                        return true;
                /* `child_${'process'}`: the text between substitutions,
                 * and each substitution's constant value */
                const char *s = node_start(j->c, n), *e = s + node_len(n) - 1;
                size_t o = 0;
                _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
                TSNode x = {0};
                s++;
                for (;;) {
                        bool last = !check_kid(&k, &x);
                        if (!last && !node_type_is(x, "template_substitution"))
                                continue;
                        const char *to = last ? e : node_start(j->c, x);
                        if (to < s || !js_unescape(s, to, out + o, size - o))
                                return false;
                        o += strlen(out + o);
                        if (last)
                                break;
                        if (!const_str(j, nth_named(x, 0), a, sizeof(a),
                                       depth + 1) ||
                            (size_t)snprintf(out + o, size - o, "%s", a) >=
                                    size - o)
                                return false;
                        o += strlen(a);
                        s = node_start(j->c, x) + node_len(x);
                }
                return true;
        }
        if (!strcmp(t, "parenthesized_expression") ||
            !strcmp(t, "sequence_expression"))
                return const_str(j, last_named(n), out, size, depth + 1);
        if (!strcmp(t, "identifier")) {
                const struct binding *x;
                if (!js_ident(j, n, a, sizeof(a)) || !(x = lookup(j, a)) ||
                    !x->str)
                        return false;
                return (size_t)snprintf(out, size, "%s", x->str) < size;
        }
        if (!strcmp(t, "binary_expression")) {
                if (!node_is(j->c, check_field(n, "operator"), "+") ||
                    !const_str(j, check_field(n, "left"), a, sizeof(a), depth + 1) ||
                    !const_str(j, check_field(n, "right"), b, sizeof(b), depth + 1))
                        return false;
                return (size_t)snprintf(out, size, "%s%s", a, b) < size;
        }
        if (!strcmp(t, "call_expression")) {
                TSNode f = check_field(n, "function"), args = check_field(n, "arguments");
                if (!node_type_is(args, "arguments"))
                        return false;
                if (resolve(j, f, a, sizeof(a), depth + 1) &&
                    !strcmp(a, "String.fromCharCode")) {
                        size_t o = 0;
                        _cleanup_kids_ struct check_kids k = check_kids_of(args, false);
                        TSNode x;
                        while (check_kid(&k, &x)) {
                                char num[32], *end;
                                if (!node_type_is(x, "number") ||
                                    !node_copy(j->c, x, num, sizeof(num)))
                                        return false;
                                unsigned long v = strtoul(num, &end, 0);
                                if (*end || v > 0xFFFF ||
                                    !put_utf8(out, &o, size, (uint32_t)v))
                                        return false;
                        }
                        out[o] = '\0';
                        return true;
                }
                /* ['child', 'process'].join('_') */
                TSNode arr = check_field(f, "object");
                if (!node_type_is(f, "member_expression") ||
                    !node_is(j->c, check_field(f, "property"), "join") ||
                    !node_type_is(arr, "array"))
                        return false;
                TSNode sep = nth_named(args, 0);
                if (ts_node_is_null(sep))
                        snprintf(b, sizeof(b), ",");
                else if (!const_str(j, sep, b, sizeof(b), depth + 1))
                        return false;
                size_t o = 0;
                out[0] = '\0';
                _cleanup_kids_ struct check_kids k = check_kids_of(arr, false);
                TSNode x;
                for (uint32_t i = 0; check_kid(&k, &x); i++) {
                        if (!const_str(j, x, a, sizeof(a), depth + 1))
                                return false;
                        int w = snprintf(out + o, size - o, "%s%s", i ? b : "",
                                         a);
                        if (w < 0 || (size_t)w >= size - o)
                                return false;
                        o += (size_t)w;
                }
                return true;
        }
        return false;
}

/* --- detectors ------------------------------------------------------------ */

/* An allow-list may name "@scope/pkg" (or "lodash"): it allows
 * "@scope/pkg/sub" (and "lodash/fp") as well. */
static bool allowed_path(const struct check_rule *r, const char *m) {
        char p[NAME_MAX_LEN];
        snprintf(p, sizeof(p), "%s", m);
        for (;;) {
                if (check_allowed(r, p))
                        return true;
                char *slash = strrchr(p, '/');
                if (!slash)
                        return false;
                *slash = '\0';
        }
}

static void module_imported(struct js *j, TSNode at, const char *raw) {
        char canon[NAME_MAX_LEN];
        const struct check_rule *r;
        if (!raw[0] || !strncmp(raw, "./", 2) || !strncmp(raw, "../", 3) ||
            !strcmp(raw, ".") || !strcmp(raw, ".."))
                return; /* the code's own files */
        const char *shown = strncmp(raw, "node:", 5) ? raw : raw + 5;
        module_canon(raw, canon, sizeof(canon));
        if ((r = check_match(j->c, CK_IMPORT, canon)))
                check_emit(j->c, at, r, shown);
        if ((r = check_match(j->c, CK_ALLOWLIST, NULL)) &&
            !check_allowed(r, canon) && !allowed_path(r, shown))
                check_emit(j->c, at, r, shown);
}

/* The module argument of require(...)/import(...): a literal is an import;
 * anything else is a computed one, and also an import of what it computes
 * to when the walker can tell. */
static void module_loaded(struct js *j, TSNode call, TSNode arg,
                          const char *via) {
        char m[NAME_MAX_LEN];
        const struct check_rule *r;
        if (ts_node_is_null(arg))
                return;
        if (js_string(j, arg, m, sizeof(m))) {
                module_imported(j, arg, m);
                return;
        }
        if ((r = check_match(j->c, CK_DYNAMIC_IMPORT, NULL)))
                check_emit(j->c, call, r, via);
        if (const_str(j, arg, m, sizeof(m), 0))
                module_imported(j, arg, m);
}

static void call_named(struct js *j, TSNode at, const char *fn) {
        const struct check_rule *r = check_match(j->c, CK_CALL, fn);
        if (r)
                check_emit(j->c, at, r, fn);
}

/* globalThis[k], global[k], window[k], this[k] at the top level, with k not
 * a plain string. */
static bool global_object(struct js *j, TSNode obj) {
        char o[NAME_MAX_LEN];
        obj = unwrap(obj);
        if (node_type_is(obj, "this"))
                return j->fn_depth == 0;
        return resolve(j, obj, o, sizeof(o), 0) && is_global(o);
}

static void computed_global(struct js *j, TSNode at, TSNode key) {
        const struct check_rule *r =
                check_match(j->c, CK_COMPUTED_GLOBAL, NULL);
        char k[NAME_MAX_LEN];
        if (!r)
                return;
        if (!node_copy(j->c, key, k, sizeof(k)))
                snprintf(k, sizeof(k), "%s", "...");
        check_emit(j->c, at, r, k);
}

static void on_subscript(struct js *j, TSNode n) {
        TSNode key = check_field(n, "index");
        char k[NAME_MAX_LEN];
        if (js_string(j, key, k, sizeof(k)) || node_type_is(key, "number"))
                return; /* a plain name: resolved like obj.name */
        if (global_object(j, check_field(n, "object")))
                computed_global(j, n, key);
}

static void on_call(struct js *j, TSNode n) {
        TSNode f = check_field(n, "function"), args = check_field(n, "arguments");
        char fn[NAME_MAX_LEN], a[NAME_MAX_LEN];
        bool apply;
        if (node_type_is(f, "import")) {
                module_loaded(j, n, nth_named(args, 0), "import()");
                return;
        }
        if (resolve(j, f, fn, sizeof(fn), 0)) {
                call_named(j, n, fn);
                /* eval.call(null, s), Function.apply(null, [s]) */
                size_t l = strlen(fn);
                static const char *const SUF[] = {".call", ".apply", ".bind"};
                for (size_t i = 0; i < ARRAY_SIZE(SUF); i++) {
                        size_t sl = strlen(SUF[i]);
                        if (l > sl && !strcmp(fn + l - sl, SUF[i])) {
                                snprintf(a, sizeof(a), "%.*s", (int)(l - sl),
                                         fn);
                                call_named(j, n, a);
                        }
                }
                int ai = require_arg(fn, &apply);
                if (ai >= 0)
                        module_loaded(j, n, module_arg(n, ai, apply), fn);
                /* Reflect.get(globalThis, name) */
                if ((!strcmp(fn, "Reflect.get") ||
                     !strcmp(fn, "Reflect.getOwnPropertyDescriptor") ||
                     !strcmp(fn, "Object.getOwnPropertyDescriptor")) &&
                    global_object(j, nth_named(args, 0))) {
                        TSNode key = nth_named(args, 1);
                        if (!ts_node_is_null(key) &&
                            !js_string(j, key, a, sizeof(a)))
                                computed_global(j, n, key);
                }
                if (ai >= 0)
                        return;
        }
        /* a listed function handed on as a value: [s].map(eval),
         * Reflect.apply(Function, ...), setTimeout(fs.rmSync, 0, p) */
        if (!node_type_is(args, "arguments"))
                return;
        _cleanup_kids_ struct check_kids k = check_kids_of(args, false);
        TSNode x;
        while (check_kid(&k, &x)) {
                const char *t = ts_node_type(x);
                if ((!strcmp(t, "identifier") ||
                     !strcmp(t, "member_expression") ||
                     !strcmp(t, "subscript_expression") ||
                     !strcmp(t, "parenthesized_expression")) &&
                    resolve(j, x, a, sizeof(a), 0))
                        call_named(j, x, a);
        }
}

static void on_new(struct js *j, TSNode n) {
        char fn[NAME_MAX_LEN];
        if (resolve(j, check_field(n, "constructor"), fn, sizeof(fn), 0))
                call_named(j, n, fn);
}

/* import {a as b} from 'm' (mod: the module's dotted name, NULL for the
 * code's own files) */
static void on_named_imports(struct js *j, TSNode list, const char *mod) {
        char name[NAME_MAX_LEN], local[NAME_MAX_LEN],
                full[2 * NAME_MAX_LEN + 2];
        _cleanup_kids_ struct check_kids k = check_kids_of(list, false);
        TSNode sp;
        while (check_kid(&k, &sp)) {
                TSNode nm = check_field(sp, "name"), al = check_field(sp, "alias");
                if (!node_type_is(sp, "import_specifier") ||
                    (!js_string(j, nm, name, sizeof(name)) &&
                     !js_ident(j, nm, name, sizeof(name))) ||
                    !js_ident(j, ts_node_is_null(al) ? nm : al, local,
                              sizeof(local)))
                        continue;
                if (!mod) {
                        declare(j, false, local, NULL, NULL);
                        continue;
                }
                if (!strcmp(name, "default"))
                        snprintf(full, sizeof(full), "%s", mod);
                else if (!join(full, sizeof(full), mod, name))
                        continue;
                /* import {rmSync} from 'fs': a listed call by its name */
                call_named(j, sp, full);
                declare(j, false, local, full, NULL);
        }
}

/* import x from 'm'; import * as x from 'm'; import {a as b} from 'm' */
static void on_import(struct js *j, TSNode n) {
        TSNode src = check_field(n, "source");
        char raw[NAME_MAX_LEN], mod[NAME_MAX_LEN], local[NAME_MAX_LEN];
        if (!js_string(j, src, raw, sizeof(raw)))
                return;
        module_imported(j, src, raw);
        bool own = is_relative(raw);
        module_canon(raw, mod, sizeof(mod));
        TSNode cl = {0}, x;
        _cleanup_kids_ struct check_kids ks = check_kids_of(n, false);
        while (check_kid(&ks, &x))
                if (node_type_is(x, "import_clause"))
                        cl = x;
        _cleanup_kids_ struct check_kids kc = check_kids_of(cl, false);
        while (check_kid(&kc, &x)) {
                TSNode id = node_type_is(x, "namespace_import")
                                    ? nth_named(x, 0)
                                    : x;
                if (node_type_is(x, "named_imports"))
                        on_named_imports(j, x, own ? NULL : mod);
                else if (node_type_is(id, "identifier") &&
                         js_ident(j, id, local, sizeof(local)))
                        declare(j, false, local, own ? NULL : mod, NULL);
        }
}

/* const v = <value>, v = <value>: what v now stands for */
static void bind_value(struct js *j, int how, const char *local, TSNode v) {
        char t[NAME_MAX_LEN], s[NAME_MAX_LEN];
        const char *target = NULL, *str = NULL;
        if (!ts_node_is_null(v) && resolve(j, v, t, sizeof(t), 0))
                target = t;
        else if (!ts_node_is_null(v) && const_str(j, v, s, sizeof(s), 0))
                str = s;
        if (how < 0)
                assign(j, local, target, str);
        else
                declare(j, how, local, target, str);
}

/* how: -1 an assignment, 0 let/const/parameter, 1 var */
static void bind_pattern(struct js *j, TSNode pat, const char *base, int how,
                         int depth);

/* One target of a pattern: an identifier, or a nested pattern, or one
 * with a default value. base: the dotted name of the value, or NULL. */
static void bind_target(struct js *j, TSNode x, const char *base, int how,
                        int depth) {
        char local[NAME_MAX_LEN];
        if (depth > RESOLVE_DEPTH)
                return;
        const char *t = ts_node_is_null(x) ? "" : ts_node_type(x);
        if (!strcmp(t, "identifier") ||
            !strcmp(t, "shorthand_property_identifier_pattern")) {
                if (!js_ident(j, x, local, sizeof(local)))
                        return;
                if (base)
                        call_named(j, x, base);
                if (how < 0)
                        assign(j, local, base, NULL);
                else
                        declare(j, how, local, base, NULL);
        } else if (!strcmp(t, "assignment_pattern") ||
                   !strcmp(t, "object_assignment_pattern"))
                bind_target(j, check_field(x, "left"), base, how, depth + 1);
        else if (!strcmp(t, "object_pattern"))
                bind_pattern(j, x, base, how, depth + 1);
        else if (!strcmp(t, "array_pattern") || !strcmp(t, "rest_pattern")) {
                _cleanup_kids_ struct check_kids k = check_kids_of(x, false);
                TSNode y;
                while (check_kid(&k, &y))
                        bind_target(j, y,
                                    !strcmp(t, "rest_pattern") ? base : NULL,
                                    how, depth + 1);
        }
}

static void bind_pattern(struct js *j, TSNode pat, const char *base, int how,
                         int depth) {
        char key[NAME_MAX_LEN], sub[NAME_MAX_LEN];
        if (depth > RESOLVE_DEPTH)
                return;
        _cleanup_kids_ struct check_kids kp = check_kids_of(pat, false);
        TSNode x;
        while (check_kid(&kp, &x)) {
                const char *t = ts_node_type(x);
                if (!strcmp(t, "shorthand_property_identifier_pattern") ||
                    !strcmp(t, "object_assignment_pattern")) {
                        TSNode id = !strcmp(t, "object_assignment_pattern")
                                            ? check_field(x, "left")
                                            : x;
                        bool ok = base && js_ident(j, id, key, sizeof(key)) &&
                                  join(sub, sizeof(sub), base, key);
                        bind_target(j, id, ok ? sub : NULL, how, depth + 1);
                } else if (!strcmp(t, "pair_pattern")) {
                        TSNode k = check_field(x, "key");
                        bool ok;
                        if (node_type_is(k, "computed_property_name")) {
                                TSNode e = nth_named(k, 0);
                                ok = const_str(j, e, key, sizeof(key), 0);
                                /* const {[name]: f} = globalThis */
                                if (base && is_global(base) &&
                                    !js_string(j, e, sub, sizeof(sub)))
                                        computed_global(j, x, e);
                        } else
                                ok = js_ident(j, k, key, sizeof(key)) ||
                                     js_string(j, k, key, sizeof(key));
                        ok = ok && base && join(sub, sizeof(sub), base, key);
                        bind_target(j, check_field(x, "value"), ok ? sub : NULL, how,
                                    depth + 1);
                } else if (!strcmp(t, "rest_pattern"))
                        bind_target(j, x, base, how, depth + 1);
        }
}

static void bind_left(struct js *j, TSNode l, TSNode v, int how) {
        char local[NAME_MAX_LEN], base[NAME_MAX_LEN];
        if (node_type_is(l, "identifier")) {
                if (js_ident(j, l, local, sizeof(local)))
                        bind_value(j, how, local, v);
        } else if (node_type_is(l, "object_pattern")) {
                bool ok = !ts_node_is_null(v) &&
                          resolve(j, v, base, sizeof(base), 0);
                bind_pattern(j, l, ok ? base : NULL, how, 0);
        } else if (node_type_is(l, "array_pattern"))
                bind_target(j, l, NULL, how, 0);
}

static void on_declarator(struct js *j, TSNode n) {
        bool var = j->ndecl && j->decl[j->ndecl - 1];
        bind_left(j, check_field(n, "name"), check_field(n, "value"), var);
}

static void decl_push(struct js *j, bool var) {
        if (!check_grow(j->c, &j->decl, j->ndecl, &j->capdecl, 1))
                return;
        j->decl[j->ndecl++] = var;
}

static void on_augmented(struct js *j, TSNode n) {
        char local[NAME_MAX_LEN], r[NAME_MAX_LEN], s[NAME_MAX_LEN];
        TSNode l = check_field(n, "left");
        if (!node_type_is(l, "identifier") ||
            !js_ident(j, l, local, sizeof(local)))
                return;
        const struct binding *b = lookup(j, local);
        /* m = 'child_'; m += 'process' */
        if (b && b->str && node_is(j->c, check_field(n, "operator"), "+=") &&
            const_str(j, check_field(n, "right"), r, sizeof(r), 0) &&
            (size_t)snprintf(s, sizeof(s), "%s%s", b->str, r) < sizeof(s))
                assign(j, local, NULL, s);
        else if (b || lookup(j, local))
                assign(j, local, NULL, NULL);
}

/* Parameters are values the walker cannot follow; binding them hides the
 * globals of the same name inside the function. */
static void bind_params(struct js *j, TSNode fn) {
        TSNode p = check_field(fn, "parameters");
        if (ts_node_is_null(p))
                p = check_field(fn, "parameter");
        if (node_type_is(p, "identifier")) {
                bind_target(j, p, NULL, 0, 0);
                return;
        }
        _cleanup_kids_ struct check_kids k = check_kids_of(p, false);
        TSNode x;
        while (check_kid(&k, &x))
                bind_target(j, x, NULL, 0, 0);
}

static bool is_function(const char *t) {
        return !strcmp(t, "function_declaration") ||
               !strcmp(t, "function_expression") || !strcmp(t, "function") ||
               !strcmp(t, "generator_function") ||
               !strcmp(t, "generator_function_declaration") ||
               !strcmp(t, "arrow_function") || !strcmp(t, "method_definition");
}

/* Nodes whose body is a block scope of their own. */
static bool is_block(const char *t) {
        return !strcmp(t, "statement_block") || !strcmp(t, "for_statement") ||
               !strcmp(t, "for_in_statement") || !strcmp(t, "catch_clause") ||
               !strcmp(t, "switch_body") || !strcmp(t, "class_body") ||
               !strcmp(t, "class_static_block");
}

/* `this` is the global object only outside functions, methods and class
 * bodies (and arrows there inherit it). */
static bool rebinds_this(const char *t) {
        return (is_function(t) && strcmp(t, "arrow_function")) ||
               !strcmp(t, "class_body");
}

static void enter(struct js *j, TSNode n) {
        const char *t = ts_node_type(n);
        char nm[NAME_MAX_LEN];
        if (rebinds_this(t))
                j->fn_depth++;
        if (is_function(t)) {
                /* function f() {}: f is a value of the enclosing
                 * function's scope */
                if ((!strcmp(t, "function_declaration") ||
                     !strcmp(t, "generator_function_declaration")) &&
                    js_ident(j, check_field(n, "name"), nm, sizeof(nm)))
                        declare(j, true, nm, NULL, NULL);
                scope_open(j, true);
                bind_params(j, n);
                return;
        }
        if (is_block(t)) {
                scope_open(j, false);
                if (!strcmp(t, "catch_clause"))
                        bind_target(j, check_field(n, "parameter"), NULL, 0, 0);
                return;
        }
        if (!strcmp(t, "variable_declaration") ||
            !strcmp(t, "lexical_declaration"))
                decl_push(j, t[0] == 'v');
        else if (!strcmp(t, "class_declaration") &&
                 js_ident(j, check_field(n, "name"), nm, sizeof(nm)))
                declare(j, false, nm, NULL, NULL);
        else if (!strcmp(t, "import_statement"))
                on_import(j, n);
        else if (!strcmp(t, "export_statement")) {
                TSNode src = check_field(n, "source");
                if (js_string(j, src, nm, sizeof(nm)))
                        module_imported(j, src, nm);
        } else if (!strcmp(t, "call_expression"))
                on_call(j, n);
        else if (!strcmp(t, "new_expression"))
                on_new(j, n);
        else if (!strcmp(t, "subscript_expression"))
                on_subscript(j, n);
}

static void leave(struct js *j, TSNode n) {
        const char *t = ts_node_type(n);
        if (rebinds_this(t) && j->fn_depth)
                j->fn_depth--;
        if (is_function(t) || is_block(t))
                scope_close(j);
        else if (!strcmp(t, "variable_declarator"))
                on_declarator(j, n);
        else if ((!strcmp(t, "variable_declaration") ||
                  !strcmp(t, "lexical_declaration")) &&
                 j->ndecl)
                j->ndecl--;
        else if (!strcmp(t, "assignment_expression"))
                bind_left(j, check_field(n, "left"), check_field(n, "right"), -1);
        else if (!strcmp(t, "augmented_assignment_expression"))
                on_augmented(j, n);
}

static void on_enter(void *ctx, TSNode n) {
        enter(ctx, n);
}

static void on_leave(void *ctx, TSNode n) {
        leave(ctx, n);
}

void check_node(struct check_ctx *c, TSNode root) {
        struct js *j = calloc(1, sizeof(*j));
        if (!j) {
                c->err = -ENOMEM;
                return;
        }
        j->c = c;
        scope_open(j, true); /* the module's */
        /* Pre-order in source order; a declaration binds when its node is
         * left, after its value was visited. */
        check_walk(root, &c->err, on_enter, on_leave, j);
        for (uint32_t i = 0; i < j->n; i++) {
                free(j->b[i].local);
                free(j->b[i].target);
                free(j->b[i].str);
        }
        free(j->b);
        free(j->decl);
        free(j);
}
