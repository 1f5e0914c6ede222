/* SPDX-License-Identifier: MIT */
/* The Model Context Protocol server: JSON-RPC in, the service's tools
 * (src/service/tools.c) out (mcp.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock.h"
#include "json.h"
#include "mcp.h"
#include "util.h"

const char *const mcp_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                    "2024-11-05", NULL};

/* JSON-RPC error codes. */
enum {
        RPC_PARSE = -32700,
        RPC_INVALID_REQUEST = -32600,
        RPC_NO_METHOD = -32601,
        RPC_INVALID_PARAMS = -32602,
        RPC_INTERNAL = -32603,
        RPC_NOT_INITIALIZED = -32000,
};

static json_t *rpc_error(json_t *id, int code, const char *msg) {
        /* msg may quote client text cut mid-character: al_jstr makes it
         * valid UTF-8, so the error is always sent */
        return json_pack("{s:s,s:O,s:{s:i,s:o}}", "jsonrpc", "2.0", "id",
                         id ? id : json_null(), "error", "code", code,
                         "message", al_jstr(msg));
}

static json_t *rpc_result(json_t *id, json_t *result) {
        return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result",
                         result ? result : json_object());
}

/* tools/call: a JSON-RPC error for a call that names no known tool or is
 * not shaped as one; a tool result (isError) for bad arguments. */
static json_t *tools_call(struct mcp_session *s, json_t *id, json_t *params,
                          struct mcp_reply *out) {
        json_t *name = json_object_get(params, "name"),
               *args = json_object_get(params, "arguments");
        if (!json_is_object(params) || !json_is_string(name))
                return rpc_error(id, RPC_INVALID_PARAMS,
                                 "tools/call wants {name, arguments}");
        const char *n = json_string_value(name);
        if (!srv_api_has_tool(n)) {
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "unknown tool '%.64s' (run_code, check_code, "
                         "list_languages, create_session, close_session, "
                         "upload_file, download_file)",
                         n);
                return rpc_error(id, RPC_INVALID_PARAMS, msg);
        }
        json_t *res = srv_api_call_tool(&s->base, n, args, &out->leftover);
        return res ? rpc_result(id, res)
                   : rpc_error(id, RPC_INTERNAL, "out of memory");
}

static json_t *initialize(struct mcp_session *s, json_t *id, json_t *params) {
        const char *want =
                json_string_value(json_object_get(params, "protocolVersion"));
        if (!json_is_object(params) || !want)
                return rpc_error(id, RPC_INVALID_PARAMS,
                                 "initialize wants params.protocolVersion");
        const char *v = mcp_versions[0]; /* ours, newest, when theirs is not */
        for (const char *const *x = mcp_versions; *x; x++)
                if (!strcmp(*x, want))
                        v = *x;
        snprintf(s->version, sizeof(s->version), "%s", v);
        s->initialized = true;
        return rpc_result(
                id,
                json_pack("{s:s,s:{s:{s:b}},s:{s:s,s:s,s:s},s:s}",
                          "protocolVersion", v, "capabilities", "tools",
                          "listChanged", 0, "serverInfo", "name", "airlock",
                          "title", "airlock sandbox", "version",
                          AIRLOCK_VERSION, "instructions",
                          "run_code runs a program in a fresh sandbox with no "
                          "network and returns stdout, stderr, status and "
                          "saved images; create_session starts a sandbox "
                          "that keeps its variables and files between "
                          "run_code calls that pass its session_id "
                          "(upload_file and download_file move files, "
                          "close_session ends it); check_code reports "
                          "static findings; list_languages lists the "
                          "languages. Every run and cell is audited."));
}

/* One parsed message: a response, or NULL (notification, response). */
static json_t *dispatch(struct mcp_session *s, json_t *m,
                        struct mcp_reply *out) {
        json_t *id = json_object_get(m, "id");
        json_t *method = json_object_get(m, "method");
        bool has_id = id != NULL;
        if (has_id && !json_is_string(id) && !json_is_integer(id))
                return rpc_error(NULL, RPC_INVALID_REQUEST,
                                 "id must be a string or an integer");
        if (!json_is_string(json_object_get(m, "jsonrpc")) ||
            strcmp(json_string_value(json_object_get(m, "jsonrpc")), "2.0"))
                return has_id ? rpc_error(id, RPC_INVALID_REQUEST,
                                          "jsonrpc must be \"2.0\"")
                              : NULL;
        if (!method) {
                /* a response to us (we send no requests) or junk */
                if (json_object_get(m, "result") || json_object_get(m, "error"))
                        return NULL;
                return rpc_error(id, RPC_INVALID_REQUEST, "no method");
        }
        if (!json_is_string(method))
                return has_id ? rpc_error(id, RPC_INVALID_REQUEST,
                                          "method must be a string")
                              : NULL;
        const char *name = json_string_value(method);
        json_t *params = json_object_get(m, "params");
        if (!has_id)
                return NULL; /* notifications: initialized, cancelled, ... */
        if (!strcmp(name, "initialize"))
                return initialize(s, id, params);
        if (!strcmp(name, "ping"))
                return rpc_result(id, NULL);
        if (!s->initialized && !s->stateless)
                return rpc_error(id, RPC_NOT_INITIALIZED,
                                 "not initialized: send initialize first");
        if (!strcmp(name, "tools/list"))
                return rpc_result(id, srv_api_tools());
        if (!strcmp(name, "tools/call"))
                return tools_call(s, id, params, out);
        char msg[160];
        snprintf(msg, sizeof(msg), "method not found: %.100s", name);
        return rpc_error(id, RPC_NO_METHOD, msg);
}

void mcp_handle(struct mcp_session *s, const char *buf, size_t len,
                struct mcp_reply *out) {
        *out = (struct mcp_reply){.http_status = 202};
        json_error_t je;
        json_t *resp = NULL;
        /* the request bounds on the bytes before a tree is built: a
         * message of a million empty objects costs a scan, not a tree */
        bool within =
                len <= MCP_MAX_MESSAGE && srv_api_json_within_bounds(buf, len);
        json_t *m = within ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)
                           : NULL;
        if (len > MCP_MAX_MESSAGE) {
                resp = rpc_error(NULL, RPC_INVALID_REQUEST,
                                 "message larger than 16 MiB");
                out->http_status = 413;
        } else if (!within) {
                resp = rpc_error(NULL, RPC_INVALID_REQUEST,
                                 "message too complex: nested deeper than 16 "
                                 "or more than 20000 values");
                out->http_status = 400;
        } else if (!m) {
                char msg[300];
                snprintf(msg, sizeof(msg), "parse error: %s at byte %d",
                         je.text, je.position);
                resp = rpc_error(NULL, RPC_PARSE, msg);
                out->http_status = 400;
        } else if (json_is_array(m)) {
                resp = rpc_error(NULL, RPC_INVALID_REQUEST,
                                 "batches are not supported (MCP "
                                 "2025-06-18 and later): one message at a "
                                 "time");
                out->http_status = 400;
        } else if (!json_is_object(m)) {
                resp = rpc_error(NULL, RPC_INVALID_REQUEST,
                                 "a message is a JSON object");
                out->http_status = 400;
        } else {
                resp = dispatch(s, m, out);
                json_t *id = json_object_get(m, "id");
                if (!resp && json_object_get(m, "method") &&
                    (json_is_string(id) || json_is_integer(id)))
                        /* a request gets an answer, whatever failed */
                        resp = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc",
                                         "2.0", "id", id, "error", "code",
                                         RPC_INTERNAL, "message",
                                         "internal error");
                out->http_status = resp ? 200 : 202;
        }
        json_decref(m);
        if (resp) {
                out->body = json_dumps(resp, JSON_COMPACT);
                json_decref(resp);
        }
}
