"""Listings: results on stdout, --json wins over -t, -lm ids sorted, table states filled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fwhelpers import run_fw

from prefect_fireworks.core.models import Firework, Workflow


def _three_roots(lp: Any) -> list[int]:
    fws = [
        Firework([{"_fw_name": "ScriptTask", "script": "echo x"}], name=f"r{i}") for i in range(3)
    ]
    return sorted(lp.add_wf(Workflow(fws, name="roots")).values())


def test_add_confirms_on_stdout(lp: Any, run_cli: Any, tmp_path: Path) -> None:
    wf_file = tmp_path / "wf.yaml"
    Workflow([Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="a")]).to_file(wf_file)
    res = run_cli(["add", str(wf_file)])
    assert "Added workflow" in res.stdout and res.stderr == ""


def test_json_wins_over_table(lp: Any, run_cli: Any) -> None:
    ids = _three_roots(lp)
    assert json.loads(run_cli(["get_wflows", "-t", "--json"]).stdout) == ids[0]
    data = json.loads(run_cli(["get_wflows", "-i", str(ids[0]), "-t", "--json"]).stdout)
    assert data["name"] == f"roots--{ids[0]}"  # FireWorks names workflows name--root_id
    assert json.loads(run_cli(["get_fws", "-t", "--json", "-d", "ids"]).stdout) == ids


def test_table_with_a_selector_fills_the_states_column(lp: Any, run_cli: Any) -> None:
    ids = _three_roots(lp)
    for args in (["-i", str(ids[1])], ["-n", "roots"], []):
        out = run_cli(["get_wflows", "-t", *args]).stdout
        assert "REA-REA-REA" in out, (args, out)


def test_launches_mode_ids_are_sorted(lp: Any, run_cli: Any, tmp_path: Path) -> None:
    ids = _three_roots(lp)
    for i in (ids[2], ids[0], ids[1]):
        run_fw(lp, i, fail_at=0, launch_root=str(tmp_path))
    out = run_cli(["get_fws", "-q", '{"state": "FIZZLED"}', "-lm", "-d", "ids"]).stdout
    assert json.loads(out) == ids
