"""What the hardening tests share: the hostile upstream served for real, and its registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.hostile import Hostile
from tests.fakes.server import serve

HARDENING = Path(__file__).parent / "registry"
KEY = "sk-hostile-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    fake = Hostile()
    with serve(fake.app) as url:
        # localhost, not an IP: aiohttp keeps no cookies for IP hosts anyway, a name shows the jar.
        local = url.replace("127.0.0.1", "localhost")
        os.environ["TEST_HOSTILE_BASE_URL"] = f"{local}/v1"
        os.environ["TEST_HOSTILE_GEMINI_URL"] = f"{url}/v1beta"
        os.environ["TEST_HOSTILE_API_KEY"] = KEY
        yield fake


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "hostile" in request.fixturenames:
        fake: Hostile = request.getfixturevalue("hostile")
        fake.queue.clear()
        fake.seen.clear()
