"""Firetasks of the ``fireworks`` package: loaded by FireWorks' ``load_object``, run wrapped.

`FireWorksTaskAdapter` runs a FireWorks Firetask this package does not implement, and
`to_fwaction` turns the FireWorks ``FWAction`` such a task (or a PyTask function) returns into
ours.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime.firetasks.base import Firetask, UnknownFiretaskError

__all__ = ["FireWorksTaskAdapter", "to_fwaction"]


def _fireworks_load_object(d: Mapping[str, Any]) -> Any:
    """FireWorks' own Firetask for ``d`` (raises UnknownFiretaskError when it has none)."""
    name = d.get("_fw_name")
    try:
        from fireworks.utilities.fw_serializers import load_object
    except ImportError:
        raise UnknownFiretaskError(name) from None
    from fireworks.utilities.exceptions import FWSerializationError

    try:
        # load_object imports every module of FireWorks' USER_PACKAGES (its test modules too,
        # which warn about pytest marks) and rewrites the dict's _fw_name: quiet, on a copy.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = load_object(dict(d))
    except FWSerializationError:
        raise UnknownFiretaskError(name) from None
    except ImportError as exc:
        raise UnknownFiretaskError(name, str(exc)) from exc
    except Exception as exc:
        raise ValueError(f"cannot load Firetask {name!r}: {exc}") from exc
    if not callable(getattr(obj, "run_task", None)):
        raise UnknownFiretaskError(name, f"FireWorks' {type(obj).__name__} is not a Firetask")
    return obj


def to_fwaction(result: Any) -> FWAction | dict[str, Any] | None:
    """Our `FWAction` for a FireWorks ``FWAction``; anything else is returned unchanged."""
    cls = type(result)
    if cls.__name__ == "FWAction" and cls.__module__.startswith("fireworks."):
        return FWAction.from_dict(result.to_dict())
    return result


class FireWorksTaskAdapter(Firetask, register=False):
    """Runs a Firetask of the ``fireworks`` package (one this package does not implement).

    Its parameters are the FireWorks task's; `to_dict` gives back the original ``_fw_name``, and
    `run_task` returns the FireWorks ``FWAction`` converted to ours (additions and detours as
    workflow dicts). A fresh FireWorks task is built for every run, so parameter edits apply and
    FireWorks tasks that modify themselves while running leave this object unchanged.

    Example:
        ```python
        task = load_firetask({"_fw_name": "JoinDictTask", "inputs": ["a"], "output": "b"})
        task.run_task({"a": 1}).update_spec  # {"b": {"a": 1}}
        ```
    """

    def __init__(self, fw_task: Any, /, *, fw_name: str | None = None) -> None:
        """Wrap a FireWorks Firetask object.

        Args:
            fw_task: an instance of a FireWorks ``FiretaskBase`` subclass.
            fw_name: the ``_fw_name`` to store (default: the task's own ``fw_name``).
        """
        name = fw_name or getattr(fw_task, "fw_name", None) or type(fw_task).__name__
        self._name = str(name)
        self._fireworks_class: type[Any] = type(fw_task)
        super().__init__(dict(fw_task))

    @property
    def fw_name(self) -> str:
        """The wrapped task's ``_fw_name``."""
        return self._name

    @property
    def fireworks_class(self) -> type[Any]:
        """The FireWorks Firetask class that runs."""
        return self._fireworks_class

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction | dict[str, Any] | None:
        """Run the FireWorks task on ``fw_spec`` and convert its FWAction."""
        params = {**self, "_fw_name": self.fw_name}
        cls = self._fireworks_class
        fw_task = cls.from_dict(params) if hasattr(cls, "from_dict") else cls(params)
        for attr in ("fw_id", "launchpad", "fworker"):
            if attr in self.__dict__:
                setattr(fw_task, attr, self.__dict__[attr])
        return to_fwaction(fw_task.run_task(fw_spec))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FireWorksTaskAdapter:
        """Resolve ``d`` with FireWorks' ``load_object`` and wrap the result.

        Raises:
            UnknownFiretaskError: FireWorks is not installed or knows no such ``_fw_name``.
        """
        return cls(_fireworks_load_object(d), fw_name=d.get("_fw_name"))

    def __reduce__(self) -> tuple[Any, ...]:
        from prefect_fireworks.runtime.firetasks.loading import load_firetask

        return (load_firetask, (self.to_dict(),))
