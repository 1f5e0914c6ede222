/* SPDX-License-Identifier: MIT */
/*
 * The audit log: what a record holds, the hash chain, the HMAC, verify,
 * prune and the queries. Storage is behind audit-store.h.
 *
 * Chain: record n carries prev = hash of record n-1 (64 zeros for the
 * first, the checkpoint's hash after a prune) and
 *   hash = SHA-256(canonical encoding of the record, prev included)
 *   mac  = HMAC-SHA256(key, hash)
 * The canonical encoding (audit_encode) is length-prefixed binary, so no
 * two different records encode alike; docs/airlock-audit.1 specifies it.
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
#include <time.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "alert.h"
#include "audit-internal.h"
#include "audit-store.h"
#include "error.h"
#include "json.h"
#include "macro.h"
#include "spec.h"
#include "util.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_MAX_PATTERNS 128
#define AUDIT_MAX_PATTERN_LEN 64
/* What a record keeps of each field a caller gives. A longer value is
 * kept as its size, its SHA-256 and a bounded preview ({bytes, sha256,
 * preview, truncated} in detail; "PREVIEW...[N bytes, sha256 H]" in a
 * column), so a record stays small whatever a request holds and nothing
 * is lost silently. The code has its own cap (audit-code-cap); stdin,
 * input files, stdout and stderr are kept as hashes and previews. */
#define AUDIT_COLUMN_CAP 256     /* source, actor, user_id, agent_id, language */
#define AUDIT_COLUMN_PREVIEW 128 /* kept of a column over its cap */
#define AUDIT_FLAGS_CAP 4096     /* the flags column (patterns and rules) */
#define AUDIT_ARG_CAP 1024       /* one argument */
#define AUDIT_MAX_ARGS_KEPT 64   /* arguments kept; args_count counts all */
#define AUDIT_NAME_CAP 1024      /* a file or env name, collect glob, mime */
#define AUDIT_TEXT_CAP 4096      /* an error message or reason */
#define AUDIT_FINDINGS_CAP 65536 /* the findings, as JSON text */

static const char *const default_patterns[] = {
        "base64",     "decode",        "encode",      "exec",
        "eval",       "compile",       "socket",      "connect",
        "bind",       "__import__",    "importlib",   "subprocess",
        "ctypes",     "pickle",        "marshal",     "__builtins__",
        "__subclasses__", "child_process", "/dev/tcp", "ptrace",
        "setuid",     "/etc/shadow",   "/proc/self",  "airlock",
};

/* Statuses (and "flagged", "refused") that raise an alert by default. */
static const char *const default_alert_on[] = {
        "flagged", "refused",      "timeout",        "memory_limit",
        "output_limit", "killed", "internal_error",
};

/* Who, language and flags of an execution, from its started record. */
struct started_info {
        bool found;
        char id[AL_AUDIT_ID_SIZE];
        char source[16], *actor, *user_id, *agent_id, *language, *flags;
};

struct al_audit {
        al_audit_store *st;
        unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
        size_t code_cap, preview;
        unsigned lock_ms;
        char **patterns; /* lowercase */
        size_t n_patterns;
        char **alert_on;
        size_t n_alert_on;
        al_alerter *alerter;
        char dir[PATH_MAX];
        struct started_info *last; /* the last started record we wrote */
};

static char *dup_opt(const char *s) {
        return s ? strdup(s) : NULL;
}

static void started_info_clear(struct started_info *si) {
        free(si->actor);
        free(si->user_id);
        free(si->agent_id);
        free(si->language);
        free(si->flags);
        *si = (struct started_info){0};
}

static int find_started(const al_audit_rec *rec, void *ctx) {
        struct started_info *si = ctx;
        if (strcmp(rec->kind, "started") || si->found)
                return 0;
        si->found = true;
        snprintf(si->id, sizeof(si->id), "%s", rec->id);
        snprintf(si->source, sizeof(si->source), "%s",
                 rec->source ? rec->source : "");
        si->actor = dup_opt(rec->actor);
        si->user_id = dup_opt(rec->user_id);
        si->agent_id = dup_opt(rec->agent_id);
        si->language = dup_opt(rec->language);
        si->flags = dup_opt(rec->flags);
        return 0;
}

/* --- small helpers ---------------------------------------------------- */

static void hex(const unsigned char *b, size_t n, char *out) {
        sodium_bin2hex(out, n * 2 + 1, b, n);
}

static void sha256_hex(const void *data, size_t len,
                       char out[AL_AUDIT_HASH_SIZE]) {
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, data, len);
        hex(h, sizeof(h), out);
}

static char *dumps(json_t *o) {
        return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

#define _cleanup_json_ _cleanup_(json_decrefp) /* jansson's helper */

/* --- canonical encoding, hash, MAC ------------------------------------ */

static void put_u64(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (unsigned char)v;
}

int al_audit_encode(const al_audit_rec *r, unsigned char **ret,
                    size_t *ret_len) {
        const char *f[] = {r->kind,     r->id,     r->ts,      r->source,
                           r->actor,    r->user_id, r->agent_id,
                           r->language, r->status, r->flags,   r->detail,
                           r->prev};
        static const char tag[] = "airlock-audit-v1\n";
        size_t len = sizeof(tag) - 1 + 8;
        _Static_assert(ARRAY_SIZE(f) == AL_AUDIT_NFIELDS, "fields");
        /* a record read back hashes its stored bytes (a NUL inside
         * included); one built here has no NUL, and strlen is its length:
         * the two agree for every record airlock wrote */
        size_t n[AL_AUDIT_NFIELDS];
        for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
                n[i] = !f[i] ? 0 : r->has_len ? r->len[i] : strlen(f[i]);
                if (n[i] > UINT32_MAX)
                        return -E2BIG;
                len += 1 + (f[i] ? 4 + n[i] : 0);
        }
        unsigned char *b = malloc(len), *p = b;
        if (!b)
                return -ENOMEM;
        memcpy(p, tag, sizeof(tag) - 1);
        p += sizeof(tag) - 1;
        put_u64(p, r->seq);
        p += 8;
        for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
                *p++ = f[i] ? 1 : 0; /* NULL and "" differ */
                if (!f[i])
                        continue;
                for (int k = 3; k >= 0; k--)
                        *p++ = (unsigned char)(n[i] >> (8 * k));
                memcpy(p, f[i], n[i]);
                p += n[i];
        }
        *ret = b;
        *ret_len = len;
        return 0;
}

int al_audit_seal(const unsigned char *key, const al_audit_rec *r,
                  char hash[AL_AUDIT_HASH_SIZE], char mac[AL_AUDIT_HASH_SIZE]) {
        _cleanup_free_ unsigned char *buf = NULL;
        size_t len;
        int rc = al_audit_encode(r, &buf, &len);
        if (rc < 0)
                return rc;
        unsigned char h[crypto_hash_sha256_BYTES],
                m[crypto_auth_hmacsha256_BYTES];
        crypto_hash_sha256(h, buf, len);
        crypto_auth_hmacsha256(m, h, sizeof(h), key);
        hex(h, sizeof(h), hash);
        hex(m, sizeof(m), mac);
        return 0;
}

/* Constant-time equality of two hex digests (stored values may be any
 * length after tampering). */
static bool digest_eq(const char *a, const char *b) {
        if (strlen(a) != 64 || strlen(b) != 64)
                return false;
        return sodium_memcmp(a, b, 64) == 0;
}

static void checkpoint_mac(const unsigned char *key,
                           const al_audit_checkpoint *cp,
                           char out[AL_AUDIT_HASH_SIZE]) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "airlock-checkpoint-v1\n%llu\n%s\n%llu\n%s",
                         (unsigned long long)cp->seq, cp->hash,
                         (unsigned long long)cp->count, cp->ts);
        unsigned char m[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256(m, (const unsigned char *)msg, (size_t)n, key);
        hex(m, sizeof(m), out);
}

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

int al_audit_free_bytes(const char *state_dir, uint64_t *ret,
                        al_error *err) {
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
                 * the first record needs it */
                unsigned char k[crypto_auth_hmacsha256_KEYBYTES];
                char line[2 * sizeof(k) + 2];
                randombytes_buf(k, sizeof(k));
                hex(k, sizeof(k), line);
                line[2 * sizeof(k)] = '\n';
                line[2 * sizeof(k) + 1] = '\0';
                int w = open(path,
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                     O_CLOEXEC,
                             0600);
                if (w >= 0) {
                        bool ok = write(w, line, strlen(line)) ==
                                          (ssize_t)strlen(line) &&
                                  fsync(w) == 0;
                        close(w);
                        sodium_memzero(line, sizeof(line));
                        if (!ok) {
                                unlink(path);
                                return al_error_errno(err, errno ? errno : EIO,
                                                      "cannot write %s", path);
                        }
                } else if (errno != EEXIST)
                        return al_error_errno(err, errno, "cannot create %s",
                                              path);
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
                                    "config %s: want an array of strings",
                                    key);
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
        "flagged",      "refused", "error",  "timeout",       "memory_limit",
        "output_limit", "killed",  "rejected", "internal_error",
};

/* STATE/config.json: the audit-* and alert-* keys are ours; other keys
 * belong to other commands (serve) and are left to them. */
static int load_config(al_audit *a, al_alert_config *ac, al_error *err) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/config.json", a->dir);
        if (access(path, F_OK) < 0)
                return 0;
        /* it can name a command to run: only ours, and only we may write
         * it */
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
        const char *key;
        json_t *v;
        int r = 0;
        uint64_t u;
        json_object_foreach(root, key, v) {
                if (strncmp(key, "audit-", 6) && strncmp(key, "alert-", 6))
                        continue;
                if (!strcmp(key, "audit-code-cap")) {
                        if ((r = get_uint(v, key, 0, 16u << 20, &u, err)) < 0)
                                break;
                        a->code_cap = u;
                } else if (!strcmp(key, "audit-preview")) {
                        if ((r = get_uint(v, key, 0, 65536, &u, err)) < 0)
                                break;
                        a->preview = u;
                } else if (!strcmp(key, "audit-lock-timeout")) {
                        if ((r = get_uint(v, key, 1, 600000, &u, err)) < 0)
                                break;
                        a->lock_ms = (unsigned)u;
                } else if (!strcmp(key, "audit-patterns")) {
                        if ((r = set_list(v, key, &a->patterns,
                                          &a->n_patterns, true, false, err)) <
                            0)
                                break;
                } else if (!strcmp(key, "audit-patterns-add")) {
                        if ((r = set_list(v, key, &a->patterns,
                                          &a->n_patterns, true, true, err)) <
                            0)
                                break;
                } else if (!strcmp(key, "alert-on")) {
                        if ((r = set_list(v, key, &a->alert_on,
                                          &a->n_alert_on, false, false, err)) <
                            0)
                                break;
                        for (size_t i = 0; i < a->n_alert_on && !r; i++) {
                                bool known = false;
                                for (size_t k = 0;
                                     k < ARRAY_SIZE(alert_on_names); k++)
                                        known |= !strcmp(a->alert_on[i],
                                                         alert_on_names[k]);
                                if (!known)
                                        r = al_error_set(
                                                err, EINVAL,
                                                "config alert-on: unknown "
                                                "'%s' (flagged, refused or a "
                                                "status)",
                                                a->alert_on[i]);
                        }
                        if (r < 0)
                                break;
                } else if (!strcmp(key, "alert-log") ||
                           !strcmp(key, "alert-command") ||
                           !strcmp(key, "alert-webhook")) {
                        const char *s = json_string_value(v);
                        if (!s || !*s) {
                                r = al_error_set(err, EINVAL,
                                                 "config %s: want a "
                                                 "non-empty string",
                                                 key);
                                break;
                        }
                        if (!strcmp(key, "alert-webhook") &&
                            strncmp(s, "http://", 7) &&
                            strncmp(s, "https://", 8)) {
                                r = al_error_set(err, EINVAL,
                                                 "config alert-webhook: want "
                                                 "an http:// or https:// URL");
                                break;
                        }
                        if (!strcmp(key, "alert-log") && s[0] != '/') {
                                r = al_error_set(err, EINVAL,
                                                 "config alert-log: want an "
                                                 "absolute path");
                                break;
                        }
                        char **dst = key[6] == 'l'   ? &ac->log_path
                                     : key[6] == 'c' ? &ac->command
                                                     : &ac->webhook;
                        free(*dst);
                        *dst = strdup(s);
                } else if (!strcmp(key, "alert-timeout")) {
                        if ((r = get_uint(v, key, 1, 600000, &u, err)) < 0)
                                break;
                        ac->timeout_ms = (unsigned)u;
                } else if (!strcmp(key, "alert-retries")) {
                        if ((r = get_uint(v, key, 0, 10, &u, err)) < 0)
                                break;
                        ac->retries = (unsigned)u;
                } else if (!strcmp(key, "alert-queue")) {
                        if ((r = get_uint(v, key, 1, 100000, &u, err)) < 0)
                                break;
                        ac->queue = (unsigned)u;
                } else {
                        r = al_error_set(err, EINVAL,
                                         "%s: unknown key '%s' (see "
                                         "airlock-audit(1))",
                                         path, key);
                        break;
                }
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
                started_info_clear(a->last);
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
        if ((r = al_state_dir_resolve(state_dir, a->dir, sizeof(a->dir),
                                      err)) < 0 ||
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

/* --- appending -------------------------------------------------------- */

/* The position and hash a new record links to: the last record, or the
 * checkpoint when everything before was pruned, or the start. */
static int chain_tail(al_audit *a, uint64_t *seq,
                      char hash[AL_AUDIT_HASH_SIZE], al_error *err) {
        int r = a->st->ops->head(a->st, seq, hash, err);
        if (r < 0 || *seq)
                return r;
        al_audit_checkpoint cp;
        if ((r = a->st->ops->checkpoint_get(a->st, &cp, err)) < 0)
                return r;
        *seq = cp.seq;
        snprintf(hash, AL_AUDIT_HASH_SIZE, "%s", cp.seq ? cp.hash : ZERO_HASH);
        return 0;
}

/* Link rec after the tail and store it. Inside a write transaction. */
static int link_and_insert(al_audit *a, al_audit_rec *rec, char ts[32],
                           al_error *err) {
        char prev[AL_AUDIT_HASH_SIZE], hash[AL_AUDIT_HASH_SIZE],
                mac[AL_AUDIT_HASH_SIZE];
        uint64_t seq;
        int r = chain_tail(a, &seq, prev, err);
        if (r < 0)
                return r;
        al_utc_now(ts); /* under the lock: timestamps follow the chain */
        rec->seq = seq + 1;
        rec->ts = ts;
        rec->prev = prev;
        if ((r = al_audit_seal(a->key, rec, hash, mac)) < 0)
                return al_error_set(err, -r, "out of memory");
        rec->hash = hash;
        rec->mac = mac;
        r = a->st->ops->insert(a->st, rec, err);
        rec->prev = rec->hash = rec->mac = NULL; /* stack buffers */
        return r;
}

static int append(al_audit *a, al_audit_rec *rec, char ts[32], al_error *err) {
        int r = a->st->ops->begin(a->st, true, err);
        if (r < 0)
                return r;
        if ((r = link_and_insert(a, rec, ts, err)) < 0) {
                a->st->ops->rollback(a->st);
                return r;
        }
        return a->st->ops->commit(a->st, err);
}

/* --- what a record holds --------------------------------------------- */

static void new_id(char id[AL_AUDIT_ID_SIZE]) {
        unsigned char b[16];
        randombytes_buf(b, sizeof(b));
        hex(b, sizeof(b), id);
}

/* Who runs this process, to tell a run in progress from one whose
 * process died: pid, its start time in clock ticks, the boot. */
static json_t *owner_json(void) {
        char stat[1024] = "", boot[64] = "";
        unsigned long long start = 0;
        FILE *f = fopen("/proc/self/stat", "re");
        if (f) {
                if (fgets(stat, sizeof(stat), f)) {
                        /* field 22, counted after the ")" of comm */
                        char *p = strrchr(stat, ')');
                        for (int i = 0; p && i < 20; i++)
                                p = strchr(p + 1, ' ');
                        if (p)
                                start = strtoull(p + 1, NULL, 10);
                }
                fclose(f);
        }
        f = fopen("/proc/sys/kernel/random/boot_id", "re");
        if (f) {
                if (!fgets(boot, sizeof(boot), f))
                        boot[0] = '\0';
                boot[strcspn(boot, "\n")] = '\0';
                fclose(f);
        }
        return json_pack("{s:i,s:I,s:s}", "pid", (int)getpid(), "start",
                         (json_int_t)start, "boot", boot);
}

static bool owner_alive(json_t *owner) {
        json_int_t pid = json_integer_value(json_object_get(owner, "pid"));
        if (pid <= 0)
                return false;
        _cleanup_json_ json_t *me = owner_json();
        if (!me || strcmp(json_string_value(json_object_get(me, "boot")),
                          json_string_value(json_object_get(owner, "boot"))
                                  ?: ""))
                return false;
        char p[64], stat[1024];
        snprintf(p, sizeof(p), "/proc/%lld/stat", (long long)pid);
        FILE *f = fopen(p, "re");
        if (!f)
                return false;
        bool alive = false;
        if (fgets(stat, sizeof(stat), f)) {
                /* "PID (COMM) STATE ...": comm may hold ") ", so from the
                 * last ')'. A zombie (killed, not yet reaped by its
                 * parent) or a dead task still has its entry: not alive */
                char *s = strrchr(stat, ')');
                if (s && s[1] == ' ' && strchr("ZXx", s[2] ? s[2] : 'X'))
                        s = NULL;
                for (int i = 0; s && i < 20; i++)
                        s = strchr(s + 1, ' ');
                alive = s && (json_int_t)strtoull(s + 1, NULL, 10) ==
                                     json_integer_value(json_object_get(
                                             owner, "start"));
        }
        fclose(f);
        return alive;
}

/* {bytes, sha256, preview[, truncated]} of a buffer. */
static json_t *blob_json(const unsigned char *buf, size_t len, size_t preview,
                         bool truncated) {
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(buf ? (const void *)buf : "", len, h);
        json_t *o = json_pack("{s:I,s:s}", "bytes", (json_int_t)len, "sha256",
                              h);
        size_t n = len < preview ? len : preview;
        json_object_set_new(o, "preview", al_jstrn(buf ? (const void *)buf : "", n));
        if (truncated)
                json_object_set_new(o, "truncated", json_true());
        return o;
}

/* How many of the first max bytes of s[0..len) to keep without cutting
 * a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
        size_t n = len < max ? len : max;
        while (n && n < len && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

/* A caller's string for detail: itself up to cap bytes, else {bytes,
 * sha256, preview of cap bytes, truncated}. */
static json_t *capped_str(const char *v, size_t cap) {
        if (!v)
                return json_null();
        size_t n = strlen(v);
        if (n <= cap)
                return al_jstrn(v, n);
        return blob_json((const unsigned char *)v, n, utf8_cut(v, n, cap),
                         true);
}

/* A column value over cap: a new string "PREVIEW...[N bytes, sha256 H]";
 * NULL when it fits (or out of memory: then *oom). */
static char *capped_column(const char *v, size_t cap, bool *oom) {
        size_t n = v ? strlen(v) : 0;
        if (n <= cap)
                return NULL;
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(v, n, h);
        size_t keep = utf8_cut(v, n, AUDIT_COLUMN_PREVIEW);
        size_t size = keep + 128;
        char *out = malloc(size);
        if (!out)
                *oom = true;
        else
                snprintf(out, size, "%.*s...[%zu bytes, sha256 %s]", (int)keep,
                         v, n, h);
        return out;
}

/* Who asked and the language, each within AUDIT_COLUMN_CAP. */
struct who_cols {
        const char *source, *actor, *user_id, *agent_id, *language;
        char *owned[5];
};

static int who_cols_cap(struct who_cols *c, const al_audit_who *who,
                        const char *language, al_error *err) {
        const char **v[] = {&c->source, &c->actor, &c->user_id, &c->agent_id,
                            &c->language};
        *c = (struct who_cols){who->source, who->actor, who->user_id,
                               who->agent_id, language, {0}};
        bool oom = false;
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                if ((c->owned[i] = capped_column(*v[i], AUDIT_COLUMN_CAP,
                                                 &oom)))
                        *v[i] = c->owned[i];
        return oom ? al_error_set(err, ENOMEM, "out of memory") : 0;
}

static void who_cols_free(struct who_cols *c) {
        for (size_t i = 0; i < ARRAY_SIZE(c->owned); i++)
                free(c->owned[i]);
}

/* The flags within AUDIT_FLAGS_CAP (in place). */
static char *flags_cap(char *flags) {
        bool oom = false;
        char *c = capped_column(flags, AUDIT_FLAGS_CAP, &oom);
        if (!c)
                return oom ? (free(flags), NULL) : flags;
        free(flags);
        return c;
}

/* findings into d: all of them while their JSON fits AUDIT_FINDINGS_CAP,
 * else the leading ones that fit, with findings_total, findings_bytes and
 * findings_sha256 of all. */
static void set_findings(json_t *d, json_t *findings) {
        if (!findings) {
                json_object_set_new(d, "findings", json_array());
                return;
        }
        _cleanup_free_ char *all = dumps(findings);
        size_t n = all ? strlen(all) : 0;
        if (n <= AUDIT_FINDINGS_CAP) {
                json_object_set(d, "findings", findings);
                return;
        }
        json_t *kept = json_array();
        size_t used = 2, i;
        json_t *f;
        json_array_foreach(findings, i, f) {
                _cleanup_free_ char *one = dumps(f);
                if (!one || used + strlen(one) + 1 > AUDIT_FINDINGS_CAP)
                        break;
                used += strlen(one) + 1;
                json_array_append(kept, f);
        }
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(all, n, h);
        json_object_set_new(d, "findings", kept);
        json_object_set_new(d, "findings_total",
                            json_integer((json_int_t)json_array_size(findings)));
        json_object_set_new(d, "findings_bytes", json_integer((json_int_t)n));
        json_object_set_new(d, "findings_sha256", json_string(h));
}

/* The code: hash, size, a preview, and the code itself up to the cap
 * (text when UTF-8, else base64). */
static json_t *code_json(const al_audit *a, const al_spec *s) {
        json_t *o = blob_json(s->code, s->code_len, a->preview, false);
        size_t kept = s->code_len < a->code_cap ? s->code_len : a->code_cap;
        /* cut at a character boundary */
        while (kept && kept < s->code_len && (s->code[kept] & 0xc0) == 0x80)
                kept--;
        if (al_utf8_valid(s->code, kept))
                json_object_set_new(o, "text",
                                    json_stringn((const char *)s->code, kept));
        else {
                _cleanup_free_ char *b64 = al_base64_encode(s->code, kept);
                json_object_set_new(o, "base64", json_string(b64 ? b64 : ""));
        }
        json_object_set_new(o, "stored", json_integer((json_int_t)kept));
        if (kept < s->code_len)
                json_object_set_new(o, "truncated", json_true());
        return o;
}

static json_t *spec_json(const al_audit *a, const al_spec *s) {
        json_t *d = json_object();
        if (!s)
                return d;
        if (s->has_code)
                json_object_set_new(d, "code", code_json(a, s));
        json_t *in = json_array();
        for (size_t i = 0; i < s->n_files; i++) {
                char h[AL_AUDIT_HASH_SIZE];
                sha256_hex(s->files[i].data ? (const void *)s->files[i].data
                                            : "",
                           s->files[i].len, h);
                json_array_append_new(
                        in, json_pack("{s:o,s:I,s:s}", "name",
                                      capped_str(s->files[i].name,
                                                 AUDIT_NAME_CAP),
                                      "bytes",
                                      (json_int_t)s->files[i].len, "sha256",
                                      h));
        }
        json_object_set_new(d, "inputs", in);
        if (s->stdin_len)
                json_object_set_new(d, "stdin",
                                    blob_json(s->stdin_data, s->stdin_len, 0,
                                              false));
        json_t *args = json_array();
        for (size_t i = 0; i < s->n_args && i < AUDIT_MAX_ARGS_KEPT; i++)
                json_array_append_new(args,
                                      capped_str(s->args[i], AUDIT_ARG_CAP));
        json_object_set_new(d, "args", args);
        if (s->n_args > AUDIT_MAX_ARGS_KEPT)
                json_object_set_new(d, "args_count",
                                    json_integer((json_int_t)s->n_args));
        /* names only: values may be secrets */
        json_t *env = json_array();
        for (size_t i = 0; i < s->n_env; i++) {
                _cleanup_free_ char *name =
                        strndup(s->env[i], strcspn(s->env[i], "="));
                json_array_append_new(env, capped_str(name ? name : "",
                                                      AUDIT_NAME_CAP));
        }
        json_object_set_new(d, "env", env);
        json_t *col = json_array();
        for (size_t i = 0; i < s->n_collect; i++)
                json_array_append_new(col, capped_str(s->collect[i],
                                                      AUDIT_NAME_CAP));
        json_object_set_new(d, "collect", col);
        json_object_set_new(d, "limits", al_limits_json(&s->limits));
        return d;
}

/* The suspicious-pattern flags of the code (case-insensitive substrings,
 * in the configured order) and of static-validation findings
 * ("policy:RULE"), comma-separated; NULL if none. */
static char *flags_of(const al_audit *a, const al_spec *s, json_t *findings) {
        size_t cap = 256, len = 0;
        char *out = malloc(cap);
        _cleanup_free_ char *low = NULL;
        if (!out)
                return NULL;
        out[0] = '\0';
        if (s && s->has_code && s->code_len) {
                low = malloc(s->code_len);
                if (low)
                        for (size_t i = 0; i < s->code_len; i++)
                                low[i] = (char)tolower(s->code[i]);
        }
        for (size_t i = 0; low && i < a->n_patterns; i++) {
                const char *p = a->patterns[i];
                if (!memmem(low, s->code_len, p, strlen(p)))
                        continue;
                size_t need = len + strlen(p) + 2;
                if (need > cap) {
                        char *n = realloc(out, cap = need * 2);
                        if (!n)
                                break;
                        out = n;
                }
                len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                        len ? "," : "", p);
        }
        size_t i;
        json_t *f;
        json_array_foreach(findings, i, f) {
                const char *rule = json_string_value(json_object_get(f, "rule"));
                if (!rule)
                        continue;
                size_t need = len + strlen(rule) + 9;
                if (need > cap) {
                        char *n = realloc(out, cap = need * 2);
                        if (!n)
                                break;
                        out = n;
                }
                len += (size_t)snprintf(out + len, cap - len, "%spolicy:%s",
                                        len ? "," : "", rule);
        }
        if (!len) {
                free(out);
                return NULL;
        }
        return out;
}

static bool alert_wanted(const al_audit *a, const char *what) {
        for (size_t i = 0; i < a->n_alert_on; i++)
                if (!strcmp(a->alert_on[i], what))
                        return true;
        return false;
}

static void raise_alert(al_audit *a, const char *kind, const al_audit_rec *rec,
                        const char *reason) {
        _cleanup_json_ json_t *flags = json_array();
        if (rec->flags) {
                const char *p = rec->flags;
                while (*p) {
                        size_t n = strcspn(p, ",");
                        json_array_append_new(flags, json_stringn(p, n));
                        p += n + (p[n] == ',');
                }
        }
        _cleanup_json_ json_t *e = json_pack(
                "{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:O}", "event",
                "airlock.audit.alert", "alert", kind, "ts", rec->ts, "id",
                rec->id, "source", rec->source, "actor", rec->actor,
                "user_id", rec->user_id, "agent_id", rec->agent_id,
                "language", rec->language, "status", rec->status, "flags",
                flags);
        if (!e)
                return;
        if (reason && *reason)
                json_object_set_new(e, "reason", al_jstr(reason));
        json_object_set_new(e, "seq", json_integer((json_int_t)rec->seq));
        char *line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
        al_alerter_raise(a->alerter, line);
        free(line);
}

static int parse_findings(const char *findings_json, json_t **ret,
                          al_error *err) {
        *ret = NULL;
        if (!findings_json)
                return 0;
        json_error_t je;
        *ret = json_loads(findings_json, 0, &je);
        if (!*ret || !json_is_array(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                return al_error_set(err, EINVAL,
                                    "findings must be a JSON array");
        }
        return 0;
}

int al_audit_started(al_audit *a, const al_audit_who *who, const al_spec *s,
                     const char *findings_json, char id[AL_AUDIT_ID_SIZE],
                     al_error *err) {
        static const al_audit_who nobody = {0};
        if (!who)
                who = &nobody;
        _cleanup_json_ json_t *findings = NULL;
        int r = parse_findings(findings_json, &findings, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *d = spec_json(a, s);
        json_object_set_new(d, "owner", owner_json());
        set_findings(d, findings);
        _cleanup_free_ char *detail = dumps(d);
        _cleanup_free_ char *flags = flags_cap(flags_of(a, s, findings));
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        struct who_cols c;
        if ((r = who_cols_cap(&c, who, s && s->lang ? s->lang->name : NULL,
                              err)) < 0) {
                who_cols_free(&c);
                return r;
        }
        new_id(id);
        char ts[32];
        al_audit_rec rec = {
                .kind = "started",
                .id = id,
                .source = c.source,
                .actor = c.actor,
                .user_id = c.user_id,
                .agent_id = c.agent_id,
                .language = c.language,
                .flags = flags,
                .detail = detail,
        };
        if ((r = append(a, &rec, ts, err)) < 0) {
                who_cols_free(&c);
                return r;
        }
        /* the finished record repeats who and what: keep it at hand */
        if (!a->last)
                a->last = calloc(1, sizeof(*a->last));
        if (a->last) {
                started_info_clear(a->last);
                find_started(&rec, a->last);
        }
        if (flags && alert_wanted(a, "flagged"))
                raise_alert(a, "flagged", &rec, NULL);
        who_cols_free(&c);
        return 0;
}

static json_t *result_detail(const al_audit *a, const al_result *r) {
        json_t *d = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I}", "reason",
                              r->reason, "exit_code", r->exit_code, "signal",
                              r->signal, "wall_ms", (json_int_t)r->wall_ms,
                              "cpu_ms", (json_int_t)r->cpu_ms,
                              "memory_peak_bytes",
                              (json_int_t)r->memory_peak_bytes);
        if (!d)
                return NULL;
        json_object_set_new(d, "reason", capped_str(r->reason, AUDIT_TEXT_CAP));
        json_t *hit = json_array();
        for (const char *p = r->limits_hit; *p;) {
                size_t n = strcspn(p, ",");
                json_array_append_new(hit, json_stringn(p, n));
                p += n + (p[n] == ',');
        }
        json_object_set_new(d, "limits_hit", hit);
        json_object_set_new(d, "stdout",
                            blob_json(r->stdout_buf, r->stdout_len, a->preview,
                                      r->stdout_truncated));
        json_object_set_new(d, "stderr",
                            blob_json(r->stderr_buf, r->stderr_len, a->preview,
                                      r->stderr_truncated));
        json_t *files = json_array();
        for (size_t i = 0; i < r->n_files; i++) {
                char h[AL_AUDIT_HASH_SIZE];
                sha256_hex(r->files[i].data ? (const void *)r->files[i].data
                                            : "",
                           r->files[i].size, h);
                json_array_append_new(
                        files,
                        json_pack("{s:o,s:I,s:s,s:o}", "name",
                                  capped_str(r->files[i].name,
                                             AUDIT_NAME_CAP),
                                  "bytes", (json_int_t)r->files[i].size,
                                  "sha256", h, "mime",
                                  capped_str(r->files[i].mime
                                                     ? r->files[i].mime
                                                     : "",
                                             AUDIT_NAME_CAP)));
        }
        json_object_set_new(d, "files", files);
        if (r->files_note[0])
                json_object_set_new(d, "files_note",
                                    capped_str(r->files_note, AUDIT_TEXT_CAP));
        json_object_set_new(d, "limits", al_limits_json(&r->limits));
        if (r->compile)
                json_object_set_new(
                        d, "compile",
                        json_pack("{s:s,s:i,s:o}", "status",
                                  al_status_name(r->compile->status),
                                  "exit_code", r->compile->exit_code, "reason",
                                  capped_str(r->compile->reason,
                                             AUDIT_TEXT_CAP)));
        if (r->status == AL_STATUS_INTERNAL_ERROR)
                json_object_set_new(d, "error",
                                    capped_str(r->reason, AUDIT_TEXT_CAP));
        return d;
}

int al_audit_finished(al_audit *a, const char *id, const al_result *res,
                      al_error *err) {
        _cleanup_json_ json_t *d = result_detail(a, res);
        _cleanup_free_ char *detail = d ? dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        struct started_info si = {0};
        int r = 0;
        if (a->last && a->last->found && !strcmp(a->last->id, id)) {
                si = *a->last; /* taken over */
                *a->last = (struct started_info){0};
        } else
                r = a->st->ops->by_id(a->st, id, NULL, find_started, &si,
                                      err);
        if (r == 0 && !si.found)
                r = al_error_set(err, ENOENT, "no started record for %s", id);
        char ts[32];
        al_audit_rec rec = {
                .kind = "finished",
                .id = id,
                .source = si.found ? si.source : NULL,
                .actor = si.actor,
                .user_id = si.user_id,
                .agent_id = si.agent_id,
                .language = si.language,
                .status = al_status_name(res->status),
                .flags = si.flags,
                .detail = detail,
        };
        if (r == 0)
                r = append(a, &rec, ts, err);
        if (r == 0 && alert_wanted(a, rec.status))
                raise_alert(a, "failure", &rec, res->reason);
        started_info_clear(&si);
        return r;
}

int al_audit_refused(al_audit *a, const al_audit_who *who, const al_spec *s,
                     const char *code, const char *message,
                     const char *findings_json, char id[AL_AUDIT_ID_SIZE],
                     al_error *err) {
        static const al_audit_who nobody = {0};
        if (!who)
                who = &nobody;
        _cleanup_json_ json_t *findings = NULL;
        int r = parse_findings(findings_json, &findings, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *d = spec_json(a, s);
        if (findings)
                set_findings(d, findings);
        json_object_set_new(
                d, "error",
                json_pack("{s:o,s:o}", "code",
                          capped_str(code ? code : "", AUDIT_NAME_CAP),
                          "message",
                          capped_str(message ? message : "", AUDIT_TEXT_CAP)));
        _cleanup_free_ char *detail = dumps(d);
        _cleanup_free_ char *flags = flags_cap(flags_of(a, s, findings));
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        struct who_cols c;
        if ((r = who_cols_cap(&c, who, s && s->lang ? s->lang->name : NULL,
                              err)) < 0) {
                who_cols_free(&c);
                return r;
        }
        new_id(id);
        char ts[32];
        al_audit_rec rec = {
                .kind = "refused",
                .id = id,
                .source = c.source,
                .actor = c.actor,
                .user_id = c.user_id,
                .agent_id = c.agent_id,
                .language = c.language,
                .status = "rejected",
                .flags = flags,
                .detail = detail,
        };
        r = append(a, &rec, ts, err);
        if (r == 0 && alert_wanted(a, "refused")) {
                /* the alert's reason within the same cap as the record */
                _cleanup_free_ char *m = message ? strndup(
                        message, utf8_cut(message, strlen(message),
                                          AUDIT_TEXT_CAP))
                                                 : NULL;
                raise_alert(a, "refused", &rec, m);
        }
        who_cols_free(&c);
        return r;
}

int al_audit_alerts_start(al_audit *a, al_error *err) {
        return al_alerter_start(a->alerter, err);
}

void al_audit_alerts_human(al_audit *a, bool on) {
        al_alerter_set_human(a->alerter, on);
}

void al_audit_alerts_drain(al_audit *a, unsigned timeout_ms) {
        al_alerter_drain(a->alerter, timeout_ms);
}

void al_audit_alert_counts(al_audit *a, uint64_t *dropped, uint64_t *failed) {
        al_alerter_counts(a->alerter, dropped, failed);
}

/* --- head, verify, prune ---------------------------------------------- */

int al_audit_head(al_audit *a, uint64_t *seq, char hash[AL_AUDIT_HASH_SIZE],
                  al_error *err) {
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        r = chain_tail(a, seq, hash, err);
        a->st->ops->rollback(a->st);
        return r;
}

struct verify_ctx {
        al_audit *a;
        al_audit_verify_report *rep;
        uint64_t expect_seq;
        char expect_prev[AL_AUDIT_HASH_SIZE];
        uint64_t last_pruned_through; /* from the newest "pruned" record */
        char last_pruned_hash[AL_AUDIT_HASH_SIZE];
        const char *want_hash;        /* --expect-head, or NULL */
        uint64_t found_at;            /* where the chain carries it */
};

static int bad(struct verify_ctx *v, const al_audit_rec *rec, uint64_t seq,
               const char *problem, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int bad(struct verify_ctx *v, const al_audit_rec *rec, uint64_t seq,
               const char *problem, const char *fmt, ...) {
        al_audit_verify_report *rep = v->rep;
        rep->ok = false;
        rep->bad_seq = seq;
        snprintf(rep->bad_id, sizeof(rep->bad_id), "%s",
                 rec && rec->id ? rec->id : "");
        snprintf(rep->problem, sizeof(rep->problem), "%s", problem);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rep->message, sizeof(rep->message), fmt, ap);
        va_end(ap);
        return 1; /* stop the walk */
}

static int verify_one(const al_audit_rec *rec, void *ctx) {
        struct verify_ctx *v = ctx;
        al_audit_verify_report *rep = v->rep;
        if (rec->seq < v->expect_seq)
                return bad(v, rec, rec->seq, "inserted",
                           "record %llu sits before the chain's start "
                           "(%llu): inserted",
                           (unsigned long long)rec->seq,
                           (unsigned long long)v->expect_seq);
        if (rec->seq == v->expect_seq + 1)
                return bad(v, rec, v->expect_seq, "deleted",
                           "record %llu is missing: deleted",
                           (unsigned long long)v->expect_seq);
        if (rec->seq > v->expect_seq)
                return bad(v, rec, v->expect_seq, "deleted",
                           "records %llu to %llu are missing: deleted",
                           (unsigned long long)v->expect_seq,
                           (unsigned long long)rec->seq - 1);
        char hash[AL_AUDIT_HASH_SIZE], mac[AL_AUDIT_HASH_SIZE];
        al_audit_rec copy = *rec;
        if (al_audit_seal(v->a->key, &copy, hash, mac) < 0)
                return -ENOMEM;
        bool hash_ok = digest_eq(hash, rec->hash);
        /* the MAC of the stored hash: a record airlock wrote, whatever
         * happened to it since, still has a valid one */
        unsigned char hb[32], mb[32];
        size_t n1 = 0, n2 = 0;
        bool mac_ok =
                sodium_hex2bin(hb, 32, rec->hash, strlen(rec->hash), NULL, &n1,
                               NULL) == 0 &&
                n1 == 32 &&
                sodium_hex2bin(mb, 32, rec->mac, strlen(rec->mac), NULL, &n2,
                               NULL) == 0 &&
                n2 == 32 &&
                crypto_auth_hmacsha256_verify(mb, hb, 32, v->a->key) == 0;
        bool link_ok = digest_eq(rec->prev, v->expect_prev);
        unsigned long long s = (unsigned long long)rec->seq;
        if (!mac_ok)
                return bad(v, rec, rec->seq, "inserted",
                           "record %llu (%s %s) was not written by airlock: "
                           "its MAC does not match (inserted or forged)",
                           s, rec->kind, rec->id);
        /* the hash covers the stored bytes, not their type: a text
         * column stored as a BLOB (or a NUL in one) hashes the same but
         * hides the record from every query that compares values */
        if (rec->bad_column)
                return bad(v, rec, rec->seq, "modified",
                           "record %llu (%s %s) was modified after it was "
                           "written: its column %s %s",
                           s, rec->kind, rec->id, rec->bad_column,
                           rec->bad_why);
        if (!link_ok && !hash_ok)
                return bad(v, rec, rec->seq, "reordered",
                           "record %llu (%s %s) is a genuine record in the "
                           "wrong place: reordered or moved",
                           s, rec->kind, rec->id);
        if (!hash_ok)
                return bad(v, rec, rec->seq, "modified",
                           "record %llu (%s %s) was modified after it was "
                           "written: its content does not match its hash",
                           s, rec->kind, rec->id);
        if (!link_ok)
                return bad(v, rec, rec->seq, "deleted",
                           "record %llu (%s %s) does not link to the record "
                           "before it: records were deleted or replaced",
                           s, rec->kind, rec->id);
        if (!strcmp(rec->kind, "pruned")) {
                _cleanup_json_ json_t *d = json_loads(rec->detail, 0, NULL);
                v->last_pruned_through = (uint64_t)json_integer_value(
                        json_object_get(d, "through_seq"));
                snprintf(v->last_pruned_hash, sizeof(v->last_pruned_hash),
                         "%s",
                         json_string_value(json_object_get(d, "through_hash"))
                                 ?: "");
        } else if (!strcmp(rec->kind, "started"))
                rep->executions++;
        else if (!strcmp(rec->kind, "refused"))
                rep->refused++;
        if (!rep->records)
                rep->first_seq = rec->seq;
        rep->records++;
        rep->last_seq = rec->seq;
        if (v->want_hash && digest_eq(rec->hash, v->want_hash))
                v->found_at = rec->seq;
        snprintf(rep->head, sizeof(rep->head), "%s", rec->hash);
        v->expect_seq = rec->seq + 1;
        snprintf(v->expect_prev, sizeof(v->expect_prev), "%s", rec->hash);
        return 0;
}

static int count_interrupted(const al_audit_rec *s, const al_audit_rec *f,
                             void *ctx) {
        (void)f;
        _cleanup_json_ json_t *d = json_loads(s->detail, 0, NULL);
        if (!owner_alive(json_object_get(d, "owner")))
                (*(uint64_t *)ctx)++;
        return 0;
}

int al_audit_schema_check(al_audit *a, char *msg, size_t msglen,
                          al_error *err) {
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        r = a->st->ops->schema_check(a->st, msg, msglen, err);
        a->st->ops->rollback(a->st);
        return r;
}

int al_audit_verify(al_audit *a, const char *expect_head,
                    al_audit_verify_report *rep, al_error *err) {
        *rep = (al_audit_verify_report){.ok = true};
        uint64_t want_seq = 0;
        char want_hash[AL_AUDIT_HASH_SIZE] = "";
        if (expect_head) {
                const char *colon = strchr(expect_head, ':');
                const char *h = colon ? colon + 1 : expect_head;
                if (colon) {
                        char num[24];
                        size_t n = (size_t)(colon - expect_head);
                        if (n >= sizeof(num))
                                n = sizeof(num) - 1;
                        memcpy(num, expect_head, n);
                        num[n] = '\0';
                        if (al_parse_u64(num, &want_seq) < 0 || !want_seq)
                                return al_error_set(err, EINVAL,
                                                    "--expect-head: want HASH "
                                                    "or SEQ:HASH, got '%s'",
                                                    expect_head);
                }
                if (strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64)
                        return al_error_set(err, EINVAL,
                                            "--expect-head: want 64 "
                                            "lowercase hex digits, got '%s'",
                                            h);
                snprintf(want_hash, sizeof(want_hash), "%s", h);
        }
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        struct verify_ctx v = {.a = a,
                               .rep = rep,
                               .expect_seq = 1,
                               .want_hash = want_hash[0] ? want_hash : NULL};
        snprintf(v.expect_prev, sizeof(v.expect_prev), ZERO_HASH);
        /* first the schema: a trigger, view, index or table that airlock
         * did not create, or one of its own changed */
        char schema[400];
        if ((r = a->st->ops->schema_check(a->st, schema, sizeof(schema),
                                          err)) < 0)
                goto out;
        if (r == 1) {
                r = 0;
                bad(&v, NULL, 0, "schema",
                    "the store's schema is not airlock's: %s", schema);
                goto out;
        }
        /* then its structures: an index that no longer matches its table
         * (swapped through writable_schema, with the schema's text
         * unchanged) hides records from show, list and the filters */
        if ((r = a->st->ops->integrity_check(a->st, schema, sizeof(schema),
                                             err)) < 0)
                goto out;
        if (r == 1) {
                r = 0;
                bad(&v, NULL, 0, "corrupt",
                    "the store's structures do not match its records (an "
                    "index swapped or damaged): %s",
                    schema);
                goto out;
        }
        al_audit_checkpoint cp;
        if ((r = a->st->ops->checkpoint_get(a->st, &cp, err)) < 0)
                goto out;
        if (cp.seq) {
                char m[AL_AUDIT_HASH_SIZE];
                checkpoint_mac(a->key, &cp, m);
                if (!digest_eq(m, cp.mac)) {
                        bad(&v, NULL, cp.seq, "checkpoint",
                            "the prune checkpoint (through record %llu) was "
                            "not written by airlock: its MAC does not match",
                            (unsigned long long)cp.seq);
                        goto out;
                }
                v.expect_seq = cp.seq + 1;
                snprintf(v.expect_prev, sizeof(v.expect_prev), "%s", cp.hash);
                rep->pruned = cp.count;
        }
        r = a->st->ops->each(a->st, 0, verify_one, &v, err);
        if (r < 0)
                goto out;
        r = 0;
        if (!rep->ok)
                goto out;
        if (cp.seq && (v.last_pruned_through != cp.seq ||
                       !digest_eq(v.last_pruned_hash, cp.hash))) {
                bad(&v, NULL, cp.seq, "checkpoint",
                    "the prune checkpoint (through record %llu) matches no "
                    "'pruned' record in the chain",
                    (unsigned long long)cp.seq);
                goto out;
        }
        if (want_hash[0]) {
                bool found = v.found_at && (!want_seq || v.found_at == want_seq);
                if (!found && cp.seq && digest_eq(cp.hash, want_hash))
                        found = !want_seq || want_seq == cp.seq;
                if (!found) {
                        uint64_t at = want_seq ? want_seq : rep->last_seq + 1;
                        if (at > rep->last_seq)
                                bad(&v, NULL, at, "truncated",
                                    "the anchored head %s is not in the "
                                    "chain, which ends at record %llu: the "
                                    "tail was truncated or rewritten",
                                    expect_head,
                                    (unsigned long long)rep->last_seq);
                        else
                                bad(&v, NULL, at, "truncated",
                                    "record %llu does not carry the anchored "
                                    "hash: the chain was rewritten from "
                                    "there",
                                    (unsigned long long)at);
                        goto out;
                }
        }
out:
        a->st->ops->rollback(a->st);
        if (r >= 0 && rep->ok) {
                al_audit_filter f = {0};
                r = a->st->ops->pairs(a->st, &f, true, 0, count_interrupted,
                                      &rep->interrupted, err);
        }
        return r < 0 ? r : 0;
}

int al_audit_prune(al_audit *a, const char *before, uint64_t *ret_count,
                   al_error *err) {
        char cut[32];
        int r = al_audit_parse_time(before, cut, err);
        if (r < 0)
                return r;
        *ret_count = 0;
        _cleanup_json_ json_t *d = NULL;
        _cleanup_free_ char *detail = NULL;
        /* never prune a chain that does not verify: that would erase the
         * evidence of the tampering */
        al_audit_verify_report rep;
        if ((r = al_audit_verify(a, NULL, &rep, err)) < 0)
                return r;
        if (!rep.ok)
                return al_error_set(err, EBADMSG,
                                    "refusing to prune a chain that does not "
                                    "verify: %s",
                                    rep.message);
        if ((r = a->st->ops->begin(a->st, true, err)) < 0)
                return r;
        uint64_t head, first_kept, removed = 0;
        char head_hash[AL_AUDIT_HASH_SIZE], through_hash[AL_AUDIT_HASH_SIZE];
        al_audit_checkpoint cp;
        if ((r = chain_tail(a, &head, head_hash, err)) < 0 ||
            (r = a->st->ops->first_since(a->st, cut, &first_kept, err)) < 0 ||
            (r = a->st->ops->checkpoint_get(a->st, &cp, err)) < 0)
                goto fail;
        uint64_t through = first_kept ? first_kept - 1 : head;
        if (through <= cp.seq) { /* nothing older than the cut */
                a->st->ops->rollback(a->st);
                return 0;
        }
        if ((r = a->st->ops->hash_of(a->st, through, through_hash, err)) < 0)
                goto fail;
        if (!through_hash[0]) {
                r = al_error_set(err, EBADMSG, "record %llu is missing",
                                 (unsigned long long)through);
                goto fail;
        }
        if ((r = a->st->ops->delete_through(a->st, through, &removed, err)) <
            0)
                goto fail;
        char now[32];
        al_utc_now(now);
        al_audit_checkpoint ncp = {.seq = through, .count = cp.count + removed};
        snprintf(ncp.hash, sizeof(ncp.hash), "%s", through_hash);
        snprintf(ncp.ts, sizeof(ncp.ts), "%s", now);
        checkpoint_mac(a->key, &ncp, ncp.mac);
        if ((r = a->st->ops->checkpoint_put(a->st, &ncp, err)) < 0)
                goto fail;
        /* the prune itself is evidence: a record in the chain */
        d = json_pack("{s:s,s:I,s:s,s:I}", "before", cut, "through_seq",
                      (json_int_t)through, "through_hash", through_hash,
                      "removed", (json_int_t)removed);
        detail = d ? dumps(d) : NULL;
        char id[AL_AUDIT_ID_SIZE], ts[32];
        new_id(id);
        al_audit_rec rec = {.kind = "pruned", .id = id, .detail = detail};
        if (!detail) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        /* the chain's tail is still the record we keep linking to: with
         * everything deleted, chain_tail falls back to the checkpoint */
        if ((r = link_and_insert(a, &rec, ts, err)) < 0)
                goto fail;
        if ((r = a->st->ops->commit(a->st, err)) < 0)
                return r;
        *ret_count = removed;
        return 0;
fail:
        a->st->ops->rollback(a->st);
        return r;
}

/* --- queries ---------------------------------------------------------- */

static json_t *flags_json(const char *flags) {
        json_t *arr = json_array();
        for (const char *p = flags; p && *p;) {
                size_t n = strcspn(p, ",");
                json_array_append_new(arr, json_stringn(p, n));
                p += n + (p[n] == ',');
        }
        return arr;
}

static void set_opt(json_t *o, const char *key, const char *v) {
        json_object_set_new(o, key, v ? al_jstr(v) : json_null());
}

/* One execution: its started (or refused) record and finished record. */
static json_t *exec_json(const al_audit_rec *s, const al_audit_rec *f) {
        json_t *o = json_object();
        json_t *req = json_loads(s->detail, 0, NULL);
        json_t *res = f ? json_loads(f->detail, 0, NULL) : NULL;
        bool refused = !strcmp(s->kind, "refused");
        const char *status;
        if (f)
                status = f->status ? f->status : "unknown";
        else if (refused)
                status = s->status ? s->status : "rejected";
        else
                status = owner_alive(json_object_get(req, "owner"))
                                 ? "running"
                                 : "interrupted";
        json_object_set_new(o, "id", al_jstr(s->id));
        json_object_set_new(o, "status", json_string(status));
        json_object_set_new(o, "started_at", al_jstr(s->ts));
        set_opt(o, "finished_at", f ? f->ts : NULL);
        set_opt(o, "source", s->source);
        set_opt(o, "actor", s->actor);
        set_opt(o, "user_id", s->user_id);
        set_opt(o, "agent_id", s->agent_id);
        set_opt(o, "language", s->language);
        json_object_set_new(o, "flags", flags_json(s->flags));
        json_object_set_new(o, "suspicious", json_boolean(s->flags != NULL));
        json_object_set_new(o, "request", req ? req : json_object());
        if (refused)
                json_object_set(o, "error", json_object_get(req, "error"));
        json_object_set_new(o, "result", res ? res : json_null());
        json_object_set_new(
                o, "chain",
                json_pack("{s:I,s:o}", refused ? "refused" : "started",
                          (json_int_t)s->seq, "finished",
                          f ? json_integer((json_int_t)f->seq) : json_null()));
        return o;
}

struct query_ctx {
        const al_audit_filter *f;
        uint64_t left; /* 0: no limit */
        int (*cb)(json_t *, void *);
        void *ctx;
};

static int query_pair(const al_audit_rec *s, const al_audit_rec *f,
                      void *ctx) {
        struct query_ctx *q = ctx;
        _cleanup_json_ json_t *o = exec_json(s, f);
        if (!o)
                return -ENOMEM;
        const char *st = json_string_value(json_object_get(o, "status"));
        if (q->f->interrupted && strcmp(st, "interrupted"))
                return 0;
        if (q->f->status && strcmp(st, q->f->status))
                return 0;
        int r = q->cb(o, q->ctx);
        if (r)
                return r;
        if (q->left && --q->left == 0)
                return 1;
        return 0;
}

int al_audit_query(al_audit *a, const al_audit_filter *f,
                   int (*cb)(json_t *, void *), void *ctx, al_error *err) {
        al_audit_filter sf = *f;
        /* interrupted and running are derived here, not stored */
        bool derived = f->status && (!strcmp(f->status, "interrupted") ||
                                     !strcmp(f->status, "running"));
        bool unfinished = f->interrupted || derived;
        if (derived)
                sf.status = NULL;
        struct query_ctx q = {.f = f, .left = f->limit, .cb = cb, .ctx = ctx};
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        r = a->st->ops->pairs(a->st, &sf, unfinished,
                              unfinished ? 0 : f->limit, query_pair, &q, err);
        a->st->ops->rollback(a->st);
        return r == 1 ? 0 : r;
}

/* One page: each execution's JSON appended to a text, within the caps. */
struct page_ctx {
        const al_audit_filter *f;
        al_audit_page *p;
        size_t cap;
        uint64_t scanned;
        uint64_t last; /* chain position of the last execution consumed */
};

static int page_add(struct page_ctx *c, const char *text, size_t n) {
        al_audit_page *p = c->p;
        if (p->len + n + 2 > c->cap) {
                size_t cap = c->cap ? c->cap : 16384;
                while (cap < p->len + n + 2)
                        cap *= 2;
                char *b = realloc(p->json, cap);
                if (!b)
                        return -ENOMEM;
                p->json = b;
                c->cap = cap;
        }
        memcpy(p->json + p->len, text, n);
        p->len += n;
        p->json[p->len] = '\0';
        return 0;
}

static int page_pair(const al_audit_rec *s, const al_audit_rec *f,
                     void *ctx) {
        struct page_ctx *c = ctx;
        al_audit_page *p = c->p;
        /* stopped before s: the next page starts after the last one
         * consumed */
        if ((p->max_scan && c->scanned == p->max_scan) ||
            (c->f->limit && p->count == c->f->limit)) {
                p->more = true;
                p->next = c->last;
                return 1;
        }
        c->scanned++;
        _cleanup_json_ json_t *o = exec_json(s, f);
        if (!o)
                return -ENOMEM;
        const char *st = json_string_value(json_object_get(o, "status"));
        if ((c->f->interrupted && strcmp(st, "interrupted")) ||
            (c->f->status && strcmp(st, c->f->status))) {
                c->last = s->seq;
                return 0;
        }
        _cleanup_free_ char *text =
                json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        size_t n = strlen(text);
        /* "[" + items + "," each + "]": at least one, whatever its size */
        if (p->count && p->max_bytes && p->len + 1 + n + 1 > p->max_bytes) {
                p->more = true;
                p->next = c->last;
                return 1;
        }
        int r = page_add(c, p->count ? "," : "[", 1);
        if (r == 0)
                r = page_add(c, text, n);
        if (r < 0)
                return r;
        p->count++;
        c->last = s->seq;
        return 0;
}

int al_audit_query_page(al_audit *a, const al_audit_filter *f,
                        al_audit_page *p, al_error *err) {
        al_audit_filter sf = *f;
        bool derived = f->status && (!strcmp(f->status, "interrupted") ||
                                     !strcmp(f->status, "running"));
        bool unfinished = f->interrupted || derived;
        if (derived)
                sf.status = NULL;
        p->json = NULL;
        p->len = 0;
        p->count = 0;
        p->more = false;
        p->next = 0;
        struct page_ctx c = {.f = f, .p = p};
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        /* one more than the limit in SQL: whether there are more */
        r = a->st->ops->pairs(a->st, &sf, unfinished,
                              unfinished || !f->limit ? 0 : f->limit + 1,
                              page_pair, &c, err);
        a->st->ops->rollback(a->st);
        if (r == 0 || r == 1)
                r = page_add(&c, p->count ? "]" : "[]", p->count ? 1 : 2);
        if (r < 0) {
                free(p->json);
                p->json = NULL;
                p->len = 0;
                if (r == -ENOMEM)
                        al_error_set(err, ENOMEM, "out of memory");
                return r;
        }
        return 0;
}

struct get_ctx {
        json_t *records;
        char *id;                 /* the first execution's */
        char cur[AL_AUDIT_ID_SIZE]; /* the group being read */
        int ids; /* distinct execution ids seen (records come grouped) */
};

static int get_rec(const al_audit_rec *rec, void *ctx) {
        struct get_ctx *g = ctx;
        if (!g->ids || strcmp(g->cur, rec->id)) {
                g->ids++;
                snprintf(g->cur, sizeof(g->cur), "%s", rec->id);
                if (g->ids == 1 && !(g->id = strdup(rec->id)))
                        return -ENOMEM;
        }
        if (g->ids > 1)
                return 0; /* ambiguous: only counted */
        json_array_append_new(
                g->records,
                json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "seq",
                          (json_int_t)rec->seq, "kind", rec->kind, "ts",
                          rec->ts, "prev", rec->prev, "hash", rec->hash,
                          "mac", rec->mac));
        return 0;
}

static int get_pair(const al_audit_rec *s, const al_audit_rec *f, void *ctx) {
        *(json_t **)ctx = exec_json(s, f);
        return 1;
}

int al_audit_get(al_audit *a, const char *id, json_t **ret, al_error *err) {
        return al_audit_get_as(a, id, NULL, ret, err);
}

int al_audit_get_as(al_audit *a, const char *id, const char *actor,
                    json_t **ret, al_error *err) {
        *ret = NULL;
        size_t n = strlen(id);
        if (n < 6 || n > 32 || strspn(id, "0123456789abcdef") != n)
                return al_error_set(err, EINVAL,
                                    "an execution id is 6 to 32 lowercase "
                                    "hex digits, got '%s'",
                                    id);
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        struct get_ctx g = {.records = json_array()};
        json_t *o = NULL;
        if (!g.records) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        /* only the actor's executions are looked at, so the answer for
         * another actor's id is the one for an id that does not exist */
        if ((r = a->st->ops->by_id(a->st, id, actor, get_rec, &g, err)) < 0)
                goto out;
        if (g.ids == 0)
                r = al_error_set(err, ENOENT, "no execution %s", id);
        else if (g.ids > 1)
                r = al_error_set(err, EEXIST,
                                 "id prefix %s matches %d executions; give "
                                 "more digits",
                                 id, g.ids);
        if (r < 0)
                goto out;
        al_audit_filter f = {.id = g.id};
        r = a->st->ops->pairs(a->st, &f, false, 1, get_pair, &o, err);
        if (r == 1)
                r = 0;
        if (r == 0 && !o) /* only a finished or pruned record is left */
                o = json_pack("{s:s,s:s}", "id", g.id, "status", "pruned");
out:
        a->st->ops->rollback(a->st);
        if (r < 0 || !o) {
                json_decref(o);
                json_decref(g.records);
                free(g.id);
                return r < 0 ? r : al_error_set(err, ENOMEM, "out of memory");
        }
        json_object_set_new(o, "records", g.records);
        free(g.id);
        *ret = o;
        return 0;
}

static void count_in(json_t *o, const char *key, const char *v) {
        json_t *m = json_object_get(o, key);
        if (!v)
                v = "(none)";
        json_int_t n = json_integer_value(json_object_get(m, v));
        json_object_set_new(m, v, json_integer(n + 1));
}

static int stats_one(json_t *e, void *ctx) {
        json_t *st = ctx;
        json_object_set_new(st, "executions",
                            json_integer(json_integer_value(json_object_get(
                                                 st, "executions")) +
                                         1));
        count_in(st, "by_status",
                 json_string_value(json_object_get(e, "status")));
        count_in(st, "by_language",
                 json_string_value(json_object_get(e, "language")));
        count_in(st, "by_source",
                 json_string_value(json_object_get(e, "source")));
        count_in(st, "by_actor",
                 json_string_value(json_object_get(e, "actor")));
        if (json_is_true(json_object_get(e, "suspicious"))) {
                json_object_set_new(
                        st, "suspicious",
                        json_integer(json_integer_value(json_object_get(
                                             st, "suspicious")) +
                                     1));
                size_t i;
                json_t *fl;
                json_array_foreach(json_object_get(e, "flags"), i, fl)
                        count_in(st, "by_flag", json_string_value(fl));
        }
        const char *ts = json_string_value(json_object_get(e, "started_at"));
        const char *first = json_string_value(json_object_get(st, "first"));
        if (ts && (!first || strcmp(ts, first) < 0))
                json_object_set_new(st, "first", json_string(ts));
        const char *last = json_string_value(json_object_get(st, "last"));
        if (ts && (!last || strcmp(ts, last) > 0))
                json_object_set_new(st, "last", json_string(ts));
        return 0;
}

int al_audit_stats(al_audit *a, const al_audit_filter *f, json_t **ret,
                   al_error *err) {
        json_t *st = json_pack("{s:i,s:i,s:{},s:{},s:{},s:{},s:{},s:n,s:n}",
                               "executions", 0, "suspicious", 0, "by_status",
                               "by_language", "by_source", "by_actor",
                               "by_flag", "first", "last");
        if (!st)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_filter all = *f;
        all.limit = 0;
        int r = al_audit_query(a, &all, stats_one, st, err);
        uint64_t seq = 0;
        char head[AL_AUDIT_HASH_SIZE];
        if (r == 0)
                r = al_audit_head(a, &seq, head, err);
        if (r < 0) {
                json_decref(st);
                return r;
        }
        json_object_set_new(st, "records", json_integer((json_int_t)seq));
        json_object_set_new(st, "head", json_string(head));
        json_object_set_new(st, "store", json_string(a->st->ops->name));
        json_object_set_new(st, "bytes",
                            json_integer((json_int_t)a->st->ops->size(a->st)));
        json_object_set_new(st, "state_dir", json_string(a->dir));
        *ret = st;
        return 0;
}

/* --- time ------------------------------------------------------------- */

int al_audit_parse_time(const char *in, char out[32], al_error *err) {
        if (!in || !*in)
                return al_error_set(err, EINVAL, "empty time");
        size_t n = strlen(in);
        char unit = in[n - 1];
        if (strchr("smhd", unit) && n >= 2 && n < 16 &&
            strspn(in, "0123456789") == n - 1) {
                char num[16];
                memcpy(num, in, n - 1);
                num[n - 1] = '\0';
                uint64_t v;
                if (al_parse_u64(num, &v) < 0 || v > 100ull * 365 * 86400)
                        return al_error_set(err, ERANGE, "age out of range: %s",
                                            in);
                uint64_t mul = unit == 's' ? 1 : unit == 'm' ? 60
                                           : unit == 'h'    ? 3600
                                                            : 86400;
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                time_t when = t.tv_sec - (time_t)(v * mul);
                struct tm tm;
                gmtime_r(&when, &tm);
                snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         t.tv_nsec / 1000000);
                return 0;
        }
        int Y = 0, M = 0, D = 0, h = 0, m = 0, sec = 0, ms = 0, used = 0;
        int k = sscanf(in, "%4d-%2d-%2d%n", &Y, &M, &D, &used);
        const char *p = in + used;
        if (k == 3 && used == 10 && (*p == 'T' || *p == ' ')) {
                int u2 = 0;
                if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &u2) == 2 && u2 == 5) {
                        p += 1 + u2;
                        if (*p == ':') {
                                int u3 = 0;
                                if (sscanf(p + 1, "%2d%n", &sec, &u3) != 1 ||
                                    u3 != 2)
                                        goto bad;
                                p += 1 + u3;
                                if (*p == '.') {
                                        int u4 = 0;
                                        if (sscanf(p + 1, "%3d%n", &ms, &u4) !=
                                                    1 ||
                                            u4 != 3)
                                                goto bad;
                                        p += 1 + u4;
                                }
                        }
                } else
                        goto bad;
        }
        if (k != 3 || used != 10)
                goto bad;
        if (*p == 'Z')
                p++;
        if (*p)
                goto bad;
        /* a real date: timegm must give the same fields back */
        struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                        .tm_hour = h, .tm_min = m, .tm_sec = sec};
        time_t t = timegm(&tm);
        struct tm back;
        if (t == (time_t)-1 || !gmtime_r(&t, &back) ||
            back.tm_year != Y - 1900 || back.tm_mon != M - 1 ||
            back.tm_mday != D || back.tm_hour != h || back.tm_min != m ||
            back.tm_sec != sec)
                goto bad;
        snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Y, M, D, h, m,
                 sec, ms);
        return 0;
bad:
        return al_error_set(err, EINVAL,
                            "bad time '%s': want YYYY-MM-DD, "
                            "YYYY-MM-DDTHH:MM[:SS[.mmm]][Z] (UTC) or an age "
                            "like 30m, 2h, 7d",
                            in);
}
