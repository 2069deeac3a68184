"""FireWorks' own rocket tests, ported to ours (FireWorks' tests/mongo_tests.py and
core/tests/): injected task attributes, files in/out, FW.json, background tasks, detours,
fizzled parents. No FireWorks package needed: the Firetasks are ours."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core.models import Firework, FWAction, Workflow
from prefect_fireworks.runtime.background import BackgroundTask
from prefect_fireworks.runtime.firetasks import FileWriteTask, Firetask, PyTask, ScriptTask
from prefect_fireworks.runtime.rocket import run_one
from prefect_fireworks.store.launchpad import FWorker


class LPUserTask(Firetask):
    """FireWorks' DummyLPTask, and more of the LaunchPad a task can use."""

    _fw_name = "FidelityLPUserTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        lp = self.launchpad
        data = {
            "fw_id": self.fw_id,
            "host": lp.host,
            "name": lp.get_fw_by_id(self.fw_id).name,
            "n_fws": len(lp.get_wf_by_fw_id(self.fw_id).fws),
            "launch_state": lp.get_fw_dict_by_id(self.fw_id)["launches"][-1]["state"],
        }
        if fw_spec.get("_add_fworker"):
            data["fworker"] = self.fworker.name
        if "target" in fw_spec:
            lp.update_spec([fw_spec["target"]], {"from_task": True})
        return FWAction(stored_data=data)


class AttributesSeenTask(Firetask):
    """Which injected attributes exist."""

    _fw_name = "FidelityAttributesSeenTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        seen = [a for a in ("fw_id", "launchpad", "fworker") if hasattr(self, a)]
        return FWAction(stored_data={"seen": seen})


class MultipleDetourTask(Firetask):
    """FireWorks' MultipleDetourTask: three one-Firework detours in one FWAction."""

    _fw_name = "FidelityMultipleDetourTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        fws = [Firework([ScriptTask.from_str(f'echo "intermediate job {i}"')]) for i in (1, 2, 3)]
        return FWAction(detours=fws)


def rapidfire(lp: Any, root: Path, fworker: FWorker | None = None) -> int:
    """``rlaunch rapidfire``: run until nothing is READY; returns the launches run."""
    n = 0
    while run_one(lp, fworker or FWorker(), launch_root=root) is not None:
        n += 1
    return n


def stored(lp: Any, launch_id: int) -> dict[str, Any]:
    return dict(lp.get_launch_by_id(launch_id).action["stored_data"])


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- spec._add_launchpad_and_fw_id / spec._add_fworker ------------------------------------


def test_add_lp_and_fw_id(lp: Any, root: Path) -> None:
    fw1 = Firework([LPUserTask()], spec={"_add_launchpad_and_fw_id": True, "target": 2}, fw_id=1)
    fw2 = Firework([AttributesSeenTask()], fw_id=2, parents=[fw1])
    lp.add_wf(Workflow([fw1, fw2]))
    assert rapidfire(lp, root) == 2
    data = stored(lp, 1)
    assert data["fw_id"] == 1
    assert data["host"]
    assert data["name"] == "Unnamed FW"
    assert data["n_fws"] == 2
    assert data["launch_state"] == "RUNNING"
    assert lp.get_fw_by_id(2).spec["from_task"] is True
    # Without the spec keys nothing is injected.
    assert stored(lp, 2) == {"seen": []}


def test_add_fworker(lp: Any, root: Path) -> None:
    fw = Firework(
        [LPUserTask(), AttributesSeenTask()],
        spec={"_add_launchpad_and_fw_id": True, "_add_fworker": True},
    )
    lp.add_wf(fw)
    rapidfire(lp, root, FWorker(name="my worker"))
    data = stored(lp, 1)
    assert data["fworker"] == "my worker"
    assert data["seen"] == ["fw_id", "launchpad", "fworker"]


def test_task_launchpad_refuses_other_methods(lp: Any, root: Path) -> None:
    from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad

    tlp = TaskLaunchPad(lp)
    with pytest.raises(AttributeError, match="task_launchpad"):
        tlp.detect_lostruns()
    with pytest.raises(ValueError, match="task-level"):
        tlp.rerun_fw(1, recover_launch="last")


def test_task_launchpad_forwards_fireworks_names(lp: Any, root: Path) -> None:
    """The names that mean the same on our LaunchPad are handed over as they are."""
    from prefect_fireworks.runtime.task_launchpad import FORWARDED, TaskLaunchPad

    lp.add_wf(Firework([AttributesSeenTask()], fw_id=1, name="one"))
    rapidfire(lp, root)
    tlp = TaskLaunchPad(lp)
    for name in FORWARDED:
        assert getattr(tlp, name) == getattr(lp, name), name
    assert tlp.get_fw_ids({"name": "one"}) == [1]
    assert tlp.get_wf_ids() == [1]
    assert tlp.get_fw_by_id(1).state == "COMPLETED"
    assert tlp.get_launch_by_id(tlp.get_fw_by_id(1).launches[0]).state == "COMPLETED"
    full = tlp.get_fw_dict_by_id(1)
    assert [d["state"] for d in full["launches"]] == ["COMPLETED"]
    assert full["launches"][0]["action"]["stored_data"]["seen"] == []
    assert "_id" not in full["launches"][0]


def test_task_launchpad_update_spec_and_rerun(lp: Any, root: Path) -> None:
    from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad

    a = Firework([AttributesSeenTask()], fw_id=1, name="a")
    b = Firework([AttributesSeenTask()], fw_id=2, name="b", parents=[a])
    lp.add_wf(Workflow([a, b]))
    tlp = TaskLaunchPad(lp)
    rapidfire(lp, root)
    # FireWorks only updates Fireworks that have not run (READY, WAITING, FIZZLED, ...).
    tlp.update_spec([1, 2], {"x": 1})
    assert "x" not in lp.get_fw_by_id(1).spec
    assert tlp.rerun_fw(1) == [1, 2]
    assert [lp.get_fw_by_id(i).state for i in (1, 2)] == ["READY", "WAITING"]
    tlp.update_spec([1, 2], {"x": 1})
    assert [lp.get_fw_by_id(i).spec["x"] for i in (1, 2)] == [1, 1]
    new = tlp.add_wf(Firework([AttributesSeenTask()], name="added"))
    assert list(new.values()) == [3]
    tlp.pause_fw(3)
    assert lp.get_fw_by_id(3).state == "PAUSED"
    tlp.resume_fw(3)
    assert lp.get_fw_by_id(3).state == "READY"
    tlp.defuse_fw(3)
    assert lp.get_fw_by_id(3).state == "DEFUSED"


# -- _files_in / _files_out -----------------------------------------------------------------


def test_files_in_out(lp: Any, root: Path) -> None:
    """FireWorks' test_files_in_out: the .gz file lands decompressed as fwtest.2."""
    fw1 = Firework(
        [ScriptTask.from_str('echo "This is the first FireWork" > test1')],
        spec={"_files_out": {"fwtest1": "test1"}},
        fw_id=1,
    )
    fw2 = Firework(
        [ScriptTask.from_str("gzip hello")],
        fw_id=2,
        parents=[fw1],
        spec={
            "_files_in": {"fwtest1": "hello"},
            "_files_out": {"fw2": "hello.gz", "again": "hello.gz"},
        },
    )
    fw3 = Firework(
        [ScriptTask.from_str("cat fwtest.2", {"store_stdout": True})],
        fw_id=3,
        parents=[fw2],
        spec={"_files_in": {"fw2": "fwtest.2", "again": "copy.gz"}},
    )
    lp.add_wf(Workflow([fw1, fw2, fw3]))
    assert rapidfire(lp, root) == 3
    assert stored(lp, 3)["stdout"] == "This is the first FireWork\n"
    d3 = Path(lp.get_launch_by_id(3).launch_dir)
    assert (d3 / "fwtest.2").read_text() == "This is the first FireWork\n"
    # A destination ending in .gz is written compressed.
    with gzip.open(d3 / "copy.gz", "rt") as f:
        assert f.read() == "This is the first FireWork\n"
    assert lp.get_fw_by_id(3).spec["_files_prev"]["fw2"].endswith("hello.gz")


# -- FW.json --------------------------------------------------------------------------------


def test_fw_json_written_by_default(lp: Any, root: Path) -> None:
    fw = Firework([ScriptTask.from_str("cat FW.json > copy.json")], spec={"k": 1}, name="j")
    lp.add_wf(fw)
    rapidfire(lp, root)
    d = Path(lp.get_launch_by_id(1).launch_dir)
    doc = json.loads((d / "FW.json").read_text())
    assert doc["fw_id"] == 1
    assert doc["name"] == "j"
    assert doc["state"] == "RUNNING"
    assert doc["spec"]["k"] == 1
    assert [(lch["launch_id"], lch["state"]) for lch in doc["launches"]] == [(1, "RUNNING")]
    assert "archived_launches" not in doc
    # The Firetasks see it (written before the first one runs).
    assert json.loads((d / "copy.json").read_text()) == doc


def test_fw_json_lists_archived_launches_after_a_rerun(lp: Any, root: Path) -> None:
    from prefect_fireworks.ops.rerun import rerun_fws

    lp.add_wf(Firework([ScriptTask.from_str("true")]))
    rapidfire(lp, root)
    rerun_fws(lp, [1])
    rapidfire(lp, root)
    doc = json.loads((Path(lp.get_launch_by_id(2).launch_dir) / "FW.json").read_text())
    assert [lch["launch_id"] for lch in doc["launches"]] == [2]
    assert [lch["launch_id"] for lch in doc["archived_launches"]] == [1]


def test_fw_json_setting_turns_it_off(lp: Any, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_PRINT_FW_JSON", "false")
    lp.add_wf(Firework([ScriptTask.from_str("true")]))
    rapidfire(lp, root)
    assert lp.get_fw_by_id(1).state == "COMPLETED"
    assert not (Path(lp.get_launch_by_id(1).launch_dir) / "FW.json").exists()


def test_fw_json_can_be_turned_off(lp: Any, root: Path) -> None:
    from prefect_fireworks.runtime.rocket import Rocket, checkout

    lp.add_wf(Firework([ScriptTask.from_str("true")]))
    fw_doc, launch_id = checkout(lp, FWorker(), launch_root=root)
    assert fw_doc is not None and launch_id is not None
    result = Rocket(lp, fw_doc, launch_id, print_fw_json=False).run()
    assert result.state == "COMPLETED"
    assert not os.path.exists(os.path.join(result.launch_dir, "FW.json"))


# -- _background_tasks ----------------------------------------------------------------------


def test_background_task(lp: Any, root: Path) -> None:
    """FireWorks' test_backgroundtask: a FileWriteTask run once and on finish."""
    bg = BackgroundTask(
        FileWriteTask(files_to_write=[{"filename": "hello.txt", "contents": "hello"}]),
        num_launches=1,
        run_on_finish=True,
    )
    fw = Firework(
        [ScriptTask.from_str("echo 'testing background...'", {"store_stdout": True})],
        spec={"_background_tasks": [bg.to_dict()]},
    )
    lp.add_wf(fw)
    rapidfire(lp, root)
    d = Path(lp.get_launch_by_id(1).launch_dir)
    assert (d / "hello.txt").read_text() == "hello"
    assert lp.get_fw_by_id(1).state == "COMPLETED"


def _append(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


def _wait_for_lines(path: str, n: int) -> int:
    import time

    for _ in range(2000):
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            if len(lines) >= n:
                return len(lines)
        time.sleep(0.005)
    raise RuntimeError(f"{path} never had {n} lines")


def test_background_task_runs_num_launches_times_then_on_finish(lp: Any, root: Path) -> None:
    bg = BackgroundTask(
        [PyTask(func=f"{__name__}._append", args=["bg.txt", "tick"])],
        num_launches=2,
        sleep_time=0.01,
        run_on_finish=True,
    )
    fw = Firework(
        [PyTask(func=f"{__name__}._wait_for_lines", args=["bg.txt", 2])],
        spec={"_background_tasks": [bg.to_dict()]},
    )
    lp.add_wf(fw)
    rapidfire(lp, root)
    d = Path(lp.get_launch_by_id(1).launch_dir)
    assert (d / "bg.txt").read_text() == "tick\n" * 3


def test_background_task_failure_does_not_fail_the_firework(lp: Any, root: Path) -> None:
    bad = BackgroundTask([PyTask(func="math.sqrt", args=[-1])], num_launches=1)
    fw = Firework([ScriptTask.from_str("true")], spec={"_background_tasks": [bad.to_dict()]})
    lp.add_wf(fw)
    rapidfire(lp, root)
    assert lp.get_fw_by_id(1).state == "COMPLETED"


def test_background_task_failing_on_finish_fizzles(lp: Any, root: Path) -> None:
    bad = BackgroundTask([PyTask(func="math.sqrt", args=[-1])], num_launches=0, run_on_finish=True)
    bad.sleep_time = 3600
    fw = Firework([ScriptTask.from_str("true")], spec={"_background_tasks": [bad.to_dict()]})
    lp.add_wf(fw)
    rapidfire(lp, root)
    assert lp.get_fw_by_id(1).state == "FIZZLED"
    assert stored(lp, 1)["_task"] is None


# -- detours and additions ------------------------------------------------------------------


class ModSpecTask(Firetask):
    """FireWorks' ModSpecTask: push True onto the children's dummy2."""

    _fw_name = "FidelityModSpecTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        return FWAction(mod_spec=[{"_push": {"dummy2": True}}])


class DetourAndAddTask(Firetask):
    """Two detours and an addition in one FWAction."""

    _fw_name = "FidelityDetourAndAddTask"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        a = Firework([ModSpecTask()], name="detour-a")
        b = Firework([ModSpecTask()], name="detour-b")
        c = Firework([ModSpecTask()], name="addition")
        return FWAction(detours=[a, b], additions=[c])


def _links(lp: Any) -> dict[int, list[int]]:
    wf = lp.workflows.find_one({})
    return {int(k): sorted(v) for k, v in wf["links"].items()}


def test_multi_detour(lp: Any, root: Path) -> None:
    """FireWorks' test_multi_detour: every detour is added, each leads to the child."""
    fw1 = Firework([MultipleDetourTask()], fw_id=1)
    fw2 = Firework([ScriptTask.from_str('echo "DONE"')], parents=[fw1], fw_id=2)
    lp.add_wf(Workflow([fw1, fw2]))
    assert rapidfire(lp, root) == 5
    assert _links(lp) == {1: [2, 3, 4, 5], 2: [], 3: [2], 4: [2], 5: [2]}
    assert {d["state"] for d in lp.fireworks.find({})} == {"COMPLETED"}
    # New Fireworks are numbered in fw_id order; this package's Fireworks get increasing
    # default ids, so the first detour made gets 3 (FireWorks' own classes count down, and
    # its last-made detour gets 3: tests/compat/test_fidelity.py).
    scripts = {d["fw_id"]: str(d["spec"]["_tasks"][0].get("script")) for d in lp.fireworks.find({})}
    assert "intermediate job 1" in scripts[3]
    assert "intermediate job 3" in scripts[5]


def test_multi_detour_without_children_and_after_a_rerun(lp: Any, root: Path) -> None:
    from prefect_fireworks.ops.rerun import rerun_fws

    lp.add_wf(Firework([MultipleDetourTask()]))
    assert rapidfire(lp, root) == 4
    assert lp.get_fw_by_id(1).state == "COMPLETED"
    rerun_fws(lp, [1])
    assert rapidfire(lp, root) == 7  # 1 again (its children rerun too), plus 3 new detours
    assert {d["state"] for d in lp.fireworks.find({})} == {"COMPLETED"}
    assert lp.fireworks.count_documents({}) == 7


def test_detours_and_addition_in_one_action(lp: Any, root: Path) -> None:
    parent = Firework([DetourAndAddTask()], name="parent", fw_id=1)
    child = Firework([ModSpecTask()], name="child", parents=[parent], fw_id=2)
    lp.add_wf(Workflow([parent, child]))
    rapidfire(lp, root)
    ids = {d["name"]: d["fw_id"] for d in lp.fireworks.find({})}
    links = _links(lp)
    assert links[1] == sorted([2, ids["detour-a"], ids["detour-b"], ids["addition"]])
    # Each detour leads to the original child only, never to the other detour.
    assert links[ids["detour-a"]] == [2]
    assert links[ids["detour-b"]] == [2]
    assert links[ids["addition"]] == []
    assert lp.get_fw_by_id(2).spec["dummy2"] == [True, True]


def test_append_wf_detour(lp: Any, root: Path) -> None:
    """FireWorks' test_append_wf_detour (through the Firetask LaunchPad)."""
    from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad

    fw1 = Firework([ModSpecTask()], fw_id=1)
    fw2 = Firework([ModSpecTask()], fw_id=2, parents=[fw1])
    lp.add_wf(Workflow([fw1, fw2]))
    TaskLaunchPad(lp).append_wf(Workflow([Firework([ModSpecTask()])]), [1], detour=True)
    run_one(lp, FWorker(), launch_root=root)
    run_one(lp, FWorker(), launch_root=root)
    assert lp.get_fw_by_id(2).spec["dummy2"] == [True, True]


def test_append_wf_detour_two_parents(lp: Any, root: Path) -> None:
    """FireWorks' test_append_wf_detour_two_parents."""
    from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad

    def pr(text: str) -> PyTask:
        return PyTask(func="builtins.print", args=[text])

    fw_0 = Firework(pr("root"), fw_id=1)
    fw_11 = Firework(pr("1.1"), fw_id=2, parents=[fw_0])
    fw_12 = Firework(pr("1.2"), fw_id=3, parents=[fw_11])
    fw_21 = Firework(pr("2.1"), fw_id=4, parents=[fw_0])
    fw_22 = Firework(pr("2.2"), fw_id=5, parents=[fw_21])
    lp.add_wf(Workflow([fw_0, fw_11, fw_12, fw_21, fw_22]))
    det = Workflow([Firework(pr("detour"), name="det")])
    TaskLaunchPad(lp).append_wf(det, [2, 4], detour=[True, False])
    det_id = lp.fireworks.find_one({"name": "det"})["fw_id"]
    wf = lp.workflows.find_one({})
    assert wf["links"]["2"] == [3, det_id]
    assert wf["links"]["4"] == [5, det_id]
    assert wf["links"][str(det_id)] == [3]


# -- spec._fizzled_parents ------------------------------------------------------------------


class FizzledParentsReader(Firetask):
    _fw_name = "FidelityFizzledParentsReader"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        parent = fw_spec["_fizzled_parents"][0]
        last = parent["launches"][-1]
        return FWAction(
            stored_data={
                "name": parent["name"],
                "state": parent["state"],
                "error": last["action"]["stored_data"]["_exception"]["_stacktrace"]
                .strip()
                .splitlines()[-1],
                "history": [h["state"] for h in last["state_history"]],
            }
        )


def _throw(message: str) -> None:
    raise ValueError(message)


def test_fizzle_with_allow_fizzled_parents(lp: Any, root: Path) -> None:
    """FireWorks' test_fizzle, and a child that accepts its FIZZLED parent."""
    bad = Firework(
        PyTask(func=f"{__name__}._throw", args=["Testing; this error is normal."]), name="bad"
    )
    child = Firework([FizzledParentsReader()], parents=[bad], spec={"_allow_fizzled_parents": True})
    ids = lp.add_wf(Workflow([bad, child]))
    bad_id, child_id = ids[bad.fw_id], ids[child.fw_id]
    # fw_id order: this package's default ids increase, so in the order they were made.
    assert (bad_id, child_id) == (1, 2)
    assert rapidfire(lp, root) == 2
    assert lp.get_fw_by_id(bad_id).state == "FIZZLED"
    assert lp.get_fw_by_id(child_id).state == "COMPLETED"
    assert stored(lp, 2) == {
        "name": "bad",
        "state": "FIZZLED",
        "error": "ValueError: Testing; this error is normal.",
        "history": ["RUNNING", "FIZZLED"],
    }
    parents = lp.get_fw_by_id(child_id).spec["_fizzled_parents"]
    assert list(parents[0]) == [
        "spec",
        "fw_id",
        "created_on",
        "updated_on",
        "launches",
        "state",
        "name",
    ]
    assert parents[0]["launches"][0]["launch_id"] == 1
    assert parents[0]["launches"][0]["action"]["exit"] is True
