"""Property-based: generated arguments thrown at ``lpad`` commands and generated documents at
``lpad add``. Whatever comes in: the exit status is 0, 1 or 2, never a traceback, and the
LaunchPad is unchanged unless the exit status is 0. Bounded (a few dozen examples per property)
so the file runs in well under a minute."""

from __future__ import annotations

import json
import string
from datetime import date
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from typer.testing import CliRunner

from prefect_fireworks.cli import app

RUNNER = CliRunner()
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

#: Commands safe to run with any argument (no Prefect flow runs, no server start/stop).
COMMANDS = [
    ["get_fws"],
    ["get_wflows"],
    ["rerun_fws"],
    ["defuse_fws"],
    ["pause_fws"],
    ["resume_fws"],
    ["reignite_fws"],
    ["archive_wflows"],
    ["delete_wflows"],
    ["detect_lostruns"],
    ["get_launchdir"],
    ["admin", "check"],
    ["admin", "refresh"],
    ["admin", "unlock"],
]
OPTIONS = [
    "-i",
    "-n",
    "-s",
    "-q",
    "-d",
    "-m",
    "--password",
    "--sort",
    "--rsort",
    "--time",
    "--max_runtime",
    "-lq",
    "--task-level",
    "-lid",
    "--dry-run",
    "--json",
    "-lm",
    "-t",
    "--repair",
]
#: Values that have broken CLIs before: huge and non-ASCII digits, Rich markup, bad JSON.
NASTY = [
    "1",
    "1,2,3",
    "0",
    "-1",
    "99999999999999999999999",
    "\u0663",
    "[/x]",
    "[bold]x",
    "{}",
    "{'name': {1,2}}",
    '{"$where": "1"}',
    '{"state": {"$regex": "("}}',
    '{"fw_id": {"$gt": 0}}',
    "FIZZLED",
    "COMPLETED",
    "inf",
    "nan",
    "1e400",
    "",
    " ",
    "\x00",
    "ids",
    "count",
    "created_on",
    date.today().isoformat(),
]

values = hs.one_of(
    hs.sampled_from(NASTY),
    hs.text(string.printable, max_size=12),
    hs.integers(-(10**20), 10**20).map(str),
)
argv = hs.tuples(
    hs.sampled_from(COMMANDS),
    hs.lists(hs.tuples(hs.sampled_from(OPTIONS), values), max_size=4),
    hs.lists(values, max_size=1),
)


def _snapshot(lp: Any) -> dict[str, list[Any]]:
    out = {}
    for name in ("fireworks", "workflows", "launches", "fw_id_assigner", "fw_intents"):
        out[name] = sorted(repr(sorted(d.items())) for d in lp.db[name].find({}))
    return out


def _run(args: list[str]) -> Any:
    return RUNNER.invoke(app, args, catch_exceptions=True)


def _assert_clean(result: Any, args: list[str]) -> None:
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"lpad {args!r} raised {type(exc).__name__}: {exc}"
    )
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output, (args, result.output[-2000:])


@pytest.fixture
def populated(gods: Any) -> Any:
    from fwhelpers import run_fw

    run_fw(gods)
    run_fw(gods, fail_at=0)
    return gods


@SETTINGS
@given(argv)
def test_any_arguments(populated: Any, case: tuple[list[str], list[tuple[str, str]], list[str]]):
    cmd, opts, pos = case
    args = [*cmd]
    for opt, val in opts:
        args.append(opt)
        if opt not in ("--task-level", "--dry-run", "--json", "-lm", "-t", "--repair"):
            args.append(val)
    args += pos
    before = _snapshot(populated)
    result = _run(args)
    _assert_clean(result, args)
    if result.exit_code != 0:
        assert _snapshot(populated) == before, f"lpad {args!r} exited {result.exit_code} but wrote"


# -- documents for `lpad add` -------------------------------------------------------------------
keys = hs.one_of(
    hs.sampled_from(["a", "b", "a.b", "$x", "_tasks", "state", "launches", "", "\u0663", "x" * 50]),
    hs.text(string.ascii_letters + ".$_", min_size=1, max_size=6),
)
leaves = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(-(2**70), 2**70),
    hs.floats(allow_nan=False),
    hs.text(max_size=20),
)
json_values = hs.recursive(
    leaves,
    lambda inner: hs.one_of(hs.lists(inner, max_size=3), hs.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
task = hs.fixed_dictionaries(
    {"_fw_name": hs.sampled_from(["ScriptTask", "PyTask", "NoSuchTask"])},
    optional={"script": hs.text(max_size=10), "func": hs.text(max_size=10)},
)
firework = hs.fixed_dictionaries(
    {"fw_id": hs.integers(-3, 3), "spec": hs.dictionaries(keys, json_values, max_size=3)},
    optional={
        "name": hs.text(max_size=10),
        "state": hs.sampled_from(["READY", "WAITING", "COMPLETED", "RUNNING", "bogus"]),
        "launches": hs.lists(hs.integers(0, 5), max_size=2),
        "tasks": hs.lists(task, max_size=2),
    },
).map(lambda d: {**d, "spec": {**d["spec"], "_tasks": d.pop("tasks", [])}} if "tasks" in d else d)
workflow = hs.one_of(
    firework,
    hs.fixed_dictionaries(
        {"fws": hs.lists(firework, min_size=0, max_size=3)},
        optional={
            "links": hs.dictionaries(
                hs.integers(-3, 3).map(str), hs.lists(hs.integers(-3, 3), max_size=2), max_size=3
            ),
            "metadata": hs.dictionaries(keys, json_values, max_size=2),
            "name": hs.text(max_size=10),
        },
    ),
    json_values,
)


@SETTINGS
@given(workflow, hs.sampled_from(["yaml", "json"]))
def test_any_document_added(lp: Any, tmp_path_factory: Any, doc: Any, fmt: str):
    path = tmp_path_factory.mktemp("add") / f"wf.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc))
    before = _snapshot(lp)
    result = _run(["add", str(path)])
    _assert_clean(result, ["add", str(path)])
    if result.exit_code != 0:
        assert _snapshot(lp) == before, f"add exited {result.exit_code} but wrote"
        err = (result.stderr or result.output).strip()
        assert len(err.splitlines()) == 1 and len(err) < 300, err[:400]
