"""A running launch's heartbeat: pings (with checkpoints) and the trackers' file tails.

`Heartbeat.ping` stamps the launch's RUNNING state-history entry (``updated_on``, and the
checkpoint when one is given) and refreshes the trackers (``spec._trackers``: the last lines
of files in the launch directory). While the Firetasks run, a thread pings every
``ping_secs`` (FireWorks' ``PING_TIME_SECS``), so ``detect_lostruns`` can tell a live launch
from a lost one.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

logger = logging.getLogger(__name__)

__all__ = ["MAX_TRACKER_LINES", "PING_TIME_SECS", "TRACKER_LINES", "Heartbeat", "parse_trackers"]

#: FireWorks' ``PING_TIME_SECS``: heartbeat interval of a running launch.
PING_TIME_SECS = 3600.0
#: FireWorks' ``TRACKER_LINES`` (default lines kept by a tracker) and its maximum.
TRACKER_LINES = 25
MAX_TRACKER_LINES = 1000


def parse_trackers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trackers of ``spec._trackers`` (filename, nlines, allow_zipped).

    Raises:
        ValueError: a tracker asks for more than `MAX_TRACKER_LINES` lines.
    """
    trackers = []
    for t in spec.get("_trackers") or []:
        nlines = int(t.get("nlines", TRACKER_LINES))
        if nlines > MAX_TRACKER_LINES:
            raise ValueError(
                f"Tracker only supports a maximum of {MAX_TRACKER_LINES} lines; you put {nlines}."
            )
        trackers.append(
            {
                "filename": t["filename"],
                "nlines": nlines,
                "allow_zipped": bool(t.get("allow_zipped", False)),
            }
        )
    return trackers


class Heartbeat:
    """Pings one launch, now (`ping`) or every ``ping_secs`` in a thread (`start`/`stop`).

    Args:
        lp: the LaunchPad.
        launch_id: the launch.
        launch_doc: the Rocket's in-memory launch document (kept in step with the pings), or
            None when the Rocket reads its launch from the database.
        ping_secs: the interval of the thread.

    Attributes:
        trackers: the launch's trackers (`parse_trackers`); their tails go with every ping.
        launch_dir: the directory the trackers' files are in.
    """

    def __init__(
        self,
        lp: LaunchPad,
        launch_id: int,
        launch_doc: dict[str, Any] | None,
        ping_secs: float = PING_TIME_SECS,
    ) -> None:
        self.lp = lp
        self.launch_id = launch_id
        self.launch_doc = launch_doc
        self.ping_secs = ping_secs
        self.trackers: list[dict[str, Any]] = []
        self.launch_dir = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tracker_docs(self) -> list[dict[str, Any]]:
        """The trackers with the current tails of their files (``content``)."""
        out = []
        for t in self.trackers:
            d = dict(t)
            content = _tail(os.path.join(self.launch_dir, t["filename"]), t["nlines"])
            if content:
                d["content"] = content
            out.append(d)
        return out

    def ping(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Heartbeat (and checkpoint): stamp the launch's last state-history entry."""
        self.lp.ping_launch(self.launch_id, checkpoint)
        if self.launch_doc is not None and self.launch_doc.get("state_history"):
            last = self.launch_doc["state_history"][-1]
            last["updated_on"] = datetime.now(timezone.utc).isoformat()
            if checkpoint is not None:
                last["checkpoint"] = copy.deepcopy(dict(checkpoint))
        if self.trackers:
            self.lp.launches.update_one(
                {"launch_id": self.launch_id, "state": st.RUNNING},
                {"$set": {"trackers": self.tracker_docs()}},
            )

    def start(self) -> None:
        """Ping every ``ping_secs`` in a daemon thread until `stop`."""
        self._thread = threading.Thread(
            target=self._beat, name=f"ping-{self.launch_id}", daemon=True
        )
        self._thread.start()

    def stop(self, join: bool = False) -> None:
        """Stop the thread (and with ``join`` wait up to 5 s for it)."""
        self._stop.set()
        if join and self._thread is not None:
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.ping_secs):
            try:
                self.ping()
            except Exception as exc:  # a failed heartbeat must never kill the launch
                # one line: the next heartbeat, or the completion's retries, tell the rest
                logger.warning("launch %s: heartbeat failed: %s", self.launch_id, exc)


def _tail(path: str, nlines: int) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, errors="surrogateescape") as f:
        lines = f.read().splitlines()
    return "\n".join(lines[-nlines:]) if nlines > 0 else ""
