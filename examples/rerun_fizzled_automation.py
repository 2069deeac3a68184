"""A Prefect automation that reruns FIZZLED Fireworks by itself.

    prefect server start                                   # in another terminal
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python examples/rerun_fizzled_automation.py

Automations are evaluated by a Prefect server, so this example needs one (``PREFECT_API_URL``).
It registers the ``rerun-fws`` deployment and the automation ``rerun-fizzled-fireworks`` (what
``lpad deploy`` and ``lpad automations create --max-reruns 2`` do), then runs a workflow whose
only Firework fails on its first attempt (a "flaky network"). The fizzle emits the event
``fireworks.firework.fizzled``; the automation answers with a ``rerun-fws`` flow run for that
Firework. A worker would execute that flow run; here this process plays the worker and runs it.
The Firework is rerun, and the next run of the workflow completes. The automation and the
deployment are removed at the end (``--keep`` leaves them, to look at them in the UI).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect_fireworks import Firework, LaunchPad, ScriptTask, Workflow


def build_workflow(workdir: Path) -> Workflow:
    """One Firework that fails the first time it runs and succeeds afterwards."""
    marker = workdir / "attempted"
    script = (
        f"if [ -e {marker} ]; then echo downloaded > data.txt; "
        f"else touch {marker}; echo 'download: network timeout' >&2; exit 1; fi"
    )
    return Workflow(
        [Firework([ScriptTask(script=script, store_stderr=True)], name="download")],
        name="flaky",
    )


def wait_for_rerun_run(deployment_id: Any, since: datetime, timeout: float = 60) -> Any:
    """The ``rerun-fws`` flow run the automation creates (as a worker would pick it up)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            fresh = [r for r in runs if r.created is not None and r.created >= since]
            if fresh:
                return fresh[0]
            time.sleep(0.5)
    raise TimeoutError("the automation did not create a rerun-fws flow run within 60 s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Register, fizzle, let the automation rerun, run again; returns what happened."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from prefect_fireworks.prefect.automations import (
        RERUN_AUTOMATION,
        create_rerun_automation,
        delete_automations,
    )
    from prefect_fireworks.prefect.deployments import RERUN_FWS
    from prefect_fireworks.prefect.flows import run_workflow
    from prefect_fireworks.prefect.rerun_flow import rerun_fws

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the automation and deployment.")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fw-automation-"))
    launch_root = str(workdir / "launches")

    deployment_id = rerun_fws.to_deployment(name=RERUN_FWS).apply()
    create_rerun_automation(max_reruns=2)
    print(f"1. Registered the {RERUN_FWS!r} deployment and the {RERUN_AUTOMATION!r} automation")
    try:
        lp = LaunchPad.auto_load()
        wf_id = min(lp.add_wf(build_workflow(workdir)).values())
        since = datetime.now(timezone.utc)
        first = run_workflow(wf_id, launch_root=launch_root, return_state=True)
        print(f"2. First run: {first.name} (the Firework fizzled)")

        run = wait_for_rerun_run(deployment_id, since)
        print(f"3. The automation created flow run {run.name!r} with {run.parameters}")
        rerun_state = run_flow(
            rerun_fws, flow_run=run, parameters=run.parameters, return_type="state"
        )
        fw = lp.get_fw_dict_by_id(wf_id)
        print(f"4. {RERUN_FWS}: {rerun_state.name}; the Firework is {fw['state']} again")

        second = run_workflow(wf_id, launch_root=launch_root, return_state=True)
        fw = lp.get_fw_dict_by_id(wf_id)
        print(f"5. Second run: {second.name}; the Firework is {fw['state']}")
        return {
            "first": first.name,
            "parameters": run.parameters,
            "rerun": rerun_state.name,
            "second": second.name,
            "state": fw["state"],
            "archived_launches": fw["archived_launches"],
        }
    finally:
        if not args.keep:
            delete_automations(RERUN_AUTOMATION)
            with get_client(sync_client=True) as client:
                client.delete_deployment(deployment_id)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            print(
                "Error: this example needs a Prefect server: run `prefect server start` and "
                "set PREFECT_API_URL=http://127.0.0.1:4200/api",
                file=sys.stderr,
            )
            sys.exit(2)
    outcome = main()
    sys.exit(0 if outcome["state"] == "COMPLETED" else 1)
