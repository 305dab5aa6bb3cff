"""The key cache and the ledger writer on real databases: reloads on change only,
401 messages, glob access, and a PostgreSQL server stopped mid-run (cached keys keep
working, ledger rows wait in memory up to the bound, then land when it is back)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.accounting import CallRecord, Usage
from gateway.auth.principal import MASTER, Principal
from gateway.errors import GatewayError, Unauthorized
from gateway.keys import access
from gateway.keys.cache import KeyCache
from gateway.keys.ledger import LedgerWriter, dropped_rows_total
from gateway.keys.runtime import Governance
from gateway.keys.secret import display_prefix, hash_secret, new_secret
from gateway.registry import load_registry
from gateway.store import Store, StoreError, admin
from gateway.store.ledger import spend
from gateway.store.schema import ledger
from tests.e2e.conftest import REGISTRY
from tests.servers import PostgresServer

MODELS = load_registry(REGISTRY).models


def _key(store: Store, name: str, **fields: Any) -> str:
    secret = new_secret()
    admin.create_key(
        store, name, secret_hash=hash_secret(secret), prefix=display_prefix(secret), **fields
    )
    return secret


def _principal(store: Store, **fields: Any) -> Principal:
    """The Principal the key cache resolves for a new key "k" (`fields` as for _key)."""
    _key(store, "k", **fields)
    cache = KeyCache(store)
    cache.refresh()
    return next(iter(cache._by_hash.values())).principal


def _record(principal: Principal, cost: str | None = "0.000345", status: int = 200) -> CallRecord:
    return CallRecord(
        request_id="r",
        time=time.time(),
        principal=principal,
        route="/v1/chat/completions",
        client_api="chat",
        model="openai:chat_gpt-4o-mini",
        provider="openai",
        answered_by="openai:chat_gpt-4o-mini",
        status=status,
        usage=Usage(1200, 200, 300, 100),
        cost=None if cost is None else Decimal(cost),
        duration_s=0.01,
        overhead_s=0.001,
        ttft_s=None,
        streamed=False,
        disconnected=False,
        error_reason=None,
        estimated=False,
    )


def test_the_cache_resolves_and_reloads_only_on_change(store: Store) -> None:
    cache = KeyCache(store)
    assert cache.refresh() and not cache.active
    admin.create_team(store, "t", models=["openai:*mini*"])
    live = _key(store, "live", team="t", models=["openai:chat_*"])
    gone = _key(store, "gone")
    old = _key(store, "old", expires_at=datetime(2020, 1, 1))
    assert cache.refresh() and cache.active
    assert not cache.refresh()  # nothing moved: no reload
    principal = cache.resolve(live)
    assert (principal.kind, principal.key_name, principal.team_name, principal.models) == (
        "key",
        "live",
        "t",
        ("openai:chat_*",),
    )
    admin.revoke_key(store, "gone")
    assert cache.refresh()
    for secret, says in (
        (gone, "'gone' has been revoked"),
        (old, "'old' expired at 2020-01-01T00:00:00Z"),
        ("sk-gw-nope", "not known"),
    ):
        with pytest.raises(Unauthorized) as caught:
            cache.resolve(secret)
        assert caught.value.code == "invalid_api_key" and says in caught.value.message
    # Team "openai:*mini*" and key "openai:chat_*": both must match.
    assert access.allowed(principal, MODELS["openai:chat_gpt-4o-mini"])
    assert access.allowed(principal, MODELS["openai:chat_o4-mini"])
    assert not access.allowed(principal, MODELS["openai:gpt-4o-mini"])
    assert not access.allowed(principal, MODELS["openai:unpriced"])
    assert access.allowed(MASTER, MODELS["openai:unpriced"])
    with pytest.raises(GatewayError, match="'live' is not allowed to use the model 'gpt'"):
        access.check_model(principal, MODELS["openai:gpt-4o-mini"], "gpt")


def test_globs_match_aliases_and_an_empty_list_allows_nothing(store: Store) -> None:
    cache = KeyCache(store)
    by_alias = _key(store, "alias", models=["gpt-4o-mini-chat"])
    nothing = _key(store, "nothing", models=[])
    cache.refresh()
    assert access.allowed(cache.resolve(by_alias), MODELS["openai:chat_gpt-4o-mini"])
    assert not access.allowed(cache.resolve(by_alias), MODELS["openai:gpt-4o-mini"])
    assert not any(access.allowed(cache.resolve(nothing), model) for model in MODELS.values())


def test_the_writer_batches_only_key_and_master_calls(store: Store) -> None:
    admin.create_team(store, "t")
    principal = _principal(store, team="t")
    writer = LedgerWriter(store)
    writer(_record(principal))  # not enabled yet: dropped on the floor, by design
    writer.enabled = True
    writer(_record(principal))
    writer(_record(principal, cost=None, status=502))
    writer(_record(MASTER, cost="1.5"))
    writer(_record(Principal("anonymous")))
    assert writer.pending() == 3 and writer.flush() == 3 and writer.pending() == 0
    rows = {row["team"]: row for row in spend(store, ["team"])}
    assert (
        rows["t"]["requests"] == 2
        and rows["t"]["cost_usd"] == "0.000345"
        and rows["t"]["unpriced_requests"] == 1
    )
    assert rows[None]["cost_usd"] == "1.5"


def test_a_ledger_row_is_the_call_as_sqlalchemy_reads_it_back(store: Store) -> None:
    """The writer's tuples skip SQLAlchemy's type processing: what Core reads back must
    still be the call, times to the microsecond (a whole second too) included."""
    principal = _principal(store)
    writer = LedgerWriter(store)
    writer.enabled = True
    whole = dataclasses.replace(_record(principal), time=1_796_000_000.0, ttft_s=0.25)
    fraction = dataclasses.replace(
        _record(principal, cost=None, status=502),
        time=1_796_000_000.123456,
        usage=None,
        streamed=True,
        disconnected=True,
        estimated=True,
        error_reason="upstream_timeout",
        request_id="x" * 200,
    )
    writer(whole)
    writer(fraction)
    assert writer.flush() == 2
    with store.engine.connect() as connection:
        rows = connection.execute(select(ledger).order_by(ledger.c.id)).mappings().all()
    first, second = (dict(row) for row in rows)
    assert first["time"] == datetime(2026, 11, 30, 0, 53, 20)
    assert second["time"] == datetime(2026, 11, 30, 0, 53, 20, 123456)
    assert {k: first[k] for k in ("key_id", "team_id", "route", "model", "status")} == {
        "key_id": principal.key_id,
        "team_id": None,
        "route": "/v1/chat/completions",
        "model": "openai:chat_gpt-4o-mini",
        "status": 200,
    }
    assert (first["input_tokens"], first["cached_input_tokens"]) == (1200, 200)
    assert (first["output_tokens"], first["reasoning_tokens"]) == (300, 100)
    assert first["cost_pusd"] == 345_000_000 and first["ttft_ms"] == 250.0
    assert first["duration_ms"] == 10.0 and first["streamed"] is False
    assert second["request_id"] == "x" * 128 and second["cost_pusd"] is None
    assert second["input_tokens"] == 0 and second["ttft_ms"] is None
    assert second["streamed"] and second["disconnected"] and second["estimated"]
    assert second["error_reason"] == "upstream_timeout"
    since = spend(store, ["day"], since=datetime(2026, 11, 30), until=datetime(2026, 12, 1))
    assert since[0]["day"] == "2026-11-30" and since[0]["requests"] == 2


def test_a_flush_writes_what_was_queued_when_it_began(store: Store) -> None:
    """Calls finishing while a flush writes wait for the next one: one transaction per
    flush, not one more for every few rows that arrived meanwhile."""
    principal = _principal(store)
    writer = LedgerWriter(store)
    writer.enabled = True
    driver = store.driver  # the ledger's transactions (gateway.store.core.Store.driver)
    transactions: list[int] = []

    def driver_and_call(write: bool = True) -> Any:
        if not transactions:
            writer(_record(principal))  # a call finishing while the flush writes
        transactions.append(1)
        return driver(write)

    writer(_record(principal))
    writer(_record(principal))
    store.driver = driver_and_call  # type: ignore[method-assign]
    try:
        assert writer.flush() == 2 and len(transactions) == 1 and writer.pending() == 1
    finally:
        store.driver = driver  # type: ignore[method-assign]
    assert writer.flush() == 1 and writer.pending() == 0


@pytest.fixture
def pg_store(postgres: PostgresServer) -> Iterator[tuple[PostgresServer, Store]]:
    store = Store.open(postgres.new_database())
    try:
        yield postgres, store
    finally:
        if not postgres.running:
            postgres.start()
        store.close()


def test_postgresql_going_away_keeps_keys_and_rows(pg_store: tuple[PostgresServer, Store]) -> None:
    server, store = pg_store
    secret = _key(store, "steady")
    cache = KeyCache(store)
    cache.refresh()
    writer = LedgerWriter(store, bound=5)
    writer.enabled = True
    principal = cache.resolve(secret)
    server.stop()
    try:
        assert not cache.refresh()  # cannot read: keeps the table
        assert cache.resolve(secret) == principal
        dropped = dropped_rows_total._value.get()
        for _ in range(7):
            writer(_record(principal))
        assert writer.flush() == 0 and writer.pending() == 5  # kept, oldest first, up to the bound
        assert dropped_rows_total._value.get() - dropped == 2
    finally:
        server.start()
    assert writer.flush() == 5 and writer.pending() == 0
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ledger)).scalar_one() == 5
    admin.revoke_key(store, "steady")
    assert cache.refresh()
    with pytest.raises(Unauthorized, match="revoked"):
        cache.resolve(secret)


def test_an_explicit_database_that_is_missing_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Governance.open(f"sqlite:///{tmp_path}/no/such/dir/gateway.db")
    # The default file not existing yet is not an error: nothing is opened or created.
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        governance = Governance.open("sqlite:///./gateway.db")
        assert governance.store is None and not (tmp_path / "gateway.db").exists()
    finally:
        os.chdir(here)


async def test_features_not_configured_cost_nothing(store: Store) -> None:
    """No key or team in the database: no resolver, no ledger sink, no admission, so a
    request touches neither the store nor the counters. Keys come into force with the
    first key; a key without limits carries no quota, so admission returns at once."""
    from gateway.admission import stage
    from gateway.settings import Settings
    from gateway.state import GatewayState

    state = GatewayState(Settings(), load_registry(REGISTRY))
    sinks = list(state.sinks)
    governance = Governance(str(store.url), store)
    assert governance.cache is not None
    governance.cache.refresh()
    await governance.start(state)
    try:
        assert state.resolver is None and state.admission is None and state.sinks == sinks
        secret = _key(store, "plain")
        await governance._poll_once()
        assert state.resolver is governance.cache and state.admission is not None
        principal = governance.cache.resolve(secret)
        assert stage.quota_of(principal) is None  # stage.admit returns before any counter
    finally:
        await governance.stop()
