/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The sandbox's seccomp-bpf filter.
 *
 * Lifecycle: at build time, src/gen/gen-bpf compiles the rule table with
 * libseccomp (al_seccomp_build) into a C array that becomes part of the
 * library (al_seccomp_program); test-seccomp checks that the two agree.
 * The child installs the program right before execve() (al_seccomp_install,
 * which does not allocate and only makes raw system calls, so it is safe
 * after clone()).
 * Child setup order: rlimits -> PR_SET_NO_NEW_PRIVS -> seccomp -> execve.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#include "error.h"

typedef struct al_bpf {
        const struct sock_filter *insns;
        size_t len;
} al_bpf;

/* What a rule does with the call. */
enum al_sc_action {
        AL_SC_EPERM,        /* fail with EPERM */
        AL_SC_ENOSYS,       /* fail with ENOSYS, so libc falls back (clone3) */
        AL_SC_KILL,         /* kill the whole process with SIGSYS */
        AL_SC_EAFNOSUPPORT, /* fail like a kernel without the family */
        AL_SC_EPROTONOSUPPORT, /* fail like a kernel without the protocol */
};

/* Which argument test a rule applies. */
enum al_sc_cond {
        AL_SC_ALWAYS,
        AL_SC_CLONE_NS,      /* arg0 has a namespace flag */
        AL_SC_IOCTL_TTY,     /* arg1 (low 32 bits) is TIOCSTI or TIOCLINUX */
        AL_SC_PERSONALITY,   /* arg0 not one of 0, 8, 0x20000, 0x20008 */
        AL_SC_SOCKET_FAMILY, /* arg0 not AF_UNIX, AF_INET, AF_INET6 or
                              * AF_NETLINK (all 64 bits compared) */
        AL_SC_NETLINK_PROTO, /* arg0 AF_NETLINK, arg2 not NETLINK_ROUTE */
        AL_SC_INET_PROTO,    /* arg0 AF_INET or AF_INET6, arg2 not 0, TCP,
                              * UDP, ICMP or ICMPv6 */
        AL_SC_INET_PACKET,   /* arg0 AF_INET, arg1 & 0xf SOCK_PACKET */
};

/* One row of the rule table, exported for docs, doctor, tests and the
 * build-time compiler. */
typedef struct al_seccomp_rule {
        const char *syscall; /* name as libseccomp knows it */
        enum al_sc_action action;
        const char *condition; /* NULL = always; else a human description */
        const char *why;       /* one line: why code runners never need it */
        enum al_sc_cond cond;
} al_seccomp_rule;

/* The filter compiled at build time for the native architecture (static
 * storage; never fails). */
void al_seccomp_program(al_bpf *ret);
/* Compile the table with libseccomp (src/gen/seccomp-build.c: only the
 * build tool and the tests link it; the library does not need libseccomp
 * at run time). */
int al_seccomp_build(al_bpf *ret, al_error *err);
/* Install into the calling thread (needs no_new_privs already set). */
int al_seccomp_install(const al_bpf *bpf, al_error *err);
void al_bpf_free(al_bpf *bpf);

/* The protocols a run may ask for with AF_INET or AF_INET6: 0 (the
 * type's default), TCP, UDP, ICMP and ICMPv6 (ping sockets). */
bool al_seccomp_inet_proto_allowed(uint64_t proto);

/* The table (static storage) and its length. */
const al_seccomp_rule *al_seccomp_rules(size_t *ret_n);
