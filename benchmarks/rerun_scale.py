"""Rerun at scale on the embedded server (a report, not a test).

Builds, with ``lp.add_wf``, a 1,001-Firework fan-out (one root, 1,000 children) and a 10,000-long
chain, marks every Firework COMPLETED with one synthetic launch each (bulk writes), then times
``plan_rerun`` + ``apply_rerun`` of the root and checks the result.

Run: ``python benchmarks/rerun_scale.py [--uri mongodb://...]`` (default: a fresh embedded
server in a temporary directory).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow, isoformat
from prefect_fireworks.ops.rerun import apply_rerun, plan_rerun
from prefect_fireworks.store.launchpad import LaunchPad


def _fw(i: int, parents: list[Firework] | None = None) -> Firework:
    return Firework(
        [{"_fw_name": "ScriptTask", "script": "true"}], name=f"fw{i}", parents=parents or []
    )


def fan_out(n_children: int) -> Workflow:
    root = _fw(0)
    return Workflow([root, *(_fw(i, [root]) for i in range(1, n_children + 1))], name="fan-out")


def chain(n: int) -> Workflow:
    fws = [_fw(0)]
    for i in range(1, n):
        fws.append(_fw(i, [fws[-1]]))
    return Workflow(fws, name="chain")


def complete_all(lp: LaunchPad, fw_ids: list[int]) -> None:
    """Give each Firework one COMPLETED launch (launch_id = fw_id) with bulk writes."""
    now = isoformat()
    lp.launches.insert_many(
        [
            {
                "launch_id": i,
                "fw_id": i,
                "fworker": {"name": "bench", "category": "", "query": "{}", "env": {}},
                "host": "bench",
                "ip": "127.0.0.1",
                "launch_dir": f"/tmp/bench/{i}",
                "state": st.COMPLETED,
                "state_history": [
                    {"state": st.RUNNING, "created_on": now, "updated_on": now},
                    {"state": st.COMPLETED, "created_on": now},
                ],
                "trackers": [],
                "action": {"stored_data": {}, "update_spec": {}, "mod_spec": []},
                "time_start": now,
                "time_end": now,
                "runtime_secs": 0.0,
            }
            for i in fw_ids
        ],
        ordered=False,
    )
    lp.fireworks.update_many(
        {"fw_id": {"$gte": min(fw_ids), "$lte": max(fw_ids)}},
        [{"$set": {"state": st.COMPLETED, "launches": ["$fw_id"], "updated_on": now}}],
    )
    lp.workflows.update_one(
        {"nodes": fw_ids[0]},
        {
            "$set": {
                "fw_states": {str(i): st.COMPLETED for i in fw_ids},
                "state": st.COMPLETED,
            }
        },
    )
    lp.fw_id_assigner.update_one({"_id": -1}, {"$set": {"next_launch_id": max(fw_ids) + 1}})


def bench(lp: LaunchPad, label: str, wf: Workflow) -> dict[str, Any]:
    lp.reset(None, require_password=False)
    t0 = time.perf_counter()
    ids = sorted(lp.add_wf(wf).values())
    complete_all(lp, ids)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    plan = plan_rerun(lp, [ids[0]])
    t_plan = time.perf_counter() - t1
    t2 = time.perf_counter()
    res = apply_rerun(lp, plan)
    t_apply = time.perf_counter() - t2
    n_reset = len(res.entries)
    counts = {
        s: lp.fireworks.count_documents({"state": s}) for s in (st.READY, st.WAITING, st.COMPLETED)
    }
    wf_doc = lp.workflows.find_one({"nodes": ids[0]}, {"fw_states": 1, "state": 1})
    assert wf_doc is not None
    assert counts[st.READY] == 1 and counts[st.WAITING] == len(ids) - 1, counts
    assert lp.fireworks.count_documents({"archived_launches": {"$size": 1}}) == len(ids)
    assert all(v != st.COMPLETED for v in wf_doc["fw_states"].values())
    return {
        "workflow": label,
        "fireworks": len(ids),
        "build_s": round(t_build, 2),
        "plan_s": round(t_plan, 3),
        "apply_s": round(t_apply, 3),
        "rerun_total_s": round(t_plan + t_apply, 3),
        "reset": n_reset,
        "wf_state": wf_doc["state"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uri", help="MongoDB URI (default: a fresh embedded server)")
    ap.add_argument("--fan-out", type=int, default=1000, help="children of the fan-out root")
    ap.add_argument("--chain", type=int, default=10_000, help="length of the chain")
    args = ap.parse_args()
    home = None
    uri = args.uri
    if uri is None:
        from prefect_fireworks.store import embedded

        home = tempfile.mkdtemp(prefix="rerun-bench-")
        uri = embedded.start(home=home).uri
    try:
        lp = LaunchPad.from_uri(uri, name="rerun_bench")
        rows = [
            bench(lp, f"fan-out 1+{args.fan_out}", fan_out(args.fan_out)),
            bench(lp, f"chain {args.chain}", chain(args.chain)),
        ]
        lp.client.drop_database("rerun_bench")
        lp.close()
        for r in rows:
            print(
                f"{r['workflow']:>16}: {r['fireworks']} Fireworks, rerun of the root "
                f"{r['rerun_total_s']:.3f} s (plan {r['plan_s']:.3f} s + apply "
                f"{r['apply_s']:.3f} s), {r['reset']} reset, workflow {r['wf_state']}; "
                f"build {r['build_s']:.1f} s"
            )
    finally:
        if home is not None:
            from prefect_fireworks.store import embedded

            embedded.stop(home=home)


if __name__ == "__main__":
    main()
