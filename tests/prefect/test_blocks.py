"""The FireworksLaunchPad block: save, load, a working LaunchPad, secrets kept secret."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import subprocess
import sys
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError

from prefect_fireworks import Firework, FireworksLaunchPad, ScriptTask
from prefect_fireworks.prefect.blocks import BlockNotFoundError, load_launchpad

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _name() -> str:
    return f"lp-{uuid.uuid4().hex[:8]}"


def test_saved_block_loads_and_yields_a_working_launchpad(lp: Any, mongo_uri: str) -> None:
    name = _name()
    FireworksLaunchPad(mongodb_uri=mongo_uri, database=lp.name).save(name)

    loaded = FireworksLaunchPad.load(name)
    assert loaded.mongodb_uri is not None
    assert loaded.mongodb_uri.get_secret_value() == mongo_uri
    assert loaded.database == lp.name
    with loaded:
        block_lp = loaded.get_launchpad()
        assert block_lp is loaded.get_launchpad()
        ids = block_lp.add_wf(Firework([ScriptTask(script="true")], name="via-block"))
    fw_id = next(iter(ids.values()))
    # Written through the block, read back through the test's own connection.
    doc = lp.fireworks.find_one({"fw_id": fw_id})
    assert doc is not None
    assert doc["name"] == "via-block"
    assert doc["state"] == "READY"
    assert loaded._launchpad is None  # closed by the with block

    # The slug form resolves too, as Block.load("fireworks-launchpad/NAME") does.
    by_slug = load_launchpad(f"fireworks-launchpad/{name}")
    try:
        assert by_slug.get_fw_ids({"name": "via-block"}) == [fw_id]
    finally:
        by_slug.close()


def test_password_and_uri_are_stored_as_secrets() -> None:
    name = _name()
    FireworksLaunchPad(
        host="db.example.org",
        port=27018,
        database="fw_prod",
        username="alice",
        password="s3cret-pw",
        tls=True,
    ).save(name)
    FireworksLaunchPad(mongodb_uri="mongodb://bob:uri-pw@db.example.org/fw").save(name + "-uri")

    with get_client(sync_client=True) as client:
        hidden = client.read_block_document_by_name(
            name, "fireworks-launchpad", include_secrets=False
        )
        hidden_uri = client.read_block_document_by_name(
            name + "-uri", "fireworks-launchpad", include_secrets=False
        )
    assert "s3cret-pw" not in str(hidden.data)
    assert hidden.data["password"] != "s3cret-pw"
    assert hidden.data["username"] == "alice"
    assert "uri-pw" not in str(hidden_uri.data)

    loaded = FireworksLaunchPad.load(name)
    assert "s3cret-pw" not in repr(loaded)
    assert loaded.password is not None
    assert loaded.password.get_secret_value() == "s3cret-pw"
    config = loaded.get_config()
    assert config.host == "db.example.org"
    assert config.port == 27018
    assert config.name == "fw_prod"
    assert config.authsource == "fw_prod"
    assert "s3cret-pw" not in repr(config)
    assert config.client_kwargs()["password"] == "s3cret-pw"
    assert config.client_kwargs()["tls"] is True


def test_uri_database_is_the_default_database() -> None:
    block = FireworksLaunchPad(mongodb_uri="mongodb://h:1/from_uri")
    assert block.get_config().name == "from_uri"
    block = FireworksLaunchPad(mongodb_uri="mongodb://h:1/from_uri", database="explicit")
    assert block.get_config().name == "explicit"
    assert FireworksLaunchPad(host="h").get_config().name == "fireworks"


def test_tls_options_reach_the_client() -> None:
    block = FireworksLaunchPad(
        mongodb_uri="mongodb+srv://cluster.example.net/",
        tls_ca_file="/etc/ssl/ca.pem",
        tls_allow_invalid_certificates=True,
    )
    kwargs = block.get_config().mongoclient_kwargs
    assert kwargs == {"tlsCAFile": "/etc/ssl/ca.pem", "tlsAllowInvalidCertificates": True}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mongodb_uri": "http://example.org"}, "must start with mongodb://"),
        ({"mongodb_uri": "mongodb://h/", "host": "h"}, "not both"),
        ({"embedded": True, "host": "h"}, "embedded uses the local server"),
    ],
)
def test_contradictory_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FireworksLaunchPad(**fields)


def test_block_pickles_without_its_connection(lp: Any, mongo_uri: str) -> None:
    block = FireworksLaunchPad(mongodb_uri=mongo_uri, database=lp.name, password="pw")
    block.get_launchpad()
    copy = pickle.loads(pickle.dumps(block))
    assert copy._launchpad is None
    assert copy.password is not None
    assert copy.password.get_secret_value() == "pw"
    assert copy.mongodb_uri == block.mongodb_uri
    block.close()


def test_unknown_block_name_is_a_clear_error() -> None:
    with pytest.raises(BlockNotFoundError, match="no FireworksLaunchPad block named 'nope-x'"):
        load_launchpad("nope-x")


def test_lpad_block_option(lp: Any, mongo_uri: str, run_cli: Any) -> None:
    name = _name()
    FireworksLaunchPad(mongodb_uri=mongo_uri, database=lp.name).save(name)
    lp.add_wf(Firework([ScriptTask(script="true")], name="listed"))

    result = run_cli(["--block", name, "get_fws", "-d", "ids"])
    assert "1" in result.stdout

    missing = run_cli(["--block", "no-such-block", "get_fws"], code=2)
    assert missing.stderr.strip() == (
        "Error: no FireworksLaunchPad block named 'no-such-block' "
        "(create one in the Prefect UI or with FireworksLaunchPad(...).save(name))"
    )


def test_block_type_registers_from_the_module() -> None:
    # `prefect block register -m prefect_fireworks` finds the block through the package
    # __init__, as the prefect.collections entry point does.
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_fireworks"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Successfully registered 1 block" in proc.stdout
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug("fireworks-launchpad")
    assert block_type.name == "FireWorks LaunchPad"
    entry_points = importlib.metadata.entry_points(group="prefect.collections")
    assert "prefect_fireworks.prefect.blocks" in {ep.value for ep in entry_points}
