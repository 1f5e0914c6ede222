/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The service: what every door does with a request, with no transport in
 * it (service.c: keys, rates, ceilings, the in-flight budget, a run;
 * request.c: request JSON -> spec; refusals.c: the audit of refusals;
 * reads.c: reads of the audit log; tools.c: the tools that MCP and the
 * agent offer a model). A door (src/serve/: HTTP, MCP; src/agent/) fills
 * a struct srv_request, and gets back a struct srv_response: a status
 * (HTTP's numbers, which every door maps: MCP to tool results) and a JSON
 * body. Nothing here knows a socket, libmicrohttpd or JSON-RPC, so the
 * service can move behind a process boundary (docs/serve-design.md).
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
        /* sessions (sessions.c): live ones at once on the server and per
         * key, the memory they may hold together, their longest life
         * (0: the built-in default) */
        /* warm starts (--warm PROFILE[=MODULES]): the profiles and
         * their preloads, sandboxes ready per profile, their age */
#define SRV_MAX_WARM 8
/* the longest --warm-max-age: a day bounds how old a ready sandbox's
 * preload may grow */
#define SRV_WARM_MAX_AGE_S (24 * 3600)
        char warm[SRV_MAX_WARM][256];
        unsigned nwarm;
        unsigned warm_pool, warm_max_age_s;
        /* --allow-net: the hosts a request's network.allow may name
         * (comma-separated; "": no network) */
        char allow_net[4096];
        unsigned max_sessions, max_sessions_per_key;
        uint64_t max_session_memory_mb;
        uint64_t max_session_lifetime_s;
};

#define SRV_MAX_ARGS 32 /* query parameters a request may carry */

/* A request as a door hands it over (the HTTP front fills every field;
 * MCP and the agent what applies). */
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
        /* streaming: each piece of a cell's (or run's) output as it comes,
         * when the client asked for it; NULL: none. Called from the
         * sandbox's thread: must not block. */
        void (*on_chunk)(void *ctx, int stream, const void *buf, size_t n);
        void *chunk_ctx;
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

/* The service's state, shared by every thread. */
int srv_api_init(const struct srv_config *cfg, al_error *err);
void srv_api_fini(void);
/* The configuration srv_api_init was given. */
const struct srv_config *srv_api_config(void);
/* Re-read keys.db (also done every second). */
void srv_api_reload_keys(void);
/* Re-read the --policy file (SIGHUP); a file that no longer loads leaves
 * the old policy in force and says so in the log. */
void srv_api_reload_policy(void);
/* Rebuild the --warm pools (SIGHUP): every ready sandbox is destroyed and
 * new ones are built, their preload imported again (after a package
 * upgrade, or a preload that failed now fixed). Blocks while the pool's
 * filler finishes the sandbox it is building. */
void srv_api_reload_warm(void);
/* Once a second (the main thread): write the summary records of windows
 * of coalesced refusals that have ended. */
void srv_api_tick(void);
/* Cancel every run in flight (shutdown after the grace period);
 * async-signal-safe. */
void srv_api_cancel_all(void);

/* The service in process, for airlock mcp and airlock agent: the options
 * they share with serve, by long name (state, policy, policy-mode,
 * languages): 0, or -1 and a usage message in err. */
int srv_api_local_option(struct srv_config *c, const char *name, const char *v,
                         al_error *err);
/* Load --languages and start the service: 0, or -1 and err (err->code
 * EINVAL: a usage error, such as a file that does not load). */
int srv_api_local_start(struct srv_config *c, al_error *err);

/* What the service reports as it goes, for a front's metrics
 * (serve-metrics.c registers them); a door without metrics registers
 * none. Each may be called from any thread. */
enum srv_key_lookup { /* what a look-up of a key missing from the cache gave */
                      SRV_KEY_LOOKUP_FOUND,
                      SRV_KEY_LOOKUP_UNKNOWN,
                      SRV_KEY_LOOKUP_ERROR,
                      SRV_KEY_LOOKUP_RATE_LIMITED, /* not looked up: the rate is
                                                      spent */
                      SRV_KEY_LOOKUP_RESULTS
};
struct srv_api_meter {
        void (*execution)(const char *lang, al_status status, double seconds);
        void (*refused)(void);
        /* an unauthenticated refusal; coalesced: counted in a summary
         * record instead of a record of its own */
        void (*unauthenticated)(bool coalesced);
        void (*audit_failure)(void);
        /* bytes of the --max-inflight budget reserved (+) or freed (-) */
        void (*inflight_add)(int64_t delta);
        void (*key_lookup)(enum srv_key_lookup result);
        /* with --warm: a run of lang started cold, and why (a
         * start_reason: pool_empty, limits, asked, ...) */
        void (*cold_start)(const char *lang, const char *reason);
};
/* Before srv_api_init's callers start threads; m stays valid. */
void srv_api_set_meter(const struct srv_api_meter *m);

/* The key the request presents, copied into *k: 0, or an error response
 * (401) and -1. */
int srv_api_authenticate(const struct srv_request *rq, al_key_info *k,
                         struct srv_response *rs);
/* 0 when the request's key (or a local front-end) may do what scopes
 * name (0: any valid key); else an error response and -1. */
int srv_api_authorize(const struct srv_request *rq, unsigned scopes,
                      bool take_rate, struct srv_response *rs);

/* Run the request's body ({language, code, ...}, as POST /v1/execute):
 * who asks, within which ceilings, validated, run, audited; the result
 * object (200, 422 rejected by the run) or an error (any thread). */
void srv_api_execute(const struct srv_request *rq, struct srv_response *rs);
/* Sessions: rest is the path after "/v1/sessions" ("", "/ID",
 * "/ID/execute", "/ID/interrupt", "/ID/files", "/ID/files/PATH"); any
 * method (the routes answer 405 for one they do not take). */
void srv_api_sessions(const struct srv_request *rq, const char *rest,
                      struct srv_response *rs);
/* End every session (shutdown, audited with reason) and wait for them. */
void srv_api_sessions_end_all(const char *reason);

/* Audit a request refused before it reached the service (rs holds the
 * error): the key is the actor when it is valid. */
void srv_api_refused(const struct srv_request *rq, struct srv_response *rs);
/* The same, with the actor the caller found already ("key:ID" or
 * "anonymous"; NULL: authenticate again to find it). */
void srv_api_refused_as(const struct srv_request *rq, struct srv_response *rs,
                        const char *known);
/* A response has been sent (or dropped): the budget it held is free. */
/* A response that is not a run's result (an audit page, an MCP reply)
 * takes its size from the --max-inflight budget until it has been sent
 * (srv_api_release): 0, or -1 with the answer replaced by 503
 * response_budget_exhausted. Bodies under SRV_HOLD_MIN are not counted. */
#define SRV_HOLD_MIN (64u << 10)
int srv_api_hold(struct srv_response *rs);
void srv_api_release(struct srv_response *rs);

/* GET /v1/executions/{id} and GET /v1/audit?...: the audit record of one
 * execution, and a page of executions, for the request's key. */
void srv_api_execution(const struct srv_request *rq, const char *id,
                       struct srv_response *rs);
void srv_api_audit_list(const struct srv_request *rq, struct srv_response *rs);
/* A reader thread opens its own connection to the audit log at start
 * and closes it at its end; reads on other threads share the writers'. */
void srv_api_reader_start(void);
void srv_api_reader_stop(void);

/* Ready unless shutting down or the audit store is about to fill up
 * (then every run would be refused): 200, or 503 with why. */
void srv_api_ready(struct srv_response *rs);
/* Alerts dropped and failed, and keys in the cache, for metrics. */
void srv_api_counts(uint64_t *alerts_dropped, uint64_t *alerts_failed,
                    size_t *keys_active);

/* Static findings for code under the server's policy: {language, policy,
 * threshold, findings, at_or_above_threshold, syntax_error}, or NULL and
 * err (unknown language, no checker, out of memory). */
json_t *srv_api_check(const char *lang, const char *code, size_t len,
                      al_error *err);
/* [{name, available, description}] of every language profile. */
json_t *srv_api_languages(void);

/* The tools a model is offered (tools.c), for MCP's tools/list and the
 * agent: {tools: [{name, title, description, inputSchema, annotations}]}
 * for run_code, check_code, list_languages, create_session,
 * close_session, upload_file and download_file. */
json_t *srv_api_tools(void);
/* Whether name is one of those tools. */
bool srv_api_has_tool(const char *name);
/* Call a tool by name on behalf of base (who asks; source "mcp" when
 * NULL): the tool result ({content, structuredContent?, isError}), a new
 * reference, or NULL when out of memory. *leftover: a finished run to
 * free once the result is on its way. */
json_t *srv_api_call_tool(const struct srv_request *base, const char *name,
                          json_t *args, al_result **leftover);

/* A response of status with JSON o (the reference is taken). */
void srv_api_set_json(struct srv_response *rs, unsigned status, json_t *o);
/* An error response: {"error": {"code", "message", "field"?}}. */
void srv_api_error(struct srv_response *rs, unsigned status, const char *code,
                   const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* Whether a JSON text stays within the request bounds (nesting depth and
 * value count), checked on the bytes before a parser builds anything: a
 * body of a million empty objects costs a scan, not a tree. */
bool srv_api_json_within_bounds(const char *text, size_t len);
/* One JSON line on stderr, built by jansson (every string escaped, so
 * what a client sends cannot forge a line); takes the reference. */
void srv_api_log(json_t *event);
