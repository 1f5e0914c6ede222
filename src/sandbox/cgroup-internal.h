/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Private to the cgroup backends (cgroup.c: interface, file helpers, the
 * "none" case; cgroup-v2.c and cgroup-v1.c: probing, limits, statistics).
 * Tests include it for the fake-tree switch.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"

/* Longest path built here: a probed parent (512) plus "/" and a run name. */
#define CG_PATH_MAX 640
/* A run name is one path component; systemd's own unit names stop at 255. */
#define CG_NAME_MAX 128
/* Cap on any control file read whole (cgroup.controllers, memory.events,
 * /proc/self/cgroup ...): the largest is a few hundred bytes. */
#define CG_FILE_MAX 8192
/* Leaf the operator may start airlock in, under a delegated v2 cgroup: runs
 * are then created beside it, in the delegated cgroup (see cgroup-v2.c). */
#define CG_SUPERVISOR_LEAF "airlock-supervisor"

/* Controllers, as bits and as indexes into cg_ctl_names. */
enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_NCTL };
#define CG_BIT(c) (1u << (c))
extern const char *const cg_ctl_names[CG_NCTL];

/* The process's own cgroups, from a /proc/self/cgroup-format file. */
typedef struct cg_self {
        bool have_v2;
        char v2[CG_PATH_MAX]; /* path of the "0::" line */
        struct {
                bool found;
                char mount[128];        /* "cpu,cpuacct" as listed */
                char path[CG_PATH_MAX]; /* "/" or "/a/b" */
        } v1[CG_NCTL];
} cg_self;

/* One directory of a run: a single one on v2, one per hierarchy on v1. */
struct cg_dir {
        int fd;       /* directory fd, -1 if not open */
        unsigned ctl; /* CG_BIT()s served by this directory */
        bool created; /* we made it, so we remove it */
        char path[CG_PATH_MAX];
};

struct al_cgroup {
        enum al_cg_kind kind;
        size_t n;
        struct cg_dir dir[CG_NCTL];
};

/* Test hook. A fake tree is plain files in a temp dir: control files are
 * created on first write (real cgroupfs forbids O_CREAT), the cgroupfs
 * magic of the mount is not checked, and destroy unlinks regular files
 * before rmdir (cgroupfs removes them with the directory). Off by default;
 * only tests turn it on. */
void al_cgroup_set_fake_tree(bool on);
bool cg_fake_tree(void);
/* Test hook: the kernel command line the v2 probe reads for
 * cgroup.memory=nosocket (NULL: /proc/cmdline). */
void al_cgroup_set_cmdline_path(const char *path);
const char *cg_cmdline_path(void);

/* ---- helpers (cgroup.c) ---- */

/* Read a whole small file relative to dfd (AT_FDCWD for a path) into buf,
 * NUL-terminated. Returns the length, or -errno (-EFBIG if it does not fit). */
int cg_read_at(int dfd, const char *name, char *buf, size_t size);
/* Write value in one write(2), as cgroupfs requires. CG_W_KERNEL: a file the
 * kernel provides (created in a fake tree); CG_W_OPTIONAL: never created, so
 * a missing one fails with -ENOENT in every mode. */
enum { CG_W_KERNEL, CG_W_OPTIONAL };
int cg_write_at(int dfd, const char *name, const char *value, int how);
int cg_write_u64_at(int dfd, const char *name, uint64_t v, int how);
bool cg_exists_at(int dfd, const char *name);
/* Strict decimal: digits up to whitespace or NUL, no sign, no overflow. */
int cg_parse_u64(const char *s, uint64_t *ret);
/* The value of the "key N" line of a flat-keyed file. -ENOENT if absent. */
int cg_keyed_u64(const char *buf, const char *key, uint64_t *ret);
/* Whether the space-separated list holds word. */
bool cg_has_word(const char *list, const char *word);
/* Whether path is (or links to) a directory. */
bool cg_is_dir(const char *path);
/* Whether path lies on a filesystem of that magic (always true in a fake
 * tree, where the check is skipped). */
bool cg_fs_is(const char *path, unsigned long magic);
/* Whether we may create run groups in parent (write permission on a
 * writable mount; a probe must not mkdir: it runs on every start). *ret_swap
 * (may be NULL) is set if parent has the file swap_file; creation checks
 * the new group again, since a root group lacks the file. */
int cg_can_create(const char *parent, const char *swap_file, bool *ret_swap);
/* Append "; "-separated text to p->reason (truncating). */
void cg_reason(al_cg_probe *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* "memory,pids" for a CG_BIT() mask. */
void cg_mask_names(unsigned mask, char *buf, size_t size);
/* SIGKILL every pid listed in dfd's cgroup.procs until a pass finds none
 * that was not signalled already (processes forking while we kill). */
int cg_kill_procs(int dfd);

/* ---- backends ---- */
void cg_v2_probe(const cg_self *self, al_cg_probe *p);
int cg_v2_limits(struct al_cgroup *cg, const al_cg_probe *p,
                 const al_cg_limits *l, al_error *err);
void cg_v2_stats(struct al_cgroup *cg, al_cg_stats *st);
int cg_v2_kill(struct al_cgroup *cg);

void cg_v1_probe(const cg_self *self, al_cg_probe *p);
int cg_v1_limits(struct al_cgroup *cg, const al_cg_probe *p,
                 const al_cg_limits *l, al_error *err);
void cg_v1_stats(struct al_cgroup *cg, al_cg_stats *st);
