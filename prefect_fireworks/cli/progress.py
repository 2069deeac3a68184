"""A live done/total display for long commands that leaves every other line intact.

``lpad run_workflow`` and ``lpad rapidfire`` run a Prefect flow in this process while Prefect
logs each task run and Firetasks print (ScriptTask subprocesses write straight to file
descriptors 1 and 2). Prefect's ``PrefectConsoleHandler`` prints through a rich Console of its
own, bound to the ``sys.stderr`` object of the moment logging was set up, so rich's usual
redirection (swapping ``sys.stderr`` while a ``Live`` display runs) never sees its lines: they
are written on top of the spinner line ("glued" to it).

`live_progress` therefore works one level down. On a terminal it moves file descriptor 2 (and
1, when it is the same terminal) onto a pipe for the duration of the run; a reader thread
prints each complete line from the pipe above a rich progress bar that is drawn on a duplicate
of the original terminal descriptor. Every line (Prefect's, with its colours, a Firetask's, a
warning) thus appears whole, on its own line, in the order it was written, and the bar stays
at the bottom. Not on a terminal (a pipe, a file, CI) nothing is redirected and no escape
sequence is written: a plain ``label: done/total ...`` line goes to stderr at most every
`PLAIN_EVERY` seconds while the counts change, and once at the end.

The counts come from ``poll()``, called from a background thread every `POLL_EVERY` seconds
(commands read them from the LaunchPad: see `workflow_counter` and `rapidfire_counter`).

Mass operations (rerun, defuse, delete...) report their own steps instead: `count_progress`
draws a transient bar on a terminal (nothing else writes while they run, so nothing is
redirected) and otherwise prints a plain line now and then.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: Seconds between two reads of the counts.
POLL_EVERY = 0.5
#: Not on a terminal: at most one progress line per this many seconds (plus the final one).
PLAIN_EVERY = 15.0
#: Seconds the reader thread may take to print what is left in the pipe at the end.
DRAIN_SECS = 2.0


@dataclass(frozen=True)
class Counts:
    """What a progress display shows: ``done`` of ``total``, and a short detail."""

    done: int
    total: int
    detail: str = ""

    def line(self, label: str) -> str:
        """``label: 3/5 Fireworks COMPLETED, 1 FIZZLED``: the plain (non-terminal) form."""
        return f"{label}: {self.done}/{self.total} {self.detail}".rstrip()


Poll = Callable[[], Counts]


def _stderr_is_terminal() -> bool:
    """Whether stderr shows escape sequences (rich's rules: a tty, TTY_COMPATIBLE, FORCE_COLOR)."""
    return Console(stderr=True).is_terminal


@contextlib.contextmanager
def live_progress(label: str, poll: Poll, *, enabled: bool = True) -> Iterator[None]:
    """Show ``label`` with done/total from ``poll()`` while the body runs (see the module doc).

    Args:
        label: what runs, e.g. ``run_workflow 1``.
        poll: returns the current counts; called from a background thread (and once at the
            end); an exception in it only stops the updates.
        enabled: False shows nothing at all.
    """
    if not enabled:
        yield
        return
    if _stderr_is_terminal():
        with _terminal_display(label, poll):
            yield
    else:
        with _plain_display(label, poll):
            yield


@contextlib.contextmanager
def count_progress(
    label: str, total: int, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Progress of a mass operation that reports its own steps: yields ``advance(k)``.

    On a terminal a transient bar (the summary printed after it says what was done); otherwise
    a plain ``label: done/total`` line at most every `PLAIN_EVERY` seconds, none for an
    operation that ends sooner. Nothing is redirected: the operations layer prints nothing.
    """
    if not enabled:
        yield lambda k: None
        return
    if _stderr_is_terminal():
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=max(total, 1))
            yield lambda k: bar.advance(task, k)
        return
    done = [0]
    last = [time.monotonic()]

    def advance(k: int) -> None:
        done[0] += k
        if time.monotonic() - last[0] >= PLAIN_EVERY:
            sys.stderr.write(Counts(done[0], total).line(label) + "\n")
            sys.stderr.flush()
            last[0] = time.monotonic()

    yield advance


# -- not a terminal: plain lines ------------------------------------------------------------------
@contextlib.contextmanager
def _plain_display(label: str, poll: Poll) -> Iterator[None]:
    stop = threading.Event()
    shown: list[Counts | None] = [None]
    last_shown = [time.monotonic()]

    def emit(counts: Counts) -> None:
        sys.stderr.write(counts.line(label) + "\n")
        sys.stderr.flush()
        shown[0] = counts
        last_shown[0] = time.monotonic()

    def loop() -> None:
        while not stop.wait(POLL_EVERY):
            counts = _safe_poll(poll)
            if counts is None:
                return
            if counts != shown[0] and time.monotonic() - last_shown[0] >= PLAIN_EVERY:
                emit(counts)

    thread = threading.Thread(target=loop, name="lpad-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        final = _safe_poll(poll)
        if final is not None:
            emit(final)


def _safe_poll(poll: Poll) -> Counts | None:
    try:
        return poll()
    except Exception:  # a failed count must never break the run it describes
        return None


# -- a terminal: a bar at the bottom, every other line above it --------------------------------
class _LineRelay:
    """Reads the pipe that stands in for fds 1/2 and prints each line above the live bar."""

    def __init__(self, read_fd: int, console: Console, raw: IO[str]) -> None:
        self.read_fd = read_fd
        self.console = console
        self.raw = raw
        self.stop = threading.Event()
        self.pending = b""
        self.thread = threading.Thread(target=self._run, name="lpad-output", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(DRAIN_SECS + 1)

    def _run(self) -> None:
        deadline: float | None = None
        while True:
            if self.stop.is_set() and deadline is None:
                deadline = time.monotonic() + DRAIN_SECS
            if deadline is not None and time.monotonic() > deadline:
                break
            ready, _, _ = select.select([self.read_fd], [], [], 0.1)
            if not ready:
                if deadline is not None:
                    break  # stopped and nothing more to read
                continue
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                break  # every writer closed its end
            self._feed(chunk)
        if self.pending:
            self._show(self.pending)
            self.pending = b""

    def _feed(self, chunk: bytes) -> None:
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in lines:
            self._show(line)

    def _show(self, line: bytes) -> None:
        text = line.decode(errors="replace").rstrip("\r")
        try:
            self.console.print(Text.from_ansi(text), soft_wrap=True)
        except Exception:  # never lose a line: fall back to the raw terminal
            self.raw.write(text + "\n")
            self.raw.flush()


@contextlib.contextmanager
def _redirected_output() -> Iterator[tuple[int, IO[str]]]:
    """fd 2 (and fd 1 if it is the same file) onto a pipe; yields (read end, terminal file).

    On the way out the descriptors are restored first, then whatever is still in the pipe is
    copied to the terminal, and only then is the read end closed (a late writer gets the
    terminal, never a broken pipe).
    """
    _flush_std()
    same = False
    with contextlib.suppress(OSError):
        same = os.path.samestat(os.fstat(1), os.fstat(2))
    targets = [1, 2] if same else [2]
    saved = {fd: os.dup(fd) for fd in targets}
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1, errors="replace")
    read_fd, write_fd = os.pipe()
    try:
        for fd in targets:
            os.dup2(write_fd, fd)
        os.close(write_fd)
        yield read_fd, terminal
    finally:
        _flush_std()
        for fd, orig in saved.items():
            os.dup2(orig, fd)
            os.close(orig)
        with contextlib.suppress(OSError):
            while select.select([read_fd], [], [], 0)[0]:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                terminal.write(chunk.decode(errors="replace"))
        os.close(read_fd)
        terminal.close()


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def _terminal_display(label: str, poll: Poll) -> Iterator[None]:
    with _redirected_output() as (read_fd, terminal):
        console = Console(file=terminal, force_terminal=True, highlight=False)
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=False,
        )
        task = bar.add_task(label, total=None, detail="")
        relay = _LineRelay(read_fd, console, terminal)
        stop = threading.Event()

        def update() -> bool:
            counts = _safe_poll(poll)
            if counts is None:
                return False
            bar.update(task, completed=counts.done, total=counts.total, detail=counts.detail)
            return True

        def loop() -> None:
            while not stop.wait(POLL_EVERY) and update():
                pass

        poller = threading.Thread(target=loop, name="lpad-progress", daemon=True)
        with bar:
            relay.start()
            update()
            poller.start()
            try:
                yield
            finally:
                stop.set()
                poller.join()
                _flush_std()
                relay.finish()
                update()


# -- what commands count ---------------------------------------------------------------------------
_FINISHED = ("COMPLETED", "FIZZLED")
_TO_RUN = ("READY", "RESERVED", "RUNNING", "WAITING")


def _detail(by_state: dict[str, int]) -> str:
    parts = [f"{by_state.get('COMPLETED', 0)} COMPLETED"]
    for state in ("FIZZLED", "RUNNING"):
        if by_state.get(state):
            parts.append(f"{by_state[state]} {state}")
    return ", ".join(parts)


def workflow_counter(lp: LaunchPad, fw_id: int) -> Poll:
    """Counts of one workflow (from its cached ``fw_states``): done = COMPLETED or FIZZLED, out
    of every Firework that is not ARCHIVED or DEFUSED (Fireworks added while it runs count)."""

    def poll() -> Counts:
        doc = lp.workflows.find_one({"nodes": fw_id}, {"fw_states": 1}) or {}
        by_state: dict[str, int] = {}
        for state in (doc.get("fw_states") or {}).values():
            by_state[state] = by_state.get(state, 0) + 1
        done = sum(by_state.get(s, 0) for s in _FINISHED)
        total = done + sum(by_state.get(s, 0) for s in (*_TO_RUN, "PAUSED"))
        return Counts(done, total, _detail(by_state))

    return poll


def rapidfire_counter(lp: LaunchPad, query: dict[str, Any], nlaunches: int = 0) -> Poll:
    """Counts for a rapidfire over the Fireworks matching ``query`` (its FWorker's checkout
    query): done = those that finished since now, total = done + those still to run (at most
    ``nlaunches`` when that is positive)."""
    now = datetime.now(timezone.utc)
    # updated_on is stored as FireWorks stores it, an ISO string (or a date, by other writers);
    # ISO strings of UTC times compare in time order.
    since = {
        "$or": [
            {"updated_on": {"$gte": now.replace(tzinfo=None).isoformat()}},
            {"updated_on": {"$gte": now}},
        ]
    }

    def poll() -> Counts:
        by_state: dict[str, int] = {}
        finished = {"$and": [query, since], "state": {"$in": list(_FINISHED)}}
        for doc in lp.fireworks.aggregate(
            [{"$match": finished}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        ):
            by_state[doc["_id"]] = doc["n"]
        waiting = {**query, "state": {"$in": list(_TO_RUN)}}
        for doc in lp.fireworks.aggregate(
            [{"$match": waiting}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        ):
            by_state[doc["_id"]] = doc["n"]
        done = sum(by_state.get(s, 0) for s in _FINISHED)
        total = done + sum(by_state.get(s, 0) for s in _TO_RUN)
        if nlaunches > 0:
            total = min(total, nlaunches)
            done = min(done, total)
        return Counts(done, total, _detail(by_state))

    return poll
