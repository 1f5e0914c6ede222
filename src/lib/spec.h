/* SPDX-License-Identifier: MIT */
#pragma once
/* The inside of an al_spec, shared by run.c (which builds and runs it) and
 * audit.c (which records what it holds). Callers outside the library see
 * only the opaque type and its setters in airlock.h. */
#include <stdbool.h>
#include <stddef.h>

#include "airlock.h"
#include "profile.h"

struct in_file {
        char *name;
        unsigned char *data;
        size_t len;
        bool exec;
};

struct al_spec {
        const al_profile *lang;
        unsigned char *code;
        size_t code_len;
        bool has_code;
        unsigned char *stdin_data;
        size_t stdin_len;
        char **args;
        size_t n_args;
        char **env; /* NAME=VALUE */
        size_t n_env;
        struct in_file *files;
        size_t n_files, input_total;
        char **collect;
        size_t n_collect;
        al_limits limits;
        bool timing;
        int cancel_fd;
        int (*gate)(void *ctx, al_error *err);
        void *gate_ctx;
};
