"""Helpers shared by the store tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest


def _drain(lps: Sequence[Any]) -> None:
    """Run every Firework with one thread per LaunchPad (each its own worker, with its own
    hints, workflow cache and documents read ahead) until none is left to run; re-raise the
    first error a worker met."""
    from prefect_fireworks.store.launch_cycle import checkout_launch, finish_launch
    from prefect_fireworks.store.launches import FWorker

    errors: list[BaseException] = []

    def work(wlp: Any) -> None:
        try:
            deadline = time.monotonic() + 600  # a safety net, not a timing
            while time.monotonic() < deadline:
                got = checkout_launch(wlp, FWorker(), "/tmp")
                if got is None:
                    if wlp.fireworks.count_documents({"state": {"$ne": "COMPLETED"}}) == 0:
                        return
                    time.sleep(0.01)
                    continue
                fw, launch = got
                finish_launch(wlp, int(launch["launch_id"]), {}, launch_doc=launch, fw_doc=fw)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in lps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture
def drain() -> Callable[[Sequence[Any]], None]:
    """``drain(launchpads)``: concurrent workers, one per LaunchPad, run every Firework."""
    return _drain
