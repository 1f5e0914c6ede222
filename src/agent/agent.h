/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The code-execution agent loop (agent.c): ask an OpenAI-compatible
 * chat-completions endpoint, run the code the model writes through the
 * service's run_code tool (src/service/tools.c: validated, limited and
 * audited with source "agent"), send the results back, and stop on a final
 * answer or after max_turns. airlock agent (src/cli/cmd-agent.c) fills
 * the settings, starts the service in process, and prints the outcome.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "service.h"

/* The system prompt unless --system replaces it: with sessions (the
 * default), and with --no-session. */
extern const char agent_default_system[];
extern const char agent_oneshot_system[];

struct agent {
        /* settings */
        const char *base, *model, *key, *system, *default_lang;
        char url[2048];
        bool tools; /* offer run_code as a tool */
        /* one session per language for the whole task (the default), so
         * that the model's variables, imports and files survive between
         * turns; false (--no-session): every run in a fresh sandbox */
        bool sessions;
        bool auto_mode;
        unsigned max_turns, retries;
        long timeout_ms;
        json_t *limits; /* for every run, or NULL */
        /* who runs the code: source "agent", the local user as actor */
        struct srv_request caller;
        /* the conversation and what ran: turn, via, language, code,
         * result */
        json_t *messages, *runs;
        /* the outcome: stopped is "answer" (answer holds it), "max_turns",
         * "cancelled" or "model_error" (failure says why); turns is the
         * number of model requests */
        const char *answer, *stopped;
        char failure[600];
        unsigned turns;
        json_t *last; /* the last reply, which answer points into */
        /* the task's sessions: {language: session id} */
        json_t *session_ids;
};

/* Solve problem: turns until an answer, max_turns, a model failure or
 * agent_stop. */
void agent_loop(struct agent *a, const char *problem);
/* End the task's sessions (each audited as closed); agent_loop does it
 * when the loop ends. */
void agent_close_sessions(struct agent *a);
/* Drop what the loop and the settings hold (limits included). */
void agent_free(struct agent *a);
/* Stop the loop and cancel the runs in flight; async-signal-safe. */
void agent_stop(void);
/* Text from the endpoint or the model, for a person's terminal: no
 * escape sequence (screen clearing, OSC 52 clipboard) passes. */
void agent_print_safe(FILE *f, const char *prefix, const char *s,
                      const char *suffix);
