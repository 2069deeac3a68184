"""The rerun story with real launches (the Rocket, no Prefect): fizzle, task-level rerun,
plain rerun keeping the recovery, --clear-recovery starting from scratch, copy-data and
previous-dir."""

from __future__ import annotations

from pathlib import Path

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.rerun import rerun_fws
from prefect_fireworks.runtime.rocket import run_one


def _three_step(marker: Path) -> Workflow:
    fw = Firework(
        [
            {"_fw_name": "ScriptTask", "script": "echo step0 > step0.txt"},
            {
                "_fw_name": "ScriptTask",
                "script": f"test -e {marker} || exit 3; echo step1 > step1.txt",
            },
            {"_fw_name": "PyTask", "func": "math.sqrt", "args": [16.0], "outputs": ["root"]},
        ],
        name="three-step",
    )
    child = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="child", parents=[fw])
    return Workflow([fw, child], name="story")


def _run_all(lp, root: Path) -> list:
    results = []
    while (r := run_one(lp, launch_root=root)) is not None:
        results.append(r)
    return results


def test_task_level_then_plain_then_clear_recovery(lp, tmp_path):
    marker = tmp_path / "fixed"
    lp.add_wf(_three_step(marker))
    root = tmp_path / "launches"

    (first, *_) = _run_all(lp, root)
    assert first.state == st.FIZZLED
    assert Path(first.launch_dir, "step0.txt").exists()
    launch = lp.get_launch_by_id(first.launch_id)
    assert launch.last_checkpoint["_task_n"] == 1
    assert "exit" in launch.stacktrace or "Return code" in launch.stacktrace

    marker.touch()
    result = rerun_fws(lp, [1], task_level=True)
    assert [e.fw_id for e in result.entries] == [1]
    recovery = lp.get_fw_dict_by_id(1)["spec"]["_recovery"]
    assert recovery["_task_n"] == 1 and recovery["_launch_id"] == first.launch_id

    second, child = _run_all(lp, root)
    assert second.state == st.COMPLETED and child.state == st.COMPLETED
    assert not Path(second.launch_dir, "step0.txt").exists()  # task 0 not run again
    assert Path(second.launch_dir, "step1.txt").exists()
    assert lp.get_launch_by_id(second.launch_id).action["update_spec"] == {"root": 4.0}
    assert lp.get_fw_dict_by_id(2)["spec"]["root"] == 4.0

    # A later plain rerun keeps the recovery: it restarts at task 1 again, and the child is
    # reset too (its launch archived).
    rerun_fws(lp, [1])
    fw = lp.get_fw_dict_by_id(1)
    assert fw["spec"]["_recovery"]["_task_n"] == 1
    assert sorted(fw["archived_launches"]) == [first.launch_id, second.launch_id]
    assert lp.get_fw_dict_by_id(2)["state"] == st.WAITING
    third, _ = _run_all(lp, root)
    assert not Path(third.launch_dir, "step0.txt").exists()

    # --clear-recovery: from scratch.
    rerun_fws(lp, [1], clear_recovery=True)
    assert "_recovery" not in lp.get_fw_dict_by_id(1)["spec"]
    fourth, _ = _run_all(lp, root)
    assert Path(fourth.launch_dir, "step0.txt").exists()
    fw = lp.get_fw_dict_by_id(1)
    assert fw["state"] == st.COMPLETED and len(fw["archived_launches"]) == 3
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.COMPLETED


def test_copy_data_copies_the_failed_directory(lp, tmp_path):
    marker = tmp_path / "fixed"
    lp.add_wf(_three_step(marker))
    root = tmp_path / "launches"
    (first, *_) = _run_all(lp, root)
    marker.touch()
    rerun_fws(lp, [1], task_level=True, recover_mode="cp")
    second, _ = _run_all(lp, root)
    assert second.launch_dir != first.launch_dir
    assert Path(second.launch_dir, "step0.txt").exists()  # copied from the failed launch
    assert Path(second.launch_dir, "step1.txt").exists()


def test_previous_dir_reruns_in_place_until_cleared(lp, tmp_path):
    marker = tmp_path / "fixed"
    lp.add_wf(_three_step(marker))
    root = tmp_path / "launches"
    (first, *_) = _run_all(lp, root)
    marker.touch()
    rerun_fws(lp, [1], task_level=True, launch_ids=[first.launch_id], recover_mode="prev_dir")
    assert lp.get_fw_dict_by_id(1)["spec"]["_launch_dir"] == first.launch_dir
    second, _ = _run_all(lp, root)
    assert second.state == st.COMPLETED
    assert second.launch_dir == first.launch_dir  # ran in the previous directory
    assert Path(second.launch_dir, "step1.txt").exists()
    rerun_fws(lp, [1], clear_recovery=True)
    spec = lp.get_fw_dict_by_id(1)["spec"]
    assert "_recovery" not in spec and "_launch_dir" not in spec
    third, _ = _run_all(lp, root)
    assert third.launch_dir != first.launch_dir
    assert Path(third.launch_dir, "step0.txt").exists()  # from scratch


def test_task_level_from_a_completed_launch_has_no_recovery_info(lp, tmp_path):
    """FireWorks' rule: a COMPLETED launch's last history entry carries no checkpoint."""
    import pytest

    marker = tmp_path / "fixed"
    marker.touch()
    lp.add_wf(_three_step(marker))
    (first, _) = _run_all(lp, tmp_path / "launches")
    assert first.state == st.COMPLETED
    before = lp.get_fw_dict_by_id(1)
    with pytest.raises(ValueError, match=f"No recovery info found in launch {first.launch_id}"):
        rerun_fws(lp, [1], task_level=True)
    assert lp.get_fw_dict_by_id(1) == before  # nothing written
