/* SPDX-License-Identifier: MIT */
/* airlock serve: the API — auth, routes, request bounds, runs, audit. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "airlock.h"
#include "error.h"
#include "findings-json.h"
#include "json.h"
#include "mcp.h"
#include "serve.h"
#include "util.h"

/* Bounds on a request body's JSON besides its size (--max-body). */
#define MAX_DEPTH 16
#define MAX_VALUES 20000
#define MAX_FILES 256
#define MAX_ARGS 1024
#define MAX_ENV 256
#define MAX_COLLECT 64

/* Keys missing from the cache (a key made since the last reload) are
 * looked up in keys.db at most this often, all clients together: a flood
 * of unknown keys costs at most these lookups, and past them an unknown
 * key is refused from the cache as before (the reload every second still
 * brings new keys in). */
#define KEY_LOOKUP_PER_S 20.0 /* lookups per second, sustained */
#define KEY_LOOKUP_BURST 20.0 /* lookups at once after a quiet spell */

/* A token bucket: capacity tokens, refilled at per_s. */
struct rate {
        double tokens, last;
        bool used;
};

struct bucket {
        char id[AL_KEY_ID_SIZE];
        struct rate exec, read; /* executions; reads of the audit log */
        unsigned active;        /* executions of this key in flight */
};

static struct {
        const struct srv_config *cfg;
        al_audit *audit;
        pthread_mutex_t audit_lock;
        al_keys *keys_db;
        pthread_rwlock_t keys_lock;
        al_key_info *keys;
        size_t nkeys;
        pthread_mutex_t bucket_lock;
        struct bucket *buckets;
        size_t nbuckets;
        struct rate lookups; /* keys.db lookups of keys not in the cache */
        al_policy *policy;
        pthread_rwlock_t policy_lock;
        volatile int cancel_fd; /* eventfd: readable = cancel every run */
        atomic_bool shutting_down;
        atomic_uint_fast64_t inflight; /* bytes reserved (budget_take) */
} api = {
        .audit_lock = PTHREAD_MUTEX_INITIALIZER,
        .keys_lock = PTHREAD_RWLOCK_INITIALIZER,
        .policy_lock = PTHREAD_RWLOCK_INITIALIZER,
        .bucket_lock = PTHREAD_MUTEX_INITIALIZER,
        .cancel_fd = -1,
};

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --- responses ------------------------------------------------------------ */

static void set_json(struct srv_response *rs, unsigned status, json_t *o) {
        rs->status = status;
        rs->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!rs->body) {
                rs->status = 500;
                rs->body = strdup("{\"error\":{\"code\":\"internal_error\","
                                  "\"message\":\"out of memory\"}}");
        }
        rs->len = rs->body ? strlen(rs->body) : 0;
        rs->content_type = "application/json";
}

void srv_error(struct srv_response *rs, unsigned status, const char *code,
               const char *field, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_t *e = json_pack("{s:s,s:o}", "code", code, "message",
                              al_jstr(msg));
        if (e && field)
                json_object_set_new(e, "field", json_string(field));
        set_json(rs, status, json_pack("{s:o}", "error", e));
        snprintf(rs->log_code, sizeof(rs->log_code), "%s", code);
}

void srv_log(json_t *event) {
        char *line = event ? json_dumps(event, JSON_COMPACT |
                                                       JSON_PRESERVE_ORDER |
                                                       JSON_REAL_PRECISION(6))
                           : NULL;
        /* one write per line, so that lines of threads do not interleave */
        fprintf(stderr, "%s\n",
                line ? line : "{\"event\":\"airlock.serve.log_failed\"}");
        free(line);
        json_decref(event);
}

/* --- keys, rate, concurrency ---------------------------------------------- */

void srv_api_reload_keys(void) {
        al_key_info *v = NULL;
        size_t n = 0;
        al_error e = {0};
        if (!api.keys_db || al_keys_list(api.keys_db, true, &v, &n, &e) < 0) {
                if (e.msg[0])
                        srv_log(json_pack("{s:s,s:s,s:o}", "event",
                                          "airlock.serve.keys", "error",
                                          "cannot read keys.db; the old keys "
                                          "stay",
                                          "detail", al_jstr(e.msg)));
                return;
        }
        pthread_rwlock_wrlock(&api.keys_lock);
        free(api.keys);
        api.keys = v;
        api.nkeys = n;
        pthread_rwlock_unlock(&api.keys_lock);
}

void srv_api_reload_policy(void) {
        al_error e = {0};
        const char *path = api.cfg->policy[0] ? api.cfg->policy : NULL;
        al_policy *p = al_policy_load(path, &e);
        if (!p) {
                srv_log(json_pack("{s:s,s:s,s:o}", "event",
                                  "airlock.serve.reload_failed", "what",
                                  "policy", "error", al_jstr(e.msg)));
                return;
        }
        pthread_rwlock_wrlock(&api.policy_lock);
        al_policy *old = api.policy;
        api.policy = p;
        pthread_rwlock_unlock(&api.policy_lock);
        al_policy_free(old);
        srv_log(json_pack("{s:s,s:[s,s]}", "event", "airlock.serve.reloaded",
                          "what", "keys", "policy"));
}

/* One token from r (capacity count, refilled count per period_s): 0, or
 * -1 and the seconds until one is there. Under bucket_lock. */
static int take(struct rate *r, double count, double period_s,
                unsigned *retry_after) {
        double per_s = count / period_s, t = now_s();
        if (!r->used)
                r->tokens = count; /* full on first use */
        else
                r->tokens = fmin(count, r->tokens + (t - r->last) * per_s);
        r->used = true;
        r->last = t;
        if (r->tokens >= 1) {
                r->tokens -= 1;
                return 0;
        }
        *retry_after = (unsigned)ceil((1 - r->tokens) / per_s);
        return -1;
}

/* A key that is not in the cache: looked up in keys.db itself, within
 * the lookup rate, so that a key made a moment ago works at once. Found,
 * it joins the cache (the next reload replaces the cache whole). */
static int key_lookup(const char *presented, al_key_info *k) {
        if (!api.keys_db || !al_keys_well_formed(presented))
                return -1;
        unsigned wait;
        pthread_mutex_lock(&api.bucket_lock);
        int r = take(&api.lookups, KEY_LOOKUP_BURST,
                     KEY_LOOKUP_BURST / KEY_LOOKUP_PER_S, &wait);
        pthread_mutex_unlock(&api.bucket_lock);
        if (r < 0) {
                srv_metrics_key_lookup(SRV_KEY_LOOKUP_RATE_LIMITED);
                return -1;
        }
        al_error e = {0};
        r = al_keys_find(api.keys_db, presented, k, &e);
        srv_metrics_key_lookup(r == 0         ? SRV_KEY_LOOKUP_FOUND
                               : r == -ENOENT ? SRV_KEY_LOOKUP_UNKNOWN
                                              : SRV_KEY_LOOKUP_ERROR);
        if (r < 0)
                return -1;
        pthread_rwlock_wrlock(&api.keys_lock);
        bool have = false;
        for (size_t i = 0; i < api.nkeys && !have; i++)
                have = !strcmp(api.keys[i].id, k->id);
        al_key_info *v = have ? NULL
                              : realloc(api.keys,
                                        (api.nkeys + 1) * sizeof(*v));
        if (v) {
                api.keys = v;
                api.keys[api.nkeys++] = *k;
        }
        pthread_rwlock_unlock(&api.keys_lock);
        return 0;
}

/* The key the request presents, copied into *k: 0, or an error response
 * (401) and -1. */
static int authenticate(const struct srv_request *rq, al_key_info *k,
                        struct srv_response *rs) {
        const char *presented = rq->api_key;
        if (!presented && rq->auth) {
                if (strncasecmp(rq->auth, "Bearer ", 7) != 0) {
                        srv_error(rs, 401, "unauthorized", NULL,
                                  "Authorization wants 'Bearer KEY'");
                        return -1;
                }
                presented = rq->auth + 7;
                while (*presented == ' ')
                        presented++;
        }
        if (!presented || !*presented) {
                srv_error(rs, 401, "unauthorized", NULL,
                          "an API key is required: 'Authorization: Bearer "
                          "KEY' or 'X-API-Key: KEY'");
                return -1;
        }
        pthread_rwlock_rdlock(&api.keys_lock);
        const al_key_info *f = al_keys_verify(api.keys, api.nkeys, presented);
        if (f)
                *k = *f;
        pthread_rwlock_unlock(&api.keys_lock);
        if (!f && key_lookup(presented, k) < 0) {
                srv_error(rs, 401, "invalid_api_key", NULL,
                          "the API key is not valid (unknown or revoked)");
                return -1;
        }
        snprintf(rs->log_key, sizeof(rs->log_key), "key:%s", k->id);
        return 0;
}

static struct bucket *bucket_of(const char *id) {
        for (size_t i = 0; i < api.nbuckets; i++)
                if (!strcmp(api.buckets[i].id, id))
                        return &api.buckets[i];
        struct bucket *b =
                realloc(api.buckets, (api.nbuckets + 1) * sizeof(*b));
        if (!b)
                return NULL;
        api.buckets = b;
        b = &api.buckets[api.nbuckets++];
        memset(b, 0, sizeof(*b));
        snprintf(b->id, sizeof(b->id), "%s", id);
        return b;
}

/* Take one request from the key's rate: 0, or 429 with Retry-After. */
static int rate_take(const al_key_info *k, struct srv_response *rs) {
        if (!k->rate_count)
                return 0;
        int r = 0;
        pthread_mutex_lock(&api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b)
                r = take(&b->exec, k->rate_count, k->rate_period_s,
                         &rs->retry_after);
        pthread_mutex_unlock(&api.bucket_lock);
        if (r < 0)
                srv_error(rs, 429, "rate_limited", NULL,
                          "key %s is over its rate of %u per %u s", k->id,
                          k->rate_count, k->rate_period_s);
        return r;
}

/* Take one read of the audit log from the key's read bucket (the
 * server's --read-rate, for every key alike): 0, or 429 with
 * Retry-After. */
static int read_rate_take(const al_key_info *k, struct srv_response *rs) {
        const struct srv_config *c = api.cfg;
        if (!c->read_rate_count)
                return 0;
        int r = 0;
        pthread_mutex_lock(&api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b)
                r = take(&b->read, c->read_rate_count, c->read_rate_period_s,
                         &rs->retry_after);
        pthread_mutex_unlock(&api.bucket_lock);
        if (r < 0)
                srv_error(rs, 429, "rate_limited", NULL,
                          "key %s is over the rate of audit reads, %u per "
                          "%u s",
                          k->id, c->read_rate_count, c->read_rate_period_s);
        return r;
}

/* One more execution of the key in flight, within its max_concurrent. */
static int concurrency_take(const al_key_info *k, struct srv_response *rs) {
        int r = 0;
        pthread_mutex_lock(&api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b && k->max_concurrent && b->active >= k->max_concurrent)
                r = -1;
        else if (b)
                b->active++;
        pthread_mutex_unlock(&api.bucket_lock);
        if (r < 0) {
                rs->retry_after = 1;
                srv_error(rs, 429, "too_many_concurrent", NULL,
                          "key %s has %u executions running already (its "
                          "max_concurrent)",
                          k->id, k->max_concurrent);
        }
        return r;
}

/* What one execution may hold while its result becomes a response: per
 * output byte (two streams) the run's buffer, a UTF-8-clean copy and its
 * JSON text (up to 6 bytes for a control byte); per collected byte the
 * file, its base64 and its JSON text. A cost model, not a measurement:
 * it bounds the sum over concurrent runs by --max-inflight. */
#define SRV_COST_PER_OUTPUT_BYTE 8
#define SRV_COST_PER_COLLECT_BYTE 4
#define SRV_COST_BASE (1u << 20)   /* the rest of the result */
#define SRV_COLLECT_DEFAULT (64u << 20) /* the library's own cap */

static uint64_t run_cost(const al_limits *l, bool collects,
                         uint64_t collect_max) {
        return SRV_COST_BASE + 2 * l->output_bytes * SRV_COST_PER_OUTPUT_BYTE +
               (collects ? collect_max * SRV_COST_PER_COLLECT_BYTE : 0);
}

/* Reserve cost bytes of the in-flight budget, or refuse (503): a run
 * that does not fit now is not started, so the server's memory for
 * results stays bounded whatever the keys ask. */
static int budget_take(uint64_t cost, struct srv_response *rs) {
        uint64_t cap = api.cfg->max_inflight_bytes;
        uint64_t cur = atomic_load(&api.inflight);
        do {
                if (cap && (cost > cap || cur > cap - cost)) {
                        rs->retry_after = 1;
                        srv_error(rs, 503, "response_budget_exhausted", NULL,
                                  "this run may need %llu MiB for its result "
                                  "and the server has %llu of %llu MiB "
                                  "free (--max-inflight)",
                                  (unsigned long long)(cost >> 20),
                                  (unsigned long long)((cap - (cur < cap ? cur
                                                                          : cap)) >>
                                                       20),
                                  (unsigned long long)(cap >> 20));
                        return -1;
                }
        } while (!atomic_compare_exchange_weak(&api.inflight, &cur,
                                               cur + cost));
        srv_metrics_inflight_add((int64_t)cost);
        return 0;
}

static void budget_give(uint64_t cost) {
        atomic_fetch_sub(&api.inflight, cost);
        srv_metrics_inflight_add(-(int64_t)cost);
}

void srv_api_release(struct srv_response *rs) {
        if (rs->budget)
                budget_give(rs->budget);
        rs->budget = 0;
}

static void concurrency_give(const al_key_info *k) {
        pthread_mutex_lock(&api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b && b->active)
                b->active--;
        pthread_mutex_unlock(&api.bucket_lock);
}

/* --- audit ------------------------------------------------------------------ */

/* Refusals of requests without a valid key (actor anonymous) are
 * coalesced per source address and source (http, mcp): the first
 * COALESCE_FULL of a COALESCE_WINDOW_S window are recorded in full, the
 * rest are counted and written as one summary record ("N more
 * unauthenticated refusals from ADDR between T1 and T2") when the window
 * ends (srv_api_tick, once a second) or at shutdown. An anonymous flood
 * then writes at most COALESCE_FULL + 1 durable records (and alerts) per
 * address per window instead of one per request; none is lost: every
 * refusal is either a record or counted in one, and in the metrics. */
#define COALESCE_WINDOW_S 10  /* seconds */
#define COALESCE_FULL 10      /* refusals recorded in full per window */
#define COALESCE_SOURCES 1024 /* addresses tracked at once; beyond, they \
                                 share one entry (peer "*") */

struct anon_window {
        char peer[64];
        const char *source;  /* static string: "http" or "mcp" */
        double start;        /* monotonic; 0 = free */
        unsigned full;       /* recorded in full this window */
        uint64_t counted;    /* not recorded alone: for the summary */
        char t1[32], t2[32]; /* UTC of the first and last counted */
};

static struct {
        pthread_mutex_t lock;
        struct anon_window w[COALESCE_SOURCES + 1]; /* last: the overflow */
} anon = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The summary of a window (its counted refusals). */
struct anon_summary {
        char peer[64];
        const char *source;
        uint64_t n;
        char t1[32], t2[32];
};

/* Close window w: its summary into out, the entry free again. */
static void window_close(struct anon_window *w, struct anon_summary *out) {
        *out = (struct anon_summary){.n = w->counted, .source = w->source};
        snprintf(out->peer, sizeof(out->peer), "%s", w->peer);
        snprintf(out->t1, sizeof(out->t1), "%s", w->t1);
        snprintf(out->t2, sizeof(out->t2), "%s", w->t2);
        w->start = 0;
        w->full = 0;
        w->counted = 0;
}

static void summary_write(const struct anon_summary *sm) {
        if (!sm->n)
                return;
        char msg[300], id[AL_AUDIT_ID_SIZE] = "";
        snprintf(msg, sizeof(msg),
                 "%llu more unauthenticated refusals from %s between %s and "
                 "%s",
                 (unsigned long long)sm->n, sm->peer, sm->t1, sm->t2);
        al_audit_who who = {.source = sm->source, .actor = "anonymous"};
        al_error e = {0};
        pthread_mutex_lock(&api.audit_lock);
        int r = al_audit_refused(api.audit, &who, NULL, "refusals_coalesced",
                                 msg, NULL, id, &e);
        pthread_mutex_unlock(&api.audit_lock);
        if (r < 0) {
                srv_metrics_audit_failure();
                srv_log(json_pack("{s:s,s:s,s:o,s:o}", "event",
                                  "airlock.serve.audit_failed", "code",
                                  "refusals_coalesced", "message",
                                  al_jstr(msg), "detail", al_jstr(e.msg)));
        }
}

/* Whether this anonymous refusal is recorded in full (true) or counted
 * for its window's summary. A window of the entry that had ended is
 * closed and handed back in *ended, for the caller to write. */
static bool anon_admit(const char *peer, const char *source,
                       struct anon_summary *ended) {
        double t = now_s();
        ended->n = 0;
        if (!peer || !*peer)
                peer = "unknown";
        pthread_mutex_lock(&anon.lock);
        struct anon_window *w = NULL, *free_w = NULL;
        for (size_t i = 0; i < COALESCE_SOURCES && !w; i++) {
                struct anon_window *x = &anon.w[i];
                if (!x->start)
                        free_w = free_w ? free_w : x;
                else if (x->source == source && !strcmp(x->peer, peer))
                        w = x;
        }
        if (!w && !free_w) {
                /* every entry taken: the overflow entry, per source */
                w = &anon.w[COALESCE_SOURCES];
                if (w->start && w->source != source)
                        window_close(w, ended);
                peer = "*";
        }
        if (w && w->start && t - w->start >= COALESCE_WINDOW_S)
                window_close(w, ended);
        if (!w || !w->start) {
                w = w ? w : free_w;
                snprintf(w->peer, sizeof(w->peer), "%s", peer);
                w->source = source;
                w->start = t;
        }
        bool full = w->full < COALESCE_FULL;
        if (full)
                w->full++;
        else {
                if (!w->counted++)
                        al_utc_now(w->t1);
                al_utc_now(w->t2);
        }
        pthread_mutex_unlock(&anon.lock);
        return full;
}

/* Close the windows that have ended (every one when flush) and write
 * their summaries. */
static void anon_sweep(bool flush) {
        for (;;) {
                struct anon_summary sm = {0};
                double t = now_s();
                pthread_mutex_lock(&anon.lock);
                for (size_t i = 0; i <= COALESCE_SOURCES && !sm.n; i++) {
                        struct anon_window *x = &anon.w[i];
                        if (x->start &&
                            (flush || t - x->start >= COALESCE_WINDOW_S))
                                window_close(x, &sm);
                }
                pthread_mutex_unlock(&anon.lock);
                if (!sm.n)
                        return;
                summary_write(&sm);
        }
}

void srv_api_tick(void) {
        anon_sweep(false);
}

static void refused(const struct srv_request *rq, struct srv_response *rs);

static void audit_refused(const struct srv_request *rq,
                          const al_audit_who *who, const al_spec *s,
                          struct srv_response *rs, const char *findings) {
        srv_metrics_refused();
        if (!rq->local_actor && !strcmp(who->actor, "anonymous")) {
                const char *src = !strcmp(who->source, "mcp") ? "mcp" : "http";
                struct anon_summary ended;
                bool full = anon_admit(rq->peer, src, &ended);
                summary_write(&ended);
                srv_metrics_unauthenticated(!full);
                if (!full)
                        return; /* counted: no record of its own, no id */
        }
        al_error e = {0};
        char id[AL_AUDIT_ID_SIZE] = "";
        const char *msg = "";
        json_t *o = rs->body ? json_loads(rs->body, 0, NULL) : NULL;
        json_t *err = json_object_get(o, "error");
        msg = json_string_value(json_object_get(err, "message"));
        pthread_mutex_lock(&api.audit_lock);
        int r = al_audit_refused(api.audit, who, s,
                                 rs->log_code[0] ? rs->log_code : "refused",
                                 msg ? msg : "", findings, id, &e);
        pthread_mutex_unlock(&api.audit_lock);
        if (r < 0) {
                srv_metrics_audit_failure();
                srv_log(json_pack("{s:s,s:s,s:o}", "event",
                                  "airlock.serve.audit_failed", "code",
                                  rs->log_code, "detail", al_jstr(e.msg)));
        } else if (o && json_is_object(o)) {
                json_object_set_new(o, "id", json_string(id));
                snprintf(rs->audit_id, sizeof(rs->audit_id), "%s", id);
                char *b = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (b) {
                        free(rs->body);
                        rs->body = b;
                        rs->len = strlen(b);
                }
        }
        json_decref(o);
}

/* --- the request's JSON ------------------------------------------------------ */

/* The bounds of json_bounded (depth MAX_DEPTH, MAX_VALUES values), on the
 * bytes: one pass, no allocation. For well-formed JSON it counts exactly
 * what json_bounded counts (a value is the root, a comma's next element,
 * or the first element of a container); for malformed text the parser
 * refuses it anyway. Object keys are not values, as in json_bounded. */
bool srv_json_within_bounds(const char *text, size_t len) {
        size_t values = 1, level = 0;
        bool first = false; /* just after an opener: its first element? */
        for (size_t i = 0; i < len; i++) {
                char c = text[i];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                        continue;
                if (first && c != ']' && c != '}')
                        values++;
                first = false;
                if (c != ',' && c != ':' && c != ']' && c != '}' &&
                    level > MAX_DEPTH)
                        return false; /* a value (or key) deeper than allowed */
                switch (c) {
                case '[':
                case '{':
                        level++;
                        first = true;
                        break;
                case ']':
                case '}':
                        if (level)
                                level--;
                        break;
                case ',':
                        values++;
                        break;
                case '"':
                        for (i++; i < len && text[i] != '"'; i++)
                                if (text[i] == '\\')
                                        i++;
                        break;
                }
                if (values > MAX_VALUES)
                        return false;
        }
        return true;
}

/* Depth and value count of the whole body, before any field is read. */
static bool json_bounded(json_t *j, int depth, size_t *count) {
        if (depth > MAX_DEPTH || ++*count > MAX_VALUES)
                return false;
        if (json_is_object(j)) {
                const char *k;
                json_t *v;
                json_object_foreach(j, k, v) if (!json_bounded(v, depth + 1,
                                                               count)) return false;
        } else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v) if (!json_bounded(v, depth + 1,
                                                              count)) return false;
        }
        return true;
}

/* Every key of o is one of allowed: else 400 unknown_field at path. */
static int only_fields(json_t *o, const char *const *allowed, const char *path,
                       struct srv_response *rs) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                bool ok = false;
                for (size_t i = 0; allowed[i] && !ok; i++)
                        ok = !strcmp(k, allowed[i]);
                if (!ok) {
                        char f[256];
                        snprintf(f, sizeof(f), "%s%s%.128s", path,
                                 *path ? "." : "", k);
                        srv_error(rs, 400, "unknown_field", f,
                                  "unknown field '%s'", f);
                        return -1;
                }
        }
        return 0;
}

static const char *type_name(json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

/* A string field: NULL when absent; -1 (and 400) when of the wrong type. */
static int get_str(json_t *o, const char *key, const char *path,
                   const char **out, size_t *len, struct srv_response *rs) {
        json_t *v = json_object_get(o, key);
        *out = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v)) {
                srv_error(rs, 400, "invalid_type", path,
                          "%s must be a string, not %s", path, type_name(v));
                return -1;
        }
        *out = json_string_value(v);
        if (len)
                *len = json_string_length(v);
        return 0;
}

/* base64 (standard, padding optional) into a malloc'ed buffer. */
static int b64_decode(const char *s, size_t len, unsigned char **out,
                      size_t *outlen) {
        size_t cap = len / 4 * 3 + 3;
        unsigned char *b = malloc(cap + 1);
        if (!b)
                return -ENOMEM;
        if (sodium_base642bin(b, cap, s, len, " \n\r", outlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 &&
            sodium_base642bin(b, cap, s, len, " \n\r", outlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0) {
                free(b);
                return -EINVAL;
        }
        *out = b;
        return 0;
}

/* content or content_base64 of obj into data (malloc'ed). */
static int get_bytes(json_t *o, const char *key, const char *key64,
                     const char *path, unsigned char **data, size_t *len,
                     bool *present, struct srv_response *rs) {
        const char *s = NULL, *s64 = NULL;
        size_t n = 0, n64 = 0;
        char p[256], p64[256];
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
        snprintf(p64, sizeof(p64), "%s%s%s", path, *path ? "." : "", key64);
        *data = NULL;
        *len = 0;
        *present = false;
        if (get_str(o, key, p, &s, &n, rs) < 0 ||
            get_str(o, key64, p64, &s64, &n64, rs) < 0)
                return -1;
        if (s && s64) {
                srv_error(rs, 400, "invalid_request", p64,
                          "give %s or %s, not both", p, p64);
                return -1;
        }
        if (s64) {
                int r = b64_decode(s64, n64, data, len);
                if (r < 0) {
                        srv_error(rs, r == -ENOMEM ? 500 : 400,
                                  r == -ENOMEM ? "internal_error"
                                               : "invalid_base64",
                                  p64, "%s is not valid base64", p64);
                        return -1;
                }
        } else if (s) {
                if (!(*data = malloc(n + 1))) {
                        srv_error(rs, 500, "internal_error", NULL,
                                  "out of memory");
                        return -1;
                }
                memcpy(*data, s, n);
                *len = n;
        }
        *present = s || s64;
        return 0;
}

static const char *const TOP_FIELDS[] = {
        "language", "code",  "code_base64", "stdin",       "stdin_base64",
        "args",     "env",   "files",       "collect",     "limits",
        "policy_mode", "user_id", "agent_id", "metadata", NULL};
static const char *const FILE_FIELDS[] = {"path", "content", "content_base64",
                                          "executable", NULL};
static const char *const LIMIT_FIELDS[] = {
        "wall_ms", "cpu_ms", "memory_mb", "pids", "disk_mb", "output_bytes",
        "open_files", NULL};

static void language_list(char *out, size_t size) {
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; i < al_languages_count(); i++) {
                int k = snprintf(out + o, size - o, "%s%s", o ? ", " : "",
                                 al_language_name(i));
                if (k < 0 || (size_t)k >= size - o)
                        break;
                o += (size_t)k;
        }
}

/* The body of POST /v1/execute into s. On error: -1 and the response. */
static int build_spec(json_t *req, al_spec *s, const al_key_info *key,
                      const char **mode, struct srv_response *rs,
                      al_audit_who *who) {
        al_error e = {0};
        const char *lang, *v;
        if (only_fields(req, TOP_FIELDS, "", rs) < 0)
                return -1;
        if (get_str(req, "user_id", "user_id", &who->user_id, NULL, rs) < 0 ||
            get_str(req, "agent_id", "agent_id", &who->agent_id, NULL, rs) < 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                const char *id = i ? who->agent_id : who->user_id;
                if (id && (strlen(id) == 0 || strlen(id) > 128)) {
                        srv_error(rs, 400, "invalid_value",
                                  i ? "agent_id" : "user_id",
                                  "%s is 1 to 128 characters",
                                  i ? "agent_id" : "user_id");
                        return -1;
                }
        }
        json_t *meta = json_object_get(req, "metadata");
        if (meta && !json_is_object(meta) && !json_is_null(meta)) {
                srv_error(rs, 400, "invalid_type", "metadata",
                          "metadata must be an object, not %s",
                          type_name(meta));
                return -1;
        }
        if (get_str(req, "language", "language", &lang, NULL, rs) < 0)
                return -1;
        if (!lang) {
                srv_error(rs, 400, "missing_field", "language",
                          "language is required");
                return -1;
        }
        if (al_spec_set_language(s, lang, &e) < 0) {
                char langs[256];
                language_list(langs, sizeof(langs));
                srv_error(rs, 400, "unknown_language", "language",
                          "unknown language '%.64s'; valid: %s", lang, langs);
                return -1;
        }
        unsigned char *data = NULL;
        size_t len = 0;
        bool present;
        if (get_bytes(req, "code", "code_base64", "", &data, &len, &present,
                      rs) < 0)
                return -1;
        if (!present) {
                srv_error(rs, 400, "missing_field", "code",
                          "code (or code_base64) is required");
                return -1;
        }
        int r = al_spec_set_code(s, data, len, &e);
        free(data);
        if (r < 0) {
                srv_error(rs, 400, "invalid_code", "code", "%s", e.msg);
                return -1;
        }
        if (get_bytes(req, "stdin", "stdin_base64", "", &data, &len, &present,
                      rs) < 0)
                return -1;
        if (present) {
                r = al_spec_set_stdin(s, data, len, &e);
                free(data);
                if (r < 0) {
                        srv_error(rs, 400, "invalid_stdin", "stdin", "%s",
                                  e.msg);
                        return -1;
                }
        }
        json_t *a = json_object_get(req, "args"), *x;
        size_t i;
        if (a && !json_is_array(a)) {
                srv_error(rs, 400, "invalid_type", "args",
                          "args must be an array of strings, not %s",
                          type_name(a));
                return -1;
        }
        if (json_array_size(a) > MAX_ARGS) {
                srv_error(rs, 400, "too_many", "args",
                          "at most %d args", MAX_ARGS);
                return -1;
        }
        json_array_foreach(a, i, x) {
                char p[32];
                snprintf(p, sizeof(p), "args[%zu]", i);
                if (!json_is_string(x)) {
                        srv_error(rs, 400, "invalid_type", p,
                                  "%s must be a string, not %s", p,
                                  type_name(x));
                        return -1;
                }
                if (al_spec_add_arg(s, json_string_value(x), &e) < 0) {
                        srv_error(rs, 400, "invalid_value", p, "%s: %s", p,
                                  e.msg);
                        return -1;
                }
        }
        json_t *env = json_object_get(req, "env");
        if (env && !json_is_object(env)) {
                srv_error(rs, 400, "invalid_type", "env",
                          "env must be an object of strings, not %s",
                          type_name(env));
                return -1;
        }
        if (json_object_size(env) > MAX_ENV) {
                srv_error(rs, 400, "too_many", "env", "at most %d env entries",
                          MAX_ENV);
                return -1;
        }
        const char *ek;
        json_object_foreach(env, ek, x) {
                char p[160];
                snprintf(p, sizeof(p), "env.%.128s", ek);
                if (!json_is_string(x)) {
                        srv_error(rs, 400, "invalid_type", p,
                                  "%s must be a string, not %s", p,
                                  type_name(x));
                        return -1;
                }
                if (al_spec_add_env(s, ek, json_string_value(x), &e) < 0) {
                        srv_error(rs, 400, "invalid_value", p, "%s", e.msg);
                        return -1;
                }
        }
        json_t *files = json_object_get(req, "files");
        if (files && !json_is_array(files)) {
                srv_error(rs, 400, "invalid_type", "files",
                          "files must be an array, not %s", type_name(files));
                return -1;
        }
        if (json_array_size(files) > MAX_FILES) {
                srv_error(rs, 400, "too_many", "files", "at most %d files",
                          MAX_FILES);
                return -1;
        }
        json_array_foreach(files, i, x) {
                char p[32], pp[48];
                snprintf(p, sizeof(p), "files[%zu]", i);
                snprintf(pp, sizeof(pp), "%s.path", p);
                if (!json_is_object(x)) {
                        srv_error(rs, 400, "invalid_type", p,
                                  "%s must be an object, not %s", p,
                                  type_name(x));
                        return -1;
                }
                if (only_fields(x, FILE_FIELDS, p, rs) < 0 ||
                    get_str(x, "path", pp, &v, NULL, rs) < 0)
                        return -1;
                if (!v) {
                        srv_error(rs, 400, "missing_field", pp,
                                  "%s is required", pp);
                        return -1;
                }
                json_t *exe = json_object_get(x, "executable");
                if (exe && !json_is_boolean(exe)) {
                        srv_error(rs, 400, "invalid_type", p,
                                  "%s.executable must be a boolean", p);
                        return -1;
                }
                if (get_bytes(x, "content", "content_base64", p, &data, &len,
                              &present, rs) < 0)
                        return -1;
                r = al_spec_add_file(s, v, data ? data : (unsigned char *)"",
                                     len, json_is_true(exe), &e);
                free(data);
                if (r < 0) {
                        srv_error(rs, 400, "invalid_file", pp, "%s: %s", pp,
                                  e.msg);
                        return -1;
                }
        }
        json_t *col = json_object_get(req, "collect");
        if (col && !json_is_array(col)) {
                srv_error(rs, 400, "invalid_type", "collect",
                          "collect must be an array of globs, not %s",
                          type_name(col));
                return -1;
        }
        if (json_array_size(col) > MAX_COLLECT) {
                srv_error(rs, 400, "too_many", "collect", "at most %d globs",
                          MAX_COLLECT);
                return -1;
        }
        json_array_foreach(col, i, x) {
                char p[32];
                snprintf(p, sizeof(p), "collect[%zu]", i);
                if (!json_is_string(x) ||
                    al_spec_add_collect(s, json_string_value(x), &e) < 0) {
                        srv_error(rs, 400,
                                  json_is_string(x) ? "invalid_value"
                                                    : "invalid_type",
                                  p, "%s: %s", p,
                                  json_is_string(x) ? e.msg
                                                    : "must be a string");
                        return -1;
                }
        }
        /* limits: the request's, each within al_limits_max and the key's
         * ceilings (over a ceiling: refused, never clamped in silence);
         * a default above a ceiling comes down to it */
        al_limits *l = al_spec_limits(s);
        json_t *lim = json_object_get(req, "limits");
        if (lim && !json_is_object(lim)) {
                srv_error(rs, 400, "invalid_type", "limits",
                          "limits must be an object, not %s", type_name(lim));
                return -1;
        }
        if (lim && only_fields(lim, LIMIT_FIELDS, "limits", rs) < 0)
                return -1;
        const char *lk;
        json_object_foreach(lim, lk, x) {
                char p[64], num[32];
                snprintf(p, sizeof(p), "limits.%s", lk);
                if (!json_is_integer(x)) {
                        srv_error(rs, 400, "invalid_type", p,
                                  "%s must be a whole number, not %s", p,
                                  type_name(x));
                        return -1;
                }
                snprintf(num, sizeof(num), "%lld",
                         (long long)json_integer_value(x));
                if (al_limits_set(l, lk, num, &e) < 0) {
                        srv_error(rs, 400, "invalid_limit", p, "%s", e.msg);
                        return -1;
                }
        }
        /* the key's ceilings, then the server's (--max-output ...):
         * whichever is lower binds, and the refusal names it */
        struct {
                const char *name;
                uint64_t *val;
                uint64_t key, server;
        } ceil_[] = {
                {"memory_mb", &l->memory_mb, key->max_memory_mb, 0},
                {"wall_ms", &l->wall_ms, key->max_wall_ms, 0},
                {"output_bytes", &l->output_bytes, key->max_output_bytes,
                 api.cfg->max_output_bytes},
                {"disk_mb", &l->disk_mb, key->max_disk_mb,
                 api.cfg->max_disk_mb},
        };
        for (size_t c = 0; c < sizeof(ceil_) / sizeof(ceil_[0]); c++) {
                uint64_t kmax = ceil_[c].key, smax = ceil_[c].server;
                bool by_key = kmax && (!smax || kmax <= smax);
                uint64_t max = by_key ? kmax : smax;
                if (!max || *ceil_[c].val <= max)
                        continue;
                if (json_object_get(lim, ceil_[c].name)) {
                        char p[64];
                        snprintf(p, sizeof(p), "limits.%s", ceil_[c].name);
                        srv_error(rs, 400,
                                  by_key ? "limit_exceeds_key"
                                         : "limit_exceeds_server",
                                  p, "%s %llu is above this %s's ceiling of "
                                  "%llu",
                                  p, (unsigned long long)*ceil_[c].val,
                                  by_key ? "key" : "server",
                                  (unsigned long long)max);
                        return -1;
                }
                *ceil_[c].val = max;
        }
        uint64_t ck = key->max_collect_bytes, cs = api.cfg->max_collect_bytes;
        al_spec_set_collect_max(s, ck && (!cs || ck < cs) ? ck : cs);
        if (l->cpu_ms > l->wall_ms && key->max_wall_ms &&
            !json_object_get(lim, "cpu_ms"))
                l->cpu_ms = l->wall_ms;
        if (get_str(req, "policy_mode", "policy_mode", mode, NULL, rs) < 0)
                return -1;
        if (*mode && !al_policy_mode_ok(*mode)) {
                srv_error(rs, 400, "invalid_value", "policy_mode",
                          "policy_mode is off, record, warn or enforce");
                return -1;
        }
        return 0;
}

/* Static validation per the mode: 0 to run (findings in *findings), -1
 * with the refusal in rs. */
static int validate(al_spec *s, const char *mode, char **findings,
                    struct srv_response *rs) {
        al_verdict v;
        al_error e = {0};
        *findings = NULL;
        pthread_rwlock_rdlock(&api.policy_lock);
        al_spec_validate(s, api.policy, mode ? mode : api.cfg->policy_mode,
                         &v, &e);
        pthread_rwlock_unlock(&api.policy_lock);
        *findings = v.findings_json;
        v.findings_json = NULL;
        int r = 0;
        if (v.refusal) {
                bool ours = !strcmp(v.refusal, "policy_guard_failed");
                srv_error(rs, ours ? 500 : 422, v.refusal, ours ? NULL : "code",
                          "%s", v.message);
                r = -1;
        }
        al_verdict_free(&v);
        return r;
}

/* Add the findings to a refusal's body (policy_violation). */
static void attach_findings(struct srv_response *rs, const char *findings) {
        json_t *o = json_loads(rs->body, 0, NULL), *f = NULL;
        if (o && findings && (f = json_loads(findings, 0, NULL))) {
                json_object_set_new(o, "status", json_string("rejected"));
                json_object_set_new(o, "findings", f);
                free(rs->body);
                rs->body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                rs->len = rs->body ? strlen(rs->body) : 0;
        }
        json_decref(o);
}

static void execute(const struct srv_request *rq, struct srv_response *rs) {
        al_key_info key;
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = "anonymous"};
        char actor[AL_KEY_ID_SIZE + 64];
        if (rq->local_actor) {
                /* a local front-end: the user who started it, no key, no
                 * ceilings but the server's */
                key = (al_key_info){.scopes = AL_SCOPE_EXECUTE};
                snprintf(actor, sizeof(actor), "%s", rq->local_actor);
        } else if (authenticate(rq, &key, rs) < 0) {
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        } else
                snprintf(actor, sizeof(actor), "key:%s", key.id);
        who.actor = actor;
        if (!(key.scopes & (AL_SCOPE_EXECUTE | AL_SCOPE_ADMIN))) {
                srv_error(rs, 403, "forbidden", NULL,
                          "key %s lacks the execute scope", key.id);
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        if (!rq->rate_taken && rate_take(&key, rs) < 0) {
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        if (rq->body_too_large) {
                srv_error(rs, 413, "body_too_large", NULL,
                          "the body is larger than %zu bytes",
                          api.cfg->max_body);
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        /* the bounds on the bytes first: a tree is built only for a body
         * that stays within them */
        if (!srv_json_within_bounds(rq->body, rq->body_len)) {
                srv_error(rs, 400, "too_complex", NULL,
                          "the body nests deeper than %d or has more than %d "
                          "values",
                          MAX_DEPTH, MAX_VALUES);
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        json_error_t je;
        json_t *req = json_loadb(rq->body, rq->body_len,
                                 JSON_REJECT_DUPLICATES, &je);
        size_t count = 0;
        if (!req) {
                bool utf8 = strstr(je.text, "UTF-8") ||
                            strstr(je.text, "decode byte");
                srv_error(rs, 400, utf8 ? "invalid_utf8" : "invalid_json",
                          NULL,
                          utf8 ? "the body is not valid UTF-8 (send code "
                                 "that is not as code_base64): %s at "
                                 "byte %d"
                               : "the body is not valid JSON: %s at byte %d",
                          je.text, je.position);
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        if (!json_is_object(req) || !json_bounded(req, 0, &count)) {
                if (!json_is_object(req))
                        srv_error(rs, 400, "invalid_json", NULL,
                                  "the body must be a JSON object");
                else
                        srv_error(rs, 400, "too_complex", NULL,
                                  "the body nests deeper than %d or has "
                                  "more than %d values",
                                  MAX_DEPTH, MAX_VALUES);
                json_decref(req);
                audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        al_spec *s = al_spec_new();
        const char *mode = NULL;
        char *findings = NULL;
        uint64_t cost = 0; /* of the in-flight budget, while we hold it */
        if (!s) {
                srv_error(rs, 500, "internal_error", NULL, "out of memory");
                json_decref(req);
                return;
        }
        if (build_spec(req, s, &key, &mode, rs, &who) < 0) {
                audit_refused(rq, &who, s, rs, NULL);
                goto out;
        }
        if (validate(s, mode, &findings, rs) < 0) {
                if (findings)
                        attach_findings(rs, findings);
                srv_metrics_execution(al_spec_language(s), AL_STATUS_REJECTED,
                                      0);
                audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        if (concurrency_take(&key, rs) < 0) {
                audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        uint64_t ck = key.max_collect_bytes, cs = api.cfg->max_collect_bytes;
        uint64_t cmax = ck && (!cs || ck < cs) ? ck : cs;
        cost = run_cost(al_spec_limits(s),
                        json_array_size(json_object_get(req, "collect")) > 0,
                        cmax ? cmax : SRV_COLLECT_DEFAULT);
        if (budget_take(cost, rs) < 0) {
                cost = 0;
                concurrency_give(&key);
                audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        al_spec_set_cancel_fd(s, api.cancel_fd);
        al_error e = {0};
        char id[AL_AUDIT_ID_SIZE] = "";
        pthread_mutex_lock(&api.audit_lock);
        int r = al_audit_started(api.audit, &who, s, findings, id, &e);
        pthread_mutex_unlock(&api.audit_lock);
        if (r < 0) {
                concurrency_give(&key);
                srv_metrics_audit_failure();
                srv_error(rs, 503, "audit_unavailable", NULL,
                          "not running: the audit log cannot be written: %s",
                          e.msg);
                rs->retry_after = 5;
                goto out;
        }
        al_result *res = NULL;
        double t0 = now_s();
        r = al_run(s, &res, &e);
        concurrency_give(&key);
        srv_metrics_execution(al_spec_language(s),
                              r < 0 ? AL_STATUS_INTERNAL_ERROR : res->status,
                              now_s() - t0);
        if (r < 0) {
                al_result failed = {.status = AL_STATUS_INTERNAL_ERROR,
                                    .exit_code = -1};
                snprintf(failed.reason, sizeof(failed.reason), "%s", e.msg);
                pthread_mutex_lock(&api.audit_lock);
                al_audit_finished(api.audit, id, &failed, &e);
                pthread_mutex_unlock(&api.audit_lock);
                srv_error(rs, 500, "internal_error", NULL, "%s", failed.reason);
                goto out;
        }
        if (findings)
                res->findings_json = strdup(findings);
        snprintf(res->audit_id, sizeof(res->audit_id), "%s", id);
        pthread_mutex_lock(&api.audit_lock);
        r = al_audit_finished(api.audit, id, res, &e);
        pthread_mutex_unlock(&api.audit_lock);
        if (r < 0) {
                srv_metrics_audit_failure();
                srv_log(json_pack("{s:s,s:s,s:s,s:o}", "event",
                                  "airlock.serve.audit_failed", "id", id,
                                  "error", "finished record", "detail",
                                  al_jstr(e.msg)));
        }
        char *j = al_result_to_json(res, false);
        json_t *o = j ? json_loads(j, 0, NULL) : NULL;
        free(j);
        if (o) {
                json_object_set_new(o, "id", json_string(id));
                json_t *meta = json_object_get(req, "metadata");
                if (meta && json_is_object(meta))
                        json_object_set(o, "metadata", meta);
        }
        snprintf(rs->audit_id, sizeof(rs->audit_id), "%s", id);
        snprintf(rs->log_code, sizeof(rs->log_code), "%s",
                 al_status_name(res->status));
        set_json(rs, res->status == AL_STATUS_REJECTED ? 422 : 200, o);
        rs->leftover = res;
out:
        /* the result is now the response's body (rs->len bytes): the
         * rest of the worst case reserved for making it is free again;
         * the body and the front's copy of it are held until the response
         * has been sent (srv_api_release), so that slow readers cannot
         * pile up responses outside the budget */
        if (cost) {
                uint64_t keep = 2 * (uint64_t)rs->len;
                if (keep > cost)
                        keep = cost;
                budget_give(cost - keep);
                rs->budget += keep;
        }
        free(findings);
        al_spec_free(s);
        json_decref(req);
}

/* --- the other routes ---------------------------------------------------------- */

static void languages(struct srv_response *rs) {
        set_json(rs, 200, json_pack("{s:o}", "languages", srv_api_languages()));
}

bool srv_is_execution(const char *method, const char *path) {
        enum srv_route r = srv_route_of(path);
        return !strcmp(method, "POST") &&
               (r == SRV_ROUTE_EXECUTE || r == SRV_ROUTE_EXECUTE_COMPAT ||
                r == SRV_ROUTE_MCP);
}

bool srv_is_audit_read(const char *method, const char *path) {
        enum srv_route r = srv_route_of(path);
        return (!strcmp(method, "GET") || !strcmp(method, "HEAD")) &&
               (r == SRV_ROUTE_AUDIT || r == SRV_ROUTE_EXECUTION);
}

/* POST /execute: the shape agent tutorials post. {code, language,
 * timeout (seconds)} -> {success, output, error}: output is stdout; error
 * is stderr, or the reason when the run did not succeed. Other fields
 * are ignored here (tutorial clients send extras); the request is run and
 * audited exactly as /v1/execute. */
/* A response of the API in the compat shape: {success, output, error,
 * id}. */
static void compat_shape(struct srv_response *rs) {
        json_t *out = rs->body ? json_loads(rs->body, 0, NULL) : NULL;
        const char *st = json_string_value(json_object_get(out, "status"));
        const char *id = json_string_value(json_object_get(out, "id"));
        json_t *c;
        if (st) {
                bool ok = !strcmp(st, "ok");
                const char *err =
                        json_string_value(json_object_get(out, "stderr"));
                const char *reason =
                        json_string_value(json_object_get(out, "reason"));
                char msg[600];
                if (!strcmp(st, "timeout"))
                        snprintf(msg, sizeof(msg), "Execution timed out");
                else if (!ok && (!err || !*err))
                        snprintf(msg, sizeof(msg), "%s",
                                 reason && *reason ? reason : st);
                c = json_pack("{s:b,s:s,s:s,s:s?}", "success", ok, "output",
                              json_string_value(json_object_get(out, "stdout"))
                                      ?: "",
                              "error",
                              (!ok && (!err || !*err)) ||
                                              !strcmp(st, "timeout")
                                      ? msg
                                      : (err ? err : ""),
                              "id", id);
        } else {
                const char *m = json_string_value(json_object_get(
                        json_object_get(out, "error"), "message"));
                c = json_pack("{s:b,s:s,s:s,s:s?}", "success", 0, "output",
                              "", "error", m ? m : "request failed", "id",
                              id);
        }
        unsigned status = rs->status;
        free(rs->body);
        rs->body = NULL;
        set_json(rs, status, c);
        json_decref(out);
}

/* POST /execute: the shape agent tutorials post. {code, language,
 * timeout (seconds)} -> {success, output, error, id}: output is stdout;
 * error is stderr, or the reason when the run did not succeed. Other
 * fields are ignored here (tutorial clients send extras); the request is
 * run and audited exactly as /v1/execute, and so is every refusal. */
static void execute_compat(const struct srv_request *rq,
                           struct srv_response *rs) {
        json_t *in = NULL, *v1 = NULL;
        struct srv_request r2 = *rq;
        char *body = NULL;
        /* a body over the bounds goes on as it is: execute() refuses it
         * (and audits that) without parsing it */
        if (!rq->body_too_large &&
            srv_json_within_bounds(rq->body, rq->body_len)) {
                json_error_t je;
                in = json_loadb(rq->body, rq->body_len,
                                JSON_REJECT_DUPLICATES, &je);
        }
        if (json_is_object(in)) {
                v1 = json_object();
                json_t *x;
                if ((x = json_object_get(in, "code")))
                        json_object_set(v1, "code", x);
                x = json_object_get(in, "language");
                json_object_set_new(v1, "language",
                                    x ? json_incref(x)
                                      : json_string("python"));
                x = json_object_get(in, "timeout");
                if (x && json_is_number(x) && json_number_value(x) > 0 &&
                    json_number_value(x) <= 86400)
                        json_object_set_new(
                                v1, "limits",
                                json_pack("{s:I}", "wall_ms",
                                          (json_int_t)(json_number_value(x) *
                                                       1000)));
                else if (x) {
                        srv_error(rs, 400, "invalid_value", "timeout",
                                  "timeout is a number of seconds, more "
                                  "than 0 and at most 86400");
                        refused(rq, rs);
                        goto answer;
                }
                body = json_dumps(v1, JSON_COMPACT);
                r2.body = body ? body : "";
                r2.body_len = body ? strlen(body) : 0;
        }
        execute(&r2, rs);
answer:
        compat_shape(rs);
        json_decref(in);
        json_decref(v1);
        free(body);
}

/* --- reading the audit log ------------------------------------------------ */

/* The value of query parameter name, or NULL. */
static const char *arg(const struct srv_request *rq, const char *name) {
        for (const char *const *a = rq->args; a && a[0]; a += 2)
                if (!strcmp(a[0], name))
                        return a[1];
        return NULL;
}

/* Every query parameter is one of allowed, at most once: 0, or 400. */
static int only_args(const struct srv_request *rq,
                     const char *const *allowed, struct srv_response *rs) {
        if (rq->too_many_args) {
                srv_error(rs, 400, "too_many", NULL,
                          "more than %d query parameters", SRV_MAX_ARGS);
                return -1;
        }
        for (const char *const *a = rq->args; a && a[0]; a += 2) {
                const char *const *k = allowed;
                while (*k && strcmp(*k, a[0]))
                        k++;
                if (!*k) {
                        srv_error(rs, 400, "unknown_parameter", a[0],
                                  "unknown query parameter '%.64s'", a[0]);
                        return -1;
                }
                for (const char *const *b = rq->args; b < a; b += 2)
                        if (!strcmp(b[0], a[0])) {
                                srv_error(rs, 400, "duplicate_parameter",
                                          a[0],
                                          "query parameter '%.64s' is given "
                                          "twice",
                                          a[0]);
                                return -1;
                        }
        }
        return 0;
}

/* A key for reading: 0 and whether it may read every tenant's records
 * (audit:read, admin) or only its own (execute), or an error and -1. A
 * read takes one token of the key's read bucket. */
static int reader(const struct srv_request *rq, al_key_info *key, bool *all,
                  struct srv_response *rs) {
        if (authenticate(rq, key, rs) < 0)
                return -1;
        *all = key->scopes & (AL_SCOPE_AUDIT_READ | AL_SCOPE_ADMIN);
        if (!*all && !(key->scopes & AL_SCOPE_EXECUTE)) {
                srv_error(rs, 403, "forbidden", NULL,
                          "key %s lacks the audit:read scope", key->id);
                return -1;
        }
        return read_rate_take(key, rs);
}

/* A reader thread's own connection to the audit log: its reads neither
 * wait for the writers' mutex nor hold it (SQLite's WAL lets readers and
 * the writer go on at once). */
static __thread al_audit *tl_reads;

void srv_api_reader_start(void) {
        al_error e = {0};
        /* under the writers' mutex: opening registers the state directory
         * as a protected path, which the runs read */
        pthread_mutex_lock(&api.audit_lock);
        if (al_audit_open(api.cfg->state[0] ? api.cfg->state : NULL,
                          &tl_reads, &e) < 0)
                tl_reads = NULL;
        pthread_mutex_unlock(&api.audit_lock);
        if (!tl_reads)
                fprintf(stderr,
                        "{\"event\":\"airlock.serve.reader\",\"error\":"
                        "\"cannot open the audit log for reading; reads "
                        "share the writers' connection\"}\n");
}

void srv_api_reader_stop(void) {
        tl_reads = al_audit_close(tl_reads);
}

/* The connection for a read: the thread's own, else the shared one under
 * its mutex until reads_end. */
static al_audit *reads_begin(void) {
        if (tl_reads)
                return tl_reads;
        pthread_mutex_lock(&api.audit_lock);
        return api.audit;
}

static void reads_end(al_audit *a) {
        if (a != tl_reads)
                pthread_mutex_unlock(&api.audit_lock);
}

static bool is_hex_id(const char *id) {
        size_t n = strspn(id, "0123456789abcdef");
        return n == strlen(id) && n >= 6 && n < AL_AUDIT_ID_SIZE;
}

/* GET /v1/executions/{id}: the audit record (airlock audit show --json).
 * A key with only the execute scope sees its own executions; the lookup
 * looks at nothing else, so another tenant's id (or a prefix only another
 * tenant's ids share) is "not found" exactly like an id that does not
 * exist, and a prefix is ambiguous only among the key's own. */
static void execution(const struct srv_request *rq, const char *id,
                      struct srv_response *rs) {
        al_key_info key;
        bool all;
        if (reader(rq, &key, &all, rs) < 0 || only_args(rq, NULL, rs) < 0)
                return;
        if (!is_hex_id(id)) {
                srv_error(rs, 400, "invalid_value", "id",
                          "an execution id is 6 to 32 lowercase hex digits");
                return;
        }
        json_t *x = NULL;
        al_error e = {0};
        char own[32];
        snprintf(own, sizeof(own), "key:%s", key.id);
        al_audit *a = reads_begin();
        int r = al_audit_get_as(a, id, all ? NULL : own, &x, &e);
        reads_end(a);
        if (r == 0 && !all &&
            strcmp(json_string_value(json_object_get(x, "actor")) ?: "",
                   own)) {
                json_decref(x);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                srv_error(rs, 404, "not_found", "id", "no execution %s", id);
        else if (r == -EEXIST)
                srv_error(rs, 400, "ambiguous_id", "id", "%s", e.msg);
        else if (r < 0)
                srv_error(rs, 500, "audit_unavailable", NULL, "%s", e.msg);
        else {
                snprintf(rs->log_code, sizeof(rs->log_code), "ok");
                set_json(rs, 200, x);
        }
}

#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX 1000
/* A page of /v1/audit stops before the execution that would take it past
 * this many bytes (one execution always goes in: a record is bounded by
 * the audit store's own caps): what one read costs the server in time
 * and memory is bounded whatever limit asks. */
#define AUDIT_PAGE_MAX_BYTES (4u << 20)
/* ...and after examining this many executions (filters computed in C,
 * interrupted and running, may skip most of the log). */
#define AUDIT_PAGE_MAX_SCAN 20000

/* GET /v1/audit?since&until&actor&status&source&language&suspicious&
 * interrupted&limit&cursor: executions newest first, as airlock audit
 * list --json, in pages: {executions, count, more, next}; next is the
 * cursor of the following page (the same query with cursor=next). */
static void audit_list(const struct srv_request *rq, struct srv_response *rs) {
        static const char *const ARGS[] = {
                "since",    "until",      "actor",       "status", "source",
                "language", "suspicious", "interrupted", "limit",  "cursor",
                NULL};
        al_key_info key;
        bool all;
        if (reader(rq, &key, &all, rs) < 0 || only_args(rq, ARGS, rs) < 0)
                return;
        al_audit_filter f = {.limit = AUDIT_PAGE_DEFAULT};
        char since[32], until[32], own[32];
        al_error e = {0};
        const char *v;
        if ((v = arg(rq, "since")) && al_audit_parse_time(v, since, &e) < 0) {
                srv_error(rs, 400, "invalid_value", "since", "%s", e.msg);
                return;
        }
        f.since = v ? since : NULL;
        if ((v = arg(rq, "until")) && al_audit_parse_time(v, until, &e) < 0) {
                srv_error(rs, 400, "invalid_value", "until", "%s", e.msg);
                return;
        }
        f.until = v ? until : NULL;
        f.actor = arg(rq, "actor");
        f.status = arg(rq, "status");
        f.source = arg(rq, "source");
        f.language = arg(rq, "language");
        static const char *const BOOLS[] = {"suspicious", "interrupted"};
        for (int i = 0; i < 2; i++) {
                bool b = false;
                if ((v = arg(rq, BOOLS[i])) && !(b = !strcmp(v, "true")) &&
                    strcmp(v, "false")) {
                        srv_error(rs, 400, "invalid_value", BOOLS[i],
                                  "%s is true or false", BOOLS[i]);
                        return;
                }
                *(i ? &f.interrupted : &f.suspicious) = b;
        }
        if ((v = arg(rq, "limit")) &&
            (al_parse_u64(v, &f.limit) < 0 || f.limit < 1 ||
             f.limit > AUDIT_PAGE_MAX)) {
                srv_error(rs, 400, "invalid_value", "limit",
                          "limit is a number from 1 to %d", AUDIT_PAGE_MAX);
                return;
        }
        /* the cursor is a chain position; opaque to clients */
        if ((v = arg(rq, "cursor")) &&
            (al_parse_u64(v, &f.before) < 0 || f.before < 1)) {
                srv_error(rs, 400, "invalid_value", "cursor",
                          "cursor is the next value of an earlier page");
                return;
        }
        snprintf(own, sizeof(own), "key:%s", key.id);
        if (!all) {
                if (f.actor && strcmp(f.actor, own)) {
                        srv_error(rs, 403, "forbidden", "actor",
                                  "key %s may read only its own executions "
                                  "(actor %s) without the audit:read scope",
                                  key.id, own);
                        return;
                }
                f.actor = own;
        }
        al_audit_page pg = {.max_bytes = AUDIT_PAGE_MAX_BYTES,
                            .max_scan = AUDIT_PAGE_MAX_SCAN};
        al_audit *a = reads_begin();
        int r = al_audit_query_page(a, &f, &pg, &e);
        reads_end(a);
        if (r < 0) {
                srv_error(rs, 500, "audit_unavailable", NULL, "%s", e.msg);
                return;
        }
        /* the page's text as it is, in the object around it */
        char tail[128];
        if (pg.more)
                snprintf(tail, sizeof(tail),
                         ",\"count\":%llu,\"more\":true,\"next\":\"%llu\"}",
                         (unsigned long long)pg.count,
                         (unsigned long long)pg.next);
        else
                snprintf(tail, sizeof(tail),
                         ",\"count\":%llu,\"more\":false,\"next\":null}",
                         (unsigned long long)pg.count);
        static const char head[] = "{\"executions\":";
        size_t n = strlen(head) + pg.len + strlen(tail);
        char *body = malloc(n + 1);
        if (!body) {
                free(pg.json);
                srv_error(rs, 500, "internal_error", NULL, "out of memory");
                return;
        }
        memcpy(body, head, strlen(head));
        memcpy(body + strlen(head), pg.json, pg.len);
        memcpy(body + strlen(head) + pg.len, tail, strlen(tail) + 1);
        free(pg.json);
        rs->status = 200;
        rs->body = body;
        rs->len = n;
        rs->content_type = "application/json";
        snprintf(rs->log_code, sizeof(rs->log_code), "ok");
}

/* GET /metrics: the Prometheus text format. Open unless --metrics-auth. */
static void metrics(const struct srv_request *rq, struct srv_response *rs) {
        if (api.cfg->metrics_auth) {
                al_key_info key;
                if (authenticate(rq, &key, rs) < 0)
                        return;
                if (!(key.scopes & (AL_SCOPE_AUDIT_READ | AL_SCOPE_ADMIN))) {
                        srv_error(rs, 403, "forbidden", NULL,
                                  "key %s lacks the audit:read scope",
                                  key.id);
                        return;
                }
        }
        uint64_t dropped = 0, failed = 0;
        pthread_mutex_lock(&api.audit_lock);
        al_audit_alert_counts(api.audit, &dropped, &failed);
        pthread_mutex_unlock(&api.audit_lock);
        pthread_rwlock_rdlock(&api.keys_lock);
        size_t nkeys = api.nkeys;
        pthread_rwlock_unlock(&api.keys_lock);
        size_t len = 0;
        char *text = srv_metrics_render(&len, dropped, failed, nkeys);
        if (!text) {
                srv_error(rs, 500, "internal_error", NULL, "out of memory");
                return;
        }
        rs->status = 200;
        rs->body = text;
        rs->len = len;
        rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
        snprintf(rs->log_code, sizeof(rs->log_code), "ok");
}

/* The OpenAPI document (docs/openapi.json), embedded at build time. */
extern const char srv_openapi_json[];

static void openapi(struct srv_response *rs) {
        rs->status = 200;
        rs->body = strdup(srv_openapi_json);
        rs->len = rs->body ? strlen(rs->body) : 0;
        rs->content_type = "application/json";
        if (!rs->body)
                srv_error(rs, 500, "internal_error", NULL, "out of memory");
}

/* POST /mcp: MCP's Streamable HTTP transport, without streams: every
 * POST is one JSON-RPC message answered by one JSON response (or 202 for a
 * notification); no session id is issued, so every POST stands alone and
 * tools work without a prior initialize. The same keys as the rest of the
 * API: any valid key lists and checks, run_code wants the execute scope
 * (and its rate, concurrency and ceilings) and is audited with source
 * mcp. */
static bool origin_local(const char *o) {
        static const char *const OK[] = {"http://localhost", "https://localhost",
                                         "http://127.0.0.1", "https://127.0.0.1",
                                         "http://[::1]", "https://[::1]", NULL};
        for (const char *const *x = OK; *x; x++) {
                size_t n = strlen(*x);
                if (!strncmp(o, *x, n) && (o[n] == '\0' || o[n] == ':' ||
                                           o[n] == '/'))
                        return true;
        }
        return false;
}

static void mcp_http(const struct srv_request *rq0, struct srv_response *rs) {
        struct srv_request mrq = *rq0;
        const struct srv_request *rq = &mrq;
        mrq.source = "mcp";
        if (rq->origin && !origin_local(rq->origin)) {
                srv_error(rs, 403, "forbidden_origin", NULL,
                          "Origin %.200s may not call /mcp (only local "
                          "origins; non-browser clients send none)",
                          rq->origin);
                srv_api_refused(rq, rs);
                return;
        }
        /* one token of the key's rate per POST, whatever it asks (a
         * run_code inside is not charged again) */
        if (srv_api_authorize(rq, 0, true, rs) < 0) {
                srv_api_refused(rq, rs);
                return;
        }
        mrq.rate_taken = true;
        if (rq->mcp_version) {
                const char *const *v = mcp_versions;
                while (*v && strcmp(*v, rq->mcp_version))
                        v++;
                if (!*v) {
                        srv_error(rs, 400, "unsupported_protocol_version",
                                  NULL,
                                  "MCP-Protocol-Version %.32s is not one of "
                                  "2025-11-25, 2025-06-18, 2025-03-26, "
                                  "2024-11-05",
                                  rq->mcp_version);
                        srv_api_refused(rq, rs);
                        return;
                }
        }
        if (rq->body_too_large) {
                srv_error(rs, 413, "body_too_large", NULL,
                          "the body is larger than %zu bytes",
                          api.cfg->max_body);
                srv_api_refused(rq, rs);
                return;
        }
        struct mcp_session s = {.stateless = true, .base = *rq};
        s.base.source = "mcp";
        struct mcp_reply rep;
        mcp_handle(&s, rq->body, rq->body_len, &rep);
        rs->status = rep.http_status;
        rs->body = rep.body;
        rs->len = rep.body ? strlen(rep.body) : 0;
        rs->content_type = "application/json";
        rs->leftover = rep.leftover;
        snprintf(rs->log_code, sizeof(rs->log_code), "mcp");
}

/* --- routing ------------------------------------------------------------------ */

#define EXECUTIONS_PREFIX "/v1/executions/"

enum srv_route srv_route_of(const char *p) {
        static const struct {
                const char *path;
                enum srv_route r;
        } R[] = {
                {"/v1/execute", SRV_ROUTE_EXECUTE},
                {"/execute", SRV_ROUTE_EXECUTE_COMPAT},
                {"/v1/audit", SRV_ROUTE_AUDIT},
                {"/v1/languages", SRV_ROUTE_LANGUAGES},
                {"/healthz", SRV_ROUTE_HEALTHZ},
                {"/readyz", SRV_ROUTE_READYZ},
                {"/metrics", SRV_ROUTE_METRICS},
                {"/openapi.json", SRV_ROUTE_OPENAPI},
                {"/mcp", SRV_ROUTE_MCP},
        };
        for (size_t i = 0; i < sizeof(R) / sizeof(R[0]); i++)
                if (!strcmp(p, R[i].path))
                        return R[i].r;
        if (!strncmp(p, EXECUTIONS_PREFIX, strlen(EXECUTIONS_PREFIX)) &&
            p[strlen(EXECUTIONS_PREFIX)] && !strchr(p + strlen(EXECUTIONS_PREFIX), '/'))
                return SRV_ROUTE_EXECUTION;
        return SRV_ROUTE_OTHER;
}

/* Ready unless the audit store is about to fill up (then every run would
 * be refused): its free space, and 503 below AL_AUDIT_MIN_FREE_BYTES. */
static void readyz(struct srv_response *rs) {
        uint64_t free_b = 0;
        al_error e = {0};
        if (al_audit_free_bytes(api.cfg->state, &free_b, &e) < 0)
                srv_error(rs, 503, "audit_unavailable", NULL, "%s", e.msg);
        else if (free_b < AL_AUDIT_MIN_FREE_BYTES)
                srv_error(rs, 503, "audit_store_full", NULL,
                          "the audit store has %llu bytes free, under %llu: "
                          "runs would be refused",
                          (unsigned long long)free_b,
                          (unsigned long long)AL_AUDIT_MIN_FREE_BYTES);
        else
                set_json(rs, 200,
                         json_pack("{s:s,s:{s:I,s:I,s:b}}", "status", "ready",
                                   "audit_store", "free_bytes",
                                   (json_int_t)free_b, "min_free_bytes",
                                   (json_int_t)AL_AUDIT_MIN_FREE_BYTES, "ok",
                                   1));
}

void srv_api_handle(const struct srv_request *rq, struct srv_response *rs) {
        const char *p = rq->path;
        enum srv_route route = srv_route_of(p);
        bool post = route == SRV_ROUTE_EXECUTE ||
                    route == SRV_ROUTE_EXECUTE_COMPAT ||
                    route == SRV_ROUTE_MCP;
        bool get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
        if (route == SRV_ROUTE_OTHER) {
                srv_error(rs, 404, "not_found", NULL, "no route %.200s", p);
                return;
        }
        if (post ? strcmp(rq->method, "POST") : !get) {
                srv_error(rs, 405, "method_not_allowed", NULL, "%s wants %s",
                          p, post ? "POST" : "GET");
                rs->allow = post ? "POST" : "GET, HEAD";
                return;
        }
        switch (route) {
        case SRV_ROUTE_EXECUTE:
                execute(rq, rs);
                break;
        case SRV_ROUTE_EXECUTE_COMPAT:
                execute_compat(rq, rs);
                break;
        case SRV_ROUTE_EXECUTION:
                execution(rq, p + strlen(EXECUTIONS_PREFIX), rs);
                break;
        case SRV_ROUTE_AUDIT:
                audit_list(rq, rs);
                break;
        case SRV_ROUTE_LANGUAGES:
                languages(rs);
                break;
        case SRV_ROUTE_HEALTHZ:
                set_json(rs, 200, json_pack("{s:s}", "status", "ok"));
                break;
        case SRV_ROUTE_READYZ:
                if (api.shutting_down)
                        srv_error(rs, 503, "shutting_down", NULL,
                                  "the server is shutting down");
                else
                        readyz(rs);
                break;
        case SRV_ROUTE_METRICS:
                metrics(rq, rs);
                break;
        case SRV_ROUTE_OPENAPI:
                openapi(rs);
                break;
        case SRV_ROUTE_MCP:
                mcp_http(rq, rs);
                break;
        default:
                srv_error(rs, 404, "not_found", NULL, "no route %.200s", p);
        }
}

/* A request refused outside the handlers: audited like every other
 * refusal, with the key as actor when it is valid. */
static void refused(const struct srv_request *rq, struct srv_response *rs) {
        al_key_info key;
        struct srv_response scratch = {0};
        char actor[AL_KEY_ID_SIZE + 64] = "anonymous";
        if (rq->local_actor)
                snprintf(actor, sizeof(actor), "%s", rq->local_actor);
        else if (authenticate(rq, &key, &scratch) == 0) {
                snprintf(actor, sizeof(actor), "key:%s", key.id);
                snprintf(rs->log_key, sizeof(rs->log_key), "%s", actor);
        }
        free(scratch.body);
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = actor};
        audit_refused(rq, &who, NULL, rs, NULL);
}

/* A request the front refused before it reached the API (on its headers,
 * queue full, queue timeout, shutting down): audited, and in the shape of
 * its route. */
void srv_api_refused(const struct srv_request *rq, struct srv_response *rs) {
        refused(rq, rs);
        if (srv_route_of(rq->path) == SRV_ROUTE_EXECUTE_COMPAT)
                compat_shape(rs);
}

int srv_api_admit(const struct srv_request *rq, struct srv_response *rs) {
        enum srv_route route = srv_route_of(rq->path);
        bool exec = route == SRV_ROUTE_EXECUTE ||
                    route == SRV_ROUTE_EXECUTE_COMPAT ||
                    route == SRV_ROUTE_MCP;
        bool method_ok = exec ? !strcmp(rq->method, "POST")
                              : !strcmp(rq->method, "GET") ||
                                        !strcmp(rq->method, "HEAD");
        al_key_info key;
        if (route == SRV_ROUTE_OTHER) {
                srv_error(rs, 404, "not_found", NULL, "no route %.200s",
                          rq->path);
                return -1;
        }
        if (!exec) {
                /* reads: logged, not audited; a key is checked before
                 * anything else (a body is never kept on these routes) */
                bool keyed = route == SRV_ROUTE_EXECUTION ||
                             route == SRV_ROUTE_AUDIT ||
                             (route == SRV_ROUTE_METRICS &&
                              api.cfg->metrics_auth);
                if (!method_ok) {
                        srv_error(rs, 405, "method_not_allowed", NULL,
                                  "%s wants GET", rq->path);
                        rs->allow = "GET, HEAD";
                        return -1;
                }
                if (keyed && !rq->local_actor &&
                    authenticate(rq, &key, rs) < 0)
                        return -1;
                return 0;
        }
        /* executions: who asks first, then what; every refusal audited
         * (srv_api_refused re-reads the key for the actor) */
        if (!rq->local_actor && authenticate(rq, &key, rs) < 0)
                goto refuse;
        if (!method_ok) {
                srv_error(rs, 405, "method_not_allowed", NULL,
                          "%s wants POST", rq->path);
                rs->allow = "POST";
                goto refuse;
        }
        if (route != SRV_ROUTE_MCP && !rq->local_actor &&
            !(key.scopes & (AL_SCOPE_EXECUTE | AL_SCOPE_ADMIN))) {
                srv_error(rs, 403, "forbidden", NULL,
                          "key %s lacks the execute scope", key.id);
                goto refuse;
        }
        if (rq->body_too_large) {
                srv_error(rs, 413, "body_too_large", NULL,
                          "the body is larger than %zu bytes",
                          api.cfg->max_body);
                goto refuse;
        }
        return 0;
refuse:
        srv_api_refused(rq, rs);
        return -1;
}

int srv_api_authorize(const struct srv_request *rq, unsigned scopes,
                      bool take_rate, struct srv_response *rs) {
        al_key_info key;
        if (rq->local_actor)
                return 0;
        if (authenticate(rq, &key, rs) < 0)
                return -1;
        if (scopes && !(key.scopes & (scopes | AL_SCOPE_ADMIN))) {
                srv_error(rs, 403, "forbidden", NULL,
                          "key %s lacks the scope for this", key.id);
                return -1;
        }
        return take_rate ? rate_take(&key, rs) : 0;
}

json_t *srv_api_check(const char *lang, const char *code, size_t len,
                      al_error *err) {
        al_spec *s = al_spec_new();
        json_t *out = NULL;
        al_findings f = {0};
        if (!s) {
                al_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        if (al_spec_set_language(s, lang, err) < 0)
                goto done;
        const char *name = al_spec_language(s);
        if (!al_check_supports(name)) {
                al_error_set(err, ENOTSUP,
                             "no static checker for %s (python, node and "
                             "bash have one)",
                             name);
                goto done;
        }
        pthread_rwlock_rdlock(&api.policy_lock);
        int r = al_check_code(api.policy, name, code, len, &f, err);
        json_t *fj = r == 0 ? al_findings_json(&f) : NULL;
        if (fj)
                out = json_pack(
                        "{s:s,s:s,s:s,s:o,s:I,s:o}", "language", name,
                        "policy", al_policy_name(api.policy), "threshold",
                        al_severity_name(al_policy_threshold(api.policy)),
                        "findings", fj, "at_or_above_threshold",
                        (json_int_t)al_findings_count_at(
                                &f, al_policy_threshold(api.policy)),
                        "syntax_error",
                        f.syntax_error
                                ? json_pack("{s:I,s:I,s:o}", "line",
                                            (json_int_t)f.error_line,
                                            "column",
                                            (json_int_t)f.error_column,
                                            "near", al_jstr(f.error_snippet))
                                : json_null());
        pthread_rwlock_unlock(&api.policy_lock);
        if (r == 0 && !out)
                al_error_set(err, ENOMEM, "out of memory");
done:
        al_findings_free(&f);
        al_spec_free(s);
        return out;
}

json_t *srv_api_languages(void) {
        json_t *a = json_array();
        for (size_t i = 0; i < al_languages_count(); i++)
                json_array_append_new(
                        a, json_pack("{s:s,s:b,s:s}", "name",
                                     al_language_name(i), "available",
                                     al_language_available(i), "description",
                                     al_language_describe(i)));
        return a;
}

/* Async-signal-safe: airlock mcp and agent call it from a handler. */
void srv_api_cancel_all(void) {
        api.shutting_down = true;
        uint64_t one = 1;
        int fd = api.cancel_fd;
        if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
                static const char m[] = "airlock: cannot cancel runs\n";
                if (write(STDERR_FILENO, m, sizeof(m) - 1) < 0)
                        return;
        }
}

int srv_api_init(const struct srv_config *cfg, al_error *err) {
        int r;
        api.cfg = cfg;
        if ((r = al_audit_open(cfg->state[0] ? cfg->state : NULL, &api.audit,
                               err)) < 0)
                return r;
        if ((r = al_audit_alerts_start(api.audit, err)) < 0)
                return r;
        if ((r = al_keys_open(cfg->state[0] ? cfg->state : NULL, &api.keys_db,
                              err)) < 0)
                return r;
        srv_api_reload_keys();
        if (!(api.policy = al_policy_load(cfg->policy[0] ? cfg->policy : NULL,
                                          err)))
                return -EINVAL;
        /* EFD_SEMAPHORE off: once written it stays readable, so every run
         * (also ones that start later) sees the cancel */
        api.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (api.cancel_fd < 0)
                return al_error_errno(err, errno, "eventfd");
        return 0;
}

void srv_api_fini(void) {
        anon_sweep(true); /* the summaries of open windows: none is lost */
        al_audit_alerts_drain(api.audit, 5000);
        api.audit = al_audit_close(api.audit);
        api.keys_db = al_keys_close(api.keys_db);
        api.policy = al_policy_free(api.policy);
        free(api.keys);
        free(api.buckets);
        int fd = api.cancel_fd;
        api.cancel_fd = -1;
        if (fd >= 0)
                close(fd);
}
