/* SPDX-License-Identifier: MIT */
/* API keys in STATE/keys.db: create, list, revoke, verify (airlock-keys.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "airlock-keys.h"
#include "audit-store.h"
#include "egress.h"
#include "error.h"
#include "util.h"

struct al_keys {
        sqlite3 *db;
};

static const struct {
        const char *name;
        unsigned bit;
} SCOPES[] = {
        {"execute", AL_SCOPE_EXECUTE},
        {"audit:read", AL_SCOPE_AUDIT_READ},
        {"admin", AL_SCOPE_ADMIN},
};

int al_scopes_parse(const char *s, unsigned *ret, al_error *err) {
        unsigned bits = 0;
        const char *p = s;
        while (*p) {
                size_t n = strcspn(p, ",");
                bool found = false;
                for (size_t i = 0; i < sizeof(SCOPES) / sizeof(SCOPES[0]); i++)
                        if (strlen(SCOPES[i].name) == n &&
                            !strncmp(SCOPES[i].name, p, n)) {
                                bits |= SCOPES[i].bit;
                                found = true;
                        }
                if (!found)
                        return al_error_set(err, EINVAL,
                                            "unknown scope '%.*s' (execute, "
                                            "audit:read, admin)",
                                            (int)(n > 64 ? 64 : n), p);
                p += n;
                if (*p == ',')
                        p++;
        }
        if (!bits)
                return al_error_set(err, EINVAL, "no scope given");
        *ret = bits;
        return 0;
}

int al_rate_parse(const char *s, unsigned *count, unsigned *period_s,
                  al_error *err) {
        static const struct {
                const char *unit;
                unsigned s;
        } UNITS[] = {{"s", 1},     {"sec", 1},     {"second", 1},
                     {"min", 60},  {"minute", 60}, {"h", 3600},
                     {"hour", 3600}, {"day", 86400}};
        const char *slash = strchr(s, '/');
        uint64_t n;
        char num[24];
        if (!slash || (size_t)(slash - s) >= sizeof(num))
                goto bad;
        memcpy(num, s, (size_t)(slash - s));
        num[slash - s] = '\0';
        if (al_parse_u64(num, &n) < 0 || n == 0 || n > 1000000)
                goto bad;
        for (size_t i = 0; i < sizeof(UNITS) / sizeof(UNITS[0]); i++)
                if (!strcmp(slash + 1, UNITS[i].unit)) {
                        *count = (unsigned)n;
                        *period_s = UNITS[i].s;
                        return 0;
                }
bad:
        return al_error_set(err, EINVAL,
                            "a rate is N/s, N/min, N/h or N/day with N from "
                            "1 to 1000000, got '%.64s'",
                            s);
}

void al_scopes_format(unsigned scopes, char *out, size_t size) {
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; i < sizeof(SCOPES) / sizeof(SCOPES[0]); i++)
                if (scopes & SCOPES[i].bit) {
                        int k = snprintf(out + o, size - o, "%s%s",
                                         o ? "," : "", SCOPES[i].name);
                        if (k < 0 || (size_t)k >= size - o)
                                return;
                        o += (size_t)k;
                }
}

static int db_err(al_keys *k, al_error *err, const char *what) {
        return al_error_set(err, EIO, "keys store: %s: %s", what,
                            sqlite3_errmsg(k->db));
}

al_keys *al_keys_close(al_keys *k) {
        if (k) {
                sqlite3_close(k->db);
                free(k);
        }
        return NULL;
}

/* Columns added after the first schema: a keys.db made by an older
 * airlock gets them (0 or '' = no ceiling, as before). */
static int migrate(al_keys *k) {
        static const struct {
                const char *name, *type;
        } added[] = {{"max_output_bytes", "INTEGER NOT NULL DEFAULT 0"},
                     {"max_disk_mb", "INTEGER NOT NULL DEFAULT 0"},
                     {"max_collect_bytes", "INTEGER NOT NULL DEFAULT 0"},
                     /* '' = no list of the key's own */
                     {"allow_net", "TEXT NOT NULL DEFAULT ''"}};
        for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
                sqlite3_stmt *st = NULL;
                if (sqlite3_prepare_v2(k->db,
                                       "SELECT COUNT(*) FROM "
                                       "pragma_table_info('keys') WHERE "
                                       "name = ?1",
                                       -1, &st, NULL) != SQLITE_OK)
                        return -EIO;
                sqlite3_bind_text(st, 1, added[i].name, -1, SQLITE_STATIC);
                bool have = sqlite3_step(st) == SQLITE_ROW &&
                            sqlite3_column_int(st, 0) > 0;
                sqlite3_finalize(st);
                if (have)
                        continue;
                char sql[160];
                snprintf(sql, sizeof(sql), "ALTER TABLE keys ADD COLUMN %s %s",
                         added[i].name, added[i].type);
                if (sqlite3_exec(k->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                        return -EIO;
        }
        return 0;
}

int al_keys_open(const char *state_dir, al_keys **ret, al_error *err) {
        char dir[PATH_MAX], path[PATH_MAX + 16];
        int r;
        if (sodium_init() < 0)
                return al_error_set(err, EIO, "libsodium failed to start");
        if ((r = al_state_dir_resolve(state_dir, dir, sizeof(dir), err)) < 0 ||
            (r = al_state_dir_prepare(dir, err)) < 0)
                return r;
        snprintf(path, sizeof(path), "%s/keys.db", dir);
        /* 0600 by us, not by the umask */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return al_error_errno(err, errno, "keys store %s", path);
        close(fd);
        al_keys *k = calloc(1, sizeof(*k));
        if (!k)
                return al_error_set(err, ENOMEM, "out of memory");
        if (sqlite3_open_v2(path, &k->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                                    SQLITE_OPEN_FULLMUTEX,
                            NULL) != SQLITE_OK) {
                r = k->db ? db_err(k, err, path)
                          : al_error_set(err, ENOMEM, "out of memory");
                al_keys_close(k);
                return r;
        }
        sqlite3_busy_timeout(k->db, 5000);
        static const char schema[] =
                "PRAGMA trusted_schema = OFF;"
                "CREATE TABLE IF NOT EXISTS keys ("
                " id TEXT PRIMARY KEY,"
                " name TEXT NOT NULL,"
                " hash BLOB NOT NULL,"
                " scopes INTEGER NOT NULL,"
                " rate_count INTEGER NOT NULL DEFAULT 0,"
                " rate_period_s INTEGER NOT NULL DEFAULT 0,"
                " max_concurrent INTEGER NOT NULL DEFAULT 0,"
                " max_memory_mb INTEGER NOT NULL DEFAULT 0,"
                " max_wall_ms INTEGER NOT NULL DEFAULT 0,"
                " created_at TEXT NOT NULL,"
                " revoked_at TEXT NOT NULL DEFAULT '');"
                "CREATE UNIQUE INDEX IF NOT EXISTS keys_active_name"
                " ON keys(name) WHERE revoked_at = '';";
        if (al_sqlite_wal(k->db, 5000) != SQLITE_OK ||
            sqlite3_exec(k->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
            (r = migrate(k)) < 0) {
                r = db_err(k, err, "schema");
                al_keys_close(k);
                return r;
        }
        *ret = k;
        return 0;
}

static bool name_ok(const char *s) {
        size_t n = strlen(s);
        if (!n || n > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || strchr("._-", *s)))
                        return false;
        return true;
}

#define COLS                                                                   \
        "id, name, hash, scopes, rate_count, rate_period_s, max_concurrent, "  \
        "max_memory_mb, max_wall_ms, created_at, revoked_at, "                 \
        "max_output_bytes, max_disk_mb, max_collect_bytes, allow_net"

static void row(sqlite3_stmt *st, al_key_info *o) {
        memset(o, 0, sizeof(*o));
        snprintf(o->id, sizeof(o->id), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        snprintf(o->name, sizeof(o->name), "%s",
                 (const char *)sqlite3_column_text(st, 1));
        if (sqlite3_column_bytes(st, 2) == (int)sizeof(o->hash))
                memcpy(o->hash, sqlite3_column_blob(st, 2), sizeof(o->hash));
        o->scopes = (unsigned)sqlite3_column_int64(st, 3);
        o->rate_count = (unsigned)sqlite3_column_int64(st, 4);
        o->rate_period_s = (unsigned)sqlite3_column_int64(st, 5);
        o->max_concurrent = (unsigned)sqlite3_column_int64(st, 6);
        o->max_memory_mb = (unsigned)sqlite3_column_int64(st, 7);
        o->max_wall_ms = (unsigned)sqlite3_column_int64(st, 8);
        snprintf(o->created_at, sizeof(o->created_at), "%s",
                 (const char *)sqlite3_column_text(st, 9));
        snprintf(o->revoked_at, sizeof(o->revoked_at), "%s",
                 (const char *)sqlite3_column_text(st, 10));
        o->max_output_bytes = (uint64_t)sqlite3_column_int64(st, 11);
        o->max_disk_mb = (unsigned)sqlite3_column_int64(st, 12);
        o->max_collect_bytes = (uint64_t)sqlite3_column_int64(st, 13);
        const unsigned char *net = sqlite3_column_text(st, 14);
        snprintf(o->allow_net, sizeof(o->allow_net), "%s",
                 net ? (const char *)net : "");
}

int al_keys_create(al_keys *k, const al_key_info *want, char key[AL_KEY_SIZE],
                   al_key_info *out, al_error *err) {
        if (!name_ok(want->name))
                return al_error_set(err, EINVAL,
                                    "a key name is 1 to 64 of A-Z a-z 0-9 . _ "
                                    "-, got '%.64s'",
                                    want->name);
        if (!want->scopes)
                return al_error_set(err, EINVAL, "a key needs a scope");
        /* the list checked as a run's is, and kept in normalized form so
         * that keys list shows what a request is matched against */
        al_net_policy net;
        int nr = al_net_policy_parse_list(want->allow_net, &net, err);
        if (nr < 0)
                return nr;
        char net_text[AL_KEY_NET_SIZE];
        if (al_net_policy_format(&net, net_text, sizeof(net_text)) < 0)
                return al_error_set(err, EINVAL,
                                    "a key's allowlist is at most %d bytes",
                                    AL_KEY_NET_SIZE - 1);
        unsigned char idb[6], secret[32];
        char sec_hex[65];
        al_key_info o = *want;
        randombytes_buf(idb, sizeof(idb));
        randombytes_buf(secret, sizeof(secret));
        sodium_bin2hex(o.id, sizeof(o.id), idb, sizeof(idb));
        sodium_bin2hex(sec_hex, sizeof(sec_hex), secret, sizeof(secret));
        crypto_hash_sha256(o.hash, (const unsigned char *)sec_hex, 64);
        al_utc_now(o.created_at);
        o.revoked_at[0] = '\0';
        snprintf(o.allow_net, sizeof(o.allow_net), "%s", net_text);
        sqlite3_stmt *st = NULL;
        int r = 0;
        if (sqlite3_prepare_v2(k->db,
                               "INSERT INTO keys (" COLS ") VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', "
                               "?11, ?12, ?13, ?14)",
                               -1, &st, NULL) != SQLITE_OK)
                return db_err(k, err, "insert");
        sqlite3_bind_text(st, 1, o.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o.name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, o.hash, sizeof(o.hash), SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, o.scopes);
        sqlite3_bind_int64(st, 5, o.rate_count);
        sqlite3_bind_int64(st, 6, o.rate_period_s);
        sqlite3_bind_int64(st, 7, o.max_concurrent);
        sqlite3_bind_int64(st, 8, o.max_memory_mb);
        sqlite3_bind_int64(st, 9, o.max_wall_ms);
        sqlite3_bind_text(st, 10, o.created_at, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)o.max_output_bytes);
        sqlite3_bind_int64(st, 12, o.max_disk_mb);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)o.max_collect_bytes);
        sqlite3_bind_text(st, 14, o.allow_net, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_CONSTRAINT || sqlite3_extended_errcode(k->db) ==
                                               SQLITE_CONSTRAINT_UNIQUE)
                r = al_error_set(err, EEXIST,
                                 "an active key is named '%s' already "
                                 "(revoke it first)",
                                 o.name);
        else if (rc != SQLITE_DONE)
                r = db_err(k, err, "insert");
        sqlite3_finalize(st);
        if (r == 0) {
                snprintf(key, AL_KEY_SIZE, "alk_%s_%s", o.id, sec_hex);
                if (out)
                        *out = o;
        }
        sodium_memzero(sec_hex, sizeof(sec_hex));
        sodium_memzero(secret, sizeof(secret));
        return r;
}

int al_keys_list(al_keys *k, bool active_only, al_key_info **v, size_t *n,
                 al_error *err) {
        sqlite3_stmt *st = NULL;
        *v = NULL;
        *n = 0;
        if (sqlite3_prepare_v2(k->db,
                               active_only
                                       ? "SELECT " COLS " FROM keys WHERE "
                                         "revoked_at = '' ORDER BY rowid"
                                       : "SELECT " COLS
                                         " FROM keys ORDER BY rowid",
                               -1, &st, NULL) != SQLITE_OK)
                return db_err(k, err, "list");
        size_t cap = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (*n == cap) {
                        cap = cap ? cap * 2 : 16;
                        al_key_info *nv = realloc(*v, cap * sizeof(**v));
                        if (!nv) {
                                sqlite3_finalize(st);
                                free(*v);
                                *v = NULL;
                                *n = 0;
                                return al_error_set(err, ENOMEM,
                                                    "out of memory");
                        }
                        *v = nv;
                }
                row(st, &(*v)[(*n)++]);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                free(*v);
                *v = NULL;
                *n = 0;
                return db_err(k, err, "list");
        }
        return 0;
}

int al_keys_revoke(al_keys *k, const char *id_or_name, al_key_info *out,
                   al_error *err) {
        char now[32];
        al_utc_now(now);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(k->db,
                               "UPDATE keys SET revoked_at = ?1 WHERE "
                               "revoked_at = '' AND (id = ?2 OR name = ?2) "
                               "RETURNING " COLS,
                               -1, &st, NULL) != SQLITE_OK)
                return db_err(k, err, "revoke");
        sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id_or_name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st), r = 0;
        if (rc == SQLITE_ROW) {
                if (out)
                        row(st, out);
                while (sqlite3_step(st) == SQLITE_ROW)
                        ;
        } else if (rc == SQLITE_DONE)
                r = al_error_set(err, ENOENT, "no active key '%.64s'",
                                 id_or_name);
        else
                r = db_err(k, err, "revoke");
        sqlite3_finalize(st);
        return r;
}

bool al_keys_well_formed(const char *presented) {
        /* alk_<12 hex>_<64 hex> */
        return presented && strlen(presented) == 4 + 12 + 1 + 64 &&
               !strncmp(presented, "alk_", 4) && presented[16] == '_' &&
               strspn(presented + 4, "0123456789abcdef") == 12 &&
               strspn(presented + 17, "0123456789abcdef") == 64;
}

int al_keys_find(al_keys *k, const char *presented, al_key_info *out,
                 al_error *err) {
        if (!al_keys_well_formed(presented))
                return -ENOENT;
        char id[AL_KEY_ID_SIZE];
        memcpy(id, presented + 4, 12);
        id[12] = '\0';
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(k->db,
                               "SELECT " COLS " FROM keys WHERE id = ?1 "
                               "AND revoked_at = ''",
                               -1, &st, NULL) != SQLITE_OK)
                return db_err(k, err, "find");
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        al_key_info row_key;
        int rc = sqlite3_step(st), r = -ENOENT;
        if (rc == SQLITE_ROW) {
                row(st, &row_key);
                if (al_keys_verify(&row_key, 1, presented)) {
                        *out = row_key;
                        r = 0;
                }
        } else if (rc != SQLITE_DONE)
                r = db_err(k, err, "find");
        sqlite3_finalize(st);
        sodium_memzero(&row_key, sizeof(row_key));
        return r;
}

const al_key_info *al_keys_verify(const al_key_info *v, size_t n,
                                  const char *presented) {
        if (!presented || strlen(presented) != 4 + 12 + 1 + 64 ||
            strncmp(presented, "alk_", 4) || presented[16] != '_')
                return NULL;
        unsigned char h[32];
        crypto_hash_sha256(h, (const unsigned char *)presented + 17, 64);
        const al_key_info *found = NULL;
        for (size_t i = 0; i < n; i++) {
                if (v[i].revoked_at[0] ||
                    strncmp(v[i].id, presented + 4, 12) != 0)
                        continue;
                if (sodium_memcmp(v[i].hash, h, sizeof(h)) == 0)
                        found = &v[i];
        }
        return found;
}
