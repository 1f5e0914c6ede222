/* SPDX-License-Identifier: MIT */
/* airlock doctor: print the host's protection report. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "cli.h"

static void help(FILE *f) {
        fprintf(f, "Usage: airlock doctor [--json]\n\n"
                   "Report which protection layers this host gives, and for "
                   "each missing one\nthe exact fix. Runs one tiny sandbox to "
                   "check what is really applied.\n\n"
                   "Exit status: 0 every layer active, 1 some layer missing "
                   "or weakened,\n2 usage error.\n");
}

int cmd_doctor(int argc, char **argv) {
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        bool json = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (c == 'j')
                        json = true;
                else if (c == 'h') {
                        help(stdout);
                        return EXIT_OK;
                } else {
                        help(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("doctor takes no arguments");
                return EXIT_USAGE;
        }
        al_check checks[AL_MAX_CHECKS];
        size_t n = 0;
        al_error e = {0};
        if (al_doctor(checks, &n, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        bool all_ok = true;
        for (size_t i = 0; i < n; i++)
                if (checks[i].state != AL_CHECK_OK && !checks[i].speed)
                        all_ok = false;
        if (json) {
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(
                                arr, json_pack("{s:s,s:s,s:s,s:s,s:b}", "name",
                                               checks[i].name, "state",
                                               al_check_state_name(
                                                       checks[i].state),
                                               "detail", checks[i].detail,
                                               "fix", checks[i].fix, "speed",
                                               checks[i].speed));
                json_t *o = json_pack("{s:b,s:o}", "all_ok", all_ok, "checks",
                                      arr);
                char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                puts(s);
                free(s);
                json_decref(o);
        } else {
                for (size_t i = 0; i < n; i++) {
                        printf("%-8s %-26s %s\n",
                               checks[i].state == AL_CHECK_OK     ? "[ok]"
                               : checks[i].state == AL_CHECK_WARN ? "[warn]"
                                                                  : "[MISSING]",
                               checks[i].name, checks[i].detail);
                        if (checks[i].fix[0])
                                printf("%-8s %-26s fix: %s\n", "", "",
                                       checks[i].fix);
                }
                printf("\n%s\n", all_ok ? "All protection layers are active."
                                        : "Some layers are missing or weaker; "
                                          "see the fixes above.");
        }
        return all_ok ? EXIT_OK : 1;
}
