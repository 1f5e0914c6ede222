/* SPDX-License-Identifier: MIT */
/* airlock extract: the fenced code blocks of a Markdown reply. */
#include <errno.h>
#include <getopt.h> /* optind */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-extract.h"
#include "cli.h"
#include "macro.h"
#include "util.h"

/* --help: the usage, the table's lines (cmd_extract), the notes; it
 * reads as it prints. */
/* clang-format off */
static const char usage[] =
        "Usage: airlock extract [--lang L] [--default-lang L] [--json] FILE|-\n"
        "\n"
        "List the fenced code blocks (``` and ~~~) of a Markdown document, such as\n"
        "a model's reply, with their language and line: what `airlock run\n"
        "--markdown` would run, in order. Nothing runs. See airlock-extract(1).\n"
        "\n"
        "A block is taken when its info string names python, node, bash or c\n"
        "(py, python3, js, javascript, nodejs, mjs, sh, shell, zsh ... are\n"
        "normalised). Untagged blocks take --default-lang or are skipped; blocks\n"
        "of other languages are skipped; indented code blocks are never taken.\n"
        "Skipped blocks are listed with the reason.\n"
        "\n"
        "Options:\n";
static const char notes[] =
        "  -h, --help         this help\n"
        "\n"
        "The input is at most 16 MiB; invalid UTF-8 and NUL bytes become U+FFFD,\n"
        "CRLF becomes LF.\n"
        "\n"
        "Exit status: 0 at least one block taken; 1 none; 2 usage error, or the\n"
        "input could not be read or was refused (too large, too costly to parse);\n"
        "8 out of memory.\n";

/* clang-format on */

/* A --lang / --default-lang value: one of ours, by any of its tags. */
static const char *lang_arg(const char *flag, const char *v) {
        const char *l = al_lang_normalise(v);
        if (!l)
                cli_error("%s: unknown language '%s' (python, node, bash or "
                          "c, or a tag for one: py, js, sh ...)",
                          flag, v);
        return l;
}

/* --lang, --default-lang: into *o->ctx, normalised. */
static int set_lang(const struct cli_opt *o, const char *arg) {
        char flag[32];
        snprintf(flag, sizeof(flag), "--%s", o->name);
        const char **dst = o->ctx;
        return (*dst = lang_arg(flag, arg)) ? 0 : EXIT_USAGE;
}

static int set_str(json_t *o, const char *k, const char *v, size_t len) {
        return json_object_set_new(o, k, json_stringn(v, len));
}

/* Block i in words: taken (with its code) or skipped (why). */
static void print_block(const al_block *b, size_t i, const char *why,
                        const char *lang) {
        if (why)
                printf("--- skipped block %zu, line %u: "
                       "%s\n",
                       i, b->line, why);
        else
                printf("--- block %zu: %s, line %u%s%s%s%s\n"
                       "%s",
                       i, lang, b->line, b->lang ? ", info \"" : "",
                       b->lang ? b->info : "",
                       b->lang ? "\"" : " (--default-lang)",
                       b->unterminated ? ", unterminated (runs to "
                                         "the end of its container)"
                                       : "",
                       b->code);
}

/* Block i as JSON, onto blocks or skipped. */
static void json_block(const al_block *b, size_t i, const char *why,
                       const char *lang, json_t *blocks, json_t *skipped) {
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        if (why) {
                json_object_set_new(o, "line", json_integer(b->line));
                set_str(o, "info", b->info, strlen(b->info));
                json_object_set_new(o, "reason", json_string(why));
                json_array_append_new(skipped, o);
                return;
        }
        json_object_set_new(o, "lang", json_string(lang));
        set_str(o, "info", b->info, strlen(b->info));
        json_object_set_new(o, "line", json_integer(b->line));
        json_object_set_new(o, "code_line", json_integer(b->code_line));
        json_object_set_new(o, "unterminated", json_boolean(b->unterminated));
        set_str(o, "code", b->code, b->len);
        json_array_append_new(blocks, o);
}

int cmd_extract(int argc, char **argv) {
        const char *only = NULL, *default_lang = NULL;
        bool json = false, pretty = false;
        /* clang-format off */
        const struct cli_opt opts[] = {
                CLI_OPT_CALL("lang", set_lang, &only, 0,
"  --lang L           only blocks of language L (others are skipped)\n"),
                CLI_OPT_CALL("default-lang", set_lang, &default_lang, 0,
"  --default-lang L   the language of untagged blocks\n"),
                CLI_OPT_FLAG("json", &json,
"  --json             one JSON object on stdout:\n"
"                     {\"blocks\": [{\"index\", \"lang\", \"info\", \"line\",\n"
"                     \"code_line\", \"unterminated\", \"code\"}, ...],\n"
"                     \"skipped\": [{\"index\", \"line\", \"info\", \"reason\"}]}\n"),
                CLI_OPT_FLAG("pretty", &pretty,
"  --pretty           indented JSON (implies --json)\n"),
                CLI_END};
        /* clang-format on */
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
        if (pretty)
                json = true;
        if (optind != argc - 1) {
                cli_error(optind >= argc ? "no input: give a FILE, or '-' "
                                           "for stdin"
                                         : "one input only: FILE or '-'");
                return EXIT_USAGE;
        }
        const char *path = argv[optind];
        const char *name = strcmp(path, "-") ? path : "stdin";

        _cleanup_free_ unsigned char *md = NULL;
        size_t len = 0;
        int r = al_read_all(path, AL_EXTRACT_MAX_INPUT, &md, &len);
        if (r == -EFBIG) {
                cli_error("%s: larger than the %u MiB limit for Markdown "
                          "input",
                          name, AL_EXTRACT_MAX_INPUT >> 20);
                return EXIT_USAGE;
        }
        if (r < 0) {
                cli_error("cannot read %s: %s", name, strerror(-r));
                return r == -ENOMEM ? EXIT_INTERNAL : EXIT_USAGE;
        }
        al_block *b = NULL;
        size_t n = 0;
        al_error e = {0};
        r = al_extract_blocks((const char *)md, len, AL_EXTRACT_INDENTED, &b,
                              &n, &e);
        if (r < 0) {
                cli_error("%s: %s", name, e.msg);
                return r == -ENOMEM ? EXIT_INTERNAL : EXIT_USAGE;
        }

        json_t *blocks = json ? json_array() : NULL;
        json_t *skipped = json ? json_array() : NULL;
        size_t taken = 0, nskipped = 0;
        for (size_t i = 0; i < n; i++) {
                char why_buf[256];
                const char *lang;
                const char *why = cli_block_skip_reason(&b[i], only, default_lang,
                                              why_buf, sizeof(why_buf), &lang);
                if (why)
                        nskipped++;
                else
                        taken++;
                if (!json)
                        print_block(&b[i], i, why, lang);
                else
                        json_block(&b[i], i, why, lang, blocks, skipped);
        }
        al_blocks_free(b, n);

        int ret = taken ? EXIT_OK : EXIT_RUN_ERROR;
        if (json) {
                json_t *root = json_object();
                json_object_set_new(root, "blocks", blocks);
                json_object_set_new(root, "skipped", skipped);
                char *s = json_dumps(root,
                                     (pretty ? JSON_INDENT(2) : JSON_COMPACT) |
                                             JSON_PRESERVE_ORDER);
                json_decref(root);
                if (!s) {
                        cli_error("out of memory");
                        return EXIT_INTERNAL;
                }
                puts(s);
                free(s);
        } else {
                printf("--- %zu block%s taken, %zu skipped\n", taken,
                       taken == 1 ? "" : "s", nskipped);
        }
        if (fflush(stdout) == EOF || ferror(stdout)) {
                cli_error("writing the output: %s", strerror(errno));
                return EXIT_INTERNAL;
        }
        return ret;
}
