"""The ledger: one row per finished call, written in batches; spend summed over it.

Spend is summed in SQL by the requested fields and by day, then folded in Python with
integers: exact, and on SQLite no 64-bit sum can overflow (one key's spend in one day
would have to pass 9.2 million USD).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, select

from gateway.store.core import Store
from gateway.store.errors import StoreError
from gateway.store.plain import GROUPS, PICO
from gateway.store.plain import to_pusd as to_pusd  # still importable from here
from gateway.store.records import parse_time
from gateway.store.schema import keys, ledger, teams

TOTALS = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "unpriced_requests",
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    time: datetime  # naive UTC
    request_id: str
    key_id: str | None
    team_id: str | None
    route: str
    model: str | None
    answered_by: str | None
    provider: str | None
    status: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_pusd: int | None
    duration_ms: float
    ttft_ms: float | None
    streamed: bool
    disconnected: bool
    estimated: bool
    error_reason: str | None


FIELDS = tuple(LedgerRow.__dataclass_fields__)  # the column order of a ledger tuple
_TIME = FIELDS.index("time")
_COLUMNS = ", ".join(f'"{name}"' for name in FIELDS)


def _sqlite_time(stamp: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format, as the rest of the store reads it back.
    return stamp.isoformat(" ", "microseconds")[:26]


# The last second sqlite_time formatted, and its text: one tuple, replaced whole, so the
# flush threads (the last one at shutdown may overlap a cancelled one) can share it.
_second_text: tuple[int, str] = (0, "1970-01-01 00:00:00")


def sqlite_time(t: float) -> str:
    """Unix seconds as _sqlite_time(datetime.fromtimestamp(t, UTC)) gives them, at a
    fraction of the cost: the calls of a flush fall within a few seconds, so the date
    and time of day are formatted once a second, and the microseconds are rounded as
    fromtimestamp rounds them (the fraction, exactly t minus its integer part, times
    1e6, half to even)."""
    global _second_text
    whole = int(t)
    micro = round((t - whole) * 1e6)
    if micro >= 1_000_000:  # rounded up into the next second
        micro -= 1_000_000
        whole += 1
    cached = _second_text
    if cached[0] != whole:
        text = datetime.fromtimestamp(whole, UTC).isoformat(" ")[:19]
        cached = _second_text = (whole, text)
    return f"{cached[1]}.{micro:06d}"


class Format(NamedTuple):
    """How this store's ledger columns take a call's values (gateway.keys.ledger)."""

    time: Callable[[float], Any]  # unix seconds -> the `time` column
    flag: Callable[[bool], Any]  # a boolean column's value


def format_of(store: Store) -> Format:
    """Naive UTC datetimes and bools for PostgreSQL. On SQLite, the text SQLAlchemy's
    DateTime would have stored, and 0/1 (what its Boolean stores): the sqlite3 module
    binds an int as it is, but looks a bool up in its adapter registry first (two
    failed attribute lookups, ~3k instructions a value)."""
    if store.dialect == "postgresql":
        return Format(lambda t: datetime.fromtimestamp(t, UTC).replace(tzinfo=None), bool)
    return Format(sqlite_time, int)


def insert_values(store: Store, values: Sequence[tuple[Any, ...]]) -> None:
    """Plain tuples in FIELDS order, the values as `format_of` says, in one transaction
    on the driver's own cursor: SQLAlchemy's per-row processing, a dataclass and getattr
    per field would cost more than the insert itself, on the one core the gateway
    shares with it. PostgreSQL takes one executemany (psycopg pipelines it); SQLite
    takes multi-row INSERTs (_sqlite_chunks), about 10k instructions a row fewer than
    executemany's one statement run per row."""
    if not values:
        return
    with store.driver() as cursor:
        if store.dialect == "postgresql":
            cursor.executemany(_PG_INSERT, values)
            return
        start = 0
        for size in _sqlite_chunks(len(values)):
            part = values[start : start + size]
            start += size
            cursor.execute(_sqlite_insert(size), tuple(chain.from_iterable(part)))


_PG_INSERT = f"INSERT INTO ledger ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(FIELDS))})"
# 32 rows of 20 columns: 640 parameters, under the 999 of SQLite builds before 3.32.
_SQLITE_ROWS = 32


def _sqlite_chunks(count: int) -> list[int]:
    """Rows per INSERT: full chunks, then the rest in powers of two, so that only six
    statement shapes ever exist (each prepared once, kept in the driver's statement cache)."""
    sizes = [_SQLITE_ROWS] * (count // _SQLITE_ROWS)
    rest = count % _SQLITE_ROWS
    size = _SQLITE_ROWS // 2
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size //= 2
    return sizes


@lru_cache(maxsize=8)
def _sqlite_insert(rows: int) -> str:
    row = f"({', '.join(['?'] * len(FIELDS))})"
    return f"INSERT INTO ledger ({_COLUMNS}) VALUES {', '.join([row] * rows)}"


def insert_rows(store: Store, rows: Sequence[LedgerRow]) -> None:
    """LedgerRows (naive UTC times), by insert_values."""
    values = [tuple(getattr(row, name) for name in FIELDS) for row in rows]
    if store.dialect != "postgresql":
        values = [(*v[:_TIME], _sqlite_time(v[_TIME]), *v[_TIME + 1 :]) for v in values]
    insert_values(store, values)


def usd(pusd: int) -> str:
    """Pico-USD as an exact decimal string: 123400000 -> '0.0001234'."""
    text = f"{Decimal(pusd) / PICO:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """[since, until) from the operator's strings (UTC); a date-only `until` includes that day."""
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    if end is not None and until is not None and len(until.strip()) == 10:
        end += timedelta(days=1)
    return start, end


def spend(
    store: Store,
    by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """Totals over [since, until) grouped by the `by` fields (key, team, model, day), in
    that field order, sorted; `cost_usd` is an exact decimal string. `key_id` keeps
    one key's calls only. Without `by`, one row: the totals (zero for no calls)."""
    by = list(dict.fromkeys(by))
    for field in by:
        if field not in GROUPS:
            raise StoreError(f"cannot group spend by {field!r}: use {', '.join(GROUPS)}")
    day = func.date(ledger.c.time)
    columns: dict[str, Any] = {
        "key": ledger.c.key_id,
        "team": ledger.c.team_id,
        "model": func.coalesce(ledger.c.answered_by, ledger.c.model),
        "day": day,
    }
    dims = [columns[field] for field in by if field != "day"] + [day]
    query = select(
        *dims,
        func.count(),
        func.sum(ledger.c.input_tokens),
        func.sum(ledger.c.cached_input_tokens),
        func.sum(ledger.c.output_tokens),
        func.sum(ledger.c.reasoning_tokens),
        # Unpriced: tokens were used but there is no cost. A call with no usage at all (a
        # refusal, a failure before any output) has no cost either, and is not unpriced.
        func.sum(
            case(
                (
                    and_(
                        ledger.c.cost_pusd.is_(None),
                        ledger.c.input_tokens + ledger.c.output_tokens > 0,
                    ),
                    1,
                ),
                else_=0,
            )
        ),
        func.sum(ledger.c.cost_pusd),
    ).group_by(*dims)
    if since is not None:
        query = query.where(ledger.c.time >= since)
    if until is not None:
        query = query.where(ledger.c.time < until)
    if key_id is not None:
        query = query.where(ledger.c.key_id == key_id)
    with store.begin() as connection:
        rows = connection.execute(query).all()
        key_names = dict(connection.execute(select(keys.c.id, keys.c.name)).all())
        team_names = dict(connection.execute(select(teams.c.id, teams.c.name)).all())
    names = {"key": key_names, "team": team_names}
    groups: dict[tuple[Any, ...], list[int]] = (
        {} if by else {(): [0] * (len(TOTALS) + 1)}
    )  # always a total
    for row in rows:
        values = list(row)
        ids = [*values[: len(dims) - 1], str(values[len(dims) - 1])]  # date() is text or a date
        label = dict(zip([*(f for f in by if f != "day"), "day"], ids, strict=True))
        group = tuple(_label(field, label[field], names) for field in by)
        totals = groups.setdefault(group, [0] * (len(TOTALS) + 1))
        for i, value in enumerate(values[len(dims) :]):
            totals[i] += int(value or 0)
    out = []
    for group in sorted(groups, key=lambda g: tuple("" if v is None else str(v) for v in g)):
        totals = groups[group]
        entry: dict[str, Any] = dict(zip(by, group, strict=True))
        entry.update(zip(TOTALS, totals[: len(TOTALS)], strict=True))
        entry["cost_usd"] = usd(totals[len(TOTALS)])
        out.append(entry)
    return out


def _label(field: str, value: Any, names: dict[str, dict[str, str]]) -> Any:
    if field in names and value is not None:
        return names[field].get(value, value)  # a deleted team keeps its id
    return value
