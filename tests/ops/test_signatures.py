"""Error signatures and root failures (``lpad errors``), on the real server."""

from __future__ import annotations

from typing import Any

from fwhelpers import start_fw

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.roots import root_failures, roots_only
from prefect_fireworks.ops.signatures import (
    error_groups,
    fw_ids_with_signature,
    match_signature,
    normalise_message,
    signature_of,
)


def trace(path: str, n: int, exc: str = "FileNotFoundError", lineno: int = 12) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/opt/env/lib/python3.11/site-packages/prefect_fireworks/runtime/rocket.py", '
        "line 420, in run\n"
        "    out = task.run_task(spec)\n"
        f'  File "/home/u/work/{n}/mytasks.py", line {lineno}, in run_task\n'
        "    data = read(self['input'])\n"
        f'  File "/home/u/work/{n}/mytasks.py", line {lineno + 30}, in read\n'
        "    with open(p) as f:\n"
        "         ^^^^^^^\n"
        f"{exc}: [Errno 2] No such file or directory: '{path}'\n"
    )


def test_normalise_masks_numbers_paths_ids_times() -> None:
    msg = (
        "run 17 of fw_42 at 2026-11-26T14:00:01.5Z failed in /scratch/a/b.dat "
        "(object at 0x7f3a2b, id 5f3e9a0c1d2b3c4d5e6f7a8b, "
        "job 1b4e28ba-2fa1-11d2-883f-0016d3cca427)"
    )
    assert normalise_message(msg) == (
        "run <n> of fw_<n> at <time> failed in <path> (object at <hex>, id <id>, job <id>)"
    )
    assert normalise_message("Python3 error x2") == "Python3 error x2"


def test_same_bug_same_signature_other_bug_other() -> None:
    a = signature_of(trace("/scratch/run_1/in.dat", 1))
    b = signature_of(trace("/scratch/run_9/other.dat", 9, lineno=40))
    assert a == b
    assert a.exc_type == "FileNotFoundError"
    assert a.message == "[Errno <n>] No such file or directory: '<path>'"
    assert a.frames == ("rocket.py:run", "mytasks.py:run_task", "mytasks.py:read")
    assert len(a.sig_id) == 12
    assert signature_of(trace("/x/y", 1, exc="PermissionError")).sig_id != a.sig_id


def test_chained_trace_uses_the_raised_exception_and_no_trace_has_one_too() -> None:
    chained = (
        trace("/a/b", 1)
        + "\nDuring handling of the above exception, another exception occurred:\n\n"
        + "Traceback (most recent call last):\n"
        + '  File "/w/x.py", line 3, in main\n    raise RuntimeError("gave up after 3 tries")\n'
        + "RuntimeError: gave up after 3 tries\n"
    )
    sig = signature_of(chained)
    assert (sig.exc_type, sig.message, sig.frames) == (
        "RuntimeError",
        "gave up after <n> tries",
        ("x.py:main",),
    )
    none = signature_of(None, "lost run: no heartbeat for 14400 s")
    assert none.title == "lost run: no heartbeat for <n> s"
    assert signature_of("").title == "<no stack trace recorded>"


def _fizzle(lp: Any, fw_id: int, text: str) -> int:
    fw, lid = start_fw(lp, fw_id)
    assert fw is not None and fw["fw_id"] == fw_id
    action = {"stored_data": {"_exception": {"_stacktrace": text}}, "exit": True}
    lp.complete_launch(lid, action, st.FIZZLED)
    return int(lid)


def _cascade(lp: Any) -> dict[str, int]:
    """root A -> B (allows fizzled parents) -> C; D a second root; E completes."""
    a = Firework([], name="A", fw_id=1)
    b = Firework([], name="B", fw_id=2, parents=a, spec={"_allow_fizzled_parents": True})
    c = Firework([], name="C", fw_id=3, parents=b, spec={"_allow_fizzled_parents": True})
    d = Firework([], name="D", fw_id=4)
    ids = lp.add_wf(Workflow([a, b, c, d], name="cascade"))
    return {k: ids[v] for k, v in {"A": 1, "B": 2, "C": 3, "D": 4}.items()}


def test_groups_counts_roots_and_selection_by_signature(lp: Any, tmp_path: Any, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = _cascade(lp)
    _fizzle(lp, ids["A"], trace("/scratch/run_1/in.dat", 1))
    _fizzle(lp, ids["B"], trace("/scratch/run_2/in.dat", 2))
    _fizzle(lp, ids["C"], trace("/scratch/run_3/x.dat", 3, exc="PermissionError"))
    _fizzle(lp, ids["D"], trace("/scratch/run_4/in.dat", 4))
    fizzled = lp.get_fw_ids({"state": st.FIZZLED})
    assert sorted(fizzled) == sorted(ids.values())

    assert root_failures(lp, fizzled) == {ids["A"], ids["D"]}
    assert roots_only(lp, [ids["C"], ids["D"], ids["B"], ids["A"]]) == [ids["D"], ids["A"]]

    groups = error_groups(lp, fizzled)
    assert [g.count for g in groups] == [3, 1]
    big, small = groups
    assert big.fw_ids == sorted([ids["A"], ids["B"], ids["D"]])
    assert big.roots == sorted([ids["A"], ids["D"]])
    assert small.fw_ids == [ids["C"]] and small.roots == []
    assert small.signature.exc_type == "PermissionError"
    assert big.first_seen is not None and big.first_seen <= big.last_seen  # type: ignore[operator]
    d = big.to_dict()
    assert d["count"] == 3 and d["sig_id"] == big.signature.sig_id
    assert "FileNotFoundError" in d["example_stacktrace"]

    sel = fw_ids_with_signature(lp, fizzled, big.signature.sig_id[:6])
    assert sel == big.fw_ids
    for bad, why in [("zz", "hexadecimal"), ("abc", "too short"), ("ffffffff", "no failed")]:
        try:
            match_signature(groups, bad)
        except ValueError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(bad)


def test_only_active_fizzled_launches_count(lp: Any, tmp_path: Any, monkeypatch) -> None:
    from prefect_fireworks.ops.rerun import rerun_fws

    monkeypatch.chdir(tmp_path)
    ids = _cascade(lp)
    _fizzle(lp, ids["D"], trace("/s/1", 1))
    rerun_fws(lp, [ids["D"]])  # the FIZZLED launch is archived: no longer a current failure
    assert error_groups(lp, [ids["D"]]) == []
    assert error_groups(lp, []) == []
