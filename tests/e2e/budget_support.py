"""What the budget and rate-limit tests share: the honest upstream on a real socket,
gateway processes started with `gateway serve` (as an operator would), keys made with
the CLI, and the calls driven by the official openai SDK."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.e2e.budget_upstream import API_KEY, HonestUpstream
from tests.e2e.keys_support import cli_json
from tests.e2e.scrape import scrape, total
from tests.fakes.server import free_port, serve

REGISTRY = Path(__file__).parent / "budget_registry"
MASTER = "gw-master-key-for-budget-tests"
MODEL = "budget:chat"


@contextlib.contextmanager
def upstream() -> Iterator[HonestUpstream]:
    fake = HonestUpstream()
    with serve(fake.app) as url:
        os.environ["TEST_BUDGET_BASE_URL"] = f"{url}/v1"
        os.environ["TEST_BUDGET_API_KEY"] = API_KEY
        yield fake


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    metrics_dir: Path | None = None
    log: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
        self.process.wait(timeout=5)


@dataclass
class Fleet:
    gateways: list[Gateway] = field(default_factory=list)

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()


def start(
    database: str,
    tmp: Path,
    *,
    redis: str | None = None,
    workers: int = 1,
    failure: str | None = None,
    name: str = "gw",
    window_s: float | None = None,
) -> Gateway:
    port = free_port()
    log = tmp / f"{name}-{port}.log"
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": database,
        "GATEWAY_MASTER_KEY": MASTER,
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_WATCH": "0",
        "GATEWAY_METRICS_AUTH": "none",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if redis:
        env["GATEWAY_REDIS_URL"] = redis
    if failure:
        env["GATEWAY_REDIS_FAILURE"] = failure
    if window_s:
        env["GATEWAY_RATE_WINDOW_S"] = str(window_s)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--workers",
                str(workers),
                "--port",
                str(port),
                "--registry",
                str(REGISTRY),
            ],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", process, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gateway exited with {process.returncode}: {log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{gateway.url}/readyz", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"gateway did not become ready: {log.read_text()[-3000:]}")


def make_key(database: str, name: str, *flags: str) -> dict[str, Any]:
    return dict(cli_json(database, "keys", "create", "--name", name, *flags))


def wait_for_key(urls: list[str], secret: str, timeout: float = 10.0) -> None:
    """Every gateway's cache holds the key (GET /v1/key stops answering 401)."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while (
            httpx.get(
                f"{url}/v1/key", headers={"authorization": f"Bearer {secret}"}, timeout=5
            ).status_code
            == 401
        ):
            assert time.monotonic() < deadline, f"{url} did not see the key"
            time.sleep(0.1)


def sdk(url: str, secret: str, retries: int = 0) -> openai.AsyncOpenAI:
    # A connection per call: under load, reusing a kept-alive one races the server's
    # keep-alive timeout ("server disconnected without sending a response"), and the
    # race counts every call exactly, so it must not retry.
    return openai.AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key=secret,
        max_retries=retries,
        timeout=60,
        default_headers={"connection": "close"},
    )


def metric_cost(urls: list[str], key: str) -> Decimal:
    """gateway_key_cost_usd_total for one key, summed over the processes."""
    return sum(
        (Decimal(repr(total(scrape(url), "gateway_key_cost_usd_total", key=key))) for url in urls),
        Decimal(0),
    )


_LEFT = re.compile(r"has ([0-9.]+) USD left.*at least ([0-9.]+) USD with a shortened answer")


def refusal_numbers(message: str) -> tuple[Decimal, Decimal]:
    """(left, least the call needs) from an insufficient_quota message."""
    match = _LEFT.search(message)
    assert match, message
    return Decimal(match.group(1)), Decimal(match.group(2))
