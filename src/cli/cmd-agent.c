/* SPDX-License-Identifier: MIT */
/*
 * airlock agent "PROBLEM": the flags of the code-execution agent, the
 * service started in process, the loop (src/agent/) run, its outcome
 * printed. Every run is validated, limited and audited with source
 * "agent".
 */
#include <errno.h>
#include <getopt.h> /* optind */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "airlock-check.h"
#include "airlock-extract.h"
#include "cli.h"
#include "httpc.h"
#include "json.h"
#include "macro.h"
#include "util.h"

/* The model endpoint failed (after the retries): a distinct exit status. */
#define EXIT_MODEL 9
/* Sessions of one task at once: one per language that keeps them. */
#define AGENT_MAX_SESSIONS 4

/* --help: the usage, the table's lines (cmd_agent), the notes. */
/* clang-format off */
static const char usage[] =
"Usage: airlock agent [OPTIONS] PROBLEM|-\n"
"\n"
"Ask a model (any OpenAI-compatible chat-completions endpoint) to solve\n"
"PROBLEM by writing code; run that code in a sandbox (one session per\n"
"language for the task, or fresh sandboxes with --no-session) and send the\n"
"results back until the model gives a final answer. See airlock-agent(1).\n"
"\n";
static const char notes[] =
"  -h, --help             this help\n"
"\n"
"Exit status: 0 a final answer; 1 stopped by --max-turns; 2 usage;\n"
"9 the model endpoint failed (after the retries); 8 airlock failed.\n";
/* clang-format on */

static void on_stop(int sig) {
        (void)sig;
        agent_stop();
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

/* --state, --policy, --policy-mode, --warm*: as airlock mcp takes them. */
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

/* The endpoint's URL and key from the flags and the environment: 0, or
 * -1 after a usage message. */
static int settle(struct agent *a, const char *key_env) {
        if (!a->base)
                a->base = "https://api.openai.com/v1";
        if (!a->model)
                a->model = "gpt-4o-mini";
        size_t bl = strlen(a->base);
        while (bl && a->base[bl - 1] == '/')
                bl--;
        snprintf(a->url, sizeof(a->url), "%.*s/chat/completions", (int)bl,
                 a->base);
        if (strncmp(a->url, "http://", 7) && strncmp(a->url, "https://", 8)) {
                cli_error("--base-url must be http:// or https://");
                return -1;
        }
        a->key = strcmp(key_env, "none") ? secure_getenv(key_env) : NULL;
        return 0;
}

/* The outcome: the transcript (--json) or the answer on stdout, why it
 * stopped on stderr; the exit status. */
static int report(const struct agent *a, bool json) {
        const char *stopped = a->stopped;
        int rc = !strcmp(stopped, "answer")      ? EXIT_OK
                 : !strcmp(stopped, "max_turns") ? EXIT_RUN_ERROR
                 : !strcmp(stopped, "cancelled") ? EXIT_CANCELLED
                                                 : EXIT_MODEL;
        if (json) {
                json_t *t =
                        json_pack("{s:s,s:s?,s:I,s:s,s:s,s:O,s:O}", "stopped",
                                  stopped, "answer", a->answer, "turns",
                                  (json_int_t)a->turns, "model", a->model,
                                  "mode", a->tools ? "tools" : "markdown",
                                  "runs", a->runs, "messages", a->messages);
                json_object_set_new(t, "sessions", json_boolean(a->sessions));
                if (a->failure[0])
                        json_object_set_new(t, "error", al_jstr(a->failure));
                char *s = json_dumps(t, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s)
                        puts(s);
                free(s);
                json_decref(t);
        } else if (a->answer)
                /* the model's words, which a prompt injection may have
                 * chosen: escaped for the terminal (--json has them as
                 * they are) */
                agent_print_safe(stdout, "", a->answer, "\n");
        if (!strcmp(stopped, "max_turns"))
                cli_error("stopped after %u model requests (--max-turns) "
                          "without a final answer",
                          a->turns);
        else if (a->failure[0]) {
                _cleanup_free_ char *safe = al_term_sanitize(
                        a->failure, strlen(a->failure), AL_TERM_KEEP_NEWLINES);
                cli_error("%s", safe ? safe : a->failure);
        }
        return rc;
}

int cmd_agent(int argc, char **argv) {
        struct agent a = {.max_turns = 8,
                          .retries = 2,
                          .timeout_ms = 60000,
                          .tools = true,
                          .auto_mode = true,
                          .sessions = true,
                          .default_lang = "python",
                          .system = agent_default_system};
        struct srv_config cfg = {.policy_mode = "record",
                                 .workers = 1,
                                 .queue = 1,
                                 .max_sessions = AGENT_MAX_SESSIONS,
                                 .max_sessions_per_key = AGENT_MAX_SESSIONS};
        const char *key_env = "OPENAI_API_KEY";
        bool json = false, no_session = false;
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
                CLI_OPT_CALL("warm", set_local, &cfg, 0,
"  --warm LANG[=MODULES], --warm-pool N, --warm-max-age SEC   as airlock\n"
"                         mcp: programs run in fresh sandboxes made ahead\n"
"                         with MODULES imported (--no-session; or a\n"
"                         language without sessions)\n"),
                CLI_OPT_CALL("warm-pool", set_local, &cfg, 0, NULL),
                CLI_OPT_CALL("warm-max-age", set_local, &cfg, 0, NULL),
                CLI_OPT_CALL("limit", set_limit, &a, 0,
"  --limit NAME=VALUE     a limit for every run (repeatable), as run\n"
"At most 8 runs per reply; further tool calls or code blocks are answered\n"
"\"not run\".\n"),
                CLI_OPT_FLAG("no-session", &no_session,
"  --no-session           run every program in a fresh sandbox; by default\n"
"                         python, node and bash code runs in one session\n"
"                         per language for the whole task (variables and\n"
"                         files survive between turns), ended with it\n"),
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
        if (settle(&a, key_env) < 0)
                return EXIT_USAGE;
        a.sessions = !no_session;
        if (no_session && a.system == agent_default_system)
                a.system = agent_oneshot_system;
        char *problem = read_problem(argv[optind]);
        if (!problem || !*problem) {
                cli_error("the problem is empty");
                free(problem);
                return EXIT_USAGE;
        }
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
        a.caller = (struct srv_request){
                .source = "agent", .local_actor = actor, .peer = "agent"};
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        agent_loop(&a, problem);
        int rc = report(&a, json);
        agent_free(&a);
        free(problem);
        /* the loop closed its sessions; a signal may have cut it short */
        srv_api_sessions_end_all(rc == EXIT_CANCELLED ? "shutdown" : "closed");
        srv_api_fini();
        return rc;
}
