/* SPDX-License-Identifier: MIT */
/* al_term_sanitize and al_redact_secret: what reaches a person's
 * terminal from a model's answer or an endpoint's error text. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "util.h"

static void check(const char *in, size_t len, const char *want, int *bad) {
        char *got = al_term_sanitize(in, len, AL_TERM_KEEP_NEWLINES);
        if (!got || strcmp(got, want)) {
                printf("#   in %zu bytes: got \"%s\", want \"%s\"\n", len,
                       got ? got : "(null)", want);
                *bad = 1;
        }
        free(got);
}

#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want, &bad)

static void table(void) {
        int bad = 0;
        CHECK("plain text", "plain text");
        CHECK("two\nlines\tand a tab", "two\nlines\tand a tab");
        CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
        /* clear the screen, move the cursor */
        CHECK("\x1b[2J\x1b[1;1Hfake prompt$ ",
              "\\x1b[2J\\x1b[1;1Hfake prompt$ ");
        /* OSC 52: set the clipboard; OSC 0: the title; BEL/ST ends */
        CHECK("\x1b]52;c;Y3VybCBldmls\x07", "\\x1b]52;c;Y3VybCBldmls\\x07");
        CHECK("\x1b]0;title\x1b\\", "\\x1b]0;title\\x1b\\");
        CHECK("over\rwrite\b", "over\\x0dwrite\\x08");
        CHECK("del\x7f", "del\\x7f");
        /* C1 controls: U+009B (CSI) as UTF-8 and as a raw byte */
        CHECK("\xc2\x9b"
              "2J",
              "\\u009b2J");
        CHECK("\x9b"
              "2J",
              "\\x9b2J");
        CHECK("\xc2\x85", "\\u0085");
        CHECK("\xc2\xa0nbsp", "\xc2\xa0nbsp");
        /* invalid UTF-8: overlong, surrogate, truncated, stray */
        CHECK("\xc0\x9b", "\\xc0\\x9b");
        CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");
        CHECK("\xe2\x82", "\\xe2\\x82");
        CHECK("\xff\xfe", "\\xff\\xfe");
        CHECK("nul\0inside", "nul\\x00inside");
        CHECK("", "");
        ASSERT_INT_EQ(bad, 0);
}

/* A 4-byte key many times in a full 512-byte message: "[key]" is one
 * byte longer, and the old in-place replacement ran past the buffer
 * (a stack overflow in airlock agent). The canary after it must hold. */
static void redact_bounded(void) {
        struct {
                char msg[512];
                char canary[256];
        } s;
        memset(s.canary, 'C', sizeof(s.canary));
        size_t o = (size_t)snprintf(s.msg, sizeof(s.msg), "cannot reach ");
        while (o + 4 < sizeof(s.msg)) {
                memcpy(s.msg + o, "k3y!", 4);
                o += 4;
        }
        s.msg[o] = '\0';
        al_redact_secret(s.msg, sizeof(s.msg), "k3y!");
        for (size_t i = 0; i < sizeof(s.canary); i++)
                ASSERT_INT_EQ(s.canary[i], 'C');
        ASSERT_TRUE(strlen(s.msg) < sizeof(s.msg));
        ASSERT_TRUE(strstr(s.msg, "k3y") == NULL);
        ASSERT_TRUE(strncmp(s.msg, "cannot reach [key][key]", 23) == 0);
        /* cut after a whole "[key]", never inside one */
        size_t n = strlen(s.msg);
        ASSERT_TRUE(n >= 5 && strcmp(s.msg + n - 5, "[key]") == 0);

        char b[64];
        snprintf(b, sizeof(b), "Incorrect API key provided: sk-1234.");
        al_redact_secret(b, sizeof(b), "sk-1234");
        ASSERT_STR_EQ(b, "Incorrect API key provided: [key].");
        snprintf(b, sizeof(b), "short key abc stays");
        al_redact_secret(b, sizeof(b), "abc");
        ASSERT_STR_EQ(b, "short key abc stays");
        /* the cut after a text segment keeps whole UTF-8 characters */
        char c[8];
        snprintf(c, sizeof(c), "kkkkx\xc3\xa9");
        al_redact_secret(c, sizeof(c), "kkkk");
        ASSERT_STR_EQ(c, "[key]x");
}

int main(void) {
        RUN(table);
        RUN(redact_bounded);
        TAP_END();
}
