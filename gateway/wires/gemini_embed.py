"""Gemini's native batchEmbedContents.

Its answers carry no usage, so the input is counted with the offline tokenizer
(gateway.tokens) and the call's usage is marked as estimated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.registry.ids import model_path
from gateway.tokens import estimate_embedding_input_tokens
from gateway.translate.embeddings import batch_to_embeddings, embeddings_to_batch
from gateway.translate.ids import bare_model
from gateway.wires.base import Upstream, Wire
from gateway.wires.gemini_compat import GENAI_PROVIDER, normalize_embedding

if TYPE_CHECKING:
    from gateway.proxy.exchange import Leg


class GeminiEmbed(Wire):
    name = "gemini_embed"
    embedding = True
    native_embedding_settings = True
    estimates_usage = True
    genai_provider = GENAI_PROVIDER
    id_in_path = True

    def request(self, leg: Leg, body: dict[str, Any]) -> Upstream:
        entry = leg.model.entry
        native = bare_model(entry.model)
        task_type = entry.task_type or entry.capability_value("task_type")
        dimensions = entry.dimensions or entry.capability_value("output_dimensionality")
        return Upstream(
            model_path(native, "batchEmbedContents"),
            embeddings_to_batch(body, native, task_type, dimensions),
            native_auth=True,
        )

    def answer(self, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
        params = leg.result.params
        tokens = sum(estimate_embedding_input_tokens(params["input"]))
        return batch_to_embeddings(
            data,
            bare_model(leg.model.entry.model),
            params.get("encoding_format"),
            normalize_embedding(leg),
            tokens,
        )


WIRE = GeminiEmbed()
