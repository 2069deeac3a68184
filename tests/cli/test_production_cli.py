"""lpad's Prefect commands on the production path, under Prefect's test harness:
serving never takes over pool deployments, `automations create` says the whole configuration,
and a bad --wf-id is refused before any flow run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from prefect_fireworks.prefect import deployments as dep
from prefect_fireworks.prefect.automations import (
    RERUN_AUTOMATION,
    SWEEP_SLUG,
    delete_automations,
    list_automations,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def pool_deployments() -> Iterator[dict[str, Any]]:
    """The four deployments on a process work pool (as `lpad deploy --pool` makes them)."""
    ids = dep.deploy("prod-cli-pool", detect_lostruns_cron=None)
    try:
        yield ids
    finally:
        delete_automations(RERUN_AUTOMATION)
        with get_client(sync_client=True) as client:
            for deployment_id in ids.values():
                client.delete_deployment(deployment_id)


def test_serve_refuses_to_take_over_pool_deployments(
    pool_deployments: dict[str, Any], run_cli: Any
) -> None:
    res = run_cli(["deploy", "--serve", "--lostruns-cron", ""], code=2)
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("Error: deployments already run on a work pool: run-workflow")
    assert "'prod-cli-pool'" in line
    with get_client(sync_client=True) as client:
        for deployment_id in pool_deployments.values():
            found = client.read_deployment(deployment_id)
            assert found.work_pool_name == "prod-cli-pool"
            assert not found.paused


def test_automations_create_again_without_sweep_removes_the_old_sweep(
    pool_deployments: dict[str, Any], run_cli: Any
) -> None:
    run_cli(["automations", "create", "--stacktrace-regex", "Old", "--sweep-cron", "0 * * * *"])
    kinds = {a.kind: a for a in list_automations()}
    assert kinds["sweep"].parameters["stacktrace_regex"] == "Old"

    res = run_cli(["automations", "create", "--stacktrace-regex", "New"])
    assert f"Removed the earlier sweep {SWEEP_SLUG!r}" in res.stderr + res.stdout
    found = list_automations()
    assert [a.kind for a in found] == ["automation"]
    assert found[0].parameters["stacktrace_regex"] == "New"

    run_cli(["automations", "create", "--stacktrace-regex", "New"])  # again: nothing to remove
    assert [a.kind for a in list_automations()] == ["automation"]


def test_rapidfire_unknown_wf_id_is_refused_before_any_flow_run(lp: Any, run_cli: Any) -> None:
    def rapidfire_runs() -> int:
        with get_client(sync_client=True) as client:
            return len(
                client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="")),
                )
            )

    before = rapidfire_runs()
    res = run_cli(["rapidfire", "--wf-id", "999", "--sleep", "0"], code=2)
    assert res.stderr.strip().splitlines() == ["Error: FW with id: 999 not found!"]
    assert rapidfire_runs() == before
