/* SPDX-License-Identifier: MIT */
/*
 * The audit log: what a record holds, the hash chain, the HMAC, appending
 * the started, finished and refused records (and the alerts they raise),
 * the head and prune. Opening (state directory, key, config) is in
 * audit-open.c, verify in audit-verify.c, the queries in audit-query.c;
 * storage is behind audit-store.h.
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
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* What a record keeps of each field a caller gives. A longer value is
 * kept as its size, its SHA-256 and a bounded preview ({bytes, sha256,
 * preview, truncated} in detail; "PREVIEW...[N bytes, sha256 H]" in a
 * column), so a record stays small whatever a request holds and nothing
 * is lost silently. The code has its own cap (audit-code-cap); stdin,
 * input files, stdout and stderr are kept as hashes and previews. */
#define AUDIT_COLUMN_CAP 256 /* source, actor, user_id, agent_id, language */
#define AUDIT_COLUMN_PREVIEW 128 /* kept of a column over its cap */
#define AUDIT_FLAGS_CAP 4096     /* the flags column (patterns and rules) */
#define AUDIT_ARG_CAP 1024       /* one argument */
#define AUDIT_MAX_ARGS_KEPT 64   /* arguments kept; args_count counts all */
#define AUDIT_NAME_CAP 1024      /* a file or env name, collect glob, mime */
#define AUDIT_TEXT_CAP 4096      /* an error message or reason */
#define AUDIT_FINDINGS_CAP 65536 /* the findings, as JSON text */

static char *dup_opt(const char *s) {
        return s ? strdup(s) : NULL;
}

void audit_started_info_clear(struct started_info *si) {
        free(si->actor);
        free(si->user_id);
        free(si->agent_id);
        free(si->language);
        free(si->flags);
        *si = (struct started_info){0};
}

/* Who and what of rec, whatever its kind, into si (the first call). */
static int take_who(const al_audit_rec *rec, void *ctx) {
        struct started_info *si = ctx;
        if (si->found)
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

static int find_started(const al_audit_rec *rec, void *ctx) {
        return strcmp(rec->kind, "started") ? 0 : take_who(rec, ctx);
}

/* --- small helpers ---------------------------------------------------- */

static void sha256_hex(const void *data, size_t len,
                       char out[AL_AUDIT_HASH_SIZE]) {
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, data, len);
        audit_hex(h, sizeof(h), out);
}

/* --- canonical encoding, hash, MAC ------------------------------------ */

static void put_u64(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (unsigned char)v;
}

int al_audit_encode(const al_audit_rec *r, unsigned char **ret,
                    size_t *ret_len) {
        const char *f[] = {r->kind,   r->id,      r->ts,       r->source,
                           r->actor,  r->user_id, r->agent_id, r->language,
                           r->status, r->flags,   r->detail,   r->prev};
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
        audit_hex(h, sizeof(h), hash);
        audit_hex(m, sizeof(m), mac);
        return 0;
}

void audit_checkpoint_mac(const unsigned char *key,
                          const al_audit_checkpoint *cp,
                          char out[AL_AUDIT_HASH_SIZE]) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "airlock-checkpoint-v1\n%llu\n%s\n%llu\n%s",
                         (unsigned long long)cp->seq, cp->hash,
                         (unsigned long long)cp->count, cp->ts);
        unsigned char m[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256(m, (const unsigned char *)msg, (size_t)n, key);
        audit_hex(m, sizeof(m), out);
}

/* --- appending -------------------------------------------------------- */

/* The position and hash a new record links to: the last record, or the
 * checkpoint when everything before was pruned, or the start. */
int audit_chain_tail(al_audit *a, uint64_t *seq, char hash[AL_AUDIT_HASH_SIZE],
                     al_error *err) {
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
int audit_link_and_insert(al_audit *a, al_audit_rec *rec, char ts[32],
                          al_error *err) {
        char prev[AL_AUDIT_HASH_SIZE], hash[AL_AUDIT_HASH_SIZE],
                mac[AL_AUDIT_HASH_SIZE];
        uint64_t seq;
        int r = audit_chain_tail(a, &seq, prev, err);
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
        if ((r = audit_link_and_insert(a, rec, ts, err)) < 0) {
                a->st->ops->rollback(a->st);
                return r;
        }
        /* a finished record need not wait for the disk: losing it in a
         * crash shows the run as interrupted, as a crash during it would */
        return a->st->ops->commit(a->st, strcmp(rec->kind, "finished") != 0,
                                  err);
}

/* --- what a record holds --------------------------------------------- */

void audit_new_id(char id[AL_AUDIT_ID_SIZE]) {
        unsigned char b[16];
        randombytes_buf(b, sizeof(b));
        audit_hex(b, sizeof(b), id);
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

bool audit_owner_alive(json_t *owner) {
        json_int_t pid = json_integer_value(json_object_get(owner, "pid"));
        if (pid <= 0)
                return false;
        _cleanup_json_ json_t *me = owner_json();
        if (!me ||
            strcmp(json_string_value(json_object_get(me, "boot")),
                   json_string_value(json_object_get(owner, "boot")) ?: ""))
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
                                     json_integer_value(
                                             json_object_get(owner, "start"));
        }
        fclose(f);
        return alive;
}

/* {bytes, sha256, preview[, truncated]} of a buffer. */
static json_t *blob_json(const unsigned char *buf, size_t len, size_t preview,
                         bool truncated) {
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(buf ? (const void *)buf : "", len, h);
        json_t *o =
                json_pack("{s:I,s:s}", "bytes", (json_int_t)len, "sha256", h);
        size_t n = len < preview ? len : preview;
        json_object_set_new(o, "preview",
                            al_jstrn(buf ? (const void *)buf : "", n));
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
        *c = (struct who_cols){who->source,   who->actor, who->user_id,
                               who->agent_id, language,   {0}};
        bool oom = false;
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                if ((c->owned[i] =
                             capped_column(*v[i], AUDIT_COLUMN_CAP, &oom)))
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
        _cleanup_free_ char *all = audit_dumps(findings);
        size_t n = all ? strlen(all) : 0;
        if (n <= AUDIT_FINDINGS_CAP) {
                json_object_set(d, "findings", findings);
                return;
        }
        json_t *kept = json_array();
        size_t used = 2, i;
        json_t *f;
        json_array_foreach(findings, i, f) {
                _cleanup_free_ char *one = audit_dumps(f);
                if (!one || used + strlen(one) + 1 > AUDIT_FINDINGS_CAP)
                        break;
                used += strlen(one) + 1;
                json_array_append(kept, f);
        }
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(all, n, h);
        json_object_set_new(d, "findings", kept);
        json_object_set_new(
                d, "findings_total",
                json_integer((json_int_t)json_array_size(findings)));
        json_object_set_new(d, "findings_bytes", json_integer((json_int_t)n));
        json_object_set_new(d, "findings_sha256", json_string(h));
}

/* The code: hash, size, a preview, and the code itself up to the cap
 * (text when UTF-8, else base64). */
static json_t *code_json(const al_audit *a, const unsigned char *code,
                         size_t code_len) {
        json_t *o = blob_json(code, code_len, a->preview, false);
        size_t kept = code_len < a->code_cap ? code_len : a->code_cap;
        /* cut at a character boundary */
        while (kept && kept < code_len && (code[kept] & 0xc0) == 0x80)
                kept--;
        if (al_utf8_valid(code, kept))
                json_object_set_new(o, "text",
                                    json_stringn((const char *)code, kept));
        else {
                _cleanup_free_ char *b64 = al_base64_encode(code, kept);
                json_object_set_new(o, "base64", json_string(b64 ? b64 : ""));
        }
        json_object_set_new(o, "stored", json_integer((json_int_t)kept));
        if (kept < code_len)
                json_object_set_new(o, "truncated", json_true());
        return o;
}

/* A file as a record names it: its name (capped), size and SHA-256. */
static json_t *file_json(const char *name, const void *data, size_t len) {
        char h[AL_AUDIT_HASH_SIZE];
        sha256_hex(data ? data : "", len, h);
        return json_pack("{s:o,s:I,s:s}", "name",
                         capped_str(name, AUDIT_NAME_CAP), "bytes",
                         (json_int_t)len, "sha256", h);
}

static json_t *spec_json(const al_audit *a, const al_spec *s) {
        json_t *d = json_object();
        if (!s)
                return d;
        if (s->has_code)
                json_object_set_new(d, "code",
                                    code_json(a, s->code, s->code_len));
        json_t *in = json_array();
        for (size_t i = 0; i < s->n_files; i++)
                json_array_append_new(in, file_json(s->files[i].name,
                                                    s->files[i].data,
                                                    s->files[i].len));
        json_object_set_new(d, "inputs", in);
        if (s->stdin_len)
                json_object_set_new(
                        d, "stdin",
                        blob_json(s->stdin_data, s->stdin_len, 0, false));
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
                json_array_append_new(
                        env, capped_str(name ? name : "", AUDIT_NAME_CAP));
        }
        json_object_set_new(d, "env", env);
        json_t *col = json_array();
        for (size_t i = 0; i < s->n_collect; i++)
                json_array_append_new(
                        col, capped_str(s->collect[i], AUDIT_NAME_CAP));
        json_object_set_new(d, "collect", col);
        json_object_set_new(d, "limits", al_limits_json(&s->limits));
        return d;
}

/* The suspicious-pattern flags of the code (case-insensitive substrings,
 * in the configured order) and of static-validation findings
 * ("policy:RULE"), comma-separated; NULL if none. */
/* Append ",PREFIXNAME" (no comma first) to the growing list *out. */
static int flag_add(char **out, size_t *len, size_t *cap, const char *prefix,
                    const char *name) {
        size_t need = *len + strlen(prefix) + strlen(name) + 2;
        if (need > *cap) {
                char *n = realloc(*out, need * 2);
                if (!n)
                        return -ENOMEM;
                *out = n;
                *cap = need * 2;
        }
        *len += (size_t)snprintf(*out + *len, *cap - *len, "%s%s%s",
                                 *len ? "," : "", prefix, name);
        return 0;
}

static char *flags_of(const al_audit *a, const unsigned char *code,
                      size_t code_len, json_t *findings) {
        size_t cap = 256, len = 0;
        char *out = malloc(cap);
        _cleanup_free_ char *low = NULL;
        if (!out)
                return NULL;
        out[0] = '\0';
        if (code && code_len) {
                low = malloc(code_len);
                if (low)
                        for (size_t i = 0; i < code_len; i++)
                                low[i] = (char)tolower(code[i]);
        }
        for (size_t i = 0; low && i < a->n_patterns; i++) {
                const char *p = a->patterns[i];
                if (memmem(low, code_len, p, strlen(p)) &&
                    flag_add(&out, &len, &cap, "", p) < 0)
                        break;
        }
        size_t i;
        json_t *f;
        json_array_foreach(findings, i, f) {
                const char *rule =
                        json_string_value(json_object_get(f, "rule"));
                if (rule && flag_add(&out, &len, &cap, "policy:", rule) < 0)
                        break;
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
                rec->id, "source", rec->source, "actor", rec->actor, "user_id",
                rec->user_id, "agent_id", rec->agent_id, "language",
                rec->language, "status", rec->status, "flags", flags);
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

/* A new record of kind (started, refused) for who and s, with detail d:
 * its columns capped, a new id, appended. n keeps what the record points
 * to until new_rec_free. */
struct new_rec {
        al_audit_rec rec;
        struct who_cols c;
        char *detail, *flags;
        char ts[32];
};

static void new_rec_free(struct new_rec *n) {
        who_cols_free(&n->c);
        free(n->detail);
        free(n->flags);
}

static int new_rec_append(al_audit *a, struct new_rec *n, const char *kind,
                          const char *status, const al_audit_who *who,
                          const al_spec *s, json_t *findings, json_t *d,
                          char id[AL_AUDIT_ID_SIZE], al_error *err) {
        *n = (struct new_rec){0};
        n->detail = audit_dumps(d);
        bool code = s && s->has_code;
        n->flags = flags_cap(flags_of(a, code ? s->code : NULL,
                                      code ? s->code_len : 0, findings));
        if (!n->detail)
                return al_error_set(err, ENOMEM, "out of memory");
        int r = who_cols_cap(&n->c, who, s && s->lang ? s->lang->name : NULL,
                             err);
        if (r < 0)
                return r;
        audit_new_id(id);
        n->rec = (al_audit_rec){
                .kind = kind,
                .id = id,
                .source = n->c.source,
                .actor = n->c.actor,
                .user_id = n->c.user_id,
                .agent_id = n->c.agent_id,
                .language = n->c.language,
                .status = status,
                .flags = n->flags,
                .detail = n->detail,
        };
        return append(a, &n->rec, n->ts, err);
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
        struct new_rec n;
        if ((r = new_rec_append(a, &n, "started", NULL, who, s, findings, d, id,
                                err)) < 0) {
                new_rec_free(&n);
                return r;
        }
        /* the finished record repeats who and what: keep it at hand */
        if (!a->last)
                a->last = calloc(1, sizeof(*a->last));
        if (a->last) {
                audit_started_info_clear(a->last);
                find_started(&n.rec, a->last);
        }
        if (n.flags && alert_wanted(a, "flagged"))
                raise_alert(a, "flagged", &n.rec, NULL);
        new_rec_free(&n);
        return 0;
}

static json_t *result_detail(const al_audit *a, const al_result *r) {
        json_t *d = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I}", "reason", r->reason,
                              "exit_code", r->exit_code, "signal", r->signal,
                              "wall_ms", (json_int_t)r->wall_ms, "cpu_ms",
                              (json_int_t)r->cpu_ms, "memory_peak_bytes",
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
        if (r->start[0])
                json_object_set_new(d, "start", json_string(r->start));
        if (r->network_json) {
                json_t *nw = json_loads(r->network_json, JSON_ALLOW_NUL, NULL);
                if (nw)
                        json_object_set_new(d, "network", nw);
        }
        /* why a run of a server with warm pools was cold */
        if (r->start_reason[0])
                json_object_set_new(d, "start_reason",
                                    json_string(r->start_reason));
        json_object_set_new(d, "stdout",
                            blob_json(r->stdout_buf, r->stdout_len, a->preview,
                                      r->stdout_truncated));
        json_object_set_new(d, "stderr",
                            blob_json(r->stderr_buf, r->stderr_len, a->preview,
                                      r->stderr_truncated));
        json_t *files = json_array();
        for (size_t i = 0; i < r->n_files; i++) {
                json_t *f = file_json(r->files[i].name, r->files[i].data,
                                      r->files[i].size);
                json_object_set_new(
                        f, "mime",
                        capped_str(r->files[i].mime ? r->files[i].mime : "",
                                   AUDIT_NAME_CAP));
                json_array_append_new(files, f);
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

/* Denied egress in a run's network report: how many host:port entries
 * an alert names before "and N more" (the report already coalesces
 * repeats of one host:port with a count). */
#define AUDIT_NET_DENIED_SHOWN 8

/* The denied attempts of a run's network report as the reason of one
 * alert ("egress denied: a.example:443 (x3), 10.0.0.1:80"), or NULL when
 * none was denied. Hosts come from the code: each is capped, and the
 * alert line is made safe for a terminal where it is printed. */
static char *net_denied(const al_result *res) {
        if (!res->network_json)
                return NULL;
        _cleanup_json_ json_t *nw =
                json_loads(res->network_json, JSON_ALLOW_NUL, NULL);
        size_t i, shown = 0, more = 0;
        json_t *x;
        char buf[2048];
        size_t o = (size_t)snprintf(buf, sizeof(buf), "egress denied:");
        json_array_foreach(nw, i, x) {
                if (!json_is_false(json_object_get(x, "allowed")))
                        continue;
                if (shown == AUDIT_NET_DENIED_SHOWN) {
                        more++;
                        continue;
                }
                const char *host =
                        json_string_value(json_object_get(x, "host"));
                json_int_t count =
                        json_integer_value(json_object_get(x, "count"));
                char c[32] = "";
                if (count > 1)
                        snprintf(c, sizeof(c), " (x%lld)", (long long)count);
                int k = snprintf(buf + o, sizeof(buf) - o, "%s %.128s:%lld%s",
                                 shown ? "," : "", host ? host : "?",
                                 (long long)json_integer_value(
                                         json_object_get(x, "port")),
                                 c);
                if (k > 0 && (size_t)k < sizeof(buf) - o)
                        o += (size_t)k;
                shown++;
        }
        if (!shown)
                return NULL;
        if (more)
                snprintf(buf + o, sizeof(buf) - o, ", and %zu more", more);
        return strdup(buf);
}

int al_audit_finished(al_audit *a, const char *id, const al_result *res,
                      al_error *err) {
        _cleanup_json_ json_t *d = result_detail(a, res);
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        struct started_info si = {0};
        int r = 0;
        if (a->last && a->last->found && !strcmp(a->last->id, id)) {
                si = *a->last; /* taken over */
                *a->last = (struct started_info){0};
        } else
                r = a->st->ops->by_id(a->st, id, NULL, find_started, &si, err);
        if (r == 0 && !si.found)
                r = al_error_set(err, ENOENT, "no started record for %s", id);
        /* a denied connection flags the run: its finished record carries
         * net_denied besides the started record's flags */
        _cleanup_free_ char *denied = net_denied(res), *flags = NULL;
        if (denied) {
                if (asprintf(&flags, "%s%snet_denied", si.flags ? si.flags : "",
                             si.flags ? "," : "") < 0)
                        flags = NULL;
                flags = flags ? flags_cap(flags) : NULL;
        }
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
                .flags = flags ? flags : si.flags,
                .detail = detail,
        };
        if (r == 0)
                r = append(a, &rec, ts, err);
        if (r == 0 && alert_wanted(a, rec.status))
                raise_alert(a, "failure", &rec, res->reason);
        /* once per run, all its denials in one reason */
        if (r == 0 && denied && alert_wanted(a, "flagged"))
                raise_alert(a, "flagged", &rec, denied);
        audit_started_info_clear(&si);
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
        struct new_rec n;
        r = new_rec_append(a, &n, "refused", "rejected", who, s, findings, d,
                           id, err);
        if (r == 0 && alert_wanted(a, "refused")) {
                /* the alert's reason within the same cap as the record */
                _cleanup_free_ char *m =
                        message ? strndup(message,
                                          utf8_cut(message, strlen(message),
                                                   AUDIT_TEXT_CAP))
                                : NULL;
                raise_alert(a, "refused", &n.rec, m);
        }
        new_rec_free(&n);
        return r;
}

/* --- sessions --------------------------------------------------------- */

/* A stable word a caller gives (a status, a reason): [a-z_], 1 to this
 * many bytes, so that it is a key for the filters and never text. */
#define AUDIT_WORD_CAP 32

static bool word_ok(const char *w) {
        size_t n = w ? strlen(w) : 0;
        return n && n <= AUDIT_WORD_CAP &&
               strspn(w, "abcdefghijklmnopqrstuvwxyz_") == n;
}

static bool hex_ok(const char *h, size_t n) {
        return h && strlen(h) == n && strspn(h, "0123456789abcdef") == n;
}

static int bad_session_id(const char *id, al_error *err) {
        if (hex_ok(id, AL_AUDIT_ID_SIZE - 1))
                return 0;
        return al_error_set(err, EINVAL,
                            "a session id is 32 lowercase hex digits");
}

/* What a session record must find (need) and must not (absent) in the
 * chain, decided under the write lock that appends it: a record of a
 * session that does not exist or has ended, or a second record of one
 * cell, is refused rather than chained. */
struct sess_check {
        const char *need_id, *need_kind; /* its who is copied to the rec */
        const char *absent_id[2], *absent_kind[2];
        int absent_errno[2];
};

static int found_cb(const al_audit_rec *rec, void *ctx) {
        (void)rec;
        *(bool *)ctx = true;
        return 0;
}

/* Check c, copy who from the needed record into rec, append rec (its
 * kind, id, status, detail set; flags: the needed record's unless set),
 * commit. rec points into si (and ts) until the caller clears si. */
static int sess_append(al_audit *a, const struct sess_check *c,
                       al_audit_rec *rec, bool durable, struct started_info *si,
                       char ts[32], al_error *err) {
        const al_audit_store_ops *op = a->st->ops;
        int r = op->begin(a->st, true, err);
        if (r < 0)
                return r;
        if (c->need_id &&
            (r = op->first_of(a->st, c->need_id, c->need_kind, take_who, si,
                              err)) == 0 &&
            !si->found)
                r = al_error_set(err, ENOENT, "no %s %s",
                                 strcmp(c->need_kind, "session_created")
                                         ? "started cell"
                                         : "session",
                                 c->need_id);
        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(c->absent_id); i++) {
                bool found = false;
                if (!c->absent_id[i])
                        continue;
                r = op->first_of(a->st, c->absent_id[i], c->absent_kind[i],
                                 found_cb, &found, err);
                if (r == 0 && found)
                        r = al_error_set(err, c->absent_errno[i],
                                         "%s %s: there is a %s record "
                                         "already",
                                         rec->kind, c->absent_id[i],
                                         c->absent_kind[i]);
        }
        if (r == 0 && si->found) {
                rec->source = si->source;
                rec->actor = si->actor;
                rec->user_id = si->user_id;
                rec->agent_id = si->agent_id;
                rec->language = si->language;
                if (!rec->flags)
                        rec->flags = si->flags;
        }
        if (r == 0)
                r = audit_link_and_insert(a, rec, ts, err);
        if (r == 0)
                r = op->commit(a->st, durable, err);
        else
                op->rollback(a->st);
        return r;
}

int al_audit_session_created(al_audit *a, const al_audit_who *who,
                             const al_audit_session *sess,
                             char id[AL_AUDIT_ID_SIZE], al_error *err) {
        static const al_audit_who nobody = {0};
        if (!who)
                who = &nobody;
        if (id[0] && bad_session_id(id, err) < 0)
                return -EINVAL;
        if (!id[0])
                audit_new_id(id);
        _cleanup_json_ json_t *d =
                json_pack("{s:s,s:o,s:I,s:I,s:I}", "session_id", id, "owner",
                          owner_json(), "idle_timeout_s",
                          (json_int_t)sess->idle_timeout_s, "max_lifetime_s",
                          (json_int_t)sess->max_lifetime_s, "max_cells",
                          (json_int_t)sess->max_cells);
        if (d && sess->limits)
                json_object_set_new(d, "limits", al_limits_json(sess->limits));
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        struct who_cols wc;
        int r = who_cols_cap(&wc, who, sess->language, err);
        al_audit_rec rec = {
                .kind = "session_created",
                .id = id,
                .source = wc.source,
                .actor = wc.actor,
                .user_id = wc.user_id,
                .agent_id = wc.agent_id,
                .language = wc.language,
                .detail = detail,
        };
        char ts[32];
        bool found = false;
        if (r == 0 && (r = a->st->ops->begin(a->st, true, err)) == 0) {
                /* an id the caller chose is new (a made one is random) */
                r = a->st->ops->first_of(a->st, id, "session_created", found_cb,
                                         &found, err);
                if (r == 0 && found)
                        r = al_error_set(err, EEXIST, "session %s exists", id);
                if (r == 0)
                        r = audit_link_and_insert(a, &rec, ts, err);
                if (r == 0)
                        r = a->st->ops->commit(a->st, true, err);
                else
                        a->st->ops->rollback(a->st);
        }
        who_cols_free(&wc);
        return r;
}

int al_audit_cell_started(al_audit *a, const char *session_id, uint64_t seq,
                          const void *code, size_t code_len,
                          const al_limits *limits,
                          char cell_id[AL_AUDIT_CELL_ID_SIZE], al_error *err) {
        if (bad_session_id(session_id, err) < 0)
                return -EINVAL;
        if (!seq)
                return al_error_set(err, EINVAL, "cells are counted from 1");
        snprintf(cell_id, AL_AUDIT_CELL_ID_SIZE, "%s.%llu", session_id,
                 (unsigned long long)seq);
        _cleanup_json_ json_t *d =
                json_pack("{s:s,s:I,s:o,s:o}", "session_id", session_id, "seq",
                          (json_int_t)seq, "owner", owner_json(), "code",
                          code_json(a, code, code_len));
        if (d && limits)
                json_object_set_new(d, "limits", al_limits_json(limits));
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        _cleanup_free_ char *flags =
                flags_cap(flags_of(a, code, code_len, NULL));
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_rec rec = {.kind = "cell_started",
                            .id = cell_id,
                            .flags = flags,
                            .detail = detail};
        const struct sess_check c = {
                .need_id = session_id,
                .need_kind = "session_created",
                .absent_id = {session_id, cell_id},
                .absent_kind = {"session_ended", "cell_started"},
                .absent_errno = {ESRCH, EEXIST},
        };
        struct started_info si = {0};
        char ts[32];
        /* durable: the code reaches the sandbox only after this */
        int r = sess_append(a, &c, &rec, true, &si, ts, err);
        if (r == 0 && flags && alert_wanted(a, "flagged"))
                raise_alert(a, "flagged", &rec, NULL);
        audit_started_info_clear(&si);
        return r;
}

static json_t *words_json(const char *list) {
        json_t *arr = json_array();
        for (const char *p = list; p && *p;) {
                size_t n = strcspn(p, ",");
                _cleanup_free_ char *w = strndup(p, n);
                json_array_append_new(arr,
                                      capped_str(w ? w : "", AUDIT_NAME_CAP));
                p += n + (p[n] == ',');
        }
        return arr;
}

int al_audit_cell_finished(al_audit *a, const char *cell_id,
                           const al_audit_cell *c, al_error *err) {
        const char *dot = cell_id ? strchr(cell_id, '.') : NULL;
        uint64_t seq = 0;
        char sid[AL_AUDIT_ID_SIZE];
        if (!dot || dot - cell_id != AL_AUDIT_ID_SIZE - 1 ||
            al_parse_u64(dot + 1, &seq) < 0 || !seq)
                return al_error_set(err, EINVAL,
                                    "a cell id is SESSION.SEQ, got '%s'",
                                    cell_id ? cell_id : "");
        snprintf(sid, sizeof(sid), "%.*s", (int)(dot - cell_id), cell_id);
        if (bad_session_id(sid, err) < 0)
                return -EINVAL;
        if (!word_ok(c->status))
                return al_error_set(err, EINVAL,
                                    "a cell's status is a word of a-z and "
                                    "_ (at most %d bytes)",
                                    AUDIT_WORD_CAP);
        _cleanup_json_ json_t *d = json_pack(
                "{s:s,s:I,s:s,s:o,s:I,s:I,s:o,s:o,s:o}", "session_id", sid,
                "seq", (json_int_t)seq, "status", c->status, "limits_hit",
                words_json(c->limits_hit), "wall_ms", (json_int_t)c->wall_ms,
                "cpu_ms", (json_int_t)c->cpu_ms, "execution_count",
                c->execution_count >= 0
                        ? json_integer((json_int_t)c->execution_count)
                        : json_null(),
                "error_name", capped_str(c->error_name, AUDIT_NAME_CAP),
                "stdout",
                blob_json(c->stdout_buf, c->stdout_len, a->preview,
                          c->stdout_truncated));
        if (d)
                json_object_set_new(d, "stderr",
                                    blob_json(c->stderr_buf, c->stderr_len,
                                              a->preview, c->stderr_truncated));
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_rec rec = {.kind = "cell",
                            .id = cell_id,
                            .status = c->status,
                            .detail = detail};
        const struct sess_check k = {
                .need_id = cell_id,
                .need_kind = "cell_started",
                .absent_id = {cell_id},
                .absent_kind = {"cell"},
                .absent_errno = {EEXIST},
        };
        /* not durable, as a run's finished record: losing it in a host
         * crash shows the cell as interrupted, never a gap */
        struct started_info si = {0};
        char ts[32];
        int r = sess_append(a, &k, &rec, false, &si, ts, err);
        if (r == 0 && alert_wanted(a, c->status))
                raise_alert(a, "failure", &rec, c->error_name);
        audit_started_info_clear(&si);
        return r;
}

/* A durable record of a session that exists and has not ended (-ENOENT,
 * -ESRCH else), checked under the write lock. */
static int live_session_append(al_audit *a, const char *session_id,
                               al_audit_rec *rec, al_error *err) {
        const struct sess_check c = {
                .need_id = session_id,
                .need_kind = "session_created",
                .absent_id = {session_id},
                .absent_kind = {"session_ended"},
                .absent_errno = {ESRCH},
        };
        struct started_info si = {0};
        char ts[32];
        int r = sess_append(a, &c, rec, true, &si, ts, err);
        audit_started_info_clear(&si);
        return r;
}

int al_audit_session_file(al_audit *a, const char *session_id,
                          al_audit_file_op op, const char *path, uint64_t size,
                          const char *sha256, al_error *err) {
        static const char *const kinds[] = {
                [AL_AUDIT_FILE_PUT] = "file_put",
                [AL_AUDIT_FILE_GET] = "file_get",
                [AL_AUDIT_FILE_DELETE] = "file_delete",
        };
        if (bad_session_id(session_id, err) < 0)
                return -EINVAL;
        if ((unsigned)op >= ARRAY_SIZE(kinds) || !path)
                return al_error_set(err, EINVAL, "no such file event");
        if (sha256 && !hex_ok(sha256, AL_AUDIT_HASH_SIZE - 1))
                return al_error_set(err, EINVAL,
                                    "sha256 is 64 lowercase hex digits");
        _cleanup_json_ json_t *d =
                json_pack("{s:s,s:o,s:I,s:s?}", "session_id", session_id,
                          "path", capped_str(path, AUDIT_NAME_CAP), "bytes",
                          (json_int_t)size, "sha256", sha256);
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_rec rec = {
                .kind = kinds[op], .id = session_id, .detail = detail};
        return live_session_append(a, session_id, &rec, err);
}

int al_audit_session_ended(al_audit *a, const char *session_id,
                           const char *reason, uint64_t cells, uint64_t wall_ms,
                           al_error *err) {
        return al_audit_session_ended_net(a, session_id, reason, cells,
                                          wall_ms, NULL, err);
}

int al_audit_session_ended_net(al_audit *a, const char *session_id,
                               const char *reason, uint64_t cells,
                               uint64_t wall_ms, const char *network_json,
                               al_error *err) {
        if (bad_session_id(session_id, err) < 0)
                return -EINVAL;
        if (!word_ok(reason))
                return al_error_set(err, EINVAL,
                                    "a session's end reason is a word of a-z "
                                    "and _ (at most %d bytes)",
                                    AUDIT_WORD_CAP);
        _cleanup_json_ json_t *d = json_pack(
                "{s:s,s:s,s:I,s:I}", "session_id", session_id, "reason", reason,
                "cells", (json_int_t)cells, "wall_ms", (json_int_t)wall_ms);
        /* a session with an allowlist: its proxy's report, whole */
        json_t *nw = network_json
                             ? json_loads(network_json, JSON_ALLOW_NUL, NULL)
                             : NULL;
        if (d && nw)
                json_object_set_new(d, "network", nw);
        else
                json_decref(nw);
        _cleanup_free_ char *detail = d ? audit_dumps(d) : NULL;
        if (!detail)
                return al_error_set(err, ENOMEM, "out of memory");
        al_audit_rec rec = {.kind = "session_ended",
                            .id = session_id,
                            .status = reason,
                            .detail = detail};
        return live_session_append(a, session_id, &rec, err);
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

/* --- head ------------------------------------------------------------ */

int al_audit_head(al_audit *a, uint64_t *seq, char hash[AL_AUDIT_HASH_SIZE],
                  al_error *err) {
        int r = a->st->ops->begin(a->st, false, err);
        if (r < 0)
                return r;
        r = audit_chain_tail(a, seq, hash, err);
        a->st->ops->rollback(a->st);
        return r;
}
