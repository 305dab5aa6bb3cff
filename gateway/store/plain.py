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


def to_pusd(cost: Any) -> int | None:
    """A cost in USD (Decimal, int, or the float the pricing code gives) as pico-USD.

    A float goes through its shortest repr: 0.0001234 is 123400000, not the binary
    neighbour's 123399999.99..."""
    if cost is None:
        return None
    value = (
        cost
        if isinstance(cost, Decimal)
        else Decimal(repr(cost))
        if isinstance(cost, float)
        else Decimal(cost)
    )
    return int((value * PICO).to_integral_value())
