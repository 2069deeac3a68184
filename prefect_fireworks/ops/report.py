"""``lpad report`` and ``lpad introspect``: counts by state over time, and what failures share.

`report` counts the Fireworks, workflows or launches updated in each of the last N minutes,
hours, days, months or years, by state, with FireWorks' ``C/(C+F)`` score, and `report_text`
prints it exactly as FireWorks' ``lpad report`` does. Documents are bucketed in Python (the
date key is the first characters of the ISO time, as FireWorks' aggregation takes them), so the
embedded server needs no aggregation support.

`introspect` compares the specs, Firetask names and workflow metadata of FIZZLED documents with
those of COMPLETED ones (FireWorks' ``Introspector``): a ``key:value`` seen in a much larger
share of failures than of successes is a suspect. For launches it groups the stack traces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import STACKTRACE_KEY

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "INTERVALS",
    "IntrospectRow",
    "PeriodStats",
    "active_launch_ids",
    "introspect",
    "introspect_text",
    "report",
    "report_text",
]

#: Interval name -> length of the ISO date prefix that names a period (FireWorks' DATE_KEYS).
INTERVALS = {"years": 4, "months": 7, "days": 10, "hours": 13, "minutes": 16}
_COLLECTIONS = {
    "fws": "fireworks",
    "fireworks": "fireworks",
    "wflows": "workflows",
    "workflows": "workflows",
    "launches": "launches",
}
_SEP = ":%%:"
_TRUNCATED = "<TRUNCATED_OBJECT>"


@dataclass
class PeriodStats:
    """Counts of one period (``date_key`` such as ``2026-11-26``) by state."""

    date_key: str
    states: dict[str, int]

    @property
    def count(self) -> int:
        """All documents of the period."""
        return sum(self.states.values())

    @property
    def completed_score(self) -> float:
        """``C/(C+F)`` in percent, rounded as FireWorks rounds it."""
        c, f = self.states[st.COMPLETED], self.states[st.FIZZLED]
        return 0 if c == 0 else round(c / (c + f), 3) * 100

    def to_dict(self) -> dict[str, Any]:
        """FireWorks' ``FWReport.get_stats`` item."""
        return {
            "date_key": self.date_key,
            "states": self.states,
            "count": self.count,
            "completed_score": self.completed_score,
        }


def collection_name(collection: str) -> str:
    """``fws``/``wflows``/``launches`` (FireWorks' names) to the MongoDB collection.

    Raises:
        ValueError: an unknown collection.
    """
    try:
        return _COLLECTIONS[collection.lower()]
    except KeyError:
        raise ValueError(
            f"unknown collection {collection!r}: choose fws, wflows or launches"
        ) from None


def _shift(now: datetime, interval: str, n: int) -> datetime:
    if interval in ("minutes", "hours", "days"):
        return now - timedelta(**{interval: n})
    months = n * (12 if interval == "years" else 1)
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, _days_in_month(year, month + 1))
    return now.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else None


def report(
    lp: LaunchPad,
    collection: str = "fws",
    interval: str = "days",
    num_intervals: int = 5,
    query: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> list[PeriodStats]:
    """Counts by state per period, newest first (FireWorks' ``FWReport.get_stats``).

    Args:
        lp: the LaunchPad.
        collection: ``fws`` (default), ``wflows`` or ``launches``.
        interval: ``minutes``, ``hours``, ``days``, ``months`` or ``years``.
        num_intervals: how many intervals back from now (0: all time).
        query: an extra MongoDB filter.
        now: the present (tests).

    Raises:
        ValueError: an unknown collection or interval, or a negative ``num_intervals``.
    """
    coll = collection_name(collection)
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}: choose from {', '.join(INTERVALS)}")
    if num_intervals < 0:
        raise ValueError("--num_intervals must be 0 or positive")
    time_field = "time_end" if coll == "launches" else "updated_on"
    start = None
    if num_intervals:
        start = _shift(now or datetime.now(timezone.utc), interval, num_intervals)
    counts: dict[str, Counter[str]] = {}
    for doc in lp.db[coll].find(dict(query or {}), {"state": 1, time_field: 1, "_id": 0}):
        value = doc.get(time_field)
        if start is not None and not _after(value, start):
            continue
        key = (_iso(value) or "")[: INTERVALS[interval]]
        counts.setdefault(key, Counter())[doc.get("state")] += 1
    return [
        PeriodStats(key, {s: counts[key].get(s, 0) for s in _ranked_states()})
        for key in sorted(counts, reverse=True)
    ]


def _ranked_states() -> list[str]:
    return sorted(st.STATE_RANKS, key=st.STATE_RANKS.__getitem__)


def _after(value: Any, start: datetime) -> bool:
    # As FireWorks' query: ISO strings compare as strings, dates as (UTC) dates.
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware >= start
    return isinstance(value, str) and value >= start.isoformat()


def report_text(stats: list[PeriodStats], collection: str = "fws") -> str:
    """The report as FireWorks' ``lpad report`` prints it."""
    title = f"Stats on {collection}"
    lines = ["-" * len(title), title, "-" * len(title)]
    if not stats:
        body = "There are no stats to display for the chosen time period."
    else:
        body = ""
        for period in stats:
            header = f"Stats for time-period {period.date_key}\n"
            body += header + "=" * len(header) + "\n"
            for state, n in period.states.items():
                body += f"{state} : {n}\n"
            body += f"\ntotal : {period.count}\n"
            body += f"C/(C+F) : {period.completed_score:.1f}%\n\n"
    return "\n".join(lines) + "\n" + body


# -- introspect ---------------------------------------------------------------------------------
@dataclass
class IntrospectRow:
    """A ``key:value`` seen in different shares of COMPLETED and FIZZLED documents."""

    key: str
    value: str
    completed: int
    fizzled: int
    difference: float  # % of COMPLETED documents with it minus % of FIZZLED ones

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "value": self.value,
            "completed": self.completed,
            "fizzled": self.fizzled,
            "completed_minus_fizzled_pct": self.difference,
        }


def _flatten(doc: Any, depth: int = 1, max_depth: int = 2) -> list[str]:
    """``key.sub:%%:value`` strings of a spec, two levels deep (FireWorks' flatten_to_keys)."""
    if isinstance(doc, Mapping):
        if depth > max_depth:
            return [_SEP + _TRUNCATED]
        out = []
        for k, v in doc.items():
            for tail in _flatten(v, depth + 1, max_depth):
                out.append(("" if depth == 1 else ".") + str(k) + tail)
        return out
    if isinstance(doc, (list, tuple)):
        out = []
        for item in doc:
            if isinstance(item, (Mapping, list, tuple)):
                return [_SEP + _TRUNCATED]
            out.append(_SEP + str(item))
        return out
    return [_SEP + str(doc)]


def active_launch_ids(lp: LaunchPad) -> list[int]:
    """Launch ids that Fireworks list in ``launches`` (not archived)."""
    ids: set[int] = set()
    for fw in lp.fireworks.find({}, {"launches": 1, "_id": 0}):
        ids.update(fw.get("launches") or [])
    return sorted(ids)


def _keys(doc: Mapping[str, Any], what: str) -> list[str]:
    if what == "tasks":
        return [f"_fw_name{_SEP}{t.get('_fw_name')}" for t in doc["spec"].get("_tasks", [])]
    if what == "launches":
        exc = (doc.get("action") or {}).get("stored_data", {}).get("_exception", {})
        return [f"_stacktrace{_SEP}{exc.get('_stacktrace', '<NO_STACKTRACE>')}"]
    field = "spec" if what == "fws" else "metadata"
    return _flatten(doc.get(field) or {})


def introspect(
    lp: LaunchPad, what: str = "fws", limit: int = 100, threshold: float = 10
) -> list[IntrospectRow]:
    """What FIZZLED documents share that COMPLETED ones do not (FireWorks' ``Introspector``).

    Args:
        lp: the LaunchPad.
        what: ``fws`` (spec keys), ``tasks`` (Firetask names), ``wflows`` (workflow metadata)
            or ``launches`` (stack traces of active FIZZLED launches).
        limit: the latest this many FIZZLED (and COMPLETED) documents are compared.
        threshold: keep keys whose shares differ by at least this many percentage points.

    Returns:
        Rows sorted from "mostly in successes" to "mostly in failures" (the last rows are the
        suspects).

    Raises:
        ValueError: an unknown ``what``, or a negative limit or threshold.
    """
    if what not in ("fws", "tasks", "wflows", "launches"):
        raise ValueError(f"unknown report {what!r}: choose fws, tasks, wflows or launches")
    if limit < 0 or threshold < 0:
        raise ValueError("--max and --threshold must be 0 or positive")
    coll = {"fws": "fireworks", "tasks": "fireworks", "wflows": "workflows"}.get(what, what)
    sort = [("time_end" if coll == "launches" else "updated_on", -1)]
    projection = {
        "fws": {"spec": 1},
        "tasks": {"spec._tasks": 1},
        "wflows": {"metadata": 1},
        "launches": {STACKTRACE_KEY: 1},
    }[what]

    def sample(state: str) -> tuple[Counter[str], int]:
        q: dict[str, Any] = {"state": state}
        if coll == "launches":
            q["launch_id"] = {"$in": active_launch_ids(lp)}
        counter: Counter[str] = Counter()
        n = 0
        for doc in lp.db[coll].find(q, projection, sort=sort, limit=limit):
            n += 1
            counter.update(k for k in _keys(doc, what) if _TRUNCATED not in k)
        return counter, n

    fizzled, n_f = sample(st.FIZZLED)
    completed, n_c = sample(st.COMPLETED) if coll != "launches" else (Counter(), 0)
    diff: dict[str, float] = {}
    for key in set(completed) | set(fizzled):
        d = 0.0
        if key in completed:
            d += completed[key] / n_c * 100
        if key in fizzled:
            d -= fizzled[key] / n_f * 100
        if abs(d) >= threshold:
            diff[key] = d
    rows = []
    for key in sorted(diff, key=diff.__getitem__, reverse=True):
        name, _, value = key.partition(_SEP)
        rows.append(
            IntrospectRow(name, value, completed.get(key, 0), fizzled.get(key, 0), diff[key])
        )
    return rows


_TITLES = {
    "fws": "fireworks.spec",
    "tasks": "fireworks.spec._tasks",
    "wflows": "workflows.metadata",
    "launches": "launches.actions.stored_data._exception._stacktrace",
}


def introspect_text(rows: list[IntrospectRow], what: str) -> str:
    """One report as FireWorks prints it: a title, then a table (or the stack traces)."""
    title = f"Introspection report for {_TITLES[what]}"
    lines = ["=" * len(title), title, "=" * len(title)]
    if what == "launches":
        for row in rows:
            lines += [
                f"----{row.fizzled} Failures have the following stack trace--------------",
                row.value,
                "",
            ]
        return "\n".join(lines)
    header = ["key", "value", "#C", "#F", "%C - %F"]
    table = [[r.key, r.value, str(r.completed), str(r.fizzled), f"{r.difference:g}"] for r in rows]
    widths = [max([len(h)] + [len(t[i]) for t in table]) for i, h in enumerate(header)]
    numeric = [False, False, True, True, True]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    lines += [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(t) for t in table]
    return "\n".join(lines)
