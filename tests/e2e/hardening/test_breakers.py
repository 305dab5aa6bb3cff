"""One client's errors never take a model out for everyone (issue 13, item 12), over sockets.

The hostile upstream answers what each test queues; every model here lives only in this
module's gateway, so its breakers start closed.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway import metrics
from tests.e2e.conftest import start_gateway
from tests.e2e.hardening.conftest import HARDENING
from tests.fakes.hostile import Hostile


@pytest.fixture(scope="module")
def gw(hostile: Hostile) -> Iterator[str]:
    yield from start_gateway(registry=str(HARDENING))


def _chat(gw: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    return httpx.post(f"{gw}/v1/chat/completions", json=body, timeout=20)


def _state(model: str, deployment: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "gateway_deployment_state", {"model": model, "deployment": deployment}
    )
    assert value is not None, f"no gateway_deployment_state for {model} / {deployment}"
    return value


def test_a_clients_500s_do_not_take_the_model_out(gw: str, hostile: Hostile) -> None:
    # A request the upstream chokes on (a 500, retried twice), from one client, twice.
    hostile.queue.extend(["500"] * 6)
    assert _chat(gw, "h-single").status_code == 500
    assert _chat(gw, "h-single").status_code == 500
    assert len(hostile.seen) == 6
    hostile.seen.clear()
    assert _chat(gw, "h-single").status_code == 200  # everyone else is still served
    assert len(hostile.seen) == 1
    assert _state("h-single", "hostile") == 0


def test_the_last_deployment_is_never_taken_out(gw: str, hostile: Hostile) -> None:
    hostile.queue.extend(["503"] * 6)  # unwell for real: two requests, each retried twice
    assert _chat(gw, "h-single").status_code == 503
    assert _chat(gw, "h-single").status_code == 503
    assert _chat(gw, "h-single").status_code == 200  # sent, not refused for 30 s
    assert _state("h-single", "hostile") == 0


def test_of_two_deployments_at_most_one_is_out(gw: str, hostile: Hostile) -> None:
    hostile.queue.extend(["503", "503"])  # no retries: one request on each deployment
    assert _chat(gw, "h-pair").status_code == 503
    assert _chat(gw, "h-pair").status_code == 503
    assert sorted([_state("h-pair", "a"), _state("h-pair", "b")]) == [0, 1]
    hostile.seen.clear()
    for _ in range(3):
        assert _chat(gw, "h-pair").status_code == 200
    assert len(hostile.seen) == 3


def test_a_request_counts_once_however_many_retries_failed(gw: str, hostile: Hostile) -> None:
    # Three attempts over two deployments (cool-down after 2 failures): one of them fails
    # twice in this one request, which is still one failed request.
    hostile.queue.extend(["503"] * 3)
    assert _chat(gw, "h-pair-retried").status_code == 503
    assert len(hostile.seen) == 3
    assert [_state("h-pair-retried", d) for d in ("a", "b")] == [0, 0]
