/* SPDX-License-Identifier: MIT */
/*
 * The per-run egress proxy (egress-proxy.c), driven as the code in a run
 * drives it: a client on the proxy's socket speaking CONNECT and plain
 * HTTP, a tiny origin on loopback (a forked process, so that its sockets
 * and threads are not counted as the proxy's), names mapped by a test
 * resolver that also counts every lookup. The test runs in a network
 * namespace of its own when the host allows one (then no address here
 * leads anywhere but to this loopback).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "egress.h"
#include "tap.h"

static uint16_t origin_port;
static pid_t origin_pid = -1;
static char origin_log[64] = "/tmp/airlock-egress-XXXXXX";

/* --- the origin ---------------------------------------------------------- */

static void origin_conn(int fd) {
        char buf[32768];
        size_t len = 0;
        char *end = NULL;
        while (!end && len < sizeof(buf) - 1) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        _exit(0);
                len += (size_t)n;
                buf[len] = '\0';
                end = strstr(buf, "\r\n\r\n");
        }
        if (!end)
                _exit(0);
        /* the body, by Content-Length */
        size_t head = (size_t)(end - buf) + 4;
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        while (len < head + body && len < sizeof(buf) - 1) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        int lf = open(origin_log, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (lf >= 0) {
                char rec[sizeof(buf) + 8];
                size_t rl = len < head + body ? len : head + body;
                memcpy(rec, buf, rl);
                memcpy(rec + rl, "\n--\n", 4);
                if (write(lf, rec, rl + 4) < 0)
                        _exit(1);
                close(lf);
        }
        if (!strncmp(buf, "GET /hang", 9)) {
                while (read(fd, buf, sizeof(buf)) > 0)
                        ;
                _exit(0);
        }
        if (!strncmp(buf, "GET /big", 8)) {
                static char big[100000];
                memset(big, 'x', sizeof(big));
                dprintf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                        sizeof(big));
                for (size_t off = 0; off < sizeof(big);) {
                        ssize_t n = write(fd, big + off, sizeof(big) - off);
                        if (n <= 0)
                                _exit(0);
                        off += (size_t)n;
                }
        } else {
                /* framed, and no "Connection: close": a client may keep
                 * its connection to the proxy for the next request */
                dprintf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                            "hello");
        }
        shutdown(fd, SHUT_WR);
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        _exit(0);
}

static int origin_start(void) {
        int lf = mkstemp(origin_log);
        if (lf < 0)
                return -1;
        close(lf);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(s, 64) < 0 || getsockname(s, (struct sockaddr *)&a, &al) < 0)
                return -1;
        origin_port = ntohs(a.sin_port);
        origin_pid = fork();
        if (origin_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGCHLD, SIG_IGN);
                for (;;) {
                        int fd = accept(s, NULL, NULL);
                        if (fd < 0)
                                continue;
                        if (fork() == 0) {
                                prctl(PR_SET_PDEATHSIG, SIGKILL);
                                close(s);
                                origin_conn(fd);
                        }
                        close(fd);
                }
        }
        close(s);
        return origin_pid > 0 ? 0 : -1;
}

/* What the origin was sent, and how many requests. */
static size_t origin_read(char *buf, size_t size) {
        int fd = open(origin_log, O_RDONLY | O_CLOEXEC);
        size_t len = 0;
        if (fd >= 0) {
                ssize_t n;
                while (len < size - 1 &&
                       (n = read(fd, buf + len, size - 1 - len)) > 0)
                        len += (size_t)n;
                close(fd);
        }
        buf[len] = '\0';
        size_t count = 0;
        for (const char *p = buf; (p = strstr(p, "\n--\n")); p += 4)
                count++;
        return count;
}

static size_t origin_requests(void) {
        static char buf[1 << 20];
        return origin_read(buf, sizeof(buf));
}

/* --- the test resolver --------------------------------------------------- */

static pthread_mutex_t res_mu = PTHREAD_MUTEX_INITIALIZER;
static char res_names[4096];
static int res_count;

static void put4(struct sockaddr_storage *ss, const char *ip) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        memset(ss, 0, sizeof(*ss));
        s->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s->sin_addr);
}

/* "hang.test" hangs (as a lookup whose DNS server never answers) until
 * hang_open; how many hang at once, and the most that ever did. */
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static bool hang_open;
static int hang_now, hang_max;

static int test_resolver(const char *host, struct sockaddr_storage *addrs,
                         size_t max, size_t *ret_n) {
        pthread_mutex_lock(&res_mu);
        res_count++;
        size_t l = strlen(res_names);
        snprintf(res_names + l, sizeof(res_names) - l, "%s ", host);
        if (!strcmp(host, "hang.test")) {
                if (++hang_now > hang_max)
                        hang_max = hang_now;
                while (!hang_open)
                        pthread_cond_wait(&hang_cv, &res_mu);
                hang_now--;
                pthread_mutex_unlock(&res_mu);
                return -ETIMEDOUT;
        }
        pthread_mutex_unlock(&res_mu);
        if (max < 2)
                return -ENOBUFS;
        *ret_n = 1;
        if (!strcmp(host, "localhost") || !strcmp(host, "origin.test")) {
                put4(&addrs[0], "127.0.0.1");
        } else if (!strcmp(host, "meta.test")) {
                put4(&addrs[0], "169.254.169.254");
        } else if (!strcmp(host, "mixed.test")) {
                /* the first address public, the second private: every
                 * address is checked, not the first */
                put4(&addrs[0], "93.184.216.34");
                put4(&addrs[1], "10.1.2.3");
                *ret_n = 2;
        } else {
                return -ENOENT;
        }
        return 0;
}

static bool looked_up(const char *name) {
        char want[300];
        snprintf(want, sizeof(want), "%s ", name);
        pthread_mutex_lock(&res_mu);
        bool r = strstr(res_names, want) != NULL;
        pthread_mutex_unlock(&res_mu);
        return r;
}

/* --- the proxy and its clients ------------------------------------------- */

static void policy(al_net_policy *p, const char *const *entries) {
        memset(p, 0, sizeof(*p));
        for (; *entries; entries++) {
                al_error err = {0};
                if (al_net_rule_parse(*entries, &p->rules[p->n], &err) == 0)
                        p->n++;
                else
                        printf("#   rule %s: %s\n", *entries, err.msg);
        }
}

static al_egress *proxy_start(const al_net_policy *p, uint16_t *port) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(s, 64) < 0 ||
            getsockname(s, (struct sockaddr *)&a, &al) < 0) {
                if (s >= 0)
                        close(s);
                return NULL;
        }
        *port = ntohs(a.sin_port);
        al_egress *e = NULL;
        al_error err = {0};
        if (al_egress_start(s, p, &e, &err) < 0) {
                printf("#   al_egress_start: %s\n", err.msg);
                return NULL;
        }
        return e;
}

/* A client of the proxy; reads give up after 10 s (a bound on a broken
 * proxy, not an assertion about time). */
static int client(uint16_t port) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct timeval tv = {.tv_sec = 10};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
                close(s);
                return -1;
        }
        return s;
}

static void send_all(int fd, const char *s, size_t n) {
        while (n) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
                if (w <= 0)
                        return;
                s += w;
                n -= (size_t)w;
        }
}

static void send_str(int fd, const char *s) {
        send_all(fd, s, strlen(s));
}

/* Everything until the proxy closes (or the bound); NUL-terminated. */
static size_t read_all(int fd, char *buf, size_t size) {
        size_t len = 0;
        while (len < size - 1) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return len;
}

/* Read until needle has arrived (or the proxy closes). */
static size_t read_until(int fd, char *buf, size_t size, const char *needle) {
        size_t len = 0;
        buf[0] = '\0';
        while (len < size - 1 && !strstr(buf, needle)) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
        }
        return len;
}

static int status_of(const char *resp) {
        if (strncmp(resp, "HTTP/1.1 ", 9))
                return -1;
        return (int)strtol(resp + 9, NULL, 10);
}

/* The report's entry for host (first one), or NULL. */
static json_t *entry_for(json_t *report, const char *host) {
        size_t i;
        json_t *x;
        json_array_foreach(report, i, x) {
                const char *h = json_string_value(json_object_get(x, "host"));
                if (h && !strcmp(h, host))
                        return x;
        }
        return NULL;
}

static void dump(json_t *report, const char *hits) {
        char *s = json_dumps(report, JSON_COMPACT);
        printf("#   report %s hits \"%s\"\n", s ? s : "(null)", hits);
        free(s);
}

/* --- tests --------------------------------------------------------------- */

static char big_buf[1 << 20];

static void allowed_get_by_absolute_uri(void) {
        char rule[64], req[512];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        size_t before = origin_requests();
        int c = client(port);
        snprintf(req, sizeof(req),
                 "GET http://127.0.0.1:%u/path?q=1 HTTP/1.1\r\n"
                 "Host: 127.0.0.1:%u\r\nProxy-Connection: keep-alive\r\n"
                 "Proxy-Authorization: Basic c2VjcmV0\r\nX-Mine: 1\r\n"
                 "Connection: x-hop\r\nX-Hop: drop me\r\n\r\n",
                 origin_port, origin_port);
        send_str(c, req);
        char resp[4096];
        read_until(c, resp, sizeof(resp), "hello");
        close(c);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "127.0.0.1");
        static char log[1 << 16];
        size_t after = origin_read(log, sizeof(log));
        bool ok_entry = x && json_is_true(json_object_get(x, "allowed")) &&
                        json_integer_value(json_object_get(x, "bytes_in")) > 0;
        json_decref(rep);
        ASSERT_INT_EQ(status_of(resp), 200);
        ASSERT_TRUE(strstr(resp, "hello"));
        ASSERT_INT_EQ(after, before + 1);
        /* upstream in origin-form, hop-by-hop headers dropped */
        ASSERT_TRUE(strstr(log, "GET /path?q=1 HTTP/1.1\r\n"));
        ASSERT_TRUE(strstr(log, "X-Mine: 1\r\n"));
        ASSERT_TRUE(strstr(log, "Connection: close\r\n"));
        ASSERT_TRUE(!strstr(log, "Proxy-Authorization"));
        ASSERT_TRUE(!strstr(log, "Proxy-Connection"));
        ASSERT_TRUE(!strstr(log, "X-Hop"));
        ASSERT_TRUE(!strstr(log, "http://"));
        ASSERT_TRUE(ok_entry);
        ASSERT_STR_EQ(hits, "");
}

static void allowed_connect_then_bytes(void) {
        char rule[64], req[256];
        snprintf(rule, sizeof(rule), "localhost:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int c = client(port);
        snprintf(req, sizeof(req), "CONNECT localhost:%u HTTP/1.1\r\n\r\n",
                 origin_port);
        send_str(c, req);
        char resp[4096];
        read_until(c, resp, sizeof(resp), "\r\n\r\n");
        int st = status_of(resp);
        send_str(c, "GET /tunnel HTTP/1.1\r\nHost: x\r\n\r\n");
        read_until(c, resp, sizeof(resp), "hello");
        close(c);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "localhost");
        bool ok_entry =
                x && json_is_true(json_object_get(x, "allowed")) &&
                !strcmp(json_string_value(json_object_get(x, "address")) ?: "",
                        "127.0.0.1");
        json_decref(rep);
        ASSERT_INT_EQ(st, 200);
        ASSERT_TRUE(strstr(resp, "hello"));
        ASSERT_TRUE(looked_up("localhost"));
        ASSERT_TRUE(ok_entry);
}

static void name_not_listed_is_never_looked_up(void) {
        char rule[64];
        snprintf(rule, sizeof(rule), "localhost:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int statuses[4];
        const char *reqs[] = {
                "CONNECT s3cr3t.attacker.invalid:443 HTTP/1.1\r\n\r\n",
                "CONNECT s3cr3t.attacker.invalid:443 HTTP/1.1\r\n\r\n",
                "CONNECT s3cr3t.attacker.invalid:443 HTTP/1.1\r\n\r\n",
                /* the allowed host on another port */
                "CONNECT localhost:1 HTTP/1.1\r\n\r\n",
        };
        for (int i = 0; i < 4; i++) {
                int c = client(port);
                send_str(c, reqs[i]);
                char resp[1024];
                read_all(c, resp, sizeof(resp));
                statuses[i] = status_of(resp);
                close(c);
        }
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "s3cr3t.attacker.invalid");
        bool coalesced =
                x && json_is_false(json_object_get(x, "allowed")) &&
                json_integer_value(json_object_get(x, "count")) == 3 &&
                !strcmp(json_string_value(json_object_get(x, "reason")) ?: "",
                        "not_allowed");
        json_decref(rep);
        for (int i = 0; i < 4; i++)
                ASSERT_INT_EQ(statuses[i], 403);
        ASSERT_TRUE(!looked_up("s3cr3t.attacker.invalid"));
        ASSERT_TRUE(coalesced);
}

/* The name is on the list; what it resolves to is not. */
static void listed_name_to_refused_address(void) {
        char r1[64], r2[64], r3[64];
        snprintf(r1, sizeof(r1), "origin.test:%u", origin_port);
        snprintf(r2, sizeof(r2), "meta.test:%u", origin_port);
        snprintf(r3, sizeof(r3), "mixed.test:%u", origin_port);
        const char *rules[] = {r1, r2, r3, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        size_t before = origin_requests();
        const char *names[] = {"origin.test", "meta.test", "mixed.test"};
        int st[3];
        for (int i = 0; i < 3; i++) {
                char req[256], resp[1024];
                int c = client(port);
                snprintf(req, sizeof(req),
                         "GET http://%s:%u/ HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
                         names[i], origin_port, names[i], origin_port);
                send_str(c, req);
                read_all(c, resp, sizeof(resp));
                st[i] = status_of(resp);
                close(c);
        }
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        char why[3][64];
        for (int i = 0; i < 3; i++) {
                json_t *x = entry_for(rep, names[i]);
                const char *r =
                        x ? json_string_value(json_object_get(x, "reason"))
                          : NULL;
                snprintf(why[i], sizeof(why[i]), "%s", r ? r : "(none)");
        }
        json_decref(rep);
        size_t after = origin_requests();
        for (int i = 0; i < 3; i++)
                ASSERT_INT_EQ(st[i], 403);
        ASSERT_INT_EQ(after, before);
        const enum al_addr_class want[3] = {AL_ADDR_LOOPBACK, AL_ADDR_LINKLOCAL,
                                            AL_ADDR_PRIVATE};
        for (int i = 0; i < 3; i++) {
                char w[64];
                snprintf(w, sizeof(w), "address_%s",
                         al_addr_class_name(want[i]));
                ASSERT_STR_EQ(why[i], w);
        }
}

static void bytes_in_stop_at_the_cap(void) {
        char rule[64], req[256];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        p.max_bytes_in = 1000;
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int c = client(port);
        snprintf(req, sizeof(req),
                 "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n"
                 "GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
                 origin_port);
        send_str(c, req);
        size_t got = read_all(c, big_buf, sizeof(big_buf));
        close(c);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "127.0.0.1");
        json_int_t in =
                x ? json_integer_value(json_object_get(x, "bytes_in")) : -1;
        json_decref(rep);
        const char *established = "HTTP/1.1 200 Connection established\r\n\r\n";
        ASSERT_TRUE(!strncmp(big_buf, established, strlen(established)));
        /* exactly the cap came through, of the 100 kB the origin sent */
        ASSERT_INT_EQ(got - strlen(established), 1000);
        ASSERT_INT_EQ(in, 1000);
        ASSERT_TRUE(strstr(hits, "net_bytes_in"));
}

static void bytes_out_stop_at_the_cap(void) {
        char rule[64], req[4096];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        p.max_bytes_out = 100;
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        size_t before = origin_requests();
        int c = client(port);
        char pad[1024];
        memset(pad, 'a', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        snprintf(req, sizeof(req),
                 "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n"
                 "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n",
                 origin_port, pad);
        send_str(c, req);
        read_all(c, big_buf, sizeof(big_buf));
        close(c);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "127.0.0.1");
        json_int_t out =
                x ? json_integer_value(json_object_get(x, "bytes_out")) : -1;
        json_decref(rep);
        ASSERT_INT_EQ(out, 100);
        ASSERT_TRUE(strstr(hits, "net_bytes_out"));
        /* the origin never saw a whole request head */
        ASSERT_INT_EQ(origin_requests(), before);
}

static void connection_cap(void) {
        char rule[64], req[256];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        p.max_connections = 2; /* client and upstream sockets together */
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int a = client(port);
        int b = client(port);
        snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
                 origin_port);
        send_str(b, req);
        char rb[1024], rc[1024];
        read_all(b, rb, sizeof(rb));
        close(b);
        /* b is gone: a third client takes its place, a fourth is over */
        int c = client(port);
        int d = client(port);
        read_all(d, rc, sizeof(rc));
        close(a);
        close(c);
        close(d);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_decref(rep);
        /* b had a client socket but no room for its upstream one */
        ASSERT_INT_EQ(status_of(rb), 503);
        ASSERT_INT_EQ(status_of(rc), 503);
        ASSERT_TRUE(strstr(hits, "net_connections"));
}

static void idle_connection_closed(void) {
        char rule[64], req[256];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        p.idle_ms = 200;
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int c = client(port);
        snprintf(req, sizeof(req),
                 "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n"
                 "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n",
                 origin_port);
        send_str(c, req);
        char resp[1024];
        read_until(c, resp, sizeof(resp), "\r\n\r\n");
        /* the origin never answers: the proxy, not the 10 s bound,
         * ends it */
        char one;
        ssize_t n = recv(c, &one, 1, 0);
        int eno = errno;
        close(c);
        json_t *rep = NULL;
        char hits[128];
        al_egress_stop(e, &rep, hits, sizeof(hits));
        dump(rep, hits);
        json_t *x = entry_for(rep, "127.0.0.1");
        const char *why =
                x ? json_string_value(json_object_get(x, "reason")) : NULL;
        bool idle = why && !strcmp(why, "net_idle_ms");
        json_decref(rep);
        if (n < 0)
                printf("#   recv: %s\n", strerror(eno));
        ASSERT_INT_EQ(status_of(resp), 200);
        ASSERT_INT_EQ(n, 0);
        ASSERT_TRUE(strstr(hits, "net_idle_ms"));
        ASSERT_TRUE(idle);
}

/* Each on a connection of its own: refused with a parse status, and the
 * proxy still serves the next. */
static void malformed_and_smuggled_requests(void) {
        char rule[64], good[256];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        size_t before = origin_requests();
        char u[64];
        snprintf(u, sizeof(u), "http://127.0.0.1:%u/", origin_port);
        char bad[8][512];
        snprintf(bad[0], 512, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                 origin_port);
        snprintf(bad[1], 512,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: "
                 "4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 u, origin_port);
        snprintf(bad[2], 512,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: "
                 "4\r\nContent-Length: 40\r\n\r\nabcd",
                 u, origin_port);
        snprintf(bad[3], 512, "GET %s HTTP/1.1\nHost: 127.0.0.1:%u\n\n", u,
                 origin_port);
        snprintf(bad[4], 512, "GET %s HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                 u);
        snprintf(bad[5], 512, "CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n");
        snprintf(bad[6], 512, "CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n");
        snprintf(bad[7], 512, "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\r\n\r\n");
        int st[8];
        for (int i = 0; i < 8; i++) {
                int c = client(port);
                send_str(c, bad[i]);
                char resp[2048];
                read_all(c, resp, sizeof(resp));
                st[i] = status_of(resp);
                close(c);
        }
        /* a head that never ends */
        int c = client(port);
        char *huge = malloc(AL_PROXY_HEAD_MAX + 1024);
        ASSERT_TRUE(huge);
        int hl = snprintf(huge, 256, "GET %s HTTP/1.1\r\nX: ", u);
        memset(huge + hl, 'a', AL_PROXY_HEAD_MAX + 1024 - (size_t)hl);
        send_all(c, huge, AL_PROXY_HEAD_MAX + 1024);
        free(huge);
        char resp[2048];
        read_all(c, resp, sizeof(resp));
        int st_huge = status_of(resp);
        close(c);
        /* the proxy lives */
        c = client(port);
        snprintf(good, sizeof(good),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", u,
                 origin_port);
        send_str(c, good);
        read_until(c, resp, sizeof(resp), "hello");
        int st_good = status_of(resp);
        close(c);
        al_egress_stop(e, NULL, NULL, 0);
        for (int i = 0; i < 8; i++) {
                printf("#   bad[%d] -> %d\n", i, st[i]);
                ASSERT_TRUE(st[i] == 400 || st[i] == 405 || st[i] == 501);
        }
        ASSERT_INT_EQ(st_huge, 431);
        ASSERT_INT_EQ(st_good, 200);
        /* only the good one reached the origin */
        ASSERT_INT_EQ(origin_requests(), before + 1);
}

/* A second request behind the first on one connection is decided on its
 * own, never passed to the first one's upstream. */
static void next_request_decided_again(void) {
        char rule[64], req[1024];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        size_t before = origin_requests();
        int c = client(port);
        snprintf(req, sizeof(req),
                 "POST http://127.0.0.1:%u/ HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                 "Content-Length: 5\r\n\r\nhello"
                 "GET http://evil.invalid/ HTTP/1.1\r\nHost: evil.invalid\r\n"
                 "\r\n",
                 origin_port, origin_port);
        send_str(c, req);
        char resp[4096];
        read_all(c, resp, sizeof(resp));
        close(c);
        al_egress_stop(e, NULL, NULL, 0);
        static char log[1 << 16];
        size_t after = origin_read(log, sizeof(log));
        char *second = strstr(resp, "hello");
        ASSERT_INT_EQ(status_of(resp), 200);
        ASSERT_TRUE(second);
        ASSERT_INT_EQ(status_of(second + 5), 403);
        ASSERT_INT_EQ(after, before + 1);
        ASSERT_TRUE(!strstr(log, "evil.invalid"));
        ASSERT_TRUE(!looked_up("evil.invalid"));
}

/* Lookups that hang past the proxy's lookup time are answered 504, but
 * their threads still run: they keep their slots, so the code cannot
 * have the supervisor start a new thread every few seconds, without end
 * (4 more each 5 s before). */
static void hung_lookups_keep_their_slots(void) {
        const char *rules[] = {"hang.test:80", NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        static const char req[] = "CONNECT hang.test:80 HTTP/1.1\r\n\r\n";
        int first[4], second[4], st[4];
        for (int i = 0; i < 4; i++) {
                first[i] = client(port);
                send_str(first[i], req);
        }
        for (int i = 0; i < 4; i++) {
                char resp[1024];
                read_all(first[i], resp, sizeof(resp));
                st[i] = status_of(resp);
                close(first[i]);
        }
        /* the four hang on; four more requests */
        for (int i = 0; i < 4; i++) {
                second[i] = client(port);
                send_str(second[i], req);
        }
        usleep(500 * 1000);
        pthread_mutex_lock(&res_mu);
        int most = hang_max;
        hang_open = true;
        pthread_cond_broadcast(&hang_cv);
        pthread_mutex_unlock(&res_mu);
        for (int i = 0; i < 4; i++)
                close(second[i]);
        al_egress_stop(e, NULL, NULL, 0);
        /* every helper done before the test goes on */
        for (int i = 0; i < 500; i++) {
                pthread_mutex_lock(&res_mu);
                int now = hang_now;
                pthread_mutex_unlock(&res_mu);
                if (!now)
                        break;
                usleep(10 * 1000);
        }
        for (int i = 0; i < 4; i++)
                ASSERT_INT_EQ(st[i], 504);
        ASSERT_INT_EQ(most, 4);
}

/* The run is over while a tunnel is open (a child left behind holds
 * it): stopping the proxy closes it. */
static void stop_closes_open_tunnels(void) {
        char rule[64], req[256];
        snprintf(rule, sizeof(rule), "127.0.0.1:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        uint16_t port;
        al_egress *e = proxy_start(&p, &port);
        ASSERT_TRUE(e);
        int c = client(port);
        snprintf(req, sizeof(req),
                 "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n"
                 "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n",
                 origin_port);
        send_str(c, req);
        char resp[1024];
        read_until(c, resp, sizeof(resp), "\r\n\r\n");
        al_egress_stop(e, NULL, NULL, 0);
        char one;
        ssize_t n = recv(c, &one, 1, 0);
        close(c);
        ASSERT_INT_EQ(status_of(resp), 200);
        ASSERT_INT_EQ(n, 0);
}

static int count_dir(const char *path) {
        DIR *d = opendir(path);
        int n = 0;
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* 50 proxies, each with an allowed and a refused request, started and
 * stopped: the fds and threads come back to where they were (lookup
 * threads end on their own, so the count is polled, bounded). */
static void fifty_proxies_leak_nothing(void) {
        char rule[64], req[256], resp[1024];
        snprintf(rule, sizeof(rule), "localhost:%u", origin_port);
        const char *rules[] = {rule, NULL};
        al_net_policy p;
        policy(&p, rules);
        int fds0 = count_dir("/proc/self/fd");
        int tasks0 = count_dir("/proc/self/task");
        int served = 0;
        for (int i = 0; i < 50; i++) {
                uint16_t port;
                al_egress *e = proxy_start(&p, &port);
                if (!e)
                        break;
                int c = client(port);
                snprintf(req, sizeof(req),
                         "CONNECT localhost:%u HTTP/1.1\r\n\r\n", origin_port);
                send_str(c, req);
                read_until(c, resp, sizeof(resp), "\r\n\r\n");
                served += status_of(resp) == 200;
                int d = client(port);
                send_str(d, "CONNECT nope.invalid:443 HTTP/1.1\r\n\r\n");
                read_all(d, resp, sizeof(resp));
                close(d);
                /* c is left open: stop closes it */
                al_egress_stop(e, NULL, NULL, 0);
                close(c);
        }
        int fds = -1, tasks = -1;
        for (int i = 0; i < 500; i++) {
                fds = count_dir("/proc/self/fd");
                tasks = count_dir("/proc/self/task");
                if (fds == fds0 && tasks == tasks0)
                        break;
                usleep(10000);
        }
        ASSERT_INT_EQ(served, 50);
        ASSERT_INT_EQ(fds, fds0);
        ASSERT_INT_EQ(tasks, tasks0);
}

/* A network namespace of the test's own, its loopback up: no address
 * the proxy is given leads off this machine. */
static const char *own_netns(void) {
        static char why[128];
        if (unshare(CLONE_NEWNET) < 0 &&
            unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
                snprintf(why, sizeof(why), "no network namespace (%s)",
                         strerror(errno));
                return why;
        }
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return "lo: no flags";
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return "lo: cannot bring it up";
        close(s);
        return NULL;
}

int main(void) {
        const char *why = own_netns();
        if (why)
                printf("# running in the host's network namespace: %s\n", why);
        if (origin_start() < 0) {
                printf("1..0 # SKIP no loopback origin: %s\n", strerror(errno));
                return 0;
        }
        al_egress_test_resolver = test_resolver;
        RUN(allowed_get_by_absolute_uri);
        RUN(allowed_connect_then_bytes);
        RUN(name_not_listed_is_never_looked_up);
        if (why)
                SKIP(listed_name_to_refused_address,
                     "needs a network namespace of its own");
        else
                RUN(listed_name_to_refused_address);
        RUN(bytes_in_stop_at_the_cap);
        RUN(bytes_out_stop_at_the_cap);
        RUN(connection_cap);
        RUN(idle_connection_closed);
        RUN(malformed_and_smuggled_requests);
        RUN(next_request_decided_again);
        RUN(hung_lookups_keep_their_slots);
        RUN(stop_closes_open_tunnels);
        RUN(fifty_proxies_leak_nothing);
        kill(origin_pid, SIGKILL);
        waitpid(origin_pid, NULL, 0);
        unlink(origin_log);
        TAP_END();
}
