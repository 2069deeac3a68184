"""``lpad rerun_fws`` and friends, in-process against the real server."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fwhelpers import ZEUS, ZEUS_CHILDREN, fw_states_consistent, run_all, run_fw, states

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

TODAY = date.today().strftime("%Y-%m-%d")


@pytest.fixture
def gods(gods):
    """The Greek-gods DAG (conftest), every Firework run once."""
    run_all(gods)
    return gods


def _snapshot(lp):
    return (
        list(lp.fireworks.find({}, {"_id": 0}).sort("fw_id", 1)),
        list(lp.workflows.find({}, {"_id": 0})),
    )


def test_help_documents_everything(run_cli):
    out = run_cli(["rerun_fws", "-h"]).stdout
    for text in (
        "archived_launches",
        "WARNING",
        "dynamic actions",
        "--task-level",
        "--launch_id",
        "--copy-data",
        "--previous-dir",
        "--clear-recovery",
        "--dry-run",
        "--password",
        "_stacktrace",
        "-lm",
        "FIZZLED",
    ):
        assert text in out, text


def test_rerun_by_id_prints_summary(gods, run_cli):
    res = run_cli(["rerun_fws", "-i", str(ZEUS)])
    assert "Reran 1 Firework(s)" in res.stdout
    assert "6 Firework(s) reset, 6 launch(es) archived." in res.stdout
    s = states(gods)
    assert s[ZEUS] == st.READY and {s[i] for i in ZEUS_CHILDREN} == {st.WAITING}
    fw_states_consistent(gods)


def test_rerun_json_and_comma_list(gods, run_cli):
    res = run_cli(["rerun_fws", "-i", "3,4", "--json"])
    data = json.loads(res.stdout)
    assert data["rerun"] == [3, 4] and data["dry_run"] is False
    assert {e["fw_id"] for e in data["entries"]} == {3, 4, 9}


def test_dry_run_writes_nothing(gods, run_cli):
    before = _snapshot(gods)
    res = run_cli(["rerun_fws", "-i", "1", "--dry-run"])
    assert "Would rerun 1 Firework(s)" in res.stdout
    assert "Dry run: nothing was written" in res.stdout
    data = json.loads(run_cli(["rerun_fws", "-i", "1", "--dry-run", "--json"]).stdout)
    assert data["dry_run"] is True
    assert {(e["state_before"], e["state_after"]) for e in data["entries"] if e["fw_id"] != 1} == {
        (st.COMPLETED, st.WAITING)
    }
    assert _snapshot(gods) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "2,999"], "FW with id: 999 not found!"),
        (["-i", "2", "-s", "FIZZLED"], "Cannot specify both fw_id and name/state/query"),
        (["-i", "2", "--task-level", "-lid", "1,2"], "Specify the same number of tasks"),
        (["-i", "2", "--task-level", "-cp", "-pd"], "mutually exclusive"),
        (["-i", "5", "--task-level", "-lid", "999"], "launch_id: 999 is no launch of fw_id: 5"),
        (["-q", '{"$where": "1"}'], "$where is not allowed"),
        (["-q", '{"name": {"$regex": "("}}'], "invalid regex"),
        (["-s", "BROKEN"], "unknown state"),
        (["-s", "COMPLETED", "--password", "2001-01-01"], "requires setting the --password"),
        (["-s", "COMPLETED"], "requires setting the --password"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(gods, run_cli, args, message):
    before = _snapshot(gods)
    res = run_cli(["rerun_fws", *args], code=2)
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert _snapshot(gods) == before


def test_task_level_errors(lp, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}] * 2)]))
    res = run_cli(["rerun_fws", "-i", "1", "--task-level"], code=2)
    assert "FW with id: 1 has no active launches" in res.stderr
    run_fw(lp, 1)
    res = run_cli(["rerun_fws", "-i", "1", "--task-level"], code=2)
    assert "No recovery info found in launch 1" in res.stderr


def test_task_level_cli(lp, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}] * 3)]))
    run_fw(lp, 1, fail_at=1)
    res = run_cli(["rerun_fws", "-i", "1", "--task-level", "-lid", "1", "-pd"])
    assert "restarts at Firetask 1 from launch 1 (mode: prev_dir)" in res.stdout
    spec = lp.fireworks.find_one({"fw_id": 1})["spec"]
    assert spec["_recovery"]["_mode"] == "prev_dir" and spec["_launch_dir"]
    run_cli(["rerun_fws", "-i", "1", "--clear-recovery"])
    spec = lp.fireworks.find_one({"fw_id": 1})["spec"]
    assert "_recovery" not in spec and "_launch_dir" not in spec


def test_rerun_by_stacktrace_lm(lp, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for n in ("a", "b"):
        lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name=n)]))
    run_fw(lp, 1, fail_at=0)
    run_fw(lp, 2, fail_at=0)
    lp.launches.update_one(
        {"launch_id": 2}, {"$set": {"action.stored_data._exception._stacktrace": "other"}}
    )
    q = '{"action.stored_data._exception._stacktrace": {"$regex": "My custom error message"}}'
    assert json.loads(run_cli(["get_fws", "-q", q, "-lm", "-d", "ids"]).stdout) == 1
    run_cli(["rerun_fws", "-q", q, "-lm"])
    assert states(lp) == {1: st.READY, 2: st.FIZZLED}


def test_mass_password_gate(gods, run_cli, monkeypatch):
    before = _snapshot(gods)
    # On a terminal the user is asked; "n" aborts, nothing written. Only the terminal check is
    # replaced: lpad's own prompt reads the answers from the CliRunner's input.
    import prefect_fireworks.cli.common as cli_common

    monkeypatch.setattr(cli_common, "interactive", lambda: True)
    res = run_cli(["rerun_fws", "-s", "COMPLETED"], code=2, input="n\n")
    assert "Are you sure? This will modify 14 entries. (Y/N)" in res.stdout
    assert "Operation aborted by user." in res.stderr
    assert _snapshot(gods) == before
    res = run_cli(["rerun_fws", "-s", "COMPLETED"], input="Y\n")
    assert states(gods)[1] == st.READY
    run_all(gods)
    run_cli(["rerun_fws", "-s", "COMPLETED", "--password", TODAY])
    assert states(gods)[6] == st.READY
    fw_states_consistent(gods)


def test_defuse_reignite_pause_resume(gods, run_cli):
    lp = gods
    run_cli(["defuse_fws", "-i", str(ZEUS)])
    s = states(lp)
    assert s[ZEUS] == st.DEFUSED and {s[i] for i in ZEUS_CHILDREN} == {st.WAITING}
    run_cli(["reignite_fws", "-i", str(ZEUS)])
    assert states(lp)[ZEUS] == st.READY
    res = run_cli(["pause_fws", "-i", f"{ZEUS},3", "--json"])
    data = json.loads(res.stdout)
    assert [c["fw_id"] for c in data["changes"]] == [ZEUS]
    assert data["skipped"][0]["fw_id"] == 3
    run_cli(["resume_fws", "-i", str(ZEUS)])
    assert states(lp)[ZEUS] == st.READY
    fw_states_consistent(lp)


def test_workflow_commands(gods, run_cli, tmp_path):
    lp = gods
    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name="solo")]))
    run_cli(["defuse_wflows", "-i", "15"])
    assert states(lp)[15] == st.DEFUSED  # really defuses (FireWorks 2.1.4 paused)
    run_cli(["reignite_wflows", "-i", "15"])
    assert states(lp)[15] == st.READY
    run_cli(["pause_wflows", "-n", "solo"])
    assert states(lp)[15] == st.PAUSED
    run_cli(["archive_wflows", "-i", "1", "--password", TODAY])
    assert set(states(lp, range(1, 15)).values()) == {st.ARCHIVED}
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.ARCHIVED
    run_cli(["rerun_fws", "-i", "1"])
    assert states(lp, [1])[1] == st.ARCHIVED
    ldir = lp.get_launch_by_id(1).launch_dir
    res = run_cli(["delete_wflows", "-i", "1", "--ldirs", "--dry-run"])
    assert "Would delete 1 workflow(s): 14 Firework(s), 14 launch(es)" in res.stdout
    run_cli(["delete_wflows", "-i", "1", "--ldirs"])
    assert lp.fireworks.count_documents({}) == 1 and lp.launches.count_documents({}) == 0
    assert lp.workflows.count_documents({}) == 1
    import os

    assert ldir and not os.path.exists(ldir)


def test_detect_lostruns_and_admin(lp, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from fwhelpers import start_fw

    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}])]))
    start_fw(lp, 1)
    lp.launches.update_one(
        {"launch_id": 1}, {"$set": {"state_history.0.updated_on": "2001-01-01T00:00:00+00:00"}}
    )
    res = run_cli(["detect_lostruns", "--json"])
    assert json.loads(res.stdout)["lost_fw_ids"] == [1]
    res = run_cli(["detect_lostruns", "--rerun"])
    assert "Detected 1 lost FWs: [1]" in res.stdout
    assert states(lp) == {1: st.READY}
    assert lp.launches.find_one({"launch_id": 1})["state"] == st.FIZZLED
    run_cli(["detect_lostruns", "--time", "-1"], code=2)
    lp.workflows.update_one({"nodes": 1}, {"$set": {"locked": True}})
    assert "1 were locked" in run_cli(["admin", "unlock", "-i", "1"]).stdout
    assert "locked" not in lp.workflows.find_one({"nodes": 1})
    # refresh: a Firework and its workflow cache left WAITING although the root can run
    lp.fireworks.update_one({"fw_id": 1}, {"$set": {"state": st.WAITING}})
    lp.workflows.update_one({"nodes": 1}, {"$set": {"fw_states.1": st.WAITING}})
    run_cli(["admin", "refresh", "-i", "1"])
    assert lp.fireworks.find_one({"fw_id": 1})["state"] == st.READY
    wf = lp.workflows.find_one({"nodes": 1})
    assert (wf["fw_states"]["1"], wf["state"]) == (st.READY, st.READY)
    # tuneup: the indexes come back after being dropped
    lp.fireworks.drop_indexes()
    lp.launches.drop_indexes()
    run_cli(["admin", "tuneup"])
    fw_idx = lp.fireworks.index_information()
    assert fw_idx["fw_id_1"].get("unique") is True
    assert {"state_1", "launches_1", "archived_launches_1"} <= set(fw_idx)
    assert lp.launches.index_information()["launch_id_1"].get("unique") is True
    run_cli(["admin", "unlock", "-i", "99"], code=2)
