/* SPDX-License-Identifier: MIT */
#pragma once
/* The chain's primitives, exposed to the unit tests. */
#include <stddef.h>

#include "audit-store.h"

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
