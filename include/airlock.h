/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * libairlock — run untrusted code in a fresh Linux sandbox.
 *
 * Lifecycle of one execution:
 *
 *   al_spec *s = al_spec_new();               construct
 *   al_spec_set_language(s, "python", &err);  describe the run: language,
 *   al_spec_set_code(s, src, len);            code, stdin, args, env,
 *   al_spec_add_file(s, "data.csv", ...);     input files, globs to collect,
 *   s->limits.wall_ms = 5000; ...             limits (al_limits)
 *   al_result *r = NULL;
 *   al_run(s, &r, &err);                      run: build the sandbox,
 *                                             supervise, collect, tear down
 *   ... r->status, r->stdout_buf, r->files ...
 *   al_result_free(r); al_spec_free(s);       destroy
 *
 * Every function returns 0 or -errno; on failure the al_error says why.
 * al_run() returns 0 whenever a result was produced, including results
 * whose status is timeout, memory_limit, rejected or internal_error.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIRLOCK_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_ERROR_MSG_MAX 512

/* Filled by library calls that fail; a fixed buffer, never allocated. */
typedef struct al_error {
        int code;                   /* positive errno value, 0 if unset */
        char msg[AL_ERROR_MSG_MAX]; /* NUL-terminated, may be empty */
} al_error;

/* The one vocabulary for limits, shared by the CLI, JSON, HTTP and MCP. */
typedef struct al_limits {
        uint64_t wall_ms;      /* wall clock for the run */
        uint64_t cpu_ms;       /* CPU time, all processes together */
        uint64_t memory_mb;    /* RAM, swap disabled */
        uint64_t pids;         /* processes and threads at once */
        uint64_t disk_mb;      /* workspace + /tmp together */
        uint64_t output_bytes; /* per stream (stdout, stderr) */
        uint64_t open_files;   /* RLIMIT_NOFILE */
        /* the egress proxy's caps, for a run with an allowlist
         * (al_spec_set_network); a run without one has no network */
        uint64_t net_connections; /* sockets the proxy holds at once: the
                                     code's to it and its own out */
        uint64_t net_bytes_out;   /* bytes sent out, all connections */
        uint64_t net_bytes_in;    /* bytes received, all connections */
        uint64_t net_idle_ms;     /* a connection silent this long closes */
} al_limits;

/* Defaults and the largest values a caller may ask for. */
extern const al_limits al_limits_default;
extern const al_limits al_limits_max;

/* Fill *l with the defaults. */
void al_limits_init(al_limits *l);
/* Set one limit by its vocabulary name ("wall_ms", "memory_mb", ...) from
 * a decimal string; rejects zero, negatives, overflow and values above
 * al_limits_max with a message naming the limit. */
int al_limits_set(al_limits *l, const char *name, const char *value,
                  al_error *err);
/* Check every field of *l against the ranges. */
int al_limits_validate(const al_limits *l, al_error *err);

/* The closed set of outcomes. */
typedef enum al_status {
        AL_STATUS_OK = 0,        /* exited 0 */
        AL_STATUS_ERROR,         /* exited non-zero (or compile failed) */
        AL_STATUS_TIMEOUT,       /* wall or CPU limit */
        AL_STATUS_MEMORY_LIMIT,  /* killed by the memory limit */
        AL_STATUS_OUTPUT_LIMIT,  /* stdout or stderr over its cap */
        AL_STATUS_KILLED,        /* killed by a signal */
        AL_STATUS_REJECTED,      /* refused before running */
        AL_STATUS_INTERNAL_ERROR /* airlock failed; nothing is assumed */
} al_status;

const char *al_status_name(al_status s);

typedef struct al_spec al_spec;

al_spec *al_spec_new(void);
al_spec *al_spec_free(al_spec *s); /* NULL-safe, returns NULL */

/* Language by profile name or alias (see al_languages_*). */
int al_spec_set_language(al_spec *s, const char *name, al_error *err);
/* The profile name of the language set ("python" for "py"), or NULL. */
const char *al_spec_language(const al_spec *s);
/* The source code (copied). */
int al_spec_set_code(al_spec *s, const void *code, size_t len, al_error *err);
/* Data for the program's standard input (copied); default: empty. */
int al_spec_set_stdin(al_spec *s, const void *data, size_t len, al_error *err);
int al_spec_add_arg(al_spec *s, const char *arg, al_error *err);
/* Add NAME=VALUE to the (otherwise fixed) environment. */
int al_spec_add_env(al_spec *s, const char *name, const char *value,
                    al_error *err);
/* Input file copied into the workspace. name is a relative path without
 * "..", absolute parts or empty components. */
int al_spec_add_file(al_spec *s, const char *name, const void *data, size_t len,
                     bool executable, al_error *err);
/* Glob, relative to the workspace, of output files to return. */
int al_spec_add_collect(al_spec *s, const char *glob, al_error *err);
/* Lower the cap on the bytes of all collected files together (default
 * and most: 64 MiB); files over it are skipped and named in files_note.
 * 0 restores the default. A server sets it from a key's ceiling. */
void al_spec_set_collect_max(al_spec *s, uint64_t bytes);
al_limits *al_spec_limits(al_spec *s);
/* Measure per-phase timings into the result (small cost). */
void al_spec_set_timing(al_spec *s, bool on);
/* A gate: fn is called once per al_run, in the calling thread, after the
 * (first) sandbox exists and while it builds its root, but before any of
 * the code is written into it or runs. If fn returns < 0, nothing runs:
 * the sandbox is killed and al_run fails with fn's error. The audit log
 * uses it to make its "started" record durable in parallel with the
 * sandbox set-up. fn is not called when al_run refuses the spec before
 * making a sandbox (a result with status rejected). */
void al_spec_set_gate(al_spec *s, int (*fn)(void *ctx, al_error *err),
                      void *ctx);
/* When fd becomes readable (e.g. a signalfd for SIGINT/SIGTERM), the run
 * is killed and cleaned up, with status "killed". -1 (default): none. */
void al_spec_set_cancel_fd(al_spec *s, int fd);
/* Let the run reach the hosts of allow (entries as `airlock run
 * --allow-net` takes them: "host[:port]", "*.suffix[:port]", IP literals)
 * through a proxy in its network namespace, and nothing else: -EINVAL
 * and err naming a bad entry. n = 0 takes the network away again. */
int al_spec_set_network(al_spec *s, const char *const *allow, size_t n,
                        al_error *err);

/* Hand the code's output to fn as it comes (stream 1: stdout, 2: stderr),
 * besides keeping it for the result; fn runs on the caller's thread while
 * the run lasts and must not block. */
void al_spec_set_output_fn(al_spec *s,
                           void (*fn)(void *ctx, int stream, const void *buf,
                                      size_t n),
                           void *ctx);

/* A returned output file. */
typedef struct al_file {
        char *name; /* relative to the workspace */
        char *mime; /* guessed from the name and magic bytes */
        unsigned char *data;
        size_t size;
} al_file;

/* Which protection layers were active for this run. time_ns: the run
 * had a time namespace of its own whose CLOCK_MONOTONIC and CLOCK_BOOTTIME
 * started near 0 (the host's uptime and boot time hidden). */
typedef struct al_protections {
        bool user_ns, pid_ns, mount_ns, net_ns, ipc_ns, uts_ns, cgroup_ns,
                time_ns;
        bool pivot_root, readonly_root, no_new_privs, caps_dropped, seccomp,
                setsid, rlimits;
        const char *cgroup; /* "v2", "v1" or "none" */
        bool cg_memory, cg_pids, cg_cpu;
        const char *id_mode; /* "root-slot" or "userns-self" */
        uint32_t uid;        /* host uid the code ran as */
        char note[256];      /* e.g. why cgroups are missing */
} al_protections;

/* Where a run's time went, in milliseconds. The sandbox builds its side
 * (namespaces, mounts, inputs) on its own CPU while the supervisor writes
 * the id maps and sets up the cgroup, so phases overlap and do not add up
 * to total_ms. setup_ms is what airlock cost before the code started. */
typedef struct al_timing {
        double prepare_ms;    /* checks, argv/env, filter, cgroup probe,
                                 slot, pipes (for C: includes compiling) */
        double cgroup_ms;     /* create the run's cgroup, write limits */
        double clone_ms;      /* clone(): new user and pid namespaces */
        double namespaces_ms; /* sandbox: mount, ipc, uts namespaces */
        double idmap_ms;      /* supervisor: uid/gid maps written */
        double attach_ms;     /* joining the cgroup (0 when born in it) */
        double gate_ms;       /* supervisor: the caller's gate, e.g. the
                                 audit's started record made durable
                                 while the sandbox builds its root */
        double mounts_ms;     /* sandbox: new root, /proc, /dev, tmpfs,
                                 pivot_root, hostname, loopback */
        double net_wait_ms;   /* sandbox: waiting for the network namespace
                                 that a helper makes in parallel */
        double inputs_ms;     /* sandbox: cgroup ns, code + input files */
        double lockdown_ms;   /* rlimits, caps, no_new_privs, filter, start
                                 of the payload up to its execve */
        double seccomp_ms;    /* of which: loading the seccomp filter */
        double run_ms;        /* execve to the payload's exit */
        double exit_ms;       /* payload exit to the sandbox gone */
        double collect_ms;    /* output files read */
        double teardown_ms;   /* cgroup removal, pipes closed */
        double setup_ms;      /* al_run start to the payload's execve */
        double total_ms;      /* al_run start to its return */
} al_timing;

typedef struct al_result {
        al_status status;
        char reason[256]; /* short words: which limit, or the error */
        int exit_code;    /* -1 if killed by a signal or not run */
        int signal;       /* 0 if none */
        unsigned char *stdout_buf, *stderr_buf;
        size_t stdout_len, stderr_len;
        bool stdout_truncated, stderr_truncated;
        uint64_t wall_ms, cpu_ms, memory_peak_bytes;
        char limits_hit[128]; /* comma-separated: wall,cpu,memory,pids,
                                 disk,output,open_files */
        al_file *files;
        size_t n_files;
        char files_note[2048]; /* e.g. files skipped over the caps */
        al_limits limits;      /* the limits actually applied */
        al_protections protections;
        bool has_compile;          /* the language compiles first */
        struct al_result *compile; /* result of the compile step, or NULL */
        bool has_timing;
        al_timing timing;
        char audit_id[40];     /* set by the caller that audited the run
                                  (airlock-audit.h); "" when none */
        char *findings_json;   /* static-validation findings (a JSON
                                  array, airlock-check.h) set by the
                                  caller that checked the code; owned,
                                  freed with the result; NULL: none */
        char *network_json; /* a run with an allowlist: its proxy's
                               report, a JSON array of connection attempts
                               (egress); owned; NULL: no network */
        char start[8];         /* "warm", "cold" (a server with warm
                                  pools), or "" */
        char start_reason[32]; /* why a run was cold: "limits", "env",
                                  "pool_empty", "asked" ... */
        struct al_sbx_leftover *leftover; /* private: al_result_teardown */
} al_result;

/* Run the spec in a fresh sandbox. */
int al_run(const al_spec *s, al_result **ret, al_error *err);
al_result *al_result_free(al_result *r); /* NULL-safe, returns NULL */
/* The teardown of a finished run: remove its (empty) cgroup and drop its
 * namespaces and workspace, which the kernel then frees. Every process of
 * the run is already dead when al_run returns; this is bookkeeping that
 * need not delay the result, so al_run leaves it to the caller: call it
 * once the result is delivered (from any thread, or from a child process
 * so the caller's exit does not wait for it). al_result_free does it if
 * nobody did. Idempotent. */
void al_result_teardown(al_result *r);

/* Languages: built-in profiles, optionally replaced or extended by a JSON
 * file (same format as languages/default.json). */
int al_languages_load_file(const char *path, al_error *err);
size_t al_languages_count(void);
/* i-th profile name and its interpreter/compiler (for listings). */
const char *al_language_name(size_t i);
const char *al_language_describe(size_t i);
bool al_language_available(size_t i); /* its runtime exists on this host */
bool al_language_sessions(size_t i);  /* it has a session driver */

/* Result as one JSON object (newly allocated string). */
char *al_result_to_json(const al_result *r, bool pretty);

/* airlock doctor: one check per protection layer. */
typedef enum al_check_state {
        AL_CHECK_OK = 0,  /* active */
        AL_CHECK_WARN,    /* active in a weaker form */
        AL_CHECK_MISSING, /* not active on this host */
} al_check_state;

typedef struct al_check {
        char name[48]; /* stable id, e.g. "cgroup.memory" */
        al_check_state state;
        char detail[256]; /* what was found */
        char fix[256];    /* what to do about it, empty when ok */
        bool speed;       /* about start-up speed, not a protection: a
                             warning here does not make a layer weaker */
} al_check;

#define AL_MAX_CHECKS 32
/* Probe the host and run three tiny sandboxes; fills up to AL_MAX_CHECKS. */
int al_doctor(al_check *checks, size_t *ret_n, al_error *err);
const char *al_check_state_name(al_check_state s);

/* Where the library keeps its per-boot runtime files (slot locks). Default:
 * /run/airlock as root, $XDG_RUNTIME_DIR/airlock otherwise. (The lasting
 * state, the audit log and its key, is the state directory of
 * airlock-audit.h.) */
int al_set_runtime_dir(const char *dir, al_error *err);

/* A host path no sandbox may ever see (the state directory with the audit
 * log and its key). al_run refuses, with status rejected, a run whose
 * language profile would mount the path, one of its parents or anything
 * inside it; symlinks are resolved on both sides. Up to 8 paths. */
int al_protect_path(const char *path, al_error *err);

#ifdef __cplusplus
}
#endif
