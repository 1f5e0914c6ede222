/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * airlock serve, inside: the HTTP front (serve-http.c: libmicrohttpd,
 * bodies, the worker pool) and the API (serve-api.c: auth, routes, request
 * bounds, runs, audit). The front hands the API one whole request and gets
 * one whole response back, so the two can be split into processes
 * (docs/serve-design.md).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "airlock-check.h"
#include "airlock-keys.h"

struct srv_config {
        char listen[300]; /* HOST:PORT */
        char state[4096];
        unsigned workers;         /* executions at once */
        unsigned queue;           /* waiting executions */
        unsigned queue_timeout_s; /* longest wait in the queue */
        size_t max_body;          /* bytes */
        unsigned grace_s;         /* SIGTERM: in-flight runs get this long */
        char policy[4096];        /* "" = the built-in default */
        char policy_mode[16];     /* default for requests */
        char tls_cert[4096], tls_key[4096];
        char languages[4096];
        bool metrics_auth; /* GET /metrics wants a key (audit:read/admin) */
        /* reads of the audit log per key: read_rate_count per
         * read_rate_period_s (a bucket of their own, not the key's rate) */
        unsigned read_rate_count, read_rate_period_s;
        unsigned max_per_ip;     /* connections from one address; 0 = no cap */
        unsigned idle_timeout_s; /* a connection silent this long is closed */
        unsigned body_timeout_s; /* a body must arrive within this */
        unsigned header_timeout_s; /* a request's headers within this of
                                      the connection (or the last request) */
        size_t max_body_total;     /* bytes of bodies held at once, all
                                      connections together */
        /* server-wide ceilings, like a key's (0: none but al_limits_max) */
        uint64_t max_output_bytes;  /* limits.output_bytes */
        uint64_t max_disk_mb;       /* limits.disk_mb */
        uint64_t max_collect_bytes; /* collected files of one run */
        /* bytes that running executions may hold for their results and
         * responses together (srv-api reserves each run's worst case) */
        uint64_t max_inflight_bytes;
};

#define SRV_MAX_ARGS 32 /* query parameters a request may carry */

/* A request as the front hands it over. */
struct srv_request {
        const char *method, *path, *query;
        const char *auth;    /* Authorization header, or NULL */
        const char *api_key; /* X-API-Key header, or NULL */
        const char *peer;    /* client address */
        const char *body;
        size_t body_len;
        bool body_too_large;
        /* query parameters: name, value, name, value ..., NULL */
        const char *const *args;
        bool too_many_args;
        /* who asks, for the audit log: source "http" when NULL; a local
         * front-end (airlock mcp over stdio) names its actor ("user:NAME")
         * and needs no key */
        const char *source;
        const char *local_actor;
        bool rate_taken;         /* the key's rate was charged already */
        const char *origin;      /* Origin header, or NULL */
        const char *mcp_version; /* MCP-Protocol-Version header, or NULL */
};

struct srv_response {
        unsigned status;
        char *body; /* malloc'ed */
        size_t len;
        const char *content_type;
        unsigned retry_after; /* seconds; 0 = no header */
        const char *allow;    /* Allow header of a 405, or NULL */
        char log_key[AL_KEY_ID_SIZE + 8];
        char log_code[64];
        char audit_id[AL_AUDIT_ID_SIZE];
        /* the finished run, for the worker to free after the response is
         * on its way (removing the cgroup and namespaces takes a while) */
        al_result *leftover;
        /* bytes of the --max-inflight budget that this response holds
         * until it has been sent (srv_api_release) */
        uint64_t budget;
};

/* Whether a request is an execution (runs on a worker) or answered at
 * once by the front's thread. */
bool srv_is_execution(const char *method, const char *path);
/* Whether a request reads the audit log (runs on a reader thread, so a
 * large read never holds the front's thread). */
bool srv_is_audit_read(const char *method, const char *path);

/* The decision on a request's headers alone, before any byte of its body
 * is read (rq has no body yet): 0 to read the body and hand the request to
 * srv_api_handle; -1 with the answer in rs when it is refused (wrong route
 * or method, no valid key, a key without the scope, a declared body over
 * the cap), audited as every refusal of an execution route is. */
int srv_api_admit(const struct srv_request *rq, struct srv_response *rs);
/* Whether a JSON text stays within the request bounds (nesting depth and
 * value count), checked on the bytes before a parser builds anything: a
 * body of a million empty objects costs a scan, not a tree. */
bool srv_json_within_bounds(const char *text, size_t len);
/* One JSON line on stderr, built by jansson (every string escaped, so
 * what a client sends cannot forge a line); takes the reference. */
void srv_log(json_t *event);
/* Once a second (the main thread): write the summary records of windows
 * of coalesced refusals that have ended. */
void srv_api_tick(void);

/* A response has been sent (or dropped): the budget it held is free. */
void srv_api_release(struct srv_response *rs);

/* The API's state, shared by every thread. */
int srv_api_init(const struct srv_config *cfg, al_error *err);
void srv_api_fini(void);
/* Re-read keys.db (also done every second). */
void srv_api_reload_keys(void);
/* Re-read the --policy file (SIGHUP); a file that no longer loads leaves
 * the old policy in force and says so in the log. */
void srv_api_reload_policy(void);
/* A reader thread opens its own connection to the audit log at start
 * and closes it at its end; reads on other threads share the writers'. */
void srv_api_reader_start(void);
void srv_api_reader_stop(void);
/* Answer one request (any thread). */
void srv_api_handle(const struct srv_request *rq, struct srv_response *rs);
/* An error response: {"error": {"code", "message", "field"?}}. */
void srv_error(struct srv_response *rs, unsigned status, const char *code,
               const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* Audit a request the front refused (rs holds the error). */
void srv_api_refused(const struct srv_request *rq, struct srv_response *rs);
/* 0 when the request's key (or a local front-end) may do what scopes
 * name (0: any valid key); else an error response and -1. */
int srv_api_authorize(const struct srv_request *rq, unsigned scopes,
                      bool take_rate, struct srv_response *rs);
/* Static findings for code under the server's policy: {language, policy,
 * threshold, findings, at_or_above_threshold, syntax_error}, or NULL and
 * err (unknown language, no checker, out of memory). */
json_t *srv_api_check(const char *lang, const char *code, size_t len,
                      al_error *err);
/* [{name, available, description}] of every language profile. */
json_t *srv_api_languages(void);
/* Cancel every run in flight (shutdown after the grace period). */
void srv_api_cancel_all(void);

/* Routes, as the closed set of labels of the metrics. */
enum srv_route {
        SRV_ROUTE_EXECUTE,
        SRV_ROUTE_EXECUTE_COMPAT,
        SRV_ROUTE_EXECUTION,
        SRV_ROUTE_AUDIT,
        SRV_ROUTE_LANGUAGES,
        SRV_ROUTE_HEALTHZ,
        SRV_ROUTE_READYZ,
        SRV_ROUTE_METRICS,
        SRV_ROUTE_OPENAPI,
        SRV_ROUTE_MCP,
        SRV_ROUTE_OTHER,
        SRV_ROUTES
};
enum srv_route srv_route_of(const char *path);

/* Metrics (serve-metrics.c); every function may be called from any
 * thread. */
void srv_metrics_start(unsigned workers, unsigned queue_cap);
void srv_metrics_request(enum srv_route route, unsigned status, double seconds);
void srv_metrics_execution(const char *lang, al_status status, double seconds);
void srv_metrics_refused(void);
/* An unauthenticated refusal; coalesced: counted in a summary record
 * instead of a record of its own. */
void srv_metrics_unauthenticated(bool coalesced);
void srv_metrics_audit_failure(void);
void srv_metrics_queue(unsigned queued, unsigned active);
void srv_metrics_reads(unsigned queued, unsigned active);
/* Bytes of the --max-inflight budget reserved (+) or freed (-). */
void srv_metrics_inflight_add(int64_t delta);
/* What a look-up of a key missing from the cache gave. */
enum srv_key_lookup {
        SRV_KEY_LOOKUP_FOUND,
        SRV_KEY_LOOKUP_UNKNOWN,
        SRV_KEY_LOOKUP_ERROR,
        SRV_KEY_LOOKUP_RATE_LIMITED, /* not looked up: the rate is spent */
        SRV_KEY_LOOKUP_RESULTS
};
void srv_metrics_key_lookup(enum srv_key_lookup result);
/* The exposition text (malloc'ed), or NULL when out of memory. */
char *srv_metrics_render(size_t *len, uint64_t alerts_dropped,
                         uint64_t alerts_failed, size_t keys_active);

/* The front: listen, serve until SIGTERM/SIGINT, drain. */
int srv_http_run(const struct srv_config *cfg, al_error *err);
