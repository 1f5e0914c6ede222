/* SPDX-License-Identifier: MIT */
/* airlock serve: flags and config file -> the HTTP service (serve-*.c). */
#include <errno.h>
#include <getopt.h> /* optind, no_argument */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlock-check.h"
#include "cli.h"
#include "serve.h"
#include "util.h"

/* clang-format off */
static void help(FILE *f) {
        fputs(
"Usage: airlock serve [--listen HOST:PORT] [--state DIR] [OPTIONS]\n"
"\n"
"The execution service: an HTTP/JSON API (airlock-serve(1)) with API keys\n"
"(airlock keys), a bounded worker pool and queue, and every request in the\n"
"audit log.\n"
"\n"
"  --listen HOST:PORT     address (default 127.0.0.1:8080; port 0 = any)\n"
"  --state DIR            state directory: audit log, keys (as airlock run)\n"
"  --config FILE          JSON object whose keys are these long options\n"
"                         (\"listen\", \"workers\", ...); flags win over it\n"
"  --workers N            executions at once (default: the number of CPUs)\n"
"  --queue N              executions waiting for a worker (default 64); a\n"
"                         full queue answers 503 with Retry-After\n"
"  --queue-timeout SEC    longest wait in the queue (default 30): then 503\n"
"  --max-body BYTES       request body cap (default 10485760): then 413\n"
"  --max-body-total BYTES bodies held at once, all connections together\n"
"                         (default 268435456, at least --max-body): then 503\n"
"  --max-per-ip N         connections from one address (default 64; 0 = no\n"
"                         cap); a new one past it cuts the address's idlest\n"
"  --idle-timeout SEC     close a connection silent this long (default 15)\n"
"  --body-timeout SEC     a request body must arrive within this (default 60)\n"
"  --header-timeout SEC   a request's headers must arrive within this of the\n"
"                         connection or the previous request (default 10)\n"
"  --max-output BYTES     ceiling of limits.output_bytes for every key\n"
"  --max-disk MB          ceiling of limits.disk_mb for every key\n"
"  --max-collect MB       collected files of one run at most (default 64)\n"
"  --max-inflight MB      memory that running executions may reserve for\n"
"                         their results and responses (default 2048): a run\n"
"                         that does not fit is refused, 503\n"
"                         response_budget_exhausted with Retry-After\n"
"  --allow-net LIST       hosts a request's network.allow may name (its\n"
"                         ceiling: a request narrows it, never widens it;\n"
"                         default none: no request gets network); --policy\n"
"                         FILE's network section and a key's own list\n"
"                         (keys create --allow-net) narrow it further\n"
"  --warm LANG[=MODULES]  keep sandboxes of LANG (python, node) ready, the\n"
"                         modules imported (e.g. python=numpy,pandas):\n"
"                         /v1/execute starts from one (\"start\": \"warm\");\n"
"                         each is used by one run and destroyed (repeatable)\n"
"  --warm-pool N          sandboxes ready per warm language (default 2)\n"
"  --warm-max-age SEC     a ready sandbox unused this long is replaced\n"
"                         (default 300)\n"
"  --max-sessions N       live sessions on the server at most (default 16)\n"
"  --max-sessions-per-key N   live sessions of one key at most (default 4)\n"
"  --max-session-memory MB    memory that live sessions may ask together\n"
"                         (default 8192): then 503 sessions_full\n"
"  --max-session-lifetime SEC the longest a session may live (default 3600)\n"
"  --grace SEC            on SIGTERM, in-flight runs get this long before\n"
"                         they are killed (default 10)\n"
"  --policy FILE          static-validation policy (default: built-in)\n"
"  --policy-mode MODE     default for requests: off, record, warn, enforce\n"
"                         (default record)\n"
"  --tls-cert FILE, --tls-key FILE   serve HTTPS (PEM)\n"
"  --languages FILE       extra language profiles\n"
"  --metrics-auth         GET /metrics wants a key with audit:read or admin\n"
"                         (default: open, like /healthz; counts only)\n"
"  --read-rate RATE       reads of the audit log per key (N/s, N/min, N/h,\n"
"                         N/day; default 10/s; off): then 429 rate_limited\n"
"  -h, --help             this help\n"
"\n"
"A request is decided on its headers (key, scope, size) before its body\n"
"is read; a refused one never has its body kept.\n"
"\n"
"SIGTERM/SIGINT: stop accepting, finish or kill the runs in flight, end\n"
"every session (audited: shutdown), exit 0. Sessions are not kept across\n"
"a restart.\n"
"SIGHUP: re-read the keys (also re-read every second; a key made since is\n"
"looked up at once) and the --policy file.\n",
              f);
}
/* clang-format on */

/* The options, for set_opt (a flag or a config key). */
enum {
        OPT_LISTEN = 256,
        OPT_STATE,
        OPT_CONFIG,
        OPT_WORKERS,
        OPT_QUEUE,
        OPT_QTIMEOUT,
        OPT_MAXBODY,
        OPT_GRACE,
        OPT_POLICY,
        OPT_POLICY_MODE,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_LANGUAGES,
        OPT_METRICS_AUTH,
        OPT_READ_RATE,
        OPT_MAXBODY_TOTAL,
        OPT_MAX_PER_IP,
        OPT_IDLE_TIMEOUT,
        OPT_BODY_TIMEOUT,
        OPT_HEADER_TIMEOUT,
        OPT_MAXOUT,
        OPT_MAXDISK,
        OPT_MAXCOLLECT,
        OPT_MAXINFLIGHT,
        OPT_ALLOW_NET,
        OPT_WARM,
        OPT_WARM_POOL,
        OPT_WARM_AGE,
        OPT_MAX_SESSIONS,
        OPT_MAX_SESSIONS_KEY,
        OPT_MAX_SESSION_MEM,
        OPT_MAX_SESSION_LIFE,
};

static int num(const char *name, const char *v, uint64_t lo, uint64_t hi,
               uint64_t *out) {
        if (al_parse_u64(v, out) < 0 || *out < lo || *out > hi) {
                cli_error("%s wants a whole number from %llu to %llu, got "
                          "'%s'",
                          name, (unsigned long long)lo, (unsigned long long)hi,
                          v);
                return -1;
        }
        return 0;
}

static int str(const char *name, const char *v, char *out, size_t size) {
        if (strlen(v) >= size) {
                cli_error("%s: too long", name);
                return -1;
        }
        snprintf(out, size, "%s", v);
        return 0;
}

/* One option by its long name (a flag or a config key). */
static int set_opt(struct srv_config *c, int id, const char *name,
                   const char *v) {
        uint64_t n;
        switch (id) {
        case OPT_LISTEN:
                return str(name, v, c->listen, sizeof(c->listen));
        case OPT_STATE:
                return str(name, v, c->state, sizeof(c->state));
        case OPT_WORKERS:
                if (num(name, v, 1, 256, &n) < 0)
                        return -1;
                c->workers = (unsigned)n;
                return 0;
        case OPT_QUEUE:
                if (num(name, v, 1, 65536, &n) < 0)
                        return -1;
                c->queue = (unsigned)n;
                return 0;
        case OPT_QTIMEOUT:
                if (num(name, v, 1, 3600, &n) < 0)
                        return -1;
                c->queue_timeout_s = (unsigned)n;
                return 0;
        case OPT_MAXBODY:
                if (num(name, v, 1024, 1ull << 30, &n) < 0)
                        return -1;
                c->max_body = (size_t)n;
                return 0;
        case OPT_MAXBODY_TOTAL:
                if (num(name, v, 1024, 1ull << 40, &n) < 0)
                        return -1;
                c->max_body_total = (size_t)n;
                return 0;
        case OPT_MAX_PER_IP:
                if (num(name, v, 0, 65536, &n) < 0)
                        return -1;
                c->max_per_ip = (unsigned)n;
                return 0;
        case OPT_IDLE_TIMEOUT:
                if (num(name, v, 1, 3600, &n) < 0)
                        return -1;
                c->idle_timeout_s = (unsigned)n;
                return 0;
        case OPT_BODY_TIMEOUT:
                if (num(name, v, 1, 3600, &n) < 0)
                        return -1;
                c->body_timeout_s = (unsigned)n;
                return 0;
        case OPT_HEADER_TIMEOUT:
                if (num(name, v, 1, 3600, &n) < 0)
                        return -1;
                c->header_timeout_s = (unsigned)n;
                return 0;
        case OPT_MAXOUT:
                return num(name, v, 1, al_limits_max.output_bytes,
                           &c->max_output_bytes);
        case OPT_MAXDISK:
                return num(name, v, 1, al_limits_max.disk_mb, &c->max_disk_mb);
        case OPT_MAXCOLLECT:
                if (num(name, v, 1, 64, &n) < 0)
                        return -1;
                c->max_collect_bytes = n << 20;
                return 0;
        case OPT_MAXINFLIGHT:
                if (num(name, v, 16, 1u << 20, &n) < 0)
                        return -1;
                c->max_inflight_bytes = n << 20;
                return 0;
        case OPT_ALLOW_NET:
                return str(name, v, c->allow_net, sizeof(c->allow_net));
        case OPT_WARM:
                if (c->nwarm >= SRV_MAX_WARM) {
                        cli_error("%s: at most %d", name, SRV_MAX_WARM);
                        return -1;
                }
                return str(name, v, c->warm[c->nwarm++], sizeof(c->warm[0]));
        case OPT_WARM_POOL:
                if (num(name, v, 1, 64, &n) < 0)
                        return -1;
                c->warm_pool = (unsigned)n;
                return 0;
        case OPT_WARM_AGE:
                if (num(name, v, 1, SRV_WARM_MAX_AGE_S, &n) < 0)
                        return -1;
                c->warm_max_age_s = (unsigned)n;
                return 0;
        case OPT_MAX_SESSIONS:
                if (num(name, v, 0, 65536, &n) < 0)
                        return -1;
                c->max_sessions = (unsigned)n;
                return 0;
        case OPT_MAX_SESSIONS_KEY:
                if (num(name, v, 0, 65536, &n) < 0)
                        return -1;
                c->max_sessions_per_key = (unsigned)n;
                return 0;
        case OPT_MAX_SESSION_MEM:
                return num(name, v, 0, 1u << 24, &c->max_session_memory_mb);
        case OPT_MAX_SESSION_LIFE:
                return num(name, v, 1, 24 * 3600, &c->max_session_lifetime_s);
        case OPT_GRACE:
                if (num(name, v, 0, 3600, &n) < 0)
                        return -1;
                c->grace_s = (unsigned)n;
                return 0;
        case OPT_POLICY:
                return str(name, v, c->policy, sizeof(c->policy));
        case OPT_POLICY_MODE:
                if (!al_policy_mode_ok(v)) {
                        cli_error("%s: off, record, warn or enforce, not "
                                  "'%s'",
                                  name, v);
                        return -1;
                }
                return str(name, v, c->policy_mode, sizeof(c->policy_mode));
        case OPT_TLS_CERT:
                return str(name, v, c->tls_cert, sizeof(c->tls_cert));
        case OPT_TLS_KEY:
                return str(name, v, c->tls_key, sizeof(c->tls_key));
        case OPT_LANGUAGES:
                return str(name, v, c->languages, sizeof(c->languages));
        case OPT_METRICS_AUTH:
                if (!v || !strcmp(v, "true"))
                        c->metrics_auth = true;
                else if (!strcmp(v, "false"))
                        c->metrics_auth = false;
                else {
                        cli_error("%s: true or false, not '%s'", name, v);
                        return -1;
                }
                return 0;
        case OPT_READ_RATE: {
                al_error e = {0};
                if (!strcmp(v, "off")) {
                        c->read_rate_count = c->read_rate_period_s = 0;
                        return 0;
                }
                if (al_rate_parse(v, &c->read_rate_count,
                                  &c->read_rate_period_s, &e) < 0) {
                        cli_error("%s: %s (or off)", name, e.msg);
                        return -1;
                }
                return 0;
        }
        }
        return -1;
}

/* A flag: set_opt with its name as the messages say it. */
static int set_flag(const struct cli_opt *o, const char *arg) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", o->name);
        return set_opt(o->ctx, o->id, flag, arg) < 0 ? EXIT_USAGE : 0;
}

#define SERVE_OPT(name, id) CLI_OPT_CALL(name, set_flag, &cfg, id, NULL)

/* The config file: a JSON object of long option names (no "config"). */
static int load_config(struct srv_config *c, const char *path,
                       const struct cli_opt *opts) {
        json_error_t je;
        json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!o || !json_is_object(o)) {
                cli_error("--config %s: %s", path,
                          o ? "not a JSON object" : je.text);
                json_decref(o);
                return -1;
        }
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                const struct cli_opt *op = opts;
                while (op->name &&
                       (strcmp(op->name, k) || op->kind == CLI_SKIP))
                        op++;
                if (!op->name) {
                        cli_error("--config %s: unknown key '%s' (the keys "
                                  "are serve's long options)",
                                  path, k);
                        json_decref(o);
                        return -1;
                }
                char buf[64], name[80];
                const char *s = json_string_value(v);
                snprintf(name, sizeof(name), "%s: %s", path, k);
                if (json_is_integer(v)) {
                        snprintf(buf, sizeof(buf), "%lld",
                                 (long long)json_integer_value(v));
                        s = buf;
                } else if (json_is_boolean(v) && op->has_arg == no_argument)
                        s = json_is_true(v) ? "true" : "false";
                else if (s && op->has_arg == no_argument)
                        s = NULL; /* a switch wants true or false */
                if (!s) {
                        cli_error("%s: %s", name,
                                  op->has_arg == no_argument
                                          ? "true or false"
                                          : "a string or a number");
                        json_decref(o);
                        return -1;
                }
                if (set_opt(c, op->id, name, s) < 0) {
                        json_decref(o);
                        return -1;
                }
        }
        json_decref(o);
        return 0;
}

int cmd_serve(int argc, char **argv) {
        struct srv_config cfg = {
                .listen = "127.0.0.1:8080",
                .queue = 64,
                .queue_timeout_s = 30,
                .max_body = 10u << 20,
                .max_body_total = 256u << 20,
                .max_per_ip = 64,
                .idle_timeout_s = 15,
                .body_timeout_s = 60,
                .header_timeout_s = 10,
                .max_inflight_bytes = 2048ull << 20,
                .max_sessions = 16,
                .max_sessions_per_key = 4,
                .max_session_memory_mb = 8192,
                .max_session_lifetime_s = 3600,
                .grace_s = 10,
                .policy_mode = "record",
                .read_rate_count = 10,
                .read_rate_period_s = 1,
        };
        /* the order of getopt's list; --help does not follow it */
        const struct cli_opt opts[] = {
                SERVE_OPT("listen", OPT_LISTEN),
                SERVE_OPT("state", OPT_STATE),
                CLI_OPT_SKIP("config", required_argument), /* read first */
                SERVE_OPT("workers", OPT_WORKERS),
                SERVE_OPT("queue", OPT_QUEUE),
                SERVE_OPT("queue-timeout", OPT_QTIMEOUT),
                SERVE_OPT("max-body", OPT_MAXBODY),
                SERVE_OPT("grace", OPT_GRACE),
                SERVE_OPT("policy", OPT_POLICY),
                SERVE_OPT("policy-mode", OPT_POLICY_MODE),
                SERVE_OPT("tls-cert", OPT_TLS_CERT),
                SERVE_OPT("tls-key", OPT_TLS_KEY),
                SERVE_OPT("languages", OPT_LANGUAGES),
                {.name = "metrics-auth",
                 .has_arg = no_argument,
                 .kind = CLI_CALL,
                 .set = set_flag,
                 .ctx = &cfg,
                 .id = OPT_METRICS_AUTH},
                SERVE_OPT("read-rate", OPT_READ_RATE),
                SERVE_OPT("max-body-total", OPT_MAXBODY_TOTAL),
                SERVE_OPT("max-per-ip", OPT_MAX_PER_IP),
                SERVE_OPT("idle-timeout", OPT_IDLE_TIMEOUT),
                SERVE_OPT("body-timeout", OPT_BODY_TIMEOUT),
                SERVE_OPT("header-timeout", OPT_HEADER_TIMEOUT),
                SERVE_OPT("max-output", OPT_MAXOUT),
                SERVE_OPT("max-disk", OPT_MAXDISK),
                SERVE_OPT("max-collect", OPT_MAXCOLLECT),
                SERVE_OPT("max-inflight", OPT_MAXINFLIGHT),
                SERVE_OPT("allow-net", OPT_ALLOW_NET),
                SERVE_OPT("warm", OPT_WARM),
                SERVE_OPT("warm-pool", OPT_WARM_POOL),
                SERVE_OPT("warm-max-age", OPT_WARM_AGE),
                SERVE_OPT("max-sessions", OPT_MAX_SESSIONS),
                SERVE_OPT("max-sessions-per-key", OPT_MAX_SESSIONS_KEY),
                SERVE_OPT("max-session-memory", OPT_MAX_SESSION_MEM),
                SERVE_OPT("max-session-lifetime", OPT_MAX_SESSION_LIFE),
                CLI_END};
        const struct cli_cmd cmd = {.opts = opts, .help = help};
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.workers = cpus > 0 && cpus <= 256 ? (unsigned)cpus : 2;
        /* the config file first, so that flags override it */
        for (int i = 1; i < argc; i++) {
                const char *v = NULL;
                if (!strcmp(argv[i], "--config") && i + 1 < argc)
                        v = argv[i + 1];
                else if (!strncmp(argv[i], "--config=", 9))
                        v = argv[i] + 9;
                if (v && load_config(&cfg, v, opts) < 0)
                        return EXIT_USAGE;
        }
        int c = cli_parse(&cmd, argc, argv, 1);
        if (c >= 0)
                return c;
        if (optind < argc) {
                cli_error("serve: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        /* one body of --max-body always fits */
        if (cfg.max_body_total < cfg.max_body)
                cfg.max_body_total = cfg.max_body;
        if (!cfg.tls_cert[0] != !cfg.tls_key[0]) {
                cli_error("--tls-cert and --tls-key go together");
                return EXIT_USAGE;
        }
        int rc = cli_languages_load(cfg.languages);
        if (rc != EXIT_OK)
                return rc;
        al_error e = {0};
        if (srv_http_run(&cfg, &e) < 0) {
                cli_error("%s", e.msg);
                return e.code == EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
        }
        return EXIT_OK;
}
