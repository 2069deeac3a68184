"""Bad input: exit 2, one line on stderr, no traceback, nothing written.

Each case runs the real console script (``lpad``/``rlaunch``) in a subprocess on a database
holding one small workflow, and compares every collection before and after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core.models import Firework, Workflow

BIN = Path(sys.executable).parent

DEEP_QUERY = '{"a": ' * 5000 + "1" + "}" * 5000
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
)


def _files(tmp: Path) -> dict[str, Path]:
    files = {
        "deep.yaml": "fws: " + "[" * 10000 + "]" * 10000 + "\n",
        "bomb.yaml": ALIAS_BOMB,
        "recursive.yaml": "fws: &a [1, *a]\n",
        "bomb_launchpad.yaml": ALIAS_BOMB,
    }
    out = {}
    for name, text in files.items():
        out[name] = tmp / name
        out[name].write_text(text)
    return out


# (id, program, arguments with {file} placeholders, text the one error line must contain)
CASES: list[tuple[str, str, list[str], str]] = [
    ("huge-id", "lpad", ["get_fws", "-i", "99999999999999999999999"], "out of range"),
    ("huge-id-mass-op", "lpad", ["defuse_fws", "-i", "99999999999999999999999"], "out of range"),
    ("non-ascii-digit", "lpad", ["get_fws", "-i", "\u0663"], "invalid fw_id"),
    ("non-ascii-digit-rerun", "lpad", ["rerun_fws", "-i", "\u0663"], "invalid fw_id"),
    ("markup-in-id", "lpad", ["get_fws", "-i", "[/x]"], "'[/x]'"),
    ("set-in-query", "lpad", ["get_fws", "-q", "{'name': {1,2}}"], "cannot be sent to MongoDB"),
    ("list-query", "lpad", ["get_fws", "-q", "[1]"], "must be a mapping"),
    ("5000-deep-query", "lpad", ["get_fws", "-q", DEEP_QUERY], "nested deeper than 100"),
    ("huge-int-in-query", "lpad", ["get_fws", "-q", '{"x": 99999999999999999999999}'], "8-byte"),
    ("10000-deep-yaml", "lpad", ["add", "{deep.yaml}"], "nested deeper than"),
    ("yaml-alias-bomb", "lpad", ["add", "{bomb.yaml}"], "alias bomb"),
    ("yaml-recursive-alias", "lpad", ["add", "{recursive.yaml}"], "recursive alias"),
    ("launchpad-file-bomb", "lpad", ["-l", "{bomb_launchpad.yaml}", "get_fws"], "alias bomb"),
    ("lostruns-time-inf", "lpad", ["detect_lostruns", "--time", "inf"], "--time"),
    ("lostruns-time-nan", "lpad", ["detect_lostruns", "--time", "nan"], "--time"),
    ("lostruns-time-negative", "lpad", ["detect_lostruns", "--time", "-5"], "--time"),
    ("rapidfire-unknown-wf", "lpad", ["rapidfire", "--wf-id", "999999"], "999999"),
    ("rapidfire-ping-0", "lpad", ["rapidfire", "--ping-secs", "0"], "--ping-secs"),
    ("rapidfire-negative-sleep", "lpad", ["rapidfire", "--sleep", "-1"], "--sleep"),
    ("rapidfire-max-loops-2", "lpad", ["rapidfire", "--max-loops", "-2"], "--max-loops"),
    ("server-port-99999", "lpad", ["server", "start", "--port", "99999"], "--port"),
    ("unknown-option", "lpad", ["get_fws", "--no-such-option"], "No such option"),
    ("rlaunch-ping-0", "rlaunch", ["singleshot", "--ping-secs", "0"], "--ping-secs"),
    ("rlaunch-negative-sleep", "rlaunch", ["rapidfire", "--sleep", "-1"], "--sleep"),
    ("rlaunch-max-loops-2", "rlaunch", ["rapidfire", "--max-loops", "-2"], "--max-loops"),
]


def _snapshot(lp: Any) -> dict[str, list[str]]:
    return {
        name: sorted(json.dumps(d, sort_keys=True, default=str) for d in lp.db[name].find())
        for name in sorted(lp.db.list_collection_names())
    }


@pytest.fixture
def seeded(lp: Any) -> Any:
    a = Firework([{"_fw_name": "ScriptTask", "script": "echo a"}], name="a")
    b = Firework([{"_fw_name": "ScriptTask", "script": "echo b"}], name="b", parents=[a])
    lp.add_wf(Workflow([a, b], name="small"))
    return lp


@pytest.mark.parametrize(
    ("program", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_in_one_line_and_writes_nothing(
    seeded: Any, tmp_path: Path, program: str, args: list[str], expected: str
) -> None:
    files = _files(tmp_path)
    argv = [str(files[a[1:-1]]) if a[:1] == "{" and a[1:-1] in files else a for a in args]
    before = _snapshot(seeded)

    result = subprocess.run(
        [str(BIN / program), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )

    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("Error: ") and expected in lines[0], lines[0]
    assert len(lines[0]) < 400
    assert _snapshot(seeded) == before


def test_names_with_brackets_are_printed_as_they_are(seeded: Any, tmp_path: Path) -> None:
    name = "[/x] [bold red]not bold[/bold red]"
    wf = tmp_path / "wf.yaml"
    Workflow(
        [Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name=name)], name=name
    ).to_file(wf)
    added = subprocess.run(
        [str(BIN / "lpad"), "add", str(wf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert f"Added workflow {name} from" in added.stdout  # results on stdout

    shown = subprocess.run(
        [str(BIN / "lpad"), "get_fws", "-n", name, "-d", "more"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert name in shown.stdout
