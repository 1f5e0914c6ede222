/* SPDX-License-Identifier: MIT */
#pragma once
/* JSON pieces shared by the result encoder (json.c) and the audit log. */
#include <jansson.h>
#include <stddef.h>

#include "airlock.h"

/* A JSON string from bytes that should be UTF-8: invalid sequences become
 * U+FFFD. Never NULL unless out of memory. */
json_t *al_jstrn(const void *buf, size_t len);
json_t *al_jstr(const char *s);
/* The limits under their vocabulary names. */
json_t *al_limits_json(const al_limits *l);
