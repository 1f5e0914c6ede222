/* SPDX-License-Identifier: MIT */
/*
 * Per-run cgroups: the interface of cgroup.h, the file helpers both backends
 * share, and the "none" case. Backends: cgroup-v2.c (unified hierarchy) and
 * cgroup-v1.c (one hierarchy per controller, possibly co-mounted).
 *
 * Control files are opened O_CLOEXEC|O_NOFOLLOW relative to a directory fd
 * held for the life of the run: a symlink or a renamed directory in the
 * tree cannot redirect a limit or a pid to another file.
 */
#include "cgroup-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

const char *const cg_ctl_names[CG_NCTL] = {"memory", "pids", "cpu", "cpuacct"};

/* /proc/self/cgroup has one line per hierarchy: a few hundred bytes. */
#define CG_SELF_MAX 65536
/* Passes over cgroup.procs before al_cgroup_kill gives up on a group whose
 * processes keep forking faster than we kill (pids.max bounds that). */
#define CG_KILL_ROUNDS 32
/* Most pids remembered as already signalled; past it every pass counts as
 * new and only CG_KILL_ROUNDS bounds the loop. */
#define CG_KILL_MAX_SEEN 65536
/* How long destroy retries rmdir while the last tasks exit: it runs after
 * the result (a background child, a worker after the response), so a
 * loaded host that takes seconds to release the last task costs nobody a
 * wait, while a group given up on stays until its slot's next run. */
#define CG_RMDIR_MS 5000

static bool fake_tree;

void al_cgroup_set_fake_tree(bool on) {
        fake_tree = on;
}

bool cg_fake_tree(void) {
        return fake_tree;
}

static const char *cmdline_path;

void al_cgroup_set_cmdline_path(const char *path) {
        cmdline_path = path;
}

const char *cg_cmdline_path(void) {
        return cmdline_path ? cmdline_path : "/proc/cmdline";
}

/* ---- small files ---- */

int cg_read_at(int dfd, const char *name, char *buf, size_t size) {
        if (size == 0 || size > INT_MAX)
                return -EINVAL;
        _cleanup_close_ int fd =
                openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        for (;;) {
                char extra;
                /* Once buf is full, one more byte tells "fits" from "too
                 * big" without a second buffer. */
                ssize_t k = n < size - 1 ? read(fd, buf + n, size - 1 - n)
                                         : read(fd, &extra, 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                if (n == size - 1)
                        return -EFBIG;
                n += (size_t)k;
        }
        buf[n] = '\0';
        return (int)n;
}

int cg_write_at(int dfd, const char *name, const char *value, int how) {
        int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
        if (how == CG_W_KERNEL && fake_tree)
                flags |= O_CREAT;
        _cleanup_close_ int fd = openat(dfd, name, flags, 0644);
        if (fd < 0)
                return -errno;
        size_t len = strlen(value);
        ssize_t k;
        /* One write: cgroupfs parses each write(2) as a whole value. */
        do
                k = write(fd, value, len);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if ((size_t)k != len)
                return -EIO;
        return 0;
}

int cg_write_u64_at(int dfd, const char *name, uint64_t v, int how) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return cg_write_at(dfd, name, buf, how);
}

bool cg_exists_at(int dfd, const char *name) {
        struct stat st;
        return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- parsing ---- */

int cg_parse_u64(const char *s, uint64_t *ret) {
        /* strtoull would accept leading blanks and a minus sign. */
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno || end == s)
                return -EINVAL;
        if (*end && *end != '\n' && *end != ' ' && *end != '\t')
                return -EINVAL;
        *ret = (uint64_t)v;
        return 0;
}

int cg_keyed_u64(const char *buf, const char *key, uint64_t *ret) {
        size_t klen = strlen(key);
        for (const char *p = buf; p && *p;) {
                if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
                        return cg_parse_u64(p + klen + 1, ret);
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return -ENOENT;
}

bool cg_has_word(const char *list, const char *word) {
        size_t wlen = strlen(word);
        const char *p = list;
        while (*p) {
                p += strspn(p, " \t\n");
                size_t n = strcspn(p, " \t\n");
                if (n == wlen && strncmp(p, word, n) == 0)
                        return true;
                p += n;
        }
        return false;
}

void cg_mask_names(unsigned mask, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (int c = 0; c < CG_NCTL; c++) {
                if (!(mask & CG_BIT(c)))
                        continue;
                int k = snprintf(buf + n, size - n, "%s%s", n ? "," : "",
                                 cg_ctl_names[c]);
                if (k < 0 || (size_t)k >= size - n)
                        return;
                n += (size_t)k;
        }
}

void cg_reason(al_cg_probe *p, const char *fmt, ...) {
        size_t n = strlen(p->reason);
        if (n + 3 >= sizeof(p->reason))
                return;
        if (n) {
                memcpy(p->reason + n, "; ", 3);
                n += 2;
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->reason + n, sizeof(p->reason) - n, fmt, ap);
        va_end(ap);
}

/* ---- directories ---- */

bool cg_is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool cg_fs_is(const char *path, unsigned long magic) {
        if (fake_tree)
                return true;
        struct statfs sf;
        return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == magic;
}

int cg_can_create(const char *parent, const char *swap_file, bool *ret_swap) {
        _cleanup_close_ int dfd =
                open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (faccessat(dfd, ".", W_OK, AT_EACCESS) < 0)
                return -errno;
        if (ret_swap && swap_file)
                *ret_swap = cg_exists_at(dfd, swap_file);
        return 0;
}

/* ---- killing ---- */

static bool pid_seen(const pid_t *seen, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (seen[i] == pid)
                        return true;
        return false;
}

/* One pass over cgroup.procs: SIGKILL each pid not in *seen and add it.
 * Sets *ret_fresh when it found such a pid. */
static int kill_pass(int dfd, pid_t **seen, size_t *nseen, size_t *cap,
                     bool *ret_fresh) {
        _cleanup_close_ int fd =
                openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        pid_t self = getpid();
        char buf[4096];
        size_t have = 0;
        int kill_err = 0;
        bool eof = false;
        *ret_fresh = false;
        while (!eof) {
                ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                eof = k == 0;
                have += (size_t)k;
                buf[have] = '\0';
                char *p = buf;
                for (;;) {
                        char *nl = strchr(p, '\n');
                        if (!nl && !(eof && *p))
                                break;
                        if (nl)
                                *nl = '\0';
                        uint64_t v;
                        if (cg_parse_u64(p, &v) == 0 && v > 0 && v <= INT_MAX &&
                            (pid_t)v != self &&
                            !pid_seen(*seen, *nseen, (pid_t)v)) {
                                *ret_fresh = true;
                                if (kill((pid_t)v, SIGKILL) < 0 &&
                                    errno != ESRCH)
                                        kill_err = -errno;
                                if (*nseen == *cap && *cap < CG_KILL_MAX_SEEN) {
                                        size_t ncap = *cap ? *cap * 2 : 64;
                                        pid_t *s = realloc(
                                                *seen, ncap * sizeof(**seen));
                                        if (s) {
                                                *seen = s;
                                                *cap = ncap;
                                        }
                                }
                                if (*nseen < *cap)
                                        (*seen)[(*nseen)++] = (pid_t)v;
                        }
                        p = nl ? nl + 1 : buf + have;
                }
                size_t used = (size_t)(p - buf);
                memmove(buf, p, have - used);
                have -= used;
                if (have == sizeof(buf) - 1)
                        return -EIO; /* not a list of pids */
        }
        return kill_err;
}

int cg_kill_procs(int dfd) {
        pid_t *seen = NULL;
        size_t nseen = 0, cap = 0;
        int r = -EBUSY, perm = 0;
        for (int round = 0; round < CG_KILL_ROUNDS; round++) {
                bool fresh;
                int k = kill_pass(dfd, &seen, &nseen, &cap, &fresh);
                if (k == -EPERM)
                        perm = k; /* keep going for the others */
                else if (k < 0) {
                        r = k;
                        break;
                }
                /* Every listed process has had its SIGKILL: those still
                 * listed are exiting and fork no more. Not waiting for
                 * them keeps this callable from a poll loop; destroy
                 * waits. */
                if (!fresh) {
                        r = perm;
                        break;
                }
        }
        free(seen);
        return r;
}

/* ---- /proc/self/cgroup ---- */

/* A cgroup path as the kernel prints it: absolute, no "." or ".." parts. */
static bool self_path_ok(const char *p) {
        if (p[0] != '/')
                return false;
        for (const char *s = p; *s;) {
                s++;
                size_t n = strcspn(s, "/");
                if ((n == 1 && s[0] == '.') ||
                    (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                s += n;
        }
        return true;
}

static int copy_str(char *dst, size_t size, const char *src, size_t len) {
        if (len >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

/* Lines "ID:CONTROLLERS:PATH"; v2 is "0::PATH"; v1 lists controllers
 * separated by commas ("cpu,cpuacct"), named ones ("name=systemd") too. */
static int parse_self(const char *file, cg_self *self) {
        _cleanup_free_ char *buf = malloc(CG_SELF_MAX);
        if (!buf)
                return -ENOMEM;
        int n = cg_read_at(AT_FDCWD, file, buf, CG_SELF_MAX);
        if (n < 0)
                return n;
        memset(self, 0, sizeof(*self));
        for (char *line = buf; *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c2 && self_path_ok(c2 + 1)) {
                        const char *ctls = c1 + 1, *path = c2 + 1;
                        size_t clen = (size_t)(c2 - ctls);
                        if (clen == 0 && c1 - line == 1 && line[0] == '0') {
                                if (copy_str(self->v2, sizeof(self->v2), path,
                                             strlen(path)) == 0)
                                        self->have_v2 = true;
                        }
                        for (const char *t = ctls; clen && t < c2;) {
                                size_t tl = strcspn(t, ",:");
                                for (int c = 0; c < CG_NCTL; c++) {
                                        if (strlen(cg_ctl_names[c]) != tl ||
                                            strncmp(t, cg_ctl_names[c], tl))
                                                continue;
                                        if (copy_str(self->v1[c].mount,
                                                     sizeof(self->v1[c].mount),
                                                     ctls, clen) == 0 &&
                                            copy_str(self->v1[c].path,
                                                     sizeof(self->v1[c].path),
                                                     path, strlen(path)) == 0)
                                                self->v1[c].found = true;
                                }
                                t += tl + 1;
                        }
                }
                if (!nl)
                        break;
                line = nl + 1;
        }
        return 0;
}

/* ---- interface ---- */

int al_cgroup_probe(const char *root, const char *self_cgroup_path,
                    al_cg_probe *ret, al_error *err) {
        if (!root || !self_cgroup_path || !ret)
                return al_error_set(err, EINVAL, "cgroup probe: no %s",
                                    !ret ? "result" : "path");
        memset(ret, 0, sizeof(*ret));
        size_t rlen = strlen(root);
        while (rlen > 1 && root[rlen - 1] == '/')
                rlen--;
        if (copy_str(ret->root, sizeof(ret->root), root, rlen) < 0) {
                cg_reason(ret, "cgroup root path too long");
                return 0;
        }

        cg_self self;
        int r = parse_self(self_cgroup_path, &self);
        if (r < 0) {
                cg_reason(ret, "cannot read %s: %s", self_cgroup_path,
                          strerror(-r));
                return 0;
        }

        /* Pure v2 when the root is itself a cgroup2 mount with controllers.
         * A hybrid host's cgroup2 (e.g. .../unified) has an empty list:
         * every controller is bound to a v1 hierarchy, so go on to v1. */
        char ctl[CG_FILE_MAX];
        if (cg_fs_is(ret->root, 0x63677270UL /* CGROUP2_SUPER_MAGIC */)) {
                _cleanup_close_ int dfd =
                        open(ret->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0 && cg_read_at(dfd, "cgroup.controllers", ctl,
                                           sizeof(ctl)) >= 0) {
                        if (strspn(ctl, " \t\n") != strlen(ctl)) {
                                cg_v2_probe(&self, ret);
                                return 0;
                        }
                        cg_reason(ret, "cgroup2 at %s has no controllers",
                                  ret->root);
                }
        }

        cg_v1_probe(&self, ret);
        if (ret->kind == AL_CG_NONE && !ret->reason[0])
                cg_reason(ret, "no cgroup v1 or v2 controllers under %s",
                          ret->root);
        return 0;
}

static bool name_ok(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > CG_NAME_MAX || strcmp(name, ".") == 0 ||
            strcmp(name, "..") == 0)
                return false;
        for (const char *c = name; *c; c++)
                if (*c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

/* Add a directory for controller c under parent, sharing it with one
 * already listed when hierarchies are co-mounted ("cpu,cpuacct"). */
static int add_dir(al_cgroup *cg, int c, const char *parent, const char *name) {
        char path[CG_PATH_MAX];
        int k = snprintf(path, sizeof(path), "%s/%s", parent, name);
        if (k < 0 || (size_t)k >= sizeof(path))
                return -ENAMETOOLONG;
        for (size_t i = 0; i < cg->n; i++)
                if (strcmp(cg->dir[i].path, path) == 0) {
                        cg->dir[i].ctl |= CG_BIT(c);
                        return 0;
                }
        struct cg_dir *d = &cg->dir[cg->n++];
        memcpy(d->path, path, (size_t)k + 1);
        d->ctl = CG_BIT(c);
        return 0;
}

static int make_dir(struct cg_dir *d, al_error *err) {
        if (mkdir(d->path, 0755) < 0) {
                int e = errno;
                /* A run name is reused (one per root-mode slot, whose lock
                 * the caller holds): a group left by a supervisor that died
                 * is emptied of what is left in it and taken over. */
                if (e == EEXIST && rmdir(d->path) < 0 && errno == EBUSY) {
                        int dfd = open(d->path, O_RDONLY | O_DIRECTORY |
                                                        O_CLOEXEC | O_NOFOLLOW);
                        for (int i = 0; dfd >= 0 && i < 100; i++) {
                                cg_kill_procs(dfd);
                                if (rmdir(d->path) == 0 || errno != EBUSY)
                                        break;
                                usleep(10000);
                        }
                        if (dfd >= 0)
                                close(dfd);
                }
                if (e != EEXIST || (rmdir(d->path) < 0 && errno != ENOENT) ||
                    mkdir(d->path, 0755) < 0)
                        return al_error_errno(err, e, "mkdir %s%s", d->path,
                                              e == EEXIST ? " (in use)" : "");
        }
        d->created = true;
        d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (d->fd < 0)
                return al_error_errno(err, errno, "open %s", d->path);
        return 0;
}

int al_cgroup_create(const al_cg_probe *probe, const char *name,
                     const al_cg_limits *limits, al_cgroup **ret,
                     al_error *err) {
        if (!probe || !name || !limits || !ret)
                return al_error_set(err, EINVAL, "cgroup create: bad argument");
        if (probe->kind == AL_CG_NONE)
                return al_error_set(err, EOPNOTSUPP, "no usable cgroup: %s",
                                    probe->reason);
        if (!name_ok(name))
                return al_error_set(err, EINVAL, "bad cgroup name \"%.*s\"",
                                    CG_NAME_MAX, name);

        al_cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return al_error_set(err, ENOMEM, "cgroup create");
        cg->kind = probe->kind;
        for (size_t i = 0; i < ARRAY_SIZE(cg->dir); i++)
                cg->dir[i].fd = -1;

        const bool use[CG_NCTL] = {probe->memory, probe->pids, probe->cpu,
                                   probe->cpuacct};
        const char *parent[CG_NCTL] = {probe->parent_memory, probe->parent_pids,
                                       probe->parent_cpu,
                                       probe->parent_cpuacct};
        int r = 0;
        for (int c = 0; c < CG_NCTL && r == 0; c++) {
                if (!use[c])
                        continue;
                r = add_dir(cg, c,
                            probe->kind == AL_CG_V2 ? probe->parent_v2
                                                    : parent[c],
                            name);
        }
        if (r < 0) {
                al_error_set(err, -r, "cgroup path for %s too long", name);
                goto fail;
        }
        for (size_t i = 0; i < cg->n; i++)
                if ((r = make_dir(&cg->dir[i], err)) < 0)
                        goto fail;

        r = probe->kind == AL_CG_V2 ? cg_v2_limits(cg, probe, limits, err)
                                    : cg_v1_limits(cg, probe, limits, err);
        if (r < 0)
                goto fail;
        *ret = cg;
        return 0;
fail:
        al_cgroup_destroy(cg);
        return r;
}

int al_cgroup_attach(al_cgroup *cg, pid_t pid, al_error *err) {
        if (!cg || pid <= 0)
                return al_error_set(err, EINVAL, "cgroup attach: bad argument");
        for (size_t i = 0; i < cg->n; i++) {
                int r = cg_write_u64_at(cg->dir[i].fd, "cgroup.procs",
                                        (uint64_t)pid, CG_W_KERNEL);
                if (r < 0)
                        return al_error_errno(
                                err, -r, "attach pid %d to %s/cgroup.procs",
                                (int)pid, cg->dir[i].path);
        }
        return 0;
}

int al_cgroup_join_fds(const al_cgroup *cg, int *fds, size_t max) {
        if (!cg || cg->kind != AL_CG_V1 || cg->n == 0 || cg->n > max)
                return 0;
        for (size_t i = 0; i < cg->n; i++) {
                fds[i] = openat(cg->dir[i].fd, "tasks",
                                O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fds[i] < 0) {
                        for (size_t k = 0; k < i; k++)
                                fds[k] = safe_close(fds[k]);
                        return 0;
                }
        }
        return (int)cg->n;
}

int al_cgroup_clone_fd(const al_cgroup *cg) {
        return cg && cg->kind == AL_CG_V2 && cg->n == 1 ? cg->dir[0].fd : -1;
}

int al_cgroup_stats(al_cgroup *cg, al_cg_stats *ret) {
        if (!cg || !ret)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        if (cg->kind == AL_CG_V2)
                cg_v2_stats(cg, ret);
        else
                cg_v1_stats(cg, ret);
        return 0;
}

int al_cgroup_kill(al_cgroup *cg) {
        if (!cg)
                return -EINVAL;
        if (cg->kind == AL_CG_V2)
                return cg_v2_kill(cg);
        /* v1: the same processes are in every hierarchy, unless an attach
         * failed half way; go over each. */
        int ret = 0;
        for (size_t i = 0; i < cg->n; i++) {
                int r = cg_kill_procs(cg->dir[i].fd);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A fake tree keeps its control files as regular files; cgroupfs drops
 * them with the directory. Never recursive. */
static void unlink_fake_files(const char *path) {
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return;
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode))
                        unlinkat(dfd, de->d_name, 0);
        }
        closedir(d);
}

al_cgroup *al_cgroup_destroy(al_cgroup *cg) {
        if (!cg)
                return NULL;
        double deadline = now_ms() + CG_RMDIR_MS;
        for (size_t i = cg->n; i-- > 0;) {
                struct cg_dir *d = &cg->dir[i];
                d->fd = safe_close(d->fd);
                if (!d->created)
                        continue;
                if (fake_tree)
                        unlink_fake_files(d->path);
                /* EBUSY while the last tasks finish exiting after SIGKILL. */
                long delay_us = 1000;
                while (rmdir(d->path) < 0 && errno == EBUSY &&
                       now_ms() < deadline) {
                        struct timespec ts = {0, delay_us * 1000};
                        nanosleep(&ts, NULL);
                        if (delay_us < 32000)
                                delay_us *= 2;
                }
        }
        free(cg);
        return NULL;
}
