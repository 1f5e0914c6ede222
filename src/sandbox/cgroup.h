/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Per-run cgroups, one interface over three backends: cgroup v2, cgroup v1
 * (one hierarchy per controller) and none (the caller then relies on rlimits
 * and must say so in the result).
 *
 * Lifecycle: al_cgroup_probe (once per process) -> al_cgroup_create (per run,
 * before the child execs) -> al_cgroup_attach(pid) -> ... run ... ->
 * al_cgroup_stats -> al_cgroup_kill -> al_cgroup_destroy (removes the dirs).
 *
 * All paths are relative to a root (normally "/sys/fs/cgroup") and the
 * process's own cgroup read from a /proc/self/cgroup-format file, so the
 * v2 and v1 backends can be tested against a fake tree in a temp dir.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum al_cg_kind { AL_CG_NONE = 0, AL_CG_V1, AL_CG_V2 };

typedef struct al_cg_probe {
        enum al_cg_kind kind;
        bool memory, pids, cpu, cpuacct; /* usable controllers */
        bool swap;                       /* swap limit file present */
        /* Socket buffers count against the memory limit: v2 charges them
         * to memory.current unless booted with cgroup.memory=nosocket; v1
         * only where memory.kmem.tcp.limit_in_bytes exists (it is set to
         * the memory limit, a budget of its own beside it). */
        bool sock;
        char reason[256]; /* why a controller is missing */
        char root[256];   /* e.g. /sys/fs/cgroup */
        /* parent directories under which per-run cgroups are created:
         * v2 uses parent_v2; v1 one per controller */
        char parent_v2[512];
        char parent_memory[512], parent_pids[512], parent_cpu[512],
                parent_cpuacct[512];
} al_cg_probe;

typedef struct al_cg_limits {
        uint64_t memory_bytes; /* 0 = no limit */
        uint64_t pids;         /* 0 = no limit */
        uint32_t cpu_percent;  /* 100 = one full core, 0 = no limit */
} al_cg_limits;

typedef struct al_cg_stats {
        uint64_t memory_peak_bytes; /* 0 if unknown */
        uint64_t cpu_usec;          /* 0 if unknown */
        uint64_t oom_kills;         /* OOM kills inside the group */
        uint64_t pids_denied;       /* forks refused by pids.max */
        /* v1: TCP buffers reached memory.kmem.tcp.limit_in_bytes: socket
         * writes then wait (or fail with EAGAIN) and nothing is killed.
         * (v2 charges them to memory.max with the rest of the run.) */
        bool sock_limit_hit;
        bool have_memory_peak, have_cpu;
} al_cg_stats;

typedef struct al_cgroup al_cgroup;

/* Detect the backend. root: "/sys/fs/cgroup"; self_cgroup_path:
 * "/proc/self/cgroup". Never fails hard: kind NONE with a reason instead. */
int al_cgroup_probe(const char *root, const char *self_cgroup_path,
                    al_cg_probe *ret, al_error *err);

/* Create the run's group(s) named `name` (e.g. "airlock-<runid>") under the
 * probed parents, and apply the limits. Swap is disabled where possible.
 * The caller owns `name` exclusively (a locked slot, or a pid-unique name):
 * a group of that name left by a dead supervisor is killed and replaced. */
int al_cgroup_create(const al_cg_probe *probe, const char *name,
                     const al_cg_limits *limits, al_cgroup **ret,
                     al_error *err);
int al_cgroup_attach(al_cgroup *cg, pid_t pid, al_error *err);
/* v1: the group's "tasks" files, opened for writing into fds[] (up to
 * AL_CG_JOIN_MAX), so that the child joins by itself: writing "0" moves
 * the writing thread alone, which the kernel does without the global
 * threadgroup lock whose write side waits an RCU grace period (~9 ms on
 * a host without favordynmods) for every al_cgroup_attach. The open
 * file's credentials are the ones checked, so the caller's. Returns how
 * many (0: not v1, or a file would not open: attach instead). */
#define AL_CG_JOIN_MAX 4
int al_cgroup_join_fds(const al_cgroup *cg, int *fds, size_t max);
/* v2: the group's directory fd, for clone3(CLONE_INTO_CGROUP), so the
 * child is born in it instead of attached; -1 for v1, none or NULL. */
int al_cgroup_clone_fd(const al_cgroup *cg);
int al_cgroup_stats(al_cgroup *cg, al_cg_stats *ret);
/* SIGKILL every process in the group (v2: cgroup.kill when present). */
int al_cgroup_kill(al_cgroup *cg);
/* Remove the directories (retrying briefly while tasks exit); NULL-safe;
 * returns NULL. */
al_cgroup *al_cgroup_destroy(al_cgroup *cg);
