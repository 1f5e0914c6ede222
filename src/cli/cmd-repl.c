/* SPDX-License-Identifier: MIT */
/*
 * airlock repl: a session (src/sandbox/session.h) in a terminal. Flags ->
 * al_spec -> al_session_start, then one cell at a time: typed at a prompt
 * (stdin a terminal), or the whole of stdin split at lines that hold only
 * "%%" (otherwise). Every step is audited as an HTTP session's is:
 * session_created as the sandbox's gate, cell_started durably before the
 * cell's code moves, the cell's record, session_ended with why.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP are blocked and read by a thread of
 * their own (signalfd). At the prompt, SIGINT clears the line; during a
 * cell it interrupts the cell (al_session_interrupt: KeyboardInterrupt,
 * the session lives on). Without a terminal, and for SIGTERM and SIGHUP,
 * it ends the session ("cancelled") and airlock exits 130.
 *
 * Editing: the terminal's own line discipline (erase, kill, word erase).
 * GNU readline is GPL and none of airlock's dependencies; no BSD libedit
 * headers are at hand either, so no library edits the line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "cli.h"
#include "macro.h"
#include "profile.h"
#include "session.h"
#include "util.h"

/* The most code one cell may hold, and the most of stdin read without a
 * terminal (all of its cells together). */
#define REPL_CELL_MAX (16u << 20)
#define REPL_INPUT_MAX (64u << 20)
/* Output that came while the terminal (or the pipe) did not take it:
 * more is dropped and said, so that a stopped reader cannot make airlock
 * hold unbounded output, nor block the session's thread. */
#define REPL_SHOW_MAX (4u << 20)
/* After its interrupt, a cell has this long to stop before the session
 * is killed (as over HTTP). */
#define REPL_GRACE_MS 2000
/* The session's maximum lifetime unless --lifetime says otherwise. */
#define REPL_LIFETIME_DEFAULT_S 3600
/* At the end, how long alerts still queued may take to go out. */
#define REPL_ALERT_DRAIN_MS 5000
/* A line that holds only this separates two cells without a terminal. */
#define REPL_SEPARATOR "%%"

/* clang-format off */
static const char usage_text[] =
"Usage: airlock repl --lang LANG [OPTIONS]\n"
"\n"
"A live sandbox that keeps its state between cells (a session): every\n"
"layer of airlock run for its whole life, one interpreter inside.\n"
"On a terminal: type cells at the prompt (Ctrl-C interrupts a running\n"
"cell or clears the line, Ctrl-D ends the session). Otherwise: stdin is\n"
"read to its end and split into cells at lines that hold only %%.\n"
"\n";
static const char notes_text[] =
"\n"
"Exit status (without a terminal; at a prompt Ctrl-D exits 0):\n"
"0 every cell ok; 1 a cell raised an error, was interrupted\n"
"at a limit, or the session ended before its last cell; 2 usage error;\n"
"8 the session could not start (or the audit log cannot be written);\n"
"130 airlock was interrupted (without a terminal) or terminated.\n"
"The session, each cell and its end are recorded in the audit log\n"
"(airlock-audit(1)); if the log cannot be written, no code runs.\n";
/* clang-format on */

static struct {
        /* flags */
        const char *lang, *save_images, *state;
        bool json, json_session, no_audit;
        al_spec *spec;
        al_limits cell; /* the cells' wall, cpu, output */
        uint64_t lifetime_s;
        /* the run */
        al_session *s;
        al_audit *log;
        al_audit_who who;
        char actor[64];
        char sid[AL_AUDIT_ID_SIZE];
        bool tty;
        atomic_bool running;   /* a cell is being run */
        atomic_bool cancelled; /* SIGTERM/SIGHUP, or SIGINT without a tty */
        int wake[2];           /* the signal thread -> the prompt */
        int sfd;
        bool saw_error;
} R = {.wake = {-1, -1}, .sfd = -1};

/* --- showing output as it comes --------------------------------------- */

/* Chunks queued by the session's thread (which must not block) and
 * written by a thread of ours: records of [stream][length][bytes]. */
static struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        unsigned char *buf;
        size_t len;
        bool dropped, stop, busy;
        pthread_t thread;
        bool started;
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void write_all(int fd, const void *p, size_t n) {
        const unsigned char *b = p;
        while (n) {
                ssize_t k = write(fd, b, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* a closed reader: nothing more to show */
                b += k;
                n -= (size_t)k;
        }
}

static void on_chunk(void *ctx, int stream, const void *buf, size_t n) {
        (void)ctx;
        pthread_mutex_lock(&Q.mu);
        uint32_t len = (uint32_t)n;
        if (n > REPL_SHOW_MAX || Q.len + 5 + n > REPL_SHOW_MAX) {
                Q.dropped = true;
        } else {
                unsigned char *nb = realloc(Q.buf, Q.len + 5 + n);
                if (!nb) {
                        Q.dropped = true;
                } else {
                        Q.buf = nb;
                        Q.buf[Q.len] = (unsigned char)stream;
                        memcpy(Q.buf + Q.len + 1, &len, 4);
                        memcpy(Q.buf + Q.len + 5, buf, n);
                        Q.len += 5 + n;
                }
        }
        pthread_cond_broadcast(&Q.cv);
        pthread_mutex_unlock(&Q.mu);
}

static void *shower_main(void *arg) {
        (void)arg;
        pthread_mutex_lock(&Q.mu);
        for (;;) {
                while (!Q.len && !Q.dropped && !Q.stop)
                        pthread_cond_wait(&Q.cv, &Q.mu);
                if (!Q.len && !Q.dropped && Q.stop)
                        break;
                unsigned char *b = Q.buf;
                size_t n = Q.len;
                bool dropped = Q.dropped;
                Q.buf = NULL;
                Q.len = 0;
                Q.dropped = false;
                Q.busy = true;
                pthread_mutex_unlock(&Q.mu);
                for (size_t i = 0; i + 5 <= n;) {
                        uint32_t len;
                        memcpy(&len, b + i + 1, 4);
                        write_all(b[i] == 1 ? 1 : 2, b + i + 5, len);
                        i += 5 + len;
                }
                free(b);
                if (dropped) {
                        static const char m[] =
                                "\n--- airlock: output not shown: more came "
                                "than the terminal took\n";
                        write_all(2, m, sizeof(m) - 1);
                }
                pthread_mutex_lock(&Q.mu);
                Q.busy = false;
                pthread_cond_broadcast(&Q.cv);
        }
        pthread_mutex_unlock(&Q.mu);
        return NULL;
}

/* Everything queued so far written, before the cell's result is shown. */
static void shower_flush(void) {
        pthread_mutex_lock(&Q.mu);
        while (Q.started && (Q.len || Q.dropped || Q.busy))
                pthread_cond_wait(&Q.cv, &Q.mu);
        pthread_mutex_unlock(&Q.mu);
}

static void shower_stop(void) {
        if (!Q.started)
                return;
        pthread_mutex_lock(&Q.mu);
        Q.stop = true;
        pthread_cond_broadcast(&Q.cv);
        pthread_mutex_unlock(&Q.mu);
        pthread_join(Q.thread, NULL);
        Q.started = false;
}

/* --- signals ------------------------------------------------------------ */

/* Ctrl-C while a cell is on its way (its audit record being written, its
 * request not yet taken): the interrupt waits until the session runs it,
 * so that a Ctrl-C typed just after Enter is not lost. */
static void interrupt_cell(void) {
        while (atomic_load(&R.running)) {
                al_session_info in;
                al_session_info_get(R.s, &in);
                if (in.busy || !in.alive) {
                        al_session_interrupt(R.s);
                        return;
                }
                usleep(5000);
        }
}

static void *signals_main(void *arg) {
        (void)arg;
        struct signalfd_siginfo si;
        while (read(R.sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGINT && R.tty &&
                    !atomic_load(&R.cancelled)) {
                        if (atomic_load(&R.running))
                                interrupt_cell();
                        else
                                (void)!write(R.wake[1], "i", 1);
                        continue;
                }
                atomic_store(&R.cancelled, true);
                al_session_kill(R.s, "cancelled");
                (void)!write(R.wake[1], "c", 1);
        }
        return NULL;
}

/* --- the audit log ------------------------------------------------------ */

/* The sandbox's gate (ctx: its spec): the durable session_created
 * record, before any code goes in. */
static int created_gate(void *ctx, al_error *err) {
        al_spec *spec = ctx;
        al_audit_session as = {.language = al_spec_language(spec),
                               .limits = al_spec_limits(spec),
                               .max_lifetime_s = R.lifetime_s};
        return al_audit_session_created(R.log, &R.who, &as, R.sid, err);
}

/* A cell's record: cid is its started record's id. */
static void audit_cell(const char *cid, const al_cell_result *c) {
        if (!R.log)
                return;
        json_t *err = json_object_get(c->reply, "error");
        json_t *ec = json_object_get(c->reply, "execution_count");
        al_audit_cell ac = {
                .status = al_cell_status_name(c->status),
                .limits_hit = c->limits_hit[0] ? c->limits_hit : NULL,
                .wall_ms = c->wall_ms,
                .cpu_ms = c->cpu_ms,
                .execution_count =
                        json_is_integer(ec) ? json_integer_value(ec) : -1,
                .error_name = json_string_value(json_object_get(err, "name")),
                .stdout_buf = c->out,
                .stdout_len = c->out_len,
                .stderr_buf = c->err,
                .stderr_len = c->err_len,
                .stdout_truncated = c->out_truncated,
                .stderr_truncated = c->err_truncated,
        };
        al_error e = {0};
        if (al_audit_cell_finished(R.log, cid, &ac, &e) < 0)
                cli_error("the cell ran but its audit record is incomplete "
                          "(it shows as interrupted): %s",
                          e.msg);
}

/* --- a cell's result as text -------------------------------------------- */

/* --save-images DIR: cell SEQ's image K as DIR/cell-SEQ-K.png, no link
 * followed. */
static void save_image(const unsigned char *png, size_t n, uint64_t seq,
                       size_t k, char *where, size_t wsize) {
        char name[64];
        snprintf(name, sizeof(name), "cell-%" PRIu64 "-%zu.png", seq, k);
        if (mkdir(R.save_images, 0755) < 0 && errno != EEXIST) {
                cli_error("--save-images %s: %s", R.save_images,
                          strerror(errno));
                return;
        }
        _cleanup_close_ int dfd =
                open(R.save_images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd =
                dfd < 0 ? -1
                        : openat(dfd, name,
                                 O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
                                         O_CLOEXEC,
                                 0644);
        if (fd < 0) {
                cli_error("cannot write %s/%s: %s", R.save_images, name,
                          strerror(errno));
                return;
        }
        write_all(fd, png, n);
        snprintf(where, wsize, " -> %s/%s", R.save_images, name);
}

/* One MIME bundle: text/plain on stdout, an image said (and saved). */
static void show_bundle(json_t *d, uint64_t seq, size_t k) {
        const char *text = json_string_value(json_object_get(d, "text/plain"));
        if (text) {
                fputs(text, stdout);
                fputc('\n', stdout);
        }
        const char *b64 = json_string_value(json_object_get(d, "image/png"));
        if (!b64)
                return;
        size_t blen = strlen(b64), n = 0;
        _cleanup_free_ unsigned char *png = malloc(blen / 4 * 3 + 3);
        if (!png ||
            sodium_base642bin(png, blen / 4 * 3 + 3, b64, blen, "\n\r ", &n,
                              NULL, sodium_base64_VARIANT_ORIGINAL) < 0) {
                printf("[image/png, not valid base64]\n");
                return;
        }
        char where[PATH_MAX + 80] = "";
        if (R.save_images)
                save_image(png, n, seq, k, where, sizeof(where));
        printf("[image/png, %zu bytes%s]\n", n, where);
}

/* The cell as a person reads it (its output was shown as it came). */
static void show_cell(const al_cell_result *c) {
        json_t *res = json_object_get(c->reply, "results"), *r;
        size_t i;
        json_array_foreach(res, i, r) {
                json_t *d = json_object_get(r, "data");
                if (json_is_object(d))
                        show_bundle(d, c->seq, i + 1);
        }
        fflush(stdout);
        json_t *err = json_object_get(c->reply, "error");
        json_t *tb = json_object_get(err, "traceback"), *line;
        if (json_array_size(tb)) {
                json_array_foreach(tb, i, line) {
                        const char *l = json_string_value(line);
                        if (!l)
                                continue;
                        size_t n = strlen(l);
                        fputs(l, stderr);
                        if (!n || l[n - 1] != '\n')
                                fputc('\n', stderr);
                }
        } else if (json_is_object(err)) {
                const char *name =
                        json_string_value(json_object_get(err, "name"));
                const char *value =
                        json_string_value(json_object_get(err, "value"));
                fprintf(stderr, "%s: %s\n", name ? name : "Error",
                        value ? value : "");
        }
        if (c->out_truncated || c->err_truncated)
                fprintf(stderr,
                        "--- airlock: output truncated at %" PRIu64
                        " bytes per stream\n",
                        R.cell.output_bytes);
        if (c->status == AL_CELL_TIMEOUT)
                fprintf(stderr, "--- airlock: %s\n", c->reason);
        else if (c->status == AL_CELL_DEAD)
                fprintf(stderr, "--- airlock: the session ended: %s\n",
                        c->reason);
        fflush(stderr);
}

/* --- one cell ----------------------------------------------------------- */

/* Run code as the session's next cell, audited, and show it. false: the
 * session has ended (no more cells). */
static bool run_cell(const char *code, size_t len) {
        al_error e = {0};
        al_session_info in;
        al_session_info_get(R.s, &in);
        if (!in.alive) {
                R.saw_error = true;
                if (!atomic_load(&R.cancelled))
                        fprintf(stderr,
                                "--- airlock: the session ended (%s): "
                                "%s\n",
                                in.end_reason, in.end_message);
                return false;
        }
        char cid[AL_AUDIT_CELL_ID_SIZE] = "";
        /* from here a Ctrl-C is the cell's (interrupt_cell) */
        atomic_store(&R.running, true);
        /* durable before the code reaches the driver; none runs without */
        if (R.log && al_audit_cell_started(R.log, R.sid, in.cells + 1, code,
                                           len, &R.cell, cid, &e) < 0) {
                atomic_store(&R.running, false);
                cli_error("not running the cell: the audit log cannot be "
                          "written: %s",
                          e.msg);
                R.saw_error = true;
                return false;
        }
        al_cell_opts o = {.wall_ms = R.cell.wall_ms,
                          .cpu_ms = R.cell.cpu_ms,
                          .output_bytes = R.cell.output_bytes,
                          .grace_ms = REPL_GRACE_MS,
                          .on_chunk = R.json ? NULL : on_chunk};
        al_cell_result c;
        al_session_exec(R.s, code, len, &o, &c, &e);
        atomic_store(&R.running, false);
        audit_cell(cid, &c);
        al_session_info_get(R.s, &in);
        if (R.json) {
                json_t *j = al_cell_result_json(&c, R.sid[0] ? R.sid : "-",
                                                in.end_reason);
                char *str =
                        j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)
                          : NULL;
                puts(str ? str : "{\"status\":\"internal_error\"}");
                fflush(stdout);
                free(str);
                json_decref(j);
        } else {
                shower_flush();
                show_cell(&c);
        }
        if (c.status != AL_CELL_OK)
                R.saw_error = true;
        bool dead = c.status == AL_CELL_DEAD;
        al_cell_result_clear(&c);
        return !dead;
}

/* --json-session: the session's end as one last object, {"session_id",
 * "session_end_reason", "session_end_message", "cells", "sandbox": the
 * sandbox's own result as airlock run --json prints it (status, exit_code,
 * signal, limits_hit over the session's life, memory_peak_bytes,
 * protections), or null if it has none}. A program reading the cells can
 * tell why the session ended and what the sandbox was. */
static void print_session_end(const al_session_info *in,
                              const al_result *final) {
        _cleanup_free_ char *res =
                final ? al_result_to_json(final, false) : NULL;
        json_t *sb = res ? json_loads(res, JSON_ALLOW_NUL, NULL) : NULL;
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:o}", "session_id",
                              R.sid[0] ? R.sid : "-", "session_end_reason",
                              in->end_reason[0] ? in->end_reason : "closed",
                              "session_end_message", in->end_message, "cells",
                              (json_int_t)in->cells, "sandbox",
                              sb ? sb : json_null());
        char *str =
                o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        puts(str ? str : "{\"session_end_reason\":\"internal_error\"}");
        fflush(stdout);
        free(str);
        json_decref(o);
}

/* --- without a terminal: stdin split at %% ------------------------------ */

static bool is_space(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int run_piped(void) {
        _cleanup_free_ unsigned char *in = NULL;
        size_t n = 0;
        int r = al_read_all("-", REPL_INPUT_MAX, &in, &n);
        if (r == -EFBIG) {
                cli_error("stdin is larger than the %u MiB limit",
                          REPL_INPUT_MAX >> 20);
                return EXIT_USAGE;
        }
        if (r < 0) {
                cli_error("cannot read stdin: %s", strerror(-r));
                return EXIT_USAGE;
        }
        const char *cell = (const char *)in, *end = in ? cell + n : NULL;
        for (bool last = !in; !last && !atomic_load(&R.cancelled);) {
                /* the next line that holds only %% (or the end) */
                const char *q = cell, *cut = end, *next = end;
                last = true;
                while (q < end) {
                        const char *nl = memchr(q, '\n', (size_t)(end - q));
                        const char *le = nl ? nl : end;
                        size_t ll = (size_t)(le - q);
                        if (ll && q[ll - 1] == '\r')
                                ll--;
                        if (ll == strlen(REPL_SEPARATOR) &&
                            !memcmp(q, REPL_SEPARATOR, ll)) {
                                cut = q;
                                next = nl ? nl + 1 : end;
                                last = false;
                                break;
                        }
                        q = nl ? nl + 1 : end;
                }
                size_t len = (size_t)(cut - cell);
                bool blank = true;
                for (size_t i = 0; i < len && blank; i++)
                        blank = is_space(cell[i]);
                /* an empty cell (before the first %%, two in a row) is
                 * not one */
                if (!blank && !run_cell(cell, len))
                        break;
                cell = next;
        }
        return EXIT_OK;
}

/* --- on a terminal: the prompt ------------------------------------------ */

/* Whether the cell typed so far wants more lines, as python's own REPL
 * asks: a line that ends with ':' opens a block that a blank line closes;
 * open brackets, an open triple-quoted string or a trailing '\' ask for
 * the next line. Strings and comments are skipped roughly (a quote, a '#'
 * for python and bash, "//" for node). */
static bool wants_more(const char *buf, size_t len, bool *block) {
        int depth = 0;
        char quote = 0;
        bool triple = false;
        const char *last = NULL; /* the last line's last non-space char */
        bool hash = strcmp(R.lang, "node") != 0;
        for (size_t i = 0; i < len; i++) {
                char ch = buf[i];
                if (quote) {
                        if (ch == '\\') {
                                i++;
                                continue;
                        }
                        if (triple && i + 2 < len && ch == quote &&
                            buf[i + 1] == quote && buf[i + 2] == quote) {
                                quote = 0;
                                i += 2;
                        } else if (!triple && (ch == quote || ch == '\n')) {
                                quote = 0;
                        }
                        continue;
                }
                if ((hash && ch == '#') ||
                    (!hash && ch == '/' && i + 1 < len && buf[i + 1] == '/')) {
                        while (i + 1 < len && buf[i + 1] != '\n')
                                i++;
                        continue;
                }
                if (ch == '\'' || ch == '"' || ch == '`') {
                        quote = ch;
                        triple = i + 2 < len && buf[i + 1] == ch &&
                                 buf[i + 2] == ch;
                        if (triple)
                                i += 2;
                        else if (ch == '`')
                                triple = true; /* spans lines */
                        last = &buf[i];
                        continue;
                }
                if (ch && strchr("([{", ch))
                        depth++;
                else if (ch && strchr(")]}", ch) && depth > 0)
                        depth--;
                if (!is_space(ch))
                        last = &buf[i];
                if (ch == '\n' && last && *last == ':' && depth == 0 &&
                    !strcmp(R.lang, "python"))
                        *block = true;
                if (ch == '\n')
                        last = NULL;
        }
        if (quote && triple)
                return true;
        return depth > 0 || (last && *last == '\\');
}

/* One line of the terminal into *line: 1, 0 at its end (Ctrl-D), -1
 * after SIGINT (the line is dropped), -2 when cancelled. */
static int read_line(char **line, size_t *len, size_t *cap) {
        static char pend[4096];
        static size_t plen;
        *len = 0;
        for (;;) {
                char *nl = memchr(pend, '\n', plen);
                size_t take = nl ? (size_t)(nl - pend) + 1 : plen;
                if (take) {
                        if (*len + take + 1 > *cap) {
                                size_t nc = (*len + take + 1) * 2;
                                char *nb = realloc(*line, nc);
                                if (!nb)
                                        return 0;
                                *line = nb;
                                *cap = nc;
                        }
                        memcpy(*line + *len, pend, take);
                        *len += take;
                        (*line)[*len] = '\0';
                        memmove(pend, pend + take, plen - take);
                        plen -= take;
                        if (nl)
                                return 1;
                }
                struct pollfd pf[2] = {{0, POLLIN, 0}, {R.wake[0], POLLIN, 0}};
                if (poll(pf, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 0;
                }
                if (pf[1].revents) {
                        char w[16];
                        (void)!read(R.wake[0], w, sizeof(w));
                        plen = 0;
                        if (atomic_load(&R.cancelled))
                                return -2;
                        return -1;
                }
                ssize_t k = read(0, pend + plen, sizeof(pend) - plen);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return *len ? 1 : 0;
                plen += (size_t)k;
        }
}

static int run_tty(void) {
        al_session_info in;
        al_session_info_get(R.s, &in);
        fprintf(stderr,
                "airlock repl: %s %s in a sandbox (session %s). "
                "Ctrl-C interrupts, Ctrl-D ends.\n",
                in.language, in.version, R.sid[0] ? R.sid : "not audited");
        _cleanup_free_ char *cell = NULL, *line = NULL;
        size_t clen = 0, ccap = 0, llen = 0, lcap = 0;
        bool block = false, over = false;
        for (;;) {
                fputs(clen ? "... " : ">>> ", stdout);
                fflush(stdout);
                int r = read_line(&line, &llen, &lcap);
                if (r == -2)
                        break;
                if (r == -1) {
                        fputs("\nKeyboardInterrupt\n", stdout);
                        clen = 0;
                        block = over = false;
                        continue;
                }
                if (r == 0) {
                        fputc('\n', stdout);
                        break;
                }
                bool empty = true;
                for (size_t i = 0; i < llen && empty; i++)
                        empty = is_space(line[i]);
                if (!clen && empty)
                        continue;
                if (clen + llen > REPL_CELL_MAX)
                        over = true;
                else {
                        if (clen + llen + 1 > ccap) {
                                size_t nc = (clen + llen + 1) * 2;
                                char *nb = realloc(cell, nc);
                                if (!nb)
                                        return EXIT_INTERNAL;
                                cell = nb;
                                ccap = nc;
                        }
                        memcpy(cell + clen, line, llen);
                        clen += llen;
                }
                if (wants_more(cell, clen, &block) || (block && !empty))
                        continue;
                if (over) {
                        cli_error("a cell holds at most %u MiB of code; "
                                  "not run",
                                  REPL_CELL_MAX >> 20);
                } else if (!run_cell(cell, clen))
                        break;
                clen = 0;
                block = over = false;
        }
        return EXIT_OK;
}

/* --- flags -------------------------------------------------------------- */

/* The limit flags, by o->id: the limit's JSON name, and whether the
 * value is in seconds. */

/* "1.5" seconds -> 1500 ms: digits, at most three decimals. */

static int set_limit(const struct cli_opt *o, const char *arg) {
        al_error e = {0};
        char v[32];
        const char *value = arg;
        if (cli_limit_flags[o->id].seconds) {
                uint64_t ms;
                if (cli_seconds_to_ms(arg, &ms) < 0) {
                        cli_error("--%s: '%s' is not a number of seconds "
                                  "(e.g. 5 or 0.5)",
                                  o->name, arg);
                        return EXIT_USAGE;
                }
                snprintf(v, sizeof(v), "%" PRIu64, ms);
                value = v;
        }
        if (al_limits_set(al_spec_limits(R.spec), cli_limit_flags[o->id].name,
                          value, &e) < 0) {
                cli_error("--%s: %s", o->name, e.msg);
                return EXIT_USAGE;
        }
        return 0;
}

static int set_lifetime(const struct cli_opt *o, const char *arg) {
        uint64_t ms;
        if (cli_seconds_to_ms(arg, &ms) < 0 || ms == 0 ||
            ms > al_limits_max.wall_ms) {
                cli_error(
                        "--%s: '%s' is not a number of seconds up to %" PRIu64,
                        o->name, arg, al_limits_max.wall_ms / 1000);
                return EXIT_USAGE;
        }
        R.lifetime_s = (ms + 999) / 1000;
        return 0;
}

/* clang-format off */
#define LIMIT(n, sh, i, h) {.name = n, .has_arg = 1, .short_name = sh,         \
                            .kind = CLI_CALL, .set = set_limit, .id = i,       \
                            .help = h}
static const struct cli_opt repl_opts[] = {
        {.name = "lang", .has_arg = 1, .short_name = 'l', .kind = CLI_STRING,
         .str = &R.lang,
         .help = "  -l, --lang LANG        python, node or bash\n"},
        {.name = "language", .has_arg = 1, .short_name = 'l',
         .kind = CLI_STRING, .str = &R.lang},
        LIMIT("timeout", 't', CLI_LIM_WALL,
              "  -t, --timeout SEC      wall clock of each cell (10); then the\n"
              "                         cell is interrupted, the session lives on\n"),
        LIMIT("wall", 0, CLI_LIM_WALL, NULL),
        LIMIT("cpu", 0, CLI_LIM_CPU,
              "  --cpu SEC              CPU time of each cell (10)\n"),
        LIMIT("output", 0, CLI_LIM_OUTPUT,
              "  --output BYTES         output of each cell, per stream (1048576)\n"),
        LIMIT("memory", 'm', CLI_LIM_MEMORY,
              "  -m, --memory MB        memory of the session, no swap (256)\n"),
        LIMIT("pids", 0, CLI_LIM_PIDS,
              "  --pids N               processes of the session (64)\n"),
        LIMIT("disk", 0, CLI_LIM_DISK,
              "  --disk MB              workspace+/tmp of the session (64)\n"),
        LIMIT("open-files", 0, CLI_LIM_FILES,
              "  --open-files N         file descriptors of each process (256)\n"),
        {.name = "lifetime", .has_arg = 1, .kind = CLI_CALL,
         .set = set_lifetime,
         .help = "  --lifetime SEC         the session's longest life (3600)\n"},
        {.name = "json", .kind = CLI_FLAG, .flag = &R.json,
         .help = "  --json                 one JSON object per cell (as POST\n"
                 "                         /v1/sessions/{id}/execute answers)\n"},
        {.name = "json-session", .kind = CLI_FLAG, .flag = &R.json_session,
         .help = "  --json-session         with --json, one more object at the end:\n"
                 "                         how the session ended and its sandbox's\n"
                 "                         result (as airlock run --json prints it)\n"},
        {.name = "save-images", .has_arg = 1, .kind = CLI_STRING,
         .str = &R.save_images,
         .help = "  --save-images DIR      write image/png results as\n"
                 "                         DIR/cell-SEQ-N.png\n"},
        {.name = "state", .has_arg = 1, .kind = CLI_STRING, .str = &R.state,
         .help = "  --state DIR            state directory with the audit log\n"
                 "                         (as airlock run)\n"},
        {.name = "no-audit", .kind = CLI_FLAG, .flag = &R.no_audit,
         .help = "  --no-audit             do not record the session\n"},
        CLI_END,
};
#undef LIMIT
/* clang-format on */

/* --- the command -------------------------------------------------------- */

static int start(void) {
        al_error e = {0};
        /* the cells' limits are what the flags said; the sandbox's own
         * wall clock is the session's lifetime, its CPU the ceiling (a
         * cell's CPU is watched per cell) */
        al_limits *l = al_spec_limits(R.spec);
        R.cell = *l;
        l->wall_ms = R.lifetime_s * 1000;
        l->cpu_ms = al_limits_max.cpu_ms;
        /* audited or not, no sandbox may see the state directory */
        char dir[PATH_MAX];
        if (al_state_dir_resolve(R.state, dir, sizeof(dir), &e) == 0)
                al_protect_path(dir, &e);
        if (!R.no_audit) {
                if (al_audit_open(R.state, &R.log, &e) < 0) {
                        cli_error("not starting: the audit log cannot be "
                                  "written: %s (--no-audit runs without it)",
                                  e.msg);
                        return EXIT_INTERNAL;
                }
                al_audit_alerts_human(R.log, !R.json);
                /* a long-lived process, as a server: alerts go out while
                 * the session runs */
                if (al_audit_alerts_start(R.log, &e) < 0)
                        cli_error("alerts: %s", e.msg);
                al_spec_set_gate(R.spec, created_gate, R.spec);
        }
        al_spec *spec = R.spec;
        R.spec = NULL; /* the session's now, also on failure */
        if (al_session_start(spec, &R.s, &e) < 0) {
                cli_error("%s", e.msg);
                if (R.log && R.sid[0]) {
                        al_error e2 = {0};
                        al_audit_session_ended(R.log, R.sid, "start_failed", 0,
                                               0, &e2);
                }
                return EXIT_INTERNAL;
        }
        return EXIT_OK;
}

int cmd_repl(int argc, char **argv) {
        const struct cli_cmd cmd = {
                .opts = repl_opts, .usage = usage_text, .notes = notes_text};
        R.spec = al_spec_new();
        R.lifetime_s = REPL_LIFETIME_DEFAULT_S;
        if (!R.spec)
                return EXIT_INTERNAL;
        int r = cli_parse(&cmd, argc, argv, 1);
        if (r >= 0) {
                R.spec = al_spec_free(R.spec);
                return r;
        }
        al_error e = {0};
        if (optind < argc) {
                cli_error("unexpected argument '%s' (cells come from stdin)",
                          argv[optind]);
                R.spec = al_spec_free(R.spec);
                return EXIT_USAGE;
        }
        if (!R.lang || al_spec_set_language(R.spec, R.lang, &e) < 0) {
                if (R.lang)
                        cli_error("%s", e.msg);
                else
                        cli_error("--lang is required (python, node, bash)");
                R.spec = al_spec_free(R.spec);
                return EXIT_USAGE;
        }
        R.lang = al_spec_language(R.spec);
        const al_profile *prof = al_profile_find(R.lang);
        if (!prof || !prof->session_run) {
                /* a usage error, before anything is started or recorded */
                cli_error("language %s has no session driver (one that takes "
                          "cells: python, node, bash)",
                          R.lang);
                R.spec = al_spec_free(R.spec);
                return EXIT_USAGE;
        }
        R.tty = isatty(0) == 1;
        R.who.source = "cli";
        cli_local_actor(R.actor, sizeof(R.actor));
        R.who.actor = R.actor;

        /* signals to the signal thread only (every later thread inherits
         * the mask) */
        R.sfd = al_stop_signals();
        if (R.sfd < 0 || pipe2(R.wake, O_CLOEXEC) < 0) {
                cli_error("signals: %s", strerror(errno));
                R.spec = al_spec_free(R.spec);
                return EXIT_INTERNAL;
        }
        double t0 = al_now_ms();
        if ((r = start()) != EXIT_OK) {
                al_audit_close(R.log);
                return r;
        }
        pthread_t sig;
        bool sig_started = pthread_create(&sig, NULL, signals_main, NULL) == 0;
        Q.started = !R.json &&
                    pthread_create(&Q.thread, NULL, shower_main, NULL) == 0;

        r = R.tty ? run_tty() : run_piped();

        shower_stop();
        /* no signal may reach a session being freed */
        if (sig_started) {
                pthread_cancel(sig);
                pthread_join(sig, NULL);
        }
        al_session_info in;
        al_result *final = NULL;
        al_session_close(R.s,
                         atomic_load(&R.cancelled) ? "cancelled" : "closed",
                         R.json_session ? &final : NULL, &in);
        R.s = NULL;
        if (R.json_session)
                print_session_end(&in, final);
        final = al_result_free(final);
        if (R.log) {
                if (al_audit_session_ended(
                            R.log, R.sid,
                            in.end_reason[0] ? in.end_reason : "closed",
                            in.cells, (uint64_t)(al_now_ms() - t0), &e) < 0)
                        cli_error("the session's end is not in the audit "
                                  "log: %s",
                                  e.msg);
                al_audit_alerts_drain(R.log, REPL_ALERT_DRAIN_MS);
                al_audit_close(R.log);
                R.log = NULL;
        }
        if (atomic_load(&R.cancelled))
                return EXIT_CANCELLED;
        if (r != EXIT_OK)
                return r;
        /* at a prompt the person saw each cell: Ctrl-D ends with 0, as
         * python's own REPL does */
        return R.saw_error && !R.tty ? EXIT_RUN_ERROR : EXIT_OK;
}
