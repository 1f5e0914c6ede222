/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Egress by allowlist: a run keeps its own empty network namespace; the
 * supervisor serves an HTTP proxy on a socket made inside it
 * (127.0.0.1:AL_EGRESS_PORT in the run's namespace, before lock-down) and
 * connects out, from the host's namespace, only to what the run's
 * allowlist names. Code that ignores the proxy variables reaches nothing.
 *
 *   rules:   al_net_rule_parse / al_net_policy_* (egress-rules.c)
 *   ranges:  al_addr_classify (egress-rules.c)
 *   parsing: al_proxy_parse (egress-http.c)
 *   proxy:   al_egress_start(listen_fd, policy) ... al_egress_stop(report)
 *            (egress-proxy.c: one thread and one epoll loop per run)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

struct json_t;

/* The port of the proxy inside a run's network namespace. */
#define AL_EGRESS_PORT 3128
#define AL_EGRESS_PORT_STR "3128"
/* node reads no proxy variables: this file, written into a run's root,
 * is required through NODE_OPTIONS (languages/net/node-proxy.js) */
#define AL_EGRESS_NODE_PRELOAD "/etc/airlock-node-proxy.js"
/* Entries in one allowlist. */
#define AL_NET_MAX_RULES 64
/* A host name (after IDNA to ASCII): DNS's 253 and a wildcard's "*.". */
#define AL_NET_HOST_MAX 256

/* --- rules ------------------------------------------------------------- */

typedef struct al_net_rule {
        char host[AL_NET_HOST_MAX]; /* lower-case ASCII (punycode), no
                                       trailing dot; for a wildcard the
                                       suffix without "*." */
        bool wildcard;   /* "*.example.com": any name below, not the name */
        bool ip_literal; /* "10.0.0.5", "[::1]": that address only */
        bool local;      /* an IP literal in a refused range, or
                            "localhost": named explicitly, so allowed */
        uint16_t port;   /* 0: 80 and 443 only */
} al_net_rule;

typedef struct al_net_policy {
        al_net_rule rules[AL_NET_MAX_RULES];
        size_t n;
        /* bounds per run (0: the default), set from the run's limits of
         * the same names (al_limits), which are also the names in
         * limits_hit: net_connections, net_bytes_out, net_bytes_in,
         * net_idle_ms */
        unsigned max_connections;
        uint64_t max_bytes_out, max_bytes_in;
        unsigned idle_ms;
} al_net_policy;

/* = al_limits_default's net_* (test-limits checks it) */
#define AL_NET_DEFAULT_CONNECTIONS 32
#define AL_NET_DEFAULT_BYTES (100ull << 20)
#define AL_NET_DEFAULT_IDLE_MS 30000

/* One entry: "host", "host:port", "*.suffix[:port]", "1.2.3.4[:port]",
 * "[v6][:port]", "localhost[:port]". IDNA names are turned into punycode
 * and lower-cased; a wildcard only as the whole first label; ports
 * 1-65535. -EINVAL and err naming the entry when it is not one. */
int al_net_rule_parse(const char *entry, al_net_rule *out, al_error *err);
/* A host as the code asked for it (a CONNECT or an absolute URI): the
 * form rules are matched on (IDNA to ASCII, lower case, no trailing dot,
 * brackets of an IPv6 literal removed); -EINVAL for one that is not a
 * host name or an IP literal. */
int al_net_host_normalize(const char *in, char *out, size_t size,
                          al_error *err);
/* Whether host (normalized) and port are allowed; *which: the rule. */
bool al_net_allowed(const al_net_policy *p, const char *host, uint16_t port,
                    const al_net_rule **which);
/* Whether every rule of want is allowed by some rule of ceiling (a
 * request may narrow the key's or server's list, never widen it); when
 * not, *bad names the first entry that is not. */
bool al_net_policy_subset(const al_net_policy *want,
                          const al_net_policy *ceiling, const al_net_rule **bad);

/* An entry back as text in its normalized form ("*.example.com:443",
 * "[::1]:8080", "pypi.org"): what al_net_rule_parse gives again. */
void al_net_rule_format(const al_net_rule *r, char *out, size_t size);
/* "a,b:443,*.c" (comma-separated, as --allow-net takes it) into out with
 * the default bounds: 0, or -EINVAL and err naming the bad entry (empty
 * entries, more than AL_NET_MAX_RULES). An empty list gives n = 0. */
int al_net_policy_parse_list(const char *list, al_net_policy *out,
                             al_error *err);
/* The same list in normalized form, comma-separated, into out: -ENOSPC
 * when it does not fit. */
int al_net_policy_format(const al_net_policy *p, char *out, size_t size);

/* --- addresses --------------------------------------------------------- */

enum al_addr_class {
        AL_ADDR_PUBLIC = 0,
        AL_ADDR_LOOPBACK,   /* 127/8, ::1, 0/8 and :: (reach loopback) */
        AL_ADDR_PRIVATE,    /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
        AL_ADDR_LINKLOCAL,  /* 169.254/16 (metadata), fe80::/10 */
        AL_ADDR_SHARED,     /* 100.64/10 (CGNAT) */
        AL_ADDR_MULTICAST,  /* 224/4, ff00::/8, broadcast */
        AL_ADDR_RESERVED,   /* 198.18/15, 240/4, documentation, 64:ff9b::/96
                               (NAT64) and other special-purpose blocks */
};
/* The class of an address; IPv4-mapped and IPv4-compatible IPv6 forms
 * are classed as the IPv4 address they carry. */
enum al_addr_class al_addr_classify(const struct sockaddr *sa);
const char *al_addr_class_name(enum al_addr_class c);

/* --- HTTP proxy requests ----------------------------------------------- */

typedef struct al_proxy_req {
        bool connect;                 /* CONNECT host:port, else plain HTTP */
        char method[16];
        char host[AL_NET_HOST_MAX];   /* normalized */
        uint16_t port;
        char origin_path[4096];       /* plain HTTP: the path and query to
                                         send upstream (origin-form) */
        size_t head_len;              /* bytes of the request head */
        uint64_t body_len;            /* Content-Length, 0 if none */
} al_proxy_req;
/* Parse a request head in buf[0..len): > 0 (its length, *out filled) when
 * whole, 0 when more is needed (at most AL_PROXY_HEAD_MAX), or -status
 * (400, 405, 414, 431, 501) with err saying why: an origin-form request
 * (only absolute URIs are routed), a Host header that disagrees with the
 * URI, Transfer-Encoding (with or without Content-Length), two
 * Content-Lengths, a bare LF, a bad CONNECT target. */
#define AL_PROXY_HEAD_MAX (16u << 10)
int al_proxy_parse(const char *buf, size_t len, al_proxy_req *out,
                   al_error *err);

/* --- the proxy ----------------------------------------------------------- */

typedef struct al_egress al_egress;
/* Serve the listening socket lfd (made in the run's namespace; taken) for
 * policy (copied) on a thread of its own. */
int al_egress_start(int lfd, const al_net_policy *policy, al_egress **ret,
                    al_error *err);
/* Close every connection (also one an orphaned child holds open), join
 * the thread, and give the report: *ret_report a JSON array of
 * {host, port, allowed, reason?, address?, bytes_out, bytes_in} (hosts as
 * asked, truncated to 256 bytes; repeated denials of one host:port
 * coalesced with "count"), *ret_hits the limits hit (comma-separated
 * net_connections, net_bytes_out, net_bytes_in, net_idle_ms) or "".
 * NULL-safe. */
void al_egress_stop(al_egress *e, struct json_t **ret_report, char *ret_hits,
                    size_t hits_size);

/* --- for tests ------------------------------------------------------------ */

struct sockaddr_storage;
/* How the proxy looks up a name (never an IP literal, never a name that is
 * not on the list): fill addrs with up to max addresses of host (ports
 * left 0), *ret_n with how many the name has (it may be more than max: the
 * proxy then refuses the name, since it checks every address); 0 or
 * -errno. It runs on a helper thread of its own. */
typedef int (*al_egress_resolver_fn)(const char *host,
                                     struct sockaddr_storage *addrs, size_t max,
                                     size_t *ret_n);
/* NULL (the default): getaddrinfo(). A unit test sets it to count the
 * lookups and to map names to loopback without /etc/hosts. */
extern al_egress_resolver_fn al_egress_test_resolver;
