/* SPDX-License-Identifier: MIT */
/*
 * cgroup backends. v2 and v1 against fake trees in a temp dir (plain files,
 * with the library's fake-tree switch on: control files are created on
 * first write and removed before rmdir), then v1 or v2 for real on this
 * host when running as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "airlock.h"
#include "cgroup-internal.h"
#include "sandbox.h"
#include "tap.h"

#define MiB (1024ull * 1024ull)

/* ---- fake tree helpers ---- */

static char tmp[64];

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static int fake_begin(void) {
        snprintf(tmp, sizeof(tmp), "/tmp/airlock-cg-XXXXXX");
        if (!mkdtemp(tmp))
                return -1;
        al_cgroup_set_fake_tree(true);
        /* the kernel command line of a fake host: none unless put */
        static char cmdline[96];
        snprintf(cmdline, sizeof(cmdline), "%s/cmdline", tmp);
        al_cgroup_set_cmdline_path(cmdline);
        return 0;
}

static void fake_end(void) {
        al_cgroup_set_fake_tree(false);
        al_cgroup_set_cmdline_path(NULL);
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A test whose body may return early on a failed ASSERT: the wrapper still
 * removes the temp tree. */
#define FAKE_TEST(name)                                                        \
        static void name##_body(void);                                         \
        static void name(void) {                                               \
                if (fake_begin() < 0) {                                        \
                        printf("#   mkdtemp: %s\n", strerror(errno));          \
                        tap_cur_failed = 1;                                    \
                        return;                                                \
                }                                                              \
                name##_body();                                                 \
                fake_end();                                                    \
        }                                                                      \
        static void name##_body(void)

static const char *at(const char *rel) {
        static char buf[4][512];
        static int i;
        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, rel);
        return buf[i];
}

static void mkdirs(const char *rel) {
        char p[512];
        snprintf(p, sizeof(p), "%s", at(rel));
        for (char *s = p + strlen(tmp) + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        mkdir(p, 0755);
                        *s = '/';
                }
        mkdir(p, 0755);
}

static int put(const char *rel, const char *content) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s", rel);
        char *slash = strrchr(dir, '/');
        if (slash) {
                *slash = '\0';
                mkdirs(dir);
        }
        int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, content, strlen(content));
        close(fd);
        return k == (ssize_t)strlen(content) ? 0 : -EIO;
}

/* Contents of a file (absolute path), or "(missing)". */
static const char *get_abs(const char *path) {
        static char buf[4][256];
        static int i;
        i = (i + 1) % 4;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return "(missing)";
        ssize_t k = read(fd, buf[i], sizeof(buf[i]) - 1);
        close(fd);
        buf[i][k < 0 ? 0 : k] = '\0';
        /* real cgroupfs ends values with a newline */
        if (k > 0 && buf[i][k - 1] == '\n')
                buf[i][k - 1] = '\0';
        return buf[i];
}

static const char *get(const char *rel) {
        return get_abs(at(rel));
}

static bool exists_abs(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static bool exists(const char *rel) {
        return exists_abs(at(rel));
}

/* A v2 tree: root and own group with all controllers available;
 * `own_enabled` is the own group's cgroup.subtree_control. */
static int fake_v2(const char *own, const char *avail, const char *own_enabled,
                   const char *self) {
        char p[256];
        int r = 0;
        r |= put("cg/cgroup.controllers", "cpuset cpu io memory pids\n");
        r |= put("cg/cgroup.subtree_control", "cpu memory pids\n");
        snprintf(p, sizeof(p), "cg%s/cgroup.controllers", own);
        r |= put(p, avail);
        snprintf(p, sizeof(p), "cg%s/cgroup.subtree_control", own);
        r |= put(p, own_enabled);
        snprintf(p, sizeof(p), "cg%s/memory.swap.max", own);
        r |= put(p, "max\n");
        r |= put("self", self);
        return r;
}

/* ---- helpers of the library ---- */

static void parsing(void) {
        uint64_t v = 7;
        ASSERT_INT_EQ(cg_parse_u64("123\n", &v), 0);
        ASSERT_INT_EQ(v, 123);
        ASSERT_INT_EQ(cg_parse_u64("18446744073709551615", &v), 0);
        ASSERT_TRUE(v == UINT64_MAX);
        ASSERT_INT_EQ(cg_parse_u64("18446744073709551616", &v), -ERANGE);
        ASSERT_INT_EQ(cg_parse_u64("-1", &v), -EINVAL);
        ASSERT_INT_EQ(cg_parse_u64(" 1", &v), -EINVAL);
        ASSERT_INT_EQ(cg_parse_u64("12a", &v), -EINVAL);
        ASSERT_INT_EQ(cg_parse_u64("max", &v), -EINVAL);
        ASSERT_INT_EQ(cg_parse_u64("", &v), -EINVAL);

        const char *oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        ASSERT_INT_EQ(cg_keyed_u64(oom, "oom_kill", &v), 0);
        ASSERT_INT_EQ(v, 3);
        ASSERT_INT_EQ(cg_keyed_u64(oom, "under_oom", &v), 0);
        ASSERT_INT_EQ(v, 0);
        ASSERT_INT_EQ(cg_keyed_u64(oom, "oom", &v), -ENOENT);
        ASSERT_INT_EQ(cg_keyed_u64("max x\n", "max", &v), -EINVAL);

        ASSERT_TRUE(cg_has_word("cpuset cpu io memory pids\n", "cpu"));
        ASSERT_TRUE(cg_has_word("cpuset cpu io memory pids\n", "pids"));
        ASSERT_TRUE(!cg_has_word("cpuset io memory pids\n", "cpu"));
        ASSERT_TRUE(!cg_has_word("", "memory"));
}

/* ---- v2 ---- */

FAKE_TEST(v2_fake) {
        /* memory and pids already enabled below the own group, cpu not */
        ASSERT_INT_EQ(fake_v2("/user.slice/test", "cpuset cpu io memory pids\n",
                              "memory pids\n", "0::/user.slice/test\n"),
                      0);
        al_cg_probe p;
        al_error e = {0};
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, &e), 0);
        ASSERT_STR_EQ(p.reason, "");
        ASSERT_INT_EQ(p.kind, AL_CG_V2);
        ASSERT_TRUE(p.memory && p.pids && p.cpu && p.cpuacct && p.swap);
        /* v2 charges socket buffers to memory.max by default */
        ASSERT_TRUE(p.sock);
        ASSERT_STR_EQ(p.root, at("cg"));
        ASSERT_STR_EQ(p.parent_v2, at("cg/user.slice/test"));
        /* cpu was available, not enabled: the probe enabled it */
        ASSERT_STR_EQ(get("cg/user.slice/test/cgroup.subtree_control"), "+cpu");
        /* the scratch group of the probe is gone */
        char scratch[64];
        snprintf(scratch, sizeof(scratch),
                 "cg/user.slice/test/airlock-probe-%d", (int)getpid());
        ASSERT_TRUE(!exists(scratch));

        al_cg_limits l = {
                .memory_bytes = 256 * MiB, .pids = 64, .cpu_percent = 100};
        al_cgroup *cg = NULL;
        ASSERT_INT_EQ(al_cgroup_create(&p, "airlock-run1", &l, &cg, &e), 0);
        ASSERT_TRUE(cg != NULL);
        const char *run = "cg/user.slice/test/airlock-run1";
        char f[256];
#define RUNF(name) (snprintf(f, sizeof(f), "%s/%s", run, name), f)
        ASSERT_STR_EQ(get(RUNF("memory.max")), "268435456");
        ASSERT_STR_EQ(get(RUNF("memory.swap.max")), "0");
        ASSERT_STR_EQ(get(RUNF("pids.max")), "64");
        ASSERT_STR_EQ(get(RUNF("cpu.max")), "100000 100000");
        /* optional file, never created: absent in a fake tree */
        ASSERT_TRUE(!exists(RUNF("memory.oom.group")));
        /* and nothing else: no file of the group is written that could
         * take socket buffers (or anything) out of memory.max */
        {
                char dir[600];
                snprintf(dir, sizeof(dir), "%s", at(run));
                DIR *dd = opendir(dir);
                ASSERT_TRUE(dd != NULL);
                struct dirent *de;
                int n = 0;
                while (dd && (de = readdir(dd))) {
                        if (de->d_name[0] == '.')
                                continue;
                        n++;
                        if (strcmp(de->d_name, "memory.max") &&
                            strcmp(de->d_name, "memory.swap.max") &&
                            strcmp(de->d_name, "pids.max") &&
                            strcmp(de->d_name, "cpu.max")) {
                                printf("#   unexpected write: %s\n",
                                       de->d_name);
                                tap_cur_failed = 1;
                        }
                }
                if (dd)
                        closedir(dd);
                ASSERT_INT_EQ(n, 4);
        }

        ASSERT_INT_EQ(al_cgroup_attach(cg, 1234, &e), 0);
        ASSERT_STR_EQ(get(RUNF("cgroup.procs")), "1234");

        /* what the kernel would report after a run */
        ASSERT_INT_EQ(put(RUNF("memory.peak"), "12345678\n"), 0);
        ASSERT_INT_EQ(put(RUNF("cpu.stat"), "usage_usec 4242\nuser_usec 4000\n"
                                            "system_usec 242\n"),
                      0);
        ASSERT_INT_EQ(put(RUNF("memory.events"),
                          "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n"
                          "oom_group_kill 1\n"),
                      0);
        ASSERT_INT_EQ(put(RUNF("pids.events"), "max 5\n"), 0);
        al_cg_stats st;
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(st.have_memory_peak);
        ASSERT_INT_EQ(st.memory_peak_bytes, 12345678);
        ASSERT_TRUE(st.have_cpu);
        ASSERT_INT_EQ(st.cpu_usec, 4242);
        ASSERT_INT_EQ(st.oom_kills, 2);
        ASSERT_INT_EQ(st.pids_denied, 5);

        /* kernels before 5.19 have no memory.peak */
        ASSERT_INT_EQ(unlink(at(RUNF("memory.peak"))), 0);
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(!st.have_memory_peak);
        ASSERT_INT_EQ(st.memory_peak_bytes, 0);

        /* cgroup.kill present: one write, no signal sent to "1234" */
        ASSERT_INT_EQ(put(RUNF("cgroup.kill"), ""), 0);
        ASSERT_INT_EQ(al_cgroup_kill(cg), 0);
        ASSERT_STR_EQ(get(RUNF("cgroup.kill")), "1");

        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(cg == NULL);
        ASSERT_TRUE(!exists(run));
        ASSERT_TRUE(exists("cg/user.slice/test"));
        ASSERT_TRUE(al_cgroup_destroy(NULL) == NULL);
#undef RUNF
}

FAKE_TEST(v2_nosocket) {
        /* booted with cgroup.memory=nosocket: socket buffers escape
         * memory.max, and the probe says so */
        ASSERT_INT_EQ(fake_v2("/t", "cpu memory pids\n",
                              "cpu memory pids\n", "0::/t\n"),
                      0);
        ASSERT_INT_EQ(put("cmdline", "console=ttyS0 cgroup.memory=nokmem,"
                                     "nosocket quiet\n"),
                      0);
        al_cg_probe p;
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_V2);
        ASSERT_TRUE(p.memory && !p.sock);
        ASSERT_TRUE(strstr(p.reason, "nosocket") != NULL);
        /* another word that merely contains it does not count */
        ASSERT_INT_EQ(put("cmdline", "x.cgroup.memory=nosocket "
                                     "cgroup.memory=nokmem\n"),
                      0);
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        ASSERT_TRUE(p.memory && p.sock);
        ASSERT_STR_EQ(p.reason, "");
}

FAKE_TEST(v2_beside_supervisor_leaf) {
        /* The operator's layout: airlock in deleg/airlock-supervisor, runs
         * beside it in the delegated group. */
        ASSERT_INT_EQ(fake_v2("/deleg", "cpu memory pids\n", "",
                              "0::/deleg/airlock-supervisor\n"),
                      0);
        mkdirs("cg/deleg/airlock-supervisor");
        al_cg_probe p;
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        ASSERT_INT_EQ(p.kind, AL_CG_V2);
        ASSERT_TRUE(p.memory && p.pids && p.cpu);
        ASSERT_STR_EQ(p.parent_v2, at("cg/deleg"));

        al_cg_limits l = {.memory_bytes = 0, .pids = 10, .cpu_percent = 0};
        al_cgroup *cg = NULL;
        al_error e = {0};
        ASSERT_INT_EQ(al_cgroup_create(&p, "run2", &l, &cg, &e), 0);
        ASSERT_TRUE(exists("cg/deleg/run2"));
        ASSERT_STR_EQ(get("cg/deleg/run2/pids.max"), "10");
        /* no limit asked: nothing written; swap off regardless */
        ASSERT_TRUE(!exists("cg/deleg/run2/memory.max"));
        ASSERT_TRUE(!exists("cg/deleg/run2/cpu.max"));
        ASSERT_STR_EQ(get("cg/deleg/run2/memory.swap.max"), "0");
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(!exists("cg/deleg/run2"));
}

FAKE_TEST(v2_not_delegated) {
        /* memory missing from the own group's controllers: partial */
        ASSERT_INT_EQ(fake_v2("/user.slice/test", "cpu io pids\n", "",
                              "0::/user.slice/test\n"),
                      0);
        al_cg_probe p;
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_V2);
        ASSERT_TRUE(!p.memory && p.pids && p.cpu && !p.swap);
        ASSERT_TRUE(strstr(p.reason, "memory not delegated") != NULL);
        ASSERT_TRUE(strstr(p.reason, "Delegate=yes") != NULL);
        ASSERT_TRUE(strstr(p.reason, "airlock-supervisor") != NULL);

        /* neither memory nor pids: no cgroup at all */
        ASSERT_INT_EQ(put("cg/user.slice/test/cgroup.controllers", "io\n"), 0);
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_NONE);
        ASSERT_TRUE(!p.memory && !p.pids && !p.cpu);
        ASSERT_TRUE(strstr(p.reason, "memory,pids,cpu not delegated") != NULL);

        al_cgroup *cg = NULL;
        al_error e = {0};
        al_cg_limits l = {.pids = 1};
        ASSERT_INT_EQ(al_cgroup_create(&p, "x", &l, &cg, &e), -EOPNOTSUPP);
        ASSERT_TRUE(cg == NULL);
        ASSERT_TRUE(strstr(e.msg, "not delegated") != NULL);
}

FAKE_TEST(v2_enable_fails) {
        /* Writing +memory to cgroup.subtree_control fails (on a real tree:
         * EBUSY when the group holds processes). Here an unprivileged
         * child meets a root-owned 0644 file: EACCES, same path. */
        ASSERT_INT_EQ(fake_v2("/svc", "memory pids\n", "", "0::/svc\n"), 0);
        ASSERT_INT_EQ(chmod(tmp, 0755), 0);
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                if (geteuid() == 0 && (setresgid(65534, 65534, 65534) < 0 ||
                                       setresuid(65534, 65534, 65534) < 0))
                        _exit(2);
                al_cg_probe p;
                if (al_cgroup_probe(at("cg"), at("self"), &p, NULL) < 0)
                        _exit(3);
                printf("#   reason: %s\n", p.reason);
                fflush(stdout);
                _exit(p.kind == AL_CG_NONE && !p.memory && !p.pids &&
                                      strstr(p.reason, "cannot enable "
                                                       "memory,pids for "
                                                       "children of /svc") &&
                                      strstr(p.reason, "airlock-supervisor")
                              ? 0
                              : 1);
        }
        int st = 0;
        ASSERT_INT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_INT_EQ(WEXITSTATUS(st), 0);
        /* nothing was enabled */
        ASSERT_STR_EQ(get("cg/svc/cgroup.subtree_control"), "");
}

/* ---- v1 ---- */

FAKE_TEST(v1_fake_comounted) {
        /* like this host, but cpu and cpuacct co-mounted with symlinks */
        mkdirs("cg/memory/process_api/abc");
        mkdirs("cg/pids");
        mkdirs("cg/cpu,cpuacct");
        mkdirs("cg/systemd");
        ASSERT_INT_EQ(symlink("cpu,cpuacct", at("cg/cpu")), 0);
        ASSERT_INT_EQ(symlink("cpu,cpuacct", at("cg/cpuacct")), 0);
        ASSERT_INT_EQ(put("cg/memory/process_api/abc/"
                          "memory.memsw.limit_in_bytes",
                          "9223372036854771712\n"),
                      0);
        ASSERT_INT_EQ(put("cg/memory/process_api/abc/"
                          "memory.kmem.tcp.limit_in_bytes",
                          "9223372036854771712\n"),
                      0);
        ASSERT_INT_EQ(put("self", "9:name=systemd:/\n8:pids:/\n"
                                  "4:memory:/process_api/abc\n"
                                  "2:cpu,cpuacct:/\n0::/\n"),
                      0);
        al_cg_probe p;
        al_error e = {0};
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, &e), 0);
        ASSERT_STR_EQ(p.reason, "");
        ASSERT_INT_EQ(p.kind, AL_CG_V1);
        ASSERT_TRUE(p.memory && p.pids && p.cpu && p.cpuacct && p.swap);
        ASSERT_TRUE(p.sock);
        ASSERT_STR_EQ(p.parent_memory, at("cg/memory/process_api/abc"));
        ASSERT_STR_EQ(p.parent_pids, at("cg/pids"));
        ASSERT_STR_EQ(p.parent_cpu, at("cg/cpu,cpuacct"));
        ASSERT_STR_EQ(p.parent_cpuacct, at("cg/cpu,cpuacct"));

        al_cg_limits l = {
                .memory_bytes = 128 * MiB, .pids = 16, .cpu_percent = 50};
        al_cgroup *cg = NULL;
        ASSERT_INT_EQ(al_cgroup_create(&p, "airlock-v1", &l, &cg, &e), 0);
        const char *m = "cg/memory/process_api/abc/airlock-v1/";
        char f[256];
#define F(dir, name) (snprintf(f, sizeof(f), "%s%s", dir, name), f)
        ASSERT_STR_EQ(get(F(m, "memory.limit_in_bytes")), "134217728");
        ASSERT_STR_EQ(get(F(m, "memory.memsw.limit_in_bytes")), "134217728");
        /* TCP accounting on, with a budget the size of the memory limit */
        ASSERT_STR_EQ(get(F(m, "memory.kmem.tcp.limit_in_bytes")),
                      "134217728");
        ASSERT_TRUE(!exists(F(m, "memory.swappiness"))); /* optional */
        ASSERT_STR_EQ(get("cg/pids/airlock-v1/pids.max"), "16");
        ASSERT_STR_EQ(get("cg/cpu,cpuacct/airlock-v1/cpu.cfs_period_us"),
                      "100000");
        ASSERT_STR_EQ(get("cg/cpu,cpuacct/airlock-v1/cpu.cfs_quota_us"),
                      "50000");

        /* one directory per hierarchy, the co-mounted one once */
        ASSERT_INT_EQ(al_cgroup_attach(cg, 4321, &e), 0);
        ASSERT_STR_EQ(get(F(m, "cgroup.procs")), "4321");
        ASSERT_STR_EQ(get("cg/pids/airlock-v1/cgroup.procs"), "4321");
        ASSERT_STR_EQ(get("cg/cpu,cpuacct/airlock-v1/cgroup.procs"), "4321");

        ASSERT_INT_EQ(put(F(m, "memory.max_usage_in_bytes"), "7654321\n"), 0);
        ASSERT_INT_EQ(put(F(m, "memory.oom_control"),
                          "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
                      0);
        ASSERT_INT_EQ(
                put("cg/cpu,cpuacct/airlock-v1/cpuacct.usage", "5000123\n"), 0);
        ASSERT_INT_EQ(put("cg/pids/airlock-v1/pids.events", "max 2\n"), 0);
        al_cg_stats st;
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(st.have_memory_peak && st.have_cpu);
        ASSERT_INT_EQ(st.memory_peak_bytes, 7654321);
        ASSERT_INT_EQ(st.cpu_usec, 5000);
        ASSERT_INT_EQ(st.oom_kills, 3);
        ASSERT_INT_EQ(st.pids_denied, 2);
        ASSERT_TRUE(!st.sock_limit_hit); /* no TCP figures: none */

        /* TCP buffers that reached their limit (forced charges go past
         * it; 6.x keeps no failcnt for this counter): a hit, and the
         * peak counts them */
        ASSERT_INT_EQ(put(F(m, "memory.kmem.tcp.max_usage_in_bytes"),
                          "134479872\n"),
                      0);
        ASSERT_INT_EQ(put(F(m, "memory.kmem.tcp.failcnt"), "0\n"), 0);
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(st.sock_limit_hit);
        ASSERT_INT_EQ(st.memory_peak_bytes, 7654321 + 134479872);
        /* under the limit: no hit; a failcnt alone: a hit */
        ASSERT_INT_EQ(put(F(m, "memory.kmem.tcp.max_usage_in_bytes"),
                          "1048576\n"),
                      0);
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(!st.sock_limit_hit);
        ASSERT_INT_EQ(put(F(m, "memory.kmem.tcp.failcnt"), "4\n"), 0);
        ASSERT_INT_EQ(al_cgroup_stats(cg, &st), 0);
        ASSERT_TRUE(st.sock_limit_hit);

        /* v1 kill reads cgroup.procs and signals each pid: empty the fake
         * lists first, the pid written above is not ours. */
        ASSERT_INT_EQ(put(F(m, "cgroup.procs"), ""), 0);
        ASSERT_INT_EQ(put("cg/pids/airlock-v1/cgroup.procs", ""), 0);
        ASSERT_INT_EQ(put("cg/cpu,cpuacct/airlock-v1/cgroup.procs", ""), 0);
        ASSERT_INT_EQ(al_cgroup_kill(cg), 0);
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(!exists("cg/memory/process_api/abc/airlock-v1"));
        ASSERT_TRUE(!exists("cg/pids/airlock-v1"));
        ASSERT_TRUE(!exists("cg/cpu,cpuacct/airlock-v1"));
#undef F
}

FAKE_TEST(v1_fake_separate_no_swap) {
        /* separate cpu and cpuacct hierarchies, no swap accounting, no
         * pids hierarchy */
        mkdirs("cg/memory");
        mkdirs("cg/cpu");
        mkdirs("cg/cpuacct");
        ASSERT_INT_EQ(put("self", "4:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"),
                      0);
        al_cg_probe p;
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_V1);
        ASSERT_TRUE(p.memory && !p.pids && p.cpu && p.cpuacct && !p.swap);
        /* no memory.kmem.tcp.* (a kernel without it): said, not hidden */
        ASSERT_TRUE(!p.sock);
        ASSERT_TRUE(strstr(p.reason, "socket buffers are not bounded") !=
                    NULL);
        ASSERT_STR_EQ(p.parent_cpu, at("cg/cpu"));
        ASSERT_STR_EQ(p.parent_cpuacct, at("cg/cpuacct"));
        ASSERT_STR_EQ(p.parent_pids, "");
        ASSERT_TRUE(strstr(p.reason, "pids not mounted") != NULL);

        al_cg_limits l = {.memory_bytes = 64 * MiB, .pids = 16};
        al_cgroup *cg = NULL;
        al_error e = {0};
        ASSERT_INT_EQ(al_cgroup_create(&p, "r", &l, &cg, &e), 0);
        ASSERT_STR_EQ(get("cg/memory/r/memory.limit_in_bytes"), "67108864");
        ASSERT_TRUE(!exists("cg/memory/r/memory.memsw.limit_in_bytes"));
        ASSERT_TRUE(!exists("cg/memory/r/memory.kmem.tcp.limit_in_bytes"));
        ASSERT_TRUE(exists("cg/cpu/r") && exists("cg/cpuacct/r"));
        ASSERT_TRUE(!exists("cg/cpu/r/cpu.cfs_quota_us")); /* no cpu limit */
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(!exists("cg/memory/r") && !exists("cg/cpu/r") &&
                    !exists("cg/cpuacct/r"));
}

/* ---- none, and create's checks ---- */

FAKE_TEST(none_empty_dir) {
        al_cg_probe p;
        al_error e = {0};
        /* no self file */
        ASSERT_INT_EQ(al_cgroup_probe(tmp, at("self"), &p, &e), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_NONE);
        ASSERT_TRUE(p.reason[0] != '\0');
        /* a self file but no hierarchy */
        ASSERT_INT_EQ(put("self", "0::/\n"), 0);
        ASSERT_INT_EQ(al_cgroup_probe(tmp, at("self"), &p, &e), 0);
        printf("#   reason: %s\n", p.reason);
        ASSERT_INT_EQ(p.kind, AL_CG_NONE);
        ASSERT_TRUE(!p.memory && !p.pids && !p.cpu && !p.cpuacct);
        ASSERT_TRUE(p.reason[0] != '\0');
        /* garbage self file */
        ASSERT_INT_EQ(put("self", "garbage\n::\n4:memory:relative\n"
                                  "5:memory:/../x\n"),
                      0);
        ASSERT_INT_EQ(al_cgroup_probe(tmp, at("self"), &p, &e), 0);
        ASSERT_INT_EQ(p.kind, AL_CG_NONE);
        ASSERT_INT_EQ(al_cgroup_probe(NULL, at("self"), &p, &e), -EINVAL);
}

FAKE_TEST(fake_tree_needs_switch) {
        /* The same v2-looking tree with the switch off: a temp dir is not
         * cgroupfs, so it must not be taken for one. */
        ASSERT_INT_EQ(
                fake_v2("/t", "memory pids\n", "memory pids\n", "0::/t\n"), 0);
        mkdirs("cg/memory");
        al_cgroup_set_fake_tree(false);
        al_cg_probe p;
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, NULL), 0);
        al_cgroup_set_fake_tree(true);
        ASSERT_INT_EQ(p.kind, AL_CG_NONE);
}

FAKE_TEST(create_checks) {
        ASSERT_INT_EQ(
                fake_v2("/t", "memory pids\n", "memory pids\n", "0::/t\n"), 0);
        al_cg_probe p;
        al_error e = {0};
        ASSERT_INT_EQ(al_cgroup_probe(at("cg"), at("self"), &p, &e), 0);
        ASSERT_INT_EQ(p.kind, AL_CG_V2);
        al_cg_limits l = {.memory_bytes = MiB, .pids = 4};
        al_cgroup *cg = NULL;
        const char *bad[] = {"", ".", "..", "a/b", "../t", "a\nb"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ASSERT_INT_EQ(al_cgroup_create(&p, bad[i], &l, &cg, &e),
                              -EINVAL);
                ASSERT_TRUE(cg == NULL);
        }
        char longname[200];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        ASSERT_INT_EQ(al_cgroup_create(&p, longname, &l, &cg, &e), -EINVAL);

        /* an empty group left by a dead supervisor is taken over */
        mkdirs("cg/t/stale");
        ASSERT_INT_EQ(al_cgroup_create(&p, "stale", &l, &cg, &e), 0);
        ASSERT_STR_EQ(get("cg/t/stale/pids.max"), "4");
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(!exists("cg/t/stale"));

        /* one still in use (not removable) is refused and left alone */
        mkdirs("cg/t/busy/child");
        ASSERT_INT_EQ(al_cgroup_create(&p, "busy", &l, &cg, &e), -EEXIST);
        ASSERT_TRUE(cg == NULL);
        printf("#   error: %s\n", e.msg);
        ASSERT_TRUE(strstr(e.msg, "busy") != NULL);
        ASSERT_TRUE(exists("cg/t/busy/child"));

        /* mkdir of the second directory fails: the first one is removed
         * again and the error names the path */
        mkdirs("cg1/memory");
        mkdirs("cg1/pids");
        ASSERT_INT_EQ(put("self1", "2:memory:/\n1:pids:/\n"), 0);
        ASSERT_INT_EQ(al_cgroup_probe(at("cg1"), at("self1"), &p, &e), 0);
        ASSERT_INT_EQ(p.kind, AL_CG_V1);
        snprintf(p.parent_pids, sizeof(p.parent_pids), "%s", at("cg1/nope"));
        ASSERT_INT_EQ(al_cgroup_create(&p, "x", &l, &cg, &e), -ENOENT);
        printf("#   error: %s\n", e.msg);
        ASSERT_TRUE(strstr(e.msg, "cg1/nope/x") != NULL);
        ASSERT_TRUE(cg == NULL);
        ASSERT_TRUE(!exists("cg1/memory/x"));
}

/* ---- real cgroups of this host ---- */

static pid_t kids[4];

/* Fork a child that waits for the go byte, runs fn, exits with its
 * result. Returns the pid, or -1. */
static pid_t spawn(int (*fn)(void), int *go_w) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) != 1)
                        _exit(99);
                _exit(fn());
        }
        close(p[0]);
        if (pid < 0) {
                close(p[1]);
                return -1;
        }
        for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
                if (!kids[i]) {
                        kids[i] = pid;
                        break;
                }
        *go_w = p[1];
        return pid;
}

static int go(int go_w) {
        int r = write(go_w, "g", 1) == 1 ? 0 : -1;
        close(go_w);
        return r;
}

static int reap(pid_t pid) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
                if (kids[i] == pid)
                        kids[i] = 0;
        return st;
}

/* Fork 20 children that stay alive until released; how many forks
 * worked. */
static int fork_many(void) {
        int hold[2];
        if (pipe(hold) < 0)
                return 100;
        int n = 0;
        pid_t k[20];
        for (int i = 0; i < 20; i++) {
                pid_t pid = fork();
                if (pid == 0) {
                        char c;
                        close(hold[1]);
                        (void)!read(hold[0], &c, 1);
                        _exit(0);
                }
                if (pid > 0)
                        k[n++] = pid;
        }
        close(hold[1]);
        for (int i = 0; i < n; i++)
                waitpid(k[i], NULL, 0);
        return n;
}

static int eat_memory(void) {
        size_t len = 200 * MiB;
        char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return 101;
        for (size_t i = 0; i < len; i += 4096)
                m[i] = 1;
        return 0; /* survived: the limit did not hold */
}

static int sleep_forever(void) {
        while (pause() < 0)
                ; /* until SIGKILL */
        return 0;
}

/* A control file of the run's group for controller parent `parent`. */
static const char *run_file(const char *parent, const char *name,
                            const char *file) {
        static char f[4][700];
        static int i;
        i = (i + 1) % 4;
        snprintf(f[i], sizeof(f[i]), "%s/%s/%s", parent, name, file);
        return f[i];
}

/* Limits, pids, OOM and kill on a real v1 or v2 group with memory and
 * pids controllers. */
static void real_body(al_cgroup *cg, const al_cg_probe *p, const char *name) {
        const bool v2 = p->kind == AL_CG_V2;
        const char *pm = v2 ? p->parent_v2 : p->parent_memory;
        const char *pp = v2 ? p->parent_v2 : p->parent_pids;
        const char *pc = v2 ? p->parent_v2 : p->parent_cpu;
        al_error e = {0};
        /* limits as the kernel reports them */
        ASSERT_STR_EQ(
                get_abs(run_file(pm, name,
                                 v2 ? "memory.max" : "memory.limit_in_bytes")),
                "67108864");
        if (p->swap)
                ASSERT_STR_EQ(get_abs(run_file(pm, name,
                                               v2 ? "memory.swap.max"
                                                  : "memory.memsw."
                                                    "limit_in_bytes")),
                              v2 ? "0" : "67108864");
        ASSERT_STR_EQ(get_abs(run_file(pp, name, "pids.max")), "8");
        /* v1: TCP accounting turned on, where the kernel has it */
        if (!v2)
                ASSERT_STR_EQ(get_abs(run_file(pm, name,
                                               "memory.kmem.tcp."
                                               "limit_in_bytes")),
                              p->sock ? "67108864" : "9223372036854771712");
        if (p->cpu)
                ASSERT_STR_EQ(
                        get_abs(run_file(pc, name,
                                         v2 ? "cpu.max" : "cpu.cfs_quota_us")),
                        v2 ? "100000 100000" : "100000");

        /* pids.max = 8: the child and 7 of its 20 forks */
        int w;
        pid_t pid = spawn(fork_many, &w);
        ASSERT_TRUE(pid > 0);
        ASSERT_INT_EQ(al_cgroup_attach(cg, pid, &e), 0);
        char want[16];
        snprintf(want, sizeof(want), "%d", (int)pid);
        ASSERT_STR_EQ(get_abs(run_file(pp, name, "cgroup.procs")), want);
        ASSERT_INT_EQ(go(w), 0);
        int st = reap(pid);
        ASSERT_TRUE(WIFEXITED(st));
        printf("#   forks that worked: %d of 20\n", WEXITSTATUS(st));
        ASSERT_TRUE(WEXITSTATUS(st) < 20);
        ASSERT_INT_EQ(WEXITSTATUS(st), 7);
        al_cg_stats s;
        ASSERT_INT_EQ(al_cgroup_stats(cg, &s), 0);
        if (exists_abs(run_file(pp, name, "pids.events")))
                ASSERT_INT_EQ(s.pids_denied, 13);

        /* 200 MiB touched under 64 MiB without swap: the OOM killer */
        pid = spawn(eat_memory, &w);
        ASSERT_TRUE(pid > 0);
        ASSERT_INT_EQ(al_cgroup_attach(cg, pid, &e), 0);
        ASSERT_INT_EQ(go(w), 0);
        st = reap(pid);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_INT_EQ(WTERMSIG(st), SIGKILL);
        ASSERT_INT_EQ(al_cgroup_stats(cg, &s), 0);
        printf("#   peak %" PRIu64 " bytes, cpu %" PRIu64 " us, %" PRIu64
               " OOM kill(s)\n",
               s.memory_peak_bytes, s.cpu_usec, s.oom_kills);
        if (!v2 || exists_abs(run_file(pm, name, "memory.peak"))) {
                ASSERT_TRUE(s.have_memory_peak);
                ASSERT_TRUE(s.memory_peak_bytes > 32 * MiB);
                ASSERT_TRUE(s.memory_peak_bytes <= 64 * MiB);
        }
        if (strstr(get_abs(run_file(pm, name,
                                    v2 ? "memory.events"
                                       : "memory.oom_control")),
                   "oom_kill "))
                ASSERT_TRUE(s.oom_kills >= 1);
        if (p->cpuacct)
                ASSERT_TRUE(s.have_cpu && s.cpu_usec > 0);

        /* kill: two sleepers, both get SIGKILL */
        int w2;
        pid_t a = spawn(sleep_forever, &w);
        pid_t b = spawn(sleep_forever, &w2);
        ASSERT_TRUE(a > 0 && b > 0);
        ASSERT_INT_EQ(al_cgroup_attach(cg, a, &e), 0);
        ASSERT_INT_EQ(al_cgroup_attach(cg, b, &e), 0);
        ASSERT_INT_EQ(go(w), 0);
        ASSERT_INT_EQ(go(w2), 0);
        ASSERT_INT_EQ(al_cgroup_kill(cg), 0);
        st = reap(a);
        ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        st = reap(b);
        ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static bool real_gone(const al_cg_probe *p, const char *name) {
        const char *parents[] = {p->parent_v2, p->parent_memory, p->parent_pids,
                                 p->parent_cpu, p->parent_cpuacct};
        for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++) {
                char f[700];
                if (!parents[i][0])
                        continue;
                snprintf(f, sizeof(f), "%s/%s", parents[i], name);
                if (exists_abs(f)) {
                        printf("#   left behind: %s\n", f);
                        return false;
                }
        }
        return true;
}

static void kill_kids(void) {
        for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
                if (kids[i]) {
                        kill(kids[i], SIGKILL);
                        reap(kids[i]);
                }
}

/* Probe the host, create a run group, exercise it, remove it. */
static void real_run(enum al_cg_kind want) {
        al_cg_probe p;
        al_error e = {0};
        ASSERT_INT_EQ(
                al_cgroup_probe("/sys/fs/cgroup", "/proc/self/cgroup", &p, &e),
                0);
        printf("#   kind %d memory %d pids %d cpu %d cpuacct %d swap %d; %s\n",
               p.kind, p.memory, p.pids, p.cpu, p.cpuacct, p.swap, p.reason);
        ASSERT_INT_EQ(p.kind, want);
        ASSERT_TRUE(p.memory && p.pids);

        char name[64];
        snprintf(name, sizeof(name), "airlock-test-%d", (int)getpid());
        al_cg_limits l = {
                .memory_bytes = 64 * MiB, .pids = 8, .cpu_percent = 100};
        al_cgroup *cg = NULL;
        ASSERT_INT_EQ(al_cgroup_create(&p, name, &l, &cg, &e), 0);
        real_body(cg, &p, name);
        /* whatever the body did, leave nothing running or behind */
        kill_kids();
        bool failed = tap_cur_failed;
        tap_cur_failed = 0;
        ASSERT_INT_EQ(al_cgroup_kill(cg), 0);
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(real_gone(&p, name));
        tap_cur_failed = failed;
}

static void real_v1(void) {
        real_run(AL_CG_V1);
}

static void real_v2(void) {
        real_run(AL_CG_V2);
}

static bool is_fs(const char *path, unsigned long magic) {
        struct statfs sf;
        return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == magic;
}
#define CGROUP_MAGIC 0x27e0ebUL
#define CGROUP2_MAGIC 0x63677270UL

static const char *real_v1_skip(void) {
        if (geteuid() != 0)
                return "not root";
        if (!is_fs("/sys/fs/cgroup/memory", CGROUP_MAGIC))
                return "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory";
        return NULL;
}

static const char *real_v2_skip(void) {
        static char why[300];
        if (geteuid() != 0)
                return "not root";
        if (!is_fs("/sys/fs/cgroup", CGROUP2_MAGIC))
                return "/sys/fs/cgroup is not cgroup v2 on this host";
        al_cg_probe p;
        al_cgroup_probe("/sys/fs/cgroup", "/proc/self/cgroup", &p, NULL);
        if (p.kind != AL_CG_V2 || !p.memory || !p.pids) {
                snprintf(why, sizeof(why), "v2 without memory+pids here: %s",
                         p.reason);
                return why;
        }
        return NULL;
}

/* The v2 mechanics that need no controller (mkdir, cgroup.procs,
 * cgroup.kill, cpu.stat, rmdir) on any cgroup2 mount, even the
 * controller-less one of a v1 host, with a probe built by hand. */
static char core_mount[64];

static void real_v2_core(void) {
        al_cg_probe p = {.kind = AL_CG_V2, .cpuacct = true};
        al_error e = {0};
        char own[400] = "";
        FILE *f = fopen("/proc/self/cgroup", "re");
        ASSERT_TRUE(f != NULL);
        char line[400];
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(own, sizeof(own), "%s",
                                 strcmp(line + 3, "/") ? line + 3 : "");
                }
        fclose(f);
        snprintf(p.root, sizeof(p.root), "%s", core_mount);
        snprintf(p.parent_v2, sizeof(p.parent_v2), "%s%s", core_mount, own);

        char name[64];
        snprintf(name, sizeof(name), "airlock-test-%d", (int)getpid());
        al_cg_limits l = {
                .memory_bytes = 64 * MiB, .pids = 8, .cpu_percent = 100};
        al_cgroup *cg = NULL;
        ASSERT_INT_EQ(al_cgroup_create(&p, name, &l, &cg, &e), 0);
        /* no controller: no limit file touched */
        ASSERT_TRUE(!exists_abs(run_file(p.parent_v2, name, "memory.max")));
        int w, w2;
        pid_t a = spawn(sleep_forever, &w);
        pid_t b = spawn(sleep_forever, &w2);
        if (a > 0 && b > 0 && al_cgroup_attach(cg, a, &e) == 0 &&
            al_cgroup_attach(cg, b, &e) == 0 && go(w) == 0 && go(w2) == 0) {
                char want[32];
                snprintf(want, sizeof(want), "%d\n%d", (int)a, (int)b);
                const char *procs =
                        get_abs(run_file(p.parent_v2, name, "cgroup.procs"));
                al_cg_stats s;
                int sr = al_cgroup_stats(cg, &s);
                int kr = al_cgroup_kill(cg);
                int sta = reap(a), stb = reap(b);
                ASSERT_STR_EQ(procs, want);
                ASSERT_INT_EQ(sr, 0);
                ASSERT_TRUE(s.have_cpu && !s.have_memory_peak);
                ASSERT_INT_EQ(kr, 0);
                ASSERT_TRUE(WIFSIGNALED(sta) && WTERMSIG(sta) == SIGKILL);
                ASSERT_TRUE(WIFSIGNALED(stb) && WTERMSIG(stb) == SIGKILL);
        } else {
                printf("#   setup failed: %s\n", e.msg);
                tap_cur_failed = 1;
        }
        kill_kids();
        bool failed = tap_cur_failed;
        tap_cur_failed = 0;
        cg = al_cgroup_destroy(cg);
        ASSERT_TRUE(real_gone(&p, name));
        tap_cur_failed = failed;
}

static const char *real_v2_core_skip(void);

/* A whole sandboxed run on the v2 path, with the host's cgroup2 mount
 * (even without controllers): the run is born in its group
 * (CLONE_INTO_CGROUP), so nothing is attached, and its group is gone after
 * the teardown. */
static void real_v2_sandbox(void) {
        al_cg_probe p = {.kind = AL_CG_V2, .cpuacct = true};
        char own[400] = "";
        FILE *f = fopen("/proc/self/cgroup", "re");
        ASSERT_TRUE(f != NULL);
        char line[400];
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(own, sizeof(own), "%s",
                                 strcmp(line + 3, "/") ? line + 3 : "");
                }
        if (f)
                fclose(f);
        snprintf(p.root, sizeof(p.root), "%s", core_mount);
        snprintf(p.parent_v2, sizeof(p.parent_v2), "%s%s", core_mount, own);
        al_sandbox_set_cgroup_probe(&p);

        al_error e = {0};
        al_spec *s = al_spec_new();
        al_result *r = NULL;
        ASSERT_TRUE(s != NULL);
        const char *code = "cat /proc/self/cgroup";
        ASSERT_INT_EQ(al_spec_set_language(s, "sh", &e), 0);
        ASSERT_INT_EQ(al_spec_set_code(s, code, strlen(code), &e), 0);
        al_spec_set_timing(s, true);
        ASSERT_INT_EQ(al_run(s, &r, &e), 0);
        al_sandbox_set_cgroup_probe(NULL);
        if (r) {
                ASSERT_INT_EQ(r->status, AL_STATUS_OK);
                ASSERT_STR_EQ(r->protections.cgroup, "v2");
                /* born in the group: no move into it */
                ASSERT_TRUE(r->has_timing && r->timing.attach_ms == 0);
                /* inside, the cgroup namespace's root is the run's group */
                ASSERT_TRUE(r->stdout_len > 0 &&
                            memmem(r->stdout_buf, r->stdout_len, "0::/\n", 5));
                char name[64];
                snprintf(name, sizeof(name), "airlock-slot%u",
                         r->protections.uid - 1660000000u);
                al_result_teardown(r);
                ASSERT_TRUE(real_gone(&p, name));
        }
        al_result_free(r);
        al_spec_free(s);
}

static const char *real_v2_sandbox_skip(void) {
        return real_v2_core_skip();
}

static const char *real_v2_core_skip(void) {
        if (geteuid() != 0)
                return "not root";
        const char *cand[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        for (size_t i = 0; i < 2; i++)
                if (is_fs(cand[i], CGROUP2_MAGIC)) {
                        snprintf(core_mount, sizeof(core_mount), "%s", cand[i]);
                        return NULL;
                }
        return "no cgroup2 mount";
}

#define RUN_OR_SKIP(fn)                                                        \
        do {                                                                   \
                const char *why_ = fn##_skip();                                \
                if (why_)                                                      \
                        SKIP(fn, why_);                                        \
                else                                                           \
                        RUN(fn);                                               \
        } while (0)

int main(void) {
        RUN(parsing);
        RUN(v2_fake);
        RUN(v2_nosocket);
        RUN(v2_beside_supervisor_leaf);
        RUN(v2_not_delegated);
        RUN(v2_enable_fails);
        RUN(v1_fake_comounted);
        RUN(v1_fake_separate_no_swap);
        RUN(none_empty_dir);
        RUN(fake_tree_needs_switch);
        RUN(create_checks);
        RUN_OR_SKIP(real_v1);
        RUN_OR_SKIP(real_v2);
        RUN_OR_SKIP(real_v2_core);
        RUN_OR_SKIP(real_v2_sandbox);
        TAP_END();
}
