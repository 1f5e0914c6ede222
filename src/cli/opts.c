/* SPDX-License-Identifier: MIT */
/* The subcommands' flags from their tables (cli.h): one getopt_long loop
 * for all of them, and --help from the same table. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* getopt's code for entry i: its short name (so that -l and --lang are
 * one option, and aliases with the same short name stay one option for
 * getopt's abbreviations), else one above any character. */
static int opt_val(const struct cli_opt *t, size_t i) {
        return t[i].short_name ? t[i].short_name : 256 + (int)i;
}

static const struct cli_opt *opt_by_val(const struct cli_opt *t, int c) {
        if (c >= 256)
                return &t[c - 256];
        for (; t->name; t++)
                if (t->short_name == c)
                        return t;
        return NULL;
}

void cli_help(const struct cli_cmd *cmd, FILE *f) {
        if (cmd->help) {
                cmd->help(f);
                return;
        }
        fputs(cmd->usage, f);
        for (const struct cli_opt *o = cmd->opts; o->name; o++)
                if (o->help)
                        fputs(o->help, f);
        if (cmd->notes)
                fputs(cmd->notes, f);
}

/* One option as the command wants it: 0 to go on, else the exit status. */
static int apply(const struct cli_opt *o, const char *arg) {
        switch (o->kind) {
        case CLI_FLAG:
                *o->flag = true;
                return 0;
        case CLI_STRING:
                *o->str = arg;
                return 0;
        case CLI_CALL:
                return o->set(o, arg);
        case CLI_SKIP:
                break;
        }
        return 0;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, int first) {
        const struct cli_opt *t = cmd->opts;
        struct option lo[CLI_MAX_OPTS + 2];
        char so[2 * CLI_MAX_OPTS + 2];
        size_t n = 0, sn = 0;
        for (; t[n].name; n++) {
                if (n >= CLI_MAX_OPTS)
                        abort(); /* a table over CLI_MAX_OPTS: a bug */
                lo[n] = (struct option){t[n].name, t[n].has_arg, NULL,
                                        opt_val(t, n)};
                char s = t[n].short_name;
                if (s && !memchr(so, s, sn)) {
                        so[sn++] = s;
                        if (t[n].has_arg == required_argument)
                                so[sn++] = ':';
                }
        }
        lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
        lo[n] = (struct option){NULL, 0, NULL, 0};
        so[sn++] = 'h';
        so[sn] = '\0';

        int c;
        optind = first;
        while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
                if (c == 'h') {
                        cli_help(cmd, stdout);
                        return EXIT_OK;
                }
                const struct cli_opt *o = opt_by_val(t, c);
                if (!o) { /* '?' or ':': getopt said why */
                        cli_help(cmd, stderr);
                        return EXIT_USAGE;
                }
                if (o->early == CLI_EARLY_ONLY)
                        continue; /* taken by cli_prescan() */
                int r = apply(o, optarg);
                if (r)
                        return r;
        }
        return -1;
}

void cli_prescan(const struct cli_cmd *cmd, int argc, char **argv) {
        const struct cli_opt *t = cmd->opts;
        for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
                const char *a = argv[i];
                if (a[0] != '-' || !a[1])
                        continue;
                if (a[1] != '-') { /* short: -c CODE, -lpython */
                        const struct cli_opt *o = opt_by_val(t, a[1]);
                        if (o && o->has_arg == required_argument && !a[2])
                                i++;
                        continue;
                }
                const char *name = a + 2, *eq = strchr(name, '=');
                size_t len = eq ? (size_t)(eq - name) : strlen(name);
                const char *val =
                        eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
                for (const struct cli_opt *o = t; o->name; o++) {
                        if (strlen(o->name) != len ||
                            strncmp(o->name, name, len))
                                continue;
                        if (o->early != CLI_LATE &&
                            (o->has_arg == no_argument || val))
                                apply(o,
                                      o->has_arg == no_argument ? NULL : val);
                        if (o->has_arg == required_argument && !eq)
                                i++;
                        break;
                }
        }
}
