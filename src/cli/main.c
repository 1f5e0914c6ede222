/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "airlock.h"
#include "cli.h"

static const struct command {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} commands[] = {
        {"run", cmd_run, "run code in a fresh sandbox"},
        {"check", cmd_check, "static validation of code against a policy"},
        {"extract", cmd_extract, "the fenced code blocks of a Markdown reply"},
        {"audit", cmd_audit, "the tamper-evident record of every run"},
        {"serve", cmd_serve, "the execution service (HTTP/JSON API)"},
        {"keys", cmd_keys, "API keys of airlock serve"},
        {"repl", cmd_repl, "a live sandbox that keeps state between cells"},
        {"mcp", cmd_mcp, "a Model Context Protocol server on stdio"},
        {"agent", cmd_agent, "a model writes code, airlock runs it, until an answer"},
        {"doctor", cmd_doctor, "report which protections this host gives"},
};

void cli_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("airlock: error: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static void usage(FILE *f) {
        fprintf(f, "Usage: airlock COMMAND [OPTIONS]\n\n"
                   "Run untrusted code in a sandbox: namespaces, seccomp, "
                   "cgroups, rlimits,\nno network, read-only root, tmpfs "
                   "workspace.\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name,
                        commands[i].summary);
        fprintf(f, "\n'airlock COMMAND --help' for a command's options; "
                   "man airlock-run, airlock-check,\n"
                   "airlock-extract, airlock-serve, airlock-repl, airlock-mcp,\n"
                   "airlock-agent, airlock-audit, airlock-doctor.\n");
}

struct cli_main_clock cli_main_clock;

static double clock_ms(clockid_t id) {
        struct timespec ts;
        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
        /* three clock reads (~1 us): where run's --timing starts */
        cli_main_clock.cpu_ms = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        cli_main_clock.mono_ms = clock_ms(CLOCK_MONOTONIC);
        cli_main_clock.boot_ms = clock_ms(CLOCK_BOOTTIME);
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                if (argc > 2 && strcmp(argv[1], "help") == 0) {
                        char *hv[] = {argv[2], "--help", NULL};
                        for (size_t i = 0;
                             i < sizeof(commands) / sizeof(commands[0]); i++)
                                if (!strcmp(commands[i].name, argv[2]))
                                        return commands[i].fn(2, hv);
                }
                usage(stdout);
                return EXIT_OK;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("airlock %s\n", AIRLOCK_VERSION);
                return EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(commands[i].name, argv[1]))
                        return commands[i].fn(argc - 1, argv + 1);
        cli_error("unknown command '%s'", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
}
