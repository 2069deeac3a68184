"""Plan tokens: pin a rerun plan to the state of the Fireworks it covers.

``lpad rerun_fws ... --plan-out plan.json`` writes the plan with a token; ``lpad rerun_fws
--apply plan.json`` (and an approved ``rerun-fws`` run in the Prefect UI) applies it only if the
token still matches. The token is a SHA-256 over the plan's targets and options and, for every
Firework the plan covers (targets, duplicates, descendants, targets it skips), its id, state,
active launch ids and archived launch ids. So anything that could change what the plan does —
a Firework run, rerun, defused or paused meanwhile, a launch added or archived — changes the
token, and :func:`check_unchanged` refuses with what changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect_fireworks.store.idranges import find_by_ids

if TYPE_CHECKING:
    from prefect_fireworks.ops.rerun_plan import RerunPlan
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "PLAN_FORMAT",
    "PinnedPlan",
    "PlanChangedError",
    "check_unchanged",
    "covered_ids",
    "describe_changes",
    "fingerprints",
    "pin_plan",
    "plan_document",
    "plan_token",
    "read_plan_file",
]

PLAN_FORMAT = "prefect-fireworks/rerun-plan/1"
"""The ``format`` field of a plan file."""


class PlanChangedError(ValueError):
    """The Fireworks a plan covers changed since it was made: it is not applied."""


Fingerprint = dict[str, Any]


def fingerprints(lp: LaunchPad, fw_ids: Iterable[int]) -> dict[int, Fingerprint]:
    """Id, state and launches of each Firework, as the token hashes them (one query).

    Fireworks that do not exist (deleted since) are absent from the result.
    """
    ids = sorted({int(i) for i in fw_ids})
    out: dict[int, Fingerprint] = {}
    if not ids:
        return out
    # Ranges of consecutive ids, not $in: $in over n ids costs O(n^2) on the embedded server
    # (1,002 ids: ~10 s on a busy 2-core machine, against ~0.3 s as ranges).
    for d in find_by_ids(
        lp.fireworks,
        "fw_id",
        ids,
        {"_id": 0, "fw_id": 1, "state": 1, "launches": 1, "archived_launches": 1},
    ):
        out[int(d["fw_id"])] = {
            "state": d.get("state"),
            "launches": [int(i) for i in d.get("launches") or []],
            "archived_launches": sorted(int(i) for i in d.get("archived_launches") or []),
        }
    return out


def plan_token(
    targets: Iterable[int],
    options: Mapping[str, Any],
    prints: Mapping[int, Fingerprint],
) -> str:
    """The token of a plan: ``sha256:`` and 64 hex digits.

    Args:
        targets: the plan's targets, in order (order matters to a rerun).
        options: the rerun options (``RerunOptions`` as a dict).
        prints: :func:`fingerprints` of every Firework the plan covers.
    """
    canon = {
        "targets": [int(i) for i in targets],
        "options": {k: options[k] for k in sorted(options)},
        "fireworks": [[int(k), prints[k]] for k in sorted(prints, key=int)],
    }
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def describe_changes(
    before: Mapping[int, Mapping[str, Any]], now: Mapping[int, Mapping[str, Any]], limit: int = 5
) -> list[str]:
    """What changed between two sets of fingerprints, one phrase per Firework."""
    out: list[str] = []
    for fw_id in sorted(set(before) | set(now), key=int):
        a, b = before.get(fw_id), now.get(fw_id)
        if a == b:
            continue
        if b is None:
            out.append(f"Firework {fw_id} no longer exists")
        elif a is None:
            out.append(f"Firework {fw_id} is now covered by the plan ({b['state']})")
        elif a["state"] != b["state"]:
            out.append(f"Firework {fw_id} is {b['state']}, was {a['state']}")
        elif a["launches"] != b["launches"]:
            out.append(f"Firework {fw_id} launches are {b['launches']}, were {a['launches']}")
        else:
            out.append(f"Firework {fw_id} archived launches changed")
    if len(out) > limit:
        out = [*out[:limit], f"and {len(out) - limit} more"]
    return out


def check_unchanged(
    token: str,
    targets: Iterable[int],
    options: Mapping[str, Any],
    before: Mapping[int, Fingerprint],
    now: Mapping[int, Fingerprint],
) -> None:
    """Refuse when ``now`` does not give ``token``.

    Args:
        token: the token the plan was made (or approved) with.
        targets: the plan's targets.
        options: the plan's options.
        before: the fingerprints stored with the plan (to say what changed).
        now: the fingerprints read now, of what the plan covers now.

    Raises:
        PlanChangedError: with the changes, e.g. "Firework 7 is COMPLETED, was FIZZLED".
    """
    if plan_token(targets, options, now) == token:
        return
    if plan_token(targets, options, before) != token:
        raise PlanChangedError("the plan's token does not match its content (edited by hand?)")
    changes = describe_changes(before, now) or ["the plan's targets or options differ"]
    raise PlanChangedError(
        "refused: the Fireworks this plan covers changed since it was made: "
        + "; ".join(changes)
        + ". Nothing was written; make a new plan."
    )


def covered_ids(plan: RerunPlan) -> list[int]:
    """Every Firework a plan covers: targets, duplicates, descendants, skipped targets."""
    ids = {int(i) for i in plan.targets}
    ids.update(e.fw_id for e in plan.entries)
    ids.update(s.fw_id for s in plan.skipped)
    return sorted(ids)


def pin_plan(
    lp: LaunchPad, plan: RerunPlan, options: Mapping[str, Any]
) -> tuple[str, dict[int, Fingerprint]]:
    """The plan's token and the fingerprints it hashes (read now, right after planning)."""
    prints = fingerprints(lp, covered_ids(plan))
    return plan_token(plan.targets, options, prints), prints


# -- plan files ----------------------------------------------------------------------------------
@dataclass
class PinnedPlan:
    """A plan as written by ``--plan-out`` (or approved in the UI): apply only this.

    Attributes:
        token: the plan's token.
        targets: the Fireworks to rerun, in order.
        options: the rerun options (``RerunOptions`` as a dict).
        fireworks: the fingerprints the token hashes, by fw_id.
    """

    token: str
    targets: list[int]
    options: dict[str, Any]
    fireworks: dict[int, Fingerprint] = field(default_factory=dict)


def plan_document(
    pinned: PinnedPlan, plan: Mapping[str, Any], made_by: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON document of a plan file."""
    return {
        "format": PLAN_FORMAT,
        "token": pinned.token,
        "made_by": dict(made_by),
        "targets": pinned.targets,
        "options": pinned.options,
        "fireworks": {str(k): v for k, v in sorted(pinned.fireworks.items())},
        "plan": dict(plan),
    }


def read_plan_file(path: str | Path) -> PinnedPlan:
    """Read and check a plan file written by ``--plan-out``.

    Raises:
        ValueError: unreadable, not JSON, or not a plan file (one line saying which).
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read plan file {p}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"plan file {p} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        raise ValueError(f"{p} is not a rerun plan file (format {PLAN_FORMAT!r})")
    try:
        token = doc["token"]
        targets = [int(i) for i in doc["targets"]]
        options = dict(doc["options"])
        prints = {
            int(k): {
                "state": v["state"],
                "launches": [int(i) for i in v["launches"]],
                "archived_launches": [int(i) for i in v["archived_launches"]],
            }
            for k, v in dict(doc["fireworks"]).items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"plan file {p} is damaged: {type(exc).__name__} {exc}") from None
    if not isinstance(token, str) or not token.startswith("sha256:"):
        raise ValueError(f"plan file {p} has no valid token")
    return PinnedPlan(token=token, targets=targets, options=options, fireworks=prints)
