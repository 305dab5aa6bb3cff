"""Streams made from whole answers, for models whose policy turns upstream streaming off.

A client that asked to stream still gets exactly the frames a real stream would have
sent, in one go, so it cannot tell the difference beyond timing.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.translate.chunks import chat_choice, chat_chunk
from gateway.translate.responses import id_suffix
from gateway.translate.responses_events import EventWriter, replay_item
from gateway.translate.shapes import ChatMessage, ToolCall


def completion_to_chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A whole `chat.completion` -> the `chat.completion.chunk` sequence of its stream."""
    chunk_id = completion.get("id") or "chatcmpl-" + id_suffix(None)
    created = completion.get("created") or int(time.time())
    model = completion.get("model")
    fields = {
        key: completion[key]
        for key in ("system_fingerprint", "service_tier")
        if completion.get(key) is not None
    }
    usage: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(
        index: int, delta: ChatMessage, finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        return chat_chunk(
            chunk_id,
            created,
            model,
            [chat_choice(index, delta, finish, logprobs)],
            **usage,
            **fields,
        )

    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(completion.get("choices") or []):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
        # The first delta says who speaks; `content: ""` only when the answer has text at all,
        # so a tool-call answer rebuilds to `content: null` as it was.
        first: ChatMessage = {"role": "assistant"}
        if isinstance(content, str):
            first["content"] = ""
        chunks.append(chunk(index, first))
        if message.get("reasoning_content"):
            chunks.append(chunk(index, {"reasoning_content": message["reasoning_content"]}))
        if content:
            chunks.append(chunk(index, {"content": content}, logprobs=choice.get("logprobs")))
        if message.get("refusal"):
            chunks.append(chunk(index, {"refusal": message["refusal"]}))
        for call_index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            opening: ToolCall = {
                "index": call_index,
                "id": call.get("id"),
                "type": call.get("type") or "function",
                "function": {"name": function.get("name"), "arguments": ""},
            }
            chunks.append(chunk(index, {"tool_calls": [opening]}))
            if function.get("arguments"):
                fragment: ToolCall = {
                    "index": call_index,
                    "function": {"arguments": function["arguments"]},
                }
                chunks.append(chunk(index, {"tool_calls": [fragment]}))
        chunks.append(chunk(index, {}, finish=choice.get("finish_reason") or "stop"))
    if include_usage and completion.get("usage") is not None:
        chunks.append(chat_chunk(chunk_id, created, model, [], usage=completion["usage"], **fields))
    return chunks


def response_to_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole Response object -> the Responses event sequence of its stream."""
    writer = EventWriter()
    start = {
        **response,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "incomplete_details": None,
    }
    events = [
        writer.emit("response.created", response=start),
        writer.emit("response.in_progress", response=start),
    ]
    for index, item in enumerate(response.get("output") or []):
        events += replay_item(writer, index, item)
    terminal = {"incomplete": "response.incomplete", "failed": "response.failed"}.get(
        str(response.get("status")), "response.completed"
    )
    events.append(writer.emit(terminal, response=response))
    return events
