"""Environment settings of prefect-fireworks, declared with pydantic-settings.

Every setting is an environment variable with the prefix ``PREFECT_INTEGRATIONS_FIREWORKS_``
(the prefix Prefect's own integrations use for theirs):

- ``..._MONGODB_URI``: a ``mongodb://`` or ``mongodb+srv://`` URI; when set it is used instead of
  the embedded server.
- ``..._DATABASE``: the LaunchPad database name (default ``fireworks``).
- ``..._LAUNCHPAD_FILE``: a FireWorks ``my_launchpad.yaml``.
- ``..._HOME``: home of the embedded server, which keeps its data in ``<HOME>/mongodb`` and its
  state file and log in HOME (default ``~/.prefect-fireworks``).
- ``..._LAUNCH_ROOT``: where launch directories are created (default: the current directory, as
  in FireWorks, except inside the temporary folder Prefect runs a worker's flow run in, which is
  refused: set this variable on workers).
- ``..._EXCEPT_DETAILS_ON_RERUN``: FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` (default off).
- ``..._PRINT_FW_JSON``: FireWorks' ``PRINT_FW_JSON``: write ``FW.json`` into every launch
  directory (default on; ``false`` turns it off).
- ``..._MONGODB_RETRY_SECONDS``: how long transient MongoDB errors are retried (default 30, 0:
  no retry); read only when a command fails (`prefect_fireworks.store.retry`).
- ``..._QUERY_TIMEOUT_MS``: time limit of a user's ``-q``/``-n``/``-s``/``-lm`` queries, sent as
  ``maxTimeMS`` (default 30000, 0: none).

Empty variables count as unset. The environment is read again on every call of `get_settings`,
so a changed environment (or a monkeypatched one in tests) takes effect immediately. A new
setting is one more field of `Settings` (with a ``description``); nothing else to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "PREFECT_INTEGRATIONS_FIREWORKS_"
"""Prefix of every environment variable read by `get_settings`."""

DEFAULT_DATABASE = "fireworks"
DEFAULT_HOME = "~/.prefect-fireworks"
DEFAULT_MONGODB_RETRY_SECONDS = 30.0
DEFAULT_QUERY_TIMEOUT_MS = 30000
MONGODB_URI_SCHEMES = ("mongodb://", "mongodb+srv://")


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def is_mongodb_uri(value: str) -> bool:
    """Whether ``value`` is a ``mongodb://`` or ``mongodb+srv://`` URI."""
    return value.startswith(MONGODB_URI_SCHEMES)


def check_mongodb_uri(value: str, what: str = "the URI") -> str:
    """``value`` itself, or ``ValueError("<what> must start with mongodb:// or mongodb+srv://")``."""
    if not is_mongodb_uri(value):
        raise ValueError(f"{what} must start with mongodb:// or mongodb+srv://")
    return value


class Settings(BaseSettings):
    """The prefect-fireworks settings, read from the environment.

    Example:
        ```python
        from prefect_fireworks.core.settings import get_settings

        settings = get_settings()
        print(settings.database, settings.home)
        ```
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    mongodb_uri: str | None = Field(
        default=None, description="MongoDB URI to use instead of the embedded server."
    )
    database: str = Field(default=DEFAULT_DATABASE, description="Name of the LaunchPad database.")
    launchpad_file: Path | None = Field(
        default=None, description="Path of a FireWorks my_launchpad.yaml."
    )
    home: Path = Field(
        default=Path(DEFAULT_HOME), description="Home directory of the embedded server."
    )
    launch_root: Path | None = Field(
        default=None,
        description="Directory under which launch directories are created (None: the current "
        "working directory, as in FireWorks).",
    )
    except_details_on_rerun: bool = Field(
        default=False,
        description="FireWorks' EXCEPT_DETAILS_ON_RERUN: a rerun copies a FIZZLED Firework's "
        "exception details into spec._exception_details.",
    )
    print_fw_json: bool = Field(
        default=True,
        description="FireWorks' PRINT_FW_JSON: the Rocket writes the Firework as FW.json into "
        "every launch directory before its Firetasks run.",
    )
    mongodb_retry_seconds: float = Field(
        default=DEFAULT_MONGODB_RETRY_SECONDS,
        description="Seconds transient MongoDB errors are retried before a command gives up "
        "(0: no retry).",
    )
    query_timeout_ms: int = Field(
        default=DEFAULT_QUERY_TIMEOUT_MS,
        description="Time limit in ms of the queries of a user's selection (-q, -n, -s, -lm), "
        "sent as maxTimeMS (0: none).",
    )

    @field_validator("mongodb_uri", "database", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_mongodb_uri(value, f"{ENV_PREFIX}MONGODB_URI")

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        value = DEFAULT_DATABASE if value is None else value
        if isinstance(value, str) and (any(c in value for c in '/\\. "$') or len(value) > 63):
            raise ValueError(f"{ENV_PREFIX}DATABASE is not a valid database name: {value!r}")
        return value

    @field_validator("mongodb_retry_seconds", mode="before")
    @classmethod
    def _retry_seconds(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return DEFAULT_MONGODB_RETRY_SECONDS
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seconds = float("nan")
        if not (seconds >= 0 and seconds != float("inf")):
            raise ValueError(
                f"{ENV_PREFIX}MONGODB_RETRY_SECONDS must be a number of seconds >= 0, not {value!r}"
            )
        return seconds

    @field_validator("query_timeout_ms", mode="before")
    @classmethod
    def _query_timeout(cls, value: object) -> object:
        raw = value.strip() if isinstance(value, str) else value
        if raw == "":
            return DEFAULT_QUERY_TIMEOUT_MS
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**10:
            return raw
        if not (isinstance(raw, str) and re.fullmatch(r"[0-9]{1,10}", raw)):
            raise ValueError(
                f"{ENV_PREFIX}QUERY_TIMEOUT_MS must be a whole number of milliseconds, not {raw!r}"
            )
        return int(raw)

    @field_validator("home", "launchpad_file", "launch_root")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def embedded_data_dir(self) -> Path:
        """Directory holding the embedded server's data files."""
        return self.home / "mongodb"


class _MappingSettings(Settings):
    """`Settings` from given values only (no environment): for ``get_settings(env=...)``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or from ``env`` instead of ``os.environ``).

    Raises:
        SettingsError: ``MONGODB_URI`` is not a ``mongodb://`` or ``mongodb+srv://`` URI,
            ``DATABASE`` is not a valid database name, or a value has the wrong type.
    """
    try:
        if env is None:
            return Settings()
        values: dict[str, Any] = {
            k[len(ENV_PREFIX) :].lower(): v
            for k, v in env.items()
            if k.startswith(ENV_PREFIX) and v.strip()
        }
        return _MappingSettings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("msg", exc)).removeprefix("Value error, ")
        if not msg.startswith(ENV_PREFIX):
            field = ".".join(str(p) for p in err.get("loc", ()))
            msg = f"{ENV_PREFIX}{field.upper()}: {msg}"
        raise SettingsError(msg) from None
