/* SPDX-License-Identifier: MIT */
/*
 * The bash walker of static validation. Every command the tree holds is
 * judged by the program it runs, however it is spelled and whatever runs
 * it on its behalf:
 *
 *   \curl, c''url, "curl", $'\x63url', /usr/bin/curl     -> curl
 *   sudo env A=1 timeout 5 nohup curl x                 -> sudo, nohup, curl
 *   find . -exec curl {} \;   xargs curl   busybox wget -> curl, wget
 *   bash -c 'curl x'   eval "curl x"   sh <<< 'curl x'   -> curl (the code
 *                                       is parsed again and walked)
 *   ${c}rl x, "$cmd" x, /???/?url x                     -> a computed name
 *   exec 3>/dev/tcp/h/80                                -> /dev/tcp
 *   rm -r -f -- "$HOME"/'*'                             -> rm -r of $HOME
 *   echo ... | base64 -d | sh, eval "$(... | base64 -d)",
 *   x=$(... | xxd -r -p); bash -c "$x"                  -> decoded code run
 *
 * The traversal is iterative with an explicit stack (hostile code may nest
 * 100k deep): whether a subtree holds decoded data is carried up from the
 * children when a node is left. Code given to a shell as a string is
 * parsed and walked again, at most NEST_MAX levels deep, with its findings
 * reported at the string in the outer code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-internal.h"
#include "macro.h"

const TSLanguage *tree_sitter_bash(void); /* build/grammars */

#define WORD_MAX 256
/* Wrappers followed from one command to the one it runs. */
#define MAX_WRAP 8
/* Code in strings (bash -c '...', eval, here-strings) parsed again. */
#define NEST_MAX 4
/* Bytes parsed again over a whole check: a bound on the work hostile code
 * can ask for, next to the checker's own bound on the code. */
#define REPARSE_BUDGET (16u << 20)
#define REPARSE_TIMEOUT_US (1000u * 1000)
/* Variables remembered as holding decoded data. */
#define MAX_TAINTED 1024

struct frame {
        TSNode n;
        bool dec;       /* the subtree runs a decoder or uses its output */
        bool dec_redir; /* one of the node's redirects does */
        bool seen_dec;  /* pipeline: an earlier stage did */
        TSNode prev;    /* pipeline: the stage before */
        TSNode heredoc; /* pipeline: cmd <<EOF | ...: the document */
        TSNode at;      /* pipeline: where its findings are reported */
};

struct sh {
        struct check_ctx *c;   /* the code walked (of a nested parse) */
        struct check_ctx *top; /* where findings go */
        TSNode anchor;         /* nested: the outer node reported */
        int level;             /* 0: the code itself */
        size_t *budget;        /* bytes left to parse again */
        struct frame *f;
        size_t nf, capf;
        char **tainted;
        size_t nt;
};

/* A command's words: v[0] its name, then its arguments. */
struct argv {
        TSNode *v;
        size_t n;
};

/* The innermost command a chain of wrappers runs. */
struct simple {
        char name[WORD_MAX];
        size_t i, end; /* its name at v[i], its arguments up to v[end] */
        bool dyn;
};


static void emit(struct sh *s, TSNode n, const struct check_rule *r,
                 const char *name) {
        if (s->level)
                check_emit(s->top, s->anchor, r, name);
        else
                check_emit(s->c, n, r, name);
}

/* --- words ---------------------------------------------------------------- */

enum { V_RAW, V_CODE }; /* expansions as written, or as "${_}" */
#define VF_EXPANSION 1u
#define VF_GLOB 2u

struct buf {
        char *p;
        size_t n, size;
        bool full;
};

static void put(struct buf *b, const char *s, size_t l) {
        if (b->full || b->n + l >= b->size) {
                b->full = true;
                return;
        }
        memcpy(b->p + b->n, s, l);
        b->n += l;
        b->p[b->n] = '\0';
}

static void putc_(struct buf *b, char ch) {
        put(b, &ch, 1);
}



static void put_utf8(struct buf *b, unsigned long cp) {
        char u[4];
        size_t k = check_utf8((uint32_t)cp, u);
        if (!k)
                return;
        put(b, u, k);
}

/* An unquoted word: \x is x, \<newline> nothing; *, ? and [...] glob. */
static void word_text(struct buf *b, const char *s, const char *e,
                      unsigned *flags) {
        for (const char *p = s; p < e; p++) {
                if (*p == '\\' && p + 1 < e) {
                        p++;
                        if (*p != '\n')
                                putc_(b, *p);
                        continue;
                }
                if (*p == '*' || *p == '?' ||
                    (*p == '[' && memchr(p, ']', (size_t)(e - p)) && e - s > 1))
                        *flags |= VF_GLOB;
                putc_(b, *p);
        }
}

/* Inside "...": \ escapes only $ ` " \ and the newline. */
static void dq_text(struct buf *b, const char *s, const char *e) {
        for (const char *p = s; p < e; p++) {
                if (*p == '\\' && p + 1 < e && strchr("$`\"\\\n", p[1])) {
                        p++;
                        if (*p != '\n')
                                putc_(b, *p);
                        continue;
                }
                putc_(b, *p);
        }
}

/* $'...': the escapes of ANSI-C quoting. */
static void ansi_c_text(struct buf *b, const char *s, const char *e) {
        static const char ESC[] = "a\ab\be\033E\033f\fn\nr\rt\tv\v\\\\''\"\"??";
        for (const char *p = s; p < e; p++) {
                if (*p != '\\' || p + 1 >= e) {
                        putc_(b, *p);
                        continue;
                }
                char ch = *++p;
                const char *k = NULL;
                for (size_t i = 0; ESC[i]; i += 2)
                        if (ESC[i] == ch)
                                k = &ESC[i + 1];
                if (k) {
                        putc_(b, *k);
                        continue;
                }
                unsigned long v = 0;
                int max = 0, base = 16, got = 0;
                if (ch >= '0' && ch <= '7')
                        base = 8, max = 3, p--;
                else if (ch == 'x')
                        max = 2;
                else if (ch == 'u')
                        max = 4;
                else if (ch == 'U')
                        max = 8;
                else if (ch == 'c' && p + 1 < e) {
                        putc_(b, (char)(*++p & 0x1F));
                        continue;
                } else {
                        putc_(b, '\\');
                        putc_(b, ch);
                        continue;
                }
                while (got < max && p + 1 < e) {
                        int h = check_hexval(p[1]);
                        if (h < 0 || h >= base)
                                break;
                        v = v * (unsigned long)base + (unsigned long)h;
                        p++, got++;
                }
                if (!got) {
                        putc_(b, '\\');
                        putc_(b, ch);
                } else if (ch == 'u' || ch == 'U')
                        put_utf8(b, v);
                else
                        putc_(b, (char)v);
        }
}

static bool is_expansion(const char *t) {
        return !strcmp(t, "simple_expansion") || !strcmp(t, "expansion") ||
               !strcmp(t, "command_substitution") ||
               !strcmp(t, "process_substitution") ||
               !strcmp(t, "arithmetic_expansion");
}

/* What a word is once the shell has removed the quoting. */
static void value_into(const struct sh *s, TSNode n, int mode, struct buf *b,
                       unsigned *flags, int depth) {
        if (ts_node_is_null(n) || depth > 8)
                return;
        const char *t = ts_node_type(n);
        const char *p = node_start(s->c, n), *e = p + node_len(n);
        if (is_expansion(t)) {
                *flags |= VF_EXPANSION;
                if (mode == V_CODE)
                        put(b, "${_}", 4);
                else
                        put(b, p, (size_t)(e - p));
        } else if (!strcmp(t, "word"))
                word_text(b, p, e, flags);
        else if (!strcmp(t, "raw_string") && e - p >= 2)
                put(b, p + 1, (size_t)(e - p - 2));
        else if (!strcmp(t, "ansi_c_string") && e - p >= 3)
                ansi_c_text(b, p + 2, e - 1);
        else if (!strcmp(t, "string") && e - p >= 2) {
                /* the text between the expansions, unescaped */
                const char *at = p + 1;
                _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
                TSNode x;
                while (check_kid(&k, &x)) {
                        const char *xs = node_start(s->c, x);
                        if (!strcmp(ts_node_type(x), "string_content"))
                                continue;
                        if (xs > at)
                                dq_text(b, at, xs);
                        value_into(s, x, mode, b, flags, depth + 1);
                        at = xs + node_len(x);
                }
                if (e - 1 > at)
                        dq_text(b, at, e - 1);
        } else if (!strcmp(t, "concatenation") || !strcmp(t, "command_name") ||
                   !strcmp(t, "translated_string")) {
                const char *at = p;
                _cleanup_kids_ struct check_kids k = check_kids_of(n, true);
                TSNode x;
                while (check_kid(&k, &x)) {
                        const char *xs = node_start(s->c, x);
                        if (xs > at)
                                put(b, at, (size_t)(xs - at));
                        if (ts_node_is_named(x))
                                value_into(s, x, mode, b, flags, depth + 1);
                        else if (strcmp(ts_node_type(x), "$"))
                                put(b, xs, node_len(x));
                        at = xs + node_len(x);
                }
        } else
                put(b, p, (size_t)(e - p));
}

/* The value into out; false when it does not fit. */
static bool value(const struct sh *s, TSNode n, int mode, char *out,
                  size_t size, unsigned *flags) {
        struct buf b = {out, 0, size, false};
        unsigned f = 0;
        out[0] = '\0';
        value_into(s, n, mode, &b, &f, 0);
        if (flags)
                *flags = f;
        return !b.full;
}

/* --- commands ------------------------------------------------------------- */

static bool in(const char *s, const char *const *set) {
        for (; *set; set++)
                if (!strcmp(s, *set))
                        return true;
        return false;
}

static const char *const SHELLS[] = {"sh",  "bash", "zsh",  "dash",
                                     "ksh", "ash",  "mksh", NULL};

/* Runs the code it is given (a file, stdin or its arguments). */
static bool runs_code(const char *name) {
        static const char *const X[] = {"eval", "source", ".", NULL};
        return in(name, SHELLS) || in(name, X);
}

static bool is_redirect(const char *t) {
        return !strcmp(t, "file_redirect") || !strcmp(t, "heredoc_redirect") ||
               !strcmp(t, "herestring_redirect");
}

/* The name and the arguments of a command node; false without a name. */
static bool command_argv(TSNode cmd, struct argv *a) {
        TSNode name = check_field(cmd, "name");
        a->v = NULL;
        a->n = 0;
        if (ts_node_is_null(name))
                return false;
        uint32_t k = ts_node_named_child_count(cmd);
        a->v = malloc((k + 1) * sizeof(*a->v));
        if (!a->v)
                return false;
        a->v[a->n++] = name;
        bool after = false;
        _cleanup_kids_ struct check_kids ks = check_kids_of(cmd, false);
        TSNode x;
        while (check_kid(&ks, &x) && a->n <= k) {
                if (ts_node_eq(x, name)) {
                        after = true;
                        continue;
                }
                const char *t = ts_node_type(x);
                if (after && !is_redirect(t) && strcmp(t, "comment"))
                        a->v[a->n++] = x;
        }
        return true;
}

/* "/usr/bin/curl" -> "curl"; "{curl,-s,x}" (brace expansion) -> "curl" */
static void command_base(char *nm) {
        if (nm[0] == '{' && strchr(nm, ','))
                memmove(nm, nm + 1, strlen(nm));
        char *comma = strchr(nm, ',');
        if (comma && comma != nm)
                *comma = '\0';
        char *slash = strrchr(nm, '/');
        if (slash && slash[1])
                memmove(nm, slash + 1, strlen(slash + 1) + 1);
}

/* The option words of a wrapper that take the next word as their value. */
struct wrapper {
        const char *name;
        const char *const *takes; /* options with a separate value */
        int skip;                 /* operands before the command */
        bool assignments;         /* NAME=value words before it (env) */
};

static const char *const NONE[] = {NULL};
static const char *const NICE[] = {"-n", "--adjustment", NULL};
static const char *const IONICE[] = {"-c", "-n", "-p", "-P", "-u", NULL};
static const char *const TIMEOUT[] = {"-s", "-k", "--signal", "--kill-after",
                                      NULL};
static const char *const STDBUF[] = {"-i", "-o", "-e", NULL};
static const char *const ENV[] = {
        "-u", "-C", "-S", "--unset", "--chdir", "--split-string", NULL};
static const char *const SUDO[] = {"-u", "-g",     "-C",      "-D",      "-h",
                                   "-p", "-r",     "-t",      "-U",      "-T",
                                   "-R", "--user", "--group", "--chdir", NULL};
static const char *const DOAS[] = {"-u", "-C", NULL};
static const char *const XARGS[] = {
        "-a",         "-d",          "-E",          "-I",         "-L",
        "-n",         "-P",          "-s",          "--arg-file", "--delimiter",
        "--max-args", "--max-procs", "--max-chars", NULL};
static const char *const EXEC[] = {"-a", NULL};
static const char *const WATCH[] = {"-n", "-d", "--interval", NULL};
static const char *const STRACE[] = {"-o", "-p", "-e", "-s", "-u", "-E",
                                     "-a", "-P", "-I", "-b", NULL};
static const char *const RUNUSER[] = {"-u",     "-g",      "-G",
                                      "--user", "--group", NULL};

static const struct wrapper WRAPPERS[] = {
        {"command", NONE, 0, false},    {"builtin", NONE, 0, false},
        {"exec", EXEC, 0, false},       {"nohup", NONE, 0, false},
        {"setsid", NONE, 0, false},     {"time", NONE, 0, false},
        {"nice", NICE, 0, false},       {"ionice", IONICE, 0, false},
        {"chrt", NONE, 1, false},       {"taskset", NONE, 1, false},
        {"stdbuf", STDBUF, 0, false},   {"timeout", TIMEOUT, 1, false},
        {"env", ENV, 0, true},          {"sudo", SUDO, 0, true},
        {"doas", DOAS, 0, false},       {"xargs", XARGS, 0, false},
        {"busybox", NONE, 0, false},    {"watch", WATCH, 0, false},
        {"strace", STRACE, 0, false},   {"ltrace", STRACE, 0, false},
        {"unbuffer", NONE, 0, false},   {"fakeroot", NONE, 0, false},
        {"runuser", RUNUSER, 0, false}, {"chroot", NONE, 1, false},
        {"nsenter", NONE, 0, false},    {"unshare", NONE, 0, false},
        {"flock", NONE, 1, false},      {"coproc", NONE, 0, false},
};

/* The index of the command a wrapper runs, or -1. */
static long wrapped(const struct sh *s, const char *base, const struct argv *a,
                    size_t i, size_t end) {
        const struct wrapper *w = NULL;
        char v[WORD_MAX];
        for (size_t k = 0; k < ARRAY_SIZE(WRAPPERS); k++)
                if (!strcmp(base, WRAPPERS[k].name))
                        w = &WRAPPERS[k];
        if (!w)
                return -1;
        int skip = w->skip;
        bool cpu_list = false;
        for (; i < end; i++) {
                if (!value(s, a->v[i], V_RAW, v, sizeof(v), NULL))
                        return (long)i;
                if (!strcmp(v, "--")) {
                        i++;
                        break;
                }
                if (v[0] == '-' && v[1]) {
                        /* command -v curl only asks where curl is */
                        if (!strcmp(base, "command") &&
                            (!strcmp(v, "-v") || !strcmp(v, "-V")))
                                return -1;
                        if (!strcmp(base, "taskset") &&
                            (!strcmp(v, "-c") || !strcmp(v, "--cpu-list")))
                                cpu_list = true;
                        if (in(v, w->takes) || (!strcmp(base, "taskset") &&
                                                cpu_list && !strcmp(v, "-c")))
                                i++;
                        continue;
                }
                if (w->assignments && strchr(v, '=') && v[0] != '=')
                        continue;
                break;
        }
        if (!strcmp(base, "taskset") && cpu_list)
                skip = 0;
        i += (size_t)skip;
        return i < end ? (long)i : -1;
}

/* Follow wrappers from v[i] to the command they run. */
static void innermost(const struct sh *s, const struct argv *a, size_t i,
                      size_t end, struct simple *out) {
        unsigned fl;
        for (int hop = 0; hop < MAX_WRAP; hop++) {
                out->i = i;
                out->end = end;
                out->dyn = true;
                out->name[0] = '\0';
                if (!value(s, a->v[i], V_RAW, out->name, sizeof(out->name),
                           &fl) ||
                    (fl && strcmp(out->name, "[") && strcmp(out->name, "[[")))
                        return;
                out->dyn = false;
                command_base(out->name);
                long w = wrapped(s, out->name, a, i + 1, end);
                if (w < 0)
                        return;
                i = (size_t)w;
        }
}

/* The command node of a pipeline stage (or of a redirected one). */
static TSNode stage_node(TSNode stage) {
        TSNode none = {0};
        for (int k = 0; k < 4; k++) {
                if (node_type_is(stage, "redirected_statement"))
                        stage = check_field(stage, "body");
                else if (node_type_is(stage, "negated_command"))
                        stage = ts_node_named_child(stage, 0);
                else
                        break;
        }
        return node_type_is(stage, "command") ? stage : none;
}

/* The simple command of a stage, followed through wrappers; a->v to be
 * freed when it returns true. */
static bool stage_argv(const struct sh *s, TSNode stage, struct argv *a,
                       struct simple *out) {
        TSNode cmd = stage_node(stage);
        if (ts_node_is_null(cmd) || !command_argv(cmd, a))
                return false;
        innermost(s, a, 0, a->n, out);
        if (!out->dyn)
                return true;
        free(a->v);
        return false;
}

static bool stage_command(const struct sh *s, TSNode stage,
                          struct simple *out) {
        struct argv a;
        if (!stage_argv(s, stage, &a, out))
                return false;
        free(a.v);
        return true;
}

static bool has_short(const char *v, char opt) {
        return v[0] == '-' && v[1] != '-' && strchr(v + 1, opt);
}

/* Turns encoded or compressed data back into text. */
static bool is_decoder(const struct sh *s, const struct argv *a,
                       const struct simple *c) {
        static const char *const ALWAYS[] = {
                "gunzip",   "zcat",       "bzcat",   "bunzip2", "xzcat",
                "unxz",     "unzstd",     "zstdcat", "lzcat",   "unlzma",
                "uudecode", "uncompress", "rev",     NULL};
        static const char *const DFLAG[] = {
                "base64", "base32", "basenc", "gzip",   "bzip2",   "xz",
                "zstd",   "lzma",   "lz4",    "brotli", "openssl", NULL};
        const char *n = c->name;
        char v[WORD_MAX];
        if (in(n, ALWAYS))
                return true;
        bool echo_e = false, escapes = false;
        for (size_t i = c->i + 1; i < c->end; i++) {
                if (!value(s, a->v[i], V_RAW, v, sizeof(v), NULL))
                        continue;
                if (in(n, DFLAG) &&
                    (has_short(v, 'd') || !strcmp(v, "--decode") ||
                     !strcmp(v, "--decompress") || !strcmp(v, "--uncompress") ||
                     (!strcmp(n, "base64") && !strcmp(v, "-D"))))
                        return true;
                if (!strcmp(n, "xxd") &&
                    (has_short(v, 'r') || !strcmp(v, "-revert")))
                        return true;
                if (!strcmp(n, "echo") && has_short(v, 'e'))
                        echo_e = true;
                /* printf '\x63\x75...' */
                for (const char *p = v; (p = strchr(p, '\\')); p++)
                        if (p[1] == 'x' || (p[1] >= '0' && p[1] <= '7'))
                                escapes = true;
        }
        return escapes && (!strcmp(n, "printf") || echo_e);
}

/* --- detectors ------------------------------------------------------------ */

static void walk(struct sh *s, TSNode root);

/* Parse text as bash and walk it, reporting at anchor. */
static void reparse(struct sh *s, TSNode anchor, const char *text, size_t len) {
        const struct check_rule *r;
        if (!len)
                return;
        if (s->level >= NEST_MAX || len > *s->budget) {
                /* code the walker will not look into: what it runs is
                 * unknown, as with a computed name */
                if ((r = check_match(s->c, CK_DYNAMIC_COMMAND, NULL)))
                        emit(s, anchor, r, "code nested too deep to follow");
                return;
        }
        *s->budget -= len;
        TSParser *ps = ts_parser_new();
        if (!ps) {
                s->top->err = -ENOMEM;
                return;
        }
        TSTree *t = NULL;
        if (ts_parser_set_language(ps, tree_sitter_bash())) {
                ts_parser_set_timeout_micros(ps, REPARSE_TIMEOUT_US);
                t = ts_parser_parse_string(ps, NULL, text, (uint32_t)len);
        }
        ts_parser_delete(ps);
        if (!t)
                return;
        struct check_ctx sub = *s->c;
        sub.src = text;
        sub.len = len;
        sub.err = 0;
        struct sh n = {.c = &sub,
                       .top = s->top,
                       .anchor = s->level ? s->anchor : anchor,
                       .level = s->level + 1,
                       .budget = s->budget};
        walk(&n, ts_tree_root_node(t));
        ts_tree_delete(t);
        if (sub.err < 0)
                s->top->err = sub.err;
}

/* The words v[i..end) joined with spaces, as code, and walked. */
static void reparse_words(struct sh *s, const struct argv *a, size_t i,
                          size_t end) {
        if (i >= end)
                return;
        size_t size = 16;
        for (size_t k = i; k < end; k++)
                size += 2 * node_len(a->v[k]) + 8;
        char *text = malloc(size);
        if (!text) {
                s->top->err = -ENOMEM;
                return;
        }
        struct buf b = {text, 0, size, false};
        text[0] = '\0';
        for (size_t k = i; k < end; k++) {
                unsigned fl = 0;
                if (k > i)
                        putc_(&b, ' ');
                value_into(s, a->v[k], V_CODE, &b, &fl, 0);
        }
        if (!b.full)
                reparse(s, a->v[i], text, b.n);
        free(text);
}

/* sh -c CODE, bash -lc CODE, su -c CODE: the index of CODE, or -1. */
static long code_arg(const struct sh *s, const struct argv *a,
                     const struct simple *c, bool anywhere) {
        char v[WORD_MAX];
        bool dash_c = false;
        for (size_t i = c->i + 1; i < c->end; i++) {
                if (dash_c)
                        return (long)i;
                if (!value(s, a->v[i], V_RAW, v, sizeof(v), NULL)) {
                        if (!anywhere)
                                return -1; /* a long operand: a file */
                        continue;
                }
                if (!strcmp(v, "--command")) {
                        dash_c = true;
                        continue;
                }
                if (!strcmp(v, "--") && !anywhere)
                        return -1;
                if (v[0] == '-' || v[0] == '+') {
                        if (v[1] != '-' && strchr(v + 1, 'c'))
                                dash_c = true;
                        else if (!strcmp(v, "-o") || !strcmp(v, "-O") ||
                                 !strcmp(v, "+o") || !strcmp(v, "+O"))
                                i++;
                        continue;
                }
                if (!anywhere)
                        return -1; /* a script file: its code is not here */
        }
        return -1;
}

static bool root_target(const char *raw, char *shown, size_t size) {
        static const char *const ROOTS[] = {"",      "~",     "$HOME", "/usr",
                                            "/etc",  "/home", "/var",  "/boot",
                                            "/bin",  "/sbin", "/lib",  "/lib64",
                                            "/root", "/opt",  "/srv",  NULL};
        char t[WORD_MAX];
        size_t o = 0;
        if (!strncmp(raw, "${HOME}", 7)) {
                memcpy(t, "$HOME", 5);
                o = 5;
                raw += 7;
        }
        /* collapse //, /./ */
        for (const char *p = raw; *p && o + 1 < sizeof(t); p++) {
                if (*p == '/' && o && t[o - 1] == '/')
                        continue;
                if (*p == '.' && o && t[o - 1] == '/' && (p[1] == '/' || !p[1]))
                        continue;
                t[o++] = *p;
        }
        t[o] = '\0';
        /* a trailing "/" or "/" "*" */
        for (;;) {
                size_t l = strlen(t);
                if (l >= 2 && !strcmp(t + l - 2, "/*"))
                        t[l - 2] = '\0';
                else if (l >= 1 && t[l - 1] == '/')
                        t[l - 1] = '\0';
                else
                        break;
        }
        if (!raw[0] && !o)
                return false;
        if (!in(t, ROOTS))
                return false;
        snprintf(shown, size, "%s", t[0] ? t : "/");
        return true;
}

/* rm -r (or -R, --recursive) of / or ~ or a system directory, or with
 * --no-preserve-root */
static void rm_root(struct sh *s, TSNode at, const struct argv *a,
                    const struct simple *c) {
        const struct check_rule *r = check_match(s->c, CK_RM_ROOT, NULL);
        char v[WORD_MAX], target[WORD_MAX] = "";
        bool recursive = false, npr = false, opts = true;
        if (!r)
                return;
        for (size_t i = c->i + 1; i < c->end; i++) {
                if (!value(s, a->v[i], V_RAW, v, sizeof(v), NULL))
                        continue;
                if (opts && !strcmp(v, "--")) {
                        opts = false;
                        continue;
                }
                if (opts && v[0] == '-' && v[1]) {
                        if (!strcmp(v, "--recursive") || has_short(v, 'r') ||
                            has_short(v, 'R'))
                                recursive = true;
                        if (!strcmp(v, "--no-preserve-root"))
                                npr = true;
                        continue;
                }
                if (!target[0])
                        root_target(v, target, sizeof(target));
        }
        if ((recursive && target[0]) || npr)
                emit(s, at, r, target[0] ? target : "/ (--no-preserve-root)");
}

/* No operand: sh, bash -s, bash -x (code from stdin). */
static bool only_options(const struct sh *s, const struct argv *a,
                         const struct simple *c) {
        char v[WORD_MAX];
        for (size_t i = c->i + 1; i < c->end; i++)
                if (!value(s, a->v[i], V_RAW, v, sizeof(v), NULL) ||
                    (v[0] != '-' && v[0] != '+'))
                        return false;
        return true;
}

/* The text of the heredoc of a redirected statement. */
static TSNode heredoc_body(TSNode stmt) {
        TSNode x, y, none = {0};
        _cleanup_kids_ struct check_kids k = check_kids_of(stmt, false);
        while (check_kid(&k, &x)) {
                if (!node_type_is(x, "heredoc_redirect"))
                        continue;
                _cleanup_kids_ struct check_kids kh = check_kids_of(x, false);
                while (check_kid(&kh, &y))
                        if (node_type_is(y, "heredoc_body"))
                                return y;
        }
        return none;
}

/* A shell reading its code from stdin: sh <<< 'code', sh <<'EOF' ... */
static void stdin_code(struct sh *s, TSNode cmd, TSNode parent) {
        TSNode x, w;
        _cleanup_kids_ struct check_kids k = check_kids_of(cmd, false);
        while (check_kid(&k, &x))
                if (node_type_is(x, "herestring_redirect")) {
                        _cleanup_kids_ struct check_kids kw = check_kids_of(x, false);
                        if (check_kid(&kw, &w)) {
                                struct argv h = {&w, 1};
                                reparse_words(s, &h, 0, 1);
                        }
                }
        if (node_type_is(parent, "redirected_statement")) {
                TSNode body = heredoc_body(parent);
                if (!ts_node_is_null(body))
                        reparse(s, body, node_start(s->c, body),
                                node_len(body));
        }
}

/* A command as it is met in the traversal: its name and the names of what
 * it runs through wrappers, each reported; rm, shells and eval looked
 * into. */
static void on_command(struct sh *s, TSNode cmd, TSNode parent) {
        struct argv a;
        const struct check_rule *r;
        if (!command_argv(cmd, &a))
                return;
        size_t i = 0, end = a.n;
        for (int hop = 0; hop < MAX_WRAP; hop++) {
                char nm[WORD_MAX];
                unsigned fl = 0;
                TSNode at = a.v[i];
                bool ok = value(s, at, V_RAW, nm, sizeof(nm), &fl);
                if (!ok || (fl && strcmp(nm, "[") && strcmp(nm, "[["))) {
                        /* the name as written (nested: the outer word) */
                        char raw[WORD_MAX];
                        bool got = s->level ? node_copy(s->top, s->anchor, raw,
                                                        sizeof(raw))
                                            : node_copy(s->c, at, raw,
                                                        sizeof(raw));
                        if (!got)
                                snprintf(raw, sizeof(raw), "...");
                        if ((r = check_match(s->c, CK_DYNAMIC_COMMAND, NULL)))
                                emit(s, at, r, raw);
                        break;
                }
                command_base(nm);
                if ((r = check_match(s->c, CK_COMMAND, nm)))
                        emit(s, at, r, nm);
                struct simple c = {.i = i, .end = end};
                snprintf(c.name, sizeof(c.name), "%s", nm);
                if (!strcmp(nm, "rm"))
                        rm_root(s, cmd, &a, &c);
                long code = -1;
                if (in(nm, SHELLS))
                        code = code_arg(s, &a, &c, false);
                else if (!strcmp(nm, "su") || !strcmp(nm, "runuser") ||
                         !strcmp(nm, "script"))
                        code = code_arg(s, &a, &c, true);
                if (code >= 0)
                        reparse_words(s, &a, (size_t)code, (size_t)code + 1);
                if (!strcmp(nm, "eval"))
                        reparse_words(s, &a, i + 1, end);
                if (in(nm, SHELLS) && code < 0 && only_options(s, &a, &c))
                        stdin_code(s, cmd, parent);
                /* find ... -exec cmd ... \; (each of them) */
                if (!strcmp(nm, "find")) {
                        for (size_t k = i + 1; k + 1 < end; k++) {
                                char v[WORD_MAX];
                                if (!value(s, a.v[k], V_RAW, v, sizeof(v),
                                           NULL) ||
                                    (strcmp(v, "-exec") &&
                                     strcmp(v, "-execdir") &&
                                     strcmp(v, "-ok") && strcmp(v, "-okdir")))
                                        continue;
                                size_t e = k + 1;
                                while (e < end &&
                                       !(value(s, a.v[e], V_RAW, v, sizeof(v),
                                               NULL) &&
                                         (!strcmp(v, ";") || !strcmp(v, "+"))))
                                        e++;
                                struct argv seg = {a.v + k + 1, e - k - 1};
                                struct simple w;
                                innermost(s, &seg, 0, seg.n, &w);
                                if (!w.dyn &&
                                    (r = check_match(s->c, CK_COMMAND, w.name)))
                                        emit(s, seg.v[w.i], r, w.name);
                                if (!w.dyn && !strcmp(w.name, "rm")) {
                                        rm_root(s, cmd, &seg, &w);
                                }
                                k = e;
                        }
                        break;
                }
                long w = wrapped(s, nm, &a, i + 1, end);
                if (w < 0)
                        break;
                i = (size_t)w;
        }
        free(a.v);
}

static void dev_tcp(struct sh *s, TSNode n, bool raw) {
        const struct check_rule *r = check_match(s->c, CK_DEV_TCP, NULL);
        char v[1024], t[1024];
        if (!r)
                return;
        if (raw) {
                if (!node_copy(s->c, n, v, sizeof(v))) {
                        /* a long heredoc: look at it all */
                        const char *p = node_start(s->c, n);
                        size_t l = node_len(n);
                        if (!memmem(p, l, "/dev/tcp/", 9) &&
                            !memmem(p, l, "/dev/udp/", 9))
                                return;
                        emit(s, n, r,
                             memmem(p, l, "/dev/tcp/", 9) ? "/dev/tcp"
                                                          : "/dev/udp");
                        return;
                }
        } else if (!value(s, n, V_CODE, v, sizeof(v), NULL))
                return;
        /* /dev//tcp, /dev/./tcp */
        size_t o = 0;
        for (const char *p = v; *p; p++) {
                if (*p == '/' && o && t[o - 1] == '/')
                        continue;
                if (*p == '.' && o && t[o - 1] == '/' && p[1] == '/') {
                        p++;
                        continue;
                }
                t[o++] = *p;
        }
        t[o] = '\0';
        const char *hit = strstr(t, "/dev/tcp/");
        if (!hit)
                hit = strstr(t, "/dev/udp/");
        if (!hit)
                hit = strstr(t, "/dev/${_}/"); /* /dev/$proto/host/port */
        if (!hit)
                return;
        char shown[128];
        size_t l = strcspn(hit, " \t\n;|&<>\"'");
        snprintf(shown, sizeof(shown), "%.*s", (int)(l < 100 ? l : 100), hit);
        emit(s, n, r, shown);
}

/* --- traversal ------------------------------------------------------------ */

/* echo 'curl x' | sh, printf ... | bash, cat <<EOF | sh: the code the
 * stage before writes, walked as code */
static void fed_code(struct sh *s, const struct frame *pipe) {
        struct argv a;
        struct simple c;
        char v[WORD_MAX];
        if (ts_node_is_null(pipe->prev) || !stage_argv(s, pipe->prev, &a, &c))
                return;
        size_t i = c.i + 1;
        if (!strcmp(c.name, "echo"))
                while (i < c.end &&
                       value(s, a.v[i], V_RAW, v, sizeof(v), NULL) &&
                       v[0] == '-' && v[1] &&
                       strspn(v + 1, "neE") == strlen(v + 1))
                        i++;
        if (!strcmp(c.name, "echo") || !strcmp(c.name, "printf"))
                reparse_words(s, &a, i, c.end);
        else if (!strcmp(c.name, "cat") && !ts_node_is_null(pipe->heredoc) &&
                 only_options(s, &a, &c))
                reparse(s, pipe->heredoc, node_start(s->c, pipe->heredoc),
                        node_len(pipe->heredoc));
        free(a.v);
}

static bool tainted(const struct sh *s, const char *name) {
        for (size_t i = 0; i < s->nt; i++)
                if (!strcmp(s->tainted[i], name))
                        return true;
        return false;
}

static void set_taint(struct sh *s, const char *name, bool on) {
        for (size_t i = 0; i < s->nt; i++)
                if (!strcmp(s->tainted[i], name)) {
                        if (!on) {
                                free(s->tainted[i]);
                                s->tainted[i] = s->tainted[--s->nt];
                        }
                        return;
                }
        if (!on || s->nt == MAX_TAINTED)
                return;
        if (!s->tainted &&
            !(s->tainted = calloc(MAX_TAINTED, sizeof(char *)))) {
                s->top->err = -ENOMEM;
                return;
        }
        if (!(s->tainted[s->nt] = strdup(name)))
                s->top->err = -ENOMEM;
        else
                s->nt++;
}

/* $x, ${x...}: the variable's name */
static bool expansion_var(const struct sh *s, TSNode n, char *out,
                          size_t size) {
        _cleanup_kids_ struct check_kids k = check_kids_of(n, false);
        TSNode x;
        while (check_kid(&k, &x)) {
                if (node_type_is(x, "variable_name"))
                        return node_copy(s->c, x, out, size);
        }
        return false;
}

static bool wordish(const char *t) {
        return !strcmp(t, "word") || !strcmp(t, "string") ||
               !strcmp(t, "raw_string") || !strcmp(t, "concatenation") ||
               !strcmp(t, "ansi_c_string") || !strcmp(t, "translated_string");
}

static void decode_exec(struct sh *s, TSNode at, const char *shell) {
        const struct check_rule *r = check_match(s->c, CK_DECODE_EXEC, NULL);
        if (r)
                emit(s, at, r, shell);
}

static struct frame *parent_frame(struct sh *s) {
        return s->nf >= 2 ? &s->f[s->nf - 2] : NULL;
}

static void enter(struct sh *s, TSNode n) {
        if (!check_grow(s->top, &s->f, s->nf, &s->capf, sizeof(*s->f)))
                return;
        s->f[s->nf++] = (struct frame){.n = n, .at = n};
        struct frame *me = &s->f[s->nf - 1], *up = parent_frame(s);
        const char *t = ts_node_type(n);
        const char *pt = up ? ts_node_type(up->n) : "";
        char nm[WORD_MAX];
        if (!strcmp(t, "command"))
                on_command(s, n, up ? up->n : (TSNode){0});
        else if (!strcmp(t, "simple_expansion") || !strcmp(t, "expansion")) {
                if (expansion_var(s, n, nm, sizeof(nm)) && tainted(s, nm))
                        me->dec = true;
        } else if (!strcmp(t, "heredoc_body"))
                dev_tcp(s, n, true);
        else if (!strcmp(t, "pipeline") && !strcmp(pt, "heredoc_redirect") &&
                 s->nf >= 3) {
                /* cmd <<EOF | sh: the command is the first stage */
                TSNode stmt = s->f[s->nf - 3].n;
                me->seen_dec = s->f[s->nf - 3].dec;
                me->prev = check_field(stmt, "body");
                me->heredoc = heredoc_body(stmt);
                me->at = stmt;
        }
        if (wordish(t) && strcmp(pt, "concatenation") && strcmp(pt, "string") &&
            strcmp(pt, "translated_string"))
                dev_tcp(s, n, false);
}

static void leave(struct sh *s) {
        struct frame *me = &s->f[s->nf - 1], *up = parent_frame(s);
        TSNode n = me->n;
        const char *t = ts_node_type(n);
        char nm[WORD_MAX];
        if (!strcmp(t, "command")) {
                struct argv a;
                struct simple c;
                if (command_argv(n, &a)) {
                        innermost(s, &a, 0, a.n, &c);
                        /* eval "$(... | base64 -d)", sh <(base64 -d f) */
                        if (!c.dyn && me->dec && runs_code(c.name))
                                decode_exec(s, n, c.name);
                        if (!c.dyn && is_decoder(s, &a, &c))
                                me->dec = true;
                        free(a.v);
                }
        } else if (!strcmp(t, "redirected_statement")) {
                struct simple c;
                /* sh < <(base64 -d f) */
                if (me->dec_redir && stage_command(s, n, &c) &&
                    runs_code(c.name))
                        decode_exec(s, n, c.name);
        } else if (!strcmp(t, "variable_assignment")) {
                if (node_copy(s->c, check_field(n, "name"), nm, sizeof(nm)))
                        set_taint(s, nm, me->dec);
        }
        if (up) {
                up->dec |= me->dec;
                if (is_redirect(t))
                        up->dec_redir |= me->dec;
                if (node_type_is(up->n, "pipeline") && ts_node_is_named(n) &&
                    strcmp(t, "comment")) {
                        struct simple c;
                        struct argv a;
                        if (stage_argv(s, n, &a, &c)) {
                                if (up->seen_dec && runs_code(c.name))
                                        decode_exec(s, up->at, c.name);
                                if (in(c.name, SHELLS) &&
                                    only_options(s, &a, &c))
                                        fed_code(s, up);
                                free(a.v);
                        }
                        if (me->dec)
                                up->seen_dec = true;
                        up->prev = n;
                }
        }
        s->nf--;
}

static void on_enter(void *ctx, TSNode n) {
        enter(ctx, n);
}

static void on_leave(void *ctx, TSNode n) {
        (void)n;
        leave(ctx);
}

static void walk(struct sh *s, TSNode root) {
        check_walk(root, &s->top->err, on_enter, on_leave, s);
        for (size_t i = 0; i < s->nt; i++)
                free(s->tainted[i]);
        free(s->tainted);
        free(s->f);
}

void check_bash(struct check_ctx *c, TSNode root) {
        size_t budget = REPARSE_BUDGET;
        struct sh s = {.c = c, .top = c, .budget = &budget};
        walk(&s, root);
}
