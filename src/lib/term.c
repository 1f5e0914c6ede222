/* SPDX-License-Identifier: MIT */
#include "term.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
        unsigned c = s[0];
        size_t need;
        uint32_t cp;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                need = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                need = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                need = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (n < need)
                return 0;
        for (size_t i = 1; i < need; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return need;
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
                        while (seg > 0 && ((unsigned char)p[seg] & 0xc0) ==
                                                  0x80)
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

char *al_term_sanitize(const char *s, size_t len) {
        /* at most 4 output bytes per input byte, plus the NUL */
        if (len > (SIZE_MAX - 1) / 4)
                return NULL;
        char *out = malloc(len * 4 + 1);
        if (!out)
                return NULL;
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                unsigned c = p[i];
                size_t n = utf8_len(p + i, len - i);
                /* U+0080..U+009F, encoded as C2 80..C2 9F */
                bool c1 = n == 2 && c == 0xc2 && p[i + 1] <= 0x9f;
                if (n == 1 && (c >= 0x20 || c == '\n' || c == '\t') &&
                    c != 0x7f) {
                        out[o++] = (char)c;
                        i++;
                } else if (n > 1 && !c1) {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                } else {
                        /* a control, or one byte of a bad sequence (the
                         * rest is looked at again); a C1 shows its code
                         * point */
                        unsigned v = c1 ? p[i + 1] : c;
                        out[o++] = '\\';
                        out[o++] = 'x';
                        out[o++] = hex[v >> 4];
                        out[o++] = hex[v & 15];
                        i += c1 ? 2 : 1;
                }
        }
        out[o] = '\0';
        return out;
}
