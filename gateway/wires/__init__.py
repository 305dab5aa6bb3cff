"""One adapter per upstream API, chosen once per model when the registry is built.

Adding a provider is one new module here (a `Wire` subclass) plus its line in `WIRES`
and its registry data; nothing in the proxy, the policy or the metrics changes.
"""

from __future__ import annotations

from gateway.wires import (
    gemini_compat,
    gemini_embed,
    gemini_native,
    openai_chat,
    openai_embeddings,
    openai_responses,
)
from gateway.wires.base import StreamParser, Upstream, Wire

# (provider kind, endpoint) as the registry names them -> the wire that speaks it.
WIRES: dict[tuple[str, str], Wire] = {
    ("openai", "chat_completions"): openai_chat.WIRE,
    ("openai", "responses"): openai_responses.WIRE,
    ("openai", "embeddings"): openai_embeddings.WIRE,
    ("gemini", "chat_completions"): gemini_compat.CHAT,
    ("gemini", "embeddings"): gemini_compat.EMBEDDINGS,
    ("gemini", "gemini_sdk"): gemini_native.WIRE,
    ("gemini", "embed_content"): gemini_embed.WIRE,
}


def wire_for(kind: str, endpoint: str) -> Wire | None:
    return WIRES.get((kind, endpoint))


__all__ = ["WIRES", "StreamParser", "Upstream", "Wire", "wire_for"]
