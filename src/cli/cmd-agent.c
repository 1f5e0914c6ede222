/* SPDX-License-Identifier: MIT */
/*
 * airlock agent "PROBLEM": the code-execution agent loop. It asks an
 * OpenAI-compatible chat-completions endpoint, runs the code the model
 * writes in fresh sandboxes (the run_code tool of mcp.c, so every run is
 * validated, limited and audited with source "agent"), sends the results
 * back, and stops on a final answer or after --max-turns. Nothing the
 * model says runs anywhere but in a sandbox.
 */
#include <errno.h>
#include <getopt.h> /* optind */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "airlock-check.h"
#include "airlock-extract.h"
#include "cli.h"
#include "error.h"
#include "httpc.h"
#include "json.h"
#include "macro.h"
#include "mcp.h"
#include "serve.h"
#include "util.h"

/* The model endpoint failed (after the retries): a distinct exit status. */
#define EXIT_MODEL 9
/* Most bytes of one model response kept. */
#define MAX_RESPONSE (8u << 20)
/* Most runs one reply may ask for (tool calls or code blocks); the rest
 * are answered "not run" so that a reply cannot start thousands. */
#define MAX_RUNS_PER_TURN 8

/* --help: the usage, the table's lines (cmd_agent), the notes. */
/* clang-format off */
static const char usage[] =
"Usage: airlock agent [OPTIONS] PROBLEM|-\n"
"\n"
"Ask a model (any OpenAI-compatible chat-completions endpoint) to solve\n"
"PROBLEM by writing code; run that code in fresh sandboxes and send the\n"
"results back until the model gives a final answer. See airlock-agent(1).\n"
"\n";
static const char notes[] =
"  -h, --help             this help\n"
"\n"
"Exit status: 0 a final answer; 1 stopped by --max-turns; 2 usage;\n"
"9 the model endpoint failed (after the retries); 8 airlock failed.\n";
/* clang-format on */

static const char DEFAULT_SYSTEM[] =
        "You solve problems by writing and running code. You have a tool, "
        "run_code, that runs a program in a fresh sandbox (no network, "
        "nothing kept between runs, python with numpy, pandas and "
        "matplotlib, node, bash, C) and returns its output. Use it to "
        "compute anything you are not sure of. If you cannot call tools, "
        "put the code in one fenced Markdown code block with its language "
        "(```python) and you will get its output in the next message. When "
        "you have the result, answer in plain text without code blocks.";

struct agent {
        const char *base, *model, *key, *system, *default_lang;
        char url[2048];
        bool tools; /* offer run_code as a tool */
        bool auto_mode;
        unsigned max_turns, retries;
        long timeout_ms;
        json_t *limits;   /* for every run, or NULL */
        json_t *messages; /* the conversation */
        json_t *runs;     /* what ran: turn, via, language, code, result */
        struct mcp_session session;
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
        (void)sig;
        stopping = 1;
        srv_api_cancel_all();
}

/* Text from the endpoint or the model, for a person's terminal: no
 * escape sequence (screen clearing, OSC 52 clipboard) passes. */
static void print_safe(FILE *f, const char *prefix, const char *s,
                       const char *suffix) {
        _cleanup_free_ char *safe =
                al_term_sanitize(s, strlen(s), AL_TERM_KEEP_NEWLINES);
        fprintf(f, "%s%s%s", prefix, safe ? safe : "(out of memory)", suffix);
}

/* One model request with retries: the reply's message, or NULL with err. */
static json_t *ask(struct agent *a, al_error *err) {
        json_t *req = json_pack("{s:s,s:O}", "model", a->model, "messages",
                                a->messages);
        if (a->tools) {
                json_t *t = mcp_tools(), *x, *fns = json_array();
                size_t i;
                json_array_foreach(json_object_get(t, "tools"), i, x) {
                        if (strcmp(json_string_value(
                                           json_object_get(x, "name")),
                                   "run_code"))
                                continue;
                        json_array_append_new(
                                fns,
                                json_pack("{s:s,s:{s:O,s:O,s:O}}", "type",
                                          "function", "function", "name",
                                          json_object_get(x, "name"),
                                          "description",
                                          json_object_get(x, "description"),
                                          "parameters",
                                          json_object_get(x, "inputSchema")));
                }
                json_decref(t);
                json_object_set_new(req, "tools", fns);
                json_object_set_new(req, "tool_choice", json_string("auto"));
        }
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (!body) {
                al_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        char auth[4200];
        const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
        if (a->key) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                         a->key);
                headers[1] = auth;
        }
        json_t *msg = NULL;
        for (unsigned attempt = 0; !msg && !stopping; attempt++) {
                al_http_response r;
                al_error e = {0};
                bool retry = true;
                int rc = al_http_post(a->url, headers, body, strlen(body),
                                      a->timeout_ms, MAX_RESPONSE,
                                      (const volatile int *)&stopping, &r, &e);
                if (rc == -ENOSYS) {
                        *err = e;
                        break;
                }
                if (rc < 0) {
                        snprintf(err->msg, sizeof(err->msg), "%s", e.msg);
                        err->code = -rc;
                } else if (r.status < 200 || r.status >= 300) {
                        json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
                        const char *m = json_string_value(json_object_get(
                                json_object_get(j, "error"), "message"));
                        al_error_set(
                                err, EPROTO,
                                "the model endpoint answered HTTP %ld%s%.300s",
                                r.status, m ? ": " : "", m ? m : "");
                        bool no_tools =
                                r.status == 400 && m && strstr(m, "tool");
                        json_decref(j);
                        /* 429 and 5xx may pass; other 4xx will not */
                        retry = r.status == 429 || r.status >= 500;
                        if (no_tools && a->tools && a->auto_mode) {
                                /* an endpoint without function calling */
                                a->tools = false;
                                al_http_response_free(&r);
                                free(body);
                                fprintf(stderr,
                                        "airlock agent: the endpoint "
                                        "refuses tools; using code blocks\n");
                                return ask(a, err);
                        }
                } else {
                        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
                        json_t *m = json_object_get(
                                json_array_get(json_object_get(j, "choices"),
                                               0),
                                "message");
                        if (json_is_object(m) &&
                            (json_is_string(json_object_get(m, "content")) ||
                             json_is_array(json_object_get(m, "tool_calls"))))
                                msg = json_incref(m);
                        else
                                al_error_set(err, EBADMSG,
                                             "malformed reply from the model "
                                             "endpoint (no choices[0].message "
                                             "with content or tool_calls)%s",
                                             r.truncated ? ", cut at 8 MiB"
                                                         : "");
                        json_decref(j);
                }
                al_http_response_free(&r);
                /* an endpoint may echo the key in its error message
                 * ("Incorrect API key provided: ..."), an operator's base
                 * URL may hold it: blank every copy, within err->msg */
                al_redact_secret(err->msg, sizeof(err->msg), a->key);
                if (msg || !retry || attempt >= a->retries || stopping)
                        break;
                char tail[64];
                snprintf(tail, sizeof(tail), "; retry %u of %u\n", attempt + 1,
                         a->retries);
                print_safe(stderr, "airlock agent: ", err->msg, tail);
                struct timespec ts = {
                        0, 250000000L << (attempt < 2 ? attempt : 2)};
                nanosleep(&ts, NULL);
        }
        free(body);
        if (!msg && stopping)
                al_error_set(err, ECANCELED, "stopped");
        return msg;
}

/* Run one program through the run_code tool; the text for the model. */
static char *run(struct agent *a, unsigned turn, const char *via,
                 json_t *args) {
        /* the operator's --limit values are defaults and ceilings: the
         * model may ask for less, never for more */
        json_t *lim = json_object_get(args, "limits"), *v;
        const char *k;
        if (a->limits && json_is_object(lim)) {
                json_object_foreach(a->limits, k, v) {
                        json_t *want = json_object_get(lim, k);
                        if (json_is_integer(want) &&
                            json_integer_value(want) > json_integer_value(v)) {
                                char *text = NULL;
                                if (asprintf(
                                            &text,
                                            "not run: limits.%s %lld is "
                                            "above the operator's "
                                            "--limit %s=%lld; ask for at "
                                            "most that\n",
                                            k,
                                            (long long)json_integer_value(want),
                                            k,
                                            (long long)json_integer_value(v)) <
                                    0)
                                        text = NULL;
                                return text;
                        }
                        if (!want)
                                json_object_set(lim, k, v);
                }
        } else if (a->limits && !lim)
                json_object_set(args, "limits", a->limits);
        al_result *left = NULL;
        json_t *r = mcp_call_tool(&a->session, "run_code", args, &left);
        al_result_free(left);
        json_t *content = json_object_get(r, "content"), *x;
        size_t i;
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        if (f) {
                json_array_foreach(content, i, x) {
                        const char *type =
                                json_string_value(json_object_get(x, "type"));
                        if (type && !strcmp(type, "text"))
                                fputs(json_string_value(
                                              json_object_get(x, "text")),
                                      f);
                        else if (type && !strcmp(type, "image"))
                                fprintf(f,
                                        "[an image, %s, was returned to "
                                        "the user]\n",
                                        json_string_value(json_object_get(
                                                x, "mimeType")));
                }
                fclose(f);
        }
        json_t *sc = json_object_get(r, "structuredContent");
        json_array_append_new(
                a->runs, json_pack("{s:I,s:s,s:O*,s:O*,s:O*,s:O*,s:s}", "turn",
                                   (json_int_t)turn, "via", via, "language",
                                   json_object_get(args, "language"), "code",
                                   json_object_get(args, "code"), "status",
                                   json_object_get(sc, "status"), "audit_id",
                                   json_object_get(sc, "id"), "result",
                                   text ? text : ""));
        json_decref(r);
        return text;
}

/* The model called tools: run each, answer each call. */
static void tool_calls(struct agent *a, unsigned turn, json_t *calls) {
        size_t i;
        json_t *c;
        json_array_foreach(calls, i, c) {
                json_t *fn = json_object_get(c, "function");
                const char *id = json_string_value(json_object_get(c, "id"));
                const char *name =
                        json_string_value(json_object_get(fn, "name"));
                const char *argstr =
                        json_string_value(json_object_get(fn, "arguments"));
                char *text = NULL;
                json_error_t je;
                json_t *args = argstr ? json_loads(argstr, 0, &je) : NULL;
                if (i >= MAX_RUNS_PER_TURN) {
                        if (asprintf(&text,
                                     "not run: at most %d runs per reply",
                                     MAX_RUNS_PER_TURN) < 0)
                                text = NULL;
                } else if (!name || strcmp(name, "run_code")) {
                        if (asprintf(&text,
                                     "error: there is no tool '%s'; "
                                     "the only tool is run_code",
                                     name ? name : "") < 0)
                                text = NULL;
                } else if (!json_is_object(args)) {
                        if (asprintf(&text,
                                     "error: the arguments are not a JSON "
                                     "object (%s); call run_code with "
                                     "{\"language\": ..., \"code\": ...}",
                                     argstr ? je.text : "none") < 0)
                                text = NULL;
                } else
                        text = run(a, turn, "tool", args);
                json_decref(args);
                json_array_append_new(
                        a->messages,
                        json_pack("{s:s,s:s,s:o}", "role", "tool",
                                  "tool_call_id", id ? id : "", "content",
                                  al_jstr(text ? text : "error")));
                free(text);
        }
}

/* Fenced code blocks in a reply without tool calls: run each runnable
 * one; the results as the next user message. false when there were none
 * (the reply is the answer). */
static bool code_blocks(struct agent *a, unsigned turn, const char *reply) {
        al_block *b = NULL;
        size_t n = 0;
        al_error e = {0};
        if (al_extract_blocks(reply, strlen(reply), 0, &b, &n, &e) < 0)
                return false;
        char *all = NULL;
        size_t an = 0;
        FILE *f = open_memstream(&all, &an);
        unsigned ran = 0;
        for (size_t i = 0; f && i < n; i++) {
                const char *lang = b[i].lang ? b[i].lang : a->default_lang;
                if (!al_lang_normalise(lang))
                        continue;
                if (ran == MAX_RUNS_PER_TURN) {
                        fprintf(f,
                                "Code block %zu and later: not run (at "
                                "most %d runs per reply)\n",
                                i + 1, MAX_RUNS_PER_TURN);
                        break;
                }
                json_t *args = json_pack("{s:s,s:s%}", "language",
                                         al_lang_normalise(lang), "code",
                                         b[i].code, b[i].len);
                char *text = run(a, turn, "markdown", args);
                json_decref(args);
                fprintf(f, "Result of code block %zu (%s, line %u):\n%s\n",
                        i + 1, al_lang_normalise(lang), b[i].line,
                        text ? text : "(no result)");
                free(text);
                ran++;
        }
        if (f)
                fclose(f);
        al_blocks_free(b, n);
        if (ran)
                json_array_append_new(a->messages,
                                      json_pack("{s:s,s:o}", "role", "user",
                                                "content", al_jstr(all)));
        free(all);
        return ran > 0;
}

static char *read_problem(const char *arg) {
        if (strcmp(arg, "-"))
                return strdup(arg);
        unsigned char *d = NULL;
        size_t n = 0;
        if (al_read_all("-", 1 << 20, &d, &n) < 0)
                return NULL;
        char *s = realloc(d, n + 1);
        if (s)
                s[n] = '\0';
        return s;
}

static int set_mode(const struct cli_opt *o, const char *arg) {
        struct agent *a = o->ctx;
        if (!strcmp(arg, "tools"))
                a->auto_mode = false;
        else if (!strcmp(arg, "markdown"))
                a->tools = a->auto_mode = false;
        else if (strcmp(arg, "auto")) {
                cli_error("--mode: tools, markdown or auto");
                return EXIT_USAGE;
        }
        return 0;
}

/* --max-turns, --request-timeout, --retries, by o->id. */
enum { NUM_TURNS, NUM_RTIMEOUT, NUM_RETRIES };

static int set_num(const struct cli_opt *o, const char *arg) {
        struct agent *a = o->ctx;
        uint64_t v;
        if (al_parse_u64(arg, &v) < 0 || (o->id != NUM_RETRIES && !v) ||
            v > 1000) {
                cli_error("--%s wants a number from %d to 1000", o->name,
                          o->id == NUM_RETRIES ? 0 : 1);
                return EXIT_USAGE;
        }
        if (o->id == NUM_TURNS)
                a->max_turns = (unsigned)v;
        else if (o->id == NUM_RETRIES)
                a->retries = (unsigned)v;
        else
                a->timeout_ms = (long)v * 1000;
        return 0;
}

static int set_default_lang(const struct cli_opt *o, const char *arg) {
        if (!al_lang_normalise(arg)) {
                cli_error("--default-lang: unknown language '%s'", arg);
                return EXIT_USAGE;
        }
        ((struct agent *)o->ctx)->default_lang = arg;
        return 0;
}

/* --state, --policy, --policy-mode: as airlock mcp takes them. */
static int set_local(const struct cli_opt *o, const char *arg) {
        return mcp_local_option(o->ctx, o->name, arg) < 0 ? EXIT_USAGE : 0;
}

static int set_limit(const struct cli_opt *o, const char *arg) {
        struct agent *a = o->ctx;
        char *eq = strchr(arg, '=');
        uint64_t lv;
        if (!eq || al_parse_u64(eq + 1, &lv) < 0) {
                cli_error("--limit wants NAME=NUMBER, got '%s'", arg);
                return EXIT_USAGE;
        }
        if (!a->limits)
                a->limits = json_object();
        *eq = '\0';
        json_object_set_new(a->limits, arg, json_integer((json_int_t)lv));
        return 0;
}

int cmd_agent(int argc, char **argv) {
        struct agent a = {.max_turns = 8,
                          .retries = 2,
                          .timeout_ms = 60000,
                          .tools = true,
                          .auto_mode = true,
                          .default_lang = "python",
                          .system = DEFAULT_SYSTEM};
        struct srv_config cfg = {
                .policy_mode = "record", .workers = 1, .queue = 1};
        const char *key_env = "OPENAI_API_KEY";
        bool json = false;
        a.base = secure_getenv("AIRLOCK_AGENT_BASE_URL");
        if (!a.base)
                a.base = secure_getenv("OPENAI_BASE_URL");
        a.model = secure_getenv("AIRLOCK_AGENT_MODEL");
        if (!a.model)
                a.model = secure_getenv("OPENAI_MODEL");
        /* clang-format off */
        const struct cli_opt opts[] = {
                CLI_OPT_STRING("base-url", &a.base,
"  --base-url URL         the API base (default $AIRLOCK_AGENT_BASE_URL,\n"
"                         $OPENAI_BASE_URL, else https://api.openai.com/v1);\n"
"                         requests go to URL/chat/completions\n"),
                CLI_OPT_STRING("model", &a.model,
"  --model NAME           default $AIRLOCK_AGENT_MODEL, $OPENAI_MODEL,\n"
"                         else gpt-4o-mini\n"),
                CLI_OPT_STRING("api-key-env", &key_env,
"  --api-key-env NAME     the variable holding the key (default\n"
"                         OPENAI_API_KEY; none: no Authorization header)\n"),
                CLI_OPT_CALL("mode", set_mode, &a, 0,
"  --mode MODE            tools (function calling), markdown (fenced code\n"
"                         blocks in the reply), auto (default: tools, and\n"
"                         code blocks in a reply without tool calls; an\n"
"                         endpoint that refuses tools gets markdown)\n"),
                CLI_OPT_CALL("max-turns", set_num, &a, NUM_TURNS,
"  --max-turns N          model requests at most (default 8)\n"),
                CLI_OPT_CALL("request-timeout", set_num, &a, NUM_RTIMEOUT,
"  --request-timeout SEC  one model request (default 60)\n"),
                CLI_OPT_CALL("retries", set_num, &a, NUM_RETRIES,
"  --retries N            retries of a failed model request (network,\n"
"                         timeout, 429, 5xx, malformed reply; default 2)\n"),
                CLI_OPT_CALL("default-lang", set_default_lang, &a, 0,
"  --default-lang LANG    for untagged code blocks (default python)\n"),
                CLI_OPT_STRING("system", &a.system,
"  --system TEXT          replace the system prompt\n"),
                CLI_OPT_CALL("state", set_local, &cfg, 0,
"  --state DIR, --policy FILE, --policy-mode MODE   as airlock run\n"),
                CLI_OPT_CALL("policy", set_local, &cfg, 0, NULL),
                CLI_OPT_CALL("policy-mode", set_local, &cfg, 0, NULL),
                CLI_OPT_CALL("limit", set_limit, &a, 0,
"  --limit NAME=VALUE     a limit for every run (repeatable), as run\n"
"At most 8 runs per reply; further tool calls or code blocks are answered\n"
"\"not run\".\n"),
                CLI_OPT_FLAG("json", &json,
"  --json                 print the whole transcript as JSON\n"),
                CLI_END};
        /* clang-format on */
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0) {
                json_decref(a.limits);
                return c;
        }
        if (optind + 1 != argc) {
                cli_error("agent wants one PROBLEM (or - to read it from "
                          "stdin)");
                return EXIT_USAGE;
        }
        if (!a.base)
                a.base = "https://api.openai.com/v1";
        if (!a.model)
                a.model = "gpt-4o-mini";
        size_t bl = strlen(a.base);
        while (bl && a.base[bl - 1] == '/')
                bl--;
        snprintf(a.url, sizeof(a.url), "%.*s/chat/completions", (int)bl,
                 a.base);
        if (strncmp(a.url, "http://", 7) && strncmp(a.url, "https://", 8)) {
                cli_error("--base-url must be http:// or https://");
                return EXIT_USAGE;
        }
        a.key = strcmp(key_env, "none") ? secure_getenv(key_env) : NULL;
        char *problem = read_problem(argv[optind]);
        if (!problem || !*problem) {
                cli_error("the problem is empty");
                free(problem);
                return EXIT_USAGE;
        }
        al_error e = {0};
        if (!al_http_init()) {
                cli_error("libcurl.so.4 cannot be loaded (Debian: apt-get "
                          "install libcurl4)");
                free(problem);
                return EXIT_INTERNAL;
        }
        int started = mcp_local_start(&cfg);
        if (started != EXIT_OK) {
                free(problem);
                return started;
        }
        char actor[300];
        cli_local_actor(actor, sizeof(actor));
        a.session = (struct mcp_session){.stateless = true,
                                         .base = {.source = "agent",
                                                  .local_actor = actor,
                                                  .peer = "agent"}};
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        a.messages =
                json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content",
                          a.system, "role", "user", "content", problem);
        a.runs = json_array();
        const char *answer = NULL, *stopped = "max_turns";
        char failure[600] = "";
        unsigned turn = 0;
        json_t *last = NULL;
        while (turn < a.max_turns && !stopping) {
                turn++;
                json_t *msg = ask(&a, &e);
                if (!msg) {
                        stopped = stopping ? "cancelled" : "model_error";
                        snprintf(failure, sizeof(failure), "%s", e.msg);
                        break;
                }
                json_t *calls = json_object_get(msg, "tool_calls");
                const char *content =
                        json_string_value(json_object_get(msg, "content"));
                json_t *keep =
                        json_pack("{s:s,s:O}", "role", "assistant", "content",
                                  content ? json_object_get(msg, "content")
                                          : json_null());
                if (json_array_size(calls))
                        json_object_set(keep, "tool_calls", calls);
                json_array_append_new(a.messages, keep);
                json_decref(last);
                last = msg;
                if (json_array_size(calls)) {
                        tool_calls(&a, turn, calls);
                        continue;
                }
                if (content && code_blocks(&a, turn, content))
                        continue;
                answer = content ? content : "";
                stopped = "answer";
                break;
        }
        int rc = !strcmp(stopped, "answer")      ? EXIT_OK
                 : !strcmp(stopped, "max_turns") ? EXIT_RUN_ERROR
                 : !strcmp(stopped, "cancelled") ? EXIT_CANCELLED
                                                 : EXIT_MODEL;
        if (json) {
                json_t *t = json_pack(
                        "{s:s,s:s?,s:I,s:s,s:s,s:O,s:O}", "stopped", stopped,
                        "answer", answer, "turns", (json_int_t)turn, "model",
                        a.model, "mode", a.tools ? "tools" : "markdown", "runs",
                        a.runs, "messages", a.messages);
                if (failure[0])
                        json_object_set_new(t, "error", al_jstr(failure));
                char *s = json_dumps(t, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s)
                        puts(s);
                free(s);
                json_decref(t);
        } else if (answer)
                /* the model's words, which a prompt injection may have
                 * chosen: escaped for the terminal (--json has them as
                 * they are) */
                print_safe(stdout, "", answer, "\n");
        if (!strcmp(stopped, "max_turns"))
                cli_error("stopped after %u model requests (--max-turns) "
                          "without a final answer",
                          turn);
        else if (failure[0]) {
                _cleanup_free_ char *safe = al_term_sanitize(
                        failure, strlen(failure), AL_TERM_KEEP_NEWLINES);
                cli_error("%s", safe ? safe : failure);
        }
        json_decref(last);
        json_decref(a.messages);
        json_decref(a.runs);
        json_decref(a.limits);
        free(problem);
        srv_api_fini();
        return rc;
}
