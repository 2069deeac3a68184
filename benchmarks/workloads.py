"""The workloads the scenarios build: chains of trivial PyTask Fireworks (each tool's own
``add_wf``), and COMPLETED/FIZZLED Fireworks with launches written directly in FireWorks'
schema (the same documents for both tools)."""

from __future__ import annotations

from typing import Any


def _task(i: int) -> dict[str, Any]:
    return {"_fw_name": "PyTask", "func": "abs", "args": [i]}


def ours_chains(lp: Any, n_chains: int, length: int) -> list[int]:
    """``n_chains`` workflows, each a chain of ``length`` trivial PyTask Fireworks; roots."""
    from prefect_fireworks.core.models import Firework, Workflow

    wfs = []
    for c in range(n_chains):
        fws = [Firework([_task(0)], name=f"c{c}-0")]
        for i in range(1, length):
            fws.append(Firework([_task(i)], name=f"c{c}-{i}", parents=[fws[-1]]))
        wfs.append(Workflow(fws, name=f"chain {c}"))
    maps = lp.bulk_add_wfs(wfs)
    return [min(m.values()) for m in maps]


def fireworks_chains(fw_lp: Any, n_chains: int, length: int) -> list[int]:
    """The same chains added with FireWorks' own ``add_wf``."""
    from fireworks import Firework, PyTask, Workflow

    roots = []
    for c in range(n_chains):
        fws = [Firework([PyTask(func="abs", args=[0])], name=f"c{c}-0")]
        for i in range(1, length):
            fws.append(Firework([PyTask(func="abs", args=[i])], name=f"c{c}-{i}", parents=fws[-1]))
        roots.append(min(fw_lp.add_wf(Workflow(fws, name=f"chain {c}")).values()))
    return roots


def _synthetic_launches(lp: Any, state: str, lo: int, hi: int) -> None:
    """Give Fireworks lo..hi one launch each (launch_id = fw_id) in ``state``."""
    from prefect_fireworks.core.models import FWAction, isoformat

    now = isoformat()
    batch: list[dict[str, Any]] = []
    for i in range(lo, hi + 1):
        action: dict[str, Any] = FWAction().to_dict()  # every key: FireWorks needs them all
        if state == "FIZZLED":
            action["stored_data"] = {"_exception": {"_stacktrace": f"ValueError: bad {i}"}}
        batch.append(
            {
                "launch_id": i,
                "fw_id": i,
                "fworker": {"name": "bench", "category": "", "query": "{}", "env": {}},
                "host": "bench",
                "ip": "127.0.0.1",
                "launch_dir": f"/scratch/bench/run_{i}",
                "state": state,
                "state_history": [
                    {"state": "RUNNING", "created_on": now, "updated_on": now},
                    {"state": state, "created_on": now},
                ],
                "trackers": [],
                "action": action,
                "time_start": now,
                "time_end": now,
                "runtime_secs": 0.0,
            }
        )
        if len(batch) >= 5000:
            lp.launches.insert_many(batch, ordered=False)
            batch = []
    if batch:
        lp.launches.insert_many(batch, ordered=False)
    lp.fireworks.update_many(
        {"fw_id": {"$gte": lo, "$lte": hi}}, [{"$set": {"launches": ["$fw_id"]}}]
    )
    lp.fw_id_assigner.update_one({"_id": -1}, {"$max": {"next_launch_id": hi + 1}})


def fan_out_with_sink(lp: Any, n: int) -> tuple[int, int]:
    """A COMPLETED root, ``n - 1`` children and a sink (with launches); returns (root, total)."""
    from prefect_fireworks.core.models import Firework, Workflow

    done = {"state": "COMPLETED"}
    root = Firework([_task(0)], name="root", **done)
    kids = [Firework([_task(i)], name=f"k{i}", parents=[root], **done) for i in range(1, n)]
    sink = Firework([_task(n)], name="sink", parents=kids, **done)
    ids = sorted(lp.add_wf(Workflow([root, *kids, sink], name=f"fan-out {n}")).values())
    _synthetic_launches(lp, "COMPLETED", ids[0], ids[-1])
    return ids[0], len(ids)


def huge_fan_out(lp: Any, n: int, fizzled_every: int) -> tuple[int, int, int]:
    """A fan-out with a sink (as `fan_out_with_sink`), every ``fizzled_every``-th child
    FIZZLED (its document, its launch with a stack trace, the workflow's ``fw_states``);
    returns (root, total, FIZZLED)."""
    root, total = fan_out_with_sink(lp, n - 1)
    fizzled = list(range(root + 1, root + total - 1, fizzled_every))
    for k in range(0, len(fizzled), 5000):
        part = fizzled[k : k + 5000]
        lo, hi = part[0], part[-1]
        every = {"$eq": [{"$mod": [{"$subtract": ["$fw_id", root + 1]}, fizzled_every]}, 0]}
        lp.fireworks.update_many(
            {"fw_id": {"$gte": lo, "$lte": hi}, "$expr": every}, {"$set": {"state": "FIZZLED"}}
        )
        lp.launches.update_many(
            {"launch_id": {"$gte": lo, "$lte": hi}, "$expr": {**every}},
            [
                {
                    "$set": {
                        "state": "FIZZLED",
                        "action.stored_data": {
                            "_exception": {
                                "_stacktrace": {
                                    "$concat": ["ValueError: bad ", {"$toString": "$fw_id"}]
                                }
                            }
                        },
                    }
                }
            ],
        )
    lp.workflows.update_one(
        {"nodes": root},
        {"$set": {f"fw_states.{i}": "FIZZLED" for i in fizzled} | {"state": "FIZZLED"}},
    )
    return root, total, len(fizzled)


def many_fizzled(lp: Any, n_wfs: int, per_wf: int, fizzled_every: int = 1) -> int:
    """``n_wfs`` workflows of ``per_wf`` unlinked Fireworks, every ``fizzled_every``-th
    FIZZLED, the rest COMPLETED, all with one launch; returns how many are FIZZLED."""
    from prefect_fireworks.core.models import Firework, Workflow

    nfizz = 0
    k = 0
    wfs = []
    for w in range(n_wfs):
        fws = []
        for _ in range(per_wf):
            fizz = k % fizzled_every == 0
            nfizz += fizz
            fws.append(Firework([_task(k)], name=f"f{k}", state="FIZZLED" if fizz else "COMPLETED"))
            k += 1
        wfs.append(Workflow(fws, name=f"wf {w}"))
        if len(wfs) >= 100:
            _add_with_launches(lp, wfs, fizzled_every)
            wfs = []
    if wfs:
        _add_with_launches(lp, wfs, fizzled_every)
    return nfizz


def _add_with_launches(lp: Any, wfs: list[Any], fizzled_every: int) -> None:
    maps = lp.bulk_add_wfs(wfs)
    ids = sorted(i for m in maps for i in m.values())
    lo, hi = ids[0], ids[-1]
    if fizzled_every == 1:
        _synthetic_launches(lp, "FIZZLED", lo, hi)
        return
    _synthetic_launches(lp, "COMPLETED", lo, hi)
    fizzled = lp.fireworks.find(
        {"fw_id": {"$gte": lo, "$lte": hi}, "state": "FIZZLED"}, {"fw_id": 1}
    )
    fids = [d["fw_id"] for d in fizzled]
    lp.launches.update_many(
        {"launch_id": {"$in": fids}},
        {"$set": {"state": "FIZZLED", "state_history.1.state": "FIZZLED"}},
    )
