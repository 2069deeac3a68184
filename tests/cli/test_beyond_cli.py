"""``lpad errors``, ``restore_launch``, and ``rerun_fws --signature/--roots-only/--plan-out/
--apply/--reason`` on the real server, refusals included (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fwhelpers import ZEUS, run_all, start_fw

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow


def trace(exc: str, n: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/work/{n}/tasks.py", line {n}, in run_task\n'
        "    go()\n"
        f"{exc}: step {n} failed in /scratch/run_{n}\n"
    )


def fizzle(lp: Any, fw_id: int, text: str) -> None:
    fw, lid = start_fw(lp, fw_id)
    assert fw is not None and fw["fw_id"] == fw_id
    lp.complete_launch(lid, {"stored_data": {"_exception": {"_stacktrace": text}}}, st.FIZZLED)


@pytest.fixture
def cascade(lp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A -> B -> C (B, C allow fizzled parents): all three fizzle with one error; D another."""
    monkeypatch.chdir(tmp_path)
    allow = {"_allow_fizzled_parents": True}
    a = Firework([], name="A", fw_id=1)
    b = Firework([], name="B", fw_id=2, parents=a, spec=allow)
    c = Firework([], name="C", fw_id=3, parents=b, spec=dict(allow))
    d = Firework([], name="D", fw_id=4)
    m = lp.add_wf(Workflow([a, b, c, d], name="cascade"))
    ids = {"A": m[1], "B": m[2], "C": m[3], "D": m[4]}
    for k in "ABC":
        fizzle(lp, ids[k], trace("OSError", ids[k]))
    fizzle(lp, ids["D"], trace("KeyError", 9))
    return ids


def docs(lp: Any) -> Any:
    return sorted(
        (
            d["fw_id"],
            d["state"],
            d.get("launches"),
            d.get("archived_launches"),
            d.get("spec"),
            d.get("rerun_history"),
        )
        for d in lp.fireworks.find({}, {"_id": 0, "updated_on": 0})
    )


def test_errors_groups_and_marks_roots(lp: Any, cascade: dict[str, int], run_cli: Any) -> None:
    groups = json.loads(run_cli(["errors", "--json"]).stdout)
    assert [(g["exc_type"], g["count"], g["roots"]) for g in groups] == [
        ("OSError", 3, [cascade["A"]]),
        ("KeyError", 1, [cascade["D"]]),
    ]
    assert groups[0]["message"] == "step <n> failed in <path>"
    out = run_cli(["errors"]).stdout
    assert groups[0]["sig_id"] in out and f"{cascade['A']}*" in out
    assert "OSError: step" in out and "KeyError" in out  # (rich wraps long cells)
    # a selection narrows it
    only = json.loads(run_cli(["errors", "-i", str(cascade["D"]), "--json"]).stdout)
    assert [g["count"] for g in only] == [1]


def test_rerun_by_signature_roots_only(lp: Any, cascade: dict[str, int], run_cli: Any) -> None:
    sig = json.loads(run_cli(["errors", "--json"]).stdout)[0]["sig_id"]
    res = json.loads(
        run_cli(["rerun_fws", "--signature", sig[:6], "--roots-only", "--json"]).stdout
    )
    assert res["rerun"] == [cascade["A"]]
    states = {d["fw_id"]: d["state"] for d in lp.fireworks.find({}, {"fw_id": 1, "state": 1})}
    assert states == {
        cascade["A"]: st.READY,
        cascade["B"]: st.WAITING,  # the cascade follows its root
        cascade["C"]: st.WAITING,
        cascade["D"]: st.FIZZLED,  # another signature: untouched
    }


def test_bad_signature_is_refused(lp: Any, cascade: dict[str, int], run_cli: Any) -> None:
    before = docs(lp)
    for sig, why in [("xyz1", "not hexadecimal"), ("ab", "too short"), ("0000", "no failed")]:
        r = run_cli(["rerun_fws", "--signature", sig], code=2)
        assert why in r.stderr and len(r.stderr.strip().splitlines()) == 1
    run_cli(["rerun_fws", "-i", "1", "--roots-only", "--signature", "abcd"], code=2)
    assert docs(lp) == before


def test_plan_out_then_apply_and_refusals(
    lp: Any, cascade: dict[str, int], run_cli: Any, tmp_path: Path
) -> None:
    before = docs(lp)
    plan = tmp_path / "plan.json"
    run_cli(["rerun_fws", "-s", "FIZZLED", "--roots-only", "--plan-out", str(plan)])
    assert docs(lp) == before  # writing a plan writes nothing to the LaunchPad
    data = json.loads(plan.read_text())
    assert data["targets"] == [cascade["A"], cascade["D"]]
    assert data["token"].startswith("sha256:")
    # a tampered plan is refused
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**data, "targets": [cascade["A"]]}))
    r = run_cli(["rerun_fws", "--apply", str(bad)], code=2)
    assert "does not match its content" in r.stderr
    # options that do not go with --apply, and unreadable files
    run_cli(["rerun_fws", "--apply", str(plan), "-s", "FIZZLED"], code=2)
    run_cli(["rerun_fws", "--apply", str(tmp_path / "missing.json")], code=2)
    (tmp_path / "junk.json").write_text("{not json")
    run_cli(["rerun_fws", "--apply", str(tmp_path / "junk.json")], code=2)
    assert docs(lp) == before

    res = json.loads(run_cli(["rerun_fws", "--apply", str(plan), "--json"]).stdout)
    assert res["rerun"] == [cascade["A"], cascade["D"]]
    entry = lp.get_fw_dict_by_id(cascade["A"])["rerun_history"][-1]
    assert entry["plan_token"] == data["token"]
    # applying it again: what it covers changed, so it is refused and nothing is written
    after = docs(lp)
    r = run_cli(["rerun_fws", "--apply", str(plan)], code=2)
    assert f"Firework {cascade['A']} is READY, was FIZZLED" in r.stderr
    assert docs(lp) == after


def test_who_and_why_and_restore(gods: Any, run_cli: Any) -> None:
    lp = gods
    run_all(lp)
    before = docs(lp)
    run_cli(["rerun_fws", "-i", str(ZEUS), "--reason", "bad input file"])
    shown = json.loads(run_cli(["get_fws", "-i", str(ZEUS), "-d", "all"]).stdout)
    shown = shown[0] if isinstance(shown, list) else shown
    entry = shown["rerun_history"][-1]
    assert entry["reason"] == "bad input file"
    assert entry["command"] == f"lpad rerun_fws --fw_id {ZEUS} --reason 'bad input file'"
    assert entry["actor"]["user"] and entry["by"].startswith(entry["actor"]["user"] + "@")
    assert {d["fw_id"] for d in entry["descendants"]} == {7, 8, 9, 11, 14}

    dry = json.loads(run_cli(["restore_launch", "-i", str(ZEUS), "--dry-run", "--json"]).stdout)
    assert dry["dry_run"] is True and dry["restored_launches"] == 6
    out = run_cli(["restore_launch", "-i", str(ZEUS), "--reason", "mistake"]).stdout
    assert "Restored the rerun of fw_id 2" in out
    after = docs(lp)
    assert [a[:5] for a in after] == [b[:5] for b in before]
    r = run_cli(["restore_launch", "-i", str(ZEUS)], code=2)
    assert "no rerun to undo" in r.stderr
    run_cli(["restore_launch"], code=2)
    # refused once something ran since
    run_cli(["rerun_fws", "-i", str(ZEUS)])
    run_all(lp, limit=1)
    after = docs(lp)
    r = run_cli(["restore_launch", "-i", str(ZEUS)], code=2)
    assert "has run since the rerun" in r.stderr
    assert docs(lp) == after
