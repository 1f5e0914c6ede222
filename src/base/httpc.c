/* SPDX-License-Identifier: MIT */
/* The HTTP client of httpc.h: libcurl through dlopen(). */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "httpc.h"

static struct {
        pthread_once_t once;
        bool ok;
        CURLcode (*global_init)(long);
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
        CURLcode (*easy_perform)(CURL *);
        CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
        void (*easy_cleanup)(CURL *);
        struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
        void (*slist_free_all)(struct curl_slist *);
} curl = {.once = PTHREAD_ONCE_INIT};

static void curl_load(void) {
        void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return;
#define SYM(field, name)                                                       \
        if (!(*(void **)&curl.field = dlsym(h, name)))                         \
                return;
        SYM(global_init, "curl_global_init");
        SYM(easy_init, "curl_easy_init");
        SYM(easy_setopt, "curl_easy_setopt");
        SYM(easy_perform, "curl_easy_perform");
        SYM(easy_getinfo, "curl_easy_getinfo");
        SYM(easy_cleanup, "curl_easy_cleanup");
        SYM(slist_append, "curl_slist_append");
        SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
        curl.ok = curl.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

struct sink {
        al_http_response *r;
        size_t max, cap;
};

static int progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                    curl_off_t un) {
        (void)dt, (void)dn, (void)ut, (void)un;
        const volatile int *cancel = ctx;
        return cancel && *cancel; /* non-zero aborts the transfer */
}

/* The URL for messages: no credentials, no query. */
static void url_for_humans(const char *url, char *out, size_t size) {
        const char *scheme = strstr(url, "://");
        const char *host = scheme ? scheme + 3 : url;
        const char *end = host + strcspn(host, "/?#");
        const char *at = memchr(host, '@', (size_t)(end - host));
        size_t keep = scheme ? (size_t)(host - url) : 0;
        if (at)
                host = at + 1;
        snprintf(out, size, "%.*s%.*s", (int)keep, url,
                 (int)strcspn(host, "?#"), host);
}

static size_t collect(char *p, size_t sz, size_t n, void *ctx) {
        struct sink *s = ctx;
        size_t k = sz * n, take = k;
        if (!s->max)
                return k;
        if (s->r->len + take > s->max) {
                take = s->max - s->r->len;
                s->r->truncated = true;
        }
        if (s->r->len + take + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 16384;
                while (cap < s->r->len + take + 1)
                        cap *= 2;
                char *b = realloc(s->r->body, cap);
                if (!b)
                        return 0; /* curl fails the transfer */
                s->r->body = b;
                s->cap = cap;
        }
        memcpy(s->r->body + s->r->len, p, take);
        s->r->len += take;
        s->r->body[s->r->len] = '\0';
        return k;
}

int al_http_post(const char *url, const char *const *headers,
                 const char *body, size_t len, long timeout_ms,
                 size_t max_response, const volatile int *cancel,
                 al_http_response *out, al_error *err) {
        *out = (al_http_response){0};
        pthread_once(&curl.once, curl_load);
        if (!curl.ok)
                return al_error_set(err, ENOSYS,
                                    "libcurl.so.4 cannot be loaded "
                                    "(Debian: apt-get install libcurl4)");
        CURL *h = curl.easy_init();
        if (!h)
                return al_error_set(err, ENOMEM, "out of memory");
        struct curl_slist *hd = NULL;
        for (const char *const *x = headers; x && *x; x++)
                hd = curl.slist_append(hd, *x);
        char ebuf[CURL_ERROR_SIZE] = "";
        struct sink s = {.r = out, .max = max_response};
        curl.easy_setopt(h, CURLOPT_URL, url);
        curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl.easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl.easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl.easy_setopt(h, CURLOPT_USERAGENT, "airlock/1");
        curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl.easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
        curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl.easy_setopt(h, CURLOPT_WRITEDATA, &s);
        if (cancel) {
                curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
                curl.easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
                curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        }
        CURLcode rc = curl.easy_perform(h);
        if (rc == CURLE_OK)
                curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        curl.easy_cleanup(h);
        curl.slist_free_all(hd);
        if (rc == CURLE_OK)
                return 0;
        al_http_response_free(out);
        char shown[512];
        url_for_humans(url, shown, sizeof(shown));
        if (rc == CURLE_ABORTED_BY_CALLBACK)
                return al_error_set(err, ECANCELED, "cancelled");
        if (rc == CURLE_OPERATION_TIMEDOUT)
                return al_error_set(err, ETIMEDOUT,
                                    "no answer from %s within %ld ms", shown,
                                    timeout_ms);
        return al_error_set(err, EIO, "%s: %s", shown,
                            ebuf[0] ? ebuf : "transfer failed");
}

bool al_http_init(void) {
        pthread_once(&curl.once, curl_load);
        return curl.ok;
}

void al_http_response_free(al_http_response *r) {
        free(r->body);
        *r = (al_http_response){0};
}
