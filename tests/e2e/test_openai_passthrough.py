"""The official OpenAI SDK against the gateway against a fake OpenAI, all over real sockets."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from tests.e2e.conftest import OPENAI_KEY
from tests.fakes.openai import FakeOpenAI
from tests.sdk import function_call

TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_chat_plain_applies_policy_and_reports_it(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="openai:chat_gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=5000,
        reasoning_effort="low",
        extra_body={"logit_bias": {"50256": -100}},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake upstream"
    assert raw.headers["x-gateway-model"] == "openai:chat_gpt-4o-mini"
    assert raw.headers["x-gateway-dropped-params"] == "reasoning_effort"
    assert raw.headers["x-request-id"]
    # 1200 input (200 cached) and 300 output at 0.15 / 0.075 / 0.60 per 1M.
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(
        (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1e6
    )
    sent = fake_openai.last.json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["max_completion_tokens"] == 2000  # clamped by limits, in OpenAI's current name
    assert "max_tokens" not in sent and "reasoning_effort" not in sent
    assert sent["logit_bias"] == {"50256": -100}  # unknown-to-the-gateway fields are kept
    assert fake_openai.last.headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_chat_alias_resolves(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini-chat", messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.headers["x-gateway-model"] == "openai:chat_gpt-4o-mini"


def test_chat_streamed_hides_the_usage_chunk_it_asked_for(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    stream = client.chat.completions.create(
        model="openai:chat_gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream"
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert fake_openai.last.json["stream_options"] == {"include_usage": True}


def test_chat_streamed_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="openai:chat_gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 1200


def test_chat_stream_helper_and_tools(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="openai:chat_gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    ) as stream:
        final = stream.get_final_completion()
    call = function_call(final.choices[0].message)
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_tools_unstreamed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="openai:chat_gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=TOOLS,
    )
    assert function_call(completion.choices[0].message).id == "call_fake1"


def test_responses_plain_and_effort_default(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="openai:reasoning_o3-mini", input="Hi", temperature=0.3, max_output_tokens=9000
    )
    response = raw.parse()
    assert response.output_text == "Hello from the fake upstream"
    assert raw.headers["x-gateway-dropped-params"] == "temperature"
    sent = fake_openai.last.json
    assert sent["model"] == "o3-mini"
    assert sent["reasoning"] == {"effort": "low"}  # the registry's default
    assert sent["max_output_tokens"] == 2000
    assert "temperature" not in sent


def test_responses_streamed(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    with client.responses.stream(model="openai:gpt-4o-mini", input="Hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello from the fake upstream"
    assert final.usage is not None and final.usage.output_tokens == 300
    assert fake_openai.last.json["stream"] is True


def test_embeddings_float_and_base64(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    floats = client.embeddings.create(
        model="openai:embed_small", input=["a", "b"], encoding_format="float"
    )
    assert floats.data[1].embedding[:2] == [0.02, 0.04]
    # The SDK asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model="openai:embed_small", input="a", dimensions=4)
    assert fake_openai.last.json["encoding_format"] == "base64"
    assert default.data[0].embedding == pytest.approx([0.01, 0.02, 0.03, 0.04], rel=1e-6)
    assert default.usage.prompt_tokens == 5


def test_unknown_model_is_404_with_closest_keys(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="openai:chat_gpt-4o-mni", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "model_not_found"
    assert "openai:chat_gpt-4o-mini" in info.value.message


def test_wrong_api_for_model_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="openai:chat_gpt-4o-mini", input="x")
    assert "chat model" in info.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="openai:embed_small", messages=[{"role": "user", "content": "x"}]
        )


def test_provider_key_missing_is_503_naming_the_variable(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="nokey:chat", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 503
    assert info.value.code == "provider_key_missing"
    assert "TEST_UNSET_PROVIDER_KEY" in info.value.message


def test_upstream_error_keeps_status_and_message(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.openai import Scripted

    fake_openai.script.append(
        Scripted(
            400,
            {
                "error": {
                    "message": "Invalid value for 'temperature'.",
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": "invalid_value",
                }
            },
        )
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="openai:chat_gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.message.endswith("Invalid value for 'temperature'.")
    assert info.value.param == "temperature"


def test_upstream_429_keeps_retry_after(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    from tests.fakes.openai import Scripted

    fake_openai.script.append(
        Scripted(
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            headers={"retry-after": "7"},
        )
    )
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


def test_upstream_key_never_leaks(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    from tests.fakes.openai import Scripted

    fake_openai.script.append(
        Scripted(
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {OPENAI_KEY}.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    )
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 401
    assert OPENAI_KEY not in r.text
    assert all(OPENAI_KEY not in v for v in r.headers.values())
    metrics = httpx.get(f"{gateway_url}/metrics").text
    assert OPENAI_KEY not in metrics


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b'{"model": "openai:chat_gpt-4o-mini"}', "messages"),
        (b'{"model": "openai:chat_gpt-4o-mini", "messages": "hi"}', "messages"),
        (b'{"model": 5, "messages": []}', "model"),
        (
            b'{"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}',
            "max_tokens",
        ),  # the client's own name for it
        (
            b'{"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
    ],
)
def test_bad_bodies_are_openai_shaped_400s(
    gateway_url: str, body: bytes, param: str | None
) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_wrong_method_and_path_are_openai_shaped(gateway_url: str) -> None:
    r = httpx.get(f"{gateway_url}/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()
    r = httpx.post(f"{gateway_url}/v1/nothing", json={})
    assert r.status_code == 404 and "error" in r.json()


def test_strict_mode_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="openai:chat_gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            reasoning_effort="low",
            extra_headers={"x-gateway-strict": "true"},
        )
    assert info.value.param == "reasoning_effort"


def test_upstream_down_is_502(gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.server import free_port

    monkeypatch.setenv("TEST_OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unreachable"


def test_models_list_and_get(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "openai:chat_gpt-4o-mini" in ids
    assert client.models.retrieve("openai/gpt-4o-mini").id == "openai:gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_and_ready(gateway_url: str) -> None:
    assert httpx.get(f"{gateway_url}/healthz").status_code == 200
    ready = httpx.get(f"{gateway_url}/readyz")
    assert ready.status_code == 200 and ready.json()["models"] > 0


def test_request_id_is_echoed(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"x-request-id": "abc-123"},
        json={"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.headers["x-request-id"] == "abc-123"
