"""update_fws, set_priority, append/dump_wflow, report and introspect against FireWorks 2.1.4.

Two databases on the session's server start identical; FireWorks' own ``lpad`` runs a command on
one, ours on the other, and the documents must end the same (ids, states, specs, links). The
read-only commands run both on one database: ``report`` must print the same text, and
``introspect`` must find the same rows as FireWorks' ``Introspector``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

from fwhelpers import run_fw

from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.launchpad import LaunchPad

pytestmark = pytest.mark.fireworks

FIREWORKS_LPAD = [sys.executable, "-c", "from fireworks.scripts.lpad_run import lpad; lpad()"]


def _task(text: str) -> dict[str, Any]:
    return {"_fw_name": "ScriptTask", "script": f"echo {text}"}


def _populate(lp: Any) -> None:
    """a -> b -> c (a COMPLETED), plus d (FIZZLED, spec bad=1) and e (COMPLETED, spec bad=0)."""
    a = Firework([_task("a")], name="a", spec={"param": 1})
    b = Firework([_task("b")], name="b", parents=[a], spec={"param": 2})
    c = Firework([_task("c")], name="c", parents=[b])
    lp.add_wf(Workflow([a, b, c], name="chain", metadata={"campaign": "x"}))
    lp.add_wf(Workflow([Firework([_task("d")], name="d", spec={"bad": 1})], name="wd"))
    lp.add_wf(Workflow([Firework([_task("e")], name="e", spec={"bad": 0})], name="we"))
    run_fw(lp, 1)
    run_fw(lp, 4, fail_at=0)
    run_fw(lp, 5)


@pytest.fixture
def pair(lp: Any, mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """(ours, theirs): two identical LaunchPads, with a my_launchpad.yaml for each."""
    monkeypatch.chdir(tmp_path)
    other = LaunchPad.from_uri(mongo_uri, name=f"t_{uuid.uuid4().hex[:12]}")
    other.reset(None, require_password=False)
    for pad in (lp, other):
        _populate(pad)
    files = {}
    for key, pad in (("ours", lp), ("theirs", other)):
        files[key] = tmp_path / f"{key}.yaml"
        files[key].write_text(
            yaml.safe_dump({"host": mongo_uri, "uri_mode": True, "name": pad.name})
        )
    try:
        yield lp, other, files
    finally:
        other.client.drop_database(other.name)
        other.close()


def _fireworks(lp_file: Path, *args: str) -> str:
    proc = subprocess.run(
        [*FIREWORKS_LPAD, "-l", str(lp_file), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _docs(lp: Any) -> dict[int, Any]:
    return {
        d["fw_id"]: (d["name"], d["state"], d["spec"])
        for d in lp.fireworks.find({}, {"_id": 0, "fw_id": 1, "name": 1, "state": 1, "spec": 1})
    }


def _wfs(lp: Any) -> list[Any]:
    return sorted(
        (sorted(d["nodes"]), {k: sorted(v) for k, v in d["links"].items()}, d["fw_states"])
        for d in lp.workflows.find({}, {"_id": 0})
    )


@pytest.mark.parametrize(
    "args",
    [
        ["update_fws", "-i", "1,2", "-u", '{"param": 5, "_tasks.0.script": "echo new"}'],
        ["update_fws", "-s", "FIZZLED", "-u", '{"fixed": true}'],
        ["update_fws", "-n", "b", "--mongo", "-u", '{"$unset": {"spec.param": ""}}'],
        ["set_priority", "7", "-i", "2"],
        ["set_priority", "3", "-n", "c", "-wf"],
        ["set_priority", "2", "-n", "chain", "-wf"],
        ["set_priority", "1", "-i", "3", "-wf"],
        ["set_priority", "4", "-q", '{"spec.bad": 1}'],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_spec_commands_write_what_fireworks_writes(pair: Any, run_cli: Any, args: list[str]):
    ours, theirs, files = pair
    _fireworks(files["theirs"], *args)
    run_cli(["-l", str(files["ours"]), *args])
    assert _docs(ours) == _docs(theirs)


@pytest.mark.parametrize("detour", [False, True])
def test_append_wflow_matches_fireworks(pair: Any, run_cli: Any, tmp_path: Path, detour: bool):
    ours, theirs, files = pair
    wf_file = tmp_path / "extra.yaml"
    x = Firework([_task("x")], name="x", fw_id=-1)
    y = Firework([_task("y")], name="y", fw_id=-2, parents=[x])
    Workflow([x, y], name="extra").to_file(wf_file)
    args = ["append_wflow", "-i", "2", "-f", str(wf_file), *(["-d"] if detour else [])]
    _fireworks(files["theirs"], *args)
    out = run_cli(["-l", str(files["ours"]), *args]).stdout
    assert "new fw_ids 6, 7" in out
    assert _docs(ours) == _docs(theirs)
    assert _wfs(ours) == _wfs(theirs)


def test_dump_wflow_matches_fireworks(pair: Any, run_cli: Any, tmp_path: Path):
    from fireworks import Workflow as RefWorkflow

    _, _, files = pair
    for suffix in ("json", "yaml"):
        _fireworks(files["theirs"], "dump_wflow", "-i", "2", "-f", str(tmp_path / f"t.{suffix}"))
        run_cli(["-l", str(files["ours"]), "dump_wflow", "-i", "2", "-f", f"o.{suffix}"])
        mine = RefWorkflow.from_file(str(tmp_path / f"o.{suffix}"))
        ref = RefWorkflow.from_file(str(tmp_path / f"t.{suffix}"))
        assert mine.name == ref.name and mine.metadata == ref.metadata
        assert mine.links == ref.links
        assert {f.fw_id: (f.name, f.state, f.spec) for f in mine.fws} == {
            f.fw_id: (f.name, f.state, f.spec) for f in ref.fws
        }


@pytest.mark.parametrize(
    "args",
    [
        ["report"],
        ["report", "-c", "launches"],
        ["report", "-c", "wflows", "-i", "hours", "-n", "3"],
        ["report", "-i", "minutes", "-q", '{"name": "a"}'],
        ["report", "-n", "0"],
    ],
    ids=lambda a: " ".join(a),
)
def test_report_prints_what_fireworks_prints(pair: Any, run_cli: Any, args: list[str]):
    _, _, files = pair
    theirs = _fireworks(files["theirs"], *args)
    ours = run_cli(["-l", str(files["ours"]), *args]).stdout
    assert ours == theirs


def test_introspect_finds_what_fireworks_finds(pair: Any, run_cli: Any):
    from fireworks import LaunchPad as RefLaunchPad
    from fireworks.features.introspect import Introspector

    _, _, files = pair
    ref = RefLaunchPad.from_file(str(files["ours"]))
    ref.strm_lvl = "ERROR"
    data = json.loads(run_cli(["-l", str(files["ours"]), "introspect", "--json"]).stdout)
    isp = Introspector(ref)
    for what, coll in (("fws", "fws"), ("tasks", "tasks"), ("wflows", "wflows")):
        expected = isp.introspect_fizzled(coll=coll, threshold=10, limit=100)
        got = [
            [r["key"], r["value"], r["completed"], r["fizzled"], r["completed_minus_fizzled_pct"]]
            for r in data[what]
        ]
        assert sorted(map(str, got)) == sorted(map(str, expected)), what
    # the FIZZLED Firework's spec key is the suspect
    assert any(r["key"] == "bad" and r["value"] == "1" for r in data["fws"])
    launches = isp.introspect_fizzled(coll="launches", threshold=10, limit=100)
    assert [r["fizzled"] for r in data["launches"]] == [row[3] for row in launches]
