/* SPDX-License-Identifier: MIT */
/*
 * Static validation, the policy half: policy files (JSON) into rules,
 * the built-in default (policies/default.json, embedded), parsing with
 * tree-sitter, findings. The language walkers are in check-*.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "airlock-check.h"
#include "check-internal.h"
#include "error.h"
#include "json.h"
#include "macro.h"
#include "spec.h"

/* grammars compiled in from build/grammars (scripts/grammars.sh) */
const TSLanguage *tree_sitter_python(void);
const TSLanguage *tree_sitter_javascript(void);
const TSLanguage *tree_sitter_bash(void);

extern const char al_policy_default_json[]; /* policy-data.S */

/* Bounds on what is parsed: beyond these a run is refused by the caller
 * (al_check returns -E2BIG / -ETIME with a message), never truncated. */
#define CHECK_MAX_BYTES (8u << 20)
#define CHECK_PARSE_TIMEOUT_US (5u * 1000 * 1000)
/* Debian's tree-sitter (0.20.7) corrupts its heap on code that nests
 * deeper than 65535 levels, valid or not (a 16-bit depth wraps): ((((...,
 * ----..., "if true; then " * 70000. Every level takes at least one byte,
 * so code shorter than this is parsed here and longer code in a child
 * process (check_forked), where a crash is an error for the caller. */
#define CHECK_HERE_MAX (16u << 10)
/* Findings one check lists at most, the last of them saying that more
 * were cut: no real code has this many, and each costs a scan of the
 * ones before it (duplicates) and ~500 bytes. */
#define CHECK_MAX_FINDINGS 10000
#define POLICY_MAX_RULES 512
#define POLICY_MAX_NAMES 4096

struct al_policy {
        char name[128];
        al_severity threshold;
        struct check_rule *rules;
        size_t n_rules;
        const char **py_allow; /* view into a rule's names */
};

static const char *const SEVERITY[] = {"info", "low", "medium", "high",
                                       "critical"};

const char *al_severity_name(al_severity s) {
        return (unsigned)s < ARRAY_SIZE(SEVERITY) ? SEVERITY[s] : "?";
}

int al_severity_parse(const char *name) {
        for (size_t i = 0; name && i < ARRAY_SIZE(SEVERITY); i++)
                if (!strcmp(name, SEVERITY[i]))
                        return (int)i;
        return -1;
}

static const char *const LANG_NAME[CL_N] = {"python", "node", "bash"};

/* Which kinds a language has, whether they take names, and the message a
 * rule gets when it does not give one. */
static const struct {
        const char *name;
        unsigned langs; /* bit per enum check_lang */
        bool names;
        const char *message;
} KIND[CK_N] = {
        [CK_IMPORT] = {"import", 3, true,
                       "imports {name}, which policy forbids"},
        [CK_CALL] = {"call", 3, true, "calls {name}, which policy forbids"},
        [CK_ATTRIBUTE] = {"attribute", 1, true,
                          "reaches {name}, an introspection path out of "
                          "the language's restrictions"},
        [CK_ALIAS_IMPORT] = {"alias-import", 1, false,
                             "imports {name} under another name"},
        [CK_DYNAMIC_IMPORT] = {"dynamic-import", 3, false,
                               "imports a module whose name is computed at "
                               "run time"},
        [CK_BUILTINS_ACCESS] = {"builtins-access", 1, false,
                                "reaches __builtins__ directly"},
        [CK_DECODE_EXEC] = {"decode-exec", 5, false,
                            "executes decoded data ({name})"},
        [CK_CHR_BUILDING] = {"chr-building", 1, false,
                             "builds a string from character codes"},
        [CK_OPEN_WRITE] = {"open-write", 1, false,
                           "opens {name} for writing outside the workspace"},
        [CK_ALLOWLIST] = {"import-allowlist", 3, true,
                          "imports {name}, which is not on the allow-list"},
        [CK_COMPUTED_GLOBAL] = {"computed-global", 2, false,
                                "indexes the global object with a computed "
                                "name"},
        [CK_COMMAND] = {"command", 4, true,
                        "runs {name}, which policy forbids"},
        [CK_DYNAMIC_COMMAND] = {"dynamic-command", 4, false,
                                "runs a command whose name is computed at run "
                                "time"},
        [CK_DEV_TCP] = {"dev-tcp", 4, false,
                        "opens a network connection through {name}"},
        [CK_RM_ROOT] = {"rm-root", 4, false, "removes {name} recursively"},
};

static void rule_clear(struct check_rule *r) {
        for (size_t i = 0; r->names && i < r->n_names; i++)
                free(r->names[i]);
        free(r->names);
        r->names = NULL;
        r->n_names = 0;
}

al_policy *al_policy_free(al_policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_clear(&p->rules[i]);
        free(p->rules);
        free(p);
        return NULL;
}

al_severity al_policy_threshold(const al_policy *p) {
        return p->threshold;
}

const char *al_policy_name(const al_policy *p) {
        return p->name;
}

const char *const *al_policy_python_allowlist(const al_policy *p) {
        return (const char *const *)p->py_allow;
}

static bool valid_id(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= sizeof(((struct check_rule *)0)->id))
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '.' || *s == '_'))
                        return false;
        return true;
}

static struct check_rule *find_rule(al_policy *p, const char *id) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (!strcmp(p->rules[i].id, id))
                        return &p->rules[i];
        return NULL;
}

static int remove_rule(al_policy *p, const char *id) {
        struct check_rule *r = find_rule(p, id);
        if (!r)
                return -ENOENT;
        rule_clear(r);
        size_t i = (size_t)(r - p->rules);
        memmove(r, r + 1, (p->n_rules - i - 1) * sizeof(*r));
        p->n_rules--;
        return 0;
}

#define BAD(...) (al_error_set(err, EINVAL, __VA_ARGS__), -EINVAL)

/* One rule object at rules[i] into r. */
static int parse_rule(json_t *o, size_t i, const char *origin,
                      struct check_rule *r, al_error *err) {
        static const char *const keys[] = {"id",     "lang",     "match",
                                           "names",  "severity", "message",
                                           "comment"};
        const char *k;
        json_t *v;
        if (!json_is_object(o))
                return BAD("%s: rules[%zu]: not an object", origin, i);
        json_object_foreach(o, k, v) {
                bool known = false;
                for (size_t j = 0; j < ARRAY_SIZE(keys); j++)
                        known |= !strcmp(k, keys[j]);
                if (!known)
                        return BAD("%s: rules[%zu].%s: unknown key (known: id, "
                                   "lang, match, names, severity, message, "
                                   "comment)",
                                   origin, i, k);
        }
        const char *id = json_string_value(json_object_get(o, "id"));
        if (!id || !valid_id(id))
                return BAD("%s: rules[%zu].id: a string of 1..71 of a-z 0-9 "
                           "- . _ is required",
                           origin, i);
        snprintf(r->id, sizeof(r->id), "%s", id);
        const char *lang = json_string_value(json_object_get(o, "lang"));
        int li = -1;
        for (int j = 0; lang && j < CL_N; j++)
                if (!strcmp(lang, LANG_NAME[j]))
                        li = j;
        if (li < 0)
                return BAD("%s: rules[%zu].lang (%s): python, node or bash "
                           "is required",
                           origin, i, id);
        r->lang = (enum check_lang)li;
        const char *m = json_string_value(json_object_get(o, "match"));
        int ki = -1;
        for (int j = 0; m && j < CK_N; j++)
                if (!strcmp(m, KIND[j].name))
                        ki = j;
        if (ki < 0 || !(KIND[ki].langs & (1u << li))) {
                char known[512] = "";
                for (int j = 0; j < CK_N; j++)
                        if (KIND[j].langs & (1u << li)) {
                                size_t n = strlen(known);
                                snprintf(known + n, sizeof(known) - n, "%s%s",
                                         n ? ", " : "", KIND[j].name);
                        }
                return BAD("%s: rules[%zu].match (%s): %s is not a match for "
                           "%s; one of: %s",
                           origin, i, id, m ? m : "(missing)", lang, known);
        }
        r->kind = (enum check_kind)ki;
        json_t *sv = json_object_get(o, "severity");
        int sev = sv ? al_severity_parse(json_string_value(sv)) : AL_SEV_HIGH;
        if (sev < 0)
                return BAD("%s: rules[%zu].severity (%s): one of info, low, "
                           "medium, high, critical",
                           origin, i, id);
        r->severity = (al_severity)sev;
        json_t *mv = json_object_get(o, "message");
        if (mv && (!json_is_string(mv) || json_string_length(mv) == 0 ||
                   json_string_length(mv) >= sizeof(r->message)))
                return BAD("%s: rules[%zu].message (%s): a string of 1..255 "
                           "bytes",
                           origin, i, id);
        snprintf(r->message, sizeof(r->message), "%s",
                 mv ? json_string_value(mv) : KIND[ki].message);
        json_t *cv = json_object_get(o, "comment");
        if (cv && !json_is_string(cv))
                return BAD("%s: rules[%zu].comment (%s): a string", origin, i,
                           id);
        json_t *names = json_object_get(o, "names");
        if (KIND[ki].names &&
            (!json_is_array(names) || json_array_size(names) == 0))
                return BAD("%s: rules[%zu].names (%s): match %s needs a "
                           "non-empty array of names",
                           origin, i, id, m);
        if (names && !json_is_array(names))
                return BAD("%s: rules[%zu].names (%s): an array of strings",
                           origin, i, id);
        size_t n = names ? json_array_size(names) : 0;
        if (n > POLICY_MAX_NAMES)
                return BAD("%s: rules[%zu].names (%s): at most %d names",
                           origin, i, id, POLICY_MAX_NAMES);
        if (!n)
                return 0;
        r->names = calloc(n + 1, sizeof(*r->names));
        if (!r->names)
                return al_error_set(err, ENOMEM, "out of memory");
        for (size_t j = 0; j < n; j++) {
                const char *s = json_string_value(json_array_get(names, j));
                if (!s || !*s || strlen(s) > 255) {
                        rule_clear(r);
                        return BAD("%s: rules[%zu].names[%zu] (%s): a "
                                   "non-empty string of at most 255 bytes",
                                   origin, i, j, id);
                }
                if (!(r->names[j] = strdup(s))) {
                        rule_clear(r);
                        return al_error_set(err, ENOMEM, "out of memory");
                }
                r->n_names = j + 1;
        }
        return 0;
}

static int parse_into(al_policy *p, const char *json, size_t len,
                      const char *origin, bool is_default, al_error *err) {
        json_error_t je;
        json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return BAD("%s:%d:%d: %s", origin, je.line, je.column, je.text);
        int rc = 0;
        const char *k;
        json_t *v;
        if (!json_is_object(root)) {
                rc = BAD("%s: a policy is a JSON object", origin);
                goto out;
        }
        json_object_foreach(root, k, v) {
                if (strcmp(k, "version") && strcmp(k, "extends") &&
                    strcmp(k, "threshold") && strcmp(k, "disable") &&
                    strcmp(k, "rules") && strcmp(k, "description")) {
                        rc = BAD("%s: %s: unknown key (known: version, "
                                 "description, extends, threshold, disable, "
                                 "rules)",
                                 origin, k);
                        goto out;
                }
        }
        if (json_integer_value(json_object_get(root, "version")) != 1 ||
            !json_is_integer(json_object_get(root, "version"))) {
                rc = BAD("%s: version: 1 is required", origin);
                goto out;
        }
        v = json_object_get(root, "description");
        if (v && !json_is_string(v)) {
                rc = BAD("%s: description: a string", origin);
                goto out;
        }
        v = json_object_get(root, "extends");
        const char *ext = v ? json_string_value(v) : "default";
        if (!ext || (strcmp(ext, "default") && strcmp(ext, "none"))) {
                rc = BAD("%s: extends: \"default\" or \"none\"", origin);
                goto out;
        }
        if (!is_default && !strcmp(ext, "default")) {
                /* start from the built-in rules */
                const char *d = al_policy_default_json;
                if ((rc = parse_into(p, d, strlen(d), "default policy", true,
                                     err)) < 0)
                        goto out;
        }
        v = json_object_get(root, "threshold");
        if (v) {
                int t = al_severity_parse(json_string_value(v));
                if (t < 0) {
                        rc = BAD("%s: threshold: one of info, low, medium, "
                                 "high, critical",
                                 origin);
                        goto out;
                }
                p->threshold = (al_severity)t;
        }
        json_t *rules = json_object_get(root, "rules");
        if (rules && !json_is_array(rules)) {
                rc = BAD("%s: rules: an array of rule objects", origin);
                goto out;
        }
        size_t i;
        json_array_foreach(rules, i, v) {
                struct check_rule r = {0};
                if ((rc = parse_rule(v, i, origin, &r, err)) < 0)
                        goto out;
                struct check_rule *old = find_rule(p, r.id);
                if (old) { /* same id: this one replaces it */
                        rule_clear(old);
                        *old = r;
                        continue;
                }
                if (p->n_rules >= POLICY_MAX_RULES) {
                        rule_clear(&r);
                        rc = BAD("%s: more than %d rules", origin,
                                 POLICY_MAX_RULES);
                        goto out;
                }
                struct check_rule *nr =
                        realloc(p->rules, (p->n_rules + 1) * sizeof(*nr));
                if (!nr) {
                        rule_clear(&r);
                        rc = al_error_set(err, ENOMEM, "out of memory");
                        goto out;
                }
                p->rules = nr;
                p->rules[p->n_rules++] = r;
        }
        json_t *dis = json_object_get(root, "disable");
        if (dis && !json_is_array(dis)) {
                rc = BAD("%s: disable: an array of rule ids", origin);
                goto out;
        }
        json_array_foreach(dis, i, v) {
                const char *id = json_string_value(v);
                if (!id || remove_rule(p, id) < 0) {
                        rc = BAD("%s: disable[%zu]: %s is not a rule of this "
                                 "policy",
                                 origin, i, id ? id : "(not a string)");
                        goto out;
                }
        }
out:
        json_decref(root);
        return rc;
}

static void finish_policy(al_policy *p) {
        p->py_allow = NULL;
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].lang == CL_PYTHON &&
                    p->rules[i].kind == CK_ALLOWLIST) {
                        p->py_allow = (const char **)p->rules[i].names;
                        break;
                }
}

al_policy *al_policy_parse(const char *json, size_t len, const char *origin,
                           al_error *err) {
        al_policy *p = calloc(1, sizeof(*p));
        if (!p) {
                al_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        p->threshold = AL_SEV_MEDIUM;
        snprintf(p->name, sizeof(p->name), "%s", origin);
        bool is_default = json == al_policy_default_json;
        if (parse_into(p, json, len, origin, is_default, err) < 0)
                return al_policy_free(p);
        finish_policy(p);
        return p;
}

al_policy *al_policy_load(const char *file, al_error *err) {
        if (!file) {
                const char *d = al_policy_default_json;
                return al_policy_parse(d, strlen(d), "default", err);
        }
        FILE *f = fopen(file, "rbe");
        if (!f) {
                al_error_errno(err, errno, "policy %s", file);
                return NULL;
        }
        char *buf = malloc(1u << 20);
        size_t n = buf ? fread(buf, 1, 1u << 20, f) : 0;
        bool big = n == (1u << 20), bad = ferror(f) != 0;
        fclose(f);
        if (!buf || big || bad) {
                free(buf);
                al_error_set(err, big ? EFBIG : EIO,
                             big ? "policy %s: larger than 1 MiB"
                                 : "policy %s: cannot read it",
                             file);
                return NULL;
        }
        const char *base = strrchr(file, '/');
        al_policy *p = al_policy_parse(buf, n, base ? base + 1 : file, err);
        free(buf);
        return p;
}

/* --- matching and findings -------------------------------------------- */

static bool module_match(const char *pat, const char *name) {
        size_t n = strlen(pat);
        return !strncmp(pat, name, n) && (name[n] == '\0' || name[n] == '.');
}

static bool call_match(const char *pat, const char *name) {
        size_t n = strlen(pat);
        if (n >= 2 && pat[n - 2] == '.' && pat[n - 1] == '*')
                return !strncmp(pat, name, n - 1) && name[n - 1] != '\0';
        return !strcmp(pat, name);
}

bool check_allowed(const struct check_rule *r, const char *module) {
        for (size_t i = 0; i < r->n_names; i++)
                if (module_match(r->names[i], module))
                        return true;
        return false;
}

const struct check_rule *check_match(const struct check_ctx *c,
                                     enum check_kind k, const char *name) {
        const al_policy *p = c->policy;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct check_rule *r = &p->rules[i];
                if (r->lang != c->lang || r->kind != k)
                        continue;
                if (!r->names || k == CK_ALLOWLIST)
                        return r;
                if (!name)
                        continue;
                for (size_t j = 0; j < r->n_names; j++)
                        if (k == CK_CALL || k == CK_ATTRIBUTE || k == CK_COMMAND
                                    ? call_match(r->names[j], name)
                                    : module_match(r->names[j], name))
                                return r;
        }
        return NULL;
}

bool node_type_is(TSNode n, const char *type) {
        return !ts_node_is_null(n) && !strcmp(ts_node_type(n), type);
}

struct check_kids check_kids_of(TSNode n, bool all) {
        struct check_kids k = {.has = !ts_node_is_null(n), .all = all};
        if (k.has)
                k.c = ts_tree_cursor_new(n);
        return k;
}

bool check_kid(struct check_kids *k, TSNode *out) {
        while (k->has) {
                bool ok = k->started ? ts_tree_cursor_goto_next_sibling(&k->c)
                                     : ts_tree_cursor_goto_first_child(&k->c);
                k->started = true;
                if (!ok)
                        break;
                TSNode x = ts_tree_cursor_current_node(&k->c);
                if (k->all ||
                    (ts_node_is_named(x) && !node_type_is(x, "comment"))) {
                        *out = x;
                        return true;
                }
        }
        return false;
}

void check_kids_done(struct check_kids *k) {
        if (k->has)
                ts_tree_cursor_delete(&k->c);
        k->has = false;
}

void check_walk(TSNode root, const int *err, void (*enter)(void *ctx, TSNode n),
                void (*leave)(void *ctx, TSNode n), void *ctx) {
        TSTreeCursor cur = ts_tree_cursor_new(root);
        for (;;) {
                enter(ctx, ts_tree_cursor_current_node(&cur));
                if (*err < 0)
                        break;
                if (ts_tree_cursor_goto_first_child(&cur))
                        continue;
                for (;;) {
                        if (leave)
                                leave(ctx, ts_tree_cursor_current_node(&cur));
                        if (ts_tree_cursor_goto_next_sibling(&cur))
                                break;
                        if (!ts_tree_cursor_goto_parent(&cur))
                                goto done;
                }
        }
done:
        ts_tree_cursor_delete(&cur);
}

bool check_grow(struct check_ctx *c, void *v, size_t n, size_t *cap,
                size_t size) {
        void **pv = v;
        if (n < *cap)
                return true;
        size_t want = *cap ? *cap * 2 : 64;
        void *p = realloc(*pv, want * size);
        if (!p) {
                c->err = -ENOMEM;
                return false;
        }
        *pv = p;
        *cap = want;
        return true;
}

int check_hexval(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

size_t check_utf8(uint32_t cp, char u[4]) {
        if (cp < 0x80) {
                u[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                u[0] = (char)(0xC0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                u[0] = (char)(0xE0 | cp >> 12);
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        if (cp < 0x110000) {
                u[0] = (char)(0xF0 | cp >> 18);
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                return 4;
        }
        return 0;
}

bool node_is(const struct check_ctx *c, TSNode n, const char *s) {
        size_t l = strlen(s);
        return !ts_node_is_null(n) && node_len(n) == l &&
               !memcmp(node_start(c, n), s, l);
}

bool node_copy(const struct check_ctx *c, TSNode n, char *buf, size_t size) {
        size_t l = ts_node_is_null(n) ? 0 : node_len(n);
        if (ts_node_is_null(n) || l >= size)
                return false;
        memcpy(buf, node_start(c, n), l);
        buf[l] = '\0';
        return true;
}

bool string_literal(const struct check_ctx *c, TSNode n, char *buf,
                    size_t size) {
        if (ts_node_is_null(n))
                return false;
        const char *t = ts_node_type(n);
        if (strcmp(t, "string") && strcmp(t, "raw_string") &&
            strcmp(t, "template_string"))
                return false;
        /* no interpolation inside (f-strings, `${}`, "$x") */
        for (uint32_t i = 0; i < ts_node_named_child_count(n); i++) {
                const char *ct = ts_node_type(ts_node_named_child(n, i));
                if (strcmp(ct, "string_content") &&
                    strcmp(ct, "string_start") && strcmp(ct, "string_end") &&
                    strcmp(ct, "string_fragment") &&
                    strcmp(ct, "escape_sequence"))
                        return false;
        }
        const char *s = node_start(c, n), *e = s + node_len(n);
        /* python prefixes: r, b, u (never f: that has interpolation nodes
         * when it interpolates, and is then refused above) */
        while (s < e && strchr("rRbBuUfF", *s))
                s++;
        if (e - s >= 6 && (!strncmp(s, "\"\"\"", 3) || !strncmp(s, "'''", 3)))
                s += 3, e -= 3;
        else if (e - s >= 2 && strchr("\"'`", *s) && e[-1] == *s)
                s++, e--;
        else
                return false;
        if ((size_t)(e - s) >= size)
                return false;
        memcpy(buf, s, (size_t)(e - s));
        buf[e - s] = '\0';
        return true;
}

static void first_line(const char *s, size_t n, char *out, size_t size) {
        size_t l = 0;
        while (l < n && s[l] != '\n' && s[l] != '\r')
                l++;
        bool cut = l >= size - 4;
        if (cut)
                l = size - 4;
        /* do not end inside a UTF-8 sequence */
        while (cut && l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
                l--;
        memcpy(out, s, l);
        if (cut)
                memcpy(out + l, "...", 4);
        else
                out[l] = '\0';
}

void check_emit(struct check_ctx *c, TSNode n, const struct check_rule *r,
                const char *name) {
        al_findings *f = c->out;
        TSPoint a = ts_node_start_point(n), b = ts_node_end_point(n);
        /* past the cap nothing more is listed (the last one says so):
         * it bounds the scan below, the memory and the child's reply */
        if (f->n >= CHECK_MAX_FINDINGS)
                return;
        static const struct check_rule too_many = {
                .id = "check.too_many_findings",
                .severity = AL_SEV_HIGH,
                .message = "more findings than a check lists (10000): the "
                           "rest are not shown"};
        if (f->n == CHECK_MAX_FINDINGS - 1) {
                r = &too_many;
                name = NULL;
        }
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].line == a.row + 1 &&
                    f->v[i].column == a.column + 1 &&
                    !strcmp(f->v[i].rule, r->id))
                        return;
        if (f->n == f->cap) {
                size_t cap = f->cap ? f->cap * 2 : 16;
                al_finding *v = realloc(f->v, cap * sizeof(*v));
                if (!v) {
                        c->err = -ENOMEM;
                        return;
                }
                f->v = v;
                f->cap = cap;
        }
        al_finding *x = &f->v[f->n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->rule, sizeof(x->rule), "%s", r->id);
        x->severity = r->severity;
        x->line = a.row + 1;
        x->column = a.column + 1;
        x->end_line = b.row + 1;
        x->end_column = b.column + 1;
        first_line(node_start(c, n), node_len(n), x->snippet,
                   sizeof(x->snippet));
        /* the message with {name} filled in */
        const char *m = r->message, *ph = strstr(m, "{name}");
        char nm[96];
        first_line(name ? name : "", name ? strlen(name) : 0, nm, sizeof(nm));
        if (ph)
                snprintf(x->message, sizeof(x->message), "%.*s%s%s",
                         (int)(ph - m), m, nm, ph + 6);
        else
                snprintf(x->message, sizeof(x->message), "%s", m);
}

void al_findings_free(al_findings *f) {
        if (f) {
                free(f->v);
                memset(f, 0, sizeof(*f));
        }
}

size_t al_findings_count_at(const al_findings *f, al_severity min) {
        /* the syntax error counts as the high finding it is reported as
         * (al_findings_json): code the parser cannot follow may hide what
         * the rules look for */
        size_t n = f->syntax_error && min <= AL_SEV_HIGH;
        for (size_t i = 0; i < f->n; i++)
                n += f->v[i].severity >= min;
        return n;
}

/* --- parsing ------------------------------------------------------------ */

static int lang_of(const char *lang) {
        if (!lang)
                return -1;
        if (!strcmp(lang, "python"))
                return CL_PYTHON;
        if (!strcmp(lang, "node"))
                return CL_NODE;
        if (!strcmp(lang, "bash") || !strcmp(lang, "sh"))
                return CL_BASH;
        return -1;
}

bool al_check_supports(const char *lang) {
        return lang_of(lang) >= 0;
}

/* The first ERROR or MISSING node, depth first. */
static void locate_error(const struct check_ctx *c, TSNode root,
                         al_findings *f) {
        TSNode n = root;
        for (;;) {
                if (ts_node_is_missing(n) || node_type_is(n, "ERROR"))
                        break;
                uint32_t k = ts_node_child_count(n);
                TSNode next = {0};
                bool found = false;
                for (uint32_t i = 0; i < k && !found; i++) {
                        TSNode ch = ts_node_child(n, i);
                        if (ts_node_has_error(ch) || ts_node_is_missing(ch)) {
                                next = ch;
                                found = true;
                        }
                }
                if (!found)
                        break;
                n = next;
        }
        TSPoint p = ts_node_start_point(n);
        f->syntax_error = true;
        f->error_line = p.row + 1;
        f->error_column = p.column + 1;
        if (ts_node_is_missing(n))
                snprintf(f->error_snippet, sizeof(f->error_snippet),
                         "missing %s", ts_node_type(n));
        else
                first_line(node_start(c, n), node_len(n), f->error_snippet,
                           sizeof(f->error_snippet));
}

/* Parse and walk in this process. */
static int check_here(const al_policy *p, int li, const char *lang,
                      const char *code, size_t len, al_findings *out,
                      al_error *err) {
        TSParser *ps = ts_parser_new();
        if (!ps)
                return al_error_set(err, ENOMEM, "out of memory");
        const TSLanguage *tl = li == CL_PYTHON ? tree_sitter_python()
                               : li == CL_NODE ? tree_sitter_javascript()
                                               : tree_sitter_bash();
        if (!ts_parser_set_language(ps, tl)) {
                ts_parser_delete(ps);
                return al_error_set(err, ENOTSUP,
                                    "the %s grammar's ABI does not match this "
                                    "tree-sitter",
                                    lang);
        }
        ts_parser_set_timeout_micros(ps, CHECK_PARSE_TIMEOUT_US);
        TSTree *t = ts_parser_parse_string(ps, NULL, code, (uint32_t)len);
        ts_parser_delete(ps);
        if (!t)
                return al_error_set(err, ETIME,
                                    "parsing the %s code took longer than %u s",
                                    lang, CHECK_PARSE_TIMEOUT_US / 1000000);
        struct check_ctx c = {.policy = p,
                              .lang = (enum check_lang)li,
                              .src = code,
                              .len = len,
                              .out = out};
        TSNode root = ts_tree_root_node(t);
        if (ts_node_has_error(root))
                locate_error(&c, root, out);
        if (li == CL_PYTHON)
                check_python(&c, root);
        else if (li == CL_NODE)
                check_node(&c, root);
        else
                check_bash(&c, root);
        ts_tree_delete(t);
        if (c.err < 0) {
                al_findings_free(out);
                return al_error_set(err, -c.err, "out of memory");
        }
        return 0;
}

/* All n bytes to or from fd (write or read), across EINTR and short
 * transfers; false on an error or an early end. */
static bool io_full(int fd, void *buf, size_t n, bool wr) {
        char *b = buf;
        while (n) {
                ssize_t k = wr ? write(fd, b, n) : read(fd, b, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                b += k;
                n -= (size_t)k;
        }
        return true;
}

/* The parser's child runs tree-sitter over untrusted text: if a bug in
 * the parser gives that text control, it must find nothing to use. After
 * the fork the child holds only its reply pipe (fd 3); this allow-list
 * then leaves it the system calls of parsing into memory and replying:
 * everything else kills it (SIGSYS), which the parent reports as a failed
 * parse. Hand-written classic BPF (as OpenSSH's sandbox-seccomp-filter.c)
 * rather than a second libseccomp program: it is a dozen rules, checked
 * in tests/unit/test-check.c by a child that tries what is not listed. */
#if defined(__x86_64__)
#define CHECK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CHECK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]) + 4)
#endif
#define CHECK_REPLY_FD 3

int check_confine(void) {
#ifndef CHECK_AUDIT_ARCH
        return -ENOSYS; /* no allow-list for this architecture: fail closed */
#else
        /* allowed as they are (the walkers and tree-sitter only allocate,
         * and glibc may take a lock or read the clock on the way) */
        static const unsigned plain[] = {
                __NR_brk,            /* malloc, main arena */
                __NR_munmap,         /* free of large blocks */
                __NR_mremap,         /* realloc of large blocks */
                __NR_madvise,        /* malloc trimming */
                __NR_exit_group,     /* _exit */
                __NR_exit,           /* (a thread's exit; none is made) */
                __NR_rt_sigreturn,   /* return from a signal handler */
                __NR_rt_sigprocmask, /* abort() on heap corruption */
                __NR_futex,          /* glibc's internal locks */
                __NR_clock_gettime,  /* the parse timeout, when not vDSO */
        };
        struct sock_filter f[8 + 19 + 2 * ARRAY_SIZE(plain)];
        size_t n = 0;
#define EMIT(...) (f[n++] = (struct sock_filter)__VA_ARGS__)
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                      offsetof(struct seccomp_data, arch)));
        /* another ABI (i386, x32 numbers differ): kill */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHECK_AUDIT_ARCH, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                      offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
        /* x32 calls carry the native arch with bit 30 set */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
        /* write: only the reply, on fd 3 (not the caller's stdout) */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 4));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHECK_REPLY_FD, 0, 1));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        /* mmap: anonymous memory for malloc (fd -1: no file the caller
         * left open can be mapped and written), never executable */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 6));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(4)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 3));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        /* mprotect: never executable */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 4));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
                EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, plain[i], 0, 1));
                EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        }
        /* everything else: open, socket, execve, ptrace, kill ... */
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#undef EMIT
        struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
        /* no_new_privs first: the kernel wants it (or CAP_SYS_ADMIN) for
         * a filter, and it keeps an execve from gaining anything */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return -errno;
        return 0;
#endif
}

/* Most findings a reply may announce (the parent allocates for them
 * before reading): what a check lists at most. */
#define CHECK_REPLY_MAX_FINDINGS CHECK_MAX_FINDINGS

static bool str_in(const char *s, size_t size) {
        return memchr(s, '\0', size) != NULL;
}

/* The child is a process that parsed untrusted text: what it says is
 * data to check, not memory to trust. Every string must end inside its
 * array, every number be in range for code of len bytes. */
int check_reply_valid(const struct check_reply *rep, const al_finding *v,
                      size_t len) {
        const unsigned char *se =
                (const unsigned char *)&rep->head.syntax_error;
        if (rep->r > 0 || rep->r < -4095 || rep->err.code < 0 ||
            rep->err.code > 4095 || !str_in(rep->err.msg, sizeof(rep->err.msg)))
                return -EBADMSG;
        if (rep->head.n > len + 1 || rep->head.n > CHECK_REPLY_MAX_FINDINGS)
                return -EBADMSG;
        if (*se > 1 ||
            !str_in(rep->head.error_snippet, sizeof(rep->head.error_snippet)))
                return -EBADMSG;
        if (*se && (rep->head.error_line > len + 1 ||
                    rep->head.error_column > len + 1))
                return -EBADMSG;
        for (size_t i = 0; v && i < rep->head.n; i++) {
                const al_finding *x = &v[i];
                if (!str_in(x->rule, sizeof(x->rule)) || !x->rule[0] ||
                    !str_in(x->snippet, sizeof(x->snippet)) ||
                    !str_in(x->message, sizeof(x->message)) ||
                    (unsigned)x->severity > AL_SEV_CRITICAL ||
                    x->line > len + 1 || x->end_line > len + 1 ||
                    x->column > len + 1 || x->end_column > len + 1)
                        return -EBADMSG;
        }
        return 0;
}

/* The same in a child process: code this long could nest deep enough to
 * crash the parser, and a crash must be an error here, not the end of
 * the caller (airlock serve). The child is a copy of this process, so
 * the findings cross the pipe as they are in memory. */
static int check_forked(const al_policy *p, int li, const char *lang,
                        const char *code, size_t len, al_findings *out,
                        al_error *err) {
        int fd[2];
        if (pipe2(fd, O_CLOEXEC) < 0)
                return al_error_errno(err, errno, "pipe");
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(fd[0]);
                close(fd[1]);
                return al_error_errno(err, e, "fork");
        }
        if (pid == 0) {
                close(fd[0]);
                /* a copy of a possibly threaded caller: keep only the
                 * reply pipe (as fd 3), not other runs' slot locks,
                 * sockets or pipe ends, which would stay open as long as
                 * this parse takes */
                if (dup2(fd[1], 3) < 0)
                        _exit(1);
                fd[1] = 3;
                if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
                        for (int i = 4; i < 4096; i++)
                                close(i);
                /* no core file and no glibc heap report from a crash: the
                 * caller reports it; a parse that runs away is killed
                 * (SIGXCPU) and reported as a failed parse */
                struct rlimit no_core = {0, 0}, cpu = {30, 31};
                setrlimit(RLIMIT_CORE, &no_core);
                setrlimit(RLIMIT_CPU, &cpu);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDERR_FILENO);
                setenv("LIBC_FATAL_STDERR_", "1", 1);
                /* last: from here on only parsing and the reply */
                if (check_confine() < 0)
                        _exit(2);
                struct check_reply rep = {0};
                rep.r = check_here(p, li, lang, code, len, &rep.head, &rep.err);
                bool ok = io_full(fd[1], &rep, sizeof(rep), true) &&
                          (!rep.head.n ||
                           io_full(fd[1], rep.head.v,
                                   rep.head.n * sizeof(al_finding), true));
                _exit(ok ? 0 : 1);
        }
        close(fd[1]);
        struct check_reply rep;
        bool ok = io_full(fd[0], &rep, sizeof(rep), false) &&
                  check_reply_valid(&rep, NULL, len) == 0;
        al_finding *v = NULL;
        if (ok && rep.head.n) {
                v = malloc(rep.head.n * sizeof(al_finding));
                ok = v &&
                     io_full(fd[0], v, rep.head.n * sizeof(al_finding),
                             false) &&
                     check_reply_valid(&rep, v, len) == 0;
        }
        close(fd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!ok || !WIFEXITED(status) || WEXITSTATUS(status)) {
                free(v);
                if (WIFSIGNALED(status))
                        return al_error_set(
                                err, EILSEQ,
                                "the %s parser failed on this code (signal "
                                "%d; tree-sitter 0.20 breaks on nesting "
                                "deeper than 65535 levels)",
                                lang, WTERMSIG(status));
                if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
                        return al_error_set(err, ENOSYS,
                                            "the checker's child process "
                                            "cannot be confined (seccomp)");
                return al_error_set(err, EIO,
                                    "the checker's child process failed or "
                                    "sent a malformed reply");
        }
        if (rep.r < 0) {
                free(v);
                if (err)
                        *err = rep.err;
                return rep.r;
        }
        *out = rep.head;
        out->v = v;
        out->cap = rep.head.n;
        return 0;
}

int al_check_code(const al_policy *p, const char *lang, const char *code,
                  size_t len, al_findings *out, al_error *err) {
        memset(out, 0, sizeof(*out));
        int li = lang_of(lang);
        if (li < 0)
                return al_error_set(err, ENOTSUP,
                                    "static validation knows python, node and "
                                    "bash, not %s",
                                    lang ? lang : "(none)");
        if (len > CHECK_MAX_BYTES)
                return al_error_set(err, E2BIG,
                                    "code of %zu bytes is larger than the "
                                    "checker's %u MiB",
                                    len, CHECK_MAX_BYTES >> 20);
        if (len < CHECK_HERE_MAX)
                return check_here(p, li, lang, code, len, out, err);
        return check_forked(p, li, lang, code, len, out, err);
}

json_t *al_findings_json(const al_findings *f) {
        json_t *a = json_array();
        /* a syntax error is a finding too: code the parser cannot follow
         * may hide what the rules look for */
        if (a && f->syntax_error)
                json_array_append_new(
                        a,
                        json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:s}", "rule",
                                  "syntax", "severity", "high", "line",
                                  (json_int_t)f->error_line, "column",
                                  (json_int_t)f->error_column, "end_line",
                                  (json_int_t)f->error_line, "end_column",
                                  (json_int_t)f->error_column, "snippet",
                                  al_jstr(f->error_snippet), "message",
                                  "the code does not parse here"));
        for (size_t i = 0; a && i < f->n; i++) {
                const al_finding *x = &f->v[i];
                json_array_append_new(
                        a, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o}",
                                     "rule", x->rule, "severity",
                                     al_severity_name(x->severity), "line",
                                     (json_int_t)x->line, "column",
                                     (json_int_t)x->column, "end_line",
                                     (json_int_t)x->end_line, "end_column",
                                     (json_int_t)x->end_column, "snippet",
                                     al_jstr(x->snippet), "message",
                                     al_jstr(x->message)));
        }
        return a;
}

json_t *al_syntax_error_json(const al_findings *f) {
        if (!f->syntax_error)
                return json_null();
        return json_pack("{s:I,s:I,s:o}", "line", (json_int_t)f->error_line,
                         "column", (json_int_t)f->error_column, "near",
                         al_jstr(f->error_snippet));
}

int al_spec_check(const al_spec *s, const al_policy *p, al_findings *out,
                  al_error *err) {
        memset(out, 0, sizeof(*out));
        if (!s->lang || !s->has_code)
                return al_error_set(err, EINVAL, "no language or no code");
        if (!al_check_supports(s->lang->name))
                return al_error_set(err, ENOTSUP,
                                    "static validation does not know %s",
                                    s->lang->name);
        if (!p)
                return al_error_set(err, EINVAL, "no policy");
        return al_check_code(p, s->lang->name, (const char *)s->code,
                             s->code_len, out, err);
}

/* Loaded by site.py at interpreter start (PYTHONPATH comes before the
 * standard library). Imports made by the code itself (frames of files in
 * /workspace, or of code it compiled: "<string>") must name an allowed
 * module; modules the allowed ones import for themselves pass. */
static const char GUARD_HEAD[] =
        "# airlock: the runtime import guard of the policy's allow-list.\n"
        "# Defence in depth behind the static check; the sandbox is the "
        "boundary.\n"
        "def _airlock_guard(allowed):\n"
        "    import builtins, sys\n"
        "    real, frame = builtins.__import__, sys._getframe\n"
        "    def ok(name):\n"
        "        return any(name == a or name.startswith(a + '.') for a in "
        "allowed)\n"
        "    def guarded(name, globals=None, locals=None, fromlist=(), "
        "level=0):\n"
        "        f = frame(1).f_code.co_filename\n"
        "        mine = f.startswith('/workspace/') or (f.startswith('<') and "
        "not f.startswith('<frozen'))\n"
        "        if mine and (level != 0 or not ok(name)):\n"
        "            raise ImportError('airlock: the policy does not allow "
        "importing %r' % (name if level == 0 else '.' * level + name), "
        "name=name)\n"
        "        return real(name, globals, locals, fromlist, level)\n"
        "    builtins.__import__ = guarded\n"
        "_airlock_guard((";
static const char GUARD_TAIL[] = "))\ndel _airlock_guard\n";

bool al_policy_mode_ok(const char *m) {
        return m && (!strcmp(m, "off") || !strcmp(m, "record") ||
                     !strcmp(m, "warn") || !strcmp(m, "enforce"));
}

void al_verdict_free(al_verdict *v) {
        al_findings_free(&v->findings);
        free(v->findings_json);
        v->findings_json = NULL;
}

int al_spec_validate(al_spec *s, const al_policy *p, const char *mode,
                     al_verdict *v, al_error *err) {
        memset(v, 0, sizeof(*v));
        bool enforce = !strcmp(mode, "enforce"), warn = !strcmp(mode, "warn");
        if (!al_policy_mode_ok(mode))
                return al_error_set(err, EINVAL,
                                    "policy mode: off, record, warn or "
                                    "enforce, not '%s'",
                                    mode);
        if (!strcmp(mode, "off"))
                return 0;
        al_error e = {0};
        const char *lang = s->lang ? s->lang->name : "(none)";
        if (!s->lang || !al_check_supports(lang)) {
                if (enforce) {
                        v->refusal = "policy_unsupported";
                        snprintf(v->message, sizeof(v->message),
                                 "static validation does not know %s: a "
                                 "policy cannot be enforced on it (policy "
                                 "mode warn runs it unchecked)",
                                 lang);
                }
                return 0;
        }
        if (al_spec_check(s, p, &v->findings, &e) < 0) {
                if (enforce)
                        v->refusal = "policy_check_failed";
                snprintf(v->message, sizeof(v->message),
                         "the code could not be checked: %s", e.msg);
                return 0;
        }
        json_t *fj = al_findings_json(&v->findings);
        v->findings_json = fj ? json_dumps(fj, JSON_COMPACT) : NULL;
        json_decref(fj);
        const al_findings *f = &v->findings;
        al_severity t = al_policy_threshold(p);
        size_t blocking = al_findings_count_at(f, t);
        if (enforce && blocking) {
                const al_finding *x = NULL;
                for (size_t i = 0; i < f->n && !x; i++)
                        if (f->v[i].severity >= t)
                                x = &f->v[i];
                v->refusal = "policy_violation";
                if (!x)
                        snprintf(v->message, sizeof(v->message),
                                 "policy %s: the code does not parse "
                                 "(%u:%u near '%s'), so it cannot be checked",
                                 al_policy_name(p), f->error_line,
                                 f->error_column, f->error_snippet);
                else
                        snprintf(v->message, sizeof(v->message),
                                 "policy %s: %zu finding%s at or above %s, "
                                 "first %s at %u:%u: %s",
                                 al_policy_name(p), blocking,
                                 blocking == 1 ? "" : "s", al_severity_name(t),
                                 x->rule, x->line, x->column, x->message);
                return 0;
        }
        /* the allow-list also at run time (python) */
        if ((enforce || warn) && al_spec_add_import_guard(s, p, &e) < 0) {
                v->refusal = "policy_guard_failed";
                snprintf(v->message, sizeof(v->message),
                         "the runtime import guard cannot be installed: %s",
                         e.msg);
        }
        return 0;
}

int al_spec_add_import_guard(al_spec *s, const al_policy *p, al_error *err) {
        if (!p->py_allow || !s->lang || strcmp(s->lang->name, "python"))
                return 0;
        size_t cap = sizeof(GUARD_HEAD) + sizeof(GUARD_TAIL) + 16, len = 0;
        for (size_t i = 0; p->py_allow[i]; i++)
                cap += strlen(p->py_allow[i]) * 4 + 4;
        _cleanup_free_ char *src = malloc(cap);
        if (!src)
                return al_error_set(err, ENOMEM, "out of memory");
        len = (size_t)snprintf(src, cap, "%s", GUARD_HEAD);
        for (size_t i = 0; p->py_allow[i]; i++) {
                /* names as python string literals: escape everything that
                 * is not a plain module-name character */
                src[len++] = '\'';
                for (const char *c = p->py_allow[i]; *c; c++) {
                        unsigned char u = (unsigned char)*c;
                        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                            (u >= '0' && u <= '9') || u == '_' || u == '.')
                                src[len++] = (char)u;
                        else
                                len += (size_t)snprintf(src + len, cap - len,
                                                        "\\x%02x", u);
                }
                src[len++] = '\'';
                src[len++] = ',';
        }
        len += (size_t)snprintf(src + len, cap - len, "%s", GUARD_TAIL);
        int r = al_spec_add_file(s, ".airlock/sitecustomize.py", src, len,
                                 false, err);
        if (r < 0)
                return r;
        if ((r = al_spec_add_env(s, "PYTHONPATH", "/workspace/.airlock", err)) <
            0)
                return r;
        return 1;
}
