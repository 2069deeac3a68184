"""The Python example of docs/beyond-fireworks.md runs on a LaunchPad with failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fwhelpers import start_fw

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "beyond-fireworks.md"
TRACE = 'Traceback (most recent call last):\n  File "/w/t.py", line 2, in f\nOSError: 3\n'


def test_python_example_runs(lp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    a = Firework([], name="a", fw_id=1)
    b = Firework([], name="b", fw_id=2, parents=a, spec={"_allow_fizzled_parents": True})
    lp.add_wf(Workflow([a, b], name="cascade"))
    for i in (1, 2):
        _fw, lid = start_fw(lp, i)
        lp.complete_launch(lid, {"stored_data": {"_exception": {"_stacktrace": TRACE}}}, st.FIZZLED)
    code = PAGE.read_text().split("```python", 1)[1].split("```", 1)[0]
    exec(compile(code, str(PAGE), "exec"), {})
    # the roots-only rerun of fw 1 was undone: both FIZZLED again, the record marked restored
    assert {d["fw_id"]: d["state"] for d in lp.fireworks.find()} == {1: st.FIZZLED, 2: st.FIZZLED}
    entry = lp.get_fw_dict_by_id(1)["rerun_history"][-1]
    assert entry["reason"] == "nightly cleanup" and entry["restored"]
