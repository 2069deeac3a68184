"""The scenarios: each builds fresh databases for FireWorks 2.1.4 and for this project on the
same server, runs the same work with both, checks the outcome, and adds rows to the table."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from benchmarks.harness import Bench, Commands, Row, median_of
from benchmarks.workloads import (
    _task,
    fan_out_with_sink,
    fireworks_chains,
    huge_fan_out,
    many_fizzled,
    ours_chains,
)

TODAY = date.today().strftime("%Y-%m-%d")
#: FireWorks' rerun of 10,000 FIZZLED Fireworks can take longer than the whole run has; it is
#: stopped after this many seconds (the row says so; our time is the target's subject).
FIZZLED_FW_TIMEOUT = float(os.environ.get("BENCH_FIZZLED_FW_TIMEOUT", "300"))


def _states(coll: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in coll.find({}, {"state": 1, "_id": 0}):
        out[d["state"]] = out.get(d["state"], 0) + 1
    return out


def _check(what: str, ok: bool, detail: Any) -> None:
    if not ok:
        raise AssertionError(f"{what}: unexpected outcome {detail}")


def _drop(*lps: Any) -> None:
    for lp in lps:
        try:
            client = getattr(lp, "client", None) or lp.connection
            client.drop_database(lp.name)
        except Exception:
            pass


# -- scenarios ------------------------------------------------------------------------------


def launch(b: Bench) -> None:
    """Whole commands: FireWorks' ``rlaunch rapidfire`` vs ``lpad rapidfire`` (Prefect up)."""
    for n in (10,) if b.quick else b.fit("launch", (100, 1000)):
        chains = n // 10
        fw_lp = b.fireworks("launch")
        fireworks_chains(fw_lp, chains, 10)
        t_fw = b.fw_rlaunch(fw_lp, "rapidfire", "--nlaunches", "0")
        _check(
            "FireWorks rapidfire",
            _states(fw_lp.fireworks) == {"COMPLETED": n},
            _states(fw_lp.fireworks),
        )
        lp = b.ours("launch")
        ours_chains(lp, chains, 10)
        t_ours = b.lpad(lp.name, "rapidfire")
        _check("lpad rapidfire", _states(lp.fireworks) == {"COMPLETED": n}, _states(lp.fireworks))
        b.add(
            Row(
                "launch: rapidfire, whole command",
                f"{n} ({chains} chains of 10)",
                t_fw * 1000 / n,
                t_ours * 1000 / n,
                "ms per Firework",
                target="≥ 4x",
                raw={"fireworks_s": t_fw, "ours_s": t_ours},
            )
        )
        _drop(fw_lp, lp)


def run_workflow(b: Bench) -> None:
    """``lpad run_workflow`` (one command per workflow) vs ``lpad rapidfire`` per Firework."""
    n = 10 if b.quick else 100
    if not b.fit("run_workflow", (n,)):
        return
    chains = n // 10
    lp = b.ours("rapidfire")
    ours_chains(lp, chains, 10)
    t_rf = b.lpad(lp.name, "rapidfire")
    lp2 = b.ours("run_wf")
    roots = ours_chains(lp2, chains, 10)
    t_wf = sum(b.lpad(lp2.name, "run_workflow", str(r)) for r in roots)
    _check("run_workflow", _states(lp2.fireworks) == {"COMPLETED": n}, _states(lp2.fireworks))
    b.add(
        Row(
            "run_workflow vs rapidfire, whole commands",
            f"{n} ({chains} workflows of 10)",
            t_rf * 1000 / n,
            t_wf * 1000 / n,
            "ms per Firework",
            baseline="lpad rapidfire",
            target="≥ 0.83x (run_workflow ≤ 1.2x rapidfire)",
            raw={"rapidfire_s": t_rf, "run_workflow_s": t_wf},
        )
    )
    _drop(lp, lp2)


@contextmanager
def _in_tmpdir() -> Any:
    old = os.getcwd()
    d = tempfile.mkdtemp(prefix="bench-launch-")
    os.chdir(d)
    try:
        yield d
    finally:
        os.chdir(old)


def round_trips(b: Bench) -> None:
    """Commands and time per Firework life (store level, no Prefect) in chains of 10/1k/10k."""
    from fireworks import FWorker as FWFWorker
    from fireworks.core.rocket_launcher import launch_rocket

    from prefect_fireworks.runtime.rocket import run_one
    from prefect_fireworks.store.launchpad import FWorker

    for size in (10,) if b.quick else b.fit("round_trips", (10, 1000, 10000)):
        lives = 3 if size >= 10000 else 5
        fl = Commands()
        fw_lp = b.fireworks("rt", fl)
        fireworks_chains(fw_lp, 1, size)
        with _in_tmpdir():
            # One life first, not counted: a process's first life also creates the worker's
            # state (ids, read-ahead); the row reports the steady state of a long chain.
            launch_rocket(fw_lp, FWFWorker(), strm_lvl="ERROR")
            fl.count.clear()
            t0 = time.perf_counter()
            for _ in range(lives):  # the chain's one READY Firework, as rlaunch singleshot
                launch_rocket(fw_lp, FWFWorker(), strm_lvl="ERROR")
            t_fw = time.perf_counter() - t0
        fw_cmds = fl.total / lives
        _check(
            "FireWorks lives",
            fw_lp.fireworks.count_documents({"state": "COMPLETED"}) == lives + 1,
            "",
        )
        ol = Commands()
        lp = b.ours("rt", ol)
        ours_chains(lp, 1, size)
        with _in_tmpdir() as d:
            first = dict(ol.count)
            _check("first life", run_one(lp, FWorker(), launch_root=d) is not None, "")
            first_life = {k: v - first.get(k, 0) for k, v in ol.count.items()}
            ol.count.clear()
            t0 = time.perf_counter()
            for _ in range(lives):
                res = run_one(lp, FWorker(), launch_root=d)
                _check("run_one", res is not None and res.state == "COMPLETED", res)
            t_ours = time.perf_counter() - t0
        ours_cmds = ol.total / lives
        _check("our lives", lp.fireworks.count_documents({"state": "COMPLETED"}) == lives + 1, "")
        raw = {
            "ours_first_life_commands": first_life,
            "fireworks_commands": dict(fl.count),
            "ours_commands": dict(ol.count),
            "lives": lives,
        }
        b.add(
            Row("round trips per Firework life", f"chain of {size:,}", fw_cmds, ours_cmds,
                "MongoDB commands (after a first life)", target="≤ 6, same at every size", raw=raw)
        )  # fmt: skip
        b.add(
            Row("time per Firework life (store only)", f"chain of {size:,}",
                t_fw * 1000 / lives, t_ours * 1000 / lives, "ms per Firework")
        )  # fmt: skip
        _drop(fw_lp, lp)


def workers(b: Bench) -> None:
    """Throughput with 1, 2, 4, 8 concurrent launcher processes on the same LaunchPad."""
    n = 10 if b.quick else 200
    if not b.fit("workers", (n,)):
        return
    import sys

    from benchmarks.harness import FIREWORKS_RLAUNCH

    lpad = os.path.join(os.path.dirname(sys.executable), "lpad")
    for k in (2,) if b.quick else (1, 2, 4, 8):
        fw_lp = b.fireworks("wk")
        fireworks_chains(fw_lp, n // 10, 10)
        # --sleep 1 for both tools: with the default 60 s, a worker that finds nothing READY
        # while another holds the last Fireworks sleeps a minute before it can exit, and the
        # row measured that sleep (2 processes on 200 Fireworks: 87 s -> 155 s).
        cmd = [sys.executable, "-c", FIREWORKS_RLAUNCH, "-l", str(b.fw_file(fw_lp)), "rapidfire"]
        cmd += ["--sleep", "1"]
        t_fw = _parallel(b, [cmd] * k, b.base_env())
        _check(
            "FireWorks workers",
            _states(fw_lp.fireworks) == {"COMPLETED": n},
            _states(fw_lp.fireworks),
        )
        lp = b.ours("wk")
        ours_chains(lp, n // 10, 10)
        t_ours = _parallel(b, [[lpad, "rapidfire", "--sleep", "1"]] * k, b.env_ours(lp.name))
        _check("lpad workers", _states(lp.fireworks) == {"COMPLETED": n}, _states(lp.fireworks))
        b.add(
            Row("workers: concurrent rapidfire processes", f"{k} x ({n} Fireworks)",
                n / t_fw, n / t_ours, "Fireworks per second", better="higher",
                target="more workers never slower than one",
                raw={"fireworks_s": t_fw, "ours_s": t_ours})
        )  # fmt: skip
        _drop(fw_lp, lp)


def _parallel(b: Bench, cmds: Sequence[Sequence[str]], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    procs = [b.popen(c, env) for c in cmds]
    errs = []
    # Every pipe read at once: a worker blocked on a full pipe would stall with its claim.
    with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
        outputs = list(pool.map(lambda p: p.communicate(timeout=3600), procs))
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode not in (0, 1):
            errs.append(err.decode(errors="replace")[-800:])
    dt = time.perf_counter() - t0
    if errs:
        raise RuntimeError("worker failed:\n" + errs[0])
    return dt


def rerun_fan_out(b: Bench) -> None:
    """``rerun_fws -i <root>`` of a COMPLETED fan-out with a sink, both tools' ``lpad``."""
    for n in (101,) if b.quick else b.fit("rerun_fan_out", (1001, 3001)):
        fw_lp = b.fireworks("rr")
        from prefect_fireworks.store.launchpad import LaunchPad

        writer = LaunchPad.from_uri(b.uri, name=fw_lp.name)  # same schema, written once
        fw_root, total = fan_out_with_sink(writer, n)
        writer.close()
        t_fw = b.fw_lpad(fw_lp, "rerun_fws", "-i", str(fw_root))
        lp = b.ours("rr")
        root, _ = fan_out_with_sink(lp, n)
        t_ours = b.lpad(lp.name, "rerun_fws", "-i", str(root))
        for who, coll in (("FireWorks", fw_lp.fireworks), ("ours", lp.fireworks)):
            got = _states(coll)
            _check(f"{who} rerun", got == {"READY": 1, "WAITING": total - 1}, got)
        b.add(
            Row("rerun the root of a fan-out with a sink (lpad)", f"{n:,} + sink",
                t_fw, t_ours, "s, whole command", target="≥ 30x" if n < 2000 else "≥ 100x")
        )  # fmt: skip
        _drop(fw_lp, lp)


def _huge(b: Bench, n: int) -> tuple[Any, int, int, int]:
    """The 100,000-Firework LaunchPad, built once per run: `previews` reads it, `rerun_huge`
    then reruns its root (building it is most of either scenario's time)."""
    cached = getattr(b, "_huge_lp", None)
    if cached is None:
        lp = b.ours("huge")
        cached = (lp, *huge_fan_out(lp, n, fizzled_every=10))
        b._huge_lp = cached  # type: ignore[attr-defined]
    return cached  # type: ignore[no-any-return]


def rerun_huge(b: Bench) -> None:
    """``lpad rerun_fws -i <root>`` of a 100,000-Firework fan-out (ours only)."""
    n = 1001 if b.quick else 100_000
    if not b.fit("rerun_huge", (n,)):
        return
    lp, root, total, _ = _huge(b, n)
    t = b.lpad(lp.name, "rerun_fws", "-i", str(root))
    got = _states(lp.fireworks)
    _check("huge rerun", got == {"READY": 1, "WAITING": total - 1}, got)
    b.add(
        Row("rerun the root of one huge workflow (lpad)", f"{total:,}", None, t,
            "s, whole command", target="< 60 s", note="(FireWorks not run at this size)")
    )  # fmt: skip
    _drop(lp)
    b._huge_lp = None  # type: ignore[attr-defined]


def rerun_fizzled(b: Bench) -> None:
    """``lpad rerun_fws -s FIZZLED`` over many FIZZLED Fireworks in many workflows."""
    n_wfs = 5 if b.quick else 1000
    if not b.fit("rerun_fizzled", (n_wfs * 10,)):
        return
    fw_lp = b.fireworks("fz")
    from prefect_fireworks.store.launchpad import LaunchPad

    writer = LaunchPad.from_uri(b.uri, name=fw_lp.name)
    nfizz = many_fizzled(writer, n_wfs, 10)
    writer.close()
    fw_t: float | None
    try:
        fw_t = b.fw_lpad(
            fw_lp, "rerun_fws", "-s", "FIZZLED", "--password", TODAY, timeout=FIZZLED_FW_TIMEOUT
        )
        got = _states(fw_lp.fireworks)
        _check("FireWorks rerun -s FIZZLED", got == {"READY": nfizz}, got)
        note = ""
    except Exception as exc:  # a timeout is a result too
        if isinstance(exc, subprocess.TimeoutExpired):
            note = f"(FireWorks stopped after {FIZZLED_FW_TIMEOUT:.0f} s, not finished)"
        else:
            note = f"(FireWorks: {type(exc).__name__})"
        fw_t = None
    lp = b.ours("fz")
    many_fizzled(lp, n_wfs, 10)
    t = b.lpad(lp.name, "rerun_fws", "-s", "FIZZLED", "--password", TODAY)
    got = _states(lp.fireworks)
    _check("rerun -s FIZZLED", got == {"READY": nfizz}, got)
    b.add(
        Row("rerun_fws -s FIZZLED (lpad)", f"{nfizz:,} in {n_wfs:,} workflows", fw_t, t,
            "s, whole command", target="< 15 s", note=note)
    )  # fmt: skip
    _drop(fw_lp, lp)


def previews(b: Bench) -> None:
    """Read-only previews over many Fireworks: count by state, and a launches-mode $regex
    (on the LaunchPad `rerun_huge` reruns next: one fan-out, every 10th child FIZZLED)."""
    n = 1001 if b.quick else 100_000
    if not b.fit("previews", (n,)):
        return
    lp, _root, total, nfizz = _huge(b, n)

    class _Named:  # FireWorks' lpad reads the same database
        name = lp.name

    cases: list[tuple[str, list[str], Callable[[str], bool]]] = [
        (
            "get_fws -s FIZZLED -d count",
            ["get_fws", "-s", "FIZZLED", "-d", "count"],
            lambda o: True,
        ),
        (
            "get_fws -lm -q {launch_dir: {$regex}} -d count",
            ["get_fws", "-lm", "-q", '{"launch_dir": {"$regex": "run_1.*7$"}}', "-d", "count"],
            lambda o: True,
        ),
    ]
    for label, args, _ in cases:
        reps = 1 if b.quick else 3
        t_fw = median_of([b.fw_lpad(_Named, *args) for _ in range(reps)])
        t_ours = median_of([b.lpad(lp.name, *args) for _ in range(reps)])
        b.add(
            Row(f"preview: {label}", f"{total:,} Fireworks ({nfizz:,} FIZZLED)", t_fw, t_ours,
                "s, whole command", target="< 2 s")
        )  # fmt: skip
    # kept for rerun_huge (dropped there)


#: What ``lpad get_fws`` imports before it runs (the console script's own registration).
_LPAD_IMPORTS = (
    "import sys; sys.argv[0] = 'lpad'; import prefect_fireworks.cli; "
    "sys.modules['prefect_fireworks.cli.app'].register_for(['get_fws'])"
)


def startup(b: Bench) -> None:
    """``lpad`` start-up: a read command on an empty LaunchPad (median of several), with the
    interpreter's own start and the command's imports reported apart."""
    import sys

    lp = b.ours("su")
    fw_lp = b.fireworks("su")
    reps = 1 if b.quick else 7
    t_fw = median_of([b.fw_lpad(fw_lp, "get_wflows", "-d", "count") for _ in range(reps)])
    t_ours = median_of([b.lpad(lp.name, "get_wflows", "-d", "count") for _ in range(reps)])
    env = b.env_ours(lp.name)
    floor = median_of([b.run([sys.executable, "-c", "pass"], env) for _ in range(reps)])
    imports = median_of([b.run([sys.executable, "-c", _LPAD_IMPORTS], env) for _ in range(reps)])
    t_fws = median_of([b.lpad(lp.name, "get_fws", "-d", "count") for _ in range(reps)])
    raw = {"python_start_s": floor, "lpad_get_fws_imports_s": imports, "get_fws_count_s": t_fws}
    b.add(
        Row("lpad start-up: get_wflows -d count", "empty LaunchPad", t_fw, t_ours,
            "s, whole command", target="≤ 0.3 s", raw=raw,
            note=f"(python alone {floor:.2f} s, get_fws imports {imports:.2f} s, "
                 f"get_fws -d count {t_fws:.2f} s)")
    )  # fmt: skip
    _drop(fw_lp, lp)


def store_writes(b: Bench) -> None:
    """What limits a rerun: one ``update_many`` over n Fireworks, with the LaunchPad's indexes
    on ``fireworks`` and with only ``_id`` (the embedded server rewrites every index entry of
    every document it updates, whatever the fields written)."""
    n = 201 if b.quick else 1001
    lp = b.ours("sw")
    docs = [
        {"fw_id": i, "state": "COMPLETED", "launches": [i], "archived_launches": [],
         "name": f"f{i}", "spec": {"_tasks": [_task(i)]}, "created_on": "2026",
         "updated_on": "2026"}
        for i in range(1, n + 1)
    ]  # fmt: skip
    plain = lp.fireworks.database["plain_fireworks"]
    times = {}
    for label, coll in (("_id only", plain), ("LaunchPad indexes", lp.fireworks)):
        coll.insert_many([dict(d) for d in docs])
        t0 = time.perf_counter()
        res = coll.update_many({"fw_id": {"$gte": 1, "$lte": n}}, {"$set": {"x": 1}})
        times[label] = time.perf_counter() - t0
        _check(f"update_many ({label})", res.modified_count == n, res.modified_count)
    n_idx = len(list(lp.fireworks.list_indexes()))
    b.add(
        Row("store: one update_many of n Fireworks (an unindexed field)", f"{n:,}",
            times["_id only"] * 1000 / n, times["LaunchPad indexes"] * 1000 / n,
            "ms per document", baseline="only the _id index",
            note=f"({n_idx} indexes on fireworks)",
            raw={k: round(v, 3) for k, v in times.items()})
    )  # fmt: skip
    _drop(lp)


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "startup": startup,
    "round_trips": round_trips,
    "launch": launch,
    "run_workflow": run_workflow,
    "workers": workers,
    "rerun_fan_out": rerun_fan_out,
    "rerun_fizzled": rerun_fizzled,
    "previews": previews,  # before rerun_huge: both use one 100,000-Firework LaunchPad
    "rerun_huge": rerun_huge,
    "store_writes": store_writes,
}
