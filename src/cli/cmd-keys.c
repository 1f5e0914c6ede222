/* SPDX-License-Identifier: MIT */
/* airlock keys create|list|revoke: the API keys of airlock serve. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-keys.h"
#include "cli.h"
#include "json.h"
#include "util.h"

/* clang-format off */
static void help(FILE *f) {
        fputs(
"Usage: airlock keys create --name NAME [--scopes S] [--rate N/PERIOD]\n"
"                           [--max-concurrent N] [--max-memory MB]\n"
"                           [--max-wall SEC] [--max-output BYTES]\n"
"                           [--max-disk MB] [--max-collect MB]\n"
"                           [--state DIR] [--json]\n"
"       airlock keys list [--all] [--state DIR] [--json]\n"
"       airlock keys revoke ID|NAME [--state DIR] [--json]\n"
"\n"
"API keys of airlock serve, in STATE/keys.db. Only a hash of a key is\n"
"kept: create prints the key once, alone on the last line of stdout (or\n"
"as \"key\" of a JSON object with --json).\n"
"\n"
"  --name NAME          1-64 of A-Z a-z 0-9 . _ - (unique among active keys)\n"
"  --scopes S           comma-separated: execute, audit:read, admin\n"
"                       (default: execute)\n"
"  --rate N/PERIOD      at most N requests per s, min, h or day (default:\n"
"                       no limit of the key's own)\n"
"  --max-concurrent N   executions at once\n"
"  --max-memory MB      ceiling of memory_mb a request may ask for\n"
"  --max-wall SEC       ceiling of the wall clock a request may ask for\n"
"  --max-output BYTES   ceiling of output_bytes (per stream) a request may\n"
"                       ask for\n"
"  --max-disk MB        ceiling of disk_mb a request may ask for\n"
"  --max-collect MB     collected files of one run, all together, at most\n"
"                       (more are skipped and named in files_note)\n"
"  --all                list: revoked keys too\n"
"  --state DIR          state directory (as for airlock run)\n"
"  --json               JSON output\n"
"\n"
"A request over a key's ceiling is refused with 400 limit_exceeds_key\n"
"(see airlock-serve(1)); a default above it comes down to it, and so do\n"
"the compile step's limits (C). Exit status: 0 ok, 1 no such key (revoke),\n"
"2 usage error, 8 the store cannot be used.\n",
              f);
}
/* clang-format on */

static json_t *key_json(const al_key_info *k) {
        char scopes[64];
        al_scopes_format(k->scopes, scopes, sizeof(scopes));
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", k->id, "name",
                              k->name, "scopes", scopes, "created_at",
                              k->created_at, "revoked_at",
                              k->revoked_at[0] ? json_string(k->revoked_at)
                                               : json_null());
        if (!o)
                return NULL;
        if (k->rate_count) {
                char rate[48];
                snprintf(rate, sizeof(rate), "%u/%s", k->rate_count,
                         k->rate_period_s == 1      ? "s"
                         : k->rate_period_s == 60   ? "min"
                         : k->rate_period_s == 3600 ? "h"
                                                    : "day");
                json_object_set_new(o, "rate", json_string(rate));
        } else
                json_object_set_new(o, "rate", json_null());
        json_object_set_new(o, "max_concurrent",
                            k->max_concurrent ? json_integer(k->max_concurrent)
                                              : json_null());
        json_object_set_new(o, "max_memory_mb",
                            k->max_memory_mb ? json_integer(k->max_memory_mb)
                                             : json_null());
        json_object_set_new(o, "max_wall_ms",
                            k->max_wall_ms ? json_integer(k->max_wall_ms)
                                           : json_null());
        json_object_set_new(o, "max_output_bytes",
                            k->max_output_bytes
                                    ? json_integer((json_int_t)k->max_output_bytes)
                                    : json_null());
        json_object_set_new(o, "max_disk_mb",
                            k->max_disk_mb ? json_integer(k->max_disk_mb)
                                           : json_null());
        json_object_set_new(o, "max_collect_bytes",
                            k->max_collect_bytes
                                    ? json_integer((json_int_t)k->max_collect_bytes)
                                    : json_null());
        return o;
}

static void print_json(json_t *o) {
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        puts(s ? s : "null");
        free(s);
        json_decref(o);
}

static int u32_flag(const char *flag, const char *v, unsigned max,
                    unsigned *out) {
        uint64_t n;
        if (al_parse_u64(v, &n) < 0 || n == 0 || n > max) {
                cli_error("%s wants a whole number from 1 to %u, got '%s'",
                          flag, max, v);
                return -1;
        }
        *out = (unsigned)n;
        return 0;
}

int cmd_keys(int argc, char **argv) {
        enum {
                OPT_NAME = 256,
                OPT_SCOPES,
                OPT_RATE,
                OPT_MAXCONC,
                OPT_MAXMEM,
                OPT_MAXWALL,
                OPT_MAXOUT,
                OPT_MAXDISK,
                OPT_MAXCOLLECT,
                OPT_ALL,
                OPT_STATE,
                OPT_JSON
        };
        static const struct option opts[] = {
                {"name", required_argument, NULL, OPT_NAME},
                {"scopes", required_argument, NULL, OPT_SCOPES},
                {"rate", required_argument, NULL, OPT_RATE},
                {"max-concurrent", required_argument, NULL, OPT_MAXCONC},
                {"max-memory", required_argument, NULL, OPT_MAXMEM},
                {"max-wall", required_argument, NULL, OPT_MAXWALL},
                {"max-output", required_argument, NULL, OPT_MAXOUT},
                {"max-disk", required_argument, NULL, OPT_MAXDISK},
                {"max-collect", required_argument, NULL, OPT_MAXCOLLECT},
                {"all", no_argument, NULL, OPT_ALL},
                {"state", required_argument, NULL, OPT_STATE},
                {"json", no_argument, NULL, OPT_JSON},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        al_key_info want = {.scopes = AL_SCOPE_EXECUTE};
        const char *state = NULL;
        bool json = false, all = false, named = false;
        al_error e = {0};
        unsigned wall_s = 0;
        int c;
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                help(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        const char *sub = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_NAME:
                        snprintf(want.name, sizeof(want.name), "%s", optarg);
                        named = strlen(optarg) < sizeof(want.name);
                        if (!named) {
                                cli_error("--name: at most 64 characters");
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_SCOPES:
                        if (al_scopes_parse(optarg, &want.scopes, &e) < 0) {
                                cli_error("--scopes: %s", e.msg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_RATE:
                        if (al_rate_parse(optarg, &want.rate_count,
                                          &want.rate_period_s, &e) < 0) {
                                cli_error("--rate: %s", e.msg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_MAXCONC:
                        if (u32_flag("--max-concurrent", optarg, 1024,
                                     &want.max_concurrent) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_MAXMEM:
                        if (u32_flag("--max-memory", optarg, 1u << 20,
                                     &want.max_memory_mb) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_MAXWALL:
                        if (u32_flag("--max-wall", optarg, 86400, &wall_s) < 0)
                                return EXIT_USAGE;
                        want.max_wall_ms = wall_s * 1000u;
                        break;
                case OPT_MAXOUT: {
                        unsigned v;
                        if (u32_flag("--max-output", optarg,
                                     (unsigned)al_limits_max.output_bytes,
                                     &v) < 0)
                                return EXIT_USAGE;
                        want.max_output_bytes = v;
                        break;
                }
                case OPT_MAXDISK:
                        if (u32_flag("--max-disk", optarg,
                                     (unsigned)al_limits_max.disk_mb,
                                     &want.max_disk_mb) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_MAXCOLLECT: {
                        unsigned v;
                        if (u32_flag("--max-collect", optarg, 64, &v) < 0)
                                return EXIT_USAGE;
                        want.max_collect_bytes = (uint64_t)v << 20;
                        break;
                }
                case OPT_ALL:
                        all = true;
                        break;
                case OPT_STATE:
                        state = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        help(stdout);
                        return EXIT_OK;
                default:
                        help(stderr);
                        return EXIT_USAGE;
                }
        }
        bool create = !strcmp(sub, "create"), list = !strcmp(sub, "list"),
             revoke = !strcmp(sub, "revoke");
        if (!create && !list && !revoke) {
                cli_error("keys: create, list or revoke, not '%s'", sub);
                return EXIT_USAGE;
        }
        if (create && !named) {
                cli_error("keys create: --name is required");
                return EXIT_USAGE;
        }
        if ((revoke && optind != argc - 1) || (!revoke && optind != argc)) {
                cli_error(revoke ? "keys revoke: one ID or NAME"
                                 : "keys %s: unexpected argument '%s'",
                          sub, optind < argc ? argv[optind] : "");
                return EXIT_USAGE;
        }
        al_keys *k = NULL;
        if (al_keys_open(state, &k, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        int rc = EXIT_OK;
        if (create) {
                char key[AL_KEY_SIZE];
                al_key_info got;
                if (al_keys_create(k, &want, key, &got, &e) < 0) {
                        cli_error("%s", e.msg);
                        rc = e.code == EIO ? EXIT_INTERNAL : EXIT_USAGE;
                } else if (json) {
                        json_t *o = key_json(&got);
                        json_object_set_new(o, "key", json_string(key));
                        print_json(o);
                } else {
                        char scopes[64];
                        al_scopes_format(got.scopes, scopes, sizeof(scopes));
                        fprintf(stderr,
                                "airlock: key %s (%s, scopes %s) created; "
                                "it is shown once, below, and not kept\n",
                                got.id, got.name, scopes);
                        printf("%s\n", key);
                }
                explicit_bzero(key, sizeof(key));
        } else if (list) {
                al_key_info *v = NULL;
                size_t n = 0;
                if (al_keys_list(k, !all, &v, &n, &e) < 0) {
                        cli_error("%s", e.msg);
                        rc = EXIT_INTERNAL;
                } else if (json) {
                        for (size_t i = 0; i < n; i++)
                                print_json(key_json(&v[i]));
                } else {
                        printf("%-13s %-20s %-25s %-10s %-24s %s\n", "ID",
                               "NAME", "SCOPES", "RATE", "CREATED (UTC)",
                               "REVOKED");
                        for (size_t i = 0; i < n; i++) {
                                json_t *o = key_json(&v[i]);
                                json_t *rate = json_object_get(o, "rate");
                                printf("%-13s %-20s %-25s %-10s %-24s %s\n",
                                       v[i].id, v[i].name,
                                       json_string_value(
                                               json_object_get(o, "scopes")),
                                       json_is_string(rate)
                                               ? json_string_value(rate)
                                               : "-",
                                       v[i].created_at,
                                       v[i].revoked_at[0] ? v[i].revoked_at
                                                          : "-");
                                json_decref(o);
                        }
                }
                free(v);
        } else {
                al_key_info got;
                if (al_keys_revoke(k, argv[optind], &got, &e) < 0) {
                        cli_error("%s", e.msg);
                        rc = e.code == ENOENT ? EXIT_RUN_ERROR : EXIT_INTERNAL;
                } else if (json)
                        print_json(key_json(&got));
                else
                        printf("revoked %s (%s); airlock serve stops taking "
                               "it within a second\n",
                               got.id, got.name);
        }
        al_keys_close(k);
        return rc;
}
