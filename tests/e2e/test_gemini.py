"""Gemini behind the OpenAI API, through the official SDK, against a fake Gemini over sockets."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.e2e.conftest import GEMINI_KEY
from tests.fakes.gemini import FakeGemini
from tests.sdk import function_call

TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"city": {"type": "string", "default": "Paris"}},
                "required": ["city"],
            },
        },
    }
]
SIGNATURE = "c2lnbmF0dXJlLWJ5dGVzLWZyb20tZ2VtaW5pKz8v"


def _call_answer(sig: str = SIGNATURE) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": sig,
                        }
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 40,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 25,
            "totalTokenCount": 75,
        },
        "modelVersion": "gemini-3-flash-preview",
        "responseId": "r1",
    }


def _text_answer(text: str, thoughts: str | None = None) -> dict[str, Any]:
    parts = ([{"text": thoughts, "thought": True}] if thoughts else []) + [{"text": text}]
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 400,
            "candidatesTokenCount": 100,
            "thoughtsTokenCount": 50,
            "totalTokenCount": 1150,
        },
        "modelVersion": "gemini-3-flash-preview",
        "responseId": "r2",
    }


def test_native_chat_translates_policy_and_usage(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    fake_gemini.script(_text_answer("Bonjour", thoughts="thinking..."))
    raw = client.chat.completions.with_raw_response.create(
        model="gemini:native-sdk-3-flash-preview",
        messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        max_tokens=1000,
        reasoning_effort="high",
        temperature=0.5,
        stop=["END"],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Bonjour"
    assert not getattr(
        completion.choices[0].message, "reasoning_content", None
    )  # thoughts only when asked
    sent = fake_gemini.last
    assert sent.path == "/v1beta/models/gemini-3-flash-preview:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    body = sent.json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 1800  # 1000 raised by the high reserve ratio 0.8
    assert config["thinkingConfig"]["thinkingLevel"].lower() == "high"
    assert "thinkingBudget" not in config["thinkingConfig"]
    assert config["temperature"] == 0.5 and config["stopSequences"] == ["END"]
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 150)
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 50
    expected = (600 * 0.5 + 400 * 0.05 + 150 * 3.0) / 1e6
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected)


def test_native_thoughts_when_asked(gateway_url: str, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(_text_answer("42", thoughts="Let me think"))
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": "gemini:native-sdk-3-flash-preview",
            "messages": [{"role": "user", "content": "?"}],
            "include_reasoning": True,
        },
    )
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "Let me think"
    assert fake_gemini.last.json["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


def test_native_budget_policy(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    client.chat.completions.create(
        model="gemini:native-sdk-reasoning-2.5-flash",
        messages=[{"role": "user", "content": "Hi"}],
        reasoning_effort="medium",
    )
    thinking = fake_gemini.last.json["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingBudget": 2000}


def test_native_streamed_chat(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    with client.chat.completions.stream(
        model="gemini:native-sdk-3-flash-preview",
        messages=[{"role": "user", "content": "Hi"}],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from fake Gemini."
    assert final.usage is not None and final.usage.total_tokens > 0
    assert fake_gemini.last.path.endswith(":streamGenerateContent")
    assert fake_gemini.last.query == {"alt": "sse"}


def test_native_two_turn_tools_keep_the_thought_signature(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    fake_gemini.script(_call_answer(), _text_answer("It is sunny in Paris."))
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="gemini:native-sdk-3-flash-preview",
        messages=messages,
        tools=TOOLS,
        tool_choice="required",
    )
    assert first.choices[0].finish_reason == "tool_calls"
    call = function_call(first.choices[0].message)
    sent_tools = fake_gemini.last.json["tools"][0]["functionDeclarations"][0]["parameters"]
    assert "additionalProperties" not in sent_tools
    assert fake_gemini.last.json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    # What an agent framework sends back: only the id survives.
    messages.append(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'})
    second = client.chat.completions.create(
        model="gemini:native-sdk-3-flash-preview", messages=messages, tools=TOOLS
    )
    assert second.choices[0].message.content == "It is sunny in Paris."
    contents = fake_gemini.last.json["contents"]
    model_turn = contents[1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
    assert model_turn["parts"][0]["thoughtSignature"] == SIGNATURE
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"temp": 21},
    }


def test_responses_client_on_native_model(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    response = client.responses.create(
        model="gemini:native-sdk-3-flash-preview",
        input="Hi",
        instructions="Be brief",
        max_output_tokens=500,
    )
    assert response.output_text == "Hello from fake Gemini."
    body = fake_gemini.last.json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert body["generationConfig"]["maxOutputTokens"] == 650  # low effort: 500 x 1.3
    with client.responses.stream(model="gemini:native-sdk-3-flash-preview", input="Hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from fake Gemini."
    assert final.usage is not None and final.usage.input_tokens > 0


def test_compat_chat_sends_thinking_config_and_splits_thoughts(
    gateway_url: str, fake_gemini: FakeGemini
) -> None:
    fake_gemini.script(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "gemini-3-flash-preview",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "<thought>Adding numbers.</thought>The answer is 4.",
                    },
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 35},
        }
    )
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": "gemini:openai-3-flash-preview",
            "messages": [{"role": "user", "content": "2+2?"}],
            "reasoning_effort": "medium",
            "include_reasoning": True,
            "max_tokens": 100,
        },
    )
    assert r.status_code == 200, r.text
    sent = fake_gemini.last
    assert sent.path == "/v1beta/openai/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {GEMINI_KEY}"
    assert sent.json["model"] == "gemini-3-flash-preview"
    assert sent.json["extra_body"]["google"]["thinking_config"] == {
        "thinking_level": "medium",
        "include_thoughts": True,
    }
    assert "reasoning_effort" not in sent.json
    assert sent.json["max_tokens"] == 150
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "The answer is 4."
    assert message["reasoning_content"] == "Adding numbers."
    usage = r.json()["usage"]
    assert usage["completion_tokens"] == 25
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 20


def test_compat_chat_streamed(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemini:openai-3-flash-preview",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from fake Gemini."
    )
    assert fake_gemini.last.json["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)


def test_native_embeddings_float_and_base64(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    floats = client.embeddings.create(
        model="gemini:native-embed", input=["hello world", "b"], encoding_format="float"
    )
    sent = fake_gemini.last
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    requests = sent.json["requests"]
    assert [r["taskType"] for r in requests] == ["RETRIEVAL_DOCUMENT"] * 2
    assert requests[0]["outputDimensionality"] == 768
    assert requests[0]["content"] == {"parts": [{"text": "hello world"}]}
    vector = floats.data[0].embedding
    assert sum(v * v for v in vector) == pytest.approx(1.0, rel=1e-6)  # re-normalised
    assert floats.usage.prompt_tokens == 3  # "hello world" is 2 tokens, "b" is 1
    default = client.embeddings.create(
        model="gemini:native-embed", input="hello world"
    )  # SDK asks base64
    assert default.data[0].embedding == pytest.approx(vector, rel=1e-6)


def test_compat_embeddings(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    result = client.embeddings.create(model="gemini:embed_openai_compat", input="hello")
    sent = fake_gemini.last
    assert sent.path == "/v1beta/openai/embeddings"
    assert "encoding_format" not in sent.json
    assert len(result.data[0].embedding) > 0


def test_google_errors_become_openai_errors(gateway_url: str, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(
        FakeGemini.error(
            429, "Resource has been exhausted", "RESOURCE_EXHAUSTED", retry_delay="17s"
        )
    )
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": "gemini:native-sdk-3-flash-preview",
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "17"
    assert r.json()["error"]["message"] == "Resource has been exhausted"
    fake_gemini.script(FakeGemini.error(400, "Invalid argument", "INVALID_ARGUMENT"))
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": "gemini:native-sdk-3-flash-preview",
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"


def test_gemini_key_is_checked_and_never_leaks(
    gateway_url: str, fake_gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GEMINI_API_KEY", "AIza-wrong-key-xyz")
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": "gemini:native-sdk-3-flash-preview",
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert r.status_code == 400  # Google answers a bad key with INVALID_ARGUMENT
    assert "AIza-wrong-key-xyz" not in r.text
