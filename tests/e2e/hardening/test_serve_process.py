"""`gateway serve` as a real process runs with the server limits (issue 13, items 9, 10)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest

from tests.e2e.hardening.conftest import HARDENING
from tests.fakes.hostile import Hostile
from tests.fakes.server import free_port


def _serve(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--registry",
            str(HARDENING),
            "--port",
            str(port),
        ],
        env={**os.environ, "GATEWAY_WATCH": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway did not start: {proc.communicate()[0].decode()[-2000:]}")


@pytest.fixture(scope="module")
def served(hostile: Hostile) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = _serve(GATEWAY_HEADER_TIMEOUT_S="1", GATEWAY_MAX_HEADER_KB="16")
    yield proc, url
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_refuses_an_oversized_header(served: tuple[subprocess.Popen[bytes], str]) -> None:
    _, url = served
    r = httpx.get(f"{url}/healthz", headers={"x-big": "a" * 20_000}, timeout=5)
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "request_header_too_large"


def test_serve_closes_a_stalled_request_line(served: tuple[subprocess.Popen[bytes], str]) -> None:
    _, url = served
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
    sock.sendall(b"GET /heal")
    started = time.monotonic()
    sock.settimeout(4)
    with suppress(OSError):
        while sock.recv(65536):
            pass
    sock.close()
    assert time.monotonic() - started < 3
