"""Alembic's entry point, run only through gateway.store.migrate (never by hand): the
connection it migrates comes in `config.attributes["connection"]`, already inside the
transaction that holds the migration lock."""

from __future__ import annotations

from alembic import context

from gateway.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
