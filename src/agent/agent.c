/* SPDX-License-Identifier: MIT */
/*
 * The code-execution agent loop (agent.h): one turn asks the model, keeps
 * its reply, runs the code it asks for (tool calls, else fenced code
 * blocks) and feeds the results back. Nothing the model says runs anywhere
 * but in a sandbox.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "airlock-check.h"
#include "airlock-extract.h"
#include "error.h"
#include "httpc.h"
#include "json.h"
#include "macro.h"
#include "util.h"

/* Most bytes of one model response kept. */
#define MAX_RESPONSE (8u << 20)
/* Most runs one reply may ask for (tool calls or code blocks); the rest
 * are answered "not run" so that a reply cannot start thousands. */
#define MAX_RUNS_PER_TURN 8

const char agent_default_system[] =
        "You solve problems by writing and running code. You have a tool, "
        "run_code, that runs code in a sandbox (no network; python with "
        "numpy, pandas and matplotlib, node, bash, C) and returns its "
        "output. For python, node and bash the sandbox lives for the whole "
        "task, like a notebook: variables, imports and files from one call "
        "are there in the next, and the value of the last expression is "
        "shown. Use it to compute anything you are not sure of. If you "
        "cannot call tools, put the code in one fenced Markdown code block "
        "with its language (```python) and you will get its output in the "
        "next message. When you have the result, answer in plain text "
        "without code blocks.";
const char agent_oneshot_system[] =
        "You solve problems by writing and running code. You have a tool, "
        "run_code, that runs a program in a fresh sandbox (no network, "
        "nothing kept between runs, python with numpy, pandas and "
        "matplotlib, node, bash, C) and returns its output. Use it to "
        "compute anything you are not sure of. If you cannot call tools, "
        "put the code in one fenced Markdown code block with its language "
        "(```python) and you will get its output in the next message. When "
        "you have the result, answer in plain text without code blocks.";

/* Limits that hold for a whole session (set when it starts), not for one
 * of its cells. */
static const char *const SESSION_LIMITS[] = {"memory_mb", "pids", "disk_mb",
                                             "open_files", NULL};

static volatile sig_atomic_t stopping;

void agent_stop(void) {
        stopping = 1;
        srv_api_cancel_all();
}

/* Text from the endpoint or the model, for a person's terminal: no
 * escape sequence (screen clearing, OSC 52 clipboard) passes. */
void agent_print_safe(FILE *f, const char *prefix, const char *s,
                      const char *suffix) {
        _cleanup_free_ char *safe =
                al_term_sanitize(s, strlen(s), AL_TERM_KEEP_NEWLINES);
        fprintf(f, "%s%s%s", prefix, safe ? safe : "(out of memory)", suffix);
}

/* The chat-completions request: the model, the conversation, and
 * run_code as a function when tools are on; malloc'ed, or NULL. */
static char *request_body(struct agent *a) {
        json_t *req = json_pack("{s:s,s:O}", "model", a->model, "messages",
                                a->messages);
        if (a->tools) {
                json_t *t = srv_api_tools(), *x, *fns = json_array();
                size_t i;
                json_array_foreach(json_object_get(t, "tools"), i, x) {
                        if (strcmp(json_string_value(
                                           json_object_get(x, "name")),
                                   "run_code"))
                                continue;
                        /* the agent picks the session, not the model */
                        json_t *params = json_deep_copy(
                                json_object_get(x, "inputSchema"));
                        json_object_del(json_object_get(params, "properties"),
                                        "session_id");
                        json_array_append_new(
                                fns,
                                json_pack("{s:s,s:{s:O,s:s,s:o}}", "type",
                                          "function", "function", "name",
                                          json_object_get(x, "name"),
                                          "description",
                                          a->sessions
                                                  ? "Run code in this task's "
                                                    "sandbox for its language "
                                                    "(no network, every limit "
                                                    "enforced) and return its "
                                                    "status, stdout, stderr "
                                                    "and results. For python, "
                                                    "node and bash the sandbox "
                                                    "lives for the whole task: "
                                                    "variables, imports and "
                                                    "files in /workspace stay "
                                                    "from one call to the next "
                                                    "and the last expression's "
                                                    "value is returned; other "
                                                    "languages run in a fresh "
                                                    "sandbox each time."
                                                  : "Run a program in a fresh, "
                                                    "isolated sandbox (no "
                                                    "network, every limit "
                                                    "enforced) and return its "
                                                    "status, stdout, stderr "
                                                    "and resource use. Nothing "
                                                    "persists between calls.",
                                          "parameters", params));
                }
                json_decref(t);
                json_object_set_new(req, "tools", fns);
                json_object_set_new(req, "tool_choice", json_string("auto"));
        }
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        return body;
}

/* An answer other than 2xx: the error in err; whether a retry may pass;
 * *no_tools when the endpoint refuses function calling. */
static bool http_error(const al_http_response *r, al_error *err,
                       bool *no_tools) {
        json_t *j = r->body ? json_loads(r->body, JSON_ALLOW_NUL, NULL) : NULL;
        const char *m = json_string_value(
                json_object_get(json_object_get(j, "error"), "message"));
        al_error_set(err, EPROTO,
                     "the model endpoint answered HTTP %ld%s%.300s", r->status,
                     m ? ": " : "", m ? m : "");
        *no_tools = r->status == 400 && m && strstr(m, "tool");
        json_decref(j);
        /* 429 and 5xx may pass; other 4xx will not */
        return r->status == 429 || r->status >= 500;
}

/* A 2xx answer: its choices[0].message (a new reference), or NULL with
 * err when it has neither content nor tool calls. */
static json_t *reply_message(const al_http_response *r, al_error *err) {
        json_t *msg = NULL;
        json_t *j = json_loads(r->body ? r->body : "", JSON_ALLOW_NUL, NULL);
        json_t *m = json_object_get(
                json_array_get(json_object_get(j, "choices"), 0), "message");
        if (json_is_object(m) &&
            (json_is_string(json_object_get(m, "content")) ||
             json_is_array(json_object_get(m, "tool_calls"))))
                msg = json_incref(m);
        else
                al_error_set(err, EBADMSG,
                             "malformed reply from the model endpoint (no "
                             "choices[0].message with content or "
                             "tool_calls)%s",
                             r->truncated ? ", cut at 8 MiB" : "");
        json_decref(j);
        return msg;
}

/* Ask the model, with retries: the reply's message, or NULL with err. */
static json_t *ask(struct agent *a, al_error *err) {
        char *body = request_body(a);
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
                bool retry = true, no_tools = false;
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
                        retry = http_error(&r, err, &no_tools);
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
                } else
                        msg = reply_message(&r, err);
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
                agent_print_safe(stderr, "airlock agent: ", err->msg, tail);
                struct timespec ts = {
                        0, 250000000L << (attempt < 2 ? attempt : 2)};
                nanosleep(&ts, NULL);
        }
        free(body);
        if (!msg && stopping)
                al_error_set(err, ECANCELED, "stopped");
        return msg;
}

/* The profile name of a language (or alias), and whether it keeps
 * sessions; false for an unknown one. */
static bool session_language(const char *lang, char *name, size_t size) {
        al_spec *t = al_spec_new();
        al_error e = {0};
        bool ok = t && lang && al_spec_set_language(t, lang, &e) == 0;
        if (ok)
                snprintf(name, size, "%s", al_spec_language(t));
        al_spec_free(t);
        if (!ok)
                return false;
        for (size_t i = 0; i < al_languages_count(); i++)
                if (!strcmp(al_language_name(i), name))
                        return al_language_sessions(i) &&
                               al_language_available(i);
        return false;
}

static bool is_session_limit(const char *k) {
        for (const char *const *l = SESSION_LIMITS; *l; l++)
                if (!strcmp(*l, k))
                        return true;
        return false;
}

/* The task's session for lang, started on first use with the operator's
 * --limit values: its id (owned by a->session_ids), or NULL and why in
 * note (the run then goes to a fresh sandbox). */
static const char *task_session(struct agent *a, const char *lang, char *note,
                                size_t size) {
        json_t *have = json_object_get(a->session_ids, lang);
        if (json_is_string(have))
                return json_string_value(have);
        if (have) {
                /* it failed once this task: not started again per call */
                snprintf(note, size,
                         "[the %s session could not start; this ran in a "
                         "fresh sandbox, nothing is kept]\n",
                         lang);
                return NULL;
        }
        if (!a->session_ids)
                a->session_ids = json_object();
        json_t *args = json_pack("{s:s}", "language", lang);
        if (a->limits)
                json_object_set(args, "limits", a->limits);
        al_result *left = NULL;
        json_t *r =
                srv_api_call_tool(&a->caller, "create_session", args, &left);
        al_result_free(left);
        json_decref(args);
        const char *id = json_string_value(
                json_object_get(json_object_get(r, "structuredContent"), "id"));
        if (id && !json_is_true(json_object_get(r, "isError"))) {
                json_object_set_new(a->session_ids, lang, json_string(id));
                json_decref(r);
                return json_string_value(json_object_get(a->session_ids, lang));
        }
        json_object_set_new(a->session_ids, lang, json_null());
        const char *why = json_string_value(json_object_get(
                json_array_get(json_object_get(r, "content"), 0), "text"));
        snprintf(note, size,
                 "[the %s session could not start (%.300s); this ran in a "
                 "fresh sandbox, nothing is kept]\n",
                 lang, why ? why : "no answer");
        json_decref(r);
        return NULL;
}

void agent_close_sessions(struct agent *a) {
        const char *lang;
        json_t *id;
        json_object_foreach(a->session_ids, lang, id) {
                if (!json_is_string(id))
                        continue;
                json_t *args = json_pack("{s:O}", "session_id", id);
                al_result *left = NULL;
                json_decref(srv_api_call_tool(&a->caller, "close_session", args,
                                              &left));
                al_result_free(left);
                json_decref(args);
        }
        json_object_clear(a->session_ids);
}

/* Run one program through the run_code tool; the text for the model. */
static char *run(struct agent *a, unsigned turn, const char *via,
                 json_t *args) {
        /* the agent picks the session: one the model names is not its */
        json_object_del(args, "session_id");
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
                json_object_set_new(args, "limits", lim = json_copy(a->limits));
        char lang[64], note[512] = "";
        const char *sid = NULL;
        if (a->sessions && session_language(json_string_value(json_object_get(
                                                    args, "language")),
                                            lang, sizeof(lang)))
                sid = task_session(a, lang, note, sizeof(note));
        if (sid) {
                /* memory, pids, disk and open files are the session's,
                 * set when it started (the operator's --limit values): a
                 * cell takes wall, cpu and output */
                lim = json_object_get(args, "limits");
                const char *lk;
                json_t *lv;
                void *tmp;
                json_object_foreach_safe(lim, tmp, lk, lv) {
                        if (!is_session_limit(lk))
                                continue;
                        size_t used = strlen(note);
                        snprintf(note + used, sizeof(note) - used,
                                 "[limits.%s is the session's, set when it "
                                 "started; not changed for one call]\n",
                                 lk);
                        json_object_del(lim, lk);
                }
                json_object_set_new(args, "session_id", json_string(sid));
        }
        al_result *left = NULL;
        json_t *r = srv_api_call_tool(&a->caller, "run_code", args, &left);
        al_result_free(left);
        json_t *content = json_object_get(r, "content"), *x;
        size_t i;
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        if (f) {
                fputs(note, f);
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
        json_t *entry = json_pack(
                "{s:I,s:s,s:O*,s:O*,s:O*,s:O*,s:s}", "turn", (json_int_t)turn,
                "via", via, "language", json_object_get(args, "language"),
                "code", json_object_get(args, "code"), "status",
                json_object_get(sc, "status"), "audit_id",
                json_object_get(sc, "id"), "result", text ? text : "");
        if (sid)
                json_object_set_new(entry, "session_id", json_string(sid));
        /* with --warm: whether it started from a sandbox made ahead, and
         * why not */
        json_t *start = json_object_get(sc, "start"),
               *why = json_object_get(sc, "start_reason");
        if (entry && start)
                json_object_set(entry, "start", start);
        if (entry && why)
                json_object_set(entry, "start_reason", why);
        json_array_append_new(a->runs, entry);
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

/* One turn: ask, keep the reply in the conversation, run what it asks
 * for. true to go on (results were fed back); false when the loop ends
 * (an answer, or a failure of the model endpoint). */
static bool turn_step(struct agent *a, unsigned turn) {
        al_error e = {0};
        json_t *msg = ask(a, &e);
        if (!msg) {
                a->stopped = stopping ? "cancelled" : "model_error";
                snprintf(a->failure, sizeof(a->failure), "%s", e.msg);
                return false;
        }
        json_t *calls = json_object_get(msg, "tool_calls");
        const char *content =
                json_string_value(json_object_get(msg, "content"));
        json_t *keep = json_pack("{s:s,s:O}", "role", "assistant", "content",
                                 content ? json_object_get(msg, "content")
                                         : json_null());
        if (json_array_size(calls))
                json_object_set(keep, "tool_calls", calls);
        json_array_append_new(a->messages, keep);
        json_decref(a->last);
        a->last = msg;
        if (json_array_size(calls)) {
                tool_calls(a, turn, calls);
                return true;
        }
        if (content && code_blocks(a, turn, content))
                return true;
        a->answer = content ? content : "";
        a->stopped = "answer";
        return false;
}

void agent_loop(struct agent *a, const char *problem) {
        a->messages =
                json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content",
                          a->system, "role", "user", "content", problem);
        a->runs = json_array();
        a->answer = NULL;
        a->stopped = "max_turns";
        a->failure[0] = '\0';
        a->turns = 0;
        while (a->turns < a->max_turns && !stopping) {
                a->turns++;
                if (!turn_step(a, a->turns))
                        break;
        }
        /* the task is over: so are its sessions */
        agent_close_sessions(a);
}

void agent_free(struct agent *a) {
        json_decref(a->last);
        json_decref(a->messages);
        json_decref(a->runs);
        json_decref(a->limits);
        json_decref(a->session_ids);
        a->last = a->messages = a->runs = a->limits = a->session_ids = NULL;
}
