/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One sandboxed process tree, start to finish: build namespaces, root,
 * cgroup and filter; run argv; supervise wall time, CPU and output; kill
 * everything; report. The caller (run.c) turns languages into argv and
 * collects files through the returned workspace fd.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock.h"

typedef struct al_sbx_file {
        const char *name; /* validated relative path */
        const unsigned char *data;
        size_t len;
        bool executable;
} al_sbx_file;

/* Caps for what the caller may put into one sandbox. */
#define AL_MAX_ARGS 1024       /* argv entries, like bubblewrap's MAX_ARGS */
#define AL_MAX_ENV 256         /* extra environment variables */
#define AL_MAX_INPUT_FILES 256 /* input files */
#define AL_MAX_RO_PATHS 128    /* read-only binds */

/* Inside the sandbox the code runs as this uid/gid, in /workspace. */
#define AL_SANDBOX_UID 1000
#define AL_SANDBOX_GID 1000
#define AL_WORKSPACE "/workspace"

/* A live run: the payload is a session's driver, which takes requests
 * on its fd 3 and answers on its fd 4 while the run lasts; the caller
 * sees its output as it comes and can interrupt it (session.c). The
 * callbacks run on the thread that called al_sandbox_run. */
enum { AL_LIVE_GO = 0, AL_LIVE_INTERRUPT = 1, AL_LIVE_KILL = 2 };
/* A live run's usage so far (its cgroup's; zeros without one). */
typedef struct al_live_usage {
        uint64_t cpu_usec, memory_peak_bytes;
        uint64_t oom_kills;   /* processes the memory limit killed */
        uint64_t pids_denied; /* forks the pids limit refused */
        bool sock_limit_hit;  /* socket buffers at the memory limit */
        bool disk_full;       /* the workspace tmpfs is out of blocks or
                                 inodes */
} al_live_usage;
typedef struct al_sbx_live {
        int child_in;     /* read end the driver gets as fd 3 */
        int child_out;    /* write end the driver gets as fd 4 */
        int reply_fd;     /* the caller's end of fd 4: polled */
        int interrupt_fd; /* readable (an eventfd): SIGINT reaches the
                           * payload's process group (through init) */
        void *ctx;
        /* the payload's output, stream 1 or 2, instead of buffering it */
        int (*on_output)(void *ctx, int stream, const void *buf, size_t n);
        /* reply_fd readable, stdout and stderr drained before */
        int (*on_reply)(void *ctx, int fd);
        /* every AL_LIVE_TICK_MS, and before each reply: the run's CPU
         * so far and its memory peak (0 without a cgroup) */
        int (*on_tick)(void *ctx, const al_live_usage *u);
        /* the sandbox is ready: a directory fd of its workspace (the
         * callee's to close), the host ids its code runs as, and the
         * layers that hold it (as the result will say) */
        void (*on_ready)(void *ctx, int ws_fd, uid_t uid, gid_t gid,
                         const al_protections *prot);
} al_sbx_live;
#define AL_LIVE_TICK_MS 50

typedef struct al_sbx_config {
        char *const *argv;     /* argv[0] absolute or relative to workspace */
        char *const *envp;     /* complete environment */
        char *const *ro_paths; /* host paths bound read-only */
        const al_sbx_file *files;
        size_t n_files;
        const unsigned char *stdin_data;
        size_t stdin_len;
        al_limits limits;
        int cancel_fd; /* readable -> kill the run; -1 for none */
        bool timing;
        /* Called once the sandbox exists and before any of the code is
         * written into it; < 0 aborts the run (al_spec_set_gate). */
        int (*gate)(void *ctx, al_error *err);
        void *gate_ctx;
        const al_sbx_live *live; /* NULL: a one-shot run */
        /* egress by allowlist (egress.h): a proxy in the run's network
         * namespace, served from outside; NULL: no network */
        const struct al_net_policy *egress;
        /* a one-shot run's output as it comes, besides the buffers */
        void (*output_fn)(void *ctx, int stream, const void *buf, size_t n);
        void *output_ctx;
} al_sbx_config;

/* What a finished run still holds for the kernel to free: its cgroup
 * (empty: every process died with the pid namespace), its mount and
 * network namespaces and the workspace tmpfs. Freeing it is the teardown,
 * left to the caller so that it need not delay the result. */
typedef struct al_sbx_leftover al_sbx_leftover;

/* Run it. Fills r (status, output, usage, protections, timing). On
 * success *ret_workspace_fd is a directory fd of the dead sandbox's
 * workspace (the tmpfs stays alive while it is open) or -1, and
 * *ret_leftover what al_sbx_leftover_free must tear down (or NULL).
 * Returns 0 when r holds a result, -errno when no run was attempted. */
int al_sandbox_run(const al_sbx_config *c, al_result *r, int *ret_workspace_fd,
                   al_sbx_leftover **ret_leftover, al_error *err);
/* Kill what may remain in the cgroup, remove it, drop the namespaces.
 * NULL-safe; returns NULL. */
al_sbx_leftover *al_sbx_leftover_free(al_sbx_leftover *l);

/* What this host offers, for doctor and for results. */
typedef struct al_host_info {
        bool root;
        bool userns; /* user namespaces can be created */
        bool timens; /* time namespaces exist */
        bool mount_setattr;
        char userns_why[256];
} al_host_info;
void al_host_probe(al_host_info *ret);

/* Test hook: use this cgroup probe instead of the host's (NULL: the
 * host's again). The caller keeps *p alive. Lets a test run the v2 path
 * (runs born in their group with CLONE_INTO_CGROUP) on a cgroup2 mount
 * of a host that otherwise uses v1. */
struct al_cg_probe;
void al_sandbox_set_cgroup_probe(const struct al_cg_probe *p);
