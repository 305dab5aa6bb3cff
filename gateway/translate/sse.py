"""Server-sent events: an incremental parser for upstream streams and the framings we emit.

The parser is fed raw byte chunks as they arrive and yields complete events as soon as
their terminating blank line is seen, so nothing waits for the end of the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import UpstreamError

DONE = b"data: [DONE]\n\n"


def truncated(
    message: str = "The upstream closed the stream before it was complete.",
) -> UpstreamError:
    """The one error for a stream cut short, whichever wire it came on (one metric reason)."""
    return UpstreamError(message, code="upstream_stream_truncated", reason="stream_truncated")


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str
    raw: bytes  # the event's bytes as received, for verbatim relaying

    def json(self) -> Any:
        return orjson.loads(self.data)

    @property
    def is_done(self) -> bool:
        return self.data.startswith("[DONE]")


class SSEParser:
    """WHATWG-style SSE framing: fields per line, an empty line dispatches the event."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            block = buffer[start : end + 2]
            start = end + 2
            event = _parse_block(block)
            if event is not None:
                yield event
        self._buffer = buffer[start:]

    def flush(self) -> Iterator[SSEEvent]:
        """An upstream that closes without a final blank line still delivers its last event."""
        block, self._buffer = self._buffer, b""
        if block.strip():
            event = _parse_block(block + b"\n\n")
            if event is not None:
                yield event


def _parse_block(block: bytes) -> SSEEvent | None:
    event: str | None = None
    data: list[str] = []
    for line in block.decode("utf-8").split("\n"):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if not data and event is None:
        return None
    return SSEEvent(event=event, data="\n".join(data), raw=block)


def data_frame(payload: dict[str, Any]) -> bytes:
    """A chat-completions frame: `data: {json}`."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event_frame(payload: dict[str, Any]) -> bytes:
    """A Responses frame: `event: <type>` then `data: {json}`; the type is in the payload."""
    return (
        b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    )


async def aiter_events(source: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Events from a byte stream, each as soon as it is complete."""
    parser = SSEParser()
    async for chunk in source:
        for event in parser.feed(chunk):
            yield event
    for event in parser.flush():
        yield event
