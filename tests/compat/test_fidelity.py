"""Real FireWorks workflows run exactly as FireWorks 2.1.4 runs them (issue 9).

Each test builds a workflow with the installed FireWorks package's classes, runs it with
FireWorks' own rapidfire (its own database on the session's server) and with ours, and
compares everything `fidelity_support.outcome` keeps: fw_ids, names, states, specs (child
specs included), links, launches and their actions/stored_data, archived launches, and the
files each launch wrote (FW.json included).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

from fidelity_support import SideBySide, diff
from fireworks import Firework, PyTask, ScriptTask, Workflow
from fireworks.features.background_task import BackgroundTask
from fireworks.user_objects.firetasks.fileio_tasks import FileWriteTask

pytestmark = pytest.mark.fireworks


@pytest.fixture
def sbs(lp: Any, mongo_uri: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    both = SideBySide(lp, mongo_uri, tmp_path)
    try:
        yield both
    finally:
        both.close()


def _same(sbs: SideBySide, files: bool = True) -> dict[str, Any]:
    theirs, ours = sbs.outcomes(files)
    differences = diff(theirs, ours)
    assert not differences, "\n".join(differences)
    return ours


def _py(func: str, *args: Any, **kw: Any) -> PyTask:
    return PyTask(func=f"fidelity_tasks.{func}", args=list(args), **kw)


# -- item 3: spec._add_launchpad_and_fw_id / spec._add_fworker ------------------------------


def test_add_launchpad_fw_id_and_fworker(sbs: SideBySide) -> None:
    from fidelity_tasks import LaunchPadUserTask

    fw1 = Firework(
        [LaunchPadUserTask()],
        spec={
            "_add_launchpad_and_fw_id": True,
            "_add_fworker": True,
            "x": 42,
            "update_target": 2,
        },
        name="uses-lp",
        fw_id=1,
    )
    fw2 = Firework([_py("push_value", "child", 1)], name="child", parents=[fw1], fw_id=2)
    sbs.add(Workflow([fw1, fw2], name="lp-user").to_dict())
    sbs.run()
    ours = _same(sbs)
    data = ours["fws"][1]["launches"][0]["action"]["stored_data"]
    assert data == {
        "fw_id": 1,
        "host_set": True,
        "name": "uses-lp",
        "spec_x": 42,
        "wf_name": "lp-user",
        "n_fws": 2,
        "fworker": "Automatically generated Worker",
    }
    assert ours["fws"][2]["spec"]["from_task"] == 1


def test_fireworks_dummy_lp_task(sbs: SideBySide) -> None:
    """FireWorks' test_add_lp_and_fw_id with its own DummyLPTask."""
    from fireworks.tests.tasks import DummyLPTask

    sbs.add(
        Workflow([Firework([DummyLPTask()], spec={"_add_launchpad_and_fw_id": True})]).to_dict()
    )
    sbs.run()
    # ("host" is dropped by the comparison: a URI given to FireWorks, the host to ours.)
    ours = _same(sbs)
    assert ours["fws"][1]["launches"][0]["action"]["stored_data"]["fw_id"] == 1
    assert sbs.lp.get_launch_by_id(1).action["stored_data"]["host"]


# -- item 5: _files_in / _files_out with compression ----------------------------------------


def test_files_in_out_with_compression(sbs: SideBySide) -> None:
    """FireWorks' test_files_in_out: a .gz output lands decompressed in the next Firework."""
    fw1 = Firework(
        [ScriptTask.from_str('echo "This is the first FireWork" > test1')],
        spec={"_files_out": {"fwtest1": "test1"}},
        fw_id=1,
        name="writes",
    )
    fw2 = Firework(
        [ScriptTask.from_str("gzip hello")],
        fw_id=2,
        parents=[fw1],
        spec={
            "_files_in": {"fwtest1": "hello"},
            "_files_out": {"fw2": "hello.gz", "again": "hello.gz"},
        },
        name="gzips",
    )
    fw3 = Firework(
        [ScriptTask.from_str("cat fwtest.2", {"store_stdout": True})],
        fw_id=3,
        parents=[fw2],
        spec={"_files_in": {"fw2": "fwtest.2", "again": "again.gz"}},
        name="reads",
    )
    sbs.add(Workflow([fw1, fw2, fw3], {fw1: [fw2], fw2: [fw3]}).to_dict())
    sbs.run()
    ours = _same(sbs)
    reads = ours["fws"][3]["launches"][0]
    assert reads["action"]["stored_data"]["stdout"] == "This is the first FireWork\n"
    assert reads["files"]["fwtest.2"] == "This is the first FireWork\n"
    assert "hello.gz" in ours["fws"][2]["launches"][0]["files"]


# -- item 6: FW.json ------------------------------------------------------------------------


def test_fw_json_in_every_launch_dir(sbs: SideBySide) -> None:
    fw1 = Firework([ScriptTask.from_str("echo one")], name="one", fw_id=1, spec={"k": [1, 2]})
    fw2 = Firework([ScriptTask.from_str("echo two")], name="two", fw_id=2, parents=[fw1])
    sbs.add(Workflow([fw1, fw2]).to_dict())
    sbs.run()
    ours = _same(sbs)
    for fw_id in (1, 2):
        fw_json = ours["fws"][fw_id]["launches"][0]["files"]["FW.json"]
        assert fw_json["fw_id"] == fw_id
        assert fw_json["state"] == "RUNNING"
        assert [lch["state"] for lch in fw_json["launches"]] == ["RUNNING"]
    assert ours["fws"][1]["launches"][0]["files"]["FW.json"]["spec"]["k"] == [1, 2]


# -- item 9: _background_tasks --------------------------------------------------------------


def test_background_tasks(sbs: SideBySide) -> None:
    """FireWorks' test_backgroundtask, plus a periodic task the main task waits for."""
    hello = BackgroundTask(
        FileWriteTask({"files_to_write": [{"filename": "hello.txt", "contents": "hello"}]}),
        num_launches=1,
        run_on_finish=True,
    )
    ticks = BackgroundTask(
        [_py("append_line", "bg.txt", "tick")], num_launches=2, sleep_time=0.01, run_on_finish=True
    )
    fw = Firework(
        [_py("wait_for_lines", "bg.txt", 2, stored_data_varname="waited")],
        spec={"_background_tasks": [hello, ticks]},
        name="bg",
    )
    sbs.add(Workflow([fw]).to_dict())
    sbs.run()
    ours = _same(sbs)
    files = ours["fws"][1]["launches"][0]["files"]
    assert files["hello.txt"] == "hello"
    assert files["bg.txt"] == "tick\n" * 3
