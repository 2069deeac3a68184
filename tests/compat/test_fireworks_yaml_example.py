"""examples/fireworks_workflow.yaml is FireWorks' format: FireWorks 2.1.4 reads and adds it, our
flow runs it to the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

pytestmark = [pytest.mark.fireworks, pytest.mark.usefixtures("prefect_harness")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_fireworks_workflow_file_runs_unchanged(lp: Any, mongo_uri: str, tmp_path: Path) -> None:
    """FireWorks itself reads the file and adds it; our flow runs it to the end."""
    pytest.importorskip("fireworks")
    from fireworks import LaunchPad as FWLaunchPad
    from fireworks import Workflow as FWWorkflow

    from prefect_fireworks.prefect.flows import run_workflow

    fw_lp = FWLaunchPad(host=mongo_uri, name=lp.name, uri_mode=True, strm_lvl="ERROR")
    ids = fw_lp.add_wf(FWWorkflow.from_file(str(EXAMPLES / "fireworks_workflow.yaml")))
    state = run_workflow(min(ids.values()), launch_root=str(tmp_path), return_state=True)
    assert state.name == "Completed"
    lines = (tmp_path / "org.txt").read_text().splitlines()
    assert lines[0] == "Ingrid is the CEO." and lines[-1] == "Kip is an intern."
    assert sorted(lines[1:3]) == ["Jack is a manager.", "Jill is a manager."]
    assert {fw["state"] for fw in lp.fireworks.find()} == {"COMPLETED"}
