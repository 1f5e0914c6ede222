/* SPDX-License-Identifier: MIT */
/*
 * airlock serve: the HTTP front on libmicrohttpd.
 *
 * One polling thread (epoll) reads requests and answers the cheap routes
 * itself. An execution is suspended (MHD_suspend_connection) and put on a
 * bounded queue that a fixed pool of workers takes from; a full queue is a
 * 503 with Retry-After at once, a request that waited longer than the
 * queue timeout a 503 without running.
 *
 * Every request is decided on its headers first (srv_admit: route,
 * method, key, scope, declared size) before a byte of its body is read:
 * a refused request never has its body kept. Only the routes that take a
 * body keep one, into a buffer up to --max-body (past it the rest is
 * drained and the request answered 413), all bodies together within
 * --max-body-total. A connection silent for --idle-timeout is closed, a
 * body must arrive within --body-timeout, one address holds at most
 * --max-per-ip connections. Threads, queue and memory are bounded by
 * configuration, never by load. Reads of the audit log go the same way
 * as executions to a small pool of reader threads of their own, so a
 * large read never holds the polling thread and reads and executions
 * never wait for each other's threads.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "json.h"
#include "serve.h"
#include "util.h"

/* libmicrohttpd is loaded with dlopen() by airlock serve alone, so that
 * no other command pays for mapping it and its TLS stack (gnutls, nettle,
 * gmp, p11-kit, ...: 10 more libraries) at every start. The table holds
 * every function this file calls, typed from the header. */
#define MHD_SONAME "libmicrohttpd.so.12"
static struct {
        pthread_once_t once;
        bool ok;
        __typeof__(&MHD_start_daemon) start_daemon;
        __typeof__(&MHD_stop_daemon) stop_daemon;
        __typeof__(&MHD_quiesce_daemon) quiesce_daemon;
        __typeof__(&MHD_get_daemon_info) get_daemon_info;
        __typeof__(&MHD_get_connection_info) get_connection_info;
        __typeof__(&MHD_get_connection_values) get_connection_values;
        __typeof__(&MHD_lookup_connection_value) lookup_connection_value;
        __typeof__(&MHD_suspend_connection) suspend_connection;
        __typeof__(&MHD_resume_connection) resume_connection;
        __typeof__(&MHD_create_response_from_buffer)
                create_response_from_buffer;
        __typeof__(&MHD_create_response_from_callback)
                create_response_from_callback;
        __typeof__(&MHD_add_response_header) add_response_header;
        __typeof__(&MHD_queue_response) queue_response;
        __typeof__(&MHD_destroy_response) destroy_response;
} mhd = {.once = PTHREAD_ONCE_INIT};

static void mhd_load(void) {
        void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return;
#define SYM(field)                                                             \
        if (!(*(void **)&mhd.field = dlsym(h, "MHD_" #field)))                 \
                return;
        SYM(start_daemon);
        SYM(stop_daemon);
        SYM(quiesce_daemon);
        SYM(get_daemon_info);
        SYM(get_connection_info);
        SYM(get_connection_values);
        SYM(lookup_connection_value);
        SYM(suspend_connection);
        SYM(resume_connection);
        SYM(create_response_from_buffer);
        SYM(create_response_from_callback);
        SYM(add_response_header);
        SYM(queue_response);
        SYM(destroy_response);
#undef SYM
        mhd.ok = true;
}

/* 0, or -ENOSYS with err saying which package brings the library. */
static int mhd_init(al_error *err) {
        pthread_once(&mhd.once, mhd_load);
        if (!mhd.ok)
                return al_error_set(err, ENOSYS,
                                    MHD_SONAME " cannot be loaded "
                                               "(Debian: apt-get install "
                                               "libmicrohttpd12)");
        return 0;
}

/* A streamed answer (server-sent events): the worker appends events as
 * the code writes, libmicrohttpd's thread sends them; when there is
 * nothing to send, the reader parks the connection and the next append
 * wakes it. Output events that a slow reader leaves unread are held up to
 * SSE_HOLD_MAX, then dropped (and counted): the result event at the end
 * carries the whole output anyway. */
#define SSE_HOLD_MAX (1u << 20)
struct sse {
        pthread_mutex_t mu;
        char *buf;
        size_t off, len, cap;
        bool ended;     /* the last event is in */
        bool suspended; /* the reader parked the connection */
        bool gone;      /* libmicrohttpd freed the response */
        uint64_t dropped;
        struct MHD_Connection *c;
        int refs; /* the response's and the worker's */
};

struct conn {
        struct MHD_Connection *c;
        struct sse *sse; /* a streamed answer, or NULL */
        bool in_worker;  /* a worker holds it (a stream is not suspended) */
        bool orphan;     /* closed while the worker held it: its to free */
        char *body;
        size_t len, cap;
        size_t reserved; /* of fr.buffered, for this body */
        bool keep_body;  /* the route takes a body */
        bool too_large;
        bool over_budget; /* --max-body-total reached while reading */
        bool answered;    /* the response is queued */
        size_t drained;   /* bytes of a body dropped unread */
        bool queued, done;
        double t0, t_queued;
        struct srv_request rq;
        struct srv_response rs;
        char method[16], path[512], peer[64];
        char *auth, *api_key, *origin, *mcp_version;
        char *args[2 * SRV_MAX_ARGS + 1]; /* query: name, value, ..., NULL */
        size_t nargs;
        bool too_many_args;
};

/* Reader threads for audit reads, and the reads that may wait for one:
 * each read is bounded (a page of at most 4 MiB), so two keep up. */
#define SRV_READERS 2
#define SRV_READ_QUEUE 32

/* Threads that take suspended requests from a bounded ring. */
struct pool {
        pthread_cond_t more;
        struct conn **q; /* ring of cap */
        size_t cap, head, n;
        pthread_t *threads;
        unsigned nthreads;
        long active;
        bool reads; /* the audit readers (else the execution workers) */
};

#define MAX_CONNECTIONS 1024 /* at once, all addresses together */

static struct {
        const struct srv_config *cfg;
        struct MHD_Daemon *d;
        pthread_mutex_t lock; /* both pools */
        bool stop;
        struct pool exec, reads;
        size_t buffered; /* bytes reserved for bodies (the MHD thread) */
} fr = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .exec = {.more = PTHREAD_COND_INITIALIZER},
        .reads = {.more = PTHREAD_COND_INITIALIZER, .reads = true}};

/* The pool's gauges; under fr.lock. */
static void pool_metrics(const struct pool *p) {
        if (p->reads)
                srv_metrics_reads((unsigned)p->n, (unsigned)p->active);
        else
                srv_metrics_queue((unsigned)p->n, (unsigned)p->active);
}

/* Every open connection, for the header deadline: a client must finish a
 * request's headers within --header-timeout of its connection (or of the
 * end of its previous request); libmicrohttpd calls nothing while headers
 * trickle in, so the main thread sweeps once a second and shuts down
 * (never closes: the fd stays libmicrohttpd's) the sockets past it. The
 * CLOSED notification comes before libmicrohttpd closes the fd, under
 * the same lock, so a swept fd is never another connection's. */
struct pending {
        int fd;
        double since;    /* accepted, or its last request ended */
        bool in_request; /* headers are in: other deadlines apply */
        bool cut;
        unsigned char addr[16]; /* the client (IPv4, or an IPv6 /64) */
        struct pending *prev, *next;
};
static struct {
        pthread_mutex_t lock;
        struct pending *head;
        size_t n;
        uint64_t evicted; /* since the last sweep's log line */
} conns = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Past this many connections, a new one evicts the one idle the longest
 * (libmicrohttpd refuses at MAX_CONNECTIONS itself, when every one is busy
 * with a request). */
#define EVICT_AT (MAX_CONNECTIONS - 32)

/* The client's address as the per-address cap counts it: IPv4 whole, IPv6
 * by its /64 (one host has a /64 to choose addresses from). */
static void conn_addr(struct MHD_Connection *c, unsigned char out[16]) {
        memset(out, 0, 16);
        const union MHD_ConnectionInfo *ci =
                mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
                memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        else if (sa && sa->sa_family == AF_INET6) {
                memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
                out[15] = 6; /* not an IPv4 address with zeros */
        }
}

/* Under conns.lock: cut the connection (of addr, or any when NULL) that
 * has waited for headers the longest; false when every one is in a
 * request. */
static bool evict_idlest(const unsigned char *addr) {
        struct pending *best = NULL;
        for (struct pending *p = conns.head; p; p = p->next)
                if (!p->in_request && !p->cut &&
                    (!addr || !memcmp(p->addr, addr, 16)) &&
                    (!best || p->since < best->since))
                        best = p;
        if (!best)
                return false;
        shutdown(best->fd, SHUT_RDWR);
        best->cut = true;
        conns.evicted++;
        return true;
}

/* Under conns.lock, for a new connection p: the per-address cap and the
 * global one make room by cutting idle connections (the longest idle
 * first), so that a client holding connections open with trickled or no
 * headers only ever cuts its own, and a new request (a health check from
 * the same host) is served at once; a new connection past a cap where
 * every other is in a request is the one cut. */
static void make_room(struct pending *p) {
        unsigned cap = fr.cfg->max_per_ip;
        if (cap) {
                unsigned same = 0;
                for (struct pending *q = conns.head; q; q = q->next)
                        same += q != p && !q->cut &&
                                !memcmp(q->addr, p->addr, 16);
                if (same >= cap && !evict_idlest(p->addr)) {
                        shutdown(p->fd, SHUT_RDWR);
                        p->cut = true;
                        conns.evicted++;
                        return;
                }
        }
        if (conns.n > EVICT_AT)
                evict_idlest(NULL);
}

static double mono(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One JSON line per request on stderr; method and path are the client's
 * bytes, so the line is built by jansson (escaped, invalid UTF-8
 * replaced): no request can forge a line or a field. */
static void log_request(const struct conn *k) {
        char ts[32];
        al_utc_now(ts);
        srv_api_log(json_pack(
                "{s:s,s:s,s:o,s:o,s:i,s:s,s:s,s:s,s:s,s:f}", "event",
                "airlock.serve.request", "ts", ts, "method", al_jstr(k->method),
                "path", al_jstr(k->path), "status", (int)k->rs.status, "code",
                k->rs.log_code, "key", k->rs.log_key[0] ? k->rs.log_key : "-",
                "id", k->rs.audit_id, "peer", k->peer, "latency_ms",
                (double)(long long)((mono() - k->t0) * 10000.0) / 10.0));
}

static void conn_free(struct conn *k);
static void log_request(const struct conn *k);

static void sse_put(struct sse *e) {
        pthread_mutex_lock(&e->mu);
        bool last = --e->refs == 0;
        pthread_mutex_unlock(&e->mu);
        if (!last)
                return;
        pthread_mutex_destroy(&e->mu);
        free(e->buf);
        free(e);
}

/* Append bytes; an output event (!force) only within SSE_HOLD_MAX. */
static void sse_append(struct sse *e, const char *p, size_t n, bool force) {
        pthread_mutex_lock(&e->mu);
        if (e->gone || (!force && e->len - e->off + n > SSE_HOLD_MAX)) {
                e->dropped += n;
                pthread_mutex_unlock(&e->mu);
                return;
        }
        if (e->off && e->off == e->len)
                e->off = e->len = 0;
        if (e->len + n > e->cap) {
                size_t nc = e->cap ? e->cap : 16384;
                while (nc < e->len + n)
                        nc *= 2;
                char *b = realloc(e->buf, nc);
                if (!b) {
                        e->dropped += n;
                        pthread_mutex_unlock(&e->mu);
                        return;
                }
                e->buf = b;
                e->cap = nc;
        }
        memcpy(e->buf + e->len, p, n);
        e->len += n;
        if (e->suspended) {
                e->suspended = false;
                mhd.resume_connection(e->c);
        }
        pthread_mutex_unlock(&e->mu);
}

static void sse_event(struct sse *e, const char *name, json_t *data,
                      bool force) {
        char *j = json_dumps(data, JSON_COMPACT);
        json_decref(data);
        if (!j)
                return;
        size_t n = strlen(name) + strlen(j) + 32;
        char *ev = malloc(n);
        if (ev) {
                int k = snprintf(ev, n, "event: %s\ndata: %s\n\n", name, j);
                sse_append(e, ev, (size_t)k, force);
        }
        free(ev);
        free(j);
}

/* srv_request.on_chunk: the code's output as it comes (the sandbox's
 * thread: quick, never blocks). */
static void sse_chunk(void *ctx, int stream, const void *buf, size_t n) {
        sse_event(ctx, stream == 2 ? "stderr" : "stdout",
                  json_pack("{s:o}", "text", al_jstrn(buf, n)), false);
}

/* The answer, as the last event: "result" for a 200, else "error" with
 * the status; then the end. */
static void sse_finish(struct sse *e, const struct srv_response *rs) {
        json_t *o =
                rs->body ? json_loadb(rs->body, rs->len, JSON_ALLOW_NUL, NULL)
                         : NULL;
        if (!o)
                o = json_object();
        if (rs->status != 200 && rs->status != 201)
                json_object_set_new(o, "http_status",
                                    json_integer((json_int_t)rs->status));
        pthread_mutex_lock(&e->mu);
        uint64_t dropped = e->dropped;
        pthread_mutex_unlock(&e->mu);
        if (dropped)
                json_object_set_new(o, "stream_dropped_bytes",
                                    json_integer((json_int_t)dropped));
        sse_event(e,
                  rs->status == 200 || rs->status == 201 ? "result" : "error",
                  o, true);
        pthread_mutex_lock(&e->mu);
        e->ended = true;
        if (e->suspended && !e->gone) {
                e->suspended = false;
                mhd.resume_connection(e->c);
        }
        pthread_mutex_unlock(&e->mu);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
        (void)pos;
        struct sse *e = cls;
        pthread_mutex_lock(&e->mu);
        size_t n = e->len - e->off;
        if (n > max)
                n = max;
        if (n) {
                memcpy(buf, e->buf + e->off, n);
                e->off += n;
        } else if (e->ended) {
                pthread_mutex_unlock(&e->mu);
                return MHD_CONTENT_READER_END_OF_STREAM;
        } else {
                /* nothing yet: parked until the next append */
                e->suspended = true;
                mhd.suspend_connection(e->c);
        }
        pthread_mutex_unlock(&e->mu);
        return (ssize_t)n;
}

static void sse_gone(void *cls) {
        struct sse *e = cls;
        pthread_mutex_lock(&e->mu);
        e->gone = true;
        pthread_mutex_unlock(&e->mu);
        sse_put(e);
}

/* Whether the client asked for a stream: Accept: text/event-stream, or
 * "stream": true in the body of a route that streams. */
static bool wants_stream(struct conn *k) {
        const char *p = k->path;
        size_t n = strlen(p);
        bool route = !strcmp(k->method, "POST") &&
                     (!strcmp(p, "/v1/execute") ||
                      (!strncmp(p, "/v1/sessions/", 13) && n > 8 &&
                       !strcmp(p + n - 8, "/execute")));
        if (!route)
                return false;
        const char *acc =
                mhd.lookup_connection_value(k->c, MHD_HEADER_KIND, "Accept");
        if (acc && strstr(acc, "text/event-stream"))
                return true;
        if (!k->body || !k->len || !memmem(k->body, k->len, "\"stream\"", 8) ||
            !srv_api_json_within_bounds(k->body, k->len))
                return false;
        json_t *o = json_loadb(k->body, k->len, 0, NULL);
        bool on = json_is_true(json_object_get(o, "stream"));
        json_decref(o);
        return on;
}

/* Answer k as a stream now (200, text/event-stream); the worker's events
 * follow. false if the response could not be made. */
static bool stream_start(struct conn *k) {
        struct sse *e = calloc(1, sizeof(*e));
        if (!e)
                return false;
        pthread_mutex_init(&e->mu, NULL);
        e->c = k->c;
        e->refs = 2;
        struct MHD_Response *r = mhd.create_response_from_callback(
                MHD_SIZE_UNKNOWN, 16384, sse_read, e, sse_gone);
        if (!r) {
                pthread_mutex_destroy(&e->mu);
                free(e);
                return false;
        }
        mhd.add_response_header(r, "Content-Type", "text/event-stream");
        mhd.add_response_header(r, "Cache-Control", "no-store");
        mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
        mhd.add_response_header(r, "X-Accel-Buffering", "no");
        enum MHD_Result ok = mhd.queue_response(k->c, 200, r);
        mhd.destroy_response(r);
        if (ok != MHD_YES) {
                sse_gone(e); /* never sent: both references */
                sse_put(e);
                return false;
        }
        k->sse = e;
        k->answered = true;
        k->rq.on_chunk = sse_chunk;
        k->rq.chunk_ctx = e;
        return true;
}

static enum MHD_Result respond(struct conn *k) {
        /* the body goes to libmicrohttpd as it is, which frees it once
         * sent: one copy of a response in memory, not two */
        struct MHD_Response *r = mhd.create_response_from_buffer(
                k->rs.body ? k->rs.len : 0,
                k->rs.body ? k->rs.body : (char *)"",
                k->rs.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!r)
                return MHD_NO;
        k->rs.body = NULL;
        mhd.add_response_header(r, "Content-Type",
                                k->rs.content_type ? k->rs.content_type
                                                   : "application/json");
        mhd.add_response_header(r, "Cache-Control", "no-store");
        mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
        if (k->rs.allow)
                mhd.add_response_header(r, "Allow", k->rs.allow);
        if (k->rs.retry_after) {
                char ra[16];
                snprintf(ra, sizeof(ra), "%u", k->rs.retry_after);
                mhd.add_response_header(r, "Retry-After", ra);
        }
        enum MHD_Result ret = mhd.queue_response(k->c, k->rs.status, r);
        mhd.destroy_response(r);
        k->answered = true;
        srv_metrics_request(srv_route_of(k->path), k->rs.status,
                            mono() - k->t0);
        log_request(k);
        return ret;
}

static void *worker_main(void *arg) {
        struct pool *p = arg;
        if (p->reads)
                srv_api_reader_start();
        for (;;) {
                pthread_mutex_lock(&fr.lock);
                while (!p->n && !fr.stop)
                        pthread_cond_wait(&p->more, &fr.lock);
                if (!p->n && fr.stop) {
                        pthread_mutex_unlock(&fr.lock);
                        break;
                }
                struct conn *k = p->q[p->head];
                p->head = (p->head + 1) % p->cap;
                p->n--;
                p->active++;
                pool_metrics(p);
                bool stopping = fr.stop;
                pthread_mutex_unlock(&fr.lock);

                /* refusals of executions are audited; reads of the audit
                 * log are logged, not audited */
                if (stopping) {
                        srv_api_error(&k->rs, 503, "shutting_down", NULL,
                                      "the server is shutting down");
                        if (!p->reads)
                                srv_refused(&k->rq, &k->rs);
                } else if (mono() - k->t_queued > fr.cfg->queue_timeout_s) {
                        k->rs.retry_after = 1;
                        srv_api_error(&k->rs, 503, "queue_timeout", NULL,
                                      "waited more than %u s for a %s",
                                      fr.cfg->queue_timeout_s,
                                      p->reads ? "reader" : "worker");
                        if (!p->reads)
                                srv_refused(&k->rq, &k->rs);
                } else
                        srv_handle(&k->rq, &k->rs);

                /* k belongs to libmicrohttpd again after the resume */
                al_result *left = k->rs.leftover;
                k->rs.leftover = NULL;
                if (k->sse) {
                        /* a stream: its last event; the connection was
                         * answered already, and may be gone */
                        sse_finish(k->sse, &k->rs);
                        srv_metrics_request(srv_route_of(k->path), k->rs.status,
                                            mono() - k->t0);
                        log_request(k);
                        pthread_mutex_lock(&fr.lock);
                        k->in_worker = false;
                        bool orphan = k->orphan;
                        pthread_mutex_unlock(&fr.lock);
                        if (orphan)
                                conn_free(k);
                } else {
                        pthread_mutex_lock(&fr.lock);
                        k->done = true;
                        pthread_mutex_unlock(&fr.lock);
                        mhd.resume_connection(k->c);
                }
                al_result_free(left);
                pthread_mutex_lock(&fr.lock);
                p->active--;
                pool_metrics(p);
                pthread_mutex_unlock(&fr.lock);
        }
        if (p->reads)
                srv_api_reader_stop();
        return NULL;
}

/* Start up to n threads of p with a ring of cap: how many started. */
static unsigned pool_start(struct pool *p, unsigned n, unsigned cap) {
        p->cap = cap;
        if (!(p->q = calloc(cap, sizeof(*p->q))) ||
            !(p->threads = calloc(n, sizeof(*p->threads))))
                return 0;
        for (unsigned i = 0; i < n; i++)
                if (pthread_create(&p->threads[i], NULL, worker_main, p) == 0)
                        p->nthreads++;
        return p->nthreads;
}

static void pool_join(struct pool *p) {
        for (unsigned i = 0; i < p->nthreads; i++)
                pthread_join(p->threads[i], NULL);
        free(p->q);
        free(p->threads);
}

static char *dup_header(struct MHD_Connection *c, const char *name) {
        const char *v = mhd.lookup_connection_value(c, MHD_HEADER_KIND, name);
        return v ? strdup(v) : NULL;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value) {
        (void)kind;
        struct conn *k = cls;
        if (k->nargs == SRV_MAX_ARGS) {
                k->too_many_args = true;
                return MHD_NO;
        }
        char *n = strdup(key), *v = strdup(value ? value : "");
        if (!n || !v) {
                free(n);
                free(v);
                k->too_many_args = true;
                return MHD_NO;
        }
        k->args[2 * k->nargs] = n;
        k->args[2 * k->nargs + 1] = v;
        k->nargs++;
        return MHD_YES;
}

/* Requests refused on their headers: a body declared at most this long is
 * read and dropped, so the connection stays usable (closing it with unread
 * bytes would reset it, and the client could lose the answer); a longer
 * one, one of unknown length (chunked) or one the client holds back until
 * told to go on (Expect: 100-continue) is not read at all: the answer goes
 * out at once and the connection is closed after it. */
#define DRAIN_MAX (64 * 1024)

/* Reserve room for a body of want bytes (with its NUL) in --max-body-total;
 * false when the bodies held already leave no room. */
static bool reserve(struct conn *k, size_t want) {
        if (want <= k->reserved)
                return true;
        size_t more = want - k->reserved;
        if (fr.buffered + more > fr.cfg->max_body_total)
                return false;
        fr.buffered += more;
        k->reserved = want;
        return true;
}

static void busy(struct conn *k) {
        k->rs.retry_after = 1;
        srv_api_error(&k->rs, 503, "server_busy", NULL,
                      "the server holds %zu bytes of request bodies already "
                      "(--max-body-total); retry later",
                      fr.buffered);
        srv_refused(&k->rq, &k->rs);
}

static void log_event(const struct conn *k, const char *event) {
        char ts[32];
        al_utc_now(ts);
        srv_api_log(json_pack("{s:s,s:s,s:o,s:o,s:s,s:I}", "event", event, "ts",
                              ts, "method", al_jstr(k->method), "path",
                              al_jstr(k->path), "peer", k->peer, "body_bytes",
                              (json_int_t)k->len));
}

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
        (void)cls;
        struct pending *p = *socket_context;
        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = mhd.get_connection_info(
                        c, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (!ci || !(p = calloc(1, sizeof(*p))))
                        return; /* not swept: the idle timeout still holds */
                p->fd = ci->connect_fd;
                p->since = mono();
                conn_addr(c, p->addr);
                pthread_mutex_lock(&conns.lock);
                p->next = conns.head;
                if (conns.head)
                        conns.head->prev = p;
                conns.head = p;
                conns.n++;
                make_room(p);
                pthread_mutex_unlock(&conns.lock);
                *socket_context = p;
        } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && p) {
                pthread_mutex_lock(&conns.lock);
                if (p->prev)
                        p->prev->next = p->next;
                else
                        conns.head = p->next;
                if (p->next)
                        p->next->prev = p->prev;
                conns.n--;
                pthread_mutex_unlock(&conns.lock);
                free(p);
                *socket_context = NULL;
        }
}

/* A request's headers are in (true), or it has ended and the connection
 * waits for the next one's (false). */
static void conn_in_request(struct MHD_Connection *c, bool in) {
        const union MHD_ConnectionInfo *ci =
                mhd.get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        struct pending *p = ci ? ci->socket_context : NULL;
        if (!p)
                return;
        pthread_mutex_lock(&conns.lock);
        p->in_request = in;
        p->since = mono();
        pthread_mutex_unlock(&conns.lock);
}

/* The main thread, once a second: connections whose headers are late. */
static void sweep_headers(void) {
        double now = mono();
        unsigned cut = 0;
        pthread_mutex_lock(&conns.lock);
        for (struct pending *p = conns.head; p; p = p->next)
                if (!p->in_request && !p->cut &&
                    now - p->since > fr.cfg->header_timeout_s) {
                        shutdown(p->fd, SHUT_RDWR);
                        p->cut = true;
                        cut++;
                }
        uint64_t evicted = conns.evicted;
        conns.evicted = 0;
        pthread_mutex_unlock(&conns.lock);
        if (evicted) {
                char ts[32];
                al_utc_now(ts);
                srv_api_log(json_pack("{s:s,s:s,s:I}", "event",
                                      "airlock.serve.evicted", "ts", ts,
                                      "connections", (json_int_t)evicted));
        }
        if (cut) {
                char ts[32];
                al_utc_now(ts);
                srv_api_log(json_pack("{s:s,s:s,s:i,s:i}", "event",
                                      "airlock.serve.header_timeout", "ts", ts,
                                      "connections", (int)cut,
                                      "header_timeout_s",
                                      (int)fr.cfg->header_timeout_s));
        }
}

/* The first call: the headers are in, no byte of the body is read. */
static enum MHD_Result on_headers(struct conn *k, struct MHD_Connection *c,
                                  const char *url, const char *method) {
        k->c = c;
        k->t0 = mono();
        conn_in_request(c, true);
        snprintf(k->method, sizeof(k->method), "%s", method);
        snprintf(k->path, sizeof(k->path), "%s", url);
        const union MHD_ConnectionInfo *ci =
                mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;
                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET,
                                  &((const struct sockaddr_in *)sa)->sin_addr,
                                  k->peer, sizeof(k->peer));
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6,
                                  &((const struct sockaddr_in6 *)sa)->sin6_addr,
                                  k->peer, sizeof(k->peer));
        }
        mhd.get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, k);
        k->auth = dup_header(c, "Authorization");
        k->api_key = dup_header(c, "X-API-Key");
        k->origin = dup_header(c, "Origin");
        k->mcp_version = dup_header(c, "MCP-Protocol-Version");
        const char *cl = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Content-Length");
        const char *ex =
                mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        const char *te = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Transfer-Encoding");
        uint64_t declared = 0;
        /* neither header: no body; chunked (whatever Content-Length also
         * says, libmicrohttpd reads the chunks): a length not known */
        bool known = !te && (!cl || al_parse_u64(cl, &declared) == 0);
        /* a declared length over the cap: refused before it is read */
        if (known && declared > fr.cfg->max_body)
                k->too_large = true;
        k->rq = (struct srv_request){.method = k->method,
                                     .path = k->path,
                                     .auth = k->auth,
                                     .api_key = k->api_key,
                                     .peer = k->peer,
                                     .body = "",
                                     .body_too_large = k->too_large,
                                     .origin = k->origin,
                                     .mcp_version = k->mcp_version,
                                     .args = (const char *const *)k->args,
                                     .too_many_args = k->too_many_args};
        if (srv_route_of(k->path) == SRV_ROUTE_MCP)
                k->rq.source = "mcp";
        k->keep_body = srv_takes_body(method, k->path);
        bool refused = srv_admit(&k->rq, &k->rs) < 0;
        /* a route that takes no body drops one of at most DRAIN_MAX; a
         * longer or unknown one is refused before it is read */
        if (!refused && !k->keep_body && (!known || declared > DRAIN_MAX)) {
                srv_api_error(&k->rs, 413, "body_too_large", NULL,
                              "%s %s takes no request body", k->method,
                              k->path);
                refused = true;
        }
        if (!refused && k->keep_body && known && declared &&
            !reserve(k, declared + 1)) {
                busy(k);
                refused = true;
        }
        if (!refused)
                return MHD_YES;
        k->keep_body = false;
        bool held_back = ex && strcasestr(ex, "100-continue");
        if (known && declared <= DRAIN_MAX && !held_back)
                return MHD_YES; /* drained, answered at the end */
        return respond(k);
}

/* A piece of the body: kept (up to the caps) or dropped. */
static enum MHD_Result on_body(struct conn *k, const char *upload, size_t n) {
        if (mono() - k->t0 > fr.cfg->body_timeout_s) {
                /* a body that trickles in: closed, nothing answered */
                log_event(k, "airlock.serve.body_timeout");
                return MHD_NO;
        }
        if (!k->keep_body) {
                /* dropped, but only so much: a body longer than it said
                 * (or than a refusal reads) closes the connection */
                k->drained += n;
                return k->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        if (k->too_large || k->over_budget)
                return MHD_YES;
        if (k->len + n > fr.cfg->max_body) {
                k->too_large = true;
                return MHD_YES;
        }
        if (k->len + n + 1 > k->cap) {
                size_t cap = k->cap ? k->cap : 16384;
                while (cap < k->len + n + 1)
                        cap *= 2;
                if (cap > fr.cfg->max_body + 1)
                        cap = fr.cfg->max_body + 1;
                if (k->reserved > cap)
                        cap = k->reserved; /* the declared length */
                if (!reserve(k, cap)) {
                        k->over_budget = true;
                        return MHD_YES;
                }
                char *b = realloc(k->body, cap);
                if (!b)
                        return MHD_NO;
                k->body = b;
                k->cap = cap;
        }
        memcpy(k->body + k->len, upload, n);
        k->len += n;
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
        (void)cls;
        (void)version;
        struct conn *k = *con_cls;
        if (!k) {
                if (!(k = calloc(1, sizeof(*k))))
                        return MHD_NO;
                *con_cls = k;
                return on_headers(k, c, url, method);
        }
        if (*upload_size) {
                size_t n = *upload_size;
                *upload_size = 0;
                return k->answered ? MHD_YES : on_body(k, upload, n);
        }
        if (k->answered)
                return MHD_YES;
        if (k->done) {
                /* the run is over: its body no longer holds a share of
                 * --max-body-total while the response goes out */
                free(k->body);
                k->body = NULL;
                k->len = k->cap = 0;
                fr.buffered -= k->reserved;
                k->reserved = 0;
                return respond(k);
        }
        if (k->rs.status)
                return respond(k);
        k->rq.body = k->body ? k->body : "";
        k->rq.body_len = k->len;
        k->rq.body_too_large = k->too_large;
        if (k->over_budget) {
                busy(k);
                return respond(k);
        }
        struct pool *p = srv_is_execution(method, k->path)    ? &fr.exec
                         : srv_is_audit_read(method, k->path) ? &fr.reads
                                                              : NULL;
        if (!p) {
                srv_handle(&k->rq, &k->rs);
                return respond(k);
        }
        /* to the workers: suspended first, so that the resume (from the
         * worker) always comes after it; a stream is answered now and
         * not suspended (its reader parks it when it has nothing) */
        bool stream = p == &fr.exec && wants_stream(k);
        pthread_mutex_lock(&fr.lock);
        if (fr.stop || p->n == p->cap) {
                bool stop = fr.stop;
                pthread_mutex_unlock(&fr.lock);
                k->rs.retry_after = 1;
                if (stop)
                        srv_api_error(&k->rs, 503, "shutting_down", NULL,
                                      "the server is shutting down");
                else
                        srv_api_error(&k->rs, 503, "queue_full", NULL,
                                      "all %u %s are busy and %zu requests "
                                      "wait; retry later",
                                      p->nthreads,
                                      p->reads ? "readers" : "workers", p->cap);
                if (!p->reads)
                        srv_refused(&k->rq, &k->rs);
                return respond(k);
        }
        if (stream && stream_start(k))
                k->in_worker = true;
        else
                mhd.suspend_connection(c);
        k->queued = true;
        k->t_queued = mono();
        p->q[(p->head + p->n) % p->cap] = k;
        p->n++;
        pool_metrics(p);
        pthread_cond_signal(&p->more);
        pthread_mutex_unlock(&fr.lock);
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        (void)cls;
        (void)c;
        (void)toe;
        struct conn *k = *con_cls;
        conn_in_request(c, false);
        if (!k)
                return;
        *con_cls = NULL;
        fr.buffered -= k->reserved;
        k->reserved = 0;
        /* a stream whose client left while its worker runs: the worker
         * frees it */
        pthread_mutex_lock(&fr.lock);
        bool held = k->in_worker;
        k->orphan = held;
        pthread_mutex_unlock(&fr.lock);
        if (!held)
                conn_free(k);
}

static void conn_free(struct conn *k) {
        srv_api_release(&k->rs);
        if (k->sse)
                sse_put(k->sse);
        free(k->body);
        free(k->rs.body);
        free(k->auth);
        free(k->api_key);
        free(k->origin);
        free(k->mcp_version);
        for (size_t i = 0; i < 2 * k->nargs; i++)
                free(k->args[i]);
        free(k);
}

/* HOST:PORT ([::1]:8080, 127.0.0.1:0, localhost:8080) -> a listening
 * socket; the port actually bound into *port. */
static int listen_on(const char *spec, int *port, al_error *err) {
        char host[256];
        const char *colon = strrchr(spec, ':');
        if (!colon || colon == spec || !colon[1])
                return al_error_set(err, EINVAL,
                                    "--listen wants HOST:PORT, got '%s'", spec);
        size_t hl = (size_t)(colon - spec);
        if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
                spec++;
                hl -= 2;
        }
        if (hl >= sizeof(host))
                return al_error_set(err, EINVAL, "--listen: host too long");
        memcpy(host, spec, hl);
        host[hl] = '\0';
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                        *ai = NULL;
        int g = getaddrinfo(host, colon + 1, &hints, &ai);
        if (g)
                return al_error_set(err, EINVAL, "--listen %s: %s", spec,
                                    gai_strerror(g));
        int fd = -1, e = 0;
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        e = errno;
                        continue;
                }
                int one = 1;
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 ||
                    listen(fd, 512) < 0) {
                        e = errno;
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        if (fd < 0)
                return al_error_errno(err, e, "cannot listen on %s", spec);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *port = ntohs(ss.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)&ss)->sin6_port
                              : ((struct sockaddr_in *)&ss)->sin_port);
        return fd;
}

static char *read_file(const char *path, al_error *err) {
        unsigned char *d = NULL;
        size_t n = 0;
        int r = al_read_all(path, 1 << 20, &d, &n);
        if (r < 0) {
                al_error_set(err, -r, "cannot read %s: %s", path, strerror(-r));
                return NULL;
        }
        return (char *)d;
}

/* libmicrohttpd on the listening socket lfd, with TLS when configured:
 * fr.d, or NULL (err says why when the certificate cannot be read). */
/* %XX of a URL's path and query, decoded in place as libmicrohttpd
 * would, except that %00 becomes 0x01: the decoded text is a C string,
 * so a NUL would cut "nul%00.txt" to "nul" in silence; 0x01 is a control
 * character that every check of a name refuses (a session's file path:
 * 400 bad_path). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
        (void)cls;
        (void)c;
        char *w = s;
        for (const char *r = s; *r; r++) {
                unsigned v;
                if (r[0] == '%' && isxdigit((unsigned char)r[1]) &&
                    isxdigit((unsigned char)r[2]) &&
                    sscanf(r + 1, "%2x", &v) == 1) {
                        *w++ = v ? (char)v : '\x01';
                        r += 2;
                } else
                        *w++ = *r;
        }
        *w = '\0';
        return (size_t)(w - s);
}

static struct MHD_Daemon *start_daemon(const struct srv_config *cfg, int lfd,
                                       al_error *err) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        char *cert = NULL, *key = NULL;
        if (cfg->tls_cert[0]) {
                if (!(cert = read_file(cfg->tls_cert, err)) ||
                    !(key = read_file(cfg->tls_key, err))) {
                        free(cert);
                        return NULL;
                }
                flags |= MHD_USE_TLS;
        }
        struct MHD_OptionItem tls[] = {
                {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
                {cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
                {MHD_OPTION_END, 0, NULL}};
        fr.d = mhd.start_daemon(
                flags, 0, NULL, NULL, on_request, NULL,
                MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_NOTIFY_COMPLETED,
                on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                /* the per-address cap is make_room's, which cuts the
                 * idlest connection of the address instead of refusing
                 * the new one at accept */
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
                /* a connection that sends nothing (partial headers, an
                 * idle keep-alive) is closed; a suspended one (its run in
                 * progress) is not timed */
                MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_ARRAY,
                tls, MHD_OPTION_END);
        if (key)
                sodium_memzero(key, strlen(key));
        free(cert);
        free(key);
        return fr.d;
}

/* The main thread until SIGTERM or SIGINT: signals, the keys and the
 * header deadline every second. */
static void serve_until_stopped(int sfd) {
        double last_keys = mono();
        for (;;) {
                struct pollfd pf = {sfd, POLLIN, 0};
                int pr = poll(&pf, 1, 1000);
                if (mono() - last_keys >= 1.0) {
                        srv_api_reload_keys();
                        srv_api_tick();
                        sweep_headers();
                        last_keys = mono();
                }
                if (pr <= 0)
                        continue;
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo == SIGHUP) {
                        srv_api_reload_keys();
                        srv_api_reload_policy();
                        srv_api_reload_warm();
                        continue;
                }
                break;
        }
}

/* Stop taking connections; let the runs in flight finish within the
 * grace period, then cancel them; join the pools; give the last answers
 * 2 s to go out. */
static void drain(const struct srv_config *cfg) {
        char ts[32];
        /* the runs cancelled have their audit records finished as
         * killed */
        al_utc_now(ts);
        srv_api_log(json_pack("{s:s,s:s,s:i}", "event",
                              "airlock.serve.stopping", "ts", ts, "grace_s",
                              (int)cfg->grace_s));
        MHD_socket qs = mhd.quiesce_daemon(fr.d);
        if (qs != MHD_INVALID_SOCKET)
                close(qs);
        pthread_mutex_lock(&fr.lock);
        fr.stop = true; /* queued ones are answered 503 shutting_down */
        pthread_cond_broadcast(&fr.exec.more);
        pthread_cond_broadcast(&fr.reads.more);
        pthread_mutex_unlock(&fr.lock);
        double until = mono() + cfg->grace_s;
        for (;;) {
                pthread_mutex_lock(&fr.lock);
                bool idle = !fr.exec.active && !fr.exec.n && !fr.reads.active &&
                            !fr.reads.n;
                pthread_mutex_unlock(&fr.lock);
                if (idle)
                        break;
                if (mono() >= until) {
                        srv_api_cancel_all();
                        /* cells of sessions stop with their sandbox */
                        srv_api_sessions_end_all("shutdown");
                        until = 1e300;
                }
                usleep(20000);
        }
        pool_join(&fr.exec);
        pool_join(&fr.reads);
        /* sessions are not kept across a restart: each ends, audited */
        srv_api_sessions_end_all("shutdown");
        /* the answers of the last runs go out before the daemon stops
         * (clients that keep their connection open get 2 s) */
        for (double t_end = mono() + 2; mono() < t_end; usleep(10000)) {
                const union MHD_DaemonInfo *di = mhd.get_daemon_info(
                        fr.d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
                if (!di || !di->num_connections)
                        break;
        }
}

/* Room for MAX_CONNECTIONS sockets beside the server's own files (audit
 * store, keys, pipes of the runs): the soft limit raised towards the hard
 * one, so that a flood of connections cannot make the server's own opens
 * fail with EMFILE (Debian's default soft limit is 1024). */
static void raise_nofile(void) {
        struct rlimit rl;
        rlim_t want = MAX_CONNECTIONS + 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
                              ? want
                              : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
}

int srv_http_run(const struct srv_config *cfg, al_error *err) {
        int port = 0;
        int r = mhd_init(err);
        if (r < 0)
                return r;
        fr.cfg = cfg;
        raise_nofile();
        int lfd = listen_on(cfg->listen, &port, err);
        if (lfd < 0)
                return lfd;
        r = srv_api_init(cfg, err);
        if (r < 0) {
                close(lfd);
                return r;
        }
        /* before any thread: every thread inherits the mask */
        int sfd = al_stop_signals();
        if (!pool_start(&fr.exec, cfg->workers, cfg->queue) ||
            !pool_start(&fr.reads, SRV_READERS, SRV_READ_QUEUE)) {
                close(lfd);
                return al_error_set(err, EAGAIN, "cannot start workers");
        }
        srv_metrics_start(fr.exec.nthreads, cfg->queue);
        /* bodies and responses of MiBs are mmapped, so that their memory
         * goes back to the system when they are freed (glibc's dynamic
         * threshold would keep every size seen once in the heap) */
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        fr.d = start_daemon(cfg, lfd, err);
        if (!fr.d && err && err->code) {
                close(lfd);
                return -EINVAL;
        }
        if (!fr.d) {
                close(lfd);
                return al_error_set(err, EIO,
                                    "libmicrohttpd could not start on %s",
                                    cfg->listen);
        }
        char ts[32];
        al_utc_now(ts);
        srv_api_log(json_pack("{s:s,s:s,s:o,s:i,s:i,s:i,s:b,s:i,s:i,s:i,s:i}",
                              "event", "airlock.serve.listening", "ts", ts,
                              "listen", al_jstr(cfg->listen), "port", port,
                              "workers", (int)fr.exec.nthreads, "queue",
                              (int)cfg->queue, "tls", cfg->tls_cert[0] != '\0',
                              "max_per_ip", (int)cfg->max_per_ip,
                              "idle_timeout_s", (int)cfg->idle_timeout_s,
                              "body_timeout_s", (int)cfg->body_timeout_s,
                              "header_timeout_s", (int)cfg->header_timeout_s));

        serve_until_stopped(sfd);
        drain(cfg);
        mhd.stop_daemon(fr.d);
        srv_api_fini();
        close(sfd);
        al_utc_now(ts);
        srv_api_log(json_pack("{s:s,s:s}", "event", "airlock.serve.stopped",
                              "ts", ts));
        return 0;
}
