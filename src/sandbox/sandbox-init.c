/* SPDX-License-Identifier: MIT */
/*
 * The sandbox side: init, the child of clone() and pid 1 of the run's pid
 * namespace, from its first instruction to its _exit. It makes the other
 * namespaces (the network one by a helper, in parallel), waits for the
 * supervisor's two "go"s (ids mapped; cgroup joined), becomes the sandbox
 * user, has the root built (sandbox-root.c), passes the workspace, enters
 * its own time namespace, locks itself down in the fixed order rlimits ->
 * capabilities -> no_new_privs -> seccomp, starts the payload (setsid,
 * default signals, execve) and reaps it.
 *
 * Nothing here allocates: the caller of al_sandbox_run may be threaded,
 * and the child of a fork of it may only use async-signal-safe calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "egress.h"
#include "error.h"
#include "macro.h"
#include "sandbox-internal.h"
#include "seccomp-filter.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Report an error to the supervisor and exit. Async-signal-safe enough:
 * no allocation, only snprintf into a stack buffer and write. */
static _Noreturn void child_fail(const al_error *e) {
        struct child_msg m = {.type = MSG_ERROR, .code = e->code};
        memcpy(m.msg, e->msg, sizeof(m.msg));
        m.msg[sizeof(m.msg) - 1] = '\0';
        (void)!write(CFD_MSG, &m, sizeof(m));
        _exit(127);
}

/* Loopback up, so code that talks to itself over 127.0.0.1 works; the
 * namespace has no other interface. */
static bool loopback_up(void) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return false;
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
        if (ok) {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                ok = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
        }
        close(s);
        return ok;
}

/* Drop every capability for good: bounding set, ambient, securebits
 * locked so that no later uid change can bring them back, then capset to
 * zero. */
static int drop_caps(al_error *e) {
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return al_error_errno(e, errno, "drop bounding cap %d",
                                              cap);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
            errno != EINVAL)
                return al_error_errno(e, errno, "clear ambient caps");
        if (prctl(PR_SET_SECUREBITS,
                  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                          SECBIT_NO_SETUID_FIXUP |
                          SECBIT_NO_SETUID_FIXUP_LOCKED |
                          SECBIT_KEEP_CAPS_LOCKED |
                          SECBIT_NO_CAP_AMBIENT_RAISE |
                          SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                  0, 0, 0) < 0)
                return al_error_errno(e, errno, "lock securebits");
        struct __user_cap_header_struct h = {
                .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct d[2] = {{0}};
        if (syscall(SYS_capset, &h, d) < 0)
                return al_error_errno(e, errno, "capset");
        return 0;
}

static int set_rlimits(const al_limits *l, bool cg_pids, bool cg_memory,
                       al_error *e) {
        /* CPU: soft at the limit (SIGXCPU), hard one second later (SIGKILL).
         * Per process; the cgroup CPU check covers the whole tree. */
        rlim_t cpu_s = (rlim_t)((l->cpu_ms + 999) / 1000);
        const struct {
                int res;
                rlim_t soft, hard;
                const char *name;
        } rl[] = {
                {RLIMIT_CPU, cpu_s, cpu_s + 1, "cpu"},
                {RLIMIT_FSIZE, (rlim_t)l->disk_mb << 20,
                 (rlim_t)l->disk_mb << 20, "fsize"},
                {RLIMIT_NOFILE, (rlim_t)l->open_files, (rlim_t)l->open_files,
                 "nofile"},
                {RLIMIT_CORE, 0, 0, "core"},
                /* the pids cgroup's second bound (and the only one without
                 * cgroups): tasks of the sandbox uid, counted per user
                 * namespace since Linux 5.14, init included (the +1).
                 * With a pids cgroup, twice its bound, so that the cgroup
                 * trips first and is reported even when many forks are in
                 * flight at once. */
                {RLIMIT_NPROC, (rlim_t)(l->pids + 1) * (cg_pids ? 2 : 1),
                 (rlim_t)(l->pids + 1) * (cg_pids ? 2 : 1), "nproc"},
                /* without a memory cgroup, bound each process's private
                 * writable memory (not RLIMIT_AS: runtimes like V8 reserve
                 * far more address space than they use) */
                {RLIMIT_DATA,
                 cg_memory ? RLIM_INFINITY : (rlim_t)l->memory_mb << 20,
                 cg_memory ? RLIM_INFINITY : (rlim_t)l->memory_mb << 20,
                 "data"},
                /* memory is bounded by the cgroup; MEMLOCK and MSGQUEUE
                 * are kernel memory outside it */
                {RLIMIT_MEMLOCK, 0, 0, "memlock"},
                {RLIMIT_MSGQUEUE, 0, 0, "msgqueue"},
                {RLIMIT_STACK, 8u << 20, 8u << 20, "stack"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(rl); i++) {
                struct rlimit r = {.rlim_cur = rl[i].soft,
                                   .rlim_max = rl[i].hard};
                if (setrlimit(rl[i].res, &r) < 0)
                        return al_error_errno(e, errno, "setrlimit %s",
                                              rl[i].name);
        }
        return 0;
}

/* Move the fds the child needs to fixed numbers and close all others,
 * so no supervisor fd (slot locks, other runs' pipes) reaches the code. */
static int tidy_fds(struct sandbox *sb) {
        const al_sbx_live *lv = sb->c->live;
        int want[] = {sb->in_r,
                      sb->out_w,
                      sb->errp_w,
                      sb->sync_r,
                      sb->msg_w,
                      sb->sock_c,
                      sb->status_w,
                      lv ? lv->child_in : -1,
                      lv ? lv->child_out : -1};
        int hi[ARRAY_SIZE(want)];
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                if (want[i] >= 0 &&
                    (hi[i] = fcntl(want[i], F_DUPFD_CLOEXEC, 100)) < 0)
                        return -errno;
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                if (want[i] >= 0 &&
                    dup3(hi[i], (int)i, i <= 2 ? 0 : O_CLOEXEC) < 0)
                        return -errno;
                /* a slot this run does not use (CFD_LIVE_* of a run that
                 * is not live) may hold what airlock inherited: closed
                 * like everything above, or it reaches the code */
                if (want[i] < 0)
                        close((int)i);
        }
        if (syscall(SYS_close_range, CFD_FIRST_FREE, ~0U, 0) < 0)
                for (int fd = CFD_FIRST_FREE; fd < 4096; fd++)
                        close(fd);
        return 0;
}

/* The run's own clocks. A time namespace whose CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME start near 0: /proc/uptime (its first field), the btime
 * of /proc/stat, the start times in /proc/PID/stat and those clocks then
 * tell nothing of how long the host has been up. The kernel takes the
 * offsets only before any process is in the namespace; then init joins
 * it itself, so the payload (which shares init's memory until its execve,
 * and a CLONE_VM child stays in its parent's time namespace) is in it on
 * every kernel that has time namespaces. */
static double timens_shift_ms; /* added to marks taken inside */

static double ck_now(void) {
        return al_now_ms() + timens_shift_ms;
}

static bool enter_timens(void) {
        struct timespec mono, boot;
        if (unshare(CLONE_NEWTIME) < 0 ||
            clock_gettime(CLOCK_MONOTONIC, &mono) < 0 ||
            clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
                return false;
        /* Whole seconds: the kernel refuses an offset that would make a
         * clock negative, and a fraction of a second hides nothing. */
        char buf[96];
        int n = snprintf(buf, sizeof(buf),
                         "monotonic %lld 0\nboottime %lld 0\n",
                         -(long long)mono.tv_sec, -(long long)boot.tv_sec);
        /* The change of ids made init non-dumpable, so its /proc files
         * belong to the host's root, who has no name in here: dumpable
         * for this one open only (nothing of the code runs yet). */
        prctl(PR_SET_DUMPABLE, 1);
        int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        prctl(PR_SET_DUMPABLE, 0);
        if (fd < 0)
                return false;
        bool ok = write(fd, buf, (size_t)n) == n;
        close(fd);
        fd = ok ? open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC)
                : -1;
        if (fd < 0)
                return false;
        ok = setns(fd, CLONE_NEWTIME) == 0;
        close(fd);
        if (ok)
                timens_shift_ms = (double)mono.tv_sec * 1000.0;
        return ok;
}

/* The payload: a vfork-like child of init (sharing its memory until the
 * execve, so nothing is copied), already under init's rlimits, without
 * capabilities, with no_new_privs and the filter. It only starts a session
 * without a controlling terminal and execs the code. */
static int payload_main(void *arg) {
        struct sandbox *sb = arg;
        al_error e = {0};
        close(CFD_STATUS);
        if (setsid() < 0)
                al_error_errno(&e, errno, "setsid");
        else if (chdir(AL_WORKSPACE) < 0)
                al_error_errno(&e, errno, "chdir workspace");
        else {
                /* The code starts with the signal state of a fresh
                 * process, not the supervisor's: a threaded caller (serve
                 * blocks SIGTERM/SIGHUP/SIGINT and ignores SIGPIPE in its
                 * threads) would otherwise hand its mask and ignored
                 * signals through execve. Handlers reset themselves.
                 * Raw system calls: glibc's wrappers refuse the signals
                 * it keeps for itself (32, 33), which a caller may still
                 * have ignored (as it was under make(1) here). */
                struct {
                        void *handler;
                        unsigned long flags;
                        void *restorer;
                        uint64_t mask;
                } dfl = {0}; /* SIG_DFL, no flags, empty mask */
                for (int sig = 1; sig <= 64; sig++)
                        if (sig != SIGKILL && sig != SIGSTOP)
                                syscall(SYS_rt_sigaction, sig, &dfl, NULL,
                                        sizeof(uint64_t));
                uint64_t none = 0;
                syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL,
                        sizeof(none));
                /* A live run's driver gets its two channels as fds 3
                 * and 4; the message pipe (4 until now) moves aside,
                 * closed by the execve, back if it fails. */
                int msg = -1;
                if (sb->c->live && ((msg = fcntl(CFD_MSG, F_DUPFD_CLOEXEC,
                                                 CFD_FIRST_FREE)) < 0 ||
                                    dup3(CFD_LIVE_IN, 3, 0) < 0 ||
                                    dup3(CFD_LIVE_OUT, 4, 0) < 0)) {
                        al_error_errno(&e, errno, "driver fds");
                        if (msg >= 0)
                                dup3(msg, CFD_MSG, O_CLOEXEC);
                        child_fail(&e);
                }
                sb->clock->exec = ck_now();
                execve(sb->c->argv[0], sb->c->argv, sb->c->envp);
                al_error_errno(&e, errno, "cannot execute %s", sb->c->argv[0]);
                if (msg >= 0)
                        dup3(msg, CFD_MSG, O_CLOEXEC);
        }
        child_fail(&e);
}

/* Lock the calling process down for good, in the order that works:
 * rlimits -> capabilities -> no_new_privs -> seccomp. init does it once and
 * the payload inherits all of it (one filter, loaded once). */
static int lock_down(struct sandbox *sb, al_error *e) {
        int r;
        prctl(PR_SET_DUMPABLE, 0); /* /proc/1/mem is not the code's */
        if ((r = set_rlimits(&sb->c->limits, sb->cg_pids, sb->cg_memory, e)) <
                    0 ||
            (r = drop_caps(e)) < 0)
                return r;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return al_error_errno(e, errno, "no_new_privs");
        sb->clock->filter0 = ck_now();
        r = al_seccomp_install(sb->bpf, e);
        sb->clock->filter1 = ck_now();
        return r;
}

static char payload_stack[64 * 1024] __attribute__((aligned(16)));

/* init is a fork of the supervisor that never execs, so its argv and
 * environment are the supervisor's, and /proc/1/cmdline is readable by the
 * code: wipe both ranges (addresses from /proc/self/stat fields 48-51). */
static void wipe_inherited_args(void) {
        char buf[2048];
        int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the name may hold spaces */
        if (!p)
                return;
        unsigned long v[4] = {0};
        /* field 3 starts after ") "; we want fields 48..51 */
        int field = 2;
        for (char *tok = p + 1; *tok && field < 51;) {
                while (*tok == ' ')
                        tok++;
                field++;
                char *end;
                unsigned long x = strtoul(tok, &end, 10);
                if (field >= 48)
                        v[field - 48] = x;
                tok = end;
                while (*tok && *tok != ' ')
                        tok++;
        }
        for (int i = 0; i < 4; i += 2)
                if (v[i] && v[i + 1] > v[i] && v[i + 1] - v[i] < (64u << 20))
                        memset((void *)v[i], 0, v[i + 1] - v[i]);
}

/* The network namespace helper: shares the child's memory and fd table
 * (CLONE_VM | CLONE_FILES), makes a namespace with only loopback, brings
 * loopback up, and leaves an fd to it for the child to join. */
static char net_stack[64 * 1024] __attribute__((aligned(16)));
static int net_fd = -1, net_errno, proxy_fd = -1;
static bool net_lo_up;

/* A run with an allowlist: the proxy's socket, 127.0.0.1:AL_EGRESS_PORT
 * in the run's namespace, listening; the supervisor serves it from
 * outside (egress-proxy.c). */
static int proxy_socket(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(AL_EGRESS_PORT),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(fd, 64) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                errno = e;
                return -1;
        }
        return fd;
}

static int make_netns(void *arg) {
        const struct sandbox *sb = arg;
        if (unshare(CLONE_NEWNET) < 0) {
                net_errno = errno;
                return 1;
        }
        net_lo_up = loopback_up();
        if (sb->c->egress && (!net_lo_up || (proxy_fd = proxy_socket()) < 0)) {
                net_errno = net_lo_up ? errno : ENETDOWN;
                return 1;
        }
        net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (net_fd < 0) {
                net_errno = errno;
                return 1;
        }
        return 0;
}

/* namespaces: init's first steps, while the supervisor writes the id
 * maps; returns the network helper's pid once the first go came. */
static pid_t child_namespaces(struct sandbox *sb) {
        struct sbx_clock *ck = sb->clock;
        al_error e = {0};
        char go;

        ck->start = al_now_ms();
        wipe_inherited_args();

        /* If the supervisor dies, so does the whole sandbox (init's
         * death kills the pid namespace). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (tidy_fds(sb) < 0)
                _exit(126);
        /* The namespaces are made here, while the supervisor writes the id
         * maps and prepares the cgroup on the other side; the network
         * namespace, the costliest by far, by a helper on the other CPU
         * while this process builds the root. */
        pid_t net_helper = clone(make_netns, net_stack + sizeof(net_stack),
                                 CLONE_VM | CLONE_FILES | SIGCHLD, sb);
        if (net_helper < 0)
                child_fail((al_error_errno(&e, errno, "clone net helper"), &e));
        if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
                child_fail((al_error_errno(&e, errno, "namespaces"), &e));
        ck->ns = al_now_ms();
        if (read(CFD_SYNC, &go, 1) != 1 || go != SYNC_IDMAP)
                _exit(126); /* supervisor gone or gave up */
        return net_helper;
}

/* ids: become the sandbox user. */
static void child_become_user(struct sandbox *sb) {
        al_error e = {0};

        /* Become the sandbox user. Capabilities in the new user namespace
         * survive this because namespace-root (uid 0) is not mapped.
         * Raw system calls, not glibc's wrappers: those broadcast the
         * change to every thread glibc believes the process has, and a
         * child cloned from a threaded caller (airlock serve, the audit
         * writer) inherits that list but not the threads, and would wait
         * for them forever. This process is single-threaded, so the
         * per-thread system call is the whole change. */
        if (sb->root_mode && syscall(SYS_setgroups, 0, NULL) < 0)
                child_fail((al_error_errno(&e, errno, "setgroups"), &e));
        if (syscall(SYS_setresgid, AL_SANDBOX_GID, AL_SANDBOX_GID,
                    AL_SANDBOX_GID) < 0 ||
            syscall(SYS_setresuid, AL_SANDBOX_UID, AL_SANDBOX_UID,
                    AL_SANDBOX_UID) < 0)
                child_fail((al_error_errno(&e, errno, "set sandbox ids"), &e));
        /* A change of ids clears the parent-death signal: set it again.
         * A supervisor that died in between is seen below, when the read
         * of the second go finds the pipe's write end closed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sb->clock->ids = al_now_ms();
}

/* mounts: the new root (sandbox-root.c) and the run's host name. */
static void child_mounts(struct sandbox *sb) {
        al_error e = {0};
        int r;

        if ((r = sbx_setup_root(sb, &e)) < 0)
                child_fail(&e);
        if (sethostname("airlock", 7) < 0 || setdomainname("airlock", 7) < 0)
                child_fail((al_error_errno(&e, errno, "sethostname"), &e));
        sb->clock->mounts = al_now_ms();
}

/* Join the network namespace the helper made; returns READY_LO when it
 * brought loopback up. */
static uint32_t child_join_net(struct sandbox *sb, pid_t net_helper) {
        al_error e = {0};
        int hst = 0;

        while (waitpid(net_helper, &hst, __WALL) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(hst) || WEXITSTATUS(hst) != 0 || net_fd < 0 ||
            setns(net_fd, CLONE_NEWNET) < 0)
                child_fail((al_error_errno(&e, net_errno ? net_errno : errno,
                                           "network namespace"),
                            &e));
        uint32_t flags = net_lo_up ? READY_LO : 0;
        sb->clock->net = al_now_ms();
        return flags;
}

/* v1: join the run's group in every hierarchy by writing "0" (this
 * thread) to the "tasks" fds the supervisor opened and sent. Moving
 * oneself, a single thread, takes no global lock; the supervisor moving
 * the child would wait an RCU grace period. init is single-threaded (the
 * network helper is a process of its own, and gone). */
static void join_cgroup(struct sandbox *sb) {
        al_error e = {0};
        int fds[SBX_FDS_MAX];
        int n = sbx_recv_fds(CFD_SOCK, fds, SBX_FDS_MAX, 0);

        (void)sb;
        if (n < 0)
                child_fail((al_error_errno(&e, -n, "join cgroup: fds"), &e));
        for (int i = 0; i < n; i++) {
                int w = (int)write(fds[i], "0", 1);
                int we = errno;
                close(fds[i]);
                if (w != 1)
                        child_fail((al_error_errno(&e, w < 0 ? we : EIO,
                                                   "join cgroup"),
                                    &e));
        }
}

/* inputs: after the second go, the input files, the fds passed to the
 * supervisor, the time namespace; then ready. */
static void child_inputs(struct sandbox *sb, uint32_t flags) {
        struct sbx_clock *ck = sb->clock;
        al_error e = {0};
        char go;
        int r;

        /* Second go: the cgroup holds us now, so what is written from here
         * on (the input files) is charged to the run, and the cgroup
         * namespace can take the run's group as its root. */
        if (read(CFD_SYNC, &go, 1) != 1 ||
            (go != SYNC_CGROUP && go != SYNC_CGROUP_JOIN &&
             go != SYNC_NO_CGROUP))
                _exit(126);
        if (go == SYNC_NO_CGROUP)
                sb->cg_pids = sb->cg_memory = false;
        if (go == SYNC_CGROUP_JOIN)
                join_cgroup(sb);
        close(CFD_SYNC);
        if (unshare(CLONE_NEWCGROUP) < 0)
                child_fail((al_error_errno(&e, errno, "cgroup namespace"), &e));
        if ((r = sbx_write_inputs(sb, &e)) < 0)
                child_fail(&e);
        /* The workspace, for collecting files after the run, and the
         * mount and network namespaces: with the supervisor holding them,
         * tearing them down waits until the result is out. */
        int keep[AL_PASS_FDS] = {
                open(AL_WORKSPACE, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC),
                net_fd,
        };
        if (keep[0] < 0 || keep[1] < 0 ||
            (r = sbx_send_fds(CFD_SOCK, keep, AL_PASS_FDS)) < 0)
                child_fail((al_error_errno(
                                    &e, keep[0] < 0 || keep[1] < 0 ? errno : -r,
                                    "pass workspace"),
                            &e));
        for (size_t i = 0; i < AL_PASS_FDS; i++)
                close(keep[i]);
        /* the proxy's socket, in a message of its own after them */
        if (sb->c->egress && (r = sbx_send_fds(CFD_SOCK, &proxy_fd, 1)) < 0)
                child_fail(
                        (al_error_errno(&e, -r, "pass the proxy socket"), &e));
        if (proxy_fd >= 0)
                close(proxy_fd);
        close(CFD_SOCK);
        /* Uptime and boot time of the run's own (enter_timens); only
         * said when all of it worked. */
        if (enter_timens())
                flags |= READY_TIMENS;

        ck->ready = ck_now();
        struct child_msg m = {.type = MSG_READY, .flags = flags};
        if (write(CFD_MSG, &m, sizeof(m)) != sizeof(m))
                _exit(126);
}

/* lockdown: init locks itself down and starts the payload, which
 * inherits all of it; returns the payload's pid once it has exec'd. */
static pid_t child_start_payload(struct sandbox *sb) {
        al_error e = {0};

        sb->clock->payload = ck_now();
        if (lock_down(sb, &e) < 0)
                child_fail(&e);
        /* CLONE_VFORK: init sleeps until the payload has exec'd (or
         * failed, having reported why on CFD_MSG). */
        pid_t payload =
                clone(payload_main, payload_stack + sizeof(payload_stack),
                      CLONE_VM | CLONE_VFORK | SIGCHLD, sb);
        if (payload < 0)
                child_fail((al_error_errno(&e, errno, "start payload"), &e));
        return payload;
}

/* A live run: the supervisor's SIGUSR1 becomes SIGINT for the payload's
 * process group (it called setsid, so its pid names it): Python raises
 * KeyboardInterrupt, a shell's foreground child stops. Only init can
 * name the payload; the supervisor sees neither its pid nor its group. */
static volatile pid_t live_payload;

static void forward_interrupt(int sig) {
        int saved = errno;
        (void)sig;
        if (live_payload > 0)
                kill(-live_payload, SIGINT);
        errno = saved;
}

/* What init does last: wait for the payload and report its status. */
static _Noreturn void init_reap(struct sandbox *sb, pid_t payload) {
        struct sbx_clock *ck = sb->clock;

        if (sb->c->live) {
                live_payload = payload;
                struct sigaction sa = {.sa_handler = forward_interrupt};
                sigemptyset(&sa.sa_mask);
                sigaction(SIGUSR1, &sa, NULL);
                /* a threaded caller may have blocked it in its threads */
                sigset_t u;
                sigemptyset(&u);
                sigaddset(&u, SIGUSR1);
                sigprocmask(SIG_UNBLOCK, &u, NULL);
        }
        /* init: keep only the status pipe, reap. */
        close(0);
        close(1);
        close(2);
        close(CFD_MSG);
        close(CFD_LIVE_IN);
        close(CFD_LIVE_OUT);
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, 0);
                if (p == payload) {
                        ck->reaped = ck_now();
                        int32_t v = st;
                        (void)!write(CFD_STATUS, &v, sizeof(v));
                        _exit(0); /* kills whatever is left in the ns */
                }
                if (p < 0 && errno == ECHILD)
                        _exit(0);
        }
}

/* init, from clone() to its _exit, in the order the steps must come. */
_Noreturn void sbx_child_main(struct sandbox *sb) {
        pid_t net_helper = child_namespaces(sb);
        child_become_user(sb);
        child_mounts(sb);
        uint32_t flags = child_join_net(sb, net_helper);
        child_inputs(sb, flags);
        init_reap(sb, child_start_payload(sb));
}
