/* SPDX-License-Identifier: MIT */
/* A request's JSON into a spec: the bounds on its bytes and its tree,
 * each field group checked and set, the key's and server's ceilings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "airlock.h"
#include "json.h"
#include "egress.h"
#include "macro.h"
#include "service-internal.h"
#include "spec.h"

#define MAX_FILES 256
#define MAX_ARGS 1024
#define MAX_ENV 256
#define MAX_COLLECT 64

/* The bounds of json_bounded (depth MAX_DEPTH, MAX_VALUES values), on the
 * bytes: one pass, no allocation. For well-formed JSON it counts exactly
 * what json_bounded counts (a value is the root, a comma's next element,
 * or the first element of a container); for malformed text the parser
 * refuses it anyway. Object keys are not values, as in json_bounded. */
bool srv_api_json_within_bounds(const char *text, size_t len) {
        size_t values = 1, level = 0;
        bool first = false; /* just after an opener: its first element? */
        for (size_t i = 0; i < len; i++) {
                char c = text[i];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                        continue;
                if (first && c != ']' && c != '}')
                        values++;
                first = false;
                if (c != ',' && c != ':' && c != ']' && c != '}' &&
                    level > MAX_DEPTH)
                        return false; /* a value (or key) deeper than allowed */
                switch (c) {
                case '[':
                case '{':
                        level++;
                        first = true;
                        break;
                case ']':
                case '}':
                        if (level)
                                level--;
                        break;
                case ',':
                        values++;
                        break;
                case '"':
                        for (i++; i < len && text[i] != '"'; i++)
                                if (text[i] == '\\')
                                        i++;
                        break;
                }
                if (values > MAX_VALUES)
                        return false;
        }
        return true;
}

/* Depth and value count of the whole body, before any field is read. */
bool srv_api_json_bounded(json_t *j, int depth, size_t *count) {
        if (depth > MAX_DEPTH || ++*count > MAX_VALUES)
                return false;
        if (json_is_object(j)) {
                const char *k;
                json_t *v;
                json_object_foreach(
                        j, k, v) if (!srv_api_json_bounded(v, depth + 1,
                                                           count)) return false;
        } else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(
                        j, i, v) if (!srv_api_json_bounded(v, depth + 1,
                                                           count)) return false;
        }
        return true;
}

/* Every key of o is one of allowed: else 400 unknown_field at path. */
static int only_fields(json_t *o, const char *const *allowed, const char *path,
                       struct srv_response *rs) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                bool ok = false;
                for (size_t i = 0; allowed[i] && !ok; i++)
                        ok = !strcmp(k, allowed[i]);
                if (!ok) {
                        char f[256];
                        snprintf(f, sizeof(f), "%s%s%.128s", path,
                                 *path ? "." : "", k);
                        srv_api_error(rs, 400, "unknown_field", f,
                                      "unknown field '%s'", f);
                        return -1;
                }
        }
        return 0;
}

static const char *type_name(json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

/* A string field: NULL when absent; -1 (and 400) when of the wrong type. */
static int get_str(json_t *o, const char *key, const char *path,
                   const char **out, size_t *len, struct srv_response *rs) {
        json_t *v = json_object_get(o, key);
        *out = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v)) {
                srv_api_error(rs, 400, "invalid_type", path,
                              "%s must be a string, not %s", path,
                              type_name(v));
                return -1;
        }
        *out = json_string_value(v);
        if (len)
                *len = json_string_length(v);
        return 0;
}

/* base64 (standard, padding optional) into a malloc'ed buffer. */
static int b64_decode(const char *s, size_t len, unsigned char **out,
                      size_t *outlen) {
        size_t cap = len / 4 * 3 + 3;
        unsigned char *b = malloc(cap + 1);
        if (!b)
                return -ENOMEM;
        if (sodium_base642bin(b, cap, s, len, " \n\r", outlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 &&
            sodium_base642bin(b, cap, s, len, " \n\r", outlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0) {
                free(b);
                return -EINVAL;
        }
        *out = b;
        return 0;
}

/* content or content_base64 of obj into data (malloc'ed). */
static int get_bytes(json_t *o, const char *key, const char *key64,
                     const char *path, unsigned char **data, size_t *len,
                     bool *present, struct srv_response *rs) {
        const char *s = NULL, *s64 = NULL;
        size_t n = 0, n64 = 0;
        char p[256], p64[256];
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
        snprintf(p64, sizeof(p64), "%s%s%s", path, *path ? "." : "", key64);
        *data = NULL;
        *len = 0;
        *present = false;
        if (get_str(o, key, p, &s, &n, rs) < 0 ||
            get_str(o, key64, p64, &s64, &n64, rs) < 0)
                return -1;
        if (s && s64) {
                srv_api_error(rs, 400, "invalid_request", p64,
                              "give %s or %s, not both", p, p64);
                return -1;
        }
        if (s64) {
                int r = b64_decode(s64, n64, data, len);
                if (r < 0) {
                        srv_api_error(rs, r == -ENOMEM ? 500 : 400,
                                      r == -ENOMEM ? "internal_error"
                                                   : "invalid_base64",
                                      p64, "%s is not valid base64", p64);
                        return -1;
                }
        } else if (s) {
                if (!(*data = malloc(n + 1))) {
                        srv_api_error(rs, 500, "internal_error", NULL,
                                      "out of memory");
                        return -1;
                }
                memcpy(*data, s, n);
                *len = n;
        }
        *present = s || s64;
        return 0;
}

static const char *const TOP_FIELDS[] = {
        "language",    "code",    "code_base64", "stdin",    "stdin_base64",
        "args",        "env",     "files",       "collect",  "limits",
        "policy_mode", "user_id", "agent_id",    "metadata", "stream",
        "start",       "network", NULL};
static const char *const FILE_FIELDS[] = {"path", "content", "content_base64",
                                          "executable", NULL};
static const char *const LIMIT_FIELDS[] = {
        "wall_ms",       "cpu_ms",       "memory_mb",   "pids",
        "disk_mb",       "output_bytes", "open_files",  "net_connections",
        "net_bytes_out", "net_bytes_in", "net_idle_ms", NULL};

static void language_list(char *out, size_t size) {
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; i < al_languages_count(); i++) {
                int k = snprintf(out + o, size - o, "%s%s", o ? ", " : "",
                                 al_language_name(i));
                if (k < 0 || (size_t)k >= size - o)
                        break;
                o += (size_t)k;
        }
}

/* user_id, agent_id (for the audit log's who) and metadata. */
static int spec_who(json_t *req, al_audit_who *who, struct srv_response *rs) {
        if (get_str(req, "user_id", "user_id", &who->user_id, NULL, rs) < 0 ||
            get_str(req, "agent_id", "agent_id", &who->agent_id, NULL, rs) < 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                const char *id = i ? who->agent_id : who->user_id;
                if (id && (strlen(id) == 0 || strlen(id) > 128)) {
                        srv_api_error(rs, 400, "invalid_value",
                                      i ? "agent_id" : "user_id",
                                      "%s is 1 to 128 characters",
                                      i ? "agent_id" : "user_id");
                        return -1;
                }
        }
        json_t *meta = json_object_get(req, "metadata");
        if (meta && !json_is_object(meta) && !json_is_null(meta)) {
                srv_api_error(rs, 400, "invalid_type", "metadata",
                              "metadata must be an object, not %s",
                              type_name(meta));
                return -1;
        }
        return 0;
}

/* language. */
static int spec_language(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        const char *lang;
        if (get_str(req, "language", "language", &lang, NULL, rs) < 0)
                return -1;
        if (!lang) {
                srv_api_error(rs, 400, "missing_field", "language",
                              "language is required");
                return -1;
        }
        if (al_spec_set_language(s, lang, &e) < 0) {
                char langs[256];
                language_list(langs, sizeof(langs));
                srv_api_error(rs, 400, "unknown_language", "language",
                              "unknown language '%.64s'; valid: %s", lang,
                              langs);
                return -1;
        }
        return 0;
}

/* language, code and stdin. */
static int spec_program(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        if (spec_language(req, s, rs) < 0)
                return -1;
        unsigned char *data = NULL;
        size_t len = 0;
        bool present;
        if (get_bytes(req, "code", "code_base64", "", &data, &len, &present,
                      rs) < 0)
                return -1;
        if (!present) {
                srv_api_error(rs, 400, "missing_field", "code",
                              "code (or code_base64) is required");
                return -1;
        }
        int r = al_spec_set_code(s, data, len, &e);
        free(data);
        if (r < 0) {
                srv_api_error(rs, 400, "invalid_code", "code", "%s", e.msg);
                return -1;
        }
        if (get_bytes(req, "stdin", "stdin_base64", "", &data, &len, &present,
                      rs) < 0)
                return -1;
        if (present) {
                r = al_spec_set_stdin(s, data, len, &e);
                free(data);
                if (r < 0) {
                        srv_api_error(rs, 400, "invalid_stdin", "stdin", "%s",
                                      e.msg);
                        return -1;
                }
        }
        return 0;
}

/* args: strings, at most MAX_ARGS. */
static int spec_args(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        json_t *a = json_object_get(req, "args"), *x;
        size_t i;
        if (a && !json_is_array(a)) {
                srv_api_error(rs, 400, "invalid_type", "args",
                              "args must be an array of strings, not %s",
                              type_name(a));
                return -1;
        }
        if (json_array_size(a) > MAX_ARGS) {
                srv_api_error(rs, 400, "too_many", "args", "at most %d args",
                              MAX_ARGS);
                return -1;
        }
        json_array_foreach(a, i, x) {
                char p[32];
                snprintf(p, sizeof(p), "args[%zu]", i);
                if (!json_is_string(x)) {
                        srv_api_error(rs, 400, "invalid_type", p,
                                      "%s must be a string, not %s", p,
                                      type_name(x));
                        return -1;
                }
                if (al_spec_add_arg(s, json_string_value(x), &e) < 0) {
                        srv_api_error(rs, 400, "invalid_value", p, "%s: %s", p,
                                      e.msg);
                        return -1;
                }
        }
        return 0;
}

/* env: an object of strings, at most MAX_ENV. */
static int spec_env(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        json_t *x;
        json_t *env = json_object_get(req, "env");
        if (env && !json_is_object(env)) {
                srv_api_error(rs, 400, "invalid_type", "env",
                              "env must be an object of strings, not %s",
                              type_name(env));
                return -1;
        }
        if (json_object_size(env) > MAX_ENV) {
                srv_api_error(rs, 400, "too_many", "env",
                              "at most %d env entries", MAX_ENV);
                return -1;
        }
        const char *ek;
        json_object_foreach(env, ek, x) {
                char p[160];
                snprintf(p, sizeof(p), "env.%.128s", ek);
                if (!json_is_string(x)) {
                        srv_api_error(rs, 400, "invalid_type", p,
                                      "%s must be a string, not %s", p,
                                      type_name(x));
                        return -1;
                }
                if (al_spec_add_env(s, ek, json_string_value(x), &e) < 0) {
                        srv_api_error(rs, 400, "invalid_value", p, "%s", e.msg);
                        return -1;
                }
        }
        return 0;
}

/* files: {path, content | content_base64, executable}, at most
 * MAX_FILES. */
static int spec_files(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        const char *v;
        json_t *x;
        size_t i;
        unsigned char *data = NULL;
        size_t len = 0;
        bool present;
        int r;
        json_t *files = json_object_get(req, "files");
        if (files && !json_is_array(files)) {
                srv_api_error(rs, 400, "invalid_type", "files",
                              "files must be an array, not %s",
                              type_name(files));
                return -1;
        }
        if (json_array_size(files) > MAX_FILES) {
                srv_api_error(rs, 400, "too_many", "files", "at most %d files",
                              MAX_FILES);
                return -1;
        }
        json_array_foreach(files, i, x) {
                char p[32], pp[48];
                snprintf(p, sizeof(p), "files[%zu]", i);
                snprintf(pp, sizeof(pp), "%s.path", p);
                if (!json_is_object(x)) {
                        srv_api_error(rs, 400, "invalid_type", p,
                                      "%s must be an object, not %s", p,
                                      type_name(x));
                        return -1;
                }
                if (only_fields(x, FILE_FIELDS, p, rs) < 0 ||
                    get_str(x, "path", pp, &v, NULL, rs) < 0)
                        return -1;
                if (!v) {
                        srv_api_error(rs, 400, "missing_field", pp,
                                      "%s is required", pp);
                        return -1;
                }
                json_t *exe = json_object_get(x, "executable");
                if (exe && !json_is_boolean(exe)) {
                        srv_api_error(rs, 400, "invalid_type", p,
                                      "%s.executable must be a boolean", p);
                        return -1;
                }
                if (get_bytes(x, "content", "content_base64", p, &data, &len,
                              &present, rs) < 0)
                        return -1;
                r = al_spec_add_file(s, v, data ? data : (unsigned char *)"",
                                     len, json_is_true(exe), &e);
                free(data);
                if (r < 0) {
                        srv_api_error(rs, 400, "invalid_file", pp, "%s: %s", pp,
                                      e.msg);
                        return -1;
                }
        }
        return 0;
}

/* collect: globs, at most MAX_COLLECT. */
static int spec_collect(json_t *req, al_spec *s, struct srv_response *rs) {
        al_error e = {0};
        json_t *x;
        size_t i;
        json_t *col = json_object_get(req, "collect");
        if (col && !json_is_array(col)) {
                srv_api_error(rs, 400, "invalid_type", "collect",
                              "collect must be an array of globs, not %s",
                              type_name(col));
                return -1;
        }
        if (json_array_size(col) > MAX_COLLECT) {
                srv_api_error(rs, 400, "too_many", "collect",
                              "at most %d globs", MAX_COLLECT);
                return -1;
        }
        json_array_foreach(col, i, x) {
                char p[32];
                snprintf(p, sizeof(p), "collect[%zu]", i);
                if (!json_is_string(x) ||
                    al_spec_add_collect(s, json_string_value(x), &e) < 0) {
                        srv_api_error(rs, 400,
                                      json_is_string(x) ? "invalid_value"
                                                        : "invalid_type",
                                      p, "%s: %s", p,
                                      json_is_string(x) ? e.msg
                                                        : "must be a string");
                        return -1;
                }
        }
        return 0;
}

/* limits, within al_limits_max, the key's ceilings and the server's. */
static int spec_limits(json_t *req, al_spec *s, const al_key_info *key,
                       struct srv_response *rs) {
        al_error e = {0};
        json_t *x;
        /* limits: the request's, each within al_limits_max and the key's
         * ceilings (over a ceiling: refused, never clamped in silence);
         * a default above a ceiling comes down to it */
        al_limits *l = al_spec_limits(s);
        json_t *lim = json_object_get(req, "limits");
        if (lim && !json_is_object(lim)) {
                srv_api_error(rs, 400, "invalid_type", "limits",
                              "limits must be an object, not %s",
                              type_name(lim));
                return -1;
        }
        if (lim && only_fields(lim, LIMIT_FIELDS, "limits", rs) < 0)
                return -1;
        const char *lk;
        json_object_foreach(lim, lk, x) {
                char p[64], num[32];
                snprintf(p, sizeof(p), "limits.%s", lk);
                if (!json_is_integer(x)) {
                        srv_api_error(rs, 400, "invalid_type", p,
                                      "%s must be a whole number, not %s", p,
                                      type_name(x));
                        return -1;
                }
                snprintf(num, sizeof(num), "%lld",
                         (long long)json_integer_value(x));
                if (al_limits_set(l, lk, num, &e) < 0) {
                        srv_api_error(rs, 400, "invalid_limit", p, "%s", e.msg);
                        return -1;
                }
        }
        /* the key's ceilings, then the server's (--max-output ...):
         * whichever is lower binds, and the refusal names it */
        struct {
                const char *name;
                uint64_t *val;
                uint64_t key, server;
        } ceil_[] = {
                {"memory_mb", &l->memory_mb, key->max_memory_mb, 0},
                {"wall_ms", &l->wall_ms, key->max_wall_ms, 0},
                {"output_bytes", &l->output_bytes, key->max_output_bytes,
                 srv_api.cfg->max_output_bytes},
                {"disk_mb", &l->disk_mb, key->max_disk_mb,
                 srv_api.cfg->max_disk_mb},
        };
        for (size_t c = 0; c < sizeof(ceil_) / sizeof(ceil_[0]); c++) {
                uint64_t kmax = ceil_[c].key, smax = ceil_[c].server;
                bool by_key = kmax && (!smax || kmax <= smax);
                uint64_t max = by_key ? kmax : smax;
                if (!max || *ceil_[c].val <= max)
                        continue;
                if (json_object_get(lim, ceil_[c].name)) {
                        char p[64];
                        snprintf(p, sizeof(p), "limits.%s", ceil_[c].name);
                        srv_api_error(rs, 400,
                                      by_key ? "limit_exceeds_key"
                                             : "limit_exceeds_server",
                                      p,
                                      "%s %llu is above this %s's ceiling of "
                                      "%llu",
                                      p, (unsigned long long)*ceil_[c].val,
                                      by_key ? "key" : "server",
                                      (unsigned long long)max);
                        return -1;
                }
                *ceil_[c].val = max;
        }
        uint64_t ck = key->max_collect_bytes,
                 cs = srv_api.cfg->max_collect_bytes;
        al_spec_set_collect_max(s, ck && (!cs || ck < cs) ? ck : cs);
        if (l->cpu_ms > l->wall_ms && key->max_wall_ms &&
            !json_object_get(lim, "cpu_ms"))
                l->cpu_ms = l->wall_ms;
        return 0;
}

/* Refuse a request's list outside one ceiling: 400 network_not_allowed
 * naming the first entry and the ceiling (who). */
static int net_within(const al_net_policy *want, const al_net_policy *ceil,
                      const char *who, struct srv_response *rs) {
        const al_net_rule *bad = NULL;
        if (al_net_policy_subset(want, ceil, &bad))
                return 0;
        char entry[AL_NET_HOST_MAX + 16] = "";
        if (bad)
                al_net_rule_format(bad, entry, sizeof(entry));
        srv_api_error(rs, 400, "network_not_allowed", "network.allow",
                      "%s is not within %s", entry, who);
        return -1;
}

/* network: {"allow": ["host[:port]", ...]}: within every ceiling there
 * is (a request narrows them, never widens them): the server's
 * --allow-net (without it: no network), the network section of the
 * server's --policy file, and the key's own list (keys create
 * --allow-net). The policy's max_bytes caps the run's bytes each way. */
static int spec_network(json_t *req, al_spec *s, const al_key_info *key,
                        struct srv_response *rs) {
        json_t *nw = json_object_get(req, "network"), *x;
        if (!nw || json_is_null(nw))
                return 0;
        static const char *const NET_FIELDS[] = {"allow", NULL};
        json_t *allow = json_object_get(nw, "allow");
        if (!json_is_object(nw) ||
            only_fields(nw, NET_FIELDS, "network", rs) < 0 ||
            !json_is_array(allow)) {
                if (!rs->status)
                        srv_api_error(
                                rs, 400, "invalid_type", "network",
                                "network is {\"allow\": [\"host[:port]\", "
                                "...]}");
                return -1;
        }
        size_t n = json_array_size(allow), i;
        if (n == 0)
                return 0;
        if (n > AL_NET_MAX_RULES) {
                srv_api_error(rs, 400, "too_many", "network.allow",
                              "at most %d entries", AL_NET_MAX_RULES);
                return -1;
        }
        const char *v[AL_NET_MAX_RULES];
        json_array_foreach(allow, i, x) {
                if (!(v[i] = json_string_value(x))) {
                        srv_api_error(rs, 400, "invalid_type", "network.allow",
                                      "network.allow holds strings");
                        return -1;
                }
        }
        al_error e = {0};
        if (al_spec_set_network(s, v, n, &e) < 0) {
                srv_api_error(rs, 400, "invalid_network", "network.allow", "%s",
                              e.msg);
                return -1;
        }
        const al_net_policy *want = al_spec_network(s);
        if (!srv_api.net_ceiling) {
                srv_api_error(rs, 400, "network_not_allowed", "network.allow",
                              "this server allows no network (serve "
                              "--allow-net)");
                return -1;
        }
        if (net_within(want, srv_api.net_ceiling, "this server's --allow-net",
                       rs) < 0)
                return -1;
        pthread_rwlock_rdlock(&srv_api.policy_lock);
        int r = al_spec_apply_network_policy(s, srv_api.policy, &e);
        pthread_rwlock_unlock(&srv_api.policy_lock);
        if (r < 0) {
                srv_api_error(rs, 400, "network_not_allowed", "network.allow",
                              "%s (serve --policy)", e.msg);
                return -1;
        }
        if (key && key->allow_net[0]) {
                /* parsed at keys create; again here, as the store may be
                 * older or edited (a list that no longer parses refuses) */
                _cleanup_free_ al_net_policy *kp = malloc(sizeof(*kp));
                if (!kp ||
                    al_net_policy_parse_list(key->allow_net, kp, &e) < 0) {
                        srv_api_error(rs, 400, "network_not_allowed",
                                      "network.allow",
                                      "this key's allowlist cannot be used: %s",
                                      kp ? e.msg : "out of memory");
                        return -1;
                }
                if (net_within(want, kp,
                               "this key's allowlist (keys create "
                               "--allow-net)",
                               rs) < 0)
                        return -1;
        }
        return 0;
}

/* The body of POST /v1/execute into s, by field group (each refuses
 * with the field it is about). On error: -1 and the response. */
int srv_api_build_spec(json_t *req, al_spec *s, const al_key_info *key,
                       const char **mode, struct srv_response *rs,
                       al_audit_who *who) {
        if (only_fields(req, TOP_FIELDS, "", rs) < 0 ||
            spec_who(req, who, rs) < 0 || spec_program(req, s, rs) < 0 ||
            spec_args(req, s, rs) < 0 || spec_env(req, s, rs) < 0 ||
            spec_files(req, s, rs) < 0 || spec_collect(req, s, rs) < 0 ||
            spec_limits(req, s, key, rs) < 0 ||
            spec_network(req, s, key, rs) < 0)
                return -1;
        if (get_str(req, "policy_mode", "policy_mode", mode, NULL, rs) < 0)
                return -1;
        if (*mode && !al_policy_mode_ok(*mode)) {
                srv_api_error(rs, 400, "invalid_value", "policy_mode",
                              "policy_mode is off, record, warn or enforce");
                return -1;
        }
        return 0;
}

/* Static validation per the mode: 0 to run (findings in *findings), -1
 * with the refusal in rs. */

/* --- sessions ------------------------------------------------------------ */

static const char *const SESSION_FIELDS[] = {"language",
                                             "env",
                                             "files",
                                             "limits",
                                             "user_id",
                                             "agent_id",
                                             "metadata",
                                             "idle_timeout_s",
                                             "max_lifetime_s",
                                             "max_cells",
                                             "policy_mode",
                                             "network",
                                             NULL};
static const char *const CELL_FIELDS[] = {"code",   "code_base64", "limits",
                                          "stream", "policy_mode", NULL};
static const char *const CELL_LIMIT_FIELDS[] = {"wall_ms", "cpu_ms",
                                                "output_bytes", NULL};

/* A whole number of seconds in 1..max, or the default when absent. */
static int get_seconds(json_t *req, const char *key, uint64_t max, uint64_t *v,
                       struct srv_response *rs) {
        json_t *x = json_object_get(req, key);
        if (!x)
                return 0;
        if (!json_is_integer(x) || json_integer_value(x) < 1 ||
            (uint64_t)json_integer_value(x) > max) {
                srv_api_error(rs, 400, "invalid_value", key,
                              "%s is a whole number from 1 to %llu", key,
                              (unsigned long long)max);
                return -1;
        }
        *v = (uint64_t)json_integer_value(x);
        return 0;
}

int srv_api_build_session(json_t *req, al_spec *s, const al_key_info *key,
                          struct srv_session_opts *o, struct srv_response *rs,
                          al_audit_who *who) {
        if (only_fields(req, SESSION_FIELDS, "", rs) < 0 ||
            spec_who(req, who, rs) < 0 || spec_language(req, s, rs) < 0 ||
            spec_env(req, s, rs) < 0 || spec_files(req, s, rs) < 0 ||
            spec_limits(req, s, key, rs) < 0 ||
            spec_network(req, s, key, rs) < 0)
                return -1;
        if (get_seconds(req, "idle_timeout_s", SRV_SESSION_MAX_LIFETIME_S,
                        &o->idle_timeout_s, rs) < 0 ||
            get_seconds(req, "max_lifetime_s", SRV_SESSION_MAX_LIFETIME_S,
                        &o->max_lifetime_s, rs) < 0 ||
            get_seconds(req, "max_cells", SRV_SESSION_MAX_CELLS, &o->max_cells,
                        rs) < 0)
                return -1;
        const char *mode = NULL;
        if (get_str(req, "policy_mode", "policy_mode", &mode, NULL, rs) < 0)
                return -1;
        if (mode && !al_policy_mode_ok(mode)) {
                srv_api_error(rs, 400, "invalid_value", "policy_mode",
                              "policy_mode is off, record, warn or enforce");
                return -1;
        }
        snprintf(o->policy_mode, sizeof(o->policy_mode), "%s",
                 mode ? mode : "");
        /* the limits asked are the session's (memory, pids, disk, files)
         * and its cells' defaults (wall, cpu, output) */
        o->cell = *al_spec_limits(s);
        al_limits *l = al_spec_limits(s);
        l->wall_ms = o->max_lifetime_s * 1000;
        l->cpu_ms = al_limits_max.cpu_ms;
        return 0;
}

int srv_api_build_cell(json_t *req, const al_key_info *key, al_limits *l,
                       unsigned char **code, size_t *len, bool *stream,
                       const char **mode, struct srv_response *rs) {
        bool present = false;
        *code = NULL;
        if (only_fields(req, CELL_FIELDS, "", rs) < 0 ||
            get_bytes(req, "code", "code_base64", "", code, len, &present, rs) <
                    0)
                return -1;
        if (!present) {
                srv_api_error(rs, 400, "missing_field", "code",
                              "code (or code_base64) is required");
                return -1;
        }
        json_t *st = json_object_get(req, "stream");
        if (st && !json_is_boolean(st)) {
                srv_api_error(rs, 400, "invalid_type", "stream",
                              "stream must be true or false");
                goto fail;
        }
        *stream = json_is_true(st);
        if (get_str(req, "policy_mode", "policy_mode", mode, NULL, rs) < 0)
                goto fail;
        if (*mode && !al_policy_mode_ok(*mode)) {
                srv_api_error(rs, 400, "invalid_value", "policy_mode",
                              "policy_mode is off, record, warn or enforce");
                goto fail;
        }
        json_t *lim = json_object_get(req, "limits");
        if (lim && (!json_is_object(lim) ||
                    only_fields(lim, CELL_LIMIT_FIELDS, "limits", rs) < 0)) {
                if (!json_is_object(lim))
                        srv_api_error(rs, 400, "invalid_type", "limits",
                                      "limits must be an object");
                goto fail;
        }
        /* the cell's limits through the same checks and ceilings as a
         * run's, on a spec that holds the session's defaults */
        al_spec *tmp = al_spec_new();
        if (!tmp) {
                srv_api_error(rs, 500, "internal_error", NULL, "out of memory");
                goto fail;
        }
        *al_spec_limits(tmp) = *l;
        int r = spec_limits(req, tmp, key, rs);
        *l = *al_spec_limits(tmp);
        al_spec_free(tmp);
        if (r < 0)
                goto fail;
        return 0;
fail:
        free(*code);
        *code = NULL;
        return -1;
}

int srv_api_get_bytes(json_t *o, const char *key, const char *key64,
                      unsigned char **data, size_t *len, bool *present,
                      struct srv_response *rs) {
        return get_bytes(o, key, key64, "", data, len, present, rs);
}
