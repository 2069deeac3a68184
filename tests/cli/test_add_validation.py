"""``lpad add`` checks every document before it reserves an id or writes: a bad file exits 2 with
one short line, and the LaunchPad (documents and id counter) is exactly as before. A write that
fails anyway is undone. A poisoned document already in the database (written by something else)
does not stop the other Fireworks from being listed and run."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from prefect_fireworks.core import states as st

TASK = [{"_fw_name": "ScriptTask", "script": "echo hi"}]


def _deep(n: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    cur = d
    for _ in range(n):
        cur["a"] = {}
        cur = cur["a"]
    return d


def _snapshot(lp: Any) -> Any:
    return (
        sorted(repr(sorted(d.items())) for d in lp.fireworks.find({}, {"_id": 0})),
        sorted(repr(sorted(d.items())) for d in lp.workflows.find({}, {"_id": 0})),
        lp.fw_id_assigner.find_one({"_id": -1}),
    )


def _write(tmp_path: Any, name: str, doc: Any) -> str:
    p = tmp_path / name
    if name.endswith(".json"):
        p.write_text(json.dumps(doc))
    else:
        p.write_text(yaml.safe_dump(doc))
    return str(p)


GOOD = {
    "fws": [{"fw_id": 1, "spec": {"_tasks": TASK}}, {"fw_id": 2, "spec": {"_tasks": TASK}}],
    "links": {"1": [2]},
}

BAD = {
    "metadata_17mb": (
        {**GOOD, "metadata": {"blob": "x" * (17 * 1024 * 1024)}},
        "MB as BSON",
    ),
    "firework_50mb": (
        {"fw_id": 1, "spec": {"_tasks": TASK, "blob": "x" * (50 * 1024 * 1024)}},
        "MB as BSON",
    ),
    "spec_500_deep": ({"fw_id": 1, "spec": {"_tasks": TASK, "deep": _deep(500)}}, "nested deeper"),
    "spec_101_deep": ({"fw_id": 1, "spec": {"_tasks": TASK, "deep": _deep(99)}}, "nested deeper"),
    "dotted_key": ({"fw_id": 1, "spec": {"_tasks": TASK, "a.b": 1}}, "'a.b'"),
    "dollar_key": ({"fw_id": 1, "spec": {"_tasks": TASK, "x": {"$set": 1}}}, "'$set'"),
    "dotted_metadata": ({**GOOD, "metadata": {"v1.2": 1}}, "'v1.2'"),
    "state_in_file": ({"fw_id": 1, "state": "COMPLETED", "spec": {"_tasks": TASK}}, "state"),
    "launches_in_file": ({"fw_id": 1, "launches": [4], "spec": {"_tasks": TASK}}, "launches"),
    "archived_in_file": (
        {"fw_id": 1, "archived_launches": [4], "spec": {"_tasks": TASK}},
        "archived_launches",
    ),
    "no_fireworks": ({"fws": []}, "no Fireworks"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_document_writes_nothing(lp, run_cli, tmp_path, case):
    doc, needle = BAD[case]
    run_cli(["add", _write(tmp_path, "good.yaml", GOOD)])
    before = _snapshot(lp)
    # the good file first: it must not be added either
    res = run_cli(
        ["add", _write(tmp_path, "ok.yaml", GOOD), _write(tmp_path, "bad.json", doc)], code=2
    )
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and len(err) < 300, err[:400]
    assert needle in err and "bad.json" in err
    assert "xxxxxxxxxx" not in err
    assert _snapshot(lp) == before


def test_failed_insert_is_undone(lp, run_cli, tmp_path):
    """The Fireworks' insert fails half-way (an fw_id taken behind the counter's back): the
    Fireworks already inserted are deleted, the counter goes back, one line, exit 1."""
    run_cli(["add", _write(tmp_path, "a.yaml", GOOD)])
    nxt = lp.fw_id_assigner.find_one({"_id": -1})["next_fw_id"]
    lp.fireworks.insert_one({"fw_id": nxt + 1, "name": "squatter", "state": st.READY, "spec": {}})
    before = _snapshot(lp)
    big = {"fws": [{"fw_id": i, "spec": {"_tasks": TASK}} for i in range(1, 6)]}
    res = run_cli(["add", _write(tmp_path, "b.yaml", big)], code=1)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and len(err) < 300 and "nothing was added" in err, err
    assert _snapshot(lp) == before
    assert lp.fireworks.count_documents({"name": "squatter"}) == 1


@pytest.mark.no_admin_check
def test_poisoned_document_does_not_stop_the_others(lp, run_cli, tmp_path, monkeypatch):
    """A Firework nested 500 deep, written with raw pymongo: listing and running the others
    still work (the embedded server cannot update or project such a document)."""
    monkeypatch.chdir(tmp_path)
    run_cli(["add", _write(tmp_path, "a.yaml", GOOD)])
    lp.fireworks.insert_one(
        {
            "fw_id": 100,
            "name": "poison",
            "state": st.READY,
            "spec": {"_tasks": TASK, "deep": _deep(500)},
            "launches": [],
            "archived_launches": [],
            "created_on": "2026-01-01T00:00:00",
            "updated_on": "2026-01-01T00:00:00",
        }
    )
    lp.workflows.insert_one(
        {
            "nodes": [100],
            "links": {"100": []},
            "parent_links": {},
            "fw_states": {"100": st.READY},
            "state": st.READY,
            "name": "poison",
            "metadata": {},
        }
    )
    res = run_cli(["get_fws", "-t"])
    assert "poison" in res.stdout and "READY" in res.stdout
    from typer.testing import CliRunner

    from prefect_fireworks.cli.rlaunch import app as rlaunch_app

    r = CliRunner().invoke(
        rlaunch_app,
        ["rapidfire", "--no-prefect", "--sleep", "0", "--max_loops", "1"],
        catch_exceptions=False,
    )
    assert r.exit_code in (0, 1), r.output
    states = {d["fw_id"]: d["state"] for d in lp.fireworks.find({}, {"fw_id": 1, "state": 1})}
    assert states[100] == st.READY
    assert [s for i, s in states.items() if i != 100] == [st.COMPLETED] * (len(states) - 1)
