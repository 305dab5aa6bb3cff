"""Fallbacks, the context-window check, deployments spread by weight, and circuit breakers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import start_gateway
from tests.e2e.faults import FAULTS, chat, in_flight, sample, wait_for
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, Scripted
from tests.fakes.server import serve

WEST_KEY = "sk-test-second-project-key-5a4b3c2d1e"
LONG = "word " * 400  # about 2,000 bytes and 400 tokens: over a 200-token window


def _error(status: int, message: str, code: str | None = None) -> Scripted:
    return Scripted(
        status,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        },
    )


@pytest.fixture(scope="module")
def west() -> Iterator[FakeOpenAI]:
    """A second OpenAI project: another base URL and another key."""
    fake = FakeOpenAI(api_key=WEST_KEY, text="Hello from the west")
    with serve(fake.app) as url:
        os.environ["TEST_OPENAI2_BASE_URL"] = f"{url}/v1"
        os.environ["TEST_OPENAI2_API_KEY"] = WEST_KEY
        yield fake


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAI, fake_gemini: FakeGemini, west: FakeOpenAI) -> Iterator[str]:
    yield from start_gateway(registry=str(FAULTS))


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    if "west" in request.fixturenames:
        fake: FakeOpenAI = request.getfixturevalue("west")
        fake.requests.clear()
        fake.script.clear()
    yield
    if "gw" in request.fixturenames:
        assert wait_for(lambda: in_flight() == 0)


def _answered(model: str) -> float:
    return sample(
        "gateway_requests_total",
        route="/v1/chat/completions",
        model=model,
        provider="openai",
        status="200",
    )


# ---- fallbacks --------------------------------------------------------------------------


def test_fallback_answers_when_retries_are_spent(gw: str, fake_openai: FakeOpenAI) -> None:
    primary, fallback = _answered("with-fallback"), _answered("fallback-target")
    cost = sample("gateway_cost_usd_total", model="fallback-target", provider="openai")
    fake_openai.script.extend([_error(500, "down"), _error(500, "down")])
    r = chat(gw, "with-fallback", max_tokens=5000)
    assert r.status_code == 200
    assert r.headers["x-gateway-model"] == "fallback-target"
    sent = [req.json for req in fake_openai.requests]
    assert [body["model"] for body in sent] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4.1-nano"]
    # Each model's own policy on the client's original body.
    assert sent[0]["max_completion_tokens"] == 100
    assert sent[2]["max_completion_tokens"] == 5000
    # Counted against the model that answered.
    assert _answered("fallback-target") - fallback == 1
    assert _answered("with-fallback") == primary
    assert sample("gateway_cost_usd_total", model="fallback-target", provider="openai") > cost
    assert (
        sample(
            "gateway_fallbacks_total",
            model="with-fallback",
            fallback="fallback-target",
            reason="http_500",
        )
        >= 1
    )


def test_fallback_for_a_stream(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.extend([_error(503, "down"), _error(503, "down")])
    client = openai.OpenAI(base_url=f"{gw}/v1", api_key="unused", max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="with-fallback",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
    ) as response:
        assert response.headers["x-gateway-model"] == "fallback-target"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "Hello from the fake upstream"


def test_context_length_exceeded_falls_back_at_once(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(
        _error(
            400, "This model's maximum context length is 128000 tokens.", "context_length_exceeded"
        )
    )
    r = chat(gw, "with-fallback")
    assert r.status_code == 200
    assert r.headers["x-gateway-model"] == "fallback-target"
    assert len(fake_openai.requests) == 2  # no retry of a prompt that is too long


def test_gemini_token_limit_falls_back(
    gw: str, fake_gemini: FakeGemini, fake_openai: FakeOpenAI
) -> None:
    fake_gemini.script(
        FakeGemini.error(
            400,
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "INVALID_ARGUMENT",
        )
    )
    r = chat(gw, "gemini-with-fallback")
    assert r.status_code == 200
    assert r.headers["x-gateway-model"] == "fallback-target"
    assert len(fake_gemini.requests) == 1
    assert fake_openai.last.json["model"] == "gpt-4.1-nano"


def test_a_plain_client_error_does_not_fall_back(gw: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(_error(400, "Invalid value for 'temperature'", "invalid_value"))
    r = chat(gw, "with-fallback")
    assert r.status_code == 400
    assert r.headers["x-gateway-model"] == "with-fallback"
    assert len(fake_openai.requests) == 1


def test_when_every_model_fails_the_last_error_is_answered(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.extend(
        [_error(500, "primary down")] * 2 + [_error(502, "fallback down")] * 3
    )
    r = chat(gw, "with-fallback")
    assert r.status_code == 502
    assert r.headers["x-gateway-model"] == "fallback-target"
    assert r.json()["error"]["message"] == "fallback down"
    assert len(fake_openai.requests) == 5


# ---- the context window, before any upstream call ----------------------------------------


def test_input_over_the_context_window_is_a_400_without_a_call(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    r = chat(gw, "small-window", messages=[{"role": "user", "content": LONG}])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "200 tokens" in error["message"]
    assert fake_openai.requests == []


def test_input_within_the_window_goes_through(gw: str, fake_openai: FakeOpenAI) -> None:
    assert (
        chat(gw, "small-window", messages=[{"role": "user", "content": "word " * 60}]).status_code
        == 200
    )
    assert len(fake_openai.requests) == 1


def test_input_over_the_window_goes_to_a_fallback_with_room(
    gw: str, fake_openai: FakeOpenAI
) -> None:
    r = chat(gw, "small-window-with-fallback", messages=[{"role": "user", "content": LONG}])
    assert r.status_code == 200
    assert r.headers["x-gateway-model"] == "fallback-target"
    assert [req.json["model"] for req in fake_openai.requests] == ["gpt-4.1-nano"]


# ---- deployments and breakers -----------------------------------------------------------


def test_requests_are_spread_by_weight(gw: str, fake_openai: FakeOpenAI, west: FakeOpenAI) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(200):
            body = {"model": "spread", "messages": [{"role": "user", "content": "Hi"}]}
            assert client.post(f"{gw}/v1/chat/completions", json=body).status_code == 200
    east_count, west_count = len(fake_openai.requests), len(west.requests)
    assert east_count + west_count == 200
    assert 120 <= east_count <= 180  # weights 3:1, five standard deviations either side of 150
    assert west.last.headers["authorization"] == f"Bearer {WEST_KEY}"  # each deployment its own key


def _state(deployment: str) -> float | None:
    from gateway import metrics

    return metrics.REGISTRY.get_sample_value(
        "gateway_deployment_state", {"model": "spread", "deployment": deployment}
    )


def test_a_failing_deployment_cools_down_and_comes_back(
    gw: str, fake_openai: FakeOpenAI, west: FakeOpenAI
) -> None:
    # A 503 says the deployment is unwell (a 500 may be the request's doing: never counted).
    west.script.extend([Scripted(503, {"error": {"message": "west down"}})] * 2)
    for _ in range(100):  # until west has failed twice; east answers every request meanwhile
        assert chat(gw, "spread").status_code == 200
        if len(west.requests) == 2:
            break
    assert len(west.requests) == 2
    assert _state("west") == 1  # open: taken out
    opened = time.monotonic()
    sent = 0
    while time.monotonic() - opened < 1.0 or sent < 3:  # inside the 1.5 s cool-down
        assert chat(gw, "spread").status_code == 200
        sent += 1
    assert time.monotonic() - opened < 1.5, "too slow to test inside the cool-down"
    assert len(west.requests) == 2  # nothing went west while it cooled down
    time.sleep(max(0.0, 1.6 - (time.monotonic() - opened)))
    for _ in range(100):  # the half-open trial goes west when the weights pick it
        assert chat(gw, "spread").status_code == 200
        if len(west.requests) == 3:
            break
    assert len(west.requests) == 3
    assert _state("west") == 0  # the trial succeeded: back in service
