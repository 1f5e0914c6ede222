/* SPDX-License-Identifier: MIT */
/* The workspace files API (src/sandbox/workspace.c): what a client names
 * stays below the workspace, whatever the code in the sandbox planted
 * there (links to host files and to another workspace, fifos, mount
 * points), and each refusal carries the stable code the HTTP layer
 * answers. Every test runs twice: with openat2 and with the walk a kernel
 * without it gets. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "tap.h"
#include "workspace.h"

static char base[] = "/tmp/airlock-test-ws-XXXXXX";
static char outside[4096], other[4096];
static int ws = -1;        /* this test's workspace */
static char ws_path[4096]; /* and its path */
static const char *decoy = "OUTSIDE\n";
static const char *secret = "B-SECRET\n";

static int write_file(const char *p, const char *s) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        close(fd);
        return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* The file's content, or "" when it cannot be read. */
static const char *content(const char *p) {
        static char buf[4096];
        buf[0] = '\0';
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return buf;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
        return buf;
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

/* A fresh workspace for each test, beside outside/ and other/. */
static int ws_new(void) {
        static int n;
        if (ws >= 0)
                close(ws);
        snprintf(ws_path, sizeof(ws_path), "%s/ws%d", base, n++);
        if (mkdir(ws_path, 0755) < 0)
                return -errno;
        ws = open(ws_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return ws < 0 ? -errno : 0;
}

/* In the workspace: a symbolic link named name to target. */
static int plant(const char *name, const char *target) {
        return symlinkat(target, ws, name) < 0 ? -errno : 0;
}

/* Nothing outside this test's workspace changed. */
static bool outside_intact(void) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/decoy", outside);
        if (strcmp(content(p), decoy) != 0)
                return false;
        snprintf(p, sizeof(p), "%s/secret", other);
        if (strcmp(content(p), secret) != 0)
                return false;
        snprintf(p, sizeof(p), "%s/x", base);
        if (exists(p))
                return false;
        snprintf(p, sizeof(p), "%s/new.txt", outside);
        return !exists(p);
}

#define ASSERT_CODE(r, code) ASSERT_STR_EQ(al_ws_error_code((r), NULL), (code))

/* ------------------------------------------------------------ the checker */

static void path_checker(void) {
        al_error e = {0};
        char long_comp[300], long_path[AL_WS_PATH_MAX + 2];
        memset(long_comp, 'a', 256);
        long_comp[256] = '\0';
        for (size_t i = 0; i < sizeof(long_path) - 1; i++)
                long_path[i] = (i % 100 == 99) ? '/' : 'b';
        long_path[sizeof(long_path) - 1] = '\0';
        const char *bad[] = {"",        "/etc/passwd", "../x",    "a/../../x",
                             "..",      ".",           "a/./b",   "./a",
                             "a//b",    "a/",          "a\nb",    "\x7f",
                             "caf\xc3", "\xff.txt",    long_comp, long_path};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                e.code = 0;
                int r = al_ws_path_check(bad[i], strlen(bad[i]), false, &e);
                if (r != -EINVAL)
                        printf("#   accepted bad path #%zu\n", i);
                ASSERT_INT_EQ(r, -EINVAL);
                ASSERT_INT_EQ(e.code, EINVAL);
                ASSERT_CODE(r, "bad_path");
        }
        /* a NUL decoded from %00 is caught when the length is given */
        ASSERT_INT_EQ(al_ws_path_check("a\0/../../etc/passwd", 19, false, &e),
                      -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "NUL") != NULL);
        long_comp[255] = '\0';
        const char *good[] = {"a",   "a/b.c",   ".hidden", "..a",
                              "a..", "é/ü.txt", long_comp};
        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ASSERT_INT_EQ(
                        al_ws_path_check(good[i], strlen(good[i]), false, &e),
                        0);
        ASSERT_INT_EQ(al_ws_path_check("", 0, true, &e), 0);
        ASSERT_INT_EQ(al_ws_path_check(".", 1, true, &e), 0);
        ASSERT_INT_EQ(al_ws_path_check("..", 2, true, &e), -EINVAL);
}

/* Each call refuses the escapes before touching the disk. */
static void escapes_refused(void) {
        al_error e = {0};
        char *data = NULL;
        size_t len = 0;
        json_t *j = NULL;
        ASSERT_INT_EQ(ws_new(), 0);
        const char *esc[] = {"../x", "a/../../x", "/etc/passwd", "../ws0"};
        for (size_t i = 0; i < ARRAY_SIZE(esc); i++) {
                ASSERT_INT_EQ(
                        al_ws_put(ws, esc[i], "pwned", 5, -1, -1, 100, &e),
                        -EINVAL);
                ASSERT_INT_EQ(al_ws_get(ws, esc[i], 1 << 20, &data, &len, &e),
                              -EINVAL);
                ASSERT_TRUE(data == NULL);
                ASSERT_INT_EQ(al_ws_delete(ws, esc[i], &e), -EINVAL);
                ASSERT_INT_EQ(al_ws_list(ws, esc[i], &j, &e), -EINVAL);
                ASSERT_TRUE(j == NULL);
        }
        ASSERT_TRUE(strstr(e.msg, "..") || strstr(e.msg, "absolute"));
        ASSERT_TRUE(outside_intact());
        ASSERT_TRUE(strcmp(content("/etc/passwd"), "pwned") != 0);
}

/* ------------------------------------------------------------ happy paths */

static void roundtrip_binary(void) {
        al_error e = {0};
        unsigned char in[3000];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (unsigned char)(i * 7 + (i >> 8));
        in[10] = 0;
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "data/in.bin", in, sizeof(in), -1, -1,
                                sizeof(in), &e),
                      0);
        char *out = NULL;
        size_t len = 0;
        ASSERT_INT_EQ(al_ws_get(ws, "data/in.bin", sizeof(in), &out, &len, &e),
                      0);
        ASSERT_INT_EQ(len, sizeof(in));
        ASSERT_TRUE(memcmp(out, in, len) == 0);
        free(out);
        /* an empty file is a file too */
        ASSERT_INT_EQ(al_ws_put(ws, "empty", "", 0, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(al_ws_get(ws, "empty", 10, &out, &len, &e), 0);
        ASSERT_INT_EQ(len, 0);
        free(out);
        /* a second put replaces the first, and leaves no temporary file */
        ASSERT_INT_EQ(al_ws_put(ws, "data/in.bin", "v2", 2, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(al_ws_get(ws, "data/in.bin", 10, &out, &len, &e), 0);
        ASSERT_INT_EQ(len, 2);
        ASSERT_TRUE(memcmp(out, "v2", 2) == 0);
        free(out);
        json_t *j = NULL;
        ASSERT_INT_EQ(al_ws_list(ws, "data", &j, &e), 0);
        ASSERT_INT_EQ(json_array_size(j), 1);
        json_decref(j);
}

/* Parents are made 0755 and the file 0644, all owned by the uid given. */
static void nested_owned(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        uid_t uid = 12345;
        gid_t gid = 23456;
        if (geteuid() != 0) { /* only root gives files away */
                uid = geteuid();
                gid = getegid();
        }
        /* as a sandbox's: the workspace belongs to the ids its code runs
         * as, and the files API writes as them */
        ASSERT_INT_EQ(fchown(ws, uid, gid), 0);
        mode_t old = umask(077); /* the caller's umask must not matter */
        int r = al_ws_put(ws, "a/b/c/f.txt", "x", 1, uid, gid, 10, &e);
        umask(old);
        ASSERT_INT_EQ(r, 0);
        const char *dirs[] = {"a", "a/b", "a/b/c"};
        struct stat st;
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                ASSERT_INT_EQ(fstatat(ws, dirs[i], &st, AT_SYMLINK_NOFOLLOW),
                              0);
                ASSERT_TRUE(S_ISDIR(st.st_mode));
                ASSERT_INT_EQ(st.st_mode & 07777, 0755);
                ASSERT_INT_EQ(st.st_uid, uid);
                ASSERT_INT_EQ(st.st_gid, gid);
        }
        ASSERT_INT_EQ(fstatat(ws, "a/b/c/f.txt", &st, AT_SYMLINK_NOFOLLOW), 0);
        ASSERT_TRUE(S_ISREG(st.st_mode));
        ASSERT_INT_EQ(st.st_mode & 07777, 0644);
        ASSERT_INT_EQ(st.st_uid, uid);
        ASSERT_INT_EQ(st.st_gid, gid);
}

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

static void list_types(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "b.txt", "hello", 5, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "a/inner", "1", 1, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(plant("c-link", "/etc/shadow"), 0);
        ASSERT_INT_EQ(mkfifoat(ws, "d-fifo", 0644), 0);
        json_t *j = NULL;
        ASSERT_INT_EQ(al_ws_list(ws, "", &j, &e), 0);
        ASSERT_INT_EQ(json_array_size(j), 4);
        const char *want[][2] = {{"a", "dir"},
                                 {"b.txt", "file"},
                                 {"c-link", "symlink"},
                                 {"d-fifo", "other"}};
        for (size_t i = 0; i < 4; i++) {
                json_t *o = json_array_get(j, i);
                ASSERT_STR_EQ(jstr(o, "name"), want[i][0]);
                ASSERT_STR_EQ(jstr(o, "type"), want[i][1]);
                ASSERT_TRUE(jstr(o, "mtime") && strlen(jstr(o, "mtime")) == 24);
        }
        ASSERT_INT_EQ(json_integer_value(
                              json_object_get(json_array_get(j, 1), "size")),
                      5);
        json_decref(j);
        j = NULL;
        ASSERT_INT_EQ(al_ws_list(ws, "a", &j, &e), 0);
        ASSERT_INT_EQ(json_array_size(j), 1);
        ASSERT_STR_EQ(jstr(json_array_get(j, 0), "name"), "inner");
        json_decref(j);
        j = NULL;
        int r = al_ws_list(ws, "nope", &j, &e);
        ASSERT_INT_EQ(r, -ENOENT);
        ASSERT_CODE(r, "file_not_found");
        r = al_ws_list(ws, "b.txt", &j, &e);
        ASSERT_INT_EQ(r, -ENOTDIR);
        ASSERT_CODE(r, "not_a_directory");
        ASSERT_TRUE(j == NULL);
}

/* A listing is bounded, and says how many entries it left out: past
 * AL_WS_LIST_MAX, and names that are not UTF-8 (no JSON string holds
 * them). */
static void list_left_out(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        for (int i = 0; i <= AL_WS_LIST_MAX; i++) {
                char n[32];
                snprintf(n, sizeof(n), "f%05d", i);
                int fd = openat(ws, n, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                ASSERT_TRUE(fd >= 0);
                close(fd);
        }
        int fd = openat(ws, "bad\xff", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        json_t *j = NULL;
        ASSERT_INT_EQ(al_ws_list(ws, ".", &j, &e), 2);
        ASSERT_INT_EQ(json_array_size(j), AL_WS_LIST_MAX);
        json_decref(j);
}

static void delete_entries(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "d/f", "1", 1, -1, -1, 10, &e), 0);
        int r = al_ws_delete(ws, "d", &e);
        ASSERT_INT_EQ(r, -ENOTEMPTY);
        ASSERT_CODE(r, "directory_not_empty");
        ASSERT_INT_EQ(al_ws_delete(ws, "d/f", &e), 0);
        ASSERT_INT_EQ(al_ws_delete(ws, "d", &e), 0);
        r = al_ws_delete(ws, "d", &e);
        ASSERT_INT_EQ(r, -ENOENT);
        ASSERT_CODE(r, "file_not_found");
        /* a link is removed, never its target */
        char t[4200];
        snprintf(t, sizeof(t), "%s/decoy", outside);
        ASSERT_INT_EQ(plant("l", t), 0);
        ASSERT_INT_EQ(al_ws_delete(ws, "l", &e), 0);
        ASSERT_TRUE(exists(t));
        ASSERT_TRUE(outside_intact());
        struct stat st;
        ASSERT_TRUE(fstatat(ws, "l", &st, AT_SYMLINK_NOFOLLOW) < 0);
}

/* ------------------------------------------------------------ the attacks */

/* The code plants /workspace/shadow -> /etc/shadow; a client GETs it. */
static void symlink_shadow_get(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(plant("shadow", "/etc/shadow"), 0);
        char *data = NULL;
        size_t len = 0;
        int r = al_ws_get(ws, "shadow", 1 << 20, &data, &len, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        ASSERT_CODE(r, "bad_path");
        ASSERT_TRUE(data == NULL);
        ASSERT_TRUE(strstr(e.msg, "shadow is a symbolic link") != NULL);
}

/* ... and PUTs through a link to a host file (a decoy, not the real
 * /etc/shadow: a failure must not damage the test host). */
static void symlink_put_through(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        char t[4200];
        snprintf(t, sizeof(t), "%s/decoy", outside);
        ASSERT_INT_EQ(plant("passwd", t), 0);
        int r = al_ws_put(ws, "passwd", "pwned", 5, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        ASSERT_CODE(r, "bad_path");
        ASSERT_TRUE(strstr(e.msg, "passwd is a symbolic link") != NULL);
        ASSERT_TRUE(outside_intact());
        struct stat st;
        ASSERT_INT_EQ(fstatat(ws, "passwd", &st, AT_SYMLINK_NOFOLLOW), 0);
        ASSERT_TRUE(S_ISLNK(st.st_mode));
}

/* A link to a directory outside, as a middle component. */
static void symlink_middle(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(plant("etc", "/etc"), 0);
        ASSERT_INT_EQ(plant("out", outside), 0);
        ASSERT_INT_EQ(mkdirat(ws, "sub", 0755), 0);
        ASSERT_INT_EQ(symlinkat("../../", ws, "sub/up"), 0);
        char *data = NULL;
        size_t len = 0;
        int r = al_ws_get(ws, "etc/passwd", 1 << 20, &data, &len, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        ASSERT_TRUE(strstr(e.msg, ": etc is a symbolic link") != NULL);
        ASSERT_TRUE(data == NULL);
        r = al_ws_get(ws, "sub/up/x", 1 << 20, &data, &len, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        ASSERT_TRUE(strstr(e.msg, "sub/up is a symbolic link") != NULL);
        r = al_ws_put(ws, "out/new.txt", "pwned", 5, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        r = al_ws_put(ws, "sub/up/x", "pwned", 5, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        r = al_ws_put(ws, "out/deeper/new.txt", "pwned", 5, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        r = al_ws_delete(ws, "out/decoy", &e);
        ASSERT_INT_EQ(r, -ELOOP);
        json_t *j = NULL;
        r = al_ws_list(ws, "out", &j, &e);
        ASSERT_INT_EQ(r, -ELOOP);
        ASSERT_CODE(r, "bad_path");
        ASSERT_TRUE(j == NULL);
        ASSERT_TRUE(outside_intact());
        char p[4200];
        snprintf(p, sizeof(p), "%s/deeper", outside);
        ASSERT_TRUE(!exists(p));
}

/* Links to another session's workspace, absolute and relative. */
static void symlink_other_workspace(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        char t[4200];
        snprintf(t, sizeof(t), "%s/secret", other);
        ASSERT_INT_EQ(plant("peer", other), 0);
        ASSERT_INT_EQ(plant("peer-rel", "../other"), 0);
        ASSERT_INT_EQ(plant("peer-file", t), 0);
        const char *paths[] = {"peer/secret", "peer-rel/secret", "peer-file"};
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
                char *data = NULL;
                size_t len = 0;
                int r = al_ws_get(ws, paths[i], 1 << 20, &data, &len, &e);
                ASSERT_INT_EQ(r, -ELOOP);
                ASSERT_TRUE(data == NULL);
                r = al_ws_put(ws, paths[i], "pwned", 5, -1, -1, 100, &e);
                ASSERT_INT_EQ(r, -ELOOP);
        }
        ASSERT_TRUE(outside_intact());
}

/* GET of a fifo answers at once (a blocking open would hang the server:
 * alarm() in main turns a hang into a failure) and of a socket too. */
static void fifo_socket_get(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(mkfifoat(ws, "pipe", 0666), 0);
        char *data = NULL;
        size_t len = 0;
        int r = al_ws_get(ws, "pipe", 1 << 20, &data, &len, &e);
        ASSERT_INT_EQ(r, -ENODEV);
        ASSERT_CODE(r, "not_a_regular_file");
        int status = 0;
        al_ws_error_code(r, &status);
        ASSERT_INT_EQ(status, 409);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(s >= 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s/sock", ws_path);
        int b = bind(s, (struct sockaddr *)&a, sizeof(a));
        close(s);
        ASSERT_INT_EQ(b, 0);
        r = al_ws_get(ws, "sock", 1 << 20, &data, &len, &e);
        ASSERT_INT_EQ(r, -ENODEV);
        ASSERT_TRUE(data == NULL);
        /* a put replaces the fifo by a file, and never opens it */
        ASSERT_INT_EQ(al_ws_put(ws, "pipe", "ok", 2, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(al_ws_get(ws, "pipe", 10, &data, &len, &e), 0);
        ASSERT_STR_EQ(data, "ok");
        free(data);
}

static void directory_in_the_way(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(mkdirat(ws, "d", 0755), 0);
        char *data = NULL;
        size_t len = 0;
        int r = al_ws_get(ws, "d", 100, &data, &len, &e);
        ASSERT_INT_EQ(r, -EISDIR);
        ASSERT_CODE(r, "is_a_directory");
        r = al_ws_put(ws, "d", "x", 1, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -EISDIR);
        /* a file where a parent directory should be */
        ASSERT_INT_EQ(al_ws_put(ws, "f.txt", "x", 1, -1, -1, 100, &e), 0);
        r = al_ws_put(ws, "f.txt/y", "x", 1, -1, -1, 100, &e);
        ASSERT_INT_EQ(r, -ENOTDIR);
        ASSERT_CODE(r, "not_a_directory");
        ASSERT_TRUE(strstr(e.msg, "f.txt is not a directory") != NULL);
        r = al_ws_get(ws, "f.txt/y", 100, &data, &len, &e);
        ASSERT_INT_EQ(r, -ENOTDIR);
}

static void size_caps(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        char big[1000];
        memset(big, 'z', sizeof(big));
        int r = al_ws_put(ws, "big", big, sizeof(big), -1, -1, 999, &e);
        ASSERT_INT_EQ(r, -EFBIG);
        ASSERT_CODE(r, "file_too_large");
        int status = 0;
        al_ws_error_code(r, &status);
        ASSERT_INT_EQ(status, 413);
        struct stat st;
        ASSERT_TRUE(fstatat(ws, "big", &st, AT_SYMLINK_NOFOLLOW) < 0);
        ASSERT_INT_EQ(al_ws_put(ws, "big", big, sizeof(big), -1, -1, 1000, &e),
                      0);
        char *data = NULL;
        size_t len = 0;
        r = al_ws_get(ws, "big", 999, &data, &len, &e);
        ASSERT_INT_EQ(r, -EFBIG);
        ASSERT_TRUE(data == NULL);
        ASSERT_INT_EQ(al_ws_get(ws, "big", 1000, &data, &len, &e), 0);
        ASSERT_INT_EQ(len, 1000);
        free(data);
}

/* A hard link to a file outside can only exist when the workspace shares
 * its filesystem (here, a directory of /tmp; never the sandbox's own
 * tmpfs): a put replaces the name, it never writes through it. */
static void hard_link_put(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        char t[4200];
        snprintf(t, sizeof(t), "%s/decoy", outside);
        ASSERT_INT_EQ(linkat(AT_FDCWD, t, ws, "hl", 0), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "hl", "pwned", 5, -1, -1, 100, &e), 0);
        ASSERT_TRUE(outside_intact());
}

/* ------------------------------------------------ openat2 refused */

/* In a child whose seccomp filter answers openat2 with errnum: the files
 * API still works and still refuses the links, through the walk. */
static int filtered_child(int errnum) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(errnum), SCMP_SYS(openat2),
                             0) < 0 ||
            seccomp_load(ctx) < 0)
                return 10;
        seccomp_release(ctx);
        al_error e = {0};
        char *data = NULL;
        size_t len = 0;
        if (al_ws_get(ws, "f", 10, &data, &len, &e) != 0 ||
            strcmp(data, "ok") != 0) {
                printf("#   get f: %s\n", e.msg);
                return 1;
        }
        if (al_ws_get(ws, "shadow", 1 << 20, &data, &len, &e) != -ELOOP)
                return 2;
        if (al_ws_get(ws, "etc/passwd", 1 << 20, &data, &len, &e) != -ELOOP)
                return 3;
        if (al_ws_put(ws, "out/new.txt", "pwned", 5, -1, -1, 100, &e) != -ELOOP)
                return 4;
        if (al_ws_put(ws, "g", "ok", 2, -1, -1, 100, &e) != 0)
                return 5;
        return 0;
}

static void filtered(int errnum) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        ASSERT_INT_EQ(al_ws_put(ws, "f", "ok", 2, -1, -1, 10, &e), 0);
        ASSERT_INT_EQ(plant("shadow", "/etc/shadow"), 0);
        ASSERT_INT_EQ(plant("etc", "/etc"), 0);
        ASSERT_INT_EQ(plant("out", outside), 0);
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(filtered_child(errnum));
        int status = 0;
        ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_INT_EQ(WEXITSTATUS(status), 0);
        ASSERT_TRUE(outside_intact());
}

/* An old kernel. */
static void openat2_enosys(void) {
        filtered(ENOSYS);
}

/* A container runtime's filter that refuses what it does not know. */
static void openat2_eperm(void) {
        filtered(EPERM);
}

/* ------------------------------------------------ in a mount namespace */

static const char *mountns_why; /* NULL when we have one */

static int mount_tmpfs(const char *dir, const char *opts) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return mount("airlock-test", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) <
                               0
                       ? -errno
                       : 0;
}

/* A mount inside the workspace is not crossed (RESOLVE_NO_XDEV). */
static void mount_point(void) {
        al_error e = {0};
        ASSERT_INT_EQ(ws_new(), 0);
        char p[4200];
        snprintf(p, sizeof(p), "%s/mnt", ws_path);
        ASSERT_INT_EQ(mount_tmpfs(p, "size=64k"), 0);
        snprintf(p, sizeof(p), "%s/mnt/x", ws_path);
        int w = write_file(p, "other fs");
        char *data = NULL;
        size_t len = 0;
        int r = al_ws_get(ws, "mnt/x", 100, &data, &len, &e);
        snprintf(p, sizeof(p), "%s/mnt", ws_path);
        umount2(p, MNT_DETACH);
        ASSERT_INT_EQ(w, 0);
        ASSERT_INT_EQ(r, -EXDEV);
        ASSERT_CODE(r, "bad_path");
        ASSERT_TRUE(strstr(e.msg, "mnt is a mount point") != NULL);
        ASSERT_TRUE(data == NULL);
}

/* A workspace tmpfs that is full: a clear error, and no partial file. */
static void disk_full(void) {
        al_error e = {0};
        char p[4200];
        static int n;
        snprintf(p, sizeof(p), "%s/full%d", base, n++);
        ASSERT_INT_EQ(mount_tmpfs(p, "size=64k"), 0);
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        umount2(p, MNT_DETACH); /* the fd keeps it alive; nothing leaks */
        ASSERT_TRUE(fd >= 0);
        size_t big = 1 << 20;
        char *buf = calloc(1, big);
        int r = al_ws_put(fd, "big.bin", buf, big, -1, -1, big, &e);
        free(buf);
        json_t *j = NULL;
        int l = al_ws_list(fd, "", &j, &e);
        int r2 = al_ws_put(fd, "small", "ok", 2, -1, -1, 10, &e);
        close(fd);
        ASSERT_INT_EQ(r, -ENOSPC);
        ASSERT_CODE(r, "workspace_full");
        int status = 0;
        al_ws_error_code(r, &status);
        ASSERT_INT_EQ(status, 507);
        ASSERT_INT_EQ(l, 0);
        ASSERT_INT_EQ(json_array_size(j), 0); /* no temporary file left */
        json_decref(j);
        ASSERT_INT_EQ(r2, 0); /* and the space came back */
}

/* Our own namespace, so nothing mounted here reaches the host. */
static void probe_mountns(void) {
        static char why[160];
        if (unshare(CLONE_NEWNS) < 0) {
                snprintf(why, sizeof(why), "unshare(CLONE_NEWNS): %s",
                         strerror(errno));
                mountns_why = why;
        } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                snprintf(why, sizeof(why), "make / private: %s",
                         strerror(errno));
                mountns_why = why;
        }
}

/* ------------------------------------------------------------ main */

static char name[128];
static const char *mode;

#define T(fn)                                                                  \
        do {                                                                   \
                snprintf(name, sizeof(name), "%s (%s)", #fn, mode);            \
                RUN_NAMED(fn, name);                                           \
        } while (0)
#define T_NS(fn)                                                               \
        do {                                                                   \
                snprintf(name, sizeof(name), "%s (%s)", #fn, mode);            \
                if (mountns_why) {                                             \
                        tap_n++;                                               \
                        printf("ok %d - %s # SKIP %s\n", tap_n, name,          \
                               mountns_why);                                   \
                } else {                                                       \
                        RUN_NAMED(fn, name);                                   \
                }                                                              \
        } while (0)

int main(void) {
        alarm(120); /* a GET that blocked on a fifo fails, never hangs */
        char p[4200];
        if (!mkdtemp(base)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        probe_mountns();
        /* A tmpfs, as the sandbox's workspace is (and creating the 10001
         * files of list_left_out costs seconds on ext4). */
        bool on_tmpfs =
                !mountns_why && mount("airlock-test", base, "tmpfs",
                                      MS_NOSUID | MS_NODEV, "size=64m") == 0;
        printf("# workspaces on %s\n", on_tmpfs ? "a tmpfs" : base);
        snprintf(outside, sizeof(outside), "%s/outside", base);
        snprintf(other, sizeof(other), "%s/other", base);
        snprintf(p, sizeof(p), "%s/decoy", outside);
        char q[4200];
        snprintf(q, sizeof(q), "%s/secret", other);
        if (mkdir(outside, 0755) < 0 || mkdir(other, 0755) < 0 ||
            write_file(p, decoy) < 0 || write_file(q, secret) < 0) {
                printf("Bail out! cannot build the tree under %s\n", base);
                return 1;
        }

        struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                               .resolve = RESOLVE_BENEATH};
        long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
        if (fd < 0)
                printf("# openat2: %s: both passes use the walk\n",
                       strerror(errno));
        else
                close((int)fd);

        for (int walk = 0; walk < 2; walk++) {
                al_ws_test_no_openat2 = walk;
                mode = walk ? "component walk" : "openat2";
                T(path_checker);
                T(escapes_refused);
                T(roundtrip_binary);
                T(nested_owned);
                T(list_types);
                T(list_left_out);
                T(delete_entries);
                T(symlink_shadow_get);
                T(symlink_put_through);
                T(symlink_middle);
                T(symlink_other_workspace);
                T(fifo_socket_get);
                T(directory_in_the_way);
                T(size_caps);
                T(hard_link_put);
                T_NS(mount_point);
                T_NS(disk_full);
        }
        al_ws_test_no_openat2 = false;
        RUN(openat2_enosys);
        RUN(openat2_eperm);
        if (ws >= 0)
                close(ws);
        if (on_tmpfs)
                umount2(base, MNT_DETACH);
        snprintf(p, sizeof(p), "rm -rf %s", base);
        if (system(p) != 0)
                printf("# could not remove %s\n", base);
        TAP_END();
}
