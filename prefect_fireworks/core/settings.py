"""Environment settings of prefect-fireworks.

Every setting is an environment variable with the prefix ``PREFECT_INTEGRATIONS_FIREWORKS_``:

- ``..._MONGODB_URI``: a ``mongodb://`` or ``mongodb+srv://`` URI; when set it is used instead of
  the embedded server.
- ``..._DATABASE``: the LaunchPad database name (default ``fireworks``).
- ``..._LAUNCHPAD_FILE``: a FireWorks ``my_launchpad.yaml``.
- ``..._HOME``: home of the embedded server, which keeps its data in ``<HOME>/mongodb`` and its
  state file and log in HOME (default ``~/.prefect-fireworks``).
- ``..._LAUNCH_ROOT``: where launch directories are created (default: the current directory, as
  in FireWorks).

The environment is read again on every call of `get_settings`, so a changed environment (or a
monkeypatched one in tests) takes effect immediately.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "PREFECT_INTEGRATIONS_FIREWORKS_"
"""Prefix of every environment variable read by `get_settings`."""

DEFAULT_DATABASE = "fireworks"
DEFAULT_HOME = "~/.prefect-fireworks"
MONGODB_URI_SCHEMES = ("mongodb://", "mongodb+srv://")


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """The prefect-fireworks settings, read from the environment.

    Attributes:
        mongodb_uri: MongoDB URI to use instead of the embedded server, if any.
        database: Name of the LaunchPad database.
        launchpad_file: Path of a FireWorks ``my_launchpad.yaml``, if any.
        home: Home directory of the embedded server.
        launch_root: Directory under which launch directories are created; ``None`` means the
            current working directory, as in FireWorks.
    """

    mongodb_uri: str | None = None
    database: str = DEFAULT_DATABASE
    launchpad_file: Path | None = None
    home: Path = field(default_factory=lambda: Path(DEFAULT_HOME).expanduser())
    launch_root: Path | None = None

    @property
    def embedded_data_dir(self) -> Path:
        """Directory holding the embedded server's data files."""
        return self.home / "mongodb"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(ENV_PREFIX + name, "").strip()
    return value or None


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value is not None else None


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment.

    Empty variables count as unset.

    Args:
        env: Mapping to read instead of ``os.environ``.

    Returns:
        A frozen `Settings`.

    Raises:
        SettingsError: ``MONGODB_URI`` is not a ``mongodb://`` or ``mongodb+srv://`` URI, or
            ``DATABASE`` is not a valid database name.

    Example:
        ```python
        from prefect_fireworks.core.settings import get_settings

        settings = get_settings()
        print(settings.database, settings.home)
        ```
    """
    env = os.environ if env is None else env
    uri = _get(env, "MONGODB_URI")
    if uri is not None and not uri.startswith(MONGODB_URI_SCHEMES):
        raise SettingsError(f"{ENV_PREFIX}MONGODB_URI must start with mongodb:// or mongodb+srv://")
    database = _get(env, "DATABASE") or DEFAULT_DATABASE
    if any(c in database for c in '/\\. "$') or len(database) > 63:
        raise SettingsError(f"{ENV_PREFIX}DATABASE is not a valid database name: {database!r}")
    home = _path(_get(env, "HOME")) or Path(DEFAULT_HOME).expanduser()
    return Settings(
        mongodb_uri=uri,
        database=database,
        launchpad_file=_path(_get(env, "LAUNCHPAD_FILE")),
        home=home,
        launch_root=_path(_get(env, "LAUNCH_ROOT")),
    )
