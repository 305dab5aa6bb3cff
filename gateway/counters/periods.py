"""Calendar budget periods in UTC, keyed by their start: a new period is a new counter
that starts at zero, so nothing ever has to reset one.

- total: one period, from the beginning (its start is 1970-01-01).
- daily: from 00:00 UTC.
- weekly: from Monday 00:00 UTC (ISO weeks).
- monthly: from the 1st, 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1)


def period_start(period: str, now: datetime) -> datetime:
    """The start (naive UTC) of the period containing `now` (naive UTC)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return EPOCH


def period_end(period: str, start: datetime) -> datetime | None:
    """When the period that began at `start` ends (the next one's start); None for total."""
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(days=7)
    if period == "monthly":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return None


def ttl_s(period: str) -> int | None:
    """How long a period's counter must outlive its start (Redis EXPIRE), with a day's
    margin for clocks and late settlements; None: keep it (total)."""
    return {"daily": 2, "weekly": 8, "monthly": 32}.get(period, 0) * 86400 or None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def stamp(start: datetime) -> str:
    return start.strftime("%Y-%m-%d")
