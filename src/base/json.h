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
/* o[key] = the bytes as text; when they are not valid UTF-8, the text
 * with each invalid byte replaced by U+FFFD and o[key_base64] the bytes
 * exactly (a run's stdout and stderr, a cell's). */
void al_json_set_text(json_t *o, const char *key, const unsigned char *buf,
                      size_t len);
/* The limits under their vocabulary names. */
json_t *al_limits_json(const al_limits *l);
