"""Descriptor capacity, the local-limit answer, and how a full pool and descriptor
exhaustion are told from an upstream failure (gateway.capacity, gateway.upstream.slots)."""

from __future__ import annotations

import errno
import resource

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey
from httpx_aiohttp import AiohttpTransport

from gateway import capacity, metrics
from gateway.registry.schema import DeploymentConfig, ModelEntry, ProviderConfig
from gateway.registry.snapshot import Deployment, Model
from gateway.upstream import retry
from gateway.upstream.client import Upstreams, transport_error
from gateway.upstream.slots import NO_SLOT, LocalLimit, Slots


def _model(pool: int | None, *own: int | None) -> Model:
    provider = ProviderConfig(kind="openai", base_url="http://127.0.0.1:9/v1", max_connections=pool)
    deployments = tuple(
        DeploymentConfig(name=f"d{i}", max_connections=n) for i, n in enumerate(own)
    )
    entry = ModelEntry(
        provider="p", model="m", endpoint="chat_completions", deployments=deployments
    )
    return Model("p:m", entry, "p", provider)


def test_capacity_is_two_descriptors_a_stream_after_the_reserve() -> None:
    assert capacity.stream_capacity(20_000) == (20_000 - capacity.RESERVE) // 2
    assert capacity.stream_capacity(100) == 1


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        now = capacity.raise_descriptor_limit()
        assert now == (hard if hard != resource.RLIM_INFINITY else capacity.UNLIMITED_TARGET)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_local_503_names_the_gateway_and_is_counted() -> None:
    before = (
        metrics.REGISTRY.get_sample_value("gateway_local_limit_total", {"limit": "descriptors"})
        or 0
    )
    error = capacity.overloaded("descriptors", "no descriptor left")
    assert (error.status, error.code, error.headers["retry-after"]) == (
        503,
        "gateway_overloaded",
        "1",
    )
    assert not error.upstream and error.reason == "gateway_overloaded"
    assert "gateway" in error.message
    assert (
        metrics.REGISTRY.get_sample_value("gateway_local_limit_total", {"limit": "descriptors"})
        == before + 1
    )
    assert not retry.retryable(error) and not retry.deployment_failure(error)
    assert not retry.fallback_worthy(error)


def test_slots_count_per_provider_and_per_deployment() -> None:
    slots = Slots()
    model = _model(3, 1, None)
    a, b = model.deployments
    held = slots.take(model, a)
    with pytest.raises(LocalLimit) as refused:
        slots.take(model, a)
    assert refused.value.scope == "deployment"
    more = [slots.take(model, b), slots.take(model, b)]
    with pytest.raises(LocalLimit) as full:
        slots.take(model, b)
    assert full.value.scope == "provider"
    held.release()
    held.release()  # idempotent: a second close gives nothing back twice
    assert slots.in_use("p") == 2
    for slot in more:
        slot.release()
    assert slots.in_use("p") == 0
    assert slots.take(_model(None, None), _model(None, None).deployments[0]) is NO_SLOT


def test_no_descriptor_left_is_a_local_limit_not_a_connect_error() -> None:
    key = ConnectionKey("127.0.0.1", 443, True, True, None, None, None)
    cause = aiohttp.ClientConnectorError(key, OSError(errno.EMFILE, "Too many open files"))
    exc = httpx.ConnectError("x")
    exc.__cause__ = cause
    error = transport_error(exc, "'p'")
    assert isinstance(error, LocalLimit) and error.code == "gateway_overloaded"
    refused = aiohttp.ClientConnectorError(key, OSError(errno.ECONNREFUSED, "refused"))
    exc.__cause__ = refused
    assert transport_error(exc, "'p'").reason == "connect_error"


def test_the_connector_itself_never_queues() -> None:
    # aiohttp raises the same ConnectionTimeoutError for a wait on its pool and for a slow
    # connect, so its limit stays off and the gateway counts connections itself.
    import asyncio

    async def limit() -> int:
        upstreams = Upstreams()
        transport = upstreams.transport("p")
        assert isinstance(transport, AiohttpTransport)
        session = transport.get_client()
        try:
            assert session.connector is not None
            return int(session.connector.limit)
        finally:
            await session.close()
            await upstreams.aclose()

    assert asyncio.run(limit()) == 0


@pytest.mark.parametrize("scope", ["provider", "deployment"])
def test_the_retry_loop_gives_a_local_limit_no_verdict_and_no_retry_in_its_pool(scope: str) -> None:
    import asyncio

    from gateway.upstream.breaker import Breakers

    model = _model(None, None, None)
    tried: list[str] = []
    failures: list[object] = []

    async def attempt(d: Deployment) -> str:
        tried.append(d.name)
        raise LocalLimit(capacity.overloaded("provider_pool", "full"), scope)

    breakers = Breakers()
    with pytest.raises(LocalLimit):
        asyncio.run(retry.run(model, breakers, attempt, on_failure=failures.append))
    assert failures == []  # never reported as a failed upstream attempt
    assert len(tried) == (1 if scope == "provider" else 2)  # never the same pool twice
    for d in model.deployments:
        assert breakers.get(model.key, d.name, model.cooldown).failures == 0
