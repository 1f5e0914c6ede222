/* SPDX-License-Identifier: MIT */
/*
 * Reading the audit log: executions (a started or refused record with its
 * finished one) as JSON for list, show, page and export, the stats, and
 * the times a query or prune takes (--since, --before).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock-audit.h"
#include "audit-internal.h"
#include "audit-store.h"
#include "error.h"
#include "json.h"
#include "macro.h"
#include "util.h"

/* --- queries ---------------------------------------------------------- */

static json_t *flags_json(const char *flags) {
        json_t *arr = json_array();
        for (const char *p = flags; p && *p;) {
                size_t n = strcspn(p, ",");
                json_array_append_new(arr, json_stringn(p, n));
                p += n + (p[n] == ',');
        }
        return arr;
}

static void set_opt(json_t *o, const char *key, const char *v) {
        json_object_set_new(o, key, v ? al_jstr(v) : json_null());
}

/* One execution: its started (or refused) record and finished record. */
static json_t *exec_json(const al_audit_rec *s, const al_audit_rec *f) {
        json_t *o = json_object();
        json_t *req = json_loads(s->detail, 0, NULL);
        json_t *res = f ? json_loads(f->detail, 0, NULL) : NULL;
        bool refused = !strcmp(s->kind, "refused");
        const char *status;
        if (f)
                status = f->status ? f->status : "unknown";
        else if (refused)
                status = s->status ? s->status : "rejected";
        else
                status = audit_owner_alive(json_object_get(req, "owner"))
                                 ? "running"
                                 : "interrupted";
        /* a session's entry and its cells' carry the session id (a
         * cell's id is "SESSION.SEQ"); a run's is null */
        bool session = !strcmp(s->kind, "session_created"),
             cell = !strcmp(s->kind, "cell_started");
        json_object_set_new(o, "id", al_jstr(s->id));
        json_object_set_new(o, "kind", json_string(session ? "session"
                                                   : cell  ? "cell"
                                                           : "run"));
        json_object_set_new(
                o, "session_id",
                session || cell ? json_stringn(s->id, strcspn(s->id, "."))
                                : json_null());
        if (cell)
                json_object_set(o, "seq", json_object_get(req, "seq"));
        json_object_set_new(o, "status", json_string(status));
        json_object_set_new(o, "started_at", al_jstr(s->ts));
        set_opt(o, "finished_at", f ? f->ts : NULL);
        set_opt(o, "source", s->source);
        set_opt(o, "actor", s->actor);
        set_opt(o, "user_id", s->user_id);
        set_opt(o, "agent_id", s->agent_id);
        set_opt(o, "language", s->language);
        /* the finished record's flags are the started record's and what
         * the run did (net_denied) */
        const char *flags = f && f->flags ? f->flags : s->flags;
        json_object_set_new(o, "flags", flags_json(flags));
        json_object_set_new(o, "suspicious", json_boolean(flags != NULL));
        json_object_set_new(o, "request", req ? req : json_object());
        if (refused)
                json_object_set(o, "error", json_object_get(req, "error"));
        json_object_set_new(o, "result", res ? res : json_null());
        json_object_set_new(
                o, "chain",
                json_pack("{s:I,s:o}", refused ? "refused" : "started",
                          (json_int_t)s->seq, "finished",
                          f ? json_integer((json_int_t)f->seq) : json_null()));
        return o;
}

struct query_ctx {
        const al_audit_filter *f;
        uint64_t left; /* 0: no limit */
        int (*cb)(json_t *, void *);
        void *ctx;
};

static int query_pair(const al_audit_rec *s, const al_audit_rec *f, void *ctx) {
        struct query_ctx *q = ctx;
        _cleanup_json_ json_t *o = exec_json(s, f);
        if (!o)
                return -ENOMEM;
        const char *st = json_string_value(json_object_get(o, "status"));
        if (q->f->interrupted && strcmp(st, "interrupted"))
                return 0;
        if (q->f->status && strcmp(st, q->f->status))
                return 0;
        int r = q->cb(o, q->ctx);
        if (r)
                return r;
        if (q->left && --q->left == 0)
                return 1;
        return 0;
}

int al_audit_query(al_audit *a, const al_audit_filter *f,
                   int (*cb)(json_t *, void *), void *ctx, al_error *err) {
        al_audit_filter sf = *f;
        /* interrupted and running are derived here, not stored */
        bool derived = f->status && (!strcmp(f->status, "interrupted") ||
                                     !strcmp(f->status, "running"));
        bool unfinished = f->interrupted || derived;
        if (derived)
                sf.status = NULL;
        struct query_ctx q = {.f = f, .left = f->limit, .cb = cb, .ctx = ctx};
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        r = a->st->ops->pairs(a->st, &sf, unfinished, unfinished ? 0 : f->limit,
                              query_pair, &q, err);
        a->st->ops->rollback(a->st);
        return r == 1 ? 0 : r;
}

/* One page: each execution's JSON appended to a text, within the caps. */
struct page_ctx {
        const al_audit_filter *f;
        al_audit_page *p;
        size_t cap;
        uint64_t scanned;
        uint64_t last; /* chain position of the last execution consumed */
};

static int page_add(struct page_ctx *c, const char *text, size_t n) {
        al_audit_page *p = c->p;
        if (p->len + n + 2 > c->cap) {
                size_t cap = c->cap ? c->cap : 16384;
                while (cap < p->len + n + 2)
                        cap *= 2;
                char *b = realloc(p->json, cap);
                if (!b)
                        return -ENOMEM;
                p->json = b;
                c->cap = cap;
        }
        memcpy(p->json + p->len, text, n);
        p->len += n;
        p->json[p->len] = '\0';
        return 0;
}

static int page_pair(const al_audit_rec *s, const al_audit_rec *f, void *ctx) {
        struct page_ctx *c = ctx;
        al_audit_page *p = c->p;
        /* stopped before s: the next page starts after the last one
         * consumed */
        if ((p->max_scan && c->scanned == p->max_scan) ||
            (c->f->limit && p->count == c->f->limit)) {
                p->more = true;
                p->next = c->last;
                return 1;
        }
        c->scanned++;
        _cleanup_json_ json_t *o = exec_json(s, f);
        if (!o)
                return -ENOMEM;
        const char *st = json_string_value(json_object_get(o, "status"));
        if ((c->f->interrupted && strcmp(st, "interrupted")) ||
            (c->f->status && strcmp(st, c->f->status))) {
                c->last = s->seq;
                return 0;
        }
        _cleanup_free_ char *text =
                json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        size_t n = strlen(text);
        /* "[" + items + "," each + "]": at least one, whatever its size */
        if (p->count && p->max_bytes && p->len + 1 + n + 1 > p->max_bytes) {
                p->more = true;
                p->next = c->last;
                return 1;
        }
        int r = page_add(c, p->count ? "," : "[", 1);
        if (r == 0)
                r = page_add(c, text, n);
        if (r < 0)
                return r;
        p->count++;
        c->last = s->seq;
        return 0;
}

int al_audit_query_page(al_audit *a, const al_audit_filter *f, al_audit_page *p,
                        al_error *err) {
        al_audit_filter sf = *f;
        bool derived = f->status && (!strcmp(f->status, "interrupted") ||
                                     !strcmp(f->status, "running"));
        bool unfinished = f->interrupted || derived;
        if (derived)
                sf.status = NULL;
        p->json = NULL;
        p->len = 0;
        p->count = 0;
        p->more = false;
        p->next = 0;
        struct page_ctx c = {.f = f, .p = p};
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        /* one more than the limit in SQL: whether there are more */
        r = a->st->ops->pairs(a->st, &sf, unfinished,
                              unfinished || !f->limit ? 0 : f->limit + 1,
                              page_pair, &c, err);
        a->st->ops->rollback(a->st);
        if (r == 0 || r == 1)
                r = page_add(&c, p->count ? "]" : "[]", p->count ? 1 : 2);
        if (r < 0) {
                free(p->json);
                p->json = NULL;
                p->len = 0;
                if (r == -ENOMEM)
                        al_error_set(err, ENOMEM, "out of memory");
                return r;
        }
        return 0;
}

struct get_ctx {
        json_t *records, *files;
        char *id;                   /* the first execution's (32 digits) */
        char cur[AL_AUDIT_ID_SIZE]; /* the group being read */
        int ids; /* distinct execution ids seen (records come grouped) */
};

/* A session's file event for show: where it sits and what it names. */
static json_t *file_event(const al_audit_rec *rec) {
        _cleanup_json_ json_t *d = json_loads(rec->detail, 0, NULL);
        json_t *o = json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)rec->seq,
                              "kind", rec->kind, "ts", rec->ts);
        static const char *const keys[] = {"path", "bytes", "sha256"};
        for (size_t i = 0; o && i < ARRAY_SIZE(keys); i++) {
                json_t *v = json_object_get(d, keys[i]);
                json_object_set(o, keys[i], v ? v : json_null());
        }
        return o;
}

static int get_rec(const al_audit_rec *rec, void *ctx) {
        struct get_ctx *g = ctx;
        /* a session's records and its cells' ("SESSION.SEQ") are one
         * group: the ids' first 32 characters */
        size_t n = strcspn(rec->id, ".");
        if (n >= sizeof(g->cur))
                n = sizeof(g->cur) - 1;
        if (!g->ids || strlen(g->cur) != n || strncmp(g->cur, rec->id, n)) {
                g->ids++;
                snprintf(g->cur, sizeof(g->cur), "%.*s", (int)n, rec->id);
                if (g->ids == 1 && !(g->id = strdup(g->cur)))
                        return -ENOMEM;
        }
        if (g->ids > 1)
                return 0; /* ambiguous: only counted */
        json_array_append_new(g->records,
                              json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "seq",
                                        (json_int_t)rec->seq, "kind", rec->kind,
                                        "id", rec->id, "ts", rec->ts, "prev",
                                        rec->prev, "hash", rec->hash, "mac",
                                        rec->mac));
        if (!strncmp(rec->kind, "file_", 5))
                json_array_append_new(g->files, file_event(rec));
        return 0;
}

static int get_pair(const al_audit_rec *s, const al_audit_rec *f, void *ctx) {
        *(json_t **)ctx = exec_json(s, f);
        return 1;
}

/* At most this many of a session's cells are in its show (the newest;
 * cells_more says there are more: list --session pages through all). */
#define AUDIT_SHOW_CELLS 1000

struct cells_ctx {
        json_t *cells; /* newest first while collected */
        bool more;
};

static int get_cell(const al_audit_rec *s, const al_audit_rec *f, void *ctx) {
        struct cells_ctx *c = ctx;
        if (strcmp(s->kind, "cell_started"))
                return 0; /* the session itself */
        if (json_array_size(c->cells) == AUDIT_SHOW_CELLS) {
                c->more = true;
                return 1;
        }
        json_t *o = exec_json(s, f);
        if (!o)
                return -ENOMEM;
        /* the code is in the cell's own show */
        json_t *code = json_object_get(json_object_get(o, "request"), "code");
        json_object_del(code, "text");
        json_object_del(code, "base64");
        json_object_del(o, "records");
        return json_array_insert_new(c->cells, 0, o) ? -ENOMEM : 0;
}

int al_audit_get(al_audit *a, const char *id, json_t **ret, al_error *err) {
        return al_audit_get_as(a, id, NULL, ret, err);
}

int al_audit_get_as(al_audit *a, const char *id, const char *actor,
                    json_t **ret, al_error *err) {
        *ret = NULL;
        /* an execution or session id (or a prefix), or one cell:
         * "PREFIX.SEQ" */
        const char *dot = strchr(id, '.');
        size_t n = dot ? (size_t)(dot - id) : strlen(id);
        size_t digits = dot ? strlen(dot + 1) : 0;
        if (n < 6 || n > 32 || strspn(id, "0123456789abcdef") != n ||
            (dot && (digits < 1 || digits > 20 || dot[1] == '0' ||
                     strspn(dot + 1, "0123456789") != digits)))
                return al_error_set(err, EINVAL,
                                    "an execution id is 6 to 32 lowercase "
                                    "hex digits (a cell's: then '.' and its "
                                    "number), got '%s'",
                                    id);
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        struct get_ctx g = {.records = json_array(), .files = json_array()};
        json_t *o = NULL;
        char full[AL_AUDIT_CELL_ID_SIZE];
        if (!g.records || !g.files) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        /* only the actor's executions are looked at, so the answer for
         * another actor's id is the one for an id that does not exist */
        if ((r = a->st->ops->by_id(a->st, id, actor, get_rec, &g, err)) < 0)
                goto out;
        if (g.ids == 0)
                r = al_error_set(err, ENOENT, "no execution %s", id);
        else if (g.ids > 1)
                r = al_error_set(err, EEXIST,
                                 "id prefix %s matches %d executions; give "
                                 "more digits",
                                 id, g.ids);
        if (r < 0)
                goto out;
        snprintf(full, sizeof(full), "%s%s", g.id, dot ? dot : "");
        al_audit_filter f = {.id = full};
        r = a->st->ops->pairs(a->st, &f, false, 1, get_pair, &o, err);
        if (r == 1)
                r = 0;
        if (r == 0 && !o) /* only a finished or pruned record is left */
                o = json_pack("{s:s,s:s}", "id", full, "status", "pruned");
        if (r == 0 && o &&
            !strcmp(json_string_value(json_object_get(o, "kind")) ?: "",
                    "session")) {
                struct cells_ctx c = {.cells = json_array()};
                al_audit_filter sf = {.session = g.id};
                if (!c.cells)
                        r = -ENOMEM;
                else
                        r = a->st->ops->pairs(a->st, &sf, false, 0, get_cell,
                                              &c, err);
                if (r == 1)
                        r = 0;
                if (r == -ENOMEM)
                        al_error_set(err, ENOMEM, "out of memory");
                json_object_set_new(o, "cells", c.cells);
                if (c.more)
                        json_object_set_new(o, "cells_more", json_true());
                json_object_set(o, "files", g.files);
        }
out:
        a->st->ops->rollback(a->st);
        json_decref(g.files);
        if (r < 0 || !o) {
                json_decref(o);
                json_decref(g.records);
                free(g.id);
                return r < 0 ? r : al_error_set(err, ENOMEM, "out of memory");
        }
        json_object_set_new(o, "records", g.records);
        free(g.id);
        *ret = o;
        return 0;
}

static void count_in(json_t *o, const char *key, const char *v) {
        json_t *m = json_object_get(o, key);
        if (!v)
                v = "(none)";
        json_int_t n = json_integer_value(json_object_get(m, v));
        json_object_set_new(m, v, json_integer(n + 1));
}

static int stats_one(json_t *e, void *ctx) {
        json_t *st = ctx;
        json_object_set_new(st, "executions",
                            json_integer(json_integer_value(json_object_get(
                                                 st, "executions")) +
                                         1));
        count_in(st, "by_status",
                 json_string_value(json_object_get(e, "status")));
        count_in(st, "by_language",
                 json_string_value(json_object_get(e, "language")));
        count_in(st, "by_source",
                 json_string_value(json_object_get(e, "source")));
        count_in(st, "by_actor",
                 json_string_value(json_object_get(e, "actor")));
        if (json_is_true(json_object_get(e, "suspicious"))) {
                json_object_set_new(
                        st, "suspicious",
                        json_integer(json_integer_value(json_object_get(
                                             st, "suspicious")) +
                                     1));
                size_t i;
                json_t *fl;
                json_array_foreach(json_object_get(e, "flags"), i, fl)
                        count_in(st, "by_flag", json_string_value(fl));
        }
        const char *ts = json_string_value(json_object_get(e, "started_at"));
        const char *first = json_string_value(json_object_get(st, "first"));
        if (ts && (!first || strcmp(ts, first) < 0))
                json_object_set_new(st, "first", json_string(ts));
        const char *last = json_string_value(json_object_get(st, "last"));
        if (ts && (!last || strcmp(ts, last) > 0))
                json_object_set_new(st, "last", json_string(ts));
        return 0;
}

int al_audit_stats(al_audit *a, const al_audit_filter *f, json_t **ret,
                   al_error *err) {
        json_t *st = json_pack("{s:i,s:i,s:{},s:{},s:{},s:{},s:{},s:n,s:n}",
                               "executions", 0, "suspicious", 0, "by_status",
                               "by_language", "by_source", "by_actor",
                               "by_flag", "first", "last");
        if (!st)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_filter all = *f;
        all.limit = 0;
        int r = al_audit_query(a, &all, stats_one, st, err);
        uint64_t seq = 0;
        char head[AL_AUDIT_HASH_SIZE];
        if (r == 0)
                r = al_audit_head(a, &seq, head, err);
        if (r < 0) {
                json_decref(st);
                return r;
        }
        json_object_set_new(st, "records", json_integer((json_int_t)seq));
        json_object_set_new(st, "head", json_string(head));
        json_object_set_new(st, "store", json_string(a->st->ops->name));
        json_object_set_new(st, "bytes",
                            json_integer((json_int_t)a->st->ops->size(a->st)));
        json_object_set_new(st, "state_dir", json_string(a->dir));
        *ret = st;
        return 0;
}

/* --- time ------------------------------------------------------------- */

int al_audit_parse_time(const char *in, char out[32], al_error *err) {
        if (!in || !*in)
                return al_error_set(err, EINVAL, "empty time");
        size_t n = strlen(in);
        char unit = in[n - 1];
        if (strchr("smhd", unit) && n >= 2 && n < 16 &&
            strspn(in, "0123456789") == n - 1) {
                char num[16];
                memcpy(num, in, n - 1);
                num[n - 1] = '\0';
                uint64_t v;
                if (al_parse_u64(num, &v) < 0 || v > 100ull * 365 * 86400)
                        return al_error_set(err, ERANGE, "age out of range: %s",
                                            in);
                uint64_t mul = unit == 's'   ? 1
                               : unit == 'm' ? 60
                               : unit == 'h' ? 3600
                                             : 86400;
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                time_t when = t.tv_sec - (time_t)(v * mul);
                struct tm tm;
                gmtime_r(&when, &tm);
                snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec, t.tv_nsec / 1000000);
                return 0;
        }
        int Y = 0, M = 0, D = 0, h = 0, m = 0, sec = 0, ms = 0, used = 0;
        int k = sscanf(in, "%4d-%2d-%2d%n", &Y, &M, &D, &used);
        const char *p = in + used;
        if (k == 3 && used == 10 && (*p == 'T' || *p == ' ')) {
                int u2 = 0;
                if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &u2) == 2 && u2 == 5) {
                        p += 1 + u2;
                        if (*p == ':') {
                                int u3 = 0;
                                if (sscanf(p + 1, "%2d%n", &sec, &u3) != 1 ||
                                    u3 != 2)
                                        goto bad;
                                p += 1 + u3;
                                if (*p == '.') {
                                        int u4 = 0;
                                        if (sscanf(p + 1, "%3d%n", &ms, &u4) !=
                                                    1 ||
                                            u4 != 3)
                                                goto bad;
                                        p += 1 + u4;
                                }
                        }
                } else
                        goto bad;
        }
        if (k != 3 || used != 10)
                goto bad;
        if (*p == 'Z')
                p++;
        if (*p)
                goto bad;
        /* a real date: timegm must give the same fields back */
        struct tm tm = {.tm_year = Y - 1900,
                        .tm_mon = M - 1,
                        .tm_mday = D,
                        .tm_hour = h,
                        .tm_min = m,
                        .tm_sec = sec};
        time_t t = timegm(&tm);
        struct tm back;
        if (t == (time_t)-1 || !gmtime_r(&t, &back) ||
            back.tm_year != Y - 1900 || back.tm_mon != M - 1 ||
            back.tm_mday != D || back.tm_hour != h || back.tm_min != m ||
            back.tm_sec != sec)
                goto bad;
        snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Y, M, D, h, m,
                 sec, ms);
        return 0;
bad:
        return al_error_set(err, EINVAL,
                            "bad time '%s': want YYYY-MM-DD, "
                            "YYYY-MM-DDTHH:MM[:SS[.mmm]][Z] (UTC) or an age "
                            "like 30m, 2h, 7d",
                            in);
}
