"""The operations' workflow editor: a WorkflowEditor that remembers what it changed.

Every state operation (rerun, defuse, pause, ...) runs twice on a workflow: once on an unlocked
read to plan (nothing written), once under the workflow lock to apply. The editor records each
Firework's state and launches before the first change, so both runs report the same changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.store.idranges import id_queries
from prefect_fireworks.store.intents import Write
from prefect_fireworks.store.workflow_editor import WorkflowEditor

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: Progress callback: called with the number of Fireworks (or workflows) just written.
Progress = Callable[[int], None]

#: Fields a reset changes; Fireworks changed in nothing else are written in groups.
_RESET_FIELDS = frozenset({"state", "updated_on", "launches", "archived_launches"})


@dataclass
class SkippedTarget:
    """A target left as it is, and why (FireWorks' state gate)."""

    fw_id: int
    state: str
    reason: str
    recovery: str | None = None


class TrackingEditor(WorkflowEditor):
    """A WorkflowEditor that records, for each Firework reset, its state and launches before."""

    def __init__(self, lp: LaunchPad, wf_doc: Mapping[str, Any]) -> None:
        super().__init__(lp, wf_doc)
        self.before: dict[int, tuple[str, list[int]]] = {}
        self.archived: dict[int, list[int]] = {}
        #: state of each Firework before its first change here.
        self.first_state: dict[int, str] = {}
        #: spec of each Firework before a rerun first changed it (the undo record's source).
        self.spec_before: dict[int, dict[str, Any]] = {}
        #: top-level rerun target -> the fw_ids its rerun reset (itself first).
        self.groups: dict[int, list[int]] = {}

    def snapshot_spec(self, fw_id: int) -> None:
        """Remember a Firework's spec before a rerun changes it (first call wins)."""
        if fw_id not in self.spec_before:
            self.spec_before[fw_id] = copy.deepcopy(self.fw(fw_id)["spec"])

    def set_state(self, fw_id: int, state: str) -> None:
        self.first_state.setdefault(fw_id, self.fw(fw_id)["state"])
        super().set_state(fw_id, state)

    def _reset_one(self, fw_id: int, except_details: bool) -> None:
        fw = self.fw(fw_id)
        self.snapshot_spec(fw_id)
        self.before.setdefault(fw_id, (fw["state"], list(fw["launches"])))
        moved = self.archived.setdefault(fw_id, [])
        moved.extend(i for i in fw["launches"] if i not in moved)
        super()._reset_one(fw_id, except_details)

    def commit_grouped(self, history: Mapping[int, Mapping[str, Any]] | None = None) -> str:
        """Commit, writing Fireworks that only a reset changed with one ``update_many`` per
        final state (a pipeline update moving ``launches`` into ``archived_launches``).

        Args:
            history: a ``rerun_history`` entry (with its ``rerun_id``) to append to each of
                these Fireworks. A Firework that only a reset changed gets it in the same
                pipeline update as its reset (one write, not two); the others get a ``$push``.
                Either is guarded by the ``rerun_id``, so replaying the intent is harmless.
        """
        history = dict(history or {})
        for fid, entry in history.items():
            if not (
                fid in self.archived and fid in self._dirty and self._dirty[fid] <= _RESET_FIELDS
            ):
                self.pre_writes.append(
                    Write(
                        "fireworks",
                        "update_one",
                        {"fw_id": fid, "rerun_history.rerun_id": {"$ne": entry["rerun_id"]}},
                        {"$push": {"rerun_history": dict(entry)}},
                    )
                )
        groups: dict[tuple[str, bool], list[int]] = {}
        for fid, fields in list(self._dirty.items()):
            if fid in self.archived and fields <= _RESET_FIELDS:
                moved = "launches" in fields
                groups.setdefault((self.fws[fid]["state"], moved), []).append(fid)
                del self._dirty[fid]
        for (state, moved), ids in groups.items():
            sets: dict[str, Any] = {"state": state, "updated_on": self.now}
            if moved:
                sets["archived_launches"] = {
                    "$setUnion": [
                        {"$ifNull": ["$archived_launches", []]},
                        {"$ifNull": ["$launches", []]},
                    ]
                }
                sets["launches"] = {"$literal": []}
            for fid in [i for i in ids if i in history]:
                entry = history[fid]
                pushed = {
                    "$concatArrays": [
                        {"$ifNull": ["$rerun_history", []]},
                        [{"$literal": dict(entry)}],
                    ]
                }
                self.pre_writes.append(
                    Write(
                        "fireworks",
                        "update_one",
                        {"fw_id": fid, "rerun_history.rerun_id": {"$ne": entry["rerun_id"]}},
                        [{"$set": {**sets, "rerun_history": pushed}}],
                    )
                )
            rest = [i for i in ids if i not in history]
            for q in id_queries("fw_id", rest) if rest else []:
                self.pre_writes.append(Write("fireworks", "update_many", q, [{"$set": sets}]))
        # one intent for the whole change: a kill at any point is rolled forward
        self.journal = True
        return self.commit()

    def preload(self, fw_ids: Iterable[int], except_details: bool) -> None:
        """Load, in one query, every Firework a rerun of ``fw_ids`` can touch.

        Uses the cached ``fw_states`` to follow non-WAITING children (what the rerun visits)
        plus their direct children (whose state it checks).
        """
        want: set[int] = set(fw_ids)
        stack = list(want)
        while stack:
            cur = stack.pop()
            for c in self.children(cur):
                if c in want:
                    continue
                want.add(c)
                if self.fw_states.get(c) != st.WAITING:
                    stack.append(c)
        self.load_fws(want)
        if except_details:
            last = [
                d["launches"][-1]
                for d in self.fws.values()
                if d["state"] == st.FIZZLED and d["launches"]
            ]
            self.load_launches(last)
