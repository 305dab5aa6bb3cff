"""The store on a real SQLite file and a real PostgreSQL server: teams, keys, the change
counter, the ledger and spend sums, migrations and start-up errors."""

from __future__ import annotations

import multiprocessing
import random
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypedDict, Unpack

import pytest
from sqlalchemy import inspect, select

from gateway.counters.limits import Limits
from gateway.keys.secret import display_prefix, hash_secret, new_secret
from gateway.store import ConflictError, LedgerRow, NotFoundError, Store, StoreError, admin
from gateway.store.ledger import insert_rows, spend, sqlite_time, to_pusd, usd
from gateway.store.records import Key
from gateway.store.schema import ledger


class KeyFields(TypedDict, total=False):
    """What a test may give create_key; the first three as a caller sends them, of any shape."""

    models: object
    metadata: object
    tags: object
    expires_at: datetime | None
    limits: Limits | None


def _key(
    store: Store, name: str, team: str | None = None, **fields: Unpack[KeyFields]
) -> tuple[str, Key]:
    secret = new_secret()
    key = admin.create_key(
        store,
        name,
        secret_hash=hash_secret(secret),
        prefix=display_prefix(secret),
        team=team,
        **fields,
    )
    return secret, key


def test_schema_is_at_head_and_reopening_is_a_no_op(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"teams", "keys", "ledger", "changes", "alembic_version"} <= tables
    again = Store.open(str(store.url.render_as_string(hide_password=False)))
    assert again.version() == store.version() == 0
    again.close()


def test_teams_crud_and_the_change_counter(store: Store) -> None:
    team = admin.create_team(
        store,
        "search",
        models=["openai:*", "gemini:gemini-2.5-flash"],
        metadata={"cost_centre": "CC-1"},
    )
    assert team.id.startswith("team_") and team.models == ("openai:*", "gemini:gemini-2.5-flash")
    assert store.version() == 1
    with pytest.raises(ConflictError, match="already exists"):
        admin.create_team(store, "search")
    assert admin.get_team(store, "search") == admin.get_team(store, team.id)
    updated = admin.update_team(store, "search", name="search-2", models=None)
    assert (
        updated.name == "search-2"
        and updated.models is None
        and updated.metadata == {"cost_centre": "CC-1"}
    )
    assert store.version() == 2
    assert [t.name for t in admin.list_teams(store)] == ["search-2"]
    admin.delete_team(store, team.id)
    assert admin.list_teams(store) == [] and store.version() == 3
    with pytest.raises(NotFoundError, match="no team 'search-2'"):
        admin.get_team(store, "search-2")


def test_keys_crud_store_only_a_hash(store: Store) -> None:
    admin.create_team(store, "ads", models="openai:*")
    secret, key = _key(
        store,
        "ads-prod",
        team="ads",
        models=["openai:gpt-4o*"],
        tags="prod,eu",
        metadata={"owner": "jane"},
    )
    assert secret.startswith("sk-gw-") and len(secret) == 38
    assert key.prefix == secret[:10] and key.secret_hash == hash_secret(secret)
    assert (
        key.team_name == "ads" and key.team_models == ("openai:*",) and key.tags == ("prod", "eu")
    )
    public = key.public()
    assert secret not in str(public) and key.secret_hash not in str(public)
    with pytest.raises(ConflictError):
        _key(store, "ads-prod")
    with pytest.raises(NotFoundError, match="no team 'nope'"):
        _key(store, "other", team="nope")
    moved = admin.update_key(
        store, "ads-prod", team=None, models=None, expires_at=datetime(2030, 1, 1, tzinfo=UTC)
    )
    assert (
        moved.team_id is None and moved.models is None and moved.expires_at == datetime(2030, 1, 1)
    )
    revoked = admin.revoke_key(store, key.id)
    assert revoked.revoked and revoked.revoked_at is not None
    version = store.version()
    admin.revoke_key(store, key.id)  # idempotent: no change, no reload
    assert store.version() == version
    assert [k.name for k in admin.list_keys(store)] == ["ads-prod"]


def test_a_team_with_live_keys_cannot_be_deleted(store: Store) -> None:
    admin.create_team(store, "ml")
    _, key = _key(store, "ml-1", team="ml")
    with pytest.raises(ConflictError, match="not revoked"):
        admin.delete_team(store, "ml")
    admin.revoke_key(store, key.id)
    admin.delete_team(store, "ml")
    assert admin.get_key(store, key.id).team_id is None


@pytest.mark.parametrize(
    "bad", [{"models": [""]}, {"models": "a,,b"}, {"metadata": ["x"]}, {"tags": [1]}]
)
def test_bad_fields_are_refused_with_a_sentence(store: Store, bad: KeyFields) -> None:
    with pytest.raises(StoreError) as caught:
        _key(store, "k", **bad)
    assert "key" in str(caught.value)


def test_names_that_look_like_ids_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="kept for ids"):
        admin.create_team(store, "team_x")


def _row(
    time: datetime,
    key_id: str | None,
    team_id: str | None,
    model: str,
    cost: int | None,
    tokens: tuple[int, int, int, int] = (10, 2, 5, 1),
) -> LedgerRow:
    return LedgerRow(
        time,
        "req",
        key_id,
        team_id,
        "/v1/chat/completions",
        model,
        model,
        "openai",
        200,
        *tokens,
        cost,
        12.5,
        None,
        False,
        False,
        False,
        None,
    )


def test_spend_sums_exactly_by_every_grouping(store: Store) -> None:
    admin.create_team(store, "a")
    admin.create_team(store, "b")
    _, ka = _key(store, "ka", team="a")
    _, kb = _key(store, "kb", team="b")
    day1, day2 = datetime(2026, 11, 30, 23, 59, 59), datetime(2026, 12, 1, 0, 0, 1)
    # Costs that binary floats cannot add exactly: 0.1 + 0.2 USD and sub-nano amounts.
    rows = [
        _row(day1, ka.id, ka.team_id, "openai:gpt-4o", to_pusd(0.1)),
        _row(day2, ka.id, ka.team_id, "openai:gpt-4o", to_pusd(0.2)),
        _row(day2, kb.id, kb.team_id, "openai:gpt-4o-mini", to_pusd(Decimal("0.000000000001"))),
        _row(day2, kb.id, kb.team_id, "openai:gpt-4o-mini", None),  # unpriced
        # refused (no usage, so no cost): a request, but not an unpriced one
        _row(day2, kb.id, kb.team_id, "openai:gpt-4o-mini", None, (0, 0, 0, 0)),
        _row(day2, None, None, "openai:gpt-4o", to_pusd(Decimal("1.5"))),  # the master key
    ]
    insert_rows(store, rows)
    total = spend(store)
    assert total == [
        {
            "requests": 6,
            "input_tokens": 50,
            "cached_input_tokens": 10,
            "output_tokens": 25,
            "reasoning_tokens": 5,
            "unpriced_requests": 1,
            "cost_usd": "1.800000000001",
        }
    ]
    by_team = {row["team"]: row["cost_usd"] for row in spend(store, ["team"])}
    assert by_team == {"a": "0.3", "b": "0.000000000001", None: "1.5"}
    by_key_day = [(row["key"], row["day"], row["cost_usd"]) for row in spend(store, ["key", "day"])]
    assert by_key_day == [
        (None, "2026-12-01", "1.5"),
        ("ka", "2026-11-30", "0.1"),
        ("ka", "2026-12-01", "0.2"),
        ("kb", "2026-12-01", "0.000000000001"),
    ]
    ranged = spend(store, ["model"], since=datetime(2026, 12, 1), until=datetime(2026, 12, 2))
    assert {row["model"]: row["requests"] for row in ranged} == {
        "openai:gpt-4o": 2,
        "openai:gpt-4o-mini": 3,
    }
    unpriced = {row["model"]: row["unpriced_requests"] for row in ranged}
    assert unpriced == {"openai:gpt-4o": 0, "openai:gpt-4o-mini": 1}  # not the refused one
    with pytest.raises(StoreError, match="cannot group spend by 'colour'"):
        spend(store, ["colour"])


def test_cost_conversion_is_exact() -> None:
    assert to_pusd(0.0001234) == 123_400_000
    assert to_pusd(Decimal("2.5")) == 2_500_000_000_000
    assert to_pusd(None) is None
    assert usd(123_400_000) == "0.0001234" and usd(0) == "0" and usd(10**12 * 3) == "3"


def _write_ledger(url: str, worker: int, count: int) -> None:
    store = Store.open(url)
    for i in range(count):
        insert_rows(
            store, [_row(datetime(2026, 12, 1), f"k{worker}", None, "m", 1, (1, 0, 0, 0))] * 5
        )
        if i % 10 == 0:
            admin.create_team(store, f"w{worker}-{i}")
    store.close()


def test_several_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context("spawn")
    # Fresh file: every process migrates it at once; then all write at once.
    workers = [context.Process(target=_write_ledger, args=(url, w, 40)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    store = Store.open(url)
    with store.engine.connect() as connection:
        assert len(connection.execute(select(ledger.c.id)).all()) == 4 * 40 * 5
    assert store.version() == 4 * 4
    assert store.engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_unreachable_postgresql_is_one_clear_sentence() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        Store.open(f"postgresql://gw:secret-pw@127.0.0.1:{port}/gw")
    message = str(caught.value)
    assert message.startswith(f"cannot use the database postgresql://gw:***@127.0.0.1:{port}/gw")
    assert "secret-pw" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://x/y", "not supported"),
        ("sqlite://", "in-memory"),
        ("not a url", "not a database URL"),
        ("sqlite:////no/such/folder/x.db", "does not exist"),
    ],
)
def test_bad_urls(url: str, says: str) -> None:
    with pytest.raises(StoreError, match=says):
        Store.open(url)


def test_expiry_is_compared_in_utc(store: Store) -> None:
    _, key = _key(store, "soon", expires_at=datetime.now(UTC) + timedelta(hours=1))
    now = datetime.now(UTC).replace(tzinfo=None)
    assert not key.expired(now) and key.expired(now + timedelta(hours=2))


def test_the_ledgers_sqlite_times_are_what_fromtimestamp_gives() -> None:
    """sqlite_time formats a second once and rounds the microseconds itself: it must agree
    with datetime.fromtimestamp to the microsecond, halves and rounding up into the next
    second included, in SQLAlchemy's SQLite text."""
    rng = random.Random(12)
    cases = [1_796_000_000.0, 1_796_000_000.5, 1_796_000_000.9999995, 1_796_000_000.0000015]
    cases += [rng.uniform(1.7e9, 1.9e9) for _ in range(10_000)]
    cases += [round(rng.uniform(1.7e9, 1.9e9), 6) + 5e-7 for _ in range(10_000)]
    cases.sort()  # one second after another, as a flush sees them, and back again below
    times = sqlite_time
    for t in [*cases, *reversed(cases)]:
        expected = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
        assert times(t) == expected.strftime("%Y-%m-%d %H:%M:%S.%f"), t
    assert times(1_796_000_000.9999996) == "2026-11-30 00:53:21.000000"
