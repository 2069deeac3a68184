"""``spec._background_tasks``: Firetasks run periodically while a Firework runs.

FireWorks' ``BackgroundTask``: a list of Firetasks run in a thread, first when the Firework's
Firetasks start, then every ``sleep_time`` seconds, ``num_launches`` times in all (0: until the
Firework ends); with ``run_on_finish`` they run once more after the last Firetask succeeded,
before the launch completes. They get the Firework's spec as stored (not the updates of its
Firetasks), and what they return is ignored. A background Firetask that raises ends its own
thread and does not fail the Firework; one that raises in the ``run_on_finish`` run fizzles
it (as in FireWorks).

The stored form is FireWorks' ``{"_fw_name": "BackgroundTask", "tasks": [...],
"num_launches": 0, "sleep_time": 60, "run_on_finish": false}``.

Example:
    ```python
    from prefect_fireworks import Firework
    from prefect_fireworks.runtime.background import BackgroundTask
    from prefect_fireworks.runtime.firetasks import FileWriteTask, ScriptTask

    beat = BackgroundTask(
        [FileWriteTask(files_to_write=[{"filename": "alive", "contents": "yes"}])],
        num_launches=1,
        run_on_finish=True,
    )
    fw = Firework([ScriptTask(script="sleep 1")], spec={"_background_tasks": [beat.to_dict()]})
    ```
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from prefect_fireworks.runtime.firetasks import Firetask, load_firetask

__all__ = ["BACKGROUND_JOIN_SECS", "BackgroundTask"]

#: When a Firework ends, how long to wait for a background run in progress to finish (a
#: background Firetask still running in the launch directory after the launch has completed
#: would write where it no longer belongs).
BACKGROUND_JOIN_SECS = 60.0


class BackgroundTask:
    """Firetasks run in a background thread while a Firework runs (FireWorks' BackgroundTask).

    Args:
        tasks: Firetasks (objects or stored dicts).
        num_launches: how many times to run them (0: until the Firework ends).
        sleep_time: seconds between runs.
        run_on_finish: run them once more when the Firework's Firetasks have succeeded.
    """

    _fw_name = "BackgroundTask"

    def __init__(
        self,
        tasks: Any,
        num_launches: int = 0,
        sleep_time: float = 60,
        run_on_finish: bool = False,
    ) -> None:
        raw = tasks if isinstance(tasks, (list, tuple)) else [tasks]
        self.tasks: list[Firetask] = [load_firetask(t) for t in raw]
        self.num_launches = int(num_launches)
        self.sleep_time = float(sleep_time)
        self.run_on_finish = bool(run_on_finish)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form (FireWorks')."""
        return {
            "tasks": [t.to_dict() for t in self.tasks],
            "num_launches": self.num_launches,
            "sleep_time": self.sleep_time,
            "run_on_finish": self.run_on_finish,
            "_fw_name": self._fw_name,
        }

    @classmethod
    def from_dict(cls, d: Any) -> BackgroundTask:
        """Load the stored form (or return a BackgroundTask as is).

        Raises:
            ValueError: not a BackgroundTask dict.
        """
        if isinstance(d, BackgroundTask):
            return d
        if not isinstance(d, Mapping) or "tasks" not in d:
            raise ValueError(f"_background_tasks entries must be BackgroundTask dicts, not {d!r}")
        return cls(
            d["tasks"],
            num_launches=d.get("num_launches", 0),
            sleep_time=d.get("sleep_time", 60),
            run_on_finish=d.get("run_on_finish", False),
        )

    def run_once(self, spec: dict[str, Any]) -> None:
        """Run every Firetask once (exceptions propagate)."""
        for task in self.tasks:
            task.run_task(spec)

    def _loop(self, spec: dict[str, Any]) -> None:
        done = 0
        while not self._stop.is_set():
            try:
                self.run_once(spec)
            except Exception:
                traceback.print_exc()
                return
            if self.sleep_time > 0:
                self._stop.wait(self.sleep_time)
            done += 1
            if done == self.num_launches:
                return

    def start(self, spec: dict[str, Any]) -> None:
        """Start the background thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(spec,), name="fireworks-background-task", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waiting up to `BACKGROUND_JOIN_SECS` for a run in progress)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(BACKGROUND_JOIN_SECS)
            self._thread = None


def stop_all(backgrounds: Iterable[BackgroundTask]) -> None:
    """Stop every background task."""
    for bg in backgrounds:
        bg.stop()
