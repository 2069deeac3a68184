"""The embedded server's home: its files, their permissions, and its credentials.

Part of `prefect_fireworks.store.embedded` (which re-exports the public names): the state file
``server.json`` describing the running server, the exclusive lock serialising starts, the last
port, and ``credentials.json`` with the user provisioned into the data directory before the
server first listens. The home is kept at mode 0700 and every file in it at 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prefect_fireworks.core.settings import get_settings

SERVER_SCRIPT = "secantusd-py"
HOST = "127.0.0.1"
STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
CONFIG_FILE = "secantusd.toml"
CREDENTIALS_FILE = "credentials.json"
PORT_FILE = "port"
DATA_DIR = "mongodb"
LOG_LEVEL = "WARNING"
AUTH_SOURCE = "admin"
DEFAULT_USER = "prefect-fireworks"
HOME_MODE = 0o700
FILE_MODE = 0o600

# Run by the interpreter of the server script, before the first start: writes the user into the
# data directory (the server is not running), so the server never listens without --auth. The
# request (with the password) comes on stdin, never on the command line.
_PROVISION_SCRIPT = """
import json, sys
from secantus.auth import SCRAM_SHA_256, derive_credentials
from secantus.storage import Storage
req = json.loads(sys.stdin.read())
user, db = req["username"], req["auth_source"]
storage = Storage(req["path"], enable_oplog=False, ttl_sweep_seconds=0)
try:
    storage.add_user(db, user, {
        "_id": db + "." + user, "user": user, "db": db,
        "credentials": derive_credentials(req["password"], mechanism=SCRAM_SHA_256,
                                          username=user).to_doc(),
        "roles": [{"role": "root", "db": "admin"}], "mechanisms": [SCRAM_SHA_256],
    }, replace=True)
finally:
    storage.close()
"""

MISSING_SERVER_MESSAGE = (
    "the embedded MongoDB-wire server needs SecantusDB: pip install 'prefect-fireworks[embedded]', "
    "or set PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI"
)


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be found, started or stopped."""


@dataclass(frozen=True)
class Credentials:
    """The user the clients of one embedded-server home authenticate as.

    Attributes:
        username: User name.
        password: Password (never printed: left out of ``repr``).
        auth_source: Database holding the user.
    """

    username: str
    password: str = field(repr=False)
    auth_source: str = AUTH_SOURCE

    @classmethod
    def generate(cls) -> Credentials:
        """Make a user with a random 256-bit password."""
        return cls(username=DEFAULT_USER, password=secrets.token_urlsafe(32))

    def uri(self, host: str, port: int) -> str:
        """Return the MongoDB URI that connects as this user to ``host:port``."""
        user = quote(self.username, safe="")
        password = quote(self.password, safe="")
        return f"mongodb://{user}:{password}@{host}:{port}/?authSource={self.auth_source}"


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server, as recorded in its state file.

    Attributes:
        pid: Process id of the server.
        host: Address it listens on (always ``127.0.0.1``).
        port: TCP port it listens on.
        uri: MongoDB URI to connect to it, with the credentials of its home (secret: left out of
            ``repr`` and `to_dict`; print `display_uri`).
        data_dir: Directory holding its data files.
        log_file: File receiving its standard output and error.
        started_at: When it was started (UTC).
    """

    pid: int
    host: str
    port: int
    uri: str = field(repr=False)
    data_dir: Path
    log_file: Path
    started_at: datetime

    @property
    def display_uri(self) -> str:
        """The server's address as a URI without credentials, for display."""
        return f"mongodb://{self.host}:{self.port}/"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to the state file (no credentials)."""
        return {
            "pid": self.pid,
            "host": self.host,
            "port": self.port,
            "uri": self.display_uri,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "started_at": self.started_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], credentials: Credentials | None = None) -> ServerInfo:
        """Build a `ServerInfo` from the content of a state file.

        Args:
            data: The state file's content.
            credentials: The credentials of the home, put into `uri`; without them `uri` is
                the display URI (which the server refuses).

        Raises:
            KeyError: A field is missing.
            ValueError: A field has the wrong type.
        """
        host, port = str(data["host"]), int(data["port"])
        return cls(
            pid=int(data["pid"]),
            host=host,
            port=port,
            uri=credentials.uri(host, port) if credentials else f"mongodb://{host}:{port}/",
            data_dir=Path(data["data_dir"]),
            log_file=Path(data["log_file"]),
            started_at=datetime.fromisoformat(data["started_at"]),
        )


def credentials(home: Path | None = None) -> Credentials | None:
    """Return the credentials of the embedded server's home, or ``None`` before its first start.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.

    Raises:
        EmbeddedServerError: The credentials file exists but cannot be read (another account's
            home) or is malformed.
    """
    home = resolve_home(home)
    path = home / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text())
        return Credentials(
            username=str(data["username"]),
            password=str(data["password"]),
            auth_source=str(data.get("auth_source", AUTH_SOURCE)),
        )
    except FileNotFoundError:
        return None
    except PermissionError:
        raise _permission_error(home) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmbeddedServerError(
            f"unreadable embedded-server credentials {path} ({type(exc).__name__}): "
            "delete the file and restart the server (`lpad server stop`, `lpad server start`)"
        ) from None


def _permission_error(home: Path) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"permission denied on the embedded server's home {home}: it belongs to another account "
        "(each account has its own; set PREFECT_INTEGRATIONS_FIREWORKS_HOME)"
    )


def has_credentials(info: ServerInfo) -> bool:
    return info.uri != info.display_uri


def resolve_home(home: Path | None) -> Path:
    # Resolved, so every process spells the data directory the same way (see `is_our_server`).
    return (Path(home).expanduser() if home is not None else get_settings().home).resolve()


def _secure_home(home: Path) -> None:
    """Create ``home`` (mode 0700) or tighten it and the files in it to the owner."""
    home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    if home.stat().st_mode & 0o777 != HOME_MODE:
        os.chmod(home, HOME_MODE)
    for entry in home.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mode & 0o077:
                os.chmod(entry, FILE_MODE)


def private_file(path: Path) -> int:
    """Open (create) ``path`` for appending, readable by its owner only; return the fd."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically by ``text``, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    try:
        _secure_home(home)
        lock = os.fdopen(private_file(home / LOCK_FILE), "ab")
    except PermissionError:
        raise _permission_error(home) from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read_state(home: Path) -> ServerInfo | None:
    try:
        data = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    try:
        return ServerInfo.from_dict(data, credentials(home))
    except (ValueError, KeyError, TypeError):
        return None


def write_state(home: Path, info: ServerInfo) -> None:
    write_private(home / STATE_FILE, json.dumps(info.to_dict(), indent=2) + "\n")
    write_private(home / PORT_FILE, f"{info.port}\n")


def last_port(home: Path) -> int | None:
    try:
        port = int((home / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def ensure_credentials(home: Path, data_dir: Path, script: str) -> Credentials:
    """Return the home's credentials; at the first start, generate and provision them.

    Called with the lock held and no server running on ``data_dir``. The user is (re)written
    into the data directory when the credentials are new or the data directory is new.
    """
    creds = credentials(home)
    fresh_data = not any(data_dir.iterdir())
    if creds is not None and not fresh_data:
        return creds
    creds = creds or Credentials.generate()
    request = json.dumps(
        {
            "path": str(data_dir),
            "username": creds.username,
            "password": creds.password,
            "auth_source": creds.auth_source,
        }
    )
    proc = subprocess.run(
        [_script_interpreter(script), "-c", _PROVISION_SCRIPT],
        input=request,
        capture_output=True,
        text=True,
        cwd=home,
        check=False,
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EmbeddedServerError(
            f"could not create the embedded server's user in {data_dir}: {reason}"
        )
    write_private(
        home / CREDENTIALS_FILE,
        json.dumps(
            {
                "username": creds.username,
                "password": creds.password,
                "auth_source": creds.auth_source,
            }
        )
        + "\n",
    )
    return creds


def _script_interpreter(script: str) -> str:
    """The Python that runs the ``secantusd-py`` script (its ``#!`` line), else this one."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!"):
        interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
        if interpreter and os.access(interpreter, os.X_OK) and "python" in Path(interpreter).name:
            return interpreter
    return sys.executable
