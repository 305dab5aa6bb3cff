"""OpenAI Responses (`POST /responses`): relayed to Responses clients, bridged for chat ones."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from gateway.accounting import Usage, usage_from_responses
from gateway.errors import from_upstream
from gateway.received import responses_texts
from gateway.translate.history import responses_input_for_openai
from gateway.translate.responses import chat_request_to_responses, responses_response_to_chat
from gateway.translate.responses_stream import ResponsesToChatStream
from gateway.translate.sse import SSEEvent, truncated
from gateway.wires.base import StreamParser, Upstream, Wire, set_stream

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_SEQUENCE = re.compile(rb'"sequence_number":\s*(\d+)')


class OpenAIResponses(Wire):
    name = "openai_responses"
    openai_tokens = True
    relays = "responses"
    takes_effort = True
    summary_for_thoughts = True

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        if leg.client_api == self.relays:
            if "input" in body:  # call ids from a Gemini model: the short ones
                body["input"] = responses_input_for_openai(body["input"])
            effort = body.pop("reasoning_effort", None)
            if effort is not None:
                reasoning = body.get("reasoning")
                reasoning = dict(reasoning) if isinstance(reasoning, dict) else {}
                reasoning["effort"] = effort
                body["reasoning"] = reasoning
        else:
            body = chat_request_to_responses(body)
        body["model"] = leg.model.native_id
        set_stream(body, leg.result, usage_option=False)
        return Upstream("/responses", body)

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        return responses_response_to_chat(data)

    def parser(self, leg: Leg) -> StreamParser:
        return ResponsesToChatStream(leg.model.native_id, include_usage=True)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_responses(data.get("usage"))

    def stream_usage(self, data: dict[str, Any]) -> tuple[Usage | None, bool]:
        response = data.get("response")
        if data.get("type") in TERMINAL and isinstance(response, dict):
            return usage_from_responses(response.get("usage")), True
        return None, False

    def output_texts(self, data: dict[str, Any], out: list[str]) -> int:
        return responses_texts(data, out)

    async def relay(
        self, leg: Leg, events: AsyncIterator[SSEEvent], secrets: list[str]
    ) -> AsyncIterator[bytes]:
        """Events relayed as they came; the terminal one is parsed for its usage."""
        ex = leg.ex
        ended = False
        async for event in events:
            # An error frame the gateway adds after a fault continues the stream's numbering.
            seq = _SEQUENCE.search(event.raw)
            if seq is not None:
                ex.sequence = int(seq.group(1)) + 1
            name = event.event
            if name is None or name in TERMINAL or name == "error":
                data = event.json()
                if isinstance(data, dict):
                    name = str(data.get("type", name))
                    if name == "error" or (data.get("error") and name not in TERMINAL):
                        raise from_upstream(
                            500, orjson.dumps({"error": data.get("error") or data}), None, secrets
                        )
                    response = data.get("response")
                    if name in TERMINAL and isinstance(response, dict):
                        ended = True
                        ex.usage = usage_from_responses(response.get("usage"))
                        ex.service_tier = response.get("service_tier")
            elif ex.first_token_at is None and name.endswith(".delta"):
                ex.first_token()
            yield event.raw
        if not ended:
            raise truncated()


WIRE = OpenAIResponses()
