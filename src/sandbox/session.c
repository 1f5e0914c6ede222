/* SPDX-License-Identifier: MIT */
/*
 * Sessions (session.h): the run is an al_run on a thread of the session's
 * own, its driver live (al_sbx_live); what arrives from the sandbox (output,
 * replies, ticks) comes on that thread and is handed to the cell being run
 * under the session's lock; the caller's thread writes the request and
 * waits.
 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error.h"
#include "json.h"
#include "macro.h"
#include "sandbox.h"
#include "spec.h"
#include "util.h"

/* A header: up to 10 digits and a newline. */
#define HDR_MAX 12
/* After the driver's channel closes, how long the sandbox has to end by
 * itself (a driver killed at the memory limit, or one that exited) and
 * say why, before the session is ended as "protocol" (the code closed
 * fd 4 and the driver lives on). */
#define EOF_GRACE_MS 1000

struct obuf {
        unsigned char *buf;
        size_t len, cap;
        bool truncated;
};

struct cell {
        al_live_usage u0; /* the session's usage when the cell began */
        uint64_t seq;
        const al_cell_opts *o;
        double t0, deadline;
        uint64_t cpu0, cpu_now;
        double intr_at; /* when SIGINT was asked, 0 if not */
        bool intr_sent;
        bool done;
        char hit[64];
        struct obuf out, err;
        json_t *reply;
};

struct al_session {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        pthread_t thread;
        bool thread_started;
        al_spec *spec;
        al_sbx_live live;
        int req_w;   /* our end of the driver's fd 3 */
        int intr_fd; /* eventfd: interrupt */
        int kill_fd; /* eventfd: the spec's cancel fd */
        bool ready, ended, killing;
        double eof_at; /* when the driver's channel closed, 0 if open */
        char reason[32], message[256];
        al_result *final;
        int ws_fd;
        uid_t uid;
        gid_t gid;
        char version[64];
        uint64_t cells, seq, cpu_usec, mem_peak;
        al_live_usage usage; /* the last the sandbox said */
        al_protections prot; /* the sandbox's layers, from its ready */
        /* the reply being read */
        char hdr[HDR_MAX];
        size_t hdr_len;
        unsigned char *body;
        size_t body_len, body_want;
        bool in_body;
        struct cell *cur;
        struct obuf pend_out, pend_err;
};

static void obuf_add(struct obuf *b, const void *p, size_t n, uint64_t cap) {
        if (b->len + n > cap) {
                n = cap > b->len ? (size_t)(cap - b->len) : 0;
                b->truncated = true;
        }
        if (!n)
                return;
        if (b->len + n > b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 4096;
                while (nc < b->len + n)
                        nc *= 2;
                unsigned char *nb = realloc(b->buf, nc);
                if (!nb) {
                        b->truncated = true;
                        return;
                }
                b->buf = nb;
                b->cap = nc;
        }
        memcpy(b->buf + b->len, p, n);
        b->len += n;
}

static void obuf_free(struct obuf *b) {
        free(b->buf);
        *b = (struct obuf){0};
}

static void add_hit(char *hit, size_t size, const char *what) {
        if (strstr(hit, what))
                return;
        size_t n = strlen(hit);
        snprintf(hit + n, size - n, "%s%s", n ? "," : "", what);
}

/* Under the lock: the session is over for `reason` (the first one said
 * stays), and the sandbox is to be killed. */
static int end_with(al_session *s, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int end_with(al_session *s, const char *reason, const char *fmt, ...) {
        if (!s->reason[0]) {
                snprintf(s->reason, sizeof(s->reason), "%s", reason);
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(s->message, sizeof(s->message), fmt, ap);
                va_end(ap);
        }
        s->killing = true;
        pthread_cond_broadcast(&s->cv);
        return AL_LIVE_KILL;
}

/* ---------------------------------------------- on the session's thread */

static int on_output(void *ctx, int stream, const void *buf, size_t n) {
        al_session *s = ctx;
        int act = AL_LIVE_GO;
        pthread_mutex_lock(&s->mu);
        struct cell *c = s->cur;
        if (c && !c->done) {
                struct obuf *b = stream == 1 ? &c->out : &c->err;
                bool was = b->truncated;
                obuf_add(b, buf, n, c->o->output_bytes);
                if (c->o->on_chunk)
                        c->o->on_chunk(c->o->chunk_ctx, stream, buf, n);
                if (b->truncated && !was) {
                        add_hit(c->hit, sizeof(c->hit), "output");
                        if (!c->intr_at)
                                c->intr_at = al_now_ms();
                        act = AL_LIVE_INTERRUPT;
                }
        } else {
                obuf_add(stream == 1 ? &s->pend_out : &s->pend_err, buf, n,
                         AL_SESSION_PENDING_MAX);
        }
        pthread_mutex_unlock(&s->mu);
        return act;
}

/* Whether a frame holds at most AL_SESSION_FRAME_VALUES JSON values,
 * counted on the bytes before anything is allocated: a value is the root,
 * the first element of a container, or what follows a comma; strings are
 * skipped. Malformed text is left to the parser. */
static bool frame_values_ok(const unsigned char *p, size_t n) {
        size_t values = 1;
        bool first = false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = p[i];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                        continue;
                if (first && c != ']' && c != '}')
                        values++;
                first = c == '[' || c == '{';
                if (c == ',')
                        values++;
                else if (c == '"')
                        for (i++; i < n && p[i] != '"'; i++)
                                if (p[i] == '\\')
                                        i++;
                if (values > AL_SESSION_FRAME_VALUES)
                        return false;
        }
        return true;
}

/* One whole reply frame (under the lock). */
static int on_frame(al_session *s) {
        json_error_t je;
        if (!frame_values_ok(s->body, s->body_len))
                return end_with(s, "protocol",
                                "the driver sent a reply of more than %u JSON "
                                "values",
                                AL_SESSION_FRAME_VALUES);
        json_t *o = json_loadb((const char *)s->body, s->body_len, 0, &je);
        const char *type = json_string_value(json_object_get(o, "type"));
        if (!json_is_object(o) || !type) {
                json_decref(o);
                return end_with(s, "protocol",
                                "the driver sent a reply that is not a JSON "
                                "object with a type");
        }
        if (!strcmp(type, "ready") && !s->ready && !s->cur) {
                const char *v =
                        json_string_value(json_object_get(o, "version"));
                snprintf(s->version, sizeof(s->version), "%s", v ? v : "");
                s->ready = true;
                json_decref(o);
                pthread_cond_broadcast(&s->cv);
                return AL_LIVE_GO;
        }
        json_t *seq = json_object_get(o, "seq");
        struct cell *c = s->cur;
        if (strcmp(type, "result") || !c || c->done || !json_is_integer(seq) ||
            (uint64_t)json_integer_value(seq) != c->seq) {
                int act = end_with(s, "protocol",
                                   "the driver sent a reply that is not the "
                                   "answer to the cell being run (%.32s)",
                                   type);
                json_decref(o);
                return act;
        }
        c->reply = o;
        c->done = true;
        pthread_cond_broadcast(&s->cv);
        return AL_LIVE_GO;
}

static int on_reply(void *ctx, int fd) {
        al_session *s = ctx;
        unsigned char tmp[65536];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return AL_LIVE_GO;
        pthread_mutex_lock(&s->mu);
        int act = AL_LIVE_GO;
        if (n <= 0) {
                /* not "protocol" yet: a driver the memory limit killed
                 * closes it too, and the sandbox's end says so (on_tick) */
                if (!s->eof_at)
                        s->eof_at = al_now_ms();
                s->live.reply_fd = safe_close(s->live.reply_fd);
        }
        for (size_t i = 0; act == AL_LIVE_GO && i < (size_t)(n > 0 ? n : 0);) {
                if (!s->in_body) {
                        unsigned char ch = tmp[i++];
                        if (ch == '\n' && s->hdr_len > 0) {
                                s->hdr[s->hdr_len] = '\0';
                                uint64_t want = strtoull(s->hdr, NULL, 10);
                                if (want > AL_SESSION_FRAME_MAX) {
                                        act = end_with(
                                                s, "protocol",
                                                "the driver announced a reply "
                                                "of %" PRIu64
                                                " bytes (over %u)",
                                                want, AL_SESSION_FRAME_MAX);
                                        break;
                                }
                                free(s->body);
                                s->body = malloc(want ? want : 1);
                                if (!s->body) {
                                        act = end_with(s, "protocol",
                                                       "out of memory for a "
                                                       "reply");
                                        break;
                                }
                                s->body_want = want;
                                s->body_len = 0;
                                s->hdr_len = 0;
                                s->in_body = true;
                        } else if (ch >= '0' && ch <= '9' &&
                                   s->hdr_len < HDR_MAX - 2) {
                                s->hdr[s->hdr_len++] = (char)ch;
                                continue;
                        } else {
                                act = end_with(s, "protocol",
                                               "the driver's channel carried "
                                               "bytes that are not a frame "
                                               "header");
                                break;
                        }
                }
                size_t take = s->body_want - s->body_len;
                if (take > (size_t)n - i)
                        take = (size_t)n - i;
                memcpy(s->body + s->body_len, tmp + i, take);
                s->body_len += take;
                i += take;
                if (s->body_len == s->body_want) {
                        s->in_body = false;
                        act = on_frame(s);
                        free(s->body);
                        s->body = NULL;
                }
        }
        pthread_mutex_unlock(&s->mu);
        return act;
}

static int on_tick(void *ctx, const al_live_usage *u) {
        uint64_t cpu_usec = u->cpu_usec, mem_peak = u->memory_peak_bytes;
        al_session *s = ctx;
        int act = AL_LIVE_GO;
        double now = al_now_ms();
        pthread_mutex_lock(&s->mu);
        s->cpu_usec = cpu_usec;
        if (mem_peak > s->mem_peak)
                s->mem_peak = mem_peak;
        s->usage = *u;
        struct cell *c = s->cur;
        if (s->killing)
                act = AL_LIVE_KILL;
        else if (s->eof_at && now >= s->eof_at + EOF_GRACE_MS &&
                 !(c && c->o->script))
                /* (a program closes the channel on purpose: its end is
                 * the sandbox's) */
                act = end_with(s, "protocol", "the driver closed its channel");
        else if (c && !c->done) {
                c->cpu_now = cpu_usec;
                if (!c->intr_at && now >= c->deadline) {
                        add_hit(c->hit, sizeof(c->hit), "wall");
                        c->intr_at = now;
                } else if (!c->intr_at && c->o->cpu_ms && cpu_usec &&
                           (cpu_usec - c->cpu0) / 1000 > c->o->cpu_ms) {
                        add_hit(c->hit, sizeof(c->hit), "cpu");
                        c->intr_at = now;
                }
                if (c->intr_at && !c->intr_sent) {
                        c->intr_sent = true;
                        act = AL_LIVE_INTERRUPT;
                } else if (c->intr_at &&
                           now >= c->intr_at + (double)c->o->grace_ms)
                        act = end_with(s, "interrupt_ignored",
                                       "the cell did not stop within %" PRIu64
                                       " ms of its interrupt (limit: %s)",
                                       c->o->grace_ms,
                                       c->hit[0] ? c->hit : "interrupt");
        }
        pthread_mutex_unlock(&s->mu);
        return act;
}

static void on_ready(void *ctx, int ws_fd, uid_t uid, gid_t gid,
                     const al_protections *prot) {
        al_session *s = ctx;
        pthread_mutex_lock(&s->mu);
        s->ws_fd = ws_fd;
        s->uid = uid;
        s->gid = gid;
        s->prot = *prot;
        /* the driver has its ends now */
        s->live.child_in = safe_close(s->live.child_in);
        s->live.child_out = safe_close(s->live.child_out);
        pthread_mutex_unlock(&s->mu);
}

/* Why the sandbox ended, when nobody said so before. */
static void end_reason(al_session *s, int rc, const al_error *e) {
        const al_result *r = s->final;
        if (s->reason[0])
                return;
        if (rc < 0)
                end_with(s, "start_failed", "%s", e->msg);
        else if (r->status == AL_STATUS_MEMORY_LIMIT)
                end_with(s, "memory", "%s", r->reason);
        else if (r->status == AL_STATUS_TIMEOUT && strstr(r->limits_hit, "cpu"))
                end_with(s, "cpu", "%s", r->reason);
        else if (r->status == AL_STATUS_TIMEOUT)
                end_with(s, "lifetime",
                         "the session reached its maximum "
                         "lifetime");
        else if (r->status == AL_STATUS_REJECTED)
                end_with(s, "start_failed", "%s", r->reason);
        else
                end_with(s, "exited", "the driver ended: %s",
                         r->reason[0] ? r->reason : al_status_name(r->status));
}

static void *session_main(void *arg) {
        al_session *s = arg;
        al_result *r = NULL;
        al_error e = {0};
        /* a server blocks its signals in its threads; so does this one */
        int rc = al_run(s->spec, &r, &e);
        pthread_mutex_lock(&s->mu);
        s->final = r;
        end_reason(s, rc, &e);
        s->ended = true;
        s->ws_fd = safe_close(s->ws_fd);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

/* ------------------------------------------------------ the caller's side */

static al_session *session_free(al_session *s) {
        if (!s)
                return NULL;
        safe_close(s->req_w);
        safe_close(s->live.reply_fd);
        safe_close(s->live.child_in);
        safe_close(s->live.child_out);
        safe_close(s->intr_fd);
        safe_close(s->kill_fd);
        safe_close(s->ws_fd);
        free(s->body);
        obuf_free(&s->pend_out);
        obuf_free(&s->pend_err);
        if (s->final)
                al_result_free(s->final);
        al_spec_free(s->spec);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
}

/* Kill the sandbox and wait for its thread. */
static void session_stop(al_session *s) {
        if (!s->thread_started)
                return;
        uint64_t one = 1;
        (void)!write(s->kill_fd, &one, sizeof(one));
        pthread_join(s->thread, NULL);
        s->thread_started = false;
}

static int timed_wait(al_session *s, double until) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = al_now_ms();
        double left = until > now ? until - now : 0;
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec +=
                (long)((left - (double)(time_t)(left / 1000) * 1000) * 1e6);
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

int al_session_start(al_spec *spec, al_session **ret, al_error *err) {
        al_session *s = calloc(1, sizeof(*s));
        if (!s) {
                al_spec_free(spec);
                return al_error_set(err, ENOMEM, "out of memory");
        }
        s->spec = spec;
        s->req_w = s->intr_fd = s->kill_fd = s->ws_fd = -1;
        s->live = (al_sbx_live){
                .child_in = -1,
                .child_out = -1,
                .reply_fd = -1,
                .interrupt_fd = -1,
                .ctx = s,
                .on_output = on_output,
                .on_reply = on_reply,
                .on_tick = on_tick,
                .on_ready = on_ready,
        };
        pthread_mutex_init(&s->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);

        int rq[2] = {-1, -1}, rp[2] = {-1, -1};
        if (pipe2(rq, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0) {
                int e = errno;
                safe_close(rq[0]);
                safe_close(rq[1]);
                session_free(s);
                return al_error_errno(err, e, "session pipes");
        }
        s->live.child_in = rq[0];
        s->req_w = rq[1];
        s->live.reply_fd = rp[0];
        s->live.child_out = rp[1];
        fcntl(s->req_w, F_SETFL, O_NONBLOCK);
        fcntl(s->live.reply_fd, F_SETFL, O_NONBLOCK);
        s->intr_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->kill_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->intr_fd < 0 || s->kill_fd < 0) {
                int e = errno;
                session_free(s);
                return al_error_errno(err, e, "session eventfd");
        }
        s->live.interrupt_fd = s->intr_fd;
        al_spec_set_live(spec, &s->live);
        al_spec_set_cancel_fd(spec, s->kill_fd);

        /* The sandbox's thread: all signals blocked, as a server's
         * workers have them (the child resets its own). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int pr = pthread_create(&s->thread, NULL, session_main, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pr != 0) {
                session_free(s);
                return al_error_errno(err, pr, "session thread");
        }
        s->thread_started = true;

        double until = al_now_ms() + AL_SESSION_START_MS;
        pthread_mutex_lock(&s->mu);
        while (!s->ready && !s->ended && !s->killing &&
               timed_wait(s, until) != ETIMEDOUT)
                ;
        bool ok = s->ready && !s->ended && !s->killing;
        if (!ok && !s->reason[0] && !s->ended)
                end_with(s, "start_failed",
                         "the driver did not say it was ready within %d ms",
                         AL_SESSION_START_MS);
        pthread_mutex_unlock(&s->mu);
        if (!ok) {
                session_stop(s);
                int r = al_error_set(err, ECHILD, "session did not start: %s",
                                     s->message[0] ? s->message : s->reason);
                session_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void al_cell_result_clear(al_cell_result *r) {
        if (!r)
                return;
        json_decref(r->reply);
        free(r->out);
        free(r->err);
        *r = (al_cell_result){0};
}

const char *al_cell_status_name(enum al_cell_status st) {
        static const char *const names[] = {"ok", "error", "timeout",
                                            "session_dead"};
        return (unsigned)st < ARRAY_SIZE(names) ? names[st] : "session_dead";
}

json_t *al_cell_result_json(const al_cell_result *c, const char *session_id,
                            const char *end_reason) {
        char cid[128];
        snprintf(cid, sizeof(cid), "%s.%" PRIu64, session_id, c->seq);
        json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "id", cid, "session_id",
                              session_id, "seq", (json_int_t)c->seq, "status",
                              al_cell_status_name(c->status));
        if (!o)
                return NULL;
        json_t *ec = json_object_get(c->reply, "execution_count");
        if (json_is_integer(ec))
                json_object_set(o, "execution_count", ec);
        al_json_set_text(o, "stdout", c->out, c->out_len);
        al_json_set_text(o, "stderr", c->err, c->err_len);
        json_object_set_new(o, "stdout_truncated",
                            json_boolean(c->out_truncated));
        json_object_set_new(o, "stderr_truncated",
                            json_boolean(c->err_truncated));
        /* results: MIME bundles, as Jupyter's data */
        json_t *res = json_array(), *r;
        size_t i;
        json_array_foreach(json_object_get(c->reply, "results"), i, r) {
                json_t *d = json_object_get(r, "data");
                if (json_is_object(d))
                        json_array_append(res, d);
        }
        json_object_set_new(o, "results", res);
        json_t *err = json_object_get(c->reply, "error");
        if (json_is_object(err))
                json_object_set(o, "error", err);
        json_t *hit = json_array();
        char hits[sizeof(c->limits_hit)];
        snprintf(hits, sizeof(hits), "%s", c->limits_hit);
        char *sv = NULL;
        for (char *t = strtok_r(hits, ",", &sv); t;
             t = strtok_r(NULL, ",", &sv))
                json_array_append_new(hit, json_string(t));
        json_object_set_new(o, "limits_hit", hit);
        json_object_set_new(o, "wall_ms", json_integer((json_int_t)c->wall_ms));
        json_object_set_new(o, "cpu_ms", json_integer((json_int_t)c->cpu_ms));
        if (c->reason[0])
                json_object_set_new(o, "reason", al_jstr(c->reason));
        if (c->status == AL_CELL_DEAD) {
                json_object_set_new(o, "session_status", json_string("ended"));
                json_object_set_new(o, "session_end_reason",
                                    al_jstr(end_reason && end_reason[0]
                                                    ? end_reason
                                                    : "exited"));
        }
        return o;
}

/* Write the request within the cell's deadline; false if it could not
 * be (the driver is not reading). */
static bool send_request(al_session *s, char kind, uint64_t seq,
                         const char *code, size_t len, double deadline) {
        char hdr[64];
        int hn = snprintf(hdr, sizeof(hdr), "%c %" PRIu64 " %zu\n", kind, seq,
                          len);
        const char *parts[2] = {hdr, code};
        size_t lens[2] = {(size_t)hn, len};
        for (int p = 0; p < 2; p++) {
                size_t off = 0;
                while (off < lens[p]) {
                        ssize_t k =
                                write(s->req_w, parts[p] + off, lens[p] - off);
                        if (k > 0) {
                                off += (size_t)k;
                                continue;
                        }
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return false;
                        double now = al_now_ms();
                        if (now >= deadline)
                                return false;
                        poll(&(struct pollfd){s->req_w, POLLOUT, 0}, 1,
                             (int)(deadline - now) + 1);
                }
        }
        return true;
}

static void take_obuf(struct obuf *b, unsigned char **p, size_t *n,
                      bool *trunc) {
        *p = b->buf;
        *n = b->len;
        *trunc = b->truncated;
        *b = (struct obuf){0};
}

int al_session_exec(al_session *s, const char *code, size_t len,
                    const al_cell_opts *o, al_cell_result *r, al_error *err) {
        *r = (al_cell_result){0};
        struct cell c = {.o = o};
        pthread_mutex_lock(&s->mu);
        if (s->ended || s->killing) {
                r->status = AL_CELL_DEAD;
                snprintf(r->reason, sizeof(r->reason), "%s: %s", s->reason,
                         s->message);
                pthread_mutex_unlock(&s->mu);
                return al_error_set(err, EPIPE, "session ended (%s): %s",
                                    s->reason, s->message);
        }
        if (s->cur) {
                pthread_mutex_unlock(&s->mu);
                return al_error_set(err, EBUSY,
                                    "another cell of this session is running");
        }
        c.seq = ++s->seq;
        c.t0 = al_now_ms();
        c.deadline = c.t0 + (double)o->wall_ms;
        c.cpu0 = c.cpu_now = s->cpu_usec;
        c.u0 = s->usage;
        /* what ran between the cells comes first */
        c.out = s->pend_out;
        c.err = s->pend_err;
        s->pend_out = s->pend_err = (struct obuf){0};
        s->cur = &c;
        s->cells++;
        pthread_mutex_unlock(&s->mu);

        bool sent = send_request(s, o->script ? 'R' : 'X', c.seq, code, len,
                                 c.deadline);

        pthread_mutex_lock(&s->mu);
        if (!sent && !c.done)
                end_with(s, "protocol",
                         "the driver did not take the cell's code");
        /* The session's thread enforces the deadline and the grace; this
         * wait has a bound of its own only so that a bug cannot hang the
         * caller for ever. */
        double hard = c.deadline + (double)o->grace_ms + 5000;
        while (!c.done && !s->ended && timed_wait(s, hard) != ETIMEDOUT)
                ;
        if (!c.done && !s->ended && !s->killing)
                end_with(s, "protocol", "the cell's answer never came");
        if (o->script && !c.done && s->ended && s->final &&
            !strcmp(s->reason, "exited")) {
                /* a program ends with its sandbox: what was still in the
                 * pipes, and its exit code, are the sandbox's result */
                const al_result *f = s->final;
                obuf_add(&c.out, f->stdout_buf, f->stdout_len, o->output_bytes);
                obuf_add(&c.err, f->stderr_buf, f->stderr_len, o->output_bytes);
                c.reply = json_pack(
                        "{s:s,s:s,s:i,s:i}", "type", "result", "status",
                        f->status == AL_STATUS_OK ? "ok" : "error", "exit_code",
                        f->exit_code, "signal", f->signal);
                c.done = c.reply != NULL;
        }
        r->seq = c.seq;
        r->wall_ms = (uint64_t)(al_now_ms() - c.t0);
        r->cpu_ms = c.cpu_now > c.cpu0 ? (c.cpu_now - c.cpu0) / 1000 : 0;
        /* the session's limits the cell ran into, as a run reports them:
         * a process the memory limit killed (the driver may live on), a
         * fork refused, socket buffers or the workspace full */
        char stopped[sizeof(c.hit)]; /* the limits that interrupted it */
        snprintf(stopped, sizeof(stopped), "%s", c.hit);
        const al_live_usage *u = &s->usage;
        if (u->oom_kills > c.u0.oom_kills ||
            (u->sock_limit_hit && !c.u0.sock_limit_hit))
                add_hit(c.hit, sizeof(c.hit), "memory");
        if (u->pids_denied > c.u0.pids_denied)
                add_hit(c.hit, sizeof(c.hit), "pids");
        if (u->disk_full)
                add_hit(c.hit, sizeof(c.hit), "disk");
        r->interrupted = c.intr_sent;
        r->memory_peak_bytes = s->mem_peak;
        snprintf(r->limits_hit, sizeof(r->limits_hit), "%s", c.hit);
        take_obuf(&c.out, &r->out, &r->out_len, &r->out_truncated);
        take_obuf(&c.err, &r->err, &r->err_len, &r->err_truncated);
        r->reply = c.reply;
        if (!c.done) {
                r->status = AL_CELL_DEAD;
                snprintf(r->reason, sizeof(r->reason), "%s: %s", s->reason,
                         s->message);
        } else {
                const char *st =
                        json_string_value(json_object_get(c.reply, "status"));
                r->status = stopped[0]                ? AL_CELL_TIMEOUT
                            : st && !strcmp(st, "ok") ? AL_CELL_OK
                                                      : AL_CELL_ERROR;
                if (stopped[0])
                        snprintf(r->reason, sizeof(r->reason),
                                 "cell interrupted at its %s limit", stopped);
        }
        s->cur = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!c.done)
                return al_error_set(err, EPIPE, "session ended (%s)",
                                    r->reason);
        return 0;
}

int al_session_interrupt(al_session *s) {
        pthread_mutex_lock(&s->mu);
        bool running = s->cur && !s->cur->done;
        if (running && !s->cur->intr_at) {
                s->cur->intr_at = al_now_ms();
                s->cur->intr_sent = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (!running)
                return 0;
        uint64_t one = 1;
        return write(s->intr_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

void al_session_info_get(al_session *s, al_session_info *ret) {
        *ret = (al_session_info){0};
        pthread_mutex_lock(&s->mu);
        ret->alive = !s->ended && !s->killing;
        ret->busy = s->cur != NULL;
        ret->cells = s->cells;
        snprintf(ret->language, sizeof(ret->language), "%s",
                 al_spec_language(s->spec) ? al_spec_language(s->spec) : "");
        snprintf(ret->version, sizeof(ret->version), "%s", s->version);
        snprintf(ret->end_reason, sizeof(ret->end_reason), "%s", s->reason);
        snprintf(ret->end_message, sizeof(ret->end_message), "%s", s->message);
        pthread_mutex_unlock(&s->mu);
}

void al_session_protections(al_session *s, al_protections *ret) {
        pthread_mutex_lock(&s->mu);
        *ret = s->prot;
        pthread_mutex_unlock(&s->mu);
}

int al_session_workspace(al_session *s, int *ws_fd, uid_t *uid, gid_t *gid) {
        int r = -EPIPE;
        pthread_mutex_lock(&s->mu);
        if (!s->ended && !s->killing && s->ws_fd >= 0) {
                *ws_fd = fcntl(s->ws_fd, F_DUPFD_CLOEXEC, 3);
                *uid = s->uid;
                *gid = s->gid;
                r = *ws_fd < 0 ? -errno : 0;
        }
        pthread_mutex_unlock(&s->mu);
        return r;
}

void al_session_kill(al_session *s, const char *reason) {
        pthread_mutex_lock(&s->mu);
        if (!s->ended)
                end_with(s, reason, "the session was ended (%s)", reason);
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        (void)!write(s->kill_fd, &one, sizeof(one));
}

void al_session_close(al_session *s, const char *reason, al_result **ret_final,
                      al_session_info *ret_info) {
        if (!s)
                return;
        pthread_mutex_lock(&s->mu);
        if (!s->ended)
                end_with(s, reason, "the session was ended (%s)", reason);
        pthread_mutex_unlock(&s->mu);
        session_stop(s);
        if (ret_info)
                al_session_info_get(s, ret_info);
        if (ret_final) {
                *ret_final = s->final;
                s->final = NULL;
        }
        session_free(s);
}
