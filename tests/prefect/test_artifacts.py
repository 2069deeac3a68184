"""Artifacts for the Prefect UI that the flows publish, read back from the API: launch markdown,
archived launches, workflow progress, the rerun plan and result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from prefect_fireworks import Firework, ScriptTask, Workflow
from prefect_fireworks.prefect.artifacts import launch_markdown, workflow_progress
from prefect_fireworks.prefect.flows import run_workflow
from prefect_fireworks.prefect.rerun_flow import rerun_fws

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _latest(key: str) -> Any:
    with get_client(sync_client=True) as client:
        (art,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return art


def test_launch_and_progress_artifacts(lp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    bad = Firework([ScriptTask(script="echo boom >&2; exit 3")], name="bad")
    ok = Firework([ScriptTask(script="true")], name="ok")
    ids = lp.add_wf(Workflow([bad, ok], name="two"))
    bad_id, ok_id = ids[bad.fw_id], ids[ok.fw_id]
    run_workflow(bad_id, return_state=True)  # runs both: "ok" completes, "bad" fizzles
    rerun_fws(fw_ids=[bad_id], run_after=False)
    run_workflow(bad_id, return_state=True)  # fizzles again: two launches in all, one archived
    launch_id = lp.get_fw_dict_by_id(bad_id)["launches"][-1]
    key = f"wf-{min(bad_id, ok_id)}-progress"

    # The artifacts the flow runs published themselves (nothing is published here).
    markdown = _latest(f"fw-{bad_id}-launch").data
    assert f"launch {launch_id} · FIZZLED" in markdown
    assert str(tmp_path) in markdown
    assert "ScriptTask fizzled! Return code: [3]" in markdown
    assert "| earlier launches (archived) | 1 |" in markdown
    table = _latest(f"fw-{bad_id}-archived-launches")
    assert table.type == "table"
    assert '"state": "FIZZLED"' in table.data
    progress = _latest(key)
    assert progress.type == "progress"
    assert float(progress.data) == 50.0
    # The rerun flow's plan (before writing) and result (after), FIZZLED -> READY.
    for which in ("plan", "result"):
        rows = _latest(f"rerun-fws-{which}")
        assert rows.type == "table"
        assert f'"fw_id": {bad_id}' in rows.data
        assert '"state_before": "FIZZLED"' in rows.data
        assert '"state_after": "READY"' in rows.data


def test_markdown_and_progress_are_pure() -> None:
    fw = {"fw_id": 3, "name": "x", "archived_launches": []}
    trace = "\n".join(f"line {i}" for i in range(40)) + "\n```"
    text = launch_markdown(
        fw,
        {
            "launch_id": 9,
            "state": "FIZZLED",
            "action": {"stored_data": {"_exception": {"_stacktrace": trace}}},
        },
        tail_lines=5,
    )
    assert "line 36" in text and "line 35" not in text  # 4 lines + the fence line
    assert "~~~~text" in text  # a fence the trace cannot close
    assert workflow_progress({"1": "COMPLETED", "2": "READY", "3": "ARCHIVED"}) == 50.0
    assert workflow_progress({}) == 100.0
