"""Shared fixtures: one embedded MongoDB-wire server for the whole test session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from prefect_fireworks.store import embedded

# Set before any test module imports Prefect (none of the imports above does).
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# Subprocesses (lpad, prefect CLI) must never write into the user's ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
# No background local Prefect server from tests (lpad rapidfire starts one when no Prefect API is
# configured); tests that want it set this back (tests/prefect/test_local_server.py).
os.environ["PREFECT_INTEGRATIONS_FIREWORKS_LOCAL_PREFECT_SERVER"] = "false"

MONGODB_URI_ENV = "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers ``-n auto`` (in pyproject's addopts) starts.

    The whole suite, or a directory of it: 2 workers (at most 4 on a larger machine). The suite
    waits on servers, subprocesses and flow runs more than it computes, so on 2 cores two test
    files at a time finish sooner. Each worker has its own session fixtures (SecantusDB server,
    Prefect harness, real Prefect server), each on a free port in its own temporary folder.
    Single test files, or ``-s`` (output to the terminal), run in-process as without xdist.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides (0: in-process).
    """
    from pathlib import Path

    if "PYTEST_XDIST_AUTO_NUM_WORKERS" in os.environ:
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    if config.getoption("capture") == "no":
        return 0
    if any(Path(arg.split("::", 1)[0]).is_file() for arg in config.args):
        return 0
    return max(2, min(4, os.cpu_count() or 2))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests (marked ``server`` or ``reliability``) first, each file kept whole.

    xdist hands out files in this order: a slow file started last would leave one worker
    running it alone at the end.
    """
    slow = {
        item.path
        for item in items
        if item.get_closest_marker("server") or item.get_closest_marker("reliability")
    }
    items.sort(key=lambda item: item.path not in slow)  # stable: order within a file unchanged


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never touch the user's ~/.prefect-fireworks: the embedded server's home is temporary."""
    home = tmp_path_factory.mktemp("fireworks-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_INTEGRATIONS_FIREWORKS_HOME", str(home))
        yield
    embedded.stop(home=home)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.ServerInfo]:
    """One SecantusDB server for the session; its URI is exported for subprocesses too."""
    home = tmp_path_factory.mktemp("mongo-server")
    info = embedded.start(home=home)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(MONGODB_URI_ENV, info.uri)
            yield info
    finally:
        embedded.stop(home=home)


@pytest.fixture
def mongo_uri(mongo_server: embedded.ServerInfo) -> str:
    """URI of the session's server."""
    return mongo_server.uri


@pytest.fixture
def db_name() -> str:
    """A database name unique to the test."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongo_client(mongo_uri: str) -> Iterator[pymongo.MongoClient[dict[str, Any]]]:
    """A pymongo client of the session's server, closed after the test."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def lp(
    mongo_uri: str, db_name: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A LaunchPad on a fresh database of the session's server.

    ``PREFECT_INTEGRATIONS_FIREWORKS_DATABASE`` is set too, so ``lpad`` (in-process or as a
    subprocess) and the flows use the same database. After the test, ``lpad admin check`` must
    find no violation (tests that break invariants on purpose are marked ``no_admin_check``).
    """
    from prefect_fireworks.runtime.launchpad import LaunchPad

    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_DATABASE", db_name)
    launchpad = LaunchPad.from_uri(mongo_uri, name=db_name)
    launchpad.reset(None, require_password=False)
    try:
        yield launchpad
        if request.node.get_closest_marker("no_admin_check") is None:
            from prefect_fireworks.ops.check import check

            found = check(launchpad).violations
            assert not found, "admin check after the test: " + "; ".join(
                f"{v.check}: {v.message}" for v in found
            )
    finally:
        launchpad.client.drop_database(db_name)
        launchpad.close()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's test harness (a temporary API server) for tests that run flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def run_cli(lp: Any) -> Any:
    """Run ``lpad`` in-process against ``lp``'s database: ``run_cli(["get_fws"], code=0)``."""
    from typer.testing import CliRunner

    from prefect_fireworks.cli import app

    runner = CliRunner()

    def run(args: list[str], code: int | None = 0, input: str | None = None) -> Any:
        result = runner.invoke(app, args, input=input, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (
                f"lpad {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    return run


@pytest.fixture
def gods(lp: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``lp`` holding FireWorks' 14-Firework "Greek gods" test DAG (tests/fwhelpers.py)."""
    from fwhelpers import greek_gods

    monkeypatch.chdir(tmp_path)
    lp.add_wf(greek_gods())
    return lp
