"""LaunchPad configuration: my_launchpad.yaml, secrets, precedence, connection checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from prefect_fireworks.core.settings import SettingsError, get_settings
from prefect_fireworks.store import embedded
from prefect_fireworks.store.config import (
    ConfigError,
    LaunchPadConfig,
    ServerUnreachableError,
    check_connection,
    redact_uri,
    resolve_config,
)

ENV = "PREFECT_INTEGRATIONS_FIREWORKS_"

LAUNCHPAD_YAML = """\
host: db.example.org
port: 27018
name: fw_prod
username: alice
password: s3cret-pw
logdir: null
strm_lvl: INFO
user_indices: []
wf_user_indices: []
mongoclient_kwargs:
  tls: false
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No LaunchPad configured; the embedded server's home is a fresh directory."""
    for name in ("MONGODB_URI", "DATABASE", "LAUNCHPAD_FILE", "LAUNCH_ROOT"):
        monkeypatch.delenv(ENV + name, raising=False)
    home = tmp_path / "fw-home"
    monkeypatch.setenv(ENV + "HOME", str(home))
    return home


@pytest.fixture
def launchpad_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_launchpad.yaml"
    path.write_text(LAUNCHPAD_YAML)
    return path


# --- settings -----------------------------------------------------------------------------------


def test_settings_defaults(clean_env: Path) -> None:
    settings = get_settings()
    assert settings.mongodb_uri is None
    assert settings.database == "fireworks"
    assert settings.launchpad_file is None
    assert settings.home == clean_env
    assert settings.embedded_data_dir == clean_env / "mongodb"
    assert settings.launch_root is None


def test_settings_are_read_on_every_call(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "DATABASE", "other")
    monkeypatch.setenv(ENV + "LAUNCH_ROOT", "/scratch/launches")
    monkeypatch.setenv(ENV + "MONGODB_URI", "mongodb+srv://cluster.example.org")
    settings = get_settings()
    assert settings.database == "other"
    assert settings.launch_root == Path("/scratch/launches")
    assert settings.mongodb_uri == "mongodb+srv://cluster.example.org"
    monkeypatch.delenv(ENV + "HOME")
    assert get_settings().home == Path("~/.prefect-fireworks").expanduser()


def test_settings_reject_a_non_mongodb_uri(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV + "MONGODB_URI", "postgres://localhost")
    with pytest.raises(SettingsError, match="mongodb://"):
        get_settings()
    with pytest.raises(ConfigError, match="mongodb://"):
        resolve_config()


# --- my_launchpad.yaml ----------------------------------------------------------------------------


def test_from_file_reads_fireworks_keys(launchpad_file: Path) -> None:
    config = LaunchPadConfig.from_file(launchpad_file)
    assert config.host == "db.example.org"
    assert config.port == 27018
    assert config.name == "fw_prod"
    assert config.username == "alice"
    assert config.password is not None
    assert config.password.get_secret_value() == "s3cret-pw"
    assert config.authsource == "fw_prod"  # defaults to the database name
    assert config.uri_mode is False
    assert config.mongoclient_kwargs == {"tls": False}
    assert config.strm_lvl == "INFO"


def test_from_file_defaults_and_explicit_authsource(tmp_path: Path) -> None:
    path = tmp_path / "lp.yaml"
    path.write_text("username: bob\npassword: pw\nauthsource: admin\nport: null\n")
    config = LaunchPadConfig.from_file(path)
    assert (config.host, config.port, config.name) == ("localhost", 27017, "fireworks")
    assert config.authsource == "admin"
    assert LaunchPadConfig().authsource is None  # no username, no authsource


def test_from_file_uri_mode(tmp_path: Path) -> None:
    path = tmp_path / "lp.yaml"
    path.write_text(
        "host: mongodb+srv://carol:pa55@cluster0.example.net/fwdb?retryWrites=true\n"
        "uri_mode: true\n"
    )
    config = LaunchPadConfig.from_file(path)
    assert config.uri_mode is True
    assert config.name == "fwdb"  # from the URI path, as FireWorks' default database
    assert config.authsource is None
    assert config.redacted_uri() == (
        "mongodb+srv://carol:****@cluster0.example.net/fwdb?retryWrites=true"
    )
    assert "pa55" not in repr(config)


def test_from_file_reads_json(tmp_path: Path) -> None:
    path = tmp_path / "lp.json"
    path.write_text(json.dumps({"host": "h", "port": 1234, "name": "n"}))
    config = LaunchPadConfig.from_file(path)
    assert (config.host, config.port, config.name) == ("h", 1234, "n")


def test_password_is_never_shown(launchpad_file: Path) -> None:
    config = LaunchPadConfig.from_file(launchpad_file)
    for text in (repr(config), str(config), config.redacted_uri(), str(config.to_dict())):
        assert "s3cret-pw" not in text
    assert config.redacted_uri() == "mongodb://alice:****@db.example.org:27018/fw_prod"
    assert config.model_dump_json().count("s3cret-pw") == 0


def test_to_file_round_trips_in_fireworks_format(launchpad_file: Path, tmp_path: Path) -> None:
    config = LaunchPadConfig.from_file(launchpad_file)
    out = config.to_file(tmp_path / "out.yaml")
    data = yaml.safe_load(out.read_text())
    assert list(data) == [
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
    ]
    assert data["password"] == "s3cret-pw"
    assert out.stat().st_mode & 0o077 == 0
    assert LaunchPadConfig.from_file(out) == config


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("host: [unclosed\n", "malformed LaunchPad file"),
        ("- host\n- port\n", "must hold a mapping"),
        ("", "not empty"),
        ("fworker: x\ncategory: y\n", "none of the LaunchPad keys"),
        ("host: h\nport: not-a-port\n", "invalid LaunchPad file .*port"),
        ("host: h\nuri_mode: true\n", "uri_mode"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lp.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as excinfo:
        LaunchPadConfig.from_file(path)
    assert "\n" not in str(excinfo.value)


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read LaunchPad file"):
        LaunchPadConfig.from_file(tmp_path / "nope.yaml")


def test_from_uri(mongo_uri: str) -> None:
    assert LaunchPadConfig.from_uri(mongo_uri).name == "fireworks"
    # The session server's URI carries credentials and ?authSource=admin: put the database
    # in its path.
    base, _, query = mongo_uri.partition("?")
    with_db = f"{base}fwdb?{query}"
    assert LaunchPadConfig.from_uri(with_db).name == "fwdb"
    assert LaunchPadConfig.from_uri(with_db, name="other").name == "other"
    with pytest.raises(ConfigError, match="not a MongoDB URI"):
        LaunchPadConfig.from_uri("localhost:27017")


def test_redact_uri_masks_secret_options() -> None:
    uri = "mongodb://u:p@h1:1,h2:2/db?authMechanismProperties=AWS_SESSION_TOKEN:t&tlsCertificateKeyFilePassword=x&w=1"
    redacted = redact_uri(uri)
    assert redacted.startswith("mongodb://u:****@h1:1,h2:2/db?")
    assert ":p@" not in redacted and "=x" not in redacted
    assert "w=1" in redacted


def test_client_kwargs() -> None:
    config = LaunchPadConfig(host="h", username="u", password="pw", name="db")  # type: ignore[arg-type]
    kwargs = config.client_kwargs()
    assert kwargs == {
        "username": "u",
        "password": "pw",
        "authSource": "db",
        "port": 27017,
        "socketTimeoutMS": 300000,
        "serverSelectionTimeoutMS": 5000,
    }
    config = LaunchPadConfig.from_uri(
        "mongodb://h/?serverSelectionTimeoutMS=100", mongoclient_kwargs={"appname": "x"}
    )
    assert config.client_kwargs() == {"appname": "x"}


def test_client_talks_to_the_server(mongo_uri: str, db_name: str) -> None:
    config = LaunchPadConfig.from_uri(mongo_uri, name=db_name)
    with config.client() as client:
        check_connection(client, timeout=5)
        client[config.name].fireworks.insert_one({"fw_id": 1})
        assert client[db_name].fireworks.count_documents({}) == 1


# --- precedence -----------------------------------------------------------------------------------


def test_explicit_file_wins(
    clean_env: Path, launchpad_file: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    monkeypatch.setenv(ENV + "MONGODB_URI", mongo_uri)
    monkeypatch.setenv(ENV + "LAUNCHPAD_FILE", "/nonexistent/my_launchpad.yaml")
    assert resolve_config(launchpad_file).host == "db.example.org"
    assert resolve_config(str(launchpad_file)).host == "db.example.org"


def test_env_uri_beats_env_file(
    clean_env: Path, launchpad_file: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    monkeypatch.setenv(ENV + "MONGODB_URI", mongo_uri)
    monkeypatch.setenv(ENV + "DATABASE", "fw_test")
    monkeypatch.setenv(ENV + "LAUNCHPAD_FILE", str(launchpad_file))
    config = resolve_config()
    assert (config.host, config.name, config.uri_mode) == (mongo_uri, "fw_test", True)

    monkeypatch.delenv(ENV + "MONGODB_URI")
    assert resolve_config().host == "db.example.org"
    assert not clean_env.exists()  # the embedded server was never involved


def test_embedded_server_is_the_default(clean_env: Path) -> None:
    with pytest.raises(ServerUnreachableError, match="lpad server start"):
        resolve_config(start_embedded=False)
    try:
        config = resolve_config()
        info = embedded.status(clean_env)
        assert info is not None
        assert (config.host, config.name, config.uri_mode) == (info.uri, "fireworks", True)
        assert resolve_config(start_embedded=False) == config
        with config.client() as client:
            check_connection(client, timeout=5)
    finally:
        assert embedded.stop(clean_env)


# --- unreachable servers --------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    yield embedded.free_port()


def test_unreachable_server_fails_fast(closed_port: int) -> None:
    config = LaunchPadConfig(
        host="127.0.0.1",
        port=closed_port,
        username="u",
        password="top-secret",  # type: ignore[arg-type]
        mongoclient_kwargs={"serverSelectionTimeoutMS": 300},
    )
    started = time.perf_counter()
    with config.client() as client, pytest.raises(ServerUnreachableError) as excinfo:
        check_connection(client, timeout=0.5, display_uri=config.redacted_uri())
    assert time.perf_counter() - started < 3
    message = str(excinfo.value)
    assert message.startswith(f"cannot reach MongoDB at mongodb://u:****@127.0.0.1:{closed_port}/")
    assert "top-secret" not in message
    assert "\n" not in message


def test_unreachable_server_names_the_client_hosts(closed_port: int) -> None:
    config = LaunchPadConfig.from_uri(f"mongodb://127.0.0.1:{closed_port}/")
    with config.client() as client, pytest.raises(ServerUnreachableError) as excinfo:
        check_connection(client, timeout=0.3)
    assert str(excinfo.value).startswith(
        f"cannot reach MongoDB at mongodb://127.0.0.1:{closed_port}/:"
    )
