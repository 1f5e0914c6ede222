/* SPDX-License-Identifier: MIT */
/* airlock serve's routes: path and method to a handler of the service
 * (src/service/), the admission of a request on its headers, the compat
 * shape of POST /execute, /metrics, /openapi.json, and POST /mcp to the
 * MCP server (mcp.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "mcp.h"
#include "serve.h"

/* --- the routes
 * ---------------------------------------------------------------- */

static void languages(struct srv_response *rs) {
        srv_api_set_json(rs, 200,
                         json_pack("{s:o}", "languages", srv_api_languages()));
}

/* A session route that runs code (or starts a sandbox): POST
 * /v1/sessions and POST /v1/sessions/{id}/execute. */
static bool session_runs(const char *method, const char *path) {
        if (strcmp(method, "POST") || strncmp(path, "/v1/sessions", 12))
                return false;
        const char *rest = path + 12;
        size_t n = strlen(rest);
        return !*rest || (n > 8 && !strcmp(rest + n - 8, "/execute"));
}

bool srv_is_execution(const char *method, const char *path) {
        enum srv_route r = srv_route_of(path);
        return (!strcmp(method, "POST") &&
                (r == SRV_ROUTE_EXECUTE || r == SRV_ROUTE_EXECUTE_COMPAT ||
                 r == SRV_ROUTE_MCP)) ||
               session_runs(method, path);
}

bool srv_is_audit_read(const char *method, const char *path) {
        enum srv_route r = srv_route_of(path);
        return ((!strcmp(method, "GET") || !strcmp(method, "HEAD")) &&
                (r == SRV_ROUTE_AUDIT || r == SRV_ROUTE_EXECUTION)) ||
               (r == SRV_ROUTE_SESSIONS && !session_runs(method, path));
}

bool srv_takes_body(const char *method, const char *path) {
        return srv_is_execution(method, path) ||
               (srv_route_of(path) == SRV_ROUTE_SESSIONS &&
                !strcmp(method, "PUT"));
}

/* POST /execute: the shape agent tutorials post. {code, language,
 * timeout (seconds)} -> {success, output, error}: output is stdout; error
 * is stderr, or the reason when the run did not succeed. Other fields
 * are ignored here (tutorial clients send extras); the request is run and
 * audited exactly as /v1/execute. */
/* A response of the API in the compat shape: {success, output, error,
 * id}. */
static void compat_shape(struct srv_response *rs) {
        json_t *out =
                rs->body ? json_loads(rs->body, JSON_ALLOW_NUL, NULL) : NULL;
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
                /* the streams as the strings they are (a NUL kept) */
                json_t *so = json_object_get(out, "stdout"),
                       *se = json_object_get(out, "stderr");
                bool say = (!ok && (!err || !*err)) || !strcmp(st, "timeout");
                json_t *vo =
                        json_is_string(so) ? json_incref(so) : json_string("");
                json_t *ve = say                  ? json_string(msg)
                             : json_is_string(se) ? json_incref(se)
                                                  : json_string("");
                c = json_pack("{s:b,s:o,s:o,s:s?}", "success", ok, "output", vo,
                              "error", ve, "id", id);
        } else {
                const char *m = json_string_value(json_object_get(
                        json_object_get(out, "error"), "message"));
                c = json_pack("{s:b,s:s,s:s,s:s?}", "success", 0, "output", "",
                              "error", m ? m : "request failed", "id", id);
        }
        unsigned status = rs->status;
        free(rs->body);
        rs->body = NULL;
        srv_api_set_json(rs, status, c);
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
        /* a body over the bounds goes on as it is: srv_api_execute() refuses it
         * (and audits that) without parsing it */
        if (!rq->body_too_large &&
            srv_api_json_within_bounds(rq->body, rq->body_len)) {
                json_error_t je;
                in = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
                                &je);
        }
        if (json_is_object(in)) {
                v1 = json_object();
                json_t *x;
                if ((x = json_object_get(in, "code")))
                        json_object_set(v1, "code", x);
                x = json_object_get(in, "language");
                json_object_set_new(v1, "language",
                                    x ? json_incref(x) : json_string("python"));
                x = json_object_get(in, "timeout");
                if (x && json_is_number(x) && json_number_value(x) > 0 &&
                    json_number_value(x) <= 86400)
                        json_object_set_new(
                                v1, "limits",
                                json_pack("{s:I}", "wall_ms",
                                          (json_int_t)(json_number_value(x) *
                                                       1000)));
                else if (x) {
                        srv_api_error(rs, 400, "invalid_value", "timeout",
                                      "timeout is a number of seconds, more "
                                      "than 0 and at most 86400");
                        srv_api_refused(rq, rs);
                        goto answer;
                }
                body = json_dumps(v1, JSON_COMPACT);
                r2.body = body ? body : "";
                r2.body_len = body ? strlen(body) : 0;
        }
        srv_api_execute(&r2, rs);
answer:
        compat_shape(rs);
        json_decref(in);
        json_decref(v1);
        free(body);
}

/* GET /metrics: the Prometheus text format. Open unless --metrics-auth. */
static void metrics(const struct srv_request *rq, struct srv_response *rs) {
        if (srv_api_config()->metrics_auth) {
                al_key_info key;
                if (srv_api_authenticate(rq, &key, rs) < 0)
                        return;
                if (!(key.scopes & (AL_SCOPE_AUDIT_READ | AL_SCOPE_ADMIN))) {
                        srv_api_error(rs, 403, "forbidden", NULL,
                                      "key %s lacks the audit:read scope",
                                      key.id);
                        return;
                }
        }
        uint64_t dropped = 0, failed = 0;
        size_t nkeys = 0;
        srv_api_counts(&dropped, &failed, &nkeys);
        size_t len = 0;
        char *text = srv_metrics_render(&len, dropped, failed, nkeys);
        if (!text) {
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
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
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
}

/* POST /mcp: MCP's Streamable HTTP transport, without streams: every
 * POST is one JSON-RPC message answered by one JSON response (or 202 for a
 * notification); no session id is issued, so every POST stands alone and
 * tools work without a prior initialize. The same keys as the rest of the
 * API: any valid key lists and checks, run_code wants the execute scope
 * (and its rate, concurrency and ceilings) and is audited with source
 * mcp. */
static bool origin_local(const char *o) {
        static const char *const OK[] = {"http://localhost",
                                         "https://localhost",
                                         "http://127.0.0.1",
                                         "https://127.0.0.1",
                                         "http://[::1]",
                                         "https://[::1]",
                                         NULL};
        for (const char *const *x = OK; *x; x++) {
                size_t n = strlen(*x);
                if (!strncmp(o, *x, n) &&
                    (o[n] == '\0' || o[n] == ':' || o[n] == '/'))
                        return true;
        }
        return false;
}

static void mcp_http(const struct srv_request *rq0, struct srv_response *rs) {
        struct srv_request mrq = *rq0;
        const struct srv_request *rq = &mrq;
        mrq.source = "mcp";
        if (rq->origin && !origin_local(rq->origin)) {
                srv_api_error(rs, 403, "forbidden_origin", NULL,
                              "Origin %.200s may not call /mcp (only local "
                              "origins; non-browser clients send none)",
                              rq->origin);
                srv_refused(rq, rs);
                return;
        }
        /* one token of the key's rate per POST, whatever it asks (a
         * run_code inside is not charged again) */
        if (srv_api_authorize(rq, 0, true, rs) < 0) {
                srv_refused(rq, rs);
                return;
        }
        mrq.rate_taken = true;
        if (rq->mcp_version) {
                const char *const *v = mcp_versions;
                while (*v && strcmp(*v, rq->mcp_version))
                        v++;
                if (!*v) {
                        srv_api_error(
                                rs, 400, "unsupported_protocol_version", NULL,
                                "MCP-Protocol-Version %.32s is not one of "
                                "2025-11-25, 2025-06-18, 2025-03-26, "
                                "2024-11-05",
                                rq->mcp_version);
                        srv_refused(rq, rs);
                        return;
                }
        }
        if (rq->body_too_large) {
                srv_api_error(rs, 413, "body_too_large", NULL,
                              "the body is larger than %zu bytes",
                              srv_api_config()->max_body);
                srv_refused(rq, rs);
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
        /* the reply (a run's output as tool content) until it is sent;
         * the run's own reservation ended when the tool result was made */
        srv_api_hold(rs);
}

/* --- routing
 * ------------------------------------------------------------------ */

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
        if (!strncmp(p, "/v1/sessions", 12) && (!p[12] || p[12] == '/'))
                return SRV_ROUTE_SESSIONS;
        if (!strncmp(p, EXECUTIONS_PREFIX, strlen(EXECUTIONS_PREFIX)) &&
            p[strlen(EXECUTIONS_PREFIX)] &&
            !strchr(p + strlen(EXECUTIONS_PREFIX), '/'))
                return SRV_ROUTE_EXECUTION;
        return SRV_ROUTE_OTHER;
}

void srv_handle(const struct srv_request *rq, struct srv_response *rs) {
        const char *p = rq->path;
        enum srv_route route = srv_route_of(p);
        bool post = route == SRV_ROUTE_EXECUTE ||
                    route == SRV_ROUTE_EXECUTE_COMPAT || route == SRV_ROUTE_MCP;
        bool get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
        if (route == SRV_ROUTE_OTHER) {
                srv_api_error(rs, 404, "not_found", NULL, "no route %.200s", p);
                return;
        }
        if (route == SRV_ROUTE_SESSIONS) {
                srv_api_sessions(rq, p + 12, rs);
                return;
        }
        if (post ? strcmp(rq->method, "POST") : !get) {
                srv_api_error(rs, 405, "method_not_allowed", NULL,
                              "%s wants %s", p, post ? "POST" : "GET");
                rs->allow = post ? "POST" : "GET, HEAD";
                return;
        }
        switch (route) {
        case SRV_ROUTE_EXECUTE:
                srv_api_execute(rq, rs);
                break;
        case SRV_ROUTE_EXECUTE_COMPAT:
                execute_compat(rq, rs);
                break;
        case SRV_ROUTE_EXECUTION:
                srv_api_execution(rq, p + strlen(EXECUTIONS_PREFIX), rs);
                break;
        case SRV_ROUTE_AUDIT:
                srv_api_audit_list(rq, rs);
                break;
        case SRV_ROUTE_LANGUAGES:
                languages(rs);
                break;
        case SRV_ROUTE_HEALTHZ:
                srv_api_set_json(rs, 200, json_pack("{s:s}", "status", "ok"));
                break;
        case SRV_ROUTE_READYZ:
                srv_api_ready(rs);
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
                srv_api_error(rs, 404, "not_found", NULL, "no route %.200s", p);
        }
}

/* A request the front refused before it reached the service (on its
 * headers, queue full, queue timeout, shutting down): audited, and in the
 * shape of its route. */
void srv_refused(const struct srv_request *rq, struct srv_response *rs) {
        srv_api_refused(rq, rs);
        if (srv_route_of(rq->path) == SRV_ROUTE_EXECUTE_COMPAT)
                compat_shape(rs);
}

int srv_admit(const struct srv_request *rq, struct srv_response *rs) {
        enum srv_route route = srv_route_of(rq->path);
        bool exec = route == SRV_ROUTE_EXECUTE ||
                    route == SRV_ROUTE_EXECUTE_COMPAT ||
                    route == SRV_ROUTE_MCP ||
                    session_runs(rq->method, rq->path);
        bool method_ok = exec ? !strcmp(rq->method, "POST")
                              : !strcmp(rq->method, "GET") ||
                                         !strcmp(rq->method, "HEAD");
        al_key_info key;
        if (route == SRV_ROUTE_OTHER) {
                srv_api_error(rs, 404, "not_found", NULL, "no route %.200s",
                              rq->path);
                return -1;
        }
        if (route == SRV_ROUTE_SESSIONS &&
            !session_runs(rq->method, rq->path)) {
                /* a session's reads and steps: a valid key first (its
                 * scope and ownership are the service's to check); a
                 * file's body is read only after that */
                if (!rq->local_actor && srv_api_authenticate(rq, &key, rs) < 0)
                        return -1;
                return 0;
        }
        if (!exec) {
                /* reads: logged, not audited; a key is checked before
                 * anything else (a body is never kept on these routes) */
                bool keyed = route == SRV_ROUTE_EXECUTION ||
                             route == SRV_ROUTE_AUDIT ||
                             (route == SRV_ROUTE_METRICS &&
                              srv_api_config()->metrics_auth);
                if (!method_ok) {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "%s wants GET", rq->path);
                        rs->allow = "GET, HEAD";
                        return -1;
                }
                if (keyed && !rq->local_actor &&
                    srv_api_authenticate(rq, &key, rs) < 0)
                        return -1;
                return 0;
        }
        /* executions: who asks first, then what; every refusal audited,
         * with the actor found here */
        char actor[AL_KEY_ID_SIZE + 8] = "anonymous";
        if (!rq->local_actor) {
                if (srv_api_authenticate(rq, &key, rs) < 0)
                        goto refuse;
                snprintf(actor, sizeof(actor), "key:%s", key.id);
        }
        if (!method_ok) {
                srv_api_error(rs, 405, "method_not_allowed", NULL,
                              "%s wants POST", rq->path);
                rs->allow = "POST";
                goto refuse;
        }
        if (route != SRV_ROUTE_MCP && !rq->local_actor &&
            !(key.scopes & (AL_SCOPE_EXECUTE | AL_SCOPE_ADMIN))) {
                srv_api_error(rs, 403, "forbidden", NULL,
                              "key %s lacks the execute scope", key.id);
                goto refuse;
        }
        if (rq->body_too_large) {
                srv_api_error(rs, 413, "body_too_large", NULL,
                              "the body is larger than %zu bytes",
                              srv_api_config()->max_body);
                goto refuse;
        }
        return 0;
refuse:
        srv_api_refused_as(rq, rs, rq->local_actor ? NULL : actor);
        if (route == SRV_ROUTE_EXECUTE_COMPAT)
                compat_shape(rs);
        return -1;
}
