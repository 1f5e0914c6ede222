/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Inside the audit log, between its files: audit.c (records, the chain,
 * appending, prune), audit-open.c (state directory, key, config, open and
 * close), audit-verify.c and audit-query.c. The chain's primitives are
 * also exposed to the unit tests. Nothing here knows the store's backend:
 * that is behind audit-store.h.
 */
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#include "alert.h"
#include "audit-store.h"

#define ZERO_HASH                                                              \
        "0000000000000000000000000000000000000000000000000000000000000000"
#define _cleanup_json_ _cleanup_(json_decrefp) /* jansson's helper */

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

static inline void audit_hex(const unsigned char *b, size_t n, char *out) {
        sodium_bin2hex(out, n * 2 + 1, b, n);
}

static inline char *audit_dumps(json_t *o) {
        return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

void audit_started_info_clear(struct started_info *si);
/* The chain's last record (or the prune checkpoint when every record is
 * gone): its seq and hash; inside a transaction. */
int audit_chain_tail(al_audit *a, uint64_t *seq, char hash[AL_AUDIT_HASH_SIZE],
                     al_error *err);
/* Link rec to the chain's tail (seq, prev, ts), seal and insert it;
 * inside a write transaction. */
int audit_link_and_insert(al_audit *a, al_audit_rec *rec, char ts[32],
                          al_error *err);
/* A new random record id, 32 hex digits. */
void audit_new_id(char id[AL_AUDIT_ID_SIZE]);
/* The MAC of a prune's checkpoint, hex. */
void audit_checkpoint_mac(const unsigned char *key,
                          const al_audit_checkpoint *cp,
                          char out[AL_AUDIT_HASH_SIZE]);
/* Whether the process that wrote a started record (its detail's "owner")
 * still runs: a run in progress rather than one whose process died. */
bool audit_owner_alive(json_t *owner);

/* The canonical encoding of a record (see audit.c and airlock-audit(1)):
 * "airlock-audit-v1\n", seq as 8 bytes big-endian, then kind, id, ts,
 * source, actor, user_id, agent_id, language, status, flags, detail and
 * prev, each as one byte 0 (NULL) or 1 followed by a 4-byte big-endian
 * length and the bytes. hash and mac are not part of it. */
int al_audit_encode(const al_audit_rec *r, unsigned char **ret,
                    size_t *ret_len);
/* hash = SHA-256(encoding), mac = HMAC-SHA256(key, hash), both hex. */
int al_audit_seal(const unsigned char *key, const al_audit_rec *r,
                  char hash[AL_AUDIT_HASH_SIZE], char mac[AL_AUDIT_HASH_SIZE]);
