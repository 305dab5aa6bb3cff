"""Upstream faults, each mapped to its documented outcome, over real sockets.

Retries (and their counts, on what the fake received), timeouts, broken and stalled
streams, transport failures below HTTP, and a client that hangs up. Fallbacks,
deployments and breakers are in test_fallbacks.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway import metrics
from tests.e2e.conftest import start_gateway
from tests.e2e.faults import FAULTS, chat, errors, in_flight, wait_for
from tests.fakes.faults import RawFault, refused_url, unaccepted_url
from tests.fakes.gemini import FakeGemini, Reply, default_stream
from tests.fakes.openai import FakeOpenAI, Scripted


def _error(status: int, message: str, code: str | None = None) -> Scripted:
    return Scripted(
        status, {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    )


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> Iterator[str]:
    yield from start_gateway(registry=str(FAULTS))


@pytest.fixture
def sdk(gw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw}/v1", api_key="unused", max_retries=0)


@pytest.fixture(autouse=True)
def _nothing_left_in_flight(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "gw" in request.fixturenames:
        assert wait_for(lambda: in_flight() == 0), "a request was left in flight"


# ---- HTTP errors: retried or not --------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_until_it_succeeds(gw: str, fake_openai: FakeOpenAI, status: int) -> None:
    fake_openai.script.extend([_error(status, "flaky"), _error(status, "flaky")])
    r = chat(gw, "chat")
    assert r.status_code == 200
    assert len(fake_openai.requests) == 3  # two failures, then the answer


def test_5xx_after_every_retry_keeps_the_upstreams_answer(gw: str, fake_openai: FakeOpenAI) -> None:
    before = errors("chat", "http_502")
    fake_openai.script.extend([_error(502, "bad gateway upstream")] * 3)
    r = chat(gw, "chat")
    assert r.status_code == 502
    assert r.json()["error"]["message"] == "bad gateway upstream"
    assert len(fake_openai.requests) == 3
    assert errors("chat", "http_502") - before == 3  # every failed attempt is counted


def test_retry_count_comes_from_the_model(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.extend([_error(500, "boom")] * 3)
    assert chat(gw, "no-retries").status_code == 500
    assert len(fake_openai.requests) == 1


def test_429_waits_for_a_short_retry_after(gw: str, fake_openai: FakeOpenAI) -> None:
    limited = _error(429, "Rate limit reached", "rate_limit_exceeded")
    limited.headers = {"retry-after": "1"}
    fake_openai.script.append(limited)
    started = time.monotonic()
    r = chat(gw, "chat")
    assert r.status_code == 200
    assert time.monotonic() - started >= 1.0
    assert len(fake_openai.requests) == 2


def test_429_with_a_long_retry_after_goes_back_to_the_client(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    limited = _error(429, "Rate limit reached", "rate_limit_exceeded")
    limited.headers = {"retry-after": "30"}
    fake_openai.script.append(limited)
    started = time.monotonic()
    r = chat(gw, "chat")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "30"
    assert time.monotonic() - started < 3  # answered at once, not after 30 s
    assert len(fake_openai.requests) == 1


def test_a_client_error_is_not_retried(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(_error(400, "Invalid 'messages'", "invalid_value"))
    r = chat(gw, "chat")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_value"
    assert len(fake_openai.requests) == 1


# ---- answers that are not what they claim -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"id": "chatcmpl-1", "choices": [', "application/json"),
        (b"<html><body>Service temporarily unavailable</body></html>", "text/html"),
    ],
)
def test_a_200_that_is_not_json_is_a_502(
    gw: str, fake_openai: FakeOpenAI, raw: bytes, content_type: str
) -> None:
    fake_openai.script.append(Scripted(200, raw=raw, content_type=content_type))
    r = chat(gw, "chat")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_invalid_response"
    assert len(fake_openai.requests) == 1


def test_a_stream_answered_with_html_is_a_plain_502(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(
        Scripted(200, raw=b"<html>maintenance</html>", content_type="text/html")
    )
    r = chat(gw, "chat", stream=True)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_invalid_response"


# ---- timeouts ---------------------------------------------------------------------------


def test_a_slow_upstream_is_a_504_and_not_retried(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(Scripted(delay_s=2.0))  # the provider's read timeout is 1 s
    started = time.monotonic()
    r = chat(gw, "chat")
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert r.json()["error"]["type"] == "api_error"
    assert 0.9 < time.monotonic() - started < 3  # one timeout, not three
    assert len(fake_openai.requests) == 1


def test_a_models_timeout_overrides_the_providers(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(Scripted(delay_s=1.5))
    assert chat(gw, "slow-model").status_code == 200


def test_a_stalled_stream_ends_with_a_timeout_frame(
    gw: str, sdk: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.append(Scripted(chunk_delay_s=1.5))  # headers at once, then silence
    stream = sdk.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "did not answer in time" in info.value.message


# ---- broken streams ---------------------------------------------------------------------


def test_chat_stream_cut_raises_and_counts(sdk: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    before = errors("chat", "connection_error")
    fake_openai.script.append(Scripted(cut_stream_after=3))
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert errors("chat", "connection_error") - before == 1
    assert len(fake_openai.requests) == 1  # a started stream is never retried


def test_responses_stream_cut_raises_and_counts(
    sdk: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    before = errors("responses", "connection_error")
    fake_openai.script.append(Scripted(cut_stream_after=4))
    with pytest.raises(openai.APIError):
        list(sdk.responses.create(model="responses", input="Hi", stream=True))
    assert errors("responses", "connection_error") - before == 1


def test_bridged_stream_cut_raises_and_counts(sdk: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    before = errors("responses", "connection_error")
    fake_openai.script.append(Scripted(cut_stream_after=4))  # chat client, Responses upstream
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(
                model="responses", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert errors("responses", "connection_error") - before == 1


def test_gemini_native_stream_cut_raises_and_counts(
    sdk: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    before = errors("gemini-native", "connection_error")
    fake_gemini.script(Reply(chunks=default_stream("gemini-2.5-flash"), cut_after=1))
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(
                model="gemini-native", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert errors("gemini-native", "connection_error") - before == 1


# ---- failures below HTTP ----------------------------------------------------------------


def _broken(gw: str, url: str, **body: Any) -> httpx.Response:
    os.environ["TEST_FAULT_BASE_URL"] = url
    return chat(gw, "broken", **body)


def test_a_refused_connection_is_a_502_after_retries(gw: str) -> None:
    before = errors("broken", "connect_error")
    with refused_url() as url:
        r = _broken(gw, url)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unreachable"
    assert errors("broken", "connect_error") - before == 3


def test_a_hang_up_before_the_answer_is_retried(gw: str) -> None:
    with RawFault("hangup") as fault:
        r = _broken(gw, fault.url)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_connection_error"
    assert fault.connections == 3


def test_an_answer_that_is_not_http_is_a_502(gw: str) -> None:
    with RawFault("garbage") as fault:
        r = _broken(gw, fault.url)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_invalid_response"
    assert fault.connections == 1


def test_no_answer_at_all_is_a_504(gw: str) -> None:
    with RawFault("silent") as fault:
        r = _broken(gw, fault.url, stream=True)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert fault.connections == 1


def test_a_connect_timeout_is_a_504_after_retries(gw: str) -> None:
    before = errors("broken", "connect_timeout")
    with unaccepted_url() as url:
        r = _broken(gw, url)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert "connect" in r.json()["error"]["message"]
    assert errors("broken", "connect_timeout") - before == 3


# ---- a client that hangs up ---------------------------------------------------------------


def test_a_client_leaving_a_stream_cancels_the_upstream_call(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.append(Scripted(chunk_delay_s=0.3))
    disconnects = fake_openai.disconnects
    closed_before = metrics.requests_total.labels(
        "/v1/chat/completions", "chat", "openai", "499"
    )._value.get()
    body = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with httpx.stream("POST", f"{gw}/v1/chat/completions", json=body, timeout=5) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the first frame, then hang up
    assert wait_for(lambda: fake_openai.disconnects == disconnects + 1), (
        "the upstream stream was not closed"
    )
    assert wait_for(lambda: in_flight() == 0)
    closed = metrics.requests_total.labels(
        "/v1/chat/completions", "chat", "openai", "499"
    )._value.get()
    assert closed - closed_before == 1


def test_a_client_leaving_while_the_upstream_thinks_cancels_it(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.append(Scripted(delay_s=2.5))  # slow-model waits 3 s: only the client leaves
    disconnects = fake_openai.disconnects
    with pytest.raises(httpx.ReadTimeout):
        chat(gw, "slow-model", timeout=0.2)
    assert wait_for(lambda: fake_openai.disconnects == disconnects + 1, timeout=1.5), (
        "the upstream call went on"
    )
    assert in_flight() == 0


def test_a_stream_ended_early_is_one_reason_on_every_wire(
    sdk: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    """A Gemini stream that closes cleanly before any finishReason is truncated: counted as
    reason "stream_truncated", like a chat or Responses stream (no second spelling)."""
    before = errors("gemini-native", "stream_truncated")
    fake_gemini.script(Reply(chunks=default_stream("gemini-2.5-flash")[:1]))
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(
                model="gemini-native", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert wait_for(lambda: errors("gemini-native", "stream_truncated") - before == 1)
    assert errors("gemini-native", "upstream_stream_truncated") == 0
