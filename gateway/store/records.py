"""Teams and keys as plain values, and the checks every writer (CLI, admin API) shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.counters.limits import NO_LIMITS, Limits
from gateway.store.errors import StoreError

MAX_NAME = 200
MAX_GLOBS = 200


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    models: tuple[str, ...] | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    limits: Limits = NO_LIMITS

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "models": _list(self.models),
            "metadata": self.metadata,
            "limits": self.limits.public(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    name: str
    secret_hash: str
    prefix: str
    team_id: str | None
    team_name: str | None
    models: tuple[str, ...] | None
    expires_at: datetime | None
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    revoked: bool
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    team_models: tuple[str, ...] | None = field(default=None)  # the team's list, for the cache
    limits: Limits = NO_LIMITS
    team_limits: Limits = NO_LIMITS  # the team's, for the cache

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def public(self) -> dict[str, Any]:
        """Everything about the key except its secret and the secret's hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "team_id": self.team_id,
            "team": self.team_name,
            "models": _list(self.models),
            "expires_at": iso(self.expires_at),
            "metadata": self.metadata,
            "tags": list(self.tags),
            "revoked": self.revoked,
            "revoked_at": iso(self.revoked_at),
            "limits": self.limits.public(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def now() -> datetime:
    """Naive UTC, as the schema stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def to_utc(value: datetime) -> datetime:
    """A datetime as naive UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_time(raw: str, what: str) -> datetime:
    """An ISO-8601 date or date-time (a trailing Z allowed), as naive UTC."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise StoreError(
            f"{what}: {raw!r} is not an ISO-8601 date or time (e.g. 2026-12-31 or "
            "2026-12-31T18:00:00Z)"
        ) from None
    return to_utc(value)


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"a {what} needs a name")
    clean = name.strip()
    if len(clean) > MAX_NAME or not clean.isprintable():
        raise StoreError(f"{what} name {clean[:40]!r}: at most {MAX_NAME} printable characters")
    if clean.startswith(("key_", "team_")):
        raise StoreError(
            f"{what} name {clean!r}: names starting with key_ or team_ are kept for ids"
        )
    return clean


def check_models(models: Any, what: str) -> tuple[str, ...] | None:
    """A list of registry keys, aliases or globs (`openai:*`); None means every model."""
    if models is None:
        return None
    if isinstance(models, str):
        models = [part for part in models.split(",")]
    if not isinstance(models, list | tuple) or len(models) > MAX_GLOBS:
        raise StoreError(f"{what} models: a list of at most {MAX_GLOBS} names or globs")
    out: list[str] = []
    for glob in models:
        if (
            not isinstance(glob, str)
            or not glob.strip()
            or len(glob) > MAX_NAME
            or not glob.isprintable()
        ):
            raise StoreError(f"{what} models: {glob!r} is not a model name or glob")
        if glob.strip() not in out:
            out.append(glob.strip())
    return tuple(out)


def check_metadata(metadata: Any, what: str) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise StoreError(f"{what} metadata: a JSON object with string keys")
    return dict(metadata)


def check_tags(tags: Any, what: str) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = [part for part in tags.split(",") if part.strip()]
    if not isinstance(tags, list | tuple) or not all(
        isinstance(t, str) and t.strip() for t in tags
    ):
        raise StoreError(f"{what} tags: a list of non-empty strings")
    return tuple(dict.fromkeys(t.strip() for t in tags))
