"""The embedded server requires authentication; its home and files are private to the owner."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import OperationFailure

from prefect_fireworks.store import embedded

LPAD = str(Path(sys.executable).parent / "lpad")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home of its own (a server in it is stopped after the test)."""
    home = tmp_path / "home"
    yield home
    embedded.stop(home)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _lpad(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PREFECT_INTEGRATIONS_FIREWORKS_")
    }
    env["PREFECT_INTEGRATIONS_FIREWORKS_HOME"] = str(home)
    return subprocess.run(
        [LPAD, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_unauthenticated_and_wrong_password_clients_are_refused(
    mongo_server: embedded.ServerInfo,
) -> None:
    with pymongo.MongoClient(mongo_server.display_uri, serverSelectionTimeoutMS=5000) as anon:
        with pytest.raises(OperationFailure) as refused:
            anon.fireworks.fireworks.find_one()
        assert refused.value.code == 13  # Unauthorized
        with pytest.raises(OperationFailure):
            anon.fireworks.fireworks.insert_one({"fw_id": 1})
        with pytest.raises(OperationFailure):
            anon.list_database_names()
    creds = embedded.credentials(mongo_server.data_dir.parent)
    assert creds is not None
    wrong = embedded.Credentials(creds.username, "not-the-password").uri(
        mongo_server.host, mongo_server.port
    )
    with pymongo.MongoClient(wrong, serverSelectionTimeoutMS=5000) as bad:
        with pytest.raises(OperationFailure) as failed:
            bad.fireworks.fireworks.find_one()
        assert failed.value.code == 18  # AuthenticationFailed
    with pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000) as owner:
        assert owner.admin.command("ping")["ok"] == 1


def test_home_and_files_are_private_and_hold_no_password_but_the_credentials(
    home: Path,
) -> None:
    home.mkdir(mode=0o755)
    (home / "server.log").write_text("an old log\n")
    os.chmod(home / "server.log", 0o644)

    info = embedded.start(home)

    assert _mode(home) == 0o700
    files = [p for p in home.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {
        embedded.STATE_FILE,
        embedded.CREDENTIALS_FILE,
        embedded.LOG_FILE,
        embedded.LOCK_FILE,
        embedded.PORT_FILE,
    }
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert _mode(info.data_dir) == 0o700

    creds = embedded.credentials(home)
    assert creds is not None and len(creds.password) >= 32
    assert json.loads((home / embedded.CREDENTIALS_FILE).read_text())["password"] == creds.password
    assert creds.password in info.uri
    for shown in (repr(info), repr(creds), json.dumps(info.to_dict())):
        assert creds.password not in shown
    for path in files:
        if path.name != embedded.CREDENTIALS_FILE:
            assert creds.password not in path.read_text(errors="replace"), path.name


def test_lpad_never_prints_the_password(home: Path) -> None:
    embedded.start(home)
    creds = embedded.credentials(home)
    assert creds is not None
    outputs = [
        _lpad(home, "server", "status"),
        _lpad(home, "server", "status", "--json"),
        _lpad(home, "server", "start", "--no-prefect"),
        _lpad(home, "get_fws"),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert creds.password not in result.stdout + result.stderr
    # An unreachable server named by a URI with the password: the error masks it.
    dead_uri = creds.uri("127.0.0.1", embedded.free_port())
    env = {**os.environ, "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI": dead_uri}
    env["PREFECT_INTEGRATIONS_FIREWORKS_HOME"] = str(home)
    failed = subprocess.run(
        [LPAD, "get_fws"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode == 1
    assert creds.password not in failed.stdout + failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_credentials_survive_restarts_and_the_port_is_kept(home: Path) -> None:
    first = embedded.start(home)
    with pymongo.MongoClient(first.uri, serverSelectionTimeoutMS=5000) as client:
        client.fw.docs.insert_one({"kept": True})
    os.kill(first.pid, signal.SIGKILL)  # a crash, not a stop
    deadline = time.monotonic() + 10
    while embedded.status(home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)

    uri = embedded.ensure_running(home)  # what the next command does

    second = embedded.status(home)
    assert second is not None and second.pid != first.pid
    assert (second.port, uri) == (first.port, first.uri)
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        assert client.fw.docs.count_documents({"kept": True}) == 1

    assert embedded.stop(home)
    third = embedded.start(home)  # an explicit stop and start keeps the port too
    assert third.port == first.port and third.uri == first.uri


def test_a_lost_user_is_written_again_when_the_data_directory_is_new(home: Path) -> None:
    first = embedded.start(home)
    assert embedded.stop(home)
    for path in sorted(first.data_dir.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()

    second = embedded.start(home)

    with pymongo.MongoClient(second.uri, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
        client.fw.docs.insert_one({})


def test_an_out_of_range_port_is_refused_before_anything_starts(home: Path) -> None:
    with pytest.raises(ValueError, match="65535"):
        embedded.start(home, port=99999)
    assert not home.exists()
