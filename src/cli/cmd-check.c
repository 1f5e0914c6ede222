/* SPDX-License-Identifier: MIT */
/* airlock check: static validation of code against a policy. */
#include <errno.h>
#include <getopt.h> /* optind */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-check.h"
#include "cli.h"
#include "findings-json.h"
#include "json.h"
#include "macro.h"
#include "util.h"

#define CHECK_MAX_READ (8u << 20)

/* --help: the usage, the table's lines (cmd_check), the notes. */
static const char usage[] =
        "Usage: airlock check [--lang L] [--policy FILE] "
        "[--threshold SEV] [--json] FILE|-\n\n"
        "Parse the code with tree-sitter and report what the policy "
        "forbids: modules,\ncalls, and the usual ways of hiding them "
        "(aliases, computed imports,\n__builtins__, decoded code fed to "
        "exec, ...). No code runs.\n\n";
static const char notes[] =
        "\nExit status: 0 no finding at or above the threshold, 1 "
        "findings at or\nabove it (code that does not parse is a "
        "high finding, reported with its\nposition: the rules still "
        "run over the rest), 2 usage error, unreadable\nfile, bad "
        "policy, or a check that could not be made.\n";

/* The checker's name for a language tag or a file's extension. */
static const char *lang_name(const char *tag) {
        static const char *const map[][2] = {
                {"python", "python"}, {"python3", "python"}, {"py", "python"},
                {"node", "node"},     {"nodejs", "node"},    {"js", "node"},
                {"javascript", "node"}, {"mjs", "node"},     {"cjs", "node"},
                {"bash", "bash"},     {"sh", "bash"},        {"shell", "bash"}};
        for (size_t i = 0; tag && i < ARRAY_SIZE(map); i++)
                if (!strcmp(tag, map[i][0]))
                        return map[i][1];
        return NULL;
}

static void print_human(const char *file, const al_findings *f,
                        al_severity threshold, const char *policy) {
        /* a note, not a usage error: the grammar may lack a construct
         * that the shell accepts (exec 3<>/dev/tcp/...), and the rules
         * still ran over what could be parsed */
        if (f->syntax_error)
                printf("%s:%u:%u: high syntax: the code does not parse here "
                       "(near '%s'); the rules ran over the rest\n",
                       file, f->error_line, f->error_column,
                       f->error_snippet);
        for (size_t i = 0; i < f->n; i++) {
                const al_finding *x = &f->v[i];
                printf("%s:%u:%u: %s %s: %s\n    %s\n", file, x->line,
                       x->column, al_severity_name(x->severity), x->rule,
                       x->message, x->snippet);
        }
        size_t at = al_findings_count_at(f, threshold);
        size_t n = f->n + f->syntax_error;
        printf("%zu finding%s (%zu at or above %s), policy %s%s\n", n,
               n == 1 ? "" : "s", at, al_severity_name(threshold), policy,
               f->syntax_error ? "; the code does not parse" : "");
}

int cmd_check(int argc, char **argv) {
        const char *lang = NULL, *policy = NULL, *thr = NULL;
        bool json = false;
        const struct cli_opt opts[] = {
                CLI_OPT_STRING("lang", &lang,
                               "  --lang L          python, node or bash (and "
                               "their aliases: py, js, sh ...);\n"
                               "                    default: from the file's "
                               "extension\n"),
                CLI_OPT_STRING("policy", &policy,
                               "  --policy FILE     a policy file (JSON; man "
                               "airlock-check); default: the\n"
                               "                    built-in policy\n"),
                CLI_OPT_STRING("threshold", &thr,
                               "  --threshold SEV   info, low, medium, high or "
                               "critical: findings at or above\n"
                               "                    it make the exit status 1 "
                               "(default: the policy's)\n"),
                CLI_OPT_FLAG("json", &json,
                             "  --json            one JSON object on stdout\n"),
                CLI_END};
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
        if (optind != argc - 1) {
                cli_error("check takes one FILE (or - for stdin)");
                return EXIT_USAGE;
        }
        const char *file = argv[optind];
        const char *ln = NULL;
        if (lang) {
                if (!(ln = lang_name(lang))) {
                        cli_error("check knows python, node and bash, not "
                                  "'%s'",
                                  lang);
                        return EXIT_USAGE;
                }
        } else {
                const char *dot = strrchr(file, '.');
                if (!dot || !(ln = lang_name(dot + 1))) {
                        cli_error("cannot tell the language of %s: give "
                                  "--lang python|node|bash",
                                  file);
                        return EXIT_USAGE;
                }
        }
        int t = -1;
        if (thr && (t = al_severity_parse(thr)) < 0) {
                cli_error("--threshold: one of info, low, medium, high, "
                          "critical, not '%s'",
                          thr);
                return EXIT_USAGE;
        }
        al_error e = {0};
        al_policy *p = al_policy_load(policy, &e);
        if (!p) {
                cli_error("%s", e.msg);
                return EXIT_USAGE;
        }
        al_severity threshold = t >= 0 ? (al_severity)t : al_policy_threshold(p);
        unsigned char *code = NULL;
        size_t len = 0;
        int r = al_read_all(file, CHECK_MAX_READ, &code, &len);
        if (r < 0) {
                if (r == -EFBIG)
                        cli_error("%s: larger than %u MiB", file,
                                  CHECK_MAX_READ >> 20);
                else
                        cli_error("%s: %s", file, strerror(-r));
                al_policy_free(p);
                return EXIT_USAGE;
        }
        al_findings f;
        if (al_check_code(p, ln, (const char *)code, len, &f, &e) < 0) {
                cli_error("%s: %s", file, e.msg);
                free(code);
                al_policy_free(p);
                return EXIT_USAGE;
        }
        free(code);
        size_t at = al_findings_count_at(&f, threshold);
        if (json) {
                json_t *o = json_pack(
                        "{s:s,s:s,s:s,s:s,s:o,s:I,s:o}", "file", file,
                        "language", ln, "policy", al_policy_name(p),
                        "threshold", al_severity_name(threshold), "findings",
                        al_findings_json(&f), "at_or_above_threshold",
                        (json_int_t)at, "syntax_error",
                        al_syntax_error_json(&f));
                char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
                if (s)
                        puts(s);
                free(s);
                json_decref(o);
        } else
                print_human(file, &f, threshold, al_policy_name(p));
        /* findings at or above the threshold decide, the syntax error
         * among them (as high); only a check that could not be made is a
         * usage error */
        int rc = at ? 1 : EXIT_OK;
        al_findings_free(&f);
        al_policy_free(p);
        return rc;
}
