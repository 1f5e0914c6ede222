/* SPDX-License-Identifier: MIT */
/*
 * The sandbox's root, built by init (sandbox-init.c) inside its new mount
 * namespace, as the sandbox user: a fresh tmpfs holding a minimal /etc and
 * the profile's host paths bound read-only, a new /proc with the host's
 * tell-tale files covered, a small /dev, one capped tmpfs for all writable
 * space, then pivot_root; and the input files written into the workspace.
 *
 * Runs in the child between clone() and execve: no allocation, only
 * system calls, stack buffers and the static list of read-only mounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "macro.h"
#include "egress.h"
#include "sandbox-internal.h"

static int mkdir_parent(const char *path);

/* mkdir -p for a path we build ourselves (no symlinks in it: the new root
 * is a fresh tmpfs). Tries the whole path first: most parents exist. */
static int mkdir_p(const char *path, mode_t mode) {
        if (mkdir(path, mode) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        int r = mkdir_parent(path);
        if (r < 0)
                return r;
        return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

/* The directories above path (none for a path in /). */
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
                return errno == ENOENT
                               ? 0
                               : al_error_errno(e, errno, "lstat %s", src);
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
        int fd = open(path,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
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

/* /proc files covered by an empty file (sbx_setup_root, step 7). */
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
                n += (size_t)snprintf(
                        buf + n, size - n, "%s%02x",
                        i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", b[i]);
        snprintf(buf + n, size - n, "\n");
        return 0;
}

/* 1. What the root tmpfs holds: mount points and a minimal
 * identity, so tools that look the user up work. */
static int root_skeleton(struct sandbox *sb, const char *root, al_error *e) {
        char p[PATH_MAX];
        int r;

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
        /* a run with an allowlist: node's way to its proxy (NODE_OPTIONS
         * requires it; egress.h) */
        if (sb->c->egress) {
                extern const char al_net_node_proxy[];
                snprintf(p, sizeof(p), "%s" AL_EGRESS_NODE_PRELOAD, root);
                if ((r = write_text(p, al_net_node_proxy, 0444)) < 0)
                        return al_error_errno(e, -r, "write %s", p);
        }
        for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
                char host[64];
                snprintf(host, sizeof(host), "/etc/%s", etc[i][0]);
                if (profile_binds(sb->c->ro_paths, host))
                        continue; /* bound from the host by the profile */
                snprintf(p, sizeof(p), "%s/etc/%s", root, etc[i][0]);
                if ((r = write_text(p, etc[i][1], 0644)) < 0)
                        return al_error_errno(e, -r, "write %s", p);
        }
        return 0;
}

/* 2. The host paths the profile needs; 3. all of it read-only,
 * nosuid, nodev in one call. */
static int root_binds(struct sandbox *sb, const char *root, al_error *e) {
        int r;

        for (char *const *rp = sb->c->ro_paths; rp && *rp; rp++)
                if ((r = bind_host(root, *rp, e)) < 0)
                        return r;
        if ((r = make_readonly(root, false)) < 0)
                return al_error_errno(e, -r, "read-only root");
        return 0;
}

/* 4. /proc: a new instance for the new pid namespace; /proc/sys
 * and friends read-only on top. */
static int root_proc(const char *root, al_error *e) {
        char p[PATH_MAX];
        int r;

        snprintf(p, sizeof(p), "%s/proc", root);
        if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
            0)
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
        return 0;
}

/* 5. /dev: a small tmpfs with the harmless devices bound from the
 * host (a user namespace cannot mknod), read-only as a whole (a
 * read-only device node can still be written to; the node itself
 * cannot be changed). */
static int root_dev(const char *root, al_error *e) {
        char p[PATH_MAX];
        int r;

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
                {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"},
                {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"},
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
        return 0;
}

/* 6. One tmpfs, capped at disk_mb, holds the workspace, /tmp and
 * /dev/shm, so the cap bounds all writable space together. */
static int root_writable(const al_limits *l, const char *root,
                         const char *stage, al_error *e) {
        char opts[128];

        snprintf(opts, sizeof(opts), "size=%llum,nr_inodes=%llu,mode=0755",
                 (unsigned long long)l->disk_mb,
                 (unsigned long long)(l->disk_mb * 256 < 1024
                                              ? 1024
                                              : l->disk_mb * 256));
        if (mount("airlock-rw", stage, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
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
        return 0;
}

/* 7. /proc files that describe the host and that no runtime
 * reads are covered by an empty read-only file, and the host's
 * boot_id by one of the run's own: a run is a boot of its own
 * (its uptime starts at 0, enter_timens). The files sit in the
 * root of the writable tmpfs, which the code never sees. */
static int root_masks(const char *root, const char *stage, al_error *e) {
        char p[PATH_MAX], src[PATH_MAX];
        int r;

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
        return 0;
}

/* 8. pivot_root(".", ".") stacks the old root under the new one;
 * detaching it (and the staging mount with it) leaves nothing of
 * the host reachable. */
static int root_pivot(const char *root, al_error *e) {
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

/* Build the new root under `root` (a fresh tmpfs) and pivot into it, in
 * the numbered steps above. The order keeps mount calls few: everything
 * the root tmpfs itself holds is made first, then the host binds, then
 * one call makes the whole tree read-only; /proc, /dev and the writable
 * space are mounted on top. */
int sbx_setup_root(struct sandbox *sb, al_error *e) {
        const char *root = "/tmp";
        /* Where the writable tmpfs is prepared: a directory of the old
         * root, covered in this mount namespace only; it goes with the old
         * root (one detach: each umount waits for an RCU grace period). */
        const char *stage = "/sys";
        int r;

        umask(0);
        /* Nothing we mount may leak back to the host, and nothing the
         * host mounts later may appear in here. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return al_error_errno(e, errno, "make / private");
        if (mount("airlock-root", root, "tmpfs", MS_NOSUID | MS_NODEV,
                  "size=4m,nr_inodes=4096,mode=0755") < 0)
                return al_error_errno(e, errno, "mount root tmpfs");
        if ((r = root_skeleton(sb, root, e)) < 0 ||
            (r = root_binds(sb, root, e)) < 0 || (r = root_proc(root, e)) < 0 ||
            (r = root_dev(root, e)) < 0 ||
            (r = root_writable(&sb->c->limits, root, stage, e)) < 0 ||
            (r = root_masks(root, stage, e)) < 0 ||
            (r = root_pivot(root, e)) < 0)
                return r;
        return 0;
}

/* Write the input files into the workspace as the sandbox user. */
int sbx_write_inputs(struct sandbox *sb, al_error *e) {
        for (size_t i = 0; i < sb->c->n_files; i++) {
                const al_sbx_file *f = &sb->c->files[i];
                char p[PATH_MAX];
                snprintf(p, sizeof(p), AL_WORKSPACE "/%s", f->name);
                int r = mkdir_parent(p);
                if (r < 0)
                        return al_error_errno(e, -r, "input %s", f->name);
                int fd = open(
                        p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
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
