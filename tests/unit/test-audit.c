/* SPDX-License-Identifier: MIT */
/* The audit chain: canonical encoding (against a vector computed by an
 * independent implementation of the documented format), hash and MAC,
 * and the chain through the public API: append, verify, tamper, prune,
 * queries, time parsing, fail closed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "airlock-audit.h"
#include "audit-internal.h"
#include "tap.h"

/* python3: see docs/airlock-audit.1, "Canonical encoding"; hashlib +
 * hmac over the same fields give these. */
#define VEC_HASH "c400bbb8c347dd8678aa73fae6a79fde6d1731cdd795120f1251c625703f4ab4"
#define VEC_MAC "6e6bf2f1529d2197e18da16a8f8107bb1adde108e55f822837f3211723f3c354"
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static al_audit_rec vector(void) {
        return (al_audit_rec){
                .seq = 1,
                .kind = "started",
                .id = "00112233445566778899aabbccddeeff",
                .ts = "2026-11-23T04:05:06.789Z",
                .source = "cli",
                .actor = "user:root",
                .user_id = NULL,
                .agent_id = "",
                .language = "python",
                .status = NULL,
                .flags = "base64,exec",
                .detail = "{\"a\":1}",
                .prev = ZERO64,
        };
}

static void encoding_vector(void) {
        al_audit_rec r = vector();
        unsigned char *buf;
        size_t len;
        ASSERT_INT_EQ(al_audit_encode(&r, &buf, &len), 0);
        ASSERT_INT_EQ(len, 240);
        ASSERT_TRUE(memcmp(buf, "airlock-audit-v1\n", 17) == 0);
        /* seq 1 big-endian, then "started" as 01 00000007 ... */
        static const unsigned char head[] = {0, 0, 0, 0, 0, 0, 0, 1,
                                             1, 0, 0, 0, 7, 's'};
        ASSERT_TRUE(memcmp(buf + 17, head, sizeof(head)) == 0);
        free(buf);
        unsigned char key[32];
        for (int i = 0; i < 32; i++)
                key[i] = (unsigned char)i;
        char hash[AL_AUDIT_HASH_SIZE], mac[AL_AUDIT_HASH_SIZE];
        ASSERT_INT_EQ(al_audit_seal(key, &r, hash, mac), 0);
        ASSERT_STR_EQ(hash, VEC_HASH);
        ASSERT_STR_EQ(mac, VEC_MAC);
}

/* Every field, the position and NULL-vs-empty change the hash; the key
 * changes only the MAC. */
static void encoding_sensitivity(void) {
        unsigned char key[32] = {1}, key2[32] = {2};
        char h0[AL_AUDIT_HASH_SIZE], m0[AL_AUDIT_HASH_SIZE];
        char h[AL_AUDIT_HASH_SIZE], m[AL_AUDIT_HASH_SIZE];
        al_audit_rec r = vector();
        ASSERT_INT_EQ(al_audit_seal(key, &r, h0, m0), 0);
        static const size_t fields[] = {
                offsetof(al_audit_rec, kind),     offsetof(al_audit_rec, id),
                offsetof(al_audit_rec, ts),       offsetof(al_audit_rec, source),
                offsetof(al_audit_rec, actor),    offsetof(al_audit_rec, user_id),
                offsetof(al_audit_rec, agent_id), offsetof(al_audit_rec, language),
                offsetof(al_audit_rec, status),   offsetof(al_audit_rec, flags),
                offsetof(al_audit_rec, detail),   offsetof(al_audit_rec, prev)};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                al_audit_rec t = vector();
                const char **f = (const char **)((char *)&t + fields[i]);
                *f = *f ? (**f ? "" : "x") : ""; /* NULL -> "", "" -> "x" */
                ASSERT_INT_EQ(al_audit_seal(key, &t, h, m), 0);
                if (!strcmp(h, h0))
                        printf("#   field %zu does not change the hash\n", i);
                ASSERT_TRUE(strcmp(h, h0) != 0);
        }
        /* field boundaries: moving bytes between fields is a change */
        al_audit_rec a = vector(), b = vector();
        a.source = "cliu";
        a.actor = "ser:root";
        b.source = "cli";
        b.actor = "user:root";
        char ha[AL_AUDIT_HASH_SIZE], hb[AL_AUDIT_HASH_SIZE];
        al_audit_seal(key, &a, ha, m);
        al_audit_seal(key, &b, hb, m);
        ASSERT_TRUE(strcmp(ha, hb) != 0);
        al_audit_rec s = vector();
        s.seq = 2;
        al_audit_seal(key, &s, h, m);
        ASSERT_TRUE(strcmp(h, h0) != 0);
        al_audit_seal(key2, &r, h, m);
        ASSERT_STR_EQ(h, h0);
        ASSERT_TRUE(strcmp(m, m0) != 0);
}

static char state[] = "/tmp/al-unit-audit-XXXXXX";

static void sql(const char *dir, const char *q) {
        char p[512];
        snprintf(p, sizeof(p), "%s/audit.db", dir);
        sqlite3 *db;
        if (sqlite3_open(p, &db) == SQLITE_OK) {
                char *msg = NULL;
                if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
                        printf("# sql: %s: %s\n", q, msg);
                sqlite3_free(msg);
        }
        sqlite3_close(db);
}

static int add_runs(al_audit *a, int n, char ids[][AL_AUDIT_ID_SIZE]) {
        al_error e = {0};
        for (int i = 0; i < n; i++) {
                al_spec *s = al_spec_new();
                al_spec_set_language(s, "python", &e);
                const char *code = i % 2 ? "print(eval('1+1'))" : "print(1)";
                al_spec_set_code(s, code, strlen(code), &e);
                al_audit_who w = {.source = "cli", .actor = "user:test",
                                  .user_id = "u1"};
                char id[AL_AUDIT_ID_SIZE];
                if (al_audit_started(a, &w, s, NULL, id, &e) < 0) {
                        printf("# %s\n", e.msg);
                        al_spec_free(s);
                        return -1;
                }
                al_result r = {.status = i % 3 ? AL_STATUS_OK
                                               : AL_STATUS_ERROR,
                               .exit_code = i % 3 ? 0 : 1};
                r.stdout_buf = (unsigned char *)"2\n";
                r.stdout_len = 2;
                if (al_audit_finished(a, id, &r, &e) < 0) {
                        printf("# %s\n", e.msg);
                        al_spec_free(s);
                        return -1;
                }
                if (ids)
                        memcpy(ids[i], id, sizeof(id));
                al_spec_free(s);
        }
        return 0;
}

static void chain_roundtrip(void) {
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(state, &a, &e), 0);
        struct stat st;
        char p[512];
        snprintf(p, sizeof(p), "%s/audit.key", state);
        ASSERT_INT_EQ(stat(p, &st), 0);
        ASSERT_INT_EQ(st.st_mode & 0777, 0600);
        char ids[4][AL_AUDIT_ID_SIZE];
        ASSERT_INT_EQ(add_runs(a, 4, ids), 0);
        al_audit_verify_report rep;
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(rep.records, 8);
        ASSERT_INT_EQ(rep.executions, 4);
        ASSERT_INT_EQ(rep.interrupted, 0);
        uint64_t seq;
        char head[AL_AUDIT_HASH_SIZE], anchor[100];
        ASSERT_INT_EQ(al_audit_head(a, &seq, head, &e), 0);
        ASSERT_INT_EQ(seq, 8);
        ASSERT_STR_EQ(head, rep.head);
        snprintf(anchor, sizeof(anchor), "%llu:%s", (unsigned long long)seq,
                 head);
        ASSERT_INT_EQ(al_audit_verify(a, anchor, &rep, &e), 0);
        ASSERT_TRUE(rep.ok);
        /* one execution by id prefix, with both of its records */
        json_t *x = NULL;
        char prefix[9];
        snprintf(prefix, sizeof(prefix), "%.8s", ids[1]);
        ASSERT_INT_EQ(al_audit_get(a, prefix, &x, &e), 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "id")), ids[1]);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "status")), "ok");
        ASSERT_INT_EQ(json_array_size(json_object_get(x, "records")), 2);
        ASSERT_TRUE(json_is_true(json_object_get(x, "suspicious")));
        json_decref(x);
        ASSERT_INT_EQ(al_audit_get(a, "ffffffffffff", &x, &e), -ENOENT);
        /* an unfinished run whose process is gone reads as interrupted */
        al_spec *s = al_spec_new();
        al_spec_set_language(s, "sh", &e);
        al_spec_set_code(s, "sleep 9", 7, &e);
        al_audit_who w = {.source = "cli", .actor = "user:test"};
        char id[AL_AUDIT_ID_SIZE];
        ASSERT_INT_EQ(al_audit_started(a, &w, s, NULL, id, &e), 0);
        al_spec_free(s);
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "status")),
                      "running"); /* we are alive */
        json_decref(x);
        char q[256];
        snprintf(q, sizeof(q),
                 "UPDATE records SET detail = json_set(detail, "
                 "'$.owner.pid', 999999999) WHERE id = '%s'",
                 id);
        sql(state, q); /* (this also breaks the chain: checked below) */
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "status")),
                      "interrupted");
        json_decref(x);
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(!rep.ok);
        ASSERT_INT_EQ(rep.bad_seq, 9);
        ASSERT_STR_EQ(rep.problem, "modified");
        al_audit_close(a);
}

static void tamper_and_truncate(void) {
        char dir[] = "/tmp/al-unit-audit2-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        ASSERT_INT_EQ(add_runs(a, 3, NULL), 0);
        uint64_t seq;
        char head[AL_AUDIT_HASH_SIZE], anchor[100];
        al_audit_head(a, &seq, head, &e);
        snprintf(anchor, sizeof(anchor), "%llu:%s", (unsigned long long)seq,
                 head);
        al_audit_verify_report rep;
        /* the tail removed: only an anchored head tells */
        sql(dir, "DELETE FROM records WHERE seq = 6");
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(al_audit_verify(a, anchor, &rep, &e), 0);
        ASSERT_TRUE(!rep.ok);
        ASSERT_STR_EQ(rep.problem, "truncated");
        ASSERT_INT_EQ(al_audit_verify(a, head, &rep, &e), 0); /* bare hash */
        ASSERT_TRUE(!rep.ok);
        /* a middle record deleted */
        sql(dir, "DELETE FROM records WHERE seq = 3");
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(!rep.ok);
        ASSERT_INT_EQ(rep.bad_seq, 3);
        ASSERT_STR_EQ(rep.problem, "deleted");
        ASSERT_STR_EQ(rep.message, "record 3 is missing: deleted");
        sql(dir, "DELETE FROM records WHERE seq = 4");
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_STR_EQ(rep.message, "records 3 to 4 are missing: deleted");
        /* a malformed anchor is a usage error */
        ASSERT_INT_EQ(al_audit_verify(a, "12:xyz", &rep, &e), -EINVAL);
        al_audit_close(a);
}

static void prune_keeps_chain(void) {
        char dir[] = "/tmp/al-unit-audit3-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        ASSERT_INT_EQ(add_runs(a, 3, NULL), 0);
        /* everything is older than a minute from now */
        uint64_t n = 0;
        time_t t = time(NULL) + 60;
        struct tm tm;
        gmtime_r(&t, &tm);
        char before[32];
        strftime(before, sizeof(before), "%Y-%m-%dT%H:%M:%S", &tm);
        ASSERT_INT_EQ(al_audit_prune(a, before, &n, &e), 0);
        ASSERT_INT_EQ(n, 6);
        ASSERT_INT_EQ(add_runs(a, 2, NULL), 0);
        al_audit_verify_report rep;
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        if (!rep.ok)
                printf("# %s\n", rep.message);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(rep.pruned, 6);
        ASSERT_INT_EQ(rep.first_seq, 7); /* the "pruned" record */
        ASSERT_INT_EQ(rep.records, 5);
        /* a forged checkpoint is caught */
        sql(dir, "UPDATE checkpoint SET seq = seq - 1");
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(!rep.ok);
        ASSERT_STR_EQ(rep.problem, "checkpoint");
        al_audit_close(a);
}

/* One finished run of actor; its id into id. */
static int add_as(al_audit *a, const char *actor, char id[AL_AUDIT_ID_SIZE]) {
        al_error e = {0};
        al_spec *s = al_spec_new();
        al_spec_set_language(s, "sh", &e);
        al_spec_set_code(s, "true", 4, &e);
        al_audit_who w = {.source = "http", .actor = actor};
        al_result r = {.status = AL_STATUS_OK};
        int rc = al_audit_started(a, &w, s, NULL, id, &e);
        if (rc == 0)
                rc = al_audit_finished(a, id, &r, &e);
        if (rc < 0)
                printf("# %s\n", e.msg);
        al_spec_free(s);
        return rc;
}

/* Give execution id the first six digits of like (both of its records). */
static void share_prefix(const char *dir, char id[AL_AUDIT_ID_SIZE],
                         const char *like) {
        char q[256], nid[AL_AUDIT_ID_SIZE];
        snprintf(nid, sizeof(nid), "%.6s%s", like, id + 6);
        snprintf(q, sizeof(q), "UPDATE records SET id = '%s' WHERE id = '%s'",
                 nid, id);
        sql(dir, q);
        memcpy(id, nid, sizeof(nid));
}

/* Cross-tenant id probing: a prefix is looked up among the caller's own
 * executions only. Two tenants' ids sharing a prefix are made by giving
 * one the other's first digits (ids are random: waiting for a natural
 * 6-digit collision would take thousands of runs). */
static void prefix_among_own(void) {
        char dir[] = "/tmp/al-unit-audit5-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        char a1[AL_AUDIT_ID_SIZE], b1[AL_AUDIT_ID_SIZE], b2[AL_AUDIT_ID_SIZE],
                b3[AL_AUDIT_ID_SIZE];
        ASSERT_INT_EQ(add_as(a, "key:aaaaaaaaaaaa", a1), 0);
        ASSERT_INT_EQ(add_as(a, "key:bbbbbbbbbbbb", b1), 0);
        ASSERT_INT_EQ(add_as(a, "key:bbbbbbbbbbbb", b2), 0);
        ASSERT_INT_EQ(add_as(a, "key:bbbbbbbbbbbb", b3), 0);
        share_prefix(dir, b1, a1); /* P: one of A's, one of B's */
        share_prefix(dir, b3, b2); /* Q: two of B's */
        char p[7], q[7];
        snprintf(p, sizeof(p), "%.6s", a1);
        snprintf(q, sizeof(q), "%.6s", b2);
        json_t *x = NULL;
        /* A asking P gets its own; everyone's view: ambiguous */
        ASSERT_INT_EQ(al_audit_get_as(a, p, "key:aaaaaaaaaaaa", &x, &e), 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "id")), a1);
        ASSERT_INT_EQ(json_array_size(json_object_get(x, "records")), 2);
        json_decref(x);
        ASSERT_INT_EQ(al_audit_get_as(a, p, NULL, &x, &e), -EEXIST);
        ASSERT_TRUE(strstr(e.msg, "matches 2 executions") != NULL);
        ASSERT_INT_EQ(al_audit_get_as(a, p, "key:bbbbbbbbbbbb", &x, &e), 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(x, "id")), b1);
        json_decref(x);
        /* A asking Q (only B's, two of them) is told what an unknown id
         * gets, not that it is ambiguous */
        ASSERT_INT_EQ(al_audit_get_as(a, q, "key:aaaaaaaaaaaa", &x, &e),
                      -ENOENT);
        ASSERT_INT_EQ(al_audit_get_as(a, b2, "key:aaaaaaaaaaaa", &x, &e),
                      -ENOENT);
        ASSERT_INT_EQ(al_audit_get_as(a, q, "key:bbbbbbbbbbbb", &x, &e),
                      -EEXIST);
        ASSERT_TRUE(strstr(e.msg, "matches 2 executions") != NULL);
        al_audit_close(a);
        char cmd[100];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ASSERT_INT_EQ(system(cmd), 0);
}

/* Pages: cut by the byte cap or the limit, followed by the cursor, every
 * execution exactly once, newest first; a filter computed in C stops at
 * the scan cap with a cursor too. */
static void pages_with_cursor(void) {
        char dir[] = "/tmp/al-unit-audit5-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        enum { N = 30 };
        char ids[N][AL_AUDIT_ID_SIZE];
        ASSERT_INT_EQ(add_runs(a, N, ids), 0);
        for (int round = 0; round < 2; round++) {
                /* round 0: 3000 bytes a page (a few executions); round 1:
                 * limit 7, no byte cap */
                al_audit_filter f = {.limit = round ? 7 : 1000};
                int seen = 0, pages = 0;
                for (;;) {
                        al_audit_page pg = {.max_bytes = round ? 0 : 3000};
                        ASSERT_INT_EQ(al_audit_query_page(a, &f, &pg, &e), 0);
                        json_t *arr = json_loadb(pg.json, pg.len, 0, NULL);
                        free(pg.json);
                        ASSERT_TRUE(json_is_array(arr));
                        ASSERT_INT_EQ(json_array_size(arr), pg.count);
                        ASSERT_TRUE(pg.count >= 1);
                        if (!round)
                                ASSERT_TRUE(pg.len <= 3000 || pg.count == 1);
                        else
                                ASSERT_TRUE(pg.count <= 7);
                        for (size_t i = 0; i < pg.count; i++, seen++) {
                                ASSERT_TRUE(seen < N);
                                ASSERT_STR_EQ(json_string_value(json_object_get(
                                                      json_array_get(arr, i),
                                                      "id")),
                                              ids[N - 1 - seen]);
                        }
                        json_decref(arr);
                        pages++;
                        if (!pg.more) {
                                ASSERT_INT_EQ(pg.next, 0);
                                break;
                        }
                        ASSERT_TRUE(pg.next > 0);
                        f.before = pg.next;
                }
                ASSERT_INT_EQ(seen, N);
                ASSERT_TRUE(pages >= (round ? 5 : 3));
        }
        /* 10 unfinished runs of a live process (us): running, none
         * interrupted; asked for interrupted ones, pages of nothing, 4
         * examined each, until the end */
        for (int i = 0; i < 10; i++) {
                al_spec *s = al_spec_new();
                al_spec_set_language(s, "sh", &e);
                al_spec_set_code(s, "sleep 9", 7, &e);
                al_audit_who w = {.source = "cli", .actor = "user:test"};
                char id[AL_AUDIT_ID_SIZE];
                int rc = al_audit_started(a, &w, s, NULL, id, &e);
                al_spec_free(s);
                ASSERT_INT_EQ(rc, 0);
        }
        al_audit_filter f = {.interrupted = true, .limit = 50};
        int pages = 0;
        for (;;) {
                al_audit_page pg = {.max_scan = 4};
                ASSERT_INT_EQ(al_audit_query_page(a, &f, &pg, &e), 0);
                ASSERT_STR_EQ(pg.json, "[]");
                free(pg.json);
                pages++;
                ASSERT_TRUE(pages <= 10);
                if (!pg.more)
                        break;
                f.before = pg.next;
        }
        ASSERT_INT_EQ(pages, 3);
        al_audit_close(a);
        char cmd[100];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ASSERT_INT_EQ(system(cmd), 0);
}

static void bad_key_and_store(void) {
        char dir[] = "/tmp/al-unit-audit4-XXXXXX", p[512];
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        al_audit_close(a);
        snprintf(p, sizeof(p), "%s/audit.key", dir);
        chmod(p, 0644);
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), -EPERM);
        ASSERT_TRUE(strstr(e.msg, "readable by others") != NULL);
        chmod(p, 0600);
        /* a store that is not a database */
        snprintf(p, sizeof(p), "%s/audit.db", dir);
        int fd = open(p, O_WRONLY | O_TRUNC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_INT_EQ(write(fd, "this is not sqlite, not at all, no\n", 35),
                      35);
        close(fd);
        ASSERT_TRUE(al_audit_open(dir, &a, &e) < 0);
        ASSERT_TRUE(strstr(e.msg, "audit store") != NULL);
        /* a config with an unknown key of ours */
        unlink(p);
        snprintf(p, sizeof(p), "%s/config.json", dir);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT_INT_EQ(write(fd, "{\"audit-bogus\": 1, \"listen\": \"x\"}", 33),
                      33);
        close(fd);
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "audit-bogus") != NULL);
}

/* A schema object airlock did not create, planted by whoever can write
 * the file: nothing more is appended, and verify names it. */
static void schema_pinned(void) {
        static const struct {
                const char *plant, *named, *undo;
        } objs[] = {
                {"CREATE TRIGGER x BEFORE INSERT ON records WHEN NEW.detail "
                 "LIKE '%EVIL%' BEGIN SELECT RAISE(IGNORE); END",
                 "unexpected trigger 'x' on 'records'", "DROP TRIGGER x"},
                {"CREATE VIEW v AS SELECT * FROM records",
                 "unexpected view 'v'", "DROP VIEW v"},
                {"CREATE INDEX i ON records(actor)",
                 "unexpected index 'i' on 'records'", "DROP INDEX i"},
                {"CREATE TABLE t (x)", "unexpected table 't'",
                 "DROP TABLE t"},
                {"DROP INDEX records_ts", "missing index 'records_ts'",
                 "CREATE INDEX records_ts ON records(ts)"},
        };
        char dir[] = "/tmp/al-unit-audit5-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        ASSERT_INT_EQ(add_runs(a, 2, NULL), 0);
        al_audit_verify_report rep;
        for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
                sql(dir, objs[i].plant);
                al_spec *s = al_spec_new();
                al_spec_set_language(s, "sh", &e);
                al_spec_set_code(s, "echo EVIL", 9, &e);
                char id[AL_AUDIT_ID_SIZE];
                al_audit_who w = {.source = "cli", .actor = "user:test"};
                int r = al_audit_started(a, &w, s, NULL, id, &e);
                al_spec_free(s);
                ASSERT_INT_EQ(r, -EBADMSG);
                if (!strstr(e.msg, objs[i].named))
                        printf("#   %s\n", e.msg);
                ASSERT_TRUE(strstr(e.msg, objs[i].named) != NULL);
                ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
                ASSERT_TRUE(!rep.ok);
                ASSERT_STR_EQ(rep.problem, "schema");
                ASSERT_TRUE(strstr(rep.message, objs[i].named) != NULL);
                sql(dir, objs[i].undo);
        }
        /* a table of airlock's redefined (through writable_schema, as
         * someone with the file can): named as changed */
        sql(dir, "PRAGMA writable_schema = ON; UPDATE sqlite_master SET "
                 "sql = replace(sql, 'mac TEXT NOT NULL', 'mac TEXT') WHERE "
                 "name = 'checkpoint'");
        al_audit_close(a);
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_STR_EQ(rep.problem, "schema");
        if (!strstr(rep.message, "changed table 'checkpoint'"))
                printf("#   %s\n", rep.message);
        ASSERT_TRUE(strstr(rep.message, "changed table 'checkpoint'") !=
                    NULL);
        ASSERT_TRUE(add_runs(a, 1, NULL) < 0);
        sql(dir, "PRAGMA writable_schema = ON; UPDATE sqlite_master SET "
                 "sql = replace(sql, 'mac TEXT)', 'mac TEXT NOT NULL)') "
                 "WHERE name = 'checkpoint'");
        al_audit_close(a);
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        /* back to airlock's schema: it appends and verifies again */
        ASSERT_INT_EQ(add_runs(a, 1, NULL), 0);
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        if (!rep.ok)
                printf("#   %s\n", rep.message);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(rep.records, 6);
        al_audit_close(a);

        /* triggers are off on the store's connection: even an insert
         * outside the checked write path stores its row */
        char db[600];
        snprintf(db, sizeof(db), "%s/audit.db", dir);
        sql(dir, objs[0].plant);
        al_audit_store *st = NULL;
        ASSERT_INT_EQ(al_audit_sqlite_open(db, 1000, &st, &e), 0);
        uint64_t seq;
        char head[AL_AUDIT_HASH_SIZE];
        ASSERT_INT_EQ(st->ops->head(st, &seq, head, &e), 0);
        al_audit_rec rec = vector();
        rec.seq = seq + 1;
        rec.detail = "{\"x\":\"EVIL\"}";
        rec.hash = "ab";
        rec.mac = "cd";
        ASSERT_INT_EQ(st->ops->insert(st, &rec, &e), 0);
        ASSERT_INT_EQ(st->ops->head(st, &seq, head, &e), 0);
        ASSERT_INT_EQ(seq, rec.seq);
        st->ops->close(st);
}

/* The hash covers the stored bytes and verify checks the stored types:
 * a text column turned into a BLOB, or a NUL and more appended, hides a
 * record from queries that compare values; verify names it. */
static void types_and_nuls(void) {
        static const struct {
                const char *sql, *column, *why;
        } cases[] = {
                {"UPDATE records SET kind = CAST(kind AS BLOB) WHERE seq = 3",
                 "kind", "BLOB"},
                {"UPDATE records SET actor = actor || char(0) || 'x' WHERE "
                 "seq = 3",
                 "actor", "NUL"},
                {"UPDATE records SET user_id = CAST(user_id AS BLOB) || "
                 "char(0) WHERE seq = 3",
                 "user_id", "NUL"},
                {"UPDATE records SET id = CAST(id AS BLOB) WHERE seq = 3",
                 "column id", "BLOB"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                /* one directory (a process protects at most 8), a new
                 * store each time */
                char dir[] = "/tmp/al-unit-audit6", db[600];
                mkdir(dir, 0700);
                for (int k = 0; k < 3; k++) {
                        snprintf(db, sizeof(db), "%s/audit.db%s", dir,
                                 k == 0 ? "" : k == 1 ? "-wal" : "-shm");
                        unlink(db);
                }
                al_error e = {0};
                al_audit *a = NULL;
                ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
                ASSERT_INT_EQ(add_runs(a, 3, NULL), 0);
                sql(dir, cases[i].sql);
                al_audit_verify_report rep;
                ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
                ASSERT_TRUE(!rep.ok);
                ASSERT_INT_EQ(rep.bad_seq, 3);
                ASSERT_STR_EQ(rep.problem, "modified");
                if (!strstr(rep.message, cases[i].column) ||
                    !strstr(rep.message, cases[i].why))
                        printf("#   %s\n", rep.message);
                ASSERT_TRUE(strstr(rep.message, cases[i].column) != NULL);
                ASSERT_TRUE(strstr(rep.message, cases[i].why) != NULL);
                al_audit_close(a);
        }
        /* the same bytes with and without stored lengths: a record
         * written before lengths were hashed still verifies */
        al_audit_rec r = vector(), l = vector();
        const char *f[] = {l.kind,     l.id,     l.ts,     l.source,
                           l.actor,    l.user_id, l.agent_id, l.language,
                           l.status,   l.flags,  l.detail, l.prev};
        l.has_len = true;
        for (int i = 0; i < AL_AUDIT_NFIELDS; i++)
                l.len[i] = f[i] ? strlen(f[i]) : 0;
        unsigned char key[32] = {0};
        char h1[AL_AUDIT_HASH_SIZE], h2[AL_AUDIT_HASH_SIZE],
                m[AL_AUDIT_HASH_SIZE];
        al_audit_seal(key, &r, h1, m);
        al_audit_seal(key, &l, h2, m);
        ASSERT_STR_EQ(h1, h2);
        /* ... and a NUL inside is covered */
        l.actor = "user:root\0x";
        l.len[4] = 11;
        al_audit_seal(key, &l, h2, m);
        ASSERT_TRUE(strcmp(h1, h2) != 0);
}

/* Every field a caller gives is capped: a 5 MB argument and an oversized
 * user_id leave a small record with their size and hash. */
static void fields_capped(void) {
        char dir[] = "/tmp/al-unit-audit6", db[600];
        for (int k = 0; k < 3; k++) {
                snprintf(db, sizeof(db), "%s/audit.db%s", dir,
                         k == 0 ? "" : k == 1 ? "-wal" : "-shm");
                unlink(db);
        }
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        size_t big = 5u << 20;
        char *arg = malloc(big + 1), *uid = malloc(1001);
        memset(arg, 'A', big);
        arg[big] = '\0';
        memset(uid, 'u', 1000);
        uid[1000] = '\0';
        al_spec *s = al_spec_new();
        al_spec_set_language(s, "sh", &e);
        al_spec_set_code(s, "true", 4, &e);
        al_spec_add_arg(s, arg, &e);
        for (int i = 0; i < 70; i++)
                al_spec_add_arg(s, "x", &e);
        al_audit_who w = {.source = "cli", .actor = "user:test",
                          .user_id = uid, .agent_id = "a"};
        char id[AL_AUDIT_ID_SIZE];
        ASSERT_INT_EQ(al_audit_refused(a, &w, s, "bad", arg, NULL, id, &e),
                      0);
        al_spec_free(s);
        json_t *x = NULL;
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), 0);
        json_t *req = json_object_get(x, "request");
        json_t *a0 = json_array_get(json_object_get(req, "args"), 0);
        ASSERT_INT_EQ(json_integer_value(json_object_get(a0, "bytes")),
                      (long long)big);
        ASSERT_INT_EQ(strlen(json_string_value(json_object_get(a0, "sha256"))),
                      64);
        ASSERT_INT_EQ(strlen(json_string_value(json_object_get(a0, "preview"))),
                      1024);
        ASSERT_INT_EQ(json_integer_value(json_object_get(req, "args_count")),
                      71);
        json_t *msg = json_object_get(json_object_get(req, "error"), "message");
        ASSERT_INT_EQ(json_integer_value(json_object_get(msg, "bytes")),
                      (long long)big);
        const char *u = json_string_value(json_object_get(x, "user_id"));
        ASSERT_TRUE(u && strlen(u) < 300 && strstr(u, "[1000 bytes, sha256 "));
        json_decref(x);
        al_audit_close(a);
        struct stat st;
        snprintf(db, sizeof(db), "%s/audit.db", dir);
        off_t total = stat(db, &st) == 0 ? st.st_size : 0;
        snprintf(db, sizeof(db), "%s/audit.db-wal", dir);
        total += stat(db, &st) == 0 ? st.st_size : 0;
        printf("# audit.db and its WAL: %lld bytes\n", (long long)total);
        ASSERT_TRUE(total < 1024 * 1024);
        free(arg);
        free(uid);
}

static void parse_times(void) {
        char out[32];
        al_error e = {0};
        ASSERT_INT_EQ(al_audit_parse_time("2026-01-02", out, &e), 0);
        ASSERT_STR_EQ(out, "2026-01-02T00:00:00.000Z");
        ASSERT_INT_EQ(al_audit_parse_time("2026-01-02T03:04", out, &e), 0);
        ASSERT_STR_EQ(out, "2026-01-02T03:04:00.000Z");
        ASSERT_INT_EQ(al_audit_parse_time("2026-01-02T03:04:05Z", out, &e), 0);
        ASSERT_STR_EQ(out, "2026-01-02T03:04:05.000Z");
        ASSERT_INT_EQ(al_audit_parse_time("2026-01-02T03:04:05.678Z", out, &e),
                      0);
        ASSERT_STR_EQ(out, "2026-01-02T03:04:05.678Z");
        ASSERT_INT_EQ(al_audit_parse_time("2h", out, &e), 0);
        ASSERT_TRUE(strlen(out) == 24 && out[23] == 'Z');
        const char *bad[] = {"",          "2026-13-01",  "2026-02-30",
                             "2026-1-1",  "yesterday",   "2026-01-02T25:00",
                             "5x",        "h",           "2026-01-02 junk",
                             "99999999999999d"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (al_audit_parse_time(bad[i], out, &e) == 0)
                        printf("#   accepted '%s'\n", bad[i]);
                ASSERT_TRUE(al_audit_parse_time(bad[i], out, &e) < 0);
        }
}

/* --state DIR / AIRLOCK_STATE: a relative path is made absolute against
 * the working directory; an explicit DIR wins over the environment. */
static void state_dir_paths(void) {
        char out[PATH_MAX], cwd[PATH_MAX], want[PATH_MAX + 16];
        al_error e = {0};
        ASSERT_TRUE(getcwd(cwd, sizeof(cwd)) != NULL);
        setenv("AIRLOCK_STATE", "/from/env", 1);
        ASSERT_INT_EQ(al_state_dir_resolve("/given", out, sizeof(out), &e), 0);
        ASSERT_STR_EQ(out, "/given");
        ASSERT_INT_EQ(al_state_dir_resolve(NULL, out, sizeof(out), &e), 0);
        ASSERT_STR_EQ(out, "/from/env");
        ASSERT_INT_EQ(al_state_dir_resolve("rel/st", out, sizeof(out), &e), 0);
        snprintf(want, sizeof(want), "%s/rel/st", cwd);
        ASSERT_STR_EQ(out, want);
        setenv("AIRLOCK_STATE", "envrel", 1);
        ASSERT_INT_EQ(al_state_dir_resolve(NULL, out, sizeof(out), &e), 0);
        snprintf(want, sizeof(want), "%s/envrel", cwd);
        ASSERT_STR_EQ(out, want);
        unsetenv("AIRLOCK_STATE");
        char small[8];
        ASSERT_TRUE(al_state_dir_resolve("/a/long/path", small, sizeof(small),
                                         &e) < 0);
}

/* --- sessions ------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

/* A session of key A: created, two cells (one an error), a file put, got
 * and deleted, closed. */
static int add_session(al_audit *a, const char *actor, char sid[AL_AUDIT_ID_SIZE]) {
        al_error e = {0};
        al_limits lim = {.memory_mb = 1024, .wall_ms = 30000};
        al_audit_who w = {.source = "http", .actor = actor, .user_id = "u9"};
        al_audit_session ss = {.language = "python",
                               .limits = &lim,
                               .idle_timeout_s = 600,
                               .max_lifetime_s = 3600,
                               .max_cells = 100};
        char cid[AL_AUDIT_CELL_ID_SIZE];
        sid[0] = '\0';
        static const char *const code[] = {"x = 1", "import socket\n1/0"};
        if (al_audit_session_created(a, &w, &ss, sid, &e) < 0)
                goto fail;
        for (int i = 0; i < 2; i++) {
                if (al_audit_cell_started(a, sid, (uint64_t)i + 1, code[i],
                                          strlen(code[i]), NULL, cid, &e) < 0)
                        goto fail;
                al_audit_cell c = {.status = i ? "error" : "ok",
                                   .wall_ms = 3,
                                   .cpu_ms = 2,
                                   .execution_count = i + 1,
                                   .error_name = i ? "ZeroDivisionError"
                                                   : NULL,
                                   .stderr_buf = i ? "Traceback" : NULL,
                                   .stderr_len = i ? 9 : 0};
                if (al_audit_cell_finished(a, cid, &c, &e) < 0)
                        goto fail;
        }
        static const char sha[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0"
                                  "b822cd15d6c15b0f00a08";
        if (al_audit_session_file(a, sid, AL_AUDIT_FILE_PUT, "data/in.csv", 4,
                                  sha, &e) < 0 ||
            al_audit_session_file(a, sid, AL_AUDIT_FILE_GET, "data/in.csv", 4,
                                  sha, &e) < 0 ||
            al_audit_session_file(a, sid, AL_AUDIT_FILE_DELETE, "data/in.csv",
                                  0, NULL, &e) < 0 ||
            al_audit_session_ended(a, sid, "closed", 2, 1500, &e) < 0)
                goto fail;
        return 0;
fail:
        printf("# %s\n", e.msg);
        return -1;
}

/* The session tests reuse the first test's state directory (a process
 * protects at most AL_MAX_PROTECTED paths from its sandboxes, and every
 * directory opened takes one), emptied of its store for each. */
static const char *fresh_sess_dir(void) {
        static const char *const f[] = {"audit.db", "audit.db-wal",
                                        "audit.db-shm"};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
                char p[128];
                snprintf(p, sizeof(p), "%s/%s", state, f[i]);
                unlink(p);
        }
        return state;
}

static int count_entries(json_t *x, void *ctx) {
        json_array_append(ctx, x);
        return 0;
}

static void session_records(void) {
        const char *dir = fresh_sess_dir();
        ASSERT_TRUE(dir != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        ASSERT_INT_EQ(add_runs(a, 2, NULL), 0);
        char sid[AL_AUDIT_ID_SIZE], id[80];
        ASSERT_INT_EQ(add_session(a, "key:A", sid), 0);
        ASSERT_INT_EQ(add_runs(a, 1, NULL), 0);
        al_audit_verify_report rep;
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(rep.records, 6 + 9);
        ASSERT_INT_EQ(rep.executions, 3);
        ASSERT_INT_EQ(rep.sessions, 1);
        ASSERT_INT_EQ(rep.cells, 2);
        ASSERT_INT_EQ(rep.interrupted, 0);
        /* show SESSION: the session, its cells, its files, every record */
        json_t *x = NULL;
        ASSERT_INT_EQ(al_audit_get(a, sid, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "kind"), "session");
        ASSERT_STR_EQ(jstr(x, "session_id"), sid);
        ASSERT_STR_EQ(jstr(x, "status"), "closed");
        ASSERT_STR_EQ(jstr(x, "actor"), "key:A");
        ASSERT_STR_EQ(jstr(x, "language"), "python");
        json_t *req = json_object_get(x, "request");
        ASSERT_INT_EQ(json_integer_value(json_object_get(req, "idle_timeout_s")),
                      600);
        ASSERT_INT_EQ(json_integer_value(json_object_get(
                              json_object_get(req, "limits"), "memory_mb")),
                      1024);
        ASSERT_STR_EQ(jstr(json_object_get(x, "result"), "reason"), "closed");
        json_t *cells = json_object_get(x, "cells");
        ASSERT_INT_EQ(json_array_size(cells), 2);
        ASSERT_INT_EQ(json_integer_value(json_object_get(
                              json_array_get(cells, 0), "seq")),
                      1);
        ASSERT_STR_EQ(jstr(json_array_get(cells, 1), "status"), "error");
        json_t *files = json_object_get(x, "files");
        ASSERT_INT_EQ(json_array_size(files), 3);
        ASSERT_STR_EQ(jstr(json_array_get(files, 0), "kind"), "file_put");
        ASSERT_STR_EQ(jstr(json_array_get(files, 0), "path"), "data/in.csv");
        ASSERT_STR_EQ(jstr(json_array_get(files, 2), "kind"), "file_delete");
        ASSERT_INT_EQ(json_array_size(json_object_get(x, "records")), 9);
        json_decref(x);
        /* show SESSION.2, also by a prefix of the session */
        snprintf(id, sizeof(id), "%.8s.2", sid);
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "kind"), "cell");
        ASSERT_STR_EQ(jstr(x, "session_id"), sid);
        ASSERT_STR_EQ(jstr(x, "status"), "error");
        ASSERT_STR_EQ(jstr(x, "actor"), "key:A");
        ASSERT_STR_EQ(jstr(json_object_get(x, "result"), "error_name"),
                      "ZeroDivisionError");
        ASSERT_STR_EQ(jstr(json_object_get(json_object_get(x, "request"),
                                           "code"),
                           "text"),
                      "import socket\n1/0");
        /* flagged by the same patterns as a run's code */
        ASSERT_TRUE(json_is_true(json_object_get(x, "suspicious")));
        ASSERT_INT_EQ(json_array_size(json_object_get(x, "records")), 2);
        json_decref(x);
        snprintf(id, sizeof(id), "%s.3", sid);
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), -ENOENT);
        snprintf(id, sizeof(id), "%s.02", sid);
        ASSERT_INT_EQ(al_audit_get(a, id, &x, &e), -EINVAL);
        /* a key sees only its own: another's session and cells are not
         * found, its own are */
        ASSERT_INT_EQ(al_audit_get_as(a, sid, "key:B", &x, &e), -ENOENT);
        snprintf(id, sizeof(id), "%s.1", sid);
        ASSERT_INT_EQ(al_audit_get_as(a, id, "key:B", &x, &e), -ENOENT);
        ASSERT_INT_EQ(al_audit_get_as(a, id, "key:A", &x, &e), 0);
        json_decref(x);
        /* list --session: the session and its cells, newest first */
        json_t *all = json_array();
        al_audit_filter f = {.session = sid};
        ASSERT_INT_EQ(al_audit_query(a, &f, count_entries, all, &e), 0);
        ASSERT_INT_EQ(json_array_size(all), 3);
        ASSERT_STR_EQ(jstr(json_array_get(all, 0), "kind"), "cell");
        ASSERT_STR_EQ(jstr(json_array_get(all, 2), "kind"), "session");
        json_array_clear(all);
        f = (al_audit_filter){.actor = "key:B"};
        ASSERT_INT_EQ(al_audit_query(a, &f, count_entries, all, &e), 0);
        ASSERT_INT_EQ(json_array_size(all), 0);
        /* every list: runs (session_id null), the session, its cells */
        f = (al_audit_filter){0};
        ASSERT_INT_EQ(al_audit_query(a, &f, count_entries, all, &e), 0);
        ASSERT_INT_EQ(json_array_size(all), 3 + 3);
        ASSERT_TRUE(json_is_null(json_object_get(json_array_get(all, 0),
                                                 "session_id")));
        json_array_clear(all);
        f = (al_audit_filter){.suspicious = true, .session = sid};
        ASSERT_INT_EQ(al_audit_query(a, &f, count_entries, all, &e), 0);
        ASSERT_INT_EQ(json_array_size(all), 1);
        json_decref(all);
        al_audit_close(a);
}

/* What the chain refuses to record: a cell of a session that does not
 * exist or has ended, a second record of one cell, a bad word. */
static void session_refusals(void) {
        const char *dir = fresh_sess_dir();
        ASSERT_TRUE(dir != NULL);
        al_error e = {0};
        al_audit *a = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        al_audit_session ss = {.language = "python"};
        al_audit_who w = {.source = "mcp", .actor = "key:A"};
        char sid[AL_AUDIT_ID_SIZE] = "", cid[AL_AUDIT_CELL_ID_SIZE];
        ASSERT_INT_EQ(al_audit_session_created(a, &w, &ss, sid, &e), 0);
        /* the same id again, or one that is not 32 hex digits */
        ASSERT_INT_EQ(al_audit_session_created(a, &w, &ss, sid, &e), -EEXIST);
        char bad[AL_AUDIT_ID_SIZE] = "../../etc";
        ASSERT_INT_EQ(al_audit_session_created(a, &w, &ss, bad, &e), -EINVAL);
        char other[AL_AUDIT_ID_SIZE];
        snprintf(other, sizeof(other), "%s", sid);
        other[0] = other[0] == 'f' ? '0' : 'f';
        ASSERT_INT_EQ(al_audit_cell_started(a, other, 1, "1", 1, NULL, cid, &e),
                      -ENOENT);
        ASSERT_INT_EQ(al_audit_cell_started(a, sid, 0, "1", 1, NULL, cid, &e),
                      -EINVAL);
        ASSERT_INT_EQ(al_audit_cell_started(a, sid, 1, "1", 1, NULL, cid, &e),
                      0);
        ASSERT_INT_EQ(al_audit_cell_started(a, sid, 1, "2", 1, NULL, cid, &e),
                      -EEXIST);
        al_audit_cell c = {.status = "timeout", .limits_hit = "wall",
                           .execution_count = -1};
        al_audit_cell badc = {.status = "ok\n{\"forged\":1}"};
        ASSERT_INT_EQ(al_audit_cell_finished(a, cid, &badc, &e), -EINVAL);
        ASSERT_INT_EQ(al_audit_cell_finished(a, cid, &c, &e), 0);
        ASSERT_INT_EQ(al_audit_cell_finished(a, cid, &c, &e), -EEXIST);
        char nocell[AL_AUDIT_CELL_ID_SIZE];
        snprintf(nocell, sizeof(nocell), "%s.7", sid);
        ASSERT_INT_EQ(al_audit_cell_finished(a, nocell, &c, &e), -ENOENT);
        ASSERT_INT_EQ(al_audit_session_file(a, sid, AL_AUDIT_FILE_PUT, "a", 1,
                                            "nothex", &e),
                      -EINVAL);
        ASSERT_INT_EQ(al_audit_session_ended(a, sid, "Closed!", 1, 5, &e),
                      -EINVAL);
        ASSERT_INT_EQ(al_audit_session_ended(a, sid, "memory", 1, 5, &e), 0);
        /* ended: nothing more of it is chained */
        ASSERT_INT_EQ(al_audit_session_ended(a, sid, "closed", 1, 5, &e),
                      -ESRCH);
        ASSERT_INT_EQ(al_audit_cell_started(a, sid, 2, "1", 1, NULL, cid, &e),
                      -ESRCH);
        ASSERT_INT_EQ(al_audit_session_file(a, sid, AL_AUDIT_FILE_GET, "a", 0,
                                            NULL, &e),
                      -ESRCH);
        json_t *x = NULL;
        snprintf(nocell, sizeof(nocell), "%s.1", sid);
        ASSERT_INT_EQ(al_audit_get(a, nocell, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "status"), "timeout");
        ASSERT_STR_EQ(json_string_value(json_array_get(
                              json_object_get(json_object_get(x, "result"),
                                              "limits_hit"),
                              0)),
                      "wall");
        json_decref(x);
        ASSERT_INT_EQ(al_audit_get(a, sid, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "status"), "memory");
        json_decref(x);
        al_audit_verify_report rep;
        ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
        ASSERT_TRUE(rep.ok);
        ASSERT_INT_EQ(rep.records, 4);
        al_audit_close(a);
}

/* A cell started and not finished: running while its writer lives,
 * committed (another connection reads it), then interrupted once the
 * writer is gone. */
static void session_cell_open(void) {
        const char *dir = fresh_sess_dir();
        ASSERT_TRUE(dir != NULL);
        al_error e = {0};
        al_audit *a = NULL, *b = NULL;
        ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
        al_audit_session ss = {.language = "python"};
        al_audit_who w = {.source = "http", .actor = "key:A"};
        char sid[AL_AUDIT_ID_SIZE] = "", cid[AL_AUDIT_CELL_ID_SIZE];
        ASSERT_INT_EQ(al_audit_session_created(a, &w, &ss, sid, &e), 0);
        ASSERT_INT_EQ(al_audit_cell_started(a, sid, 1, "while True: pass", 16,
                                            NULL, cid, &e),
                      0);
        ASSERT_INT_EQ(al_audit_open(dir, &b, &e), 0);
        json_t *x = NULL;
        ASSERT_INT_EQ(al_audit_get(b, cid, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "status"), "running");
        json_decref(x);
        /* the writer's owner (pid, start, boot) made stale */
        sql(dir, "UPDATE records SET detail = json_set(detail, "
                 "'$.owner.pid', 1) WHERE kind IN ('cell_started', "
                 "'session_created')");
        ASSERT_INT_EQ(al_audit_get(b, cid, &x, &e), 0);
        ASSERT_STR_EQ(jstr(x, "status"), "interrupted");
        json_decref(x);
        al_audit_close(b);
        al_audit_close(a);
}

/* Changing a cell record (its status, its code, its session) or moving
 * it breaks verify at that record. */
static void session_tamper(void) {
        static const struct {
                const char *q, *problem;
                uint64_t seq;
        } cases[] = {
                /* seq: 1 created, 2 cell_started 1, 3 cell 1, 4 started 2,
                 * 5 cell 2, 6..8 files, 9 ended */
                {"UPDATE records SET status = 'ok' WHERE seq = 5", "modified",
                 5},
                {"UPDATE records SET detail = json_set(detail, "
                 "'$.error_name', 'KeyboardInterrupt') WHERE seq = 5",
                 "modified", 5},
                {"UPDATE records SET detail = json_set(detail, "
                 "'$.code.text', 'print(1)') WHERE seq = 4",
                 "modified", 4},
                {"UPDATE records SET actor = 'key:B' WHERE seq = 4",
                 "modified", 4},
                {"DELETE FROM records WHERE seq = 5", "deleted", 5},
                {"UPDATE records SET id = substr(id, 1, 32) || '.9' "
                 "WHERE seq = 3",
                 "modified", 3},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *dir = fresh_sess_dir();
                ASSERT_TRUE(dir != NULL);
                al_error e = {0};
                al_audit *a = NULL;
                char sid[AL_AUDIT_ID_SIZE];
                ASSERT_INT_EQ(al_audit_open(dir, &a, &e), 0);
                ASSERT_INT_EQ(add_session(a, "key:A", sid), 0);
                al_audit_verify_report rep;
                ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
                ASSERT_TRUE(rep.ok);
                sql(dir, cases[i].q);
                ASSERT_INT_EQ(al_audit_verify(a, NULL, &rep, &e), 0);
                if (rep.ok || strcmp(rep.problem, cases[i].problem) ||
                    rep.bad_seq != cases[i].seq)
                        printf("# %s: ok %d, %s at %llu\n", cases[i].q, rep.ok,
                               rep.problem, (unsigned long long)rep.bad_seq);
                ASSERT_TRUE(!rep.ok);
                ASSERT_STR_EQ(rep.problem, cases[i].problem);
                ASSERT_INT_EQ(rep.bad_seq, cases[i].seq);
                al_audit_close(a);
        }
}

int main(void) {
        if (!mkdtemp(state)) {
                printf("Bail out! mkdtemp\n");
                return 1;
        }
        RUN(encoding_vector);
        RUN(encoding_sensitivity);
        RUN(chain_roundtrip);
        RUN(tamper_and_truncate);
        RUN(prune_keeps_chain);
        RUN(bad_key_and_store);
        RUN(schema_pinned);
        RUN(types_and_nuls);
        RUN(fields_capped);
        RUN(parse_times);
        RUN(state_dir_paths);
        RUN(prefix_among_own);
        RUN(pages_with_cursor);
        RUN(session_records);
        RUN(session_refusals);
        RUN(session_cell_open);
        RUN(session_tamper);
        TAP_PLAN_DONE();
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s /tmp/al-unit-audit[2345]-* /tmp/al-unit-audit6",
                 state);
        if (system(cmd) != 0)
                printf("# cleanup failed\n");
        return tap_failed ? 1 : 0;
}
