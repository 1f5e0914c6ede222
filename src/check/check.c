/* SPDX-License-Identifier: MIT */
/*
 * Static validation, the policy half: policy files (JSON) into rules,
 * the built-in default (policies/default.json, embedded), parsing with
 * tree-sitter, findings. The language walkers are in check-python.c,
 * check-node.c and check-bash.c; the confined child process that parses
 * long code in check-child.c; a run's verdict (al_spec_validate) in
 * check-spec.c.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-check.h"
#include "check-internal.h"
#include "egress.h"
#include "error.h"
#include "findings-json.h"
#include "json.h"
#include "macro.h"

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
#define POLICY_MAX_RULES 512
#define POLICY_MAX_NAMES 4096

struct al_policy {
        char name[128];
        al_severity threshold;
        struct check_rule *rules;
        size_t n_rules;
        const char **py_allow; /* view into a rule's names */
        /* "network": the hosts a run may reach under this policy (a
         * ceiling: a run's list must be within it) and its byte cap each
         * way; NULL when the policy has no network section */
        al_net_policy *net;
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
        free(p->net);
        free(p);
        return NULL;
}

const al_net_policy *al_policy_network(const al_policy *p) {
        return p ? p->net : NULL;
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

/* A network section's byte cap: 1 byte to this (1 TiB). */
#define POLICY_NET_MAX_BYTES (1ull << 40)

/* "network": {"allow": ["host[:port]", ...], "max_bytes": N}: every
 * entry checked as `run --allow-net` checks it, at load (a bad entry:
 * the policy does not load). */
static int parse_network(al_policy *p, json_t *nw, const char *origin,
                         al_error *err) {
        const char *k;
        json_t *v;
        if (!json_is_object(nw))
                return BAD("%s: network: an object, {\"allow\": "
                           "[\"host[:port]\", ...], \"max_bytes\": N}",
                           origin);
        json_object_foreach(nw, k, v) {
                if (strcmp(k, "allow") && strcmp(k, "max_bytes"))
                        return BAD("%s: network.%s: unknown key (known: "
                                   "allow, max_bytes)",
                                   origin, k);
        }
        json_t *allow = json_object_get(nw, "allow");
        if (!json_is_array(allow))
                return BAD("%s: network.allow: an array of \"host[:port]\" "
                           "(an empty one: no network)",
                           origin);
        if (json_array_size(allow) > AL_NET_MAX_RULES)
                return BAD("%s: network.allow: at most %d entries", origin,
                           AL_NET_MAX_RULES);
        al_net_policy *net = calloc(1, sizeof(*net));
        if (!net)
                return al_error_set(err, ENOMEM, "out of memory");
        if (al_net_policy_parse_list("", net, err) < 0) {
                free(net);
                return -EINVAL;
        }
        size_t i;
        json_array_foreach(allow, i, v) {
                al_error e = {0};
                const char *entry = json_string_value(v);
                if (!entry) {
                        free(net);
                        return BAD("%s: network.allow[%zu]: a string", origin,
                                   i);
                }
                if (al_net_rule_parse(entry, &net->rules[net->n], &e) < 0) {
                        free(net);
                        return BAD("%s: network.allow[%zu]: %s", origin, i,
                                   e.msg);
                }
                net->n++;
        }
        json_t *mb = json_object_get(nw, "max_bytes");
        if (mb) {
                json_int_t n = json_integer_value(mb);
                if (!json_is_integer(mb) || n < 1 ||
                    (uint64_t)n > POLICY_NET_MAX_BYTES) {
                        free(net);
                        return BAD("%s: network.max_bytes: a whole number "
                                   "of bytes from 1 to %llu",
                                   origin,
                                   (unsigned long long)POLICY_NET_MAX_BYTES);
                }
                net->max_bytes_out = net->max_bytes_in = (uint64_t)n;
        }
        free(p->net);
        p->net = net;
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
                    strcmp(k, "rules") && strcmp(k, "description") &&
                    strcmp(k, "network")) {
                        rc = BAD("%s: %s: unknown key (known: version, "
                                 "description, extends, threshold, disable, "
                                 "rules, network)",
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
        v = json_object_get(root, "network");
        if (v && (rc = parse_network(p, v, origin, err)) < 0)
                goto out;
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
int check_here(const al_policy *p, int li, const char *lang, const char *code,
               size_t len, al_findings *out, al_error *err) {
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
