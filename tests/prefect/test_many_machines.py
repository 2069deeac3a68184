"""Many machines: two Prefect workers that share nothing but the LaunchPad and the Prefect API.

A real `prefect server start`; one process work pool (`lpad deploy --pool`); two
`prefect worker start` processes, each with its own PREFECT_HOME, its own
PREFECT_INTEGRATIONS_FIREWORKS_HOME and its own launch root, as on two hosts, both on the
session's MongoDB-wire server (authenticated). An 80-Firework fan-out runs as two `run-workflow`
flow runs, one per worker; ten of the Fireworks fizzle once and are rerun task-level with
``--copy-data``: every Firework runs once per launch, every launch directory is on the root of
the worker that ran it, and the rerun copies the old directory from whichever root it was on.

Also: `run_workflow` on a DaskTaskRunner pointed at an existing Dask scheduler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from processes import stop_process_group as _stop

from prefect_fireworks import Firework, ScriptTask, Workflow
from prefect_fireworks.core import states as st

N_FAN = 80
N_FLAKY = 10
BIN = Path(sys.executable).parent


def _wait(what: str, check: Any, timeout: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s\n{tail}"
        time.sleep(0.5)


def _host_env(base: Path, name: str, api: str, mongo_uri: str, database: str) -> dict[str, str]:
    """The environment of one "host": nothing shared but the API and the MongoDB URI."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "PREFECT_INTEGRATIONS_FIREWORKS_"))
    }
    (base / name / "launches").mkdir(parents=True)
    env.update(
        {
            "PREFECT_HOME": str(base / name / "prefect-home"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_INTEGRATIONS_FIREWORKS_HOME": str(base / name / "fireworks-home"),
            "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI": mongo_uri,
            "PREFECT_INTEGRATIONS_FIREWORKS_DATABASE": database,
            "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(base / name / "launches"),
        }
    )
    return env


def _fan_out(tmp_path: Path) -> Workflow:
    gate = tmp_path / "gate"
    fixed = tmp_path / "fixed"
    root = Firework([ScriptTask(script=f"while [ ! -e {gate} ]; do sleep 0.2; done")], name="gate")
    kids = []
    for i in range(N_FAN):
        tasks = [ScriptTask(script=f"echo {i} > data.txt")]
        if i < N_FLAKY:  # fails until `fixed` exists; the rerun must find data.txt copied
            tasks.append(ScriptTask(script=f"test -e {fixed} || (echo not fixed >&2; exit 3)"))
            tasks.append(ScriptTask(script="cp data.txt copied.txt"))
        kids.append(Firework(tasks, name=f"k{i:03d}", parents=[root]))
    return Workflow([root, *kids], name="fan-out")


@pytest.mark.server
def test_two_workers_one_launchpad_fan_out_and_task_level_rerun(
    prefect_api: str, lp: Any, mongo_uri: str, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if "@" in mongo_uri:  # the embedded server requires SCRAM authentication
        import pymongo

        bare = "mongodb://" + mongo_uri.split("@", 1)[1]
        with (
            pytest.raises(pymongo.errors.OperationFailure),
            pymongo.MongoClient(bare, serverSelectionTimeoutMS=5000) as anon,
        ):
            anon[lp.name].fireworks.find_one({})

    ids = lp.add_wf(_fan_out(tmp_path))
    wf_id = min(ids.values())
    hosts = {n: _host_env(tmp_path, n, prefect_api, mongo_uri, lp.name) for n in ("a", "b")}
    roots = {n: Path(env["PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT"]) for n, env in hosts.items()}
    pool = "many-machines"

    t0 = time.monotonic()
    deploy = subprocess.run(
        [str(BIN / "lpad"), "deploy", "--pool", pool, "--lostruns-cron", ""],
        env=hosts["a"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    workers: dict[str, subprocess.Popen[bytes]] = {}
    logs = {n: tmp_path / n / "worker.log" for n in hosts}
    try:
        for name, env in hosts.items():
            with open(logs[name], "wb") as out:
                # --limit 1: a worker runs one flow run at a time, so the two runs of the
                # fan-out go to the two workers.
                workers[name] = subprocess.Popen(
                    [
                        str(BIN / "prefect"),
                        "worker",
                        "start",
                        "--pool",
                        pool,
                        "--limit",
                        "1",
                        "--name",
                        f"worker-{name}",
                    ],
                    env=env,
                    cwd=tmp_path / name,  # the flow runs still get Prefect's temporary folders
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        with temporary_settings({PREFECT_API_URL: prefect_api}):
            with get_client(sync_client=True) as client:
                _wait(
                    "both workers polling",
                    lambda: len(client.read_workers_for_work_pool(pool)) == 2,
                    120,
                    logs["b"],
                )
            t_workers = time.monotonic()
            runs = [
                run_deployment("run-workflow/run-workflow", parameters={"wf_id": wf_id}, timeout=0)
                for _ in hosts
            ]
            run_ids = {str(r.id) for r in runs}  # type: ignore[union-attr]

            def both_running() -> bool:
                with get_client(sync_client=True) as client:
                    states = [client.read_flow_run(r.id).state for r in runs]  # type: ignore[union-attr]
                return all(s is not None and s.is_running() for s in states)

            _wait("both flow runs running", both_running, 120, logs["b"])
            (tmp_path / "gate").touch()  # now both runs race for the 80 Fireworks

            def all_final() -> bool:
                with get_client(sync_client=True) as client:
                    states = [client.read_flow_run(r.id).state for r in runs]  # type: ignore[union-attr]
                return all(s is not None and s.is_final() for s in states)

            _wait("fan-out flow runs final", all_final, 900, logs["a"])
            t_fan = time.monotonic() - t_workers

            wf = lp.workflows.find_one({"nodes": wf_id})
            states = list(wf["fw_states"].values())
            assert states.count(st.COMPLETED) == N_FAN + 1 - N_FLAKY, wf["state"]
            assert states.count(st.FIZZLED) == N_FLAKY
            launches = list(lp.launches.find({}, {"_id": 0}))
            assert len(launches) == N_FAN + 1  # every Firework once
            assert sorted(x["fw_id"] for x in launches) == sorted(ids.values())
            used = _check_roots(launches, roots, run_ids)
            assert used == {"a", "b"}, "both workers ran Fireworks"

            # Part of it again: the ten fizzled ones, task-level, copying their old directory.
            flaky_ids = sorted(lp.get_fw_ids({"state": st.FIZZLED}))
            old_dirs = {x["fw_id"]: x["launch_dir"] for x in launches if x["fw_id"] in flaky_ids}
            (tmp_path / "fixed").touch()
            t1 = time.monotonic()
            rerun = subprocess.run(
                [
                    str(BIN / "lpad"),
                    "rerun_fws",
                    "-s",
                    "FIZZLED",
                    "--task-level",
                    "--copy-data",
                    "--password",
                    time.strftime("%Y-%m-%d"),
                ],
                env=hosts["b"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr
            again = [
                run_deployment("run-workflow/run-workflow", parameters={"wf_id": wf_id}, timeout=0)
                for _ in hosts
            ]
            runs = again
            _wait("rerun flow runs final", all_final, 600, logs["a"])
            t_rerun = time.monotonic() - t1

        assert lp.workflows.find_one({"nodes": wf_id})["state"] == st.COMPLETED
        new = list(lp.launches.find({"fw_id": {"$in": flaky_ids}, "state": st.COMPLETED}))
        assert len(new) == N_FLAKY  # each rerun Firework ran once more, and only once
        _check_roots(new, roots, {str(r.id) for r in again})  # type: ignore[union-attr]
        for launch in new:
            new_dir = Path(launch["launch_dir"])
            assert str(new_dir) != old_dirs[launch["fw_id"]]
            assert Path(old_dirs[launch["fw_id"]]).is_dir()  # the old one is kept
            assert (new_dir / "copied.txt").read_text() == (new_dir / "data.txt").read_text()
        for fw_id in flaky_ids:
            fw = lp.get_fw_dict_by_id(fw_id)
            assert len(fw["archived_launches"]) == 1 and len(fw["launches"]) == 1
        print(
            f"\ndeploy+workers {t_workers - t0:.1f} s; fan-out of {N_FAN + 1} on two workers "
            f"{t_fan:.1f} s; task-level rerun of {N_FLAKY} (lpad + flow runs) {t_rerun:.1f} s"
        )
    finally:
        for proc in workers.values():
            _stop(proc)


def _check_roots(
    launches: list[dict[str, Any]], roots: dict[str, Path], run_ids: set[str]
) -> set[str]:
    """Each launch's directory exists on the root of the worker whose flow run made it."""
    root_of_run: dict[str, str] = {}
    for launch in launches:
        launch_dir = Path(launch["launch_dir"])
        assert launch_dir.is_dir(), launch_dir
        (host,) = [n for n, r in roots.items() if launch_dir.parent == r]
        run = launch["prefect"]["flow_run_id"]
        assert run in run_ids
        assert root_of_run.setdefault(run, host) == host  # one flow run, one worker, one root
    return set(root_of_run.values())


def test_run_workflow_on_an_existing_dask_cluster(
    lp: Any, tmp_path: Path, prefect_harness: Any
) -> None:
    from distributed import Client, LocalCluster
    from prefect_dask import DaskTaskRunner

    from prefect_fireworks.prefect.flows import run_workflow

    root = Firework([ScriptTask(script="true")], name="root")
    kids = [
        Firework([ScriptTask(script="echo $PPID > ppid")], name=f"k{i}", parents=[root])
        for i in range(4)
    ]
    wf_id = min(lp.add_wf(Workflow([root, *kids], name="on a cluster")).values())
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        worker_pids = set(client.run(os.getpid).values())
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        state = run_workflow.with_options(task_runner=runner)(
            wf_id, launch_root=str(tmp_path), return_state=True
        )
        assert state.is_completed(), state.message
    launches = list(lp.launches.find({"fw_id": {"$ne": wf_id}}))
    assert len(launches) == 4
    assert all(x["state"] == st.COMPLETED for x in launches)
    ran_in = {int(Path(x["launch_dir"], "ppid").read_text()) for x in launches}
    # Every Firework ran in one of the cluster's worker processes, none in this process.
    assert ran_in <= worker_pids and os.getpid() not in ran_in, (ran_in, worker_pids)
