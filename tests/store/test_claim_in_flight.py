"""A claim whose launch document is not written yet is the claimer's, whatever recomputes.

A claim is one write (the Firework RUNNING, its new launch id pushed); the launch document
follows in the next command. Found with 8 workers on 2,000 Fireworks: a completion whose
compare-and-swap lost recomputed a child another worker had just claimed, saw a launch id
with no document, called the child READY and wrote it back, and a third worker ran it again
(two launches, the side effect twice). These tests stage that moment with the real claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.rocket import run_one
from prefect_fireworks.store.checkout import checkout_launch, insert_launch
from prefect_fireworks.store.launchpad import FWorker


def _fan(lp: Any) -> tuple[int, int, int]:
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
    k1 = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="k1", parents=[root])
    k2 = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="k2", parents=[root])
    ids = lp.add_wf(Workflow([root, k1, k2], name="fan"))
    return ids[root.fw_id], ids[k1.fw_id], ids[k2.fw_id]


def _claim_without_launch(lp: Any, fw_id: int, tmp_path: Path) -> tuple[dict, dict]:
    got = checkout_launch(lp, FWorker(), str(tmp_path / "claimed"), fw_id=fw_id, insert=False)
    assert got is not None
    fw, launch = got
    doc = lp.fireworks.find_one({"fw_id": fw_id})
    assert doc["state"] == st.RUNNING and doc["launches"] == [launch["launch_id"]]
    assert lp.launches.find_one({"launch_id": launch["launch_id"]}) is None
    return fw, launch


def test_a_refresh_keeps_a_claim_whose_launch_is_being_written(lp, tmp_path):
    _root, k1, k2 = _fan(lp)
    assert run_one(lp, FWorker(), launch_root=tmp_path).state == st.COMPLETED  # the root
    _, launch = _claim_without_launch(lp, k1, tmp_path)

    lp.refresh_fws([k1])  # what a completion that lost its compare-and-swap recomputes

    doc = lp.fireworks.find_one({"fw_id": k1})
    assert doc["state"] == st.RUNNING
    assert doc["launches"] == [launch["launch_id"]]
    wf = lp.workflows.find_one({"nodes": k1})
    assert wf["fw_states"][str(k1)] == st.RUNNING
    # nobody else can claim it
    assert checkout_launch(lp, FWorker(), str(tmp_path / "second"), fw_id=k1) is None
    assert run_one(lp, FWorker(), launch_root=tmp_path).fw_id == k2

    # the claimer writes its launch and finishes: one launch, COMPLETED
    insert_launch(lp, launch)
    lp.refresh_fws([k1])
    assert lp.fireworks.find_one({"fw_id": k1})["state"] == st.RUNNING


def test_recomputing_the_parent_leaves_a_claimed_child_alone(lp, tmp_path):
    """The parent's completion path (`refresh` from the parent) reaches the child too."""
    root, k1, _ = _fan(lp)
    assert run_one(lp, FWorker(), launch_root=tmp_path).state == st.COMPLETED
    _, launch = _claim_without_launch(lp, k1, tmp_path)
    # the parent recomputed as a whole workflow refresh does (COMPLETED again: children too)
    lp.fireworks.update_one({"fw_id": root}, {"$set": {"state": st.RUNNING}})
    lp.refresh_fws([root])
    assert lp.fireworks.find_one({"fw_id": root})["state"] == st.COMPLETED
    doc = lp.fireworks.find_one({"fw_id": k1})
    assert doc["state"] == st.RUNNING and doc["launches"] == [launch["launch_id"]]
    insert_launch(lp, launch)
