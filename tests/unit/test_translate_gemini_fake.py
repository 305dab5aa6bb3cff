"""The fake Gemini server over real HTTP, driven through the translators."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.errors import from_upstream
from gateway.translate.embeddings import batch_to_embeddings, embeddings_to_batch, ensure_encoding
from gateway.translate.gemini import chat_to_generate_content, generate_content_to_chat
from gateway.translate.gemini_compat import CompatStreamFixer, compat_request, compat_response
from gateway.translate.gemini_stream import GeminiToChatStream
from gateway.translate.sse import SSEParser
from tests.fakes.gemini import DEFAULT_TEXT, FakeGemini
from tests.fakes.server import serve

KEY = "test-gemini-key"
SIG = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE="


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini(api_key=KEY)
    with serve(fake.app) as base:
        yield fake, base


@pytest.fixture
def fake(server: tuple[FakeGemini, str]) -> FakeGemini:
    server[0].requests.clear()
    return server[0]


@pytest.fixture
def base(server: tuple[FakeGemini, str]) -> str:
    return server[1]


def _native(base: str, model: str, method: str) -> str:
    return f"{base}/v1beta/models/{model}:{method}"


def test_generate_content_round_trip(fake: FakeGemini, base: str) -> None:
    chat = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],
            "max_output_tokens": 64}  # fmt: skip
    r = httpx.post(_native(base, "gemini-2.5-flash", "generateContent"),
                   json=chat_to_generate_content(chat), headers={"x-goog-api-key": KEY})  # fmt: skip
    assert r.status_code == 200
    out = generate_content_to_chat(r.json(), "gemini:flash", include_thoughts=False)
    assert out["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert out["usage"]["total_tokens"] == 11
    recorded = fake.last
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == KEY
    assert recorded.json == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                             "generationConfig": {"maxOutputTokens": 64}}  # fmt: skip


def test_stream_over_sse(fake: FakeGemini, base: str) -> None:
    fake.script([
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": SIG}]},
            "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}},
    ])  # fmt: skip
    url = _native(base, "gemini-3-flash-preview", "streamGenerateContent") + f"?alt=sse&key={KEY}"
    stream = GeminiToChatStream("gemini:3", include_thoughts=False, include_usage=True)
    parser = SSEParser()
    chunks: list[dict[str, Any]] = []
    with httpx.stream(
        "POST", url, json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for raw in r.iter_raw():
            for event in parser.feed(raw):
                assert not event.is_done  # Google sends no [DONE]
                chunks += stream.feed(event.json())
    chunks += stream.finish()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call["extra_content"] == {"google": {"thought_signature": SIG}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert fake.last.query == {"alt": "sse", "key": KEY}


def test_stream_without_alt_sse_is_a_json_array(fake: FakeGemini, base: str) -> None:
    r = httpx.post(_native(base, "m", "streamGenerateContent"), headers={"x-goog-api-key": KEY},
                   json={"contents": [{"parts": [{"text": "x"}]}]})  # fmt: skip
    parts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in r.json()]
    assert "".join(parts) == DEFAULT_TEXT


def test_bad_key_and_scripted_errors(fake: FakeGemini, base: str) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    r = httpx.post(
        _native(base, "m", "generateContent"), json=body, headers={"x-goog-api-key": "bad"}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert from_upstream(r.status_code, r.content).status == 400
    r = httpx.post(_native(base, "m", "generateContent"), json=body)
    assert r.status_code == 403
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = httpx.post(_native(base, "m", "generateContent"), json={}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 400 and "contents" in r.json()["error"]["message"]

    fake.script(FakeGemini.error(429, "Quota exceeded", "RESOURCE_EXHAUSTED", retry_delay="7s"))
    r = httpx.post(
        _native(base, "m", "generateContent"), json=body, headers={"x-goog-api-key": KEY}
    )
    mapped = from_upstream(r.status_code, r.content, dict(r.headers))
    assert (mapped.status, mapped.headers) == (429, {"retry-after": "7"})
    # An error in the middle of a stream
    fake.script(
        [
            {"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0}]},
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded.",
                    "status": "UNAVAILABLE",
                }
            },
        ]
    )
    url = _native(base, "m", "streamGenerateContent") + "?alt=sse"
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=False)
    with httpx.stream("POST", url, json=body, headers={"x-goog-api-key": KEY}) as r:
        events = [e for raw in r.iter_raw() for e in SSEParser().feed(raw)]
    stream.feed(events[0].json())
    with pytest.raises(Exception) as info:
        stream.feed(events[1].json())
    assert getattr(info.value, "status", None) == 503


def test_batch_embed_contents(fake: FakeGemini, base: str) -> None:
    request = embeddings_to_batch({"input": ["a", "b"], "dimensions": 4}, "gemini-embedding-001",
                                  "SEMANTIC_SIMILARITY", None)  # fmt: skip
    r = httpx.post(_native(base, "gemini-embedding-001", "batchEmbedContents"), json=request,
                   headers={"x-goog-api-key": KEY})  # fmt: skip
    assert r.status_code == 200, r.text
    out = batch_to_embeddings(r.json(), "gemini:embed", "base64", normalize=True, prompt_tokens=2)
    assert len(out["data"]) == 2 and all(isinstance(d["embedding"], str) for d in out["data"])
    assert fake.last.json["requests"][0]["taskType"] == "SEMANTIC_SIMILARITY"
    bad = {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}
    r = httpx.post(_native(base, "gemini-embedding-001", "batchEmbedContents"), json=bad,
                   headers={"x-goog-api-key": KEY})  # fmt: skip
    assert r.status_code == 400


def test_compat_surface_with_the_openai_sdk(fake: FakeGemini, base: str) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=f"{base}/v1beta/openai/", max_retries=0)
    usage = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 34}
    fake.script({"id": "x", "object": "chat.completion", "created": 1, "model": "gemini-2.5-flash",
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                     "role": "assistant", "content": "<thought>hmm</thought>Four."}}],
                 "usage": usage})  # fmt: skip
    body = compat_request({"model": "models/gemini-2.5-flash", "max_output_tokens": 50,
                           "messages": [{"role": "user", "content": "2+2?"}],
                           "thinking_budget": 512, "include_thoughts": True})  # fmt: skip
    # The gateway posts the JSON as is (through the SDK, a top-level `extra_body` key
    # would need `extra_body={"extra_body": ...}`, as Google's examples show).
    r = httpx.post(f"{base}/v1beta/openai/chat/completions", json=body,
                   headers={"authorization": f"Bearer {KEY}"})  # fmt: skip
    out = compat_response(r.json(), include_thoughts=True)
    assert out["choices"][0]["message"]["content"] == "Four."
    assert out["choices"][0]["message"]["reasoning_content"] == "hmm"
    assert out["usage"]["completion_tokens"] == 24
    sent = fake.last
    assert sent.path == "/v1beta/openai/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["model"] == "gemini-2.5-flash"
    assert sent.json["max_tokens"] == 50
    assert sent.json["extra_body"] == {
        "google": {"thinking_config": {"thinking_budget": 512, "include_thoughts": True}}
    }

    # streamed, ending in [DONE]
    fixer = CompatStreamFixer(include_thoughts=False)
    stream = client.chat.completions.create(model="gemini-2.5-flash", stream=True,
                                            messages=[{"role": "user", "content": "hi"}],
                                            stream_options={"include_usage": True})  # fmt: skip
    fixed = [c for chunk in stream for c in fixer.feed(chunk.model_dump(exclude_none=True))]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in fixed if c["choices"])
    assert text == DEFAULT_TEXT
    assert fixed[-1]["usage"]["total_tokens"] == 11

    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(api_key="wrong", base_url=f"{base}/v1beta/openai/", max_retries=0).chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])  # fmt: skip


def test_compat_embeddings_ignore_base64(fake: FakeGemini, base: str) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=f"{base}/v1beta/openai/", max_retries=0)
    raw = client.embeddings.with_raw_response.create(model="gemini-embedding-001", input=["a"],
                                                     dimensions=3)  # fmt: skip
    assert fake.last.json["encoding_format"] == "base64"  # the SDK's default
    upstream = raw.http_response.json()
    assert isinstance(upstream["data"][0]["embedding"], list)  # the fake answers floats anyway
    fixed = ensure_encoding(upstream, "base64")
    assert isinstance(fixed["data"][0]["embedding"], str)
