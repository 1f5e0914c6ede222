/* SPDX-License-Identifier: MIT */
/*
 * Compile the rule table (src/sandbox/seccomp-filter.c) to a BPF program with
 * libseccomp. Used at build time by gen-bpf, which writes the program into
 * the library, and by test-seccomp, which checks the two are the same.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "macro.h"
#include "seccomp-filter.h"
#include "util.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static uint32_t action(enum al_sc_action a) {
        switch (a) {
        case AL_SC_ENOSYS:
                return SCMP_ACT_ERRNO(ENOSYS);
        case AL_SC_KILL:
                return SCMP_ACT_KILL_PROCESS;
        case AL_SC_EAFNOSUPPORT:
                return SCMP_ACT_ERRNO(EAFNOSUPPORT);
        case AL_SC_EPROTONOSUPPORT:
                return SCMP_ACT_ERRNO(EPROTONOSUPPORT);
        case AL_SC_EPERM:
                break;
        }
        return SCMP_ACT_ERRNO(EPERM);
}

static int add_row(scmp_filter_ctx ctx, const al_seccomp_rule *row, int nr) {
        uint32_t act = action(row->action);
        int r = 0;
        switch (row->cond) {
        case AL_SC_ALWAYS:
                return seccomp_rule_add(ctx, act, nr, 0);
        case AL_SC_CLONE_NS: {
                static const uint64_t ns[] = {CLONE_NEWNS,    CLONE_NEWUTS,
                                              CLONE_NEWIPC,   CLONE_NEWUSER,
                                              CLONE_NEWPID,   CLONE_NEWNET,
                                              CLONE_NEWCGROUP};
                for (size_t i = 0; i < ARRAY_SIZE(ns) && r == 0; i++)
                        r = seccomp_rule_add(
                                ctx, act, nr, 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
                return r;
        }
        case AL_SC_IOCTL_TTY:
                r = seccomp_rule_add(
                        ctx, act, nr, 1,
                        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
                if (r == 0)
                        r = seccomp_rule_add(ctx, act, nr, 1,
                                             SCMP_A1(SCMP_CMP_MASKED_EQ,
                                                     0xffffffffu, TIOCLINUX));
                return r;
        case AL_SC_PERSONALITY:
                /* Everything above 0x20008 (every flag from
                 * ADDR_NO_RANDOMIZE up, and values with high bits)... */
                r = seccomp_rule_add(ctx, act, nr, 1,
                                     SCMP_A0(SCMP_CMP_GT, 0x20008));
                /* ...and below it any bit but PER_LINUX32 (8) and
                 * UNAME26 (0x20000). */
                for (int bit = 0; bit < 17 && r == 0; bit++)
                        if (bit != 3)
                                r = seccomp_rule_add(ctx, act, nr, 1,
                                                     SCMP_A0(SCMP_CMP_MASKED_EQ,
                                                             1ull << bit,
                                                             1ull << bit));
                return r;
        case AL_SC_SOCKET_FAMILY: {
                /* Deny every value but the allowed families, compared on
                 * all 64 bits: the kernel reads an int, so a family with
                 * high bits set (1 << 32 | AF_VSOCK) must not pass as an
                 * allowed one; libc never sets them. Everything above
                 * AF_NETLINK (the highest allowed) goes in one test, so
                 * families added to future kernels are refused too. */
                r = seccomp_rule_add(ctx, act, nr, 1,
                                     SCMP_A0(SCMP_CMP_GT, AF_NETLINK));
                for (uint64_t f = 0; f < AF_NETLINK && r == 0; f++)
                        if (f != AF_UNIX && f != AF_INET && f != AF_INET6)
                                r = seccomp_rule_add(ctx, act, nr, 1,
                                                     SCMP_A0(SCMP_CMP_EQ, f));
                return r;
        }
        case AL_SC_NETLINK_PROTO:
                return seccomp_rule_add(ctx, act, nr, 2,
                                        SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                        SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE));
        case AL_SC_INET_PROTO: {
                /* Deny every protocol but the allowed ones (all 64 bits,
                 * as for the family): one rule for everything above the
                 * highest allowed, one per value between them (libseccomp
                 * takes one comparison per argument and rule). */
                static const uint64_t fam[] = {AF_INET, AF_INET6};
                r = 0;
                for (size_t i = 0; i < 2 && r == 0; i++) {
                        r = seccomp_rule_add(
                                ctx, act, nr, 2, SCMP_A0(SCMP_CMP_EQ, fam[i]),
                                SCMP_A2(SCMP_CMP_GT, IPPROTO_ICMPV6));
                        for (uint64_t p = 0; p < IPPROTO_ICMPV6 && r == 0; p++)
                                if (!al_seccomp_inet_proto_allowed(p))
                                        r = seccomp_rule_add(
                                                ctx, act, nr, 2,
                                                SCMP_A0(SCMP_CMP_EQ, fam[i]),
                                                SCMP_A2(SCMP_CMP_EQ, p));
                }
                return r;
        }
        case AL_SC_INET_PACKET:
                return seccomp_rule_add(
                        ctx, act, nr, 2, SCMP_A0(SCMP_CMP_EQ, AF_INET),
                        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET));
        }
        return -EINVAL;
}

int al_seccomp_build(al_bpf *ret, al_error *err) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r, fd = -1;
        if (!ctx)
                return al_error_set(err, ENOMEM, "seccomp_init failed");
        /* i386 and x32 system calls (int 0x80, the x32 bit) do not match
         * the native filter: kill the process instead of letting a second
         * syscall table slip past the rules. */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
                                  SCMP_ACT_KILL_PROCESS)) < 0) {
                al_error_errno(err, -r, "seccomp: bad-arch action");
                goto out;
        }
        /* the caller sets no_new_privs itself, right before installing */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
                al_error_errno(err, -r, "seccomp: nnp attribute");
                goto out;
        }
        /* A binary tree over the syscall numbers instead of a chain: fewer
         * instructions run per call, and the kernel's per-syscall cache of
         * "always allowed" is built faster when the filter is loaded. */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0) {
                al_error_errno(err, -r, "seccomp: optimize attribute");
                goto out;
        }
        size_t n_rows;
        const al_seccomp_rule *rows = al_seccomp_rules(&n_rows);
        for (size_t i = 0; i < n_rows; i++) {
                int nr = seccomp_syscall_resolve_name(rows[i].syscall);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* unknown on this arch: cannot be called */
                if ((r = add_row(ctx, &rows[i], nr)) < 0) {
                        al_error_errno(err, -r, "seccomp rule for %s",
                                       rows[i].syscall);
                        goto out;
                }
        }
        /* libseccomp 2.5 exports only to an fd; a memfd keeps it in RAM. */
        fd = memfd_create("airlock-bpf", MFD_CLOEXEC);
        if (fd < 0) {
                r = al_error_errno(err, errno, "memfd_create");
                goto out;
        }
        if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
                al_error_errno(err, -r, "seccomp_export_bpf");
                goto out;
        }
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
            size > 65536 * (off_t)sizeof(struct sock_filter)) {
                r = al_error_set(err, EINVAL, "seccomp: bad BPF size %lld",
                                 (long long)size);
                goto out;
        }
        struct sock_filter *insns = malloc((size_t)size);
        if (!insns) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        if (pread(fd, insns, (size_t)size, 0) != size) {
                free(insns);
                r = al_error_errno(err, errno, "read exported BPF");
                goto out;
        }
        ret->insns = insns;
        ret->len = (size_t)size / sizeof(struct sock_filter);
        r = 0;
out:
        safe_close(fd);
        seccomp_release(ctx);
        return r;
}
