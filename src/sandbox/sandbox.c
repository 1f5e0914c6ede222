/* SPDX-License-Identifier: MIT */
/*
 * The sandbox: one process tree in fresh namespaces, supervised from
 * outside.
 *
 *   supervisor (caller's process)          sandbox
 *   ----------------------------------     ----------------------------------
 *   pipes, cgroup, slot uid, BPF ready
 *   clone(NEWUSER|NEWPID|NEWNS|NEWNET|  -> "init" (pid 1 of the new pid ns)
 *         NEWIPC|NEWUTS)                   waits for "go"
 *   write uid/gid map, attach cgroup,
 *   send "go"                           -> become uid 1000, new cgroup ns,
 *                                          build root in tmpfs, pivot_root,
 *                                          write input files, pass the
 *                                          workspace fd, new time ns, fork:
 *                                            payload: setsid, rlimits,
 *                                            drop caps, no_new_privs,
 *                                            seccomp, execve
 *                                          init: drop caps, seccomp, reap;
 *                                          when the payload exits, report
 *                                          its status and exit -> the kernel
 *                                          kills all that is left in the ns
 *   poll: stdout, stderr, stdin, init's
 *   pidfd, cancel fd, wall deadline,
 *   CPU and output caps -> SIGKILL init
 *   reap, read cgroup stats, destroy cgroup
 *
 * The child never allocates after clone(): the caller may be threaded.
 */
#include "sandbox.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "egress.h"
#include "error.h"
#include "macro.h"
#include "sandbox-internal.h"
#include "seccomp-filter.h"
#include "util.h"

/* Host uids/gids for concurrent runs as root: one unused id per slot, so
 * two sandboxes never share an identity. Chosen far above the ranges that
 * distributions and /etc/subuid allocate. */
#define AL_SLOT_ID_BASE 1660000000u
#define AL_SLOTS 256

/* ---------------------------------------------------------------- host */

static char state_dir[256];

int al_set_runtime_dir(const char *dir, al_error *err) {
        if (!dir || dir[0] != '/' || strlen(dir) >= sizeof(state_dir))
                return al_error_set(err, EINVAL,
                                    "runtime dir must be an absolute path");
        snprintf(state_dir, sizeof(state_dir), "%s", dir);
        return 0;
}

/* Resolved once, also when the first runs start on several threads at
 * once (two half-written paths would mean two slot-lock directories, so
 * the same slot, uid and cgroup for two runs). */
static pthread_once_t state_dir_once = PTHREAD_ONCE_INIT;

static void state_dir_default(void) {
        if (!state_dir[0]) {
                const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
                if (geteuid() == 0 || !xdg || xdg[0] != '/')
                        snprintf(state_dir, sizeof(state_dir), "%s",
                                 geteuid() == 0 ? "/run/airlock"
                                                : "/tmp/airlock");
                else
                        snprintf(state_dir, sizeof(state_dir), "%s/airlock",
                                 xdg);
        }
}

static const char *get_state_dir(void) {
        pthread_once(&state_dir_once, state_dir_default);
        return state_dir;
}

/* Take a free slot: an flock on <state>/slot-N.lock, held until the run
 * ends. Returns the locked fd and the slot number. */
static int slot_acquire(unsigned *ret_slot, al_error *err) {
        const char *dir = get_state_dir();
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return al_error_errno(err, errno, "cannot create %s", dir);
        for (unsigned i = 0; i < AL_SLOTS; i++) {
                char p[320];
                snprintf(p, sizeof(p), "%s/slot-%u.lock", dir, i);
                int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                              0600);
                if (fd < 0)
                        return al_error_errno(err, errno, "cannot open %s", p);
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret_slot = i;
                        return fd;
                }
                close(fd);
        }
        return al_error_set(err, EBUSY, "all %d sandbox slots are busy",
                            AL_SLOTS);
}

void al_host_probe(al_host_info *h) {
        memset(h, 0, sizeof(*h));
        h->root = geteuid() == 0;
        h->timens = access("/proc/self/ns/time", F_OK) == 0;
        /* mount_setattr with no flags on "/" is a harmless probe: EINVAL
         * means the call exists, ENOSYS that it does not. */
        errno = 0;
        long r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
        h->mount_setattr = !(r < 0 && errno == ENOSYS);
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL,
                                   NULL, NULL, 0);
        if (pid == 0)
                _exit(0);
        if (pid < 0) {
                snprintf(h->userns_why, sizeof(h->userns_why),
                         "clone(CLONE_NEWUSER) failed: %s", strerror(errno));
                return;
        }
        int st;
        waitpid(pid, &st, 0);
        h->userns = true;
}

static int write_file(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        int r = n == (ssize_t)strlen(s) ? 0 : -errno;
        close(fd);
        return r;
}

/* ------------------------------------------------------- the supervisor */

static void sb_close_all(struct sandbox *sb) {
        int *fds[] = {&sb->sync_w, &sb->msg_r,  &sb->sock_p,   &sb->status_r,
                      &sb->in_w,   &sb->out_r,  &sb->err_r,    &sb->sync_r,
                      &sb->msg_w,  &sb->sock_c, &sb->status_w, &sb->in_r,
                      &sb->out_w,  &sb->errp_w};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                *fds[i] = safe_close(*fds[i]);
}

static void sb_close_child_ends(struct sandbox *sb) {
        sb->sync_r = safe_close(sb->sync_r);
        sb->msg_w = safe_close(sb->msg_w);
        sb->sock_c = safe_close(sb->sock_c);
        sb->status_w = safe_close(sb->status_w);
        sb->in_r = safe_close(sb->in_r);
        sb->out_w = safe_close(sb->out_w);
        sb->errp_w = safe_close(sb->errp_w);
}

static int make_pipe(int *r, int *w) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        *r = p[0];
        *w = p[1];
        return 0;
}

static int write_map(pid_t pid, const char *file, const char *text) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, file);
        return write_file(p, text);
}

/* write() to a pipe whose reader may be gone, without SIGPIPE reaching
 * the caller's process (a library must not change signal dispositions). */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        bool was_pending = false;
        sigset_t pending;
        if (sigpending(&pending) == 0)
                was_pending = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        ssize_t n = write(fd, buf, len);
        int saved = errno;
        if (n < 0 && errno == EPIPE && !was_pending) {
                struct timespec zero = {0, 0};
                sigtimedwait(&set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        return n;
}

struct stream {
        int fd;
        unsigned char *buf;
        size_t len, cap;
        bool truncated;
};

/* One read of a stream's pipe into tmp: the bytes (> 0), 0 when none is
 * there yet, -1 at EOF or on an error (the stream is closed). */
static ssize_t read_some(int fd, unsigned char *tmp, size_t size) {
        ssize_t n = read(fd, tmp, size);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        return n > 0 ? n : -1;
}

/* Read what is available; keep at most `limit` bytes. Returns false on
 * EOF or error (stream closed). */
static bool stream_read(struct stream *s, uint64_t limit) {
        unsigned char tmp[65536];
        ssize_t n = read_some(s->fd, tmp, sizeof(tmp));
        if (n <= 0)
                return n == 0;
        size_t keep = (size_t)n;
        if (s->len + keep > limit) {
                keep = limit > s->len ? (size_t)(limit - s->len) : 0;
                s->truncated = true;
        }
        if (keep) {
                if (s->len + keep > s->cap) {
                        size_t nc = s->cap ? s->cap * 2 : 65536;
                        while (nc < s->len + keep)
                                nc *= 2;
                        if (nc > limit)
                                nc = (size_t)limit;
                        unsigned char *nb = realloc(s->buf, nc);
                        if (!nb) {
                                s->truncated = true;
                                return true;
                        }
                        s->buf = nb;
                        s->cap = nc;
                }
                memcpy(s->buf + s->len, tmp, keep);
                s->len += keep;
        }
        return true;
}

static void hit(al_result *r, const char *what) {
        if (strstr(r->limits_hit, what))
                return;
        size_t n = strlen(r->limits_hit);
        snprintf(r->limits_hit + n, sizeof(r->limits_hit) - n, "%s%s",
                 n ? "," : "", what);
}

static const al_cg_probe *probe_override;

void al_sandbox_set_cgroup_probe(const al_cg_probe *p) {
        probe_override = p;
}

/* Probed once per process, whichever thread runs first (airlock serve
 * runs sandboxes from several). */
static al_cg_probe probe_cache;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_cgroups(void) {
        al_error e;
        if (al_cgroup_probe("/sys/fs/cgroup", "/proc/self/cgroup", &probe_cache,
                            &e) < 0) {
                memset(&probe_cache, 0, sizeof(probe_cache));
                snprintf(probe_cache.reason, sizeof(probe_cache.reason), "%s",
                         e.msg);
        }
}

static const al_cg_probe *cgroup_probe_cached(void) {
        if (probe_override)
                return probe_override;
        pthread_once(&probe_once, probe_cgroups);
        return &probe_cache;
}

static void fill_protections(al_protections *p, const al_cg_probe *cg,
                             bool have_cg, bool root_mode, uid_t uid,
                             uint32_t ready_flags) {
        p->user_ns = p->pid_ns = p->mount_ns = p->net_ns = p->ipc_ns =
                p->uts_ns = p->cgroup_ns = true;
        p->time_ns = ready_flags & READY_TIMENS;
        p->pivot_root = p->readonly_root = p->no_new_privs = p->caps_dropped =
                p->seccomp = p->setsid = p->rlimits = true;
        p->cgroup = !have_cg ? "none" : cg->kind == AL_CG_V2 ? "v2" : "v1";
        p->cg_memory = have_cg && cg->memory;
        p->cg_pids = have_cg && cg->pids;
        p->cg_cpu = have_cg && cg->cpu;
        p->id_mode = root_mode ? "root-slot" : "userns-self";
        p->uid = uid;
        if (!have_cg)
                snprintf(p->note, sizeof(p->note),
                         "no cgroup limits (rlimits only): %s",
                         cg->reason[0] ? cg->reason : "cgroups unavailable");
        else if (!cg->memory || !cg->pids || !cg->cpu || !cg->sock)
                snprintf(p->note, sizeof(p->note), "partial cgroups: %s",
                         cg->reason);
}

/* What the child has told the supervisor so far. */
struct progress {
        bool ready, setup_failed;
        uint32_t ready_flags;
        double t_ready;
        int ws_fd, mnt_fd, net_fd; /* from the child, at ready */
        int proxy_fd;              /* the proxy's socket, with egress */
        al_error child_err;
};

/* Read one message from the child; false on EOF or a short read. */
static bool read_child_msg(struct sandbox *sb, struct progress *pg,
                           double now) {
        struct child_msg m;
        if (read(sb->msg_r, &m, sizeof(m)) != (ssize_t)sizeof(m))
                return false;
        if (m.type == MSG_READY && !pg->ready) {
                pg->ready = true;
                pg->ready_flags = m.flags;
                pg->t_ready = now;
                int fds[AL_PASS_FDS] = {-1, -1, -1};
                int got = sbx_recv_fds(sb->sock_p, fds, AL_PASS_FDS,
                                       MSG_DONTWAIT);
                if (got > 0 && got != AL_PASS_FDS)
                        for (int i = 0; i < got; i++)
                                fds[i] = safe_close(fds[i]);
                if (got == AL_PASS_FDS) {
                        pg->ws_fd = fds[0];
                        pg->mnt_fd = fds[1];
                        pg->net_fd = fds[2];
                }
                if (sb->c->egress && sbx_recv_fds(sb->sock_p, &pg->proxy_fd, 1,
                                                  MSG_DONTWAIT) != 1)
                        pg->proxy_fd = -1;
        } else if (m.type == MSG_ERROR) {
                pg->setup_failed = true;
                pg->child_err.code = m.code;
                memcpy(pg->child_err.msg, m.msg, sizeof(pg->child_err.msg));
                pg->child_err.msg[sizeof(pg->child_err.msg) - 1] = '\0';
        }
        return true;
}

/* clone3's argument block (linux/sched.h, kernel 5.3+; cgroup 5.7+),
 * spelled out to keep <linux/sched.h> away from glibc's <sched.h>. */
struct al_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
                stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define AL_CLONE_PIDFD 0x00001000ULL
#define AL_CLONE_INTO_CGROUP 0x200000000ULL

/* Fork into new user and pid namespaces (the child makes the others
 * itself, in parallel with us). With cg_fd >= 0 the child is born in that
 * cgroup v2 group, which spares the migration and the RCU grace period
 * that a write to cgroup.procs waits for. Returns the pid (0 in the
 * child) and the pidfd; *ret_into says whether cg_fd was used. */
static pid_t clone_sandbox(int cg_fd, int *ret_pidfd, bool *ret_into) {
        const uint64_t ns = CLONE_NEWUSER | CLONE_NEWPID;
        int pidfd = -1;
        *ret_into = false;
        for (int attempt = cg_fd >= 0 ? 0 : 1; attempt < 2; attempt++) {
                struct al_clone_args a = {
                        .flags = ns | AL_CLONE_PIDFD |
                                 (attempt == 0 ? AL_CLONE_INTO_CGROUP : 0),
                        .pidfd = (uint64_t)(uintptr_t)&pidfd,
                        .exit_signal = SIGCHLD,
                        .cgroup = attempt == 0 ? (uint64_t)cg_fd : 0,
                };
                pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
                if (pid >= 0) {
                        *ret_pidfd = pidfd;
                        *ret_into = attempt == 0;
                        return pid;
                }
                if (errno == ENOSYS)
                        break;
                /* a cgroup we may not clone into (e.g. a fake tree, an
                 * old kernel): join it the classic way */
                if (attempt == 0 && (errno == EINVAL || errno == EBADF ||
                                     errno == EOPNOTSUPP || errno == E2BIG))
                        continue;
                return -1;
        }
        /* Kernels before 5.3: clone, and a pidfd from pidfd_open (5.3)
         * when there is one. */
        pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)ns | SIGCHLD, NULL,
                                   NULL, NULL, 0);
        if (pid > 0)
                *ret_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        return pid;
}

static int write_idmaps(const struct sandbox *sb, pid_t pid, al_error *err) {
        char map[64];
        int r;
        if (!sb->root_mode && (r = write_map(pid, "setgroups", "deny")) < 0)
                return al_error_errno(err, -r, "write setgroups");
        snprintf(map, sizeof(map), "%u %u 1\n", AL_SANDBOX_UID,
                 (unsigned)sb->host_uid);
        if ((r = write_map(pid, "uid_map", map)) < 0)
                return al_error_errno(err, -r, "write uid_map");
        snprintf(map, sizeof(map), "%u %u 1\n", AL_SANDBOX_GID,
                 (unsigned)sb->host_gid);
        if ((r = write_map(pid, "gid_map", map)) < 0)
                return al_error_errno(err, -r, "write gid_map");
        return 0;
}

/* The run's cgroup: one per run, named after the root-mode slot (whose
 * lock we hold) or after this process. The probe does not try a mkdir (it
 * would cost every start), so a creation can still fail here: the run
 * then goes on with rlimits only, like a host without cgroups, and says
 * why in its result (why[]). */
static void make_cgroup(const al_sbx_config *c, const al_cg_probe *probe,
                        bool root_mode, unsigned slot, al_cgroup **ret,
                        char *why, size_t why_size) {
        static unsigned seq;
        char name[64];
        al_cg_limits cl = {
                .memory_bytes = c->limits.memory_mb << 20,
                .pids = c->limits.pids + 1, /* + init, not the code's */
                .cpu_percent = 100,
        };
        if (root_mode)
                snprintf(name, sizeof(name), "airlock-slot%u", slot);
        else
                snprintf(name, sizeof(name), "airlock-%d-%u", (int)getpid(),
                         __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
        al_error e = {0};
        if (al_cgroup_create(probe, name, &cl, ret, &e) < 0) {
                *ret = NULL;
                snprintf(why, why_size, "%s", e.msg);
        }
}

/* The supervisor's time marks (al_now_ms), for the timing report. */
enum {
        T0,
        T_PREP,
        T_CG0,
        T_CG1,
        T_CLONE,
        T_MAPS,
        T_ATT0,
        T_ATT1,
        T_GATE0,
        T_GATE1,
        T_EXIT,
        T_TD0,
        T_END,
        T_N
};

static double since(double a, double b) {
        return a > 0 && b >= a ? b - a : 0;
}

/* The timing report, from our marks and the sandbox's clock page. */
static void fill_timing(al_timing *t, const struct sbx_clock *ck,
                        const double *mk) {
        t->prepare_ms = since(mk[T0], mk[T_PREP]);
        t->cgroup_ms = since(mk[T_CG0], mk[T_CG1]);
        t->clone_ms = since(mk[T_PREP], mk[T_CLONE]) -
                      (mk[T_CG1] <= mk[T_CLONE] ? t->cgroup_ms : 0);
        t->namespaces_ms = since(ck->start, ck->ns);
        t->idmap_ms = since(mk[T_CLONE], mk[T_MAPS]);
        t->attach_ms = since(mk[T_ATT0], mk[T_ATT1]);
        t->gate_ms = since(mk[T_GATE0], mk[T_GATE1]);
        t->mounts_ms = since(ck->ids, ck->mounts);
        t->net_wait_ms = since(ck->mounts, ck->net);
        t->inputs_ms = since(ck->net, ck->ready);
        t->lockdown_ms = since(ck->payload, ck->exec);
        t->seccomp_ms = since(ck->filter0, ck->filter1);
        t->run_ms = since(ck->exec, ck->reaped);
        t->exit_ms = since(ck->reaped, mk[T_EXIT]);
        t->teardown_ms = since(mk[T_TD0], mk[T_END]);
        t->setup_ms = since(mk[T0], ck->exec);
}

struct al_sbx_leftover {
        al_cgroup *cg;
        int mnt_fd, net_fd;
        int slot_fd; /* root mode: the slot stays ours until its cgroup
                        is gone, so the next run of the slot finds none */
};

al_sbx_leftover *al_sbx_leftover_free(al_sbx_leftover *l) {
        if (!l)
                return NULL;
        /* Every process died with init (the pid namespace); the kill is
         * for the impossible case, before the cgroup is removed. */
        if (l->cg) {
                al_cgroup_kill(l->cg);
                al_cgroup_destroy(l->cg);
        }
        safe_close(l->mnt_fd);
        safe_close(l->net_fd);
        safe_close(l->slot_fd);
        free(l);
        return NULL;
}

/* One run on the supervisor's side, what its phases share. The phases,
 * in order, are those the timing report names: prepare, cgroup, clone,
 * idmap (and attach), gate, supervise, collect (and account, verdict),
 * teardown; the sandbox's own (namespaces, mounts, inputs, lockdown) are
 * init's, in sandbox-init.c. */
struct run {
        const al_sbx_config *c;
        al_result *res;
        al_error *err;
        struct sandbox sb;
        al_bpf bpf;
        double mk[T_N]; /* the supervisor's time marks */
        int slot_fd;    /* root mode: the slot's lock */
        unsigned slot;
        const al_cg_probe *probe;
        al_cgroup *cg;
        char cg_fail[AL_ERROR_MSG_MAX]; /* why there is no cgroup after all */
        bool into;                      /* born in it (CLONE_INTO_CGROUP) */
        bool join;                      /* joins it itself (v1 "tasks" fds) */
        al_egress *egress;              /* the run's proxy, or NULL */
        pid_t pid;                      /* init, until reaped */
        int pidfd;
        struct stream out, errs;
        struct progress pg;
        /* why the supervisor killed the run */
        bool wall_kill, cpu_kill, out_kill, cancelled;
        /* how it ended */
        struct rusage ru;
        int wst;     /* init's wait status */
        int32_t pst; /* the payload's, as init reported it */
        bool have_pst;
        al_cg_stats st;
};

static void sb_init_fds(struct sandbox *sb) {
        int *fds[] = {&sb->sync_w, &sb->msg_r,  &sb->sock_p,   &sb->status_r,
                      &sb->in_w,   &sb->out_r,  &sb->err_r,    &sb->sync_r,
                      &sb->msg_w,  &sb->sock_c, &sb->status_w, &sb->in_r,
                      &sb->out_w,  &sb->errp_w};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                *fds[i] = -1;
}

/* prepare: the result's defaults, the filter, the clock page, the slot
 * and host ids, the cgroup probe, the pipes and the fd socket. */
static int run_prepare(struct run *run) {
        const al_sbx_config *c = run->c;
        struct sandbox *sb = &run->sb;
        al_error *err = run->err;
        int r;

        run->res->limits = c->limits;
        run->res->exit_code = -1;

        al_seccomp_program(&run->bpf);
        sb->bpf = &run->bpf;
        sb->clock = mmap(NULL, sizeof(*sb->clock), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sb->clock == MAP_FAILED)
                return al_error_errno(err, errno, "mmap");

        sb->root_mode = geteuid() == 0;
        if (sb->root_mode) {
                if ((run->slot_fd = slot_acquire(&run->slot, err)) < 0)
                        return run->slot_fd;
                sb->host_uid = AL_SLOT_ID_BASE + run->slot;
                sb->host_gid = AL_SLOT_ID_BASE + run->slot;
        } else {
                sb->host_uid = getuid();
                sb->host_gid = getgid();
        }
        run->probe = cgroup_probe_cached();
        if (run->probe->kind != AL_CG_NONE) {
                sb->cg_pids = run->probe->pids;
                sb->cg_memory = run->probe->memory;
        }

        if ((r = make_pipe(&sb->sync_r, &sb->sync_w)) < 0 ||
            (r = make_pipe(&sb->msg_r, &sb->msg_w)) < 0 ||
            (r = make_pipe(&sb->status_r, &sb->status_w)) < 0 ||
            (r = make_pipe(&sb->in_r, &sb->in_w)) < 0 ||
            (r = make_pipe(&sb->out_r, &sb->out_w)) < 0 ||
            (r = make_pipe(&sb->err_r, &sb->errp_w)) < 0) {
                al_error_errno(err, -r, "pipe");
                return r;
        }
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return al_error_errno(err, errno, "socketpair");
        sb->sock_p = sp[0];
        sb->sock_c = sp[1];
        run->mk[T_PREP] = al_now_ms();
        return 0;
}

static void take_cgroup(struct run *run) {
        run->mk[T_CG0] = al_now_ms();
        make_cgroup(run->c, run->probe, run->sb.root_mode, run->slot, &run->cg,
                    run->cg_fail, sizeof(run->cg_fail));
        run->mk[T_CG1] = al_now_ms();
}

/* cgroup: on v2 the group exists, limits set, before the child: it is
 * born in it. v1 (no clone into a group): made while the child builds
 * its namespaces (run_idmap), and joined before the code can run. */
static void run_cgroup(struct run *run) {
        if (run->probe->kind == AL_CG_V2) {
                take_cgroup(run);
                if (!run->cg)
                        run->sb.cg_pids = run->sb.cg_memory = false;
        }
}

/* clone: init, in new user and pid namespaces (and its cgroup on v2). In
 * the child, sbx_child_main never returns. */
static int run_clone(struct run *run) {
        run->pid = clone_sandbox(al_cgroup_clone_fd(run->cg), &run->pidfd,
                                 &run->into);
        if (run->pid < 0)
                return al_error_errno(run->err, errno,
                                      "clone with new namespaces (is "
                                      "kernel.unprivileged_userns_clone or "
                                      "user.max_user_namespaces set to 0?)");
        if (run->pid == 0)
                sbx_child_main(&run->sb);
        run->mk[T_CLONE] = al_now_ms();
        if (run->pidfd < 0)
                return al_error_errno(run->err, errno, "pidfd");
        sb_close_child_ends(&run->sb);
        return 0;
}

/* idmap: the child's uid and gid maps, then its first go; on v1 the
 * cgroup is made meanwhile, and the child joins it (attach) unless it was
 * born in it. */
static int run_idmap(struct run *run) {
        int r;

        if ((r = write_idmaps(&run->sb, run->pid, run->err)) < 0)
                return r;
        if (write(run->sb.sync_w, &(char){SYNC_IDMAP}, 1) != 1)
                return al_error_errno(run->err, errno, "start sandbox");
        run->mk[T_MAPS] = al_now_ms();
        if (run->probe->kind == AL_CG_V1)
                take_cgroup(run);
        if (run->cg && !run->into) {
                run->mk[T_ATT0] = al_now_ms();
                int fds[AL_CG_JOIN_MAX];
                int n = al_cgroup_join_fds(run->cg, fds, AL_CG_JOIN_MAX);
                if (n > 0) {
                        r = sbx_send_fds(run->sb.sock_p, fds, (size_t)n);
                        for (int i = 0; i < n; i++)
                                close(fds[i]);
                        if (r < 0)
                                return al_error_errno(run->err, -r,
                                                      "pass cgroup fds");
                        run->join = true;
                } else if ((r = al_cgroup_attach(run->cg, run->pid, run->err)) <
                           0)
                        return r;
                run->mk[T_ATT1] = al_now_ms();
        }
        return 0;
}

/* gate: the caller's go (its audit record is durable), taken while the
 * sandbox builds its root; nothing of the code is in it yet. Then the
 * child's second go: in its cgroup, or without one after all. */
static int run_gate(struct run *run) {
        const al_sbx_config *c = run->c;
        int r;

        if (c->gate) {
                run->mk[T_GATE0] = al_now_ms();
                if ((r = c->gate(c->gate_ctx, run->err)) < 0)
                        return r;
                run->mk[T_GATE1] = al_now_ms();
        }
        if (write(run->sb.sync_w,
                  &(char){run->join ? SYNC_CGROUP_JOIN
                          : run->cg ? SYNC_CGROUP
                                    : SYNC_NO_CGROUP},
                  1) != 1)
                return al_error_errno(run->err, errno, "start sandbox");
        /* sync_w stays open until the end: its hang-up tells the child
         * that the supervisor died before the parent-death signal was
         * armed again. */
        return 0;
}

/* Write what the pipe takes of the code's stdin; close it at the end or
 * when the reader is gone. */
static void feed_stdin(struct run *run, size_t *in_off) {
        const al_sbx_config *c = run->c;
        ssize_t k = write_nosigpipe(run->sb.in_w, c->stdin_data + *in_off,
                                    c->stdin_len - *in_off);
        if (k > 0)
                *in_off += (size_t)k;
        if ((k < 0 && errno != EAGAIN) || *in_off == c->stdin_len)
                run->sb.in_w = safe_close(run->sb.in_w);
}

static void act_max(int *act, int a) {
        if (a > *act)
                *act = a;
}

/* Read what a stream has: buffered for a one-shot run, handed to the
 * live run's on_output as it comes (its action merged into *act). False
 * on EOF or error. */
static bool stream_pump(struct run *run, struct stream *s, int no, int *act) {
        const al_sbx_live *lv = run->c->live;
        if (!lv || !lv->on_output) {
                size_t before = s->len;
                bool more = stream_read(s, run->c->limits.output_bytes);
                if (run->c->output_fn && s->len > before)
                        run->c->output_fn(run->c->output_ctx, no,
                                          s->buf + before, s->len - before);
                return more;
        }
        unsigned char tmp[65536];
        ssize_t n = read_some(s->fd, tmp, sizeof(tmp));
        if (n > 0)
                act_max(act, lv->on_output(lv->ctx, no, tmp, (size_t)n));
        return n >= 0;
}

/* The run's proxy on the socket made in its namespace: a run with an
 * allowlist and no proxy does not go on. */
static int egress_start(struct run *run) {
        int fd = steal_fd(&run->pg.proxy_fd);
        if (fd < 0)
                return al_error_set(run->err, EIO,
                                    "the proxy socket did not come from the "
                                    "sandbox");
        /* the caps are the run's limits (net_connections, ...) */
        _cleanup_free_ al_net_policy *pol = malloc(sizeof(*pol));
        if (!pol) {
                safe_close(fd);
                return al_error_set(run->err, ENOMEM, "out of memory");
        }
        const al_limits *l = &run->c->limits;
        *pol = *run->c->egress;
        pol->max_connections = (unsigned)l->net_connections;
        /* the lower of the run's limit and a cap of the allowlist's own
         * (a policy's max_bytes), where it has one */
        pol->max_bytes_out =
                pol->max_bytes_out && pol->max_bytes_out < l->net_bytes_out
                        ? pol->max_bytes_out
                        : l->net_bytes_out;
        pol->max_bytes_in =
                pol->max_bytes_in && pol->max_bytes_in < l->net_bytes_in
                        ? pol->max_bytes_in
                        : l->net_bytes_in;
        pol->idle_ms = (unsigned)l->net_idle_ms;
        return al_egress_start(fd, pol, &run->egress, run->err);
}

/* A live run is ready: its workspace and its layers to the caller. */
static void live_ready(struct run *run) {
        const al_sbx_live *lv = run->c->live;
        struct progress *pg = &run->pg;
        int ws = pg->ws_fd >= 0 ? fcntl(pg->ws_fd, F_DUPFD_CLOEXEC, 3) : -1;
        al_protections p = {0};
        fill_protections(&p, run->probe, run->cg != NULL, run->sb.root_mode,
                         run->sb.host_uid, pg->ready_flags);
        if (lv->on_ready)
                lv->on_ready(lv->ctx, ws, run->sb.host_uid, run->sb.host_gid,
                             &p);
        else
                safe_close(ws);
}

/* A live run's usage to the caller. */
static int live_tick(struct run *run) {
        al_cg_stats st = {0};
        if (run->cg)
                al_cgroup_stats(run->cg, &st);
        al_live_usage u = {
                .cpu_usec = st.have_cpu ? st.cpu_usec : 0,
                .memory_peak_bytes =
                        st.have_memory_peak ? st.memory_peak_bytes : 0,
                .oom_kills = st.oom_kills,
                .pids_denied = st.pids_denied,
                .sock_limit_hit = st.sock_limit_hit,
        };
        struct statfs sf;
        if (run->pg.ws_fd >= 0 && fstatfs(run->pg.ws_fd, &sf) == 0)
                u.disk_full = sf.f_bavail == 0 || sf.f_ffree == 0;
        return run->c->live->on_tick(run->c->live->ctx, &u);
}

/* Before a live run's reply: all the output that is in the pipes. */
static int live_drain(struct run *run, int *act) {
        struct stream *ss[] = {&run->out, &run->errs};
        for (int i = 0; i < 2; i++)
                /* bounded: a writer that keeps the pipe full gets its
                 * turn back after 64 reads */
                for (int k = 0; k < 64 && ss[i]->fd >= 0; k++) {
                        if (poll(&(struct pollfd){ss[i]->fd, POLLIN, 0}, 1,
                                 0) <= 0)
                                break;
                        if (!stream_pump(run, ss[i], i + 1, act)) {
                                int *fd = i ? &run->sb.err_r : &run->sb.out_r;
                                ss[i]->fd = *fd = safe_close(*fd);
                        }
                }
        return *act;
}

/* supervise: poll init's pidfd, its messages, stdout, stderr, stdin and
 * the cancel fd until init exits, or kill it at the wall deadline, over
 * the CPU limit (the cgroup, checked every 100 ms), at the output cap or
 * on a cancel. */
static int run_supervise(struct run *run) {
        const al_sbx_config *c = run->c;
        struct sandbox *sb = &run->sb;
        struct stream *out = &run->out, *errs = &run->errs;
        struct progress *pg = &run->pg;

        out->fd = sb->out_r;
        errs->fd = sb->err_r;
        fcntl(out->fd, F_SETFL, O_NONBLOCK);
        fcntl(errs->fd, F_SETFL, O_NONBLOCK);
        fcntl(sb->in_w, F_SETFL, O_NONBLOCK);
        size_t in_off = 0;
        if (c->stdin_len == 0)
                sb->in_w = safe_close(sb->in_w);

        bool exited = false;
        double t_clone = run->mk[T_CLONE];
        double deadline = t_clone + (double)c->limits.wall_ms;
        double next_cpu_check = t_clone + 50;

        const al_sbx_live *lv = c->live;
        double next_tick = t_clone + AL_LIVE_TICK_MS;
        while (!exited) {
                struct pollfd pf[8];
                int n = 0, i_pid = -1, i_msg = -1, i_out = -1, i_err = -1,
                    i_in = -1, i_cancel = -1, i_reply = -1, i_intr = -1;
                pf[i_pid = n++] = (struct pollfd){run->pidfd, POLLIN, 0};
                if (sb->msg_r >= 0)
                        pf[i_msg = n++] = (struct pollfd){sb->msg_r, POLLIN, 0};
                if (out->fd >= 0)
                        pf[i_out = n++] = (struct pollfd){out->fd, POLLIN, 0};
                if (errs->fd >= 0)
                        pf[i_err = n++] = (struct pollfd){errs->fd, POLLIN, 0};
                if (sb->in_w >= 0 && pg->ready)
                        pf[i_in = n++] = (struct pollfd){sb->in_w, POLLOUT, 0};
                if (c->cancel_fd >= 0)
                        pf[i_cancel = n++] =
                                (struct pollfd){c->cancel_fd, POLLIN, 0};
                if (lv && lv->reply_fd >= 0 && pg->ready)
                        pf[i_reply = n++] =
                                (struct pollfd){lv->reply_fd, POLLIN, 0};
                if (lv && lv->interrupt_fd >= 0)
                        pf[i_intr = n++] =
                                (struct pollfd){lv->interrupt_fd, POLLIN, 0};
                double now = al_now_ms();
                double wake = deadline;
                if (run->cg && next_cpu_check < wake)
                        wake = next_cpu_check;
                if (lv && next_tick < wake)
                        wake = next_tick;
                int timeout = wake <= now ? 0 : (int)(wake - now) + 1;
                int pr = poll(pf, (nfds_t)n, timeout);
                if (pr < 0 && errno != EINTR)
                        return al_error_errno(run->err, errno, "poll");
                now = al_now_ms();
                bool kill_now = false;
                bool was_ready = pg->ready;
                if (pr > 0 && i_msg >= 0 && pf[i_msg].revents &&
                    !read_child_msg(sb, pg, now))
                        sb->msg_r = safe_close(sb->msg_r);
                if (!was_ready && pg->ready && lv)
                        live_ready(run);
                if (!was_ready && pg->ready && c->egress &&
                    egress_start(run) < 0)
                        return -1;
                int act = AL_LIVE_GO;
                if (lv && pr > 0 && i_reply >= 0 && pf[i_reply].revents)
                        /* the driver flushed its output before replying:
                         * all of it is in the pipes, and goes first */
                        act = live_drain(run, &act);
                if (pr > 0 && i_out >= 0 && pf[i_out].revents &&
                    !stream_pump(run, out, 1, &act))
                        /* out->fd aliases sb->out_r: closed once, both
                         * forgotten (a second close would hit another
                         * thread's fd in a threaded caller) */
                        out->fd = sb->out_r = safe_close(sb->out_r);
                if (pr > 0 && i_err >= 0 && pf[i_err].revents &&
                    !stream_pump(run, errs, 2, &act))
                        errs->fd = sb->err_r = safe_close(sb->err_r);
                if (lv && pr > 0 && i_reply >= 0 && pf[i_reply].revents) {
                        /* the usage as the reply comes, then the reply */
                        next_tick = now;
                        act_max(&act, live_tick(run));
                        act_max(&act, lv->on_reply(lv->ctx, lv->reply_fd));
                }
                if (lv && pr > 0 && i_intr >= 0 && pf[i_intr].revents) {
                        uint64_t v;
                        (void)!read(lv->interrupt_fd, &v, sizeof(v));
                        act_max(&act, AL_LIVE_INTERRUPT);
                }
                if (lv && now >= next_tick) {
                        act_max(&act, live_tick(run));
                        next_tick = now + AL_LIVE_TICK_MS;
                }
                if (act == AL_LIVE_INTERRUPT)
                        kill(run->pid, SIGUSR1);
                else if (act == AL_LIVE_KILL)
                        run->cancelled = kill_now = true;
                if (out->truncated || errs->truncated) {
                        run->out_kill = kill_now = true;
                }
                if (pr > 0 && i_in >= 0 && pf[i_in].revents)
                        feed_stdin(run, &in_off);
                if (pr > 0 && i_cancel >= 0 && pf[i_cancel].revents)
                        run->cancelled = kill_now = true;
                if (now >= deadline && !exited)
                        run->wall_kill = kill_now = true;
                if (run->cg && now >= next_cpu_check) {
                        al_cg_stats st = {0};
                        if (al_cgroup_stats(run->cg, &st) == 0 && st.have_cpu &&
                            st.cpu_usec / 1000 > c->limits.cpu_ms)
                                run->cpu_kill = kill_now = true;
                        next_cpu_check = now + 100;
                }
                if (pr > 0 && pf[i_pid].revents)
                        exited = true;
                if (kill_now && !exited) {
                        kill(run->pid, SIGKILL);
                        if (run->cg)
                                al_cgroup_kill(run->cg);
                }
                if (kill_now)
                        break;
        }
        return 0;
}

/* collect: reap init (by then the kernel has killed and reaped every
 * other process of the pid namespace), drain the pipes (all writers are
 * gone now), the child's last messages and the payload's status. */
static void run_collect(struct run *run) {
        const al_sbx_config *c = run->c;
        struct sandbox *sb = &run->sb;
        struct stream *out = &run->out, *errs = &run->errs;

        while (wait4(run->pid, &run->wst, 0, &run->ru) < 0 && errno == EINTR)
                ;
        run->pid = -1;
        double t_exit = run->mk[T_EXIT] = al_now_ms();

        while (out->fd >= 0 && stream_read(out, c->limits.output_bytes))
                if (poll(&(struct pollfd){out->fd, POLLIN, 0}, 1, 0) <= 0)
                        break;
        while (errs->fd >= 0 && stream_read(errs, c->limits.output_bytes))
                if (poll(&(struct pollfd){errs->fd, POLLIN, 0}, 1, 0) <= 0)
                        break;
        if (out->truncated || errs->truncated)
                run->out_kill = true;
        if (sb->msg_r >= 0) {
                fcntl(sb->msg_r, F_SETFL, O_NONBLOCK);
                while (read_child_msg(sb, &run->pg, t_exit))
                        ;
        }
        /* the proxy: every connection closed, the report */
        if (run->egress) {
                json_t *rep = NULL;
                char hits[128] = "";
                al_egress_stop(run->egress, &rep, hits, sizeof(hits));
                run->egress = NULL;
                run->res->network_json =
                        rep ? json_dumps(rep, JSON_COMPACT) : NULL;
                json_decref(rep);
                for (char *sv = NULL, *t = strtok_r(hits, ",", &sv); t;
                     t = strtok_r(NULL, ",", &sv))
                        hit(run->res, t);
        }
        fcntl(sb->status_r, F_SETFL, O_NONBLOCK);
        run->have_pst = read(sb->status_r, &run->pst, sizeof(run->pst)) ==
                        sizeof(run->pst);
}

/* account: usage (the cgroup's, else init's rusage), output, the
 * protections applied, the payload's exit, the limits that were hit
 * without a kill. */
static void run_account(struct run *run) {
        al_result *res = run->res;
        struct progress *pg = &run->pg;
        const struct rusage *ru = &run->ru;
        al_cg_stats *st = &run->st;

        if (run->cg)
                al_cgroup_stats(run->cg, st);
        res->wall_ms =
                (uint64_t)(run->mk[T_EXIT] -
                           (pg->t_ready ? pg->t_ready : run->mk[T_CLONE]));
        uint64_t ru_cpu =
                (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
                (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
        res->cpu_ms = st->have_cpu ? st->cpu_usec / 1000 : ru_cpu;
        res->memory_peak_bytes = st->have_memory_peak
                                         ? st->memory_peak_bytes
                                         : (uint64_t)ru->ru_maxrss * 1024;
        res->stdout_buf = run->out.buf;
        res->stdout_len = run->out.len;
        res->stdout_truncated = run->out.truncated;
        res->stderr_buf = run->errs.buf;
        res->stderr_len = run->errs.len;
        res->stderr_truncated = run->errs.truncated;
        run->out.buf = run->errs.buf = NULL;
        fill_protections(&res->protections, run->probe, run->cg != NULL,
                         run->sb.root_mode, run->sb.host_uid, pg->ready_flags);
        if (!run->cg && run->cg_fail[0])
                snprintf(res->protections.note, sizeof(res->protections.note),
                         "no cgroup limits (rlimits only): %s", run->cg_fail);
        if (!(pg->ready_flags & READY_TIMENS))
                res->protections.time_ns = false;

        if (run->have_pst) {
                if (WIFEXITED(run->pst))
                        res->exit_code = WEXITSTATUS(run->pst);
                else if (WIFSIGNALED(run->pst))
                        res->signal = WTERMSIG(run->pst);
        }
        if (st->pids_denied > 0)
                hit(res, "pids");
        /* Socket buffers at their cgroup limit: writes waited, nothing was
         * killed, like a full disk. */
        if (st->sock_limit_hit)
                hit(res, "memory");
        if (pg->ws_fd >= 0) {
                struct statfs sf;
                /* out of blocks or out of inodes */
                if (fstatfs(pg->ws_fd, &sf) == 0 &&
                    (sf.f_bavail == 0 || sf.f_ffree == 0))
                        hit(res, "disk");
        }
}

/* verdict: the run's status and reason, the first that applies of setup
 * failure, cancel, the limits in the order they are checked, and how the
 * payload ended. One chain, kept whole: its order is the precedence. */
static void run_verdict(struct run *run) {
        const al_sbx_config *c = run->c;
        al_result *res = run->res;
        const struct progress *pg = &run->pg;
        bool cpu_sig = res->signal == SIGXCPU ||
                       (res->signal == SIGKILL &&
                        res->cpu_ms + 50 >= c->limits.cpu_ms);

        if (pg->setup_failed && !pg->ready) {
                res->status = AL_STATUS_INTERNAL_ERROR;
                snprintf(res->reason, sizeof(res->reason),
                         "sandbox setup failed: %s", pg->child_err.msg);
        } else if (pg->setup_failed) {
                /* the payload could not exec */
                res->status = AL_STATUS_ERROR;
                snprintf(res->reason, sizeof(res->reason), "%s",
                         pg->child_err.msg);
                res->exit_code = 127;
        } else if (run->cancelled) {
                res->status = AL_STATUS_KILLED;
                snprintf(res->reason, sizeof(res->reason),
                         "cancelled: the supervisor was asked to stop");
        } else if (run->wall_kill) {
                res->status = AL_STATUS_TIMEOUT;
                hit(res, "wall");
                snprintf(res->reason, sizeof(res->reason),
                         "wall time limit of %llu ms exceeded",
                         (unsigned long long)c->limits.wall_ms);
        } else if (run->out_kill) {
                res->status = AL_STATUS_OUTPUT_LIMIT;
                hit(res, "output");
                snprintf(res->reason, sizeof(res->reason),
                         "output limit of %llu bytes per stream exceeded",
                         (unsigned long long)c->limits.output_bytes);
        } else if (run->st.oom_kills > 0) {
                res->status = AL_STATUS_MEMORY_LIMIT;
                hit(res, "memory");
                snprintf(res->reason, sizeof(res->reason),
                         "memory limit of %llu MiB exceeded",
                         (unsigned long long)c->limits.memory_mb);
        } else if (run->cpu_kill || cpu_sig) {
                res->status = AL_STATUS_TIMEOUT;
                hit(res, "cpu");
                snprintf(res->reason, sizeof(res->reason),
                         "CPU time limit of %llu ms exceeded",
                         (unsigned long long)c->limits.cpu_ms);
        } else if (!run->have_pst) {
                res->status = AL_STATUS_INTERNAL_ERROR;
                snprintf(res->reason, sizeof(res->reason),
                         "sandbox init ended without a payload status "
                         "(wait status 0x%x)",
                         (unsigned)run->wst);
        } else if (res->signal) {
                res->status = AL_STATUS_KILLED;
                snprintf(res->reason, sizeof(res->reason),
                         "killed by signal %d (%s)", res->signal,
                         strsignal(res->signal));
        } else if (res->exit_code == 0) {
                res->status = AL_STATUS_OK;
        } else {
                res->status = AL_STATUS_ERROR;
                snprintf(res->reason, sizeof(res->reason),
                         "exited with code %d", res->exit_code);
        }
        if (res->status == AL_STATUS_TIMEOUT ||
            res->status == AL_STATUS_MEMORY_LIMIT ||
            res->status == AL_STATUS_OUTPUT_LIMIT ||
            res->status == AL_STATUS_KILLED) {
                if (!run->have_pst || !WIFEXITED(run->pst))
                        res->exit_code = -1;
                if (!res->signal && (run->wall_kill || run->out_kill ||
                                     run->cancelled || run->cpu_kill))
                        res->signal = SIGKILL;
        }
}

/* teardown: what is left (the empty cgroup, the namespaces and the
 * workspace tmpfs they hold) is the caller's to free once the result is
 * out: al_sbx_leftover_free. The rest is closed here. */
static void run_teardown(struct run *run, int *ret_workspace_fd,
                         al_sbx_leftover **ret_leftover) {
        run->mk[T_TD0] = al_now_ms();
        al_sbx_leftover *lo = calloc(1, sizeof(*lo));
        if (lo) {
                lo->cg = run->cg;
                lo->mnt_fd = steal_fd(&run->pg.mnt_fd);
                lo->net_fd = steal_fd(&run->pg.net_fd);
                lo->slot_fd = steal_fd(&run->slot_fd);
                run->cg = NULL;
        } else {
                al_cgroup_kill(run->cg);
                run->cg = al_cgroup_destroy(run->cg);
        }
        safe_close(run->pg.mnt_fd);
        safe_close(run->pg.net_fd);
        safe_close(run->pg.proxy_fd);
        sb_close_all(&run->sb);
        free(run->out.buf);
        free(run->errs.buf);
        run->mk[T_END] = al_now_ms();
        if (run->c->timing) {
                run->res->has_timing = true;
                fill_timing(&run->res->timing, run->sb.clock, run->mk);
        }
        munmap(run->sb.clock, sizeof(*run->sb.clock));
        *ret_workspace_fd = steal_fd(&run->pg.ws_fd);
        *ret_leftover = lo;
        safe_close(run->pidfd);
        safe_close(run->slot_fd);
}

/* A run that did not get to its end: kill and reap init if there is one,
 * remove the cgroup, close and free everything; returns r. */
static int run_fail(struct run *run, int r) {
        al_egress_stop(run->egress, NULL, NULL, 0);
        run->egress = NULL;
        safe_close(run->pg.proxy_fd);
        if (run->pid > 0) {
                kill(run->pid, SIGKILL);
                while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                run->pid = -1;
        }
        if (run->cg) {
                al_cgroup_kill(run->cg);
                al_cgroup_destroy(run->cg);
        }
        sb_close_all(&run->sb);
        safe_close(run->pg.ws_fd);
        safe_close(run->pg.mnt_fd);
        safe_close(run->pg.net_fd);
        free(run->out.buf);
        free(run->errs.buf);
        if (run->sb.clock != MAP_FAILED)
                munmap(run->sb.clock, sizeof(*run->sb.clock));
        safe_close(run->pidfd);
        safe_close(run->slot_fd);
        return r;
}

int al_sandbox_run(const al_sbx_config *c, al_result *res,
                   int *ret_workspace_fd, al_sbx_leftover **ret_leftover,
                   al_error *err) {
        struct run run = {
                .c = c,
                .res = res,
                .err = err,
                .sb = {.c = c, .clock = MAP_FAILED},
                .slot_fd = -1,
                .pid = -1,
                .pidfd = -1,
                .out = {.fd = -1},
                .errs = {.fd = -1},
                .pg = {.ws_fd = -1, .mnt_fd = -1, .net_fd = -1, .proxy_fd = -1},
        };
        int r;

        sb_init_fds(&run.sb);
        run.mk[T0] = al_now_ms();
        *ret_workspace_fd = -1;
        *ret_leftover = NULL;
        if ((r = run_prepare(&run)) < 0)
                return run_fail(&run, r);
        run_cgroup(&run);
        if ((r = run_clone(&run)) < 0 || (r = run_idmap(&run)) < 0 ||
            (r = run_gate(&run)) < 0 || (r = run_supervise(&run)) < 0)
                return run_fail(&run, r);
        run_collect(&run);
        run_account(&run);
        run_verdict(&run);
        run_teardown(&run, ret_workspace_fd, ret_leftover);
        return 0;
}
