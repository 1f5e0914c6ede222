/* SPDX-License-Identifier: MIT */
/* The seccomp filter, rule by rule: each denied call fails with the
 * table's errno in a child that installed the filter; what runtimes need
 * still works; non-native ABIs are killed. The program itself is also run
 * through a small BPF interpreter, so the rules that the host's kernel
 * cannot show (a family it lacks, an ABI it has no entry for) are still
 * checked against the instructions the sandbox installs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/personality.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "seccomp-filter.h"
#include "tap.h"

static al_bpf bpf;

/* Run fn in a child under the filter; return its wait status. fn returns
 * the exit code the child should use. */
static int in_child(int (*fn)(long), long arg) {
        pid_t pid = fork();
        if (pid == 0) {
                al_error e;
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    al_seccomp_install(&bpf, &e) < 0)
                        _exit(200);
                _exit(fn(arg));
        }
        int st = 0;
        waitpid(pid, &st, 0);
        return st;
}

/* The same without the filter: what the host's kernel itself says. */
static int unfiltered(int (*fn)(long), long arg) {
        pid_t pid = fork();
        if (pid == 0)
                _exit(fn(arg));
        int st = 0;
        waitpid(pid, &st, 0);
        return st;
}

static int call_nr(long nr) {
        errno = 0;
        long r = syscall(nr, 0, 0, 0, 0, 0, 0);
        return r < 0 ? errno : 0;
}

static void table_has_reasons(void) {
        size_t n = 0;
        const al_seccomp_rule *rules = al_seccomp_rules(&n);
        ASSERT_TRUE(n >= 40);
        for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(rules[i].why && strlen(rules[i].why) >= 8);
                ASSERT_TRUE(rules[i].syscall != NULL);
        }
}

static void every_unconditional_rule(void) {
        size_t n = 0, tested = 0;
        const al_seccomp_rule *rules = al_seccomp_rules(&n);
        for (size_t i = 0; i < n; i++) {
                if (rules[i].condition)
                        continue;
                int nr = seccomp_syscall_resolve_name(rules[i].syscall);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                int want = rules[i].action == AL_SC_ENOSYS ? ENOSYS : EPERM;
                ASSERT_TRUE(rules[i].action == AL_SC_ENOSYS ||
                            rules[i].action == AL_SC_EPERM);
                int st = in_child(call_nr, nr);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != want)
                        printf("#   %s: wait status 0x%x, want exit %d\n",
                               rules[i].syscall, (unsigned)st, want);
                ASSERT_TRUE(WIFEXITED(st));
                ASSERT_INT_EQ(WEXITSTATUS(st), want);
                tested++;
        }
        ASSERT_TRUE(tested >= 40);
}

static int do_clone_ns(long flag) {
        long r = syscall(SYS_clone, flag | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        if (r > 0) {
                waitpid((pid_t)r, NULL, 0);
                return 0;
        }
        return errno;
}

static void clone_namespaces(void) {
        const long flags[] = {CLONE_NEWUSER,  CLONE_NEWNS,  CLONE_NEWPID,
                              CLONE_NEWNET,   CLONE_NEWIPC, CLONE_NEWUTS,
                              CLONE_NEWCGROUP};
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                int st = in_child(do_clone_ns, flags[i]);
                ASSERT_TRUE(WIFEXITED(st));
                ASSERT_INT_EQ(WEXITSTATUS(st), EPERM);
        }
        /* plain fork still works */
        int st = in_child(do_clone_ns, 0);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_INT_EQ(WEXITSTATUS(st), 0);
}

static int do_ioctl(long req) {
        int p[2];
        char c = 'x';
        if (pipe(p) < 0)
                return 99;
        errno = 0;
        long r = syscall(SYS_ioctl, p[0], req,
                         req == FIONREAD ? (void *)&r : (void *)&c);
        return r < 0 ? errno : 0;
}

static void tty_ioctls(void) {
        int st = in_child(do_ioctl, TIOCSTI);
        ASSERT_INT_EQ(WEXITSTATUS(st), EPERM);
        /* high bits set: the kernel ignores them, so must the filter */
        st = in_child(do_ioctl, (long)(TIOCSTI | (1UL << 32)));
        ASSERT_INT_EQ(WEXITSTATUS(st), EPERM);
        st = in_child(do_ioctl, (long)(TIOCLINUX | (0xffUL << 40)));
        ASSERT_INT_EQ(WEXITSTATUS(st), EPERM);
        st = in_child(do_ioctl, FIONREAD);
        ASSERT_INT_EQ(WEXITSTATUS(st), 0);
}

static int do_personality(long v) {
        errno = 0;
        long r = syscall(SYS_personality, v);
        return r < 0 ? errno : 0;
}

static void personality_values(void) {
        const long denied[] = {ADDR_NO_RANDOMIZE,
                               READ_IMPLIES_EXEC,
                               MMAP_PAGE_ZERO,
                               PER_SVR4,
                               0x1,
                               (long)(ADDR_NO_RANDOMIZE | (1UL << 40))};
        for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
                int st = in_child(do_personality, denied[i]);
                ASSERT_INT_EQ(WEXITSTATUS(st), EPERM);
        }
        const long allowed[] = {0, PER_LINUX32, UNAME26, UNAME26 | 8};
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
                int st = in_child(do_personality, allowed[i]);
                ASSERT_INT_EQ(WEXITSTATUS(st), 0);
        }
}

/* ---- the program, run in an interpreter of classic BPF ---------------- */

/* Run the program on one system call as the kernel would; -1 for an
 * instruction seccomp would not accept or a jump out of the program. */
static int bpf_eval(const al_bpf *p, const struct seccomp_data *d,
                    uint32_t *ret) {
        uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
        for (size_t pc = 0; pc < p->len; pc++) {
                const struct sock_filter *f = &p->insns[pc];
                uint32_t k = f->k, v = BPF_SRC(f->code) == BPF_X ? x : k;
                switch (BPF_CLASS(f->code)) {
                case BPF_LD:
                case BPF_LDX: {
                        uint32_t val;
                        if (BPF_MODE(f->code) == BPF_ABS &&
                            BPF_SIZE(f->code) == BPF_W && k % 4 == 0 &&
                            k + 4 <= sizeof(*d))
                                memcpy(&val, (const char *)d + k, 4);
                        else if (BPF_MODE(f->code) == BPF_IMM)
                                val = k;
                        else if (BPF_MODE(f->code) == BPF_MEM &&
                                 k < BPF_MEMWORDS)
                                val = mem[k];
                        else if (BPF_MODE(f->code) == BPF_LEN)
                                val = sizeof(*d);
                        else
                                return -1;
                        if (BPF_CLASS(f->code) == BPF_LD)
                                a = val;
                        else
                                x = val;
                        break;
                }
                case BPF_ST:
                case BPF_STX:
                        if (k >= BPF_MEMWORDS)
                                return -1;
                        mem[k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
                        break;
                case BPF_ALU:
                        switch (BPF_OP(f->code)) {
                        case BPF_ADD:
                                a += v;
                                break;
                        case BPF_SUB:
                                a -= v;
                                break;
                        case BPF_MUL:
                                a *= v;
                                break;
                        case BPF_OR:
                                a |= v;
                                break;
                        case BPF_AND:
                                a &= v;
                                break;
                        case BPF_XOR:
                                a ^= v;
                                break;
                        case BPF_NEG:
                                a = -a;
                                break;
                        case BPF_LSH:
                                a = v < 32 ? a << v : 0;
                                break;
                        case BPF_RSH:
                                a = v < 32 ? a >> v : 0;
                                break;
                        case BPF_DIV:
                        case BPF_MOD:
                                if (v == 0)
                                        return -1;
                                a = BPF_OP(f->code) == BPF_DIV ? a / v : a % v;
                                break;
                        default:
                                return -1;
                        }
                        break;
                case BPF_JMP: {
                        bool c;
                        switch (BPF_OP(f->code)) {
                        case BPF_JA:
                                pc += k;
                                continue;
                        case BPF_JEQ:
                                c = a == v;
                                break;
                        case BPF_JGT:
                                c = a > v;
                                break;
                        case BPF_JGE:
                                c = a >= v;
                                break;
                        case BPF_JSET:
                                c = (a & v) != 0;
                                break;
                        default:
                                return -1;
                        }
                        pc += c ? f->jt : f->jf;
                        break;
                }
                case BPF_RET:
                        *ret = BPF_RVAL(f->code) == BPF_A ? a : k;
                        return 0;
                case BPF_MISC:
                        if (BPF_MISCOP(f->code) == BPF_TAX)
                                x = a;
                        else
                                a = x;
                        break;
                default:
                        return -1;
                }
        }
        return -1; /* fell off the end: the kernel rejects such a program */
}

#define SIM_BROKEN 0xdeadbeefu

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

/* What the built-in program answers for one call. */
static uint32_t sim(uint32_t arch, int nr, uint64_t a0, uint64_t a1,
                    uint64_t a2) {
        struct seccomp_data d = {.nr = nr, .arch = arch, .args = {a0, a1, a2}};
        uint32_t r;
        return bpf_eval(&bpf, &d, &r) == 0 ? r : SIM_BROKEN;
}

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | (uint32_t)(e))

/* The interpreter agrees with the kernel on what the kernel can show here:
 * a denied call, an allowed one, a conditional one. */
static void interpreter_agrees_with_kernel(void) {
#ifdef NATIVE_ARCH
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_getpid, 0, 0, 0), SECCOMP_RET_ALLOW);
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_ptrace, 0, 0, 0), RET_ERRNO(EPERM));
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_clone3, 0, 0, 0), RET_ERRNO(ENOSYS));
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_clone, CLONE_NEWUSER, 0, 0),
                      RET_ERRNO(EPERM));
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_clone, SIGCHLD, 0, 0),
                      SECCOMP_RET_ALLOW);
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_ioctl, 0, TIOCSTI | (1ull << 32), 0),
                      RET_ERRNO(EPERM));
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_ioctl, 0, FIONREAD, 0),
                      SECCOMP_RET_ALLOW);
#endif
}

/* The arch rule, read off the program: whatever the host's kernel offers,
 * an i386 call (int $0x80 on x86-64) and an x32 call are killed, every
 * number of them. */
static void program_kills_foreign_abis(void) {
#if defined(__x86_64__)
        for (int nr = 0; nr < 512; nr++) {
                uint32_t r = sim(AUDIT_ARCH_I386, nr, 0, 0, 0);
                if (r != SECCOMP_RET_KILL_PROCESS)
                        printf("#   i386 system call %d: 0x%08x\n", nr, r);
                ASSERT_INT_EQ(r, SECCOMP_RET_KILL_PROCESS);
                r = sim(AUDIT_ARCH_X86_64, 0x40000000 | nr, 0, 0, 0);
                if (r != SECCOMP_RET_KILL_PROCESS)
                        printf("#   x32 system call %d: 0x%08x\n", nr, r);
                ASSERT_INT_EQ(r, SECCOMP_RET_KILL_PROCESS);
        }
        /* any other arch too (a 64-bit kernel with other compat entries) */
        ASSERT_INT_EQ(sim(AUDIT_ARCH_AARCH64, SYS_getpid, 0, 0, 0),
                      SECCOMP_RET_KILL_PROCESS);
        ASSERT_INT_EQ(sim(AUDIT_ARCH_X86_64, SYS_getpid, 0, 0, 0),
                      SECCOMP_RET_ALLOW);
#elif defined(NATIVE_ARCH)
        ASSERT_INT_EQ(sim(AUDIT_ARCH_ARM, 20, 0, 0, 0),
                      SECCOMP_RET_KILL_PROCESS);
#endif
}

/* ---- foreign ABIs on the real kernel ------------------------------------- */

/* What a probe outside the filter found: the kernel ran the i386 call, or
 * refused it itself (no IA-32 entry: "IA-32 emulation off", SIGSEGV). */
struct abi_probe {
        enum { ABI_RAN, ABI_REFUSED, ABI_UNKNOWN } state;
        int sig; /* ABI_REFUSED: the signal the kernel sent */
};

/* The probe's answer from its wait status and whether the call's side
 * effect was seen. */
static struct abi_probe abi_classify(int st, bool ran) {
        if (ran && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return (struct abi_probe){ABI_RAN, 0};
        if (!ran && WIFSIGNALED(st))
                return (struct abi_probe){ABI_REFUSED, WTERMSIG(st)};
        return (struct abi_probe){ABI_UNKNOWN, 0};
}

/* Whether the same call under the filter did what it must: it never ran;
 * where the kernel has the entry our filter killed it with SIGSYS; where
 * the kernel refuses it, the kernel's own signal came first (seccomp never
 * sees the call, so its rule is checked in program_kills_foreign_abis).
 * NULL when right, else why not. */
static const char *abi_verdict(struct abi_probe host, int st, bool ran) {
        if (ran)
                return "the foreign-ABI call ran under the filter";
        switch (host.state) {
        case ABI_RAN:
                return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS
                               ? NULL
                               : "the kernel has the entry, but the filter "
                                 "did not kill the call with SIGSYS";
        case ABI_REFUSED:
                return WIFSIGNALED(st) && WTERMSIG(st) == host.sig
                               ? NULL
                               : "the kernel refuses the call itself, but "
                                 "the sandboxed child did not die like the "
                                 "probe";
        case ABI_UNKNOWN:
                break;
        }
        return "the probe outside the filter was inconclusive";
}

#define W_EXIT(c) ((c) << 8)
#define W_SIG(s) (s)

/* Both branches of the decision, whichever one this host takes. */
static void abi_decision(void) {
        struct abi_probe ran = abi_classify(W_EXIT(0), true);
        struct abi_probe refused = abi_classify(W_SIG(SIGSEGV), false);
        ASSERT_INT_EQ(ran.state, ABI_RAN);
        ASSERT_INT_EQ(refused.state, ABI_REFUSED);
        ASSERT_INT_EQ(refused.sig, SIGSEGV);
        ASSERT_INT_EQ(abi_classify(W_EXIT(0), false).state, ABI_UNKNOWN);
        ASSERT_INT_EQ(abi_classify(W_SIG(SIGSEGV), true).state, ABI_UNKNOWN);
        ASSERT_INT_EQ(abi_classify(W_EXIT(3), false).state, ABI_UNKNOWN);
        /* the kernel has the entry: only SIGSYS from the filter will do */
        ASSERT_TRUE(abi_verdict(ran, W_SIG(SIGSYS), false) == NULL);
        ASSERT_TRUE(abi_verdict(ran, W_SIG(SIGSEGV), false) != NULL);
        ASSERT_TRUE(abi_verdict(ran, W_EXIT(0), false) != NULL);
        ASSERT_TRUE(abi_verdict(ran, W_SIG(SIGSYS), true) != NULL);
        /* the kernel refuses it: its signal, and still never the call */
        ASSERT_TRUE(abi_verdict(refused, W_SIG(SIGSEGV), false) == NULL);
        ASSERT_TRUE(abi_verdict(refused, W_SIG(SIGSEGV), true) != NULL);
        ASSERT_TRUE(abi_verdict(refused, W_EXIT(0), false) != NULL);
        ASSERT_TRUE(abi_verdict(refused, W_SIG(SIGKILL), false) != NULL);
        struct abi_probe unknown = {ABI_UNKNOWN, 0};
        ASSERT_TRUE(abi_verdict(unknown, W_SIG(SIGSYS), false) != NULL);
}

#if defined(__x86_64__)
static const char abi_mark[] = "foreign-abi-call-ran";
static int abi_pipe[2] = {-1, -1};

/* A write of abi_mark to the pipe through a foreign ABI: the bytes in the
 * pipe show whether the call ran. Its buffer is below 4 GiB, where a
 * 32-bit pointer reaches. */
static int do_foreign_write(long x32) {
        char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (buf == MAP_FAILED)
                return 99;
        memcpy(buf, abi_mark, sizeof(abi_mark) - 1);
        close(abi_pipe[0]);
        /* no core file where the kernel answers with SIGSEGV */
        setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
        long ret;
        if (x32) {
                ret = syscall(0x40000000L | SYS_write, abi_pipe[1], buf,
                              sizeof(abi_mark) - 1);
        } else {
                /* i386 write (4): ebx, ecx, edx; the compat entry zeroes
                 * r8-r11 on the way back */
                __asm__ volatile("int $0x80"
                                 : "=a"(ret)
                                 : "a"(4L), "b"((long)abi_pipe[1]),
                                   "c"((long)(uintptr_t)buf),
                                   "d"((long)sizeof(abi_mark) - 1)
                                 : "r8", "r9", "r10", "r11", "memory");
        }
        (void)ret;
        return 0;
}

/* Run the write with or without the filter; whether its bytes arrived. */
static int foreign_write(bool filtered, long x32, bool *ran) {
        char b[64];
        if (pipe2(abi_pipe, O_CLOEXEC) < 0)
                return -1;
        int st = filtered ? in_child(do_foreign_write, x32)
                          : unfiltered(do_foreign_write, x32);
        close(abi_pipe[1]);
        ssize_t n = read(abi_pipe[0], b, sizeof(b));
        close(abi_pipe[0]);
        *ran = n > 0;
        return st;
}

static const char *int80_name = "i386 int $0x80";

static void int80_never_runs(void) {
        bool ran = false, ran_host = false;
        int host_st = foreign_write(false, 0, &ran_host);
        struct abi_probe host = abi_classify(host_st, ran_host);
        int st = foreign_write(true, 0, &ran);
        if (host.state == ABI_RAN)
                int80_name = "i386 int $0x80 write: the kernel has the IA-32 "
                             "entry (probe without the filter wrote); under "
                             "the filter killed by SIGSYS, nothing written";
        else if (host.state == ABI_REFUSED && host.sig == SIGSEGV)
                int80_name = "i386 int $0x80 write: the kernel has no IA-32 "
                             "entry (probe without the filter got SIGSEGV); "
                             "under the filter SIGSEGV from the kernel, "
                             "nothing written; the arch rule is checked in "
                             "program_kills_foreign_abis";
        else
                int80_name = "i386 int $0x80 write: the kernel refuses it "
                             "itself (see the probe's status below); under "
                             "the filter the same, nothing written";
        const char *why = abi_verdict(host, st, ran);
        if (why)
                printf("#   %s (probe: status 0x%x, wrote %d; filtered: "
                       "status 0x%x, wrote %d)\n",
                       why, (unsigned)host_st, ran_host, (unsigned)st, ran);
        ASSERT_TRUE(why == NULL);
}

/* x32 numbers reach seccomp on every x86-64 kernel, with or without x32
 * support (it runs before the kernel's own dispatch), so the filter kills
 * them everywhere; the probe only tells what the kernel would do. */
static void x32_never_runs(void) {
        bool ran = false, ran_host = false;
        int host_st = foreign_write(false, 1, &ran_host);
        printf("# x32 write without the filter: %s\n",
               ran_host ? "ran (the kernel has x32)"
                        : "did not run (no x32 in this kernel)");
        (void)host_st;
        int st = foreign_write(true, 1, &ran);
        ASSERT_TRUE(!ran);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_INT_EQ(WTERMSIG(st), SIGSYS);
}
#endif

/* ---- socket families -------------------------------------------------- */

static bool family_allowed(uint64_t f) {
        return f == AF_UNIX || f == AF_INET || f == AF_INET6 || f == AF_NETLINK;
}

/* Read off the program: socket() and socketpair() answer EAFNOSUPPORT for
 * every family but the four, also for ones this kernel lacks or that are
 * newer than it, and for an allowed family with high bits set (the kernel
 * reads an int); netlink only with NETLINK_ROUTE. */
static void program_socket_families(void) {
#ifdef NATIVE_ARCH
        const int calls[] = {SYS_socket, SYS_socketpair};
        for (size_t c = 0; c < 2; c++) {
                for (uint64_t f = 0; f < 256; f++) {
                        uint32_t want = family_allowed(f)
                                                ? SECCOMP_RET_ALLOW
                                                : RET_ERRNO(EAFNOSUPPORT);
                        uint32_t r =
                                sim(NATIVE_ARCH, calls[c], f, SOCK_STREAM, 0);
                        if (r != want)
                                printf("#   call %d family %d: 0x%08x\n",
                                       calls[c], (int)f, r);
                        ASSERT_INT_EQ(r, want);
                        /* the kernel keeps the low 32 bits */
                        ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c],
                                          (1ull << 32) | f, SOCK_STREAM, 0),
                                      RET_ERRNO(EAFNOSUPPORT));
                }
                ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], 0xffffffffu, 0, 0),
                              RET_ERRNO(EAFNOSUPPORT));
                ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], ~0ull, 0, 0),
                              RET_ERRNO(EAFNOSUPPORT));
                ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], AF_NETLINK, SOCK_RAW,
                                  NETLINK_ROUTE),
                              SECCOMP_RET_ALLOW);
                for (uint64_t p = 1; p < 64; p++)
                        ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], AF_NETLINK,
                                          SOCK_RAW, p),
                                      RET_ERRNO(EPROTONOSUPPORT));
                ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], AF_NETLINK, SOCK_RAW,
                                  1ull << 32),
                              RET_ERRNO(EPROTONOSUPPORT));
                ASSERT_INT_EQ(sim(NATIVE_ARCH, calls[c], AF_INET, SOCK_STREAM,
                                  IPPROTO_TCP),
                              SECCOMP_RET_ALLOW);
        }
        /* socket(): AF_INET and AF_INET6 take only the default, TCP, UDP,
         * ICMP and ICMPv6 (SCTP 132, DCCP 33, MPTCP 262, UDP-Lite 136 and
         * the rest are refused), on all 64 bits */
        const uint64_t inet[] = {AF_INET, AF_INET6};
        for (size_t i = 0; i < 2; i++) {
                for (uint64_t p = 0; p < 300; p++) {
                        bool allowed = p == 0 || p == IPPROTO_TCP ||
                                       p == IPPROTO_UDP || p == IPPROTO_ICMP ||
                                       p == IPPROTO_ICMPV6;
                        uint32_t want = allowed ? SECCOMP_RET_ALLOW
                                                : RET_ERRNO(EPROTONOSUPPORT);
                        uint32_t r = sim(NATIVE_ARCH, SYS_socket, inet[i],
                                         SOCK_STREAM, p);
                        if (r != want)
                                printf("#   family %d protocol %d: 0x%08x\n",
                                       (int)inet[i], (int)p, r);
                        ASSERT_INT_EQ(r, want);
                }
                ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_socket, inet[i], SOCK_STREAM,
                                  (1ull << 32) | IPPROTO_TCP),
                              RET_ERRNO(EPROTONOSUPPORT));
        }
        /* SOCK_PACKET on AF_INET is an AF_PACKET socket in disguise */
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_socket, AF_INET,
                          SOCK_PACKET | SOCK_CLOEXEC, 0),
                      RET_ERRNO(EAFNOSUPPORT));
        ASSERT_INT_EQ(sim(NATIVE_ARCH, SYS_socket, AF_INET,
                          SOCK_DGRAM | SOCK_NONBLOCK, 0),
                      SECCOMP_RET_ALLOW);
#endif
}

static const int sock_types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
                                 SOCK_SEQPACKET};

/* arg: family << 8 | index into sock_types; the errno, or 0 when made */
static int do_socket(long arg) {
        errno = 0;
        long fd = syscall(SYS_socket, arg >> 8, sock_types[arg & 0xff], 0);
        return fd < 0 ? errno : 0;
}

static int do_netlink(long proto) {
        errno = 0;
        long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW, proto);
        return fd < 0 ? errno : 0;
}

/* On this kernel: every family but the four is refused with EAFNOSUPPORT
 * under the filter, with every socket type; the ones the kernel itself
 * offers (vsock, packet, ... where built) are listed. */
static void socket_families_refused(void) {
        char have[512] = "";
        size_t used = 0;
        for (long f = 0; f < AF_MAX + 8; f++) {
                if (family_allowed((uint64_t)f))
                        continue;
                bool offered = false;
                for (size_t t = 0; t < ARRAY_SIZE(sock_types); t++) {
                        long arg = f << 8 | (long)t;
                        int st = in_child(do_socket, arg);
                        if (!WIFEXITED(st) || WEXITSTATUS(st) != EAFNOSUPPORT)
                                printf("#   family %ld type %d: status "
                                       "0x%x\n",
                                       f, sock_types[t], (unsigned)st);
                        ASSERT_TRUE(WIFEXITED(st));
                        ASSERT_INT_EQ(WEXITSTATUS(st), EAFNOSUPPORT);
                        st = unfiltered(do_socket, arg);
                        offered |= WIFEXITED(st) &&
                                   WEXITSTATUS(st) != EAFNOSUPPORT;
                }
                if (offered && used + 8 < sizeof(have))
                        used += (size_t)snprintf(
                                have + used, sizeof(have) - used, " %ld", f);
        }
        printf("# families this kernel offers that the filter refuses:%s\n",
               used ? have : " none");
        for (long p = 1; p < 32; p++) {
                int st = in_child(do_netlink, p);
                ASSERT_TRUE(WIFEXITED(st));
                ASSERT_INT_EQ(WEXITSTATUS(st), EPROTONOSUPPORT);
        }
}

static int do_allowed_sockets(long unused) {
        (void)unused;
        int sv[2];
        const int fams[] = {AF_UNIX, AF_INET, AF_INET6};
        for (size_t i = 0; i < ARRAY_SIZE(fams); i++) {
                int fd = socket(fams[i], SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 && !(fams[i] == AF_INET6 && errno == EAFNOSUPPORT))
                        return 10 + (int)i; /* no IPv6 in the kernel: fine */
                if (fd >= 0)
                        close(fd);
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 20;
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        return fd < 0 ? 21 : 0;
}

static void allowed_sockets_work(void) {
        int st = in_child(do_allowed_sockets, 0);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_INT_EQ(WEXITSTATUS(st), 0);
}

static int do_inotify(long unused) {
        (void)unused;
        errno = 0;
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd < 0)
                return errno;
        return inotify_add_watch(fd, "/usr", IN_OPEN | IN_ACCESS) < 0 ? 98 : 0;
}

/* No inotify instance, so no watch on the shared read-only binds. */
static void inotify_refused(void) {
        int st = in_child(do_inotify, 0);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_INT_EQ(WEXITSTATUS(st), ENOSYS);
        st = unfiltered(do_inotify, 0);
        printf("# inotify watch on /usr without the filter: %s\n",
               WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "works"
                                                     : "fails here too");
}

static int do_normal(long unused) {
        (void)unused;
        int p[2];
        char b[4];
        if (getpid() <= 0 || pipe(p) < 0 || write(p[1], "abc", 3) != 3 ||
            read(p[0], b, 3) != 3)
                return 1;
        void *m = malloc(1 << 20);
        return m ? 0 : 2;
}

static void normal_calls_work(void) {
        int st = in_child(do_normal, 0);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_INT_EQ(WEXITSTATUS(st), 0);
}

/* The program in the binary is the table compiled now: nobody edited the
 * table without the build regenerating it, or the generated file by hand. */
static void builtin_matches_table(void) {
        al_bpf built = {0}, builtin;
        al_error e = {0};
        ASSERT_INT_EQ(al_seccomp_build(&built, &e), 0);
        al_seccomp_program(&builtin);
        ASSERT_INT_EQ(builtin.len, built.len);
        ASSERT_TRUE(builtin.len == built.len &&
                    memcmp(builtin.insns, built.insns,
                           built.len * sizeof(*built.insns)) == 0);
        al_bpf_free(&built);
}

int main(void) {
        /* every attack below runs against the program the sandbox uses */
        al_seccomp_program(&bpf);
        RUN(builtin_matches_table);
        RUN(table_has_reasons);
        RUN(every_unconditional_rule);
        RUN(clone_namespaces);
        RUN(tty_ioctls);
        RUN(personality_values);
        RUN(interpreter_agrees_with_kernel);
        RUN(program_kills_foreign_abis);
        RUN(abi_decision);
#if defined(__x86_64__)
        RUN_NAMED(int80_never_runs, int80_name);
        RUN(x32_never_runs);
#else
        SKIP(int80_never_runs, "not x86-64: no int $0x80 or x32");
#endif
        RUN(program_socket_families);
        RUN(socket_families_refused);
        RUN(allowed_sockets_work);
        RUN(inotify_refused);
        RUN(normal_calls_work);
        TAP_END();
}
