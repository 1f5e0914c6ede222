/* SPDX-License-Identifier: MIT */
/*
 * A run's verdict under a policy (al_spec_validate): the code checked
 * against the policy's rules in mode off, record, warn or enforce, and for
 * python the runtime import guard of the policy's allow-list.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock-check.h"
#include "check-internal.h"
#include "egress.h"
#include "error.h"
#include "findings-json.h"
#include "macro.h"
#include "spec.h"

int al_spec_check(const al_spec *s, const al_policy *p, al_findings *out,
                  al_error *err) {
        memset(out, 0, sizeof(*out));
        if (!s->lang || !s->has_code)
                return al_error_set(err, EINVAL, "no language or no code");
        if (!al_check_supports(s->lang->name))
                return al_error_set(err, ENOTSUP,
                                    "static validation does not know %s",
                                    s->lang->name);
        if (!p)
                return al_error_set(err, EINVAL, "no policy");
        return al_check_code(p, s->lang->name, (const char *)s->code,
                             s->code_len, out, err);
}

int al_spec_apply_network_policy(al_spec *s, const al_policy *p,
                                 al_error *err) {
        const al_net_policy *pol = al_policy_network(p);
        const al_net_policy *want = al_spec_network(s);
        const al_net_rule *bad = NULL;
        if (!pol || !want)
                return 0;
        if (!al_net_policy_subset(want, pol, &bad)) {
                char entry[AL_NET_HOST_MAX + 16] = "";
                if (bad)
                        al_net_rule_format(bad, entry, sizeof(entry));
                return al_error_set(err, EACCES,
                                    "%s is not within the network.allow of "
                                    "policy %s",
                                    entry, al_policy_name(p));
        }
        al_spec_network_cap_bytes(s, pol->max_bytes_out);
        return 0;
}

/* Loaded by site.py at interpreter start (PYTHONPATH comes before the
 * standard library). Imports made by the code itself (frames of files in
 * /workspace, or of code it compiled: "<string>") must name an allowed
 * module; modules the allowed ones import for themselves pass. */
static const char GUARD_HEAD[] =
        "# airlock: the runtime import guard of the policy's allow-list.\n"
        "# Defence in depth behind the static check; the sandbox is the "
        "boundary.\n"
        "def _airlock_guard(allowed):\n"
        "    import builtins, sys\n"
        "    real, frame = builtins.__import__, sys._getframe\n"
        "    def ok(name):\n"
        "        return any(name == a or name.startswith(a + '.') for a in "
        "allowed)\n"
        "    def guarded(name, globals=None, locals=None, fromlist=(), "
        "level=0):\n"
        "        f = frame(1).f_code.co_filename\n"
        "        mine = f.startswith('/workspace/') or (f.startswith('<') and "
        "not f.startswith('<frozen'))\n"
        "        if mine and (level != 0 or not ok(name)):\n"
        "            raise ImportError('airlock: the policy does not allow "
        "importing %r' % (name if level == 0 else '.' * level + name), "
        "name=name)\n"
        "        return real(name, globals, locals, fromlist, level)\n"
        "    builtins.__import__ = guarded\n"
        "_airlock_guard((";
static const char GUARD_TAIL[] = "))\ndel _airlock_guard\n";

bool al_policy_mode_ok(const char *m) {
        return m && (!strcmp(m, "off") || !strcmp(m, "record") ||
                     !strcmp(m, "warn") || !strcmp(m, "enforce"));
}

void al_verdict_free(al_verdict *v) {
        al_findings_free(&v->findings);
        free(v->findings_json);
        v->findings_json = NULL;
}

int al_spec_validate(al_spec *s, const al_policy *p, const char *mode,
                     al_verdict *v, al_error *err) {
        memset(v, 0, sizeof(*v));
        bool enforce = !strcmp(mode, "enforce"), warn = !strcmp(mode, "warn");
        if (!al_policy_mode_ok(mode))
                return al_error_set(err, EINVAL,
                                    "policy mode: off, record, warn or "
                                    "enforce, not '%s'",
                                    mode);
        if (!strcmp(mode, "off"))
                return 0;
        al_error e = {0};
        const char *lang = s->lang ? s->lang->name : "(none)";
        if (!s->lang || !al_check_supports(lang)) {
                if (enforce) {
                        v->refusal = "policy_unsupported";
                        snprintf(v->message, sizeof(v->message),
                                 "static validation does not know %s: a "
                                 "policy cannot be enforced on it (policy "
                                 "mode warn runs it unchecked)",
                                 lang);
                }
                return 0;
        }
        if (al_spec_check(s, p, &v->findings, &e) < 0) {
                if (enforce)
                        v->refusal = "policy_check_failed";
                snprintf(v->message, sizeof(v->message),
                         "the code could not be checked: %s", e.msg);
                return 0;
        }
        json_t *fj = al_findings_json(&v->findings);
        v->findings_json = fj ? json_dumps(fj, JSON_COMPACT) : NULL;
        json_decref(fj);
        const al_findings *f = &v->findings;
        al_severity t = al_policy_threshold(p);
        size_t blocking = al_findings_count_at(f, t);
        if (enforce && blocking) {
                const al_finding *x = NULL;
                for (size_t i = 0; i < f->n && !x; i++)
                        if (f->v[i].severity >= t)
                                x = &f->v[i];
                v->refusal = "policy_violation";
                if (!x)
                        snprintf(v->message, sizeof(v->message),
                                 "policy %s: the code does not parse "
                                 "(%u:%u near '%s'), so it cannot be checked",
                                 al_policy_name(p), f->error_line,
                                 f->error_column, f->error_snippet);
                else
                        snprintf(v->message, sizeof(v->message),
                                 "policy %s: %zu finding%s at or above %s, "
                                 "first %s at %u:%u: %s",
                                 al_policy_name(p), blocking,
                                 blocking == 1 ? "" : "s", al_severity_name(t),
                                 x->rule, x->line, x->column, x->message);
                return 0;
        }
        /* the allow-list also at run time (python) */
        if ((enforce || warn) && al_spec_add_import_guard(s, p, &e) < 0) {
                v->refusal = "policy_guard_failed";
                snprintf(v->message, sizeof(v->message),
                         "the runtime import guard cannot be installed: %s",
                         e.msg);
        }
        return 0;
}

int al_spec_add_import_guard(al_spec *s, const al_policy *p, al_error *err) {
        const char *const *allow = al_policy_python_allowlist(p);
        if (!allow || !s->lang || strcmp(s->lang->name, "python"))
                return 0;
        size_t cap = sizeof(GUARD_HEAD) + sizeof(GUARD_TAIL) + 16, len = 0;
        for (size_t i = 0; allow[i]; i++)
                cap += strlen(allow[i]) * 4 + 4;
        _cleanup_free_ char *src = malloc(cap);
        if (!src)
                return al_error_set(err, ENOMEM, "out of memory");
        len = (size_t)snprintf(src, cap, "%s", GUARD_HEAD);
        for (size_t i = 0; allow[i]; i++) {
                /* names as python string literals: escape everything that
                 * is not a plain module-name character */
                src[len++] = '\'';
                for (const char *c = allow[i]; *c; c++) {
                        unsigned char u = (unsigned char)*c;
                        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                            (u >= '0' && u <= '9') || u == '_' || u == '.')
                                src[len++] = (char)u;
                        else
                                len += (size_t)snprintf(src + len, cap - len,
                                                        "\\x%02x", u);
                }
                src[len++] = '\'';
                src[len++] = ',';
        }
        len += (size_t)snprintf(src + len, cap - len, "%s", GUARD_TAIL);
        int r = al_spec_add_file(s, ".airlock/sitecustomize.py", src, len,
                                 false, err);
        if (r < 0)
                return r;
        if ((r = al_spec_add_env(s, "PYTHONPATH", "/workspace/.airlock", err)) <
            0)
                return r;
        return 1;
}
