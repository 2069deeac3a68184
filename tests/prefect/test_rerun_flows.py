"""The rerun-fws and detect-lostruns flows: plans, guards and artifacts read back from the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from prefect_fireworks import Firework, ScriptTask
from prefect_fireworks.core import states as st
from prefect_fireworks.prefect.deployments import RUN_WORKFLOW
from prefect_fireworks.prefect.flows import run_workflow
from prefect_fireworks.prefect.rerun_flow import rerun_fws

pytestmark = pytest.mark.usefixtures("prefect_harness")


def fails_once(marker: Path, name: str = "flaky") -> Firework:
    """A Firework whose script fails the first time (it leaves a marker) and then succeeds."""
    script = f"if [ -e {marker} ]; then echo ok; else touch {marker}; echo boom >&2; exit 3; fi"
    return Firework([ScriptTask(script=script)], name=name)


def always_fails(name: str = "broken") -> Firework:
    return Firework([ScriptTask(script="exit 3")], name=name)


def add(lp: Any, fw: Firework) -> int:
    return next(iter(lp.add_wf(fw).values()))


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts}


def test_rerun_flow_publishes_plan_then_reruns(lp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    fw_id = add(lp, fails_once(tmp_path / "marker"))
    assert run_workflow(fw_id, return_state=True).name == "Fizzled"
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.FIZZLED

    dry = rerun_fws(fw_ids=[fw_id], dry_run=True, return_state=True)
    assert dry.is_completed()
    assert dry.result()["rerun"] == [fw_id]
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.FIZZLED  # nothing written
    plan = artifacts_of(dry.state_details.flow_run_id)["rerun-fws-plan"]
    assert plan.type == "table"
    assert f'"fw_id": {fw_id}' in str(plan.data)
    assert "rerun-fws-result" not in artifacts_of(dry.state_details.flow_run_id)
    assert "dry run: nothing written" in (plan.description or "")

    done = rerun_fws(fw_ids=[fw_id], run_after=False, return_state=True)
    assert done.is_completed()
    assert done.message is not None and f"rerun [{fw_id}]" in done.message
    fw = lp.get_fw_dict_by_id(fw_id)
    assert fw["state"] == st.READY
    assert len(fw["archived_launches"]) == 1
    done_artifacts = artifacts_of(done.state_details.flow_run_id)
    result = done_artifacts["rerun-fws-result"]
    assert "1 launch(es) archived" in (result.description or "")
    assert (result.description or "").startswith("Rerun done: 1 Firework(s) rerun")
    applied_plan = done_artifacts["rerun-fws-plan"].description or ""
    assert "dry run" not in applied_plan  # this run did write
    assert applied_plan.startswith("Rerun plan, applied (see rerun-fws-result)")

    assert run_workflow(fw_id, return_state=True).is_completed()
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.COMPLETED


def _refused_events(fw_id: int) -> list[dict[str, Any]]:
    """The ``fireworks.rerun.refused`` events about this Firework (events land asynchronously)."""
    import time

    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            response = client.request(
                "POST",
                "/events/filter",
                json={
                    "filter": {
                        "event": {"name": ["fireworks.rerun.refused"]},
                        "resource": {"id": [f"fireworks.firework.{fw_id}"]},
                    }
                },
            )
        events = response.json().get("events", [])
        if events or time.monotonic() > deadline:
            return events  # type: ignore[no-any-return]
        time.sleep(0.5)


def test_budget_regex_and_state_guards(lp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    fw_id = add(lp, always_fails())
    run_workflow(fw_id, return_state=True)

    unmatched = rerun_fws(fw_ids=[fw_id], stacktrace_regex="MemoryError", return_state=True)
    assert unmatched.name == "Skipped" and unmatched.is_cancelled()  # not a green success
    assert "stack trace does not match 'MemoryError'" in (unmatched.message or "")
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.FIZZLED

    matched = rerun_fws(
        fw_ids=[fw_id], stacktrace_regex=r"Return code: \[3\]", run_after=False, return_state=True
    )
    assert matched.result()["rerun"] == [fw_id]
    run_workflow(fw_id, return_state=True)

    refused = rerun_fws(fw_ids=[fw_id], max_reruns=1, return_state=True)
    assert refused.name == "Refused" and refused.is_failed()
    assert _refused_events(fw_id), "a budget refusal emits fireworks.rerun.refused"
    assert "already rerun 1 time(s), the budget is max_reruns=1" in (refused.message or "")
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.FIZZLED

    # Rerun by hand meanwhile: an automatic rerun (only_fizzled) is a no-op and says so.
    rerun_fws(fw_ids=[fw_id], run_after=False)
    again = rerun_fws(fw_ids=[fw_id], only_fizzled=True, return_state=True)
    assert again.name == "Skipped" and again.is_cancelled()
    assert "is READY, not FIZZLED" in (again.message or "")
    assert len(lp.get_fw_dict_by_id(fw_id)["archived_launches"]) == 2


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "select Fireworks with fw_ids, name, state or query"),
        ({"state": "FIZZLED", "stacktrace_regex": "("}, "invalid stack-trace regex"),
        ({"state": "FIZZLED", "max_reruns": -1}, "max_reruns must be 0 or more"),
        ({"state": "NOPE"}, "NOPE"),
        ({"state": "FIZZLED", "copy_data": True}, "need --task-level"),
    ],
)
def test_bad_parameters_fail_and_write_nothing(lp: Any, params: dict[str, Any], error: str) -> None:
    fw_id = add(lp, always_fails())
    state = rerun_fws(**params, return_state=True)
    assert state.is_failed() and state.name == "Refused"  # refused cleanly, no traceback
    assert (state.message or "").startswith("refused: ")
    assert error in (state.message or "")
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.READY
    assert lp.launches.count_documents({}) == 0


def test_rerun_triggers_the_run_workflow_deployment(
    lp: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    fw_id = add(lp, always_fails())
    run_workflow(fw_id, return_state=True)
    name = f"{RUN_WORKFLOW}"
    deployment_id = run_workflow.to_deployment(name=name).apply()
    try:
        state = rerun_fws(fw_ids=[fw_id], launchpad=None, return_state=True)
        (run_id,) = state.result()["run_workflow_flow_runs"]
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(uuid.UUID(run_id))
        assert run.deployment_id == deployment_id
        assert run.parameters == {"wf_id": fw_id}
        assert "rerun" in run.tags
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)


def test_detect_lostruns_flow_fizzles_and_reruns_a_lost_launch(lp: Any, tmp_path: Path) -> None:
    from prefect_fireworks.prefect.lostruns_flow import detect_lostruns
    from prefect_fireworks.store.launchpad import FWorker

    fw_id = add(lp, always_fails("lost"))
    _, launch_id = lp.checkout_fw(FWorker(), str(tmp_path))
    # The process running it died four hours ago: its heartbeat stopped then.
    lp.launches.update_one(
        {"launch_id": launch_id},
        {"$set": {"state_history.0.updated_on": "2000-01-01T00:00:00+00:00"}},
    )
    found = detect_lostruns(expiration_secs=3600, return_state=True)
    assert found.result()["lost_launch_ids"] == [launch_id]
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.RUNNING  # only reported

    fixed = detect_lostruns(expiration_secs=3600, rerun=True, run_after=False)
    assert fixed["lost_fw_ids"] == [fw_id]
    assert fixed["rerun"] == [fw_id]
    fw = lp.get_fw_dict_by_id(fw_id)
    assert fw["state"] == st.READY
    assert fw["archived_launches"] == [launch_id]
    assert lp.launches.find_one({"launch_id": launch_id})["state"] == st.FIZZLED
