"""Prefect tasks and flows that run Fireworks: `launch_firework`, `run_workflow`, `rapidfire`.

One launch of a Firework is one task run of `launch_firework` (named ``fw-<id>-<name>``, tagged
``fw:<id>`` and ``wf:<id>``); its Firetasks run in order inside it
(`prefect_fireworks.runtime.rocket`).
The flow checks a Firework out (one conditional write, so no Firework ever runs twice however
many flows, workers or ``rlaunch`` processes share the LaunchPad) and submits the task to the
flow's task runner. The default runner runs one Firework at a time; pass prefect-dask's
``DaskTaskRunner`` (``run_workflow.with_options(task_runner=DaskTaskRunner(...))``) to run
independent Fireworks in parallel worker processes.

States: a COMPLETED launch is ``Completed``; a FIZZLED one ``Failed(name="Fizzled")`` and the
event ``fireworks.firework.fizzled``; a launch whose Firework ends DEFUSED, or whose FWAction
defuses its children or workflow, ``Cancelled(name="Defused")``.

The code lives in focused modules, re-exported here (deployments and docs name
``prefect_fireworks.prefect.flows:run_workflow``): `prefect_fireworks.prefect.launch_task`
(the task), `prefect_fireworks.prefect.workflow_flow` and
`prefect_fireworks.prefect.rapidfire_flow` (the flows), `prefect_fireworks.prefect.launcher`
(checkout and the task runs in flight, `RunSummary`), `prefect_fireworks.prefect.fizzles`
(the FIZZLED log line and event), `prefect_fireworks.prefect.flow_config` (the LaunchPad and
launch root of a run).

Example:
    ```python
    from prefect_fireworks.prefect.flows import run_workflow

    state = run_workflow(1, return_state=True)  # the workflow holding Firework 1
    print(state.name)  # "Completed" or "Fizzled"
    ```
"""

from __future__ import annotations

from prefect_fireworks.core.constants import FIZZLED_EVENT
from prefect_fireworks.prefect.fizzles import fizzle_line
from prefect_fireworks.prefect.flow_config import get_launchpad, resolve_flow_launch_root
from prefect_fireworks.prefect.launch_task import launch_firework
from prefect_fireworks.prefect.launcher import FireworksRunError, RunSummary
from prefect_fireworks.prefect.rapidfire_flow import RAPIDFIRE_SLEEP_SECS, rapidfire
from prefect_fireworks.prefect.workflow_flow import run_workflow

__all__ = [
    "FIZZLED_EVENT",
    "RAPIDFIRE_SLEEP_SECS",
    "FireworksRunError",
    "RunSummary",
    "fizzle_line",
    "get_launchpad",
    "launch_firework",
    "rapidfire",
    "resolve_flow_launch_root",
    "run_workflow",
]
