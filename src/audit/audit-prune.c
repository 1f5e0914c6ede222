/* SPDX-License-Identifier: MIT */
/*
 * Pruning the audit log: records older than a cut are deleted once the
 * chain verifies, a MAC'd checkpoint keeps the link to what is gone, and
 * the prune itself is a record of the chain. Above the rest of the log:
 * it uses verify and the time parsing of the queries, and nothing below
 * calls it.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>

#include "airlock-audit.h"
#include "audit-internal.h"
#include "audit-store.h"
#include "error.h"
#include "json.h"
#include "macro.h"
#include "util.h"

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
        if ((r = audit_chain_tail(a, &head, head_hash, err)) < 0 ||
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
        if ((r = a->st->ops->delete_through(a->st, through, &removed, err)) < 0)
                goto fail;
        char now[32];
        al_utc_now(now);
        al_audit_checkpoint ncp = {.seq = through, .count = cp.count + removed};
        snprintf(ncp.hash, sizeof(ncp.hash), "%s", through_hash);
        snprintf(ncp.ts, sizeof(ncp.ts), "%s", now);
        audit_checkpoint_mac(a->key, &ncp, ncp.mac);
        if ((r = a->st->ops->checkpoint_put(a->st, &ncp, err)) < 0)
                goto fail;
        /* the prune itself is evidence: a record in the chain */
        d = json_pack("{s:s,s:I,s:s,s:I}", "before", cut, "through_seq",
                      (json_int_t)through, "through_hash", through_hash,
                      "removed", (json_int_t)removed);
        detail = d ? audit_dumps(d) : NULL;
        char id[AL_AUDIT_ID_SIZE], ts[32];
        audit_new_id(id);
        al_audit_rec rec = {.kind = "pruned", .id = id, .detail = detail};
        if (!detail) {
                r = al_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        /* the chain's tail is still the record we keep linking to: with
         * everything deleted, chain_tail falls back to the checkpoint */
        if ((r = audit_link_and_insert(a, &rec, ts, err)) < 0)
                goto fail;
        if ((r = a->st->ops->commit(a->st, true, err)) < 0)
                return r;
        *ret_count = removed;
        return 0;
fail:
        a->st->ops->rollback(a->st);
        return r;
}
