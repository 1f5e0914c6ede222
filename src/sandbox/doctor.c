/* SPDX-License-Identifier: MIT */
/*
 * airlock doctor: which protection layers this host really gives. Host
 * probes say what is possible; one real sandbox run (sh -c true) says what
 * is actually applied, so the report cannot claim a layer the run lacks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "airlock.h"
#include "cgroup.h"
#include "error.h"
#include "seccomp-filter.h"
#include "sandbox.h"

const char *al_check_state_name(al_check_state s) {
        return s == AL_CHECK_OK     ? "ok"
               : s == AL_CHECK_WARN ? "warn"
                                    : "missing";
}

static void add(al_check *c, size_t *n, const char *name, al_check_state st,
                const char *detail, const char *fix) {
        if (*n >= AL_MAX_CHECKS)
                return;
        al_check *k = &c[(*n)++];
        snprintf(k->name, sizeof(k->name), "%s", name);
        k->state = st;
        snprintf(k->detail, sizeof(k->detail), "%s", detail);
        snprintf(k->fix, sizeof(k->fix), "%s", st == AL_CHECK_OK ? "" : fix);
        k->speed = false;
}

static void add_bool(al_check *c, size_t *n, const char *name, bool on,
                     const char *detail, const char *fix) {
        add(c, n, name, on ? AL_CHECK_OK : AL_CHECK_MISSING, detail, fix);
}

/* What the host offers: identity, user and time namespaces, recursive
 * read-only mounts. */
static void check_host(al_check *c, size_t *n, const al_host_info *h) {
        add(c, n, "identity", h->root ? AL_CHECK_OK : AL_CHECK_WARN,
            h->root ? "running as root: each run gets its own unused host "
                      "uid/gid (1660000000+slot)"
                    : "running unprivileged: runs share your uid on the "
                      "host (still unprivileged inside a user namespace)",
            "run as root (or as a service) so concurrent runs get distinct "
            "host uids");
        add_bool(c, n, "namespace.user", h->userns,
                 h->userns ? "user namespaces can be created" : h->userns_why,
                 "sysctl -w user.max_user_namespaces=15000; on Debian/Ubuntu "
                 "also kernel.unprivileged_userns_clone=1 and "
                 "kernel.apparmor_restrict_unprivileged_userns=0");
        add(c, n, "namespace.time", h->timens ? AL_CHECK_OK : AL_CHECK_WARN,
            h->timens ? "time namespaces available"
                      : "kernel has no time namespaces (CONFIG_TIME_NS)",
            "use Linux >= 5.6 with CONFIG_TIME_NS=y");
        add(c, n, "mount.recursive_readonly",
            h->mount_setattr ? AL_CHECK_OK : AL_CHECK_WARN,
            h->mount_setattr ? "mount_setattr(2): read-only applies to every "
                               "submount of a bind"
                             : "no mount_setattr(2): only the top of each "
                               "read-only bind is remounted",
            "use Linux >= 5.12");
}

/* The cgroup controllers, swap and socket accounting; returns the fix
 * to suggest wherever cgroups fall short. */
static const char *check_cgroups(al_check *c, size_t *n, bool root,
                                 al_error *e) {
        char buf[256];
        al_cg_probe cg = {0};

        if (al_cgroup_probe("/sys/fs/cgroup", "/proc/self/cgroup", &cg, e) < 0)
                snprintf(cg.reason, sizeof(cg.reason), "%s", e->msg);
        const char *ver = cg.kind == AL_CG_V2   ? "cgroup v2"
                          : cg.kind == AL_CG_V1 ? "cgroup v1"
                                                : "no usable cgroup";
        const char *cgfix =
                root ? "v1: mount the controller; v2: run airlock in a leaf "
                       "named airlock-supervisor of a delegated cgroup, or "
                       "in the root cgroup"
                     : "delegate a cgroup (systemd-run -p Delegate=yes "
                       "--scope) and start airlock in a leaf of it named "
                       "airlock-supervisor (see src/sandbox/cgroup-v2.c)";
        struct {
                const char *name;
                bool on;
        } ctl[] = {{"cgroup.memory", cg.kind && cg.memory},
                   {"cgroup.pids", cg.kind && cg.pids},
                   {"cgroup.cpu", cg.kind && cg.cpu}};
        for (size_t i = 0; i < 3; i++) {
                snprintf(buf, sizeof(buf), "%s: %s%s%s", ver,
                         ctl[i].on ? "controller usable" : "not usable",
                         !ctl[i].on && cg.reason[0] ? " - " : "",
                         !ctl[i].on ? cg.reason : "");
                add(c, n, ctl[i].name,
                    ctl[i].on ? AL_CHECK_OK : AL_CHECK_MISSING, buf, cgfix);
        }
        if (cg.kind != AL_CG_NONE && cg.memory)
                add(c, n, "cgroup.swap", cg.swap ? AL_CHECK_OK : AL_CHECK_WARN,
                    cg.swap ? "swap limited to zero for each run"
                            : "no swap accounting: a run may swap beyond its "
                              "memory limit if the host has swap",
                    "boot with swapaccount=1 (v1) or use cgroup v2");
        if (cg.kind != AL_CG_NONE && cg.memory)
                add(c, n, "cgroup.sockets",
                    cg.sock ? AL_CHECK_OK : AL_CHECK_WARN,
                    cg.sock ? cg.kind == AL_CG_V2
                                      ? "socket buffers are charged to each "
                                        "run's memory limit"
                                      : "TCP buffers of each run limited to "
                                        "its memory limit "
                                        "(memory.kmem.tcp.limit_in_bytes)"
                            : "socket buffers are not bounded by the memory "
                              "limit: a run can queue host kernel memory on "
                              "loopback sockets",
                    cg.kind == AL_CG_V2
                            ? "boot without cgroup.memory=nosocket"
                            : "use a kernel with CONFIG_MEMCG_KMEM, or cgroup "
                              "v2");
        if (cg.kind == AL_CG_NONE)
                add(c, n, "rlimits.fallback", AL_CHECK_WARN,
                    "without cgroups only per-process rlimits bound a run",
                    cgfix);
        return cgfix;
}

static void check_seccomp(al_check *c, size_t *n) {
        char buf[256];

        al_bpf bpf;
        size_t nrules = 0;
        al_seccomp_rules(&nrules);
        al_seccomp_program(&bpf);
        snprintf(buf, sizeof(buf),
                 "filter compiled at build time: %zu rules, %zu BPF "
                 "instructions",
                 nrules, bpf.len);
        add(c, n, "seccomp.filter", AL_CHECK_OK, buf, "");
}

/* The real thing: three runs of sh -c 'exit 0' with timing; the fastest
 * tells what every run pays to start. Returns al_run's result code; *ret
 * is the last run's result (or NULL). */
static int test_runs(al_result **ret, double *ret_attach_ms,
                     double *ret_setup_ms, al_error *e) {
        al_spec *s = al_spec_new();
        al_result *r = NULL;
        int rc = -ENOMEM;
        double attach_ms = 1e9, setup_ms = 1e9;
        if (s && al_spec_set_language(s, "sh", e) == 0 &&
            al_spec_set_code(s, "exit 0", 6, e) == 0) {
                al_spec_set_timing(s, true);
                for (int i = 0; i < 3; i++) {
                        r = al_result_free(r);
                        if ((rc = al_run(s, &r, e)) < 0 ||
                            r->status != AL_STATUS_OK)
                                break;
                        if (r->timing.attach_ms < attach_ms)
                                attach_ms = r->timing.attach_ms;
                        if (r->timing.setup_ms < setup_ms)
                                setup_ms = r->timing.setup_ms;
                }
        }
        al_spec_free(s);
        *ret = r;
        *ret_attach_ms = attach_ms;
        *ret_setup_ms = setup_ms;
        return rc;
}

/* What the test run reports as applied, so that the report cannot claim a
 * layer the run lacks; and how fast a run starts. */
static void check_run(al_check *c, size_t *n, int rc, const al_result *r,
                      const al_error *e, double attach_ms, double setup_ms,
                      const char *cgfix) {
        char buf[256];

        if (rc < 0 || !r || r->status != AL_STATUS_OK) {
                snprintf(buf, sizeof(buf), "a test run failed: %s",
                         rc < 0 ? e->msg
                         : r    ? r->reason
                                : "no result");
                add(c, n, "sandbox.run", AL_CHECK_MISSING, buf,
                    "see the checks above; airlock cannot run code here");
        } else {
                const al_protections *p = &r->protections;
                snprintf(buf, sizeof(buf),
                         "sh -c 'exit 0' ran in %llu ms as host uid %u",
                         (unsigned long long)r->wall_ms, (unsigned)p->uid);
                add(c, n, "sandbox.run", AL_CHECK_OK, buf, "");
                add_bool(c, n, "namespaces",
                         p->user_ns && p->pid_ns && p->mount_ns && p->net_ns &&
                                 p->ipc_ns && p->uts_ns && p->cgroup_ns,
                         p->time_ns ? "user, pid, mount, net (loopback only), "
                                      "ipc, uts, cgroup, time (uptime from 0)"
                                    : "user, pid, mount, net (loopback only), "
                                      "ipc, uts, cgroup",
                         "");
                add_bool(c, n, "filesystem", p->pivot_root && p->readonly_root,
                         "fresh tmpfs root, read-only binds, pivot_root, old "
                         "root detached",
                         "");
                add_bool(c, n, "privileges",
                         p->caps_dropped && p->no_new_privs && p->seccomp,
                         "capabilities dropped, no_new_privs, seccomp filter "
                         "loaded",
                         "");
                snprintf(buf, sizeof(buf), "limits enforced by cgroup %s%s",
                         p->cgroup, p->note[0] ? "; " : "");
                size_t bl = strlen(buf);
                snprintf(buf + bl, sizeof(buf) - bl, "%s", p->note);
                add(c, n, "limits",
                    strcmp(p->cgroup, "none") ? AL_CHECK_OK : AL_CHECK_WARN,
                    buf, cgfix);
                /* Moving another process into a cgroup waits for an RCU
                 * grace period (milliseconds) unless the kernel favours
                 * dynamic cgroup changes; v1 runs join by themselves (one
                 * thread moving itself takes no global lock) and v2 runs
                 * are born in their group (CLONE_INTO_CGROUP): neither
                 * should wait. A slow figure here means a kernel without
                 * that fast path. */
                if (strcmp(p->cgroup, "none")) {
                        bool slow = attach_ms > 2.0;
                        snprintf(buf, sizeof(buf),
                                 "joining the run's cgroup takes %.2f ms%s; "
                                 "a run starts in %.2f ms",
                                 attach_ms,
                                 attach_ms == 0 ? " (born in it)" : "",
                                 setup_ms);
                        add(c, n, "speed.cgroup_attach",
                            slow ? AL_CHECK_WARN : AL_CHECK_OK, buf,
                            "each move into a cgroup waits for an RCU grace "
                            "period: mount a cgroup2 hierarchy with "
                            "favordynmods (mount -o remount,favordynmods "
                            "/sys/fs/cgroup, or /sys/fs/cgroup/unified on "
                            "hybrid hosts) or boot with "
                            "cgroup_favordynmods=true (Linux 6.0+); with "
                            "cgroup v2 controllers airlock needs no move");
                        if (*n > 0 &&
                            !strcmp(c[*n - 1].name, "speed.cgroup_attach"))
                                c[*n - 1].speed = true;
                }
        }
}

int al_doctor(al_check *c, size_t *ret_n, al_error *err) {
        size_t n = 0;
        al_host_info h;
        al_host_probe(&h);

        al_error e = {0};
        check_host(c, &n, &h);
        const char *cgfix = check_cgroups(c, &n, h.root, &e);
        check_seccomp(c, &n);

        al_result *r = NULL;
        double attach_ms, setup_ms;
        int rc = test_runs(&r, &attach_ms, &setup_ms, &e);
        check_run(c, &n, rc, r, &e, attach_ms, setup_ms, cgfix);
        al_result_free(r);
        (void)err;
        *ret_n = n;
        return 0;
}
