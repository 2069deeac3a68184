"""prefect-fireworks: FireWorks LaunchPads on Prefect, with FireWorks' precise rerun semantics.

Public names are imported on first use, so ``lpad`` and the LaunchPad do not pay for importing
Prefect (about a second) unless they need it. ``prefect block register -m prefect_fireworks``
still finds the block (module ``__dir__`` lists it), and the ``prefect.collections`` entry point
names ``prefect_fireworks.prefect.blocks`` so Prefect registers the block type on start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "FireworksLaunchPad": "prefect_fireworks.prefect.blocks",
    "FileDeleteTask": "prefect_fireworks.runtime.firetasks",
    "FileTransferTask": "prefect_fireworks.runtime.firetasks",
    "FileWriteTask": "prefect_fireworks.runtime.firetasks",
    "Firetask": "prefect_fireworks.runtime.firetasks",
    "PyTask": "prefect_fireworks.runtime.firetasks",
    "ScriptTask": "prefect_fireworks.runtime.firetasks",
    "LaunchPad": "prefect_fireworks.runtime.launchpad",
    "FWAction": "prefect_fireworks.core.models",
    "Firework": "prefect_fireworks.core.models",
    "Launch": "prefect_fireworks.core.models",
    "Workflow": "prefect_fireworks.core.models",
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
    from prefect_fireworks.core.models import Firework, FWAction, Launch, Workflow
    from prefect_fireworks.prefect.blocks import FireworksLaunchPad
    from prefect_fireworks.runtime.firetasks import (
        FileDeleteTask,
        FileTransferTask,
        FileWriteTask,
        Firetask,
        PyTask,
        ScriptTask,
    )
    from prefect_fireworks.runtime.launchpad import LaunchPad


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prefect_fireworks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
