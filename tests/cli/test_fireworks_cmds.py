"""update_fws, set_priority, append_wflow, dump_wflow, report, introspect: output and bad input.

Their database effect is checked against FireWorks 2.1.4 in tests/compat/test_fireworks_commands.py.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fwhelpers import run_fw

from prefect_fireworks.cli.fireworks_cmds import REPLACED
from prefect_fireworks.core.models import Firework, Workflow


def _chain(lp: Any, n: int = 3) -> list[int]:
    fws: list[Firework] = []
    for i in range(n):
        task = {"_fw_name": "ScriptTask", "script": f"echo {i}"}
        fws.append(Firework([task], name=f"fw{i}", parents=fws[-1:], spec={"k": i}))
    return sorted(lp.add_wf(Workflow(fws, name="chain")).values())


def _specs(lp: Any) -> dict[int, Any]:
    return {d["fw_id"]: d["spec"] for d in lp.fireworks.find({}, {"_id": 0})}


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_replaced_commands_say_what_to_use(run_cli: Any, name: str) -> None:
    res = run_cli([name, "--anything", "x"], code=2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: lpad {name} is not part of")
    assert res.stdout == ""


def test_update_fws_reports_and_refuses(lp: Any, run_cli: Any) -> None:
    ids = _chain(lp)
    run_fw(lp, ids[0])
    res = run_cli(["update_fws", "-i", f"{ids[0]},{ids[1]}", "-u", '{"k": 9}'])
    assert res.stdout.strip() == f"Updated the spec of 1 Firework(s): {ids[1]}"
    assert f"Cannot update spec of fw_id: {ids[0]} with state: COMPLETED" in res.stderr
    specs = _specs(lp)
    assert specs[ids[0]]["k"] == 0 and specs[ids[1]]["k"] == 9
    out = json.loads(run_cli(["update_fws", "-n", "fw2", "-u", '{"x": 1}', "--json"]).stdout)
    assert out == {"updated": [ids[2]], "refused": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-u", "{not json"], "-u is not valid JSON"),
        (["-u", "[1]"], "non-empty JSON object"),
        (["-u", '{"$set": {"spec.k": 1}}'], "add --mongo"),
        (["--mongo", "-u", '{"$set": {"state": "READY"}}'], "only fields under spec"),
        (["--mongo", "-u", '{"spec.k": 1}'], "expected update operators"),
    ],
)
def test_update_fws_bad_input_writes_nothing(
    lp: Any, run_cli: Any, args: list[str], message: str
) -> None:
    ids = _chain(lp)
    before = _specs(lp)
    res = run_cli(["update_fws", "-i", str(ids[0]), *args], code=2)
    assert message in res.stderr and res.stderr.startswith("Error:")
    assert _specs(lp) == before


def test_mass_update_needs_the_password(lp: Any, run_cli: Any) -> None:
    _chain(lp, 11)
    before = _specs(lp)
    res = run_cli(["update_fws", "-q", "{}", "-u", '{"k": 1}'], code=2)
    assert "--password" in res.stderr and _specs(lp) == before
    today = date.today().isoformat()
    run_cli(["set_priority", "5", "-q", "{}", "--password", today])
    assert {s["_priority"] for s in _specs(lp).values()} == {5}


def test_set_priority_whole_workflows(lp: Any, run_cli: Any) -> None:
    ids = _chain(lp)
    other = _chain(lp, 1)
    res = run_cli(["set_priority", "4", "-i", str(ids[1]), "-wf"])
    assert res.stdout.strip() == "Finished setting priorities of 3 FWs"
    specs = _specs(lp)
    assert [specs[i].get("_priority") for i in ids] == [4, 4, 4]
    assert "_priority" not in specs[other[0]]
    run_cli(["set_priority", "4"], code=2)  # no selector: an error, not "everything"


def test_append_and_dump(lp: Any, run_cli: Any, tmp_path: Path) -> None:
    ids = _chain(lp, 2)
    extra = tmp_path / "extra.json"
    Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo x"}], name="x")]).to_file(extra)
    out = json.loads(
        run_cli(["append_wflow", "-i", str(ids[1]), "-f", str(extra), "--json"]).stdout
    )
    new = out["fw_ids"]
    wf = lp.workflows.find_one()
    assert wf["links"][str(ids[1])] == new and len(wf["nodes"]) == 3
    dumped = tmp_path / "dump.yaml"
    res = run_cli(["dump_wflow", "-i", str(ids[0]), "-f", str(dumped)])
    assert res.stdout.strip() == f"Wrote the workflow of fw_id {ids[0]} to {dumped}"
    again = Workflow.from_file(dumped)
    assert sorted(fw.name for fw in again.fws) == ["fw0", "fw1", "x"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["append_wflow", "-i", "999", "-f", "EXTRA"], "FW with id: 999 not found!"),
        (["append_wflow", "-i", "ID", "-f", "missing.yaml"], "cannot read missing.yaml"),
        (["append_wflow", "-i", "ID", "-f", "BAD"], "unknown Firetask"),
        (["dump_wflow", "-i", "999", "-f", "out.yaml"], "FW with id: 999 not found!"),
        (["report", "-i", "weeks"], "unknown interval 'weeks'"),
        (["report", "-c", "tasks"], "unknown collection 'tasks'"),
        (["introspect", "-m", "-1"], "must be 0 or positive"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    lp: Any, run_cli: Any, tmp_path: Path, monkeypatch: Any, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    ids = _chain(lp, 1)
    Workflow([Firework([{"_fw_name": "ScriptTask", "script": "true"}])]).to_file("extra.yaml")
    bad_task = "{_fw_name: '{{no_such_module.NoSuchTask}}'}"
    Path("bad.yaml").write_text(f"fws:\n- fw_id: 1\n  spec: {{_tasks: [{bad_task}]}}\n")
    subst = {"ID": str(ids[0]), "EXTRA": "extra.yaml", "BAD": "bad.yaml"}
    before = list(lp.fireworks.find({}, {"_id": 0}))
    res = run_cli([subst.get(a, a) for a in args], code=2)
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(lp.fireworks.find({}, {"_id": 0})) == before


def test_report_and_introspect_json(lp: Any, run_cli: Any) -> None:
    _chain(lp, 2)
    stats = json.loads(run_cli(["report", "--json"]).stdout)
    assert stats[0]["states"]["READY"] == 1 and stats[0]["states"]["WAITING"] == 1
    assert stats[0]["count"] == 2
    text = run_cli(["report"]).stdout
    assert text.startswith("------------\nStats on fws\n------------\nStats for time-period")
    reports = json.loads(run_cli(["introspect", "--json"]).stdout)
    assert set(reports) == {"launches", "tasks", "fws", "wflows"}
