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
#include "util.h"

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

const struct cli_limit_flag cli_limit_flags[CLI_LIM_N] = {
        [CLI_LIM_WALL] = {"wall_ms", true},
        [CLI_LIM_CPU] = {"cpu_ms", true},
        [CLI_LIM_MEMORY] = {"memory_mb", false},
        [CLI_LIM_PIDS] = {"pids", false},
        [CLI_LIM_DISK] = {"disk_mb", false},
        [CLI_LIM_OUTPUT] = {"output_bytes", false},
        [CLI_LIM_FILES] = {"open_files", false},
};

int cli_seconds_to_ms(const char *s, uint64_t *ms) {
        const char *dot = strchr(s, '.');
        char whole[32] = "", frac[4] = "000";
        size_t wl = dot ? (size_t)(dot - s) : strlen(s);
        if (wl == 0 || wl >= sizeof(whole))
                return -EINVAL;
        memcpy(whole, s, wl);
        if (dot) {
                size_t fl = strlen(dot + 1);
                if (fl == 0 || fl > 3)
                        return -EINVAL;
                memcpy(frac, dot + 1, fl);
                for (size_t i = 0; i < 3; i++)
                        if (frac[i] < '0' || frac[i] > '9')
                                return -EINVAL;
        }
        uint64_t w;
        int r = al_parse_u64(whole, &w);
        if (r < 0)
                return r;
        if (w > UINT64_MAX / 1000 - 1000)
                return -ERANGE;
        *ms = w * 1000 + (uint64_t)strtoul(frac, NULL, 10);
        return 0;
}
