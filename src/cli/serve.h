/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * airlock serve, inside: the HTTP front (serve-http.c: libmicrohttpd,
 * bodies, the worker pool) and the API (serve-api.c: auth, routes, request
 * bounds, runs, audit). The front hands the API one whole request and gets
 * one whole response back, so the two can be split into processes
 * (docs/serve-design.md).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock-audit.h"
#include "airlock.h"
#include "airlock-check.h"
#include "airlock-keys.h"

struct srv_config {
        char listen[300]; /* HOST:PORT */
        char state[4096];
        unsigned workers;         /* executions at once */
        unsigned queue;           /* waiting executions */
        unsigned queue_timeout_s; /* longest wait in the queue */
        size_t max_body;          /* bytes */
        unsigned grace_s;         /* SIGTERM: in-flight runs get this long */
        char policy[4096];        /* "" = the built-in default */
        char policy_mode[16];     /* default for requests */
        char tls_cert[4096], tls_key[4096];
        char languages[4096];
};

/* A request as the front hands it over. */
struct srv_request {
        const char *method, *path, *query;
        const char *auth;    /* Authorization header, or NULL */
        const char *api_key; /* X-API-Key header, or NULL */
        const char *peer;    /* client address */
        const char *body;
        size_t body_len;
        bool body_too_large;
};

struct srv_response {
        unsigned status;
        char *body; /* malloc'ed */
        size_t len;
        const char *content_type;
        unsigned retry_after; /* seconds; 0 = no header */
        char log_key[AL_KEY_ID_SIZE + 8];
        char log_code[64];
        char audit_id[AL_AUDIT_ID_SIZE];
        /* the finished run, for the worker to free after the response is
         * on its way (removing the cgroup and namespaces takes a while) */
        al_result *leftover;
};

/* Whether a request is an execution (runs on a worker) or answered at
 * once by the front's thread. */
bool srv_is_execution(const char *method, const char *path);

/* The API's state, shared by every thread. */
int srv_api_init(const struct srv_config *cfg, al_error *err);
void srv_api_fini(void);
/* Re-read keys.db (also done every second). */
void srv_api_reload_keys(void);
/* Answer one request (any thread). */
void srv_api_handle(const struct srv_request *rq, struct srv_response *rs);
/* An error response: {"error": {"code", "message", "field"?}}. */
void srv_error(struct srv_response *rs, unsigned status, const char *code,
               const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* Cancel every run in flight (shutdown after the grace period). */
void srv_api_cancel_all(void);

/* The front: listen, serve until SIGTERM/SIGINT, drain. */
int srv_http_run(const struct srv_config *cfg, al_error *err);
