"""Checks a document passes before it is written, so a write never fails half-way.

MongoDB refuses a document larger than 16 MB or nested deeper than 100 levels, and a field
name starting with ``$`` or containing ``.`` breaks queries and updates on it; the embedded
server accepts some of these, after which every reader of that document fails. Adding a workflow
therefore checks every document first and writes nothing when one fails. Error messages are one
line, name the Firework and the offending path, and never echo the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import bson
from pymongo.errors import PyMongoError

#: MongoDB's maximum BSON document size.
MAX_BSON_SIZE = 16 * 1024 * 1024
#: MongoDB's maximum nesting depth of a stored document.
MAX_DEPTH = 100
#: Longest path shown in an error message.
_MAX_PATH_CHARS = 80


class DocumentError(ValueError):
    """A document that cannot be stored (one-line message)."""


def _path(parts: list[str]) -> str:
    text = ".".join(parts) or "(top level)"
    if len(text) > _MAX_PATH_CHARS:
        text = text[: _MAX_PATH_CHARS - 10] + "..." + text[-7:]
    return text


def _short(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def check_keys_and_depth(doc: Mapping[str, Any], what: str, max_depth: int = MAX_DEPTH) -> None:
    """Nesting depth at most ``max_depth``; every key a string, not ``$``-prefixed, without ``.``
    or NUL. Iterative, so any depth is checked without recursion.

    Raises:
        DocumentError: naming ``what`` and the path.
    """
    # (value, depth of the document containing it, path)
    stack: list[tuple[Any, int, list[str]]] = [(doc, 1, [])]
    while stack:
        cur, depth, path = stack.pop()
        if isinstance(cur, Mapping):
            if depth > max_depth:
                raise DocumentError(
                    f"{what}: nested deeper than {max_depth} levels (MongoDB's limit) at "
                    f"{_path(path[:8])}"
                )
            for k, v in cur.items():
                if not isinstance(k, str):
                    raise DocumentError(f"{what}: key {_short(k)} at {_path(path)} is not a string")
                if k.startswith("$") or "." in k or "\x00" in k:
                    raise DocumentError(
                        f"{what}: key {_short(k)} at {_path(path)} starts with '$' or contains "
                        "'.': MongoDB cannot query or update such a field"
                    )
                if isinstance(v, (Mapping, list, tuple)):
                    stack.append((v, depth + 1, [*path, k]))
        elif isinstance(cur, (list, tuple)):
            if depth > max_depth:
                raise DocumentError(
                    f"{what}: nested deeper than {max_depth} levels (MongoDB's limit) at "
                    f"{_path(path[:8])}"
                )
            for i, v in enumerate(cur):
                if isinstance(v, (Mapping, list, tuple)):
                    stack.append((v, depth + 1, [*path, str(i)]))


def check_size(doc: Mapping[str, Any], what: str, max_size: int = MAX_BSON_SIZE) -> int:
    """The BSON size, at most ``max_size`` bytes.

    Raises:
        DocumentError: too large, or not encodable as BSON.
    """
    try:
        size = len(bson.encode(doc))
    except (bson.errors.InvalidDocument, OverflowError, TypeError, ValueError) as exc:
        msg = " ".join(str(exc).split())[:120]
        raise DocumentError(f"{what}: cannot be stored as BSON ({msg})") from None
    except RecursionError:
        raise DocumentError(f"{what}: nested too deeply to encode") from None
    if size > max_size:
        raise DocumentError(
            f"{what}: {size / 1024 / 1024:.1f} MB as BSON, more than MongoDB's "
            f"{max_size / 1024 / 1024:.0f} MB document limit"
        )
    return size


def check_document(doc: Mapping[str, Any], what: str, max_size: int = MAX_BSON_SIZE) -> None:
    """Keys and depth first (cheap, and the BSON encoder would recurse), then the size."""
    check_keys_and_depth(doc, what)
    check_size(doc, what, max_size)


def check_documents(
    docs: Iterable[tuple[str, Mapping[str, Any]]], max_size: int = MAX_BSON_SIZE
) -> None:
    """:func:`check_document` on each ``(label, document)``."""
    for what, doc in docs:
        check_document(doc, what, max_size)


def check_file_firework(fw: Mapping[str, Any], what: str) -> None:
    """A Firework read from a file may not bring a run history: ``launches`` and
    ``archived_launches`` would name launch ids of another LaunchPad, and a ``state`` other
    than WAITING/READY would claim a run that never happened here.

    Raises:
        DocumentError: naming the field.
    """
    for key in ("launches", "archived_launches"):
        if fw.get(key):
            raise DocumentError(
                f"{what}: a file cannot bring '{key}' (launch ids of another LaunchPad); "
                "remove the field"
            )
    state = fw.get("state")
    if state not in (None, "WAITING", "READY"):
        raise DocumentError(
            f"{what}: a file cannot set state {_short(state)}; only WAITING or READY "
            "(remove the field)"
        )


def check_file_workflow(wf: Any, label: str) -> None:
    """A workflow read from a file: at least one Firework, none bringing a run history.

    Args:
        wf: a :class:`~prefect_fireworks.core.models.Workflow`.
        label: the file, for messages.

    Raises:
        DocumentError: the first problem found.
    """
    if not wf.fws:
        raise DocumentError(f"{label}: the workflow has no Fireworks")
    for fw in wf.fws:
        what = f"{label}: Firework {fw.fw_id}"
        check_file_firework(
            {
                "launches": fw.launches,
                "archived_launches": fw.archived_launches,
                "state": fw.state,
            },
            what,
        )


def fw_label(doc: Mapping[str, Any]) -> str:
    """``Firework 3 ('name')`` for messages (the name shortened)."""
    name = str(doc.get("name", ""))
    if len(name) > 30:
        name = name[:27] + "..."
    return f"Firework {doc.get('fw_id')} ({name!r})"


def check_new_documents(
    fireworks: Iterable[Mapping[str, Any]],
    workflows: Iterable[Mapping[str, Any]],
    max_size: int = MAX_BSON_SIZE,
) -> None:
    """Every Firework and workflow document an ``add`` would insert.

    Raises:
        DocumentError: the first document that cannot be stored.
    """
    for doc in fireworks:
        check_document(doc, fw_label(doc), max_size)
    for doc in workflows:
        nodes = doc.get("nodes") or []
        first = min(nodes) if nodes else "?"
        check_document(doc, f"workflow {first} ({str(doc.get('name', ''))[:30]!r})", max_size)


class WriteUndoneError(PyMongoError):
    """A write failed after the checks passed; what it had written was removed again."""


def short_reason(exc: BaseException) -> str:
    """One short line about a failed write, without echoing any document."""
    details = getattr(exc, "details", None)
    if isinstance(details, Mapping):
        errs = details.get("writeErrors") or []
        if errs and isinstance(errs[0], Mapping):
            text = str(errs[0].get("errmsg", ""))
        else:
            text = str(details.get("errmsg", ""))
    else:
        text = str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
