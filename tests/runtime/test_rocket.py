"""The Rocket on the real server: launch documents, checkpoints, FWAction merging, recovery."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from fwtest_funcs import ActionTask, BumpTask, FailTask, SleepTask

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.rocket import (
    LAUNCHER_PREFIX,
    Rocket,
    checkout,
    resolve_launch_root,
    run_one,
)
from prefect_fireworks.store.launchpad import FWorker


def _run_all(lp, root, **kw):
    results = []
    while (r := run_one(lp, FWorker(), launch_root=root, **kw)) is not None:
        results.append(r)
    return results


def test_two_tasks_complete_with_the_fireworks_launch_document(lp, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    a = Firework(
        [BumpTask(dir=str(shared), tag="t0"), BumpTask(dir=str(shared), tag="t1")],
        name="a",
        spec={"x": 1},
    )
    b = Firework([ActionTask(see=["seen_t0", "seen_t1"])], name="b", parents=[a])
    lp.add_wf(Workflow([a, b], name="pair"))

    cwd = os.getcwd()
    results = _run_all(lp, tmp_path / "runs")
    assert os.getcwd() == cwd
    assert [(r.fw_id, r.state, r.fw_state) for r in results] == [
        (1, st.COMPLETED, st.COMPLETED),
        (2, st.COMPLETED, st.COMPLETED),
    ]

    launch = lp.launches.find_one({"fw_id": 1}, {"_id": 0})
    assert launch["state"] == st.COMPLETED
    assert [h["state"] for h in launch["state_history"]] == [st.RUNNING, st.COMPLETED]
    # The last checkpoint before the end names task 1 and carries task 0's outputs.
    cp = launch["state_history"][0]["checkpoint"]
    assert cp == {
        "_task_n": 1,
        "_all_stored_data": {"t0": True},
        "_all_update_spec": {"seen_t0": 1},
        "_all_mod_spec": [],
    }
    assert "checkpoint" not in launch["state_history"][1]
    assert launch["time_start"] == launch["state_history"][0]["created_on"]
    assert launch["time_end"] == launch["state_history"][1]["created_on"]
    assert launch["runtime_secs"] >= 0
    assert launch["host"] and launch["ip"]
    assert launch["fworker"]["name"] == "Automatically generated Worker"
    assert launch["action"]["stored_data"] == {"t0": True, "t1": True}
    assert launch["action"]["update_spec"] == {"seen_t0": 1, "seen_t1": 1}
    ldir = Path(launch["launch_dir"])
    assert ldir.parent == tmp_path / "runs" and ldir.name.startswith(LAUNCHER_PREFIX)
    assert (ldir / "t0.out").exists() and (ldir / "t1.out").exists()
    assert (shared / "bumps.txt").read_text() == "t0\nt1\n"

    # The child saw the parent's update_spec in its spec.
    child = lp.launches.find_one({"fw_id": 2})
    assert child["action"]["stored_data"] == {"saw_seen_t0": 1, "saw_seen_t1": 1}
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.COMPLETED
    assert lp.fireworks.find_one({"fw_id": 1})["launches"] == [launch["launch_id"]]


def test_actions_merge_and_later_tasks_see_the_updated_spec(lp, tmp_path):
    fw = Firework(
        [
            ActionTask(
                action={
                    "update_spec": {"a": 1},
                    "mod_spec": [{"_push": {"lst": "x"}}],
                    "stored_data": {"first": 1},
                }
            ),
            ActionTask(
                action={"update_spec": {"b": 2}, "mod_spec": [{"_push": {"lst": "y"}}]},
                see=["a", "lst"],
            ),
        ],
        name="merge",
        spec={"lst": []},
    )
    child = Firework([ActionTask(see=["a", "b", "lst"])], name="child", parents=[fw])
    lp.add_wf(Workflow([fw, child]))
    _run_all(lp, tmp_path)
    action = lp.launches.find_one({"fw_id": 1})["action"]
    assert action["stored_data"] == {"first": 1, "saw_a": 1, "saw_lst": ["x"]}
    assert action["update_spec"] == {"a": 1, "b": 2}
    assert action["mod_spec"] == [{"_push": {"lst": "x"}}, {"_push": {"lst": "y"}}]
    spec = lp.fireworks.find_one({"fw_id": 2})["spec"]
    assert spec["a"] == 1 and spec["b"] == 2 and spec["lst"] == ["x", "y"]
    # The spec stored in the database is never changed by the running Firework itself.
    assert lp.fireworks.find_one({"fw_id": 1})["spec"]["lst"] == []


def test_exit_skips_the_remaining_tasks(lp, tmp_path):
    shared = tmp_path / "s"
    shared.mkdir()
    fw = Firework(
        [ActionTask(action={"exit": True}), BumpTask(dir=str(shared), tag="never")], name="x"
    )
    lp.add_wf(fw)
    (r,) = _run_all(lp, tmp_path / "runs")
    assert r.state == st.COMPLETED
    assert not (shared / "bumps.txt").exists()
    assert lp.launches.find_one({"fw_id": 1})["action"]["exit"] is True


def test_a_failing_task_fizzles_with_stack_trace_and_checkpoint(lp, tmp_path):
    shared = tmp_path / "s"
    shared.mkdir()
    a = Firework(
        [BumpTask(dir=str(shared), tag="ok"), FailTask(), BumpTask(dir=str(shared), tag="no")],
        name="fails",
    )
    b = Firework([ActionTask()], name="after", parents=[a])
    lp.add_wf(Workflow([a, b], name="failing"))
    results = _run_all(lp, tmp_path / "runs")
    assert len(results) == 1
    r = results[0]
    assert r.state == st.FIZZLED and r.fw_state == st.FIZZLED
    assert "RunTestError: boom in FailTask" in r.message

    launch = lp.launches.find_one({"fw_id": 1})
    assert [h["state"] for h in launch["state_history"]] == [st.RUNNING, st.FIZZLED]
    assert launch["state_history"][-1]["checkpoint"]["_task_n"] == 1
    assert launch["state_history"][-1]["checkpoint"]["_all_stored_data"] == {"ok": True}
    sd = launch["action"]["stored_data"]
    assert sd["_message"] == "runtime error during task"
    assert sd["_task"] == {"_fw_name": "FailTask"}
    assert "boom in FailTask" in sd["_exception"]["_stacktrace"]
    assert "Traceback" in sd["_exception"]["_stacktrace"]
    assert sd["_exception"]["_details"] == {"error": "description", "args": ["boom in FailTask"]}
    assert launch["action"]["exit"] is True
    assert launch["time_end"] == launch["state_history"][-1]["created_on"]
    assert (shared / "bumps.txt").read_text() == "ok\n"
    assert lp.fireworks.find_one({"fw_id": 2})["state"] == st.WAITING
    wf = lp.workflows.find_one({"nodes": 1})
    assert wf["state"] == st.FIZZLED and wf["fw_states"] == {"1": "FIZZLED", "2": "WAITING"}
    # FireWorks' documented query finds it.
    ids = lp.get_fw_ids(
        {"action.stored_data._exception._stacktrace": {"$regex": "boom"}}, launches_mode=True
    )
    assert ids == [1]


def test_unimportable_pytask_fizzles_with_a_clear_message(lp, tmp_path):
    lp.add_wf(Firework([{"_fw_name": "PyTask", "func": "no_such_module.f"}], name="bad"))
    (r,) = _run_all(lp, tmp_path)
    assert r.state == st.FIZZLED
    assert "cannot import function 'no_such_module.f'" in r.message


def test_undeserialisable_firework_fizzles_at_checkout(lp, tmp_path):
    lp.add_wf(Firework([ActionTask()], name="ok"))
    # Written behind the store's back, as an old database could hold it.
    lp.fireworks.update_one({"fw_id": 1}, {"$set": {"spec._tasks": [{"_fw_name": "Nope"}]}})
    assert run_one(lp, FWorker(), launch_root=tmp_path) is None
    fw = lp.fireworks.find_one({"fw_id": 1})
    assert fw["state"] == st.FIZZLED and fw["launches"] == []
    assert fw["spec"]["_exception_details"]["_message"] == "FireWork failed to deserialize"
    assert not list(tmp_path.iterdir())


def test_fwaction_file_written_by_a_script(lp, tmp_path):
    script = """echo '{"update_spec": {"from_file": 7}, "stored_data": {"f": 1}}' > FWAction.json"""
    a = Firework([{"_fw_name": "ScriptTask", "script": script}], name="writes")
    b = Firework([ActionTask(see=["from_file"])], name="reads", parents=[a])
    lp.add_wf(Workflow([a, b]))
    _run_all(lp, tmp_path)
    assert lp.launches.find_one({"fw_id": 1})["action"]["stored_data"] == {"f": 1}
    assert lp.launches.find_one({"fw_id": 2})["action"]["stored_data"] == {"saw_from_file": 7}


def test_launch_dir_from_spec_and_trackers(lp, tmp_path):
    target = tmp_path / "fixed" / "here"
    fw = Firework(
        [{"_fw_name": "ScriptTask", "script": "printf 'l1\\nl2\\nl3\\n' > out.txt"}],
        name="tracked",
        spec={"_launch_dir": str(target), "_trackers": [{"filename": "out.txt", "nlines": 2}]},
    )
    lp.add_wf(fw)
    (r,) = _run_all(lp, tmp_path / "runs")
    assert r.launch_dir == str(target)
    launch = lp.launches.find_one({"fw_id": 1})
    assert launch["launch_dir"] == str(target)
    assert (target / "out.txt").exists()
    assert launch["trackers"] == [
        {"filename": "out.txt", "nlines": 2, "allow_zipped": False, "content": "l2\nl3"}
    ]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_heartbeat_refreshes_updated_on_while_running(lp, tmp_path):
    lp.add_wf(Firework([SleepTask(seconds=1.2)], name="slow"))
    fw_doc, lid = checkout(lp, FWorker(), launch_root=tmp_path)
    seen: set[str] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            doc = lp.launches.find_one({"launch_id": lid}, {"state_history": 1})
            if doc["state_history"][-1]["state"] == st.RUNNING:
                seen.add(doc["state_history"][-1]["updated_on"])
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    try:
        r = Rocket(lp, fw_doc, lid, ping_secs=0.2).run()
    finally:
        done.set()
        t.join()
    assert r.state == st.COMPLETED
    # created_on stamp, the checkpoint ping, then several heartbeats.
    assert len(seen) >= 4


def test_recovery_restarts_at_the_failed_task(lp, tmp_path):
    shared = tmp_path / "s"
    shared.mkdir()
    marker = tmp_path / "fixed"
    fw = Firework(
        [
            BumpTask(dir=str(shared), tag="t0"),
            FailTask(marker=str(marker)),
            BumpTask(dir=str(shared), tag="t2"),
        ],
        name="recover",
    )
    lp.add_wf(fw)
    (first,) = _run_all(lp, tmp_path / "runs")
    assert first.state == st.FIZZLED
    old = lp.launches.find_one({"launch_id": first.launch_id})
    checkpoint = old["state_history"][-1]["checkpoint"]
    assert checkpoint["_task_n"] == 1

    # What a task-level rerun writes (FireWorks' exact keys), set by hand here.
    recovery = {
        **checkpoint,
        "_prev_dir": old["launch_dir"],
        "_launch_id": first.launch_id,
        "_mode": "cp",
    }
    lp.fireworks.update_one(
        {"fw_id": 1},
        {
            "$set": {"spec._recovery": recovery, "state": st.READY, "launches": []},
            "$push": {"archived_launches": first.launch_id},
        },
    )
    lp.workflows.update_one({"nodes": 1}, {"$set": {"fw_states.1": st.READY}})
    marker.touch()
    (second,) = _run_all(lp, tmp_path / "runs")
    assert second.state == st.COMPLETED
    assert second.launch_dir != first.launch_dir
    # Task 0 did not run again; task 2 ran; accumulators were seeded from the checkpoint.
    assert (shared / "bumps.txt").read_text() == "t0\nt2\n"
    action = lp.launches.find_one({"launch_id": second.launch_id})["action"]
    assert action["stored_data"] == {"t0": True, "t2": True}
    assert action["update_spec"] == {"seen_t0": 1, "seen_t2": 1}
    # cp mode copied the previous directory (t0.out was written by the first launch only).
    assert (Path(second.launch_dir) / "t0.out").exists()
    cps = lp.launches.find_one({"launch_id": second.launch_id})["state_history"][0]
    assert cps["checkpoint"]["_task_n"] == 2


def test_recovery_prev_dir_mode_runs_in_the_old_directory(lp, tmp_path):
    shared = tmp_path / "s"
    shared.mkdir()
    marker = tmp_path / "fixed"
    lp.add_wf(
        Firework([BumpTask(dir=str(shared), tag="t0"), FailTask(marker=str(marker))], name="p")
    )
    (first,) = _run_all(lp, tmp_path / "runs")
    old = lp.launches.find_one({"launch_id": first.launch_id})
    recovery = {
        **old["state_history"][-1]["checkpoint"],
        "_prev_dir": old["launch_dir"],
        "_launch_id": first.launch_id,
        "_mode": "prev_dir",
    }
    lp.fireworks.update_one(
        {"fw_id": 1},
        {
            "$set": {
                "spec._recovery": recovery,
                "spec._launch_dir": old["launch_dir"],
                "state": st.READY,
                "launches": [],
            }
        },
    )
    marker.touch()
    (second,) = _run_all(lp, tmp_path / "runs")
    assert second.state == st.COMPLETED and second.launch_dir == first.launch_dir
    assert (shared / "bumps.txt").read_text() == "t0\n"


def test_launch_root_is_created_or_refused(tmp_path, monkeypatch):
    root = tmp_path / "a" / "b"
    assert resolve_launch_root(root) == root and root.is_dir()
    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT", str(tmp_path / "env"))
    assert resolve_launch_root() == tmp_path / "env"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        resolve_launch_root(afile)


def test_threads_share_the_process_cwd_safely(lp, tmp_path):
    for i in range(4):
        lp.add_wf(
            Firework(
                [{"_fw_name": "ScriptTask", "script": f"sleep 0.1; pwd > where{i}.txt"}],
                name=f"w{i}",
            )
        )
    results = []

    def worker() -> None:
        results.extend(_run_all(lp, tmp_path))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.fw_id for r in results) == [1, 2, 3, 4]
    for r in results:
        (f,) = Path(r.launch_dir).glob("where*.txt")
        assert f.read_text().strip() == r.launch_dir
