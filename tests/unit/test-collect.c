/* SPDX-License-Identifier: MIT */
/* The collect step (run.c al_collect_files): a walk that a cancel and a
 * deadline stop, saying so in files_note, and never silently. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock.h"
#include "spec.h"
#include "tap.h"

static char root[] = "/tmp/airlock-test-collect-XXXXXX";

/* 20 files at depth 16 (and one .png beside them). */
static int make_tree(void) {
        char p[4096];
        snprintf(p, sizeof(p), "%s", root);
        for (int i = 0; i < 16; i++) {
                size_t n = strlen(p);
                snprintf(p + n, sizeof(p) - n, "/d%d", i);
                if (mkdir(p, 0700) < 0)
                        return -errno;
        }
        for (int i = 0; i <= 20; i++) {
                char f[4200];
                snprintf(f, sizeof(f), "%s/%s%d.%s", p, i < 20 ? "f" : "img",
                         i, i < 20 ? "txt" : "png");
                int fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                if (write(fd, "x", 1) != 1) {
                        close(fd);
                        return -EIO;
                }
                close(fd);
        }
        return 0;
}

static char *globs[1];

static void run_collect(int cancel_fd, uint64_t max_ms, al_result *r,
                        int *ret) {
        int ws = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct al_collect_caps caps = {.max_files = 64,
                                       .max_file = 1 << 20,
                                       .max_total = 1 << 20,
                                       .max_ms = max_ms,
                                       .cancel_fd = cancel_fd};
        *ret = al_collect_files(ws, globs, 1, &caps, r);
        close(ws);
}

static void free_files(al_result *r) {
        for (size_t i = 0; i < r->n_files; i++) {
                free(r->files[i].name);
                free(r->files[i].mime);
                free(r->files[i].data);
        }
        free(r->files);
}

/* 12 "**" against the deep tree: the right single file. */
static void deep_dstar(void) {
        static char pat[256] = "";
        for (int i = 0; i < 12; i++)
                strncat(pat, "**/", sizeof(pat) - strlen(pat) - 1);
        strncat(pat, "*.png", sizeof(pat) - strlen(pat) - 1);
        globs[0] = pat;
        al_result r = {0};
        int rc;
        run_collect(-1, 60000, &r, &rc);
        ASSERT_INT_EQ(rc, 0);
        ASSERT_INT_EQ(r.n_files, 1);
        ASSERT_TRUE(strstr(r.files[0].name, "/d15/img20.png") != NULL);
        ASSERT_STR_EQ(r.files_note, "");
        free_files(&r);
}

/* A cancel (e.g. serve's shutdown eventfd) stops the walk: no file, and
 * the note says why. */
static void cancel_stops(void) {
        globs[0] = "**";
        int efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        ASSERT_TRUE(efd >= 0);
        al_result r = {0};
        int rc;
        run_collect(efd, 60000, &r, &rc);
        close(efd);
        ASSERT_INT_EQ(rc, 0);
        ASSERT_INT_EQ(r.n_files, 0);
        ASSERT_TRUE(strstr(r.files_note, "cancelled") != NULL);
        free_files(&r);
}

/* A spent deadline stops it too (a zero budget: nothing is timed). */
static void deadline_stops(void) {
        globs[0] = "**";
        al_result r = {0};
        int rc;
        run_collect(-1, 0, &r, &rc);
        ASSERT_INT_EQ(rc, 0);
        ASSERT_TRUE(r.n_files < 21);
        ASSERT_TRUE(strstr(r.files_note, "collect time cap") != NULL);
        free_files(&r);
}

/* Collect patterns over the caps are refused where every door adds
 * them. */
static void pattern_caps(void) {
        al_spec *s = al_spec_new();
        al_error e = {0};
        char pat[256] = "";
        for (int i = 0; i < 30; i++)
                strncat(pat, "**/", sizeof(pat) - strlen(pat) - 1);
        ASSERT_TRUE(al_spec_add_collect(s, pat, &e) < 0);
        ASSERT_TRUE(strstr(e.msg, "more than 16 '**'") != NULL);
        ASSERT_INT_EQ(al_spec_add_collect(s, "**/**/*.txt", &e), 0);
        al_spec_free(s);
}

int main(void) {
        if (!mkdtemp(root) || make_tree() < 0) {
                printf("Bail out! cannot build the tree under /tmp\n");
                return 1;
        }
        RUN(deep_dstar);
        RUN(cancel_stops);
        RUN(deadline_stops);
        RUN(pattern_caps);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", root);
        TAP_END();
}
