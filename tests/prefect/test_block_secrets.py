"""A block (or LaunchPad settings) validation error never shows the password or the URI."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prefect_fireworks.prefect.blocks import FireworksLaunchPad
from prefect_fireworks.store.config import LaunchPadConfig

SECRET = "hunter2-Very-Secret-Passw0rd"
URI = f"mongodb://alice:{SECRET}@db.example.org/fw"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "db", "password": SECRET, "port": "not-a-port"},
        {"host": "db", "password": [SECRET]},
        {"host": "db", "password": {"value": SECRET}},
        {"host": "db", "password": 31415926535, "port": "x"},
        {"mongodb_uri": URI, "host": "db"},
        {"mongodb_uri": URI, "embedded": True},
        {"mongodb_uri": URI, "port": "x"},
        {"mongodb_uri": f"http://alice:{SECRET}@db"},
        {"mongodb_uri": [URI]},
    ],
    ids=[
        "bad-port",
        "password-list",
        "password-dict",
        "password-int",
        "uri-and-host",
        "uri-and-embedded",
        "uri-bad-port",
        "uri-bad-scheme",
        "uri-list",
    ],
)
def test_block_errors_never_contain_the_secret(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        FireworksLaunchPad(**kwargs)
    error = caught.value
    for shown in (str(error), repr(error), error.json(), str(error.errors())):
        assert SECRET not in shown
        assert "3141592" not in shown
        assert "Passw0rd" not in shown  # not even the tail pydantic shows of a long value


def test_the_reason_is_still_given() -> None:
    with pytest.raises(ValidationError, match="give mongodb_uri or host, not both"):
        FireworksLaunchPad(mongodb_uri=URI, host="db")
    with pytest.raises(ValidationError, match="password"):
        FireworksLaunchPad(host="db", password=[SECRET])
    block = FireworksLaunchPad(mongodb_uri=URI)  # valid input still works
    assert block.mongodb_uri is not None and block.mongodb_uri.get_secret_value() == URI


def test_launchpad_config_errors_never_contain_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        LaunchPadConfig(host="db", password=[SECRET], port="x")  # type: ignore[arg-type]
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
