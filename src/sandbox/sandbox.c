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
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "error.h"
#include "macro.h"
#include "seccomp-filter.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Host uids/gids for concurrent runs as root: one unused id per slot, so
 * two sandboxes never share an identity. Chosen far above the ranges that
 * distributions and /etc/subuid allocate. */
#define AL_SLOT_ID_BASE 1660000000u
#define AL_SLOTS 256

/* fd numbers inside the child after it has tidied its table */
enum {
        CFD_SYNC = 3,   /* read: "go" from the supervisor */
        CFD_MSG = 4,    /* write: ready / error messages */
        CFD_SOCK = 5,   /* send the workspace dirfd */
        CFD_STATUS = 6, /* write: payload wait status */
        CFD_FIRST_FREE = 7,
};

enum { MSG_READY = 1, MSG_ERROR = 2 };
/* The two "go" bytes on the sync pipe: ids mapped; then cgroup joined,
 * or no cgroup after all (its creation failed: rlimits take over). */
enum { SYNC_IDMAP = 'm', SYNC_CGROUP = 'c', SYNC_NO_CGROUP = 'n' };

/* When the sandbox side reached each step, on the supervisor's
 * CLOCK_MONOTONIC (marks taken inside the run's time namespace are
 * shifted back by its offset: ck_now). A shared
 * anonymous page, written by init and by the payload before its execve
 * (which drops the mapping); the supervisor reads it after the run and
 * treats it as numbers for the timing report only. */
struct sbx_clock {
        double start;   /* child running after clone */
        double ns;      /* net, mount, ipc, uts namespaces made */
        double ids;     /* ids mapped, became the sandbox user */
        double mounts;  /* new root built and pivoted into */
        double net;     /* network namespace joined */
        double ready;   /* inputs written, workspace passed */
        double payload; /* locking down: rlimits, caps, filter */
        double filter0; /* seccomp filter: loading */
        double filter1; /* seccomp filter: loaded */
        double exec;    /* payload about to execve */
        double reaped;  /* init reaped the payload */
};
enum { READY_TIMENS = 1u << 0, READY_LO = 1u << 1 };

/* One message from child to supervisor; < PIPE_BUF so writes are atomic. */
struct child_msg {
        int32_t type;
        int32_t code;
        uint32_t flags;
        char msg[AL_ERROR_MSG_MAX];
};

struct sandbox {
        const al_sbx_config *c;
        bool root_mode;
        uid_t host_uid;
        gid_t host_gid;
        const al_bpf *bpf;
        struct sbx_clock *clock;
        bool cg_pids;   /* a pids cgroup bounds the run */
        bool cg_memory; /* a memory cgroup bounds the run */
        /* parent-side ends */
        int sync_w, msg_r, sock_p, status_r, in_w, out_r, err_r;
        /* child-side ends */
        int sync_r, msg_w, sock_c, status_w, in_r, out_w, errp_w;
};

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

/* ------------------------------------------------------------ the child */

/* Report an error to the supervisor and exit. Async-signal-safe enough:
 * no allocation, only snprintf into a stack buffer and write. */
static _Noreturn void child_fail(const al_error *e) {
        struct child_msg m = {.type = MSG_ERROR, .code = e->code};
        memcpy(m.msg, e->msg, sizeof(m.msg));
        m.msg[sizeof(m.msg) - 1] = '\0';
        (void)!write(CFD_MSG, &m, sizeof(m));
        _exit(127);
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

/* mkdir -p for a path we build ourselves (no symlinks in it: the new root
 * is a fresh tmpfs). Tries the whole path first: most parents exist. */
static int mkdir_p(const char *path, mode_t mode) {
        if (mkdir(path, mode) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        char buf[PATH_MAX];
        size_t n = strlen(path);
        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
                return -ENOENT;
        *slash = '\0';
        int r = mkdir_p(buf, 0755);
        if (r < 0)
                return r;
        return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

static int mkdir_parent(const char *path) {
        char buf[PATH_MAX];
        size_t n = strlen(path);
        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
                return 0;
        *slash = '\0';
        return mkdir_p(buf, 0755);
}

/* Mount flags a read-only bind must keep (locked in a user namespace). */
static unsigned long kept_flags(const char *path) {
        struct statvfs sv;
        unsigned long f = 0;
        if (statvfs(path, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
                f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                f |= MS_RELATIME;
        return f;
}

/* The mounts made read-only together, for kernels without mount_setattr
 * (< 5.12), which remount them one by one: NUL-separated paths, appended
 * (a few hundred bytes: the child touches one page, not one per path).
 * Static: the child does not allocate. */
static char ro_mounts[64 * 1024];
static size_t ro_mounts_len;

static void note_ro_mount(const char *dst) {
        size_t n = strlen(dst) + 1;
        if (ro_mounts_len + n <= sizeof(ro_mounts)) {
                memcpy(ro_mounts + ro_mounts_len, dst, n);
                ro_mounts_len += n;
        }
}

/* Make top and every mount below it read-only and nosuid (and nodev
 * unless keep_dev), in one call. */
static int make_readonly(const char *top, bool keep_dev) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                            (keep_dev ? 0 : MOUNT_ATTR_NODEV),
        };
        if (syscall(SYS_mount_setattr, AT_FDCWD, top, AT_RECURSIVE, &attr,
                    sizeof(attr)) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        /* Kernels before 5.12: remount each mount noted below top, then
         * top itself. */
        size_t k = strlen(top);
        for (size_t off = 0; off <= ro_mounts_len;) {
                const char *m = off < ro_mounts_len ? ro_mounts + off : top;
                off += off < ro_mounts_len ? strlen(m) + 1 : 1;
                if (m != top &&
                    (strncmp(m, top, k) != 0 || (m[k] && m[k] != '/')))
                        continue;
                unsigned long fl = MS_BIND | MS_REMOUNT | MS_RDONLY |
                                   MS_NOSUID | (keep_dev ? 0 : MS_NODEV) |
                                   kept_flags(m);
                if (mount(NULL, m, NULL, fl, NULL) < 0)
                        return -errno;
        }
        return 0;
}

/* Bind host path src at root+src (made read-only later, with its
 * neighbours). Missing paths are skipped; a symlink is recreated as a
 * symlink (merged-/usr layouts). */
static int bind_host(const char *root, const char *src, al_error *e) {
        char dst[PATH_MAX];
        struct stat st;
        snprintf(dst, sizeof(dst), "%s%s", root, src);
        if (lstat(src, &st) < 0)
                return errno == ENOENT ? 0
                                       : al_error_errno(e, errno, "lstat %s",
                                                        src);
        int r;
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return al_error_errno(e, errno, "readlink %s", src);
                target[n] = '\0';
                if ((r = mkdir_parent(dst)) < 0)
                        return al_error_errno(e, -r, "mkdir for %s", dst);
                if (symlink(target, dst) < 0 && errno != EEXIST)
                        return al_error_errno(e, errno, "symlink %s", dst);
                return 0;
        }
        if (S_ISDIR(st.st_mode)) {
                if ((r = mkdir_p(dst, 0755)) < 0)
                        return al_error_errno(e, -r, "mkdir %s", dst);
        } else {
                if ((r = mkdir_parent(dst)) < 0)
                        return al_error_errno(e, -r, "mkdir for %s", dst);
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
                if (fd < 0)
                        return al_error_errno(e, errno, "create %s", dst);
                close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return al_error_errno(e, errno, "bind %s", src);
        note_ro_mount(dst);
        return 0;
}

static int write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
                                    O_NOFOLLOW,
                      mode);
        if (fd < 0)
                return -errno;
        size_t len = strlen(text);
        ssize_t n = write(fd, text, len);
        int r = n == (ssize_t)len ? 0 : (n < 0 ? -errno : -ENOSPC);
        close(fd);
        return r;
}

static bool profile_binds(char *const *ro_paths, const char *path) {
        for (char *const *rp = ro_paths; rp && *rp; rp++)
                if (strcmp(*rp, path) == 0)
                        return true;
        return false;
}

/* /proc files covered by an empty file (setup_root, step 7). */
static const char *const proc_masked[] = {
        "cmdline",   /* the host's boot arguments */
        "config.gz", /* the kernel's build configuration */
        "kallsyms",  /* kernel symbols and modules: a map for kernel */
        "modules",   /* exploits (addresses hidden, names not) */
};

/* Bind the file src over dst, read-only. -ENOENT if dst does not exist
 * (config.gz and modules depend on the kernel's build). */
static int cover_file(const char *src, const char *dst) {
        struct stat st;
        if (lstat(dst, &st) < 0)
                return -errno;
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return -errno;
        note_ro_mount(dst);
        return make_readonly(dst, false);
}

/* A random (version 4) UUID and a newline, as the kernel prints boot_id. */
static int new_boot_id(char *buf, size_t size) {
        unsigned char b[16];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        size_t n = 0;
        for (size_t i = 0; i < sizeof(b) && n + 4 < size; i++)
                n += (size_t)snprintf(buf + n, size - n, "%s%02x",
                                      i == 4 || i == 6 || i == 8 || i == 10
                                              ? "-"
                                              : "",
                                      b[i]);
        snprintf(buf + n, size - n, "\n");
        return 0;
}

/* Build the new root under `root` (a fresh tmpfs) and pivot into it. The
 * order keeps mount calls few: everything the root tmpfs itself holds is
 * made first, then the host binds, then one call makes the whole tree
 * read-only; /proc, /dev and the writable space are mounted on top. */
static int setup_root(struct sandbox *sb, al_error *e) {
        const al_limits *l = &sb->c->limits;
        const char *root = "/tmp";
        /* Where the writable tmpfs is prepared: a directory of the old
         * root, covered in this mount namespace only; it goes with the old
         * root (one detach: each umount waits for an RCU grace period). */
        const char *stage = "/sys";
        char p[PATH_MAX], opts[128];
        int r;

        umask(0);
        /* Nothing we mount may leak back to the host, and nothing the
         * host mounts later may appear in here. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return al_error_errno(e, errno, "make / private");
        if (mount("airlock-root", root, "tmpfs", MS_NOSUID | MS_NODEV,
                  "size=4m,nr_inodes=4096,mode=0755") < 0)
                return al_error_errno(e, errno, "mount root tmpfs");

        /* 1. What the root tmpfs holds: mount points and a minimal
         * identity, so tools that look the user up work. */
        static const char *const dirs[] = {"proc", "dev", AL_WORKSPACE + 1,
                                           "tmp", "etc"};
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return al_error_errno(e, errno, "mkdir %s", p);
        }
        static const char *const etc[][2] = {
                {"passwd", "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
                           "sandbox:x:1000:1000:sandbox:/workspace:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:"
                           "/usr/sbin/nologin\n"},
                {"group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"},
                {"hostname", "airlock\n"},
                {"hosts", "127.0.0.1 localhost airlock\n::1 localhost\n"},
                {"nsswitch.conf", "passwd: files\ngroup: files\n"
                                  "hosts: files\n"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
                char host[64];
                snprintf(host, sizeof(host), "/etc/%s", etc[i][0]);
                if (profile_binds(sb->c->ro_paths, host))
                        continue; /* bound from the host by the profile */
                snprintf(p, sizeof(p), "%s/etc/%s", root, etc[i][0]);
                if ((r = write_text(p, etc[i][1], 0644)) < 0)
                        return al_error_errno(e, -r, "write %s", p);
        }

        /* 2. The host paths the profile needs; 3. all of it read-only,
         * nosuid, nodev in one call. */
        for (char *const *rp = sb->c->ro_paths; rp && *rp; rp++)
                if ((r = bind_host(root, *rp, e)) < 0)
                        return r;
        if ((r = make_readonly(root, false)) < 0)
                return al_error_errno(e, -r, "read-only root");

        /* 4. /proc: a new instance for the new pid namespace; /proc/sys
         * and friends read-only on top. */
        snprintf(p, sizeof(p), "%s/proc", root);
        if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) < 0)
                return al_error_errno(e, errno, "mount /proc");
        static const char *const proc_ro[] = {"sys", "sysrq-trigger", "irq",
                                              "bus", "fs"};
        for (size_t i = 0; i < ARRAY_SIZE(proc_ro); i++) {
                snprintf(p, sizeof(p), "%s/proc/%s", root, proc_ro[i]);
                if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return al_error_errno(e, errno, "protect %s", p);
                }
                note_ro_mount(p);
                if ((r = make_readonly(p, false)) < 0)
                        return al_error_errno(e, -r, "protect %s", p);
        }

        /* 5. /dev: a small tmpfs with the harmless devices bound from the
         * host (a user namespace cannot mknod), read-only as a whole (a
         * read-only device node can still be written to; the node itself
         * cannot be changed). */
        snprintf(p, sizeof(p), "%s/dev", root);
        if (mount("airlock-dev", p, "tmpfs", MS_NOSUID | MS_NOEXEC,
                  "size=64k,nr_inodes=64,mode=0755") < 0)
                return al_error_errno(e, errno, "mount /dev");
        static const char *const devs[] = {"/dev/null", "/dev/zero",
                                            "/dev/full", "/dev/random",
                                            "/dev/urandom"};
        for (size_t i = 0; i < ARRAY_SIZE(devs); i++)
                if ((r = bind_host(root, devs[i], e)) < 0)
                        return r;
        static const char *const links[][2] = {
                {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
                {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
                snprintf(p, sizeof(p), "%s/dev/%s", root, links[i][1]);
                if (symlink(links[i][0], p) < 0)
                        return al_error_errno(e, errno, "symlink %s", p);
        }
        snprintf(p, sizeof(p), "%s/dev/shm", root);
        if (mkdir(p, 0755) < 0)
                return al_error_errno(e, errno, "mkdir %s", p);
        snprintf(p, sizeof(p), "%s/dev", root);
        if ((r = make_readonly(p, true)) < 0)
                return al_error_errno(e, -r, "read-only /dev");

        /* 6. One tmpfs, capped at disk_mb, holds the workspace, /tmp and
         * /dev/shm, so the cap bounds all writable space together. */
        snprintf(opts, sizeof(opts), "size=%llum,nr_inodes=%llu,mode=0755",
                 (unsigned long long)l->disk_mb,
                 (unsigned long long)(l->disk_mb * 256 < 1024
                                              ? 1024
                                              : l->disk_mb * 256));
        if (mount("airlock-rw", stage, "tmpfs", MS_NOSUID | MS_NODEV, opts) <
            0)
                return al_error_errno(e, errno, "mount workspace tmpfs");
        static const char *const rw[][2] = {
                {"work", AL_WORKSPACE}, {"tmp", "/tmp"}, {"shm", "/dev/shm"}};
        for (size_t i = 0; i < ARRAY_SIZE(rw); i++) {
                char src[PATH_MAX], dst[PATH_MAX];
                snprintf(src, sizeof(src), "%s/%s", stage, rw[i][0]);
                snprintf(dst, sizeof(dst), "%s%s", root, rw[i][1]);
                if (mkdir(src, i == 0 ? 0755 : 01777) < 0 ||
                    mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return al_error_errno(e, errno, "bind %s", rw[i][1]);
        }

        /* 7. /proc files that describe the host and that no runtime
         * reads are covered by an empty read-only file, and the host's
         * boot_id by one of the run's own: a run is a boot of its own
         * (its uptime starts at 0, enter_timens). The files sit in the
         * root of the writable tmpfs, which the code never sees. */
        char src[PATH_MAX];
        snprintf(src, sizeof(src), "%s/empty", stage);
        if ((r = write_text(src, "", 0444)) < 0)
                return al_error_errno(e, -r, "write %s", src);
        for (size_t i = 0; i < ARRAY_SIZE(proc_masked); i++) {
                snprintf(p, sizeof(p), "%s/proc/%s", root, proc_masked[i]);
                if ((r = cover_file(src, p)) < 0 && r != -ENOENT)
                        return al_error_errno(e, -r, "mask %s", p);
        }
        char uuid[40];
        if ((r = new_boot_id(uuid, sizeof(uuid))) < 0)
                return al_error_errno(e, -r, "boot_id");
        snprintf(src, sizeof(src), "%s/boot_id", stage);
        snprintf(p, sizeof(p), "%s/proc/sys/kernel/random/boot_id", root);
        if ((r = write_text(src, uuid, 0444)) < 0 ||
            (r = cover_file(src, p)) < 0)
                return al_error_errno(e, -r, "cover %s", p);

        /* 8. pivot_root(".", ".") stacks the old root under the new one;
         * detaching it (and the staging mount with it) leaves nothing of
         * the host reachable. */
        if (chdir(root) < 0)
                return al_error_errno(e, errno, "chdir new root");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return al_error_errno(e, errno, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                return al_error_errno(e, errno, "detach old root");
        if (chdir("/") < 0)
                return al_error_errno(e, errno, "chdir /");
        umask(022);
        return 0;
}

/* Write the input files into the workspace as the sandbox user. */
static int write_inputs(struct sandbox *sb, al_error *e) {
        for (size_t i = 0; i < sb->c->n_files; i++) {
                const al_sbx_file *f = &sb->c->files[i];
                char p[PATH_MAX];
                snprintf(p, sizeof(p), AL_WORKSPACE "/%s", f->name);
                int r = mkdir_parent(p);
                if (r < 0)
                        return al_error_errno(e, -r, "input %s", f->name);
                int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
                                         O_NOFOLLOW,
                              f->executable ? 0755 : 0644);
                if (fd < 0)
                        return al_error_errno(e, errno, "input %s", f->name);
                size_t off = 0;
                while (off < f->len) {
                        ssize_t n = write(fd, f->data + off, f->len - off);
                        if (n <= 0) {
                                int er = n < 0 ? errno : ENOSPC;
                                close(fd);
                                return al_error_errno(
                                        e, er,
                                        "input %s does not fit the disk "
                                        "limit",
                                        f->name);
                        }
                        off += (size_t)n;
                }
                close(fd);
        }
        return 0;
}

/* Pass fds over a unix socket (SCM_RIGHTS): in flight, they keep what
 * they refer to alive even if the sender dies. */
#define AL_PASS_FDS 3
static int send_fds(int sock, const int *fds, size_t n) {
        char dummy = 'W';
        struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * AL_PASS_FDS)];
        } u;
        if (n > AL_PASS_FDS)
                return -EINVAL;
        memset(&u, 0, sizeof(u));
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Receive exactly n fds into fds[]; -errno (and nothing kept) else. */
static int recv_fds(int sock, int *fds, size_t n) {
        char dummy;
        struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * AL_PASS_FDS)];
        } u;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        if (n > AL_PASS_FDS)
                return -EINVAL;
        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) != 1)
                return -errno;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (!cm || cm->cmsg_level != SOL_SOCKET ||
            cm->cmsg_type != SCM_RIGHTS)
                return -EBADMSG;
        size_t got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int tmp[AL_PASS_FDS];
        memcpy(tmp, CMSG_DATA(cm), sizeof(int) * (got < n ? got : n));
        if (got != n || (mh.msg_flags & MSG_CTRUNC)) {
                for (size_t i = 0; i < got && i < n; i++)
                        close(tmp[i]);
                return -EBADMSG;
        }
        memcpy(fds, tmp, sizeof(int) * n);
        return 0;
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
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
                    errno != EINVAL)
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
                {RLIMIT_DATA, cg_memory ? RLIM_INFINITY : (rlim_t)l->memory_mb << 20,
                 cg_memory ? RLIM_INFINITY : (rlim_t)l->memory_mb << 20, "data"},
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
        int want[] = {sb->in_r,  sb->out_w,   sb->errp_w,   sb->sync_r,
                      sb->msg_w, sb->sock_c, sb->status_w};
        int hi[ARRAY_SIZE(want)];
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                if ((hi[i] = fcntl(want[i], F_DUPFD_CLOEXEC, 100)) < 0)
                        return -errno;
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                if (dup3(hi[i], (int)i, i <= 2 ? 0 : O_CLOEXEC) < 0)
                        return -errno;
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
        fd = ok ? open("/proc/self/ns/time_for_children",
                       O_RDONLY | O_CLOEXEC)
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
                sb->clock->exec = ck_now();
                execve(sb->c->argv[0], sb->c->argv, sb->c->envp);
                al_error_errno(&e, errno, "cannot execute %s",
                               sb->c->argv[0]);
        }
        child_fail(&e);
}

/* Lock the calling process down for good, in the order that works:
 * rlimits -> capabilities -> no_new_privs -> seccomp. init does it once and
 * the payload inherits all of it (one filter, loaded once). */
static int lock_down(struct sandbox *sb, al_error *e) {
        int r;
        prctl(PR_SET_DUMPABLE, 0); /* /proc/1/mem is not the code's */
        if ((r = set_rlimits(&sb->c->limits, sb->cg_pids, sb->cg_memory,
                             e)) < 0 ||
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
static int net_fd = -1, net_errno;
static bool net_lo_up;

static int make_netns(void *arg) {
        (void)arg;
        if (unshare(CLONE_NEWNET) < 0) {
                net_errno = errno;
                return 1;
        }
        net_lo_up = loopback_up();
        net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (net_fd < 0) {
                net_errno = errno;
                return 1;
        }
        return 0;
}

static _Noreturn void child_main(struct sandbox *sb) {
        struct sbx_clock *ck = sb->clock;
        al_error e = {0};
        char go;
        int r;

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
                                 CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
        if (net_helper < 0)
                child_fail((al_error_errno(&e, errno, "clone net helper"),
                            &e));
        if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
                child_fail((al_error_errno(&e, errno, "namespaces"), &e));
        ck->ns = al_now_ms();
        if (read(CFD_SYNC, &go, 1) != 1 || go != SYNC_IDMAP)
                _exit(126); /* supervisor gone or gave up */

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
        ck->ids = al_now_ms();
        if ((r = setup_root(sb, &e)) < 0)
                child_fail(&e);
        if (sethostname("airlock", 7) < 0 || setdomainname("airlock", 7) < 0)
                child_fail((al_error_errno(&e, errno, "sethostname"), &e));
        ck->mounts = al_now_ms();
        int hst = 0;
        while (waitpid(net_helper, &hst, __WALL) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(hst) || WEXITSTATUS(hst) != 0 || net_fd < 0 ||
            setns(net_fd, CLONE_NEWNET) < 0)
                child_fail((al_error_errno(&e, net_errno ? net_errno : errno,
                                           "network namespace"),
                            &e));
        uint32_t flags = net_lo_up ? READY_LO : 0;
        ck->net = al_now_ms();

        /* Second go: the cgroup holds us now, so what is written from here
         * on (the input files) is charged to the run, and the cgroup
         * namespace can take the run's group as its root. */
        if (read(CFD_SYNC, &go, 1) != 1 ||
            (go != SYNC_CGROUP && go != SYNC_NO_CGROUP))
                _exit(126);
        if (go == SYNC_NO_CGROUP)
                sb->cg_pids = sb->cg_memory = false;
        close(CFD_SYNC);
        if (unshare(CLONE_NEWCGROUP) < 0)
                child_fail((al_error_errno(&e, errno, "cgroup namespace"),
                            &e));
        if ((r = write_inputs(sb, &e)) < 0)
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
            (r = send_fds(CFD_SOCK, keep, AL_PASS_FDS)) < 0)
                child_fail((al_error_errno(&e, keep[0] < 0 || keep[1] < 0
                                                   ? errno
                                                   : -r,
                                           "pass workspace"),
                            &e));
        for (size_t i = 0; i < AL_PASS_FDS; i++)
                close(keep[i]);
        close(CFD_SOCK);
        /* Uptime and boot time of the run's own (enter_timens); only
         * said when all of it worked. */
        if (enter_timens())
                flags |= READY_TIMENS;

        ck->ready = ck_now();
        struct child_msg m = {.type = MSG_READY, .flags = flags};
        if (write(CFD_MSG, &m, sizeof(m)) != sizeof(m))
                _exit(126);

        ck->payload = ck_now();
        if (lock_down(sb, &e) < 0)
                child_fail(&e);
        /* CLONE_VFORK: init sleeps until the payload has exec'd (or
         * failed, having reported why on CFD_MSG). */
        pid_t payload = clone(payload_main,
                              payload_stack + sizeof(payload_stack),
                              CLONE_VM | CLONE_VFORK | SIGCHLD, sb);
        if (payload < 0)
                child_fail((al_error_errno(&e, errno, "start payload"), &e));

        /* init: keep only the status pipe, reap. */
        close(0);
        close(1);
        close(2);
        close(CFD_MSG);
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

/* ------------------------------------------------------- the supervisor */

static void sb_close_all(struct sandbox *sb) {
        int *fds[] = {&sb->sync_w, &sb->msg_r,   &sb->sock_p, &sb->status_r,
                      &sb->in_w,   &sb->out_r,   &sb->err_r,  &sb->sync_r,
                      &sb->msg_w,  &sb->sock_c,  &sb->status_w,
                      &sb->in_r,   &sb->out_w,   &sb->errp_w};
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

/* Read what is available; keep at most `limit` bytes. Returns false on
 * EOF or error (stream closed). */
static bool stream_read(struct stream *s, uint64_t limit) {
        unsigned char tmp[65536];
        ssize_t n = read(s->fd, tmp, sizeof(tmp));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
        if (n <= 0)
                return false;
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
        if (al_cgroup_probe("/sys/fs/cgroup", "/proc/self/cgroup",
                            &probe_cache, &e) < 0) {
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
        p->cgroup = !have_cg                 ? "none"
                    : cg->kind == AL_CG_V2   ? "v2"
                                             : "v1";
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
                if (recv_fds(sb->sock_p, fds, AL_PASS_FDS) == 0) {
                        pg->ws_fd = fds[0];
                        pg->mnt_fd = fds[1];
                        pg->net_fd = fds[2];
                }
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
        pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)ns | SIGCHLD,
                                   NULL, NULL, NULL, 0);
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
enum { T0, T_PREP, T_CG0, T_CG1, T_CLONE, T_MAPS, T_ATT0, T_ATT1, T_GATE0,
       T_GATE1, T_EXIT, T_TD0, T_END, T_N };

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

int al_sandbox_run(const al_sbx_config *c, al_result *res,
                   int *ret_workspace_fd, al_sbx_leftover **ret_leftover,
                   al_error *err) {
        double mk[T_N] = {0};
        struct sandbox sb = {.c = c};
        int *fds[] = {&sb.sync_w, &sb.msg_r,   &sb.sock_p, &sb.status_r,
                      &sb.in_w,   &sb.out_r,   &sb.err_r,  &sb.sync_r,
                      &sb.msg_w,  &sb.sock_c,  &sb.status_w,
                      &sb.in_r,   &sb.out_w,   &sb.errp_w};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                *fds[i] = -1;
        _cleanup_close_ int slot_fd = -1;
        _cleanup_close_ int pidfd = -1;
        al_cgroup *cg = NULL;
        struct stream out = {.fd = -1}, errs = {.fd = -1};
        pid_t pid = -1;
        int r;
        struct progress pg = {.ws_fd = -1, .mnt_fd = -1, .net_fd = -1};

        mk[T0] = al_now_ms();
        *ret_workspace_fd = -1;
        *ret_leftover = NULL;
        res->limits = c->limits;
        res->exit_code = -1;

        al_bpf bpf;
        al_seccomp_program(&bpf);
        sb.bpf = &bpf;
        sb.clock = mmap(NULL, sizeof(*sb.clock), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sb.clock == MAP_FAILED)
                return al_error_errno(err, errno, "mmap");

        sb.root_mode = geteuid() == 0;
        unsigned slot = 0;
        if (sb.root_mode) {
                if ((slot_fd = slot_acquire(&slot, err)) < 0) {
                        r = slot_fd;
                        goto fail;
                }
                sb.host_uid = AL_SLOT_ID_BASE + slot;
                sb.host_gid = AL_SLOT_ID_BASE + slot;
        } else {
                sb.host_uid = getuid();
                sb.host_gid = getgid();
        }
        const al_cg_probe *probe = cgroup_probe_cached();
        if (probe->kind != AL_CG_NONE) {
                sb.cg_pids = probe->pids;
                sb.cg_memory = probe->memory;
        }

        if ((r = make_pipe(&sb.sync_r, &sb.sync_w)) < 0 ||
            (r = make_pipe(&sb.msg_r, &sb.msg_w)) < 0 ||
            (r = make_pipe(&sb.status_r, &sb.status_w)) < 0 ||
            (r = make_pipe(&sb.in_r, &sb.in_w)) < 0 ||
            (r = make_pipe(&sb.out_r, &sb.out_w)) < 0 ||
            (r = make_pipe(&sb.err_r, &sb.errp_w)) < 0) {
                al_error_errno(err, -r, "pipe");
                goto fail;
        }
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = al_error_errno(err, errno, "socketpair");
                goto fail;
        }
        sb.sock_p = sp[0];
        sb.sock_c = sp[1];
        mk[T_PREP] = al_now_ms();

        /* v2: the group exists, limits set, before the child: it is born
         * in it. v1 (no clone into a group): made while the child builds
         * its namespaces, and joined before the code can run. */
        char cg_fail[AL_ERROR_MSG_MAX] = "";
        if (probe->kind == AL_CG_V2) {
                mk[T_CG0] = al_now_ms();
                make_cgroup(c, probe, sb.root_mode, slot, &cg, cg_fail,
                            sizeof(cg_fail));
                mk[T_CG1] = al_now_ms();
                if (!cg)
                        sb.cg_pids = sb.cg_memory = false;
        }
        bool into = false;
        pid = clone_sandbox(al_cgroup_clone_fd(cg), &pidfd, &into);
        if (pid < 0) {
                r = al_error_errno(err, errno,
                                   "clone with new namespaces (is "
                                   "kernel.unprivileged_userns_clone or "
                                   "user.max_user_namespaces set to 0?)");
                goto fail;
        }
        if (pid == 0)
                child_main(&sb);
        mk[T_CLONE] = al_now_ms();
        if (pidfd < 0) {
                r = al_error_errno(err, errno, "pidfd");
                goto fail;
        }
        sb_close_child_ends(&sb);

        if ((r = write_idmaps(&sb, pid, err)) < 0)
                goto fail;
        if (write(sb.sync_w, &(char){SYNC_IDMAP}, 1) != 1) {
                r = al_error_errno(err, errno, "start sandbox");
                goto fail;
        }
        mk[T_MAPS] = al_now_ms();
        if (probe->kind == AL_CG_V1) {
                mk[T_CG0] = al_now_ms();
                make_cgroup(c, probe, sb.root_mode, slot, &cg, cg_fail,
                            sizeof(cg_fail));
                mk[T_CG1] = al_now_ms();
        }
        if (cg && !into) {
                mk[T_ATT0] = al_now_ms();
                if ((r = al_cgroup_attach(cg, pid, err)) < 0)
                        goto fail;
                mk[T_ATT1] = al_now_ms();
        }
        /* the caller's go (its audit record is durable), taken while the
         * sandbox builds its root; nothing of the code is in it yet */
        if (c->gate) {
                mk[T_GATE0] = al_now_ms();
                if ((r = c->gate(c->gate_ctx, err)) < 0)
                        goto fail;
                mk[T_GATE1] = al_now_ms();
        }
        if (write(sb.sync_w, &(char){cg ? SYNC_CGROUP : SYNC_NO_CGROUP},
                  1) != 1) {
                r = al_error_errno(err, errno, "start sandbox");
                goto fail;
        }
        /* sync_w stays open until the end: its hang-up tells the child
         * that the supervisor died before the parent-death signal was
         * armed again. */

        /* ---- supervise ---- */
        out.fd = sb.out_r;
        errs.fd = sb.err_r;
        fcntl(out.fd, F_SETFL, O_NONBLOCK);
        fcntl(errs.fd, F_SETFL, O_NONBLOCK);
        fcntl(sb.in_w, F_SETFL, O_NONBLOCK);
        size_t in_off = 0;
        if (c->stdin_len == 0)
                sb.in_w = safe_close(sb.in_w);

        bool exited = false;
        bool wall_kill = false, cpu_kill = false, out_kill = false,
             cancelled = false;
        double t_clone = mk[T_CLONE];
        double deadline = t_clone + (double)c->limits.wall_ms;
        double next_cpu_check = t_clone + 50;

        while (!exited) {
                struct pollfd pf[6];
                int n = 0, i_pid = -1, i_msg = -1, i_out = -1, i_err = -1,
                    i_in = -1, i_cancel = -1;
                pf[i_pid = n++] = (struct pollfd){pidfd, POLLIN, 0};
                if (sb.msg_r >= 0)
                        pf[i_msg = n++] = (struct pollfd){sb.msg_r, POLLIN, 0};
                if (out.fd >= 0)
                        pf[i_out = n++] = (struct pollfd){out.fd, POLLIN, 0};
                if (errs.fd >= 0)
                        pf[i_err = n++] = (struct pollfd){errs.fd, POLLIN, 0};
                if (sb.in_w >= 0 && pg.ready)
                        pf[i_in = n++] = (struct pollfd){sb.in_w, POLLOUT, 0};
                if (c->cancel_fd >= 0)
                        pf[i_cancel = n++] =
                                (struct pollfd){c->cancel_fd, POLLIN, 0};
                double now = al_now_ms();
                double wake = deadline;
                if (cg && next_cpu_check < wake)
                        wake = next_cpu_check;
                int timeout = wake <= now ? 0 : (int)(wake - now) + 1;
                int pr = poll(pf, (nfds_t)n, timeout);
                if (pr < 0 && errno != EINTR) {
                        r = al_error_errno(err, errno, "poll");
                        goto kill_and_fail;
                }
                now = al_now_ms();
                bool kill_now = false;
                if (pr > 0 && i_msg >= 0 && pf[i_msg].revents &&
                    !read_child_msg(&sb, &pg, now))
                        sb.msg_r = safe_close(sb.msg_r);
                if (pr > 0 && i_out >= 0 && pf[i_out].revents &&
                    !stream_read(&out, c->limits.output_bytes))
                        /* out.fd aliases sb.out_r: closed once, both
                         * forgotten (a second close would hit another
                         * thread's fd in a threaded caller) */
                        out.fd = sb.out_r = safe_close(sb.out_r);
                if (pr > 0 && i_err >= 0 && pf[i_err].revents &&
                    !stream_read(&errs, c->limits.output_bytes))
                        errs.fd = sb.err_r = safe_close(sb.err_r);
                if (out.truncated || errs.truncated) {
                        out_kill = kill_now = true;
                }
                if (pr > 0 && i_in >= 0 && pf[i_in].revents) {
                        ssize_t k = write_nosigpipe(sb.in_w,
                                                    c->stdin_data + in_off,
                                                    c->stdin_len - in_off);
                        if (k > 0)
                                in_off += (size_t)k;
                        if ((k < 0 && errno != EAGAIN) ||
                            in_off == c->stdin_len)
                                sb.in_w = safe_close(sb.in_w);
                }
                if (pr > 0 && i_cancel >= 0 && pf[i_cancel].revents)
                        cancelled = kill_now = true;
                if (now >= deadline && !exited)
                        wall_kill = kill_now = true;
                if (cg && now >= next_cpu_check) {
                        al_cg_stats st = {0};
                        if (al_cgroup_stats(cg, &st) == 0 && st.have_cpu &&
                            st.cpu_usec / 1000 > c->limits.cpu_ms)
                                cpu_kill = kill_now = true;
                        next_cpu_check = now + 100;
                }
                if (pr > 0 && pf[i_pid].revents)
                        exited = true;
                if (kill_now && !exited) {
                        kill(pid, SIGKILL);
                        if (cg)
                                al_cgroup_kill(cg);
                }
                if (kill_now)
                        break;
        }

        /* Reap init; by then the kernel has killed and reaped every other
         * process of the pid namespace. */
        struct rusage ru = {0};
        int wst = 0;
        while (wait4(pid, &wst, 0, &ru) < 0 && errno == EINTR)
                ;
        pid = -1;
        double t_exit = mk[T_EXIT] = al_now_ms();

        /* Drain what is left in the pipes: all writers are gone now. */
        while (out.fd >= 0 && stream_read(&out, c->limits.output_bytes))
                if (poll(&(struct pollfd){out.fd, POLLIN, 0}, 1, 0) <= 0)
                        break;
        while (errs.fd >= 0 && stream_read(&errs, c->limits.output_bytes))
                if (poll(&(struct pollfd){errs.fd, POLLIN, 0}, 1, 0) <= 0)
                        break;
        if (out.truncated || errs.truncated)
                out_kill = true;
        if (sb.msg_r >= 0) {
                fcntl(sb.msg_r, F_SETFL, O_NONBLOCK);
                while (read_child_msg(&sb, &pg, t_exit))
                        ;
        }
        int32_t pst = 0;
        fcntl(sb.status_r, F_SETFL, O_NONBLOCK);
        bool have_pst = read(sb.status_r, &pst, sizeof(pst)) == sizeof(pst);

        /* ---- account ---- */
        al_cg_stats st = {0};
        if (cg)
                al_cgroup_stats(cg, &st);
        res->wall_ms = (uint64_t)(t_exit - (pg.t_ready ? pg.t_ready : t_clone));
        uint64_t ru_cpu = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
                                  1000 +
                          (uint64_t)(ru.ru_utime.tv_usec +
                                     ru.ru_stime.tv_usec) /
                                  1000;
        res->cpu_ms = st.have_cpu ? st.cpu_usec / 1000 : ru_cpu;
        res->memory_peak_bytes = st.have_memory_peak
                                         ? st.memory_peak_bytes
                                         : (uint64_t)ru.ru_maxrss * 1024;
        res->stdout_buf = out.buf;
        res->stdout_len = out.len;
        res->stdout_truncated = out.truncated;
        res->stderr_buf = errs.buf;
        res->stderr_len = errs.len;
        res->stderr_truncated = errs.truncated;
        out.buf = errs.buf = NULL;
        fill_protections(&res->protections, probe, cg != NULL, sb.root_mode,
                         sb.host_uid, pg.ready_flags);
        if (!cg && cg_fail[0])
                snprintf(res->protections.note, sizeof(res->protections.note),
                         "no cgroup limits (rlimits only): %s", cg_fail);
        if (!(pg.ready_flags & READY_TIMENS))
                res->protections.time_ns = false;

        if (have_pst) {
                if (WIFEXITED(pst))
                        res->exit_code = WEXITSTATUS(pst);
                else if (WIFSIGNALED(pst))
                        res->signal = WTERMSIG(pst);
        }
        if (st.pids_denied > 0)
                hit(res, "pids");
        /* Socket buffers at their cgroup limit: writes waited, nothing was
         * killed, like a full disk. */
        if (st.sock_limit_hit)
                hit(res, "memory");
        if (pg.ws_fd >= 0) {
                struct statfs sf;
                /* out of blocks or out of inodes */
                if (fstatfs(pg.ws_fd, &sf) == 0 &&
                    (sf.f_bavail == 0 || sf.f_ffree == 0))
                        hit(res, "disk");
        }
        bool cpu_sig = res->signal == SIGXCPU ||
                       (res->signal == SIGKILL &&
                        res->cpu_ms + 50 >= c->limits.cpu_ms);

        if (pg.setup_failed && !pg.ready) {
                res->status = AL_STATUS_INTERNAL_ERROR;
                snprintf(res->reason, sizeof(res->reason),
                         "sandbox setup failed: %s", pg.child_err.msg);
        } else if (pg.setup_failed) {
                /* the payload could not exec */
                res->status = AL_STATUS_ERROR;
                snprintf(res->reason, sizeof(res->reason), "%s",
                         pg.child_err.msg);
                res->exit_code = 127;
        } else if (cancelled) {
                res->status = AL_STATUS_KILLED;
                snprintf(res->reason, sizeof(res->reason),
                         "cancelled: the supervisor was asked to stop");
        } else if (wall_kill) {
                res->status = AL_STATUS_TIMEOUT;
                hit(res, "wall");
                snprintf(res->reason, sizeof(res->reason),
                         "wall time limit of %llu ms exceeded",
                         (unsigned long long)c->limits.wall_ms);
        } else if (out_kill) {
                res->status = AL_STATUS_OUTPUT_LIMIT;
                hit(res, "output");
                snprintf(res->reason, sizeof(res->reason),
                         "output limit of %llu bytes per stream exceeded",
                         (unsigned long long)c->limits.output_bytes);
        } else if (st.oom_kills > 0) {
                res->status = AL_STATUS_MEMORY_LIMIT;
                hit(res, "memory");
                snprintf(res->reason, sizeof(res->reason),
                         "memory limit of %llu MiB exceeded",
                         (unsigned long long)c->limits.memory_mb);
        } else if (cpu_kill || cpu_sig) {
                res->status = AL_STATUS_TIMEOUT;
                hit(res, "cpu");
                snprintf(res->reason, sizeof(res->reason),
                         "CPU time limit of %llu ms exceeded",
                         (unsigned long long)c->limits.cpu_ms);
        } else if (!have_pst) {
                res->status = AL_STATUS_INTERNAL_ERROR;
                snprintf(res->reason, sizeof(res->reason),
                         "sandbox init ended without a payload status "
                         "(wait status 0x%x)",
                         (unsigned)wst);
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
        if (res->status == AL_STATUS_TIMEOUT || res->status ==
                                                        AL_STATUS_MEMORY_LIMIT ||
            res->status == AL_STATUS_OUTPUT_LIMIT ||
            res->status == AL_STATUS_KILLED) {
                if (!have_pst || !WIFEXITED(pst))
                        res->exit_code = -1;
                if (!res->signal && (wall_kill || out_kill || cancelled ||
                                     cpu_kill))
                        res->signal = SIGKILL;
        }

        /* What is left (the empty cgroup, the namespaces and the
         * workspace tmpfs they hold) is the caller's to free once the
         * result is out: al_sbx_leftover_free. */
        mk[T_TD0] = al_now_ms();
        al_sbx_leftover *lo = calloc(1, sizeof(*lo));
        if (lo) {
                lo->cg = cg;
                lo->mnt_fd = steal_fd(&pg.mnt_fd);
                lo->net_fd = steal_fd(&pg.net_fd);
                lo->slot_fd = steal_fd(&slot_fd);
                cg = NULL;
        } else {
                al_cgroup_kill(cg);
                cg = al_cgroup_destroy(cg);
        }
        safe_close(pg.mnt_fd);
        safe_close(pg.net_fd);
        sb_close_all(&sb);
        free(out.buf);
        free(errs.buf);
        mk[T_END] = al_now_ms();
        if (c->timing) {
                res->has_timing = true;
                fill_timing(&res->timing, sb.clock, mk);
        }
        munmap(sb.clock, sizeof(*sb.clock));
        *ret_workspace_fd = steal_fd(&pg.ws_fd);
        *ret_leftover = lo;
        return 0;

kill_and_fail:
        if (pid > 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                pid = -1;
        }
fail:
        if (pid > 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (cg) {
                al_cgroup_kill(cg);
                al_cgroup_destroy(cg);
        }
        sb_close_all(&sb);
        safe_close(pg.ws_fd);
        safe_close(pg.mnt_fd);
        safe_close(pg.net_fd);
        free(out.buf);
        free(errs.buf);
        if (sb.clock != MAP_FAILED)
                munmap(sb.clock, sizeof(*sb.clock));
        return r;
}
