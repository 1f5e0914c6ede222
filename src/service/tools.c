/* SPDX-License-Identifier: MIT */
/* The tools a model is offered, run_code, check_code, list_languages and
 * the session tools create_session, close_session, upload_file and
 * download_file: their JSON Schemas and their results (text for the
 * model, structured content, images), on top of the service. MCP
 * (src/serve/mcp.c) offers them over JSON-RPC, the agent (src/agent/) as
 * functions of a chat completion; a run is validated, limited and audited
 * exactly like one over POST /v1/execute, and every session call goes
 * through srv_api_sessions as the HTTP routes do (the same owner, caps,
 * audit records).
 *
 * One tool per action, not one "session" tool with an action argument:
 * hosts list tools by name and show each one's schema to the model and
 * the user (approval prompts name the tool), a small schema with every
 * field required that the action needs is what models fill in best, and
 * annotations (destructiveHint for close_session, readOnlyHint for
 * download_file) are per tool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "json.h"
#include "service-internal.h"
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
/* The largest file download_file returns: its base64 must fit in one MCP
 * message (MCP_MAX_MESSAGE, 16 MiB) with room to spare; a larger one is
 * refused with its size, never cut. */
#define DOWNLOAD_MAX (8u << 20)
/* Longest session id the tools pass on (the service's are shorter). */
#define SESSION_ID_MAX 64

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
                {"net_connections",
                 "with network: sockets the proxy holds at once"},
                {"net_bytes_out", "with network: bytes sent, all connections"},
                {"net_bytes_in",
                 "with network: bytes received, all connections"},
                {"net_idle_ms", "with network: a silent connection closes, ms"},
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

static json_t *session_id_schema(const char *what) {
        return json_pack("{s:s,s:i,s:i,s:s}", "type", "string", "minLength", 1,
                         "maxLength", SESSION_ID_MAX, "description", what);
}

/* Limits of a session: the sandbox's (memory, pids, disk, open files) and
 * its cells' defaults (wall, cpu, output). */
static json_t *session_limits_schema(void) {
        json_t *l = limits_schema();
        json_object_set_new(l, "description",
                            json_string("limits of the session: memory_mb, "
                                        "pids, disk_mb and open_files hold "
                                        "for its whole life; wall_ms, cpu_ms "
                                        "and output_bytes are each cell's "
                                        "defaults"));
        return l;
}

static json_t *session_tools(json_t *tools) {
        json_t *files = json_pack(
                "{s:s,s:{s:s,s:{s:{s:s},s:{s:s},s:{s:s}},s:[s],s:b},s:i}",
                "type", "array", "items", "type", "object", "properties",
                "path", "type", "string", "content", "type", "string",
                "content_base64", "type", "string", "required", "path",
                "additionalProperties", 0, "maxItems", 256);
        json_array_append_new(
                tools,
                json_pack("{s:s,s:s,s:s,s:{s:s,s:{s:o,s:o,s:{s:s,s:i,s:s},s:{s:"
                          "s,s:i,s:s},s:{s:s,s:i,s:s},s:o},s:[s],s:b},s:{s:b,s:"
                          "b,s:b}}",
                          "name", "create_session", "title",
                          "Start a sandbox session", "description",
                          "Start a sandbox that stays alive between calls (no "
                          "network, read-only system, its own /workspace, "
                          "every limit enforced), running an interpreter "
                          "(python, node or bash). Pass the returned "
                          "session_id to run_code: variables, imports and "
                          "files persist from one call to the next, as in a "
                          "notebook. The session ends at close_session, after "
                          "idle_timeout_s without a call, or at "
                          "max_lifetime_s.",
                          "inputSchema", "type", "object", "properties",
                          "language", language_schema(), "limits",
                          session_limits_schema(), "idle_timeout_s", "type",
                          "integer", "minimum", 1, "description",
                          "end the session after this many seconds without a "
                          "call (default 600)",
                          "max_lifetime_s", "type", "integer", "minimum", 1,
                          "description",
                          "end the session this many seconds after its start "
                          "(default: the server's, 3600)",
                          "max_cells", "type", "integer", "minimum", 1,
                          "description", "run_code calls it takes at most",
                          "files", files, "required", "language",
                          "additionalProperties", 0, "annotations",
                          "readOnlyHint", 0, "destructiveHint", 0,
                          "openWorldHint", 0));
        json_array_append_new(
                tools,
                json_pack("{s:s,s:s,s:s,s:{s:s,s:{s:o},s:[s],s:b},s:{s:b,s:"
                          "b,s:b,s:b}}",
                          "name", "close_session", "title",
                          "End a sandbox session", "description",
                          "End a session made by create_session: its "
                          "processes are killed and its /workspace is "
                          "gone.",
                          "inputSchema", "type", "object", "properties",
                          "session_id",
                          session_id_schema("the id create_session returned"),
                          "required", "session_id", "additionalProperties", 0,
                          "annotations", "readOnlyHint", 0, "destructiveHint",
                          1, "idempotentHint", 1, "openWorldHint", 0));
        json_array_append_new(
                tools,
                json_pack("{s:s,s:s,s:s,s:{s:s,s:{s:o,s:{s:s,s:s},s:{s:s,s:"
                          "s},s:{s:s,s:s}},s:[ss],s:b},s:{s:b,s:b,s:b,s:b}}",
                          "name", "upload_file", "title",
                          "Write a file into a session", "description",
                          "Write a file into a session's /workspace (text as "
                          "content, bytes as content_base64), creating its "
                          "directories; the code then opens it by that "
                          "relative path.",
                          "inputSchema", "type", "object", "properties",
                          "session_id",
                          session_id_schema("the id create_session returned"),
                          "path", "type", "string", "description",
                          "relative to /workspace, such as data/in.csv (no "
                          "'..', not absolute)",
                          "content", "type", "string", "description",
                          "the file's text (UTF-8)", "content_base64", "type",
                          "string", "description",
                          "the file's bytes, base64 (instead of content)",
                          "required", "session_id", "path",
                          "additionalProperties", 0, "annotations",
                          "readOnlyHint", 0, "destructiveHint", 1,
                          "idempotentHint", 1, "openWorldHint", 0));
        json_array_append_new(
                tools,
                json_pack("{s:s,s:s,s:s,s:{s:s,s:{s:o,s:{s:s,s:s}},s:[ss],s:"
                          "b},s:{s:b,s:b}}",
                          "name", "download_file", "title",
                          "Read a file from a session", "description",
                          "Read a file from a session's /workspace: text "
                          "comes back as text, images (png, jpeg, gif, svg, "
                          "webp) as image content, other bytes as an "
                          "embedded resource (base64), at most 8 MiB.",
                          "inputSchema", "type", "object", "properties",
                          "session_id",
                          session_id_schema("the id create_session returned"),
                          "path", "type", "string", "description",
                          "relative to /workspace, such as out/plot.png",
                          "required", "session_id", "path",
                          "additionalProperties", 0, "annotations",
                          "readOnlyHint", 1, "openWorldHint", 0));
        return tools;
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
                "under out/ are listed. Nothing persists between calls, "
                "unless session_id (from create_session) is given: then the "
                "code runs in that live session, whose variables, imports "
                "and files stay, and the value of its last expression comes "
                "back as a result (a matplotlib figure as an image).",
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
        /* network: the hosts the run may reach through its proxy, within
         * the server's --allow-net */
        json_object_set_new(
                json_object_get(json_object_get(run, "inputSchema"),
                                "properties"),
                "network",
                json_pack("{s:s,s:s,s:{s:{s:s,s:{s:s},s:i}},s:b}", "type",
                          "object", "description",
                          "the hosts the program may reach (through a "
                          "proxy; HTTP and HTTPS), within what this server "
                          "allows; absent: no network",
                          "properties", "allow", "type", "array", "items",
                          "type", "string", "maxItems", 64,
                          "additionalProperties", 0));
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
        json_t *props = json_object_get(json_object_get(run, "inputSchema"),
                                        "properties");
        json_object_set_new(
                props, "session_id",
                session_id_schema("run the code as the next cell of this "
                                  "session (create_session); then language "
                                  "must be the session's, stdin and files are "
                                  "not taken (upload_file writes files), and "
                                  "limits may hold wall_ms, cpu_ms and "
                                  "output_bytes"));
        return json_pack("{s:o}", "tools",
                         session_tools(json_pack("[ooo]", run, check, langs)));
}

bool srv_api_has_tool(const char *name) {
        static const char *const NAMES[] = {"run_code",       "check_code",
                                            "list_languages", "create_session",
                                            "close_session",  "upload_file",
                                            "download_file",  NULL};
        for (const char *const *n = NAMES; *n; n++)
                if (!strcmp(*n, name))
                        return true;
        return false;
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

static json_t *run_cell(const struct srv_request *base, json_t *args);

static json_t *run_code(const struct srv_request *base, json_t *args,
                        al_result **leftover) {
        static const char *const ALLOWED[] = {
                "language", "code",       "stdin",   "files",
                "limits",   "session_id", "network", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (!bad && json_object_get(args, "session_id"))
                return run_cell(base, args);
        struct srv_request rq = *base;
        struct srv_response rs = {0};
        rq.method = "POST";
        rq.path = "/v1/execute";
        if (!rq.source)
                rq.source = "mcp";
        if (bad) {
                /* refused before the API saw it: audited all the same */
                srv_api_error(&rs, 400, "unknown_field", bad,
                              "run_code takes language, code, stdin, files, "
                              "limits, network and session_id, not '%.64s'",
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
        json_t *r = rs.body ? json_loads(rs.body, JSON_ALLOW_NUL, NULL) : NULL;
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

/* --- sessions ------------------------------------------------------------ */

/* One call of the sessions API on behalf of base, as the HTTP request
 * METHOD /v1/sessions{rest} with body would be: the same owner (the key,
 * or the local actor), caps, rate and audit records. */
static void session_call(const struct srv_request *base, const char *method,
                         const char *rest, const void *body, size_t len,
                         struct srv_response *rs) {
        struct srv_request rq = *base;
        char *path = NULL;
        if (asprintf(&path, "/v1/sessions%s", rest) < 0)
                path = NULL;
        rq.method = method;
        rq.path = path ? path : "/v1/sessions";
        rq.query = NULL;
        rq.args = NULL;
        rq.too_many_args = false;
        rq.body = body;
        rq.body_len = len;
        rq.body_too_large = false;
        rq.on_chunk = NULL; /* a tool result is one answer, not a stream */
        rq.chunk_ctx = NULL;
        if (!rq.source)
                rq.source = "mcp";
        srv_api_sessions(&rq, rest, rs);
        free(path);
}

/* The JSON of a response (a new reference, or NULL), and the response's
 * memory and budget released. */
static json_t *response_json(struct srv_response *rs) {
        json_t *r =
                rs->body ? json_loadb(rs->body, rs->len, JSON_ALLOW_NUL, NULL)
                         : NULL;
        srv_api_release(rs);
        free(rs->body);
        rs->body = NULL;
        return r;
}

/* A tool result for a session call the service answered with an error
 * (or with nothing parsable). */
static json_t *session_refusal(struct srv_response *rs) {
        unsigned st = rs->status;
        json_t *r = response_json(rs);
        json_t *res = r ? refusal_result(r, st)
                        : tool_error("no answer from the sessions service");
        json_decref(r);
        return res;
}

/* args.session_id, checked to be one id (no '/': it becomes part of a
 * route): the id, or NULL and a tool error in *err. */
static const char *session_arg(json_t *args, const char *tool, json_t **err) {
        json_t *v = json_object_get(args, "session_id");
        const char *id = json_string_value(v);
        *err = NULL;
        if (!id) {
                *err = tool_error("%s wants session_id, the string "
                                  "create_session returned",
                                  tool);
                return NULL;
        }
        size_t n = strlen(id);
        if (n == 0 || n > SESSION_ID_MAX ||
            strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-_.") != n) {
                *err = tool_error("refused (session_not_found): no session "
                                  "'%.64s'",
                                  id);
                return NULL;
        }
        return id;
}

/* Bytes of a MIME bundle's value quoted as text. */
static void put_result(FILE *f, size_t i, json_t *data) {
        const char *k;
        json_t *v;
        char label[64];
        snprintf(label, sizeof(label), "result %zu", i + 1);
        json_t *plain = json_object_get(data, "text/plain");
        if (json_is_string(plain))
                quote(f, label, json_string_value(plain));
        json_object_foreach(data, k, v) {
                if (is_image(k))
                        fprintf(f, "--- %s: %s, returned as image content\n",
                                label, k);
                else if (strcmp(k, "text/plain"))
                        fprintf(f, "--- %s: also %s (in structuredContent)\n",
                                label, k);
        }
}

/* The MCP result of a cell (the session execute answer): status, stdout,
 * stderr, the results' text/plain, the error with its traceback as text;
 * images as image content; the whole answer as structuredContent. */
static json_t *cell_result(json_t *r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        const char *reason = json_string_value(json_object_get(r, "reason"));
        json_t *ec = json_object_get(r, "execution_count");
        json_t *results = json_object_get(r, "results");
        json_t *err = json_object_get(r, "error");
        json_t *content = json_array();
        char *text = NULL;
        size_t tn = 0, i;
        json_t *x;
        FILE *f = open_memstream(&text, &tn);
        if (f) {
                fprintf(f,
                        "status: %s%s%s | cell %s | execution_count %lld | "
                        "wall %lld ms | cpu %lld ms | session %s\n",
                        st ? st : "?", reason && *reason ? " - " : "",
                        reason ? reason : "",
                        json_string_value(json_object_get(r, "id")) ?: "-",
                        json_is_integer(ec) ? (long long)json_integer_value(ec)
                                            : -1LL,
                        (long long)json_integer_value(
                                json_object_get(r, "wall_ms")),
                        (long long)json_integer_value(
                                json_object_get(r, "cpu_ms")),
                        json_string_value(json_object_get(r, "session_id"))
                                ?: "-");
                json_t *hit = json_object_get(r, "limits_hit");
                if (json_array_size(hit)) {
                        fputs("limits hit:", f);
                        json_array_foreach(hit, i, x)
                                fprintf(f, " %s", json_string_value(x));
                        fputc('\n', f);
                }
                if (json_object_get(r, "session_end_reason"))
                        fprintf(f,
                                "the session has ended (%s): create a new "
                                "one\n",
                                json_string_value(json_object_get(
                                        r, "session_end_reason")));
                quote(f, "stdout",
                      json_string_value(json_object_get(r, "stdout")));
                quote(f, "stderr",
                      json_string_value(json_object_get(r, "stderr")));
                json_array_foreach(results, i, x) put_result(f, i, x);
                if (json_is_object(err)) {
                        char *tb = NULL;
                        size_t tbn = 0;
                        FILE *t = open_memstream(&tb, &tbn);
                        if (t) {
                                size_t j = 0;
                                json_t *line;
                                json_array_foreach(
                                        json_object_get(err, "traceback"), j,
                                        line) {
                                        const char *l =
                                                json_string_value(line) ?: "";
                                        size_t ln = strlen(l);
                                        fprintf(t, "%s%s", l,
                                                ln && l[ln - 1] == '\n' ? ""
                                                                        : "\n");
                                }
                                /* a traceback ends with "name: value"
                                 * already (Jupyter's do) */
                                if (!j)
                                        fprintf(t, "%s: %s\n",
                                                json_string_value(
                                                        json_object_get(err,
                                                                        "name"))
                                                        ?: "Error",
                                                json_string_value(
                                                        json_object_get(
                                                                err, "value"))
                                                        ?: "");
                                fclose(t);
                        }
                        quote(f, "error", tb);
                        free(tb);
                }
                fclose(f);
        }
        json_array_append_new(content,
                              json_pack("{s:s,s:o}", "type", "text", "text",
                                        al_jstr(text ? text : "?")));
        free(text);
        json_array_foreach(results, i, x) {
                const char *k;
                json_t *v;
                json_object_foreach(x, k,
                                    v) if (is_image(k) && json_is_string(v))
                        json_array_append_new(content,
                                              json_pack("{s:s,s:O,s:s}", "type",
                                                        "image", "data", v,
                                                        "mimeType", k));
        }
        bool ok = st && !strcmp(st, "ok");
        return json_pack("{s:o,s:O,s:b}", "content", content,
                         "structuredContent", r, "isError", !ok);
}

/* The profile name of a language name or alias, in buf; false when no
 * profile has it. */
static bool profile_name(const char *lang, char *buf, size_t size) {
        al_spec *t = al_spec_new();
        al_error e = {0};
        bool ok = t && lang && al_spec_set_language(t, lang, &e) == 0;
        if (ok)
                snprintf(buf, size, "%s", al_spec_language(t));
        al_spec_free(t);
        return ok;
}

/* run_code with session_id: the code as the session's next cell. */
static json_t *run_cell(const struct srv_request *base, json_t *args) {
        json_t *err;
        const char *sid = session_arg(args, "run_code", &err);
        if (!sid)
                return err;
        if (json_object_get(args, "stdin") || json_object_get(args, "files"))
                return tool_error(
                        "run_code with session_id takes no stdin (a cell has "
                        "no standard input) and no files (write them with "
                        "upload_file)");
        char rest[SESSION_ID_MAX + 16];
        snprintf(rest, sizeof(rest), "/%s", sid);
        /* the session's language must be the one the model names: a model
         * that mixes up its sessions hears so instead of a syntax error */
        struct srv_response rs = {0};
        session_call(base, "GET", rest, "", 0, &rs);
        if (rs.status != 200)
                return session_refusal(&rs);
        json_t *info = response_json(&rs);
        const char *have = json_string_value(json_object_get(info, "language"));
        const char *want = json_string_value(json_object_get(args, "language"));
        char wname[64];
        if (!want || !have || !profile_name(want, wname, sizeof(wname)) ||
            strcmp(wname, have)) {
                json_t *res = tool_error(
                        "session %s runs %s; run_code with this session_id "
                        "wants language \"%s\"%s%.64s%s",
                        sid, have ? have : "?", have ? have : "?",
                        want ? ", not \"" : "", want ? want : "",
                        want ? "\"" : "");
                json_decref(info);
                return res;
        }
        json_decref(info);
        json_t *body =
                json_pack("{s:O*,s:O*}", "code", json_object_get(args, "code"),
                          "limits", json_object_get(args, "limits"));
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text)
                return tool_error("out of memory");
        snprintf(rest, sizeof(rest), "/%s/execute", sid);
        rs = (struct srv_response){0};
        session_call(base, "POST", rest, text, strlen(text), &rs);
        free(text);
        if (rs.status != 200) {
                /* 422: the policy refused the cell, "rejected" as a run's */
                bool rejected = rs.status == 422;
                json_t *res = session_refusal(&rs);
                json_t *sc = json_object_get(res, "structuredContent");
                if (rejected && json_is_object(sc))
                        json_object_set_new(sc, "status",
                                            json_string("rejected"));
                return res;
        }
        json_t *r = response_json(&rs);
        json_t *res = r ? cell_result(r)
                        : tool_error("no answer from the sessions service");
        json_decref(r);
        return res;
}

static json_t *create_session(const struct srv_request *base, json_t *args) {
        static const char *const ALLOWED[] = {"language",
                                              "limits",
                                              "idle_timeout_s",
                                              "max_lifetime_s",
                                              "max_cells",
                                              "files",
                                              NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (bad)
                return tool_error("create_session takes language, limits, "
                                  "idle_timeout_s, max_lifetime_s, max_cells "
                                  "and files, not '%.64s'",
                                  bad);
        char *text = json_dumps(args, JSON_COMPACT);
        if (!text)
                return tool_error("out of memory");
        struct srv_response rs = {0};
        session_call(base, "POST", "", text, strlen(text), &rs);
        free(text);
        if (rs.status != 201)
                return session_refusal(&rs);
        json_t *r = response_json(&rs);
        if (!r)
                return tool_error("no answer from the sessions service");
        json_t *lim = json_object_get(r, "limits");
        char *msg = NULL;
        if (asprintf(&msg,
                     "session %s started: %s %s, memory %lld MiB, idle "
                     "timeout %lld s, lifetime %lld s, at most %lld cells.\n"
                     "Pass session_id \"%s\" to run_code (and upload_file, "
                     "download_file); variables, imports and files in "
                     "/workspace stay until close_session.\n",
                     json_string_value(json_object_get(r, "id")) ?: "?",
                     json_string_value(json_object_get(r, "language")) ?: "?",
                     json_string_value(json_object_get(r, "version")) ?: "",
                     (long long)json_integer_value(
                             json_object_get(lim, "memory_mb")),
                     (long long)json_integer_value(
                             json_object_get(r, "idle_timeout_s")),
                     (long long)json_integer_value(
                             json_object_get(r, "max_lifetime_s")),
                     (long long)json_integer_value(
                             json_object_get(r, "max_cells")),
                     json_string_value(json_object_get(r, "id")) ?: "?") < 0)
                msg = NULL;
        return text_result(msg, r, false);
}

static json_t *close_session(const struct srv_request *base, json_t *args) {
        static const char *const ALLOWED[] = {"session_id", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (bad)
                return tool_error("close_session takes session_id, not "
                                  "'%.64s'",
                                  bad);
        json_t *err;
        const char *sid = session_arg(args, "close_session", &err);
        if (!sid)
                return err;
        char rest[SESSION_ID_MAX + 16];
        snprintf(rest, sizeof(rest), "/%s", sid);
        struct srv_response rs = {0};
        session_call(base, "DELETE", rest, "", 0, &rs);
        if (rs.status != 200)
                return session_refusal(&rs);
        json_t *r = response_json(&rs);
        if (!r)
                return tool_error("no answer from the sessions service");
        char *msg = NULL;
        if (asprintf(&msg, "session %s ended%s after %lld cells\n", sid,
                     json_is_true(json_object_get(r, "already_ended"))
                             ? " (it had ended already)"
                             : "",
                     (long long)json_integer_value(
                             json_object_get(r, "cells"))) < 0)
                msg = NULL;
        return text_result(msg, r, false);
}

/* "/ID/files/PATH" of a session and a path argument: malloc'ed, or NULL
 * and a tool error in *err. */
static char *file_rest(json_t *args, const char *tool, const char **ret_sid,
                       json_t **err) {
        const char *sid = session_arg(args, tool, err);
        if (!sid)
                return NULL;
        const char *path = json_string_value(json_object_get(args, "path"));
        if (!path) {
                *err = tool_error("%s wants path, a string relative to "
                                  "/workspace",
                                  tool);
                return NULL;
        }
        char *rest = NULL;
        if (asprintf(&rest, "/%s/files/%s", sid, path) < 0) {
                *err = tool_error("out of memory");
                return NULL;
        }
        *ret_sid = sid;
        return rest;
}

static json_t *upload_file(const struct srv_request *base, json_t *args) {
        static const char *const ALLOWED[] = {"session_id", "path", "content",
                                              "content_base64", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (bad)
                return tool_error("upload_file takes session_id, path, "
                                  "content and content_base64, not '%.64s'",
                                  bad);
        json_t *err;
        const char *sid;
        char *rest = file_rest(args, "upload_file", &sid, &err);
        if (!rest)
                return err;
        struct srv_response rs = {0};
        unsigned char *data = NULL;
        size_t n = 0;
        bool present = false;
        if (srv_api_get_bytes(args, "content", "content_base64", &data, &n,
                              &present, &rs) < 0) {
                free(rest);
                return session_refusal(&rs);
        }
        if (!present) {
                free(rest);
                return tool_error("upload_file wants content (text) or "
                                  "content_base64 (bytes)");
        }
        session_call(base, "PUT", rest, data, n, &rs);
        free(data);
        free(rest);
        if (rs.status != 201)
                return session_refusal(&rs);
        json_t *r = response_json(&rs);
        if (!r)
                return tool_error("no answer from the sessions service");
        char *msg = NULL;
        if (asprintf(&msg, "wrote %s in session %s (%lld bytes, sha256 %s)\n",
                     json_string_value(json_object_get(r, "path")) ?: "?", sid,
                     (long long)json_integer_value(json_object_get(r, "size")),
                     json_string_value(json_object_get(r, "sha256")) ?: "?") <
            0)
                msg = NULL;
        return text_result(msg, r, false);
}

static json_t *download_file(const struct srv_request *base, json_t *args) {
        static const char *const ALLOWED[] = {"session_id", "path", NULL};
        const char *bad = unknown_key(args, ALLOWED);
        if (bad)
                return tool_error("download_file takes session_id and path, "
                                  "not '%.64s'",
                                  bad);
        json_t *err;
        const char *sid;
        char *rest = file_rest(args, "download_file", &sid, &err);
        if (!rest)
                return err;
        struct srv_response rs = {0};
        session_call(base, "GET", rest, "", 0, &rs);
        free(rest);
        if (rs.status != 200)
                return session_refusal(&rs);
        const unsigned char *d = (const unsigned char *)rs.body;
        size_t n = rs.len;
        const char *path = json_string_value(json_object_get(args, "path"));
        const char *mime =
                rs.content_type ? rs.content_type : "application/octet-stream";
        bool text = al_utf8_valid(d, n) && !memchr(d, 0, n);
        json_t *sc =
                json_pack("{s:s,s:s,s:I,s:s,s:s}", "session_id", sid, "path",
                          path, "size", (json_int_t)n, "mime", mime, "encoding",
                          is_image(mime) || !text ? "base64" : "utf-8");
        json_t *content = json_array(), *res;
        char head[512];
        snprintf(head, sizeof(head), "%.200s in session %s: %zu bytes, %s%s\n",
                 path, sid, n, mime,
                 n > DOWNLOAD_MAX ? ""
                 : is_image(mime) ? ", returned as image content"
                 : text           ? "; its text follows"
                                  : ", returned as an embedded resource "
                                    "(base64)");
        if (n > DOWNLOAD_MAX) {
                char msg[600];
                snprintf(msg, sizeof(msg),
                         "%s  download_file returns at most %u bytes: read "
                         "it in parts with run_code, or over the HTTP API "
                         "(GET /v1/sessions/{id}/files/{path})\n",
                         head, DOWNLOAD_MAX);
                json_decref(content);
                res = json_pack("{s:[{s:s,s:s}],s:o,s:b}", "content", "type",
                                "text", "text", msg, "structuredContent", sc,
                                "isError", 1);
        } else {
                json_array_append_new(content,
                                      json_pack("{s:s,s:o}", "type", "text",
                                                "text", al_jstr(head)));
                char *b64 =
                        text && !is_image(mime) ? NULL : al_base64_encode(d, n);
                if (text && !is_image(mime))
                        json_array_append_new(
                                content, json_pack("{s:s,s:o}", "type", "text",
                                                   "text", al_jstrn(d, n)));
                else if (b64 && is_image(mime))
                        json_array_append_new(content,
                                              json_pack("{s:s,s:s,s:s}", "type",
                                                        "image", "data", b64,
                                                        "mimeType", mime));
                else if (b64) {
                        char *uri = NULL;
                        if (asprintf(&uri, "airlock://sessions/%s/files/%s",
                                     sid, path) < 0)
                                uri = NULL;
                        json_array_append_new(
                                content,
                                json_pack("{s:s,s:{s:o,s:s,s:s}}", "type",
                                          "resource", "resource", "uri",
                                          al_jstr(uri ? uri : "airlock:file"),
                                          "mimeType", mime, "blob", b64));
                        free(uri);
                }
                bool failed = (is_image(mime) || !text) && !b64;
                free(b64);
                res = json_pack("{s:o,s:o,s:b}", "content", content,
                                "structuredContent", sc, "isError", failed);
        }
        srv_api_release(&rs);
        free(rs.body);
        return res;
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
        else if (!strcmp(name, "create_session"))
                res = create_session(base, args);
        else if (!strcmp(name, "close_session"))
                res = close_session(base, args);
        else if (!strcmp(name, "upload_file"))
                res = upload_file(base, args);
        else if (!strcmp(name, "download_file"))
                res = download_file(base, args);
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
