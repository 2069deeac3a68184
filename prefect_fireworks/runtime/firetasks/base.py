"""The Firetask base class and the registry of Firetask classes by ``_fw_name``.

Every `Firetask` subclass registers itself under its ``_fw_name`` when its class statement
runs; `register_firetask` adds aliases (and FireWorks ``FiretaskBase`` subclasses).
`get_firetask_class` looks a name up, FireWorks' old names (`FW_NAME_ALIASES`) included.
Turning a stored task dict into an object is `prefect_fireworks.runtime.firetasks.loading`.
"""

from __future__ import annotations

import abc
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, overload

from prefect_fireworks.core.models import FWAction

__all__ = [
    "FW_NAME_ALIASES",
    "Firetask",
    "UnknownFiretaskError",
    "get_firetask_class",
    "register_firetask",
    "registered_firetasks",
]

FW_NAME_ALIASES: dict[str, str] = {
    "Script Task": "ScriptTask",
    "Transfer Task": "FileTransferTask",
    "Template Writer Task": "TemplateWriterTask",
}
"""Old ``_fw_name``s FireWorks still loads (its ``FW_NAME_UPDATES``), mapped to current names."""

_REGISTRY: dict[str, type[Any]] = {}

T = TypeVar("T", bound=type)


class UnknownFiretaskError(ValueError):
    """No Firetask class is known for a ``_fw_name``."""

    def __init__(self, fw_name: Any, reason: str | None = None) -> None:
        self.fw_name = fw_name
        msg = f"unknown Firetask _fw_name {fw_name!r}"
        super().__init__(f"{msg}: {reason}" if reason else msg)


class Firetask(dict[str, Any], metaclass=abc.ABCMeta):
    """Base class of Firetasks: a dict of parameters plus ``run_task`` (FireWorks' FiretaskBase).

    Subclasses register themselves under their ``_fw_name`` (the class name unless set), so a
    stored ``{"_fw_name": ..., **params}`` dict loads back with `load_firetask`. Pass
    ``register=False`` in the class statement to keep a subclass out of the registry.

    Attributes:
        _fw_name: the name stored in ``spec._tasks`` (defaults to the class name).
        required_params: parameters that must be given (checked on construction).
        optional_params: when not None, the only other keyword arguments allowed (FireWorks
            checks keyword arguments only, so stored dicts with extra keys still load).

    Example:
        ```python
        from prefect_fireworks import FWAction
        from prefect_fireworks.runtime.firetasks import Firetask


        class Greet(Firetask):
            _fw_name = "Greet"
            required_params = ["who"]

            def run_task(self, fw_spec):
                return FWAction(stored_data={"greeting": f"hello {self['who']}"})


        Greet(who="world").to_dict()  # {"who": "world", "_fw_name": "Greet"}
        ```
    """

    _fw_name: ClassVar[str] = "Firetask"
    required_params: ClassVar[Sequence[str] | None] = None
    optional_params: ClassVar[Sequence[str] | None] = None
    # Set by the Rocket before run_task, as FireWorks does: fw_id and launchpad (a
    # runtime.task_launchpad.TaskLaunchPad) with spec._add_launchpad_and_fw_id, fworker
    # with spec._add_fworker. Absent otherwise.
    fw_id: int
    launchpad: Any
    fworker: Any

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_fw_name" not in cls.__dict__:
            cls._fw_name = cls.__name__
        if register and not inspect.isabstract(cls):
            register_firetask(cls)

    def __new__(cls, *args: Any, **kwargs: Any) -> Firetask:
        # dict subclasses skip ABCMeta's abstract-method check; do it here.
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise TypeError(f"cannot instantiate abstract Firetask {cls.__name__} ({missing})")
        return super().__new__(cls)

    def __init__(self, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Build from a dict of parameters, keyword parameters, or both.

        Args:
            params: parameters (a stored task dict; its ``_fw_name`` is dropped).
            **kwargs: more parameters.

        Raises:
            ValueError: a required parameter is missing, or a keyword argument is not allowed.
        """
        super().__init__(params or {}, **kwargs)
        self.pop("_fw_name", None)
        missing = [k for k in self.required_params or () if k not in self]
        if missing:
            raise ValueError(
                f"{self.fw_name}: missing required parameter(s): {', '.join(map(repr, missing))}"
            )
        if self.optional_params is not None:
            allowed = [*(self.required_params or ()), *self.optional_params]
            unknown = [k for k in kwargs if k not in allowed and k != "_fw_name"]
            if unknown:
                raise ValueError(
                    f"{self.fw_name}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                    f"allowed: {', '.join(allowed)}"
                )

    @property
    def fw_name(self) -> str:
        """The ``_fw_name`` written to the database."""
        return type(self)._fw_name

    @abc.abstractmethod
    def run_task(self, fw_spec: dict[str, Any]) -> FWAction | dict[str, Any] | None:
        """Run the task.

        Args:
            fw_spec: the Firework's spec (with the updates of earlier tasks of the Firework).

        Returns:
            An `FWAction`, an action dict (`FWAction.from_dict` form), or None.
        """

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the parameters plus ``_fw_name`` (nested objects as dicts)."""
        d = {k: _serialize(v) for k, v in self.items()}
        d["_fw_name"] = self.fw_name
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Firetask:
        """Build from a stored task dict (``_fw_name`` is ignored)."""
        return cls(d)

    def __repr__(self) -> str:
        return f"<{self.fw_name}>:{dict(self)}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_dict, (self.to_dict(),))


def _serialize(value: Any) -> Any:
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return _serialize(value.to_dict())
    if isinstance(value, Mapping):
        return {k: _serialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    return value


# -- registry ---------------------------------------------------------------------------------


@overload
def register_firetask(cls: T, /, *, name: str | None = None) -> T: ...


@overload
def register_firetask(cls: None = None, /, *, name: str | None = None) -> Callable[[T], T]: ...


def register_firetask(cls: T | None = None, /, *, name: str | None = None) -> T | Callable[[T], T]:
    """Register a Firetask class under a ``_fw_name`` (its own unless ``name`` is given).

    `Firetask` subclasses register themselves; use this for another name (an alias), or to
    register a FireWorks ``FiretaskBase`` subclass, which then loads through
    `FireWorksTaskAdapter`. A name registered again points to the newer class (with a warning when
    it is a different class).

    Args:
        cls: the class; omit it to use ``register_firetask(name=...)`` as a decorator.
        name: the ``_fw_name`` to register under.

    Returns:
        The class (or a decorator returning it).

    Example:
        ```python
        @register_firetask(name="OldGreetName")
        class Greet(Firetask):
            def run_task(self, fw_spec):
                return None
        ```
    """

    def decorate(klass: T) -> T:
        key = name or getattr(klass, "_fw_name", None) or klass.__name__
        old = _REGISTRY.get(key)
        if old is not None and old is not klass and _qualname(old) != _qualname(klass):
            warnings.warn(
                f"Firetask _fw_name {key!r} now refers to {_qualname(klass)} "
                f"instead of {_qualname(old)}",
                stacklevel=3,
            )
        _REGISTRY[key] = klass
        return klass

    return decorate if cls is None else decorate(cls)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_firetasks() -> dict[str, type[Any]]:
    """A copy of the registry: ``_fw_name`` -> class."""
    return dict(_REGISTRY)


def get_firetask_class(fw_name: str) -> type[Any]:
    """The class registered under ``fw_name`` (FireWorks' old names accepted).

    Raises:
        UnknownFiretaskError: nothing is registered under that name.
    """
    name = FW_NAME_ALIASES.get(fw_name, fw_name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFiretaskError(fw_name) from None
