/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * libairlock audit — a tamper-evident record of every execution.
 *
 *   al_audit *a;
 *   al_audit_open(state_dir, &a, &err);      state dir 0700, database and
 *                                            key 0600, created on first use
 *   char id[AL_AUDIT_ID_SIZE];
 *   al_audit_started(a, &who, spec, NULL, id, &err);   durable before the
 *                                            code runs; fail closed: if this
 *                                            fails, do not run
 *   al_run(spec, &res, &err);
 *   al_audit_finished(a, id, res, &err);
 *   al_audit_close(a);
 *
 * Refused requests are recorded with al_audit_refused(). A session (one
 * sandbox kept alive, taking one cell of code at a time) has its own
 * records in the same chain, linked by the session id:
 *
 *   al_audit_session_created(a, &who, &sess, sid, &err);  durable
 *   al_audit_cell_started(a, sid, seq, code, len, lim, cid, &err);
 *                                            durable before the cell's code
 *                                            reaches the sandbox
 *   al_audit_cell_finished(a, cid, &cell, &err);
 *   al_audit_session_file(a, sid, AL_AUDIT_FILE_PUT, path, size, sha, &err);
 *   al_audit_session_ended(a, sid, "closed", cells, wall_ms, &err);
 *
 * Each record is a
 * link of a hash chain (SHA-256 over the previous hash and the record's
 * canonical encoding) and carries an HMAC-SHA256 under a key kept in the
 * state directory; al_audit_verify() finds the first record that was
 * modified, deleted, inserted or reordered. docs/airlock-audit.1 documents
 * the schema, the encoding and how to anchor the chain head.
 *
 * An al_audit handle is used by one thread at a time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t; /* jansson */

typedef struct al_audit al_audit;

#define AL_AUDIT_ID_SIZE 33  /* 32 hex digits + NUL */
#define AL_AUDIT_HASH_SIZE 65 /* 64 hex digits + NUL */
/* A cell's id: its session's id, ".", its sequence number in decimal. */
#define AL_AUDIT_CELL_ID_SIZE (AL_AUDIT_ID_SIZE + 21)

/* The state directory: dir if given, else $AIRLOCK_STATE, else
 * /var/lib/airlock for root and $XDG_DATA_HOME/airlock (or
 * ~/.local/share/airlock) for others. Not created here. */
int al_state_dir_resolve(const char *dir, char *out, size_t outlen,
                         al_error *err);
/* Create it (0700) when missing; refuse a symlink, a directory of another
 * user or one others can write. */
int al_state_dir_prepare(const char *dir, al_error *err);

/* Free space under the state directory below which the audit store is
 * reported as at risk (GET /readyz answers 503, airlock doctor warns): a
 * store that cannot grow refuses every run. */
#define AL_AUDIT_MIN_FREE_BYTES (64ull << 20)
/* Bytes an unprivileged writer may still use on the filesystem of the
 * state directory (statvfs f_bavail * f_frsize). */
int al_audit_free_bytes(const char *state_dir, uint64_t *ret, al_error *err);

/* Open (creating on first use) the audit log in the state directory:
 * STATE/audit.db (SQLite, WAL, durable commits), STATE/audit.key (0600),
 * STATE/config.json (optional; the audit-* and alert-* keys). Refuses a
 * key file readable by others, a config it does not understand, a store it
 * cannot write. */
int al_audit_open(const char *state_dir, al_audit **ret, al_error *err);
al_audit *al_audit_close(al_audit *a); /* NULL-safe, returns NULL */

/* Who asked. */
typedef struct al_audit_who {
        const char *source;   /* "cli", "http", "mcp" or "agent" */
        const char *actor;    /* API key id, or "user:NAME" locally */
        const char *user_id;  /* caller-supplied, may be NULL */
        const char *agent_id; /* caller-supplied, may be NULL */
} al_audit_who;

/* The "started" record, committed durably before the code runs. findings:
 * a JSON array of static-validation findings, or NULL. id receives the
 * execution id. */
int al_audit_started(al_audit *a, const al_audit_who *who, const al_spec *s,
                     const char *findings_json, char id[AL_AUDIT_ID_SIZE],
                     al_error *err);
/* The "finished" record of execution id. */
int al_audit_finished(al_audit *a, const char *id, const al_result *r,
                      al_error *err);
/* A request refused before anything ran. s may be NULL or partly set
 * (what it holds is recorded); code is a stable error code. */
int al_audit_refused(al_audit *a, const al_audit_who *who, const al_spec *s,
                     const char *code, const char *message,
                     const char *findings_json, char id[AL_AUDIT_ID_SIZE],
                     al_error *err);

/* --- sessions ------------------------------------------------------- */

/* What a session was created with. */
typedef struct al_audit_session {
        const char *language;      /* profile name */
        const al_limits *limits;   /* the session's limits, or NULL */
        uint64_t idle_timeout_s;   /* 0: none */
        uint64_t max_lifetime_s;   /* 0: none */
        uint64_t max_cells;        /* 0: none */
} al_audit_session;

/* The "session_created" record, committed durably: call it before the
 * session's sandbox starts, and start none if it fails. id: in, the
 * session's id (32 lowercase hex digits) or "" to have one made; out, the
 * id. Every later record of the session repeats who created it (its
 * source, actor, user_id, agent_id and language): a key reads its own
 * sessions as it reads its own runs. */
int al_audit_session_created(al_audit *a, const al_audit_who *who,
                             const al_audit_session *sess,
                             char id[AL_AUDIT_ID_SIZE], al_error *err);
/* The "cell_started" record of cell seq (1, 2, 3 ...) of a session that
 * has not ended, committed durably: nothing of the code reaches the
 * sandbox before it (the same rule as a run's started record; if it
 * fails, do not send the cell). The code is kept as a run's is (hash,
 * size, preview, the text up to audit-code-cap) and flagged by the same
 * patterns; limits: the cell's own, or NULL. cell_id receives
 * "SESSION.SEQ". -ENOENT: no such session; -ESRCH: it has ended; -EEXIST:
 * that cell was started already. */
int al_audit_cell_started(al_audit *a, const char *session_id, uint64_t seq,
                          const void *code, size_t code_len,
                          const al_limits *limits,
                          char cell_id[AL_AUDIT_CELL_ID_SIZE], al_error *err);

/* How a cell ended. */
typedef struct al_audit_cell {
        const char *status;     /* "ok", "error", or a limit: "timeout",
                                   "interrupted", "killed" ... ([a-z_]) */
        const char *limits_hit; /* comma-separated, e.g. "wall"; or NULL */
        uint64_t wall_ms, cpu_ms;
        int64_t execution_count; /* the driver's, -1: none */
        const char *error_name;  /* e.g. "ZeroDivisionError", or NULL */
        /* what the cell wrote (hash, size and a preview are kept) */
        const void *stdout_buf, *stderr_buf;
        size_t stdout_len, stderr_len;
        bool stdout_truncated, stderr_truncated;
} al_audit_cell;

/* The "cell" record of a cell started with al_audit_cell_started. Like a
 * run's finished record, it does not wait for the disk: a host crash
 * before the next durable record shows the cell as interrupted, never a
 * gap in the chain. */
int al_audit_cell_finished(al_audit *a, const char *cell_id,
                           const al_audit_cell *c, al_error *err);

typedef enum al_audit_file_op {
        AL_AUDIT_FILE_PUT,    /* "file_put": written into the workspace */
        AL_AUDIT_FILE_GET,    /* "file_get": read out of it */
        AL_AUDIT_FILE_DELETE, /* "file_delete" */
} al_audit_file_op;

/* A file of a live session's workspace put, got or deleted, committed
 * durably: before the put's bytes are written or the get's are sent.
 * sha256: 64 lowercase hex digits of the bytes, or NULL (a delete). */
int al_audit_session_file(al_audit *a, const char *session_id,
                          al_audit_file_op op, const char *path,
                          uint64_t size, const char *sha256, al_error *err);

/* The "session_ended" record, durable. reason: a stable word ([a-z_]),
 * "closed", "idle", "lifetime", "max_cells", "memory", "crashed",
 * "protocol", "shutdown" ...; it is the session's status in list. cells:
 * how many ran; wall_ms: the session's life. -ESRCH: ended already. */
int al_audit_session_ended(al_audit *a, const char *session_id,
                           const char *reason, uint64_t cells,
                           uint64_t wall_ms, al_error *err);
/* The same, with the report of the session's egress proxy (a JSON array,
 * the result's "network"; NULL: none) kept in the record. */
int al_audit_session_ended_net(al_audit *a, const char *session_id,
                               const char *reason, uint64_t cells,
                               uint64_t wall_ms, const char *network_json,
                               al_error *err);

/* Alerts (flagged, refused and failed executions, per the config) are
 * logged at once and queued for the command and webhook sinks. A service
 * starts a delivery thread; a short-lived process delivers the queue
 * itself after its result is out (e.g. in a child), waiting at most
 * timeout_ms in all. */
int al_audit_alerts_start(al_audit *a, al_error *err);
void al_audit_alerts_drain(al_audit *a, unsigned timeout_ms);
/* With no alert-log configured, the log line goes to stderr: true makes
 * it one line of words for a person (airlock run without --json), false
 * (the default) one JSON object per line for machines. */
void al_audit_alerts_human(al_audit *a, bool on);
/* Alerts dropped because the queue was full, and deliveries that failed
 * after every retry. */
void al_audit_alert_counts(al_audit *a, uint64_t *dropped, uint64_t *failed);

/* Whether the store's schema is exactly airlock's (no planted trigger,
 * view, index or table, none of its own changed): 0 when it is, 1 with
 * the first difference in msg when it is not (every write is refused
 * then), <0 when it cannot be read. */
int al_audit_schema_check(al_audit *a, char *msg, size_t msglen,
                          al_error *err);
/* The chain head: the last record's position and hash. */
int al_audit_head(al_audit *a, uint64_t *seq, char hash[AL_AUDIT_HASH_SIZE],
                  al_error *err);

typedef struct al_audit_verify_report {
        bool ok;
        uint64_t records;     /* records checked */
        uint64_t first_seq, last_seq;
        char head[AL_AUDIT_HASH_SIZE];
        uint64_t executions, interrupted, refused;
        uint64_t sessions, cells; /* session_created, cell_started */
        uint64_t pruned;      /* records removed by prune before first_seq */
        uint64_t bad_seq;     /* the first bad record (0: none) */
        char bad_id[AL_AUDIT_CELL_ID_SIZE];
        char problem[24];     /* modified, deleted, inserted, reordered,
                                 forged, truncated, checkpoint, schema,
                                 corrupt (bad_seq 0) */
        char message[512];
} al_audit_verify_report;

/* Walk the whole chain. expect_head: "HASH" or "SEQ:HASH" from an earlier
 * al_audit_head; the chain must still contain it (else: truncated). */
int al_audit_verify(al_audit *a, const char *expect_head,
                    al_audit_verify_report *rep, al_error *err);

/* Remove the records older than before (UTC, "YYYY-MM-DD[THH:MM[:SS]]" or
 * a full timestamp), keep a checkpoint so the rest still verifies, and
 * append a "pruned" record. */
int al_audit_prune(al_audit *a, const char *before, uint64_t *ret_count,
                   al_error *err);

/* Queries over executions, newest first: a run (a started record with its
 * finished record, or a refused one), a session (session_created with
 * session_ended) or a cell (cell_started with cell). Each has "kind"
 * ("run", "session", "cell") and "session_id" (null for a run). */
typedef struct al_audit_filter {
        const char *id;            /* one execution id, or NULL */
        /* one session (its 32-digit id): the session and its cells */
        const char *session;
        const char *since, *until; /* timestamps as for prune, or NULL */
        const char *actor, *status, *source, *language; /* exact, or NULL */
        bool suspicious;           /* only flagged */
        bool interrupted;          /* only those that never finished */
        uint64_t limit;            /* 0: all */
        /* only executions whose first record lies before this chain
         * position (the cursor of the next page); 0: no bound */
        uint64_t before;
} al_audit_filter;

/* cb gets each execution as a JSON object (borrowed); a non-zero return
 * stops the walk and is returned. */
int al_audit_query(al_audit *a, const al_audit_filter *f,
                   int (*cb)(struct json_t *exec, void *ctx), void *ctx,
                   al_error *err);
/* One page of a query: the executions as a JSON array text, newest
 * first, cut when the next one would take the text past max_bytes (a page
 * holds at least one execution) or after max_scan executions were
 * examined (filters applied in C skip some). more says whether executions
 * are left; next is then the filter's "before" for the next page. */
typedef struct al_audit_page {
        size_t max_bytes;  /* in: 0 = no cap */
        uint64_t max_scan; /* in: 0 = no cap */
        char *json;        /* out: "[...]", malloc'ed */
        size_t len;        /* out: strlen(json) */
        uint64_t count;    /* out: executions in json */
        bool more;         /* out */
        uint64_t next;     /* out: the cursor when more, else 0 */
} al_audit_page;
/* f->limit caps the executions of the page (0: only the caps above). */
int al_audit_query_page(al_audit *a, const al_audit_filter *f,
                        al_audit_page *p, al_error *err);

/* One execution by id (or a unique prefix of at least 6 digits), with its
 * chain records; *ret is a new reference. -ENOENT if none. A session's id
 * gives the session with its cells ("cells", oldest first) and its file
 * events ("files"); "PREFIX.SEQ" one cell. */
int al_audit_get(al_audit *a, const char *id, struct json_t **ret,
                 al_error *err);
/* The same among the executions of one actor only (NULL: every actor):
 * another actor's executions are neither found nor make a prefix
 * ambiguous (-EEXIST). */
int al_audit_get_as(al_audit *a, const char *id, const char *actor,
                    struct json_t **ret, al_error *err);
/* Counts by status, language, source; flagged; interrupted; size. */
int al_audit_stats(al_audit *a, const al_audit_filter *f,
                   struct json_t **ret, al_error *err);

/* Parse a time for the filters into the stored form
 * "YYYY-MM-DDTHH:MM:SS.mmmZ". Accepts that form, "YYYY-MM-DD",
 * "YYYY-MM-DDTHH:MM[:SS]" (UTC), or an age "30s", "15m", "2h", "7d". */
int al_audit_parse_time(const char *in, char out[32], al_error *err);

#ifdef __cplusplus
}
#endif
