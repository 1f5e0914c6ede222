/* SPDX-License-Identifier: MIT */
/* Pure helpers: number parsing, path and name checks, UTF-8, base64,
 * mime guessing, globbing. */
#include <errno.h>
#include <stdlib.h>

#include "tap.h"
#include "util.h"

static void parse_u64(void) {
        uint64_t v = 7;
        ASSERT_INT_EQ(al_parse_u64("0", &v), 0);
        ASSERT_INT_EQ(v, 0);
        ASSERT_INT_EQ(al_parse_u64("18446744073709551615", &v), 0);
        ASSERT_TRUE(v == UINT64_MAX);
        ASSERT_INT_EQ(al_parse_u64("18446744073709551616", &v), -ERANGE);
        ASSERT_INT_EQ(al_parse_u64("-1", &v), -EINVAL);
        ASSERT_INT_EQ(al_parse_u64(" 1", &v), -EINVAL);
        ASSERT_INT_EQ(al_parse_u64("1k", &v), -EINVAL);
        ASSERT_INT_EQ(al_parse_u64("", &v), -EINVAL);
        ASSERT_INT_EQ(al_parse_u64("0x10", &v), -EINVAL);
}

static void rel_paths(void) {
        ASSERT_TRUE(al_rel_path_ok("data.csv"));
        ASSERT_TRUE(al_rel_path_ok("in/data.csv"));
        ASSERT_TRUE(al_rel_path_ok("..data"));
        ASSERT_TRUE(!al_rel_path_ok("../etc/passwd"));
        ASSERT_TRUE(!al_rel_path_ok("a/../../b"));
        ASSERT_TRUE(!al_rel_path_ok("a/.."));
        ASSERT_TRUE(!al_rel_path_ok("/etc/passwd"));
        ASSERT_TRUE(!al_rel_path_ok("a//b"));
        ASSERT_TRUE(!al_rel_path_ok("a/./b"));
        ASSERT_TRUE(!al_rel_path_ok("a/"));
        ASSERT_TRUE(!al_rel_path_ok(""));
        ASSERT_TRUE(!al_rel_path_ok("a\nb"));
        char longp[300];
        memset(longp, 'a', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = '\0';
        ASSERT_TRUE(!al_rel_path_ok(longp));
}

static void env_names(void) {
        ASSERT_TRUE(al_env_name_ok("FOO_1"));
        ASSERT_TRUE(al_env_name_ok("_x"));
        ASSERT_TRUE(!al_env_name_ok("1FOO"));
        ASSERT_TRUE(!al_env_name_ok("A=B"));
        ASSERT_TRUE(!al_env_name_ok(""));
        ASSERT_TRUE(!al_env_name_ok("A-B"));
}

static void utf8(void) {
        ASSERT_TRUE(al_utf8_valid((const unsigned char *)"h\xc3\xa9llo", 6));
        ASSERT_TRUE(al_utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80", 4));
        ASSERT_TRUE(!al_utf8_valid((const unsigned char *)"\xff", 1));
        ASSERT_TRUE(!al_utf8_valid((const unsigned char *)"\xc0\xaf", 2));
        ASSERT_TRUE(!al_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));
        ASSERT_TRUE(!al_utf8_valid((const unsigned char *)"\xe2\x82", 2));
        size_t n = 0;
        char *s = al_utf8_sanitize((const unsigned char *)"a\xffz", 3, &n);
        ASSERT_TRUE(s != NULL);
        ASSERT_STR_EQ(s, "a\xef\xbf\xbdz");
        ASSERT_INT_EQ(n, 5);
        free(s);
}

static void base64(void) {
        const struct {
                const char *in, *out;
        } v[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                 {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},
                 {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                char *o = al_base64_encode((const unsigned char *)v[i].in,
                                           strlen(v[i].in));
                ASSERT_STR_EQ(o, v[i].out);
                free(o);
        }
}

static void mime(void) {
        ASSERT_STR_EQ(al_guess_mime("x.bin",
                                    (const unsigned char *)"\x89PNG\r\n\x1a\n",
                                    8),
                      "image/png");
        /* the bytes win over a lying name */
        ASSERT_STR_EQ(al_guess_mime("plot.png", (const unsigned char *)"hi", 2),
                      "text/plain");
        ASSERT_STR_EQ(al_guess_mime("d.csv", (const unsigned char *)"a,b", 3),
                      "text/csv");
        ASSERT_STR_EQ(al_guess_mime("x", (const unsigned char *)"\0\1\2", 3),
                      "application/octet-stream");
}

static void globs(void) {
        ASSERT_TRUE(al_glob_match("*.png", "a.png"));
        ASSERT_TRUE(!al_glob_match("*.png", "out/a.png"));
        ASSERT_TRUE(al_glob_match("out/*.png", "out/a.png"));
        ASSERT_TRUE(!al_glob_match("out/*.png", "out/sub/a.png"));
        ASSERT_TRUE(al_glob_match("**/*.png", "a.png"));
        ASSERT_TRUE(al_glob_match("**/*.png", "x/y/a.png"));
        ASSERT_TRUE(al_glob_match("out/**", "out/x/y"));
        ASSERT_TRUE(!al_glob_match("out/**", "other/x"));
        ASSERT_TRUE(al_glob_match("data-?.csv", "data-1.csv"));
}

/* What a person sees on a terminal is what the bytes are: no control
 * sequence (CSI erase line, OSC title or clipboard, carriage return, C1 in
 * UTF-8, bidi overrides) gets through; text, UTF-8 and newlines on request
 * stay as they are. */
static void term_sanitize(void) {
        static const struct {
                const char *in;
                size_t len;
                unsigned flags;
                const char *want;
        } cases[] = {
                {"print(1)", 8, 0, "print(1)"},
                {"a\x1b[2K\x1b[1Gb", 10, 0, "a\\x1b[2K\\x1b[1Gb"},
                {"\x1b]0;owned\x07", 10, 0, "\\x1b]0;owned\\x07"},
                {"ok\rEVIL", 7, 0, "ok\\x0dEVIL"},
                {"l1\n\tl2", 6, 0, "l1\\x0a\\x09l2"},
                {"l1\n\tl2", 6, AL_TERM_KEEP_NEWLINES, "l1\n\tl2"},
                {"a\0b\x7f", 4, 0, "a\\x00b\\x7f"},
                /* U+009B (CSI as a C1 control) and U+0085 */
                {"x\xc2\x9b" "2Jy\xc2\x85", 8, 0, "x\\u009b2Jy\\u0085"},
                /* U+00E9, U+20AC, U+1F600 stay */
                {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, 0,
                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
                /* RLO and LRI */
                {"\xe2\x80\xae" "cba\xe2\x81\xa6", 9, 0, "\\u202ecba\\u2066"},
                /* invalid UTF-8: a lone continuation, a truncated
                 * sequence, an overlong ESC */
                {"\x80z\xe2\x82", 4, 0, "\\x80z\\xe2\\x82"},
                {"\xc0\x9b", 2, 0, "\\xc0\\x9b"},
                {"", 0, 0, ""},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = al_term_sanitize(cases[i].in, cases[i].len,
                                             cases[i].flags);
                ASSERT_TRUE(got != NULL);
                if (got && strcmp(got, cases[i].want))
                        printf("#   case %zu: got '%s'\n", i, got);
                ASSERT_STR_EQ(got ? got : "", cases[i].want);
                free(got);
        }
}

/* The matcher against a table: the semantics above, fnmatch's classes
 * and quoting, and where "**" may match nothing. */
static void glob_table(void) {
        static const struct {
                const char *pat, *path;
                bool want;
        } t[] = {
                {"a.txt", "a.txt", true},
                {"a.txt", "b.txt", false},
                {"*", "a", true},
                {"*", "a/b", false},
                {"*", ".hidden", true},
                {"*.txt", "a.txt.gz", false},
                {"*a*b*c", "xxaxxbxxc", true},
                {"*a*b*c", "xxaxxbxx", false},
                {"a?c", "abc", true},
                {"a?c", "a/c", false},
                {"[abc].txt", "b.txt", true},
                {"[!abc].txt", "b.txt", false},
                {"[^abc].txt", "d.txt", true},
                {"[a-c]x", "bx", true},
                {"[a-c]x", "dx", false},
                {"[]]x", "]x", true},
                {"[[:digit:]]*.csv", "7days.csv", true},
                {"[[:digit:]]*.csv", "days.csv", false},
                {"[abc", "[abc", true},
                {"\\*.txt", "*.txt", true},
                {"\\*.txt", "a.txt", false},
                {"**", "a", true},
                {"**", "a/b/c", true},
                {"**/a", "a", true},
                {"**/a", "x/y/a", true},
                {"**/a", "x/y/ab", false},
                {"a/**", "a", false},
                {"a/**", "a/b", true},
                {"a/**/b", "a/b", true},
                {"a/**/b", "a/x/y/b", true},
                {"a/**/b", "a/x/y/c", false},
                {"a/**/b/**/c", "a/1/b/2/b/3/c", true},
                {"a/**/b/**/c", "a/1/b/2/b/3/d", false},
                {"**/x/**", "x", false},
                {"**/x/**", "q/x/y", true},
                {"**/**/*.png", "a.png", true},
                {"out*/**", "out1/x", true},
                {"a**b", "axxb", true},   /* in a component: a '*' */
                {"a**b", "a/x/b", false},
                {"x/*/z", "x/y/z", true},
                {"x/*/z", "x/y/w/z", false},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                bool got = al_glob_match(t[i].pat, t[i].path);
                if (got != t[i].want)
                        printf("#   '%s' vs '%s': got %d\n", t[i].pat,
                               t[i].path, got);
                ASSERT_INT_EQ(got, t[i].want);
        }
}

/* Bounded work, counted (not timed): k "**" against a deep path that
 * does not match took the old recursive matcher C(depth + k, k) tries. */
static void glob_pathological(void) {
        char pat[512] = "", path[1024] = "";
        for (int i = 0; i < 16; i++)
                strncat(pat, "**/", sizeof(pat) - strlen(pat) - 1);
        strncat(pat, "*.png", sizeof(pat) - strlen(pat) - 1);
        for (int i = 0; i < 16; i++)
                strncat(path, "dd/", sizeof(path) - strlen(path) - 1);
        strncat(path, "f.txt", sizeof(path) - strlen(path) - 1);
        uint64_t steps = 0, n = strlen(pat), m = strlen(path);
        ASSERT_TRUE(!al_glob_match_counted(pat, path, &steps));
        printf("# %llu steps for |pattern| %llu x |path| %llu\n",
               (unsigned long long)steps, (unsigned long long)n,
               (unsigned long long)m);
        ASSERT_TRUE(steps <= 4 * (n + 1) * (m + 1));
        /* a star-heavy component against a long name */
        char p2[300] = "", s2[300] = "";
        for (int i = 0; i < 60; i++)
                strncat(p2, "*a", sizeof(p2) - strlen(p2) - 1);
        strncat(p2, "*b", sizeof(p2) - strlen(p2) - 1);
        memset(s2, 'a', 250);
        steps = 0;
        ASSERT_TRUE(!al_glob_match_counted(p2, s2, &steps));
        n = strlen(p2);
        m = strlen(s2);
        ASSERT_TRUE(steps <= 4 * (n + 1) * (m + 1));
        /* and a match is still found through many "**" */
        path[strlen(path) - 3] = '\0';
        strncat(path, "png", sizeof(path) - strlen(path) - 1);
        steps = 0;
        ASSERT_TRUE(al_glob_match_counted(pat, path, &steps));
}

static void glob_caps(void) {
        char pat[AL_GLOB_MAX_LEN + 8] = "";
        for (int i = 0; i < AL_GLOB_MAX_DSTAR; i++)
                strncat(pat, "**/", sizeof(pat) - strlen(pat) - 1);
        ASSERT_INT_EQ(al_glob_check(pat), 0);
        strncat(pat, "**", sizeof(pat) - strlen(pat) - 1);
        ASSERT_INT_EQ(al_glob_check(pat), -E2BIG);
        memset(pat, 'a', AL_GLOB_MAX_LEN + 1);
        pat[AL_GLOB_MAX_LEN + 1] = '\0';
        ASSERT_INT_EQ(al_glob_check(pat), -ENAMETOOLONG);
}

int main(void) {
        RUN(parse_u64);
        RUN(rel_paths);
        RUN(env_names);
        RUN(utf8);
        RUN(base64);
        RUN(mime);
        RUN(globs);
        RUN(term_sanitize);
        RUN(glob_table);
        RUN(glob_pathological);
        RUN(glob_caps);
        TAP_END();
}
