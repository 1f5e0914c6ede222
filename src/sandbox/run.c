/* SPDX-License-Identifier: MIT */
/*
 * One execution: a spec (language, code, inputs, limits) becomes one or two
 * sandboxes (compile, then run, each fresh) and a result with the files
 * the caller asked to collect.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "airlock.h"
#include "error.h"
#include "macro.h"
#include "profile.h"
#include "egress.h"
#include "sandbox.h"
#include "spec.h"
#include "util.h"

/* Caps on what one spec may carry (the HTTP and MCP doors reuse them). */
#define AL_MAX_CODE (16u << 20)         /* source code bytes */
#define AL_MAX_STDIN (64u << 20)        /* stdin bytes */
#define AL_MAX_INPUT_TOTAL (256u << 20) /* all input files together */
#define AL_MAX_COLLECT_GLOBS 64

/* Caps on collected output files; what is skipped is named in files_note. */
#define AL_COLLECT_MAX_FILES 64
#define AL_COLLECT_MAX_FILE (16u << 20)
#define AL_COLLECT_MAX_TOTAL (64u << 20)
#define AL_COLLECT_MAX_DEPTH 16
#define AL_COLLECT_MAX_ENTRIES 10000 /* directory entries looked at */
/* The collect step runs in the supervisor after the run's own limits are
 * over: a wall clock of its own, so no pattern or tree holds the host. */
#define AL_COLLECT_MAX_MS 10000
/* How often (in entries) the walk looks at the cancel fd. */
#define AL_COLLECT_CANCEL_EVERY 16

/* Host paths no sandbox may see (al_protect_path), resolved. */
#define AL_MAX_PROTECTED 8
static char *protected_paths[AL_MAX_PROTECTED];
static size_t n_protected;

/* realpath() of a path that may not exist yet: its nearest existing
 * ancestor resolved, the rest appended. */
static char *resolve_missing(const char *path) {
        char *real = realpath(path, NULL);
        if (real || errno != ENOENT)
                return real;
        const char *slash = strrchr(path, '/');
        if (!slash || slash == path || !slash[1])
                return NULL;
        _cleanup_free_ char *parent = strndup(path, (size_t)(slash - path));
        _cleanup_free_ char *rp = parent ? resolve_missing(parent) : NULL;
        if (!rp)
                return NULL;
        char *out = NULL;
        if (asprintf(&out, "%s%s", strcmp(rp, "/") ? rp : "", slash) < 0)
                return NULL;
        return out;
}

int al_protect_path(const char *path, al_error *err) {
        if (!path || path[0] != '/')
                return al_error_set(err, EINVAL,
                                    "a protected path must be absolute");
        char *real = resolve_missing(path);
        if (!real)
                return al_error_errno(err, errno, "cannot resolve %s", path);
        for (size_t i = 0; i < n_protected; i++)
                if (!strcmp(protected_paths[i], real)) {
                        free(real);
                        return 0;
                }
        if (n_protected >= AL_MAX_PROTECTED) {
                free(real);
                return al_error_set(err, ENOSPC, "at most %d protected paths",
                                    AL_MAX_PROTECTED);
        }
        protected_paths[n_protected++] = real;
        return 0;
}

/* Is a equal to b, or one inside the other? */
static bool path_overlaps(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), l = la < lb ? la : lb;
        if (strncmp(a, b, l))
                return false;
        if (la == lb)
                return true;
        const char *longer = la > lb ? a : b;
        /* "/" contains everything; otherwise the next char must be '/' */
        return l == 1 || longer[l] == '/';
}

/* The first profile path that would expose a protected path, or NULL. */
static const char *exposes_protected(const al_profile *p, const char **which) {
        for (char *const *rp = p->ro_paths; rp && *rp; rp++) {
                _cleanup_free_ char *real = realpath(*rp, NULL);
                for (size_t i = 0; i < n_protected; i++)
                        if (path_overlaps(*rp, protected_paths[i]) ||
                            (real && path_overlaps(real, protected_paths[i]))) {
                                *which = protected_paths[i];
                                return *rp;
                        }
        }
        return NULL;
}

al_spec *al_spec_new(void) {
        al_spec *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        al_limits_init(&s->limits);
        s->cancel_fd = -1;
        return s;
}

al_spec *al_spec_free(al_spec *s) {
        if (!s)
                return NULL;
        free(s->code);
        free(s->stdin_data);
        for (size_t i = 0; i < s->n_args; i++)
                free(s->args[i]);
        free(s->args);
        for (size_t i = 0; i < s->n_env; i++)
                free(s->env[i]);
        free(s->env);
        for (size_t i = 0; i < s->n_files; i++) {
                free(s->files[i].name);
                free(s->files[i].data);
        }
        free(s->files);
        for (size_t i = 0; i < s->n_collect; i++)
                free(s->collect[i]);
        free(s->collect);
        free(s->net);
        free(s);
        return NULL;
}

int al_spec_set_language(al_spec *s, const char *name, al_error *err) {
        const al_profile *p = al_profile_find(name);
        if (!p)
                return al_error_set(err, ENOENT,
                                    "unknown language '%s' (see "
                                    "--list-languages)",
                                    name ? name : "");
        s->lang = p;
        return 0;
}

const char *al_spec_language(const al_spec *s) {
        return s && s->lang ? s->lang->name : NULL;
}

static int dup_bytes(const void *src, size_t len, unsigned char **ret) {
        unsigned char *p = malloc(len ? len : 1);
        if (!p)
                return -ENOMEM;
        if (len)
                memcpy(p, src, len);
        free(*ret);
        *ret = p;
        return 0;
}

int al_spec_set_code(al_spec *s, const void *code, size_t len, al_error *err) {
        if (len > AL_MAX_CODE)
                return al_error_set(err, EFBIG,
                                    "code is %zu bytes; the limit is %u", len,
                                    AL_MAX_CODE);
        if (memchr(code, '\0', len))
                return al_error_set(err, EINVAL, "code contains a NUL byte");
        int r = dup_bytes(code, len, &s->code);
        if (r < 0)
                return al_error_set(err, -r, "out of memory");
        s->code_len = len;
        s->has_code = true;
        return 0;
}

int al_spec_set_stdin(al_spec *s, const void *data, size_t len, al_error *err) {
        if (len > AL_MAX_STDIN)
                return al_error_set(err, EFBIG,
                                    "stdin is %zu bytes; the limit is %u", len,
                                    AL_MAX_STDIN);
        int r = dup_bytes(data, len, &s->stdin_data);
        if (r < 0)
                return al_error_set(err, -r, "out of memory");
        s->stdin_len = len;
        return 0;
}

static int strv_push(char ***v, size_t *n, size_t max, const char *what,
                     char *owned, al_error *err) {
        if (!owned)
                return al_error_set(err, ENOMEM, "out of memory");
        if (*n >= max) {
                free(owned);
                return al_error_set(err, E2BIG, "more than %zu %s", max, what);
        }
        char **nv = realloc(*v, (*n + 1) * sizeof(char *));
        if (!nv) {
                free(owned);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        nv[(*n)++] = owned;
        *v = nv;
        return 0;
}

int al_spec_add_arg(al_spec *s, const char *arg, al_error *err) {
        return strv_push(&s->args, &s->n_args, AL_MAX_ARGS - 16, "arguments",
                         strdup(arg), err);
}

int al_spec_add_env(al_spec *s, const char *name, const char *value,
                    al_error *err) {
        if (!al_env_name_ok(name))
                return al_error_set(err, EINVAL,
                                    "bad environment variable name '%s'", name);
        size_t len = strlen(name) + strlen(value) + 2;
        if (len > 64 * 1024)
                return al_error_set(err, E2BIG,
                                    "environment variable %s is too long",
                                    name);
        char *kv = malloc(len);
        if (kv)
                snprintf(kv, len, "%s=%s", name, value);
        return strv_push(&s->env, &s->n_env, AL_MAX_ENV,
                         "environment "
                         "variables",
                         kv, err);
}

int al_spec_add_file(al_spec *s, const char *name, const void *data, size_t len,
                     bool executable, al_error *err) {
        if (!al_rel_path_ok(name))
                return al_error_set(err, EINVAL,
                                    "bad input file name '%s': use a "
                                    "relative path without '..', '.' or "
                                    "empty parts",
                                    name);
        if (s->n_files >= AL_MAX_INPUT_FILES)
                return al_error_set(err, E2BIG, "more than %d input files",
                                    AL_MAX_INPUT_FILES);
        if (len > AL_MAX_INPUT_TOTAL - s->input_total)
                return al_error_set(err, EFBIG,
                                    "input files exceed %u bytes in total",
                                    AL_MAX_INPUT_TOTAL);
        for (size_t i = 0; i < s->n_files; i++)
                if (strcmp(s->files[i].name, name) == 0)
                        return al_error_set(err, EEXIST,
                                            "input file '%s' given twice",
                                            name);
        struct in_file *nf =
                realloc(s->files, (s->n_files + 1) * sizeof(*s->files));
        if (!nf)
                return al_error_set(err, ENOMEM, "out of memory");
        s->files = nf;
        struct in_file *f = &s->files[s->n_files];
        memset(f, 0, sizeof(*f));
        f->name = strdup(name);
        if (!f->name || dup_bytes(data, len, &f->data) < 0) {
                free(f->name);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        f->len = len;
        f->exec = executable;
        s->n_files++;
        s->input_total += len;
        return 0;
}

int al_spec_add_collect(al_spec *s, const char *glob, al_error *err) {
        /* a glob is a relative pattern: the same rules as a path, with
         * wildcards allowed in components */
        if (!glob || !*glob || glob[0] == '/' || strstr(glob, ".."))
                return al_error_set(err, EINVAL,
                                    "bad collect pattern '%.64s': use a "
                                    "relative glob without '..'",
                                    glob ? glob : "");
        int r = al_glob_check(glob);
        if (r == -ENAMETOOLONG)
                return al_error_set(err, EINVAL,
                                    "collect pattern '%.64s...' is longer "
                                    "than %d bytes",
                                    glob, AL_GLOB_MAX_LEN);
        if (r < 0)
                return al_error_set(err, EINVAL,
                                    "collect pattern '%.64s' has more than "
                                    "%d '**'",
                                    glob, AL_GLOB_MAX_DSTAR);
        return strv_push(&s->collect, &s->n_collect, AL_MAX_COLLECT_GLOBS,
                         "collect patterns", strdup(glob), err);
}

void al_spec_set_collect_max(al_spec *s, uint64_t bytes) {
        s->collect_max = bytes < AL_COLLECT_MAX_TOTAL ? bytes : 0;
}

al_limits *al_spec_limits(al_spec *s) {
        return &s->limits;
}

void al_spec_set_gate(al_spec *s, int (*fn)(void *ctx, al_error *err),
                      void *ctx) {
        s->gate = fn;
        s->gate_ctx = ctx;
}

void al_spec_set_timing(al_spec *s, bool on) {
        s->timing = on;
}

void al_spec_set_cancel_fd(al_spec *s, int fd) {
        s->cancel_fd = fd;
}

void al_spec_set_output_fn(al_spec *s,
                           void (*fn)(void *ctx, int stream, const void *buf,
                                      size_t n),
                           void *ctx) {
        s->output_fn = fn;
        s->output_ctx = ctx;
}

int al_spec_set_network(al_spec *s, const char *const *allow, size_t n,
                        al_error *err) {
        if (n == 0) {
                free(s->net);
                s->net = NULL;
                return 0;
        }
        if (n > AL_NET_MAX_RULES)
                return al_error_set(err, EINVAL,
                                    "at most %d network allowlist entries",
                                    AL_NET_MAX_RULES);
        al_net_policy *p = calloc(1, sizeof(*p));
        if (!p)
                return al_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                int r = al_net_rule_parse(allow[i], &p->rules[i], err);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        p->n = n; /* the caps: the run's limits, at run time */
        free(s->net);
        s->net = p;
        return 0;
}

const struct al_net_policy *al_spec_network(const al_spec *s) {
        return s->net;
}

void al_spec_network_cap_bytes(al_spec *s, uint64_t max) {
        if (!s->net || !max)
                return;
        /* 0: not capped yet (the run's limits decide at run time) */
        if (!s->net->max_bytes_out || s->net->max_bytes_out > max)
                s->net->max_bytes_out = max;
        if (!s->net->max_bytes_in || s->net->max_bytes_in > max)
                s->net->max_bytes_in = max;
}

void al_spec_set_live(al_spec *s, const struct al_sbx_live *live) {
        s->live = live;
}

/* ------------------------------------------------------------- results */

static void result_clear_files(al_result *r) {
        for (size_t i = 0; i < r->n_files; i++) {
                free(r->files[i].name);
                free(r->files[i].mime);
                free(r->files[i].data);
        }
        free(r->files);
        r->files = NULL;
        r->n_files = 0;
}

void al_result_teardown(al_result *r) {
        if (r)
                r->leftover = al_sbx_leftover_free(r->leftover);
}

al_result *al_result_free(al_result *r) {
        if (!r)
                return NULL;
        al_result_teardown(r);
        free(r->stdout_buf);
        free(r->stderr_buf);
        result_clear_files(r);
        al_result_free(r->compile);
        free(r->findings_json);
        free(r->network_json);
        free(r);
        return NULL;
}

/* Append to files_note. Names come from the sandbox: they are made valid
 * UTF-8 first, and a cut at the end of the buffer never splits a
 * character, so the note always survives JSON encoding. */
static void note(al_result *r, const char *fmt, const char *name) {
        size_t n = strlen(r->files_note), clean_len = 0;
        if (n + 4 >= sizeof(r->files_note))
                return;
        char *clean = al_utf8_sanitize((const unsigned char *)name,
                                       strlen(name), &clean_len);
        snprintf(r->files_note + n, sizeof(r->files_note) - n, "%s",
                 n ? "; " : "");
        n = strlen(r->files_note);
        snprintf(r->files_note + n, sizeof(r->files_note) - n, fmt,
                 clean ? clean : "?");
        free(clean);
        n = strlen(r->files_note);
        while (n > 0 && !al_utf8_valid((const unsigned char *)r->files_note, n))
                r->files_note[--n] = '\0';
}

struct collect_ctx {
        char *const *globs;
        size_t n_globs;
        al_result *r;
        size_t max_files;
        uint64_t max_file, max_total, total;
        unsigned entries;
        int cancel_fd;
        double deadline; /* al_now_ms() */
        uint64_t max_ms;
        bool stopped;
};

/* Stop the walk (with a note) on a cancel, the deadline or the entry
 * cap; once stopped it stays stopped. */
static bool collect_stop(struct collect_ctx *cc) {
        if (cc->stopped)
                return true;
        if (++cc->entries > AL_COLLECT_MAX_ENTRIES) {
                note(cc->r, "stopped looking for files after %s",
                     "10000 entries");
                return cc->stopped = true;
        }
        if (cc->cancel_fd >= 0 &&
            (cc->entries == 1 || cc->entries % AL_COLLECT_CANCEL_EVERY == 0)) {
                struct pollfd pf = {.fd = cc->cancel_fd, .events = POLLIN};
                if (poll(&pf, 1, 0) > 0) {
                        note(cc->r, "stopped looking for files: %s",
                             "the run was cancelled");
                        return cc->stopped = true;
                }
        }
        if (al_now_ms() > cc->deadline) {
                char why[64];
                snprintf(why, sizeof(why), "%llu ms (the collect time cap)",
                         (unsigned long long)cc->max_ms);
                note(cc->r, "stopped looking for files after %s", why);
                return cc->stopped = true;
        }
        return false;
}

static bool glob_any(const struct collect_ctx *cc, const char *rel) {
        for (size_t i = 0; i < cc->n_globs; i++)
                if (al_glob_match(cc->globs[i], rel))
                        return true;
        return false;
}

/* Read a regular file without following links: the code could have
 * planted a symlink to a host file, and airlock runs with more rights. */
static int read_entry(int dirfd, const char *name, const char *rel,
                      struct collect_ctx *cc) {
        al_result *r = cc->r;
        _cleanup_close_ int fd = openat(dirfd, name,
                                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                                O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                note(r, "skipped %s: not a regular file", rel);
                return 0;
        }
        if (r->n_files >= cc->max_files) {
                note(r, "skipped %s: file count cap reached", rel);
                return 0;
        }
        if ((uint64_t)st.st_size > cc->max_file ||
            cc->total + (uint64_t)st.st_size > cc->max_total) {
                note(r, "skipped %s: over the size cap", rel);
                return 0;
        }
        size_t len = (size_t)st.st_size;
        _cleanup_free_ unsigned char *data = malloc(len ? len : 1);
        if (!data)
                return -ENOMEM;
        size_t off = 0;
        while (off < len) {
                ssize_t n = read(fd, data + off, len - off);
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        al_file *nf = realloc(r->files, (r->n_files + 1) * sizeof(al_file));
        if (!nf)
                return -ENOMEM;
        r->files = nf;
        al_file *f = &r->files[r->n_files];
        f->name = strdup(rel);
        f->mime = strdup(al_guess_mime(rel, data, off));
        if (!f->name || !f->mime) {
                free(f->name);
                free(f->mime);
                return -ENOMEM;
        }
        f->size = off;
        f->data = steal_pointer(&data);
        r->n_files++;
        cc->total += off;
        return 0;
}

static int walk(int dirfd, const char *prefix, int depth,
                struct collect_ctx *cc) {
        int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (collect_stop(cc))
                        break;
                char rel[PATH_MAX];
                snprintf(rel, sizeof(rel), "%s%s", prefix, de->d_name);
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        if (depth >= AL_COLLECT_MAX_DEPTH)
                                continue;
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                 O_CLOEXEC);
                        if (sub < 0)
                                continue;
                        char sp[PATH_MAX];
                        snprintf(sp, sizeof(sp), "%s/", rel);
                        r = walk(sub, sp, depth + 1, cc);
                        close(sub);
                } else if (glob_any(cc, rel)) {
                        if (!al_utf8_valid((const unsigned char *)rel,
                                           strlen(rel)))
                                note(cc->r,
                                     "skipped %s: name is not valid UTF-8",
                                     rel);
                        else if (S_ISLNK(st.st_mode))
                                note(cc->r, "skipped %s: symbolic link", rel);
                        else
                                r = read_entry(dirfd, de->d_name, rel, cc);
                }
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int al_collect_files(int ws_fd, char *const *globs, size_t n,
                     const struct al_collect_caps *caps, al_result *r) {
        if (ws_fd < 0 || n == 0)
                return 0;
        struct collect_ctx cc = {.globs = globs,
                                 .n_globs = n,
                                 .r = r,
                                 .max_files = caps->max_files,
                                 .max_file = caps->max_file,
                                 .max_total = caps->max_total,
                                 .cancel_fd = caps->cancel_fd,
                                 .max_ms = caps->max_ms,
                                 .deadline =
                                         al_now_ms() + (double)caps->max_ms};
        return walk(ws_fd, "", 0, &cc);
}

static int collect(int ws_fd, char *const *globs, size_t n, size_t max_files,
                   uint64_t max_file, uint64_t max_total, int cancel_fd,
                   al_result *r) {
        struct al_collect_caps caps = {.max_files = max_files,
                                       .max_file = max_file,
                                       .max_total = max_total,
                                       .max_ms = AL_COLLECT_MAX_MS,
                                       .cancel_fd = cancel_fd};
        return al_collect_files(ws_fd, globs, n, &caps, r);
}

/* ----------------------------------------------------------- the stages */

/* Expand a profile argv template: {file} -> the source name, {args} ->
 * the caller's arguments spread. */
static char **expand_argv(char *const *tmpl, const char *file,
                          char *const *args, size_t n_args) {
        size_t n = 0;
        for (char *const *t = tmpl; *t; t++)
                n += strcmp(*t, "{args}") == 0 ? n_args : 1;
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return NULL;
        size_t i = 0;
        for (char *const *t = tmpl; *t; t++) {
                if (strcmp(*t, "{args}") == 0)
                        for (size_t k = 0; k < n_args; k++)
                                v[i++] = args[k];
                else
                        v[i++] = strcmp(*t, "{file}") == 0 ? (char *)file : *t;
        }
        return v;
}

static char **build_env(const al_spec *s) {
        static char *const base[] = {
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=" AL_WORKSPACE,
                "LANG=C.UTF-8",
                "TMPDIR=/tmp",
                "USER=sandbox",
                "LOGNAME=sandbox",
                "SHELL=/bin/sh",
                NULL,
        };
        /* a run with an allowlist: its proxy, for the clients that read
         * these (pip, urllib, requests, httpx, curl); the caller's env
         * may not point them elsewhere (it comes before them) */
#define PROXY "http://127.0.0.1:" AL_EGRESS_PORT_STR
        static char *const proxy[] = {
                "HTTP_PROXY=" PROXY,
                "HTTPS_PROXY=" PROXY,
                "ALL_PROXY=" PROXY,
                "http_proxy=" PROXY,
                "https_proxy=" PROXY,
                "all_proxy=" PROXY,
                "NO_PROXY=",
                "no_proxy=",
                "NODE_OPTIONS=--require " AL_EGRESS_NODE_PRELOAD,
        };
#undef PROXY
        size_t nb = ARRAY_SIZE(base) - 1, np = 0;
        size_t nx = s->net ? ARRAY_SIZE(proxy) : 0;
        while (s->lang->env[np])
                np++;
        char **v = calloc(nb + np + s->n_env + nx + 1, sizeof(char *));
        if (!v)
                return NULL;
        size_t n = 0;
        char *const *srcs[] = {base, s->lang->env, s->env, proxy};
        size_t lens[] = {nb, np, s->n_env, nx};
        for (size_t k = 0; k < 4; k++)
                for (size_t i = 0; i < lens[k]; i++) {
                        const char *kv = srcs[k][i];
                        size_t nl = (size_t)(strchr(kv, '=') - kv);
                        size_t j;
                        /* a later source overrides an earlier one */
                        for (j = 0; j < n; j++)
                                if (!strncmp(v[j], kv, nl + 1))
                                        break;
                        v[j] = (char *)kv;
                        if (j == n)
                                n++;
                }
        return v;
}

/* One sandbox of the run; the spec's gate goes to the first one only. */
static int stage(const al_spec *s, bool *gated, char *const *argv,
                 char *const *envp, const al_sbx_file *files, size_t n_files,
                 const al_limits *limits, const unsigned char *in,
                 size_t in_len, al_result *r, int *ret_ws,
                 struct al_sbx_leftover **ret_lo, al_error *err) {
        al_sbx_config c = {
                .argv = argv,
                .envp = envp,
                .ro_paths = s->lang->ro_paths,
                .files = files,
                .n_files = n_files,
                .stdin_data = in,
                .stdin_len = in_len,
                .limits = *limits,
                .cancel_fd = s->cancel_fd,
                .timing = s->timing,
                .gate = *gated ? NULL : s->gate,
                .gate_ctx = s->gate_ctx,
                .live = s->live,
                .output_fn = s->output_fn,
                .output_ctx = s->output_ctx,
                .egress = s->net,
        };
        *gated = true;
        return al_sandbox_run(&c, r, ret_ws, ret_lo, err);
}

static void reject(al_result *r, const al_limits *l, const char *why) {
        r->status = AL_STATUS_REJECTED;
        r->exit_code = -1;
        r->limits = *l;
        snprintf(r->reason, sizeof(r->reason), "%s", why);
}

/* Refuse what cannot run here, before any sandbox: true when r now says
 * why (status rejected). */
static bool refused(const al_spec *s, al_result *r) {
        al_error e = {0};

        if (!s->lang) {
                reject(r, &s->limits, "no language given");
                return true;
        }
        if (s->live && !s->lang->session_run) {
                char why[160];
                snprintf(why, sizeof(why), "language %s has no session driver",
                         s->lang->name);
                reject(r, &s->limits, why);
                return true;
        }
        if (!s->has_code && !s->live) {
                reject(r, &s->limits, "no code given");
                return true;
        }
        if (al_limits_validate(&s->limits, &e) < 0) {
                reject(r, &s->limits, e.msg);
                return true;
        }
        if (!al_profile_available(s->lang)) {
                char why[256];
                snprintf(why, sizeof(why),
                         "language %s is not installed on this host (%s)",
                         s->lang->name,
                         s->lang->compile ? s->lang->compile[0]
                                          : s->lang->run[0]);
                reject(r, &s->limits, why);
                return true;
        }
        const char *prot = NULL, *bind = exposes_protected(s->lang, &prot);
        if (bind) {
                char why[256];
                snprintf(why, sizeof(why),
                         "language %s would mount %s, which exposes the "
                         "protected state %s",
                         s->lang->name, bind, prot);
                reject(r, &s->limits, why);
                return true;
        }
        if (s->input_total + s->code_len > (s->limits.disk_mb << 20)) {
                reject(r, &s->limits,
                       "input files and code do not fit the disk limit");
                return true;
        }
        for (size_t i = 0; i < s->n_files; i++)
                if (!strcmp(s->files[i].name, s->lang->file) ||
                    (s->lang->compile_output &&
                     !strcmp(s->files[i].name, s->lang->compile_output))) {
                        char why[300];
                        snprintf(why, sizeof(why),
                                 "input file '%s' would overwrite the "
                                 "program's own file",
                                 s->files[i].name);
                        reject(r, &s->limits, why);
                        return true;
                }
        return false;
}

/* The sandbox's input files: the code under the profile's file name,
 * then the spec's files. */
static al_sbx_file *sandbox_files(const al_spec *s) {
        al_sbx_file *files = calloc(s->n_files + 1, sizeof(*files));
        if (!files)
                return NULL;
        /* a session's code comes cell by cell: an empty program file */
        files[0] = (al_sbx_file){.name = s->lang->file,
                                 .data = s->code,
                                 .len = s->live ? 0 : s->code_len};
        for (size_t i = 0; i < s->n_files; i++)
                files[i + 1] = (al_sbx_file){.name = s->files[i].name,
                                             .data = s->files[i].data,
                                             .len = s->files[i].len,
                                             .executable = s->files[i].exec};
        return files;
}

/* The compiler runs for the caller, so within the caller's limits too
 * (which a server's key ceilings have already lowered): a macro bomb
 * must not get the profile's 512 MiB / 30 s from a request of 64 MiB /
 * 2 s. */
static al_limits compile_limits(const al_spec *s) {
        al_limits cl = s->lang->compile_limits;
        uint64_t *cf[] = {&cl.wall_ms, &cl.cpu_ms,  &cl.memory_mb,
                          &cl.pids,    &cl.disk_mb, &cl.output_bytes};
        const uint64_t rf[] = {s->limits.wall_ms,   s->limits.cpu_ms,
                               s->limits.memory_mb, s->limits.pids,
                               s->limits.disk_mb,   s->limits.output_bytes};
        for (size_t k = 0; k < ARRAY_SIZE(cf); k++)
                if (*cf[k] > rf[k])
                        *cf[k] = rf[k];
        return cl;
}

/* Compile in a sandbox of its own, with the profile's limits; only the
 * produced binary crosses over, as files[0]. Returns < 0 on error, 1
 * when the compile failed (r says so: the run does not happen), 0 when
 * the run can go on. */
static int compile_stage(const al_spec *s, bool *gated, char *const *envp,
                         al_sbx_file *files, al_result *r, al_error *err) {
        _cleanup_free_ char **cargv =
                expand_argv(s->lang->compile, s->lang->file, NULL, 0);
        al_result *cr = calloc(1, sizeof(*cr));
        if (!cargv || !cr) {
                free(cr);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        r->compile = cr;
        r->has_compile = true;
        int cws = -1;
        al_sbx_leftover *clo = NULL;
        al_limits cl = compile_limits(s);
        int rc = stage(s, gated, cargv, envp, files, 1, &cl, NULL, 0, cr, &cws,
                       &clo, err);
        if (rc < 0)
                return rc;
        char *out_glob = s->lang->compile_output;
        if (cr->status == AL_STATUS_OK)
                rc = collect(cws, &out_glob, 1, 1, 256u << 20, 256u << 20,
                             s->cancel_fd, cr);
        safe_close(cws);
        al_sbx_leftover_free(clo);
        if (rc < 0)
                return al_error_set(err, -rc, "collect compiler output");
        if (cr->status != AL_STATUS_OK || cr->n_files != 1) {
                /* compile failed: the run did not happen */
                r->status = cr->status == AL_STATUS_OK ? AL_STATUS_ERROR
                                                       : cr->status;
                if (r->status == AL_STATUS_ERROR ||
                    r->status == AL_STATUS_KILLED)
                        r->status = AL_STATUS_ERROR;
                r->exit_code = -1;
                r->limits = s->limits;
                r->protections = cr->protections;
                snprintf(r->reason, sizeof(r->reason), "compilation failed: %s",
                         cr->reason[0] ? cr->reason : "no binary produced");
                return 1;
        }
        /* the run sees the binary, not the source */
        files[0] = (al_sbx_file){.name = cr->files[0].name,
                                 .data = cr->files[0].data,
                                 .len = cr->files[0].size,
                                 .executable = true};
        return 0;
}

/* The run itself, then the files it leaves that the spec collects. */
static int run_stage(const al_spec *s, bool *gated, char *const *envp,
                     const al_sbx_file *files, double t0, al_result *r, int *ws,
                     al_error *err) {
        _cleanup_free_ char **argv =
                s->live ? expand_argv(s->lang->session_run, s->lang->file, NULL,
                                      0)
                        : expand_argv(s->lang->run, s->lang->file, s->args,
                                      s->n_args);
        if (argv && s->live)
                for (char **a = argv; *a; a++)
                        if (!strcmp(*a, "{driver}"))
                                *a = (char *)s->lang->session_driver;
        if (!argv)
                return al_error_set(err, ENOMEM, "out of memory");
        double t_stage = al_now_ms();
        /* a session has no program file: its code comes cell by cell */
        int rc = stage(s, gated, argv, envp, s->live ? files + 1 : files,
                       s->live ? s->n_files : s->n_files + 1, &s->limits,
                       s->stdin_data, s->stdin_len, r, ws, &r->leftover, err);
        if (rc < 0)
                return rc;
        if (r->has_timing) {
                /* the sandbox measured from its own start */
                r->timing.prepare_ms += t_stage - t0;
                r->timing.setup_ms += t_stage - t0;
        }
        double t_c = al_now_ms();
        uint64_t ctotal =
                s->collect_max ? s->collect_max : AL_COLLECT_MAX_TOTAL;
        rc = collect(*ws, s->collect, s->n_collect, AL_COLLECT_MAX_FILES,
                     AL_COLLECT_MAX_FILE < ctotal ? AL_COLLECT_MAX_FILE
                                                  : ctotal,
                     ctotal, s->cancel_fd, r);
        if (rc < 0)
                return al_error_set(err, -rc, "collect output files");
        if (r->has_timing)
                r->timing.collect_ms = al_now_ms() - t_c;
        return 0;
}

int al_run(const al_spec *s, al_result **ret, al_error *err) {
        al_result *r = calloc(1, sizeof(*r));
        if (!r)
                return al_error_set(err, ENOMEM, "out of memory");
        double t0 = al_now_ms();
        int ws = -1, rc = 0;
        bool gated = false; /* the spec's gate was handed to a sandbox */
        _cleanup_free_ char **envp = NULL;
        _cleanup_free_ al_sbx_file *files = NULL;

        if (refused(s, r))
                goto done;
        envp = build_env(s);
        files = sandbox_files(s);
        if (!envp || !files) {
                rc = al_error_set(err, ENOMEM, "out of memory");
                goto done;
        }
        if (s->lang->compile && !s->live &&
            (rc = compile_stage(s, &gated, envp, files, r, err)) != 0) {
                if (rc > 0)
                        rc = 0; /* r says why the compile failed */
                goto done;
        }
        rc = run_stage(s, &gated, envp, files, t0, r, &ws, err);

done:
        safe_close(ws);
        if (rc < 0) {
                al_result_free(r);
                return rc;
        }
        if (s->timing) {
                r->has_timing = true;
                r->timing.total_ms = al_now_ms() - t0;
        }
        *ret = r;
        return 0;
}
