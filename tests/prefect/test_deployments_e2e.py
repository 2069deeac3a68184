"""End to end on a real `prefect server start`: a Firework that fails once heals by itself.

The deployments are served by `lpad deploy --serve` in a separate process and the automation is
created with `lpad automations create`. A workflow whose first Firework fails the first time is
started through the `run-workflow` deployment; the fizzle event makes the automation run
`rerun-fws`, which reruns the Firework and triggers `run-workflow` again. Nobody intervenes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import stop_process_group as _stop

from prefect_fireworks import Firework, ScriptTask
from prefect_fireworks.core import states as st

pytestmark = pytest.mark.server


@pytest.fixture
def served(prefect_server: dict[str, str], lp: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`lpad deploy --serve` against the server and `lp`'s database; stopped before the server."""
    env = {
        **prefect_server,
        **{k: v for k, v in os.environ.items() if k.startswith("PREFECT_INTEGRATIONS_FIREWORKS")},
        "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(tmp_path / "launches"),
    }
    (tmp_path / "launches").mkdir()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("lpad")),
                "deploy",
                "--serve",
                "--lostruns-cron",
                "",
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield {**env, "SERVE_LOG": str(log)}
    finally:
        _stop(proc)


def test_fizzled_firework_is_rerun_and_completes_without_help(
    served: dict[str, str], lp: Any, tmp_path: Path, run_cli: Any
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    marker = tmp_path / "marker"
    script = f"if [ -e {marker} ]; then echo healed; else touch {marker}; exit 3; fi"
    flaky = Firework([ScriptTask(script=script)], name="flaky")
    child = Firework([ScriptTask(script="echo child")], name="child", parents=[flaky])
    from prefect_fireworks import Workflow

    ids = lp.add_wf(Workflow([flaky, child], name="heals"))
    flaky_id, child_id = ids[flaky.fw_id], ids[child.fw_id]
    serve_log = Path(served["SERVE_LOG"])

    with temporary_settings({PREFECT_API_URL: served["PREFECT_API_URL"]}):
        names = ["run-workflow", "rapidfire", "rerun-fws", "detect-lostruns"]
        deadline = time.monotonic() + 90
        with get_client(sync_client=True) as client:
            while True:
                found = client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
                if len(found) == 4:
                    break
                assert time.monotonic() < deadline, serve_log.read_text()[-3000:]
                time.sleep(0.5)
        run_cli(["automations", "create"])

        started = time.monotonic()
        first = run_deployment(
            "run-workflow/run-workflow", parameters={"wf_id": flaky_id}, timeout=0
        )
        deadline = started + 150
        while lp.workflows.find_one({"nodes": flaky_id})["state"] != st.COMPLETED:
            assert time.monotonic() < deadline, (
                f"workflow {lp.workflows.find_one({'nodes': flaky_id})['state']} after 150 s\n"
                + serve_log.read_text()[-4000:]
            )
            time.sleep(0.5)
        healed_after = time.monotonic() - started

        fw = lp.get_fw_dict_by_id(flaky_id)
        assert fw["state"] == st.COMPLETED
        assert len(fw["archived_launches"]) == 1
        assert len(fw["launches"]) == 1
        assert lp.get_fw_dict_by_id(child_id)["state"] == st.COMPLETED
        archived = lp.launches.find_one({"launch_id": fw["archived_launches"][0]})
        assert archived["state"] == st.FIZZLED

        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 60
            while True:  # the last flow run reports its end shortly after the database does
                runs = {r.id: r for r in client.read_flow_runs()}
                if all(r.state and r.state.is_final() for r in runs.values()):
                    break
                assert time.monotonic() < deadline, {r.name: r.state_name for r in runs.values()}
                time.sleep(0.5)
            tasks = [t for t in client.read_task_runs() if t.name == f"fw-{flaky_id}-flaky"]
            by_deployment = {
                d.id: d.name
                for d in client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
            }
        flow_runs = sorted(runs.values(), key=lambda r: r.created)  # type: ignore[arg-type,return-value]
        summary = [(by_deployment.get(r.deployment_id), r.state_name) for r in flow_runs]
        assert summary == [
            ("run-workflow", "Fizzled"),
            ("rerun-fws", "Completed"),
            ("run-workflow", "Completed"),
        ], summary
        assert flow_runs[0].id == first.id  # type: ignore[union-attr]
        assert flow_runs[1].parameters["fw_ids"] == [flaky_id]
        assert flow_runs[2].parameters == {"wf_id": flaky_id}
        # who and why: the rerun records the flow run, its deployment and the automation
        (entry,) = lp.get_fw_dict_by_id(flaky_id)["rerun_history"]
        assert entry["actor"]["flow_run_id"] == str(flow_runs[1].id)
        assert entry["actor"]["deployment"] == "rerun-fws"
        assert entry["actor"]["automation"] == flow_runs[1].created_by.display_value
        assert flow_runs[1].created_by.type == "AUTOMATION"
        assert entry["command"].startswith("rerun-fws {")
        assert sorted(t.state_name for t in tasks) == ["Completed", "Fizzled"]
        assert {str(t.flow_run_id) for t in tasks} == {str(flow_runs[0].id), str(flow_runs[2].id)}
    print(f"healed without help in {healed_after:.1f} s")


def test_pool_deployment_runs_on_a_prefect_worker(
    prefect_server: dict[str, str], lp: Any, tmp_path: Path
) -> None:
    """`lpad deploy --pool` + `prefect worker start`: a worker runs the workflow's flow run."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_fireworks import Workflow

    env = {
        **prefect_server,
        **{k: v for k, v in os.environ.items() if k.startswith("PREFECT_INTEGRATIONS_FIREWORKS")},
        "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(tmp_path / "launches"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    (tmp_path / "launches").mkdir()
    first = Firework([ScriptTask(script="echo one > one.txt")], name="one")
    second = Firework([ScriptTask(script="echo two > two.txt")], name="two", parents=[first])
    ids = lp.add_wf(Workflow([first, second], name="on a worker"))
    wf_id = min(ids.values())

    bin_dir = Path(sys.executable).parent
    deploy = subprocess.run(
        [str(bin_dir / "lpad"), "deploy", "--pool", "fw-e2e-pool", "--lostruns-cron", ""],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(bin_dir / "prefect"), "worker", "start", "--pool", "fw-e2e-pool"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            run = run_deployment(
                "run-workflow/run-workflow", parameters={"wf_id": wf_id}, timeout=0
            )
            deadline = time.monotonic() + 150
            with get_client(sync_client=True) as client:
                while True:
                    state = client.read_flow_run(run.id).state  # type: ignore[union-attr]
                    if state is not None and state.is_final():
                        break
                    assert time.monotonic() < deadline, log.read_text()[-4000:]
                    time.sleep(1)
        assert state.is_completed(), (state, log.read_text()[-4000:])
        assert lp.workflows.find_one({"nodes": wf_id})["state"] == st.COMPLETED
        for fw_id in ids.values():
            (launch,) = lp.launches.find({"fw_id": fw_id})
            assert launch["state"] == st.COMPLETED
            assert launch["prefect"]["flow_run_id"] == str(run.id)  # type: ignore[union-attr]
            assert launch["launch_dir"].startswith(str(tmp_path / "launches"))
    finally:
        _stop(worker)
