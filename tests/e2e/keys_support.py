"""What the virtual-key tests share: a database per test (a SQLite file or a fresh
database on the suite's real PostgreSQL), the admin CLI run as a real subprocess, and
a gateway with virtual keys on a real socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Unpack

import httpx
import pytest

from tests.e2e import processes
from tests.e2e.conftest import start_gateway
from tests.settings import Overrides

ROOT = Path(__file__).resolve().parents[2]
MASTER = "gw-master-key-for-keys-tests"


def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """For a fixture parametrized with "sqlite" / "postgresql"."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("postgres").new_database())


def unique(name: str) -> str:
    """Metric labels are per process and the in-process gateways share one registry."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def cli(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cli_json(url: str, *args: str) -> Any:
    return json.loads(cli(url, *args, "--json").stdout)


def gateway(url: str, **overrides: Unpack[Overrides]) -> Iterator[str]:
    # The tests scrape /metrics as the shipped Prometheus does: in-network, no token.
    options: Overrides = {"database_url": url, "master_key": MASTER, "metrics_auth": "none"}
    yield from start_gateway(**(options | overrides))


def chat(
    base: str, key: str, model: str, header: str = "authorization", **extra: Any
) -> httpx.Response:
    value = f"Bearer {key}" if header == "authorization" else key
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(
        f"{base}/v1/chat/completions",
        json=body,
        timeout=15,
        headers={header: value, "connection": "close"},
    )


def until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> float:
    """Seconds until `condition()` held; fails the test past `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


def serve_process(url: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve` as a real subprocess on the database `url` (stop it with stop())."""
    from tests.e2e.conftest import REGISTRY

    env = {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_MASTER_KEY": MASTER,
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_METRICS_AUTH": "none",  # scraped as the shipped Prometheus does: in-network, no token
    }
    return processes.start(REGISTRY, *extra, env=env, unset=["PROMETHEUS_MULTIPROC_DIR"])


stop = processes.stop
