/* SPDX-License-Identifier: MIT */
/* The service's life: start (as airlock serve does, or in process for
 * airlock mcp and airlock agent), readiness, the languages, stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "airlock.h"
#include "error.h"
#include "json.h"
#include "egress.h"
#include "service-internal.h"
#include "spec.h"
#include "util.h"
#include "warm.h"

/* --allow-net: the server's allowlist, the ceiling of every request's. */
static int net_ceiling(const struct srv_config *cfg, al_error *err) {
        al_spec *s = al_spec_new();
        const char *v[AL_NET_MAX_RULES];
        char buf[sizeof(cfg->allow_net)];
        size_t n = 0;
        snprintf(buf, sizeof(buf), "%s", cfg->allow_net);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t;
             t = strtok_r(NULL, ",", &sv)) {
                if (n == AL_NET_MAX_RULES) {
                        al_spec_free(s);
                        return al_error_set(err, EINVAL,
                                            "--allow-net: at most %d entries",
                                            AL_NET_MAX_RULES);
                }
                v[n++] = t;
        }
        int r = s ? al_spec_set_network(s, v, n, err) : -ENOMEM;
        if (r == 0 && al_spec_network(s)) {
                srv_api.net_ceiling = malloc(sizeof(*srv_api.net_ceiling));
                if (srv_api.net_ceiling)
                        *srv_api.net_ceiling = *al_spec_network(s);
        }
        al_spec_free(s);
        if (r < 0)
                al_error_set(err, EINVAL, "--allow-net: %s", err->msg);
        return r;
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
        if ((r = srv_api_warm_start(cfg, err)) < 0)
                return r;
        if (cfg->allow_net[0] && (r = net_ceiling(cfg, err)) < 0)
                return r;
        /* EFD_SEMAPHORE off: once written it stays readable, so every run
         * (also ones that start later) sees the cancel */
        srv_api.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv_api.cancel_fd < 0)
                return al_error_errno(err, errno, "eventfd");
        return 0;
}

/* A pool that starts failing (its preload does not import, a sandbox
 * does not start) or recovers: one log line per change, not per retry;
 * its runs are cold meanwhile (start_reason pool_broken). */
static void warm_notify(const char *lang, const char *error) {
        char ts[32];
        al_utc_now(ts);
        if (*error)
                srv_api_log(json_pack("{s:s,s:s,s:s,s:o}", "event",
                                      "airlock.serve.warm_failed", "ts", ts,
                                      "language", lang, "error",
                                      al_jstr(error)));
        else
                srv_api_log(json_pack("{s:s,s:s,s:s}", "event",
                                      "airlock.serve.warm_ready", "ts", ts,
                                      "language", lang));
}

/* The warm pools of --warm: "python" or "python=numpy,pandas". */
int srv_api_warm_start(const struct srv_config *cfg, al_error *err) {
        al_warm_set_notify(warm_notify);
        for (unsigned i = 0; i < cfg->nwarm; i++) {
                char lang[64];
                const char *eq = strchr(cfg->warm[i], '=');
                size_t n =
                        eq ? (size_t)(eq - cfg->warm[i]) : strlen(cfg->warm[i]);
                if (n >= sizeof(lang))
                        return al_error_set(err, EINVAL, "--warm: too long");
                memcpy(lang, cfg->warm[i], n);
                lang[n] = '\0';
                int r = al_warm_start(
                        lang, eq ? eq + 1 : "",
                        cfg->warm_pool ? cfg->warm_pool : 2,
                        cfg->warm_max_age_s ? cfg->warm_max_age_s : 300, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

void srv_api_reload_warm(void) {
        const struct srv_config *cfg = srv_api.cfg;
        if (!cfg || !cfg->nwarm)
                return;
        al_warm_stop();
        al_error e = {0};
        if (srv_api_warm_start(cfg, &e) < 0)
                srv_api_log(json_pack("{s:s,s:s,s:o}", "event",
                                      "airlock.serve.reload_failed", "what",
                                      "warm", "error", al_jstr(e.msg)));
        else
                srv_api_log(json_pack("{s:s,s:[s]}", "event",
                                      "airlock.serve.reloaded", "what",
                                      "warm"));
}

void srv_api_fini(void) {
        free(srv_api.net_ceiling);
        srv_api.net_ceiling = NULL;
        al_warm_stop();
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

/* --- in process (airlock mcp, airlock agent) ------------------------------ */

/* --warm-pool and --warm-max-age: as airlock serve bounds them. */
static int local_number(const char *name, const char *v, uint64_t max,
                        unsigned *dst, al_error *err) {
        uint64_t n;
        if (al_parse_u64(v, &n) < 0 || n < 1 || n > max) {
                al_error_set(err, EINVAL, "--%s wants a number from 1 to %llu",
                             name, (unsigned long long)max);
                return -1;
        }
        *dst = (unsigned)n;
        return 0;
}

int srv_api_local_option(struct srv_config *c, const char *name, const char *v,
                         al_error *err) {
        char *dst = NULL;
        size_t size = 0;
        if (!strcmp(name, "warm-pool"))
                return local_number(name, v, AL_WARM_MAX_SIZE, &c->warm_pool,
                                    err);
        if (!strcmp(name, "warm-max-age"))
                return local_number(name, v, SRV_WARM_MAX_AGE_S,
                                    &c->warm_max_age_s, err);
        if (!strcmp(name, "warm")) {
                if (c->nwarm >= SRV_MAX_WARM) {
                        al_error_set(err, EINVAL, "--warm: at most %d",
                                     SRV_MAX_WARM);
                        return -1;
                }
                dst = c->warm[c->nwarm], size = sizeof(c->warm[0]);
                if (strlen(v) < size)
                        c->nwarm++;
        } else if (!strcmp(name, "allow-net"))
                dst = c->allow_net, size = sizeof(c->allow_net);
        else if (!strcmp(name, "state"))
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
