"""A full upstream pool is the gateway's own limit, not an upstream failure (issue 16).

Real sockets: the holding upstream (tests/e2e/scale/holding.py) keeps calls open, so a
pool of `max_connections` is really full while the next call comes in. That call gets a
503 `gateway_overloaded` with `retry-after`, is never sent upstream, never counts as an
upstream error and never opens a breaker (these breakers open at the first failure).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway import metrics
from tests.e2e.conftest import start_gateway
from tests.e2e.scale.holding import Holding
from tests.fakes.server import serve

REGISTRY = Path(__file__).parent / "registry"
KEY = "sk-holding-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def holding() -> Iterator[Holding]:
    fake = Holding()
    with serve(fake.app) as url:
        os.environ["TEST_HOLDING_BASE_URL"] = f"{url}/v1"
        os.environ["TEST_HOLDING_API_KEY"] = KEY
        yield fake
        fake.release.set()


@pytest.fixture(scope="module")
def gw(holding: Holding) -> Iterator[str]:
    yield from start_gateway(registry=str(REGISTRY))


@pytest.fixture(autouse=True)
def _fresh(holding: Holding) -> Iterator[None]:
    holding.release.clear()
    holding.seen = 0
    yield
    holding.release.set()


def _body(model: str, stream: bool) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream}


@contextlib.contextmanager
def _held(client: httpx.Client, gw: str, model: str) -> Iterator[Iterator[str]]:
    """A stream whose first chunk is in: its upstream connection is in use until the end."""
    with client.stream("POST", f"{gw}/v1/chat/completions", json=_body(model, True)) as r:
        assert r.status_code == 200
        lines = (line for line in r.iter_lines() if line)
        assert next(lines).startswith("data: ")
        yield lines


def _value(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _upstream_errors(model: str) -> float:
    return sum(
        s.value
        for m in metrics.REGISTRY.collect()
        if m.name == "gateway_upstream_errors"
        for s in m.samples
        if s.name == "gateway_upstream_errors_total" and s.labels["model"] == model
    )


def _assert_local_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "gateway_overloaded"
    assert "gateway" in error["message"] and "upstream was not called" in error["message"]
    assert r.headers["retry-after"] == "1"


def test_a_full_provider_pool_is_a_local_503_that_opens_no_breaker(
    gw: str, holding: Holding
) -> None:
    refused_before = _value("gateway_local_limit_total", {"limit": "provider_pool"})
    with (
        httpx.Client(timeout=15) as client,
        _held(client, gw, "s-pool") as first,
        _held(client, gw, "s-pool") as second,
    ):
        assert holding.held == 2
        # More refusals than the breaker's threshold (1), streamed and not, each retryable
        # by the retry loop (retries: 2) were it an upstream failure.
        for stream in (True, False, True, False):
            _assert_local_503(
                client.post(f"{gw}/v1/chat/completions", json=_body("s-pool", stream))
            )
        assert holding.seen == 2  # the refused calls never reached the upstream, nor were retried
        assert (
            _value("gateway_deployment_state", {"model": "s-pool", "deployment": "small-pool"}) == 0
        )
        assert _upstream_errors("s-pool") == 0
        assert _value("gateway_local_limit_total", {"limit": "provider_pool"}) == refused_before + 4
        holding.release.set()
        assert list(first)[-1] == "data: [DONE]"
        assert list(second)[-1] == "data: [DONE]"
    # The slots came back with the streams: the pool serves again.
    r = httpx.post(f"{gw}/v1/chat/completions", json=_body("s-pool", False), timeout=15)
    assert r.status_code == 200, r.text
    assert _value("gateway_deployment_state", {"model": "s-pool", "deployment": "small-pool"}) == 0


def test_a_full_deployment_sends_the_call_to_one_with_room(gw: str, holding: Holding) -> None:
    with httpx.Client(timeout=15) as client, _held(client, gw, "s-pair") as first:
        # Whichever deployment the first stream took, the second lands on the other one.
        with _held(client, gw, "s-pair") as second:
            assert holding.held == 2
            _assert_local_503(client.post(f"{gw}/v1/chat/completions", json=_body("s-pair", False)))
            assert holding.seen == 2
            assert _value("gateway_local_limit_total", {"limit": "deployment_pool"}) >= 1
            for name in ("a", "b"):
                assert (
                    _value("gateway_deployment_state", {"model": "s-pair", "deployment": name}) == 0
                )
            assert _upstream_errors("s-pair") == 0
            holding.release.set()
            assert list(second)[-1] == "data: [DONE]"
        assert list(first)[-1] == "data: [DONE]"


def test_past_the_client_connection_limit_a_new_connection_gets_a_local_503(
    holding: Holding,
) -> None:
    from tests.e2e.hardening.conftest import gateway_server

    refused_before = _value("gateway_local_limit_total", {"limit": "client_connections"})
    with (
        gateway_server(registry=str(REGISTRY), max_connections=2) as url,
        httpx.Client(timeout=15) as a,
        httpx.Client(timeout=15) as b,
        _held(a, url, "s-pair") as first,
        _held(b, url, "s-pair") as second,
    ):
        # Both connections are serving a stream: none can be closed to make room.
        _assert_local_503(
            httpx.post(f"{url}/v1/chat/completions", json=_body("s-pool", False), timeout=5)
        )
        assert holding.seen == 2
        assert (
            _value("gateway_local_limit_total", {"limit": "client_connections"})
            == refused_before + 1
        )
        holding.release.set()
        assert list(first)[-1] == "data: [DONE]"
        assert list(second)[-1] == "data: [DONE]"
