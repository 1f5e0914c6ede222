/* SPDX-License-Identifier: MIT */
/*
 * The result as JSON: one object, the same for the CLI, and later HTTP and
 * MCP. Text that is not valid UTF-8 survives: "stdout" holds it with each
 * invalid byte replaced by U+FFFD, and "stdout_base64" the exact bytes
 * (likewise for stderr). Files always carry base64 content.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "json.h"
#include "macro.h"
#include "util.h"

/* A JSON string from text that should be UTF-8 but may carry bytes the
 * code chose (reasons quoting its errors, file names): never NULL. */
json_t *al_jstrn(const void *buf, size_t len) {
        size_t n = 0;
        if (al_utf8_valid(buf, len))
                return json_stringn(buf, len);
        char *clean = al_utf8_sanitize(buf, len, &n);
        json_t *j = clean ? json_stringn(clean, n) : json_string("");
        free(clean);
        return j;
}

json_t *al_jstr(const char *s) {
        return al_jstrn(s, strlen(s));
}

json_t *al_limits_json(const al_limits *l) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                         "wall_ms", (json_int_t)l->wall_ms, "cpu_ms",
                         (json_int_t)l->cpu_ms, "memory_mb",
                         (json_int_t)l->memory_mb, "pids", (json_int_t)l->pids,
                         "disk_mb", (json_int_t)l->disk_mb, "output_bytes",
                         (json_int_t)l->output_bytes, "open_files",
                         (json_int_t)l->open_files, "net_connections",
                         (json_int_t)l->net_connections, "net_bytes_out",
                         (json_int_t)l->net_bytes_out, "net_bytes_in",
                         (json_int_t)l->net_bytes_in, "net_idle_ms",
                         (json_int_t)l->net_idle_ms);
}

static json_t *protections_json(const al_protections *p) {
        json_t *ns =
                json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "user",
                          p->user_ns, "pid", p->pid_ns, "mount", p->mount_ns,
                          "net", p->net_ns, "ipc", p->ipc_ns, "uts", p->uts_ns,
                          "cgroup", p->cgroup_ns, "time", p->time_ns);
        json_t *o = json_pack(
                "{s:o,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:{s:s,s:b,s:b,s:b},s:s,"
                "s:I}",
                "namespaces", ns, "pivot_root", p->pivot_root, "readonly_root",
                p->readonly_root, "no_new_privs", p->no_new_privs,
                "capabilities_dropped", p->caps_dropped, "seccomp", p->seccomp,
                "setsid", p->setsid, "rlimits", p->rlimits, "cgroup", "version",
                p->cgroup ? p->cgroup : "none", "memory", p->cg_memory, "pids",
                p->cg_pids, "cpu", p->cg_cpu, "identity",
                p->id_mode ? p->id_mode : "", "host_uid", (json_int_t)p->uid);
        if (o && p->note[0])
                json_object_set_new(o, "note", al_jstr(p->note));
        return o;
}

/* Put buf as text under key, plus key_base64 when it is not UTF-8. */
void al_json_set_text(json_t *o, const char *key, const unsigned char *buf,
                      size_t len) {
        static const unsigned char empty[1];
        if (!buf)
                buf = empty;
        if (al_utf8_valid(buf, len)) {
                json_object_set_new(o, key,
                                    json_stringn((const char *)buf, len));
                return;
        }
        size_t n = 0;
        char *clean = al_utf8_sanitize(buf, len, &n);
        char *b64 = al_base64_encode(buf, len);
        char k64[64];
        snprintf(k64, sizeof(k64), "%s_base64", key);
        json_object_set_new(o, key,
                            clean ? json_stringn(clean, n) : json_string(""));
        json_object_set_new(o, k64, b64 ? json_string(b64) : json_null());
        free(clean);
        free(b64);
}

static json_t *result_json(const al_result *r) {
        json_t *o = json_object();
        json_object_set_new(o, "status",
                            json_string(al_status_name(r->status)));
        json_object_set_new(o, "reason", al_jstr(r->reason));
        if (r->audit_id[0])
                json_object_set_new(o, "audit_id", json_string(r->audit_id));
        if (r->findings_json) {
                json_t *f = json_loads(r->findings_json, 0, NULL);
                json_object_set_new(o, "findings", f ? f : json_array());
        }
        json_object_set_new(o, "exit_code",
                            r->exit_code >= 0 ? json_integer(r->exit_code)
                                              : json_null());
        json_object_set_new(o, "signal", json_integer(r->signal));
        al_json_set_text(o, "stdout", r->stdout_buf, r->stdout_len);
        al_json_set_text(o, "stderr", r->stderr_buf, r->stderr_len);
        json_object_set_new(o, "stdout_truncated",
                            json_boolean(r->stdout_truncated));
        json_object_set_new(o, "stderr_truncated",
                            json_boolean(r->stderr_truncated));
        json_object_set_new(o, "wall_ms", json_integer((json_int_t)r->wall_ms));
        json_object_set_new(o, "cpu_ms", json_integer((json_int_t)r->cpu_ms));
        json_object_set_new(o, "memory_peak_bytes",
                            json_integer((json_int_t)r->memory_peak_bytes));
        json_t *hits = json_array();
        char buf[sizeof(r->limits_hit)];
        snprintf(buf, sizeof(buf), "%s", r->limits_hit);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
             t = strtok_r(NULL, ",", &save))
                json_array_append_new(hits, json_string(t));
        json_object_set_new(o, "limits_hit", hits);
        json_t *files = json_array();
        for (size_t i = 0; i < r->n_files; i++) {
                char *b64 =
                        al_base64_encode(r->files[i].data, r->files[i].size);
                json_array_append_new(
                        files,
                        json_pack("{s:s,s:I,s:s,s:s}", "name", r->files[i].name,
                                  "size", (json_int_t)r->files[i].size, "mime",
                                  r->files[i].mime, "content_base64",
                                  b64 ? b64 : ""));
                free(b64);
        }
        json_object_set_new(o, "files", files);
        if (r->files_note[0])
                json_object_set_new(o, "files_note", al_jstr(r->files_note));
        if (r->network_json) {
                json_t *nw = json_loads(r->network_json, JSON_ALLOW_NUL, NULL);
                json_object_set_new(o, "network", nw ? nw : json_array());
        }
        if (r->start[0]) {
                json_object_set_new(o, "start", json_string(r->start));
                if (r->start_reason[0])
                        json_object_set_new(o, "start_reason",
                                            json_string(r->start_reason));
        }
        json_object_set_new(o, "limits", al_limits_json(&r->limits));
        json_object_set_new(o, "protections",
                            protections_json(&r->protections));
        if (r->compile) {
                json_t *c = json_object();
                json_object_set_new(
                        c, "status",
                        json_string(al_status_name(r->compile->status)));
                json_object_set_new(c, "reason", al_jstr(r->compile->reason));
                json_object_set_new(
                        c, "exit_code",
                        r->compile->exit_code >= 0
                                ? json_integer(r->compile->exit_code)
                                : json_null());
                al_json_set_text(c, "stdout", r->compile->stdout_buf,
                                 r->compile->stdout_len);
                al_json_set_text(c, "stderr", r->compile->stderr_buf,
                                 r->compile->stderr_len);
                json_object_set_new(
                        c, "wall_ms",
                        json_integer((json_int_t)r->compile->wall_ms));
                json_object_set_new(c, "limits",
                                    al_limits_json(&r->compile->limits));
                json_object_set_new(o, "compile", c);
        }
        if (r->has_timing) {
                const al_timing *t = &r->timing;
                const struct {
                        const char *k;
                        double v;
                } ph[] = {
                        {"prepare_ms", t->prepare_ms},
                        {"cgroup_ms", t->cgroup_ms},
                        {"clone_ms", t->clone_ms},
                        {"namespaces_ms", t->namespaces_ms},
                        {"idmap_ms", t->idmap_ms},
                        {"attach_ms", t->attach_ms},
                        {"gate_ms", t->gate_ms},
                        {"mounts_ms", t->mounts_ms},
                        {"net_wait_ms", t->net_wait_ms},
                        {"inputs_ms", t->inputs_ms},
                        {"lockdown_ms", t->lockdown_ms},
                        {"seccomp_ms", t->seccomp_ms},
                        {"run_ms", t->run_ms},
                        {"exit_ms", t->exit_ms},
                        {"collect_ms", t->collect_ms},
                        {"teardown_ms", t->teardown_ms},
                        {"setup_ms", t->setup_ms},
                        {"total_ms", t->total_ms},
                };
                json_t *tj = json_object();
                for (size_t i = 0; i < ARRAY_SIZE(ph); i++)
                        json_object_set_new(
                                tj, ph[i].k,
                                json_real((double)(int64_t)(ph[i].v * 1000 +
                                                            0.5) /
                                          1000));
                json_object_set_new(o, "timing", tj);
        }
        return o;
}

char *al_result_to_json(const al_result *r, bool pretty) {
        json_t *o = result_json(r);
        if (!o)
                return NULL;
        char *s = json_dumps(o, (pretty ? JSON_INDENT(2) : JSON_COMPACT) |
                                        JSON_PRESERVE_ORDER);
        json_decref(o);
        return s;
}
