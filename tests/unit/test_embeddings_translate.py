"""OpenAI embeddings <-> Gemini batchEmbedContents, and base64 as the OpenAI SDK reads it."""

from __future__ import annotations

import array
import base64
import math
import struct
from typing import Any

import pytest
from openai import omit
from openai._models import construct_type
from openai.lib._parsing._embeddings import parse_embedding_response
from openai.types import CreateEmbeddingResponse

from gateway.errors import BadRequest, UpstreamError
from gateway.translate.embeddings import (
    batch_to_embeddings,
    decode_base64,
    embeddings_to_batch,
    encode_base64,
    ensure_encoding,
)

VECTORS = [[0.5, -0.25, 0.125, 3.0], [1e-3, -7.5, 0.0, 2.0]]


def test_request_golden() -> None:
    body = {"model": "gemini:embed", "input": ["first", "second"], "dimensions": 768,
            "encoding_format": "base64", "user": "u"}  # fmt: skip
    assert embeddings_to_batch(body, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", 1536) == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]},
             "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]},
             "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768},
        ]
    }  # fmt: skip


def test_request_defaults_and_task_type_override() -> None:
    body = {"input": "one", "task_type": "retrieval_query"}
    assert embeddings_to_batch(body, "models/text-embedding-004", None, 256) == {
        "requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]},
                      "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 256}]
    }  # fmt: skip
    assert embeddings_to_batch({"input": "one"}, "m", None, None) == {
        "requests": [{"model": "models/m", "content": {"parts": [{"text": "one"}]}}]
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": []}, "input"),
        ({"input": None}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": "768"}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_request_errors(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        embeddings_to_batch(body, "m", None, None)
    assert info.value.param == param


def _sdk_decode(response: dict[str, Any]) -> list[list[float]]:
    """Exactly what the openai SDK does when the caller did not choose a format: build the
    response object the way its HTTP layer does, then run its own embedding parser."""
    obj = construct_type(type_=CreateEmbeddingResponse, value=response)
    assert isinstance(obj, CreateEmbeddingResponse)
    parsed = parse_embedding_response(obj, encoding_format=omit)
    return [list(item.embedding) for item in parsed.data]


def test_batch_to_embeddings_base64_matches_the_sdk_decoder() -> None:
    resp = {"embeddings": [{"values": v} for v in VECTORS]}
    out = batch_to_embeddings(resp, "gemini:embed", "base64", normalize=False, prompt_tokens=9)
    assert out["object"] == "list"
    assert out["model"] == "gemini:embed"
    assert out["usage"] == {"prompt_tokens": 9, "total_tokens": 9}
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert all(isinstance(d["embedding"], str) for d in out["data"])
    expected = [array.array("f", v).tolist() for v in VECTORS]  # float32 precision
    assert _sdk_decode(out) == expected
    for item, vector in zip(out["data"], expected, strict=True):
        raw = base64.b64decode(item["embedding"])
        assert array.array("f", raw).tolist() == vector
        assert list(struct.unpack(f"<{len(vector)}f", raw)) == vector  # little-endian float32


def test_batch_to_embeddings_float_and_normalized() -> None:
    resp = {"embeddings": [{"values": [3.0, 4.0]}, {"values": [0.0, 0.0]}]}
    out = batch_to_embeddings(resp, "m", None, normalize=True, prompt_tokens=2)
    assert out["data"] == [
        {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]},
        {"object": "embedding", "index": 1, "embedding": [0.0, 0.0]},
    ]
    out = batch_to_embeddings(resp, "m", "float", normalize=False, prompt_tokens=2)
    assert out["data"][0]["embedding"] == [3.0, 4.0]
    with pytest.raises(UpstreamError):
        batch_to_embeddings({"error": "?"}, "m", None, normalize=False, prompt_tokens=0)


def test_encode_decode_base64() -> None:
    assert encode_base64([1.0]) == base64.b64encode(struct.pack("<f", 1.0)).decode()
    assert decode_base64(encode_base64([0.5, -2.0])) == [0.5, -2.0]


def test_ensure_encoding() -> None:
    upstream: dict[str, Any] = {"object": "list", "model": "gemini-embedding-001",
                "data": [{"object": "embedding", "index": 0, "embedding": [3.0, 4.0]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2}}  # fmt: skip
    as_b64 = ensure_encoding(upstream, "base64")
    assert isinstance(as_b64["data"][0]["embedding"], str)
    assert _sdk_decode(as_b64) == [[3.0, 4.0]]
    assert upstream["data"][0]["embedding"] == [3.0, 4.0]  # not mutated
    assert ensure_encoding(as_b64, "float")["data"][0]["embedding"] == [3.0, 4.0]
    assert ensure_encoding(upstream, None) == upstream
    unit = ensure_encoding(as_b64, "base64", normalize=True)
    assert [round(x, 6) for x in decode_base64(unit["data"][0]["embedding"])] == [0.6, 0.8]
    length = math.sqrt(sum(x * x for x in decode_base64(unit["data"][0]["embedding"])))
    assert abs(length - 1) < 1e-6
