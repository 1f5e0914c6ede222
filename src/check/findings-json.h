/* SPDX-License-Identifier: MIT */
#pragma once
/* Static-validation findings as JSON (jansson), for the front-ends and the
 * audit log; defined in check.c. */
#include <jansson.h>

#include "airlock-check.h"

/* Static-validation findings as the JSON array of run results, audit
 * records and `airlock check --json`. */
json_t *al_findings_json(const al_findings *f);
/* The syntax error of a check as {"line","column","near"}, or JSON null. */
json_t *al_syntax_error_json(const al_findings *f);
