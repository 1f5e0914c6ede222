/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The audit log's storage backend. audit.c owns the chain (hashes, MACs,
 * what a record holds); a backend only stores rows, keeps the order, and
 * gives an exclusive write transaction so that reading the head and
 * appending after it is atomic across processes. SQLite is the one backend
 * today (audit-sqlite.c); a PostgreSQL one implements the same table.
 */
#include <stdbool.h>
#include <stdint.h>

#include "airlock-audit.h"

/* kind, id, ts, source, actor, user_id, agent_id, language, status,
 * flags, detail, prev: the fields of the canonical encoding. */
#define AL_AUDIT_NFIELDS 12

/* One link of the chain, as stored. Strings may be NULL (SQL NULL) except
 * kind, id, ts, detail and the hashes. */
typedef struct al_audit_rec {
        uint64_t seq;              /* position, 1, 2, 3 ... */
        const char *kind;          /* started, finished, refused, pruned,
                                      session_created, cell_started, cell,
                                      file_put, file_get, file_delete,
                                      session_ended */
        const char *id;            /* execution or session id; a cell's
                                      is "SESSION.SEQ" */
        const char *ts;            /* YYYY-MM-DDTHH:MM:SS.mmmZ */
        const char *source, *actor, *user_id, *agent_id, *language;
        const char *status;        /* finished/refused: the outcome */
        const char *flags;         /* comma-separated suspicious flags */
        const char *detail;        /* JSON object text */
        const char *prev, *hash, *mac; /* 64 hex digits each */
        /* Read back from a store: the stored length of each encoded field
         * (kind .. prev, in encoding order), so the hash covers exactly the
         * stored bytes, a NUL inside included; has_len false: strlen. */
        bool has_len;
        size_t len[AL_AUDIT_NFIELDS];
        /* Read back: the first column whose stored type is not the
         * schema's or whose text holds a NUL (verify reports it), and
         * why; NULL if none. Static strings. */
        const char *bad_column, *bad_why;
} al_audit_rec;

/* What prune leaves: the last removed record's position and hash. */
typedef struct al_audit_checkpoint {
        uint64_t seq;              /* 0: nothing was ever pruned */
        char hash[AL_AUDIT_HASH_SIZE];
        char ts[32];
        uint64_t count;            /* records removed in all */
        char mac[AL_AUDIT_HASH_SIZE];
} al_audit_checkpoint;

/* started (or refused) with its finished record, for queries. */
typedef int (*al_audit_pair_cb)(const al_audit_rec *start,
                                const al_audit_rec *finish, void *ctx);
typedef int (*al_audit_rec_cb)(const al_audit_rec *rec, void *ctx);

typedef struct al_audit_store al_audit_store;

typedef struct al_audit_store_ops {
        const char *name;
        void (*close)(al_audit_store *st);
        /* write: exclusive against every other writer, waiting at most
         * the lock timeout; refused (-EBADMSG) when the schema is not
         * exactly airlock's (checked whenever it changed). */
        int (*begin)(al_audit_store *st, bool write, al_error *err);
        /* durable: the commit is on disk when it returns (started and
         * refused records: nothing runs before); otherwise it reaches the
         * disk with the next durable commit or checkpoint (a finished
         * record: a crash before then leaves the run "interrupted", which
         * the next open reports, and never a gap in the chain) */
        int (*commit)(al_audit_store *st, bool durable, al_error *err);
        void (*rollback)(al_audit_store *st);
        /* The last record (seq 0 and hash "" when there is none). */
        int (*head)(al_audit_store *st, uint64_t *seq,
                    char hash[AL_AUDIT_HASH_SIZE], al_error *err);
        /* Store rec; fails unless exactly one row was added and it is
         * the new head. */
        int (*insert)(al_audit_store *st, const al_audit_rec *rec,
                      al_error *err);
        /* Compare the schema with the one airlock creates: 0 when equal,
         * 1 with what differs in msg (which object: unexpected, missing or
         * changed), <0 on error. */
        int (*schema_check)(al_audit_store *st, char *msg, size_t msglen,
                            al_error *err);
        /* Whether the store's own structures agree with its data (an
         * index that no longer matches its table can hide records from
         * every query): 0 when they do, 1 with the first problem in msg,
         * <0 on error. A full pass: for verify, not for every write. */
        int (*integrity_check)(al_audit_store *st, char *msg, size_t msglen,
                               al_error *err);
        /* Every record from from_seq on, in order. */
        int (*each)(al_audit_store *st, uint64_t from_seq, al_audit_rec_cb cb,
                    void *ctx, al_error *err);
        /* Records of the executions (and sessions) whose id starts with
         * id, grouped by their first 32 characters (a session with its
         * cells, whose ids are "SESSION.SEQ"), each group in order; id
         * "PREFIX.SEQ": only that cell of the sessions PREFIX matches;
         * with actor, only ids whose opening record (started, refused,
         * session_created, cell_started) has that actor. */
        int (*by_id)(al_audit_store *st, const char *id, const char *actor,
                     al_audit_rec_cb cb, void *ctx, al_error *err);
        /* The first record whose id and kind are exactly these (cb is not
         * called when there is none). */
        int (*first_of)(al_audit_store *st, const char *id, const char *kind,
                        al_audit_rec_cb cb, void *ctx, al_error *err);
        /* Executions matching the filter's SQL-able parts (time, actor,
         * status of the refused/finished record, source, language,
         * flagged, unfinished, before, session), newest first; limit 0 =
         * all. An execution is a run (started or refused, with finished),
         * a session (session_created with session_ended) or a cell
         * (cell_started with cell). */
        int (*pairs)(al_audit_store *st, const al_audit_filter *f,
                     bool unfinished_only, uint64_t limit, al_audit_pair_cb cb,
                     void *ctx, al_error *err);
        /* The first seq whose ts >= ts (0 if none). */
        int (*first_since)(al_audit_store *st, const char *ts, uint64_t *seq,
                           al_error *err);
        /* Hash of record seq ("" if absent). */
        int (*hash_of)(al_audit_store *st, uint64_t seq,
                       char hash[AL_AUDIT_HASH_SIZE], al_error *err);
        /* Remove records 1..seq; *count gets how many went. */
        int (*delete_through)(al_audit_store *st, uint64_t seq,
                              uint64_t *count, al_error *err);
        int (*checkpoint_get)(al_audit_store *st, al_audit_checkpoint *cp,
                              al_error *err);
        int (*checkpoint_put)(al_audit_store *st,
                              const al_audit_checkpoint *cp, al_error *err);
        /* Bytes on disk (0 if unknown). */
        uint64_t (*size)(al_audit_store *st);
} al_audit_store_ops;

struct al_audit_store {
        const al_audit_store_ops *ops;
};

/* SQLite: path is the database file, created 0600; busy_ms the lock
 * timeout. */
int al_audit_sqlite_open(const char *path, unsigned busy_ms,
                         al_audit_store **ret, al_error *err);

/* Switch a SQLite database to WAL (a no-op when it is already); both
 * stores (audit, keys) open this way. The switch of a new database takes
 * the exclusive lock, and when two processes open one at once SQLite
 * answers one of them BUSY without calling the busy handler (waiting could
 * deadlock: each holds a shared lock the other's switch needs). The
 * statement has ended and its lock is gone, so the loser tries again until
 * busy_ms and then finds the database in WAL already. -> SQLite's code. */
struct sqlite3;
int al_sqlite_wal(struct sqlite3 *db, unsigned busy_ms);
