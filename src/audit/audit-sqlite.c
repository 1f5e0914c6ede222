/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend of the audit log: one file, WAL journal, every commit
 * durable (synchronous=FULL), writers serialised by BEGIN IMMEDIATE with a
 * busy timeout. The schema is versioned with PRAGMA user_version and
 * migrated forward in one transaction; docs/airlock-audit.1 documents it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit-store.h"
#include "error.h"
#include "macro.h"
#include "util.h"

/* Migration i brings the schema from version i to i + 1. */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE records ("
        " seq INTEGER PRIMARY KEY," /* chain position: 1, 2, 3 ... */
        " kind TEXT NOT NULL,"      /* started|finished|refused|pruned */
        " id TEXT NOT NULL,"        /* execution id */
        " ts TEXT NOT NULL,"        /* UTC, YYYY-MM-DDTHH:MM:SS.mmmZ */
        " source TEXT, actor TEXT, user_id TEXT, agent_id TEXT,"
        " language TEXT, status TEXT, flags TEXT,"
        " detail TEXT NOT NULL,"    /* JSON object */
        " prev TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL);"
        "CREATE INDEX records_id ON records(id, kind);"
        "CREATE INDEX records_ts ON records(ts);"
        "CREATE TABLE checkpoint ("
        " one INTEGER PRIMARY KEY CHECK (one = 1),"
        " seq INTEGER NOT NULL, hash TEXT NOT NULL, ts TEXT NOT NULL,"
        " count INTEGER NOT NULL, mac TEXT NOT NULL);",
};

#define COLS                                                                   \
        "seq, kind, id, ts, source, actor, user_id, agent_id, language, "      \
        "status, flags, detail, prev, hash, mac"
#define NCOLS 15

/* One object of sqlite_schema: what is compared, rootpage aside. */
struct schema_obj {
        char *type, *name, *tbl_name, *sql;
};

/* At most this many schema objects are read for a comparison: airlock's
 * own are 4; more than this is reported as unexpected without reading
 * them all. */
#define SCHEMA_MAX_OBJECTS 64

typedef struct sq_store {
        al_audit_store base;
        sqlite3 *db;
        char *path;
        sqlite3_stmt *insert, *head;
        /* the schema airlock's migrations create, sorted by type, name */
        struct schema_obj want[SCHEMA_MAX_OBJECTS + 1];
        size_t n_want;
} sq_store;

static int sq_err(sq_store *s, al_error *err, const char *what) {
        int rc = sqlite3_extended_errcode(s->db) & 0xff;
        int e = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? EBUSY
                : rc == SQLITE_FULL                      ? ENOSPC
                : rc == SQLITE_READONLY                  ? EROFS
                : rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? EBADMSG
                : rc == SQLITE_NOMEM                          ? ENOMEM
                : rc == SQLITE_PERM || rc == SQLITE_AUTH      ? EACCES
                                                              : EIO;
        const char *why = e == EBUSY     ? " (locked by another writer past "
                                           "the timeout)"
                          : e == ENOSPC  ? " (disk full)"
                          : e == EROFS   ? " (read-only)"
                          : e == EBADMSG ? " (corrupted)"
                                         : "";
        return al_error_set(err, e, "audit store %s: %s: %s%s", s->path,
                            what, sqlite3_errmsg(s->db), why);
}

static int exec_sql(sq_store *s, const char *sql, al_error *err) {
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return sq_err(s, err, sql);
        return 0;
}

int al_sqlite_wal(sqlite3 *db, unsigned busy_ms) {
        double until = al_now_ms() + busy_ms;
        int rc;
        while ((rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL,
                                  NULL)) != SQLITE_OK &&
               (rc & 0xff) == SQLITE_BUSY && al_now_ms() < until) {
                struct timespec ts = {0, 5 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return rc;
}

static int prepare(sq_store *s, const char *sql, sqlite3_stmt **st,
                   al_error *err) {
        if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
                return sq_err(s, err, "prepare");
        return 0;
}

static void schema_free(struct schema_obj *o, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(o[i].type);
                free(o[i].name);
                free(o[i].tbl_name);
                free(o[i].sql);
        }
}

static char *col_dup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return strdup(t ? (const char *)t : "");
}

/* sqlite_schema of db (main), sorted; *n may reach SCHEMA_MAX_OBJECTS + 1
 * (then the last is the first one past the limit, read only to name it). */
static int schema_read(sqlite3 *db, struct schema_obj *out, size_t *n) {
        sqlite3_stmt *st;
        *n = 0;
        if (sqlite3_prepare_v2(db,
                               "SELECT type, name, tbl_name, sql FROM "
                               "main.sqlite_master ORDER BY type, name",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        int rc, r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (*n > SCHEMA_MAX_OBJECTS)
                        break;
                struct schema_obj *o = &out[(*n)++];
                /* sql is NULL for automatic indexes: "" is not a value a
                 * CREATE statement can have, so they stay distinct */
                *o = (struct schema_obj){col_dup(st, 0), col_dup(st, 1),
                                         col_dup(st, 2), col_dup(st, 3)};
                if (!o->type || !o->name || !o->tbl_name || !o->sql)
                        r = -ENOMEM;
        }
        if (!r && rc != SQLITE_DONE && rc != SQLITE_ROW)
                r = -EIO;
        sqlite3_finalize(st);
        if (r < 0) {
                schema_free(out, *n);
                *n = 0;
        }
        return r;
}

static int obj_cmp(const struct schema_obj *a, const struct schema_obj *b) {
        int c = strcmp(a->type, b->type);
        return c ? c : strcmp(a->name, b->name);
}

/* One object named for a message: its type, its name with control
 * characters escaped (an attacker chose it) and its table. */
static void obj_describe(const struct schema_obj *o, char *out, size_t len) {
        _cleanup_free_ char *name = al_term_sanitize(o->name, strlen(o->name),
                                                      0);
        _cleanup_free_ char *tbl = al_term_sanitize(
                o->tbl_name, strlen(o->tbl_name), 0);
        if (!strcmp(o->type, "table") || !strcmp(o->name, o->tbl_name))
                snprintf(out, len, "%s '%.80s'", o->type, name ? name : "?");
        else
                snprintf(out, len, "%s '%.80s' on '%.80s'", o->type,
                         name ? name : "?", tbl ? tbl : "?");
}

static int sq_schema_check(al_audit_store *base, char *msg, size_t msglen,
                           al_error *err) {
        sq_store *s = (sq_store *)base;
        struct schema_obj have[SCHEMA_MAX_OBJECTS + 1];
        size_t n_have;
        int r = schema_read(s->db, have, &n_have);
        if (r == -ENOMEM)
                return al_error_set(err, ENOMEM, "out of memory");
        if (r < 0)
                return sq_err(s, err, "read the schema");
        char what[256] = "";
        size_t i = 0, k = 0, problems = 0;
        while (i < n_have || k < s->n_want) {
                int c = i == n_have      ? 1
                        : k == s->n_want ? -1
                                         : obj_cmp(&have[i], &s->want[k]);
                char d[200];
                if (c < 0) {
                        obj_describe(&have[i], d, sizeof(d));
                        if (!problems++)
                                snprintf(what, sizeof(what), "unexpected %s",
                                         d);
                        i++;
                } else if (c > 0) {
                        obj_describe(&s->want[k], d, sizeof(d));
                        if (!problems++)
                                snprintf(what, sizeof(what), "missing %s", d);
                        k++;
                } else {
                        if (strcmp(have[i].tbl_name, s->want[k].tbl_name) ||
                            strcmp(have[i].sql, s->want[k].sql)) {
                                obj_describe(&have[i], d, sizeof(d));
                                if (!problems++)
                                        snprintf(what, sizeof(what),
                                                 "changed %s (its definition "
                                                 "is not airlock's)",
                                                 d);
                        }
                        i++;
                        k++;
                }
        }
        schema_free(have, n_have);
        if (!problems)
                return 0;
        if (problems > 1)
                snprintf(msg, msglen, "%s, and %zu more difference%s", what,
                         problems - 1, problems > 2 ? "s" : "");
        else
                snprintf(msg, msglen, "%s", what);
        return 1;
}

static int sq_integrity_check(al_audit_store *base, char *msg,
                              size_t msglen, al_error *err) {
        sq_store *s = (sq_store *)base;
        /* integrity_check, not quick_check: only the full check compares
         * every index with its table (an index swapped in through
         * writable_schema hides rows from the queries that use it) */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check(8)", -1, &st,
                               NULL) != SQLITE_OK)
                return sq_err(s, err, "check the store's integrity");
        int rc, problems = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 0);
                if (t && strcmp(t, "ok") != 0 && !problems++)
                        snprintf(msg, msglen, "%s", t);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sq_err(s, err, "check the store's integrity");
        return problems ? 1 : 0;
}

/* The schema airlock's migrations create, from a scratch in-memory
 * database: what every store must hold, exactly. */
static int schema_expected(sq_store *s, al_error *err) {
        sqlite3 *mem = NULL;
        int r = 0;
        if (sqlite3_open_v2(":memory:", &mem,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            NULL) != SQLITE_OK) {
                sqlite3_close(mem);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t v = 0; v < ARRAY_SIZE(migrations) && !r; v++)
                if (sqlite3_exec(mem, migrations[v], NULL, NULL, NULL) !=
                    SQLITE_OK)
                        r = al_error_set(err, EIO,
                                         "audit schema migration %zu: %s", v,
                                         sqlite3_errmsg(mem));
        if (!r && schema_read(mem, s->want, &s->n_want) < 0)
                r = al_error_set(err, ENOMEM, "out of memory");
        sqlite3_close(mem);
        return r;
}

/* Refuse to write into a store whose schema is not airlock's: a trigger
 * could drop or rewrite what is appended, a changed table definition
 * could change what is stored. */
static int schema_enforce(sq_store *s, al_error *err) {
        char msg[400];
        int r = sq_schema_check(&s->base, msg, sizeof(msg), err);
        if (r <= 0)
                return r;
        return al_error_set(err, EBADMSG,
                            "audit store %s: its schema is not airlock's: "
                            "%s; refusing to write (airlock audit verify "
                            "reports it)",
                            s->path, msg);
}

static void sq_close(al_audit_store *base) {
        sq_store *s = (sq_store *)base;
        if (!s)
                return;
        sqlite3_finalize(s->insert);
        sqlite3_finalize(s->head);
        sqlite3_close(s->db);
        schema_free(s->want, s->n_want);
        free(s->path);
        free(s);
}

static int sq_begin(al_audit_store *base, bool write, al_error *err) {
        sq_store *s = (sq_store *)base;
        int r = exec_sql(s, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
        /* under the write lock: nobody changes the schema between this
         * check and the commit (every write transaction, not a cached
         * schema_version that whoever writes the file can set back) */
        if (r == 0 && write && (r = schema_enforce(s, err)) < 0)
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int sq_commit(al_audit_store *base, bool durable, al_error *err) {
        sq_store *s = (sq_store *)base;
        /* in WAL mode, synchronous=NORMAL commits without an fsync; the
         * log is synced at the next FULL commit (WAL is written in order,
         * so a later durable record makes every earlier one durable) */
        if (!durable)
                sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
                             NULL);
        int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (!durable)
                sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL,
                             NULL);
        if (rc != SQLITE_OK) {
                int r = sq_err(s, err, "commit");
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return r;
        }
        return 0;
}

static void sq_rollback(al_audit_store *base) {
        sqlite3_exec(((sq_store *)base)->db, "ROLLBACK", NULL, NULL, NULL);
}

static const char *col_text(sqlite3_stmt *st, int i) {
        return (const char *)sqlite3_column_text(st, i);
}

/* The records columns after seq, in COLS order, and which may be NULL. */
static const struct {
        const char *name;
        bool nullable;
} rec_cols[NCOLS - 1] = {
        {"kind", false},     {"id", false},     {"ts", false},
        {"source", true},    {"actor", true},   {"user_id", true},
        {"agent_id", true},  {"language", true}, {"status", true},
        {"flags", true},     {"detail", false}, {"prev", false},
        {"hash", false},     {"mac", false},
};

/* Column i of a row as text, with its stored length; notes in r the first
 * column whose storage class is not the schema's or whose text holds a
 * NUL (the queries compare stored values and types: such a record would
 * hide from them). */
static const char *rec_col(sqlite3_stmt *st, int off, int i, al_audit_rec *r,
                           size_t *len) {
        int type = sqlite3_column_type(st, off + 1 + i);
        const char *t = col_text(st, off + 1 + i);
        size_t n = t ? (size_t)sqlite3_column_bytes(st, off + 1 + i) : 0;
        const char *why = NULL;
        if (type == SQLITE_NULL)
                why = rec_cols[i].nullable ? NULL
                                           : "is NULL, the schema says NOT "
                                             "NULL";
        else if (type == SQLITE_BLOB)
                why = "is a BLOB, the schema says TEXT";
        else if (type == SQLITE_INTEGER)
                why = "is an INTEGER, the schema says TEXT";
        else if (type == SQLITE_FLOAT)
                why = "is a REAL, the schema says TEXT";
        else if (t && memchr(t, 0, n))
                why = "holds a NUL byte";
        if (why && !r->bad_column) {
                r->bad_column = rec_cols[i].name;
                r->bad_why = why;
        }
        if (len)
                *len = n;
        return t;
}

/* Row columns [off, off + NCOLS) into a record; false if the row is NULL
 * there (a LEFT JOIN without a match). */
static bool row_rec(sqlite3_stmt *st, int off, al_audit_rec *r) {
        if (sqlite3_column_type(st, off) == SQLITE_NULL)
                return false;
        *r = (al_audit_rec){.seq = (uint64_t)sqlite3_column_int64(st, off),
                            .has_len = true};
        if (sqlite3_column_type(st, off) != SQLITE_INTEGER) {
                r->bad_column = "seq";
                r->bad_why = "is not an INTEGER";
        }
        /* the encoded fields, in encoding order, with their stored
         * lengths: the hash covers exactly what is stored */
        const char **f[AL_AUDIT_NFIELDS] = {
                &r->kind,     &r->id,     &r->ts,     &r->source,
                &r->actor,    &r->user_id, &r->agent_id, &r->language,
                &r->status,   &r->flags,  &r->detail, &r->prev};
        for (int i = 0; i < AL_AUDIT_NFIELDS; i++)
                *f[i] = rec_col(st, off, i, r, &r->len[i]);
        r->hash = rec_col(st, off, 12, r, NULL);
        r->mac = rec_col(st, off, 13, r, NULL);
        /* NOT NULL columns edited to NULL read as empty: verify reports
         * the record rather than crashing */
        if (!r->kind)
                r->kind = "";
        if (!r->id)
                r->id = "";
        if (!r->ts)
                r->ts = "";
        if (!r->detail)
                r->detail = "";
        if (!r->prev)
                r->prev = "";
        if (!r->hash)
                r->hash = "";
        if (!r->mac)
                r->mac = "";
        return true;
}

static int sq_head(al_audit_store *base, uint64_t *seq,
                   char hash[AL_AUDIT_HASH_SIZE], al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_reset(s->head);
        int rc = sqlite3_step(s->head);
        *seq = 0;
        hash[0] = '\0';
        if (rc == SQLITE_ROW) {
                *seq = (uint64_t)sqlite3_column_int64(s->head, 0);
                const char *h = col_text(s->head, 1);
                snprintf(hash, AL_AUDIT_HASH_SIZE, "%s", h ? h : "");
        } else if (rc != SQLITE_DONE) {
                sqlite3_reset(s->head);
                return sq_err(s, err, "read the chain head");
        }
        sqlite3_reset(s->head);
        return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
        if (v)
                sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static int sq_insert(al_audit_store *base, const al_audit_rec *r,
                     al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st = s->insert;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
        const char *v[] = {r->kind,     r->id,     r->ts,      r->source,
                           r->actor,    r->user_id, r->agent_id,
                           r->language, r->status, r->flags,   r->detail,
                           r->prev,     r->hash,   r->mac};
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                bind_text(st, (int)i + 2, v[i]);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
                return sq_err(s, err, "append a record");
        /* SQLITE_DONE alone is not proof: the record must be one new row
         * and the new head (triggers are off, and the schema was checked,
         * but a store that did not keep it must never answer "stored") */
        uint64_t seq;
        char hash[AL_AUDIT_HASH_SIZE];
        int changed = sqlite3_changes(s->db);
        int e = sq_head(base, &seq, hash, err);
        if (e < 0)
                return e;
        if (changed != 1 || seq != r->seq || strcmp(hash, r->hash))
                return al_error_set(err, EIO,
                                    "audit store %s: record %llu was not "
                                    "stored (%d rows changed, head %llu): "
                                    "refusing to go on without it",
                                    s->path, (unsigned long long)r->seq,
                                    changed, (unsigned long long)seq);
        return 0;
}

/* Step a statement whose rows are records at column 0. */
static int each_row(sq_store *s, sqlite3_stmt *st, al_audit_rec_cb cb,
                    void *ctx, al_error *err) {
        int rc, r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                al_audit_rec rec;
                row_rec(st, 0, &rec);
                if ((r = cb(&rec, ctx)))
                        break;
        }
        if (!r && rc != SQLITE_DONE)
                r = sq_err(s, err, "read records");
        sqlite3_finalize(st);
        return r;
}

static int sq_each(al_audit_store *base, uint64_t from, al_audit_rec_cb cb,
                   void *ctx, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s,
                        "SELECT " COLS " FROM records WHERE seq >= ?1 "
                        "ORDER BY seq",
                        &st, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
        return each_row(s, st, cb, ctx, err);
}

/* The kinds that open an entry of the log (a run, a refusal, a session, a
 * cell) and carry who asked: what the actor of an id is decided by. */
#define OPENING_KINDS "('started', 'refused', 'session_created', 'cell_started')"

static int sq_by_id(al_audit_store *base, const char *id, const char *actor,
                    al_audit_rec_cb cb, void *ctx, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        /* ids are lowercase hex: a prefix range instead of LIKE, which
         * would treat '_' and '%' in the argument as wildcards; the actor
         * is decided before anything is counted, so another actor's ids
         * neither match nor make a prefix ambiguous. A cell's id is its
         * session's followed by ".SEQ": "PREFIX.SEQ" is that cell of the
         * sessions PREFIX matches (the part after the 32 hex digits
         * exactly), a bare prefix takes a session with its cells */
        const char *dot = strchr(id, '.');
        _cleanup_free_ char *pre = dot ? strndup(id, (size_t)(dot - id)) : NULL;
        if (dot && !pre)
                return al_error_set(err, ENOMEM, "out of memory");
        int r = prepare(s,
                        "SELECT " COLS " FROM records WHERE id >= ?1 "
                        "AND id < ?1 || 'g' AND (?3 IS NULL OR "
                        " substr(id, 33) = ?3) AND (?2 IS NULL OR id IN ("
                        " SELECT id FROM records WHERE id >= ?1"
                        " AND id < ?1 || 'g' AND actor = ?2"
                        " AND kind IN " OPENING_KINDS ")) "
                        "ORDER BY substr(id, 1, 32), seq",
                        &st, err);
        if (r < 0)
                return r;
        bind_text(st, 1, dot ? pre : id);
        bind_text(st, 2, actor);
        bind_text(st, 3, dot);
        return each_row(s, st, cb, ctx, err);
}

static int sq_first_of(al_audit_store *base, const char *id, const char *kind,
                       al_audit_rec_cb cb, void *ctx, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s,
                        "SELECT " COLS " FROM records WHERE id = ?1 "
                        "AND kind = ?2 ORDER BY seq LIMIT 1",
                        &st, err);
        if (r < 0)
                return r;
        bind_text(st, 1, id);
        bind_text(st, 2, kind);
        return each_row(s, st, cb, ctx, err);
}

static int sq_pairs(al_audit_store *base, const al_audit_filter *f,
                    bool unfinished_only, uint64_t limit, al_audit_pair_cb cb,
                    void *ctx, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(
                s,
                "SELECT s.seq, s.kind, s.id, s.ts, s.source, s.actor, "
                " s.user_id, s.agent_id, s.language, s.status, s.flags, "
                " s.detail, s.prev, s.hash, s.mac,"
                " f.seq, f.kind, f.id, f.ts, f.source, f.actor, f.user_id, "
                " f.agent_id, f.language, f.status, f.flags, f.detail, "
                " f.prev, f.hash, f.mac "
                "FROM records s LEFT JOIN records f "
                " ON f.id = s.id AND f.kind = CASE s.kind"
                "  WHEN 'session_created' THEN 'session_ended'"
                "  WHEN 'cell_started' THEN 'cell' ELSE 'finished' END "
                "WHERE s.kind IN " OPENING_KINDS
                " AND (?1 IS NULL OR s.ts >= ?1) AND (?2 IS NULL OR s.ts < ?2)"
                " AND (?3 IS NULL OR s.actor = ?3)"
                " AND (?4 IS NULL OR coalesce(f.status, s.status) = ?4)"
                " AND (?5 IS NULL OR s.source = ?5)"
                " AND (?6 IS NULL OR s.language = ?6)"
                " AND (?7 = 0 OR s.flags IS NOT NULL OR f.flags IS NOT NULL)"
                " AND (?8 = 0 OR (s.kind <> 'refused' AND f.seq IS NULL))"
                " AND (?10 IS NULL OR s.id = ?10)"
                " AND (?11 = 0 OR s.seq < ?11)"
                /* a session: itself and its cells ("ID.SEQ") */
                " AND (?12 IS NULL OR s.id = ?12"
                "  OR (s.id > ?12 || '.' AND s.id < ?12 || '/')) "
                "ORDER BY s.seq DESC LIMIT ?9",
                &st, err);
        if (r < 0)
                return r;
        bind_text(st, 1, f->since);
        bind_text(st, 2, f->until);
        bind_text(st, 3, f->actor);
        bind_text(st, 4, f->status);
        bind_text(st, 5, f->source);
        bind_text(st, 6, f->language);
        sqlite3_bind_int(st, 7, f->suspicious);
        sqlite3_bind_int(st, 8, unfinished_only);
        sqlite3_bind_int64(st, 9, limit ? (sqlite3_int64)limit : -1);
        bind_text(st, 10, f->id);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)f->before);
        bind_text(st, 12, f->session);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                al_audit_rec a, b;
                row_rec(st, 0, &a);
                bool has_f = row_rec(st, NCOLS, &b);
                if ((r = cb(&a, has_f ? &b : NULL, ctx)))
                        break;
        }
        if (!r && rc != SQLITE_DONE)
                r = sq_err(s, err, "query executions");
        sqlite3_finalize(st);
        return r;
}

static int one_int(sq_store *s, const char *sql, const char *arg,
                   int64_t argi, uint64_t *out, al_error *err) {
        sqlite3_stmt *st;
        int r = prepare(s, sql, &st, err);
        if (r < 0)
                return r;
        if (arg)
                bind_text(st, 1, arg);
        else
                sqlite3_bind_int64(st, 1, argi);
        int rc = sqlite3_step(st);
        *out = 0;
        if (rc == SQLITE_ROW)
                *out = (uint64_t)sqlite3_column_int64(st, 0);
        else if (rc != SQLITE_DONE)
                r = sq_err(s, err, sql);
        sqlite3_finalize(st);
        return r;
}

static int sq_first_since(al_audit_store *base, const char *ts, uint64_t *seq,
                          al_error *err) {
        return one_int((sq_store *)base,
                       "SELECT min(seq) FROM records WHERE ts >= ?1", ts, 0,
                       seq, err);
}

static int sq_hash_of(al_audit_store *base, uint64_t seq,
                      char hash[AL_AUDIT_HASH_SIZE], al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s, "SELECT hash FROM records WHERE seq = ?1", &st,
                        err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        hash[0] = '\0';
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                snprintf(hash, AL_AUDIT_HASH_SIZE, "%s",
                         col_text(st, 0) ? col_text(st, 0) : "");
        else if (rc != SQLITE_DONE)
                r = sq_err(s, err, "read a record's hash");
        sqlite3_finalize(st);
        return r;
}

static int sq_delete_through(al_audit_store *base, uint64_t seq,
                             uint64_t *count, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s, "DELETE FROM records WHERE seq <= ?1", &st, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        if (sqlite3_step(st) != SQLITE_DONE)
                r = sq_err(s, err, "prune");
        else
                *count = (uint64_t)sqlite3_changes(s->db);
        sqlite3_finalize(st);
        return r;
}

static int sq_checkpoint_get(al_audit_store *base, al_audit_checkpoint *cp,
                             al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s,
                        "SELECT seq, hash, ts, count, mac FROM checkpoint "
                        "WHERE one = 1",
                        &st, err);
        if (r < 0)
                return r;
        *cp = (al_audit_checkpoint){0};
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                cp->seq = (uint64_t)sqlite3_column_int64(st, 0);
                snprintf(cp->hash, sizeof(cp->hash), "%s",
                         col_text(st, 1) ? col_text(st, 1) : "");
                snprintf(cp->ts, sizeof(cp->ts), "%s",
                         col_text(st, 2) ? col_text(st, 2) : "");
                cp->count = (uint64_t)sqlite3_column_int64(st, 3);
                snprintf(cp->mac, sizeof(cp->mac), "%s",
                         col_text(st, 4) ? col_text(st, 4) : "");
        } else if (rc != SQLITE_DONE)
                r = sq_err(s, err, "read the checkpoint");
        sqlite3_finalize(st);
        return r;
}

static int sq_checkpoint_put(al_audit_store *base,
                             const al_audit_checkpoint *cp, al_error *err) {
        sq_store *s = (sq_store *)base;
        sqlite3_stmt *st;
        int r = prepare(s,
                        "INSERT OR REPLACE INTO checkpoint "
                        "(one, seq, hash, ts, count, mac) "
                        "VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                        &st, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)cp->seq);
        bind_text(st, 2, cp->hash);
        bind_text(st, 3, cp->ts);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)cp->count);
        bind_text(st, 5, cp->mac);
        if (sqlite3_step(st) != SQLITE_DONE)
                r = sq_err(s, err, "write the checkpoint");
        sqlite3_finalize(st);
        return r;
}

static uint64_t sq_size(al_audit_store *base) {
        sq_store *s = (sq_store *)base;
        uint64_t total = 0;
        struct stat st;
        char p[PATH_MAX];
        if (stat(s->path, &st) == 0)
                total += (uint64_t)st.st_size;
        snprintf(p, sizeof(p), "%s-wal", s->path);
        if (stat(p, &st) == 0)
                total += (uint64_t)st.st_size;
        return total;
}

static const al_audit_store_ops sqlite_ops = {
        .name = "sqlite",
        .close = sq_close,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .head = sq_head,
        .insert = sq_insert,
        .schema_check = sq_schema_check,
        .integrity_check = sq_integrity_check,
        .each = sq_each,
        .by_id = sq_by_id,
        .first_of = sq_first_of,
        .pairs = sq_pairs,
        .first_since = sq_first_since,
        .hash_of = sq_hash_of,
        .delete_through = sq_delete_through,
        .checkpoint_get = sq_checkpoint_get,
        .checkpoint_put = sq_checkpoint_put,
        .size = sq_size,
};

/* Bring the schema to the newest version, in one write transaction. */
static int migrate(sq_store *s, al_error *err) {
        uint64_t v;
        int r = one_int(s, "PRAGMA user_version", NULL, 0, &v, err);
        if (r < 0)
                return r;
        if (v == ARRAY_SIZE(migrations))
                return 0;
        if (v > ARRAY_SIZE(migrations))
                return al_error_set(err, EPROTO,
                                    "audit store %s has schema version %llu; "
                                    "this airlock knows up to %zu (upgrade "
                                    "airlock)",
                                    s->path, (unsigned long long)v,
                                    ARRAY_SIZE(migrations));
        if ((r = exec_sql(s, "BEGIN IMMEDIATE", err)) < 0)
                return r;
        /* re-read under the lock: another process may have migrated */
        if ((r = one_int(s, "PRAGMA user_version", NULL, 0, &v, err)) < 0)
                goto fail;
        for (; v < ARRAY_SIZE(migrations); v++) {
                char pragma[64];
                if ((r = exec_sql(s, migrations[v], err)) < 0)
                        goto fail;
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %llu",
                         (unsigned long long)v + 1);
                if ((r = exec_sql(s, pragma, err)) < 0)
                        goto fail;
        }
        return sq_commit(&s->base, true, err);
fail:
        sq_rollback(&s->base);
        return r;
}

/* The connection's switches against a file someone else wrote into. */
static const struct {
        int op, on;
        const char *name;
} hardening[] = {
        /* a trigger planted in the file could drop (RAISE(IGNORE)) or
         * rewrite every record appended */
        {SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, "ENABLE_TRIGGER=0"},
        /* we read no views: a planted one is never evaluated */
        {SQLITE_DBCONFIG_ENABLE_VIEW, 0, "ENABLE_VIEW=0"},
        /* no writable_schema or other ways to corrupt the file from here */
        {SQLITE_DBCONFIG_DEFENSIVE, 1, "DEFENSIVE=1"},
        /* functions with side effects never run from schema objects */
        {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, "TRUSTED_SCHEMA=0"},
};

int al_audit_sqlite_open(const char *path, unsigned busy_ms,
                         al_audit_store **ret, al_error *err) {
        sq_store *s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path))) {
                free(s);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        s->base.ops = &sqlite_ops;
        int r;
        /* create the file 0600 ourselves (SQLite would use the umask), and
         * only when it is missing: closing a descriptor of a database that
         * this process has open already would drop every POSIX lock the
         * process holds on it (another connection's too), and another
         * process, thinking itself the last user, would then checkpoint
         * and delete the WAL our connections still write to */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                      0600);
        if (fd >= 0)
                close(fd);
        else if (errno != EEXIST) {
                r = al_error_errno(err, errno, "audit store %s", path);
                goto fail;
        }
        if (sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                                    SQLITE_OPEN_FULLMUTEX,
                            NULL) != SQLITE_OK) {
                r = s->db ? sq_err(s, err, "open")
                          : al_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        sqlite3_busy_timeout(s->db, (int)busy_ms);
        sqlite3_extended_result_codes(s->db, 1);
        for (size_t i = 0; i < ARRAY_SIZE(hardening); i++) {
                int got = -1;
                if (sqlite3_db_config(s->db, hardening[i].op, hardening[i].on,
                                      &got) != SQLITE_OK ||
                    got != hardening[i].on) {
                        r = al_error_set(err, ENOTSUP,
                                         "audit store %s: this SQLite (%s) "
                                         "cannot set %s on the connection",
                                         path, sqlite3_libversion(),
                                         hardening[i].name);
                        goto fail;
                }
        }
        if ((r = schema_expected(s, err)) < 0)
                goto fail;
        /* WAL: readers never block the writer; synchronous=FULL: a commit
         * is on disk when COMMIT returns (the started record must be) */
        if ((al_sqlite_wal(s->db, busy_ms) != SQLITE_OK &&
             (r = sq_err(s, err, "PRAGMA journal_mode = WAL")) < 0) ||
            (r = exec_sql(s, "PRAGMA synchronous = FULL", err)) < 0 ||
            (r = exec_sql(s, "PRAGMA wal_autocheckpoint = 32", err)) < 0 ||
            (r = exec_sql(s, "PRAGMA foreign_keys = ON", err)) < 0 ||
            (r = exec_sql(s, "PRAGMA trusted_schema = OFF", err)) < 0 ||
            (r = migrate(s, err)) < 0)
                goto fail;
        if ((r = prepare(s,
                         "INSERT INTO records (" COLS ") VALUES (?1, ?2, ?3, "
                         "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                         "?15)",
                         &s->insert, err)) < 0 ||
            (r = prepare(s,
                         "SELECT seq, hash FROM records ORDER BY seq DESC "
                         "LIMIT 1",
                         &s->head, err)) < 0)
                goto fail;
        *ret = &s->base;
        return 0;
fail:
        sq_close(&s->base);
        return r;
}
