"""Lost runs: FireWorks' ``detect_lostruns`` (RUNNING launches whose heartbeat stopped), with
``fizzle``, ``rerun`` and ``refresh`` fixes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import RUN_EXPIRATION_SECS
from prefect_fireworks.core.times import to_utc
from prefect_fireworks.ops.check import CLAIM_GRACE_SECS, fix_workflows, orphan_claims
from prefect_fireworks.ops.rerun_plan import apply_rerun, plan_rerun
from prefect_fireworks.store.queries import check_query

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


@dataclass
class LostRuns:
    """``detect_lostruns`` result: FireWorks' three lists (plus what was fixed)."""

    lost_launch_ids: list[int]
    lost_fw_ids: list[int]
    inconsistent_fw_ids: list[int]
    fizzled: bool = False
    rerun: list[int] = field(default_factory=list)
    refreshed: bool = False
    #: RESERVED/RUNNING Fireworks with no RESERVED/RUNNING launch: a worker died between its
    #: claim and its launch insert (not in FireWorks, whose claim and launch are one write).
    orphan_claims: list[int] = field(default_factory=list)
    claims_reset: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def detect_lostruns(
    lp: LaunchPad,
    expiration_secs: float = RUN_EXPIRATION_SECS,
    fizzle: bool = False,
    rerun: bool = False,
    max_runtime: float | None = None,
    min_runtime: float | None = None,
    refresh: bool = False,
    query: Mapping[str, Any] | None = None,
    launch_query: Mapping[str, Any] | None = None,
) -> LostRuns:
    """FireWorks' ``detect_lostruns``: RUNNING launches not pinged for ``expiration_secs``.

    A Firework is lost when it is RUNNING and each of its active launches is lost or ranks
    at most FIZZLED. ``fizzle`` marks the lost launches FIZZLED; ``rerun`` does that and reruns
    the lost Fireworks; ``refresh`` repairs "inconsistent" Fireworks (RUNNING with a COMPLETED or
    FIZZLED launch, e.g. when a lock stopped the final refresh).

    Raises:
        ValueError: negative times, or unsafe queries (checked before any write).
    """
    for label, v in (
        ("--time", expiration_secs),
        ("--max_runtime", max_runtime),
        ("--min_runtime", min_runtime),
    ):
        if v is not None and v < 0:
            raise ValueError(f"{label} must be >= 0 seconds")
    if query is not None:
        check_query(query)
    if launch_query is not None:
        check_query(launch_query)
    cutoff = (datetime.now(timezone.utc) - timedelta(seconds=expiration_secs)).isoformat()
    lq: dict[str, Any] = dict(launch_query or {})
    lq["state"] = st.RUNNING
    lq["state_history"] = {"$elemMatch": {"state": st.RUNNING, "updated_on": {"$lte": cutoff}}}
    query_ids: list[int] | None = None
    if query:
        query_ids = [d["fw_id"] for d in lp.fireworks.find(dict(query), {"fw_id": 1})]
        lq["fw_id"] = {"$in": query_ids}
    lost_launches: list[int] = []
    candidates: list[int] = []
    for d in lp.launches.find(lq, {"launch_id": 1, "fw_id": 1, "state_history": 1}):
        if max_runtime is not None or min_runtime is not None:
            entry: dict[str, Any] = next(
                (h for h in d["state_history"] if h["state"] == st.RUNNING), {}
            )
            c, u = to_utc(entry.get("created_on")), to_utc(entry.get("updated_on"))
            if c is None or u is None:
                continue
            secs = (u - c).total_seconds()
            if max_runtime is not None and secs > max_runtime:
                continue
            if min_runtime is not None and secs < min_runtime:
                continue
        lost_launches.append(d["launch_id"])
        candidates.append(d["fw_id"])
    fws = {
        d["fw_id"]: d
        for d in lp.fireworks.find(
            {"fw_id": {"$in": sorted(set(candidates))}}, {"fw_id": 1, "state": 1, "launches": 1}
        )
    }
    lost_set = set(lost_launches)
    others = {
        lid
        for d in fws.values()
        if d["state"] == st.RUNNING
        for lid in d.get("launches", [])
        if lid not in lost_set
    }
    lstates = {
        d["launch_id"]: d["state"]
        for d in lp.launches.find(
            {"launch_id": {"$in": sorted(others)}}, {"launch_id": 1, "state": 1}
        )
    }
    lost_fws = [
        fid
        for fid in dict.fromkeys(candidates)
        if fws.get(fid, {}).get("state") == st.RUNNING
        and all(
            st.STATE_RANKS.get(lstates.get(lid, ""), 0) <= st.STATE_RANKS[st.FIZZLED]
            for lid in fws[fid].get("launches", [])
            if lid not in lost_set
        )
    ]
    running_q: dict[str, Any] = {"state": st.RUNNING}
    if query_ids is not None:
        running_q["fw_id"] = {"$in": query_ids}
    running = [d["fw_id"] for d in lp.fireworks.find(running_q, {"fw_id": 1})]
    inconsistent = sorted(
        set(
            lp.launches.distinct(
                "fw_id",
                {"fw_id": {"$in": running}, "state": {"$in": [st.COMPLETED, st.FIZZLED]}},
            )
        )
        if running
        else set()
    )
    out = LostRuns(lost_launches, lost_fws, inconsistent)
    if fizzle or rerun:
        for lid in lost_launches:
            lp.complete_launch(lid, None, st.FIZZLED)
            lp.offline_runs.update_many(
                {"launch_id": lid, "deprecated": False}, {"$set": {"deprecated": True}}
            )
        out.fizzled = True
        if rerun and lost_fws:
            plan = plan_rerun(lp, lost_fws)
            out.rerun = apply_rerun(lp, plan).rerun_ids
    if refresh and inconsistent:
        lp.refresh_fws(inconsistent)
        out.refreshed = True
    # A claim without a launch never had a heartbeat: lost once older than the expiration
    # (at most CLAIM_GRACE_SECS, since a live checkout inserts its launch within milliseconds).
    out.orphan_claims = orphan_claims(lp, min(expiration_secs, CLAIM_GRACE_SECS))
    if query_ids is not None:
        keep = set(query_ids)
        out.orphan_claims = [i for i in out.orphan_claims if i in keep]
    if out.orphan_claims and (fizzle or rerun or refresh):
        fix_workflows(lp, {}, out.orphan_claims)
        out.claims_reset = True
    return out
