/* SPDX-License-Identifier: MIT */
/*
 * Glob matching of workspace-relative paths (collect patterns), in time
 * bounded by pattern length x path length.
 *
 * The pattern comes from a client and the paths from the sandboxed code,
 * and the match runs in the supervisor, outside every limit of the run:
 * a recursive "try every split" matcher is exponential in the number of
 * "**" (12 of them against 20 deep files cost 12.9 s of CPU). Both levels
 * here use the classic greedy matcher with one backtrack point: within a
 * component, '*' is the star over bytes; across components, a "**"
 * component is the star over whole components. Matching one segment
 * between two stars at its earliest position is always safe because the
 * next star absorbs whatever follows, so one backtrack point suffices and
 * the work is O(|pattern| x |path|).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

/* A component of a pattern or path: [p, e). */
struct comp {
        const char *p, *e;
};

static struct comp comp_at(const char *s) {
        const char *slash = strchr(s, '/');
        return (struct comp){s, slash ? slash : s + strlen(s)};
}

/* The start of the next component after c, or NULL at the end. */
static const char *comp_next(struct comp c) {
        return *c.e == '/' ? c.e + 1 : NULL;
}

static bool is_dstar(struct comp c) {
        return c.e - c.p == 2 && c.p[0] == '*' && c.p[1] == '*';
}

static bool class_named(const char *name, size_t n, unsigned char ch) {
        static const struct {
                const char *name;
                int (*fn)(int);
        } classes[] = {
                {"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank},
                {"cntrl", iscntrl}, {"digit", isdigit}, {"graph", isgraph},
                {"lower", islower}, {"print", isprint}, {"punct", ispunct},
                {"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit},
        };
        for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
                if (strlen(classes[i].name) == n &&
                    !memcmp(classes[i].name, name, n))
                        return classes[i].fn(ch) != 0;
        return false;
}

/* Does the one-byte pattern item at p (before e) match ch? *ret_len gets
 * the item's length. An unterminated '[' is a literal, as in fnmatch. */
static bool item_match(const char *p, const char *e, unsigned char ch,
                       size_t *ret_len, uint64_t *steps) {
        (*steps)++;
        if (*p == '?') {
                *ret_len = 1;
                return true;
        }
        if (*p == '\\' && p + 1 < e) {
                *ret_len = 2;
                return (unsigned char)p[1] == ch;
        }
        if (*p == '[') {
                const char *q = p + 1;
                bool neg = q < e && (*q == '!' || *q == '^');
                if (neg)
                        q++;
                bool hit = false, first = true;
                while (q < e && (first || *q != ']')) {
                        (*steps)++;
                        first = false;
                        if (*q == '[' && q + 1 < e && q[1] == ':') {
                                const char *end = q + 2;
                                while (end + 1 < e &&
                                       !(end[0] == ':' && end[1] == ']'))
                                        end++;
                                if (end + 1 < e) {
                                        hit |= class_named(
                                                q + 2, (size_t)(end - q - 2),
                                                ch);
                                        q = end + 2;
                                        continue;
                                }
                        }
                        unsigned char lo = (unsigned char)*q;
                        if (*q == '\\' && q + 1 < e)
                                lo = (unsigned char)*++q;
                        unsigned char hi = lo;
                        if (q + 2 < e && q[1] == '-' && q[2] != ']') {
                                q += 2;
                                if (*q == '\\' && q + 1 < e)
                                        q++;
                                hi = (unsigned char)*q;
                        }
                        if (ch >= lo && ch <= hi)
                                hit = true;
                        q++;
                }
                if (q < e) { /* the closing ']' */
                        *ret_len = (size_t)(q + 1 - p);
                        return hit != neg;
                }
                /* no ']': the '[' stands for itself */
        }
        *ret_len = 1;
        return (unsigned char)*p == ch;
}

/* One pattern component against one path component: '*' any bytes, '?'
 * one byte, [..] a class, '\' quotes the next byte. */
static bool comp_match(struct comp pat, struct comp name, uint64_t *steps) {
        const char *p = pat.p, *s = name.p;
        const char *star_p = NULL, *star_s = NULL;
        while (s < name.e) {
                (*steps)++;
                if (p < pat.e && *p == '*') {
                        while (p < pat.e && *p == '*')
                                p++;
                        if (p == pat.e)
                                return true;
                        star_p = p;
                        star_s = s;
                        continue;
                }
                size_t len;
                if (p < pat.e &&
                    item_match(p, pat.e, (unsigned char)*s, &len, steps)) {
                        p += len;
                        s++;
                        continue;
                }
                if (!star_p)
                        return false;
                p = star_p;
                s = ++star_s;
        }
        while (p < pat.e && *p == '*')
                p++;
        return p == pat.e;
}

bool al_glob_match_counted(const char *pattern, const char *path,
                           uint64_t *steps) {
        /* The same greedy walk one level up: components instead of bytes,
         * a "**" component instead of '*'. A trailing "**" matches one or
         * more components (out then ** is the files under out, not a
         * file named out); elsewhere it matches zero or more. */
        const char *p = pattern, *s = path;
        const char *star_p = NULL, *star_s = NULL;
        while (s) {
                (*steps)++;
                struct comp sc = comp_at(s);
                if (p) {
                        struct comp pc = comp_at(p);
                        if (is_dstar(pc)) {
                                while (p && is_dstar(pc = comp_at(p)))
                                        p = comp_next(pc);
                                if (!p)
                                        return true; /* s is not empty */
                                star_p = p;
                                star_s = s;
                                continue;
                        }
                        if (comp_match(pc, sc, steps)) {
                                p = comp_next(pc);
                                s = comp_next(sc);
                                continue;
                        }
                }
                if (!star_p)
                        return false;
                /* the last "**" takes one more component */
                p = star_p;
                s = comp_next(comp_at(star_s));
                star_s = s;
        }
        return !p;
}

bool al_glob_match(const char *pattern, const char *path) {
        uint64_t steps = 0;
        return al_glob_match_counted(pattern, path, &steps);
}

int al_glob_check(const char *pattern) {
        size_t len = strlen(pattern), dstars = 0;
        if (len > AL_GLOB_MAX_LEN)
                return -ENAMETOOLONG;
        for (const char *p = pattern; (p = strstr(p, "**")); p += 2)
                dstars++;
        return dstars > AL_GLOB_MAX_DSTAR ? -E2BIG : 0;
}
