/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The sandbox's seccomp-bpf filter.
 *
 * Lifecycle: the supervisor builds the filter once, before clone()
 * (al_seccomp_build, which allocates and uses libseccomp); the child installs
 * the ready BPF program right before execve() (al_seccomp_install, which does
 * not allocate and only makes raw system calls, so it is safe after clone()).
 * Child setup order: rlimits -> PR_SET_NO_NEW_PRIVS -> seccomp -> execve.
 */
#include <stddef.h>
#include <linux/filter.h>

#include "error.h"

typedef struct al_bpf {
        struct sock_filter *insns;
        size_t len;
} al_bpf;

/* What a rule does with the call. */
enum al_sc_action {
        AL_SC_EPERM,  /* fail with EPERM */
        AL_SC_ENOSYS, /* fail with ENOSYS, so libc falls back (clone3) */
        AL_SC_KILL,   /* kill the whole process with SIGSYS */
};

/* One row of the rule table, exported for docs, doctor and tests. */
typedef struct al_seccomp_rule {
        const char *syscall;   /* name as libseccomp knows it */
        enum al_sc_action action;
        const char *condition; /* NULL = always; else a human description */
        const char *why;       /* one line: why code runners never need it */
} al_seccomp_rule;

/* Build the filter for the native architecture. */
int al_seccomp_build(al_bpf *ret, al_error *err);
/* Install into the calling thread (needs no_new_privs already set). */
int al_seccomp_install(const al_bpf *bpf, al_error *err);
void al_bpf_free(al_bpf *bpf);

/* The table (static storage) and its length. */
const al_seccomp_rule *al_seccomp_rules(size_t *ret_n);
