"""Helpers for the crash tests: real ``lpad``/``rlaunch`` processes on the test's database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.store.intents import CRASH_ENV

BIN = Path(sys.executable).parent


@pytest.fixture
def cli_env(lp: Any, tmp_path: Path) -> dict[str, str]:
    """Environment of a subprocess on ``lp``'s database (no crash point set)."""
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    env["PREFECT_INTEGRATIONS_FIREWORKS_DATABASE"] = lp.name
    return env


@pytest.fixture
def spawn(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``lpad``/``rlaunch`` (``spawn("lpad", "rerun_fws", ..., crash_at=...)``,
    ``extra_env={...}`` added to its environment); every process still running at the end of the
    test is killed."""
    procs: list[subprocess.Popen] = []

    def start(
        prog: str,
        *args: str,
        crash_at: str | None = None,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
        **kw: Any,
    ) -> subprocess.Popen:
        env = {**cli_env, **(extra_env or {})}
        if crash_at:
            env[CRASH_ENV] = crash_at
        p = subprocess.Popen(
            [str(BIN / prog), *args],
            env=env,
            cwd=str(cwd or tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **kw,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _wait_for(cond: Callable[[], Any], timeout: float = 120, step: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(cond, timeout=120)``: poll until ``cond()`` is truthy (returns it) or fail."""
    return _wait_for
