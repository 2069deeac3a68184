"""prefect-fireworks: FireWorks LaunchPads on Prefect, with FireWorks' precise rerun semantics."""

from __future__ import annotations

from prefect_fireworks.blocks import FireworksLaunchPad
from prefect_fireworks.firetasks import (
    FileDeleteTask,
    FileTransferTask,
    FileWriteTask,
    Firetask,
    PyTask,
    ScriptTask,
)
from prefect_fireworks.launchpad import LaunchPad
from prefect_fireworks.models import Firework, FWAction, Launch, Workflow

__version__ = "0.1.0"

__all__ = [
    "FWAction",
    "FileDeleteTask",
    "FileTransferTask",
    "FileWriteTask",
    "Firetask",
    "Firework",
    "FireworksLaunchPad",
    "Launch",
    "LaunchPad",
    "PyTask",
    "ScriptTask",
    "Workflow",
    "__version__",
]
