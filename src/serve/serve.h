/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * airlock serve, inside: the HTTP front (serve-http.c: libmicrohttpd,
 * bodies, the worker pool), its routes (serve-routes.c: path and method to
 * the service, admission on headers) and metrics (serve-metrics.c). The
 * front hands the service (src/service/) one whole request and gets one
 * whole response back, so the two can be split into processes
 * (docs/serve-design.md).
 */
#include <stdbool.h>
#include <stdint.h>

#include "service.h"

/* Whether a request is an execution (runs on a worker) or answered at
 * once by the front's thread. */
bool srv_is_execution(const char *method, const char *path);
/* Whether a request reads the audit log (runs on a reader thread, so a
 * large read never holds the front's thread). */
bool srv_is_audit_read(const char *method, const char *path);
/* Whether the route keeps a request body (executions, a session's file
 * PUT). */
bool srv_takes_body(const char *method, const char *path);

/* The decision on a request's headers alone, before any byte of its body
 * is read (rq has no body yet): 0 to read the body and hand the request to
 * srv_handle; -1 with the answer in rs when it is refused (wrong route
 * or method, no valid key, a key without the scope, a declared body over
 * the cap), audited as every refusal of an execution route is. */
int srv_admit(const struct srv_request *rq, struct srv_response *rs);
/* Answer one request (any thread): its route's handler. */
void srv_handle(const struct srv_request *rq, struct srv_response *rs);
/* Audit a request the front refused (rs holds the error), and answer in
 * the shape of its route. */
void srv_refused(const struct srv_request *rq, struct srv_response *rs);

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
        SRV_ROUTE_SESSIONS, /* /v1/sessions and below */
        SRV_ROUTE_OTHER,
        SRV_ROUTES
};
enum srv_route srv_route_of(const char *path);

/* Metrics (serve-metrics.c); every function may be called from any
 * thread. srv_metrics_start also registers the service's meter (the
 * counters of executions, refusals, key look-ups, the budget). */
void srv_metrics_start(unsigned workers, unsigned queue_cap);
void srv_metrics_request(enum srv_route route, unsigned status, double seconds);
void srv_metrics_execution(const char *lang, al_status status, double seconds);
void srv_metrics_refused(void);
void srv_metrics_cold_start(const char *lang, const char *reason);
/* An unauthenticated refusal; coalesced: counted in a summary record
 * instead of a record of its own. */
void srv_metrics_unauthenticated(bool coalesced);
void srv_metrics_audit_failure(void);
void srv_metrics_queue(unsigned queued, unsigned active);
void srv_metrics_reads(unsigned queued, unsigned active);
/* Bytes of the --max-inflight budget reserved (+) or freed (-). */
void srv_metrics_inflight_add(int64_t delta);
void srv_metrics_key_lookup(enum srv_key_lookup result);
/* The exposition text (malloc'ed), or NULL when out of memory. */
char *srv_metrics_render(size_t *len, uint64_t alerts_dropped,
                         uint64_t alerts_failed, size_t keys_active);

/* The front: listen, serve until SIGTERM/SIGINT, drain. */
int srv_http_run(const struct srv_config *cfg, al_error *err);
