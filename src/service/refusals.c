/* SPDX-License-Identifier: MIT */
/* The audit of refusals, and the coalescing of unauthenticated ones. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "json.h"
#include "service-internal.h"
#include "util.h"

/* Refusals of requests without a valid key (actor anonymous) are
 * coalesced per source address and source (http, mcp): the first
 * COALESCE_FULL of a COALESCE_WINDOW_S window are recorded in full, the
 * rest are counted and written as one summary record ("N more
 * unauthenticated refusals from ADDR between T1 and T2") when the window
 * ends (srv_api_tick, once a second) or at shutdown. An anonymous flood
 * then writes at most COALESCE_FULL + 1 durable records (and alerts) per
 * address per window instead of one per request; none is lost: every
 * refusal is either a record or counted in one, and in the metrics. */
#define COALESCE_WINDOW_S 10 /* seconds */
#define COALESCE_FULL 10     /* refusals recorded in full per window */
#define COALESCE_SOURCES                                                       \
        1024 /* addresses tracked at once; beyond, they                        \
                share one entry (peer "*") */

struct anon_window {
        char peer[64];
        const char *source;  /* static string: "http" or "mcp" */
        double start;        /* monotonic; 0 = free */
        unsigned full;       /* recorded in full this window */
        uint64_t counted;    /* not recorded alone: for the summary */
        char t1[32], t2[32]; /* UTC of the first and last counted */
};

static struct {
        pthread_mutex_t lock;
        /* last two: the overflow, one per source (so that alternating
         * sources cannot restart it and record every refusal in full) */
        struct anon_window w[COALESCE_SOURCES + 2];
} anon = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The summary of a window (its counted refusals). */
struct anon_summary {
        char peer[64];
        const char *source;
        uint64_t n;
        char t1[32], t2[32];
};

/* Close window w: its summary into out, the entry free again. */
static void window_close(struct anon_window *w, struct anon_summary *out) {
        *out = (struct anon_summary){.n = w->counted, .source = w->source};
        snprintf(out->peer, sizeof(out->peer), "%s", w->peer);
        snprintf(out->t1, sizeof(out->t1), "%s", w->t1);
        snprintf(out->t2, sizeof(out->t2), "%s", w->t2);
        w->start = 0;
        w->full = 0;
        w->counted = 0;
}

static void summary_write(const struct anon_summary *sm) {
        if (!sm->n)
                return;
        char msg[300], id[AL_AUDIT_ID_SIZE] = "";
        snprintf(msg, sizeof(msg),
                 "%llu more unauthenticated refusals from %s between %s and "
                 "%s",
                 (unsigned long long)sm->n, sm->peer, sm->t1, sm->t2);
        al_audit_who who = {.source = sm->source, .actor = "anonymous"};
        al_error e = {0};
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_refused(srv_api.audit, &who, NULL,
                                 "refusals_coalesced", msg, NULL, id, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_log(json_pack("{s:s,s:s,s:o,s:o}", "event",
                                      "airlock.serve.audit_failed", "code",
                                      "refusals_coalesced", "message",
                                      al_jstr(msg), "detail", al_jstr(e.msg)));
        }
}

/* Whether this anonymous refusal is recorded in full (true) or counted
 * for its window's summary. A window of the entry that had ended is
 * closed and handed back in *ended, for the caller to write. */
static bool anon_admit(const char *peer, const char *source,
                       struct anon_summary *ended) {
        double t = srv_api_now();
        ended->n = 0;
        if (!peer || !*peer)
                peer = "unknown";
        pthread_mutex_lock(&anon.lock);
        struct anon_window *w = NULL, *free_w = NULL;
        for (size_t i = 0; i < COALESCE_SOURCES && !w; i++) {
                struct anon_window *x = &anon.w[i];
                if (!x->start)
                        free_w = free_w ? free_w : x;
                else if (x->source == source && !strcmp(x->peer, peer))
                        w = x;
        }
        if (!w && !free_w) {
                /* every entry taken: the overflow entry of the source */
                w = &anon.w[COALESCE_SOURCES + !strcmp(source, "mcp")];
                peer = "*";
        }
        if (w && w->start && t - w->start >= COALESCE_WINDOW_S)
                window_close(w, ended);
        if (!w || !w->start) {
                w = w ? w : free_w;
                snprintf(w->peer, sizeof(w->peer), "%s", peer);
                w->source = source;
                w->start = t;
        }
        bool full = w->full < COALESCE_FULL;
        if (full)
                w->full++;
        else {
                if (!w->counted++)
                        al_utc_now(w->t1);
                al_utc_now(w->t2);
        }
        pthread_mutex_unlock(&anon.lock);
        return full;
}

/* Close the windows that have ended (every one when flush) and write
 * their summaries. */
void srv_api_anon_sweep(bool flush) {
        for (;;) {
                struct anon_summary sm = {0};
                double t = srv_api_now();
                pthread_mutex_lock(&anon.lock);
                for (size_t i = 0; i < COALESCE_SOURCES + 2 && !sm.n; i++) {
                        struct anon_window *x = &anon.w[i];
                        if (x->start &&
                            (flush || t - x->start >= COALESCE_WINDOW_S))
                                window_close(x, &sm);
                }
                pthread_mutex_unlock(&anon.lock);
                if (!sm.n)
                        return;
                summary_write(&sm);
        }
}

void srv_api_tick(void) {
        srv_api_anon_sweep(false);
}

void srv_api_audit_refused(const struct srv_request *rq,
                           const al_audit_who *who, const al_spec *s,
                           struct srv_response *rs, const char *findings) {
        METER(refused);
        if (!rq->local_actor && !strcmp(who->actor, "anonymous")) {
                const char *src = !strcmp(who->source, "mcp") ? "mcp" : "http";
                struct anon_summary ended;
                bool full = anon_admit(rq->peer, src, &ended);
                summary_write(&ended);
                METER(unauthenticated, !full);
                if (!full)
                        return; /* counted: no record of its own, no id */
        }
        al_error e = {0};
        char id[AL_AUDIT_ID_SIZE] = "";
        const char *msg = "";
        json_t *o =
                rs->body ? json_loads(rs->body, JSON_ALLOW_NUL, NULL) : NULL;
        json_t *err = json_object_get(o, "error");
        msg = json_string_value(json_object_get(err, "message"));
        pthread_mutex_lock(&srv_api.audit_lock);
        int r = al_audit_refused(srv_api.audit, who, s,
                                 rs->log_code[0] ? rs->log_code : "refused",
                                 msg ? msg : "", findings, id, &e);
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (r < 0) {
                METER(audit_failure);
                srv_api_log(json_pack("{s:s,s:s,s:o}", "event",
                                      "airlock.serve.audit_failed", "code",
                                      rs->log_code, "detail", al_jstr(e.msg)));
        } else if (o && json_is_object(o)) {
                json_object_set_new(o, "id", json_string(id));
                snprintf(rs->audit_id, sizeof(rs->audit_id), "%s", id);
                char *b = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (b) {
                        free(rs->body);
                        rs->body = b;
                        rs->len = strlen(b);
                }
        }
        json_decref(o);
}

/* A request refused outside the handlers: audited like every other
 * refusal, with the key as actor when it is valid. */
void srv_api_refused(const struct srv_request *rq, struct srv_response *rs) {
        srv_api_refused_as(rq, rs, NULL);
}

void srv_api_refused_as(const struct srv_request *rq, struct srv_response *rs,
                        const char *known) {
        al_key_info key;
        struct srv_response scratch = {0};
        char actor[AL_KEY_ID_SIZE + 64] = "anonymous";
        if (rq->local_actor)
                snprintf(actor, sizeof(actor), "%s", rq->local_actor);
        else if (known) {
                /* the caller authenticated already: no second look-up
                 * (an unknown key would cost two of the lookup rate) */
                snprintf(actor, sizeof(actor), "%s", known);
                if (strcmp(known, "anonymous"))
                        snprintf(rs->log_key, sizeof(rs->log_key), "%s", actor);
        } else if (srv_api_authenticate(rq, &key, &scratch) == 0) {
                snprintf(actor, sizeof(actor), "key:%s", key.id);
                snprintf(rs->log_key, sizeof(rs->log_key), "%s", actor);
        }
        free(scratch.body);
        al_audit_who who = {.source = rq->source ? rq->source : "http",
                            .actor = actor};
        srv_api_audit_refused(rq, &who, NULL, rs, NULL);
}
