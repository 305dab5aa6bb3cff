"""Responses events from a `responses` upstream -> chat completion chunks, event by event.

Re-exported by `responses_stream`, next to the opposite direction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.errors import UpstreamError
from gateway.translate.chunks import chat_choice, chat_chunk
from gateway.translate.responses import (
    chat_choice_logprobs,
    chat_finish_reason,
    id_suffix,
    raise_failed,
    responses_logprobs_to_chat,
    responses_usage_to_chat,
)
from gateway.translate.shapes import ChatMessage, ToolCall
from gateway.translate.sse import truncated

Event = dict[str, Any]


class ResponsesToChatStream:
    """Responses events from a `responses` upstream -> chat completion chunks for the client."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = ""
        self._created = 0
        self._started = False
        self._ended = False
        self._call_keys: dict[str, int] = {}  # item id or "#output_index" -> tool call index
        self._call_sent: list[str] = []  # arguments sent, per tool call index
        self._sent: dict[tuple[Any, ...], str] = {}  # text sent, per content part
        self._reasoning_started = False

    def feed(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "error":
            raise UpstreamError(
                str(event.get("message") or "The upstream stream failed."),
                code=str(event.get("code") or "upstream_error"),
                param=event.get("param"),
            )
        if kind == "response.failed":
            raise_failed(event.get("response") or {})
        if self._ended:
            return []
        chunks = [] if self._started else self._start(event)
        handler = _HANDLERS.get(str(kind))
        if handler is not None:
            chunks += handler(self, event)
        return chunks

    def finish(self) -> list[Event]:
        if not self._ended:
            raise truncated("The upstream stream ended before the response was complete.")
        return []

    def _chunk(
        self, delta: ChatMessage, finish_reason: str | None = None, logprobs: Any = None
    ) -> Event:
        choices = [chat_choice(0, delta, finish_reason, logprobs)]
        if self._include_usage:  # as OpenAI does: only the last chunk carries usage
            return chat_chunk(self._id, self._created, self._model, choices, usage=None)
        return chat_chunk(self._id, self._created, self._model, choices)

    def _start(self, event: dict[str, Any]) -> list[Event]:
        response = event.get("response") or {}
        # One id for the whole stream, derived from the response so logs can be matched.
        self._id = "chatcmpl-" + id_suffix(response.get("id"))
        # The model the upstream names, as the unstreamed translation reports it.
        if isinstance(response.get("model"), str) and response["model"]:
            self._model = response["model"]
        created = response.get("created_at")
        self._created = int(created) if created else int(time.time())
        self._started = True
        return [self._chunk({"role": "assistant"})]

    # -- text, refusal, reasoning

    def _text(
        self, key: tuple[Any, ...], field_name: str, delta: str, logprobs: Any = None
    ) -> list[Event]:
        if not delta:
            return []
        self._sent[key] = self._sent.get(key, "") + delta
        content = responses_logprobs_to_chat(logprobs)
        part: ChatMessage = {"refusal": delta} if field_name == "refusal" else {"content": delta}
        return [self._chunk(part, logprobs=chat_choice_logprobs(content))]

    def _reasoning(self, key: tuple[Any, ...], delta: str) -> list[Event]:
        if not delta:
            return []
        shown = delta
        if key not in self._sent:
            # Separate summary parts the way the unstreamed translation joins them.
            shown = "\n\n" + delta if self._reasoning_started else delta
            self._reasoning_started = True
        self._sent[key] = self._sent.get(key, "") + delta
        return [self._chunk({"reasoning_content": shown})]

    def _catch_up(self, key: tuple[Any, ...], field_name: str, full: Any) -> list[Event]:
        """A `.done` event whose text went further than its deltas: send the rest."""
        sent = self._sent.get(key, "")
        if not isinstance(full, str) or len(full) <= len(sent) or not full.startswith(sent):
            return []
        rest = full[len(sent) :]
        if field_name == "reasoning_content":
            return self._reasoning(key, rest)
        return self._text(key, field_name, rest)

    def _on_text_delta(self, event: Event) -> list[Event]:
        return self._text(
            ("t", event.get("item_id"), event.get("content_index")),
            "content",
            event.get("delta", ""),
            event.get("logprobs"),
        )

    def _on_text_done(self, event: Event) -> list[Event]:
        return self._catch_up(
            ("t", event.get("item_id"), event.get("content_index")), "content", event.get("text")
        )

    def _on_refusal_delta(self, event: Event) -> list[Event]:
        return self._text(
            ("r", event.get("item_id"), event.get("content_index")),
            "refusal",
            event.get("delta", ""),
        )

    def _on_refusal_done(self, event: Event) -> list[Event]:
        key = ("r", event.get("item_id"), event.get("content_index"))
        return self._catch_up(key, "refusal", event.get("refusal"))

    def _on_summary_delta(self, event: Event) -> list[Event]:
        return self._reasoning(
            ("s", event.get("item_id"), event.get("summary_index")), event.get("delta", "")
        )

    def _on_summary_done(self, event: Event) -> list[Event]:
        key = ("s", event.get("item_id"), event.get("summary_index"))
        return self._catch_up(key, "reasoning_content", event.get("text"))

    def _on_reasoning_text_delta(self, event: Event) -> list[Event]:
        return self._reasoning(
            ("c", event.get("item_id"), event.get("content_index")), event.get("delta", "")
        )

    def _on_reasoning_text_done(self, event: Event) -> list[Event]:
        key = ("c", event.get("item_id"), event.get("content_index"))
        return self._catch_up(key, "reasoning_content", event.get("text"))

    # -- items and function calls

    def _on_item_added(self, event: Event) -> list[Event]:
        item = event.get("item") or {}
        if item.get("type") != "function_call":
            return []
        return self._open_call(item, event.get("output_index"))

    def _on_item_done(self, event: Event) -> list[Event]:
        item = event.get("item") or {}
        item_id = item.get("id")
        kind = item.get("type")
        chunks: list[Event] = []
        if kind == "function_call":
            chunks += self._open_call(item, event.get("output_index"))
            chunks += self._arguments_catch_up(
                self._call_index(event, item_id), item.get("arguments")
            )
        elif kind == "message":
            for content_index, part in enumerate(item.get("content") or []):
                if part.get("type") == "output_text":
                    chunks += self._catch_up(
                        ("t", item_id, content_index), "content", part.get("text")
                    )
                elif part.get("type") == "refusal":
                    chunks += self._catch_up(
                        ("r", item_id, content_index), "refusal", part.get("refusal")
                    )
        elif kind == "reasoning":
            for summary_index, summary in enumerate(item.get("summary") or []):
                chunks += self._catch_up(
                    ("s", item_id, summary_index), "reasoning_content", summary.get("text")
                )
            for content_index, part in enumerate(item.get("content") or []):
                chunks += self._catch_up(
                    ("c", item_id, content_index), "reasoning_content", part.get("text")
                )
        return chunks

    def _open_call(self, item: dict[str, Any], output_index: Any) -> list[Event]:
        keys = [k for k in (item.get("id"), f"#{output_index}") if k]
        if any(k in self._call_keys for k in keys):
            return []
        index = len(self._call_sent)
        self._call_keys.update(dict.fromkeys(keys, index))
        self._call_sent.append("")
        first: ToolCall = {
            "index": index,
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": ""},
        }
        return [
            self._chunk({"tool_calls": [first]}),
            *self._arguments(index, item.get("arguments") or ""),
        ]

    def _call_index(self, event: Event, item_id: Any = None) -> int | None:
        for key in (item_id or event.get("item_id"), f"#{event.get('output_index')}"):
            if key in self._call_keys:
                return self._call_keys[key]
        return None

    def _arguments(self, index: int | None, delta: str) -> list[Event]:
        if index is None or not delta:
            return []
        self._call_sent[index] += delta
        return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": delta}}]})]

    def _arguments_catch_up(self, index: int | None, full: Any) -> list[Event]:
        if index is None or not isinstance(full, str):
            return []
        sent = self._call_sent[index]
        if len(full) <= len(sent) or not full.startswith(sent):
            return []
        return self._arguments(index, full[len(sent) :])

    def _on_arguments_delta(self, event: Event) -> list[Event]:
        return self._arguments(self._call_index(event), event.get("delta") or "")

    def _on_arguments_done(self, event: Event) -> list[Event]:
        return self._arguments_catch_up(self._call_index(event), event.get("arguments"))

    def _on_end(self, event: Event) -> list[Event]:
        response = event.get("response") or {}
        status = (
            "incomplete" if event.get("type") == "response.incomplete" else response.get("status")
        )
        finish = chat_finish_reason(
            status, response.get("incomplete_details"), bool(self._call_sent)
        )
        chunks = [self._chunk({}, finish)]
        usage = responses_usage_to_chat(response.get("usage"))
        if self._include_usage and usage is not None:
            chunks.append(chat_chunk(self._id, self._created, self._model, [], usage=usage))
        self._ended = True
        return chunks


_HANDLERS: dict[str, Callable[[ResponsesToChatStream, Event], list[Event]]] = {
    "response.output_text.delta": ResponsesToChatStream._on_text_delta,
    "response.output_text.done": ResponsesToChatStream._on_text_done,
    "response.refusal.delta": ResponsesToChatStream._on_refusal_delta,
    "response.refusal.done": ResponsesToChatStream._on_refusal_done,
    "response.reasoning_summary_text.delta": ResponsesToChatStream._on_summary_delta,
    "response.reasoning_summary_text.done": ResponsesToChatStream._on_summary_done,
    "response.reasoning_text.delta": ResponsesToChatStream._on_reasoning_text_delta,
    "response.reasoning_text.done": ResponsesToChatStream._on_reasoning_text_done,
    "response.output_item.added": ResponsesToChatStream._on_item_added,
    "response.output_item.done": ResponsesToChatStream._on_item_done,
    "response.function_call_arguments.delta": ResponsesToChatStream._on_arguments_delta,
    "response.function_call_arguments.done": ResponsesToChatStream._on_arguments_done,
    "response.completed": ResponsesToChatStream._on_end,
    "response.incomplete": ResponsesToChatStream._on_end,
}
