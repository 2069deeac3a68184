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
        """FireWorks' ``FWorker.query``: the worker's query plus ``_fworker``/``_category``.

        FireWorks writes the ``_fworker`` check as an ``$or`` of three clauses; here it is one
        ``$in`` (``None`` in ``$in`` matches a missing field too), the same documents. The
        query stays flat (no ``$or``/``$and`` added): the embedded server evaluates a filter
        with either by scanning the collection, ~340 ms per claim on 20,000 Fireworks instead
        of ~7 ms (``docs/performance.md``).
        """
        q = dict(self.query)
        checks: dict[str, Any] = {"spec._fworker": {"$in": [None, self.name]}}
        if self.category and isinstance(self.category, str):
            if self.category == "__none__":
                checks["spec._category"] = {"$exists": False}
            else:
                checks["spec._category"] = self.category
        elif self.category:
            checks["spec._category"] = {"$in": list(self.category)}
        return merge_flat(q, checks)

    def to_launch_dict(self) -> dict[str, Any]:
        """The launch document's ``fworker`` field (``query`` as a JSON string)."""
        return {
            "name": self.name,
            "category": self.category,
            "query": json.dumps(self.query),
            "env": self.env,
        }


def merge_flat(query: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``query`` AND ``extra``: their keys side by side where they do not clash (a flat filter
    the server answers from an index), an ``$and`` only where they do."""
    out = dict(query)
    clash = [k for k in extra if k in out]
    for key, value in extra.items():
        if key not in clash:
            out[key] = value
    if clash:
        out["$and"] = [*out.get("$and", []), *({k: extra[k]} for k in clash)]
    return out


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
