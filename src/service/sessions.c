/* SPDX-License-Identifier: MIT */
/*
 * Sessions for every door: POST /v1/sessions, GET /v1/sessions[/{id}],
 * POST /v1/sessions/{id}/execute|interrupt, DELETE /v1/sessions/{id},
 * PUT|GET|DELETE /v1/sessions/{id}/files/{path}, GET .../files?dir=.
 *
 * A session (src/sandbox/session.h) belongs to the key that made it
 * (another key gets 404, as for an id that does not exist), counts
 * against the key's and the server's caps on live sessions and their
 * memory, and ends on DELETE, at its idle timeout, its maximum lifetime,
 * its maximum of cells, when its sandbox dies (memory, crash: the next
 * call says session_dead and why), or at shutdown. Every step is in the
 * audit chain: created, each cell (started durably before its code
 * reaches the sandbox), each file put/get/delete (durably before the
 * bytes move), ended with why.
 *
 * The registry holds references: a request takes one for as long as it
 * uses the session; ending one takes it out of the registry and kills
 * its sandbox; whoever drops the last reference frees it and writes the
 * ended record. An ended session stays as a tombstone (its reason) for
 * SRV_SESSION_TOMB_S, so that the next call gets session_dead, not 404.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "findings-json.h"
#include "json.h"
#include "macro.h"
#include "service-internal.h"
#include "session.h"
#include "util.h"
#include "workspace.h"

/* Defaults of a session. */
#define SESSION_IDLE_DEFAULT_S 600
#define SESSION_LIFETIME_DEFAULT_S 3600
#define SESSION_CELLS_DEFAULT 10000
/* After its interrupt, a cell has this long to stop before the session
 * is killed. */
#define SESSION_GRACE_MS 2000
/* How long an ended session still answers session_dead. */
#define SRV_SESSION_TOMB_S 600
/* The largest file the files API moves in one request. */
#define SESSION_FILE_MAX (64u << 20)

struct sess {
        char id[AL_AUDIT_ID_SIZE];
        char owner[AL_KEY_ID_SIZE + 64]; /* the actor: "key:ID", "user:..." */
        char language[32];
        al_session *s; /* NULL once ended */
        struct srv_session_opts o;
        uint64_t memory_mb;
        double created, last_used; /* srv_api_now() */
        char created_at[32];
        unsigned refs;
        bool ended;   /* out of the live set; s killed */
        bool running; /* a request holds its cell slot (audit seq) */
        char reason[32], message[256];
        double ended_at;
        uint64_t cells;
        struct sess *next;
};

static struct {
        pthread_mutex_t mu;
        struct sess *list;
        unsigned live;
        uint64_t live_memory_mb;
        pthread_t reaper;
        bool reaper_started, stop;
        pthread_cond_t wake;
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* --- ending ----------------------------------------------------------- */

/* The ended record, and the session freed (no lock held). */
static void finish(struct sess *x) {
        al_session_info in = {0};
        al_result *final = NULL;
        /* out of the entry before it is freed: a request may take a
         * reference to an ended session meanwhile (show, delete) and read
         * x->s under the lock */
        pthread_mutex_lock(&reg.mu);
        al_session *s = x->s;
        x->s = NULL;
        pthread_mutex_unlock(&reg.mu);
        if (s)
                al_session_close(s, x->reason[0] ? x->reason : "closed", &final,
                                 &in);
        const char *why = x->reason[0]       ? x->reason
                          : in.end_reason[0] ? in.end_reason
                                             : "closed";
        al_error e = {0};
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_session_ended_net(
                srv_api.audit, x->id, why, in.cells ? in.cells : x->cells,
                (uint64_t)((srv_api_now() - x->created) * 1000),
                final ? final->network_json : NULL, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_log(json_pack("{s:s,s:s,s:s,s:o}", "event",
                                      "airlock.serve.audit_failed", "id", x->id,
                                      "error", "session_ended", "detail",
                                      al_jstr(e.msg)));
        }
        json_t *ev = json_pack("{s:s,s:s,s:s,s:I}", "event",
                               "airlock.serve.session_ended", "id", x->id,
                               "reason", why, "cells", (json_int_t)x->cells);
        /* a session with an allowlist: its proxy's report, whole */
        json_t *nw =
                final && final->network_json
                        ? json_loads(final->network_json, JSON_ALLOW_NUL, NULL)
                        : NULL;
        if (ev && nw)
                json_object_set_new(ev, "network", nw);
        else
                json_decref(nw);
        srv_api_log(ev);
        al_result_free(final);
}

/* Under reg.mu: take x out of the live set for reason (kept if it has
 * one) and kill its sandbox; the last reference finishes it. */
static void end_locked(struct sess *x, const char *reason, const char *msg) {
        if (x->ended)
                return;
        x->ended = true;
        x->ended_at = srv_api_now();
        if (!x->reason[0]) {
                snprintf(x->reason, sizeof(x->reason), "%s", reason);
                snprintf(x->message, sizeof(x->message), "%s", msg ? msg : "");
        }
        reg.live--;
        reg.live_memory_mb -= x->memory_mb;
        if (x->s)
                al_session_kill(x->s, x->reason);
}

/* Drop a reference; the last one of an ended session finishes it. */
static void put_ref(struct sess *x) {
        pthread_mutex_lock(&reg.mu);
        bool last = --x->refs == 0 && x->ended && x->s;
        al_session *keep = NULL;
        if (last) {
                x->refs++; /* finish() runs without the lock */
                keep = x->s;
        }
        pthread_mutex_unlock(&reg.mu);
        if (!last)
                return;
        (void)keep;
        finish(x);
        pthread_mutex_lock(&reg.mu);
        x->refs--;
        pthread_mutex_unlock(&reg.mu);
}

/* The session's own view of whether it still lives; an engine that has
 * ended (memory, crash, protocol) ends the registry's entry too. */
static void sync_dead_locked(struct sess *x) {
        if (x->ended || !x->s)
                return;
        al_session_info in;
        al_session_info_get(x->s, &in);
        x->cells = in.cells;
        if (!in.alive)
                end_locked(x, in.end_reason[0] ? in.end_reason : "exited",
                           in.end_message);
}

/* Idle, lifetime, dead engines; tombstones past their time. Returns
 * the sessions to finish (their reference taken). */
static void reap(void) {
        struct sess *fin[64];
        size_t nfin = 0;
        double now = srv_api_now();
        pthread_mutex_lock(&reg.mu);
        for (struct sess **pp = &reg.list; *pp;) {
                struct sess *x = *pp;
                if (!x->ended) {
                        sync_dead_locked(x);
                        bool busy = false;
                        if (!x->ended && x->s) {
                                al_session_info in;
                                al_session_info_get(x->s, &in);
                                busy = in.busy;
                        }
                        if (!x->ended && !busy && x->o.idle_timeout_s &&
                            now - x->last_used >= (double)x->o.idle_timeout_s)
                                end_locked(x, "idle",
                                           "no call within the idle timeout");
                        else if (!x->ended &&
                                 now - x->created >=
                                         (double)x->o.max_lifetime_s)
                                end_locked(x, "lifetime",
                                           "the session reached its maximum "
                                           "lifetime");
                }
                if (x->ended && x->s && x->refs == 0 &&
                    nfin < sizeof(fin) / sizeof(fin[0])) {
                        x->refs++;
                        fin[nfin++] = x;
                }
                if (x->ended && !x->s && x->refs == 0 &&
                    now - x->ended_at > SRV_SESSION_TOMB_S) {
                        *pp = x->next;
                        free(x);
                        continue;
                }
                pp = &x->next;
        }
        pthread_mutex_unlock(&reg.mu);
        for (size_t i = 0; i < nfin; i++) {
                finish(fin[i]);
                pthread_mutex_lock(&reg.mu);
                fin[i]->refs--;
                pthread_mutex_unlock(&reg.mu);
        }
}

static void *reaper_main(void *arg) {
        (void)arg;
        pthread_mutex_lock(&reg.mu);
        while (!reg.stop) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&reg.wake, &reg.mu, &ts);
                if (reg.stop)
                        break;
                pthread_mutex_unlock(&reg.mu);
                reap();
                pthread_mutex_lock(&reg.mu);
        }
        pthread_mutex_unlock(&reg.mu);
        return NULL;
}

void srv_api_sessions_end_all(const char *reason) {
        pthread_mutex_lock(&reg.mu);
        for (struct sess *x = reg.list; x; x = x->next)
                end_locked(x, reason, "the server is shutting down");
        bool started = reg.reaper_started;
        reg.stop = true;
        pthread_cond_broadcast(&reg.wake);
        pthread_mutex_unlock(&reg.mu);
        if (started)
                pthread_join(reg.reaper, NULL);
        /* wait for requests that still hold one (their cell returns as the
         * sandbox dies), then finish what is left */
        for (int i = 0; i < 200; i++) {
                pthread_mutex_lock(&reg.mu);
                unsigned held = 0;
                for (struct sess *x = reg.list; x; x = x->next)
                        held += x->refs;
                pthread_mutex_unlock(&reg.mu);
                reap();
                if (!held)
                        break;
                struct timespec d = {0, 50 * 1000 * 1000};
                nanosleep(&d, NULL);
        }
        reap();
        pthread_mutex_lock(&reg.mu);
        reg.reaper_started = false;
        reg.stop = false;
        pthread_mutex_unlock(&reg.mu);
}

/* --- finding ------------------------------------------------------------ */

/* The request's actor, and its key when it has one: 0, or -1 and the
 * refusal (401/403/429), not audited (reads and steps of a session). */
static int who_asks(const struct srv_request *rq, al_key_info *key, char *actor,
                    size_t size, bool take_rate, struct srv_response *rs) {
        if (rq->local_actor) {
                *key = (al_key_info){.scopes = AL_SCOPE_EXECUTE};
                snprintf(actor, size, "%s", rq->local_actor);
                return 0;
        }
        if (srv_api_authenticate(rq, key, rs) < 0)
                return -1;
        snprintf(actor, size, "key:%s", key->id);
        if (!(key->scopes & (AL_SCOPE_EXECUTE | AL_SCOPE_ADMIN))) {
                srv_api_error(rs, 403, "forbidden", NULL,
                              "key %s lacks the execute scope", key->id);
                return -1;
        }
        if (take_rate && !rq->rate_taken && srv_api_rate_take(key, rs) < 0)
                return -1;
        return 0;
}

static void dead_error(struct srv_response *rs, const struct sess *x) {
        json_t *o = json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "code",
                              "session_dead", "message",
                              x->message[0] ? x->message : "the session ended",
                              "reason", x->reason, "session_id", x->id);
        srv_api_set_json(rs, 410, o);
        snprintf(rs->log_code, sizeof(rs->log_code), "session_dead");
}

/* The session id of actor, with a reference taken; NULL and 404 (also
 * for another key's), or 410 session_dead when live is asked and it has
 * ended. */
static struct sess *get_ref(const char *id, const char *actor, bool live,
                            struct srv_response *rs) {
        pthread_mutex_lock(&reg.mu);
        struct sess *x = reg.list;
        while (x && (strcmp(x->id, id) || strcmp(x->owner, actor)))
                x = x->next;
        if (x)
                sync_dead_locked(x);
        if (x && live && x->ended) {
                dead_error(rs, x);
                x = NULL;
        } else if (!x)
                srv_api_error(rs, 404, "session_not_found", NULL,
                              "no session %.64s", id);
        else
                x->refs++;
        pthread_mutex_unlock(&reg.mu);
        return x;
}

/* Who asks (a key with the execute scope, its rate taken if take_rate)
 * and their session id, with a reference: NULL and the answer in rs. */
static struct sess *owned(const struct srv_request *rq, const char *id,
                          bool live, bool take_rate, struct srv_response *rs) {
        al_key_info key;
        char actor[AL_KEY_ID_SIZE + 64];
        if (who_asks(rq, &key, actor, sizeof(actor), take_rate, rs) < 0)
                return NULL;
        return get_ref(id, actor, live, rs);
}

static json_t *sess_json(struct sess *x) {
        al_session_info in = {0};
        if (x->s)
                al_session_info_get(x->s, &in);
        double now = srv_api_now();
        json_t *o = json_pack(
                "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "id", x->id,
                "language", x->language, "status",
                x->ended  ? "ended"
                : in.busy ? "busy"
                          : "idle",
                "created_at", x->created_at, "cells",
                (json_int_t)(x->s ? in.cells : x->cells), "idle_timeout_s",
                (json_int_t)x->o.idle_timeout_s, "max_lifetime_s",
                (json_int_t)x->o.max_lifetime_s, "max_cells",
                (json_int_t)x->o.max_cells, "limits",
                json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "memory_mb",
                          (json_int_t)x->memory_mb, "pids", (json_int_t)0,
                          "disk_mb", (json_int_t)0, "wall_ms",
                          (json_int_t)x->o.cell.wall_ms, "cpu_ms",
                          (json_int_t)x->o.cell.cpu_ms, "output_bytes",
                          (json_int_t)x->o.cell.output_bytes));
        json_t *lim = json_object_get(o, "limits");
        json_object_set_new(lim, "pids",
                            json_integer((json_int_t)x->o.cell.pids));
        json_object_set_new(lim, "disk_mb",
                            json_integer((json_int_t)x->o.cell.disk_mb));
        if (!x->ended) {
                json_object_set_new(
                        o, "idle_s",
                        json_real((double)(int64_t)((now - x->last_used) * 10) /
                                  10));
                if (in.version[0])
                        json_object_set_new(o, "version",
                                            json_string(in.version));
        } else
                json_object_set_new(o, "ended",
                                    json_pack("{s:s,s:s}", "reason", x->reason,
                                              "message", x->message));
        return o;
}

/* --- create -------------------------------------------------------------- */

/* The audit gate: the created record before the sandbox runs anything. */
struct create_gate {
        const al_audit_who *who;
        const struct srv_session_opts *o;
        const al_spec *s;
        char *id;
};

static int create_gate(void *ctx, al_error *err) {
        struct create_gate *g = ctx;
        al_audit_session as = {.language = al_spec_language(g->s),
                               .limits = al_spec_limits((al_spec *)g->s),
                               .idle_timeout_s = g->o->idle_timeout_s,
                               .max_lifetime_s = g->o->max_lifetime_s,
                               .max_cells = g->o->max_cells};
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_session_created(srv_api.audit, g->who, &as, g->id,
                                         err);
        pthread_mutex_unlock(&srv_api.audit_lock);
        return r;
}

static bool language_has_session(const char *lang) {
        for (size_t i = 0; lang && i < al_languages_count(); i++)
                if (!strcmp(al_language_name(i), lang))
                        return al_language_sessions(i);
        return false;
}

static void create(const struct srv_request *rq, struct srv_response *rs) {
        al_key_info key;
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = "anonymous"};
        char actor[AL_KEY_ID_SIZE + 64];
        if (who_asks(rq, &key, actor, sizeof(actor), true, rs) < 0) {
                srv_api_audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        who.actor = actor;
        json_error_t je;
        json_t *req = NULL;
        if (rq->body_too_large ||
            !srv_api_json_within_bounds(rq->body, rq->body_len) ||
            !(req = rq->body_len ? json_loadb(rq->body, rq->body_len,
                                              JSON_REJECT_DUPLICATES, &je)
                                 : json_object()) ||
            !json_is_object(req)) {
                srv_api_error(rs, rq->body_too_large ? 413 : 400,
                              rq->body_too_large ? "body_too_large"
                                                 : "invalid_json",
                              NULL, "the body must be a JSON object");
                json_decref(req);
                srv_api_audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        al_spec *s = al_spec_new();
        const struct srv_config *cfg = srv_api.cfg;
        struct srv_session_opts o = {
                .idle_timeout_s = SESSION_IDLE_DEFAULT_S,
                .max_lifetime_s = cfg->max_session_lifetime_s
                                          ? cfg->max_session_lifetime_s
                                          : SESSION_LIFETIME_DEFAULT_S,
                .max_cells = SESSION_CELLS_DEFAULT,
        };
        if (!s || srv_api_build_session(req, s, &key, &o, rs, &who) < 0) {
                if (!s)
                        srv_api_error(rs, 500, "internal_error", NULL,
                                      "out of memory");
                srv_api_audit_refused(rq, &who, s, rs, NULL);
                al_spec_free(s);
                json_decref(req);
                return;
        }
        if (!language_has_session(al_spec_language(s))) {
                srv_api_error(rs, 400, "no_session_driver", "language",
                              "language %s has no session driver (sessions "
                              "run python, node and bash)",
                              al_spec_language(s));
                goto refused;
        }
        uint64_t life_cap = cfg->max_session_lifetime_s
                                    ? cfg->max_session_lifetime_s
                                    : SRV_SESSION_MAX_LIFETIME_S;
        if (o.max_lifetime_s > life_cap) {
                srv_api_error(rs, 400, "limit_exceeds_server", "max_lifetime_s",
                              "max_lifetime_s %llu is above this server's "
                              "ceiling of %llu",
                              (unsigned long long)o.max_lifetime_s,
                              (unsigned long long)life_cap);
                goto refused;
        }
        al_spec_limits(s)->wall_ms = o.max_lifetime_s * 1000;
        if (al_spec_limits(s)->wall_ms > al_limits_max.wall_ms)
                al_spec_limits(s)->wall_ms = al_limits_max.wall_ms;
        uint64_t mem = al_spec_limits(s)->memory_mb;
        /* the caps: this key's live sessions, the server's, their memory */
        pthread_mutex_lock(&reg.mu);
        unsigned mine = 0;
        for (struct sess *x = reg.list; x; x = x->next)
                if (!x->ended && !strcmp(x->owner, actor))
                        mine++;
        unsigned per_key = cfg->max_sessions_per_key;
        if (per_key && mine >= per_key) {
                pthread_mutex_unlock(&reg.mu);
                srv_api_error(rs, 429, "too_many_sessions", NULL,
                              "this key has %u live sessions, its most; end "
                              "one (DELETE /v1/sessions/{id})",
                              mine);
                rs->retry_after = 5;
                goto refused;
        }
        if ((cfg->max_sessions && reg.live >= cfg->max_sessions) ||
            (cfg->max_session_memory_mb &&
             reg.live_memory_mb + mem > cfg->max_session_memory_mb)) {
                bool count = cfg->max_sessions && reg.live >= cfg->max_sessions;
                unsigned live = reg.live;
                uint64_t used = reg.live_memory_mb;
                pthread_mutex_unlock(&reg.mu);
                if (count)
                        srv_api_error(rs, 503, "sessions_full", NULL,
                                      "the server holds %u live sessions, its "
                                      "most",
                                      live);
                else
                        srv_api_error(
                                rs, 503, "sessions_full", NULL,
                                "live sessions hold %llu MiB of the "
                                "server's %llu; this one asks %llu",
                                (unsigned long long)used,
                                (unsigned long long)cfg->max_session_memory_mb,
                                (unsigned long long)mem);
                rs->retry_after = 5;
                goto refused;
        }
        /* counted now, so that two creates at once cannot both pass */
        reg.live++;
        reg.live_memory_mb += mem;
        pthread_mutex_unlock(&reg.mu);

        struct sess *x = calloc(1, sizeof(*x));
        if (!x) {
                pthread_mutex_lock(&reg.mu);
                reg.live--;
                reg.live_memory_mb -= mem;
                pthread_mutex_unlock(&reg.mu);
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
                goto out;
        }
        x->o = o;
        x->memory_mb = mem;
        x->o.cell.pids = al_spec_limits(s)->pids;
        x->o.cell.disk_mb = al_spec_limits(s)->disk_mb;
        snprintf(x->owner, sizeof(x->owner), "%s", actor);
        snprintf(x->language, sizeof(x->language), "%s", al_spec_language(s));
        struct create_gate g = {.who = &who, .o = &o, .s = s, .id = x->id};
        al_spec_set_gate(s, create_gate, &g);
        al_error e = {0};
        const char *lang = al_spec_language(s);
        char lang_copy[32];
        snprintf(lang_copy, sizeof(lang_copy), "%s", lang);
        al_spec *spec = s;
        s = NULL; /* the session's now, also on failure */
        int r = al_session_start(spec, &x->s, &e);
        pthread_mutex_lock(&reg.mu);
        if (r < 0) {
                reg.live--;
                reg.live_memory_mb -= mem;
                pthread_mutex_unlock(&reg.mu);
                if (x->id[0]) {
                        /* the created record is in: so is its end */
                        snprintf(x->reason, sizeof(x->reason), "start_failed");
                        finish(x);
                }
                if (!x->id[0] && e.code == EIO) {
                        METER(audit_failure);
                        srv_api_error(rs, 503, "audit_unavailable", NULL,
                                      "not starting: %s", e.msg);
                } else if (!x->id[0] && strstr(e.msg, "audit")) {
                        METER(audit_failure);
                        srv_api_error(rs, 503, "audit_unavailable", NULL,
                                      "not starting: %s", e.msg);
                } else
                        srv_api_error(rs, 500, "session_start_failed", NULL,
                                      "%s", e.msg);
                free(x);
                goto out;
        }
        x->created = x->last_used = srv_api_now();
        al_utc_now(x->created_at);
        x->next = reg.list;
        reg.list = x;
        if (!reg.reaper_started &&
            pthread_create(&reg.reaper, NULL, reaper_main, NULL) == 0)
                reg.reaper_started = true;
        json_t *out = sess_json(x);
        pthread_mutex_unlock(&reg.mu);
        json_t *meta = json_object_get(req, "metadata");
        if (json_is_object(meta))
                json_object_set(out, "metadata", meta);
        snprintf(rs->audit_id, sizeof(rs->audit_id), "%s", x->id);
        snprintf(rs->log_code, sizeof(rs->log_code), "session_created");
        srv_api_set_json(rs, 201, out);
        srv_api_log(json_pack("{s:s,s:s,s:s,s:s}", "event",
                              "airlock.serve.session_created", "id", x->id,
                              "language", lang_copy, "actor", actor));
        goto out;
refused:
        srv_api_audit_refused(rq, &who, s, rs, NULL);
out:
        al_spec_free(s);
        json_decref(req);
}

/* --- a cell ----------------------------------------------------------- */

static json_t *cell_json(const struct sess *x, const al_cell_result *c,
                         const char *findings) {
        json_t *o = al_cell_result_json(c, x->id, x->reason);
        if (o && findings) {
                json_t *f = json_loads(findings, 0, NULL);
                if (f)
                        json_object_set_new(o, "findings", f);
        }
        return o;
}

/* Static validation of a cell under the server's policy, as a run's. */
static int cell_validate(const struct srv_request *rq, const al_audit_who *who,
                         const char *lang, const unsigned char *code,
                         size_t len, const char *mode, char **findings,
                         struct srv_response *rs) {
        al_spec *t = al_spec_new();
        al_error e = {0};
        *findings = NULL;
        if (!t || al_spec_set_language(t, lang, &e) < 0 ||
            al_spec_set_code(t, code, len, &e) < 0) {
                al_spec_free(t);
                srv_api_error(rs, 400, "invalid_code", "code", "%s",
                              t ? e.msg : "out of memory");
                return -1;
        }
        int r = srv_api_validate(t, mode && *mode ? mode : NULL, findings, rs);
        if (r < 0) /* audited as a run's refusal is: who, code, findings */
                srv_api_audit_refused(rq, who, t, rs, *findings);
        al_spec_free(t);
        return r;
}

static void execute(const struct srv_request *rq, const char *id,
                    struct srv_response *rs) {
        al_key_info key;
        char actor[AL_KEY_ID_SIZE + 64];
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = "anonymous"};
        if (who_asks(rq, &key, actor, sizeof(actor), true, rs) < 0) {
                srv_api_audit_refused(rq, &who, NULL, rs, NULL);
                return;
        }
        who.actor = actor;
        struct sess *x = get_ref(id, actor, true, rs);
        if (!x)
                return;
        json_error_t je;
        json_t *req = NULL;
        unsigned char *code = NULL;
        size_t len = 0;
        bool stream = false;
        const char *mode = NULL;
        char *findings = NULL;
        bool holds_slot = false;
        al_limits l = x->o.cell;
        if (rq->body_too_large ||
            !srv_api_json_within_bounds(rq->body, rq->body_len) ||
            !(req = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
                               &je)) ||
            !json_is_object(req)) {
                srv_api_error(rs, rq->body_too_large ? 413 : 400,
                              rq->body_too_large ? "body_too_large"
                                                 : "invalid_json",
                              NULL, "the body must be a JSON object with code");
                goto out;
        }
        if (srv_api_build_cell(req, &key, &l, &code, &len, &stream, &mode, rs) <
            0)
                goto out;
        if (x->o.max_cells && x->cells >= x->o.max_cells) {
                pthread_mutex_lock(&reg.mu);
                end_locked(x, "max_cells",
                           "the session ran its maximum number of cells");
                dead_error(rs, x);
                pthread_mutex_unlock(&reg.mu);
                goto out;
        }
        if (cell_validate(rq, &who, x->language, code, len,
                          mode ? mode : x->o.policy_mode, &findings, rs) < 0) {
                if (findings) {
                        json_t *o = json_loads(rs->body, JSON_ALLOW_NUL, NULL);
                        json_t *f = json_loads(findings, 0, NULL);
                        if (o && f) {
                                json_object_set_new(o, "findings", f);
                                srv_api_set_json(rs, rs->status, o);
                        } else {
                                json_decref(o);
                                json_decref(f);
                        }
                }
                goto out;
        }
        /* one cell at a time: the slot before its audit record (whose
         * number is the next cell's) */
        pthread_mutex_lock(&reg.mu);
        bool busy = x->running;
        x->running = true;
        pthread_mutex_unlock(&reg.mu);
        if (busy) {
                srv_api_error(rs, 409, "session_busy", NULL,
                              "another cell of this session is running");
                goto out;
        }
        holds_slot = true;
        /* the cell's record, durable before its code reaches the driver */
        al_error e = {0};
        char cid[AL_AUDIT_CELL_ID_SIZE];
        al_session_info in;
        al_session_info_get(x->s, &in);
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_cell_started(srv_api.audit, x->id, in.cells + 1, code,
                                      len, &l, cid, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_error(rs, 503, "audit_unavailable", NULL,
                              "not running the cell: the audit log cannot be "
                              "written: %s",
                              e.msg);
                rs->retry_after = 5;
                goto out;
        }
        al_cell_opts co = {.wall_ms = l.wall_ms,
                           .cpu_ms = l.cpu_ms,
                           .output_bytes = l.output_bytes,
                           .grace_ms = SESSION_GRACE_MS,
                           .on_chunk = rq->on_chunk,
                           .chunk_ctx = rq->chunk_ctx};
        al_cell_result c;
        double t0 = srv_api_now();
        r = al_session_exec(x->s, (const char *)code, len, &co, &c, &e);
        if (r == -EBUSY) {
                /* started, never ran: its record says so */
                al_audit_cell ac = {.status = "refused",
                                    .execution_count = -1,
                                    .error_name = "session_busy"};
                pthread_mutex_lock(&srv_api.audit_lock);
                al_audit_cell_finished(srv_api.audit, cid, &ac, &e);
                pthread_mutex_unlock(&srv_api.audit_lock);
                srv_api_error(rs, 409, "session_busy", NULL,
                              "another cell of this session is running");
                goto out;
        }
        METER(execution, x->language,
              c.status == AL_CELL_OK        ? AL_STATUS_OK
              : c.status == AL_CELL_TIMEOUT ? AL_STATUS_TIMEOUT
              : c.status == AL_CELL_DEAD    ? AL_STATUS_KILLED
                                            : AL_STATUS_ERROR,
              srv_api_now() - t0);
        pthread_mutex_lock(&reg.mu);
        x->last_used = srv_api_now();
        x->cells++;
        sync_dead_locked(x);
        pthread_mutex_unlock(&reg.mu);
        static const char *const ST[] = {"ok", "error", "timeout",
                                         "session_dead"};
        json_t *err = json_object_get(c.reply, "error");
        json_t *ec = json_object_get(c.reply, "execution_count");
        al_audit_cell ac = {
                .status = ST[c.status],
                .limits_hit = c.limits_hit[0] ? c.limits_hit : NULL,
                .wall_ms = c.wall_ms,
                .cpu_ms = c.cpu_ms,
                .execution_count =
                        json_is_integer(ec) ? json_integer_value(ec) : -1,
                .error_name = json_string_value(json_object_get(err, "name")),
                .stdout_buf = c.out,
                .stdout_len = c.out_len,
                .stderr_buf = c.err,
                .stderr_len = c.err_len,
                .stdout_truncated = c.out_truncated,
                .stderr_truncated = c.err_truncated,
        };
        pthread_mutex_lock(&srv_api.audit_lock);
        r = al_audit_cell_finished(srv_api.audit, cid, &ac, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_log(json_pack("{s:s,s:s,s:s,s:o}", "event",
                                      "airlock.serve.audit_failed", "id", cid,
                                      "error", "cell record", "detail",
                                      al_jstr(e.msg)));
        }
        pthread_mutex_lock(&reg.mu);
        json_t *o = cell_json(x, &c, findings);
        pthread_mutex_unlock(&reg.mu);
        snprintf(rs->audit_id, sizeof(rs->audit_id), "%.32s", x->id);
        snprintf(rs->log_code, sizeof(rs->log_code), "%s", ST[c.status]);
        srv_api_set_json(rs, 200, o);
        al_cell_result_clear(&c);
out:
        if (holds_slot) {
                pthread_mutex_lock(&reg.mu);
                x->running = false;
                pthread_mutex_unlock(&reg.mu);
        }
        free(findings);
        free(code);
        json_decref(req);
        put_ref(x);
}

/* --- the rest ---------------------------------------------------------- */

static void list(const struct srv_request *rq, struct srv_response *rs) {
        al_key_info key;
        char actor[AL_KEY_ID_SIZE + 64];
        if (who_asks(rq, &key, actor, sizeof(actor), false, rs) < 0)
                return;
        json_t *a = json_array();
        pthread_mutex_lock(&reg.mu);
        for (struct sess *x = reg.list; x; x = x->next) {
                sync_dead_locked(x);
                if (!strcmp(x->owner, actor) && !x->ended)
                        json_array_append_new(a, sess_json(x));
        }
        pthread_mutex_unlock(&reg.mu);
        srv_api_set_json(rs, 200, json_pack("{s:o}", "sessions", a));
}

static void show(const struct srv_request *rq, const char *id,
                 struct srv_response *rs) {
        struct sess *x = owned(rq, id, false, false, rs);
        if (!x)
                return;
        pthread_mutex_lock(&reg.mu);
        json_t *o = sess_json(x);
        pthread_mutex_unlock(&reg.mu);
        srv_api_set_json(rs, 200, o);
        put_ref(x);
}

static void delete_session(const struct srv_request *rq, const char *id,
                           struct srv_response *rs) {
        struct sess *x = owned(rq, id, false, false, rs);
        if (!x)
                return;
        pthread_mutex_lock(&reg.mu);
        bool was = x->ended;
        end_locked(x, "closed", "closed by its owner");
        json_t *o = sess_json(x);
        pthread_mutex_unlock(&reg.mu);
        put_ref(x); /* the last one writes the ended record */
        snprintf(rs->audit_id, sizeof(rs->audit_id), "%s", x->id);
        json_object_set_new(o, "status", json_string("ended"));
        if (was)
                json_object_set_new(o, "already_ended", json_true());
        srv_api_set_json(rs, 200, o);
}

static void interrupt(const struct srv_request *rq, const char *id,
                      struct srv_response *rs) {
        struct sess *x = owned(rq, id, true, false, rs);
        if (!x)
                return;
        al_session_info in;
        al_session_info_get(x->s, &in);
        al_session_interrupt(x->s);
        srv_api_set_json(
                rs, 200,
                json_pack("{s:s,s:b}", "id", x->id, "interrupted", in.busy));
        put_ref(x);
}

static void ws_error(struct srv_response *rs, int r, const al_error *e) {
        int status = 500;
        const char *code = al_ws_error_code(r, &status);
        srv_api_error(rs, (unsigned)status, code, "path", "%s", e->msg);
}

static const char *query_arg(const struct srv_request *rq, const char *name) {
        for (const char *const *a = rq->args; a && a[0]; a += 2)
                if (!strcmp(a[0], name))
                        return a[1];
        return NULL;
}

static void sha256_hex(const void *d, size_t n, char out[65]) {
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, d, n);
        for (size_t i = 0; i < sizeof(h); i++)
                snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int audit_file(const struct sess *x, al_audit_file_op op,
                      const char *path, uint64_t size, const char *sha,
                      struct srv_response *rs) {
        al_error e = {0};
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_session_file(srv_api.audit, x->id, op, path, size, sha,
                                      &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_error(rs, 503, "audit_unavailable", NULL,
                              "the audit log cannot be written: %s", e.msg);
                rs->retry_after = 5;
        }
        return r;
}

static void files(const struct srv_request *rq, const char *id,
                  const char *raw_path, struct srv_response *rs) {
        bool put = !strcmp(rq->method, "PUT");
        bool del = !strcmp(rq->method, "DELETE");
        struct sess *x = owned(rq, id, true, put || del, rs);
        if (!x)
                return;
        char path[AL_WS_PATH_MAX + 1];
        size_t plen = 0;
        al_error e = {0};
        int ws = -1;
        uid_t uid;
        gid_t gid;
        const char *dir = raw_path ? NULL : query_arg(rq, "dir");
        /* the front decoded the URL (%XX) once already */
        const char *in = raw_path ? raw_path : dir ? dir : "";
        plen = strlen(in);
        if (plen >= sizeof(path) ||
            al_ws_path_check(in, plen, !raw_path, &e) < 0) {
                srv_api_error(rs, 400, "bad_path", "path", "%s",
                              e.msg[0] ? e.msg : "the path is too long");
                goto out;
        }
        memcpy(path, in, plen + 1);
        int r = al_session_workspace(x->s, &ws, &uid, &gid);
        if (r < 0) {
                pthread_mutex_lock(&reg.mu);
                sync_dead_locked(x);
                dead_error(rs, x);
                pthread_mutex_unlock(&reg.mu);
                goto out;
        }
        uint64_t cap = SESSION_FILE_MAX;
        if (!raw_path) {
                json_t *a = NULL;
                r = al_ws_list(ws, path, &a, &e);
                if (r < 0)
                        ws_error(rs, r, &e);
                else
                        srv_api_set_json(rs, 200,
                                         json_pack("{s:s,s:o,s:I}", "dir",
                                                   plen ? path : "", "entries",
                                                   a, "left_out",
                                                   (json_int_t)r));
        } else if (put) {
                if (rq->body_too_large || rq->body_len > cap) {
                        srv_api_error(rs, 413, "file_too_large", NULL,
                                      "a file may be at most %llu bytes "
                                      "(and the server's --max-body)",
                                      (unsigned long long)cap);
                        goto out;
                }
                char sha[65];
                sha256_hex(rq->body, rq->body_len, sha);
                if (audit_file(x, AL_AUDIT_FILE_PUT, path, rq->body_len, sha,
                               rs) < 0)
                        goto out;
                r = al_ws_put(ws, path, rq->body, rq->body_len, uid, gid, cap,
                              &e);
                if (r < 0)
                        ws_error(rs, r, &e);
                else
                        srv_api_set_json(rs, 201,
                                         json_pack("{s:s,s:I,s:s}", "path",
                                                   path, "size",
                                                   (json_int_t)rq->body_len,
                                                   "sha256", sha));
        } else if (del) {
                if (audit_file(x, AL_AUDIT_FILE_DELETE, path, 0, NULL, rs) < 0)
                        goto out;
                r = al_ws_delete(ws, path, &e);
                if (r < 0)
                        ws_error(rs, r, &e);
                else
                        srv_api_set_json(rs, 200,
                                         json_pack("{s:s,s:b}", "path", path,
                                                   "deleted", 1));
        } else {
                char *data = NULL;
                size_t n = 0;
                r = al_ws_get(ws, path, cap, &data, &n, &e);
                if (r < 0) {
                        ws_error(rs, r, &e);
                        goto out;
                }
                char sha[65];
                sha256_hex(data, n, sha);
                if (audit_file(x, AL_AUDIT_FILE_GET, path, n, sha, rs) < 0) {
                        free(data);
                        goto out;
                }
                rs->status = 200;
                rs->body = data;
                rs->len = n;
                rs->content_type =
                        al_guess_mime(path, (const unsigned char *)data, n);
                snprintf(rs->log_code, sizeof(rs->log_code), "ok");
                srv_api_hold(rs);
        }
        pthread_mutex_lock(&reg.mu);
        x->last_used = srv_api_now();
        pthread_mutex_unlock(&reg.mu);
out:
        safe_close(ws);
        put_ref(x);
}

/* --- routing -------------------------------------------------------------- */

void srv_api_sessions(const struct srv_request *rq, const char *rest,
                      struct srv_response *rs) {
        const char *m = rq->method;
        bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
        if (!*rest) {
                if (!strcmp(m, "POST"))
                        create(rq, rs);
                else if (get)
                        list(rq, rs);
                else {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "/v1/sessions wants GET or POST");
                        rs->allow = "GET, HEAD, POST";
                }
                return;
        }
        if (*rest != '/') {
                srv_api_error(rs, 404, "not_found", NULL, "no route");
                return;
        }
        rest++;
        char id[AL_AUDIT_ID_SIZE];
        size_t n = strcspn(rest, "/");
        if (n == 0 || n >= sizeof(id)) {
                srv_api_error(rs, 404, "session_not_found", NULL,
                              "no session %.64s", rest);
                return;
        }
        memcpy(id, rest, n);
        id[n] = '\0';
        const char *sub = rest + n;
        if (!*sub) {
                if (get)
                        show(rq, id, rs);
                else if (!strcmp(m, "DELETE"))
                        delete_session(rq, id, rs);
                else {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "a session wants GET or DELETE");
                        rs->allow = "GET, HEAD, DELETE";
                }
        } else if (!strcmp(sub, "/execute") || !strcmp(sub, "/interrupt")) {
                if (strcmp(m, "POST")) {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "%s wants POST", sub);
                        rs->allow = "POST";
                } else if (sub[1] == 'e')
                        execute(rq, id, rs);
                else
                        interrupt(rq, id, rs);
        } else if (!strcmp(sub, "/files")) {
                if (!get) {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "the listing wants GET");
                        rs->allow = "GET, HEAD";
                } else
                        files(rq, id, NULL, rs);
        } else if (!strncmp(sub, "/files/", 7)) {
                if (!get && strcmp(m, "PUT") && strcmp(m, "DELETE")) {
                        srv_api_error(rs, 405, "method_not_allowed", NULL,
                                      "a file wants GET, PUT or DELETE");
                        rs->allow = "GET, HEAD, PUT, DELETE";
                } else
                        files(rq, id, sub + 7, rs);
        } else
                srv_api_error(rs, 404, "not_found", NULL, "no route %.200s",
                              rq->path);
}
