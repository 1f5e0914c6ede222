/* SPDX-License-Identifier: MIT */
/*
 * airlock agent "PROBLEM": the flags of the code-execution agent, the
 * service started in process, the loop (src/agent/) run, its outcome
 * printed. Every run is validated, limited and audited with source
 * "agent".
 */
#include <errno.h>
#include <getopt.h>
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

/* clang-format off */
static void help(FILE *f) {
        fputs(
"Usage: airlock agent [OPTIONS] PROBLEM|-\n"
"\n"
"Ask a model (any OpenAI-compatible chat-completions endpoint) to solve\n"
"PROBLEM by writing code; run that code in fresh sandboxes and send the\n"
"results back until the model gives a final answer. See airlock-agent(1).\n"
"\n"
"  --base-url URL         the API base (default $AIRLOCK_AGENT_BASE_URL,\n"
"                         $OPENAI_BASE_URL, else https://api.openai.com/v1);\n"
"                         requests go to URL/chat/completions\n"
"  --model NAME           default $AIRLOCK_AGENT_MODEL, $OPENAI_MODEL,\n"
"                         else gpt-4o-mini\n"
"  --api-key-env NAME     the variable holding the key (default\n"
"                         OPENAI_API_KEY; none: no Authorization header)\n"
"  --mode MODE            tools (function calling), markdown (fenced code\n"
"                         blocks in the reply), auto (default: tools, and\n"
"                         code blocks in a reply without tool calls; an\n"
"                         endpoint that refuses tools gets markdown)\n"
"  --max-turns N          model requests at most (default 8)\n"
"  --request-timeout SEC  one model request (default 60)\n"
"  --retries N            retries of a failed model request (network,\n"
"                         timeout, 429, 5xx, malformed reply; default 2)\n"
"  --default-lang LANG    for untagged code blocks (default python)\n"
"  --system TEXT          replace the system prompt\n"
"  --state DIR, --policy FILE, --policy-mode MODE   as airlock run\n"
"  --limit NAME=VALUE     a limit for every run (repeatable), as run\n"
"At most 8 runs per reply; further tool calls or code blocks are answered\n"
"\"not run\".\n"
"  --json                 print the whole transcript as JSON\n"
"  -h, --help             this help\n"
"\n"
"Exit status: 0 a final answer; 1 stopped by --max-turns; 2 usage;\n"
"9 the model endpoint failed (after the retries); 8 airlock failed.\n",
              f);
}
/* clang-format on */

enum {
        OPT_BASE = 256,
        OPT_MODEL,
        OPT_KEY_ENV,
        OPT_MODE,
        OPT_TURNS,
        OPT_RTIMEOUT,
        OPT_RETRIES,
        OPT_DEFLANG,
        OPT_SYSTEM,
        OPT_STATE,
        OPT_POLICY,
        OPT_POLICY_MODE,
        OPT_LIMIT,
        OPT_JSON,
};

static const struct option opts[] = {
        {"base-url", required_argument, NULL, OPT_BASE},
        {"model", required_argument, NULL, OPT_MODEL},
        {"api-key-env", required_argument, NULL, OPT_KEY_ENV},
        {"mode", required_argument, NULL, OPT_MODE},
        {"max-turns", required_argument, NULL, OPT_TURNS},
        {"request-timeout", required_argument, NULL, OPT_RTIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"default-lang", required_argument, NULL, OPT_DEFLANG},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"state", required_argument, NULL, OPT_STATE},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"policy-mode", required_argument, NULL, OPT_POLICY_MODE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};

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
                          .default_lang = "python",
                          .system = agent_default_system};
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
        int c;
        uint64_t v;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                        help(stdout);
                        json_decref(a.limits);
                        return EXIT_OK;
                case OPT_BASE:
                        a.base = optarg;
                        break;
                case OPT_MODEL:
                        a.model = optarg;
                        break;
                case OPT_KEY_ENV:
                        key_env = optarg;
                        break;
                case OPT_MODE:
                        if (!strcmp(optarg, "tools"))
                                a.auto_mode = false;
                        else if (!strcmp(optarg, "markdown"))
                                a.tools = a.auto_mode = false;
                        else if (strcmp(optarg, "auto")) {
                                cli_error("--mode: tools, markdown or auto");
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_TURNS:
                case OPT_RTIMEOUT:
                case OPT_RETRIES:
                        if (al_parse_u64(optarg, &v) < 0 ||
                            (c != OPT_RETRIES && !v) || v > 1000) {
                                cli_error("%s wants a number from %d to 1000",
                                          c == OPT_TURNS ? "--max-turns"
                                          : c == OPT_RETRIES
                                                  ? "--retries"
                                                  : "--request-timeout",
                                          c == OPT_RETRIES ? 0 : 1);
                                return EXIT_USAGE;
                        }
                        if (c == OPT_TURNS)
                                a.max_turns = (unsigned)v;
                        else if (c == OPT_RETRIES)
                                a.retries = (unsigned)v;
                        else
                                a.timeout_ms = (long)v * 1000;
                        break;
                case OPT_DEFLANG:
                        if (!al_lang_normalise(optarg)) {
                                cli_error("--default-lang: unknown language "
                                          "'%s'",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        a.default_lang = optarg;
                        break;
                case OPT_SYSTEM:
                        a.system = optarg;
                        break;
                case OPT_STATE:
                case OPT_POLICY:
                case OPT_POLICY_MODE:
                        if (mcp_local_option(&cfg,
                                             c == OPT_STATE    ? "state"
                                             : c == OPT_POLICY ? "policy"
                                                               : "policy-mode",
                                             optarg) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_LIMIT: {
                        char *eq = strchr(optarg, '=');
                        uint64_t lv;
                        if (!eq || al_parse_u64(eq + 1, &lv) < 0) {
                                cli_error("--limit wants NAME=NUMBER, got "
                                          "'%s'",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        if (!a.limits)
                                a.limits = json_object();
                        *eq = '\0';
                        json_object_set_new(a.limits, optarg,
                                            json_integer((json_int_t)lv));
                        break;
                }
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        help(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind + 1 != argc) {
                cli_error("agent wants one PROBLEM (or - to read it from "
                          "stdin)");
                return EXIT_USAGE;
        }
        if (settle(&a, key_env) < 0)
                return EXIT_USAGE;
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
        srv_api_fini();
        return rc;
}
