"""Side-by-side tests with FireWorks 2.1.4.

FireWorks' ``load_object`` imports every module of its ``USER_PACKAGES`` to find a Firetask by
name, its own test modules included, which mark tests ``@pytest.mark.mongodb``: registered here
so that ``--strict-markers`` does not turn that import into a failure.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mongodb: used by FireWorks' own test modules")
