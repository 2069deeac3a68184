"""Selector queries: fw_ids and workflow ids matching a MongoDB query, safely and sorted.

``get_fw_ids``/``get_wf_ids`` are FireWorks' LaunchPad methods of the same names; the
LaunchPad delegates here. Every query is checked first (no server-side JavaScript).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pymongo

from prefect_fireworks.core.constants import FORBIDDEN_OPERATORS
from prefect_fireworks.core.times import to_utc
from prefect_fireworks.store.idranges import id_queries

if TYPE_CHECKING:
    from pymongo.collection import Collection


class QueryError(ValueError):
    """A selector query is malformed or unsafe."""


def check_query(query: Any, _path: str = "query") -> None:
    """Refuse queries that are not documents or that run JavaScript on the server.

    Raises:
        QueryError: naming the offending operator.
    """
    if not isinstance(query, Mapping):
        raise QueryError(f"{_path} must be a JSON object, not {type(query).__name__}")
    stack: list[Any] = [query]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Mapping):
            for k, v in cur.items():
                if k in FORBIDDEN_OPERATORS:
                    raise QueryError(f"operator {k} is not allowed (it runs JavaScript)")
                stack.append(v)
        elif isinstance(cur, (list, tuple)):
            stack.extend(cur)


def wf_id_of(nodes: Any) -> int:
    """A workflow's id: its lowest fw_id (``-1`` for a workflow without nodes)."""
    return min(int(n) for n in nodes) if nodes else -1


def fw_ids(
    fireworks: Collection,
    launches: Collection,
    query: Mapping[str, Any] | None = None,
    sort: Sequence[tuple[str, int]] | None = None,
    limit: int = 0,
    count_only: bool = False,
    launches_mode: bool = False,
) -> list[int] | int:
    """fw_ids matching a query on ``fireworks`` (or on ``launches`` with launches_mode).

    With ``launches_mode`` the query runs on the launches collection and only active
    launches (listed in some Firework's ``launches``) count; the matching launch ids are
    mapped back through the ``launches`` index, never by scanning every Firework.
    """
    query = dict(query or {})
    check_query(query)
    if launches_mode:
        ids = _fw_ids_from_launches(fireworks, launches, query)
        if sort and ids:
            id_filter = {"$or": id_queries("fw_id", ids)}
            ranked = _sorted(fireworks, id_filter, sort, 0, "fw_id")
            order = {d["fw_id"]: i for i, d in enumerate(ranked)}
            ids.sort(key=lambda i: order.get(i, 0))
        if limit:
            ids = ids[:limit]
        return len(ids) if count_only else ids
    if count_only and not limit:
        return fireworks.count_documents(query)
    docs = _sorted(fireworks, query, sort, limit, "fw_id")
    ids = [d["fw_id"] for d in docs]
    return len(ids) if count_only else ids


def _fw_ids_from_launches(
    fireworks: Collection, launches: Collection, query: Mapping[str, Any]
) -> list[int]:
    pairs = [
        (d["launch_id"], d.get("fw_id"))
        for d in launches.find(query, {"launch_id": 1, "fw_id": 1, "_id": 0})
    ]
    if not pairs:
        return []
    launch_ids = [p[0] for p in pairs]
    active: dict[int, list[int]] = {}
    for doc in fireworks.find(
        {"launches": {"$in": launch_ids}}, {"fw_id": 1, "launches": 1, "_id": 0}
    ):
        for lid in doc["launches"]:
            active.setdefault(lid, []).append(doc["fw_id"])
    out: list[int] = []
    for lid in launch_ids:
        for fid in active.get(lid, []):
            if fid not in out:
                out.append(fid)
    return out


def wf_ids(
    workflows: Collection,
    query: Mapping[str, Any] | None = None,
    sort: Sequence[tuple[str, int]] | None = None,
    limit: int = 0,
    count_only: bool = False,
) -> list[int] | int:
    """Workflows matching a query on ``workflows``, each named by its lowest fw_id."""
    query = dict(query or {})
    check_query(query)
    if count_only and not limit:
        return workflows.count_documents(query)
    docs = _sorted(workflows, query, sort, limit, "nodes")
    ids = [wf_id_of(d.get("nodes")) for d in docs]
    return len(ids) if count_only else ids


def _sorted(
    coll: Collection,
    query: Mapping[str, Any],
    sort: Sequence[tuple[str, int]] | None,
    limit: int,
    field: str,
) -> list[dict[str, Any]]:
    if not sort:
        cur = coll.find(query, {field: 1, "_id": 0})
        if limit:
            cur = cur.limit(limit)
        try:
            return list(cur)
        except pymongo.errors.OperationFailure as exc:
            raise QueryError(f"invalid query: {_errmsg(exc)}") from exc
    # created_on/updated_on hold ISO strings or BSON dates (FireWorks writes both):
    # sort on a normalised key, as FireWorks does.
    proj = {field: 1, "_id": 0, **{k: 1 for k, _ in sort}}
    try:
        docs = list(coll.find(query, proj))
    except pymongo.errors.OperationFailure as exc:
        raise QueryError(f"invalid query: {_errmsg(exc)}") from exc
    for key, direction in reversed(list(sort)):
        docs.sort(key=functools.partial(_doc_sort_key, key), reverse=direction < 0)
    return docs[:limit] if limit else docs


def _errmsg(exc: pymongo.errors.OperationFailure) -> str:
    return str((exc.details or {}).get("errmsg", exc))


def _doc_sort_key(key: str, doc: Mapping[str, Any]) -> tuple[int, Any]:
    return _sort_key(doc.get(key))


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    d = to_utc(v)
    if d is not None:
        return (1, d.timestamp())
    return (2, v if isinstance(v, str) else str(v))


def run_exists(fireworks: Collection, checkout_query: Mapping[str, Any]) -> bool:
    """Something READY that a worker with this checkout query may run."""
    return fireworks.count_documents({"state": "READY", **checkout_query}, limit=1) > 0


def future_run_exists(
    fireworks: Collection, checkout_query: Mapping[str, Any], worker_query: Mapping[str, Any]
) -> bool:
    """FireWorks' ``future_run_exists``: something READY, or something RESERVED/RUNNING whose
    children may become READY (a rapidfire keeps waiting then). Used by ``rlaunch
    --no-prefect`` (which must not import Prefect) and by the rapidfire flow."""
    if run_exists(fireworks, checkout_query):
        return True
    q = {**worker_query, "state": {"$in": ["RESERVED", "RUNNING"]}}
    return fireworks.count_documents(q, limit=1) > 0
