"""The gateway's load benchmark: gateway vs a bare FastAPI+httpx proxy vs the upstream directly.

    python bench/run.py                 # everything, under 3 minutes
    python bench/run.py --candidate /tmp/copy   # also a gateway source tree with a change: A/B
    python bench/run.py --quick         # one short round per phase, about 75 s
    python bench/run.py --profile       # also a py-spy flame graph of the gateway under load
    python bench/run.py --phases latency,throughput

Layout on a 2-core machine (`taskset`): the proxy under test (the gateway, or the bare
proxy) alone on core 0; the fake upstream, wrk and the TTFT client on core 1. The fake
upstream is measured alone first (on core 1, wrk on core 0) to show it is not the
bottleneck, and each load phase records how busy the proxy and the upstream were.

Phases, each bounded in time:
  upstream     the fake upstream alone: req/s at 32 connections
  startup      `gateway serve` from process start to `/readyz` 200 (3 cold starts)
  latency      1 connection: p50/p99 for direct, bare and gateway; overhead = x - direct
  throughput   req/s at 32 and 128 connections, unstreamed chat, direct/bare/gateway
  ttft         streamed chat, time to first token, direct/bare/gateway (bench/ttft.py)
  soak         the gateway's RSS sampled until it has served --soak-requests in all
  workers      `--workers 2`, every process on both cores: req/s at 32 and 128

Everything is on loopback. wrk (Debian's) is installed with apt-get when missing.
Prints a table and writes bench/results/latest.json (and a timestamped copy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PROXY_CORE, LOAD_CORE = "0", "1"
MASTER_KEY = "bench-master-key"
MODEL = "bench:gpt-4o-mini"
CHAT_PATH = "/v1/chat/completions"
PHASES = ("upstream", "startup", "latency", "throughput", "ttft", "soak", "workers")

TARGETS = {  # the targets for this 2-core machine, one gateway worker
    "rps_32": 1800.0,
    "p50_overhead_ms": 0.6,
    "ttft_overhead_ms": 1.0,
    "rss_mb": 100.0,
    "ready_s": 1.5,
}

_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."},
    {"role": "user", "content": "Write one friendly sentence greeting a new user of our service."},
]
CHAT_BODY = {"model": MODEL, "messages": _MESSAGES, "max_tokens": 4096, "temperature": 0.2, "user": "bench"}
STREAM_BODY = {**CHAT_BODY, "stream": True}

_started: list[subprocess.Popen] = []


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cores: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *argv]


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - kept open for the process's life
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """End one process we started, by its id: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _started:
        _started.remove(proc)  # reaped: its CPU time now counts in RUSAGE_CHILDREN


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """A minimal GET: reads the headers, then the body by its length (or to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        while (match is None or len(body) < int(match.group(1))) and (chunk := s.recv(65536)):
            body += chunk
    return int(head.split(b" ", 2)[1]), body


def wait_ready(port: int, path: str, proc: subprocess.Popen, started: float, limit: float = 20.0) -> float:
    """Seconds from `started` to the first 200 on `path`; polls every 2 ms."""
    while time.perf_counter() - started < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before it was ready (see bench/results/*.log)")
        try:
            status, _ = http_get(port, path, timeout=0.5)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"not ready on port {port} after {limit} s")


def proc_tree(pid: int) -> list[int]:
    """The pid and its descendants (uvicorn's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def system_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / os.sysconf("SC_CLK_TCK")


def ours_seconds() -> float:
    """CPU seconds used by everything this run started: servers, spinners, finished clients."""
    pids = [p for proc in _started if proc.poll() is None for p in proc_tree(proc.pid)]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return cpu_seconds(pids) + children.ru_utime + children.ru_stime


class Foreign:
    """CPU used by other processes on the machine (another build, a test suite) meanwhile.

    The benchmark's numbers only mean something on a quiet machine: every measurement
    records this, and `quiet()` waits (bounded) for the machine to calm down before one.
    """

    def __init__(self, max_pct: float, max_wait_s: float) -> None:
        self.max_pct, self.budget = max_pct, max_wait_s
        self.waited = 0.0

    @staticmethod
    def sample(seconds: float) -> float:
        sys0, ours0 = system_busy_seconds(), ours_seconds()
        time.sleep(seconds)
        return 100 * ((system_busy_seconds() - sys0) - (ours_seconds() - ours0)) / seconds

    def quiet(self) -> float:
        """Wait until others use less than max_pct of a core (within the run's wait budget)."""
        pct = self.sample(0.15)
        while pct > self.max_pct and self.waited < self.budget:
            time.sleep(1.0)
            self.waited += 1.3
            pct = self.sample(0.3)
        return round(pct)


def memory_mb(pids: list[int]) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak), summed over the processes, in MB."""
    out = {"rss_mb": 0.0, "hwm_mb": 0.0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key = "rss_mb" if line.startswith("VmRSS") else "hwm_mb"
                        out[key] += int(line.split()[1]) / 1024
        except OSError:
            pass
    return {k: round(v, 1) for k, v in out.items()}


@contextlib.contextmanager
def keep_awake(on: bool) -> Iterator[None]:
    """Keep both vCPUs out of their idle halt while one request at a time ping-pongs.

    At one connection every hop wakes an idle core. On this VM an idle vCPU's wake-up
    costs from 0.1 to several ms (the hypervisor has to reschedule it), which lands on the
    proxies' hops and not on the direct path. A busy loop per core at SCHED_IDLE priority
    keeps the cores awake and takes no CPU from the processes under test (any of them
    preempts it at once). `--no-keep-awake` measures without it.
    """
    if not on or not shutil.which("chrt"):
        yield
        return
    spinners = [spawn(["chrt", "-i", "0", "taskset", "-c", core, "sh", "-c", "while :; do :; done"],
                      RESULTS / "spinner.log") for core in (PROXY_CORE, LOAD_CORE)]
    time.sleep(0.2)
    try:
        yield
    finally:
        for proc in spinners:
            stop(proc)


def merge_rounds(rounds: list[dict], quiet_pct: float) -> dict:
    """One target's rounds: medians over the rounds the rest of the machine left alone.

    A round during which other processes used more than `quiet_pct` of a core is noisy;
    when at least one round is clean, only the clean ones count.
    """
    clean = [x for x in rounds if x.get("cpu_pct", {}).get("others", 0) <= quiet_pct] or rounds
    out = {
        "connections": rounds[0]["connections"],
        "requests": sum(x["requests"] for x in rounds),
        "errors": sum(x["errors"] for x in rounds),
        "rps": round(statistics.median(x["rps"] for x in clean), 1),
    }
    for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "mean_ms"):
        out[key] = round(statistics.median(x[key] for x in clean), 3)
    out["rounds_p50_ms"] = [x["p50_ms"] for x in rounds]
    out["rounds_rps"] = [x["rps"] for x in rounds]
    out["rps_max"] = max(x["rps"] for x in rounds)
    out["p50_ms_min"] = min(x["p50_ms"] for x in rounds)
    per_req = [x["proxy_cpu_us_per_req"] for x in clean if "proxy_cpu_us_per_req" in x]
    if per_req:
        out["proxy_cpu_us_per_req"] = round(statistics.median(per_req), 1)
        out["rounds_proxy_cpu_us_per_req"] = [x.get("proxy_cpu_us_per_req") for x in rounds]
        # Best of the rounds: contention only ever adds, so on a shared machine the least
        # CPU per request is the closest to the code's own cost.
        out["proxy_cpu_us_per_req_min"] = min(x["proxy_cpu_us_per_req"] for x in rounds if "proxy_cpu_us_per_req" in x)
    cpu = [x["cpu_pct"] for x in clean if "cpu_pct" in x]
    if cpu:
        out["cpu_pct"] = {k: round(statistics.median(c[k] for c in cpu)) for k in cpu[0]}
        out["rounds_others_pct"] = [x["cpu_pct"]["others"] for x in rounds if "cpu_pct" in x]
        out["noisy_rounds"] = len(rounds) - len(clean) if len(clean) < len(rounds) else 0
    return out


# ---------------------------------------------------------------- the servers


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
        argv = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(self.upstream_port),
                "--stream-gap-ms", str(self.args.stream_gap_ms)]
        self.upstream = spawn(pinned(cores, argv), RESULTS / "upstream.log")
        wait_ready(self.upstream_port, "/health", self.upstream, time.perf_counter())

    def gateway_env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GATEWAY_", "OPENAI_", "GEMINI_")) and k != "CUSTOM_REGISTRY_PATH"}
        env.update({
            "GATEWAY_REGISTRY": str(BENCH / "registry"),
            "GATEWAY_PORT": str(port),
            "GATEWAY_MASTER_KEY": MASTER_KEY,
            "BENCH_UPSTREAM_URL": self.upstream_base,
            "BENCH_UPSTREAM_KEY": "sk-bench-not-a-real-key",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def start_gateway(self, cores: str = PROXY_CORE, workers: int = 1,
                      source: Path = ROOT, log: str = "gateway.log") -> tuple[subprocess.Popen, int, float]:
        """`python -m gateway serve` run from `source`, so it imports `source`/gateway."""
        port = free_port()
        argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        started = time.perf_counter()
        proc = spawn(pinned(cores, argv), RESULTS / log, self.gateway_env(port), cwd=source)
        ready = wait_ready(port, "/readyz", proc, started)
        return proc, port, ready

    def start_bare(self) -> tuple[subprocess.Popen, int]:
        port = free_port()
        argv = [sys.executable, str(BENCH / "bare_proxy.py"), "--port", str(port), "--upstream", self.upstream_base]
        proc = spawn(pinned(PROXY_CORE, argv), RESULTS / "bare.log")
        wait_ready(port, "/readyz", proc, time.perf_counter())
        return proc, port

    # ------------------------------------------------------------ load

    def wrk(self, port: int, connections: int, duration: float, body: str = "chat",
            cores: str = LOAD_CORE, watch: dict[str, list[int]] | None = None) -> dict:
        """Run wrk against 127.0.0.1:port; `watch` names process groups whose CPU use to record."""
        duration = max(1, round(duration))  # wrk takes whole seconds
        env = {**os.environ, "BENCH_BODY_FILE": str(self.bodies[body]), "BENCH_AUTH": f"Bearer {MASTER_KEY}"}
        argv = pinned(cores, ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s",
                              "-s", str(BENCH / "wrk_post.lua"), f"http://127.0.0.1:{port}{CHAT_PATH}"])
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
            "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000,
            "p99_ms": lat["p99"] / 1000, "p999_ms": lat["p999"] / 1000, "max_ms": lat["max"] / 1000,
            "mean_ms": round(lat["mean"] / 1000, 3),
        }
        if errors:
            summary["error_detail"] = result["errors"]
        if watch:
            summary["cpu_pct"] = {name: round(100 * (cpu_seconds(pids) - before[name]) / wall)
                                  for name, pids in watch.items()}
            summary["cpu_pct"]["others"] = max(0, round(foreign))
            if "proxy" in watch and result["requests"]:
                # The proxy's CPU per request: what it costs, even when it had to share its
                # core; 1e6 / this is the req/s one whole core would give it.
                used = summary["cpu_pct"]["proxy"] / 100 * wall
                summary["proxy_cpu_us_per_req"] = round(1e6 * used / result["requests"], 1)
            summary["others_before_pct"] = quiet_before
        return summary

    def ttft(self, port: int, duration: float) -> dict:
        argv = pinned(LOAD_CORE, [sys.executable, str(BENCH / "ttft.py"), f"http://127.0.0.1:{port}{CHAT_PATH}",
                                  "--body", str(self.bodies["stream"]), "--duration", f"{duration:g}",
                                  "--auth", f"Bearer {MASTER_KEY}"])
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
    _status, body = http_get(port, "/metrics", timeout=5)
    totals: dict = {"requests": 0.0, "requests_200": 0.0, "cost_usd": 0.0, "tokens": 0.0, "by_status": {}}
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
    for name in ("gateway", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "httpx",
                 "httpx-aiohttp", "aiohttp", "orjson", "prometheus-client", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "gateway"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    source = subprocess.run([sys.executable, "-c", "import gateway, os; print(os.path.dirname(gateway.__file__))"],
                            cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit + ("+dirty" if dirty else ""),
        "gateway_source": source,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "packages": versions,
        "layout": {"proxy (gateway or bare)": f"core {PROXY_CORE}",
                   "fake upstream, wrk, ttft client": f"core {LOAD_CORE}",
                   "upstream-alone phase": f"upstream core {LOAD_CORE}, wrk core {PROXY_CORE}",
                   "workers phase": "every process on cores 0,1"},
    }


# ---------------------------------------------------------------- phases


def run(args: argparse.Namespace) -> dict:
    phases = set(args.phases)
    d = args.duration
    report: dict = {"environment": environment(), "settings": {
        "duration_s": d, "soak_requests": args.soak_requests, "stream_gap_ms": args.stream_gap_ms,
        "model": MODEL, "request": CHAT_BODY}}
    r = Runner(args)

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {text}", flush=True)

    t_start = time.perf_counter()

    if "upstream" in phases:
        # The fake upstream alone on core 1, wrk on core 0: what one core of it can serve.
        r.start_upstream(LOAD_CORE)
        upstream_pids = [r.upstream.pid]
        say("upstream alone: 32 connections")
        report["upstream_alone"] = r.wrk(r.upstream_port, 32, d, cores=PROXY_CORE,
                                         watch={"upstream": upstream_pids})
    else:
        r.start_upstream(LOAD_CORE)
    upstream_pids = [r.upstream.pid]
    direct_port = r.upstream_port

    if "startup" in phases:
        say("startup: 3 cold starts of `gateway serve`")
        times = []
        for _ in range(3):
            proc, port, ready = r.start_gateway()
            times.append(ready)
            stop(proc)
        report["startup"] = {"ready_s": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}

    gateway, gw_port, ready = r.start_gateway()
    gw_pids = [gateway.pid]
    report.setdefault("startup", {})["main_process_ready_s"] = round(ready, 3)
    report["rss_after_start"] = memory_mb(gw_pids)
    bare, bare_port = r.start_bare() if not args.no_bare else (None, None)
    bare_pids = [bare.pid] if bare else []

    targets = {"direct": (direct_port, {"upstream": upstream_pids}),
               "gateway": (gw_port, {"proxy": gw_pids, "upstream": upstream_pids})}
    if bare:
        targets["bare"] = (bare_port, {"proxy": bare_pids, "upstream": upstream_pids})
    candidates = {}
    for source in args.candidate:
        # Another gateway source tree (a scratch copy with a proposed change), measured in
        # the same run, interleaved with the others: A/B on equal terms.
        path = Path(source).resolve()
        name = path.name
        proc, port, ready = r.start_gateway(source=path, log=f"candidate-{name}.log")
        candidates[name] = proc
        targets[name] = (port, {"proxy": [proc.pid], "upstream": upstream_pids})
        report.setdefault("candidates", {})[name] = {
            "source": str(path), "ready_s": round(ready, 3), "rss_after_start": memory_mb([proc.pid])}
    order = [t for t in ("direct", "bare", "gateway", *candidates) if t in targets]
    report["targets_measured"] = order

    say("warm-up: 1 s at 32 connections on each target")
    for name in order:
        r.wrk(targets[name][0], 32, 1)
        r.wrk(targets[name][0], 128, 1)

    if "latency" in phases:
        # Interleaved rounds (direct, bare, gateway, direct, ...) so a drift of the machine
        # lands on every target alike; each target's numbers are the medians over rounds.
        rounds: dict[str, list[dict]] = {name: [] for name in order}
        with keep_awake(args.keep_awake):
            for i in range(args.rounds):
                for name in order:
                    say(f"latency: {name}, 1 connection (round {i + 1}/{args.rounds})")
                    port, watch = targets[name]
                    rounds[name].append(r.wrk(port, 1, max(2, d * 1.2 / args.rounds), watch=watch))
        report["latency_1conn"] = {name: merge_rounds(rs, args.quiet_pct) for name, rs in rounds.items()}
        base = report["latency_1conn"]["direct"]
        for name in order[1:]:
            res = report["latency_1conn"][name]
            res["overhead_p50_ms"] = round(res["p50_ms"] - base["p50_ms"], 3)
            res["overhead_p99_ms"] = round(res["p99_ms"] - base["p99_ms"], 3)

    if "throughput" in phases:
        report["throughput"] = {}
        for conns in args.conns:
            rounds = {name: [] for name in order}
            for i in range(args.rounds):
                for name in order:
                    say(f"throughput: {name}, {conns} connections (round {i + 1}/{args.rounds})")
                    port, watch = targets[name]
                    rounds[name].append(r.wrk(port, conns, max(2, d * 1.2 / args.rounds), watch=watch))
            report["throughput"][f"c{conns}"] = {name: merge_rounds(rs, args.quiet_pct) for name, rs in rounds.items()}

    if "ttft" in phases:
        rounds = {name: [] for name in order}
        with keep_awake(args.keep_awake):
            for i in range(args.rounds):
                for name in order:
                    say(f"ttft: {name}, streamed chat, 1 connection (round {i + 1}/{args.rounds})")
                    rounds[name].append(r.ttft(targets[name][0], max(d * 0.9 / args.rounds, 1)))
        report["ttft"] = {}
        for name, rs in rounds.items():
            report["ttft"][name] = {
                "requests": sum(x["requests"] for x in rs), "errors": sum(x["errors"] for x in rs),
                "ttft_ms": {k: round(statistics.median(x["ttft_ms"][k] for x in rs), 3)
                            for k in ("mean", "p50", "p90", "p99")},
                "total_ms": {k: round(statistics.median(x["total_ms"][k] for x in rs), 3) for k in ("p50", "p99")},
                "rounds_p50_ms": [x["ttft_ms"]["p50"] for x in rs],
            }
        base = report["ttft"]["direct"]["ttft_ms"]
        for name in order[1:]:
            res = report["ttft"][name]
            res["overhead_p50_ms"] = round(res["ttft_ms"]["p50"] - base["p50"], 3)
            res["overhead_mean_ms"] = round(res["ttft_ms"]["mean"] - base["mean"], 3)

    if bare:
        stop(bare)
    for name, proc in candidates.items():
        report["candidates"][name]["rss_end"] = memory_mb([proc.pid])
        report["candidates"][name]["metrics"] = metrics_totals(targets[name][0])
        stop(proc)

    if "soak" in phases:
        samples = []
        served = metrics_totals(gw_port)["requests"]
        samples.append({"requests": int(served), **memory_mb(gw_pids)})
        say(f"soak: gateway at 32 connections until it has served {args.soak_requests} requests")
        # Bounded by its own limit and by the run's budget (the workers phase still follows).
        deadline = min(time.perf_counter() + args.soak_limit_s, t_start + args.budget_s - 22)
        rate = report.get("throughput", {}).get("c32", {}).get("gateway", {}).get("rps", 1000.0)
        while served < args.soak_requests and time.perf_counter() < deadline:
            # Slices of at most --soak-slice-s, the last one just long enough to reach the target.
            left = (args.soak_requests - served) / max(rate, 1.0) + 0.5
            slice_s = max(1.0, min(args.soak_slice_s, left, deadline - time.perf_counter()))
            rate = r.wrk(gw_port, 32, slice_s)["rps"]
            served = metrics_totals(gw_port)["requests"]
            samples.append({"requests": int(served), **memory_mb(gw_pids)})
        half = next((s for s in samples if s["requests"] >= served / 2), samples[0])
        growth = round(samples[-1]["rss_mb"] - half["rss_mb"], 1)
        report["soak"] = {
            "samples": samples,
            "requests_served": int(served),
            "target_requests": args.soak_requests,
            "rss_growth_second_half_mb": growth,
            "flat": growth <= max(2.0, 0.02 * half["rss_mb"]),
        }

    report["rss_end"] = memory_mb(gw_pids)
    report["metrics"] = metrics_totals(gw_port)

    if args.profile:
        report["profile"] = profile(r, gateway.pid, gw_port, say)

    stop(gateway)

    if "workers" in phases:
        say("workers: `--workers 2` on cores 0,1 (upstream and wrk too)")
        stop(r.upstream)
        r.start_upstream("0,1")
        proc, port, ready = r.start_gateway("0,1", workers=2)
        time.sleep(0.5)  # both workers listening
        tree = proc_tree(proc.pid)
        watch = {"gateway (all workers)": tree, "upstream": [r.upstream.pid]}
        r.wrk(port, 32, 1, cores="0,1")
        res = {"ready_s": round(ready, 3), "processes": len(tree)}
        for conns in (32, 128):
            res[f"c{conns}"] = r.wrk(port, conns, max(3, d * 0.6), cores="0,1", watch=watch)
        res["rss"] = memory_mb(proc_tree(proc.pid))
        stop(proc)
        # One worker, unpinned the same way, so the two are compared on equal terms.
        proc, port, _ = r.start_gateway("0,1", workers=1)
        r.wrk(port, 32, 1, cores="0,1")
        res["one_worker_unpinned"] = {f"c{c}": r.wrk(port, c, max(3, d * 0.6), cores="0,1", watch={
            "gateway": [proc.pid], "upstream": [r.upstream.pid]}) for c in (32, 128)}
        stop(proc)
        report["workers_2"] = res

    stop(r.upstream)
    report["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    report["waited_for_quiet_s"] = round(r.foreign.waited, 1)
    report["targets"] = check_targets(report)
    return report


def profile(r: Runner, pid: int, port: int, say) -> dict:
    """py-spy flame graph (SVG) and collapsed stacks of the gateway at 32 connections."""
    beside = Path(sys.executable).parent / "py-spy"  # pip install py-spy, in this venv
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if not spy:
        return {"error": "py-spy is not installed: pip install py-spy"}
    out: dict = {}
    seconds = r.args.profile_s
    for fmt, name in (("flamegraph", "profile.svg"), ("raw", "profile.txt"), ("speedscope", "profile.speedscope.json")):
        if fmt == "speedscope" and not r.args.speedscope:
            continue
        say(f"profile: py-spy {fmt} for {seconds} s at 32 connections")
        argv = pinned(LOAD_CORE, [spy, "record", "--pid", str(pid), "--rate", "250", "--duration", str(seconds),
                                  "--format", fmt, "-o", str(RESULTS / name)])
        spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        load = r.wrk(port, 32, seconds)
        spy_proc.wait(seconds + 30)
        out[name] = str((RESULTS / name).relative_to(ROOT))
        out[f"rps_while_profiling_{fmt}"] = load["rps"]
    if (RESULTS / "profile.txt").exists():
        sys.path.insert(0, str(BENCH))
        from profile_summary import summarize

        out["summary"] = summarize(str(RESULTS / "profile.txt"))
    return out


def check_targets(report: dict) -> dict:
    checks = {}
    tp = report.get("throughput", {}).get("c32", {}).get("gateway")
    if tp:
        checks["rps_32"] = {"value": tp["rps"], "target": f">= {TARGETS['rps_32']:g}", "ok": tp["rps"] >= TARGETS["rps_32"]}
    lat = report.get("latency_1conn", {}).get("gateway")
    if lat:
        v = lat["overhead_p50_ms"]
        checks["p50_overhead_ms"] = {"value": v, "target": f"<= {TARGETS['p50_overhead_ms']}", "ok": v <= TARGETS["p50_overhead_ms"]}
    tt = report.get("ttft", {}).get("gateway")
    if tt and "overhead_p50_ms" in tt:
        v = tt["overhead_p50_ms"]
        checks["ttft_overhead_ms"] = {"value": v, "target": f"<= {TARGETS['ttft_overhead_ms']}", "ok": v <= TARGETS["ttft_overhead_ms"]}
    peak = report.get("rss_end", {}).get("hwm_mb")
    if peak:
        checks["rss_peak_mb"] = {"value": peak, "target": f"<= {TARGETS['rss_mb']:g}", "ok": peak <= TARGETS["rss_mb"]}
    soak = report.get("soak")
    if soak:
        checks["rss_flat"] = {"value": f"+{soak['rss_growth_second_half_mb']} MB over the last "
                                       f"{soak['requests_served'] // 2} of {soak['requests_served']} requests",
                              "target": f"<= max(2 MB, 2%) after >= {soak['target_requests']:,} requests",
                              "ok": soak["flat"] and soak["requests_served"] >= soak["target_requests"]}
    st = report.get("startup", {})
    if "median_s" in st:
        v = st["median_s"]
        checks["ready_s"] = {"value": v, "target": f"<= {TARGETS['ready_s']}", "ok": v <= TARGETS["ready_s"]}
    return checks


# ---------------------------------------------------------------- output


def table(report: dict) -> str:
    names = report.get("targets_measured", ["direct", "bare", "gateway"])
    rows = [("", *names, "target")]

    def cell(v) -> str:
        if v is None:
            return "-"
        return f"{v:,.0f}" if isinstance(v, float) and v >= 100 else f"{v:g}" if isinstance(v, float) else str(v)

    def row(label: str, values: dict, *keys: str, target: str = "") -> None:
        def get(name: str):
            v = values.get(name, {})
            for k in keys:
                v = v.get(k, {}) if isinstance(v, dict) else None
            return v if v != {} else None
        rows.append((label, *(cell(get(n)) for n in names), target))

    for conns in (32, 128):
        tp = report.get("throughput", {}).get(f"c{conns}")
        if tp:
            row(f"req/s, {conns} connections", tp, "rps", target=">= 1,800" if conns == 32 else "")
    tp = report.get("throughput", {}).get("c32")
    if tp:
        row("proxy CPU %, 32 conns", tp, "cpu_pct", "proxy")
        row("proxy CPU us/request, 32", tp, "proxy_cpu_us_per_req")
        row("others' CPU %, 32 conns", tp, "cpu_pct", "others")
        row("upstream CPU %, 32 conns", tp, "cpu_pct", "upstream")
    lat = report.get("latency_1conn")
    if lat:
        row("p50 ms, 1 connection", lat, "p50_ms")
        row("p99 ms, 1 connection", lat, "p99_ms")
        row("p99.9 ms, 1 connection", lat, "p999_ms")
        row("p50 overhead ms", lat, "overhead_p50_ms", target="<= 0.6")
        row("p99 overhead ms", lat, "overhead_p99_ms")
    tt = report.get("ttft")
    if tt:
        row("TTFT p50 ms, streamed", tt, "ttft_ms", "p50")
        row("TTFT p99 ms, streamed", tt, "ttft_ms", "p99")
        row("TTFT p50 overhead ms", tt, "overhead_p50_ms", target="<= 1")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))

    extra = []
    ua = report.get("upstream_alone")
    if ua:
        extra.append(f"fake upstream alone (1 core, 32 conns): {ua['rps']:,.0f} req/s at {ua['cpu_pct']['upstream']}% CPU")
    st = report.get("startup", {})
    if "median_s" in st:
        extra.append(f"gateway start to /readyz 200: median {st['median_s']} s of {st['ready_s']} (target <= 1.5 s)")
    if "rss_after_start" in report:
        extra.append(f"gateway RSS: {report['rss_after_start']['rss_mb']} MB after start, "
                     f"{report['rss_end']['rss_mb']} MB at the end, peak (VmHWM) {report['rss_end']['hwm_mb']} MB")
    soak = report.get("soak")
    if soak:
        pts = ", ".join(f"{s['requests'] // 1000}k:{s['rss_mb']}" for s in soak["samples"])
        extra.append(f"RSS (MB) by requests served: {pts}  -> {'flat' if soak['flat'] else 'GROWING'}")
    m = report.get("metrics")
    if m:
        extra.append(f"gateway /metrics: {m['requests']:,.0f} requests counted (by status: {m.get('by_status')}; "
                     "a 499 is a call wrk cut off when a phase ended), "
                     f"{m['tokens']:,.0f} tokens, ${m['cost_usd']:.4f} spend")
    w = report.get("workers_2")
    if w:
        one = w["one_worker_unpinned"]
        extra.append(f"--workers 2 (all on cores 0,1): {w['c32']['rps']:,.0f} req/s @32, {w['c128']['rps']:,.0f} @128 "
                     f"(1 worker same layout: {one['c32']['rps']:,.0f} @32, {one['c128']['rps']:,.0f} @128); "
                     f"CPU @32: {w['c32']['cpu_pct']}")
    prof = report.get("profile")
    if prof and "summary" in prof:
        top = ", ".join(f"{n} {p}%" for n, p in prof["summary"]["inclusive_by_package_pct"][:8])
        extra.append(f"profile (inclusive by package): {top}; flame graph: {prof.get('profile.svg')}")
    checks = report.get("targets", {})
    if checks:
        extra.append("targets: " + ", ".join(f"{k} {'ok' if c['ok'] else 'MISSED'} ({c['value']})" for k, c in checks.items()))
    return "\n".join([*lines, "", *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma list of: {', '.join(PHASES)}")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    parser.add_argument("--quick", action="store_true", help="one round of 2 s per phase, a 30k-request soak")
    parser.add_argument("--soak-requests", type=int, default=100_000)
    parser.add_argument("--soak-slice-s", type=float, default=8.0)
    parser.add_argument("--soak-limit-s", type=float, default=75.0)
    parser.add_argument("--budget-s", type=float, default=178.0,
                        help="the soak stops early so the whole run ends within about this")
    parser.add_argument("--stream-gap-ms", type=float, default=5.0,
                        help="the fake upstream's pause between the first streamed chunk and the rest")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-proxy floor")
    parser.add_argument("--quiet-pct", type=float, default=15.0,
                        help="before a measurement, wait while other processes use more than this %% of a core")
    parser.add_argument("--quiet-wait-s", type=float, default=10.0,
                        help="the most the whole run waits for a quiet machine")
    parser.add_argument("--candidate", metavar="DIR", action="append", default=[],
                        help="also measure the gateway in this source tree (a copy with a proposed "
                             "change), named by the folder's name; may be repeated")
    parser.add_argument("--conns", default="32,128", help="connection counts of the throughput phase")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the 1-connection phases (latency, ttft)")
    parser.add_argument("--no-keep-awake", dest="keep_awake", action="store_false",
                        help="no SCHED_IDLE busy loops on the cores during the 1-connection phases")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under load (pip install py-spy)")
    parser.add_argument("--profile-s", type=int, default=8)
    parser.add_argument("--speedscope", action="store_true", help="with --profile, also a speedscope JSON")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args()
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    args.conns = [int(c) for c in args.conns.split(",") if c.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.soak_requests, args.soak_limit_s, args.rounds = 2.0, 30_000, 30.0, 1
    if (os.cpu_count() or 1) < 2:
        parser.error("the benchmark pins the proxy and the load to two different cores: it needs 2")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for log in [*RESULTS.glob("*.log")]:
        log.unlink()
    ensure_wrk()
    try:
        report = run(args)
    finally:
        for proc in list(_started):
            stop(proc)
    text = table(report)
    print("\n" + text)
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=1) + "\n")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"run-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {out} (elapsed {report['elapsed_s']} s)")


if __name__ == "__main__":
    main()
