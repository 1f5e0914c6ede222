/* SPDX-License-Identifier: MIT */
/* The service's core: its state, keys, rates, concurrency, the in-flight
 * budget, one execution from request to result (service.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "airlock.h"
#include "error.h"
#include "findings-json.h"
#include "json.h"
#include "service-internal.h"
#include "util.h"

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

void srv_api_reload_policy(void) {
        al_error e = {0};
        const char *path = srv_api.cfg->policy[0] ? srv_api.cfg->policy : NULL;
        al_policy *p = al_policy_load(path, &e);
        if (!p) {
                srv_api_log(json_pack("{s:s,s:s,s:o}", "event",
                                      "airlock.serve.reload_failed", "what",
                                      "policy", "error", al_jstr(e.msg)));
                return;
        }
        pthread_rwlock_wrlock(&srv_api.policy_lock);
        al_policy *old = srv_api.policy;
        srv_api.policy = p;
        pthread_rwlock_unlock(&srv_api.policy_lock);
        al_policy_free(old);
        srv_api_log(json_pack("{s:s,s:[s,s]}", "event",
                              "airlock.serve.reloaded", "what", "keys",
                              "policy"));
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
static int rate_take(const al_key_info *k, struct srv_response *rs) {
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
static int concurrency_take(const al_key_info *k, struct srv_response *rs) {
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

/* What one execution may hold while its result becomes a response: per
 * output byte (two streams) the run's buffer, a UTF-8-clean copy and its
 * JSON text (up to 6 bytes for a control byte); per collected byte the
 * file, its base64 and its JSON text. A cost model, not a measurement:
 * it bounds the sum over concurrent runs by --max-inflight. */
#define SRV_COST_PER_OUTPUT_BYTE 8
#define SRV_COST_PER_COLLECT_BYTE 4
#define SRV_COST_BASE (1u << 20)        /* the rest of the result */
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

static void budget_give(uint64_t cost) {
        atomic_fetch_sub(&srv_api.inflight, cost);
        METER(inflight_add, -(int64_t)cost);
}

void srv_api_release(struct srv_response *rs) {
        if (rs->budget)
                budget_give(rs->budget);
        rs->budget = 0;
}

static void concurrency_give(const al_key_info *k) {
        pthread_mutex_lock(&srv_api.bucket_lock);
        struct bucket *b = bucket_of(k->id);
        if (b && b->active)
                b->active--;
        pthread_mutex_unlock(&srv_api.bucket_lock);
}

static int validate(al_spec *s, const char *mode, char **findings,
                    struct srv_response *rs) {
        al_verdict v;
        al_error e = {0};
        *findings = NULL;
        pthread_rwlock_rdlock(&srv_api.policy_lock);
        al_spec_validate(s, srv_api.policy,
                         mode ? mode : srv_api.cfg->policy_mode, &v, &e);
        pthread_rwlock_unlock(&srv_api.policy_lock);
        *findings = v.findings_json;
        v.findings_json = NULL;
        int r = 0;
        if (v.refusal) {
                bool ours = !strcmp(v.refusal, "policy_guard_failed");
                srv_api_error(rs, ours ? 500 : 422, v.refusal,
                              ours ? NULL : "code", "%s", v.message);
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

/* Who asks and whether they may run now: the key (or a local front-end)
 * with the execute scope, a token of its rate, a body within --max-body.
 * 0, or -1 with the refusal audited. */
static int admit_run(const struct srv_request *rq, al_key_info *key,
                     al_audit_who *who, char *actor, size_t size,
                     struct srv_response *rs) {
        if (rq->local_actor) {
                /* a local front-end: the user who started it, no key, no
                 * ceilings but the server's */
                *key = (al_key_info){.scopes = AL_SCOPE_EXECUTE};
                snprintf(actor, size, "%s", rq->local_actor);
        } else if (srv_api_authenticate(rq, key, rs) < 0) {
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return -1;
        } else
                snprintf(actor, size, "key:%s", key->id);
        who->actor = actor;
        if (!(key->scopes & (AL_SCOPE_EXECUTE | AL_SCOPE_ADMIN))) {
                srv_api_error(rs, 403, "forbidden", NULL,
                              "key %s lacks the execute scope", key->id);
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return -1;
        }
        if (!rq->rate_taken && rate_take(key, rs) < 0) {
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return -1;
        }
        if (rq->body_too_large) {
                srv_api_error(rs, 413, "body_too_large", NULL,
                              "the body is larger than %zu bytes",
                              srv_api.cfg->max_body);
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return -1;
        }
        return 0;
}

/* The body as a JSON object within the bounds, or NULL with the refusal
 * audited. */
static json_t *parse_body(const struct srv_request *rq, const al_audit_who *who,
                          struct srv_response *rs) {
        /* the bounds on the bytes first: a tree is built only for a body
         * that stays within them */
        if (!srv_api_json_within_bounds(rq->body, rq->body_len)) {
                srv_api_error(rs, 400, "too_complex", NULL,
                              "the body nests deeper than %d or has more "
                              "than %d values",
                              MAX_DEPTH, MAX_VALUES);
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return NULL;
        }
        json_error_t je;
        json_t *req =
                json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
        size_t count = 0;
        if (!req) {
                bool utf8 = strstr(je.text, "UTF-8") ||
                            strstr(je.text, "decode byte");
                srv_api_error(rs, 400, utf8 ? "invalid_utf8" : "invalid_json",
                              NULL,
                              utf8 ? "the body is not valid UTF-8 (send code "
                                     "that is not as code_base64): %s at "
                                     "byte %d"
                                   : "the body is not valid JSON: %s at byte "
                                     "%d",
                              je.text, je.position);
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return NULL;
        }
        if (!json_is_object(req) || !srv_api_json_bounded(req, 0, &count)) {
                if (!json_is_object(req))
                        srv_api_error(rs, 400, "invalid_json", NULL,
                                      "the body must be a JSON object");
                else
                        srv_api_error(rs, 400, "too_complex", NULL,
                                      "the body nests deeper than %d or has "
                                      "more than %d values",
                                      MAX_DEPTH, MAX_VALUES);
                json_decref(req);
                srv_api_audit_refused(rq, who, NULL, rs, NULL);
                return NULL;
        }
        return req;
}

/* The admitted run: its started record, the run, its finished record and
 * the result object (with the request's metadata) in rs. The key's slot
 * of max_concurrent is given back here. */
static void run_and_record(al_spec *s, const al_key_info *key,
                           const al_audit_who *who, const char *findings,
                           json_t *req, struct srv_response *rs) {
        al_spec_set_cancel_fd(s, srv_api.cancel_fd);
        al_error e = {0};
        char id[AL_AUDIT_ID_SIZE] = "";
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_started(srv_api.audit, who, s, findings, id, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                concurrency_give(key);
                METER(audit_failure);
                srv_api_error(rs, 503, "audit_unavailable", NULL,
                              "not running: the audit log cannot be "
                              "written: %s",
                              e.msg);
                rs->retry_after = 5;
                return;
        }
        al_result *res = NULL;
        double t0 = srv_api_now();
        r = al_run(s, &res, &e);
        concurrency_give(key);
        METER(execution, al_spec_language(s),
              r < 0 ? AL_STATUS_INTERNAL_ERROR : res->status,
              srv_api_now() - t0);
        if (r < 0) {
                al_result failed = {.status = AL_STATUS_INTERNAL_ERROR,
                                    .exit_code = -1};
                snprintf(failed.reason, sizeof(failed.reason), "%s", e.msg);
                pthread_mutex_lock(&srv_api.audit_lock);
                al_audit_finished(srv_api.audit, id, &failed, &e);
                pthread_mutex_unlock(&srv_api.audit_lock);
                srv_api_error(rs, 500, "internal_error", NULL, "%s",
                              failed.reason);
                return;
        }
        if (findings)
                res->findings_json = strdup(findings);
        snprintf(res->audit_id, sizeof(res->audit_id), "%s", id);
        pthread_mutex_lock(&srv_api.audit_lock);
        r = al_audit_finished(srv_api.audit, id, res, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_log(json_pack("{s:s,s:s,s:s,s:o}", "event",
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
        srv_api_set_json(rs, res->status == AL_STATUS_REJECTED ? 422 : 200, o);
        rs->leftover = res;
}

void srv_api_execute(const struct srv_request *rq, struct srv_response *rs) {
        al_key_info key;
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = "anonymous"};
        char actor[AL_KEY_ID_SIZE + 64];
        if (admit_run(rq, &key, &who, actor, sizeof(actor), rs) < 0)
                return;
        json_t *req = parse_body(rq, &who, rs);
        if (!req)
                return;
        al_spec *s = al_spec_new();
        const char *mode = NULL;
        char *findings = NULL;
        uint64_t cost = 0; /* of the in-flight budget, while we hold it */
        if (!s) {
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
                json_decref(req);
                return;
        }
        if (srv_api_build_spec(req, s, &key, &mode, rs, &who) < 0) {
                srv_api_audit_refused(rq, &who, s, rs, NULL);
                goto out;
        }
        if (validate(s, mode, &findings, rs) < 0) {
                if (findings)
                        attach_findings(rs, findings);
                METER(execution, al_spec_language(s), AL_STATUS_REJECTED, 0);
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        if (concurrency_take(&key, rs) < 0) {
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        uint64_t ck = key.max_collect_bytes,
                 cs = srv_api.cfg->max_collect_bytes;
        uint64_t cmax = ck && (!cs || ck < cs) ? ck : cs;
        cost = run_cost(al_spec_limits(s),
                        json_array_size(json_object_get(req, "collect")) > 0,
                        cmax ? cmax : SRV_COLLECT_DEFAULT);
        if (budget_take(cost, rs) < 0) {
                cost = 0;
                concurrency_give(&key);
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        run_and_record(s, &key, &who, findings, req, rs);
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
        pthread_rwlock_rdlock(&srv_api.policy_lock);
        int r = al_check_code(srv_api.policy, name, code, len, &f, err);
        json_t *fj = r == 0 ? al_findings_json(&f) : NULL;
        if (fj)
                out = json_pack(
                        "{s:s,s:s,s:s,s:o,s:I,s:o}", "language", name, "policy",
                        al_policy_name(srv_api.policy), "threshold",
                        al_severity_name(al_policy_threshold(srv_api.policy)),
                        "findings", fj, "at_or_above_threshold",
                        (json_int_t)al_findings_count_at(
                                &f, al_policy_threshold(srv_api.policy)),
                        "syntax_error",
                        f.syntax_error
                                ? json_pack("{s:I,s:I,s:o}", "line",
                                            (json_int_t)f.error_line, "column",
                                            (json_int_t)f.error_column, "near",
                                            al_jstr(f.error_snippet))
                                : json_null());
        pthread_rwlock_unlock(&srv_api.policy_lock);
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
                        a,
                        json_pack("{s:s,s:b,s:s}", "name", al_language_name(i),
                                  "available", al_language_available(i),
                                  "description", al_language_describe(i)));
        return a;
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

int srv_api_init(const struct srv_config *cfg, al_error *err) {
        int r;
        srv_api.cfg = cfg;
        if ((r = al_audit_open(cfg->state[0] ? cfg->state : NULL,
                               &srv_api.audit, err)) < 0)
                return r;
        if ((r = al_audit_alerts_start(srv_api.audit, err)) < 0)
                return r;
        if ((r = al_keys_open(cfg->state[0] ? cfg->state : NULL,
                              &srv_api.keys_db, err)) < 0)
                return r;
        srv_api_reload_keys();
        if (!(srv_api.policy =
                      al_policy_load(cfg->policy[0] ? cfg->policy : NULL, err)))
                return -EINVAL;
        /* EFD_SEMAPHORE off: once written it stays readable, so every run
         * (also ones that start later) sees the cancel */
        srv_api.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv_api.cancel_fd < 0)
                return al_error_errno(err, errno, "eventfd");
        return 0;
}

void srv_api_fini(void) {
        srv_api_anon_sweep(
                true); /* the summaries of open windows: none is lost */
        al_audit_alerts_drain(srv_api.audit, 5000);
        srv_api.audit = al_audit_close(srv_api.audit);
        srv_api.keys_db = al_keys_close(srv_api.keys_db);
        srv_api.policy = al_policy_free(srv_api.policy);
        free(srv_api.keys);
        free(srv_api.buckets);
        int fd = srv_api.cancel_fd;
        srv_api.cancel_fd = -1;
        if (fd >= 0)
                close(fd);
}

/* Ready unless shutting down or the audit store is about to fill up
 * (then every run would be refused): its free space, and 503 below
 * AL_AUDIT_MIN_FREE_BYTES. */
void srv_api_ready(struct srv_response *rs) {
        uint64_t free_b = 0;
        al_error e = {0};
        if (srv_api.shutting_down)
                srv_api_error(rs, 503, "shutting_down", NULL,
                              "the server is shutting down");
        else if (al_audit_free_bytes(srv_api.cfg->state, &free_b, &e) < 0)
                srv_api_error(rs, 503, "audit_unavailable", NULL, "%s", e.msg);
        else if (free_b < AL_AUDIT_MIN_FREE_BYTES)
                srv_api_error(
                        rs, 503, "audit_store_full", NULL,
                        "the audit store has %llu bytes free, under %llu: "
                        "runs would be refused",
                        (unsigned long long)free_b,
                        (unsigned long long)AL_AUDIT_MIN_FREE_BYTES);
        else
                srv_api_set_json(rs, 200,
                                 json_pack("{s:s,s:{s:I,s:I,s:b}}", "status",
                                           "ready", "audit_store", "free_bytes",
                                           (json_int_t)free_b, "min_free_bytes",
                                           (json_int_t)AL_AUDIT_MIN_FREE_BYTES,
                                           "ok", 1));
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

/* --- in process (airlock mcp, airlock agent) ------------------------------ */

int srv_api_local_option(struct srv_config *c, const char *name, const char *v,
                         al_error *err) {
        char *dst = NULL;
        size_t size = 0;
        if (!strcmp(name, "state"))
                dst = c->state, size = sizeof(c->state);
        else if (!strcmp(name, "policy"))
                dst = c->policy, size = sizeof(c->policy);
        else if (!strcmp(name, "languages"))
                dst = c->languages, size = sizeof(c->languages);
        else if (!strcmp(name, "policy-mode")) {
                if (!al_policy_mode_ok(v)) {
                        al_error_set(err, EINVAL,
                                     "--policy-mode: off, record, warn or "
                                     "enforce, not '%s'",
                                     v);
                        return -1;
                }
                dst = c->policy_mode, size = sizeof(c->policy_mode);
        }
        if (!dst || strlen(v) >= size) {
                al_error_set(err, EINVAL, "--%s: %s", name,
                             dst ? "too long" : "unknown");
                return -1;
        }
        snprintf(dst, size, "%s", v);
        return 0;
}

int srv_api_local_start(struct srv_config *c, al_error *err) {
        al_error e = {0};
        if (c->languages[0] && al_languages_load_file(c->languages, &e) < 0) {
                al_error_set(err, EINVAL, "--languages: %s", e.msg);
                return -1;
        }
        return srv_api_init(c, err) < 0 ? -1 : 0;
}
