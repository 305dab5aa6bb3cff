"""gateway.received: the output text in a stream's raw bytes, and the estimate a call is
billed at when it ends before its usage; the Exchange counting a large stream off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from gateway.accounting import CallRecord, Usage
from gateway.policy import apply_policy
from gateway.proxy.exchange import CLIENT_CLOSED, Exchange
from gateway.received import (
    LARGE_BYTES,
    MAX_KEPT_BYTES,
    Received,
    estimate,
    output_text,
    output_tokens,
)
from gateway.registry.schema import ModelEntry, ProviderConfig
from gateway.registry.snapshot import Model
from gateway.tokens import TOOL_CALL_TOKENS, count_text_tokens
from gateway.wires import WIRES
from tests.fakes.held import TOKENS


def _data(payload: dict[str, Any], end: bytes = b"\n\n") -> bytes:
    return b"data: " + orjson.dumps(payload) + end


def _event(payload: dict[str, Any]) -> bytes:
    kind: str = payload["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def test_the_fakes_tokens_are_one_o200k_token_each_and_so_are_their_joins() -> None:
    assert [count_text_tokens(t) for t in TOKENS] == [1] * len(TOKENS)
    for n in range(len(TOKENS) + 1):
        assert count_text_tokens("".join(TOKENS[:n])) == n


CHAT, RESPONSES, GEMINI = (
    WIRES["openai", "chat_completions"],
    WIRES["openai", "responses"],
    WIRES["gemini", "gemini_sdk"],
)
COMPAT = WIRES["gemini", "chat_completions"]


def test_the_wires_usage_as_it_arrives() -> None:
    chunk = {
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 20},
    }
    assert CHAT.stream_usage(chunk) == (Usage(input=9, output=4), True)
    assert COMPAT.stream_usage(chunk) == (
        Usage(input=9, output=11, reasoning=7),
        True,
    )  # thoughts in the total
    assert CHAT.stream_usage({"choices": [], "usage": None}) == (None, False)
    done = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 3, "output_tokens": 2}},
    }
    assert RESPONSES.stream_usage(done) == (Usage(input=3, output=2), True)
    assert RESPONSES.stream_usage({"type": "response.created", "response": {"usage": None}}) == (
        None,
        False,
    )
    running = {
        "candidates": [{"content": {"parts": [{"text": "a"}]}}],
        "usageMetadata": {"promptTokenCount": 5},
    }
    assert GEMINI.stream_usage(running) == (Usage(input=5), False)
    last = {
        "candidates": [{"finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 5,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 1,
        },
    }
    assert GEMINI.stream_usage(last) == (Usage(input=5, output=3, reasoning=1), True)


def test_chat_chunks_give_content_reasoning_refusal_and_tool_calls() -> None:
    chunks = [
        _data({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        _data({"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]}),
        _data({"choices": [{"index": 0, "delta": {"content": "Hello"}}]}),
        _data({"choices": [{"index": 0, "delta": {"refusal": " no"}}]}),
        _data(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "get", "arguments": ""},
                                }
                            ]
                        },
                    }
                ]
            }
        ),
        _data(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                    }
                ]
            }
        ),
        b"data: [DONE]\n\n",
    ]
    # Split across reads anywhere: the parser joins them.
    raw = b"".join(chunks)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    assert output_text(CHAT, pieces) == ("thinkHello noget{}", 1)


def test_an_event_cut_before_its_end_is_not_counted() -> None:
    whole = _data({"choices": [{"index": 0, "delta": {"content": "kept"}}]})
    cut = _data({"choices": [{"index": 0, "delta": {"content": "lost"}}]})[:-5]
    assert output_text(CHAT, [whole, cut]) == ("kept", 0)


def test_responses_deltas_and_call_names_but_not_audio() -> None:
    chunks = [
        _event({"type": "response.created", "response": {"usage": None}}),
        _event({"type": "response.reasoning_summary_text.delta", "delta": "why "}),
        _event({"type": "response.output_text.delta", "delta": "Hi"}),
        _event({"type": "response.output_audio.delta", "delta": "QUFBQQ=="}),
        _event(
            {"type": "response.output_item.added", "item": {"type": "function_call", "name": "get"}}
        ),
        _event({"type": "response.function_call_arguments.delta", "delta": "{}"}),
    ]
    assert output_text(RESPONSES, chunks) == ("why Higet{}", 1)


def test_gemini_parts_thoughts_and_function_calls() -> None:
    chunk = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "plan", "thought": True},
                        {"text": "Hi"},
                        {"functionCall": {"name": "get", "args": {"city": "Paris"}}},
                    ],
                },
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 9},
    }
    assert output_text(GEMINI, [_data(chunk, b"\r\n\r\n")]) == ('planHiget{"city":"Paris"}', 1)


def test_output_tokens_count_text_call_framing_and_bytes_past_the_cap() -> None:
    received = Received(CHAT)
    received.add(
        _data(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {"index": 0, "function": {"name": "get", "arguments": "{}"}}
                            ]
                        },
                    }
                ]
            }
        )
    )
    assert output_tokens(received) == count_text_tokens("get{}") + TOOL_CALL_TOKENS
    received.add(b"x" * (MAX_KEPT_BYTES + 1))  # past the cap: counted as 4 bytes a token, not kept
    assert received.dropped == MAX_KEPT_BYTES + 1 and len(received.chunks) == 1
    assert (
        output_tokens(received)
        == count_text_tokens("get{}") + TOOL_CALL_TOKENS + MAX_KEPT_BYTES // 4 + 1
    )


def test_estimate_takes_the_providers_running_counts_when_it_sent_some() -> None:
    assert estimate(14, 5, None) == Usage(input=14, output=5)
    running = Usage(input=1500, cached_input=500, output=3, reasoning=2)
    assert estimate(14, 5, running) == Usage(input=1500, cached_input=500, output=5, reasoning=2)
    assert estimate(14, 2, running).output == 3  # never less than the provider already counted
    assert estimate(14, 5, Usage(output=7)) == Usage(input=14, output=7)  # no prompt count: ours


def _model() -> Model:
    entry = {
        "provider": "openai",
        "model": "gpt-4o",
        "endpoint": "chat_completions",
        "pricing": {"input_per_mm": 2.5, "output_per_mm": 10},
    }
    provider = ProviderConfig(kind="openai", base_url="http://x/v1", api_key_env="K")
    return Model("test:model", ModelEntry.model_validate(entry), "openai", provider)


def test_a_large_stream_is_counted_in_a_thread_and_then_recorded() -> None:
    records: list[CallRecord] = []
    body = {"model": "test:model", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    ex = Exchange("/v1/chat/completions", "chat", "rid", [records.append])
    ex.begin(_model(), apply_policy("chat", body, _model()))
    ex.sent, ex.received = True, Received(CHAT)
    piece = _data({"choices": [{"index": 0, "delta": {"content": " token"}}]})
    count = LARGE_BYTES // len(piece) + 1
    for _ in range(count):
        ex.received.add(piece)
    assert ex.received.large

    async def run() -> None:
        ex.finish(CLIENT_CLOSED)
        assert records == []  # not yet: the count runs off the loop
        for _ in range(500):
            if records:
                return
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert len(records) == 1
    rec = records[0]
    assert rec.estimated and rec.status == CLIENT_CLOSED
    assert rec.usage == Usage(input=8, output=count_text_tokens(" token" * count))  # 3 + 3 + 1 + 1
    assert rec.cost is not None and rec.cost > 0


def test_a_large_request_cut_before_any_answer_is_counted_in_a_thread() -> None:
    records: list[CallRecord] = []
    text = "word " * (LARGE_BYTES // 5 + 1)
    body = {"model": "test:model", "messages": [{"role": "user", "content": text}]}
    ex = Exchange("/v1/chat/completions", "chat", "rid", [records.append])
    ex.begin(_model(), apply_policy("chat", body, _model()))
    ex.sent, ex.body_size = True, LARGE_BYTES + 100

    async def run() -> None:
        ex.finish(CLIENT_CLOSED)
        assert records == []  # counted off the loop
        for _ in range(500):
            if records:
                return
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert records[0].estimated and records[0].usage == Usage(input=7 + count_text_tokens(text))


def test_a_client_that_leaves_before_anything_went_upstream_is_not_billed() -> None:
    records: list[CallRecord] = []
    body = {"model": "test:model", "messages": [{"role": "user", "content": "Hi"}]}
    ex = Exchange("/v1/chat/completions", "chat", "rid", [records.append])
    ex.begin(_model(), apply_policy("chat", body, _model()))
    ex.finish(CLIENT_CLOSED)
    assert records[0].usage is None and not records[0].estimated and records[0].cost is None


# Text of several kinds, as an o200k model would stream it: one token after another.
SAMPLES = {
    "english": "The gateway records every call it serves. When a client hangs up in the middle of a "
    "stream, the provider has usually generated and billed more tokens than the client read.",
    "code": "def output_tokens(received: Received) -> int:\n    text, calls = output_text(received.wire)\n"
    "    return count_text_tokens(text)  # framing\n\nfor i in range(10):\n    print(f'{i:>3}: {i**2}')\n",
    "german": "Wenn der Client die Verbindung trennt, zählt das Gateway die empfangenen Ausgabetokens: "
    "Donaudampfschifffahrtsgesellschaftskapitän zerfällt in viele Tokens.",
    "chinese": "网关会记录每一次调用。当客户端在流式响应中途断开连接时\uff0c提供商通常已经生成并计费了更多的令牌。",
    "json": '{"city":"Paris","temperature_c":21.5,"conditions":["sunny","light wind"],"confidence":0.82}',
}


def test_counting_the_received_text_gives_back_the_tokens_streamed_on_o200k() -> None:
    """The estimate's error on the output of an o200k model: for every point a stream can
    be cut at (a token boundary that ends a whole character), counting the text received
    gives the number of tokens sent. Measured: no difference on any prefix."""
    import quicktok

    encoding = quicktok.get_encoding("o200k_base")
    cuts = 0
    for name, text in SAMPLES.items():
        ids = encoding.encode_ordinary(text)
        for k in range(1, len(ids) + 1):
            try:
                prefix = encoding.decode_bytes(ids[:k]).decode("utf-8")
            except UnicodeDecodeError:
                continue  # mid-character: providers never send half a character
            assert count_text_tokens(prefix) == k, (name, k, prefix)
            cuts += 1
    assert cuts > 150  # 189 cut points in these samples


def test_output_received_but_not_yet_relayed_is_billed() -> None:
    """One read brings five tokens; the client takes the first frame and leaves: the call is
    billed for the five the upstream sent, not the one the client got."""
    from gateway.proxy import phases
    from gateway.translate.sse import aiter_events

    records: list[CallRecord] = []
    body = {"model": "test:model", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    ex = Exchange("/v1/chat/completions", "chat", "rid", [records.append])
    leg = ex.begin(_model(), apply_policy("chat", body, _model()))
    ex.sent = True
    burst = b"".join(
        _data({"choices": [{"index": 0, "delta": {"content": t}}]}) for t in TOKENS[:5]
    )

    async def upstream() -> AsyncIterator[bytes]:
        yield burst

    async def run() -> None:
        source = phases.chunks(leg, upstream())
        frames = CHAT.relay(leg, aiter_events(source), [])
        first = await frames.__anext__()
        assert b'"Hello"' in first
        assert isinstance(frames, AsyncGenerator)  # a generator: closing it runs its finally
        await frames.aclose()
        ex.finish(CLIENT_CLOSED)

    asyncio.run(run())
    assert records[0].estimated and records[0].usage == Usage(input=8, output=5)
