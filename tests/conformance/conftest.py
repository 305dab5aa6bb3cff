"""The conformance suite's servers: its own fakes and one gateway on 127.0.0.1.

The gateway is called over a real socket; its calls to the fakes go in-process, through
tests/fakes/transport.py (the same apps, the same wire bytes, no socket in between): the
suite's hundreds of translation cases are about what is sent and answered, and every
route x provider x stream path also runs on real sockets in tests/e2e. The fakes are
served on sockets too, for the test that calls them directly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serve
from tests.fakes.transport import mount_upstreams

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
def gateway_app(fakes: tuple[FakeOpenAI, FakeGemini]) -> FastAPI:
    openai_fake, gemini_fake = fakes
    app = create_app(Settings(registry=str(REGISTRY), watch=False))
    mount_upstreams(app, {"openai": openai_fake.app, "gemini": gemini_fake.app})
    return app


@pytest.fixture(scope="session")
def gateway(gateway_app: FastAPI) -> Iterator[str]:
    with serve(gateway_app) as url:
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
