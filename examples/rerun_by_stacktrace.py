"""Rerun only the Fireworks whose stack trace matches a regex (``lpad ... -lm``).

    python examples/rerun_by_stacktrace.py

Four simulations run in one workflow. Two fail with "out of memory", one with "bad input",
one succeeds. The example then does what you would type:

    Q='{"action.stored_data._exception._stacktrace": {"$regex": "out of memory"}}'
    lpad get_fws -q "$Q" -lm -d ids
    lpad rerun_fws -q "$Q" -lm

``-lm`` runs the query on the launches, where each failed launch keeps its stack trace (for a
ScriptTask, the tail of its stderr is part of it). After "moving to a bigger machine" (a marker
file), the out-of-memory simulations are rerun and complete; the bad-input one stays FIZZLED,
untouched. It uses the default LaunchPad (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else
the embedded server).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect_fireworks import Firework, LaunchPad, ScriptTask, Workflow

OUT_OF_MEMORY = "out of memory"


def build_workflow(workdir: Path) -> Workflow:
    """sim-1 succeeds; sim-2 and sim-4 run out of memory until ``workdir/bigger_node`` exists;
    sim-3 always fails with bad input."""
    big = workdir / "bigger_node"
    oom = f"test -e {big} || (echo 'simulation: {OUT_OF_MEMORY} (needs 64 GB)' >&2; exit 1)"
    scripts = {
        "sim-1": "echo done > result.txt",
        "sim-2": oom,
        "sim-3": "echo 'simulation: bad input (negative size)' >&2; exit 2",
        "sim-4": oom,
    }
    fws = [
        Firework([ScriptTask(script=script, store_stderr=True)], name=name)
        for name, script in scripts.items()
    ]
    return Workflow(fws, name="simulations")


def lpad(*args: str) -> str:
    """Run ``lpad ARGS`` (this environment's) and return its standard output."""
    print("$ lpad " + " ".join(f"'{a}'" if " " in a else a for a in args))
    proc = subprocess.run(
        [sys.executable, "-m", "prefect_fireworks.cli", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    print(proc.stdout.rstrip())
    return proc.stdout


def states(lp: LaunchPad, wf_id: int) -> dict[str, str]:
    """Name -> state of the workflow's Fireworks."""
    nodes = lp.get_wf_doc(wf_id, {"nodes": 1})["nodes"]
    found = lp.fireworks.find({"fw_id": {"$in": nodes}}, {"name": 1, "state": 1})
    return {fw["name"]: fw["state"] for fw in found}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, select by stack trace, rerun, run again; returns the states and the selection."""
    from prefect_fireworks.prefect.flows import run_workflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fw-stacktrace-"))
    launch_root = str(workdir / "launches")

    lp = LaunchPad.auto_load()
    wf_id = min(lp.add_wf(build_workflow(workdir)).values())
    first = run_workflow(wf_id, launch_root=launch_root, return_state=True)
    print(f"1. First run: {first.name}; states {states(lp, wf_id)}")

    query = json.dumps({"action.stored_data._exception._stacktrace": {"$regex": OUT_OF_MEMORY}})
    selected = json.loads(lpad("get_fws", "-q", query, "-lm", "-d", "ids"))
    selected = selected if isinstance(selected, list) else [selected]
    print(f"2. Out of memory: fw_ids {selected}")

    (workdir / "bigger_node").touch()
    lpad("rerun_fws", "-q", query, "-lm")
    second = run_workflow(wf_id, launch_root=launch_root, return_state=True)
    final = states(lp, wf_id)
    print(f"3. After the rerun: {second.name}; states {final}")
    return {"selected": selected, "states": final, "wf_id": wf_id}


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    outcome = main()
    expected = dict.fromkeys(["sim-1", "sim-2", "sim-4"], "COMPLETED") | {"sim-3": "FIZZLED"}
    sys.exit(0 if outcome["states"] == expected else 1)
