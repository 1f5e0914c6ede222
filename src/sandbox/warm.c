/* SPDX-License-Identifier: MIT */
/*
 * Warm starts (warm.h): per warmed profile a ring of ready sessions
 * (session.c), each a whole sandbox whose driver imported the preload
 * before any code of a caller existed; a filler thread keeps the rings
 * full and replaces sandboxes past their age; a run takes one, runs as a
 * program in it, and destroys it.
 */
#include "warm.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "macro.h"
#include "session.h"
#include "spec.h"
#include "util.h"
#include "workspace.h"

/* The preload's own time, and how long a profile whose preload failed
 * waits before the next try. */
#define WARM_PRELOAD_MS 120000
#define WARM_RETRY_S 30
/* A warm run's interrupt grace, as a session cell's. */
#define WARM_GRACE_MS 1000

struct entry {
        al_session *s;
        double born; /* al_now_ms() when it became ready */
};

struct pool {
        char lang[32];
        char preload[512];
        unsigned size, max_age_s;
        struct entry ready[AL_WARM_MAX_SIZE];
        unsigned n; /* ready[0..n): oldest first */
        uint64_t warm_runs, cold_runs, built, failed;
        char last_error[256];
        double retry_at;
};

static struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct pool p[AL_WARM_MAX_POOLS];
        unsigned np;
        pthread_t th;
        bool running, stop;
        al_warm_notify_fn notify;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The preload as a cell: one import (python) or require (node) per
 * module; matplotlib with its Agg backend and pyplot, so that its font
 * cache is read before the code. */
static char *preload_code(const char *lang, const char *list) {
        bool node = !strcmp(lang, "node");
        size_t cap = strlen(list) * 3 + 256, n = 0;
        char *c = malloc(cap);
        if (!c)
                return NULL;
        c[0] = '\0';
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", list);
        char *save = NULL;
        for (char *m = strtok_r(buf, ",", &save); m;
             m = strtok_r(NULL, ",", &save)) {
                const char *fmt =
                        node ? "require('%s');\n"
                        : !strcmp(m, "matplotlib") ||
                                        !strcmp(m, "matplotlib.pyplot")
                                ? "import matplotlib\n"
                                  "matplotlib.use('Agg')\n"
                                  "import matplotlib.pyplot\n"
                                : "import %s\n";
                int k = snprintf(c + n, cap - n, fmt, m);
                if (k < 0 || (size_t)k >= cap - n)
                        break;
                n += (size_t)k;
        }
        return c;
}

/* One ready sandbox of p's profile (no lock held): 0, or -1 and why. */
static int build(const struct pool *p, al_session **ret, char *why,
                 size_t size) {
        al_error e = {0};
        al_spec *s = al_spec_new();
        if (!s || al_spec_set_language(s, p->lang, &e) < 0) {
                snprintf(why, size, "%s", s ? e.msg : "out of memory");
                al_spec_free(s);
                return -1;
        }
        al_limits *l = al_spec_limits(s);
        /* it waits up to max_age_s, then one run of at most the largest
         * wall a caller may ask */
        l->wall_ms = (uint64_t)p->max_age_s * 1000 + al_limits_max.wall_ms;
        if (l->wall_ms > al_limits_max.wall_ms)
                l->wall_ms = al_limits_max.wall_ms;
        l->cpu_ms = al_limits_max.cpu_ms;
        al_session *ss = NULL;
        if (al_session_start(s, &ss, &e) < 0) {
                snprintf(why, size, "%s", e.msg);
                return -1;
        }
        if (p->preload[0]) {
                char *code = preload_code(p->lang, p->preload);
                al_cell_opts o = {.wall_ms = WARM_PRELOAD_MS,
                                  .output_bytes = 1 << 20,
                                  .grace_ms = WARM_GRACE_MS};
                al_cell_result r;
                int rc = code ? al_session_exec(ss, code, strlen(code), &o, &r,
                                                &e)
                              : -ENOMEM;
                free(code);
                if (rc < 0 || r.status != AL_CELL_OK) {
                        json_t *er = rc < 0 ? NULL
                                            : json_object_get(r.reply, "error");
                        snprintf(why, size, "preload %s: %s%s%s", p->preload,
                                 er ? json_string_value(
                                              json_object_get(er, "name"))
                                 : rc < 0 ? e.msg
                                          : "failed",
                                 er ? ": " : "",
                                 er ? json_string_value(
                                              json_object_get(er, "value"))
                                    : "");
                        if (rc == 0)
                                al_cell_result_clear(&r);
                        al_session_close(ss, "closed", NULL, NULL);
                        return -1;
                }
                al_cell_result_clear(&r);
        }
        *ret = ss;
        return 0;
}

static void *filler(void *arg) {
        (void)arg;
        pthread_mutex_lock(&W.mu);
        while (!W.stop) {
                double now = al_now_ms();
                struct pool *todo = NULL;
                al_session *old = NULL;
                for (unsigned i = 0; i < W.np && !todo && !old; i++) {
                        struct pool *p = &W.p[i];
                        if (p->n && now - p->ready[0].born >
                                            (double)p->max_age_s * 1000) {
                                old = p->ready[0].s;
                                memmove(p->ready, p->ready + 1,
                                        --p->n * sizeof(p->ready[0]));
                        } else if (p->n < p->size && now >= p->retry_at)
                                todo = p;
                }
                if (old) {
                        /* fresh sandboxes replace old ones (bounded age) */
                        pthread_mutex_unlock(&W.mu);
                        al_session_close(old, "closed", NULL, NULL);
                        pthread_mutex_lock(&W.mu);
                        continue;
                }
                if (!todo) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_sec += 1;
                        pthread_cond_timedwait(&W.cv, &W.mu, &ts);
                        continue;
                }
                struct pool snap = *todo;
                pthread_mutex_unlock(&W.mu);
                al_session *s = NULL;
                char why[256] = "";
                int r = build(&snap, &s, why, sizeof(why));
                pthread_mutex_lock(&W.mu);
                /* a change of state (a new reason to fail, or built
                 * again after failing) is told once */
                bool changed = r < 0 ? strcmp(todo->last_error, why) != 0
                                     : todo->last_error[0] != '\0';
                if (changed && W.notify) {
                        al_warm_notify_fn fn = W.notify;
                        char lang[sizeof(todo->lang)];
                        snprintf(lang, sizeof(lang), "%s", todo->lang);
                        pthread_mutex_unlock(&W.mu);
                        fn(lang, r < 0 ? why : "");
                        pthread_mutex_lock(&W.mu);
                }
                if (r < 0) {
                        todo->failed++;
                        snprintf(todo->last_error, sizeof(todo->last_error),
                                 "%s", why);
                        todo->retry_at = al_now_ms() + WARM_RETRY_S * 1000.0;
                } else if (W.stop || todo->n >= todo->size) {
                        pthread_mutex_unlock(&W.mu);
                        al_session_close(s, "closed", NULL, NULL);
                        pthread_mutex_lock(&W.mu);
                } else {
                        todo->built++;
                        todo->last_error[0] = '\0';
                        todo->ready[todo->n++] =
                                (struct entry){.s = s, .born = al_now_ms()};
                }
        }
        pthread_mutex_unlock(&W.mu);
        return NULL;
}

int al_warm_start(const char *lang, const char *preload, unsigned size,
                  unsigned max_age_s, al_error *err) {
        const al_profile *pr = al_profile_find(lang);
        if (!pr)
                return al_error_set(err, EINVAL, "--warm %s: unknown language",
                                    lang);
        /* only drivers that run programs (request R) */
        if (!pr->session_run ||
            (strcmp(pr->name, "python") && strcmp(pr->name, "node")))
                return al_error_set(err, EINVAL,
                                    "--warm %s: warm starts are for python "
                                    "and node (their session drivers run "
                                    "programs)",
                                    lang);
        if (!size || size > AL_WARM_MAX_SIZE || !max_age_s)
                return al_error_set(err, EINVAL,
                                    "--warm: a pool of 1 to %d sandboxes, "
                                    "replaced after 1 s or more",
                                    AL_WARM_MAX_SIZE);
        for (const char *c = preload ? preload : ""; *c; c++)
                if (!(*c == ',' || *c == '.' || *c == '_' ||
                      (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9')))
                        return al_error_set(err, EINVAL,
                                            "--warm %s=%s: modules are "
                                            "names separated by commas",
                                            lang, preload);
        if (preload && strlen(preload) >= sizeof(W.p[0].preload))
                return al_error_set(err, EINVAL, "--warm: preload too long");
        pthread_mutex_lock(&W.mu);
        struct pool *p = NULL;
        for (unsigned i = 0; i < W.np; i++)
                if (!strcmp(W.p[i].lang, pr->name))
                        p = &W.p[i];
        if (!p && W.np == AL_WARM_MAX_POOLS) {
                pthread_mutex_unlock(&W.mu);
                return al_error_set(err, EINVAL, "--warm: at most %d profiles",
                                    AL_WARM_MAX_POOLS);
        }
        if (!p) {
                /* a slot of a stopped pool (al_warm_stop, then a rebuild):
                 * the same profile keeps its counters and last error, so
                 * the metrics' counters only grow; another starts from
                 * zero */
                p = &W.p[W.np++];
                if (strcmp(p->lang, pr->name))
                        *p = (struct pool){0};
        }
        p->retry_at = 0; /* a (re)start tries at once */
        snprintf(p->lang, sizeof(p->lang), "%s", pr->name);
        snprintf(p->preload, sizeof(p->preload), "%s", preload ? preload : "");
        p->size = size;
        p->max_age_s = max_age_s;
        int r = 0;
        if (!W.running) {
                /* the filler's sandboxes block every signal, as a
                 * server's threads do */
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                W.stop = false;
                if (pthread_create(&W.th, NULL, filler, NULL) == 0)
                        W.running = true;
                else
                        r = al_error_set(err, EAGAIN, "warm: no thread");
                pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
        return r;
}

void al_warm_stop(void) {
        pthread_mutex_lock(&W.mu);
        bool running = W.running;
        W.stop = true;
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
        if (running)
                pthread_join(W.th, NULL);
        pthread_mutex_lock(&W.mu);
        W.running = false;
        for (unsigned i = 0; i < W.np; i++) {
                struct pool *p = &W.p[i];
                while (p->n) {
                        al_session *s = p->ready[--p->n].s;
                        pthread_mutex_unlock(&W.mu);
                        al_session_close(s, "shutdown", NULL, NULL);
                        pthread_mutex_lock(&W.mu);
                }
        }
        W.np = 0;
        pthread_mutex_unlock(&W.mu);
}

void al_warm_set_notify(al_warm_notify_fn fn) {
        pthread_mutex_lock(&W.mu);
        W.notify = fn;
        pthread_mutex_unlock(&W.mu);
}

size_t al_warm_stats_get(al_warm_stats *v, size_t max) {
        pthread_mutex_lock(&W.mu);
        size_t n = 0;
        for (unsigned i = 0; i < W.np && n < max; i++, n++) {
                const struct pool *p = &W.p[i];
                v[n] = (al_warm_stats){.ready = p->n,
                                       .size = p->size,
                                       .warm_runs = p->warm_runs,
                                       .cold_runs = p->cold_runs,
                                       .built = p->built,
                                       .failed = p->failed};
                snprintf(v[n].lang, sizeof(v[n].lang), "%s", p->lang);
                snprintf(v[n].last_error, sizeof(v[n].last_error), "%s",
                         p->last_error);
        }
        pthread_mutex_unlock(&W.mu);
        return n;
}

/* Why s cannot run in a sandbox made ahead with the defaults, or NULL. */
static const char *not_warm(const al_spec *s) {
        al_limits d;
        al_limits_init(&d);
        const al_limits *l = &s->limits;
        if (s->live || s->lang->compile)
                return "language";
        if (s->n_args)
                return "args";
        if (s->stdin_len)
                return "stdin";
        if (s->n_env)
                return "env";
        /* a warm sandbox was made without a proxy socket */
        if (s->net)
                return "network";
        if (l->memory_mb != d.memory_mb || l->pids != d.pids ||
            l->disk_mb != d.disk_mb || l->open_files != d.open_files)
                return "limits";
        return NULL;
}

/* The run's status, in the words a cold run uses: a limit the cell was
 * stopped at (wall, CPU, output), else the sandbox's own end (its exit
 * code or signal, the memory limit, a kill). */
static void verdict(al_result *r, const al_cell_result *c, const al_result *f,
                    const al_limits *l) {
        bool wall = strstr(c->limits_hit, "wall"),
             cpu = strstr(c->limits_hit, "cpu"),
             out = strstr(c->limits_hit, "output");
        snprintf(r->limits_hit, sizeof(r->limits_hit), "%s", c->limits_hit);
        for (const char *h = f->limits_hit; *h;) {
                size_t n = strcspn(h, ",");
                char one[32];
                snprintf(one, sizeof(one), "%.*s", (int)n, h);
                if (!strstr(r->limits_hit, one)) {
                        size_t k = strlen(r->limits_hit);
                        snprintf(r->limits_hit + k, sizeof(r->limits_hit) - k,
                                 "%s%s", k ? "," : "", one);
                }
                h += n + (h[n] == ',');
        }
        r->exit_code = -1;
        if (wall || cpu) {
                r->status = AL_STATUS_TIMEOUT;
                snprintf(r->reason, sizeof(r->reason),
                         "%s limit of %llu ms exceeded",
                         wall ? "wall time" : "CPU time",
                         (unsigned long long)(wall ? l->wall_ms : l->cpu_ms));
        } else if (out) {
                r->status = AL_STATUS_OUTPUT_LIMIT;
                snprintf(r->reason, sizeof(r->reason),
                         "output limit of %llu bytes per stream exceeded",
                         (unsigned long long)l->output_bytes);
        } else if (strstr(r->limits_hit, "memory") &&
                   f->status != AL_STATUS_MEMORY_LIMIT) {
                /* a process of the program killed at the memory limit */
                r->status = AL_STATUS_MEMORY_LIMIT;
                snprintf(r->reason, sizeof(r->reason),
                         "memory limit of %llu MiB exceeded",
                         (unsigned long long)l->memory_mb);
        } else {
                r->status = f->status;
                r->exit_code = f->exit_code;
                r->signal = f->signal;
                snprintf(r->reason, sizeof(r->reason), "%s", f->reason);
        }
}

int al_run_warm(const al_spec *s, al_result **ret, char *reason,
                size_t reason_size, al_error *err) {
        *ret = NULL;
        const char *why = s->lang ? not_warm(s) : "language";
        struct entry e = {0};
        pthread_mutex_lock(&W.mu);
        struct pool *p = NULL;
        for (unsigned i = 0; s->lang && i < W.np; i++)
                if (!strcmp(W.p[i].lang, s->lang->name))
                        p = &W.p[i];
        if (!p)
                why = "no_pool";
        else if (!why && !p->n)
                why = p->failed && p->last_error[0] ? "pool_broken"
                                                    : "pool_empty";
        if (!why) {
                e = p->ready[0];
                memmove(p->ready, p->ready + 1, --p->n * sizeof(p->ready[0]));
                p->warm_runs++;
                pthread_cond_broadcast(&W.cv); /* refill */
        } else if (p)
                p->cold_runs++;
        pthread_mutex_unlock(&W.mu);
        if (why) {
                snprintf(reason, reason_size, "%s", why);
                return 0;
        }

        al_result *r = calloc(1, sizeof(*r));
        int rc = 0;
        int ws = -1;
        uid_t uid;
        gid_t gid;
        al_cell_result c = {0};
        if (!r) {
                rc = al_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        /* the caller's gate (its audit record, durable) before the code */
        if (s->gate && (rc = s->gate(s->gate_ctx, err)) < 0)
                goto out;
        if ((rc = al_session_workspace(e.s, &ws, &uid, &gid)) < 0) {
                al_error_errno(err, -rc, "warm sandbox: workspace");
                goto out;
        }
        for (size_t i = 0; i < s->n_files; i++)
                if ((rc = al_ws_put(ws, s->files[i].name, s->files[i].data,
                                    s->files[i].len, uid, gid,
                                    s->limits.disk_mb << 20, err)) < 0)
                        goto out;
        al_cell_opts o = {.wall_ms = s->limits.wall_ms,
                          .cpu_ms = s->limits.cpu_ms,
                          .output_bytes = s->limits.output_bytes,
                          .grace_ms = WARM_GRACE_MS,
                          .on_chunk = s->output_fn,
                          .chunk_ctx = s->output_ctx,
                          .script = true};
        double t0 = al_now_ms();
        rc = al_session_exec(e.s, (const char *)s->code, s->code_len, &o, &c,
                             err);
        if (rc < 0 && c.status != AL_CELL_DEAD)
                goto out;
        rc = 0;
        r->wall_ms = (uint64_t)(al_now_ms() - t0);
        /* the files it leaves, before the sandbox is gone */
        if (s->n_collect && c.status != AL_CELL_DEAD) {
                uint64_t total = s->collect_max ? s->collect_max : (64u << 20);
                struct al_collect_caps caps = {
                        .max_files = 64,
                        .max_file = total < (16u << 20) ? total : 16u << 20,
                        .max_total = total,
                        .max_ms = 10000,
                        .cancel_fd = s->cancel_fd};
                al_collect_files(ws, s->collect, s->n_collect, &caps, r);
        }
out:
        safe_close(ws);
        /* the program ended its sandbox (or a limit did: then it dies
         * now); its end is the verdict, as a cold run's */
        al_result *final = NULL;
        al_session_info in = {0};
        al_session_close(e.s, "closed", &final, &in);
        if (rc < 0 || !final) {
                al_cell_result_clear(&c);
                al_result_free(final);
                al_result_free(r);
                return rc < 0 ? rc : al_error_set(err, EIO, "warm run: no end");
        }
        r->limits = s->limits;
        verdict(r, &c, final, &s->limits);
        r->cpu_ms = c.cpu_ms;
        r->stdout_buf = c.out;
        r->stdout_len = c.out_len;
        r->stdout_truncated = c.out_truncated;
        r->stderr_buf = c.err;
        r->stderr_len = c.err_len;
        r->stderr_truncated = c.err_truncated;
        c.out = c.err = NULL;
        r->protections = final->protections;
        r->memory_peak_bytes = final->memory_peak_bytes > c.memory_peak_bytes
                                       ? final->memory_peak_bytes
                                       : c.memory_peak_bytes;
        /* what the kernel still frees (namespaces, cgroup): after the
         * answer, as for a cold run */
        r->leftover = final->leftover;
        final->leftover = NULL;
        al_result_free(final);
        al_cell_result_clear(&c);
        snprintf(r->start, sizeof(r->start), "warm");
        *ret = r;
        return 1;
}
