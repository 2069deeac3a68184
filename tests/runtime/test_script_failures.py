"""A failed ScriptTask says why: the end of its stdout and stderr is in the stored stack trace.

So ``lpad get_fws -q '{"action.stored_data._exception._stacktrace": {"$regex": ...}}' -lm``
(and automations' ``stacktrace_regex``) match what the script printed, while its output still
reaches the terminal as it comes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks import Firework, Workflow
from prefect_fireworks.core import states as st
from prefect_fireworks.runtime.firetasks import (
    SCRIPT_OUTPUT_TAIL_CHARS,
    ScriptTask,
    ScriptTaskError,
)
from prefect_fireworks.runtime.rocket import run_one


def test_error_carries_the_tails_and_output_still_streams(
    capfd: pytest.CaptureFixture[str],
) -> None:
    task = ScriptTask(script="echo computing; echo 'MemoryError: out of memory' >&2; exit 2")
    with pytest.raises(ScriptTaskError) as err:
        task.run_task({})
    message = str(err.value)
    assert message.splitlines()[0] == "ScriptTask fizzled! Return code: [2]"  # FireWorks' words
    assert "MemoryError: out of memory" in message
    assert err.value.to_dict() == {
        "returncodes": [2],
        "stdout_tail": "computing",
        "stderr_tail": "MemoryError: out of memory",
    }
    out, errout = capfd.readouterr()
    assert out == "computing\n" and errout == "MemoryError: out of memory\n"


def test_tails_are_bounded() -> None:
    task = ScriptTask(script="yes 0123456789 | head -c 200000 >&2; echo LAST-LINE >&2; exit 1")
    with pytest.raises(ScriptTaskError) as err:
        task.run_task({})
    tail = err.value.stderr_tail
    assert len(tail) <= SCRIPT_OUTPUT_TAIL_CHARS
    assert tail.endswith("LAST-LINE")
    assert len(str(err.value)) < 2 * SCRIPT_OUTPUT_TAIL_CHARS


def test_stored_output_and_stdin_still_work() -> None:
    task = ScriptTask(script="cat; echo err >&2", stdin_key="k", store_stdout=True)
    assert task.run_task({"k": "abc"}).stored_data == {
        "stdout": "abc",
        "returncode": 0,
        "all_returncodes": [0],
    }
    stored = ScriptTask(script="echo o; echo e >&2; exit 4", store_stderr=True)
    with pytest.raises(ScriptTaskError) as err:
        stored.run_task({})
    assert err.value.stderr_tail == "e" and err.value.stdout_tail == "o"


def test_fizzled_launch_stores_why_and_lm_query_finds_it(
    lp: Any, run_cli: Any, tmp_path: Path
) -> None:
    oom = Firework(
        [ScriptTask(script="echo 'MemoryError: cannot allocate' >&2; exit 2")], name="oom"
    )
    other = Firework([ScriptTask(script="echo 'disk full' >&2; exit 2")], name="other")
    ids = lp.add_wf(Workflow([oom, other]))
    for _ in range(2):
        result = run_one(lp, launch_root=tmp_path)
        assert result is not None and result.state == st.FIZZLED
    launch = lp.launches.find_one({"fw_id": ids[oom.fw_id]})
    exc = launch["action"]["stored_data"]["_exception"]
    assert "MemoryError: cannot allocate" in exc["_stacktrace"]
    assert exc["_details"]["stderr_tail"] == "MemoryError: cannot allocate"

    query = json.dumps({"action.stored_data._exception._stacktrace": {"$regex": "MemoryError"}})
    res = run_cli(["get_fws", "-q", query, "-lm", "-d", "ids"])
    assert json.loads(res.stdout) == ids[oom.fw_id]  # FireWorks prints one id bare
