/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A session: one sandbox kept alive, whose payload is the language's
 * driver (languages/sessions/), taking one cell at a time. Every layer of
 * a one-shot run holds for its whole life; the run is an ordinary al_run
 * on a thread of its own, made live by al_sbx_live.
 *
 *   al_session_start(spec) -> al_session_exec(code) ... -> al_session_close
 *
 * The driver protocol (fds 3 and 4 of the driver, nothing on 1 and 2):
 *   request  "X <seq> <nbytes>\n" + <nbytes> of code (a cell; "R": run it
 *            as a program, python only, the reply has "exit_code")
 *   reply    "<nbytes>\n" + <nbytes> of one JSON object: first
 *            {"type":"ready",...}, then one {"type":"result","seq":N,...}
 *            per request.
 * A reply that is not for the cell being run, a header that is not
 * digits, a frame over AL_SESSION_FRAME_MAX, or the driver closing fd 4
 * ends the session ("protocol"): the code shares the driver's process
 * and can write there, so only its own session can suffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock.h"

struct json_t;

/* The largest reply frame the supervisor reads. */
#define AL_SESSION_FRAME_MAX (16u << 20)
/* JSON values in one reply frame (the root, each element, each member's
 * value): parsed, each costs the supervisor some 40 bytes outside the
 * sandbox's memory limit, so a frame of "0,0,..." would be 20 times its
 * size. A real reply is a few strings (MIME bundles); more is refused
 * before it is parsed. */
#define AL_SESSION_FRAME_VALUES (1u << 16)
/* Output between two cells (threads, processes the code left running),
 * kept for the next cell; more is dropped and said. */
#define AL_SESSION_PENDING_MAX (64u << 10)
/* How long a driver may take to say it is ready. */
#define AL_SESSION_START_MS 30000

typedef struct al_session al_session;

/* Takes spec (language, limits of the whole session, env, input files;
 * limits.wall_ms is the session's maximum lifetime), and owns it from
 * here on, also on failure. Returns when the driver is ready, or
 * -errno with the reason (the sandbox's, or the driver's). */
int al_session_start(al_spec *spec, al_session **ret, al_error *err);

/* Called with each piece of a cell's output as it comes (stream 1 or 2),
 * on the session's thread: must not block. */
typedef void (*al_cell_chunk_fn)(void *ctx, int stream, const void *buf,
                                 size_t n);

typedef struct al_cell_opts {
        uint64_t wall_ms;      /* then SIGINT (KeyboardInterrupt) */
        uint64_t cpu_ms;       /* CPU of the cell, all its processes */
        uint64_t output_bytes; /* per stream */
        uint64_t grace_ms;     /* after the interrupt, before the kill */
        al_cell_chunk_fn on_chunk;
        void *chunk_ctx;
        /* run the code as a program (`python3 main.py`: request R)
         * instead of a cell, python's driver only: the driver closes its
         * channel before the code runs and the program's end is the
         * session's (its reply: exit_code and signal from the sandbox's
         * end); for a warm run */
        bool script;
} al_cell_opts;

enum al_cell_status {
        AL_CELL_OK = 0,  /* the driver answered status ok */
        AL_CELL_ERROR,   /* the code raised (reply's error) */
        AL_CELL_TIMEOUT, /* interrupted at a limit (limits_hit), answered */
        AL_CELL_DEAD,    /* the session ended during the cell */
};

typedef struct al_cell_result {
        enum al_cell_status status;
        uint64_t seq;
        struct json_t *reply; /* the driver's reply, or NULL */
        unsigned char *out, *err;
        size_t out_len, err_len;
        bool out_truncated, err_truncated;
        bool interrupted;    /* SIGINT was sent */
        char limits_hit[64]; /* "wall", "cpu", "output", ... */
        uint64_t wall_ms, cpu_ms;
        uint64_t memory_peak_bytes; /* the session's so far (its cgroup) */
        char reason[256];           /* for DEAD and TIMEOUT */
} al_cell_result;
void al_cell_result_clear(al_cell_result *r);

/* A cell as every door answers it (HTTP, airlock repl --json): {"id":
 * "SESSION.SEQ", "session_id", "seq", "status": "ok" | "error" |
 * "timeout" | "session_dead", "execution_count", "stdout", "stderr",
 * "stdout_truncated", "stderr_truncated", "results": [MIME bundles],
 * "error"?, "limits_hit": [...], "wall_ms", "cpu_ms", "reason"?, and for
 * a dead session "session_status": "ended" and "session_end_reason"
 * (end_reason, or "exited")}. A new reference, NULL without memory. */
struct json_t *al_cell_result_json(const al_cell_result *c,
                                   const char *session_id,
                                   const char *end_reason);
/* The status word of a cell, as in the JSON and the audit record. */
const char *al_cell_status_name(enum al_cell_status st);

/* Run one cell. -EBUSY while another cell runs, -EPIPE (r->status DEAD
 * and r->reason) when the session has ended; 0 when r holds the cell. */
int al_session_exec(al_session *s, const char *code, size_t len,
                    const al_cell_opts *o, al_cell_result *r, al_error *err);

/* SIGINT to the running cell (no-op between cells). */
int al_session_interrupt(al_session *s);

typedef struct al_session_info {
        bool alive;
        bool busy;
        uint64_t cells;
        char language[32];
        char version[64];
        char end_reason[32]; /* "" while alive */
        char end_message[256];
} al_session_info;
void al_session_info_get(al_session *s, al_session_info *ret);

/* The layers that hold the session's sandbox, as a run's result says. */
void al_session_protections(al_session *s, al_protections *ret);

/* A directory fd of the live session's workspace (the caller closes it)
 * and the host ids its code runs as; -EPIPE once it has ended. */
int al_session_workspace(al_session *s, int *ws_fd, uid_t *uid, gid_t *gid);

/* End it now, from any thread, without freeing it (a cell being run on
 * another thread returns AL_CELL_DEAD): reason is kept unless it had
 * ended already. */
void al_session_kill(al_session *s, const char *reason);

/* End it (reason: "closed", "idle", "shutdown", ...; kept if it had
 * ended already) and free it. *ret_final, if given, gets the sandbox's
 * own result (status, usage, limits hit), the caller's to free. */
void al_session_close(al_session *s, const char *reason, al_result **ret_final,
                      al_session_info *ret_info);
