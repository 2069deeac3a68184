"""Firetasks: the steps a Firework runs, their registry, and FireWorks' built-in Firetasks.

A Firetask is a dict of parameters with a ``run_task(fw_spec)`` method; it is stored in a
Firework's ``spec._tasks`` as that dict plus ``_fw_name``. `load_firetask` turns such a dict back
into an object: by ``_fw_name`` from the registry (every `Firetask` subclass registers itself),
from an explicit ``{{module.ClassName}}``, or, when the ``fireworks`` package is installed and the
name is not one of ours, through FireWorks' own ``load_object`` wrapped in `FireWorksTaskAdapter`.
FireWorks' documents naming ``ScriptTask``, ``PyTask``, ``FileWriteTask``, ``FileDeleteTask`` and
``FileTransferTask`` load this module's implementations.

All built-in Firetasks work in the current directory: the rocket changes into the launch
directory before it runs them.

Modules (everything is importable from this package, as before):

- `base`: the `Firetask` base class and the registry (`register_firetask`, ...);
- `loading`: `load_firetask` and `validate_tasks`;
- `fireworks_compat`: `FireWorksTaskAdapter` and `to_fwaction` (Firetasks of FireWorks);
- `script` (with `child`, how a command runs), `python`, `files`: the built-in Firetasks.

Importing any of them imports this package, which defines every built-in Firetask, so they are
all registered before any ``_fw_name`` is looked up.

Example:
    ```python
    from prefect_fireworks.runtime.firetasks import Firetask, load_firetask


    class AddTask(Firetask):
        required_params = ["a", "b"]

        def run_task(self, fw_spec):
            return {"stored_data": {"sum": self["a"] + self["b"]}}


    task = load_firetask({"_fw_name": "AddTask", "a": 1, "b": 2})
    assert task.run_task({}) == {"stored_data": {"sum": 3}}
    ```
"""

from __future__ import annotations

from prefect_fireworks.runtime.firetasks.base import (
    FW_NAME_ALIASES,
    Firetask,
    UnknownFiretaskError,
    get_firetask_class,
    register_firetask,
    registered_firetasks,
)
from prefect_fireworks.runtime.firetasks.files import (
    FileDeleteTask,
    FileTransferTask,
    FileWriteTask,
)
from prefect_fireworks.runtime.firetasks.fireworks_compat import FireWorksTaskAdapter, to_fwaction
from prefect_fireworks.runtime.firetasks.loading import load_firetask, validate_tasks
from prefect_fireworks.runtime.firetasks.python import PyTask
from prefect_fireworks.runtime.firetasks.script import (
    SCRIPT_OUTPUT_TAIL_CHARS,
    SCRIPT_OUTPUT_TAIL_LINES,
    ScriptTask,
    ScriptTaskError,
)

__all__ = [
    "FW_NAME_ALIASES",
    "SCRIPT_OUTPUT_TAIL_CHARS",
    "SCRIPT_OUTPUT_TAIL_LINES",
    "FileDeleteTask",
    "FileTransferTask",
    "FileWriteTask",
    "FireWorksTaskAdapter",
    "Firetask",
    "PyTask",
    "ScriptTask",
    "ScriptTaskError",
    "UnknownFiretaskError",
    "get_firetask_class",
    "load_firetask",
    "register_firetask",
    "registered_firetasks",
    "to_fwaction",
    "validate_tasks",
]
