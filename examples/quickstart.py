"""Quickstart: a workflow fizzles in Prefect, is rerun task-level and completes.

    python examples/quickstart.py

On the default LaunchPad (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else the embedded
server, started on demand) this adds the workflow ``prepare -> compute -> report``. ``compute``
fails unless the marker file ``<workdir>/fixed`` exists, so the first run fizzles: the flow
run ends ``Fizzled``, the task run ``fw-<id>-compute`` is ``Fizzled``, and the Firework shows up
in ``lpad get_fws -s FIZZLED`` with its stack trace in the launch. The example then fixes the
input and reruns ``compute`` task-level (``lpad rerun_fws -i ID --task-level``): the second run
restarts at the Firetask that failed (step 1 is not run again), and the workflow ends
COMPLETED. Open the Prefect UI (or ``prefect flow-run ls``) to see both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store.launchpad import LaunchPad

WORKFLOW_NAME = "quickstart"
#: Settings that point at a MongoDB of one's own (else the embedded server is used).
_CONFIGURED = ("MONGODB_URI", "LAUNCHPAD_FILE", "BLOCK")


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
    from prefect_fireworks.prefect.flows import run_workflow

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


def fix_and_rerun(lp: LaunchPad, fw_id: int, workdir: Path) -> list[int]:
    """Fix the input, then ``lpad rerun_fws -i FW_ID --task-level``: restart at the failed task.

    Returns:
        The fw_ids the rerun reset (the Firework and its child).
    """
    from prefect_fireworks.ops.rerun import rerun_fws

    (workdir / "fixed").touch()
    result = rerun_fws(lp, [fw_id], task_level=True)
    return [e.fw_id for e in result.entries]


def launch_summary(lp: LaunchPad, fw_id: int) -> dict[str, Any]:
    """The Firework's launches, old and new, as ``lpad get_fws -i ID -d all`` shows them."""
    fw = lp.get_fw_dict_by_id(fw_id)
    launches = [lp.get_launch_by_id(i) for i in fw["archived_launches"] + fw["launches"]]
    return {
        "fw_id": fw_id,
        "state": fw["state"],
        "archived_launches": fw["archived_launches"],
        "launches": fw["launches"],
        "recovery_task_n": fw["spec"].get("_recovery", {}).get("_task_n"),
        # the last checkpoint of each launch: the Firetask it was running last
        "last_task_n": [(lch.last_checkpoint or {}).get("_task_n") for lch in launches],
        "launch_states": [lch.state for lch in launches],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Add the workflow, run it (it fizzles), fix it, rerun task-level, run it to completion."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Where inputs, the marker and launch directories go.",
    )
    parser.add_argument(
        "--stop-after-fizzle",
        action="store_true",
        help="Stop after the first run (to try the rerun by hand with lpad).",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fw-quickstart-"))
    workdir.mkdir(parents=True, exist_ok=True)

    embedded = not any(os.environ.get(f"PREFECT_INTEGRATIONS_FIREWORKS_{k}") for k in _CONFIGURED)
    if embedded:
        print("0. Connecting to the LaunchPad: the embedded MongoDB-wire server (on first use)")
    lp = LaunchPad.auto_load()
    lp.ensure_initialized()
    wf_id = add_workflow(lp, workdir)
    print(f"1. Added workflow {WORKFLOW_NAME!r}: fw_ids {lp.get_wf_doc(wf_id)['nodes']}")

    if not os.environ.get("PREFECT_API_URL"):
        print(
            "   Running it in Prefect. No PREFECT_API_URL is set, so Prefect starts a local API "
            "server first (about 15 s)...",
            flush=True,
        )
    state = run(wf_id, workdir / "launches")
    print(f"2. Flow run finished: {state.name} - {state.message}")
    fizzled = fizzled_fireworks(lp, wf_id)
    print("   lpad get_fws -s FIZZLED (this workflow):")
    print(json.dumps(fizzled, indent=2))
    result: dict[str, Any] = {"wf_id": wf_id, "state": state, "fizzled": fizzled}
    result["workdir"] = workdir
    if args.stop_after_fizzle or not fizzled:
        print(
            f"Fix it with `touch {workdir / 'fixed'}`, then rerun from the failed Firetask: "
            f"lpad rerun_fws -i {fizzled[0]['fw_id'] if fizzled else '<fw_id>'} --task-level"
        )
        return result

    fw_id = fizzled[0]["fw_id"]
    reset = fix_and_rerun(lp, fw_id, workdir)
    restart_at = lp.get_fw_dict_by_id(fw_id)["spec"]["_recovery"]["_task_n"]
    print(
        f"3. Fixed the input; `lpad rerun_fws -i {fw_id} --task-level` reset fw_ids {reset}: "
        f"Firework {fw_id} restarts at Firetask {restart_at}"
    )
    final = run(wf_id, workdir / "launches")
    result["final_state"] = final
    result["workflow_state"] = lp.get_wf_doc(wf_id, {"state": 1})["state"]
    result["rerun"] = launch_summary(lp, fw_id)
    print(f"4. Flow run finished: {final.name} - {final.message}")
    print(f"   workflow state: {result['workflow_state']}")
    print(f"   Firework {fw_id}: {json.dumps(result['rerun'])}")
    if embedded:
        print(
            "The embedded MongoDB-wire server keeps running in the background, so lpad sees the "
            "same LaunchPad (`lpad server status`); stop it with `lpad server stop`."
        )
    print(
        "See both flow runs in Prefect: `prefect flow-run ls` (or `prefect server start` and "
        "open the UI); the LaunchPad: `lpad get_wflows -t`, `lpad get_fws -i "
        f"{fw_id} -d all`."
    )
    return result


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    outcome = main()
    ok = outcome.get("workflow_state") == "COMPLETED" or (
        "final_state" not in outcome and bool(outcome["fizzled"])
    )
    sys.exit(0 if ok else 1)
