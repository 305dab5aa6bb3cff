"""Stream translation between chat chunks and Responses events, one event at a time.

Each direction is a small state machine: `feed` takes one upstream chunk or event and
returns what the client should see now; `finish` is called once the upstream stream has
ended and returns the terminal frames. Only the item being streamed is held, never the
stream: the final Response a Responses client gets needs the finished items anyway.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import UpstreamError
from gateway.translate.responses import (
    annotation_to_responses,
    call_item_id,
    chat_logprobs_to_responses,
    chat_usage_to_responses,
    finish_status,
    function_call_item,
    id_suffix,
    message_item,
    reasoning_item,
    response_object,
)
from gateway.translate.responses_chat_stream import ResponsesToChatStream
from gateway.translate.responses_events import EventWriter, empty_part

__all__ = ["ChatToResponsesStream", "ResponsesToChatStream"]

Event = dict[str, Any]


@dataclass(slots=True)
class _Open:
    """A reasoning or message item being streamed (function calls are `_Call`)."""

    index: int
    item_id: str
    text: str = ""  # reasoning summary
    parts: list[dict[str, Any]] = field(default_factory=list)  # message content


@dataclass(slots=True)
class _Call:
    index: int = -1  # output_index, -1 until the call's name is known and it is announced
    item_id: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class ChatToResponsesStream:
    """Chat completion chunks from a chat upstream -> Responses events for the client."""

    def __init__(self, request: dict[str, Any], model: str) -> None:
        self._request = request
        self._model = model
        self._writer = EventWriter()
        self._base: str | None = None
        self._created_at = 0
        self._items: dict[int, dict[str, Any]] = {}  # finished items by output_index
        self._next_index = 0
        self._id_counts: dict[str, int] = {}
        self._reasoning: _Open | None = None
        self._message: _Open | None = None
        self._calls: dict[int, _Call] = {}
        self._last_call_key = -1
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._service_tier: str | None = None
        self._closed = False  # items closed: a finish_reason arrived
        self._ended = False  # terminal event sent

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if self._ended:
            return []
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(
                str(message or "The upstream stream failed."), code="upstream_error"
            )
        events = self._start(chunk) if self._base is None else []
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        if chunk.get("service_tier"):
            self._service_tier = chunk["service_tier"]
        if self._closed:
            return events
        for choice in chunk.get("choices") or []:
            # A Response has one answer; further choices (n > 1) have no place in it.
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                events += self._on_reasoning(delta["reasoning_content"])
            if delta.get("content"):
                logprobs = (choice.get("logprobs") or {}).get("content")
                events += self._on_part("output_text", delta["content"], logprobs)
            if delta.get("refusal"):
                events += self._on_part("refusal", delta["refusal"])
            if delta.get("annotations"):
                events += self._on_annotations(delta["annotations"])
            for call in delta.get("tool_calls") or []:
                events += self._on_tool_call(call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                events += self._close_all()
        return events

    def finish(self) -> list[Event]:
        if self._ended:
            return []
        events = self._start({}) if self._base is None else []
        if not self._closed:
            events += self._close_all()
        status, incomplete = finish_status(self._finish_reason)
        output = [self._items[i] for i in sorted(self._items)]
        response = self._envelope(status, output, chat_usage_to_responses(self._usage), incomplete)
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._writer.emit(terminal, response=response))
        self._ended = True
        return events

    # -- lifecycle

    def _envelope(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        incomplete: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return response_object(
            self._request,
            response_id="resp_" + str(self._base),
            created_at=self._created_at,
            model=self._model,
            status=status,
            output=output,
            usage=usage,
            incomplete_details=incomplete,
            service_tier=self._service_tier,
        )

    def _start(self, chunk: dict[str, Any]) -> list[Event]:
        self._base = id_suffix(chunk.get("id"))
        # The model the upstream names, as the unstreamed translation reports it.
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = chunk["model"]
        self._created_at = chunk.get("created") or int(time.time())
        start = self._envelope("in_progress", [], None, None)
        return [
            self._writer.emit("response.created", response=start),
            self._writer.emit("response.in_progress", response=start),
        ]

    def _take_index(self) -> int:
        self._next_index += 1
        return self._next_index - 1

    def _new_item_id(self, prefix: str) -> str:
        # The first item of a kind gets the id the unstreamed translation gives it.
        count = self._id_counts.get(prefix, 0)
        self._id_counts[prefix] = count + 1
        return f"{prefix}{self._base}" if count == 0 else f"{prefix}{self._base}_{count}"

    # -- reasoning and message items

    def _on_reasoning(self, text: str) -> list[Event]:
        events: list[Event] = []
        item = self._reasoning
        if item is None:
            events += self._close_message()
            item = self._reasoning = _Open(self._take_index(), self._new_item_id("rs_"))
            events.append(self._writer.item_added(item.index, reasoning_item(item.item_id, [])))
            events.append(self._writer.summary_part_added(item.item_id, item.index, 0))
        item.text += text
        events.append(self._writer.summary_delta(item.item_id, item.index, 0, text))
        return events

    def _close_reasoning(self) -> list[Event]:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return []
        events = self._writer.summary_done(item.item_id, item.index, 0, item.text)
        done = self._items[item.index] = reasoning_item(item.item_id, [item.text])
        events.append(self._writer.item_done(item.index, done))
        return events

    def _open_message(self) -> tuple[_Open, list[Event]]:
        events = self._close_reasoning()
        if self._message is None:
            self._message = _Open(self._take_index(), self._new_item_id("msg_"))
            added = message_item(self._message.item_id, [], "in_progress")
            events.append(self._writer.item_added(self._message.index, added))
        return self._message, events

    def _on_part(self, kind: str, text: str, logprobs: Any = None) -> list[Event]:
        item, events = self._open_message()
        if not item.parts or item.parts[-1]["type"] != kind:
            item.parts.append(empty_part(kind))
            events.append(
                self._writer.part_added(
                    item.item_id, item.index, len(item.parts) - 1, empty_part(kind)
                )
            )
        part = item.parts[-1]
        part["refusal" if kind == "refusal" else "text"] += text
        delta_logprobs = None
        if kind == "output_text" and logprobs:
            part["logprobs"] += chat_logprobs_to_responses(logprobs)
            delta_logprobs = chat_logprobs_to_responses(logprobs, delta=True)
        events.append(
            self._writer.part_delta(
                item.item_id, item.index, len(item.parts) - 1, kind, text, delta_logprobs
            )
        )
        return events

    def _on_annotations(self, annotations: list[dict[str, Any]]) -> list[Event]:
        # Annotations arrive whole: each is announced at once and kept for the done part.
        item = self._message
        if item is None or not item.parts or item.parts[-1]["type"] != "output_text":
            return []
        part, content_index = item.parts[-1], len(item.parts) - 1
        events = []
        for annotation in annotations:
            converted = annotation_to_responses(annotation)
            events.append(
                self._writer.annotation_added(
                    item.item_id, item.index, content_index, len(part["annotations"]), converted
                )
            )
            part["annotations"].append(converted)
        return events

    def _close_message(self, status: str = "completed") -> list[Event]:
        item, self._message = self._message, None
        if item is None:
            return []
        events: list[Event] = []
        for content_index, part in enumerate(item.parts):
            events.append(
                self._writer.part_text_done(item.item_id, item.index, content_index, part)
            )
            events.append(self._writer.part_done(item.item_id, item.index, content_index, part))
        done = self._items[item.index] = message_item(item.item_id, item.parts, status)
        events.append(self._writer.item_done(item.index, done))
        return events

    # -- function calls

    def _call_key(self, fragment: dict[str, Any]) -> int:
        index = fragment.get("index")
        if isinstance(index, int):
            return index
        # Some upstreams omit the index and send each call whole: a new id is a new call.
        call_id = fragment.get("id")
        known = any(call.call_id == call_id for call in self._calls.values())
        if self._last_call_key < 0 or (call_id and not known):
            return len(self._calls)
        return self._last_call_key

    def _on_tool_call(self, fragment: dict[str, Any]) -> list[Event]:
        key = self._last_call_key = self._call_key(fragment)
        call = self._calls.setdefault(key, _Call())
        function = fragment.get("function") or {}
        call.call_id = call.call_id or fragment.get("id") or ""
        call.name = call.name or function.get("name") or ""
        arguments = function.get("arguments") or ""
        call.arguments += arguments
        if call.index >= 0:
            return (
                [self._writer.arguments_delta(call.item_id, call.index, arguments)]
                if arguments
                else []
            )
        if not call.name:
            return []  # announced once its name is known; arguments so far are kept
        events = self._close_reasoning() + self._close_message()
        call.index = self._take_index()
        call.call_id = call.call_id or "call_" + secrets.token_hex(12)
        call.item_id = call_item_id(call.call_id)
        added = function_call_item(call.item_id, call.call_id, call.name, "", "in_progress")
        events.append(self._writer.item_added(call.index, added))
        if call.arguments:
            events.append(self._writer.arguments_delta(call.item_id, call.index, call.arguments))
        return events

    def _close_all(self) -> list[Event]:
        status = (
            "incomplete" if self._finish_reason in ("length", "content_filter") else "completed"
        )
        events = self._close_reasoning() + self._close_message(status)
        for call in sorted(self._calls.values(), key=lambda c: c.index):
            if call.index < 0:
                raise UpstreamError(
                    "The upstream sent a tool call without a name.", code="upstream_error"
                )
            events.append(
                self._writer.arguments_done(call.item_id, call.index, call.name, call.arguments)
            )
            done = function_call_item(call.item_id, call.call_id, call.name, call.arguments, status)
            self._items[call.index] = done
            events.append(self._writer.item_done(call.index, done))
        self._calls = {}
        if not self._items:
            # Nothing was said: still one (empty) message, as the unstreamed translation has.
            item, opened = self._open_message()
            item.parts.append(empty_part("output_text"))
            events += opened
            events.append(
                self._writer.part_added(item.item_id, item.index, 0, empty_part("output_text"))
            )
            events += self._close_message(status)
        self._closed = True
        return events
