"""OpenAI embeddings <-> Gemini `:batchEmbedContents`, and the float/base64 encodings.

`encoding_format: "base64"` means each vector as the base64 of its packed little-endian
float32 values: exactly what the OpenAI SDK decodes with `base64.b64decode` and
`array("f")` / `numpy.frombuffer(dtype=float32)` (and it asks for base64 by default).

Gemini's compat embeddings surface (`{base}/openai/embeddings`) is not documented to
honour `encoding_format: base64`, so the caller should ask it for floats and let
`ensure_encoding` produce what the client asked for; that also works if a future
version of the surface does send base64.
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from typing import Any

from gateway.errors import BadRequest, UpstreamError
from gateway.translate.ids import resource_model

_FORMATS = (None, "float", "base64")


def encode_base64(vector: list[float]) -> str:
    """Packed little-endian float32, base64: the OpenAI wire format for embeddings."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(data: str) -> list[float]:
    packed = array("f", base64.b64decode(data))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def normalized(vector: list[float]) -> list[float]:
    """Unit length. Gemini vectors truncated below their full size (outputDimensionality)
    are not normalized, and Google recommends normalizing them for cosine similarity."""
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else list(vector)


def _check_format(encoding_format: str | None) -> None:
    if encoding_format not in _FORMATS:
        raise BadRequest("'encoding_format' must be float or base64", param="encoding_format")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
        raise BadRequest(
            "Token id input is not supported by Gemini embedding models; send text.",
            param="input",
        )
    raise BadRequest("'input' must be a string or a non-empty list of strings", param="input")


def embeddings_to_batch(
    body: dict[str, Any],
    model: str,
    task_type: str | None,
    default_dimensions: int | None,
) -> dict[str, Any]:
    """An OpenAI embeddings request as a `batchEmbedContents` body, one request per input.

    `task_type` in the request body (a Gemini extra the client may send) wins over the
    model's configured one; `dimensions` wins over the model's default.
    """
    _check_format(body.get("encoding_format"))
    texts = _texts(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = default_dimensions
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions <= 0
    ):
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
    chosen_task = body.get("task_type") or task_type
    name = resource_model(model)
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if chosen_task:
            request["taskType"] = str(chosen_task).upper()
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def _item(index: int, vector: list[float], encoding_format: str | None) -> dict[str, Any]:
    embedding: list[float] | str = encode_base64(vector) if encoding_format == "base64" else vector
    return {"object": "embedding", "index": index, "embedding": embedding}


def batch_to_embeddings(
    resp: dict[str, Any],
    model: str,
    encoding_format: str | None,
    normalize: bool,
    prompt_tokens: int,
) -> dict[str, Any]:
    """A `batchEmbedContents` answer (`{embeddings: [{values}]}`) as an OpenAI list.

    Gemini's embed answers carry no token usage, so usage is the caller's estimate.
    """
    _check_format(encoding_format)
    embeddings = resp.get("embeddings")
    if not isinstance(embeddings, list):
        raise UpstreamError("Gemini answered without embeddings.", code="upstream_error")
    data = []
    for index, item in enumerate(embeddings):
        vector = [float(v) for v in (item or {}).get("values") or []]
        data.append(_item(index, normalized(vector) if normalize else vector, encoding_format))
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def ensure_encoding(
    response: dict[str, Any], encoding_format: str | None, normalize: bool = False
) -> dict[str, Any]:
    """An upstream OpenAI-shaped embeddings answer in the encoding the client asked for
    (floats are encoded, base64 decoded as needed), optionally re-normalized."""
    _check_format(encoding_format)
    data = []
    for item in response.get("data") or []:
        vector = item.get("embedding")
        if isinstance(vector, str) and (normalize or encoding_format != "base64"):
            vector = decode_base64(vector)
        if isinstance(vector, list):
            vector = normalized(vector) if normalize else vector
            if encoding_format == "base64":
                vector = encode_base64(vector)
        data.append({**item, "embedding": vector})
    return {**response, "data": data}
