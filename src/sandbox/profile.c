/* SPDX-License-Identifier: MIT */
#include "profile.h"

#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "macro.h"
#include "util.h"

extern const char al_languages_default_json[];

static al_profile *profiles[AL_PROFILE_MAX_LANGS];
static size_t n_profiles;
static char **builtin_base; /* base_ro_paths of the built-in set */

static void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static void profile_free(al_profile *p) {
        if (!p)
                return;
        free(p->name);
        strv_free(p->aliases);
        free(p->description);
        free(p->file);
        strv_free(p->compile);
        free(p->compile_output);
        strv_free(p->run);
        strv_free(p->ro_paths);
        strv_free(p->env);
        strv_free(p->session_run);
        free(p);
}

/* An array of strings -> NULL-terminated vector; prefix (may be NULL) is
 * copied first. */
static int strv_from_json(json_t *arr, char **prefix, const char *what,
                          char ***ret, al_error *err) {
        size_t np = 0;
        while (prefix && prefix[np])
                np++;
        size_t n = arr ? json_array_size(arr) : 0;
        if (arr && !json_is_array(arr))
                return al_error_set(err, EINVAL, "%s: not an array", what);
        if (n > AL_PROFILE_MAX_LIST)
                return al_error_set(err, E2BIG, "%s: more than %d entries",
                                    what, AL_PROFILE_MAX_LIST);
        char **v = calloc(np + n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < np; i++)
                if (!(v[i] = strdup(prefix[i])))
                        goto oom;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(arr, i);
                if (!json_is_string(s)) {
                        strv_free(v);
                        return al_error_set(err, EINVAL,
                                            "%s[%zu]: not a string", what, i);
                }
                if (!(v[np + i] = strdup(json_string_value(s))))
                        goto oom;
        }
        *ret = v;
        return 0;
oom:
        strv_free(v);
        return -ENOMEM;
}

static bool abs_path_ok(const char *p) {
        return p[0] == '/' && (p[1] == '\0' || al_rel_path_ok(p + 1));
}

/* "compile" with its "compile_output", and "compile_limits". */
static int parse_compile(const char *name, json_t *o, al_profile *p,
                         al_error *err) {
        char what[160];
        int r;

        json_t *comp = json_object_get(o, "compile");
        if (comp) {
                snprintf(what, sizeof(what), "language %s: compile", name);
                if ((r = strv_from_json(comp, NULL, what, &p->compile, err)) <
                    0)
                        return r;
                const char *out =
                        json_string_value(json_object_get(o, "compile_output"));
                if (!p->compile[0] || !out || !al_rel_path_ok(out))
                        return al_error_set(err, EINVAL,
                                            "language %s: \"compile\" needs a "
                                            "non-empty argv and a relative "
                                            "\"compile_output\"",
                                            name);
                if (!(p->compile_output = strdup(out)))
                        return -ENOMEM;
        }
        al_limits_init(&p->compile_limits);
        json_t *cl = json_object_get(o, "compile_limits");
        const char *k;
        json_t *v;
        json_object_foreach(cl, k, v) {
                char num[32];
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return al_error_set(
                                err, EINVAL,
                                "language %s: compile_limits.%s must "
                                "be a non-negative integer",
                                name, k);
                snprintf(num, sizeof(num), "%lld",
                         (long long)json_integer_value(v));
                if ((r = al_limits_set(&p->compile_limits, k, num, err)) < 0)
                        return r;
        }
        return 0;
}

/* "env": an object of names and values, kept as NAME=VALUE. */
static int parse_env(const char *name, json_t *o, al_profile *p,
                     al_error *err) {
        const char *k;
        json_t *v;

        json_t *env = json_object_get(o, "env");
        size_t ne = json_is_object(env) ? json_object_size(env) : 0;
        if (ne > AL_PROFILE_MAX_LIST)
                return al_error_set(err, E2BIG, "language %s: env too large",
                                    name);
        p->env = calloc(ne + 1, sizeof(char *));
        if (!p->env)
                return -ENOMEM;
        size_t i = 0;
        json_object_foreach(env, k, v) {
                if (!al_env_name_ok(k) || !json_is_string(v))
                        return al_error_set(err, EINVAL,
                                            "language %s: bad env entry '%s'",
                                            name, k);
                size_t len = strlen(k) + strlen(json_string_value(v)) + 2;
                if (!(p->env[i] = malloc(len)))
                        return -ENOMEM;
                snprintf(p->env[i++], len, "%s=%s", k, json_string_value(v));
        }
        return 0;
}

extern const char al_driver_python[], al_driver_node[], al_driver_bash[];

const char *al_session_driver(const char *name) {
        static const struct {
                const char *name, *text;
        } d[] = {
                {"python.py", al_driver_python},
                {"node.js", al_driver_node},
                {"bash.sh", al_driver_bash},
        };
        for (size_t i = 0; name && i < ARRAY_SIZE(d); i++)
                if (!strcmp(name, d[i].name))
                        return d[i].text;
        return NULL;
}

/* "session": {"driver": "<built-in driver>", "run": [argv with
 * "{driver}"]}: the language can keep a session. */
static int parse_session(const char *name, json_t *o, al_profile *p,
                         al_error *err) {
        json_t *ss = json_object_get(o, "session");
        if (!ss)
                return 0;
        const char *drv = json_string_value(json_object_get(ss, "driver"));
        json_t *run = json_object_get(ss, "run");
        char what[160];
        snprintf(what, sizeof(what), "language %s: session.run", name);
        if (!json_is_object(ss) || !drv ||
            !(p->session_driver = al_session_driver(drv)))
                return al_error_set(err, EINVAL,
                                    "language %s: \"session\" needs a "
                                    "built-in \"driver\" (languages/"
                                    "sessions/)",
                                    name);
        if (!json_is_array(run) || json_array_size(run) == 0)
                return al_error_set(err, EINVAL,
                                    "language %s: \"session.run\" must be a "
                                    "non-empty array",
                                    name);
        return strv_from_json(run, NULL, what, &p->session_run, err);
}

static int parse_one(const char *name, json_t *o, char **base, al_profile **ret,
                     al_error *err) {
        int r;
        if (!json_is_object(o))
                return al_error_set(err, EINVAL, "language %s: not an object",
                                    name);
        al_profile *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->name = strdup(name);
        const char *desc = json_string_value(json_object_get(o, "description"));
        p->description = strdup(desc ? desc : "");
        const char *file = json_string_value(json_object_get(o, "file"));
        if (!file || !al_rel_path_ok(file)) {
                r = al_error_set(err, EINVAL,
                                 "language %s: \"file\" must be a relative "
                                 "file name",
                                 name);
                goto fail;
        }
        p->file = strdup(file);
        if (!p->name || !p->description || !p->file) {
                r = -ENOMEM;
                goto fail;
        }
        char what[160];
        snprintf(what, sizeof(what), "language %s: aliases", name);
        if ((r = strv_from_json(json_object_get(o, "aliases"), NULL, what,
                                &p->aliases, err)) < 0)
                goto fail;
        snprintf(what, sizeof(what), "language %s: run", name);
        json_t *run = json_object_get(o, "run");
        if (!json_is_array(run) || json_array_size(run) == 0) {
                r = al_error_set(err, EINVAL,
                                 "language %s: \"run\" must be a non-empty "
                                 "array",
                                 name);
                goto fail;
        }
        if ((r = strv_from_json(run, NULL, what, &p->run, err)) < 0)
                goto fail;
        if ((r = parse_compile(name, o, p, err)) < 0)
                goto fail;
        snprintf(what, sizeof(what), "language %s: ro_paths", name);
        if ((r = strv_from_json(json_object_get(o, "ro_paths"), base, what,
                                &p->ro_paths, err)) < 0)
                goto fail;
        for (char **q = p->ro_paths; *q; q++)
                if (!abs_path_ok(*q)) {
                        r = al_error_set(err, EINVAL,
                                         "language %s: ro path '%s' must be "
                                         "absolute and normalized",
                                         name, *q);
                        goto fail;
                }
        if ((r = parse_env(name, o, p, err)) < 0)
                goto fail;
        if ((r = parse_session(name, o, p, err)) < 0)
                goto fail;
        *ret = p;
        return 0;
fail:
        profile_free(p);
        return r;
}

static int load_json(const char *text, al_error *err) {
        json_error_t jerr;
        json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return al_error_set(err, EINVAL,
                                    "language profiles: line %d: %s", jerr.line,
                                    jerr.text);
        int r = 0;
        char **base = NULL;
        json_t *langs = json_object_get(root, "languages");
        if (!json_is_object(langs)) {
                r = al_error_set(err, EINVAL,
                                 "language profiles: no \"languages\" object");
                goto out;
        }
        /* A file without base_ro_paths (an extra --languages file) gets
         * the base of the built-in set, so its languages see /usr and the
         * loader like every other. */
        json_t *base_j = json_object_get(root, "base_ro_paths");
        if (!base_j && builtin_base)
                r = strv_from_json(NULL, builtin_base, "base_ro_paths", &base,
                                   err);
        else
                r = strv_from_json(base_j, NULL, "base_ro_paths", &base, err);
        if (r < 0)
                goto out;
        if (!builtin_base && base) {
                builtin_base = base; /* the first set loaded: kept */
                base = NULL;
        }
        char **use_base = base ? base : builtin_base;
        const char *name;
        json_t *o;
        json_object_foreach(langs, name, o) {
                al_profile *p = NULL;
                if (!al_rel_path_ok(name) || strchr(name, '/')) {
                        r = al_error_set(err, EINVAL, "bad language name '%s'",
                                         name);
                        goto out;
                }
                if ((r = parse_one(name, o, use_base, &p, err)) < 0)
                        goto out;
                size_t i;
                for (i = 0; i < n_profiles; i++)
                        if (strcmp(profiles[i]->name, name) == 0)
                                break;
                if (i == n_profiles) {
                        if (n_profiles == AL_PROFILE_MAX_LANGS) {
                                profile_free(p);
                                r = al_error_set(err, E2BIG,
                                                 "more than %d languages",
                                                 AL_PROFILE_MAX_LANGS);
                                goto out;
                        }
                        profiles[i] = p; /* set before it is counted */
                        n_profiles++;
                } else {
                        profile_free(profiles[i]);
                        profiles[i] = p;
                }
        }
out:
        strv_free(base);
        json_decref(root);
        return r;
}

static pthread_once_t loaded_once = PTHREAD_ONCE_INIT;

static void load_default(void) {
        /* The embedded set is tested at build time (unit tests); a failure
         * here leaves the registry empty and every lookup fails clearly. */
        (void)load_json(al_languages_default_json, NULL);
}

/* Once, whichever thread asks first (airlock serve's workers and its HTTP
 * thread may all ask at once); later changes (--languages) are made
 * before any thread starts. */
static void ensure_loaded(void) {
        pthread_once(&loaded_once, load_default);
}

int al_profiles_load_json(const char *text, al_error *err) {
        ensure_loaded(); /* the built-in set first: extra files extend it */
        return load_json(text, err);
}

const al_profile *al_profile_find(const char *name) {
        ensure_loaded();
        if (!name)
                return NULL;
        for (size_t i = 0; i < n_profiles; i++) {
                if (strcmp(profiles[i]->name, name) == 0)
                        return profiles[i];
                for (char **a = profiles[i]->aliases; a && *a; a++)
                        if (strcmp(*a, name) == 0)
                                return profiles[i];
        }
        return NULL;
}

const al_profile *al_profile_at(size_t i) {
        ensure_loaded();
        return i < n_profiles ? profiles[i] : NULL;
}

bool al_profile_available(const al_profile *p) {
        const char *prog = p->compile ? p->compile[0] : p->run[0];
        return prog[0] != '/' || access(prog, X_OK) == 0;
}

int al_languages_load_file(const char *path, al_error *err) {
        ensure_loaded();
        FILE *f = fopen(path, "re");
        if (!f)
                return al_error_errno(err, errno, "cannot open %s", path);
        /* operator input, but bounded all the same */
        enum { MAX_PROFILE_FILE = 1024 * 1024 };
        _cleanup_free_ char *buf = malloc(MAX_PROFILE_FILE + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        size_t n = fread(buf, 1, MAX_PROFILE_FILE + 1, f);
        fclose(f);
        if (n > MAX_PROFILE_FILE)
                return al_error_set(err, EFBIG, "%s: larger than 1 MiB", path);
        buf[n] = '\0';
        return al_profiles_load_json(buf, err);
}

size_t al_languages_count(void) {
        ensure_loaded();
        return n_profiles;
}

const char *al_language_name(size_t i) {
        const al_profile *p = al_profile_at(i);
        return p ? p->name : NULL;
}

const char *al_language_describe(size_t i) {
        const al_profile *p = al_profile_at(i);
        return p ? p->description : NULL;
}

bool al_language_available(size_t i) {
        const al_profile *p = al_profile_at(i);
        return p && al_profile_available(p);
}

bool al_language_sessions(size_t i) {
        const al_profile *p = al_profile_at(i);
        return p && p->session_run;
}
