"""Launch records: who runs Fireworks (`FWorker`) and the heartbeat of a running launch.

The checkout itself (claim, launch insert) is `prefect_fireworks.store.checkout`, the end of
a launch `prefect_fireworks.store.completion`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
