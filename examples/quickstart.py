"""Quickstart: a 3-Firework workflow runs in Prefect, the middle Firework fizzles.

    python examples/quickstart.py

On the default LaunchPad (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else the embedded
server, started on demand) this adds the workflow ``prepare -> compute -> report``. ``compute``
fails unless the marker file ``<workdir>/fixed`` exists, so the first run fizzles: the flow
run ends ``Fizzled``, the task run ``fw-<id>-compute`` is ``Fizzled``, and the Firework shows up
in ``lpad get_fws -s FIZZLED`` with its stack trace in the launch. Open the Prefect UI (or
``prefect flow-run ls``) to see the runs.

Each step is a function so later examples (task-level rerun and completion) can extend it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect_fireworks.launchpad import LaunchPad
from prefect_fireworks.models import Firework, Workflow

WORKFLOW_NAME = "quickstart"


def build_workflow(workdir: Path) -> Workflow:
    """prepare (writes input.txt) -> compute (fails until ``workdir/fixed`` exists) -> report."""
    data = workdir / "input.txt"
    marker = workdir / "fixed"
    prepare = Firework(
        [
            {"_fw_name": "ScriptTask", "script": f"echo 21 > {data}"},
            {
                "_fw_name": "PyTask",
                "func": "os.path.getsize",
                "args": [str(data)],
                "outputs": ["input_size"],
            },
        ],
        name="prepare",
    )
    compute = Firework(
        [
            {"_fw_name": "ScriptTask", "script": "echo step 1 done > step1.txt"},
            {
                "_fw_name": "ScriptTask",
                "script": f"test -e {marker} || (echo 'compute: input not fixed' >&2; exit 3)",
                "store_stderr": True,
            },
            {"_fw_name": "ScriptTask", "script": f"expr $(cat {data}) \\* 2 > result.txt"},
        ],
        name="compute",
        parents=[prepare],
    )
    report = Firework(
        [{"_fw_name": "ScriptTask", "script": "echo report written > report.txt"}],
        name="report",
        parents=[compute],
    )
    return Workflow([prepare, compute, report], name=WORKFLOW_NAME)


def add_workflow(lp: LaunchPad, workdir: Path) -> int:
    """Add the workflow; returns its id (the first fw_id)."""
    return min(lp.add_wf(build_workflow(workdir)).values())


def run(wf_id: int, launch_root: Path) -> Any:
    """Run the workflow as one Prefect flow run; returns the final flow-run state."""
    from prefect_fireworks.flows import run_workflow

    return run_workflow(wf_id, launch_root=str(launch_root), return_state=True)


def fizzled_fireworks(lp: LaunchPad, wf_id: int) -> list[dict[str, Any]]:
    """What ``lpad get_fws -s FIZZLED`` shows for this workflow, plus the stack trace tail."""
    nodes = lp.get_wf_doc(wf_id, {"nodes": 1})["nodes"]
    out = []
    for fw in lp.fireworks.find({"fw_id": {"$in": nodes}, "state": "FIZZLED"}, {"_id": 0}):
        launch = lp.get_launch_by_id(fw["launches"][-1])
        checkpoint = launch.last_checkpoint or {}
        out.append(
            {
                "fw_id": fw["fw_id"],
                "name": fw["name"],
                "state": fw["state"],
                "launch_dir": launch.launch_dir,
                "failed_task": checkpoint.get("_task_n"),
                "stacktrace_tail": (launch.stacktrace or "").strip().splitlines()[-1:],
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Add the workflow, run it (it fizzles), print the FIZZLED Fireworks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Where inputs, the marker and launch directories go.",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fw-quickstart-"))
    workdir.mkdir(parents=True, exist_ok=True)

    lp = LaunchPad.auto_load()
    lp.ensure_initialized()
    wf_id = add_workflow(lp, workdir)
    print(f"Added workflow {WORKFLOW_NAME!r}: fw_ids {lp.get_wf_doc(wf_id)['nodes']}")

    state = run(wf_id, workdir / "launches")
    print(f"Flow run finished: {state.name} - {state.message}")

    fizzled = fizzled_fireworks(lp, wf_id)
    print("lpad get_fws -s FIZZLED (this workflow):")
    print(json.dumps(fizzled, indent=2))
    print(
        f"Fix it with `touch {workdir / 'fixed'}`, then rerun from the failed Firetask: "
        f"lpad rerun_fws -i {fizzled[0]['fw_id'] if fizzled else '<fw_id>'} --task-level"
    )
    return {"wf_id": wf_id, "state": state, "fizzled": fizzled, "workdir": workdir}


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    result = main()
    sys.exit(0 if result["fizzled"] else 1)
