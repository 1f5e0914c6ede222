/* SPDX-License-Identifier: MIT */
/* The egress allowlist (egress-rules.c) and the proxy's request parser
 * (egress-http.c): entries good and bad with their normalized forms,
 * matching, subsets, every refused address range, and the request heads
 * a hostile client sends to the proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "tap.h"

/* Print the case of a table row that failed, then fail the test. */
#define CASE_FAIL(fmt, ...)                                                    \
        do {                                                                   \
                printf("#   %s:%d: " fmt "\n", __FILE__, __LINE__,             \
                       __VA_ARGS__);                                           \
                tap_cur_failed = 1;                                            \
        } while (0)

static int policy_of(al_net_policy *p, const char *const *entries) {
        al_error err = {0};
        *p = (al_net_policy){0};
        for (; *entries; entries++) {
                int r = al_net_rule_parse(*entries, &p->rules[p->n], &err);
                if (r < 0) {
                        printf("#   entry \"%s\": %s\n", *entries, err.msg);
                        return r;
                }
                p->n++;
        }
        return 0;
}

/* ------------------------------------------------------------- entries */

static void rules_good(void) {
        static const struct {
                const char *in, *host;
                uint16_t port;
                bool wildcard, ip, local;
        } t[] = {
                {"pypi.org", "pypi.org", 0, false, false, false},
                {"PyPI.ORG:443", "pypi.org", 443, false, false, false},
                {"example.com.", "example.com", 0, false, false, false},
                {"files.pythonhosted.org:443", "files.pythonhosted.org", 443,
                 false, false, false},
                {"*.pythonhosted.org:443", "pythonhosted.org", 443, true, false,
                 false},
                {"*.Example.COM", "example.com", 0, true, false, false},
                {"a:1", "a", 1, false, false, false},
                {"a:65535", "a", 65535, false, false, false},
                /* IDNA: Unicode to punycode, UTS #46 mapping */
                {"Bücher.example", "xn--bcher-kva.example", 0, false, false,
                 false},
                {"xn--bcher-kva.example:8443", "xn--bcher-kva.example", 8443,
                 false, false, false},
                {"ＥＸＡＭＰＬＥ。com", "example.com", 0, false, false, false},
                {"*.bücher.example", "xn--bcher-kva.example", 0, true, false,
                 false},
                {"my_bucket.example.com", "my_bucket.example.com", 0, false,
                 false, false},
                /* IP literals: local when in a refused range */
                {"93.184.216.34", "93.184.216.34", 0, false, true, false},
                {"10.0.0.5:8080", "10.0.0.5", 8080, false, true, true},
                {"127.0.0.1:8000", "127.0.0.1", 8000, false, true, true},
                {"169.254.169.254", "169.254.169.254", 0, false, true, true},
                {"１２７.０.０.１", "127.0.0.1", 0, false, true, true},
                {"[::1]", "::1", 0, false, true, true},
                {"[::1]:8443", "::1", 8443, false, true, true},
                {"[2606:4700:0:0::1]:443", "2606:4700::1", 443, false, true,
                 false},
                {"[FE80::1]", "fe80::1", 0, false, true, true},
                /* localhost is explicit; its look-alikes are not */
                {"localhost", "localhost", 0, false, false, true},
                {"LocalHost.:3000", "localhost", 3000, false, false, true},
                {"*.localhost", "localhost", 0, true, false, false},
                {"localhost.localdomain", "localhost.localdomain", 0, false,
                 false, false},
                {"app.localhost", "app.localhost", 0, false, false, false},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                al_net_rule r;
                al_error err = {0};
                int ret = al_net_rule_parse(t[i].in, &r, &err);
                if (ret != 0) {
                        CASE_FAIL("\"%s\": refused: %s", t[i].in, err.msg);
                        continue;
                }
                if (strcmp(r.host, t[i].host) || r.port != t[i].port ||
                    r.wildcard != t[i].wildcard || r.ip_literal != t[i].ip ||
                    r.local != t[i].local)
                        CASE_FAIL("\"%s\": got host=%s port=%u wildcard=%d "
                                  "ip=%d local=%d",
                                  t[i].in, r.host, r.port, r.wildcard,
                                  r.ip_literal, r.local);
        }
}

static void rules_bad(void) {
        static const char *const t[] = {
                "",
                "*",
                "*:443",
                "a.*.b",
                "*a.b",
                "a*.b",
                "*.*.b",
                "**.b",
                "*.",
                "a.b.*",
                "*.1.2.3.4",
                "*.[::1]",
                "a:0",
                "a:65536",
                "a:99999",
                "a:-1",
                "a:+1",
                "a:0443",
                "a:",
                "a:443x",
                "a: 443",
                ":443",
                "a b",
                " a.com",
                "a.com ",
                "a..b",
                ".a.b",
                "-a.b",
                "a-.b",
                "a/b",
                "a@b",
                "http://a.b",
                "a.b/path",
                "::1",
                "2001:db8::1:443",
                "[::1",
                "[::1]x",
                "[::1]:",
                "[not-v6]",
                "[fe80::1%eth0]",
                "127.1",
                "0x7f.0.0.1",
                "2130706433",
                "017.0.0.1",
                "a.b.0x10",
                "xn--zzzz.com",
                "a\tb",
                "a\x01"
                "b",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                al_net_rule r;
                al_error err = {0};
                int ret = al_net_rule_parse(t[i], &r, &err);
                if (ret != -EINVAL)
                        CASE_FAIL("\"%s\": got %d, want -EINVAL", t[i], ret);
                else if (!err.msg[0])
                        CASE_FAIL("\"%s\": refused without a message", t[i]);
        }
        /* lengths: a label of 64, a name of 254 */
        char s[400];
        memset(s, 'a', 64);
        memcpy(s + 64, ".com", 5);
        al_net_rule r;
        ASSERT_INT_EQ(al_net_rule_parse(s, &r, NULL), -EINVAL);
        memset(s, 'a', 63);
        ASSERT_INT_EQ(al_net_rule_parse((s[63] = '\0', s), &r, NULL), 0);
        for (size_t i = 0; i < 4; i++) {
                memset(s + i * 64, 'a', 63);
                s[i * 64 + 63] = '.';
        }
        s[253] = '\0'; /* 253: the most DNS takes */
        ASSERT_INT_EQ(al_net_rule_parse(s, &r, NULL), 0);
        s[253] = 'a';
        s[254] = '\0';
        ASSERT_INT_EQ(al_net_rule_parse(s, &r, NULL), -EINVAL);
        /* the message names the entry */
        al_error err = {0};
        ASSERT_INT_EQ(al_net_rule_parse("a.*.b", &r, &err), -EINVAL);
        ASSERT_TRUE(strstr(err.msg, "a.*.b") != NULL);
        /* a huge entry is refused, not truncated into a valid one */
        char *huge = malloc(100000);
        ASSERT_TRUE(huge != NULL);
        memset(huge, 'a', 99999);
        huge[99999] = '\0';
        int ret = al_net_rule_parse(huge, &r, &err);
        free(huge);
        ASSERT_INT_EQ(ret, -EINVAL);
}

static void host_normalize(void) {
        static const struct {
                const char *in, *out; /* out NULL: refused */
        } t[] = {
                {"Example.COM", "example.com"},
                {"example.com.", "example.com"},
                {"bücher.example", "xn--bcher-kva.example"},
                {"[::1]", "::1"},
                {"::1", "::1"},
                {"[0:0:0:0:0:ffff:7f00:1]", "::ffff:127.0.0.1"},
                {"127.0.0.1", "127.0.0.1"},
                {"１２７.０.０.１", "127.0.0.1"},
                {"127.1", NULL},
                {"0x7f000001", NULL},
                {"2130706433", NULL},
                {"*.example.com", NULL},
                {"", NULL},
                {"a b", NULL},
                {"a%2eb", NULL},
                {"evil.com/x", NULL},
                {"evil.com#@good.com", NULL},
                {"[::1", NULL},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[AL_NET_HOST_MAX] = "";
                int ret =
                        al_net_host_normalize(t[i].in, out, sizeof(out), NULL);
                if (t[i].out && (ret != 0 || strcmp(out, t[i].out)))
                        CASE_FAIL("\"%s\": got %d \"%s\", want \"%s\"", t[i].in,
                                  ret, out, t[i].out);
                if (!t[i].out && ret != -EINVAL)
                        CASE_FAIL("\"%s\": got %d \"%s\", want -EINVAL",
                                  t[i].in, ret, out);
        }
}

/* ------------------------------------------------------------ matching */

static void matching(void) {
        static const char *const list[] = {
                "pypi.org",
                "*.pythonhosted.org:443",
                "api.example.com:8443",
                "10.0.0.5:8080",
                "[::1]:9000",
                "localhost:3000",
                "bücher.example",
                NULL,
        };
        static const struct {
                const char *host;
                uint16_t port;
                bool allowed;
        } t[] = {
                /* no port: 443 and 80 only */
                {"pypi.org", 443, true},
                {"pypi.org", 80, true},
                {"pypi.org", 8080, false},
                {"pypi.org", 22, false},
                {"www.pypi.org", 443, false},
                {"evilpypi.org", 443, false},
                {"pypi.org.evil.com", 443, false},
                /* a wildcard is the names below, not the name itself */
                {"files.pythonhosted.org", 443, true},
                {"a.b.pythonhosted.org", 443, true},
                {"pythonhosted.org", 443, false},
                {"files.pythonhosted.org", 80, false},
                {"xpythonhosted.org", 443, false},
                {"api.example.com", 8443, true},
                {"api.example.com", 443, false},
                {"10.0.0.5", 8080, true},
                {"10.0.0.5", 80, false},
                {"10.0.0.6", 8080, false},
                {"::1", 9000, true},
                {"::ffff:127.0.0.1", 9000, false},
                {"localhost", 3000, true},
                {"localhost", 3001, false},
                {"app.localhost", 3000, false},
                {"xn--bcher-kva.example", 443, true},
        };
        al_net_policy p;
        ASSERT_INT_EQ(policy_of(&p, list), 0);
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const al_net_rule *which = NULL;
                bool a = al_net_allowed(&p, t[i].host, t[i].port, &which);
                if (a != t[i].allowed || (a && !which))
                        CASE_FAIL("%s:%u: got %d, want %d", t[i].host,
                                  t[i].port, a, t[i].allowed);
        }
        /* which rule: the one that matched, local as parsed */
        const al_net_rule *which = NULL;
        ASSERT_TRUE(al_net_allowed(&p, "localhost", 3000, &which));
        ASSERT_TRUE(which->local);
        ASSERT_TRUE(al_net_allowed(&p, "pypi.org", 443, &which));
        ASSERT_TRUE(!which->local);
        /* a host the code names matches in its normalized form */
        char h[AL_NET_HOST_MAX];
        ASSERT_INT_EQ(
                al_net_host_normalize("BÜCHER.example.", h, sizeof(h), NULL),
                0);
        ASSERT_TRUE(al_net_allowed(&p, h, 443, NULL));
        /* the empty list allows nothing */
        al_net_policy none = {0};
        ASSERT_TRUE(!al_net_allowed(&none, "pypi.org", 443, NULL));
        ASSERT_TRUE(!al_net_allowed(NULL, "pypi.org", 443, NULL));
}

static void subset(void) {
        static const char *const key[] = {
                "*.pythonhosted.org:443", "pypi.org",
                "api.example.com:80",     "api.example.com:443",
                "10.0.0.5:8080",          "localhost:3000",
                "plain.example:80",       NULL,
        };
        static const struct {
                const char *want[4];
                bool ok;
        } t[] = {
                {{"pypi.org:443", NULL}, true},
                {{"pypi.org", NULL}, true},
                {{"pypi.org:8080", NULL}, false},
                {{"files.pythonhosted.org:443", NULL}, true},
                {{"*.pythonhosted.org:443", NULL}, true},
                {{"*.a.pythonhosted.org:443", NULL}, true},
                {{"*.pythonhosted.org", NULL}, false}, /* adds port 80 */
                {{"pythonhosted.org:443", NULL}, false},
                {{"*.org:443", NULL}, false},
                /* 80 and 443 allowed by two rules of their own */
                {{"api.example.com", NULL}, true},
                /* no port is 443 too, which the key does not allow */
                {{"plain.example", NULL}, false},
                {{"plain.example:80", NULL}, true},
                {{"10.0.0.5:8080", NULL}, true},
                {{"10.0.0.6:8080", NULL}, false},
                {{"localhost:3000", NULL}, true},
                {{"*.localhost:3000", NULL}, false},
                {{"127.0.0.1:3000", NULL}, false},
                {{"pypi.org", "evil.com", NULL}, false},
                {{NULL}, true},
        };
        al_net_policy ceiling;
        ASSERT_INT_EQ(policy_of(&ceiling, key), 0);
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                al_net_policy want;
                const al_net_rule *bad = NULL;
                if (policy_of(&want, t[i].want) < 0) {
                        CASE_FAIL("row %zu: an entry was refused", i);
                        continue;
                }
                bool ok = al_net_policy_subset(&want, &ceiling, &bad);
                if (ok != t[i].ok)
                        CASE_FAIL("row %zu (%s): got %d, want %d", i,
                                  t[i].want[0] ? t[i].want[0] : "[]", ok,
                                  t[i].ok);
                else if (!ok && !bad)
                        CASE_FAIL("row %zu: no bad entry named", i);
        }
        /* the entry named is the one that widens */
        al_net_policy want;
        static const char *const w[] = {"pypi.org", "evil.com:443", NULL};
        const al_net_rule *bad = NULL;
        ASSERT_INT_EQ(policy_of(&want, w), 0);
        ASSERT_TRUE(!al_net_policy_subset(&want, &ceiling, &bad));
        ASSERT_STR_EQ(bad->host, "evil.com");
        /* nothing allowed above: any entry widens */
        al_net_policy none = {0};
        ASSERT_TRUE(!al_net_policy_subset(&want, &none, &bad));
        ASSERT_TRUE(al_net_policy_subset(&none, &none, &bad));
}

/* ----------------------------------------------------------- addresses */

static enum al_addr_class class_of(const char *text) {
        struct sockaddr_in in4 = {.sin_family = AF_INET};
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        if (inet_pton(AF_INET, text, &in4.sin_addr) == 1)
                return al_addr_classify((struct sockaddr *)&in4);
        if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1)
                return al_addr_classify((struct sockaddr *)&in6);
        return (enum al_addr_class) - 1;
}

static const struct {
        const char *addr;
        enum al_addr_class c;
} ranges_v4[] = {
        {"127.0.0.1", AL_ADDR_LOOPBACK},
        {"127.255.255.254", AL_ADDR_LOOPBACK},
        {"0.0.0.0", AL_ADDR_LOOPBACK},
        {"0.1.2.3", AL_ADDR_LOOPBACK},
        {"10.0.0.1", AL_ADDR_PRIVATE},
        {"10.255.255.255", AL_ADDR_PRIVATE},
        {"172.16.0.1", AL_ADDR_PRIVATE},
        {"172.31.255.255", AL_ADDR_PRIVATE},
        {"192.168.1.1", AL_ADDR_PRIVATE},
        {"169.254.169.254", AL_ADDR_LINKLOCAL},
        {"169.254.0.1", AL_ADDR_LINKLOCAL},
        {"100.64.0.1", AL_ADDR_SHARED},
        {"100.127.255.255", AL_ADDR_SHARED},
        {"224.0.0.1", AL_ADDR_MULTICAST},
        {"239.255.255.250", AL_ADDR_MULTICAST},
        {"255.255.255.255", AL_ADDR_MULTICAST},
        {"240.0.0.1", AL_ADDR_RESERVED},
        {"255.255.255.254", AL_ADDR_RESERVED},
        {"198.18.0.1", AL_ADDR_RESERVED},
        {"198.19.255.255", AL_ADDR_RESERVED},
        {"192.0.2.1", AL_ADDR_RESERVED},
        {"198.51.100.1", AL_ADDR_RESERVED},
        {"203.0.113.1", AL_ADDR_RESERVED},
        {"192.0.0.1", AL_ADDR_RESERVED},
        /* the edges: just outside each block */
        {"1.1.1.1", AL_ADDR_PUBLIC},
        {"8.8.8.8", AL_ADDR_PUBLIC},
        {"9.255.255.255", AL_ADDR_PUBLIC},
        {"11.0.0.0", AL_ADDR_PUBLIC},
        {"126.255.255.255", AL_ADDR_PUBLIC},
        {"128.0.0.0", AL_ADDR_PUBLIC},
        {"172.15.255.255", AL_ADDR_PUBLIC},
        {"172.32.0.0", AL_ADDR_PUBLIC},
        {"192.167.255.255", AL_ADDR_PUBLIC},
        {"192.169.0.0", AL_ADDR_PUBLIC},
        {"169.253.255.255", AL_ADDR_PUBLIC},
        {"100.63.255.255", AL_ADDR_PUBLIC},
        {"100.128.0.0", AL_ADDR_PUBLIC},
        {"198.17.255.255", AL_ADDR_PUBLIC},
        {"198.20.0.0", AL_ADDR_PUBLIC},
        {"223.255.255.255", AL_ADDR_PUBLIC},
        {"93.184.216.34", AL_ADDR_PUBLIC},
};

static void ranges_ipv4(void) {
        for (size_t i = 0; i < sizeof(ranges_v4) / sizeof(ranges_v4[0]); i++) {
                enum al_addr_class c = class_of(ranges_v4[i].addr);
                if (c != ranges_v4[i].c)
                        CASE_FAIL("%s: got %s, want %s", ranges_v4[i].addr,
                                  al_addr_class_name(c),
                                  al_addr_class_name(ranges_v4[i].c));
        }
}

/* Every IPv4 row again in the IPv6 forms that carry it: mapped
 * (::ffff:a.b.c.d), compatible (::a.b.c.d), 6to4 (2002:AABB:CCDD::). */
static void ranges_ipv4_in_ipv6(void) {
        for (size_t i = 0; i < sizeof(ranges_v4) / sizeof(ranges_v4[0]); i++) {
                struct in_addr a;
                ASSERT_INT_EQ(inet_pton(AF_INET, ranges_v4[i].addr, &a), 1);
                const uint8_t *b = (const uint8_t *)&a;
                char forms[3][64];
                snprintf(forms[0], sizeof(forms[0]), "::ffff:%s",
                         ranges_v4[i].addr);
                snprintf(forms[1], sizeof(forms[1]), "::%s", ranges_v4[i].addr);
                snprintf(forms[2], sizeof(forms[2]),
                         "2002:%02x%02x:%02x%02x::1", b[0], b[1], b[2], b[3]);
                for (size_t k = 0; k < 3; k++) {
                        enum al_addr_class c = class_of(forms[k]);
                        if (c != ranges_v4[i].c)
                                CASE_FAIL("%s: got %s, want %s", forms[k],
                                          al_addr_class_name(c),
                                          al_addr_class_name(ranges_v4[i].c));
                }
        }
}

static void ranges_ipv6(void) {
        static const struct {
                const char *addr;
                enum al_addr_class c;
        } t[] = {
                {"::1", AL_ADDR_LOOPBACK},
                {"::", AL_ADDR_LOOPBACK},
                {"fe80::1", AL_ADDR_LINKLOCAL},
                {"febf:ffff::1", AL_ADDR_LINKLOCAL},
                {"fc00::1", AL_ADDR_PRIVATE},
                {"fd12:3456::1", AL_ADDR_PRIVATE},
                {"fec0::1", AL_ADDR_PRIVATE},
                {"ff02::1", AL_ADDR_MULTICAST},
                {"ff0e::1", AL_ADDR_MULTICAST},
                /* NAT64: the whole well-known prefix, and a refused IPv4
                 * inside keeps its class */
                {"64:ff9b::8.8.8.8", AL_ADDR_RESERVED},
                {"64:ff9b::127.0.0.1", AL_ADDR_LOOPBACK},
                {"64:ff9b::169.254.169.254", AL_ADDR_LINKLOCAL},
                {"64:ff9b::10.0.0.1", AL_ADDR_PRIVATE},
                {"64:ff9b:1::a00:1", AL_ADDR_RESERVED},
                /* SIIT ::ffff:0:a.b.c.d */
                {"::ffff:0:127.0.0.1", AL_ADDR_LOOPBACK},
                {"::ffff:0:169.254.169.254", AL_ADDR_LINKLOCAL},
                {"2001:db8::1", AL_ADDR_RESERVED},
                {"3fff::1", AL_ADDR_RESERVED},
                {"2001::1", AL_ADDR_RESERVED}, /* Teredo */
                {"100::1", AL_ADDR_RESERVED},  /* discard */
                {"::2:0:0:1", AL_ADDR_RESERVED},
                {"4000::1", AL_ADDR_RESERVED},
                {"2606:4700::1111", AL_ADDR_PUBLIC},
                {"2a00:1450:4001::200e", AL_ADDR_PUBLIC},
                {"2001:4860:4860::8888", AL_ADDR_PUBLIC},
                {"2002:0808:0808::1", AL_ADDR_PUBLIC},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                enum al_addr_class c = class_of(t[i].addr);
                if (c != t[i].c)
                        CASE_FAIL("%s: got %s, want %s", t[i].addr,
                                  al_addr_class_name(c),
                                  al_addr_class_name(t[i].c));
        }
        /* not an internet address: never public */
        struct sockaddr un = {.sa_family = AF_UNIX};
        ASSERT_TRUE(al_addr_classify(&un) != AL_ADDR_PUBLIC);
        ASSERT_TRUE(al_addr_classify(NULL) != AL_ADDR_PUBLIC);
        ASSERT_STR_EQ(al_addr_class_name(AL_ADDR_LINKLOCAL), "link_local");
}

/* ------------------------------------------------------------- parsing */

static int parse(const char *s, al_proxy_req *r, al_error *err) {
        return al_proxy_parse(s, strlen(s), r, err);
}

static void parse_good(void) {
        al_proxy_req r;
        al_error err = {0};
        const char *c = "CONNECT pypi.org:443 HTTP/1.1\r\n"
                        "Host: pypi.org:443\r\n"
                        "User-Agent: pip\r\n\r\n";
        ASSERT_INT_EQ(parse(c, &r, &err), (int)strlen(c));
        ASSERT_TRUE(r.connect);
        ASSERT_STR_EQ(r.method, "CONNECT");
        ASSERT_STR_EQ(r.host, "pypi.org");
        ASSERT_INT_EQ(r.port, 443);
        ASSERT_INT_EQ(r.head_len, strlen(c));

        /* python's http.client tunnels with HTTP/1.0 and no Host */
        c = "CONNECT [::1]:8443 HTTP/1.0\r\n\r\n";
        ASSERT_INT_EQ(parse(c, &r, &err), (int)strlen(c));
        ASSERT_STR_EQ(r.host, "::1");
        ASSERT_INT_EQ(r.port, 8443);

        /* the target is ASCII (RFC 9112): punycode; a Host in Unicode
         * is the same host once normalized */
        c = "CONNECT XN--bcher-kva.example:443 HTTP/1.1\r\n"
            "Host: Bücher.example\r\n\r\n";
        ASSERT_INT_EQ(parse(c, &r, &err), (int)strlen(c));
        ASSERT_STR_EQ(r.host, "xn--bcher-kva.example");

        /* a plain request: routed by its absolute URI, body bytes after
         * the head are not the head's */
        const char *g =
                "POST http://Example.COM:8080/a/b?x=1&y=%20 HTTP/1.1\r\n"
                "Host: example.com:8080\r\n"
                "Content-Length: 5\r\n"
                "X-Obs-Text: caf\xc3\xa9\r\n"
                "\r\nhello";
        ASSERT_INT_EQ(parse(g, &r, &err), (int)strlen(g) - 5);
        ASSERT_TRUE(!r.connect);
        ASSERT_STR_EQ(r.method, "POST");
        ASSERT_STR_EQ(r.host, "example.com");
        ASSERT_INT_EQ(r.port, 8080);
        ASSERT_STR_EQ(r.origin_path, "/a/b?x=1&y=%20");
        ASSERT_INT_EQ(r.body_len, 5);

        g = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
        ASSERT_INT_EQ(parse(g, &r, &err), (int)strlen(g));
        ASSERT_INT_EQ(r.port, 80);
        ASSERT_STR_EQ(r.origin_path, "/");
        ASSERT_INT_EQ(r.body_len, 0);

        g = "HEAD HTTP://example.com?q HTTP/1.1\r\nhost:   example.com:80  "
            "\r\n\r\n";
        ASSERT_INT_EQ(parse(g, &r, &err), (int)strlen(g));
        ASSERT_STR_EQ(r.origin_path, "/?q");

        g = "GET http://127.0.0.1:8000/simple/ HTTP/1.1\r\n"
            "Content-Length: 0\r\n\r\n";
        ASSERT_INT_EQ(parse(g, &r, &err), (int)strlen(g));
        ASSERT_STR_EQ(r.host, "127.0.0.1");
        ASSERT_INT_EQ(r.port, 8000);
        ASSERT_STR_EQ(r.origin_path, "/simple/");

        static const char *const ok_methods[] = {
                "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
        };
        for (size_t i = 0; i < sizeof(ok_methods) / sizeof(ok_methods[0]);
             i++) {
                char b[128];
                snprintf(b, sizeof(b), "%s http://a.b/ HTTP/1.1\r\n\r\n",
                         ok_methods[i]);
                ASSERT_INT_EQ(parse(b, &r, &err), (int)strlen(b));
                ASSERT_STR_EQ(r.method, ok_methods[i]);
        }
}

static void parse_refused(void) {
        static const struct {
                const char *head;
                int status;
        } t[] = {
                /* smuggling: ambiguous framing */
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 5\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Length: 5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n",
                 501},
                {"POST http://a.b/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n"
                 "\r\n",
                 501},
                {"POST http://a.b/ HTTP/1.1\r\ntransfer-encoding : chunked\r\n"
                 "\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nTransfer_Encoding: chunked\r\n"
                 "Content-Length: 3\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 5\r\n"
                 "Content-Length: 5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 5\r\n"
                 "content-length: 6\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length: "
                 "99999999999999999999\r\n\r\n",
                 400},
                {"POST http://a.b/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
                 400},
                /* obs-fold */
                {"GET http://a.b/ HTTP/1.1\r\nX-A: 1\r\n"
                 " Transfer-Encoding: chunked\r\n\r\n",
                 400},
                {"GET http://a.b/ HTTP/1.1\r\nX-A: 1\r\n\tmore\r\n\r\n", 400},
                /* bare LF, bare CR */
                {"GET http://a.b/ HTTP/1.1\nHost: a.b\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\nHost: a.b\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
                /* control bytes in a value (NUL is its own test) */
                {"GET http://a.b/ HTTP/1.1\r\nX: a\x01"
                 "b\r\n\r\n",
                 400},
                /* routing: only an absolute http:// URI */
                {"GET / HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
                {"GET /http://a.b/ HTTP/1.1\r\n\r\n", 400},
                {"OPTIONS * HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
                {"GET https://a.b/ HTTP/1.1\r\n\r\n", 400},
                {"GET ftp://a.b/ HTTP/1.1\r\n\r\n", 400},
                {"GET http:/a.b/ HTTP/1.1\r\n\r\n", 400},
                {"GET http:///x HTTP/1.1\r\n\r\n", 400},
                {"GET http://good.com@evil.com/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b/#frag HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b:0/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b:65536/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b:/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://127.1/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b/\xc3\xa9 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT b\xc3\xbc"
                 "cher.example:443 HTTP/1.1\r\n\r\n",
                 400},
                /* a Host that disagrees with the URI */
                {"GET http://allowed.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n",
                 400},
                {"GET http://a.b:8080/ HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\nHost: a.b:8080\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\nHost: a.b\r\nHost: a.b\r\n\r\n",
                 400},
                {"GET http://a.b/ HTTP/1.1\r\nHost: x@a.b\r\n\r\n", 400},
                {"CONNECT a.b:443 HTTP/1.1\r\nHost: evil.com:443\r\n\r\n", 400},
                {"CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:444\r\n\r\n", 400},
                /* malformed CONNECT */
                {"CONNECT a.b HTTP/1.1\r\n\r\n", 400},
                {"CONNECT a.b: HTTP/1.1\r\n\r\n", 400},
                {"CONNECT a.b:0 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT a.b:99999 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT a.b:44x HTTP/1.1\r\n\r\n", 400},
                {"CONNECT http://a.b:443/ HTTP/1.1\r\n\r\n", 400},
                {"CONNECT /a.b:443 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT u@a.b:443 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT ::1:443 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT [::1:443 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT *.a.b:443 HTTP/1.1\r\n\r\n", 400},
                {"CONNECT a.b:443 HTTP/1.1\r\nContent-Length: 4\r\n\r\n", 400},
                /* the request line */
                {"GET  http://a.b/ HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b/  HTTP/1.1\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1 x\r\n\r\n", 400},
                {"GET http://a.b/\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/2.0\r\n\r\n", 400},
                {"GET http://a.b/ http/1.1\r\n\r\n", 400},
                {"\r\n\r\n", 400},
                {"G(T http://a.b/ HTTP/1.1\r\n\r\n", 400},
                {"X-Header: 1\r\n\r\n", 400},
                /* methods other than the usual */
                {"TRACE http://a.b/ HTTP/1.1\r\n\r\n", 405},
                {"get http://a.b/ HTTP/1.1\r\n\r\n", 405},
                {"PROPFIND http://a.b/ HTTP/1.1\r\n\r\n", 405},
                {"AVERYVERYLONGMETHODNAME http://a.b/ HTTP/1.1\r\n\r\n", 405},
                /* headers */
                {"GET http://a.b/ HTTP/1.1\r\nNoColon\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\n: empty-name\r\n\r\n", 400},
                {"GET http://a.b/ HTTP/1.1\r\nX Y: 1\r\n\r\n", 400},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                al_proxy_req r;
                al_error err = {0};
                int ret = parse(t[i].head, &r, &err);
                if (ret != -t[i].status)
                        CASE_FAIL("row %zu \"%.40s\": got %d, want %d", i,
                                  t[i].head, ret, -t[i].status);
                else if (!err.msg[0])
                        CASE_FAIL("row %zu: refused without a message", i);
        }
}

/* A NUL byte cannot be in a C string table: given by length. */
static void parse_nul(void) {
        static const char h[] = "GET http://a.b/ HTTP/1.1\r\nX: a\0b\r\n\r\n";
        al_proxy_req r;
        al_error err = {0};
        ASSERT_INT_EQ(al_proxy_parse(h, sizeof(h) - 1, &r, &err), -400);
        /* refused at once, before the head is complete */
        ASSERT_INT_EQ(al_proxy_parse(h, 32, &r, &err), -400);
        static const char h2[] = "GET http://a.b\0.evil.com/ HTTP/1.1\r\n\r\n";
        ASSERT_INT_EQ(al_proxy_parse(h2, sizeof(h2) - 1, &r, &err), -400);
}

/* Input arrives in pieces: 0 until the head is whole, then its length;
 * never a read past len. */
static void parse_partial(void) {
        const char *h = "GET http://a.b/x HTTP/1.1\r\nHost: a.b\r\n"
                        "Content-Length: 2\r\n\r\nhi";
        size_t head = strlen(h) - 2;
        for (size_t n = 0; n < head; n++) {
                al_proxy_req r;
                /* a copy exactly n bytes long, so that ASan sees a read
                 * past it */
                char *b = malloc(n ? n : 1);
                ASSERT_TRUE(b != NULL);
                memcpy(b, h, n);
                int ret = al_proxy_parse(b, n, &r, NULL);
                free(b);
                if (ret != 0) {
                        CASE_FAIL("%zu of %zu bytes: got %d, want 0", n, head,
                                  ret);
                        return;
                }
        }
        al_proxy_req r;
        ASSERT_INT_EQ(al_proxy_parse(h, head, &r, NULL), (int)head);
        ASSERT_INT_EQ(al_proxy_parse(h, head + 2, &r, NULL), (int)head);
        ASSERT_INT_EQ(r.body_len, 2);
        /* a bare LF is refused as soon as it arrives */
        ASSERT_INT_EQ(
                al_proxy_parse("GET http://a.b/ HTTP/1.1\n", 25, &r, NULL),
                -400);
}

static void parse_huge(void) {
        al_proxy_req r;
        al_error err = {0};
        size_t cap = AL_PROXY_HEAD_MAX * 4;
        char *b = malloc(cap + 1);
        ASSERT_TRUE(b != NULL);

        /* a request line over 8 KiB: 414, also before its end arrives */
        int n = snprintf(b, cap, "GET http://a.b/");
        memset(b + n, 'a', 9000);
        n += 9000;
        int ret1 = al_proxy_parse(b, (size_t)n, &r, &err);
        n += snprintf(b + n, cap - (size_t)n, " HTTP/1.1\r\n\r\n");
        int ret2 = al_proxy_parse(b, (size_t)n, &r, &err);

        /* a path over the room for it, in a line under 8 KiB: 414 */
        n = snprintf(b, cap, "GET http://a.b/");
        memset(b + n, 'a', 5000);
        n += 5000;
        n += snprintf(b + n, cap - (size_t)n, " HTTP/1.1\r\n\r\n");
        int ret3 = al_proxy_parse(b, (size_t)n, &r, &err);

        /* a head over the cap: 431, complete or not */
        n = snprintf(b, cap, "GET http://a.b/ HTTP/1.1\r\n");
        while ((size_t)n < AL_PROXY_HEAD_MAX + 100)
                n += snprintf(b + n, cap - (size_t)n, "X-Pad: %0100d\r\n", 0);
        int ret4 = al_proxy_parse(b, (size_t)n, &r, &err);
        n += snprintf(b + n, cap - (size_t)n, "\r\n");
        int ret5 = al_proxy_parse(b, (size_t)n, &r, &err);

        /* one just under the cap is whole */
        n = snprintf(b, cap, "GET http://a.b/ HTTP/1.1\r\n");
        while ((size_t)n < AL_PROXY_HEAD_MAX - 300)
                n += snprintf(b + n, cap - (size_t)n, "X-Pad: %0100d\r\n", 0);
        n += snprintf(b + n, cap - (size_t)n, "\r\n");
        int ret6 = al_proxy_parse(b, (size_t)n, &r, &err);
        free(b);
        ASSERT_INT_EQ(ret1, -414);
        ASSERT_INT_EQ(ret2, -414);
        ASSERT_INT_EQ(ret3, -414);
        ASSERT_INT_EQ(ret4, -431);
        ASSERT_INT_EQ(ret5, -431);
        ASSERT_INT_EQ(ret6, n);
}

/* Two requests on one kept-alive connection: each head is its own, so
 * that the proxy decides again for the second. */
static void parse_pipelined(void) {
        const char *h = "GET http://a.b/1 HTTP/1.1\r\nHost: a.b\r\n\r\n"
                        "GET http://evil.com/2 HTTP/1.1\r\n\r\n";
        al_proxy_req r;
        int n = al_proxy_parse(h, strlen(h), &r, NULL);
        ASSERT_TRUE(n > 0);
        ASSERT_STR_EQ(r.host, "a.b");
        ASSERT_STR_EQ(r.origin_path, "/1");
        ASSERT_INT_EQ(al_proxy_parse(h + n, strlen(h + n), &r, NULL),
                      (int)strlen(h + n));
        ASSERT_STR_EQ(r.host, "evil.com");
}

/* Hostile bytes in bulk: every answer is one of the documented ones, a
 * whole head ends with its empty line, and nothing crashes (run it under
 * make asan). Bounded by count; a fixed seed, so a failure repeats. */
#define FUZZ_ROUNDS 20000
static void parse_fuzz(void) {
        static const char *const seeds[] = {
                "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
                "POST http://a.b:8080/x?y HTTP/1.1\r\nHost: a.b:8080\r\n"
                "Content-Length: 3\r\n\r\nabc",
        };
        static const char alphabet[] = "\r\n :\t\0[]@/?#*x0-9.Ü";
        unsigned seed = 23;
        char b[256];
        for (unsigned i = 0; i < FUZZ_ROUNDS; i++) {
                const char *s = seeds[i % 2];
                size_t n = strlen(s);
                memcpy(b, s, n);
                unsigned edits = 1 + (unsigned)(rand_r(&seed) % 4);
                for (unsigned k = 0; k < edits; k++) {
                        size_t at = (size_t)rand_r(&seed) % n;
                        b[at] = alphabet[(size_t)rand_r(&seed) %
                                         (sizeof(alphabet) - 1)];
                }
                if (rand_r(&seed) % 4 == 0)
                        n = (size_t)rand_r(&seed) % n;
                al_proxy_req r;
                al_error err = {0};
                int ret = al_proxy_parse(b, n, &r, &err);
                bool known = ret >= 0 || ret == -400 || ret == -405 ||
                             ret == -414 || ret == -431 || ret == -501;
                if (ret > 0 && ((size_t)ret > n || ret < 4 ||
                                memcmp(b + ret - 4, "\r\n\r\n", 4)))
                        known = false;
                if (!known) {
                        CASE_FAIL("round %u: got %d for \"%.*s\"", i, ret,
                                  (int)n, b);
                        return;
                }
                if (ret < 0 && !err.msg[0]) {
                        CASE_FAIL("round %u: %d without a message", i, ret);
                        return;
                }
        }
}

/* A list as --allow-net and keys create take it: parsed whole or not at
 * all, and written back in the normalized form keys.db keeps, which
 * parses again to the same rules. */
static void list_round_trip(void) {
        static const struct {
                const char *in, *out; /* out NULL: refused */
        } t[] = {
                {"", ""},
                {"PyPI.org:443,*.Pythonhosted.ORG",
                 "pypi.org:443,*.pythonhosted.org"},
                {"bücher.example", "xn--bcher-kva.example"},
                {"[::1]:8080,10.0.0.5,localhost:3000",
                 "[::1]:8080,10.0.0.5,localhost:3000"},
                {"a.example,", NULL},
                {",a.example", NULL},
                {"a.example,,b.example", NULL},
                {"a.*.example", NULL},
                {"a.example:0", NULL},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                al_net_policy p, again;
                al_error err = {0};
                char text[1024], text2[1024];
                int r = al_net_policy_parse_list(t[i].in, &p, &err);
                if (!t[i].out) {
                        if (r != -EINVAL || !err.msg[0])
                                CASE_FAIL("\"%s\": got %d, want -EINVAL",
                                          t[i].in, r);
                        continue;
                }
                if (r < 0 || al_net_policy_format(&p, text, sizeof(text)) < 0 ||
                    strcmp(text, t[i].out)) {
                        CASE_FAIL("\"%s\": got %d \"%s\" (%s)", t[i].in, r,
                                  r < 0 ? "" : text, err.msg);
                        continue;
                }
                if (p.max_bytes_out != AL_NET_DEFAULT_BYTES ||
                    al_net_policy_parse_list(text, &again, &err) < 0 ||
                    al_net_policy_format(&again, text2, sizeof(text2)) < 0 ||
                    strcmp(text, text2) || again.n != p.n)
                        CASE_FAIL("\"%s\": does not parse back the same", text);
        }
        /* a list that does not fit the caller's buffer is said so */
        al_net_policy p;
        al_error err = {0};
        char small[8];
        ASSERT_INT_EQ(al_net_policy_parse_list("pypi.org:443", &p, &err), 0);
        ASSERT_INT_EQ(al_net_policy_format(&p, small, sizeof(small)), -ENOSPC);
}

int main(void) {
        RUN(rules_good);
        RUN(rules_bad);
        RUN(host_normalize);
        RUN(matching);
        RUN(subset);
        RUN(list_round_trip);
        RUN(ranges_ipv4);
        RUN(ranges_ipv4_in_ipv6);
        RUN(ranges_ipv6);
        RUN(parse_good);
        RUN(parse_refused);
        RUN(parse_nul);
        RUN(parse_partial);
        RUN(parse_huge);
        RUN(parse_pipelined);
        RUN(parse_fuzz);
        TAP_END();
}
