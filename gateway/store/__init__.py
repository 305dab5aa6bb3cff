"""Storage for keys, teams and the spend ledger: SQLite by default, PostgreSQL for
replicas, one schema for both, migrated on start (gateway.store.migrate)."""

from typing import TYPE_CHECKING, Any

from gateway.store.errors import ConflictError, DatabaseUnavailable, NotFoundError, StoreError
from gateway.store.plain import DEFAULT_URL
from gateway.store.records import Key, Team

if TYPE_CHECKING:
    from gateway.store.core import Store
    from gateway.store.ledger import LedgerRow

__all__ = [
    "DEFAULT_URL",
    "ConflictError",
    "DatabaseUnavailable",
    "Key",
    "LedgerRow",
    "NotFoundError",
    "Store",
    "StoreError",
    "Team",
]


def __getattr__(name: str) -> Any:
    # Store and LedgerRow import SQLAlchemy: loaded on first use, so a gateway without
    # virtual keys never loads it (gateway.store.plain).
    if name == "Store":
        from gateway.store.core import Store

        return Store
    if name == "LedgerRow":
        from gateway.store.ledger import LedgerRow

        return LedgerRow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
