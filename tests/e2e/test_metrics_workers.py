"""`gateway serve --workers 2` as a real subprocess: /metrics is one view of both workers,
and a real Prometheus server scraping it sees the exact spend.

Prometheus is Debian's `prometheus` package (`.ci/run` installs it); without it the
Prometheus test fails, it does not skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from tests.e2e.conftest import REGISTRY
from tests.e2e.scrape import scrape, total
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import free_port

MODEL = "openai:chat_gpt-4o-mini"
# The fake's usage: 1200 input (200 cached), 300 output at 0.15 / 0.075 / 0.60 per 1M.
COST = (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1e6


@dataclass
class Served:
    url: str
    metrics_dir: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process we started (uvicorn's supervisor stops its workers), then make
    sure nothing of its session is left."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
    process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen[bytes], what: str, path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready in 30 s")


def _plant_stale_file(folder: Path) -> None:
    """A previous run's counter file: if the CLI did not clear it, the totals would be off."""
    stale = MmapedDict(str(folder / "counter_999999.db"))
    key = mmap_key(
        "gateway_requests_total",
        "gateway_requests_total",
        ["route", "model", "provider", "status"],
        ["/v1/chat/completions", MODEL, "openai", "200"],
        "stale",
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


@pytest.fixture(scope="module")
def workers(fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("multiproc")
    _plant_stale_file(folder)
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "GATEWAY_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            "--registry",
            str(REGISTRY),
        ],
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, "gateway serve --workers 2", "/readyz")
        yield Served(url, folder)
    finally:
        _stop(process)


def _chat(url: str, n: int) -> int:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"hi {n}"}],
        "stream": n % 2 == 0,
    }
    # A new connection per request, so the kernel hands them to either worker.
    return httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"connection": "close"}, timeout=10
    ).status_code


def _answered_by(folder: Path) -> set[int]:
    """The worker pids whose own files count at least one chat request."""
    pids = set()
    for path in folder.glob("counter_*.db"):
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if '"gateway_requests_total"' in key and MODEL in key and value > 0:
                pids.add(int(path.stem.split("_")[-1]))
    return pids


def test_metrics_sum_every_worker(workers: Served) -> None:
    assert not (workers.metrics_dir / "counter_999999.db").exists()  # stale files cleared at start
    first = scrape(workers.url)
    before = total(first, "gateway_requests_total", model=MODEL, status="200")
    tokens_before = total(
        first,
        "gen_ai_client_token_usage_count",
        gen_ai_token_type="input",
        gen_ai_request_model="gpt-4o-mini",
    )
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have answered some (so the sum really spans processes).
        while sent < 40 or len(_answered_by(workers.metrics_dir)) < 2:
            assert sent < 400, "one worker answered everything"
            assert set(pool.map(lambda n: _chat(workers.url, n), range(sent, sent + 20))) == {200}
            sent += 20
    # Any worker answers /metrics, and every answer is the same total.
    for _ in range(6):
        samples = scrape(workers.url)
        assert total(samples, "gateway_requests_total", model=MODEL, status="200") - before == sent
        assert total(samples, "gateway_in_flight_requests") == 0
        assert total(samples, "gateway_registry_models") > 0
        assert (
            total(
                samples,
                "gen_ai_client_token_usage_count",
                gen_ai_token_type="input",
                gen_ai_request_model="gpt-4o-mini",
            )
            - tokens_before
            == sent
        )


def _prometheus_query(url: str, query: str) -> float | None:
    data = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    assert data["status"] == "success", data
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_exact_spend(
    workers: Served, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "The Prometheus server is not installed: `apt-get install -y prometheus` "
            "(Debian's package; .ci/run installs it when missing)."
        )
    target = workers.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: gateway\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(prom, prometheus, "prometheus", "/-/ready")
        spent_before = total(scrape(workers.url), "gateway_cost_usd_total")
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda n: _chat(workers.url, n), range(10))) == {200}
        expected = spent_before + 10 * COST
        assert abs(total(scrape(workers.url), "gateway_cost_usd_total") - expected) < 1e-9
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline:
            seen = _prometheus_query(prom, "sum(gateway_cost_usd_total)")
            if seen is not None and abs(seen - expected) < 1e-9:
                break
            time.sleep(0.25)
        assert seen is not None and abs(seen - expected) < 1e-9, (seen, expected)
        assert _prometheus_query(prom, 'up{job="gateway"}') == 1
        by_model = _prometheus_query(prom, f'sum(gateway_cost_usd_total{{model="{MODEL}"}})')
        assert by_model is not None and abs(by_model - expected) < 1e-9
    finally:
        _stop(prometheus)
