"""Checkout and launch records: FWorker queries, the atomic claim, heartbeats and completion.

``checkout_fw`` claims one READY Firework with a conditional write and creates its launch;
``complete_launch`` records the end of a launch and refreshes the Fireworks that list it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import isoformat

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB


class FWorker(BaseModel):
    """Who runs Fireworks: name, category and an extra query (FireWorks' ``FWorker``)."""

    name: str = "Automatically generated Worker"
    category: str | list[str] = ""
    query: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)

    def checkout_query(self) -> dict[str, Any]:
        """FireWorks' ``FWorker.query``: the worker's query plus ``_fworker``/``_category``."""
        q = dict(self.query)
        fworker_check = [
            {"spec._fworker": {"$exists": False}},
            {"spec._fworker": None},
            {"spec._fworker": self.name},
        ]
        if "$or" in q:
            q["$and"] = [*q.get("$and", []), {"$or": q.pop("$or")}, {"$or": fworker_check}]
        else:
            q["$or"] = fworker_check
        if self.category and isinstance(self.category, str):
            if self.category == "__none__":
                q["spec._category"] = {"$exists": False}
            else:
                q["spec._category"] = self.category
        elif self.category:
            q["spec._category"] = {"$in": list(self.category)}
        return q

    def to_launch_dict(self) -> dict[str, Any]:
        """The launch document's ``fworker`` field (``query`` as a JSON string)."""
        return {
            "name": self.name,
            "category": self.category,
            "query": json.dumps(self.query),
            "env": self.env,
        }


def checkout_fw(
    lp: FireworksDB,
    fworker: FWorker,
    launch_dir: str,
    fw_id: int | None = None,
    *,
    state: str = st.RUNNING,
    host: str | None = None,
    ip: str | None = None,
    launch_extra: Mapping[str, Any] | None = None,
    dir_for: Callable[[dict[str, Any]], Any] | None = None,
    only_ready: bool = False,
) -> tuple[dict[str, Any] | None, int | None]:
    """Claim one READY Firework atomically and create its launch (see ``LaunchPad.checkout_fw``;
    the commands it sends are described in `prefect_fireworks.store.launch_cycle`)."""
    from prefect_fireworks.store import launch_cycle

    got = launch_cycle.checkout_launch(
        lp,
        fworker,
        launch_dir,
        fw_id,
        state=state,
        host=host,
        ip=ip,
        extra=launch_extra,
        dir_for=dir_for,
        only_ready=only_ready,
    )
    if got is None:
        return None, None
    fw, launch = got
    return fw, int(launch["launch_id"])


def _fizzle_undeserialisable(lp: FireworksDB, fw: Mapping[str, Any], exc: BaseException) -> None:
    import traceback

    details = {
        "_message": "FireWork failed to deserialize",
        "_stacktrace": "".join(traceback.format_exception(exc)),
    }
    with lp.edit_workflow(fw["fw_id"]) as ed:
        doc = ed.fw(fw["fw_id"])
        doc["spec"]["_exception_details"] = details
        ed.mark(fw["fw_id"], "spec")
        ed.set_state(fw["fw_id"], st.FIZZLED)
        ed.refresh(ed.children(fw["fw_id"]))


def _steal_launches(lp: FireworksDB, fw: Mapping[str, Any]) -> bool:
    """FireWorks' duplicate check: reuse the launches of an identical Firework."""
    finder = fw["spec"].get("_dupefinder") or {}
    if finder.get("_fw_name", "DupeFinderExact") != "DupeFinderExact":
        return False
    victim = lp.fireworks.find_one(
        {
            "fw_id": {"$ne": fw["fw_id"]},
            "state": {"$in": [st.RUNNING, st.COMPLETED]},
            "launches": {"$ne": []},
            "spec": fw["spec"],
        },
        {"fw_id": 1, "launches": 1, "_id": 0},
    )
    if victim is None:
        return False
    stolen = [lid for lid in victim["launches"] if lid not in fw.get("launches", [])]
    lp.fireworks.update_one(
        {"fw_id": fw["fw_id"]},
        {"$push": {"launches": {"$each": stolen}}, "$set": {"state": st.RESERVED}},
    )
    with lp.edit_workflow(fw["fw_id"]) as ed:
        ed.refresh([fw["fw_id"]])
    return True


def ping_launch(lp: FireworksDB, launch_id: int, checkpoint: Mapping[str, Any] | None) -> bool:
    """Stamp the RUNNING state-history entry of a RUNNING launch; False when not RUNNING."""
    # While a launch is RUNNING its last history entry is its (only) RUNNING entry, so the
    # positional operator stamps it in one round trip.
    sets: dict[str, Any] = {"state_history.$.updated_on": isoformat()}
    if checkpoint is not None:
        sets["state_history.$.checkpoint"] = dict(checkpoint)
    res = lp.launches.update_one(
        {"launch_id": launch_id, "state": st.RUNNING, "state_history.state": st.RUNNING},
        {"$set": sets},
    )
    return res.matched_count == 1


def complete_launch(
    lp: FireworksDB,
    launch_id: int,
    action: Mapping[str, Any] | None,
    state: str = st.COMPLETED,
    extra: Mapping[str, Any] | None = None,
) -> list[int]:
    """Record a launch's end and refresh every Firework that still lists it (see
    ``LaunchPad.complete_launch``)."""
    from prefect_fireworks.store import launch_cycle

    return list(launch_cycle.finish_launch(lp, launch_id, action, state, extra))
