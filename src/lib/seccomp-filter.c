/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter: default allow, and a deny table of the kernel
 * surfaces that code runners never need. Built once per process with
 * libseccomp, exported as a BPF program, installed in each sandbox with a
 * raw prctl (no allocation after clone()).
 *
 * Knowingly NOT blocked, and why:
 *  - clone/fork/vfork without namespace flags: every runtime forks;
 *  - socket(): the network namespace is empty (loopback only), so sockets
 *    reach nothing; blocking AF_UNIX would break multiprocessing;
 *  - chmod/chown/mknod: the user namespace maps one id and the root is
 *    read-only; mknod of devices fails without CAP_MKNOD in the init ns;
 *  - prctl, setrlimit: they only restrict the caller further (no_new_privs
 *    and the locked securebits cannot be undone);
 *  - sysinfo, uname, /proc reads: information, not control (see
 *    SECURITY.md);
 *  - personality(0xffffffff), the query, is refused too (it is > 0x20008):
 *    libseccomp cannot allow one value while denying the range around it,
 *    and no common runtime queries its personality.
 */
#include "seccomp-filter.h"

#include <errno.h>
#include <seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "macro.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Which argument test a row applies. */
enum cond {
        C_ALWAYS,
        C_CLONE_NS,      /* arg0 has a namespace flag */
        C_IOCTL_TTY,     /* arg1 (low 32 bits) is TIOCSTI or TIOCLINUX */
        C_PERSONALITY,   /* arg0 not one of 0, 8, 0x20000, 0x20008 */
};

struct row {
        al_seccomp_rule pub;
        enum cond cond;
};

#define R(name, act, cnd, desc, why) {{name, act, desc, why}, cnd}
#define DENY(name, why) R(name, AL_SC_EPERM, C_ALWAYS, NULL, why)

static const struct row rows[] = {
        /* other processes */
        DENY("ptrace", "reads and writes other processes' memory and "
                       "registers; the classic sandbox escape"),
        DENY("process_vm_readv", "reads another process's memory"),
        DENY("process_vm_writev", "writes another process's memory"),
        DENY("kcmp", "compares kernel objects of other processes; an "
                     "information leak used in exploits"),
        DENY("pidfd_getfd", "steals a file descriptor from another process"),
        /* mounts: the root is built before the filter and must stay so */
        DENY("mount", "would change the sandbox's filesystem view"),
        DENY("umount2", "would uncover what is mounted over"),
        DENY("pivot_root", "changes the root; only airlock does that"),
        DENY("chroot", "changes the root; no runtime needs it here"),
        DENY("move_mount", "new mount API: moves mounts"),
        DENY("open_tree", "new mount API: clones mount trees"),
        DENY("fsopen", "new mount API: creates filesystem contexts"),
        DENY("fsconfig", "new mount API: configures filesystems"),
        DENY("fsmount", "new mount API: creates mounts"),
        DENY("fspick", "new mount API: reconfigures mounts"),
        DENY("mount_setattr", "changes mount flags (read-only, nosuid)"),
        /* namespaces */
        DENY("unshare", "new namespaces are new kernel attack surface "
                        "(user namespaces above all)"),
        DENY("setns", "joining namespaces is never needed inside"),
        R("clone", AL_SC_EPERM, C_CLONE_NS, "flags include CLONE_NEW*",
          "clone with namespace flags creates namespaces like unshare"),
        R("clone3", AL_SC_ENOSYS, C_ALWAYS, NULL,
          "its flags live in memory the filter cannot read; ENOSYS makes "
          "libc fall back to clone, which the filter can check"),
        /* kernel extension and introspection surfaces */
        DENY("bpf", "loads programs into the kernel; a large attack surface"),
        DENY("perf_event_open", "kernel performance counters; a large "
                                "attack surface and side channels"),
        DENY("userfaultfd", "lets code stall kernel page faults; a staple "
                            "of kernel race exploits"),
        DENY("io_uring_setup", "io_uring bypasses seccomp for the I/O it "
                               "performs and has a long CVE list"),
        DENY("io_uring_enter", "see io_uring_setup"),
        DENY("io_uring_register", "see io_uring_setup"),
        DENY("keyctl", "the kernel keyring is not namespaced; it can "
                       "establish system-wide persistent memory"),
        DENY("add_key", "see keyctl"),
        DENY("request_key", "see keyctl"),
        DENY("lookup_dcookie", "kernel profiling interface"),
        DENY("fanotify_init", "watches filesystems beyond the sandbox"),
        DENY("open_by_handle_at", "opens files by handle, bypassing the "
                                  "mount view (the 'shocker' escape)"),
        DENY("name_to_handle_at", "produces handles for open_by_handle_at"),
        /* the host itself */
        DENY("kexec_load", "replaces the running kernel"),
        DENY("kexec_file_load", "replaces the running kernel"),
        DENY("init_module", "loads kernel modules"),
        DENY("finit_module", "loads kernel modules"),
        DENY("delete_module", "unloads kernel modules"),
        DENY("reboot", "reboots or halts the host"),
        DENY("swapon", "changes the host's swap"),
        DENY("swapoff", "changes the host's swap"),
        DENY("acct", "turns process accounting on or off"),
        DENY("settimeofday", "sets the host clock"),
        DENY("clock_settime", "sets the host clock"),
        DENY("clock_adjtime", "adjusts the host clock"),
        DENY("adjtimex", "adjusts the host clock"),
        DENY("quotactl", "changes disk quotas"),
        DENY("quotactl_fd", "changes disk quotas"),
        DENY("nfsservctl", "kernel NFS server control"),
        DENY("syslog", "reads the kernel log (addresses, other tenants)"),
        DENY("vhangup", "hangs up the terminal"),
        DENY("uselib", "obsolete loader interface with a CVE history"),
        /* terminals and execution domains */
        R("ioctl", AL_SC_EPERM, C_IOCTL_TTY, "request is TIOCSTI or TIOCLINUX",
          "TIOCSTI pushes keystrokes into a terminal (CVE-2017-5226); the "
          "low 32 bits are compared because the kernel ignores the rest "
          "(CVE-2019-10063)"),
        R("personality", AL_SC_EPERM, C_PERSONALITY,
          "anything but 0, 8, 0x20000, 0x20008",
          "execution domains can disable ASLR or map page zero"),
};

const al_seccomp_rule *al_seccomp_rules(size_t *ret_n) {
        static al_seccomp_rule pub[ARRAY_SIZE(rows)];
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
                pub[i] = rows[i].pub;
        *ret_n = ARRAY_SIZE(rows);
        return pub;
}

static uint32_t action(enum al_sc_action a) {
        switch (a) {
        case AL_SC_ENOSYS:
                return SCMP_ACT_ERRNO(ENOSYS);
        case AL_SC_KILL:
                return SCMP_ACT_KILL_PROCESS;
        case AL_SC_EPERM:
                break;
        }
        return SCMP_ACT_ERRNO(EPERM);
}

static int add_row(scmp_filter_ctx ctx, const struct row *row, int nr) {
        uint32_t act = action(row->pub.action);
        int r = 0;
        switch (row->cond) {
        case C_ALWAYS:
                return seccomp_rule_add(ctx, act, nr, 0);
        case C_CLONE_NS: {
                static const uint64_t ns[] = {
                        CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                        CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                        CLONE_NEWCGROUP};
                for (size_t i = 0; i < ARRAY_SIZE(ns) && r == 0; i++)
                        r = seccomp_rule_add(
                                ctx, act, nr, 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
                return r;
        }
        case C_IOCTL_TTY:
                r = seccomp_rule_add(ctx, act, nr, 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
                                             TIOCSTI));
                if (r == 0)
                        r = seccomp_rule_add(ctx, act, nr, 1,
                                             SCMP_A1(SCMP_CMP_MASKED_EQ,
                                                     0xffffffffu, TIOCLINUX));
                return r;
        case C_PERSONALITY:
                /* Everything above 0x20008 (every flag from
                 * ADDR_NO_RANDOMIZE up, and values with high bits)... */
                r = seccomp_rule_add(ctx, act, nr, 1,
                                     SCMP_A0(SCMP_CMP_GT, 0x20008));
                /* ...and below it any bit but PER_LINUX32 (8) and
                 * UNAME26 (0x20000). */
                for (int bit = 0; bit < 17 && r == 0; bit++)
                        if (bit != 3)
                                r = seccomp_rule_add(
                                        ctx, act, nr, 1,
                                        SCMP_A0(SCMP_CMP_MASKED_EQ,
                                                1ull << bit, 1ull << bit));
                return r;
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
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
                int nr = seccomp_syscall_resolve_name(rows[i].pub.syscall);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* unknown on this arch: cannot be called */
                if ((r = add_row(ctx, &rows[i], nr)) < 0) {
                        al_error_errno(err, -r, "seccomp rule for %s",
                                       rows[i].pub.syscall);
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

int al_seccomp_install(const al_bpf *bpf, al_error *err) {
        struct sock_fprog prog = {.len = (unsigned short)bpf->len,
                                  .filter = bpf->insns};
        if (!bpf->insns || bpf->len == 0 || bpf->len > 65535)
                return al_error_set(err, EINVAL, "no seccomp filter built");
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return al_error_errno(err, errno, "install seccomp filter");
        return 0;
}

void al_bpf_free(al_bpf *bpf) {
        if (!bpf)
                return;
        free(bpf->insns);
        bpf->insns = NULL;
        bpf->len = 0;
}
