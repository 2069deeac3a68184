"""A workflow that changes itself while it runs: additions, detours and mod_spec.

    python examples/dynamic_workflow.py

Two Firetasks defined here return FireWorks `FWAction`s:

- ``FibonacciAdder`` adds the next Fibonacci number and, below ``stop``, *adds* a new Firework
  that continues the sequence (``additions``): the workflow grows from one Firework to six.
- ``Measure`` sends its value to its children (``mod_spec`` with ``_push``) and, when the value
  is above the spec's ``threshold``, inserts a ``refine`` Firework between itself and its
  children (``detours``): ``refine`` becomes a parent of ``report``, which runs after it.

The workflow runs as one Prefect flow run (``run_workflow``), which picks up the added Fireworks
as they appear. The example prints every Firework of the workflow and the spec ``report`` ran
with. It uses the default LaunchPad (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else the
embedded server).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect_fireworks import Firework, FWAction, LaunchPad, Workflow
from prefect_fireworks.runtime.firetasks import Firetask


class FibonacciAdder(Firetask):
    """Add ``smaller + larger``; below ``stop``, add a Firework that continues the sequence."""

    _fw_name = "FibonacciAdder"
    required_params = ["smaller", "larger", "stop"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        smaller, larger, stop = self["smaller"], self["larger"], self["stop"]
        total = smaller + larger
        if total >= stop:
            return FWAction(stored_data={"next_fibnum": total})
        following = Firework(
            [FibonacciAdder(smaller=larger, larger=total, stop=stop)], name=f"fib-{total}"
        )
        return FWAction(stored_data={"next_fibnum": total}, additions=[following])


class Measure(Firetask):
    """Push ``value`` to the children's ``measurements``; above threshold, detour to ``refine``."""

    _fw_name = "Measure"
    required_params = ["value"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        value = self["value"]
        action = FWAction(
            stored_data={"value": value},
            mod_spec=[{"_push": {"measurements": value}}],
        )
        if value > fw_spec["threshold"]:
            refine = Firework([Refine(value=value)], name="refine")
            action.detours = [refine]
        return action


class Refine(Firetask):
    """Halve a value that was too large and pass it on (``update_spec``)."""

    _fw_name = "Refine"
    required_params = ["value"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        return FWAction(update_spec={"refined": self["value"] / 2})


def build_workflow() -> Workflow:
    """fib-1 (grows by additions); measure -> report (measure detours to refine)."""
    fib = Firework([FibonacciAdder(smaller=0, larger=1, stop=10)], name="fib-1")
    measure = Firework([Measure(value=42)], name="measure", spec={"threshold": 10})
    report = Firework(
        [{"_fw_name": "ScriptTask", "script": "echo report > report.txt"}],
        name="report",
        parents=[measure],
    )
    return Workflow([fib, measure, report], name="dynamic")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Add and run the workflow; returns the Fireworks by name and report's spec."""
    from prefect_fireworks.prefect.flows import run_workflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch-root", type=Path, default=None)
    args = parser.parse_args(argv)
    launch_root = args.launch_root or Path(tempfile.mkdtemp(prefix="fw-dynamic-"))

    lp = LaunchPad.auto_load()
    wf_id = min(lp.add_wf(build_workflow()).values())
    print(f"1. Added workflow 'dynamic' (fw_id {wf_id}): 3 Fireworks")
    state = run_workflow(wf_id, launch_root=str(launch_root), return_state=True)
    print(f"2. Flow run finished: {state.name}")

    nodes = lp.get_wf_doc(wf_id, {"nodes": 1})["nodes"]
    fws = {
        fw["name"]: fw
        for fw in lp.fireworks.find({"fw_id": {"$in": nodes}}, {"_id": 0}).sort("fw_id", 1)
    }
    links = lp.get_wf_doc(wf_id, {"links": 1})["links"]
    parents = {
        name: sorted(p for p, children in links.items() if fw["fw_id"] in children)
        for name, fw in fws.items()
    }
    print(f"3. The workflow has {len(fws)} Fireworks now:")
    for name, fw in fws.items():
        print(f"   {fw['fw_id']:>3} {name:<8} {fw['state']:<10} parents: {parents[name]}")
    report_spec = {k: v for k, v in fws["report"]["spec"].items() if k != "_tasks"}
    print(f"4. report ran after refine, with spec {report_spec}")
    return {
        "state": state.name,
        "names": list(fws),
        "states": {name: fw["state"] for name, fw in fws.items()},
        "parents": {name: [int(p) for p in ps] for name, ps in parents.items()},
        "ids": {name: fw["fw_id"] for name, fw in fws.items()},
        "report_spec": report_spec,
    }


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    outcome = main()
    sys.exit(0 if outcome["state"] == "Completed" else 1)
