"""The same rerun scenarios with FireWorks 2.1.4 (its own LaunchPad and rapidfire, on another
database of the same server) and with ours; states, launch / archived-launch counts and
``_recovery`` keys must agree except where FIREWORKS_SEMANTICS lists a deliberate difference."""

from __future__ import annotations

import uuid

import pytest
from fwhelpers import RECOVERY_KEYS, ZEUS, greek_gods, run_all, run_fw

fireworks = pytest.importorskip("fireworks")

pytestmark = pytest.mark.fireworks


@pytest.fixture
def flp(mongo_uri):
    from fireworks.core.launchpad import LaunchPad as FWLaunchPad

    name = f"fwref_{uuid.uuid4().hex[:10]}"
    ref = FWLaunchPad(host=mongo_uri, uri_mode=True, name=name, strm_lvl="ERROR")
    ref.reset(password=None, require_password=False)
    try:
        yield ref
    finally:
        ref.connection.drop_database(name)


def _fw_greek_gods():
    """FireWorks' own Greek-gods workflow, built with FireWorks' classes from ours."""
    from fireworks import Firework, ScriptTask, Workflow

    ours = greek_gods()
    fws = {}
    for fw in ours.fws:
        task = ScriptTask.from_str(fw.spec["_tasks"][0]["script"], {"store_stdout": True})
        fws[fw.fw_id] = Firework(task, name=fw.name, fw_id=fw.fw_id)
    return Workflow(list(fws.values()), {p: kids for p, kids in ours.links.items() if kids})


def _summary(db):
    return {
        d["fw_id"]: (d["state"], len(d.get("launches", [])), len(d.get("archived_launches", [])))
        for d in db.fireworks.find(
            {}, {"fw_id": 1, "state": 1, "launches": 1, "archived_launches": 1}
        )
    }


def _wf_states(db):
    wf = db.workflows.find_one({})
    return wf["state"], {int(k): v for k, v in wf["fw_states"].items()}


def test_greek_gods_rerun_matches_fireworks(lp, flp, tmp_path, monkeypatch):
    from fireworks.core.fworker import FWorker as RefWorker
    from fireworks.core.rocket_launcher import rapidfire

    from prefect_fireworks.ops.rerun import rerun_fws

    monkeypatch.chdir(tmp_path)
    flp.add_wf(_fw_greek_gods())
    rapidfire(flp, RefWorker(), m_dir=str(tmp_path))
    flp.rerun_fw(ZEUS)
    lp.add_wf(greek_gods())
    run_all(lp)
    rerun_fws(lp, [ZEUS])
    assert _summary(lp.db) == _summary(flp.db)
    assert _wf_states(lp.db) == _wf_states(flp.db)
    # and rerunning the root of everything, from there
    flp.rerun_fw(1)
    rerun_fws(lp, [1])
    assert _summary(lp.db) == _summary(flp.db)
    assert _wf_states(lp.db) == _wf_states(flp.db)


def test_task_level_recovery_matches_fireworks(lp, flp, tmp_path, monkeypatch):
    from fireworks import Firework as RefFirework
    from fireworks import ScriptTask
    from fireworks.core.fworker import FWorker as RefWorker
    from fireworks.core.rocket_launcher import rapidfire

    from prefect_fireworks.core.models import Firework, Workflow
    from prefect_fireworks.ops.rerun import rerun_fws

    monkeypatch.chdir(tmp_path)
    tasks = [
        ScriptTask.from_str("echo one"),
        ScriptTask({"script": ["exit 1"], "fizzle_bad_rc": True}),
        ScriptTask.from_str("echo three"),
    ]
    flp.add_wf(RefFirework(tasks, name="three"))
    rapidfire(flp, RefWorker(), m_dir=str(tmp_path))
    assert flp.get_fw_by_id(1).state == "FIZZLED"
    lp.add_wf(Workflow([Firework([t.to_dict() for t in tasks], name="three")]))
    run_fw(lp, 1, fail_at=1)

    flp.rerun_fw(1, recover_launch="last", recover_mode="cp")
    rerun_fws(lp, [1], task_level=True, recover_mode="cp")
    ref = flp.fireworks.find_one({"fw_id": 1})["spec"]["_recovery"]
    ours = lp.fireworks.find_one({"fw_id": 1})["spec"]["_recovery"]
    assert set(ref) == set(ours) == RECOVERY_KEYS
    assert (
        (ours["_task_n"], ours["_mode"], ours["_launch_id"])
        == (
            ref["_task_n"],
            ref["_mode"],
            ref["_launch_id"],
        )
        == (1, "cp", 1)
    )
    assert _summary(lp.db) == _summary(flp.db)

    # Deliberate difference 1: a later plain rerun keeps _recovery here, FireWorks drops it.
    flp.rerun_fw(1)
    rerun_fws(lp, [1])
    assert "_recovery" not in flp.fireworks.find_one({"fw_id": 1})["spec"]
    assert set(lp.fireworks.find_one({"fw_id": 1})["spec"]["_recovery"]) == RECOVERY_KEYS
    # --clear-recovery brings ours back to FireWorks' document.
    rerun_fws(lp, [1], clear_recovery=True)
    assert "_recovery" not in lp.fireworks.find_one({"fw_id": 1})["spec"]
    assert _summary(lp.db) == _summary(flp.db)


def test_fireworks_reads_and_reruns_what_we_wrote(lp, tmp_path, monkeypatch, mongo_uri):
    """FireWorks' own rerun_fw works on a database our rerun wrote (same schema)."""
    from fireworks.core.launchpad import LaunchPad as FWLaunchPad

    from prefect_fireworks.ops.rerun import rerun_fws

    monkeypatch.chdir(tmp_path)
    lp.add_wf(greek_gods())
    run_all(lp)
    rerun_fws(lp, [ZEUS])
    ref = FWLaunchPad(host=mongo_uri, uri_mode=True, name=lp.name, strm_lvl="ERROR")
    assert ref.get_fw_by_id(ZEUS).state == "READY"
    assert len(ref.get_fw_by_id(ZEUS).archived_launches) == 1
    ref.rerun_fw(1)
    states = {d["fw_id"]: d["state"] for d in lp.fireworks.find({})}
    assert states[1] == "READY" and states[6] == "COMPLETED"
    wf = lp.workflows.find_one({})
    assert {int(k): v for k, v in wf["fw_states"].items()} == states
