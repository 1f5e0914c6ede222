/* SPDX-License-Identifier: MIT */
/*
 * The python walker of static validation. One pass over the tree in source
 * order, keeping what names were bound to (import aliases, `x = os.system`,
 * `m = __import__("os")`) so that a call is judged by what it reaches, not
 * by how it is spelled:
 *
 *   import os as o; o.system("id")        -> os.system
 *   from os import system as s; s("id")   -> os.system
 *   getattr(__builtins__, "eval")("1")     -> eval
 *   __import__("o" + "s")                  -> a computed import
 *
 * Recursion over the tree is bounded (RESOLVE_DEPTH); the traversal itself
 * is iterative, so deeply nested hostile code cannot overflow the stack.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-internal.h"
#include "macro.h"

#define NAME_MAX_LEN 256
#define RESOLVE_DEPTH 32
#define MAX_BINDINGS 4096

struct binding {
        char *local;  /* the name in the code */
        char *target; /* the dotted name it stands for, "" = tainted data */
        bool decoded; /* holds the result of a decoder */
};

struct py {
        struct check_ctx *c;
        struct binding *b;
        size_t n, cap;
};

static const char *lookup(const struct py *p, const char *local,
                          bool *decoded) {
        for (size_t i = p->n; i-- > 0;)
                if (!strcmp(p->b[i].local, local)) {
                        if (decoded)
                                *decoded = p->b[i].decoded;
                        return p->b[i].target;
                }
        return NULL;
}

static void bind(struct py *p, const char *local, const char *target,
                 bool decoded) {
        if (p->n == MAX_BINDINGS)
                return; /* beyond this, names resolve to themselves */
        if (!check_grow(p->c, &p->b, p->n, &p->cap, sizeof(*p->b)))
                return;
        char *l = strdup(local), *t = strdup(target);
        if (!l || !t) {
                free(l);
                free(t);
                p->c->err = -ENOMEM;
                return;
        }
        p->b[p->n++] = (struct binding){l, t, decoded};
}


/* The i-th positional argument of a call, or the keyword argument kw. */
static TSNode call_arg(const struct check_ctx *c, TSNode call, uint32_t i,
                       const char *kw) {
        TSNode args = check_field(call, "arguments"), none = {0};
        if (!node_type_is(args, "argument_list"))
                return none;
        uint32_t pos = 0;
        for (uint32_t k = 0; k < ts_node_named_child_count(args); k++) {
                TSNode a = ts_node_named_child(args, k);
                if (node_type_is(a, "keyword_argument")) {
                        if (kw && node_is(c, check_field(a, "name"), kw))
                                return check_field(a, "value");
                        continue;
                }
                if (node_type_is(a, "comment"))
                        continue;
                if (pos++ == i)
                        return a;
        }
        return none;
}

/* "__builtins__.eval", "builtins.eval" -> "eval" */
static const char *strip_builtins(const char *s) {
        if (!strncmp(s, "__builtins__.", 13))
                return s + 13;
        if (!strncmp(s, "builtins.", 9))
                return s + 9;
        return s;
}

static bool resolve(struct py *p, TSNode n, char *out, size_t size, int depth);

/* The module a call imports when it is __import__("m") or
 * importlib.import_module("m"): 1 with the name in out, 0 when the call is
 * not an import, -1 when it is one of a computed name. */
static int import_call(struct py *p, TSNode call, const char *fn, char *out,
                       size_t size) {
        if (strcmp(fn, "__import__") && strcmp(fn, "importlib.import_module") &&
            strcmp(fn, "importlib.__import__"))
                return 0;
        TSNode a = call_arg(p->c, call, 0, "name");
        if (string_literal(p->c, a, out, size) && out[0])
                return 1;
        return -1;
}

/* What the expression n names, as a dotted name: identifiers through the
 * bindings, attribute chains, getattr(x, "lit"), x["lit"] on the builtins,
 * __import__("lit"). False when it is not a name we can follow. */
static bool resolve(struct py *p, TSNode n, char *out, size_t size,
                    int depth) {
        if (ts_node_is_null(n) || depth > RESOLVE_DEPTH)
                return false;
        const char *t = ts_node_type(n);
        char a[NAME_MAX_LEN], b[NAME_MAX_LEN];
        if (!strcmp(t, "identifier")) {
                if (!node_copy(p->c, n, a, sizeof(a)))
                        return false;
                const char *to = lookup(p, a, NULL);
                snprintf(out, size, "%s", to && *to ? to : a);
                return true;
        }
        if (!strcmp(t, "parenthesized_expression"))
                return resolve(p, ts_node_named_child(n, 0), out, size,
                               depth + 1);
        if (!strcmp(t, "attribute")) {
                if (!resolve(p, check_field(n, "object"), a, sizeof(a), depth + 1) ||
                    !node_copy(p->c, check_field(n, "attribute"), b, sizeof(b)))
                        return false;
                snprintf(out, size, "%s", strip_builtins(a));
                size_t l = strlen(out);
                snprintf(out + l, size - l, "%s%s", l ? "." : "", b);
                snprintf(a, sizeof(a), "%s", strip_builtins(out));
                snprintf(out, size, "%s", a);
                return true;
        }
        if (!strcmp(t, "subscript")) {
                /* __builtins__["eval"], vars(builtins)["eval"],
                 * globals()["__builtins__"] */
                TSNode v = check_field(n, "value"), k = check_field(n, "subscript");
                if (!string_literal(p->c, k, b, sizeof(b)))
                        return false;
                if (!resolve(p, v, a, sizeof(a), depth + 1))
                        return false;
                if (!strcmp(a, "globals") || !strcmp(a, "__builtins__") ||
                    !strcmp(a, "builtins") || !strcmp(a, "vars") ||
                    !strcmp(a, "locals")) {
                        snprintf(out, size, "%s", strip_builtins(b));
                        return true;
                }
                return false;
        }
        if (!strcmp(t, "call")) {
                if (!resolve(p, check_field(n, "function"), a, sizeof(a),
                             depth + 1))
                        return false;
                if (import_call(p, n, a, out, size) == 1)
                        return true;
                if (!strcmp(a, "getattr")) {
                        if (!string_literal(p->c, call_arg(p->c, n, 1, NULL),
                                            b, sizeof(b)) ||
                            !resolve(p, call_arg(p->c, n, 0, NULL), a,
                                     sizeof(a), depth + 1))
                                return false;
                        snprintf(out, size, "%s.%s", a, b);
                        snprintf(a, sizeof(a), "%s", strip_builtins(out));
                        snprintf(out, size, "%s", a);
                        return true;
                }
                /* globals(), vars(x), locals(): the call's own name */
                if (!strcmp(a, "globals") || !strcmp(a, "locals"))
                        return snprintf(out, size, "globals"), true;
                if (!strcmp(a, "vars")) {
                        if (!resolve(p, call_arg(p->c, n, 0, NULL), b,
                                     sizeof(b), depth + 1))
                                return false;
                        snprintf(out, size, "%s", b);
                        return true;
                }
                return false;
        }
        return false;
}

static bool is_exec(const char *fn) {
        return !strcmp(fn, "exec") || !strcmp(fn, "eval") ||
               !strcmp(fn, "compile") || !strcmp(fn, "execfile");
}

/* A decoder: base64.b64decode, codecs.decode, bytes.fromhex, x.decode,
 * zlib.decompress, marshal.loads, binascii.unhexlify ... */
static bool is_decoder(const char *fn) {
        static const char *const last[] = {
                "b64decode",  "b32decode",  "b16decode",     "a85decode",
                "b85decode",  "decodebytes", "decodestring", "standard_b64decode",
                "urlsafe_b64decode", "unhexlify", "a2b_base64", "a2b_hex",
                "fromhex",    "decompress", "decode",        "loads",
                "rot13"};
        const char *dot = strrchr(fn, '.');
        const char *l = dot ? dot + 1 : fn;
        for (size_t i = 0; i < ARRAY_SIZE(last); i++)
                if (!strcmp(l, last[i]))
                        return true;
        return false;
}

/* Calls the subtree at n makes to a decoder, or a tainted name it uses:
 * the name for the message in why. Iterative. */
static bool feeds_decoded(struct py *p, TSNode n, char *why, size_t size) {
        TSTreeCursor cur = ts_tree_cursor_new(n);
        bool found = false;
        for (;;) {
                TSNode x = ts_tree_cursor_current_node(&cur);
                char nm[NAME_MAX_LEN];
                if (node_type_is(x, "call") &&
                    resolve(p, check_field(x, "function"), nm, sizeof(nm), 0) &&
                    is_decoder(nm)) {
                        snprintf(why, size, "%s", nm);
                        found = true;
                        break;
                }
                bool dec = false;
                if (node_type_is(x, "identifier") &&
                    node_copy(p->c, x, nm, sizeof(nm)) &&
                    lookup(p, nm, &dec) && dec) {
                        snprintf(why, size, "%s", nm);
                        found = true;
                        break;
                }
                if (ts_tree_cursor_goto_first_child(&cur))
                        continue;
                bool up = false;
                while (!ts_tree_cursor_goto_next_sibling(&cur)) {
                        if (!ts_tree_cursor_goto_parent(&cur) ||
                            ts_node_eq(ts_tree_cursor_current_node(&cur), n)) {
                                up = true;
                                break;
                        }
                }
                if (up)
                        break;
        }
        ts_tree_cursor_delete(&cur);
        return found;
}

/* --- imports ------------------------------------------------------------ */

static void module_imported(struct py *p, TSNode at, const char *module) {
        const struct check_rule *r;
        if ((r = check_match(p->c, CK_IMPORT, module)))
                check_emit(p->c, at, r, module);
        if ((r = check_match(p->c, CK_ALLOWLIST, NULL)) &&
            !check_allowed(r, module))
                check_emit(p->c, at, r, module);
}

/* Whether importing this name is something policy flags (for aliases). */
static bool flagged_name(struct py *p, const char *name) {
        return check_match(p->c, CK_IMPORT, name) ||
               check_match(p->c, CK_CALL, name);
}

static void alias_flag(struct py *p, TSNode at, const char *what,
                       const char *alias) {
        const struct check_rule *r = check_match(p->c, CK_ALIAS_IMPORT, NULL);
        if (!r || !flagged_name(p, what) || !strcmp(what, alias))
                return;
        char msg[2 * NAME_MAX_LEN + 8];
        snprintf(msg, sizeof(msg), "%s as %s", what, alias);
        check_emit(p->c, at, r, msg);
}

static void on_import(struct py *p, TSNode n) {
        char mod[NAME_MAX_LEN], alias[NAME_MAX_LEN];
        for (uint32_t i = 0; i < ts_node_named_child_count(n); i++) {
                TSNode x = ts_node_named_child(n, i);
                if (node_type_is(x, "dotted_name")) {
                        if (!node_copy(p->c, x, mod, sizeof(mod)))
                                continue;
                        module_imported(p, x, mod);
                        /* `import os.path` binds os */
                        char top[NAME_MAX_LEN];
                        snprintf(top, sizeof(top), "%s", mod);
                        top[strcspn(top, ".")] = '\0';
                        bind(p, top, top, false);
                } else if (node_type_is(x, "aliased_import")) {
                        if (!node_copy(p->c, check_field(x, "name"), mod,
                                       sizeof(mod)) ||
                            !node_copy(p->c, check_field(x, "alias"), alias,
                                       sizeof(alias)))
                                continue;
                        module_imported(p, x, mod);
                        alias_flag(p, x, mod, alias);
                        bind(p, alias, mod, false);
                }
        }
}

static void on_import_from(struct py *p, TSNode n) {
        char mod[NAME_MAX_LEN], name[NAME_MAX_LEN], alias[NAME_MAX_LEN],
                full[2 * NAME_MAX_LEN + 2];
        TSNode m = check_field(n, "module_name");
        if (!node_type_is(m, "dotted_name") ||
            !node_copy(p->c, m, mod, sizeof(mod)))
                return; /* relative: the code's own files */
        module_imported(p, m, mod);
        for (uint32_t i = 0; i < ts_node_named_child_count(n); i++) {
                TSNode x = ts_node_named_child(n, i);
                if (ts_node_eq(x, m))
                        continue;
                bool aliased = node_type_is(x, "aliased_import");
                TSNode nm = aliased ? check_field(x, "name") : x;
                if (!node_type_is(nm, "dotted_name") ||
                    !node_copy(p->c, nm, name, sizeof(name)))
                        continue;
                snprintf(full, sizeof(full), "%s.%s", mod, name);
                /* from os import system: a forbidden call by its name */
                const struct check_rule *r = check_match(p->c, CK_CALL, full);
                if (r)
                        check_emit(p->c, x, r, full);
                if (aliased &&
                    node_copy(p->c, check_field(x, "alias"), alias, sizeof(alias))) {
                        alias_flag(p, x, full, alias);
                        bind(p, alias, full, false);
                } else
                        bind(p, name, full, false);
        }
}

/* --- calls -------------------------------------------------------------- */

static bool outside_workspace(const char *path) {
        if (strstr(path, ".."))
                return true;
        if (path[0] != '/')
                return false;
        return strncmp(path, "/workspace/", 11) && strncmp(path, "/tmp/", 5) &&
               strcmp(path, "/workspace") && strncmp(path, "/out/", 5);
}

static void on_open(struct py *p, TSNode call) {
        const struct check_rule *r = check_match(p->c, CK_OPEN_WRITE, NULL);
        char mode[32], path[NAME_MAX_LEN];
        if (!r || !string_literal(p->c, call_arg(p->c, call, 1, "mode"), mode,
                                  sizeof(mode)))
                return;
        if (!strpbrk(mode, "wax+"))
                return;
        TSNode f = call_arg(p->c, call, 0, "file");
        if (string_literal(p->c, f, path, sizeof(path)) &&
            outside_workspace(path))
                check_emit(p->c, call, r, path);
}

/* The statement around n (for findings about a whole expression). */
static TSNode statement_of(TSNode n, bool *in_loop_expr) {
        *in_loop_expr = false;
        TSNode s = n;
        for (TSNode x = ts_node_parent(n); !ts_node_is_null(x);
             x = ts_node_parent(x)) {
                const char *t = ts_node_type(x);
                if (!strcmp(t, "generator_expression") ||
                    !strcmp(t, "list_comprehension") ||
                    !strcmp(t, "set_comprehension"))
                        *in_loop_expr = true;
                if (!strcmp(t, "module") || !strcmp(t, "block"))
                        break;
                s = x;
        }
        return s;
}

static unsigned count_chr(struct py *p, TSNode stmt) {
        unsigned k = 0;
        TSTreeCursor cur = ts_tree_cursor_new(stmt);
        for (;;) {
                TSNode x = ts_tree_cursor_current_node(&cur);
                char nm[NAME_MAX_LEN];
                if (node_type_is(x, "call") &&
                    resolve(p, check_field(x, "function"), nm, sizeof(nm), 0) &&
                    !strcmp(nm, "chr"))
                        k++;
                if (ts_tree_cursor_goto_first_child(&cur))
                        continue;
                bool up = false;
                while (!ts_tree_cursor_goto_next_sibling(&cur))
                        if (!ts_tree_cursor_goto_parent(&cur) ||
                            ts_node_eq(ts_tree_cursor_current_node(&cur),
                                       stmt)) {
                                up = true;
                                break;
                        }
                if (up)
                        break;
        }
        ts_tree_cursor_delete(&cur);
        return k;
}

static void on_chr(struct py *p, TSNode call, bool via_map) {
        const struct check_rule *r = check_match(p->c, CK_CHR_BUILDING, NULL);
        if (!r)
                return;
        bool loop;
        TSNode stmt = statement_of(call, &loop);
        if (via_map || loop || count_chr(p, stmt) >= 3)
                check_emit(p->c, stmt, r, "chr");
}

static void on_call(struct py *p, TSNode n) {
        char fn[NAME_MAX_LEN], mod[NAME_MAX_LEN];
        if (!resolve(p, check_field(n, "function"), fn, sizeof(fn), 0))
                return;
        const struct check_rule *r = check_match(p->c, CK_CALL, fn);
        if (r)
                check_emit(p->c, n, r, fn);
        int ic = import_call(p, n, fn, mod, sizeof(mod));
        if (ic == 1)
                module_imported(p, n, mod);
        else if (ic < 0 && (r = check_match(p->c, CK_DYNAMIC_IMPORT, NULL)))
                check_emit(p->c, n, r, fn);
        if (!strcmp(fn, "getattr") || !strcmp(fn, "setattr") ||
            !strcmp(fn, "delattr") || !strcmp(fn, "hasattr")) {
                char attr[NAME_MAX_LEN], obj[NAME_MAX_LEN];
                TSNode a = call_arg(p->c, n, 1, NULL);
                if (string_literal(p->c, a, attr, sizeof(attr)) &&
                    (r = check_match(p->c, CK_ATTRIBUTE, attr)))
                        check_emit(p->c, n, r, attr);
                if (resolve(p, call_arg(p->c, n, 0, NULL), obj, sizeof(obj),
                            0) &&
                    (!strcmp(obj, "__builtins__") || !strcmp(obj, "builtins")) &&
                    (r = check_match(p->c, CK_BUILTINS_ACCESS, NULL)))
                        check_emit(p->c, n, r, fn);
        }
        if (!strcmp(fn, "open") || !strcmp(fn, "io.open") ||
            !strcmp(fn, "codecs.open"))
                on_open(p, n);
        if (is_exec(fn) && (r = check_match(p->c, CK_DECODE_EXEC, NULL))) {
                char why[NAME_MAX_LEN];
                TSNode args = check_field(n, "arguments");
                if (!ts_node_is_null(args) &&
                    feeds_decoded(p, args, why, sizeof(why))) {
                        char msg[2 * NAME_MAX_LEN + 8];
                        snprintf(msg, sizeof(msg), "%s of %s", fn, why);
                        check_emit(p->c, n, r, msg);
                }
        }
        if (!strcmp(fn, "chr"))
                on_chr(p, n, false);
        if (!strcmp(fn, "map")) {
                char a0[NAME_MAX_LEN];
                if (resolve(p, call_arg(p->c, n, 0, NULL), a0, sizeof(a0), 0) &&
                    !strcmp(a0, "chr"))
                        on_chr(p, n, true);
        }
}

/* x = <name or import>: remember what x stands for; x = <decoded>: taint */
static void on_assign(struct py *p, TSNode n) {
        TSNode l = check_field(n, "left"), r = check_field(n, "right");
        char local[NAME_MAX_LEN], target[NAME_MAX_LEN], why[NAME_MAX_LEN];
        if (!node_type_is(l, "identifier") || ts_node_is_null(r) ||
            !node_copy(p->c, l, local, sizeof(local)))
                return;
        if (resolve(p, r, target, sizeof(target), 0) &&
            strcmp(target, local)) {
                bind(p, local, target, false);
                return;
        }
        if (feeds_decoded(p, r, why, sizeof(why)))
                bind(p, local, "", true);
        else if (lookup(p, local, NULL))
                bind(p, local, local, false); /* rebound to something else */
}

static void on_string(struct py *p, TSNode n) {
        char s[32];
        const struct check_rule *r;
        if (string_literal(p->c, n, s, sizeof(s)) &&
            !strcmp(s, "__builtins__") &&
            (r = check_match(p->c, CK_BUILTINS_ACCESS, NULL)))
                check_emit(p->c, n, r, "\"__builtins__\"");
}

static void visit(struct py *p, TSNode n) {
        const char *t = ts_node_type(n);
        const struct check_rule *r;
        char nm[NAME_MAX_LEN];
        if (!strcmp(t, "import_statement"))
                on_import(p, n);
        else if (!strcmp(t, "import_from_statement"))
                on_import_from(p, n);
        else if (!strcmp(t, "call"))
                on_call(p, n);
        else if (!strcmp(t, "assignment"))
                on_assign(p, n);
        else if (!strcmp(t, "string"))
                on_string(p, n);
        else if (!strcmp(t, "attribute")) {
                if (node_copy(p->c, check_field(n, "attribute"), nm, sizeof(nm)) &&
                    (r = check_match(p->c, CK_ATTRIBUTE, nm)))
                        check_emit(p->c, n, r, nm);
        } else if (!strcmp(t, "identifier") && node_is(p->c, n, "__builtins__")) {
                TSNode up = ts_node_parent(n);
                bool is_attr = node_type_is(up, "attribute") &&
                               ts_node_eq(check_field(up, "attribute"), n);
                if (!is_attr &&
                    (r = check_match(p->c, CK_BUILTINS_ACCESS, NULL)))
                        check_emit(p->c, n, r, "__builtins__");
        }
}

static void on_enter(void *ctx, TSNode n) {
        if (!node_type_is(n, "assignment"))
                visit(ctx, n);
}

static void on_leave(void *ctx, TSNode n) {
        if (node_type_is(n, "assignment"))
                on_assign(ctx, n);
}

void check_python(struct check_ctx *c, TSNode root) {
        struct py p = {.c = c};
        /* Pre-order, in source order; assignments bind before the
         * statements after them are visited. The right-hand side of an
         * assignment is visited before the binding takes effect: the
         * assignment node is handled after its children. */
        check_walk(root, &c->err, on_enter, on_leave, &p);
        for (size_t i = 0; i < p.n; i++) {
                free(p.b[i].local);
                free(p.b[i].target);
        }
        free(p.b);
}
