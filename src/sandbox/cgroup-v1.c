/* SPDX-License-Identifier: MIT */
/*
 * cgroup v1 backend: one directory per hierarchy (memory, pids, cpu,
 * cpuacct), each under the process's own group in that hierarchy. Co-mounted
 * hierarchies ("cpu,cpuacct", with cpu and cpuacct as symlinks to it) share
 * one directory. v1 has no no-internal-process rule, so runs simply go
 * under our own groups.
 */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CGROUP_SUPER_MAGIC 0x27e0ebUL
/* TCP buffer limit of a v1 memory group (CONFIG_MEMCG_KMEM kernels). */
#define CG_V1_TCP_LIMIT "memory.kmem.tcp.limit_in_bytes"
/* cpu.cfs_period_us; quota = percent * 1000 per 100 ms. */
#define CG_CPU_PERIOD_US 100000

/* Where hierarchy c is mounted: "<root>/<as listed>" ("cpu,cpuacct") or
 * "<root>/<name>" (the usual symlink to it). */
static int find_mount(const cg_self *self, const char *root, int c, char *buf,
                      size_t size) {
        const char *cand[] = {self->v1[c].mount, cg_ctl_names[c]};
        for (size_t i = 0; i < 2; i++) {
                int k = snprintf(buf, size, "%s/%s", root, cand[i]);
                if (k < 0 || (size_t)k >= size)
                        continue;
                if (cg_is_dir(buf) && cg_fs_is(buf, CGROUP_SUPER_MAGIC))
                        return 0;
        }
        buf[0] = '\0';
        return -ENOENT;
}

void cg_v1_probe(const cg_self *self, al_cg_probe *p) {
        char *parent[CG_NCTL] = {p->parent_memory, p->parent_pids,
                                 p->parent_cpu, p->parent_cpuacct};
        const size_t psize = sizeof(p->parent_memory);
        int res[CG_NCTL];
        unsigned ok = 0, unmounted = 0;
        bool swap = false, sock = false;

        for (int c = 0; c < CG_NCTL; c++) {
                char mnt[CG_PATH_MAX];
                res[c] = -ENOENT;
                if (!self->v1[c].found ||
                    find_mount(self, p->root, c, mnt, sizeof(mnt)) < 0) {
                        unmounted |= CG_BIT(c);
                        continue;
                }
                const char *path = self->v1[c].path;
                int k = snprintf(parent[c], psize, "%s%s", mnt,
                                 strcmp(path, "/") ? path : "");
                if (k < 0 || (size_t)k >= psize) {
                        parent[c][0] = '\0';
                        cg_reason(p, "cgroup v1: %s path too long",
                                  cg_ctl_names[c]);
                        continue;
                }
                /* Co-mounted hierarchies: same directory, same answer. */
                int same = -1;
                for (int o = 0; o < c; o++)
                        if (strcmp(parent[o], parent[c]) == 0)
                                same = o;
                if (same >= 0)
                        res[c] = res[same];
                else if (!cg_is_dir(parent[c]))
                        res[c] = -ENOENT;
                else
                        res[c] = cg_can_create(
                                parent[c],
                                c == CG_MEMORY ? "memory.memsw.limit_in_bytes"
                                               : NULL,
                                &swap);
                if (c == CG_MEMORY && res[c] == 0) {
                        char f[CG_PATH_MAX + sizeof(CG_V1_TCP_LIMIT)];
                        snprintf(f, sizeof(f), "%s/%s", parent[c],
                                 CG_V1_TCP_LIMIT);
                        sock = cg_exists_at(AT_FDCWD, f);
                }
                if (res[c] == 0)
                        ok |= CG_BIT(c);
                else if (same < 0)
                        cg_reason(p,
                                  "cgroup v1: cannot create %s cgroups in "
                                  "%s: %s%s",
                                  cg_ctl_names[c], parent[c], strerror(-res[c]),
                                  res[c] == -EACCES || res[c] == -EPERM ||
                                                  res[c] == -EROFS
                                          ? " (run as root or chown it rw)"
                                          : "");
        }
        if (unmounted) {
                char names[64];
                int first = __builtin_ctz(unmounted);
                cg_mask_names(unmounted, names, sizeof(names));
                cg_reason(p,
                          "cgroup v1: %s not mounted under %s (e.g. mount -t "
                          "cgroup -o %s cgroup %s/%s)",
                          names, p->root, cg_ctl_names[first], p->root,
                          cg_ctl_names[first]);
        }
        for (int c = 0; c < CG_NCTL; c++)
                if (!(ok & CG_BIT(c)))
                        parent[c][0] = '\0';
        p->memory = ok & CG_BIT(CG_MEMORY);
        p->pids = ok & CG_BIT(CG_PIDS);
        p->cpu = ok & CG_BIT(CG_CPU);
        p->cpuacct = ok & CG_BIT(CG_CPUACCT);
        /* memory.memsw.* exist only with swap accounting (swapaccount=1). */
        p->swap = p->memory && swap;
        p->sock = p->memory && sock;
        if (p->memory && !sock)
                cg_reason(p,
                          "cgroup v1: no %s: socket buffers are not bounded "
                          "by the memory limit",
                          CG_V1_TCP_LIMIT);
        p->kind = p->memory || p->pids ? AL_CG_V1 : AL_CG_NONE;
}

static int set_u64(struct cg_dir *d, const char *file, uint64_t v,
                   al_error *err) {
        int r = cg_write_u64_at(d->fd, file, v, CG_W_KERNEL);
        if (r < 0)
                return al_error_errno(err, -r, "write %" PRIu64 " to %s/%s", v,
                                      d->path, file);
        return 0;
}

int cg_v1_limits(struct al_cgroup *cg, const al_cg_probe *p,
                 const al_cg_limits *l, al_error *err) {
        int r;
        for (size_t i = 0; i < cg->n; i++) {
                struct cg_dir *d = &cg->dir[i];
                if ((d->ctl & CG_BIT(CG_MEMORY)) && l->memory_bytes) {
                        if ((r = set_u64(d, "memory.limit_in_bytes",
                                         l->memory_bytes, err)) < 0)
                                return r;
                        /* memory+swap = memory: no swap. After
                         * limit_in_bytes, which may never exceed it. */
                        if ((p->swap ||
                             cg_exists_at(d->fd,
                                          "memory.memsw.limit_in_bytes")) &&
                            (r = set_u64(d, "memory.memsw.limit_in_bytes",
                                         l->memory_bytes, err)) < 0)
                                return r;
                        /* v1 charges socket buffers to no counter until
                         * this file is written (it turns TCP accounting on
                         * for the group): without it, loopback TCP pairs
                         * queue hundreds of MB of kernel memory beside a
                         * small limit. Its own budget, as big as the
                         * memory limit; written before any process is in
                         * the group, since a socket is tied to its group
                         * when it is made. */
                        if (p->sock && (r = set_u64(d, CG_V1_TCP_LIMIT,
                                                    l->memory_bytes, err)) < 0)
                                return r;
                        /* Best effort: prefer reclaiming page cache. */
                        (void)cg_write_at(d->fd, "memory.swappiness", "0",
                                          CG_W_OPTIONAL);
                }
                if ((d->ctl & CG_BIT(CG_PIDS)) && l->pids &&
                    (r = set_u64(d, "pids.max", l->pids, err)) < 0)
                        return r;
                if ((d->ctl & CG_BIT(CG_CPU)) && l->cpu_percent) {
                        if ((r = set_u64(d, "cpu.cfs_period_us",
                                         CG_CPU_PERIOD_US, err)) < 0 ||
                            (r = set_u64(d, "cpu.cfs_quota_us",
                                         (uint64_t)l->cpu_percent *
                                                 (CG_CPU_PERIOD_US / 100),
                                         err)) < 0)
                                return r;
                }
        }
        return 0;
}

void cg_v1_stats(struct al_cgroup *cg, al_cg_stats *st) {
        char buf[CG_FILE_MAX];
        uint64_t v;
        for (size_t i = 0; i < cg->n; i++) {
                int fd = cg->dir[i].fd;
                unsigned ctl = cg->dir[i].ctl;
                if (ctl & CG_BIT(CG_MEMORY)) {
                        if (cg_read_at(fd, "memory.max_usage_in_bytes", buf,
                                       sizeof(buf)) >= 0 &&
                            cg_parse_u64(buf, &v) == 0) {
                                st->memory_peak_bytes = v;
                                st->have_memory_peak = true;
                        }
                        /* TCP buffers at their limit: the kernel charges
                         * past it (forced charges) rather than fail, so
                         * the peak reaching the limit is the sign; failcnt
                         * too where the kernel counts it (6.x does not for
                         * this counter). */
                        uint64_t tmax, tpeak, tfail;
                        if (cg_read_at(fd, CG_V1_TCP_LIMIT, buf, sizeof(buf)) >=
                                    0 &&
                            cg_parse_u64(buf, &tmax) == 0 &&
                            cg_read_at(fd, "memory.kmem.tcp.max_usage_in_bytes",
                                       buf, sizeof(buf)) >= 0 &&
                            cg_parse_u64(buf, &tpeak) == 0) {
                                st->sock_limit_hit = tpeak >= tmax;
                                /* Beside memory.max_usage_in_bytes, not in
                                 * it: their sum bounds the run's peak
                                 * from above (the two peaks may not be at
                                 * the same moment). */
                                if (st->have_memory_peak)
                                        st->memory_peak_bytes += tpeak;
                        }
                        if (cg_read_at(fd, "memory.kmem.tcp.failcnt", buf,
                                       sizeof(buf)) >= 0 &&
                            cg_parse_u64(buf, &tfail) == 0 && tfail > 0)
                                st->sock_limit_hit = true;
                        /* "oom_kill N" since Linux 4.13. */
                        if (cg_read_at(fd, "memory.oom_control", buf,
                                       sizeof(buf)) >= 0 &&
                            cg_keyed_u64(buf, "oom_kill", &v) == 0)
                                st->oom_kills = v;
                }
                if ((ctl & CG_BIT(CG_CPUACCT)) &&
                    cg_read_at(fd, "cpuacct.usage", buf, sizeof(buf)) >= 0 &&
                    cg_parse_u64(buf, &v) == 0) {
                        st->cpu_usec = v / 1000; /* nanoseconds */
                        st->have_cpu = true;
                }
                /* pids.events: Linux >= 4.10 on v1 too. */
                if ((ctl & CG_BIT(CG_PIDS)) &&
                    cg_read_at(fd, "pids.events", buf, sizeof(buf)) >= 0 &&
                    cg_keyed_u64(buf, "max", &v) == 0)
                        st->pids_denied = v;
        }
}
