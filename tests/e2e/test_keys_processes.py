"""Virtual keys across processes: `gateway serve` subprocesses sharing one database see a
create and a revoke within 2 s; `--workers 2` on SQLite and two gateways on PostgreSQL
keep one ledger equal to their summed /metrics, and a graceful stop loses no row."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.ledger import spend
from tests.e2e.conftest import REGISTRY
from tests.e2e.keys_support import (
    ROOT,
    chat,
    cli,
    cli_json,
    database,
    serve_process,
    stop,
    unique,
    until,
)
from tests.e2e.scrape import scrape, total
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import free_port
from tests.servers import PostgresServer

MINI = "openai:chat_gpt-4o-mini"
MINI_COST = Decimal("0.000345")  # (1000 x 0.15 + 200 x 0.075 + 300 x 0.60) / 1M, the fake's usage


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database(request, tmp_path)


@pytest.fixture
def two(db: str, fake_openai: FakeOpenAI) -> Iterator[list[str]]:
    processes = []
    try:
        for _ in range(2):
            processes.append(serve_process(db))
        yield [base for _, base in processes]
    finally:
        for process, _ in processes:
            stop(process)


def _seen_within(bases: list[str], secret: str, status: int) -> float:
    """The seconds until every gateway answers `status` to this key."""
    start = time.monotonic()
    for base in bases:

        def answers(base: str = base) -> bool:
            return chat(base, secret, MINI).status_code == status

        until(answers, timeout=3, step=0.02)
    return time.monotonic() - start


def test_create_and_revoke_are_seen_by_every_process_within_2_s(db: str, two: list[str]) -> None:
    key = cli_json(db, "keys", "create", "--name", unique("roaming"))
    assert _seen_within(two, key["key"], 200) < 2.0
    cli(db, "keys", "update", key["name"], "--models", "openai:gpt-*")
    assert _seen_within(two, key["key"], 403) < 2.0
    cli(db, "keys", "revoke", key["id"])
    assert _seen_within(two, key["key"], 401) < 2.0
    for base in two:
        assert "revoked" in chat(base, key["key"], MINI).json()["error"]["message"]


def _calls(bases: list[str], secret: str, n: int) -> list[int]:
    with ThreadPoolExecutor(6) as pool:
        return list(
            pool.map(
                lambda i: chat(bases[i % len(bases)], secret, MINI, stream=i % 2 == 0).status_code,
                range(n),
            )
        )


def _ledger_check(db: str, team: str, metrics_bases: list[str], n: int) -> None:
    store = Store.open(db)
    try:
        (row,) = [r for r in spend(store, ["team"]) if r["team"] == team]
    finally:
        store.close()
    assert row["requests"] == n and Decimal(row["cost_usd"]) == MINI_COST * n
    counted = sum(
        total(scrape(base), "gateway_key_cost_usd_total", team=team) for base in metrics_bases
    )
    assert abs(counted - float(MINI_COST * n)) < 1e-9
    requests = sum(
        total(scrape(base), "gateway_key_requests_total", team=team, status="200")
        for base in metrics_bases
    )
    assert requests == n


def _count(db: str, team: str) -> int:
    store = Store.open(db)
    try:
        return sum(r["requests"] for r in spend(store, ["team"]) if r["team"] == team)
    finally:
        store.close()


def _metered(db: str, bases: list[str], n: int) -> None:
    """n calls spread over the gateways, after one probe per gateway: ledger = /metrics."""
    team = unique("shared")
    cli(db, "teams", "create", team)
    key = cli_json(db, "keys", "create", "--name", unique("meter"), "--team", team)
    created = time.monotonic()
    _seen_within(bases, key["key"], 200)  # one 200 per gateway
    time.sleep(max(0.0, created + 2.0 - time.monotonic()))  # every worker has it by now
    assert _calls(bases, key["key"], n) == [200] * n
    until(lambda: _count(db, team) == n + len(bases), timeout=5)
    _ledger_check(db, team, bases, n + len(bases))


def test_two_gateways_on_postgresql_share_one_ledger(
    postgres: PostgresServer, fake_openai: FakeOpenAI
) -> None:
    db = postgres.new_database()
    processes = [serve_process(db) for _ in range(2)]
    try:
        _metered(db, [base for _, base in processes], 24)
    finally:
        for process, _ in processes:
            stop(process)


def test_workers_2_on_sqlite_share_one_ledger_and_stop_without_loss(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    cli(db, "teams", "list")  # creates the file: the gateway then opens it at start
    process, base = serve_process(db, "--workers", "2")
    try:
        _metered(db, [base], 30)
        # Revoked: within 2 s neither worker takes the key (fresh connections reach both).
        key = cli_json(db, "keys", "create", "--name", unique("short-lived"))
        _seen_within([base], key["key"], 200)
        cli(db, "keys", "revoke", key["name"])
        time.sleep(2.0)
        assert {chat(base, key["key"], MINI).status_code for _ in range(20)} == {401}
        # A graceful stop right after calls: the last flush writes them all.
        team = unique("last-calls")
        cli(db, "teams", "create", team)
        last = cli_json(db, "keys", "create", "--name", unique("last"), "--team", team)
        time.sleep(2.0)
        _seen_within([base], last["key"], 200)
        until(lambda: _count(db, team) == 1, timeout=5)
        assert _calls([base], last["key"], 12) == [200] * 12
    finally:
        stop(process)
    assert _count(db, team) == 13


def test_an_unreachable_database_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"postgresql://gw:hunter2@127.0.0.1:{free_port()}/gw"  # nothing listens there
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    for argv in (
        ["serve", "--port", str(free_port()), "--registry", str(REGISTRY)],
        ["keys", "list"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
        )
        assert result.returncode == 1, argv
        lines = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(
            "gateway: error: cannot use the database postgresql://gw:***@127.0.0.1"
        )
        assert "hunter2" not in result.stderr
