"""What the store raises: one clear sentence for the operator, never a driver traceback."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used as configured (bad URL, unreachable, failed migration)."""


class NotFoundError(StoreError):
    """No team or key by that id or name."""


class ConflictError(StoreError):
    """A name already taken, or a team that still has keys."""


class DatabaseUnavailable(StoreError):
    """The database did not answer (down, unreachable, refused the connection)."""
