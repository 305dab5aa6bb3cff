"""A big prompt is tokenized off the event loop (issue 13, item 11): while the
context-window check counts a 6 MB prompt, other requests are still answered.

The gateway is its own process here (`gateway serve`), so only its event loop is measured,
not this test process's threads."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.e2e.hardening.conftest import serve_process
from tests.fakes.hostile import Hostile


@pytest.fixture(scope="module")
def gw(hostile: Hostile) -> Iterator[str]:
    with serve_process() as (_, url):
        yield url


def _prompt(mb: float) -> str:
    rng = random.Random(7)  # varied words: the tokenizer's caches do not make it cheap
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(50_000)
    ]
    out: list[str] = []
    size = 0
    while size < mb * 1_000_000:
        word = rng.choice(words)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def test_counting_a_big_prompt_does_not_stall_other_requests(gw: str, hostile: Hostile) -> None:
    # Encoded up front and sent from a socket, so this process holds no lock the measure waits on.
    body = orjson.dumps(
        {"model": "h-small-window", "messages": [{"role": "user", "content": _prompt(6)}]}
    )
    port = int(gw.rsplit(":", 1)[1])
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    answer: list[bytes] = []

    def big() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head + body)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            answer.append(data)

    worker = threading.Thread(target=big)
    with httpx.Client(timeout=10) as client:
        client.get(f"{gw}/healthz")  # a warm connection, so only the server's time is measured
        worker.start()
        worst = 0.0
        while worker.is_alive():
            started = time.monotonic()
            assert client.get(f"{gw}/healthz").status_code == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.02)
    worker.join()
    assert answer and answer[0].startswith(b"HTTP/1.1 400 ")
    assert b"context_length_exceeded" in answer[0]
    assert hostile.seen == []  # refused before any upstream call
    assert worst < 0.5, f"/healthz waited {worst:.2f} s behind the token count"
