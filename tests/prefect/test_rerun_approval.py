"""Approval in the Prefect UI, end to end on a real `prefect server start`.

The deployments are served by `lpad deploy --serve`. A `rerun-fws` run over more than
`approval_threshold` Fireworks publishes its plan and pauses with a `RerunApproval` input; the test
answers as the UI would, through the Prefect API (`resume_flow_run(id, run_input=...)`): reject
(nothing written), approve (exactly the plan is applied, the approver recorded), and approve a plan
whose Fireworks changed meanwhile (refused, nothing written).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fwhelpers import start_fw
from processes import stop_process_group as _stop

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

pytestmark = pytest.mark.server

TRACE = 'Traceback (most recent call last):\n  File "/w/t.py", line 1, in run\nValueError: bad 7\n'


@pytest.fixture
def served(prefect_server: dict[str, str], lp: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`lpad deploy --serve` against the server and `lp`'s database; stopped before the server."""
    env = {
        **prefect_server,
        **{k: v for k, v in os.environ.items() if k.startswith("PREFECT_INTEGRATIONS_FIREWORKS")},
        "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(tmp_path / "launches"),
    }
    (tmp_path / "launches").mkdir()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("lpad")),
                "deploy",
                "--serve",
                "--lostruns-cron",
                "",
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield {**env, "SERVE_LOG": str(log)}
    finally:
        _stop(proc)


def _fizzle(lp: Any, fw_id: int) -> None:
    fw, lid = start_fw(lp, fw_id)
    assert fw is not None
    lp.complete_launch(lid, {"stored_data": {"_exception": {"_stacktrace": TRACE}}}, st.FIZZLED)


def _snapshot(lp: Any) -> Any:
    return sorted(
        (
            d["fw_id"],
            d["state"],
            d.get("launches"),
            d.get("archived_launches"),
            len(d.get("rerun_history") or []),
        )
        for d in lp.fireworks.find({}, {"_id": 0})
    )


def _wait(client: Any, run_id: Any, log: Path, want: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        state = run.state
        if state is not None and (
            (want == "paused" and state.is_paused()) or (want == "final" and state.is_final())
        ):
            return run
        assert time.monotonic() < deadline, (state, log.read_text()[-4000:])
        time.sleep(0.5)


def _token(client: Any, run_id: Any) -> str:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    found = {m for a in arts for m in re.findall(r"sha256:[0-9a-f]{64}", str(a.data))}
    assert len(found) == 1, [a.key for a in arts]
    return found.pop()


def test_approval_reject_approve_and_changed_plan(served: dict[str, str], lp: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    fws = [Firework([], name=f"f{i}", fw_id=i) for i in (1, 2, 3)]
    ids = sorted(lp.add_wf(Workflow(fws, name="three roots")).values())
    for i in ids:
        _fizzle(lp, i)
    log = Path(served["SERVE_LOG"])
    params = {
        "state": "FIZZLED",
        "approval_threshold": 2,
        "approval_poll_seconds": 1,
        "run_after": False,
        "reason": "nightly cleanup",
    }

    with (
        temporary_settings({PREFECT_API_URL: served["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        deadline = time.monotonic() + 90
        while not client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["rerun-fws"]))
        ):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

        # 1. reject: nothing written
        before = _snapshot(lp)
        run = run_deployment("rerun-fws/rerun-fws", parameters=params, timeout=0)
        _wait(client, run.id, log, "paused")
        assert _snapshot(lp) == before
        token = _token(client, run.id)
        client.resume_flow_run(run.id, run_input={"approve": False, "token": token})
        done = _wait(client, run.id, log, "final")
        assert done.state.name == "Rejected", done.state
        assert _snapshot(lp) == before

        # 2. approve: exactly the plan, the approver recorded
        run = run_deployment("rerun-fws/rerun-fws", parameters=params, timeout=0)
        _wait(client, run.id, log, "paused")
        token = _token(client, run.id)
        client.resume_flow_run(
            run.id,
            run_input={"approve": True, "token": token, "approver": "alice", "comment": "ok"},
        )
        done = _wait(client, run.id, log, "final")
        assert done.state.is_completed() and done.state.name == "Completed", done.state
        for i in ids:
            fw = lp.get_fw_dict_by_id(i)
            assert fw["state"] == st.READY
            (entry,) = fw["rerun_history"]
            assert entry["plan_token"] == token
            assert entry["reason"] == "nightly cleanup"
            actor = entry["actor"]
            assert actor["approved_by"] == "alice"
            assert actor["flow_run_id"] == str(run.id)
            assert actor["deployment"] == "rerun-fws"

        # 3. the plan changes while it waits: approving it is refused, nothing written
        for i in ids:
            _fizzle(lp, i)
        run = run_deployment("rerun-fws/rerun-fws", parameters=params, timeout=0)
        _wait(client, run.id, log, "paused")
        token = _token(client, run.id)
        _fizzle_again = ids[0]
        from prefect_fireworks.ops.rerun import rerun_fws

        rerun_fws(lp, [_fizzle_again])  # someone reruns one by hand meanwhile
        before = _snapshot(lp)
        client.resume_flow_run(run.id, run_input={"approve": True, "token": token})
        done = _wait(client, run.id, log, "final")
        assert done.state.name == "PlanChanged", done.state
        assert f"Firework {ids[0]} is READY, was FIZZLED" in (done.state.message or "")
        assert _snapshot(lp) == before
