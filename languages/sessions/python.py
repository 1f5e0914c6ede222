# airlock session driver for Python.
#
# Runs inside the sandbox as `/usr/bin/python3 -B -u -c <this file>`, cwd
# /workspace; reads cells on fd 3 and answers on fd 4 (the protocol is in
# languages/sessions/README.md).  Cells run the way a Jupyter/IPython kernel
# runs them: one user namespace, the last expression's value as a rich
# result, display(), matplotlib figures shown at the end of a cell,
# exceptions with the cell's own frames, top-level await.  It imports only
# the standard library, and only what a cell needs, so a session starts
# about as fast as a bare interpreter.
#
# The driver is no boundary: the cell runs with its privileges and can find
# fds 3 and 4.  All it can do with them is talk for its own session, whose
# replies the supervisor checks (seq, size, form).  What the driver does
# guard against is a cell breaking the session by accident: rebinding
# builtins, replacing or closing sys.stdout, closing fds 0-2, sys.exit(),
# Ctrl-C between cells.
import builtins as _bi
import os
import sys

# The driver's own builtins: every function below is defined after this
# line, so it looks builtins up in this copy, and a cell that rebinds
# builtins.len or builtins.print does not reach the driver.
__builtins__ = dict(_bi.__dict__)

# The C halves of ast, json and signal: the Python modules would cost a
# session ~10 ms of start (re, enum, tokenize); what needs more imports it
# when a cell needs it.
import _ast  # noqa: E402
import _json  # noqa: E402
import _signal  # noqa: E402

REQ_FD = 3  # requests from the supervisor
REP_FD = 4  # replies to the supervisor
# The supervisor refuses a reply frame over 16 MiB (AL_SESSION_FRAME_MAX);
# the driver stays 64 KiB under it so that the cap is never reached.
REPLY_MAX = (16 << 20) - (64 << 10)
# A request header is `X <seq> <nbytes>\n` (a cell) or `R ...` (a script,
# as `python3 main.py` runs it): two 20-digit numbers fit.
HEADER_MAX = 64
# A too-long error is cut: its value and its traceback get this much each
# (bytes of JSON), so a 100 MB exception message cannot crowd out results.
ERROR_PART_MAX = 1 << 20
# Nested JSON in a _repr_json_ value deeper than this is dropped (the
# supervisor's JSON parser has a depth limit of its own).
JSON_DEPTH_MAX = 256
READ_CHUNK = 1 << 16
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: a cell with top-level await
import __future__  # noqa: E402

# the compiler flags of `from __future__ import ...`, kept for later cells
FUTURE_FLAGS = 0
for _f in __future__.all_feature_names:
    FUTURE_FLAGS |= getattr(__future__, _f).compiler_flag
PyCF_ONLY_AST = _ast.PyCF_ONLY_AST
PyCF_TLA = _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
INPUT_MESSAGE = "raw_input was called, but this frontend does not support input requests."

# Private references: a cell that patches os or json does not reach these.
_read = os.read
_write = os.write
_quote = _json.encode_basestring
_G = globals()  # frames with these globals are the driver's, cut from tracebacks
_PID = os.getpid()

# text/plain is made by repr; these are the Jupyter display protocol's
# methods, in IPython's order, and the MIME type each fills.
MIME_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_json_", "application/json"),
    ("_repr_latex_", "text/latex"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)
# these travel as base64 text
BINARY_MIME = ("image/png", "image/jpeg", "application/pdf")


class StdinNotImplementedError(IOError, NotImplementedError):
    """input() in a session: there is no stdin channel (IPython's name)."""


class _ProtocolError(Exception):
    pass


class _State:
    count = 0  # execution_count of the last cell
    in_cell = False  # SIGINT raises KeyboardInterrupt only while a cell runs
    user_sigint = None  # the SIGINT handler a cell installed, restored for the next cell
    ns = None  # the user namespace (the fake __main__'s dict)
    results = []  # where display() appends: the running cell's results
    future_flags = 0  # `from __future__ import ...` of earlier cells
    loop = None  # the asyncio loop for top-level await, kept across cells
    out = (None, None)  # the previous two values of _ (for __ and ___)
    saved_std = {}  # fd -> a private dup of fds 0-2 as they were at start
    orig_streams = ()  # sys.stdout/sys.stderr as they were at start
    showwarning = None  # warnings.showwarning as it was at start


_S = _State()


def _die(msg):
    try:
        _write(2, ("airlock session driver: %s\n" % msg).encode("utf-8", "replace"))
    finally:
        os._exit(2)


# --- the channel --------------------------------------------------------------


class _Reader:
    """Buffered reads of fd 3 (only the driver reads it)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self):
        b = _read(self.fd, READ_CHUNK)
        if not b:
            return False
        self.buf += b
        return True

    def line(self):
        """One header line without its newline, or None at end of input."""
        while True:
            i = self.buf.find(b"\n", 0, HEADER_MAX + 1)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + 1]
                return out
            if len(self.buf) > HEADER_MAX:
                raise _ProtocolError("request header over %d bytes" % HEADER_MAX)
            if not self._fill():
                if self.buf:
                    raise _ProtocolError("end of input inside a request header")
                return None

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise _ProtocolError("end of input inside a request body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _send(obj):
    body = _fit(obj)
    data = b"%d\n" % len(body) + body
    while data:
        n = _write(REP_FD, data)
        data = data[n:]


# --- strings the supervisor accepts -------------------------------------------


def _clean(s):
    """S as valid UTF-8 without NUL: the supervisor's JSON parser (jansson)
    refuses U+0000 and lone surrogates, and a cell's own text must not be
    able to make a reply unreadable."""
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.translate(_SURROGATES)
    return s


# every surrogate code point in a str is a lone one: one U+FFFD each
_SURROGATES = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)


def _clean_json(v, depth=0):
    """A copy of the JSON value V with clean strings; ValueError if it is no
    JSON or nests deeper than JSON_DEPTH_MAX."""
    if depth > JSON_DEPTH_MAX:
        raise ValueError("nested deeper than %d" % JSON_DEPTH_MAX)
    if v is None or isinstance(v, (bool, int)):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("NaN or infinity is no JSON")
        return v
    if isinstance(v, str):
        return _clean(v)
    if isinstance(v, (list, tuple)):
        return [_clean_json(x, depth + 1) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValueError("a JSON object key must be a string")
            out[_clean(k)] = _clean_json(x, depth + 1)
        return out
    raise ValueError("%s is no JSON value" % type(v).__name__)


def _encode(v):
    """V (made of dict, list, str, int, float, bool, None; floats finite)
    as compact JSON text."""
    if isinstance(v, str):
        return _quote(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        return float.__repr__(v)
    if isinstance(v, dict):
        return "{" + ",".join(_quote(k) + ":" + _encode(x) for k, x in v.items()) + "}"
    return "[" + ",".join(_encode(x) for x in v) + "]"


def _size(v):
    return len(_encode(v).encode("utf-8", "replace"))


def _cut(s, budget, what):
    """S cut to at most BUDGET bytes of JSON, saying so."""
    if _size(s) <= budget:
        return s
    # a character is at most 6 bytes of JSON (\u001b), so this always fits
    keep = max(0, budget // 6 - 200)
    return s[:keep] + "\n[airlock: %s cut: %d characters, a reply is capped at %d bytes]" % (
        what,
        len(s),
        REPLY_MAX,
    )


def _fit(reply):
    """The reply as UTF-8 JSON of at most REPLY_MAX bytes.  When it is too
    big, the error's parts are cut first, then rich values that do not fit
    are dropped (with a text/plain note), then text is cut."""
    body = _encode(reply).encode("utf-8", "replace")
    if len(body) <= REPLY_MAX:
        return body
    err = reply.get("error")
    if err:
        err["value"] = _cut(err.get("value", ""), ERROR_PART_MAX, "error value")
        tb = err.get("traceback", [])
        if _size(tb) > ERROR_PART_MAX:
            # keep the end (the failing line and the exception) within budget
            kept, used = [], 0
            for line in reversed(tb):
                line = _cut(line, ERROR_PART_MAX // 4, "traceback line")
                used += _size(line) + 1
                if used > ERROR_PART_MAX - 200:
                    break
                kept.append(line)
            kept.append("[airlock: %d traceback lines cut]" % (len(tb) - len(kept)))
            err["traceback"] = kept[::-1]
    results = reply.get("results", [])
    reply["results"] = []
    # what is left for the results, with room for notes
    room = REPLY_MAX - len(_encode(reply).encode("utf-8", "replace")) - (8 << 10)
    kept, dropped = [], 0
    for r in results:
        data = r.get("data", {})
        new, notes = {}, []
        need = 64
        for mime, v in data.items():
            if mime == "text/plain":
                continue
            n = _size(v) + _size(mime) + 2
            if need + n <= room - 4096:
                new[mime] = v
                need += n
            else:
                notes.append("[airlock: %s of %d bytes dropped: a reply is capped at %d bytes]" % (mime, n, REPLY_MAX))
        plain = data.get("text/plain")
        if plain is not None or notes:
            text = "\n".join(([plain] if plain is not None else []) + notes)
            text = _cut(text, max(0, room - need - 1024), "text/plain")
            need += _size(text) + 16
            new["text/plain"] = text
        if need > room:
            dropped += 1
            continue
        room -= need
        kept.append({"type": r.get("type", "display_data"), "data": new})
    if dropped:
        kept.append({"type": "display_data", "data": {"text/plain": "[airlock: %d results dropped: a reply is capped at %d bytes]" % (dropped, REPLY_MAX)}})
    reply["results"] = kept
    body = _encode(reply).encode("utf-8", "replace")
    if len(body) <= REPLY_MAX:
        return body
    # cannot happen with the budgets above; never send what the supervisor refuses
    reply["results"] = [{"type": "display_data", "data": {"text/plain": "[airlock: the reply was too big]"}}]
    if err:
        reply["error"] = {"name": _cut(err.get("name", ""), 4096, "name"), "value": "", "traceback": []}
    return _encode(reply).encode("utf-8", "replace")


# --- rich results (the Jupyter display protocol) ------------------------------


def _stderr(text):
    """Text for the user on stderr (sys.stderr, or fd 2 if that fails)."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        try:
            _write(2, text.encode("utf-8", "replace"))
        except OSError:
            pass


def _warn_format(what, e):
    import traceback

    lines = traceback.format_exception(type(e), e, _trim_tb(e.__traceback__, None))
    _stderr("airlock: %s failed, its output is left out:\n%s" % (what, "".join(lines)))


def _method(obj, name):
    """OBJ's display method NAME, or None.  Like IPython: not on a class
    (its _repr_*_ wants an instance), not on an object that answers every
    attribute (a mock, a proxy)."""
    if isinstance(obj, type):
        return None
    try:
        if getattr(obj, "_ipython_canary_method_should_not_exist_", None) is not None:
            return None
        m = getattr(obj, name, None)
    except Exception:
        return None
    return m if callable(m) else None


def _mime_value(mime, v):
    """V as JSON for MIME, or None to leave it out."""
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], dict):
        v = v[0]  # (data, metadata)
    if v is None:
        return None
    if mime == "application/json" or mime.endswith("+json"):
        if isinstance(v, (str, bytes)):
            import json

            v = json.loads(v)
        return _clean_json(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        if mime in BINARY_MIME or not mime.startswith("text/"):
            import base64

            return base64.b64encode(bytes(v)).decode("ascii")
        return _clean(bytes(v).decode("utf-8", "replace"))
    if isinstance(v, str):
        return _clean(v)  # binary types as a str: already base64, as IPython takes them
    raise ValueError("a %s value must be str or bytes, not %s" % (mime, type(v).__name__))


def _plain(obj):
    r = repr(obj)
    if len(r) > 79 and len(r) < (1 << 20) and type(obj) in (list, tuple, dict, set, frozenset):
        import pprint  # one item a line, like IPython's pretty printer

        r = pprint.PrettyPrinter(width=79, sort_dicts=False).pformat(obj)
    return _clean(r)


def _figure_png(fig):
    import base64
    import io

    buf = io.BytesIO()
    # the inline backend's default: no empty margins
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _format(obj):
    """OBJ's MIME bundle: text/plain always, plus what its display methods
    give.  A failing display method is reported on stderr and left out; a
    failing repr is the cell's error."""
    data = {}
    m = _method(obj, "_repr_mimebundle_")
    if m is not None:
        try:
            r = m(include=None, exclude=None)
            if isinstance(r, tuple):
                r = r[0]
            for mime, v in (r or {}).items():
                v = _mime_value(str(mime), v)
                if v is not None:
                    data[_clean(str(mime))] = v
        except Exception as e:
            _warn_format("_repr_mimebundle_", e)
    mf = sys.modules.get("matplotlib.figure")
    if mf is not None and "image/png" not in data and isinstance(obj, mf.Figure):
        try:
            data["image/png"] = _figure_png(obj)
        except Exception as e:
            _warn_format("rendering the figure", e)
    for name, mime in MIME_METHODS:
        if mime in data:
            continue
        m = _method(obj, name)
        if m is None:
            continue
        try:
            v = _mime_value(mime, m())
        except Exception as e:
            _warn_format(name, e)
            continue
        if v is not None:
            data[mime] = v
    if "text/plain" not in data:
        data["text/plain"] = _plain(obj)
    return data


def _display(*objs, include=None, exclude=None, metadata=None, transient=None, display_id=None, raw=False, clear=False, **kwargs):
    """display(obj, ...): each object's rich output, in order, with the
    running cell's results (IPython's display; raw=True takes MIME dicts)."""
    for obj in objs:
        if raw:
            data = {}
            for mime, v in dict(obj).items():
                v = _mime_value(str(mime), v)
                if v is not None:
                    data[_clean(str(mime))] = v
        else:
            data = _format(obj)
        if include:
            data = {k: v for k, v in data.items() if k in include or k == "text/plain"}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude or k == "text/plain"}
        _S.results.append({"type": "display_data", "data": data})


_display.__name__ = _display.__qualname__ = "display"


def _input(prompt="", *args, **kwargs):
    raise StdinNotImplementedError(INPUT_MESSAGE)


_input.__name__ = _input.__qualname__ = "input"


def _displayhook(value):
    """The last expression's value: an execute_result and _, __, ___."""
    _S.results.append({"type": "execute_result", "data": _format(value)})
    ns = _S.ns
    prev, prev2 = _S.out
    if "_" not in _bi.__dict__:  # gettext's _ in builtins wins, as in IPython
        ns["_"], ns["__"], ns["___"] = value, prev, prev2
    _S.out = (value, prev)


# --- matplotlib (only once a cell imported it) ---------------------------------


def _flush_figures():
    """Every open pyplot figure as a PNG display_data, then closed: what
    Jupyter's inline backend does at the end of a cell and in show()."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    _patch_show(plt)
    try:
        nums = plt.get_fignums()
    except Exception:
        return
    for num in nums:
        try:
            fig = plt.figure(num)
            data = {"image/png": _figure_png(fig), "text/plain": _clean(repr(fig))}
            _S.results.append({"type": "display_data", "data": data})
        except Exception as e:
            _warn_format("rendering figure %s" % num, e)
    try:
        plt.close("all")
    except Exception as e:
        _warn_format("closing the figures", e)


def _showwarning(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    if issubclass(category, UserWarning) and ("non-GUI backend" in text or "non-interactive, and thus cannot be shown" in text):
        _flush_figures()  # the first plt.show() after import, before show is patched
        return
    _S.showwarning(message, category, filename, lineno, file, line)


def _patch_show(plt):
    if getattr(plt.show, "_airlock", False):
        return

    def show(*args, **kwargs):
        _flush_figures()

    show._airlock = True
    show.__doc__ = "Show the open figures as PNG results of this cell and close them."
    plt.show = show


# --- running a cell ------------------------------------------------------------


def _on_sigint(signum, frame):
    # between cells a Ctrl-C for the session is dropped, during one it
    # interrupts the cell as in a kernel
    if _S.in_cell:
        raise KeyboardInterrupt


def _loop():
    loop = _S.loop
    if loop is None or loop.is_closed():
        import asyncio

        loop = _S.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def _run_code(code):
    ns = _S.ns
    if not code.co_flags & CO_COROUTINE:
        return eval(code, ns)
    loop = _loop()
    task = loop.create_task(eval(code, ns))
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
        raise


def _note_future(code):
    _S.future_flags |= code.co_flags & FUTURE_FLAGS


def _hidden(src, node):
    """Whether a `;` follows the last expression (IPython hides its value)."""
    lines = src.replace("\r\n", "\n").split("\n")
    if node.end_lineno is None or node.end_lineno > len(lines):
        return False
    # ast columns count UTF-8 bytes
    tail = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset :].decode("utf-8", "replace")
    for ch in tail + "\n" + "\n".join(lines[node.end_lineno :]):
        if ch in " \t\f\r\n\\)":
            continue
        return ch == ";"
    return False


def _execute(src, fname):
    flags = _S.future_flags
    tree = compile(src, fname, "exec", flags | PyCF_ONLY_AST | PyCF_TLA, True)
    body = tree.body
    last = body.pop() if body and isinstance(body[-1], _ast.Expr) else None
    if body:
        code = compile(_ast.Module(body=body, type_ignores=[]), fname, "exec", flags | PyCF_TLA, True)
        _note_future(code)
        _run_code(code)
    if last is not None:
        code = compile(_ast.Expression(body=last.value), fname, "eval", _S.future_flags | PyCF_TLA, True)
        value = _run_code(code)
        if value is not None and not _hidden(src, last):
            _displayhook(value)


def _trim_tb(tb, fname):
    """TB without the driver's frames and, if FNAME is given, without what
    ran before the cell's own first frame (asyncio's, for an await cell)."""
    tbs = []
    while tb is not None:
        tbs.append(tb)
        tb = tb.tb_next
    if fname is not None:
        for i, t in enumerate(tbs):
            if t.tb_frame.f_code.co_filename == fname:
                tbs = tbs[i:]
                break
    keep = [t for t in tbs if t.tb_frame.f_globals is not _G]
    for a, b in zip(keep, keep[1:]):
        a.tb_next = b
    if keep:
        keep[-1].tb_next = None
    return keep[0] if keep else None


def _safe_str(e):
    try:
        return str(e)
    except BaseException:
        return "<unprintable %s object>" % type(e).__name__


def _error(e, fname):
    import traceback

    tb = _trim_tb(e.__traceback__, fname)
    try:
        e = e.with_traceback(tb)
        text = "".join(traceback.format_exception(type(e), e, tb))
    except BaseException:
        text = "%s: %s" % (type(e).__name__, _safe_str(e))
    sys.last_type, sys.last_value, sys.last_traceback = type(e), e, tb
    return {
        "name": _clean(type(e).__name__),
        "value": _clean(_safe_str(e)),
        "traceback": [_clean(x) for x in text.splitlines()],
    }


def _flush():
    for f in (sys.stdout, sys.stderr) + _S.orig_streams:
        try:
            f.flush()
        except Exception:
            pass


def _repair_stdio():
    # a cell that closed fd 0, 1 or 2 gets it back for the next cell, so
    # output does not vanish (or land in a file the cell opens next)
    for fd, saved in _S.saved_std.items():
        try:
            os.fstat(fd)
        except OSError:
            try:
                os.dup2(saved, fd)
            except OSError:
                pass


def _sigint_for_cell():
    if _S.user_sigint is not None:
        try:
            _signal.signal(_signal.SIGINT, _S.user_sigint)
        except (TypeError, ValueError, OSError):
            _S.user_sigint = None


def _sigint_for_idle():
    h = _signal.getsignal(_signal.SIGINT)
    if h is not _on_sigint:
        _S.user_sigint = h
        _signal.signal(_signal.SIGINT, _on_sigint)


def _run_cell(src):
    """Run one cell: the reply's fields but seq."""
    _S.count += 1
    n = _S.count
    fname = "<cell %d>" % n
    # tracebacks, inspect.getsource and pdb find the cell's lines here.
    # linecache and traceback are imported by the first cell (~5 ms with
    # tokenize and re, kept out of the start), before the cell can break
    # imports by rebinding builtins.
    import linecache
    import traceback  # noqa: F401

    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    results = _S.results
    status, err = "ok", None
    try:
        _sigint_for_cell()
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            _patch_show(plt)
        _S.in_cell = True
        try:
            _execute(src, fname)
            _flush_figures()
        finally:
            _S.in_cell = False
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: the session lives on
        _S.in_cell = False
        status, err = "error", _error(e, fname)
    _sigint_for_idle()
    _S.results = []  # display() from a thread between cells goes to the next one
    if os.getpid() != _PID:
        # a cell that forked and whose child came back here: the child is
        # a script that ran to its end, it must not answer for the session
        _flush()
        if err:
            _stderr("\n".join(err["traceback"]) + "\n")
        os._exit(1 if err else 0)
    _flush()
    _repair_stdio()
    reply = {"type": "result", "status": status, "execution_count": n, "results": results}
    if err:
        reply["error"] = err
    return reply


def _run_script(src):
    """Run src as `python3 main.py` would (a warm one-shot run, request
    `R`): a fresh __main__, sys.argv ["main.py"], an uncaught exception's
    traceback on stderr and exit code 1, SystemExit's code as the exit
    code. The reply's fields but seq; "exit_code" always."""
    _S.count += 1
    fname = "main.py"
    import linecache
    import traceback
    import types

    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    main = types.ModuleType("__main__")
    main.__dict__.update({"__builtins__": _bi, "__file__": "/workspace/main.py"})
    sys.modules["__main__"] = main
    sys.argv = ["main.py"]
    code, err = 0, None
    try:
        _sigint_for_cell()
        _S.in_cell = True
        try:
            exec(compile(src, fname, "exec", 0, True), main.__dict__)
        finally:
            _S.in_cell = False
    except SystemExit as e:
        c = e.code
        if c is None:
            code = 0
        elif isinstance(c, int):
            code = c & 0xFF
        else:
            _flush()
            _stderr(_safe_str(c) + "\n")
            code = 1
    except BaseException as e:
        _S.in_cell = False
        err = _error(e, fname)
        _flush()
        _stderr("\n".join(err["traceback"]) + "\n")
        code = 1
    _sigint_for_idle()
    if os.getpid() != _PID:
        _flush()
        os._exit(code)
    _flush()
    _repair_stdio()
    reply = {"type": "result", "status": "ok" if code == 0 else "error", "exit_code": code,
             "execution_count": _S.count, "results": []}
    if err:
        reply["error"] = err
    return reply


def _program(src):
    """Request R: the code as a program, the last thing this process does.
    The channel to the supervisor (fds 3 and 4) and the driver's copies of
    fds 0-2 are closed before the code runs, so the code holds nothing back
    to the supervisor; the process then ends as `python3 main.py` would
    (non-daemon threads joined, atexit handlers run) with the program's
    exit code, and the supervisor reads that from the sandbox's end."""
    for fd in [REQ_FD, REP_FD] + [f for f in _S.saved_std.values() if f is not None]:
        try:
            os.close(fd)
        except OSError:
            pass
    _S.saved_std = {}
    reply = _run_script(src)
    code = reply.get("exit_code", 1)
    try:
        t = sys.modules.get("threading")
        if t is not None:
            t._shutdown()
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    _flush()
    os._exit(code)


def _setup():
    for fd in (REQ_FD, REP_FD):
        try:
            # the cell's children (os.system, a shell) must not inherit the channel
            os.set_inheritable(fd, False)
        except OSError as e:
            _die("fd %d: %s (the supervisor passes the channel on fds 3 and 4)" % (fd, e.strerror))
    for fd in (0, 1, 2):
        try:
            _S.saved_std[fd] = os.dup(fd)  # not inheritable (PEP 446)
        except OSError:
            pass
    _S.orig_streams = (sys.stdout, sys.stderr)
    # the user's __main__: a module of its own, so that pickle finds classes
    # defined in cells, and the driver's globals are not the cell's
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = _bi
    sys.modules["__main__"] = main
    _S.ns = main.__dict__
    _bi.display = _display
    _bi.input = _input
    sys.argv = [""]
    _signal.signal(_signal.SIGINT, _on_sigint)
    # matplotlib's Agg backend warns that plt.show() cannot show: in a
    # session show() shows them as results instead (showwarning is the
    # documented hook; a filter would import re at start)
    import warnings

    _S.showwarning = warnings.showwarning
    warnings.showwarning = _showwarning


def _main():
    _setup()
    rd = _Reader(REQ_FD)
    v = sys.version_info
    _send({"type": "ready", "protocol": 1, "language": "python", "version": "%d.%d.%d" % (v[0], v[1], v[2])})
    while True:
        try:
            hdr = rd.line()
            if hdr is None:
                os._exit(0)  # the supervisor closed the channel: the session is over
            parts = hdr.split(b" ")
            if len(parts) != 3 or parts[0] not in (b"X", b"R") or not parts[1].isdigit() or not parts[2].isdigit():
                raise _ProtocolError("bad request header %r" % hdr[:HEADER_MAX])
            seq, n = int(parts[1]), int(parts[2])
            src = rd.exact(n).decode("utf-8", "replace")
        except _ProtocolError as e:
            _die("protocol: %s" % e)
        except OSError as e:
            _die("reading requests: %s" % e)
        if parts[0] == b"R":
            _program(src)  # never returns
        try:
            reply = _run_cell(src)
        except BaseException as e:  # a driver bug or a stray signal: say so, keep the session
            _S.in_cell = False
            try:
                err = _error(e, None)
            except BaseException:
                err = {"name": _clean(type(e).__name__), "value": "", "traceback": []}
            reply = {"type": "result", "status": "error", "execution_count": _S.count, "results": [], "error": err}
        reply = dict({"type": "result", "seq": seq}, **reply)
        try:
            _send(reply)
        except OSError as e:
            _die("writing a reply: %s" % e)


_main()
