/* SPDX-License-Identifier: MIT */
/* airlock audit: list, show, export, verify, head, prune, stats. */
#include <errno.h>
#include <getopt.h> /* optind */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "cli.h"
#include "macro.h"
#include "util.h"

/* --help: the usage, the table's lines (cmd_audit), the notes. */
/* clang-format off */
static const char usage[] =
"Usage: airlock audit COMMAND [OPTIONS]\n"
"\n"
"The tamper-evident record of every execution (see airlock-audit(1)).\n"
"\n"
"Commands:\n"
"  list              executions (runs, sessions, their cells), newest first\n"
"                    (default: the last 50); ID* is a session, PREFIX.N\n"
"                    its cell N\n"
"  show ID           one execution with its chain records (ID or a prefix;\n"
"                    a session's with its cells and files; SESSION.N a cell)\n"
"  export            every matching execution: --format jsonl (default) or csv\n"
"                    (formula cells get a leading ')\n"
"  verify            check the schema and the whole chain; exit 1 at the\n"
"                    first bad record\n"
"  head              print the chain head as SEQ:HASH, to anchor elsewhere\n"
"  prune --before T  remove older records, keeping a checkpoint\n"
"  stats             counts by status, language, source, actor, flag\n"
"\n"
"Options:\n";
static const char notes[] =
"  -h, --help          this help\n"
"\n"
"Exit status: 0 ok; 1 verify found tampering; 2 usage; 8 the store could\n"
"not be read.\n";
/* clang-format on */

struct audit_args {
        const char *state, *format, *expect, *before;
        bool json, limit_set;
        char since[32], until[32];
        al_audit_filter f;
};

static void print_json(json_t *o, bool pretty) {
        char *s = json_dumps(o, (pretty ? JSON_INDENT(2) : JSON_COMPACT) |
                                        JSON_PRESERVE_ORDER);
        if (s)
                puts(s);
        free(s);
}

/* Text from the log made safe for a terminal (al_term_sanitize): what is
 * shown is what is stored, never a control sequence acting on the
 * screen. A ring of buffers so that one printf can take several. */
#define SAFE_RING 24 /* strings one printf may hold at once */
static const char *safe_n(const char *s, unsigned flags) {
        static char *ring[SAFE_RING];
        static unsigned next;
        if (!s)
                return "";
        char *t = al_term_sanitize(s, strlen(s), flags);
        free(ring[next]);
        ring[next] = t;
        next = (next + 1) % SAFE_RING;
        return t ? t : "?";
}

static const char *safe(const char *s) {
        return safe_n(s, 0);
}

static const char *jget(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "-";
}

/* jget, safe for a terminal: for the human output. */
static const char *sget(json_t *o, const char *key) {
        return safe(jget(o, key));
}

/* A text field of detail, safe for a terminal: the string, or for one
 * over its cap {bytes, sha256, preview} "PREVIEW... (N bytes, sha256 H)". */
static const char *stext(json_t *v) {
        if (json_is_string(v))
                return safe(json_string_value(v));
        if (!json_is_object(v))
                return "-";
        char buf[8192];
        snprintf(buf, sizeof(buf), "%s... (%lld bytes, sha256 %s)",
                 jget(v, "preview"),
                 (long long)json_integer_value(json_object_get(v, "bytes")),
                 jget(v, "sha256"));
        return safe(buf);
}

static json_int_t jint(json_t *o, const char *path1, const char *path2) {
        json_t *v = json_object_get(o, path1);
        if (path2)
                v = json_object_get(v, path2);
        return json_integer_value(v);
}

/* --- list ------------------------------------------------------------- */

static int list_row(json_t *e, void *ctx) {
        bool json = *(bool *)ctx;
        if (json) {
                json_t *slim = json_deep_copy(e);
                /* the list is a summary: the code itself is in show */
                json_t *code = json_object_get(json_object_get(slim, "request"),
                                               "code");
                json_object_del(code, "text");
                json_object_del(code, "base64");
                print_json(slim, false);
                json_decref(slim);
                return 0;
        }
        char ts[20];
        snprintf(ts, sizeof(ts), "%s", jget(e, "started_at"));
        ts[10] = ts[10] ? ' ' : '\0';
        json_t *res = json_object_get(e, "result");
        char wall[24] = "-";
        if (json_is_object(res))
                snprintf(wall, sizeof(wall), "%lld",
                         (long long)jint(res, "wall_ms", NULL));
        char flags[512] = "";
        size_t len = 0, i;
        json_t *v;
        json_array_foreach(json_object_get(e, "flags"), i, v) {
                if (len < sizeof(flags))
                        len += (size_t)snprintf(flags + len,
                                                sizeof(flags) - len, "%s%s",
                                                i ? "," : "",
                                                json_string_value(v));
        }
        /* a cell as SESSION-PREFIX.N (what show takes), a session with a
         * trailing '*' */
        const char *id = jget(e, "id"), *dot = strchr(id, '.');
        const char *kind = jget(e, "kind");
        char shown[48];
        if (dot)
                snprintf(shown, sizeof(shown), "%.8s%s", id, dot);
        else
                snprintf(shown, sizeof(shown), "%.12s%s", id,
                         strcmp(kind, "session") ? "" : "*");
        printf("%-12s  %-19s  %-6s  %-16.16s  %-7.7s  %-14s  %7s  %s\n",
               safe(shown), safe(ts), sget(e, "source"), sget(e, "actor"),
               sget(e, "language"), sget(e, "status"), wall, safe(flags));
        return 0;
}

static int do_list(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        if (!o->limit_set)
                o->f.limit = 50;
        if (!o->json)
                printf("%-12s  %-19s  %-6s  %-16s  %-7s  %-14s  %7s  %s\n",
                       "ID", "STARTED (UTC)", "SOURCE", "ACTOR", "LANG",
                       "STATUS", "WALL_MS", "FLAGS");
        if (al_audit_query(a, &o->f, list_row, &o->json, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        return EXIT_OK;
}

/* --- show ------------------------------------------------------------- */

static void show_blob(const char *name, json_t *b) {
        if (!json_is_object(b))
                return;
        printf("%s: %lld bytes, sha256 %s%s\n", name,
               (long long)jint(b, "bytes", NULL), sget(b, "sha256"),
               json_is_true(json_object_get(b, "truncated")) ? ", truncated"
                                                               : "");
        const char *p = json_string_value(json_object_get(b, "preview"));
        if (p && *p) {
                p = safe_n(p, AL_TERM_KEEP_NEWLINES);
                printf("  | %s%s", p, p[strlen(p) - 1] == '\n' ? "" : "\n");
        }
}

static int do_show(al_audit *a, struct audit_args *o, const char *id) {
        al_error e = {0};
        json_t *x = NULL;
        int r = al_audit_get(a, id, &x, &e);
        if (r < 0) {
                cli_error("%s", e.msg);
                return r == -ENOENT || r == -EINVAL || r == -EEXIST
                               ? EXIT_USAGE
                               : EXIT_INTERNAL;
        }
        if (o->json) {
                print_json(x, true);
                json_decref(x);
                return EXIT_OK;
        }
        json_t *req = json_object_get(x, "request");
        json_t *res = json_object_get(x, "result");
        printf("id:        %s\nstatus:    %s\nstarted:   %s\nfinished:  %s\n"
               "source:    %s\nactor:     %s\nuser_id:   %s\nagent_id:  %s\n"
               "language:  %s\n",
               sget(x, "id"), sget(x, "status"), sget(x, "started_at"),
               sget(x, "finished_at"), sget(x, "source"), sget(x, "actor"),
               sget(x, "user_id"), sget(x, "agent_id"), sget(x, "language"));
        const char *kind = jget(x, "kind");
        if (strcmp(kind, "run"))
                printf("kind:      %s\nsession:   %s\n", safe(kind),
                       sget(x, "session_id"));
        if (!strcmp(kind, "session")) {
                printf("idle_timeout_s: %lld  max_lifetime_s: %lld  "
                       "max_cells: %lld\n",
                       (long long)jint(req, "idle_timeout_s", NULL),
                       (long long)jint(req, "max_lifetime_s", NULL),
                       (long long)jint(req, "max_cells", NULL));
                if (json_is_object(res))
                        printf("ended:     %s, %lld cells, wall_ms %lld\n",
                               sget(res, "reason"),
                               (long long)jint(res, "cells", NULL),
                               (long long)jint(res, "wall_ms", NULL));
                size_t i;
                json_t *c;
                json_array_foreach(json_object_get(x, "cells"), i, c) {
                        json_t *cr = json_object_get(c, "result");
                        json_t *cc = json_object_get(
                                json_object_get(c, "request"), "code");
                        printf("cell %-5lld %-12s %7lld ms  sha256 %.16s  "
                               "%s\n",
                               (long long)jint(c, "seq", NULL),
                               sget(c, "status"),
                               (long long)jint(cr, "wall_ms", NULL),
                               sget(cc, "sha256"),
                               safe(jget(cr, "error_name")));
                }
                if (json_is_true(json_object_get(x, "cells_more")))
                        printf("(older cells: airlock audit list --session "
                               "%s)\n",
                               sget(x, "session_id"));
                json_array_foreach(json_object_get(x, "files"), i, c)
                        printf("%-11s %s  %s  %lld bytes  sha256 %s\n",
                               sget(c, "kind"), sget(c, "ts"),
                               stext(json_object_get(c, "path")),
                               (long long)jint(c, "bytes", NULL),
                               sget(c, "sha256"));
        }
        json_t *fl = json_object_get(x, "flags");
        if (json_array_size(fl)) {
                printf("flags:    ");
                size_t i;
                json_t *v;
                json_array_foreach(fl, i, v)
                        printf(" %s", safe(json_string_value(v)));
                printf("\n");
        }
        json_t *err = json_object_get(x, "error");
        if (json_is_object(err))
                printf("error:     %s: %s\n",
                       stext(json_object_get(err, "code")),
                       stext(json_object_get(err, "message")));
        show_blob("code", json_object_get(req, "code"));
        json_t *args = json_object_get(req, "args");
        if (json_array_size(args)) {
                size_t i;
                json_t *v;
                printf("args:      %lld\n",
                       json_is_integer(json_object_get(req, "args_count"))
                               ? (long long)jint(req, "args_count", NULL)
                               : (long long)json_array_size(args));
                json_array_foreach(args, i, v) {
                        if (json_is_object(v))
                                printf("  [%zu] %lld bytes, sha256 %s, "
                                       "truncated: %s\n",
                                       i, (long long)jint(v, "bytes", NULL),
                                       sget(v, "sha256"),
                                       sget(v, "preview"));
                        else
                                printf("  [%zu] %s\n", i, stext(v));
                }
        }
        if (json_is_object(res) && !strcmp(kind, "cell")) {
                char count[24] = "-";
                json_t *ec = json_object_get(res, "execution_count");
                if (json_is_integer(ec))
                        snprintf(count, sizeof(count), "%lld",
                                 (long long)json_integer_value(ec));
                printf("execution_count: %s  wall_ms: %lld  cpu_ms: %lld  "
                       "error: %s\n",
                       count,
                       (long long)jint(res, "wall_ms", NULL),
                       (long long)jint(res, "cpu_ms", NULL),
                       stext(json_object_get(res, "error_name")));
                show_blob("stdout", json_object_get(res, "stdout"));
                show_blob("stderr", json_object_get(res, "stderr"));
        } else if (json_is_object(res) && !strcmp(kind, "run")) {
                printf("exit_code: %lld  signal: %lld  wall_ms: %lld  "
                       "cpu_ms: %lld  memory_peak: %lld bytes\n",
                       (long long)jint(res, "exit_code", NULL),
                       (long long)jint(res, "signal", NULL),
                       (long long)jint(res, "wall_ms", NULL),
                       (long long)jint(res, "cpu_ms", NULL),
                       (long long)jint(res, "memory_peak_bytes", NULL));
                const char *reason = jget(res, "reason");
                if (*reason && strcmp(reason, "-"))
                        printf("reason:    %s\n", safe(reason));
                show_blob("stdout", json_object_get(res, "stdout"));
                show_blob("stderr", json_object_get(res, "stderr"));
        }
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(x, "records"), i, rec)
                printf("record %lld %-8s %s hash %s%s%s\n",
                       (long long)jint(rec, "seq", NULL), sget(rec, "kind"),
                       sget(rec, "ts"), sget(rec, "hash"),
                       strcmp(jget(rec, "id"), jget(x, "id")) ? " " : "",
                       strcmp(jget(rec, "id"), jget(x, "id"))
                               ? sget(rec, "id")
                               : "");
        json_decref(x);
        return EXIT_OK;
}

/* --- export ----------------------------------------------------------- */

/* A CSV field: quoted when it holds a comma, quote or line break. A text
 * cell has its control characters escaped and, when it starts with = + -
 * @ (or a tab or CR), a ' in front, so that a spreadsheet shows it as
 * text instead of evaluating a formula (OWASP, "CSV Injection"). */
static void csv_field(const char *s, bool text, bool last) {
        bool formula = false;
        if (text) {
                formula = *s && strchr("=+-@\t\r", *s);
                s = safe(s);
        }
        if (strpbrk(s, ",\"\r\n")) {
                putchar('"');
                if (formula)
                        putchar('\'');
                for (; *s; s++) {
                        if (*s == '"')
                                putchar('"');
                        putchar(*s);
                }
                putchar('"');
        } else {
                if (formula)
                        putchar('\'');
                fputs(s, stdout);
        }
        putchar(last ? '\n' : ',');
}

static int export_row(json_t *e, void *ctx) {
        const char *fmt = ctx;
        if (!strcmp(fmt, "jsonl")) {
                print_json(e, false);
                return 0;
        }
        json_t *res = json_object_get(e, "result");
        json_t *code = json_object_get(json_object_get(e, "request"), "code");
        char num[5][24] = {"", "", "", "", ""};
        if (json_is_object(res)) {
                snprintf(num[0], 24, "%lld",
                         (long long)jint(res, "exit_code", NULL));
                snprintf(num[1], 24, "%lld",
                         (long long)jint(res, "signal", NULL));
                snprintf(num[2], 24, "%lld",
                         (long long)jint(res, "wall_ms", NULL));
                snprintf(num[3], 24, "%lld",
                         (long long)jint(res, "cpu_ms", NULL));
                snprintf(num[4], 24, "%lld",
                         (long long)jint(res, "memory_peak_bytes", NULL));
        }
        char flags[1024] = "";
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(e, "flags"), i, v) {
                if (i)
                        strncat(flags, ";", sizeof(flags) - strlen(flags) - 1);
                strncat(flags, json_string_value(v),
                        sizeof(flags) - strlen(flags) - 1);
        }
        const char *cols[] = {
                jget(e, "id"),         jget(e, "started_at"),
                jget(e, "finished_at"), jget(e, "source"),
                jget(e, "actor"),      jget(e, "user_id"),
                jget(e, "agent_id"),   jget(e, "language"),
                jget(e, "status"),     num[0],
                num[1],                num[2],
                num[3],                num[4],
                json_is_object(code) ? jget(code, "sha256") : "",
                flags,
        };
        for (size_t k = 0; k < ARRAY_SIZE(cols); k++)
                csv_field(strcmp(cols[k], "-") ? cols[k] : "",
                          k < 9 || k >= 14, /* numbers are ours */
                          k + 1 == ARRAY_SIZE(cols));
        return 0;
}

static int do_export(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        const char *fmt = o->format ? o->format : "jsonl";
        if (strcmp(fmt, "jsonl") && strcmp(fmt, "csv")) {
                cli_error("--format wants jsonl or csv, got '%s'", fmt);
                return EXIT_USAGE;
        }
        if (!strcmp(fmt, "csv"))
                puts("id,started_at,finished_at,source,actor,user_id,agent_id,"
                     "language,status,exit_code,signal,wall_ms,cpu_ms,"
                     "memory_peak_bytes,code_sha256,flags");
        if (al_audit_query(a, &o->f, export_row, (void *)fmt, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        return EXIT_OK;
}

/* --- verify, head, prune, stats --------------------------------------- */

static int do_verify(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        al_audit_verify_report rep;
        double t0 = al_now_ms();
        int r = al_audit_verify(a, o->expect, &rep, &e);
        double ms = al_now_ms() - t0;
        if (r < 0) {
                cli_error("%s", e.msg);
                return r == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
        }
        if (o->json) {
                json_t *j = json_pack(
                        "{s:b,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:f}",
                        "ok",
                        rep.ok, "records", (json_int_t)rep.records,
                        "first_seq", (json_int_t)rep.first_seq, "last_seq",
                        (json_int_t)rep.last_seq, "head", rep.head,
                        "executions", (json_int_t)rep.executions, "refused",
                        (json_int_t)rep.refused, "interrupted",
                        (json_int_t)rep.interrupted, "pruned",
                        (json_int_t)rep.pruned, "sessions",
                        (json_int_t)rep.sessions, "cells",
                        (json_int_t)rep.cells, "ms", ms);
                if (!rep.ok) {
                        json_object_set_new(j, "bad_seq",
                                            json_integer((json_int_t)
                                                                 rep.bad_seq));
                        json_object_set_new(j, "bad_id",
                                            json_string(rep.bad_id));
                        json_object_set_new(j, "problem",
                                            json_string(rep.problem));
                        json_object_set_new(j, "message",
                                            json_string(rep.message));
                }
                print_json(j, false);
                json_decref(j);
        } else if (rep.ok) {
                printf("OK: %llu records (%llu..%llu) verified in %.1f ms; "
                       "%llu executions, %llu refused, %llu interrupted",
                       (unsigned long long)rep.records,
                       (unsigned long long)rep.first_seq,
                       (unsigned long long)rep.last_seq, ms,
                       (unsigned long long)rep.executions,
                       (unsigned long long)rep.refused,
                       (unsigned long long)rep.interrupted);
                if (rep.sessions)
                        printf("; %llu sessions, %llu cells",
                               (unsigned long long)rep.sessions,
                               (unsigned long long)rep.cells);
                if (rep.pruned)
                        printf("; %llu pruned before",
                               (unsigned long long)rep.pruned);
                printf("\nhead: %llu:%s\n", (unsigned long long)rep.last_seq,
                       rep.head[0] ? rep.head : "(empty)");
        } else if (!rep.bad_seq)
                printf("FAILED: %s: %s\n", rep.problem, safe(rep.message));
        else
                printf("FAILED at record %llu: %s: %s\n",
                       (unsigned long long)rep.bad_seq, rep.problem,
                       safe(rep.message));
        return rep.ok ? EXIT_OK : EXIT_RUN_ERROR;
}

static int do_head(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        uint64_t seq;
        char hash[AL_AUDIT_HASH_SIZE];
        if (al_audit_head(a, &seq, hash, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        if (o->json) {
                json_t *j = json_pack("{s:I,s:s}", "seq", (json_int_t)seq,
                                      "hash", hash);
                print_json(j, false);
                json_decref(j);
        } else
                printf("%llu:%s\n", (unsigned long long)seq, safe(hash));
        return EXIT_OK;
}

static int do_prune(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        if (!o->before) {
                cli_error("prune wants --before T (e.g. 2026-01-01 or 90d)");
                return EXIT_USAGE;
        }
        uint64_t n;
        int r = al_audit_prune(a, o->before, &n, &e);
        if (r < 0) {
                cli_error("%s", e.msg);
                return r == -EINVAL || r == -ERANGE ? EXIT_USAGE
                                                    : EXIT_INTERNAL;
        }
        if (o->json)
                printf("{\"pruned\":%llu}\n", (unsigned long long)n);
        else
                printf("pruned %llu records\n", (unsigned long long)n);
        return EXIT_OK;
}

static int do_stats(al_audit *a, struct audit_args *o) {
        al_error e = {0};
        json_t *st = NULL;
        if (al_audit_stats(a, &o->f, &st, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        if (o->json) {
                print_json(st, false);
                json_decref(st);
                return EXIT_OK;
        }
        printf("executions: %lld (suspicious %lld)\nrecords:    %lld, head "
               "%s\nfirst:      %s\nlast:       %s\nstore:      %s, %lld "
               "bytes, %s\n",
               (long long)jint(st, "executions", NULL),
               (long long)jint(st, "suspicious", NULL),
               (long long)jint(st, "records", NULL), sget(st, "head"),
               sget(st, "first"), sget(st, "last"), sget(st, "store"),
               (long long)jint(st, "bytes", NULL), sget(st, "state_dir"));
        const char *groups[] = {"by_status", "by_language", "by_source",
                                "by_actor", "by_flag"};
        for (size_t g = 0; g < ARRAY_SIZE(groups); g++) {
                json_t *m = json_object_get(st, groups[g]);
                if (!json_object_size(m))
                        continue;
                printf("%s:", groups[g] + 3);
                const char *k;
                json_t *v;
                json_object_foreach(m, k, v) printf(
                        " %s=%lld", safe(k), (long long)json_integer_value(v));
                printf("\n");
        }
        json_decref(st);
        return EXIT_OK;
}

/* --since, --until: a time as the filter wants it. */
static int set_time(const struct cli_opt *o, const char *arg) {
        struct audit_args *x = o->ctx;
        al_error e = {0};
        char *out = o->id ? x->until : x->since;
        if (al_audit_parse_time(arg, out, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_USAGE;
        }
        if (o->id)
                x->f.until = x->until;
        else
                x->f.since = x->since;
        return 0;
}

static int set_session(const struct cli_opt *o, const char *arg) {
        struct audit_args *x = o->ctx;
        if (strlen(arg) != 32 || strspn(arg, "0123456789abcdef") != 32) {
                cli_error("--session wants a session id (32 lowercase hex "
                          "digits), got '%s'",
                          safe(arg));
                return EXIT_USAGE;
        }
        x->f.session = arg;
        return 0;
}

static int set_limit(const struct cli_opt *o, const char *arg) {
        struct audit_args *x = o->ctx;
        if (al_parse_u64(arg, &x->f.limit) < 0) {
                cli_error("--limit wants a number, got '%s'", arg);
                return EXIT_USAGE;
        }
        x->limit_set = true;
        return 0;
}

int cmd_audit(int argc, char **argv) {
        struct audit_args o = {0};
        al_error e = {0};
        /* clang-format off */
        const struct cli_opt opts[] = {
                CLI_OPT_STRING("state", &o.state,
"  --state DIR         state directory (default: $AIRLOCK_STATE, else\n"
"                      /var/lib/airlock for root, ~/.local/share/airlock)\n"),
                CLI_OPT_FLAG("json", &o.json,
"  --json              machine-readable output\n"),
                CLI_OPT_CALL("since", set_time, &o, 0,
"  --since T, --until T  time range: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC)\n"
"                      or an age: 30m, 2h, 7d\n"),
                CLI_OPT_CALL("until", set_time, &o, 1, NULL),
                CLI_OPT_STRING("actor", &o.f.actor,
"  --actor A, --status S, --source S, --language L   exact matches; status\n"
"                      may be interrupted or running\n"),
                CLI_OPT_STRING("status", &o.f.status, NULL),
                CLI_OPT_STRING("source", &o.f.source, NULL),
                CLI_OPT_STRING("language", &o.f.language, NULL),
                CLI_OPT_CALL("session", set_session, &o, 0,
"  --session ID        one session (its 32-digit id): the session and its\n"
"                      cells\n"),
                CLI_OPT_FLAG("suspicious", &o.f.suspicious,
"  --suspicious        only flagged executions\n"),
                CLI_OPT_FLAG("interrupted", &o.f.interrupted,
"  --interrupted       only executions that never finished\n"),
                CLI_OPT_CALL("limit", set_limit, &o, 0,
"  --limit N           at most N (list: 50; 0 = all)\n"),
                CLI_OPT_STRING("format", &o.format,
"  --format jsonl|csv  export format\n"),
                CLI_OPT_STRING("expect-head", &o.expect,
"  --expect-head H     verify: the chain must still contain H (SEQ:HASH or\n"
"                      HASH from 'airlock audit head'), else it was truncated\n"),
                CLI_OPT_STRING("before", &o.before,
"  --before T          prune: records older than T\n"),
                CLI_END};
        /* clang-format on */
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
        if (optind >= argc) {
                cli_help(&cmd, stderr);
                return EXIT_USAGE;
        }
        const char *sub = argv[optind++];
        static const char *const subs[] = {"list",  "show",  "export",
                                           "verify", "head", "prune",
                                           "stats"};
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
                known |= !strcmp(sub, subs[i]);
        if (!known) {
                cli_error("unknown audit command '%s' (list, show, export, "
                          "verify, head, prune, stats)",
                          sub);
                return EXIT_USAGE;
        }
        const char *id = NULL;
        if (!strcmp(sub, "show")) {
                if (optind >= argc) {
                        cli_error("show wants an execution ID");
                        return EXIT_USAGE;
                }
                id = argv[optind++];
        }
        if (optind < argc) {
                cli_error("unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        al_audit *a = NULL;
        if (al_audit_open(o.state, &a, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        int rc;
        if (!strcmp(sub, "list"))
                rc = do_list(a, &o);
        else if (!strcmp(sub, "show"))
                rc = do_show(a, &o, id);
        else if (!strcmp(sub, "export"))
                rc = do_export(a, &o);
        else if (!strcmp(sub, "verify"))
                rc = do_verify(a, &o);
        else if (!strcmp(sub, "head"))
                rc = do_head(a, &o);
        else if (!strcmp(sub, "prune"))
                rc = do_prune(a, &o);
        else
                rc = do_stats(a, &o);
        al_audit_close(a);
        fflush(stdout);
        return rc;
}
