/* SPDX-License-Identifier: MIT */
/* One execution, from request to result: who asks, its body within the
 * bounds, the spec (request.c), static validation under the policy, the
 * key's concurrency and the in-flight budget, the run and its audit
 * records; and the policy's other uses (check, reload). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "error.h"
#include "findings-json.h"
#include "json.h"
#include "service-internal.h"
#include "warm.h"

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

int srv_api_validate(al_spec *s, const char *mode, char **findings,
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
        json_t *o = json_loads(rs->body, JSON_ALLOW_NUL, NULL), *f = NULL;
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
        if (!rq->rate_taken && srv_api_rate_take(key, rs) < 0) {
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
                srv_api_concurrency_give(key);
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
        /* warm when it can be (a sandbox of a --warm pool, made ahead),
         * else cold, saying why */
        char why[32] = "asked";
        const char *start = json_string_value(json_object_get(req, "start"));
        r = start && !strcmp(start, "cold")
                    ? 0
                    : al_run_warm(s, &res, why, sizeof(why), &e);
        if (r == 0) {
                r = al_run(s, &res, &e);
                if (r == 0 && srv_api.cfg->nwarm) {
                        snprintf(res->start, sizeof(res->start), "cold");
                        snprintf(res->start_reason, sizeof(res->start_reason),
                                 "%s", why);
                        METER(cold_start, al_spec_language(s), why);
                }
        }
        srv_api_concurrency_give(key);
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
        json_t *o = j ? json_loads(j, JSON_ALLOW_NUL, NULL) : NULL;
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
        json_t *sw = json_object_get(req, "start");
        if (sw &&
            (!json_is_string(sw) || (strcmp(json_string_value(sw), "cold") &&
                                     strcmp(json_string_value(sw), "auto")))) {
                srv_api_error(rs, 400, "invalid_value", "start",
                              "start is \"auto\" (warm when a pool can) or "
                              "\"cold\"");
                srv_api_audit_refused(rq, &who, s, rs, NULL);
                goto out;
        }
        json_t *st = json_object_get(req, "stream");
        if (st && !json_is_boolean(st)) {
                srv_api_error(rs, 400, "invalid_type", "stream",
                              "stream must be true or false");
                srv_api_audit_refused(rq, &who, s, rs, NULL);
                goto out;
        }
        if (rq->on_chunk) /* the front streams: the client asked */
                al_spec_set_output_fn(s, rq->on_chunk, rq->chunk_ctx);
        if (srv_api_validate(s, mode, &findings, rs) < 0) {
                if (findings)
                        attach_findings(rs, findings);
                METER(execution, al_spec_language(s), AL_STATUS_REJECTED, 0);
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        if (srv_api_concurrency_take(&key, rs) < 0) {
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        uint64_t ck = key.max_collect_bytes,
                 cs = srv_api.cfg->max_collect_bytes;
        uint64_t cmax = ck && (!cs || ck < cs) ? ck : cs;
        cost = run_cost(al_spec_limits(s),
                        json_array_size(json_object_get(req, "collect")) > 0,
                        cmax ? cmax : SRV_COLLECT_DEFAULT);
        if (srv_api_budget_take(cost, rs) < 0) {
                cost = 0;
                srv_api_concurrency_give(&key);
                srv_api_audit_refused(rq, &who, s, rs, findings);
                goto out;
        }
        run_and_record(s, &key, &who, findings, req, rs);
out:
        /* the result is now the response's body (rs->len bytes, handed
         * to the front, which sends it without a copy): the rest of the
         * worst case reserved for making it is free again; the body is
         * held until the response has been sent (srv_api_release), so
         * that slow readers cannot pile up responses outside the budget */
        if (cost) {
                uint64_t keep = (uint64_t)rs->len;
                if (keep > cost)
                        keep = cost;
                srv_api_budget_give(cost - keep);
                rs->budget += keep;
        }
        free(findings);
        al_spec_free(s);
        json_decref(req);
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
