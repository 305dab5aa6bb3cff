"""Property-based fuzzing of the HTTP surface from its own OpenAPI document (schemathesis).

Valid and invalid bodies (wrong types, missing fields, junk) are generated from
/openapi.json, with `model` steered to the registry's keys half the time so requests
reach policy, translation and the fake upstreams. The gateway must never answer 5xx
(its own failure) nor 422 (FastAPI's default, which must not leak), and every error
must be in OpenAI's envelope. Bounded: MAX_EXAMPLES per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

from gateway.app import create_app
from gateway.registry import load_registry
from gateway.settings import Settings
from tests.e2e.conftest import REGISTRY, start_gateway
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

if TYPE_CHECKING:  # schemathesis names its OpenAPI case type for type checkers only
    from schemathesis.specs.openapi.schemas import OpenApiCase

MAX_EXAMPLES = 200


@pytest.fixture(scope="module")
def fuzzed_gateway(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> Iterator[str]:
    # A gateway of its own: fuzzing must not open the shared one's circuit breakers.
    yield from start_gateway()


def _schema() -> OpenApiSchema:
    """The gateway's own OpenAPI document (it is static: no server needed to read it)."""
    document = create_app(Settings(registry=str(REGISTRY), watch=False)).openapi()
    # Not the provider whose key is unset on purpose: its 503 provider_key_missing is the contract.
    keys = sorted(
        key
        for key, model in load_registry(REGISTRY).models.items()
        if model.provider_name != "nokey"
    )
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings"):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        body["properties"]["model"] = {"anyOf": [{"enum": keys}, {"type": "string"}]}
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
    )
    return loaded


schema = _schema()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_no_5xx_no_422_and_errors_are_openai_shaped(case: OpenApiCase, fuzzed_gateway: str) -> None:
    response = case.call(base_url=fuzzed_gateway, timeout=10)
    assert response.status_code < 500, response.text
    assert response.status_code != 422, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
