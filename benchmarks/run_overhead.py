"""Per-Firework overhead: 100 trivial Fireworks through ``run_workflow`` vs bare Prefect tasks.

Reports, does not assert. Needs a MongoDB (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, else
the embedded server is started) and runs Prefect against a temporary local API server
(``prefect_test_harness``) unless ``PREFECT_API_URL`` is set.

    python benchmarks/run_overhead.py [--n 100]
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
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    n = args.n

    from prefect import flow, task

    from prefect_fireworks.core.models import Firework, Workflow
    from prefect_fireworks.prefect.flows import run_workflow
    from prefect_fireworks.runtime.rocket import run_one
    from prefect_fireworks.store.launchpad import LaunchPad

    db = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ["PREFECT_INTEGRATIONS_FIREWORKS_DATABASE"] = db
    lp = LaunchPad.auto_load()
    lp.reset(None, require_password=False)

    def chain(name: str) -> int:
        # n independent trivial Fireworks in one workflow (a fan-out below one root).
        root = Firework([{"_fw_name": "PyTask", "func": "abs", "args": [0]}], name="root")
        fws = [root] + [
            Firework(
                [{"_fw_name": "PyTask", "func": "abs", "args": [i]}], name=f"t{i}", parents=[root]
            )
            for i in range(n - 1)
        ]
        return min(lp.add_wf(Workflow(fws, name=name)).values())

    @task
    def bare(i: int) -> int:
        return abs(i)

    @flow
    def bare_flow(k: int) -> None:
        for i in range(k):
            bare(i)

    root = tempfile.mkdtemp(prefix="bench-launches-")
    try:
        with prefect_api():
            # Warm up both paths (imports, first API calls).
            bare_flow(2)
            wf0 = chain("warm")
            run_workflow(wf0, launch_root=root)

            t0 = time.perf_counter()
            bare_flow(n)
            bare_s = time.perf_counter() - t0

            wf = chain("bench")
            t0 = time.perf_counter()
            state = run_workflow(wf, launch_root=root, return_state=True)
            ours_s = time.perf_counter() - t0
            assert state.is_completed(), state.message

            wf = chain("bench-tagged")
            t0 = time.perf_counter()
            state = run_workflow(wf, launch_root=root, tag_task_runs=True, return_state=True)
            tagged_s = time.perf_counter() - t0
            assert state.is_completed(), state.message

        chain("plain")
        t0 = time.perf_counter()
        done = 0
        while run_one(lp, launch_root=root) is not None:
            done += 1
        plain_s = time.perf_counter() - t0
        assert done == n
    finally:
        lp.client.drop_database(db)

    print(f"{n} trivial Fireworks / tasks, one after another:")
    print(
        f"  bare Prefect task in a flow:        {bare_s * 1000 / n:7.1f} ms per task "
        f"({bare_s:.2f} s total)"
    )
    print(
        f"  run_workflow (default, untagged):   {ours_s * 1000 / n:7.1f} ms per Firework "
        f"({ours_s:.2f} s total, includes the flow run)"
    )
    print(
        f"  run_workflow, tag_task_runs=True:   {tagged_s * 1000 / n:7.1f} ms per Firework "
        f"({tagged_s:.2f} s total)"
    )
    print(
        f"  Rocket only (rlaunch --no-prefect): {plain_s * 1000 / n:7.1f} ms per Firework "
        f"({plain_s:.2f} s total)"
    )
    print(
        f"  => LaunchPad bookkeeping {plain_s * 1000 / n:.1f} ms + Prefect "
        f"{(ours_s - plain_s) * 1000 / n:.1f} ms per Firework "
        f"(tagged: {(tagged_s - plain_s) * 1000 / n:.1f} ms)"
    )


if __name__ == "__main__":
    main()
