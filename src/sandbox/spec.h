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
        uint64_t collect_max; /* bytes of all collected files; 0: default */
        al_limits limits;
        bool timing;
        int cancel_fd;
        int (*gate)(void *ctx, al_error *err);
        void *gate_ctx;
        /* a session: the profile's driver runs live, no code file */
        const struct al_sbx_live *live;
        void (*output_fn)(void *ctx, int stream, const void *buf, size_t n);
        void *output_ctx;
        struct al_net_policy *net; /* egress allowlist, or NULL */
};

/* Make s a session's spec (session.c): al_run then starts the profile's
 * driver, live, instead of running code. */
void al_spec_set_live(al_spec *s, const struct al_sbx_live *live);
/* The spec's egress allowlist, or NULL (no network). */
const struct al_net_policy *al_spec_network(const al_spec *s);
/* Lower the run's byte caps each way (net_bytes_out, net_bytes_in) to max
 * when they are above it (a policy file's network.max_bytes); no-op
 * without an allowlist or with max 0. */
void al_spec_network_cap_bytes(al_spec *s, uint64_t max);

/* The collect step (run.c): files under ws_fd matching one of globs into
 * r->files, within the caps; what is skipped or where the walk stopped
 * (entries, max_ms, cancel_fd readable) is said in r->files_note. */
struct al_collect_caps {
        size_t max_files;
        uint64_t max_file, max_total; /* bytes */
        uint64_t max_ms;              /* wall clock of the walk */
        int cancel_fd;                /* readable: stop; -1: none */
};
int al_collect_files(int ws_fd, char *const *globs, size_t n,
                     const struct al_collect_caps *caps, al_result *r);
