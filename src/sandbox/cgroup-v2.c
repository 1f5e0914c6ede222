/* SPDX-License-Identifier: MIT */
/*
 * cgroup v2 backend: one directory per run, in the unified hierarchy.
 *
 * Where runs go. Under v2 a cgroup that holds processes cannot enable
 * memory for its children (the "no internal process" rule: writing +memory
 * to its cgroup.subtree_control fails with EBUSY), and the supervisor's own
 * cgroup always holds the supervisor. So:
 *
 *  - own cgroup is the root of the tree ("0::/", e.g. a container started
 *    with a private cgroup namespace whose cgroupfs is writable, or a host
 *    without systemd), or has no processes: runs go under it;
 *  - own cgroup is a leaf named airlock-supervisor: runs go beside it, in
 *    its parent, which the operator delegated to airlock. This is systemd's
 *    documented layout for delegation ("a delegated cgroup's owner moves
 *    its own processes into a leaf"); a unit or wrapper sets it up:
 *
 *        systemd-run -p Delegate=yes [--user] --scope sh -c '
 *          cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
 *          mkdir "$cg/airlock-supervisor"
 *          echo $$ > "$cg/airlock-supervisor/cgroup.procs"
 *          exec airlock ...'
 *
 *  - anything else: the controllers are reported unusable, with that fix,
 *    and the caller falls back to rlimits. airlock never moves itself into
 *    another cgroup: that would change the limits its operator set for it.
 *
 * The needed controllers are enabled in the parent's cgroup.subtree_control
 * at probe time if they are available (cgroup.controllers) but not enabled.
 */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

/* cpu.max period, as systemd uses: quota = percent * 1000 per 100 ms. */
#define CG_CPU_PERIOD_US 100000

static const char deleg_fix[] =
        "to fix, start airlock in a leaf named " CG_SUPERVISOR_LEAF
        " of a delegated cgroup (systemd-run -p Delegate=yes)";

/* v2 charges socket buffers to the group's memory (memory.current, shown
 * as "sock" in memory.stat) unless the kernel was booted with
 * cgroup.memory=nosocket; there is no per-group switch, so the backend
 * writes nothing for it. */
static bool sock_off(void) {
        char buf[CG_FILE_MAX];
        if (cg_read_at(AT_FDCWD, cg_cmdline_path(), buf, sizeof(buf)) < 0)
                return false;
        for (char *w = buf; *w;) {
                w += strspn(w, " \t\n");
                size_t n = strcspn(w, " \t\n");
                static const char key[] = "cgroup.memory=";
                if (n > sizeof(key) - 1 &&
                    strncmp(w, key, sizeof(key) - 1) == 0) {
                        /* a comma-separated list: "nosocket,nokmem" */
                        for (char *o = w + sizeof(key) - 1; o < w + n;) {
                                size_t k = strcspn(o, ", \t\n");
                                if (k == 8 && strncmp(o, "nosocket", 8) == 0)
                                        return true;
                                o += k + 1;
                        }
                }
                w += n;
        }
        return false;
}

void cg_v2_probe(const cg_self *self, al_cg_probe *p) {
        if (!self->have_v2) {
                cg_reason(p, "cgroup v2: no \"0::\" line for this process");
                return;
        }
        /* The parent, relative to the root: own group, or its parent when
         * we run in the supervisor leaf. "" stands for the root. */
        char rel[CG_PATH_MAX];
        snprintf(rel, sizeof(rel), "%s", strcmp(self->v2, "/") ? self->v2 : "");
        char *slash = strrchr(rel, '/');
        if (slash && strcmp(slash + 1, CG_SUPERVISOR_LEAF) == 0)
                *slash = '\0';
        int k = snprintf(p->parent_v2, sizeof(p->parent_v2), "%s%s", p->root,
                         rel);
        if (k < 0 || (size_t)k >= sizeof(p->parent_v2)) {
                p->parent_v2[0] = '\0';
                cg_reason(p, "cgroup v2: path of %s too long", self->v2);
                return;
        }
        const char *shown = rel[0] ? rel : "/";

        _cleanup_close_ int dfd =
                open(p->parent_v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char avail[CG_FILE_MAX], enabled[CG_FILE_MAX];
        int r = dfd < 0 ? -errno : 0;
        if (r == 0)
                r = cg_read_at(dfd, "cgroup.controllers", avail, sizeof(avail));
        if (r >= 0)
                r = cg_read_at(dfd, "cgroup.subtree_control", enabled,
                               sizeof(enabled));
        if (r < 0) {
                cg_reason(p, "cgroup v2: cannot read the controllers of %s: %s",
                          shown, strerror(-r));
                return;
        }

        unsigned ok = 0, missing = 0, failed = 0;
        int fail_err = 0;
        for (int c = CG_MEMORY; c <= CG_CPU; c++) {
                const char *name = cg_ctl_names[c];
                if (!cg_has_word(avail, name)) {
                        missing |= CG_BIT(c);
                        continue;
                }
                if (!cg_has_word(enabled, name)) {
                        /* After one refusal, touch the tree no further:
                         * pids and cpu could still be enabled beside
                         * processes, in a cgroup that is not ours. */
                        if (fail_err) {
                                failed |= CG_BIT(c);
                                continue;
                        }
                        char cmd[32];
                        snprintf(cmd, sizeof(cmd), "+%s", name);
                        r = cg_write_at(dfd, "cgroup.subtree_control", cmd,
                                        CG_W_OPTIONAL);
                        if (r < 0) {
                                failed |= CG_BIT(c);
                                fail_err = r;
                                continue;
                        }
                }
                ok |= CG_BIT(c);
        }
        /* Refused memory or pids: the parent is not delegated to us (or
         * holds processes); use none of it. A refused cpu alone (e.g. a
         * realtime task in the group) costs only the CPU limit. */
        if (failed & (CG_BIT(CG_MEMORY) | CG_BIT(CG_PIDS)))
                ok = 0;

        char names[64];
        if (missing) {
                cg_mask_names(missing, names, sizeof(names));
                cg_reason(p, "cgroup v2: %s not delegated to %s", names, shown);
        }
        if (failed) {
                cg_mask_names(failed, names, sizeof(names));
                cg_reason(p,
                          "cgroup v2: cannot enable %s for children of %s: "
                          "%s%s",
                          names, shown, strerror(-fail_err),
                          fail_err == -EBUSY ? " (it holds processes)" : "");
        }

        bool swap = false;
        if (ok) {
                r = cg_can_create(p->parent_v2, "memory.swap.max", &swap);
                if (r < 0) {
                        cg_reason(p,
                                  "cgroup v2: cannot create cgroups in %s: "
                                  "%s",
                                  shown, strerror(-r));
                        ok = 0;
                }
        }
        if (p->reason[0])
                cg_reason(p, "%s", deleg_fix);
        p->memory = ok & CG_BIT(CG_MEMORY);
        p->pids = ok & CG_BIT(CG_PIDS);
        p->cpu = ok & CG_BIT(CG_CPU);
        /* cpu.stat is a core file: CPU time is accounted in any group. */
        p->cpuacct = ok != 0;
        p->swap = p->memory && swap;
        p->sock = p->memory && !sock_off();
        if (p->memory && !p->sock)
                cg_reason(p, "cgroup v2: cgroup.memory=nosocket: socket "
                             "buffers are not bounded by the memory limit");
        p->kind = p->memory || p->pids ? AL_CG_V2 : AL_CG_NONE;
}

static int set(struct cg_dir *d, const char *file, const char *value,
               al_error *err) {
        int r = cg_write_at(d->fd, file, value, CG_W_KERNEL);
        if (r < 0)
                return al_error_errno(err, -r, "write \"%s\" to %s/%s", value,
                                      d->path, file);
        return 0;
}

static int set_u64(struct cg_dir *d, const char *file, uint64_t v,
                   al_error *err) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return set(d, file, buf, err);
}

int cg_v2_limits(struct al_cgroup *cg, const al_cg_probe *p,
                 const al_cg_limits *l, al_error *err) {
        struct cg_dir *d = &cg->dir[0];
        int r;
        if (cg->n == 0)
                return al_error_set(err, EINVAL, "cgroup v2: no directory");
        if (p->memory) {
                if (l->memory_bytes &&
                    (r = set_u64(d, "memory.max", l->memory_bytes, err)) < 0)
                        return r;
                /* No swap: a run over its memory limit is killed, not
                 * slowed down to swap speed. */
                if ((p->swap || cg_exists_at(d->fd, "memory.swap.max")) &&
                    (r = set(d, "memory.swap.max", "0", err)) < 0)
                        return r;
                /* On OOM kill the whole run, not one of its processes
                 * (Linux >= 4.19; older kernels lack the file). */
                r = cg_write_at(d->fd, "memory.oom.group", "1", CG_W_OPTIONAL);
                if (r < 0 && r != -ENOENT)
                        return al_error_errno(err, -r, "write %s/%s", d->path,
                                              "memory.oom.group");
        }
        if (p->pids && l->pids &&
            (r = set_u64(d, "pids.max", l->pids, err)) < 0)
                return r;
        if (p->cpu && l->cpu_percent) {
                char buf[48];
                snprintf(buf, sizeof(buf), "%" PRIu64 " %u",
                         (uint64_t)l->cpu_percent * (CG_CPU_PERIOD_US / 100),
                         CG_CPU_PERIOD_US);
                if ((r = set(d, "cpu.max", buf, err)) < 0)
                        return r;
        }
        return 0;
}

void cg_v2_stats(struct al_cgroup *cg, al_cg_stats *st) {
        char buf[CG_FILE_MAX];
        uint64_t v, v2;
        int fd = cg->dir[0].fd;
        /* memory.peak exists since Linux 5.19. */
        if (cg_read_at(fd, "memory.peak", buf, sizeof(buf)) >= 0 &&
            cg_parse_u64(buf, &v) == 0) {
                st->memory_peak_bytes = v;
                st->have_memory_peak = true;
        }
        if (cg_read_at(fd, "cpu.stat", buf, sizeof(buf)) >= 0 &&
            cg_keyed_u64(buf, "usage_usec", &v) == 0) {
                st->cpu_usec = v;
                st->have_cpu = true;
        }
        /* oom_kill counts processes killed (each victim of a group kill
         * too); oom_group_kill counts group kills. Either being non-zero
         * means the run met its limit. */
        if (cg_read_at(fd, "memory.events", buf, sizeof(buf)) >= 0) {
                if (cg_keyed_u64(buf, "oom_kill", &v) == 0)
                        st->oom_kills = v;
                if (cg_keyed_u64(buf, "oom_group_kill", &v2) == 0 &&
                    v2 > st->oom_kills)
                        st->oom_kills = v2;
        }
        if (cg_read_at(fd, "pids.events", buf, sizeof(buf)) >= 0 &&
            cg_keyed_u64(buf, "max", &v) == 0)
                st->pids_denied = v;
}

int cg_v2_kill(struct al_cgroup *cg) {
        if (cg->n == 0)
                return 0;
        /* cgroup.kill (Linux >= 5.14) kills atomically, forks included. */
        int r = cg_write_at(cg->dir[0].fd, "cgroup.kill", "1", CG_W_OPTIONAL);
        if (r != -ENOENT)
                return r;
        return cg_kill_procs(cg->dir[0].fd);
}
