"""Firetasks and PyTask functions used by the run tests (importable by subprocesses too).

The plain functions return FireWorks' own ``FWAction`` when the ``fireworks`` package is
installed, so the same workflow file runs under FireWorks' rocket and under ours.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime.firetasks import Firetask


class RunTestError(RuntimeError):
    """An exception with FireWorks' optional ``to_dict`` details."""

    def to_dict(self) -> dict[str, Any]:
        return {"error": "description", "args": list(self.args)}


class BumpTask(Firetask):
    """Append the task's ``tag`` to ``<dir>/bumps.txt`` (counts runs across launches)."""

    _fw_name = "BumpTask"
    required_params = ["dir", "tag"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with open(os.path.join(self["dir"], "bumps.txt"), "a") as f:
            f.write(self["tag"] + "\n")
        with open(f"{self['tag']}.out", "w") as f:
            f.write("done\n")
        return FWAction(stored_data={self["tag"]: True}, update_spec={f"seen_{self['tag']}": 1})


class ActionTask(Firetask):
    """Return the FWAction dict given as ``action``; record the spec keys listed in ``see``."""

    _fw_name = "ActionTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        action = FWAction.from_dict(self.get("action") or {})
        for key in self.get("see", []):
            action.stored_data[f"saw_{key}"] = copy.deepcopy(fw_spec.get(key))
        return action


class FailTask(Firetask):
    """Raise `RunTestError` unless ``<marker>`` exists."""

    _fw_name = "FailTask"

    def run_task(self, fw_spec: dict[str, Any]) -> None:
        marker = self.get("marker")
        if marker and os.path.exists(marker):
            return None
        raise RunTestError("boom in FailTask")


class SleepTask(Firetask):
    """Sleep ``seconds``."""

    _fw_name = "SleepTask"

    def run_task(self, fw_spec: dict[str, Any]) -> None:
        time.sleep(float(self.get("seconds", 0.1)))


def _fw_action(**kwargs: Any) -> Any:
    try:
        from fireworks import FWAction as FireWorksAction
    except ImportError:  # pragma: no cover - fireworks is a dev dependency
        return FWAction(**kwargs)
    return FireWorksAction(**kwargs)


def add_child(x: int) -> Any:
    """An addition: a child Firework that stores ``x + 1``."""
    child = {
        "fws": [
            {
                "fw_id": -1,
                "name": "added",
                "spec": {
                    "_tasks": [
                        {
                            "_fw_name": "PyTask",
                            "func": "fwtest_funcs.store",
                            "args": [x + 1],
                        }
                    ]
                },
            }
        ],
        "links": {},
        "metadata": {},
    }
    try:
        from fireworks import Workflow as FireWorksWorkflow

        return _fw_action(additions=[FireWorksWorkflow.from_dict(child)], stored_data={"x": x})
    except ImportError:  # pragma: no cover
        return FWAction(additions=[child], stored_data={"x": x})


def push_and_update(value: int, propagate: bool = False) -> Any:
    """update_spec + mod_spec ``_push``, optionally propagated to every descendant."""
    return _fw_action(
        update_spec={"from_parent": value},
        mod_spec=[{"_push": {"pushed": value}}],
        propagate=propagate,
    )


def store(x: Any) -> Any:
    """Store ``x``."""
    return _fw_action(stored_data={"value": x})


def defuse_kids() -> Any:
    """Defuse the children."""
    return _fw_action(defuse_children=True)


def fail() -> None:
    """Raise."""
    raise RunTestError("fail() was called")
