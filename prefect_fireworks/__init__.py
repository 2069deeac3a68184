"""prefect-fireworks: FireWorks LaunchPads on Prefect, with FireWorks' precise rerun semantics.

Public names are imported on first use, so ``lpad`` and the LaunchPad do not pay for importing
Prefect (about a second) unless they need it. ``prefect block register -m prefect_fireworks``
still finds the block (module ``__dir__`` lists it), and the ``prefect.collections`` entry point
names ``prefect_fireworks.blocks`` so Prefect registers the block type on start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "FireworksLaunchPad": "prefect_fireworks.blocks",
    "FileDeleteTask": "prefect_fireworks.firetasks",
    "FileTransferTask": "prefect_fireworks.firetasks",
    "FileWriteTask": "prefect_fireworks.firetasks",
    "Firetask": "prefect_fireworks.firetasks",
    "PyTask": "prefect_fireworks.firetasks",
    "ScriptTask": "prefect_fireworks.firetasks",
    "LaunchPad": "prefect_fireworks.launchpad",
    "FWAction": "prefect_fireworks.models",
    "Firework": "prefect_fireworks.models",
    "Launch": "prefect_fireworks.models",
    "Workflow": "prefect_fireworks.models",
}

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prefect_fireworks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
