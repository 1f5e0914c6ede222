/* SPDX-License-Identifier: MIT */
/* Small pieces the subcommands share. */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "airlock-extract.h"
#include "cli.h"
#include "macro.h"

/* The length of s's first max bytes, or less, so that no UTF-8 sequence
 * is cut. */
static size_t utf8_prefix(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n <= max)
                return n;
        while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
                max--;
        return max;
}

/* Why block b is not taken, in words; NULL when it is. *ret_lang is the
 * language it runs as. */
const char *cli_block_skip_reason(const al_block *b, const char *only,
                                  const char *default_lang, char *buf, size_t size,
                                  const char **ret_lang) {
        *ret_lang = NULL;
        if (!b->fenced)
                return "indented code block (only fenced blocks are taken)";
        const char *lang = b->lang ? b->lang : default_lang;
        if (!lang)
                return "untagged";
        if (!al_lang_normalise(lang)) {
                /* a tag is a whole line at most: cut it, not a character */
                int cut = (int)utf8_prefix(lang, 64);
                snprintf(buf, size, "unknown language '%.*s%s'", cut, lang,
                         lang[cut] ? "..." : "");
                return buf;
        }
        if (only && strcmp(lang, only) != 0) {
                snprintf(buf, size, "language %s, not %s (--lang)", lang, only);
                return buf;
        }
        *ret_lang = lang;
        return NULL;
}

int cli_languages_load(const char *file) {
        al_error e = {0};
        if (file && file[0] && al_languages_load_file(file, &e) < 0) {
                cli_error("--languages: %s", e.msg);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

void cli_local_actor(char *out, size_t size) {
        struct passwd *pw = getpwuid(getuid());
        if (pw)
                snprintf(out, size, "user:%s", pw->pw_name);
        else
                snprintf(out, size, "uid:%u", getuid());
}

