"""Teams and keys: create, read, update, revoke. Every write bumps the change counter in
the same transaction, so every running gateway reloads its cache within one poll.

A key's secret never reaches this module: callers hand over its SHA-256 hash and a
display prefix (gateway.keys.secrets makes both).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, or_, select, update

from gateway.counters.limits import Limits, LimitsError, check_limits, merge
from gateway.store.core import Store, bump
from gateway.store.errors import ConflictError, NotFoundError, StoreError
from gateway.store.records import (
    Key,
    Team,
    check_metadata,
    check_models,
    check_name,
    check_tags,
    now,
    to_utc,
)
from gateway.store.schema import changes as changes_table
from gateway.store.schema import keys, teams


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # an update argument left out: keep the stored value


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _team(row: RowMapping) -> Team:
    models = row["models"]
    return Team(
        row["id"],
        row["name"],
        None if models is None else tuple(models),
        dict(row["metadata"] or {}),
        row["created_at"],
        row["updated_at"],
        check_limits(row["limits"], "team"),
    )


_KEY_COLUMNS = (
    *keys.c,
    teams.c.name.label("team_name"),
    teams.c.models.label("team_models"),
    teams.c.limits.label("team_limits"),
)


def _key(row: RowMapping) -> Key:
    models, team_models = row["models"], row["team_models"]
    return Key(
        row["id"],
        row["name"],
        row["secret_hash"],
        row["prefix"],
        row["team_id"],
        row["team_name"],
        None if models is None else tuple(models),
        row["expires_at"],
        dict(row["metadata"] or {}),
        tuple(row["tags"] or ()),
        bool(row["revoked"]),
        row["revoked_at"],
        row["created_at"],
        row["updated_at"],
        None if team_models is None else tuple(team_models),
        check_limits(row["limits"], "key"),
        check_limits(row["team_limits"], "team"),
    )


def _keys_query() -> Any:
    return select(*_KEY_COLUMNS).select_from(keys.outerjoin(teams, keys.c.team_id == teams.c.id))


def _fields(
    what: str, *, name: Any = UNSET, models: Any = UNSET, metadata: Any = UNSET
) -> dict[str, Any]:
    """The fields teams and keys share, checked, as column values; UNSET ones left out."""
    out: dict[str, Any] = {}
    if name is not UNSET:
        out["name"] = check_name(name, what)
    if models is not UNSET:
        out["models"] = _json_list(check_models(models, what))
    if metadata is not UNSET:
        out["metadata"] = check_metadata(metadata, what)
    return out


def _name_free(
    connection: Connection, table: Any, what: str, values: dict[str, Any], row_id: str | None = None
) -> None:
    """A ConflictError when `values` names the row another row of `table` already has."""
    if "name" not in values:
        return
    query = select(table.c.id).where(table.c.name == values["name"])
    if row_id is not None:
        query = query.where(table.c.id != row_id)
    if connection.execute(query).first() is not None:
        raise ConflictError(f"a {what} named {values['name']!r} already exists")


def _save(
    connection: Connection,
    table: Any,
    row: RowMapping,
    changes: dict[str, Any],
    limits: dict[str, Any] | None,
    what: str,
) -> None:
    """Write an update's changes (and limit changes merged into the stored limits), if any."""
    if limits:
        changes["limits"] = _merged(row["limits"], limits, what)
    if changes:
        connection.execute(
            update(table).where(table.c.id == row["id"]).values(**changes, updated_at=now())
        )
        bump(connection)


def _by_ref(connection: Connection, query: Any, table: Any, ref: str, what: str) -> RowMapping:
    """The row of `query` whose id or name is `ref`, or a NotFoundError saying so."""
    found = query.where(or_(table.c.id == ref, table.c.name == ref))
    row = connection.execute(found).mappings().first()
    if row is None:
        raise NotFoundError(f"no {what} {ref!r} (give its id or name)")
    return row


def _team_row(connection: Connection, ref: str) -> RowMapping:
    return _by_ref(connection, select(teams), teams, ref, "team")


def _key_row(connection: Connection, ref: str) -> RowMapping:
    return _by_ref(connection, _keys_query(), keys, ref, "key")


# Teams


def create_team(
    store: Store,
    name: str,
    *,
    models: Any = None,
    metadata: Any = None,
    limits: Limits | None = None,
) -> Team:
    team_id = _new_id("team")
    values = {
        "id": team_id,
        **_fields("team", name=name, models=models, metadata=metadata),
        "limits": limits.to_json() if limits else None,
        "created_at": now(),
        "updated_at": now(),
    }
    with store.begin() as connection:
        _name_free(connection, teams, "team", values)
        connection.execute(insert(teams).values(**values))
        bump(connection)
        return _team(_team_row(connection, team_id))


def list_teams(store: Store) -> list[Team]:
    with store.begin() as connection:
        return [
            _team(row)
            for row in connection.execute(select(teams).order_by(teams.c.name)).mappings()
        ]


def get_team(store: Store, ref: str) -> Team:
    with store.begin() as connection:
        return _team(_team_row(connection, ref))


def update_team(
    store: Store,
    ref: str,
    *,
    name: Any = UNSET,
    models: Any = UNSET,
    metadata: Any = UNSET,
    limits: dict[str, Any] | None = None,
) -> Team:
    """`limits`: the limit fields to change (budgets, rpm, tpm, max_parallel; None clears one)."""
    changes = _fields("team", name=name, models=models, metadata=metadata)
    with store.begin() as connection:
        row = _team_row(connection, ref)
        _name_free(connection, teams, "team", changes, row["id"])
        _save(connection, teams, row, changes, limits, "team")
        return _team(_team_row(connection, row["id"]))


def delete_team(store: Store, ref: str) -> Team:
    """Delete a team that has no live keys; its revoked keys are detached from it. Its
    ledger rows stay (they keep the team's id)."""
    with store.begin() as connection:
        row = _team_row(connection, ref)
        live = connection.execute(
            select(func.count())
            .select_from(keys)
            .where(keys.c.team_id == row["id"], keys.c.revoked.is_(False))
        ).scalar_one()
        if live:
            raise ConflictError(
                f"team {row['name']!r} still has {live} key(s) that are not revoked: "
                "revoke them or move them to another team first"
            )
        connection.execute(update(keys).where(keys.c.team_id == row["id"]).values(team_id=None))
        connection.execute(delete(teams).where(teams.c.id == row["id"]))
        bump(connection)
        return _team(row)


# Keys


def create_key(
    store: Store,
    name: str,
    *,
    secret_hash: str,
    prefix: str,
    team: str | None = None,
    models: Any = None,
    expires_at: datetime | None = None,
    metadata: Any = None,
    tags: Any = None,
    limits: Limits | None = None,
) -> Key:
    values: dict[str, Any] = {
        "id": _new_id("key"),
        **_fields("key", name=name, models=models, metadata=metadata),
        "secret_hash": secret_hash,
        "prefix": prefix,
        "expires_at": None if expires_at is None else to_utc(expires_at),
        "tags": list(check_tags(tags, "key")),
        "revoked": False,
        "revoked_at": None,
        "created_at": now(),
        "updated_at": now(),
        "limits": limits.to_json() if limits else None,
    }
    with store.begin() as connection:
        _name_free(connection, keys, "key", values)
        values["team_id"] = None if team is None else _team_row(connection, team)["id"]
        connection.execute(insert(keys).values(**values))
        bump(connection)
        return _key(_key_row(connection, values["id"]))


def list_keys(store: Store, team: str | None = None) -> list[Key]:
    with store.begin() as connection:
        query = _keys_query().order_by(keys.c.name)
        if team is not None:
            query = query.where(keys.c.team_id == _team_row(connection, team)["id"])
        return [_key(row) for row in connection.execute(query).mappings()]


def get_key(store: Store, ref: str) -> Key:
    with store.begin() as connection:
        return _key(_key_row(connection, ref))


def update_key(
    store: Store,
    ref: str,
    *,
    name: Any = UNSET,
    team: Any = UNSET,
    models: Any = UNSET,
    expires_at: Any = UNSET,
    metadata: Any = UNSET,
    tags: Any = UNSET,
    limits: dict[str, Any] | None = None,
) -> Key:
    """Change a key's fields; `team=None`, `models=None`, `expires_at=None` clear them."""
    changes = _fields("key", name=name, models=models, metadata=metadata)
    if expires_at is not UNSET:
        changes["expires_at"] = None if expires_at is None else to_utc(expires_at)
    if tags is not UNSET:
        changes["tags"] = list(check_tags(tags, "key"))
    with store.begin() as connection:
        row = _key_row(connection, ref)
        _name_free(connection, keys, "key", changes, row["id"])
        if team is not UNSET:
            changes["team_id"] = None if team is None else _team_row(connection, team)["id"]
        _save(connection, keys, row, changes, limits, "key")
        return _key(_key_row(connection, row["id"]))


def revoke_key(store: Store, ref: str) -> Key:
    """Revoke a key for good (idempotent). Revoked keys stay listed, and their spend stays."""
    with store.begin() as connection:
        row = _key_row(connection, ref)
        if not row["revoked"]:
            stamp = now()
            connection.execute(
                update(keys)
                .where(keys.c.id == row["id"])
                .values(revoked=True, revoked_at=stamp, updated_at=stamp)
            )
            bump(connection)
        return _key(_key_row(connection, row["id"]))


def snapshot(store: Store) -> tuple[int, list[Key], int]:
    """(change counter, every key with its team's model list, number of teams), read in
    one transaction: what a cache loads whole."""
    with store.begin() as connection:
        version = int(connection.execute(select(changes_table.c.version)).scalar_one())
        rows = [_key(row) for row in connection.execute(_keys_query()).mappings()]
        team_count = int(connection.execute(select(func.count()).select_from(teams)).scalar_one())
        return version, rows, team_count


def parse_limits(raw: Any, what: str) -> Limits:
    """Budgets and rate limits as the CLI or the admin API gave them (a StoreError if bad)."""
    try:
        return check_limits(raw, what)
    except LimitsError as exc:
        raise StoreError(str(exc)) from None


def _merged(stored: Any, changes: dict[str, Any], what: str) -> dict[str, Any] | None:
    try:
        return merge(check_limits(stored, what), changes, what).to_json()
    except LimitsError as exc:
        raise StoreError(str(exc)) from None


def _json_list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


__all__ = [
    "UNSET",
    "ConflictError",
    "NotFoundError",
    "StoreError",
    "create_key",
    "create_team",
    "delete_team",
    "get_key",
    "get_team",
    "list_keys",
    "list_teams",
    "revoke_key",
    "snapshot",
    "update_key",
    "update_team",
]
