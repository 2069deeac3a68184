"""Side by side: one workflow run by FireWorks 2.1.4 and by us, on one server, compared.

`SideBySide` holds FireWorks' own LaunchPad (its own database of the session's server) and
ours. ``add`` gives both the same workflow dict (built with FireWorks' installed classes),
``run`` drains both (FireWorks' ``rapidfire`` in-process; ours: the rocket's ``run_one`` until
nothing is READY, which is ``rlaunch rapidfire``), ``rerun`` reruns a Firework in both, and
``outcome`` reduces a database and its launch directories to what must be equal: fw_ids,
names, states, specs, links, launches (states, actions, stored_data), archived launches, the
files each launch wrote (FW.json parsed) — with times, hosts and directory names normalised.

The PyTask functions and Firetasks the workflows use are in ``fidelity_tasks`` (importable by
FireWorks' ``load_object`` and by ours).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

VOLATILE = {
    "created_on",
    "updated_on",
    "time_start",
    "time_end",
    "time_reserved",
    "runtime_secs",
    "host",
    "ip",
    "_id",
    "checkpoint",
    "locked",
    "locked_by",
    "locked_at",
}


class SideBySide:
    """FireWorks' LaunchPad and ours, each with its own launch root under ``tmp``."""

    def __init__(self, lp: Any, mongo_uri: str, tmp: Path) -> None:
        from fireworks import LaunchPad as RefLaunchPad

        self.lp = lp
        self.ref_name = f"fwref_{uuid.uuid4().hex[:10]}"
        self.ref = RefLaunchPad(host=mongo_uri, uri_mode=True, name=self.ref_name, strm_lvl="ERROR")
        self.ref.reset("", require_password=False)
        self.ref_root = tmp / "fireworks"
        self.our_root = tmp / "ours"
        self.ref_root.mkdir()
        self.our_root.mkdir()

    def close(self) -> None:
        self.ref.connection.drop_database(self.ref_name)
        self.ref.connection.close()

    # -- driving ---------------------------------------------------------------------------
    def add(self, wf_dict: dict[str, Any]) -> tuple[dict[int, int], dict[int, int]]:
        """Add the workflow dict to both; returns both old -> new id maps."""
        from fireworks import Workflow as RefWorkflow

        from prefect_fireworks.core.models import Workflow

        text = json.dumps(wf_dict, default=lambda o: o.isoformat())
        theirs = self.ref.add_wf(RefWorkflow.from_dict(json.loads(text)))
        ours = self.lp.add_wf(Workflow.from_dict(json.loads(text)))
        return theirs, ours

    def run(self, fw_id: int | None = None) -> None:
        """Run in both: everything READY (and what becomes READY), or one Firework."""
        from fireworks import FWorker as RefFWorker
        from fireworks.core.rocket_launcher import rapidfire as ref_rapidfire

        from prefect_fireworks.runtime.rocket import run_one
        from prefect_fireworks.store.launchpad import FWorker

        cwd = os.getcwd()
        try:
            if fw_id is None:
                ref_rapidfire(
                    self.ref,
                    RefFWorker(),
                    m_dir=str(self.ref_root),
                    nlaunches=0,
                    max_loops=1,
                    sleep_time=0,
                    strm_lvl="ERROR",
                )
            else:
                from fireworks.core.rocket_launcher import launch_rocket

                d = self.ref_root / f"single_{uuid.uuid4().hex[:6]}"
                d.mkdir()
                os.chdir(d)
                launch_rocket(self.ref, RefFWorker(), fw_id=fw_id, strm_lvl="ERROR")
        finally:
            os.chdir(cwd)
        try:
            if fw_id is None:
                while run_one(self.lp, FWorker(), launch_root=self.our_root) is not None:
                    pass
            else:
                run_one(self.lp, FWorker(), fw_id, launch_root=self.our_root)
        finally:
            os.chdir(cwd)

    def rerun(self, fw_id: int) -> None:
        """``rerun_fw`` in FireWorks, ``lpad rerun_fws -i`` in ours."""
        from prefect_fireworks.ops.rerun import rerun_fws

        self.ref.rerun_fw(fw_id)
        rerun_fws(self.lp, [fw_id])

    # -- comparing -------------------------------------------------------------------------
    def outcomes(self, files: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """(FireWorks', ours), normalised."""
        return (
            outcome(self.ref.db, self.ref_root, files),
            outcome(self.lp.db, self.our_root, files),
        )


_LAUNCHER = re.compile(r"(launcher_[0-9-]+|single_[0-9a-f]+)")


def _norm_str(s: str, root: str) -> str:
    if root and root in s:
        s = s.replace(root, "<root>")
        s = _LAUNCHER.sub("<launch_dir>", s)
    return s


def normalise(obj: Any, root: str) -> Any:
    """Drop volatile keys, make paths under ``root`` relative, keep stack traces' last line."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in VOLATILE:
                continue
            if k == "_stacktrace" and isinstance(v, str):
                out[k] = v.strip().splitlines()[-1]
                continue
            if k == "state_history" and isinstance(v, list):
                out[k] = [h.get("state") for h in v]
                continue
            if k == "action" and isinstance(v, dict):
                v = renumber_action(v)
            out[k] = normalise(v, root)
        return out
    if isinstance(obj, list):
        return [normalise(v, root) for v in obj]
    if isinstance(obj, str):
        return _norm_str(obj, root)
    return obj


def _negative_ids(obj: Any, found: set[int]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "fw_id" and isinstance(v, int) and v < 0:
                found.add(v)
            _negative_ids(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _negative_ids(v, found)


def _renumber(obj: Any, m: dict[int, int], in_links: bool = False) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if in_links:
                key: Any = m.get(int(k), int(k)) if str(k).lstrip("-").isdigit() else k
                out[str(key)] = [m.get(c, c) for c in v]
            elif k == "fw_id" and isinstance(v, int):
                out[k] = m.get(v, v)
            else:
                out[k] = _renumber(v, m, k == "links")
        return out
    if isinstance(obj, list):
        return [_renumber(v, m) for v in obj]
    return obj


def renumber_action(action: dict[str, Any]) -> dict[str, Any]:
    """Negative fw_ids of added Fireworks come from a process-wide counter: number them
    -1, -2, ... in their order (the order FireWorks sorts them in)."""
    found: set[int] = set()
    _negative_ids(action, found)
    m = {old: -(i + 1) for i, old in enumerate(sorted(found, reverse=True))}
    return _renumber(action, m)


def _launch(db: Any, lid: int, root: str, files: bool) -> dict[str, Any]:
    doc = db["launches"].find_one({"launch_id": lid}) or {}
    action = renumber_action(doc.get("action") or {})
    out = {
        "launch_id": lid,
        "state": doc.get("state"),
        "state_history": [h.get("state") for h in doc.get("state_history") or []],
        "action": normalise(action, root),
        "launch_dir": _norm_str(doc.get("launch_dir") or "", root),
    }
    if files and doc.get("launch_dir") and os.path.isdir(doc["launch_dir"]):
        out["files"] = dir_files(Path(doc["launch_dir"]), root)
    return out


def dir_files(d: Path, root: str) -> dict[str, Any]:
    """Every file under a launch directory: name -> content (FW.json parsed, normalised)."""
    out: dict[str, Any] = {}
    for p in sorted(d.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(d))
        data = p.read_bytes()
        if p.name == "FW.json":
            out[rel] = normalise(json.loads(data), root)
        else:
            try:
                out[rel] = _norm_str(data.decode(), root)
            except UnicodeDecodeError:
                out[rel] = f"<{len(data)} bytes>"
    return out


def outcome(db: Any, root_dir: Path, files: bool = True) -> dict[str, Any]:
    """A database (one workflow) and its launch directories, normalised."""
    root = str(root_dir)
    fws = {}
    for fw in db["fireworks"].find({}).sort("fw_id", 1):
        fws[fw["fw_id"]] = {
            "name": fw["name"],
            "state": fw["state"],
            "spec": normalise(fw["spec"], root),
            "launches": [_launch(db, lid, root, files) for lid in fw.get("launches", [])],
            "archived_launches": [
                _launch(db, lid, root, False) for lid in fw.get("archived_launches", [])
            ],
        }
    wfs = []
    for wf in db["workflows"].find({}).sort("nodes", 1):
        wfs.append(
            {
                "name": wf["name"],
                "state": wf["state"],
                "nodes": sorted(wf["nodes"]),
                "links": {int(k): sorted(v) for k, v in wf["links"].items()},
                "fw_states": {int(k): v for k, v in wf["fw_states"].items()},
                "metadata": wf.get("metadata"),
            }
        )
    return {"fws": fws, "workflows": wfs}


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Readable differences between two outcomes (empty when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}/{k}: only ours: {b[k]!r}"[:400])
            elif k not in b:
                out.append(f"{path}/{k}: only FireWorks': {a[k]!r}"[:400])
            else:
                out += diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}[{i}]")
        ]
    if a != b:
        return [f"{path}: FireWorks {a!r} != ours {b!r}"[:400]]
    return []
