"""What the remote and the local client share: the default wall clock and
the input files' shape. Neither client's module imports the other for
these."""
import base64
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

#: the server's default wall clock of a run (airlock-serve(1)); the
#: client's timeout when a call names none is this plus the margin
DEFAULT_WALL_S = 10.0

#: input files: NAME -> bytes or str, or a list of {path, content|bytes, executable}
Files = Union[Mapping[str, Union[bytes, str]], Sequence[Mapping[str, Any]]]


def _files(files: Optional[Files]) -> Optional[List[Dict[str, Any]]]:
    if files is None:
        return None
    out: List[Dict[str, Any]] = []
    items: Iterable[Any] = files.items() if isinstance(files, Mapping) else files
    for it in items:
        if isinstance(it, tuple):
            f: Dict[str, Any] = {"path": it[0]}
            content: Any = it[1]
            executable = False
        else:
            f = {"path": it["path"]}
            content = it.get("content", it.get("bytes", b""))
            executable = bool(it.get("executable", False))
        if isinstance(content, str):
            f["content"] = content
        else:
            f["content_base64"] = base64.b64encode(bytes(content)).decode("ascii")
        if executable:
            f["executable"] = True
        out.append(f)
    return out
