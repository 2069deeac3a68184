"""`lpad deploy --pool` and `flows/prefect.yaml` create the four deployments (read back)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL

from prefect_fireworks.prefect.deployments import DETECT_LOSTRUNS_CRON

pytestmark = pytest.mark.usefixtures("prefect_harness")

FLOWS = Path(__file__).resolve().parents[2] / "flows"
NAMES = ["run-workflow", "rapidfire", "rerun-fws", "detect-lostruns"]


@pytest.fixture(autouse=True)
def _cleanup() -> Any:
    """Leave no deployment behind: other harness tests need rerun-fws to be absent."""
    yield
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        for d in client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=NAMES))
        ):
            client.delete_deployment(d.id)


def _deployments(pool: str) -> dict[str, Any]:
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
        )
    return {d.name: d for d in found}


def test_lpad_deploy_pool_creates_the_four_deployments(run_cli: Any) -> None:
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    out = json.loads(run_cli(["--block", "my-lp", "deploy", "--pool", pool, "--json"]).stdout)
    assert sorted(out) == sorted(NAMES)
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(pool).type == "process"
    found = _deployments(pool)
    assert sorted(found) == sorted(NAMES)
    assert found["rerun-fws"].entrypoint == "prefect_fireworks.prefect.rerun_flow.rerun_fws"
    assert found["run-workflow"].parameters == {"launchpad": "my-lp"}
    assert found["detect-lostruns"].parameters == {"launchpad": "my-lp", "fizzle": True}
    (sched,) = found["detect-lostruns"].schedules
    assert sched.schedule.cron == DETECT_LOSTRUNS_CRON  # type: ignore[union-attr]
    schema = found["rerun-fws"].parameter_openapi_schema or {}
    assert {"fw_ids", "state", "query", "launches_mode", "task_level", "launch_ids"} <= set(
        schema["properties"]
    )
    # Again: the same four, updated in place.
    run_cli(["deploy", "--pool", pool])
    assert sorted(_deployments(pool)) == sorted(NAMES)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["deploy"], "give exactly one of --serve or --pool NAME"),
        (["deploy", "--serve", "--pool", "p"], "give exactly one of --serve or --pool NAME"),
        (["deploy", "--pool", "p", "--lostruns-cron", "nope"], "invalid cron expression 'nope'"),
    ],
)
def test_lpad_deploy_bad_options(run_cli: Any, args: list[str], error: str) -> None:
    assert error in run_cli(args, code=2).stderr


def test_prefect_yaml_deploys_all_four() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool("fireworks")
        except Exception:
            client.create_work_pool(WorkPoolCreate(name="fireworks", type="process"))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=FLOWS,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = _deployments("fireworks")
    assert sorted(found) == sorted(NAMES)
    assert found["rerun-fws"].entrypoint == "rerun_fws.py:rerun_fws"
    assert found["detect-lostruns"].parameters == {"fizzle": True}
    (sched,) = found["detect-lostruns"].schedules
    assert sched.schedule.cron == "*/30 * * * *"  # type: ignore[union-attr]
