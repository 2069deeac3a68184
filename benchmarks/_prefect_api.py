"""Shared by the benchmarks: a Prefect API to run flows against."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """The configured ``PREFECT_API_URL``, else a temporary local server (the test harness)."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
