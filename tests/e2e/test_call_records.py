"""One CallRecord per client request, from the one place a call is recorded (Exchange.finish),
whatever happened on the way: retries, a fallback, a stream, a refusal at the edge."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from gateway.accounting import CallRecord, Handover, UpstreamFailure
from gateway.app import create_app
from gateway.auth.principal import MASTER, Principal
from gateway.errors import Unauthorized
from gateway.settings import Settings
from tests.e2e.faults import FAULTS, wait_for
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, Scripted
from tests.fakes.server import serve

MASTER_KEY = "gw-master-key-records"
TEAM = Principal("key", key_id="k1", key_name="ci", team_id="t1", team_name="platform")


class Resolver:
    """A KeyResolver: one known key, one revoked."""

    def resolve(self, token: str) -> Principal:
        if token == "sk-gw-known":
            return TEAM
        reason = "revoked" if token == "sk-gw-revoked" else "unknown"
        raise Unauthorized(f"This gateway key is {reason}.", code="invalid_api_key")


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> Iterator[tuple[str, list[CallRecord]]]:
    app = create_app(Settings(registry=str(FAULTS), watch=False, master_key=MASTER_KEY))
    records: list[CallRecord] = []
    state = app.state.gateway
    state.sinks.append(records.append)
    state.resolver = Resolver()
    with serve(app) as url:
        yield url, records


def _chat(
    url: str, model: str, key: str = MASTER_KEY, header: str = "authorization", **extra: object
) -> httpx.Response:
    value = f"Bearer {key}" if header == "authorization" else key
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers={header: value}, timeout=10)


def _one(records: list[CallRecord], rid: str) -> CallRecord:
    assert wait_for(lambda: any(r.request_id == rid for r in records))
    mine = [r for r in records if r.request_id == rid]
    assert len(mine) == 1, mine
    return mine[0]


def test_retries_and_a_fallback_are_one_record(
    gw: tuple[str, list[CallRecord]], fake_openai: FakeOpenAI
) -> None:
    url, records = gw
    down = Scripted(
        500, {"error": {"message": "down", "type": "server_error", "param": None, "code": None}}
    )
    fake_openai.script.extend([down, down])
    r = _chat(url, "with-fallback")
    assert r.status_code == 200
    rec = _one(records, r.headers["x-request-id"])
    assert rec.principal is MASTER
    assert (rec.model, rec.answered_by, rec.provider, rec.status) == (
        "with-fallback",
        "fallback-target",
        "openai",
        200,
    )
    assert rec.failures == (UpstreamFailure("with-fallback", "openai", "http_500"),) * 2
    assert rec.handovers == (Handover("with-fallback", "fallback-target", "http_500"),)
    assert rec.usage is not None and rec.usage.input > 0
    assert rec.cost is not None and f"{rec.cost:.10f}".rstrip("0") == r.headers[
        "x-gateway-cost-usd"
    ].rstrip("0")
    assert (
        rec.error_reason is None and not rec.streamed and not rec.disconnected and not rec.estimated
    )


def test_a_stream_is_one_record_when_it_ends(
    gw: tuple[str, list[CallRecord]], fake_openai: FakeOpenAI
) -> None:
    url, records = gw
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="fallback-target",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
    ) as response:
        rid = response.headers["x-request-id"]
        assert "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    rec = _one(records, rid)
    assert rec.streamed and rec.status == 200 and rec.ttft_s is not None and rec.usage is not None


def test_virtual_keys_resolve_to_their_principal(
    gw: tuple[str, list[CallRecord]], fake_openai: FakeOpenAI
) -> None:
    url, records = gw
    for header in ("authorization", "x-api-key", "api-key"):
        r = _chat(url, "fallback-target", key="sk-gw-known", header=header)
        assert r.status_code == 200, header
        assert _one(records, r.headers["x-request-id"]).principal == TEAM
    r = _chat(url, "fallback-target", key="sk-gw-revoked")
    assert r.status_code == 401
    assert r.json()["error"] == {
        "message": "This gateway key is revoked.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
    rec = _one(records, r.headers["x-request-id"])
    assert rec.status == 401 and rec.model is None and rec.served is None
    assert httpx.get(f"{url}/v1/models", headers={"x-api-key": "sk-gw-unknown"}).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers={"api-key": "sk-gw-known"}).status_code == 200


def test_a_refusal_before_any_model_is_one_record(gw: tuple[str, list[CallRecord]]) -> None:
    url, records = gw
    r = _chat(url, "no-such-model")
    assert r.status_code == 404
    rec = _one(records, r.headers["x-request-id"])
    assert (rec.status, rec.model, rec.error_reason) == (404, None, "model_not_found")
