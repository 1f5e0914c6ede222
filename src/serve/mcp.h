/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The Model Context Protocol server (mcp.c): JSON-RPC 2.0 messages in,
 * answers out, the service's tools (run_code, check_code, list_languages
 * and the session tools: src/service/tools.c), so that a run or a cell
 * from an MCP host is validated, limited and audited exactly like one
 * over /v1/execute or /v1/sessions (source "mcp").
 * Two transports use it: stdio (cmd-mcp.c, one message per line) and
 * Streamable HTTP at /mcp on airlock serve (serve-routes.c).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "service.h"

/* Protocol versions this server speaks, newest first. */
extern const char *const mcp_versions[];

/* Most bytes one message may have (a line on stdio, a body over HTTP). */
#define MCP_MAX_MESSAGE (16u << 20)

struct mcp_session {
        bool initialized;
        /* HTTP: every POST stands alone (no session id is issued), so calls
         * are answered without a prior initialize */
        bool stateless;
        char version[16];
        /* how tool calls reach the service: the HTTP request's auth headers,
         * or a local actor for stdio; source is "mcp" */
        struct srv_request base;
};

/* The outcome of one raw message. */
struct mcp_reply {
        char *body;           /* malloc'ed JSON, or NULL: nothing to send */
        unsigned http_status; /* 200 (body), 202 (no body: a notification or
                                 a response), 400 (body: a JSON-RPC error
                                 without an id) */
        /* a finished run to free once the reply is on its way (its
         * cgroup and namespaces take a moment to remove) */
        al_result *leftover;
};

/* Handle one message (a line of stdio or an HTTP body). */
void mcp_handle(struct mcp_session *s, const char *buf, size_t len,
                struct mcp_reply *out);
