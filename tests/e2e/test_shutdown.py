"""Graceful shutdown of a real `gateway serve` process: SIGTERM lets a stream finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import REGISTRY
from tests.fakes.openai import FakeOpenAI, Scripted
from tests.fakes.server import free_port

BODY = {
    "model": "openai:chat_gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
}


def _serve(grace_s: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "GATEWAY_GRACE_S": str(grace_s), "GATEWAY_WATCH": "0"}
    proc = subprocess.Popen(
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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway did not start: {proc.communicate()[0].decode()[-2000:]}")


@pytest.fixture
def gateway(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = _serve(getattr(request, "param", 10))
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sigterm_lets_a_stream_finish_then_exits_0(
    gateway: tuple[subprocess.Popen[bytes], str], fake_openai: FakeOpenAI
) -> None:
    proc, url = gateway
    fake_openai.script.append(Scripted(chunk_delay_s=0.25))  # about 2 s of stream
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=BODY, timeout=10) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(lines)
        assert first.startswith("data: ")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):  # no longer accepting
            httpx.get(f"{url}/healthz", timeout=1)
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"  # the stream in flight finished whole
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None
    assert b"Traceback" not in proc.stdout.read()


@pytest.mark.parametrize("gateway", [1], indirect=True)
def test_a_stream_longer_than_the_grace_period_ends_with_an_error_frame(
    gateway: tuple[subprocess.Popen[bytes], str], fake_openai: FakeOpenAI
) -> None:
    proc, url = gateway
    fake_openai.script.append(Scripted(chunk_delay_s=0.8))  # about 7 s of stream, 1 s of grace
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=BODY, timeout=10) as r:
        lines = r.iter_lines()
        next(lines)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line]  # ends, not cut: never a silent, truncated success
    assert rest[-1].startswith('data: {"error"')
    assert "server_shutting_down" in rest[-1]
    assert "data: [DONE]" not in rest
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 4
