/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Private to the sandbox's files: sandbox.c (the supervisor: slot,
 * cgroup, clone, id maps, gate, supervise, result), sandbox-init.c (the
 * child, "init" of the run's pid namespace, from clone to reaping the
 * payload: namespaces, ids, lockdown, payload exec) and sandbox-root.c
 * (the root it builds and the input files it writes), and sandbox-fds.c
 * (descriptors passed between them). What crosses
 * between them: the child's fd numbers and messages, the clock page, and
 * struct sandbox.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "sandbox.h"
#include "seccomp-filter.h"

/* fd numbers inside the child after it has tidied its table */
enum {
        CFD_SYNC = 3,     /* read: "go" from the supervisor */
        CFD_MSG = 4,      /* write: ready / error messages */
        CFD_SOCK = 5,     /* send the workspace dirfd */
        CFD_STATUS = 6,   /* write: payload wait status */
        CFD_LIVE_IN = 7,  /* a live run: the driver's requests (its fd 3) */
        CFD_LIVE_OUT = 8, /* a live run: the driver's replies (its fd 4) */
        CFD_FIRST_FREE = 9,
};

enum { MSG_READY = 1, MSG_ERROR = 2 };
/* The "go" bytes on the sync pipe: ids mapped; then cgroup joined, or
 * join it yourself with the fds sent on the socket (v1: see
 * al_cgroup_join_fds), or no cgroup after all (its creation failed:
 * rlimits take over). */
enum {
        SYNC_IDMAP = 'm',
        SYNC_CGROUP = 'c',
        SYNC_CGROUP_JOIN = 'j',
        SYNC_NO_CGROUP = 'n',
};

/* When the sandbox side reached each step, on the supervisor's
 * CLOCK_MONOTONIC (marks taken inside the run's time namespace are
 * shifted back by its offset: ck_now). A shared
 * anonymous page, written by init and by the payload before its execve
 * (which drops the mapping); the supervisor reads it after the run and
 * treats it as numbers for the timing report only. */
struct sbx_clock {
        double start;   /* child running after clone */
        double ns;      /* net, mount, ipc, uts namespaces made */
        double ids;     /* ids mapped, became the sandbox user */
        double mounts;  /* new root built and pivoted into */
        double net;     /* network namespace joined */
        double ready;   /* inputs written, workspace passed */
        double payload; /* locking down: rlimits, caps, filter */
        double filter0; /* seccomp filter: loading */
        double filter1; /* seccomp filter: loaded */
        double exec;    /* payload about to execve */
        double reaped;  /* init reaped the payload */
};
enum { READY_TIMENS = 1u << 0, READY_LO = 1u << 1 };

/* One message from child to supervisor; < PIPE_BUF so writes are atomic. */
struct child_msg {
        int32_t type;
        int32_t code;
        uint32_t flags;
        char msg[AL_ERROR_MSG_MAX];
};

struct sandbox {
        const al_sbx_config *c;
        bool root_mode;
        uid_t host_uid;
        gid_t host_gid;
        const al_bpf *bpf;
        struct sbx_clock *clock;
        bool cg_pids;   /* a pids cgroup bounds the run */
        bool cg_memory; /* a memory cgroup bounds the run */
        /* parent-side ends */
        int sync_w, msg_r, sock_p, status_r, in_w, out_r, err_r;
        /* child-side ends */
        int sync_r, msg_w, sock_c, status_w, in_r, out_w, errp_w;
};

/* How many fds init passes at ready (workspace, mount and network
 * namespaces), over a unix socket (SCM_RIGHTS): in flight, they keep what
 * they refer to alive even if the sender dies. */
#define AL_PASS_FDS 3
/* The most fds one message carries either way (init's AL_PASS_FDS, the
 * supervisor's AL_CG_JOIN_MAX). */
#define SBX_FDS_MAX 4

/* sandbox-fds.c: pass n fds over a unix socket (SCM_RIGHTS); receive one
 * message of 1..max fds (flags for recvmsg, e.g. MSG_DONTWAIT) and return
 * how many; -errno, and nothing kept, else. Used on both sides: no
 * allocation. */
int sbx_send_fds(int sock, const int *fds, size_t n);
int sbx_recv_fds(int sock, int *fds, size_t max, int flags);

/* sandbox-init.c: the child's life after clone(), until its _exit. */
_Noreturn void sbx_child_main(struct sandbox *sb);

/* sandbox-root.c, called by init: build the new root under a fresh tmpfs
 * and pivot into it; write the input files into the workspace. */
int sbx_setup_root(struct sandbox *sb, al_error *e);
int sbx_write_inputs(struct sandbox *sb, al_error *e);
