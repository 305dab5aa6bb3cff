"""The processes under test (fake upstream, gateway, bare proxy) and the load tools (wrk, the TTFT client)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from config import (
    BENCH,
    CHAT_BODY,
    CHAT_PATH,
    LOAD_CORE,
    MASTER_KEY,
    PROXY_CORE,
    RESULTS,
    ROOT,
    STREAM_BODY,
)
from procs import (
    Foreign,
    cpu_seconds,
    free_port,
    http_get,
    ours_seconds,
    pinned,
    spawn,
    system_busy_seconds,
    wait_ready,
)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.foreign = Foreign(args.quiet_pct, args.quiet_wait_s)
        self.upstream_port = free_port()
        self.upstream: subprocess.Popen | None = None
        self.bodies = {}
        for name, body in (("chat", CHAT_BODY), ("stream", STREAM_BODY)):
            path = RESULTS / f"body-{name}.json"
            path.write_bytes(json.dumps(body).encode())
            self.bodies[name] = path

    @property
    def upstream_base(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/v1"

    def start_upstream(self, cores: str = LOAD_CORE) -> None:
        argv = [
            sys.executable,
            str(BENCH / "fake_upstream.py"),
            "--port",
            str(self.upstream_port),
            "--stream-gap-ms",
            str(self.args.stream_gap_ms),
            "--held-gap-ms",
            str(getattr(self.args, "held_gap_s", 10.0) * 1000),
        ]
        self.upstream = spawn(pinned(cores, argv), RESULTS / "upstream.log")
        wait_ready(self.upstream_port, "/health", self.upstream, time.perf_counter())

    def gateway_env(self, port: int) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "OPENAI_", "GEMINI_")) and k != "CUSTOM_REGISTRY_PATH"
        }
        env.update(
            {
                "GATEWAY_REGISTRY": str(BENCH / "registry"),
                "GATEWAY_PORT": str(port),
                "GATEWAY_MASTER_KEY": MASTER_KEY,
                "BENCH_UPSTREAM_URL": self.upstream_base,
                "BENCH_UPSTREAM_KEY": "sk-bench-not-a-real-key",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start_gateway(
        self,
        cores: str = PROXY_CORE,
        workers: int = 1,
        source: Path = ROOT,
        log: str = "gateway.log",
        extra_env: dict[str, str] | None = None,
    ) -> tuple[subprocess.Popen, int, float]:
        """`python -m gateway serve` run from `source`, so it imports `source`/gateway."""
        port = free_port()
        argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        started = time.perf_counter()
        proc = spawn(
            pinned(cores, argv),
            RESULTS / log,
            {**self.gateway_env(port), **(extra_env or {})},
            cwd=source,
        )
        ready = wait_ready(port, "/readyz", proc, started)
        return proc, port, ready

    def start_bare(self) -> tuple[subprocess.Popen, int]:
        port = free_port()
        argv = [
            sys.executable,
            str(BENCH / "bare_proxy.py"),
            "--port",
            str(port),
            "--upstream",
            self.upstream_base,
        ]
        proc = spawn(pinned(PROXY_CORE, argv), RESULTS / "bare.log")
        wait_ready(port, "/readyz", proc, time.perf_counter())
        return proc, port

    # ------------------------------------------------------------ load

    def wrk(
        self,
        port: int,
        connections: int,
        duration: float,
        body: str = "chat",
        cores: str = LOAD_CORE,
        watch: dict[str, list[int]] | None = None,
        auth: str | None = None,
    ) -> dict:
        """Run wrk against 127.0.0.1:port; `watch` names process groups whose CPU use to record."""
        duration = max(1, round(duration))  # wrk takes whole seconds
        env = {
            **os.environ,
            "BENCH_BODY_FILE": str(self.bodies[body]),
            "BENCH_AUTH": auth or f"Bearer {MASTER_KEY}",
        }
        argv = pinned(
            cores,
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration:g}s",
                "--timeout",
                "5s",
                "-s",
                str(BENCH / "wrk_post.lua"),
                f"http://127.0.0.1:{port}{CHAT_PATH}",
            ],
        )
        quiet_before = self.foreign.quiet() if watch else None
        before = {name: cpu_seconds(pids) for name, pids in (watch or {}).items()}
        sys0, ours0 = system_busy_seconds(), ours_seconds()
        t0 = time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 30)
        wall = time.perf_counter() - t0
        foreign = 100 * ((system_busy_seconds() - sys0) - (ours_seconds() - ours0)) / wall
        match = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
        if not match:
            raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
        result = json.loads(match.group(1))
        seconds = result["duration_us"] / 1e6
        errors = sum(result["errors"].values())
        lat = result["latency_us"]
        summary = {
            "connections": connections,
            "requests": result["requests"],
            "errors": errors,
            "rps": round(result["requests"] / seconds, 1),
            "p50_ms": lat["p50"] / 1000,
            "p90_ms": lat["p90"] / 1000,
            "p99_ms": lat["p99"] / 1000,
            "p999_ms": lat["p999"] / 1000,
            "max_ms": lat["max"] / 1000,
            "mean_ms": round(lat["mean"] / 1000, 3),
        }
        if errors:
            summary["error_detail"] = result["errors"]
        if watch:
            summary["cpu_pct"] = {
                name: round(100 * (cpu_seconds(pids) - before[name]) / wall)
                for name, pids in watch.items()
            }
            summary["cpu_pct"]["others"] = max(0, round(foreign))
            if "proxy" in watch and result["requests"]:
                # The proxy's CPU per request: what it costs, even when it had to share its
                # core; 1e6 / this is the req/s one whole core would give it.
                used = summary["cpu_pct"]["proxy"] / 100 * wall
                summary["proxy_cpu_us_per_req"] = round(1e6 * used / result["requests"], 1)
            summary["others_before_pct"] = quiet_before
        return summary

    def ttft(self, port: int, duration: float) -> dict:
        argv = pinned(
            LOAD_CORE,
            [
                sys.executable,
                str(BENCH / "ttft.py"),
                f"http://127.0.0.1:{port}{CHAT_PATH}",
                "--body",
                str(self.bodies["stream"]),
                "--duration",
                f"{duration:g}",
                "--auth",
                f"Bearer {MASTER_KEY}",
            ],
        )
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
        if out.returncode != 0:
            raise RuntimeError(f"ttft client failed: {out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk not found: installing Debian's package (apt-get install -y wrk)", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    install = [*sudo, "apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=True)
        subprocess.run(install, check=True)


def metrics_totals(port: int) -> dict[str, float]:
    """Sum the gateway's request and cost counters, to show the features really ran."""
    # The bench's gateways run with a master key, so /metrics wants it (GATEWAY_METRICS_AUTH=auto).
    status, body = http_get(port, "/metrics", timeout=5, auth=f"Bearer {MASTER_KEY}")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
    totals: dict = {
        "requests": 0.0,
        "requests_200": 0.0,
        "cost_usd": 0.0,
        "tokens": 0.0,
        "by_status": {},
    }
    for line in body.decode().splitlines():
        if line.startswith("gateway_requests_total{"):
            value = float(line.rsplit(" ", 1)[1])
            totals["requests"] += value
            status = re.search(r'status="(\d*)"', line)
            code = status.group(1) if status else "?"
            totals["by_status"][code] = totals["by_status"].get(code, 0) + int(value)
            if code == "200":
                totals["requests_200"] += value
        elif line.startswith("gateway_cost_usd_total{"):
            totals["cost_usd"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("gateway_tokens_total{"):
            totals["tokens"] += float(line.rsplit(" ", 1)[1])
    return totals


def environment() -> dict:
    versions = {}
    for name in (
        "gateway",
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "httpx",
        "httpx-aiohttp",
        "aiohttp",
        "orjson",
        "prometheus-client",
        "pydantic",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "gateway"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    source = subprocess.run(
        [sys.executable, "-c", "import gateway, os; print(os.path.dirname(gateway.__file__))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit + ("+dirty" if dirty else ""),
        "gateway_source": source,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "packages": versions,
        "layout": {
            "proxy (gateway or bare)": f"core {PROXY_CORE}",
            "fake upstream, wrk, ttft client": f"core {LOAD_CORE}",
            "upstream-alone phase": f"upstream core {LOAD_CORE}, wrk core {PROXY_CORE}",
            "workers phase": "every process on cores 0,1",
        },
    }
