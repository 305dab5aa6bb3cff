"""Storage for keys, teams and the spend ledger: SQLite by default, PostgreSQL for
replicas, one schema for both, migrated on start (gateway.store.migrate)."""

from gateway.store.core import Store
from gateway.store.engine import DEFAULT_URL
from gateway.store.errors import ConflictError, DatabaseUnavailable, NotFoundError, StoreError
from gateway.store.ledger import LedgerRow
from gateway.store.records import Key, Team

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
