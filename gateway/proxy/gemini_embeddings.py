"""Embeddings on Gemini: the native batchEmbedContents API and the OpenAI-compatible surface.

Native answers carry no usage, so the input is counted with the offline tokenizer
(gateway.tokens); the compat surface reports usage itself but may not honour base64, so
the gateway asks it for floats and encodes what the client asked for.
"""

from __future__ import annotations

import orjson

from gateway.accounting import Usage, usage_from_embeddings
from gateway.proxy import timing
from gateway.proxy.exchange import Exchange
from gateway.proxy.passthrough import parse_json
from gateway.tokens import estimate_embedding_input_tokens
from gateway.translate.embeddings import batch_to_embeddings, embeddings_to_batch, ensure_encoding
from gateway.translate.gemini_compat import compat_model_id
from gateway.upstream.client import Upstreams, target_for


def _normalize(ex: Exchange) -> bool:
    asked = ex.result.params.pop("normalize_embedding", None)
    return bool(asked) if asked is not None else ex.model.entry.normalize_embedding


async def complete(ex: Exchange, upstreams: Upstreams) -> bytes:
    if ex.model.endpoint == "embed_content":
        return await _native(ex, upstreams)
    return await _compat(ex, upstreams)


async def _native(ex: Exchange, upstreams: Upstreams) -> bytes:
    entry, params = ex.model.entry, ex.result.params
    native = compat_model_id(entry.model)
    task_type = entry.task_type or entry.capability_value("task_type")
    dimensions = entry.dimensions or entry.capability_value("output_dimensionality")
    normalize = _normalize(ex)
    body = embeddings_to_batch(params, native, task_type, dimensions)
    target = target_for(ex.model, f"/models/{native}:batchEmbedContents", native_auth=True)
    response = await timing.upstream(ex, upstreams.post(target, orjson.dumps(body)))
    tokens = sum(estimate_embedding_input_tokens(params["input"]))
    answer = batch_to_embeddings(parse_json(response.content), native, params.get("encoding_format"),
                                 normalize, tokens)
    ex.usage = Usage(input=tokens)
    return orjson.dumps(answer)


async def _compat(ex: Exchange, upstreams: Upstreams) -> bytes:
    params = ex.result.params
    encoding = params.pop("encoding_format", None)
    normalize = _normalize(ex)
    params["model"] = compat_model_id(ex.model.native_id)
    target = target_for(ex.model, "/openai/embeddings")
    response = await timing.upstream(ex, upstreams.post(target, orjson.dumps(params)))
    data = parse_json(response.content)
    ex.usage = usage_from_embeddings(data.get("usage"))
    return orjson.dumps(ensure_encoding(data, encoding, normalize=normalize))
