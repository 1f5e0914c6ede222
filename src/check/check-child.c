/* SPDX-License-Identifier: MIT */
/*
 * The parser's child process: code long enough to nest past what
 * tree-sitter survives is parsed in a forked copy of this process, under
 * a seccomp allow-list, and its reply is checked as untrusted data before
 * the findings are taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "airlock-check.h"
#include "check-internal.h"
#include "error.h"
#include "macro.h"

/* All n bytes to or from fd (write or read), across EINTR and short
 * transfers; false on an error or an early end. */
static bool io_full(int fd, void *buf, size_t n, bool wr) {
        char *b = buf;
        while (n) {
                ssize_t k = wr ? write(fd, b, n) : read(fd, b, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                b += k;
                n -= (size_t)k;
        }
        return true;
}

/* The parser's child runs tree-sitter over untrusted text: if a bug in
 * the parser gives that text control, it must find nothing to use. After
 * the fork the child holds only its reply pipe (fd 3); this allow-list
 * then leaves it the system calls of parsing into memory and replying:
 * everything else kills it (SIGSYS), which the parent reports as a failed
 * parse. Hand-written classic BPF (as OpenSSH's sandbox-seccomp-filter.c)
 * rather than a second libseccomp program: it is a dozen rules, checked
 * in tests/unit/test-check.c by a child that tries what is not listed. */
#if defined(__x86_64__)
#define CHECK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CHECK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]) + 4)
#endif
#define CHECK_REPLY_FD 3

int check_confine(void) {
#ifndef CHECK_AUDIT_ARCH
        return -ENOSYS; /* no allow-list for this architecture: fail closed */
#else
        /* allowed as they are (the walkers and tree-sitter only allocate,
         * and glibc may take a lock or read the clock on the way) */
        static const unsigned plain[] = {
                __NR_brk,            /* malloc, main arena */
                __NR_munmap,         /* free of large blocks */
                __NR_mremap,         /* realloc of large blocks */
                __NR_madvise,        /* malloc trimming */
                __NR_exit_group,     /* _exit */
                __NR_exit,           /* (a thread's exit; none is made) */
                __NR_rt_sigreturn,   /* return from a signal handler */
                __NR_rt_sigprocmask, /* abort() on heap corruption */
                __NR_futex,          /* glibc's internal locks */
                __NR_clock_gettime,  /* the parse timeout, when not vDSO */
        };
        struct sock_filter f[8 + 19 + 2 * ARRAY_SIZE(plain)];
        size_t n = 0;
#define EMIT(...) (f[n++] = (struct sock_filter)__VA_ARGS__)
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                      offsetof(struct seccomp_data, arch)));
        /* another ABI (i386, x32 numbers differ): kill */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHECK_AUDIT_ARCH, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                      offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
        /* x32 calls carry the native arch with bit 30 set */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
        /* write: only the reply, on fd 3 (not the caller's stdout) */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 4));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CHECK_REPLY_FD, 0, 1));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        /* mmap: anonymous memory for malloc (fd -1: no file the caller
         * left open can be mapped and written), never executable */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 6));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(4)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 3));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        /* mprotect: never executable */
        EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 4));
        EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
        EMIT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
        for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
                EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, plain[i], 0, 1));
                EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        }
        /* everything else: open, socket, execve, ptrace, kill ... */
        EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#undef EMIT
        struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
        /* no_new_privs first: the kernel wants it (or CAP_SYS_ADMIN) for
         * a filter, and it keeps an execve from gaining anything */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return -errno;
        return 0;
#endif
}

/* Most findings a reply may announce (the parent allocates for them
 * before reading): what a check lists at most. */
#define CHECK_REPLY_MAX_FINDINGS CHECK_MAX_FINDINGS

static bool str_in(const char *s, size_t size) {
        return memchr(s, '\0', size) != NULL;
}

/* The child is a process that parsed untrusted text: what it says is
 * data to check, not memory to trust. Every string must end inside its
 * array, every number be in range for code of len bytes. */
int check_reply_valid(const struct check_reply *rep, const al_finding *v,
                      size_t len) {
        const unsigned char *se =
                (const unsigned char *)&rep->head.syntax_error;
        if (rep->r > 0 || rep->r < -4095 || rep->err.code < 0 ||
            rep->err.code > 4095 ||
            !str_in(rep->err.msg, sizeof(rep->err.msg)))
                return -EBADMSG;
        if (rep->head.n > len + 1 || rep->head.n > CHECK_REPLY_MAX_FINDINGS)
                return -EBADMSG;
        if (*se > 1 ||
            !str_in(rep->head.error_snippet, sizeof(rep->head.error_snippet)))
                return -EBADMSG;
        if (*se && (rep->head.error_line > len + 1 ||
                    rep->head.error_column > len + 1))
                return -EBADMSG;
        for (size_t i = 0; v && i < rep->head.n; i++) {
                const al_finding *x = &v[i];
                if (!str_in(x->rule, sizeof(x->rule)) || !x->rule[0] ||
                    !str_in(x->snippet, sizeof(x->snippet)) ||
                    !str_in(x->message, sizeof(x->message)) ||
                    (unsigned)x->severity > AL_SEV_CRITICAL ||
                    x->line > len + 1 || x->end_line > len + 1 ||
                    x->column > len + 1 || x->end_column > len + 1)
                        return -EBADMSG;
        }
        return 0;
}

/* The same in a child process: code this long could nest deep enough to
 * crash the parser, and a crash must be an error here, not the end of
 * the caller (airlock serve). The child is a copy of this process, so
 * the findings cross the pipe as they are in memory. */
int check_forked(const al_policy *p, int li, const char *lang, const char *code,
                 size_t len, al_findings *out, al_error *err) {
        int fd[2];
        if (pipe2(fd, O_CLOEXEC) < 0)
                return al_error_errno(err, errno, "pipe");
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(fd[0]);
                close(fd[1]);
                return al_error_errno(err, e, "fork");
        }
        if (pid == 0) {
                close(fd[0]);
                /* a copy of a possibly threaded caller: keep only the
                 * reply pipe (as fd 3), not other runs' slot locks,
                 * sockets or pipe ends, which would stay open as long as
                 * this parse takes */
                if (dup2(fd[1], 3) < 0)
                        _exit(1);
                fd[1] = 3;
                if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
                        for (int i = 4; i < 4096; i++)
                                close(i);
                /* no core file and no glibc heap report from a crash: the
                 * caller reports it; a parse that runs away is killed
                 * (SIGXCPU) and reported as a failed parse */
                struct rlimit no_core = {0, 0}, cpu = {30, 31};
                setrlimit(RLIMIT_CORE, &no_core);
                setrlimit(RLIMIT_CPU, &cpu);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDERR_FILENO);
                setenv("LIBC_FATAL_STDERR_", "1", 1);
                /* last: from here on only parsing and the reply */
                if (check_confine() < 0)
                        _exit(2);
                struct check_reply rep = {0};
                rep.r = check_here(p, li, lang, code, len, &rep.head, &rep.err);
                bool ok = io_full(fd[1], &rep, sizeof(rep), true) &&
                          (!rep.head.n ||
                           io_full(fd[1], rep.head.v,
                                   rep.head.n * sizeof(al_finding), true));
                _exit(ok ? 0 : 1);
        }
        close(fd[1]);
        struct check_reply rep;
        bool ok = io_full(fd[0], &rep, sizeof(rep), false) &&
                  check_reply_valid(&rep, NULL, len) == 0;
        al_finding *v = NULL;
        if (ok && rep.head.n) {
                v = malloc(rep.head.n * sizeof(al_finding));
                ok = v &&
                     io_full(fd[0], v, rep.head.n * sizeof(al_finding),
                             false) &&
                     check_reply_valid(&rep, v, len) == 0;
        }
        close(fd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!ok || !WIFEXITED(status) || WEXITSTATUS(status)) {
                free(v);
                if (WIFSIGNALED(status))
                        return al_error_set(
                                err, EILSEQ,
                                "the %s parser failed on this code (signal "
                                "%d; tree-sitter 0.20 breaks on nesting "
                                "deeper than 65535 levels)",
                                lang, WTERMSIG(status));
                if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
                        return al_error_set(err, ENOSYS,
                                            "the checker's child process "
                                            "cannot be confined (seccomp)");
                return al_error_set(err, EIO,
                                    "the checker's child process failed or "
                                    "sent a malformed reply");
        }
        if (rep.r < 0) {
                free(v);
                if (err)
                        *err = rep.err;
                return rep.r;
        }
        *out = rep.head;
        out->v = v;
        out->cap = rep.head.n;
        return 0;
}
