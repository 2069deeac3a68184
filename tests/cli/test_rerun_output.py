"""What lpad rerun_fws prints: each Firework once, and counts instead of tables for big reruns."""

from __future__ import annotations

import json
from typing import Any

from fwhelpers import run_all

from prefect_fireworks.core.models import Firework, Workflow


def test_multi_target_dry_run_lists_each_firework_once(gods: Any, run_cli: Any) -> None:
    run_all(gods)
    out = run_cli(["rerun_fws", "-i", "1,2,6", "--dry-run"], code=0).stdout
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│ ")]
    ids = [r for r in rows if r]
    assert sorted(map(int, ids)) == list(range(1, 15))  # every Firework, once
    assert "already WAITING" not in out and "left as they are" not in out
    assert "Target(s) 2: reset as descendants of earlier targets" in out
    assert "14 Firework(s) reset, 14 launch(es) would be archived." in out
    # nothing was written, and the JSON still says what FireWorks says
    data = json.loads(run_cli(["rerun_fws", "-i", "1,2,6", "--dry-run", "--json"]).stdout)
    assert [s["fw_id"] for s in data["skipped"]] == [2]
    assert {fw["state"] for fw in gods.fireworks.find()} == {"COMPLETED"}


def test_a_big_rerun_prints_a_summary(lp: Any, run_cli: Any, tmp_path: Any) -> None:
    fws: list[Firework] = []
    for i in range(40):
        task = {"_fw_name": "ScriptTask", "script": "true"}
        fws.append(Firework([task], name=f"s{i}", parents=fws[-1:]))
    ids = sorted(lp.add_wf(Workflow(fws, name="chain")).values())
    run_all(lp, launch_root=str(tmp_path))
    res = run_cli(["rerun_fws", "-i", str(ids[0])])
    lines = res.stdout.strip().splitlines()
    assert len(lines) < 10, res.stdout
    assert lines[0] == "Reran 1 Firework(s):"
    assert (
        f"descendant: 39 ({', '.join(map(str, ids[1:12]))}, ... {ids[-1]} (39 ids))" in res.stdout
    )
    assert "COMPLETED -> WAITING: 39" in res.stdout
    assert lines[-1] == "40 Firework(s) reset, 40 launch(es) archived."
