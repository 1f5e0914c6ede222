/* SPDX-License-Identifier: MIT */
/*
 * Verifying the audit log: every record's MAC, hash and link in order,
 * the checkpoint a prune left, an expected head; and whether the store's
 * schema is still airlock's.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-audit.h"
#include "audit-internal.h"
#include "audit-store.h"
#include "error.h"
#include "macro.h"
#include "util.h"

/* --- verify ---------------------------------------------------------- */

/* Constant-time equality of two hex digests (stored values may be any
 * length after tampering). */
static bool digest_eq(const char *a, const char *b) {
        if (strlen(a) != 64 || strlen(b) != 64)
                return false;
        return sodium_memcmp(a, b, 64) == 0;
}

struct verify_ctx {
        al_audit *a;
        al_audit_verify_report *rep;
        uint64_t expect_seq;
        char expect_prev[AL_AUDIT_HASH_SIZE];
        uint64_t last_pruned_through; /* from the newest "pruned" record */
        char last_pruned_hash[AL_AUDIT_HASH_SIZE];
        const char *want_hash; /* --expect-head, or NULL */
        uint64_t found_at;     /* where the chain carries it */
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
        bool mac_ok = sodium_hex2bin(hb, 32, rec->hash, strlen(rec->hash), NULL,
                                     &n1, NULL) == 0 &&
                      n1 == 32 &&
                      sodium_hex2bin(mb, 32, rec->mac, strlen(rec->mac), NULL,
                                     &n2, NULL) == 0 &&
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
                snprintf(v->last_pruned_hash, sizeof(v->last_pruned_hash), "%s",
                         json_string_value(json_object_get(d, "through_hash"))
                                 ?: "");
        } else if (!strcmp(rec->kind, "started"))
                rep->executions++;
        else if (!strcmp(rec->kind, "refused"))
                rep->refused++;
        else if (!strcmp(rec->kind, "session_created"))
                rep->sessions++;
        else if (!strcmp(rec->kind, "cell_started"))
                rep->cells++;
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
        if (!audit_owner_alive(json_object_get(d, "owner")))
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

/* --expect-head: HASH or SEQ:HASH (want_seq stays 0 without a SEQ). */
static int parse_expect_head(const char *expect_head, uint64_t *want_seq,
                             char want_hash[AL_AUDIT_HASH_SIZE],
                             al_error *err) {
        const char *colon = strchr(expect_head, ':');
        const char *h = colon ? colon + 1 : expect_head;
        if (colon) {
                char num[24];
                size_t n = (size_t)(colon - expect_head);
                if (n >= sizeof(num))
                        n = sizeof(num) - 1;
                memcpy(num, expect_head, n);
                num[n] = '\0';
                if (al_parse_u64(num, want_seq) < 0 || !*want_seq)
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
        snprintf(want_hash, AL_AUDIT_HASH_SIZE, "%s", h);
        return 0;
}

int al_audit_verify(al_audit *a, const char *expect_head,
                    al_audit_verify_report *rep, al_error *err) {
        *rep = (al_audit_verify_report){.ok = true};
        uint64_t want_seq = 0;
        char want_hash[AL_AUDIT_HASH_SIZE] = "";
        int r;
        if (expect_head &&
            (r = parse_expect_head(expect_head, &want_seq, want_hash, err)) < 0)
                return r;
        if ((r = a->st->ops->begin(a->st, false, err)) < 0)
                return r;
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
        if ((r = a->st->ops->schema_check(a->st, schema, sizeof(schema), err)) <
            0)
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
                audit_checkpoint_mac(a->key, &cp, m);
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
                bool found =
                        v.found_at && (!want_seq || v.found_at == want_seq);
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
