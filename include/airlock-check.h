/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Static validation: parse code with tree-sitter (python, node, bash) and
 * apply a policy's rules to the tree.
 *
 *   al_error e;
 *   al_policy *p = al_policy_load(path_or_NULL, &e);   NULL: the default
 *   al_findings f;
 *   al_check_code(p, "python", code, len, &f, &e);
 *   ... f.v[i].rule, f.v[i].severity, f.v[i].line ...
 *   al_findings_free(&f); al_policy_free(p);
 *
 * The sandbox is the boundary; this is defence in depth and evidence for
 * the audit log. Policy files are JSON (docs/airlock-check.1):
 *
 *   {"version": 1, "extends": "default" | "none", "threshold": "medium",
 *    "disable": ["rule-id", ...],
 *    "rules": [{"id": "...", "lang": "python", "match": "import",
 *               "names": ["os", ...], "severity": "high",
 *               "message": "imports {name}"}, ...]}
 *
 * A rule with the id of an inherited rule replaces it.
 */
#include <stdbool.h>
#include <stddef.h>

#include "airlock.h"

typedef enum {
        AL_SEV_INFO,
        AL_SEV_LOW,
        AL_SEV_MEDIUM,
        AL_SEV_HIGH,
        AL_SEV_CRITICAL,
} al_severity;

const char *al_severity_name(al_severity s);
/* -1 when name is not a severity */
int al_severity_parse(const char *name);

typedef struct {
        char rule[72];
        al_severity severity;
        unsigned line, column;         /* 1-based; column in bytes */
        unsigned end_line, end_column; /* exclusive end */
        char snippet[128];             /* the node's first line, bounded */
        char message[256];
} al_finding;

typedef struct {
        al_finding *v;
        size_t n, cap;
        /* the parser could not make sense of part of the code */
        bool syntax_error;
        unsigned error_line, error_column;
        char error_snippet[128];
} al_findings;

typedef struct al_policy al_policy;

/* The policy in FILE (NULL: the built-in default). Errors name the file
 * and the JSON path of what is wrong. */
al_policy *al_policy_load(const char *file, al_error *err);
/* The same from a buffer; origin names it in errors. */
al_policy *al_policy_parse(const char *json, size_t len, const char *origin,
                           al_error *err);
al_policy *al_policy_free(al_policy *p); /* NULL-safe; returns NULL */
/* Findings at or above this make `check` exit 1 and `enforce` refuse. */
al_severity al_policy_threshold(const al_policy *p);
/* A short name: the file's, or "default". */
const char *al_policy_name(const al_policy *p);
/* The allow-listed python modules when the policy has an active
 * import-allowlist rule for python (for the runtime import guard), as a
 * NULL-terminated array owned by the policy; NULL without such a rule. */
const char *const *al_policy_python_allowlist(const al_policy *p);
/* The policy's "network" section: the hosts a run under it may reach
 * at most (a run's or request's allowlist must be within it) and its byte
 * cap each way in max_bytes_out/max_bytes_in; NULL when the policy has
 * none (no ceiling of its own). Owned by the policy. */
struct al_net_policy;
const struct al_net_policy *al_policy_network(const al_policy *p);

/* Languages the checker parses: python, node, bash (profile names). */
bool al_check_supports(const char *lang);

/* Parse code as lang and apply the policy. A syntax error is not a
 * failure: it is reported in out->syntax_error with its position (and the
 * rules still run over what could be parsed). Returns 0, or -errno with
 * err filled (unsupported language, out of memory). */
int al_check_code(const al_policy *p, const char *lang, const char *code,
             size_t len, al_findings *out, al_error *err);
void al_findings_free(al_findings *f);
/* al_check_code over a spec's language and code: -ENOTSUP when the
 * language has no checker (tested before the policy: p may be NULL to
 * ask only that). */
int al_spec_check(const al_spec *s, const al_policy *p, al_findings *out,
                  al_error *err);
/* The runtime import guard for python (defence in depth behind the static
 * pass): when the policy has a python allow-list and the spec is python,
 * add /workspace/.airlock/sitecustomize.py and PYTHONPATH so that the
 * interpreter refuses, at run time, imports by the code of modules not on
 * the list (also those the static pass could not see, like a name built
 * from strings). 1 when installed, 0 when not needed, -errno. */
int al_spec_add_import_guard(al_spec *s, const al_policy *p, al_error *err);
/* The policy's network section applied to a run: its allowlist must be
 * within the policy's network.allow (-EACCES and err naming the first
 * entry that is not), and the policy's max_bytes caps its bytes each way.
 * 0 when it is, when the run has no network or the policy no section. */
int al_spec_apply_network_policy(al_spec *s, const al_policy *p, al_error *err);
/* Static validation before a run, as every front-end applies it (run,
 * serve, mcp). mode: "off" (nothing), "record" (check, run regardless),
 * "warn" (check, run, install the import guard) or "enforce" (refuse on
 * findings at or above the policy's threshold, or code that does not
 * parse or cannot be checked). */
typedef struct al_verdict {
        al_findings findings;  /* when checked */
        char *findings_json;   /* the same as JSON (al_findings_json); NULL
                                * when the code was not checked */
        /* NULL: go on and run. Else why not, a stable code:
         * policy_violation, policy_unsupported, policy_check_failed (all
         * three a refusal of the code) or policy_guard_failed (ours) */
        const char *refusal;
        /* the refusal's message; without a refusal, a note when the code
         * could not be checked in a mode that runs it anyway */
        char message[1024];
} al_verdict;
/* Whether mode is off, record, warn or enforce. */
bool al_policy_mode_ok(const char *mode);
/* -EINVAL for an unknown mode; 0 otherwise, with the verdict in *v. */
int al_spec_validate(al_spec *s, const al_policy *p, const char *mode,
                     al_verdict *v, al_error *err);
void al_verdict_free(al_verdict *v);

/* Findings at or above a severity; a syntax error counts as one of
 * severity high (as al_findings_json lists it). */
size_t al_findings_count_at(const al_findings *f, al_severity min);
