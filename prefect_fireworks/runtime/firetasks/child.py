"""One command run as a child of the worker: teed output, and it dies with the worker.

The child gets its own process group (a signal to the worker's group does not reach it twice,
and the group is killed as one) and, on Linux, a parent-death signal; while it runs, the
worker's reaper (`prefect_fireworks.runtime.reaper`) knows its group, so even its grandchildren
die with a worker killed by SIGKILL. Output that is not captured goes to the worker's stdout and
stderr as it comes, and its tail is kept (`OutputTail`) so that a failure can say why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import IO, Any

from prefect_fireworks.runtime import reaper

__all__ = ["SCRIPT_OUTPUT_TAIL_CHARS", "SCRIPT_OUTPUT_TAIL_LINES", "OutputTail", "run_teed"]

SCRIPT_OUTPUT_TAIL_CHARS = 4000
"""Characters of a failed ScriptTask's stdout and of its stderr (each) kept in its error."""
SCRIPT_OUTPUT_TAIL_LINES = 40
"""Lines of each kept at most."""


class OutputTail:
    """The last bytes of a stream (bounded)."""

    def __init__(self, limit: int = 4 * SCRIPT_OUTPUT_TAIL_CHARS) -> None:
        self.limit = limit
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        text = bytes(self.data[-self.limit :]).decode("utf-8", errors="replace")
        lines = text.splitlines()[-SCRIPT_OUTPUT_TAIL_LINES:]
        return "\n".join(lines)[-SCRIPT_OUTPUT_TAIL_CHARS:]


def _pump(src: IO[bytes], fd: int | None, tail: OutputTail | None, whole: list[bytes]) -> None:
    # Copy a child's pipe: to this process's fd (and a tail) as it comes, or whole.
    for chunk in iter(lambda: src.read1(65536), b""):  # type: ignore[attr-defined]
        if tail is None:
            whole.append(chunk)
            continue
        tail.feed(chunk)
        view = memoryview(chunk)
        while fd is not None and view:
            try:
                view = view[os.write(fd, view) :]
            except OSError:
                fd = None  # nowhere to echo to: keep only the tail
    src.close()


def run_teed(
    cmd: Any,
    shell: bool,
    executable: str | None,
    input_data: bytes | None,
    stdin: IO[bytes] | None,
    out_tail: OutputTail | None,
    err_tail: OutputTail | None,
) -> tuple[int, bytes, bytes]:
    """Run one command; a stream with a tail is echoed to fd 1/2 as it comes, else returned."""
    import threading

    proc = subprocess.Popen(
        cmd,
        shell=shell,
        executable=executable,
        stdin=subprocess.PIPE if input_data is not None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Its own process group (a signal to the worker's group does not reach it twice, and
        # the group is killed as one below), and on Linux a parent-death signal.
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    outs: list[bytes] = []
    errs: list[bytes] = []
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, 1, out_tail, outs), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, 2, err_tail, errs), daemon=True),
    ]
    for t in pumps:
        t.start()
    if input_data is not None and proc.stdin is not None:
        try:
            proc.stdin.write(input_data)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
    try:
        with reaper.watching(proc.pid):  # grandchildren too, if the worker is killed
            rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        for t in pumps:
            t.join()
    return rc, b"".join(outs), b"".join(errs)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child started by `run_teed` and everything in its process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


_PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when the worker dies (even by SIGKILL).

    ``prctl`` is looked up before the fork, so the child only makes one C call between fork and
    exec. ``None`` where there is no ``prctl`` (not Linux): the child then outlives a killed
    worker.
    """
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        import ctypes

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
        _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _prctl.restype = ctypes.c_int
    prctl = _prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0)
        # The worker may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
