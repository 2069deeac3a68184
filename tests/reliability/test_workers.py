"""Many real workers on one LaunchPad, and a worker killed mid-Firework.

Each Firework is a ScriptTask appending its fw_id to one shared file (the side effect): every
fw_id must appear there exactly once, every Firework must be COMPLETED with exactly one launch
(none lost, none run twice), and ``admin check`` must be clean.

Sizes: ``RELIABILITY_WORKERS`` (default 8) ``rlaunch --no-prefect rapidfire`` processes on
``RELIABILITY_FIREWORKS`` (default 2,000) Fireworks in workflows of 20 (a root and 19 children,
so workers contend for the same workflow locks).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.check import check

# Real processes on a shared machine: well beyond the suite's 600 s default.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(3600)]

N_WORKERS = int(os.environ.get("RELIABILITY_WORKERS", "8"))
N_FIREWORKS = int(os.environ.get("RELIABILITY_FIREWORKS", "2000"))
WF_SIZE = 20


def _appender(log: Path, i: int, before: str = "") -> Firework:
    script = f"{before}echo {i} >> {log}"
    return Firework([{"_fw_name": "ScriptTask", "script": script}], name=f"side-{i}")


def _fan(log: Path, start: int, n: int, before: str = "") -> Workflow:
    root = _appender(log, start, before)
    kids = [_appender(log, start + k, before) for k in range(1, n)]
    for k in kids:
        k.parents = [root]
    return Workflow([root, *kids], name=f"fan-{start}")


def _side_effects(log: Path) -> collections.Counter[int]:
    if not log.exists():
        return collections.Counter()
    return collections.Counter(int(x) for x in log.read_text().split())


def _expected_ids(lp: Any) -> dict[int, int]:
    """fw_id -> the number its script appends (its name's suffix)."""
    return {
        d["fw_id"]: int(d["name"].split("-")[1])
        for d in lp.fireworks.find({}, {"fw_id": 1, "name": 1})
    }


def test_workers_run_each_firework_exactly_once(lp, spawn, tmp_path):
    log = tmp_path / "side_effects.log"
    wfs = [_fan(log, s, min(WF_SIZE, N_FIREWORKS - s)) for s in range(0, N_FIREWORKS, WF_SIZE)]
    lp.bulk_add_wfs(wfs)
    t0 = time.monotonic()
    workers = [
        spawn(
            "rlaunch",
            "rapidfire",
            "--no-prefect",
            "--sleep",
            "0.2",
            "--launch_root",
            str(tmp_path / f"w{k}"),
            cwd=tmp_path,
        )
        for k in range(N_WORKERS)
    ]
    # Read every worker's output at once: a worker whose pipe filled while the test waited on
    # another would stop mid-Firework and hold its claim.
    with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
        outputs = list(pool.map(lambda w: w.communicate(timeout=1800), workers))
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
    elapsed = time.monotonic() - t0
    print(f"\n{N_WORKERS} workers, {N_FIREWORKS} Fireworks: {elapsed:.1f} s")

    fws = list(
        lp.fireworks.find({}, {"fw_id": 1, "state": 1, "launches": 1, "archived_launches": 1})
    )
    assert len(fws) == N_FIREWORKS
    assert [d["fw_id"] for d in fws if d["state"] != st.COMPLETED] == []
    assert [d["fw_id"] for d in fws if len(d["launches"]) != 1 or d.get("archived_launches")] == []
    assert lp.launches.count_documents({}) == N_FIREWORKS
    assert lp.launches.count_documents({"state": st.COMPLETED}) == N_FIREWORKS
    counts = _side_effects(log)
    assert sorted(counts) == sorted(_expected_ids(lp).values())
    assert [i for i, c in counts.items() if c != 1] == []
    hosts = collections.Counter(
        d["launch_dir"].split("/w")[-1].split("/")[0]
        for d in lp.launches.find({}, {"launch_dir": 1})
    )
    assert len(hosts) > 1, hosts  # the work really was shared
    assert check(lp).violations == []


def test_worker_killed_mid_firework_nothing_lost_nothing_twice(lp, spawn, tmp_path, wait_for):
    """kill -9 of a worker while its ScriptTask runs; detect_lostruns --rerun; another worker
    finishes the work: every side effect exactly once, admin check clean."""
    log = tmp_path / "side_effects.log"
    started = tmp_path / "started"
    # the side effect happens after a pause, so the kill lands in the middle of the Firework
    wf = _fan(log, 0, 4, before=f"echo $$ >> {started}; sleep 3; ")
    lp.add_wf(wf)
    worker = spawn("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.2", cwd=tmp_path)
    wait_for(lambda: started.exists() and started.read_text().strip(), timeout=120)
    running = wait_for(
        lambda: lp.launches.find_one({"state": st.RUNNING}, {"launch_id": 1, "fw_id": 1}),
        timeout=60,
    )
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate()
    t_crash = time.monotonic()
    # a child of the killed worker must not write the side effect later
    time.sleep(4)
    assert _side_effects(log)[0] == 0, "the killed worker's ScriptTask survived it"

    det = spawn("lpad", "detect_lostruns", "--time", "0", "--rerun")
    out, err = det.communicate(timeout=300)
    assert det.returncode == 0, err
    assert f"lost FWs: [{running['fw_id']}]" in out
    rerun = spawn("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.2", cwd=tmp_path)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    adm = spawn("lpad", "admin", "check")
    out, err = adm.communicate(timeout=300)
    recovered = time.monotonic() - t_crash
    assert adm.returncode == 0, out + err
    print(f"\ncrash to clean admin check (incl. 4 s wait and the rerun): {recovered:.1f} s")

    counts = _side_effects(log)
    assert counts == collections.Counter({0: 1, 1: 1, 2: 1, 3: 1})
    assert {d["state"] for d in lp.fireworks.find({}, {"state": 1})} == {st.COMPLETED}
    lost = lp.launches.find_one({"launch_id": running["launch_id"]})
    assert lost["state"] == st.FIZZLED
    fw = lp.fireworks.find_one({"fw_id": running["fw_id"]})
    assert fw["archived_launches"] == [running["launch_id"]] and len(fw["launches"]) == 1
