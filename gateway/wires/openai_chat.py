"""OpenAI Chat Completions (`POST /chat/completions`): the internal shape itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from gateway.accounting import Usage, usage_from_chat
from gateway.errors import UpstreamError, from_upstream
from gateway.translate.history import chat_messages_for_openai
from gateway.translate.sse import DONE, SSEEvent, data_frame, truncated
from gateway.wires.base import Upstream, Wire, set_stream

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg


class OpenAIChat(Wire):
    name = "openai_chat"
    openai_tokens = True
    relays = "chat"
    takes_effort = True

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        body["model"] = leg.model.native_id
        if "messages" in body:  # a history from a Gemini model: only what OpenAI takes
            body["messages"] = chat_messages_for_openai(body["messages"])
        if "max_output_tokens" in body:
            # OpenAI's current name; `max_tokens` is rejected by reasoning models.
            body["max_completion_tokens"] = body.pop("max_output_tokens")
        set_stream(body, leg.result, usage_option=True)
        return Upstream("/chat/completions", body)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_chat(data.get("usage"))

    async def relay(
        self, leg: Leg, events: AsyncIterator[SSEEvent], secrets: list[str]
    ) -> AsyncIterator[bytes]:
        """Chunks relayed as they came; only those that carry usage are parsed (to account
        for the call), and the usage chunk the gateway asked for is hidden from a client
        that did not ask for it."""
        ex, include_usage = leg.ex, leg.result.include_usage
        done = False
        async for event in events:
            if event.is_done:
                done = True
                continue
            raw = event.raw
            if not event.data:  # an `event:` line alone (a keep-alive): nothing to read
                yield raw
                continue
            # A chunk that is not a JSON object (cut short, or not one at all) ends the
            # stream with an error the SDKs raise on, never relayed before a [DONE]. Only
            # chunks that may carry usage or an error are parsed: a parse is about a
            # microsecond and a stream has a chunk per token (docs/hardening.md).
            text = event.data
            if text[:1] != "{" or text.rstrip()[-1:] != "}":
                raise _not_json()
            if '"usage"' not in text and '"error"' not in text:
                data = None
            else:
                try:
                    data = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise _not_json() from None
            if isinstance(data, dict) and (
                data.get("error") or isinstance(data.get("usage"), dict)
            ):
                if data.get("error"):
                    raise from_upstream(500, orjson.dumps(data), None, secrets)
                if isinstance(data.get("usage"), dict):
                    ex.usage = usage_from_chat(data["usage"])
                    ex.service_tier = data.get("service_tier")
                    if not include_usage:
                        if not data.get("choices"):
                            continue
                        data["usage"] = None
                        raw = data_frame(data)
            if ex.first_token_at is None and b'"delta"' in raw:
                ex.first_token()
            yield raw
        if not done:
            raise truncated()
        yield DONE


def _not_json() -> UpstreamError:
    return UpstreamError(
        "The upstream sent a stream chunk that is not JSON.",
        code="upstream_invalid_response",
        reason="invalid_response",
    )


WIRE = OpenAIChat()
