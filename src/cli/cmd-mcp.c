/* SPDX-License-Identifier: MIT */
/* airlock mcp: the MCP server over stdio (one JSON-RPC message per line). */
#include <errno.h>
#include <getopt.h> /* optind */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlock-check.h"
#include "cli.h"
#include "mcp.h"
#include "service.h"

/* --help: the usage, the table's lines (cmd_mcp), the notes. */
/* clang-format off */
static const char usage[] =
"Usage: airlock mcp [--state DIR] [--policy FILE] [--policy-mode MODE]\n"
"                   [--warm LANG[=MODULES]] [--warm-pool N]\n"
"\n"
"A Model Context Protocol server on stdin/stdout (newline-delimited\n"
"JSON-RPC 2.0) with the tools run_code, check_code, list_languages,\n"
"create_session, close_session, upload_file and download_file. Every\n"
"run_code call and session step is validated, sandboxed and audited\n"
"(source mcp, actor user:NAME) as airlock run would. Logs go to stderr.\n"
"See airlock-mcp(1).\n"
"\n";
static const char notes[] =
"  -h, --help             this help\n"
"\n"
"An MCP host starts it as a command, e.g. {\"command\": \"airlock\",\n"
"\"args\": [\"mcp\"]}. It exits 0 when stdin closes; the sessions it\n"
"started (at most 8 at once) end then, audited.\n";
/* clang-format on */

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
        (void)sig;
        stopping = 1;
        srv_api_cancel_all(); /* a write(2) to an eventfd */
}

/* Write one reply line; false when stdout is gone. */
static bool send_line(const char *body) {
        return fputs(body, stdout) >= 0 && fputc('\n', stdout) != EOF &&
               fflush(stdout) == 0;
}

int mcp_local_option(struct srv_config *c, const char *name, const char *v) {
        al_error e = {0};
        if (srv_api_local_option(c, name, v, &e) < 0) {
                cli_error("%s", e.msg);
                return -1;
        }
        return 0;
}

/* --state, --policy, --policy-mode, --languages, --warm* of cmd_mcp. */
static int set_local(const struct cli_opt *o, const char *arg) {
        return mcp_local_option(o->ctx, o->name, arg) < 0 ? EXIT_USAGE : 0;
}

int mcp_local_start(struct srv_config *c) {
        al_error e = {0};
        if (srv_api_local_start(c, &e) < 0) {
                cli_error("%s", e.msg);
                return e.code == EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
        }
        return EXIT_OK;
}

/* Live sessions one airlock mcp holds at once: each is a sandbox with
 * its own memory limit, and one host connection has no need of more. */
#define MCP_MAX_SESSIONS 8

int cmd_mcp(int argc, char **argv) {
        struct srv_config cfg = {.policy_mode = "record",
                                 .workers = 1,
                                 .queue = 1,
                                 .max_sessions = MCP_MAX_SESSIONS,
                                 .max_sessions_per_key = MCP_MAX_SESSIONS};
        /* clang-format off */
        const struct cli_opt opts[] = {
                CLI_OPT_CALL("state", set_local, &cfg, 0,
"  --state DIR            state directory (audit log), as airlock run\n"),
                CLI_OPT_CALL("policy", set_local, &cfg, 0,
"  --policy FILE          static-validation policy (default: built-in)\n"),
                CLI_OPT_CALL("policy-mode", set_local, &cfg, 0,
"  --policy-mode MODE     off, record, warn or enforce (default record)\n"),
                CLI_OPT_CALL("languages", set_local, &cfg, 0,
"  --languages FILE       extra language profiles\n"),
                CLI_OPT_CALL("allow-net", set_local, &cfg, 0,
"  --allow-net LIST       hosts run_code's network.allow may name (the\n"
"                         ceiling; default none: no run gets network)\n"),
                CLI_OPT_CALL("warm", set_local, &cfg, 0,
"  --warm LANG[=MODULES]  keep sandboxes of LANG (python, node) ready, the\n"
"                         modules imported (e.g. python=numpy,pandas):\n"
"                         run_code starts from one (\"start\": \"warm\");\n"
"                         each serves one run and is destroyed (repeatable)\n"),
                CLI_OPT_CALL("warm-pool", set_local, &cfg, 0,
"  --warm-pool N          sandboxes ready per warm language (default 2)\n"),
                CLI_OPT_CALL("warm-max-age", set_local, &cfg, 0,
"  --warm-max-age SEC     a ready sandbox unused this long is replaced\n"
"                         (default 300)\n"),
                CLI_END};
        /* clang-format on */
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
        if (optind < argc) {
                cli_error("mcp: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        int rc = mcp_local_start(&cfg);
        if (rc != EXIT_OK)
                return rc;
        char actor[300];
        cli_local_actor(actor, sizeof(actor));
        struct mcp_session s = {.base = {.source = "mcp",
                                         .local_actor = actor,
                                         .peer = "stdio"}};
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* lines up to MCP_MAX_MESSAGE; a longer one is read to its end,
         * dropped and answered with an error */
        size_t cap = 1 << 16, len = 0;
        char *line = malloc(cap);
        bool overlong = false, out_ok = true;
        int ch;
        while (line && out_ok && !stopping && (ch = getchar()) != EOF) {
                if (ch != '\n') {
                        if (overlong)
                                continue;
                        if (len == MCP_MAX_MESSAGE) {
                                overlong = true;
                                continue;
                        }
                        if (len + 1 >= cap) {
                                size_t ncap = cap * 2 > MCP_MAX_MESSAGE + 1
                                                      ? MCP_MAX_MESSAGE + 1
                                                      : cap * 2;
                                char *b = realloc(line, ncap);
                                if (!b)
                                        break;
                                line = b;
                                cap = ncap;
                        }
                        line[len++] = (char)ch;
                        continue;
                }
                struct mcp_reply rep;
                size_t n = len;
                while (n && line[n - 1] == '\r')
                        n--;
                if (overlong)
                        mcp_handle(&s, line, MCP_MAX_MESSAGE + 1, &rep);
                else if (n)
                        mcp_handle(&s, line, n, &rep);
                else
                        rep = (struct mcp_reply){0}; /* blank line */
                if (rep.body)
                        out_ok = send_line(rep.body);
                free(rep.body);
                al_result_free(rep.leftover);
                len = 0;
                overlong = false;
        }
        free(line);
        /* the sessions made here live as long as the host's connection:
         * stdin closed ends them ("closed"), a signal too ("shutdown"),
         * each with its ended record before the audit log closes */
        srv_api_sessions_end_all(stopping ? "shutdown" : "closed");
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        srv_api_fini();
        return EXIT_OK;
}
