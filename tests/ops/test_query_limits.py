"""User queries: catastrophic regexes are refused, and every query has a time limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_fireworks.ops.selection import (
    QUERY_TIMEOUT_ENV,
    Selector,
    parse_query,
    query_timeout_ms,
)
from prefect_fireworks.store import embedded
from prefect_fireworks.store.queries import QueryError


@pytest.mark.parametrize(
    "pattern", ["^(a+)+$", "(a*)*", "((a+))*", "(a+b?)+", r"x(\w+)*y", r"^(\s*)+$"]
)
def test_nested_repetition_is_refused_before_any_query(pattern: str) -> None:
    with pytest.raises(QueryError, match="repeats a repeated group"):
        parse_query({"name": {"$regex": pattern}})


@pytest.mark.parametrize(
    "pattern", ["^a+$", "fw_[0-9]+", "(a|b)+", r"^(\d+\.)*\d+$", "(?:x+y)+", "(ab{2,3})+"]
)
def test_ordinary_regexes_pass(pattern: str) -> None:
    assert parse_query({"name": {"$regex": pattern}}) == {"name": {"$regex": pattern}}


@pytest.mark.parametrize("raw", ["-1", "1.5", "soon", "99999999999"])
def test_a_bad_time_limit_setting_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=QUERY_TIMEOUT_ENV):
        query_timeout_ms({QUERY_TIMEOUT_ENV: raw})
    assert query_timeout_ms({}) == 30000
    assert query_timeout_ms({QUERY_TIMEOUT_ENV: "0"}) == 0


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[embedded.ServerInfo]:
    """A server of its own: the slow regex below stalls the server it runs on."""
    home = tmp_path / "home"
    info = embedded.start(home)
    yield info
    embedded.stop(home)


@pytest.mark.reliability
def test_a_slow_query_ends_at_the_time_limit_and_others_still_get_served(
    own_server: embedded.ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_fireworks.store.launchpad import LaunchPad

    slow_name = "a" * 36 + "!"  # ^(a|aa)+$ backtracks ~fib(36) times on it: seconds
    with LaunchPad.from_uri(own_server.uri, name="limits") as lp:
        lp.fireworks.insert_many([{"fw_id": 1, "name": slow_name}, {"fw_id": 2, "name": "ok"}])
        monkeypatch.setenv(QUERY_TIMEOUT_ENV, "1000")
        selector = Selector(query={"name": {"$regex": "^(a|aa)+$"}})

        t0 = time.monotonic()
        with pytest.raises(QueryError, match="longer than 1000 ms"):
            selector.resolve(lp)
        gave_up = time.monotonic() - t0

        # The server still evaluates the regex (Python's re cannot be interrupted): another
        # client's read is retried (store/retry.py) until the server answers again.
        with LaunchPad.from_uri(own_server.uri, name="limits") as other:
            t1 = time.monotonic()
            doc = other.fireworks.find_one({"fw_id": 2}, {"_id": 0, "name": 1})
            served = time.monotonic() - t1
        assert doc == {"name": "ok"}
        print(
            f"\nslow query stopped after {gave_up:.2f} s; another read served after {served:.2f} s"
        )
