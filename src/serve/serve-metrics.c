/* SPDX-License-Identifier: MIT */
/*
 * airlock serve: counters, gauges and histograms for GET /metrics, in the
 * Prometheus text exposition format (version 0.0.4). Labels come from
 * closed sets only (routes, statuses, language profiles), so the number
 * of series is bounded whatever clients send; no key ids, no code.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock.h"
#include "serve.h"
#include "warm.h"

/* Upper bounds of the latency buckets, seconds (+Inf implied). */
static const double BOUNDS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1,     2.5,  5,     10,   30,  60};
#define NB (sizeof(BOUNDS) / sizeof(BOUNDS[0]))

struct histo {
        uint64_t b[NB + 1]; /* per bucket, not cumulative; last = +Inf */
        uint64_t count;
        double sum;
};

/* HTTP statuses we answer with, as a closed set; anything else counts
 * under "other". */
static const unsigned STATUSES[] = {200, 202, 400, 401, 403, 404,
                                    405, 413, 422, 429, 500, 503};
#define NS (sizeof(STATUSES) / sizeof(STATUSES[0]))
#define NSTATUS_RUN (AL_STATUS_INTERNAL_ERROR + 1)
#define MAX_LANGS 64
/* Why a run was cold with --warm (al_run_warm's start_reason, and
 * "asked"): a closed set; anything new counts under "other". */
static const char *const COLD_REASONS[] = {
        "asked", "no_pool", "pool_empty", "pool_broken", "limits", "env",
        "stdin", "args",    "language",   "network",     "other"};
#define NREASONS (sizeof(COLD_REASONS) / sizeof(COLD_REASONS[0]))

static struct {
        pthread_mutex_t lock;
        uint64_t requests[SRV_ROUTES][NS + 1];
        struct histo latency[SRV_ROUTES];
        uint64_t runs[MAX_LANGS + 1][NSTATUS_RUN]; /* last row: other */
        struct histo run_seconds[MAX_LANGS + 1];
        uint64_t audit_failures, refused;
        uint64_t key_lookups[SRV_KEY_LOOKUP_RESULTS];
        uint64_t unauthenticated, coalesced;
        uint64_t cold_starts[MAX_LANGS + 1][NREASONS];
        atomic_uint queued, active, queue_cap, workers;
        atomic_uint reads_queued, reads_active;
        atomic_uint_fast64_t inflight_bytes;
        time_t started;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const ROUTE_NAMES[SRV_ROUTES] = {
        [SRV_ROUTE_EXECUTE] = "/v1/execute",
        [SRV_ROUTE_EXECUTE_COMPAT] = "/execute",
        [SRV_ROUTE_EXECUTION] = "/v1/executions/{id}",
        [SRV_ROUTE_AUDIT] = "/v1/audit",
        [SRV_ROUTE_LANGUAGES] = "/v1/languages",
        [SRV_ROUTE_HEALTHZ] = "/healthz",
        [SRV_ROUTE_READYZ] = "/readyz",
        [SRV_ROUTE_METRICS] = "/metrics",
        [SRV_ROUTE_OPENAPI] = "/openapi.json",
        [SRV_ROUTE_MCP] = "/mcp",
        [SRV_ROUTE_SESSIONS] = "/v1/sessions",
        [SRV_ROUTE_OTHER] = "other",
};

static void observe(struct histo *h, double v) {
        size_t i = 0;
        while (i < NB && v > BOUNDS[i])
                i++;
        h->b[i]++;
        h->count++;
        h->sum += v;
}

void srv_metrics_start(unsigned workers, unsigned queue_cap) {
        /* what the service counts as it goes comes here */
        static const struct srv_api_meter meter = {
                .execution = srv_metrics_execution,
                .refused = srv_metrics_refused,
                .unauthenticated = srv_metrics_unauthenticated,
                .audit_failure = srv_metrics_audit_failure,
                .inflight_add = srv_metrics_inflight_add,
                .key_lookup = srv_metrics_key_lookup,
                .cold_start = srv_metrics_cold_start,
        };
        m.started = time(NULL);
        m.workers = workers;
        m.queue_cap = queue_cap;
        srv_api_set_meter(&meter);
}

void srv_metrics_request(enum srv_route route, unsigned status,
                         double seconds) {
        size_t s = 0;
        while (s < NS && STATUSES[s] != status)
                s++;
        if ((unsigned)route >= SRV_ROUTES)
                route = SRV_ROUTE_OTHER;
        pthread_mutex_lock(&m.lock);
        m.requests[route][s]++;
        observe(&m.latency[route], seconds);
        pthread_mutex_unlock(&m.lock);
}

static size_t lang_index(const char *lang) {
        size_t n = al_languages_count();
        for (size_t i = 0; lang && i < n && i < MAX_LANGS; i++)
                if (!strcmp(al_language_name(i), lang))
                        return i;
        return MAX_LANGS;
}

void srv_metrics_execution(const char *lang, al_status status, double seconds) {
        size_t l = lang_index(lang);
        if ((unsigned)status >= NSTATUS_RUN)
                status = AL_STATUS_INTERNAL_ERROR;
        pthread_mutex_lock(&m.lock);
        m.runs[l][status]++;
        if (status != AL_STATUS_REJECTED)
                observe(&m.run_seconds[l], seconds);
        pthread_mutex_unlock(&m.lock);
}

void srv_metrics_cold_start(const char *lang, const char *reason) {
        size_t l = lang_index(lang), i = 0;
        while (i < NREASONS - 1 && strcmp(COLD_REASONS[i], reason))
                i++;
        pthread_mutex_lock(&m.lock);
        m.cold_starts[l][i]++;
        pthread_mutex_unlock(&m.lock);
}

void srv_metrics_refused(void) {
        pthread_mutex_lock(&m.lock);
        m.refused++;
        pthread_mutex_unlock(&m.lock);
}

void srv_metrics_unauthenticated(bool coalesced) {
        pthread_mutex_lock(&m.lock);
        m.unauthenticated++;
        m.coalesced += coalesced;
        pthread_mutex_unlock(&m.lock);
}

void srv_metrics_audit_failure(void) {
        pthread_mutex_lock(&m.lock);
        m.audit_failures++;
        pthread_mutex_unlock(&m.lock);
}

void srv_metrics_queue(unsigned queued, unsigned active) {
        m.queued = queued;
        m.active = active;
}

void srv_metrics_inflight_add(int64_t delta) {
        /* deltas commute: the gauge ends exact whatever the order */
        atomic_fetch_add(&m.inflight_bytes, (uint64_t)delta);
}

void srv_metrics_reads(unsigned queued, unsigned active) {
        m.reads_queued = queued;
        m.reads_active = active;
}

static const char *const LOOKUP_NAMES[SRV_KEY_LOOKUP_RESULTS] = {
        [SRV_KEY_LOOKUP_FOUND] = "found",
        [SRV_KEY_LOOKUP_UNKNOWN] = "unknown",
        [SRV_KEY_LOOKUP_ERROR] = "error",
        [SRV_KEY_LOOKUP_RATE_LIMITED] = "rate_limited",
};

void srv_metrics_key_lookup(enum srv_key_lookup result) {
        if ((unsigned)result >= SRV_KEY_LOOKUP_RESULTS)
                return;
        pthread_mutex_lock(&m.lock);
        m.key_lookups[result]++;
        pthread_mutex_unlock(&m.lock);
}

/* A growing text buffer; on allocation failure it stays failed. */
struct out {
        char *p;
        size_t len, cap;
        bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o,
                                                      const char *fmt, ...) {
        if (o->failed)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        o->failed = true;
                        return;
                }
                if ((size_t)n < o->cap - o->len) {
                        o->len += (size_t)n;
                        return;
                }
                size_t cap = o->cap * 2 + (size_t)n + 1;
                char *q = realloc(o->p, cap);
                if (!q) {
                        o->failed = true;
                        return;
                }
                o->p = q;
                o->cap = cap;
        }
}

static void put_histo(struct out *o, const char *name, const char *label,
                      const char *value, const struct histo *h) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= NB; i++) {
                cum += h->b[i];
                if (i < NB)
                        put(o, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name,
                            label, value, BOUNDS[i], (unsigned long long)cum);
                else
                        put(o, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name,
                            label, value, (unsigned long long)cum);
        }
        put(o, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value, h->sum);
        put(o, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
            (unsigned long long)h->count);
}

/* HTTP requests by route and status, and their latency; under m.lock. */
static void render_requests(struct out *o) {
        put(o, "# HELP airlock_http_requests_total HTTP requests answered, "
               "by route and status.\n"
               "# TYPE airlock_http_requests_total counter\n");
        for (size_t r = 0; r < SRV_ROUTES; r++)
                for (size_t s = 0; s <= NS; s++) {
                        if (!m.requests[r][s])
                                continue;
                        char st[8];
                        if (s < NS)
                                snprintf(st, sizeof(st), "%u", STATUSES[s]);
                        else
                                snprintf(st, sizeof(st), "other");
                        put(o,
                            "airlock_http_requests_total{route=\"%s\","
                            "status=\"%s\"} %llu\n",
                            ROUTE_NAMES[r], st,
                            (unsigned long long)m.requests[r][s]);
                }
        put(o, "# HELP airlock_http_request_duration_seconds Time from the "
               "request's arrival to its answer, queueing included.\n"
               "# TYPE airlock_http_request_duration_seconds histogram\n");
        for (size_t r = 0; r < SRV_ROUTES; r++)
                if (m.latency[r].count)
                        put_histo(o, "airlock_http_request_duration_seconds",
                                  "route", ROUTE_NAMES[r], &m.latency[r]);
}

/* Executions by language and outcome, and their duration; under m.lock. */
static void render_executions(struct out *o, size_t nl) {
        put(o, "# HELP airlock_executions_total Executions by language and "
               "outcome (rejected: refused before a sandbox, e.g. by "
               "policy).\n"
               "# TYPE airlock_executions_total counter\n");
        for (size_t l = 0; l <= MAX_LANGS; l++)
                for (size_t s = 0; s < NSTATUS_RUN; s++) {
                        if ((l >= nl && l != MAX_LANGS) || !m.runs[l][s])
                                continue;
                        put(o,
                            "airlock_executions_total{language=\"%s\","
                            "status=\"%s\"} %llu\n",
                            l < nl ? al_language_name(l) : "other",
                            al_status_name((al_status)s),
                            (unsigned long long)m.runs[l][s]);
                }
        put(o, "# HELP airlock_execution_duration_seconds Time in the "
               "sandbox: setup, run and teardown.\n"
               "# TYPE airlock_execution_duration_seconds histogram\n");
        for (size_t l = 0; l <= MAX_LANGS; l++)
                if ((l < nl || l == MAX_LANGS) && m.run_seconds[l].count)
                        put_histo(o, "airlock_execution_duration_seconds",
                                  "language",
                                  l < nl ? al_language_name(l) : "other",
                                  &m.run_seconds[l]);
}

/* Cold starts by reason; under m.lock. */
static void render_cold(struct out *o, size_t nl) {
        put(o, "# HELP airlock_warm_cold_starts_total Runs that started cold "
               "on a server with --warm, by language and start_reason.\n"
               "# TYPE airlock_warm_cold_starts_total counter\n");
        for (size_t l = 0; l <= MAX_LANGS; l++)
                for (size_t i = 0; i < NREASONS; i++)
                        if ((l < nl || l == MAX_LANGS) && m.cold_starts[l][i])
                                put(o,
                                    "airlock_warm_cold_starts_total{language="
                                    "\"%s\",reason=\"%s\"} %llu\n",
                                    l < nl ? al_language_name(l) : "other",
                                    COLD_REASONS[i],
                                    (unsigned long long)m.cold_starts[l][i]);
}

/* The --warm pools (al_warm_stats_get): nothing without --warm. */
static void render_warm(struct out *o) {
        al_warm_stats w[AL_WARM_MAX_POOLS];
        size_t n = al_warm_stats_get(w, AL_WARM_MAX_POOLS);
        if (!n)
                return;
        static const struct {
                const char *name, *type, *help;
        } F[] = {
                {"airlock_warm_ready", "gauge",
                 "Sandboxes made ahead and ready for one run each, by warm "
                 "language."},
                {"airlock_warm_pool_size", "gauge",
                 "Sandboxes the pool keeps ready (--warm-pool)."},
                {"airlock_warm_runs_total", "counter",
                 "Runs that started from a ready sandbox."},
                {"airlock_warm_pool_misses_total", "counter",
                 "Runs of a warm language that started cold instead (see "
                 "airlock_warm_cold_starts_total for why)."},
                {"airlock_warm_built_total", "counter",
                 "Sandboxes built and made ready, their preload imported."},
                {"airlock_warm_build_failures_total", "counter",
                 "Sandboxes that could not be made ready (preload import "
                 "failed, sandbox did not start); retried every 30 s."},
                {"airlock_warm_failing", "gauge",
                 "1 while the pool's last build failed (runs are cold, "
                 "start_reason pool_broken; the reason is logged as "
                 "airlock.serve.warm_failed)."},
        };
        for (size_t f = 0; f < sizeof(F) / sizeof(F[0]); f++) {
                put(o, "# HELP %s %s\n# TYPE %s %s\n", F[f].name, F[f].help,
                    F[f].name, F[f].type);
                for (size_t i = 0; i < n; i++) {
                        const uint64_t v[] = {w[i].ready,
                                              w[i].size,
                                              w[i].warm_runs,
                                              w[i].cold_runs,
                                              w[i].built,
                                              w[i].failed,
                                              w[i].last_error[0] != '\0'};
                        put(o, "%s{language=\"%s\"} %llu\n", F[f].name,
                            w[i].lang, (unsigned long long)v[f]);
                }
        }
}

/* Refusals, audit failures and key lookups; under m.lock. */
static void render_counters(struct out *o) {
        put(o,
            "# HELP airlock_requests_refused_total Execution requests "
            "refused before running (auth, limits, bad input, policy, "
            "queue).\n"
            "# TYPE airlock_requests_refused_total counter\n"
            "airlock_requests_refused_total %llu\n",
            (unsigned long long)m.refused);
        put(o,
            "# HELP airlock_unauthenticated_refusals_total Execution "
            "requests refused for want of a valid key (part of "
            "airlock_requests_refused_total).\n"
            "# TYPE airlock_unauthenticated_refusals_total counter\n"
            "airlock_unauthenticated_refusals_total %llu\n"
            "# HELP airlock_refusals_coalesced_total Of those, the ones "
            "counted in a summary audit record instead of a record of "
            "their own.\n"
            "# TYPE airlock_refusals_coalesced_total counter\n"
            "airlock_refusals_coalesced_total %llu\n",
            (unsigned long long)m.unauthenticated,
            (unsigned long long)m.coalesced);
        put(o,
            "# HELP airlock_audit_failures_total Audit records that could "
            "not be written (a start that fails refuses the run).\n"
            "# TYPE airlock_audit_failures_total counter\n"
            "airlock_audit_failures_total %llu\n",
            (unsigned long long)m.audit_failures);
        put(o, "# HELP airlock_key_lookups_total Keys not in the cache "
               "looked up in keys.db (found, unknown, error), or not "
               "looked up because the lookup rate was spent "
               "(rate_limited).\n"
               "# TYPE airlock_key_lookups_total counter\n");
        for (size_t i = 0; i < SRV_KEY_LOOKUP_RESULTS; i++)
                put(o, "airlock_key_lookups_total{result=\"%s\"} %llu\n",
                    LOOKUP_NAMES[i], (unsigned long long)m.key_lookups[i]);
}

/* Alerts, the budget, the queues and the pools: gauges read without the lock.
 */
static void render_gauges(struct out *o, uint64_t alerts_dropped,
                          uint64_t alerts_failed, size_t keys_active) {
        put(o,
            "# HELP airlock_audit_alerts_dropped_total Alerts dropped "
            "because the delivery queue was full.\n"
            "# TYPE airlock_audit_alerts_dropped_total counter\n"
            "airlock_audit_alerts_dropped_total %llu\n"
            "# HELP airlock_audit_alerts_failed_total Alert deliveries that "
            "failed after every retry.\n"
            "# TYPE airlock_audit_alerts_failed_total counter\n"
            "airlock_audit_alerts_failed_total %llu\n",
            (unsigned long long)alerts_dropped,
            (unsigned long long)alerts_failed);
        put(o,
            "# HELP airlock_inflight_bytes Bytes of the --max-inflight "
            "budget reserved by running executions and by responses not "
            "yet sent.\n"
            "# TYPE airlock_inflight_bytes gauge\n"
            "airlock_inflight_bytes %llu\n",
            (unsigned long long)atomic_load(&m.inflight_bytes));
        put(o,
            "# HELP airlock_queue_depth Execution requests waiting for a "
            "worker.\n"
            "# TYPE airlock_queue_depth gauge\n"
            "airlock_queue_depth %u\n"
            "# HELP airlock_queue_capacity Most requests that may wait "
            "(--queue).\n"
            "# TYPE airlock_queue_capacity gauge\n"
            "airlock_queue_capacity %u\n"
            "# HELP airlock_active_sandboxes Executions being handled by a "
            "worker now.\n"
            "# TYPE airlock_active_sandboxes gauge\n"
            "airlock_active_sandboxes %u\n"
            "# HELP airlock_audit_reads_queued Audit reads waiting for a "
            "reader thread.\n"
            "# TYPE airlock_audit_reads_queued gauge\n"
            "airlock_audit_reads_queued %u\n"
            "# HELP airlock_audit_reads_active Audit reads being answered "
            "by a reader thread now.\n"
            "# TYPE airlock_audit_reads_active gauge\n"
            "airlock_audit_reads_active %u\n"
            "# HELP airlock_workers Worker threads (--workers).\n"
            "# TYPE airlock_workers gauge\n"
            "airlock_workers %u\n"
            "# HELP airlock_api_keys Active API keys.\n"
            "# TYPE airlock_api_keys gauge\n"
            "airlock_api_keys %zu\n"
            "# HELP airlock_start_time_seconds When the server started, "
            "Unix time.\n"
            "# TYPE airlock_start_time_seconds gauge\n"
            "airlock_start_time_seconds %lld\n",
            (unsigned)m.queued, (unsigned)m.queue_cap, (unsigned)m.active,
            (unsigned)m.reads_queued, (unsigned)m.reads_active,
            (unsigned)m.workers, keys_active, (long long)m.started);
}

char *srv_metrics_render(size_t *len, uint64_t alerts_dropped,
                         uint64_t alerts_failed, size_t keys_active) {
        struct out o = {.cap = 16384};
        if (!(o.p = malloc(o.cap)))
                return NULL;
        o.p[0] = '\0';
        size_t nl = al_languages_count();
        if (nl > MAX_LANGS)
                nl = MAX_LANGS;
        pthread_mutex_lock(&m.lock);
        render_requests(&o);
        render_executions(&o, nl);
        render_counters(&o);
        render_cold(&o, nl);
        pthread_mutex_unlock(&m.lock);
        render_gauges(&o, alerts_dropped, alerts_failed, keys_active);
        render_warm(&o);
        if (o.failed) {
                free(o.p);
                return NULL;
        }
        *len = o.len;
        return o.p;
}
