/* SPDX-License-Identifier: MIT */
/* The service's ground floor: its state, replies, and who may do what
 * (keys, rates, concurrency, the in-flight budget). The other files of the
 * service build on it; it calls none of them. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "airlock.h"
#include "json.h"
#include "service-internal.h"

/* Keys missing from the cache (a key made since the last reload) are
 * looked up in keys.db at most this often, all clients together: a flood
 * of unknown keys costs at most these lookups, and past them an unknown
 * key is refused from the cache as before (the reload every second still
 * brings new keys in). */
#define KEY_LOOKUP_PER_S 20.0 /* lookups per second, sustained */
#define KEY_LOOKUP_BURST 20.0 /* lookups at once after a quiet spell */

struct srv_api_state srv_api = {
        .audit_lock = PTHREAD_MUTEX_INITIALIZER,
        .keys_lock = PTHREAD_RWLOCK_INITIALIZER,
        .policy_lock = PTHREAD_RWLOCK_INITIALIZER,
        .bucket_lock = PTHREAD_MUTEX_INITIALIZER,
        .cancel_fd = -1,
};

double srv_api_now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --- responses ------------------------------------------------------------ */

void srv_api_set_json(struct srv_response *rs, unsigned status, json_t *o) {
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

void srv_api_error(struct srv_response *rs, unsigned status, const char *code,
                   const char *field, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_t *e =
                json_pack("{s:s,s:o}", "code", code, "message", al_jstr(msg));
        if (e && field)
                json_object_set_new(e, "field", json_string(field));
        srv_api_set_json(rs, status, json_pack("{s:o}", "error", e));
        snprintf(rs->log_code, sizeof(rs->log_code), "%s", code);
}

void srv_api_log(json_t *event) {
        char *line =
                event ? json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER |
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
        if (!srv_api.keys_db ||
            al_keys_list(srv_api.keys_db, true, &v, &n, &e) < 0) {
                if (e.msg[0])
                        srv_api_log(
                                json_pack("{s:s,s:s,s:o}", "event",
                                          "airlock.serve.keys", "error",
                                          "cannot read keys.db; the old keys "
                                          "stay",
                                          "detail", al_jstr(e.msg)));
                return;
        }
        pthread_rwlock_wrlock(&srv_api.keys_lock);
        free(srv_api.keys);
        srv_api.keys = v;
        srv_api.nkeys = n;
        pthread_rwlock_unlock(&srv_api.keys_lock);
}

/* One token from r (capacity count, refilled count per period_s): 0, or
 * -1 and the seconds until one is there. Under bucket_lock. */
static int take(struct rate *r, double count, double period_s,
                unsigned *retry_after) {
        double per_s = count / period_s, t = srv_api_now();
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
        if (!srv_api.keys_db || !al_keys_well_formed(presented))
                return -1;
        unsigned wait;
        pthread_mutex_lock(&srv_api.bucket_lock);
        int r = take(&srv_api.lookups, KEY_LOOKUP_BURST,
                     KEY_LOOKUP_BURST / KEY_LOOKUP_PER_S, &wait);
        pthread_mutex_unlock(&srv_api.bucket_lock);
        if (r < 0) {
                METER(key_lookup, SRV_KEY_LOOKUP_RATE_LIMITED);
                return -1;
        }
        al_error e = {0};
        r = al_keys_find(srv_api.keys_db, presented, k, &e);
        METER(key_lookup, r == 0         ? SRV_KEY_LOOKUP_FOUND
                          : r == -ENOENT ? SRV_KEY_LOOKUP_UNKNOWN
                                         : SRV_KEY_LOOKUP_ERROR);
        if (r < 0)
                return -1;
        pthread_rwlock_wrlock(&srv_api.keys_lock);
        bool have = false;
        for (size_t i = 0; i < srv_api.nkeys && !have; i++)
                have = !strcmp(srv_api.keys[i].id, k->id);
        al_key_info *v =
                have ? NULL
                     : realloc(srv_api.keys, (srv_api.nkeys + 1) * sizeof(*v));
        if (v) {
                srv_api.keys = v;
                srv_api.keys[srv_api.nkeys++] = *k;
        }
        pthread_rwlock_unlock(&srv_api.keys_lock);
        return 0;
}

/* The key the request presents, copied into *k: 0, or an error response
 * (401) and -1. */
int srv_api_authenticate(const struct srv_request *rq, al_key_info *k,
                         struct srv_response *rs) {
        const char *presented = rq->api_key;
        if (!presented && rq->auth) {
                if (strncasecmp(rq->auth, "Bearer ", 7) != 0) {
                        srv_api_error(rs, 401, "unauthorized", NULL,
                                      "Authorization wants 'Bearer KEY'");
                        return -1;
                }
                presented = rq->auth + 7;
                while (*presented == ' ')
                        presented++;
        }
        if (!presented || !*presented) {
                srv_api_error(rs, 401, "unauthorized", NULL,
                              "an API key is required: 'Authorization: Bearer "
                              "KEY' or 'X-API-Key: KEY'");
                return -1;
        }
        pthread_rwlock_rdlock(&srv_api.keys_lock);
        const al_key_info *f =
                al_keys_verify(srv_api.keys, srv_api.nkeys, presented);
        if (f)
                *k = *f;
        pthread_rwlock_unlock(&srv_api.keys_lock);
        if (!f && key_lookup(presented, k) < 0) {
                srv_api_error(rs, 401, "invalid_api_key", NULL,
                              "the API key is not valid (unknown or revoked)");
                return -1;
        }
        snprintf(rs->log_key, sizeof(rs->log_key), "key:%s", k->id);
        return 0;
}

int srv_api_authorize(const struct srv_request *rq, unsigned scopes,
                      bool take_rate, struct srv_response *rs) {
        al_key_info key;
        if (rq->local_actor)
                return 0;
        if (srv_api_authenticate(rq, &key, rs) < 0)
                return -1;
        if (scopes && !(key.scopes & (scopes | AL_SCOPE_ADMIN))) {
                srv_api_error(rs, 403, "forbidden", NULL,
                              "key %s lacks the scope for this", key.id);
                return -1;
        }
        return take_rate ? srv_api_rate_take(&key, rs) : 0;
}

static struct bucket *bucket_of(const char *id) {
        for (size_t i = 0; i < srv_api.nbuckets; i++)
                if (!strcmp(srv_api.buckets[i].id, id))
                        return &srv_api.buckets[i];
        struct bucket *b =
                realloc(srv_api.buckets, (srv_api.nbuckets + 1) * sizeof(*b));
        if (!b)
                return NULL;
        srv_api.buckets = b;
        b = &srv_api.buckets[srv_api.nbuckets++];
        memset(b, 0, sizeof(*b));
        snprintf(b->id, sizeof(b->id), "%s", id);
        return b;
}

/* Take one request from the key's rate: 0, or 429 with Retry-After. */
int srv_api_rate_take(const al_key_info *k, struct srv_response *rs) {
        if (!k->rate_count)
                return 0;
        int r = 0;
        pthread_mutex_lock(&srv_api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b)
                r = take(&b->exec, k->rate_count, k->rate_period_s,
                         &rs->retry_after);
        pthread_mutex_unlock(&srv_api.bucket_lock);
        if (r < 0)
                srv_api_error(rs, 429, "rate_limited", NULL,
                              "key %s is over its rate of %u per %u s", k->id,
                              k->rate_count, k->rate_period_s);
        return r;
}

/* Take one read of the audit log from the key's read bucket (the
 * server's --read-rate, for every key alike): 0, or 429 with
 * Retry-After. */
int srv_api_read_rate_take(const al_key_info *k, struct srv_response *rs) {
        const struct srv_config *c = srv_api.cfg;
        if (!c->read_rate_count)
                return 0;
        int r = 0;
        pthread_mutex_lock(&srv_api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b)
                r = take(&b->read, c->read_rate_count, c->read_rate_period_s,
                         &rs->retry_after);
        pthread_mutex_unlock(&srv_api.bucket_lock);
        if (r < 0)
                srv_api_error(rs, 429, "rate_limited", NULL,
                              "key %s is over the rate of audit reads, %u per "
                              "%u s",
                              k->id, c->read_rate_count, c->read_rate_period_s);
        return r;
}

/* One more execution of the key in flight, within its max_concurrent. */
int srv_api_concurrency_take(const al_key_info *k, struct srv_response *rs) {
        int r = 0;
        pthread_mutex_lock(&srv_api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b && k->max_concurrent && b->active >= k->max_concurrent)
                r = -1;
        else if (b)
                b->active++;
        pthread_mutex_unlock(&srv_api.bucket_lock);
        if (r < 0) {
                rs->retry_after = 1;
                srv_api_error(rs, 429, "too_many_concurrent", NULL,
                              "key %s has %u executions running already (its "
                              "max_concurrent)",
                              k->id, k->max_concurrent);
        }
        return r;
}

void srv_api_concurrency_give(const al_key_info *k) {
        pthread_mutex_lock(&srv_api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b && b->active)
                b->active--;
        pthread_mutex_unlock(&srv_api.bucket_lock);
}

/* Reserve cost bytes of the in-flight budget, or refuse (503): a run
 * that does not fit now is not started, so the server's memory for
 * results stays bounded whatever the keys ask. */
int srv_api_budget_take(uint64_t cost, struct srv_response *rs) {
        uint64_t cap = srv_api.cfg->max_inflight_bytes;
        uint64_t cur = atomic_load(&srv_api.inflight);
        do {
                if (cap && (cost > cap || cur > cap - cost)) {
                        rs->retry_after = 1;
                        srv_api_error(
                                rs, 503, "response_budget_exhausted", NULL,
                                "this run may need %llu MiB for its result "
                                "and the server has %llu of %llu MiB "
                                "free (--max-inflight)",
                                (unsigned long long)(cost >> 20),
                                (unsigned long long)((cap - (cur < cap
                                                                     ? cur
                                                                     : cap)) >>
                                                     20),
                                (unsigned long long)(cap >> 20));
                        return -1;
                }
        } while (!atomic_compare_exchange_weak(&srv_api.inflight, &cur,
                                               cur + cost));
        METER(inflight_add, (int64_t)cost);
        return 0;
}

void srv_api_budget_give(uint64_t cost) {
        atomic_fetch_sub(&srv_api.inflight, cost);
        METER(inflight_add, -(int64_t)cost);
}

int srv_api_hold(struct srv_response *rs) {
        uint64_t n = rs->len;
        if (n < SRV_HOLD_MIN)
                return 0;
        if (srv_api_budget_take(n, &(struct srv_response){0}) < 0) {
                /* the answer exists but would not fit: refused like a run
                 * whose result would not */
                free(rs->body);
                rs->body = NULL;
                rs->retry_after = 1;
                srv_api_error(rs, 503, "response_budget_exhausted", NULL,
                              "this answer of %llu bytes does not fit the "
                              "server's --max-inflight now; retry later",
                              (unsigned long long)n);
                return -1;
        }
        rs->budget += n;
        return 0;
}

void srv_api_release(struct srv_response *rs) {
        if (rs->budget)
                srv_api_budget_give(rs->budget);
        rs->budget = 0;
}

/* Async-signal-safe: airlock mcp and agent call it from a handler. */
void srv_api_cancel_all(void) {
        srv_api.shutting_down = true;
        uint64_t one = 1;
        int fd = srv_api.cancel_fd;
        if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
                static const char m[] = "airlock: cannot cancel runs\n";
                if (write(STDERR_FILENO, m, sizeof(m) - 1) < 0)
                        return;
        }
}

void srv_api_counts(uint64_t *alerts_dropped, uint64_t *alerts_failed,
                    size_t *keys_active) {
        pthread_mutex_lock(&srv_api.audit_lock);
        al_audit_alert_counts(srv_api.audit, alerts_dropped, alerts_failed);
        pthread_mutex_unlock(&srv_api.audit_lock);
        pthread_rwlock_rdlock(&srv_api.keys_lock);
        *keys_active = srv_api.nkeys;
        pthread_rwlock_unlock(&srv_api.keys_lock);
}

const struct srv_config *srv_api_config(void) {
        return srv_api.cfg;
}

void srv_api_set_meter(const struct srv_api_meter *m) {
        srv_api.meter = m;
}
