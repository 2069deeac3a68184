"""``PyTask``: call a Python function (FireWorks' PyTask)."""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable
from typing import Any, ClassVar

from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime.firetasks.base import Firetask
from prefect_fireworks.runtime.firetasks.fireworks_compat import to_fwaction

__all__ = ["PyTask"]


def _import_callable(path: str) -> Callable[..., Any]:
    """``module.func``, ``module.Class.method`` or a builtin name, as a callable."""
    parts = path.split(".")
    if len(parts) == 1:
        obj = getattr(builtins, path, None)
        if obj is None:
            raise ImportError(f"PyTask: cannot import function {path!r}: not a builtin")
        return obj  # type: ignore[no-any-return]
    error: Exception | None = None
    for i in range(len(parts) - 1, 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" means: try a shorter one.
            if exc.name is not None and not (
                mod_name == exc.name or mod_name.startswith(exc.name + ".")
            ):
                raise ImportError(f"PyTask: cannot import function {path!r}: {exc}") from exc
            error = error or exc
            continue
        except Exception as exc:
            raise ImportError(f"PyTask: cannot import function {path!r}: {exc}") from exc
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ImportError(f"PyTask: cannot import function {path!r}: {exc}") from exc
        if not callable(obj):
            raise ImportError(f"PyTask: cannot import function {path!r}: it is not callable")
        return obj  # type: ignore[no-any-return]
    raise ImportError(f"PyTask: cannot import function {path!r}: {error}")


class PyTask(Firetask):
    """Call a Python function (FireWorks' ``PyTask``).

    Parameters:
        func (str): ``"module.function"``, ``"module.Class.method"`` or a builtin (``"print"``).
        args (list): positional arguments.
        kwargs (dict): keyword arguments.
        auto_kwargs (bool): pass every other parameter not starting with ``_`` as a keyword.
        stored_data_varname (str): store the result as ``stored_data[stored_data_varname]``.
        inputs (list[str]): spec keys whose values are appended to ``args``.
        outputs (list[str]): one key: ``update_spec[key] = result``; several keys: the result
            (a list or tuple of as many values) is spread over them.
        chunk_number (int): set by FireWorks' ForeachTask; with one output key the result is
            ``_push``-ed (each element of a list result) through ``mod_spec`` instead.

    A function returning an `FWAction` (ours or FireWorks') makes that the task's action.

    Example:
        ```python
        PyTask(func="math.sqrt", args=[16], outputs=["root"]).run_task({}).update_spec
        # {"root": 4.0}
        ```
    """

    _fw_name = "PyTask"
    required_params = ["func"]
    other_params: ClassVar[tuple[str, ...]] = (
        "args",
        "kwargs",
        "auto_kwargs",
        "stored_data_varname",
        "inputs",
        "outputs",
        "chunk_number",
    )

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction | None:
        """Call the function and turn its result into an FWAction (or None).

        Raises:
            ImportError: ``func`` cannot be imported.
            KeyError: an ``inputs`` key is not in the spec.
            ValueError: ``outputs`` lists several keys but the result does not have that many
                values.
        """
        func = _import_callable(self["func"])
        args = list(self.get("args") or [])
        for key in _as_key_list(self.get("inputs"), "inputs"):
            if key not in fw_spec:
                raise KeyError(f"PyTask: input {key!r} is not in the spec")
            args.append(fw_spec[key])
        if self.get("auto_kwargs"):
            skip = {*(self.required_params or ()), *self.other_params}
            kwargs = {k: v for k, v in self.items() if not k.startswith("_") and k not in skip}
        else:
            kwargs = dict(self.get("kwargs") or {})

        result = func(*args, **kwargs)

        converted = to_fwaction(result)
        if isinstance(converted, FWAction):
            return converted
        action: dict[str, Any] = {}
        outputs = _as_key_list(self.get("outputs"), "outputs")
        if len(outputs) == 1:
            if self.get("chunk_number") is None:
                action["update_spec"] = {outputs[0]: result}
            else:
                values = result if isinstance(result, (list, tuple, set)) else [result]
                action["mod_spec"] = [{"_push": {outputs[0]: v}} for v in values]
        elif len(outputs) > 1:
            if not isinstance(result, (list, tuple, set)) or len(result) != len(outputs):
                raise ValueError(
                    f"PyTask: {len(outputs)} outputs {outputs} need a list or tuple of "
                    f"{len(outputs)} values, got {result!r}"
                )
            action["update_spec"] = dict(zip(outputs, result, strict=True))
        if self.get("stored_data_varname"):
            action["stored_data"] = {self["stored_data_varname"]: result}
        return FWAction(**action) if action else None


def _as_key_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"PyTask: {what} must be a list of spec keys, not {value!r}")
    return list(value)
