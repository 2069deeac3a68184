"""The embedded MongoDB-wire server used when no MongoDB is configured.

The server is SecantusDB, run as a separate, detached background process through its console
script ``secantusd-py`` (it is never imported). It listens on ``127.0.0.1`` on a free port, keeps
its data in ``<home>/mongodb`` and its output in ``<home>/server.log``, and is described by the
state file ``<home>/server.json`` so that every later process reuses it. Starting is serialised by
an exclusive lock on ``<home>/server.lock``: any number of processes calling `ensure_running` at
once end up sharing one server.

The server requires authentication (SCRAM-SHA-256). At the first start a user and a random
password are generated and kept in ``<home>/credentials.json`` (mode 0600); the user is written
into the data directory before the server first listens, so there is no moment when it accepts
unauthenticated clients. The home is kept at mode 0700 and every file in it at 0600: only the
owner's processes can read the credentials, so only they can connect. The password is never
printed: `ServerInfo.uri` (which carries it, for connecting) is left out of ``repr`` and of the
state file, which hold `ServerInfo.display_uri` instead.

A restarted server (after a crash, ``lpad server stop``/``start``, or a reboot) listens on the
port it used before when that port is free (the last port is kept in ``<home>/port``), so a saved
``my_launchpad.yaml`` pointing at it stays valid.

``home`` defaults to the ``PREFECT_INTEGRATIONS_FIREWORKS_HOME`` setting
(``~/.prefect-fireworks``).

Example:
    ```python
    import pymongo
    from prefect_fireworks.store import embedded

    uri = embedded.ensure_running()  # starts the server on first use, a few ms afterwards
    client = pymongo.MongoClient(uri)
    embedded.stop()
    ```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
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

_BIND_FAILURE_MARKERS = ("Address already in use", "Errno 98", "Errno 48", "EADDRINUSE")
_START_ATTEMPTS = 5
_POLL_INTERVAL = 0.05
_OP_MSG = 2013
_LOG_TAIL_LINES = 20

# Servers started by this process, so they can be reaped (a dead child stays a zombie, which
# `os.kill(pid, 0)` would report as alive). Keyed by pid; the owner pid guards against forks.
_CHILDREN: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}


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


def free_port() -> int:
    """Return a TCP port that is free on ``127.0.0.1`` right now.

    The port is found by binding port 0; another process may still take it before it is used, so
    callers retry on a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def find_server_script() -> str:
    """Locate the ``secantusd-py`` console script.

    The directory of ``sys.executable`` (the active virtualenv) is searched first, then ``PATH``.

    Raises:
        EmbeddedServerError: SecantusDB is not installed.
    """
    candidate = Path(sys.executable).parent / SERVER_SCRIPT
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(SERVER_SCRIPT)
    if found is None:
        raise EmbeddedServerError(MISSING_SERVER_MESSAGE)
    return found


def ensure_running(home: Path | None = None) -> str:
    """Return the URI of the embedded server, starting it if it is not running.

    The fast path (a live server is recorded in the state file) costs one file read, one process
    check and one ``ping`` over a raw socket: about a millisecond.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.

    Returns:
        The server's MongoDB URI.

    Raises:
        EmbeddedServerError: SecantusDB is missing or the server does not start.
    """
    home = _resolve_home(home)
    info = _read_state(home)
    if info is not None and _has_credentials(info) and _is_serving(info):
        return info.uri
    return start(home).uri


def start(home: Path | None = None, port: int | None = None, timeout: float = 60) -> ServerInfo:
    """Start the embedded server, or return the one already running in ``home``.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
        port: Port to listen on; a free port is chosen when omitted. Ignored when a server is
            already running.
        timeout: Seconds to wait for the server to answer a ping.

    Returns:
        The running server.

    Raises:
        ValueError: ``port`` is not a TCP port number.
        EmbeddedServerError: SecantusDB is missing, or the server exits or does not answer within
            ``timeout`` (the message ends with the last lines of its log).
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"invalid port {port}: give a TCP port from 1 to 65535")
    home = _resolve_home(home)
    with _locked(home):
        info = _read_state(home)
        if info is not None:
            if _has_credentials(info) and _is_serving(info):
                return info
            if _is_our_server(info):
                # Alive but not answering, or started without authentication by an older
                # version: it holds the data directory, so it must go.
                _terminate(info.pid, timeout=10, port=info.port)
        return _spawn(home, port, timeout)


def status(home: Path | None = None) -> ServerInfo | None:
    """Return the running embedded server, or ``None`` if none is running.

    A state file whose process is dead (or does not accept connections) counts as no server.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
    """
    home = _resolve_home(home)
    info = _read_state(home)
    if info is not None and _is_serving(info):
        return info
    return None


def stop(home: Path | None = None, timeout: float = 30) -> bool:
    """Stop the embedded server and remove its state file.

    The server gets SIGTERM and ``timeout`` seconds to exit, then SIGKILL.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
        timeout: Seconds to wait after SIGTERM.

    Returns:
        ``True`` if a running server was stopped, ``False`` if none was running.
    """
    home = _resolve_home(home)
    if not home.is_dir():
        return False
    with _locked(home):
        info = _read_state(home)
        stopped = False
        if info is not None and _is_our_server(info):
            _terminate(info.pid, timeout=timeout, port=info.port)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()
        return stopped


def credentials(home: Path | None = None) -> Credentials | None:
    """Return the credentials of the embedded server's home, or ``None`` before its first start.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.

    Raises:
        EmbeddedServerError: The credentials file exists but cannot be read (another account's
            home) or is malformed.
    """
    home = _resolve_home(home)
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


def _has_credentials(info: ServerInfo) -> bool:
    return info.uri != info.display_uri


def _resolve_home(home: Path | None) -> Path:
    # Resolved, so every process spells the data directory the same way (see `_is_our_server`).
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


def _private_file(path: Path) -> int:
    """Open (create) ``path`` for appending, readable by its owner only; return the fd."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically by ``text``, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    try:
        _secure_home(home)
        lock = os.fdopen(_private_file(home / LOCK_FILE), "ab")
    except PermissionError:
        raise _permission_error(home) from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_state(home: Path) -> ServerInfo | None:
    try:
        data = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    try:
        return ServerInfo.from_dict(data, credentials(home))
    except (ValueError, KeyError, TypeError):
        return None


def _write_state(home: Path, info: ServerInfo) -> None:
    _write_private(home / STATE_FILE, json.dumps(info.to_dict(), indent=2) + "\n")
    _write_private(home / PORT_FILE, f"{info.port}\n")


def _last_port(home: Path) -> int | None:
    try:
        port = int((home / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def _ensure_credentials(home: Path, data_dir: Path, script: str) -> Credentials:
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
    _write_private(
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


def _pid_alive(pid: int) -> bool:
    owned = _CHILDREN.get(pid)
    if owned is not None and owned[0] == os.getpid():
        return owned[1].poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still accepts signal 0.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0:1] != ["Z"]


def _is_our_server(info: ServerInfo) -> bool:
    """Whether ``info.pid`` is alive and, where ``/proc`` tells, is the server of that data dir."""
    if not _pid_alive(info.pid):
        return False
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return SERVER_SCRIPT in cmdline and str(info.data_dir) in cmdline


def _wire_command(
    host: str, port: int, command: dict[str, Any], timeout: float = 1.0
) -> dict[str, Any] | None:
    """Run one command on ``admin`` over a raw socket (one OP_MSG): cheaper than a MongoClient.

    Returns the reply, or ``None`` when nothing answers. SecantusDB must always receive a
    complete message: a connection closed before its first message can leave the server unable
    to shut down on SIGTERM, so never probe it with a bare TCP connect.
    """
    import bson  # pymongo's; deferred to keep the import of this module light

    body = b"\x00\x00\x00\x00" + b"\x00" + bson.encode({**command, "$db": "admin"})
    header = struct.pack("<iiii", 16 + len(body), 1, 0, _OP_MSG)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(header + body)
            reply = b""
            while len(reply) < 4 or len(reply) < struct.unpack("<i", reply[:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
        # header (16) + flagBits (4) + section kind (1), then the reply document
        answer: dict[str, Any] = bson.decode(reply[21:])
    except (OSError, struct.error, bson.errors.BSONError):
        return None
    return answer


def _wire_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    answer = _wire_command(host, port, {"ping": 1}, timeout)
    return answer is not None and bool(answer.get("ok"))


def _is_serving(info: ServerInfo) -> bool:
    return _is_our_server(info) and _wire_ping(info.host, info.port)


def _terminate(pid: int, timeout: float, port: int | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_dead(pid, timeout, port):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_dead(pid, 10):
        raise EmbeddedServerError(f"the embedded server (pid {pid}) did not exit after SIGKILL")


def _wait_dead(pid: int, timeout: float, port: int | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
        if port is not None:
            # SecantusDB's accept thread only notices the stop request when a connection
            # arrives (otherwise shutdown waits 2 s for it): knock.
            _wire_ping(HOST, port, timeout=0.2)
    _CHILDREN.pop(pid, None)
    return True


def _log_tail(log_file: Path, offset: int) -> str:
    try:
        with open(log_file, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])


def _start_failure(message: str, log_file: Path, offset: int) -> EmbeddedServerError:
    tail = _log_tail(log_file, offset)
    if tail:
        message += f"; last lines of {log_file}:\n{tail}"
    else:
        message += f" (nothing in {log_file})"
    return EmbeddedServerError(message)


def _spawn(home: Path, port: int | None, timeout: float) -> ServerInfo:
    script = find_server_script()
    data_dir = home / DATA_DIR
    data_dir.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    log_file = home / LOG_FILE
    # An explicit (empty) config file stops SecantusDB from auto-discovering one elsewhere.
    config_file = home / CONFIG_FILE
    if not config_file.exists():
        _write_private(config_file, "# settings come from the command line of prefect-fireworks\n")
    creds = _ensure_credentials(home, data_dir, script)
    deadline = time.monotonic() + timeout
    # Come back on the last port when it is free, so saved LaunchPad files stay valid.
    preferred = port if port is not None else _last_port(home)
    attempts = 1 if port is not None else _START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = preferred if attempt == 1 and preferred is not None else free_port()
        with os.fdopen(_private_file(log_file), "ab") as log:
            offset = log.tell()
            started_at = datetime.now(timezone.utc)
            log.write(f"--- {started_at.isoformat()} starting on {HOST}:{chosen}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [
                    script,
                    "--config",
                    str(config_file),
                    "--host",
                    HOST,
                    "--port",
                    str(chosen),
                    "--storage-path",
                    str(data_dir),
                    "--log-level",
                    LOG_LEVEL,
                    "--auth",
                    # Every commit reaches the disk before it is acknowledged: without this,
                    # writes of the last second or so are lost when the server is killed.
                    "--sync-on-commit",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=True,
                close_fds=True,
            )
        _CHILDREN[proc.pid] = (os.getpid(), proc)
        info = ServerInfo(
            pid=proc.pid,
            host=HOST,
            port=chosen,
            uri=creds.uri(HOST, chosen),
            data_dir=data_dir,
            log_file=log_file,
            started_at=started_at,
        )
        outcome = _wait_ready(proc, info, deadline)
        if outcome == "ready":
            _write_state(home, info)
            return info
        if outcome == "exited":
            _CHILDREN.pop(proc.pid, None)
            tail = _log_tail(log_file, offset)
            if attempt < attempts and any(m in tail for m in _BIND_FAILURE_MARKERS):
                continue  # the port is taken (the last one, or a free one taken first): another
            raise _start_failure(
                f"the embedded server exited with status {proc.returncode} during start-up",
                log_file,
                offset,
            )
        _terminate(proc.pid, timeout=10, port=chosen)
        raise _start_failure(
            f"the embedded server did not answer within {timeout:g} s", log_file, offset
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(proc: subprocess.Popen[bytes], info: ServerInfo, deadline: float) -> str:
    """Poll until the server answers as itself: ``"ready"``, ``"exited"`` or ``"timeout"``.

    Ready means: it answers a ping, refuses an unauthenticated command, and, authenticated with
    the home's credentials, reports our pid (another server may hold the port; ours then fails
    to bind and exits).
    """
    import pymongo  # deferred: only starting a server needs a full client
    from pymongo.errors import PyMongoError

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        if _wire_ping(info.host, info.port, timeout=2.0):
            refused = _wire_command(info.host, info.port, {"listDatabases": 1}, timeout=2.0)
            if refused is not None and refused.get("ok"):
                # Someone else's server without authentication: never ours.
                time.sleep(_POLL_INTERVAL)
                continue
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                info.uri,
                serverSelectionTimeoutMS=2000,
                connectTimeoutMS=2000,
                directConnection=True,
            )
            try:
                answer = client.admin.command("serverStatus")
            except PyMongoError:
                answer = None
            finally:
                client.close()
            if answer is not None and answer.get("pid", proc.pid) == proc.pid:
                return "ready"
        time.sleep(_POLL_INTERVAL)
    return "exited" if proc.poll() is not None else "timeout"
