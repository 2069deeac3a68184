"""``lpad rapidfire``, ``lpad run_workflow`` and ``rlaunch``; concurrent rapidfire processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fwtest_funcs import ActionTask, FailTask
from typer.testing import CliRunner

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _chain(lp, fail_middle: bool = False) -> None:
    a = Firework([ActionTask()], name="a")
    b = Firework([FailTask() if fail_middle else ActionTask()], name="b", parents=[a])
    c = Firework([ActionTask()], name="c", parents=[b])
    lp.add_wf(Workflow([a, b, c], name="chain"))


def test_run_workflow_reports_a_fizzle_and_get_fws_shows_it(lp, run_cli, tmp_path):
    _chain(lp, fail_middle=True)
    res = run_cli(["run_workflow", "1", "--json", "--launch-root", str(tmp_path)], code=1)
    out = json.loads(res.stdout)
    assert out["flow_state"] == "Fizzled" and out["state"] == st.FIZZLED
    assert out["fizzled"] == [2] and out["completed"] == [1]
    res = run_cli(["get_fws", "-s", "FIZZLED", "-d", "ids"])
    assert json.loads(res.stdout) == 2


def test_run_workflow_of_a_missing_workflow_is_bad_input(lp, run_cli):
    res = run_cli(["run_workflow", "42"], code=2)
    assert "FW with id: 42 not found!" in res.stderr


def test_lpad_rapidfire_runs_everything(lp, run_cli, tmp_path):
    _chain(lp)
    _chain(lp)
    res = run_cli(["rapidfire", "--json", "--sleep", "0", "--launch-root", str(tmp_path)])
    out = json.loads(res.stdout)
    assert out["flow_state"] == "Completed" and out["launches"] == 6
    assert lp.workflows.count_documents({"state": st.COMPLETED}) == 2


def test_lpad_rapidfire_limits_to_one_workflow_and_nlaunches(lp, run_cli, tmp_path):
    _chain(lp)
    _chain(lp)
    res = run_cli(
        [
            "rapidfire",
            "--wf-id",
            "5",
            "--nlaunches",
            "2",
            "--json",
            "--sleep",
            "0",
            "--launch-root",
            str(tmp_path),
        ]
    )
    assert json.loads(res.stdout)["completed"] == [4, 5]
    assert lp.fireworks.count_documents({"state": st.COMPLETED}) == 2


def test_rlaunch_singleshot_and_rapidfire(lp, tmp_path, monkeypatch):
    from prefect_fireworks.cli.rlaunch import app

    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT", str(tmp_path))
    lp.add_wf(Firework([ActionTask()], name="x"))
    lp.add_wf(Firework([ActionTask()], name="y"))
    lp.add_wf(Firework([ActionTask()], name="z"))
    runner = CliRunner()
    res = runner.invoke(app, ["singleshot", "-f", "2", "--no-prefect", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"launches": 1, "completed": [2], "fizzled": []}
    res = runner.invoke(app, ["singleshot", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["completed"] == [1]
    res = runner.invoke(app, ["rapidfire", "--json", "--sleep", "0"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["completed"] == [3]
    assert [d["state"] for d in lp.fireworks.find({}).sort("fw_id", 1)] == [st.COMPLETED] * 3
    assert all(Path(d["launch_dir"]).parent == tmp_path for d in lp.launches.find({}))


def test_four_rapidfire_processes_never_run_a_firework_twice(lp, tmp_path):
    from prefect.settings import PREFECT_API_URL

    n = 200
    lp.bulk_add_wfs(
        [
            Firework([{"_fw_name": "PyTask", "func": "abs", "args": [i]}], name=f"t{i}")
            for i in range(n)
        ]
    )
    lpad = str(Path(sys.executable).parent / "lpad")
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(tmp_path),
    }
    procs = [
        subprocess.Popen(
            [lpad, "rapidfire", "--json", "--sleep", "0", "--fworker-name", f"w{k}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=500)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out))
    assert sum(o["launches"] for o in outs) == n
    done = [i for o in outs for i in o["completed"]]
    assert sorted(done) == list(range(1, n + 1))
    assert lp.launches.count_documents({}) == n
    for fw in lp.fireworks.find({}, {"launches": 1, "state": 1}):
        assert fw["state"] == st.COMPLETED and len(fw["launches"]) == 1
    per_fw = lp.launches.aggregate([{"$group": {"_id": "$fw_id", "n": {"$sum": 1}}}])
    assert all(d["n"] == 1 for d in per_fw)
    assert lp.launches.count_documents({"state": st.COMPLETED}) == n


def test_json_output_stays_parseable_when_firetasks_print(lp, tmp_path, prefect_harness):
    """A ScriptTask's output goes to stderr under --json, so stdout is exactly the JSON."""
    from prefect.settings import PREFECT_API_URL

    from prefect_fireworks.core.models import Firework, Workflow

    noisy = Firework([{"_fw_name": "ScriptTask", "script": "echo chatty-firetask"}], name="n")
    lp.add_wf(Workflow([noisy]))
    lpad = str(Path(sys.executable).parent / "lpad")
    proc = subprocess.run(
        [lpad, "rapidfire", "--json", "--sleep", "0", "--launch-root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["completed"] == [1]
    assert "chatty-firetask" in proc.stderr


def test_bad_launch_root_is_one_line_before_any_flow_run(lp, run_cli, tmp_path):
    from prefect_fireworks.core.models import Firework, Workflow

    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="x")]))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the launch root should be")
    for cmd in (["rapidfire", "--sleep", "0"], ["run_workflow", "1"]):
        res = run_cli([*cmd, "--launch-root", str(blocker / "sub")], code=2)
        assert res.stderr.strip().splitlines() == [
            f"Error: cannot create launch root {blocker / 'sub'}: Not a directory"
        ]
    assert lp.fireworks.find_one({"fw_id": 1})["state"] == "READY"  # nothing was claimed
