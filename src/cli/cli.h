/* SPDX-License-Identifier: MIT */
#pragma once
/* The airlock front-end: one file per subcommand, dispatched from main.c. */
#include <stdbool.h>
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

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mcp(int argc, char **argv);
int cmd_agent(int argc, char **argv);

/* Why a Markdown block is not run (airlock extract, run --markdown), in
 * words, or NULL when it is: *ret_lang is then the language it runs as
 * (its tag, else default_lang). only: take only blocks of this language
 * (NULL: all). */
struct al_block;
const char *cli_block_skip_reason(const struct al_block *b, const char *only,
                                  const char *default_lang, char *buf,
                                  size_t size, const char **ret_lang);

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
