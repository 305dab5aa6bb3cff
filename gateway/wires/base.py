"""The interface every upstream API implements, and what its methods share.

A `Wire` is one upstream API (OpenAI chat, Responses, embeddings, Gemini's compat surface,
Gemini's native generateContent and batchEmbedContents). The registry picks one per model
when the snapshot is built (gateway.wires.wire_for) and keeps it on the Model; the proxy
only calls these methods. Four jobs: build the upstream request, parse an answer, parse a
stream into events, read usage. The flags say what the policy stage must know about the
upstream's vocabulary, so nothing else asks which provider or endpoint a model has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway.accounting import Usage
from gateway.errors import from_upstream
from gateway.received import chat_texts
from gateway.translate.sse import SSEEvent
from gateway.types import ClientAPI

if TYPE_CHECKING:
    from gateway.policy import PolicyResult
    from gateway.proxy.exchange import Leg

Chunk = dict[str, Any]  # one internal `chat.completion.chunk`


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream request: a path under the deployment's base URL and its JSON body."""

    path: str
    body: dict[str, Any]
    native_auth: bool = False  # Gemini's native API takes `x-goog-api-key`, not a bearer

    def encoded(self) -> bytes:
        # orjson's bytes keep its whole output buffer (4 KB for a 100-byte body, measured),
        # and this one lives as long as the call (a held stream: minutes): exact size.
        return bytes(memoryview(orjson.dumps(self.body)))


class StreamParser(Protocol):
    """A state machine fed one upstream stream event at a time, giving internal chunks."""

    def feed(self, data: dict[str, Any]) -> Iterable[Chunk]: ...

    def finish(self) -> Iterable[Chunk]:
        """The closing chunks; raises when the stream was cut short."""
        ...


class Wire:
    """One upstream API. Subclasses set the flags and override what they support."""

    name: str = ""
    # The client API this upstream speaks as it is: its clients are relayed (passthrough).
    relays: ClientAPI | None = None
    embedding: bool = False
    # What the policy stage renders for it (gateway.policy).
    takes_effort: bool = (
        False  # `reasoning_effort` as is; the Gemini thinking vocabulary is dropped
    )
    maps_effort: bool = False  # a Gemini surface that maps `reasoning_effort` to thinking itself
    summary_for_thoughts: bool = False  # thoughts are asked for with `reasoning.summary`
    native_embedding_settings: bool = False  # takes `task_type` and `normalize_embedding`
    id_in_path: bool = False  # the model id is a URL path segment (checked strictly at load)
    estimates_usage: bool = False  # answers carry no usage: the gateway counts the input itself
    # The upstream counts tokens with OpenAI's encodings, as the offline tokenizer does: an
    # estimate for it needs no safety margin (gateway.estimate).
    openai_tokens: bool = False
    genai_provider: str | None = (
        None  # OpenTelemetry's gen_ai.provider.name; None: the registry's name
    )

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        """The upstream request for `body`: the internal shape (a chat request or an
        embeddings request), or, when relaying, the client's own body with the policy's edits."""
        raise NotImplementedError

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        """An upstream answer in the internal shape (a chat completion, an embeddings list)."""
        return data

    def parser(self, leg: Leg) -> StreamParser:
        return ChatChunks()

    def usage(self, data: dict[str, Any]) -> Usage | None:
        """The usage an upstream answer reports (gateway.accounting reads each shape)."""
        return None

    def relay(
        self, leg: Leg, events: AsyncIterator[SSEEvent], secrets: list[str]
    ) -> AsyncIterator[bytes]:
        """A stream relayed to a client of the same API, event by event."""
        raise NotImplementedError

    def stream_usage(self, data: dict[str, Any]) -> tuple[Usage | None, bool]:
        """The usage one upstream stream event carries, and whether it is the call's final
        count (else a running one). Read before the parser, which may hold it back."""
        return (self.usage(data), True) if isinstance(data.get("usage"), dict) else (None, False)

    def output_texts(self, data: dict[str, Any], out: list[str]) -> int:
        """The output text of one upstream stream event, appended to `out`, and the tool
        calls it starts: what a call cut before its usage is billed for (gateway.received)."""
        return chat_texts(data, out)


class ChatChunks:
    """An upstream that streams chat chunks already: passed on, an error event raised."""

    def feed(self, data: dict[str, Any]) -> Iterable[Chunk]:
        if data.get("error"):
            raise from_upstream(500, orjson.dumps(data))
        return (data,)

    def finish(self) -> Iterable[Chunk]:
        return ()


def set_stream(body: dict[str, Any], result: PolicyResult, usage_option: bool) -> None:
    """Stream upstream only when the client streams and the policy lets it; always ask
    for usage then, so a streamed call is counted exactly like an unstreamed one."""
    if result.upstream_stream:
        body["stream"] = True
        if usage_option:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            body["stream_options"] = options
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
