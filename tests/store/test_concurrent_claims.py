"""Claims and completions of several workers on one workflow.

A claim in a RUNNING workflow writes only ``fw_states.<id>`` and leaves the workflow's
``updated_on``: the lock-free completions pin ``updated_on``, and a Firework going from READY
to RUNNING never changes their decision. These tests check the documents that result, with
workers that each have their own caches (one LaunchPad each), on the real server.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.launchpad import LaunchPad
from prefect_fireworks.store.launch_cycle import checkout_launch, finish_launch
from prefect_fireworks.store.launches import FWorker


def _fan(n: int) -> Workflow:
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
    kids = [
        Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"k{i}", parents=[root])
        for i in range(n)
    ]
    sink = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="sink", parents=kids)
    return Workflow([root, *kids, sink], name="fan")


def _run(lp: Any) -> None:
    got = checkout_launch(lp, FWorker(), "/tmp")
    assert got is not None
    fw, launch = got
    finish_launch(lp, int(launch["launch_id"]), {}, launch_doc=launch, fw_doc=fw)


def test_a_claim_in_a_running_workflow_leaves_its_updated_on(lp, mongo_uri):
    lp.add_wf(_fan(3))
    _run(lp)  # the root: the workflow is RUNNING, three children READY
    before = lp.workflows.find_one({})
    assert before["state"] == st.RUNNING
    other = LaunchPad.from_uri(mongo_uri, name=lp.name)  # another worker, cold caches
    got = checkout_launch(other, FWorker(), "/tmp")
    assert got is not None
    fw, _ = got
    after = lp.workflows.find_one({})
    assert after["fw_states"][str(fw["fw_id"])] == st.RUNNING
    assert after["updated_on"] == before["updated_on"]
    assert after["state"] == st.RUNNING
    # The first worker, whose cache still shows that child READY, completes another one
    # lock-free, then the claimed one finishes: every state right, the workflow COMPLETED
    # once the sink has run.
    _run(lp)
    assert lp.workflows.find_one({})["fw_states"][str(fw["fw_id"])] == st.RUNNING
    launch = other.launches.find_one({"fw_id": fw["fw_id"]})
    finish_launch(other, int(launch["launch_id"]), {})
    _run(lp)
    _run(lp)  # the sink
    wf = lp.workflows.find_one({})
    fws = {d["fw_id"]: d["state"] for d in lp.fireworks.find({}, {"fw_id": 1, "state": 1})}
    assert set(fws.values()) == {st.COMPLETED}
    assert {int(k): v for k, v in wf["fw_states"].items()} == fws
    assert wf["state"] == st.COMPLETED


def test_workers_sharing_a_fan_out_complete_it_once(lp, mongo_uri):
    """Four workers, each with its own LaunchPad, drain two fan-outs of 12 with a sink: each
    Firework has exactly one launch, ``fw_states`` matches, both workflows COMPLETED (and
    ``lpad admin check`` is clean: the fixture's teardown)."""
    for _ in range(2):
        lp.add_wf(_fan(12))
    workers = [LaunchPad.from_uri(mongo_uri, name=lp.name) for _ in range(4)]
    errors: list[BaseException] = []

    def work(wlp: Any) -> None:
        try:
            deadline = time.monotonic() + 600  # a safety net, not a timing
            while time.monotonic() < deadline:
                got = checkout_launch(wlp, FWorker(), "/tmp")
                if got is None:
                    if wlp.fireworks.count_documents({"state": {"$ne": st.COMPLETED}}) == 0:
                        return
                    time.sleep(0.01)
                    continue
                fw, launch = got
                finish_launch(wlp, int(launch["launch_id"]), {}, launch_doc=launch, fw_doc=fw)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    docs = list(lp.fireworks.find({}, {"fw_id": 1, "state": 1, "launches": 1}))
    assert len(docs) == 28
    assert all(d["state"] == st.COMPLETED and len(d["launches"]) == 1 for d in docs)
    assert lp.launches.count_documents({}) == 28
    for wf in lp.workflows.find({}):
        assert wf["state"] == st.COMPLETED
        assert set(wf["fw_states"].values()) == {st.COMPLETED}
