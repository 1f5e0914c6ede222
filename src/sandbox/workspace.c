/* SPDX-License-Identifier: MIT */
/*
 * The files API of a session's workspace (workspace.h): every path the
 * caller names is checked, then resolved beneath the workspace fd without
 * following a symbolic link or crossing a mount, whatever the code in the
 * sandbox planted there. The supervisor has more rights than that code, so
 * no open here may land outside the workspace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "workspace.h"

bool al_ws_test_no_openat2;
/* Set once openat2 answered ENOSYS: the kernel will not grow it. */
static int no_openat2;

/* What every open here asks of the kernel: stay below the workspace fd
 * (RESOLVE_BENEATH), follow no symbolic link anywhere on the path, the
 * last component included (RESOLVE_NO_SYMLINKS: the code plants them), no
 * /proc magic link (implied, said for the reader), and no mount crossing
 * (RESOLVE_NO_XDEV: the workspace is one tmpfs). */
#define WS_RESOLVE                                                             \
        (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |       \
         RESOLVE_NO_XDEV)

/* The temporary name a put writes to before its rename; random, so the
 * code cannot guess it, and O_EXCL, so a name the code made is not used. */
#define WS_TMP_PREFIX ".airlock-put-"
/* Fresh random names tried when one exists already. */
#define WS_TMP_TRIES 8

/* ------------------------------------------------------------ the checker */

int al_ws_path_check(const char *path, size_t len, bool allow_root,
                     al_error *err) {
        if (!path)
                return al_error_set(err, EINVAL, "no path given");
        if (allow_root && (len == 0 || (len == 1 && path[0] == '.')))
                return 0;
        if (len == 0)
                return al_error_set(err, EINVAL, "empty path");
        if (len > AL_WS_PATH_MAX)
                return al_error_set(err, EINVAL,
                                    "path of %zu bytes, over the cap of %d",
                                    len, AL_WS_PATH_MAX);
        if (memchr(path, '\0', len))
                return al_error_set(err, EINVAL, "path holds a NUL byte");
        if (path[0] == '/')
                return al_error_set(err, EINVAL,
                                    "absolute path: name it relative to the "
                                    "workspace");
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)path[i];
                if (c < 0x20 || c == 0x7f)
                        return al_error_set(err, EINVAL,
                                            "path holds control character "
                                            "0x%02x",
                                            c);
        }
        if (!al_utf8_valid((const unsigned char *)path, len))
                return al_error_set(err, EINVAL, "path is not valid UTF-8");
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && path[i] != '/')
                        continue;
                size_t n = i - start;
                const char *c = path + start;
                if (n == 0)
                        return al_error_set(err, EINVAL,
                                            "path has an empty component "
                                            "(\"//\" or a trailing \"/\")");
                if (n == 1 && c[0] == '.')
                        return al_error_set(err, EINVAL,
                                            "path has a \".\" component");
                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return al_error_set(err, EINVAL,
                                            "path has a \"..\" component");
                if (n > AL_WS_NAME_MAX)
                        return al_error_set(err, EINVAL,
                                            "path component of %zu bytes, "
                                            "over the cap of %d",
                                            n, AL_WS_NAME_MAX);
                start = i + 1;
        }
        return 0;
}

/* ------------------------------------------------------------ opening */

/* The same rules as WS_RESOLVE, one component at a time, for a kernel
 * without openat2: intermediate components opened O_PATH|O_DIRECTORY|
 * O_NOFOLLOW (a link then fails ENOTDIR, and is told apart as ELOOP),
 * the last with O_NOFOLLOW (with O_PATH that opens the link itself, which
 * fstat shows and we refuse), each checked to be on the workspace's
 * filesystem. The path was checked: no "..", no ".", no empty component,
 * so nothing here can climb above dfd. */
static int ws_walk(int dfd, const char *path, int flags, mode_t mode) {
        struct stat root;
        if (fstat(dfd, &root) < 0)
                return -errno;
        _cleanup_close_ int cur = -1;
        const char *p = path;
        char comp[AL_WS_NAME_MAX + 1];
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0 || n > AL_WS_NAME_MAX)
                        return -EINVAL;
                memcpy(comp, p, n);
                comp[n] = '\0';
                int at = cur >= 0 ? cur : dfd;
                _cleanup_close_ int fd =
                        slash ? openat(at, comp,
                                       O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                               O_CLOEXEC)
                              : openat(at, comp, flags | O_NOFOLLOW | O_CLOEXEC,
                                       mode);
                struct stat st;
                if (fd < 0) {
                        int e = errno;
                        if ((e == ENOTDIR || e == ELOOP) &&
                            fstatat(at, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                            S_ISLNK(st.st_mode))
                                return -ELOOP;
                        return -e;
                }
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (st.st_dev != root.st_dev)
                        return -EXDEV;
                if (!slash)
                        return steal_fd(&fd);
                safe_close(cur);
                cur = steal_fd(&fd);
                p = slash + 1;
        }
}

/* EPERM from openat2 where an O_PATH open of "." cannot fail for
 * permissions: a seccomp filter that refuses syscalls it does not know
 * (container runtimes before they answered ENOSYS), i.e. no openat2. */
static bool openat2_filtered(int dfd) {
        struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                               .resolve = RESOLVE_BENEATH};
        long fd = syscall(SYS_openat2, dfd, ".", &how, sizeof(how));
        if (fd >= 0) {
                close((int)fd);
                return false;
        }
        return errno == EPERM;
}

/* Open a checked path beneath dfd under WS_RESOLVE; an fd or -errno. */
static int ws_openat(int dfd, const char *path, int flags, mode_t mode) {
        if (!al_ws_test_no_openat2 &&
            !__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
                struct open_how how = {
                        .flags = (uint64_t)(flags | O_CLOEXEC),
                        /* openat2 refuses a mode without O_CREAT */
                        .mode = (flags & O_CREAT) ? mode : 0,
                        .resolve = WS_RESOLVE,
                };
                long fd = syscall(SYS_openat2, dfd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;
                if (errno != ENOSYS &&
                    !(errno == EPERM && openat2_filtered(dfd)))
                        return -errno;
                __atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
        }
        return ws_walk(dfd, path, flags, mode);
}

/* What on path made an open fail, for the message: the first component
 * that is a symbolic link ('l'), a mount point ('m') or a non-directory
 * with more after it ('f'), copied into at; 0 if none is (any more).
 * Looks only: fstatat without following, O_PATH opens. */
static int ws_diagnose(int ws_fd, const char *path, char *at, size_t size) {
        struct stat root, st;
        if (fstat(ws_fd, &root) < 0)
                return 0;
        _cleanup_close_ int cur = fcntl(ws_fd, F_DUPFD_CLOEXEC, 3);
        const char *p = path;
        char comp[AL_WS_NAME_MAX + 1];
        while (cur >= 0) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0 || n > AL_WS_NAME_MAX)
                        return 0;
                memcpy(comp, p, n);
                comp[n] = '\0';
                if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                int kind = S_ISLNK(st.st_mode)             ? 'l'
                           : st.st_dev != root.st_dev      ? 'm'
                           : slash && !S_ISDIR(st.st_mode) ? 'f'
                                                           : 0;
                if (kind) {
                        snprintf(at, size, "%.*s", (int)(p + n - path), path);
                        return kind;
                }
                if (!slash)
                        return 0;
                int fd = openat(cur, comp,
                                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                safe_close(cur);
                cur = fd;
                p = slash + 1;
        }
        return 0;
}

/* The words for a failed call: r (-errno) kept, the message naming what
 * is in the way. */
static int ws_fail(int ws_fd, const char *op, const char *path, int r,
                   al_error *err) {
        char at[AL_WS_PATH_MAX + 1] = "";
        int kind = 0;
        if (r == -ELOOP || r == -EXDEV || r == -ENOTDIR)
                kind = ws_diagnose(ws_fd, path, at, sizeof(at));
        switch (-r) {
        case ELOOP:
                return al_error_set(err, ELOOP,
                                    "%s %s: %s%s is a symbolic link; the "
                                    "files API does not follow links",
                                    op, path, kind == 'l' ? "" : "a part of ",
                                    kind == 'l' ? at : "the path");
        case EXDEV:
                return al_error_set(err, EXDEV,
                                    "%s %s: %s is a mount point; the files "
                                    "API stays on the workspace's filesystem",
                                    op, path, kind == 'm' ? at : "a part");
        case ENOENT:
                return al_error_set(err, ENOENT,
                                    "%s %s: no such file or directory", op,
                                    path);
        case ENOTDIR:
                return al_error_set(err, ENOTDIR,
                                    "%s %s: %s is not a directory", op, path,
                                    kind == 'f' ? at : "a part");
        case EISDIR:
                return al_error_set(err, EISDIR, "%s %s: is a directory", op,
                                    path);
        case ENODEV:
                return al_error_set(err, ENODEV,
                                    "%s %s: not a regular file (a fifo, "
                                    "socket or device)",
                                    op, path);
        case ENOTEMPTY:
                return al_error_set(err, ENOTEMPTY,
                                    "%s %s: the directory is not empty", op,
                                    path);
        case ENOSPC:
                return al_error_set(err, ENOSPC,
                                    "%s %s: the workspace is full (its disk "
                                    "limit); the file was not written",
                                    op, path);
        default:
                return al_error_errno(err, -r, "%s %s", op, path);
        }
}

/* Split a checked path into its directory part (length) and last name. */
static const char *ws_last(const char *path, size_t *ret_dirlen) {
        const char *s = strrchr(path, '/');
        *ret_dirlen = s ? (size_t)(s - path) : 0;
        return s ? s + 1 : path;
}

/* An O_PATH fd of the directory path[0..dirlen) beneath ws_fd, one
 * component at a time; with create, missing ones are made 0755 and owned
 * by uid:gid (made 0700, then chowned and opened up, so the code never
 * sees one of ours half-made). */
static int ws_parent(int ws_fd, const char *path, size_t dirlen, bool create,
                     uid_t uid, gid_t gid) {
        _cleanup_close_ int cur = fcntl(ws_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        char comp[AL_WS_NAME_MAX + 1];
        size_t start = 0;
        while (start < dirlen) {
                const char *slash = memchr(path + start, '/', dirlen - start);
                size_t end = slash ? (size_t)(slash - path) : dirlen;
                size_t n = end - start;
                if (n == 0 || n > AL_WS_NAME_MAX)
                        return -EINVAL;
                memcpy(comp, path + start, n);
                comp[n] = '\0';
                int fd = ws_openat(cur, comp, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT && create) {
                        if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST)
                                return -errno;
                        /* opened again under the rules: the code may have
                         * put a link in its place meanwhile */
                        _cleanup_close_ int dfd =
                                ws_openat(cur, comp, O_RDONLY | O_DIRECTORY, 0);
                        if (dfd < 0)
                                return dfd;
                        if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
                            fchown(dfd, uid, gid) < 0)
                                return -errno;
                        if (fchmod(dfd, 0755) < 0)
                                return -errno;
                        fd = steal_fd(&dfd);
                }
                if (fd < 0)
                        return fd;
                safe_close(cur);
                cur = fd;
                start = end + 1;
        }
        return steal_fd(&cur);
}

/* ------------------------------------------------------------ put */

static int write_all(int fd, const unsigned char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENOSPC;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Write the temporary file and give it its owner and mode. A full disk
 * shows as ENOSPC or EDQUOT, one code for the caller. */
static int put_tmp(int fd, const void *data, size_t len, uid_t uid, gid_t gid) {
        int r = write_all(fd, data, len);
        if (r == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) &&
            fchown(fd, uid, gid) < 0)
                r = -errno;
        if (r == 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        return r == -EDQUOT ? -ENOSPC : r;
}

static int put_as(int ws_fd, const char *path, const void *data, size_t len,
                  uid_t uid, gid_t gid, uint64_t max_bytes, al_error *err) {
        int r = al_ws_path_check(path, path ? strlen(path) : 0, false, err);
        if (r < 0)
                return r;
        if ((uint64_t)len > max_bytes)
                return al_error_set(err, EFBIG,
                                    "put %s: %zu bytes, over the cap of %llu",
                                    path, len, (unsigned long long)max_bytes);
        size_t dirlen;
        const char *name = ws_last(path, &dirlen);
        _cleanup_close_ int dfd =
                ws_parent(ws_fd, path, dirlen, true, uid, gid);
        if (dfd < 0)
                return ws_fail(ws_fd, "put", path,
                               dfd == -EDQUOT ? -ENOSPC : dfd, err);
        /* What is there now: a link or a directory is refused rather than
         * replaced (the caller learns what the code made of the path). */
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                        return ws_fail(ws_fd, "put", path, -ELOOP, err);
                if (S_ISDIR(st.st_mode))
                        return ws_fail(ws_fd, "put", path, -EISDIR, err);
        } else if (errno != ENOENT) {
                return ws_fail(ws_fd, "put", path, -errno, err);
        }

        char tmp[sizeof(WS_TMP_PREFIX) + 16];
        _cleanup_close_ int fd = -1;
        for (int i = 0; i < WS_TMP_TRIES && fd < 0; i++) {
                unsigned long long rnd;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return al_error_errno(err, errno, "put %s: random",
                                              path);
                snprintf(tmp, sizeof(tmp), WS_TMP_PREFIX "%016llx", rnd);
                fd = ws_openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
                if (fd < 0 && fd != -EEXIST)
                        return ws_fail(ws_fd, "put", path,
                                       fd == -EDQUOT ? -ENOSPC : fd, err);
        }
        if (fd < 0)
                return al_error_set(err, EEXIST,
                                    "put %s: no free temporary name", path);
        r = put_tmp(fd, data, len, uid, gid);
        if (r == 0 && close(steal_fd(&fd)) < 0)
                r = errno == EDQUOT ? -ENOSPC : -errno;
        if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dfd, tmp, 0);
                return ws_fail(ws_fd, "put", path, r, err);
        }
        return 0;
}

int al_ws_put(int ws_fd, const char *path, const void *data, size_t len,
              uid_t uid, gid_t gid, uint64_t max_bytes, al_error *err) {
        /* A sandbox's workspace is a tmpfs of its user namespace: the
         * kernel refuses (EOVERFLOW) to create a file there for an owner
         * that namespace does not map, root included. So the new files
         * and directories are made by the ids the code runs as, this
         * thread's file-system ids alone (setfsuid is per thread). */
        bool as = uid != (uid_t)-1 && gid != (gid_t)-1 && geteuid() == 0;
        int ofs = 0, ogs = 0;
        if (as) {
                ogs = setfsgid(gid);
                ofs = setfsuid(uid);
        }
        int r = put_as(ws_fd, path, data, len, uid, gid, max_bytes, err);
        if (as) {
                setfsuid((uid_t)ofs);
                setfsgid((gid_t)ogs);
        }
        return r;
}

/* ------------------------------------------------------------ get */

static int too_big(const char *path, uint64_t max_bytes, al_error *err) {
        return al_error_set(err, EFBIG,
                            "get %s: the file holds more than the cap of %llu "
                            "bytes",
                            path, (unsigned long long)max_bytes);
}

int al_ws_get(int ws_fd, const char *path, uint64_t max_bytes, char **ret_data,
              size_t *ret_len, al_error *err) {
        int r = al_ws_path_check(path, path ? strlen(path) : 0, false, err);
        if (r < 0)
                return r;
        /* O_PATH first: the type is known before anything is opened for
         * reading (a fifo would block, a device could act). */
        _cleanup_close_ int pfd = ws_openat(ws_fd, path, O_PATH, 0);
        if (pfd < 0)
                return ws_fail(ws_fd, "get", path, pfd, err);
        struct stat st;
        if (fstat(pfd, &st) < 0)
                return ws_fail(ws_fd, "get", path, -errno, err);
        if (S_ISDIR(st.st_mode))
                return ws_fail(ws_fd, "get", path, -EISDIR, err);
        if (!S_ISREG(st.st_mode))
                return ws_fail(ws_fd, "get", path, -ENODEV, err);
        if ((uint64_t)st.st_size > max_bytes)
                return too_big(path, max_bytes, err);
        /* Opened again by path (an O_PATH fd cannot be read); O_NONBLOCK
         * and a second look, as the code may have swapped in a fifo. */
        _cleanup_close_ int fd =
                ws_openat(ws_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        if (fd < 0)
                return ws_fail(ws_fd, "get", path, fd, err);
        if (fstat(fd, &st) < 0)
                return ws_fail(ws_fd, "get", path, -errno, err);
        if (!S_ISREG(st.st_mode))
                return ws_fail(ws_fd, "get", path,
                               S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV, err);

        /* Read up to max_bytes + 1: one byte more tells a file over the
         * cap (it may have grown since fstat). */
        uint64_t cap = max_bytes < (uint64_t)(SSIZE_MAX - 1) ? max_bytes + 1
                                                             : SSIZE_MAX;
        uint64_t want = (uint64_t)st.st_size + 1;
        size_t size = (size_t)(want < cap ? want : cap);
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return al_error_set(err, ENOMEM, "get %s: out of memory", path);
        size_t off = 0;
        for (;;) {
                if (off == size) {
                        if (size >= cap)
                                break;
                        uint64_t ns = (uint64_t)size * 2;
                        size = (size_t)(ns < cap ? ns : cap);
                        char *nb = realloc(buf, size + 1);
                        if (!nb)
                                return al_error_set(err, ENOMEM,
                                                    "get %s: out of memory",
                                                    path);
                        buf = nb;
                }
                ssize_t n = read(fd, buf + off, size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return ws_fail(ws_fd, "get", path, -errno, err);
                if (n == 0)
                        break;
                off += (size_t)n;
        }
        if ((uint64_t)off > max_bytes)
                return too_big(path, max_bytes, err);
        buf[off] = '\0';
        *ret_data = steal_pointer(&buf);
        *ret_len = off;
        return 0;
}

/* ------------------------------------------------------------ delete */

int al_ws_delete(int ws_fd, const char *path, al_error *err) {
        int r = al_ws_path_check(path, path ? strlen(path) : 0, false, err);
        if (r < 0)
                return r;
        size_t dirlen;
        const char *name = ws_last(path, &dirlen);
        _cleanup_close_ int dfd = ws_parent(ws_fd, path, dirlen, false, -1, -1);
        if (dfd < 0)
                return ws_fail(ws_fd, "delete", path, dfd, err);
        /* unlinkat never follows the last component: a link is removed,
         * not its target. */
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return ws_fail(ws_fd, "delete", path, -errno, err);
        if (unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
                return ws_fail(ws_fd, "delete", path,
                               errno == EEXIST ? -ENOTEMPTY : -errno, err);
        return 0;
}

/* ------------------------------------------------------------ list */

struct ws_entry {
        char *name;
        struct stat st;
};

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct ws_entry *)a)->name,
                      ((const struct ws_entry *)b)->name);
}

static json_t *entry_json(const struct ws_entry *e) {
        const char *type = S_ISREG(e->st.st_mode)   ? "file"
                           : S_ISDIR(e->st.st_mode) ? "dir"
                           : S_ISLNK(e->st.st_mode) ? "symlink"
                                                    : "other";
        struct tm tm;
        char mtime[32];
        time_t sec = e->st.st_mtim.tv_sec;
        if (!gmtime_r(&sec, &tm))
                memset(&tm, 0, sizeof(tm));
        snprintf(mtime, sizeof(mtime), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, e->st.st_mtim.tv_nsec / 1000000);
        json_int_t size =
                S_ISREG(e->st.st_mode) ? (json_int_t)e->st.st_size : 0;
        return json_pack("{s:s, s:s, s:I, s:s}", "name", e->name, "type", type,
                         "size", size, "mtime", mtime);
}

static void entries_free(struct ws_entry *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

int al_ws_list(int ws_fd, const char *dir, json_t **ret, al_error *err) {
        size_t dlen = dir ? strlen(dir) : 0;
        int r = al_ws_path_check(dir, dlen, true, err);
        if (r < 0)
                return r;
        const char *shown = dlen ? dir : ".";
        int fd;
        if (dlen == 0 || !strcmp(dir, ".")) {
                fd = openat(ws_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        fd = -errno;
        } else {
                fd = ws_openat(ws_fd, dir, O_RDONLY | O_DIRECTORY, 0);
        }
        if (fd < 0)
                return ws_fail(ws_fd, "list", shown, fd, err);
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return ws_fail(ws_fd, "list", shown, r, err);
        }
        struct ws_entry *v = NULL;
        size_t n = 0, cap = 0;
        int left_out = 0;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (n >= AL_WS_LIST_MAX ||
                    !al_utf8_valid((const unsigned char *)de->d_name,
                                   strlen(de->d_name)) ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
                            0) {
                        left_out++;
                        continue;
                }
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        struct ws_entry *nv = realloc(v, nc * sizeof(*v));
                        if (!nv)
                                goto oom;
                        v = nv;
                        cap = nc;
                }
                v[n].name = strdup(de->d_name);
                if (!v[n].name)
                        goto oom;
                v[n].st = st;
                n++;
        }
        closedir(d);
        d = NULL;
        if (n > 1)
                qsort(v, n, sizeof(*v), entry_cmp);
        json_t *arr = json_array();
        if (!arr)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                if (json_array_append_new(arr, entry_json(&v[i])) < 0) {
                        json_decref(arr);
                        goto oom;
                }
        }
        entries_free(v, n);
        *ret = arr;
        return left_out;
oom:
        if (d)
                closedir(d);
        entries_free(v, n);
        return al_error_set(err, ENOMEM, "list %s: out of memory", shown);
}

/* ------------------------------------------------------------ codes */

static const struct {
        int errnum;
        int status;
        const char *code;
} ws_codes[] = {
        {EINVAL, 400, "bad_path"},
        {ELOOP, 400, "bad_path"},
        {EXDEV, 400, "bad_path"},
        {EACCES, 403, "permission_denied"},
        {EPERM, 403, "permission_denied"},
        {ENOENT, 404, "file_not_found"},
        {EISDIR, 409, "is_a_directory"},
        {ENOTDIR, 409, "not_a_directory"},
        {ENODEV, 409, "not_a_regular_file"},
        {ENOTEMPTY, 409, "directory_not_empty"},
        {EFBIG, 413, "file_too_large"},
        {ENOSPC, 507, "workspace_full"},
};

const char *al_ws_error_code(int r, int *ret_http_status) {
        for (size_t i = 0; i < ARRAY_SIZE(ws_codes); i++)
                if (-r == ws_codes[i].errnum) {
                        if (ret_http_status)
                                *ret_http_status = ws_codes[i].status;
                        return ws_codes[i].code;
                }
        if (ret_http_status)
                *ret_http_status = 500;
        return "internal_error";
}
