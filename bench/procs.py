"""Processes and measurements: start, pin, stop; CPU, memory, a quiet machine; merging rounds."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from config import LOAD_CORE, PROXY_CORE, RESULTS, ROOT

_started: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cores: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *argv]


def spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen:
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


def http_get(
    port: int, path: str, timeout: float = 1.0, auth: str | None = None
) -> tuple[int, bytes]:
    """A minimal GET: reads the headers, then the body by its length (or to the close)."""
    extra = f"Authorization: {auth}\r\n" if auth else ""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        while (match is None or len(body) < int(match.group(1))) and (chunk := s.recv(65536)):
            body += chunk
    return int(head.split(b" ", 2)[1]), body


def wait_ready(
    port: int, path: str, proc: subprocess.Popen, started: float, limit: float = 20.0
) -> float:
    """Seconds from `started` to the first 200 on `path`; polls every 2 ms."""
    while time.perf_counter() - started < limit:
        if proc.poll() is not None:
            raise RuntimeError(
                f"process exited with {proc.returncode} before it was ready (see bench/results/*.log)"
            )
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
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / os.sysconf(
        "SC_CLK_TCK"
    )


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
    spinners = [
        spawn(
            ["chrt", "-i", "0", "taskset", "-c", core, "sh", "-c", "while :; do :; done"],
            RESULTS / "spinner.log",
        )
        for core in (PROXY_CORE, LOAD_CORE)
    ]
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
        out["proxy_cpu_us_per_req_min"] = min(
            x["proxy_cpu_us_per_req"] for x in rounds if "proxy_cpu_us_per_req" in x
        )
    cpu = [x["cpu_pct"] for x in clean if "cpu_pct" in x]
    if cpu:
        out["cpu_pct"] = {k: round(statistics.median(c[k] for c in cpu)) for k in cpu[0]}
        out["rounds_others_pct"] = [x["cpu_pct"]["others"] for x in rounds if "cpu_pct" in x]
        out["noisy_rounds"] = len(rounds) - len(clean) if len(clean) < len(rounds) else 0
    return out
