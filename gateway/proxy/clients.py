"""The client's side of a call, one per client API: its request in the internal shape,
the internal answer in its own shape, and its stream framing (SSE data frames for chat,
typed events for Responses). Chosen by a table, like the wires on the upstream side."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from gateway.errors import GatewayError
from gateway.proxy.exchange import Exchange, Leg
from gateway.translate.emulate import completion_to_chunks, response_to_events
from gateway.translate.responses import chat_response_to_responses, responses_request_to_chat
from gateway.translate.responses_stream import ChatToResponsesStream
from gateway.translate.sse import DONE, data_frame, event_frame
from gateway.translate.unified import CARRIED
from gateway.types import ClientAPI
from gateway.wires.base import Chunk


class ClientSide:
    """Chat Completions (the internal shape itself) and the defaults the others share."""

    def __init__(self, embedding: bool = False) -> None:
        self.embedding = embedding  # served by embedding models only

    def pivot(self, leg: Leg) -> dict[str, Any]:
        """The client's request (after policy) in the internal shape."""
        return leg.result.params

    def render(self, leg: Leg, internal: dict[str, Any]) -> dict[str, Any]:
        """An internal answer in the client's shape."""
        return internal

    async def frames(self, leg: Leg, chunks: AsyncIterator[Chunk]) -> AsyncIterator[bytes]:
        include_usage = leg.result.include_usage
        async for chunk in chunks:
            if isinstance(chunk.get("usage"), dict) and not include_usage:
                if not chunk.get("choices"):
                    continue  # the usage chunk the gateway asked for, not the client
                chunk = {**chunk, "usage": None}
            yield data_frame(chunk)
        yield DONE

    def emulated(self, leg: Leg, answer: dict[str, Any]) -> Iterator[bytes]:
        """A whole answer of the client's own API framed as the stream it would have been."""
        for chunk in completion_to_chunks(answer, leg.result.include_usage):
            yield data_frame(chunk)
        yield DONE

    def error_frame(self, ex: Exchange, error: GatewayError) -> bytes:
        """The frame that ends a stream on failure; the OpenAI SDK raises on its `error` key."""
        return data_frame(error.body())


class ResponsesSide(ClientSide):
    def pivot(self, leg: Leg) -> dict[str, Any]:
        params = leg.result.params
        pivot = responses_request_to_chat(params)
        for name in CARRIED:  # the policy's unified parameters ride along as they are
            if name in params:
                pivot[name] = params[name]
            else:
                pivot.pop(name, None)
        return pivot

    def render(self, leg: Leg, internal: dict[str, Any]) -> dict[str, Any]:
        return chat_response_to_responses(internal, leg.result.params)

    async def frames(self, leg: Leg, chunks: AsyncIterator[Chunk]) -> AsyncIterator[bytes]:
        ex = leg.ex
        events = ChatToResponsesStream(leg.result.params, leg.model.native_id)
        async for chunk in chunks:
            for payload in events.feed(chunk):
                ex.sequence = payload.get("sequence_number", ex.sequence) + 1
                yield event_frame(payload)
        for payload in events.finish():
            ex.sequence = payload.get("sequence_number", ex.sequence) + 1
            yield event_frame(payload)

    def emulated(self, leg: Leg, answer: dict[str, Any]) -> Iterator[bytes]:
        for event in response_to_events(answer):
            yield event_frame(event)

    def error_frame(self, ex: Exchange, error: GatewayError) -> bytes:
        err = error.body()["error"]
        return event_frame(
            {
                "type": "error",
                "sequence_number": ex.sequence,
                "code": err["code"],
                "message": err["message"],
                "param": err["param"],
                "error": err,
            }
        )


CLIENTS: dict[ClientAPI, ClientSide] = {
    "chat": ClientSide(),
    "responses": ResponsesSide(),
    "embeddings": ClientSide(
        embedding=True
    ),  # never streamed; its requests and answers are the internal shape
}
