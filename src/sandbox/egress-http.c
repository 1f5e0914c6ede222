/* SPDX-License-Identifier: MIT */
/*
 * The head of a request to the egress proxy (egress.h), parsed strictly:
 * the proxy routes a request only by what it parsed here, so anything two
 * readers could take two ways is refused rather than guessed (request
 * smuggling: the proxy framing a body one way and the origin another).
 *
 *   CONNECT host:port HTTP/1.x       authority-form, a port required
 *   GET http://host[:port]/p HTTP/1.x  absolute-form, http:// only
 *
 * Refused: origin-form and https:// URIs (TLS goes through CONNECT), a
 * Host header that names another host or port, Transfer-Encoding (501
 * alone, 400 with a Content-Length), two Content-Lengths or one that is
 * not digits, a line ended by a bare LF or a CR alone, NUL and other
 * control bytes, obs-fold, whitespace before a header's colon, methods
 * other than the usual (405), a request line over 8 KiB (414), a head
 * over AL_PROXY_HEAD_MAX (431).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "egress.h"
#include "macro.h"

/* A request line longer than this is 414 (what common servers take;
 * the absolute URI and its query are in it). */
#define PROXY_LINE_MAX 8192
/* A host as the client wrote it, before IDNA (Unicode labels take up to
 * 4 bytes a character); al_net_host_normalize caps it again. */
#define PROXY_HOST_INPUT_MAX 1024
/* Digits of a Content-Length: 2^64 has 20; 19 cannot overflow. */
#define PROXY_CL_DIGITS 19

static const char *const methods[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT",
};

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int bad(al_error *err, int status, const char *fmt, const char *what) {
        al_error_set(err, EINVAL, fmt, what);
        return -status;
}
#define BAD(status, msg) bad(err, status, "%s", msg)

/* Bytes no head may hold, checked over what has arrived so far, so that
 * a client is refused at the first one instead of when its head ends:
 * NUL, an LF not after a CR, a CR not before an LF. */
static int scan_bytes(const char *buf, size_t len, al_error *err) {
        for (size_t i = 0; i < len; i++) {
                if (buf[i] == '\0')
                        return BAD(400, "NUL byte in the request head");
                if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
                        return BAD(400, "line ended by a bare LF, not CRLF");
                if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
                        return BAD(400, "CR not followed by LF");
        }
        return 0;
}

/* "host[:port]" (or "[v6][:port]"), no userinfo; *ret_port stays as it
 * is when none is given and need_port is false. */
static int authority_parse(const char *s, size_t n, bool need_port, char *host,
                           size_t host_size, uint16_t *ret_port,
                           bool *ret_had_port, al_error *err) {
        char tmp[PROXY_HOST_INPUT_MAX + 1];
        const char *colon = NULL;

        if (n == 0)
                return BAD(400, "empty host");
        if (memchr(s, '@', n))
                return BAD(400, "userinfo ('user@') in the host");
        if (s[0] == '[') {
                const char *close = memchr(s, ']', n);
                if (!close)
                        return BAD(400, "unclosed '[' in the host");
                if (close + 1 < s + n) {
                        if (close[1] != ':')
                                return BAD(400, "junk after ']' in the host");
                        colon = close + 1;
                }
        } else {
                colon = memchr(s, ':', n);
                if (colon &&
                    memchr(colon + 1, ':', (size_t)(s + n - colon - 1)))
                        return BAD(400, "an IPv6 host is written in "
                                        "brackets");
        }
        size_t hn = colon ? (size_t)(colon - s) : n;
        if (hn == 0 || hn >= sizeof(tmp))
                return BAD(400, "host empty or too long");
        memcpy(tmp, s, hn);
        tmp[hn] = '\0';
        al_error e = {0};
        if (al_net_host_normalize(tmp, host, host_size, &e) < 0)
                return bad(err, 400, "bad host: %s", e.msg);

        if (ret_had_port)
                *ret_had_port = colon != NULL;
        if (!colon) {
                if (need_port)
                        return BAD(400, "CONNECT needs host:port");
                return 0;
        }
        const char *p = colon + 1;
        size_t pn = (size_t)(s + n - p);
        unsigned v = 0;
        if (pn == 0 || pn > 5 || p[0] == '0')
                return BAD(400, "port is not a number 1-65535");
        for (size_t i = 0; i < pn; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return BAD(400, "port is not a number 1-65535");
                v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (v > 65535)
                return BAD(400, "port is not a number 1-65535");
        *ret_port = (uint16_t)v;
        return 0;
}

/* The request line; fills method, host, port, origin_path, connect. */
static int line_parse(const char *l, size_t n, al_proxy_req *r, al_error *err) {
        const char *sp1 = memchr(l, ' ', n);
        if (!sp1)
                return BAD(400, "request line is not METHOD TARGET VERSION");
        const char *t = sp1 + 1;
        const char *sp2 = memchr(t, ' ', (size_t)(l + n - t));
        if (!sp2)
                return BAD(400, "request line is not METHOD TARGET VERSION");
        const char *v = sp2 + 1;
        size_t vn = (size_t)(l + n - v), mn = (size_t)(sp1 - l),
               tn = (size_t)(sp2 - t);
        if (memchr(v, ' ', vn))
                return BAD(400, "request line is not METHOD TARGET VERSION");
        if (mn == 0 || tn == 0)
                return BAD(400, "request line is not METHOD TARGET VERSION");
        if (!(vn == 8 &&
              (memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0)))
                return BAD(400, "not HTTP/1.0 or HTTP/1.1");
        for (size_t i = 0; i < mn; i++)
                if (!is_tchar((unsigned char)l[i]))
                        return BAD(400, "method is not a token");
        for (size_t i = 0; i < tn; i++) {
                unsigned char c = (unsigned char)t[i];
                if (c <= 0x20 || c >= 0x7f)
                        return BAD(400, "request target holds a byte "
                                        "that is not visible ASCII");
        }
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(methods) && !known; i++)
                known = strlen(methods[i]) == mn &&
                        memcmp(methods[i], l, mn) == 0;
        if (!known || mn >= sizeof(r->method))
                return BAD(405, "method not allowed through the proxy");
        memcpy(r->method, l, mn);
        r->method[mn] = '\0';

        if (strcmp(r->method, "CONNECT") == 0) {
                r->connect = true;
                if (t[0] == '/' || memchr(t, '/', tn))
                        return BAD(400, "CONNECT takes host:port only");
                return authority_parse(t, tn, true, r->host, sizeof(r->host),
                                       &r->port, NULL, err);
        }

        static const char http[] = "http://", https[] = "https://";
        if (t[0] == '/' || (tn == 1 && t[0] == '*'))
                return BAD(400, "origin-form request: the proxy routes "
                                "only an absolute URI (http://host/path)");
        if (tn >= sizeof(https) - 1 &&
            strncasecmp(t, https, sizeof(https) - 1) == 0)
                return BAD(400, "https:// URI to the proxy: TLS goes through "
                                "CONNECT");
        if (tn < sizeof(http) - 1 || strncasecmp(t, http, sizeof(http) - 1))
                return BAD(400, "request target is not an http:// URI");
        const char *a = t + sizeof(http) - 1, *end = t + tn;
        const char *pa = a;
        while (pa < end && *pa != '/' && *pa != '?' && *pa != '#')
                pa++;
        r->port = 80;
        int ret = authority_parse(a, (size_t)(pa - a), false, r->host,
                                  sizeof(r->host), &r->port, NULL, err);
        if (ret < 0)
                return ret;
        if (memchr(pa, '#', (size_t)(end - pa)))
                return BAD(400, "fragment ('#') in the request target");
        size_t pn = (size_t)(end - pa);
        bool slash = pn == 0 || pa[0] == '?';
        if (pn + (slash ? 1 : 0) >= sizeof(r->origin_path))
                return BAD(414, "request target too long");
        char *o = r->origin_path;
        if (slash)
                *o++ = '/';
        memcpy(o, pa, pn);
        o[pn] = '\0';
        return 0;
}

/* Header name equal to want, '_' taken as '-' (CGI-style origins fold
 * them: "Transfer_Encoding" would frame the body there). */
static bool name_is(const char *s, size_t n, const char *want) {
        if (strlen(want) != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i] == '_' ? '-' : s[i];
                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (c != want[i])
                        return false;
        }
        return true;
}

int al_proxy_parse(const char *buf, size_t len, al_proxy_req *out,
                   al_error *err) {
        al_proxy_req r = {0};
        bool have_cl = false, have_te = false, have_host = false;
        const char *host_v = NULL;
        size_t host_n = 0;
        int ret;

        if (!buf || !out)
                return BAD(400, "no request");
        /* the head ends at the first empty line */
        const char *end = NULL;
        size_t lim = len < AL_PROXY_HEAD_MAX ? len : AL_PROXY_HEAD_MAX;
        for (size_t i = 0; i + 3 < lim; i++)
                if (buf[i] == '\r' && memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                        end = buf + i + 4;
                        break;
                }
        size_t head = end ? (size_t)(end - buf) : lim;
        ret = scan_bytes(buf, head, err);
        if (ret < 0)
                return ret;
        const char *eol = memmem(buf, head, "\r\n", 2);
        size_t line_n = eol ? (size_t)(eol - buf) : head;
        if (line_n > PROXY_LINE_MAX)
                return BAD(414, "request line over 8 KiB");
        if (!end) {
                if (len >= AL_PROXY_HEAD_MAX)
                        return BAD(431, "request head over the proxy's cap");
                return 0;
        }
        if (line_n == 0)
                return BAD(400, "empty request line");

        ret = line_parse(buf, line_n, &r, err);
        if (ret < 0)
                return ret;

        /* the header lines, each CRLF-terminated, up to the empty one */
        const char *p = eol + 2;
        while (p < end - 2) {
                const char *le = memmem(p, (size_t)(end - p), "\r\n", 2);
                size_t n = (size_t)(le - p);
                if (p[0] == ' ' || p[0] == '\t')
                        return BAD(400, "obs-fold: a header line that "
                                        "begins with whitespace");
                const char *colon = memchr(p, ':', n);
                if (!colon || colon == p)
                        return BAD(400, "header line without a name and ':'");
                size_t nn = (size_t)(colon - p);
                for (size_t i = 0; i < nn; i++)
                        if (!is_tchar((unsigned char)p[i]))
                                return BAD(400, "header name is not a token "
                                                "(whitespace before ':'?)");
                const char *v = colon + 1, *ve = le;
                while (v < ve && (*v == ' ' || *v == '\t'))
                        v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                        ve--;
                size_t vn = (size_t)(ve - v);
                for (size_t i = 0; i < vn; i++) {
                        unsigned char c = (unsigned char)v[i];
                        if ((c < 0x20 && c != '\t') || c == 0x7f)
                                return BAD(400, "control byte in a header "
                                                "value");
                }

                if (name_is(p, nn, "transfer-encoding")) {
                        have_te = true;
                } else if (name_is(p, nn, "content-length")) {
                        if (have_cl)
                                return BAD(400, "two Content-Length headers");
                        have_cl = true;
                        if (vn == 0 || vn > PROXY_CL_DIGITS)
                                return BAD(400, "Content-Length is not a "
                                                "number");
                        uint64_t x = 0;
                        for (size_t i = 0; i < vn; i++) {
                                if (v[i] < '0' || v[i] > '9')
                                        return BAD(400, "Content-Length is "
                                                        "not a number");
                                x = x * 10 + (uint64_t)(v[i] - '0');
                        }
                        r.body_len = x;
                } else if (name_is(p, nn, "host")) {
                        if (have_host)
                                return BAD(400, "two Host headers");
                        have_host = true;
                        host_v = v;
                        host_n = vn;
                }
                p = le + 2;
        }

        /* one framing only: Content-Length, or none */
        if (have_te && have_cl)
                return BAD(400, "Transfer-Encoding with Content-Length");
        if (have_te)
                return BAD(501, "Transfer-Encoding is not supported by the "
                                "proxy: send a Content-Length");
        if (r.connect && have_cl)
                return BAD(400, "Content-Length on CONNECT");
        if (have_host) {
                char h[AL_NET_HOST_MAX];
                uint16_t port = r.connect ? r.port : 80;
                bool had_port = false;
                ret = authority_parse(host_v, host_n, false, h, sizeof(h),
                                      &port, &had_port, err);
                if (ret < 0)
                        return ret;
                /* CONNECT's Host may leave out the port; a plain request's
                 * port defaults to 80 on both sides */
                if (strcmp(h, r.host) != 0 ||
                    (port != r.port && (had_port || !r.connect)))
                        return BAD(400, "Host header disagrees with the "
                                        "request target");
        }
        r.head_len = (size_t)(end - buf);
        *out = r;
        return (int)r.head_len;
}
