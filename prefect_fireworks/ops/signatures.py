"""Error signatures: failed launches grouped by a normalised stack trace (``lpad errors``).

A signature is what stays the same when the same bug fails many Fireworks: the exception type,
its message with the varying parts masked (numbers, paths, hexadecimal addresses, uuids and other
ids, timestamps), and the innermost frames of the traceback (file base name and function, not
line numbers, so an edit elsewhere in a file does not split a group). Its id is the first 12 hex
digits of a SHA-1 of those three parts, stable across processes and machines.

:func:`error_groups` reads each selected Firework's latest FIZZLED active launch (FireWorks
records the trace in ``action.stored_data._exception._stacktrace``), groups them by signature and
marks root failures (FIZZLED with no FIZZLED ancestor, see :mod:`prefect_fireworks.ops.roots`).
:func:`fw_ids_with_signature` is what ``lpad rerun_fws --signature`` selects. Pure reads; no
Prefect import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.roots import root_failures
from prefect_fireworks.store.idranges import find_by_ids

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "INNER_FRAMES",
    "ErrorGroup",
    "Signature",
    "check_signature",
    "error_groups",
    "fw_ids_with_signature",
    "match_signature",
    "normalise_message",
    "signature_of",
]

#: How many innermost frames a signature keeps.
INNER_FRAMES = 3
#: Longest normalised message kept (long messages usually end in data, not in the error).
MAX_MESSAGE = 300
#: Shortest signature prefix ``--signature`` accepts.
MIN_PREFIX = 4
NO_TRACE = "<no stack trace recorded>"

_EXC_KEY = "action.stored_data._exception._stacktrace"

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line \d+(?:, in (?P<func>.+))?\s*$')
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_CHAIN = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)

# Masks, applied in this order (earlier ones would otherwise be eaten by the number mask).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # Paths: anything with a slash (absolute, relative, ~/, Windows drive or backslashes).
    (
        re.compile(r"(?:[A-Za-z]:)?(?:~|\.{1,2})?(?:[\\/][^\s'\"`,;:()\[\]{}<>]+)+[\\/]?"),
        "<path>",
    ),
    (re.compile(r"(?<![\w<])[\w.-]+(?:[\\/][\w.-]+)+"), "<path>"),
    # Long hexadecimal or base-64-ish tokens with a digit: object ids, hashes, run ids.
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"(?<![A-Za-z<])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "<n>"),
)


def normalise_message(message: str) -> str:
    """Mask what varies between occurrences of one error: times, ids, paths, numbers.

    Example:
        ```python
        normalise_message("cannot open /scratch/run_17/out.dat after 3 tries")
        # 'cannot open <path> after <n> tries'
        ```
    """
    text = " ".join(message.split())
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "…"
    return text


@dataclass(frozen=True)
class Signature:
    """The normalised identity of a failure.

    Attributes:
        sig_id: 12 hex digits identifying the signature.
        exc_type: the exception's type as the trace prints it (``""`` when there is none).
        message: the message, normalised.
        frames: the innermost frames as ``file.py:function``, outermost first.
    """

    sig_id: str
    exc_type: str
    message: str
    frames: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """``Type: message`` (what a person reads first)."""
        if self.exc_type and self.message:
            return f"{self.exc_type}: {self.message}"
        return self.exc_type or self.message


def _make(exc_type: str, message: str, frames: Sequence[str]) -> Signature:
    key = "\n".join([exc_type, message, *frames])
    sig_id = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
    return Signature(sig_id, exc_type, message, tuple(frames))


def _last_block(lines: list[str]) -> list[str]:
    """The lines of the last exception in a chained traceback (the one that was raised)."""
    start = 0
    for i, line in enumerate(lines):
        if line.startswith(_CHAIN):
            start = i + 1
    return lines[start:]


def signature_of(stacktrace: str | None, fallback_message: str | None = None) -> Signature:
    """The signature of one stack trace (Python's traceback format, as FireWorks stores it).

    Args:
        stacktrace: the trace text; None or empty when the launch recorded none (a lost run
            marked FIZZLED, a Firework fizzled before it started).
        fallback_message: used as the message when there is no trace (``stored_data._message``).

    Example:
        ```python
        sig = signature_of(launch["action"]["stored_data"]["_exception"]["_stacktrace"])
        print(sig.sig_id, sig.title)
        ```
    """
    if not stacktrace or not stacktrace.strip():
        return _make("", normalise_message(fallback_message or NO_TRACE), ())
    lines = _last_block([ln.rstrip() for ln in stacktrace.splitlines()])
    frames: list[str] = []
    last_frame = -1
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if m:
            path = m.group("file").replace("\\", "/")
            base = path.rsplit("/", 1)[-1]
            frames.append(f"{base}:{(m.group('func') or '?').strip()}")
            last_frame = i
    # The exception line: the first unindented line after the last frame (and its code line),
    # continuing over unindented lines (a multi-line message).
    tail = [
        ln
        for ln in lines[last_frame + 1 :]
        if ln.strip() and not ln.startswith((" ", "\t")) and not ln.startswith("Traceback")
    ]
    exc_type, message = "", ""
    if tail:
        m = _EXC_LINE.match(tail[0])
        if m:
            exc_type = m.group("type")
            message = " ".join([m.group("msg") or "", *tail[1:]]).strip()
        else:
            message = " ".join(tail)
    elif lines:
        message = lines[-1].strip()
    return _make(exc_type, normalise_message(message), frames[-INNER_FRAMES:])


# -- grouping failed launches --------------------------------------------------------------------
@dataclass
class ErrorGroup:
    """Failed Fireworks sharing one signature.

    Attributes:
        signature: the shared signature.
        fw_ids: the Fireworks, ascending.
        launch_ids: the failed launch of each (same order as ``fw_ids``).
        roots: those with no FIZZLED ancestor (root causes, not the cascade).
        first_seen: earliest failure time (launch ``time_end``, ISO text).
        last_seen: latest failure time.
        example: the last lines of one stack trace.
        names: Firework names, by fw_id.
    """

    signature: Signature
    fw_ids: list[int] = field(default_factory=list)
    launch_ids: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None
    example: str = ""
    names: dict[int, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many Fireworks failed this way."""
        return len(self.fw_ids)

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        """JSON-ready form (``lpad errors --json``, Prefect results)."""
        sig = asdict(self.signature)
        sig["frames"] = list(self.signature.frames)
        return {
            **sig,
            "title": self.signature.title,
            "count": self.count,
            "roots": self.roots,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "example_fw_ids": self.fw_ids[:examples],
            "fw_ids": self.fw_ids,
            "launch_ids": self.launch_ids,
            "example_stacktrace": self.example,
        }


def _seen(launch: Mapping[str, Any]) -> str | None:
    when = launch.get("time_end") or launch.get("time_start")
    if when is None:
        return None
    return when.isoformat() if hasattr(when, "isoformat") else str(when)


def _tail(text: str, n: int = 8) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def error_groups(lp: LaunchPad, fw_ids: Iterable[int]) -> list[ErrorGroup]:
    """Group the failed launches of these Fireworks by signature, most frequent first.

    Each Firework counts once, with its latest FIZZLED active launch (``launches``, not
    ``archived_launches``); Fireworks without one are left out.

    Args:
        lp: the LaunchPad.
        fw_ids: the Fireworks to look at (for example every FIZZLED one).

    Returns:
        The groups, by count (descending), then by last failure (latest first).
    """
    ids = sorted({int(i) for i in fw_ids})
    if not ids:
        return []
    # id ranges, not $in (which costs O(n^2) on the embedded server; see store/idranges.py)
    fws = {
        d["fw_id"]: d
        for d in find_by_ids(
            lp.fireworks, "fw_id", ids, {"_id": 0, "fw_id": 1, "name": 1, "launches": 1}
        )
    }
    launch_ids = sorted({lid for d in fws.values() for lid in d.get("launches") or []})
    failed: dict[int, dict[str, Any]] = {}
    if launch_ids:
        proj = {
            "_id": 0,
            "launch_id": 1,
            "fw_id": 1,
            "state": 1,
            "time_end": 1,
            "time_start": 1,
            _EXC_KEY: 1,
            "action.stored_data._message": 1,
        }
        for lch in find_by_ids(lp.launches, "launch_id", launch_ids, proj):
            if lch.get("state") == st.FIZZLED:
                failed[lch["launch_id"]] = lch
    chosen: dict[int, dict[str, Any]] = {}
    for fw_id, doc in fws.items():
        mine = [failed[lid] for lid in doc.get("launches") or [] if lid in failed]
        if mine:
            chosen[fw_id] = max(mine, key=lambda lch: lch["launch_id"])
    roots = root_failures(lp, chosen)
    groups: dict[str, ErrorGroup] = {}
    for fw_id in sorted(chosen):
        lch = chosen[fw_id]
        stored = (lch.get("action") or {}).get("stored_data") or {}
        trace = (stored.get("_exception") or {}).get("_stacktrace")
        sig = signature_of(str(trace) if trace else None, stored.get("_message"))
        grp = groups.get(sig.sig_id)
        if grp is None:
            grp = groups[sig.sig_id] = ErrorGroup(sig, example=_tail(str(trace or sig.title)))
        grp.fw_ids.append(fw_id)
        grp.launch_ids.append(lch["launch_id"])
        grp.names[fw_id] = fws[fw_id].get("name", "")
        if fw_id in roots:
            grp.roots.append(fw_id)
        seen = _seen(lch)
        if seen is not None:
            grp.first_seen = seen if grp.first_seen is None else min(grp.first_seen, seen)
            grp.last_seen = seen if grp.last_seen is None else max(grp.last_seen, seen)
    return sorted(groups.values(), key=lambda g: (-g.count, _neg(g.last_seen)))


def _neg(text: str | None) -> tuple[int, list[int]]:
    # Sort key putting the latest time first without parsing it.
    return (0, [-ord(c) for c in text]) if text else (1, [])


def check_signature(sig: str | None) -> str | None:
    """Check a signature id or prefix (``--signature``) without reading anything.

    Raises:
        ValueError: not hexadecimal, or shorter than 4 digits.
    """
    if sig is None or sig.strip() == "":
        return None
    want = sig.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", want):
        raise ValueError(f"signature {sig!r} is not hexadecimal (lpad errors lists the ids)")
    if len(want) < MIN_PREFIX:
        raise ValueError(f"signature {sig!r} is too short: give at least {MIN_PREFIX} digits")
    return want


def match_signature(groups: Sequence[ErrorGroup], sig: str) -> ErrorGroup:
    """The group whose id is ``sig`` or starts with it.

    Raises:
        ValueError: too short, not hexadecimal, no group, or several groups match.
    """
    want = check_signature(sig) or ""
    found = [g for g in groups if g.signature.sig_id.startswith(want)]
    if not found:
        raise ValueError(
            f"no failed Firework in the selection has signature {sig} (see lpad errors)"
        )
    if len(found) > 1:
        ids = ", ".join(g.signature.sig_id for g in found)
        raise ValueError(f"signature {sig} is ambiguous: it matches {ids}")
    return found[0]


def fw_ids_with_signature(lp: LaunchPad, fw_ids: Iterable[int], sig: str) -> list[int]:
    """The Fireworks among ``fw_ids`` whose latest failed launch has signature ``sig``.

    Raises:
        ValueError: see :func:`match_signature`.
    """
    return list(match_signature(error_groups(lp, fw_ids), sig).fw_ids)
