/* SPDX-License-Identifier: MIT */
#pragma once
/* The airlock front-end: one file per subcommand, dispatched from main.c. */
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes shared by the subcommands (documented in --help and
 * docs/airlock-run.1). */
enum {
        EXIT_OK = 0,
        EXIT_RUN_ERROR = 1,  /* the code exited non-zero */
        EXIT_USAGE = 2,      /* bad flags or values */
        EXIT_REJECTED = 3,   /* refused before running */
        EXIT_TIMEOUT = 4,    /* wall or CPU limit */
        EXIT_MEMORY = 5,     /* memory limit */
        EXIT_OUTPUT = 6,     /* output limit */
        EXIT_KILLED = 7,     /* killed by a signal */
        EXIT_INTERNAL = 8,   /* airlock failed */
        EXIT_CANCELLED = 130 /* airlock itself got SIGINT/SIGTERM */
};

/* main's entry, for run's --timing (the process phases): CLOCK_MONOTONIC
 * and CLOCK_BOOTTIME in ms, and the CPU time the process had used by then
 * (CLOCK_PROCESS_CPUTIME_ID: the loader and constructors, exact). */
struct cli_main_clock {
        double mono_ms, boot_ms, cpu_ms;
};
extern struct cli_main_clock cli_main_clock;

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mcp(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_repl(int argc, char **argv);

/* Flags from a table (opts.c). Each subcommand lists its options once,
 * as cli_opt entries ending with CLI_END; cli_parse() runs getopt_long
 * over them (a short name where one is given, and -h, --help added
 * last), and --help prints the entries' help lines in table order
 * between usage and notes. A command whose help does not follow its
 * table (run, serve) gives its own help function instead. */
enum cli_kind {
        CLI_FLAG,   /* *flag = true */
        CLI_STRING, /* *str = the argument */
        CLI_CALL,   /* set(o, argument): 0, or the exit status to stop with */
        CLI_SKIP,   /* accepted, taken elsewhere (a config file) */
};

/* Flags that decide how errors in any other flag are reported and
 * recorded are read first, by cli_prescan(). */
enum cli_early {
        CLI_LATE,       /* cli_parse only */
        CLI_EARLY,      /* cli_prescan, and cli_parse again */
        CLI_EARLY_ONLY, /* cli_prescan only: cli_parse accepts and ignores */
};

struct cli_opt {
        const char *name;
        int has_arg; /* no_argument or required_argument (getopt.h) */
        char short_name; /* -x for the same option, or 0 */
        enum cli_kind kind;
        enum cli_early early;
        union {
                bool *flag;
                const char **str;
                void *ctx; /* CLI_CALL: for set() */
        };
        int (*set)(const struct cli_opt *o, const char *arg);
        int id;           /* CLI_CALL: which option, for a shared set() */
        const char *help; /* its lines in --help, or NULL */
};

#define CLI_OPT_FLAG(n, p, h)                                                 \
        {.name = (n), .has_arg = 0, .kind = CLI_FLAG, .flag = (p), .help = (h)}
#define CLI_OPT_STRING(n, p, h)                                               \
        {.name = (n), .has_arg = 1, .kind = CLI_STRING, .str = (p), .help = (h)}
#define CLI_OPT_CALL(n, fn, c, i, h)                                          \
        {.name = (n), .has_arg = 1, .kind = CLI_CALL, .set = (fn), .ctx = (c),  \
         .id = (i), .help = (h)}
#define CLI_OPT_SKIP(n, a)                                                    \
        {.name = (n), .has_arg = (a), .kind = CLI_SKIP}
#define CLI_END {.name = NULL}

/* Most entries of one table (cli_parse builds getopt's array on the
 * stack). */
#define CLI_MAX_OPTS 48

struct cli_cmd {
        const struct cli_opt *opts;
        const char *usage; /* --help: the text before the options' lines */
        const char *notes; /* and after them */
        void (*help)(FILE *f); /* or the whole help, not from the table */
};

/* --help on f, from the table (or cmd->help). */
void cli_help(const struct cli_cmd *cmd, FILE *f);
/* getopt_long over argv[first..]: -1 to go on (optind at the operands),
 * else the exit status to return: EXIT_OK after --help, EXIT_USAGE after
 * a flag getopt refuses (the help then goes to stderr), or what a setter
 * returned. */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, int first);
/* Before cli_parse: the early entries only, by their exact long name,
 * skipping the values of every option that takes one (so that -c --json
 * is a value, not a flag) and stopping at "--"; a flag getopt would
 * refuse is left to cli_parse. */
void cli_prescan(const struct cli_cmd *cmd, int argc, char **argv);

/* Why a Markdown block is not run (airlock extract, run --markdown), in
 * words, or NULL when it is: *ret_lang is then the language it runs as
 * (its tag, else default_lang). only: take only blocks of this language
 * (NULL: all). */
struct al_block;
const char *cli_block_skip_reason(const struct al_block *b, const char *only,
                                  const char *default_lang, char *buf,
                                  size_t size, const char **ret_lang);

/* "1.5" seconds -> 1500 ms, strictly: digits with at most three
 * decimals. 0, or -EINVAL/-ERANGE. */
int cli_seconds_to_ms(const char *s, uint64_t *ms);
/* The limit flags airlock run and airlock repl share (--timeout, --cpu,
 * --memory, --pids, --disk, --output, --open-files), by index: the
 * limit's JSON name and whether the flag's value is in seconds. */
enum {
        CLI_LIM_WALL,
        CLI_LIM_CPU,
        CLI_LIM_MEMORY,
        CLI_LIM_PIDS,
        CLI_LIM_DISK,
        CLI_LIM_OUTPUT,
        CLI_LIM_FILES,
        CLI_LIM_N
};
struct cli_limit_flag {
        const char *name;
        bool seconds;
};
extern const struct cli_limit_flag cli_limit_flags[CLI_LIM_N];

/* Who runs this command, as the audit log's actor: "user:NAME" (or
 * "uid:N" without a passwd entry). */
void cli_local_actor(char *out, size_t size);
/* --languages FILE (extra language profiles; "" or NULL: none): EXIT_OK,
 * or EXIT_USAGE after a message. */
int cli_languages_load(const char *file);

/* The service in process, for airlock mcp and airlock agent (cmd-mcp.c):
 * an option they share with serve, by long name (state, policy,
 * policy-mode, languages): 0, or -1 after a usage message. */
struct srv_config;
int mcp_local_option(struct srv_config *c, const char *name, const char *v);
/* Load --languages and start the service: EXIT_OK, or the exit status
 * after a message. */
int mcp_local_start(struct srv_config *c);

/* "airlock: error: ..." on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct al_spec;
struct al_spec *al_spec_free(struct al_spec *s);
static inline void al_spec_free_p(struct al_spec **p) {
        al_spec_free(*p);
}
