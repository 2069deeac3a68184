"""Times as FireWorks stores them: ISO strings or BSON dates, naive or aware."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def to_utc(value: Any) -> datetime | None:
    """An aware datetime for a stored time (naive means UTC); None when it is not a time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            d = datetime.fromisoformat(value)
        except ValueError:
            return None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return None


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(timezone.utc)


def isoformat(dt: datetime | None = None) -> str:
    """FireWorks' string form of a date (``recursive_dict`` turns datetimes into isoformat)."""
    return (dt or utcnow()).isoformat()
