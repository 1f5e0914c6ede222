/* SPDX-License-Identifier: MIT */
/*
 * The per-run egress proxy: one thread and one epoll loop per run (never a
 * thread per connection), serving the listening socket made in the run's
 * network namespace and connecting out from the supervisor's.
 *
 * A client connection goes HEAD (read and parse a request head) ->
 * decide on the name (al_net_allowed, before any lookup) -> RESOLVING (a
 * short-lived helper thread runs getaddrinfo, at most EG_RESOLVERS at a
 * time, abandoned after EG_RESOLVE_MS) -> every address checked
 * (al_addr_classify) -> CONNECTING to exactly a checked address ->
 * TUNNEL (CONNECT: bytes both ways) or RELAY (plain HTTP: the head
 * rebuilt in origin-form, the body, the response back; then HEAD again
 * when the response was framed, so that the next request is decided
 * again) -> CLOSING (an answer flushed) -> LINGER (the client's unread
 * bytes drained, so that the answer is not lost to a reset).
 *
 * Every buffer has a fixed size: a side that does not read pauses the
 * other. The bytes each way are counted when they enter a buffer and stop
 * at the run's caps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress.h"
#include "error.h"
#include "macro.h"
#include "util.h"

/* Bytes buffered per direction of one connection: bounds the memory of a
 * connection; a side that does not read pauses the other. */
#define EG_BUF (64u << 10)
/* Lookups at once per run, each on a short-lived thread: bounds the
 * threads a run can make the supervisor start. */
#define EG_RESOLVERS 4
/* A lookup that takes longer fails the request (502), so that a stuck
 * resolver does not hold a connection; its thread ends on its own. */
#define EG_RESOLVE_MS 5000
/* Addresses kept for one name; a name with more is refused, since every
 * address it has must be checked. */
#define EG_MAX_ADDRS 32
/* Entries in the report; past it, one {"more": n}. */
#define EG_REPORT_MAX 256
/* Bytes of a host kept in the report. */
#define EG_REPORT_HOST 256
/* Events taken from epoll per wait. */
#define EG_EVENTS 64
/* Connections accepted per wake-up, so that a flood does not starve the
 * connections already open. */
#define EG_ACCEPT_BURST 16
/* After accept() fails for want of fds or memory, wait this long before
 * trying again (the listening socket stays readable: no busy loop). */
#define EG_ACCEPT_PAUSE_MS 100
/* After an answer that ends a connection: bytes of the client's unread
 * input drained, and for how long, so that closing does not reset the
 * connection before the client has read the answer. */
#define EG_LINGER_BYTES (64u << 10)
#define EG_LINGER_MS 1000
/* "Connection:" tokens read in one request head (hop-by-hop headers to
 * drop); a head naming more is refused. */
#define EG_CONN_TOKENS 32
/* A response head longer than this is relayed, but its connection is
 * then closed rather than kept alive. */
#define EG_RSP_HEAD_MAX (64u << 10)

al_egress_resolver_fn al_egress_test_resolver;

enum {
        EG_END_CLIENT,
        EG_END_UPSTREAM,
        EG_END_RESOLVER,
        EG_END_LISTEN,
        EG_END_WAKE
};

enum {
        HIT_CONNECTIONS = 1u << 0,
        HIT_BYTES_OUT = 1u << 1,
        HIT_BYTES_IN = 1u << 2,
        HIT_IDLE = 1u << 3,
};
static const char *const hit_names[] = {"net_connections", "net_bytes_out",
                                        "net_bytes_in", "net_idle_ms"};

enum eg_state {
        EG_HEAD,         /* reading a request head */
        EG_WAIT_RESOLVE, /* waiting for a resolver slot */
        EG_RESOLVING,
        EG_CONNECTING,
        EG_TUNNEL,  /* CONNECT: bytes both ways */
        EG_RELAY,   /* plain HTTP: body up, response down */
        EG_CLOSING, /* our answer to the client, then LINGER */
        EG_LINGER,
};

struct eg_conn;
struct eg_end {
        struct eg_conn *c;
        int kind;
};

/* A lookup, shared by the loop and its helper thread: whichever lets go
 * last frees it, so the loop can abandon one that hangs. */
struct eg_resolve {
        atomic_int refs;
        atomic_bool done;
        int efd; /* the thread's "done": an eventfd in the loop's epoll */
        int rc;
        size_t n;
        al_egress_resolver_fn fn;
        char host[AL_NET_HOST_MAX];
        struct sockaddr_storage addrs[EG_MAX_ADDRS];
        struct eg_resolve *next; /* on the loop's abandoned list */
};

struct eg_buf {
        char *data; /* EG_BUF bytes, allocated when first used */
        size_t off, len;
};

/* What the relay needs to know of a response: whether it says where it
 * ends, so that the client connection can be kept for the next request. */
struct eg_rsp {
        char line[256];
        size_t ll, total;
        bool first, v11, framed, close, interim, done;
};

struct eg_conn {
        struct eg_conn *next;
        al_egress *e;
        int cfd, ufd;
        struct eg_end cend, uend, rend;
        uint32_t cev, uev; /* events registered; 0: not in epoll */
        enum eg_state st;
        bool dead, c_eof, u_eof, u_shut, c_shut, capped, keep;
        double deadline, linger_until;
        size_t lingered;
        char *head; /* AL_PROXY_HEAD_MAX bytes */
        size_t head_len;
        struct eg_buf c2u, u2c;
        al_proxy_req req;
        bool local;
        uint64_t body_left;
        int entry; /* the report entry of the current request, or -1 */
        struct eg_resolve *res;
        double resolve_deadline;
        struct sockaddr_storage addrs[EG_MAX_ADDRS];
        size_t naddrs, next_addr;
        struct eg_rsp rsp;
};

struct eg_entry {
        char host[EG_REPORT_HOST + 1];
        uint16_t port;
        bool allowed;
        char reason[48];
        char address[INET6_ADDRSTRLEN];
        uint64_t out, in, count;
};

struct al_egress {
        int lfd, epfd, wfd;
        struct eg_end lend, wend;
        bool lfd_in;
        double accept_at;
        pthread_t th;
        atomic_bool stop;
        al_net_policy pol;
        struct eg_conn *conns;
        unsigned nsock; /* client and upstream sockets open */
        unsigned nresolving; /* helper threads running, abandoned included */
        struct eg_resolve *abandoned; /* lookups given up, still running */
        uint64_t out, in;
        unsigned hits;
        struct eg_entry *ent;
        size_t nent, aent;
        uint64_t more;
};

/* --- the report ---------------------------------------------------------- */

static void addr_string(const struct sockaddr_storage *ss, char *out,
                        size_t size) {
        const void *a =
                ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)
                                  ->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)
                                  ->sin6_addr;
        if (!inet_ntop(ss->ss_family, a, out, size))
                snprintf(out, size, "?");
}

/* A line of the report; a denial like one already there (host, port,
 * reason) adds to its count. The index, or -1 past EG_REPORT_MAX. */
static int eg_entry_add(al_egress *e, const char *host, uint16_t port,
                        bool allowed, const char *reason,
                        const struct sockaddr_storage *addr) {
        if (!allowed)
                for (size_t i = 0; i < e->nent; i++) {
                        struct eg_entry *x = &e->ent[i];
                        if (!x->allowed && x->port == port &&
                            !strncmp(x->host, host, EG_REPORT_HOST) &&
                            !strcmp(x->reason, reason ? reason : "")) {
                                x->count++;
                                return (int)i;
                        }
                }
        if (e->nent == EG_REPORT_MAX) {
                e->more++;
                return -1;
        }
        if (e->nent == e->aent) {
                size_t na = e->aent ? e->aent * 2 : 16;
                struct eg_entry *n = realloc(e->ent, na * sizeof(*n));
                if (!n) {
                        e->more++;
                        return -1;
                }
                e->ent = n;
                e->aent = na;
        }
        struct eg_entry *x = &e->ent[e->nent];
        *x = (struct eg_entry){.port = port, .allowed = allowed, .count = 1};
        snprintf(x->host, sizeof(x->host), "%s", host);
        snprintf(x->reason, sizeof(x->reason), "%s", reason ? reason : "");
        if (addr)
                addr_string(addr, x->address, sizeof(x->address));
        return (int)e->nent++;
}

static json_t *eg_report(const al_egress *e) {
        json_t *arr = json_array();
        if (!arr)
                return NULL;
        for (size_t i = 0; i < e->nent; i++) {
                const struct eg_entry *x = &e->ent[i];
                size_t hl = strnlen(x->host, EG_REPORT_HOST), cl;
                /* hosts come from the run's code: valid UTF-8 for JSON */
                _cleanup_free_ char *h = al_utf8_sanitize(
                        (const unsigned char *)x->host, hl, &cl);
                json_t *o =
                        json_pack("{s:s%,s:i,s:b,s:I,s:I}", "host", h ? h : "",
                                  h ? cl : 0, "port", (int)x->port, "allowed",
                                  x->allowed, "bytes_out", (json_int_t)x->out,
                                  "bytes_in", (json_int_t)x->in);
                if (!o)
                        continue;
                if (x->reason[0])
                        json_object_set_new(o, "reason",
                                            json_string(x->reason));
                if (x->address[0])
                        json_object_set_new(o, "address",
                                            json_string(x->address));
                if (x->count > 1)
                        json_object_set_new(o, "count",
                                            json_integer((json_int_t)x->count));
                json_array_append_new(arr, o);
        }
        if (e->more)
                json_array_append_new(
                        arr, json_pack("{s:I}", "more", (json_int_t)e->more));
        return arr;
}

/* --- connections --------------------------------------------------------- */

static double eg_idle_ms(const al_egress *e) {
        return e->pol.idle_ms;
}

static void eg_touch(struct eg_conn *c) {
        c->deadline = al_now_ms() + eg_idle_ms(c->e);
}

static int eg_buf_ready(struct eg_buf *b) {
        if (!b->data) {
                b->data = malloc(EG_BUF);
                if (!b->data)
                        return -ENOMEM;
        }
        return 0;
}

static void eg_set_reason(struct eg_conn *c, const char *reason) {
        if (c->entry >= 0 && !c->e->ent[c->entry].reason[0])
                snprintf(c->e->ent[c->entry].reason,
                         sizeof(c->e->ent[c->entry].reason), "%s", reason);
}

/* Register fd for ev (0: take it out, so that a hang-up we do not wait
 * for does not wake the loop again and again). */
static void eg_arm_fd(al_egress *e, int fd, struct eg_end *end, uint32_t *cur,
                      uint32_t want) {
        if (fd < 0 || *cur == want)
                return;
        struct epoll_event ev = {.events = want, .data.ptr = end};
        if (!want)
                epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
        else if (epoll_ctl(e->epfd, *cur ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
                           &ev) < 0)
                return;
        *cur = want;
}

static void eg_resolve_unref(struct eg_resolve *r) {
        if (atomic_fetch_sub(&r->refs, 1) == 1) {
                safe_close(r->efd);
                free(r);
        }
}

/* The loop lets go of a lookup (done or abandoned). One whose thread
 * still runs keeps its slot until that thread ends (eg_reap_lookups):
 * else a lookup that hangs, abandoned at its deadline, would free its
 * slot for the next, and the code could have the supervisor start
 * threads without end. Its eventfd stays in epoll, as a wake-up. */
static void eg_resolve_drop(struct eg_conn *c) {
        struct eg_resolve *r = c->res;
        if (!r)
                return;
        c->res = NULL;
        if (!atomic_load(&r->done)) {
                struct epoll_event ev = {.events = EPOLLIN,
                                         .data.ptr = &c->e->wend};
                epoll_ctl(c->e->epfd, EPOLL_CTL_MOD, r->efd, &ev);
                r->next = c->e->abandoned;
                c->e->abandoned = r;
                return;
        }
        epoll_ctl(c->e->epfd, EPOLL_CTL_DEL, r->efd, NULL);
        eg_resolve_unref(r);
        c->e->nresolving--;
}

/* Abandoned lookups whose threads have ended give their slots back; with
 * all, every one is let go (the proxy stops; the threads free them). */
static void eg_reap_lookups(al_egress *e, bool all) {
        for (struct eg_resolve **pr = &e->abandoned; *pr;) {
                struct eg_resolve *r = *pr;
                if (!all && !atomic_load(&r->done)) {
                        pr = &r->next;
                        continue;
                }
                *pr = r->next;
                epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->efd, NULL);
                eg_resolve_unref(r);
                e->nresolving--;
        }
}

static void eg_close_upstream(struct eg_conn *c) {
        if (c->ufd < 0)
                return;
        eg_arm_fd(c->e, c->ufd, &c->uend, &c->uev, 0);
        c->ufd = safe_close(c->ufd);
        c->e->nsock--;
}

static void eg_close(struct eg_conn *c) {
        if (c->dead)
                return;
        eg_resolve_drop(c);
        eg_close_upstream(c);
        if (c->cfd >= 0) {
                eg_arm_fd(c->e, c->cfd, &c->cend, &c->cev, 0);
                c->cfd = safe_close(c->cfd);
                c->e->nsock--;
        }
        c->dead = true;
}

static void eg_free(struct eg_conn *c) {
        free(c->head);
        free(c->c2u.data);
        free(c->u2c.data);
        free(c);
}

/* Our own answer to the client; the connection ends after it. */
static void eg_answer(struct eg_conn *c, int status, const char *text) {
        const char *phrase = status == 400   ? "Bad Request"
                             : status == 403 ? "Forbidden"
                             : status == 405 ? "Method Not Allowed"
                             : status == 414 ? "URI Too Long"
                             : status == 431 ? "Request Header Fields Too Large"
                             : status == 501 ? "Not Implemented"
                             : status == 502 ? "Bad Gateway"
                             : status == 503 ? "Service Unavailable"
                             : status == 504 ? "Gateway Timeout"
                                             : "Error";
        eg_close_upstream(c);
        eg_resolve_drop(c);
        if (eg_buf_ready(&c->u2c) < 0) {
                eg_close(c);
                return;
        }
        char body[512];
        int bl = snprintf(body, sizeof(body), "airlock: %s\n", text);
        if (bl < 0 || (size_t)bl >= sizeof(body))
                bl = (int)sizeof(body) - 1;
        int n = snprintf(c->u2c.data, EG_BUF,
                         "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %d\r\nConnection: close\r\n\r\n%.*s",
                         status, phrase, bl, bl, body);
        c->u2c.off = 0;
        c->u2c.len = n > 0 ? (size_t)n : 0;
        c->st = EG_CLOSING;
        eg_touch(c);
}

/* A refusal: a report line (denials coalesced) and the answer. */
static void eg_refuse(struct eg_conn *c, int status, const char *reason,
                      const struct sockaddr_storage *addr, const char *text) {
        if (c->entry >= 0) {
                /* an allowed request that then failed (e.g. a cap) */
                eg_set_reason(c, reason);
        } else {
                eg_entry_add(c->e, c->req.host, c->req.port, false, reason,
                             addr);
        }
        eg_answer(c, status, text);
}

/* Bytes that may still go one way before the run's cap. */
static uint64_t eg_budget(const al_egress *e, bool out) {
        uint64_t cap = out ? e->pol.max_bytes_out : e->pol.max_bytes_in;
        uint64_t used = out ? e->out : e->in;
        return used >= cap ? 0 : cap - used;
}

static void eg_count(struct eg_conn *c, bool out, size_t n) {
        if (out)
                c->e->out += n;
        else
                c->e->in += n;
        if (c->entry >= 0) {
                if (out)
                        c->e->ent[c->entry].out += n;
                else
                        c->e->ent[c->entry].in += n;
        }
}

/* The cap is reached with more to send: nothing more is read, what is
 * buffered (counted) is flushed, then the connection closes. */
static void eg_cap(struct eg_conn *c, bool out) {
        c->e->hits |= out ? HIT_BYTES_OUT : HIT_BYTES_IN;
        eg_set_reason(c, out ? "net_bytes_out" : "net_bytes_in");
        c->capped = true;
}

/* --- plain HTTP: the head sent upstream ---------------------------------- */

static bool name_is(const char *p, size_t n, const char *name) {
        return strlen(name) == n && !strncasecmp(p, name, n);
}

static bool hop_by_hop(const char *p, size_t n) {
        static const char *const hop[] = {"connection",
                                          "proxy-connection",
                                          "keep-alive",
                                          "proxy-authorization",
                                          "proxy-authenticate",
                                          "te",
                                          "trailer",
                                          "transfer-encoding",
                                          "upgrade",
                                          "host"};
        for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
                if (name_is(p, n, hop[i]))
                        return true;
        return false;
}

struct eg_tok {
        const char *p;
        size_t n;
};

/* The head in origin-form: the request line from the parsed URI, Host
 * from the URI, the client's headers but the hop-by-hop ones (and those
 * its Connection header names), Connection: close. Length, or -status. */
/* The header line at *next (before end): *line and its length without
 * CR LF, *next moved past it; false at the empty line that ends the head
 * (or at its end). */
static bool eg_header(const char **next, const char *end, const char **line,
                      size_t *ll) {
        const char *p = *next;
        const char *eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!eol)
                return false;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
                n--;
        *line = p;
        *ll = n;
        *next = eol + 1;
        return n > 0;
}

static int eg_build_head(const struct eg_conn *c, char *out, size_t size) {
        const al_proxy_req *q = &c->req;
        const char *h = c->head, *end = c->head + q->head_len;
        const char *line = memchr(h, '\n', q->head_len);
        if (!line)
                return -400;
        struct eg_tok tok[EG_CONN_TOKENS];
        size_t ntok = 0;
        /* first pass: the names the Connection headers list */
        const char *p;
        size_t ll;
        for (const char *next = line + 1; eg_header(&next, end, &p, &ll);) {
                if (p[0] == ' ' || p[0] == '\t')
                        return -400; /* obs-fold: refused, not guessed */
                const char *colon = memchr(p, ':', ll);
                if (!colon)
                        return -400;
                if (name_is(p, (size_t)(colon - p), "connection")) {
                        for (const char *t = colon + 1; t < p + ll;) {
                                while (t < p + ll &&
                                       (*t == ' ' || *t == '\t' || *t == ','))
                                        t++;
                                const char *s = t;
                                while (t < p + ll && *t != ',' && *t != ' ' &&
                                       *t != '\t')
                                        t++;
                                if (t > s) {
                                        if (ntok == EG_CONN_TOKENS)
                                                return -431;
                                        tok[ntok++] = (struct eg_tok){
                                                s, (size_t)(t - s)};
                                }
                        }
                }
        }
        char hostport[AL_NET_HOST_MAX + 16];
        bool v6 = strchr(q->host, ':') != NULL;
        if (q->port == 80)
                snprintf(hostport, sizeof(hostport), "%s%s%s", v6 ? "[" : "",
                         q->host, v6 ? "]" : "");
        else
                snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "",
                         q->host, v6 ? "]" : "", (unsigned)q->port);
        int n = snprintf(out, size, "%s %s HTTP/1.1\r\nHost: %s\r\n", q->method,
                         q->origin_path, hostport);
        if (n < 0 || (size_t)n >= size)
                return -414;
        size_t len = (size_t)n;
        for (const char *next = line + 1; eg_header(&next, end, &p, &ll);) {
                const char *colon = memchr(p, ':', ll);
                size_t nl = (size_t)(colon - p);
                bool drop = hop_by_hop(p, nl);
                for (size_t i = 0; i < ntok && !drop; i++)
                        drop = tok[i].n == nl && !strncasecmp(tok[i].p, p, nl);
                if (!drop) {
                        if (len + ll + 2 >= size)
                                return -431;
                        memcpy(out + len, p, ll);
                        memcpy(out + len + ll, "\r\n", 2);
                        len += ll + 2;
                }
        }
        static const char tail[] = "Connection: close\r\n\r\n";
        if (len + sizeof(tail) - 1 > size)
                return -431;
        memcpy(out + len, tail, sizeof(tail) - 1);
        return (int)(len + sizeof(tail) - 1);
}

/* Follow the response head as it passes: does it say where it ends? */
static void eg_rsp_feed(struct eg_rsp *r, const char *p, size_t n) {
        for (size_t i = 0; i < n && !r->done; i++) {
                if (++r->total > EG_RSP_HEAD_MAX) {
                        r->framed = false;
                        r->done = true;
                        break;
                }
                char ch = p[i];
                if (ch != '\n') {
                        if (r->ll < sizeof(r->line) - 1)
                                r->line[r->ll++] = ch;
                        continue;
                }
                if (r->ll && r->line[r->ll - 1] == '\r')
                        r->ll--;
                r->line[r->ll] = '\0';
                if (!r->first) {
                        r->first = true;
                        r->v11 = !strncmp(r->line, "HTTP/1.1 ", 9);
                        r->interim = r->ll >= 10 && r->line[9] == '1';
                        /* 101 switches protocols: never kept */
                        if (r->interim && !strncmp(r->line + 9, "101", 3))
                                r->interim = false, r->close = true;
                } else if (!r->ll) {
                        if (r->interim) {
                                /* 100 Continue: the real head follows */
                                *r = (struct eg_rsp){0};
                                continue;
                        }
                        r->done = true;
                } else if (!strncasecmp(r->line, "content-length:", 15)) {
                        r->framed = true;
                } else if (!strncasecmp(r->line, "transfer-encoding:", 18)) {
                        if (strcasestr(r->line + 18, "chunked"))
                                r->framed = true;
                } else if (!strncasecmp(r->line, "connection:", 11)) {
                        if (strcasestr(r->line + 11, "close"))
                                r->close = true;
                }
                r->ll = 0;
        }
}

/* --- deciding and connecting --------------------------------------------- */

static void eg_connect_next(struct eg_conn *c);
static void eg_resolve_start(struct eg_conn *c);

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
        if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *)ss)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* Every address the name has, checked; one refused range refuses the
 * name (unless its rule names it explicitly). */
static void eg_check_addrs(struct eg_conn *c) {
        char text[AL_NET_HOST_MAX + 128];
        for (size_t i = 0; i < c->naddrs; i++) {
                enum al_addr_class k =
                        al_addr_classify((const struct sockaddr *)&c->addrs[i]);
                if (k == AL_ADDR_PUBLIC || c->local)
                        continue;
                char reason[48], a[INET6_ADDRSTRLEN];
                addr_string(&c->addrs[i], a, sizeof(a));
                snprintf(reason, sizeof(reason), "address_%s",
                         al_addr_class_name(k));
                snprintf(text, sizeof(text),
                         "%s resolves to %s (%s), which the allowlist does "
                         "not name",
                         c->req.host, a, al_addr_class_name(k));
                eg_refuse(c, 403, reason, &c->addrs[i], text);
                return;
        }
        for (size_t i = 0; i < c->naddrs; i++)
                set_port(&c->addrs[i], c->req.port);
        c->next_addr = 0;
        eg_connect_next(c);
}

static void eg_decide(struct eg_conn *c) {
        al_egress *e = c->e;
        const al_net_rule *rule = NULL;
        char text[AL_NET_HOST_MAX + 128];
        c->entry = -1;
        if (!al_net_allowed(&e->pol, c->req.host, c->req.port, &rule) ||
            !rule) {
                snprintf(text, sizeof(text),
                         "%s:%u is not on the run's allowlist", c->req.host,
                         (unsigned)c->req.port);
                eg_refuse(c, 403, "not_allowed", NULL, text);
                return;
        }
        c->local = rule->local;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addrs[0];
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addrs[0];
        memset(&c->addrs[0], 0, sizeof(c->addrs[0]));
        /* an IP literal is its own address: no lookup */
        if (inet_pton(AF_INET, c->req.host, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                c->naddrs = 1;
                eg_check_addrs(c);
        } else if (inet_pton(AF_INET6, c->req.host, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                c->naddrs = 1;
                eg_check_addrs(c);
        } else if (e->nresolving >= EG_RESOLVERS) {
                c->st = EG_WAIT_RESOLVE;
        } else {
                eg_resolve_start(c);
        }
}

static int eg_default_resolver(const char *host, struct sockaddr_storage *addrs,
                               size_t max, size_t *ret_n) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int r = getaddrinfo(host, NULL, &hints, &res);
        if (r != 0)
                return r == EAI_SYSTEM && errno ? -errno : -EHOSTUNREACH;
        size_t n = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                        continue;
                if (n < max && ai->ai_addrlen <= sizeof(addrs[0])) {
                        memset(&addrs[n], 0, sizeof(addrs[n]));
                        memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
                }
                n++;
        }
        freeaddrinfo(res);
        *ret_n = n;
        return 0;
}

static void *eg_resolver(void *arg) {
        struct eg_resolve *r = arg;
        r->rc = r->fn(r->host, r->addrs, EG_MAX_ADDRS, &r->n);
        atomic_store(&r->done, true);
        uint64_t one = 1;
        if (write(r->efd, &one, sizeof(one)) < 0) {
                /* the loop also finds it done at its deadline */
        }
        eg_resolve_unref(r);
        return NULL;
}

static void eg_resolve_start(struct eg_conn *c) {
        al_egress *e = c->e;
        struct eg_resolve *r = calloc(1, sizeof(*r));
        if (!r) {
                eg_refuse(c, 502, "resolve_failed", NULL, "out of memory");
                return;
        }
        atomic_init(&r->refs, 2);
        atomic_init(&r->done, false);
        r->fn = al_egress_test_resolver ? al_egress_test_resolver
                                        : eg_default_resolver;
        snprintf(r->host, sizeof(r->host), "%s", c->req.host);
        r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->rend};
        if (r->efd < 0 || epoll_ctl(e->epfd, EPOLL_CTL_ADD, r->efd, &ev) < 0) {
                safe_close(r->efd);
                free(r);
                eg_refuse(c, 502, "resolve_failed", NULL,
                          "cannot start a lookup");
                return;
        }
        pthread_attr_t attr;
        pthread_t th;
        sigset_t all, old;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* the helper takes no signal meant for the supervisor */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int rc = pthread_create(&th, &attr, eg_resolver, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        c->res = r;
        e->nresolving++;
        if (rc != 0) {
                atomic_fetch_sub(&r->refs, 1); /* the thread's */
                eg_refuse(c, 502, "resolve_failed", NULL,
                          "cannot start a lookup");
                return;
        }
        c->st = EG_RESOLVING;
        c->resolve_deadline = al_now_ms() + EG_RESOLVE_MS;
}

static void eg_resolved(struct eg_conn *c) {
        struct eg_resolve *r = c->res;
        if (c->st != EG_RESOLVING || !r || !atomic_load(&r->done))
                return;
        int rc = r->rc;
        size_t n = r->n;
        if (rc == 0 && n <= EG_MAX_ADDRS)
                memcpy(c->addrs, r->addrs, n * sizeof(c->addrs[0]));
        eg_resolve_drop(c);
        char text[AL_NET_HOST_MAX + 64];
        if (rc != 0 || n == 0) {
                snprintf(text, sizeof(text), "%s: no address", c->req.host);
                eg_refuse(c, 502, "resolve_failed", NULL, text);
                return;
        }
        if (n > EG_MAX_ADDRS) {
                snprintf(text, sizeof(text),
                         "%s has more addresses than the proxy checks",
                         c->req.host);
                eg_refuse(c, 502, "too_many_addresses", NULL, text);
                return;
        }
        c->naddrs = n;
        eg_check_addrs(c);
}

static void eg_connect_next(struct eg_conn *c) {
        al_egress *e = c->e;
        char text[AL_NET_HOST_MAX + 64];
        if (e->nsock >= e->pol.max_connections) {
                e->hits |= HIT_CONNECTIONS;
                eg_refuse(c, 503, "net_connections", NULL,
                          "the run's connection limit is reached");
                return;
        }
        while (c->next_addr < c->naddrs) {
                struct sockaddr_storage *a = &c->addrs[c->next_addr];
                socklen_t al = a->ss_family == AF_INET
                                       ? sizeof(struct sockaddr_in)
                                       : sizeof(struct sockaddr_in6);
                int fd = socket(a->ss_family,
                                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd >= 0 && (connect(fd, (struct sockaddr *)a, al) == 0 ||
                                errno == EINPROGRESS)) {
                        c->ufd = fd;
                        e->nsock++;
                        c->st = EG_CONNECTING;
                        eg_touch(c);
                        return;
                }
                safe_close(fd);
                c->next_addr++;
        }
        snprintf(text, sizeof(text), "cannot connect to %s:%u", c->req.host,
                 (unsigned)c->req.port);
        eg_refuse(c, 502, "connect_failed", NULL, text);
}

/* Bytes from the head buffer go upstream (counted against the cap). */
static void eg_head_to_upstream(struct eg_conn *c, size_t n) {
        uint64_t b = eg_budget(c->e, true);
        size_t take = n < b ? n : (size_t)b;
        memcpy(c->c2u.data + c->c2u.len, c->head + c->req.head_len, take);
        c->c2u.len += take;
        eg_count(c, true, take);
        if (take < n)
                eg_cap(c, true);
        memmove(c->head, c->head + c->req.head_len + n,
                c->head_len - c->req.head_len - n);
        c->head_len -= c->req.head_len + n;
}

static void eg_connected(struct eg_conn *c) {
        al_egress *e = c->e;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
            soerr) {
                eg_close_upstream(c);
                c->next_addr++;
                eg_connect_next(c);
                return;
        }
        if (eg_buf_ready(&c->c2u) < 0 || eg_buf_ready(&c->u2c) < 0) {
                eg_close(c);
                return;
        }
        c->entry = eg_entry_add(e, c->req.host, c->req.port, true, NULL,
                                &c->addrs[c->next_addr]);
        c->c2u.off = c->c2u.len = c->u2c.off = c->u2c.len = 0;
        c->u_eof = c->u_shut = false;
        size_t rest = c->head_len - c->req.head_len;
        if (c->req.connect) {
                static const char ok[] =
                        "HTTP/1.1 200 Connection established\r\n\r\n";
                memcpy(c->u2c.data, ok, sizeof(ok) - 1);
                c->u2c.len = sizeof(ok) - 1;
                /* what the client sent early (a TLS hello) goes on */
                eg_head_to_upstream(c, rest);
                c->st = EG_TUNNEL;
        } else {
                int n = eg_build_head(c, c->c2u.data, EG_BUF);
                if (n < 0) {
                        eg_set_reason(c, "bad_request");
                        eg_answer(c, -n, "the request head cannot be sent on");
                        return;
                }
                if ((uint64_t)n > eg_budget(e, true)) {
                        eg_cap(c, true);
                        eg_close(c);
                        return;
                }
                c->c2u.len = (size_t)n;
                eg_count(c, true, (size_t)n);
                /* the body that came with the head; what follows it is the
                 * next request, decided on its own */
                size_t body =
                        rest < c->req.body_len ? rest : (size_t)c->req.body_len;
                c->body_left = c->req.body_len - body;
                eg_head_to_upstream(c, body);
                c->rsp = (struct eg_rsp){0};
                c->st = EG_RELAY;
        }
        eg_touch(c);
}

static void eg_try_head(struct eg_conn *c) {
        al_error err = {0};
        int r = al_proxy_parse(c->head, c->head_len, &c->req, &err);
        if (r == 0 && c->head_len < AL_PROXY_HEAD_MAX)
                return;
        if (r <= 0) {
                int status = r == 0 ? 431 : -r;
                if (status < 400 || status > 599)
                        status = 400;
                char reason[48];
                snprintf(reason, sizeof(reason), "bad_request_%d", status);
                c->entry = -1;
                eg_entry_add(c->e, "", 0, false, reason, NULL);
                eg_answer(c, status,
                          err.msg[0] ? err.msg : "malformed request");
                return;
        }
        c->req.head_len = (size_t)r;
        eg_decide(c);
}

/* --- moving bytes -------------------------------------------------------- */

/* Read from fd into b, at most the cap allows; false when the connection
 * ended (closed here). */
static bool eg_pump_in(struct eg_conn *c, int fd, struct eg_buf *b, bool out,
                       bool *eof) {
        if (b->off && b->off == b->len)
                b->off = b->len = 0;
        if (b->off && b->len == EG_BUF) {
                memmove(b->data, b->data + b->off, b->len - b->off);
                b->len -= b->off;
                b->off = 0;
        }
        size_t space = EG_BUF - b->len;
        if (!space)
                return true;
        uint64_t budget = eg_budget(c->e, out);
        if (!budget) {
                /* at the cap: is there more? */
                char one;
                ssize_t n = recv(fd, &one, 1, MSG_PEEK);
                if (n > 0)
                        eg_cap(c, out);
                else if (n == 0)
                        *eof = true;
                else if (errno != EAGAIN && errno != EINTR) {
                        eg_close(c);
                        return false;
                }
                return true;
        }
        if (space > budget)
                space = (size_t)budget;
        ssize_t n = recv(fd, b->data + b->len, space, 0);
        if (n > 0) {
                if (!out && c->st == EG_RELAY)
                        eg_rsp_feed(&c->rsp, b->data + b->len, (size_t)n);
                b->len += (size_t)n;
                eg_count(c, out, (size_t)n);
                eg_touch(c);
        } else if (n == 0) {
                *eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
                eg_close(c);
                return false;
        }
        return true;
}

static bool eg_pump_out(struct eg_conn *c, int fd, struct eg_buf *b) {
        if (b->off == b->len)
                return true;
        ssize_t n = send(fd, b->data + b->off, b->len - b->off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
                b->off += (size_t)n;
                if (b->off == b->len)
                        b->off = b->len = 0;
                eg_touch(c);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                eg_close(c);
                return false;
        }
        return true;
}

/* Bytes just read into b go on to the other side at once, and reading
 * goes on while that side takes everything: a stream that flows moves up
 * to EG_SHUTTLE buffers per wake-up, without waiting for (and arming)
 * EPOLLOUT in between. Stops at the first short write, an empty read, the
 * end, a cap, or a close. */
#define EG_SHUTTLE 16
static void eg_shuttle(struct eg_conn *c, int from, int to, struct eg_buf *b,
                       bool out, bool *eof) {
        for (int i = 0; i < EG_SHUTTLE && !c->dead; i++) {
                if (!eg_pump_out(c, to, b) || b->off != b->len)
                        return;
                if (*eof || c->capped)
                        return;
                size_t before = b->len;
                if (!eg_pump_in(c, from, b, out, eof) || b->len == before)
                        return;
        }
        if (!c->dead)
                eg_pump_out(c, to, b);
}

static void eg_client_in(struct eg_conn *c, uint32_t ev) {
        switch (c->st) {
        case EG_HEAD: {
                ssize_t n = recv(c->cfd, c->head + c->head_len,
                                 AL_PROXY_HEAD_MAX - c->head_len, 0);
                if (n > 0) {
                        c->head_len += (size_t)n;
                        eg_touch(c);
                        eg_try_head(c);
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                        eg_close(c); /* a partial head is dropped */
                }
                return;
        }
        case EG_TUNNEL:
        case EG_RELAY:
                if (c->capped || c->c_eof)
                        break;
                if (c->st == EG_RELAY && c->body_left) {
                        /* the body, and not a byte past it */
                        struct eg_buf *b = &c->c2u;
                        if (b->off == b->len)
                                b->off = b->len = 0;
                        size_t space = EG_BUF - b->len;
                        uint64_t budget = eg_budget(c->e, true);
                        if (space > c->body_left)
                                space = (size_t)c->body_left;
                        if (!budget) {
                                eg_cap(c, true);
                                return;
                        }
                        if (space > budget)
                                space = (size_t)budget;
                        if (!space)
                                return;
                        ssize_t n = recv(c->cfd, b->data + b->len, space, 0);
                        if (n > 0) {
                                b->len += (size_t)n;
                                c->body_left -= (uint64_t)n;
                                eg_count(c, true, (size_t)n);
                                eg_touch(c);
                        } else if (n == 0 ||
                                   (errno != EAGAIN && errno != EINTR)) {
                                eg_close(c); /* the body was cut */
                        }
                        return;
                }
                if (c->st == EG_TUNNEL) {
                        if (eg_pump_in(c, c->cfd, &c->c2u, true, &c->c_eof))
                                eg_shuttle(c, c->cfd, c->ufd, &c->c2u, true,
                                           &c->c_eof);
                        return;
                }
                break;
        case EG_LINGER: {
                char sink[4096];
                ssize_t n = recv(c->cfd, sink, sizeof(sink), 0);
                if (n > 0)
                        c->lingered += (size_t)n;
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
                    c->lingered > EG_LINGER_BYTES)
                        eg_close(c);
                return;
        }
        default:
                break;
        }
        /* a hang-up or error we were not reading for: the client is gone */
        if (ev & (EPOLLHUP | EPOLLERR))
                eg_close(c);
}

static void eg_upstream_ev(struct eg_conn *c, uint32_t ev) {
        if (c->st == EG_CONNECTING) {
                if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                        eg_connected(c);
                return;
        }
        if (ev & EPOLLOUT) {
                if (!eg_pump_out(c, c->ufd, &c->c2u))
                        return;
        }
        if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->u_eof && !c->capped &&
            (c->st == EG_TUNNEL || c->st == EG_RELAY)) {
                if (eg_pump_in(c, c->ufd, &c->u2c, false, &c->u_eof))
                        eg_shuttle(c, c->ufd, c->cfd, &c->u2c, false,
                                   &c->u_eof);
                return;
        }
        if (ev & EPOLLERR) {
                eg_close(c);
        } else if (ev & EPOLLHUP) {
                /* it reads no more: what waits to go up cannot; what it
                 * sent is read once the client has room */
                c->c2u.off = c->c2u.len = 0;
                if (c->st != EG_TUNNEL && c->st != EG_RELAY)
                        eg_close(c);
        }
}

/* What follows from the state: half-closes, the end of an exchange. */
static void eg_progress(struct eg_conn *c) {
        if (c->dead)
                return;
        switch (c->st) {
        case EG_TUNNEL:
        case EG_RELAY:
                if (c->capped && c->c2u.off == c->c2u.len &&
                    c->u2c.off == c->u2c.len) {
                        eg_close(c);
                        return;
                }
                if (c->st == EG_TUNNEL && c->c_eof && !c->u_shut &&
                    c->c2u.off == c->c2u.len) {
                        shutdown(c->ufd, SHUT_WR);
                        c->u_shut = true;
                }
                if (c->u_eof && !c->c_shut && c->u2c.off == c->u2c.len) {
                        if (c->st == EG_RELAY) {
                                /* the exchange is over: keep the client
                                 * when it knows where the response ended
                                 * (its next request is decided again) */
                                bool keep = c->rsp.done && c->rsp.framed &&
                                            c->rsp.v11 && !c->rsp.close &&
                                            !c->body_left && !c->c_eof;
                                eg_close_upstream(c);
                                if (!keep) {
                                        eg_close(c);
                                        return;
                                }
                                c->st = EG_HEAD;
                                c->entry = -1;
                                c->u_eof = false;
                                eg_touch(c);
                                if (c->head_len)
                                        eg_try_head(c);
                                return;
                        }
                        shutdown(c->cfd, SHUT_WR);
                        c->c_shut = true;
                }
                if (c->st == EG_TUNNEL && c->c_eof && c->u_eof &&
                    c->c2u.off == c->c2u.len && c->u2c.off == c->u2c.len)
                        eg_close(c);
                break;
        case EG_CLOSING:
                if (c->u2c.off == c->u2c.len) {
                        shutdown(c->cfd, SHUT_WR);
                        c->st = EG_LINGER;
                        c->linger_until = al_now_ms() + EG_LINGER_MS;
                }
                break;
        default:
                break;
        }
}

/* The events each socket waits for, from the state and the buffers. */
static void eg_arm(struct eg_conn *c) {
        if (c->dead)
                return;
        uint32_t cw = 0, uw = 0;
        bool c2u_space = c->c2u.data && c->c2u.len < EG_BUF;
        bool u2c_space = c->u2c.data && c->u2c.len < EG_BUF;
        switch (c->st) {
        case EG_HEAD:
                cw = EPOLLIN;
                break;
        case EG_CONNECTING:
                uw = EPOLLOUT;
                break;
        case EG_TUNNEL:
        case EG_RELAY:
                if (!c->capped && !c->c_eof && c2u_space &&
                    (c->st == EG_TUNNEL || c->body_left))
                        cw |= EPOLLIN;
                if (!c->capped && !c->u_eof && u2c_space)
                        uw |= EPOLLIN;
                if (c->c2u.off < c->c2u.len)
                        uw |= EPOLLOUT;
                if (c->u2c.off < c->u2c.len)
                        cw |= EPOLLOUT;
                break;
        case EG_CLOSING:
                cw = EPOLLOUT;
                break;
        case EG_LINGER:
                cw = EPOLLIN;
                break;
        default:
                break;
        }
        eg_arm_fd(c->e, c->cfd, &c->cend, &c->cev, cw);
        eg_arm_fd(c->e, c->ufd, &c->uend, &c->uev, uw);
}

static void eg_conn_event(struct eg_conn *c, int kind, uint32_t ev) {
        if (kind == EG_END_RESOLVER) {
                uint64_t v;
                if (c->res && read(c->res->efd, &v, sizeof(v)) < 0) {
                        /* counted by done, not by the value */
                }
                eg_resolved(c);
        } else if (kind == EG_END_UPSTREAM) {
                eg_upstream_ev(c, ev);
        } else {
                if (ev & EPOLLOUT) {
                        if (!eg_pump_out(c, c->cfd, &c->u2c))
                                return;
                }
                if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
                        eg_client_in(c, ev);
        }
        eg_progress(c);
}

/* A client past the cap gets a 503 it can read and is closed. */
static void eg_refuse_client(al_egress *e, int fd) {
        static const char msg[] =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                "text/plain\r\nContent-Length: 48\r\nConnection: "
                "close\r\n\r\nairlock: the run's connection limit is reached\n";
        if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* best effort: the client is told by the close */
        }
        shutdown(fd, SHUT_WR);
        safe_close(fd);
        e->hits |= HIT_CONNECTIONS;
        eg_entry_add(e, "", 0, false, "net_connections", NULL);
}

static void eg_accept(al_egress *e) {
        for (int i = 0; i < EG_ACCEPT_BURST; i++) {
                int fd = accept4(e->lfd, NULL, NULL,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR ||
                            errno == ECONNABORTED)
                                return;
                        /* out of fds or memory: pause, do not spin */
                        e->accept_at = al_now_ms() + EG_ACCEPT_PAUSE_MS;
                        epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->lfd, NULL);
                        e->lfd_in = false;
                        return;
                }
                if (e->nsock >= e->pol.max_connections) {
                        eg_refuse_client(e, fd);
                        continue;
                }
                struct eg_conn *c = calloc(1, sizeof(*c));
                char *head = malloc(AL_PROXY_HEAD_MAX);
                if (!c || !head) {
                        free(c);
                        free(head);
                        safe_close(fd);
                        continue;
                }
                c->e = e;
                c->cfd = fd;
                c->ufd = -1;
                c->head = head;
                c->entry = -1;
                c->cend = (struct eg_end){c, EG_END_CLIENT};
                c->uend = (struct eg_end){c, EG_END_UPSTREAM};
                c->rend = (struct eg_end){c, EG_END_RESOLVER};
                c->st = EG_HEAD;
                eg_touch(c);
                c->next = e->conns;
                e->conns = c;
                e->nsock++;
                eg_arm(c);
        }
}

/* Deadlines: idle connections, lookups, lingering closes. */
static void eg_timeouts(al_egress *e, double now) {
        for (struct eg_conn *c = e->conns; c; c = c->next) {
                if (c->dead)
                        continue;
                if (c->st == EG_LINGER) {
                        if (now >= c->linger_until)
                                eg_close(c);
                        continue;
                }
                if (c->st == EG_RESOLVING && now >= c->resolve_deadline) {
                        eg_refuse(c, 504, "resolve_timeout", NULL,
                                  "the name lookup took too long");
                        continue;
                }
                if (now < c->deadline)
                        continue;
                if ((c->st == EG_HEAD && !c->head_len) || c->st == EG_CLOSING) {
                        eg_close(c); /* an idle kept-alive client */
                        continue;
                }
                e->hits |= HIT_IDLE;
                if (c->st == EG_CONNECTING || c->st == EG_WAIT_RESOLVE ||
                    c->st == EG_RESOLVING) {
                        eg_refuse(c, 504, "net_idle_ms", NULL,
                                  "no answer from upstream in time");
                        continue;
                }
                if (c->entry >= 0)
                        eg_set_reason(c, "net_idle_ms");
                else if (c->st == EG_HEAD)
                        eg_entry_add(e, "", 0, false, "net_idle_ms", NULL);
                eg_close(c);
        }
}

static int eg_wait_ms(const al_egress *e, double now) {
        double next = -1;
#define EG_SOONER(t)                                                           \
        do {                                                                   \
                if (next < 0 || (t) < next)                                    \
                        next = (t);                                            \
        } while (0)
        if (!e->lfd_in)
                EG_SOONER(e->accept_at);
        for (const struct eg_conn *c = e->conns; c; c = c->next) {
                if (c->dead)
                        continue;
                EG_SOONER(c->st == EG_LINGER ? c->linger_until : c->deadline);
                if (c->st == EG_RESOLVING)
                        EG_SOONER(c->resolve_deadline);
        }
#undef EG_SOONER
        if (next < 0)
                return -1;
        double ms = next - now + 1;
        return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

static void *eg_main(void *arg) {
        al_egress *e = arg;
        struct epoll_event evs[EG_EVENTS];
        while (!atomic_load(&e->stop)) {
                int n = epoll_wait(e->epfd, evs, EG_EVENTS,
                                   eg_wait_ms(e, al_now_ms()));
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < n; i++) {
                        struct eg_end *end = evs[i].data.ptr;
                        if (end->kind == EG_END_LISTEN)
                                eg_accept(e);
                        else if (end->kind == EG_END_WAKE)
                                continue;
                        else if (!end->c->dead)
                                eg_conn_event(end->c, end->kind, evs[i].events);
                }
                double now = al_now_ms();
                eg_timeouts(e, now);
                if (!e->lfd_in && now >= e->accept_at) {
                        struct epoll_event ev = {.events = EPOLLIN,
                                                 .data.ptr = &e->lend};
                        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->lfd, &ev) == 0)
                                e->lfd_in = true;
                }
                /* lookups that waited for a slot */
                eg_reap_lookups(e, false);
                for (struct eg_conn *c = e->conns; c; c = c->next)
                        if (!c->dead && c->st == EG_WAIT_RESOLVE &&
                            e->nresolving < EG_RESOLVERS)
                                eg_resolve_start(c);
                for (struct eg_conn **pc = &e->conns; *pc;) {
                        struct eg_conn *c = *pc;
                        if (c->dead) {
                                *pc = c->next;
                                eg_free(c);
                        } else {
                                eg_arm(c);
                                pc = &c->next;
                        }
                }
        }
        /* the run is over: every connection closes now, also one an
         * orphaned child still holds */
        while (e->conns) {
                struct eg_conn *c = e->conns;
                e->conns = c->next;
                eg_close(c);
                eg_free(c);
        }
        eg_reap_lookups(e, true);
        return NULL;
}

/* --- the interface ------------------------------------------------------- */

int al_egress_start(int lfd, const al_net_policy *policy, al_egress **ret,
                    al_error *err) {
        _cleanup_close_ int fd = lfd;
        if (fd < 0 || !policy || !ret)
                return al_error_set(err, EINVAL, "egress: no socket");
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return al_error_errno(err, errno, "egress: socket");
        al_egress *e = calloc(1, sizeof(*e));
        if (!e)
                return al_error_set(err, ENOMEM, "egress: out of memory");
        e->lfd = e->epfd = e->wfd = -1;
        e->pol = *policy;
        if (!e->pol.max_connections)
                e->pol.max_connections = AL_NET_DEFAULT_CONNECTIONS;
        if (!e->pol.max_bytes_out)
                e->pol.max_bytes_out = AL_NET_DEFAULT_BYTES;
        if (!e->pol.max_bytes_in)
                e->pol.max_bytes_in = AL_NET_DEFAULT_BYTES;
        if (!e->pol.idle_ms)
                e->pol.idle_ms = AL_NET_DEFAULT_IDLE_MS;
        atomic_init(&e->stop, false);
        e->lend = (struct eg_end){NULL, EG_END_LISTEN};
        e->wend = (struct eg_end){NULL, EG_END_WAKE};
        e->epfd = epoll_create1(EPOLL_CLOEXEC);
        e->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        e->lfd = steal_fd(&fd);
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &e->lend};
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &e->wend};
        int r = 0;
        if (e->epfd < 0 || e->wfd < 0 ||
            epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->lfd, &lev) < 0 ||
            epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wfd, &wev) < 0)
                r = al_error_errno(err, errno, "egress: epoll");
        e->lfd_in = true;
        if (!r) {
                /* the proxy takes no signal meant for the supervisor */
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                int rc = pthread_create(&e->th, NULL, eg_main, e);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (rc)
                        r = al_error_errno(err, rc, "egress: thread");
        }
        if (r) {
                safe_close(e->lfd);
                safe_close(e->epfd);
                safe_close(e->wfd);
                free(e);
                return r;
        }
        pthread_setname_np(e->th, "airlock-egress");
        *ret = e;
        return 0;
}

void al_egress_stop(al_egress *e, struct json_t **ret_report, char *ret_hits,
                    size_t hits_size) {
        if (ret_report)
                *ret_report = NULL;
        if (ret_hits && hits_size)
                ret_hits[0] = '\0';
        if (!e)
                return;
        atomic_store(&e->stop, true);
        uint64_t one = 1;
        if (write(e->wfd, &one, sizeof(one)) < 0) {
                /* an eventfd write fails only on overflow: awake anyway */
        }
        pthread_join(e->th, NULL);
        if (ret_report)
                *ret_report = eg_report(e);
        if (ret_hits && hits_size) {
                size_t len = 0;
                for (size_t i = 0; i < ARRAY_SIZE(hit_names); i++) {
                        if (!(e->hits & (1u << i)))
                                continue;
                        int n = snprintf(ret_hits + len, hits_size - len,
                                         "%s%s", len ? "," : "", hit_names[i]);
                        if (n < 0 || (size_t)n >= hits_size - len)
                                break;
                        len += (size_t)n;
                }
        }
        safe_close(e->lfd);
        safe_close(e->epfd);
        safe_close(e->wfd);
        free(e->ent);
        free(e);
}
