"""Deployable entrypoint ``run_workflow.py:run_workflow``.

Run one Workflow until nothing is READY or RUNNING.

The flow lives in the installed package (``prefect_fireworks.prefect.flows``);
this file only exposes it to ``prefect deploy`` (see ``prefect.yaml``).
``python run_workflow.py`` serves it as ``run-workflow``.
"""

from prefect_fireworks.prefect.flows import run_workflow

__all__ = ["run_workflow"]

if __name__ == "__main__":
    run_workflow.serve(name="run-workflow")
