"""One real `prefect server start` for the whole session, shared by the end-to-end test modules.

Starting a real Prefect server takes tens of seconds on a busy 2-core machine; the modules that
need one (test_deployments_e2e.py, test_rerun_approval.py, test_many_machines.py) share this one.
Each module still starts from an empty server, as if it had its own: before the first test of a
module, every automation, flow run, deployment, flow and work pool left by an earlier module is
deleted (an automation left behind would react to the next module's fizzled Fireworks, and
test_deployments_e2e reads every flow run of the server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import stop_process_group

from prefect_fireworks.store.embedded import free_port

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 300  # seconds; slow on a busy 2-core machine


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"prefect server not healthy after {timeout}s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def _real_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on a free loopback port (one per session, or per xdist worker)."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    url = f"http://{HOST}:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    port = url.rsplit(":", 1)[1].split("/")[0]
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", port],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(url, proc, log, STARTUP_TIMEOUT)
        yield env
    finally:
        stop_process_group(proc)


def _empty_server(url: str) -> None:
    """Delete what earlier modules left: automations, flow runs, deployments, flows, pools."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        for automation in client.read_automations():
            client.delete_automation(automation.id)
        while runs := client.read_flow_runs(limit=200):
            for run in runs:
                client.delete_flow_run(run.id)
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)
        for flow in client.read_flows():
            client.delete_flow(flow.id)
        for pool in client.read_work_pools():
            client.delete_work_pool(pool.name)


@pytest.fixture(scope="module")
def prefect_server(_real_prefect_server: dict[str, str]) -> dict[str, str]:
    """The session's real Prefect server, emptied for this module; the environment to reach it."""
    _empty_server(_real_prefect_server["PREFECT_API_URL"])
    return _real_prefect_server


@pytest.fixture(scope="module")
def prefect_api(prefect_server: dict[str, str]) -> str:
    """The API URL of the session's real Prefect server, emptied for this module."""
    return prefect_server["PREFECT_API_URL"]
