"""``ScriptTask``: shell commands, run as children that die with the worker (FireWorks' ScriptTask).

How a command runs (its own process group, a parent-death signal, output echoed as it comes
while its tail is kept) is `prefect_fireworks.runtime.firetasks.child`.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Mapping
from typing import IO, Any

from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime.firetasks.base import Firetask
from prefect_fireworks.runtime.firetasks.child import (
    SCRIPT_OUTPUT_TAIL_CHARS,
    SCRIPT_OUTPUT_TAIL_LINES,
    OutputTail,
    run_teed,
)

__all__ = [
    "SCRIPT_OUTPUT_TAIL_CHARS",
    "SCRIPT_OUTPUT_TAIL_LINES",
    "ScriptTask",
    "ScriptTaskError",
]


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
        stdin_key = p.get("stdin_key")
        stdin_data = None
        if stdin_key:
            value = fw_spec[stdin_key]
            stdin_data = value if isinstance(value, bytes) else str(value).encode()
        # Output that is not captured still goes to this process's stdout/stderr as it comes;
        # its tail is kept so that a failure can say why (ScriptTaskError).
        out_tail, err_tail = OutputTail(), OutputTail()
        returncodes, stdout, stderr = _run_commands(p, stdin_data, out_tail, err_tail)
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


def _run_commands(
    p: Mapping[str, Any],
    stdin_data: bytes | None,
    out_tail: OutputTail,
    err_tail: OutputTail,
) -> tuple[list[int], str, str]:
    """Run the commands of ``p["script"]`` until one fails.

    Returns:
        The return codes, and the captured stdout and stderr (empty unless captured).
    """
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
    out_parts: list[str] = []
    err_parts: list[str] = []
    returncodes: list[int] = []
    with _open_or_none(p.get("stdin_file")) as stdin_f:
        for cmd in commands:
            rc, out_b, err_b = run_teed(
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
    return returncodes, "".join(out_parts), "".join(err_parts)


@contextlib.contextmanager
def _open_or_none(path: str | None) -> Iterator[IO[bytes] | None]:
    if not path:
        yield None
        return
    with open(path, "rb") as f:
        yield f
