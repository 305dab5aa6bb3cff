"""The one SQL schema, for SQLite and PostgreSQL alike (SQLAlchemy Core).

The migrations in gateway/store/migrations create exactly these tables; this module is
what the queries are written against. Money is an integer number of pico-USD (1e-12
USD): exact for any price with up to six decimals per million tokens, and a 64-bit
column holds up to about 9.2 million USD per row. Times are naive UTC.

Budgets and rate limits (the next step) add their own tables in a later migration and
bump `changes.version` on every edit like teams and keys do, so the caches that poll it
pick them up the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from gateway.store.plain import PICO as PICO

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of its rowid (autoincrement).
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

teams = Table(
    "teams",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("models", JSON, nullable=True),  # list of globs; NULL = every model
    Column("metadata", JSON, nullable=False),
    Column(
        "limits", JSON, nullable=True
    ),  # budgets and rate limits (gateway.counters.limits); migration 0002
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False, unique=True),  # SHA-256, hex
    Column("prefix", String(16), nullable=False),  # the secret's first characters, for display
    Column("team_id", String(32), ForeignKey("teams.id"), nullable=True),
    Column("models", JSON, nullable=True),  # globs narrowing the team's; NULL = the team's
    Column("expires_at", DateTime, nullable=True),
    Column("metadata", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    Column(
        "limits", JSON, nullable=True
    ),  # budgets and rate limits (gateway.counters.limits); migration 0002
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per finished call. key_id and team_id are what they were when the call was
# made (a key moved to another team keeps its past spend where it was); no foreign keys,
# so a ledger batch never fails on a concurrent admin edit.
ledger = Table(
    "ledger",
    metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("time", DateTime, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("key_id", String(32), nullable=True),  # NULL: the master key, or no key at all
    Column("team_id", String(32), nullable=True),
    Column("route", String(64), nullable=False),
    Column("model", String(200), nullable=True),  # the registry key asked for
    Column("answered_by", String(200), nullable=True),  # the registry key that answered
    Column("provider", String(100), nullable=True),
    Column("status", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_pusd", BigInteger, nullable=True),  # NULL: the model has no price
    Column("duration_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
    Column("streamed", Boolean, nullable=False),
    Column("disconnected", Boolean, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("error_reason", String(100), nullable=True),
    Index("ix_ledger_time", "time"),
    Index("ix_ledger_key_time", "key_id", "time"),
    Index("ix_ledger_team_time", "team_id", "time"),
)

# One row (id 1): bumped in the same transaction as every change to teams or keys, so a
# cache polls one integer and reloads only when it moved.
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)
