"""The conformance suite's servers: its own fakes and one gateway, real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serve

REGISTRY = Path(__file__).parent / "registry"
OPENAI_KEY = "sk-conformance-openai-key-0a1b2c3d"
GEMINI_KEY = "AIza-conformance-gemini-key-4e5f6a7b"


@pytest.fixture(scope="session")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeGemini]]:
    openai_fake, gemini_fake = FakeOpenAI(api_key=OPENAI_KEY), FakeGemini(api_key=GEMINI_KEY)
    with serve(openai_fake.app) as openai_url, serve(gemini_fake.app) as gemini_url:
        os.environ["CONF_OPENAI_BASE_URL"] = f"{openai_url}/v1"
        os.environ["CONF_OPENAI_API_KEY"] = OPENAI_KEY
        os.environ["CONF_GEMINI_BASE_URL"] = f"{gemini_url}/v1beta"
        os.environ["CONF_GEMINI_API_KEY"] = GEMINI_KEY
        yield openai_fake, gemini_fake


@pytest.fixture(scope="session")
def gateway(fakes: tuple[FakeOpenAI, FakeGemini]) -> Iterator[str]:
    settings = Settings(registry=str(REGISTRY), watch=False)
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def fake_openai(fakes: tuple[FakeOpenAI, FakeGemini]) -> Iterator[FakeOpenAI]:
    fake = fakes[0]
    fake.requests.clear()
    fake.script.clear()
    fake.refused.clear()
    yield fake
    assert not fake.refused, f"the fake OpenAI refused what the gateway sent: {fake.refused[0][1]}"


@pytest.fixture
def fake_gemini(fakes: tuple[FakeOpenAI, FakeGemini]) -> Iterator[FakeGemini]:
    fake = fakes[1]
    fake.requests.clear()
    fake._queue.clear()
    fake.refused.clear()
    yield fake
    assert not fake.refused, f"the fake Gemini refused what the gateway sent: {fake.refused[0][1]}"
