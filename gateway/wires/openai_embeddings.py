"""OpenAI embeddings (`POST /embeddings`): relayed as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.accounting import Usage, usage_from_embeddings
from gateway.wires.base import Upstream, Wire

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg


class OpenAIEmbeddings(Wire):
    name = "openai_embeddings"
    openai_tokens = True
    relays = "embeddings"
    embedding = True

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        body["model"] = leg.model.native_id
        return Upstream("/embeddings", body)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_embeddings(data.get("usage"))


WIRE = OpenAIEmbeddings()
