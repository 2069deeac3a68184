"""Stored task dicts back into Firetasks: by ``_fw_name``, ``{{module.ClassName}}``, or FireWorks.

`load_firetask` looks the ``_fw_name`` up in the registry first (so FireWorks' ``ScriptTask``
& co. load this package's versions), imports ``{{module.ClassName}}``, and hands any other name
to FireWorks' ``load_object`` (`FireWorksTaskAdapter`). `validate_tasks` checks a whole
``spec._tasks`` list the same way before anything is written.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from prefect_fireworks.runtime.firetasks.base import (
    _REGISTRY,
    FW_NAME_ALIASES,
    Firetask,
    UnknownFiretaskError,
    _qualname,
)
from prefect_fireworks.runtime.firetasks.fireworks_compat import FireWorksTaskAdapter

__all__ = ["load_firetask", "validate_tasks"]


def load_firetask(d: Mapping[str, Any]) -> Firetask:
    """Turn a stored task dict into a Firetask object.

    The ``_fw_name`` is looked up in the registry first (so FireWorks' ``ScriptTask`` & co. load
    this package's versions); ``{{module.ClassName}}`` imports the class; any other name is
    resolved by FireWorks' ``load_object`` when the ``fireworks`` package is installed, and the
    FireWorks task is wrapped in a `FireWorksTaskAdapter`.

    Args:
        d: the task dict, with ``_fw_name``. A `Firetask` is returned as is.

    Returns:
        The Firetask.

    Raises:
        UnknownFiretaskError: no class is known for the ``_fw_name`` (or it has none).
        ValueError: the class rejected the parameters (e.g. a missing required parameter).

    Example:
        ```python
        task = load_firetask({"_fw_name": "ScriptTask", "script": "echo hi"})
        assert isinstance(task, ScriptTask)
        ```
    """
    if isinstance(d, Firetask):
        return d
    if not isinstance(d, Mapping):
        raise ValueError(f"a Firetask must be a mapping with '_fw_name', not {type(d).__name__}")
    raw_name = d.get("_fw_name")
    if not isinstance(raw_name, str) or not raw_name:
        raise UnknownFiretaskError(raw_name, "the task dict has no '_fw_name'")
    name = FW_NAME_ALIASES.get(raw_name, raw_name)
    if name in _REGISTRY:
        return _instantiate(_REGISTRY[name], d, name)
    if name.startswith("{{") and name.endswith("}}"):
        return _instantiate(_import_class(name), d, name)
    return FireWorksTaskAdapter.from_dict(d)


def _instantiate(cls: type[Any], d: Mapping[str, Any], name: str) -> Firetask:
    if isinstance(cls, type) and issubclass(cls, Firetask):
        return cls.from_dict(d)
    if _is_fireworks_builtin(cls) and getattr(cls, "_fw_name", None) in _REGISTRY:
        # e.g. {{fireworks.user_objects.firetasks.script_task.ScriptTask}}: use our version.
        return _instantiate(_REGISTRY[cls._fw_name], d, cls._fw_name)
    if not callable(getattr(cls, "run_task", None)):
        raise UnknownFiretaskError(name, f"{_qualname(cls)} is not a Firetask (no run_task)")
    try:
        fw_task = cls.from_dict(dict(d)) if hasattr(cls, "from_dict") else cls(dict(d))
    except Exception as exc:
        raise ValueError(f"cannot load Firetask {name!r}: {exc}") from exc
    return FireWorksTaskAdapter(fw_task, fw_name=name)


def _is_fireworks_builtin(cls: type[Any]) -> bool:
    return cls.__module__.split(".")[0] == "fireworks"


def _import_class(name: str) -> type[Any]:
    path = name.strip("{} ")
    mod_name, _, cls_name = path.rpartition(".")
    if not mod_name:
        raise UnknownFiretaskError(name, "expected {{module.ClassName}}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UnknownFiretaskError(name, f"cannot import module {mod_name!r}: {exc}") from exc
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise UnknownFiretaskError(name, f"module {mod_name!r} has no class {cls_name!r}")
    return cls


def validate_tasks(spec_tasks: list[Any]) -> None:
    """Check that every task dict of a ``spec._tasks`` list can be loaded.

    Args:
        spec_tasks: the Firework's ``spec["_tasks"]``.

    Raises:
        UnknownFiretaskError: the first task whose ``_fw_name`` is unknown (the message starts
            with its position, e.g. ``_tasks[1]: unknown Firetask _fw_name 'Nope'``).
        ValueError: ``spec_tasks`` is not a list, or a task is not a mapping or has bad parameters.
    """
    if not isinstance(spec_tasks, list):
        raise ValueError(f"_tasks must be a list, not {type(spec_tasks).__name__}")
    for i, task in enumerate(spec_tasks):
        try:
            load_firetask(task)
        except UnknownFiretaskError as exc:
            err = UnknownFiretaskError(exc.fw_name)
            err.args = (f"_tasks[{i}]: {exc}",)
            raise err from exc
        except ValueError as exc:
            raise ValueError(f"_tasks[{i}]: {exc}") from exc
