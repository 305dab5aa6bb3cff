"""Issue 14: every body and every SSE event the gateway sends is valid against OpenAI's
published schemas (tests/conformance/schemas/openai.json, OpenAPI 2.3.0), for both
client APIs, the four upstream kinds, streamed or not, and each kind of answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conformance.spec import answer_errors, openai_source
from tests.conformance.wire import Answer, call
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, Scripted
from tests.fakes.transport import ASGIUpstream

MODELS = ("oa-chat", "oa-resp", "gm-compat", "gm-native")
SCENARIOS = ("plain", "tools", "forced_tool", "length", "reasoning", "json_schema")
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}  # fmt: skip
CHAT_TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather for a city",
                                                "parameters": PARAMS}},
              {"type": "function", "function": {"name": "time", "parameters": PARAMS}}]  # fmt: skip
FLAT_TOOLS = [{"type": "function", "name": "weather", "description": "Weather for a city",
               "parameters": PARAMS, "strict": False},
              {"type": "function", "name": "time", "parameters": PARAMS, "strict": True}]  # fmt: skip
ANSWER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
                 "required": ["city", "temperature"], "additionalProperties": False}  # fmt: skip


def chat_body(model: str, scenario: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    if scenario in ("tools", "forced_tool"):
        body["tools"] = CHAT_TOOLS
    if scenario == "forced_tool":
        body["tool_choice"] = {"type": "function", "function": {"name": "time"}}
    if scenario == "length":
        body["max_completion_tokens"] = 16
    if scenario == "reasoning":
        body.update(reasoning_effort="low", include_reasoning=True)
    if scenario == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": ANSWER_SCHEMA, "strict": True},
        }
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def responses_body(model: str, scenario: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "input": "Weather in Paris?",
        "instructions": "Be brief.",
    }
    if scenario in ("tools", "forced_tool"):
        body["tools"] = FLAT_TOOLS
    if scenario == "forced_tool":
        body["tool_choice"] = {"type": "function", "name": "time"}
    if scenario == "length":
        body["max_output_tokens"] = 16
    if scenario == "reasoning":
        body["reasoning"] = {"effort": "low", "summary": "auto"}
    if scenario == "json_schema":
        body["text"] = {
            "format": {
                "type": "json_schema",
                "name": "weather",
                "schema": ANSWER_SCHEMA,
                "strict": True,
            }
        }
    if stream:
        body["stream"] = True
    return body


def check_stream_shape(answer: Answer, path: str) -> None:
    if path == "/chat/completions":
        assert answer.done, "a chat stream ends with data: [DONE]"
        return
    numbers = [e["sequence_number"] for e in answer.events]
    assert numbers == list(range(len(numbers))), f"sequence numbers {numbers}"
    assert answer.names == [e["type"] for e in answer.events], (
        "event: lines name the payload's type"
    )
    assert answer.events[-1]["type"] in ("response.completed", "response.incomplete")


# OpenAI's chat API keeps reasoning to itself; the other three give a summary back.
SHOWS_REASONING = ("oa-resp", "gm-compat", "gm-native")


def expected_kind(answer: Answer, path: str, model: str, scenario: str) -> None:
    """The scenario really produced its kind of answer (so each schema path is exercised)."""
    reasoning = scenario == "reasoning" and model in SHOWS_REASONING
    if path == "/chat/completions":
        if answer.events:
            choices = [c["choices"][0] for c in answer.events if c.get("choices")]
            finish = [c["finish_reason"] for c in choices if c["finish_reason"]]
            thought = "".join(c["delta"].get("reasoning_content") or "" for c in choices)
        else:
            finish = [answer.body["choices"][0]["finish_reason"]]
            thought = answer.body["choices"][0]["message"].get("reasoning_content") or ""
        want = {"tools": "tool_calls", "forced_tool": "tool_calls", "length": "length"}.get(
            scenario, "stop"
        )
        assert finish == [want]
        assert bool(thought) == reasoning
        return
    final = answer.events[-1]["response"] if answer.events else answer.body
    kinds = [item["type"] for item in final["output"]]
    if scenario in ("tools", "forced_tool"):
        assert "function_call" in kinds
        if scenario == "forced_tool":
            assert [i["name"] for i in final["output"] if i["type"] == "function_call"] == ["time"]
    elif scenario == "length":
        assert final["status"] == "incomplete"
    elif reasoning:
        assert kinds == ["reasoning", "message"]
        assert final["output"][0]["summary"][0]["type"] == "summary_text"
    else:
        assert kinds == ["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("client_api", ["chat", "responses"])
def test_every_answer_is_valid(
    gateway: str,
    fake_openai: FakeOpenAI,
    fake_gemini: FakeGemini,
    client_api: str,
    model: str,
    scenario: str,
    stream: bool,
) -> None:
    if client_api == "chat":
        path, body = "/chat/completions", chat_body(model, scenario, stream)
    else:
        path, body = "/responses", responses_body(model, scenario, stream)
    answer = call(gateway, path, body)
    assert answer.status == 200, answer.body
    assert not answer.problems, "\n".join(answer.problems[:10])
    if stream:
        check_stream_shape(answer, path)
    expected_kind(answer, path, model, scenario)


@pytest.mark.parametrize("model", ["oa-embed", "gm-embed"])
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_are_valid(
    gateway: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, model: str, encoding: str
) -> None:
    answer = call(
        gateway,
        "/embeddings",
        {"model": model, "input": ["one", "two"], "encoding_format": encoding},
    )
    assert answer.status == 200, answer.body
    assert not answer.problems, answer.problems
    kinds = {type(item["embedding"]) for item in answer.body["data"]}
    assert kinds == ({str} if encoding == "base64" else {list})


def test_models_list_is_valid(gateway: str) -> None:
    body = httpx.get(f"{gateway}/v1/models", timeout=10).json()
    assert answer_errors("models", body) == []
    assert {m["id"] for m in body["data"]} >= set(MODELS)


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/chat/completions", {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404),
    ("/chat/completions", {"model": "oa-chat", "messages": "not a list"}, 400),
    ("/responses", {"model": "gm-native", "input": "x", "previous_response_id": "resp_1"}, 400),
    ("/embeddings", {"model": "oa-chat", "input": "x"}, 400),
])  # fmt: skip
def test_error_bodies_are_valid(gateway: str, path: str, body: dict[str, Any], status: int) -> None:
    answer = call(gateway, path, body)
    assert answer.status == status
    assert not answer.problems, answer.problems


def test_upstream_error_is_a_valid_error(gateway: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(
        Scripted(
            429,
            {
                "error": {
                    "message": "Slow down",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        )
    )
    answer = call(gateway, "/chat/completions", chat_body("oa-chat", "plain", False))
    assert answer.status == 429
    assert not answer.problems, answer.problems


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
@pytest.mark.parametrize("model", ["oa-chat", "oa-resp"])
def test_mid_stream_fault_ends_with_a_valid_error(
    gateway: str, fake_openai: FakeOpenAI, path: str, model: str
) -> None:
    fake_openai.script.append(Scripted(cut_stream_after=4))
    body = (
        chat_body(model, "plain", True)
        if path == "/chat/completions"
        else responses_body(model, "plain", True)
    )
    answer = call(gateway, path, body)
    assert answer.status == 200
    assert not answer.problems, answer.problems
    last = answer.events[-1]
    if path == "/chat/completions":
        assert "error" in last and not answer.done
    else:
        assert last["type"] == "error"
        # The error event continues the stream's numbering (passthrough and bridged alike).
        numbers = [e["sequence_number"] for e in answer.events]
        assert numbers == list(range(len(numbers))), numbers


def test_schemas_come_from_the_recorded_spec_version() -> None:
    source = openai_source()
    assert source["version"] == "2.3.0"
    assert source["commit"] == "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"


def test_the_gateway_calls_the_fakes_in_process(
    gateway_app: FastAPI, gateway: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    """The suite's premise (conftest): its upstream calls go through tests/fakes/transport."""
    pools = gateway_app.state.gateway.upstreams
    for provider, model, fake in (
        ("openai", "oa-chat", fake_openai),
        ("gemini", "gm-native", fake_gemini),
    ):
        transport = pools.transport(provider)
        assert isinstance(transport, ASGIUpstream)
        before, seen = transport.requests, len(fake.requests)
        answer = call(gateway, "/chat/completions", chat_body(model, "plain", False))
        assert answer.status == 200 and answer.problems == []
        assert transport.requests == before + 1 and len(fake.requests) == seen + 1
