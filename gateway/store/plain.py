"""The store's constants and pure helpers, importable without SQLAlchemy.

A gateway without virtual keys must not load the SQL stack (SQLAlchemy, Alembic, the
drivers: some 25 MB of memory): the request path, the CLI parser and the start-up check
for the default database file use only what is here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.settings import DEFAULT_DATABASE_URL

DEFAULT_URL = DEFAULT_DATABASE_URL
# The file DEFAULT_URL names (what gateway.store.engine.sqlite_path gives for it): until
# it exists, a gateway on the default URL opens no database.
DEFAULT_PATH = DEFAULT_URL.removeprefix("sqlite:///")

PICO = 10**12  # pico-USD per USD

GROUPS = ("key", "team", "model", "day")  # what spend can be grouped by


def exact(value: Any) -> Decimal:
    """A Decimal, int, or float as a Decimal; a float through its shortest repr, so
    0.0001234 is 0.0001234, not its binary neighbour 0.000123399999..."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def to_pusd(cost: Any) -> int | None:
    """A cost in USD (Decimal, int, or the float the pricing code gives) as pico-USD."""
    if type(cost) is Decimal:  # what CallRecord.cost holds: the per-call path
        return int((cost * _PICO).to_integral_value())
    if cost is None:
        return None
    return int((exact(cost) * _PICO).to_integral_value())


_PICO = Decimal(PICO)  # not converted from the int on every call
