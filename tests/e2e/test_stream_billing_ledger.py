"""The ledger bills cut streams as /metrics and the hand-computed table do (issue 20):
every stream path hung up after its usage (exact), hung up mid-stream (estimated) and
reset mid-stream (estimated), through a virtual key, rows read back from the database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.accounting import Usage
from gateway.store import Store
from gateway.store.schema import PICO, ledger
from tests.e2e.keys_support import MASTER, cli_json, unique, until
from tests.e2e.scrape import scrape, total
from tests.e2e.test_stream_billing import (
    PATHS,
    SENT,
    TABLE,
    Gateway,
    Path_,
    _hang_up_when_held,
    _read_to_error,
    billing_gateway,
)
from tests.fakes.held import Plan


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, str, dict[str, Any]]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'gateway.db'}"
    # /metrics is scraped without a credential, as the shipped Prometheus does.
    with billing_gateway(database_url=db, master_key=MASTER, metrics_auth="none") as g:
        key = cli_json(db, "keys", "create", "--name", unique("stream-billing"))
        g.key = key["key"]
        until(
            lambda: (
                httpx.get(f"{g.url}/v1/models", headers={"api-key": g.key}, timeout=5).status_code
                == 200
            )
        )
        yield g, db, key


def _rows(db: str, key_id: str) -> list[Any]:
    store = Store.open(db)
    try:
        with store.engine.connect() as connection:
            return list(
                connection.execute(select(ledger).where(ledger.c.key_id == key_id)).mappings()
            )
    finally:
        store.close()


Case = tuple[str, Callable[[Gateway, Path_], None], Plan, bool]
CASES: list[Case] = [
    ("hang-up after the usage", _hang_up_when_held, Plan(tokens=None, then="hold"), False),
    ("hang-up mid-stream", _hang_up_when_held, Plan(tokens=SENT, then="hold"), True),
    ("reset mid-stream", _read_to_error, Plan(tokens=SENT, then="reset"), True),
]


def test_ledger_rows_match_the_table_and_the_metrics(
    keyed: tuple[Gateway, str, dict[str, Any]],
) -> None:
    g, db, key = keyed
    expected: dict[str, tuple[Usage, Decimal, bool]] = {}
    for path in PATHS:
        for _name, drive, plan, estimated in CASES:
            g.fake.reset()
            g.records.clear()
            g.fake.plan(plan)
            drive(g, path)
            assert until(lambda: len(g.records) == 1) is not None
            usage = path.estimate if estimated else path.reported
            expected[g.records[0].request_id] = (
                usage,
                TABLE[path.name][1 if estimated else 0],
                estimated,
            )
    until(lambda: len(_rows(db, key["id"])) == len(expected), timeout=10)
    time.sleep(0.6)  # one more flush: nothing else comes
    rows = _rows(db, key["id"])
    assert len(rows) == len(expected) == len(PATHS) * len(CASES)
    for row in rows:
        usage, cost, estimated = expected[row["request_id"]]
        assert row["estimated"] is estimated, row
        assert (
            row["input_tokens"],
            row["cached_input_tokens"],
            row["output_tokens"],
            row["reasoning_tokens"],
        ) == (usage.input, usage.cached_input, usage.output, usage.reasoning), row
        assert Decimal(row["cost_pusd"]) / PICO == cost, (
            row
        )  # exact: pico-USD holds every digit here
        assert row["cost_pusd"] > 0
    ledger_usd = Decimal(sum(row["cost_pusd"] for row in rows)) / PICO
    assert ledger_usd == sum((cost for _, cost, _ in expected.values()), Decimal(0))
    samples = scrape(g.url)
    assert (
        abs(total(samples, "gateway_key_cost_usd_total", key=key["name"]) - float(ledger_usd))
        < 1e-9
    )
