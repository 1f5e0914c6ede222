/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A small HTTP client over libcurl, which is loaded with dlopen() on first
 * use (linking it would add ~4.5 ms to the start of every airlock process;
 * see alert.c). Used by the alert webhooks and by airlock agent.
 */
#include <stdbool.h>
#include <stddef.h>

#include "airlock.h"

typedef struct al_http_response {
        long status;    /* HTTP status */
        char *body;     /* malloc'ed, NUL-terminated; NULL when discarded */
        size_t len;
        bool truncated; /* the body was longer than max_response */
} al_http_response;

/* POST body to url (http or https only, no redirects followed) with the
 * extra headers (NULL-terminated "Name: value" strings). The response body
 * is kept up to max_response bytes (0: discarded). 0 when an HTTP response
 * came back, whatever its status; -ENOSYS without libcurl, -ETIMEDOUT,
 * -EIO (connection, TLS, protocol) with err naming the cause. */
int al_http_post(const char *url, const char *const *headers,
                 const char *body, size_t len, long timeout_ms,
                 size_t max_response, const volatile int *cancel,
                 al_http_response *out, al_error *err);
/* cancel: when non-NULL and it becomes non-zero (e.g. from a signal
 * handler), the transfer stops within ~100 ms with -ECANCELED. Error
 * messages name the URL without user:password@ and without its query. */
void al_http_response_free(al_http_response *r);
/* Load libcurl now (curl_global_init is not thread-safe: call this before
 * starting threads that post). false when it cannot be loaded. */
bool al_http_init(void);
