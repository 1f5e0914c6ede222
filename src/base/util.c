/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

int al_parse_u64(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        uint64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

bool al_rel_path_ok(const char *p) {
        if (!p || !*p || *p == '/' || strlen(p) > AL_PATH_MAX)
                return false;
        for (const char *c = p; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return false;
        const char *seg = p;
        for (;;) {
                const char *end = strchr(seg, '/');
                size_t n = end ? (size_t)(end - seg) : strlen(seg);
                if (n == 0 || (n == 1 && seg[0] == '.') ||
                    (n == 2 && seg[0] == '.' && seg[1] == '.'))
                        return false;
                if (!end)
                        return true;
                seg = end + 1;
        }
}

bool al_env_name_ok(const char *n) {
        if (!n || !*n || strlen(n) > 128)
                return false;
        if (!(n[0] == '_' || (n[0] >= 'A' && n[0] <= 'Z') ||
              (n[0] >= 'a' && n[0] <= 'z')))
                return false;
        for (const char *c = n + 1; *c; c++)
                if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
                        return false;
        return true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

bool al_utf8_valid(const unsigned char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(s + i, len - i);
                if (!n)
                        return false;
                i += n;
        }
        return true;
}

char *al_utf8_sanitize(const unsigned char *s, size_t len, size_t *ret_len) {
        /* worst case: every byte becomes the 3-byte U+FFFD */
        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        char *out = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(s + i, len - i);
                if (n) {
                        memcpy(out + o, s + i, n);
                        o += n;
                        i += n;
                } else {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                }
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

char *al_base64_encode(const unsigned char *s, size_t len) {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
                                  "stuvwxyz0123456789+/";
        if (len > (SIZE_MAX / 4) * 3 - 3)
                return NULL;
        size_t olen = (len + 2) / 3 * 4;
        char *out = malloc(olen + 1);
        if (!out)
                return NULL;
        size_t o = 0, i = 0;
        for (; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
                             s[i + 2];
                out[o++] = tbl[v >> 18];
                out[o++] = tbl[(v >> 12) & 63];
                out[o++] = tbl[(v >> 6) & 63];
                out[o++] = tbl[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)s[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)s[i + 1] << 8;
                out[o++] = tbl[v >> 18];
                out[o++] = tbl[(v >> 12) & 63];
                out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        return out;
}

static bool has_suffix(const char *s, const char *suf) {
        size_t a = strlen(s), b = strlen(suf);
        return a >= b && strcasecmp(s + a - b, suf) == 0;
}

const char *al_guess_mime(const char *name, const unsigned char *d,
                          size_t len) {
        /* Magic bytes first: the name is chosen by the code, the bytes
         * are what a client will actually decode. */
        if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
                return "image/png";
        if (len >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0)
                return "image/jpeg";
        if (len >= 6 &&
            (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
                return "image/gif";
        if (len >= 5 && memcmp(d, "%PDF-", 5) == 0)
                return "application/pdf";
        if (len >= 4 && memcmp(d, "PK\x03\x04", 4) == 0)
                return "application/zip";
        static const struct {
                const char *suf, *mime;
        } ext[] = {
                {".svg", "image/svg+xml"},     {".csv", "text/csv"},
                {".json", "application/json"}, {".html", "text/html"},
                {".txt", "text/plain"},        {".md", "text/markdown"},
                {".py", "text/x-python"},      {".js", "text/javascript"},
                {".xml", "application/xml"},   {".webp", "image/webp"},
        };
        for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
                if (has_suffix(name, ext[i].suf))
                        return ext[i].mime;
        if (al_utf8_valid(d, len < 4096 ? len : 4096) && !memchr(d, 0, len))
                return "text/plain";
        return "application/octet-stream";
}

double al_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void al_utc_now(char out[32]) {
        struct timespec t;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &t);
        gmtime_r(&t.tv_sec, &tm);
        snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, t.tv_nsec / 1000000);
}

char *al_term_sanitize(const char *s, size_t len, unsigned flags) {
        static const char hexd[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        /* worst case: every byte becomes the 4 bytes of \xNN */
        if (len > (SIZE_MAX - 1) / 4)
                return NULL;
        char *out = malloc(len * 4 + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(u + i, len - i);
                uint32_t cp = 0;
                if (n == 2)
                        cp = (uint32_t)(u[i] & 0x1f) << 6 | (u[i + 1] & 0x3f);
                else if (n == 3)
                        cp = (uint32_t)(u[i] & 0x0f) << 12 |
                             (uint32_t)(u[i + 1] & 0x3f) << 6 |
                             (u[i + 2] & 0x3f);
                bool keep_nl = (flags & AL_TERM_KEEP_NEWLINES) &&
                               (u[i] == '\n' || u[i] == '\t');
                if (n == 1 && (u[i] < 0x20 || u[i] == 0x7f) && !keep_nl) {
                        memcpy(out + o, "\\x", 2);
                        out[o + 2] = hexd[u[i] >> 4];
                        out[o + 3] = hexd[u[i] & 15];
                        o += 4;
                        i++;
                } else if (!n) {
                        memcpy(out + o, "\\x", 2);
                        out[o + 2] = hexd[u[i] >> 4];
                        out[o + 3] = hexd[u[i] & 15];
                        o += 4;
                        i++;
                } else if ((n == 2 && cp >= 0x80 && cp <= 0x9f) ||
                           (n == 3 && ((cp >= 0x202a && cp <= 0x202e) ||
                                       (cp >= 0x2066 && cp <= 0x2069)))) {
                        memcpy(out + o, "\\u", 2);
                        for (int k = 0; k < 4; k++)
                                out[o + 2 + k] =
                                        hexd[(cp >> (12 - 4 * k)) & 15];
                        o += 6;
                        i += n;
                } else {
                        memcpy(out + o, u + i, n);
                        o += n;
                        i += n;
                }
        }
        out[o] = '\0';
        return out;
}

void al_redact_secret(char *buf, size_t size, const char *secret) {
        static const char R[] = "[key]";
        size_t n = secret ? strlen(secret) : 0;
        if (n < 4 || size == 0 || !strstr(buf, secret))
                return;
        char *out = malloc(size);
        if (!out) {
                /* no room to rebuild it: show nothing rather than a key */
                buf[0] = '\0';
                return;
        }
        size_t o = 0;
        const char *p = buf;
        for (;;) {
                const char *hit = strstr(p, secret);
                size_t seg = hit ? (size_t)(hit - p) : strlen(p);
                size_t room = size - 1 - o;
                if (seg > room) {
                        /* cut, and not inside a UTF-8 sequence */
                        seg = room;
                        while (seg > 0 &&
                               ((unsigned char)p[seg] & 0xc0) == 0x80)
                                seg--;
                        memcpy(out + o, p, seg);
                        o += seg;
                        break;
                }
                memcpy(out + o, p, seg);
                o += seg;
                if (!hit || sizeof(R) - 1 > size - 1 - o)
                        break;
                memcpy(out + o, R, sizeof(R) - 1);
                o += sizeof(R) - 1;
                p = hit + n;
        }
        out[o] = '\0';
        memcpy(buf, out, o + 1);
        free(out);
}

int al_read_all(const char *path, size_t max, unsigned char **ret,
                 size_t *ret_len) {
        _cleanup_close_ int fd = strcmp(path, "-") == 0
                                         ? dup(0)
                                         : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t cap = 65536, len = 0;
        _cleanup_free_ unsigned char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= max + (size_t)1)
                                return -EFBIG;
                        cap *= 2;
                        if (cap > max + (size_t)1)
                                cap = max + 1;
                        unsigned char *nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        *ret = steal_pointer(&buf);
        *ret_len = len;
        return 0;
}

int al_stop_signals(void) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        return signalfd(-1, &mask, SFD_CLOEXEC);
}
