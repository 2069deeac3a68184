"""Artifacts for the Prefect UI, read back from the API: launch markdown, archived launches,
workflow progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from prefect_fireworks import Firework, ScriptTask, Workflow
from prefect_fireworks.prefect.artifacts import (
    launch_markdown,
    publish_launch,
    publish_workflow_progress,
    workflow_progress,
)
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

    @flow
    def publish() -> None:
        publish_launch(lp, launch_id)
        progress = publish_workflow_progress(lp, bad_id)
        publish_workflow_progress(lp, bad_id, progress)

    publish()

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
