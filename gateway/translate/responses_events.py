"""Responses stream events, built one way for everything that emits them.

The live translator (`responses_stream.ChatToResponsesStream`) and the emulator
(`emulate.response_to_events`) both build their events here, so the two cannot drift
apart in shape or numbering.
"""

from __future__ import annotations

from typing import Any


class EventWriter:
    """Makes event payloads; `sequence_number` counts from 0 over one stream."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, **fields, "sequence_number": self._next}
        self._next += 1
        return event

    def item_added(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        return self.emit("response.output_item.added", output_index=index, item=item)

    def item_done(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        return self.emit("response.output_item.done", output_index=index, item=item)

    def part_added(
        self, item_id: str, index: int, content_index: int, part: dict[str, Any]
    ) -> dict[str, Any]:
        return self.emit(
            "response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            part=part,
        )

    def part_done(
        self, item_id: str, index: int, content_index: int, part: dict[str, Any]
    ) -> dict[str, Any]:
        return self.emit(
            "response.content_part.done",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            part=part,
        )

    def part_delta(
        self,
        item_id: str,
        index: int,
        content_index: int,
        kind: str,
        delta: str,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A text or refusal fragment; `kind` is the part's type."""
        if kind == "refusal":
            return self.emit(
                "response.refusal.delta",
                item_id=item_id,
                output_index=index,
                content_index=content_index,
                delta=delta,
            )
        return self.emit(
            "response.output_text.delta",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            delta=delta,
            logprobs=logprobs or [],
        )

    def part_text_done(
        self, item_id: str, index: int, content_index: int, part: dict[str, Any]
    ) -> dict[str, Any]:
        if part["type"] == "refusal":
            return self.emit(
                "response.refusal.done",
                item_id=item_id,
                output_index=index,
                content_index=content_index,
                refusal=part["refusal"],
            )
        return self.emit(
            "response.output_text.done",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            text=part["text"],
            logprobs=part.get("logprobs") or [],
        )

    def annotation_added(
        self,
        item_id: str,
        index: int,
        content_index: int,
        annotation_index: int,
        annotation: dict[str, Any],
    ) -> dict[str, Any]:
        return self.emit(
            "response.output_text.annotation.added",
            item_id=item_id,
            output_index=index,
            content_index=content_index,
            annotation_index=annotation_index,
            annotation=annotation,
        )

    def summary_part_added(self, item_id: str, index: int, summary_index: int) -> dict[str, Any]:
        return self.emit(
            "response.reasoning_summary_part.added",
            item_id=item_id,
            output_index=index,
            summary_index=summary_index,
            part={"type": "summary_text", "text": ""},
        )

    def summary_delta(
        self, item_id: str, index: int, summary_index: int, delta: str
    ) -> dict[str, Any]:
        return self.emit(
            "response.reasoning_summary_text.delta",
            item_id=item_id,
            output_index=index,
            summary_index=summary_index,
            delta=delta,
        )

    def summary_done(
        self, item_id: str, index: int, summary_index: int, text: str
    ) -> list[dict[str, Any]]:
        return [
            self.emit(
                "response.reasoning_summary_text.done",
                item_id=item_id,
                output_index=index,
                summary_index=summary_index,
                text=text,
            ),
            self.emit(
                "response.reasoning_summary_part.done",
                item_id=item_id,
                output_index=index,
                summary_index=summary_index,
                part={"type": "summary_text", "text": text},
            ),
        ]

    def arguments_delta(self, item_id: str, index: int, delta: str) -> dict[str, Any]:
        return self.emit(
            "response.function_call_arguments.delta",
            item_id=item_id,
            output_index=index,
            delta=delta,
        )

    def arguments_done(self, item_id: str, index: int, name: str, arguments: str) -> dict[str, Any]:
        return self.emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            name=name,
            arguments=arguments,
        )


def empty_part(kind: str) -> dict[str, Any]:
    """A content part as announced by `content_part.added`, before any text."""
    if kind == "refusal":
        return {"type": "refusal", "refusal": ""}
    return {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


def replay_item(writer: EventWriter, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The whole event lifecycle of one finished output item, as a live stream shows it."""
    kind = item.get("type")
    item_id = str(item.get("id") or "")
    events: list[dict[str, Any]] = []
    if kind == "message":
        events.append(writer.item_added(index, {**item, "status": "in_progress", "content": []}))
        for content_index, part in enumerate(item.get("content") or []):
            part_kind = part.get("type", "output_text")
            events.append(writer.part_added(item_id, index, content_index, empty_part(part_kind)))
            text = part.get("refusal" if part_kind == "refusal" else "text") or ""
            if text:
                logprobs = part.get("logprobs") if part_kind == "output_text" else None
                events.append(
                    writer.part_delta(item_id, index, content_index, part_kind, text, logprobs)
                )
            for n, annotation in enumerate(part.get("annotations") or []):
                events.append(writer.annotation_added(item_id, index, content_index, n, annotation))
            events.append(writer.part_text_done(item_id, index, content_index, part))
            events.append(writer.part_done(item_id, index, content_index, part))
    elif kind == "reasoning":
        events.append(writer.item_added(index, {**item, "summary": []}))
        for summary_index, summary in enumerate(item.get("summary") or []):
            text = summary.get("text") or ""
            events.append(writer.summary_part_added(item_id, index, summary_index))
            if text:
                events.append(writer.summary_delta(item_id, index, summary_index, text))
            events += writer.summary_done(item_id, index, summary_index, text)
    elif kind == "function_call":
        events.append(writer.item_added(index, {**item, "status": "in_progress", "arguments": ""}))
        arguments = item.get("arguments") or ""
        if arguments:
            events.append(writer.arguments_delta(item_id, index, arguments))
        events.append(writer.arguments_done(item_id, index, str(item.get("name") or ""), arguments))
    else:
        events.append(writer.item_added(index, item))
    events.append(writer.item_done(index, item))
    return events
