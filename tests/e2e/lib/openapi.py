"""docs/openapi.json against real responses: conforms() tells why a
response does not match the document (or ''), and records the operation
it called in SEEN_OPS (serve.t and sessions.t check that the document's
operations are all called)."""
import json
import os
import re

import jsonschema  # Debian: python3-jsonschema

from airlock import REPO

OPENAPI = json.load(open(os.path.join(REPO, "docs", "openapi.json")))
SEEN_OPS = set()


def operation(method, target):
    """-> (path template, operation) of the document for a request."""
    path = target.split("?")[0]
    for tpl, ops in OPENAPI["paths"].items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(tpl)), path):
            return tpl, ops.get(method.lower())
    # a template whose last parameter is a path ({path}: slashes allowed)
    for tpl, ops in OPENAPI["paths"].items():
        if tpl.endswith("{path}") and re.fullmatch(
                re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(tpl[:-len("{path}")])) + ".+", path):
            return tpl, ops.get(method.lower())
    return None, None


def conforms(method, target, status, hdrs, raw):
    """'' when the response matches the document, else why not."""
    tpl, op = operation(method, target)
    if not tpl:
        return "" if status == 404 else "%s is not in the document" % target
    if not op:
        return "" if status == 405 else "%s %s is not in the document" % (method, tpl)
    SEEN_OPS.add((method.upper(), tpl))
    resp = op["responses"].get(str(status))
    if not resp:
        return "%s %s: status %d is not documented" % (method, tpl, status)
    for h in resp.get("headers", {}):
        if status in (429, 503) and h.lower() not in hdrs:
            return "%s %s %d: no %s header" % (method, tpl, status, h)
    content = resp.get("content", {})
    if not content:
        return ""
    got = hdrs.get("content-type")
    if got in content:
        ctype = got
    elif "*/*" in content:
        ctype = "*/*"
    else:
        return "content-type %s, document says %s" % (got, ", ".join(content))
    media = content[ctype]
    if "schema" not in media or ctype == "*/*" or not ctype.endswith("json") and not ctype.startswith("text/"):
        return ""
    body = raw.decode() if ctype.startswith("text/") else json.loads(raw or b"null")
    schema = dict(media["schema"], components=OPENAPI["components"])
    errs = sorted(jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: e.path)
    return "; ".join("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200]) for e in errs[:3])


def documented_ops(methods=("get", "post")):
    """{(METHOD, template)} of the document's operations."""
    return {(m.upper(), tpl) for tpl, o in OPENAPI["paths"].items() for m in o if m in methods}
