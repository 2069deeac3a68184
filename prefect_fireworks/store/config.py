"""Where the LaunchPad lives: FireWorks' ``my_launchpad.yaml`` settings and how they are resolved.

`LaunchPadConfig` holds the keys of a FireWorks ``my_launchpad.yaml`` (the LaunchPad keyword
arguments of FireWorks 2.x) and makes a `pymongo.MongoClient` from them. `resolve_config` picks
the configuration in this order:

1. an explicit LaunchPad file (``lpad -l FILE``);
2. ``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI`` (database from ``..._DATABASE``);
3. ``PREFECT_INTEGRATIONS_FIREWORKS_LAUNCHPAD_FILE``;
4. the embedded server (`prefect_fireworks.store.embedded`), started on demand.

Unlike FireWorks, no ``my_launchpad.yaml`` is picked up from the current directory, so the same
command always talks to the same database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from prefect_fireworks.core.safe_yaml import safe_load
from prefect_fireworks.core.settings import MONGODB_URI_SCHEMES, SettingsError, get_settings
from prefect_fireworks.store import embedded

if TYPE_CHECKING:
    from collections.abc import Callable

    from pymongo import MongoClient

DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000
MONGO_SOCKET_TIMEOUT_MS = 300000
"""FireWorks' default ``socketTimeoutMS`` for host/port connections."""

LAUNCHPAD_KEYS = (
    "host",
    "port",
    "name",
    "username",
    "password",
    "logdir",
    "strm_lvl",
    "user_indices",
    "wf_user_indices",
    "authsource",
    "uri_mode",
    "mongoclient_kwargs",
)
"""The keys of a FireWorks ``my_launchpad.yaml``, in FireWorks' order."""

_MASK = "****"
_SENSITIVE_QUERY_WORDS = ("password", "secret", "token", "key")


class ConfigError(ValueError):
    """A LaunchPad configuration is unreadable, malformed or invalid (one-line message)."""


class ServerUnreachableError(RuntimeError):
    """The MongoDB server of a LaunchPad cannot be reached (or refuses the credentials)."""


def is_mongodb_uri(value: str) -> bool:
    """Whether ``value`` is a ``mongodb://`` or ``mongodb+srv://`` URI."""
    return value.startswith(MONGODB_URI_SCHEMES)


def _split_uri(uri: str) -> tuple[str, str, str, str]:
    """Split a MongoDB URI into scheme (with ``://``), netloc, path (with ``/``) and query."""
    scheme, _, rest = uri.partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    path, _, query = tail.partition("?")
    return f"{scheme}://", netloc, path, query


def uri_database(uri: str) -> str | None:
    """Return the database named in the path of a MongoDB URI, if any."""
    path = _split_uri(uri)[2].strip("/")
    return unquote(path) or None


def redact_uri(uri: str) -> str:
    """Return ``uri`` with its password and secret-looking options masked, for display.

    Example:
        ```python
        redact_uri("mongodb://me:s3cret@db.example.org/fw")  # 'mongodb://me:****@db.example.org/fw'
        ```
    """
    if not is_mongodb_uri(uri):
        return uri
    scheme, netloc, path, query = _split_uri(uri)
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{hosts}" if has_password else f"{user}@{hosts}"
    if query:
        params = [
            (k, _MASK if any(w in k.lower() for w in _SENSITIVE_QUERY_WORDS) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = "&".join(f"{k}={quote(v, safe=':,/')}" for k, v in params)
    return f"{scheme}{netloc}{path}" + (f"?{query}" if query else "")


class LaunchPadConfig(BaseModel):
    """The connection settings of a LaunchPad, with the keys of FireWorks' ``my_launchpad.yaml``.

    The password is a `pydantic.SecretStr`: it never appears in ``repr``/``str``, and the host is
    shown with any password in it masked.

    Example:
        ```python
        from prefect_fireworks.store.config import LaunchPadConfig

        config = LaunchPadConfig.from_file("my_launchpad.yaml")
        client = config.client()
        launches = client[config.name].launches
        ```
    """

    # hide_input_in_errors: a validation error never echoes a value (it may be the password).
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    host: str = Field(
        default="localhost",
        description="Host name, or a full mongodb:// or mongodb+srv:// URI (always in uri_mode).",
    )
    port: int = Field(default=27017, description="TCP port (ignored when host is a URI).")
    name: str = Field(default="fireworks", description="Database name.")
    username: str | None = Field(default=None, description="User name.")
    password: SecretStr | None = Field(default=None, description="Password (kept secret).")
    authsource: str | None = Field(
        default=None,
        description="Authentication database; defaults to `name` when a username is given.",
    )
    uri_mode: bool = Field(default=False, description="Whether `host` is a full MongoDB URI.")
    mongoclient_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for pymongo.MongoClient."
    )
    logdir: str | None = Field(default=None, description="FireWorks log directory.")
    strm_lvl: str = Field(default="INFO", description="FireWorks stream log level.")
    user_indices: list[str] = Field(
        default_factory=list, description="Extra indexed keys of the fireworks collection."
    )
    wf_user_indices: list[str] = Field(
        default_factory=list, description="Extra indexed keys of the workflows collection."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # FireWorks writes unset keys as null: null means "the default".
        data = {k: v for k, v in data.items() if v is not None}
        host = data.get("host")
        if isinstance(host, str) and (data.get("uri_mode") or is_mongodb_uri(host)):
            data.setdefault("name", uri_database(host) or "fireworks")
        elif data.get("username"):
            data.setdefault("authsource", data.get("name", "fireworks"))
        return data

    @model_validator(mode="after")
    def _check_uri_mode(self) -> LaunchPadConfig:
        if self.uri_mode and not is_mongodb_uri(self.host):
            raise ValueError("with uri_mode, host must be a mongodb:// or mongodb+srv:// URI")
        return self

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (redact_uri(value) if key == "host" else value)

    @property
    def is_uri(self) -> bool:
        """Whether `host` is a full MongoDB URI (``uri_mode``, or a host starting with a scheme)."""
        return self.uri_mode or is_mongodb_uri(self.host)

    @classmethod
    def from_file(cls, path: str | Path) -> LaunchPadConfig:
        """Read a FireWorks ``my_launchpad.yaml`` (or the same keys as JSON).

        Unknown keys are ignored, as FireWorks does.

        Args:
            path: The file.

        Raises:
            ConfigError: The file cannot be read, is not YAML/JSON, does not hold a mapping of
                LaunchPad keys, or a value is invalid.
        """
        path = Path(path).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read LaunchPad file {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else safe_load(text)
        except (ValueError, yaml.YAMLError, RecursionError) as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(f"malformed LaunchPad file {path}: {reason}") from None
        if not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise ConfigError(
                f"LaunchPad file {path} must hold a mapping of LaunchPad settings, not {kind}"
            )
        if not any(key in data for key in LAUNCHPAD_KEYS):
            raise ConfigError(
                f"LaunchPad file {path} has none of the LaunchPad keys "
                f"({', '.join(LAUNCHPAD_KEYS)})"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid LaunchPad file {path}: {_one_line(exc)}") from None

    @classmethod
    def from_uri(cls, uri: str, name: str | None = None, **kwargs: Any) -> LaunchPadConfig:
        """Make a configuration for a MongoDB URI (``uri_mode``).

        Args:
            uri: A ``mongodb://`` or ``mongodb+srv://`` URI.
            name: Database name; defaults to the database in the URI path, then ``fireworks``.
            **kwargs: Other LaunchPad keys (``mongoclient_kwargs``, ``user_indices``, ...).

        Raises:
            ConfigError: ``uri`` is not a MongoDB URI, or a keyword is invalid.
        """
        if not is_mongodb_uri(uri):
            raise ConfigError(
                f"not a MongoDB URI (mongodb:// or mongodb+srv://): {redact_uri(uri)}"
            )
        data = {**kwargs, "host": uri, "uri_mode": True}
        if name is not None:
            data["name"] = name
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid LaunchPad settings: {_one_line(exc)}") from None

    def to_dict(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """Return the settings as a FireWorks ``my_launchpad.yaml`` mapping.

        Args:
            reveal_secrets: Put the password (and a URI host) in clear. Only for writing files;
                otherwise both are masked.
        """
        data = self.model_dump(mode="json")  # SecretStr dumps masked
        if reveal_secrets:
            if self.password is not None:
                data["password"] = self.password.get_secret_value()
        else:
            data["host"] = redact_uri(self.host)
            if self.password is not None:
                data["password"] = _MASK
        return {key: data[key] for key in LAUNCHPAD_KEYS}

    def to_file(self, path: str | Path) -> Path:
        """Write the settings as a FireWorks ``my_launchpad.yaml``, readable by its owner only.

        Args:
            path: The file to write.

        Returns:
            The path written.
        """
        path = Path(path).expanduser()
        text = yaml.safe_dump(self.to_dict(reveal_secrets=True), sort_keys=False)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(text)
        return path

    def redacted_uri(self) -> str:
        """Return a URI for display: the password masked, and the database as its path."""
        if self.is_uri:
            return redact_uri(self.host)
        user = ""
        if self.username:
            user = quote(self.username, safe="") + (f":{_MASK}" if self.password else "") + "@"
        return f"mongodb://{user}{self.host}:{self.port}/{self.name}"

    def client_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments `client` gives `pymongo.MongoClient`, secrets included."""
        kwargs: dict[str, Any] = {}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.authsource is not None:
            kwargs["authSource"] = self.authsource
        options = {k.lower() for k in self.mongoclient_kwargs}
        if self.is_uri:
            options |= {k.lower() for k, _ in parse_qsl(_split_uri(self.host)[3])}
        else:
            kwargs["port"] = self.port
            kwargs["socketTimeoutMS"] = MONGO_SOCKET_TIMEOUT_MS
        if "serverselectiontimeoutms" not in options:
            kwargs["serverSelectionTimeoutMS"] = DEFAULT_SERVER_SELECTION_TIMEOUT_MS
        kwargs.update(self.mongoclient_kwargs)
        return kwargs

    def client(self) -> MongoClient[dict[str, Any]]:
        """Make a `pymongo.MongoClient` for these settings (it connects lazily).

        ``serverSelectionTimeoutMS`` is 5000 unless ``mongoclient_kwargs`` or the URI set it.
        The LaunchPad database is ``client[config.name]``.
        """
        from pymongo import MongoClient

        return MongoClient(self.host, **self.client_kwargs())


def _one_line(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = []
    for error in errors[:3]:
        loc = ".".join(str(x) for x in error["loc"])
        parts.append(f"{loc}: {error['msg']}" if loc else str(error["msg"]))
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts)


def resolve_config(
    launchpad_file: str | Path | None = None, *, start_embedded: bool = True
) -> LaunchPadConfig:
    """Find the LaunchPad configuration to use.

    Precedence (environment variables prefixed ``PREFECT_INTEGRATIONS_FIREWORKS_``):
    ``launchpad_file``; then ``MONGODB_URI`` (database ``DATABASE``); then ``LAUNCHPAD_FILE``;
    then the embedded server in ``HOME``.

    Args:
        launchpad_file: A FireWorks ``my_launchpad.yaml`` given explicitly.
        start_embedded: Start the embedded server when it is the one to use and is not running.
            When ``False`` and it is not running, `ServerUnreachableError` is raised.

    Returns:
        The configuration.

    Raises:
        ConfigError: A file or setting is invalid.
        ServerUnreachableError: The embedded server is needed, not running, and
            ``start_embedded`` is ``False``.
        prefect_fireworks.store.embedded.EmbeddedServerError: The embedded server is missing or does
            not start.

    Example:
        ```python
        from prefect_fireworks.store.config import check_connection, resolve_config

        config = resolve_config()
        client = config.client()
        check_connection(client)
        ```
    """
    if launchpad_file is not None:
        return LaunchPadConfig.from_file(launchpad_file)
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    if settings.mongodb_uri is not None:
        return LaunchPadConfig.from_uri(settings.mongodb_uri, name=settings.database)
    if settings.launchpad_file is not None:
        return LaunchPadConfig.from_file(settings.launchpad_file)
    if start_embedded:
        uri = embedded.ensure_running(settings.home)
    else:
        info = embedded.status(settings.home)
        if info is None:
            raise ServerUnreachableError(
                "no MongoDB is configured and the embedded server is not running "
                "(start it with `lpad server start`)"
            )
        uri = info.uri
    _EMBEDDED_HOMES[uri] = settings.home
    return LaunchPadConfig.from_uri(uri, name=settings.database)


# URIs of embedded servers this process resolved, with their home: a LaunchPad on one of them
# restarts the server when it finds it dead (see `embedded_reconnect_hook`).
_EMBEDDED_HOMES: dict[str, Path] = {}


def embedded_reconnect_hook(config: LaunchPadConfig | None) -> Callable[[], object] | None:
    """What to do before retrying an operation on ``config``'s server (store/retry.py).

    For the embedded server (resolved by `resolve_config` in this process): make sure it runs,
    restarting it, on the same port, if it died. ``None`` for any other server.
    """
    if config is None or not config.is_uri:
        return None
    home = _EMBEDDED_HOMES.get(config.host)
    if home is None:
        return None
    return lambda: embedded.ensure_running(home)


def _client_display_uri(client: MongoClient[Any]) -> str:
    seeds = client.topology_description.server_descriptions()
    hosts = ",".join(f"{host}:{port}" for host, port in seeds) or "?"
    return f"mongodb://{hosts}/"


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for cut in (", Timeout:", " (configured timeouts"):
        text = text.split(cut, 1)[0]
    return text


def check_connection(
    client: MongoClient[Any], timeout: float = 5.0, *, display_uri: str | None = None
) -> None:
    """Ping the server behind ``client``.

    Args:
        client: The client to check.
        timeout: Seconds allowed for server selection and the ping.
        display_uri: URI to name in the error (redacted); by default the client's hosts.

    Raises:
        ServerUnreachableError: "cannot reach MongoDB at <redacted uri>: <reason>".
    """
    import pymongo
    from pymongo.errors import PyMongoError

    try:
        with pymongo.timeout(timeout):
            client.admin.command("ping")
    except PyMongoError as exc:
        where = redact_uri(display_uri) if display_uri else _client_display_uri(client)
        raise ServerUnreachableError(f"cannot reach MongoDB at {where}: {_reason(exc)}") from exc
