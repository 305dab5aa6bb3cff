"""Gemini's native generateContent and streamGenerateContent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.accounting import Usage, usage_from_gemini
from gateway.received import gemini_texts
from gateway.registry.ids import model_path
from gateway.translate.gemini import chat_to_generate_content, generate_content_to_chat
from gateway.translate.gemini_stream import GeminiToChatStream
from gateway.translate.ids import bare_model
from gateway.wires.base import StreamParser, Upstream, Wire
from gateway.wires.gemini_compat import GENAI_PROVIDER

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg


class GeminiNative(Wire):
    name = "gemini_native"
    genai_provider = GENAI_PROVIDER
    id_in_path = True

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        native = leg.model.native_id  # model_path keeps it one path segment, whatever it holds
        stream = leg.result.upstream_stream
        path = (
            model_path(native, "streamGenerateContent") + "?alt=sse"
            if stream
            else model_path(native, "generateContent")
        )
        return Upstream(path, chat_to_generate_content(body), native_auth=True)

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        return generate_content_to_chat(
            data, bare_model(leg.model.native_id), leg.result.include_thoughts
        )

    def parser(self, leg: Leg) -> StreamParser:
        return GeminiToChatStream(
            bare_model(leg.model.native_id), leg.result.include_thoughts, include_usage=True
        )

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_gemini(data.get("usageMetadata"))

    def stream_usage(self, data: dict[str, Any]) -> tuple[Usage | None, bool]:
        """Every chunk repeats the running usageMetadata; the one with finishReason holds
        the call's whole count (GeminiToChatStream gives it out only at the stream's end)."""
        meta = data.get("usageMetadata")
        if not isinstance(meta, dict):
            return None, False
        final = any(
            isinstance(c, dict) and c.get("finishReason") for c in data.get("candidates") or ()
        )
        return usage_from_gemini(meta), final

    def output_texts(self, data: dict[str, Any], out: list[str]) -> int:
        return gemini_texts(data, out)


WIRE = GeminiNative()
