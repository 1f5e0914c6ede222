/* SPDX-License-Identifier: MIT */
#pragma once
/* JSON pieces shared by the result encoder (json.c) and the audit log. */
#include <jansson.h>
#include <stddef.h>

#include "airlock-check.h"
#include "airlock.h"

/* A JSON string from bytes that should be UTF-8: invalid sequences become
 * U+FFFD. Never NULL unless out of memory. */
json_t *al_jstrn(const void *buf, size_t len);
json_t *al_jstr(const char *s);
/* The limits under their vocabulary names. */
json_t *al_limits_json(const al_limits *l);
/* Static-validation findings as the JSON array of run results, audit
 * records and `airlock check --json`. */
json_t *al_findings_json(const al_findings *f);
/* The syntax error of a check as {"line","column","near"}, or JSON null. */
json_t *al_syntax_error_json(const al_findings *f);
