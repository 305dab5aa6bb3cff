"""A bounded soak: thousands of requests at concurrency against a real `gateway serve`
process, asserting it holds no more sockets and no more memory afterwards than before.

The fake upstream runs in a process of its own too, so the gateway's /proc entries count
only its own sockets. A warm-up fills the pools, caches and metric label sets first;
then SOAK_REQUESTS requests (chat, streamed chat, Responses through the bridge, and
streams the client abandons after the first frame) run at CONCURRENCY, and the gateway's
socket count and RSS are compared. Marked `soak`: pyproject's addopts leave it out of a
plain `pytest`, and test.sh runs it as a step of its own (`pytest -m soak`), so it runs in
.ci/run; it takes about 30 s on a 2-core machine (GATEWAY_SOAK_REQUESTS=20000 for a longer one).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.e2e.conftest import REGISTRY
from tests.fakes.server import free_port

SOAK_REQUESTS = int(os.environ.get("GATEWAY_SOAK_REQUESTS", "10000"))
WARM_UP = 1000
CONCURRENCY = 32
KEY = "sk-soak-test-key"
ROOT = Path(__file__).parents[2]

FAKE = f"""
import uvicorn
from tests.fakes.openai import FakeOpenAI
fake = FakeOpenAI(api_key={KEY!r})
fake.requests = type("Forget", (list,), {{"append": lambda self, item: None}})()  # no growth
uvicorn.run(fake.app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[int, str]]:
    fake_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "TEST_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
        "TEST_OPENAI_API_KEY": KEY,
        "GATEWAY_WATCH": "0",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(fake_port)], cwd=ROOT, env=env)
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--registry",
            str(REGISTRY),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{fake_port}/", fake)
        _wait(f"http://127.0.0.1:{port}/readyz", gateway)
        yield gateway.pid, f"http://127.0.0.1:{port}"
    finally:
        for proc in (gateway, fake):
            proc.terminate()
            proc.wait(timeout=15)


def _sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        with suppress(OSError):  # closed while we looked
            count += os.readlink(fd).startswith("socket:")
    return count


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


CHAT = {"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


async def _one(session: aiohttp.ClientSession, url: str, n: int) -> str:
    kind = ("chat", "stream", "responses", "stream", "chat", "abandon")[n % 6]
    if kind in ("chat", "responses"):
        # Responses client, chat upstream: the bridge both ways.
        path, body = (
            ("/v1/chat/completions", CHAT)
            if kind == "chat"
            else ("/v1/responses", {"model": "openai:chat_gpt-4o-mini", "input": "Hi"})
        )
        async with session.post(url + path, json=body) as r:
            await r.read()
            return f"{kind}:{r.status}"
    async with session.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
        if kind == "abandon":
            await r.content.readline()
            r.close()  # hang up mid-stream: the connection is dropped, not reused
            return f"{kind}:{r.status}"
        answer = await r.read()
        return f"{kind}:{r.status}:{answer.rstrip().endswith(b'data: [DONE]')}"


async def _load(url: str, total: int) -> Counter[str]:
    # aiohttp, not httpx, drives the load: httpx's pool tops out near 170 requests/s here.
    outcomes: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        queue = iter(range(total))

        async def worker() -> None:
            for n in queue:
                outcomes[await _one(session, url, n)] += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return outcomes


@pytest.mark.soak
def test_no_socket_or_memory_growth_under_load(processes: tuple[int, str]) -> None:
    pid, url = processes
    asyncio.run(_load(url, WARM_UP))
    time.sleep(0.5)
    sockets_before, rss_before = _sockets(pid), _rss_mb(pid)

    started = time.monotonic()
    outcomes = asyncio.run(_load(url, SOAK_REQUESTS))
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    sockets_after, rss_after = _sockets(pid), _rss_mb(pid)
    print(
        f"\nsoak: {SOAK_REQUESTS} requests in {elapsed:.1f} s ({SOAK_REQUESTS / elapsed:.0f}/s); "
        f"sockets {sockets_before} -> {sockets_after}; RSS {rss_before:.1f} -> {rss_after:.1f} MB; {dict(outcomes)}"
    )

    bad = {k: v for k, v in outcomes.items() if ":200" not in k or k.endswith("False")}
    assert not bad, bad
    assert sum(outcomes.values()) == SOAK_REQUESTS
    # Pools are warm: the same concurrency needs no more sockets (a few for timing noise).
    assert sockets_after <= sockets_before + 8
    assert rss_after - rss_before < max(15.0, rss_before * 0.1)
    metrics = httpx.get(f"{url}/metrics").text
    assert "gateway_in_flight_requests 0.0" in metrics
