"""Round trips to MongoDB do not grow with the size of what is added or run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pymongo import monitoring

from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.launchpad import LaunchPad

#: Connection handshake and authentication: not round trips of the operation measured.
_HANDSHAKE = frozenset(
    {"hello", "isMaster", "ismaster", "endSessions", "ping", "saslStart", "saslContinue"}
)


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in _HANDSHAKE:
            self.names[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def fan_out(n: int) -> Workflow:
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
    kids = [
        Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"k{i}", parents=[root])
        for i in range(n - 1)
    ]
    return Workflow([root, *kids], name=f"fan-out {n}")


@pytest.fixture
def counted(lp: LaunchPad, mongo_uri: str):
    listener = Commands()
    counted_lp = LaunchPad.from_uri(mongo_uri, name=lp.name, event_listeners=[listener])
    yield counted_lp, listener
    counted_lp.close()


def test_add_wf_round_trips_do_not_depend_on_size(counted):
    clp, listener = counted
    clp.add_wf(fan_out(10))
    small = sum(listener.names.values())
    listener.names.clear()
    clp.add_wf(fan_out(1000))
    large = sum(listener.names.values())
    assert small == large
    # reserve ids (find + conditional update), insert Fireworks, insert the workflow, and the
    # initialisation check
    assert large <= 5
    assert clp.fireworks.count_documents({}) == 1010


def test_completion_round_trips_do_not_depend_on_workflow_size(counted):
    from prefect_fireworks.store.launchpad import FWorker

    clp, listener = counted
    clp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "true"}])]))
    clp.add_wf(fan_out(2))
    wf_small = clp.get_fw_ids({"name": "root"})[0]
    clp.add_wf(fan_out(600))
    wf_large = clp.get_fw_ids({"name": "root"})[1]

    def life(fw_id: int) -> int:
        listener.names.clear()
        fw, lid = clp.checkout_fw(FWorker(), "/tmp", fw_id=fw_id)
        assert fw is not None and lid is not None
        clp.ping_launch(lid, {"_task_n": 0})
        clp.complete_launch(lid, {"stored_data": {}})
        # getMore only continues a cursor (one per 16 MB of results), not a new query
        return sum(n for name, n in listener.names.items() if name != "getMore")

    # The large root readies 599 children in the same number of round trips as the small
    # one readies one: children are loaded and written in bulk. (The first checkout of a
    # process reserves a block of launch ids: done before counting.)
    clp.checkout_fw(FWorker(), "/tmp")
    small, large = life(wf_small), life(wf_large)
    assert small == large
    assert large <= 20
    assert clp.fireworks.count_documents({"state": "READY", "name": {"$ne": "Unnamed FW"}}) == 600


def chain(n: int) -> Workflow:
    fws = [Firework([{"_fw_name": "PyTask", "func": "abs", "args": [0]}], name="c0")]
    for i in range(1, n):
        fws.append(
            Firework(
                [{"_fw_name": "PyTask", "func": "abs", "args": [i]}],
                name=f"c{i}",
                parents=[fws[-1]],
            )
        )
    return Workflow(fws, name=f"chain {n}")


def _lives(clp: LaunchPad, listener: Commands, root: Path, k: int) -> list[Counter[str]]:
    from prefect_fireworks.runtime.rocket import run_one

    out = []
    for _ in range(k):
        listener.names.clear()
        res = run_one(clp, launch_root=root)
        assert res is not None and res.state == "COMPLETED" and res.fw_state == "COMPLETED"
        out.append(Counter({k: v for k, v in listener.names.items() if k != "getMore"}))
    return out


#: A life after the first: the claim, the launch insert, the workflow's cached state, the
#: launch's end, the Firework writes, the workflow's compare-and-swap.
LEAN_LIFE = Counter({"update": 5, "insert": 1})


# 10,000 passes too (6 commands) but takes minutes on the embedded server (every write of a
# 10,000-node workflow document costs seconds, and so does the teardown's admin check): the
# benchmark (python -m benchmarks run --only round_trips) counts it.
@pytest.mark.parametrize("size", [10, 1000])
def test_a_firework_life_is_six_commands_at_any_workflow_size(counted, tmp_path, size):
    """A Firework's life through the Rocket (``rlaunch singleshot``): the claim, the launch
    insert, the workflow's cached state, the launch's end, the Firework writes and the
    workflow's compare-and-swap; no findAndModify, no lock, no read (docs/performance.md).
    The first life of a process also reserves a block of launch ids, reads the workflow and
    reads the next Fireworks of the chain ahead (`READ_AHEAD` of them)."""
    clp, listener = counted
    clp.add_wf(chain(size))
    _lives(clp, listener, tmp_path, 1)  # warm: launch-id block, workflow read, read-ahead
    lives = _lives(clp, listener, tmp_path, 3)
    for life in lives:
        assert life == LEAN_LIFE, life
    wf = clp.workflows.find_one({}, {"state": 1, "fw_states": 1})
    assert wf["state"] == "RUNNING"
    states = Counter(wf["fw_states"].values())
    assert states == {"COMPLETED": 4, "READY": 1, "WAITING": size - 5}


def test_the_read_ahead_is_one_query_per_block_of_lives(counted, tmp_path, monkeypatch):
    """The children's documents are read once per `READ_AHEAD` lives of a chain: every
    other life is the lean six commands."""
    from prefect_fireworks.store import completion

    monkeypatch.setattr(completion, "READ_AHEAD", 4)
    clp, listener = counted
    clp.add_wf(chain(14))
    _lives(clp, listener, tmp_path, 1)  # reads c1..c4
    lives = _lives(clp, listener, tmp_path, 12)
    reads = [i for i, life in enumerate(lives) if life != LEAN_LIFE]
    assert reads == [3, 7, 11], lives  # c4 reads c5..c8, c8 reads c9..c12, c12 reads c13
    for i in reads:
        assert lives[i] == LEAN_LIFE + Counter({"find": 1}), lives[i]
    assert clp.fireworks.count_documents({"state": "COMPLETED"}) == 13


@pytest.mark.parametrize("how", ["update_fws", "FireWorks' update_spec"])
def test_a_spec_changed_after_the_read_ahead_is_the_one_run(lp, tmp_path, how):
    """Documents read ahead may be stale: a spec changed meanwhile without ``updated_on``
    (``lpad update_fws``, FireWorks' own ``update_spec``) is the spec that runs."""
    from prefect_fireworks.ops import specs
    from prefect_fireworks.runtime.rocket import run_one
    from prefect_fireworks.store import launch_cycle

    wf = chain(4)
    wf.fws[2].spec["_tasks"][0]["args"] = ["not a number"]  # abs() fails on it
    lp.add_wf(wf)
    c2 = lp.get_fw_ids({"name": "c2"})[0]
    assert run_one(lp, launch_root=tmp_path).state == "COMPLETED"  # c0; reads c1..c3 ahead
    assert c2 in launch_cycle.waiting_docs(lp)
    fixed = [{"_fw_name": "PyTask", "func": "abs", "args": [2]}]
    if how == "update_fws":
        specs.update_fws(lp, [c2], {"_tasks": fixed})
    else:
        lp.fireworks.update_one({"fw_id": c2}, {"$set": {"spec._tasks": fixed}})
    for _ in range(3):
        res = run_one(lp, launch_root=tmp_path)
        assert res is not None and res.state == "COMPLETED", res
    assert lp.fireworks.count_documents({"state": "COMPLETED"}) == 4


def test_a_leaf_life_is_six_commands(counted, tmp_path):
    """A fan-out's children have no children to read: six commands each."""
    clp, listener = counted
    clp.add_wf(fan_out(50))
    _lives(clp, listener, tmp_path, 1)  # the root readies the 49 children
    for life in _lives(clp, listener, tmp_path, 5):
        assert sum(life.values()) == 6 and "findAndModify" not in life, life


def test_runners_sharing_chains_with_read_ahead_run_each_firework_once(lp, mongo_uri, monkeypatch):
    """Several LaunchPads (each with its own hints, workflow cache and documents read ahead)
    claim and complete Fireworks of the same chains at once: every document one of them read
    ahead goes stale under it, and each Firework still runs once, in order, with a clean
    ``lpad admin check`` (the fixture's teardown)."""
    import threading
    import time

    from prefect_fireworks.store import completion
    from prefect_fireworks.store.launch_cycle import checkout_launch, finish_launch
    from prefect_fireworks.store.launches import FWorker

    monkeypatch.setattr(completion, "READ_AHEAD", 4)
    for _ in range(4):
        lp.add_wf(chain(12))
    runners = [LaunchPad.from_uri(mongo_uri, name=lp.name) for _ in range(3)]
    errors: list[BaseException] = []

    def run(rlp: LaunchPad) -> None:
        try:
            deadline = time.monotonic() + 600  # a safety net, not a timing
            while time.monotonic() < deadline:
                got = checkout_launch(rlp, FWorker(), "/tmp")
                if got is None:
                    if rlp.fireworks.count_documents({"state": {"$ne": "COMPLETED"}}) == 0:
                        return
                    time.sleep(0.01)
                    continue
                fw, launch = got
                finish_launch(rlp, int(launch["launch_id"]), {}, launch_doc=launch, fw_doc=fw)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runners:
        r.close()
    assert errors == []
    fws = list(lp.fireworks.find({}, {"state": 1, "launches": 1}))
    assert len(fws) == 48 and {d["state"] for d in fws} == {"COMPLETED"}
    assert all(len(d["launches"]) == 1 for d in fws)
    assert lp.launches.count_documents({"state": "COMPLETED"}) == 48
    # in order: a Firework's launch starts after its parent's ended
    ends = {d["fw_id"]: d["time_end"] for d in lp.launches.find({}, {"fw_id": 1, "time_end": 1})}
    starts = {
        d["fw_id"]: d["time_start"] for d in lp.launches.find({}, {"fw_id": 1, "time_start": 1})
    }
    for wf in lp.workflows.find({}, {"links": 1}):
        for parent, kids in wf["links"].items():
            for kid in kids:
                assert starts[kid] >= ends[int(parent)], (parent, kid)
