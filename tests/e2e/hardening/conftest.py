"""What the hardening tests share: the hostile upstream served for real, and its registry."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Unpack

import pytest
import uvicorn

from gateway.app import create_app
from gateway.server import protocol_for
from tests.e2e import processes
from tests.fakes.hostile import Hostile
from tests.fakes.server import free_port, serve
from tests.settings import Overrides, gateway_settings

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


@contextmanager
def gateway_server(**overrides: Unpack[Overrides]) -> Iterator[str]:
    """The gateway on 127.0.0.1 with the server options `gateway serve` uses (gateway.server)."""
    settings = gateway_settings(str(HARDENING), **overrides)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        http=protocol_for(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_process(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve` as a real process on the hardening registry, once /readyz is 200,
    its output on proc.stdout; the caller stops it (processes.stop)."""
    return processes.start(HARDENING, env={"GATEWAY_WATCH": "0", **env}, capture=True, ready_s=20)


@contextmanager
def serve_process(**env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`gateway serve` as a real process on the hardening registry; stopped at the end."""
    proc, url = start_process(**env)
    try:
        yield proc, url
    finally:
        processes.stop(proc)
