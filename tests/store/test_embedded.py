"""The embedded SecantusDB server: start, reuse, stop, concurrency, persistence, failures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pymongo
import pytest

from prefect_fireworks.store import embedded


def _server_pids(data_dir: Path) -> list[int]:
    """Pids of the live secantusd-py processes serving ``data_dir`` (zombies excluded)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if embedded.SERVER_SCRIPT in cmdline and str(data_dir) in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An isolated server home; whatever server runs there is stopped afterwards."""
    home = tmp_path / "home"
    yield home
    embedded.stop(home)
    assert _server_pids(home / embedded.DATA_DIR) == []


def test_free_port_is_bindable() -> None:
    port = embedded.free_port()
    assert 0 < port < 65536


def test_start_status_stop(home: Path, mongo_server: embedded.ServerInfo) -> None:
    assert embedded.status(home) is None

    info = embedded.start(home)

    assert info.host == "127.0.0.1"
    assert info.port != mongo_server.port
    assert info.display_uri == f"mongodb://127.0.0.1:{info.port}/"
    assert info.uri.endswith(f"@127.0.0.1:{info.port}/?authSource=admin")  # with credentials
    assert info.data_dir == home.resolve() / "mongodb"
    assert info.log_file == home.resolve() / "server.log"
    assert embedded.status(home) == info
    assert json.loads((home / "server.json").read_text())["pid"] == info.pid
    assert _server_pids(info.data_dir) == [info.pid]
    assert embedded.start(home) == info  # idempotent

    assert embedded.stop(home) is True
    assert embedded.status(home) is None
    assert not (home / "server.json").exists()
    assert _server_pids(info.data_dir) == []
    assert embedded.stop(home) is False


def test_ensure_running_reuses_the_server(home: Path) -> None:
    uri = embedded.ensure_running(home)
    first = embedded.status(home)
    assert first is not None

    started = time.perf_counter()
    assert embedded.ensure_running(home) == uri
    assert time.perf_counter() - started < 0.5
    second = embedded.status(home)
    assert second is not None
    assert second.pid == first.pid


def test_concurrent_ensure_running_shares_one_server(home: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from prefect_fireworks.store import embedded; "
        "print(embedded.ensure_running(Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    uris = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)

    info = embedded.status(home)
    assert info is not None
    assert uris == {info.uri}
    assert _server_pids(info.data_dir) == [info.pid]


def test_data_persists_across_restarts(home: Path) -> None:
    first = embedded.start(home)
    with pymongo.MongoClient(first.uri, serverSelectionTimeoutMS=5000) as client:
        client.persist.docs.insert_one({"fw_id": 1, "state": "COMPLETED"})
    assert embedded.stop(home)

    second = embedded.start(home)
    assert second.pid != first.pid
    with pymongo.MongoClient(second.uri, serverSelectionTimeoutMS=5000) as client:
        doc = client.persist.docs.find_one({"fw_id": 1}, {"_id": 0})
    assert doc == {"fw_id": 1, "state": "COMPLETED"}


def test_stale_state_file_is_replaced(home: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    home.mkdir(parents=True)
    stale = embedded.ServerInfo(
        pid=dead.pid,
        host="127.0.0.1",
        port=embedded.free_port(),
        uri="mongodb://127.0.0.1:1/",
        data_dir=home.resolve() / "mongodb",
        log_file=home.resolve() / "server.log",
        started_at=datetime.now(timezone.utc),
    )
    (home / "server.json").write_text(json.dumps(stale.to_dict()))
    assert embedded.status(home) is None

    uri = embedded.ensure_running(home)

    info = embedded.status(home)
    assert info is not None
    assert info.pid != dead.pid
    assert uri == info.uri != stale.uri
    assert json.loads((home / "server.json").read_text())["pid"] == info.pid


def test_garbage_state_file_is_ignored(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "server.json").write_text("not json")
    assert embedded.status(home) is None
    assert embedded.stop(home) is False
    assert not (home / "server.json").exists()


def test_missing_server_script_gives_a_clear_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(embedded.EmbeddedServerError) as excinfo:
        embedded.ensure_running(home)

    message = str(excinfo.value)
    assert "pip install 'prefect-fireworks[embedded]'" in message
    assert "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI" in message
    assert not (home / "server.json").exists()


def test_start_failure_shows_the_log(home: Path) -> None:
    taken = embedded.start(home / "other")
    try:
        with pytest.raises(embedded.EmbeddedServerError, match="Address already in use"):
            embedded.start(home, port=taken.port, timeout=30)
    finally:
        embedded.stop(home / "other")
    assert embedded.status(home) is None


def test_default_home_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_HOME", str(tmp_path / "fw-home"))
    assert embedded.status() is None
    assert embedded.stop() is False
