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

import abc
import builtins
import contextlib
import importlib
import inspect
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, ClassVar, TypeVar, overload

from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime import reaper

__all__ = [
    "FW_NAME_ALIASES",
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


# -- FireWorks interoperability ---------------------------------------------------------------


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
        return (load_firetask, (self.to_dict(),))


# -- built-in Firetasks -----------------------------------------------------------------------


class ScriptTask(Firetask):
    """Run shell commands (FireWorks' ``ScriptTask``).

    Parameters:
        script (str | list[str]): command(s), run one after the other until one fails.
        use_shell (bool): run through the shell (default True); otherwise each command is split
            with ``shlex``.
        shell_exe (str): the shell to use (e.g. ``/bin/bash``).
        stdin_file (str) / stdin_key (str): standard input from a file or from a spec key.
        stdout_file / stderr_file (str): append the captured output to these files.
        store_stdout / store_stderr (bool): keep the output in ``stored_data``.
        defuse_bad_rc (bool): a nonzero return code defuses the children instead of failing.
        fizzle_bad_rc (bool): a nonzero return code raises (default: ``not defuse_bad_rc``).
        use_global_spec (bool): read all these parameters from the Firework's spec instead.

    ``stored_data`` holds ``returncode`` (of the last command run), ``all_returncodes`` and,
    when stored, ``stdout``/``stderr`` (concatenated over the commands).

    Example:
        ```python
        ScriptTask(script="echo hello", store_stdout=True).run_task({}).stored_data
        # {"stdout": "hello\\n", "returncode": 0, "all_returncodes": [0]}
        ```
    """

    _fw_name = "ScriptTask"
    required_params = ["script"]

    @classmethod
    def from_str(cls, shell_cmd: str, parameters: Mapping[str, Any] | None = None) -> ScriptTask:
        """A ScriptTask running one shell command (FireWorks' ``ScriptTask.from_str``)."""
        return cls({**(parameters or {}), "script": [shell_cmd], "use_shell": True})

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        """Run the script(s).

        Raises:
            RuntimeError: a command failed and ``fizzle_bad_rc`` is in effect.
            ValueError: conflicting parameters (both stdin sources, or both defuse and fizzle).
        """
        p: Mapping[str, Any] = fw_spec if self.get("use_global_spec") else self
        if p.get("stdin_file") and p.get("stdin_key"):
            raise ValueError("ScriptTask cannot process both a key and file as the standard in!")
        defuse = bool(p.get("defuse_bad_rc"))
        fizzle = bool(p.get("fizzle_bad_rc", not defuse))
        if defuse and fizzle:
            raise ValueError("ScriptTask cannot both FIZZLE and DEFUSE a bad returncode!")
        use_shell = bool(p.get("use_shell", True))
        scripts = p["script"]
        if isinstance(scripts, str):
            scripts = [scripts]
        commands: list[Any] = [
            s if use_shell else (shlex.split(s) if isinstance(s, str) else [str(a) for a in s])
            for s in scripts
        ]
        capture_out = bool(p.get("store_stdout") or p.get("stdout_file"))
        capture_err = bool(p.get("store_stderr") or p.get("stderr_file"))
        stdin_key = p.get("stdin_key")
        stdin_data = None
        if stdin_key:
            value = fw_spec[stdin_key]
            stdin_data = value if isinstance(value, bytes) else str(value).encode()

        out_parts: list[str] = []
        err_parts: list[str] = []
        returncodes: list[int] = []
        # Output that is not captured still goes to this process's stdout/stderr as it comes;
        # its tail is kept so that a failure can say why (ScriptTaskError).
        out_tail, err_tail = _Tail(), _Tail()
        with _open_or_none(p.get("stdin_file")) as stdin_f:
            for cmd in commands:
                rc, out_b, err_b = _run_teed(
                    cmd,
                    use_shell,
                    p.get("shell_exe"),
                    stdin_data,
                    None if stdin_data is not None else stdin_f,
                    None if capture_out else out_tail,
                    None if capture_err else err_tail,
                )
                if capture_out:
                    out_parts.append(out_b.decode("utf-8", errors="replace"))
                    out_tail.feed(out_b)
                if capture_err:
                    err_parts.append(err_b.decode("utf-8", errors="replace"))
                    err_tail.feed(err_b)
                returncodes.append(rc)
                if rc != 0:
                    break
        stdout, stderr = "".join(out_parts), "".join(err_parts)
        if p.get("stdout_file"):
            with open(p["stdout_file"], "a+") as f:
                f.write(stdout)
        if p.get("stderr_file"):
            with open(p["stderr_file"], "a+") as f:
                f.write(stderr)

        output: dict[str, Any] = {}
        if p.get("store_stdout"):
            output["stdout"] = stdout
        if p.get("store_stderr"):
            output["stderr"] = stderr
        output["returncode"] = returncodes[-1] if returncodes else 0
        output["all_returncodes"] = returncodes
        failed = any(rc != 0 for rc in returncodes)
        if failed and defuse:
            return FWAction(stored_data=output, defuse_children=True)
        if failed and fizzle:
            raise ScriptTaskError(returncodes, out_tail.text(), err_tail.text())
        return FWAction(stored_data=output)


SCRIPT_OUTPUT_TAIL_CHARS = 4000
"""Characters of a failed ScriptTask's stdout and of its stderr (each) kept in its error."""
SCRIPT_OUTPUT_TAIL_LINES = 40
"""Lines of each kept at most."""


class ScriptTaskError(RuntimeError):
    """A ScriptTask command failed: its return codes and the end of its stdout and stderr.

    The message starts with FireWorks' ``ScriptTask fizzled! Return code: [...]`` and goes on
    with the tails, so the stack trace a FIZZLED launch stores
    (``action.stored_data._exception._stacktrace``) says why, and ``-lm`` queries and
    automations' ``stacktrace_regex`` match what the script printed. `to_dict` (stored as the
    launch's ``_exception._details``) holds them separately.
    """

    def __init__(self, returncodes: list[int], stdout_tail: str = "", stderr_tail: str = ""):
        self.returncodes = list(returncodes)
        self.stdout_tail = stdout_tail
        self.stderr_tail = stderr_tail
        parts = [f"ScriptTask fizzled! Return code: {self.returncodes}"]
        for name, tail in (("stdout", stdout_tail), ("stderr", stderr_tail)):
            if tail.strip():
                parts.append(f"--- end of {name} ---\n{tail.rstrip()}")
        super().__init__("\n".join(parts))

    def to_dict(self) -> dict[str, Any]:
        """The return codes and output tails (FireWorks stores this as ``_details``)."""
        return {
            "returncodes": self.returncodes,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.returncodes, self.stdout_tail, self.stderr_tail))


class _Tail:
    """The last bytes of a stream (bounded)."""

    def __init__(self, limit: int = 4 * SCRIPT_OUTPUT_TAIL_CHARS) -> None:
        self.limit = limit
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        text = bytes(self.data[-self.limit :]).decode("utf-8", errors="replace")
        lines = text.splitlines()[-SCRIPT_OUTPUT_TAIL_LINES:]
        return "\n".join(lines)[-SCRIPT_OUTPUT_TAIL_CHARS:]


def _pump(src: IO[bytes], fd: int | None, tail: _Tail | None, whole: list[bytes]) -> None:
    # Copy a child's pipe: to this process's fd (and a tail) as it comes, or whole.
    for chunk in iter(lambda: src.read1(65536), b""):  # type: ignore[attr-defined]
        if tail is None:
            whole.append(chunk)
            continue
        tail.feed(chunk)
        view = memoryview(chunk)
        while fd is not None and view:
            try:
                view = view[os.write(fd, view) :]
            except OSError:
                fd = None  # nowhere to echo to: keep only the tail
    src.close()


def _run_teed(
    cmd: Any,
    shell: bool,
    executable: str | None,
    input_data: bytes | None,
    stdin: IO[bytes] | None,
    out_tail: _Tail | None,
    err_tail: _Tail | None,
) -> tuple[int, bytes, bytes]:
    """Run one command; a stream with a tail is echoed to fd 1/2 as it comes, else returned."""
    import threading

    proc = subprocess.Popen(
        cmd,
        shell=shell,
        executable=executable,
        stdin=subprocess.PIPE if input_data is not None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Its own process group (a signal to the worker's group does not reach it twice, and
        # the group is killed as one below), and on Linux a parent-death signal.
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    outs: list[bytes] = []
    errs: list[bytes] = []
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, 1, out_tail, outs), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, 2, err_tail, errs), daemon=True),
    ]
    for t in pumps:
        t.start()
    if input_data is not None and proc.stdin is not None:
        try:
            proc.stdin.write(input_data)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
    try:
        with reaper.watching(proc.pid):  # grandchildren too, if the worker is killed
            rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        for t in pumps:
            t.join()
    return rc, b"".join(outs), b"".join(errs)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child started by `_run_teed` and everything in its process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


_PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when the worker dies (even by SIGKILL).

    ``prctl`` is looked up before the fork, so the child only makes one C call between fork and
    exec. ``None`` where there is no ``prctl`` (not Linux): the child then outlives a killed
    worker.
    """
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        import ctypes

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
        _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _prctl.restype = ctypes.c_int
    prctl = _prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0)
        # The worker may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@contextlib.contextmanager
def _open_or_none(path: str | None) -> Iterator[IO[bytes] | None]:
    if not path:
        yield None
        return
    with open(path, "rb") as f:
        yield f


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


class FileWriteTask(Firetask):
    """Write files (FireWorks' ``FileWriteTask``).

    Parameters:
        files_to_write (list[dict]): ``{"filename": ..., "contents": ...}`` records.
        dest (str): directory to write in (default: the current directory).

    Example:
        ```python
        FileWriteTask(files_to_write=[{"filename": "in.txt", "contents": "42"}]).run_task({})
        ```
    """

    _fw_name = "FileWriteTask"
    required_params = ["files_to_write"]
    optional_params = ["dest"]

    def run_task(self, fw_spec: dict[str, Any]) -> None:
        """Write every file (overwriting)."""
        dest = self.get("dest") or os.getcwd()
        for record in self["files_to_write"]:
            with open(os.path.join(dest, record["filename"]), "w") as f:
                f.write(record["contents"])


class FileDeleteTask(Firetask):
    """Delete files (FireWorks' ``FileDeleteTask``).

    Parameters:
        files_to_delete (list[str]): file names.
        dest (str): directory they are in (default: the current directory).
        ignore_errors (bool): ignore files that cannot be deleted (default True).

    Example:
        ```python
        FileDeleteTask(files_to_delete=["scratch.dat"]).run_task({})
        ```
    """

    _fw_name = "FileDeleteTask"
    required_params = ["files_to_delete"]
    optional_params = ["dest", "ignore_errors"]

    def run_task(self, fw_spec: dict[str, Any]) -> None:
        """Delete the files.

        Raises:
            OSError: a file could not be deleted and ``ignore_errors`` is False.
        """
        dest = self.get("dest") or os.getcwd()
        ignore_errors = self.get("ignore_errors", True)
        for name in self["files_to_delete"]:
            try:
                os.remove(os.path.join(dest, name))
            except OSError:
                if not ignore_errors:
                    raise


_TRANSFER_MODES: dict[str, Callable[[str, str], Any]] = {
    "move": shutil.move,
    "mv": shutil.move,
    "copy": shutil.copy,
    "cp": shutil.copy,
    "copy2": shutil.copy2,
    "copytree": shutil.copytree,
    "copyfile": shutil.copyfile,
}


class FileTransferTask(Firetask):
    """Copy or move local files (FireWorks' ``FileTransferTask``, without ``rtransfer``).

    Parameters:
        mode (str): ``move``/``mv``, ``copy``/``cp``, ``copy2``, ``copytree`` or ``copyfile``.
        files (list): source paths, or ``{"src": ..., "dest": ...}`` records.
        dest (str): destination for sources given without their own ``dest``.
        ignore_errors (bool): carry on past failed transfers (default False).
        max_retry (int): retries of a failed transfer (default 0); retry_delay (s, default 10).
        shell_interpret (bool): expand ``~`` and ``$VARS`` and make paths absolute (default True).

    Example:
        ```python
        FileTransferTask(mode="copy", files=["out.dat"], dest="/archive").run_task({})
        ```
    """

    _fw_name = "FileTransferTask"
    required_params = ["mode", "files"]
    optional_params = [
        "dest",
        "server",
        "user",
        "key_filename",
        "max_retry",
        "retry_delay",
        "ignore_errors",
        "shell_interpret",
    ]

    def run_task(self, fw_spec: dict[str, Any]) -> None:
        """Transfer every file.

        Raises:
            ValueError: an unknown or remote mode, or a transfer failed (after the retries) and
                ``ignore_errors`` is False.
        """
        mode = self.get("mode", "move")
        if mode == "rtransfer":
            raise ValueError("FileTransferTask: mode 'rtransfer' is not supported")
        if mode not in _TRANSFER_MODES:
            raise ValueError(
                f"FileTransferTask: unknown mode {mode!r} (one of {', '.join(_TRANSFER_MODES)})"
            )
        transfer = _TRANSFER_MODES[mode]
        interpret = self.get("shell_interpret", True)
        ignore_errors = self.get("ignore_errors", False)
        max_retry = int(self.get("max_retry", 0))
        retry_delay = float(self.get("retry_delay", 10))

        def path(p: str) -> str:
            return os.path.abspath(os.path.expanduser(os.path.expandvars(p))) if interpret else p

        for entry in self["files"]:
            src_raw = entry["src"] if isinstance(entry, Mapping) else entry
            if isinstance(entry, Mapping) and "dest" in entry:
                dest_raw = entry["dest"]
            elif "dest" in self:
                dest_raw = self["dest"]
            else:
                raise ValueError(f"FileTransferTask: no dest for {src_raw!r}")
            src, dest = path(src_raw), path(dest_raw)
            for attempt in range(max_retry + 1):
                try:
                    transfer(src, dest)
                    break
                except Exception as exc:
                    if attempt < max_retry:
                        time.sleep(retry_delay)
                        continue
                    if not ignore_errors:
                        raise ValueError(
                            f"FileTransferTask: error performing {mode} from {src} to {dest}: {exc}"
                        ) from exc
