"""Spend, tokens and the GenAI histograms, checked against /metrics to 1e-9 USD.

Every case scripts the fake upstream with known usage and states the expected cost as
arithmetic done by hand from the test registry's prices (tests/e2e/registry), so the
gateway's cost code is not used to check itself. A streamed call must count exactly
like the same call unstreamed, whatever API pair it goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import start_gateway
from tests.e2e.cost_cases import CASES, RESPONSES_TOOLS, TOOLS, Case
from tests.e2e.scrape import Samples, scrape, total, wait_for
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

UNPRICED = """models:
  openai:unpriced-accounting:
    provider: openai
    model: gpt-unpriced
    endpoint: chat_completions
"""


@pytest.fixture(scope="module")
def accounting_url(
    fake_openai: FakeOpenAI, fake_gemini: FakeGemini, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    custom = tmp_path_factory.mktemp("custom") / "unpriced.yaml"
    custom.write_text(UNPRICED)
    yield from start_gateway(custom_registry=str(custom))


def _call(client: openai.OpenAI, case: Case) -> str | None:
    """Make the call; return the x-gateway-cost-usd header of an unstreamed answer."""
    if case.api == "embeddings":
        embedded = client.embeddings.with_raw_response.create(
            model=case.model, input=["a", "b", "c"]
        )
        return embedded.headers.get("x-gateway-cost-usd")
    extra: dict[str, Any] = {}
    if case.api == "chat":
        if case.tools:
            extra["tools"] = TOOLS
        messages: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": "Weather in Paris?"}
        ]
        if case.stream:
            for _ in client.chat.completions.create(
                model=case.model, messages=messages, stream=True, **extra
            ):
                pass
            return None
        raw = client.chat.completions.with_raw_response.create(
            model=case.model, messages=messages, **extra
        )
        raw.parse()
        return raw.headers.get("x-gateway-cost-usd")
    if case.tools:
        extra["tools"] = RESPONSES_TOOLS
    if case.stream:
        events = list(
            client.responses.create(
                model=case.model, input="Weather in Paris?", stream=True, **extra
            )
        )
        assert events[-1].type == "response.completed"
        return None
    raw = client.responses.with_raw_response.create(
        model=case.model, input="Weather in Paris?", **extra
    )
    raw.parse()
    return raw.headers.get("x-gateway-cost-usd")


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cost_and_tokens_match_hand_computed_values(
    case: Case, accounting_url: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    client = openai.OpenAI(base_url=f"{accounting_url}/v1", api_key="unused", max_retries=0)
    saved = dict(fake_openai.usage)
    if case.openai_usage:
        fake_openai.usage = dict(case.openai_usage)
    fake_gemini.script(*case.gemini)
    before = scrape(accounting_url)
    try:
        header = _call(client, case)
    finally:
        fake_openai.usage = saved
    key = case.model
    after = wait_for(
        accounting_url, lambda s: _delta(s, before, "gateway_requests_total", model=key) >= 1
    )

    route = {
        "chat": "/v1/chat/completions",
        "responses": "/v1/responses",
        "embeddings": "/v1/embeddings",
    }[case.api]
    assert (
        _delta(after, before, "gateway_requests_total", route=route, model=key, status="200") == 1
    )
    assert abs(_delta(after, before, "gateway_cost_usd_total", model=key) - case.cost) < 1e-9
    if header is not None:
        assert abs(float(header) - case.cost) < 1e-9
    for kind, expected in zip(
        ("input", "cached_input", "output", "reasoning"), case.tokens, strict=True
    ):
        assert _delta(after, before, "gateway_tokens_total", model=key, type=kind) == expected, kind

    genai = {
        "gen_ai_request_model": case.native,
        "gen_ai_provider_name": case.provider,
        "gen_ai_operation_name": "embeddings" if case.api == "embeddings" else "chat",
    }
    assert (
        _delta(after, before, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", **genai)
        == case.tokens[0]
    )
    assert (
        _delta(after, before, "gen_ai_client_token_usage_count", gen_ai_token_type="input", **genai)
        == 1
    )
    if case.api != "embeddings":
        assert (
            _delta(
                after, before, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **genai
            )
            == case.tokens[2]
        )
    assert (
        _delta(
            after, before, "gen_ai_client_operation_duration_seconds_count", error_type="", **genai
        )
        == 1
    )
    # The gateway's own time is part of the whole call's.
    overhead = _delta(after, before, "gateway_overhead_seconds_sum", model=key)
    duration = _delta(after, before, "gateway_request_duration_seconds_sum", model=key)
    assert _delta(after, before, "gateway_overhead_seconds_count", model=key) == 1
    assert 0 <= overhead <= duration
    if case.stream:
        assert (
            _delta(after, before, "gen_ai_server_time_to_first_token_seconds_count", **genai) == 1
        )


def test_a_model_without_a_price_is_counted_and_warned_about_once(
    accounting_url: str, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    client = openai.OpenAI(base_url=f"{accounting_url}/v1", api_key="unused", max_retries=0)
    key = "openai:unpriced-accounting"
    before = scrape(accounting_url)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        raw = client.chat.completions.with_raw_response.create(
            model=key, messages=[{"role": "user", "content": "Hi"}]
        )
        for _ in client.chat.completions.create(
            model=key, messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            pass
        after = wait_for(
            accounting_url, lambda s: _delta(s, before, "gateway_requests_total", model=key) >= 2
        )
    assert "x-gateway-cost-usd" not in raw.headers  # not a silent zero either
    assert _delta(after, before, "gateway_unpriced_requests_total", model=key) == 2
    assert _delta(after, before, "gateway_tokens_total", model=key, type="input") == 2 * 1200
    assert total(after, "gateway_cost_usd_total", model=key) == 0
    warnings = [r for r in caplog.records if key in r.getMessage() and "no price" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_unknown_models_do_not_become_labels(accounting_url: str) -> None:
    client = openai.OpenAI(base_url=f"{accounting_url}/v1", api_key="unused", max_retries=0)
    for n in range(3):
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model=f"bogus-model-{n}", messages=[{"role": "user", "content": "x"}]
            )
    samples = scrape(accounting_url)
    assert not [k for k in samples if any("bogus-model" in v for _, v in k[1])]
    assert total(samples, "gateway_requests_total", model="", provider="", status="404") >= 3
