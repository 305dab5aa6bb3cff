"""Issue 19: every request the gateway sends upstream is one the provider's published
request schema allows, refusing unknown fields as the live APIs do (tests/conformance/
spec.py: OpenAI's OpenAPI 2.3.0 request schemas, Gemini's v1beta request messages, and
the live rules beside them), for a broad matrix of client requests: tool schemas as
pydantic and zod write them, images, multi-turn tool use, reasoning settings, Gemini 3
thought-signature round trips, conversations continued across providers, and a
fallback from Gemini to OpenAI.

The fakes refuse such bodies themselves (and the fixtures fail a test on any refusal);
each test also validates what was recorded, so a fake that stopped checking would not
make this pass."""

from __future__ import annotations

import base64
import os
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam, ResponseInputItemParam
from pydantic import BaseModel, Field

from tests.conformance.spec import (
    compat_request_errors,
    gemini_request_errors,
    openai_request_errors,
)
from tests.fakes.gemini import SIGNATURE, FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.sdk import function_call, items_back, sent_back

MODELS = ("oa-chat", "oa-resp", "gm-compat", "gm-native")
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


# ------------------------------------------------------------------ tool schemas


class Address(BaseModel):
    street: str
    city: str = Field(description="City name")
    zip: str | None = None


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Order(BaseModel):
    address: Address
    addresses: list[Address]
    unit: Literal["c", "f"]
    kind: Literal["delivery"] = "delivery"
    count: int = Field(ge=1, le=9)
    note: str | int | None = Field(default=None, description="Either")
    extra: Any = None
    pair: tuple[int, str]
    tags: set[str] = set()
    meta: dict[str, str] = {}


ZOD_UNION = {  # what zod-to-json-schema writes for z.object({...}) with a union and literals
    "type": "object",
    "properties": {
        "shape": {"anyOf": [
            {"type": "object", "properties": {"kind": {"type": "string", "const": "circle"},
                                              "r": {"type": "number"}},
             "required": ["kind", "r"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"type": "string", "const": "square"},
                                              "side": {"type": "number", "exclusiveMinimum": 0}},
             "required": ["kind", "side"], "additionalProperties": False}]},
        "label": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
        "flags": {"type": "array", "items": {"type": "boolean"}, "minItems": 1},
        "when": {"type": "string", "format": "date-time"},
        "not_x": {"type": "string", "not": {"const": "x"}},
        "cond": {"type": "object", "properties": {"a": {"type": "string"}},
                 "if": {"properties": {"a": {"const": "1"}}}, "then": {"required": ["a"]}},
    },
    "required": ["shape"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}  # fmt: skip

SCHEMAS: dict[str, dict[str, Any]] = {
    "pydantic-order": Order.model_json_schema(),
    "pydantic-recursive": Node.model_json_schema(),
    "zod-union": ZOD_UNION,
    "nested-array-enum": {"type": "object", "properties": {
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "inner": {"type": "object", "properties": {"deep": {"type": "object", "properties": {
            "x": {"type": "number"}}}}}}},
    "any-value": {"type": "object", "properties": {"value": {}, "values": {"type": "array"}}},
    "no-arguments": {"type": "object", "properties": {}},
}  # fmt: skip


def chat_tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": f"The {name} tool", "parameters": schema},
    }


def flat_tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} tool",
        "parameters": schema,
        "strict": False,
    }


# ------------------------------------------------------------------ checking what was sent


def sent_problems(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> list[str]:
    problems = []
    for rec in fake_openai.requests:
        path = rec.path.removeprefix("/v1")
        problems += [f"openai {path}: {p}" for p in openai_request_errors(path, rec.json)]
    for grec in fake_gemini.requests:
        if grec.path.startswith("/v1beta/openai/"):
            if grec.path.endswith("/chat/completions"):
                problems += [f"gemini compat: {p}" for p in compat_request_errors(grec.json)]
            continue
        method = grec.path.rpartition(":")[2]
        problems += [f"gemini {method}: {p}" for p in gemini_request_errors(method, grec.json)]
    return problems


def sent_count(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> int:
    return len(fake_openai.requests) + len(fake_gemini.requests)


def post(gateway: str, path: str, body: dict[str, Any]) -> httpx.Response:
    if body.get("stream"):
        with httpx.stream("POST", f"{gateway}/v1{path}", json=body, timeout=30) as r:
            r.read()
            return r
    return httpx.post(f"{gateway}/v1{path}", json=body, timeout=30)


@pytest.fixture
def sdk(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


# ------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("choice", ["auto", "required"])
@pytest.mark.parametrize("schema", list(SCHEMAS))
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("client_api", ["chat", "responses"])
def test_tool_schemas_reach_every_upstream_in_a_form_it_takes(
    gateway: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini,
    client_api: str, model: str, schema: str, choice: str,
) -> None:  # fmt: skip
    if client_api == "chat":
        path = "/chat/completions"
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": "Go"}],
            "tools": [chat_tool("act", SCHEMAS[schema])],
            "tool_choice": choice,
        }
    else:
        path = "/responses"
        body = {
            "model": model,
            "input": "Go",
            "tools": [flat_tool("act", SCHEMAS[schema])],
            "tool_choice": choice,
        }
    r = post(gateway, path, body)
    assert r.status_code == 200, r.text
    assert sent_count(fake_openai, fake_gemini) == 1
    assert sent_problems(fake_openai, fake_gemini) == []


def _requests(model: str) -> list[tuple[str, dict[str, Any]]]:
    """Client requests of every other kind, for one model: (path, body)."""
    image_parts = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_B", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": "21C"},
        {"role": "tool", "tool_call_id": "call_B", "content": '{"temp": 19}'},
    ]  # fmt: skip
    tools = [chat_tool("weather", {"type": "object", "properties": {"city": {"type": "string"}}})]
    flat = [flat_tool("weather", {"type": "object", "properties": {"city": {"type": "string"}}})]
    responses_history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_A", "name": "weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_A", "output": "21C"},
    ]  # fmt: skip
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "/chat/completions",
            {"model": model, "messages": [{"role": "user", "content": image_parts}]},
        ),
        ("/chat/completions", {"model": model, "messages": history, "tools": tools}),
        (
            "/chat/completions",
            {"model": model, "messages": history, "tools": tools, "stream": True},
        ),
        (
            "/chat/completions",
            {
                "model": model,
                "messages": [{"role": "user", "content": "Hi"}],
                "temperature": 0.3,
                "top_p": 0.9,
                "max_tokens": 200,
                "seed": 7,
                "response_format": {"type": "json_object"},
                "user": "u-1",
            },
        ),
        (
            "/responses",
            {
                "model": model,
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": PNG, "detail": "auto"},
                        ],
                    }
                ],
            },
        ),
        ("/responses", {"model": model, "input": responses_history, "tools": flat}),
        ("/responses", {"model": model, "input": responses_history, "tools": flat, "stream": True}),
        (
            "/responses",
            {
                "model": model,
                "input": "Hi",
                "instructions": "Be brief.",
                "max_output_tokens": 300,
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "w",
                        "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                    }
                },
            },
        ),
    ]
    for effort in ("none", "minimal", "low", "medium", "high"):
        out.append(
            (
                "/chat/completions",
                {
                    "model": model,
                    "messages": [{"role": "user", "content": "Hi"}],
                    "reasoning_effort": effort,
                    "include_reasoning": True,
                },
            )
        )
        out.append(
            (
                "/responses",
                {"model": model, "input": "Hi", "reasoning": {"effort": effort, "summary": "auto"}},
            )
        )
    return out


REQUEST_CASES = [(m, n) for m in MODELS for n in range(len(_requests(m)))]


@pytest.mark.parametrize(("model", "n"), REQUEST_CASES)
def test_other_requests_reach_every_upstream_in_a_form_it_takes(
    gateway: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, model: str, n: int
) -> None:
    path, body = _requests(model)[n]
    r = post(gateway, path, body)
    assert r.status_code == 200, r.text
    assert sent_count(fake_openai, fake_gemini) == 1
    assert sent_problems(fake_openai, fake_gemini) == []


@pytest.mark.parametrize(("model", "body"), [
    ("oa-embed", {"input": ["a", "b"], "encoding_format": "base64", "dimensions": 8}),
    ("oa-embed", {"input": "a", "encoding_format": "float"}),
    ("oa-embed", {"input": [[1, 2, 3]]}),
    ("gm-embed", {"input": ["a", "b"], "encoding_format": "float"}),
    ("gm-embed", {"input": "a", "dimensions": 4, "task_type": "retrieval_query"}),
])  # fmt: skip
def test_embeddings_reach_the_upstream_in_a_form_it_takes(
    gateway: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, model: str, body: dict[str, Any]
) -> None:
    r = post(gateway, "/embeddings", {"model": model, **body})
    assert r.status_code == 200, r.text
    assert sent_count(fake_openai, fake_gemini) == 1
    assert sent_problems(fake_openai, fake_gemini) == []


# ------------------------------------------------------------------ Gemini 3 across providers

WEATHER: list[ChatCompletionFunctionToolParam] = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip
FLAT_WEATHER: list[FunctionToolParam] = [{"type": "function", "name": "weather", "strict": False,
                 "parameters": WEATHER[0]["function"]["parameters"]}]  # fmt: skip


def _gemini_turn(sdk: openai.OpenAI) -> tuple[list[ChatCompletionMessageParam], str]:
    """A first turn on Gemini 3 (native): the tool call comes back with its signature."""
    first = sdk.chat.completions.create(
        model="gm-native", messages=[{"role": "user", "content": "Paris?"}], tools=WEATHER
    )
    call_id = function_call(first.choices[0].message).id
    assert len(call_id) > 64  # the signature rides in the id: too long for OpenAI as it is
    history: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Paris?"},
        sent_back(first.choices[0].message),
        {"role": "tool", "tool_call_id": call_id, "content": "21C"},
    ]
    return history, call_id


@pytest.mark.parametrize("next_model", ["gm-native", "gm-compat", "oa-chat", "oa-resp"])
def test_gemini_3_tool_conversation_continues_on_any_model_chat(
    sdk: openai.OpenAI, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, next_model: str
) -> None:
    history, call_id = _gemini_turn(sdk)
    fake_gemini.requests.clear()
    answer = sdk.chat.completions.create(model=next_model, messages=history, tools=WEATHER)
    assert answer.choices[0].message.content
    assert sent_problems(fake_openai, fake_gemini) == []
    if next_model == "gm-native":
        parts = fake_gemini.last.json["contents"][1]["parts"]
        assert parts[-1]["thoughtSignature"] == SIGNATURE  # the round trip kept it
    elif next_model == "gm-compat":
        calls = fake_gemini.last.json["messages"][1]["tool_calls"]
        assert calls[0]["extra_content"]["google"]["thought_signature"] == SIGNATURE
    elif next_model == "oa-chat":
        sent = fake_openai.last.json["messages"]
        assert (
            sent[1]["tool_calls"][0]["id"]
            == sent[2]["tool_call_id"]
            == call_id.split("__thsig_")[0]
        )
    else:
        calls = [i for i in fake_openai.last.json["input"] if "call_id" in i]
        assert {i["call_id"] for i in calls} == {call_id.split("__thsig_")[0]}


@pytest.mark.parametrize("next_model", ["gm-native", "oa-resp", "oa-chat"])
def test_gemini_3_tool_conversation_continues_on_any_model_responses(
    sdk: openai.OpenAI, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, next_model: str
) -> None:
    first = sdk.responses.create(model="gm-native", input="Paris?", tools=FLAT_WEATHER)
    call = next(item for item in first.output if item.type == "function_call")
    assert len(call.call_id) > 64
    items: list[ResponseInputItemParam] = [
        {"role": "user", "content": "Paris?"},
        *items_back(first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": "21C"},
    ]
    fake_gemini.requests.clear()
    answer = sdk.responses.create(model=next_model, input=items, tools=FLAT_WEATHER)
    assert answer.output_text
    assert sent_problems(fake_openai, fake_gemini) == []
    if next_model == "gm-native":
        assert fake_gemini.last.json["contents"][1]["parts"][-1]["thoughtSignature"] == SIGNATURE


def test_gemini_falls_back_to_openai_with_a_history_openai_takes(
    sdk: openai.OpenAI, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    history, call_id = _gemini_turn(sdk)
    fake_gemini.requests.clear()
    fake_gemini.script(
        FakeGemini.error(
            400,
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "INVALID_ARGUMENT",
        )
    )
    raw = sdk.chat.completions.with_raw_response.create(
        model="gm-native-to-openai", messages=history, tools=WEATHER
    )
    assert raw.headers["x-gateway-model"] == "oa-chat"
    assert raw.parse().choices[0].message.content
    assert len(fake_gemini.requests) == 1 and len(fake_openai.requests) == 1
    assert sent_problems(fake_openai, fake_gemini) == []
    assert fake_openai.last.json["messages"][2]["tool_call_id"] == call_id.split("__thsig_")[0]


# ------------------------------------------------------------------ the fakes refuse


def test_the_fakes_refuse_what_the_live_apis_refuse(fakes: tuple[FakeOpenAI, FakeGemini]) -> None:
    """The limits of issue 19, sent straight to the fakes (not through the gateway)."""
    openai_fake, gemini_fake = fakes
    oa, gm = os.environ["CONF_OPENAI_BASE_URL"], os.environ["CONF_GEMINI_BASE_URL"]
    auth = {"authorization": f"Bearer {openai_fake.api_key}"}
    long_id = "call_" + "x" * 40
    chat = {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": long_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": long_id, "content": "r"}]}  # fmt: skip
    responses = {"model": "gpt-5-mini", "input": [
        {"type": "function_call", "call_id": "c" * 65, "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c" * 65, "output": "r"}]}  # fmt: skip
    extra = {"model": "gpt-4o-mini", "messages": [
        {"role": "assistant", "content": "x", "reasoning_content": "mine"}]}  # fmt: skip
    for path, sent in (
        ("/chat/completions", chat),
        ("/responses", responses),
        ("/chat/completions", extra),
    ):
        r = httpx.post(f"{oa}{path}", json=sent, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
    key = {"x-goog-api-key": gemini_fake.api_key}
    contents = [{"role": "user", "parts": [{"text": "x"}]}]
    bad_tools = [
        ({"functionDeclarations": [{"name": "f"}]}, {"functionCallingConfig": {"mode": "ANY"}}),
        ({"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {}}}}]}, None),
        ({"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {
            "a": {"type": "array"}}}}]}, None),
        ({"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {
            "a": {"type": "string", "const": "x"}}}}]}, None),
    ]  # fmt: skip
    for tool, config in bad_tools:
        body: dict[str, Any] = {"contents": contents, "tools": [tool]}
        if config:
            body["toolConfig"] = config
        r = httpx.post(
            f"{gm}/models/gemini-3-flash-preview:generateContent", json=body, headers=key
        )
        assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", (
            tool,
            r.text,
        )
    openai_fake.refused.clear()
    gemini_fake.refused.clear()
