/* SPDX-License-Identifier: MIT */
/* Reads of the audit log: one execution, a page of executions, for the
 * request's key (its own, or every tenant's with audit:read). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "service-internal.h"
#include "util.h"

/* The value of query parameter name, or NULL. */
static const char *arg(const struct srv_request *rq, const char *name) {
        for (const char *const *a = rq->args; a && a[0]; a += 2)
                if (!strcmp(a[0], name))
                        return a[1];
        return NULL;
}

/* Every query parameter is one of allowed, at most once: 0, or 400. */
static int only_args(const struct srv_request *rq, const char *const *allowed,
                     struct srv_response *rs) {
        if (rq->too_many_args) {
                srv_api_error(rs, 400, "too_many", NULL,
                              "more than %d query parameters", SRV_MAX_ARGS);
                return -1;
        }
        for (const char *const *a = rq->args; a && a[0]; a += 2) {
                const char *const *k = allowed;
                while (*k && strcmp(*k, a[0]))
                        k++;
                if (!*k) {
                        srv_api_error(rs, 400, "unknown_parameter", a[0],
                                      "unknown query parameter '%.64s'", a[0]);
                        return -1;
                }
                for (const char *const *b = rq->args; b < a; b += 2)
                        if (!strcmp(b[0], a[0])) {
                                srv_api_error(
                                        rs, 400, "duplicate_parameter", a[0],
                                        "query parameter '%.64s' is given "
                                        "twice",
                                        a[0]);
                                return -1;
                        }
        }
        return 0;
}

/* A key for reading: 0 and whether it may read every tenant's records
 * (audit:read, admin) or only its own (execute), or an error and -1. A
 * read takes one token of the key's read bucket. */
static int reader(const struct srv_request *rq, al_key_info *key, bool *all,
                  struct srv_response *rs) {
        if (srv_api_authenticate(rq, key, rs) < 0)
                return -1;
        *all = key->scopes & (AL_SCOPE_AUDIT_READ | AL_SCOPE_ADMIN);
        if (!*all && !(key->scopes & AL_SCOPE_EXECUTE)) {
                srv_api_error(rs, 403, "forbidden", NULL,
                              "key %s lacks the audit:read scope", key->id);
                return -1;
        }
        return srv_api_read_rate_take(key, rs);
}

/* A reader thread's own connection to the audit log: its reads neither
 * wait for the writers' mutex nor hold it (SQLite's WAL lets readers and
 * the writer go on at once). */
static __thread al_audit *tl_reads;

void srv_api_reader_start(void) {
        al_error e = {0};
        /* under the writers' mutex: opening registers the state directory
         * as a protected path, which the runs read */
        pthread_mutex_lock(&srv_api.audit_lock);
        if (al_audit_open(srv_api.cfg->state[0] ? srv_api.cfg->state : NULL,
                          &tl_reads, &e) < 0)
                tl_reads = NULL;
        pthread_mutex_unlock(&srv_api.audit_lock);
        if (!tl_reads)
                fprintf(stderr,
                        "{\"event\":\"airlock.serve.reader\",\"error\":"
                        "\"cannot open the audit log for reading; reads "
                        "share the writers' connection\"}\n");
}

void srv_api_reader_stop(void) {
        tl_reads = al_audit_close(tl_reads);
}

/* The connection for a read: the thread's own, else the shared one under
 * its mutex until reads_end. */
static al_audit *reads_begin(void) {
        if (tl_reads)
                return tl_reads;
        pthread_mutex_lock(&srv_api.audit_lock);
        return srv_api.audit;
}

static void reads_end(al_audit *a) {
        if (a != tl_reads)
                pthread_mutex_unlock(&srv_api.audit_lock);
}

/* An execution or session id or a prefix of one (6 to 32 hex digits),
 * optionally followed by ".N" (a session's cell N). */
static bool is_hex_id(const char *id) {
        size_t n = strspn(id, "0123456789abcdef");
        if (n < 6 || n >= AL_AUDIT_ID_SIZE)
                return false;
        if (id[n] == '.') {
                size_t d = strspn(id + n + 1, "0123456789");
                return d >= 1 && d <= 20 && id[n + 1] != '0' && !id[n + 1 + d];
        }
        return !id[n];
}

/* GET /v1/executions/{id}: the audit record (airlock audit show --json).
 * A key with only the execute scope sees its own executions; the lookup
 * looks at nothing else, so another tenant's id (or a prefix only another
 * tenant's ids share) is "not found" exactly like an id that does not
 * exist, and a prefix is ambiguous only among the key's own. */
void srv_api_execution(const struct srv_request *rq, const char *id,
                       struct srv_response *rs) {
        al_key_info key;
        bool all;
        if (reader(rq, &key, &all, rs) < 0 || only_args(rq, NULL, rs) < 0)
                return;
        if (!is_hex_id(id)) {
                srv_api_error(rs, 400, "invalid_value", "id",
                              "an execution id is 6 to 32 lowercase hex digits "
                              "(a session's cell: then '.' and its number)");
                return;
        }
        json_t *x = NULL;
        al_error e = {0};
        char own[32];
        snprintf(own, sizeof(own), "key:%s", key.id);
        al_audit *a = reads_begin();
        int r = al_audit_get_as(a, id, all ? NULL : own, &x, &e);
        reads_end(a);
        if (r == 0 && !all &&
            strcmp(json_string_value(json_object_get(x, "actor")) ?: "", own)) {
                json_decref(x);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                srv_api_error(rs, 404, "not_found", "id", "no execution %s",
                              id);
        else if (r == -EEXIST)
                srv_api_error(rs, 400, "ambiguous_id", "id", "%s", e.msg);
        else if (r < 0)
                srv_api_error(rs, 500, "audit_unavailable", NULL, "%s", e.msg);
        else {
                snprintf(rs->log_code, sizeof(rs->log_code), "ok");
                srv_api_set_json(rs, 200, x);
                srv_api_hold(rs);
        }
}

#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX 1000
/* A page of /v1/audit stops before the execution that would take it past
 * this many bytes (one execution always goes in: a record is bounded by
 * the audit store's own caps): what one read costs the server in time
 * and memory is bounded whatever limit asks. */
#define AUDIT_PAGE_MAX_BYTES (4u << 20)
/* ...and after examining this many executions (filters computed in C,
 * interrupted and running, may skip most of the log). */
#define AUDIT_PAGE_MAX_SCAN 20000

/* GET /v1/audit?since&until&actor&status&source&language&suspicious&
 * interrupted&limit&cursor&session: executions (runs, sessions, cells)
 * newest first, as airlock audit
 * list --json, in pages: {executions, count, more, next}; next is the
 * cursor of the following page (the same query with cursor=next). */
void srv_api_audit_list(const struct srv_request *rq, struct srv_response *rs) {
        static const char *const ARGS[] = {
                "since",  "until",    "actor",      "status",
                "source", "language", "suspicious", "interrupted",
                "limit",  "cursor",   "session",    NULL};
        al_key_info key;
        bool all;
        if (reader(rq, &key, &all, rs) < 0 || only_args(rq, ARGS, rs) < 0)
                return;
        al_audit_filter f = {.limit = AUDIT_PAGE_DEFAULT};
        char since[32], until[32], own[32];
        al_error e = {0};
        const char *v;
        if ((v = arg(rq, "since")) && al_audit_parse_time(v, since, &e) < 0) {
                srv_api_error(rs, 400, "invalid_value", "since", "%s", e.msg);
                return;
        }
        f.since = v ? since : NULL;
        if ((v = arg(rq, "until")) && al_audit_parse_time(v, until, &e) < 0) {
                srv_api_error(rs, 400, "invalid_value", "until", "%s", e.msg);
                return;
        }
        f.until = v ? until : NULL;
        f.actor = arg(rq, "actor");
        f.status = arg(rq, "status");
        f.source = arg(rq, "source");
        f.language = arg(rq, "language");
        /* one session: itself and its cells */
        if ((v = arg(rq, "session")) &&
            (strlen(v) != AL_AUDIT_ID_SIZE - 1 ||
             strspn(v, "0123456789abcdef") != AL_AUDIT_ID_SIZE - 1)) {
                srv_api_error(rs, 400, "invalid_value", "session",
                              "session is a session id (32 lowercase hex "
                              "digits)");
                return;
        }
        f.session = v;
        static const char *const BOOLS[] = {"suspicious", "interrupted"};
        for (int i = 0; i < 2; i++) {
                bool b = false;
                if ((v = arg(rq, BOOLS[i])) && !(b = !strcmp(v, "true")) &&
                    strcmp(v, "false")) {
                        srv_api_error(rs, 400, "invalid_value", BOOLS[i],
                                      "%s is true or false", BOOLS[i]);
                        return;
                }
                *(i ? &f.interrupted : &f.suspicious) = b;
        }
        if ((v = arg(rq, "limit")) &&
            (al_parse_u64(v, &f.limit) < 0 || f.limit < 1 ||
             f.limit > AUDIT_PAGE_MAX)) {
                srv_api_error(rs, 400, "invalid_value", "limit",
                              "limit is a number from 1 to %d", AUDIT_PAGE_MAX);
                return;
        }
        /* the cursor is a chain position; opaque to clients */
        if ((v = arg(rq, "cursor")) &&
            (al_parse_u64(v, &f.before) < 0 || f.before < 1)) {
                srv_api_error(rs, 400, "invalid_value", "cursor",
                              "cursor is the next value of an earlier page");
                return;
        }
        snprintf(own, sizeof(own), "key:%s", key.id);
        if (!all) {
                if (f.actor && strcmp(f.actor, own)) {
                        srv_api_error(rs, 403, "forbidden", "actor",
                                      "key %s may read only its own executions "
                                      "(actor %s) without the audit:read scope",
                                      key.id, own);
                        return;
                }
                f.actor = own;
        }
        al_audit_page pg = {.max_bytes = AUDIT_PAGE_MAX_BYTES,
                            .max_scan = AUDIT_PAGE_MAX_SCAN};
        al_audit *a = reads_begin();
        int r = al_audit_query_page(a, &f, &pg, &e);
        reads_end(a);
        if (r < 0) {
                srv_api_error(rs, 500, "audit_unavailable", NULL, "%s", e.msg);
                return;
        }
        /* the page's text as it is, in the object around it */
        char tail[128];
        if (pg.more)
                snprintf(tail, sizeof(tail),
                         ",\"count\":%llu,\"more\":true,\"next\":\"%llu\"}",
                         (unsigned long long)pg.count,
                         (unsigned long long)pg.next);
        else
                snprintf(tail, sizeof(tail),
                         ",\"count\":%llu,\"more\":false,\"next\":null}",
                         (unsigned long long)pg.count);
        static const char head[] = "{\"executions\":";
        size_t n = strlen(head) + pg.len + strlen(tail);
        char *body = malloc(n + 1);
        if (!body) {
                free(pg.json);
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
                return;
        }
        memcpy(body, head, strlen(head));
        memcpy(body + strlen(head), pg.json, pg.len);
        memcpy(body + strlen(head) + pg.len, tail, strlen(tail) + 1);
        free(pg.json);
        rs->status = 200;
        rs->body = body;
        rs->len = n;
        rs->content_type = "application/json";
        snprintf(rs->log_code, sizeof(rs->log_code), "ok");
        /* up to 4 MiB that a client may be slow to read */
        srv_api_hold(rs);
}
