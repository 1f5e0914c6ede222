/* SPDX-License-Identifier: MIT */
/* The tools a model is offered, run_code, check_code and list_languages:
 * their JSON Schemas and their results (text for the model, structured
 * content, images), on top of the service. MCP (src/serve/mcp.c) offers
 * them over JSON-RPC, the agent (src/agent/) as functions of a chat
 * completion; a run is validated, limited and audited exactly like one
 * over POST /v1/execute. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "json.h"
#include "service.h"
#include "util.h"

/* Files a run returns: images as image content, the rest listed. */
static const char *const COLLECT[] = {"*.png", "*.jpg",  "*.jpeg", "*.gif",
                                      "*.svg", "*.webp", "out/*",  NULL};
static const char *const IMAGE_MIMES[] = {"image/png",  "image/jpeg",
                                          "image/gif",  "image/svg+xml",
                                          "image/webp", NULL};
/* Most bytes of stdout or stderr quoted in a text block (the whole of both
 * is in structuredContent). */
#define TEXT_QUOTE (64u << 10)

/* --- tools --------------------------------------------------------------- */

static json_t *limits_schema(void) {
        static const char *const L[][2] = {
                {"wall_ms", "wall-clock limit, ms"},
                {"cpu_ms", "CPU time limit, ms"},
                {"memory_mb", "memory limit, MiB"},
                {"pids", "processes and threads"},
                {"disk_mb", "workspace size, MiB"},
                {"output_bytes", "cap of stdout and of stderr, bytes"},
                {"open_files", "open file descriptors"},
        };
        json_t *p = json_object();
        for (size_t i = 0; i < sizeof(L) / sizeof(L[0]); i++)
                json_object_set_new(p, L[i][0],
                                    json_pack("{s:s,s:i,s:s}", "type",
                                              "integer", "minimum", 1,
                                              "description", L[i][1]));
        return json_pack("{s:s,s:o,s:b,s:s}", "type", "object", "properties", p,
                         "additionalProperties", 0, "description",
                         "limits for this run; absent ones take the "
                         "server's defaults");
}

static json_t *language_schema(void) {
        json_t *names = json_array();
        for (size_t i = 0; i < al_languages_count(); i++)
                json_array_append_new(names, json_string(al_language_name(i)));
        return json_pack("{s:s,s:o,s:s}", "type", "string", "enum", names,
                         "description",
                         "the language profile (list_languages tells which "
                         "are installed)");
}

json_t *srv_api_tools(void) {
        json_t *run = json_pack(
                "{s:s,s:s,s:s,s:{s:s,s:{s:o,s:{s:s,s:s},s:{s:s,s:s},s:{s:s,"
                "s:{s:s,s:{s:{s:s},s:{s:s},s:{s:s}},s:[s],s:b},s:i},s:o},s:[ss]"
                ","
                "s:b},s:{s:b,s:b,s:b}}",
                "name", "run_code", "title", "Run code in a sandbox",
                "description",
                "Run a program in a fresh, isolated sandbox (no network, "
                "read-only system, its own /workspace, every limit enforced) "
                "and return its status, stdout, stderr and resource use. "
                "Images the program saves in /workspace (png, jpeg, gif, "
                "svg, webp) come back as image content; other files saved "
                "under out/ are listed. Nothing persists between calls.",
                "inputSchema", "type", "object", "properties", "language",
                language_schema(), "code", "type", "string", "description",
                "the program's source", "stdin", "type", "string",
                "description", "standard input", "files", "type", "array",
                "items", "type", "object", "properties", "path", "type",
                "string", "content", "type", "string", "content_base64", "type",
                "string", "required", "path", "additionalProperties", 0,
                "maxItems", 256, "limits", limits_schema(), "required",
                "language", "code", "additionalProperties", 0, "annotations",
                "readOnlyHint", 0, "destructiveHint", 0, "openWorldHint", 0);
        json_t *check = json_pack(
                "{s:s,s:s,s:s,s:{s:s,s:{s:o,s:{s:s,s:s}},s:[ss],s:b},s:{s:b,"
                "s:b}}",
                "name", "check_code", "title", "Check code statically",
                "description",
                "Parse a snippet (python, node or bash) and report what the "
                "server's static-validation policy finds in it (rule, "
                "severity, line, column, message), without running it.",
                "inputSchema", "type", "object", "properties", "language",
                language_schema(), "code", "type", "string", "description",
                "the snippet", "required", "language", "code",
                "additionalProperties", 0, "annotations", "readOnlyHint", 1,
                "openWorldHint", 0);
        json_t *langs = json_pack(
                "{s:s,s:s,s:s,s:{s:s,s:{},s:b},s:{s:b,s:b}}", "name",
                "list_languages", "title", "List languages", "description",
                "The languages run_code accepts and whether each is "
                "installed on this host.",
                "inputSchema", "type", "object", "properties",
                "additionalProperties", 0, "annotations", "readOnlyHint", 1,
                "openWorldHint", 0);
        return json_pack("{s:[ooo]}", "tools", run, check, langs);
}

static json_t *tool_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

static json_t *tool_error(const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:[{s:s,s:o}],s:b}", "content", "type", "text",
                         "text", al_jstr(msg), "isError", 1);
}

/* Every key of args is one of allowed: NULL, or the first that is not. */
static const char *unknown_key(json_t *args, const char *const *allowed) {
        const char *k;
        json_t *v;
        json_object_foreach(args, k, v) {
                const char *const *a = allowed;
                while (*a && strcmp(*a, k))
                        a++;
                if (!*a)
                        return k;
        }
        return NULL;
}

static bool is_image(const char *mime) {
        for (const char *const *m = IMAGE_MIMES; *m; m++)
                if (mime && !strcmp(mime, *m))
                        return true;
        return false;
}

/* Write s under a label, bounded to TEXT_QUOTE bytes on a UTF-8 boundary. */
static void quote(FILE *f, const char *label, const char *s) {
        size_t len = s ? strlen(s) : 0, cut = len;
        if (cut > TEXT_QUOTE) {
                cut = TEXT_QUOTE;
                while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80)
                        cut--;
        }
        fprintf(f, "--- %s%s\n", label, len ? "" : " (empty)");
        if (cut)
                fprintf(f, "%.*s%s", (int)cut, s,
                        s[cut - 1] == '\n' ? "" : "\n");
        if (cut < len)
                fprintf(f,
                        "[... %zu more bytes; the whole of it is in "
                        "structuredContent]\n",
                        len - cut);
}

/* The MCP result of a finished run (the /v1/execute result object). */
static json_t *run_result(json_t *r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        const char *reason = json_string_value(json_object_get(r, "reason"));
        json_t *content = json_array(), *files = json_object_get(r, "files");
        char head[512], exit_s[48];
        json_t *ec = json_object_get(r, "exit_code");
        long long sig = json_integer_value(json_object_get(r, "signal"));
        if (json_is_integer(ec))
                snprintf(exit_s, sizeof(exit_s), "exit %lld",
                         (long long)json_integer_value(ec));
        else if (sig)
                snprintf(exit_s, sizeof(exit_s), "killed by signal %lld", sig);
        else
                snprintf(exit_s, sizeof(exit_s), "no exit status");
        snprintf(head, sizeof(head),
                 "status: %s%s%s | %s | wall %lld ms | cpu %lld ms | "
                 "memory %.1f MiB | audit id %s\n",
                 st ? st : "?", reason && *reason ? " - " : "",
                 reason ? reason : "", exit_s,
                 (long long)json_integer_value(json_object_get(r, "wall_ms")),
                 (long long)json_integer_value(json_object_get(r, "cpu_ms")),
                 (double)json_integer_value(
                         json_object_get(r, "memory_peak_bytes")) /
                         (1024.0 * 1024.0),
                 json_string_value(json_object_get(r, "id")) ?: "-");
        char *text = NULL;
        size_t tn = 0;
        FILE *f = open_memstream(&text, &tn);
        if (f) {
                fputs(head, f);
                quote(f, "stdout",
                      json_string_value(json_object_get(r, "stdout")));
                quote(f, "stderr",
                      json_string_value(json_object_get(r, "stderr")));
                size_t i;
                json_t *x;
                json_array_foreach(files, i, x)
                        fprintf(f, "--- file %s (%s, %lld bytes)\n",
                                json_string_value(json_object_get(x, "name")),
                                json_string_value(json_object_get(x, "mime")),
                                (long long)json_integer_value(
                                        json_object_get(x, "size")));
                fclose(f);
        }
        json_array_append_new(content,
                              json_pack("{s:s,s:o}", "type", "text", "text",
                                        al_jstr(text ? text : head)));
        free(text);
        /* images as image content; structuredContent lists every file
         * without its bytes */
        json_t *listed = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(files, i, x) {
                const char *mime =
                        json_string_value(json_object_get(x, "mime"));
                if (is_image(mime))
                        json_array_append_new(
                                content,
                                json_pack("{s:s,s:O,s:s}", "type", "image",
                                          "data",
                                          json_object_get(x, "content_base64"),
                                          "mimeType", mime));
                json_array_append_new(
                        listed, json_pack("{s:O,s:O,s:O}", "name",
                                          json_object_get(x, "name"), "mime",
                                          json_object_get(x, "mime"), "size",
                                          json_object_get(x, "size")));
        }
        json_t *sc = json_copy(r); /* shallow: "files" is replaced */
        json_object_set_new(sc, "files", listed);
        json_object_del(sc, "protections");
        bool ok = st && !strcmp(st, "ok");
        return json_pack("{s:o,s:o,s:b}", "content", content,
                         "structuredContent", sc, "isError", !ok);
}

/* One line per finding: "- rule [severity] line L:C snippet: message". */
static void put_findings(FILE *f, json_t *findings) {
        size_t i;
        json_t *x;
        json_array_foreach(findings, i, x) fprintf(
                f, "- %s [%s] line %lld:%lld %s: %s\n",
                json_string_value(json_object_get(x, "rule")),
                json_string_value(json_object_get(x, "severity")),
                (long long)json_integer_value(json_object_get(x, "line")),
                (long long)json_integer_value(json_object_get(x, "column")),
                json_string_value(json_object_get(x, "snippet")),
                json_string_value(json_object_get(x, "message")));
}

/* A tool result of one text block (text: malloc'ed, freed here) and
 * structured content (a reference, stolen). */
static json_t *text_result(char *text, json_t *structured, bool is_error) {
        json_t *o =
                json_pack("{s:[{s:s,s:o}],s:o,s:b}", "content", "type", "text",
                          "text", al_jstr(text ? text : ""),
                          "structuredContent", structured, "isError", is_error);
        free(text);
        return o;
}

/* The MCP result of a refused run (the /v1/execute error object). */
static json_t *refusal_result(json_t *e, unsigned status) {
        json_t *err = json_object_get(e, "error");
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *field = json_string_value(json_object_get(err, "field"));
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        if (f) {
                fprintf(f, "refused (%s, HTTP %u)%s%s: %s\n",
                        code ? code : "error", status, field ? " at " : "",
                        field ? field : "", msg ? msg : "");
                put_findings(f, json_object_get(e, "findings"));
                if (json_object_get(e, "id"))
                        fprintf(f, "audit id %s\n",
                                json_string_value(json_object_get(e, "id")));
                fclose(f);
        }
        return text_result(text, json_incref(e), true);
}

static json_t *run_code(const struct srv_request *base, json_t *args,
                        al_result **leftover) {
        static const char *const ALLOWED[] = {"language", "code",   "stdin",
                                              "files",    "limits", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        struct srv_request rq = *base;
        struct srv_response rs = {0};
        rq.method = "POST";
        rq.path = "/v1/execute";
        if (!rq.source)
                rq.source = "mcp";
        if (bad) {
                /* refused before the API saw it: audited all the same */
                srv_api_error(&rs, 400, "unknown_field", bad,
                              "run_code takes language, code, stdin, files and "
                              "limits, not '%.64s'",
                              bad);
                srv_api_refused(&rq, &rs);
        } else {
                json_t *body = json_copy(args), *col = json_array();
                for (const char *const *c = COLLECT; *c; c++)
                        json_array_append_new(col, json_string(*c));
                json_object_set_new(body, "collect", col);
                char *text = json_dumps(body, JSON_COMPACT);
                json_decref(body);
                if (!text)
                        return tool_error("out of memory");
                rq.body = text;
                rq.body_len = strlen(text);
                srv_api_execute(&rq, &rs);
                free(text);
        }
        *leftover = rs.leftover;
        json_t *r = rs.body ? json_loads(rs.body, 0, NULL) : NULL;
        srv_api_release(&rs);
        free(rs.body);
        json_t *res = !r                 ? tool_error("no answer from the "
                                                                      "executor")
                      : rs.status == 200 ? run_result(r)
                                         : refusal_result(r, rs.status);
        json_decref(r);
        return res;
}

static json_t *check_code(json_t *args) {
        static const char *const ALLOWED[] = {"language", "code", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (bad)
                return tool_error("check_code takes language and code, not "
                                  "'%.64s'",
                                  bad);
        json_t *l = json_object_get(args, "language"),
               *c = json_object_get(args, "code");
        if (!json_is_string(l) || !json_is_string(c))
                return tool_error("check_code wants language and code as "
                                  "strings");
        al_error e = {0};
        json_t *r = srv_api_check(json_string_value(l), json_string_value(c),
                                  json_string_length(c), &e);
        if (!r)
                return tool_error("%s", e.msg);
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        if (f) {
                json_t *fs = json_object_get(r, "findings");
                fprintf(f, "%zu finding%s (%lld at or above %s), policy %s\n",
                        json_array_size(fs),
                        json_array_size(fs) == 1 ? "" : "s",
                        (long long)json_integer_value(
                                json_object_get(r, "at_or_above_threshold")),
                        json_string_value(json_object_get(r, "threshold")),
                        json_string_value(json_object_get(r, "policy")));
                put_findings(f, fs);
                fclose(f);
        }
        return text_result(text, r, false);
}

static json_t *list_languages(json_t *args) {
        if (json_object_size(args))
                return tool_error("list_languages takes no arguments");
        json_t *a = srv_api_languages(), *x;
        char *text = NULL;
        size_t n = 0, i;
        FILE *f = open_memstream(&text, &n);
        if (f) {
                json_array_foreach(a, i, x) fprintf(
                        f, "%s%s: %s\n",
                        json_string_value(json_object_get(x, "name")),
                        json_is_true(json_object_get(x, "available"))
                                ? ""
                                : " (not installed)",
                        json_string_value(json_object_get(x, "description")));
                fclose(f);
        }
        return text_result(text, json_pack("{s:o}", "languages", a), false);
}

json_t *srv_api_call_tool(const struct srv_request *base, const char *name,
                          json_t *args, al_result **leftover) {
        al_result *left = NULL;
        json_t *empty = NULL, *res;
        if (!args)
                args = empty = json_object();
        if (!json_is_object(args))
                res = tool_error("arguments must be an object");
        else if (!strcmp(name, "run_code"))
                res = run_code(base, args, &left);
        else if (!strcmp(name, "check_code"))
                res = check_code(args);
        else if (!strcmp(name, "list_languages"))
                res = list_languages(args);
        else
                res = tool_error("unknown tool '%.64s'", name);
        json_decref(empty);
        *leftover = left;
        /* one log line per call (run_code calls are also in the audit
         * log; the others run nothing); the event keeps its name from
         * when only MCP offered the tools, for the logs' readers */
        char ts[32];
        al_utc_now(ts);
        json_t *sc = json_object_get(res, "structuredContent");
        json_t *line = json_pack("{s:s,s:s,s:s,s:o,s:b,s:O*}", "event",
                                 "airlock.mcp.call", "ts", ts, "source",
                                 base->source ? base->source : "mcp", "tool",
                                 al_jstr(name), "is_error",
                                 json_is_true(json_object_get(res, "isError")),
                                 "id", json_object_get(sc, "id"));
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        if (text)
                fprintf(stderr, "%s\n", text);
        free(text);
        json_decref(line);
        return res;
}
