"""The counters' tables in the store's database (migration 0002), for one host or for
replicas sharing PostgreSQL without Redis. Keys are the same strings the Redis backend
uses, so both speak of the same counters."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, String, Table

from gateway.store.schema import metadata

# One row per budget and period (its start is part of the key): no reset job, ever.
budget_counters = Table(
    "budget_counters",
    metadata,
    Column("key", String(120), primary_key=True),  # "<scope>:<period>:<start date>"
    Column("scope", String(40), nullable=False),  # "k:<key id>" | "t:<team id>"
    Column("period", String(8), nullable=False),
    Column("start", DateTime, nullable=False),
    Column("spent_pusd", BigInteger, nullable=False),
    Column("reserved_pusd", BigInteger, nullable=False),
)

# Requests or tokens counted per 10 s bucket (gateway.counters.logic).
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(60), primary_key=True),  # "<scope>:r" | "<scope>:t"
    Column("bucket", BigInteger, primary_key=True),  # unix seconds // 10
    Column("amount", BigInteger, nullable=False),
)

# One row per call in flight per limited scope; counted while `until` is ahead.
slots = Table(
    "concurrency_slots",
    metadata,
    Column("scope", String(40), primary_key=True),
    Column("rid", String(40), primary_key=True),
    Column("until", Float, nullable=False),
)

# What a settlement (or the sweep of a dead process's calls) must give back.
reservations = Table(
    "reservations",
    metadata,
    Column("rid", String(40), primary_key=True),
    Column("until", Float, nullable=False),
    Column("cost_pusd", BigInteger, nullable=False),
    Column("budget_keys", JSON, nullable=False),
    Column("slot_scopes", JSON, nullable=False),
    Index("ix_reservations_until", "until"),
)
