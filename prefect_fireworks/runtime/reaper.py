"""Kill a worker's script children when the worker dies, however it dies.

Every ScriptTask child runs in its own process group (`prefect_fireworks.runtime.firetasks`)
and, on Linux, with a parent-death signal. That signal reaches only the direct child: the
grandchildren of a shell command (``sh -c "a; b"``) would survive a ``kill -9`` of the worker and
do their side effect anyway. So each worker process starts one small *reaper* process the first
time it runs a script. The worker tells it, through a pipe, the process group of each script
child while it runs. When the worker dies, the pipe's write end closes; the reaper reads
end-of-file and kills every group still registered, then exits. No signal handler and no
``prctl`` are involved, so this also works where there is no parent-death signal.

Example:
    ```python
    import subprocess

    from prefect_fireworks.runtime import reaper

    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    with reaper.watching(proc.pid):
        proc.wait()
    ```
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

# The reaper: one line per message, "+<pgid>" while a group runs, "-<pgid>" once it ended.
_REAPER_SCRIPT = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line[:1] == "+":
        groups.add(int(line[1:]))
    elif line[:1] == "-":
        groups.discard(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_reaper: subprocess.Popen[str] | None = None
_owner = 0  # the pid that started `_reaper` (a forked worker needs its own)


def _send(message: str) -> None:
    global _reaper, _owner
    with _lock:
        if _reaper is None or _owner != os.getpid() or _reaper.poll() is not None:
            _reaper = subprocess.Popen(
                [sys.executable, "-c", _REAPER_SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # Ctrl-C on the terminal is the worker's business
                close_fds=True,
            )
            _owner = os.getpid()
        assert _reaper.stdin is not None
        try:
            _reaper.stdin.write(message + "\n")
            _reaper.stdin.flush()
        except (BrokenPipeError, OSError):
            _reaper = None


@contextlib.contextmanager
def watching(pgid: int) -> Iterator[None]:
    """Have the process group ``pgid`` killed if this process dies while the block runs.

    Args:
        pgid: A process group (the pid of a child started with ``start_new_session=True``).
    """
    _send(f"+{pgid}")
    try:
        yield
    finally:
        _send(f"-{pgid}")
