/* SPDX-License-Identifier: MIT */
/*
 * The allowlist of a run's egress (egress.h): its entries, parsed strictly
 * into one normalized form; whether a host and port the code asked for
 * are on it; whether a request's list stays within a key's or server's;
 * and the class of an address the proxy resolved, so that loopback,
 * link-local, private and other special ranges are refused unless the
 * list names them explicitly. Pure functions: no I/O, no allocation kept.
 *
 * One normalization for both sides: an entry and a host the code names go
 * through al_net_host_normalize, so that "Bücher.example", its punycode
 * and "ＢＵＣＨＥＲ.example" cannot be told apart by the matcher, and the
 * proxy resolves exactly the form that was matched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "macro.h"

/* An entry or a host as given, before IDNA: a name is at most 253 bytes
 * in ASCII; Unicode labels take up to 4 bytes a character and the caller
 * may have mapped forms (fullwidth). Longer is refused before libidn2
 * sees it. */
#define NET_INPUT_MAX 1024
/* DNS: a name of 253 characters without its trailing dot, labels of 63. */
#define NET_NAME_MAX 253
#define NET_LABEL_MAX 63

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* A label that inet_aton() (and so getaddrinfo) reads as a number:
 * decimal, octal or 0x-hex. A name whose last label is one is a numeric
 * address in disguise ("127.1", "0x7f.1", "2130706433"). */
static bool label_is_number(const char *l, size_t n) {
        if (n == 0)
                return false;
        size_t i = 0;
        if (n > 2 && l[0] == '0' && l[1] == 'x') {
                for (i = 2; i < n; i++)
                        if (!is_hex(l[i]))
                                return false;
                return true;
        }
        for (; i < n; i++)
                if (!is_digit(l[i]))
                        return false;
        return true;
}

/* A normalized name: lower-case ASCII letters, digits, '-' and '_'
 * (real hosts carry underscores; libidn2 has already refused a label
 * that begins or ends with '-'), labels of 1-63, 253 in all. */
static int name_check(const char *s, al_error *err) {
        size_t len = strlen(s);
        if (len == 0)
                return al_error_set(err, EINVAL, "empty host name");
        if (len > NET_NAME_MAX)
                return al_error_set(err, EINVAL,
                                    "host name of %zu bytes, over DNS's %d",
                                    len, NET_NAME_MAX);
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                char c = s[i];
                if (i < len && c != '.') {
                        if (!((c >= 'a' && c <= 'z') || is_digit(c) ||
                              c == '-' || c == '_'))
                                return al_error_set(
                                        err, EINVAL,
                                        "host name holds character 0x%02x",
                                        (unsigned char)c);
                        continue;
                }
                size_t n = i - start;
                if (n == 0)
                        return al_error_set(err, EINVAL,
                                            "host name has an empty label");
                if (n > NET_LABEL_MAX)
                        return al_error_set(err, EINVAL,
                                            "host name label of %zu bytes, "
                                            "over DNS's %d",
                                            n, NET_LABEL_MAX);
                if (s[start] == '-' || s[i - 1] == '-')
                        return al_error_set(err, EINVAL,
                                            "host name label begins or ends "
                                            "with '-'");
                if (i == len && label_is_number(s + start, n))
                        return al_error_set(err, EINVAL,
                                            "numeric host that is not an "
                                            "IPv4 address a.b.c.d");
                start = i + 1;
        }
        return 0;
}

/* An IPv6 literal (no brackets) to its canonical text, or -EINVAL. */
static int v6_canon(const char *s, size_t n, char *out, size_t size) {
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (n == 0 || n >= sizeof(tmp))
                return -EINVAL;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET6, tmp, &a) != 1)
                return -EINVAL;
        if (!inet_ntop(AF_INET6, &a, out, (socklen_t)size))
                return -ENAMETOOLONG;
        return 0;
}

/* Normalize, and say whether the result is an IP literal. */
static int host_normalize(const char *in, char *out, size_t size, bool *ret_ip,
                          al_error *err) {
        _cleanup_free_ char *ascii = NULL;
        bool ip = false;

        if (!in || !*in)
                return al_error_set(err, EINVAL, "empty host");
        size_t len = strnlen(in, NET_INPUT_MAX + 1);
        if (len > NET_INPUT_MAX)
                return al_error_set(err, EINVAL, "host of more than %d bytes",
                                    NET_INPUT_MAX);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)in[i];
                if (c <= 0x20 || c == 0x7f)
                        return al_error_set(err, EINVAL,
                                            "host holds control or space "
                                            "character 0x%02x",
                                            c);
        }
        if (in[0] == '[' || strchr(in, ':')) {
                /* an IPv6 literal, with its brackets or (a host already
                 * split from its port) without */
                const char *s = in;
                size_t n = len;
                if (in[0] == '[') {
                        if (len < 2 || in[len - 1] != ']')
                                return al_error_set(err, EINVAL,
                                                    "unclosed '[' in host");
                        s++;
                        n -= 2;
                }
                if (v6_canon(s, n, out, size) < 0)
                        return al_error_set(err, EINVAL,
                                            "not an IPv6 address: %.*s",
                                            (int)(n > 64 ? 64 : n), s);
                if (ret_ip)
                        *ret_ip = true;
                return 0;
        }

        /* IDNA2008 with UTS #46 (non-transitional) mapping, as browsers
         * do: lower case, fullwidth forms folded, Unicode labels to
         * punycode, "xn--" labels checked to be valid punycode. */
        int r = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&ascii,
                               IDN2_NONTRANSITIONAL);
        if (r != IDN2_OK)
                return al_error_set(err, EINVAL, "not a host name (IDNA: %s)",
                                    idn2_strerror(r));
        size_t alen = strlen(ascii);
        /* "example.com." is "example.com": one form for both sides */
        if (alen > 0 && ascii[alen - 1] == '.')
                ascii[--alen] = '\0';

        /* after the mapping, so that "１２７.０.０.１" is 127.0.0.1 */
        struct in_addr a4;
        if (inet_pton(AF_INET, ascii, &a4) == 1) {
                if (!inet_ntop(AF_INET, &a4, out, (socklen_t)size))
                        return al_error_set(err, ENAMETOOLONG,
                                            "no room for the address");
                ip = true;
        } else {
                r = name_check(ascii, err);
                if (r < 0)
                        return r;
                if (alen >= size)
                        return al_error_set(err, ENAMETOOLONG,
                                            "host name of %zu bytes, over "
                                            "%zu",
                                            alen, size - 1);
                memcpy(out, ascii, alen + 1);
        }
        if (ret_ip)
                *ret_ip = ip;
        return 0;
}

int al_net_host_normalize(const char *in, char *out, size_t size,
                          al_error *err) {
        if (!out || size == 0)
                return -EINVAL;
        return host_normalize(in, out, size, NULL, err);
}

/* "1"-"65535", decimal, no sign, no leading zero, nothing else. */
static int port_parse(const char *s, uint16_t *ret) {
        unsigned v = 0;
        size_t n = strlen(s);
        if (n == 0 || n > 5 || s[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!is_digit(s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int al_net_rule_parse(const char *entry, al_net_rule *out, al_error *err) {
        char host[NET_INPUT_MAX + 1];
        const char *port = NULL;
        al_net_rule r = {0};
        int ret;

        if (!entry || !*entry)
                return al_error_set(err, EINVAL, "empty allowlist entry");
        size_t len = strnlen(entry, NET_INPUT_MAX + 1);
        if (len > NET_INPUT_MAX)
                return al_error_set(err, EINVAL,
                                    "allowlist entry of more than %d bytes",
                                    NET_INPUT_MAX);
        /* the entry's own words, bounded, in every message below */
        int shown = (int)(len > 80 ? 80 : len);

        if (entry[0] == '[') {
                const char *close = strchr(entry, ']');
                if (!close)
                        return al_error_set(err, EINVAL,
                                            "allowlist entry \"%.*s\": "
                                            "unclosed '['",
                                            shown, entry);
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != '\0')
                        return al_error_set(err, EINVAL,
                                            "allowlist entry \"%.*s\": "
                                            "expected ':port' after ']'",
                                            shown, entry);
                size_t n = (size_t)(close + 1 - entry);
                memcpy(host, entry, n);
                host[n] = '\0';
        } else {
                const char *colon = strchr(entry, ':');
                if (colon && strchr(colon + 1, ':'))
                        return al_error_set(err, EINVAL,
                                            "allowlist entry \"%.*s\": an "
                                            "IPv6 address is written in "
                                            "brackets, as [::1]:443",
                                            shown, entry);
                size_t n = colon ? (size_t)(colon - entry) : len;
                memcpy(host, entry, n);
                host[n] = '\0';
                if (colon)
                        port = colon + 1;
        }
        if (port && port_parse(port, &r.port) < 0)
                return al_error_set(err, EINVAL,
                                    "allowlist entry \"%.*s\": port is not "
                                    "a number 1-65535",
                                    shown, entry);

        const char *name = host;
        if (host[0] == '*') {
                if (host[1] != '.')
                        return al_error_set(err, EINVAL,
                                            "allowlist entry \"%.*s\": a "
                                            "wildcard is only the whole "
                                            "first label, as *.example.com",
                                            shown, entry);
                r.wildcard = true;
                name += 2;
        }
        if (strchr(name, '*'))
                return al_error_set(err, EINVAL,
                                    "allowlist entry \"%.*s\": a wildcard "
                                    "is only the whole first label, as "
                                    "*.example.com",
                                    shown, entry);

        al_error e = {0};
        ret = host_normalize(name, r.host, sizeof(r.host), &r.ip_literal, &e);
        if (ret < 0)
                return al_error_set(err, -ret, "allowlist entry \"%.*s\": %s",
                                    shown, entry, e.msg);
        if (r.wildcard && r.ip_literal)
                return al_error_set(err, EINVAL,
                                    "allowlist entry \"%.*s\": a wildcard "
                                    "names host names, not addresses",
                                    shown, entry);
        if (r.ip_literal) {
                /* the literal names its address, whatever range it is in */
                union {
                        struct sockaddr sa;
                        struct sockaddr_in in4;
                        struct sockaddr_in6 in6;
                } u = {0};
                if (inet_pton(AF_INET, r.host, &u.in4.sin_addr) == 1)
                        u.in4.sin_family = AF_INET;
                else if (inet_pton(AF_INET6, r.host, &u.in6.sin6_addr) == 1)
                        u.in6.sin6_family = AF_INET6;
                r.local = al_addr_classify(&u.sa) != AL_ADDR_PUBLIC;
        } else if (!r.wildcard && strcmp(r.host, "localhost") == 0) {
                /* only the name itself: not "*.localhost", not
                 * "localhost.localdomain" (names a resolver may still
                 * answer with loopback) */
                r.local = true;
        }
        *out = r;
        return 0;
}

static bool port_ok(const al_net_rule *r, uint16_t port) {
        if (r->port == 0)
                return port == 80 || port == 443;
        return r->port == port;
}

/* Whether name is strictly below suffix ("a.b.c" below "b.c"). */
static bool below(const char *name, const char *suffix) {
        size_t n = strlen(name), s = strlen(suffix);
        return n > s + 1 && name[n - s - 1] == '.' &&
               memcmp(name + n - s, suffix, s) == 0;
}

static bool host_ok(const al_net_rule *r, const char *host) {
        if (r->wildcard)
                return below(host, r->host);
        return strcmp(r->host, host) == 0;
}

bool al_net_allowed(const al_net_policy *p, const char *host, uint16_t port,
                    const al_net_rule **which) {
        if (!p || !host || port == 0)
                return false;
        for (size_t i = 0; i < p->n && i < AL_NET_MAX_RULES; i++) {
                const al_net_rule *r = &p->rules[i];
                if (port_ok(r, port) && host_ok(r, host)) {
                        if (which)
                                *which = r;
                        return true;
                }
        }
        return false;
}

void al_net_rule_format(const al_net_rule *r, char *out, size_t size) {
        bool v6 = r->ip_literal && strchr(r->host, ':');
        char port[8] = "";
        if (r->port)
                snprintf(port, sizeof(port), ":%u", (unsigned)r->port);
        snprintf(out, size, "%s%s%s%s%s", r->wildcard ? "*." : "",
                 v6 ? "[" : "", r->host, v6 ? "]" : "", port);
}

int al_net_policy_parse_list(const char *list, al_net_policy *out,
                             al_error *err) {
        al_net_policy p = {.max_connections = AL_NET_DEFAULT_CONNECTIONS,
                           .max_bytes_out = AL_NET_DEFAULT_BYTES,
                           .max_bytes_in = AL_NET_DEFAULT_BYTES,
                           .idle_ms = AL_NET_DEFAULT_IDLE_MS};
        char entry[NET_INPUT_MAX + 1];
        const char *s = list ? list : "";
        while (*s) {
                size_t n = strcspn(s, ",");
                if (n == 0)
                        return al_error_set(err, EINVAL,
                                            "empty allowlist entry");
                if (n > NET_INPUT_MAX)
                        return al_error_set(err, EINVAL,
                                            "allowlist entry of more than %d "
                                            "bytes",
                                            NET_INPUT_MAX);
                if (p.n == AL_NET_MAX_RULES)
                        return al_error_set(err, EINVAL,
                                            "at most %d allowlist entries",
                                            AL_NET_MAX_RULES);
                memcpy(entry, s, n);
                entry[n] = '\0';
                int r = al_net_rule_parse(entry, &p.rules[p.n], err);
                if (r < 0)
                        return r;
                p.n++;
                s += n;
                if (*s == ',' && !*++s)
                        return al_error_set(err, EINVAL,
                                            "empty allowlist entry");
        }
        *out = p;
        return 0;
}

int al_net_policy_format(const al_net_policy *p, char *out, size_t size) {
        size_t o = 0;
        if (size)
                out[0] = '\0';
        for (size_t i = 0; p && i < p->n && i < AL_NET_MAX_RULES; i++) {
                char one[AL_NET_HOST_MAX + 16];
                al_net_rule_format(&p->rules[i], one, sizeof(one));
                int k = snprintf(out + o, size - o, "%s%s", o ? "," : "", one);
                if (k < 0 || (size_t)k >= size - o)
                        return -ENOSPC;
                o += (size_t)k;
        }
        return 0;
}

/* Whether rule c allows every host of rule w on port. */
static bool covers(const al_net_rule *c, const al_net_rule *w, uint16_t port) {
        if (!port_ok(c, port))
                return false;
        if (w->ip_literal || !c->wildcard)
                return !c->wildcard == !w->wildcard &&
                       c->ip_literal == w->ip_literal &&
                       strcmp(c->host, w->host) == 0;
        if (!w->wildcard)
                return below(w->host, c->host);
        /* "*.a.b" is within "*.b" and within itself */
        return strcmp(w->host, c->host) == 0 || below(w->host, c->host);
}

bool al_net_policy_subset(const al_net_policy *want,
                          const al_net_policy *ceiling,
                          const al_net_rule **bad) {
        static const uint16_t web[] = {80, 443};
        if (!want)
                return true;
        for (size_t i = 0; i < want->n && i < AL_NET_MAX_RULES; i++) {
                const al_net_rule *w = &want->rules[i];
                /* no port: 80 and 443, each of which may be allowed by a
                 * rule of its own */
                const uint16_t *ports = w->port ? &w->port : web;
                size_t np = w->port ? 1 : ARRAY_SIZE(web);
                for (size_t k = 0; k < np; k++) {
                        bool ok = false;
                        for (size_t j = 0; ceiling && j < ceiling->n &&
                                           j < AL_NET_MAX_RULES && !ok;
                             j++)
                                ok = covers(&ceiling->rules[j], w, ports[k]);
                        if (!ok) {
                                if (bad)
                                        *bad = w;
                                return false;
                        }
                }
        }
        return true;
}

/* ------------------------------------------------------------ addresses */

static enum al_addr_class classify_v4(uint32_t a) {
        /* ranges as (network, prefix length, class), first match wins:
         * RFC 6890 and its successors */
        static const struct {
                uint32_t net;
                unsigned len;
                enum al_addr_class c;
        } ranges[] = {
                {0xffffffff, 32, AL_ADDR_MULTICAST}, /* limited broadcast */
                {0x00000000, 8, AL_ADDR_LOOPBACK},   /* "this network":
                                                        0.0.0.0 reaches
                                                        loopback on Linux */
                {0x7f000000, 8, AL_ADDR_LOOPBACK},
                {0x0a000000, 8, AL_ADDR_PRIVATE},
                {0xac100000, 12, AL_ADDR_PRIVATE},
                {0xc0a80000, 16, AL_ADDR_PRIVATE},
                {0xa9fe0000, 16, AL_ADDR_LINKLOCAL}, /* 169.254.169.254:
                                                        cloud metadata */
                {0x64400000, 10, AL_ADDR_SHARED},    /* CGNAT */
                {0xe0000000, 4, AL_ADDR_MULTICAST},
                {0xf0000000, 4, AL_ADDR_RESERVED},  /* future use */
                {0xc6120000, 15, AL_ADDR_RESERVED}, /* benchmarking */
                {0xc0000000, 24, AL_ADDR_RESERVED}, /* IETF protocol
                                                       assignments */
                {0xc0000200, 24, AL_ADDR_RESERVED}, /* TEST-NET-1 */
                {0xc6336400, 24, AL_ADDR_RESERVED}, /* TEST-NET-2 */
                {0xcb007100, 24, AL_ADDR_RESERVED}, /* TEST-NET-3 */
                {0xc0586300, 24, AL_ADDR_RESERVED}, /* 6to4 relay anycast */
        };
        for (size_t i = 0; i < ARRAY_SIZE(ranges); i++) {
                uint32_t mask = ranges[i].len ? ~0u << (32 - ranges[i].len) : 0;
                if ((a & mask) == ranges[i].net)
                        return ranges[i].c;
        }
        return AL_ADDR_PUBLIC;
}

static uint32_t v4_at(const uint8_t *b) {
        return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
               (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static bool zeros(const uint8_t *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (b[i])
                        return false;
        return true;
}

static enum al_addr_class classify_v6(const uint8_t *b) {
        static const uint8_t ffff[2] = {0xff, 0xff};
        static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
        static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff,
                                               0x9b, 0x00, 0x01};

        /* the forms that carry an IPv4 address are that address:
         * ::a.b.c.d (compatible; :: and ::1 are 0.0.0.0 and 0.0.0.1,
         * both loopback), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d
         * (SIIT translated) */
        if (zeros(b, 12))
                return classify_v4(v4_at(b + 12));
        if (zeros(b, 10) && memcmp(b + 10, ffff, 2) == 0)
                return classify_v4(v4_at(b + 12));
        if (zeros(b, 8) && memcmp(b + 8, ffff, 2) == 0 && zeros(b + 10, 2))
                return classify_v4(v4_at(b + 12));
        /* NAT64 64:ff9b::/96 and the local-use 64:ff9b:1::/48: a
         * translator would take the connection to any IPv4 address, so
         * the whole block is refused; a refused IPv4 inside keeps its
         * own class in the report */
        if (memcmp(b, nat64, sizeof(nat64)) == 0) {
                enum al_addr_class c = classify_v4(v4_at(b + 12));
                return c == AL_ADDR_PUBLIC ? AL_ADDR_RESERVED : c;
        }
        if (memcmp(b, nat64_local, sizeof(nat64_local)) == 0)
                return AL_ADDR_RESERVED;
        /* 6to4 2002:a.b.c.d::/48: the IPv4 relay it names */
        if (b[0] == 0x20 && b[1] == 0x02)
                return classify_v4(v4_at(b + 2));
        if (b[0] == 0xff)
                return AL_ADDR_MULTICAST;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
                return AL_ADDR_LINKLOCAL;
        /* fec0::/10 (site-local, deprecated) and fc00::/7 (unique local) */
        if ((b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || (b[0] & 0xfe) == 0xfc)
                return AL_ADDR_PRIVATE;
        /* documentation 2001:db8::/32 and 3fff::/20, Teredo 2001::/32 (an
         * IPv4 tunnel endpoint inside) */
        if (b[0] == 0x20 && b[1] == 0x01 &&
            ((b[2] == 0x0d && b[3] == 0xb8) || (b[2] == 0 && b[3] == 0)))
                return AL_ADDR_RESERVED;
        if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0)
                return AL_ADDR_RESERVED;
        /* outside 2000::/3 nothing is global unicast (100::/64 discard,
         * the rest of ::/8, unassigned blocks) */
        if ((b[0] & 0xe0) != 0x20)
                return AL_ADDR_RESERVED;
        return AL_ADDR_PUBLIC;
}

enum al_addr_class al_addr_classify(const struct sockaddr *sa) {
        if (!sa)
                return AL_ADDR_RESERVED;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
                return classify_v4(ntohl(s->sin_addr.s_addr));
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
                return classify_v6(s->sin6_addr.s6_addr);
        }
        /* not an internet address: never one to connect to */
        return AL_ADDR_RESERVED;
}

const char *al_addr_class_name(enum al_addr_class c) {
        switch (c) {
        case AL_ADDR_PUBLIC:
                return "public";
        case AL_ADDR_LOOPBACK:
                return "loopback";
        case AL_ADDR_PRIVATE:
                return "private";
        case AL_ADDR_LINKLOCAL:
                return "link_local";
        case AL_ADDR_SHARED:
                return "shared";
        case AL_ADDR_MULTICAST:
                return "multicast";
        case AL_ADDR_RESERVED:
                return "reserved";
        }
        return "unknown";
}
