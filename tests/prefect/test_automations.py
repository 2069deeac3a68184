"""The "rerun FIZZLED Fireworks" automation under Prefect's test harness.

A Firework fizzles inside a real ``run_workflow`` flow run; the harness's server evaluates the
automation and creates a ``rerun-fws`` flow run, whose parameters are read back from the API.
That flow run is then executed in this process (as a worker would), until the budget refuses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow

from prefect_fireworks import Firework, ScriptTask
from prefect_fireworks.core import states as st
from prefect_fireworks.prefect.automations import (
    FIZZLED_EVENT,
    RERUN_AUTOMATION,
    SWEEP_SLUG,
    create_rerun_automation,
    delete_automations,
)
from prefect_fireworks.prefect.deployments import RERUN_FWS
from prefect_fireworks.prefect.flows import FIZZLED_EVENT as EMITTED_EVENT
from prefect_fireworks.prefect.flows import run_workflow
from prefect_fireworks.prefect.rerun_flow import rerun_fws

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def rerun_deployment() -> Iterator[UUID]:
    """The rerun-fws deployment, registered without any process serving it."""
    deployment_id = rerun_fws.to_deployment(name=RERUN_FWS).apply()
    try:
        yield deployment_id  # type: ignore[misc]
    finally:
        delete_automations(RERUN_AUTOMATION)
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)  # type: ignore[arg-type]


def _runs_since(deployment_id: UUID, since: datetime) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        )
    return sorted(
        (r for r in runs if r.created is not None and r.created >= since),
        key=lambda r: r.created,  # type: ignore[arg-type,return-value]
    )


def _wait_for_run(deployment_id: UUID, since: datetime, n: int, timeout: float = 30) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs_since(deployment_id, since)
        if len(runs) >= n:
            return runs[n - 1]
        time.sleep(0.2)
    raise AssertionError(f"the automation created {len(runs)} rerun-fws run(s), expected {n}")


def test_the_flows_emit_the_event_the_automation_expects() -> None:
    assert EMITTED_EVENT == FIZZLED_EVENT


def test_fizzled_firework_triggers_rerun_until_the_budget_refuses(
    lp: Any, tmp_path: Path, monkeypatch: Any, run_cli: Any, rerun_deployment: UUID
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(["automations", "create", "--max-reruns", "3", "--json"])
    assert json.loads(result.stdout)["created"] is True
    again = run_cli(["automations", "create", "--max-reruns", "3", "--json"])
    assert json.loads(again.stdout)["created"] is False  # idempotent: updated in place
    listed = json.loads(run_cli(["automations", "ls", "--json"]).stdout)
    assert [(a["name"], a["deployment"]) for a in listed] == [(RERUN_AUTOMATION, RERUN_FWS)]

    fw_id = next(iter(lp.add_wf(Firework([ScriptTask(script="exit 3")], name="bad")).values()))
    since = datetime.now(timezone.utc)
    states = []
    for attempt in range(1, 5):
        assert run_workflow(fw_id, return_state=True).name == "Fizzled"
        run = _wait_for_run(rerun_deployment, since, attempt)
        assert run.parameters == {"fw_ids": [fw_id], "only_fizzled": True, "max_reruns": 3}
        state = run_flow(rerun_fws, flow_run=run, parameters=run.parameters, return_type="state")
        states.append(state)
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run.id).state_name == state.name  # type: ignore[union-attr]

    assert [s.name for s in states] == ["Completed", "Completed", "Completed", "Refused"]
    assert states[-1].is_failed()  # a refusal is not a success
    assert "already rerun 3 time(s), the budget is max_reruns=3" in (states[-1].message or "")
    fw = lp.get_fw_dict_by_id(fw_id)
    assert fw["state"] == st.FIZZLED
    assert len(fw["archived_launches"]) == 3
    assert len(_runs_since(rerun_deployment, since)) == 4  # one per fizzle, no more


def test_task_run_failed_alone_never_triggers(rerun_deployment: UUID) -> None:
    create_rerun_automation()
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(RERUN_AUTOMATION)
    assert automation.trigger.expect == {FIZZLED_EVENT}  # type: ignore[union-attr]
    assert "prefect.task-run.Failed" not in automation.trigger.expect  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--max-reruns", "0"], "the rerun budget must be an integer of at least 1, not 0"),
        (["--stacktrace-regex", "(unclosed"], "invalid stack-trace regex '(unclosed'"),
        (["--sweep-cron", "not a cron"], "invalid cron expression 'not a cron'"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    run_cli: Any, rerun_deployment: UUID, args: list[str], error: str
) -> None:
    result = run_cli(["automations", "create", *args], code=2)
    assert error in result.stderr
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name(RERUN_AUTOMATION) == []
        assert client.read_deployment_schedules(rerun_deployment) == []


def test_missing_rerun_deployment_is_refused(run_cli: Any) -> None:
    result = run_cli(["automations", "create"], code=2)
    assert "no deployment named 'rerun-fws'" in result.stderr
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name(RERUN_AUTOMATION) == []


def test_sweep_schedule_and_delete(run_cli: Any, rerun_deployment: UUID) -> None:
    run_cli(["automations", "create", "--sweep-cron", "0 * * * *", "--stacktrace-regex", "Memory"])
    with get_client(sync_client=True) as client:
        (sched,) = client.read_deployment_schedules(rerun_deployment)
    assert sched.slug == SWEEP_SLUG
    assert sched.schedule.cron == "0 * * * *"  # type: ignore[union-attr]
    assert sched.parameters == {
        "state": "FIZZLED",
        "only_fizzled": True,
        "max_reruns": 3,
        "stacktrace_regex": "Memory",
    }
    listed = json.loads(run_cli(["automations", "ls", "--json"]).stdout)
    assert sorted(a["kind"] for a in listed) == ["automation", "sweep"]

    deleted = json.loads(run_cli(["automations", "delete", "--json"]).stdout)["deleted"]
    assert deleted == [f"automation {RERUN_AUTOMATION}", f"sweep {SWEEP_SLUG}"]
    assert json.loads(run_cli(["automations", "delete", "--json"]).stdout)["deleted"] == []
    assert json.loads(run_cli(["automations", "ls", "--json"]).stdout) == []
