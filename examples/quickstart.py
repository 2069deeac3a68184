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

The runs go to the configured Prefect API (``PREFECT_API_URL``, a Prefect profile), else to a
local Prefect server started in the background as ``lpad run_workflow`` does. Both it and the
embedded server keep running after the example ends; ``lpad server stop`` stops them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store.launchpad import LaunchPad

WORKFLOW_NAME = "quickstart"
#: Seconds between "still starting" lines while the local Prefect server starts.
PROGRESS_SECS = 10.0
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


def connect_prefect() -> str | None:
    """Point this process at a Prefect API, saying what happens while it starts.

    With none configured (``PREFECT_API_URL``, a Prefect profile), start the local Prefect
    server in the background as ``lpad run_workflow`` does, printing every few seconds until it
    answers (the first start creates Prefect's database: tens of seconds on a busy machine).

    Returns:
        The local server's API URL when this example started or reused it, else None.
    """
    from prefect_fireworks.prefect import local_server

    if local_server.configured_api_url():
        return None
    if not local_server.enabled():
        print(
            "   No Prefect API is configured: Prefect starts a temporary server inside this "
            "process first (10-40 s; nothing is printed meanwhile)...",
            flush=True,
        )
        return None
    running = local_server.status()
    if running is None:
        print(
            "   No Prefect API is configured: starting a local Prefect server in the background "
            "(the first start creates its database: 10-60 s)...",
            flush=True,
        )
    outcome: dict[str, Any] = {}

    def start() -> None:
        try:
            outcome["url"] = local_server.ensure_api()
        except Exception as exc:  # reported below, in one line
            outcome["error"] = exc

    t0 = time.monotonic()
    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    while True:
        starter.join(timeout=PROGRESS_SECS)
        if not starter.is_alive():
            break
        print(f"   ... still starting ({time.monotonic() - t0:.0f} s)", flush=True)
    if "error" in outcome:
        raise SystemExit(f"quickstart: {outcome['error']}")
    url = outcome.get("url")
    if running is None:
        print(f"   Prefect API ready after {time.monotonic() - t0:.0f} s: {url}", flush=True)
    else:
        print(f"   Prefect API: the local Prefect server already running at {url}", flush=True)
    return str(url) if url else None


def say_what_keeps_running(embedded: bool, prefect_server: str | None) -> None:
    """Which background servers outlive this example, and how to stop them."""
    if embedded:
        print(
            "The embedded MongoDB-wire server keeps running in the background, so lpad sees the "
            "same LaunchPad (`lpad server status`); stop it with `lpad server stop`."
        )
    if prefect_server:
        print(
            f"The local Prefect server ({prefect_server}) keeps running in the background too, "
            "so later flow runs start at once; `lpad server stop` stops it as well."
        )


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
        print(
            "0. Connecting to the LaunchPad: the embedded MongoDB-wire server (started in the "
            "background on first use)",
            flush=True,
        )
    lp = LaunchPad.auto_load()
    lp.ensure_initialized()
    wf_id = add_workflow(lp, workdir)
    print(f"1. Added workflow {WORKFLOW_NAME!r}: fw_ids {lp.get_wf_doc(wf_id)['nodes']}")

    print("   Running it in Prefect: one flow run, each Firework a task run...", flush=True)
    prefect_server = connect_prefect()
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
        say_what_keeps_running(embedded, prefect_server)
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
    say_what_keeps_running(embedded, prefect_server)
    ui = (
        f"the UI at {prefect_server.removesuffix('/api')}"
        if prefect_server
        else "`prefect server start` and open the UI"
    )
    print(
        f"See both flow runs in Prefect: `prefect flow-run ls` (or {ui}); the LaunchPad: "
        f"`lpad get_wflows -t`, `lpad get_fws -i {fw_id} -d all`."
    )
    return result


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    outcome = main()
    ok = outcome.get("workflow_state") == "COMPLETED" or (
        "final_state" not in outcome and bool(outcome["fizzled"])
    )
    sys.exit(0 if ok else 1)
