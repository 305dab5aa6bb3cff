"""`gateway serve` as a real process runs with the server limits (issue 13, items 9, 10)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest

from tests.e2e import processes
from tests.e2e.hardening.conftest import start_process
from tests.fakes.hostile import Hostile


@pytest.fixture(scope="module")
def served(hostile: Hostile) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start_process(GATEWAY_HEADER_TIMEOUT_S="1", GATEWAY_MAX_HEADER_KB="16")
    yield proc, url
    processes.stop(proc)


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
