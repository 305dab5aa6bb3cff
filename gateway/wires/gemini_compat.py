"""Gemini's OpenAI-compatible surface (`/openai/chat/completions`, `/openai/embeddings`).

OpenAI-shaped, but not OpenAI: thoughts arrive inline, usage leaves reasoning out of
completion_tokens, tool calls need their thought signatures, and embeddings may ignore
base64. So it is bridged (gateway.translate.gemini_compat fixes each), never relayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.accounting import Usage, usage_from_embeddings, usage_from_gemini_compat
from gateway.translate.embeddings import ensure_encoding
from gateway.translate.gemini_compat import (
    CompatStreamFixer,
    compat_model_id,
    compat_request,
    compat_response,
)
from gateway.wires.base import StreamParser, Upstream, Wire, set_stream

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg

GENAI_PROVIDER = "gcp.gemini"  # OpenTelemetry's well-known name for the Gemini API


class _CompatChunks(CompatStreamFixer):
    def finish(self) -> tuple[()]:
        return ()  # the compat stream ends with [DONE] like OpenAI's: nothing to close


class GeminiCompatChat(Wire):
    name = "gemini_compat_chat"
    maps_effort = True  # the compat surface maps reasoning_effort to thinking itself
    genai_provider = GENAI_PROVIDER

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        out = compat_request(body)
        out["model"] = compat_model_id(leg.model.native_id)
        set_stream(out, leg.result, usage_option=True)
        return Upstream("/openai/chat/completions", out)

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        return compat_response(data, leg.result.include_thoughts)

    def parser(self, leg: Leg) -> StreamParser:
        return _CompatChunks(leg.result.include_thoughts)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_gemini_compat(data.get("usage"))


def normalize_embedding(leg: Leg) -> bool:
    """The client's `normalize_embedding`, else the model's setting."""
    asked = leg.result.params.get("normalize_embedding")
    return bool(asked) if asked is not None else leg.model.entry.normalize_embedding


class GeminiCompatEmbeddings(Wire):
    name = "gemini_compat_embeddings"
    embedding = True
    genai_provider = GENAI_PROVIDER

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        # Floats always: the answer is encoded here as the client asked (see answer()).
        out = {k: v for k, v in body.items() if k != "encoding_format"}
        out["model"] = compat_model_id(leg.model.native_id)
        return Upstream("/openai/embeddings", out)

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        return ensure_encoding(
            data, leg.result.params.get("encoding_format"), normalize=normalize_embedding(leg)
        )

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_embeddings(data.get("usage"))


CHAT = GeminiCompatChat()
EMBEDDINGS = GeminiCompatEmbeddings()
