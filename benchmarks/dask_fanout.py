"""Fan-out of sleeping Fireworks: prefect-dask's DaskTaskRunner (4 workers) vs sequential.

Reports, does not assert. Needs a MongoDB (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else
the embedded server) and runs Prefect on a temporary local API server unless
``PREFECT_API_URL`` is set.

    python benchmarks/dask_fanout.py [--n 20] [--sleep 1.0] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from _prefect_api import prefect_api


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from prefect_dask import DaskTaskRunner

    from prefect_fireworks.core.models import Firework, Workflow
    from prefect_fireworks.prefect.flows import run_workflow
    from prefect_fireworks.store.launchpad import LaunchPad

    db = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ["PREFECT_INTEGRATIONS_FIREWORKS_DATABASE"] = db
    lp = LaunchPad.auto_load()
    lp.reset(None, require_password=False)

    def fan(name: str) -> int:
        root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
        kids = [
            Firework(
                [{"_fw_name": "ScriptTask", "script": f"sleep {args.sleep}"}],
                name=f"sleep{i}",
                parents=[root],
            )
            for i in range(args.n)
        ]
        return min(lp.add_wf(Workflow([root, *kids], name=name)).values())

    root_dir = tempfile.mkdtemp(prefix="bench-dask-")
    try:
        with prefect_api():
            wf = fan("sequential")
            t0 = time.perf_counter()
            state = run_workflow(wf, launch_root=root_dir, return_state=True)
            seq = time.perf_counter() - t0
            assert state.is_completed(), state.message

            runner = DaskTaskRunner(
                cluster_kwargs={
                    "n_workers": args.workers,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": None,
                }
            )
            wf = fan("dask")
            t0 = time.perf_counter()
            state = run_workflow.with_options(task_runner=runner)(
                wf, launch_root=root_dir, return_state=True
            )
            par = time.perf_counter() - t0
            assert state.is_completed(), state.message
    finally:
        lp.client.drop_database(db)

    ideal = args.n * args.sleep
    print(f"fan-out of {args.n} Fireworks sleeping {args.sleep} s (+ a root):")
    print(f"  sequential (default task runner): {seq:6.1f} s  (sleep alone: {ideal:.0f} s)")
    print(
        f"  DaskTaskRunner, {args.workers} worker processes: {par:6.1f} s "
        f"(includes starting the local cluster); speed-up {seq / par:.1f}x"
    )


if __name__ == "__main__":
    main()
