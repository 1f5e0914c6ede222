/* SPDX-License-Identifier: MIT */
/* airlock doctor: print the host's protection report. */
#include <getopt.h> /* optind */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "cli.h"

/* --help (its flags have no lines of their own). */
static const char usage[] =
        "Usage: airlock doctor [--json] [--state DIR]\n\n"
        "Report which protection layers this host gives, and for "
        "each missing one\nthe exact fix. Runs one tiny sandbox to "
        "check what is really applied,\nand opens the audit log of the state "
        "directory (--state, as for run).\n\n"
        "Exit status: 0 every layer active, 1 some layer missing "
        "or weakened,\n2 usage error.\n";

/* The audit log: runs are refused while it cannot be written. */
static void audit_check(const char *state, al_check *checks, size_t *n) {
        if (*n >= AL_MAX_CHECKS)
                return;
        al_check *k = &checks[(*n)++];
        *k = (al_check){.state = AL_CHECK_OK};
        snprintf(k->name, sizeof(k->name), "audit.log");
        al_error e = {0};
        al_audit *a = NULL;
        uint64_t seq = 0;
        char head[AL_AUDIT_HASH_SIZE], dir[4096] = "?";
        al_state_dir_resolve(state, dir, sizeof(dir), &e);
        if (al_audit_open(state, &a, &e) < 0 ||
            al_audit_head(a, &seq, head, &e) < 0) {
                k->state = AL_CHECK_MISSING;
                snprintf(k->detail, sizeof(k->detail), "%s", e.msg);
                snprintf(k->fix, sizeof(k->fix),
                         "fix the state directory %s (runs are refused until "
                         "then; --no-audit runs without the log)",
                         dir);
        } else {
                char schema[400] = "";
                int sc = al_audit_schema_check(a, schema, sizeof(schema), &e);
                if (sc != 0) {
                        /* a planted trigger or view, a changed table:
                         * every write is refused, so every run is */
                        k->state = AL_CHECK_MISSING;
                        snprintf(k->detail, sizeof(k->detail),
                                 "%s/audit.db: the schema is not airlock's: "
                                 "%s",
                                 dir, sc < 0 ? e.msg : schema);
                        snprintf(k->fix, sizeof(k->fix),
                                 "someone changed %s/audit.db: keep a copy "
                                 "for the investigation, check it with "
                                 "airlock audit verify, then move it away "
                                 "(runs are refused until then)",
                                 dir);
                } else
                        snprintf(k->detail, sizeof(k->detail),
                                 "%s/audit.db: %llu records, head "
                                 "%llu:%.16s...; key 0600; schema airlock's",
                                 dir, (unsigned long long)seq,
                                 (unsigned long long)seq, head);
        }
        al_audit_close(a);
        /* a store that cannot grow refuses every run: say so before */
        if (*n >= AL_MAX_CHECKS)
                return;
        k = &checks[(*n)++];
        *k = (al_check){.state = AL_CHECK_OK};
        snprintf(k->name, sizeof(k->name), "audit.free_space");
        uint64_t free_b = 0;
        if (al_audit_free_bytes(state, &free_b, &e) < 0) {
                k->state = AL_CHECK_MISSING;
                snprintf(k->detail, sizeof(k->detail), "%s", e.msg);
                snprintf(k->fix, sizeof(k->fix), "fix the state directory %s",
                         dir);
                return;
        }
        snprintf(k->detail, sizeof(k->detail),
                 "%llu MiB free for the audit store under %s (warning below "
                 "%llu MiB)",
                 (unsigned long long)(free_b >> 20), dir,
                 (unsigned long long)(AL_AUDIT_MIN_FREE_BYTES >> 20));
        if (free_b < AL_AUDIT_MIN_FREE_BYTES) {
                k->state = AL_CHECK_WARN;
                snprintf(k->fix, sizeof(k->fix),
                         "free space on the filesystem of %s, or prune the "
                         "log (airlock audit prune --before 90d): when it is "
                         "full every run is refused",
                         dir);
        }
}

int cmd_doctor(int argc, char **argv) {
        bool json = false;
        const char *state = NULL;
        const struct cli_opt opts[] = {CLI_OPT_FLAG("json", &json, NULL),
                                       CLI_OPT_STRING("state", &state, NULL),
                                       CLI_END};
        const struct cli_cmd cmd = {opts, usage, NULL, NULL};
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
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
        audit_check(state, checks, &n);
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
