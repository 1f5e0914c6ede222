/* SPDX-License-Identifier: MIT */
/* airlock run: flags -> al_spec -> al_run -> human or JSON output. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "airlock-check.h"
#include "airlock-extract.h"
#include "cli.h"
#include "json.h"
#include "macro.h"
#include "util.h"

/* Largest code, stdin or input file the CLI reads from disk. */
#define CLI_MAX_READ (256u << 20)

/* clang-format off */
static void help(FILE *f) {
        fprintf(f,
"Usage: airlock run --lang LANG [OPTIONS] (FILE | - | -c CODE) [ARGS...]\n"
"       airlock run --markdown (FILE | -) [OPTIONS] [ARGS...]\n"
"\n"
"Run code in a fresh sandbox and report what happened.\n"
"\n"
"Code:\n"
"  -l, --lang LANG        language: python, node, bash, sh, c (see --list-languages)\n"
"  -c, --code CODE        the code as an argument\n"
"  FILE                   the code from a file; '-' reads it from stdin\n"
"  --stdin FILE           data for the program's stdin ('-' = airlock's stdin)\n"
"  --arg ARG              an argument for the program (repeatable); ARGS after\n"
"                         the code work too (after -- if they look like options)\n"
"  -e, --env NAME=VALUE   add an environment variable (repeatable); nothing\n"
"                         of airlock's own environment is passed on\n"
"  --file NAME=PATH       copy host file PATH into the workspace as NAME\n"
"                         (repeatable; NAME relative, no '..')\n"
"  --collect GLOB         return workspace files matching GLOB (repeatable;\n"
"                         '*' stays in one directory, '**' spans them)\n"
"  --out-dir DIR          write collected files under DIR (created)\n"
"  --allow-net LIST       let the code reach these hosts, and only them,\n"
"                         through a proxy in its network namespace (HTTP and\n"
"                         HTTPS via HTTP(S)_PROXY; comma-separated or\n"
"                         repeated: host[:port], *.suffix[:port], an IP;\n"
"                         without a port 80 and 443); within the network\n"
"                         section of --policy FILE when it has one.\n"
"                         Default: no network\n"
"\n"
"A model's reply (Markdown; airlock-extract(1)):\n"
"  --markdown FILE|-      run each fenced code block, in order, each in its\n"
"                         own fresh sandbox with the same flags; untagged and\n"
"                         unknown-language blocks are skipped and reported.\n"
"                         --json prints an array, one element per block;\n"
"                         exit status: the first block that did not succeed\n"
"  --lang LANG            with --markdown: only blocks of LANG\n"
"  --default-lang LANG    the language of untagged blocks\n"
"  --fail-fast            skip the blocks after one that did not succeed\n"
"                         (--out-dir DIR: block N's files go to DIR/N)\n"
"\n"
"Limits (defaults; maxima in the man page):\n"
"  -t, --timeout SEC      wall clock (10)          --cpu SEC       CPU time (10)\n"
"  -m, --memory MB        memory, no swap (256)    --pids N        processes (64)\n"
"  --disk MB              workspace+/tmp (64)      --output BYTES  per stream (1048576)\n"
"  --open-files N         file descriptors (256)\n"
"  --limit NAME=VALUE     any limit by its JSON name: wall_ms, cpu_ms, memory_mb,\n"
"                         pids, disk_mb, output_bytes, open_files, and with\n"
"                         --allow-net the proxy's caps: net_connections\n"
"                         (sockets at once, 32), net_bytes_out and\n"
"                         net_bytes_in (bytes each way, all connections,\n"
"                         104857600), net_idle_ms (a silent connection\n"
"                         closes, 30000)\n"
"\n"
"Output:\n"
"  --json                 print exactly one JSON object (see airlock-run(1))\n"
"  --pretty               indent the JSON\n"
"  --timing               include per-phase timings\n"
"  -q, --quiet            human mode: no summary line\n"
"  --languages FILE       load extra language profiles (JSON)\n"
"  --state DIR            state directory with the audit log (default:\n"
"                         $AIRLOCK_STATE, else /var/lib/airlock as root,\n"
"                         ~/.local/share/airlock otherwise)\n"
"  --no-audit             do not record this run in the audit log\n"
"  --user-id ID, --agent-id ID  on whose behalf the code runs (audited)\n"
"\n"
"Static validation (python, node, bash, sh; airlock-check(1)):\n"
"  --policy FILE          check the code against this policy (default: the\n"
"                         built-in one)\n"
"  --policy-mode MODE     enforce: refuse the run (status rejected, exit 3)\n"
"                         on findings at or above the policy's threshold;\n"
"                         warn: run, and report the findings; record: run,\n"
"                         findings only in --json and the audit log; off.\n"
"                         Default: enforce with --policy, else record\n"
"  --list-languages       list languages and exit\n"
"  -h, --help             this help\n"
"\n"
"Exit status:\n"
"  0 ok            1 the code exited non-zero (or failed to compile)\n"
"  2 usage error   3 rejected before running     4 timeout (wall or CPU)\n"
"  5 memory limit  6 output limit   7 killed by a signal   8 internal error\n"
"  130 airlock was interrupted (the sandbox was killed and cleaned up)\n"
"Every run, and every refused one, is recorded in the audit log before\n"
"and after it runs (airlock-audit(1)); if the log cannot be written, the\n"
"code does not run (exit 8, error code audit_unavailable).\n");
}
/* clang-format on */

static bool json_mode;

/* --timing's process phases around al_run (ms, CLOCK_MONOTONIC marks;
 * main's entry is cli_main_clock): what the sandbox's own phases do not
 * see, from the process's start to the result printed. */
static struct {
        double parsed;         /* the flags parsed */
        double check0, check1; /* static validation */
        double run0, run1;     /* al_run */
        double audited;        /* the finished record written */
        double audit_open_ms;  /* writer thread: state dir, key, store */
        double audit_start_ms; /* writer thread: the started record */
} pt;

/* The audit log of this invocation: opened on first need (a refusal or
 * the run), so --help and --list-languages work without a state dir. */
static struct {
        bool on;           /* not --no-audit */
        const char *state; /* --state */
        al_audit *log;
        al_audit_who who;
        char actor[64];
        const al_spec *spec; /* what a refusal records of the request */
        char *findings;      /* static validation's findings (JSON) */
} audit;

/* --markdown: the results of the blocks, and the block being run. */
static struct {
        bool on;
        json_t *results; /* one element per block */
        json_t *block;   /* {index, line, language, info, unterminated} */
        size_t index;
} md;

/* One JSON result out (its reference taken): printed, or with
 * --markdown added to the array with the block it is about. */
static void emit_json(json_t *o) {
        if (!o)
                return;
        if (md.on) {
                if (md.block)
                        json_object_set(o, "block", md.block);
                json_array_append_new(md.results, o);
                return;
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(s ? s : "{\"status\":\"internal_error\"}");
        free(s);
        json_decref(o);
}

static int audit_ensure(al_error *e) {
        if (audit.log)
                return 0;
        int r = al_audit_open(audit.state, &audit.log, e);
        /* a person at a terminal gets alerts as one line of words; JSON
         * lines are for --json, the alert-log file and the sinks */
        if (r == 0)
                al_audit_alerts_human(audit.log, !json_mode);
        return r;
}

static void finish_in_background(al_result *res);

/* One refusal as the user sees it: a message, or one JSON object with a
 * stable code (and the audit id when it was recorded). */
static int emit_refusal(int exit_code, const char *code, const char *msg,
                        const char *audit_id) {
        if (json_mode) {
                json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "status",
                                      "rejected", "reason", msg, "error",
                                      "code", code, "message", msg);
                if (audit_id && *audit_id)
                        json_object_set_new(o, "audit_id",
                                            json_string(audit_id));
                json_t *f = audit.findings ? json_loads(audit.findings, 0, NULL)
                                           : NULL;
                if (f)
                        json_object_set_new(o, "findings", f);
                emit_json(o);
        }
        cli_error("%s", msg);
        finish_in_background(NULL); /* alerts of the refusal */
        return exit_code;
}

/* A refusal before running: recorded in the audit log, then reported. */
static int refuse(int exit_code, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int refuse(int exit_code, const char *code, const char *fmt, ...) {
        char msg[1024], id[AL_AUDIT_ID_SIZE] = "";
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (audit.on) {
                al_error e = {0};
                if (audit_ensure(&e) < 0 ||
                    al_audit_refused(audit.log, &audit.who, audit.spec, code,
                                     msg, audit.findings, id, &e) < 0) {
                        id[0] = '\0';
                        cli_error("this refusal could not be audited: %s",
                                  e.msg);
                }
        }
        return emit_refusal(exit_code, code, msg, id);
}

/* The gate of the run (al_spec_set_gate): the durable "started" record. */
/* The started record is written by a thread that starts with the run,
 * so the store's opening and the commit overlap airlock's preparations and
 * the sandbox's set-up; the sandbox waits at the gate (al_spec_set_gate)
 * until the record is durable, and no code goes in if it is not. */
struct audit_gate {
        pthread_t writer;
        bool writing; /* the writer thread runs (join it) */
        bool called, ok;
        char id[AL_AUDIT_ID_SIZE];
        al_error err;
};

static void write_started(struct audit_gate *g) {
        double t0 = al_now_ms();
        g->ok = audit_ensure(&g->err) == 0;
        double t1 = al_now_ms();
        g->ok = g->ok && al_audit_started(audit.log, &audit.who, audit.spec,
                                          audit.findings, g->id, &g->err) == 0;
        pt.audit_open_ms = t1 - t0;
        pt.audit_start_ms = al_now_ms() - t1;
}

static void *writer_main(void *ctx) {
        write_started(ctx);
        return NULL;
}

static void audit_gate_start(struct audit_gate *g) {
        /* the thread inherits the blocked SIGINT/SIGTERM/SIGHUP */
        g->writing = pthread_create(&g->writer, NULL, writer_main, g) == 0;
        if (!g->writing) /* no thread: write it now */
                write_started(g);
}

static void audit_gate_join(struct audit_gate *g) {
        if (g->writing) {
                pthread_join(g->writer, NULL);
                g->writing = false;
        }
}

static int audit_gate(void *ctx, al_error *err) {
        struct audit_gate *g = ctx;
        g->called = true;
        audit_gate_join(g);
        if (!g->ok) {
                *err = g->err;
                return -(g->err.code ? g->err.code : EIO);
        }
        return 0;
}

/* A caller-supplied id: printable, at most 128 bytes. */
static bool id_ok(const char *s) {
        size_t n = strlen(s);
        if (!n || n > 128 || !al_utf8_valid((const unsigned char *)s, n))
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

static int set_limit_flag(al_spec *s, const char *flag, const char *name,
                          const char *value, bool seconds) {
        al_error e = {0};
        char ms[48];
        if (seconds) {
                uint64_t v;
                int r = cli_seconds_to_ms(value, &v);
                if (r == 0)
                        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)v);
                if (r < 0)
                        return refuse(EXIT_USAGE, "invalid_limit",
                                      "%s: '%s' is not a number of seconds "
                                      "(e.g. 5 or 0.5)",
                                      flag, value);
                value = ms;
        }
        if (al_limits_set(al_spec_limits(s), name, value, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_limit", "%s: %s", flag,
                              e.msg);
        return 0;
}

static int list_languages(void) {
        for (size_t i = 0; i < al_languages_count(); i++)
                printf("%-8s %-11s %s\n", al_language_name(i),
                       al_language_available(i) ? "available" : "missing",
                       al_language_describe(i));
        return EXIT_OK;
}

/* Create DIR/NAME without following any link, creating subdirectories. */
static int write_out_file(int dirfd, const char *name, const al_file *f) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s", name);
        _cleanup_close_ int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        char *p = path;
        for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
                *slash = '\0';
                if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                int next =
                        openat(cur, p,
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return -errno;
                close(cur);
                cur = next;
        }
        _cleanup_close_ int fd = openat(
                cur, p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0644);
        if (fd < 0)
                return -errno;
        size_t off = 0;
        while (off < f->size) {
                ssize_t n = write(fd, f->data + off, f->size - off);
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        return 0;
}

/* The result is out; what is left (an empty cgroup, namespaces and a
 * tmpfs for the kernel to free, alerts for the command and webhook sinks)
 * is done by a child, so that whoever waits for this process does not wait
 * for that. The child holds no stdio (a reader waiting for EOF is not kept
 * waiting either). If it cannot be made, tear down here; alerts then wait
 * for nobody (they are logged already). */
#define ALERT_DRAIN_MS 60000
static void finish_in_background(al_result *res) {
        if (!(res && res->leftover) && !(audit.log && !md.on))
                return;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                for (int i = 0; i <= 2; i++)
                        if (fd < 0 || dup2(fd, i) < 0)
                                close(i);
                if (res)
                        al_result_teardown(res);
                /* --markdown: once, after the last block (the queue of
                 * this process still holds what a child sends) */
                if (audit.log && !md.on)
                        al_audit_alerts_drain(audit.log, ALERT_DRAIN_MS);
                _exit(0);
        }
        if (pid > 0 && res)
                res->leftover = NULL; /* the child's now; ours close at exit */
}

static int status_exit(const al_result *r) {
        switch (r->status) {
        case AL_STATUS_OK:
                return EXIT_OK;
        case AL_STATUS_ERROR:
                return EXIT_RUN_ERROR;
        case AL_STATUS_TIMEOUT:
                return EXIT_TIMEOUT;
        case AL_STATUS_MEMORY_LIMIT:
                return EXIT_MEMORY;
        case AL_STATUS_OUTPUT_LIMIT:
                return EXIT_OUTPUT;
        case AL_STATUS_KILLED:
                return EXIT_KILLED;
        case AL_STATUS_REJECTED:
                return EXIT_REJECTED;
        case AL_STATUS_INTERNAL_ERROR:
                break;
        }
        return EXIT_INTERNAL;
}

static void print_human(const al_result *r, bool quiet, const char *out_dir) {
        if (r->compile && r->compile->status != AL_STATUS_OK) {
                fwrite(r->compile->stdout_buf, 1, r->compile->stdout_len,
                       stderr);
                fwrite(r->compile->stderr_buf, 1, r->compile->stderr_len,
                       stderr);
        }
        fwrite(r->stdout_buf, 1, r->stdout_len, stdout);
        fflush(stdout);
        fwrite(r->stderr_buf, 1, r->stderr_len, stderr);
        if (quiet)
                return;
        fprintf(stderr, "--- airlock: %s", al_status_name(r->status));
        if (r->exit_code >= 0)
                fprintf(stderr, " (exit %d)", r->exit_code);
        if (r->signal)
                fprintf(stderr, " (signal %d)", r->signal);
        fprintf(stderr, " | wall %llu ms | cpu %llu ms | memory %.1f MiB",
                (unsigned long long)r->wall_ms, (unsigned long long)r->cpu_ms,
                (double)r->memory_peak_bytes / 1048576.0);
        if (r->reason[0] && r->status != AL_STATUS_OK)
                fprintf(stderr, "\n--- %s", r->reason);
        if (r->stdout_truncated || r->stderr_truncated)
                fprintf(stderr, "\n--- output truncated");
        if (r->protections.note[0])
                fprintf(stderr, "\n--- warning: %s", r->protections.note);
        for (size_t i = 0; i < r->n_files; i++)
                fprintf(stderr, "\n--- file %s (%s, %zu bytes)%s%s",
                        r->files[i].name, r->files[i].mime, r->files[i].size,
                        out_dir ? " -> " : "", out_dir ? out_dir : "");
        if (r->files_note[0])
                fprintf(stderr, "\n--- files: %s", r->files_note);
        fputc('\n', stderr);
}

/* Static validation before anything runs (airlock-check(1)): the
 * findings go to the result, the audit records and, in enforce mode, a
 * refusal. 0 to go on, else the exit status of the refusal. */
static int validate(al_spec *s, const char *file, const char *mode) {
        if (!mode)
                mode = file ? "enforce" : "record";
        if (!al_policy_mode_ok(mode))
                return refuse(EXIT_USAGE, "usage",
                              "--policy-mode: off, record, warn or enforce, "
                              "not '%s'",
                              mode);
        al_error e = {0};
        al_policy *p = NULL;
        /* (a language without a checker needs no policy: it is refused
         * in enforce mode, run unchecked otherwise) */
        al_findings probe;
        if (strcmp(mode, "off") &&
            al_spec_check(s, NULL, &probe, &e) != -ENOTSUP &&
            !(p = al_policy_load(file, &e)))
                return refuse(EXIT_USAGE, "invalid_policy", "%s", e.msg);
        al_verdict v;
        int rc = 0;
        al_spec_validate(s, p, mode, &v, &e); /* the mode is known */
        audit.findings = v.findings_json;
        v.findings_json = NULL;
        if (v.refusal)
                rc = refuse(strcmp(v.refusal, "policy_guard_failed")
                                    ? EXIT_REJECTED
                                    : EXIT_INTERNAL,
                            v.refusal, "%s", v.message);
        else if (v.message[0])
                cli_error("%s", v.message);
        if (!rc && !strcmp(mode, "warn") && !json_mode)
                for (size_t i = 0; i < v.findings.n; i++) {
                        const al_finding *x = &v.findings.v[i];
                        fprintf(stderr, "airlock: warning: %u:%u: %s %s: %s\n",
                                x->line, x->column,
                                al_severity_name(x->severity), x->rule,
                                x->message);
                }
        al_verdict_free(&v);
        al_policy_free(p);
        return rc;
}

/* What the flags say besides the spec. */
struct run_opts {
        const char *code_arg, *code_file, *stdin_path, *out_dir, *lang;
        const char *policy_file, *policy_mode;
        const char *markdown, *default_lang; /* --markdown */
        bool pretty, quiet, timing, list, fail_fast;
        bool net; /* --allow-net was given */
};

/* --allow-net under --policy FILE: when the policy has a network
 * section, the list must be within it (and its max_bytes caps the run),
 * whatever --policy-mode says: it is a ceiling, not a finding. */
static int network_policy(al_spec *s, const struct run_opts *o) {
        al_error e = {0};
        const char *file = o->policy_file;
        if (!file || !o->net)
                return 0;
        al_policy *p = al_policy_load(file, &e);
        if (!p)
                return refuse(EXIT_USAGE, "invalid_policy", "%s", e.msg);
        int r = al_spec_apply_network_policy(s, p, &e);
        al_policy_free(p);
        if (r < 0)
                return refuse(EXIT_USAGE, "invalid_network", "--allow-net: %s",
                              e.msg);
        return 0;
}

/* What the setters of the flags write to: the spec, the other flags, and
 * whether this is the same command line once more (again: the next
 * Markdown block). */
struct run_parse {
        al_spec *s;
        struct run_opts *o;
        bool again;
};

static int set_arg(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        al_error e = {0};
        if (al_spec_add_arg(p->s, arg, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_argument", "--arg: %s",
                              e.msg);
        return 0;
}

static int set_env(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        al_error e = {0};
        char *eq = strchr(arg, '=');
        if (!eq)
                return refuse(EXIT_USAGE, "invalid_env",
                              "--env wants NAME=VALUE, got '%s'", arg);
        *eq = '\0';
        int r = al_spec_add_env(p->s, arg, eq + 1, &e);
        *eq = '=';
        if (r < 0)
                return refuse(EXIT_USAGE, "invalid_env", "--env: %s", e.msg);
        return 0;
}

/* --file NAME=PATH, or PATH (as its base name). */
static int set_file(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        al_error e = {0};
        int r;
        char *eq = strchr(arg, '=');
        const char *name = arg, *path = arg;
        char namebuf[PATH_MAX];
        if (eq) {
                size_t nl = (size_t)(eq - arg);
                if (nl >= sizeof(namebuf))
                        nl = sizeof(namebuf) - 1;
                memcpy(namebuf, arg, nl);
                namebuf[nl] = '\0';
                name = namebuf;
                path = eq + 1;
        } else {
                const char *b = strrchr(arg, '/');
                name = b ? b + 1 : arg;
        }
        _cleanup_free_ unsigned char *data = NULL;
        size_t len = 0;
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
                return refuse(EXIT_USAGE, "invalid_file",
                              "--file %s: not a regular file", path);
        if ((r = al_read_all(path, CLI_MAX_READ, &data, &len)) < 0)
                return refuse(EXIT_USAGE, "invalid_file", "--file %s: %s", path,
                              strerror(-r));
        if (al_spec_add_file(p->s, name, data, len, st.st_mode & 0111, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_file", "--file: %s", e.msg);
        return 0;
}

/* --allow-net a,b --allow-net c: every entry, checked, into the spec. */
#define CLI_MAX_NET 64
static int set_allow_net(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        static char *entries[CLI_MAX_NET];
        static size_t n;
        al_error e = {0};
        _cleanup_free_ char *copy = strdup(arg);
        if (!copy)
                return refuse(EXIT_INTERNAL, "internal_error", "out of memory");
        for (char *sv = NULL, *t = strtok_r(copy, ",", &sv); t;
             t = strtok_r(NULL, ",", &sv)) {
                if (n == CLI_MAX_NET)
                        return refuse(EXIT_USAGE, "invalid_network",
                                      "--allow-net: at most %d entries",
                                      CLI_MAX_NET);
                if (!(entries[n] = strdup(t)))
                        return refuse(EXIT_INTERNAL, "internal_error",
                                      "out of memory");
                n++;
        }
        if (al_spec_set_network(p->s, (const char *const *)entries, n, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_network", "--allow-net: %s",
                              e.msg);
        p->o->net = n > 0;
        return 0;
}

static int set_collect(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        al_error e = {0};
        if (al_spec_add_collect(p->s, arg, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_collect", "--collect: %s",
                              e.msg);
        return 0;
}

static int set_limit(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        char flag[32];
        snprintf(flag, sizeof(flag), "--%s", o->name);
        return set_limit_flag(p->s, flag, cli_limit_flags[o->id].name, arg,
                              cli_limit_flags[o->id].seconds);
}

/* --limit NAME=VALUE */
static int set_limit_any(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        char *eq = strchr(arg, '=');
        if (!eq)
                return refuse(EXIT_USAGE, "invalid_limit",
                              "--limit wants NAME=VALUE, got '%s'", arg);
        *eq = '\0';
        int r = set_limit_flag(p->s, "--limit", arg, eq + 1, false);
        *eq = '=';
        return r;
}

static int set_languages(const struct cli_opt *o, const char *arg) {
        struct run_parse *p = o->ctx;
        al_error e = {0};
        if (!p->again && al_languages_load_file(arg, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_languages",
                              "--languages: %s", e.msg);
        return 0;
}

static int set_no_audit(const struct cli_opt *o, const char *arg) {
        (void)o;
        (void)arg;
        audit.on = false;
        return 0;
}

#define RUN_NOPTS 33

/* The flags of airlock run, in getopt's order (--help is its own text:
 * help()). The early ones decide how errors in any other flag are
 * reported and recorded (cmd_run reads them first). */
static void run_table(struct cli_opt t[RUN_NOPTS + 1], struct run_parse *p) {
        struct run_opts *o = p->o;
        /* clang-format off */
#define STR(n, sh, dst) {.name = n, .has_arg = 1, .short_name = sh,            \
                         .kind = CLI_STRING, .str = dst}
#define FLAG(n, sh, dst) {.name = n, .short_name = sh, .kind = CLI_FLAG,      \
                          .flag = dst}
#define CALL(n, sh, fn, i) {.name = n, .has_arg = 1, .short_name = sh,         \
                            .kind = CLI_CALL, .set = fn, .ctx = p, .id = i}
#define EARLY(n, a, k, dst...) {.name = n, .has_arg = a, .kind = k, dst,      \
                                .early = CLI_EARLY_ONLY}
        const struct cli_opt v[] = {
                STR("lang", 'l', &o->lang),
                STR("language", 'l', &o->lang),
                STR("code", 'c', &o->code_arg),
                STR("stdin", 0, &o->stdin_path),
                CALL("arg", 0, set_arg, 0),
                CALL("env", 'e', set_env, 0),
                CALL("file", 0, set_file, 0),
                CALL("collect", 0, set_collect, 0),
                CALL("allow-net", 0, set_allow_net, 0),
                STR("out-dir", 0, &o->out_dir),
                CALL("timeout", 't', set_limit, CLI_LIM_WALL),
                CALL("cpu", 0, set_limit, CLI_LIM_CPU),
                CALL("memory", 'm', set_limit, CLI_LIM_MEMORY),
                CALL("pids", 0, set_limit, CLI_LIM_PIDS),
                CALL("disk", 0, set_limit, CLI_LIM_DISK),
                CALL("output", 0, set_limit, CLI_LIM_OUTPUT),
                CALL("open-files", 0, set_limit, CLI_LIM_FILES),
                CALL("limit", 0, set_limit_any, 0),
                {.name = "json", .kind = CLI_FLAG, .flag = &json_mode,
                 .early = CLI_EARLY},
                FLAG("pretty", 0, &o->pretty),
                FLAG("timing", 0, &o->timing),
                FLAG("quiet", 'q', &o->quiet),
                CALL("languages", 0, set_languages, 0),
                FLAG("list-languages", 0, &o->list),
                EARLY("state", 1, CLI_STRING, .str = &audit.state),
                EARLY("no-audit", 0, CLI_CALL, .set = set_no_audit),
                EARLY("user-id", 1, CLI_STRING, .str = &audit.who.user_id),
                EARLY("agent-id", 1, CLI_STRING, .str = &audit.who.agent_id),
                STR("policy", 0, &o->policy_file),
                STR("policy-mode", 0, &o->policy_mode),
                STR("markdown", 0, &o->markdown),
                STR("default-lang", 0, &o->default_lang),
                FLAG("fail-fast", 0, &o->fail_fast),
                CLI_END,
        };
#undef STR
#undef FLAG
#undef CALL
#undef EARLY
        /* clang-format on */
        _Static_assert(sizeof(v) == sizeof(v[0]) * (RUN_NOPTS + 1),
                       "RUN_NOPTS");
        memcpy(t, v, sizeof(v));
}

/* The flags into s and o: -1 to go on, else the exit status of a refusal.
 * again: the same flags once more, for the next Markdown block (files
 * are read again; language profiles are not loaded twice). */
static int parse_opts(int argc, char **argv, al_spec *s, struct run_opts *o,
                      bool again) {
        al_error e = {0};
        *o = (struct run_opts){0};
        struct run_parse p = {s, o, again};
        struct cli_opt t[RUN_NOPTS + 1];
        run_table(t, &p);
        const struct cli_cmd cmd = {.opts = t, .help = help};
        int r = cli_parse(&cmd, argc, argv, 1);
        if (r >= 0)
                return r;
        /* getopt has moved the operands to the end: the code FILE (unless
         * -c or --markdown), then the program's arguments (options among
         * them only after "--"). */
        if (optind < argc && !o->code_arg && !o->markdown)
                o->code_file = argv[optind++];
        for (; optind < argc; optind++)
                if (al_spec_add_arg(s, argv[optind], &e) < 0)
                        return refuse(EXIT_USAGE, "invalid_argument", "%s",
                                      e.msg);
        return -1;
}

/* The code from -c or FILE into s: 0, or the exit status of a refusal. */
static int spec_code(al_spec *s, const struct run_opts *o) {
        al_error e = {0};
        int r;
        if (!o->code_arg && !o->code_file)
                return refuse(EXIT_USAGE, "usage",
                              "no code: give a FILE, '-' for stdin, "
                              "or -c CODE");
        const void *code = o->code_arg;
        size_t len = o->code_arg ? strlen(o->code_arg) : 0;
        _cleanup_free_ unsigned char *data = NULL;
        if (!o->code_arg) {
                if ((r = al_read_all(o->code_file, CLI_MAX_READ, &data, &len)) <
                    0)
                        return refuse(EXIT_USAGE, "invalid_code",
                                      "cannot read code from %s: %s",
                                      o->code_file, strerror(-r));
                code = data;
        }
        if (al_spec_set_code(s, code, len, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_code", "%s", e.msg);
        return 0;
}

/* --stdin into s: 0, or the exit status of a refusal. */
static int spec_stdin(al_spec *s, const struct run_opts *o) {
        al_error e = {0};
        int r;
        const char *code_from = o->markdown ? o->markdown : o->code_file;
        bool from_stdin = !strcmp(o->stdin_path, "-");
        if (from_stdin && code_from && !strcmp(code_from, "-"))
                return refuse(EXIT_USAGE, "usage",
                              "stdin cannot carry both the code and "
                              "the program's input");
        /* airlock's stdin is read once, for every block */
        static unsigned char *stdin_data;
        static size_t stdin_len;
        static bool stdin_read;
        _cleanup_free_ unsigned char *data = NULL;
        size_t len = 0;
        if (from_stdin && stdin_read) {
                r = 0;
        } else if ((r = al_read_all(o->stdin_path, CLI_MAX_READ, &data,
                                    &len)) == 0 &&
                   from_stdin) {
                stdin_data = data;
                stdin_len = len;
                stdin_read = true;
                data = NULL;
        }
        if (r < 0)
                return refuse(EXIT_USAGE, "invalid_stdin", "--stdin %s: %s",
                              o->stdin_path, strerror(-r));
        if (al_spec_set_stdin(s, from_stdin ? stdin_data : data,
                              from_stdin ? stdin_len : len, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_stdin", "%s", e.msg);
        return 0;
}

/* al_run failed: why (the audit log, or e), recorded and reported. */
static int run_failed(const struct audit_gate *gate, const al_error *e) {
        if (gate->called && !gate->ok) {
                char msg[AL_ERROR_MSG_MAX + 128];
                snprintf(msg, sizeof(msg),
                         "not running: the audit log cannot be "
                         "written: %s (--no-audit runs without it)",
                         gate->err.msg);
                return emit_refusal(EXIT_INTERNAL, "audit_unavailable", msg,
                                    NULL);
        }
        cli_error("%s", e->msg);
        if (gate->ok) {
                al_result failed = {.status = AL_STATUS_INTERNAL_ERROR,
                                    .exit_code = -1};
                snprintf(failed.reason, sizeof(failed.reason), "%s", e->msg);
                al_error e2 = {0};
                if (al_audit_finished(audit.log, gate->id, &failed, &e2) < 0)
                        cli_error("the audit record of this failure "
                                  "is incomplete: %s",
                                  e2.msg);
        }
        if (json_mode) {
                json_t *j =
                        json_pack("{s:s,s:s,s:{s:s,s:s}}", "status",
                                  "internal_error", "reason", e->msg, "error",
                                  "code", "internal_error", "message", e->msg);
                if (gate->ok)
                        json_object_set_new(j, "audit_id",
                                            json_string(gate->id));
                emit_json(j);
        }
        finish_in_background(NULL);
        return EXIT_INTERNAL;
}

/* The "finished" record of res: false when the audit record is
 * incomplete. */
static bool audit_finish(al_result *res, const struct audit_gate *gate) {
        al_error e = {0};
        bool audit_incomplete = false;
        if (gate->ok) {
                /* (a spec refused before the sandbox: started + finished
                 * with status rejected) */
                snprintf(res->audit_id, sizeof(res->audit_id), "%s", gate->id);
                if (al_audit_finished(audit.log, gate->id, res, &e) < 0) {
                        audit_incomplete = true;
                        cli_error("the run happened but its audit record is "
                                  "incomplete (it shows as interrupted): %s",
                                  e.msg);
                }
        } else if (audit.on) {
                /* refused before the gate, and the log failed too */
                audit_incomplete = true;
                cli_error("this refusal could not be audited: %s",
                          gate->err.msg);
        }
        return !audit_incomplete;
}

/* --out-dir: the collected files of res under it (block N's under
 * DIR/N with --markdown); out_dir is where they went. */
static void save_files(const al_result *res, const struct run_opts *o,
                       char out_dir[PATH_MAX]) {
        int r;
        /* --markdown: block N's files under DIR/N/, so that blocks do not
         * overwrite each other's plot.png */
        if (o->out_dir && md.on)
                snprintf(out_dir, PATH_MAX, "%s/%zu", o->out_dir, md.index);
        else if (o->out_dir)
                snprintf(out_dir, PATH_MAX, "%s", o->out_dir);
        if (o->out_dir && res->n_files) {
                if ((md.on && mkdir(o->out_dir, 0755) < 0 && errno != EEXIST) ||
                    (mkdir(out_dir, 0755) < 0 && errno != EEXIST)) {
                        cli_error("--out-dir %s: %s", out_dir, strerror(errno));
                } else {
                        _cleanup_close_ int dfd = open(
                                out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        for (size_t i = 0; dfd >= 0 && i < res->n_files; i++)
                                if ((r = write_out_file(dfd, res->files[i].name,
                                                        &res->files[i])) < 0)
                                        cli_error("cannot write %s/%s: %s",
                                                  out_dir, res->files[i].name,
                                                  strerror(-r));
                }
        }
}

/* The process's start in CLOCK_BOOTTIME ms, from /proc/self/stat's
 * starttime (field 22: clock ticks since boot, taken when the task was
 * forked, before its exec); 0 when unknown. A tick is 1/CLK_TCK s (10 ms
 * on Linux), and the kernel truncates: the start is at most a tick before
 * the true one. */
static double process_start_boot_ms(void) {
        char buf[1024];
        _cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        long tck = sysconf(_SC_CLK_TCK);
        if (!p || tck <= 0)
                return 0;
        /* after ") ": field 3 (state) ... field 22 (starttime) */
        for (int field = 2; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p)
                return 0;
        unsigned long long ticks = strtoull(p + 1, NULL, 10);
        return (double)ticks * 1000.0 / (double)tck;
}

static json_t *ms_json(double v) {
        /* microseconds, as the sandbox's phases */
        return json_real((double)(int64_t)(v * 1000 + 0.5) / 1000);
}

/* --timing: the process's phases added to the result's timing object
 * (jo's), now, just before the result is encoded and printed. */
static void add_process_timing(json_t *jo) {
        json_t *t = json_object_get(jo, "timing");
        if (!json_is_object(t) || !cli_main_clock.mono_ms)
                return;
        double now = al_now_ms(), m0 = cli_main_clock.mono_ms;
        double start = process_start_boot_ms();
        /* CLOCK_BOOTTIME at the run's start, from main's pair of clocks */
        double boot_run0 = cli_main_clock.boot_ms + (pt.run0 - m0);
        const struct {
                const char *k;
                double v;
        } ph[] = {
                /* coarse: a tick (10 ms) of resolution */
                {"startup_ms",
                 start > 0 && boot_run0 > start ? boot_run0 - start : 0},
                {"loader_cpu_ms", cli_main_clock.cpu_ms},
                {"main_ms", pt.run0 - m0},
                {"args_ms", pt.parsed > m0 ? pt.parsed - m0 : 0},
                {"check_ms", pt.check1 - pt.check0},
                {"audit_open_ms", pt.audit_open_ms},
                {"audit_started_ms", pt.audit_start_ms},
                {"audit_finish_ms", pt.audited - pt.run1},
                {"output_ms", now - pt.audited},
                {"main_total_ms", now - m0},
                {"process_ms",
                 start > 0 ? cli_main_clock.boot_ms + (now - m0) - start : 0},
                {"at_main_ms", m0},
                {"at_result_ms", now},
        };
        for (size_t i = 0; i < ARRAY_SIZE(ph); i++)
                json_object_set_new(t, ph[i].k,
                                    ms_json(ph[i].v > 0 ? ph[i].v : 0));
}

/* The result on stdout/stderr: 0, or EXIT_INTERNAL when the JSON could
 * not be made. */
static int print_result(al_result *res, const struct run_opts *o,
                        const char *out_dir) {
        if (json_mode) {
                char *j = al_result_to_json(res, o->pretty && !md.on);
                json_t *jo = j ? json_loads(j, JSON_ALLOW_NUL, NULL) : NULL;
                if (jo && res->has_timing) {
                        /* the process's phases beside the sandbox's */
                        add_process_timing(jo);
                        char *j2 = json_dumps(jo,
                                              JSON_PRESERVE_ORDER |
                                                      (o->pretty && !md.on
                                                               ? JSON_INDENT(2)
                                                               : JSON_COMPACT));
                        if (j2) {
                                free(j);
                                j = j2;
                        }
                }
                if (!md.on && j)
                        puts(j);
                else if (jo)
                        emit_json(json_incref(jo));
                json_decref(jo);
                if (!j || (md.on && !jo)) {
                        free(j);
                        cli_error("cannot encode the result as JSON");
                        return EXIT_INTERNAL;
                }
                free(j);
        } else
                print_human(res, o->quiet, o->out_dir ? out_dir : NULL);
        return 0;
}

/* The code, the program's stdin and the policy into s, then the run: one
 * result, printed (or, for --markdown, added to the array). The exit
 * status of the run or of its refusal. */
static int run_spec(al_spec *s, const struct run_opts *o, int sfd) {
        al_error e = {0};
        int r;
        const char *lang = o->lang;
        audit.spec = s;
        free(audit.findings);
        audit.findings = NULL;
        if (!lang)
                return refuse(EXIT_USAGE, "usage",
                              "--lang is required (see --list-languages)");
        if (al_spec_set_language(s, lang, &e) < 0)
                return refuse(EXIT_USAGE, "unknown_language", "%s", e.msg);
        if (!o->markdown && (r = spec_code(s, o)) != 0)
                return r;
        if (o->stdin_path && (r = spec_stdin(s, o)) != 0)
                return r;
        al_spec_set_timing(s, o->timing);
        if ((r = network_policy(s, o)) != 0)
                return r;
        pt.check0 = al_now_ms();
        if ((r = validate(s, o->policy_file, o->policy_mode)) != 0)
                return r;
        pt.check1 = al_now_ms();
        al_spec_set_cancel_fd(s, sfd);

        /* fail closed: the sandbox waits at the gate until the "started"
         * record is durable (written while it builds its root); if that
         * fails, no code runs */
        struct audit_gate gate = {0};
        /* audited or not, no sandbox may see the state directory (the log
         * is opened by the writer: say so before the run is checked) */
        char dir[PATH_MAX];
        if (al_state_dir_resolve(audit.state, dir, sizeof(dir), &e) == 0)
                al_protect_path(dir, &e);
        if (audit.on) {
                al_spec_set_gate(s, audit_gate, &gate);
                audit_gate_start(&gate);
        }

        al_result *res = NULL;
        pt.run0 = al_now_ms();
        int run_rc = al_run(s, &res, &e);
        pt.run1 = al_now_ms();
        audit_gate_join(&gate); /* when al_run refused before the gate */
        if (run_rc < 0)
                return run_failed(&gate, &e);
        if (audit.findings && !(res->findings_json = strdup(audit.findings)))
                cli_error("out of memory: the findings are not in the result");
        bool audit_incomplete = !audit_finish(res, &gate);
        pt.audited = al_now_ms();
        char out_dir[PATH_MAX];
        save_files(res, o, out_dir);
        if (print_result(res, o, out_dir) != 0) {
                al_result_free(res);
                return EXIT_INTERNAL;
        }
        fflush(stdout);
        int rc = status_exit(res);
        if (res->status == AL_STATUS_KILLED &&
            strncmp(res->reason, "cancelled", 9) == 0)
                rc = EXIT_CANCELLED;
        if (audit_incomplete)
                rc = EXIT_INTERNAL;
        finish_in_background(res);
        al_result_free(res);
        return rc;
}

/* One --markdown run across its blocks. */
struct md_run {
        int argc;
        char **argv;
        const struct run_opts *o;
        int sfd;
        const char *only, *default_lang; /* --lang, --default-lang */
        size_t ran, skipped;
        bool stop; /* --fail-fast: a block did not succeed */
        int rc;    /* of the first block that did not succeed */
};

/* Block i (b): skipped and reported, or run in its own sandbox with the
 * same flags. false: run no more blocks. */
static bool md_block(struct md_run *m, const al_block *b, size_t i) {
        al_error e = {0};
        int r;
        char why[160];
        const char *lang = NULL;
        const char *skip = cli_block_skip_reason(b, m->only, m->default_lang,
                                                 why, sizeof(why), &lang);
        if (!skip && m->stop)
                skip = "not run: an earlier block did not succeed "
                       "(--fail-fast)";
        md.index = i + 1;
        json_decref(md.block);
        md.block = json_pack("{s:I,s:I,s:s?,s:s?,s:b}", "index",
                             (json_int_t)(i + 1), "line", (json_int_t)b->line,
                             "language", skip ? b->lang : lang, "info", b->info,
                             "unterminated", b->unterminated);
        if (skip) {
                m->skipped++;
                if (json_mode)
                        emit_json(json_pack("{s:s,s:s}", "status", "skipped",
                                            "reason", skip));
                else
                        fprintf(stderr,
                                "=== block %zu, line %u: skipped: "
                                "%s\n",
                                i + 1, b->line, skip);
                return true;
        }
        if (!json_mode)
                fprintf(stderr, "=== block %zu, line %u: %s%s\n", i + 1,
                        b->line, lang,
                        b->unterminated ? " (unterminated fence: runs to "
                                          "the end of its container)"
                                        : "");
        _cleanup_(al_spec_free_p) al_spec *s = al_spec_new();
        struct run_opts bo;
        if (!s) {
                m->rc = EXIT_INTERNAL;
                return false;
        }
        /* the same flags for each block, then its code */
        if ((r = parse_opts(m->argc, m->argv, s, &bo, true)) >= 0) {
                m->rc = r;
                return false;
        }
        bo.lang = lang;
        if (al_spec_set_code(s, b->code, b->len, &e) < 0) {
                r = refuse(EXIT_USAGE, "invalid_code", "%s", e.msg);
        } else {
                fflush(stdout);
                r = run_spec(s, &bo, m->sfd);
        }
        m->ran++;
        if (r != EXIT_OK && m->rc == EXIT_OK)
                m->rc = r;
        if (r == EXIT_CANCELLED)
                return false;
        if (r != EXIT_OK && m->o->fail_fast)
                m->stop = true;
        return true;
}

/* --markdown: every fenced block of the reply in its own fresh sandbox,
 * in order; the skipped ones reported with the reason. The exit status is
 * that of the first block that did not succeed (0 when all did). */
static int run_markdown(int argc, char **argv, const struct run_opts *o,
                        int sfd) {
        const char *only = NULL, *default_lang = NULL;
        if (o->code_arg)
                return refuse(EXIT_USAGE, "usage",
                              "--markdown and -c: the code comes from one "
                              "of them");
        if (o->lang && !(only = al_lang_normalise(o->lang)))
                return refuse(EXIT_USAGE, "unknown_language",
                              "--lang: unknown language '%s'", o->lang);
        if (o->default_lang &&
            !(default_lang = al_lang_normalise(o->default_lang)))
                return refuse(EXIT_USAGE, "unknown_language",
                              "--default-lang: unknown language '%s'",
                              o->default_lang);
        const char *name = strcmp(o->markdown, "-") ? o->markdown : "stdin";
        _cleanup_free_ unsigned char *text = NULL;
        size_t len = 0;
        al_error e = {0};
        int r = al_read_all(o->markdown, AL_EXTRACT_MAX_INPUT, &text, &len);
        if (r == -EFBIG)
                return refuse(EXIT_USAGE, "invalid_markdown",
                              "--markdown %s: larger than the %u MiB limit",
                              name, AL_EXTRACT_MAX_INPUT >> 20);
        if (r < 0)
                return refuse(EXIT_USAGE, "invalid_markdown",
                              "cannot read --markdown %s: %s", name,
                              strerror(-r));
        al_block *b = NULL;
        size_t n = 0;
        if (al_extract_blocks((const char *)text, len, 0, &b, &n, &e) < 0)
                return refuse(EXIT_USAGE, "invalid_markdown",
                              "--markdown %s: %s", name, e.msg);

        md.on = true;
        md.results = json_array();
        struct md_run m = {.argc = argc,
                           .argv = argv,
                           .o = o,
                           .sfd = sfd,
                           .only = only,
                           .default_lang = default_lang};
        for (size_t i = 0; i < n; i++)
                if (!md_block(&m, &b[i], i))
                        break;
        al_blocks_free(b, n);
        json_decref(md.block);
        md.block = NULL;
        md.on = false;
        if (json_mode) {
                char *str = json_dumps(
                        md.results,
                        JSON_PRESERVE_ORDER |
                                (o->pretty ? JSON_INDENT(2) : JSON_COMPACT));
                puts(str ? str : "[]");
                free(str);
        } else if (!o->quiet)
                fprintf(stderr, "=== %zu block%s run, %zu skipped\n", m.ran,
                        m.ran == 1 ? "" : "s", m.skipped);
        json_decref(md.results);
        md.results = NULL;
        finish_in_background(NULL); /* the alerts of every block */
        if (!m.ran && m.rc == EXIT_OK) {
                cli_error("%s: no code block to run (%zu skipped)", name,
                          m.skipped);
                return EXIT_USAGE;
        }
        return m.rc;
}

int cmd_run(int argc, char **argv) {
        _cleanup_(al_spec_free_p) al_spec *s = al_spec_new();
        struct run_opts o;
        int r;

        if (!s)
                return EXIT_INTERNAL;
        json_mode = false;
        audit.on = true;
        audit.spec = s;
        audit.who.source = "cli";
        cli_local_actor(audit.actor, sizeof(audit.actor));
        audit.who.actor = audit.actor;
        /* before the others: the flags that decide how errors in any
         * other flag are reported and recorded */
        struct run_parse early = {s, &o, false};
        struct cli_opt t[RUN_NOPTS + 1];
        run_table(t, &early);
        cli_prescan(&(const struct cli_cmd){.opts = t}, argc, argv);
        if (audit.who.user_id && !id_ok(audit.who.user_id)) {
                const char *bad = audit.who.user_id;
                audit.who.user_id = NULL;
                return refuse(EXIT_USAGE, "invalid_argument",
                              "--user-id wants 1 to 128 printable "
                              "characters, got '%.64s'",
                              bad);
        }
        if (audit.who.agent_id && !id_ok(audit.who.agent_id)) {
                const char *bad = audit.who.agent_id;
                audit.who.agent_id = NULL;
                return refuse(EXIT_USAGE, "invalid_argument",
                              "--agent-id wants 1 to 128 printable "
                              "characters, got '%.64s'",
                              bad);
        }
        if ((r = parse_opts(argc, argv, s, &o, false)) >= 0)
                return r;
        pt.parsed = al_now_ms();
        if (o.list)
                return list_languages();

        /* SIGINT/SIGTERM/SIGHUP cancel the run; the library still kills
         * and removes everything before we exit. */
        _cleanup_close_ int sfd = al_stop_signals();

        if (o.markdown)
                return run_markdown(argc, argv, &o, sfd);
        if (o.default_lang || o.fail_fast)
                return refuse(EXIT_USAGE, "usage",
                              "--default-lang and --fail-fast go with "
                              "--markdown");
        return run_spec(s, &o, sfd);
}
