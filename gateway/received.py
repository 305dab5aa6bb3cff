"""What an upstream stream delivered, counted when the call ends before its usage did.

A client that hangs up, or an upstream that breaks mid-stream, leaves a call whose
provider has billed it but never said for how much. Such a call is billed from what is
known: the input by the offline tokenizer's estimate (gateway.tokens) and the output the
upstream had sent (all of it, not only what reached the client), counted by the same
tokenizer. The record says `estimated`.

The hot path only keeps references to the raw chunks it read (`Received.add`: an append,
no parsing), and only while no usage has arrived; the text is pulled out of them once,
at the end, and only for a call that needs it (`output_tokens`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.accounting import Usage
from gateway.tokens import TOOL_CALL_TOKENS, count_text_tokens
from gateway.translate.sse import SSEEvent, SSEParser

if TYPE_CHECKING:
    from gateway.wires.base import Wire

# Beyond this much of one stream the bytes are no longer kept, only counted (4 per token):
# the estimate of a huge stream stays bounded in memory and time.
MAX_KEPT_BYTES = 32 * 1024 * 1024
# Counting runs at tens of MB/s; past this size it goes to a thread, off the event loop.
LARGE_BYTES = 256 * 1024


@dataclass(slots=True)
class Received:
    """The raw bytes of one upstream stream, in the order they came, and the wire that
    reads them (each upstream API says where its output text is: Wire.output_texts)."""

    wire: Wire
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    dropped: int = 0  # bytes past MAX_KEPT_BYTES: counted, not kept

    def add(self, chunk: bytes) -> None:
        if self.size + len(chunk) > MAX_KEPT_BYTES:
            self.dropped += len(chunk)
            return
        self.chunks.append(chunk)
        self.size += len(chunk)

    @property
    def large(self) -> bool:
        return self.size > LARGE_BYTES


def _events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    parser = SSEParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            if event.data and not event.is_done:
                yield event
    # A last event cut before its blank line is not parsed: its JSON would be incomplete.


def _json(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def chat_texts(data: dict[str, Any], out: list[str]) -> int:
    """A chat chunk's output: content, reasoning, refusal, tool-call names and arguments."""
    calls = 0
    for choice in data.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for name in ("content", "reasoning_content", "refusal"):
            if isinstance(delta.get(name), str):
                out.append(delta[name])
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                if function.get("name"):
                    calls += 1
                    out.append(str(function["name"]))
                if isinstance(function.get("arguments"), str):
                    out.append(function["arguments"])
    return calls


def responses_texts(data: dict[str, Any], out: list[str]) -> int:
    """A Responses event's output: every text delta (answer, refusal, reasoning, call
    arguments; not audio) and the name of a call item as it is added."""
    kind = str(data.get("type") or "")
    if kind.endswith(".delta") and "audio" not in kind and isinstance(data.get("delta"), str):
        out.append(data["delta"])
        return 0
    item = data.get("item")
    if kind == "response.output_item.added" and isinstance(item, dict) and item.get("name"):
        out.append(str(item["name"]))
        return 1
    return 0


def gemini_texts(data: dict[str, Any], out: list[str]) -> int:
    """A Gemini chunk's output: text parts (thoughts too: they are billed as output) and
    function calls (name and arguments)."""
    calls = 0
    for candidate in data.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                out.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                calls += 1
                out.append(str(call.get("name") or ""))
                out.append(orjson.dumps(call.get("args") or {}).decode())
    return calls


def output_text(wire: Wire, chunks: Iterable[bytes]) -> tuple[str, int]:
    """The output text in a stream's bytes, and how many tool calls it started."""
    texts: list[str] = []
    calls = 0
    for event in _events(chunks):
        data = _json(event.data)
        if isinstance(data, dict):
            calls += wire.output_texts(data, texts)
    return "".join(texts), calls


def output_tokens(received: Received) -> int:
    text, calls = output_text(received.wire, received.chunks)
    return count_text_tokens(text) + calls * TOOL_CALL_TOKENS + -(-received.dropped // 4)


def estimate(input_tokens: int, output: int, running: Usage | None) -> Usage:
    """The usage to bill: the input estimate and the output counted, unless the provider's
    running counts (Gemini repeats them on every chunk) say more."""
    if running is None:
        return Usage(input=input_tokens, output=output)
    return Usage(
        input=running.input or input_tokens,
        cached_input=running.cached_input if running.input else 0,
        output=max(running.output, output),
        reasoning=running.reasoning,
    )
