"""FireWorks 2.1.4 still reads (and reruns) a LaunchPad after each extension FireWorks lacks:
an audited rerun (``rerun_history`` with the undo record), a restore, a plan applied by token, a
roots-only rerun by signature. Only fields FireWorks ignores are added."""

from __future__ import annotations

from typing import Any

import pytest
from fwhelpers import ZEUS, ZEUS_CHILDREN, run_all, run_fw

fireworks = pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

pytestmark = pytest.mark.fireworks


@pytest.fixture
def ref_lp(lp: Any, mongo_uri: str) -> Any:
    """FireWorks' own LaunchPad on the same database as ``lp``."""
    from fireworks import LaunchPad as RefLaunchPad

    ref = RefLaunchPad(host=mongo_uri, uri_mode=True, name=lp.name, strm_lvl="ERROR")
    yield ref
    ref.connection.close()


def ours(lp: Any) -> dict[int, tuple[str, list[int], list[int]]]:
    return {
        d["fw_id"]: (d["state"], d.get("launches", []), d.get("archived_launches", []))
        for d in lp.fireworks.find({}, {"_id": 0})
    }


def fireworks_view(ref: Any, fw_ids: Any) -> dict[int, tuple[str, list[int], list[int]]]:
    """What FireWorks' LaunchPad reads: its Firework objects, launches included."""
    out = {}
    for i in fw_ids:
        fw = ref.get_fw_by_id(i)
        out[i] = (
            fw.state,
            [lch.launch_id for lch in fw.launches],
            [lch.launch_id for lch in fw.archived_launches],
        )
    wf = ref.get_wf_by_fw_id(1)
    assert {fw.fw_id: fw.state for fw in wf.fws} == {i: s for i, (s, _, _) in out.items()}
    return out


def test_fireworks_reads_after_audited_rerun_restore_and_plan(
    gods: Any, ref_lp: Any, tmp_path: Any
) -> None:
    from prefect_fireworks.ops.audit import Actor
    from prefect_fireworks.ops.rerun import rerun_fws
    from prefect_fireworks.ops.restore import apply_restore, plan_restore

    lp = gods
    run_all(lp)
    ids = sorted(ours(lp))

    rerun_fws(lp, [ZEUS])  # 1. an audited rerun with its undo record
    assert lp.get_fw_dict_by_id(ZEUS)["rerun_history"][-1]["descendants"]
    assert fireworks_view(ref_lp, ids) == ours(lp)

    apply_restore(lp, plan_restore(lp, ZEUS), Actor.current("test", "undo"))  # 2. restore
    assert fireworks_view(ref_lp, ids) == ours(lp)
    assert all(ours(lp)[i][0] == "COMPLETED" for i in {ZEUS, *ZEUS_CHILDREN})

    # 3. FireWorks reruns what we restored, and we read what it did
    ref_lp.rerun_fw(ZEUS)
    assert lp.get_fw_dict_by_id(ZEUS)["state"] == "READY"
    assert fireworks_view(ref_lp, ids) == ours(lp)
    run_fw(lp, ZEUS)
    assert fireworks_view(ref_lp, ids) == ours(lp)


def test_fireworks_reads_after_signature_roots_and_pinned_plan(
    lp: Any, ref_lp: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from fwhelpers import start_fw

    from prefect_fireworks.core.models import Firework, Workflow
    from prefect_fireworks.ops.rerun import RerunRequest, execute_rerun
    from prefect_fireworks.ops.signatures import error_groups

    monkeypatch.chdir(tmp_path)
    allow = {"_allow_fizzled_parents": True}
    a = Firework([], name="a", fw_id=1)
    b = Firework([], name="b", fw_id=2, parents=a, spec=allow)
    c = Firework([], name="c", fw_id=3)
    lp.add_wf(Workflow([a, b, c], name="cascade"))
    trace = 'Traceback (most recent call last):\n  File "/x/t.py", line 3, in f\nOSError: 5\n'
    for i in (1, 2, 3):
        _fw, lid = start_fw(lp, i)
        lp.complete_launch(lid, {"stored_data": {"_exception": {"_stacktrace": trace}}}, "FIZZLED")
    ids = [1, 2, 3]
    (group,) = error_groups(lp, ids)
    assert group.roots == [1, 3]
    req = RerunRequest.build(signature=group.signature.sig_id, roots_only=True)
    planned = execute_rerun(lp, req, dry_run=True)  # 3. a plan with its token ...
    assert planned.plan is not None and planned.plan.rerun_ids == [1, 3]
    out = execute_rerun(lp, None, pinned=planned.pinned())  # ... applied as pinned (6. roots)
    assert out.result is not None
    assert fireworks_view(ref_lp, ids) == ours(lp)
    assert [ours(lp)[i][0] for i in ids] == ["READY", "WAITING", "READY"]
    # FireWorks reruns and runs over our records
    ref_lp.rerun_fw(3)
    assert fireworks_view(ref_lp, ids) == ours(lp)
