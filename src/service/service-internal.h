/* SPDX-License-Identifier: MIT */
#pragma once
/* The service's own: its state (service.c) and the pieces its files
 * share (not for the doors: they use service.h). */
#include <stdatomic.h>

#include "service.h"

/* Bounds on a request body's JSON besides its size (--max-body). */
#define MAX_DEPTH 16
#define MAX_VALUES 20000

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

struct srv_api_state {
        const struct srv_config *cfg;
        const struct srv_api_meter *meter; /* or NULL */
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
        /* serve --allow-net: what a request's network.allow may name
         * (NULL: no network for any request) */
        struct al_net_policy *net_ceiling;
};
extern struct srv_api_state srv_api;

/* Report to the registered meter, if any: METER(refused),
 * METER(execution, lang, status, seconds). */
#define METER(fn, ...)                                                         \
        do {                                                                   \
                if (srv_api.meter && srv_api.meter->fn)                        \
                        srv_api.meter->fn(__VA_ARGS__);                        \
        } while (0)

/* Monotonic seconds. */
double srv_api_now(void);
/* Take one request from the key's rate: 0, or 429 with Retry-After. */
int srv_api_rate_take(const al_key_info *k, struct srv_response *rs);
/* Take one read of the audit log from the key's read bucket: 0, or 429
 * with Retry-After. */
int srv_api_read_rate_take(const al_key_info *k, struct srv_response *rs);
/* One more execution of the key in flight, within its max_concurrent: 0,
 * or 429; and one fewer. */
int srv_api_concurrency_take(const al_key_info *k, struct srv_response *rs);
void srv_api_concurrency_give(const al_key_info *k);
/* Reserve cost bytes of the in-flight budget, or refuse (503); give them
 * back. */
int srv_api_budget_take(uint64_t cost, struct srv_response *rs);
void srv_api_budget_give(uint64_t cost);
/* Audit a refusal (rs holds the error; s, findings: what is known of the
 * run), coalescing those of unauthenticated requests (refusals.c). */
void srv_api_audit_refused(const struct srv_request *rq,
                           const al_audit_who *who, const al_spec *s,
                           struct srv_response *rs, const char *findings);
/* Close the windows of coalesced refusals that have ended (every one
 * when flush) and write their summaries (refusals.c). */
void srv_api_anon_sweep(bool flush);
/* Depth and value count of the whole body, before any field is read
 * (request.c). */
bool srv_api_json_bounded(json_t *j, int depth, size_t *count);
/* The body of POST /v1/execute into s, within the key's and the server's
 * ceilings: 0, or -1 and the response (request.c). */
int srv_api_build_spec(json_t *req, al_spec *s, const al_key_info *key,
                       const char **mode, struct srv_response *rs,
                       al_audit_who *who);

/* Sessions (sessions.c): what a POST /v1/sessions asks besides its spec. */
#define SRV_SESSION_MAX_LIFETIME_S (24u * 3600)
#define SRV_SESSION_MAX_CELLS 1000000
struct srv_session_opts {
        uint64_t idle_timeout_s, max_lifetime_s, max_cells;
        al_limits cell; /* a cell's defaults: wall_ms, cpu_ms, output_bytes */
        char policy_mode[16];
};
/* The body of POST /v1/sessions into s and o (o holds the defaults and
 * the server's bounds on entry): 0, or -1 and the response. */
int srv_api_build_session(json_t *req, al_spec *s, const al_key_info *key,
                          struct srv_session_opts *o, struct srv_response *rs,
                          al_audit_who *who);
/* key or key64 (base64) of o, one of them, into data (malloc'ed; NULL
 * when neither is there, *present false): 0, or -1 and a 400 in rs. */
int srv_api_get_bytes(json_t *o, const char *key, const char *key64,
                      unsigned char **data, size_t *len, bool *present,
                      struct srv_response *rs);
/* The body of POST /v1/sessions/{id}/execute: the code (the caller frees
 * it), the cell's limits (l holds the session's defaults on entry),
 * stream and policy_mode: 0, or -1 and the response. */
int srv_api_build_cell(json_t *req, const al_key_info *key, al_limits *l,
                       unsigned char **code, size_t *len, bool *stream,
                       const char **mode, struct srv_response *rs);

/* Start the warm pools of cfg->warm (start.c): 0, or -1 and err. */
int srv_api_warm_start(const struct srv_config *cfg, al_error *err);
/* Static validation of s under the server's policy in mode (NULL or "":
 * the server's): 0 to run (findings in *findings, the caller frees), -1
 * with the refusal in rs (execute.c). */
int srv_api_validate(al_spec *s, const char *mode, char **findings,
                     struct srv_response *rs);
