"""Database maintenance: FireWorks' today's-date password, ``reset``, indexes (``tuneup``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pymongo import ASCENDING, DESCENDING

from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION, PW_CHECK_NUM
from prefect_fireworks.store import ids

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB


def today_password() -> str:
    """FireWorks' password: today's date, ``YYYY-MM-DD``."""
    return date.today().strftime("%Y-%m-%d")


def check_password(password: str | None) -> None:
    """FireWorks' today's-date password for mass operations.

    Raises:
        ValueError: the password is not today's date.
    """
    if password != today_password():
        raise ValueError(
            f"Modifying more than {PW_CHECK_NUM} entries requires setting the --password "
            "parameter! (Today's date, e.g. 2012-02-25)"
        )


def reset(
    lp: FireworksDB,
    password: str | None,
    require_password: bool = True,
    max_reset_wo_password: int = 25,
) -> None:
    """Delete every Firework, launch and workflow and restart the id counters.

    Raises:
        ValueError: wrong password, or too many workflows to reset without one.
    """
    if require_password:
        if password != today_password():
            raise ValueError(f"Invalid password! Password is today's date: {today_password()}")
    elif lp.workflows.count_documents({}) > max_reset_wo_password:
        raise ValueError(
            f"Password check cannot be overridden since the size of DB ("
            f"{lp.workflows.count_documents({})} workflows) is greater than the "
            f"max_reset_wo_password parameter ({max_reset_wo_password})."
        )
    for coll in (lp.fireworks, lp.launches, lp.workflows, lp.offline_runs):
        coll.delete_many({})
    for suffix in ("files", "chunks"):
        lp.db[f"{GRIDFS_FALLBACK_COLLECTION}.{suffix}"].delete_many({})
    ids.reset_counter(lp.fw_id_assigner)
    tuneup(lp)


def ensure_initialized(lp: FireworksDB) -> None:
    """Create the id counter and indexes on a fresh database (never resets data)."""
    if ids.ensure_counter(lp.fw_id_assigner):
        tuneup(lp)


def tuneup(lp: FireworksDB) -> None:
    """Create FireWorks' indexes (same keys and options, so both tools can run ``tuneup`` on
    one database) plus the ``archived_launches`` index the rerun plan uses."""
    fw, lch, wf = lp.fireworks, lp.launches, lp.workflows
    fw.create_index("fw_id", unique=True, background=True)
    for key in ("state", "spec._category", "created_on", "updated_on", "name", "launches"):
        fw.create_index(key, background=True)
    lch.create_index("launch_id", unique=True, background=True)
    lch.create_index("fw_id", background=True)
    lch.create_index("state_history.reservation_id", background=True)
    lp.db[f"{GRIDFS_FALLBACK_COLLECTION}.files"].create_index(
        "metadata.launch_id", unique=True, background=True
    )
    for key in ("state", "time_start", "time_end", "host", "ip", "fworker.name"):
        lch.create_index(key, background=True)
    for key in ("name", "created_on", "updated_on", "nodes"):
        wf.create_index(key, background=True)
    user = lp.config.user_indices if lp.config is not None else None
    wf_user = lp.config.wf_user_indices if lp.config is not None else None
    for idx in user or []:
        fw.create_index(idx, background=True)
    for idx in wf_user or []:
        wf.create_index(idx, background=True)
    fw.create_index([("state", DESCENDING), ("_id", DESCENDING)], background=True)
    fw.create_index(
        [("state", DESCENDING), ("spec._priority", DESCENDING), ("created_on", DESCENDING)],
        background=True,
    )
    fw.create_index(
        [("state", DESCENDING), ("spec._priority", DESCENDING), ("created_on", ASCENDING)],
        background=True,
    )
    wf.create_index([("state", DESCENDING), ("_id", DESCENDING)], background=True)
    fw.create_index("archived_launches", background=True)
