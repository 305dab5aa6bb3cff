"""The in-memory key table every request consults: one dict lookup, no database.

`KeyCache.resolve` hashes the presented secret and looks it up in a dict built from the
store. `refresh` (run off the event loop, every POLL_S) reads the store's change counter
and reloads the whole table only when it moved, so a create, update or revoke by any
process or replica is seen within POLL_S plus one reload. If the database goes away,
the last table stays in use (cached keys keep working) and a warning is logged once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.admission.quota import build as build_quota
from gateway.auth.principal import Principal
from gateway.errors import Unauthorized
from gateway.keys.access import KeyLimits, effective_models
from gateway.keys.secret import secret_digest
from gateway.store import Key, StoreError
from gateway.store.records import iso

if TYPE_CHECKING:
    from gateway.store import Store

log = logging.getLogger("gateway.keys")

POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    revoked: bool
    expires: float | None  # unix seconds


def _entry(key: Key) -> _Entry:
    quota = build_quota(key.id, key.name, key.limits, key.team_id, key.team_name, key.team_limits)
    limits = KeyLimits.build(
        key.team_models if key.team_id else None, key.models, key.expires_at, quota
    )
    principal = Principal(
        "key",
        key.id,
        key.name,
        key.team_id,
        key.team_name,
        effective_models(limits.team_models, key.models),
        limits,
    )
    expires = key.expires_at.replace(tzinfo=UTC).timestamp() if key.expires_at is not None else None
    return _Entry(principal, key.revoked, expires)


class KeyCache:
    """A KeyResolver (gateway.auth.edge) over the store's keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version: int | None = None
        self.active = False  # the database has any key or team: virtual keys are in force
        self._by_hash: dict[bytes, _Entry] = {}  # by SHA-256 digest
        self._by_id: dict[str, _Entry] = {}
        self._down = False

    def resolve(self, token: str) -> Principal:
        entry = self._by_hash.get(secret_digest(token))
        if entry is None:
            raise Unauthorized("The API key is not known to this gateway.", code="invalid_api_key")
        name = entry.principal.key_name
        if entry.revoked:
            raise Unauthorized(f"The API key '{name}' has been revoked.", code="invalid_api_key")
        if entry.expires is not None and time.time() >= entry.expires:
            when = iso(datetime.fromtimestamp(entry.expires, UTC).replace(tzinfo=None))
            raise Unauthorized(f"The API key '{name}' expired at {when}.", code="invalid_api_key")
        return entry.principal

    def principals(self) -> list[Principal]:
        return [entry.principal for entry in self._by_id.values()]

    def principal(self, key_id: str) -> Principal | None:
        entry = self._by_id.get(key_id)
        return entry.principal if entry is not None else None

    def refresh(self) -> bool:
        """Reload when the store changed (blocking: call it from a thread). True when the
        table was reloaded; False when unchanged or the database is unreachable."""
        from gateway.store.admin import snapshot  # SQLAlchemy: loaded only with a database

        try:
            if self.version is not None and self.store.version() == self.version:
                self._up()
                return False
            version, keys, teams = snapshot(self.store)
        except StoreError as exc:  # the database is away: keep serving the cached table
            if not self._down:
                self._down = True
                log.warning(
                    "cannot read keys from %s (%s): serving the %d cached keys until it is back",
                    self.store.describe(),
                    exc,
                    len(self._by_hash),
                )
            return False
        self._up()
        entries = [(key, _entry(key)) for key in keys]
        self._by_hash = {bytes.fromhex(key.secret_hash): entry for key, entry in entries}
        self._by_id = {key.id: entry for key, entry in entries}
        self.version = version
        if not self.active and (keys or teams):
            log.info(
                "virtual keys are in force: %d keys, %d teams in %s",
                len(keys),
                teams,
                self.store.describe(),
            )
        self.active = bool(keys or teams)
        return True

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("the key database %s is reachable again", self.store.describe())
