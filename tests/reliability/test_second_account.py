"""Another local account can neither read the embedded server's home nor use the server.

Runs ``lpad`` as a real second OS user (created with ``useradd``), so it needs root and
``runuser``; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from prefect_fireworks.store import embedded

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="creating a second local account needs root",
    ),
    pytest.mark.skipif(
        shutil.which("useradd") is None or shutil.which("runuser") is None,
        reason="needs useradd and runuser",
    ),
]

BIN = Path(sys.executable).parent
SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages"))
REPO = Path(__file__).resolve().parents[2]
LPAD_MAIN = "import sys; from prefect_fireworks.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    """A fresh local account without a home directory, deleted afterwards."""
    name = f"pfw{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def python_of(other_user: str) -> list[str]:
    """A Python of this version the other account can run, with this venv's packages."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(f"python{version}"), "/usr/bin/python3"):
        if candidate is None:
            continue
        probe = _as(other_user, [candidate, "-c", "import sys; print(sys.version[:4])"])
        if probe.returncode == 0 and probe.stdout.strip().startswith(version):
            break
    else:
        pytest.skip(f"no Python {version} the second account may execute")
    # The checkout and its venv must be readable by the other account (a clone inside a 0700
    # directory, e.g. `mktemp -d`, is not): otherwise it cannot even import the package.
    probe = _as(other_user, [candidate, "-c", "import prefect_fireworks.cli, pymongo"])
    if probe.returncode != 0:
        pytest.skip(f"the second account cannot read this checkout ({REPO}) or its venv")
    return [candidate]


@pytest.fixture(scope="module")
def owner_server() -> Iterator[tuple[Path, embedded.ServerInfo]]:
    """The owner's server, in a home whose parent everyone can traverse (as ``~`` usually is).

    Only the home's own mode then keeps the other account out.
    """
    parent = Path(tempfile.mkdtemp(prefix="pfw-owner-"))
    os.chmod(parent, 0o755)
    home = parent / ".prefect-fireworks"
    info = embedded.start(home)
    try:
        yield home, info
    finally:
        embedded.stop(home)
        shutil.rmtree(parent, ignore_errors=True)


def _as(user: str, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    scratch = Path(tempfile.mkdtemp(prefix="pfw-other-"))
    os.chmod(scratch, 0o777)
    clean = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(scratch),
        "PREFECT_HOME": str(scratch / "prefect"),
        # The venv's interpreter may sit in a directory only its owner can enter (pyenv under
        # /root): the other account then runs a system Python of the same version on the
        # venv's (world-readable) packages.
        "PYTHONPATH": f"{REPO}:{SITE_PACKAGES}",
        **env,
    }
    try:
        return subprocess.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in clean.items()),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=scratch,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_owner_home_is_closed_to_other_accounts(
    other_user: str, owner_server: tuple[Path, embedded.ServerInfo]
) -> None:
    home, _ = owner_server
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in (embedded.CREDENTIALS_FILE, embedded.STATE_FILE):
        result = _as(other_user, ["cat", str(home / name)])
        assert result.returncode != 0
        assert "Permission denied" in result.stderr


def test_lpad_of_another_account_pointed_at_the_owner_home_fails_in_one_line(
    other_user: str, python_of: list[str], owner_server: tuple[Path, embedded.ServerInfo]
) -> None:
    home, info = owner_server
    result = _as(
        other_user,
        [*python_of, "-c", LPAD_MAIN, "get_fws"],
        PREFECT_INTEGRATIONS_FIREWORKS_HOME=str(home),
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert embedded.status(home) == info  # still the owner's one server


def test_another_account_that_knows_the_port_is_refused(
    other_user: str, python_of: list[str], owner_server: tuple[Path, embedded.ServerInfo]
) -> None:
    _, info = owner_server
    with pymongo.MongoClient(info.uri) as owner:
        before = owner.fireworks.fireworks.count_documents({})

    result = _as(
        other_user,
        [*python_of, "-c", LPAD_MAIN, "get_fws"],
        PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI=info.display_uri,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "requires authentication" in lines[0], result.stderr

    attack = (
        "import pymongo, sys\n"
        "c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)\n"
        "try:\n"
        "    c.fireworks.fireworks.insert_one({'fw_id': 999, 'spec': {'_tasks': []}})\n"
        "except pymongo.errors.OperationFailure as exc:\n"
        "    print('refused', exc.code)\n"
    )
    result = _as(other_user, [*python_of, "-c", attack, info.display_uri])
    assert result.stdout.strip() == "refused 13", result.stderr
    with pymongo.MongoClient(info.uri) as owner:
        assert owner.fireworks.fireworks.count_documents({}) == before
