"""FireWorks' tutorials (its repository's ``fw_tutorials/``), run by FireWorks 2.1.4 and by us.

The workflows are built at test time with the installed FireWorks package's classes and the
Firetasks its ``fw_tutorials`` package installs (AdditionTask, FibonacciAdderTask,
AddModifyTask, PrintJobTask): introduction, workflow, firetask, dynamic_wf,
templatewritertask, duplicates, priority and tracker. All go into one LaunchPad per tool, both
run everything, and the outcomes (fw_ids, states, launches, stored_data, child specs, links,
files) must be equal; then a middle Firework and a Firework that made additions are rerun in
both, both run again, and the outcomes must still be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")
pytest.importorskip("fw_tutorials", reason="installed with FireWorks 2.1.4")

from fidelity_support import SideBySide, diff
from fireworks import Firework, ScriptTask, Workflow
from fireworks.user_objects.dupefinders.dupefinder_exact import DupeFinderExact
from fireworks.user_objects.firetasks.fileio_tasks import FileTransferTask, FileWriteTask
from fireworks.user_objects.firetasks.templatewriter_task import TemplateWriterTask
from fw_tutorials.dynamic_wf.addmod_task import AddModifyTask
from fw_tutorials.dynamic_wf.fibadd_task import FibonacciAdderTask
from fw_tutorials.dynamic_wf.printjob_task import PrintJobTask
from fw_tutorials.firetask.addition_task import AdditionTask

pytestmark = pytest.mark.fireworks


def _echo(text: str, **params: Any) -> ScriptTask:
    return ScriptTask.from_str(f'echo "{text}"', {"store_stdout": True, **params})


def tutorials(template_dir: Path) -> list[Workflow]:
    """The tutorials' workflows, in the order the tutorials add them."""
    wfs = []
    # introduction: one Firework, one ScriptTask.
    wfs.append(Workflow([Firework(_echo("howdy, your job launched successfully!"))]))
    # workflow: the org chart (diamond).
    ceo = Firework(_echo("Ingrid is the CEO."), name="ceo")
    jill = Firework(_echo("Jill is a manager."), name="jill")
    jack = Firework(_echo("Jack is a manager."), name="jack")
    kip = Firework(_echo("Kip is an intern."), name="kip")
    wfs.append(
        Workflow([ceo, jill, jack, kip], {ceo: [jill, jack], jill: [kip], jack: [kip]}, name="org")
    )
    # firetask: file write/transfer tasks, then a custom Firetask (AdditionTask).
    files = Firework(
        [
            FileWriteTask({"files_to_write": [{"filename": "hello.txt", "contents": "hi"}]}),
            FileTransferTask({"mode": "copy", "files": [{"src": "hello.txt", "dest": "copy.txt"}]}),
        ],
        name="file tasks",
    )
    wfs.append(Workflow([files]))
    add1 = Firework(AdditionTask(), spec={"input_array": [1, 2]}, name="add")
    add2 = Firework(AdditionTask(), spec={"input_array": [10]}, name="add again", parents=[add1])
    wfs.append(Workflow([add1, add2], name="adders"))
    # dynamic_wf: job info passing, mod_spec chains, additions (Fibonacci).
    first = Firework(_echo("This is the first FireWork"), spec={"_pass_job_info": True}, name="j1")
    printer = Firework(PrintJobTask(), parents=[first], name="j2")
    wfs.append(Workflow([first, printer], name="job info"))
    m1 = Firework(AddModifyTask(), spec={"input_array": [1, 1]}, name="addmod1")
    m2 = Firework(AddModifyTask(), spec={"input_array": [2]}, name="addmod2", parents=[m1])
    m3 = Firework(AddModifyTask(), spec={"input_array": [3]}, name="addmod3", parents=[m2])
    wfs.append(Workflow([m1, m2, m3], name="addmod"))
    fib = Firework(
        FibonacciAdderTask(), spec={"smaller": 0, "larger": 1, "stop_point": 10}, name="fib"
    )
    wfs.append(Workflow([fib], name="fibonacci"))
    # templatewritertask.
    (template_dir / "simple_template.txt").write_text("option1 = {{opt1}}\noption2 = {{opt2}}")
    tw = Firework(
        TemplateWriterTask(
            {
                "context": {"opt1": 5.0, "opt2": "fast method"},
                "template_file": "simple_template.txt",
                "template_dir": str(template_dir),
                "output_file": "out_template.txt",
            }
        ),
        name="template",
    )
    wfs.append(Workflow([tw]))
    # duplicates: the same Firework twice; the second steals the first's launch.
    for _ in range(2):
        dup = Firework(
            _echo("hello duplicate"), spec={"_dupefinder": DupeFinderExact()}, name="dup"
        )
        wfs.append(Workflow([dup]))
    # priority: the higher _priority runs first.
    prio = [
        Firework(_echo(f"priority {p}"), spec={"_priority": p}, name=f"prio{p}") for p in (1, 5, 3)
    ]
    wfs.append(Workflow(prio, name="priorities"))
    # tracker: the last lines of two files kept in the launch.
    tracked = Firework(
        [
            ScriptTask.from_str("for i in 1 2 3 4 5 6 7; do echo line $i >> words.txt; done"),
            ScriptTask.from_str("echo inputs > inputs.txt"),
        ],
        spec={
            "_trackers": [
                {"filename": "words.txt", "nlines": 3},
                {"filename": "inputs.txt", "nlines": 5},
            ]
        },
        name="tracked",
    )
    wfs.append(Workflow([tracked]))
    return wfs


def _same(sbs: SideBySide) -> dict[str, Any]:
    theirs, ours = sbs.outcomes()
    differences = diff(theirs, ours)
    assert not differences, "\n".join(differences)
    return ours


@pytest.fixture
def sbs(lp: Any, mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    both = SideBySide(lp, mongo_uri, tmp_path)
    try:
        yield both
    finally:
        both.close()


def _id(out: dict[str, Any], name: str, n: int = 0) -> int:
    return [i for i, fw in out["fws"].items() if fw["name"] == name][n]


def test_tutorials_then_reruns(sbs: SideBySide, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    for wf in tutorials(templates):
        theirs_map, ours_map = sbs.add(wf.to_dict())
        assert theirs_map == ours_map
    sbs.run()
    ours = _same(sbs)
    states = {fw["name"]: fw["state"] for fw in ours["fws"].values()}
    assert set(states.values()) == {"COMPLETED"}
    fib_names = [fw for fw in ours["fws"].values() if fw["name"] == "Unnamed FW"]
    assert len(fib_names) >= 5  # the Fibonacci additions (plus the introduction Firework)
    dup2 = _id(ours, "dup", 1)
    assert ours["fws"][dup2]["launches"] == ours["fws"][_id(ours, "dup")]["launches"]

    # Rerun a middle Firework (Jill) and the Firework that made the first addition.
    for name in ("jill", "fib"):
        sbs.rerun(_id(ours, name))
    _same(sbs)
    sbs.run()
    ours = _same(sbs)
    assert ours["fws"][_id(ours, "jill")]["archived_launches"]
    assert ours["fws"][_id(ours, "kip")]["archived_launches"]
    assert {fw["state"] for fw in ours["fws"].values()} == {"COMPLETED"}
