/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter: default allow, and a deny table of the kernel
 * surfaces that code runners never need. The table is data; the build
 * compiles it to BPF once with libseccomp (src/gen/), and the program is
 * part of the binary, installed in each sandbox with a raw prctl (no
 * allocation after clone(), no filter compiled per run).
 *
 * Knowingly NOT blocked, and why:
 *  - clone/fork/vfork without namespace flags: every runtime forks;
 *  - socket() of AF_UNIX, AF_INET, AF_INET6 (runtimes, multiprocessing and
 *    loopback servers need them; the network namespace is empty, so they
 *    reach only the run itself) and AF_NETLINK with NETLINK_ROUTE (glibc's
 *    getifaddrs, if_nameindex and getaddrinfo(AI_ADDRCONFIG) ask it for
 *    the interfaces: Python's socket.if_nameindex, Node's
 *    os.networkInterfaces; it answers for the run's own namespace). Every
 *    other family and netlink protocol is refused below;
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
#include <netinet/in.h>
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

#define R(name, act, cnd, desc, why)                                           \
        { name, act, desc, why, cnd }
#define DENY(name, why) R(name, AL_SC_EPERM, AL_SC_ALWAYS, NULL, why)

static const al_seccomp_rule rows[] = {
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
        R("clone", AL_SC_EPERM, AL_SC_CLONE_NS, "flags include CLONE_NEW*",
          "clone with namespace flags creates namespaces like unshare"),
        R("clone3", AL_SC_ENOSYS, AL_SC_ALWAYS, NULL,
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
        R("inotify_init", AL_SC_ENOSYS, AL_SC_ALWAYS, NULL,
          "a watch on the shared read-only binds (/usr) sees the host's "
          "and other runs' file opens; ENOSYS, like a kernel without "
          "inotify, sends tail -f and file watchers to their polling "
          "fallback"),
        R("inotify_init1", AL_SC_ENOSYS, AL_SC_ALWAYS, NULL,
          "see inotify_init"),
        DENY("open_by_handle_at", "opens files by handle, bypassing the "
                                  "mount view (the 'shocker' escape)"),
        DENY("name_to_handle_at", "produces handles for open_by_handle_at"),
        /* sockets: the network namespace is empty, but not every family
         * lives in one */
        R("socket", AL_SC_EAFNOSUPPORT, AL_SC_SOCKET_FAMILY,
          "family not AF_UNIX, AF_INET, AF_INET6 or AF_NETLINK",
          "vsock is not namespaced and reaches the hypervisor and the host's "
          "ports; AF_ALG, AF_PACKET, Bluetooth, XDP, TIPC, RDS and the rest "
          "are kernel surface no run needs; EAFNOSUPPORT is what a kernel "
          "without the family says, so programs take their fallback"),
        R("socket", AL_SC_EPROTONOSUPPORT, AL_SC_NETLINK_PROTO,
          "AF_NETLINK with a protocol other than NETLINK_ROUTE",
          "audit, uevent, connector and most generic netlink families are "
          "not namespaced (host-wide events and controls); route netlink "
          "sees only the run's own interfaces"),
        R("socket", AL_SC_EPROTONOSUPPORT, AL_SC_INET_PROTO,
          "AF_INET or AF_INET6 with a protocol other than 0, TCP, UDP, "
          "ICMP or ICMPv6",
          "SCTP, DCCP, MPTCP, L2TP, SMC and the like are rarely used kernel "
          "code with a history of exploits, and their modules are loaded "
          "on demand for anyone who asks; runtimes use TCP and UDP"),
        R("socket", AL_SC_EAFNOSUPPORT, AL_SC_INET_PACKET,
          "AF_INET with the type SOCK_PACKET",
          "the obsolete SOCK_PACKET type makes the kernel open an AF_PACKET "
          "socket, past the family rule"),
        R("socketpair", AL_SC_EAFNOSUPPORT, AL_SC_SOCKET_FAMILY,
          "family not AF_UNIX, AF_INET, AF_INET6 or AF_NETLINK",
          "see socket: socketpair creates its sockets the same way"),
        R("socketpair", AL_SC_EPROTONOSUPPORT, AL_SC_NETLINK_PROTO,
          "AF_NETLINK with a protocol other than NETLINK_ROUTE", "see socket"),
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
        DENY("_sysctl", "obsolete binary sysctl: on old kernels it reads "
                        "kernel values (boot_id) past the run's /proc view"),
        /* terminals and execution domains */
        R("ioctl", AL_SC_EPERM, AL_SC_IOCTL_TTY,
          "request is TIOCSTI or TIOCLINUX",
          "TIOCSTI pushes keystrokes into a terminal (CVE-2017-5226); the "
          "low 32 bits are compared because the kernel ignores the rest "
          "(CVE-2019-10063)"),
        R("personality", AL_SC_EPERM, AL_SC_PERSONALITY,
          "anything but 0, 8, 0x20000, 0x20008",
          "execution domains can disable ASLR or map page zero"),
};

bool al_seccomp_inet_proto_allowed(uint64_t proto) {
        return proto == 0 || proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
               proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

const al_seccomp_rule *al_seccomp_rules(size_t *ret_n) {
        *ret_n = ARRAY_SIZE(rows);
        return rows;
}

int al_seccomp_install(const al_bpf *bpf, al_error *err) {
        struct sock_fprog prog = {.len = (unsigned short)bpf->len,
                                  /* the kernel only reads it */
                                  .filter = (struct sock_filter *)bpf->insns};
        if (!bpf->insns || bpf->len == 0 || bpf->len > 65535)
                return al_error_set(err, EINVAL, "no seccomp filter built");
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return al_error_errno(err, errno, "install seccomp filter");
        return 0;
}

void al_bpf_free(al_bpf *bpf) {
        if (!bpf)
                return;
        free((void *)bpf->insns);
        bpf->insns = NULL;
        bpf->len = 0;
}
