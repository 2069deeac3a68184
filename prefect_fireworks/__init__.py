"""prefect-fireworks: FireWorks LaunchPads on Prefect, with FireWorks' precise rerun semantics."""

from __future__ import annotations

__version__ = "0.1.0"
