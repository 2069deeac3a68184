"""The retry policy on a real server that dies (kill -9) and comes back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from prefect_fireworks.store import embedded
from prefect_fireworks.store.retry import (
    DEADLINE_ENV,
    RetryingCollection,
    StoreUnavailableError,
    default_deadline,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, embedded.ServerInfo]]:
    home = tmp_path / "home"
    info = embedded.start(home)
    yield home, info
    embedded.stop(home)


def _kill(info: embedded.ServerInfo) -> None:
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while embedded.pid_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _client(uri: str) -> pymongo.MongoClient:  # type: ignore[type-arg]
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)


def test_reads_and_writes_survive_a_killed_embedded_server(
    server: tuple[Path, embedded.ServerInfo],
) -> None:
    home, info = server
    with _client(info.uri) as client:
        coll = RetryingCollection(
            client.fw.docs, deadline=60, reconnect=lambda: embedded.ensure_running(home)
        )
        coll.insert_one({"n": 1})
        _kill(info)
        t0 = time.monotonic()
        assert coll.find_one({"n": 1}, {"_id": 0}) == {"n": 1}
        recovered = time.monotonic() - t0
        print(f"\nread after kill -9 of the server: {recovered:.2f} s (restart on the same port)")
        again = embedded.status(home)
        assert again is not None and again.port == info.port and again.pid != info.pid

        _kill(again)
        coll.insert_one({"n": 2})  # not sent until a server is selected: retried, applied once
        assert [d["n"] for d in coll.find({}, {"_id": 0}).sort("n", 1)] == [1, 2]
        assert coll.count_documents({}) == 2


def test_a_cursor_is_retried_until_its_first_document(
    server: tuple[Path, embedded.ServerInfo],
) -> None:
    home, info = server
    with _client(info.uri) as client:
        client.fw.docs.insert_many([{"n": i} for i in range(5)])
        coll = RetryingCollection(
            client.fw.docs, deadline=60, reconnect=lambda: embedded.ensure_running(home)
        )
        cursor = coll.find({}, {"_id": 0, "n": 1}).sort("n", -1).limit(3)
        _kill(info)
        assert [d["n"] for d in cursor] == [4, 3, 2]
        assert list(coll.find({"n": 99})) == []


def test_without_a_server_it_gives_up_at_the_deadline_in_one_line(
    server: tuple[Path, embedded.ServerInfo],
) -> None:
    home, info = server
    with _client(info.uri) as client:
        coll = RetryingCollection(client.fw.docs, deadline=2)
        embedded.stop(home)
        with pytest.raises(StoreUnavailableError) as failed:
            coll.find_one({})
        message = str(failed.value)
        assert message.startswith("MongoDB unreachable for 2 s, giving up: ")
        assert "\n" not in message and len(message) < 300
        creds = embedded.credentials(home)
        assert creds is not None and creds.password not in message


def test_a_server_restarted_by_someone_else_is_picked_up(
    server: tuple[Path, embedded.ServerInfo],
) -> None:
    home, info = server
    with _client(info.uri) as client:
        coll = RetryingCollection(client.fw.docs, deadline=60)
        embedded.stop(home)
        restarter = threading.Timer(1.0, embedded.start, args=(home,))
        restarter.start()
        try:
            coll.insert_one({"n": 1})
        finally:
            restarter.join()
        assert coll.count_documents({}) == 1


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "soon"])
def test_a_bad_deadline_setting_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=DEADLINE_ENV):
        default_deadline({DEADLINE_ENV: value})
    assert default_deadline({}) == 30
    assert default_deadline({DEADLINE_ENV: "0"}) == 0


def test_the_deadline_is_a_setting_read_only_when_a_command_fails(monkeypatch, mongo_uri):
    """``..._MONGODB_RETRY_SECONDS`` is a field of core.settings; a command that succeeds
    does not read it (reading settings costs milliseconds, and every command is wrapped)."""
    from prefect_fireworks.core.settings import get_settings
    from prefect_fireworks.store import retry

    assert get_settings({DEADLINE_ENV: "5"}).mongodb_retry_seconds == 5
    monkeypatch.setenv(DEADLINE_ENV, "soon")  # refused, but only once it is read
    with _client(mongo_uri) as client:
        coll = RetryingCollection(client.fw.docs)
        coll.insert_one({"n": 1})
        assert coll.count_documents({}) == 1
        client.fw.drop_collection("docs")

    def fail() -> None:
        raise pymongo.errors.ConnectionFailure("refused")

    with pytest.raises(ValueError, match=DEADLINE_ENV):
        retry.call(fail)
    monkeypatch.setenv(DEADLINE_ENV, "0")
    with pytest.raises(StoreUnavailableError, match="unreachable for 0 s"):
        retry.call(fail)
