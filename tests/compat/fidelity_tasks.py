"""Firetasks (written against FireWorks' API) and PyTask functions for the side-by-side tests.

Both FireWorks' ``load_object`` and ours import them by name (``{{fidelity_tasks.X}}`` and
``fidelity_tasks.func``), so one workflow dict runs in both tools.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fireworks import Firework, FWAction, Workflow
from fireworks.core.firework import FiretaskBase
from fireworks.utilities.fw_utilities import explicit_serialize


@explicit_serialize
class LaunchPadUserTask(FiretaskBase):
    """Reads ``self.fw_id``, ``self.launchpad`` and ``self.fworker`` as FireWorks' tasks do."""

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        lp = self.launchpad
        fw = lp.get_fw_by_id(self.fw_id)
        wf = lp.get_wf_by_fw_id(self.fw_id)
        data = {
            "fw_id": self.fw_id,
            "host_set": bool(lp.host),
            "name": fw.name,
            "spec_x": fw.spec.get("x"),
            "wf_name": wf.name,
            "n_fws": len(wf.fws),
            "fworker": self.fworker.name,
        }
        target = fw_spec.get("update_target")
        if target is not None:
            lp.update_spec([target], {"from_task": self.fw_id})
        return FWAction(stored_data=data)


@explicit_serialize
class FizzledParentsTask(FiretaskBase):
    """Reads ``spec._fizzled_parents`` the way FireWorks users do."""

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        parents = fw_spec["_fizzled_parents"]
        last = parents[0]["launches"][-1]
        return FWAction(
            stored_data={
                "n": len(parents),
                "names": sorted(p["name"] for p in parents),
                "states": [p["state"] for p in parents],
                "launch_state": last["state"],
                "error": last["action"]["stored_data"]["_exception"]["_stacktrace"]
                .strip()
                .splitlines()[-1],
                "history": [h["state"] for h in last["state_history"]],
                "task": last["action"]["stored_data"]["_task"]["_fw_name"],
            }
        )


@explicit_serialize
class TwoDetoursAndAdditionTask(FiretaskBase):
    """Two detours (one of two Fireworks) and one addition in one FWAction."""

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        a1 = Firework(_store("detour-a1", 1), name="detour-a1")
        a2 = Firework(_store("detour-a2", 2), name="detour-a2", parents=[a1])
        b = Firework(_store("detour-b", 3), name="detour-b")
        c = Firework(_store("addition-c", 4), name="addition-c")
        return FWAction(
            detours=[Workflow([a1, a2], {a1: [a2]}), b],
            additions=[c],
            stored_data={"made": 4},
        )


def _store(tag: str, value: int) -> Any:
    from fireworks import PyTask

    return PyTask(func="fidelity_tasks.push_value", args=[tag, value])


def push_value(tag: str, value: int) -> FWAction:
    """Store a value and push ``tag`` onto the children's ``seen`` list."""
    return FWAction(stored_data={tag: value}, mod_spec=[{"_push": {"seen": tag}}])


def square(x: Any) -> Any:
    """x squared (a list: each element squared)."""
    if isinstance(x, list):
        return [v * v for v in x]
    return x * x


def gather(values: list[Any]) -> FWAction:
    """What the consumer of ForeachTask's detours received."""
    return FWAction(stored_data={"gathered": sorted(values), "n": len(values)})


def fail(message: str = "failing on purpose") -> None:
    """Raise."""
    raise RuntimeError(message)


def append_line(path: str, text: str) -> None:
    """Append a line to a file (relative paths: the launch directory)."""
    with open(path, "a") as f:
        f.write(text + "\n")


def wait_for_lines(path: str, n: int) -> FWAction:
    """Wait until ``path`` has ``n`` lines (written by a background task), then report them."""
    for _ in range(2000):
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            if len(lines) >= n:
                return FWAction(stored_data={"lines_seen": len(lines)})
        time.sleep(0.005)
    raise RuntimeError(f"{path} never had {n} lines")


def read_spec(*keys: str) -> FWAction:
    """Store the named spec keys (read through inputs)."""
    return FWAction(stored_data={"keys": list(keys)})
