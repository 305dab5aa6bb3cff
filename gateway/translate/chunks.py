"""The one builder of the internal stream's `chat.completion.chunk` envelope."""

from __future__ import annotations

from typing import Any

from gateway.translate.shapes import ChatMessage

_NO_USAGE: Any = object()


def chat_chunk(
    chunk_id: Any,
    created: Any,
    model: Any,
    choices: list[dict[str, Any]],
    usage: Any = _NO_USAGE,
    **fields: Any,
) -> dict[str, Any]:
    """A chunk with `choices`; `usage` only when given (None on every chunk but the last
    when the client asked for usage, as OpenAI does); `fields` such as system_fingerprint."""
    chunk: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        **fields,
        "choices": choices,
    }
    if usage is not _NO_USAGE:
        chunk["usage"] = usage
    return chunk


def chat_choice(
    index: int, delta: ChatMessage, finish_reason: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
