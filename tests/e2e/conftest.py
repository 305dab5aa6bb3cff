"""Real servers on 127.0.0.1: the fake upstreams and the gateway, driven over sockets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Unpack

import openai
import pytest

from gateway.app import create_app
from gateway.server import protocol_for
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serve
from tests.settings import Overrides, gateway_settings

REGISTRY = Path(__file__).parent / "registry"
OPENAI_KEY = "sk-test-fake-openai-key-9f8e7d6c5b4a"
GEMINI_KEY = "AIza-test-fake-gemini-key-0123456789"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=OPENAI_KEY)
    with serve(fake.app) as url:
        os.environ["TEST_OPENAI_BASE_URL"] = f"{url}/v1"
        os.environ["TEST_OPENAI_API_KEY"] = OPENAI_KEY
        yield fake


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini(api_key=GEMINI_KEY)
    with serve(fake.app) as url:
        os.environ["TEST_GEMINI_BASE_URL"] = f"{url}/v1beta"
        os.environ["TEST_GEMINI_API_KEY"] = GEMINI_KEY
        yield fake


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    if "fake_openai" in request.fixturenames:
        fake: FakeOpenAI = request.getfixturevalue("fake_openai")
        fake.requests.clear()
        fake.script.clear()
    if "fake_gemini" in request.fixturenames:
        gemini: FakeGemini = request.getfixturevalue("fake_gemini")
        gemini.requests.clear()
        gemini._queue.clear()


def start_gateway(**overrides: Unpack[Overrides]) -> Iterator[str]:
    # With the server protocol `gateway serve` runs (limits, hang-ups told to the app).
    settings = gateway_settings(str(REGISTRY), **overrides)
    with serve(create_app(settings), http=protocol_for(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def gateway_url(fake_openai: FakeOpenAI, fake_gemini: FakeGemini) -> Iterator[str]:
    yield from start_gateway()


@pytest.fixture
def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)
