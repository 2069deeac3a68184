"""``lpad admin check [--repair]``: the LaunchPad's invariants, checked and restored.

The invariants (each violation names its workflow, Fireworks and launches):

- ``fw_states``: a workflow's cached ``fw_states`` equals the state of each of its Fireworks,
  and its nodes exist (``missing_firework``); every Firework belongs to a workflow
  (``orphan_firework``).
- ``workflow_state``: the workflow's state is FireWorks' aggregate of its Fireworks' states.
- ``ready_parents``: a READY Firework's parents are all COMPLETED (or FIZZLED, when it allows
  fizzled parents).
- ``missing_launch``: every launch id a Firework lists (active or archived) exists.
- ``shared_launch``: no launch is active in two Fireworks, unless they are duplicates
  (``_dupefinder``).
- ``orphan_claim``: no RESERVED or RUNNING Firework without a RESERVED or RUNNING launch (a
  process killed between claiming a Firework and inserting its launch).
- ``intent``: no unfinished write intent of a dead process (see ``store/intents.py``).
- ``stale_lock``: no workflow lock held by a dead process or older than the lock expiry.

``repair`` rolls intents forward, releases stale locks, rewrites ``fw_states`` and workflow states
from the Fireworks, puts READY Fireworks with unfinished parents back to WAITING, resets orphan
claims (to READY, or what their launches say) and deletes Fireworks that belong to no workflow and
never ran (left by an ``add`` that died). Missing and shared launches are reported only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.times import to_utc
from prefect_fireworks.store import intents

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: Seconds a Firework may stay claimed without a launch (the claim and the launch insert are two
#: writes a few milliseconds apart) or exist without a workflow (an ``add`` in progress).
CLAIM_GRACE_SECS = 60.0
#: Ids shown in one message before "... and N more".
_SHOWN_IDS = 20

REPAIRABLE = frozenset(
    {
        "fw_states",
        "missing_firework",
        "workflow_state",
        "ready_parents",
        "orphan_claim",
        "orphan_firework",
        "intent",
        "stale_lock",
    }
)


@dataclass
class Violation:
    """One broken invariant.

    Attributes:
        check: the invariant's name (``fw_states``, ``orphan_claim``...).
        message: one line naming the ids.
        wf_id: the workflow (its lowest fw_id), when there is one.
        fw_ids: the Fireworks concerned.
        launch_ids: the launches concerned.
        repairable: ``--repair`` fixes it.
    """

    check: str
    message: str
    wf_id: int | None = None
    fw_ids: list[int] = field(default_factory=list)
    launch_ids: list[int] = field(default_factory=list)
    repairable: bool = True


@dataclass
class CheckReport:
    """What ``admin check`` found (and, with ``repair``, what it fixed)."""

    violations: list[Violation] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    remaining: list[Violation] = field(default_factory=list)
    n_workflows: int = 0
    n_fireworks: int = 0
    n_launches: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """No violation is left (after repair, when it ran)."""
        return not (self.remaining if self.repaired else self.violations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {
            "clean": self.clean,
            "workflows": self.n_workflows,
            "fireworks": self.n_fireworks,
            "launches": self.n_launches,
            "violations": [asdict(v) for v in self.violations],
            "repaired": self.repaired,
            "remaining": [asdict(v) for v in self.remaining],
            "seconds": round(self.seconds, 3),
        }


def _ids(ids: Iterable[int]) -> str:
    lst = sorted(ids)
    shown = ", ".join(str(i) for i in lst[:_SHOWN_IDS])
    return shown + (f" ... and {len(lst) - _SHOWN_IDS} more" if len(lst) > _SHOWN_IDS else "")


def check(
    lp: LaunchPad,
    *,
    lock_expire_secs: float | None = None,
    claim_grace_secs: float = CLAIM_GRACE_SECS,
) -> CheckReport:
    """Check every invariant; reads only (a few whole-collection scans with small projections).

    Args:
        lp: the LaunchPad.
        lock_expire_secs: age after which a lock is stale (default FireWorks' 300 s).
        claim_grace_secs: see :data:`CLAIM_GRACE_SECS`.
    """
    import time

    from prefect_fireworks.core.constants import WFLOCK_EXPIRATION_SECS

    t0 = time.perf_counter()
    expire = WFLOCK_EXPIRATION_SECS if lock_expire_secs is None else lock_expire_secs
    now = datetime.now(timezone.utc)
    rep = CheckReport()
    out = rep.violations

    fws: dict[int, dict[str, Any]] = {}
    for d in lp.fireworks.find(
        {},
        {
            "_id": 0,
            "fw_id": 1,
            "state": 1,
            "launches": 1,
            "archived_launches": 1,
            "updated_on": 1,
            "spec._allow_fizzled_parents": 1,
            "spec._dupefinder": 1,
        },
    ):
        if isinstance(d.get("fw_id"), int):
            fws[d["fw_id"]] = d
    launch_states = {
        d["launch_id"]: d.get("state")
        for d in lp.launches.find({}, {"_id": 0, "launch_id": 1, "state": 1})
        if "launch_id" in d
    }
    rep.n_fireworks, rep.n_launches = len(fws), len(launch_states)

    def allow(i: int) -> bool:
        return bool((fws.get(i, {}).get("spec") or {}).get("_allow_fizzled_parents"))

    in_wf: set[int] = set()
    for wf in lp.workflows.find(
        {},
        {
            "nodes": 1,
            "links": 1,
            "fw_states": 1,
            "state": 1,
            "locked": 1,
            "locked_by": 1,
            "locked_at": 1,
        },
    ):
        nodes = [int(n) for n in wf.get("nodes", [])]
        rep.n_workflows += 1
        wid = min(nodes) if nodes else None
        in_wf.update(nodes)
        missing = [n for n in nodes if n not in fws]
        if missing:
            out.append(
                Violation(
                    "missing_firework",
                    f"workflow {wid}: nodes {_ids(missing)} have no Firework document",
                    wid,
                    missing,
                )
            )
        cached = {int(k): v for k, v in (wf.get("fw_states") or {}).items()}
        actual = {n: fws[n]["state"] for n in nodes if n in fws}
        stale = sorted(n for n in actual if cached.get(n) != actual[n])
        extra = sorted(set(cached) - set(nodes))
        if stale or extra:
            detail = "; ".join(f"fw {n}: cached {cached.get(n)}, is {actual[n]}" for n in stale[:5])
            more = f" (+{len(stale) - 5} more)" if len(stale) > 5 else ""
            ext = f"; keys of no node: {_ids(extra)}" if extra else ""
            out.append(
                Violation(
                    "fw_states",
                    f"workflow {wid}: fw_states differs for fw_ids {_ids(stale)} "
                    f"({detail}{more}){ext}",
                    wid,
                    stale or extra,
                )
            )
        links = {int(k): [int(c) for c in v] for k, v in (wf.get("links") or {}).items()}
        if actual and not missing:
            want = st.workflow_state(actual, links, {n: True for n in nodes if allow(n)})
            if wf.get("state") != want:
                out.append(
                    Violation(
                        "workflow_state",
                        f"workflow {wid}: state {wf.get('state')} but its Fireworks make it {want}",
                        wid,
                        [],
                    )
                )
        parents: dict[int, list[int]] = {}
        for p, ch in links.items():
            for c in ch:
                parents.setdefault(c, []).append(p)
        bad_ready = [
            n
            for n, s in actual.items()
            if s == st.READY
            and not st.parents_done(
                (actual.get(p, st.WAITING) for p in parents.get(n, [])), allow(n)
            )
        ]
        if bad_ready:
            out.append(
                Violation(
                    "ready_parents",
                    f"workflow {wid}: fw_ids {_ids(bad_ready)} are READY under unfinished parents",
                    wid,
                    sorted(bad_ready),
                )
            )
        if wf.get("locked") and intents.lock_is_stale(wf, expire):
            out.append(
                Violation(
                    "stale_lock",
                    f"workflow {wid}: locked by {wf.get('locked_by')} (dead or expired)",
                    wid,
                    [],
                )
            )

    orphans = [
        i
        for i, d in fws.items()
        if i not in in_wf
        and (
            (to_utc(d.get("updated_on")) or now) < now - timedelta(seconds=claim_grace_secs)
            or d.get("launches")
        )
    ]
    if orphans:
        out.append(
            Violation(
                "orphan_firework",
                f"fw_ids {_ids(orphans)} belong to no workflow",
                None,
                sorted(orphans),
                repairable=all(not fws[i].get("launches") for i in orphans),
            )
        )

    dangling: dict[int, list[int]] = {}
    owners: dict[int, list[int]] = {}
    for i, d in fws.items():
        for lid in [*(d.get("launches") or []), *(d.get("archived_launches") or [])]:
            if lid not in launch_states:
                dangling.setdefault(i, []).append(lid)
        for lid in d.get("launches") or []:
            owners.setdefault(lid, []).append(i)
    if dangling:
        lids = sorted({lid for v in dangling.values() for lid in v})
        out.append(
            Violation(
                "missing_launch",
                f"fw_ids {_ids(dangling)} list launch ids {_ids(lids)} that do not exist",
                None,
                sorted(dangling),
                lids,
                repairable=False,
            )
        )
    shared = {
        lid: ids
        for lid, ids in owners.items()
        if len(ids) > 1 and not all((fws[i].get("spec") or {}).get("_dupefinder") for i in ids)
    }
    if shared:
        out.append(
            Violation(
                "shared_launch",
                "launches active in several Fireworks that are not duplicates: "
                + "; ".join(
                    f"launch {lid} in fw_ids {_ids(ids)}" for lid, ids in list(shared.items())[:5]
                ),
                None,
                sorted({i for ids in shared.values() for i in ids}),
                sorted(shared),
                repairable=False,
            )
        )

    claims = [
        i
        for i, d in fws.items()
        if d.get("state") in st.ACTIVE_STATES
        and not any(launch_states.get(lid) in st.ACTIVE_STATES for lid in d.get("launches") or [])
        and (to_utc(d.get("updated_on")) or now) < now - timedelta(seconds=claim_grace_secs)
    ]
    if claims:
        out.append(
            Violation(
                "orphan_claim",
                f"fw_ids {_ids(claims)} are RESERVED/RUNNING without a RESERVED/RUNNING launch",
                None,
                sorted(claims),
            )
        )

    for intent in intents.pending(lp.db, load=False):
        if intents.is_abandoned(intent, expire):
            out.append(Violation("intent", f"unfinished {intent.summary}", None, []))
    rep.seconds = time.perf_counter() - t0
    return rep


def repair(
    lp: LaunchPad,
    *,
    lock_expire_secs: float | None = None,
    claim_grace_secs: float = CLAIM_GRACE_SECS,
) -> CheckReport:
    """Check, fix what is fixable (in a safe order), check again.

    Returns:
        The first check's violations, the repairs made, and what remains.
    """
    from prefect_fireworks.core.constants import WFLOCK_EXPIRATION_SECS

    expire = WFLOCK_EXPIRATION_SECS if lock_expire_secs is None else lock_expire_secs
    first = check(lp, lock_expire_secs=expire, claim_grace_secs=claim_grace_secs)
    done: list[str] = []
    # 1. finish what dead processes started (this also takes over and releases their locks)
    for intent in intents.roll_forward(lp.db, expire):
        done.append(f"rolled forward {intent.summary}")
    # 2. locks of dead or expired owners that had no intent
    for v in first.violations:
        if v.check == "stale_lock" and v.wf_id is not None:
            wf = lp.workflows.find_one(
                {"nodes": v.wf_id}, {"locked": 1, "locked_by": 1, "locked_at": 1}
            )
            if wf is not None and wf.get("locked") and intents.lock_is_stale(wf, expire):
                res = lp.workflows.update_one(
                    {"_id": wf["_id"], "locked_by": wf.get("locked_by")},
                    {"$unset": {"locked": "", "locked_by": "", "locked_at": ""}},
                )
                if res.modified_count:
                    done.append(f"released the stale lock of workflow {v.wf_id}")
    mid = check(lp, lock_expire_secs=expire, claim_grace_secs=claim_grace_secs)
    # 3. Fireworks of no workflow that never ran: an add that died between its two inserts
    for v in mid.violations:
        if v.check == "orphan_firework" and v.repairable:
            lp.fireworks.delete_many({"fw_id": {"$in": v.fw_ids}, "launches": {"$in": [[], None]}})
            done.append(f"deleted Fireworks of no workflow: {_ids(v.fw_ids)}")
    # 4. per workflow: cached states, READY under unfinished parents, orphan claims
    claims = {i for v in mid.violations if v.check == "orphan_claim" for i in v.fw_ids}
    wf_fix: dict[int, set[int]] = {}
    for v in mid.violations:
        if v.check in ("fw_states", "workflow_state", "ready_parents") and v.wf_id is not None:
            wf_fix.setdefault(v.wf_id, set()).update(v.fw_ids if v.check == "ready_parents" else [])
    done.extend(fix_workflows(lp, wf_fix, claims))
    after = check(lp, lock_expire_secs=expire, claim_grace_secs=claim_grace_secs)
    first.repaired = done or ["nothing to repair"]
    first.remaining = after.violations
    first.seconds += mid.seconds + after.seconds
    return first


def fix_workflows(
    lp: LaunchPad, refresh: Mapping[int, Iterable[int]], claims: Iterable[int]
) -> list[str]:
    """Under each workflow's lock: ``fw_states`` rewritten from the Fireworks, the given
    Fireworks refreshed, and orphan claims reset (launch ids without a document dropped from
    ``launches``; then READY, or what their remaining launches say).

    Args:
        lp: the LaunchPad.
        refresh: workflow id -> fw_ids to refresh.
        claims: fw_ids of orphan claims (any workflow).

    Returns:
        One line per workflow fixed.
    """
    claims = set(claims)
    todo: dict[int, set[int]] = {w: set(ids) for w, ids in refresh.items()}
    for fid in claims:
        try:
            wid = min(int(n) for n in lp.get_wf_doc(fid, {"nodes": 1})["nodes"])
        except ValueError:
            continue
        todo.setdefault(wid, set()).add(fid)
    out = []
    for wid, ids in sorted(todo.items()):
        reset = sorted(ids & claims)
        if reset:
            listed = {
                lid
                for d in lp.fireworks.find({"fw_id": {"$in": reset}}, {"launches": 1})
                for lid in d.get("launches") or []
            }
            known = set(lp.launches.distinct("launch_id", {"launch_id": {"$in": sorted(listed)}}))
            if listed - known:
                lp.fireworks.update_many(
                    {"fw_id": {"$in": reset}},
                    {"$pull": {"launches": {"$in": sorted(listed - known)}}},
                )
        with lp.edit_workflow(wid) as ed:
            ed.load_fws(ed.links)
            for n in ed.links:
                ed.fw_states[n] = ed.fw(n)["state"]
            for fid in reset:
                # refresh recomputes from the launches: no active launch -> READY (or WAITING)
                ed.fw(fid)["launches"] = [
                    lid for lid in ed.fw(fid)["launches"] if ed.launch(lid) is not None
                ]
                ed.fw(fid)["state"] = st.WAITING
                ed.mark(fid, "state")
            ed.refresh(sorted(ids))
        parts = ["rewrote fw_states and state"]
        if reset:
            parts.append(f"reset orphan claims {_ids(reset)}")
        if ids - claims:
            parts.append(f"refreshed {_ids(ids - claims)}")
        out.append(f"workflow {wid}: " + ", ".join(parts))
    return out


def orphan_claims(lp: LaunchPad, grace_secs: float = CLAIM_GRACE_SECS) -> list[int]:
    """RESERVED/RUNNING Fireworks without a RESERVED/RUNNING launch, claimed more than
    ``grace_secs`` ago (a process killed between the claim and the launch insert)."""
    now = datetime.now(timezone.utc)
    cutoff = now - timedelta(seconds=grace_secs)
    docs = list(
        lp.fireworks.find(
            {"state": {"$in": sorted(st.ACTIVE_STATES)}},
            {"fw_id": 1, "launches": 1, "updated_on": 1},
        )
    )
    lids = sorted({lid for d in docs for lid in d.get("launches") or []})
    active = (
        {
            d["launch_id"]
            for d in lp.launches.find(
                {"launch_id": {"$in": lids}, "state": {"$in": sorted(st.ACTIVE_STATES)}},
                {"launch_id": 1},
            )
        }
        if lids
        else set()
    )
    return sorted(
        d["fw_id"]
        for d in docs
        if not any(lid in active for lid in d.get("launches") or [])
        and (to_utc(d.get("updated_on")) or now) <= cutoff
    )
