"""Prefect blocks: where a LaunchPad lives, saved once and loaded by name anywhere.

`FireworksLaunchPad` holds the MongoDB connection of a LaunchPad (a URI, or host and port, or the
embedded server) with its credentials as secrets, and returns a connected
`LaunchPad`. Flows take the block's name as a parameter and ``lpad``
accepts ``--block NAME``; `load_launchpad` is the one function both use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from prefect.blocks.core import Block
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from prefect_fireworks.store.config import LaunchPadConfig
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["BlockNotFoundError", "FireworksLaunchPad", "block_launch_root", "load_launchpad"]


_SECRET_FIELDS = ("mongodb_uri", "password")


class _HiddenInput:
    """Stands for a secret given with the wrong type, so errors never show it."""

    def __repr__(self) -> str:
        return "'<hidden>'"


class BlockNotFoundError(ValueError):
    """No saved `FireworksLaunchPad` block has the requested name."""


class FireworksLaunchPad(Block):
    """A FireWorks LaunchPad in MongoDB: a URI, a host and port, or the embedded server.

    Give either ``mongodb_uri`` or ``host`` (with ``port``), or set ``embedded`` (also used when
    neither is given). The password and the URI are secrets: stored encrypted by Prefect and
    never printed. The block holds its connection once `get_launchpad` made one; use it as a
    context manager (or call `close`) to release it. It pickles without its connection.

    Example:
        Load a saved block and query its LaunchPad:
        ```python
        from prefect_fireworks import FireworksLaunchPad

        block = FireworksLaunchPad.load("BLOCK_NAME")
        with block:
            lp = block.get_launchpad()
            fizzled = lp.get_fw_ids({"state": "FIZZLED"})
        ```
    """

    # A validation error never echoes what was given: it may be the password or the URI.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "FireWorks LaunchPad"
    _block_type_slug = "fireworks-launchpad"
    _logo_url = "https://materialsproject.github.io/fireworks/_static/FW_logo.png"  # type: ignore[assignment]
    _documentation_url = "https://materialsproject.github.io/fireworks/"  # type: ignore[assignment]
    _description = (
        "The MongoDB LaunchPad of FireWorks Fireworks and Workflows run on Prefect: "
        "a MongoDB URI, a host and port, or the embedded server."
    )

    mongodb_uri: SecretStr | None = Field(
        default=None,
        title="MongoDB URI",
        description=(
            "A mongodb:// or mongodb+srv:// URI (may hold credentials, so it is kept secret); "
            "used instead of host and port."
        ),
    )
    host: str | None = Field(
        default=None,
        description="MongoDB host name, when no URI is given.",
    )
    port: int | None = Field(
        default=None, description="MongoDB TCP port, used with host (default 27017)."
    )
    database: str | None = Field(
        default=None,
        description=(
            "LaunchPad database name; by default the database in the URI path, else fireworks."
        ),
    )
    username: str | None = Field(default=None, description="MongoDB user name.")
    password: SecretStr | None = Field(default=None, description="MongoDB password.")
    authsource: str | None = Field(
        default=None,
        description="Authentication database; by default the LaunchPad database when a "
        "username is given.",
    )
    tls: bool | None = Field(
        default=None,
        title="TLS",
        description="Connect with TLS; by default as the URI says (on for mongodb+srv://).",
    )
    tls_ca_file: str | None = Field(
        default=None,
        title="TLS CA file",
        description="Path of a CA bundle to verify the server's certificate.",
    )
    tls_allow_invalid_certificates: bool = Field(
        default=False,
        title="TLS: allow invalid certificates",
        description="Accept a server certificate that does not verify (testing only).",
    )
    embedded: bool = Field(
        default=False,
        description=(
            "Use the embedded MongoDB-wire server on this machine (started on demand); also "
            "the default when neither a URI nor a host is given."
        ),
    )
    launch_root: str | None = Field(
        default=None,
        description=(
            "Directory under which flows that use this block create launch directories "
            "(on the machine that runs them; PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT and "
            "a flow's launch_root parameter take precedence). Needed for deployments run by "
            "workers, whose working directory is a temporary folder Prefect deletes."
        ),
    )

    # The open LaunchPad (a MongoClient): runtime state, never saved or pickled.
    _launchpad: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _hide_secrets(cls, data: Any) -> Any:
        # Secrets become SecretStr before anything checks them, and a wrongly typed secret is
        # replaced by a placeholder: the `input` of every error (errors(), json()) is then
        # masked too, not only the message. The checks below are field validators for the
        # same reason (a model "after" validator's error carries the raw input).
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in _SECRET_FIELDS:
            value = data.get(key)
            if isinstance(value, str):
                data[key] = SecretStr(value)
            elif value is not None and not isinstance(value, SecretStr):
                data[key] = _HiddenInput()
        return data

    @field_validator("mongodb_uri")
    @classmethod
    def _uri_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("mongodb://", "mongodb+srv://")
        ):
            raise ValueError("mongodb_uri must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("host")
    @classmethod
    def _host_or_uri(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and info.data.get("mongodb_uri") is not None:
            raise ValueError("give mongodb_uri or host, not both")
        return value

    @field_validator("embedded")
    @classmethod
    def _embedded_alone(cls, value: bool, info: ValidationInfo) -> bool:
        if value and (info.data.get("mongodb_uri") is not None or info.data.get("host")):
            raise ValueError("embedded uses the local server: do not give mongodb_uri or host")
        return value

    @classmethod
    def for_embedded(
        cls, database: str | None = None, launch_root: str | None = None
    ) -> FireworksLaunchPad:
        """A block for the embedded MongoDB-wire server of the machine that loads it.

        Every process that loads the block (``lpad --block``, a flow run, a worker) uses the
        embedded server of its own machine, started on demand: fine for one machine, not for
        workers on several hosts (give them a ``mongodb_uri``).

        Args:
            database: LaunchPad database (default: ``..._DATABASE``, else ``fireworks``).
            launch_root: Where launch directories go (see the ``launch_root`` field).

        Example:
            ```python
            from prefect_fireworks import FireworksLaunchPad

            FireworksLaunchPad.for_embedded().save("BLOCK_NAME")
            ```
        """
        return cls(embedded=True, database=database, launch_root=launch_root)

    @property
    def uses_embedded(self) -> bool:
        """Whether this block points at the embedded server."""
        return self.embedded or (self.mongodb_uri is None and not self.host)

    def _mongoclient_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            kwargs["tls"] = self.tls
        if self.tls_ca_file:
            kwargs["tlsCAFile"] = self.tls_ca_file
        if self.tls_allow_invalid_certificates:
            kwargs["tlsAllowInvalidCertificates"] = True
        return kwargs

    def get_config(self) -> LaunchPadConfig:
        """Return the LaunchPad settings (FireWorks' ``my_launchpad.yaml`` keys) of this block.

        With ``embedded`` (or nothing given) the embedded server is started if it is not running.

        Returns:
            A `prefect_fireworks.store.config.LaunchPadConfig`.
        """
        from prefect_fireworks.core.settings import get_settings
        from prefect_fireworks.store import embedded
        from prefect_fireworks.store.config import LaunchPadConfig

        common: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "authsource": self.authsource,
            "mongoclient_kwargs": self._mongoclient_kwargs(),
        }
        if self.uses_embedded:
            settings = get_settings()
            uri = embedded.ensure_running(settings.home)
            return LaunchPadConfig.from_uri(uri, name=self.database or settings.database, **common)
        if self.mongodb_uri is not None:
            return LaunchPadConfig.from_uri(
                self.mongodb_uri.get_secret_value(), name=self.database, **common
            )
        return LaunchPadConfig.model_validate(
            {"host": self.host, "port": self.port or 27017, "name": self.database, **common}
        )

    def get_launchpad(self) -> LaunchPad:
        """Return the LaunchPad of this block, connecting on first use.

        The same LaunchPad is returned until `close` (or the end of a ``with`` block).

        Returns:
            A `prefect_fireworks.store.launchpad.LaunchPad`.

        Example:
            ```python
            from prefect_fireworks import FireworksLaunchPad

            lp = FireworksLaunchPad.load("BLOCK_NAME").get_launchpad()
            lp.get_fw_ids({"state": "FIZZLED"})
            ```
        """
        launchpad = self._launchpad
        if launchpad is None:
            from prefect_fireworks.runtime.launchpad import LaunchPad

            launchpad = LaunchPad(self.get_config())
            self._launchpad = launchpad
        return launchpad

    def close(self) -> None:
        """Close the connection made by `get_launchpad`, if any."""
        launchpad, self._launchpad = self._launchpad, None
        if launchpad is not None:
            launchpad.close()

    def __enter__(self) -> FireworksLaunchPad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[Any, Any]:
        # A MongoClient does not pickle: the copy reconnects on its first get_launchpad().
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_launchpad": None}
        return state


def _block_name(block: str) -> str:
    return block.split("/", 1)[1] if block.startswith("fireworks-launchpad/") else block


def _load_block(name: str) -> FireworksLaunchPad:
    try:
        # load() is sync here; async_dispatch types it as possibly a coroutine.
        return cast(FireworksLaunchPad, FireworksLaunchPad.load(name))
    except ValueError as exc:
        if "Unable to find block document" not in str(exc):
            raise
        raise BlockNotFoundError(
            f"no FireworksLaunchPad block named {name!r} "
            "(create one in the Prefect UI or with FireworksLaunchPad(...).save(name))"
        ) from None


def block_launch_root(block: str) -> str | None:
    """The ``launch_root`` of a saved block (None when it has none).

    Raises:
        BlockNotFoundError: No `FireworksLaunchPad` block has that name.
    """
    return _load_block(_block_name(block)).launch_root


def load_launchpad(block: str | None = None) -> LaunchPad:
    """Return the LaunchPad named by a saved block, or the default one.

    Args:
        block: Name of a saved `FireworksLaunchPad` block. ``None`` (or empty) resolves the
            LaunchPad as ``lpad`` does: ``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI``, then
            ``..._LAUNCHPAD_FILE``, then the embedded server.

    Returns:
        A connected `prefect_fireworks.store.launchpad.LaunchPad`; the caller closes it.

    Raises:
        BlockNotFoundError: No `FireworksLaunchPad` block has that name.
    """
    from prefect_fireworks.runtime.launchpad import LaunchPad

    if not block:
        return LaunchPad.auto_load()
    return LaunchPad(_load_block(_block_name(block)).get_config())
