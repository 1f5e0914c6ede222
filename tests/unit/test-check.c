/* SPDX-License-Identifier: MIT */
/* The static checker's child process: confined by its seccomp allow-list,
 * and its reply checked before the parent believes it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "airlock-check.h"
#include "check-internal.h"
#include "egress.h"
#include "tap.h"

enum attempt {
        TRY_NOTHING,
        TRY_OPEN,
        TRY_SOCKET,
        TRY_STDOUT,
        TRY_EXEC_MAP,
        TRY_EXECVE,
        TRY_KILL,
        TRY_MAP_FILE
};

/* A child confines itself, reports on fd 3, then tries one thing. The
 * exit status of the child: 0 when it got through, or the signal. */
static int confined_child(enum attempt what, char *said, size_t size) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                if (dup2(p[1], 3) < 0)
                        _exit(10);
                void *m = malloc(100); /* the heap works before ... */
                if (check_confine() < 0)
                        _exit(11);
                char *big = malloc(4 << 20); /* ... and after (mmap) */
                if (!m || !big)
                        _exit(12);
                memset(big, 1, 4 << 20);
                free(big);
                if (write(3, "confined", 8) != 8)
                        _exit(13);
                switch (what) {
                case TRY_OPEN:
                        (void)!open("/etc/hostname", O_RDONLY);
                        break;
                case TRY_SOCKET:
                        (void)!socket(AF_INET, SOCK_STREAM, 0);
                        break;
                case TRY_STDOUT:
                        (void)!write(1, "leak\n", 5);
                        break;
                case TRY_EXEC_MAP:
                        (void)!mmap(NULL, 4096, PROT_READ | PROT_EXEC,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                        break;
                case TRY_MAP_FILE:
                        /* a file the caller left open (its stdin), mapped
                         * to be written: a way around "write only fd 3" */
                        (void)!mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                    MAP_SHARED, 0, 0);
                        break;
                case TRY_EXECVE: {
                        char *argv[] = {"/bin/true", NULL};
                        execve(argv[0], argv, argv + 1);
                        break;
                }
                case TRY_KILL:
                        kill(getppid(), 0);
                        break;
                case TRY_NOTHING:
                        break;
                }
                _exit(0);
        }
        close(p[1]);
        ssize_t n = read(p[0], said, size - 1);
        said[n > 0 ? n : 0] = '\0';
        close(p[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st))
                return WTERMSIG(st);
        return WIFEXITED(st) ? WEXITSTATUS(st) + 1000 : -1;
}

static void confinement(void) {
        char said[32];
        ASSERT_INT_EQ(confined_child(TRY_NOTHING, said, sizeof(said)), 1000);
        ASSERT_STR_EQ(said, "confined");
        static const struct {
                enum attempt a;
                const char *what;
        } forbidden[] = {
                {TRY_OPEN, "open"},
                {TRY_SOCKET, "socket"},
                {TRY_STDOUT, "write(1)"},
                {TRY_EXEC_MAP, "mmap(PROT_EXEC)"},
                {TRY_EXECVE, "execve"},
                {TRY_KILL, "kill"},
                {TRY_MAP_FILE, "mmap(fd 0, MAP_SHARED)"},
        };
        for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
                int got = confined_child(forbidden[i].a, said, sizeof(said));
                if (got != SIGSYS)
                        printf("#   %s: got %d, want SIGSYS\n",
                               forbidden[i].what, got);
                ASSERT_INT_EQ(got, SIGSYS);
                ASSERT_STR_EQ(said, "confined");
        }
}

/* Code long enough for the child (16 KiB and more) is still checked
 * under the allow-list, with the same findings. */
static void big_check_works(void) {
        al_error e = {0};
        al_policy *p = al_policy_load(NULL, &e);
        ASSERT_TRUE(p != NULL);
        size_t n = 0, cap = 64 << 10;
        char *code = malloc(cap);
        ASSERT_TRUE(code != NULL);
        while (n + 8 < 40000) {
                memcpy(code + n, "x = 1\n", 6);
                n += 6;
        }
        n += (size_t)snprintf(code + n, cap - n, "import os\nos.system(1)\n");
        al_findings f;
        int r = al_check_code(p, "python", code, n, &f, &e);
        free(code);
        ASSERT_INT_EQ(r, 0);
        ASSERT_TRUE(f.n >= 1);
        ASSERT_STR_EQ(f.v[0].rule, "py.import.forbidden");
        al_findings_free(&f);
        al_policy_free(p);
}

/* Code with more matches than a check lists: 10000 findings, the last
 * saying the rest were cut (never a silent truncation), and the check
 * (through the child, with its bounded reply) still succeeds. */
static void findings_capped(void) {
        al_error e = {0};
        al_policy *p = al_policy_load(NULL, &e);
        ASSERT_TRUE(p != NULL);
        size_t n = 0, cap = 256 << 10;
        char *code = malloc(cap);
        ASSERT_TRUE(code != NULL);
        n += (size_t)snprintf(code, cap, "import os\n");
        for (int i = 0; i < 12000; i++)
                n += (size_t)snprintf(code + n, cap - n, "os.system(%d)\n", i);
        al_findings f;
        int r = al_check_code(p, "python", code, n, &f, &e);
        free(code);
        ASSERT_INT_EQ(r, 0);
        ASSERT_INT_EQ(f.n, 10000);
        if (f.n)
                ASSERT_STR_EQ(f.v[f.n - 1].rule, "check.too_many_findings");
        al_findings_free(&f);
        al_policy_free(p);
}

static void reply_validation(void) {
        struct check_reply good = {0};
        al_finding v[2];
        memset(v, 0, sizeof(v));
        snprintf(v[0].rule, sizeof(v[0].rule), "py.call.host");
        snprintf(v[0].message, sizeof(v[0].message), "calls os.system");
        v[0].severity = AL_SEV_HIGH;
        v[0].line = v[0].end_line = 3;
        v[0].column = 1;
        v[0].end_column = 10;
        v[1] = v[0];
        good.head.n = 2;
        ASSERT_INT_EQ(check_reply_valid(&good, NULL, 100), 0);
        ASSERT_INT_EQ(check_reply_valid(&good, v, 100), 0);

        struct check_reply bad = good;
        memset(bad.err.msg, 'A', sizeof(bad.err.msg)); /* no NUL */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        bad.head.n = 102; /* more findings than bytes of code (+1) */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        bad.head.n = (size_t)-1;
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, (size_t)-2), -EBADMSG);
        bad = good;
        bad.head.n = 20000; /* more than a check ever lists */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 1 << 20), -EBADMSG);
        bad = good;
        bad.err.code = -7; /* not an errno value */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        bad.r = 5; /* not 0 nor -errno */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        memset(bad.head.error_snippet, 'x', sizeof(bad.head.error_snippet));
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        memset(&bad.head.syntax_error, 7, 1); /* a bool that is not one */
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);
        bad = good;
        bad.head.syntax_error = true;
        bad.head.error_line = 5000;
        ASSERT_INT_EQ(check_reply_valid(&bad, NULL, 100), -EBADMSG);

        al_finding w[2];
        memcpy(w, v, sizeof(w));
        memset(w[1].snippet, 'x', sizeof(w[1].snippet));
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
        memcpy(w, v, sizeof(w));
        memset(w[0].rule, 'r', sizeof(w[0].rule));
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
        memcpy(w, v, sizeof(w));
        memset(w[1].message, 'm', sizeof(w[1].message));
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
        memcpy(w, v, sizeof(w));
        w[0].severity = (al_severity)9;
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
        memcpy(w, v, sizeof(w));
        w[1].end_column = 1000;
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
        memcpy(w, v, sizeof(w));
        w[0].rule[0] = '\0';
        ASSERT_INT_EQ(check_reply_valid(&good, w, 100), -EBADMSG);
}

/* A policy's network section: entries checked at load (a bad one: the
 * policy does not load, and the error names it), max_bytes kept; none:
 * no ceiling of the policy's own. */
static void policy_network(void) {
        al_error e = {0};
        const char *good =
                "{\"version\": 1, \"extends\": \"none\", "
                "\"network\": {\"allow\": [\"*.Pythonhosted.org:443\", "
                "\"pypi.org:443\"], \"max_bytes\": 1000}}";
        al_policy *p = al_policy_parse(good, strlen(good), "t.json", &e);
        ASSERT_TRUE(p != NULL);
        const al_net_policy *n = al_policy_network(p);
        ASSERT_TRUE(n != NULL);
        ASSERT_INT_EQ((int)n->n, 2);
        ASSERT_STR_EQ(n->rules[0].host, "pythonhosted.org");
        ASSERT_INT_EQ((int)n->max_bytes_in, 1000);
        ASSERT_INT_EQ((int)n->max_bytes_out, 1000);
        al_policy_free(p);
        p = al_policy_parse("{\"version\": 1}", 14, "t.json", &e);
        ASSERT_TRUE(p != NULL && al_policy_network(p) == NULL);
        al_policy_free(p);
        static const struct {
                const char *json, *words;
        } bad[] = {
                {"{\"version\": 1, \"network\": {\"allow\": [\"a.*.b\"]}}",
                 "network.allow[0]"},
                {"{\"version\": 1, \"network\": {\"allow\": [\"ok.example\", "
                 "\"x:70000\"]}}",
                 "network.allow[1]"},
                {"{\"version\": 1, \"network\": {\"allow\": [7]}}",
                 "network.allow[0]"},
                {"{\"version\": 1, \"network\": {\"allow\": []}, \"x\": 1}",
                 "unknown key"},
                {"{\"version\": 1, \"network\": {\"allow\": [], \"port\": 1}}",
                 "network.port"},
                {"{\"version\": 1, \"network\": {}}", "network.allow"},
                {"{\"version\": 1, \"network\": {\"allow\": [], "
                 "\"max_bytes\": -1}}",
                 "network.max_bytes"},
                {"{\"version\": 1, \"network\": true}", "network"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                al_error be = {0};
                al_policy *q = al_policy_parse(bad[i].json, strlen(bad[i].json),
                                               "t.json", &be);
                if (q || !strstr(be.msg, bad[i].words)) {
                        printf("#   %s: got %s\n", bad[i].json,
                               q ? "a policy" : be.msg);
                        tap_cur_failed = 1;
                }
                al_policy_free(q);
        }
}

int main(void) {
#if defined(__x86_64__) || defined(__aarch64__)
        RUN(confinement);
#else
        SKIP(confinement, "no allow-list for this architecture");
#endif
        RUN(big_check_works);
        RUN(findings_capped);
        RUN(reply_validation);
        RUN(policy_network);
        TAP_END();
}
