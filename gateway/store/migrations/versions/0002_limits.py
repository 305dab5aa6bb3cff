"""Budgets and rate limits: a `limits` value on teams and keys, and the counters' tables
(gateway.counters.tables) for deployments without Redis.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teams", sa.Column("limits", sa.JSON, nullable=True))
    op.add_column("keys", sa.Column("limits", sa.JSON, nullable=True))
    op.create_table(
        "budget_counters",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("start", sa.DateTime, nullable=False),
        sa.Column("spent_pusd", sa.BigInteger, nullable=False),
        sa.Column("reserved_pusd", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(60), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "concurrency_slots",
        sa.Column("scope", sa.String(40), primary_key=True),
        sa.Column("rid", sa.String(40), primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
    )
    op.create_table(
        "reservations",
        sa.Column("rid", sa.String(40), primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
        sa.Column("cost_pusd", sa.BigInteger, nullable=False),
        sa.Column("budget_keys", sa.JSON, nullable=False),
        sa.Column("slot_scopes", sa.JSON, nullable=False),
    )
    op.create_index("ix_reservations_until", "reservations", ["until"])


def downgrade() -> None:
    for table in ("reservations", "concurrency_slots", "rate_buckets", "budget_counters"):
        op.drop_table(table)
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("limits")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("limits")
