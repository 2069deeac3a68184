"""Test helpers: FireWorks' "Greek gods" DAG and launches driven by hand, as the rocket does.

``run_fw`` does exactly what the rocket does around the Firetasks: atomic checkout, a checkpoint
ping before each task, then ``complete_launch`` with the merged action.
"""

from __future__ import annotations

import os
from typing import Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store.launchpad import FWorker, LaunchPad

ZEUS = 2
ZEUS_CHILDREN = {7, 8, 9, 11, 14}
LAPETUS_DESC = {6, 10, 12, 13}
ZEUS_SIBS = {3, 4, 5}
PARENT = 1
ALL_IDS = set(range(1, 15))


def _echo(text: str, **kw: Any) -> Firework:
    return Firework(
        [{"_fw_name": "ScriptTask", "script": f'echo "{text}"', "store_stdout": True}], **kw
    )


def greek_gods() -> Workflow:
    """FireWorks' 14-Firework test DAG (fw_ids 1..14 on a fresh LaunchPad).

    parent 1 -> siblings 2 (Zeus), 3, 4, 5; cousin 6 (Lapetus) is a second root; the children
    7..14 have several parents: Zeus's children are {7, 8, 9, 11, 14}, Lapetus's descendants
    {10, 12, 13} (plus 6 itself).
    """
    p = _echo("Cronus is the ruler of titans", name="parent", fw_id=1)
    s1 = _echo("Zeus is son of Cronus", name="sib1", fw_id=2, parents=p)
    s2 = _echo("Poseidon is brother of Zeus", name="sib2", fw_id=3, parents=p)
    s3 = _echo("Hades is brother of Zeus", name="sib3", fw_id=4, parents=p)
    s4 = _echo("Demeter is sister & wife of Zeus", name="sib4", fw_id=5, parents=p)
    s5 = _echo("Lapetus is son of Oceanus", name="cousin1", fw_id=6)
    c1 = _echo("Ares is son of Zeus", name="c1", fw_id=7, parents=s1)
    c2 = _echo("Persephone is daughter of Zeus & Demeter", name="c2", fw_id=8, parents=[s1, s4])
    c3 = _echo("Makaria is daughter of Hades & Persephone", name="c3", fw_id=9, parents=[s3, c2])
    c4 = _echo("Dione is descendant of Lapetus", name="c4", fw_id=10, parents=s5)
    c5 = _echo("Aphrodite is son of Zeus and Dione", name="c5", fw_id=11, parents=[s1, c4])
    c6 = _echo("Atlas is son of Lapetus", name="c6", fw_id=12, parents=s5)
    c7 = _echo("Maia is daughter of Atlas", name="c7", fw_id=13, parents=c6)
    c8 = _echo("Hermes is son of Maia and Zeus", name="c8", fw_id=14, parents=[s1, c7])
    fws = [p, s1, s2, s3, s4, s5, c1, c2, c3, c4, c5, c6, c7, c8]
    return Workflow(fws, name="greek gods")


def start_fw(lp: LaunchPad, fw_id: int | None = None, launch_root: str | None = None) -> Any:
    """Check a Firework out (RUNNING launch); returns (fw doc, launch_id) or (None, None)."""
    root = launch_root or os.getcwd()

    def dir_for(fw: dict[str, Any]) -> str:
        return os.path.join(root, f"launcher_fw{fw['fw_id']}_{os.urandom(3).hex()}")

    return lp.checkout_fw(FWorker(), root, fw_id, dir_for=dir_for)


def run_fw(
    lp: LaunchPad,
    fw_id: int | None = None,
    *,
    fail_at: int | None = None,
    action: dict[str, Any] | None = None,
    stored: list[dict[str, Any]] | None = None,
    launch_root: str | None = None,
) -> tuple[int, int] | None:
    """Run one Firework by hand: checkout, one checkpoint ping per task, completion.

    Args:
        lp: the LaunchPad.
        fw_id: this Firework (else any READY one).
        fail_at: 0-based index of the Firetask that raises (then the launch FIZZLES).
        action: the FWAction of a successful run.
        stored: stored_data of each task (accumulated into checkpoints).
        launch_root: parent directory of the launch directory.

    Returns:
        (fw_id, launch_id), or None when nothing was READY.
    """
    fw, lid = start_fw(lp, fw_id, launch_root)
    if fw is None:
        return None
    assert lid is not None
    os.makedirs(lp.get_launch_by_id(lid).launch_dir or ".", exist_ok=True)
    n_tasks = max(len(fw["spec"].get("_tasks", [])), 1)
    rec = fw["spec"].get("_recovery") or {}
    start = int(rec.get("_task_n", 0))
    all_stored: dict[str, Any] = dict(rec.get("_all_stored_data", {}))
    for t in range(start, n_tasks):
        lp.ping_launch(
            lid,
            {
                "_task_n": t,
                "_all_stored_data": dict(all_stored),
                "_all_update_spec": {},
                "_all_mod_spec": [],
            },
        )
        if fail_at is not None and t == fail_at:
            act = {
                "stored_data": {
                    "_message": "runtime error during task",
                    "_task": fw["spec"]["_tasks"][t] if fw["spec"].get("_tasks") else None,
                    "_exception": {
                        "_stacktrace": f"Traceback ...\nRuntimeError: task {t} failed: "
                        "My custom error message",
                        "_details": {"error": "description"},
                    },
                },
                "exit": True,
                "update_spec": {},
                "mod_spec": [],
                "additions": [],
                "detours": [],
                "append_wfs": [],
                "defuse_children": False,
                "defuse_workflow": False,
                "propagate": False,
            }
            lp.complete_launch(lid, act, st.FIZZLED)
            return fw["fw_id"], lid
        if stored and t < len(stored):
            all_stored.update(stored[t])
    final = dict(action or {})
    final.setdefault("stored_data", all_stored)
    lp.complete_launch(lid, final, st.COMPLETED)
    return fw["fw_id"], lid


def run_all(lp: LaunchPad, launch_root: str | None = None, limit: int = 1000) -> list[int]:
    """Run READY Fireworks until none is left (FireWorks' rapidfire); returns the fw_ids run."""
    ran = []
    for _ in range(limit):
        r = run_fw(lp, launch_root=launch_root)
        if r is None:
            break
        ran.append(r[0])
    return ran


def fw_states_consistent(lp: LaunchPad, fw_id: int = 1) -> None:
    """Assert the workflow's cached ``fw_states`` equal every Firework document's state."""
    wf = lp.workflows.find_one({"nodes": fw_id})
    assert wf is not None
    docs = {d["fw_id"]: d["state"] for d in lp.fireworks.find({"fw_id": {"$in": wf["nodes"]}})}
    assert {int(k): v for k, v in wf["fw_states"].items()} == docs


def states(lp: LaunchPad, ids: Any = None) -> dict[int, str]:
    """fw_id -> state of the Fireworks (all when ids is None)."""
    q = {} if ids is None else {"fw_id": {"$in": sorted(ids)}}
    return {d["fw_id"]: d["state"] for d in lp.fireworks.find(q, {"fw_id": 1, "state": 1})}


#: The keys of spec._recovery after a task-level rerun (FireWorks' exact set).
RECOVERY_KEYS = {
    "_task_n",
    "_all_stored_data",
    "_all_update_spec",
    "_all_mod_spec",
    "_prev_dir",
    "_launch_id",
    "_mode",
}
