"""The admin API under /admin/ (master key only) and GET /v1/key (the caller's own key).

It mirrors `gateway teams | keys | spend`: the same store functions, the same fields.
No response carries a key's secret except the one that creates it; none carries its hash.
Handlers are plain functions (FastAPI runs them in its thread pool): the store is
synchronous, and administration is not the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio.from_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway.admission.view import counters_view
from gateway.answers import json_response
from gateway.auth.edge import authenticate
from gateway.auth.principal import Principal
from gateway.errors import GatewayError, NotFound
from gateway.keys.runtime import Governance
from gateway.keys.secret import display_prefix, hash_secret, new_secret
from gateway.state import GatewayState
from gateway.store import ConflictError, DatabaseUnavailable, NotFoundError, StoreError
from gateway.store.plain import GROUPS

# gateway.store.admin and gateway.store.ledger import SQLAlchemy: each handler imports
# them itself, so a gateway that never serves an admin call never loads it.
if TYPE_CHECKING:
    from gateway.store import Store

router = APIRouter()

_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["message", "type", "param", "code"],
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    }
}
_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A field with a value the store refuses", **_ERROR},
    401: {"description": "Missing or wrong key", **_ERROR},
    403: {"description": "Not the master key, or no master key configured", **_ERROR},
    404: {"description": "No such team or key", **_ERROR},
    409: {"description": "Name taken, or a team that still has live keys", **_ERROR},
    503: {"description": "No database configured, or the database is unreachable", **_ERROR},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetIn(_Body):
    amount_usd: str | float | int = Field(description='USD, e.g. "10" or "0.05"')
    period: Literal["total", "daily", "weekly", "monthly"] = Field(
        description="calendar periods in UTC"
    )
    allow_unpriced: bool = Field(
        default=False, description="let calls to models without a price through at $0"
    )


class _LimitFields(_Body):
    budgets: list[str | BudgetIn] | None = Field(
        default=None,
        description='e.g. ["10/daily", "200/monthly"] (AMOUNT/PERIOD[/allow-unpriced]) or objects; '
        "on update the list replaces every budget",
    )
    rpm: int | None = Field(default=None, ge=1, description="requests per minute; null: no limit")
    tpm: int | None = Field(
        default=None, ge=1, description="tokens (input + output) per minute; null: no limit"
    )
    max_parallel: int | None = Field(
        default=None, ge=1, description="requests in flight at once; null: no limit"
    )


_LIMIT_NAMES = ("budgets", "rpm", "tpm", "max_parallel")


def _limits_sent(body: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the limit fields sent, the other fields sent)."""
    sent = _sent(body)
    limits = {name: sent.pop(name) for name in _LIMIT_NAMES if name in sent}
    if limits.get("budgets") is not None:
        limits["budgets"] = [
            b.model_dump() if isinstance(b, BudgetIn) else b for b in limits["budgets"]
        ]
    elif "budgets" in limits:
        limits["budgets"] = []
    return limits, sent


class TeamCreate(_LimitFields):
    name: str = Field(min_length=1, max_length=200)
    models: list[str] | None = Field(
        default=None, description="registry keys, aliases or globs; null: every model"
    )
    metadata: dict[str, Any] | None = None


class TeamUpdate(_LimitFields):
    """Only the fields sent change; `models: null` removes the list (every model)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class KeyCreate(_LimitFields):
    name: str = Field(min_length=1, max_length=200)
    team: str | None = Field(default=None, description="team id or name")
    models: list[str] | None = Field(
        default=None, description="globs narrowing the team's; null: the team's"
    )
    expires_at: datetime | None = Field(
        default=None, description="ISO-8601; a time without zone is UTC"
    )
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None


class KeyUpdate(_LimitFields):
    """Only the fields sent change; null clears `team`, `models` and `expires_at`."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    team: str | None = None
    models: list[str] | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None


class LimitsOut(BaseModel):
    budgets: list[BudgetIn]
    rpm: int | None
    tpm: int | None
    max_parallel: int | None


class TeamOut(BaseModel):
    id: str
    name: str
    models: list[str] | None
    metadata: dict[str, Any]
    limits: LimitsOut
    created_at: str
    updated_at: str


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the secret's first characters, for display")
    team_id: str | None
    team: str | None
    models: list[str] | None
    expires_at: str | None
    metadata: dict[str, Any]
    tags: list[str]
    revoked: bool
    revoked_at: str | None
    limits: LimitsOut
    created_at: str
    updated_at: str


class KeyCreated(KeyOut):
    key: str = Field(description="the secret: shown in this response only")


class SpendRow(BaseModel):
    key: str | None = None
    team: str | None = None
    model: str | None = None
    day: str | None = None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    unpriced_requests: int
    cost_usd: str = Field(description="exact decimal USD")


class BudgetState(BaseModel):
    scope: Literal["key", "team"]
    name: str
    period: str
    amount_usd: str
    period_start: str
    resets_at: str | None
    spent_usd: str = Field(description="settled calls in this period, as the counters hold it")
    reserved_usd: str = Field(description="held by calls in flight")
    remaining_usd: str


class RateState(BaseModel):
    scope: Literal["key", "team"]
    name: str
    kind: Literal["requests", "tokens"]
    limit_per_minute: int
    remaining: int
    reset: str


class OwnKey(KeyOut):
    spend_usd: dict[str, str] = Field(
        description="this key's spend so far in each calendar period (UTC): "
        "total, daily, weekly (from Monday), monthly"
    )
    budgets: list[BudgetState] = Field(
        default_factory=list, description="every budget that applies (key's, team's)"
    )
    rate_limits: list[RateState] = Field(default_factory=list)


def _governance(request: Request) -> Governance | None:
    return getattr(request.app.state, "governance", None)


def _require_master(request: Request) -> Store:
    state: GatewayState = request.app.state.gateway
    principal = authenticate(request.headers, state.settings, state.resolver)
    if not state.settings.master_key:
        raise GatewayError(
            "The admin API needs GATEWAY_MASTER_KEY set on the gateway (the `gateway teams` "
            "and `gateway keys` commands work without it).",
            status=403,
            code="admin_disabled",
        )
    if principal.kind != "master":
        raise GatewayError(
            "The admin API takes the master key only.", status=403, code="admin_only"
        )
    return _store(request)


def _store(request: Request) -> Store:
    governance = _governance(request)
    if governance is None:
        raise GatewayError(
            "This gateway has no database configured (GATEWAY_DATABASE_URL).",
            status=503,
            code="database_unavailable",
        )
    with _mapped():
        return governance.ensure_store()


@contextmanager
def _mapped() -> Iterator[None]:
    """Store errors as the OpenAI envelope with the status that fits."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(str(exc), code="not_found") from None
    except ConflictError as exc:
        raise GatewayError(str(exc), status=409, code="conflict") from None
    except DatabaseUnavailable as exc:
        raise GatewayError(str(exc), status=503, code="database_unavailable") from None
    except StoreError as exc:
        raise GatewayError(str(exc), status=400, code="invalid_value") from None


def _sent(body: BaseModel) -> dict[str, Any]:
    return {name: getattr(body, name) for name in body.model_fields_set}


# Teams


@router.post(
    "/admin/teams", tags=["admin"], status_code=201, response_model=TeamOut, responses=_ADMIN_ERRORS
)
def create_team(request: Request, body: TeamCreate) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    limits, _ = _limits_sent(body)
    with _mapped():
        team = store_admin.create_team(
            store,
            body.name,
            models=body.models,
            metadata=body.metadata,
            limits=store_admin.parse_limits(limits, "team"),
        )
    return json_response(team.public(), status=201)


@router.get("/admin/teams", tags=["admin"], response_model=list[TeamOut], responses=_ADMIN_ERRORS)
def list_teams(request: Request) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response([team.public() for team in store_admin.list_teams(store)])


@router.get("/admin/teams/{team}", tags=["admin"], response_model=TeamOut, responses=_ADMIN_ERRORS)
def show_team(request: Request, team: str) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response(store_admin.get_team(store, team).public())


@router.patch(
    "/admin/teams/{team}", tags=["admin"], response_model=TeamOut, responses=_ADMIN_ERRORS
)
def update_team(request: Request, team: str, body: TeamUpdate) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        limits, fields = _limits_sent(body)
        return json_response(store_admin.update_team(store, team, limits=limits, **fields).public())


@router.delete(
    "/admin/teams/{team}", tags=["admin"], response_model=TeamOut, responses=_ADMIN_ERRORS
)
def delete_team(request: Request, team: str) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response(store_admin.delete_team(store, team).public())


# Keys


@router.post(
    "/admin/keys",
    tags=["admin"],
    status_code=201,
    response_model=KeyCreated,
    responses=_ADMIN_ERRORS,
)
def create_key(request: Request, body: KeyCreate) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    secret = new_secret()
    limits, _ = _limits_sent(body)
    with _mapped():
        key = store_admin.create_key(
            store,
            body.name,
            secret_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            team=body.team,
            models=body.models,
            expires_at=body.expires_at,
            metadata=body.metadata,
            tags=body.tags,
            limits=store_admin.parse_limits(limits, "key"),
        )
    return json_response({**key.public(), "key": secret}, status=201)


@router.get("/admin/keys", tags=["admin"], response_model=list[KeyOut], responses=_ADMIN_ERRORS)
def list_keys(request: Request, team: str | None = None) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response([key.public() for key in store_admin.list_keys(store, team)])


@router.get("/admin/keys/{key}", tags=["admin"], response_model=KeyOut, responses=_ADMIN_ERRORS)
def show_key(request: Request, key: str) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response(store_admin.get_key(store, key).public())


@router.patch("/admin/keys/{key}", tags=["admin"], response_model=KeyOut, responses=_ADMIN_ERRORS)
def update_key(request: Request, key: str, body: KeyUpdate) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        limits, fields = _limits_sent(body)
        return json_response(store_admin.update_key(store, key, limits=limits, **fields).public())


@router.delete(
    "/admin/keys/{key}",
    tags=["admin"],
    response_model=KeyOut,
    responses=_ADMIN_ERRORS,
    summary="Revoke a key (it stays listed, with its spend)",
)
def revoke_key(request: Request, key: str) -> Response:
    from gateway.store import admin as store_admin

    store = _require_master(request)
    with _mapped():
        return json_response(store_admin.revoke_key(store, key).public())


# Spend


@router.get("/admin/spend", tags=["admin"], response_model=list[SpendRow], responses=_ADMIN_ERRORS)
def admin_spend(
    request: Request,
    by: Annotated[
        list[str] | None,
        Query(description=f"group by: {', '.join(GROUPS)}; repeat or comma-separate"),
    ] = None,
    since: Annotated[str | None, Query(description="UTC date or time, inclusive")] = None,
    until: Annotated[
        str | None, Query(description="UTC date (inclusive) or time (exclusive)")
    ] = None,
) -> Response:
    from gateway.store.ledger import spend, time_range

    store = _require_master(request)
    fields = [part.strip() for value in by or () for part in value.split(",") if part.strip()]
    with _mapped():
        start, end = time_range(since, until)
        return json_response(spend(store, fields, start, end))


# The caller's own key


def period_starts(now: datetime) -> dict[str, datetime | None]:
    """The start of each calendar period (UTC) that contains `now` (naive UTC)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "total": None,
        "daily": day,
        "weekly": day - timedelta(days=day.weekday()),
        "monthly": day.replace(day=1),
    }


@router.get("/v1/key", tags=["openai"], response_model=OwnKey, responses=_ADMIN_ERRORS)
def own_key(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    principal: Principal = authenticate(request.headers, state.settings, state.resolver)
    if principal.kind != "key" or principal.key_id is None:
        raise GatewayError(
            "This request did not use a virtual key: GET /v1/key describes the key it is "
            "called with.",
            status=400,
            code="not_a_virtual_key",
        )
    from gateway.store import admin as store_admin
    from gateway.store.ledger import spend

    store = _store(request)
    with _mapped():
        key = store_admin.get_key(store, principal.key_id)
        now = datetime.now(UTC).replace(tzinfo=None)
        totals = {
            period: spend(store, (), start, None, key_id=key.id)
            for period, start in period_starts(now).items()
        }
    state_now = anyio.from_thread.run(counters_view, state.admission, principal)
    return json_response(
        {
            **key.public(),
            "spend_usd": {period: rows[0]["cost_usd"] for period, rows in totals.items()},
            **state_now,
        }
    )
