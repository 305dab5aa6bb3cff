"""Clients that stall the server (issue 13, items 9 and 10), over raw sockets.

The gateway runs with the server options `gateway serve` uses, with short receive
timeouts and a small connection limit so the tests stay quick and light.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest

from tests.e2e.hardening.conftest import gateway_server
from tests.fakes.hostile import Hostile

MAX_CONNECTIONS = 50


@pytest.fixture(scope="module")
def gw(hostile: Hostile) -> Iterator[str]:
    with gateway_server(
        header_timeout_s=1.0, body_timeout_s=1.0, max_connections=MAX_CONNECTIONS
    ) as url:
        yield url


def _port(gw: str) -> int:
    return int(gw.rsplit(":", 1)[1])


def _connect(gw: str, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", _port(gw)), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed (or answered and closed) this connection."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)
    if data:
        return b"connection: close" in data.lower() or _closed(sock)
    return True


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    out = b""
    with suppress(OSError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


# ---- 9. header size ----------------------------------------------------------------------------


def test_an_oversized_header_is_refused_fast_and_stalls_nobody(gw: str) -> None:
    sock = _connect(gw, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    big = b"a" * (4 * 1024 * 1024)  # a few MB, nowhere near the gateway's 64 KB limit

    def send() -> None:
        with suppress(OSError):  # the server hangs up mid-way: that is the point
            sock.sendall(big + b"\r\n\r\n")

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    answer = _read_all(sock, 5)
    took = time.monotonic() - started
    sender.join(timeout=5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"request_header_too_large" in answer
    assert took < 1.0
    started = time.monotonic()
    assert httpx.get(f"{gw}/healthz", timeout=2).status_code == 200
    assert time.monotonic() - started < 0.5


def test_headers_within_the_limit_are_served(gw: str) -> None:
    headers = {f"x-pad-{i}": "p" * 1000 for i in range(40)}  # 40 KB: under 64 KB
    assert httpx.get(f"{gw}/healthz", headers=headers, timeout=5).status_code == 200


# ---- 10. slow clients and the connection limit -------------------------------------------------


def test_half_a_request_line_is_closed_after_the_header_timeout(gw: str) -> None:
    socks = [_connect(gw, b"POST /v1/chat/comp") for _ in range(40)]
    try:
        time.sleep(0.3)
        assert not any(_closed(s) for s in socks)  # within the timeout: still waiting
        time.sleep(1.3)
        assert all(_closed(s) for s in socks)
    finally:
        for s in socks:
            s.close()


def test_a_body_that_never_comes_is_a_408(gw: str) -> None:
    sock = _connect(
        gw,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b'content-length: 100\r\n\r\n{"model":',
    )
    try:
        started = time.monotonic()
        answer = _read_all(sock, 4)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert time.monotonic() - started < 2.5
    finally:
        sock.close()


def test_past_the_connection_limit_waiting_connections_make_room(gw: str) -> None:
    idle = [_connect(gw, b"GET /heal") for _ in range(MAX_CONNECTIONS + 30)]
    try:
        time.sleep(0.2)
        open_now = sum(not _closed(s) for s in idle)
        assert open_now <= MAX_CONNECTIONS
        started = time.monotonic()
        assert (
            httpx.get(f"{gw}/healthz", timeout=2).status_code == 200
        )  # a real client gets in at once
        assert time.monotonic() - started < 0.5
    finally:
        for s in idle:
            s.close()


def test_a_stream_longer_than_the_timeouts_is_not_cut(gw: str, hostile: Hostile) -> None:
    hostile.queue.append("stream_slow")  # about 3 s of stream; the receive timeouts are 1 s
    body = {"model": "h-chat", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with httpx.stream("POST", f"{gw}/v1/chat/completions", json=body, timeout=10) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) > 12


# ---- a client that hangs up in the middle of its body ---------------------------------------


def test_a_client_gone_mid_body_is_counted_as_499_without_a_traceback(
    gw: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    before = httpx.get(f"{gw}/metrics", timeout=5).text.count('status="499"')
    sock = _connect(
        gw,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        b'{"model": "h-chat", "messages": [',
    )
    time.sleep(0.2)  # the app is reading the body by now
    sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{gw}/metrics", timeout=5).text
        if re.search(r'gateway_requests_total\{[^}]*status="499"[^}]*\} [1-9]', metrics):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"no 499 counted (before: {before} series)")
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


def test_pipelined_requests_are_answered_in_order(gw: str) -> None:
    """Two requests in one write: the second waits behind the first in uvicorn's
    pipeline, which gateway.server makes only when one is needed."""
    sock = _connect(
        gw,
        b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n" * 2,
    )
    data = b""
    with sock:
        while len(re.findall(rb"HTTP/1\.1 \d{3}", data)) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3})", data) == [b"200", b"200"]
