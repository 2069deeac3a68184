"""A worker killed between claiming a Firework (READY -> RESERVED) and inserting its launch: the
Firework is found (``detect_lostruns``, ``admin check``) and reset, then runs exactly once."""

from __future__ import annotations

import collections
import signal

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

# Real processes on a shared machine: well beyond the suite's 600 s default.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(3600)]


def _add(lp, log, n=3):
    lp.bulk_add_wfs(
        [
            Workflow([Firework([{"_fw_name": "ScriptTask", "script": f"echo {i} >> {log}"}])])
            for i in range(n)
        ]
    )


def _killed_after_claim(lp, spawn):
    w = spawn("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.1", crash_at="checkout-claimed")
    _, err = w.communicate(timeout=300)
    assert w.returncode == -signal.SIGKILL, err
    # the claim is one write (READY -> RUNNING, or RESERVED, with the launch id pushed); the
    # launch document was never inserted
    active = {"state": {"$in": [st.RESERVED, st.RUNNING]}}
    claimed = [d["fw_id"] for d in lp.fireworks.find(active, {"fw_id": 1})]
    assert len(claimed) == 1 and lp.launches.count_documents({}) == 0
    return claimed[0]


def _run_rest(lp, spawn, log, n=3):
    w = spawn("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.1")
    _, err = w.communicate(timeout=300)
    assert w.returncode == 0, err
    assert {d["state"] for d in lp.fireworks.find({}, {"state": 1})} == {st.COMPLETED}
    assert collections.Counter(log.read_text().split()) == {str(i): 1 for i in range(n)}
    assert lp.launches.count_documents({}) == n


def test_detect_lostruns_resets_orphan_claim(lp, spawn, tmp_path):
    log = tmp_path / "side.log"
    _add(lp, log)
    fw_id = _killed_after_claim(lp, spawn)
    det = spawn("lpad", "detect_lostruns", "--time", "0")
    out, err = det.communicate(timeout=300)
    assert det.returncode == 0, err
    assert "orphan claims" in out and f"[{fw_id}]" in out
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] != st.READY  # reported only
    det = spawn("lpad", "detect_lostruns", "--time", "0", "--refresh")
    out, err = det.communicate(timeout=300)
    assert det.returncode == 0, err
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == st.READY
    _run_rest(lp, spawn, log)


def test_admin_check_repair_resets_orphan_claim(lp, spawn, tmp_path):
    log = tmp_path / "side.log"
    _add(lp, log)
    fw_id = _killed_after_claim(lp, spawn)
    adm = spawn("lpad", "admin", "check", "--claim-grace", "0")
    out, _ = adm.communicate(timeout=300)
    assert adm.returncode == 1 and "orphan_claim" in out and str(fw_id) in out
    adm = spawn("lpad", "admin", "check", "--repair", "--claim-grace", "0")
    out, err = adm.communicate(timeout=300)
    assert adm.returncode == 0, out + err
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == st.READY
    _run_rest(lp, spawn, log)
