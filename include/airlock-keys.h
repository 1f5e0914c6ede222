/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * API keys of `airlock serve`: STATE/keys.db (SQLite), where only a hash
 * of each key is kept.
 *
 *   al_keys *k;  al_keys_open(state, &k, &e);
 *   al_key_info want = {.scopes = AL_SCOPE_EXECUTE, .rate_count = 60,
 *                       .rate_period_s = 60};
 *   snprintf(want.name, sizeof(want.name), "ci");
 *   char key[AL_KEY_SIZE];  al_keys_create(k, &want, key, &info, &e);
 *   ... key is shown once ...
 *   al_key_info *v; size_t n;  al_keys_list(k, true, &v, &n, &e);
 *   al_keys_verify(v, n, presented, &which)   constant time per candidate
 *   al_keys_close(k);
 *
 * A key is "alk_" + its id (12 hex digits) + "_" + a secret of 32 random
 * bytes (64 hex digits). The store keeps the id, SHA-256 of the secret
 * and the key's ceilings; the secret has 256 bits of entropy, so a fast
 * hash is enough and a stolen keys.db gives no key.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_KEY_SIZE 86   /* "alk_" + 12 + "_" + 64 + NUL, rounded up */
#define AL_KEY_ID_SIZE 13
#define AL_KEY_NET_SIZE 4096 /* a key's allowlist as text, as serve's */

enum {
        AL_SCOPE_EXECUTE = 1u << 0,    /* POST /v1/execute, /execute */
        AL_SCOPE_AUDIT_READ = 1u << 1, /* GET /v1/executions, /v1/audit */
        AL_SCOPE_ADMIN = 1u << 2,      /* everything */
};

typedef struct al_key_info {
        char id[AL_KEY_ID_SIZE];
        char name[65];
        unsigned scopes;
        /* ceilings; 0 = none (the server's own limits apply) */
        unsigned rate_count;     /* requests per rate_period_s */
        unsigned rate_period_s;
        unsigned max_concurrent; /* executions at once */
        unsigned max_memory_mb;
        unsigned max_wall_ms;
        uint64_t max_output_bytes; /* limits.output_bytes, per stream */
        unsigned max_disk_mb;      /* limits.disk_mb */
        uint64_t max_collect_bytes; /* all collected files together */
        /* the hosts a request's network.allow may name, comma-separated in
         * normalized form ("pypi.org:443,*.pythonhosted.org"); "" = no
         * list of the key's own (the server's --allow-net applies) */
        char allow_net[AL_KEY_NET_SIZE];
        char created_at[32]; /* UTC, ISO 8601 */
        char revoked_at[32]; /* "" while active */
        unsigned char hash[32];
} al_key_info;

typedef struct al_keys al_keys;

/* STATE/keys.db, created on first use (0600, in a 0700 state dir). */
int al_keys_open(const char *state_dir, al_keys **ret, al_error *err);
al_keys *al_keys_close(al_keys *k); /* NULL-safe, returns NULL */

/* A new key with want's name, scopes and ceilings: its text into key
 * (shown once; not kept), the stored record into *out. A name must be
 * 1-64 of [A-Za-z0-9._-] and not used by an active key; want's allow_net
 * entries must each parse as `run --allow-net` takes them (they are kept
 * normalized). */
int al_keys_create(al_keys *k, const al_key_info *want, char key[AL_KEY_SIZE],
                   al_key_info *out, al_error *err);
/* The keys, oldest first (all, or only the active ones). Free *v. */
int al_keys_list(al_keys *k, bool active_only, al_key_info **v, size_t *n,
                 al_error *err);
/* Revoke the active key with this id or name: -ENOENT when none. */
int al_keys_revoke(al_keys *k, const char *id_or_name, al_key_info *out,
                   al_error *err);

/* The key among v[0..n) that presented is (revoked ones never match), or
 * NULL. The secret's hash is compared in constant time. */
const al_key_info *al_keys_verify(const al_key_info *v, size_t n,
                                  const char *presented);

/* Whether presented has the shape of a key (alk_ID_SECRET): only such a
 * text is worth a look in keys.db. */
bool al_keys_well_formed(const char *presented);
/* Look presented up in keys.db itself (one indexed row, by its id): 0 and
 * the key into *out when it is active and its secret matches; -ENOENT
 * when not (unknown, revoked, wrong secret, malformed); else an error. */
int al_keys_find(al_keys *k, const char *presented, al_key_info *out,
                 al_error *err);

/* "60/min", "10/s", "1000/h", "5000/day" -> count and period. */
int al_rate_parse(const char *s, unsigned *count, unsigned *period_s,
                  al_error *err);

/* "execute,audit:read" <-> bits; -EINVAL on an unknown scope. */
int al_scopes_parse(const char *s, unsigned *ret, al_error *err);
void al_scopes_format(unsigned scopes, char *out, size_t size);

#ifdef __cplusplus
}
#endif
