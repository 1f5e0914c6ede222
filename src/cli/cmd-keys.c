/* SPDX-License-Identifier: MIT */
/* airlock keys create|list|revoke: the API keys of airlock serve. */
#include <errno.h>
#include <getopt.h> /* optind */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-keys.h"
#include "cli.h"
#include "json.h"
#include "util.h"

/* --help: the usage, the table's lines (cmd_keys), the notes. */
/* clang-format off */
static const char usage[] =
"Usage: airlock keys create --name NAME [--scopes S] [--rate N/PERIOD]\n"
"                           [--max-concurrent N] [--max-memory MB]\n"
"                           [--max-wall SEC] [--max-output BYTES]\n"
"                           [--max-disk MB] [--max-collect MB]\n"
"                           [--allow-net LIST] [--state DIR] [--json]\n"
"       airlock keys list [--all] [--state DIR] [--json]\n"
"       airlock keys revoke ID|NAME [--state DIR] [--json]\n"
"\n"
"API keys of airlock serve, in STATE/keys.db. Only a hash of a key is\n"
"kept: create prints the key once, alone on the last line of stdout (or\n"
"as \"key\" of a JSON object with --json).\n"
"\n";
static const char notes[] =
"\n"
"A request over a key's ceiling is refused with 400 limit_exceeds_key\n"
"(see airlock-serve(1)); a default above it comes down to it, and so do\n"
"the compile step's limits (C). A request's network.allow must be within\n"
"the key's --allow-net and the server's (serve --allow-net, and a --policy\n"
"file's network.allow), else 400 network_not_allowed naming the one that\n"
"refused it; a key without --allow-net has the server's ceiling.\n"
"Exit status: 0 ok, 1 no such key (revoke),\n"
"2 usage error, 8 the store cannot be used.\n";
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
        json_t *net = json_null();
        if (k->allow_net[0]) {
                net = json_array();
                for (const char *p = k->allow_net; *p;) {
                        size_t n = strcspn(p, ",");
                        json_array_append_new(net, json_stringn(p, n));
                        p += n + (p[n] == ',');
                }
        }
        json_object_set_new(o, "allow_net", net);
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

/* What the flags of airlock keys say. */
struct keys_args {
        al_key_info want;
        const char *state;
        bool json, all, named;
};

static int set_name(const struct cli_opt *o, const char *arg) {
        struct keys_args *x = o->ctx;
        snprintf(x->want.name, sizeof(x->want.name), "%s", arg);
        x->named = strlen(arg) < sizeof(x->want.name);
        if (!x->named) {
                cli_error("--name: at most 64 characters");
                return EXIT_USAGE;
        }
        return 0;
}

static int set_scopes(const struct cli_opt *o, const char *arg) {
        struct keys_args *x = o->ctx;
        al_error e = {0};
        if (al_scopes_parse(arg, &x->want.scopes, &e) < 0) {
                cli_error("--scopes: %s", e.msg);
                return EXIT_USAGE;
        }
        return 0;
}

static int set_rate(const struct cli_opt *o, const char *arg) {
        struct keys_args *x = o->ctx;
        al_error e = {0};
        if (al_rate_parse(arg, &x->want.rate_count, &x->want.rate_period_s,
                          &e) < 0) {
                cli_error("--rate: %s", e.msg);
                return EXIT_USAGE;
        }
        return 0;
}

/* The ceilings (--max-*), by o->id. */
enum { MAX_CONC, MAX_MEM, MAX_WALL, MAX_OUT, MAX_DISK, MAX_COLLECT };

static int set_max(const struct cli_opt *o, const char *arg) {
        al_key_info *w = &((struct keys_args *)o->ctx)->want;
        static const unsigned most[] = {
                [MAX_CONC] = 1024, [MAX_MEM] = 1u << 20, [MAX_WALL] = 86400,
                [MAX_COLLECT] = 64};
        unsigned max = o->id == MAX_OUT    ? (unsigned)al_limits_max.output_bytes
                       : o->id == MAX_DISK ? (unsigned)al_limits_max.disk_mb
                                           : most[o->id];
        char flag[32];
        unsigned v;
        snprintf(flag, sizeof(flag), "--%s", o->name);
        if (u32_flag(flag, arg, max, &v) < 0)
                return EXIT_USAGE;
        switch (o->id) {
        case MAX_CONC:
                w->max_concurrent = v;
                break;
        case MAX_MEM:
                w->max_memory_mb = v;
                break;
        case MAX_WALL:
                w->max_wall_ms = v * 1000u;
                break;
        case MAX_OUT:
                w->max_output_bytes = v;
                break;
        case MAX_DISK:
                w->max_disk_mb = v;
                break;
        case MAX_COLLECT:
                w->max_collect_bytes = (uint64_t)v << 20;
                break;
        }
        return 0;
}

/* --allow-net a,b --allow-net c: one list (checked by al_keys_create). */
static int set_allow_net(const struct cli_opt *o, const char *arg) {
        al_key_info *w = &((struct keys_args *)o->ctx)->want;
        size_t have = strlen(w->allow_net);
        if (!*arg) {
                cli_error("--allow-net: an empty list");
                return EXIT_USAGE;
        }
        if (have + 1 + strlen(arg) >= sizeof(w->allow_net)) {
                cli_error("--allow-net: at most %zu bytes in all",
                          sizeof(w->allow_net) - 1);
                return EXIT_USAGE;
        }
        snprintf(w->allow_net + have, sizeof(w->allow_net) - have, "%s%s",
                 have ? "," : "", arg);
        return 0;
}

static int keys_create(al_keys *k, const struct keys_args *x) {
        char key[AL_KEY_SIZE];
        al_key_info got;
        al_error e = {0};
        int rc = EXIT_OK;
        if (al_keys_create(k, &x->want, key, &got, &e) < 0) {
                cli_error("%s", e.msg);
                rc = e.code == EIO ? EXIT_INTERNAL : EXIT_USAGE;
        } else if (x->json) {
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
        return rc;
}

static int keys_list(al_keys *k, const struct keys_args *x) {
        al_key_info *v = NULL;
        size_t n = 0;
        al_error e = {0};
        int rc = EXIT_OK;
        if (al_keys_list(k, !x->all, &v, &n, &e) < 0) {
                cli_error("%s", e.msg);
                rc = EXIT_INTERNAL;
        } else if (x->json) {
                for (size_t i = 0; i < n; i++)
                        print_json(key_json(&v[i]));
        } else {
                printf("%-13s %-20s %-25s %-10s %-24s %s\n", "ID", "NAME",
                       "SCOPES", "RATE", "CREATED (UTC)", "REVOKED");
                for (size_t i = 0; i < n; i++) {
                        json_t *o = key_json(&v[i]);
                        json_t *rate = json_object_get(o, "rate");
                        printf("%-13s %-20s %-25s %-10s %-24s %s\n", v[i].id,
                               v[i].name,
                               json_string_value(json_object_get(o, "scopes")),
                               json_is_string(rate) ? json_string_value(rate)
                                                    : "-",
                               v[i].created_at,
                               v[i].revoked_at[0] ? v[i].revoked_at : "-");
                        json_decref(o);
                }
        }
        free(v);
        return rc;
}

static int keys_revoke(al_keys *k, const struct keys_args *x,
                       const char *which) {
        al_key_info got;
        al_error e = {0};
        if (al_keys_revoke(k, which, &got, &e) < 0) {
                cli_error("%s", e.msg);
                return e.code == ENOENT ? EXIT_RUN_ERROR : EXIT_INTERNAL;
        }
        if (x->json)
                print_json(key_json(&got));
        else
                printf("revoked %s (%s); airlock serve stops taking "
                       "it within a second\n",
                       got.id, got.name);
        return EXIT_OK;
}

int cmd_keys(int argc, char **argv) {
        struct keys_args x = {.want = {.scopes = AL_SCOPE_EXECUTE}};
        /* clang-format off */
        const struct cli_opt opts[] = {
                CLI_OPT_CALL("name", set_name, &x, 0,
"  --name NAME          1-64 of A-Z a-z 0-9 . _ - (unique among active keys)\n"),
                CLI_OPT_CALL("scopes", set_scopes, &x, 0,
"  --scopes S           comma-separated: execute, audit:read, admin\n"
"                       (default: execute)\n"),
                CLI_OPT_CALL("rate", set_rate, &x, 0,
"  --rate N/PERIOD      at most N requests per s, min, h or day (default:\n"
"                       no limit of the key's own)\n"),
                CLI_OPT_CALL("max-concurrent", set_max, &x, MAX_CONC,
"  --max-concurrent N   executions at once\n"),
                CLI_OPT_CALL("max-memory", set_max, &x, MAX_MEM,
"  --max-memory MB      ceiling of memory_mb a request may ask for\n"),
                CLI_OPT_CALL("max-wall", set_max, &x, MAX_WALL,
"  --max-wall SEC       ceiling of the wall clock a request may ask for\n"),
                CLI_OPT_CALL("max-output", set_max, &x, MAX_OUT,
"  --max-output BYTES   ceiling of output_bytes (per stream) a request may\n"
"                       ask for\n"),
                CLI_OPT_CALL("max-disk", set_max, &x, MAX_DISK,
"  --max-disk MB        ceiling of disk_mb a request may ask for\n"),
                CLI_OPT_CALL("max-collect", set_max, &x, MAX_COLLECT,
"  --max-collect MB     collected files of one run, all together, at most\n"
"                       (more are skipped and named in files_note)\n"),
                CLI_OPT_CALL("allow-net", set_allow_net, &x, 0,
"  --allow-net LIST     hosts (host[:port], *.suffix[:port], IP literals;\n"
"                       comma-separated) a request's network.allow may name,\n"
"                       within the server's --allow-net (default: the\n"
"                       server's list)\n"),
                CLI_OPT_FLAG("all", &x.all,
"  --all                list: revoked keys too\n"),
                CLI_OPT_STRING("state", &x.state,
"  --state DIR          state directory (as for airlock run)\n"),
                CLI_OPT_FLAG("json", &x.json,
"  --json               JSON output\n"),
                CLI_END};
        /* clang-format on */
        const struct cli_cmd cmd = {opts, usage, notes, NULL};
        al_error e = {0};
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                cli_help(&cmd, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        const char *sub = argv[1];
        int c = cli_parse(&cmd, argc, argv, 2);
        if (c >= 0)
                return c;
        bool create = !strcmp(sub, "create"), list = !strcmp(sub, "list"),
             revoke = !strcmp(sub, "revoke");
        if (!create && !list && !revoke) {
                cli_error("keys: create, list or revoke, not '%s'", sub);
                return EXIT_USAGE;
        }
        if (create && !x.named) {
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
        if (al_keys_open(x.state, &k, &e) < 0) {
                cli_error("%s", e.msg);
                return EXIT_INTERNAL;
        }
        int rc = create ? keys_create(k, &x)
                 : list ? keys_list(k, &x)
                        : keys_revoke(k, &x, argv[optind]);
        al_keys_close(k);
        return rc;
}
