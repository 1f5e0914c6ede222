/* SPDX-License-Identifier: MIT */
/*
 * Opening the audit log: the state directory (found, made 0700, checked),
 * the HMAC key (made on first use), STATE/config.json's audit-* and
 * alert-* keys, then the store; and closing it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "alert.h"
#include "audit-internal.h"
#include "audit-store.h"
#include "error.h"
#include "macro.h"
#include "util.h"

#define AUDIT_MAX_PATTERNS 128
#define AUDIT_MAX_PATTERN_LEN 64

static const char *const default_patterns[] = {
        "base64",         "decode",        "encode",     "exec",
        "eval",           "compile",       "socket",     "connect",
        "bind",           "__import__",    "importlib",  "subprocess",
        "ctypes",         "pickle",        "marshal",    "__builtins__",
        "__subclasses__", "child_process", "/dev/tcp",   "ptrace",
        "setuid",         "/etc/shadow",   "/proc/self", "airlock",
};

/* Statuses (and "flagged", "refused") that raise an alert by default. */
static const char *const default_alert_on[] = {
        "flagged",      "refused", "timeout",        "memory_limit",
        "output_limit", "killed",  "internal_error",
};

/* --- state directory, key, config ------------------------------------ */

int al_state_dir_resolve(const char *dir, char *out, size_t outlen,
                         al_error *err) {
        const char *env = secure_getenv("AIRLOCK_STATE");
        char cwd[PATH_MAX] = "";
        int n;
        const char *given = dir && *dir ? dir : env && *env ? env : NULL;
        /* a relative --state or AIRLOCK_STATE is taken from the working
         * directory, once, here: what is protected from the sandbox and
         * what is opened must be the same absolute path */
        if (given && given[0] != '/' && !getcwd(cwd, sizeof(cwd)))
                return al_error_errno(err, errno,
                                      "state directory %s: working directory",
                                      given);
        if (given)
                n = snprintf(out, outlen, "%s%s%s", cwd, cwd[0] ? "/" : "",
                             given);
        else if (geteuid() == 0)
                n = snprintf(out, outlen, "/var/lib/airlock");
        else {
                const char *xdg = secure_getenv("XDG_DATA_HOME");
                const char *home = secure_getenv("HOME");
                if (xdg && xdg[0] == '/')
                        n = snprintf(out, outlen, "%s/airlock", xdg);
                else if (home && home[0] == '/')
                        n = snprintf(out, outlen, "%s/.local/share/airlock",
                                     home);
                else {
                        struct passwd *pw = getpwuid(geteuid());
                        if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/')
                                return al_error_set(err, ENOENT,
                                                    "no home directory for "
                                                    "the state; use --state "
                                                    "DIR");
                        n = snprintf(out, outlen, "%s/.local/share/airlock",
                                     pw->pw_dir);
                }
        }
        if (n < 0 || (size_t)n >= outlen)
                return al_error_set(err, ENAMETOOLONG,
                                    "state directory path too long");
        if (out[0] != '/')
                return al_error_set(err, EINVAL,
                                    "state directory must be an absolute "
                                    "path: %s",
                                    out);
        return 0;
}

/* mkdir -p; the last component 0700, parents 0700 when we make them. */
int al_state_dir_prepare(const char *dir, al_error *err) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", dir);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return al_error_errno(err, errno, "cannot create %s",
                                              p);
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return al_error_errno(err, errno, "cannot create %s", p);
        struct stat st;
        if (lstat(p, &st) < 0)
                return al_error_errno(err, errno, "%s", p);
        if (!S_ISDIR(st.st_mode))
                return al_error_set(err, ENOTDIR,
                                    "state directory %s is not a directory "
                                    "(a symlink is refused)",
                                    p);
        if (st.st_uid != geteuid())
                return al_error_set(err, EPERM,
                                    "state directory %s belongs to uid %u, "
                                    "not to us (uid %u)",
                                    p, st.st_uid, geteuid());
        if (st.st_mode & 0022)
                return al_error_set(err, EPERM,
                                    "state directory %s is writable by "
                                    "others (mode %04o); chmod 700 it",
                                    p, st.st_mode & 07777);
        return 0;
}

int al_audit_free_bytes(const char *state_dir, uint64_t *ret, al_error *err) {
        char dir[PATH_MAX];
        int r = al_state_dir_resolve(state_dir, dir, sizeof(dir), err);
        if (r < 0)
                return r;
        struct statvfs v;
        if (statvfs(dir, &v) < 0)
                return al_error_errno(err, errno, "state directory %s", dir);
        *ret = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
        return 0;
}

static int load_key(al_audit *a, al_error *err) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/audit.key", a->dir);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                /* first use: 32 random bytes, hex, 0600, on disk before
                 * the first record needs it. Written whole under a name of
                 * this process's own and linked into place: a second
                 * process starting at the same moment sees either no key
                 * or the whole key, never a half-written file, and the
                 * link of the one that loses fails EEXIST */
                unsigned char k[crypto_auth_hmacsha256_KEYBYTES];
                char line[2 * sizeof(k) + 2];
                char tmp[PATH_MAX + 48];
                randombytes_buf(k, sizeof(k));
                audit_hex(k, sizeof(k), line);
                sodium_memzero(k, sizeof(k));
                line[2 * sizeof(k)] = '\n';
                line[2 * sizeof(k) + 1] = '\0';
                snprintf(tmp, sizeof(tmp), "%s.new.%ld.%08x", path,
                         (long)getpid(), randombytes_random());
                int w = open(tmp,
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                     O_CLOEXEC,
                             0600);
                if (w < 0) {
                        sodium_memzero(line, sizeof(line));
                        return al_error_errno(err, errno, "cannot create %s",
                                              path);
                }
                bool ok = write(w, line, strlen(line)) ==
                                  (ssize_t)strlen(line) &&
                          fsync(w) == 0;
                int e = errno ? errno : EIO;
                close(w);
                sodium_memzero(line, sizeof(line));
                if (ok && link(tmp, path) < 0 && errno != EEXIST) {
                        ok = false;
                        e = errno;
                }
                unlink(tmp);
                if (!ok)
                        return al_error_errno(err, e, "cannot write %s", path);
                fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return al_error_errno(err, errno, "cannot open %s", path);
        _cleanup_close_ int kfd = fd;
        struct stat st;
        if (fstat(kfd, &st) < 0)
                return al_error_errno(err, errno, "%s", path);
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return al_error_set(err, EPERM,
                                    "%s is not a regular file of ours", path);
        if (st.st_mode & 0077)
                return al_error_set(err, EPERM,
                                    "%s is readable by others (mode %04o); "
                                    "chmod 600 it (and rotate it if it "
                                    "leaked)",
                                    path, st.st_mode & 07777);
        char line[128] = {0};
        ssize_t n = read(kfd, line, sizeof(line) - 1);
        size_t bin_len = 0;
        if (n < 64 ||
            sodium_hex2bin(a->key, sizeof(a->key), line, (size_t)n, "\n",
                           &bin_len, NULL) != 0 ||
            bin_len != sizeof(a->key)) {
                sodium_memzero(line, sizeof(line));
                return al_error_set(err, EBADMSG,
                                    "%s does not hold a 64-hex-digit key",
                                    path);
        }
        sodium_memzero(line, sizeof(line));
        return 0;
}

static int set_list(json_t *v, const char *key, char ***out, size_t *n,
                    bool lower, bool append, al_error *err) {
        if (!json_is_array(v))
                return al_error_set(err, EINVAL,
                                    "config %s: want an array of strings", key);
        size_t size = json_array_size(v) + (append ? *n : 0);
        if (size > AUDIT_MAX_PATTERNS)
                return al_error_set(err, E2BIG, "config %s: at most %d entries",
                                    key, AUDIT_MAX_PATTERNS);
        char **list = calloc(size + 1, sizeof(*list));
        if (!list)
                return al_error_set(err, ENOMEM, "out of memory");
        size_t k = 0;
        if (append)
                for (size_t i = 0; i < *n; i++)
                        list[k++] = (*out)[i];
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
                const char *s = json_string_value(e);
                if (!s || !*s || strlen(s) > AUDIT_MAX_PATTERN_LEN) {
                        for (size_t j = append ? *n : 0; j < k; j++)
                                free(list[j]);
                        free(list);
                        return al_error_set(err, EINVAL,
                                            "config %s[%zu]: want a string "
                                            "of 1 to %d bytes",
                                            key, i, AUDIT_MAX_PATTERN_LEN);
                }
                list[k] = strdup(s);
                if (lower)
                        for (char *c = list[k]; c && *c; c++)
                                *c = (char)tolower((unsigned char)*c);
                k++;
        }
        if (!append)
                for (size_t j = 0; j < *n; j++)
                        free((*out)[j]);
        free(*out);
        *out = list;
        *n = k;
        return 0;
}

static int set_defaults(char ***out, size_t *n, const char *const *def,
                        size_t nd) {
        *out = calloc(nd + 1, sizeof(**out));
        if (!*out)
                return -ENOMEM;
        for (size_t i = 0; i < nd; i++)
                if (!((*out)[i] = strdup(def[i])))
                        return -ENOMEM;
        *n = nd;
        return 0;
}

static int get_uint(json_t *v, const char *key, uint64_t lo, uint64_t hi,
                    uint64_t *out, al_error *err) {
        if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
            (uint64_t)json_integer_value(v) > hi)
                return al_error_set(err, EINVAL,
                                    "config %s: want an integer from %llu to "
                                    "%llu",
                                    key, (unsigned long long)lo,
                                    (unsigned long long)hi);
        *out = (uint64_t)json_integer_value(v);
        return 0;
}

static const char *const alert_on_names[] = {
        "flagged",      "refused", "error",    "timeout",        "memory_limit",
        "output_limit", "killed",  "rejected", "internal_error",
};

/* config.json can name a command to run: only ours, and only we may
 * write it. Its JSON object into *ret. */
static int config_read(const char *path, json_t **ret, al_error *err) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return al_error_errno(err, errno, "%s", path);
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            (st.st_mode & 0022))
                return al_error_set(err, EPERM,
                                    "%s must be a regular file of uid %u "
                                    "that nobody else can write (it is "
                                    "mode %04o, uid %u)",
                                    path, geteuid(), st.st_mode & 07777,
                                    st.st_uid);
        json_error_t je;
        _cleanup_json_ json_t *root =
                json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return al_error_set(err, EINVAL, "%s:%d: %s", path, je.line,
                                    je.text);
        if (!json_is_object(root))
                return al_error_set(err, EINVAL, "%s: want a JSON object",
                                    path);
        *ret = steal_pointer(&root);
        return 0;
}

/* An audit-* key: 0, -errno, or 1 when it is none of ours. */
static int config_audit_key(al_audit *a, const char *key, json_t *v,
                            al_error *err) {
        int r = 0;
        uint64_t u;
        if (!strcmp(key, "audit-code-cap")) {
                if ((r = get_uint(v, key, 0, 16u << 20, &u, err)) < 0)
                        return r;
                a->code_cap = u;
        } else if (!strcmp(key, "audit-preview")) {
                if ((r = get_uint(v, key, 0, 65536, &u, err)) < 0)
                        return r;
                a->preview = u;
        } else if (!strcmp(key, "audit-lock-timeout")) {
                if ((r = get_uint(v, key, 1, 600000, &u, err)) < 0)
                        return r;
                a->lock_ms = (unsigned)u;
        } else if (!strcmp(key, "audit-patterns"))
                r = set_list(v, key, &a->patterns, &a->n_patterns, true, false,
                             err);
        else if (!strcmp(key, "audit-patterns-add"))
                r = set_list(v, key, &a->patterns, &a->n_patterns, true, true,
                             err);
        else
                return 1;
        return r;
}

/* alert-on: flagged, refused or a status. */
static int config_alert_on(al_audit *a, const char *key, json_t *v,
                           al_error *err) {
        int r = set_list(v, key, &a->alert_on, &a->n_alert_on, false, false,
                         err);
        for (size_t i = 0; i < a->n_alert_on && !r; i++) {
                bool known = false;
                for (size_t k = 0; k < ARRAY_SIZE(alert_on_names); k++)
                        known |= !strcmp(a->alert_on[i], alert_on_names[k]);
                if (!known)
                        r = al_error_set(err, EINVAL,
                                         "config alert-on: unknown "
                                         "'%s' (flagged, refused or a "
                                         "status)",
                                         a->alert_on[i]);
        }
        return r;
}

/* alert-log, alert-command, alert-webhook: where alerts go. */
static int config_alert_sink(al_alert_config *ac, const char *key, json_t *v,
                             al_error *err) {
        const char *s = json_string_value(v);
        if (!s || !*s)
                return al_error_set(err, EINVAL,
                                    "config %s: want a "
                                    "non-empty string",
                                    key);
        if (!strcmp(key, "alert-webhook") && strncmp(s, "http://", 7) &&
            strncmp(s, "https://", 8))
                return al_error_set(err, EINVAL,
                                    "config alert-webhook: want "
                                    "an http:// or https:// URL");
        if (!strcmp(key, "alert-log") && s[0] != '/')
                return al_error_set(err, EINVAL,
                                    "config alert-log: want an "
                                    "absolute path");
        char **dst = key[6] == 'l'   ? &ac->log_path
                     : key[6] == 'c' ? &ac->command
                                     : &ac->webhook;
        free(*dst);
        *dst = strdup(s);
        return 0;
}

/* An alert-* key: 0, -errno, or 1 when it is none of ours. */
static int config_alert_key(al_audit *a, al_alert_config *ac, const char *key,
                            json_t *v, al_error *err) {
        int r;
        uint64_t u;
        if (!strcmp(key, "alert-on"))
                return config_alert_on(a, key, v, err);
        if (!strcmp(key, "alert-log") || !strcmp(key, "alert-command") ||
            !strcmp(key, "alert-webhook"))
                return config_alert_sink(ac, key, v, err);
        if (!strcmp(key, "alert-timeout")) {
                if ((r = get_uint(v, key, 1, 600000, &u, err)) < 0)
                        return r;
                ac->timeout_ms = (unsigned)u;
        } else if (!strcmp(key, "alert-retries")) {
                if ((r = get_uint(v, key, 0, 10, &u, err)) < 0)
                        return r;
                ac->retries = (unsigned)u;
        } else if (!strcmp(key, "alert-queue")) {
                if ((r = get_uint(v, key, 1, 100000, &u, err)) < 0)
                        return r;
                ac->queue = (unsigned)u;
        } else
                return 1;
        return 0;
}

/* STATE/config.json: the audit-* and alert-* keys are ours; other keys
 * belong to other commands (serve) and are left to them. */
static int load_config(al_audit *a, al_alert_config *ac, al_error *err) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/config.json", a->dir);
        if (access(path, F_OK) < 0)
                return 0;
        _cleanup_json_ json_t *root = NULL;
        int r = config_read(path, &root, err);
        if (r < 0)
                return r;
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
                if (!strncmp(key, "audit-", 6))
                        r = config_audit_key(a, key, v, err);
                else if (!strncmp(key, "alert-", 6))
                        r = config_alert_key(a, ac, key, v, err);
                else
                        continue;
                if (r > 0)
                        r = al_error_set(err, EINVAL,
                                         "%s: unknown key '%s' (see "
                                         "airlock-audit(1))",
                                         path, key);
                if (r < 0)
                        break;
        }
        if (r < 0 && err && !strstr(err->msg, path)) {
                char m[AL_ERROR_MSG_MAX];
                snprintf(m, sizeof(m), "%s", err->msg);
                al_error_set(err, -r, "%s: %s", path, m);
        }
        return r;
}

static void free_list(char **l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                free(l[i]);
        free(l);
}

al_audit *al_audit_close(al_audit *a) {
        if (!a)
                return NULL;
        if (a->st)
                a->st->ops->close(a->st);
        al_alerter_free(a->alerter);
        if (a->last)
                audit_started_info_clear(a->last);
        free(a->last);
        free_list(a->patterns, a->n_patterns);
        free_list(a->alert_on, a->n_alert_on);
        sodium_memzero(a->key, sizeof(a->key));
        free(a);
        return NULL;
}

int al_audit_open(const char *state_dir, al_audit **ret, al_error *err) {
        if (sodium_init() < 0)
                return al_error_set(err, EIO, "libsodium failed to start");
        al_audit *a = calloc(1, sizeof(*a));
        if (!a)
                return al_error_set(err, ENOMEM, "out of memory");
        al_alert_config ac = {.timeout_ms = 5000, .retries = 3, .queue = 64};
        int r;
        a->code_cap = 64 * 1024;
        a->preview = 500;
        a->lock_ms = 5000;
        if ((r = al_state_dir_resolve(state_dir, a->dir, sizeof(a->dir), err)) <
                    0 ||
            (r = al_state_dir_prepare(a->dir, err)) < 0)
                goto fail;
        /* no sandbox may ever mount the database or its key */
        if ((r = al_protect_path(a->dir, err)) < 0)
                goto fail;
        if ((r = set_defaults(&a->patterns, &a->n_patterns, default_patterns,
                              ARRAY_SIZE(default_patterns))) < 0 ||
            (r = set_defaults(&a->alert_on, &a->n_alert_on, default_alert_on,
                              ARRAY_SIZE(default_alert_on))) < 0) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        if ((r = load_config(a, &ac, err)) < 0 || (r = load_key(a, err)) < 0)
                goto fail;
        char db[PATH_MAX + 16];
        snprintf(db, sizeof(db), "%s/audit.db", a->dir);
        if ((r = al_audit_sqlite_open(db, a->lock_ms, &a->st, err)) < 0)
                goto fail;
        if (!(a->alerter = al_alerter_new(&ac))) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        free(ac.log_path);
        free(ac.command);
        free(ac.webhook);
        *ret = a;
        return 0;
fail:
        free(ac.log_path);
        free(ac.command);
        free(ac.webhook);
        al_audit_close(a);
        return r;
}
