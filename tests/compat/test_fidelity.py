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


# -- item 1: several detours in one FWAction ------------------------------------------------


def test_multi_detour(sbs: SideBySide) -> None:
    """FireWorks' test_multi_detour with its own MultipleDetourTask."""
    from fireworks.tests.mongo_tests import MultipleDetourTask

    fw1 = Firework([MultipleDetourTask()], fw_id=1)
    fw2 = Firework([ScriptTask.from_str('echo "DONE"')], parents=[fw1], fw_id=2)
    sbs.add(Workflow([fw1, fw2]).to_dict())
    sbs.run()
    ours = _same(sbs)
    assert ours["workflows"][0]["links"] == {1: [2, 3, 4, 5], 2: [], 3: [2], 4: [2], 5: [2]}
    assert {fw["state"] for fw in ours["fws"].values()} == {"COMPLETED"}


def test_detours_of_one_action_do_not_see_each_other(sbs: SideBySide) -> None:
    """Two detours (a two-Firework one first) and an addition, with and without children."""
    from fidelity_tasks import TwoDetoursAndAdditionTask

    parent = Firework([TwoDetoursAndAdditionTask()], name="parent", spec={"seen": []})
    consumer = Firework(
        [_py("push_value", "consumer", 9)], name="consumer", parents=[parent], spec={"seen": []}
    )
    lonely = Firework([TwoDetoursAndAdditionTask()], name="lonely", spec={"seen": []})
    sbs.add(Workflow([parent, consumer], name="with child").to_dict())
    sbs.add(Workflow([lonely], name="no child").to_dict())
    sbs.run()
    ours = _same(sbs)
    assert {fw["state"] for fw in ours["fws"].values()} == {"COMPLETED"}
    by_name = {fw["name"]: fw for i, fw in ours["fws"].items() if i <= 6}
    assert sorted(by_name["consumer"]["spec"]["seen"]) == ["detour-a2", "detour-b"]


def test_foreach_task_consumer_gathers_the_detours_outputs(sbs: SideBySide) -> None:
    """Dataflow: ForeachTask splits a list into detours; their child gathers every output."""
    from fireworks.user_objects.firetasks.dataflow_tasks import ForeachTask

    square = PyTask(func="fidelity_tasks.square", inputs=["xs"], outputs=["squares"])
    split = Firework(
        [ForeachTask(task=square.to_dict(), split="xs")], spec={"xs": [1, 2, 3, 4]}, name="split"
    )
    chunked = Firework(
        [ForeachTask(task=square.to_dict(), split="xs", **{"number of chunks": 2})],
        spec={"xs": [5, 6, 7]},
        name="chunked",
        parents=[split],
    )
    consumer = Firework(
        [PyTask(func="fidelity_tasks.gather", inputs=["squares"])],
        name="consumer",
        parents=[chunked],
    )
    sbs.add(Workflow([split, chunked, consumer], name="foreach").to_dict())
    sbs.run()
    ours = _same(sbs)
    gathered = {
        fw["name"]: fw["launches"][0]["action"]["stored_data"]
        for fw in ours["fws"].values()
        if fw["name"] == "consumer"
    }
    assert gathered["consumer"]["gathered"] == [25, 36, 49]
    # The first split's detours pushed into "chunked" (their child) before it split again.
    assert sorted(ours["fws"][2]["spec"]["squares"]) == [1, 4, 9, 16]


def test_multi_detour_rerun(sbs: SideBySide) -> None:
    """A rerun of the detouring Firework adds its detours again, in both."""
    from fireworks.tests.mongo_tests import MultipleDetourTask

    fw1 = Firework([MultipleDetourTask()], fw_id=1)
    fw2 = Firework([ScriptTask.from_str('echo "DONE"')], parents=[fw1], fw_id=2)
    sbs.add(Workflow([fw1, fw2]).to_dict())
    sbs.run()
    sbs.rerun(1)
    sbs.run()
    ours = _same(sbs)
    assert ours["fws"][1]["state"] == "COMPLETED"


# -- item 2: fw_id assignment ---------------------------------------------------------------


def test_new_ids_in_fireworks_order(sbs: SideBySide, tmp_path: Any) -> None:
    """FireWorks sorts a workflow's Fireworks by fw_id before numbering them: -3 comes first."""
    a = Firework(ScriptTask.from_str("echo a"), name="a", fw_id=-1)
    b = Firework(ScriptTask.from_str("echo b"), name="b", fw_id=-2, parents=[a])
    c = Firework(ScriptTask.from_str("echo c"), name="c", fw_id=-3, parents=[a])
    d = Firework(ScriptTask.from_str("echo d"), name="d", fw_id=7, parents=[b])
    theirs, ours = sbs.add(Workflow([a, b, c, d]).to_dict())
    assert theirs == ours == {-3: 1, -2: 2, -1: 3, 7: 4}
    sbs.run()
    _same(sbs)


def test_lpad_add_numbers_a_to_file_workflow_as_fireworks(
    lp: Any, run_cli: Any, tmp_path: Any
) -> None:
    """``lpad add`` of the file FireWorks' own ``to_file`` writes."""
    a = Firework(ScriptTask.from_str("echo a"), name="a")
    b = Firework(ScriptTask.from_str("echo b"), name="b", parents=[a])
    c = Firework(ScriptTask.from_str("echo c"), name="c", parents=[a])
    path = tmp_path / "wf.yaml"
    Workflow([a, b, c]).to_file(str(path))
    run_cli(["add", str(path)])
    names = {d["fw_id"]: d["name"] for d in lp.fireworks.find({})}
    assert names == {1: "c", 2: "b", 3: "a"}


# -- item 4: spec._fizzled_parents ----------------------------------------------------------


def test_fizzled_parents_in_fireworks_shape(sbs: SideBySide) -> None:
    """FireWorks' test_fizzle with _allow_fizzled_parents: the child reads its parents' launches."""
    from fidelity_tasks import FizzledParentsTask

    bad = Firework([_py("fail", "Testing; this error is normal.")], name="bad")
    good = Firework([ScriptTask.from_str("echo fine")], name="good")
    child = Firework(
        [FizzledParentsTask()],
        name="tolerant",
        parents=[bad, good],
        spec={"_allow_fizzled_parents": True},
    )
    sbs.add(Workflow([bad, good, child]).to_dict())
    sbs.run()
    ours = _same(sbs)
    tolerant = next(fw for fw in ours["fws"].values() if fw["name"] == "tolerant")
    assert tolerant["state"] == "COMPLETED"
    data = tolerant["launches"][0]["action"]["stored_data"]
    assert data["names"] == ["bad"]
    assert data["error"] == "RuntimeError: Testing; this error is normal."
    assert data["history"] == ["RUNNING", "FIZZLED"]
    parent_doc = tolerant["spec"]["_fizzled_parents"][0]
    assert parent_doc["launches"][0]["action"]["exit"] is True


# -- item 7: get_fws -d more / -d all -------------------------------------------------------


def test_get_fws_more_and_all_print_what_fireworks_lpad_prints(
    lp: Any, mongo_uri: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both lpads on the same database (launches, a FIZZLED one, archived launches)."""
    import json
    import subprocess
    import sys

    import yaml

    from prefect_fireworks.core.models import Workflow as OurWorkflow
    from prefect_fireworks.ops.rerun import rerun_fws
    from prefect_fireworks.runtime.rocket import run_one
    from prefect_fireworks.store.launchpad import FWorker

    monkeypatch.chdir(tmp_path)
    a = Firework(ScriptTask.from_str("echo a", {"store_stdout": True}), name="a", fw_id=1)
    b = Firework([_py("fail")], name="b", fw_id=2, parents=[a])
    c = Firework(ScriptTask.from_str("echo c"), name="c", fw_id=3, parents=[a])
    lp.add_wf(OurWorkflow.from_dict(Workflow([a, b, c]).to_dict()))
    while run_one(lp, FWorker(), launch_root=tmp_path) is not None:
        pass
    rerun_fws(lp, [1])
    run_one(lp, FWorker(), 1, launch_root=tmp_path)
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(yaml.safe_dump({"host": mongo_uri, "uri_mode": True, "name": lp.name}))

    def run(cmd: list[str]) -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    fireworks_lpad = [sys.executable, "-c", "from fireworks.scripts.lpad_run import lpad; lpad()"]
    # (each lpad is a subprocess: two forms cover one and many, COMPLETED and FIZZLED,
    # launches and archived launches)
    for args in (["get_fws", "-i", "1", "-d", "more"], ["get_fws", "-d", "all"]):
        theirs = run([*fireworks_lpad, "-l", str(lp_file), *args])
        ours = run([sys.executable, "-m", "prefect_fireworks.cli", "-l", str(lp_file), *args])
        if "all" in args:
            # -d all adds what only we write (rerun_history) after FireWorks' fields.
            docs = json.loads(ours)
            for d in docs if isinstance(docs, list) else [docs]:
                assert d.pop("rerun_history", None) is not None or d["fw_id"] != 1
            ours = json.dumps(docs, indent=4) + "\n"
        assert ours == theirs, " ".join(args)
