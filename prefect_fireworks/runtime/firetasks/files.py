"""File Firetasks: ``FileWriteTask``, ``FileDeleteTask``, ``FileTransferTask`` (FireWorks')."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

from prefect_fireworks.runtime.firetasks.base import Firetask

__all__ = ["FileDeleteTask", "FileTransferTask", "FileWriteTask"]


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
