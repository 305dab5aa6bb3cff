"""Embeddings on Gemini: the native batchEmbedContents API and the OpenAI-compatible surface.

Native answers carry no usage, so the input is counted with the offline tokenizer
(gateway.tokens); the compat surface reports usage itself but may not honour base64, so
the gateway asks it for floats and encodes what the client asked for.
"""

from __future__ import annotations

import orjson

from gateway.accounting import Usage, usage_from_embeddings
from gateway.proxy import phases
from gateway.proxy.exchange import Leg
from gateway.proxy.passthrough import parse_json, parse_object
from gateway.tokens import estimate_embedding_input_tokens
from gateway.translate.embeddings import batch_to_embeddings, embeddings_to_batch, ensure_encoding
from gateway.translate.gemini_compat import compat_model_id
from gateway.upstream.client import Upstreams, target_for


def _normalize(leg: Leg) -> bool:
    asked = leg.result.params.pop("normalize_embedding", None)
    return bool(asked) if asked is not None else leg.model.entry.normalize_embedding


async def complete(leg: Leg, upstreams: Upstreams) -> bytes:
    if leg.model.endpoint == "embed_content":
        return await _native(leg, upstreams)
    return await _compat(leg, upstreams)


async def _native(leg: Leg, upstreams: Upstreams) -> bytes:
    entry, params = leg.model.entry, leg.result.params
    with phases.encoding(leg):
        native = compat_model_id(entry.model)
        task_type = entry.task_type or entry.capability_value("task_type")
        dimensions = entry.dimensions or entry.capability_value("output_dimensionality")
        normalize = _normalize(leg)
        body = embeddings_to_batch(params, native, task_type, dimensions)
        target = target_for(leg.model, f"/models/{native}:batchEmbedContents", native_auth=True)
        payload = orjson.dumps(body)
    response = await phases.post(leg, upstreams, target, payload)
    data = parse_json(response.content)
    with phases.decoding(leg):
        tokens = sum(estimate_embedding_input_tokens(params["input"]))
        answer = batch_to_embeddings(data, native, params.get("encoding_format"), normalize, tokens)
        leg.ex.usage = Usage(input=tokens)
        leg.ex.estimated = True
        return orjson.dumps(answer)


async def _compat(leg: Leg, upstreams: Upstreams) -> bytes:
    params = leg.result.params
    with phases.encoding(leg):
        encoding = params.pop("encoding_format", None)
        normalize = _normalize(leg)
        params["model"] = compat_model_id(leg.model.native_id)
        target = target_for(leg.model, "/openai/embeddings")
        payload = orjson.dumps(params)
    response = await phases.post(leg, upstreams, target, payload)
    data = parse_object(response.content)
    with phases.decoding(leg):
        leg.ex.usage = usage_from_embeddings(data.get("usage"))
        return orjson.dumps(ensure_encoding(data, encoding, normalize=normalize))
