/* SPDX-License-Identifier: MIT */
/* The seccomp filter, rule by rule: each denied call fails with the
 * table's errno in a child that installed the filter; what runtimes need
 * still works; non-native ABIs are killed. */
#include <errno.h>
#include <linux/personality.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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
        const long flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID,
                              CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
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
        long r = syscall(SYS_ioctl, p[0], req, req == FIONREAD ? (void *)&r
                                                               : (void *)&c);
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
        const long denied[] = {ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC,
                               MMAP_PAGE_ZERO, PER_SVR4, 0x1,
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

static int do_int80(long unused) {
        (void)unused;
        long ret;
        /* i386 getpid (20) through the compat entry */
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        return 0;
}

static int do_x32(long unused) {
        (void)unused;
        syscall(0x40000000L | 39); /* x32 getpid */
        return 0;
}

static void foreign_abis_killed(void) {
        int st = in_child(do_int80, 0);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_INT_EQ(WTERMSIG(st), SIGSYS);
        st = in_child(do_x32, 0);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_INT_EQ(WTERMSIG(st), SIGSYS);
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
        RUN(foreign_abis_killed);
        RUN(normal_calls_work);
        TAP_END();
}
