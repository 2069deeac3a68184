"""Launch directories: where they go, how they are made, and what is put in them first.

A launch runs in ``launcher_<UTC time>`` under the launch root (`resolve_launch_root`), or in
``spec._launch_dir``. The working directory is process-global, so a Rocket holds `CWD_LOCK`
while it runs there (`working_dir`). Before the Firetasks run, the files of ``spec._files_in``
are copied in (`copy_files_in`, FireWorks' compression-aware copy).
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from prefect_fireworks.runtime import recovery

__all__ = [
    "CWD_LOCK",
    "LAUNCHER_PREFIX",
    "copy_files_in",
    "make_launch_dir",
    "prefect_temporary_folder",
    "prepare_launch_dir",
    "resolve_launch_root",
    "working_dir",
]

#: Launch directories are ``launcher_<UTC time>`` as in FireWorks' rapidfire.
LAUNCHER_PREFIX = "launcher_"
_BLOCK_FORMAT = "%Y-%m-%d-%H-%M-%S-%f"
#: Held by a Rocket while it runs in its launch directory (the cwd is process-global).
CWD_LOCK = threading.RLock()

#: Folders Prefect creates for the code of one flow run and deletes after it: a process
#: worker's ``TemporaryDirectory(suffix="prefect")`` and a runner's ``runner_storage``.
_PREFECT_RUNNER_STORAGE = "runner_storage"


def prefect_temporary_folder(path: str | os.PathLike[str]) -> Path | None:
    """The temporary code folder of a Prefect flow run that ``path`` lies in, if any.

    A process worker runs each flow run in ``<tmp>/tmp…prefect`` and a served or pulled
    deployment in ``<tmp>/runner_storage/…``; Prefect deletes both when the run ends, so launch
    directories there would be lost.
    """
    tmp = Path(os.path.realpath(tempfile.gettempdir()))
    p = Path(os.path.realpath(os.fspath(path)))
    try:
        rel = p.relative_to(tmp)
    except ValueError:
        return None
    if not rel.parts:
        return None
    first = rel.parts[0]
    if first == _PREFECT_RUNNER_STORAGE or (first.startswith("tmp") and first.endswith("prefect")):
        return tmp / first
    return None


def resolve_launch_root(launch_root: str | os.PathLike[str] | None = None) -> Path:
    """Where launch directories go: the argument, ``..._LAUNCH_ROOT``, else the cwd.

    A missing root is created. A root inside the temporary code folder of a Prefect flow run
    (a deployment run on a worker, whose cwd Prefect deletes after the run) is refused.

    Raises:
        ValueError: the root exists and is not a directory, cannot be created, or is inside a
            Prefect temporary code folder.
    """
    from prefect_fireworks.core.settings import get_settings

    root = Path(launch_root) if launch_root is not None else get_settings().launch_root
    root = Path(os.path.abspath(os.path.expanduser(str(root or os.getcwd()))))
    temporary = prefect_temporary_folder(root)
    if temporary is not None:
        raise ValueError(
            f"launch root {root} is inside {temporary}, the temporary folder Prefect deletes "
            "after the flow run: set PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT on the worker "
            "(or in the deployment's job variables), the FireworksLaunchPad block's "
            "launch_root, or the flow's launch_root parameter"
        )
    if root.exists() and not root.is_dir():
        raise ValueError(f"launch root {root} exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create launch root {root}: {exc.strerror or exc}") from exc
    return root


def make_launch_dir(root: str | os.PathLike[str]) -> str:
    """Create a fresh ``launcher_<YYYY-MM-DD-HH-MM-SS-ffffff>`` directory under ``root``.

    ``mkdir`` is the claim: concurrent processes that pick the same microsecond retry.
    """
    for _ in range(100):
        stamp = datetime.now(timezone.utc).strftime(_BLOCK_FORMAT)
        path = os.path.join(os.fspath(root), LAUNCHER_PREFIX + stamp)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            time.sleep(0.001)
    raise RuntimeError(f"could not create a launch directory under {root}")


@contextmanager
def working_dir(path: str) -> Iterator[None]:
    """Run in ``path`` (holding `CWD_LOCK`), then back to the previous directory."""
    with CWD_LOCK:
        old = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(old)


def prepare_launch_dir(spec: Mapping[str, Any], recorded: str | None) -> tuple[str, bool]:
    """The directory a launch runs in, created if missing.

    ``spec._launch_dir`` (environment variables expanded, made absolute) wins over the
    directory recorded in the launch (``recorded``; the cwd when there is none).

    Returns:
        ``(launch directory, whether it differs from the recorded one)``.

    Raises:
        FileNotFoundError: a ``--previous-dir`` rerun's directory does not exist here.
    """
    launch_dir = recorded or os.getcwd()
    changed = False
    if spec.get("_launch_dir"):
        wanted = os.path.abspath(os.path.expandvars(str(spec["_launch_dir"])))
        recovery.require_previous_dir(spec, wanted)
        changed = wanted != launch_dir
        launch_dir = wanted
    try:
        os.makedirs(launch_dir, exist_ok=True)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    return launch_dir, changed


def copy_files_in(spec: Mapping[str, Any]) -> None:
    """Copy ``spec._files_prev[key]`` to ``spec._files_in[key]`` for every key in both.

    FireWorks copies through a compression-aware open on both ends: a .gz source lands
    decompressed at a destination without .gz, and a destination ending in .gz is compressed.
    Relative destinations are relative to the current (launch) directory.
    """
    files_in = spec.get("_files_in") or {}
    prev = spec.get("_files_prev") or {}
    for key in set(files_in).intersection(prev):
        with _zopen(prev[key], "rb") as fin, _zopen(files_in[key], "wb") as fout:
            shutil.copyfileobj(fin, fout)


def _zopen(path: str, mode: str) -> IO[bytes]:
    # The compression-aware open FireWorks uses (monty's zopen): by the file's extension.
    ext = os.path.splitext(path)[1].lower()
    if ext == ".bz2":
        return bz2.open(path, mode)  # type: ignore[return-value]
    if ext in (".gz", ".z"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    if ext in (".xz", ".lzma"):
        return lzma.open(path, mode)  # type: ignore[return-value]
    return open(path, mode)  # type: ignore[return-value]
