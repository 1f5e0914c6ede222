"""Adapters that give an agent framework a sandboxed code tool.

- :func:`openai_tool` / :func:`run_tool_call`: OpenAI tool calling (Chat
  Completions and Responses shapes).
- :func:`langchain_tool`: a LangChain ``BaseTool`` (imported only when
  called: this package does not require langchain).
- :class:`AirlockSandbox` / :class:`AsyncAirlockSandbox`: the interface of
  the tutorials' sandbox classes, ``execute(code, language="python",
  timeout=30) -> {"success", "output", "error"}``, so code written against
  a Docker or Azure sandbox class switches by changing one line.
"""
import json
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from .errors import BadRequest, Rejected
from .results import Result, compat_from_result

__all__ = ["openai_tool", "run_tool_call", "langchain_tool", "AirlockSandbox",
           "AsyncAirlockSandbox", "compat_from_result", "tool_output", "DEFAULT_LANGUAGES",
           "TOOL_NAME", "MAX_TOOL_OUTPUT"]

#: the languages the tool offers a model unless told otherwise
DEFAULT_LANGUAGES = ("python", "node", "bash")

#: the function name a model calls
TOOL_NAME = "run_code"

#: a tool message is cut to this many characters of stdout and of stderr,
#: so one chatty run cannot fill the model's context
MAX_TOOL_OUTPUT = 20000

TOOL_DESCRIPTION = (
    "Run code in an isolated, audited sandbox (no network, no host files, "
    "bounded time and memory) and return its status, exit code, stdout and stderr. "
    "State is not kept between calls.")


def _schema(languages: Sequence[str]) -> Dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the program to run"},
            "language": {"type": "string", "enum": list(languages),
                         "description": "its language (default %s)" % languages[0]},
        },
        "required": ["code"],
        "additionalProperties": False,
    }


def openai_tool(languages: Sequence[str] = DEFAULT_LANGUAGES, *, name: str = TOOL_NAME,
                description: str = TOOL_DESCRIPTION, api: str = "chat") -> Dict[str, Any]:
    """The tool definition to pass in ``tools=[...]``: the Chat Completions
    shape (``api="chat"``) or the Responses API's (``api="responses"``)."""
    if not languages:
        raise ValueError("at least one language")
    if api == "chat":
        return {"type": "function",
                "function": {"name": name, "description": description,
                             "parameters": _schema(languages)}}
    if api == "responses":
        return {"type": "function", "name": name, "description": description,
                "parameters": _schema(languages)}
    raise ValueError("api is 'chat' or 'responses'")


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + "\n[... %d more characters cut]" % (len(s) - n)


def tool_output(result: Result, max_output: int = MAX_TOOL_OUTPUT) -> str:
    """What a model is told of a run: a compact JSON text."""
    out: Dict[str, Any] = {"status": result.status, "exit_code": result.exit_code,
                           "stdout": _cut(result.stdout, max_output),
                           "stderr": _cut(result.stderr, max_output)}
    if result.reason:
        out["reason"] = result.reason
    if result.limits_hit:
        out["limits_hit"] = result.limits_hit
    if result.findings:
        out["findings"] = [{"rule": f.get("rule"), "message": f.get("message")}
                           for f in result.findings]
    if result.files:
        out["files"] = [f.name for f in result.files]
    out["audit_id"] = result.audit_id
    return json.dumps(out)


def run_tool_call(client: Any, tool_call: Any, *, timeout: float = 30,
                  max_output: int = MAX_TOOL_OUTPUT, name: str = TOOL_NAME,
                  **run_kwargs: Any) -> Dict[str, Any]:
    """Run one tool call of a model's reply -> the message to append.

    TOOL_CALL is a Chat Completions tool call (``{"id", "type": "function",
    "function": {"name", "arguments"}}``, a dict or the SDK's object) ->
    ``{"role": "tool", "tool_call_id", "content"}``; or a Responses API
    ``function_call`` item (``{"call_id", "name", "arguments"}``) ->
    ``{"type": "function_call_output", "call_id", "output"}``. Arguments the
    model got wrong, and a policy refusal, are told to the model in the
    content; a call of another function raises ValueError; refusals of
    the service (auth, rate) raise."""
    fn = _get(tool_call, "function")
    if fn is not None:
        fname, args, cid = _get(fn, "name"), _get(fn, "arguments"), _get(tool_call, "id")
        responses = False
    else:
        fname, args = _get(tool_call, "name"), _get(tool_call, "arguments")
        cid, responses = _get(tool_call, "call_id"), True
    if fname != name:
        raise ValueError("not a %s call: %r" % (name, fname))

    def reply(content: str) -> Dict[str, Any]:
        if responses:
            return {"type": "function_call_output", "call_id": cid, "output": content}
        return {"role": "tool", "tool_call_id": cid, "content": content}

    try:
        a = json.loads(args) if isinstance(args, (str, bytes)) else dict(args or {})
        if not isinstance(a, dict):
            raise ValueError("the arguments are not an object")
        code = a.get("code")
        language = a.get("language", "python")
        if not isinstance(code, str) or not isinstance(language, str):
            raise ValueError("code and language must be strings")
    except (ValueError, TypeError) as e:
        return reply(json.dumps({"status": "invalid_arguments", "error": str(e)}))
    try:
        r = client.run(code, language, timeout=timeout, **run_kwargs)
    except Rejected as e:
        return reply(json.dumps({"status": "rejected", "error": e.message,
                                 "findings": [{"rule": f.get("rule"), "message": f.get("message")}
                                              for f in e.findings],
                                 "audit_id": e.audit_id}))
    except BadRequest as e:
        return reply(json.dumps({"status": "invalid_arguments", "error": e.message,
                                 "code": e.code}))
    return reply(tool_output(r, max_output))


def langchain_tool(client: Any, *, name: str = TOOL_NAME, description: str = TOOL_DESCRIPTION,
                   timeout: float = 30, max_output: int = MAX_TOOL_OUTPUT) -> Any:
    """A LangChain ``BaseTool`` that runs code with CLIENT (an
    :class:`Airlock` or local client). Needs ``langchain-core`` (or
    ``langchain``): ImportError otherwise."""
    try:
        from langchain_core.tools import BaseTool  # type: ignore[import]
    except ImportError:
        try:
            from langchain.tools import BaseTool  # type: ignore[import]
        except ImportError as e:
            raise ImportError("langchain_tool() needs langchain-core: "
                              "pip install langchain-core") from e

    def _run(self: Any, code: str, language: str = "python", **_: Any) -> str:
        try:
            return tool_output(client.run(code, language, timeout=timeout), max_output)
        except Rejected as e:
            return json.dumps({"status": "rejected", "error": e.message,
                               "audit_id": e.audit_id})

    async def _arun(self: Any, code: str, language: str = "python", **_: Any) -> str:
        import asyncio
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: _run(self, code, language))

    cls = type("AirlockCodeTool", (BaseTool,), {
        "__annotations__": {"name": str, "description": str},
        "name": name, "description": description, "_run": _run, "_arun": _arun,
        "__doc__": "Runs code in an airlock sandbox."})
    return cls()


class AirlockSandbox:
    """The tutorials' sandbox interface on airlock:
    ``execute(code, language="python", timeout=30) -> {"success", "output",
    "error"}`` (plus ``id``, the audit id).

    ``client`` is an :class:`Airlock` (POST /execute) or a local client;
    without one, ``Airlock(url, api_key)`` (AIRLOCK_URL, AIRLOCK_API_KEY).
    A failed run, a policy refusal and a malformed request (an unknown
    language, say) are ``success: False`` with the reason in ``error``;
    refusals of the service (key, rate, outage) raise."""

    def __init__(self, client: Any = None, *, url: Optional[str] = None,
                 api_key: Optional[str] = None) -> None:
        if client is None:
            from .client import Airlock
            client = Airlock(url, api_key)
        self.client = client

    def __repr__(self) -> str:
        return "AirlockSandbox(%r)" % (self.client,)

    def execute(self, code: str, language: str = "python",
                timeout: Union[int, float] = 30) -> Dict[str, Any]:
        """Run CODE -> {"success", "output", "error", "id"}."""
        try:
            return self.client.execute_compat(code, language, timeout)  # type: ignore[no-any-return]
        except (Rejected, BadRequest) as e:
            return {"success": False, "output": "", "error": e.message, "id": e.audit_id}

    def run_code(self, code: str, language: str = "python",
                 timeout: Union[int, float] = 30) -> Dict[str, Any]:
        """Alias of :meth:`execute`."""
        return self.execute(code, language, timeout)


class AsyncAirlockSandbox:
    """:class:`AirlockSandbox` for asyncio: ``await sb.execute(code,
    language="python", timeout=30)``. Runs the blocking client in a worker
    thread, so the event loop never waits on the sandbox."""

    def __init__(self, client: Any = None, *, url: Optional[str] = None,
                 api_key: Optional[str] = None) -> None:
        self._sync = AirlockSandbox(client, url=url, api_key=api_key)

    def __repr__(self) -> str:
        return "AsyncAirlockSandbox(%r)" % (self._sync.client,)

    async def execute(self, code: str, language: str = "python",
                      timeout: Union[int, float] = 30) -> Dict[str, Any]:
        """Run CODE -> {"success", "output", "error", "id"}."""
        import asyncio
        return await asyncio.get_running_loop().run_in_executor(
            None, self._sync.execute, code, language, timeout)

    async def run_code(self, code: str, language: str = "python",
                       timeout: Union[int, float] = 30) -> Dict[str, Any]:
        """Alias of :meth:`execute`."""
        return await self.execute(code, language, timeout)

